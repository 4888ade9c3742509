//! ip6-input: validates IPv6, sends what is for the router to ip6-local
//! (its policy), hands IPv4-in-IPv6 for the B4 address to dslite-decap (or
//! its outer fragments to ip6-reassembly), and sends transit traffic
//! between the LAN /64 and the WAN to ip6-firewall.

use std::net::Ipv6Addr;

use etherparse::Ipv6HeaderSlice;

use crate::csum::complete_ipv6;
use crate::flow::EXT_FRAGMENT;
use crate::graph::{Cx, NodeId};
use crate::tables::Port;
use crate::wire::{ETH_LEN, IPV6_LEN, PROTO_IPIP};

crate::node_errors! {
    pub enum Error {
        Truncated => ("truncated", "shorter than the IPv6 header or payload length"),
        BadVersion => ("bad-version", "IP version is not 6"),
        BadSource => ("bad-source", "multicast, loopback or unspecified source"),
        Multicast => ("multicast", "multicast beyond link scope (no multicast routing)"),
        LinkLocal => ("link-local", "link-local source or destination that is not ours, can't forward"),
        IpipFromLan => ("ipip-from-lan", "IPv4-in-IPv6 from the LAN"),
        NoRoute => ("no-route", "destination neither ours nor in the LAN prefix"),
        LanDestination => ("lan-destination", "LAN to LAN (hosts talk directly)"),
        SourceNotLan => ("source-not-lan-prefix", "LAN source outside the LAN prefix (BCP 38)"),
        StaleSource => ("stale-prefix-source", "LAN source in a prefix being renumbered away (ICMPv6 unreachable code 5 sent)"),
        Spoofed => ("spoofed-source", "WAN packet with a LAN prefix source"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let fib = cx.fib;
    for &i in pkts {
        let rx = cx.meta[usize::from(i)].rx;
        let data = cx.data(i);
        let l3 = &data[ETH_LEN.min(data.len())..];
        let hdr = match Ipv6HeaderSlice::from_slice(l3) {
            Ok(h) => h,
            Err(etherparse::err::ipv6::HeaderSliceError::Len(_)) => {
                cx.drop(i, Error::Truncated.index());
                continue;
            }
            Err(_) => {
                cx.drop(i, Error::BadVersion.index());
                continue;
            }
        };
        let total = IPV6_LEN + usize::from(hdr.payload_length());
        if total > l3.len() {
            cx.drop(i, Error::Truncated.index());
            continue;
        }
        let src: [u8; 16] = hdr.source();
        let dst: [u8; 16] = hdr.destination();
        let next = hdr.next_header().0;
        cx.meta[usize::from(i)].len = (ETH_LEN + total) as u32;
        // Before the paths split: forwarded and local traffic both get
        // whole checksums (csum.rs says why it is safe).
        if let Some(ip) = cx.data(i).get_mut(ETH_LEN..ETH_LEN + total) {
            if complete_ipv6(ip) {
                cx.csum_completed(rx);
            }
        }

        let src_a = Ipv6Addr::from(src);
        let dst_a = Ipv6Addr::from(dst);
        if src[0] == 0xff || src_a.is_loopback() {
            cx.drop(i, Error::BadSource.index());
            continue;
        }
        if dst[0] == 0xff {
            // Link-scope multicast (all-nodes, all-routers, solicited-node) is
            // NDP/MLD/DHCP business of the control thread.
            if dst[1] & 0x0f == 2 {
                cx.next(i, NodeId::Ip6Local);
            } else {
                cx.drop(i, Error::Multicast.index());
            }
            continue;
        }
        if src_a.is_unspecified() {
            cx.drop(i, Error::BadSource.index());
            continue;
        }
        if fib.is_own_ipv6(&dst_a) {
            let is_b4 = fib.tunnel.map(|t| t.b4 == dst_a).unwrap_or(false);
            if (next == PROTO_IPIP || next == EXT_FRAGMENT) && is_b4 && rx == Port::Lan {
                cx.drop(i, Error::IpipFromLan.index());
            } else if next == PROTO_IPIP && is_b4 {
                cx.next(i, NodeId::DsliteDecap);
            } else if next == EXT_FRAGMENT && is_b4 {
                // The AFTR fragments the outer header of 1500-byte inner
                // packets (RFC 6333 5.3): reassemble first.
                cx.next(i, NodeId::Ip6Reassembly);
            } else {
                cx.next(i, NodeId::Ip6Local);
            }
            continue;
        }
        // Link-local addresses never leave their link (RFC 4291 2.5.6).
        if (dst[0] == 0xfe && dst[1] & 0xc0 == 0x80) || (src[0] == 0xfe && src[1] & 0xc0 == 0x80) {
            cx.drop(i, Error::LinkLocal.index());
            continue;
        }
        match rx {
            Port::Wan => {
                if fib.in_lan_prefix(&src) {
                    cx.drop(i, Error::Spoofed.index());
                } else if fib.in_lan_prefix(&dst) {
                    cx.meta[usize::from(i)].tx = Port::Lan;
                    cx.next(i, NodeId::Ip6Firewall);
                } else {
                    cx.drop(i, Error::NoRoute.index());
                }
            }
            Port::Lan => {
                if !fib.in_lan_prefix(&src) && fib.in_stale_lan_prefix(&src) {
                    // RFC 9096 / RFC 7084 L-13: tell the host its old
                    // address no longer works (destination unreachable,
                    // source address failed ingress/egress policy).
                    cx.count(Error::StaleSource.index());
                    cx.meta[usize::from(i)].icmp = (1, 5, 0);
                    cx.next(i, NodeId::Icmp6Error);
                } else if !fib.in_lan_prefix(&src) {
                    cx.drop(i, Error::SourceNotLan.index());
                } else if fib.in_lan_prefix(&dst) {
                    cx.drop(i, Error::LanDestination.index());
                } else if fib.gateway.is_none() {
                    cx.drop(i, Error::NoRoute.index());
                } else {
                    cx.meta[usize::from(i)].tx = Port::Wan;
                    cx.next(i, NodeId::Ip6Firewall);
                }
            }
        }
    }
}
