//! The LAN's DHCPv4 server fed arbitrary client messages (see
//! `ipoe_fuzz::dhcp4` for the input format).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipoe_fuzz::dhcp4::run(data));
