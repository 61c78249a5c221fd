#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    confidant::fuzz_support::discovery(data);
});
