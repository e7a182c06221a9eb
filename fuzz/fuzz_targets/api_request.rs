//! Fuzz target `api_request`: see `serment_hostile::fuzz::api_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| serment_hostile::fuzz::api_request(data));
