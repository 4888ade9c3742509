//! The DHCPv6-PD client fed arbitrary server messages in each state (see
//! `ipoe_fuzz::dhcp6` for the input format).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipoe_fuzz::dhcp6::run(data));
