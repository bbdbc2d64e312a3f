#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tidewire_fuzz_checks::filter::check_filter_json(data));
