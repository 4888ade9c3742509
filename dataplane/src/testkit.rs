//! Builders for exercising the graph without AF_XDP: the lab's tables, a
//! fake UMEM that holds a vector of frames the way the kernel lays them out,
//! and frames for every forwarding path. Shared by the node benchmarks
//! (`benches/nodes.rs`), the zero-allocation test (`tests/zero_alloc.rs`)
//! and the bench harness.
//!
//! Nodes edit frames in place (TTL, headers grown into the headroom, meta
//! `addr`/`len` moved), so a vector can't be run twice as it is:
//! [`FrameArena::load`] copies the pristine frames back and resets the meta
//! before every run, without allocating.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{IpNumber, Ipv6Header, PacketBuilder};

use crate::graph::{Graph, Meta, RateLimit};
use crate::tables::{Fib, Port, PortAddrs, Tunnel};
use crate::wire::{
    checksum, fold, put16, sum16, Mac, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETH_LEN, PROTO_IPIP,
    PROTO_TCP, PROTO_UDP,
};
use crate::{FRAME_SIZE, MAX_BATCH, XDP_HEADROOM};

/// The router's WAN MAC.
pub const WAN_MAC: Mac = [0x02, 0, 0, 0, 0x02, 0x02];
/// The router's LAN MAC.
pub const LAN_MAC: Mac = [0x02, 0, 0, 0, 0x02, 0x01];
/// The WAN default router.
pub const GW_MAC: Mac = [0x02, 0, 0, 0, 0x03, 0x01];
/// The one LAN host the tables know (ARP and NDP).
pub const HOST_MAC: Mac = [0x02, 0, 0, 0, 0x01, 0x10];
pub const HOST4: Ipv4Addr = Ipv4Addr::new(192, 168, 2, 10);
pub const HOST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x111, 0, 0, 0, 0x10);
/// An internet host behind the AFTR (IPv4) and beyond the WAN (IPv6).
pub const SERVER4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub const SERVER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0x10);
/// Our B4 address and the AFTR.
pub const B4: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 2);
pub const AFTR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xaaaa, 0, 0, 0, 0, 1);
pub const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

/// Ethernet + IPv4 + UDP.
pub const MIN_UDP4: usize = ETH_LEN + 20 + 8;
/// Ethernet + IPv6 + UDP.
pub const MIN_UDP6: usize = ETH_LEN + 40 + 8;
/// Ethernet + IPv6 + IPv4 + UDP.
pub const MIN_IPIP6: usize = ETH_LEN + 40 + 20 + 8;
/// Largest frame a chunk holds after the headroom.
pub const MAX_FRAME: usize = FRAME_SIZE - XDP_HEADROOM;

/// The lab's tables (the same values as the node tests): WAN
/// 2001:db8:0:100::2 with the gateway fe80::1 resolved, LAN 192.168.2.1/24
/// and 2001:db8:0:111::1/64, a DS-Lite tunnel to 2001:db8:aaaa::1 with an
/// inner MTU of 1460, and one LAN host (192.168.2.10, 2001:db8:0:111::10)
/// in ARP and NDP.
pub fn lab_fib() -> Fib {
    let mut fib = Fib {
        wan: PortAddrs {
            mac: WAN_MAC,
            mtu: 1500,
            link_local: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x202)),
            ipv6: Some(B4),
        },
        lan: PortAddrs {
            mac: LAN_MAC,
            mtu: 1500,
            link_local: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x201)),
            ipv6: Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0x111, 0, 0, 0, 1)),
        },
        lan_ipv4: Some((Ipv4Addr::new(192, 168, 2, 1), 24)),
        lan_prefix: Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0x111, 0, 0, 0, 0)),
        tunnel: Some(Tunnel {
            b4: B4,
            aftr: AFTR,
            mtu: 1460,
            hop_limit: 64,
        }),
        gateway: Some(GATEWAY6),
        gateway_mac: Some(GW_MAC),
        ..Default::default()
    };
    fib.arp.insert(HOST4, HOST_MAC);
    fib.nd_lan.insert(HOST6, HOST_MAC);
    fib
}

/// [`lab_fib`] before any neighbor is resolved: no ARP/NDP entries and no
/// gateway MAC, so every forwarded packet is punted as a neighbor miss.
pub fn lab_fib_unresolved() -> Fib {
    let mut fib = lab_fib();
    fib.arp.clear();
    fib.nd_lan.clear();
    fib.gateway_mac = None;
    fib
}

/// A graph whose ICMP error rate limit and punt budgets never run out
/// (the checks still run), so a benchmark of the error or punt path
/// measures that path, not the rate-limited drop it would turn into after
/// the first 100.
pub fn unlimited_graph() -> Graph {
    let mut g = Graph::new();
    g.icmp_limit = RateLimit::new(0, u64::MAX);
    g.police = crate::police::Police::unlimited();
    g
}

/// A fake UMEM: one `FRAME_SIZE` chunk per frame, the frame at
/// `XDP_HEADROOM` as the kernel places it, so encapsulation and ICMP errors
/// can grow into the headroom.
pub struct FrameArena {
    mem: Vec<u8>,
}

impl FrameArena {
    /// Room for `frames` frames (at least one).
    pub fn new(frames: usize) -> Self {
        FrameArena {
            mem: vec![0u8; FRAME_SIZE * frames.max(1)],
        }
    }

    /// How many frames fit.
    pub fn capacity(&self) -> usize {
        self.mem.len() / FRAME_SIZE
    }

    /// The whole memory, to pass to `Graph::run`.
    pub fn mem(&mut self) -> &mut [u8] {
        &mut self.mem
    }

    /// Copy `frames` into chunks 0.. and set `graph.meta[..n]` as a receive
    /// would; returns `n`. Frames longer than a chunk holds are cut. Never
    /// allocates: it only copies into memory the arena already has.
    pub fn load(&mut self, graph: &mut Graph, frames: &[(Port, &[u8])]) -> usize {
        assert!(
            frames.len() <= self.capacity() && frames.len() <= MAX_BATCH,
            "vector larger than the arena or MAX_BATCH"
        );
        for (k, (port, f)) in frames.iter().enumerate() {
            let addr = k * FRAME_SIZE + XDP_HEADROOM;
            let len = f.len().min(MAX_FRAME);
            self.mem[addr..addr + len].copy_from_slice(&f[..len]);
            graph.meta[k] = Meta::new(addr as u64, len as u32, *port);
        }
        frames.len()
    }

    /// `load`, then one graph run over the vector.
    pub fn run(&mut self, graph: &mut Graph, fib: &Fib, frames: &[(Port, &[u8])], now_ns: u64) {
        let n = self.load(graph, frames);
        graph.run(fib, &mut self.mem, n, now_ns);
    }

    /// Packet `i`'s bytes as the graph left them.
    pub fn packet(&self, graph: &Graph, i: u16) -> &[u8] {
        let m = graph.meta[usize::from(i)];
        &self.mem[m.addr as usize..m.addr as usize + m.len as usize]
    }
}

/// Borrow owned frames the way [`FrameArena::load`] takes them.
pub fn as_refs(frames: &[(Port, Vec<u8>)]) -> Vec<(Port, &[u8])> {
    frames.iter().map(|(p, f)| (*p, f.as_slice())).collect()
}

/// Transport ports for flow number `flow`: every flow below 64,512 has its
/// own source port, higher numbers also change the destination port.
pub fn flow_ports(flow: u32) -> (u16, u16) {
    let sport = 1024 + (flow % 64_512) as u16;
    let dport = 443 + ((flow / 64_512) % 1000) as u16;
    (sport, dport)
}

fn payload(size: usize, min: usize) -> Vec<u8> {
    vec![0x5a; size.clamp(min, MAX_FRAME) - min]
}

/// LAN host -> internet over IPv4/UDP (the DS-Lite encapsulation path), a
/// `size`-byte frame (no FCS; at least [`MIN_UDP4`]), TTL 64.
pub fn lan_udp4(flow: u32, size: usize) -> Vec<u8> {
    let (sport, dport) = flow_ports(flow);
    let mut v = Vec::with_capacity(size);
    PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv4(HOST4.octets(), SERVER4.octets(), 64)
        .udp(sport, dport)
        .write(&mut v, &payload(size, MIN_UDP4))
        .expect("write to a Vec");
    v
}

/// Internet -> LAN host over DS-Lite: IPv4/UDP (TTL 50) inside IPv6 from the
/// AFTR to our B4 address, a `size`-byte frame (at least [`MIN_IPIP6`]); it
/// leaves on the LAN 40 bytes shorter.
pub fn aftr_ipip6(flow: u32, size: usize) -> Vec<u8> {
    let (sport, dport) = flow_ports(flow);
    let mut inner = Vec::with_capacity(size);
    PacketBuilder::ipv4(SERVER4.octets(), HOST4.octets(), 50)
        .udp(dport, sport)
        .write(&mut inner, &payload(size, MIN_IPIP6))
        .expect("write to a Vec");
    ipip6_from(AFTR, &inner)
}

/// IPv4 `inner` in IPv6 from `src` to the B4 (or MAP-E CE), as the
/// gateway hands it to the WAN port.
pub fn ipip6_from(src: Ipv6Addr, inner: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(14 + 40 + inner.len());
    v.extend_from_slice(&WAN_MAC);
    v.extend_from_slice(&GW_MAC);
    v.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: inner.len() as u16,
        next_header: IpNumber::IPV4,
        hop_limit: 60,
        source: src.octets(),
        destination: B4.octets(),
    }
    .write(&mut v)
    .expect("write to a Vec");
    v.extend_from_slice(inner);
    v
}

/// LAN host -> internet over native IPv6/UDP, hop limit 64, `size` bytes
/// (at least [`MIN_UDP6`]).
pub fn lan_udp6(flow: u32, size: usize) -> Vec<u8> {
    let (sport, dport) = flow_ports(flow);
    let mut v = Vec::with_capacity(size);
    PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv6(HOST6.octets(), SERVER6.octets(), 64)
        .udp(sport, dport)
        .write(&mut v, &payload(size, MIN_UDP6))
        .expect("write to a Vec");
    v
}

/// Internet -> LAN host over native IPv6/UDP from the gateway, hop limit
/// 60, `size` bytes (at least [`MIN_UDP6`]).
pub fn wan_udp6(flow: u32, size: usize) -> Vec<u8> {
    let (sport, dport) = flow_ports(flow);
    let mut v = Vec::with_capacity(size);
    PacketBuilder::ethernet2(GW_MAC, WAN_MAC)
        .ipv6(SERVER6.octets(), HOST6.octets(), 60)
        .udp(dport, sport)
        .write(&mut v, &payload(size, MIN_UDP6))
        .expect("write to a Vec");
    v
}

/// Set the TTL of the IPv4 packet in `frame` (plain IPv4, or the inner
/// packet of IPv4-in-IPv6) and fix its header checksum.
pub fn set_ipv4_ttl(frame: &mut [u8], ttl: u8) {
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let at = match ethertype {
        ETHERTYPE_IPV4 => ETH_LEN,
        ETHERTYPE_IPV6 if frame[ETH_LEN + 6] == PROTO_IPIP => ETH_LEN + 40,
        _ => panic!("no IPv4 packet in this frame"),
    };
    let ihl = usize::from(frame[at] & 0x0f) * 4;
    let h = &mut frame[at..at + ihl];
    h[8] = ttl;
    put16(h, 10, 0);
    let c = checksum(h);
    put16(h, 10, c);
}

/// Set the hop limit of the (outer) IPv6 header in `frame`.
pub fn set_hop_limit(frame: &mut [u8], hop_limit: u8) {
    frame[ETH_LEN + 7] = hop_limit;
}

/// A traffic pattern through the graph, as the benchmarks name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// LAN IPv4 through ethernet-input, ip4-input, dslite-encap, interface-output.
    Encap,
    /// AFTR IPv4-in-IPv6 through ethernet-input, ip6-input, dslite-decap, interface-output.
    Decap,
    /// Native IPv6, LAN -> WAN and WAN -> LAN alternating.
    Ip6Forward,
    /// LAN IPv4 with TTL 1: ip4-input, ip4-icmp-error, time exceeded back to the host.
    Ip4TtlExpired,
    /// Encap, decap, IPv6 up and IPv6 down round-robin.
    Mixed,
}

impl Path {
    pub const ALL: [Path; 5] = [
        Path::Encap,
        Path::Decap,
        Path::Ip6Forward,
        Path::Ip4TtlExpired,
        Path::Mixed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Path::Encap => "dslite-encap",
            Path::Decap => "dslite-decap",
            Path::Ip6Forward => "ip6-forward",
            Path::Ip4TtlExpired => "ip4-ttl-expired",
            Path::Mixed => "mixed",
        }
    }

    /// Where every packet of a vector should end up with [`lab_fib`]
    /// (a check that a benchmark measures the path it names).
    pub fn expected_tx(self, n: usize) -> [usize; 2] {
        let up = |k: usize| (0..n).filter(|i| i % 4 == k).count();
        match self {
            Path::Encap => [n, 0],
            Path::Decap | Path::Ip4TtlExpired => [0, n],
            Path::Ip6Forward => [n.div_ceil(2), n / 2],
            Path::Mixed => [up(0) + up(2), up(1) + up(3)],
        }
    }
}

/// One frame of `path`, flow number `flow`, its LAN-side frame `lan_size`
/// bytes long (the AFTR frame carrying it is 40 bytes longer).
pub fn frame(path: Path, flow: u32, lan_size: usize) -> (Port, Vec<u8>) {
    match path {
        Path::Encap => (Port::Lan, lan_udp4(flow, lan_size)),
        Path::Decap => (Port::Wan, aftr_ipip6(flow, lan_size + 40)),
        Path::Ip6Forward if flow & 1 == 0 => (Port::Lan, lan_udp6(flow, lan_size)),
        Path::Ip6Forward => (Port::Wan, wan_udp6(flow, lan_size)),
        Path::Ip4TtlExpired => {
            let mut f = lan_udp4(flow, lan_size);
            set_ipv4_ttl(&mut f, 1);
            (Port::Lan, f)
        }
        Path::Mixed => match flow % 4 {
            0 => frame(Path::Encap, flow, lan_size),
            1 => frame(Path::Decap, flow, lan_size),
            2 => (Port::Lan, lan_udp6(flow, lan_size)),
            _ => (Port::Wan, wan_udp6(flow, lan_size)),
        },
    }
}

/// The LAN host's packet that the WAN frame `f` answers: for UDP over
/// IPv6, or UDP in IPv4-in-IPv6 from the AFTR, the same addresses and
/// ports reversed (the firewall admits a reply only inside a session).
/// None for anything else.
pub fn opener_of(f: &[u8]) -> Option<(Port, Vec<u8>)> {
    let be = |at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
    if f.len() < ETH_LEN + 40 || be(12) != ETHERTYPE_IPV6 {
        return None;
    }
    let ip6 = &f[ETH_LEN..];
    let mut v = Vec::new();
    match ip6[6] {
        PROTO_IPIP if f.len() >= ETH_LEN + 40 + 28 => {
            let ip4 = &ip6[40..];
            let ihl = usize::from(ip4[0] & 0x0f) * 4;
            if ip4[9] != 17 || ip4.len() < ihl + 8 {
                return None;
            }
            let (src, dst): ([u8; 4], [u8; 4]) =
                (ip4[12..16].try_into().ok()?, ip4[16..20].try_into().ok()?);
            let (sp, dp) = (be(ETH_LEN + 40 + ihl), be(ETH_LEN + 40 + ihl + 2));
            PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
                .ipv4(dst, src, 64)
                .udp(dp, sp)
                .write(&mut v, &[0; 18])
                .ok()?;
        }
        17 if f.len() >= ETH_LEN + 48 => {
            let (src, dst): ([u8; 16], [u8; 16]) =
                (ip6[8..24].try_into().ok()?, ip6[24..40].try_into().ok()?);
            let (sp, dp) = (be(ETH_LEN + 40), be(ETH_LEN + 42));
            PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
                .ipv6(dst, src, 64)
                .udp(dp, sp)
                .write(&mut v, &[0; 10])
                .ok()?;
        }
        _ => return None,
    }
    Some((Port::Lan, v))
}

/// Open the sessions that the WAN frames among `frames` need, by sending
/// their LAN side through `graph` first (in vectors of `MAX_BATCH`). The
/// graph's counters keep what the openers did.
pub fn open_sessions(graph: &mut Graph, fib: &Fib, frames: &[(Port, Vec<u8>)]) {
    let openers: Vec<(Port, Vec<u8>)> = frames
        .iter()
        .filter(|(p, _)| *p == Port::Wan)
        .filter_map(|(_, f)| opener_of(f))
        .collect();
    let mut arena = FrameArena::new(MAX_BATCH);
    for chunk in openers.chunks(MAX_BATCH) {
        arena.run(graph, fib, &as_refs(chunk), 0);
    }
}

/// A vector of `n` frames of `path`, each a different flow.
pub fn vector(path: Path, n: usize, lan_size: usize) -> Vec<(Port, Vec<u8>)> {
    (0..n as u32).map(|k| frame(path, k, lan_size)).collect()
}

/// Turns the TCP/UDP checksum of the IP packet in `frame` (IPv4, IPv6
/// with TCP/UDP right behind its header, or the inner IPv4 of
/// IPv4-in-IPv6) into what a Linux sender with transmit checksum offload
/// hands over (CHECKSUM_PARTIAL): the folded pseudo-header sum,
/// `~csum_tcpudp_magic(src, dst, len, proto, 0)` or `~csum_ipv6_magic(..)`.
/// Summed with the 16-bit `wire` helpers, not `csum.rs`'s own. Returns
/// whether the frame had such a segment.
pub fn make_partial(frame: &mut [u8]) -> bool {
    if frame.len() < ETH_LEN + 20 {
        return false;
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let ip = &mut frame[ETH_LEN..];
    match ethertype {
        ETHERTYPE_IPV6 if ip.len() >= 40 && ip[6] == PROTO_IPIP => partial_ipv4(&mut ip[40..]),
        ETHERTYPE_IPV6 if ip.len() >= 40 => {
            let total = (40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]))).min(ip.len());
            let next = ip[6];
            let pseudo = sum16(&ip[24..40], sum16(&ip[8..24], 0)) + (total as u32 - 40);
            put_partial(&mut ip[40..total], next, pseudo + u32::from(next))
        }
        ETHERTYPE_IPV4 => partial_ipv4(ip),
        _ => false,
    }
}

fn partial_ipv4(ip: &mut [u8]) -> bool {
    if ip.len() < 20 {
        return false;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    if ihl < 20 || total < ihl {
        return false;
    }
    let proto = ip[9];
    let pseudo = sum16(&ip[12..20], 0) + u32::from(proto) + (total - ihl) as u32;
    put_partial(&mut ip[ihl..total], proto, pseudo)
}

fn put_partial(l4: &mut [u8], proto: u8, pseudo: u32) -> bool {
    let at = match proto {
        PROTO_TCP if l4.len() >= 20 => 16,
        PROTO_UDP if l4.len() >= 8 => 6,
        _ => return false,
    };
    put16(l4, at, fold(pseudo));
    true
}

/// A small deterministic PRNG (xorshift64) for hostile-frame corpora, so
/// failures reproduce exactly.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

impl Iterator for XorShift {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        Some(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_ends_where_it_says() {
        let fib = lab_fib();
        for path in Path::ALL {
            for n in [1, 3, 64, MAX_BATCH] {
                let frames = vector(path, n, 64);
                let refs = as_refs(&frames);
                let mut g = unlimited_graph();
                open_sessions(&mut g, &fib, &frames);
                let mut arena = FrameArena::new(n);
                // Twice: the reload must undo the first run's in-place edits.
                for _ in 0..2 {
                    arena.run(&mut g, &fib, &refs, 0);
                    let got = [g.out.tx[0].len(), g.out.tx[1].len()];
                    assert_eq!(got, path.expected_tx(n), "{} n={n}", path.name());
                }
            }
        }
    }

    #[test]
    fn builders_have_the_asked_size_and_distinct_flows() {
        assert_eq!(lan_udp4(0, 64).len(), 64);
        assert_eq!(lan_udp4(0, 10).len(), MIN_UDP4);
        assert_eq!(aftr_ipip6(0, 104).len(), 104);
        assert_eq!(lan_udp6(0, 64).len(), 64);
        assert_eq!(wan_udp6(0, 1514).len(), 1514);
        assert_ne!(lan_udp4(1, 64), lan_udp4(2, 64));
        assert_ne!(flow_ports(5), flow_ports(5 + 64_512));
    }

    #[test]
    fn decap_of_a_104_byte_frame_is_a_64_byte_lan_frame() {
        let fib = lab_fib();
        let mut g = unlimited_graph();
        let f = aftr_ipip6(7, 104);
        open_sessions(&mut g, &fib, &[(Port::Wan, f.clone())]);
        let mut arena = FrameArena::new(1);
        arena.run(&mut g, &fib, &[(Port::Wan, &f)], 0);
        assert_eq!(g.out.tx[Port::Lan.index()].as_slice(), &[0]);
        assert_eq!(arena.packet(&g, 0).len(), 64);
    }

    #[test]
    fn unresolved_fib_punts_everything() {
        let fib = lab_fib_unresolved();
        let frames = vector(Path::Mixed, 64, 64);
        let mut g = unlimited_graph();
        open_sessions(&mut g, &fib, &frames);
        let mut arena = FrameArena::new(64);
        arena.run(&mut g, &fib, &as_refs(&frames), 0);
        assert_eq!(g.out.punt.len(), 64);
    }
}
