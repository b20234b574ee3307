//! `cargo fuzz run download --fuzz-dir fuzz`: see `wamedia_fuzz_targets::download`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wamedia_fuzz_targets::download(data));
