//! Fuzz target `device_record`: see `serment_hostile::fuzz::device_record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| serment_hostile::fuzz::device_record(data));
