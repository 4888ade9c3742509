//! Each edit checked against the packet built from scratch with the new
//! values (etherparse computes every checksum anew): equal bytes mean the
//! incremental updates are right.

use etherparse::PacketBuilder;

use super::*;
use crate::flow::ipv4_l4;
use crate::wire::{checksum, ipv4_header_ok, sum16};

const HOST: [u8; 4] = [192, 168, 2, 20];
const SHARED: [u8; 4] = [198, 51, 100, 77];
const SERVER: [u8; 4] = [203, 0, 113, 9];
const ROUTER: [u8; 4] = [203, 0, 113, 254];

fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .tcp(sport, dport, 0x1234_5678, 64240)
        .syn()
        .write(&mut v, b"hello")
        .unwrap();
    v
}

fn echo(src: [u8; 4], dst: [u8; 4], id: u16, request: bool) -> Vec<u8> {
    let mut v = Vec::new();
    let b = PacketBuilder::ipv4(src, dst, 64);
    let b = if request {
        b.icmpv4_echo_request(id, 7)
    } else {
        b.icmpv4_echo_reply(id, 7)
    };
    b.write(&mut v, b"pingpayload!").unwrap();
    v
}

/// An ICMP error (`typ`, `code`) from `from` to `to` quoting the first
/// `quote` bytes of `orig`.
fn icmp_error(from: [u8; 4], to: [u8; 4], typ: u8, code: u8, orig: &[u8], quote: usize) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(from, to, 64)
        .icmpv4_raw(typ, code, [0, 0, 0, 0])
        .write(&mut v, &orig[..quote.min(orig.len())])
        .unwrap();
    v
}

fn snat(p: &mut [u8], port: u16) {
    let l4 = ipv4_l4(p);
    rewrite(p, &l4, Side::Src, SHARED, port).unwrap();
}

fn dnat(p: &mut [u8], port: u16) {
    let l4 = ipv4_l4(p);
    rewrite(p, &l4, Side::Dst, HOST, port).unwrap();
}

#[test]
fn udp_both_ways_matches_a_fresh_build() {
    let mut out = udp(HOST, 40000, SERVER, 53, b"query");
    snat(&mut out, 0x3c05);
    assert_eq!(out, udp(SHARED, 0x3c05, SERVER, 53, b"query"));
    let mut back = udp(SERVER, 53, SHARED, 0x3c05, b"answer!");
    dnat(&mut back, 40000);
    assert_eq!(back, udp(SERVER, 53, HOST, 40000, b"answer!"));
}

#[test]
fn tcp_both_ways_matches_a_fresh_build() {
    let mut out = tcp(HOST, 51515, SERVER, 443);
    snat(&mut out, 4100);
    assert_eq!(out, tcp(SHARED, 4100, SERVER, 443));
    let mut back = tcp(SERVER, 443, SHARED, 4100);
    dnat(&mut back, 51515);
    assert_eq!(back, tcp(SERVER, 443, HOST, 51515));
}

#[test]
fn a_zero_udp_checksum_stays_zero() {
    let mut p = udp(HOST, 40000, SERVER, 53, b"no checksum");
    p[26..28].copy_from_slice(&[0, 0]);
    snat(&mut p, 9999);
    assert_eq!(&p[26..28], &[0, 0]);
    assert_eq!(&p[20..22], &9999u16.to_be_bytes());
    assert!(ipv4_header_ok(&p[..20]));
    assert_eq!(&p[12..16], &SHARED);
}

#[test]
fn a_udp_sum_that_would_be_zero_is_sent_as_ffff() {
    // Find a source port that makes the translated sum 0: the edit must
    // then write 0xffff (RFC 768), not "no checksum".
    let base = udp(HOST, 40000, SERVER, 53, b"x");
    let port = (1..=u16::MAX)
        .find(|&port| {
            let fresh = udp(SHARED, port, SERVER, 53, b"x");
            u16::from_be_bytes([fresh[26], fresh[27]]) == 0xffff
        })
        .expect("some port sums to zero");
    let mut p = base.clone();
    snat(&mut p, port);
    assert_eq!(&p[26..28], &[0xff, 0xff]);
    assert_eq!(p, udp(SHARED, port, SERVER, 53, b"x"));
}

#[test]
fn echo_identifier_is_mapped_like_a_port() {
    let mut req = echo(HOST, SERVER, 0x0101, true);
    snat(&mut req, 0x3c0a);
    assert_eq!(req, echo(SHARED, SERVER, 0x3c0a, true));
    let mut rep = echo(SERVER, SHARED, 0x3c0a, false);
    dnat(&mut rep, 0x0101);
    assert_eq!(rep, echo(SERVER, HOST, 0x0101, false));
}

#[test]
fn a_later_fragment_gets_only_its_address() {
    let mut p = udp(HOST, 40000, SERVER, 53, &[0xab; 64]);
    // Offset 8 bytes (1 unit), so what follows the header is data.
    p[6..8].copy_from_slice(&1u16.to_be_bytes());
    let ck = checksum(&{
        let mut h = p[..20].to_vec();
        h[10..12].copy_from_slice(&[0, 0]);
        h
    });
    p[10..12].copy_from_slice(&ck.to_be_bytes());
    let data = p[20..].to_vec();
    snat(&mut p, 1234);
    assert_eq!(&p[20..], &data[..], "data untouched");
    assert_eq!(&p[12..16], &SHARED);
    assert!(ipv4_header_ok(&p[..20]));
}

/// ICMP errors quoting each kind of translated packet, with the quote
/// holding the whole packet or only the 8 bytes RFC 792 promises.
#[test]
fn icmp_errors_are_translated_back_through_the_quote() {
    let flows: [(Vec<u8>, Vec<u8>, u16); 3] = [
        (
            udp(SHARED, 0x3c05, SERVER, 53, b"query"),
            udp(HOST, 40000, SERVER, 53, b"query"),
            40000,
        ),
        (
            tcp(SHARED, 4100, SERVER, 443),
            tcp(HOST, 51515, SERVER, 443),
            51515,
        ),
        (
            echo(SHARED, SERVER, 0x3c0a, true),
            echo(HOST, SERVER, 0x0101, true),
            0x0101,
        ),
    ];
    for (sent, orig, port) in &flows {
        for quote in [28, sent.len()] {
            for (typ, code) in [(3, 3), (3, 4), (11, 0), (12, 0)] {
                let mut e = icmp_error(ROUTER, SHARED, typ, code, sent, quote);
                let q = quoted(&e).unwrap();
                assert_eq!((q.src, q.dst), (SHARED, SERVER));
                untranslate_error(&mut e, HOST, *port).unwrap();
                let want = icmp_error(ROUTER, HOST, typ, code, orig, quote);
                assert_eq!(
                    e, want,
                    "type {typ} quoting {quote} bytes of proto {}",
                    sent[9]
                );
            }
        }
    }
}

#[test]
fn an_error_quoting_a_zero_udp_checksum_keeps_it() {
    let mut sent = udp(SHARED, 0x3c05, SERVER, 53, b"q");
    sent[26..28].copy_from_slice(&[0, 0]);
    let mut e = icmp_error(ROUTER, SHARED, 3, 3, &sent, sent.len());
    untranslate_error(&mut e, HOST, 40000).unwrap();
    let ql4 = 20 + 8 + 20;
    assert_eq!(&e[ql4 + 6..ql4 + 8], &[0, 0]);
    // The ICMP checksum still verifies.
    assert_eq!(crate::wire::fold(sum16(&e[20..], 0)), 0xffff);
    assert!(ipv4_header_ok(&e[..20]));
    assert!(ipv4_header_ok(&e[28..48]));
}

#[test]
fn what_is_not_an_error_or_quotes_nothing_useful_is_refused() {
    let req = echo(SERVER, SHARED, 1, true);
    assert_eq!(quoted(&req), Err(RewriteError::NotTranslatable));
    // An error quoting an echo reply (not something we send).
    let rep = echo(SHARED, SERVER, 5, false);
    let e = icmp_error(ROUTER, SHARED, 3, 1, &rep, rep.len());
    assert_eq!(quoted(&e), Err(RewriteError::NotTranslatable));
    // Quote too short for the ports.
    let u = udp(SHARED, 1, SERVER, 2, b"");
    let e = icmp_error(ROUTER, SHARED, 3, 3, &u, 24);
    assert_eq!(quoted(&e), Err(RewriteError::Truncated));
}

/// Every truncation and some garbage: errors, never a panic.
#[test]
fn hostile_lengths_never_panic() {
    let sent = tcp(SHARED, 4100, SERVER, 443);
    let full = icmp_error(ROUTER, SHARED, 3, 3, &sent, sent.len());
    let mut x = 0x1234_5678_9abc_def0u64;
    for n in 0..=full.len() {
        for flip in 0..8 {
            let mut p = full[..n].to_vec();
            if flip > 0 && n > 0 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = x as usize % n;
                p[at] ^= (x >> 32) as u8;
            }
            let _ = quoted(&p);
            let _ = untranslate_error(&mut p.clone(), HOST, 1);
            if n >= 20 {
                let mut l4 = ipv4_l4(&p);
                l4.off = l4.off.min(60);
                let _ = rewrite(&mut p.clone(), &l4, Side::Dst, HOST, 1);
            }
        }
    }
}
