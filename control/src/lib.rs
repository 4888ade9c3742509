//! ipoe-router's control plane: the daemon (`ipoed`), its control socket,
//! and the protocol engines it runs on the control thread.

#[macro_use]
mod counters;

pub mod caps;
pub mod ctl;
pub mod daemon;
pub mod dhcp4s;
pub mod dhcp6c;
pub mod dhcp6s;
pub mod dns;
pub mod dnsproxy;
pub mod firewall;
pub mod hostio;
pub mod iface;
pub mod jitter;
pub mod lan;
pub mod lan_ra;
pub mod logger;
pub mod mcast_filter;
pub mod metrics;
pub mod mld;
pub mod multicast;
pub mod neigh;
pub mod osrand;
pub mod pmtu;
pub mod reload;
pub mod report;
pub mod sdnotify;
pub mod slaac;
pub mod smoldev;
pub mod state;
pub mod tunnel_watch;
pub mod wan;
