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
