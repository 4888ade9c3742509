//! The `lan_ra` target: the LAN's Router Advertisement sender fed Router
//! Solicitations, other routers' RAs and changing inputs from the WAN, as
//! `control/src/lan.rs` drives it.
//!
//! Header: one byte. Bit 0: M flag; bit 1: O flag; bit 2: MaxRtrAdvInterval
//! 4 s (else 600 s); bit 3: not advertising at first (the LAN link-local
//! address is still tentative); bit 4: prefixes remembered from a previous
//! run are restored first; bits 5-6: the LAN MTU (1500, 1280, 9000, or 0
//! which leaves the option out); bit 7: router lifetime 0 (never a default
//! router).
//!
//! Records. Flags bits 0-2: the clock runs first, poll by poll (0, 100 ms,
//! 1 s, 4 s, 30 s, 10 min, 1 h, 2 days); bits 3-4: what the bytes are:
//! - 0: an ICMPv6 message (from its type byte) from a LAN host's
//!   link-local address with hop limit 255: an RS, or anything else;
//! - 1: the source address (16 bytes), the hop limit (1 byte), then the
//!   message;
//! - 2: an Ethernet frame, routed as `lan.rs` routes it (ICMPv6 type 133
//!   to `handle_rs`, every other ICMPv6 message to `handle_foreign_ra`),
//!   checksums fixed first;
//! - 3: new inputs from the WAN side ([`inputs`]);
//!
//! bit 5: the LAN link goes down and up; bit 6: restart (the final RAs,
//! then a new sender that restores what the old one remembered); bit 7:
//! `shutdown` if advertising, else `start`.
//!
//! Checked: every RA sent parses with the WAN side's codec without a
//! skipped option, carries our MAC and the configured MTU, flags and a
//! router lifetime within bounds, advertises /64s with preferred <= valid
//! (stale ones preferred 0) and fits the MTU in the frame `lan.rs` builds,
//! which classifies back to the message; RAs from `poll` are at least
//! MIN_DELAY_BETWEEN_RAS apart and one per call; every RS counts in
//! `rx-rs` and, refused, in exactly one `drop-rs-*` counter; deadlines are
//! never in the past; the stale list stays bounded.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use ipoe_proto::hostio::{self, Inbound, Route};
use ipoe_proto::lan_ra::{
    LanPrefix, LanRa, LanRaConfig, RaInputs, MAX_STALE_PREFIXES, MIN_DELAY_BETWEEN_RAS,
};
use ipoe_proto::slaac::ra::{RaRepr, RouterAdvert};

use super::{fix_checksums, lab, split};

const STEPS_MS: [u64; 8] = [0, 100, 1000, 4000, 30_000, 600_000, 3_600_000, 172_800_000];
const HOST_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x110);
const MTUS: [u32; 4] = [1500, 1280, 9000, 0];
/// The LAN /64 of the lab and a second one.
pub const LAN_PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x111, 0, 0, 0, 0);
pub const OTHER_PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x121, 0, 0, 0, 0);

fn config(h: u8) -> LanRaConfig {
    let max_interval = Duration::from_secs(if h & 4 != 0 { 4 } else { 600 });
    LanRaConfig {
        mac: lab::LAN_MAC,
        mtu: MTUS[usize::from((h >> 5) & 3)],
        max_interval,
        managed: h & 1 != 0,
        other: h & 2 != 0,
        // lan.rs: three intervals, at most 9000 s.
        router_lifetime: if h & 128 != 0 {
            Duration::ZERO
        } else {
            (max_interval * 3).min(Duration::from_secs(9000))
        },
    }
}

/// Inputs as `lan.rs` hands them after the WAN learned them.
///
/// Byte 0: bit 0 a prefix, bit 1 a default route, bit 2 finite preferred
/// and bit 3 finite valid lifetime; bytes 1-16 the prefix; bytes 17-18 and
/// 19-20 the preferred and valid seconds left; byte 21 the number of DNS
/// servers, 16 bytes each; then search domains, comma separated (UTF-8,
/// lossy).
pub fn inputs(now: Instant, b: &[u8]) -> RaInputs {
    let byte = |k: usize| b.get(k).copied().unwrap_or(0);
    let secs = |k: usize| u64::from(u16::from_be_bytes([byte(k), byte(k + 1)]));
    let flags = byte(0);
    let mut prefix = [0u8; 16];
    for (k, p) in prefix.iter_mut().enumerate() {
        *p = byte(1 + k);
    }
    let n = usize::from(byte(21));
    let mut rest = b.get(22..).unwrap_or(&[]);
    let mut rdnss = Vec::new();
    for _ in 0..n {
        if rest.len() < 16 {
            break;
        }
        let a: [u8; 16] = rest[..16].try_into().unwrap_or_default();
        rdnss.push(Ipv6Addr::from(a));
        rest = &rest[16..];
    }
    let dnssl = if rest.is_empty() {
        Vec::new()
    } else {
        String::from_utf8_lossy(rest)
            .split(',')
            .map(str::to_owned)
            .collect()
    };
    RaInputs {
        prefix: (flags & 1 != 0).then(|| LanPrefix {
            prefix: Ipv6Addr::from(prefix),
            preferred_until: (flags & 4 != 0).then(|| now + Duration::from_secs(secs(17))),
            valid_until: (flags & 8 != 0).then(|| now + Duration::from_secs(secs(19))),
        }),
        default_route: flags & 2 != 0,
        rdnss,
        dnssl,
    }
}

/// What lan.rs hands in at first: the lab's /64 with a day of lease,
/// the router's address as DNS server, the lab's domain.
fn lab_inputs(now: Instant) -> RaInputs {
    RaInputs {
        prefix: Some(LanPrefix {
            prefix: LAN_PREFIX,
            preferred_until: Some(now + Duration::from_secs(86_400)),
            valid_until: Some(now + Duration::from_secs(2 * 86_400)),
        }),
        default_route: true,
        rdnss: vec![lab::LAN_GUA],
        dnssl: vec!["lab.example".to_owned()],
    }
}

struct Harness {
    cfg: LanRaConfig,
    ra: LanRa,
    now: Instant,
    next: Option<Instant>,
    /// When the last RA (final ones too) went out.
    last_any_ra: Option<Instant>,
    /// RSs accepted (handle_rs returned Ok).
    rs_ok: u64,
    inputs: RaInputs,
    seed: u64,
}

impl Harness {
    fn check_ra(&self, msg: &[u8], final_ra: bool) {
        let view = RouterAdvert::new_checked(msg).expect("our RA passes the RA checks");
        let (repr, skipped) = RaRepr::parse(&view).expect("our RA parses");
        assert!(skipped.is_empty(), "our RA has bad options: {skipped:?}");
        assert_eq!(repr.source_lladdr, Some(self.cfg.mac));
        assert_eq!(
            (repr.managed, repr.other),
            (self.cfg.managed, self.cfg.other)
        );
        let mtu = self.cfg.mtu;
        if (1280..=65535).contains(&mtu) {
            assert_eq!(repr.mtu, Some(mtu));
        } else {
            assert_eq!(repr.mtu, None);
        }
        assert!(
            repr.router_lifetime <= 9000,
            "router lifetime {}",
            repr.router_lifetime
        );
        if final_ra || self.cfg.router_lifetime.is_zero() {
            assert_eq!(repr.router_lifetime, 0, "a final or never-default RA");
        }
        for p in &repr.prefixes {
            assert_eq!(p.prefix_len, 64, "advertised {}/{}", p.prefix, p.prefix_len);
            assert!(
                p.preferred_lifetime <= p.valid_lifetime,
                "{}: preferred {} > valid {}",
                p.prefix,
                p.preferred_lifetime,
                p.valid_lifetime
            );
            assert!(
                p.valid_lifetime <= 5400,
                "{} valid {}",
                p.prefix,
                p.valid_lifetime
            );
            assert!(
                !p.prefix.is_multicast() && !p.prefix.is_unspecified(),
                "advertised {}",
                p.prefix
            );
        }
        // The frame lan.rs sends: within the link MTU (1280 when the RA
        // has no MTU option), classifying back to the message.
        let frame = hostio::icmpv6_frame(
            &Route {
                src_mac: lab::LAN_MAC,
                dst_mac: hostio::multicast_mac(hostio::ALL_NODES),
                src: lab::LAN_LL,
                dst: hostio::ALL_NODES,
                hop_limit: 255,
            },
            msg,
        );
        let link = repr.mtu.map_or(1280, |m| m.min(65535)) as usize;
        assert!(
            frame.len() - 14 <= link.max(1280),
            "a {}-byte RA over the MTU",
            msg.len()
        );
        match hostio::classify(&frame) {
            Ok(Inbound::Icmpv6 {
                message, hop_limit, ..
            }) => {
                assert_eq!(hop_limit, 255);
                assert_eq!(&message[4..], &msg[4..]);
            }
            other => panic!("our RA frame classifies as {other:?}"),
        }
    }

    fn poll(&mut self) {
        let mut out = Vec::new();
        self.next = self.ra.poll(self.now, &mut out);
        if let Some(n) = self.next {
            assert!(n > self.now, "deadline {n:?} not after {:?}", self.now);
        }
        assert!(out.len() <= 1, "{} RAs in one poll", out.len());
        for m in &out {
            if let Some(last) = self.last_any_ra {
                assert!(
                    self.now >= last + MIN_DELAY_BETWEEN_RAS,
                    "RAs {:?} apart",
                    self.now - last
                );
            }
            self.check_ra(m, false);
            self.last_any_ra = Some(self.now);
        }
        assert!(self.ra.stale_prefixes(self.now).len() <= MAX_STALE_PREFIXES);
        let _ = (self.ra.remembered(), self.ra.current_advert(self.now));
        let _ = (self.ra.last_rogue_ra(), self.ra.intervals());
    }

    /// Polls deadline by deadline up to `until` (see [`crate::run_until`]).
    fn run_until(&mut self, until: Instant) {
        crate::run_until(self, until, 32, |h| (&mut h.now, h.next), Self::poll);
    }

    fn rs(&mut self, src: Ipv6Addr, hop_limit: u8, message: &[u8]) {
        if self.ra.handle_rs(self.now, src, hop_limit, message).is_ok() {
            self.rs_ok += 1;
        }
        let c = self.ra.counters();
        let dropped = c.drop_rs_hop_limit
            + c.drop_rs_source
            + c.drop_rs_malformed
            + c.drop_rs_unspecified_slla
            + c.drop_rs_not_advertising;
        assert_eq!(
            c.rx_rs,
            self.rs_ok + dropped,
            "RS counters: {:?}",
            c.named()
        );
    }

    fn shutdown(&mut self) {
        let finals = self.ra.shutdown(self.now);
        for m in &finals {
            self.check_ra(m, true);
            self.last_any_ra = Some(self.now);
        }
    }

    /// A new process: final RAs, then a sender that restores what this
    /// one remembered, gets the inputs and starts.
    fn restart(&mut self) {
        self.shutdown();
        let remembered = self.ra.remembered();
        self.seed = self.seed.wrapping_add(1);
        self.ra = LanRa::new(self.cfg.clone(), self.seed);
        if !remembered.is_empty() {
            self.ra.restore_stale(self.now, remembered);
        }
        self.ra.update(self.now, self.inputs.clone());
        self.ra.start(self.now);
        self.rs_ok = 0;
        // What the last process sent is not known to this one: lan.rs
        // starts it after a restart of several seconds at least.
        self.last_any_ra = None;
    }
}

pub fn run(data: &[u8]) {
    super::log_everything();
    let ([h], records) = split::<1>(data);
    let cfg = config(h);
    let t0 = Instant::now();
    let mut hs = Harness {
        ra: LanRa::new(cfg.clone(), 0x5eed),
        cfg,
        now: t0,
        next: None,
        last_any_ra: None,
        rs_ok: 0,
        inputs: lab_inputs(t0),
        seed: 0x5eed,
    };
    if h & 16 != 0 {
        use ipoe_proto::lan_ra::StalePrefix;
        hs.ra.restore_stale(
            t0,
            vec![
                StalePrefix {
                    prefix: OTHER_PREFIX,
                    valid_until: t0 + Duration::from_secs(3000),
                },
                StalePrefix {
                    prefix: LAN_PREFIX,
                    valid_until: t0 + Duration::from_secs(5400),
                },
            ],
        );
    }
    hs.ra.update(t0, hs.inputs.clone());
    if h & 8 == 0 {
        hs.ra.start(t0);
    }
    hs.poll();
    for r in records {
        let step = Duration::from_millis(STEPS_MS[usize::from(r.flags & 7)]);
        if !step.is_zero() {
            hs.run_until(hs.now + step);
        }
        match (r.flags >> 3) & 3 {
            0 => hs.rs(HOST_LL, 255, r.bytes),
            1 => {
                let b = r.bytes;
                let src: [u8; 16] = b
                    .get(..16)
                    .and_then(|s| s.try_into().ok())
                    .unwrap_or_default();
                let hop = b.get(16).copied().unwrap_or(255);
                hs.rs(Ipv6Addr::from(src), hop, b.get(17..).unwrap_or(&[]));
            }
            2 => {
                let mut frame = r.bytes.to_vec();
                fix_checksums(&mut frame);
                if let Ok(Inbound::Icmpv6 {
                    src,
                    hop_limit,
                    message,
                    ..
                }) = hostio::classify(&frame)
                {
                    if message.first() == Some(&133) {
                        hs.rs(src, hop_limit, message);
                    } else {
                        let before = hs.ra.counters().rogue_ra;
                        hs.ra.handle_foreign_ra(hs.now, src, message);
                        assert_eq!(hs.ra.counters().rogue_ra, before + 1);
                    }
                }
            }
            _ => {
                hs.inputs = inputs(hs.now, r.bytes);
                hs.ra.update(hs.now, hs.inputs.clone());
                // lan.rs: the delegation may bound an old prefix's life.
                for p in hs.ra.stale_prefixes(hs.now) {
                    hs.ra.bound_stale(p, hs.now + Duration::from_secs(1800));
                }
            }
        }
        if r.flags & 32 != 0 {
            hs.ra.link_up(hs.now);
        }
        if r.flags & 64 != 0 {
            hs.restart();
        }
        if r.flags & 128 != 0 {
            if hs.ra.is_advertising() {
                hs.shutdown();
            } else {
                hs.ra.start(hs.now);
            }
        }
        hs.poll();
    }
    super::show("lan_ra", &hs.ra.counters().named());
}
