//! Issue 15, "Tunnel and MTU": outer fragmentation at the tunnel MTU (M5),
//! the learned tunnel MTU and hop limit (m1), decapsulated IPv4 larger than
//! the LAN MTU (m3) and the source of ICMPv4 errors sent into the softwire
//! (m8).

use etherparse::{Ipv4Header, PacketBuilder};

use super::{aftr_frame, fix_ipv4_checksum, Bench, HOST4, SERVER4};
use crate::graph::NodeId;
use crate::reass::Reassembler;
use crate::tables::{Fib, Port};
use crate::testkit::{lab_fib, HOST_MAC, LAN_MAC};

/// A LAN UDP datagram of `total` IPv4 bytes toward the server, DF as given.
fn lan_udp(total: usize, df: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(HOST_MAC, LAN_MAC)
        .ipv4(HOST4, SERVER4, 64)
        .udp(40010, 7);
    let mut v = Vec::new();
    b.write(&mut v, &vec![0x5au8; total - 28]).unwrap();
    set_df(&mut v[14..], df);
    v
}

/// The server's UDP reply of `total` IPv4 bytes, DF as given (bare IPv4).
fn inet_udp(total: usize, df: bool, ttl: u8) -> Vec<u8> {
    let b = PacketBuilder::ipv4(SERVER4, HOST4, ttl).udp(7, 40010);
    let mut v = Vec::new();
    let payload: Vec<u8> = (0..total - 28).map(|k| k as u8).collect();
    b.write(&mut v, &payload).unwrap();
    set_df(&mut v, df);
    v
}

fn set_df(ip: &mut [u8], df: bool) {
    if df {
        ip[6] |= 0x40;
    } else {
        ip[6] &= !0x40;
    }
    fix_ipv4_checksum(&mut ip[..20]);
}

fn fib_with_tunnel_mtu(mtu: u16) -> Fib {
    let mut fib = lab_fib();
    fib.tunnel.as_mut().unwrap().mtu = mtu;
    fib
}

/// Reassembles outer IPv6 fragments (Ethernet frames) into the IPv6 packet.
fn reassemble6(frags: &[Vec<u8>]) -> Vec<u8> {
    let mut r = Reassembler::new(4, 2000, 1_000_000_000);
    let mut whole = vec![0u8; 2000];
    let mut done = None;
    for f in frags {
        if let Some(n) = r.insert(&f[14..], 0, &mut whole).expect("valid fragment") {
            done = Some(n);
        }
    }
    let n = done.expect("the fragments complete the datagram");
    whole.truncate(n);
    whole
}

// ---- M5 ---------------------------------------------------------------

/// `dslite.mtu: 1400` under a 1500-byte WAN: the tunnel path carries 1440
/// bytes of IPv6, so DF=0 packets between 1401 and 1500 bytes leave as
/// fragments of at most 1440 bytes (RFC 2473 7.2, RFC 6333 5.3).
#[test]
fn m5_outer_fragmentation_uses_tunnel_mtu() {
    let fib = fib_with_tunnel_mtu(1400);
    for total in [1401, 1450, 1460, 1480, 1500] {
        let input = lan_udp(total, false);
        let mut b = Bench::with_spare(&[(Port::Lan, input.clone())], 4);
        b.run(&fib);
        let out = b.tx(Port::Wan);
        assert_eq!(out.len(), 2, "{total}: two fragments");
        for f in &out {
            assert!(
                f.len() - 14 <= 1440,
                "{total}: {} > the tunnel path",
                f.len() - 14
            );
        }
        assert_eq!(b.err(NodeId::Ip6Fragment, "fragmented"), 1);
        let whole = reassemble6(&out);
        let mut expected = input[14..].to_vec();
        expected[8] = 63;
        fix_ipv4_checksum(&mut expected[..20]);
        assert_eq!(&whole[40..], &expected[..], "{total}: the inner packet");
    }
}

/// The smallest tunnel path (1280) and the largest inner packet a LAN
/// frame can hold (1778) still need only two fragments.
#[test]
fn m5_two_fragments_cover_the_largest_frame_at_the_smallest_path() {
    let mut fib = fib_with_tunnel_mtu(1240);
    fib.lan.mtu = 1778;
    let input = lan_udp(1778, false);
    let mut b = Bench::with_spare(&[(Port::Lan, input)], 4);
    b.run(&fib);
    let out = b.tx(Port::Wan);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|f| f.len() - 14 <= 1280));
    assert_eq!(reassemble6(&out).len(), 40 + 1778);
}

// ---- m3 ---------------------------------------------------------------

/// The session the replies belong to, opened from the LAN.
fn opener() -> Vec<u8> {
    lan_udp(40, true)
}

/// `lan.mtu: 1400`, a 1460-byte DF reply from the internet: the router
/// sends fragmentation needed with next-hop MTU 1400 back through the
/// tunnel (RFC 1191, RFC 1812 5.2.7.1) instead of dropping it silently.
#[test]
fn m3_decap_df_bigger_than_lan_mtu_gets_frag_needed() {
    let mut fib = lab_fib();
    fib.lan.mtu = 1400;
    let inner = inet_udp(1460, true, 50);
    let mut b = Bench::new(&[(Port::Wan, aftr_frame(crate::testkit::AFTR, &inner))]);
    b.open(&fib, &[(Port::Lan, opener())]);
    b.run(&fib);
    assert!(
        b.tx(Port::Lan).is_empty(),
        "nothing too big reaches the LAN"
    );
    assert_eq!(b.err(NodeId::InterfaceOutput, "too-long"), 0);
    let out = b.tx(Port::Wan);
    assert_eq!(out.len(), 1, "frag-needed goes back into the tunnel");
    let ip = &out[0][14 + 40..];
    let (h, icmp) = Ipv4Header::from_slice(ip).unwrap();
    assert_eq!(h.destination, SERVER4);
    assert_eq!(h.protocol, etherparse::IpNumber::ICMP);
    assert_eq!((icmp[0], icmp[1]), (3, 4));
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1400);
    assert_eq!(b.err(NodeId::Ip4Rewrite, "too-big"), 1);
}

/// The same reply without DF is fragmented to the LAN MTU: two fragments
/// that together are the original (TTL decremented).
#[test]
fn m3_decap_non_df_bigger_than_lan_mtu_is_fragmented() {
    let mut fib = lab_fib();
    fib.lan.mtu = 1400;
    let inner = inet_udp(1460, false, 50);
    let mut b = Bench::with_spare(&[(Port::Wan, aftr_frame(crate::testkit::AFTR, &inner))], 4);
    b.open(&fib, &[(Port::Lan, opener())]);
    b.run(&fib);
    let out = b.tx(Port::Lan);
    assert_eq!(out.len(), 2, "two IPv4 fragments");
    let mut data = vec![0u8; 1460 - 20];
    let mut seen = 0;
    for f in &out {
        assert!(f.len() - 14 <= 1400, "fragment {} > lan.mtu", f.len() - 14);
        assert_eq!(&f[0..6], &HOST_MAC);
        let (h, payload) = Ipv4Header::from_slice(&f[14..]).unwrap();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert_eq!(h.time_to_live, 49);
        assert_eq!(h.identification, u16::from_be_bytes([inner[4], inner[5]]));
        let off = usize::from(h.fragment_offset.value()) * 8;
        let more = h.more_fragments;
        assert_eq!(more, off == 0, "the first has MF, the last not");
        assert_eq!(payload.len(), usize::from(h.total_len) - 20);
        data[off..off + payload.len()].copy_from_slice(payload);
        seen += payload.len();
    }
    assert_eq!(seen, 1460 - 20);
    assert_eq!(&data[..], &inner[20..]);
    assert_eq!(b.err(NodeId::Ip4Rewrite, "fragmented"), 1);
}

// ---- m8 ---------------------------------------------------------------

/// Time exceeded for a packet from the internet goes back into the
/// softwire from 192.0.0.2, the B4's own IPv4 address (RFC 6333 5.7,
/// RFC 7335), not from the LAN address.
#[test]
fn m8_icmp_into_the_softwire_comes_from_192_0_0_2() {
    let fib = lab_fib();
    let inner = inet_udp(100, false, 1);
    let mut b = Bench::new(&[(Port::Wan, aftr_frame(crate::testkit::AFTR, &inner))]);
    b.open(&fib, &[(Port::Lan, opener())]);
    b.run(&fib);
    let out = b.tx(Port::Wan);
    assert_eq!(out.len(), 1, "time exceeded goes back into the tunnel");
    let (h, icmp) = Ipv4Header::from_slice(&out[0][14 + 40..]).unwrap();
    assert_eq!(h.source, [192, 0, 0, 2]);
    assert_eq!(h.destination, SERVER4);
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!(icmp[0], 11);
}

/// Errors to LAN hosts keep the router's LAN address.
#[test]
fn m8_icmp_to_the_lan_keeps_the_lan_address() {
    let fib = fib_with_tunnel_mtu(1400);
    let mut b = Bench::new(&[(Port::Lan, lan_udp(1450, true))]);
    b.run(&fib);
    let out = b.tx(Port::Lan);
    assert_eq!(out.len(), 1);
    let (h, icmp) = Ipv4Header::from_slice(&out[0][14..]).unwrap();
    assert_eq!(h.source, [192, 168, 2, 1]);
    assert_eq!((icmp[0], icmp[1]), (3, 4));
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1400);
}

// ---- m1 ---------------------------------------------------------------

/// What the control thread learned (a 1400-byte path from a PTB, the RA's
/// Cur Hop Limit 48) is what the encapsulation uses: DF packets above
/// 1360 get frag-needed 1360 (RFC 2473 7.1, 8.3), the rest leave with hop
/// limit 48, non-DF ones in fragments that fit 1400.
#[test]
fn m1_learned_tunnel_mtu_and_hop_limit_reach_the_encapsulation() {
    let mut fib = fib_with_tunnel_mtu(1360);
    fib.tunnel.as_mut().unwrap().hop_limit = 48;
    let mut b = Bench::with_spare(
        &[
            (Port::Lan, lan_udp(1361, true)),
            (Port::Lan, lan_udp(1360, true)),
            (Port::Lan, lan_udp(1460, false)),
        ],
        4,
    );
    b.run(&fib);
    let back = b.tx(Port::Lan);
    assert_eq!(back.len(), 1);
    let icmp = &back[0][14 + 20..];
    assert_eq!((icmp[0], icmp[1]), (3, 4));
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1360);
    let out = b.tx(Port::Wan);
    assert_eq!(out.len(), 3, "one whole, two fragments");
    for f in &out {
        assert_eq!(f[14 + 7], 48, "outer hop limit");
        assert!(f.len() - 14 <= 1400);
    }
}
