//! The chunked decoder: split-independent, and decode(encode(x)) = x.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringway::fuzzing::chunked(data));
