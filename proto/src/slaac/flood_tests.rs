//! The router table under an RA flood: what the workers' RA budget lets
//! through (100 a second from made-up routers, each seen once) must never
//! take the default route from the router the WAN really has, even when
//! that router goes away for a moment and comes back.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use super::ra::{PrefixInfo, RaRepr};
use super::*;

const ROUTER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 3, 1];

fn engine() -> WanRa {
    WanRa::new(
        SlaacConfig {
            mac: [2, 0, 0, 0, 2, 2],
            ifname: "wan0".into(),
            iid: IidMode::Eui64,
            autoconf: true,
        },
        7,
    )
}

fn ra(lifetime: u16, mac: [u8; 6], prefix: Ipv6Addr) -> Vec<u8> {
    RaRepr {
        cur_hop_limit: 64,
        router_lifetime: lifetime,
        managed: true,
        other: true,
        source_lladdr: Some(mac),
        prefixes: vec![PrefixInfo {
            prefix,
            prefix_len: 64,
            on_link: true,
            autonomous: true,
            valid_lifetime: 86400,
            preferred_lifetime: 14400,
        }],
        ..RaRepr::default()
    }
    .emit()
    .unwrap()
}

/// One made-up router per RA, as atk6-flood_router6 sends them.
struct Flood(u64);

impl Flood {
    fn next(&mut self) -> (Ipv6Addr, Vec<u8>) {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = self.0.to_be_bytes();
        let src = Ipv6Addr::new(
            0xfe80,
            0,
            0,
            0,
            u16::from_be_bytes([r[0], r[1]]),
            u16::from_be_bytes([r[2], r[3]]),
            u16::from_be_bytes([r[4], r[5]]),
            u16::from_be_bytes([r[6], r[7]]),
        );
        let prefix = Ipv6Addr::new(
            0x2001,
            0xdb8,
            u16::from_be_bytes([r[1], r[2]]),
            7,
            0,
            0,
            0,
            0,
        );
        (src, ra(9000, [0x12, r[3], r[4], r[5], r[6], r[7]], prefix))
    }
}

/// Ten minutes of 100 flood RAs a second, with the real router (lifetime
/// 30 s, an RA every 10 s) refreshing throughout: it stays the default
/// router at every poll and never expires.
#[test]
fn ra_flood_never_displaces_the_default_router() {
    let t0 = Instant::now();
    let mut w = engine();
    w.start(t0);
    let prefix = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 0);
    let real = ra(30, ROUTER_MAC, prefix);
    w.handle_ra(t0, ROUTER, 255, &real).unwrap();
    let mut flood = Flood(1);
    for ms in (10..600_000u64).step_by(10) {
        let now = t0 + Duration::from_millis(ms);
        let (src, bytes) = flood.next();
        w.handle_ra(now, src, 255, &bytes).unwrap();
        if ms % 10_000 == 0 {
            w.handle_ra(now, ROUTER, 255, &real).unwrap();
        }
        if ms % 1000 == 0 {
            let mut out = Vec::new();
            w.poll(now, &mut out);
            assert_eq!(
                w.default_router().map(|r| r.addr),
                Some(ROUTER),
                "at {ms} ms"
            );
        }
    }
    assert!(w.routers().len() <= MAX_ROUTERS);
    assert_eq!(w.counters().router_expired, 0);
    assert!(w.counters().table_full > 50_000);
    let events = w.drain_events();
    assert!(!events.contains(&Event::RouterExpired(ROUTER)));
    assert!(!events.contains(&Event::RouterRemoved(ROUTER)));
}

/// The real router withdraws (radvd restarted: a final RA with lifetime 0)
/// while the flood has filled the table with made-up routers. One of them
/// is the default router for that moment; the real one's next RA takes the
/// default route back, displacing a made-up router from the full table
/// rather than being refused for as long as they live (hours).
#[test]
fn known_router_comes_back_first_into_a_flooded_table() {
    let t0 = Instant::now();
    let mut w = engine();
    w.start(t0);
    let prefix = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 0);
    w.handle_ra(t0, ROUTER, 255, &ra(30, ROUTER_MAC, prefix))
        .unwrap();
    let mut flood = Flood(2);
    for k in 1..=20u64 {
        let (src, bytes) = flood.next();
        w.handle_ra(t0 + Duration::from_millis(k), src, 255, &bytes)
            .unwrap();
    }
    assert_eq!(w.routers().len(), MAX_ROUTERS);
    let t1 = t0 + Duration::from_secs(1);
    w.handle_ra(t1, ROUTER, 255, &ra(0, ROUTER_MAC, prefix))
        .unwrap();
    assert_ne!(w.default_router().map(|r| r.addr), Some(ROUTER));
    // The flood goes on and fills the slot the router left.
    for k in 1..=20u64 {
        let (src, bytes) = flood.next();
        w.handle_ra(t1 + Duration::from_millis(k), src, 255, &bytes)
            .unwrap();
    }
    assert_eq!(w.routers().len(), MAX_ROUTERS);
    let t2 = t0 + Duration::from_secs(2);
    w.handle_ra(t2, ROUTER, 255, &ra(30, ROUTER_MAC, prefix))
        .unwrap();
    assert_eq!(w.default_router().map(|r| r.addr), Some(ROUTER));
    assert_eq!(w.routers().len(), MAX_ROUTERS);
    assert_eq!(w.counters().router_displaced, 1);
    // A made-up router that comes back gets no such favour.
    let (src, bytes) = flood.next();
    w.handle_ra(t2, src, 255, &bytes).unwrap();
    assert_eq!(w.routers()[0].addr, ROUTER);
    assert_eq!(w.counters().router_displaced, 1);
}
