//! Issue 15, M1 and the echo nit: what the firewall lets through as
//! related to, or part of, a LAN host's flow.

use super::*;

const OTHER6: &str = "2001:db8:0:111::99";
const OTHER4: [u8; 4] = [192, 168, 2, 99];

/// An ICMPv6 error from a WAN router to `dst` quoting `quoted`.
fn icmp6_error_to(dst: Ipv6Addr, t: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(GW_MAC, WAN_MAC)
        .ipv6(v6("2001:db8:6666::1").octets(), dst.octets(), 60)
        .icmpv6(etherparse::Icmpv6Type::Unknown {
            type_u8: t,
            code_u8: code,
            bytes5to8: [0, 0, 5, 0xdc],
        });
    let mut v = Vec::new();
    b.write(&mut v, quoted).unwrap();
    v
}

#[test]
fn m1_related_icmpv6_error_to_another_lan_host_is_dropped() {
    let fib = lab_fib();
    let up = ipv6_udp("2001:db8:0:111::10", "2001:db8:ffff::10", 64, 10, Port::Lan);
    let mut b = Bench::new(&[
        (Port::Wan, icmp6_error_to(v6(OTHER6), 1, 4, &up[14..])),
        (Port::Wan, icmp6_error_to(v6(OTHER6), 2, 0, &up[14..])),
        (Port::Wan, icmp6_error_to(HOST6, 1, 4, &up[14..])),
    ]);
    b.open(&fib, &[(Port::Lan, up.clone())]);
    b.run(&fib);
    // Only the error to the host whose flow it is; nothing is punted (no
    // neighbor solicitation for an address the sender chose).
    let lan = b.tx(Port::Lan);
    assert_eq!(lan.len(), 1);
    assert_eq!(&lan[0][14 + 24..14 + 40], &HOST6.octets());
    assert!(b.graph.out.punt.is_empty());
    assert_eq!(b.err(NodeId::Ip6Firewall, "icmp-unrelated"), 2);
}

/// An ICMPv4 error from `from` to `dst` quoting `quoted`, as the AFTR
/// sends it down the softwire.
fn icmp4_error_in_tunnel(from: [u8; 4], dst: [u8; 4], quoted: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(from, dst, 50).icmpv4(etherparse::Icmpv4Type::Unknown {
        type_u8: 3,
        code_u8: 1,
        bytes5to8: [0; 4],
    });
    let mut inner = Vec::new();
    b.write(&mut inner, quoted).unwrap();
    aftr_frame(v6("2001:db8:aaaa::1"), &inner)
}

#[test]
fn m1_related_icmpv4_error_after_decap_to_another_lan_host_is_dropped() {
    let fib = lab_fib();
    let syn = lan_tcp_syn(64, 0, b"");
    let quoted = &syn[14..14 + 28];
    let router = [203, 0, 113, 1];
    let mut b = Bench::new(&[
        (Port::Wan, icmp4_error_in_tunnel(router, OTHER4, quoted)),
        (Port::Wan, icmp4_error_in_tunnel(router, HOST4, quoted)),
    ]);
    b.open(&fib, &[(Port::Lan, syn.clone())]);
    b.run(&fib);
    let lan = b.tx(Port::Lan);
    assert_eq!(lan.len(), 1);
    assert_eq!(&lan[0][14 + 16..14 + 20], &HOST4);
    assert!(b.graph.out.punt.is_empty());
    assert_eq!(b.err(NodeId::Ip4Firewall, "icmp-unrelated"), 1);
}

fn echo6(src: Ipv6Addr, dst: Ipv6Addr, request: bool, from: Port) -> Vec<u8> {
    let (dmac, smac) = match from {
        Port::Lan => (LAN_MAC, HOST_MAC),
        Port::Wan => (WAN_MAC, GW_MAC),
    };
    let b = PacketBuilder::ethernet2(smac, dmac).ipv6(src.octets(), dst.octets(), 60);
    let b = if request {
        b.icmpv6_echo_request(0x4242, 1)
    } else {
        b.icmpv6_echo_reply(0x4242, 1)
    };
    let mut v = Vec::new();
    b.write(&mut v, b"ping").unwrap();
    v
}

#[test]
fn nit_echo_request_from_the_peer_of_a_lan_ping_is_dropped() {
    let fib = lab_fib();
    let ping = echo6(HOST6, SERVER6, true, Port::Lan);
    let mut b = Bench::new(&[
        (Port::Wan, echo6(SERVER6, HOST6, true, Port::Wan)),
        (Port::Wan, echo6(SERVER6, HOST6, false, Port::Wan)),
    ]);
    b.open(&fib, &[(Port::Lan, ping)]);
    b.run(&fib);
    // The reply passes; a request with the same identifier is no part of
    // the LAN host's ping.
    let lan = b.tx(Port::Lan);
    assert_eq!(lan.len(), 1);
    assert_eq!(lan[0][14 + 40], 129);
    assert_eq!(b.err(NodeId::Ip6Firewall, "no-session"), 1);
}
