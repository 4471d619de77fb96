//! Fuzz target: see `libcontainer::fuzzing::mount_options`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| libcontainer::fuzzing::mount_options(data));
