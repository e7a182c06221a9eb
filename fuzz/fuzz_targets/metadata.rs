//! Fuzz target `metadata`: see `serment_hostile::fuzz::metadata`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| serment_hostile::fuzz::metadata(data));
