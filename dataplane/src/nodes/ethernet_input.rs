//! ethernet-input: checks the Ethernet header and dispatches by EtherType.

use std::net::{IpAddr, Ipv4Addr};

use etherparse::Ethernet2Slice;

use crate::graph::{Cx, NodeId};
use crate::police::PuntClass;
use crate::wire::{ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

crate::node_errors! {
    pub enum Error {
        Truncated => ("truncated", "frame shorter than an Ethernet header"),
        NotOurMac => ("not-our-mac", "unicast to another station's MAC"),
        Vlan => ("vlan-tagged", "802.1Q tagged frame (no VLANs configured)"),
        UnknownEthertype => ("unknown-ethertype", "neither IPv4, IPv6 nor ARP"),
        ArpOnWan => ("arp-on-wan", "ARP on the IPv6-only WAN"),
        ArpPunt => ("arp-punt", "ARP punted to the control thread (not a drop)"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    for &i in pkts {
        let rx = cx.meta[usize::from(i)].rx;
        let our_mac = cx.fib.port(rx).mac;
        let data = cx.data(i);
        let Ok(eth) = Ethernet2Slice::from_slice_without_fcs(data) else {
            cx.drop(i, Error::Truncated.index());
            continue;
        };
        let dst = eth.destination();
        // Group bit set = broadcast or multicast: the protocol nodes decide,
        // and must know it (they never forward such a frame's unicast IP).
        let group = dst[0] & 1 != 0;
        if !group && dst != our_mac {
            cx.drop(i, Error::NotOurMac.index());
            continue;
        }
        let ether_type = eth.ether_type().0;
        cx.meta[usize::from(i)].l2_group = group;
        match ether_type {
            ETHERTYPE_IPV6 => cx.next(i, NodeId::Ip6Input),
            ETHERTYPE_IPV4 => cx.next(i, NodeId::Ip4Input),
            ETHERTYPE_ARP => {
                if rx == crate::tables::Port::Wan {
                    cx.drop(i, Error::ArpOnWan.index());
                } else {
                    cx.count(Error::ArpPunt.index());
                    cx.punt_local(i, rx, PuntClass::Nd, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                }
            }
            0x8100 | 0x88a8 => cx.drop(i, Error::Vlan.index()),
            _ => cx.drop(i, Error::UnknownEthertype.index()),
        }
    }
}
