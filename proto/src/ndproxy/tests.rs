//! ND proxy tests: frames in, frames out parsed back with smoltcp's wire
//! types (checksums verified), on a fake clock.

use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Packet, Ipv6Repr,
    NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};

use super::*;
use crate::jitter::Jitter;

const WAN_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
const LAN_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];
const HGW_MAC: Mac = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const HOST_MAC: Mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const HOST2_MAC: Mac = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef];

const WAN_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const LAN_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
const HGW_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x0211, 0x22ff, 0xfe33, 0x4455);
const PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x1, 0x2, 0, 0, 0, 0);
const NEW_PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x9, 0x9, 0, 0, 0, 0);
const HOST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x1, 0x2, 0x5054, 0xff, 0xfe12, 0x3456);
const HOST2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x1, 0x2, 0, 0, 0, 0x22);
const NOBODY: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x1, 0x2, 0, 0, 0, 0xdead);
const B4: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x1, 0x2, 0, 0, 0, 0xb4);
const ALL_NODES_MAC: Mac = [0x33, 0x33, 0, 0, 0, 1];
const SEC: Duration = Duration::from_secs(1);

fn proxy_with(cfg: NdProxyConfig) -> (NdProxy, Instant) {
    let t0 = Instant::now();
    let wan = Link {
        mac: WAN_MAC,
        link_local: WAN_LL,
    };
    let lan = Link {
        mac: LAN_MAC,
        link_local: LAN_LL,
    };
    let mut p = NdProxy::new(cfg, wan, lan, t0);
    p.set_prefix(Some(PREFIX));
    p.set_own(&[B4]);
    (p, t0)
}

fn proxy() -> (NdProxy, Instant) {
    proxy_with(NdProxyConfig::default())
}

fn mcast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

fn sn(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// An NDP frame built with smoltcp directly, so inputs do not depend on the
/// builders under test.
fn ndp(src_mac: Mac, dst_mac: Mac, src: Ipv6Addr, dst: Ipv6Addr, repr: NdiscRepr) -> Vec<u8> {
    let icmp = Icmpv6Repr::Ndisc(repr);
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: 255,
    };
    let mut buf = vec![0u8; 14 + ip.buffer_len() + icmp.buffer_len()];
    buf[..6].copy_from_slice(&dst_mac);
    buf[6..12].copy_from_slice(&src_mac);
    buf[12..14].copy_from_slice(&[0x86, 0xdd]);
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut buf[14..]));
    icmp.emit(
        &src,
        &dst,
        &mut Icmpv6Packet::new_unchecked(&mut buf[54..]),
        &ChecksumCapabilities::default(),
    );
    buf
}

/// A WAN neighbor's multicast NS for `target`.
fn wan_ns(target: Ipv6Addr) -> Vec<u8> {
    ndp(
        HGW_MAC,
        mcast_mac(sn(target)),
        HGW_LL,
        sn(target),
        NdiscRepr::NeighborSolicit {
            target_addr: target,
            lladdr: Some(RawHardwareAddress::from_bytes(&HGW_MAC)),
        },
    )
}

/// A WAN neighbor's unicast NUD probe for `target`, sent to our MAC.
fn wan_probe(target: Ipv6Addr) -> Vec<u8> {
    ndp(
        HGW_MAC,
        WAN_MAC,
        HGW_LL,
        target,
        NdiscRepr::NeighborSolicit {
            target_addr: target,
            lladdr: Some(RawHardwareAddress::from_bytes(&HGW_MAC)),
        },
    )
}

fn dad_ns(src_mac: Mac, target: Ipv6Addr) -> Vec<u8> {
    ndp(
        src_mac,
        mcast_mac(sn(target)),
        Ipv6Addr::UNSPECIFIED,
        sn(target),
        NdiscRepr::NeighborSolicit {
            target_addr: target,
            lladdr: None,
        },
    )
}

/// A LAN host's solicited NA answering our NS.
fn lan_na(mac: Mac, target: Ipv6Addr) -> Vec<u8> {
    ndp(
        mac,
        LAN_MAC,
        target,
        LAN_LL,
        NdiscRepr::NeighborAdvert {
            flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
            target_addr: target,
            lladdr: Some(RawHardwareAddress::from_bytes(&mac)),
        },
    )
}

/// An NA to all nodes (the answer to a DAD probe, RFC 4861 7.2.4).
fn na_all_nodes(mac: Mac, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    ndp(
        mac,
        ALL_NODES_MAC,
        src,
        ALL_NODES,
        NdiscRepr::NeighborAdvert {
            flags: NdiscNeighborFlags::OVERRIDE,
            target_addr: target,
            lladdr: Some(RawHardwareAddress::from_bytes(&mac)),
        },
    )
}

#[derive(Debug, PartialEq, Eq)]
enum Msg {
    Ns {
        target: Ipv6Addr,
        lla: Option<Mac>,
    },
    Na {
        flags: NdiscNeighborFlags,
        target: Ipv6Addr,
        lla: Option<Mac>,
    },
}

#[derive(Debug, PartialEq, Eq)]
struct Sent {
    side: Side,
    eth_src: Mac,
    eth_dst: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    msg: Msg,
}

/// Parses what the engine sent with smoltcp, checksums verified.
fn sent(out: &mut Vec<Outgoing>) -> Vec<Sent> {
    out.drain(..)
        .map(|o| {
            let eth = EthernetFrame::new_checked(&o.frame[..]).expect("ethernet");
            assert_eq!(eth.ethertype(), EthernetProtocol::Ipv6);
            let ip6 = Ipv6Packet::new_checked(eth.payload()).expect("ipv6");
            let ip = Ipv6Repr::parse(&ip6).expect("ipv6 repr");
            assert_eq!(ip.hop_limit, 255);
            let icmp = Icmpv6Packet::new_checked(ip6.payload()).expect("icmpv6");
            assert!(icmp.verify_checksum(&ip.src_addr, &ip.dst_addr), "checksum");
            let repr = Icmpv6Repr::parse(
                &ip.src_addr,
                &ip.dst_addr,
                &icmp,
                &ChecksumCapabilities::default(),
            )
            .expect("ndisc");
            let mac = |raw: Option<RawHardwareAddress>| {
                raw.map(|r| <[u8; 6]>::try_from(r.as_bytes()).expect("6-byte lladdr"))
            };
            let msg = match repr {
                Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                    target_addr,
                    lladdr,
                }) => Msg::Ns {
                    target: target_addr,
                    lla: mac(lladdr),
                },
                Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                    flags,
                    target_addr,
                    lladdr,
                }) => Msg::Na {
                    flags,
                    target: target_addr,
                    lla: mac(lladdr),
                },
                other => panic!("unexpected {other:?}"),
            };
            Sent {
                side: o.side,
                eth_src: eth.src_addr().0,
                eth_dst: eth.dst_addr().0,
                src: ip.src_addr,
                dst: ip.dst_addr,
                msg,
            }
        })
        .collect()
}

fn lan_verify_ns(target: Ipv6Addr) -> Sent {
    Sent {
        side: Side::Lan,
        eth_src: LAN_MAC,
        eth_dst: mcast_mac(sn(target)),
        src: LAN_LL,
        dst: sn(target),
        msg: Msg::Ns {
            target,
            lla: Some(LAN_MAC),
        },
    }
}

fn proxied_na_to_hgw(target: Ipv6Addr) -> Sent {
    Sent {
        side: Side::Wan,
        eth_src: WAN_MAC,
        eth_dst: HGW_MAC,
        src: WAN_LL,
        dst: HGW_LL,
        msg: Msg::Na {
            flags: NdiscNeighborFlags::SOLICITED,
            target,
            lla: Some(WAN_MAC),
        },
    }
}

/// Verifies HOST through a WAN NS and the host's LAN answer.
fn verify(p: &mut NdProxy, now: Instant, target: Ipv6Addr, mac: Mac) {
    let mut out = Vec::new();
    assert_eq!(
        p.handle_frame(now, Side::Wan, &wan_ns(target), &mut out),
        Verdict::Verifying
    );
    assert_eq!(sent(&mut out), [lan_verify_ns(target)]);
    assert_eq!(
        p.handle_frame(now, Side::Lan, &lan_na(mac, target), &mut out),
        Verdict::Confirmed
    );
    assert_eq!(sent(&mut out), [proxied_na_to_hgw(target)]);
}

#[test]
fn a_wan_solicitation_is_answered_only_after_the_lan_host_answers() {
    let (mut p, t0) = proxy();
    let mut out = Vec::new();
    assert_eq!(
        p.handle_frame(t0, Side::Wan, &wan_ns(HOST), &mut out),
        Verdict::Verifying
    );
    // Only a LAN solicitation: nothing goes back to the WAN yet.
    assert_eq!(sent(&mut out), [lan_verify_ns(HOST)]);
    assert_eq!(p.entries(t0)[0].state, ProxyState::Incomplete);
    // The WAN neighbor retransmits: it joins the wait, no second LAN NS.
    assert_eq!(
        p.handle_frame(t0 + SEC / 2, Side::Wan, &wan_ns(HOST), &mut out),
        Verdict::VerifyPending
    );
    assert!(out.is_empty());
    let at = t0 + SEC / 2 + Duration::from_millis(3);
    assert_eq!(
        p.handle_frame(at, Side::Lan, &lan_na(HOST_MAC, HOST), &mut out),
        Verdict::Confirmed
    );
    // One answer per distinct solicitor, with the router's WAN MAC,
    // Override clear (a proxy, RFC 4861 7.2.8) and Router clear (a host).
    assert_eq!(sent(&mut out), [proxied_na_to_hgw(HOST)]);
    // Now answered at once, also to a unicast NUD probe.
    assert_eq!(
        p.handle_frame(at + SEC, Side::Wan, &wan_probe(HOST), &mut out),
        Verdict::ProxyAnswered
    );
    assert_eq!(sent(&mut out), [proxied_na_to_hgw(HOST)]);
    let rows = p.entries(at + SEC);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].addr, rows[0].mac, rows[0].state),
        (HOST, Some(HOST_MAC), ProxyState::Reachable)
    );
    assert_eq!(p.counters().verified, 1);
    assert_eq!(p.counters().proxy_na_tx, 2);
}

#[test]
fn an_address_nobody_holds_is_never_answered() {
    let (mut p, t0) = proxy();
    let mut out = Vec::new();
    p.handle_frame(t0, Side::Wan, &wan_ns(NOBODY), &mut out);
    assert_eq!(sent(&mut out), [lan_verify_ns(NOBODY)]);
    let mut lan_ns = 1;
    let mut now = t0;
    for step in 1..=40 {
        now = t0 + Duration::from_millis(100 * step);
        if step % 10 == 0 {
            // The WAN neighbor retransmits every second.
            p.handle_frame(now, Side::Wan, &wan_ns(NOBODY), &mut out);
        }
        p.poll(now, &mut out);
        for s in sent(&mut out) {
            assert_eq!(s, lan_verify_ns(NOBODY), "only LAN solicitations");
            lan_ns += 1;
        }
    }
    // MAX_MULTICAST_SOLICIT solicitations, RETRANS_TIMER apart, then given
    // up; the retransmission after that starts one new verification.
    assert_eq!(p.counters().verify_failed, 1);
    assert_eq!(lan_ns, 4);
    assert_eq!(p.counters().proxy_na_tx + p.counters().own_na_tx, 0);
    // An advertisement nobody asked for creates nothing.
    let mut q = proxy().0;
    assert_eq!(
        q.handle_frame(now, Side::Lan, &lan_na(HOST2_MAC, HOST2), &mut out),
        Verdict::Dropped(DropReason::NaUnsolicited)
    );
    assert!(q.entries(now).is_empty());
    assert!(out.is_empty());
}

#[test]
fn entries_age_from_reachable_to_stale_and_are_reverified_or_removed() {
    let (mut p, t0) = proxy();
    let mut out = Vec::new();
    verify(&mut p, t0, HOST, HOST_MAC);
    // Answered for REACHABLE_TIME after the confirmation.
    let before = t0 + REACHABLE_TIME - SEC;
    assert_eq!(p.poll(before, &mut out), Some(t0 + REACHABLE_TIME));
    assert_eq!(
        p.handle_frame(before, Side::Wan, &wan_ns(HOST), &mut out),
        Verdict::ProxyAnswered
    );
    sent(&mut out);
    // Then STALE: the next WAN solicitation probes the host by unicast and
    // is answered only when the host confirms.
    let stale = t0 + REACHABLE_TIME;
    p.poll(stale, &mut out);
    assert_eq!(p.entries(stale)[0].state, ProxyState::Stale);
    assert_eq!(
        p.handle_frame(stale, Side::Wan, &wan_ns(HOST), &mut out),
        Verdict::Verifying
    );
    let probe = Sent {
        side: Side::Lan,
        eth_src: LAN_MAC,
        eth_dst: HOST_MAC,
        src: LAN_LL,
        dst: HOST,
        msg: Msg::Ns {
            target: HOST,
            lla: Some(LAN_MAC),
        },
    };
    assert_eq!(sent(&mut out), [probe]);
    p.handle_frame(stale, Side::Lan, &lan_na(HOST_MAC, HOST), &mut out);
    assert_eq!(sent(&mut out), [proxied_na_to_hgw(HOST)]);
    // Unused, it is removed 20 min after its last confirmation.
    let gone = stale + Duration::from_secs(20 * 60);
    assert_eq!(p.poll(gone - SEC, &mut out), Some(gone));
    assert_eq!(p.entries(gone - SEC).len(), 1);
    p.poll(gone, &mut out);
    assert!(p.entries(gone).is_empty());
    assert_eq!(p.counters().aged_out, 1);

    // A host that left: the unicast probes go unanswered, it is removed
    // and the WAN neighbor never gets an answer.
    let (mut p, t0) = proxy();
    verify(&mut p, t0, HOST, HOST_MAC);
    let stale = t0 + REACHABLE_TIME;
    p.poll(stale, &mut out);
    p.handle_frame(stale, Side::Wan, &wan_ns(HOST), &mut out);
    for s in 1..=3 {
        p.poll(stale + SEC * s, &mut out);
    }
    let sent = sent(&mut out);
    assert_eq!(sent.len(), 3, "MAX_UNICAST_SOLICIT probes: {sent:?}");
    assert!(sent
        .iter()
        .all(|s| s.side == Side::Lan && s.eth_dst == HOST_MAC));
    assert!(p.entries(stale + SEC * 3).is_empty());
    assert_eq!(p.counters().probe_failed, 1);
}

#[test]
fn an_ns_flood_at_the_wan_prefix_is_bounded() {
    let cfg = NdProxyConfig::default();
    let (mut p, t0) = proxy_with(cfg.clone());
    let mut out = Vec::new();
    verify(&mut p, t0, HOST, HOST_MAC);
    let mut rng = Jitter::new(19);
    let (mut lan_multicast, mut lan_unicast, mut wan_answers) = (0u64, 0u64, 0u64);
    let mut host_answered_at = Vec::new();
    let mut max_entries_seen = 0;
    // 100 000 solicitations for random addresses of the /64 in 10 s, and
    // the HGW asking for the real host every second.
    let mut now = t0;
    for i in 0..100_000u64 {
        now = t0 + Duration::from_micros(100 * i);
        let target = Ipv6Addr::from(u128::from(PREFIX) | u128::from(rng.next_u64()));
        p.handle_frame(now, Side::Wan, &wan_ns(target), &mut out);
        if i % 10_000 == 0 {
            let v = p.handle_frame(now, Side::Wan, &wan_ns(HOST), &mut out);
            if v == Verdict::ProxyAnswered {
                host_answered_at.push(i);
            }
        }
        if i % 10 == 0 {
            p.poll(now, &mut out);
        }
        for o in out.drain(..) {
            match (o.side, o.frame[0] & 1) {
                (Side::Lan, 1) => lan_multicast += 1,
                (Side::Lan, _) => lan_unicast += 1,
                (Side::Wan, _) => wan_answers += 1,
            }
        }
        max_entries_seen = max_entries_seen.max(p.entries(now).len());
    }
    let c = p.counters().clone();
    let seconds = 10;
    eprintln!(
        "flood: entries max {max_entries_seen} (bound {} + {}), LAN multicast NS {lan_multicast} \
         (bound {} + {}/s * {seconds} s), LAN unicast {lan_unicast}, WAN NA {wan_answers}, \
         counters {:?}",
        cfg.max_entries,
        cfg.max_pending,
        cfg.solicit_burst,
        cfg.solicit_rate,
        c.named()
    );
    assert!(max_entries_seen <= cfg.max_pending + 1);
    let bucket_bound = u64::from(cfg.solicit_burst + cfg.solicit_rate * seconds) + 1;
    assert!(
        lan_multicast <= bucket_bound,
        "{lan_multicast} > {bucket_bound}"
    );
    // ... and the bucket keeps refilling: new hosts still get their share.
    assert!(
        lan_multicast >= u64::from(cfg.solicit_rate * seconds),
        "{lan_multicast}"
    );
    assert!(c.rate_limited + c.pending_full > 99_000);
    // No random address was answered: the only WAN answers are the real
    // host's, which stays answered through the flood for REACHABLE_TIME.
    assert_eq!(wan_answers, host_answered_at.len() as u64);
    assert_eq!(
        host_answered_at,
        [0, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000, 90_000]
    );
    // Past REACHABLE_TIME the host is re-verified by unicast probe even
    // though the flood keeps the bucket empty.
    let later = now + REACHABLE_TIME;
    p.poll(later, &mut out);
    out.clear();
    assert_eq!(
        p.handle_frame(later, Side::Wan, &wan_ns(HOST), &mut out),
        Verdict::Verifying
    );
    assert_eq!(sent(&mut out)[0].eth_dst, HOST_MAC);
    p.handle_frame(later, Side::Lan, &lan_na(HOST_MAC, HOST), &mut out);
    assert_eq!(sent(&mut out), [proxied_na_to_hgw(HOST)]);
}

#[test]
fn the_verified_table_is_bounded_and_evicts_the_oldest_stale_entry() {
    let cfg = NdProxyConfig {
        max_entries: 8,
        ..NdProxyConfig::default()
    };
    let (mut p, t0) = proxy_with(cfg);
    let mut out = Vec::new();
    let host = |i: u64| Ipv6Addr::from(u128::from(PREFIX) | u128::from(0x1000 + i));
    for i in 0..8 {
        p.note_lan_neighbor(t0 + SEC * i as u32, host(i), HOST_MAC, &mut out);
    }
    // Full of fresh entries: a ninth is refused.
    p.note_lan_neighbor(t0 + SEC * 8, host(8), HOST_MAC, &mut out);
    assert_eq!(p.entries(t0 + SEC * 8).len(), 8);
    assert_eq!(p.counters().table_full, 1);
    // Once they are STALE, the one confirmed longest ago makes room.
    let later = t0 + SEC * 40;
    p.poll(later, &mut out);
    p.note_lan_neighbor(later, host(9), HOST_MAC, &mut out);
    let addrs: Vec<Ipv6Addr> = p.entries(later).iter().map(|e| e.addr).collect();
    assert_eq!(addrs.len(), 8);
    assert!(!addrs.contains(&host(0)) && addrs.contains(&host(9)));
    assert_eq!(p.counters().evicted, 1);
    // A verification completing into a full table of fresh entries is
    // still answered, but not stored.
    let cfg = NdProxyConfig {
        max_entries: 1,
        ..NdProxyConfig::default()
    };
    let (mut p, t0) = proxy_with(cfg);
    p.note_lan_neighbor(t0, HOST2, HOST2_MAC, &mut out);
    verify(&mut p, t0, HOST, HOST_MAC);
    assert_eq!(p.entries(t0).len(), 1);
    assert_eq!(p.counters().table_full, 1);
}

#[test]
fn a_reported_lan_neighbor_is_answered_without_a_solicitation() {
    let (mut p, t0) = proxy();
    let mut out = Vec::new();
    p.note_lan_neighbor(t0, HOST, HOST_MAC, &mut out);
    assert!(out.is_empty());
    assert_eq!(
        p.handle_frame(t0 + SEC, Side::Wan, &wan_ns(HOST), &mut out),
        Verdict::ProxyAnswered
    );
    assert_eq!(sent(&mut out), [proxied_na_to_hgw(HOST)]);
    // A report also answers solicitors waiting on a verification.
    p.handle_frame(t0, Side::Wan, &wan_ns(HOST2), &mut out);
    sent(&mut out);
    p.note_lan_neighbor(t0 + SEC / 10, HOST2, HOST2_MAC, &mut out);
    assert_eq!(sent(&mut out), [proxied_na_to_hgw(HOST2)]);
    // Addresses outside the /64 and our own are not taken.
    p.note_lan_neighbor(t0, B4, HOST_MAC, &mut out);
    p.note_lan_neighbor(t0, "2001:db8:5::1".parse().unwrap(), HOST_MAC, &mut out);
    assert_eq!(p.entries(t0 + SEC).len(), 2);
}

#[test]
fn a_lan_hosts_dad_is_checked_on_the_wan_and_defended_if_taken() {
    let (mut p, t0) = proxy();
    let mut out = Vec::new();
    assert_eq!(
        p.handle_frame(t0, Side::Lan, &dad_ns(HOST_MAC, HOST2), &mut out),
        Verdict::DadRelayed
    );
    // Relayed as DAD: source ::, no source link-layer option.
    let relayed = Sent {
        side: Side::Wan,
        eth_src: WAN_MAC,
        eth_dst: mcast_mac(sn(HOST2)),
        src: Ipv6Addr::UNSPECIFIED,
        dst: sn(HOST2),
        msg: Msg::Ns {
            target: HOST2,
            lla: None,
        },
    };
    assert_eq!(sent(&mut out), [relayed]);
    // A retransmitted probe is not relayed twice.
    p.handle_frame(t0, Side::Lan, &dad_ns(HOST_MAC, HOST2), &mut out);
    assert!(out.is_empty());
    // A WAN node holds it: the LAN host hears an NA for its tentative
    // address within its RetransTimer, and its DAD fails.
    let at = t0 + Duration::from_millis(5);
    assert_eq!(
        p.handle_frame(
            at,
            Side::Wan,
            &na_all_nodes(HGW_MAC, HGW_LL, HOST2),
            &mut out
        ),
        Verdict::DadDefended
    );
    let defence = Sent {
        side: Side::Lan,
        eth_src: LAN_MAC,
        eth_dst: ALL_NODES_MAC,
        src: LAN_LL,
        dst: ALL_NODES,
        msg: Msg::Na {
            flags: NdiscNeighborFlags::empty(),
            target: HOST2,
            lla: Some(LAN_MAC),
        },
    };
    assert_eq!(sent(&mut out), [defence]);
    assert_eq!(p.counters().dad_defended_lan, 1);

    // Nobody on the WAN: after RETRANS_TIMER the probe is over; a late
    // WAN advertisement defends nothing.
    p.handle_frame(t0, Side::Lan, &dad_ns(HOST_MAC, HOST), &mut out);
    assert_eq!(sent(&mut out).len(), 1);
    p.poll(t0 + SEC, &mut out);
    assert_eq!(
        p.handle_frame(
            t0 + SEC,
            Side::Wan,
            &na_all_nodes(HGW_MAC, HGW_LL, HOST),
            &mut out
        ),
        Verdict::NotProxied
    );
    assert!(out.is_empty());

    // The router's own address is defended on the LAN directly.
    assert_eq!(
        p.handle_frame(t0, Side::Lan, &dad_ns(HOST_MAC, B4), &mut out),
        Verdict::DadDefended
    );
    let s = sent(&mut out);
    assert_eq!((s.len(), s[0].side, s[0].dst), (1, Side::Lan, ALL_NODES));
    assert_eq!(
        s[0].msg,
        Msg::Na {
            flags: NdiscNeighborFlags::ROUTER | NdiscNeighborFlags::OVERRIDE,
            target: B4,
            lla: Some(LAN_MAC)
        }
    );
}

#[test]
fn a_wan_nodes_dad_is_defended_for_lan_hosts() {
    let (mut p, t0) = proxy();
    let mut out = Vec::new();
    verify(&mut p, t0, HOST, HOST_MAC);
    // A verified host: defended on the WAN at once.
    assert_eq!(
        p.handle_frame(t0 + SEC, Side::Wan, &dad_ns(HGW_MAC, HOST), &mut out),
        Verdict::DadDefended
    );
    let defence = |target| Sent {
        side: Side::Wan,
        eth_src: WAN_MAC,
        eth_dst: ALL_NODES_MAC,
        src: WAN_LL,
        dst: ALL_NODES,
        msg: Msg::Na {
            flags: NdiscNeighborFlags::empty(),
            target,
            lla: Some(WAN_MAC),
        },
    };
    assert_eq!(sent(&mut out), [defence(HOST)]);
    // Unknown: asked on the LAN as DAD; the holder answers to all nodes,
    // the WAN node's DAD fails, and the host is now verified.
    assert_eq!(
        p.handle_frame(t0, Side::Wan, &dad_ns(HGW_MAC, HOST2), &mut out),
        Verdict::DadRelayed
    );
    let relayed = Sent {
        side: Side::Lan,
        eth_src: LAN_MAC,
        eth_dst: mcast_mac(sn(HOST2)),
        src: Ipv6Addr::UNSPECIFIED,
        dst: sn(HOST2),
        msg: Msg::Ns {
            target: HOST2,
            lla: None,
        },
    };
    assert_eq!(sent(&mut out), [relayed]);
    assert_eq!(
        p.handle_frame(
            t0,
            Side::Lan,
            &na_all_nodes(HOST2_MAC, HOST2, HOST2),
            &mut out
        ),
        Verdict::DadDefended
    );
    assert_eq!(sent(&mut out), [defence(HOST2)]);
    assert_eq!(
        p.handle_frame(t0, Side::Wan, &wan_ns(HOST2), &mut out),
        Verdict::ProxyAnswered
    );
    // Nobody on the LAN: nothing is said on the WAN.
    p.handle_frame(t0, Side::Wan, &dad_ns(HGW_MAC, NOBODY), &mut out);
    assert_eq!(sent(&mut out).len(), 2);
    p.poll(t0 + SEC * 2, &mut out);
    assert!(out.is_empty());
    assert_eq!(p.counters().dad_defended_wan, 2);
    // Our own address: defended.
    assert_eq!(
        p.handle_frame(t0, Side::Wan, &dad_ns(HGW_MAC, B4), &mut out),
        Verdict::DadDefended
    );
}

#[test]
fn the_routers_own_addresses_are_answered_directly() {
    let (mut p, t0) = proxy();
    let mut out = Vec::new();
    assert_eq!(
        p.handle_frame(t0, Side::Wan, &wan_ns(B4), &mut out),
        Verdict::OwnAnswered
    );
    let answer = Sent {
        side: Side::Wan,
        eth_src: WAN_MAC,
        eth_dst: HGW_MAC,
        src: WAN_LL,
        dst: HGW_LL,
        msg: Msg::Na {
            flags: NdiscNeighborFlags::ROUTER
                | NdiscNeighborFlags::SOLICITED
                | NdiscNeighborFlags::OVERRIDE,
            target: B4,
            lla: Some(WAN_MAC),
        },
    };
    assert_eq!(sent(&mut out), [answer]);
    assert!(p.entries(t0).is_empty(), "no LAN verification for our own");
    // A LAN host claiming it is a conflict, not a verification.
    assert_eq!(
        p.handle_frame(t0, Side::Lan, &lan_na(HOST_MAC, B4), &mut out),
        Verdict::Dropped(DropReason::Conflict)
    );
    assert_eq!(p.counters().lan_conflict, 1);
    // A new own set: the MAP-E CE address appears, an entry for it goes.
    verify(&mut p, t0, HOST2, HOST2_MAC);
    p.set_own(&[B4, HOST2]);
    assert!(p.entries(t0).is_empty());
    assert_eq!(
        p.handle_frame(t0, Side::Wan, &wan_ns(HOST2), &mut out),
        Verdict::OwnAnswered
    );
}

#[test]
fn a_new_prefix_replaces_the_old_one_and_its_entries() {
    let (mut p, t0) = proxy();
    let mut out = Vec::new();
    verify(&mut p, t0, HOST, HOST_MAC);
    p.handle_frame(t0, Side::Wan, &wan_ns(HOST2), &mut out);
    out.clear();
    let generation = p.generation();
    p.set_prefix(Some(NEW_PREFIX));
    assert_eq!(p.prefix(), Some(NEW_PREFIX));
    assert!(p.entries(t0).is_empty());
    assert_eq!(p.counters().renumber_dropped, 2);
    assert!(p.generation() > generation);
    // The old /64 is not ours any more; the new one is verified as usual.
    assert_eq!(
        p.handle_frame(t0, Side::Wan, &wan_ns(HOST), &mut out),
        Verdict::NotProxied
    );
    let renumbered =
        Ipv6Addr::from(u128::from(NEW_PREFIX) | (u128::from(HOST) & u128::from(u64::MAX)));
    verify(&mut p, t0, renumbered, HOST_MAC);
    // The same /64 again (another address in it) changes nothing.
    p.set_prefix(Some(renumbered));
    assert_eq!(p.entries(t0).len(), 1);
    // No prefix: the proxy is off.
    p.set_prefix(None);
    assert_eq!(
        p.handle_frame(t0, Side::Wan, &wan_ns(renumbered), &mut out),
        Verdict::NotProxied
    );
    assert!(out.is_empty());
}

#[test]
fn hostile_and_foreign_frames_are_dropped_with_a_counter() {
    let (mut p, t0) = proxy();
    let mut out = Vec::new();
    let good = wan_ns(HOST);
    // Wrong checksum.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    assert_eq!(
        p.handle_frame(t0, Side::Wan, &bad, &mut out),
        Verdict::Dropped(DropReason::ChecksumBad)
    );
    // Hop limit below 255: not from the link (checksum does not cover it).
    let mut routed = good.clone();
    routed[14 + 7] = 64;
    assert_eq!(
        p.handle_frame(t0, Side::Wan, &routed, &mut out),
        Verdict::Dropped(DropReason::NsBad)
    );
    // Sent to another target's group.
    let wrong_group = ndp(
        HGW_MAC,
        mcast_mac(sn(HOST2)),
        HGW_LL,
        sn(HOST2),
        NdiscRepr::NeighborSolicit {
            target_addr: HOST,
            lladdr: None,
        },
    );
    assert_eq!(
        p.handle_frame(t0, Side::Wan, &wrong_group, &mut out),
        Verdict::Dropped(DropReason::NotForUs)
    );
    // Our own frame reflected.
    let mut own = good.clone();
    own[6..12].copy_from_slice(&WAN_MAC);
    assert_eq!(
        p.handle_frame(t0, Side::Wan, &own, &mut out),
        Verdict::Dropped(DropReason::OwnFrame)
    );
    // DAD with a source link-layer option is invalid (RFC 4861 7.1.1).
    let bad_dad = ndp(
        HGW_MAC,
        mcast_mac(sn(HOST)),
        Ipv6Addr::UNSPECIFIED,
        sn(HOST),
        NdiscRepr::NeighborSolicit {
            target_addr: HOST,
            lladdr: Some(RawHardwareAddress::from_bytes(&HGW_MAC)),
        },
    );
    assert_eq!(
        p.handle_frame(t0, Side::Wan, &bad_dad, &mut out),
        Verdict::Dropped(DropReason::NsBad)
    );
    assert!(out.is_empty());
    assert!(p.entries(t0).is_empty());
    // Every prefix and random corruption of a valid frame: no panic.
    let mut rng = Jitter::new(7);
    for cut in 0..good.len() {
        p.handle_frame(t0, Side::Wan, &good[..cut], &mut out);
    }
    for _ in 0..20_000 {
        let mut f = if rng.below(2) == 0 {
            wan_ns(HOST)
        } else {
            lan_na(HOST_MAC, HOST)
        };
        for _ in 0..=rng.below(4) {
            let i = rng.below(f.len());
            f[i] = rng.next_u64() as u8;
        }
        let side = if rng.below(2) == 0 {
            Side::Wan
        } else {
            Side::Lan
        };
        p.handle_frame(t0, side, &f, &mut out);
    }
    let c = p.counters();
    assert!(c.checksum_bad > 0);
    assert_eq!(c.own_frame, 1);
}

#[test]
fn counter_names_are_kebab_case_field_names() {
    NdProxyCounters::assert_names_are_kebab_fields();
}

#[test]
fn a_lan_dad_flood_cannot_make_the_wan_side_chatty() {
    let cfg = NdProxyConfig::default();
    let (mut p, t0) = proxy_with(cfg.clone());
    let mut out = Vec::new();
    let mut rng = Jitter::new(4389);
    let mut wan_ns = 0u64;
    // 10 000 DAD probes for random addresses of the /64 in one second.
    for i in 0..10_000u64 {
        let now = t0 + Duration::from_micros(100 * i);
        let target = Ipv6Addr::from(u128::from(PREFIX) | u128::from(rng.next_u64()));
        p.handle_frame(now, Side::Lan, &dad_ns(HOST_MAC, target), &mut out);
        p.poll(now, &mut out);
        wan_ns += out.drain(..).filter(|o| o.side == Side::Wan).count() as u64;
        assert!(p.dad.iter().filter(|d| d.origin == Side::Lan).count() <= cfg.max_dad_pending);
    }
    let c = p.counters();
    assert!(
        wan_ns <= u64::from(cfg.solicit_burst + cfg.solicit_rate) + 1,
        "{wan_ns}"
    );
    assert_eq!(wan_ns, c.dad_wan_ns_tx);
    assert_eq!(
        c.dad_wan_ns_tx + c.dad_pending_full + c.rate_limited,
        10_000
    );
}

#[test]
fn solicitors_per_target_are_bounded_and_wan_claims_are_conflicts() {
    let (mut p, t0) = proxy();
    let mut out = Vec::new();
    // Eight WAN nodes ask for the same target: four are remembered.
    for i in 0..8u8 {
        let mac = [0x00, 0x11, 0x22, 0x33, 0x44, 0x60 + i];
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x100 + u16::from(i));
        let ns = ndp(
            mac,
            mcast_mac(sn(HOST)),
            src,
            sn(HOST),
            NdiscRepr::NeighborSolicit {
                target_addr: HOST,
                lladdr: Some(RawHardwareAddress::from_bytes(&mac)),
            },
        );
        p.handle_frame(t0, Side::Wan, &ns, &mut out);
    }
    assert_eq!(sent(&mut out).len(), 1, "one LAN solicitation");
    assert_eq!(p.counters().waiters_dropped, 4);
    p.handle_frame(t0, Side::Lan, &lan_na(HOST_MAC, HOST), &mut out);
    let answers = sent(&mut out);
    assert_eq!(answers.len(), MAX_WAITERS);
    assert!(answers
        .iter()
        .all(|s| s.side == Side::Wan && s.eth_src == WAN_MAC));
    // A WAN node advertising a verified LAN host's address is reported,
    // not believed.
    assert_eq!(
        p.handle_frame(
            t0,
            Side::Wan,
            &na_all_nodes(HGW_MAC, HGW_LL, HOST),
            &mut out
        ),
        Verdict::Dropped(DropReason::Conflict)
    );
    assert_eq!(p.counters().wan_conflict, 1);
    assert_eq!(p.entries(t0)[0].mac, Some(HOST_MAC));
}
