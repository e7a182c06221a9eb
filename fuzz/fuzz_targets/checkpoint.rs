//! Fuzz target `checkpoint`: see `serment_hostile::fuzz::checkpoint`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| serment_hostile::fuzz::checkpoint(data));
