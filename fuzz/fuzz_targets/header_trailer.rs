//! Fuzz target `header_trailer`: see `serment_hostile::fuzz::header_trailer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| serment_hostile::fuzz::header_trailer(data));
