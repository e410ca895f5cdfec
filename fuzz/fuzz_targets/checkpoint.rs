//! A whole checkpoint from one input (see `skillsets::fuzzing::checkpoint`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    skillsets::fuzzing::checkpoint(data);
});
