//! `SessionTable::track_nat_batch` against `track_nat`: the same requests
//! give the same answers, bindings, sessions and counters, whether a
//! vector goes through in chunks or packet by packet.

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::bindings::{Bindings, NatProto};
use super::ports::{AllocError, Limits};
use super::PortPool;
use crate::flow::mapped;
use crate::session::{Dir, Key, Nat, Request, Segment, SessionInfo, SessionTable, Timeouts, Track};

const EXT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 77);
const T0: u32 = 10_000;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
/// Alone: a flag combination never valid.
const FIN: u8 = 0x01;

/// A table and bindings with a reproducible port choice (so two of them
/// hand out the same ports for the same requests). `workers` 1 locks the
/// table per chunk, 0 per shard.
fn setup(pool: PortPool, workers: usize) -> (Arc<SessionTable>, Arc<Bindings>) {
    let t = Arc::new(SessionTable::for_workers(
        4096,
        Timeouts::default(),
        workers,
    ));
    let limits = Limits {
        grace_s: 0,
        per_host: Some(3),
        max_hosts: 4,
    };
    let b = Arc::new(Bindings::new(EXT, pool, limits).with_seed(0x5eed));
    t.set_nat_release(b.clone());
    (t, b)
}

fn key(proto: u8, host: u8, port: u16, dport: u16) -> Key {
    Key {
        int_addr: mapped(&[192, 168, 2, host]),
        ext_addr: mapped(&[203, 0, 113, 5]),
        int_port: port,
        ext_port: dport,
        proto,
    }
}

fn req(key: Key, seg: Segment, dir: Dir, create: bool) -> Request {
    Request {
        key,
        seg,
        dir,
        bytes: 60,
        create,
    }
}

fn tcp(flags: u8) -> Segment {
    Segment::Tcp {
        flags,
        seq: 1000,
        ack: 0,
        payload_len: 0,
        window: 64240,
        wscale: None,
    }
}

/// What nat44-out binds for a request (endpoint-independent).
fn bind_for(b: &Bindings, r: &Request, now: u32) -> Result<u16, AllocError> {
    let p = NatProto::of(r.key.proto).unwrap();
    let a = &r.key.int_addr[12..];
    let int = (Ipv4Addr::new(a[0], a[1], a[2], a[3]), r.key.int_port);
    b.bind(p, int, now, b.hint(int, 0x0a00_0001))
}

/// Mixed traffic over six ports per protocol shared by five hosts (four
/// sockets each) holding at most
/// three each: new and repeated UDP flows, one endpoint to several
/// destinations, TCP SYNs and segments that may not open a session, echo,
/// inbound packets (`create` false) for flows that exist and that do not,
/// and more new flows than ports, so binds fail (exhaustion and the
/// per-host limit) part-way through a chunk.
fn traffic() -> Vec<Request> {
    let mut v = Vec::new();
    for round in 0..3u16 {
        for host in 1..=5u8 {
            for s in 0..4u16 {
                let k = key(17, host, 40000 + s, 53 + round % 2);
                v.push(req(k, Segment::Udp, Dir::Out, true));
            }
            let k = key(6, host, 50000 + round, 443);
            v.push(req(k, tcp(SYN), Dir::Out, true));
            v.push(req(key(6, host, 51000, 443), tcp(ACK), Dir::Out, true));
            v.push(req(key(6, host, 52000, 443), tcp(FIN), Dir::Out, true));
            v.push(req(
                key(1, host, 7 + round, 0),
                Segment::Icmp,
                Dir::Out,
                true,
            ));
            v.push(req(key(17, host, 40000, 53), Segment::Udp, Dir::In, false));
            v.push(req(key(17, host, 45000, 53), Segment::Udp, Dir::In, false));
        }
    }
    v
}

/// Everything observable: per request the answer and the bind error,
/// then the sessions, the table's counters and each protocol's mappings.
type Outcome = (
    Vec<(Track, Option<Nat>, Option<AllocError>)>,
    Vec<SessionInfo>,
    crate::session::Stats,
    Vec<super::bindings::ProtoStats>,
);

fn observe(
    t: &SessionTable,
    b: &Bindings,
    answers: Vec<(Track, Option<Nat>, Option<AllocError>)>,
) -> Outcome {
    b.audit();
    let (mut s, _) = t.snapshot(T0, usize::MAX, &|_| true);
    s.sort_by_key(|i| (i.key.proto, i.key.int_addr, i.key.int_port, i.key.ext_port));
    let protos = NatProto::ALL.iter().map(|&p| b.stats(p)).collect();
    (answers, s, t.stats(), protos)
}

fn one_by_one(t: &SessionTable, b: &Bindings, reqs: &[Request]) -> Outcome {
    let answers = reqs
        .iter()
        .map(|r| {
            let mut err = None;
            let mut bind = || match bind_for(b, r, T0) {
                Ok(port) => Some(Nat { port, addr: 0 }),
                Err(e) => {
                    err = Some(e);
                    None
                }
            };
            let (tr, nat) = t.track_nat(r, T0, &mut bind);
            (tr, nat, err)
        })
        .collect();
    observe(t, b, answers)
}

/// `reqs` in vectors of `vector` through `track_nat_batch`.
fn batched(t: &SessionTable, b: &Bindings, reqs: &[Request], vector: usize) -> Outcome {
    let mut answers = Vec::new();
    for v in reqs.chunks(vector) {
        let mut out = vec![(Track::NotFound, None); v.len()];
        let mut errs = vec![None; v.len()];
        let mut binds = 0;
        let bind = |j: usize| {
            binds += 1;
            match bind_for(b, &v[j], T0) {
                Ok(port) => Some(Nat { port, addr: 0 }),
                Err(e) => {
                    errs[j] = Some(e);
                    None
                }
            }
        };
        t.track_nat_batch(v, T0, bind, &mut out);
        answers.extend(out.iter().zip(errs).map(|(&(tr, n), e)| (tr, n, e)));
    }
    observe(t, b, answers)
}

fn pool() -> PortPool {
    PortPool::Range {
        first: 7000,
        last: 7005,
    }
}

#[test]
fn the_batch_gives_what_one_at_a_time_gives() {
    let reqs = traffic();
    let (t, b) = setup(pool(), 0);
    let want = one_by_one(&t, &b, &reqs);
    // The traffic does reach both refusals, and both kinds of answer.
    let errs: Vec<_> = want.0.iter().filter_map(|a| a.2).collect();
    assert!(errs.contains(&AllocError::Exhausted) && errs.contains(&AllocError::HostLimit));
    assert!(want.0.iter().any(|a| matches!(a.0, Track::Existing(_))));
    assert!(want.0.iter().any(|a| matches!(a.0, Track::Invalid(_))));
    assert!(want.0.iter().any(|a| a.0 == Track::NotFound));
    assert!(want.2.refused > 0);
    // Per-chunk and per-shard locking, a vector of a few chunks (with a
    // partial one) and one of a single chunk.
    for workers in [1, 0] {
        for vector in [256, 32, 7] {
            let (t, b) = setup(pool(), workers);
            let got = batched(&t, &b, &reqs, vector);
            assert_eq!(got.0, want.0, "answers, workers {workers}, vector {vector}");
            assert_eq!(
                got.1, want.1,
                "sessions, workers {workers}, vector {vector}"
            );
            assert_eq!(
                got.2, want.2,
                "counters, workers {workers}, vector {vector}"
            );
            assert_eq!(
                got.3, want.3,
                "mappings, workers {workers}, vector {vector}"
            );
        }
    }
}

#[test]
fn one_new_flow_twice_in_a_chunk_makes_one_session_and_one_binding() {
    for workers in [1, 0] {
        let (t, b) = setup(pool(), workers);
        let k = key(17, 1, 40000, 53);
        let other = key(17, 2, 40000, 53);
        let reqs: Vec<Request> = [k, k, other, k]
            .iter()
            .map(|&k| req(k, Segment::Udp, Dir::Out, true))
            .collect();
        let mut out = [(Track::NotFound, None); 4];
        let mut bound = Vec::new();
        t.track_nat_batch(
            &reqs,
            T0,
            |j| {
                bound.push(j);
                bind_for(&b, &reqs[j], T0)
                    .ok()
                    .map(|port| Nat { port, addr: 0 })
            },
            &mut out,
        );
        assert_eq!(bound, [0, 2], "a bind per new session only");
        assert!(matches!(out[0].0, Track::Created(_)));
        assert!(matches!(out[1].0, Track::Existing(_)));
        assert!(matches!(out[3].0, Track::Existing(_)));
        let nat = out[0].1.expect("translated");
        assert_eq!((out[1].1, out[3].1), (Some(nat), Some(nat)));
        assert_ne!(out[2].1, Some(nat));
        assert_eq!(b.refs(NatProto::Udp, nat.port), 1);
        assert_eq!(t.stats().created, 2);
        b.audit();
    }
}

#[test]
fn a_failed_bind_in_a_chunk_leaves_no_session_and_sessions_without_one_stay() {
    let one = PortPool::Range {
        first: 7000,
        last: 7000,
    };
    let (t, b) = setup(one, 1);
    // A session tracked without a translation (as before NAPT was on).
    let bare = key(17, 3, 1234, 53);
    let made = t.track(&bare, &Segment::Udp, Dir::Out, 60, T0, true);
    assert!(matches!(made, Track::Created(_)));
    let (a, c) = (key(17, 1, 40000, 53), key(17, 2, 40000, 53));
    let reqs = [
        req(a, Segment::Udp, Dir::Out, true),
        req(c, Segment::Udp, Dir::Out, true),
        req(bare, Segment::Udp, Dir::In, false),
        req(c, Segment::Udp, Dir::Out, true),
        req(a, Segment::Udp, Dir::Out, true),
    ];
    let mut out = [(Track::NotFound, None); 5];
    let mut errs = [None; 5];
    let bind = |j: usize| match bind_for(&b, &reqs[j], T0) {
        Ok(port) => Some(Nat { port, addr: 0 }),
        Err(e) => {
            errs[j] = Some(e);
            None
        }
    };
    t.track_nat_batch(&reqs, T0, bind, &mut out);
    assert!(matches!(
        out[0],
        (Track::Created(_), Some(Nat { port: 7000, .. }))
    ));
    // Refused, both times, and never half-made.
    assert_eq!(out[1], (Track::Refused, None));
    assert_eq!(out[3], (Track::Refused, None));
    assert_eq!(errs[1], Some(AllocError::Exhausted));
    assert_eq!(t.lookup(&c, T0), None);
    // `create` false: found, refreshed, left without a translation.
    assert!(matches!(out[2], (Track::Existing(_), None)));
    assert!(matches!(
        out[4],
        (Track::Existing(_), Some(Nat { port: 7000, .. }))
    ));
    let st = t.stats();
    assert_eq!((st.active, st.created, st.refused), (2, 2, 2));
    b.audit();
}
