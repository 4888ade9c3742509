//! ipoe-router's fast path: AF_XDP ports, per-core workers and a VPP-style
//! graph of small nodes. Workers only read the tables the control thread
//! publishes (`tables::Fib`) and hand everything that is not fast path to the
//! control thread through bounded lock-free queues (`punt`).

pub mod counters;
pub mod csum;
pub mod firewall;
pub mod flow;
pub mod frag4;
pub mod graph;
pub mod nat;
pub mod neigh_use;
pub mod nodes;
pub mod police;
pub mod punt;
pub mod reass;
pub mod session;
pub mod tables;
pub mod testkit;
pub mod trace;
pub mod tunnel_opts;
pub mod wire;
pub mod worker;
pub mod xsk;

/// Frame (UMEM chunk) size. 2 KiB holds a 1518-byte frame plus the kernel's
/// 256-byte XDP headroom, which is where DS-Lite encapsulation grows into.
pub const FRAME_SIZE: usize = 2048;
/// Largest vector a worker processes at once.
pub const MAX_BATCH: usize = 256;
/// Room the tests leave before a frame, as the kernel does (XDP_PACKET_HEADROOM).
pub const XDP_HEADROOM: usize = 256;

// The config refuses MTUs above what one chunk can receive (issue 15 m10):
// its bound must be this one.
const _: () = assert!(FRAME_SIZE - XDP_HEADROOM - 14 == ipoe_config::MAX_MTU as usize);
