#![no_main]
//! See cairn_fuzz::duration for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::duration(data));
