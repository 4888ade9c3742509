//! The whole node pipeline on frames received on the LAN (see
//! `ipoe_fuzz::graph` for the input format).
#![no_main]

use ipoe_dataplane::tables::Port;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipoe_fuzz::graph::run(data, Port::Lan));
