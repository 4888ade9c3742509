//! Issue 19: forwarding with a proxied WAN /64 (`Fib::lan_proxy`). The
//! /64 is on-link on both ports: a known LAN host is on the LAN, anything
//! else in it is a WAN neighbor; WAN NS/NA for it go to the ND proxy.

use super::*;
use crate::testkit::HOST6;

/// A WAN node in the same /64 (the home gateway's global address).
const WAN_NEIGHBOR: &str = "2001:db8:0:111::fe";
const WAN_NEIGHBOR_MAC: [u8; 6] = [2, 0, 0, 0, 0x0f, 0xe];

fn proxy_fib() -> Fib {
    let mut fib = lab_fib();
    fib.lan_proxy = true;
    fib
}

fn ns_to(dst: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(GW_MAC, WAN_MAC)
        .ipv6(v6(WAN_NEIGHBOR).octets(), dst.octets(), 255)
        .icmpv6(etherparse::Icmpv6Type::Unknown {
            type_u8: 135,
            code_u8: 0,
            bytes5to8: [0; 4],
        });
    let mut v = Vec::new();
    b.write(&mut v, &target.octets()).unwrap();
    v
}

#[test]
fn lan_to_a_wan_neighbor_in_the_proxied_64_goes_to_it_on_the_wan() {
    let mut fib = proxy_fib();
    let to_wan = ipv6_udp("2001:db8:0:111::10", WAN_NEIGHBOR, 64, 8, Port::Lan);
    // Unresolved: a neighbor miss for the address itself, not the router.
    let mut b = Bench::new(&[(Port::Lan, to_wan.clone())]);
    b.run(&fib);
    assert_eq!(b.graph.out.punt.len(), 1);
    let i = b.graph.out.punt.as_slice()[0];
    let m = b.graph.meta[usize::from(i)];
    assert_eq!(m.punt, PuntReason::NeighborMiss);
    assert_eq!(m.tx, Port::Wan);
    assert_eq!(m.next_hop, IpAddr::V6(v6(WAN_NEIGHBOR)));
    // Resolved: out of the WAN to its MAC.
    fib.nd_wan.insert(v6(WAN_NEIGHBOR), WAN_NEIGHBOR_MAC);
    let mut b = Bench::new(&[(Port::Lan, to_wan)]);
    b.run(&fib);
    let out = b.tx(Port::Wan);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..6], &WAN_NEIGHBOR_MAC);
}

#[test]
fn lan_to_a_known_lan_host_in_the_proxied_64_turns_back_to_the_lan() {
    let fib = proxy_fib();
    let hairpin = ipv6_udp("2001:db8:0:111::20", &HOST6.to_string(), 64, 8, Port::Lan);
    let mut b = Bench::new(&[(Port::Lan, hairpin)]);
    b.run(&fib);
    let out = b.tx(Port::Lan);
    assert_eq!(out.len(), 1, "back to the LAN");
    assert_eq!(&out[0][..6], &HOST_MAC);
    assert_eq!(out[0][14 + 7], 63, "routed: hop limit decremented");
    // Without the proxy the same packet is LAN-to-LAN and dropped.
    let mut b = Bench::new(&[(
        Port::Lan,
        ipv6_udp("2001:db8:0:111::20", &HOST6.to_string(), 64, 8, Port::Lan),
    )]);
    b.run(&lab_fib());
    assert_eq!(b.err(NodeId::Ip6Input, "lan-destination"), 1);
}

#[test]
fn wan_sources_in_the_proxied_64_are_spoofed_only_for_lan_hosts() {
    let fib = proxy_fib();
    let from_neighbor = ipv6_udp(WAN_NEIGHBOR, &HOST6.to_string(), 64, 8, Port::Wan);
    let from_lan_host = ipv6_udp(&HOST6.to_string(), "2001:db8:0:111::20", 64, 8, Port::Wan);
    let mut b = Bench::new(&[(Port::Wan, from_neighbor), (Port::Wan, from_lan_host)]);
    b.run(&fib);
    assert_eq!(b.err(NodeId::Ip6Input, "spoofed-source"), 1);
    // The neighbor's unsolicited UDP meets the firewall as any WAN packet.
    assert_eq!(b.tx(Port::Lan).len(), 0);
    assert_eq!(b.graph.out.drop.len(), 2);
}

#[test]
fn unicast_neighbor_solicitations_for_proxied_hosts_go_to_the_router() {
    let fib = proxy_fib();
    let mut b = Bench::new(&[(Port::Wan, ns_to(HOST6, HOST6))]);
    b.run(&fib);
    assert_eq!(b.graph.out.punt.len(), 1, "the ND proxy answers NUD");
    assert_eq!(b.tx(Port::Lan).len(), 0, "never forwarded");
    // PD mode: the same frame is transit traffic (the firewall's).
    let mut b = Bench::new(&[(Port::Wan, ns_to(HOST6, HOST6))]);
    b.run(&lab_fib());
    assert_eq!(b.graph.out.punt.len(), 0);
}
