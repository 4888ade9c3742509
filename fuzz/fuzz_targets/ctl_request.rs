//! The control socket's request parser on arbitrary lines (see
//! `ipoe_fuzz::ctl`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipoe_fuzz::ctl::run(data));
