//! Forwarder behaviour on a fake clock against a hand-built upstream, and
//! the TCP front driven by a second smoltcp stack wired back to back.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::jitter::Jitter;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Cidr, Ipv6Cidr};

use super::*;
use crate::dns::{encode_name, CLASS_IN, FLAG_QR, FLAG_RA, FLAG_RD, FLAG_TC, TYPE_AAAA};
use crate::dns::{RCODE_FORMERR, TYPE_OPT};
use crate::smoldev::QueueDevice;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const TYPE_A: u16 = 1;
const UP1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53);
const UP2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x54);
const LAN_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const LAN_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const HOST_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const HOST_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10);

fn client() -> SocketAddr {
    SocketAddr::new(HOST_V4.into(), 40000)
}

fn local() -> IpAddr {
    LAN_V4.into()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn question(name: &str, qtype: u16) -> Vec<u8> {
    let mut q = Vec::new();
    encode_name(name, &mut q).unwrap();
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q
}

/// Appends an OPT record without options, byte by byte (tests also build
/// messages hickory would refuse to write, such as two OPT records).
fn push_opt(out: &mut Vec<u8>, udp_size: u16, ext_rcode: u8, flags: u16) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&udp_size.to_be_bytes());
    out.push(ext_rcode);
    out.push(0); // version
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
}

/// A header followed by the question (if any) and an OPT record (if
/// `opt` is `Some((udp_size, ext_rcode, flags))`); no other records.
fn raw_message(
    id: u16,
    flags: u16,
    question: Option<&[u8]>,
    opt: Option<(u16, u8, u16)>,
) -> Vec<u8> {
    let mut msg = vec![0; HEADER_LEN];
    {
        let mut header = Packet::new_unchecked(&mut msg[..]);
        header.set_id(id);
        header.set_flags(flags);
        header.set_question_count(u16::from(question.is_some()));
        header.set_additional_count(u16::from(opt.is_some()));
    }
    if let Some(question) = question {
        msg.extend_from_slice(question);
    }
    if let Some((udp_size, ext_rcode, flags)) = opt {
        push_opt(&mut msg, udp_size, ext_rcode, flags);
    }
    msg
}

/// A recursive query, with an OPT of `edns` octets if given.
fn query(id: u16, name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    raw_message(
        id,
        FLAG_RD,
        Some(&question(name, qtype)),
        edns.map(|size| (size, 0, 0)),
    )
}

struct Rec {
    rtype: u16,
    ttl: u32,
    rdata: Vec<u8>,
}

fn a(ttl: u32, last: u8) -> Rec {
    Rec {
        rtype: TYPE_A,
        ttl,
        rdata: vec![192, 0, 2, last],
    }
}

fn push_rr(msg: &mut Vec<u8>, rtype: u16, ttl: u32, rdata: &[u8]) {
    msg.extend_from_slice(&[0xc0, 0x0c]); // owner: the question name
    msg.extend_from_slice(&rtype.to_be_bytes());
    msg.extend_from_slice(&CLASS_IN.to_be_bytes());
    msg.extend_from_slice(&ttl.to_be_bytes());
    msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    msg.extend_from_slice(rdata);
}

/// The answer a server gives to `query` (a forwarded query): same id and
/// question, `answers`, an SOA `(ttl, minimum)` in the authority section,
/// and an OPT if the query had one.
fn answer(query: &[u8], flags: u16, answers: &[Rec], soa: Option<(u32, u32)>) -> Vec<u8> {
    let (q, _, _) = wire::question(query).unwrap();
    let header = Packet::new_checked(query).unwrap();
    let had_opt = header.additional_count() > 0;
    let mut msg = raw_message(
        header.id(),
        FLAG_QR | FLAG_RD | FLAG_RA | flags,
        Some(&query[q]),
        None,
    );
    for rec in answers {
        push_rr(&mut msg, rec.rtype, rec.ttl, &rec.rdata);
    }
    if let Some((ttl, minimum)) = soa {
        let mut rdata = Vec::new();
        encode_name("ns.example", &mut rdata).unwrap();
        encode_name("hostmaster.example", &mut rdata).unwrap();
        for value in [1u32, 7200, 900, 1_209_600, minimum] {
            rdata.extend_from_slice(&value.to_be_bytes());
        }
        push_rr(&mut msg, wire::TYPE_SOA, ttl, &rdata);
    }
    if had_opt {
        push_opt(&mut msg, 4096, 0, 0);
    }
    let mut header = Packet::new_unchecked(&mut msg[..]);
    header.set_answer_count(answers.len() as u16);
    header.set_authority_count(u16::from(soa.is_some()));
    header.set_additional_count(u16::from(had_opt));
    msg
}

/// The one Forward in `out` (which is emptied).
fn take_forward(out: &mut Vec<Action>) -> (Ipv6Addr, u16, Vec<u8>) {
    assert_eq!(out.len(), 1, "expected one action: {out:?}");
    match out.pop().unwrap() {
        Action::Forward {
            upstream,
            src_port,
            payload,
        } => {
            assert!(src_port >= EPHEMERAL_PORT_FIRST);
            (upstream, src_port, payload)
        }
        other => panic!("expected a forward, got {other:?}"),
    }
}

/// The one Reply in `out` (which is emptied), sent to `client()` from
/// `local()`:53.
fn take_reply(out: &mut Vec<Action>) -> Vec<u8> {
    take_reply_to(out, client())
}

fn take_reply_to(out: &mut Vec<Action>, to_client: SocketAddr) -> Vec<u8> {
    assert_eq!(out.len(), 1, "expected one action: {out:?}");
    match out.pop().unwrap() {
        Action::Reply {
            to,
            local: from,
            from_port,
            payload,
        } => {
            assert_eq!(to, to_client);
            assert_eq!(from, local());
            assert_eq!(from_port, 53);
            payload
        }
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn header(msg: &[u8]) -> Packet<&[u8]> {
    Packet::new_checked(msg).unwrap()
}

/// TTLs of the answer records of a reply.
fn answer_ttls(msg: &[u8]) -> Vec<u32> {
    let parsed = wire::parse(msg).unwrap();
    parsed
        .answer_records()
        .iter()
        .map(|rr| rr.raw_ttl)
        .collect()
}

fn proxy(cfg: ProxyConfig) -> DnsProxy {
    let mut p = DnsProxy::new(cfg);
    p.set_upstreams(&[UP1, UP2]);
    p
}

/// A full UDP round trip: the query is forwarded, answered by the
/// upstream it went to, and the reply returned.
fn round_trip(
    p: &mut DnsProxy,
    now: Instant,
    q: &[u8],
    make: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let mut out = Vec::new();
    p.handle_query(now, client(), local(), q, &mut out);
    let (upstream, port, fwd) = take_forward(&mut out);
    assert!(p.handle_upstream(now, upstream, 53, port, &make(&fwd), &mut out));
    take_reply(&mut out)
}

fn poll(p: &mut DnsProxy, now: Instant, out: &mut Vec<Action>) -> Option<Instant> {
    let mut ip = Vec::new();
    let next = p.poll(now, out, &mut ip);
    assert!(ip.is_empty());
    next
}

// ---------------------------------------------------------------------------
// UDP forwarding
// ---------------------------------------------------------------------------

#[test]
fn forwards_and_restores_the_client_id() {
    let t = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    let mut out = Vec::new();
    let q = query(0x1234, "www.example.com", TYPE_A, None);
    p.handle_query(t, client(), local(), &q, &mut out);
    let (upstream, port, fwd) = take_forward(&mut out);
    assert_eq!(upstream, UP1);
    // Rebuilt: same question and RD, a fresh id, and our OPT.
    let fh = header(&fwd);
    assert!(!fh.is_response());
    assert!(fh.recursion_desired());
    assert_eq!(fh.question_count(), 1);
    assert_eq!(fh.additional_count(), 1);
    let (range, _, _) = wire::question(&fwd).unwrap();
    assert_eq!(fwd[range], question("www.example.com", TYPE_A)[..]);
    let opt = wire::parse(&fwd).unwrap().opt.unwrap();
    assert_eq!(opt.udp_size, 1232);
    assert_eq!(opt.flags, 0);

    let ans = answer(&fwd, 0, &[a(300, 1), a(300, 2)], None);
    assert!(p.handle_upstream(t, UP1, 53, port, &ans, &mut out));
    let reply = take_reply(&mut out);
    let h = header(&reply);
    assert_eq!(h.id(), 0x1234);
    assert!(h.is_response());
    assert_eq!(h.rcode(), 0);
    assert_eq!(h.answer_count(), 2);
    // The client sent no OPT, so it gets none.
    assert_eq!(h.additional_count(), 0);
    assert_eq!(reply.len(), ans.len() - 11);
    assert_eq!(answer_ttls(&reply), [300, 300]);

    let c = p.counters();
    assert_eq!(
        (c.rx_query, c.tx_forward, c.rx_upstream, c.tx_reply),
        (1, 1, 1, 1)
    );
    assert_eq!((c.cache_miss, c.cache_insert), (1, 1));
    assert_eq!((p.pending_len(), p.cache_len()), (0, 1));
    // The same answer again finds nothing pending.
    assert!(!p.handle_upstream(t, UP1, 53, port, &ans, &mut out));
    assert!(out.is_empty());
    assert_eq!(p.counters().drop_unmatched, 1);
}

#[test]
fn edns_client_keeps_opt_and_do_bit_goes_upstream() {
    let t = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    let mut out = Vec::new();
    let mut q = query(7, "example.org", TYPE_AAAA, Some(4096));
    // Set DO in the OPT flags.
    let opt_flags = q.len() - 4;
    q[opt_flags] = 0x80;
    p.handle_query(t, client(), local(), &q, &mut out);
    let (_, port, fwd) = take_forward(&mut out);
    let opt = wire::parse(&fwd).unwrap().opt.unwrap();
    assert_eq!((opt.udp_size, opt.flags), (1232, wire::EDNS_DO));
    let ans = answer(
        &fwd,
        0,
        &[Rec {
            rtype: TYPE_AAAA,
            ttl: 60,
            rdata: vec![0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        }],
        None,
    );
    assert!(p.handle_upstream(t, UP1, 53, port, &ans, &mut out));
    let reply = take_reply(&mut out);
    let parsed = wire::parse(&reply).unwrap();
    // The OPT stays, advertising our size rather than upstream's.
    assert_eq!(parsed.opt.unwrap().udp_size, 1232);
    assert_eq!(header(&reply).id(), 7);

    // DO is part of the cache key: the same question without it is a miss.
    p.handle_query(
        t,
        client(),
        local(),
        &query(8, "example.org", TYPE_AAAA, Some(4096)),
        &mut out,
    );
    take_forward(&mut out);
    assert_eq!(p.counters().cache_hit, 0);
}

#[test]
fn cache_hit_decrements_ttls_and_expires() {
    let t = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    let q = query(1, "www.example.com", TYPE_A, None);
    round_trip(&mut p, t, &q, |fwd| {
        answer(fwd, 0, &[a(300, 1), a(200, 2)], None)
    });

    // Lifetime: the smallest answer TTL, 200 s; 30.5 s later both records
    // say 170.
    let mut out = Vec::new();
    let later = t + Duration::from_millis(30_500);
    let q2 = query(0xbeef, "www.example.com", TYPE_A, None);
    p.handle_query(later, client(), local(), &q2, &mut out);
    let reply = take_reply(&mut out);
    assert_eq!(header(&reply).id(), 0xbeef);
    assert!(!header(&reply).is_authoritative());
    assert_eq!(answer_ttls(&reply), [170, 170]);
    assert_eq!(p.counters().cache_hit, 1);

    // Just before expiry: TTL 1; at expiry: forwarded again.
    p.handle_query(t + secs(199), client(), local(), &q2, &mut out);
    assert_eq!(answer_ttls(&take_reply(&mut out)), [1, 1]);
    p.handle_query(t + secs(200), client(), local(), &q2, &mut out);
    take_forward(&mut out);
    assert_eq!(p.counters().cache_hit, 2);
    assert_eq!(p.counters().cache_miss, 2);
}

#[test]
fn cache_lifetime_is_clamped() {
    let t = Instant::now();
    let cfg = ProxyConfig {
        min_ttl: 120,
        max_ttl: 600,
        ..ProxyConfig::default()
    };
    let mut p = proxy(cfg);
    let short = query(1, "short.example", TYPE_A, None);
    let long = query(2, "long.example", TYPE_A, None);
    round_trip(&mut p, t, &short, |fwd| answer(fwd, 0, &[a(30, 1)], None));
    round_trip(&mut p, t, &long, |fwd| {
        answer(fwd, 0, &[a(86_400, 1)], None)
    });
    let mut out = Vec::new();
    // Raised to 120 s: still served at 100 s, with TTL 0.
    p.handle_query(t + secs(100), client(), local(), &short, &mut out);
    assert_eq!(answer_ttls(&take_reply(&mut out)), [0]);
    p.handle_query(t + secs(120), client(), local(), &short, &mut out);
    take_forward(&mut out);
    // Cut to 600 s, and the TTL served never exceeds what is left.
    p.handle_query(t + secs(100), client(), local(), &long, &mut out);
    assert_eq!(answer_ttls(&take_reply(&mut out)), [500]);
    p.handle_query(t + secs(600), client(), local(), &long, &mut out);
    take_forward(&mut out);
}

#[test]
fn ttl_zero_is_not_cached() {
    let t = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    let q = query(1, "zero.example", TYPE_A, None);
    round_trip(&mut p, t, &q, |fwd| answer(fwd, 0, &[a(0, 1)], None));
    assert_eq!(p.cache_len(), 0);
}

#[test]
fn nxdomain_and_nodata_are_cached_from_the_soa() {
    let t = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    let mut out = Vec::new();

    // NXDOMAIN, SOA TTL 3600 and MINIMUM 600: capped at 300 s.
    let nx = query(1, "nope.example", TYPE_A, None);
    let reply = round_trip(&mut p, t, &nx, |fwd| {
        answer(fwd, u16::from(RCODE_NXDOMAIN), &[], Some((3600, 600)))
    });
    assert_eq!(header(&reply).rcode(), RCODE_NXDOMAIN);
    p.handle_query(t + secs(299), client(), local(), &nx, &mut out);
    let reply = take_reply(&mut out);
    assert_eq!(header(&reply).rcode(), RCODE_NXDOMAIN);
    assert_eq!(header(&reply).authority_count(), 1);
    // The SOA's TTL counts down with the entry.
    let soa_ttl = wire::parse(&reply).unwrap().authority_records()[0].raw_ttl;
    assert_eq!(soa_ttl, 1);
    p.handle_query(t + secs(300), client(), local(), &nx, &mut out);
    take_forward(&mut out);
    out.clear();

    // NODATA: min(SOA TTL 60, MINIMUM 3600) = 60 s.
    let nodata = query(2, "v4only.example", TYPE_AAAA, None);
    round_trip(&mut p, t, &nodata, |fwd| {
        answer(fwd, 0, &[], Some((60, 3600)))
    });
    p.handle_query(t + secs(59), client(), local(), &nodata, &mut out);
    assert_eq!(header(&take_reply(&mut out)).answer_count(), 0);
    p.handle_query(t + secs(60), client(), local(), &nodata, &mut out);
    take_forward(&mut out);
    out.clear();

    // Without an SOA there is nothing to time it by: not cached.
    let before = p.counters().cache_insert;
    let bare = query(3, "bare.example", TYPE_A, None);
    round_trip(&mut p, t, &bare, |fwd| {
        answer(fwd, u16::from(RCODE_NXDOMAIN), &[], None)
    });
    assert_eq!(p.counters().cache_insert, before);
}

#[test]
fn servfail_and_refused_answers_are_relayed_not_cached() {
    let t = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    for rcode in [RCODE_SERVFAIL, crate::dns::RCODE_REFUSED] {
        let q = query(9, "broken.example", TYPE_A, None);
        let reply = round_trip(&mut p, t, &q, |fwd| {
            answer(fwd, u16::from(rcode), &[], Some((60, 60)))
        });
        assert_eq!(header(&reply).rcode(), rcode);
    }
    assert_eq!(p.cache_len(), 0);
}

#[test]
fn question_case_is_the_clients() {
    let t = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    let mut out = Vec::new();
    let q = query(1, "WwW.ExAmPlE.CoM", TYPE_A, None);
    p.handle_query(t, client(), local(), &q, &mut out);
    let (_, port, fwd) = take_forward(&mut out);
    let (range, _, _) = wire::question(&fwd).unwrap();
    assert_eq!(
        &fwd[range.clone()],
        &question("WwW.ExAmPlE.CoM", TYPE_A)[..]
    );
    // A server that lower-cases the echo is still matched.
    let mut lowered = fwd.clone();
    lowered[range].make_ascii_lowercase();
    let ans = answer(&lowered, 0, &[a(300, 1)], None);
    assert!(p.handle_upstream(t, UP1, 53, port, &ans, &mut out));
    let reply = take_reply(&mut out);
    let (range, _, _) = wire::question(&reply).unwrap();
    assert_eq!(&reply[range], &question("WwW.ExAmPlE.CoM", TYPE_A)[..]);

    // The cache is case-insensitive and echoes each client's spelling.
    let q2 = query(2, "www.EXAMPLE.com", TYPE_A, None);
    p.handle_query(t, client(), local(), &q2, &mut out);
    let reply = take_reply(&mut out);
    let (range, _, _) = wire::question(&reply).unwrap();
    assert_eq!(&reply[range], &question("www.EXAMPLE.com", TYPE_A)[..]);
    assert_eq!(p.counters().cache_hit, 1);
}

#[test]
fn answers_not_matching_the_query_are_ignored() {
    let t = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    let mut out = Vec::new();
    let q = query(0x4242, "www.example.com", TYPE_A, None);
    p.handle_query(t, client(), local(), &q, &mut out);
    let (upstream, port, fwd) = take_forward(&mut out);
    assert_eq!(upstream, UP1);
    let good = answer(&fwd, 0, &[a(300, 1)], None);

    let mut wrong_id = good.clone();
    wrong_id[0] ^= 0x01;
    let mut not_response = good.clone();
    not_response[2] &= 0x7f;
    let other_question = answer(
        &query(header(&fwd).id(), "evil.example", TYPE_A, Some(1232)),
        0,
        &[a(300, 6)],
        None,
    );
    let other_type = answer(
        &query(header(&fwd).id(), "www.example.com", TYPE_AAAA, Some(1232)),
        0,
        &[],
        None,
    );
    let cases: [(Ipv6Addr, u16, u16, &[u8]); 8] = [
        (UP2, 53, port, &good),           // another server
        (UP1, 5353, port, &good),         // another source port
        (UP1, 53, port ^ 1, &good),       // another of our ports
        (UP1, 53, port, &wrong_id),       // another id
        (UP1, 53, port, &not_response),   // QR clear
        (UP1, 53, port, &other_question), // another name
        (UP1, 53, port, &other_type),     // another type
        (UP1, 53, port, &good[..5]),      // not even a header
    ];
    for (from, from_port, dst_port, payload) in cases {
        assert!(!p.handle_upstream(t, from, from_port, dst_port, payload, &mut out));
        assert!(out.is_empty());
    }
    assert_eq!(p.counters().drop_unmatched, 8);

    // Right id and question but broken framing: maybe forged, keep waiting.
    let mut broken = good.clone();
    broken.truncate(broken.len() - 3);
    assert!(!p.handle_upstream(t, UP1, 53, port, &broken, &mut out));
    assert_eq!(p.counters().drop_upstream_malformed, 1);
    assert_eq!(p.pending_len(), 1);

    assert!(p.handle_upstream(t, UP1, 53, port, &good, &mut out));
    assert_eq!(header(&take_reply(&mut out)).id(), 0x4242);
}

#[test]
fn timeout_retries_the_next_upstream_then_servfails() {
    let t = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    let mut out = Vec::new();
    let q = query(0x77, "slow.example", TYPE_A, Some(1232));
    p.handle_query(t, client(), local(), &q, &mut out);
    let (first, port1, fwd1) = take_forward(&mut out);
    assert_eq!(first, UP1);
    assert_eq!(poll(&mut p, t, &mut out), Some(t + secs(2)));
    assert_eq!(
        poll(&mut p, t + Duration::from_millis(1999), &mut out),
        Some(t + secs(2))
    );
    assert!(out.is_empty());

    assert_eq!(poll(&mut p, t + secs(2), &mut out), Some(t + secs(4)));
    let (second, port2, fwd2) = take_forward(&mut out);
    assert_eq!(second, UP2);
    assert_ne!((port1, header(&fwd1).id()), (port2, header(&fwd2).id()));
    // The first server's late answer no longer matches.
    let late = answer(&fwd1, 0, &[a(300, 1)], None);
    assert!(!p.handle_upstream(t + secs(3), UP1, 53, port1, &late, &mut out));

    assert_eq!(poll(&mut p, t + secs(4), &mut out), Some(t + secs(6)));
    let (third, _, _) = take_forward(&mut out);
    assert_eq!(third, UP1);

    assert_eq!(poll(&mut p, t + secs(6), &mut out), None);
    let reply = take_reply(&mut out);
    let h = header(&reply);
    assert_eq!((h.id(), h.rcode()), (0x77, RCODE_SERVFAIL));
    assert_eq!(h.question_count(), 1);
    // An EDNS client gets an OPT with the error.
    assert!(wire::parse(&reply).unwrap().opt.is_some());
    let c = p.counters();
    assert_eq!((c.tx_forward, c.tx_retry, c.servfail_timeout), (1, 2, 1));
    assert_eq!(p.pending_len(), 0);
}

#[test]
fn a_silent_server_loses_its_preference() {
    let t = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    let mut out = Vec::new();
    p.handle_query(
        t,
        client(),
        local(),
        &query(1, "a.example", TYPE_A, None),
        &mut out,
    );
    assert_eq!(take_forward(&mut out).0, UP1);
    poll(&mut p, t + secs(2), &mut out);
    let (retry_to, port, fwd) = take_forward(&mut out);
    assert_eq!(retry_to, UP2);
    // New queries go to UP2 first now, and keep going there once it answers.
    p.handle_query(
        t + secs(2),
        client(),
        local(),
        &query(2, "b.example", TYPE_A, None),
        &mut out,
    );
    assert_eq!(take_forward(&mut out).0, UP2);
    assert!(p.handle_upstream(
        t + secs(3),
        UP2,
        53,
        port,
        &answer(&fwd, 0, &[a(5, 1)], None),
        &mut out
    ));
    out.clear();
    p.handle_query(
        t + secs(3),
        client(),
        local(),
        &query(3, "c.example", TYPE_A, None),
        &mut out,
    );
    assert_eq!(take_forward(&mut out).0, UP2);
}

#[test]
fn no_upstream_is_servfail() {
    let t = Instant::now();
    let mut p = DnsProxy::new(ProxyConfig::default());
    let mut out = Vec::new();
    p.handle_query(
        t,
        client(),
        local(),
        &query(5, "x.example", TYPE_A, None),
        &mut out,
    );
    let reply = take_reply(&mut out);
    assert_eq!(
        (header(&reply).id(), header(&reply).rcode()),
        (5, RCODE_SERVFAIL)
    );
    assert_eq!(p.counters().servfail_no_upstream, 1);
    // Bogus servers are refused too.
    p.set_upstreams(&[Ipv6Addr::UNSPECIFIED, "ff02::1".parse().unwrap(), UP1, UP1]);
    assert_eq!(p.upstreams(), [UP1]);
    assert_eq!(p.counters().upstreams_ignored, 3);
}

#[test]
fn full_pending_table_is_servfail() {
    let t = Instant::now();
    let cfg = ProxyConfig {
        max_pending: 2,
        ..ProxyConfig::default()
    };
    let mut p = proxy(cfg);
    let mut out = Vec::new();
    for (id, name) in [(1, "a.example"), (2, "b.example")] {
        p.handle_query(
            t,
            client(),
            local(),
            &query(id, name, TYPE_A, None),
            &mut out,
        );
        take_forward(&mut out);
    }
    p.handle_query(
        t,
        client(),
        local(),
        &query(3, "c.example", TYPE_A, None),
        &mut out,
    );
    let reply = take_reply(&mut out);
    assert_eq!(
        (header(&reply).id(), header(&reply).rcode()),
        (3, RCODE_SERVFAIL)
    );
    assert_eq!(p.counters().pending_full, 1);
    assert_eq!(p.pending_len(), 2);
}

#[test]
fn client_retransmissions_are_not_forwarded_twice() {
    let t = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    let mut out = Vec::new();
    let q = query(1, "a.example", TYPE_A, None);
    p.handle_query(t, client(), local(), &q, &mut out);
    take_forward(&mut out);
    p.handle_query(t + secs(1), client(), local(), &q, &mut out);
    assert!(out.is_empty());
    assert_eq!(p.counters().drop_duplicate, 1);
    // Another client asking the same is forwarded on its own.
    let other = SocketAddr::new(HOST_V4.into(), 40001);
    p.handle_query(t + secs(1), other, local(), &q, &mut out);
    take_forward(&mut out);
}

#[test]
fn malformed_queries_get_formerr_or_are_dropped() {
    let t = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    let mut out = Vec::new();

    // Unreadable header, and responses: dropped without a word.
    p.handle_query(t, client(), local(), &[0x12, 0x34, 0x01], &mut out);
    let mut response = query(1, "a.example", TYPE_A, None);
    response[2] |= 0x80;
    p.handle_query(t, client(), local(), &response, &mut out);
    assert!(out.is_empty());
    assert_eq!(p.counters().drop_malformed, 2);

    let good = query(0x5151, "a.example", TYPE_A, None);
    let mut no_question = good[..12].to_vec();
    no_question[5] = 0;
    let mut two_questions = good.clone();
    two_questions[5] = 2;
    two_questions.extend_from_slice(&question("b.example", TYPE_A));
    let cut_name = good[..16].to_vec();
    let mut no_type = good.clone();
    no_type.truncate(good.len() - 3);
    let mut pointer = good[..12].to_vec();
    pointer.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    let mut long_label = good[..12].to_vec();
    long_label.push(64);
    long_label.extend_from_slice(&[b'a'; 64]);
    long_label.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut long_name = good[..12].to_vec();
    for _ in 0..5 {
        long_name.push(60);
        long_name.extend_from_slice(&[b'a'; 60]);
    }
    long_name.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut phantom_record = good.clone();
    phantom_record[11] = 1;
    let mut two_opts = query(0x5151, "a.example", TYPE_A, Some(1232));
    push_opt(&mut two_opts, 1232, 0, 0);
    two_opts[11] = 2;
    let mut huge = query(0x5151, "a.example", TYPE_A, None);
    huge.resize(MAX_QUERY_LEN + 1, 0);
    let cases = [
        no_question,
        two_questions,
        cut_name,
        no_type,
        pointer,
        long_label,
        long_name,
        phantom_record,
        two_opts,
        huge,
    ];
    let n = cases.len() as u64;
    for (i, case) in cases.into_iter().enumerate() {
        p.handle_query(t, client(), local(), &case, &mut out);
        let reply = take_reply(&mut out);
        let h = header(&reply);
        assert_eq!((h.id(), h.rcode()), (0x5151, RCODE_FORMERR), "case {i}");
        assert!(h.is_response());
    }
    assert_eq!(p.counters().formerr, n);

    // Another opcode: NOTIMP, echoing the opcode.
    let mut status = good.clone();
    status[2] = (status[2] & 0x87) | (2 << 3);
    p.handle_query(t, client(), local(), &status, &mut out);
    let reply = take_reply(&mut out);
    assert_eq!(
        (header(&reply).rcode(), header(&reply).opcode()),
        (RCODE_NOTIMP, 2)
    );

    // EDNS version 1: BADVERS (extended rcode 1 in the OPT).
    let mut v1 = query(0x5151, "a.example", TYPE_A, Some(1232));
    let version_at = v1.len() - 5;
    v1[version_at] = 1;
    p.handle_query(t, client(), local(), &v1, &mut out);
    let reply = take_reply(&mut out);
    let parsed = wire::parse(&reply).unwrap();
    assert_eq!(parsed.rcode(), RCODE_BADVERS);
    assert_eq!(parsed.opt.unwrap().version, 0);
    assert_eq!(p.counters().tx_forward, 0);
}

#[test]
fn large_answers_are_truncated_for_udp_clients() {
    let t = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    let mut out = Vec::new();
    let many: Vec<Rec> = (0..40).map(|i| a(300, i)).collect();
    let q = query(0x10, "big.example", TYPE_A, None);
    let reply = round_trip(&mut p, t, &q, |fwd| {
        let ans = answer(fwd, 0, &many, None);
        assert!(ans.len() > 512 && ans.len() < 1232);
        ans
    });
    // A client without EDNS: 512 octets at most, so header and question
    // with TC.
    let h = header(&reply);
    assert!(h.is_truncated());
    assert_eq!(
        (h.id(), h.answer_count(), h.additional_count()),
        (0x10, 0, 0)
    );
    assert_eq!(reply.len(), 12 + question("big.example", TYPE_A).len());
    assert_eq!(p.counters().truncated, 1);

    // The full answer was cached: an EDNS client gets all of it.
    p.handle_query(
        t,
        client(),
        local(),
        &query(0x11, "big.example", TYPE_A, Some(1232)),
        &mut out,
    );
    let reply = take_reply(&mut out);
    assert!(!header(&reply).is_truncated());
    assert_eq!(header(&reply).answer_count(), 40);

    // An EDNS size below 512 counts as 512.
    p.handle_query(
        t,
        client(),
        local(),
        &query(0x12, "big.example", TYPE_A, Some(100)),
        &mut out,
    );
    let reply = take_reply(&mut out);
    assert!(header(&reply).is_truncated());
    // An EDNS client's truncated reply keeps an OPT.
    assert_eq!(header(&reply).additional_count(), 1);

    // Above udp_payload (1232) nobody gets it over UDP, whatever it asks.
    let huge: Vec<Rec> = (0..80).map(|i| a(300, i)).collect();
    let q = query(0x13, "huge.example", TYPE_A, Some(4096));
    let reply = round_trip(&mut p, t, &q, |fwd| answer(fwd, 0, &huge, None));
    assert!(header(&reply).is_truncated());
    assert_eq!(p.counters().truncated, 3);
}

#[test]
fn upstream_tc_is_relayed_and_not_cached() {
    let t = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    let q = query(0x20, "tc.example", TYPE_A, Some(1232));
    let reply = round_trip(&mut p, t, &q, |fwd| {
        answer(fwd, FLAG_TC, &[a(300, 1)], None)
    });
    assert!(header(&reply).is_truncated());
    assert_eq!(header(&reply).id(), 0x20);
    // Cut in the middle of a record: header and question with TC.
    let reply = round_trip(&mut p, t, &q, |fwd| {
        let mut ans = answer(fwd, FLAG_TC, &[a(300, 1), a(300, 2)], None);
        ans.truncate(ans.len() - 20);
        ans
    });
    let h = header(&reply);
    assert!(h.is_truncated());
    assert_eq!((h.id(), h.answer_count()), (0x20, 0));
    assert_eq!(p.counters().upstream_tc, 2);
    assert_eq!(p.cache_len(), 0);
}

#[test]
fn cache_is_bounded() {
    let t = Instant::now();
    let cfg = ProxyConfig {
        cache_entries: 4,
        ..ProxyConfig::default()
    };
    let mut p = proxy(cfg);
    for i in 0..10u32 {
        let name = format!("n{i}.example");
        let q = query(i as u16, &name, TYPE_A, None);
        round_trip(&mut p, t, &q, |fwd| answer(fwd, 0, &[a(100 + i, 1)], None));
        assert!(p.cache_len() <= 4);
    }
    // The entries expiring soonest made room: the last four are there.
    assert_eq!(p.counters().cache_evict, 6);
    let mut out = Vec::new();
    p.handle_query(
        t,
        client(),
        local(),
        &query(1, "n9.example", TYPE_A, None),
        &mut out,
    );
    take_reply(&mut out);
    p.handle_query(
        t,
        client(),
        local(),
        &query(1, "n0.example", TYPE_A, None),
        &mut out,
    );
    take_forward(&mut out);
}

#[test]
fn counters_are_named_in_kebab_case() {
    let p = DnsProxy::new(ProxyConfig::default());
    let named = p.counters().named();
    for wanted in [
        "rx-query",
        "tx-forward",
        "rx-upstream",
        "tx-reply",
        "cache-hit",
        "cache-miss",
        "drop-malformed",
        "drop-unmatched",
        "servfail-no-upstream",
        "servfail-timeout",
        "pending-full",
        "tcp-accepted",
        "tcp-closed",
        "tcp-rejected",
    ] {
        assert!(named.iter().any(|(name, _)| *name == wanted), "{wanted}");
    }
    assert!(named
        .iter()
        .all(|(name, _)| name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')));
}

// ---------------------------------------------------------------------------
// Fuzzing
// ---------------------------------------------------------------------------

fn mutate(rng: &mut Jitter, mut msg: Vec<u8>) -> Vec<u8> {
    match rng.below(9) {
        0 => {}
        1 | 2 => {
            for _ in 0..=rng.below(4) {
                if !msg.is_empty() {
                    let at = rng.below(msg.len());
                    msg[at] ^= 1 << rng.below(8);
                }
            }
        }
        3 => msg.truncate(rng.below(msg.len() + 1)),
        4 => {
            if !msg.is_empty() {
                let at = rng.below(msg.len());
                msg[at] = rng.next_u64() as u8;
            }
        }
        5 => {
            let at = rng.below(msg.len() + 1);
            let extra: Vec<u8> = (0..rng.below(40)).map(|_| rng.next_u64() as u8).collect();
            msg.splice(at..at, extra);
        }
        6 => {
            // Section counts.
            if msg.len() >= 12 {
                let at = 4 + rng.below(8);
                msg[at] = [0, 1, 2, 0xff][rng.below(4)];
            }
        }
        7 => {
            // A compression pointer somewhere.
            if msg.len() > 13 {
                let at = 12 + rng.below(msg.len() - 13);
                msg[at] = 0xc0 | rng.below(4) as u8;
                msg[at + 1] = rng.next_u64() as u8;
            }
        }
        _ => msg = (0..rng.below(100)).map(|_| rng.next_u64() as u8).collect(),
    }
    msg
}

#[test]
fn fuzz_queries_and_answers() {
    let t = Instant::now();
    let mut rng = Jitter::new(0x5eed_d115);
    let cfg = ProxyConfig {
        cache_entries: 64,
        max_pending: 32,
        ..ProxyConfig::default()
    };
    let mut p = proxy(cfg);
    let names = [
        "a.example",
        "www.example.com",
        "x",
        "long-name.sub.example.net",
    ];
    let mut now = t;
    let mut forwards: Vec<(Ipv6Addr, u16, Vec<u8>)> = Vec::new();
    let mut out = Vec::new();
    let mut ip = Vec::new();
    for _ in 0..100_000 {
        now += Duration::from_millis(rng.below(40) as u64);
        match rng.below(5) {
            0 | 1 => {
                let edns = [None, Some(512), Some(1232), Some(4096)][rng.below(4)];
                let qtype = [TYPE_A, TYPE_AAAA, 16, 255][rng.below(4)];
                let q = query(
                    rng.next_u64() as u16,
                    names[rng.below(names.len())],
                    qtype,
                    edns,
                );
                let from = SocketAddr::new(HOST_V4.into(), 1024 + rng.below(8) as u16);
                p.handle_query(now, from, local(), &mutate(&mut rng, q), &mut out);
            }
            2 | 3 => {
                if forwards.is_empty() {
                    continue;
                }
                let (up, port, fwd) = &forwards[rng.below(forwards.len())];
                let n = rng.below(30);
                let recs: Vec<Rec> = (0..n).map(|i| a(rng.below(1000) as u32, i as u8)).collect();
                let rcode = [0, 0, 0, 2, 3, 5][rng.below(6)];
                let flags = rcode | if rng.below(8) == 0 { FLAG_TC } else { 0 };
                let soa =
                    (rng.below(2) == 0).then(|| (rng.below(5000) as u32, rng.below(5000) as u32));
                let ans = mutate(&mut rng, answer(fwd, flags, &recs, soa));
                let from = if rng.below(10) == 0 { UP2 } else { *up };
                p.handle_upstream(now, from, 53, *port, &ans, &mut out);
            }
            _ => {
                p.poll(now, &mut out, &mut ip);
            }
        }
        for action in out.drain(..) {
            match action {
                Action::Forward {
                    upstream,
                    src_port,
                    payload,
                } => {
                    assert!(wire::parse(&payload).is_ok());
                    if forwards.len() == 64 {
                        forwards.remove(0);
                    }
                    forwards.push((upstream, src_port, payload));
                }
                Action::Reply { payload, .. } => {
                    assert!(payload.len() <= 1232);
                    assert!(header(&payload).is_response());
                }
            }
        }
        assert!(ip.is_empty());
        assert!(p.pending_len() <= 32);
        assert!(p.cache_len() <= 64);
    }
    let c = p.counters();
    // The loop reached every path.
    assert!(c.cache_hit > 0 && c.cache_insert > 0 && c.rx_upstream > 0);
    assert!(c.formerr > 0 && c.drop_malformed > 0 && c.drop_unmatched > 0);
    assert!(c.servfail_timeout > 0 && c.truncated > 0);
}

#[test]
fn fuzz_tcp_packets() {
    let t = Instant::now();
    let mut rng = Jitter::new(77);
    let mut p = proxy(ProxyConfig::default());
    p.tcp().set_addrs(
        Some(Ipv4Cidr::new(LAN_V4, 24)),
        vec![Ipv6Cidr::new(LAN_V6, 64)],
    );
    let mut bench = Bench::new(ProxyConfig::default());
    // Real segments from a handshake and a query, to mutate.
    let h = bench.connect(v4_endpoint(), 40100);
    let mut seeds: Vec<Vec<u8>> = bench.host.dev.tx.clone();
    bench
        .host
        .iface
        .poll(bench.smol(), &mut bench.host.dev, &mut bench.host.sockets);
    seeds.extend(bench.host.dev.tx.iter().cloned());
    bench.pump();
    bench
        .socket(h)
        .send_slice(&frame(&query(1, "a.example", TYPE_A, None)))
        .unwrap();
    bench
        .host
        .iface
        .poll(bench.smol(), &mut bench.host.dev, &mut bench.host.sockets);
    seeds.extend(bench.host.dev.tx.iter().cloned());
    assert!(!seeds.is_empty());
    let mut now = t;
    let mut out = Vec::new();
    let mut ip = Vec::new();
    for _ in 0..20_000 {
        now += Duration::from_millis(rng.below(20) as u64);
        let seed = seeds[rng.below(seeds.len())].clone();
        let mut packet = mutate(&mut rng, seed);
        if rng.below(2) == 0 && packet.len() > 20 {
            // Keep it addressed to us so it reaches smoltcp.
            packet[0] = 0x45;
            packet[9] = 6;
            packet[16..20].copy_from_slice(&LAN_V4.octets());
        }
        p.push_tcp_ip(now, &packet);
        if rng.below(4) == 0 {
            p.poll(now, &mut out, &mut ip);
            out.clear();
            ip.clear();
        }
    }
    assert!(p.counters().tcp_drop_not_ours > 0);
}

// ---------------------------------------------------------------------------
// TCP
// ---------------------------------------------------------------------------

/// A LAN host with its own smoltcp stack, wired back to back with the
/// proxy's TCP front.
struct Host {
    iface: Interface,
    dev: QueueDevice,
    sockets: SocketSet<'static>,
}

struct Bench {
    proxy: DnsProxy,
    host: Host,
    base: Instant,
    now: Instant,
    actions: Vec<Action>,
}

fn v4_endpoint() -> IpEndpoint {
    IpEndpoint::new(IpAddress::Ipv4(LAN_V4), 53)
}

fn frame(msg: &[u8]) -> Vec<u8> {
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(msg);
    framed
}

impl Bench {
    fn new(cfg: ProxyConfig) -> Bench {
        let mut proxy = proxy(cfg);
        proxy.tcp().set_addrs(
            Some(Ipv4Cidr::new(LAN_V4, 24)),
            vec![Ipv6Cidr::new(LAN_V6, 64)],
        );
        let (iface, dev) = crate::smoldev::test_client(99, HOST_V4, HOST_V6);
        let now = Instant::now();
        Bench {
            proxy,
            host: Host {
                iface,
                dev,
                sockets: SocketSet::new(Vec::new()),
            },
            base: now,
            now,
            actions: Vec::new(),
        }
    }

    fn smol(&self) -> SmolInstant {
        SmolInstant::from_micros((self.now - self.base).as_micros() as i64)
    }

    fn connect(&mut self, to: IpEndpoint, local_port: u16) -> SocketHandle {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 65536]),
            tcp::SocketBuffer::new(vec![0; 65536]),
        );
        socket
            .connect(self.host.iface.context(), to, local_port)
            .unwrap();
        let handle = self.host.sockets.add(socket);
        self.host
            .iface
            .poll(self.smol(), &mut self.host.dev, &mut self.host.sockets);
        handle
    }

    fn socket(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.host.sockets.get_mut(handle)
    }

    /// Moves packets both ways until neither side has anything to send.
    fn pump(&mut self) {
        for _ in 0..100 {
            let ts = self.smol();
            self.host
                .iface
                .poll(ts, &mut self.host.dev, &mut self.host.sockets);
            let to_proxy = std::mem::take(&mut self.host.dev.tx);
            for packet in &to_proxy {
                self.proxy.push_tcp_ip(self.now, packet);
            }
            let mut to_host = Vec::new();
            self.proxy.poll(self.now, &mut self.actions, &mut to_host);
            if to_proxy.is_empty() && to_host.is_empty() {
                return;
            }
            self.host.dev.rx.extend(to_host);
        }
        panic!("packets kept flowing");
    }

    /// Advances the clock in small steps, pumping, so timers fire.
    fn advance(&mut self, by: Duration) {
        let step = Duration::from_millis(50);
        let end = self.now + by;
        while self.now < end {
            self.now = (self.now + step).min(end);
            self.pump();
        }
    }

    fn take_forward(&mut self) -> (Ipv6Addr, u16, Vec<u8>) {
        let mut forwards: Vec<Action> = self.actions.drain(..).collect();
        take_forward(&mut forwards)
    }

    /// Framed messages the host has received on `handle`.
    fn read_frames(&mut self, handle: SocketHandle) -> Vec<Vec<u8>> {
        let mut bytes = Vec::new();
        let socket = self.socket(handle);
        while socket.can_recv() {
            socket
                .recv(|buf| {
                    bytes.extend_from_slice(buf);
                    (buf.len(), ())
                })
                .unwrap();
        }
        let mut frames = Vec::new();
        let mut rest = &bytes[..];
        while rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            assert!(rest.len() >= 2 + len, "partial frame");
            frames.push(rest[2..2 + len].to_vec());
            rest = &rest[2 + len..];
        }
        assert!(rest.is_empty());
        frames
    }
}

#[test]
fn tcp_query_is_forwarded_and_answered() {
    let mut b = Bench::new(ProxyConfig::default());
    let h = b.connect(v4_endpoint(), 40000);
    b.pump();
    assert_eq!(b.socket(h).state(), tcp::State::Established);
    assert_eq!(b.proxy.counters().tcp_accepted, 1);
    let conns = b.proxy.tcp().connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].peer, SocketAddr::new(HOST_V4.into(), 40000));
    assert_eq!(conns[0].local, IpAddr::from(LAN_V4));

    let q = query(0xabcd, "www.example.com", TYPE_A, None);
    b.socket(h).send_slice(&frame(&q)).unwrap();
    b.pump();
    let (upstream, port, fwd) = b.take_forward();
    assert_eq!(upstream, UP1);
    // TCP clients' queries also carry our OPT upstream.
    assert!(wire::parse(&fwd).unwrap().opt.is_some());
    // A big answer: no truncation on TCP.
    let many: Vec<Rec> = (0..40).map(|i| a(300, i)).collect();
    let ans = answer(&fwd, 0, &many, None);
    let now = b.now;
    assert!(b
        .proxy
        .handle_upstream(now, upstream, 53, port, &ans, &mut b.actions));
    assert!(b.actions.is_empty(), "TCP answers do not leave as UDP");
    b.pump();
    let frames = b.read_frames(h);
    assert_eq!(frames.len(), 1);
    let reply = &frames[0];
    let rh = header(reply);
    assert_eq!((rh.id(), rh.answer_count()), (0xabcd, 40));
    assert!(!rh.is_truncated());
    assert_eq!(rh.additional_count(), 0);
    let c = b.proxy.counters();
    assert_eq!((c.tcp_rx_query, c.tcp_tx_reply, c.tx_reply), (1, 1, 0));
}

#[test]
fn tcp_two_queries_on_one_connection() {
    let mut b = Bench::new(ProxyConfig::default());
    let h = b.connect(v4_endpoint(), 40000);
    b.pump();
    // Both in one segment.
    let mut both = frame(&query(1, "one.example", TYPE_A, None));
    both.extend(frame(&query(2, "two.example", TYPE_A, None)));
    b.socket(h).send_slice(&both).unwrap();
    b.pump();
    let mut forwards: Vec<Action> = b.actions.drain(..).collect();
    assert_eq!(forwards.len(), 2);
    let (up2, port2, fwd2) = take_forward(&mut forwards.split_off(1));
    let (up1, port1, fwd1) = take_forward(&mut forwards);
    // Answered in the other order: written as they come.
    let now = b.now;
    let ans2 = answer(&fwd2, 0, &[a(60, 2)], None);
    assert!(b
        .proxy
        .handle_upstream(now, up2, 53, port2, &ans2, &mut b.actions));
    b.pump();
    let ans1 = answer(&fwd1, 0, &[a(60, 1)], None);
    assert!(b
        .proxy
        .handle_upstream(now, up1, 53, port1, &ans1, &mut b.actions));
    b.pump();
    let ids: Vec<u16> = b.read_frames(h).iter().map(|m| header(m).id()).collect();
    assert_eq!(ids, [2, 1]);

    // A third one from the cache, on the same connection.
    b.socket(h)
        .send_slice(&frame(&query(3, "one.example", TYPE_A, None)))
        .unwrap();
    b.pump();
    assert!(b.actions.is_empty());
    let frames = b.read_frames(h);
    assert_eq!(frames.len(), 1);
    assert_eq!(header(&frames[0]).id(), 3);
    assert_eq!(b.proxy.counters().tcp_accepted, 1);
}

#[test]
fn tcp_over_ipv6_and_upstream_tc_passes_through() {
    let mut b = Bench::new(ProxyConfig::default());
    let h = b.connect(IpEndpoint::new(IpAddress::Ipv6(LAN_V6), 53), 40000);
    b.pump();
    assert_eq!(b.socket(h).state(), tcp::State::Established);
    b.socket(h)
        .send_slice(&frame(&query(9, "tc.example", TYPE_A, Some(1232))))
        .unwrap();
    b.pump();
    let (upstream, port, fwd) = b.take_forward();
    let now = b.now;
    let ans = answer(&fwd, FLAG_TC, &[], None);
    assert!(b
        .proxy
        .handle_upstream(now, upstream, 53, port, &ans, &mut b.actions));
    b.pump();
    let frames = b.read_frames(h);
    assert_eq!(frames.len(), 1);
    assert!(header(&frames[0]).is_truncated());
    assert_eq!(b.proxy.counters().upstream_tc, 1);
}

#[test]
fn tcp_to_other_addresses_or_ports_is_dropped() {
    let mut b = Bench::new(ProxyConfig::default());
    let h = b.connect(
        IpEndpoint::new(IpAddress::Ipv4(Ipv4Addr::new(192, 168, 1, 99)), 53),
        40000,
    );
    b.pump();
    let h2 = b.connect(IpEndpoint::new(IpAddress::Ipv4(LAN_V4), 80), 40001);
    b.pump();
    assert_eq!(b.socket(h).state(), tcp::State::SynSent);
    assert_eq!(b.socket(h2).state(), tcp::State::SynSent);
    assert_eq!(b.proxy.counters().tcp_drop_not_ours, 2);
    assert_eq!(b.proxy.counters().tcp_rx_packets, 0);
}

#[test]
fn tcp_slots_exhausted_new_syn_gets_rst() {
    let cfg = ProxyConfig {
        tcp_slots: 2,
        ..ProxyConfig::default()
    };
    let mut b = Bench::new(cfg);
    let h1 = b.connect(v4_endpoint(), 40001);
    let h2 = b.connect(v4_endpoint(), 40002);
    b.pump();
    assert_eq!(b.proxy.tcp().listening(), 0);
    let h3 = b.connect(v4_endpoint(), 40003);
    b.pump();
    assert_eq!(b.socket(h1).state(), tcp::State::Established);
    assert_eq!(b.socket(h2).state(), tcp::State::Established);
    // Refused with RST: the client's socket is closed at once.
    assert_eq!(b.socket(h3).state(), tcp::State::Closed);
    let c = b.proxy.counters();
    assert_eq!((c.tcp_accepted, c.tcp_rejected), (2, 1));

    // Freeing a slot lets the next one in.
    b.socket(h1).close();
    b.pump();
    assert_eq!(b.proxy.counters().tcp_closed, 1);
    assert_eq!(b.proxy.tcp().listening(), 1);
    let h4 = b.connect(v4_endpoint(), 40004);
    b.pump();
    assert_eq!(b.socket(h4).state(), tcp::State::Established);
    assert_eq!(b.proxy.counters().tcp_accepted, 3);
}

#[test]
fn tcp_idle_connection_is_closed() {
    let mut b = Bench::new(ProxyConfig::default());
    let h = b.connect(v4_endpoint(), 40000);
    b.pump();
    // The deadline handed back is the idle timeout.
    let mut ip = Vec::new();
    let now = b.now;
    let next = b.proxy.poll(now, &mut b.actions, &mut ip);
    assert_eq!(next, Some(now + secs(10)));
    b.advance(Duration::from_millis(9_900));
    assert_eq!(b.socket(h).state(), tcp::State::Established);
    b.advance(Duration::from_millis(200));
    // Our FIN arrived.
    assert_eq!(b.socket(h).state(), tcp::State::CloseWait);
    assert_eq!(b.proxy.counters().tcp_idle_timeout, 1);
    b.socket(h).close();
    b.pump();
    assert_eq!(b.socket(h).state(), tcp::State::Closed);
    let c = b.proxy.counters();
    assert_eq!((c.tcp_accepted, c.tcp_closed), (1, 1));
    assert_eq!(b.proxy.tcp().listening(), 8);
    assert!(b.proxy.tcp().connections().is_empty());
}

#[test]
fn tcp_peer_that_never_closes_is_aborted() {
    let mut b = Bench::new(ProxyConfig::default());
    let h = b.connect(v4_endpoint(), 40000);
    b.pump();
    b.advance(secs(11));
    assert_eq!(b.socket(h).state(), tcp::State::CloseWait);
    // The host never closes its side: cut off one more idle timeout later.
    b.advance(secs(11));
    assert_eq!(b.proxy.counters().tcp_aborted, 1);
    assert_eq!(b.proxy.counters().tcp_closed, 1);
    assert_eq!(b.proxy.tcp().listening(), 8);
}

#[test]
fn tcp_client_half_close_still_gets_its_answer() {
    let mut b = Bench::new(ProxyConfig::default());
    let h = b.connect(v4_endpoint(), 40000);
    b.pump();
    b.socket(h)
        .send_slice(&frame(&query(5, "late.example", TYPE_A, None)))
        .unwrap();
    b.socket(h).close();
    b.pump();
    assert!(matches!(
        b.socket(h).state(),
        tcp::State::FinWait1 | tcp::State::FinWait2
    ));
    let (upstream, port, fwd) = b.take_forward();
    b.advance(secs(1));
    let now = b.now;
    let ans = answer(&fwd, 0, &[a(60, 5)], None);
    assert!(b
        .proxy
        .handle_upstream(now, upstream, 53, port, &ans, &mut b.actions));
    b.pump();
    let frames = b.read_frames(h);
    assert_eq!(frames.len(), 1);
    assert_eq!(header(&frames[0]).id(), 5);
    // Then our FIN: the host's socket ends in TIME-WAIT.
    assert_eq!(b.socket(h).state(), tcp::State::TimeWait);
    // The host's last ACK is a delayed one.
    b.advance(Duration::from_millis(100));
    assert_eq!(b.proxy.counters().tcp_closed, 1);
    assert_eq!(b.proxy.tcp().listening(), 8);
}

#[test]
fn tcp_answer_for_a_gone_connection_is_dropped() {
    let mut b = Bench::new(ProxyConfig::default());
    let h = b.connect(v4_endpoint(), 40000);
    b.pump();
    b.socket(h)
        .send_slice(&frame(&query(6, "gone.example", TYPE_A, None)))
        .unwrap();
    b.pump();
    let (upstream, port, fwd) = b.take_forward();
    b.socket(h).abort();
    b.pump();
    assert_eq!(b.proxy.counters().tcp_closed, 1);
    let now = b.now;
    let ans = answer(&fwd, 0, &[a(60, 6)], None);
    assert!(b
        .proxy
        .handle_upstream(now, upstream, 53, port, &ans, &mut b.actions));
    b.pump();
    assert_eq!(b.proxy.counters().tcp_drop_late, 1);
}

/// Review finding 10, DNS proxy randomness: ids and source ports come
/// from the OS CSPRNG, so two proxies built alike forward the same queries
/// with different ones.
#[test]
fn f10_dns_proxy_ids_and_ports_are_os_random() {
    let t = Instant::now();
    let forwards = || {
        let mut p = proxy(ProxyConfig::default());
        (0..8u16)
            .map(|i| {
                let mut out = Vec::new();
                let q = query(i, &format!("n{i}.example"), TYPE_A, None);
                p.handle_query(t, client(), local(), &q, &mut out);
                let (_, port, payload) = take_forward(&mut out);
                (header(&payload).id(), port)
            })
            .collect::<Vec<_>>()
    };
    assert_ne!(forwards(), forwards());
}

/// The TCP front's initial sequence numbers (smoltcp's seed) are OS
/// random too, not derived from the id generator: the same SYN gets a
/// different ISN from two proxies built alike.
#[test]
fn f10_dns_proxy_tcp_isn_is_os_random() {
    let isn = || {
        let mut b = Bench::new(ProxyConfig::default());
        b.connect(v4_endpoint(), 40000);
        let syn = std::mem::take(&mut b.host.dev.tx);
        assert_eq!(syn.len(), 1);
        b.proxy.push_tcp_ip(b.now, &syn[0]);
        let mut to_host = Vec::new();
        b.proxy.poll(b.now, &mut b.actions, &mut to_host);
        let ip = smoltcp::wire::Ipv4Packet::new_checked(&to_host[0][..]).unwrap();
        let tcp = smoltcp::wire::TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.syn() && tcp.ack());
        tcp.seq_number()
    };
    assert_ne!(isn(), isn());
}
