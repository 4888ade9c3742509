//! Issue 15 (M2, M3, m4): TCP tracked as Linux conntrack does today, and
//! flows the LAN started keep priority over flows the internet started.

use super::*;

/// Client ISN 100, server ISN 5000 (see `handshake`), then 1000 bytes from
/// the server that the client acknowledges: the server's next sequence
/// number is 6001 and the client's highest ACK is 6001.
fn established_with_data(t: &SessionTable, k: &Key) {
    handshake(t, k, 100, 5000, T0);
    assert_eq!(
        inb(t, k, tcp_seg(ACK | PSH, 5001, 101, 1000, 500, None), T0),
        Track::Existing(State::TcpEstablished)
    );
    assert_eq!(
        out(t, k, tcp_seg(ACK, 101, 6001, 0, 1000, None), T0),
        Track::Existing(State::TcpEstablished)
    );
}

#[test]
fn m3_inexact_in_window_rst_passes_without_closing() {
    let t = table(64);
    let k = key(1, 6);
    established_with_data(&t, &k);
    // RFC 5961 3.2: in window but not RCV.NXT. The host answers with a
    // challenge ACK and keeps the connection, so must the tracker.
    assert_eq!(
        inb(&t, &k, seg(RST, 6001 + 60_000, 0), T0),
        Track::Existing(State::TcpEstablished)
    );
    assert_eq!(t.lookup(&k, T0), Some(State::TcpEstablished));
    // The challenge ACK.
    assert_eq!(
        out(&t, &k, tcp_seg(ACK, 101, 6001, 0, 1000, None), T0),
        Track::Existing(State::TcpEstablished)
    );
    // Well past the closed timeout the server's data still passes.
    let later = T0 + Timeouts::default().tcp_closed + 1;
    assert_eq!(
        inb(&t, &k, tcp_seg(ACK | PSH, 6001, 101, 100, 500, None), later),
        Track::Existing(State::TcpEstablished)
    );
    // Same from the LAN side.
    assert_eq!(
        out(&t, &k, seg(RST, 101 + 50_000, 0), later),
        Track::Existing(State::TcpEstablished)
    );
}

#[test]
fn m3_exact_rst_closes() {
    // At the sender's next sequence number.
    let t = table(64);
    let k = key(1, 6);
    established_with_data(&t, &k);
    assert_eq!(
        inb(&t, &k, seg(RST | ACK, 6001, 101), T0),
        Track::Existing(State::TcpClosed)
    );
    // At the highest ACK the receiver sent (Linux's td_maxack), while more
    // of the sender's data is still in flight.
    let k = key(2, 6);
    established_with_data(&t, &k);
    assert_eq!(
        inb(&t, &k, tcp_seg(ACK | PSH, 6001, 101, 1000, 500, None), T0),
        Track::Existing(State::TcpEstablished)
    );
    assert_eq!(
        inb(&t, &k, seg(RST, 6001, 0), T0),
        Track::Existing(State::TcpClosed)
    );
    // From the LAN side.
    let k = key(3, 6);
    established_with_data(&t, &k);
    assert_eq!(
        out(&t, &k, seg(RST, 101, 0), T0),
        Track::Existing(State::TcpClosed)
    );
}

#[test]
fn m3_rst_below_the_highest_ack_is_invalid() {
    let t = table(64);
    let k = key(1, 6);
    established_with_data(&t, &k);
    // In the old +-window band, but before data the client has acknowledged.
    for seq in [6001 - 500, 6001u32.wrapping_sub(60_000)] {
        assert_eq!(
            inb(&t, &k, seg(RST, seq, 0), T0),
            Track::Invalid(Invalid::RstOutOfWindow),
            "seq {seq}"
        );
    }
    assert_eq!(t.lookup(&k, T0), Some(State::TcpEstablished));
}

#[test]
fn m3_picked_up_session_accepts_only_exact_rst() {
    let t = table(64);
    let k = key(1, 6);
    assert_eq!(
        out(&t, &k, seg(ACK | PSH, 1000, 9000), T0),
        Track::Created(State::TcpEstablished)
    );
    for seq in [9000 + 1, 9000 + (1 << 20), 9000 - 1] {
        assert_eq!(
            inb(&t, &k, seg(RST, seq, 0), T0),
            Track::Invalid(Invalid::RstOutOfWindow),
            "seq {seq}"
        );
    }
    assert_eq!(t.lookup(&k, T0), Some(State::TcpEstablished));
    assert_eq!(
        inb(&t, &k, seg(RST, 9000, 0), T0),
        Track::Existing(State::TcpClosed)
    );
}

/// A LAN host reuses a held tuple with a new ISN (reboot with a fixed
/// source port, or a close the tracker never saw) from `state`.
fn resync_from(t: &SessionTable, k: &Key) {
    assert_eq!(
        out(t, k, tcp_seg(SYN, 900_000, 0, 0, 64240, Some(7)), T0 + 1),
        Track::Existing(t.lookup(k, T0 + 1).unwrap())
    );
    assert_eq!(
        inb(
            t,
            k,
            tcp_seg(SYN | ACK, 7_000_000, 900_001, 0, 65535, Some(7)),
            T0 + 1
        ),
        Track::Existing(State::TcpSynReceived)
    );
    assert_eq!(
        out(
            t,
            k,
            tcp_seg(ACK, 900_001, 7_000_001, 0, 1000, None),
            T0 + 1
        ),
        Track::Existing(State::TcpEstablished)
    );
    // Data both ways in the new sequence space; the old one is gone.
    assert_eq!(
        inb(
            t,
            k,
            tcp_seg(ACK | PSH, 7_000_001, 900_001, 1400, 500, None),
            T0 + 1
        ),
        Track::Existing(State::TcpEstablished)
    );
    assert_eq!(
        out(
            t,
            k,
            tcp_seg(ACK | PSH, 900_001, 7_001_401, 100, 1000, None),
            T0 + 1
        ),
        Track::Existing(State::TcpEstablished)
    );
    assert_eq!(
        inb(t, k, tcp_seg(ACK, 6001, 101, 10, 500, None), T0 + 1),
        Track::Invalid(Invalid::OutOfWindow)
    );
}

#[test]
fn m4_new_isn_on_an_established_tuple_resyncs() {
    let t = table(64);
    let k = key(1, 6);
    established_with_data(&t, &k);
    resync_from(&t, &k);
}

#[test]
fn m4_new_isn_on_a_closing_tuple_resyncs() {
    // Both FINs seen, the last ACK never was: CLOSING.
    let t = table(64);
    let k = key(1, 6);
    established_with_data(&t, &k);
    out(&t, &k, seg(FIN | ACK, 101, 6001), T0);
    assert_eq!(
        inb(&t, &k, seg(FIN | ACK, 6001, 102), T0),
        Track::Existing(State::TcpClosing)
    );
    resync_from(&t, &k);
}

#[test]
fn m4_new_isn_on_a_picked_up_tuple_resyncs() {
    let t = table(64);
    let k = key(1, 6);
    out(&t, &k, seg(ACK | PSH, 1000, 9000), T0);
    resync_from(&t, &k);
}

#[test]
fn m4_synack_that_does_not_ack_the_new_syn_changes_nothing() {
    let t = table(64);
    let k = key(1, 6);
    established_with_data(&t, &k);
    out(&t, &k, tcp_seg(SYN, 900_000, 0, 0, 64240, Some(7)), T0);
    inb(&t, &k, seg(SYN | ACK, 7_000_000, 123), T0);
    assert_eq!(t.lookup(&k, T0), Some(State::TcpEstablished));
    assert_eq!(
        out(&t, &k, seg(ACK, 900_001, 7_000_001), T0),
        Track::Invalid(Invalid::OutOfWindow)
    );
    // The old connection carries on.
    assert_eq!(
        inb(&t, &k, tcp_seg(ACK, 6001, 101, 10, 500, None), T0),
        Track::Existing(State::TcpEstablished)
    );
}

#[test]
fn m4_only_the_initiator_s_syn_can_resync() {
    // A SYN from the internet side of a LAN-started connection, answered
    // by a SYN-ACK from the LAN, would open an inbound connection without
    // a pinhole: Linux treats that SYN as invalid for resync, so do we.
    let t = table(64);
    let k = key(1, 6);
    established_with_data(&t, &k);
    inb(&t, &k, seg(SYN, 7_000_000, 0), T0);
    out(&t, &k, seg(SYN | ACK, 900_000, 7_000_001), T0);
    assert_eq!(t.lookup(&k, T0), Some(State::TcpEstablished));
    assert_eq!(
        inb(&t, &k, seg(ACK, 7_000_001, 900_001), T0),
        Track::Invalid(Invalid::OutOfWindow)
    );
}

#[test]
fn m4_rst_answering_the_new_syn_closes_and_the_retry_opens() {
    // The server lost the old connection: it resets the new SYN
    // (seq 0, ACK = ISN + 1). The client's retransmitted SYN then opens.
    let t = table(64);
    let k = key(1, 6);
    established_with_data(&t, &k);
    out(&t, &k, seg(SYN, 900_000, 0), T0);
    assert_eq!(
        inb(&t, &k, seg(RST | ACK, 0, 900_001), T0),
        Track::Existing(State::TcpClosed)
    );
    assert_eq!(
        out(&t, &k, seg(SYN, 900_000, 0), T0 + 1),
        Track::Created(State::TcpSynSent)
    );
}

/// A one-shard table of 32 slots: the LAN's handshake and one-way UDP,
/// then a flood of new WAN flows through a pinhole.
#[test]
fn m2_pinhole_flood_never_evicts_lan_sessions() {
    let t = table(32);
    assert_eq!(t.shards.len(), 1);
    let syn = key(1, 6);
    assert_eq!(
        out(&t, &syn, seg(SYN, 100, 0), T0),
        Track::Created(State::TcpSynSent)
    );
    let udp = key(2, 17);
    out(&t, &udp, Segment::Udp, T0);
    let ping = key(3, 1);
    out(&t, &ping, Segment::Icmp, T0);
    let mut created = 0;
    for n in 0..40 {
        let f = Key {
            int_port: 51820,
            ext_port: 20_000 + n as u16,
            ..key(1000, 17)
        };
        match inb(&t, &f, Segment::Udp, T0 + 1) {
            Track::Created(State::Udp) => created += 1,
            Track::Refused => {}
            r => panic!("{r:?}"),
        }
    }
    // The flood takes the free slots and then only its own.
    assert_eq!(created, 40);
    assert_eq!(t.lookup(&udp, T0 + 1), Some(State::Udp));
    assert_eq!(t.lookup(&ping, T0 + 1), Some(State::Icmp));
    assert_eq!(
        inb(&t, &syn, seg(SYN | ACK, 5000, 101), T0 + 1),
        Track::Existing(State::TcpSynReceived)
    );
    audit(&t);
}

#[test]
fn m2_lan_flows_evict_wan_originated_ones_first() {
    let t = table(32);
    // The LAN's one-way UDP is older than every WAN-originated flow.
    for n in 0..16 {
        out(&t, &key(n, 17), Segment::Udp, T0);
    }
    for n in 100..116 {
        inb(&t, &key(n, 17), Segment::Udp, T0 + 1);
    }
    inb(&t, &key(200, 6), seg(SYN, 1, 0), T0 + 1);
    for n in 300..316 {
        assert_eq!(
            out(&t, &key(n, 17), Segment::Udp, T0 + 2),
            Track::Created(State::Udp)
        );
    }
    for n in 0..16 {
        assert_eq!(t.lookup(&key(n, 17), T0 + 2), Some(State::Udp), "{n}");
    }
    // Every WAN-originated flow went instead (the SYN took one WAN slot).
    for n in (100..116).chain([200]) {
        let p = if n == 200 { 6 } else { 17 };
        assert_eq!(t.lookup(&key(n, p), T0 + 2), None, "{n}");
    }
    let st = t.stats();
    assert_eq!((st.evicted, st.refused), (17, 0));
    audit(&t);
}

#[test]
fn m2_a_wan_flow_refused_rather_than_evict_the_lan() {
    let t = table(32);
    for n in 0..32 {
        out(&t, &key(n, 17), Segment::Udp, T0);
    }
    assert_eq!(inb(&t, &key(100, 17), Segment::Udp, T0), Track::Refused);
    assert_eq!(inb(&t, &key(101, 6), seg(SYN, 1, 0), T0), Track::Refused);
    for n in 0..32 {
        assert!(t.lookup(&key(n, 17), T0).is_some());
    }
    // The LAN itself still evicts its own oldest one-way flow.
    assert_eq!(
        out(&t, &key(200, 17), Segment::Udp, T0),
        Track::Created(State::Udp)
    );
    assert_eq!(t.lookup(&key(0, 17), T0), None);
}

/// The RST and resync state fit in the entry's padding budget: at most the
/// 128 bytes of the old layout (119 since the hot/cold split: the figure
/// ARCHITECTURE.md and BENCHMARKS.md give).
#[test]
fn tracking_state_keeps_a_session_at_128_bytes() {
    const { assert!(BYTES_PER_SESSION <= 128) };
    assert_eq!(BYTES_PER_SESSION, 119);
}
