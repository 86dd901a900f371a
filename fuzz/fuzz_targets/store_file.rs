#![no_main]
//! See cairn_fuzz::store_file for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::store_file(data));
