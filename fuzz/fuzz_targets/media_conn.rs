//! `cargo fuzz run media_conn --fuzz-dir fuzz`: see `wamedia_fuzz_targets::media_conn`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wamedia_fuzz_targets::media_conn(data));
