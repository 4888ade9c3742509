//! The HTTP/1.1 response reader on responses in pieces (see
//! `ipoe_fuzz::http`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipoe_fuzz::http::run(data));
