//! The translation on the session's hot line: made once per session by the
//! bindings, read back on every later packet, given back when the session
//! goes however it goes.

use std::net::Ipv4Addr;
use std::sync::Arc;

use ipoe_proto::map::PortSet;

use super::bindings::{Bindings, NatProto};
use super::ports::{AllocError, Limits};
use super::PortPool;
use crate::flow::mapped;
use crate::session::{Dir, Key, Nat, Request, Segment, SessionTable, Timeouts, Track};

const EXT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 77);
const T0: u32 = 10_000;

fn setup(sessions: usize, pool: PortPool, grace_s: u32) -> (Arc<SessionTable>, Arc<Bindings>) {
    let t = Arc::new(SessionTable::new(sessions, Timeouts::default()));
    let limits = Limits {
        grace_s,
        ..Limits::default()
    };
    let b = Arc::new(Bindings::new(EXT, pool, limits));
    t.set_nat_release(b.clone());
    (t, b)
}

fn v6plus() -> PortPool {
    PortPool::from_set(PortSet::new(4, 8, 0x3c))
}

fn udp_key(host: u8, port: u16, dst: [u8; 4], dport: u16) -> Key {
    Key {
        int_addr: mapped(&[192, 168, 2, host]),
        ext_addr: mapped(&dst),
        int_port: port,
        ext_port: dport,
        proto: 17,
    }
}

fn endpoint(k: &Key) -> (Ipv4Addr, u16) {
    let a = &k.int_addr[12..];
    (Ipv4Addr::new(a[0], a[1], a[2], a[3]), k.int_port)
}

/// What nat44-out does for a packet: track, binding a port for a new
/// session. Returns the track result, the translation and the bind error.
fn send(
    t: &SessionTable,
    b: &Bindings,
    k: &Key,
    now: u32,
) -> (Track, Option<Nat>, Option<AllocError>) {
    let r = Request {
        key: *k,
        seg: Segment::Udp,
        dir: Dir::Out,
        bytes: 100,
        create: true,
    };
    let mut err = None;
    let mut bind = || match b.bind(NatProto::Udp, endpoint(k), now, k.ext_port.into()) {
        Ok(port) => Some(Nat { port, addr: 0 }),
        Err(e) => {
            err = Some(e);
            None
        }
    };
    let (tr, nat) = t.track_nat(&r, now, &mut bind);
    (tr, nat, err)
}

#[test]
fn a_session_keeps_its_translation_and_binds_once() {
    let (t, b) = setup(1024, v6plus(), 0);
    let k = udp_key(20, 40000, [203, 0, 113, 5], 53);
    let (tr, nat, _) = send(&t, &b, &k, T0);
    assert!(matches!(tr, Track::Created(_)));
    let nat = nat.expect("a translation for a new session");
    assert!(v6plus().index_of(nat.port).is_some());
    // Later packets read it from the hot line: no second bind.
    for s in 1..5 {
        let r = Request {
            key: k,
            seg: Segment::Udp,
            dir: Dir::Out,
            bytes: 100,
            create: true,
        };
        let (tr, again) = t.track_nat(&r, T0 + s, &mut || panic!("bound twice"));
        assert!(matches!(tr, Track::Existing(_)));
        assert_eq!(again, Some(nat));
    }
    assert_eq!(b.refs(NatProto::Udp, nat.port), 1);
    // A reply looks the session up through the mapping's owner.
    assert_eq!(b.internal(NatProto::Udp, nat.port), Some(endpoint(&k)));
    let (snap, _) = t.snapshot(T0 + 5, 10, &|_| true);
    assert_eq!(snap[0].nat, Some(nat));
}

#[test]
fn sessions_of_one_endpoint_share_the_port() {
    let (t, b) = setup(1024, v6plus(), 0);
    let a = udp_key(20, 40000, [203, 0, 113, 5], 53);
    let c = udp_key(20, 40000, [198, 51, 100, 9], 3478);
    let (_, na, _) = send(&t, &b, &a, T0);
    let (_, nc, _) = send(&t, &b, &c, T0);
    assert_eq!(na, nc, "endpoint-independent mapping");
    assert_eq!(b.refs(NatProto::Udp, na.unwrap().port), 2);
    let other = udp_key(21, 40000, [203, 0, 113, 5], 53);
    let (_, no, _) = send(&t, &b, &other, T0);
    assert_ne!(no, na);
}

#[test]
fn expiry_gives_the_port_back_after_the_grace_period() {
    let pool = PortPool::Range {
        first: 6000,
        last: 6000,
    };
    let (t, b) = setup(1024, pool, 30);
    let k = udp_key(20, 1111, [203, 0, 113, 5], 53);
    let (_, nat, _) = send(&t, &b, &k, T0);
    assert_eq!(nat.map(|n| n.port), Some(6000));
    // The one port is taken: another endpoint is refused, and its new
    // session with it (counted as refused, not as made).
    let k2 = udp_key(21, 2222, [203, 0, 113, 5], 53);
    let (tr, none, err) = send(&t, &b, &k2, T0);
    assert_eq!(
        (tr, none, err),
        (Track::Refused, None, Some(AllocError::Exhausted))
    );
    assert_eq!(t.lookup(&k2, T0), None);
    let st = t.stats();
    assert_eq!((st.active, st.created, st.refused), (1, 1, 1));
    // UDP one way: 120 s idle; then the session goes, and with it the
    // mapping. Its grace period ran from the last packet, so the port,
    // quiet for longer than that, is free at once.
    let now = T0 + Timeouts::default().udp + 1;
    assert_eq!(t.expire(now, 100), 1);
    assert_eq!(b.internal(NatProto::Udp, 6000), None);
    let (tr, nat, _) = send(&t, &b, &k2, now);
    assert!(matches!(tr, Track::Created(_)));
    assert_eq!(nat.map(|n| n.port), Some(6000));
    assert_eq!(b.internal(NatProto::Udp, 6000), Some(endpoint(&k2)));
    b.audit();
}

#[test]
fn an_evicted_session_port_rests_before_reuse() {
    let pool = PortPool::Range {
        first: 6000,
        last: 6000,
    };
    // One slot: each new flow evicts the last one.
    let (t, b) = setup(1, pool, 30);
    let k = udp_key(20, 1111, [203, 0, 113, 5], 53);
    assert_eq!(send(&t, &b, &k, T0).1.map(|n| n.port), Some(6000));
    let k2 = udp_key(21, 2222, [203, 0, 113, 5], 53);
    // 10 s later: the old flow is evicted, but its port was in use 10 s
    // ago and rests until 30 s after that.
    let (tr, _, err) = send(&t, &b, &k2, T0 + 10);
    assert_eq!((tr, err), (Track::Refused, Some(AllocError::Exhausted)));
    assert_eq!(t.stats().evicted, 1);
    assert_eq!(b.internal(NatProto::Udp, 6000), None);
    assert_eq!(send(&t, &b, &k2, T0 + 29).0, Track::Refused);
    let (tr, nat, _) = send(&t, &b, &k2, T0 + 30);
    assert!(matches!(tr, Track::Created(_)));
    assert_eq!(nat.map(|n| n.port), Some(6000));
    b.audit();
}

#[test]
fn eviction_and_clear_give_ports_back() {
    // 64 sessions, 240 ports: new flows evict old UDP sessions.
    let (t, b) = setup(64, v6plus(), 0);
    for n in 0..500u16 {
        let k = udp_key(
            (n % 7) as u8 + 1,
            1000 + n,
            [203, 0, 113, (n % 200) as u8],
            53,
        );
        let (tr, nat, err) = send(&t, &b, &k, T0 + u32::from(n / 10));
        assert!(matches!(tr, Track::Created(_)), "{n}: {tr:?} {err:?}");
        assert!(nat.is_some());
    }
    let st = t.stats();
    assert!(st.evicted > 0);
    // Every live session holds exactly one share of a mapping, and no
    // mapping outlives its sessions.
    let (snap, n) = t.snapshot(T0 + 50, 1000, &|_| true);
    assert_eq!(n as u64, st.active);
    assert_eq!(b.stats(NatProto::Udp).mappings as usize, n);
    for s in &snap {
        let nat = s.nat.unwrap();
        assert_eq!(b.refs(NatProto::Udp, nat.port), 1);
        assert_eq!(b.internal(NatProto::Udp, nat.port), Some(endpoint(&s.key)));
    }
    b.audit();
    t.clear();
    assert_eq!(b.stats(NatProto::Udp).mappings, 0);
    b.audit();
}

#[test]
fn a_reopened_tcp_tuple_binds_again() {
    let (t, b) = setup(1024, v6plus(), 0);
    let k = Key {
        proto: 6,
        ..udp_key(20, 5555, [203, 0, 113, 5], 80)
    };
    let syn = |seq| Request {
        key: k,
        seg: Segment::Tcp {
            flags: 0x02,
            seq,
            ack: 0,
            payload_len: 0,
            window: 65535,
            wscale: None,
        },
        dir: Dir::Out,
        bytes: 60,
        create: true,
    };
    let mut binds = 0;
    let mut bind = || {
        binds += 1;
        b.bind(NatProto::Tcp, endpoint(&k), T0, 0)
            .ok()
            .map(|port| Nat { port, addr: 0 })
    };
    let (tr, n1) = t.track_nat(&syn(100), T0, &mut bind);
    assert!(matches!(tr, Track::Created(_)));
    // An RST closes it; a new SYN on the tuple reopens it: the old
    // session (and its share of the mapping) goes, a new one binds.
    let rst = Request {
        seg: Segment::Tcp {
            flags: 0x04,
            seq: 101,
            ack: 0,
            payload_len: 0,
            window: 0,
            wscale: None,
        },
        ..syn(0)
    };
    t.track_nat(&rst, T0, &mut bind);
    let (tr, n2) = t.track_nat(&syn(5000), T0 + 1, &mut bind);
    assert!(matches!(tr, Track::Created(_)), "{tr:?}");
    assert_eq!(binds, 2);
    assert!(n1.is_some() && n2.is_some());
    assert_eq!(b.refs(NatProto::Tcp, n2.unwrap().port), 1);
    b.audit();
}
