//! Port forwards (DNAT) through the whole graph: a new flow from the
//! internet to a forwarded port reaches its LAN host, and the host's
//! replies leave from that port.

use super::*;
use crate::nat::bindings::Forward;

/// A LAN server behind the forward (the lab LAN host).
const SERVER_PORT: u16 = 8080;
const REMOTE_PORT: u16 = 51000;

/// A port of the v6plus set, away from the others.
fn fport() -> u16 {
    v6plus().port_at(37).unwrap()
}

fn setup_fwd(list: &[Forward]) -> (Graph, Fib, Arc<Bindings>) {
    let g = unlimited_graph();
    let b = Arc::new(
        Bindings::new(
            SHARED,
            v6plus(),
            Limits {
                grace_s: 0,
                ..Limits::default()
            },
        )
        .with_forwards(list)
        .unwrap(),
    );
    g.fw.sessions.set_nat_release(b.clone());
    let fib = Fib {
        napt: Some(b.clone()),
        ..lab_fib()
    };
    (g, fib, b)
}

fn tcp_fwd() -> Forward {
    Forward {
        proto: NatProto::Tcp,
        port: fport(),
        to: (HOST4, SERVER_PORT),
    }
}

/// A TCP segment without options: `seq`, a SYN if `syn`, an ACK of `ack`.
fn tcp_v4(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    ttl: u8,
    seq: u32,
    syn: bool,
    ack: Option<u32>,
) -> Vec<u8> {
    let mut b =
        PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), ttl).tcp(src.1, dst.1, seq, 64240);
    if syn {
        b = b.syn();
    }
    if let Some(a) = ack {
        b = b.ack(a);
    }
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

/// `ip` as the LAN host sends it to the router.
fn on_lan(ip: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&LAN_MAC);
    v.extend_from_slice(&HOST_MAC);
    v.extend_from_slice(&0x0800u16.to_be_bytes());
    v.extend_from_slice(ip);
    v
}

/// `ip` as the router sends it to the LAN host.
fn from_lan(ip: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&HOST_MAC);
    v.extend_from_slice(&LAN_MAC);
    v.extend_from_slice(&0x0800u16.to_be_bytes());
    v.extend_from_slice(ip);
    v
}

fn forwarded(g: &Graph) -> u64 {
    errors(g, NodeId::Nat44In, nat44_in::Error::Forwarded.index())
}

#[test]
fn a_new_flow_to_a_forwarded_port_reaches_the_lan_host_and_its_reply_leaves_from_that_port() {
    let (mut g, fib, b) = setup_fwd(&[tcp_fwd()]);
    let syn = tcp_v4(
        (SERVER4, REMOTE_PORT),
        (SHARED, fport()),
        50,
        1000,
        true,
        None,
    );
    let back = run(&mut g, &fib, &[(Port::Wan, from_br(&syn))], 100);
    assert_eq!(
        back.len(),
        1,
        "{:?}",
        g.stats.nodes[NodeId::Nat44In as usize].errors
    );
    assert_eq!(back[0].0, Port::Lan);
    let want = tcp_v4(
        (SERVER4, REMOTE_PORT),
        (HOST4, SERVER_PORT),
        49,
        1000,
        true,
        None,
    );
    assert_eq!(back[0].1, from_lan(&want));
    assert_eq!(forwarded(&g), 1);
    assert_eq!(
        b.refs(NatProto::Tcp, fport()),
        2,
        "the forward's share and the session's"
    );

    // The server's SYN-ACK leaves from the forwarded port, not a new one.
    let synack = tcp_v4(
        (HOST4, SERVER_PORT),
        (SERVER4, REMOTE_PORT),
        64,
        5000,
        true,
        Some(1001),
    );
    let out = run(&mut g, &fib, &[(Port::Lan, on_lan(&synack))], 100);
    assert_eq!(
        out.len(),
        1,
        "{:?}",
        g.stats.nodes[NodeId::Nat44Out as usize].errors
    );
    let want = tcp_v4(
        (SHARED, fport()),
        (SERVER4, REMOTE_PORT),
        63,
        5000,
        true,
        Some(1001),
    );
    assert_eq!(inner_of(&out[0].1), &want[..]);

    // The next segment of that flow is not a new forwarded flow.
    let ack = tcp_v4(
        (SERVER4, REMOTE_PORT),
        (SHARED, fport()),
        50,
        1001,
        false,
        Some(5001),
    );
    assert_eq!(
        run(&mut g, &fib, &[(Port::Wan, from_br(&ack))], 101).len(),
        1
    );
    assert_eq!(forwarded(&g), 1);
    b.audit();
}

#[test]
fn a_forward_takes_only_its_protocol_and_port_and_new_flows_only_with_syn() {
    let (mut g, fib, _) = setup_fwd(&[tcp_fwd()]);
    let udp = udp_v4(SERVER4, REMOTE_PORT, SHARED, fport(), 50, b"x");
    let other = tcp_v4(
        (SERVER4, REMOTE_PORT),
        (SHARED, fport() + 1),
        50,
        1000,
        true,
        None,
    );
    let bare_ack = tcp_v4(
        (SERVER4, REMOTE_PORT),
        (SHARED, fport()),
        50,
        1001,
        false,
        Some(5001),
    );
    let frames = [
        (Port::Wan, from_br(&udp)),
        (Port::Wan, from_br(&other)),
        (Port::Wan, from_br(&bare_ack)),
    ];
    assert!(run(&mut g, &fib, &frames, 100).is_empty());
    let e = |x: nat44_in::Error| errors(&g, NodeId::Nat44In, x.index());
    assert_eq!(e(nat44_in::Error::NoMapping), 2);
    assert_eq!(e(nat44_in::Error::TcpNotSyn), 1);
    assert_eq!(forwarded(&g), 0);
}

#[test]
fn a_forwarded_port_is_never_handed_to_a_dynamic_flow() {
    let (mut g, fib, b) = setup_fwd(&[tcp_fwd()]);
    // More TCP flows than the set has ports, from another LAN socket.
    let frames: Vec<(Port, Vec<u8>)> = (0..v6plus().len() as u16 + 4)
        .map(|k| {
            let syn = tcp_v4((HOST4, 30000 + k), (SERVER4, 443), 64, 1000, true, None);
            (Port::Lan, on_lan(&syn))
        })
        .collect();
    let mut ports = Vec::new();
    for chunk in frames.chunks(32) {
        for (_, f) in run(&mut g, &fib, chunk, 100) {
            let i = inner_of(&f);
            ports.push(u16::from_be_bytes([i[20], i[21]]));
        }
    }
    // Every port of the set but the forward's.
    assert_eq!(ports.len(), v6plus().len() as usize - 1);
    assert!(!ports.contains(&fport()));
    let exhausted = nat44_out::Error::PortsExhausted.index();
    assert_eq!(errors(&g, NodeId::Nat44Out, exhausted), 5);
    b.audit();
}

#[test]
fn a_forward_outlives_its_sessions() {
    let (mut g, fib, b) = setup_fwd(&[tcp_fwd()]);
    let syn = tcp_v4(
        (SERVER4, REMOTE_PORT),
        (SHARED, fport()),
        50,
        1000,
        true,
        None,
    );
    assert_eq!(
        run(&mut g, &fib, &[(Port::Wan, from_br(&syn))], 100).len(),
        1
    );
    // Long after: the half-open session is gone, the forward is not.
    let later = 100 + 24 * 3600;
    assert_eq!(g.fw.sessions.expire(later, 1000), 1);
    assert_eq!(b.refs(NatProto::Tcp, fport()), 1);
    assert_eq!(
        b.internal(NatProto::Tcp, fport()),
        Some((HOST4, SERVER_PORT))
    );
    b.audit();
    let again = run(&mut g, &fib, &[(Port::Wan, from_br(&syn))], later as u64);
    assert_eq!(again.len(), 1);
    assert_eq!(forwarded(&g), 2);
}

#[test]
fn the_forwarded_host_s_own_flows_leave_from_its_forwarded_port() {
    // Endpoint-independent mapping: the server socket has one external
    // port, the forwarded one, whoever it talks to first.
    let udp_fwd = Forward {
        proto: NatProto::Udp,
        port: fport(),
        to: (HOST4, SERVER_PORT),
    };
    let (mut g, fib, _) = setup_fwd(&[udp_fwd]);
    let out = run(
        &mut g,
        &fib,
        &[(Port::Lan, lan_udp(SERVER_PORT, 53, b"q"))],
        100,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        inner_of(&out[0].1),
        &udp_v4(SHARED, fport(), SERVER4, 53, 63, b"q")[..]
    );
}
