#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    confidant::fuzz_support::key_vault(data);
});
