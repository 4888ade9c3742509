//! The node pipeline with MAP-E NAPT44 on, frames from both sides (see
//! `ipoe_fuzz::graph_napt` for the input format and the checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipoe_fuzz::graph_napt::run(data));
