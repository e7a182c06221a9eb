//! Fuzz target `fhir`: see `serment_hostile::fuzz::fhir`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| serment_hostile::fuzz::fhir(data));
