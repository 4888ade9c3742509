//! Node tests without AF_XDP: frames placed in memory laid out like a UMEM,
//! run through the whole graph, outputs compared byte for byte. Expected
//! frames are built with etherparse's own builder and checksum code, so they
//! check our in-place edits rather than agree with them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{IpNumber, Ipv4Header, Ipv6Header, PacketBuilder};

use crate::graph::{Graph, Meta, NodeId, PuntReason};
use crate::nodes;
use crate::tables::{Fib, Port};
use crate::{FRAME_SIZE, XDP_HEADROOM};

// The lab addresses and MACs are the testkit's, shared with the benches.
use crate::testkit::{lab_fib, GW_MAC, HOST_MAC, LAN_MAC, WAN_MAC};

const HOST4: [u8; 4] = [192, 168, 2, 10];
const SERVER4: [u8; 4] = [198, 51, 100, 10];

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Frames in a fake UMEM, one per chunk at the kernel's headroom.
struct Bench {
    mem: Vec<u8>,
    graph: Graph,
    n: usize,
}

impl Bench {
    fn new(frames: &[(Port, Vec<u8>)]) -> Self {
        Self::with_spare(frames, 0)
    }

    /// With `spare` free frames after the received ones, for packets the
    /// graph makes (second fragments).
    fn with_spare(frames: &[(Port, Vec<u8>)], spare: usize) -> Self {
        let mut mem = vec![0u8; FRAME_SIZE * (frames.len() + spare).max(1)];
        let mut graph = Graph::new();
        for k in 0..spare {
            graph.spare.push(((frames.len() + k) * FRAME_SIZE) as u64);
        }
        for (k, (port, f)) in frames.iter().enumerate() {
            let addr = k * FRAME_SIZE + XDP_HEADROOM;
            let len = f.len().min(FRAME_SIZE - XDP_HEADROOM);
            mem[addr..addr + len].copy_from_slice(&f[..len]);
            graph.meta[k] = Meta::new(addr as u64, len as u32, *port);
        }
        Bench {
            mem,
            graph,
            n: frames.len(),
        }
    }

    fn run(&mut self, fib: &Fib) {
        self.graph.run(fib, &mut self.mem, self.n, 0);
        let o = &self.graph.out;
        // Every packet, received or made, ends in exactly one place.
        assert_eq!(
            o.tx[0].len() + o.tx[1].len() + o.punt.len() + o.drop.len(),
            self.graph.count
        );
    }

    /// Send the LAN side of the flows first, as a real exchange would, so
    /// the firewall knows their sessions; counters restart from zero.
    fn open(&mut self, fib: &Fib, openers: &[(Port, Vec<u8>)]) {
        let meta = self.graph.meta.clone();
        let mut arena = crate::testkit::FrameArena::new(openers.len());
        arena.run(&mut self.graph, fib, &crate::testkit::as_refs(openers), 0);
        self.graph.meta = meta;
        self.graph.stats = Default::default();
    }

    fn bytes(&self, i: u16) -> Vec<u8> {
        let m = self.graph.meta[usize::from(i)];
        self.mem[m.addr as usize..m.addr as usize + m.len as usize].to_vec()
    }

    fn tx(&self, port: Port) -> Vec<Vec<u8>> {
        self.graph.out.tx[port.index()]
            .as_slice()
            .iter()
            .map(|&i| self.bytes(i))
            .collect()
    }

    fn err(&self, node: NodeId, name: &str) -> u64 {
        let idx = node
            .errors()
            .iter()
            .position(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{} has no counter {name}", node.name()));
        self.graph.stats.nodes[node as usize].errors[idx]
    }
}

fn lan_tcp_syn(ttl: u8, tos: u8, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv4(HOST4, SERVER4, ttl)
        .tcp(40000, 80, 1000, 64240)
        .syn();
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    // PacketBuilder has no TOS knob: set it and fix the header checksum.
    v[15] = tos;
    fix_ipv4_checksum(&mut v[14..34]);
    v
}

fn fix_ipv4_checksum(h: &mut [u8]) {
    h[10] = 0;
    h[11] = 0;
    let hdr = Ipv4Header::from_slice(h).unwrap().0;
    let c = hdr.calc_header_checksum();
    h[10..12].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn encap_exact_bytes() {
    let fib = lab_fib();
    let input = lan_tcp_syn(64, 0x28, b"hi");
    let mut b = Bench::new(&[(Port::Lan, input.clone())]);
    b.run(&fib);
    let out = b.tx(Port::Wan);
    assert_eq!(out.len(), 1);

    // Expected: Ethernet to the gateway, IPv6 header, inner IPv4 with TTL 63.
    let mut inner = input[14..].to_vec();
    inner[8] = 63;
    fix_ipv4_checksum(&mut inner[..20]);
    let mut expected = Vec::new();
    expected.extend_from_slice(&GW_MAC);
    expected.extend_from_slice(&WAN_MAC);
    expected.extend_from_slice(&[0x86, 0xdd]);
    let ip6 = Ipv6Header {
        traffic_class: 0x28,
        flow_label: etherparse::Ipv6FlowLabel::try_new(flow_of(&out[0])).unwrap(),
        payload_length: inner.len() as u16,
        next_header: IpNumber::IPV4,
        hop_limit: 64,
        source: v6("2001:db8:0:100::2").octets(),
        destination: v6("2001:db8:aaaa::1").octets(),
    };
    ip6.write(&mut expected).unwrap();
    expected.extend_from_slice(&inner);
    assert_eq!(out[0], expected);
    // The flow label is a deterministic, non-zero hash of the inner flow.
    assert_ne!(flow_of(&out[0]), 0);
    assert_eq!(flow_of(&out[0]), 0x92249, "flow label hash changed");
}

fn flow_of(frame: &[u8]) -> u32 {
    u32::from_be_bytes([frame[14], frame[15], frame[16], frame[17]]) & 0xfffff
}

fn aftr_frame(src: Ipv6Addr, inner: &[u8]) -> Vec<u8> {
    crate::testkit::ipip6_from(src, inner)
}

fn inet_reply(ttl: u8) -> Vec<u8> {
    let b = PacketBuilder::ipv4(SERVER4, HOST4, ttl)
        .tcp(80, 40000, 5000, 65535)
        .syn()
        .ack(1001);
    let mut v = Vec::new();
    b.write(&mut v, b"ok").unwrap();
    v
}

#[test]
fn decap_exact_bytes() {
    let fib = lab_fib();
    let inner = inet_reply(50);
    let mut b = Bench::new(&[(Port::Wan, aftr_frame(v6("2001:db8:aaaa::1"), &inner))]);
    b.open(&fib, &[(Port::Lan, lan_tcp_syn(64, 0, b""))]);
    b.run(&fib);
    let out = b.tx(Port::Lan);
    assert_eq!(out.len(), 1);
    let mut expected_ip = inner.clone();
    expected_ip[8] = 49;
    fix_ipv4_checksum(&mut expected_ip[..20]);
    let mut expected = Vec::new();
    expected.extend_from_slice(&HOST_MAC);
    expected.extend_from_slice(&LAN_MAC);
    expected.extend_from_slice(&[0x08, 0x00]);
    expected.extend_from_slice(&expected_ip);
    assert_eq!(out[0], expected);
}

#[test]
fn decap_from_wrong_source_is_dropped_with_its_own_counter() {
    let fib = lab_fib();
    let inner = inet_reply(50);
    let mut b = Bench::new(&[(Port::Wan, aftr_frame(v6("2001:db8:bad::1"), &inner))]);
    b.run(&fib);
    assert_eq!(b.err(NodeId::DsliteDecap, "unknown-aftr"), 1);
    assert!(b.tx(Port::Lan).is_empty());
}

#[test]
fn decap_rejects_bad_inner_checksum_and_lengths() {
    let fib = lab_fib();
    let mut bad_sum = inet_reply(50);
    bad_sum[10] ^= 0xff;
    let mut long_total = inet_reply(50);
    long_total[3] += 1;
    fix_ipv4_checksum(&mut long_total[..20]);
    let mut b = Bench::new(&[
        (Port::Wan, aftr_frame(v6("2001:db8:aaaa::1"), &bad_sum)),
        (Port::Wan, aftr_frame(v6("2001:db8:aaaa::1"), &long_total)),
        (
            Port::Wan,
            aftr_frame(v6("2001:db8:aaaa::1"), &inet_reply(50)[..12]),
        ),
    ]);
    b.run(&fib);
    assert_eq!(b.err(NodeId::DsliteDecap, "inner-bad-checksum"), 1);
    assert_eq!(b.err(NodeId::DsliteDecap, "inner-length-mismatch"), 1);
    assert_eq!(b.err(NodeId::DsliteDecap, "inner-truncated"), 1);
}

#[test]
fn ttl_one_from_lan_gets_time_exceeded_from_router() {
    let fib = lab_fib();
    let input = lan_tcp_syn(1, 0, b"");
    let mut b = Bench::new(&[(Port::Lan, input.clone())]);
    b.run(&fib);
    let out = b.tx(Port::Lan);
    assert_eq!(out.len(), 1, "time exceeded goes back to the LAN host");
    let f = &out[0];
    assert_eq!(&f[0..6], &HOST_MAC);
    assert_eq!(&f[6..12], &LAN_MAC);
    let (ip, rest) = Ipv4Header::from_slice(&f[14..]).unwrap();
    assert_eq!(ip.source, [192, 168, 2, 1]);
    assert_eq!(ip.destination, HOST4);
    assert_eq!(ip.protocol, IpNumber::ICMP);
    assert_eq!(ip.header_checksum, ip.calc_header_checksum());
    assert_eq!(rest[0], 11, "type time exceeded");
    assert_eq!(rest[1], 0);
    assert_eq!(etherparse_icmp4_checksum(rest), 0, "ICMP checksum valid");
    assert_eq!(&rest[8..], &input[14..], "quotes the whole original");
    assert_eq!(b.err(NodeId::Ip4Input, "ttl-expired"), 1);
}

fn etherparse_icmp4_checksum(icmp: &[u8]) -> u16 {
    // Independent check: etherparse's slice checksum over the whole message.
    let s = etherparse::Icmpv4Slice::from_slice(icmp).unwrap();
    let calc = s.icmp_type().calc_checksum(s.payload());
    calc ^ s.checksum()
}

#[test]
fn df_too_big_for_tunnel_gets_frag_needed_1460() {
    let fib = lab_fib();
    let payload = vec![0x55u8; 1500 - 20 - 20];
    let b0 = PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv4(HOST4, SERVER4, 64)
        .tcp(40000, 80, 1, 1000)
        .ack(1);
    let mut input = Vec::new();
    b0.write(&mut input, &payload).unwrap();
    input[20] |= 0x40; // DF
    fix_ipv4_checksum(&mut input[14..34]);
    let mut b = Bench::new(&[(Port::Lan, input)]);
    b.run(&fib);
    let out = b.tx(Port::Lan);
    assert_eq!(out.len(), 1);
    let icmp = &out[0][34..];
    assert_eq!((icmp[0], icmp[1]), (3, 4));
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1460);
    assert_eq!(out[0].len(), 14 + 576, "RFC 1812: at most 576 bytes");
    assert_eq!(b.err(NodeId::DsliteEncap, "too-big"), 1);
}

fn ipv6_udp(src: &str, dst: &str, hop: u8, payload_len: usize, from: Port) -> Vec<u8> {
    let (dmac, smac) = match from {
        Port::Lan => (LAN_MAC, HOST_MAC),
        Port::Wan => (WAN_MAC, GW_MAC),
    };
    // From the WAN it is the reply to the same call from the LAN.
    let (sport, dport) = match from {
        Port::Lan => (5000, 53),
        Port::Wan => (53, 5000),
    };
    let b = PacketBuilder::ethernet2(smac, dmac)
        .ipv6(v6(src).octets(), v6(dst).octets(), hop)
        .udp(sport, dport);
    let mut v = Vec::new();
    b.write(&mut v, &vec![7u8; payload_len]).unwrap();
    v
}

#[test]
fn ipv6_forward_both_ways_exact() {
    let fib = lab_fib();
    let up = ipv6_udp("2001:db8:0:111::10", "2001:db8:ffff::10", 64, 10, Port::Lan);
    let down = ipv6_udp("2001:db8:ffff::10", "2001:db8:0:111::10", 60, 10, Port::Wan);
    let mut b = Bench::new(&[(Port::Lan, up.clone()), (Port::Wan, down.clone())]);
    b.open(&fib, &[(Port::Lan, up.clone())]);
    b.run(&fib);
    let mut exp_up = up.clone();
    exp_up[0..6].copy_from_slice(&GW_MAC);
    exp_up[6..12].copy_from_slice(&WAN_MAC);
    exp_up[14 + 7] = 63;
    assert_eq!(b.tx(Port::Wan), vec![exp_up]);
    let mut exp_down = down.clone();
    exp_down[0..6].copy_from_slice(&HOST_MAC);
    exp_down[6..12].copy_from_slice(&LAN_MAC);
    exp_down[14 + 7] = 59;
    assert_eq!(b.tx(Port::Lan), vec![exp_down]);
}

#[test]
fn hop_limit_one_gets_icmpv6_time_exceeded() {
    let fib = lab_fib();
    let up = ipv6_udp("2001:db8:0:111::10", "2001:db8:ffff::10", 1, 10, Port::Lan);
    let mut b = Bench::new(&[(Port::Lan, up.clone())]);
    b.run(&fib);
    let out = b.tx(Port::Lan);
    assert_eq!(out.len(), 1);
    let f = &out[0];
    let (ip6, rest) = Ipv6Header::from_slice(&f[14..]).unwrap();
    assert_eq!(ip6.source, v6("2001:db8:0:111::1").octets());
    assert_eq!(ip6.destination, v6("2001:db8:0:111::10").octets());
    assert_eq!(ip6.next_header, IpNumber::IPV6_ICMP);
    assert_eq!((rest[0], rest[1]), (3, 0));
    let s = etherparse::Icmpv6Slice::from_slice(rest).unwrap();
    let calc = s
        .icmp_type()
        .calc_checksum(ip6.source, ip6.destination, s.payload())
        .unwrap();
    assert_eq!(calc, s.checksum(), "ICMPv6 checksum valid");
    assert_eq!(&rest[8..], &up[14..]);
}

#[test]
fn stale_prefix_source_gets_unreachable_code_5() {
    let mut fib = lab_fib();
    fib.stale_lan_prefixes = vec![v6("2001:db8:0:1ff::").octets()[..8].try_into().unwrap()];
    let old = ipv6_udp("2001:db8:0:1ff::10", "2001:db8:ffff::10", 64, 10, Port::Lan);
    let alien = ipv6_udp("2001:db8:0:1fe::10", "2001:db8:ffff::10", 64, 10, Port::Lan);
    let mut b = Bench::new(&[(Port::Lan, old.clone()), (Port::Lan, alien)]);
    b.run(&fib);
    let out = b.tx(Port::Lan);
    assert_eq!(out.len(), 1);
    let f = &out[0];
    // Not in the neighbor table: answered at the MAC it came from.
    assert_eq!(&f[0..6], &HOST_MAC);
    let (ip6, rest) = Ipv6Header::from_slice(&f[14..]).unwrap();
    assert_eq!(ip6.source, v6("2001:db8:0:111::1").octets());
    assert_eq!(ip6.destination, v6("2001:db8:0:1ff::10").octets());
    assert_eq!((rest[0], rest[1]), (1, 5));
    let s = etherparse::Icmpv6Slice::from_slice(rest).unwrap();
    let calc = s
        .icmp_type()
        .calc_checksum(ip6.source, ip6.destination, s.payload())
        .unwrap();
    assert_eq!(calc, s.checksum(), "ICMPv6 checksum valid");
    assert_eq!(b.err(NodeId::Ip6Input, "stale-prefix-source"), 1);
    assert_eq!(b.err(NodeId::Ip6Input, "source-not-lan-prefix"), 1);
    assert!(b.tx(Port::Wan).is_empty());
}

#[test]
fn too_big_for_lan_gets_packet_too_big() {
    let mut fib = lab_fib();
    fib.lan.mtu = 1280;
    let down = ipv6_udp(
        "2001:db8:ffff::10",
        "2001:db8:0:111::10",
        60,
        1300,
        Port::Wan,
    );
    let mut b = Bench::new(&[(Port::Wan, down)]);
    let up = ipv6_udp("2001:db8:0:111::10", "2001:db8:ffff::10", 64, 10, Port::Lan);
    b.open(&lab_fib(), &[(Port::Lan, up)]);
    b.run(&fib);
    let out = b.tx(Port::Wan);
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!(&f[0..6], &GW_MAC);
    let icmp = &f[14 + 40..];
    assert_eq!((icmp[0], icmp[1]), (2, 0));
    assert_eq!(
        u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
        1280
    );
    assert!(f.len() - 14 <= 1280, "error fits the minimum MTU");
}

#[test]
fn neighbor_miss_is_punted_with_next_hop() {
    let mut fib = lab_fib();
    fib.arp.clear();
    fib.gateway_mac = None;
    let inner = inet_reply(50);
    let mut b = Bench::new(&[
        (Port::Wan, aftr_frame(v6("2001:db8:aaaa::1"), &inner)),
        (Port::Lan, lan_tcp_syn(64, 0, b"")),
    ]);
    b.open(&fib, &[(Port::Lan, lan_tcp_syn(64, 0, b""))]);
    b.run(&fib);
    let p = b.graph.out.punt.as_slice().to_vec();
    assert_eq!(p.len(), 2);
    let m0 = b.graph.meta[usize::from(p[0])];
    let m1 = b.graph.meta[usize::from(p[1])];
    let mut got = [(m0.tx, m0.next_hop, m0.punt), (m1.tx, m1.next_hop, m1.punt)];
    got.sort_by_key(|g| g.0 as u8);
    assert_eq!(
        got,
        [
            (
                Port::Wan,
                IpAddr::V6(v6("fe80::1")),
                PuntReason::NeighborMiss
            ),
            (
                Port::Lan,
                IpAddr::V4(Ipv4Addr::from(HOST4)),
                PuntReason::NeighborMiss
            ),
        ]
    );
}

#[test]
fn arp_ndp_and_router_addresses_are_punted_locally() {
    let fib = lab_fib();
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&HOST_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    let ping_router = ipv6_udp("2001:db8:0:111::10", "2001:db8:0:111::1", 64, 4, Port::Lan);
    let mut b = Bench::new(&[
        (Port::Lan, arp),
        (Port::Lan, ping_router),
        (Port::Wan, ipv6_udp("fe80::1", "ff02::1", 255, 4, Port::Wan)),
    ]);
    b.run(&fib);
    assert_eq!(b.graph.out.punt.len(), 3);
    assert_eq!(b.err(NodeId::Punt, "local"), 3);
}

#[test]
fn dhcp_discover_from_unspecified_source_is_punted() {
    let fib = lab_fib();
    let udp = |dport: u16| {
        let b = PacketBuilder::ethernet2(HOST_MAC, [0xff; 6])
            .ipv4([0, 0, 0, 0], [255, 255, 255, 255], 64)
            .udp(68, dport);
        let mut v = Vec::new();
        b.write(&mut v, &[1u8; 240]).unwrap();
        v
    };
    let mut b = Bench::new(&[
        (Port::Lan, udp(67)),
        (Port::Lan, udp(80)),
        (Port::Wan, udp(67)),
    ]);
    b.run(&fib);
    assert_eq!(b.graph.out.punt.len(), 1);
    assert_eq!(b.err(NodeId::Ip4Input, "bad-source"), 1);
    assert_eq!(b.err(NodeId::Ip4Input, "ipv4-on-wan"), 1);
}

#[test]
fn bad_ipv4_checksum_and_spoofed_sources_counted() {
    let fib = lab_fib();
    let mut bad = lan_tcp_syn(64, 0, b"");
    bad[24] ^= 1;
    let spoof = ipv6_udp("2001:db8:9::1", "2001:db8:ffff::10", 64, 4, Port::Lan);
    let wan_spoof = ipv6_udp("2001:db8:0:111::99", "2001:db8:0:111::10", 64, 4, Port::Wan);
    let mut b = Bench::new(&[(Port::Lan, bad), (Port::Lan, spoof), (Port::Wan, wan_spoof)]);
    b.run(&fib);
    assert_eq!(b.err(NodeId::Ip4Input, "bad-checksum"), 1);
    assert_eq!(b.err(NodeId::Ip6Input, "source-not-lan-prefix"), 1);
    assert_eq!(b.err(NodeId::Ip6Input, "spoofed-source"), 1);
}

/// Found by the graph_lan fuzz target: an IPv4 header whose total length
/// (0) is shorter than the header itself passed ip4-input, which cut the
/// packet to its Ethernet header, and ip4-firewall indexed past its end.
#[test]
fn ipv4_total_length_below_its_header_is_dropped() {
    let frame: &[u8] = b"\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x08\x00\x45\x00\
        \x00\x00\x00\x00\x6b\xff\xff\xff\xfd\x58\xa0\x12\xaf\x04\x02\xff\xff\x90";
    for total in [0u16, 1, 19] {
        let mut f = frame.to_vec();
        f[16..18].copy_from_slice(&total.to_be_bytes());
        fix_ipv4_checksum(&mut f[14..34]);
        let mut b = Bench::new(&[(Port::Lan, f)]);
        b.run(&lab_fib());
        assert_eq!(
            b.err(NodeId::Ip4Input, "truncated"),
            1,
            "total length {total}"
        );
        assert_eq!(b.graph.out.drop.as_slice(), &[0]);
    }
}

#[test]
fn every_truncation_of_valid_frames_is_dropped_not_panicking() {
    let fib = lab_fib();
    let valid = [
        (Port::Lan, lan_tcp_syn(64, 0, b"data")),
        (
            Port::Wan,
            aftr_frame(v6("2001:db8:aaaa::1"), &inet_reply(50)),
        ),
        (
            Port::Lan,
            ipv6_udp("2001:db8:0:111::10", "2001:db8:ffff::10", 64, 8, Port::Lan),
        ),
    ];
    for (port, f) in valid {
        for cut in 0..f.len() {
            let mut b = Bench::new(&[(port, f[..cut].to_vec())]);
            b.run(&fib);
            assert_eq!(
                b.graph.out.drop.len(),
                1,
                "cut {cut} of {f:02x?} not dropped"
            );
        }
    }
    let mut b = Bench::new(&[(Port::Lan, vec![1, 2, 3])]);
    b.run(&fib);
    assert_eq!(b.err(NodeId::EthernetInput, "truncated"), 1);
}

/// A deterministic corpus of hostile frames through the whole pipeline:
/// random bytes behind plausible headers, every length, both ports.
#[test]
fn malformed_corpus_never_panics_and_every_frame_is_accounted() {
    let fib = lab_fib();
    let mut prng = crate::testkit::XorShift::new(0x2545_f491_4f6c_dd1d);
    let mut rnd = move || prng.next().unwrap_or(0);
    let templates = [
        lan_tcp_syn(64, 0, b"x"),
        aftr_frame(v6("2001:db8:aaaa::1"), &inet_reply(9)),
        ipv6_udp("2001:db8:0:111::10", "2001:db8:ffff::10", 64, 30, Port::Lan),
    ];
    let mut total = 0;
    for round in 0..3000 {
        let mut frames = Vec::new();
        for k in 0..64 {
            let t = &templates[(round + k) % templates.len()];
            let mut f = t.clone();
            let flips = (rnd() % 6) as usize;
            for _ in 0..flips {
                let pos = (rnd() as usize) % f.len();
                f[pos] = rnd() as u8;
            }
            f.truncate(1 + (rnd() as usize) % (f.len() + 8).min(FRAME_SIZE - XDP_HEADROOM));
            let port = if rnd() & 1 == 0 { Port::Lan } else { Port::Wan };
            frames.push((port, f));
        }
        let mut b = Bench::new(&frames);
        b.run(&fib);
        total += frames.len();
    }
    assert_eq!(total, 3000 * 64);
}

#[test]
fn every_node_error_name_is_unique_within_its_node() {
    for n in NodeId::ALL {
        let names: Vec<_> = n.errors().iter().map(|e| e.0).collect();
        let mut d = names.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), names.len(), "{}", n.name());
        assert!(names.len() <= crate::counters::MAX_ERRORS);
    }
    let _ = nodes::punt::Error::NAMES;
}

// ---- Firewall, fragmentation and reassembly (issue 6) ----------------

use crate::firewall::{DropLog, Pinhole, PinholeHost};
use crate::reass::Reassembler;
use crate::testkit::{HOST6, SERVER6};

fn tcp6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, syn: bool, from: Port) -> Vec<u8> {
    let (dmac, smac) = match from {
        Port::Lan => (LAN_MAC, HOST_MAC),
        Port::Wan => (WAN_MAC, GW_MAC),
    };
    let b = PacketBuilder::ethernet2(smac, dmac)
        .ipv6(src.octets(), dst.octets(), 60)
        .tcp(sport, dport, 7000, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

#[test]
fn unsolicited_inbound_is_refused_counted_and_logged() {
    let fib = lab_fib();
    let syn = tcp6(SERVER6, HOST6, 40000, 22, true, Port::Wan);
    let ack = tcp6(SERVER6, HOST6, 40000, 22, false, Port::Wan);
    let mut b = Bench::new(&[(Port::Wan, syn.clone()), (Port::Wan, ack), (Port::Wan, syn)]);
    let log = std::sync::Arc::new(DropLog::new(16));
    b.graph.fw.log = Some(log.clone());
    b.run(&fib);
    assert!(b.tx(Port::Lan).is_empty());
    assert_eq!(b.err(NodeId::Ip6Firewall, "no-session"), 3);
    // One log line per kind and second.
    assert_eq!(log.len(), 1);
    let ev = log.pop().unwrap();
    assert_eq!((ev.node, ev.proto, ev.dport), (NodeId::Ip6Firewall, 6, 22));
}

#[test]
fn lan_initiated_tcp_passes_both_ways() {
    let fib = lab_fib();
    let syn = tcp6(HOST6, SERVER6, 40000, 443, true, Port::Lan);
    let mut synack = tcp6(SERVER6, HOST6, 443, 40000, true, Port::Wan);
    // SYN-ACK acknowledging the SYN (seq 7000).
    synack[14 + 40 + 13] |= 0x10;
    synack[14 + 40 + 8..14 + 40 + 12].copy_from_slice(&7001u32.to_be_bytes());
    let c = {
        let ip = &synack[14..];
        let mut sum = crate::wire::ipv6_pseudo_sum(&ip[8..24], &ip[24..40], 20, 6);
        ip[40..56].iter().for_each(|_| ());
        let mut t = ip[40..60].to_vec();
        t[16] = 0;
        t[17] = 0;
        sum = crate::wire::sum16(&t, sum);
        !crate::wire::fold(sum)
    };
    synack[14 + 40 + 16..14 + 40 + 18].copy_from_slice(&c.to_be_bytes());
    let mut b = Bench::new(&[(Port::Wan, synack)]);
    b.open(&fib, &[(Port::Lan, syn)]);
    b.run(&fib);
    assert_eq!(
        b.tx(Port::Lan).len(),
        1,
        "the SYN-ACK of a LAN-initiated connection passes"
    );
}

#[test]
fn pinhole_admits_its_port_by_interface_id_under_any_prefix() {
    let mut fib = lab_fib();
    let mut iid = [0u8; 8];
    iid.copy_from_slice(&HOST6.octets()[8..]);
    fib.firewall.pinholes = vec![Pinhole {
        host: PinholeHost::Iid(iid),
        proto: 6,
        ports: (443, 443),
    }];
    let open = tcp6(SERVER6, HOST6, 50000, 443, true, Port::Wan);
    let closed = tcp6(SERVER6, HOST6, 50000, 444, true, Port::Wan);
    let mut b = Bench::new(&[(Port::Wan, open), (Port::Wan, closed)]);
    b.run(&fib);
    assert_eq!(b.tx(Port::Lan).len(), 1);
    assert_eq!(b.err(NodeId::Ip6Firewall, "pinhole-opened"), 1);
    assert_eq!(b.err(NodeId::Ip6Firewall, "no-session"), 1);

    // Renumbered: the host keeps its interface identifier under a new /64.
    let new_prefix = v6("2001:db8:0:121::");
    fib.lan_prefix = Some(new_prefix);
    let mut host = new_prefix.octets();
    host[8..].copy_from_slice(&iid);
    let host = Ipv6Addr::from(host);
    fib.nd_lan.insert(host, HOST_MAC);
    let mut b = Bench::new(&[(Port::Wan, tcp6(SERVER6, host, 50001, 443, true, Port::Wan))]);
    b.run(&fib);
    assert_eq!(
        b.tx(Port::Lan).len(),
        1,
        "the pinhole follows the host to the new prefix"
    );
}

/// An ICMPv6 error from the WAN quoting `quoted` (an IPv6 packet).
fn icmp6_error_about(t: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(GW_MAC, WAN_MAC).ipv6(
        v6("2001:db8:1::1").octets(),
        HOST6.octets(),
        60,
    );
    let b = b.icmpv6(etherparse::Icmpv6Type::Unknown {
        type_u8: t,
        code_u8: code,
        bytes5to8: [0, 0, 5, 0xdc],
    });
    let mut v = Vec::new();
    b.write(&mut v, quoted).unwrap();
    v
}

#[test]
fn icmpv6_errors_pass_only_when_related() {
    let fib = lab_fib();
    let up = ipv6_udp("2001:db8:0:111::10", "2001:db8:ffff::10", 64, 10, Port::Lan);
    let unknown = ipv6_udp("2001:db8:0:111::10", "2001:db8:ffff::99", 64, 10, Port::Lan);
    let mut b = Bench::new(&[
        (Port::Wan, icmp6_error_about(2, 0, &up[14..])),
        (Port::Wan, icmp6_error_about(1, 4, &up[14..])),
        (Port::Wan, icmp6_error_about(2, 0, &unknown[14..])),
        (Port::Wan, icmp6_error_about(4, 0, &up[14..])),
    ]);
    b.open(&fib, &[(Port::Lan, up.clone())]);
    let before = b.graph.fw.sessions.stats();
    b.run(&fib);
    assert_eq!(
        b.tx(Port::Lan).len(),
        2,
        "packet too big and unreachable about our flow"
    );
    assert_eq!(b.err(NodeId::Ip6Firewall, "icmp-unrelated"), 1);
    assert_eq!(
        b.err(NodeId::Ip6Firewall, "icmp-type"),
        1,
        "parameter problem code 0 is not forwarded"
    );
    // Errors never create, delete or refresh sessions.
    assert_eq!(b.graph.fw.sessions.stats(), before);
}

#[test]
fn type_0_routing_header_is_dropped() {
    let fib = lab_fib();
    let mut f = ipv6_udp("2001:db8:0:111::10", "2001:db8:ffff::10", 64, 16, Port::Lan);
    // Turn the UDP header + payload into RH0 (segments left 1) + UDP.
    let ip = 14;
    f[ip + 6] = 43;
    let rh = [17u8, 2, 0, 1, 0, 0, 0, 0];
    f.splice(ip + 40..ip + 40, rh.iter().copied().chain([0u8; 16]));
    let plen = (f.len() - ip - 40) as u16;
    f[ip + 4..ip + 6].copy_from_slice(&plen.to_be_bytes());
    let mut b = Bench::new(&[(Port::Lan, f)]);
    b.run(&fib);
    assert_eq!(b.err(NodeId::Ip6Firewall, "rh0"), 1);
}

/// A LAN SYN as Linux sends it (MSS 1460, SACK, timestamps, window scale).
fn lan_syn_with_options() -> Vec<u8> {
    let b = PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv4(HOST4, SERVER4, 64)
        .tcp(40001, 443, 1000, 64240)
        .syn()
        .options(&[
            etherparse::TcpOptionElement::MaximumSegmentSize(1460),
            etherparse::TcpOptionElement::SelectiveAcknowledgementPermitted,
            etherparse::TcpOptionElement::Timestamp(1, 0),
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::WindowScale(7),
        ])
        .unwrap();
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

#[test]
fn syn_into_the_tunnel_is_clamped_with_a_valid_checksum() {
    let fib = lab_fib();
    let mut b = Bench::new(&[(Port::Lan, lan_syn_with_options())]);
    b.run(&fib);
    let out = b.tx(Port::Wan);
    assert_eq!(out.len(), 1);
    assert_eq!(b.err(NodeId::Ip4Firewall, "mss-clamped"), 1);
    let inner = &out[0][14 + 40..];
    let ip = etherparse::Ipv4HeaderSlice::from_slice(inner).unwrap();
    let tcp = etherparse::TcpHeaderSlice::from_slice(&inner[20..]).unwrap();
    let mss = tcp.options_iterator().find_map(|o| match o {
        Ok(etherparse::TcpOptionElement::MaximumSegmentSize(m)) => Some(m),
        _ => None,
    });
    assert_eq!(mss, Some(1420));
    let want = tcp
        .to_header()
        .calc_checksum_ipv4_raw(ip.source(), ip.destination(), &[])
        .unwrap();
    assert_eq!(
        tcp.checksum(),
        want,
        "incremental update equals a full recompute"
    );
}

#[test]
fn non_df_too_big_for_the_tunnel_leaves_as_two_fragments_that_reassemble() {
    let fib = lab_fib();
    let payload = vec![0x42u8; 1500 - 20 - 8];
    let b0 = PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv4(HOST4, SERVER4, 64)
        .udp(40002, 7);
    let mut input = Vec::new();
    b0.write(&mut input, &payload).unwrap();
    input[20] &= !0x40; // etherparse sets DF
    fix_ipv4_checksum(&mut input[14..34]);
    let mut b = Bench::with_spare(&[(Port::Lan, input.clone())], 4);
    b.run(&fib);
    let out = b.tx(Port::Wan);
    assert_eq!(out.len(), 2, "two fragments");
    assert_eq!(b.err(NodeId::Ip6Fragment, "fragmented"), 1);
    assert!(out.iter().all(|f| f.len() - 14 <= 1500));
    assert_eq!(out[0].len(), 14 + 40 + 8 + 1448);
    let mut r = Reassembler::new(4, 2000, 1_000_000_000);
    let mut whole = vec![0u8; 2000];
    assert_eq!(r.insert(&out[1][14..], 0, &mut whole), Ok(None));
    let n = r
        .insert(&out[0][14..], 0, &mut whole)
        .unwrap()
        .expect("complete");
    assert_eq!(n, 40 + 1500);
    assert_eq!(whole[6], 4, "IPv4 inside");
    let mut expected = input[14..].to_vec();
    expected[8] = 63;
    fix_ipv4_checksum(&mut expected[..20]);
    assert_eq!(&whole[40..n], &expected[..]);
}

#[test]
fn aftr_fragments_are_reassembled_then_decapsulated() {
    let fib = lab_fib();
    // A 1500-byte IPv4 UDP reply, fragmented by the AFTR as Linux does at MTU 1500.
    let inner = {
        let b = PacketBuilder::ipv4(SERVER4, HOST4, 50).udp(7, 40003);
        let mut v = Vec::new();
        b.write(&mut v, &[0x24u8; 1472]).unwrap();
        v
    };
    let frag = |off: usize, data: &[u8], more: bool| {
        let mut v = Vec::new();
        v.extend_from_slice(&WAN_MAC);
        v.extend_from_slice(&GW_MAC);
        v.extend_from_slice(&[0x86, 0xdd]);
        let mut h = [0u8; 48];
        h[0] = 0x60;
        h[4..6].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        h[6] = 44;
        h[7] = 60;
        h[8..24].copy_from_slice(&crate::testkit::AFTR.octets());
        h[24..40].copy_from_slice(&crate::testkit::B4.octets());
        h[40] = 4;
        h[42..44].copy_from_slice(&((off as u16) | u16::from(more)).to_be_bytes());
        h[44..48].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        v.extend_from_slice(&h);
        v.extend_from_slice(data);
        v
    };
    let f1 = frag(0, &inner[..1448], true);
    let f2 = frag(1448, &inner[1448..], false);
    let opener = {
        let b = PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
            .ipv4(HOST4, SERVER4, 64)
            .udp(40003, 7);
        let mut v = Vec::new();
        b.write(&mut v, b"hi").unwrap();
        v
    };
    let mut b = Bench::new(&[(Port::Wan, f2), (Port::Wan, f1)]);
    b.open(&fib, &[(Port::Lan, opener)]);
    b.run(&fib);
    let out = b.tx(Port::Lan);
    assert_eq!(out.len(), 1, "one LAN frame out of two fragments");
    assert_eq!(b.err(NodeId::Ip6Reassembly, "buffered"), 1);
    let mut expected = inner.clone();
    expected[8] = 49;
    fix_ipv4_checksum(&mut expected[..20]);
    assert_eq!(&out[0][14..], &expected[..]);
    assert_eq!(&out[0][0..6], &HOST_MAC);
}

#[test]
fn echo_requests_to_the_router_are_limited_per_source() {
    let fib = lab_fib();
    let echo = |src: &str| {
        let b = PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
            .ipv6(v6(src).octets(), v6("2001:db8:0:111::1").octets(), 64)
            .icmpv6_echo_request(1, 1);
        let mut v = Vec::new();
        b.write(&mut v, b"ping").unwrap();
        (Port::Lan, v)
    };
    let mut frames: Vec<_> = (0..10).map(|_| echo("2001:db8:0:111::10")).collect();
    frames.push(echo("2001:db8:0:111::11"));
    let mut b = Bench::new(&frames);
    b.run(&fib);
    assert_eq!(
        b.graph.out.punt.len(),
        7,
        "6 from the first source, 1 from the second"
    );
    assert_eq!(b.err(NodeId::Ip6Local, "echo-rate"), 4);
}

#[test]
fn nd_below_hop_limit_255_is_dropped() {
    let fib = lab_fib();
    let ns = |hop: u8| {
        let b = PacketBuilder::ethernet2(GW_MAC, WAN_MAC)
            .ipv6(v6("fe80::1").octets(), v6("ff02::1:ff00:2").octets(), hop)
            .icmpv6(etherparse::Icmpv6Type::Unknown {
                type_u8: 135,
                code_u8: 0,
                bytes5to8: [0; 4],
            });
        let mut v = Vec::new();
        b.write(&mut v, &v6("2001:db8:0:100::2").octets()).unwrap();
        (Port::Wan, v)
    };
    let mut b = Bench::new(&[ns(255), ns(64)]);
    b.run(&fib);
    assert_eq!(b.graph.out.punt.len(), 1);
    assert_eq!(b.err(NodeId::Ip6Local, "nd-hop-limit"), 1);
}

/// The nodes that write a LAN neighbor's MAC mark the neighbor as used, so
/// the control thread's engine keeps and re-probes it (RFC 4861 7.3.3);
/// traffic to the WAN marks nothing here.
#[test]
fn forwarding_to_a_lan_neighbor_marks_it_used() {
    use crate::testkit::{lab_fib, open_sessions, unlimited_graph, vector, FrameArena, Path};
    let fib = lab_fib();
    let mut g = unlimited_graph();
    for (path, want) in [
        (
            Path::Decap,
            vec![std::net::IpAddr::V4(crate::testkit::HOST4)],
        ),
        (Path::Encap, vec![]),
    ] {
        let frames = vector(path, 8, 128);
        open_sessions(&mut g, &fib, &frames);
        let _ = g.fw.neigh_use.take();
        let mut arena = FrameArena::new(8);
        arena.run(&mut g, &fib, &crate::testkit::as_refs(&frames), 1);
        assert_eq!(g.fw.neigh_use.take(), want, "{}", path.name());
    }
}

// Tunnel and MTU (issue 15 M5, m1, m3, m8).
mod mtu;
// Input and decapsulation (issue 15 m2, m5, m6, m7, m9).
/// Issue 17: batched session lookups keep per-packet order.
mod flowtable;
mod issue15;
// Related ICMP errors and echo direction (issue 15 M1).
mod security;
// A proxied WAN /64 (issue 19).
mod ndproxy;
/// MLD queries reach the control thread from either port (the MLD host
/// answers them); behind the Hop-by-Hop header with its Router Alert.
mod mld {
    use super::*;

    fn query(src_mac: [u8; 6], dst_mac: [u8; 6], src: &str, dst: &str) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst_mac);
        f.extend_from_slice(&src_mac);
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&(8u16 + 28).to_be_bytes());
        f.extend_from_slice(&[0, 1]);
        f.extend_from_slice(&v6(src).octets());
        f.extend_from_slice(&v6(dst).octets());
        f.extend_from_slice(&[58, 0, 5, 2, 0, 0, 1, 0]);
        let mut q = vec![130, 0, 0, 0, 0x27, 0x10, 0, 0];
        q.extend_from_slice(&[0; 16]);
        q.extend_from_slice(&[2, 125, 0, 0]);
        f.extend_from_slice(&q);
        f
    }

    #[test]
    fn queries_from_link_local_sources_are_punted_on_both_ports() {
        let fib = lab_fib();
        let all_nodes = [0x33, 0x33, 0, 0, 0, 1];
        let mut b = Bench::new(&[
            (
                Port::Lan,
                query(HOST_MAC, all_nodes, "fe80::600", "ff02::1"),
            ),
            (Port::Wan, query(GW_MAC, all_nodes, "fe80::1", "ff02::1")),
            (
                Port::Wan,
                query(
                    GW_MAC,
                    [0x33, 0x33, 0xff, 0, 0, 2],
                    "fe80::1",
                    "ff02::1:ff00:2",
                ),
            ),
            (
                Port::Wan,
                query(GW_MAC, all_nodes, "2001:db8:0:100::1", "ff02::1"),
            ),
        ]);
        b.run(&fib);
        assert_eq!(b.graph.out.punt.len(), 3);
        assert!(b
            .graph
            .out
            .punt
            .as_slice()
            .iter()
            .all(|&i| b.graph.meta[usize::from(i)].punt == PuntReason::Local));
        assert_eq!(b.err(NodeId::Ip6Local, "mld-not-link-local"), 1);
    }
}
