//! libFuzzer target: `laser::fuzzing::factorized_layout` must not panic, abort or hang on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = laser::fuzzing::factorized_layout(data);
});
