//! The LAN's DNS proxy fed UDP and TCP queries and upstream answers
//! (see `ipoe_fuzz::dnsproxy` for the input format).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipoe_fuzz::dnsproxy::run(data));
