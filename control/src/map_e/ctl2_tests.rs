//! Issue 18, the control side finished: Packet Too Big about the tunnel to
//! the BR lowers the MAP-E tunnel MTU (as for DS-Lite), a duplicated CE
//! address is withdrawn and tried again after a back-off, and the tunnel
//! watch names the BR.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use super::*;
use crate::wan::Wan;
use ipoe_proto::hostio::{icmpv6_frame, Route};

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x02];
const GW: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
/// The WAN address: its /64 is the end-user prefix (no PD), so the CE
/// address lies on-link.
const WAN_ADDR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x4d12, 0x3400, 0, 0, 0, 0x99);
const CE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x4d12, 0x3400, 0xc0, 2, 0x1200, 0x3400);
const BR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0xbb, 0, 0, 0, 1);
const HOP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);

fn config(tag: &str) -> Config {
    let dir = std::env::temp_dir().join(format!("ipoe-map-ctl2-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "wan:\n  interface: wan0\n  ipv6:\n    address: {WAN_ADDR}/64\n    gateway: {GW}\n    dhcpv6_pd: false\n\
         lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    prefix: 2001:db8:0:111::/64\n\
         map_e:\n  br: {BR}\n  rule: {{ ipv6_prefix: \"2001:db8:4d00::/40\", ipv4_prefix: \"192.0.2.0/24\", \
         ea_length: 16, psid_offset: 4 }}\ncontrol:\n  state_dir: {}\n",
        dir.display()
    );
    ipoe_config::parse(&text, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// A PTB from a router on the path, quoting our IPv4-in-IPv6 packet from
/// the CE address to `to`.
fn ptb(mtu: u32, to: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![2, 0, 0, 0];
    m.extend_from_slice(&mtu.to_be_bytes());
    let mut q = vec![0u8; 40 + 20];
    q[0] = 0x60;
    q[4..6].copy_from_slice(&1460u16.to_be_bytes());
    q[6] = 4;
    q[7] = 63;
    q[8..24].copy_from_slice(&CE.octets());
    q[24..40].copy_from_slice(&to.octets());
    q[40] = 0x45;
    m.extend_from_slice(&q);
    icmpv6_frame(
        &Route {
            src_mac: [0x02, 0, 0, 0, 0x03, 0x01],
            dst_mac: MAC,
            src: HOP,
            dst: CE,
            hop_limit: 64,
        },
        &m,
    )
}

/// The Fib's tunnel MTU and MSS clamp after the WAN learned what it did.
fn tunnel(m: &mut MapState, c: &Config, w: &Wan, sessions: &SessionTable) -> (u16, Option<u16>) {
    let l = w.learned(&[WAN_ADDR, CE]);
    m.update(c, &l, sessions);
    let mut fib = Fib::default();
    fib.wan.mtu = 1500;
    m.apply(&mut fib, None);
    let t = fib.tunnel.expect("a MAP-E tunnel");
    assert_eq!((t.b4, t.aftr), (CE, BR));
    (t.mtu, fib.firewall.mss_clamp_v4)
}

#[test]
fn a_ptb_on_the_path_to_the_br_lowers_the_tunnel_mtu_and_ages_back() {
    let c = config("pmtu");
    let t0 = Instant::now();
    let mut w = Wan::new(&c, MAC, "fe80::2".parse().unwrap(), t0);
    let sessions = SessionTable::new(1024, Default::default());
    let mut m = MapState::default();
    assert_eq!(tunnel(&mut m, &c, &w, &sessions), (1460, Some(1420)));
    assert_eq!(m.report(&c)["mtu_source"], "map-e");

    // 1400 on the path: the tunnel carries 1400 - 40, TCP 1360 - 40.
    assert!(w.handle_frame(t0, &ptb(1400, BR)));
    assert_eq!(tunnel(&mut m, &c, &w, &sessions), (1360, Some(1320)));
    let r = m.report(&c);
    assert_eq!(r["mtu"], 1360);
    assert_eq!(r["mtu_source"], "packet-too-big");
    assert_eq!(r["path_mtu"]["from"], HOP.to_string());
    // Below 1280 means 1280 (RFC 8021: no atomic fragments), as DS-Lite.
    assert!(w.handle_frame(t0, &ptb(1000, BR)));
    assert_eq!(tunnel(&mut m, &c, &w, &sessions), (1240, Some(1200)));

    // RFC 8201 4: ten minutes later the full size is tried again.
    let later = t0 + ipoe_proto::pmtu::AGE + Duration::from_secs(1);
    w.poll(later, &[WAN_ADDR, CE], &[], &mut Vec::new());
    assert_eq!(tunnel(&mut m, &c, &w, &sessions), (1460, Some(1420)));
}

/// A PTB about a tunnel packet to somewhere else is not the BR's path.
#[test]
fn a_ptb_quoting_another_destination_leaves_the_br_tunnel_alone() {
    let c = config("other");
    let t0 = Instant::now();
    let mut w = Wan::new(&c, MAC, "fe80::2".parse().unwrap(), t0);
    let sessions = SessionTable::new(1024, Default::default());
    let mut m = MapState::default();
    let peer: Ipv6Addr = "2001:db8:4d56:7800:c0:2:5600:7800".parse().unwrap();
    assert!(w.handle_frame(t0, &ptb(1300, peer)));
    assert_eq!(tunnel(&mut m, &c, &w, &sessions), (1460, Some(1420)));
}

/// RFC 4862 5.4.5: found duplicated, the CE address is withdrawn (no
/// tunnel, not on the WAN's address list), counted and shown with its
/// reason; DAD runs again after 60 s, then 120 s after a second conflict;
/// passing DAD resets the back-off.
#[test]
fn a_duplicate_ce_address_is_withdrawn_and_retried_after_a_back_off() {
    let c = config("dad");
    let t0 = Instant::now();
    let w = Wan::new(&c, MAC, "fe80::2".parse().unwrap(), t0);
    let sessions = SessionTable::new(1024, Default::default());
    let mut m = MapState::default();
    let l = w.learned(&[WAN_ADDR]);
    m.update(&c, &l, &sessions);
    let ce = m.on_link_ce(&l.wan_candidates);
    assert_eq!(ce, Some(CE));
    assert_eq!(m.wan_address(&l.wan_candidates), Some(CE));
    let has_tunnel = |m: &MapState| {
        let mut fib = Fib::default();
        fib.wan.mtu = 1500;
        m.apply(&mut fib, None);
        fib.tunnel.is_some() && fib.napt.is_some()
    };
    assert!(!m.dad.observe(t0, ce, false, false));
    assert_eq!(m.dad.report(t0)["state"], "tentative");

    // Our probe is answered: withdrawn.
    assert!(m.dad.observe(t0, ce, false, true));
    assert!(m.dad.withheld());
    assert!(!has_tunnel(&m));
    assert_eq!(m.wan_address(&l.wan_candidates), None);
    let t1 = t0 + Duration::from_secs(10);
    let r = m.report_at(&c, t1);
    assert_eq!(r["tunnel_up"], false);
    assert_eq!(r["dad"]["state"], "duplicate");
    assert_eq!(r["dad"]["reason"], "dad-failed");
    assert_eq!(r["dad"]["retry_in_s"], 50);
    assert_eq!(r["dad"]["conflicts"], 1);
    // Nothing changes before the back-off ends (the neighbor engine no
    // longer lists the withdrawn address).
    assert!(!m
        .dad
        .observe(t0 + Duration::from_secs(59), ce, false, false));
    assert_eq!(m.dad.next_deadline(), Some(t0 + DAD_RETRY_FIRST));

    // 60 s: back on the WAN for a new DAD, with its tunnel.
    let t2 = t0 + DAD_RETRY_FIRST;
    assert!(m.dad.observe(t2, ce, false, false));
    assert!(!m.dad.withheld() && has_tunnel(&m));
    assert_eq!(m.wan_address(&l.wan_candidates), Some(CE));
    assert_eq!(m.dad.retries, 1);
    // Fails again: twice as long.
    assert!(m.dad.observe(t2, ce, false, true));
    assert_eq!(m.dad.next_deadline(), Some(t2 + 2 * DAD_RETRY_FIRST));
    let t3 = t2 + 2 * DAD_RETRY_FIRST;
    assert!(m.dad.observe(t3, ce, false, false));
    // Passes DAD, then another node claims it: the reason says so, and
    // the back-off starts again from 60 s.
    assert!(!m.dad.observe(t3, ce, true, false));
    assert_eq!(m.dad.report(t3)["state"], "ok");
    assert!(m.dad.observe(t3, ce, true, true));
    assert_eq!(m.dad.report(t3)["reason"], "claimed-while-in-use");
    assert_eq!(m.dad.next_deadline(), Some(t3 + DAD_RETRY_FIRST));
    assert_eq!(m.dad.conflicts, 3);
}

/// The back-off stops doubling at an hour.
#[test]
fn the_dad_back_off_is_capped() {
    let mut d = CeDad::default();
    let mut t = Instant::now();
    d.observe(t, Some(CE), false, false);
    for _ in 0..10 {
        assert!(d.observe(t, Some(CE), false, true));
        t = d.next_deadline().unwrap();
        assert!(d.observe(t, Some(CE), false, false));
    }
    d.observe(t, Some(CE), false, true);
    assert_eq!(d.next_deadline(), Some(t + DAD_RETRY_MAX));
}

/// A new CE address (a prefix change) is not held against the old one's
/// conflict: it is given back at once for its own DAD.
#[test]
fn a_new_ce_address_starts_afresh() {
    let mut d = CeDad::default();
    let t = Instant::now();
    d.observe(t, Some(CE), false, false);
    assert!(d.observe(t, Some(CE), false, true));
    let other: Ipv6Addr = "2001:db8:4d56:7800:c0:2:5600:7800".parse().unwrap();
    assert!(d.observe(t, Some(other), false, false));
    assert!(!d.withheld());
    assert_eq!(d.report(t)["state"], "tentative");
    assert_eq!(d.conflicts, 1);
}

/// The silent-tunnel lines name MAP-E and the BR under MAP-E.
#[test]
fn the_tunnel_watch_names_the_br_under_map_e() {
    use crate::daemon::tunnel_event_text;
    use ipoe_proto::tunnel_watch::Event;
    let br = BR.to_string();
    let (level, text) = tunnel_event_text(true, &br, Event::Silent { for_s: 30, sent: 9 });
    assert_eq!(level, log::Level::Warn);
    assert!(
        text.starts_with("map-e: nothing from the BR 2001:db8:77:bb::1"),
        "{text}"
    );
    assert!(!text.contains("AFTR") && !text.contains("dslite"), "{text}");
    let (_, text) = tunnel_event_text(true, &br, Event::Back { after_s: 40 });
    assert!(text.starts_with("map-e: the BR"), "{text}");
    assert!(!text.contains("AFTR"), "{text}");
    let (_, text) = tunnel_event_text(false, "2001:db8::1", Event::Back { after_s: 40 });
    assert!(text.starts_with("dslite: the AFTR 2001:db8::1"), "{text}");
}
