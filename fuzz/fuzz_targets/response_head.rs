//! Upstream response heads: the same answer whatever the reads; a parsed
//! head written back parses to the same meaning.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringway::fuzzing::response_head(data));
