//! The JSON tokenizer against serde_json, and JSON redaction round trips.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_engine::fuzzing::json(data));
