//! The firewall's policy (published in the `Fib` by the control thread) and
//! the per-worker state the firewall nodes keep beside the shared session
//! table: which fragments belong to an admitted datagram, a per-source echo
//! limiter, and the rate-limited drop log the control thread drains.
//! Everything here is fixed-size: nothing grows with traffic.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_queue::ArrayQueue;

use crate::counters::MAX_ERRORS;
use crate::graph::{NodeId, NODE_COUNT};
use crate::session::{SessionTable, Timeouts};
use crate::tables::Fib;
use crate::wire::Mac;

/// Who a pinhole admits: a LAN host named so that renumbering doesn't
/// matter — by interface identifier (the low 64 bits) or by MAC (through
/// the neighbor table, so privacy and stable-privacy addresses match too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinholeHost {
    Iid([u8; 8]),
    Mac(Mac),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pinhole {
    pub host: PinholeHost,
    /// 6, 17, or 58 (ICMPv6 echo requests; ports ignored).
    pub proto: u8,
    pub ports: (u16, u16),
}

/// The configured policy, as the nodes need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Off: forwarded traffic is not tracked or filtered (to-the-router
    /// rules still apply).
    pub enabled: bool,
    pub log_drops: bool,
    pub pinholes: Vec<Pinhole>,
    /// MSS for TCP SYNs through the tunnel (None = leave alone).
    pub mss_clamp_v4: Option<u16>,
    /// MSS for forwarded IPv6 TCP SYNs (None = leave alone).
    pub mss_clamp_v6: Option<u16>,
    /// Echo requests per second from one source to the router.
    pub echo_limit: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            enabled: true,
            log_drops: true,
            pinholes: Vec::new(),
            mss_clamp_v4: Some(1420),
            mss_clamp_v6: None,
            echo_limit: 6,
        }
    }
}

impl Policy {
    /// Does a pinhole admit a new inbound flow to `dst` (a LAN address)?
    pub fn pinhole_allows(&self, fib: &Fib, dst: &[u8; 16], proto: u8, port: u16) -> bool {
        self.pinholes.iter().any(|p| {
            p.proto == proto
                && (proto == crate::wire::PROTO_ICMPV6 || (p.ports.0 <= port && port <= p.ports.1))
                && match p.host {
                    PinholeHost::Iid(iid) => dst[8..] == iid,
                    PinholeHost::Mac(mac) => {
                        fib.nd_lan.get(&std::net::Ipv6Addr::from(*dst)) == Some(&mac)
                    }
                }
        })
    }
}

/// One logged drop, as the control thread prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropEvent {
    pub node: NodeId,
    pub reason: u8,
    pub at_s: u32,
    /// IPv4 addresses are IPv4-mapped.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

/// Drops on their way to the log: workers push, the control thread pops.
pub type DropLog = ArrayQueue<DropEvent>;
pub const DROP_LOG_CAPACITY: usize = 256;

/// Later fragments carry no ports, so an inbound datagram is admitted by
/// its first fragment: remember (src, dst, id) for a while and let the
/// rest through. Direct-mapped: a collision forgets an older datagram,
/// whose remaining fragments are then dropped (counted by the node).
pub struct FragCache {
    slots: Box<[FragSlot; FRAG_SLOTS]>,
}

#[derive(Clone, Copy, Default)]
struct FragSlot {
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    until_s: u32,
    used: bool,
}

const FRAG_SLOTS: usize = 256;
/// How long the rest of a datagram may trail its first fragment.
const FRAG_HOLD_S: u32 = 5;

impl Default for FragCache {
    fn default() -> Self {
        FragCache {
            slots: Box::new([FragSlot::default(); FRAG_SLOTS]),
        }
    }
}

fn mix(src: &[u8; 16], dst: &[u8; 16], id: u32) -> usize {
    let mut h = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for c in src.chunks_exact(8).chain(dst.chunks_exact(8)) {
        let w = u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]));
        h = (h ^ w).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
    }
    h as usize
}

impl FragCache {
    pub fn admit(&mut self, src: &[u8; 16], dst: &[u8; 16], id: u32, now_s: u32) {
        let s = &mut self.slots[mix(src, dst, id) % FRAG_SLOTS];
        *s = FragSlot {
            src: *src,
            dst: *dst,
            id,
            until_s: now_s.wrapping_add(FRAG_HOLD_S),
            used: true,
        };
    }

    pub fn admitted(&self, src: &[u8; 16], dst: &[u8; 16], id: u32, now_s: u32) -> bool {
        let s = &self.slots[mix(src, dst, id) % FRAG_SLOTS];
        s.used
            && s.id == id
            && s.src == *src
            && s.dst == *dst
            && (s.until_s.wrapping_sub(now_s) as i32) >= 0
    }
}

/// Per-source token buckets for echo requests to the router (the user's
/// "more than 6 per second from one source" rule). Direct-mapped: a new
/// source takes over a slot, which at worst forgives the old one.
pub struct EchoLimiter {
    slots: Box<[EchoSlot; ECHO_SLOTS]>,
}

#[derive(Clone, Copy, Default)]
struct EchoSlot {
    src: [u8; 16],
    /// Tokens in thousandths, so the refill needs no floats.
    milli_tokens: u64,
    last_ns: u64,
    used: bool,
}

const ECHO_SLOTS: usize = 512;

impl Default for EchoLimiter {
    fn default() -> Self {
        EchoLimiter {
            slots: Box::new([EchoSlot::default(); ECHO_SLOTS]),
        }
    }
}

impl EchoLimiter {
    /// May `src` send one more echo request now, at `per_sec` (burst the same)?
    pub fn allow(&mut self, src: &[u8; 16], per_sec: u32, now_ns: u64) -> bool {
        let full = u64::from(per_sec) * 1000;
        let s = &mut self.slots[mix(src, src, 0) % ECHO_SLOTS];
        if !s.used || s.src != *src {
            *s = EchoSlot {
                src: *src,
                milli_tokens: full,
                last_ns: now_ns,
                used: true,
            };
        } else {
            let elapsed = now_ns.saturating_sub(s.last_ns);
            let add = elapsed.saturating_mul(u64::from(per_sec)) / 1_000_000;
            s.milli_tokens = (s.milli_tokens + add).min(full);
            s.last_ns = now_ns;
        }
        if s.milli_tokens >= 1000 {
            s.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

/// A worker's firewall state. The session table is shared by all workers.
pub struct WorkerFirewall {
    pub sessions: Arc<SessionTable>,
    /// Time zero of the session clock, the same for every worker and the
    /// control thread, so they agree on every session's age.
    pub epoch: Instant,
    pub frags: FragCache,
    /// NAPT44: the translations of inbound fragmented datagrams.
    pub nat_frags: crate::nat::frags::NatFrags,
    pub echo: EchoLimiter,
    pub log: Option<Arc<DropLog>>,
    /// LAN neighbors forwarded to, for the control thread's neighbor engine
    /// (shared state of the workers, like the session table).
    pub neigh_use: Arc<crate::neigh_use::NeighborUse>,
    /// Second of the last event logged per (node, reason): one a second at most.
    last_logged: [[u32; MAX_ERRORS]; NODE_COUNT],
}

impl WorkerFirewall {
    pub fn new(sessions: Arc<SessionTable>, log: Option<Arc<DropLog>>, epoch: Instant) -> Self {
        WorkerFirewall {
            sessions,
            epoch,
            frags: FragCache::default(),
            nat_frags: Default::default(),
            echo: EchoLimiter::default(),
            log,
            neigh_use: Arc::default(),
            last_logged: [[u32::MAX; MAX_ERRORS]; NODE_COUNT],
        }
    }

    /// A small private table, for tests and tools that run one graph.
    pub fn standalone(max_sessions: usize) -> Self {
        Self::new(
            Arc::new(SessionTable::for_workers(
                max_sessions,
                Timeouts::default(),
                1,
            )),
            None,
            Instant::now(),
        )
    }

    /// Queue a drop for the log unless this kind was logged this second.
    pub fn log_drop(&mut self, ev: DropEvent) {
        let Some(log) = &self.log else {
            return;
        };
        let slot = &mut self.last_logged[ev.node as usize][usize::from(ev.reason) % MAX_ERRORS];
        if *slot == ev.at_s {
            return;
        }
        *slot = ev.at_s;
        let _ = log.push(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_limit_is_per_source_and_refills() {
        let mut l = EchoLimiter::default();
        let (a, b) = ([1u8; 16], [2u8; 16]);
        let t0 = 5_000_000_000;
        let passed = (0..10).filter(|_| l.allow(&a, 6, t0)).count();
        assert_eq!(passed, 6);
        assert!(l.allow(&b, 6, t0), "another source has its own bucket");
        assert!(!l.allow(&a, 6, t0 + 100_000_000), "0.1 s refills 0.6 token");
        assert!(l.allow(&a, 6, t0 + 200_000_000), "0.2 s refills 1.2 tokens");
        let passed = (0..10)
            .filter(|_| l.allow(&a, 6, t0 + 2_000_000_000))
            .count();
        assert_eq!(passed, 6, "never more than the burst");
    }

    #[test]
    fn fragment_admission_expires_and_matches_exactly() {
        let mut c = FragCache::default();
        let (s, d) = ([1u8; 16], [2u8; 16]);
        c.admit(&s, &d, 7, 100);
        assert!(c.admitted(&s, &d, 7, 100));
        assert!(c.admitted(&s, &d, 7, 105));
        assert!(!c.admitted(&s, &d, 7, 106));
        assert!(!c.admitted(&s, &d, 8, 100));
        assert!(!c.admitted(&d, &s, 7, 100));
        // Wraparound of the seconds clock.
        c.admit(&s, &d, 9, u32::MAX - 1);
        assert!(c.admitted(&s, &d, 9, 2));
    }

    #[test]
    fn drop_log_is_rate_limited_per_kind() {
        let mut fw = WorkerFirewall::standalone(16);
        let log = Arc::new(DropLog::new(16));
        fw.log = Some(log.clone());
        let ev = |reason, at_s| DropEvent {
            node: NodeId::Ip6Firewall,
            reason,
            at_s,
            src: [0; 16],
            dst: [0; 16],
            proto: 6,
            sport: 1,
            dport: 2,
        };
        for _ in 0..100 {
            fw.log_drop(ev(0, 10));
        }
        fw.log_drop(ev(1, 10));
        fw.log_drop(ev(0, 11));
        assert_eq!(log.len(), 3);
    }
}
