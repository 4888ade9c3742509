//! Per-node counters (VPP's calls / vectors / clocks) and named drop reasons.
//! Workers keep plain integers and copy them into `WorkerStats` atomics after
//! each loop turn, so counting costs no atomic read-modify-write per packet.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::graph::{NodeId, NODE_COUNT};

/// Most drop reasons any one node has.
pub const MAX_ERRORS: usize = 16;

/// Declares a node's error enum: each variant is a named drop counter.
#[macro_export]
macro_rules! node_errors {
    ($(#[$m:meta])* pub enum $name:ident { $($var:ident => ($counter:literal, $desc:literal),)+ }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub enum $name { $($var,)+ }
        impl $name {
            /// (counter name, description) in variant order.
            pub const NAMES: &'static [(&'static str, &'static str)] = &[$(($counter, $desc),)+];
            #[inline]
            pub fn index(self) -> usize { self as usize }
        }
    };
}

/// Cycle counter: the TSC on x86_64 (what VPP's "clocks" are), nanoseconds elsewhere.
#[inline]
pub fn clocks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions on x86_64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::time::Instant;
        thread_local!(static T0: Instant = Instant::now());
        T0.with(|t| t.elapsed().as_nanos() as u64)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    pub calls: u64,
    pub vectors: u64,
    pub clocks: u64,
    pub errors: [u64; MAX_ERRORS],
    /// Packets and bytes a node reports as done (the DS-Lite nodes: the
    /// IPv4 packets that went into and came out of the tunnel).
    pub ok_packets: u64,
    pub ok_bytes: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Frames we could not put on the TX ring (ring full).
    pub tx_ring_full: u64,
    /// From XDP_STATISTICS: dropped by the kernel for lack of fill/rx ring room.
    pub rx_kernel_dropped: u64,
    pub rx_ring_full: u64,
    pub rx_fill_empty: u64,
    pub tx_invalid: u64,
    /// Received TCP/UDP segments whose partial checksum (a kernel peer's
    /// CHECKSUM_PARTIAL) the input nodes completed (`csum.rs`).
    pub csum_completed: u64,
}

#[derive(Default)]
struct SharedNode {
    calls: AtomicU64,
    vectors: AtomicU64,
    clocks: AtomicU64,
    ok_packets: AtomicU64,
    ok_bytes: AtomicU64,
    errors: [AtomicU64; MAX_ERRORS],
}

#[derive(Default)]
struct SharedPort {
    v: [AtomicU64; 10],
}

/// A worker's counters as the control thread reads them.
#[derive(Default)]
pub struct WorkerStats {
    nodes: [SharedNode; NODE_COUNT],
    ports: [SharedPort; 2],
    /// Clocks spent in loop turns that found work / found none.
    busy_clocks: AtomicU64,
    idle_clocks: AtomicU64,
    loops: AtomicU64,
}

#[derive(Clone, Debug, Default)]
pub struct WorkerSnapshot {
    pub nodes: [NodeStats; NODE_COUNT],
    pub ports: [PortStats; 2],
    pub busy_clocks: u64,
    pub idle_clocks: u64,
    pub loops: u64,
}

impl WorkerStats {
    /// Called by the owning worker only (single writer).
    pub fn publish(&self, local: &WorkerSnapshot) {
        for (s, l) in self.nodes.iter().zip(local.nodes.iter()) {
            s.calls.store(l.calls, Relaxed);
            s.vectors.store(l.vectors, Relaxed);
            s.clocks.store(l.clocks, Relaxed);
            s.ok_packets.store(l.ok_packets, Relaxed);
            s.ok_bytes.store(l.ok_bytes, Relaxed);
            for (a, v) in s.errors.iter().zip(l.errors.iter()) {
                a.store(*v, Relaxed);
            }
        }
        for (s, l) in self.ports.iter().zip(local.ports.iter()) {
            let vals = [
                l.rx_packets,
                l.rx_bytes,
                l.tx_packets,
                l.tx_bytes,
                l.tx_ring_full,
                l.rx_kernel_dropped,
                l.rx_ring_full,
                l.rx_fill_empty,
                l.tx_invalid,
                l.csum_completed,
            ];
            for (a, v) in s.v.iter().zip(vals) {
                a.store(v, Relaxed);
            }
        }
        self.busy_clocks.store(local.busy_clocks, Relaxed);
        self.idle_clocks.store(local.idle_clocks, Relaxed);
        self.loops.store(local.loops, Relaxed);
    }

    pub fn snapshot(&self) -> WorkerSnapshot {
        let mut out = WorkerSnapshot::default();
        for (s, o) in self.nodes.iter().zip(out.nodes.iter_mut()) {
            o.calls = s.calls.load(Relaxed);
            o.vectors = s.vectors.load(Relaxed);
            o.clocks = s.clocks.load(Relaxed);
            o.ok_packets = s.ok_packets.load(Relaxed);
            o.ok_bytes = s.ok_bytes.load(Relaxed);
            for (a, v) in s.errors.iter().zip(o.errors.iter_mut()) {
                *v = a.load(Relaxed);
            }
        }
        for (s, o) in self.ports.iter().zip(out.ports.iter_mut()) {
            let v: Vec<u64> = s.v.iter().map(|a| a.load(Relaxed)).collect();
            *o = PortStats {
                rx_packets: v[0],
                rx_bytes: v[1],
                tx_packets: v[2],
                tx_bytes: v[3],
                tx_ring_full: v[4],
                rx_kernel_dropped: v[5],
                rx_ring_full: v[6],
                rx_fill_empty: v[7],
                tx_invalid: v[8],
                csum_completed: v[9],
            };
        }
        out.busy_clocks = self.busy_clocks.load(Relaxed);
        out.idle_clocks = self.idle_clocks.load(Relaxed);
        out.loops = self.loops.load(Relaxed);
        out
    }
}

/// Every named drop counter of every node: (node, counter, description).
pub fn all_error_names() -> impl Iterator<Item = (NodeId, usize, &'static str, &'static str)> {
    NodeId::ALL.iter().flat_map(|&n| {
        n.errors()
            .iter()
            .enumerate()
            .map(move |(i, (c, d))| (n, i, *c, *d))
    })
}
