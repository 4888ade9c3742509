//! Bench frames: how the generator builds them and how the receiver parses
//! them back.
//!
//! Three traffic kinds:
//! - `ipv4`:  Eth / IPv4 / UDP / bench header        (what LAN hosts send: DS-Lite encap input)
//! - `ipv6`:  Eth / IPv6 / UDP / bench header
//! - `ipip6`: Eth / IPv6 (nh 4) / IPv4 / UDP / bench (what the AFTR sends to the B4)
//!
//! Every UDP payload starts with the 28-byte bench header, big endian:
//! magic `0x1b0e7e57` (u32), stream id (u32), flow id (u32), per-flow
//! sequence number (u64), TX timestamp (u64, CLOCK_MONOTONIC ns).
//!
//! Flows: flow `i` uses host `h = i % hosts` and port index `p = i / hosts`,
//! with source port `1024 + p % 64000` and destination port
//! `9000 + p / 64000` (swapped for `ipip6`, whose frames are the replies to
//! the `ipv4` frames of the same flow). The host is the *source* address
//! (`src + h`) for `ipv4`/`ipv6` and the *inner destination* address
//! (`dst + h`) for `ipip6`.
//!
//! The MAP-E layout (`--endpoints E`, ipv4 and ipip6 only) numbers flows
//! as a NAPT sees them: flow `i` is LAN endpoint `e = i % E` talking to
//! remote endpoint `r = i / E`. Endpoint `e` is host `e % hosts`, port
//! `1024 + e / hosts`; remote `r` is address `peer + r % 64` (`peer`: `dst`
//! for `ipv4`, the inner `src` for `ipip6`), port `9000 + r / 64`. So E
//! endpoints hold E external ports however many flows there are. `ipip6`
//! frames then answer flow `i` on the shared address (`dst`, not varied)
//! and the external port the NAPT gave endpoint `e` (`--port-map`: one
//! port per endpoint; without it `1024 + e / hosts`).
//!
//! Checksums are built in three steps so that the per-packet work is a few
//! additions: [`write_base`] writes a frame with every per-flow field and
//! the per-packet fields zeroed and returns the unfolded one's-complement
//! sums; [`apply_flow`] writes the flow fields (address, ports, flow id), the
//! IPv4 header checksum, and returns the UDP sum of the frame without its
//! per-packet fields; [`finish`] writes the sequence number and timestamp and
//! the UDP checksum from that sum plus the 16 patched bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipoe_dataplane::wire::{fold, ipv6_pseudo_sum, sum16};
use serde::{Deserialize, Serialize};

pub const MAGIC: u32 = 0x1b0e_7e57;
/// Length of the bench header at the start of every UDP payload.
pub const BENCH_HDR_LEN: usize = 28;
const OFF_STREAM: usize = 4;
const OFF_FLOW: usize = 8;
const OFF_SEQ: usize = 12;
const OFF_TS: usize = 20;

/// Largest frame we build (without FCS).
pub const MAX_FRAME_LEN: usize = 1514;
/// The Ethernet FCS that `--size` counts but AF_XDP never sees.
pub const FCS_LEN: usize = 4;

const ETH_LEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const PROTO_IPIP: u8 = 4;
const PROTO_UDP: u8 = 17;
const TTL: u8 = 64;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Traffic {
    Ipv4,
    Ipv6,
    Ipip6,
}

impl Traffic {
    pub fn parse(s: &str) -> Option<Traffic> {
        match s {
            "ipv4" => Some(Traffic::Ipv4),
            "ipv6" => Some(Traffic::Ipv6),
            "ipip6" => Some(Traffic::Ipip6),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Traffic::Ipv4 => "ipv4",
            Traffic::Ipv6 => "ipv6",
            Traffic::Ipip6 => "ipip6",
        }
    }

    pub fn layout(self) -> Layout {
        match self {
            Traffic::Ipv4 => Layout {
                ip4: Some(ETH_LEN),
                peer_off: Some(ETH_LEN + 16),
                udp: ETH_LEN + 20,
                payload: ETH_LEN + 28,
                host_off: ETH_LEN + 12,
                host_len: 4,
            },
            Traffic::Ipv6 => Layout {
                ip4: None,
                peer_off: None,
                udp: ETH_LEN + 40,
                payload: ETH_LEN + 48,
                host_off: ETH_LEN + 8,
                host_len: 16,
            },
            Traffic::Ipip6 => Layout {
                ip4: Some(ETH_LEN + 40),
                peer_off: Some(ETH_LEN + 40 + 12),
                udp: ETH_LEN + 60,
                payload: ETH_LEN + 68,
                host_off: ETH_LEN + 40 + 16,
                host_len: 4,
            },
        }
    }

    /// The shortest frame (without FCS) that carries the whole bench header:
    /// 70 / 90 / 110 bytes, i.e. `--size` 74 / 94 / 114.
    pub fn min_frame_len(self) -> usize {
        self.layout().payload + BENCH_HDR_LEN
    }

    /// The frame length (without FCS) used for a requested `--size`
    /// (with FCS): `size - 4`, raised to [`Traffic::min_frame_len`].
    pub fn frame_len(self, size_with_fcs: u32) -> usize {
        (size_with_fcs as usize)
            .saturating_sub(FCS_LEN)
            .clamp(self.min_frame_len(), MAX_FRAME_LEN)
    }
}

/// Byte offsets of the fields a frame of one kind gets patched at.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// The IPv4 header whose checksum covers the varying address (outer for
    /// `ipv4`, inner for `ipip6`).
    pub ip4: Option<usize>,
    /// The IPv4 address of the far end (destination for `ipv4`, inner
    /// source for `ipip6`), written per flow.
    pub peer_off: Option<usize>,
    pub udp: usize,
    pub payload: usize,
    /// The address that varies with the host index, and its length.
    pub host_off: usize,
    pub host_len: usize,
}

/// Everything a frame depends on apart from flow, size and packet.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    pub traffic: Traffic,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// Inner (ipip6) or only (ipv4/ipv6) addresses.
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Outer addresses for ipip6.
    pub outer_src: Ipv6Addr,
    pub outer_dst: Ipv6Addr,
    pub hosts: u32,
    pub stream: u32,
    /// LAN endpoints of the MAP-E layout; 0: the plain layout.
    pub endpoints: u32,
    /// `ipip6` in the MAP-E layout: endpoint `e`'s external port.
    pub port_map: Vec<u16>,
}

/// Remote addresses of the MAP-E layout (`peer + 0..64`, inside a /24).
pub const PEER_ADDRS: u32 = 64;

/// The per-flow fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowFields {
    /// The varying address (first `host_len` bytes used).
    pub host: [u8; 16],
    /// The far end's IPv4 address (unused for `ipv6`).
    pub peer: [u8; 4],
    pub sport: u16,
    pub dport: u16,
}

/// The unfolded sums of a frame written by [`write_base`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BaseSums {
    pub ip4: u32,
    pub udp: u32,
}

impl FrameSpec {
    /// Check that the addresses match the traffic kind.
    pub fn validate(&self) -> Result<(), String> {
        let v4 = |a: &IpAddr| a.is_ipv4();
        match self.traffic {
            Traffic::Ipv4 | Traffic::Ipip6 if !(v4(&self.src) && v4(&self.dst)) => Err(format!(
                "{}: --src and --dst must be IPv4 addresses",
                self.traffic.as_str()
            )),
            Traffic::Ipv6 if v4(&self.src) || v4(&self.dst) => {
                Err("ipv6: --src and --dst must be IPv6 addresses".into())
            }
            _ if self.hosts == 0 => Err("--hosts must be at least 1".into()),
            Traffic::Ipv6 if self.endpoints > 0 => {
                Err("--endpoints (the MAP-E layout) needs ipv4 or ipip6".into())
            }
            _ if self.endpoints > self.hosts.saturating_mul(64_000) => {
                Err("--endpoints: at most 64000 ports per host".into())
            }
            _ if !self.port_map.is_empty()
                && (self.traffic != Traffic::Ipip6
                    || self.port_map.len() != self.endpoints as usize) =>
            {
                Err("--port-map: ipip6 only, one port per endpoint".into())
            }
            _ => Ok(()),
        }
    }

    /// The fields of flow `flow` (see the module comment).
    #[inline]
    pub fn flow_fields(&self, flow: u32) -> FlowFields {
        if self.endpoints > 0 {
            return self.mape_fields(flow);
        }
        let h = flow % self.hosts;
        let p = flow / self.hosts;
        let mut host = [0u8; 16];
        let base = match self.traffic {
            Traffic::Ipv4 | Traffic::Ipv6 => self.src,
            Traffic::Ipip6 => self.dst,
        };
        match base {
            IpAddr::V4(a) => {
                host[..4].copy_from_slice(&u32::from(a).wrapping_add(h).to_be_bytes());
            }
            IpAddr::V6(a) => {
                host.copy_from_slice(&u128::from(a).wrapping_add(u128::from(h)).to_be_bytes());
            }
        }
        let (lan_port, far_port) = (
            1024 + (p % 64000) as u16,
            9000u32.wrapping_add(p / 64000) as u16,
        );
        // ipip6 frames are the replies to ipv4 frames of the same flow
        // number, so a stateful router admits them once the LAN side spoke.
        let (sport, dport, peer) = match self.traffic {
            Traffic::Ipip6 => (far_port, lan_port, v4(self.src)),
            Traffic::Ipv4 | Traffic::Ipv6 => (lan_port, far_port, v4(self.dst)),
        };
        FlowFields {
            host,
            peer: peer.octets(),
            sport,
            dport,
        }
    }

    /// [`FrameSpec::flow_fields`] in the MAP-E layout (module comment).
    #[inline]
    fn mape_fields(&self, flow: u32) -> FlowFields {
        let (e, r) = (flow % self.endpoints, flow / self.endpoints);
        let lan_port = 1024 + (e / self.hosts) as u16;
        let far_port = 9000u32.wrapping_add(r / PEER_ADDRS) as u16;
        let peer_of = |a: IpAddr| u32::from(v4(a)).wrapping_add(r % PEER_ADDRS).to_be_bytes();
        let mut host = [0u8; 16];
        match self.traffic {
            Traffic::Ipip6 => {
                host[..4].copy_from_slice(&v4(self.dst).octets());
                let dport = self.port_map.get(e as usize).copied().unwrap_or(lan_port);
                FlowFields {
                    host,
                    peer: peer_of(self.src),
                    sport: far_port,
                    dport,
                }
            }
            Traffic::Ipv4 | Traffic::Ipv6 => {
                let h = e % self.hosts;
                host[..4].copy_from_slice(&u32::from(v4(self.src)).wrapping_add(h).to_be_bytes());
                FlowFields {
                    host,
                    peer: peer_of(self.dst),
                    sport: lan_port,
                    dport: far_port,
                }
            }
        }
    }
}

#[inline]
fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn write_ipv4(b: &mut [u8], at: usize, total_len: usize, proto: u8, src: Ipv4Addr, dst: Ipv4Addr) {
    b[at] = 0x45;
    b[at + 1] = 0;
    put16(b, at + 2, total_len as u16);
    put16(b, at + 4, 0); // identification
    put16(b, at + 6, 0x4000); // DF
    b[at + 8] = TTL;
    b[at + 9] = proto;
    put16(b, at + 10, 0);
    b[at + 12..at + 16].copy_from_slice(&src.octets());
    b[at + 16..at + 20].copy_from_slice(&dst.octets());
}

fn write_ipv6(b: &mut [u8], at: usize, payload_len: usize, nh: u8, src: Ipv6Addr, dst: Ipv6Addr) {
    put32(b, at, 0x6000_0000);
    put16(b, at + 4, payload_len as u16);
    b[at + 6] = nh;
    b[at + 7] = TTL;
    b[at + 8..at + 24].copy_from_slice(&src.octets());
    b[at + 24..at + 40].copy_from_slice(&dst.octets());
}

fn v4(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

/// Write a frame of `len` bytes (no FCS) into `b[..len]` with the flow
/// fields, checksums, sequence number and timestamp all zero, and return its
/// unfolded sums: the IPv4 header sum (if any) and the UDP sum including the
/// pseudo-header.
pub fn write_base(spec: &FrameSpec, len: usize, b: &mut [u8]) -> BaseSums {
    let t = spec.traffic;
    let l = t.layout();
    debug_assert!(len >= t.min_frame_len() && len <= MAX_FRAME_LEN);
    let b = &mut b[..len];
    b.fill(0);
    b[0..6].copy_from_slice(&spec.dst_mac);
    b[6..12].copy_from_slice(&spec.src_mac);
    let udp_len = len - l.udp;
    match t {
        Traffic::Ipv4 => {
            put16(b, 12, ETHERTYPE_IPV4);
            // Both addresses are per flow (apply_flow).
            write_ipv4(
                b,
                ETH_LEN,
                len - ETH_LEN,
                PROTO_UDP,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::UNSPECIFIED,
            );
        }
        Traffic::Ipv6 => {
            put16(b, 12, ETHERTYPE_IPV6);
            write_ipv6(
                b,
                ETH_LEN,
                len - ETH_LEN - 40,
                PROTO_UDP,
                Ipv6Addr::UNSPECIFIED,
                v6(spec.dst),
            );
        }
        Traffic::Ipip6 => {
            put16(b, 12, ETHERTYPE_IPV6);
            write_ipv6(
                b,
                ETH_LEN,
                len - ETH_LEN - 40,
                PROTO_IPIP,
                spec.outer_src,
                spec.outer_dst,
            );
            write_ipv4(
                b,
                ETH_LEN + 40,
                len - ETH_LEN - 40,
                PROTO_UDP,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::UNSPECIFIED,
            );
        }
    }
    // UDP header: ports and checksum zero for now.
    put16(b, l.udp + 4, udp_len as u16);
    let p = l.payload;
    put32(b, p, MAGIC);
    put32(b, p + OFF_STREAM, spec.stream);

    let ip4 = l.ip4.map(|at| sum16(&b[at..at + 20], 0)).unwrap_or(0);
    // The pseudo-header: its per-flow addresses are zero here, like in the header.
    let pseudo = match l.ip4 {
        Some(at) => sum16(&b[at + 12..at + 20], 0) + u32::from(PROTO_UDP) + udp_len as u32,
        None => ipv6_pseudo_sum(
            &b[ETH_LEN + 8..ETH_LEN + 24],
            &b[ETH_LEN + 24..ETH_LEN + 40],
            udp_len as u32,
            PROTO_UDP,
        ),
    };
    BaseSums {
        ip4,
        udp: sum16(&b[l.udp..], pseudo),
    }
}

/// Write flow `flow`'s fields into a frame written by [`write_base`] (or a
/// copy of one, whatever flow it last carried), with its IPv4 header
/// checksum; return the frame's UDP sum without sequence number and
/// timestamp, for [`finish`].
#[inline]
pub fn apply_flow(l: &Layout, base: BaseSums, f: &FlowFields, flow: u32, b: &mut [u8]) -> u32 {
    let host = &f.host[..l.host_len];
    b[l.host_off..l.host_off + l.host_len].copy_from_slice(host);
    put16(b, l.udp, f.sport);
    put16(b, l.udp + 2, f.dport);
    put32(b, l.payload + OFF_FLOW, flow);
    let mut hs = sum16(host, 0);
    if let Some(at) = l.peer_off {
        b[at..at + 4].copy_from_slice(&f.peer);
        hs += sum16(&f.peer, 0);
    }
    if let Some(at) = l.ip4 {
        put16(b, at + 10, !fold(base.ip4 + hs));
    }
    base.udp + hs + u32::from(f.sport) + u32::from(f.dport) + (flow >> 16) + (flow & 0xffff)
}

/// Write the per-packet fields and the UDP checksum.
#[inline]
pub fn finish(l: &Layout, udp_sum: u32, seq: u64, ts: u64, b: &mut [u8]) {
    let p = l.payload;
    b[p + OFF_SEQ..p + OFF_SEQ + 8].copy_from_slice(&seq.to_be_bytes());
    b[p + OFF_TS..p + OFF_TS + 8].copy_from_slice(&ts.to_be_bytes());
    let mut sum = udp_sum;
    for w in [seq, ts] {
        sum += (w >> 48) as u32
            + ((w >> 32) & 0xffff) as u32
            + ((w >> 16) & 0xffff) as u32
            + (w & 0xffff) as u32;
    }
    let c = !fold(sum);
    // A zero UDP checksum means "none" in IPv4 and is invalid in IPv6.
    put16(b, l.udp + 6, if c == 0 { 0xffff } else { c });
}

/// A parsed bench header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchHdr {
    pub stream: u32,
    pub flow: u32,
    pub seq: u64,
    pub ts: u64,
}

/// What the receiver makes of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    Bench(BenchHdr),
    /// A bench frame whose IPv4 header or UDP checksum is wrong (only with
    /// checksum verification on).
    BadChecksum,
    /// Well-formed, but not a bench frame (other protocol, no magic, fragment).
    NotBench,
    /// Truncated or inconsistent Ethernet/IP/UDP headers.
    Malformed,
}

/// Parse Ethernet -> IPv4/UDP, IPv6/UDP or IPv6(nh 4)/IPv4/UDP and the bench
/// header. Never panics, whatever the input.
pub fn parse(b: &[u8], verify: bool) -> Parsed {
    if b.len() < ETH_LEN {
        return Parsed::Malformed;
    }
    match be16(b, 12) {
        ETHERTYPE_IPV4 => parse_ipv4(b, ETH_LEN, verify),
        ETHERTYPE_IPV6 => parse_ipv6(b, ETH_LEN, verify),
        _ => Parsed::NotBench,
    }
}

/// IPv4 at `b[at..]`; `b` ends where the enclosing header says.
fn parse_ipv4(b: &[u8], at: usize, verify: bool) -> Parsed {
    if b.len() < at + 20 || b[at] >> 4 != 4 {
        return Parsed::Malformed;
    }
    let ihl = usize::from(b[at] & 0xf) * 4;
    let total = usize::from(be16(b, at + 2));
    if ihl < 20 || total < ihl || b.len() < at + total {
        return Parsed::Malformed;
    }
    if be16(b, at + 6) & 0x3fff != 0 || b[at + 9] != PROTO_UDP {
        return Parsed::NotBench;
    }
    if verify && fold(sum16(&b[at..at + ihl], 0)) != 0xffff {
        return Parsed::BadChecksum;
    }
    let udp = at + ihl;
    let end = at + total;
    parse_udp(&b[..end], udp, verify, true, |ulen| {
        sum16(&b[at + 12..at + 20], 0) + u32::from(PROTO_UDP) + ulen
    })
}

fn parse_ipv6(b: &[u8], at: usize, verify: bool) -> Parsed {
    if b.len() < at + 40 || b[at] >> 4 != 6 {
        return Parsed::Malformed;
    }
    let end = at + 40 + usize::from(be16(b, at + 4));
    if b.len() < end {
        return Parsed::Malformed;
    }
    let b = &b[..end];
    match b[at + 6] {
        PROTO_UDP => parse_udp(b, at + 40, verify, false, |ulen| {
            ipv6_pseudo_sum(&b[at + 8..at + 24], &b[at + 24..at + 40], ulen, PROTO_UDP)
        }),
        PROTO_IPIP => parse_ipv4(b, at + 40, verify),
        _ => Parsed::NotBench,
    }
}

/// UDP at `b[at..]`, `b` ending with the IP payload.
fn parse_udp(
    b: &[u8],
    at: usize,
    verify: bool,
    zero_ok: bool,
    pseudo: impl Fn(u32) -> u32,
) -> Parsed {
    if b.len() < at + 8 {
        return Parsed::Malformed;
    }
    let ulen = usize::from(be16(b, at + 4));
    if ulen < 8 || b.len() < at + ulen {
        return Parsed::Malformed;
    }
    let p = at + 8;
    if ulen < 8 + BENCH_HDR_LEN || be32(b, p) != MAGIC {
        return Parsed::NotBench;
    }
    if verify {
        // A zero checksum means "none" over IPv4 and is invalid over IPv6.
        let none = be16(b, at + 6) == 0 && zero_ok;
        if !none && fold(sum16(&b[at..at + ulen], pseudo(ulen as u32))) != 0xffff {
            return Parsed::BadChecksum;
        }
    }
    Parsed::Bench(BenchHdr {
        stream: be32(b, p + OFF_STREAM),
        flow: be32(b, p + OFF_FLOW),
        seq: be64(b, p + OFF_SEQ),
        ts: be64(b, p + OFF_TS),
    })
}

/// The fields a MAP-E sink checks in a tunnelled frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelView {
    pub outer_src: Ipv6Addr,
    pub outer_dst: Ipv6Addr,
    pub inner_src: Ipv4Addr,
    pub inner_sport: u16,
}

/// Outer addresses, inner source address and port of an Eth / IPv6 (nh 4)
/// / IPv4 / UDP or TCP frame; `None` for anything else. Never panics.
pub fn tunnel_view(b: &[u8]) -> Option<TunnelView> {
    let ip6 = ETH_LEN;
    let ip4 = ip6 + 40;
    if b.len() < ip4 + 20 || be16(b, 12) != ETHERTYPE_IPV6 || b[ip6 + 6] != PROTO_IPIP {
        return None;
    }
    let l4 = ip4 + usize::from(b[ip4] & 0xf) * 4;
    if b[ip4] >> 4 != 4 || l4 < ip4 + 20 || b.len() < l4 + 2 {
        return None;
    }
    let addr6 = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[at..at + 16]);
        Ipv6Addr::from(a)
    };
    Some(TunnelView {
        outer_src: addr6(ip6 + 8),
        outer_dst: addr6(ip6 + 24),
        inner_src: Ipv4Addr::from(be32(b, ip4 + 12)),
        inner_sport: be16(b, l4),
    })
}

/// A MAP-E port set (RFC 7597 5.1): `len` PSID bits after `offset` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSet {
    pub psid: u16,
    pub len: u8,
    pub offset: u8,
}

impl PortSet {
    /// `PSID/LEN/OFFSET`, e.g. `52/6/6`.
    pub fn parse(s: &str) -> Option<PortSet> {
        let mut it = s.split('/').map(|x| x.trim().parse::<u16>().ok());
        let (psid, len, offset) = (it.next()??, it.next()??, it.next()??);
        (it.next().is_none() && len + offset <= 16 && u32::from(psid) < 1 << len).then_some(
            PortSet {
                psid,
                len: len as u8,
                offset: offset as u8,
            },
        )
    }

    /// Whether the CE owning this set may use `port`: the high `offset`
    /// bits not all zero, then the PSID.
    pub fn contains(&self, port: u16) -> bool {
        let (a, k) = (u32::from(self.offset), u32::from(self.len));
        let p = u32::from(port);
        let m = 16 - a - k;
        (a == 0 || p >> (16 - a) != 0) && (p >> m) & ((1 << k) - 1) == u32::from(self.psid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Ethernet2HeaderSlice, Ipv4HeaderSlice, Ipv6HeaderSlice, UdpHeaderSlice};

    fn spec(t: Traffic, hosts: u32) -> FrameSpec {
        let (src, dst): (IpAddr, IpAddr) = match t {
            Traffic::Ipv4 => (
                "192.168.2.10".parse().unwrap(),
                "198.51.100.10".parse().unwrap(),
            ),
            Traffic::Ipv6 => (
                "2001:db8:0:111::ffff:fff0".parse().unwrap(),
                "2001:db8:ffff::10".parse().unwrap(),
            ),
            Traffic::Ipip6 => (
                "198.51.100.10".parse().unwrap(),
                "192.168.2.250".parse().unwrap(),
            ),
        };
        FrameSpec {
            traffic: t,
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src,
            dst,
            outer_src: "2001:db8:aaaa::1".parse().unwrap(),
            outer_dst: "2001:db8:0:100::2".parse().unwrap(),
            hosts,
            stream: 0xdead_beef,
            endpoints: 0,
            port_map: Vec::new(),
        }
    }

    const KINDS: [Traffic; 3] = [Traffic::Ipv4, Traffic::Ipv6, Traffic::Ipip6];

    /// Check a frame with etherparse: lengths, TTLs, every checksum, and
    /// that our parser reads the same bench header back.
    fn check(s: &FrameSpec, b: &[u8], flow: u32, seq: u64, ts: u64) {
        let eth = Ethernet2HeaderSlice::from_slice(b).unwrap();
        assert_eq!(eth.destination(), s.dst_mac);
        assert_eq!(eth.source(), s.src_mac);
        let f = s.flow_fields(flow);
        let (udp_at, ip4_at) = match s.traffic {
            Traffic::Ipv4 => (34, Some(14)),
            Traffic::Ipv6 => (54, None),
            Traffic::Ipip6 => (74, Some(54)),
        };
        if s.traffic != Traffic::Ipv4 {
            let ip6 = Ipv6HeaderSlice::from_slice(&b[14..]).unwrap();
            assert_eq!(ip6.hop_limit(), 64);
            assert_eq!(usize::from(ip6.payload_length()), b.len() - 54);
            if s.traffic == Traffic::Ipip6 {
                assert_eq!(ip6.next_header().0, 4);
                assert_eq!(ip6.source_addr(), s.outer_src);
                assert_eq!(ip6.destination_addr(), s.outer_dst);
            } else {
                assert_eq!(ip6.next_header().0, 17);
                assert_eq!(ip6.source(), f.host);
                let udp = UdpHeaderSlice::from_slice(&b[udp_at..]).unwrap();
                let want = udp
                    .to_header()
                    .calc_checksum_ipv6_raw(ip6.source(), ip6.destination(), &b[udp_at + 8..])
                    .unwrap();
                assert_eq!(udp.checksum(), want, "ipv6 udp checksum, len {}", b.len());
            }
        }
        if let Some(at) = ip4_at {
            let ip4 = Ipv4HeaderSlice::from_slice(&b[at..]).unwrap();
            assert_eq!(ip4.ttl(), 64);
            assert_eq!(usize::from(ip4.total_len()), b.len() - at);
            assert_eq!(ip4.protocol().0, 17);
            assert_eq!(
                ip4.header_checksum(),
                ip4.to_header().calc_header_checksum(),
                "{:?} ipv4 header checksum, len {}",
                s.traffic,
                b.len()
            );
            let host = if s.traffic == Traffic::Ipv4 {
                ip4.source()
            } else {
                ip4.destination()
            };
            assert_eq!(host, f.host[..4]);
            let udp = UdpHeaderSlice::from_slice(&b[udp_at..]).unwrap();
            let want = udp
                .to_header()
                .calc_checksum_ipv4_raw(ip4.source(), ip4.destination(), &b[udp_at + 8..])
                .unwrap();
            assert_eq!(
                udp.checksum(),
                want,
                "{:?} udp checksum, len {}",
                s.traffic,
                b.len()
            );
        }
        let udp = UdpHeaderSlice::from_slice(&b[udp_at..]).unwrap();
        assert_eq!(
            (udp.source_port(), udp.destination_port()),
            (f.sport, f.dport)
        );
        assert_eq!(usize::from(udp.length()), b.len() - udp_at);
        assert_eq!(
            parse(b, true),
            Parsed::Bench(BenchHdr {
                stream: s.stream,
                flow,
                seq,
                ts
            })
        );
    }

    #[test]
    fn every_kind_and_size_has_valid_checksums() {
        let mut buf = vec![0u8; 2048];
        let mut pooled = vec![0u8; 2048];
        for t in KINDS {
            let s = spec(t, 7);
            let l = t.layout();
            for size in 64..=1518u32 {
                let len = t.frame_len(size);
                assert_eq!(len, (size as usize - 4).max(t.min_frame_len()));
                // Prebuilt path: a template per flow, patched per packet.
                let flow = size * 37 % 100_003;
                let base = write_base(&s, len, &mut buf);
                let sum = apply_flow(&l, base, &s.flow_fields(flow), flow, &mut buf);
                finish(&l, sum, 0, 0, &mut buf);
                check(&s, &buf[..len], flow, 0, 0);
                let (seq, ts) = (
                    u64::from(size) * 0x0123_4567_89ab,
                    u64::MAX - u64::from(size),
                );
                finish(&l, sum, seq, ts, &mut buf);
                check(&s, &buf[..len], flow, seq, ts);
                // Patched path: a buffer that carried another flow of this size.
                pooled[..len].copy_from_slice(&buf[..len]);
                let other = flow ^ 0x5555;
                let sum = apply_flow(&l, base, &s.flow_fields(other), other, &mut pooled);
                finish(&l, sum, seq + 1, ts, &mut pooled);
                check(&s, &pooled[..len], other, seq + 1, ts);
            }
        }
    }

    #[test]
    fn zero_udp_checksum_is_sent_as_ffff() {
        // Search a sequence number that makes the checksum fold to zero.
        let s = spec(Traffic::Ipv6, 1);
        let l = Traffic::Ipv6.layout();
        let mut buf = vec![0u8; 128];
        let len = Traffic::Ipv6.min_frame_len();
        let base = write_base(&s, len, &mut buf);
        let sum = apply_flow(&l, base, &s.flow_fields(0), 0, &mut buf);
        // ~fold(sum + seq) == 0 when fold(sum + seq) == 0xffff.
        let need = 0xffff - u64::from(fold(sum));
        finish(&l, sum, need, 0, &mut buf);
        assert_eq!(be16(&buf, l.udp + 6), 0xffff);
        check(&s, &buf[..len], 0, need, 0);
    }

    #[test]
    fn flows_map_to_hosts_and_ports() {
        let s = spec(Traffic::Ipv4, 10);
        let f = s.flow_fields(0);
        assert_eq!(
            (&f.host[..4], f.sport, f.dport),
            (&[192, 168, 2, 10][..], 1024, 9000)
        );
        let f = s.flow_fields(13);
        assert_eq!(
            (&f.host[..4], f.sport, f.dport),
            (&[192, 168, 2, 13][..], 1025, 9000)
        );
        let f = s.flow_fields(10 * 64_000 + 9);
        assert_eq!(
            (&f.host[..4], f.sport, f.dport),
            (&[192, 168, 2, 19][..], 1024, 9001)
        );
        // ipip6 varies the inner destination; ipv6 carries into higher bytes.
        let s = spec(Traffic::Ipip6, 4);
        assert_eq!(&s.flow_fields(6).host[..4], &[192, 168, 2, 252]);
        let s = spec(Traffic::Ipv6, 100);
        let a = Ipv6Addr::from(s.flow_fields(20).host);
        assert_eq!(a, "2001:db8:0:111:0:1:0:4".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn truncated_frames_never_panic_nor_count_as_bench() {
        let mut buf = vec![0u8; 2048];
        for t in KINDS {
            let s = spec(t, 1);
            let l = t.layout();
            for size in [64, 200, 1518] {
                let len = t.frame_len(size);
                let base = write_base(&s, len, &mut buf);
                let sum = apply_flow(&l, base, &s.flow_fields(3), 3, &mut buf);
                finish(&l, sum, 9, 9, &mut buf);
                assert!(matches!(parse(&buf[..len], false), Parsed::Bench(_)));
                for cut in 0..len {
                    let p = parse(&buf[..cut], true);
                    assert!(
                        p == Parsed::Malformed,
                        "{t:?} size {size} cut at {cut}: {p:?}"
                    );
                    let p = parse(&buf[..cut], false);
                    assert!(p == Parsed::Malformed, "{t:?} cut {cut}: {p:?}");
                }
                // Ethernet padding after the IP packet is fine.
                let mut padded = buf[..len].to_vec();
                padded.extend_from_slice(&[0; 20]);
                assert!(matches!(parse(&padded, true), Parsed::Bench(_)));
                // Any flipped bit is caught by a checksum or the parser, but
                // for the outer IPv6 fields that nothing covers (traffic
                // class, flow label, hop limit; for ipip6 the whole outer header).
                let unchecked = match t {
                    Traffic::Ipv4 => 0..0,
                    Traffic::Ipv6 => 14..22,
                    Traffic::Ipip6 => 14..54,
                };
                for bit in 14 * 8..len * 8 {
                    if unchecked.contains(&(bit / 8)) {
                        continue;
                    }
                    let mut c = buf[..len].to_vec();
                    c[bit / 8] ^= 1 << (bit % 8);
                    let p = parse(&c, true);
                    assert!(!matches!(p, Parsed::Bench(_)), "{t:?} bit {bit}: {p:?}");
                }
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        // Random bytes behind each ethertype and IP version, with lengths
        // pointing anywhere.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut buf = [0u8; 256];
        for i in 0..200_000 {
            for b in buf.iter_mut() {
                *b = next() as u8;
            }
            match i % 4 {
                0 => buf[12..14].copy_from_slice(&[0x08, 0x00]),
                1 => buf[12..14].copy_from_slice(&[0x86, 0xdd]),
                _ => {}
            }
            if i % 8 < 4 {
                buf[14] = if i % 2 == 0 { 0x45 } else { 0x60 };
                buf[14 + 6] = [4u8, 17, 17, 58][(i / 8) % 4];
                buf[14 + 9] = 17;
                buf[54] = 0x45;
                buf[63] = 17;
            }
            let len = (next() % 257) as usize;
            let _ = parse(&buf[..len], i % 3 == 0);
        }
    }

    #[test]
    fn other_traffic_is_not_bench() {
        let mut arp = [0u8; 60];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(parse(&arp, true), Parsed::NotBench);
        let s = spec(Traffic::Ipv4, 1);
        let l = Traffic::Ipv4.layout();
        let mut buf = vec![0u8; 128];
        let len = 100;
        let base = write_base(&s, len, &mut buf);
        let sum = apply_flow(&l, base, &s.flow_fields(0), 0, &mut buf);
        finish(&l, sum, 0, 0, &mut buf);
        buf[l.payload] ^= 0xff; // magic
        assert_eq!(parse(&buf[..len], false), Parsed::NotBench);
        assert_eq!(parse(&buf[..len], true), Parsed::NotBench);
    }

    fn mape_spec(t: Traffic, endpoints: u32, port_map: Vec<u16>) -> FrameSpec {
        let mut s = spec(t, 16);
        if t == Traffic::Ipip6 {
            s.dst = "192.0.2.72".parse().unwrap();
        }
        s.endpoints = endpoints;
        s.port_map = port_map;
        s
    }

    /// The MAP-E layout by hand: flow i = LAN endpoint i % E to remote
    /// i / E; replies go to the shared address and the mapped port.
    #[test]
    fn mape_flows_are_endpoints_times_remotes() {
        let s = mape_spec(Traffic::Ipv4, 1000, Vec::new());
        assert!(s.validate().is_ok());
        // Flow 1234: endpoint 234 (host 234 % 16 = 10, port 1024 + 14), remote 1.
        let f = s.flow_fields(1234);
        assert_eq!(
            (&f.host[..4], f.peer, f.sport, f.dport),
            (&[192, 168, 2, 20][..], [198, 51, 100, 11], 1038, 9000)
        );
        // Remote 64 wraps the address and takes the next port.
        let f = s.flow_fields(64 * 1000 + 5);
        assert_eq!(
            (&f.host[..4], f.peer, f.sport, f.dport),
            (&[192, 168, 2, 15][..], [198, 51, 100, 10], 1024, 9001)
        );
        // 1M flows use 1000 LAN endpoints only.
        let eps: std::collections::BTreeSet<_> = (0..1_000_000)
            .step_by(997)
            .map(|i| {
                let f = s.flow_fields(i);
                (f.host, f.sport)
            })
            .collect();
        assert_eq!(eps.len(), 1000);

        let ports: Vec<u16> = (0..1000).map(|e| 1856 + e).collect();
        let d = mape_spec(Traffic::Ipip6, 1000, ports);
        assert!(d.validate().is_ok());
        let f = d.flow_fields(1234);
        assert_eq!(
            (&f.host[..4], f.peer, f.sport, f.dport),
            (&[192, 0, 2, 72][..], [198, 51, 100, 11], 9000, 1856 + 234)
        );
        // A port map must cover every endpoint, and only ipip6 takes one.
        assert!(mape_spec(Traffic::Ipip6, 1001, vec![1; 1000])
            .validate()
            .is_err());
        assert!(mape_spec(Traffic::Ipv4, 2, vec![1, 2]).validate().is_err());
        let mut v6 = spec(Traffic::Ipv6, 16);
        v6.endpoints = 10;
        assert!(v6.validate().is_err());
    }

    /// Frames of the MAP-E layout have valid checksums, and the per-flow
    /// far address lands where the layout says.
    #[test]
    fn mape_frames_have_valid_checksums() {
        let mut buf = vec![0u8; 2048];
        let mut pooled = vec![0u8; 2048];
        for t in [Traffic::Ipv4, Traffic::Ipip6] {
            let map = if t == Traffic::Ipip6 {
                (0..300).map(|e| 4000 + e * 3).collect()
            } else {
                Vec::new()
            };
            let s = mape_spec(t, 300, map);
            let l = t.layout();
            for size in [64u32, 100, 777, 1518] {
                let len = t.frame_len(size);
                let base = write_base(&s, len, &mut buf);
                for flow in [0u32, 299, 300, 12_345, 999_999] {
                    pooled[..len].copy_from_slice(&buf[..len]);
                    let f = s.flow_fields(flow);
                    let sum = apply_flow(&l, base, &f, flow, &mut pooled);
                    finish(&l, sum, 7, 9, &mut pooled);
                    check(&s, &pooled[..len], flow, 7, 9);
                    let at = l.peer_off.unwrap();
                    assert_eq!(pooled[at..at + 4], f.peer, "{t:?} flow {flow}");
                }
            }
        }
    }

    #[test]
    fn port_sets_parse_and_hold_their_ports() {
        assert!(PortSet::parse("52/6/6").is_some());
        for bad in ["64/6/6", "1/6/11", "1/6", "1/6/6/1", "x/6/6", ""] {
            assert!(PortSet::parse(bad).is_none(), "{bad}");
        }
        // v6plus-like: offset 4, 8 bits, PSID 52: (A << 12) | (52 << 4) | j.
        let v6plus = PortSet::parse("52/8/4").unwrap();
        let ports: Vec<u16> = (0..=u16::MAX).filter(|&p| v6plus.contains(p)).collect();
        assert_eq!(ports.len(), 240);
        assert_eq!(ports[0], 4096 + 832);
        assert!(!v6plus.contains(832), "A = 0 belongs to no CE");
        // No PSID, no offset: every port.
        assert!(PortSet::parse("0/0/0").unwrap().contains(0));
    }

    #[test]
    fn tunnel_view_reads_outer_and_inner_fields() {
        let mut s = spec(Traffic::Ipip6, 1);
        s.outer_src = "2001:db8:0:1234:c0:2:4800:3400".parse().unwrap();
        let l = Traffic::Ipip6.layout();
        let mut buf = vec![0u8; 256];
        let len = Traffic::Ipip6.min_frame_len();
        let base = write_base(&s, len, &mut buf);
        let f = s.flow_fields(3);
        let sum = apply_flow(&l, base, &f, 3, &mut buf);
        finish(&l, sum, 0, 0, &mut buf);
        let v = tunnel_view(&buf[..len]).unwrap();
        assert_eq!(v.outer_src, s.outer_src);
        assert_eq!(v.outer_dst, s.outer_dst);
        assert_eq!(v.inner_src, Ipv4Addr::from(f.peer));
        assert_eq!(v.inner_sport, f.sport);
        for cut in 0..l.udp + 2 {
            assert_eq!(tunnel_view(&buf[..cut]), None, "cut at {cut}");
        }
        // Plain IPv4 is not tunnelled.
        let s4 = spec(Traffic::Ipv4, 1);
        let base = write_base(&s4, 100, &mut buf);
        apply_flow(
            &Traffic::Ipv4.layout(),
            base,
            &s4.flow_fields(0),
            0,
            &mut buf,
        );
        assert_eq!(tunnel_view(&buf[..100]), None);
    }
}
