#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tidewire_fuzz_checks::http::check_http_head(data));
