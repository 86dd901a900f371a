#![no_main]
//! See cairn_fuzz::values for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::values(data));
