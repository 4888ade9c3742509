//! TXT wire and lookup tests. The replies are bytes captured from dnsmasq
//! 2.90 (the lab's DNS server) on loopback, answering the queries noted.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use super::*;
use crate::dns::{build_query, DnsError, RCODE_NXDOMAIN};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `--txt-record=4over6.info,"v=v6mig-1 url=https://hb46pp.lab.example/config t=b"`,
/// TXT query id 0x1234.
const HB46PP: &str = "12348580000100010000000106346f7665723604696e666f0000100001c00c0010000100000000003433763d76366d69672d312075726c3d68747470733a2f2f6862343670702e6c61622e6578616d706c652f636f6e66696720743d6200002904d0000000000000";
/// `--address=/#/`: NXDOMAIN for nothing.example, id 0x2345.
const NXDOMAIN: &str =
    "234581830001000000000001076e6f7468696e67076578616d706c65000010000100002904d0000000000000";
/// `--txt-record=multi.example,"first string","second"`, id 0x3456.
const MULTI: &str = "345685800001000100000001056d756c7469076578616d706c650000100001c00c001000010000000000140c666972737420737472696e67067365636f6e6400002904d0000000000000";
/// `--cname=alias.example,4over6.info`, TXT query for alias.example, id 0x4567.
const ALIAS: &str = "45678580000100020000000105616c696173076578616d706c650000100001c00c0005000100000000000d06346f7665723604696e666f00c02b0010000100000000003433763d76366d69672d312075726c3d68747470733a2f2f6862343670702e6c61622e6578616d706c652f636f6e66696720743d6200002904d0000000000000";
/// An AAAA query for 4over6.info (id 0x5678): NOERROR, no answer.
const AAAA_NODATA: &str =
    "56788180000100000000000106346f7665723604696e666f00001c000100002904d0000000000000";

const RECORD: &[u8] = b"v=v6mig-1 url=https://hb46pp.lab.example/config t=b";

#[test]
fn captured_txt_answer_gives_the_record() {
    let r = parse_txt_response(0x1234, "4over6.info", &unhex(HB46PP)).unwrap();
    assert_eq!(r, vec![RECORD.to_vec()]);
    // The record is what HB46PP's reader takes.
    let d = crate::hb46pp::txt::parse(&r).unwrap();
    assert!(d.verify);
    assert_eq!(d.url.host_str(), "hb46pp.lab.example");
}

#[test]
fn captured_strings_of_one_record_are_joined() {
    let msg = unhex(MULTI);
    let r = parse_txt_response(0x3456, "multi.example", &msg).unwrap();
    assert_eq!(r, vec![b"first stringsecond".to_vec()]);
    // The view sees both strings.
    let rdata = &msg[msg.len() - 11 - 20..msg.len() - 11];
    let view = TxtRdata::new_checked(rdata).unwrap();
    let strings: Vec<&[u8]> = view.strings().collect();
    assert_eq!(strings, vec![&b"first string"[..], &b"second"[..]]);
}

#[test]
fn captured_cname_is_followed() {
    let r = parse_txt_response(0x4567, "alias.example", &unhex(ALIAS)).unwrap();
    assert_eq!(r, vec![RECORD.to_vec()]);
}

#[test]
fn captured_nxdomain_and_nodata() {
    assert_eq!(
        parse_txt_response(0x2345, "nothing.example", &unhex(NXDOMAIN)),
        Err(DnsError::Rcode(RCODE_NXDOMAIN))
    );
    // A reply to another question type is not ours.
    assert_eq!(
        parse_txt_response(0x5678, "4over6.info", &unhex(AAAA_NODATA)),
        Err(DnsError::QuestionMismatch)
    );
}

#[test]
fn wrong_id_or_name_is_refused() {
    let msg = unhex(HB46PP);
    assert_eq!(
        parse_txt_response(0x1235, "4over6.info", &msg),
        Err(DnsError::IdMismatch)
    );
    assert_eq!(
        parse_txt_response(0x1234, "4over6.example", &msg),
        Err(DnsError::QuestionMismatch)
    );
}

#[test]
fn rdata_view_refuses_bad_framing() {
    assert_eq!(TxtRdata::new_checked(&[]), Err(DnsError::BadRdata));
    // A string longer than what is left.
    assert_eq!(TxtRdata::new_checked(&[5, b'a']), Err(DnsError::BadRdata));
    assert!(TxtRdata::new_checked(&[0]).is_ok());
    let mut out = Vec::new();
    let long = vec![b'x'; 300];
    emit_txt_rdata(&long, &mut out);
    assert_eq!(out.len(), 302);
    assert_eq!(TxtRdata::new_checked(&out).unwrap().joined(), long);
}

#[test]
fn a_bad_rdata_in_the_answer_fails_the_reply() {
    let mut msg = unhex(HB46PP);
    // The first string's length octet (0x33) made longer than the RDATA.
    let at = msg.iter().position(|&b| b == 0x33).unwrap();
    msg[at] = 0x40;
    assert_eq!(
        parse_txt_response(0x1234, "4over6.info", &msg),
        Err(DnsError::BadRdata)
    );
    // Every truncation is refused, never a panic.
    let full = unhex(HB46PP);
    for n in 0..full.len() - 11 {
        assert!(parse_txt_response(0x1234, "4over6.info", &full[..n]).is_err());
    }
}

const S1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 100, 0, 0, 0, 1);
const S2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 100, 0, 0, 0, 2);

/// The captured answer re-addressed to `id`.
fn reply(id: u16, hex: &str) -> Vec<u8> {
    let mut m = unhex(hex);
    m[..2].copy_from_slice(&id.to_be_bytes());
    m
}

fn query_id(q: &crate::dns::Query) -> u16 {
    u16::from_be_bytes([q.payload[0], q.payload[1]])
}

#[test]
fn lookup_asks_and_takes_the_answer() {
    let t0 = Instant::now();
    let mut l = TxtLookup::new("4over6.info", &[S1]);
    let mut out = Vec::new();
    assert_eq!(l.poll(t0, &mut out), Some(t0 + Duration::from_secs(2)));
    assert_eq!(out.len(), 1);
    let q = &out[0];
    assert_eq!(q.server, S1);
    assert_eq!(
        q.payload,
        build_query(query_id(q), "4over6.info", TYPE_TXT).unwrap()
    );
    // From another port or server: not ours.
    assert!(!l.handle(t0, S2, 53, q.src_port, &reply(query_id(q), HB46PP)));
    assert!(!l.handle(t0, S1, 53, q.src_port ^ 1, &reply(query_id(q), HB46PP)));
    // Another id: ignored, still waiting.
    assert!(!l.handle(t0, S1, 53, q.src_port, &reply(query_id(q) ^ 1, HB46PP)));
    assert_eq!(l.result(), None);
    assert!(l.handle(t0, S1, 53, q.src_port, &reply(query_id(q), HB46PP)));
    assert_eq!(l.result(), Some(&TxtResult::Records(vec![RECORD.to_vec()])));
    assert_eq!(l.poll(t0, &mut out), None);
}

#[test]
fn lookup_reports_nxdomain() {
    let t0 = Instant::now();
    let mut l = TxtLookup::new("nothing.example", &[S1]);
    let mut out = Vec::new();
    l.poll(t0, &mut out);
    let q = &out[0];
    assert!(l.handle(t0, S1, 53, q.src_port, &reply(query_id(q), NXDOMAIN)));
    assert_eq!(l.result(), Some(&TxtResult::NxDomain));
}

#[test]
fn lookup_tries_each_server_then_fails_with_a_fake_clock() {
    let t0 = Instant::now();
    let mut l = TxtLookup::new("4over6.info", &[S1, S2]);
    let mut out = Vec::new();
    let mut now = t0;
    let mut servers = Vec::new();
    while let Some(next) = l.poll(now, &mut out) {
        servers.extend(out.drain(..).map(|q| q.server));
        now = next;
    }
    assert_eq!(servers, vec![S1, S2, S1, S2]);
    // 2 + 4 + 8 + 8 s.
    assert_eq!(now - t0, Duration::from_secs(22));
    assert!(matches!(l.result(), Some(TxtResult::Failed(r)) if r.contains("timeout")));
}

#[test]
fn lookup_without_servers_fails_at_once() {
    let l = TxtLookup::new("4over6.info", &[]);
    assert!(matches!(l.result(), Some(TxtResult::Failed(_))));
}
