//! Fuzz target: see `libcontainer::fuzzing::seccomp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| libcontainer::fuzzing::seccomp(data));
