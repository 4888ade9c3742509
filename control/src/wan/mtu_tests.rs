//! Issue 15 m1: what the WAN learns about MTUs and the hop limit. An RA's
//! MTU option and Cur Hop Limit (RFC 4861 6.3.4), and Packet Too Big sent
//! to the B4 about its tunnel packets (RFC 8201, RFC 2473 7.1), reach the
//! tunnel MTU the daemon publishes.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use super::*;
use crate::daemon::tunnel_mtu;
use ipoe_proto::hostio::{icmpv6_frame, Route};

const MAC: Mac = [0x02, 0, 0, 0, 0x02, 0x02];
const GW: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const B4: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 2);
const AFTR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xaaaa, 0, 0, 0, 0, 1);
const HOP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);

fn config(tag: &str) -> Config {
    let dir = std::env::temp_dir().join(format!("ipoe-wan-mtu-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "wan:\n  interface: wan0\n  ipv6:\n    address: {B4}/64\n    gateway: {GW}\n    dhcpv6_pd: false\n\
         lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    prefix: 2001:db8:0:111::/64\n\
         dslite:\n  aftr: {AFTR}\ncontrol:\n  state_dir: {}\n",
        dir.display()
    );
    ipoe_config::parse(&text, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn frame(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, message: &[u8]) -> Vec<u8> {
    icmpv6_frame(
        &Route {
            src_mac: [0x02, 0, 0, 0, 0x03, 0x01],
            dst_mac: MAC,
            src,
            dst,
            hop_limit,
        },
        message,
    )
}

/// An RA from the gateway: Cur Hop Limit, router lifetime 1800, MTU option.
fn ra(cur_hop_limit: u8, mtu: u32) -> Vec<u8> {
    let mut m = vec![
        134,
        0,
        0,
        0,
        cur_hop_limit,
        0,
        0x07,
        0x08,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    m.extend_from_slice(&[5, 1, 0, 0]);
    m.extend_from_slice(&mtu.to_be_bytes());
    frame(GW, "ff02::1".parse().unwrap(), 255, &m)
}

/// A PTB from a router on the path, quoting our packet to the AFTR.
fn ptb(mtu: u32) -> Vec<u8> {
    let mut m = vec![2, 0, 0, 0];
    m.extend_from_slice(&mtu.to_be_bytes());
    let mut q = vec![0u8; 40 + 20];
    q[0] = 0x60;
    q[4..6].copy_from_slice(&1460u16.to_be_bytes());
    q[6] = 4;
    q[7] = 63;
    q[8..24].copy_from_slice(&B4.octets());
    q[24..40].copy_from_slice(&AFTR.octets());
    q[40] = 0x45;
    m.extend_from_slice(&q);
    frame(HOP, B4, 64, &m)
}

#[test]
fn m1_ra_mtu_and_ptb_lower_the_tunnel_mtu_and_it_ages_back() {
    let c = config("lower");
    let t0 = Instant::now();
    let mut w = Wan::new(&c, MAC, iface_ll(), t0);
    let usable = [B4];
    let l = w.learned(&usable);
    assert_eq!((l.wan_mtu, l.hop_limit, l.tunnel_pmtu), (1500, None, None));
    assert_eq!(tunnel_mtu(&c, &l), 1460);

    // RFC 4861 6.3.4: the RA's MTU and Cur Hop Limit.
    assert!(w.handle_frame(t0, &ra(48, 1454)));
    let l = w.learned(&usable);
    assert_eq!((l.wan_mtu, l.hop_limit), (1454, Some(48)));
    assert_eq!(tunnel_mtu(&c, &l), 1414);

    // A PTB on the path to the AFTR: the tunnel carries 1400 - 40.
    assert!(w.handle_frame(t0, &ptb(1400)));
    let l = w.learned(&usable);
    assert_eq!(l.tunnel_pmtu, Some((1400, HOP)));
    assert_eq!(tunnel_mtu(&c, &l), 1360);
    // Below 1280 means 1280 (RFC 8021: no atomic fragments).
    assert!(w.handle_frame(t0, &ptb(1000)));
    assert_eq!(tunnel_mtu(&c, &w.learned(&usable)), 1240);

    // RFC 8201 4: ten minutes later the link MTU is tried again.
    let mut out = Vec::new();
    let later = t0 + ipoe_proto::pmtu::AGE + Duration::from_secs(1);
    w.poll(later, &usable, &[], &mut out);
    let l = w.learned(&usable);
    assert_eq!(l.tunnel_pmtu, None);
    assert_eq!(tunnel_mtu(&c, &l), 1414);
}

#[test]
fn m1_ra_mtu_above_the_configured_one_is_not_used() {
    let c = config("above");
    let t0 = Instant::now();
    let mut w = Wan::new(&c, MAC, iface_ll(), t0);
    assert!(w.handle_frame(t0, &ra(0, 9000)));
    let l = w.learned(&[B4]);
    // Cur Hop Limit 0 is "unspecified".
    assert_eq!((l.wan_mtu, l.hop_limit), (1500, None));
    assert_eq!(tunnel_mtu(&c, &l), 1460);
}

fn iface_ll() -> Ipv6Addr {
    crate::iface::link_local(&MAC)
}
