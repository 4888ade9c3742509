//! The packet graph: a vector of frames flows through small nodes, each
//! deciding every packet's next node. Nodes run in a fixed order over their
//! pending queues until all are empty; ICMP errors never cause another error,
//! so the loop ends. All storage is preallocated: nothing here allocates per
//! packet.

use std::net::{IpAddr, Ipv4Addr};

use crate::counters::{clocks, NodeStats, WorkerSnapshot, MAX_ERRORS};
use crate::nodes;
use crate::tables::{Fib, Port};
use crate::{FRAME_SIZE, MAX_BATCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum NodeId {
    EthernetInput,
    Ip6Input,
    DsliteDecap,
    Ip4Input,
    Icmp4Error,
    DsliteEncap,
    Ip6Forward,
    Icmp6Error,
    Punt,
    InterfaceOutput,
}

pub const NODE_COUNT: usize = 10;

impl NodeId {
    /// Processing order (also the display order).
    pub const ALL: [NodeId; NODE_COUNT] = [
        NodeId::EthernetInput,
        NodeId::Ip6Input,
        NodeId::DsliteDecap,
        NodeId::Ip4Input,
        NodeId::Icmp4Error,
        NodeId::DsliteEncap,
        NodeId::Ip6Forward,
        NodeId::Icmp6Error,
        NodeId::Punt,
        NodeId::InterfaceOutput,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NodeId::EthernetInput => "ethernet-input",
            NodeId::Ip6Input => "ip6-input",
            NodeId::DsliteDecap => "dslite-decap",
            NodeId::Ip4Input => "ip4-input",
            NodeId::Icmp4Error => "ip4-icmp-error",
            NodeId::DsliteEncap => "dslite-encap",
            NodeId::Ip6Forward => "ip6-forward",
            NodeId::Icmp6Error => "ip6-icmp-error",
            NodeId::Punt => "punt",
            NodeId::InterfaceOutput => "interface-output",
        }
    }

    /// The node's drop counters: (name, description).
    pub fn errors(self) -> &'static [(&'static str, &'static str)] {
        match self {
            NodeId::EthernetInput => nodes::ethernet_input::Error::NAMES,
            NodeId::Ip6Input => nodes::ip6_input::Error::NAMES,
            NodeId::DsliteDecap => nodes::dslite_decap::Error::NAMES,
            NodeId::Ip4Input => nodes::ip4_input::Error::NAMES,
            NodeId::Icmp4Error => nodes::icmp4_error::Error::NAMES,
            NodeId::DsliteEncap => nodes::dslite_encap::Error::NAMES,
            NodeId::Ip6Forward => nodes::ip6_forward::Error::NAMES,
            NodeId::Icmp6Error => nodes::icmp6_error::Error::NAMES,
            NodeId::Punt => nodes::punt::Error::NAMES,
            NodeId::InterfaceOutput => nodes::interface_output::Error::NAMES,
        }
    }

    fn process(self, cx: &mut Cx, pkts: &[u16]) {
        match self {
            NodeId::EthernetInput => nodes::ethernet_input::process(cx, pkts),
            NodeId::Ip6Input => nodes::ip6_input::process(cx, pkts),
            NodeId::DsliteDecap => nodes::dslite_decap::process(cx, pkts),
            NodeId::Ip4Input => nodes::ip4_input::process(cx, pkts),
            NodeId::Icmp4Error => nodes::icmp4_error::process(cx, pkts),
            NodeId::DsliteEncap => nodes::dslite_encap::process(cx, pkts),
            NodeId::Ip6Forward => nodes::ip6_forward::process(cx, pkts),
            NodeId::Icmp6Error => nodes::icmp6_error::process(cx, pkts),
            NodeId::Punt => nodes::punt::process(cx, pkts),
            NodeId::InterfaceOutput => nodes::interface_output::process(cx, pkts),
        }
    }
}

/// Why a frame goes to the control thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PuntReason {
    /// Addressed to the router itself (ARP, NDP, ICMP echo, later DHCP/DNS).
    Local,
    /// Fully built except the destination MAC: the next hop is unresolved.
    NeighborMiss,
}

/// Per-packet state carried between nodes (array-of-structs, 48 bytes).
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    /// Offset of the Ethernet header in the frame memory.
    pub addr: u64,
    pub len: u32,
    pub rx: Port,
    pub tx: Port,
    pub punt: PuntReason,
    /// Built by the router (an ICMP error): never forwarded as transit, never answered with an error.
    pub local: bool,
    /// ICMP error to build: (type, code, MTU for "too big").
    pub icmp: (u8, u8, u16),
    /// Next hop for a NeighborMiss punt.
    pub next_hop: IpAddr,
}

impl Meta {
    pub fn new(addr: u64, len: u32, rx: Port) -> Self {
        Meta {
            addr,
            len,
            rx,
            tx: rx,
            punt: PuntReason::Local,
            local: false,
            icmp: (0, 0, 0),
            next_hop: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        }
    }
}

/// A bounded list of packet indices.
#[derive(Clone)]
pub struct IdxQueue {
    idx: [u16; MAX_BATCH],
    len: usize,
}

impl Default for IdxQueue {
    fn default() -> Self {
        IdxQueue {
            idx: [0; MAX_BATCH],
            len: 0,
        }
    }
}

impl IdxQueue {
    #[inline]
    pub fn push(&mut self, i: u16) {
        // A packet sits in at most one queue at a time, so MAX_BATCH always suffices.
        debug_assert!(self.len < MAX_BATCH);
        if self.len < MAX_BATCH {
            self.idx[self.len] = i;
            self.len += 1;
        }
    }
    pub fn as_slice(&self) -> &[u16] {
        &self.idx[..self.len]
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// Token bucket for ICMP errors (RFC 4443 2.4(f), RFC 1812 4.3.2.8).
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    pub per_sec: u64,
    pub burst: u64,
    tokens: u64,
    last_ns: u64,
}

impl RateLimit {
    pub fn new(per_sec: u64, burst: u64) -> Self {
        RateLimit {
            per_sec,
            burst,
            tokens: burst,
            last_ns: 0,
        }
    }
    pub fn allow(&mut self, now_ns: u64) -> bool {
        let elapsed = now_ns.saturating_sub(self.last_ns);
        let add = elapsed.saturating_mul(self.per_sec) / 1_000_000_000;
        if add > 0 {
            self.tokens = (self.tokens + add).min(self.burst);
            self.last_ns = now_ns;
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

/// What a node sees: the snapshot, the frames, and where to send packets.
pub struct Cx<'a> {
    pub fib: &'a Fib,
    mem: &'a mut [u8],
    pub meta: &'a mut [Meta],
    queues: &'a mut [IdxQueue; NODE_COUNT],
    pub out: &'a mut Outputs,
    errors: &'a mut [u64; MAX_ERRORS],
    pub icmp_limit: &'a mut RateLimit,
    pub now_ns: u64,
}

impl<'a> Cx<'a> {
    /// The whole frame chunk holding packet `i`, and the packet's offset in
    /// it (the headroom available for growing the packet at the front).
    #[inline]
    pub fn chunk(&mut self, i: u16) -> (&mut [u8], usize) {
        let addr = self.meta[usize::from(i)].addr as usize;
        let base = addr & !(FRAME_SIZE - 1);
        let end = (base + FRAME_SIZE).min(self.mem.len());
        (&mut self.mem[base..end], addr - base)
    }

    /// The packet's bytes (Ethernet header first).
    #[inline]
    pub fn data(&mut self, i: u16) -> &mut [u8] {
        let m = self.meta[usize::from(i)];
        let (chunk, off) = self.chunk(i);
        let end = (off + m.len as usize).min(chunk.len());
        &mut chunk[off..end]
    }

    #[inline]
    pub fn next(&mut self, i: u16, node: NodeId) {
        self.queues[node as usize].push(i);
    }

    /// Drop with this node's named reason.
    #[inline]
    pub fn drop(&mut self, i: u16, reason: usize) {
        self.errors[reason] += 1;
        self.out.drop.push(i);
    }

    #[inline]
    pub fn to_output(&mut self, i: u16, port: Port) {
        self.meta[usize::from(i)].tx = port;
        self.next(i, NodeId::InterfaceOutput);
    }

    #[inline]
    pub fn punt(&mut self, i: u16, port: Port, reason: PuntReason, next_hop: IpAddr) {
        let m = &mut self.meta[usize::from(i)];
        m.tx = port;
        m.punt = reason;
        m.next_hop = next_hop;
        self.next(i, NodeId::Punt);
    }

    /// Count without dropping (e.g. a punt reason).
    #[inline]
    pub fn count(&mut self, reason: usize) {
        self.errors[reason] += 1;
    }
}

/// Where packets end up after a vector: transmit per port, punt, or drop
/// (its frame goes back to the free list).
#[derive(Default)]
pub struct Outputs {
    pub tx: [IdxQueue; 2],
    pub punt: IdxQueue,
    pub drop: IdxQueue,
}

impl Outputs {
    pub fn clear(&mut self) {
        self.tx[0].clear();
        self.tx[1].clear();
        self.punt.clear();
        self.drop.clear();
    }
}

/// One worker's graph: preallocated vector, queues and counters.
pub struct Graph {
    pub meta: Vec<Meta>,
    queues: [IdxQueue; NODE_COUNT],
    pub out: Outputs,
    pub stats: WorkerSnapshot,
    pub icmp_limit: RateLimit,
}

impl Default for Graph {
    fn default() -> Self {
        Self::new()
    }
}

impl Graph {
    pub fn new() -> Self {
        Graph {
            meta: vec![Meta::new(0, 0, Port::Wan); MAX_BATCH],
            queues: Default::default(),
            out: Outputs::default(),
            stats: WorkerSnapshot::default(),
            icmp_limit: RateLimit::new(1000, 100),
        }
    }

    /// Process `n` received frames whose metadata is in `self.meta[..n]`.
    /// Afterwards `self.out` says what to do with each.
    pub fn run(&mut self, fib: &Fib, mem: &mut [u8], n: usize, now_ns: u64) {
        let n = n.min(MAX_BATCH);
        self.out.clear();
        for i in 0..n {
            self.queues[NodeId::EthernetInput as usize].push(i as u16);
        }
        let mut work = [0u16; MAX_BATCH];
        while let Some(pos) = self.queues.iter().position(|q| !q.is_empty()) {
            let node = NodeId::ALL[pos];
            let q = &mut self.queues[pos];
            let count = q.len();
            work[..count].copy_from_slice(q.as_slice());
            q.clear();

            let t0 = clocks();
            let stats: &mut NodeStats = &mut self.stats.nodes[pos];
            let mut cx = Cx {
                fib,
                mem: &mut *mem,
                meta: &mut self.meta[..],
                queues: &mut self.queues,
                out: &mut self.out,
                errors: &mut stats.errors,
                icmp_limit: &mut self.icmp_limit,
                now_ns,
            };
            node.process(&mut cx, &work[..count]);
            stats.calls += 1;
            stats.vectors += count as u64;
            stats.clocks += clocks().wrapping_sub(t0);
        }
    }
}
