//! The HB46PP client and reply parser on TXT answers and reply bodies
//! (see `ipoe_fuzz::hb46pp`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipoe_fuzz::hb46pp::run(data));
