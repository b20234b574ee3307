//! `cargo fuzz run decryptor --fuzz-dir fuzz`: see `wamedia_fuzz_targets::decryptor`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wamedia_fuzz_targets::decryptor(data));
