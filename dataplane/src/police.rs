//! Control-plane policing: every frame punted to the control thread belongs
//! to a class, and each (port, class) has a token bucket, so a flood of one
//! kind (RAs from made-up routers, solicitations, DNS answers from random
//! sources) costs only its own budget and never the queue room of the
//! others. Frames the router cannot do without (RAs and ND from the known
//! default router, its solicitations only for our own addresses, DHCPv6
//! replies to our open transaction) form the
//! `Reserved` class: they skip the class buckets, have a bucket of their
//! own (so a flood spoofing the router is bounded too) and room in the punt
//! queue nothing else may take.
//!
//! The nodes that punt set the class from what they already parsed; the
//! punt node charges the bucket. Nothing here runs for forwarded frames.
//! Budgets are per worker: with N workers the control thread may get N
//! times as much.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::tables::{Fib, Port};

/// What a punted frame is, for its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PuntClass {
    /// NS, unsolicited NA, redirects (RFC 4861), inverse ND and SEND, ARP.
    Nd,
    /// Solicited NAs to our unicast address: the answers to our own
    /// address resolution and unreachability probes. Apart from `Nd`, so a
    /// solicitation flood on a link cannot make us lose its hosts (their
    /// answers to our probes would drown in the flood's bucket and the
    /// probes fail, RFC 4861 7.3.3).
    NdAnswer,
    /// RA and RS not from the known router.
    Ra,
    /// DHCPv4 to the LAN server.
    Dhcp4,
    /// DHCPv6: client messages to the LAN server, replies to the WAN client
    /// other than those to our open transaction.
    Dhcp6,
    /// DNS, over UDP and TCP.
    Dns,
    /// Other TCP to the router: the status page and the metrics on the
    /// LAN, the answers to the router's own fetches on the WAN. Apart from
    /// `Dns`, so a host hammering the page cannot starve name resolution.
    Tcp,
    /// ICMP and ICMPv6 errors to the router.
    IcmpError,
    /// Echo, MLD and whatever else the policy lets through.
    Other,
    /// Forwarded frames waiting for their next hop's MAC (neighbor miss).
    /// A budget of their own: a burst of new LAN flows must not starve
    /// ND (which is what resolves them), nor a solicitation flood them.
    Held,
    /// The known default router's RAs, NAs and solicitations for our own
    /// WAN addresses, and DHCPv6 replies to our open transaction.
    Reserved,
}

pub const CLASS_COUNT: usize = 11;

impl PuntClass {
    pub const ALL: [PuntClass; CLASS_COUNT] = [
        PuntClass::Nd,
        PuntClass::NdAnswer,
        PuntClass::Ra,
        PuntClass::Dhcp4,
        PuntClass::Dhcp6,
        PuntClass::Dns,
        PuntClass::Tcp,
        PuntClass::IcmpError,
        PuntClass::Other,
        PuntClass::Held,
        PuntClass::Reserved,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PuntClass::Nd => "nd",
            PuntClass::NdAnswer => "nd-answer",
            PuntClass::Ra => "ra",
            PuntClass::Dhcp4 => "dhcp4",
            PuntClass::Dhcp6 => "dhcp6",
            PuntClass::Dns => "dns",
            PuntClass::Tcp => "tcp",
            PuntClass::IcmpError => "icmp-error",
            PuntClass::Other => "other",
            PuntClass::Held => "held",
            PuntClass::Reserved => "reserved",
        }
    }
}

/// A class's budget: frames per second and the burst above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub per_sec: u64,
    pub burst: u64,
}

/// Budgets per worker and port, in `PuntClass` order. Each is far above
/// what a healthy link needs (a LAN of a few hundred hosts booting at
/// once, a WAN with one router) and far below what the control thread
/// handles (hundreds of thousands of frames a second on this VM, about
/// 2.6 times fewer on an APU2's 1 GHz cores): the sum over all classes
/// and both ports is about 16k frames a second.
pub const BUDGETS: [Budget; CLASS_COUNT] = [
    // ND/ARP: every host resolving the router and DAD after a power cut.
    Budget {
        per_sec: 1000,
        burst: 200,
    },
    // Solicited NAs to us: one per neighbor we resolve or probe.
    Budget {
        per_sec: 1000,
        burst: 200,
    },
    // RA/RS: hosts send 3 RS at boot; the known router's RAs are reserved.
    Budget {
        per_sec: 100,
        burst: 20,
    },
    // DHCPv4: four messages per client and lease.
    Budget {
        per_sec: 500,
        burst: 100,
    },
    // DHCPv6: the same for the LAN server; on the WAN only other servers'
    // answers and stale transactions come here.
    Budget {
        per_sec: 500,
        burst: 100,
    },
    // DNS: a browser opening a page asks dozens of names at once.
    Budget {
        per_sec: 2000,
        burst: 500,
    },
    // TCP: a page load is a handful of segments; the page serves 16
    // connections at once.
    Budget {
        per_sec: 1000,
        burst: 300,
    },
    // ICMP errors: the router's own traffic gets few (too big, unreachable).
    Budget {
        per_sec: 200,
        burst: 50,
    },
    // Other: echo (already limited per source), MLD.
    Budget {
        per_sec: 500,
        burst: 100,
    },
    // Held: the first frames of new flows while a neighbor is resolved.
    Budget {
        per_sec: 1000,
        burst: 256,
    },
    // Reserved: a router sends a few RAs a minute and answers a handful of
    // solicitations; this only bounds a flood that spoofs it.
    Budget {
        per_sec: 500,
        burst: 100,
    },
];

/// Punt queue slots only `Reserved` frames may fill (of `PUNT_DEPTH`).
pub const RESERVED_SLOTS: usize = 128;

const NS_PER_SEC: u64 = 1_000_000_000;

/// Whether a frame of `class` may go onto a punt queue of `capacity` that
/// holds `queued`: the last `RESERVED_SLOTS` are for reserved frames, so a
/// queue that budgeted frames filled (a control thread stalled on a disk
/// write) still takes the router's RA or our DHCPv6 reply.
#[inline]
pub fn queue_admits(class: PuntClass, queued: usize, capacity: usize) -> bool {
    let limit = if class == PuntClass::Reserved {
        capacity
    } else {
        capacity.saturating_sub(RESERVED_SLOTS)
    };
    queued < limit
}

/// A token bucket on the graph's nanosecond clock. Credit is kept in
/// token-nanoseconds, so no fraction of a token is lost between calls
/// however often they come.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    budget: Budget,
    credit: u64,
    last_ns: u64,
}

impl Bucket {
    /// Starts full: a burst right after start is allowed.
    pub fn new(budget: Budget) -> Self {
        Bucket {
            budget,
            credit: budget.burst.saturating_mul(NS_PER_SEC),
            last_ns: 0,
        }
    }

    /// Takes one token if there is one.
    #[inline]
    pub fn admit(&mut self, now_ns: u64) -> bool {
        let elapsed = now_ns.saturating_sub(self.last_ns);
        self.last_ns = self.last_ns.max(now_ns);
        let cap = self.budget.burst.saturating_mul(NS_PER_SEC);
        self.credit = self
            .credit
            .saturating_add(elapsed.saturating_mul(self.budget.per_sec))
            .min(cap);
        if self.credit >= NS_PER_SEC {
            self.credit -= NS_PER_SEC;
            true
        } else {
            false
        }
    }
}

/// What the control thread tells the workers for the reserve, beyond the
/// `Fib`'s gateway: the DHCPv6 client's open transaction. It changes with
/// every exchange (every T1), so an atomic rather than a new `Fib`.
#[derive(Debug)]
pub struct Reserve {
    dhcp6_xid: AtomicU32,
    /// The router's own TCP connections on the WAN (HB46PP provisioning,
    /// update URLs): `server port << 16 | our port`, 0 for a free slot.
    /// ip6-local lets the segments of these through from the WAN.
    tcp_flows: [AtomicU32; TCP_FLOWS],
}

/// Own TCP connections at most at one time.
pub const TCP_FLOWS: usize = 4;

/// No open DHCPv6 transaction (xids are 24 bits).
const NO_XID: u32 = u32::MAX;

impl Default for Reserve {
    fn default() -> Self {
        Reserve {
            dhcp6_xid: AtomicU32::new(NO_XID),
            tcp_flows: Default::default(),
        }
    }
}

impl Reserve {
    /// Control thread: the transaction id our DHCPv6 client waits on.
    /// Set before the message leaves, so its reply finds it.
    pub fn set_dhcp6_xid(&self, xid: Option<u32>) {
        let v = xid.map_or(NO_XID, |x| x & 0x00ff_ffff);
        if self.dhcp6_xid.load(Ordering::Relaxed) != v {
            self.dhcp6_xid.store(v, Ordering::Release);
        }
    }

    /// Control thread: the open TCP connections as (server port, our
    /// port); beyond [`TCP_FLOWS`] are left out (their segments dropped).
    pub fn set_tcp_flows(&self, flows: &[(u16, u16)]) {
        for (i, slot) in self.tcp_flows.iter().enumerate() {
            let v = flows.get(i).map_or(0, |&(server, ours)| {
                u32::from(server) << 16 | u32::from(ours)
            });
            if slot.load(Ordering::Relaxed) != v {
                slot.store(v, Ordering::Release);
            }
        }
    }

    /// Whether a TCP segment from `sport` to our `dport` belongs to one of
    /// the router's own connections (the control thread's TCP then checks
    /// the addresses and sequence numbers).
    pub fn tcp_flow(&self, sport: u16, dport: u16) -> bool {
        let v = u32::from(sport) << 16 | u32::from(dport);
        v != 0
            && self
                .tcp_flows
                .iter()
                .any(|s| s.load(Ordering::Acquire) == v)
    }

    pub fn dhcp6_xid(&self) -> Option<u32> {
        match self.dhcp6_xid.load(Ordering::Acquire) {
            NO_XID => None,
            x => Some(x),
        }
    }
}

/// One worker's buckets, per port and class, and the reserve it reads.
#[derive(Debug)]
pub struct Police {
    buckets: [[Bucket; CLASS_COUNT]; 2],
    pub reserve: std::sync::Arc<Reserve>,
}

impl Default for Police {
    fn default() -> Self {
        Self::new(std::sync::Arc::default())
    }
}

impl Police {
    pub fn new(reserve: std::sync::Arc<Reserve>) -> Self {
        let row = BUDGETS.map(Bucket::new);
        Police {
            buckets: [row, row],
            reserve,
        }
    }

    /// Budgets that never run out (the check still runs): for benchmarks
    /// and tests of the punt path itself, as `testkit::unlimited_graph`.
    pub fn unlimited() -> Self {
        let row = [Bucket::new(Budget {
            per_sec: 0,
            burst: u64::MAX,
        }); CLASS_COUNT];
        Police {
            buckets: [row, row],
            reserve: std::sync::Arc::default(),
        }
    }

    /// Charges one frame of `class` that came in on `port`.
    #[inline]
    pub fn admit(&mut self, port: Port, class: PuntClass, now_ns: u64) -> bool {
        self.buckets[port.index()][class as usize].admit(now_ns)
    }
}

/// ICMPv6 types of ND proper (RFC 4861), inverse ND (RFC 3122) and SEND
/// (RFC 3971).
const ND_TYPES: [u8; 7] = [135, 136, 137, 141, 142, 148, 149];

/// The class of an ICMPv6 message to the router (`eth` is the frame, for
/// the source MAC; `src` and `dst` the IPv6 addresses; `icmp` the message
/// from its type on). RAs, NAs and NSs for our own addresses from the
/// known default router on the WAN are `Reserved`: by its link-local
/// address (its RAs come from it) or its MAC (its solicitations for our
/// global addresses come from its global address). Other solicited NAs to
/// a unicast address of ours are `NdAnswer`.
#[inline]
pub fn icmpv6_class(
    fib: &Fib,
    rx: Port,
    eth: &[u8],
    src: &[u8; 16],
    dst: &[u8; 16],
    icmp: &[u8],
) -> PuntClass {
    let Some(&ty) = icmp.first() else {
        return PuntClass::Other;
    };
    let class = match ty {
        1..=4 => return PuntClass::IcmpError,
        133 | 134 => PuntClass::Ra,
        t if ND_TYPES.contains(&t) => PuntClass::Nd,
        _ => return PuntClass::Other,
    };
    if rx == Port::Wan
        && matches!(ty, 134..=136)
        && from_known_router(fib, eth, src)
        && (ty != 135 || asks_for_ours(fib, icmp))
    {
        PuntClass::Reserved
    } else if ty == 136 && dst[0] != 0xff && icmp.get(4).is_some_and(|f| f & NA_SOLICITED != 0) {
        PuntClass::NdAnswer
    } else {
        class
    }
}

/// Whether a Neighbor Solicitation's target is one of the router's own
/// WAN addresses. The known router's solicitations for anything else (the
/// LAN hosts of a proxied /64, or a scan of it that the router turns into
/// solicitations) take the ND budget: the reserve is for what keeps the
/// router itself reachable.
#[inline]
fn asks_for_ours(fib: &Fib, ns: &[u8]) -> bool {
    let Some(target) = ns.get(8..24) else {
        return false;
    };
    [fib.wan.ipv6, fib.wan.link_local, fib.tunnel.map(|t| t.b4)]
        .into_iter()
        .flatten()
        .any(|a| a.octets() == target)
}

/// The Solicited flag of a Neighbor Advertisement (RFC 4861 4.4).
const NA_SOLICITED: u8 = 0x40;

#[inline]
fn from_known_router(fib: &Fib, eth: &[u8], src: &[u8; 16]) -> bool {
    fib.gateway.is_some_and(|g| g.octets() == *src)
        || fib
            .gateway_mac
            .is_some_and(|m| eth.len() >= 12 && eth[6..12] == m)
}

pub const DHCP6_CLIENT_PORT: u16 = 546;
pub const DHCP6_SERVER_PORT: u16 = 547;
const DNS_PORT: u16 = 53;
const DHCP4_SERVER_PORT: u16 = 67;
const TCP: u8 = 6;
const UDP: u8 = 17;

/// The class of UDP or TCP (`proto`) to the router; `udp` is the UDP
/// payload, for the DHCPv6 transaction id (empty when not UDP or not
/// whole). An Advertise or Reply from a server on the WAN to our open
/// transaction is `Reserved`.
#[inline]
pub fn ipv6_l4_class(
    xid: Option<u32>,
    rx: Port,
    proto: u8,
    sport: u16,
    dport: u16,
    udp: &[u8],
) -> PuntClass {
    match proto {
        UDP if dport == DHCP6_CLIENT_PORT => {
            let ours = rx == Port::Wan
                && sport == DHCP6_SERVER_PORT
                && udp.len() >= 4
                && matches!(udp[0], 2 | 7)
                && xid == Some(u32::from_be_bytes([0, udp[1], udp[2], udp[3]]));
            if ours {
                PuntClass::Reserved
            } else {
                PuntClass::Dhcp6
            }
        }
        UDP if dport == DHCP6_SERVER_PORT => PuntClass::Dhcp6,
        UDP | TCP if sport == DNS_PORT || dport == DNS_PORT => PuntClass::Dns,
        TCP => PuntClass::Tcp,
        _ => PuntClass::Other,
    }
}

/// The class of IPv4 to the router (from the LAN: IPv4 never reaches the
/// router from the WAN). `l3` starts at the IPv4 header of `ihl` words.
#[inline]
pub fn ipv4_class(l3: &[u8], ihl: u8, proto: u8) -> PuntClass {
    let off = usize::from(ihl) * 4;
    let first = l3.len() >= 8 && u16::from_be_bytes([l3[6], l3[7]]) & 0x1fff == 0;
    let port = |at: usize| -> Option<u16> {
        (first && l3.len() >= off + at + 2)
            .then(|| u16::from_be_bytes([l3[off + at], l3[off + at + 1]]))
    };
    match proto {
        UDP if port(2) == Some(DHCP4_SERVER_PORT) => PuntClass::Dhcp4,
        UDP | TCP if port(0) == Some(DNS_PORT) || port(2) == Some(DNS_PORT) => PuntClass::Dns,
        TCP => PuntClass::Tcp,
        // Destination unreachable, time exceeded, parameter problem.
        1 if first && l3.len() > off && matches!(l3[off], 3 | 11 | 12) => PuntClass::IcmpError,
        _ => PuntClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    const MS: u64 = 1_000_000;

    #[test]
    fn bucket_allows_its_burst_then_its_rate() {
        let mut b = Bucket::new(Budget {
            per_sec: 100,
            burst: 10,
        });
        let t0 = 5 * NS_PER_SEC;
        // A long idle time does not grow the credit past the burst.
        let burst = (0..50).filter(|_| b.admit(t0)).count();
        assert_eq!(burst, 10);
        assert!(!b.admit(t0));
        // 100/s is one token per 10 ms: none at 9 ms, one at 10 ms.
        assert!(!b.admit(t0 + 9 * MS));
        assert!(b.admit(t0 + 10 * MS));
        assert!(!b.admit(t0 + 10 * MS));
        // Over one second of 1 ms steps, about 100 get through: fractions
        // of a token are carried, not lost between calls.
        let t1 = t0 + 10 * MS;
        let passed = (1..=1000).filter(|k| b.admit(t1 + k * MS)).count();
        assert_eq!(passed, 100);
    }

    #[test]
    fn bucket_survives_a_clock_that_goes_back() {
        let mut b = Bucket::new(Budget {
            per_sec: 1000,
            burst: 1,
        });
        assert!(b.admit(10 * NS_PER_SEC));
        // An earlier timestamp (another vector's clock read) adds nothing.
        assert!(!b.admit(NS_PER_SEC));
        assert!(!b.admit(10 * NS_PER_SEC));
        assert!(b.admit(10 * NS_PER_SEC + MS));
    }

    #[test]
    fn only_reserved_frames_take_the_last_queue_slots() {
        let cap = 1024;
        let shared = cap - RESERVED_SLOTS;
        assert!(queue_admits(PuntClass::Ra, shared - 1, cap));
        assert!(!queue_admits(PuntClass::Ra, shared, cap));
        assert!(!queue_admits(PuntClass::Held, cap - 1, cap));
        assert!(queue_admits(PuntClass::Reserved, shared, cap));
        assert!(queue_admits(PuntClass::Reserved, cap - 1, cap));
        assert!(!queue_admits(PuntClass::Reserved, cap, cap));
        // A queue smaller than the reserve is all reserve.
        assert!(!queue_admits(PuntClass::Nd, 0, 64));
    }

    #[test]
    fn ports_and_classes_have_their_own_buckets() {
        let mut p = Police::default();
        let nd = BUDGETS[PuntClass::Nd as usize].burst as usize;
        let wan_nd = (0..10_000)
            .filter(|_| p.admit(Port::Wan, PuntClass::Nd, 0))
            .count();
        assert_eq!(wan_nd, nd);
        // The WAN's ND flood used none of the LAN's ND, nor the WAN's DHCPv6.
        assert!(p.admit(Port::Lan, PuntClass::Nd, 0));
        assert!(p.admit(Port::Wan, PuntClass::Dhcp6, 0));
        assert!(p.admit(Port::Wan, PuntClass::Reserved, 0));
    }

    fn router_fib() -> Fib {
        Fib {
            gateway: Some("fe80::1".parse().unwrap()),
            gateway_mac: Some([2, 0, 0, 0, 3, 1]),
            ..Default::default()
        }
    }

    fn eth_from(mac: [u8; 6]) -> [u8; 14] {
        let mut e = [0u8; 14];
        e[6..12].copy_from_slice(&mac);
        e
    }

    #[test]
    fn known_router_nd_and_ra_are_reserved_on_the_wan_only() {
        let mut fib = router_fib();
        let ours_addr: Ipv6Addr = "2001:db8:0:100::2".parse().unwrap();
        fib.wan.ipv6 = Some(ours_addr);
        let ours = ours_addr.octets();
        let router: [u8; 16] = "fe80::1".parse::<Ipv6Addr>().unwrap().octets();
        let other: [u8; 16] = "fe80::dead".parse::<Ipv6Addr>().unwrap().octets();
        let router_global: [u8; 16] = "2001:db8:0:100::1".parse::<Ipv6Addr>().unwrap().octets();
        let random_mac = eth_from([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc]);
        let router_mac = eth_from([2, 0, 0, 0, 3, 1]);
        // An ND message whose target (NS, NA) is our WAN address.
        let msg = |ty: u8| {
            let mut m = [0u8; 24];
            m[0] = ty;
            m[8..24].copy_from_slice(&ours);
            m
        };
        let c = |rx, eth: &[u8], src: &[u8; 16], ty: u8| {
            icmpv6_class(&fib, rx, eth, src, &ours, &msg(ty))
        };
        assert_eq!(c(Port::Wan, &random_mac, &router, 134), PuntClass::Reserved);
        assert_eq!(c(Port::Wan, &random_mac, &router, 136), PuntClass::Reserved);
        // The router solicits our global address from its global address.
        assert_eq!(
            c(Port::Wan, &router_mac, &router_global, 135),
            PuntClass::Reserved
        );
        // Its solicitation for anything else (a proxied LAN host, or an
        // address of a scan) is ordinary ND, as is one cut short.
        let mut for_host = msg(135);
        for_host[23] = 0x77;
        let from_router =
            |m: &[u8]| icmpv6_class(&fib, Port::Wan, &router_mac, &router_global, &ours, m);
        assert_eq!(from_router(&for_host), PuntClass::Nd);
        assert_eq!(from_router(&for_host[..20]), PuntClass::Nd);
        assert_eq!(c(Port::Wan, &random_mac, &other, 134), PuntClass::Ra);
        assert_eq!(c(Port::Wan, &random_mac, &other, 135), PuntClass::Nd);
        assert_eq!(c(Port::Wan, &random_mac, &other, 136), PuntClass::Nd);
        // A redirect is ND, reserved or not.
        assert_eq!(c(Port::Wan, &router_mac, &router, 137), PuntClass::Nd);
        // The same addresses on the LAN are nobody we know.
        assert_eq!(c(Port::Lan, &router_mac, &router, 134), PuntClass::Ra);
        assert_eq!(c(Port::Lan, &random_mac, &other, 133), PuntClass::Ra);
        assert_eq!(c(Port::Wan, &random_mac, &other, 1), PuntClass::IcmpError);
        assert_eq!(c(Port::Wan, &random_mac, &other, 4), PuntClass::IcmpError);
        assert_eq!(c(Port::Wan, &random_mac, &other, 128), PuntClass::Other);
        assert_eq!(c(Port::Lan, &random_mac, &other, 143), PuntClass::Other);
        // No router known yet: nothing is reserved.
        let none = Fib::default();
        assert_eq!(
            icmpv6_class(&none, Port::Wan, &router_mac, &router, &ours, &[134]),
            PuntClass::Ra
        );
        assert_eq!(
            icmpv6_class(&none, Port::Wan, &router_mac, &router, &ours, &[]),
            PuntClass::Other
        );
    }

    #[test]
    fn solicited_nas_to_us_have_their_own_budget() {
        let fib = router_fib();
        let host: [u8; 16] = "2001:db8:0:111::10".parse::<Ipv6Addr>().unwrap().octets();
        let ours: [u8; 16] = "2001:db8:0:111::1".parse::<Ipv6Addr>().unwrap().octets();
        let all_nodes: [u8; 16] = "ff02::1".parse::<Ipv6Addr>().unwrap().octets();
        let eth = eth_from([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc]);
        let na = |flags: u8| [136u8, 0, 0, 0, flags, 0, 0, 0];
        let c = |dst: &[u8; 16], msg: &[u8]| icmpv6_class(&fib, Port::Lan, &eth, &host, dst, msg);
        // S (with or without O, R): the answer to our solicitation.
        assert_eq!(c(&ours, &na(0x40)), PuntClass::NdAnswer);
        assert_eq!(c(&ours, &na(0xe0)), PuntClass::NdAnswer);
        // Unsolicited, to all nodes, or cut short: the ND budget.
        assert_eq!(c(&ours, &na(0x20)), PuntClass::Nd);
        assert_eq!(c(&all_nodes, &na(0x60)), PuntClass::Nd);
        assert_eq!(c(&ours, &[136, 0, 0, 0]), PuntClass::Nd);
        // Solicitations stay ND however they are flagged.
        assert_eq!(c(&ours, &[135, 0, 0, 0, 0x40]), PuntClass::Nd);
    }

    #[test]
    fn dhcp6_reply_to_our_transaction_is_reserved() {
        let r = Reserve::default();
        let reply = [7u8, 0x12, 0x34, 0x56, 0, 1];
        let advertise = [2u8, 0x12, 0x34, 0x56];
        let c =
            |rx, sport, payload: &[u8]| ipv6_l4_class(r.dhcp6_xid(), rx, UDP, sport, 546, payload);
        // No transaction open: a reply is an ordinary DHCPv6 frame.
        assert_eq!(c(Port::Wan, 547, &reply), PuntClass::Dhcp6);
        r.set_dhcp6_xid(Some(0x123456));
        assert_eq!(c(Port::Wan, 547, &reply), PuntClass::Reserved);
        assert_eq!(c(Port::Wan, 547, &advertise), PuntClass::Reserved);
        // Another xid, another message type, another port, the LAN: not ours.
        assert_eq!(c(Port::Wan, 547, &[7, 0x12, 0x34, 0x57]), PuntClass::Dhcp6);
        assert_eq!(c(Port::Wan, 547, &[1, 0x12, 0x34, 0x56]), PuntClass::Dhcp6);
        assert_eq!(c(Port::Wan, 5470, &reply), PuntClass::Dhcp6);
        assert_eq!(c(Port::Lan, 547, &reply), PuntClass::Dhcp6);
        assert_eq!(c(Port::Wan, 547, &reply[..3]), PuntClass::Dhcp6);
        r.set_dhcp6_xid(None);
        assert_eq!(c(Port::Wan, 547, &reply), PuntClass::Dhcp6);
        // The other UDP and TCP classes.
        assert_eq!(
            ipv6_l4_class(r.dhcp6_xid(), Port::Lan, UDP, 546, 547, &[]),
            PuntClass::Dhcp6
        );
        assert_eq!(
            ipv6_l4_class(r.dhcp6_xid(), Port::Wan, UDP, 53, 40000, &[]),
            PuntClass::Dns
        );
        assert_eq!(
            ipv6_l4_class(r.dhcp6_xid(), Port::Lan, UDP, 40000, 53, &[]),
            PuntClass::Dns
        );
        assert_eq!(
            ipv6_l4_class(r.dhcp6_xid(), Port::Lan, TCP, 40000, 53, &[]),
            PuntClass::Dns
        );
        assert_eq!(
            ipv6_l4_class(r.dhcp6_xid(), Port::Lan, TCP, 40000, 9100, &[]),
            PuntClass::Tcp
        );
        assert_eq!(
            ipv6_l4_class(r.dhcp6_xid(), Port::Lan, TCP, 40000, 80, &[]),
            PuntClass::Tcp
        );
        assert_eq!(
            ipv6_l4_class(r.dhcp6_xid(), Port::Lan, UDP, 40000, 7, &[]),
            PuntClass::Other
        );
    }

    #[test]
    fn ipv4_classes() {
        // 20-byte header, then 8 bytes of UDP/TCP/ICMP.
        let pkt = |frag: u16, l4: [u8; 4]| {
            let mut p = [0u8; 28];
            p[0] = 0x45;
            p[6..8].copy_from_slice(&frag.to_be_bytes());
            p[20..24].copy_from_slice(&l4);
            p
        };
        assert_eq!(
            ipv4_class(&pkt(0, [0, 68, 0, 67]), 5, UDP),
            PuntClass::Dhcp4
        );
        assert_eq!(
            ipv4_class(&pkt(0, [0x9c, 0x40, 0, 53]), 5, UDP),
            PuntClass::Dns
        );
        assert_eq!(
            ipv4_class(&pkt(0, [0x9c, 0x40, 0, 80]), 5, TCP),
            PuntClass::Tcp
        );
        assert_eq!(
            ipv4_class(&pkt(0, [0x9c, 0x40, 0, 53]), 5, TCP),
            PuntClass::Dns
        );
        assert_eq!(
            ipv4_class(&pkt(0, [3, 1, 0, 0]), 5, 1),
            PuntClass::IcmpError
        );
        assert_eq!(
            ipv4_class(&pkt(0, [11, 0, 0, 0]), 5, 1),
            PuntClass::IcmpError
        );
        assert_eq!(ipv4_class(&pkt(0, [8, 0, 0, 0]), 5, 1), PuntClass::Other);
        // A later fragment has no ports to read.
        assert_eq!(
            ipv4_class(&pkt(0x10, [0, 68, 0, 67]), 5, UDP),
            PuntClass::Other
        );
        // Truncated: no panic, no class it cannot prove.
        assert_eq!(
            ipv4_class(&pkt(0, [0, 68, 0, 67])[..21], 5, UDP),
            PuntClass::Other
        );
        assert_eq!(ipv4_class(&[], 5, 1), PuntClass::Other);
    }
}
