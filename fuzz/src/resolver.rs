//! The `aftr_resolver` target: the AFTR name's resolver fed answers from
//! the WAN, as `control/src/wan.rs` drives it (servers from the WAN's
//! RDNSS / option 23, queries out, UDP from port 53 in).
//!
//! Only the resolver's public API is used (`Resolver`, its config, queries,
//! answer, events and counters), so the target survives a rewrite of the
//! wire code behind it.
//!
//! Header: one byte. Bits 0-1: the name (`aftr.lab.example`,
//! `gw.lab.example`, `GW.Lab.Example`, or one that cannot be a DNS name);
//! bits 2-3: the servers (the lab's, two, eleven with duplicates and
//! unusable ones, none until a record sets some); bit 4: short TTL bounds
//! and retries (0 s..60 s, 100 ms..1 s).
//!
//! Records: datagrams to the resolver. Flags bits 0-2: the clock runs
//! first, poll by poll (0, 100 ms, 1 s, 5 s, 30 s, 10 min, 1 h, 1 day);
//! bit 3 clear: the answer's id is the outstanding query's (the first two
//! bytes are overwritten; else the fuzzer would almost never match it);
//! bit 4: the record holds the header then what follows the question, and
//! the outstanding query's question goes in between (so mutations work on
//! the answer records); bit 5: from another address or port than the
//! query went to, or to another port (the first byte picks); bit 6: the
//! bytes are a whole Ethernet frame, routed as `wan.rs` routes it (UDP
//! from port 53 over IPv6 to `handle`), checksums fixed first; bit 7: new
//! servers afterwards (`set_servers`, rotating the list) and a forced
//! refresh.
//!
//! Checked: every datagram counts in exactly one counter (an answer, a
//! drop, or a failure); `handle` returns true exactly for the latter two;
//! queries go to a configured server from an ephemeral port, with a fresh
//! id, asking the configured name; the answer in use is one of the
//! addresses of the latest answer, from a configured server, expiring
//! after it was resolved; deadlines are never in the past.

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipoe_proto::dns::{Query, Resolver, ResolverConfig};
use ipoe_proto::hostio::{self, Inbound};

use super::{dns_question_len, fix_checksums, split};

const STEPS_MS: [u64; 8] = [0, 100, 1000, 5000, 30_000, 600_000, 3_600_000, 86_400_000];
pub const NAMES: [&str; 4] = [
    "aftr.lab.example",
    "gw.lab.example",
    "GW.Lab.Example",
    "aftr..lab.example",
];
/// The lab's DNS server (dnsmasq on the WAN router).
pub const LAB_DNS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 1);
const SECOND_DNS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 0x53);
const STRANGER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 0, 0, 0, 0, 1);

fn servers(choice: u8) -> Vec<Ipv6Addr> {
    match choice & 3 {
        0 => vec![LAB_DNS],
        1 => vec![LAB_DNS, SECOND_DNS],
        2 => {
            let mut v = vec![
                Ipv6Addr::UNSPECIFIED,
                Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb),
                LAB_DNS,
                LAB_DNS,
            ];
            v.extend((1..=8).map(|k| Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 0x100 + k)));
            v
        }
        _ => Vec::new(),
    }
}

/// The counters every datagram lands in exactly one of.
fn per_datagram(r: &Resolver) -> u64 {
    let c = r.counters();
    c.rx_answer + dropped(r) + failed(r)
}

fn dropped(r: &Resolver) -> u64 {
    let c = r.counters();
    c.drop_unsolicited
        + c.drop_unexpected_source
        + c.drop_wrong_port
        + c.drop_id_mismatch
        + c.drop_question_mismatch
        + c.drop_malformed
}

fn failed(r: &Resolver) -> u64 {
    let c = r.counters();
    c.nxdomain + c.servfail + c.refused + c.rcode_other + c.nodata + c.truncated + c.bad_answer
}

/// The name in a query's question, lower-cased, without the root dot.
fn qname(query: &[u8]) -> Option<String> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        if len == 0 {
            return Some(labels.join("."));
        }
        let label = query.get(at + 1..at + 1 + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += 1 + len;
    }
}

struct Harness {
    r: Resolver,
    name: &'static str,
    now: Instant,
    next: Option<Instant>,
    /// Every server the resolver was given, usable or not.
    configured: Vec<Ipv6Addr>,
    /// The last query sent, and the id before it.
    query: Option<Query>,
    last_id: Option<u16>,
    datagrams: u64,
}

impl Harness {
    fn poll(&mut self) {
        let mut out = Vec::new();
        self.next = self.r.poll(self.now, &mut out);
        if let Some(n) = self.next {
            assert!(n > self.now, "deadline {n:?} not after {:?}", self.now);
        }
        assert!(out.len() <= 1, "{} queries at once", out.len());
        for q in out {
            assert!(self.configured.contains(&q.server), "query to {}", q.server);
            assert!(q.src_port >= 49152, "source port {}", q.src_port);
            assert!(q.payload.len() >= 12, "{}-byte query", q.payload.len());
            let id = u16::from_be_bytes([q.payload[0], q.payload[1]]);
            assert_ne!(Some(id), self.last_id, "id {id:#x} used twice in a row");
            assert_eq!(q.payload[2] & 0x80, 0, "QR set in a query");
            assert_eq!(
                qname(&q.payload).as_deref(),
                Some(self.name.to_ascii_lowercase().as_str()),
                "the query asks another name"
            );
            self.last_id = Some(id);
            self.query = Some(q);
        }
        if let Some(a) = self.r.answer() {
            assert!(!a.all.is_empty() && a.all.contains(&a.addr), "{a:?}");
            assert!(
                self.configured.contains(&a.server),
                "answer from {}",
                a.server
            );
            assert!(a.expires > a.resolved_at, "{a:?}");
        }
        assert!(self.r.drain_events().len() <= 32);
        let _ = self.r.counters().named();
    }

    /// Polls deadline by deadline up to `until` (see [`crate::run_until`]).
    fn run_until(&mut self, until: Instant) {
        crate::run_until(self, until, 32, |h| (&mut h.now, h.next), Self::poll);
    }

    fn set_servers(&mut self, list: &[Ipv6Addr]) {
        self.configured.extend_from_slice(list);
        self.r.set_servers(self.now, list);
    }

    fn deliver(&mut self, from: Ipv6Addr, from_port: u16, dst_port: u16, msg: &[u8]) {
        let failed_before = failed(&self.r) + self.r.counters().rx_answer;
        let ours = self.r.handle(self.now, from, from_port, dst_port, msg);
        self.datagrams += 1;
        assert_eq!(
            per_datagram(&self.r),
            self.datagrams,
            "datagram counters: {:?}",
            self.r.counters().named()
        );
        let ended = failed(&self.r) + self.r.counters().rx_answer > failed_before;
        assert_eq!(ours, ended, "handle returned {ours}");
        self.poll();
    }
}

pub fn run(data: &[u8]) {
    super::log_everything();
    let ([h], records) = split::<1>(data);
    let name = NAMES[usize::from(h & 3)];
    let cfg = if h & 16 != 0 {
        ResolverConfig {
            name: name.to_owned(),
            min_ttl: Duration::ZERO,
            max_ttl: Duration::from_secs(60),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
        }
    } else {
        // wan.rs's settings.
        ResolverConfig {
            name: name.to_owned(),
            min_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(24 * 3600),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    };
    let mut hs = Harness {
        r: Resolver::new(cfg),
        name,
        now: Instant::now(),
        next: None,
        configured: Vec::new(),
        query: None,
        last_id: None,
        datagrams: 0,
    };
    let mut rotation = (h >> 2) & 3;
    hs.set_servers(&servers(rotation));
    hs.poll();
    for r in records {
        let step = Duration::from_millis(STEPS_MS[usize::from(r.flags & 7)]);
        if !step.is_zero() {
            hs.run_until(hs.now + step);
        }
        let (server, port, id, question) = match &hs.query {
            Some(q) => (
                q.server,
                q.src_port,
                [q.payload[0], q.payload[1]],
                q.payload
                    .get(12..12 + dns_question_len(&q.payload).unwrap_or(0))
                    .unwrap_or(&[])
                    .to_vec(),
            ),
            None => (servers(0)[0], 49152, [0, 0], Vec::new()),
        };
        if r.flags & 64 != 0 {
            let mut frame = r.bytes.to_vec();
            if r.flags & 8 == 0 && frame.len() >= 64 {
                frame[62..64].copy_from_slice(&id);
            }
            fix_checksums(&mut frame);
            // wan.rs: UDP from port 53 over IPv6 may be the resolver's.
            if let Ok(Inbound::Udp {
                src: IpAddr::V6(src),
                src_port: hostio::DNS_PORT,
                dst_port,
                payload,
                ..
            }) = hostio::classify(&frame)
            {
                hs.deliver(src, hostio::DNS_PORT, dst_port, payload);
            }
        } else {
            let mut msg = super::reply_with_question(r.bytes, &question, r.flags & 16 != 0);
            if r.flags & 8 == 0 && msg.len() >= 2 {
                msg[..2].copy_from_slice(&id);
            }
            let (from, from_port, dst_port) = if r.flags & 32 != 0 {
                match msg.last().copied().unwrap_or(0) % 3 {
                    0 => (STRANGER, hostio::DNS_PORT, port),
                    1 => (server, 5353, port),
                    _ => (server, hostio::DNS_PORT, port ^ 1),
                }
            } else {
                (server, hostio::DNS_PORT, port)
            };
            hs.deliver(from, from_port, dst_port, &msg);
        }
        if r.flags & 128 != 0 {
            rotation = rotation.wrapping_add(1);
            hs.set_servers(&servers(rotation));
            hs.r.force_refresh(hs.now);
            hs.poll();
        }
    }
    super::show("aftr_resolver", &hs.r.counters().named());
}
