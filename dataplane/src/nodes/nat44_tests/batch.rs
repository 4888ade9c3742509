//! nat44-out works through a vector a chunk at a time (one
//! `track_nat_batch` per chunk): packets of one new flow in the same
//! chunk share one session and one port, and exhaustion part-way through
//! a chunk refuses exactly the flows one-at-a-time processing refuses.

use super::*;

/// The source port the BR sees on each frame that left, by LAN source port.
fn left_from(out: &[(Port, Vec<u8>)]) -> Vec<(u16, u16)> {
    out.iter()
        .map(|(_, f)| {
            let i = inner_of(f);
            // The LAN port is the payload (see below): the header's is translated.
            let lan = u16::from_be_bytes([i[28], i[29]]);
            (lan, u16::from_be_bytes([i[20], i[21]]))
        })
        .collect()
}

#[test]
fn a_vector_with_repeated_new_flows_and_too_few_ports() {
    let pool = PortPool::Range {
        first: 7000,
        last: 7005,
    };
    // 40 frames (a chunk and a part) of 10 new flows, each flow 4 times,
    // interleaved so that every chunk holds repeats of flows it creates.
    let sport = |k: u16| 41000 + (k * 7) % 10;
    let frames: Vec<(Port, Vec<u8>)> = (0..40)
        .map(|k| (Port::Lan, lan_udp(sport(k), 53, &sport(k).to_be_bytes())))
        .collect();
    let (mut g, fib, b) = setup(pool);
    let out = run(&mut g, &fib, &frames, 100);
    // One at a time, on a fresh router: which flows get through.
    let (mut g1, fib1, _) = setup(pool);
    let mut one = Vec::new();
    for f in &frames {
        one.extend(run(&mut g1, &fib1, std::slice::from_ref(f), 100));
    }
    let passed = |v: &[(u16, u16)]| v.iter().map(|p| p.0).collect::<Vec<_>>();
    let (got, want) = (left_from(&out), left_from(&one));
    assert_eq!(passed(&got), passed(&want));
    // The first six flows to appear, every packet of them, in order.
    let mut first = Vec::new();
    for k in 0..40 {
        if !first.contains(&sport(k)) {
            first.push(sport(k));
        }
    }
    first.truncate(6);
    let want_flows: Vec<u16> = (0..40).map(sport).filter(|p| first.contains(p)).collect();
    assert_eq!(passed(&got), want_flows);
    // Each flow kept one port, each port one flow and one session.
    for &(lan, ext) in &got {
        assert!(
            got.iter().all(|&(l, e)| (l == lan) == (e == ext)),
            "{lan} -> {ext}"
        );
        assert_eq!(b.refs(NatProto::Udp, ext), 1);
    }
    let st = g.fw.sessions.stats();
    assert_eq!((st.active, st.created), (6, 6));
    assert_eq!(
        errors(
            &g,
            NodeId::Nat44Out,
            nat44_out::Error::PortsExhausted.index()
        ),
        40 - got.len() as u64
    );
    b.audit();
}

/// nat44-in over a vector of more than a chunk: replies to 40 flows, with
/// an ICMP error quoting one of them, a reply to an unmapped port and one
/// from the wrong remote port in among them; each gets what it would get
/// alone, and the LAN sees the rest in the order they came.
#[test]
fn replies_errors_and_strangers_in_one_inbound_vector() {
    let (mut g, fib, _) = setup(v6plus());
    let frames: Vec<(Port, Vec<u8>)> = (0..40)
        .map(|k| (Port::Lan, lan_udp(42000 + k, 53, &k.to_be_bytes())))
        .collect();
    let out = run(&mut g, &fib, &frames, 100);
    assert_eq!(out.len(), 40);
    let sent: Vec<Vec<u8>> = out.iter().map(|(_, f)| inner_of(f).to_vec()).collect();
    let ext = |k: usize| u16::from_be_bytes([sent[k][20], sent[k][21]]);
    let mut back: Vec<(Port, Vec<u8>)> = (0..40)
        .map(|k| {
            let reply = udp_v4(SERVER4, 53, SHARED, ext(k), 50, &(k as u16).to_be_bytes());
            (Port::Wan, from_br(&reply))
        })
        .collect();
    let mut error = Vec::new();
    PacketBuilder::ipv4(ROUTER, SHARED.octets(), 50)
        .icmpv4_raw(11, 0, [0; 4])
        .write(&mut error, &sent[7])
        .unwrap();
    let unmapped = (0..=u16::MAX)
        .find(|&p| v6plus().index_of(p).is_some() && (0..40).all(|k| ext(k) != p))
        .unwrap();
    back.insert(33, (Port::Wan, from_br(&error)));
    let stranger = udp_v4(SERVER4, 53, SHARED, unmapped, 50, b"?");
    back.insert(20, (Port::Wan, from_br(&stranger)));
    let wrong_port = udp_v4(SERVER4, 54, SHARED, ext(3), 50, b"!");
    back.insert(5, (Port::Wan, from_br(&wrong_port)));
    let got = run(&mut g, &fib, &back, 101);
    assert_eq!(got.len(), 41);
    let lan_port = |f: &[u8]| u16::from_be_bytes([f[ETH_LEN + 22], f[ETH_LEN + 23]]);
    // Replies in order, each to its own socket; the error (after the
    // reply to flow 32, as it came) to flow 7's host and port.
    let mut k = 0;
    for (port, f) in &got {
        assert_eq!(*port, Port::Lan);
        assert_eq!(&f[ETH_LEN + 16..ETH_LEN + 20], &HOST4.octets());
        if f[ETH_LEN + 9] == 1 {
            assert_eq!(k, 33, "the error keeps its place");
            let quoted_src_port = u16::from_be_bytes([f[ETH_LEN + 48], f[ETH_LEN + 49]]);
            assert_eq!(quoted_src_port, 42007);
            continue;
        }
        assert_eq!(lan_port(f), 42000 + k);
        k += 1;
    }
    assert_eq!(k, 40);
    assert_eq!(
        errors(&g, NodeId::Nat44In, nat44_in::Error::NoMapping.index()),
        1
    );
    assert_eq!(
        errors(&g, NodeId::Nat44In, nat44_in::Error::Filtered.index()),
        1
    );
}
