//! The LAN's RA sender fed Router Solicitations, other routers' RAs and
//! new inputs
//! (see `ipoe_fuzz::lan_ra` for the input format).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipoe_fuzz::lan_ra::run(data));
