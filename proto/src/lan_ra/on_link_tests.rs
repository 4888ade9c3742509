//! The on-link flag for a proxied WAN /64 (issue 19): A=1 L=0 on the
//! current and the deprecated prefix, the MTU option kept, and a change of
//! the flag advertised at once.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use super::*;
use crate::slaac::ra::RouterAdvert;

const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x10];
const WAN_A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x1a, 0, 0, 0, 0);
const WAN_B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x1b, 0, 0, 0, 0);

fn parsed(bytes: &[u8]) -> RaRepr {
    let view = RouterAdvert::new_checked(bytes).expect("valid RA");
    RaRepr::parse(&view).unwrap().0
}

fn sent(ra: &mut LanRa, now: Instant) -> Vec<RaRepr> {
    let mut out = Vec::new();
    ra.poll(now, &mut out);
    out.iter().map(|b| parsed(b)).collect()
}

fn inputs(prefix: Ipv6Addr, until: Instant) -> RaInputs {
    RaInputs {
        prefix: Some(LanPrefix {
            prefix,
            preferred_until: Some(until),
            valid_until: Some(until),
        }),
        default_route: true,
        rdnss: vec![],
        dnssl: vec![],
    }
}

#[test]
fn proxied_prefix_is_autonomous_off_link_and_follows_renumbering() {
    let t0 = Instant::now();
    let mut ra = LanRa::new(
        LanRaConfig::with_defaults(MAC, 1500, Duration::from_secs(200)),
        7,
    );
    ra.update(t0, inputs(WAN_A, t0 + Duration::from_secs(1800)));
    ra.start(t0);
    let first = sent(&mut ra, t0);
    assert_eq!(first.len(), 1);
    assert!(first[0].prefixes[0].on_link, "on-link by default");

    // Switching to proxy mode is advertised within the RA rate limit.
    let t1 = t0 + Duration::from_secs(4);
    ra.set_on_link(t1, false);
    let mut got = Vec::new();
    let mut now = t1;
    while got.is_empty() && now < t1 + Duration::from_secs(10) {
        got = sent(&mut ra, now);
        now += Duration::from_millis(100);
    }
    let repr = &got[0];
    let p = repr.prefixes[0];
    assert_eq!(p.prefix, WAN_A);
    assert!(p.autonomous && !p.on_link, "{p:?}");
    assert!(p.valid_lifetime <= 1800 && p.preferred_lifetime <= 1800);
    assert_eq!(repr.mtu, Some(1500));

    // The WAN /64 changes: the old one stays, deprecated and off-link.
    let t2 = now + Duration::from_secs(60);
    ra.update(t2, inputs(WAN_B, t2 + Duration::from_secs(1800)));
    let mut got = Vec::new();
    let mut now = t2;
    while got.is_empty() && now < t2 + Duration::from_secs(10) {
        got = sent(&mut ra, now);
        now += Duration::from_millis(100);
    }
    let old = got[0].prefixes.iter().find(|p| p.prefix == WAN_A).unwrap();
    let new = got[0].prefixes.iter().find(|p| p.prefix == WAN_B).unwrap();
    assert_eq!(old.preferred_lifetime, 0);
    assert!(old.valid_lifetime > 0);
    assert!(!old.on_link && !new.on_link && new.autonomous);
}

/// Back from proxy to a delegated prefix: the old (WAN) /64 is deprecated
/// and still off-link, so hosts never take the WAN's /64 as on the LAN;
/// the new one is on-link.
#[test]
fn a_proxied_prefix_deprecated_stays_off_link() {
    let t0 = Instant::now();
    let mut ra = LanRa::new(
        LanRaConfig::with_defaults(MAC, 1500, Duration::from_secs(200)),
        9,
    );
    ra.set_on_link(t0, false);
    ra.update(t0, inputs(WAN_A, t0 + Duration::from_secs(1800)));
    ra.start(t0);
    sent(&mut ra, t0);
    let t1 = t0 + Duration::from_secs(10);
    // As lan.rs does: the update first, then the flag.
    ra.update(t1, inputs(WAN_B, t1 + Duration::from_secs(1800)));
    ra.set_on_link(t1, true);
    let repr = ra.current_advert(t1 + Duration::from_secs(1));
    let old = repr.prefixes.iter().find(|p| p.prefix == WAN_A).unwrap();
    let new = repr.prefixes.iter().find(|p| p.prefix == WAN_B).unwrap();
    assert_eq!(old.preferred_lifetime, 0);
    assert!(!old.on_link, "{old:?}");
    assert!(new.on_link, "{new:?}");
}
