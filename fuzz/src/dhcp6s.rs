//! The `dhcp6_server` target: the LAN's DHCPv6 server fed client messages,
//! renumbering and restarts, as `control/src/lan.rs` drives it.
//!
//! Header: one byte. Bit 0: stateful (else stateless); bit 1: no LAN
//! prefix at first (IA_NAs get NoAddrsAvail until a renumbering); bit 2: a
//! four-entry lease table; bit 3: the delegated prefix runs out within the
//! hour (else it outlives the configured lifetimes); bit 4: the DNS list and
//! domains hold junk the server must skip (loopback, multicast,
//! duplicates, invalid names, more than it keeps) and the lifetimes and
//! refresh time are ones it must clamp.
//!
//! Records: client messages. Flags: bits 0-2: the clock runs first, poll
//! by poll (0, 1 s, 10 s, 1 min, 10 min, 1 h, 1 day, 3 days); bits 3-4: the
//! source (two link-local clients, a global one, or the record's first 16
//! bytes, so multicast and unspecified sources are reached); bit 5: the
//! bytes are a whole Ethernet frame, routed as `lan.rs` routes it
//! (`hostio::classify`, UDP to port 547 over IPv6), checksums fixed first;
//! bit 6: renumbering afterwards (the prefix moves to the next of
//! [`PREFIXES`], the old one stale; the step after the last is no prefix);
//! bit 7: restart afterwards (`export`, then `import` into a new server, as
//! the daemon's lease file does).
//!
//! Checked: every message is either answered (`tx-*`) or counted in exactly
//! one `drop-*` counter; a reply frames its options exactly, decodes with
//! dhcproto, is an Advertise or Reply with the request's transaction id
//! and our Server Identifier, fits the LAN MTU in the frame `lan.rs` builds
//! (which classifies back to the same payload), and its addresses have
//! preferred <= valid and are in the current /64 unless their valid
//! lifetime is 0; the lease table stays within its bound; a restart loses
//! no bound lease that had time left.

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime};

use dhcproto::v6::{DhcpOption, Message, MessageType};
use dhcproto::{Decodable, Decoder};
use ipoe_proto::dhcp6s::{Dhcp6Server, Dhcp6sConfig, Mode, PrefixState};
use ipoe_proto::hostio::{self, Inbound, Route};

use super::{fix_checksums, lab, split};

const STEPS: [u64; 8] = [0, 1, 10, 60, 600, 3600, 86_400, 3 * 86_400];

/// The router's DHCPv6 DUID in the seeds (DUID-LL of the lab's LAN MAC).
pub const SERVER_DUID: [u8; 10] = [0, 3, 0, 1, 0x02, 0, 0, 0, 0x02, 0x01];

/// The LAN /64s a renumbering walks through.
pub const PREFIXES: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0x111, 0, 0, 0, 0),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0x121, 0, 0, 0, 0),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0x131, 0, 0, 0, 0),
];

const SOURCES: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x110),
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0x1c2d, 0x3eff, 0xfe4f, 0x5a6b),
    lab::HOST6,
];

/// The LAN MTU: a reply must fit in one IPv6 packet.
const LAN_MTU: usize = 1500;

fn config(h: u8) -> Dhcp6sConfig {
    let mut cfg = Dhcp6sConfig {
        server_duid: SERVER_DUID.to_vec(),
        mode: if h & 1 != 0 {
            Mode::Stateful
        } else {
            Mode::Stateless
        },
        dns: vec![lab::LAN_GUA],
        domains: vec!["lab.example".to_owned()],
        ..Dhcp6sConfig::default()
    };
    if h & 4 != 0 {
        cfg.max_leases = 4;
    }
    if h & 16 != 0 {
        cfg.dns = vec![
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::UNSPECIFIED,
            "ff02::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
            lab::LAN_GUA,
            lab::LAN_GUA,
        ];
        cfg.dns
            .extend((1..40u16).map(|k| Ipv6Addr::new(0x2001, 0xdb8, 0, 0x53, 0, 0, 0, k)));
        cfg.domains = vec![
            "lab.example.".to_owned(),
            "bad domain!".to_owned(),
            String::new(),
            format!("{}.example", "x".repeat(70)),
            "lab.example".to_owned(),
        ];
        cfg.domains
            .extend((0..40).map(|k| format!("d{k}.{}.example", "long".repeat(10))));
        cfg.info_refresh = Duration::ZERO;
        cfg.preferred = Duration::MAX;
        cfg.valid = Duration::from_secs(1);
    }
    cfg
}

fn prefix_state(h: u8, now: Instant, net: Ipv6Addr) -> PrefixState {
    if h & 8 != 0 {
        PrefixState {
            prefix: net,
            preferred_until: Some(now + Duration::from_secs(600)),
            valid_until: Some(now + Duration::from_secs(3000)),
        }
    } else {
        PrefixState {
            prefix: net,
            preferred_until: None,
            valid_until: Some(now + Duration::from_secs(30 * 86_400)),
        }
    }
}

/// Top-level options of a DHCPv6 message, if they frame exactly.
fn options(msg: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    let mut rest = msg.get(4..)?;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return None;
        }
        let code = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let body = rest.get(4..4 + len)?;
        out.push((code, body));
        rest = &rest[4 + len..];
    }
    Some(out)
}

fn mask64(a: Ipv6Addr) -> [u8; 8] {
    a.octets()[..8].try_into().unwrap_or_default()
}

struct Harness {
    h: u8,
    server: Dhcp6Server,
    now: Instant,
    next: Option<Instant>,
    /// Index into PREFIXES of the current /64, `None` without one.
    current: Option<usize>,
    /// Earlier /64s still on the link.
    stale: Vec<Ipv6Addr>,
    handled: u64,
}

impl Harness {
    fn poll(&mut self) {
        self.next = self.server.poll(self.now);
        if let Some(n) = self.next {
            assert!(n > self.now, "deadline {n:?} not after {:?}", self.now);
        }
    }

    /// Polls deadline by deadline up to `until` (see [`crate::run_until`]).
    fn run_until(&mut self, until: Instant) {
        crate::run_until(self, until, 32, |h| (&mut h.now, h.next), Self::poll);
    }

    fn set_prefix(&mut self) {
        let current = self
            .current
            .map(|k| prefix_state(self.h, self.now, PREFIXES[k]));
        self.server.set_prefix(self.now, current, &self.stale);
    }

    fn renumber(&mut self) {
        let old = self.current.map(|k| PREFIXES[k]);
        self.current = match self.current {
            None => Some(0),
            Some(k) if k + 1 < PREFIXES.len() => Some(k + 1),
            Some(_) => None,
        };
        if let Some(old) = old {
            if !self.stale.contains(&old) {
                self.stale.push(old);
            }
        }
        if let Some(k) = self.current {
            self.stale.retain(|s| *s != PREFIXES[k]);
        }
        self.set_prefix();
    }

    fn restart(&mut self) {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let before: Vec<_> = self
            .server
            .leases(self.now)
            .into_iter()
            .filter(|l| l.state == "bound" && l.expires > self.now + Duration::from_secs(1))
            .map(|l| (l.duid_hex, l.iaid, l.addr))
            .collect();
        let stored = self.server.export(self.now, wall);
        let stored: Vec<_> =
            serde_json::from_slice(&serde_json::to_vec(&stored).expect("leases serialize"))
                .expect("the lease file reads back");
        let mut again = Dhcp6Server::new(self.server.config().clone(), 2);
        again.import(self.now, wall, stored);
        self.server = again;
        // A new server counts from zero.
        self.handled = 0;
        self.set_prefix();
        let after: Vec<_> = self
            .server
            .leases(self.now)
            .into_iter()
            .map(|l| (l.duid_hex, l.iaid, l.addr))
            .collect();
        for l in &before {
            assert!(after.contains(l), "restart lost {l:?}");
        }
        self.poll();
    }

    fn deliver(&mut self, src: Ipv6Addr, src_mac: [u8; 6], payload: &[u8]) {
        let before = self.server.counters().clone();
        let reply = self.server.handle(self.now, src, payload);
        self.handled += 1;
        let c = self.server.counters();
        assert_eq!(
            c.tx_advertise + c.tx_reply + c.dropped(),
            self.handled,
            "answered + dropped != received: {:?}",
            c.named()
        );
        if let Some(reply) = reply {
            self.check_reply(src, src_mac, payload, &reply);
        } else {
            assert_eq!(c.dropped(), before.dropped() + 1, "unanswered, not dropped");
        }
        self.poll();
    }

    fn check_reply(&self, src: Ipv6Addr, src_mac: [u8; 6], request: &[u8], reply: &[u8]) {
        assert!(reply.len() >= 4, "{}-byte reply", reply.len());
        assert!(reply[0] == 2 || reply[0] == 7, "reply of type {}", reply[0]);
        assert_eq!(reply[1..4], request[1..4], "transaction id not echoed");
        let opts = options(reply).expect("reply options frame exactly");
        let ids: Vec<&[u8]> = opts
            .iter()
            .filter(|(c, _)| *c == 2)
            .map(|(_, b)| *b)
            .collect();
        assert_eq!(ids, [&SERVER_DUID[..]], "Server Identifier");
        let m = Message::decode(&mut Decoder::new(reply)).expect("reply decodes");
        assert_eq!(m.opts().iter().count(), opts.len(), "dhcproto agrees");
        assert!(matches!(
            m.msg_type(),
            MessageType::Advertise | MessageType::Reply
        ));
        // Addresses the client may use are in the current /64; others
        // (stale, or listed by the client and not its) go back with
        // lifetime 0.
        let current = self.current.map(|k| mask64(PREFIXES[k]));
        for o in m.opts().iter() {
            if let DhcpOption::IANA(na) = o {
                for a in na.opts.iter() {
                    if let DhcpOption::IAAddr(a) = a {
                        assert!(
                            a.preferred_life <= a.valid_life,
                            "{}: preferred {} > valid {}",
                            a.addr,
                            a.preferred_life,
                            a.valid_life
                        );
                        assert!(
                            a.valid_life == 0 || Some(mask64(a.addr)) == current,
                            "{} valid {} s outside the LAN prefix",
                            a.addr,
                            a.valid_life
                        );
                    }
                }
            }
        }
        // The frame lan.rs sends: one packet on the LAN, and what a client
        // receives is the payload as built.
        let frame = hostio::udp_frame(
            &Route {
                src_mac: lab::LAN_MAC,
                dst_mac: src_mac,
                src: lab::LAN_LL,
                dst: src,
                hop_limit: 64,
            },
            hostio::DHCP6_SERVER_PORT,
            hostio::DHCP6_CLIENT_PORT,
            reply,
        );
        assert!(
            frame.len() - 14 <= LAN_MTU,
            "a {}-byte reply does not fit the LAN MTU",
            reply.len()
        );
        match hostio::classify(&frame) {
            Ok(Inbound::Udp { payload, .. }) => assert_eq!(payload, reply),
            other => panic!("our reply frame classifies as {other:?}"),
        }
    }
}

pub fn run(data: &[u8]) {
    let ([h], records) = split::<1>(data);
    let t0 = Instant::now();
    let mut hs = Harness {
        h,
        server: Dhcp6Server::new(config(h), 1),
        now: t0,
        next: None,
        current: (h & 2 == 0).then_some(0),
        stale: Vec::new(),
        handled: 0,
    };
    hs.set_prefix();
    hs.poll();
    for r in records {
        let step = STEPS[usize::from(r.flags & 7)];
        if step > 0 {
            hs.run_until(hs.now + Duration::from_secs(step));
        }
        if r.flags & 32 != 0 {
            let mut frame = r.bytes.to_vec();
            fix_checksums(&mut frame);
            // lan.rs: UDP to port 547 from an IPv6 source reaches the
            // server; anything else is someone else's.
            if let Ok(Inbound::Udp {
                src: IpAddr::V6(src),
                src_mac,
                dst_port: hostio::DHCP6_SERVER_PORT,
                payload,
                ..
            }) = hostio::classify(&frame)
            {
                hs.deliver(src, src_mac, payload);
            }
        } else {
            let (src, payload) = match (r.flags >> 3) & 3 {
                3 if r.bytes.len() >= 16 => {
                    let a: [u8; 16] = r.bytes[..16].try_into().unwrap_or_default();
                    (Ipv6Addr::from(a), &r.bytes[16..])
                }
                3 => (Ipv6Addr::UNSPECIFIED, r.bytes),
                k => (SOURCES[usize::from(k)], r.bytes),
            };
            hs.deliver(src, [0x02, 0, 0, 0, 0x01, 0x10], payload);
        }
        if r.flags & 64 != 0 {
            hs.renumber();
        }
        if r.flags & 128 != 0 {
            hs.restart();
        }
        let leases = hs.server.leases(hs.now);
        assert!(
            leases.len() <= hs.server.config().max_leases,
            "{} leases over the bound",
            leases.len()
        );
        let _ = hs.server.take_dirty();
    }
    super::show("dhcp6_server", &hs.server.counters().named());
}
