//! The MLD host against RFC 3810 with a fake clock, and the membership
//! set of each port.

use std::collections::BTreeSet;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use super::wire::{self, record_type, Ipv6Mld};
use super::*;

const MAC: Mac = [0x02, 0, 0, 0, 0x02, 0x01];
const QUERIER_MAC: Mac = [0x02, 0, 0, 0, 0x06, 0x00];
const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x201);
const QUERIER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x99);

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn lan_groups() -> BTreeSet<Ipv6Addr> {
    memberships(
        Role {
            router: true,
            dhcpv6_server: true,
        },
        &[LL, a("2001:db8:0:111::1")],
    )
}

fn engine(seed: u64) -> Mld {
    Mld::new(MldConfig::default(), MAC, seed)
}

/// An engine that joined `lan_groups` and finished its retransmissions.
fn settled(now: Instant, seed: u64) -> Mld {
    let mut m = engine(seed);
    m.set_groups(now, &lan_groups(), LL);
    let mut out = Vec::new();
    let mut t = now;
    while let Some(next) = m.poll(t, &mut out) {
        t = next;
    }
    m
}

/// What a frame we sent says, checked on the way: Ethernet to the group
/// MAC, hop limit 1, Router Alert, a correct checksum.
#[derive(Debug)]
struct Sent {
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ty: u8,
    /// (record type, group, sources) of a v2 report; the group of a v1 one.
    records: Vec<(u8, Ipv6Addr, Vec<Ipv6Addr>)>,
}

fn sent(frame: &[u8]) -> Sent {
    let m = Ipv6Mld::parse(frame).expect("an MLD frame");
    assert_eq!(&frame[..6], &wire::multicast_mac(m.dst), "Ethernet dst");
    assert_eq!(&frame[6..12], &MAC);
    assert_eq!(m.hop_limit, 1);
    assert!(m.router_alert, "Router Alert option");
    assert!(m.checksum_ok, "ICMPv6 checksum");
    let msg = m.message;
    let mut records = Vec::new();
    if msg[0] == wire::TYPE_REPORT_V2 {
        let n = u16::from_be_bytes([msg[6], msg[7]]);
        let mut off = 8;
        for _ in 0..n {
            let ns = usize::from(u16::from_be_bytes([msg[off + 2], msg[off + 3]]));
            let addr = |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&msg[at..at + 16]).unwrap());
            let sources = (0..ns).map(|k| addr(off + 20 + 16 * k)).collect();
            records.push((msg[off], addr(off + 4), sources));
            off += 20 + 16 * ns;
        }
        assert_eq!(off, msg.len());
    } else {
        assert_eq!(msg.len(), 24);
        let g = Ipv6Addr::from(<[u8; 16]>::try_from(&msg[8..24]).unwrap());
        records.push((msg[0], g, Vec::new()));
    }
    Sent {
        src: m.src,
        dst: m.dst,
        ty: msg[0],
        records,
    }
}

/// An MLDv2 query (28 octets plus sources).
fn query_v2(group: Ipv6Addr, mrc: u16, qrv: u8, sources: &[Ipv6Addr]) -> Vec<u8> {
    let mut m = vec![wire::TYPE_QUERY, 0, 0, 0];
    m.extend_from_slice(&mrc.to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&group.octets());
    m.extend_from_slice(&[qrv & 7, 125]);
    m.extend_from_slice(&(sources.len() as u16).to_be_bytes());
    for s in sources {
        m.extend_from_slice(&s.octets());
    }
    m
}

fn query_frame(src: Ipv6Addr, dst: Ipv6Addr, message: Vec<u8>) -> Vec<u8> {
    wire::frame(QUERIER_MAC, src, dst, message)
}

fn general_query(mrc: u16) -> Vec<u8> {
    query_frame(
        QUERIER,
        wire::ALL_NODES,
        query_v2(Ipv6Addr::UNSPECIFIED, mrc, 2, &[]),
    )
}

/// Polls until `deadline`, following the engine's own deadlines; returns
/// (time sent, frame).
fn run_until(m: &mut Mld, from: Instant, deadline: Instant) -> Vec<(Instant, Vec<u8>)> {
    let mut got = Vec::new();
    let mut t = from;
    loop {
        let mut out = Vec::new();
        let next = m.poll(t, &mut out);
        got.extend(out.into_iter().map(|f| (t, f)));
        match next {
            Some(n) if n <= deadline && n > t => t = n,
            Some(n) if n <= t => panic!("deadline {n:?} not after {t:?}"),
            _ => return got,
        }
    }
}

// ---- the membership set

#[test]
fn lan_listens_to_all_routers_dhcp_servers_and_each_solicited_node_group() {
    let g = lan_groups();
    let want: BTreeSet<Ipv6Addr> = [
        "ff02::1",
        "ff02::2",
        "ff02::1:2",
        "ff02::1:ff00:201",
        "ff02::1:ff00:1",
    ]
    .iter()
    .map(|s| a(s))
    .collect();
    assert_eq!(g, want);
}

#[test]
fn wan_is_a_host_and_follows_a_stable_privacy_address() {
    let wan = Role {
        router: false,
        dhcpv6_server: false,
    };
    let b4 = a("2001:db8:0:100:9a3c:71e2:44b5:c0de");
    let g = memberships(wan, &[a("fe80::ff:fe00:202"), b4]);
    assert_eq!(
        g,
        ["ff02::1", "ff02::1:ff00:202", "ff02::1:ffb5:c0de"]
            .iter()
            .map(|s| a(s))
            .collect()
    );
    assert!(!g.contains(&wire::ALL_ROUTERS));
    // Renumbered: the old address's group goes, the new one's comes.
    let g2 = memberships(wan, &[a("fe80::ff:fe00:202"), a("2001:db8:0:200::77")]);
    assert!(g2.contains(&a("ff02::1:ff00:77")));
    assert!(!g2.contains(&a("ff02::1:ffb5:c0de")));
}

#[test]
fn dhcpv6_off_leaves_the_server_group_and_addresses_sharing_a_group_count_once() {
    let g = memberships(
        Role {
            router: true,
            dhcpv6_server: false,
        },
        &[a("fe80::1"), a("2001:db8:0:111::1"), Ipv6Addr::UNSPECIFIED],
    );
    assert_eq!(
        g,
        ["ff02::1", "ff02::2", "ff02::1:ff00:1"]
            .iter()
            .map(|s| a(s))
            .collect()
    );
    assert_eq!(
        wire::multicast_mac(a("ff02::1:ff00:1")),
        [0x33, 0x33, 0xff, 0, 0, 1]
    );
    assert!(!reportable(wire::ALL_NODES));
    assert!(!reportable(a("ff01::2")));
    assert!(reportable(a("ff02::1:2")));
}

// ---- state changes (RFC 3810 6.1)

#[test]
fn joining_sends_a_change_to_exclude_report_at_once_and_robustness_times() {
    let t0 = Instant::now();
    let mut m = engine(1);
    // Link-local still tentative: from :: (RFC 3810 5.2.13).
    m.set_groups(t0, &lan_groups(), Ipv6Addr::UNSPECIFIED);
    let got = run_until(&mut m, t0, t0 + Duration::from_secs(10));
    assert_eq!(
        got.len(),
        2,
        "Robustness Variable 2: the report and one retransmission"
    );
    assert_eq!(got[0].0, t0, "the first goes at once");
    let gap = got[1].0 - got[0].0;
    assert!(
        gap > Duration::ZERO && gap <= Duration::from_secs(1),
        "{gap:?}"
    );
    for (_, f) in &got {
        let s = sent(f);
        assert_eq!(s.src, Ipv6Addr::UNSPECIFIED);
        assert_eq!(s.dst, wire::ALL_MLDV2_ROUTERS);
        assert_eq!(s.ty, wire::TYPE_REPORT_V2);
        let groups: BTreeSet<Ipv6Addr> = s.records.iter().map(|r| r.1).collect();
        // all-nodes is never reported.
        let mut want = lan_groups();
        want.remove(&wire::ALL_NODES);
        assert_eq!(groups, want);
        assert!(s
            .records
            .iter()
            .all(|r| r.0 == record_type::CHANGE_TO_EXCLUDE && r.2.is_empty()));
    }
    assert_eq!(m.counters().tx_report, 2);
    // Nothing changes: nothing more is sent.
    m.set_groups(t0 + Duration::from_secs(20), &lan_groups(), LL);
    assert!(run_until(
        &mut m,
        t0 + Duration::from_secs(20),
        t0 + Duration::from_secs(40)
    )
    .is_empty());
}

#[test]
fn renumbering_joins_the_new_group_and_leaves_the_old_one() {
    let t0 = Instant::now();
    let mut m = settled(t0, 2);
    let t1 = t0 + Duration::from_secs(60);
    let new = memberships(
        Role {
            router: true,
            dhcpv6_server: true,
        },
        &[LL, a("2001:db8:0:222::2")],
    );
    m.set_groups(t1, &new, LL);
    let got = run_until(&mut m, t1, t1 + Duration::from_secs(10));
    assert_eq!(got.len(), 2);
    for (_, f) in &got {
        let s = sent(f);
        assert_eq!(s.src, LL);
        let mut r = s.records.clone();
        r.sort();
        assert_eq!(
            r,
            vec![
                (record_type::CHANGE_TO_INCLUDE, a("ff02::1:ff00:1"), vec![]),
                (record_type::CHANGE_TO_EXCLUDE, a("ff02::1:ff00:2"), vec![]),
            ]
        );
    }
    assert!(!m.groups().contains(&a("ff02::1:ff00:1")));
}

#[test]
fn a_change_during_retransmissions_is_sent_at_once_with_the_pending_ones() {
    let t0 = Instant::now();
    let mut m = engine(3);
    m.set_groups(t0, &BTreeSet::from([a("ff02::2")]), LL);
    let mut out = Vec::new();
    m.poll(t0, &mut out);
    assert_eq!(out.len(), 1);
    out.clear();
    let t1 = t0 + Duration::from_millis(1);
    m.set_groups(t1, &BTreeSet::from([a("ff02::2"), a("ff02::1:2")]), LL);
    m.poll(t1, &mut out);
    assert_eq!(out.len(), 1);
    let groups: BTreeSet<Ipv6Addr> = sent(&out[0]).records.iter().map(|r| r.1).collect();
    assert_eq!(groups, BTreeSet::from([a("ff02::2"), a("ff02::1:2")]));
}

#[test]
fn link_up_announces_every_group_again_and_shutdown_leaves_them() {
    let t0 = Instant::now();
    let mut m = settled(t0, 4);
    let t1 = t0 + Duration::from_secs(30);
    m.link_up(t1);
    let got = run_until(&mut m, t1, t1 + Duration::from_secs(5));
    assert_eq!(got.len(), 2);
    assert_eq!(sent(&got[0].1).records.len(), lan_groups().len() - 1);
    let t2 = t1 + Duration::from_secs(30);
    let bye = m.leave_all(t2);
    assert_eq!(bye.len(), 1);
    let s = sent(&bye[0]);
    assert!(s
        .records
        .iter()
        .all(|r| r.0 == record_type::CHANGE_TO_INCLUDE));
    assert_eq!(s.records.len(), lan_groups().len() - 1);
    assert!(run_until(&mut m, t2, t2 + Duration::from_secs(300)).is_empty());
}

#[test]
fn reports_are_split_to_fit_the_mtu() {
    let t0 = Instant::now();
    let mut m = Mld::new(
        MldConfig {
            mtu: 1280,
            ..MldConfig::default()
        },
        MAC,
        5,
    );
    let own: Vec<Ipv6Addr> = (1..=64u16)
        .map(|k| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, k))
        .collect();
    let g = memberships(
        Role {
            router: false,
            dhcpv6_server: false,
        },
        &own,
    );
    m.set_groups(t0, &g, LL);
    let mut out = Vec::new();
    m.poll(t0, &mut out);
    // (1280 - 40 - 8 - 8) / 20 = 61 records per report: 64 groups in 2.
    assert_eq!(out.len(), 2);
    assert_eq!(sent(&out[0]).records.len(), 61);
    let total: usize = out.iter().map(|f| sent(f).records.len()).sum();
    assert_eq!(total, 64);
    assert!(out.iter().all(|f| f.len() - 14 <= 1280));
    // More groups than the bound: the rest are counted, not reported.
    let more: Vec<Ipv6Addr> = (1..=70u16)
        .map(|k| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, k))
        .collect();
    m.set_groups(
        t0,
        &memberships(
            Role {
                router: false,
                dhcpv6_server: false,
            },
            &more,
        ),
        LL,
    );
    assert_eq!(m.groups().len(), 64);
    assert_eq!(m.counters().groups_over_limit, 1);
}

// ---- queries (RFC 3810 6.2, 6.3)

#[test]
fn general_query_is_answered_within_the_max_response_delay_at_a_random_time() {
    let mut delays = BTreeSet::new();
    for seed in 0..16 {
        let t0 = Instant::now();
        let mut m = settled(t0, seed);
        let tq = t0 + Duration::from_secs(100);
        assert_eq!(m.handle_frame(tq, &general_query(10_000)), Verdict::Taken);
        let got = run_until(&mut m, tq, tq + Duration::from_secs(30));
        assert_eq!(got.len(), 1, "one answer");
        let (at, f) = &got[0];
        let delay = *at - tq;
        assert!(delay <= Duration::from_secs(10), "{delay:?}");
        delays.insert(delay);
        let s = sent(f);
        assert_eq!(s.src, LL);
        assert_eq!(s.dst, wire::ALL_MLDV2_ROUTERS);
        assert_eq!(s.records.len(), lan_groups().len() - 1);
        assert!(s
            .records
            .iter()
            .all(|r| r.0 == record_type::MODE_IS_EXCLUDE && r.2.is_empty()));
        assert_eq!(m.counters().tx_answer, 1);
        assert_eq!(m.counters().rx_query_v2, 1);
    }
    assert!(delays.len() > 8, "the delay is random: {delays:?}");
}

#[test]
fn group_specific_query_gets_only_that_group_and_other_groups_get_nothing() {
    let t0 = Instant::now();
    let mut m = settled(t0, 6);
    let g = a("ff02::1:ff00:1");
    m.handle_frame(t0, &query_frame(QUERIER, g, query_v2(g, 1000, 2, &[])));
    let got = run_until(&mut m, t0, t0 + Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert!(got[0].0 - t0 <= Duration::from_secs(1));
    assert_eq!(
        sent(&got[0].1).records,
        vec![(record_type::MODE_IS_EXCLUDE, g, vec![])]
    );
    let other = a("ff02::1:ff12:3456");
    let t1 = t0 + Duration::from_secs(10);
    m.handle_frame(
        t1,
        &query_frame(QUERIER, other, query_v2(other, 1000, 2, &[])),
    );
    assert!(run_until(&mut m, t1, t1 + Duration::from_secs(5)).is_empty());
    assert_eq!(m.counters().rx_query_other_group, 1);
}

#[test]
fn source_specific_queries_merge_and_are_answered_with_is_include() {
    let t0 = Instant::now();
    let mut m = settled(t0, 7);
    let g = a("ff02::1:2");
    let (s1, s2) = (a("2001:db8::a"), a("2001:db8::b"));
    m.handle_frame(t0, &query_frame(QUERIER, g, query_v2(g, 5000, 2, &[s1])));
    m.handle_frame(t0, &query_frame(QUERIER, g, query_v2(g, 5000, 2, &[s2])));
    let got = run_until(&mut m, t0, t0 + Duration::from_secs(10));
    assert_eq!(got.len(), 1, "rule 5: one answer for both");
    assert_eq!(
        sent(&got[0].1).records,
        vec![(record_type::MODE_IS_INCLUDE, g, vec![s1, s2])]
    );
    // Rule 4: a group-specific query widens a pending source answer.
    let t1 = t0 + Duration::from_secs(20);
    m.handle_frame(t1, &query_frame(QUERIER, g, query_v2(g, 5000, 2, &[s1])));
    m.handle_frame(t1, &query_frame(QUERIER, g, query_v2(g, 5000, 2, &[])));
    let got = run_until(&mut m, t1, t1 + Duration::from_secs(10));
    assert_eq!(
        sent(&got[0].1).records,
        vec![(record_type::MODE_IS_EXCLUDE, g, vec![])]
    );
}

#[test]
fn a_pending_general_answer_covers_a_later_query() {
    let t0 = Instant::now();
    let mut m = settled(t0, 8);
    // Max response 0: the answer is due at once, before any other delay.
    m.handle_frame(t0, &general_query(0));
    let g = a("ff02::2");
    m.handle_frame(t0, &query_frame(QUERIER, g, query_v2(g, 10_000, 2, &[])));
    assert_eq!(m.counters().rx_query_covered, 1);
    let got = run_until(&mut m, t0, t0 + Duration::from_secs(20));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, t0);
}

#[test]
fn the_queriers_robustness_variable_is_adopted() {
    let t0 = Instant::now();
    let mut m = settled(t0, 9);
    m.handle_frame(
        t0,
        &query_frame(
            QUERIER,
            wire::ALL_NODES,
            query_v2(Ipv6Addr::UNSPECIFIED, 0, 4, &[]),
        ),
    );
    // The answer to the query itself.
    assert_eq!(run_until(&mut m, t0, t0).len(), 1);
    let t1 = t0 + Duration::from_secs(5);
    m.set_groups(t1, &BTreeSet::from([a("ff02::2")]), LL);
    let got = run_until(&mut m, t1, t1 + Duration::from_secs(10));
    assert_eq!(got.len(), 4);
}

#[test]
fn an_mldv1_querier_switches_to_mldv1_reports_until_it_goes_away() {
    let t0 = Instant::now();
    let mut m = settled(t0, 10);
    let mut v1 = wire::emit_v1(wire::TYPE_QUERY, Ipv6Addr::UNSPECIFIED);
    v1[4..6].copy_from_slice(&1000u16.to_be_bytes());
    assert_eq!(
        m.handle_frame(t0, &query_frame(QUERIER, wire::ALL_NODES, v1)),
        Verdict::Taken
    );
    assert!(m.v1_mode(t0));
    let got = run_until(&mut m, t0, t0 + Duration::from_secs(2));
    // One MLDv1 report per group, each to the group itself.
    assert_eq!(got.len(), lan_groups().len() - 1);
    for (at, f) in &got {
        assert!(*at - t0 <= Duration::from_secs(1));
        let s = sent(f);
        assert_eq!(s.ty, wire::TYPE_REPORT_V1);
        assert_eq!(s.dst, s.records[0].1);
    }
    // A leave in MLDv1 is a single Done to all-routers.
    let t1 = t0 + Duration::from_secs(10);
    let mut fewer = lan_groups();
    fewer.remove(&a("ff02::1:2"));
    m.set_groups(t1, &fewer, LL);
    let got = run_until(&mut m, t1, t1 + Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    let s = sent(&got[0].1);
    assert_eq!((s.ty, s.dst), (wire::TYPE_DONE_V1, wire::ALL_ROUTERS));
    // Older Version Querier Present Timeout: 2 x 125 s + 1 s.
    let t2 = t0 + Duration::from_secs(252);
    assert!(!m.v1_mode(t2));
    m.handle_frame(t2, &general_query(0));
    let mut out = Vec::new();
    m.poll(t2, &mut out);
    assert_eq!(sent(&out[0]).ty, wire::TYPE_REPORT_V2);
}

#[test]
fn another_listeners_mldv1_report_suppresses_ours() {
    let t0 = Instant::now();
    let mut m = settled(t0, 11);
    let g = a("ff02::2");
    let mut v1 = wire::emit_v1(wire::TYPE_QUERY, g);
    v1[4..6].copy_from_slice(&10_000u16.to_be_bytes());
    m.handle_frame(t0, &query_frame(QUERIER, g, v1));
    let other = query_frame(a("fe80::77"), g, wire::emit_v1(wire::TYPE_REPORT_V1, g));
    assert_eq!(m.handle_frame(t0, &other), Verdict::Taken);
    assert_eq!(m.counters().rx_report_suppressed, 1);
    assert!(run_until(&mut m, t0, t0 + Duration::from_secs(11)).is_empty());
}

#[test]
fn bad_queries_are_dropped_with_a_counter_and_never_answered() {
    let t0 = Instant::now();
    let mut m = settled(t0, 12);
    let good = general_query(0);
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // Global source (RFC 3810 5.1.14).
    cases.push((
        "bad source",
        query_frame(
            a("2001:db8::99"),
            wire::ALL_NODES,
            query_v2(Ipv6Addr::UNSPECIFIED, 0, 2, &[]),
        ),
    ));
    let mut f = good.clone();
    f[14 + 7] = 255;
    cases.push(("hop limit", f));
    let mut f = good.clone();
    // The Router Alert replaced by padding.
    f[14 + 40 + 2..14 + 40 + 8].copy_from_slice(&[1, 4, 0, 0, 0, 0]);
    cases.push(("no router alert", f));
    let mut f = good.clone();
    let last = f.len() - 1;
    f[last] ^= 0x40;
    cases.push(("checksum", f));
    // 26 octets: neither MLDv1 nor MLDv2 (RFC 3810 8.1).
    let mut short = query_v2(Ipv6Addr::UNSPECIFIED, 0, 2, &[]);
    short.truncate(26);
    cases.push(("length 26", query_frame(QUERIER, wire::ALL_NODES, short)));
    // Announces 3 sources, holds 1.
    let mut over = query_v2(a("ff02::2"), 0, 2, &[a("2001:db8::1")]);
    over[27] = 3;
    cases.push(("sources overrun", query_frame(QUERIER, a("ff02::2"), over)));
    // A group that is not multicast.
    cases.push((
        "unicast group",
        query_frame(
            QUERIER,
            wire::ALL_NODES,
            query_v2(a("2001:db8::1"), 0, 2, &[]),
        ),
    ));
    // Hop-by-Hop header longer than the packet.
    let mut f = good.clone();
    f[14 + 41] = 9;
    cases.push(("hop-by-hop overrun", f));
    for (what, frame) in &cases {
        assert_eq!(m.handle_frame(t0, frame), Verdict::Dropped, "{what}");
    }
    let c = m.counters();
    assert_eq!(c.rx_query_bad_source, 1);
    assert_eq!(c.rx_query_bad_hop_limit, 1);
    assert_eq!(c.rx_query_no_router_alert, 1);
    assert_eq!(c.rx_bad_checksum, 1);
    assert_eq!(c.rx_malformed, 4);
    assert_eq!(c.rx_query_v2, 0);
    assert!(run_until(&mut m, t0, t0 + Duration::from_secs(300)).is_empty());
    // Not MLD at all: for the other engines, counted nowhere here.
    let mut ns = good.clone();
    ns[14 + 48] = 135;
    assert_eq!(m.handle_frame(t0, &ns), Verdict::NotMld);
}

#[test]
fn our_own_reflected_report_is_not_taken_for_anything() {
    let t0 = Instant::now();
    let mut m = engine(13);
    m.set_groups(t0, &lan_groups(), LL);
    let mut out = Vec::new();
    m.poll(t0, &mut out);
    assert_eq!(m.handle_frame(t0, &out[0]), Verdict::Dropped);
    assert_eq!(m.counters().rx_own, 1);
    assert_eq!(m.counters().rx_report, 0);
}

#[test]
fn hostile_frames_never_panic() {
    let t0 = Instant::now();
    let mut m = settled(t0, 14);
    let seed = general_query(500);
    let mut x: u64 = 0x1234_5678;
    for k in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut f = seed.clone();
        match k % 3 {
            0 => {
                let at = (x as usize) % f.len();
                f[at] = (x >> 32) as u8;
            }
            1 => f.truncate((x as usize) % (f.len() + 1)),
            _ => f.extend((0..(x % 64)).map(|i| (x >> (i % 56)) as u8)),
        }
        let _ = m.handle_frame(t0 + Duration::from_millis(u64::from(k)), &f);
        let mut out = Vec::new();
        let _ = m.poll(t0 + Duration::from_millis(u64::from(k)), &mut out);
    }
}

#[test]
fn max_response_codes_and_query_intervals_decode_as_rfc_3810_says() {
    assert_eq!(
        wire::max_response_delay(10_000),
        Duration::from_millis(10_000)
    );
    assert_eq!(
        wire::max_response_delay(0x8000),
        Duration::from_millis(0x1000 << 3)
    );
    assert_eq!(
        wire::max_response_delay(0xffff),
        Duration::from_millis(0x1fff << 10)
    );
    assert_eq!(wire::query_interval(125), Duration::from_secs(125));
    assert_eq!(wire::query_interval(0x80), Duration::from_secs(0x10 << 3));
}
