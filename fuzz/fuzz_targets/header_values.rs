//! Header-value parsers: Cache-Control, lists, dates, targets,
//! Accept-Encoding, If-None-Match.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringway::fuzzing::header_values(data));
