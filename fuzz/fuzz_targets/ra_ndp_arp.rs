//! The neighbor engine and the WAN's RA/SLAAC handling fed arbitrary
//! frames (see `ipoe_fuzz::neigh` for the input format).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipoe_fuzz::neigh::run(data));
