//! ipoe-router's protocol engines, sans-IO: each is pure logic fed with
//! `(now, input)` that returns what to send and when it next wants to run,
//! plus the wire views and frame builders they share, and the control
//! socket's messages (`ctl`), which ipoed and ipoectl both use. No sockets, threads,
//! BPF or dataplane here; `ipoe-control` owns the I/O and the clock, so
//! tests run days of lease and timer time in milliseconds.

#[macro_use]
mod counters;

pub mod ctl;
pub mod dhcp4s;
pub mod dhcp6c;
pub mod dhcp6s;
pub mod dns;
pub mod dnsproxy;
pub mod hb46pp;
pub mod hostio;
pub mod http;
pub mod ipip_update;
pub mod jitter;
pub mod lan_mode;
pub mod lan_ra;
pub mod map;
pub mod mld;
pub mod ndproxy;
pub mod neigh;
pub mod osrand;
pub mod pmtu;
pub mod slaac;
pub mod smoldev;
pub mod tunnel_watch;
pub mod zeroconf;
