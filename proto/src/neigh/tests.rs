//! Behavioural tests: frames in, exact frames out, on a fake clock.

use crate::jitter::Jitter;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet,
    Ipv4Repr, Ipv6Packet, Ipv6Repr, NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};

use super::frames::{self, ArpFields, Icmpv6Frame};
use super::*;

const WAN_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
const LAN_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];
const HOST_MAC: Mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const OTHER_MAC: Mac = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef];

const LAN_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const HOST_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 100);
const LAN_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const LAN_GUA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const HOST_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456);
const HOST_GUA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
const ALL_NODES_MAC: Mac = [0x33, 0x33, 0, 0, 0, 1];

const SEC: Duration = Duration::from_secs(1);

fn lan_addrs() -> IfaceAddrs {
    IfaceAddrs {
        mac: LAN_MAC,
        ipv4: Some((LAN_V4, 24)),
        link_local: LAN_LL,
        ipv6: vec![(LAN_GUA, 64)],
        mtu: 1500,
    }
}

fn wan_addrs() -> IfaceAddrs {
    IfaceAddrs {
        mac: WAN_MAC,
        ipv4: Some((Ipv4Addr::new(100, 64, 0, 2), 24)),
        link_local: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2),
        ipv6: vec![(Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 2), 64)],
        mtu: 1500,
    }
}

fn engine_with(cfg: NeighConfig) -> (NeighborEngine, Instant) {
    let t0 = Instant::now();
    let mut eng = NeighborEngine::new(cfg, wan_addrs(), lan_addrs(), t0);
    let mut out = Vec::new();
    eng.poll(t0, &mut out);
    eng.poll(t0 + SEC, &mut out);
    assert_eq!(eng.usable_ipv6(Side::Lan), vec![LAN_LL, LAN_GUA]);
    (eng, t0 + SEC)
}

/// An engine whose addresses all passed DAD.
fn engine() -> (NeighborEngine, Instant) {
    engine_with(NeighConfig::default())
}

/// Bytes as a capture tool prints them.
fn hex(dump: &str) -> Vec<u8> {
    dump.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

fn arp_in(op: ArpOperation, sha: Mac, spa: Ipv4Addr, tpa: Ipv4Addr, eth_dst: Mac) -> Vec<u8> {
    frames::arp(
        eth_dst,
        ArpFields {
            op,
            sha,
            spa,
            tha: [0; 6],
            tpa,
        },
    )
}

fn arp_request(sha: Mac, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    arp_in(ArpOperation::Request, sha, spa, tpa, frames::BROADCAST_MAC)
}

fn arp_reply(sha: Mac, spa: Ipv4Addr) -> Vec<u8> {
    arp_in(ArpOperation::Reply, sha, spa, LAN_V4, LAN_MAC)
}

fn icmp6_in(
    src_mac: Mac,
    src_ip: Ipv6Addr,
    dst_ip: Ipv6Addr,
    hop: u8,
    repr: &Icmpv6Repr,
) -> Vec<u8> {
    let dst_mac = if dst_ip.is_multicast() {
        frames::ipv6_multicast_mac(dst_ip)
    } else {
        LAN_MAC
    };
    Icmpv6Frame {
        src_mac,
        dst_mac,
        src_ip,
        dst_ip,
        hop_limit: hop,
    }
    .build(repr)
}

fn ns_in(src_ip: Ipv6Addr, dst_ip: Ipv6Addr, target: Ipv6Addr, lla: Option<Mac>) -> Vec<u8> {
    ns_hop(src_ip, dst_ip, target, lla, 255)
}

fn ns_hop(
    src_ip: Ipv6Addr,
    dst_ip: Ipv6Addr,
    target: Ipv6Addr,
    lla: Option<Mac>,
    hop: u8,
) -> Vec<u8> {
    icmp6_in(
        HOST_MAC,
        src_ip,
        dst_ip,
        hop,
        &Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
            target_addr: target,
            lladdr: lla.map(|m| RawHardwareAddress::from_bytes(&m)),
        }),
    )
}

fn na_in(
    src_mac: Mac,
    dst_ip: Ipv6Addr,
    target: Ipv6Addr,
    flags: NdiscNeighborFlags,
    lla: Option<Mac>,
) -> Vec<u8> {
    icmp6_in(
        src_mac,
        target,
        dst_ip,
        255,
        &Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            flags,
            target_addr: target,
            lladdr: lla.map(|m| RawHardwareAddress::from_bytes(&m)),
        }),
    )
}

fn echo6_in(src_ip: Ipv6Addr, dst_ip: Ipv6Addr, data: &[u8]) -> Vec<u8> {
    icmp6_in(
        HOST_MAC,
        src_ip,
        dst_ip,
        64,
        &Icmpv6Repr::EchoRequest {
            ident: 0x4242,
            seq_no: 9,
            data,
        },
    )
}

fn echo4_in(dst_ip: Ipv4Addr, data: &[u8]) -> Vec<u8> {
    let icmp = Icmpv4Repr::EchoRequest {
        ident: 0x1234,
        seq_no: 7,
        data,
    };
    let ip = Ipv4Repr {
        src_addr: HOST_V4,
        dst_addr: dst_ip,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64,
    };
    let caps = ChecksumCapabilities::default();
    let mut buf = vec![0u8; 14 + ip.buffer_len() + icmp.buffer_len()];
    EthernetRepr {
        src_addr: EthernetAddress(HOST_MAC),
        dst_addr: EthernetAddress(LAN_MAC),
        ethertype: EthernetProtocol::Ipv4,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..]), &caps);
    icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[34..]), &caps);
    buf
}

/// Recomputes the ICMPv6 checksum after a test edited the message.
fn refill_icmp6_checksum(frame: &mut [u8]) {
    let ip = Ipv6Packet::new_checked(&frame[14..]).expect("ipv6");
    let (src, dst, len) = (ip.src_addr(), ip.dst_addr(), usize::from(ip.payload_len()));
    Icmpv6Packet::new_unchecked(&mut frame[54..54 + len]).fill_checksum(&src, &dst);
}

/// A routed packet waiting for its destination MAC; `tag` identifies it.
fn data_packet(tag: u8) -> Vec<u8> {
    let mut p = vec![0u8; 14];
    p[6..12].copy_from_slice(&LAN_MAC);
    p[12..14].copy_from_slice(&[0x08, 0x00]);
    p.extend_from_slice(&[tag; 46]);
    p
}

fn with_dst(mut packet: Vec<u8>, mac: Mac) -> Vec<u8> {
    packet[..6].copy_from_slice(&mac);
    packet
}

fn eth(frame: &[u8]) -> EthernetRepr {
    EthernetRepr::parse(&EthernetFrame::new_checked(frame).expect("eth")).expect("eth")
}

fn parse_arp(frame: &[u8]) -> (EthernetRepr, ArpRepr) {
    let e = EthernetFrame::new_checked(frame).expect("eth");
    let arp = ArpRepr::parse(&ArpPacket::new_checked(e.payload()).expect("arp")).expect("arp");
    (eth(frame), arp)
}

/// Parses an ICMPv6 frame we emitted, verifying its checksum.
fn parse6(frame: &[u8]) -> (EthernetRepr, Ipv6Repr, Icmpv6Repr<'_>) {
    let e = EthernetFrame::new_checked(frame).expect("eth");
    assert_eq!(e.ethertype(), EthernetProtocol::Ipv6);
    let ipp = Ipv6Packet::new_checked(e.payload()).expect("ipv6");
    let ip = Ipv6Repr::parse(&ipp).expect("ipv6");
    assert_eq!(ip.next_header, IpProtocol::Icmpv6);
    let icmp = Icmpv6Packet::new_checked(ipp.payload()).expect("icmpv6");
    let repr = Icmpv6Repr::parse(
        &ip.src_addr,
        &ip.dst_addr,
        &icmp,
        &ChecksumCapabilities::default(),
    )
    .expect("valid icmpv6 and checksum");
    (eth(frame), ip, repr)
}

fn state_of(eng: &NeighborEngine, now: Instant, ip: IpAddr) -> Option<NeighState> {
    eng.dump(now)
        .into_iter()
        .find(|r| r.ip == ip)
        .map(|r| r.state)
}

fn mac_of(eng: &NeighborEngine, side: Side, ip: IpAddr) -> Option<Mac> {
    eng.entries()
        .find(|(s, i, _)| *s == side && *i == ip)
        .map(|(_, _, m)| m)
}

/// Resolves HOST_V4 through a request/reply exchange; it ends REACHABLE.
fn learn_host_v4(eng: &mut NeighborEngine, now: Instant) {
    let mut out = Vec::new();
    eng.resolve(now, Side::Lan, HOST_V4.into(), &data_packet(0), &mut out);
    let v = eng.handle_frame(now, Side::Lan, &arp_reply(HOST_MAC, HOST_V4), &mut out);
    assert_eq!(v, Verdict::ArpLearned);
    assert_eq!(
        state_of(eng, now, HOST_V4.into()),
        Some(NeighState::Reachable)
    );
}

// ---------------------------------------------------------------- ARP

#[test]
fn arp_request_from_capture_gets_exact_reply() {
    let (mut eng, now) = engine();
    // Linux asking for 192.168.1.1, as captured (with Ethernet padding).
    let request = hex("ff ff ff ff ff ff 52 54 00 12 34 56 08 06 00 01
         08 00 06 04 00 01 52 54 00 12 34 56 c0 a8 01 64
         00 00 00 00 00 00 c0 a8 01 01 00 00 00 00 00 00
         00 00 00 00 00 00 00 00 00 00 00 00");
    let expected = hex("52 54 00 12 34 56 02 00 00 00 00 02 08 06 00 01
         08 00 06 04 00 02 02 00 00 00 00 02 c0 a8 01 01
         52 54 00 12 34 56 c0 a8 01 64 00 00 00 00 00 00
         00 00 00 00 00 00 00 00 00 00 00 00");
    let mut out = Vec::new();
    let gen = eng.generation();
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &request, &mut out),
        Verdict::ArpReplied
    );
    assert_eq!(
        out,
        vec![Outgoing {
            side: Side::Lan,
            frame: expected
        }]
    );
    assert_eq!(eng.counters().arp_rx, 1);
    assert_eq!(eng.counters().arp_reply_tx, 1);
    // The requester is cached, unconfirmed.
    assert_eq!(state_of(&eng, now, HOST_V4.into()), Some(NeighState::Stale));
    assert_eq!(mac_of(&eng, Side::Lan, HOST_V4.into()), Some(HOST_MAC));
    assert!(eng.generation() > gen);
}

#[test]
fn arp_for_someone_else_is_ignored() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    let other = Ipv4Addr::new(192, 168, 1, 50);
    let v = eng.handle_frame(
        now,
        Side::Lan,
        &arp_request(HOST_MAC, HOST_V4, other),
        &mut out,
    );
    assert_eq!(v, Verdict::Dropped(DropReason::NotForUs));
    // Gratuitous ARP: not aimed at us either.
    let v = eng.handle_frame(
        now,
        Side::Lan,
        &arp_request(HOST_MAC, HOST_V4, HOST_V4),
        &mut out,
    );
    assert_eq!(v, Verdict::Dropped(DropReason::NotForUs));
    // Our LAN address asked on the WAN side.
    let v = eng.handle_frame(
        now,
        Side::Wan,
        &arp_request(HOST_MAC, Ipv4Addr::new(100, 64, 0, 1), LAN_V4),
        &mut out,
    );
    assert_eq!(v, Verdict::Dropped(DropReason::NotForUs));
    assert!(out.is_empty());
    assert_eq!(eng.counters().not_for_us, 3);
    assert_eq!(eng.entries().count(), 0);
}

#[test]
fn arp_reply_nobody_asked_for_is_not_learned() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    let v = eng.handle_frame(now, Side::Lan, &arp_reply(HOST_MAC, HOST_V4), &mut out);
    assert_eq!(v, Verdict::Dropped(DropReason::ArpUnsolicited));
    assert_eq!(eng.counters().arp_unsolicited, 1);
    assert_eq!(eng.entries().count(), 0);
    // Nor can a reply redirect a neighbor we already know.
    learn_host_v4(&mut eng, now);
    let v = eng.handle_frame(now, Side::Lan, &arp_reply(OTHER_MAC, HOST_V4), &mut out);
    assert_eq!(v, Verdict::Dropped(DropReason::ArpUnsolicited));
    assert_eq!(mac_of(&eng, Side::Lan, HOST_V4.into()), Some(HOST_MAC));
}

#[test]
fn bad_arp_is_counted() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    // Hardware length 8.
    let mut bad_hlen = arp_request(HOST_MAC, HOST_V4, LAN_V4);
    bad_hlen[18] = 8;
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &bad_hlen, &mut out),
        Verdict::Dropped(DropReason::ArpBad)
    );
    // Multicast sender hardware address.
    let mut mcast = arp_request(HOST_MAC, HOST_V4, LAN_V4);
    mcast[22] = 0x01;
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &mcast, &mut out),
        Verdict::Dropped(DropReason::ArpBad)
    );
    // Someone else claiming our address.
    assert_eq!(
        eng.handle_frame(
            now,
            Side::Lan,
            &arp_request(HOST_MAC, LAN_V4, LAN_V4),
            &mut out
        ),
        Verdict::Dropped(DropReason::ArpConflict)
    );
    assert!(out.is_empty());
    assert_eq!(eng.counters().arp_bad, 2);
    assert_eq!(eng.counters().arp_conflict, 1);
    assert_eq!(eng.counters().arp_rx, 3);
}

#[test]
fn arp_probe_is_answered_without_learning() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    let probe = arp_request(HOST_MAC, Ipv4Addr::UNSPECIFIED, LAN_V4);
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &probe, &mut out),
        Verdict::ArpReplied
    );
    let (e, arp) = parse_arp(&out[0].frame);
    assert_eq!(e.dst_addr, EthernetAddress(HOST_MAC));
    let ArpRepr::EthernetIpv4 {
        target_protocol_addr,
        ..
    } = arp
    else {
        panic!("not an IPv4 ARP");
    };
    assert_eq!(target_protocol_addr, Ipv4Addr::UNSPECIFIED);
    assert_eq!(eng.entries().count(), 0);
}

// ---------------------------------------------------------------- NS / NA

#[test]
fn ns_from_capture_for_global_gets_exact_na() {
    let (mut eng, now) = engine();
    // Linux resolving 2001:db8:1::1 from fe80::5054:ff:fe12:3456.
    let ns = hex("33 33 ff 00 00 01 52 54 00 12 34 56 86 dd 60 00
         00 00 00 20 3a ff fe 80 00 00 00 00 00 00 50 54
         00 ff fe 12 34 56 ff 02 00 00 00 00 00 00 00 00
         00 01 ff 00 00 01 87 00 42 e9 00 00 00 00 20 01
         0d b8 00 01 00 00 00 00 00 00 00 00 00 01 01 01
         52 54 00 12 34 56");
    // NA from our link-local, flags R|S|O, target LLA = our MAC.
    let expected = hex("52 54 00 12 34 56 02 00 00 00 00 02 86 dd 60 00
         00 00 00 20 3a ff fe 80 00 00 00 00 00 00 00 00
         00 00 00 00 00 01 fe 80 00 00 00 00 00 00 50 54
         00 ff fe 12 34 56 88 00 e5 26 e0 00 00 00 20 01
         0d b8 00 01 00 00 00 00 00 00 00 00 00 01 02 01
         02 00 00 00 00 02");
    let mut out = Vec::new();
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &ns, &mut out),
        Verdict::NaSent
    );
    assert_eq!(
        out,
        vec![Outgoing {
            side: Side::Lan,
            frame: expected
        }]
    );
    assert_eq!(eng.counters().ns_rx, 1);
    assert_eq!(eng.counters().na_tx, 1);
    // The solicitor's source LLA is cached as STALE (RFC 4861 7.2.3).
    assert_eq!(state_of(&eng, now, HOST_LL.into()), Some(NeighState::Stale));
    assert_eq!(mac_of(&eng, Side::Lan, HOST_LL.into()), Some(HOST_MAC));
}

#[test]
fn ns_for_link_local_gets_na_from_link_local() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    let ns = ns_in(
        HOST_LL,
        frames::solicited_node(LAN_LL),
        LAN_LL,
        Some(HOST_MAC),
    );
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &ns, &mut out),
        Verdict::NaSent
    );
    assert_eq!(out.len(), 1);
    let (e, ip, icmp) = parse6(&out[0].frame);
    assert_eq!(e.src_addr, EthernetAddress(LAN_MAC));
    assert_eq!(e.dst_addr, EthernetAddress(HOST_MAC));
    assert_eq!(
        (ip.src_addr, ip.dst_addr, ip.hop_limit),
        (LAN_LL, HOST_LL, 255)
    );
    assert_eq!(
        icmp,
        Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            flags: NdiscNeighborFlags::ROUTER
                | NdiscNeighborFlags::SOLICITED
                | NdiscNeighborFlags::OVERRIDE,
            target_addr: LAN_LL,
            lladdr: Some(RawHardwareAddress::from_bytes(&LAN_MAC)),
        })
    );
}

#[test]
fn unicast_ns_without_lla_is_answered_to_ethernet_source() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    // A NUD probe: unicast to our address, no source LLA.
    let ns = ns_in(HOST_GUA, LAN_GUA, LAN_GUA, None);
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &ns, &mut out),
        Verdict::NaSent
    );
    let (e, ip, _) = parse6(&out[0].frame);
    assert_eq!(e.dst_addr, EthernetAddress(HOST_MAC));
    assert_eq!(ip.dst_addr, HOST_GUA);
    // Nothing to learn without an LLA.
    assert_eq!(eng.entries().count(), 0);
}

#[test]
fn ns_with_hop_limit_64_is_dropped() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    let ns = ns_hop(
        HOST_LL,
        frames::solicited_node(LAN_GUA),
        LAN_GUA,
        Some(HOST_MAC),
        64,
    );
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &ns, &mut out),
        Verdict::Dropped(DropReason::NsBad)
    );
    assert!(out.is_empty());
    assert_eq!(eng.counters().ns_bad, 1);
    assert_eq!(eng.entries().count(), 0);
}

#[test]
fn ns_with_bad_checksum_is_dropped() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    let mut ns = ns_in(
        HOST_LL,
        frames::solicited_node(LAN_GUA),
        LAN_GUA,
        Some(HOST_MAC),
    );
    ns[56] ^= 0x01;
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &ns, &mut out),
        Verdict::Dropped(DropReason::ChecksumBad)
    );
    assert!(out.is_empty());
    assert_eq!(eng.counters().icmp_checksum_bad, 1);
    assert_eq!(eng.counters().ns_rx, 1);
}

#[test]
fn ns_failing_rfc4861_validation_is_dropped() {
    let (mut eng, now) = engine();
    let sn = frames::solicited_node(LAN_GUA);
    let mut code_1 = ns_in(HOST_LL, sn, LAN_GUA, Some(HOST_MAC));
    code_1[55] = 1;
    refill_icmp6_checksum(&mut code_1);
    let mut zero_len_option = ns_in(HOST_LL, sn, LAN_GUA, Some(HOST_MAC));
    zero_len_option[79] = 0;
    refill_icmp6_checksum(&mut zero_len_option);
    let cases = [
        code_1,
        zero_len_option,
        // Multicast target.
        ns_in(
            HOST_LL,
            sn,
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
            Some(HOST_MAC),
        ),
        // DAD solicitation carrying a source LLA.
        ns_in(Ipv6Addr::UNSPECIFIED, sn, LAN_GUA, Some(HOST_MAC)),
        // DAD solicitation not sent to the solicited-node group.
        ns_in(Ipv6Addr::UNSPECIFIED, LAN_GUA, LAN_GUA, None),
        // Spoofed from our own address.
        ns_in(LAN_LL, sn, LAN_GUA, Some(HOST_MAC)),
    ];
    let mut out = Vec::new();
    for (i, ns) in cases.iter().enumerate() {
        assert_eq!(
            eng.handle_frame(now, Side::Lan, ns, &mut out),
            Verdict::Dropped(DropReason::NsBad),
            "case {i}"
        );
    }
    assert!(out.is_empty());
    assert_eq!(eng.counters().ns_bad, cases.len() as u64);
    assert_eq!(eng.entries().count(), 0);
}

#[test]
fn ns_for_addresses_not_ours_here_is_ignored() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    let stranger = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x55);
    let ns = ns_in(
        HOST_LL,
        frames::solicited_node(stranger),
        stranger,
        Some(HOST_MAC),
    );
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &ns, &mut out),
        Verdict::Dropped(DropReason::NotForUs)
    );
    // Our LAN address solicited on the WAN side.
    let ns = ns_in(
        HOST_LL,
        frames::solicited_node(LAN_GUA),
        LAN_GUA,
        Some(HOST_MAC),
    );
    assert_eq!(
        eng.handle_frame(now, Side::Wan, &ns, &mut out),
        Verdict::Dropped(DropReason::NotForUs)
    );
    assert!(out.is_empty());
    assert_eq!(eng.entries().count(), 0);
}

#[test]
fn dad_by_another_node_for_our_address_gets_multicast_na() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    let ns = ns_in(
        Ipv6Addr::UNSPECIFIED,
        frames::solicited_node(LAN_GUA),
        LAN_GUA,
        None,
    );
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &ns, &mut out),
        Verdict::NaSent
    );
    let (e, ip, icmp) = parse6(&out[0].frame);
    assert_eq!(e.dst_addr, EthernetAddress(ALL_NODES_MAC));
    assert_eq!(ip.dst_addr, Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1));
    let Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { flags, .. }) = icmp else {
        panic!("not an NA: {icmp:?}");
    };
    // Not solicited: the DAD node has no address we could answer.
    assert_eq!(
        flags,
        NdiscNeighborFlags::ROUTER | NdiscNeighborFlags::OVERRIDE
    );
}

#[test]
fn ns_from_neighbor_completes_its_incomplete_entry() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    eng.resolve(now, Side::Lan, HOST_GUA.into(), &data_packet(1), &mut out);
    out.clear();
    let ns = ns_in(
        HOST_GUA,
        frames::solicited_node(LAN_GUA),
        LAN_GUA,
        Some(HOST_MAC),
    );
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &ns, &mut out),
        Verdict::NaSent
    );
    // The held packet goes out first, then our NA.
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].frame, with_dst(data_packet(1), HOST_MAC));
    assert_eq!(
        state_of(&eng, now, HOST_GUA.into()),
        Some(NeighState::Stale)
    );
}

#[test]
fn na_rules_follow_rfc4861() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    let so = NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE;
    // Unsolicited NA for an unknown target creates nothing.
    let na = na_in(HOST_MAC, LAN_LL, HOST_GUA, so, Some(HOST_MAC));
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &na, &mut out),
        Verdict::Dropped(DropReason::NaUnsolicited)
    );
    assert_eq!(eng.entries().count(), 0);

    eng.resolve(now, Side::Lan, HOST_GUA.into(), &data_packet(1), &mut out);
    // An NA without target LLA cannot resolve an INCOMPLETE entry.
    let na = na_in(HOST_MAC, LAN_LL, HOST_GUA, so, None);
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &na, &mut out),
        Verdict::Dropped(DropReason::NaBad)
    );
    // Solicited flag on a multicast NA is invalid.
    let na = na_in(
        HOST_MAC,
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
        HOST_GUA,
        so,
        Some(HOST_MAC),
    );
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &na, &mut out),
        Verdict::Dropped(DropReason::NaBad)
    );
    let na = na_in(HOST_MAC, LAN_LL, HOST_GUA, so, Some(HOST_MAC));
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &na, &mut out),
        Verdict::NaAccepted
    );
    assert_eq!(
        state_of(&eng, now, HOST_GUA.into()),
        Some(NeighState::Reachable)
    );

    // Without Override a different LLA is not taken, only distrusted.
    let gen = eng.generation();
    let na = na_in(
        OTHER_MAC,
        LAN_LL,
        HOST_GUA,
        NdiscNeighborFlags::SOLICITED,
        Some(OTHER_MAC),
    );
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &na, &mut out),
        Verdict::NaAccepted
    );
    assert_eq!(mac_of(&eng, Side::Lan, HOST_GUA.into()), Some(HOST_MAC));
    assert_eq!(
        state_of(&eng, now, HOST_GUA.into()),
        Some(NeighState::Stale)
    );
    assert_eq!(eng.generation(), gen);

    // With Override (unsolicited, e.g. a NIC swap) it is taken, as STALE.
    let na = na_in(
        OTHER_MAC,
        LAN_LL,
        HOST_GUA,
        NdiscNeighborFlags::OVERRIDE,
        Some(OTHER_MAC),
    );
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &na, &mut out),
        Verdict::NaAccepted
    );
    assert_eq!(mac_of(&eng, Side::Lan, HOST_GUA.into()), Some(OTHER_MAC));
    assert_eq!(
        state_of(&eng, now, HOST_GUA.into()),
        Some(NeighState::Stale)
    );
    assert!(eng.generation() > gen);

    // Someone advertising our own address is reported, never learned.
    let na = na_in(
        OTHER_MAC,
        LAN_LL,
        LAN_GUA,
        NdiscNeighborFlags::OVERRIDE,
        Some(OTHER_MAC),
    );
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &na, &mut out),
        Verdict::Dropped(DropReason::NaConflict)
    );
    assert_eq!(eng.counters().na_rx, 7);
    assert_eq!(eng.counters().na_bad, 2);
}

// ---------------------------------------------------------------- echo

#[test]
fn echo_v4_reply_mirrors_request() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    let data = b"hello ipoe-router, 0123456789";
    let req = echo4_in(LAN_V4, data);
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &req, &mut out),
        Verdict::EchoReplied
    );
    let frame = &out[0].frame;
    assert_eq!(eth(frame).dst_addr, EthernetAddress(HOST_MAC));
    assert_eq!(eth(frame).src_addr, EthernetAddress(LAN_MAC));
    let ipp = Ipv4Packet::new_checked(&frame[14..]).expect("ipv4");
    let ip = Ipv4Repr::parse(&ipp, &ChecksumCapabilities::default()).expect("ipv4 checksum");
    assert_eq!(
        (ip.src_addr, ip.dst_addr, ip.hop_limit),
        (LAN_V4, HOST_V4, 64)
    );
    let icmp = Icmpv4Packet::new_checked(ipp.payload()).expect("icmp");
    assert_eq!(
        Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()),
        Ok(Icmpv4Repr::EchoReply {
            ident: 0x1234,
            seq_no: 7,
            data
        })
    );

    // Another address, or a corrupted checksum: no reply.
    let v = eng.handle_frame(
        now,
        Side::Lan,
        &echo4_in(Ipv4Addr::new(192, 168, 1, 2), data),
        &mut out,
    );
    assert_eq!(v, Verdict::Dropped(DropReason::NotForUs));
    let mut bad = echo4_in(LAN_V4, data);
    bad[40] ^= 0xff;
    let v = eng.handle_frame(now, Side::Lan, &bad, &mut out);
    assert_eq!(v, Verdict::Dropped(DropReason::ChecksumBad));
    assert_eq!(out.len(), 1);
    assert_eq!(eng.counters().echo_reply_tx, 1);
}

#[test]
fn echo_v6_reply_comes_from_the_pinged_address() {
    let (mut eng, now) = engine();
    let data = [0xa5u8; 56];
    for (src, dst) in [(HOST_GUA, LAN_GUA), (HOST_LL, LAN_LL)] {
        let mut out = Vec::new();
        let v = eng.handle_frame(now, Side::Lan, &echo6_in(src, dst, &data), &mut out);
        assert_eq!(v, Verdict::EchoReplied);
        let (e, ip, icmp) = parse6(&out[0].frame);
        assert_eq!(e.dst_addr, EthernetAddress(HOST_MAC));
        assert_eq!((ip.src_addr, ip.dst_addr, ip.hop_limit), (dst, src, 64));
        assert_eq!(
            icmp,
            Icmpv6Repr::EchoReply {
                ident: 0x4242,
                seq_no: 9,
                data: &data
            }
        );
    }
    let mut out = Vec::new();
    let mut bad = echo6_in(HOST_GUA, LAN_GUA, &data);
    bad[60] ^= 0x10;
    let v = eng.handle_frame(now, Side::Lan, &bad, &mut out);
    assert_eq!(v, Verdict::Dropped(DropReason::ChecksumBad));
    // Echo to a multicast group is not answered.
    let v = eng.handle_frame(
        now,
        Side::Lan,
        &echo6_in(HOST_LL, Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), &data),
        &mut out,
    );
    assert_eq!(v, Verdict::Dropped(DropReason::NotForUs));
    assert!(out.is_empty());
    assert_eq!(eng.counters().echo_reply_tx, 2);
}

#[test]
fn other_traffic_to_us_is_left_to_other_modules() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    // A Router Solicitation.
    let rs = icmp6_in(
        HOST_MAC,
        HOST_LL,
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2),
        255,
        &Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit {
            lladdr: Some(RawHardwareAddress::from_bytes(&HOST_MAC)),
        }),
    );
    assert_eq!(
        eng.handle(now, Side::Lan, Input::Frame(&rs), &mut out),
        Verdict::Unhandled
    );
    assert!(out.is_empty());
    assert_eq!(eng.counters().unhandled, 1);
}

// ---------------------------------------------------------------- resolve

#[test]
fn resolve_miss_sends_arp_and_reply_releases_held_in_order() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    for tag in 1..=3 {
        eng.resolve(now, Side::Lan, HOST_V4.into(), &data_packet(tag), &mut out);
    }
    // One broadcast request for three packets.
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].side, Side::Lan);
    let (e, arp) = parse_arp(&out[0].frame);
    assert_eq!(e.dst_addr, EthernetAddress::BROADCAST);
    assert_eq!(e.src_addr, EthernetAddress(LAN_MAC));
    assert_eq!(
        arp,
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress(LAN_MAC),
            source_protocol_addr: LAN_V4,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: HOST_V4,
        }
    );
    let row = &eng.dump(now)[0];
    assert_eq!(
        (row.state, row.held, row.mac),
        (NeighState::Incomplete, 3, None)
    );
    assert_eq!(eng.entries().count(), 0);

    out.clear();
    let gen = eng.generation();
    let v = eng.handle_frame(now, Side::Lan, &arp_reply(HOST_MAC, HOST_V4), &mut out);
    assert_eq!(v, Verdict::ArpLearned);
    let released: Vec<_> = out.iter().map(|o| o.frame.clone()).collect();
    let expected: Vec<_> = (1..=3)
        .map(|t| with_dst(data_packet(t), HOST_MAC))
        .collect();
    assert_eq!(released, expected);
    assert!(out.iter().all(|o| o.side == Side::Lan));
    assert!(eng.generation() > gen);
    assert_eq!(
        state_of(&eng, now, HOST_V4.into()),
        Some(NeighState::Reachable)
    );

    // Now known: sent at once.
    out.clear();
    eng.resolve(now, Side::Lan, HOST_V4.into(), &data_packet(4), &mut out);
    assert_eq!(out[0].frame, with_dst(data_packet(4), HOST_MAC));
    assert_eq!(eng.counters().held_sent, 3);
    assert_eq!(eng.counters().resolve_hit, 1);
}

#[test]
fn resolve_miss_sends_ns_and_na_releases_held() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    eng.resolve(now, Side::Lan, HOST_GUA.into(), &data_packet(1), &mut out);
    eng.resolve(now, Side::Lan, HOST_GUA.into(), &data_packet(2), &mut out);
    assert_eq!(out.len(), 1);
    let sn = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0x0100);
    let (e, ip, icmp) = parse6(&out[0].frame);
    assert_eq!(
        e.dst_addr,
        EthernetAddress([0x33, 0x33, 0xff, 0x00, 0x01, 0x00])
    );
    assert_eq!(e.src_addr, EthernetAddress(LAN_MAC));
    assert_eq!((ip.src_addr, ip.dst_addr, ip.hop_limit), (LAN_LL, sn, 255));
    assert_eq!(
        icmp,
        Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
            target_addr: HOST_GUA,
            lladdr: Some(RawHardwareAddress::from_bytes(&LAN_MAC)),
        })
    );
    out.clear();
    let na = na_in(
        HOST_MAC,
        LAN_LL,
        HOST_GUA,
        NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
        Some(HOST_MAC),
    );
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &na, &mut out),
        Verdict::NaAccepted
    );
    let released: Vec<_> = out.iter().map(|o| o.frame.clone()).collect();
    assert_eq!(
        released,
        vec![
            with_dst(data_packet(1), HOST_MAC),
            with_dst(data_packet(2), HOST_MAC)
        ]
    );
    assert_eq!(mac_of(&eng, Side::Lan, HOST_GUA.into()), Some(HOST_MAC));
    assert_eq!(
        state_of(&eng, now, HOST_GUA.into()),
        Some(NeighState::Reachable)
    );
}

#[test]
fn hold_overflow_drops_the_oldest() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    for tag in 1..=6 {
        eng.resolve(now, Side::Lan, HOST_V4.into(), &data_packet(tag), &mut out);
    }
    assert_eq!(eng.counters().resolve_hold, 6);
    assert_eq!(eng.counters().resolve_hold_overflow, 2);
    out.clear();
    eng.handle_frame(now, Side::Lan, &arp_reply(HOST_MAC, HOST_V4), &mut out);
    let released: Vec<_> = out.iter().map(|o| o.frame.clone()).collect();
    let expected: Vec<_> = (3..=6)
        .map(|t| with_dst(data_packet(t), HOST_MAC))
        .collect();
    assert_eq!(released, expected);
}

#[test]
fn invalid_resolve_requests_are_refused() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    let cases: [(IpAddr, Vec<u8>); 6] = [
        (HOST_V4.into(), vec![0; 13]),
        (HOST_V4.into(), vec![0; 14 + 1501]),
        (Ipv4Addr::new(10, 0, 0, 1).into(), data_packet(1)),
        (Ipv4Addr::new(192, 168, 1, 255).into(), data_packet(1)),
        (LAN_GUA.into(), data_packet(1)),
        (
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).into(),
            data_packet(1),
        ),
    ];
    for (ip, packet) in &cases {
        eng.resolve(now, Side::Lan, *ip, packet, &mut out);
    }
    assert!(out.is_empty());
    assert!(eng.dump(now).is_empty());
    assert_eq!(eng.counters().resolve_invalid, cases.len() as u64);
}

#[test]
fn miss_flood_is_capped_and_spares_live_neighbors() {
    let (mut eng, now) = engine();
    learn_host_v4(&mut eng, now);
    let mut out = Vec::new();
    let mut rng = Jitter::new(0x9e37_79b9_7f4a_7c15);
    for _ in 0..10_000 {
        // Random interface identifier in the LAN /64.
        let prefix = u128::from(LAN_GUA) & !u128::from(u64::MAX);
        let ip = Ipv6Addr::from(prefix | u128::from(rng.next_u64()));
        eng.resolve(now, Side::Lan, ip.into(), &data_packet(9), &mut out);
    }
    let cfg = NeighConfig::default();
    let dump = eng.dump(now);
    let incomplete = dump
        .iter()
        .filter(|r| r.state == NeighState::Incomplete)
        .count();
    assert_eq!(incomplete, cfg.max_incomplete);
    // One NS per admitted miss, nothing for the refused ones.
    assert_eq!(out.len(), cfg.max_incomplete);
    assert_eq!(
        eng.counters().incomplete_full,
        10_000 - cfg.max_incomplete as u64
    );
    assert!(
        dump.iter().map(|r| r.held).sum::<usize>() <= cfg.max_incomplete * cfg.hold_per_neighbor
    );

    // The live neighbor is untouched and still resolves immediately.
    assert_eq!(
        state_of(&eng, now, HOST_V4.into()),
        Some(NeighState::Reachable)
    );
    out.clear();
    eng.resolve(now, Side::Lan, HOST_V4.into(), &data_packet(5), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].frame, with_dst(data_packet(5), HOST_MAC));

    // Once the flood's entries fail, misses are admitted again.
    let later = now + cfg.retrans * cfg.max_probes;
    for k in 1..=cfg.max_probes {
        eng.poll(now + cfg.retrans * k, &mut out);
    }
    assert_eq!(eng.counters().resolve_failed, cfg.max_incomplete as u64);
    out.clear();
    eng.resolve(later, Side::Lan, HOST_GUA.into(), &data_packet(1), &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn table_full_resolution_evicts_lru_stale_never_reachable() {
    let cfg = NeighConfig {
        max_entries: 4,
        ..NeighConfig::default()
    };
    let (mut eng, t) = engine_with(cfg);
    let mut out = Vec::new();
    let host = |i: u8| Ipv4Addr::new(192, 168, 1, 10 + i);
    let mac = |i: u8| [0x52, 0x54, 0, 0, 0, 10 + i];
    // Four STALE neighbors, learned one second apart.
    for i in 0..4 {
        let now = t + SEC * u32::from(i);
        eng.handle_frame(
            now,
            Side::Lan,
            &arp_request(mac(i), host(i), LAN_V4),
            &mut out,
        );
    }
    let now = t + SEC * 4;
    // A fifth that only announces itself is answered, not learned.
    out.clear();
    let v = eng.handle_frame(
        now,
        Side::Lan,
        &arp_request(mac(4), host(4), LAN_V4),
        &mut out,
    );
    assert_eq!(v, Verdict::ArpReplied);
    assert_eq!(out.len(), 1);
    assert_eq!(eng.counters().table_full, 1);
    assert_eq!(mac_of(&eng, Side::Lan, host(0).into()), Some(mac(0)));
    // One we resolve takes the place of the LRU STALE entry.
    eng.resolve(now, Side::Lan, host(4).into(), &data_packet(4), &mut out);
    let v = eng.handle_frame(now, Side::Lan, &arp_reply(mac(4), host(4)), &mut out);
    assert_eq!(v, Verdict::ArpLearned);
    assert_eq!(eng.entries().count(), 4);
    assert_eq!(
        mac_of(&eng, Side::Lan, host(0).into()),
        None,
        "LRU STALE evicted"
    );
    assert_eq!(eng.counters().stale_evicted, 1);

    // Confirm all four: used (-> PROBE), then answered (-> REACHABLE).
    for i in 1..=4 {
        eng.touch(now, Side::Lan, host(i).into());
        eng.handle_frame(now, Side::Lan, &arp_reply(mac(i), host(i)), &mut out);
        assert_eq!(
            state_of(&eng, now, host(i).into()),
            Some(NeighState::Reachable)
        );
    }
    // A fifth neighbor is still answered but cannot displace them.
    out.clear();
    let v = eng.handle_frame(
        now,
        Side::Lan,
        &arp_request(mac(5), host(5), LAN_V4),
        &mut out,
    );
    assert_eq!(v, Verdict::ArpReplied);
    assert_eq!(out.len(), 1);
    assert_eq!(eng.counters().table_full, 2);
    assert_eq!(eng.entries().count(), 4);
    // Nor can a resolution that completes: its held packet is dropped.
    eng.resolve(now, Side::Lan, host(6).into(), &data_packet(6), &mut out);
    let v = eng.handle_frame(now, Side::Lan, &arp_reply(mac(6), host(6)), &mut out);
    assert_eq!(v, Verdict::Dropped(DropReason::TableFull));
    assert_eq!(eng.counters().held_dropped, 1);
    assert_eq!(eng.dump(now).len(), 4);
}

/// Found with thc-ipv6 `flood_solicitate6` in the lab (tests/tests/
/// lab_attacks.rs): solicitations for our address from made-up sources,
/// each with its own link-layer address, used to evict every STALE
/// neighbor (the LAN hosts, the WAN's default router) within milliseconds,
/// so their traffic stalled behind a new resolution. Each is still
/// answered, but only learned while the table has room.
#[test]
fn ns_flood_from_made_up_sources_never_evicts_a_neighbor() {
    let cfg = NeighConfig::default();
    let (mut eng, t) = engine();
    let mut out = Vec::new();
    // A host we resolved, and one we learned from its own solicitation;
    // both STALE by the time the flood comes.
    learn_host_v4(&mut eng, t);
    let v = eng.handle_frame(
        t,
        Side::Lan,
        &ns_in(
            HOST_GUA,
            frames::solicited_node(LAN_GUA),
            LAN_GUA,
            Some(HOST_MAC),
        ),
        &mut out,
    );
    assert_eq!(v, Verdict::NaSent);
    let now = t + cfg.reachable + SEC;
    eng.poll(now, &mut out);
    for ip in [IpAddr::from(HOST_V4), HOST_GUA.into()] {
        assert_eq!(state_of(&eng, now, ip), Some(NeighState::Stale));
    }

    let mut rng = Jitter::new(0x5eed_f100d);
    let flood = 10_000u64;
    out.clear();
    for _ in 0..flood {
        let r = rng.next_u64();
        let src = Ipv6Addr::from((0xfe80u128 << 112) | u128::from(r >> 8));
        let b = r.to_be_bytes();
        let lla = [0x02, b[2], b[3], b[4], b[5], b[6]];
        let v = eng.handle_frame(
            now,
            Side::Lan,
            &ns_in(src, frames::solicited_node(LAN_GUA), LAN_GUA, Some(lla)),
            &mut out,
        );
        assert_eq!(v, Verdict::NaSent);
    }
    // Every solicitation answered; the table at its bound; nobody evicted.
    assert_eq!(out.len() as u64, flood);
    assert_eq!(eng.entries().count(), cfg.max_entries);
    assert_eq!(eng.counters().stale_evicted, 0);
    assert_eq!(
        eng.counters().table_full,
        flood - (cfg.max_entries as u64 - 2)
    );
    assert_eq!(mac_of(&eng, Side::Lan, HOST_V4.into()), Some(HOST_MAC));
    assert_eq!(mac_of(&eng, Side::Lan, HOST_GUA.into()), Some(HOST_MAC));

    // A neighbor we resolve still gets in, in place of a flood entry once
    // the live ones have been used.
    eng.touch(now, Side::Lan, HOST_V4.into());
    eng.touch(now, Side::Lan, HOST_GUA.into());
    let other = Ipv4Addr::new(192, 168, 1, 200);
    out.clear();
    eng.resolve(now, Side::Lan, other.into(), &data_packet(7), &mut out);
    let v = eng.handle_frame(now, Side::Lan, &arp_reply(OTHER_MAC, other), &mut out);
    assert_eq!(v, Verdict::ArpLearned);
    assert_eq!(eng.counters().stale_evicted, 1);
    assert_eq!(eng.entries().count(), cfg.max_entries);
    for ip in [IpAddr::from(HOST_V4), HOST_GUA.into(), other.into()] {
        assert!(mac_of(&eng, Side::Lan, ip).is_some(), "{ip} kept");
    }
}

// ---------------------------------------------------------------- timers

#[test]
fn incomplete_retransmits_then_fails() {
    let (mut eng, t) = engine();
    let mut out = Vec::new();
    eng.resolve(t, Side::Lan, HOST_V4.into(), &data_packet(1), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(eng.poll(t, &mut out), Some(t + SEC));
    assert_eq!(eng.poll(t + SEC / 2, &mut out), Some(t + SEC));
    assert_eq!(out.len(), 1);
    assert_eq!(eng.poll(t + SEC, &mut out), Some(t + SEC * 2));
    assert_eq!(eng.poll(t + SEC * 2, &mut out), Some(t + SEC * 3));
    assert_eq!(out.len(), 3);
    for o in &out {
        let (e, _) = parse_arp(&o.frame);
        assert_eq!(e.dst_addr, EthernetAddress::BROADCAST);
    }
    assert_eq!(eng.counters().arp_request_tx, 3);
    // max_probes requests went unanswered: give up.
    assert_eq!(eng.poll(t + SEC * 3, &mut out), None);
    assert_eq!(out.len(), 3);
    assert!(eng.dump(t + SEC * 3).is_empty());
    assert_eq!(eng.counters().resolve_failed, 1);
    assert_eq!(eng.counters().held_dropped, 1);
}

#[test]
fn reachable_goes_stale_then_probe_then_removed() {
    let (mut eng, t) = engine();
    learn_host_v4(&mut eng, t);
    let gen = eng.generation();
    let mut out = Vec::new();
    assert_eq!(eng.poll(t, &mut out), Some(t + SEC * 30));
    let t = t + SEC * 30;
    eng.poll(t, &mut out);
    assert_eq!(state_of(&eng, t, HOST_V4.into()), Some(NeighState::Stale));
    // Still published: a STALE MAC is used while being reconfirmed.
    assert_eq!(mac_of(&eng, Side::Lan, HOST_V4.into()), Some(HOST_MAC));
    assert!(out.is_empty());

    eng.touch(t, Side::Lan, HOST_V4.into());
    assert_eq!(state_of(&eng, t, HOST_V4.into()), Some(NeighState::Probe));
    for k in 0..3 {
        eng.poll(t + SEC * k, &mut out);
    }
    assert_eq!(out.len(), 3);
    for o in &out {
        let (e, arp) = parse_arp(&o.frame);
        // Unicast probes to the cached MAC.
        assert_eq!(e.dst_addr, EthernetAddress(HOST_MAC));
        let ArpRepr::EthernetIpv4 {
            operation,
            target_hardware_addr,
            target_protocol_addr,
            ..
        } = arp
        else {
            panic!("not IPv4 ARP");
        };
        assert_eq!(operation, ArpOperation::Request);
        assert_eq!(target_hardware_addr, EthernetAddress(HOST_MAC));
        assert_eq!(target_protocol_addr, HOST_V4);
    }
    assert_eq!(eng.generation(), gen);

    // RFC 7048: unanswered unicast probes make it UNREACHABLE, not gone.
    // The MAC stays in use while broadcast requests back off x3.
    let t = t + SEC * 3;
    out.clear();
    let mut sent_at = Vec::new();
    let mut now = t;
    while let Some(next) = eng.poll(now, &mut out) {
        if !out.is_empty() {
            sent_at.push(now - t);
            let (e, _) = parse_arp(&out[0].frame);
            assert_eq!(e.dst_addr, EthernetAddress::BROADCAST);
            out.clear();
        }
        if eng.entries().count() == 0 {
            break;
        }
        assert_eq!(
            state_of(&eng, now, HOST_V4.into()),
            Some(NeighState::Unreachable)
        );
        assert_eq!(mac_of(&eng, Side::Lan, HOST_V4.into()), Some(HOST_MAC));
        now = next;
    }
    assert_eq!(sent_at, [0, 3, 12, 39].map(|s| SEC * s));
    assert_eq!(now - t, SEC * 99, "removed after the last wait (60 s)");
    assert_eq!(eng.dump(now), vec![]);
    assert_eq!(eng.counters().unreachable, 1);
    assert_eq!(eng.counters().probe_failed, 1);
    assert!(eng.generation() > gen);
}

/// Learns HOST_V4, lets it go STALE, uses it and leaves its three unicast
/// probes unanswered; returns when it became UNREACHABLE.
fn host_v4_unreachable(eng: &mut NeighborEngine, t: Instant) -> Instant {
    learn_host_v4(eng, t);
    let mut out = Vec::new();
    let t = t + SEC * 30;
    eng.poll(t, &mut out);
    eng.touch(t, Side::Lan, HOST_V4.into());
    for k in 0..=3 {
        eng.poll(t + SEC * k, &mut out);
    }
    t + SEC * 3
}

#[test]
fn unreachable_entry_answering_late_is_reachable_again() {
    let (mut eng, t) = engine();
    let mut out = Vec::new();
    let now = host_v4_unreachable(&mut eng, t);
    assert_eq!(
        state_of(&eng, now, HOST_V4.into()),
        Some(NeighState::Unreachable)
    );
    let v = eng.handle_frame(now, Side::Lan, &arp_reply(HOST_MAC, HOST_V4), &mut out);
    assert_eq!(v, Verdict::ArpLearned);
    assert_eq!(
        state_of(&eng, now, HOST_V4.into()),
        Some(NeighState::Reachable)
    );
    assert_eq!(eng.counters().probe_failed, 0);
}

#[test]
fn unreachable_entry_is_evicted_before_stale_ones() {
    let cfg = NeighConfig {
        max_entries: 2,
        ..NeighConfig::default()
    };
    let (mut eng, t) = engine_with(cfg);
    let mut out = Vec::new();
    let now = host_v4_unreachable(&mut eng, t);
    assert_eq!(
        state_of(&eng, now, HOST_V4.into()),
        Some(NeighState::Unreachable)
    );
    // A STALE neighbor, used more recently than nothing at all.
    let stale = Ipv4Addr::new(192, 168, 1, 20);
    eng.handle_frame(
        now,
        Side::Lan,
        &arp_request(OTHER_MAC, stale, LAN_V4),
        &mut out,
    );
    assert_eq!(state_of(&eng, now, stale.into()), Some(NeighState::Stale));
    // One we resolve takes the UNREACHABLE entry's place, not the STALE one's.
    let other = Ipv4Addr::new(192, 168, 1, 21);
    let other_mac = [0x52, 0x54, 0, 0, 0, 21];
    eng.resolve(now, Side::Lan, other.into(), &data_packet(7), &mut out);
    let v = eng.handle_frame(now, Side::Lan, &arp_reply(other_mac, other), &mut out);
    assert_eq!(v, Verdict::ArpLearned);
    assert_eq!(mac_of(&eng, Side::Lan, HOST_V4.into()), None);
    assert_eq!(mac_of(&eng, Side::Lan, stale.into()), Some(OTHER_MAC));
    assert_eq!(eng.counters().stale_evicted, 1);
}

#[test]
fn answered_probe_makes_entry_reachable_again() {
    let (mut eng, t) = engine();
    let mut out = Vec::new();
    let ns = ns_in(
        HOST_GUA,
        frames::solicited_node(LAN_GUA),
        LAN_GUA,
        Some(HOST_MAC),
    );
    eng.handle_frame(t, Side::Lan, &ns, &mut out);
    assert_eq!(state_of(&eng, t, HOST_GUA.into()), Some(NeighState::Stale));
    out.clear();
    // A packet to a STALE neighbor goes out at once and triggers a probe.
    eng.resolve(t, Side::Lan, HOST_GUA.into(), &data_packet(1), &mut out);
    assert_eq!(out.len(), 1);
    eng.poll(t, &mut out);
    let (e, ip, icmp) = parse6(&out[1].frame);
    assert_eq!(e.dst_addr, EthernetAddress(HOST_MAC));
    assert_eq!(ip.dst_addr, HOST_GUA);
    assert!(matches!(
        icmp,
        Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, .. }) if target_addr == HOST_GUA
    ));
    let na = na_in(
        HOST_MAC,
        LAN_LL,
        HOST_GUA,
        NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
        Some(HOST_MAC),
    );
    assert_eq!(
        eng.handle_frame(t, Side::Lan, &na, &mut out),
        Verdict::NaAccepted
    );
    assert_eq!(
        state_of(&eng, t, HOST_GUA.into()),
        Some(NeighState::Reachable)
    );
    eng.poll(t + SEC * 10, &mut out);
    assert_eq!(
        state_of(&eng, t, HOST_GUA.into()),
        Some(NeighState::Reachable)
    );
}

#[test]
fn unused_stale_entry_is_collected() {
    let (mut eng, t) = engine();
    let mut out = Vec::new();
    eng.handle_frame(
        t,
        Side::Lan,
        &arp_request(HOST_MAC, HOST_V4, LAN_V4),
        &mut out,
    );
    let gc = NeighConfig::default().stale_gc;
    assert_eq!(eng.poll(t, &mut out), Some(t + gc));
    eng.poll(t + gc - SEC, &mut out);
    assert_eq!(eng.entries().count(), 1);
    assert_eq!(eng.poll(t + gc, &mut out), None);
    assert_eq!(eng.entries().count(), 0);
    assert_eq!(eng.counters().gc_removed, 1);
}

#[test]
fn busy_neighbor_survives_hours_of_reconfirmation() {
    let (mut eng, t0) = engine();
    learn_host_v4(&mut eng, t0);
    let gen = eng.generation();
    let mut out = Vec::new();
    let mut probes_answered = 0;
    // Three hours of traffic every second; the host answers every probe.
    for s in 0..3 * 3600 {
        let now = t0 + SEC * s;
        eng.touch(now, Side::Lan, HOST_V4.into());
        eng.poll(now, &mut out);
        for o in std::mem::take(&mut out) {
            let (e, _) = parse_arp(&o.frame);
            assert_eq!(e.dst_addr, EthernetAddress(HOST_MAC), "only unicast probes");
            let v = eng.handle_frame(now, Side::Lan, &arp_reply(HOST_MAC, HOST_V4), &mut out);
            assert_eq!(v, Verdict::ArpLearned);
            probes_answered += 1;
        }
    }
    // One reconfirmation per REACHABLE period, and the published table
    // never changed.
    assert!((340..=365).contains(&probes_answered), "{probes_answered}");
    assert_eq!(eng.generation(), gen);
    assert_eq!(mac_of(&eng, Side::Lan, HOST_V4.into()), Some(HOST_MAC));
    assert_eq!(eng.counters().probe_failed, 0);
}

// ---------------------------------------------------------------- DAD

#[test]
fn dad_success() {
    let t0 = Instant::now();
    let mut eng = NeighborEngine::new(NeighConfig::default(), wan_addrs(), lan_addrs(), t0);
    assert!(eng.usable_ipv6(Side::Lan).is_empty());
    let mut out = Vec::new();
    assert_eq!(eng.poll(t0, &mut out), Some(t0 + SEC));
    // Link-local and global on each side.
    assert_eq!(out.len(), 4);
    let lan: Vec<_> = out.iter().filter(|o| o.side == Side::Lan).collect();
    for (o, target) in lan.iter().zip([LAN_LL, LAN_GUA]) {
        let (e, ip, icmp) = parse6(&o.frame);
        let group = frames::solicited_node(target);
        assert_eq!(
            e.dst_addr,
            EthernetAddress(frames::ipv6_multicast_mac(group))
        );
        assert_eq!(e.src_addr, EthernetAddress(LAN_MAC));
        assert_eq!(
            (ip.src_addr, ip.dst_addr, ip.hop_limit),
            (Ipv6Addr::UNSPECIFIED, group, 255)
        );
        assert_eq!(
            icmp,
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                target_addr: target,
                lladdr: None
            })
        );
    }

    // While tentative: not answered for, not used as a source.
    let mut replies = Vec::new();
    let ns = ns_in(
        HOST_LL,
        frames::solicited_node(LAN_GUA),
        LAN_GUA,
        Some(HOST_MAC),
    );
    assert_eq!(
        eng.handle_frame(t0, Side::Lan, &ns, &mut replies),
        Verdict::Dropped(DropReason::NotForUs)
    );
    let ping = echo6_in(HOST_GUA, LAN_GUA, b"x");
    assert_eq!(
        eng.handle_frame(t0, Side::Lan, &ping, &mut replies),
        Verdict::Dropped(DropReason::NotForUs)
    );
    eng.resolve(
        t0,
        Side::Lan,
        HOST_GUA.into(),
        &data_packet(1),
        &mut replies,
    );
    assert!(replies.is_empty());
    assert_eq!(eng.counters().no_source, 1);

    // The wait passes without a conflict; the pending resolution can now
    // send its solicitation from the fresh link-local address.
    eng.poll(t0 + SEC, &mut replies);
    assert_eq!(eng.usable_ipv6(Side::Lan), vec![LAN_LL, LAN_GUA]);
    assert_eq!(eng.counters().dad_ok, 4);
    assert_eq!(replies.len(), 1);
    let (_, ip, _) = parse6(&replies[0].frame);
    assert_eq!(ip.src_addr, LAN_LL);
    assert_eq!(
        eng.handle_frame(t0 + SEC, Side::Lan, &ns, &mut replies),
        Verdict::NaSent
    );
    assert!(eng.dad_failed().is_empty());
}

#[test]
fn dad_conflict_from_ns_or_na() {
    let t0 = Instant::now();
    let mut eng = NeighborEngine::new(NeighConfig::default(), wan_addrs(), lan_addrs(), t0);
    let mut out = Vec::new();
    eng.poll(t0, &mut out);
    out.clear();
    // Another node doing DAD for our global address...
    let dad = ns_in(
        Ipv6Addr::UNSPECIFIED,
        frames::solicited_node(LAN_GUA),
        LAN_GUA,
        None,
    );
    assert_eq!(
        eng.handle_frame(t0, Side::Lan, &dad, &mut out),
        Verdict::DadConflict
    );
    // ...and another one already owning our link-local address.
    let na = na_in(
        OTHER_MAC,
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
        LAN_LL,
        NdiscNeighborFlags::OVERRIDE,
        Some(OTHER_MAC),
    );
    assert_eq!(
        eng.handle_frame(t0, Side::Lan, &na, &mut out),
        Verdict::DadConflict
    );
    assert!(out.is_empty());
    eng.poll(t0 + SEC, &mut out);
    assert!(eng.usable_ipv6(Side::Lan).is_empty());
    assert_eq!(
        eng.dad_failed(),
        vec![(Side::Lan, LAN_LL), (Side::Lan, LAN_GUA)]
    );
    assert_eq!(eng.counters().dad_conflict, 2);
    // WAN addresses are unaffected.
    assert_eq!(eng.usable_ipv6(Side::Wan).len(), 2);
    // A duplicate is never answered for.
    let ns = ns_in(
        HOST_LL,
        frames::solicited_node(LAN_GUA),
        LAN_GUA,
        Some(HOST_MAC),
    );
    assert_eq!(
        eng.handle_frame(t0 + SEC * 2, Side::Lan, &ns, &mut out),
        Verdict::Dropped(DropReason::NotForUs)
    );
    assert!(out.is_empty());
}

#[test]
fn our_own_dad_ns_looped_back_is_not_a_conflict() {
    let t0 = Instant::now();
    let mut eng = NeighborEngine::new(NeighConfig::default(), wan_addrs(), lan_addrs(), t0);
    let mut out = Vec::new();
    eng.poll(t0, &mut out);
    let mut replies = Vec::new();
    for o in &out {
        let v = eng.handle_frame(t0, o.side, &o.frame, &mut replies);
        assert_eq!(v, Verdict::Dropped(DropReason::OwnFrame));
    }
    eng.poll(t0 + SEC, &mut replies);
    assert!(replies.is_empty());
    assert_eq!(eng.usable_ipv6(Side::Lan), vec![LAN_LL, LAN_GUA]);
    assert_eq!(eng.counters().own_frame, 4);
}

// ---------------------------------------------------------------- robustness

#[test]
fn truncated_frames_never_panic() {
    let (mut eng, now) = engine();
    let ns = ns_in(
        HOST_LL,
        frames::solicited_node(LAN_GUA),
        LAN_GUA,
        Some(HOST_MAC),
    );
    let mut out = Vec::new();
    for len in 0..ns.len() {
        let v = eng.handle_frame(now, Side::Lan, &ns[..len], &mut out);
        assert!(matches!(v, Verdict::Dropped(_)), "len {len}: {v:?}");
    }
    assert!(out.is_empty());
    assert_eq!(eng.entries().count(), 0);
    // The untruncated frame still works.
    assert_eq!(
        eng.handle_frame(now, Side::Lan, &ns, &mut out),
        Verdict::NaSent
    );

    let others = [
        arp_request(HOST_MAC, HOST_V4, LAN_V4),
        echo4_in(LAN_V4, b"abcdefgh"),
        echo6_in(HOST_GUA, LAN_GUA, b"abcdefgh"),
        na_in(
            HOST_MAC,
            LAN_LL,
            HOST_GUA,
            NdiscNeighborFlags::SOLICITED,
            Some(HOST_MAC),
        ),
    ];
    for frame in &others {
        for len in 0..frame.len() {
            eng.handle_frame(now, Side::Lan, &frame[..len], &mut out);
        }
    }
}

#[test]
fn corrupted_frames_never_panic_and_stay_bounded() {
    let cfg = NeighConfig {
        max_entries: 16,
        max_incomplete: 8,
        ..NeighConfig::default()
    };
    let (mut eng, mut now) = engine_with(cfg);
    let seeds = [
        arp_request(HOST_MAC, HOST_V4, LAN_V4),
        arp_reply(HOST_MAC, HOST_V4),
        ns_in(
            HOST_LL,
            frames::solicited_node(LAN_GUA),
            LAN_GUA,
            Some(HOST_MAC),
        ),
        ns_in(
            Ipv6Addr::UNSPECIFIED,
            frames::solicited_node(LAN_LL),
            LAN_LL,
            None,
        ),
        na_in(
            HOST_MAC,
            LAN_LL,
            HOST_GUA,
            NdiscNeighborFlags::OVERRIDE,
            Some(HOST_MAC),
        ),
        echo4_in(LAN_V4, b"0123456789"),
        echo6_in(HOST_LL, LAN_LL, b"0123456789"),
    ];
    let mut rng = Jitter::new(42);
    let mut out = Vec::new();
    for i in 0..50_000u32 {
        let mut frame = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(frame.len());
            frame[at] = rng.next_u64() as u8;
        }
        // Keep the MAC header sane half of the time so corruption reaches
        // the deeper parsers.
        if i % 2 == 0 {
            frame[6..12].copy_from_slice(&HOST_MAC);
        }
        frame.truncate(rng.below(frame.len() + 1).max(frame.len() / 2));
        let side = if i % 3 == 0 { Side::Wan } else { Side::Lan };
        eng.handle_frame(now, side, &frame, &mut out);
        if i % 64 == 0 {
            let ip = Ipv6Addr::from(u128::from(LAN_GUA) + u128::from(rng.next_u64() as u16));
            eng.resolve(now, Side::Lan, ip.into(), &data_packet(1), &mut out);
            now += SEC / 4;
            eng.poll(now, &mut out);
            out.clear();
        }
    }
    for side in Side::ALL {
        let rows: Vec<_> = eng
            .dump(now)
            .into_iter()
            .filter(|r| r.side == side)
            .collect();
        let incomplete = rows
            .iter()
            .filter(|r| r.state == NeighState::Incomplete)
            .count();
        assert!(incomplete <= 8);
        assert!(rows.len() - incomplete <= 16);
    }
}

// ---------------------------------------------------------------- config

#[test]
fn set_addrs_changes_what_we_answer() {
    let (mut eng, t) = engine();
    let mut out = Vec::new();
    eng.handle_frame(
        t,
        Side::Lan,
        &arp_request(HOST_MAC, HOST_V4, LAN_V4),
        &mut out,
    );
    let ns = ns_in(
        HOST_GUA,
        frames::solicited_node(LAN_GUA),
        LAN_GUA,
        Some(HOST_MAC),
    );
    eng.handle_frame(t, Side::Lan, &ns, &mut out);
    assert_eq!(eng.entries().count(), 2);
    let gen = eng.generation();
    let started = eng.counters().dad_started;

    let new_v4 = Ipv4Addr::new(10, 0, 0, 1);
    let new_gua = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
    let addrs = IfaceAddrs {
        ipv4: Some((new_v4, 24)),
        ipv6: vec![(new_gua, 64)],
        ..lan_addrs()
    };
    eng.set_addrs(Side::Lan, addrs, t);
    // The IPv4 neighbor is off the new subnet; the IPv6 one stays.
    assert_eq!(mac_of(&eng, Side::Lan, HOST_V4.into()), None);
    assert_eq!(mac_of(&eng, Side::Lan, HOST_GUA.into()), Some(HOST_MAC));
    assert!(eng.generation() > gen);
    // Only the new address goes through DAD; link-local stays usable.
    assert_eq!(eng.counters().dad_started, started + 1);
    assert_eq!(eng.usable_ipv6(Side::Lan), vec![LAN_LL]);

    out.clear();
    let ns_old = ns_in(
        HOST_LL,
        frames::solicited_node(LAN_GUA),
        LAN_GUA,
        Some(HOST_MAC),
    );
    let ns_new = ns_in(
        HOST_LL,
        frames::solicited_node(new_gua),
        new_gua,
        Some(HOST_MAC),
    );
    assert_eq!(
        eng.handle_frame(t, Side::Lan, &ns_old, &mut out),
        Verdict::Dropped(DropReason::NotForUs)
    );
    assert_eq!(
        eng.handle_frame(t, Side::Lan, &ns_new, &mut out),
        Verdict::Dropped(DropReason::NotForUs)
    );
    eng.poll(t, &mut out);
    assert_eq!(out.len(), 1, "one DAD NS, for the new address");
    let (_, ip, _) = parse6(&out[0].frame);
    assert_eq!(ip.dst_addr, frames::solicited_node(new_gua));
    eng.poll(t + SEC, &mut out);
    assert_eq!(eng.usable_ipv6(Side::Lan), vec![LAN_LL, new_gua]);
    assert_eq!(
        eng.handle_frame(t + SEC, Side::Lan, &ns_new, &mut out),
        Verdict::NaSent
    );

    let host = Ipv4Addr::new(10, 0, 0, 7);
    let v = eng.handle_frame(
        t + SEC,
        Side::Lan,
        &arp_request(HOST_MAC, host, new_v4),
        &mut out,
    );
    assert_eq!(v, Verdict::ArpReplied);
    let v = eng.handle_frame(
        t + SEC,
        Side::Lan,
        &arp_request(HOST_MAC, host, LAN_V4),
        &mut out,
    );
    assert_eq!(v, Verdict::Dropped(DropReason::NotForUs));
}

#[test]
fn counters_are_named() {
    let (mut eng, now) = engine();
    let mut out = Vec::new();
    eng.handle_frame(now, Side::Lan, &[0u8; 3], &mut out);
    let all: Vec<_> = eng.counters().iter().collect();
    assert!(all.contains(&("malformed", 1)));
    for name in [
        "arp_rx",
        "arp_bad",
        "arp_reply_tx",
        "ns_rx",
        "ns_bad",
        "na_tx",
        "na_rx",
        "echo_reply_tx",
        "resolve_hold",
        "resolve_hold_overflow",
        "incomplete_full",
        "resolve_failed",
        "dad_conflict",
        "not_for_us",
        "malformed",
    ] {
        assert!(all.iter().any(|(n, _)| *n == name), "{name}");
    }
}

/// A reply to our LAN address arriving on the WAN (a DNS answer to a query
/// sourced from the LAN address) is ours; a link-local address of the
/// other side and a stranger's address are not.
#[test]
fn global_address_of_the_other_side_is_ours_weak_host() {
    let (mut eng, now) = engine();
    let wan_gw = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xfe);
    let udp_to = |dst: Ipv6Addr| {
        crate::hostio::udp_frame(
            &crate::hostio::Route {
                src_mac: OTHER_MAC,
                dst_mac: WAN_MAC,
                src: wan_gw,
                dst,
                hop_limit: 64,
            },
            53,
            50000,
            b"answer",
        )
    };
    let mut out = Vec::new();
    assert_eq!(
        eng.handle_frame(now, Side::Wan, &udp_to(LAN_GUA), &mut out),
        Verdict::Unhandled
    );
    assert_eq!(
        eng.handle_frame(now, Side::Wan, &udp_to(LAN_LL), &mut out),
        Verdict::Dropped(DropReason::NotForUs)
    );
    assert_eq!(
        eng.handle_frame(now, Side::Wan, &udp_to(HOST_GUA), &mut out),
        Verdict::Dropped(DropReason::NotForUs)
    );
    assert!(out.is_empty());
}

/// The addresses whose solicited-node groups the port listens to.
mod assigned {
    use super::*;

    #[test]
    fn tentative_addresses_are_assigned_and_duplicates_are_not() {
        let t0 = Instant::now();
        let mut eng = NeighborEngine::new(NeighConfig::default(), wan_addrs(), lan_addrs(), t0);
        // Before DAD even started: listening must come before the NS.
        assert_eq!(eng.assigned_ipv6(Side::Lan), vec![LAN_LL, LAN_GUA]);
        assert!(eng.usable_ipv6(Side::Lan).is_empty());
        let mut out = Vec::new();
        eng.poll(t0, &mut out);
        let dad = ns_in(
            Ipv6Addr::UNSPECIFIED,
            frames::solicited_node(LAN_GUA),
            LAN_GUA,
            None,
        );
        eng.handle_frame(t0, Side::Lan, &dad, &mut out);
        eng.poll(t0 + SEC, &mut out);
        assert_eq!(eng.assigned_ipv6(Side::Lan), vec![LAN_LL]);
        // A new address is assigned from the moment it is set.
        let mut addrs = lan_addrs();
        addrs.ipv6 = vec![(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1), 64)];
        eng.set_addrs(Side::Lan, addrs, t0 + 2 * SEC);
        assert_eq!(
            eng.assigned_ipv6(Side::Lan),
            vec![LAN_LL, Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1)]
        );
    }
}
