//! ipoe-router's control plane: the daemon (`ipoed`) that runs the
//! protocol engines of `ipoe-proto` on its control thread, owns their
//! sockets and clock, publishes the dataplane's tables, and serves the
//! control socket.

pub mod caps;
pub mod ctl;
pub mod daemon;
pub mod firewall;
pub mod iface;
pub mod ipip;
pub mod lan;
pub mod logger;
pub mod map_e;
pub mod mcast_filter;
pub mod metrics;
pub mod multicast;
pub mod reload;
pub mod report;
pub mod sdnotify;
pub mod state;
pub mod status;
pub mod wan;
pub mod zeroconf;
