//! ipoe-router's control plane: the daemon (`ipoed`), its control socket,
//! and the protocol engines it runs on the control thread.

pub mod ctl;
pub mod daemon;
pub mod iface;
pub mod logger;
pub mod neigh;
pub mod report;
