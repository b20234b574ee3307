//! `cargo fuzz run upload --fuzz-dir fuzz`: see `wamedia_fuzz_targets::upload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wamedia_fuzz_targets::upload(data));
