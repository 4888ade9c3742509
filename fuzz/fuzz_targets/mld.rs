//! The MLD host (queries, reports, membership changes) fed arbitrary
//! frames (see `ipoe_fuzz::mld` for the input format).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipoe_fuzz::mld::run(data));
