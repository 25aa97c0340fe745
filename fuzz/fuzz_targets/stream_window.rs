//! The stream window: any chunking of a body releases exactly what one
//! whole feed does, and masked findings are never released unmasked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_engine::fuzzing::stream_window(data));
