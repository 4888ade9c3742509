//! The LAN's DHCPv6 server fed client messages, renumbering and restarts
//! (see `ipoe_fuzz::dhcp6s` for the input format).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipoe_fuzz::dhcp6s::run(data));
