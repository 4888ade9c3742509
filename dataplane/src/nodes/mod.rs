//! One node per file. Each has `process(cx, pkts)` and an `Error` enum whose
//! variants are its named drop counters (what `ipoectl show errors` prints).

pub mod dslite_decap;
pub mod dslite_encap;
pub mod ethernet_input;
pub mod icmp4_error;
pub mod icmp6_error;
pub mod interface_output;
pub mod ip4_firewall;
pub mod ip4_fragment;
pub mod ip4_input;
pub mod ip4_rewrite;
pub mod ip6_firewall;
pub mod ip6_forward;
pub mod ip6_fragment;
pub mod ip6_input;
pub mod ip6_local;
pub mod ip6_reassembly;
pub mod nat44_in;
pub mod nat44_out;
pub mod punt;

#[cfg(test)]
mod csum_tests;
#[cfg(test)]
mod nat44_tests;
#[cfg(test)]
mod police_tests;
#[cfg(test)]
mod tests;
