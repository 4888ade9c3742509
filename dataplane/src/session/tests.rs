//! Behaviour tests with a fake seconds clock.

use super::tcp::{ACK, FIN, RST, SYN};
use super::*;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::Arc;

const T0: u32 = 1_000;
const PSH: u8 = 0x08;

fn v4(a: u8, b: u8, c: u8, d: u8) -> [u8; 16] {
    let mut x = [0u8; 16];
    x[10] = 0xff;
    x[11] = 0xff;
    x[12..].copy_from_slice(&[a, b, c, d]);
    x
}

/// A distinct flow for each `n`.
fn key(n: u32, proto: u8) -> Key {
    let [a, b, c, _] = n.to_be_bytes();
    Key {
        int_addr: v4(192, 168, 1, 10),
        ext_addr: v4(10, a, b, c),
        int_port: 1024 + (n & 0xff) as u16,
        ext_port: if proto == 1 { 0 } else { 443 },
        proto,
    }
}

fn tcp_seg(flags: u8, seq: u32, ack: u32, len: u32, window: u16, wscale: Option<u8>) -> Segment {
    Segment::Tcp {
        flags,
        seq,
        ack,
        payload_len: len,
        window,
        wscale,
    }
}

fn seg(flags: u8, seq: u32, ack: u32) -> Segment {
    tcp_seg(flags, seq, ack, 0, 65535, None)
}

/// A pseudo-random request (xorshift on `x`) over `flows` flows: TCP with
/// any of the usual flags and small sequence numbers, UDP or ICMP, either
/// direction, creating or not.
fn random_request(x: &mut u64, flows: u64) -> Request {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    let x = *x;
    let f = (x % flows) as u32;
    let proto = [6u8, 17, 1][(f % 3) as usize];
    let seg = match proto {
        6 => {
            let flags = [SYN, SYN | ACK, ACK, FIN | ACK, RST, ACK][(x >> 20) as usize % 6];
            seg(flags, (x >> 32) as u32 % 3, (x >> 40) as u32 % 3)
        }
        17 => Segment::Udp,
        _ => Segment::Icmp,
    };
    Request {
        key: key(f, proto),
        seg,
        dir: if x & (1 << 50) != 0 {
            Dir::Out
        } else {
            Dir::In
        },
        bytes: (x >> 52) as u32,
        create: x & (1 << 51) != 0,
    }
}

/// A table as one worker's dataplane gets it (locked per chunk); the
/// per-shard scheme is checked against it in `tests/locking.rs`.
fn table(cap: usize) -> SessionTable {
    SessionTable::for_workers(cap, Timeouts::default(), 1)
}

fn out(t: &SessionTable, k: &Key, s: Segment, now: u32) -> Track {
    t.track(k, &s, Dir::Out, 60, now, true)
}

fn inb(t: &SessionTable, k: &Key, s: Segment, now: u32) -> Track {
    t.track(k, &s, Dir::In, 60, now, true)
}

fn audit(t: &SessionTable) {
    t.each_shard(|s| s.audit());
}

/// Client ISN `c`, server ISN `s`; both offer window scale 7. After it the
/// client has advertised 1000 << 7 = 128000 and the server 65535 (unscaled SYN).
fn handshake(t: &SessionTable, k: &Key, c: u32, s: u32, now: u32) {
    assert_eq!(
        out(t, k, tcp_seg(SYN, c, 0, 0, 64240, Some(7)), now),
        Track::Created(State::TcpSynSent)
    );
    assert_eq!(
        inb(
            t,
            k,
            tcp_seg(SYN | ACK, s, c.wrapping_add(1), 0, 65535, Some(7)),
            now
        ),
        Track::Existing(State::TcpSynReceived)
    );
    assert_eq!(
        out(
            t,
            k,
            tcp_seg(ACK, c.wrapping_add(1), s.wrapping_add(1), 0, 1000, None),
            now
        ),
        Track::Existing(State::TcpEstablished)
    );
}

#[test]
fn three_way_handshake_establishes() {
    let t = table(1024);
    let k = key(1, 6);
    handshake(&t, &k, 100, 5000, T0);
    assert_eq!(t.lookup(&k, T0), Some(State::TcpEstablished));
    assert!(State::TcpEstablished.is_established());
    assert!(!State::TcpSynSent.is_established());
    let st = t.stats();
    assert_eq!((st.active, st.created, st.invalid), (1, 1, 0));
}

#[test]
fn syn_ack_must_acknowledge_the_syn() {
    let t = table(64);
    let k = key(1, 6);
    out(&t, &k, seg(SYN, 100, 0), T0);
    assert_eq!(
        inb(&t, &k, seg(SYN | ACK, 9, 12345), T0),
        Track::Invalid(Invalid::OutOfWindow)
    );
    // Nothing but a SYN-ACK (or RST) may come from the silent side yet.
    assert_eq!(
        inb(&t, &k, seg(ACK, 9, 101), T0),
        Track::Invalid(Invalid::OutOfWindow)
    );
    assert_eq!(t.lookup(&k, T0), Some(State::TcpSynSent));
    assert_eq!(t.stats().invalid, 2);
}

#[test]
fn tcp_timeouts_per_class() {
    let tm = Timeouts::default();
    let t = table(1024);
    // Transitory: a lone SYN.
    let syn = key(1, 6);
    out(&t, &syn, seg(SYN, 1, 0), T0);
    // Established.
    let est = key(2, 6);
    handshake(&t, &est, 1, 1, T0);
    // Closed: after an RST.
    let rst = key(3, 6);
    handshake(&t, &rst, 1, 1, T0);
    assert_eq!(
        out(&t, &rst, seg(RST, 2, 0), T0),
        Track::Existing(State::TcpClosed)
    );

    assert_eq!(t.lookup(&rst, T0 + tm.tcp_closed), Some(State::TcpClosed));
    assert_eq!(t.lookup(&rst, T0 + tm.tcp_closed + 1), None);
    assert_eq!(
        t.lookup(&syn, T0 + tm.tcp_transitory),
        Some(State::TcpSynSent)
    );
    assert_eq!(t.lookup(&syn, T0 + tm.tcp_transitory + 1), None);
    assert_eq!(
        t.lookup(&est, T0 + tm.tcp_established),
        Some(State::TcpEstablished)
    );
    assert_eq!(t.lookup(&est, T0 + tm.tcp_established + 1), None);
    // An expired session counts as absent for track too.
    assert_eq!(
        t.track(&est, &seg(ACK, 2, 2), Dir::Out, 40, T0 + 7441, false),
        Track::NotFound
    );
    assert_eq!(t.stats().expired, 1);
}

#[test]
fn timeouts_are_configurable() {
    let tm = Timeouts {
        tcp_established: 50,
        tcp_transitory: 5,
        tcp_closed: 1,
        udp: 7,
        udp_stream: 9,
        icmp: 3,
    };
    let t = SessionTable::new(100, tm);
    assert_eq!(t.timeouts(), tm);
    let k = key(1, 6);
    handshake(&t, &k, 1, 1, T0);
    assert_eq!(t.lookup(&k, T0 + 50), Some(State::TcpEstablished));
    assert_eq!(t.lookup(&k, T0 + 51), None);
    let u = key(2, 17);
    out(&t, &u, Segment::Udp, T0);
    assert_eq!(t.lookup(&u, T0 + 7), Some(State::Udp));
    assert_eq!(t.lookup(&u, T0 + 8), None);
}

#[test]
fn fin_fin_ack_reaches_time_wait() {
    let t = table(64);
    let k = key(1, 6);
    handshake(&t, &k, 100, 5000, T0);
    // Some data each way.
    assert_eq!(
        out(&t, &k, tcp_seg(ACK | PSH, 101, 5001, 500, 1000, None), T0),
        Track::Existing(State::TcpEstablished)
    );
    assert_eq!(
        inb(&t, &k, tcp_seg(ACK, 5001, 601, 0, 500, None), T0),
        Track::Existing(State::TcpEstablished)
    );
    assert_eq!(
        out(&t, &k, seg(FIN | ACK, 601, 5001), T0 + 1),
        Track::Existing(State::TcpFinWait)
    );
    // The peer ACKs our FIN and keeps sending (half close).
    assert_eq!(
        inb(&t, &k, tcp_seg(ACK, 5001, 602, 100, 500, None), T0 + 1),
        Track::Existing(State::TcpFinWait)
    );
    assert_eq!(
        inb(&t, &k, seg(FIN | ACK, 5101, 602), T0 + 2),
        Track::Existing(State::TcpClosing)
    );
    // An ACK that doesn't cover the FIN leaves it closing.
    assert_eq!(
        out(&t, &k, seg(ACK, 602, 5101), T0 + 2),
        Track::Existing(State::TcpClosing)
    );
    assert_eq!(
        out(&t, &k, seg(ACK, 602, 5102), T0 + 2),
        Track::Existing(State::TcpTimeWait)
    );
    let tw = Timeouts::default().tcp_transitory;
    assert_eq!(t.lookup(&k, T0 + 2 + tw), Some(State::TcpTimeWait));
    assert_eq!(t.lookup(&k, T0 + 3 + tw), None);
}

#[test]
fn fin_without_ack_and_odd_flags_are_bad() {
    let t = table(64);
    let k = key(1, 6);
    for flags in [
        0,
        PSH,
        FIN,
        SYN | FIN,
        SYN | RST,
        SYN | ACK | FIN,
        RST | FIN | ACK,
        0xff,
    ] {
        assert_eq!(
            out(&t, &k, seg(flags, 1, 1), T0),
            Track::Invalid(Invalid::BadFlags),
            "flags {flags:#x}"
        );
    }
    handshake(&t, &k, 1, 1, T0);
    assert_eq!(
        out(&t, &k, seg(SYN | FIN, 2, 2), T0),
        Track::Invalid(Invalid::BadFlags)
    );
    assert_eq!(t.lookup(&k, T0), Some(State::TcpEstablished));
    assert_eq!(t.stats().invalid, 9);
}

#[test]
fn rst_in_window_passes_and_only_exact_rst_closes() {
    let t = table(64);
    let k = key(1, 6);
    handshake(&t, &k, 100, 5000, T0);
    // 100000 is inside the client's scaled window (1000 << 7 = 128000) but
    // beyond its unscaled value: passing proves the scale is applied. It
    // is not the expected sequence number, so (RFC 5961 3.2) the host
    // only answers it with a challenge ACK and the session stays.
    assert_eq!(
        inb(&t, &k, seg(RST, 5001 + 100_000, 0), T0),
        Track::Existing(State::TcpEstablished)
    );
    assert_eq!(
        inb(&t, &k, seg(RST, 5001 + 200_000, 0), T0),
        Track::Invalid(Invalid::RstOutOfWindow)
    );
    assert_eq!(
        inb(&t, &k, seg(RST, 5001, 0), T0),
        Track::Existing(State::TcpClosed)
    );
    assert_eq!(t.lookup(&k, T0), Some(State::TcpClosed));
}

#[test]
fn rst_out_of_window_is_rejected_and_session_survives() {
    let t = table(64);
    let k = key(1, 6);
    handshake(&t, &k, 100, 5000, T0);
    for seq in [
        5001 + 200_000,
        5001u32.wrapping_sub(200_000),
        5001 + (1 << 31),
    ] {
        assert_eq!(
            inb(&t, &k, seg(RST | ACK, seq, 101), T0 + 5),
            Track::Invalid(Invalid::RstOutOfWindow)
        );
    }
    // Untouched: neither state nor last-seen time changed.
    assert_eq!(t.lookup(&k, T0), Some(State::TcpEstablished));
    let (v, _) = t.snapshot(T0 + 5, 10, &|_| true);
    assert_eq!(v[0].idle_s, 5);
    assert_eq!(v[0].packets_in, 1);
    assert_eq!(t.stats().invalid, 3);
    // Data far out of window is refused too.
    assert_eq!(
        inb(&t, &k, seg(ACK, 5001 + (1 << 31), 101), T0),
        Track::Invalid(Invalid::OutOfWindow)
    );
}

#[test]
fn rst_answering_a_syn_must_ack_it() {
    let t = table(64);
    let k = key(1, 6);
    out(&t, &k, seg(SYN, 700, 0), T0);
    assert_eq!(
        inb(&t, &k, seg(RST | ACK, 0, 999), T0),
        Track::Invalid(Invalid::RstOutOfWindow)
    );
    assert_eq!(
        inb(&t, &k, seg(RST, 0, 701), T0),
        Track::Invalid(Invalid::RstOutOfWindow)
    );
    assert_eq!(
        inb(&t, &k, seg(RST | ACK, 0, 701), T0),
        Track::Existing(State::TcpClosed)
    );
}

#[test]
fn sequence_numbers_wrap() {
    let t = table(64);
    let k = key(1, 6);
    let c = u32::MAX - 10;
    let s = u32::MAX - 3;
    handshake(&t, &k, c, s, T0);
    // Client sends 100 bytes across the wrap.
    assert_eq!(
        out(
            &t,
            &k,
            tcp_seg(ACK, c.wrapping_add(1), s.wrapping_add(1), 100, 1000, None),
            T0
        ),
        Track::Existing(State::TcpEstablished)
    );
    let c_end = c.wrapping_add(101); // = 90 after wrapping
    assert_eq!(c_end, 90);
    // Server data beyond the wrap, in window.
    assert_eq!(
        inb(
            &t,
            &k,
            tcp_seg(ACK, s.wrapping_add(1), c_end, 1000, 500, None),
            T0
        ),
        Track::Existing(State::TcpEstablished)
    );
    let s_end = s.wrapping_add(1001);
    // FIN/ACK sequence across the wrap.
    assert_eq!(
        out(&t, &k, seg(FIN | ACK, c_end, s_end), T0),
        Track::Existing(State::TcpFinWait)
    );
    assert_eq!(
        inb(&t, &k, seg(FIN | ACK, s_end, c_end + 1), T0),
        Track::Existing(State::TcpClosing)
    );
    // RST far outside (half the sequence space away) is rejected even
    // though its raw value is "close" to u32::MAX.
    assert_eq!(
        out(&t, &k, seg(RST, c_end.wrapping_add(1 << 31), 0), T0),
        Track::Invalid(Invalid::RstOutOfWindow)
    );
    // A RST just below the wrap point is below what the server has
    // acknowledged (c_end + 1, after the wrap): invalid. One at exactly
    // that point closes.
    assert_eq!(
        out(&t, &k, seg(RST, u32::MAX - 5, 0), T0),
        Track::Invalid(Invalid::RstOutOfWindow)
    );
    assert_eq!(
        out(&t, &k, seg(RST, c_end + 1, 0), T0),
        Track::Existing(State::TcpClosed)
    );
}

#[test]
fn clock_wraps() {
    let t = table(64);
    let start = u32::MAX - 5;
    let u = key(1, 17);
    assert_eq!(out(&t, &u, Segment::Udp, start), Track::Created(State::Udp));
    assert_eq!(t.lookup(&u, start.wrapping_add(120)), Some(State::Udp));
    assert_eq!(t.lookup(&u, start.wrapping_add(121)), None);
    // Refreshed after the wrap, it lives on from the new time.
    assert_eq!(
        out(&t, &u, Segment::Udp, start.wrapping_add(100)),
        Track::Existing(State::Udp)
    );
    assert_eq!(t.lookup(&u, start.wrapping_add(220)), Some(State::Udp));
    assert_eq!(t.lookup(&u, start.wrapping_add(221)), None);
    // A packet stamped a second earlier (another core's clock) is not a
    // huge idle time.
    assert_eq!(
        out(&t, &u, Segment::Udp, start.wrapping_add(99)),
        Track::Existing(State::Udp)
    );
    assert_eq!(t.lookup(&u, start.wrapping_add(99)), Some(State::Udp));
    let k = key(2, 6);
    handshake(&t, &k, 1, 1, start);
    assert_eq!(
        t.lookup(&k, start.wrapping_add(7440)),
        Some(State::TcpEstablished)
    );
    assert_eq!(t.lookup(&k, start.wrapping_add(7441)), None);
    assert_eq!(t.expire(start.wrapping_add(7441), 100), 2);
}

#[test]
fn inbound_non_syn_never_creates() {
    let t = table(64);
    let k = key(1, 6);
    for flags in [ACK, ACK | PSH, SYN | ACK, RST, RST | ACK, FIN | ACK] {
        assert_eq!(
            inb(&t, &k, seg(flags, 1, 1), T0),
            Track::Invalid(Invalid::NotSyn),
            "flags {flags:#x}"
        );
        assert_eq!(
            t.track(&k, &seg(flags, 1, 1), Dir::In, 40, T0, false),
            Track::NotFound
        );
    }
    // An outbound SYN-ACK or RST does not open one either.
    assert_eq!(
        out(&t, &k, seg(SYN | ACK, 1, 1), T0),
        Track::Invalid(Invalid::NotSyn)
    );
    assert_eq!(
        out(&t, &k, seg(RST, 1, 1), T0),
        Track::Invalid(Invalid::NotSyn)
    );
    assert_eq!(t.stats().active, 0);
    // An inbound SYN through a pinhole (create = true) opens one.
    assert_eq!(
        inb(&t, &k, seg(SYN, 1, 0), T0),
        Track::Created(State::TcpSynSent)
    );
    assert_eq!(
        out(&t, &k, seg(SYN | ACK, 77, 2), T0),
        Track::Existing(State::TcpSynReceived)
    );
    assert_eq!(
        inb(&t, &k, seg(ACK, 2, 78), T0),
        Track::Existing(State::TcpEstablished)
    );
}

#[test]
fn loose_pickup_outbound() {
    let t = table(64);
    let k = key(1, 6);
    assert_eq!(
        t.track(&k, &seg(ACK, 1000, 9000), Dir::Out, 40, T0, false),
        Track::NotFound
    );
    assert_eq!(
        out(&t, &k, seg(ACK | PSH, 1000, 9000), T0),
        Track::Created(State::TcpEstablished)
    );
    assert_eq!(
        inb(&t, &k, tcp_seg(ACK, 9000, 1000, 1400, 3, None), T0),
        Track::Existing(State::TcpEstablished)
    );
    // Window unknown: only a RST at exactly the expected sequence number
    // (after the 1400 bytes above, or the LAN's last ACK) is accepted.
    for seq in [9000u32.wrapping_add(1 << 31), 9000 + (1 << 29), 9001] {
        assert_eq!(
            inb(&t, &k, seg(RST, seq, 0), T0),
            Track::Invalid(Invalid::RstOutOfWindow)
        );
    }
    assert_eq!(
        inb(&t, &k, seg(RST, 10_400, 0), T0),
        Track::Existing(State::TcpClosed)
    );
    // FIN+ACK may not pick up a connection.
    let k2 = key(2, 6);
    assert_eq!(
        out(&t, &k2, seg(FIN | ACK, 1, 1), T0),
        Track::Invalid(Invalid::NotSyn)
    );
}

#[test]
fn syn_on_closed_or_time_wait_reopens() {
    let t = table(64);
    let k = key(1, 6);
    handshake(&t, &k, 100, 5000, T0);
    out(&t, &k, seg(RST, 101, 0), T0);
    assert_eq!(t.lookup(&k, T0), Some(State::TcpClosed));
    assert_eq!(
        out(&t, &k, seg(SYN, 777_777, 0), T0 + 1),
        Track::Created(State::TcpSynSent)
    );
    // The new connection's sequence numbers are the ones tracked.
    assert_eq!(
        inb(&t, &k, seg(SYN | ACK, 42, 777_778), T0 + 1),
        Track::Existing(State::TcpSynReceived)
    );
    assert_eq!(
        out(&t, &k, seg(ACK, 777_778, 43), T0 + 1),
        Track::Existing(State::TcpEstablished)
    );
    let st = t.stats();
    assert_eq!((st.active, st.created, st.expired), (1, 2, 1));
    // Close to TIME-WAIT, then an inbound SYN: without a pinhole it is
    // unknown and the old session stays; with one it reopens.
    out(&t, &k, seg(FIN | ACK, 777_778, 43), T0 + 2);
    inb(&t, &k, seg(FIN | ACK, 43, 777_779), T0 + 2);
    assert_eq!(
        out(&t, &k, seg(ACK, 777_779, 44), T0 + 2),
        Track::Existing(State::TcpTimeWait)
    );
    assert_eq!(
        t.track(&k, &seg(SYN, 5, 0), Dir::In, 40, T0 + 3, false),
        Track::NotFound
    );
    assert_eq!(t.lookup(&k, T0 + 3), Some(State::TcpTimeWait));
    assert_eq!(
        inb(&t, &k, seg(SYN, 5, 0), T0 + 3),
        Track::Created(State::TcpSynSent)
    );
    // A SYN on an established session passes without changing it.
    let e = key(2, 6);
    handshake(&t, &e, 1, 1, T0);
    assert_eq!(
        out(&t, &e, seg(SYN, 9, 0), T0),
        Track::Existing(State::TcpEstablished)
    );
}

#[test]
fn udp_one_way_then_stream() {
    let tm = Timeouts::default();
    let t = table(64);
    let a = key(1, 17);
    assert_eq!(out(&t, &a, Segment::Udp, T0), Track::Created(State::Udp));
    assert_eq!(out(&t, &a, Segment::Udp, T0), Track::Existing(State::Udp));
    assert!(!State::Udp.is_established());
    assert_eq!(t.lookup(&a, T0 + tm.udp), Some(State::Udp));
    assert_eq!(t.lookup(&a, T0 + tm.udp + 1), None);

    let b = key(2, 17);
    out(&t, &b, Segment::Udp, T0);
    assert_eq!(
        inb(&t, &b, Segment::Udp, T0),
        Track::Existing(State::UdpStream)
    );
    assert!(State::UdpStream.is_established());
    assert_eq!(t.lookup(&b, T0 + tm.udp_stream), Some(State::UdpStream));
    assert_eq!(t.lookup(&b, T0 + tm.udp_stream + 1), None);

    // Opened inbound (pinhole): the reply is the outbound packet.
    let c = key(3, 17);
    assert_eq!(inb(&t, &c, Segment::Udp, T0), Track::Created(State::Udp));
    assert_eq!(inb(&t, &c, Segment::Udp, T0), Track::Existing(State::Udp));
    assert_eq!(
        out(&t, &c, Segment::Udp, T0),
        Track::Existing(State::UdpStream)
    );
    // Other protocols without ports use the UDP rules.
    let g = Key {
        proto: 47,
        int_port: 0,
        ext_port: 0,
        ..key(4, 47)
    };
    assert_eq!(out(&t, &g, Segment::Udp, T0), Track::Created(State::Udp));
}

#[test]
fn icmp_echo() {
    let t = table(64);
    let k = key(1, 1);
    assert_eq!(out(&t, &k, Segment::Icmp, T0), Track::Created(State::Icmp));
    assert_eq!(
        inb(&t, &k, Segment::Icmp, T0 + 1),
        Track::Existing(State::Icmp)
    );
    assert!(State::Icmp.is_established());
    assert_eq!(t.lookup(&k, T0 + 61), Some(State::Icmp));
    assert_eq!(t.lookup(&k, T0 + 62), None);
    assert_eq!(
        t.track(&k, &Segment::Icmp, Dir::In, 84, T0 + 62, false),
        Track::NotFound
    );
}

#[test]
fn lookup_never_refreshes_creates_or_deletes() {
    let t = table(64);
    let k = key(1, 17);
    assert_eq!(t.lookup(&k, T0), None);
    assert_eq!(t.stats().active, 0);
    out(&t, &k, Segment::Udp, T0);
    for now in T0..=T0 + 120 {
        assert_eq!(t.lookup(&k, now), Some(State::Udp));
    }
    assert_eq!(t.lookup(&k, T0 + 121), None);
    let st = t.stats();
    assert_eq!((st.active, st.created, st.expired), (1, 1, 0));
    assert_eq!(t.expire(T0 + 121, 10), 1);
    assert_eq!(t.stats().active, 0);
}

#[test]
fn counters_per_direction() {
    let t = table(64);
    let k = key(1, 17);
    for _ in 0..3 {
        t.track(&k, &Segment::Udp, Dir::Out, 100, T0, true);
    }
    for _ in 0..2 {
        t.track(&k, &Segment::Udp, Dir::In, 1500, T0 + 4, true);
    }
    let (v, n) = t.snapshot(T0 + 10, 10, &|_| true);
    assert_eq!(n, 1);
    let s = v[0];
    assert_eq!(s.key, k);
    assert_eq!(s.state, State::UdpStream);
    assert_eq!((s.packets_out, s.packets_in), (3, 2));
    assert_eq!((s.bytes_out, s.bytes_in), (300, 3000));
    assert_eq!((s.idle_s, s.expires_in_s), (6, 294));
}

#[test]
fn ten_times_capacity_stays_bounded() {
    let t = table(1024);
    for n in 0..10 * 1024 {
        let r = out(&t, &key(n, 17), Segment::Udp, T0);
        assert_eq!(r, Track::Created(State::Udp));
        assert!(t.stats().active <= 1024);
    }
    let st = t.stats();
    assert!(st.active <= 1024);
    assert_eq!(st.created, 10 * 1024);
    assert_eq!(st.evicted, st.created - st.active);
    assert!(st.evicted >= 9 * 1024);
    assert_eq!(st.refused, 0);
    audit(&t);
}

#[test]
fn eviction_order_spares_established() {
    // max 4 sessions: one shard of 4.
    let t = table(4);
    assert_eq!(t.shards.len(), 1);
    let closed = key(1, 6);
    handshake(&t, &closed, 1, 1, T0);
    out(&t, &closed, seg(RST, 2, 0), T0);
    let syn = key(2, 6);
    out(&t, &syn, seg(SYN, 1, 0), T0);
    let udp = key(3, 17);
    out(&t, &udp, Segment::Udp, T0);
    let icmp = key(4, 1);
    out(&t, &icmp, Segment::Icmp, T0);
    let victims = [closed, syn, udp, icmp];
    for (i, v) in victims.iter().enumerate() {
        // New flows from the LAN: one from the WAN may not evict these.
        let s = key(100 + i as u32, 17);
        assert_eq!(out(&t, &s, Segment::Udp, T0), Track::Created(State::Udp));
        inb(&t, &s, Segment::Udp, T0); // now a stream
        assert_eq!(t.lookup(v, T0), None, "victim {i}");
        for w in &victims[i + 1..] {
            assert!(t.lookup(w, T0).is_some());
        }
    }
    let st = t.stats();
    assert_eq!((st.evicted, st.active, st.refused), (4, 4, 0));
    // Four streams now: nothing may go.
    assert_eq!(out(&t, &key(200, 17), Segment::Udp, T0), Track::Refused);
    assert_eq!(out(&t, &key(201, 6), seg(SYN, 1, 0), T0), Track::Refused);
    assert_eq!(t.stats().refused, 2);
}

#[test]
fn shard_full_of_established_refuses() {
    let t = table(16);
    assert_eq!(t.shards.len(), 1);
    let k = key(0, 6);
    handshake(&t, &k, 1, 1, T0);
    for n in 1..16 {
        let u = key(n, 17);
        out(&t, &u, Segment::Udp, T0);
        inb(&t, &u, Segment::Udp, T0);
    }
    assert_eq!(t.stats().active, 16);
    for n in 100..110 {
        assert_eq!(out(&t, &key(n, 17), Segment::Udp, T0 + 1), Track::Refused);
        assert_eq!(inb(&t, &key(n, 6), seg(SYN, 1, 0), T0 + 1), Track::Refused);
    }
    let st = t.stats();
    assert_eq!((st.refused, st.evicted, st.active), (20, 0, 16));
    // Once the streams time out, room appears again (expired, not evicted).
    assert_eq!(
        out(&t, &key(500, 17), Segment::Udp, T0 + 301),
        Track::Created(State::Udp)
    );
    let st = t.stats();
    assert_eq!(st.evicted, 0);
    assert!(st.expired >= 1);
    assert_eq!(t.lookup(&k, T0 + 301), Some(State::TcpEstablished));
    audit(&t);
}

#[test]
fn established_survives_a_flood() {
    let t = table(1024);
    let k = Key {
        int_port: 40000,
        ..key(0xdead, 6)
    };
    handshake(&t, &k, 1, 1, T0);
    let mut now = T0;
    let mut seq = 2u32;
    for n in 0..1_000_000u32 {
        let f = key(n, if n % 2 == 0 { 17 } else { 6 });
        if n % 4 == 3 {
            // Inbound SYNs through pinholes: refused once the LAN's flows
            // hold every evictable slot of the shard.
            let r = inb(&t, &f, seg(SYN, n, 0), now);
            assert!(matches!(r, Track::Created(_) | Track::Refused), "{r:?}");
        } else {
            let r = if n % 2 == 0 {
                out(&t, &f, Segment::Udp, now)
            } else {
                out(&t, &f, seg(SYN, n, 0), now)
            };
            assert!(matches!(r, Track::Created(_)), "{r:?}");
        }
        if n % 1000 == 999 {
            now += 1;
            assert_eq!(
                out(&t, &k, tcp_seg(ACK, seq, 2, 10, 1000, None), now),
                Track::Existing(State::TcpEstablished)
            );
            seq = seq.wrapping_add(10);
        }
    }
    assert_eq!(
        out(&t, &k, seg(ACK, seq, 2), now),
        Track::Existing(State::TcpEstablished)
    );
    let st = t.stats();
    assert!(st.active <= 1024);
    assert!(st.evicted > 700_000, "{st:?}");
    // Only the inbound quarter is ever refused.
    assert!(st.refused <= 250_000, "{st:?}");
    assert_eq!(st.created + st.refused, 1_000_001);
    assert_eq!(st.active, st.created - st.expired - st.evicted);
    audit(&t);
}

#[test]
fn expire_frees_only_expired_within_budget() {
    let t = table(1024);
    for n in 0..10 {
        out(&t, &key(n, 17), Segment::Udp, T0);
        out(&t, &key(n, 1), Segment::Icmp, T0);
    }
    for n in 10..15 {
        handshake(&t, &key(n, 6), 1, 1, T0);
    }
    assert_eq!(t.expire(T0 + 60, 100), 0);
    // ICMP (60 s) is expired, UDP (120 s) is not.
    assert_eq!(t.expire(T0 + 61, 4), 4);
    assert_eq!(t.stats().active, 21);
    assert_eq!(t.expire(T0 + 61, 100), 6);
    assert_eq!(t.expire(T0 + 61, 100), 0);
    let st = t.stats();
    assert_eq!((st.active, st.expired), (15, 10));
    for n in 0..10 {
        assert_eq!(t.lookup(&key(n, 17), T0 + 61), Some(State::Udp));
        assert_eq!(t.lookup(&key(n, 1), T0 + 61), None);
    }
    // A zero budget frees nothing.
    assert_eq!(t.expire(T0 + 10_000, 0), 0);
    // Budget spans shards: all 15 freed over a few calls.
    let mut freed = 0;
    for _ in 0..10 {
        freed += t.expire(T0 + 10_000, 2);
    }
    assert_eq!(freed, 15);
    assert_eq!(t.stats().active, 0);
    audit(&t);
}

#[test]
fn snapshot_filters_and_limits() {
    let t = table(1024);
    for n in 0..20 {
        out(&t, &key(n, 17), Segment::Udp, T0);
    }
    for n in 20..25 {
        handshake(&t, &key(n, 6), 1, 1, T0);
    }
    out(&t, &key(99, 17), Segment::Udp, T0 - 200); // expired: not shown
    let (v, n) = t.snapshot(T0 + 10, 7, &|s| s.key.proto == 17);
    assert_eq!((v.len(), n), (7, 20));
    assert!(v.iter().all(|s| s.state == State::Udp && s.idle_s == 10));
    assert!(v.iter().all(|s| s.expires_in_s == 110));
    let (v, n) = t.snapshot(T0 + 10, 100, &|s| s.state.is_established());
    assert_eq!((v.len(), n), (5, 5));
    let (v, n) = t.snapshot(T0, 0, &|_| true);
    assert_eq!((v.len(), n), (0, 25));
}

#[test]
fn clear_drops_everything() {
    let t = table(256);
    for n in 0..100 {
        out(&t, &key(n, 17), Segment::Udp, T0);
    }
    t.clear();
    assert_eq!(t.stats().active, 0);
    assert_eq!(t.lookup(&key(5, 17), T0), None);
    let cleared = t.sum_shards(|s| s.counters.cleared);
    assert_eq!(cleared, 100);
    assert_eq!(
        out(&t, &key(5, 17), Segment::Udp, T0),
        Track::Created(State::Udp)
    );
    audit(&t);
}

#[test]
fn bytes_per_session_within_budget() {
    const { assert!(BYTES_PER_SESSION <= 128) };
    assert_eq!(
        BYTES_PER_SESSION,
        std::mem::size_of::<table::Hot>() + std::mem::size_of::<table::Cold>() + 11
    );
}

#[test]
fn capacity_is_exact_and_shards_bounded() {
    for m in [
        0usize, 1, 2, 3, 31, 32, 63, 64, 100, 1000, 1024, 65_536, 100_003,
    ] {
        let t = table(m);
        let want = m.max(1);
        assert_eq!(t.capacity(), want);
        assert_eq!(t.stats().capacity, want as u64);
        let n = t.shards.len();
        assert!(n.is_power_of_two() && n <= 256 && n <= want, "{m}: {n}");
        let slots = t.sum_shards(|s| s.slots() as u64) as usize;
        assert_eq!(slots, want);
    }
    assert_eq!(table(1 << 20).shards.len(), 256);
    // Fill a tiny table completely: exactly max sessions, never more.
    let t = table(3);
    for n in 0..3 {
        inb(&t, &key(n, 17), Segment::Udp, T0);
        out(&t, &key(n, 17), Segment::Udp, T0);
    }
    assert_eq!(out(&t, &key(9, 17), Segment::Udp, T0), Track::Refused);
}

#[test]
fn keyed_hash_differs_per_table_and_spreads() {
    let a = table(1 << 16);
    let b = table(1 << 16);
    let k = key(7, 6);
    assert_ne!(a.hash(&k), b.hash(&k));
    // Keys differing only in the port land in many shards.
    let mut hit = [false; 256];
    for p in 0..4096u16 {
        let k = Key { int_port: p, ..k };
        hit[a.hash(&k).checked_shr(a.shard_shift).unwrap_or(0) as usize] = true;
    }
    assert!(hit.iter().filter(|&&h| h).count() > 240);
}

#[test]
fn hostile_segments_never_panic() {
    let t = table(128);
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..200_000u32 {
        let r = rnd();
        let k = key((r % 50) as u32, 6);
        let s = tcp_seg(
            (r >> 8) as u8,
            (r >> 16) as u32,
            (r >> 24) as u32,
            (r >> 40) as u32,
            (r >> 48) as u16,
            Some((r >> 56) as u8),
        );
        let dir = if r & 1 == 0 { Dir::Out } else { Dir::In };
        let now = T0.wrapping_add(i / 100).wrapping_add(u32::MAX - 1500);
        t.track(&k, &s, dir, (r >> 32) as u32, now, r & 2 == 0);
        let _ = t.lookup(&k, now);
    }
    // Mismatched segment kinds are harmless too.
    let k = key(1, 6);
    t.track(&k, &Segment::Udp, Dir::Out, 1, T0, true);
    t.track(&k, &Segment::Icmp, Dir::In, 1, T0, true);
    audit(&t);
    let st = t.stats();
    assert_eq!(st.active, st.created - st.expired - st.evicted);
}

#[test]
fn concurrent_workers_keep_stats_consistent() {
    concurrent_workers(SessionTable::new(512, Timeouts::default()));
}

/// A one-worker table stays correct if more threads use it anyway (a
/// worker count raised without a restart of the table would do that).
#[test]
fn concurrent_workers_on_a_chunk_locked_table() {
    let t = table(512);
    assert!(t.locks_per_chunk());
    concurrent_workers(t);
}

fn concurrent_workers(t: SessionTable) {
    const CAP: usize = 512;
    assert_eq!(t.capacity(), CAP);
    let t = Arc::new(t);
    let clock = Arc::new(AtomicU32::new(u32::MAX - 200)); // wraps during the run
    let done = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..3u64 {
        let (t, clock) = (Arc::clone(&t), Arc::clone(&clock));
        workers.push(std::thread::spawn(move || {
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (w + 1);
            for _ in 0..150_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Overlapping keys: every worker uses the same 3000 flows.
                let n = (x % 3000) as u32;
                let proto = [6u8, 17, 1][(n % 3) as usize];
                let k = key(n, proto);
                let s = match proto {
                    6 => {
                        let flags =
                            [SYN, SYN | ACK, ACK, FIN | ACK, RST, ACK][(x >> 20) as usize % 6];
                        seg(flags, (x >> 32) as u32 & 0xffff, 1)
                    }
                    17 => Segment::Udp,
                    _ => Segment::Icmp,
                };
                let dir = if x & (1 << 40) != 0 {
                    Dir::Out
                } else {
                    Dir::In
                };
                let now = clock.load(Ordering::Relaxed);
                t.track(&k, &s, dir, 100, now, x & (1 << 41) != 0);
            }
        }));
    }
    let control = {
        let (t, clock, done) = (Arc::clone(&t), Arc::clone(&clock), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut rounds = 0u32;
            while !done.load(Ordering::Relaxed) || rounds < 10 {
                let now = clock.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
                t.expire(now, 64);
                let st = t.stats();
                assert!(st.active <= CAP as u64);
                assert_eq!(st.active, st.created - st.expired - st.evicted);
                if rounds.is_multiple_of(16) {
                    let (v, n) = t.snapshot(now, 10, &|_| true);
                    assert!(v.len() <= 10 && n <= CAP);
                }
                rounds += 1;
                std::thread::yield_now();
            }
            rounds
        })
    };
    for w in workers {
        w.join().expect("worker panicked");
    }
    done.store(true, Ordering::Relaxed);
    let rounds = control.join().expect("control panicked");
    assert!(rounds >= 10);
    audit(&t);
    let st = t.stats();
    assert!(st.created > 1000 && st.active <= CAP as u64, "{st:?}");
    assert_eq!(st.active, st.created - st.expired - st.evicted);
    t.clear();
    let st = t.stats();
    let cleared = t.sum_shards(|s| s.counters.cleared);
    assert_eq!(st.active, 0);
    assert_eq!(st.created - st.expired - st.evicted - cleared, 0);
}

/// A reload changes the timeouts of a live table: an idle UDP session
/// expires by the new value.
#[test]
fn timeouts_change_while_the_table_is_in_use() {
    let t = SessionTable::new(64, Timeouts::default());
    let u = key(2, 17);
    out(&t, &u, Segment::Udp, T0);
    assert_eq!(t.lookup(&u, T0 + 60), Some(State::Udp));
    let short = Timeouts {
        udp: 5,
        ..Default::default()
    };
    t.set_timeouts(short);
    assert_eq!(t.timeouts(), short);
    assert_eq!(t.lookup(&u, T0 + 60), None);
    assert_eq!(t.expire(T0 + 60, 100), 1);
}

/// Issue 15: RST handling, resynchronisation and eviction priority.
mod security;

/// Issue 17: expiry FIFOs, tag index, batches, huge pages.
mod expiry;

/// Issue 17: batches agree with packets one by one, small table or big.
mod small_batch;

/// Issue 17: a one-worker table locks per chunk, others per shard.
mod locking;
