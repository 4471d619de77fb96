//! Fuzz target: see `libcontainer::fuzzing::state_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| libcontainer::fuzzing::state_file(data));
