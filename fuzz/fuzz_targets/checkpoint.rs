//! A whole checkpoint from one input (see `fuzzing::checkpoint`).
#![no_main]

#[path = "../support/fuzzing.rs"]
#[allow(dead_code)]
mod fuzzing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzzing::checkpoint(data);
});
