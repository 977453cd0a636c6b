#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| floe::fuzzing::routes(data));
