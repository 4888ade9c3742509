//! Packet trace (VPP's `trace add`): the control thread arms a budget of N
//! packets; workers mark that many received packets, record every node's
//! decision about them, and hand the finished records over after the
//! vector.
//!
//! Costs when off: one relaxed load per vector and one predictable branch
//! per decision. Records are preallocated; the hand-over uses `try_lock`
//! so a worker never waits on a control thread that is reading the store
//! (a record that finds the lock taken is counted as lost).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;

use crate::graph::{NodeId, PuntReason};
use crate::tables::Port;
use crate::MAX_BATCH;

/// Most packets one `trace add` may ask for, and most records kept.
pub const TRACE_MAX: u32 = 1000;
/// Decisions recorded per packet; a longer path keeps its first ones.
pub const MAX_STEPS: usize = 24;
/// Bytes of the received frame kept for the summary line.
pub const SNAP_LEN: usize = 128;

/// What a node decided about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Next(NodeId),
    /// Dropped with the node's counter of this index.
    Drop(u8),
    Tx(Port),
    Punt(PuntReason),
    /// Its data went into another packet (a fragment into its datagram).
    Consumed,
}

#[derive(Clone, Copy, Debug)]
pub struct Step {
    pub node: NodeId,
    pub decision: Decision,
}

/// One traced packet.
#[derive(Clone, Debug)]
pub struct PacketTrace {
    pub seq: u64,
    pub worker: u16,
    pub rx: Port,
    pub len: u32,
    /// Wall clock when the vector was received.
    pub at_unix_ns: u64,
    pub snap: [u8; SNAP_LEN],
    pub snap_len: u16,
    pub steps: [Step; MAX_STEPS],
    pub nsteps: u8,
    /// Decisions beyond `MAX_STEPS`, not kept.
    pub steps_lost: u16,
}

impl PacketTrace {
    fn empty() -> Self {
        PacketTrace {
            seq: 0,
            worker: 0,
            rx: Port::Wan,
            len: 0,
            at_unix_ns: 0,
            snap: [0; SNAP_LEN],
            snap_len: 0,
            steps: [Step {
                node: NodeId::EthernetInput,
                decision: Decision::Consumed,
            }; MAX_STEPS],
            nsteps: 0,
            steps_lost: 0,
        }
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps[..usize::from(self.nsteps)]
    }

    pub fn snap(&self) -> &[u8] {
        &self.snap[..usize::from(self.snap_len)]
    }

    /// One line about the packet as received (`IPv4 a:p -> b:q tcp`).
    pub fn summary(&self) -> String {
        summarize(self.snap())
    }
}

impl Decision {
    /// As `ipoectl show trace` prints it, for a decision of `node`.
    pub fn describe(self, node: NodeId) -> String {
        match self {
            Decision::Next(n) => n.name().to_owned(),
            Decision::Drop(r) => format!(
                "drop {}",
                node.errors()
                    .get(usize::from(r))
                    .map_or("?", |(name, _)| name)
            ),
            Decision::Tx(p) => format!("tx {}", p.name()),
            Decision::Punt(PuntReason::Local) => "punt local".to_owned(),
            Decision::Punt(PuntReason::NeighborMiss) => "punt neighbor-miss".to_owned(),
            Decision::Consumed => "consumed".to_owned(),
        }
    }
}

/// Shared by the control thread and every worker.
#[derive(Debug)]
pub struct TraceControl {
    /// Packets still to trace, over all workers.
    budget: AtomicU32,
    /// Trace only packets received on this port (`Port::index() + 1`), 0
    /// for both.
    only_rx: AtomicU8,
    seq: AtomicU64,
    lost: AtomicU64,
    store: Mutex<VecDeque<PacketTrace>>,
}

impl Default for TraceControl {
    fn default() -> Self {
        TraceControl {
            budget: AtomicU32::new(0),
            only_rx: AtomicU8::new(0),
            seq: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            store: Mutex::new(VecDeque::with_capacity(TRACE_MAX as usize)),
        }
    }
}

impl TraceControl {
    /// Trace the next `n` packets (added to what is still armed, at most
    /// `TRACE_MAX`); returns the budget now armed.
    pub fn add(&self, n: u32) -> u32 {
        self.add_on(n, None)
    }

    /// `add`, tracing only packets received on `rx` (`None`: both ports;
    /// the last call decides).
    pub fn add_on(&self, n: u32, rx: Option<Port>) -> u32 {
        self.only_rx
            .store(rx.map_or(0, |p| p.index() as u8 + 1), Relaxed);
        let mut armed = 0;
        let _ = self.budget.fetch_update(Relaxed, Relaxed, |b| {
            armed = b.saturating_add(n).min(TRACE_MAX);
            Some(armed)
        });
        armed
    }

    pub fn armed(&self) -> u32 {
        self.budget.load(Relaxed)
    }

    /// Records that could not be handed over (store busy).
    pub fn lost(&self) -> u64 {
        self.lost.load(Relaxed)
    }

    /// Disarm and forget every record.
    pub fn clear(&self) {
        self.budget.store(0, Relaxed);
        self.lost.store(0, Relaxed);
        if let Ok(mut s) = self.store.lock() {
            s.clear();
        }
    }

    /// The records, oldest first.
    pub fn records(&self) -> Vec<PacketTrace> {
        let mut v: Vec<PacketTrace> = match self.store.lock() {
            Ok(s) => s.iter().cloned().collect(),
            Err(_) => Vec::new(),
        };
        v.sort_by_key(|r| r.seq);
        v
    }

    /// Claim up to `want` packets of the budget for a vector from `rx`.
    fn claim(&self, want: u32, rx: Port) -> u32 {
        if self.budget.load(Relaxed) == 0 {
            return 0;
        }
        let only = self.only_rx.load(Relaxed);
        if only != 0 && usize::from(only - 1) != rx.index() {
            return 0;
        }
        let mut got = 0;
        let _ = self.budget.fetch_update(Relaxed, Relaxed, |b| {
            got = b.min(want);
            (got > 0).then_some(b - got)
        });
        got
    }
}

/// A worker's side: the records of the vector being processed.
pub struct Tracer {
    ctl: Option<std::sync::Arc<TraceControl>>,
    worker: u16,
    /// Records of this vector; `meta.trace` = index + 1.
    slots: Vec<PacketTrace>,
    used: usize,
}

impl Tracer {
    pub fn new(ctl: Option<std::sync::Arc<TraceControl>>, worker: u16) -> Self {
        Tracer {
            ctl,
            worker,
            slots: vec![PacketTrace::empty(); MAX_BATCH],
            used: 0,
        }
    }

    /// How many of the `n` packets received on `rx` to trace (the first
    /// ones).
    #[inline]
    pub fn begin(&mut self, n: usize, rx: Port) -> usize {
        self.used = 0;
        match &self.ctl {
            Some(c) if n > 0 => c.claim(n.min(MAX_BATCH) as u32, rx) as usize,
            _ => 0,
        }
    }

    /// Start the record of a received packet; returns its mark for
    /// `Meta::trace`.
    pub fn start(&mut self, rx: Port, frame: &[u8], at_unix_ns: u64) -> u16 {
        let Some(ctl) = &self.ctl else { return 0 };
        if self.used >= self.slots.len() {
            return 0;
        }
        let r = &mut self.slots[self.used];
        self.used += 1;
        r.seq = ctl.seq.fetch_add(1, Relaxed);
        r.worker = self.worker;
        r.rx = rx;
        r.len = frame.len() as u32;
        r.at_unix_ns = at_unix_ns;
        let n = frame.len().min(SNAP_LEN);
        r.snap[..n].copy_from_slice(&frame[..n]);
        r.snap_len = n as u16;
        r.nsteps = 0;
        r.steps_lost = 0;
        self.used as u16
    }

    #[cold]
    pub fn step(&mut self, mark: u16, node: NodeId, decision: Decision) {
        let Some(r) = self.slots.get_mut(usize::from(mark).wrapping_sub(1)) else {
            return;
        };
        if usize::from(r.nsteps) < MAX_STEPS {
            r.steps[usize::from(r.nsteps)] = Step { node, decision };
            r.nsteps += 1;
        } else {
            r.steps_lost = r.steps_lost.saturating_add(1);
        }
    }

    /// Hand this vector's records to the store.
    pub fn finish(&mut self) {
        let (Some(ctl), used) = (&self.ctl, self.used) else {
            return;
        };
        if used == 0 {
            return;
        }
        self.used = 0;
        match ctl.store.try_lock() {
            Ok(mut store) => {
                for r in &self.slots[..used] {
                    if store.len() >= TRACE_MAX as usize {
                        store.pop_front();
                    }
                    store.push_back(r.clone());
                }
            }
            Err(_) => {
                ctl.lost.fetch_add(used as u64, Relaxed);
            }
        }
    }
}

/// One line about a frame: its addresses, protocol and ports, through a
/// DS-Lite outer header when there is one.
pub fn summarize(frame: &[u8]) -> String {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let mut s = String::new();
    let Ok(p) = SlicedPacket::from_ethernet(frame) else {
        if frame.len() >= 14 {
            let _ = write!(
                s,
                "ethertype 0x{:04x} ({} bytes, not parsed)",
                u16::from_be_bytes([frame[12], frame[13]]),
                frame.len()
            );
        } else {
            s.push_str("runt frame");
        }
        return s;
    };
    let ports = |t: &Option<TransportSlice>| -> (String, String) {
        match t {
            Some(TransportSlice::Tcp(t)) => (
                format!(":{}", t.source_port()),
                format!(":{} tcp{}", t.destination_port(), tcp_flags(t)),
            ),
            Some(TransportSlice::Udp(u)) => (
                format!(":{}", u.source_port()),
                format!(":{} udp", u.destination_port()),
            ),
            Some(TransportSlice::Icmpv4(i)) => {
                (String::new(), format!(" icmp type {}", i.type_u8()))
            }
            Some(TransportSlice::Icmpv6(i)) => {
                (String::new(), format!(" icmpv6 type {}", i.type_u8()))
            }
            _ => (String::new(), String::new()),
        }
    };
    match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            let (sp, dp) = ports(&p.transport);
            let _ = write!(
                s,
                "IPv4 {}{} -> {}{}",
                h.source_addr(),
                sp,
                h.destination_addr(),
                dp
            );
            if p.transport.is_none() {
                let _ = write!(s, " proto {}", h.protocol().0);
            }
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            let _ = write!(s, "IPv6 {} -> {}", h.source_addr(), h.destination_addr());
            let proto = ip.payload().ip_number.0;
            if proto == 4 {
                // DS-Lite: summarize the inner IPv4 packet too.
                let inner = ip.payload().payload;
                if let Ok(i) = etherparse::SlicedPacket::from_ip(inner) {
                    if let Some(NetSlice::Ipv4(v4)) = &i.net {
                        let (sp, dp) = ports(&i.transport);
                        let h = v4.header();
                        let _ = write!(
                            s,
                            " ipip6 [IPv4 {}{} -> {}{}]",
                            h.source_addr(),
                            sp,
                            h.destination_addr(),
                            dp
                        );
                        return s;
                    }
                }
                s.push_str(" ipip6");
            } else {
                let (sp, dp) = ports(&p.transport);
                if p.transport.is_some() {
                    // Ports belong after the addresses.
                    s.clear();
                    let _ = write!(
                        s,
                        "IPv6 [{}]{} -> [{}]{}",
                        h.source_addr(),
                        sp,
                        h.destination_addr(),
                        dp
                    );
                } else {
                    let _ = write!(s, " next header {proto}");
                }
            }
        }
        Some(NetSlice::Arp(_)) => s.push_str("ARP"),
        None => s.push_str("not IP"),
    }
    s
}

fn tcp_flags(t: &etherparse::TcpSlice) -> String {
    let mut f = String::new();
    for (on, name) in [
        (t.syn(), "SYN"),
        (t.ack(), "ACK"),
        (t.fin(), "FIN"),
        (t.rst(), "RST"),
    ] {
        if on {
            f.push(if f.is_empty() { ' ' } else { ',' });
            f.push_str(name);
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn budget_is_claimed_once_and_capped() {
        let c = TraceControl::default();
        assert_eq!(c.add(5), 5);
        assert_eq!(c.add(2000), TRACE_MAX);
        c.clear();
        c.add(5);
        assert_eq!(c.claim(3, Port::Wan), 3);
        assert_eq!(c.claim(3, Port::Lan), 2);
        assert_eq!(c.claim(3, Port::Wan), 0);
        c.add_on(4, Some(Port::Lan));
        assert_eq!(c.claim(3, Port::Wan), 0, "only LAN packets");
        assert_eq!(c.claim(3, Port::Lan), 3);
    }

    #[test]
    fn records_reach_the_store_in_order() {
        let c = Arc::new(TraceControl::default());
        c.add(3);
        let mut t = Tracer::new(Some(c.clone()), 1);
        assert_eq!(t.begin(10, Port::Lan), 3);
        let marks: Vec<u16> = (0..3).map(|_| t.start(Port::Lan, &[0u8; 60], 7)).collect();
        assert_eq!(marks, vec![1, 2, 3]);
        t.step(2, NodeId::EthernetInput, Decision::Next(NodeId::Ip4Input));
        t.step(2, NodeId::Ip4Input, Decision::Drop(0));
        t.step(0, NodeId::Ip4Input, Decision::Consumed); // untraced: ignored
        t.finish();
        let r = c.records();
        assert_eq!(r.len(), 3);
        assert_eq!(r[1].steps().len(), 2);
        assert_eq!(
            r[1].steps()[1].decision.describe(NodeId::Ip4Input),
            format!("drop {}", NodeId::Ip4Input.errors()[0].0)
        );
        assert_eq!(t.begin(10, Port::Lan), 0);
    }

    #[test]
    fn long_paths_keep_their_first_steps() {
        let c = Arc::new(TraceControl::default());
        c.add(1);
        let mut t = Tracer::new(Some(c.clone()), 0);
        t.begin(1, Port::Wan);
        let m = t.start(Port::Wan, &[1u8; 300], 0);
        for _ in 0..30 {
            t.step(m, NodeId::Ip6Input, Decision::Next(NodeId::Ip6Forward));
        }
        t.finish();
        let r = &c.records()[0];
        assert_eq!(r.steps().len(), MAX_STEPS);
        assert_eq!(r.steps_lost, 6);
        assert_eq!(r.snap().len(), SNAP_LEN);
        assert_eq!(r.len, 300);
    }

    #[test]
    fn summaries_of_hostile_and_real_frames() {
        assert_eq!(summarize(&[1, 2]), "runt frame");
        let frame = crate::testkit::lan_udp4(0, 100);
        assert_eq!(
            summarize(&frame),
            format!(
                "IPv4 {}:1024 -> {}:443 udp",
                crate::testkit::HOST4,
                crate::testkit::SERVER4
            )
        );
        let outer = crate::testkit::aftr_ipip6(0, 140);
        assert!(
            summarize(&outer).contains(" ipip6 [IPv4 "),
            "{}",
            summarize(&outer)
        );
        let mut x = 1u32;
        for len in 0..2000 {
            let f: Vec<u8> = (0..len % 200)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = summarize(&f);
        }
    }

    /// The graph marks the first packets of a vector and records the
    /// decision of every node they pass; the rest are not traced.
    #[test]
    fn graph_records_the_path_of_an_encapsulated_packet() {
        use crate::testkit::{lab_fib, lan_udp4, unlimited_graph, FrameArena};
        let c = Arc::new(TraceControl::default());
        let mut g = unlimited_graph();
        g.tracer = Tracer::new(Some(c.clone()), 0);
        let fib = lab_fib();
        let frames: Vec<Vec<u8>> = (0..4).map(|f| lan_udp4(f, 100)).collect();
        let refs: Vec<(Port, &[u8])> = frames.iter().map(|f| (Port::Lan, &f[..])).collect();
        let mut arena = FrameArena::new(8);
        arena.run(&mut g, &fib, &refs, 1);
        assert!(c.records().is_empty(), "nothing armed, nothing traced");
        c.add(3);
        arena.run(&mut g, &fib, &refs[..2], 2);
        arena.run(&mut g, &fib, &refs, 3);
        let r = c.records();
        assert_eq!(r.len(), 3);
        assert_eq!(c.armed(), 0);
        let path: Vec<String> = r[0]
            .steps()
            .iter()
            .map(|s| format!("{} -> {}", s.node.name(), s.decision.describe(s.node)))
            .collect();
        assert_eq!(
            path,
            [
                "ethernet-input -> ip4-input",
                "ip4-input -> ip4-firewall",
                "ip4-firewall -> dslite-encap",
                "dslite-encap -> interface-output",
                "interface-output -> tx wan",
            ]
        );
        assert_eq!(r[0].rx, Port::Lan);
        assert_eq!(r[0].len, 100);
        assert!(r[2].seq > r[1].seq);
    }
}
