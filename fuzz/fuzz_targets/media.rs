//! WAV and image bytes through the decoders and processors (see `fuzzing::media`).
#![no_main]

#[path = "../support/fuzzing.rs"]
#[allow(dead_code)]
mod fuzzing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::media(data));
