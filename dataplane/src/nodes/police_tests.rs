//! The punt budgets through the whole graph, on a fake clock: a flood of
//! one class is cut to that class's budget on its port, the known router's
//! RAs and ND and the replies to our DHCPv6 transaction always pass, and
//! the queue to the control thread keeps room for them when it is full.

use std::net::Ipv6Addr;

use crossbeam_queue::ArrayQueue;

use crate::graph::{Graph, NodeId};
use crate::police::{self, PuntClass, BUDGETS, RESERVED_SLOTS};
use crate::tables::Port;
use crate::testkit::{lab_fib, FrameArena, XorShift, GATEWAY6, GW_MAC, HOST_MAC, WAN_MAC};
use crate::MAX_BATCH;

const MS: u64 = 1_000_000;
/// The daemon's punt queue depth.
const DEPTH: usize = 1024;

fn ipv6_frame(src_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, next: u8, l4: &[u8]) -> Vec<u8> {
    let dst_mac = if dst.octets()[0] == 0xff {
        let o = dst.octets();
        [0x33, 0x33, o[12], o[13], o[14], o[15]]
    } else {
        WAN_MAC
    };
    let mut f = Vec::with_capacity(54 + l4.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    f.extend_from_slice(&[next, 255]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(l4);
    f
}

/// An RA with router lifetime 3600 (the dataplane reads only its type).
fn ra(src_mac: [u8; 6], src: Ipv6Addr) -> Vec<u8> {
    let icmp = [134, 0, 0, 0, 64, 0xc0, 0x0e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0];
    ipv6_frame(src_mac, src, "ff02::1".parse().unwrap(), 58, &icmp)
}

/// An NS for the router's WAN address.
fn ns(src_mac: [u8; 6], src: Ipv6Addr) -> Vec<u8> {
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&crate::testkit::B4.octets());
    ipv6_frame(src_mac, src, "ff02::1:ff00:2".parse().unwrap(), 58, &icmp)
}

/// A DHCPv6 Reply from the home gateway to the router's link-local address.
fn dhcp6_reply(xid: u32) -> Vec<u8> {
    let x = xid.to_be_bytes();
    let mut udp = vec![0x02, 0x23, 0x02, 0x22, 0, 20, 0, 0, 7, x[1], x[2], x[3]];
    udp.extend_from_slice(&[0, 1, 0, 4, 1, 2, 3, 4]);
    let router_ll = "fe80::ff:fe00:202".parse().unwrap();
    let mut f = ipv6_frame(GW_MAC, GATEWAY6, router_ll, 17, &udp);
    f[0..6].copy_from_slice(&WAN_MAC);
    f
}

fn random_mac(rng: &mut XorShift) -> [u8; 6] {
    let r = rng.next_u64().to_be_bytes();
    // Unicast, locally administered, as the flood tools make them.
    [0x12, r[0], r[1], r[2], r[3], r[4]]
}

fn random_link_local(rng: &mut XorShift) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
    Ipv6Addr::from(o)
}

fn err(g: &Graph, name: &str) -> u64 {
    let idx = NodeId::Punt
        .errors()
        .iter()
        .position(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("punt has no counter {name}"));
    g.stats.nodes[NodeId::Punt as usize].errors[idx]
}

/// What the worker does after a vector: each punted frame onto the queue
/// if `queue_admits` says so. Returns the source addresses queued.
fn enqueue(g: &Graph, arena: &FrameArena, q: &ArrayQueue<[u8; 16]>) -> Vec<[u8; 16]> {
    let mut queued = Vec::new();
    for &i in g.out.punt.as_slice() {
        let class = g.meta[usize::from(i)].class;
        if police::queue_admits(class, q.len(), q.capacity()) {
            let mut src = [0u8; 16];
            src.copy_from_slice(&arena.packet(g, i)[22..38]);
            if q.push(src).is_ok() {
                queued.push(src);
            }
        }
    }
    queued
}

/// 4 s of RAs from made-up routers at 255 per millisecond (255k/s, what
/// one flood tool sends), with the known router's RA in every fourth
/// vector at a random place. Every one of the router's RAs goes onto the
/// queue; the others get the RA budget and no more.
#[test]
fn ra_flood_from_other_routers_never_stops_the_known_routers_ra() {
    let fib = lab_fib();
    let mut g = Graph::new();
    let mut arena = FrameArena::new(MAX_BATCH);
    let mut rng = XorShift::new(0x5eed);
    let foreign: Vec<Vec<u8>> = (0..1024)
        .map(|_| {
            let mac = random_mac(&mut rng);
            let src = random_link_local(&mut rng);
            ra(mac, src)
        })
        .collect();
    // Its RA's source MAC need not be the one the Fib knows: the
    // link-local source is enough.
    let ours = ra(random_mac(&mut rng), GATEWAY6);
    let q = ArrayQueue::new(DEPTH);
    let (vectors, mut sent_ours, mut got_ours, mut got_foreign) = (4000u64, 0, 0, 0u64);
    for v in 0..vectors {
        let mut frames: Vec<(Port, &[u8])> = (0..MAX_BATCH)
            .map(|k| (Port::Wan, foreign[(v as usize * 7 + k) % 1024].as_slice()))
            .collect();
        if v % 4 == 0 {
            frames[rng.below(MAX_BATCH)] = (Port::Wan, ours.as_slice());
            sent_ours += 1;
        }
        arena.run(&mut g, &fib, &frames, (1 + v) * MS);
        for src in enqueue(&g, &arena, &q) {
            if src == GATEWAY6.octets() {
                got_ours += 1;
            } else {
                got_foreign += 1;
            }
        }
        // The control thread keeps up with what the budgets let through.
        while q.pop().is_some() {}
    }
    assert_eq!(
        got_ours, sent_ours,
        "the known router's RAs all reach the queue"
    );
    assert_eq!(err(&g, "reserved"), sent_ours);
    let b = BUDGETS[PuntClass::Ra as usize];
    let allowed = b.burst + b.per_sec * vectors / 1000;
    assert!(
        got_foreign <= allowed && got_foreign + 2 >= allowed,
        "{got_foreign} foreign RAs passed, the budget is {allowed}"
    );
    let flood = vectors * MAX_BATCH as u64 - sent_ours;
    assert_eq!(err(&g, "police-ra"), flood - got_foreign);
    assert_eq!(err(&g, "police-reserve"), 0);
}

/// The router's solicitations for our global address come from its global
/// address: they are known by its MAC. An NS flood from random MACs and
/// sources costs the ND budget only, and a DHCPv6 Reply to our open
/// transaction passes a flood of replies with other xids.
#[test]
fn router_ns_and_our_dhcp6_reply_pass_their_floods() {
    let fib = lab_fib();
    let mut g = Graph::new();
    g.police.reserve.set_dhcp6_xid(Some(0xabcdef));
    let mut arena = FrameArena::new(MAX_BATCH);
    let mut rng = XorShift::new(99);
    let router_global: Ipv6Addr = "2001:db8:0:100::1".parse().unwrap();
    let router_ns = ns(GW_MAC, router_global);
    let our_reply = dhcp6_reply(0xabcdef);
    let floods: Vec<Vec<u8>> = (0..512)
        .map(|k| {
            if k % 2 == 0 {
                let mac = random_mac(&mut rng);
                let src = random_link_local(&mut rng);
                ns(mac, src)
            } else {
                dhcp6_reply((rng.next_u64() as u32 & 0xffffff) | 1)
            }
        })
        .collect();
    let vectors = 1000u64;
    let mut passed = [0u64; 3];
    for v in 0..vectors {
        let mut frames: Vec<(Port, &[u8])> = (0..MAX_BATCH)
            .map(|k| (Port::Wan, floods[(v as usize * 3 + k) % 512].as_slice()))
            .collect();
        // One of each every 4 ms: 250/s each, within the reserve's budget.
        if v % 4 == 0 {
            frames[0] = (Port::Wan, router_ns.as_slice());
            frames[MAX_BATCH - 1] = (Port::Wan, our_reply.as_slice());
        }
        arena.run(&mut g, &fib, &frames, (1 + v) * MS);
        for &i in g.out.punt.as_slice() {
            let p = arena.packet(&g, i);
            let k = if p == router_ns.as_slice() {
                0
            } else if p == our_reply.as_slice() {
                1
            } else {
                2
            };
            passed[k] += 1;
        }
    }
    assert_eq!(passed[0], vectors / 4, "the router's NS");
    assert_eq!(passed[1], vectors / 4, "our DHCPv6 Reply");
    let budget = |c: PuntClass| BUDGETS[c as usize].burst + BUDGETS[c as usize].per_sec;
    assert!(
        passed[2] <= budget(PuntClass::Nd) + budget(PuntClass::Dhcp6),
        "{} flood frames passed in 1 s",
        passed[2]
    );
    assert!(err(&g, "police-nd") > 100_000 && err(&g, "police-dhcp6") > 100_000);
    assert_eq!(err(&g, "reserved"), vectors / 2);
}

/// A WAN solicitation flood spends the WAN's ND budget, never the LAN's:
/// a LAN host resolving the router (ARP, NS) still gets through.
#[test]
fn wan_nd_flood_leaves_the_lan_budget_alone() {
    let fib = lab_fib();
    let mut g = Graph::new();
    let mut arena = FrameArena::new(MAX_BATCH);
    let mut rng = XorShift::new(3);
    let flood: Vec<Vec<u8>> = (0..MAX_BATCH)
        .map(|_| {
            let mac = random_mac(&mut rng);
            let src = random_link_local(&mut rng);
            ns(mac, src)
        })
        .collect();
    let lan_ns = {
        let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&"2001:db8:0:111::1".parse::<Ipv6Addr>().unwrap().octets());
        let mut f = ipv6_frame(
            HOST_MAC,
            crate::testkit::HOST6,
            "ff02::1:ff00:1".parse().unwrap(),
            58,
            &icmp,
        );
        f[0..6].copy_from_slice(&[0x33, 0x33, 0xff, 0, 0, 1]);
        f
    };
    let arp = {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&HOST_MAC);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&HOST_MAC);
        f.extend_from_slice(&[192, 168, 2, 10, 0, 0, 0, 0, 0, 0, 192, 168, 2, 1]);
        f
    };
    let (mut lan_sent, mut lan_passed) = (0, 0);
    for v in 0..400u64 {
        let mut frames: Vec<(Port, &[u8])> =
            flood.iter().map(|f| (Port::Wan, f.as_slice())).collect();
        // 500 a second: half the LAN's ND budget.
        if v % 4 == 0 {
            frames[10] = (Port::Lan, lan_ns.as_slice());
            frames[20] = (Port::Lan, arp.as_slice());
            lan_sent += 2;
        }
        arena.run(&mut g, &fib, &frames, (1 + v) * MS);
        lan_passed += g
            .out
            .punt
            .as_slice()
            .iter()
            .filter(|&&i| g.meta[usize::from(i)].rx == Port::Lan)
            .count();
    }
    assert_eq!(lan_passed, lan_sent);
    assert!(err(&g, "police-nd") > 90_000);
}

/// A control thread that stops reading (a state file fsync on a slow
/// disk): budgeted frames fill the queue up to its reserve, and the
/// router's RA still goes on, into the slots only it may take.
#[test]
fn full_queue_keeps_room_for_the_reserve() {
    let fib = lab_fib();
    let mut g = Graph::new();
    let mut arena = FrameArena::new(MAX_BATCH);
    let mut rng = XorShift::new(11);
    // Within their budgets, but together more than the queue holds.
    let mut mixed: Vec<Vec<u8>> = Vec::new();
    for _ in 0..MAX_BATCH {
        let mac = random_mac(&mut rng);
        let src = random_link_local(&mut rng);
        mixed.push(ns(mac, src));
    }
    let ours = ra(GW_MAC, GATEWAY6);
    let q = ArrayQueue::new(DEPTH);
    let (mut sent, mut queued_ours) = (0, 0);
    for v in 0..400u64 {
        let mut frames: Vec<(Port, &[u8])> =
            mixed.iter().map(|f| (Port::Wan, f.as_slice())).collect();
        if v % 4 == 0 {
            frames[5] = (Port::Wan, ours.as_slice());
            sent += 1;
        }
        // 10 ms apart: 100k NS a second, 1k of them within budget.
        arena.run(&mut g, &fib, &frames, (1 + v) * 10 * MS);
        queued_ours += enqueue(&g, &arena, &q)
            .iter()
            .filter(|s| **s == GATEWAY6.octets())
            .count();
    }
    // Nobody read the queue: the NSs stopped at its shared part, and the
    // router's RAs went on into the reserved slots.
    assert_eq!(queued_ours, sent);
    assert!(q.len() <= DEPTH && q.len() > DEPTH - RESERVED_SLOTS + sent / 2);
    let mut ns_queued = 0;
    while let Some(src) = q.pop() {
        ns_queued += usize::from(src != GATEWAY6.octets());
    }
    assert!(ns_queued <= DEPTH - RESERVED_SLOTS, "{ns_queued} NS queued");
}

/// A TCP segment from the provisioning server to the router's WAN address.
fn tcp_from_server(sport: u16, dport: u16) -> Vec<u8> {
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x12; // SYN-ACK
    let server: Ipv6Addr = "2001:db8:77:ee::46".parse().unwrap();
    ipv6_frame(GW_MAC, server, crate::testkit::B4, 6, &tcp)
}

fn local_err(g: &Graph, name: &str) -> u64 {
    let idx = NodeId::Ip6Local
        .errors()
        .iter()
        .position(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("ip6-local has no counter {name}"));
    g.stats.nodes[NodeId::Ip6Local as usize].errors[idx]
}

/// TCP from the WAN to the router passes only for the router's own open
/// connections (issue 20: the HB46PP fetch over its own TCP); anything
/// else stays `wan-not-allowed`.
#[test]
fn tcp_to_the_router_passes_only_for_its_own_connections() {
    let fib = lab_fib();
    let mut g = Graph::new();
    let mut arena = FrameArena::new(MAX_BATCH);
    let ours = tcp_from_server(443, 50000);
    let other_port = tcp_from_server(443, 50001);
    let other_server_port = tcp_from_server(80, 50000);
    let frames = [
        (Port::Wan, ours.as_slice()),
        (Port::Wan, other_port.as_slice()),
        (Port::Wan, other_server_port.as_slice()),
    ];
    arena.run(&mut g, &fib, &frames, MS);
    assert_eq!(g.out.punt.as_slice().len(), 0);
    assert_eq!(local_err(&g, "wan-not-allowed"), 3);
    g.police.reserve.set_tcp_flows(&[(443, 50000)]);
    arena.run(&mut g, &fib, &frames, 2 * MS);
    let punted: Vec<&[u8]> = g
        .out
        .punt
        .as_slice()
        .iter()
        .map(|&i| arena.packet(&g, i))
        .collect();
    assert_eq!(punted, vec![ours.as_slice()]);
    assert_eq!(local_err(&g, "wan-not-allowed"), 5);
    // Closed again: dropped again.
    g.police.reserve.set_tcp_flows(&[]);
    arena.run(&mut g, &fib, &frames[..1], 3 * MS);
    assert_eq!(local_err(&g, "wan-not-allowed"), 6);
}
