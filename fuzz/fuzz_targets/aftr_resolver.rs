//! The AFTR name's resolver fed answers to its queries
//! (see `ipoe_fuzz::resolver` for the input format).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipoe_fuzz::resolver::run(data));
