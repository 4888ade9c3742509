//! nat44-out and nat44-in through the whole graph, as MAP-E uses them:
//! LAN IPv4 leaves in IPv6 toward the BR from the shared address and a
//! port of the set; what the BR brings back reaches the LAN host. Expected
//! packets are built by etherparse, so every checksum is checked.

use std::net::Ipv4Addr;
use std::sync::Arc;

use etherparse::PacketBuilder;
use ipoe_proto::map::PortSet;

use crate::graph::{Graph, NodeId};
use crate::nat::bindings::{Bindings, NatProto};
use crate::nat::ports::Limits;
use crate::nat::PortPool;
use crate::nodes::{nat44_in, nat44_out};
use crate::tables::{Fib, Port};
use crate::testkit::{
    ipip6_from, lab_fib, unlimited_graph, FrameArena, AFTR, B4, HOST4, HOST_MAC, LAN_MAC, SERVER4,
};
use crate::wire::ETH_LEN;

const SHARED: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 77);
const ROUTER: [u8; 4] = [203, 0, 113, 254];
const SEC: u64 = 1_000_000_000;

fn v6plus() -> PortPool {
    PortPool::from_set(PortSet::new(4, 8, 0x3c))
}

/// The lab's tunnel (B4 = the CE address, AFTR = the BR) with NAPT44 on.
fn setup(pool: PortPool) -> (Graph, Fib, Arc<Bindings>) {
    let g = unlimited_graph();
    let b = Arc::new(Bindings::new(
        SHARED,
        pool,
        Limits {
            grace_s: 0,
            ..Limits::default()
        },
    ));
    g.fw.sessions.set_nat_release(b.clone());
    let fib = Fib {
        napt: Some(b.clone()),
        ..lab_fib()
    };
    (g, fib, b)
}

fn lan_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv4(HOST4.octets(), SERVER4.octets(), 64)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn lan_ping(id: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv4(HOST4.octets(), SERVER4.octets(), 64)
        .icmpv4_echo_request(id, 1)
        .write(&mut v, b"ping")
        .unwrap();
    v
}

/// IPv4 `inner` in IPv6 to the CE, as the BR sends it.
fn from_br(inner: &[u8]) -> Vec<u8> {
    ipip6_from(AFTR, inner)
}

fn run(g: &mut Graph, fib: &Fib, frames: &[(Port, Vec<u8>)], now_s: u64) -> Vec<(Port, Vec<u8>)> {
    let mut a = FrameArena::new(frames.len());
    a.run(g, fib, &crate::testkit::as_refs(frames), now_s * SEC);
    let mut out = Vec::new();
    for p in Port::ALL {
        for &i in g.out.tx[p.index()].as_slice() {
            out.push((p, a.packet(g, i).to_vec()));
        }
    }
    out
}

fn errors(g: &Graph, node: NodeId, e: usize) -> u64 {
    g.stats.nodes[node as usize].errors[e]
}

/// The inner IPv4 of a frame the CE sent toward the BR (checked to be
/// IPv6 from the CE address to the BR, next header 4).
fn inner_of(frame: &[u8]) -> &[u8] {
    let ip6 = &frame[ETH_LEN..];
    assert_eq!(ip6[6], 4, "IPv4-in-IPv6");
    assert_eq!(&ip6[8..24], &B4.octets(), "from the CE address");
    assert_eq!(&ip6[24..40], &AFTR.octets(), "to the BR");
    &ip6[40..]
}

fn udp_v4(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), ttl)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

#[test]
fn udp_leaves_from_a_port_of_the_set_and_the_reply_comes_back() {
    let (mut g, fib, b) = setup(v6plus());
    let out = run(
        &mut g,
        &fib,
        &[(Port::Lan, lan_udp(40000, 53, b"query"))],
        100,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, Port::Wan);
    let inner = inner_of(&out[0].1).to_vec();
    let port = u16::from_be_bytes([inner[20], inner[21]]);
    assert!(
        v6plus().index_of(port).is_some(),
        "port {port} outside the set"
    );
    // TTL 64 - 1, new source, every checksum right.
    assert_eq!(inner, udp_v4(SHARED, port, SERVER4, 53, 63, b"query"));
    assert_eq!(b.internal(NatProto::Udp, port), Some((HOST4, 40000)));

    let reply = udp_v4(SERVER4, 53, SHARED, port, 50, b"answer");
    let back = run(&mut g, &fib, &[(Port::Wan, from_br(&reply))], 101);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].0, Port::Lan);
    let mut want = Vec::new();
    PacketBuilder::ethernet2(LAN_MAC, HOST_MAC)
        .ipv4(SERVER4.octets(), HOST4.octets(), 49)
        .udp(53, 40000)
        .write(&mut want, b"answer")
        .unwrap();
    assert_eq!(back[0].1, want);
}

#[test]
fn a_socket_keeps_its_port_for_every_destination() {
    let (mut g, fib, _) = setup(v6plus());
    let a = run(&mut g, &fib, &[(Port::Lan, lan_udp(40000, 53, b"a"))], 100);
    let b = run(
        &mut g,
        &fib,
        &[(Port::Lan, lan_udp(40000, 3478, b"b"))],
        100,
    );
    let c = run(&mut g, &fib, &[(Port::Lan, lan_udp(40001, 53, b"c"))], 100);
    let port = |f: &[u8]| {
        let i = inner_of(f);
        u16::from_be_bytes([i[20], i[21]])
    };
    assert_eq!(port(&a[0].1), port(&b[0].1));
    assert_ne!(port(&a[0].1), port(&c[0].1));
}

#[test]
fn inbound_is_filtered_by_address_and_port() {
    let (mut g, fib, _) = setup(v6plus());
    let out = run(&mut g, &fib, &[(Port::Lan, lan_udp(40000, 53, b"q"))], 100);
    let inner = inner_of(&out[0].1).to_vec();
    let port = u16::from_be_bytes([inner[20], inner[21]]);
    let other_port = udp_v4(SERVER4, 54, SHARED, port, 50, b"x");
    let other_host = udp_v4(Ipv4Addr::new(198, 51, 100, 11), 53, SHARED, port, 50, b"x");
    let unmapped = udp_v4(SERVER4, 53, SHARED, port ^ 1, 50, b"x");
    let frames = [
        (Port::Wan, from_br(&other_port)),
        (Port::Wan, from_br(&other_host)),
        (Port::Wan, from_br(&unmapped)),
    ];
    assert!(run(&mut g, &fib, &frames, 101).is_empty());
    assert_eq!(
        errors(&g, NodeId::Nat44In, nat44_in::Error::Filtered.index()),
        2
    );
    assert_eq!(
        errors(&g, NodeId::Nat44In, nat44_in::Error::NoMapping.index()),
        1
    );
}

#[test]
fn ping_maps_the_identifier_and_the_reply_gets_it_back() {
    let (mut g, fib, b) = setup(v6plus());
    let out = run(&mut g, &fib, &[(Port::Lan, lan_ping(0x0101))], 100);
    let inner = inner_of(&out[0].1).to_vec();
    let id = u16::from_be_bytes([inner[24], inner[25]]);
    assert!(
        v6plus().index_of(id).is_some(),
        "identifier {id:#x} outside the set"
    );
    let mut want = Vec::new();
    PacketBuilder::ipv4(SHARED.octets(), SERVER4.octets(), 63)
        .icmpv4_echo_request(id, 1)
        .write(&mut want, b"ping")
        .unwrap();
    assert_eq!(inner, want);
    assert_eq!(b.internal(NatProto::Icmp, id), Some((HOST4, 0x0101)));

    let mut reply = Vec::new();
    PacketBuilder::ipv4(SERVER4.octets(), SHARED.octets(), 50)
        .icmpv4_echo_reply(id, 1)
        .write(&mut reply, b"ping")
        .unwrap();
    let back = run(&mut g, &fib, &[(Port::Wan, from_br(&reply))], 101);
    let mut want = Vec::new();
    PacketBuilder::ethernet2(LAN_MAC, HOST_MAC)
        .ipv4(SERVER4.octets(), HOST4.octets(), 49)
        .icmpv4_echo_reply(0x0101, 1)
        .write(&mut want, b"ping")
        .unwrap();
    assert_eq!(back, vec![(Port::Lan, want)]);
}

#[test]
fn an_icmp_error_from_the_internet_reaches_the_host_whose_packet_it_quotes() {
    let (mut g, fib, _) = setup(v6plus());
    let out = run(
        &mut g,
        &fib,
        &[(Port::Lan, lan_udp(40000, 33434, b"trace"))],
        100,
    );
    let sent = inner_of(&out[0].1).to_vec();
    let error = |to: Ipv4Addr, quote: &[u8], ttl: u8| {
        let mut v = Vec::new();
        PacketBuilder::ipv4(ROUTER, to.octets(), ttl)
            .icmpv4_raw(11, 0, [0; 4])
            .write(&mut v, quote)
            .unwrap();
        v
    };
    let back = run(
        &mut g,
        &fib,
        &[(Port::Wan, from_br(&error(SHARED, &sent, 50)))],
        101,
    );
    // The quote is the host's packet as it left the CE (TTL 63), with
    // the host's address and port again.
    let orig = udp_v4(HOST4, 40000, SERVER4, 33434, 63, b"trace");
    let want_ip = error(HOST4, &orig, 49);
    assert_eq!(
        back.len(),
        1,
        "{:?}",
        g.stats.nodes[NodeId::Nat44In as usize].errors
    );
    assert_eq!(&back[0].1[ETH_LEN..], &want_ip[..]);

    // An error quoting a flow of no session goes nowhere.
    let stranger = udp_v4(SHARED, 4242, SERVER4, 53, 63, b"x");
    assert!(run(
        &mut g,
        &fib,
        &[(Port::Wan, from_br(&error(SHARED, &stranger, 50)))],
        102
    )
    .is_empty());
    assert_eq!(
        errors(&g, NodeId::Nat44In, nat44_in::Error::Unrelated.index()),
        1
    );
}

#[test]
fn exhaustion_refuses_new_flows_and_counts_them() {
    let pool = PortPool::Range {
        first: 7000,
        last: 7001,
    };
    let (mut g, fib, _) = setup(pool);
    let frames: Vec<(Port, Vec<u8>)> = (0..5)
        .map(|k| (Port::Lan, lan_udp(41000 + k, 53, b"q")))
        .collect();
    let out = run(&mut g, &fib, &frames, 100);
    assert_eq!(out.len(), 2);
    assert_eq!(
        errors(
            &g,
            NodeId::Nat44Out,
            nat44_out::Error::PortsExhausted.index()
        ),
        3
    );
    // Existing flows still pass.
    let again = run(&mut g, &fib, &frames[..1], 101);
    assert_eq!(again.len(), 1);
}

#[test]
fn without_napt_the_nodes_drop_and_name_it() {
    let mut g = unlimited_graph();
    let fib = lab_fib();
    // The DS-Lite path is untouched: the LAN packet goes through
    // ip4-firewall, not nat44-out.
    let out = run(&mut g, &fib, &[(Port::Lan, lan_udp(40000, 53, b"q"))], 100);
    let inner = inner_of(&out[0].1);
    assert_eq!(&inner[12..16], &HOST4.octets());
    assert_eq!(g.stats.nodes[NodeId::Nat44Out as usize].calls, 0);
}

/// A peer CE under the FMR: its MAP address for its IPv4 and port.
fn peer_frame(outer_src: std::net::Ipv6Addr, inner: &[u8]) -> Vec<u8> {
    let mut f = from_br(inner);
    f[ETH_LEN + 8..ETH_LEN + 24].copy_from_slice(&outer_src.octets());
    f
}

#[test]
fn a_peer_ce_is_accepted_only_from_its_own_map_address() {
    use crate::nat::Fmr;
    use crate::nodes::dslite_decap;
    use ipoe_proto::map::{IidFormat, Rule};
    let rule = Rule::new(
        "2001:db8:4d00::/40".parse().unwrap(),
        "198.51.100.0/24".parse().unwrap(),
        16,
        4,
    )
    .unwrap();
    let fmr = Fmr {
        rule,
        iid: IidFormat::Legacy,
    };
    let (mut g, fib, _) = setup(v6plus());
    let fib = Fib {
        map_fmr: Some(fmr),
        ..fib
    };
    let peer = Ipv4Addr::new(198, 51, 100, 99);
    let peer_port = 0x1a25; // A = 1, PSID 0xa2
    let peer_ce = fmr.owner_of(peer, Some(peer_port)).unwrap();
    // The LAN host talks to the peer first (via the BR).
    let mut first = Vec::new();
    PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv4(HOST4.octets(), peer.octets(), 64)
        .udp(40000, peer_port)
        .write(&mut first, b"hi")
        .unwrap();
    let out = run(&mut g, &fib, &[(Port::Lan, first)], 100);
    let sent = inner_of(&out[0].1).to_vec();
    let port = u16::from_be_bytes([sent[20], sent[21]]);
    let reply = udp_v4(peer, peer_port, SHARED, port, 50, b"yo");
    // From its own MAP address: in. From another CE's address, or from
    // its own but with a port of another PSID: dropped and named.
    let wrong_ce = fmr.owner_of(peer, Some(0x1b25)).unwrap();
    let back = run(
        &mut g,
        &fib,
        &[
            (Port::Wan, peer_frame(peer_ce, &reply)),
            (Port::Wan, peer_frame(wrong_ce, &reply)),
        ],
        101,
    );
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].0, Port::Lan);
    let mismatch = dslite_decap::Error::CeMismatch.index();
    assert_eq!(errors(&g, NodeId::DsliteDecap, mismatch), 1);
    // Without an FMR, only the BR is accepted.
    let (mut g2, fib2, _) = setup(v6plus());
    assert!(run(
        &mut g2,
        &fib2,
        &[(Port::Wan, peer_frame(peer_ce, &reply))],
        101
    )
    .is_empty());
    let unknown = dslite_decap::Error::UnknownAftr.index();
    assert_eq!(errors(&g2, NodeId::DsliteDecap, unknown), 1);
}

mod batch;
mod forward;
mod fragments;
mod hairpin;
mod ip4_frag;
mod ipip;
