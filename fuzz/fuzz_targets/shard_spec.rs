//! libFuzzer target: `laser::fuzzing::shard_spec` must not panic, abort or hang on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = laser::fuzzing::shard_spec(data);
});
