//! `cargo fuzz run cassette --fuzz-dir fuzz`: see `wamedia_fuzz_targets::cassette`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wamedia_fuzz_targets::cassette(data));
