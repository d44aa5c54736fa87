//! The SSE parser and AI stream translators: split-independent UTF-8 output.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringway::fuzzing::ai_stream(data));
