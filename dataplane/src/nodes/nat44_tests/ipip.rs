//! Fixed IPv4 over IPIP (issue 20) through the whole graph: the MAP-E
//! nodes with one address that owns every port (`WHOLE_ADDRESS`), the
//! DS-Lite encapsulation toward the tunnel end, decapsulation only from
//! it, and the router's own TCP answered on the WAN (the update GET).

use super::*;
use crate::nat::WHOLE_ADDRESS;
use crate::nodes::{dslite_decap, ip6_local};
use std::net::Ipv6Addr;

const OTHER_REMOTE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xaaaa, 0, 0, 0, 0, 2);

#[test]
fn lan_udp_leaves_from_the_fixed_address_and_only_the_remote_brings_it_back() {
    let (mut g, fib, _) = setup(WHOLE_ADDRESS);
    let out = run(
        &mut g,
        &fib,
        &[(Port::Lan, lan_udp(40000, 53, b"query"))],
        100,
    );
    assert_eq!(out.len(), 1);
    let inner = inner_of(&out[0].1).to_vec();
    assert_eq!(&inner[12..16], &SHARED.octets(), "NAPT onto the fixed /32");
    let port = u16::from_be_bytes([inner[20], inner[21]]);
    assert!(port >= 1024, "a port of 1024-65535: {port}");
    let reply = udp_v4(SERVER4, 53, SHARED, port, 60, b"answer");
    // The same packet from any other IPv6 source is not the tunnel's.
    let back = run(
        &mut g,
        &fib,
        &[
            (Port::Wan, ipip6_from(OTHER_REMOTE, &reply)),
            (Port::Wan, ipip6_from(AFTR, &reply)),
        ],
        101,
    );
    assert_eq!(back.len(), 1, "only the remote's packet passes");
    assert_eq!(back[0].0, Port::Lan);
    let unknown = dslite_decap::Error::UnknownAftr.index();
    assert_eq!(errors(&g, NodeId::DsliteDecap, unknown), 1);
}

/// TCP from the WAN to the router: only segments of the router's own open
/// connection (the update GET, its (server port, our port) registered in
/// the punt reserve) are punted; the same segments without the
/// registration, another server port, a SYN or a low port are refused.
#[test]
fn the_routers_own_tcp_is_answered_on_the_wan_and_nothing_else() {
    let (mut g, fib, _) = setup(WHOLE_ADDRESS);
    let tcp = |sport: u16, dport: u16, syn: bool| {
        let mut v = Vec::new();
        let b = PacketBuilder::ethernet2(crate::testkit::GW_MAC, crate::testkit::WAN_MAC)
            .ipv6(
                crate::testkit::SERVER6.octets(),
                crate::testkit::B4.octets(),
                64,
            )
            .tcp(sport, dport, 1, 64240);
        let b = if syn { b.syn().ack(5) } else { b.ack(5) };
        b.write(&mut v, b"").unwrap();
        v
    };
    let answers = [
        (Port::Wan, tcp(8082, 50000, true)),  // SYN-ACK to our SYN
        (Port::Wan, tcp(8082, 50000, false)), // ACK
    ];
    // Before the GET's flow is registered: refused.
    let mut a = FrameArena::new(answers.len());
    a.run(&mut g, &fib, &crate::testkit::as_refs(&answers), 100 * SEC);
    assert_eq!(g.out.punt.len(), 0, "no registered flow yet");
    let refused = ip6_local::Error::WanNotAllowed.index();
    assert_eq!(errors(&g, NodeId::Ip6Local, refused), 2);

    g.police
        .reserve
        .set_tcp_flows(&[(443, 50001), (8082, 50000)]);
    let mut frames = answers.to_vec();
    frames.extend([
        (Port::Wan, tcp(8083, 50000, false)), // another server port
        (Port::Wan, {
            let mut v = Vec::new();
            PacketBuilder::ethernet2(crate::testkit::GW_MAC, crate::testkit::WAN_MAC)
                .ipv6(
                    crate::testkit::SERVER6.octets(),
                    crate::testkit::B4.octets(),
                    64,
                )
                .tcp(40000, 50000, 1, 64240)
                .syn()
                .write(&mut v, b"")
                .unwrap();
            v
        }), // a SYN: nobody listens
        (Port::Wan, tcp(40000, 22, false)),   // to a low port
    ]);
    let mut a = FrameArena::new(frames.len());
    a.run(&mut g, &fib, &crate::testkit::as_refs(&frames), 101 * SEC);
    assert_eq!(g.out.punt.len(), 2, "the two answers to our connection");
    assert_eq!(errors(&g, NodeId::Ip6Local, refused), 2 + 3);
}
