//! Fuzz target `wrap`: see `serment_hostile::fuzz::wrap`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| serment_hostile::fuzz::wrap(data));
