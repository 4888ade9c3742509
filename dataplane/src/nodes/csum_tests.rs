//! Partial checksums (a kernel peer's CHECKSUM_PARTIAL) through the whole
//! graph: completed where the frame enters, whichever path it takes, and
//! counted per interface.

use etherparse::{PacketBuilder, TcpOptionElement};

use crate::graph::Graph;
use crate::tables::{Fib, Port};
use crate::testkit::{
    aftr_ipip6, as_refs, lab_fib, make_partial, open_sessions, vector, wan_udp6, FrameArena, Path,
    GW_MAC, HOST4, HOST6, HOST_MAC, LAN_MAC, SERVER4, SERVER6, WAN_MAC,
};
use crate::wire::{be16, fold, sum16, ETH_LEN, PROTO_IPIP};

/// Whether the TCP/UDP checksum of the IPv4 packet `ip` verifies.
fn ok4(ip: &[u8]) -> bool {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2));
    let pseudo = sum16(&ip[12..20], 0) + u32::from(ip[9]) + (total - ihl) as u32;
    fold(sum16(&ip[ihl..total], pseudo)) == 0xffff
}

/// Whether the L4 checksum of `frame` verifies: IPv4, IPv6 (TCP/UDP right
/// behind the header) or the inner IPv4 of IPv4-in-IPv6.
fn l4_ok(frame: &[u8]) -> bool {
    let ip = &frame[ETH_LEN..];
    match be16(frame, 12) {
        0x0800 => ok4(ip),
        0x86dd if ip[6] == PROTO_IPIP => ok4(&ip[40..]),
        0x86dd => {
            let total = 40 + usize::from(be16(ip, 4));
            let pseudo = sum16(&ip[8..40], 0) + u32::from(ip[6]) + (total - 40) as u32;
            fold(sum16(&ip[40..total], pseudo)) == 0xffff
        }
        _ => panic!("not IP"),
    }
}

fn partial(mut f: Vec<u8>) -> Vec<u8> {
    assert!(make_partial(&mut f));
    assert!(!l4_ok(&f), "a partial checksum does not verify");
    f
}

/// A LAN SYN as Linux sends it (the MSS gets clamped in the tunnel).
fn lan_syn4() -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv4(HOST4.octets(), SERVER4.octets(), 64)
        .tcp(40001, 80, 1000, 64240)
        .syn()
        .options(&[
            TcpOptionElement::MaximumSegmentSize(1460),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::Timestamp(1, 0),
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
        ])
        .unwrap()
        .write(&mut v, &[])
        .unwrap();
    v
}

fn lan_tcp6(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv6(HOST6.octets(), SERVER6.octets(), 64)
        .tcp(40002, 80, 1000, 64240)
        .syn()
        .write(&mut v, payload)
        .unwrap();
    v
}

fn run(fib: &Fib, frames: &[(Port, Vec<u8>)]) -> (Graph, FrameArena) {
    let mut g = Graph::new();
    open_sessions(&mut g, fib, frames);
    g.stats = Default::default();
    let mut arena = FrameArena::new(frames.len());
    arena.run(&mut g, fib, &as_refs(frames), 0);
    (g, arena)
}

fn completed(g: &Graph, port: Port) -> u64 {
    g.stats.ports[port.index()].csum_completed
}

#[test]
fn forwarded_partial_frames_leave_completed_and_are_counted_per_port() {
    let fib = lab_fib();
    let frames = vec![
        (Port::Lan, partial(lan_syn4())),
        (Port::Lan, partial(lan_tcp6(b"GET / HTTP/1.1\r\n\r\n"))),
        (Port::Wan, partial(wan_udp6(3, 700))),
        (Port::Wan, partial(aftr_ipip6(4, 900))),
    ];
    let (g, arena) = run(&fib, &frames);
    let out = |p: Port| -> Vec<Vec<u8>> {
        g.out.tx[p.index()]
            .as_slice()
            .iter()
            .map(|&i| arena.packet(&g, i).to_vec())
            .collect()
    };
    let (wan, lan) = (out(Port::Wan), out(Port::Lan));
    assert_eq!((wan.len(), lan.len()), (2, 2), "everything forwarded");
    for f in wan.iter().chain(&lan) {
        assert!(l4_ok(f), "checksum completed: {f:02x?}");
    }
    // The SYN was clamped after completion: its incremental update
    // started from a whole checksum.
    let syn = wan.iter().find(|f| f[ETH_LEN + 6] == PROTO_IPIP).unwrap();
    let tcp = &syn[ETH_LEN + 40 + 20..];
    assert_eq!(&tcp[20..24], &[2, 4, 0x05, 0x8c], "MSS 1420");
    assert_eq!(completed(&g, Port::Lan), 2);
    assert_eq!(completed(&g, Port::Wan), 2);
}

#[test]
fn partial_frames_for_the_router_are_punted_completed() {
    let fib = lab_fib();
    let ll_gw = [0xfe80u16, 0, 0, 0, 0, 0, 0, 1];
    let ll_wan = [0xfe80u16, 0, 0, 0, 0, 0xff, 0xfe00, 0x202];
    let words = |w: [u16; 8]| std::net::Ipv6Addr::from(w).octets();
    let mut dhcp6_reply = Vec::new();
    PacketBuilder::ethernet2(GW_MAC, WAN_MAC)
        .ipv6(words(ll_gw), words(ll_wan), 64)
        .udp(547, 546)
        .write(&mut dhcp6_reply, &[7; 120])
        .unwrap();
    let mut dns4 = Vec::new();
    PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv4(HOST4.octets(), [192, 168, 2, 1], 64)
        .udp(50000, 53)
        .write(&mut dns4, &[8; 33])
        .unwrap();
    let mut dns6 = Vec::new();
    PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv6(
            HOST6.octets(),
            words([0x2001, 0xdb8, 0, 0x111, 0, 0, 0, 1]),
            64,
        )
        .udp(50001, 53)
        .write(&mut dns6, &[9; 33])
        .unwrap();
    let frames = vec![
        (Port::Wan, partial(dhcp6_reply)),
        (Port::Lan, partial(dns4)),
        (Port::Lan, partial(dns6)),
    ];
    let (g, arena) = run(&fib, &frames);
    assert_eq!(g.out.punt.len(), 3, "all for the router");
    for &i in g.out.punt.as_slice() {
        assert!(l4_ok(arena.packet(&g, i)), "punted completed");
    }
    assert_eq!(completed(&g, Port::Wan), 1);
    assert_eq!(completed(&g, Port::Lan), 2);
}

#[test]
fn ordinary_frames_are_forwarded_as_they_were_and_not_counted() {
    let fib = lab_fib();
    let frames = vector(Path::Mixed, 64, 200);
    let (g, arena) = run(&fib, &frames);
    assert_eq!(g.out.tx[0].len() + g.out.tx[1].len(), 64);
    for p in [Port::Wan, Port::Lan] {
        assert_eq!(completed(&g, p), 0);
        for &i in g.out.tx[p.index()].as_slice() {
            assert!(l4_ok(arena.packet(&g, i)));
        }
    }
}

#[test]
fn a_partial_later_fragment_is_not_completed() {
    // The first fragment of a LAN datagram holds only part of the segment:
    // summing it would write a wrong checksum over a right one.
    let fib = lab_fib();
    let mut f = partial(crate::testkit::lan_udp4(9, 600));
    f[ETH_LEN + 6] = 0x20; // more fragments
    crate::testkit::set_ipv4_ttl(&mut f, 64); // fixes the header checksum
    let before = f[ETH_LEN + 20..].to_vec();
    let (g, arena) = run(&fib, &[(Port::Lan, f)]);
    assert_eq!(completed(&g, Port::Lan), 0);
    let out = arena.packet(&g, g.out.tx[Port::Wan.index()].as_slice()[0]);
    assert_eq!(
        &out[ETH_LEN + 40 + 20..],
        &before[..],
        "the fragment's bytes untouched"
    );
}
