//! libFuzzer entry for `relay_fuzz_checks::source_header` (the invariants live there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| relay_fuzz_checks::source_header(data));
