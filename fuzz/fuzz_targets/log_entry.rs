//! Fuzz target `log_entry`: see `serment_hostile::fuzz::log_entry`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| serment_hostile::fuzz::log_entry(data));
