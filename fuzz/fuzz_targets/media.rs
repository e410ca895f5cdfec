//! WAV and image bytes through the decoders and processors (see `skillsets::fuzzing::media`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| skillsets::fuzzing::media(data));
