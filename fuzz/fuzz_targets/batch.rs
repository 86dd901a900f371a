#![no_main]
//! See cairn_fuzz::batch for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::batch(data));
