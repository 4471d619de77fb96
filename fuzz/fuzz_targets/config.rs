//! Fuzz target: see `libcontainer::fuzzing::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| libcontainer::fuzzing::config(data));
