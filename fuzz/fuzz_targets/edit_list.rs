//! libFuzzer target: `laser::fuzzing::edit_list` must not panic, abort or hang on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = laser::fuzzing::edit_list(data);
});
