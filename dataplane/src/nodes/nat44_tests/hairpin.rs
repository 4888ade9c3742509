//! Hairpinning (RFC 4787 REQ-9, RFC 5382 REQ-8): a LAN host sending to the
//! shared address and a mapped port reaches the LAN host behind it, from
//! its own external address and port, and nothing goes to the BR.

use super::*;
use crate::nat::bindings::Forward;
use crate::nodes::nat44_out;

const HOST_B: Ipv4Addr = Ipv4Addr::new(192, 168, 2, 20);
const HOST_B_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x20];

fn two_hosts(pool: PortPool, forwards: &[Forward]) -> (Graph, Fib, Arc<Bindings>) {
    let (g, fib, _) = setup(pool);
    let b = Arc::new(
        Bindings::new(
            SHARED,
            pool,
            Limits {
                grace_s: 0,
                ..Limits::default()
            },
        )
        .with_forwards(forwards)
        .unwrap(),
    );
    g.fw.sessions.set_nat_release(b.clone());
    let mut fib = Fib {
        napt: Some(b.clone()),
        ..fib
    };
    fib.arp.insert(HOST_B, HOST_B_MAC);
    (g, fib, b)
}

/// UDP from a LAN host (`from`, its MAC) as it reaches the router.
fn udp_from(from: (Ipv4Addr, [u8; 6]), sport: u16, to: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(from.1, LAN_MAC)
        .ipv4(from.0.octets(), to.0.octets(), 64)
        .udp(sport, to.1)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// The external port of a LAN host's first packet to the server.
fn external_port(g: &mut Graph, fib: &Fib, from: (Ipv4Addr, [u8; 6]), sport: u16) -> u16 {
    let out = run(
        g,
        fib,
        &[(Port::Lan, udp_from(from, sport, (SERVER4, 3478), b"stun"))],
        100,
    );
    let i = inner_of(&out[0].1);
    u16::from_be_bytes([i[20], i[21]])
}

#[test]
fn two_lan_hosts_reach_each_other_through_their_external_endpoints() {
    let (mut g, fib, _) = two_hosts(v6plus(), &[]);
    let a = (HOST4, HOST_MAC);
    let b = (HOST_B, HOST_B_MAC);
    // Both learn their external endpoints (as from a STUN server).
    let pa = external_port(&mut g, &fib, a, 40000);
    let pb = external_port(&mut g, &fib, b, 41000);
    assert_ne!(pa, pb);
    // A's first packet to B's endpoint: B never sent to A's, so B's
    // filtering drops it (address-and-port-dependent), without the BR.
    let first = run(
        &mut g,
        &fib,
        &[(Port::Lan, udp_from(a, 40000, (SHARED, pb), b"a1"))],
        101,
    );
    assert!(first.is_empty(), "{first:?}");
    let filtered = nat44_in::Error::Filtered.index();
    assert_eq!(errors(&g, NodeId::Nat44In, filtered), 1);
    // B sends to A's endpoint: A has a session toward B's, so it arrives,
    // from B's external endpoint, on the LAN only.
    let out = run(
        &mut g,
        &fib,
        &[(Port::Lan, udp_from(b, 41000, (SHARED, pa), b"b1"))],
        102,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, Port::Lan);
    let mut want = Vec::new();
    PacketBuilder::ethernet2(LAN_MAC, HOST_MAC)
        .ipv4(SHARED.octets(), HOST4.octets(), 63)
        .udp(pb, 40000)
        .write(&mut want, b"b1")
        .unwrap();
    assert_eq!(out[0].1, want);
    // And now A's packets get through to B too.
    let out = run(
        &mut g,
        &fib,
        &[(Port::Lan, udp_from(a, 40000, (SHARED, pb), b"a2"))],
        103,
    );
    assert_eq!(out.len(), 1);
    let mut want = Vec::new();
    PacketBuilder::ethernet2(LAN_MAC, HOST_B_MAC)
        .ipv4(SHARED.octets(), HOST_B.octets(), 63)
        .udp(pa, 41000)
        .write(&mut want, b"a2")
        .unwrap();
    assert_eq!(out[0].1, want);
    let hairpinned = nat44_out::Error::Hairpinned.index();
    assert_eq!(errors(&g, NodeId::Nat44Out, hairpinned), 3);
    assert_eq!(
        g.stats.nodes[NodeId::DsliteEncap as usize].calls,
        2,
        "only the two STUN packets"
    );
}

#[test]
fn a_lan_host_reaches_a_port_forward_on_the_shared_address() {
    let fport = v6plus().port_at(50).unwrap();
    let fwd = Forward {
        proto: NatProto::Udp,
        port: fport,
        to: (HOST_B, 8080),
    };
    let (mut g, fib, _) = two_hosts(v6plus(), &[fwd]);
    let a = (HOST4, HOST_MAC);
    let b = (HOST_B, HOST_B_MAC);
    let out = run(
        &mut g,
        &fib,
        &[(Port::Lan, udp_from(a, 40000, (SHARED, fport), b"req"))],
        100,
    );
    assert_eq!(
        out.len(),
        1,
        "{:?}",
        g.stats.nodes[NodeId::Nat44In as usize].errors
    );
    let f = &out[0].1;
    assert_eq!(&f[..6], &HOST_B_MAC);
    let ip = &f[ETH_LEN..];
    // From the shared address and A's external port, to B's server.
    assert_eq!(&ip[12..16], &SHARED.octets());
    let pa = u16::from_be_bytes([ip[20], ip[21]]);
    assert!(v6plus().index_of(pa).is_some() && pa != fport);
    assert_eq!(ip[..], udp_v4(SHARED, pa, HOST_B, 8080, 63, b"req")[..]);
    // B's answer goes back to A from the forwarded port.
    let back = run(
        &mut g,
        &fib,
        &[(Port::Lan, udp_from(b, 8080, (SHARED, pa), b"resp"))],
        100,
    );
    assert_eq!(back.len(), 1);
    assert_eq!(&back[0].1[..6], &HOST_MAC);
    assert_eq!(
        back[0].1[ETH_LEN..],
        udp_v4(SHARED, fport, HOST4, 40000, 63, b"resp")[..]
    );
    assert_eq!(g.stats.nodes[NodeId::DsliteEncap as usize].calls, 0);
}

#[test]
fn a_fragmented_datagram_hairpins_whole() {
    let (mut g, fib, _) = two_hosts(v6plus(), &[]);
    let a = (HOST4, HOST_MAC);
    let b = (HOST_B, HOST_B_MAC);
    let pa = external_port(&mut g, &fib, a, 40000);
    let pb = external_port(&mut g, &fib, b, 41000);
    // A punches (filtered at B), B's packet then reaches A; A answers
    // with a datagram it sent in two fragments.
    assert!(run(
        &mut g,
        &fib,
        &[(Port::Lan, udp_from(a, 40000, (SHARED, pb), b"a"))],
        101
    )
    .is_empty());
    assert_eq!(
        run(
            &mut g,
            &fib,
            &[(Port::Lan, udp_from(b, 41000, (SHARED, pa), b"b"))],
            101
        )
        .len(),
        1
    );
    let payload: Vec<u8> = (0..1600u32).map(|k| k as u8).collect();
    let whole = udp_v4(HOST4, 40000, SHARED, pb, 64, &payload);
    let frames: Vec<(Port, Vec<u8>)> = super::fragments::split(&whole, 1400)
        .iter()
        .map(|f| {
            let mut v = Vec::new();
            v.extend_from_slice(&LAN_MAC);
            v.extend_from_slice(&HOST_MAC);
            v.extend_from_slice(&0x0800u16.to_be_bytes());
            v.extend_from_slice(f);
            (Port::Lan, v)
        })
        .collect();
    let out = run(&mut g, &fib, &frames, 101);
    assert_eq!(
        out.len(),
        2,
        "{:?}",
        g.stats.nodes[NodeId::Nat44In as usize].errors
    );
    let want = super::fragments::split(&udp_v4(SHARED, pa, HOST_B, 41000, 63, &payload), 1400);
    for (k, (p, f)) in out.iter().enumerate() {
        assert_eq!(*p, Port::Lan);
        assert_eq!(&f[..6], &HOST_B_MAC);
        assert_eq!(f[ETH_LEN..], want[k][..], "fragment {k}");
    }
    assert_eq!(
        g.stats.nodes[NodeId::DsliteEncap as usize].calls,
        2,
        "only the two STUN packets"
    );
}
