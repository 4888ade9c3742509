//! What hickory-proto would cost on the forwarder's per-query paths,
//! measured against the zero-copy walker they use (see ARCHITECTURE.md,
//! Decisions). A timed loop, not an assertion about speed: run it in
//! release with
//!
//! `cargo test --release -p ipoe-proto --lib dnsproxy::cost -- --ignored --nocapture`

use std::hint::black_box;
use std::time::Instant;

use hickory_proto::op::{Edns, Message, MessageType, Query};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;

/// A client's query for www.example.com A with an OPT.
fn query(id: u16) -> Vec<u8> {
    let name = Name::from_ascii("www.example.com.").unwrap();
    let mut msg = Message::new();
    msg.set_id(id)
        .set_recursion_desired(true)
        .add_query(Query::query(name, RecordType::A));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    msg.set_edns(edns);
    msg.to_vec().unwrap()
}

/// An answer as a recursive server sends it: `records` A records for
/// www.example.com (owners compressed), an SOA if `soa`, an OPT.
fn answer_for(records: u8, soa: bool) -> Vec<u8> {
    let name = Name::from_ascii("www.example.com.").unwrap();
    let mut msg = Message::new();
    msg.set_id(0x1234)
        .set_message_type(MessageType::Response)
        .set_recursion_desired(true)
        .set_recursion_available(true)
        .add_query(Query::query(name.clone(), RecordType::A));
    for i in 0..records {
        let a = A::new(192, 0, 2, i);
        msg.add_answer(Record::from_rdata(name.clone(), 300, RData::A(a)));
    }
    if soa {
        let zone = Name::from_ascii("example.com.").unwrap();
        let rdata = SOA::new(
            Name::from_ascii("ns.example.com.").unwrap(),
            Name::from_ascii("hostmaster.example.com.").unwrap(),
            1,
            7200,
            900,
            1_209_600,
            300,
        );
        msg.add_name_server(Record::from_rdata(zone, 300, RData::SOA(rdata)));
    }
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    msg.set_edns(edns);
    msg.to_vec().unwrap()
}

const ROUNDS: u32 = 200_000;

/// Nanoseconds per call of `f`, best of three runs.
fn ns_per_op(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ROUNDS {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore = "a timed loop; run in release with --ignored --nocapture"]
fn relay_and_cache_paths_walker_vs_hickory() {
    let p = DnsProxy::new(ProxyConfig::default());
    let core = &p.core;
    for (label, records, soa) in [("2 A records", 2, false), ("8 A records + SOA", 8, true)] {
        let answer = answer_for(records, soa);
        let mut header = Header::new();
        header.set_id(0x4321).set_recursion_desired(true);
        let parsed = wire::parse_query(&query(0x4321)).unwrap();
        let asker = Asker {
            client: Client::Udp {
                addr: "192.0.2.10:40000".parse().unwrap(),
                local: "192.0.2.1".parse().unwrap(),
            },
            header,
            query: Some(parsed.question),
            question: parsed.wire,
            edns: Some((1232, false)),
        };

        // Relay as it is done: frame every record, copy, patch in place.
        let walker = ns_per_op(|| {
            let msg = wire::parse(black_box(&answer)).unwrap();
            let mut out = answer[..msg.end].to_vec();
            core.finalize(&mut out, msg.opt, &asker, false);
            black_box(out);
        });
        // The same with hickory: decode, patch the message, encode.
        let hickory = ns_per_op(|| {
            let mut msg = Message::from_vec(black_box(&answer)).unwrap();
            msg.set_id(asker.header.id());
            if let Some(edns) = msg.extensions_mut() {
                edns.set_max_payload(1232);
            }
            black_box(msg.to_vec().unwrap());
        });
        // A cache hit: copy the stored answer with its TTLs counted down,
        // against re-encoding a stored hickory message with new TTLs.
        let parsed = wire::parse(&answer).unwrap();
        let ttl_at: Vec<usize> = parsed.records.iter().map(|rr| rr.ttl_at).collect();
        let walker_hit = ns_per_op(|| {
            let mut out = black_box(&answer).clone();
            for &at in &ttl_at {
                out[at..at + 4].copy_from_slice(&100u32.to_be_bytes());
            }
            black_box(out);
        });
        let stored = Message::from_vec(&answer).unwrap();
        let hickory_hit = ns_per_op(|| {
            let mut msg = black_box(&stored).clone();
            for record in msg.answers_mut() {
                record.set_ttl(100);
            }
            black_box(msg.to_vec().unwrap());
        });
        println!(
            "{label} ({} octets): relay walker {walker:.0} ns, hickory {hickory:.0} ns; \
             cache hit walker {walker_hit:.0} ns, hickory {hickory_hit:.0} ns",
            answer.len()
        );
    }
}

#[test]
#[ignore = "a timed loop; run in release with --ignored --nocapture"]
fn query_path_on_hickory() {
    // What a query costs before the cache lookup or the forward: read by
    // hickory, and the forwarded query written by hickory.
    let query = query(7);
    let p = DnsProxy::new(ProxyConfig::default());
    let read = ns_per_op(|| {
        black_box(wire::parse_query(black_box(&query)).unwrap());
    });
    let parsed = wire::parse_query(&query).unwrap();
    let mut header = Header::new();
    header.set_id(9).set_recursion_desired(true);
    let write = ns_per_op(|| {
        let fwd = wire::build(
            black_box(&header),
            Some(&parsed.question),
            Some((p.core.cfg.udp_payload, false)),
        );
        black_box(fwd);
    });
    println!("query path: read {read:.0} ns, forwarded query written {write:.0} ns");
}
