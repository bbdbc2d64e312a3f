#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tidewire_fuzz_checks::client::check_ws_frames(data));
