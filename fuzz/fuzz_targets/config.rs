//! `ipoe_config::parse` on arbitrary UTF-8 (see `ipoe_fuzz::config`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipoe_fuzz::config::run(data));
