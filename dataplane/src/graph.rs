//! The packet graph: a vector of frames flows through small nodes, each
//! deciding every packet's next node. Nodes run in a fixed order over their
//! pending queues until all are empty; ICMP errors never cause another error,
//! so the loop ends. All storage is preallocated: nothing here allocates per
//! packet.

use std::net::{IpAddr, Ipv4Addr};

use crate::counters::{clocks, NodeStats, PortStats, WorkerSnapshot, MAX_ERRORS};
use crate::firewall::WorkerFirewall;
use crate::nodes;
use crate::police::{Police, PuntClass};
use crate::reass::Reassembler;
use crate::tables::{Fib, Port};
use crate::trace::{Decision, Tracer};
use crate::{FRAME_SIZE, MAX_BATCH};

/// Packets a vector may hold: what was received plus what nodes made
/// (a fragmented packet becomes two).
pub const MAX_VECTOR: usize = 2 * MAX_BATCH;
/// Spare frames a graph keeps for packets it makes (second fragments).
pub const SPARE_FRAMES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum NodeId {
    EthernetInput,
    Ip6Input,
    Ip6Local,
    Ip6Reassembly,
    DsliteDecap,
    Nat44In,
    Ip4Input,
    Ip4Firewall,
    Nat44Out,
    Ip4Fragment,
    Ip4Rewrite,
    Icmp4Error,
    DsliteEncap,
    Ip6Fragment,
    Ip6Firewall,
    Ip6Forward,
    Icmp6Error,
    Punt,
    InterfaceOutput,
}

pub const NODE_COUNT: usize = 19;

impl NodeId {
    /// Processing order (also the display order).
    pub const ALL: [NodeId; NODE_COUNT] = [
        NodeId::EthernetInput,
        NodeId::Ip6Input,
        NodeId::Ip6Local,
        NodeId::Ip6Reassembly,
        NodeId::DsliteDecap,
        NodeId::Nat44In,
        NodeId::Ip4Input,
        NodeId::Ip4Firewall,
        NodeId::Nat44Out,
        NodeId::Ip4Fragment,
        NodeId::Ip4Rewrite,
        NodeId::Icmp4Error,
        NodeId::DsliteEncap,
        NodeId::Ip6Fragment,
        NodeId::Ip6Firewall,
        NodeId::Ip6Forward,
        NodeId::Icmp6Error,
        NodeId::Punt,
        NodeId::InterfaceOutput,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NodeId::EthernetInput => "ethernet-input",
            NodeId::Ip6Input => "ip6-input",
            NodeId::Ip6Local => "ip6-local",
            NodeId::Ip6Reassembly => "ip6-reassembly",
            NodeId::Ip4Firewall => "ip4-firewall",
            NodeId::Ip4Rewrite => "ip4-rewrite",
            NodeId::Ip6Fragment => "ip6-fragment",
            NodeId::Ip4Fragment => "ip4-fragment",
            NodeId::Ip6Firewall => "ip6-firewall",
            NodeId::DsliteDecap => "dslite-decap",
            NodeId::Nat44In => "nat44-in",
            NodeId::Nat44Out => "nat44-out",
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
            NodeId::Ip6Firewall => nodes::ip6_firewall::Error::NAMES,
            NodeId::Ip6Fragment => nodes::ip6_fragment::Error::NAMES,
            NodeId::Ip4Fragment => nodes::ip4_fragment::Error::NAMES,
            NodeId::Ip4Rewrite => nodes::ip4_rewrite::Error::NAMES,
            NodeId::Ip4Firewall => nodes::ip4_firewall::Error::NAMES,
            NodeId::Ip6Reassembly => nodes::ip6_reassembly::Error::NAMES,
            NodeId::Ip6Local => nodes::ip6_local::Error::NAMES,
            NodeId::DsliteDecap => nodes::dslite_decap::Error::NAMES,
            NodeId::Nat44In => nodes::nat44_in::Error::NAMES,
            NodeId::Nat44Out => nodes::nat44_out::Error::NAMES,
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
            NodeId::Ip6Firewall => nodes::ip6_firewall::process(cx, pkts),
            NodeId::Ip6Fragment => nodes::ip6_fragment::process(cx, pkts),
            NodeId::Ip4Fragment => nodes::ip4_fragment::process(cx, pkts),
            NodeId::Ip4Rewrite => nodes::ip4_rewrite::process(cx, pkts),
            NodeId::Ip4Firewall => nodes::ip4_firewall::process(cx, pkts),
            NodeId::Ip6Reassembly => nodes::ip6_reassembly::process(cx, pkts),
            NodeId::Ip6Local => nodes::ip6_local::process(cx, pkts),
            NodeId::DsliteDecap => nodes::dslite_decap::process(cx, pkts),
            NodeId::Nat44In => nodes::nat44_in::process(cx, pkts),
            NodeId::Nat44Out => nodes::nat44_out::process(cx, pkts),
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
    /// Arrived as a link-layer broadcast or multicast: never forwarded
    /// unless its IP destination is multicast or broadcast, never answered
    /// with an error (RFC 1812 5.3.4, 4.3.2.7; RFC 4443 2.4(e)).
    pub l2_group: bool,
    /// ICMP error to build: (type, code, MTU for "too big").
    pub icmp: (u8, u8, u16),
    /// Next hop for a NeighborMiss punt.
    pub next_hop: IpAddr,
    /// The packet's record in the worker's tracer (index + 1), 0 when
    /// not traced.
    pub trace: u16,
    /// Its punt budget (set by the node that punts it).
    pub class: PuntClass,
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
            l2_group: false,
            icmp: (0, 0, 0),
            next_hop: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            trace: 0,
            class: PuntClass::Other,
        }
    }
}

/// A bounded list of packet indices.
#[derive(Clone)]
pub struct IdxQueue {
    idx: [u16; MAX_VECTOR],
    len: usize,
}

impl Default for IdxQueue {
    fn default() -> Self {
        IdxQueue {
            idx: [0; MAX_VECTOR],
            len: 0,
        }
    }
}

impl IdxQueue {
    #[inline]
    pub fn push(&mut self, i: u16) {
        // A packet sits in at most one queue at a time, so MAX_VECTOR always suffices.
        debug_assert!(self.len < MAX_VECTOR);
        if self.len < MAX_VECTOR {
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
    /// This node's (ok_packets, ok_bytes).
    done: (&'a mut u64, &'a mut u64),
    /// The worker's per-port counters (checksum completions).
    ports: &'a mut [PortStats; 2],
    pub icmp_limit: &'a mut RateLimit,
    /// The punt budgets and the reserve (the punt node and the nodes that
    /// classify what they punt).
    pub police: &'a mut Police,
    pub now_ns: u64,
    /// `now_ns` in whole seconds: the session table's clock.
    pub now_s: u32,
    pub fw: &'a mut WorkerFirewall,
    pub reass: &'a mut Reassembler,
    /// Frames for packets the graph makes; addresses of free UMEM chunks.
    spare: &'a mut Vec<u64>,
    /// Packets in the vector (received + made).
    count: &'a mut usize,
    /// Room to copy a packet aside (reassembly reads one frame while
    /// writing another place of the same memory).
    pub scratch: &'a mut [u8],
    /// The node running (for the drop log).
    pub node: NodeId,
    frag_id: &'a mut u32,
    /// Some packet of this vector is traced.
    tracing: bool,
    tracer: &'a mut Tracer,
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

    /// The packet's chunk together with the scratch buffer and the
    /// reassembler, borrowed at once (reassembly copies a fragment aside,
    /// then writes the datagram into the frame).
    #[inline]
    pub fn chunk_scratch_reass(
        &mut self,
        i: u16,
    ) -> (&mut [u8], usize, &mut [u8], &mut Reassembler) {
        let addr = self.meta[usize::from(i)].addr as usize;
        let base = addr & !(FRAME_SIZE - 1);
        let end = (base + FRAME_SIZE).min(self.mem.len());
        (
            &mut self.mem[base..end],
            addr - base,
            &mut *self.scratch,
            &mut *self.reass,
        )
    }

    /// Two packets' chunks at once (a fragment copied into a new frame):
    /// (chunk of i, offset of i, chunk of j, offset of j). None if they
    /// share a chunk, which two live packets never do.
    pub fn two_chunks(&mut self, i: u16, j: u16) -> Option<(&mut [u8], usize, &mut [u8], usize)> {
        let (a, b) = (
            self.meta[usize::from(i)].addr as usize,
            self.meta[usize::from(j)].addr as usize,
        );
        let (ba, bb) = (a & !(FRAME_SIZE - 1), b & !(FRAME_SIZE - 1));
        if ba == bb || ba + FRAME_SIZE > self.mem.len() || bb + FRAME_SIZE > self.mem.len() {
            return None;
        }
        let (lo, hi) = (ba.min(bb), ba.max(bb));
        let (left, right) = self.mem.split_at_mut(hi);
        let (lo_chunk, hi_chunk) = (&mut left[lo..lo + FRAME_SIZE], &mut right[..FRAME_SIZE]);
        Some(if ba < bb {
            (lo_chunk, a - ba, hi_chunk, b - bb)
        } else {
            (hi_chunk, a - ba, lo_chunk, b - bb)
        })
    }

    /// The next identification for a fragmented packet of ours.
    #[inline]
    pub fn next_frag_id(&mut self) -> u32 {
        *self.frag_id = self.frag_id.wrapping_add(1);
        *self.frag_id
    }

    /// The packet's bytes and the worker's firewall state, borrowed at
    /// once (the firewall nodes read one while updating the other).
    #[inline]
    pub fn data_fw(&mut self, i: u16) -> (&mut [u8], &mut WorkerFirewall) {
        let m = self.meta[usize::from(i)];
        let addr = m.addr as usize;
        let base = addr & !(FRAME_SIZE - 1);
        let end = (base + FRAME_SIZE).min(self.mem.len());
        let off = addr - base;
        let stop = (off + m.len as usize).min(end - base);
        (&mut self.mem[base..end][off..stop], &mut *self.fw)
    }

    /// The packet's bytes (Ethernet header first).
    #[inline]
    pub fn data(&mut self, i: u16) -> &mut [u8] {
        let m = self.meta[usize::from(i)];
        let (chunk, off) = self.chunk(i);
        let end = (off + m.len as usize).min(chunk.len());
        &mut chunk[off..end]
    }

    /// Record this node's decision about a traced packet.
    #[inline]
    fn trace(&mut self, i: u16, decision: Decision) {
        if self.tracing {
            let mark = self.meta[usize::from(i)].trace;
            if mark != 0 {
                self.tracer.step(mark, self.node, decision);
            }
        }
    }

    #[inline]
    pub fn next(&mut self, i: u16, node: NodeId) {
        self.trace(i, Decision::Next(node));
        self.queues[node as usize].push(i);
    }

    /// Drop with this node's named reason.
    #[inline]
    pub fn drop(&mut self, i: u16, reason: usize) {
        self.trace(i, Decision::Drop(reason as u8));
        self.errors[reason] += 1;
        self.out.drop.push(i);
    }

    /// Onto the TX ring of the packet's egress port (interface-output).
    #[inline]
    pub fn transmit(&mut self, i: u16) {
        let port = self.meta[usize::from(i)].tx;
        self.trace(i, Decision::Tx(port));
        self.out.tx[port.index()].push(i);
    }

    /// Into the punt queue to the control thread (the punt node).
    #[inline]
    pub fn punt_out(&mut self, i: u16) {
        let reason = self.meta[usize::from(i)].punt;
        self.trace(i, Decision::Punt(reason));
        self.out.punt.push(i);
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
        if reason == PuntReason::NeighborMiss {
            m.class = PuntClass::Held;
        }
        self.next(i, NodeId::Punt);
    }

    /// Punt a packet for the router itself, with its budget class.
    #[inline]
    pub fn punt_local(&mut self, i: u16, port: Port, class: PuntClass, next_hop: IpAddr) {
        self.meta[usize::from(i)].class = class;
        self.punt(i, port, PuntReason::Local, next_hop);
    }

    /// A packet of `bytes` this node did its job on (see `NodeStats::ok_packets`).
    #[inline]
    pub fn done(&mut self, bytes: u32) {
        *self.done.0 += 1;
        *self.done.1 += u64::from(bytes);
    }

    /// A partial checksum completed on a packet received on `port`.
    #[inline]
    pub fn csum_completed(&mut self, port: Port) {
        self.ports[port.index()].csum_completed += 1;
    }

    /// Count without dropping (e.g. a punt reason).
    #[inline]
    pub fn count(&mut self, reason: usize) {
        self.errors[reason] += 1;
    }

    /// A policy drop: counted, and logged (rate-limited) when the policy
    /// says so. `flow` = (src, dst, proto, sport, dport).
    pub fn drop_logged(&mut self, i: u16, reason: usize, flow: ([u8; 16], [u8; 16], u8, u16, u16)) {
        self.drop(i, reason);
        if self.fib.firewall.log_drops {
            self.fw.log_drop(crate::firewall::DropEvent {
                node: self.node,
                reason: reason as u8,
                at_s: self.now_s,
                src: flow.0,
                dst: flow.1,
                proto: flow.2,
                sport: flow.3,
                dport: flow.4,
            });
        }
    }

    /// The packet's data went into another packet (a fragment into its
    /// datagram): free its frame without counting a drop.
    #[inline]
    pub fn consume(&mut self, i: u16) {
        self.trace(i, Decision::Consumed);
        self.out.drop.push(i);
    }

    /// A new packet in a spare frame, at the usual headroom: its index, or
    /// `None` when there is no frame or no room in the vector.
    pub fn new_packet(&mut self, len: u32, rx: Port) -> Option<u16> {
        if *self.count >= MAX_VECTOR || self.spare.is_empty() {
            return None;
        }
        let base = self.spare.pop()?;
        let i = *self.count;
        *self.count += 1;
        self.meta[i] = Meta::new(base + crate::XDP_HEADROOM as u64, len, rx);
        Some(i as u16)
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
    /// Punt budgets per port and class, and the reserve.
    pub police: Police,
    pub fw: WorkerFirewall,
    pub reass: Reassembler,
    /// Free frames (chunk addresses) the graph may use for new packets;
    /// the worker tops it up from its UMEM before each vector.
    pub spare: Vec<u64>,
    /// Packets in the last vector, made ones included (`meta[..count]`).
    pub count: usize,
    scratch: Vec<u8>,
    /// Identification of the outer packets this worker fragments.
    frag_id: u32,
    /// `trace add`: marks packets and records their path.
    pub tracer: Tracer,
}

/// Outer fragments from the AFTR: datagrams in reassembly per worker, the
/// largest one (whatever a frame holds after its Ethernet header, the MTU
/// bound the config enforces; ip4-rewrite fragments what exceeds
/// `lan.mtu` after decapsulation), and how long
/// a datagram may take (RFC 8200 allows 60 s; a tunnel peer one hop away
/// needs far less, and a short timeout frees buffers under attack).
pub const REASS_CONTEXTS: usize = 64;
pub const REASS_MAX_LEN: usize = crate::FRAME_SIZE - crate::XDP_HEADROOM - 14;
pub const REASS_TIMEOUT_NS: u64 = 2_000_000_000;

impl Default for Graph {
    fn default() -> Self {
        Self::new()
    }
}

impl Graph {
    /// A graph with its own small session table (tests, tools).
    pub fn new() -> Self {
        Self::with_firewall(WorkerFirewall::standalone(4096))
    }

    /// A worker's graph, sharing the session table in `fw`.
    pub fn with_firewall(fw: WorkerFirewall) -> Self {
        Graph {
            meta: vec![Meta::new(0, 0, Port::Wan); MAX_VECTOR],
            queues: Default::default(),
            out: Outputs::default(),
            stats: WorkerSnapshot::default(),
            icmp_limit: RateLimit::new(1000, 100),
            police: Police::default(),
            fw,
            reass: Reassembler::new(REASS_CONTEXTS, REASS_MAX_LEN, REASS_TIMEOUT_NS),
            spare: Vec::with_capacity(SPARE_FRAMES),
            count: 0,
            scratch: vec![0u8; FRAME_SIZE],
            // Unpredictable start (RFC 7739): time-based is enough here.
            frag_id: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32).rotate_left(16))
                .unwrap_or(1),
            tracer: Tracer::new(None, 0),
        }
    }

    /// Process `n` received frames whose metadata is in `self.meta[..n]`.
    /// Afterwards `self.out` says what to do with each.
    pub fn run(&mut self, fib: &Fib, mem: &mut [u8], n: usize, now_ns: u64) {
        let n = n.min(MAX_BATCH);
        self.count = n;
        self.out.clear();
        for i in 0..n {
            self.queues[NodeId::EthernetInput as usize].push(i as u16);
        }
        let traced = self.tracer.begin(n, self.meta[0].rx);
        if traced > 0 {
            self.mark_traced(mem, traced);
        }
        let now_s = (now_ns / 1_000_000_000) as u32;
        let mut work = [0u16; MAX_VECTOR];
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
                done: (&mut stats.ok_packets, &mut stats.ok_bytes),
                ports: &mut self.stats.ports,
                icmp_limit: &mut self.icmp_limit,
                police: &mut self.police,
                now_ns,
                now_s,
                fw: &mut self.fw,
                reass: &mut self.reass,
                spare: &mut self.spare,
                count: &mut self.count,
                scratch: &mut self.scratch,
                node,
                frag_id: &mut self.frag_id,
                tracing: traced > 0,
                tracer: &mut self.tracer,
            };
            node.process(&mut cx, &work[..count]);
            stats.calls += 1;
            stats.vectors += count as u64;
            stats.clocks += clocks().wrapping_sub(t0);
        }
        if traced > 0 {
            self.tracer.finish();
        }
    }

    /// Start records for the first `k` packets of the vector.
    #[cold]
    fn mark_traced(&mut self, mem: &[u8], k: usize) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        for m in &mut self.meta[..k] {
            let start = (m.addr as usize).min(mem.len());
            let end = (start + m.len as usize).min(mem.len());
            m.trace = self.tracer.start(m.rx, &mem[start..end], now);
        }
    }
}
