//! The config loader: never panics; a valid config renders and reads back.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringway::fuzzing::config(data));
