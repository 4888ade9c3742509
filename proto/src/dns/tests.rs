//! Wire tests against replies captured from dnsmasq 2.90, hostile-input
//! tests, and resolver behaviour on a fake clock.

use crate::jitter::Jitter;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use super::*;

// ---------------------------------------------------------------------------
// Captured bytes
// ---------------------------------------------------------------------------
//
// Produced with
//   dnsmasq --no-daemon --no-resolv --no-hosts --port 5353 \
//     --listen-address ::1 --bind-interfaces --local-ttl=600 \
//     --addn-hosts=multi.hosts --local=/lab.example/ \
//     --host-record=aftr.lab.example,2001:db8:aaaa::1 \
//     --cname=gw.lab.example,aftr.lab.example
// (multi.hosts maps multi.lab.example to 2001:db8:aaaa::2 and ::3), queried
// over UDP from Python with the bytes `build_query` emits.

/// `build_query(0x1234, "aftr.lab.example", AAAA)`, as sent to dnsmasq.
const AFTR_QUERY: &str = "1234010000010000000000010461667472036c6162076578616d706c65\
                          00001c000100002904d0000000000000";
/// AAAA aftr.lab.example -> 2001:db8:aaaa::1, TTL 600, AA set.
const AFTR_REPLY: &str = "1234858000010001000000010461667472036c6162076578616d706c65\
                          00001c0001c00c001c000100000258001020010db8aaaa00000000000000\
                          00000100002904d0000000000000";
/// AAAA gw.lab.example: CNAME to aftr.lab.example (uncompressed target),
/// whose AAAA owner points into the CNAME's RDATA.
const GW_REPLY: &str = "234585800001000200000001026777036c6162076578616d706c6500001c\
                        0001c00c000500010000025800120461667472036c6162076578616d706c\
                        6500c02c001c000100000258001020010db8aaaa0000000000000000000100\
                        002904d0000000000000";
/// AAAA GW.Lab.Example: dnsmasq echoes the question's case.
const GW_MIXED_CASE_REPLY: &str = "567885800001000200000001024757034c6162074578616d706c65\
                                   00001c0001c00c000500010000025800120461667472036c6162\
                                   076578616d706c6500c02c001c000100000258001020010db8aa\
                                   aa0000000000000000000100002904d0000000000000";
/// AAAA nope.lab.example: NXDOMAIN (flags 0x8183).
const NXDOMAIN_REPLY: &str = "345681830001000000000001046e6f7065036c6162076578616d706c65\
                              00001c000100002904d0000000000000";
/// AAAA multi.lab.example: two AAAA records.
const MULTI_REPLY: &str = "456785800001000200000001056d756c7469036c6162076578616d706c65\
                           00001c0001c00c001c000100000258001020010db8aaaa000000000000\
                           00000002c00c001c000100000258001020010db8aaaa00000000000000\
                           00000300002904d0000000000000";
/// AAAA example.com with no upstream: REFUSED with an EDNS0 Extended DNS
/// Error option (code 14, "not ready") in the OPT record.
const REFUSED_REPLY: &str = "678981850001000000000001076578616d706c6503636f6d00001c0001\
                             00002904d0000000000006000f0002000e";

/// (id, name, reply) of every capture, for the hostile-input tests.
const CAPTURES: [(u16, &str, &str); 6] = [
    (0x1234, "aftr.lab.example", AFTR_REPLY),
    (0x2345, "gw.lab.example", GW_REPLY),
    (0x5678, "gw.lab.example", GW_MIXED_CASE_REPLY),
    (0x3456, "nope.lab.example", NXDOMAIN_REPLY),
    (0x4567, "multi.lab.example", MULTI_REPLY),
    (0x6789, "example.com", REFUSED_REPLY),
];

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert_eq!(digits.len() % 2, 0);
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

const AFTR_ADDR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xaaaa, 0, 0, 0, 0, 1);

fn addr(last: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0xaaaa, 0, 0, 0, 0, last)
}

// ---------------------------------------------------------------------------
// Building replies
// ---------------------------------------------------------------------------

/// Builds a reply to `query` (a `build_query` output) record by record.
/// Owners given as `None` are a pointer to the question name.
struct Reply {
    msg: Vec<u8>,
    answers: u16,
}

/// Offset of the question name in every message.
const QNAME_PTR: [u8; 2] = [0xc0, HEADER_LEN as u8];

fn reply(query: &[u8], rcode: u8) -> Reply {
    // Header and question; drop the query's 11-byte OPT record.
    let mut msg = query[..query.len() - 11].to_vec();
    let mut header = Packet::new_unchecked(&mut msg[..]);
    header.set_flags(FLAG_QR | FLAG_RD | FLAG_RA | u16::from(rcode));
    header.set_additional_count(0);
    Reply { msg, answers: 0 }
}

fn reply_for(id: u16, name: &str, rcode: u8) -> Reply {
    reply(&build_query(id, name, TYPE_AAAA).unwrap(), rcode)
}

impl Reply {
    fn record(
        mut self,
        owner: Option<&str>,
        rtype: u16,
        class: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Self {
        match owner {
            Some(name) => encode_name(name, &mut self.msg).unwrap(),
            None => self.msg.extend_from_slice(&QNAME_PTR),
        }
        self.raw_record_tail(rtype, class, ttl, rdata)
    }

    /// Appends type..rdata after an owner the caller wrote into `msg`.
    fn raw_record_tail(mut self, rtype: u16, class: u16, ttl: u32, rdata: &[u8]) -> Self {
        self.msg.extend_from_slice(&rtype.to_be_bytes());
        self.msg.extend_from_slice(&class.to_be_bytes());
        self.msg.extend_from_slice(&ttl.to_be_bytes());
        self.msg
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.msg.extend_from_slice(rdata);
        self.answers += 1;
        self
    }

    fn aaaa(self, owner: Option<&str>, ttl: u32, addr: Ipv6Addr) -> Self {
        self.record(owner, TYPE_AAAA, CLASS_IN, ttl, &addr.octets())
    }

    fn cname(self, owner: Option<&str>, ttl: u32, target: &str) -> Self {
        let mut rdata = Vec::new();
        encode_name(target, &mut rdata).unwrap();
        self.record(owner, TYPE_CNAME, CLASS_IN, ttl, &rdata)
    }

    fn build(mut self) -> Vec<u8> {
        let answers = self.answers;
        Packet::new_unchecked(&mut self.msg[..]).set_answer_count(answers);
        self.msg
    }
}

// ---------------------------------------------------------------------------
// Names and queries
// ---------------------------------------------------------------------------

#[test]
fn encode_name_accepts_hostnames_with_optional_trailing_dot() {
    let mut out = Vec::new();
    encode_name("gw.transix.jp", &mut out).unwrap();
    assert_eq!(out, b"\x02gw\x07transix\x02jp\x00");
    let mut dotted = Vec::new();
    encode_name("gw.transix.jp.", &mut dotted).unwrap();
    assert_eq!(dotted, out);
    let mut other = Vec::new();
    encode_name("_dns-sd.Host-1", &mut other).unwrap();
    assert_eq!(other, b"\x07_dns-sd\x06Host-1\x00");
}

#[test]
fn encode_name_limits() {
    let label63 = "a".repeat(63);
    let mut out = Vec::new();
    encode_name(&label63, &mut out).unwrap();
    assert_eq!(out.len(), 65);

    // 3 x 63 + 61 chars and 4 length octets + root = 255: the maximum.
    let max = format!("{label63}.{label63}.{label63}.{}", "b".repeat(61));
    let mut out = Vec::new();
    encode_name(&max, &mut out).unwrap();
    assert_eq!(out.len(), MAX_NAME_LEN);

    let cases: &[(&str, NameError)] = &[
        ("", NameError::Empty),
        (".", NameError::Empty),
        ("a..b", NameError::EmptyLabel),
        (".a", NameError::EmptyLabel),
        ("a.b..", NameError::EmptyLabel),
        (&"a".repeat(64), NameError::LabelTooLong),
        (&format!("{max}b"), NameError::TooLong),
        ("gw transix.jp", NameError::InvalidChar(' ')),
        ("gw.transix.jp/x", NameError::InvalidChar('/')),
        ("gw\\.x", NameError::InvalidChar('\\')),
        ("b\u{e9}.jp", NameError::InvalidChar('\u{e9}')),
    ];
    for (name, expected) in cases {
        let mut out = vec![0xee];
        assert_eq!(encode_name(name, &mut out), Err(*expected), "{name:?}");
        assert_eq!(out, [0xee], "output untouched on error for {name:?}");
    }
}

#[test]
fn query_bytes_exact() {
    let query = build_query(0x1234, "aftr.lab.example", TYPE_AAAA).unwrap();
    assert_eq!(query, hex(AFTR_QUERY));
    #[rustfmt::skip]
    let annotated: &[u8] = &[
        0x12, 0x34, // id
        0x01, 0x00, // RD
        0, 1, 0, 0, 0, 0, 0, 1, // QD=1 AN=0 NS=0 AR=1
        4, b'a', b'f', b't', b'r', 3, b'l', b'a', b'b',
        7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0,
        0, 28, 0, 1, // AAAA IN
        0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0, // OPT: root, 1232 bytes, no flags, no options
    ];
    assert_eq!(query, annotated);
    assert_eq!(
        build_query(0x1234, "aftr.lab.example.", TYPE_AAAA).unwrap(),
        query
    );
    assert_eq!(
        build_query(1, "a..b", TYPE_AAAA),
        Err(NameError::EmptyLabel)
    );
}

#[test]
fn header_view_accessors() {
    let msg = hex(AFTR_REPLY);
    let header = Packet::new_checked(&msg[..]).unwrap();
    assert_eq!(header.id(), 0x1234);
    assert_eq!(header.flags(), 0x8580);
    assert!(header.is_response());
    assert!(header.is_authoritative());
    assert!(!header.is_truncated());
    assert!(header.recursion_desired());
    assert!(header.recursion_available());
    assert_eq!(header.opcode(), 0);
    assert_eq!(header.rcode(), RCODE_NOERROR);
    assert_eq!(
        (
            header.question_count(),
            header.answer_count(),
            header.authority_count(),
            header.additional_count()
        ),
        (1, 1, 0, 1)
    );
    assert_eq!(header.body().len(), msg.len() - HEADER_LEN);
    assert_eq!(
        Packet::new_checked(&hex(NXDOMAIN_REPLY)[..])
            .unwrap()
            .rcode(),
        RCODE_NXDOMAIN
    );

    for len in 0..HEADER_LEN {
        assert_eq!(Packet::new_checked(&msg[..len]), Err(DnsError::Truncated));
    }

    let mut buf = [0u8; HEADER_LEN];
    let mut header = Packet::new_unchecked(&mut buf[..]);
    header.set_id(0xbeef);
    header.set_flags(FLAG_QR | FLAG_TC | 0x7800 | 0x000f);
    header.set_question_count(1);
    header.set_answer_count(2);
    header.set_authority_count(3);
    header.set_additional_count(4);
    assert_eq!(header.id(), 0xbeef);
    assert!(header.is_truncated());
    assert_eq!(header.opcode(), 0x0f);
    assert_eq!(header.rcode(), 0x0f);
    assert_eq!(buf, [0xbe, 0xef, 0xfa, 0x0f, 0, 1, 0, 2, 0, 3, 0, 4]);
}

// ---------------------------------------------------------------------------
// Parsing captured replies
// ---------------------------------------------------------------------------

#[test]
fn parses_dnsmasq_direct_answer() {
    let answer = parse_aaaa_response(0x1234, "aftr.lab.example", &hex(AFTR_REPLY)).unwrap();
    assert_eq!(
        answer,
        AaaaAnswer {
            addrs: vec![AFTR_ADDR],
            ttl: 600
        }
    );
    // Names compare case-insensitively and the trailing dot is optional.
    assert!(parse_aaaa_response(0x1234, "AFTR.lab.EXAMPLE.", &hex(AFTR_REPLY)).is_ok());
}

#[test]
fn parses_dnsmasq_cname_chain() {
    let answer = parse_aaaa_response(0x2345, "gw.lab.example", &hex(GW_REPLY)).unwrap();
    assert_eq!(
        answer,
        AaaaAnswer {
            addrs: vec![AFTR_ADDR],
            ttl: 600
        }
    );
    // The server echoed "GW.Lab.Example" while we ask for the lower-case name.
    let answer = parse_aaaa_response(0x5678, "gw.lab.example", &hex(GW_MIXED_CASE_REPLY)).unwrap();
    assert_eq!(answer.addrs, [AFTR_ADDR]);
}

#[test]
fn parses_dnsmasq_multiple_addresses() {
    let answer = parse_aaaa_response(0x4567, "multi.lab.example", &hex(MULTI_REPLY)).unwrap();
    assert_eq!(
        answer,
        AaaaAnswer {
            addrs: vec![addr(2), addr(3)],
            ttl: 600
        }
    );
}

#[test]
fn parses_dnsmasq_error_replies() {
    assert_eq!(
        parse_aaaa_response(0x3456, "nope.lab.example", &hex(NXDOMAIN_REPLY)),
        Err(DnsError::Rcode(RCODE_NXDOMAIN))
    );
    assert_eq!(
        parse_aaaa_response(0x6789, "example.com", &hex(REFUSED_REPLY)),
        Err(DnsError::Rcode(RCODE_REFUSED))
    );
}

#[test]
fn rejects_replies_not_matching_the_query() {
    let msg = hex(AFTR_REPLY);
    assert_eq!(
        parse_aaaa_response(0x1235, "aftr.lab.example", &msg),
        Err(DnsError::IdMismatch)
    );
    assert_eq!(
        parse_aaaa_response(0x1234, "gw.lab.example", &msg),
        Err(DnsError::QuestionMismatch)
    );
    // A query is not a response.
    assert_eq!(
        parse_aaaa_response(0x1234, "aftr.lab.example", &hex(AFTR_QUERY)),
        Err(DnsError::NotAResponse)
    );

    let with_flags = |flags: u16| {
        let mut m = msg.clone();
        Packet::new_unchecked(&mut m[..]).set_flags(flags);
        parse_aaaa_response(0x1234, "aftr.lab.example", &m)
    };
    assert_eq!(with_flags(0x8580 | FLAG_TC), Err(DnsError::Tc));
    assert_eq!(with_flags(0x8580 | (2 << 11)), Err(DnsError::Opcode(2)));
    assert_eq!(
        with_flags(0x8580 | u16::from(RCODE_SERVFAIL)),
        Err(DnsError::Rcode(2))
    );

    // Question type A instead of AAAA.
    let mut m = msg.clone();
    let qtype_at = HEADER_LEN + 18;
    m[qtype_at..qtype_at + 2].copy_from_slice(&1u16.to_be_bytes());
    assert_eq!(
        parse_aaaa_response(0x1234, "aftr.lab.example", &m),
        Err(DnsError::QuestionMismatch)
    );
    // Question class CH.
    let mut m = msg.clone();
    m[qtype_at + 2..qtype_at + 4].copy_from_slice(&3u16.to_be_bytes());
    assert_eq!(
        parse_aaaa_response(0x1234, "aftr.lab.example", &m),
        Err(DnsError::QuestionMismatch)
    );
    // No question or two questions.
    for count in [0, 2] {
        let mut m = msg.clone();
        Packet::new_unchecked(&mut m[..]).set_question_count(count);
        assert_eq!(
            parse_aaaa_response(0x1234, "aftr.lab.example", &m),
            Err(DnsError::QuestionMismatch)
        );
    }
    assert_eq!(
        parse_aaaa_response(0x1234, "bad name", &msg),
        Err(DnsError::Name(NameError::InvalidChar(' ')))
    );
}

#[test]
fn nodata_and_irrelevant_records() {
    // NOERROR without answers.
    let msg = reply_for(7, "aftr.lab.example", RCODE_NOERROR).build();
    assert_eq!(
        parse_aaaa_response(7, "aftr.lab.example", &msg),
        Err(DnsError::NoAnswer)
    );
    // AAAA of another name, AAAA of class CH, an A record: all ignored.
    let msg = reply_for(7, "aftr.lab.example", RCODE_NOERROR)
        .aaaa(Some("other.lab.example"), 60, addr(9))
        .record(None, TYPE_AAAA, 3, 60, &addr(8).octets())
        .record(None, 1, CLASS_IN, 60, &[192, 0, 2, 1])
        .build();
    assert_eq!(
        parse_aaaa_response(7, "aftr.lab.example", &msg),
        Err(DnsError::NoAnswer)
    );
    // ... and do not disturb a real answer next to them.
    let msg = reply_for(7, "aftr.lab.example", RCODE_NOERROR)
        .aaaa(Some("other.lab.example"), 5, addr(9))
        .record(None, 1, CLASS_IN, 5, &[192, 0, 2, 1])
        .aaaa(None, 300, addr(1))
        .build();
    assert_eq!(
        parse_aaaa_response(7, "aftr.lab.example", &msg),
        Ok(AaaaAnswer {
            addrs: vec![addr(1)],
            ttl: 300
        })
    );
}

#[test]
fn ttl_is_the_minimum_and_top_bit_means_zero() {
    let msg = reply_for(7, "a.example", RCODE_NOERROR)
        .aaaa(None, 300, addr(1))
        .aaaa(None, 100, addr(2))
        .build();
    assert_eq!(parse_aaaa_response(7, "a.example", &msg).unwrap().ttl, 100);
    let msg = reply_for(7, "a.example", RCODE_NOERROR)
        .aaaa(None, 0x8000_0000, addr(1))
        .build();
    assert_eq!(parse_aaaa_response(7, "a.example", &msg).unwrap().ttl, 0);
}

#[test]
fn addresses_are_deduplicated_and_capped() {
    let mut reply = reply_for(7, "a.example", RCODE_NOERROR).aaaa(None, 60, addr(1));
    for i in 1..=20 {
        reply = reply.aaaa(None, 60, addr(i));
    }
    let answer = parse_aaaa_response(7, "a.example", &reply.build()).unwrap();
    assert_eq!(answer.addrs, (1..=16).map(addr).collect::<Vec<_>>());
}

#[test]
fn cname_chain_followed_in_any_order_and_bounded() {
    // a.example -> c1 -> ... -> c8 -> AAAA: eight hops is the limit.
    let chain_reply = |hops: usize, reversed: bool| {
        let names: Vec<String> = (0..=hops)
            .map(|i| {
                if i == 0 {
                    "a.example".to_string()
                } else {
                    format!("c{i}.example")
                }
            })
            .collect();
        let mut records: Vec<Box<dyn Fn(Reply) -> Reply>> = Vec::new();
        for i in 0..hops {
            let (owner, target) = (names[i].clone(), names[i + 1].clone());
            let ttl = 1000 - i as u32;
            records.push(Box::new(move |r: Reply| {
                r.cname(Some(&owner), ttl, &target)
            }));
        }
        let last = names[hops].clone();
        records.push(Box::new(move |r: Reply| r.aaaa(Some(&last), 2000, addr(1))));
        if reversed {
            records.reverse();
        }
        records
            .iter()
            .fold(reply_for(7, "a.example", RCODE_NOERROR), |r, add| add(r))
            .build()
    };
    for reversed in [false, true] {
        let answer = parse_aaaa_response(7, "a.example", &chain_reply(8, reversed)).unwrap();
        assert_eq!(
            answer,
            AaaaAnswer {
                addrs: vec![addr(1)],
                ttl: 993
            }
        );
        assert_eq!(
            parse_aaaa_response(7, "a.example", &chain_reply(9, reversed)),
            Err(DnsError::CnameChainTooLong)
        );
    }

    // A CNAME loop is caught by the same bound.
    let looped = reply_for(7, "a.example", RCODE_NOERROR)
        .cname(Some("a.example"), 60, "b.example")
        .cname(Some("b.example"), 60, "a.example")
        .aaaa(Some("a.example"), 60, addr(1))
        .build();
    assert_eq!(
        parse_aaaa_response(7, "a.example", &looped),
        Err(DnsError::CnameChainTooLong)
    );

    // CNAME whose target does not fill its RDATA.
    let mut rdata = Vec::new();
    encode_name("b.example", &mut rdata).unwrap();
    rdata.push(0);
    let msg = reply_for(7, "a.example", RCODE_NOERROR)
        .record(None, TYPE_CNAME, CLASS_IN, 60, &rdata)
        .build();
    assert_eq!(
        parse_aaaa_response(7, "a.example", &msg),
        Err(DnsError::BadRdata)
    );

    // A CNAME without the target's AAAA is NODATA, not the alias's address.
    let msg = reply_for(7, "a.example", RCODE_NOERROR)
        .cname(None, 60, "b.example")
        .aaaa(None, 60, addr(1))
        .build();
    assert_eq!(
        parse_aaaa_response(7, "a.example", &msg),
        Err(DnsError::NoAnswer)
    );
}

#[test]
fn aaaa_rdata_must_be_16_octets() {
    for len in [0, 4, 15, 17] {
        let msg = reply_for(7, "a.example", RCODE_NOERROR)
            .record(None, TYPE_AAAA, CLASS_IN, 60, &vec![1; len])
            .build();
        assert_eq!(
            parse_aaaa_response(7, "a.example", &msg),
            Err(DnsError::BadRdata),
            "{len}"
        );
    }
}

#[test]
fn edns_extended_rcode() {
    // BADVERS: header rcode 0, OPT extended rcode 1 -> 16.
    let mut msg = reply_for(7, "a.example", RCODE_NOERROR)
        .aaaa(None, 60, addr(1))
        .build();
    msg.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 1, 0, 0, 0, 0, 0]);
    Packet::new_unchecked(&mut msg[..]).set_additional_count(1);
    assert_eq!(
        parse_aaaa_response(7, "a.example", &msg),
        Err(DnsError::Rcode(16))
    );
}

#[test]
fn trailing_bytes_are_ignored_but_missing_ones_are_not() {
    let mut msg = hex(AFTR_REPLY);
    msg.extend_from_slice(&[0xde, 0xad]);
    assert!(parse_aaaa_response(0x1234, "aftr.lab.example", &msg).is_ok());
    // Counts promising more records than present.
    let mut msg = hex(AFTR_REPLY);
    Packet::new_unchecked(&mut msg[..]).set_authority_count(1);
    assert_eq!(
        parse_aaaa_response(0x1234, "aftr.lab.example", &msg),
        Err(DnsError::Truncated)
    );
    let mut msg = hex(AFTR_REPLY);
    Packet::new_unchecked(&mut msg[..]).set_answer_count(0xffff);
    assert_eq!(
        parse_aaaa_response(0x1234, "aftr.lab.example", &msg),
        Err(DnsError::Truncated)
    );
}

// ---------------------------------------------------------------------------
// Compression pointers
// ---------------------------------------------------------------------------

/// A reply for a.example whose one answer has `owner` as raw bytes.
fn with_raw_owner(owner: impl FnOnce(usize) -> Vec<u8>) -> Vec<u8> {
    let mut reply = reply_for(7, "a.example", RCODE_NOERROR);
    let at = reply.msg.len();
    reply.msg.extend_from_slice(&owner(at));
    reply
        .raw_record_tail(TYPE_AAAA, CLASS_IN, 60, &addr(1).octets())
        .build()
}

fn ptr(target: usize) -> [u8; 2] {
    [0xc0 | (target >> 8) as u8, target as u8]
}

#[test]
fn compression_pointers_must_point_backwards() {
    let parse = |msg: &[u8]| parse_aaaa_response(7, "a.example", msg);
    // Sanity: a pointer to the question name works.
    assert!(parse(&with_raw_owner(|_| ptr(HEADER_LEN).to_vec())).is_ok());
    // Pointing at itself, forward, past the end, into the header.
    assert_eq!(
        parse(&with_raw_owner(|at| ptr(at).to_vec())),
        Err(DnsError::BadPointer)
    );
    assert_eq!(
        parse(&with_raw_owner(|at| ptr(at + 4).to_vec())),
        Err(DnsError::BadPointer)
    );
    assert_eq!(
        parse(&with_raw_owner(|_| ptr(0x3fff).to_vec())),
        Err(DnsError::BadPointer)
    );
    assert_eq!(
        parse(&with_raw_owner(|_| ptr(4).to_vec())),
        Err(DnsError::BadPointer)
    );
    // A label, then a pointer back to the start of this very name.
    assert_eq!(
        parse(&with_raw_owner(|at| [&[1, b'x'][..], &ptr(at)].concat())),
        Err(DnsError::LoopingPointers)
    );
    // Reserved label types 0x40 and 0x80.
    assert_eq!(
        parse(&with_raw_owner(|_| vec![0x41, 0])),
        Err(DnsError::BadLabel)
    );
    assert_eq!(
        parse(&with_raw_owner(|_| vec![0x81, 0])),
        Err(DnsError::BadLabel)
    );
    // A pointer cut in half by the end of the message.
    let mut msg = reply_for(7, "a.example", RCODE_NOERROR).build();
    msg.push(0xc0);
    Packet::new_unchecked(&mut msg[..]).set_answer_count(1);
    assert_eq!(parse(&msg), Err(DnsError::Truncated));
}

#[test]
fn two_step_pointer_loop_rejected() {
    // Record 1 (unknown type 99) carries "\x01b" + pointer to itself in its
    // RDATA; record 2's owner points there. Both pointers go backwards from
    // where they sit, but the second revisits bytes already decoded.
    let mut reply = reply_for(7, "a.example", RCODE_NOERROR);
    let rdata_at = reply.msg.len() + 2 + 10;
    let rdata = [&[1, b'b'][..], &ptr(rdata_at)].concat();
    reply = reply.record(None, 99, CLASS_IN, 60, &rdata);
    reply.msg.extend_from_slice(&ptr(rdata_at));
    let msg = reply
        .raw_record_tail(TYPE_AAAA, CLASS_IN, 60, &addr(1).octets())
        .build();
    assert_eq!(
        parse_aaaa_response(7, "a.example", &msg),
        Err(DnsError::LoopingPointers)
    );
}

#[test]
fn long_pointer_chains_and_long_names_rejected() {
    // 40 pointers, each to the one before it, ending at the question name.
    let mut reply = reply_for(7, "a.example", RCODE_NOERROR);
    let start = reply.msg.len() + 2 + 10;
    let mut rdata = ptr(HEADER_LEN).to_vec();
    for i in 1..40 {
        rdata.extend_from_slice(&ptr(start + 2 * (i - 1)));
    }
    reply = reply.record(None, 99, CLASS_IN, 60, &rdata);
    reply.msg.extend_from_slice(&ptr(start + 2 * 39));
    let msg = reply
        .raw_record_tail(TYPE_AAAA, CLASS_IN, 60, &addr(1).octets())
        .build();
    assert_eq!(
        parse_aaaa_response(7, "a.example", &msg),
        Err(DnsError::LoopingPointers)
    );

    // Uncompressed owner of 5 x 63-octet labels: 321 octets.
    let long = |_| {
        let mut owner = Vec::new();
        for _ in 0..5 {
            owner.push(63);
            owner.extend_from_slice(&[b'x'; 63]);
        }
        owner.push(0);
        owner
    };
    assert_eq!(
        parse_aaaa_response(7, "a.example", &with_raw_owner(long)),
        Err(DnsError::TooLong)
    );

    // Compressed: 128 octets of labels + a pointer to 129 more = 257.
    let mut reply = reply_for(7, "a.example", RCODE_NOERROR);
    let suffix_at = reply.msg.len() + 2 + 10;
    let mut suffix = Vec::new();
    for _ in 0..2 {
        suffix.push(63);
        suffix.extend_from_slice(&[b'y'; 63]);
    }
    suffix.push(0);
    reply = reply.record(None, 99, CLASS_IN, 60, &suffix);
    for _ in 0..2 {
        reply.msg.push(63);
        reply.msg.extend_from_slice(&[b'z'; 63]);
    }
    reply.msg.extend_from_slice(&ptr(suffix_at));
    let msg = reply
        .raw_record_tail(TYPE_AAAA, CLASS_IN, 60, &addr(1).octets())
        .build();
    assert_eq!(
        parse_aaaa_response(7, "a.example", &msg),
        Err(DnsError::TooLong)
    );
}

// ---------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------

#[test]
fn every_truncation_of_a_valid_reply_is_an_error() {
    for (id, name, reply) in CAPTURES {
        let msg = hex(reply);
        for len in 0..msg.len() {
            let result = parse_aaaa_response(id, name, &msg[..len]);
            assert!(result.is_err(), "{name} cut at {len}: {result:?}");
        }
    }
}

/// Applies 1..=4 random structural mutations.
fn mutate(rng: &mut Jitter, msg: &mut Vec<u8>) {
    const INTERESTING: [u8; 8] = [0x00, 0x01, 0x3f, 0x40, 0x80, 0xc0, 0xc0 | 0x0c, 0xff];
    for _ in 0..1 + rng.below(4) {
        let len = msg.len().max(1);
        match rng.below(7) {
            0 => {
                let i = rng.below(len);
                if let Some(b) = msg.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => {
                let i = rng.below(len);
                if let Some(b) = msg.get_mut(i) {
                    *b = INTERESTING[rng.below(INTERESTING.len())];
                }
            }
            2 => msg.truncate(rng.below(len)),
            3 => {
                let i = rng.below(len + 1).min(msg.len());
                msg.insert(i, rng.next_u64() as u8);
            }
            4 => {
                // Plant a random pointer.
                let i = rng.below(len).min(msg.len().saturating_sub(2));
                let target = rng.below(len + 4);
                if msg.len() >= 2 {
                    msg[i..i + 2].copy_from_slice(&ptr(target));
                }
            }
            5 => {
                // Inflate a section count.
                let count_at = 4 + 2 * rng.below(4);
                if msg.len() >= count_at + 2 {
                    msg[count_at] = rng.next_u64() as u8;
                    msg[count_at + 1] = rng.next_u64() as u8;
                }
            }
            _ => {
                // Duplicate a slice (repeated records, names).
                let from = rng.below(len).min(msg.len());
                let to = (from + rng.below(40)).min(msg.len());
                let chunk = msg[from..to].to_vec();
                let at = rng.below(len + 1).min(msg.len());
                msg.splice(at..at, chunk);
            }
        }
    }
}

#[test]
fn fuzz_mutated_replies_never_panic() {
    let captures: Vec<(u16, &str, Vec<u8>)> = CAPTURES
        .iter()
        .map(|(id, name, reply)| (*id, *name, hex(reply)))
        .collect();
    let mut rng = Jitter::new(0x5eed_d15e_a5e5_0001);
    let mut parsed = 0;
    for _ in 0..200_000 {
        let (id, name, base) = &captures[rng.below(captures.len())];
        let mut msg = base.clone();
        mutate(&mut rng, &mut msg);
        if let Ok(answer) = parse_aaaa_response(*id, name, &msg) {
            assert!(!answer.addrs.is_empty() && answer.addrs.len() <= MAX_ADDRS);
            parsed += 1;
        }
    }
    // Some mutations (TTL, address bytes) keep the reply valid.
    assert!(parsed > 0);
}

// ---------------------------------------------------------------------------
// Resolver
// ---------------------------------------------------------------------------

const NAME: &str = "gw.transix.jp";
const S1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53);
const S2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x53);
const S3: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 0x53);
const SEC: Duration = Duration::from_secs(1);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn resolver(servers: &[Ipv6Addr], t0: Instant) -> Resolver {
    let mut r = Resolver::new(ResolverConfig::new(NAME));
    r.set_servers(t0, servers);
    r
}

/// Polls and expects exactly one query.
fn poll_one(r: &mut Resolver, now: Instant) -> (Query, Option<Instant>) {
    let mut out = Vec::new();
    let next = r.poll(now, &mut out);
    assert_eq!(out.len(), 1, "expected one query at {now:?}: {out:?}");
    (out.pop().unwrap(), next)
}

/// Polls and expects nothing to send.
fn poll_none(r: &mut Resolver, now: Instant) -> Option<Instant> {
    let mut out = Vec::new();
    let next = r.poll(now, &mut out);
    assert!(out.is_empty(), "unexpected queries: {out:?}");
    next
}

fn query_id(q: &Query) -> u16 {
    u16::from_be_bytes([q.payload[0], q.payload[1]])
}

/// A reply to `q` as its server would send it.
fn respond(q: &Query, rcode: u8, addrs: &[Ipv6Addr], ttl: u32) -> Vec<u8> {
    addrs
        .iter()
        .fold(reply(&q.payload, rcode), |r, a| r.aaaa(None, ttl, *a))
        .build()
}

/// Delivers a reply to `q` from the right place.
fn deliver(r: &mut Resolver, now: Instant, q: &Query, msg: &[u8]) -> bool {
    r.handle(now, q.server, DNS_PORT, q.src_port, msg)
}

fn answer_with(r: &mut Resolver, now: Instant, q: &Query, addrs: &[Ipv6Addr], ttl: u32) {
    assert!(deliver(r, now, q, &respond(q, RCODE_NOERROR, addrs, ttl)));
}

fn failures(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Failed(_)))
        .count()
}

#[test]
fn first_query_is_a_valid_aaaa_query_from_an_ephemeral_port() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1], t0);
    let (q, next) = poll_one(&mut r, t0);
    assert_eq!(q.server, S1);
    assert!(q.src_port >= 49152);
    assert_eq!(
        q.payload,
        build_query(query_id(&q), NAME, TYPE_AAAA).unwrap()
    );
    assert_eq!(next, Some(t0 + SEC));
    // Nothing more until the timeout.
    assert_eq!(poll_none(&mut r, t0 + secs(1) / 2), Some(t0 + SEC));
    assert_eq!(r.counters().tx_query, 1);
    assert!(r.answer().is_none());
}

#[test]
fn retries_back_off_and_rotate_servers() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1, S2], t0);
    let mut now = t0;
    let mut sent = Vec::new();
    for _ in 0..11 {
        let (q, next) = poll_one(&mut r, now);
        sent.push(((now - t0).as_secs(), q.server));
        now = next.unwrap();
    }
    let expected_times = [0, 1, 3, 7, 15, 31, 63, 123, 183, 243, 303];
    let times: Vec<u64> = sent.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, expected_times);
    let servers: Vec<Ipv6Addr> = sent.iter().map(|(_, s)| *s).collect();
    let alternating: Vec<Ipv6Addr> = (0..11).map(|i| [S1, S2][i % 2]).collect();
    assert_eq!(servers, alternating);

    // One failure report for the round, once both servers had their try.
    let events = r.drain_events();
    assert_eq!(failures(&events), 1, "{events:?}");
    match &events[0] {
        Event::Failed(reason) => {
            assert!(
                reason.contains(NAME) && reason.contains("timeout"),
                "{reason}"
            );
            assert!(reason.contains("no address yet"), "{reason}");
        }
        e => panic!("unexpected {e:?}"),
    }
    assert_eq!(r.counters().tx_query, 11);
    assert_eq!(r.counters().timeout, 10);
    assert_eq!(r.counters().failed_rounds, 1);
    assert!(r.answer().is_none());
}

#[test]
fn single_server_round_fails_after_first_timeout() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1], t0);
    poll_one(&mut r, t0);
    assert!(r.drain_events().is_empty());
    let (q, _) = poll_one(&mut r, t0 + SEC);
    assert_eq!(q.server, S1);
    assert_eq!(failures(&r.drain_events()), 1);
}

#[test]
fn answer_kept_for_ttl_then_refreshed() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1, S2], t0);
    let (q, _) = poll_one(&mut r, t0);
    let t1 = t0 + secs(1) / 10;
    answer_with(&mut r, t1, &q, &[AFTR_ADDR], 600);
    assert_eq!(r.drain_events(), [Event::Resolved(AFTR_ADDR)]);
    let resolved = r.answer().unwrap().clone();
    assert_eq!(
        resolved,
        Resolved {
            addr: AFTR_ADDR,
            all: vec![AFTR_ADDR],
            ttl: 600,
            expires: t1 + secs(600),
            server: S1,
            resolved_at: t1,
        }
    );
    assert_eq!(r.counters().rx_answer, 1);

    // Quiet until expiry.
    assert_eq!(poll_none(&mut r, t1 + secs(300)), Some(t1 + secs(600)));
    // Then a refresh, to the server that answered, while the answer stays.
    let (q2, next) = poll_one(&mut r, t1 + secs(600));
    assert_eq!(q2.server, S1);
    assert_ne!(query_id(&q2), query_id(&q));
    assert_eq!(next, Some(t1 + secs(601)));
    assert_eq!(r.answer(), Some(&resolved));

    // Same address again: no event, new expiry.
    let t2 = t1 + secs(600) + secs(1) / 10;
    answer_with(&mut r, t2, &q2, &[AFTR_ADDR], 600);
    assert!(r.drain_events().is_empty());
    assert_eq!(r.answer().unwrap().expires, t2 + secs(600));
    assert_eq!(r.counters().address_changed, 1);
}

#[test]
fn ttl_is_clamped() {
    for (ttl, lifetime) in [
        (0, 30),
        (5, 30),
        (30, 30),
        (3600, 3600),
        (10_000_000, 86_400),
    ] {
        let t0 = Instant::now();
        let mut r = resolver(&[S1], t0);
        let (q, _) = poll_one(&mut r, t0);
        answer_with(&mut r, t0, &q, &[AFTR_ADDR], ttl);
        assert_eq!(r.answer().unwrap().ttl, ttl);
        assert_eq!(
            r.answer().unwrap().expires,
            t0 + secs(lifetime),
            "ttl {ttl}"
        );
        assert_eq!(poll_none(&mut r, t0), Some(t0 + secs(lifetime)));
    }

    // Even with min_ttl 0, TTL 0 does not make the resolver spin.
    let t0 = Instant::now();
    let mut cfg = ResolverConfig::new(NAME);
    cfg.min_ttl = Duration::ZERO;
    let mut r = Resolver::new(cfg);
    r.set_servers(t0, &[S1]);
    let (q, _) = poll_one(&mut r, t0);
    answer_with(&mut r, t0, &q, &[AFTR_ADDR], 0);
    assert_eq!(r.answer().unwrap().expires, t0 + SEC);
}

/// A resolver that resolved `AFTR_ADDR` (TTL 600) at t0 from S1.
fn resolved_at(t0: Instant, servers: &[Ipv6Addr]) -> Resolver {
    let mut r = resolver(servers, t0);
    let (q, _) = poll_one(&mut r, t0);
    answer_with(&mut r, t0, &q, &[AFTR_ADDR], 600);
    assert_eq!(r.drain_events(), [Event::Resolved(AFTR_ADDR)]);
    r
}

#[test]
fn server_gone_keeps_the_old_answer() {
    let t0 = Instant::now();
    let mut r = resolved_at(t0, &[S1, S2]);
    let old = r.answer().unwrap().clone();

    // An hour of silence from both servers.
    let mut now = t0 + secs(600);
    let mut sent = 0;
    while now < t0 + secs(4200) {
        let (_, next) = poll_one(&mut r, now);
        sent += 1;
        now = next.unwrap();
    }
    assert_eq!(r.answer(), Some(&old), "answer survives DNS outage");
    let events = r.drain_events();
    assert_eq!(failures(&events), 1, "{events:?}");
    assert_eq!(events.len(), 1);
    let Event::Failed(reason) = &events[0] else {
        panic!()
    };
    assert!(reason.contains(&format!("keeping {AFTR_ADDR}")), "{reason}");
    assert_eq!(r.counters().timeout, sent - 1);
    assert_eq!(r.counters().failed_rounds, 1);

    // The server comes back with the same answer: no event, fresh TTL.
    let (q, _) = poll_one(&mut r, now);
    answer_with(&mut r, now, &q, &[AFTR_ADDR], 600);
    assert!(r.drain_events().is_empty());
    assert_eq!(r.answer().unwrap().resolved_at, now);
    assert_eq!(poll_none(&mut r, now), Some(now + secs(600)));

    // The next failing refresh is a new round and reports again.
    let mut at = now + secs(600);
    for _ in 0..3 {
        let (_, next) = poll_one(&mut r, at);
        at = next.unwrap();
    }
    assert_eq!(failures(&r.drain_events()), 1);
    assert_eq!(r.counters().failed_rounds, 2);
}

#[test]
fn nxdomain_and_servfail_keep_the_old_answer() {
    let t0 = Instant::now();
    let mut r = resolved_at(t0, &[S1]);
    let old = r.answer().unwrap().clone();
    let refresh = t0 + secs(600);

    let (q, deadline) = poll_one(&mut r, refresh);
    assert!(deliver(
        &mut r,
        refresh,
        &q,
        &respond(&q, RCODE_NXDOMAIN, &[], 0)
    ));
    assert_eq!(r.counters().nxdomain, 1);
    assert_eq!(r.answer(), Some(&old));
    let events = r.drain_events();
    assert_eq!(failures(&events), 1);
    let Event::Failed(reason) = &events[0] else {
        panic!()
    };
    assert!(
        reason.contains("NXDOMAIN") && reason.contains(&S1.to_string()),
        "{reason}"
    );
    // The retry waits for the scheduled timeout: an erroring server is not
    // asked faster than a silent one.
    assert_eq!(poll_none(&mut r, refresh), deadline);

    let (q, deadline) = poll_one(&mut r, deadline.unwrap());
    assert!(deliver(
        &mut r,
        refresh,
        &q,
        &respond(&q, RCODE_SERVFAIL, &[], 0)
    ));
    assert_eq!(r.counters().servfail, 1);
    let (q, _) = poll_one(&mut r, deadline.unwrap());
    assert!(deliver(
        &mut r,
        refresh,
        &q,
        &respond(&q, RCODE_REFUSED, &[], 0)
    ));
    assert_eq!(r.counters().refused, 1);
    assert!(r.drain_events().is_empty(), "one report per round");
    assert_eq!(r.answer(), Some(&old));
}

#[test]
fn nodata_tc_and_other_rcodes_fail_the_attempt() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1], t0);
    let mut now = t0;

    let (q, next) = poll_one(&mut r, now);
    assert!(deliver(
        &mut r,
        now,
        &q,
        &respond(&q, RCODE_NOERROR, &[], 0)
    ));
    now = next.unwrap();
    let (q, next) = poll_one(&mut r, now);
    let mut tc = respond(&q, RCODE_NOERROR, &[AFTR_ADDR], 60);
    let flags = Packet::new_unchecked(&tc[..]).flags();
    Packet::new_unchecked(&mut tc[..]).set_flags(flags | FLAG_TC);
    assert!(deliver(&mut r, now, &q, &tc));
    now = next.unwrap();
    let (q, _) = poll_one(&mut r, now);
    assert!(deliver(&mut r, now, &q, &respond(&q, 4, &[], 0)));

    let c = r.counters();
    assert_eq!(
        (c.nodata, c.truncated, c.rcode_other, c.rx_answer),
        (1, 1, 1, 0)
    );
    assert!(r.answer().is_none());
}

#[test]
fn different_answer_emits_resolved_and_the_address_is_sticky() {
    let t0 = Instant::now();
    let mut r = resolved_at(t0, &[S1]);
    let new = addr(0x99);

    // Round-robin reply that still contains the address in use: keep it.
    let now = t0 + secs(600);
    let (q, _) = poll_one(&mut r, now);
    answer_with(&mut r, now, &q, &[new, AFTR_ADDR], 600);
    assert!(r.drain_events().is_empty());
    assert_eq!(r.answer().unwrap().addr, AFTR_ADDR);
    assert_eq!(r.answer().unwrap().all, [new, AFTR_ADDR]);

    // The name moved: switch and tell.
    let now = now + secs(600);
    let (q, _) = poll_one(&mut r, now);
    answer_with(&mut r, now, &q, &[new], 300);
    assert_eq!(r.drain_events(), [Event::Resolved(new)]);
    assert_eq!(r.answer().unwrap().addr, new);
    assert_eq!(r.answer().unwrap().expires, now + secs(300));
    assert_eq!(r.counters().address_changed, 2);
}

#[test]
fn wrong_source_port_or_id_ignored_and_counted() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1, S2], t0);
    let (q, _) = poll_one(&mut r, t0);
    let good = respond(&q, RCODE_NOERROR, &[AFTR_ADDR], 600);

    // From a server we did not ask (S2 is configured, but the query went to S1).
    assert!(!r.handle(t0, S2, DNS_PORT, q.src_port, &good));
    assert!(!r.handle(t0, S3, DNS_PORT, q.src_port, &good));
    // From the right server but not port 53.
    assert!(!r.handle(t0, S1, 5353, q.src_port, &good));
    assert_eq!(r.counters().drop_unexpected_source, 3);
    // To another local port.
    assert!(!r.handle(t0, S1, DNS_PORT, q.src_port.wrapping_add(1), &good));
    assert_eq!(r.counters().drop_wrong_port, 1);
    // Wrong transaction id.
    let mut wrong_id = good.clone();
    Packet::new_unchecked(&mut wrong_id[..]).set_id(query_id(&q) ^ 0x8000);
    assert!(!deliver(&mut r, t0, &q, &wrong_id));
    assert_eq!(r.counters().drop_id_mismatch, 1);
    // Right id, wrong question (a spoof attempt that guessed the id).
    let mut other_q = respond(&q, RCODE_NOERROR, &[addr(0x66)], 600);
    let at = HEADER_LEN + 1; // first letter of the question name
    other_q[at] = b'x';
    assert!(!deliver(&mut r, t0, &q, &other_q));
    assert_eq!(r.counters().drop_question_mismatch, 1);
    // Malformed.
    assert!(!deliver(&mut r, t0, &q, &good[..5]));
    assert!(!deliver(&mut r, t0, &q, &good[..good.len() - 1]));
    assert_eq!(r.counters().drop_malformed, 2);

    assert!(r.answer().is_none());
    assert!(r.drain_events().is_empty());
    // The genuine reply is still accepted.
    assert!(deliver(&mut r, t0, &q, &good));
    assert_eq!(r.answer().unwrap().addr, AFTR_ADDR);
    // And a duplicate of it is unsolicited now.
    assert!(!deliver(&mut r, t0, &q, &good));
    assert_eq!(r.counters().drop_unsolicited, 1);
}

#[test]
fn reply_to_an_older_query_is_ignored() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1], t0);
    let (old, next) = poll_one(&mut r, t0);
    let (new, _) = poll_one(&mut r, next.unwrap());
    assert_ne!(query_id(&old), query_id(&new));
    let late = respond(&old, RCODE_NOERROR, &[addr(0x66)], 600);
    // To the old port, and (were the port reused) with the old id.
    assert!(!deliver(&mut r, t0 + SEC, &old, &late));
    assert!(!r.handle(t0 + SEC, S1, DNS_PORT, new.src_port, &late));
    assert_eq!(
        r.counters().drop_wrong_port + r.counters().drop_id_mismatch,
        2,
        "{:?}",
        r.counters()
    );
    assert_eq!(r.counters().drop_id_mismatch, 1);
    assert!(r.answer().is_none());
}

#[test]
fn ignored_malformed_reply_is_named_in_the_timeout_reason() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1], t0);
    let (q, next) = poll_one(&mut r, t0);
    let mut bad = respond(&q, RCODE_NOERROR, &[AFTR_ADDR], 600);
    let last = bad.len() - 17; // the AAAA RDLENGTH's low octet
    bad[last] = 4;
    assert!(!deliver(&mut r, t0, &q, &bad));
    poll_one(&mut r, next.unwrap());
    let events = r.drain_events();
    let [Event::Failed(reason)] = &events[..] else {
        panic!("{events:?}")
    };
    assert!(reason.contains("ignored a reply"), "{reason}");
}

#[test]
fn set_servers_restarts_a_pending_lookup() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1], t0);
    let (q1, _) = poll_one(&mut r, t0);
    let (_, next) = poll_one(&mut r, t0 + SEC);
    let (_, next) = poll_one(&mut r, next.unwrap());
    assert_eq!(next, Some(t0 + secs(7)));

    // The same list (duplicates and junk filtered) changes nothing.
    let now = t0 + secs(4);
    r.set_servers(
        now,
        &[S1, S1, Ipv6Addr::UNSPECIFIED, "ff02::1".parse().unwrap()],
    );
    assert_eq!(r.counters().servers_ignored, 3);
    assert_eq!(poll_none(&mut r, now), Some(t0 + secs(7)));

    // A new list: ask it right away, with the backoff reset.
    r.set_servers(now, &[S2, S3]);
    assert_eq!(r.servers(), [S2, S3]);
    let (q, next) = poll_one(&mut r, now);
    assert_eq!(q.server, S2);
    assert_eq!(next, Some(now + SEC));
    let (q, _) = poll_one(&mut r, now + SEC);
    assert_eq!(q.server, S3);
    assert_eq!(r.counters().restarts, 1);

    // A late reply from the old server is not taken.
    let late = respond(&q1, RCODE_NOERROR, &[AFTR_ADDR], 600);
    assert!(!deliver(&mut r, now, &q1, &late));
    assert_eq!(r.counters().drop_unexpected_source, 1);
}

#[test]
fn empty_server_list_pauses_lookups() {
    let t0 = Instant::now();
    let mut r = Resolver::new(ResolverConfig::new(NAME));
    assert_eq!(poll_none(&mut r, t0), None);

    r.set_servers(t0, &[S1]);
    poll_one(&mut r, t0);
    r.set_servers(t0 + SEC / 2, &[]);
    assert_eq!(poll_none(&mut r, t0 + secs(100)), None);
    assert!(r.drain_events().is_empty(), "pausing is not a failure");

    r.set_servers(t0 + secs(100), &[S2]);
    let (q, _) = poll_one(&mut r, t0 + secs(100));
    assert_eq!(q.server, S2);
}

#[test]
fn server_change_while_holding_an_answer_waits_for_refresh() {
    let t0 = Instant::now();
    let mut r = resolved_at(t0, &[S1]);
    r.set_servers(t0 + SEC, &[S2]);
    assert_eq!(poll_none(&mut r, t0 + SEC), Some(t0 + secs(600)));
    let (q, _) = poll_one(&mut r, t0 + secs(600));
    assert_eq!(q.server, S2);

    // With no servers at refresh time the answer is simply kept.
    let mut r = resolved_at(t0, &[S1]);
    r.set_servers(t0 + SEC, &[]);
    assert_eq!(poll_none(&mut r, t0 + secs(600)), None);
    assert_eq!(r.answer().unwrap().addr, AFTR_ADDR);
}

#[test]
fn force_refresh_queries_now_and_keeps_the_answer() {
    let t0 = Instant::now();
    let mut r = resolved_at(t0, &[S1]);
    r.force_refresh(t0 + secs(10));
    let (q, next) = poll_one(&mut r, t0 + secs(10));
    assert_eq!(next, Some(t0 + secs(11)));
    assert_eq!(r.answer().unwrap().addr, AFTR_ADDR);
    answer_with(&mut r, t0 + secs(10), &q, &[AFTR_ADDR], 600);
    assert_eq!(r.answer().unwrap().expires, t0 + secs(610));
}

#[test]
fn invalid_name_fails_once_and_never_queries() {
    let t0 = Instant::now();
    let mut r = Resolver::new(ResolverConfig::new("gw..transix.jp"));
    r.set_servers(t0, &[S1]);
    assert_eq!(poll_none(&mut r, t0), None);
    r.force_refresh(t0);
    assert_eq!(poll_none(&mut r, t0), None);
    let events = r.drain_events();
    let [Event::Failed(reason)] = &events[..] else {
        panic!("{events:?}")
    };
    assert!(reason.contains("empty label"), "{reason}");
}

#[test]
fn ids_and_ports_vary_and_ports_are_ephemeral() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1], t0);
    let mut now = t0;
    let mut ids = std::collections::HashSet::new();
    let mut ports = std::collections::HashSet::new();
    for _ in 0..200 {
        r.force_refresh(now);
        let (q, _) = poll_one(&mut r, now);
        assert!(q.src_port >= 49152);
        ids.insert(query_id(&q));
        ports.insert(q.src_port);
        now += SEC;
    }
    assert!(
        ids.len() > 190 && ports.len() > 180,
        "{} ids, {} ports",
        ids.len(),
        ports.len()
    );
}

#[test]
fn counters_are_named_in_kebab_case() {
    let counters = Counters {
        tx_query: 3,
        drop_unexpected_source: 2,
        ..Counters::default()
    };
    let named = counters.named();
    let names: Vec<&str> = named.iter().map(|(n, _)| *n).collect();
    for required in [
        "tx-query",
        "rx-answer",
        "drop-id-mismatch",
        "drop-unexpected-source",
        "drop-malformed",
        "nxdomain",
        "servfail",
        "timeout",
    ] {
        assert!(names.contains(&required), "{required} missing");
    }
    for name in &names {
        assert!(
            name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
            "{name}"
        );
    }
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
    assert!(named.contains(&("tx-query", 3)));
    assert!(named.contains(&("drop-unexpected-source", 2)));
}

#[test]
fn fuzz_handle_counts_every_datagram() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1], t0);
    let (mut q, _) = poll_one(&mut r, t0);
    let mut rng = Jitter::new(0xfeed_f00d);
    let mut now = t0;
    let n = 20_000;
    for i in 0..n {
        let mut msg = respond(&q, RCODE_NOERROR, &[AFTR_ADDR], 600);
        mutate(&mut rng, &mut msg);
        if i % 3 == 0 && msg.len() >= 2 {
            // Keep the id right so the parser is reached.
            msg[..2].copy_from_slice(&q.payload[..2]);
        }
        let from = if i % 50 == 0 { S2 } else { q.server };
        r.handle(now, from, DNS_PORT, q.src_port, &msg);
        // Keep a query outstanding.
        if r.answer().is_some() || i % 100 == 0 {
            now += secs(100_000);
            r.force_refresh(now);
            q = poll_one(&mut r, now).0;
        }
    }
    let c = r.counters();
    let accounted = c.rx_answer
        + c.drop_unsolicited
        + c.drop_unexpected_source
        + c.drop_wrong_port
        + c.drop_id_mismatch
        + c.drop_question_mismatch
        + c.drop_malformed
        + c.nxdomain
        + c.servfail
        + c.refused
        + c.rcode_other
        + c.nodata
        + c.truncated
        + c.bad_answer;
    assert_eq!(accounted, n, "{c:?}");
}

/// Review finding 10, DNS randomness: ids and source ports come from the
/// OS CSPRNG, so two resolvers built alike ask with different ones.
#[test]
fn f10_resolver_ids_and_ports_are_os_random() {
    let t0 = Instant::now();
    let draws = || {
        let mut r = resolver(&[S1], t0);
        (0..8)
            .map(|i| {
                r.force_refresh(t0 + secs(i));
                let (q, _) = poll_one(&mut r, t0 + secs(i));
                (query_id(&q), q.src_port)
            })
            .collect::<Vec<_>>()
    };
    assert_ne!(draws(), draws());
}
