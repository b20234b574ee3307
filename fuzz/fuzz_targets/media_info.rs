//! `cargo fuzz run media_info --fuzz-dir fuzz`: see `wamedia_fuzz_targets::media_info`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wamedia_fuzz_targets::media_info(data));
