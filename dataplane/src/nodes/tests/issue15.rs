//! Issue 15, findings m2, m5, m6, m7, m9 of the dataplane review and the
//! nits "RFC 1858" and "link-local weak host": each test failed on the
//! code before its fix.

use std::net::Ipv6Addr;

use etherparse::PacketBuilder;

use super::{
    aftr_frame, fix_ipv4_checksum, inet_reply, ipv6_udp, lan_tcp_syn, v6, Bench, HOST4, SERVER4,
};
use crate::graph::NodeId;
use crate::tables::Port;
use crate::testkit::{lab_fib, AFTR, B4, GW_MAC, HOST_MAC, LAN_MAC, WAN_MAC};

/// Destination Options with RFC 2473's Tunnel Encapsulation Limit (type 4,
/// length 1, value 4) and a PadN of one byte: what Linux ip6tnl sends.
/// The first byte (Next Header) is filled in by the builders.
const ENCAP_LIMIT: [u8; 8] = [0, 0, 4, 1, 4, 1, 1, 0];

/// An IPv6 frame from the AFTR's side (gateway MAC to ours), `src` to
/// `dst`, traffic class `tc`, Next Header `nh`, `payload` after the fixed
/// header.
fn wan_ip6(src: Ipv6Addr, dst: Ipv6Addr, tc: u8, nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&WAN_MAC);
    v.extend_from_slice(&GW_MAC);
    v.extend_from_slice(&[0x86, 0xdd]);
    v.extend_from_slice(&[0x60 | (tc >> 4), (tc & 0x0f) << 4, 0, 0]);
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[nh, 60]);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(payload);
    v
}

/// `ENCAP_LIMIT` with Next Header `nh`.
fn dst_opts(nh: u8) -> Vec<u8> {
    let mut d = ENCAP_LIMIT.to_vec();
    d[0] = nh;
    d
}

/// A Fragment header: next header, offset in bytes, M, identification.
fn frag_hdr(nh: u8, off: usize, more: bool, id: u32) -> Vec<u8> {
    let mut h = vec![nh, 0];
    h.extend_from_slice(&((off as u16) | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

/// The server's reply with TOS `tos` (checksum fixed).
fn reply_tos(tos: u8) -> Vec<u8> {
    let mut r = inet_reply(50);
    r[1] = tos;
    fix_ipv4_checksum(&mut r[..20]);
    r
}

/// What the LAN host gets for the inner packet `inner`: TTL one less.
fn delivered(inner: &[u8]) -> Vec<u8> {
    let mut ip = inner.to_vec();
    ip[8] -= 1;
    fix_ipv4_checksum(&mut ip[..20]);
    let mut v = Vec::new();
    v.extend_from_slice(&HOST_MAC);
    v.extend_from_slice(&LAN_MAC);
    v.extend_from_slice(&[0x08, 0x00]);
    v.extend_from_slice(&ip);
    v
}

/// A 1500-byte UDP reply from the server, and the LAN packet that opens its session.
fn big_reply(tos: u8) -> (Vec<u8>, Vec<u8>) {
    let b = PacketBuilder::ipv4(SERVER4, HOST4, 50).udp(7, 40003);
    let mut inner = Vec::new();
    b.write(&mut inner, &[0x24u8; 1472]).unwrap();
    inner[1] = tos;
    fix_ipv4_checksum(&mut inner[..20]);
    let b = PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv4(HOST4, SERVER4, 64)
        .udp(40003, 7);
    let mut opener = Vec::new();
    b.write(&mut opener, b"hi").unwrap();
    (inner, opener)
}

// ---- m2: ECN on decapsulation and reassembly (RFC 6040 4.2, RFC 3168 5.3)

#[test]
fn m2_outer_ce_marks_an_ect_inner_packet_ce() {
    let fib = lab_fib();
    let mut frames = Vec::new();
    let mut want = Vec::new();
    // (outer ECN, inner ECN) -> inner ECN after decapsulation.
    for (outer, inner, out) in [
        (3, 2, 3),
        (3, 1, 3),
        (3, 3, 3),
        (1, 2, 1),
        (2, 1, 1),
        (0, 2, 2),
    ] {
        let r = reply_tos(0xb8 | inner);
        frames.push((Port::Wan, wan_ip6(AFTR, B4, 0xb8 | outer, 4, &r)));
        want.push(delivered(&reply_tos(0xb8 | out)));
    }
    let mut b = Bench::new(&frames);
    b.open(&fib, &[(Port::Lan, lan_tcp_syn(64, 0, b""))]);
    b.run(&fib);
    // `delivered` recomputes the checksum: the incremental update must agree.
    assert_eq!(b.tx(Port::Lan), want);
}

#[test]
fn m2_outer_ce_on_a_not_ect_inner_packet_is_dropped_and_counted() {
    let fib = lab_fib();
    let mut b = Bench::new(&[
        (Port::Wan, wan_ip6(AFTR, B4, 0x03, 4, &reply_tos(0))),
        (Port::Wan, wan_ip6(AFTR, B4, 0x02, 4, &reply_tos(0))),
    ]);
    b.open(&fib, &[(Port::Lan, lan_tcp_syn(64, 0, b""))]);
    b.run(&fib);
    assert_eq!(b.err(NodeId::DsliteDecap, "ecn-ce-not-ect"), 1);
    // Outer ECT(0) over Not-ECT: the inner packet is left as it is.
    assert_eq!(b.tx(Port::Lan), vec![delivered(&reply_tos(0))]);
}

#[test]
fn m2_reassembled_packet_is_ce_if_any_fragment_was() {
    let fib = lab_fib();
    let (inner, opener) = big_reply(0x02);
    let f1 = [frag_hdr(4, 0, true, 7), inner[..1448].to_vec()].concat();
    let f2 = [frag_hdr(4, 1448, false, 7), inner[1448..].to_vec()].concat();
    let mut b = Bench::new(&[
        (Port::Wan, wan_ip6(AFTR, B4, 0x02, 44, &f1)),
        (Port::Wan, wan_ip6(AFTR, B4, 0x03, 44, &f2)),
    ]);
    b.open(&fib, &[(Port::Lan, opener)]);
    b.run(&fib);
    let mut ce = inner.clone();
    ce[1] = 0x03;
    fix_ipv4_checksum(&mut ce[..20]);
    assert_eq!(b.tx(Port::Lan), vec![delivered(&ce)]);
}

// ---- m5: IPv4-in-IPv6 behind Hop-by-Hop and Destination Options

#[test]
fn m5_encap_limit_option_from_the_aftr_is_decapsulated() {
    let fib = lab_fib();
    let r = inet_reply(50);
    let dst = [dst_opts(4), r.clone()].concat();
    // Hop-by-Hop (PadN of 6), then the same Destination Options.
    let hbh = [vec![60, 0, 1, 4, 0, 0, 0, 0], dst.clone()].concat();
    let mut b = Bench::new(&[
        (Port::Wan, wan_ip6(AFTR, B4, 0, 60, &dst)),
        (Port::Wan, wan_ip6(AFTR, B4, 0, 0, &hbh)),
    ]);
    b.open(&fib, &[(Port::Lan, lan_tcp_syn(64, 0, b""))]);
    b.run(&fib);
    assert_eq!(b.tx(Port::Lan), vec![delivered(&r), delivered(&r)]);
}

#[test]
fn m5_unknown_options_are_dropped_by_their_high_bits_and_counted() {
    let fib = lab_fib();
    let r = inet_reply(50);
    let with = |t: u8| {
        let mut d = dst_opts(4);
        d[2] = t;
        wan_ip6(AFTR, B4, 0, 60, &[d, r.clone()].concat())
    };
    // 0x1e: "skip if unknown"; 0x5e, 0x9e, 0xde: "discard".
    let mut b = Bench::new(&[
        (Port::Wan, with(0x1e)),
        (Port::Wan, with(0x5e)),
        (Port::Wan, with(0x9e)),
        (Port::Wan, with(0xde)),
        // Header length past the packet.
        (
            Port::Wan,
            wan_ip6(AFTR, B4, 0, 60, &[4, 9, 1, 4, 0, 0, 0, 0]),
        ),
    ]);
    b.open(&fib, &[(Port::Lan, lan_tcp_syn(64, 0, b""))]);
    b.run(&fib);
    assert_eq!(b.tx(Port::Lan), vec![delivered(&r)]);
    assert_eq!(b.err(NodeId::Ip6Input, "tunnel-options"), 4);
}

#[test]
fn m5_encap_limit_with_outer_fragments_is_reassembled() {
    let fib = lab_fib();
    let (inner, opener) = big_reply(0);
    // As Linux sends it: the Destination Options header before the
    // Fragment header (unfragmentable part, no routing header).
    let before = |off: usize, data: &[u8], more: bool| {
        let p = [dst_opts(44), frag_hdr(4, off, more, 9), data.to_vec()].concat();
        (Port::Wan, wan_ip6(AFTR, B4, 0, 60, &p))
    };
    // As RFC 8200 4.1 orders it: after the Fragment header, so it is the
    // start of the reassembled payload.
    let whole = [dst_opts(4), inner.clone()].concat();
    let after = |off: usize, more: bool, end: usize| {
        let p = [frag_hdr(60, off, more, 10), whole[off..end].to_vec()].concat();
        (Port::Wan, wan_ip6(AFTR, B4, 0, 44, &p))
    };
    let mut b = Bench::new(&[
        before(0, &inner[..1440], true),
        before(1440, &inner[1440..], false),
        after(1440, false, whole.len()),
        after(0, true, 1440),
    ]);
    b.open(&fib, &[(Port::Lan, opener)]);
    b.run(&fib);
    assert_eq!(b.tx(Port::Lan), vec![delivered(&inner), delivered(&inner)]);
}

// ---- m6: forbidden destinations (RFC 4291 2.5.2/2.5.3, RFC 6092 REC-3)

#[test]
fn m6_loopback_unspecified_mapped_destinations_are_not_forwarded() {
    let fib = lab_fib();
    let host = "2001:db8:0:111::10";
    let forbidden = [
        "::1",
        "::",
        "::ffff:192.0.2.1",
        "::192.0.2.1",
        "::2:0:0:1",
        "fec0::1",
        "2001:10::1",
        "2001:20::1",
    ];
    let mut frames: Vec<_> = forbidden
        .iter()
        .map(|d| (Port::Lan, ipv6_udp(host, d, 64, 10, Port::Lan)))
        .collect();
    // Documentation (the lab's own addresses) and NAT64 stay forwardable.
    for d in ["2001:db8:ffff::10", "64:ff9b::c633:640a", "64:ff9b:1::1"] {
        frames.push((Port::Lan, ipv6_udp(host, d, 64, 10, Port::Lan)));
    }
    let mut b = Bench::new(&frames);
    b.run(&fib);
    assert_eq!(b.tx(Port::Wan).len(), 3);
    assert_eq!(
        b.err(NodeId::Ip6Input, "forbidden-address"),
        forbidden.len() as u64
    );
}

#[test]
fn m6_forbidden_sources_from_the_wan_are_dropped() {
    let fib = lab_fib();
    let host = "2001:db8:0:111::10";
    let mut b = Bench::new(&[
        (
            Port::Wan,
            ipv6_udp("::ffff:192.0.2.1", host, 64, 10, Port::Wan),
        ),
        (Port::Wan, ipv6_udp("fec0::1", host, 64, 10, Port::Wan)),
    ]);
    b.run(&fib);
    assert!(b.tx(Port::Lan).is_empty());
    assert_eq!(b.err(NodeId::Ip6Input, "forbidden-address"), 2);
}

// ---- m7: link-layer broadcast and multicast (RFC 1812 5.3.4, 4.3.2.7; RFC 4443 2.4(e))

fn to_mac(mut f: Vec<u8>, mac: [u8; 6]) -> Vec<u8> {
    f[..6].copy_from_slice(&mac);
    f
}

const BCAST: [u8; 6] = [0xff; 6];
const MCAST6: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

#[test]
fn m7_link_layer_broadcast_unicast_ip_is_not_forwarded() {
    let fib = lab_fib();
    let up6 = ipv6_udp("2001:db8:0:111::10", "2001:db8:ffff::10", 64, 10, Port::Lan);
    let down6 = ipv6_udp("2001:db8:ffff::10", "2001:db8:0:111::10", 60, 10, Port::Wan);
    let up4 = lan_tcp_syn(64, 0, b"");
    let mut b = Bench::new(&[
        (Port::Lan, to_mac(up6.clone(), BCAST)),
        (Port::Lan, to_mac(up6.clone(), MCAST6)),
        (Port::Wan, to_mac(down6.clone(), BCAST)),
        (Port::Lan, to_mac(up4.clone(), BCAST)),
        (Port::Lan, to_mac(up4.clone(), [0x01, 0, 0x5e, 0, 0, 1])),
    ]);
    b.open(&fib, &[(Port::Lan, up6.clone())]);
    b.run(&fib);
    assert!(b.tx(Port::Wan).is_empty(), "nothing forwarded");
    assert!(b.tx(Port::Lan).is_empty(), "nothing forwarded");
    assert_eq!(b.err(NodeId::Ip6Input, "l2-group-unicast"), 3);
    assert_eq!(b.err(NodeId::Ip4Input, "l2-group-unicast"), 2);
}

#[test]
fn m7_link_layer_broadcast_gets_no_icmp_error() {
    let mut fib = lab_fib();
    fib.stale_lan_prefixes = vec![v6("2001:db8:0:1ff::").octets()[..8].try_into().unwrap()];
    let mut b = Bench::new(&[
        (Port::Lan, to_mac(lan_tcp_syn(1, 0, b""), BCAST)),
        (
            Port::Lan,
            to_mac(
                ipv6_udp("2001:db8:0:111::10", "2001:db8:ffff::10", 1, 10, Port::Lan),
                BCAST,
            ),
        ),
        (
            Port::Lan,
            to_mac(
                ipv6_udp("2001:db8:0:1ff::10", "2001:db8:ffff::10", 64, 10, Port::Lan),
                MCAST6,
            ),
        ),
    ]);
    b.run(&fib);
    assert!(b.tx(Port::Lan).is_empty(), "no error sent back");
    assert_eq!(b.err(NodeId::Icmp4Error, "sent"), 0);
    assert_eq!(b.err(NodeId::Icmp6Error, "sent"), 0);
}

#[test]
fn m7_link_layer_broadcast_to_the_router_or_ip_broadcast_is_still_delivered() {
    let fib = lab_fib();
    // An IPv4 broadcast and a packet to the router's own address, both
    // sent to the broadcast MAC: the router's own (as Linux by default).
    let bcast = {
        let b = PacketBuilder::ethernet2(HOST_MAC, BCAST)
            .ipv4(HOST4, [255, 255, 255, 255], 64)
            .udp(68, 67);
        let mut v = Vec::new();
        b.write(&mut v, &[0; 8]).unwrap();
        v
    };
    let own = {
        let b = PacketBuilder::ethernet2(HOST_MAC, BCAST)
            .ipv4(HOST4, [192, 168, 2, 1], 64)
            .udp(5353, 53);
        let mut v = Vec::new();
        b.write(&mut v, &[0; 8]).unwrap();
        v
    };
    let mut b = Bench::new(&[(Port::Lan, bcast), (Port::Lan, own)]);
    b.run(&fib);
    assert_eq!(b.graph.out.punt.len(), 2);
}

// ---- m9: only the AFTR's fragments are reassembled

#[test]
fn m9_fragments_from_others_than_the_aftr_are_not_reassembled() {
    let fib = lab_fib();
    let (inner, opener) = big_reply(0);
    let aftr = |off: usize, data: &[u8], more: bool| {
        let p = [frag_hdr(4, off, more, 0x77), data.to_vec()].concat();
        (Port::Wan, wan_ip6(AFTR, B4, 0, 44, &p))
    };
    let mut frames = vec![aftr(0, &inner[..1448], true)];
    // 64 first fragments from elsewhere: enough to evict every context.
    for k in 0..64u16 {
        let src = Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 0, 0, 0, 0, k + 1);
        let p = [frag_hdr(4, 0, true, 1), vec![0x45; 64]].concat();
        frames.push((Port::Wan, wan_ip6(src, B4, 0, 44, &p)));
    }
    frames.push(aftr(1448, &inner[1448..], false));
    let mut b = Bench::new(&frames);
    b.open(&fib, &[(Port::Lan, opener)]);
    b.run(&fib);
    assert_eq!(b.tx(Port::Lan), vec![delivered(&inner)]);
    assert_eq!(b.err(NodeId::Ip6Reassembly, "evicted"), 0);
    assert_eq!(b.err(NodeId::Ip6Input, "fragment-not-from-aftr"), 64);
}

// ---- Nits: RFC 1858, link-local weak host

#[test]
fn rfc1858_inbound_tcp_fragment_at_offset_8_is_dropped() {
    let fib = lab_fib();
    // The server's first fragment (admitted with its session), then one at
    // offset 8 that would rewrite the TCP flags.
    let mut first = inet_reply(50);
    first[6] = 0x20; // MF
    fix_ipv4_checksum(&mut first[..20]);
    let mut evil = inet_reply(50);
    evil[6..8].copy_from_slice(&1u16.to_be_bytes()); // offset 1 (8 bytes)
    fix_ipv4_checksum(&mut evil[..20]);
    let mut b = Bench::new(&[
        (Port::Wan, aftr_frame(AFTR, &first)),
        (Port::Wan, aftr_frame(AFTR, &evil)),
    ]);
    b.open(&fib, &[(Port::Lan, lan_tcp_syn(64, 0, b""))]);
    b.run(&fib);
    assert_eq!(b.tx(Port::Lan).len(), 1, "only the first fragment");
    assert_eq!(b.err(NodeId::Ip4Firewall, "tcp-fragment-offset-8"), 1);
}

#[test]
fn link_local_of_the_other_side_is_not_ours() {
    let fib = lab_fib();
    let wan_ll = fib.wan.link_local.unwrap().to_string();
    let lan_ll = fib.lan.link_local.unwrap().to_string();
    let echo = |from: Port, dst: &str| {
        let (smac, dmac) = match from {
            Port::Lan => (HOST_MAC, LAN_MAC),
            Port::Wan => (GW_MAC, WAN_MAC),
        };
        let b = PacketBuilder::ethernet2(smac, dmac)
            .ipv6(v6("fe80::99").octets(), v6(dst).octets(), 64)
            .icmpv6_echo_request(1, 1);
        let mut v = Vec::new();
        b.write(&mut v, b"ping").unwrap();
        (from, v)
    };
    let mut b = Bench::new(&[
        echo(Port::Wan, &lan_ll),
        echo(Port::Lan, &wan_ll),
        echo(Port::Wan, &wan_ll),
        echo(Port::Lan, &lan_ll),
    ]);
    b.run(&fib);
    assert_eq!(b.graph.out.punt.len(), 2, "each side's own link-local only");
    assert_eq!(b.err(NodeId::Ip6Input, "link-local"), 2);
}
