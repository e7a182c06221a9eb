//! Fuzz target `document_open`: see `serment_hostile::fuzz::document_open`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| serment_hostile::fuzz::document_open(data));
