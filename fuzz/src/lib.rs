//! Helpers shared by the fuzz targets: the input framing they all use and
//! a checksum fixer that lets the fuzzer past checksum checks.
//!
//! # Input format
//!
//! Every target except `config` and `ctl_request` reads
//!
//! ```text
//! header (HEADER bytes, per target)
//! record*  = flags (1 byte) | length (2 bytes, big endian) | bytes
//! ```
//!
//! A length past the end of the input takes what is left; at most
//! [`MAX_RECORDS`] records are read. `seeds.py` writes seeds in this form,
//! so captured frames and messages start the fuzzer from real traffic.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

pub mod dhcp6s;
pub mod dnsproxy;
pub mod hb46pp;
pub mod http;
pub mod lan_ra;
pub mod resolver;

/// Most records (frames, messages) one input is split into.
pub const MAX_RECORDS: usize = 32;

/// One record of an input.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    pub flags: u8,
    pub bytes: &'a [u8],
}

/// Splits `data` after its `header` bytes into records. Returns the
/// header (zero-padded when the input is shorter) and the records.
pub fn split<const H: usize>(data: &[u8]) -> ([u8; H], Vec<Record<'_>>) {
    let mut header = [0u8; H];
    let n = data.len().min(H);
    header[..n].copy_from_slice(&data[..n]);
    let mut rest = &data[n..];
    let mut records = Vec::new();
    while rest.len() >= 3 && records.len() < MAX_RECORDS {
        let flags = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        rest = &rest[3..];
        let take = len.min(rest.len());
        records.push(Record {
            flags,
            bytes: &rest[..take],
        });
        rest = &rest[take..];
    }
    (header, records)
}

/// The inverse of [`split`], for building inputs in tests.
pub fn join(header: &[u8], records: &[(u8, &[u8])]) -> Vec<u8> {
    let mut v = header.to_vec();
    for (flags, bytes) in records {
        v.push(*flags);
        v.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        v.extend_from_slice(bytes);
    }
    v
}

fn sum16(mut acc: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Offset of the checksum field in a transport header, if the protocol
/// has one we fix.
fn l4_checksum_at(proto: u8) -> Option<usize> {
    match proto {
        1 | 58 => Some(2),
        6 => Some(16),
        17 => Some(6),
        _ => None,
    }
}

/// Fixes the IPv4 header checksum and the transport checksum of the packet
/// at the start of `p` (clamped to what is there). Returns nothing: a
/// packet too short for its headers is left alone.
fn fix_ipv4(p: &mut [u8]) {
    if p.len() < 20 {
        return;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    if ihl < 20 || ihl > p.len() {
        return;
    }
    p[10] = 0;
    p[11] = 0;
    let c = fold(sum16(0, &p[..ihl]));
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let total = usize::from(u16::from_be_bytes([p[2], p[3]])).clamp(ihl, p.len());
    let proto = p[9];
    // Only whole, first fragments carry a checksum we can compute.
    if u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0 {
        return;
    }
    let src: [u8; 4] = p[12..16].try_into().unwrap_or_default();
    let dst: [u8; 4] = p[16..20].try_into().unwrap_or_default();
    let l4 = &mut p[ihl..total];
    match proto {
        4 => fix_ipv4(l4),
        41 => fix_ipv6(l4),
        _ => fix_l4(l4, proto, |acc, len| {
            let acc = sum16(acc, &src);
            let acc = sum16(acc, &dst);
            acc + u32::from(proto) + len as u32
        }),
    }
}

fn fix_l4(l4: &mut [u8], proto: u8, pseudo: impl Fn(u32, usize) -> u32) {
    let Some(at) = l4_checksum_at(proto) else {
        return;
    };
    if l4.len() < at + 2 {
        return;
    }
    l4[at] = 0;
    l4[at + 1] = 0;
    let acc = if proto == 1 { 0 } else { pseudo(0, l4.len()) };
    let mut c = fold(sum16(acc, l4));
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Fixes the transport checksum of the IPv6 packet at the start of `p`
/// (no extension headers walked except IPv4-in-IPv6), and the inner
/// packet of IPv4-in-IPv6.
fn fix_ipv6(p: &mut [u8]) {
    if p.len() < 40 {
        return;
    }
    let plen = usize::from(u16::from_be_bytes([p[4], p[5]])).min(p.len() - 40);
    let next = p[6];
    let src: [u8; 16] = p[8..24].try_into().unwrap_or_default();
    let dst: [u8; 16] = p[24..40].try_into().unwrap_or_default();
    let l4 = &mut p[40..40 + plen];
    match next {
        4 => fix_ipv4(l4),
        1 => {}
        _ => fix_l4(l4, next, |acc, len| {
            let acc = sum16(acc, &src);
            let acc = sum16(acc, &dst);
            acc + len as u32 + u32::from(next)
        }),
    }
}

/// Makes the checksums of an Ethernet frame right: the IPv4 header, and
/// UDP/TCP/ICMP/ICMPv6 over IPv4, IPv6, or IPv4-in-IPv6. Lengths are
/// taken as the headers say, clamped to the frame.
pub fn fix_checksums(frame: &mut [u8]) {
    if frame.len() < 14 {
        return;
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let l3 = &mut frame[14..];
    match ethertype {
        0x0800 => fix_ipv4(l3),
        0x86dd => fix_ipv6(l3),
        _ => {}
    }
}

/// The lab's addresses, as `seeds.py` and `testkit` know them.
pub mod lab {
    use super::*;

    pub const WAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x02];
    pub const LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
    pub const WAN_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x202);
    pub const LAN_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x201);
    pub const WAN_GUA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 2);
    pub const LAN_GUA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x111, 0, 0, 0, 1);
    pub const LAN_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 2, 1);
    pub const GATEWAY: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    pub const HOST4: Ipv4Addr = Ipv4Addr::new(192, 168, 2, 10);
    pub const HOST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x111, 0, 0, 0, 0x10);
    pub const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x10];
    /// The DHCPv6 client's DUID-LL and IAID in the lab (`wan.rs`: the
    /// low four bytes of the MAC).
    pub const DUID: [u8; 10] = [0, 3, 0, 1, 0x02, 0, 0, 0, 0x02, 0x02];
    pub const IAID: u32 = 0x0000_0202;
}

/// A logger that formats every record and throws it away, installed once
/// at debug level: the daemon logs, and what a log line formats (the
/// `Display` of hostile input, a description of a rogue RA) runs only when
/// a logger takes the level.
pub fn log_everything() {
    struct Sink;
    impl log::Log for Sink {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }
        fn log(&self, record: &log::Record) {
            use std::fmt::Write;
            let mut line = String::new();
            let _ = write!(line, "{}", record.args());
            std::hint::black_box(line);
        }
        fn flush(&self) {}
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if log::set_logger(&Sink).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
    });
}

/// Whether `IPOE_FUZZ_PEEK` is set: the service targets then print their
/// engine's counters after each input, to check that seeds reach past the
/// first checks (`IPOE_FUZZ_PEEK=1 fuzz/target/.../dns_proxy -runs=0
/// fuzz/seeds/dns_proxy`).
pub fn peek() -> bool {
    static PEEK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PEEK.get_or_init(|| std::env::var_os("IPOE_FUZZ_PEEK").is_some())
}

/// Prints the non-zero counters of `named` when [`peek`] is on.
pub fn show(target: &str, named: &[(&'static str, u64)]) {
    if peek() {
        let moved: Vec<String> = named
            .iter()
            .filter(|(_, v)| *v > 0)
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        eprintln!("peek {target}: {}", moved.join(" "));
    }
}

/// Steps a harness's fake clock deadline by deadline up to `until`, polling
/// at each; after `max_polls` polls the clock jumps to `until` (a control
/// loop that was held up), which keeps a long step with short timers from
/// dominating an execution. `clock` gives the harness's clock and the next
/// deadline to step to; `poll` runs the engine at the clock's time.
pub fn run_until<H>(
    h: &mut H,
    until: Instant,
    max_polls: usize,
    clock: fn(&mut H) -> (&mut Instant, Option<Instant>),
    poll: fn(&mut H),
) {
    for _ in 0..max_polls {
        match clock(h) {
            (now, Some(n)) if n <= until => *now = n,
            _ => break,
        }
        poll(h);
    }
    let (now, _) = clock(h);
    *now = (*now).max(until);
    poll(h);
}

/// A reply from the input's bytes: with `splice`, the question the engine
/// sent goes in after the 12-byte header, so the reply can match the query
/// and reach the answer handling.
pub fn reply_with_question(bytes: &[u8], question: &[u8], splice: bool) -> Vec<u8> {
    if splice && bytes.len() >= 12 {
        let mut m = bytes[..12].to_vec();
        m.extend_from_slice(question);
        m.extend_from_slice(&bytes[12..]);
        m
    } else {
        bytes.to_vec()
    }
}

/// Length of the question section of a DNS message with one question
/// whose name is uncompressed (the queries the engines send): the name in
/// wire form plus type and class.
pub fn dns_question_len(msg: &[u8]) -> Option<usize> {
    let mut at = 12;
    loop {
        let len = usize::from(*msg.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
    }
    (at + 4 <= msg.len()).then_some(at + 4 - 12)
}

/// The `config` target: `ipoe_config::parse` on arbitrary UTF-8. An
/// accepted config must survive `to_yaml` and parse back equal; every
/// refusal must render.
pub mod config {
    pub fn run(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        match ipoe_config::parse(text, "fuzz.yaml") {
            Ok(config) => {
                let yaml = config.to_yaml();
                match ipoe_config::parse(&yaml, "again.yaml") {
                    Ok(again) => {
                        assert_eq!(again, config, "round trip changed the config:\n{yaml}")
                    }
                    Err(e) => panic!("to_yaml output refused: {e}\n{yaml}"),
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// The `ctl_request` target: the control socket's request parser on
/// arbitrary lines.
pub mod ctl {
    use ipoe_proto::ctl::{error_reply, parse_request};

    pub fn run(data: &[u8]) {
        match parse_request(data) {
            Ok(req) => {
                // What handle_line reads from it.
                let _ = req.args.get("count").and_then(serde_json::Value::as_u64);
                let _ = req.args.get("rx");
                assert!(
                    std::str::from_utf8(data).is_ok(),
                    "accepted a line that is not UTF-8"
                );
            }
            Err(e) => {
                assert!(!e.is_empty());
                let _ = error_reply(&e).to_string();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every committed seed runs through its target's harness (what
    /// `-runs=0` does, without libFuzzer).
    #[test]
    fn every_seed_runs() {
        use ipoe_dataplane::tables::Port;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        type Harness = fn(&[u8]);
        let targets: [(&str, Harness); 13] = [
            ("graph_wan", |d| graph::run(d, Port::Wan)),
            ("graph_lan", |d| graph::run(d, Port::Lan)),
            ("dhcp4_server", dhcp4::run),
            ("dhcp6_client", dhcp6::run),
            ("ra_ndp_arp", neigh::run),
            ("mld", mld::run),
            ("config", config::run),
            ("ctl_request", ctl::run),
            ("dhcp6_server", dhcp6s::run),
            ("lan_ra", lan_ra::run),
            ("aftr_resolver", resolver::run),
            ("dns_proxy", dnsproxy::run),
            ("graph_napt", graph_napt::run),
        ];
        for (name, run) in targets {
            let entries = std::fs::read_dir(dir.join(name)).expect("seed directory");
            let mut n = 0;
            for e in entries {
                let data = std::fs::read(e.expect("entry").path()).expect("seed");
                run(&data);
                n += 1;
            }
            assert!(n > 0, "no seeds for {name}");
        }
    }

    /// The graph_napt seeds get through both NAPT44 nodes (the harness
    /// does reach the translation, not only drops before it).
    #[test]
    fn graph_napt_seeds_translate_both_ways() {
        use ipoe_dataplane::graph::NodeId;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/graph_napt");
        let (mut out, mut back) = (0, 0);
        for e in std::fs::read_dir(dir).expect("seed directory") {
            let data = std::fs::read(e.expect("entry").path()).expect("seed");
            let g = graph_napt::exercise(&data).expect("records");
            // With NAPT on, only nat44-out feeds dslite-encap, only
            // nat44-in ip4-rewrite.
            out += g.stats.nodes[NodeId::DsliteEncap as usize].ok_packets;
            back += g.stats.nodes[NodeId::Ip4Rewrite as usize].calls;
        }
        assert!(out > 0 && back > 0, "to the BR {out}, to the LAN {back}");
    }

    /// graph_napt over mutations of its seeds (stable Rust, no libFuzzer):
    /// no panic, no port leaked.
    #[test]
    fn graph_napt_mutated_seeds_run() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/graph_napt");
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for e in std::fs::read_dir(dir).expect("seed directory") {
            let seed = std::fs::read(e.expect("entry").path()).expect("seed");
            for _ in 0..300 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut d = seed.clone();
                for k in 0..(x % 6) {
                    let at = ((x >> (8 * k)) as usize) % d.len();
                    d[at] = (x >> (16 + k)) as u8;
                }
                graph_napt::run(&d);
            }
        }
    }

    /// The mld harness over mutations of its seeds: what a short fuzz run
    /// does, without libFuzzer.
    #[test]
    fn mld_mutated_seeds_run() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/mld");
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for e in std::fs::read_dir(dir).expect("seed directory") {
            let seed = std::fs::read(e.expect("entry").path()).expect("seed");
            for _ in 0..2000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut d = seed.clone();
                for k in 0..(x % 4) {
                    let at = ((x >> (8 * k)) as usize) % d.len();
                    d[at] = (x >> (16 + k)) as u8;
                }
                mld::run(&d);
            }
        }
    }

    #[test]
    fn dns_question_len_spans_name_type_and_class() {
        // A query for aftr.lab.example AAAA with an OPT record after it.
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(b"\x04aftr\x03lab\x07example\x00\x00\x1c\x00\x01");
        q.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(dns_question_len(&q), Some(22));
        assert_eq!(dns_question_len(&q[..12 + 21]), None, "type/class cut");
        q[12] = 0xc0;
        assert_eq!(dns_question_len(&q), None, "a pointer is not a label");
    }

    #[test]
    fn split_reads_what_join_wrote() {
        let data = join(&[7, 8], &[(1, b"abc"), (2, b""), (3, b"xy")]);
        let (h, r) = split::<2>(&data);
        assert_eq!(h, [7, 8]);
        let got: Vec<(u8, &[u8])> = r.iter().map(|r| (r.flags, r.bytes)).collect();
        assert_eq!(got, vec![(1, &b"abc"[..]), (2, &b""[..]), (3, &b"xy"[..])]);
    }

    #[test]
    fn a_fixed_udp6_checksum_verifies() {
        // IPv6 UDP frame with a zero checksum, fixed, then summed again
        // over the pseudo-header gives 0xffff (i.e. folds to 0).
        let mut f = vec![0u8; 14 + 40 + 12];
        f[12] = 0x86;
        f[13] = 0xdd;
        f[14] = 0x60;
        f[14 + 5] = 12;
        f[14 + 6] = 17;
        f[14 + 8] = 0xfe;
        f[14 + 9] = 0x80;
        f[14 + 23] = 1;
        f[14 + 24] = 0xff;
        f[14 + 25] = 0x02;
        f[14 + 39] = 2;
        f[54 + 5] = 12;
        f[54 + 8..].copy_from_slice(b"ping");
        fix_checksums(&mut f);
        let mut acc = sum16(0, &f[14 + 8..14 + 40]);
        acc += 12 + 17;
        assert_eq!(fold(sum16(acc, &f[54..])), 0);
    }
}

/// The `graph_wan` and `graph_lan` targets: the whole node pipeline.
///
/// Header: two bytes.
/// - `h0` bit 0: the tables before any neighbor is resolved (every
///   forwarded packet is a neighbor miss); bit 1: drop logging off;
///   bit 2: open the sessions the frames answer first (their LAN side
///   through the graph: WAN replies then pass the firewall); bit 3: trace
///   armed (records are summarized afterwards, as `show trace` does);
///   bit 4: pinholes for the LAN host and an IPv6 MSS clamp; bit 5: a
///   stale LAN prefix; bit 6: firewall off; bit 7: no tunnel.
/// - `h1`: each vector runs `h1 * 25 ms` after the one before (up to
///   6.4 s, past the 2 s reassembly timeout).
///
/// Records: the frames, received on `rx`; record flags: bit 0: fix the
/// frame's checksums first; bit 1: received on the other port (a
/// conversation through the router: a LAN host's SYN, the WAN's SYN-ACK);
/// bit 2: the frame starts a new vector; bit 3: then the TCP/UDP checksum
/// left partial, as a kernel peer with transmit offload sends it (the
/// input nodes complete it). Without bit 2 anywhere, the first
/// half of the frames is one vector and the rest a second one. Sessions
/// and reassembly carry over from vector to vector.
pub mod graph {
    use std::sync::Arc;

    use ipoe_dataplane::firewall::{DropLog, Pinhole, PinholeHost, WorkerFirewall};
    use ipoe_dataplane::graph::{Graph, RateLimit};
    use ipoe_dataplane::session::{SessionTable, Timeouts};
    use ipoe_dataplane::tables::{Fib, Port};
    use ipoe_dataplane::testkit::{self, FrameArena};
    use ipoe_dataplane::trace::{summarize, TraceControl, Tracer};
    use ipoe_dataplane::FRAME_SIZE;

    use super::{fix_checksums, split, MAX_RECORDS};

    /// Spare frames handed to the graph before each vector (for second
    /// fragments).
    const SPARES: usize = 8;
    /// Session table slots.
    const SESSIONS: usize = 512;

    fn fib_for(h0: u8) -> Fib {
        let mut fib = if h0 & 1 != 0 {
            testkit::lab_fib_unresolved()
        } else {
            testkit::lab_fib()
        };
        fib.firewall.log_drops = h0 & 2 == 0;
        if h0 & 16 != 0 {
            let iid: [u8; 8] = testkit::HOST6.octets()[8..].try_into().unwrap_or_default();
            fib.firewall.pinholes = vec![
                Pinhole {
                    host: PinholeHost::Iid(iid),
                    proto: 6,
                    ports: (1, 65535),
                },
                Pinhole {
                    host: PinholeHost::Mac(testkit::HOST_MAC),
                    proto: 17,
                    ports: (53, 53),
                },
                Pinhole {
                    host: PinholeHost::Iid(iid),
                    proto: 58,
                    ports: (0, 0),
                },
            ];
            fib.firewall.mss_clamp_v6 = Some(1220);
        }
        if h0 & 32 != 0 {
            fib.stale_lan_prefixes = vec![[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0x01, 0x10]];
        }
        if h0 & 64 != 0 {
            fib.firewall.enabled = false;
        }
        if h0 & 128 != 0 {
            fib.tunnel = None;
        }
        fib
    }

    /// Every index in the outputs names a packet of the vector, every
    /// packet is in exactly one output (else its frame would be lost or
    /// freed twice), and what goes out or to the control thread lies
    /// inside its own frame.
    fn check_outputs(g: &Graph, mem_len: usize) {
        let mut seen = [false; ipoe_dataplane::graph::MAX_VECTOR];
        let queues = [&g.out.tx[0], &g.out.tx[1], &g.out.punt, &g.out.drop];
        for (k, q) in queues.iter().enumerate() {
            for &i in q.as_slice() {
                let i = usize::from(i);
                assert!(i < g.count, "output {k} holds {i}, vector has {}", g.count);
                assert!(!seen[i], "packet {i} in two outputs");
                seen[i] = true;
                if k < 3 {
                    let m = g.meta[i];
                    let addr = m.addr as usize;
                    let off = addr % FRAME_SIZE;
                    assert!(
                        addr + m.len as usize <= mem_len && off + m.len as usize <= FRAME_SIZE,
                        "packet {i} at {addr} len {} leaves its frame",
                        m.len
                    );
                }
            }
        }
        assert!(
            seen[..g.count].iter().all(|s| *s),
            "a packet of the vector is in no output"
        );
    }

    pub fn run(data: &[u8], rx: Port) {
        let _ = exercise(data, rx);
    }

    /// [`run`], returning the graph (its counters add up every vector).
    pub fn exercise(data: &[u8], rx: Port) -> Option<Graph> {
        exercise_with(data, rx, |_, _| {})
    }

    /// [`exercise`] with `setup` changing the Fib and the graph (NAPT44 on)
    /// before the first frame.
    pub fn exercise_with(
        data: &[u8],
        rx: Port,
        setup: impl FnOnce(&mut Fib, &mut Graph),
    ) -> Option<Graph> {
        let ([h0, h1], records) = split::<2>(data);
        if records.is_empty() {
            return None;
        }
        let mut fib = fib_for(h0);
        let frames: Vec<(Port, Vec<u8>)> = records
            .iter()
            .map(|r| {
                let mut f = r.bytes.to_vec();
                if r.flags & 1 != 0 {
                    fix_checksums(&mut f);
                }
                if r.flags & 8 != 0 {
                    testkit::make_partial(&mut f);
                }
                let port = match (r.flags & 2 != 0, rx) {
                    (false, p) => p,
                    (true, Port::Wan) => Port::Lan,
                    (true, Port::Lan) => Port::Wan,
                };
                (port, f)
            })
            .collect();
        // A small session table (eviction is reached) and a drop log, as
        // a worker has; ICMP errors never rate-limited.
        let log = Arc::new(DropLog::new(64));
        let fw = WorkerFirewall::new(
            Arc::new(SessionTable::new(SESSIONS, Timeouts::default())),
            Some(log.clone()),
            std::time::Instant::now(),
        );
        let mut g = Graph::with_firewall(fw);
        g.icmp_limit = RateLimit::new(0, u64::MAX);
        setup(&mut fib, &mut g);
        let trace = Arc::new(TraceControl::default());
        if h0 & 8 != 0 {
            trace.add(1000);
            g.tracer = Tracer::new(Some(trace.clone()), 0);
        }
        if h0 & 4 != 0 {
            testkit::open_sessions(&mut g, &fib, &frames);
        }
        let mut arena = FrameArena::new(MAX_RECORDS + SPARES);
        let refs = testkit::as_refs(&frames);
        let mut starts: Vec<usize> = records
            .iter()
            .enumerate()
            .filter(|(k, r)| *k > 0 && r.flags & 4 != 0)
            .map(|(k, _)| k)
            .collect();
        if starts.is_empty() {
            starts.push(refs.len().div_ceil(2));
        }
        starts.insert(0, 0);
        starts.push(refs.len());
        let mut now_ns: u64 = 10_000_000_000;
        for w in starts.windows(2) {
            let vector = &refs[w[0]..w[1]];
            g.spare.clear();
            g.spare
                .extend((MAX_RECORDS..MAX_RECORDS + SPARES).map(|k| (k * FRAME_SIZE) as u64));
            arena.run(&mut g, &fib, vector, now_ns);
            check_outputs(&g, arena.mem().len());
            while log.pop().is_some() {}
            now_ns += u64::from(h1) * 25_000_000;
        }
        for r in trace.records() {
            let _ = r.summary();
            let _ = summarize(r.snap());
            for s in r.steps() {
                let _ = s.decision.describe(s.node);
            }
        }
        Some(g)
    }
}

/// The `graph_napt` target: the node pipeline with MAP-E NAPT44 on
/// (nat44-out and nat44-in in place of ip4-firewall, the BR = the lab's
/// AFTR).
///
/// Header: one byte, then the [`graph`] target's input. Bit 0: the v6plus
/// port set (240 ports in 15 runs) instead of 8 ports, 7000-7007, so a
/// fuzzer finds mapped ports at once; bit 1: port forwards (TCP and UDP on
/// the set's last port, to the lab LAN host); bit 2: a MAP-E Forwarding
/// Mapping Rule (peer CEs); bit 3: frames received on the WAN (else the
/// LAN; record flag bit 1 flips one, as in [`graph`]); bit 4: a per-host
/// limit of 4 ports.
///
/// After the run, every session is expired: each dynamic port must be
/// back in the allocator and each forward keep exactly its own share (a
/// leak or a double release panics).
pub mod graph_napt {
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    use ipoe_dataplane::graph::Graph;
    use ipoe_dataplane::nat::bindings::{Bindings, Forward, NatProto};
    use ipoe_dataplane::nat::ports::Limits;
    use ipoe_dataplane::nat::{Fmr, PortPool};
    use ipoe_dataplane::tables::{Fib, Port};
    use ipoe_dataplane::testkit;
    use ipoe_proto::map::{IidFormat, PortSet, Rule};

    /// The shared address: inside the FMR's IPv4 prefix, so peer CEs and
    /// the rule meet.
    pub const SHARED: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 77);

    pub fn run(data: &[u8]) {
        let _ = exercise(data);
    }

    /// [`run`], returning the graph (for the seed tests).
    pub fn exercise(data: &[u8]) -> Option<Graph> {
        let (&v, rest) = data.split_first()?;
        let pool = if v & 1 != 0 {
            PortPool::from_set(PortSet::new(4, 8, 0x3c))
        } else {
            PortPool::Range {
                first: 7000,
                last: 7007,
            }
        };
        let limits = Limits {
            grace_s: 0,
            per_host: (v & 16 != 0).then_some(4),
            ..Limits::default()
        };
        let last = pool.port_at(pool.len() - 1).unwrap_or(7007);
        let forwards: Vec<Forward> = if v & 2 != 0 {
            [NatProto::Tcp, NatProto::Udp]
                .into_iter()
                .map(|proto| Forward {
                    proto,
                    port: last,
                    to: (testkit::HOST4, 8080),
                })
                .collect()
        } else {
            Vec::new()
        };
        let b = Bindings::new(SHARED, pool, limits)
            .with_seed(0x5eed)
            .with_forwards(&forwards)
            .expect("the forwards fit the pool");
        let b = Arc::new(b);
        let rx = if v & 8 != 0 { Port::Wan } else { Port::Lan };
        let fmr = Rule::new(
            "2001:db8:4d00::/40".parse().expect("prefix"),
            "198.51.100.0/24".parse().expect("prefix"),
            16,
            4,
        )
        .ok()
        .filter(|_| v & 4 != 0)
        .map(|rule| Fmr {
            rule,
            iid: IidFormat::Legacy,
        });
        let setup = |fib: &mut Fib, g: &mut Graph| {
            fib.napt = Some(b.clone());
            fib.map_fmr = fmr;
            g.fw.sessions.set_nat_release(b.clone());
        };
        let g = super::graph::exercise_with(rest, rx, setup)?;
        // A month on, every session is gone: only the forwards' own shares
        // stay.
        g.fw.sessions.expire(10_000_000, usize::MAX);
        for p in NatProto::ALL {
            let st = b.stats(p);
            assert_eq!(st.mappings, 0, "{p:?} ports still mapped: {st:?}");
            assert_eq!(st.ports.bad_release, 0, "{p:?} port released twice");
            for f in forwards.iter().filter(|f| f.proto == p) {
                assert_eq!(b.refs(p, f.port), 1, "forward {p:?} {}", f.port);
            }
        }
        Some(g)
    }
}

/// The `dhcp4_server` target: the LAN's DHCPv4 server fed client messages.
///
/// Header: one byte; bits 0-1 pick the configuration (0: the lab's
/// 192.168.2.0/24 with a reservation; 1: a four-address pool, two table
/// slots, short holds and an MTU; 2: a /30; 3: nonsense the server must
/// clamp), bits 2-3 the one a reload switches to.
///
/// Records: UDP payloads received on port 67. Flags: bits 0-2 advance the
/// clock first (0, 1 s, 10 s, 59 s, 10 min, 1 h, 12 h, 3 days); bit 3: the
/// Ethernet source is the message's chaddr (else another MAC); bit 4: poll
/// afterwards; bit 5: reload the other configuration; bit 6: restart
/// (export the leases, import them into a new server); bit 7: list the
/// leases as `show leases` does.
pub mod dhcp4 {
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant, SystemTime};

    use ipoe_proto::dhcp4s::{Dhcp4Config, Dhcp4Server, StaticLease};

    use super::split;

    const STEPS: [u64; 8] = [0, 1, 10, 59, 600, 3600, 12 * 3600, 3 * 86400];

    fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(a, b, c, d)
    }

    pub fn config(variant: u8) -> Dhcp4Config {
        let server = ip(192, 168, 2, 1);
        let mut cfg = Dhcp4Config::new(server, 24, (ip(192, 168, 2, 100), ip(192, 168, 2, 199)));
        cfg.domain = Some("lan".to_owned());
        cfg.ntp = vec![server];
        cfg.static_leases = vec![StaticLease {
            mac: [0x02, 0, 0, 0, 0x01, 0x10],
            ip: ip(192, 168, 2, 10),
            hostname: Some("host".to_owned()),
        }];
        match variant & 3 {
            0 => {}
            1 => {
                cfg.range = (ip(192, 168, 2, 100), ip(192, 168, 2, 103));
                cfg.max_leases = 2;
                cfg.offer_hold = Duration::from_secs(1);
                cfg.decline_quarantine = Duration::from_secs(60);
                cfg.lease_time = Duration::from_secs(120);
                cfg.mtu = Some(1280);
                cfg.dns = vec![server, ip(192, 168, 2, 2), ip(9, 9, 9, 9)];
            }
            2 => {
                cfg.server_ip = ip(10, 0, 0, 1);
                cfg.prefix_len = 30;
                cfg.range = (ip(10, 0, 0, 0), ip(10, 0, 0, 3));
                cfg.static_leases.clear();
                cfg.mtu = Some(68);
            }
            _ => {
                cfg.prefix_len = 33;
                cfg.range = (ip(192, 168, 2, 199), ip(192, 168, 2, 100));
                cfg.lease_time = Duration::ZERO;
                cfg.offer_hold = Duration::MAX;
                cfg.decline_quarantine = Duration::MAX;
                cfg.max_leases = 0;
                cfg.domain = Some("bad domain!".to_owned());
                cfg.mtu = Some(0);
                cfg.static_leases.push(StaticLease {
                    mac: [0xff; 6],
                    ip: server,
                    hostname: Some("x".repeat(300)),
                });
            }
        }
        cfg
    }

    pub fn run(data: &[u8]) {
        let ([h], records) = split::<1>(data);
        let cfgs = [config(h), config(h >> 2)];
        let mut which = 0;
        let mut server = Dhcp4Server::new(cfgs[0].clone(), 1);
        let t0 = Instant::now();
        let wall0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut elapsed = 0u64;
        for r in records {
            elapsed += STEPS[usize::from(r.flags & 7)];
            let now = t0 + Duration::from_secs(elapsed);
            let wall = wall0 + Duration::from_secs(elapsed);
            let src_mac = if r.flags & 8 != 0 && r.bytes.len() >= 34 {
                r.bytes[28..34].try_into().unwrap_or_default()
            } else {
                [0x02, 0, 0, 0, 0x01, 0x99]
            };
            if let Some(reply) = server.handle(now, src_mac, r.bytes) {
                // 576 octets of IP datagram, or up to the MTU (1500 when
                // none is configured) when the client allows more.
                let mtu = cfgs[which].mtu.map_or(1500, usize::from).max(576);
                assert!(
                    reply.payload.len() + 28 <= mtu,
                    "reply of {} bytes over the MTU {mtu}",
                    reply.payload.len()
                );
                assert!(reply.payload.len() >= 240, "reply shorter than BOOTP");
            }
            if r.flags & 16 != 0 {
                let _ = server.poll(now);
            }
            if r.flags & 32 != 0 {
                which ^= 1;
                server.set_config(cfgs[which].clone());
            }
            if r.flags & 64 != 0 {
                let stored = server.export(now, wall);
                let mut again = Dhcp4Server::new(cfgs[which].clone(), 2);
                again.import(now, wall, stored);
                server = again;
            }
            if r.flags & 128 != 0 {
                let leases = server.leases(now);
                let bound = server.counters().named().len();
                let _ = (leases, bound, server.take_dirty());
            }
        }
    }
}

/// The `dhcp6_client` target: the DHCPv6-PD client fed server messages in
/// each of its states.
///
/// Header: one byte. Bits 0-2: the state the client is driven to first
/// with well-formed messages from a server (0 Idle, 1 Soliciting,
/// 2 Requesting, 3 Bound, 4 Renewing, 5 Rebinding, 6 a restored lease
/// being rebound, 7 Bound through Rapid Commit); bit 3: ask for IA_NA
/// too; bit 4: Rapid Commit; bit 5: no prefix-length hint.
///
/// Records: UDP payloads from port 547. Flags: bit 0 clear: the message's
/// transaction id is replaced by the one of the client's current exchange
/// (else the fuzzer would almost never match it); bits 1-3: the clock runs
/// first, deadline by deadline (0, 1 s, 5 s, 30 s, 30 min, 48 min, 2 h,
/// 1 day); bit 4: `pd renew`; bit 5: `pd rebind`; bit 6: release;
/// bit 7: start.
///
/// The client's DUID and IAID are the lab's, so captured replies carry
/// the right Client Identifier and IA_PD.
pub mod dhcp6 {
    use std::net::Ipv6Addr;
    use std::time::{Duration, Instant};

    use ipoe_proto::dhcp6c::{Client, ClientConfig, Lease, State};

    use super::{lab, split};

    const STEPS: [u64; 8] = [0, 1, 5, 30, 1800, 2880, 7200, 86400];
    /// The lab's Kea.
    pub const SERVER_DUID: [u8; 13] = [
        0x00, 0x02, 0x00, 0x00, 0x09, 0xbf, 0x6b, 0x65, 0x61, 0x2d, 0x68, 0x67, 0x77,
    ];
    const PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x110, 0, 0, 0, 0);

    fn opt(out: &mut Vec<u8>, code: u16, data: &[u8]) {
        out.extend_from_slice(&code.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
    }

    /// An Advertise (2) or Reply (7) delegating 2001:db8:0:110::/60, as
    /// the lab's server sends it.
    pub fn answer(kind: u8, xid: [u8; 3], preference: Option<u8>, rapid: bool) -> Vec<u8> {
        let mut m = vec![kind, xid[0], xid[1], xid[2]];
        opt(&mut m, 1, &lab::DUID);
        opt(&mut m, 2, &SERVER_DUID);
        if let Some(p) = preference {
            opt(&mut m, 7, &[p]);
        }
        if rapid {
            opt(&mut m, 14, &[]);
        }
        let mut prefix = Vec::new();
        prefix.extend_from_slice(&3600u32.to_be_bytes());
        prefix.extend_from_slice(&7200u32.to_be_bytes());
        prefix.push(60);
        prefix.extend_from_slice(&PREFIX.octets());
        let mut ia = Vec::new();
        ia.extend_from_slice(&lab::IAID.to_be_bytes());
        ia.extend_from_slice(&1800u32.to_be_bytes());
        ia.extend_from_slice(&2880u32.to_be_bytes());
        opt(&mut ia, 26, &prefix);
        opt(&mut m, 25, &ia);
        let mut na = Vec::new();
        na.extend_from_slice(&lab::IAID.to_be_bytes());
        na.extend_from_slice(&[0; 8]);
        let mut addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 0x99)
            .octets()
            .to_vec();
        addr.extend_from_slice(&3600u32.to_be_bytes());
        addr.extend_from_slice(&7200u32.to_be_bytes());
        opt(&mut na, 5, &addr);
        opt(&mut m, 3, &na);
        opt(
            &mut m,
            23,
            &Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 1).octets(),
        );
        opt(&mut m, 24, b"\x03lab\x07example\x00");
        opt(&mut m, 64, b"\x04aftr\x03lab\x07example\x00");
        m
    }

    struct Harness {
        c: Client,
        now: Instant,
        next: Option<Instant>,
        /// Transaction id of the last message the client sent.
        xid: [u8; 3],
    }

    impl Harness {
        fn poll(&mut self) {
            let mut out = Vec::new();
            self.next = self.c.poll(self.now, &mut out);
            if let Some(next) = self.next {
                assert!(
                    next > self.now,
                    "deadline {next:?} not after {:?}",
                    self.now
                );
            }
            for m in out {
                assert!(m.len() >= 4, "client sent a {}-byte message", m.len());
                self.xid = [m[1], m[2], m[3]];
            }
            let _ = self.c.drain_events();
        }

        /// Runs the timers deadline by deadline until `until`.
        fn run_until(&mut self, until: Instant) {
            crate::run_until(self, until, 256, |h| (&mut h.now, h.next), Self::poll);
        }

        /// Runs the timers until the client has sent something.
        fn until_sent(&mut self) {
            let before = self.c.counters().clone();
            for _ in 0..8 {
                if *self.c.counters() != before {
                    return;
                }
                match self.next {
                    Some(n) => {
                        self.now = n;
                        self.poll();
                    }
                    None => return,
                }
            }
        }

        fn deliver(&mut self, payload: &[u8]) {
            self.c.handle(self.now, payload);
            self.poll();
        }
    }

    fn check(c: &Client, now: Instant) {
        if let Some(l) = c.lease() {
            assert!(l.prefix_len <= 128, "prefix length {}", l.prefix_len);
            assert!(
                l.preferred <= l.valid,
                "preferred {} > valid {}",
                l.preferred,
                l.valid
            );
            assert!(l.dns_servers.len() <= 8 && l.domains.len() <= 8);
            let _ = c.times(now);
        }
        let _ = c.counters().named();
    }

    pub fn run(data: &[u8]) {
        let ([h], records) = split::<1>(data);
        let cfg = ClientConfig {
            duid: lab::DUID.to_vec(),
            iaid: lab::IAID,
            prefix_hint: if h & 32 != 0 { 0 } else { 60 },
            request_na: h & 8 != 0,
            rapid_commit: h & 16 != 0 || h & 7 == 7,
        };
        let t0 = Instant::now();
        let mut hs = Harness {
            c: Client::new(cfg, 0x5eed),
            now: t0,
            next: None,
            xid: [0; 3],
        };
        match h & 7 {
            0 => {}
            6 => {
                let lease = Lease {
                    prefix: PREFIX,
                    prefix_len: 60,
                    preferred: 3600,
                    valid: 7200,
                    t1: 1800,
                    t2: 2880,
                    server_id: SERVER_DUID.to_vec(),
                    obtained: t0,
                    dns_servers: vec![],
                    domains: vec![],
                    aftr_name: None,
                    sol_max_rt: None,
                    address: None,
                    extra_prefixes: Vec::new(),
                };
                hs.now = t0 + Duration::from_secs(100);
                hs.c.restore(lease, hs.now);
                hs.poll();
            }
            state => {
                hs.c.start(hs.now);
                hs.poll();
                hs.until_sent();
                if state == 7 {
                    hs.deliver(&answer(7, hs.xid, None, true));
                } else if state >= 2 {
                    hs.deliver(&answer(2, hs.xid, Some(255), false));
                    hs.until_sent();
                    if state >= 3 {
                        hs.deliver(&answer(7, hs.xid, None, false));
                    }
                    if state >= 4 {
                        let secs = if state == 4 { 1800 } else { 2880 };
                        hs.run_until(hs.now + Duration::from_secs(secs));
                    }
                }
                let want = [
                    State::Idle,
                    State::Soliciting,
                    State::Requesting,
                    State::Bound,
                    State::Renewing,
                    State::Rebinding,
                    State::Rebinding,
                    State::Bound,
                ][usize::from(state)];
                debug_assert_eq!(hs.c.state(), want, "the harness drives the client");
            }
        }
        for r in records {
            let step = Duration::from_secs(STEPS[usize::from((r.flags >> 1) & 7)]);
            if !step.is_zero() {
                hs.run_until(hs.now + step);
            }
            let mut msg = r.bytes.to_vec();
            if r.flags & 1 == 0 && msg.len() >= 4 {
                msg[1..4].copy_from_slice(&hs.xid);
            }
            hs.deliver(&msg);
            check(&hs.c, hs.now);
            if r.flags & 16 != 0 {
                hs.c.renew_now(hs.now);
                hs.poll();
            }
            if r.flags & 32 != 0 {
                hs.c.rebind_now(hs.now);
                hs.poll();
            }
            if r.flags & 64 != 0 {
                if let Some(m) = hs.c.release(hs.now) {
                    hs.xid = [m[1], m[2], m[3]];
                }
                hs.poll();
            }
            if r.flags & 128 != 0 {
                hs.c.start(hs.now);
                hs.poll();
            }
            check(&hs.c, hs.now);
        }
    }
}

/// The `ra_ndp_arp` target: the neighbor engine (ARP, NDP, DAD, echo) on
/// both sides, and the WAN's router discovery and SLAAC fed what the
/// neighbor engine leaves alone on the WAN, as the daemon routes them.
///
/// Header: one byte. Bit 0: RFC 7217 stable-privacy identifiers (else
/// EUI-64); bit 1: SLAAC off; bit 2: small tables (2 neighbors, 2
/// incomplete, 1 held packet); bit 3: solicit first (resolve the gateway
/// and a LAN host, so NAs and ARP replies have an entry to complete).
///
/// Records: Ethernet frames. Flags: bit 0: received on the LAN (else the
/// WAN); bit 1: fix checksums first; bits 2-4: the clock runs first
/// (0, 100 ms, 1 s, 5 s, 30 s, 5 min, 30 min, 2 h); bit 5: the bytes are
/// a bare RA (from the ICMPv6 type on) from fe80::1 with hop limit 255;
/// bit 6: the frame is also a packet held for resolution of a next hop
/// picked by its length; bit 7: the WAN link goes down and up.
pub mod neigh {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::time::{Duration, Instant};

    use ipoe_proto::hostio::{self, Inbound};
    use ipoe_proto::neigh::{IfaceAddrs, NeighConfig, NeighborEngine, Side, Verdict};
    use ipoe_proto::slaac::{IidMode, SlaacConfig, WanRa, MAX_ROUTERS, MAX_SLAAC_PREFIXES};

    use super::{fix_checksums, lab, split};

    const STEPS_MS: [u64; 8] = [0, 100, 1000, 5000, 30_000, 300_000, 1_800_000, 7_200_000];

    fn wan_addrs(extra: &[(Ipv6Addr, u8)]) -> IfaceAddrs {
        let mut ipv6 = vec![(lab::WAN_GUA, 64)];
        ipv6.extend_from_slice(extra);
        IfaceAddrs {
            mac: lab::WAN_MAC,
            ipv4: None,
            link_local: lab::WAN_LL,
            ipv6,
            mtu: 1500,
        }
    }

    fn lan_addrs() -> IfaceAddrs {
        IfaceAddrs {
            mac: lab::LAN_MAC,
            ipv4: Some((lab::LAN_V4, 24)),
            link_local: lab::LAN_LL,
            ipv6: vec![(lab::LAN_GUA, 64)],
            mtu: 1500,
        }
    }

    /// Next hops a held packet waits for.
    const NEXT_HOPS: [(Side, IpAddr); 4] = [
        (Side::Wan, IpAddr::V6(lab::GATEWAY)),
        (Side::Lan, IpAddr::V4(lab::HOST4)),
        (Side::Lan, IpAddr::V6(lab::HOST6)),
        (Side::Lan, IpAddr::V4(Ipv4Addr::new(192, 168, 2, 77))),
    ];

    pub fn run(data: &[u8]) {
        let ([h], records) = split::<1>(data);
        let t0 = Instant::now();
        let mut now = t0;
        let cfg = if h & 4 != 0 {
            NeighConfig {
                max_entries: 2,
                max_incomplete: 2,
                hold_per_neighbor: 1,
                ..NeighConfig::default()
            }
        } else {
            NeighConfig::default()
        };
        let max_rows = 2 * (cfg.max_entries + cfg.max_incomplete);
        let mut eng = NeighborEngine::new(cfg, wan_addrs(&[]), lan_addrs(), now);
        let mut out = Vec::new();
        eng.poll(now, &mut out);
        now += Duration::from_secs(1);
        eng.poll(now, &mut out);
        let mut ra = WanRa::new(
            SlaacConfig {
                mac: lab::WAN_MAC,
                ifname: "wan0".to_owned(),
                iid: if h & 1 != 0 {
                    IidMode::StablePrivacy { secret: [7; 32] }
                } else {
                    IidMode::Eui64
                },
                autoconf: h & 2 == 0,
            },
            0x5eed,
        );
        ra.start(now);
        let mut sent = Vec::new();
        ra.poll(now, &mut sent);
        if h & 8 != 0 {
            for (side, hop) in NEXT_HOPS {
                let packet = [0u8; 60];
                eng.resolve(now, side, hop, &packet, &mut out);
            }
        }
        let mut slaac: Vec<Ipv6Addr> = Vec::new();
        for r in records {
            now += Duration::from_millis(STEPS_MS[usize::from((r.flags >> 2) & 7)]);
            let side = if r.flags & 1 != 0 {
                Side::Lan
            } else {
                Side::Wan
            };
            let mut frame = r.bytes.to_vec();
            if r.flags & 2 != 0 {
                fix_checksums(&mut frame);
            }
            if r.flags & 32 != 0 {
                let _ = ra.handle_ra(now, lab::GATEWAY, 255, &frame);
            } else {
                out.clear();
                let verdict = eng.handle_frame(now, side, &frame, &mut out);
                for o in &out {
                    assert!(
                        o.frame.len() >= 14,
                        "engine sent a {}-byte frame",
                        o.frame.len()
                    );
                }
                // The daemon's routing of what the engine leaves alone.
                if side == Side::Wan && verdict == Verdict::Unhandled {
                    if let Ok(Inbound::Icmpv6 {
                        src,
                        hop_limit,
                        message,
                        ..
                    }) = hostio::classify(&frame)
                    {
                        if message.first() == Some(&134) {
                            let _ = ra.handle_ra(now, src, hop_limit, message);
                        }
                    }
                }
            }
            if r.flags & 64 != 0 {
                let (side, hop) = NEXT_HOPS[frame.len() % NEXT_HOPS.len()];
                eng.resolve(now, side, hop, &frame, &mut out);
            }
            if r.flags & 128 != 0 {
                ra.link_down(now);
                ra.link_up(now);
            }
            eng.poll(now, &mut out);
            sent.clear();
            ra.poll(now, &mut sent);
            let _ = ra.drain_events();
            // DAD failures go back to SLAAC; SLAAC's addresses to the
            // engine, as the daemon does.
            for (s, addr) in eng.dad_failed() {
                if s == Side::Wan {
                    ra.dad_failed(now, addr);
                }
            }
            let addrs: Vec<Ipv6Addr> = ra.addresses().iter().map(|a| a.addr).collect();
            if addrs != slaac {
                let extra: Vec<(Ipv6Addr, u8)> = addrs.iter().map(|a| (*a, 64)).collect();
                eng.set_addrs(Side::Wan, wan_addrs(&extra), now);
                slaac = addrs;
            }
            assert!(
                eng.dump(now).len() <= max_rows,
                "neighbor table over its bound"
            );
            assert!(ra.routers().len() <= MAX_ROUTERS);
            assert!(slaac.len() <= MAX_SLAAC_PREFIXES);
            let _ = (ra.dns_servers(now), ra.domains(now), eng.entries().count());
        }
    }
}

/// The `mld` target: the MLD host (`ipoe_proto::mld`) fed arbitrary
/// frames and membership changes on a moving clock. Header: 1 byte
/// (bit 0: the smallest MTU, 1280, else 1500; bit 1: no groups at start). Each record's
/// flags pick what it is:
/// - `flags % 4 == 0`: a whole Ethernet frame, as punted;
/// - `1`: an ICMPv6 MLD message, framed as a querier would (link-local
///   source, hop limit 1, Router Alert, correct checksum), so the fuzzer
///   reaches the query logic;
/// - `2`: the bytes parsed by `Message::parse` alone;
/// - `3`: a new address set (each 16 bytes one address).
///
/// The clock moves by `STEPS_MS[flags >> 5]` after each record. Every
/// frame the engine sends must be a valid MLD frame of ours that fits
/// the MTU, and the deadline it returns must not be in the past.
pub mod mld {
    use std::net::Ipv6Addr;
    use std::time::{Duration, Instant};

    use ipoe_proto::mld::wire::{self, Ipv6Mld, Message};
    use ipoe_proto::mld::{memberships, Mld, MldConfig, Role};

    use super::{lab, split};

    const STEPS_MS: [u64; 8] = [0, 1, 50, 500, 1000, 5000, 30_000, 300_000];
    const QUERIER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x06, 0x00];
    const QUERIER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x600);

    fn role() -> Role {
        Role {
            router: true,
            dhcpv6_server: true,
        }
    }

    pub fn run(data: &[u8]) {
        let ([h], records) = split::<1>(data);
        let mtu = if h & 1 != 0 { 1280 } else { 1500 };
        let mut eng = Mld::new(
            MldConfig {
                mtu,
                ..MldConfig::default()
            },
            lab::LAN_MAC,
            u64::from(h),
        );
        let mut now = Instant::now();
        if h & 2 == 0 {
            eng.set_groups(
                now,
                &memberships(role(), &[lab::LAN_LL, lab::LAN_GUA]),
                lab::LAN_LL,
            );
        }
        for r in records {
            match r.flags % 4 {
                0 => {
                    let _ = eng.handle_frame(now, r.bytes);
                }
                1 => {
                    let f = wire::frame(QUERIER_MAC, QUERIER, wire::ALL_NODES, r.bytes.to_vec());
                    let _ = eng.handle_frame(now, &f);
                }
                2 => {
                    if let Ok(Message::Query(q)) = Message::parse(r.bytes, 64) {
                        assert!(q.sources.len() <= 64);
                        assert!(q.group.is_unspecified() || q.group.is_multicast());
                    }
                }
                _ => {
                    let own: Vec<Ipv6Addr> = r
                        .bytes
                        .chunks_exact(16)
                        .take(80)
                        .map(|c| Ipv6Addr::from(<[u8; 16]>::try_from(c).unwrap()))
                        .collect();
                    eng.set_groups(now, &memberships(role(), &own), lab::LAN_LL);
                }
            }
            let mut out = Vec::new();
            let next = eng.poll(now, &mut out);
            for f in &out {
                let m = Ipv6Mld::parse(f).expect("we send MLD");
                assert!(m.checksum_ok && m.router_alert && m.hop_limit == 1);
                assert!(f.len() - 14 <= mtu);
                assert!(Message::parse(m.message, 64).is_ok());
            }
            assert!(eng.groups().len() <= MldConfig::default().max_groups);
            if let Some(n) = next {
                assert!(n >= now, "deadline in the past");
            }
            now += Duration::from_millis(STEPS_MS[usize::from(r.flags >> 5)]);
        }
    }
}
