//! Fuzz target `client_response`: see `serment_hostile::fuzz::client_response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| serment_hostile::fuzz::client_response(data));
