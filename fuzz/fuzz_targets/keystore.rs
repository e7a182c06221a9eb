//! Fuzz target `keystore`: see `serment_hostile::fuzz::keystore`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| serment_hostile::fuzz::keystore(data));
