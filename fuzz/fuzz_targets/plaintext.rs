//! Fuzz target `plaintext`: see `serment_hostile::fuzz::plaintext`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| serment_hostile::fuzz::plaintext(data));
