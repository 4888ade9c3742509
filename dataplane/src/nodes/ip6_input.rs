//! ip6-input: validates IPv6, sends what is for the router to ip6-local
//! (its policy), hands IPv4-in-IPv6 for the B4 address to dslite-decap (or
//! the AFTR's outer fragments to ip6-reassembly; options headers the AFTR
//! put before either are processed and removed here), and sends transit
//! traffic between the LAN /64 and the WAN to ip6-firewall.

use std::net::Ipv6Addr;

use etherparse::Ipv6HeaderSlice;

use crate::csum::complete_ipv6;
use crate::flow::{EXT_DEST_OPTS, EXT_FRAGMENT, EXT_HOP_BY_HOP};
use crate::graph::{Cx, NodeId};
use crate::tables::Port;
use crate::tunnel_opts;
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
        L2Group => ("l2-group-unicast", "unicast IP received as a link-layer broadcast or multicast: not forwarded (RFC 1812 5.3.4)"),
        Forbidden => ("forbidden-address", "LAN packet to, or WAN packet from, a loopback, unspecified, IPv4-mapped or -compatible, reserved, site-local or ORCHID address (RFC 4291, RFC 6092 REC-3)"),
        FragmentNotFromAftr => ("fragment-not-from-aftr", "fragment to the B4 from a source other than the AFTR (only the AFTR's are reassembled)"),
        TunnelOptions => ("tunnel-options", "AFTR packet with an option whose type says discard when unknown (RFC 8200 4.2), or a malformed or misplaced options header"),
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
            // Each side's link-local is ours on that link only (RFC 4291
            // 2.5.6): the weak host model stops at global addresses.
            if is_link_local(&dst) && fib.port(rx).link_local != Some(dst_a) {
                cx.drop(i, Error::LinkLocal.index());
                continue;
            }
            let tun = fib.tunnel.filter(|t| t.b4 == dst_a);
            let to_b4 = tun.is_some();
            if (next == PROTO_IPIP || next == EXT_FRAGMENT) && to_b4 && rx == Port::Lan {
                cx.drop(i, Error::IpipFromLan.index());
            } else if next == PROTO_IPIP && to_b4 {
                // dslite-decap checks (and counts) the AFTR source.
                cx.next(i, NodeId::DsliteDecap);
            } else if tun.is_some_and(|t| rx == Port::Wan && t.aftr == src_a) {
                match next {
                    // The AFTR fragments the outer header of 1500-byte
                    // inner packets (RFC 6333 5.3): reassemble first.
                    EXT_FRAGMENT => cx.next(i, NodeId::Ip6Reassembly),
                    EXT_HOP_BY_HOP | EXT_DEST_OPTS => from_aftr_with_options(cx, i),
                    _ => cx.next(i, NodeId::Ip6Local),
                }
            } else if next == EXT_FRAGMENT && to_b4 {
                // Nobody else has anything to reassemble for the B4, and
                // letting them take the reassembly contexts would let them
                // evict the AFTR's datagrams.
                cx.drop(i, Error::FragmentNotFromAftr.index());
            } else {
                cx.next(i, NodeId::Ip6Local);
            }
            continue;
        }
        // Link-local addresses never leave their link (RFC 4291 2.5.6).
        if is_link_local(&dst) || is_link_local(&src) {
            cx.drop(i, Error::LinkLocal.index());
            continue;
        }
        // What is left would be forwarded: a link-layer broadcast never is
        // (multicast destinations were handled above).
        if cx.meta[usize::from(i)].l2_group {
            cx.drop(i, Error::L2Group.index());
            continue;
        }
        match rx {
            Port::Wan => {
                if fib.lan_proxy && fib.in_lan_prefix(&dst) && is_nd(next, cx.data(i)) {
                    // NUD of a proxied host, unicast to it: the ND proxy
                    // answers (RFC 4389 4.1.3.1), never forwarded.
                    cx.next(i, NodeId::Ip6Local);
                } else if fib.in_lan_prefix(&src) && !fib.proxied_wan_neighbor(&src) {
                    cx.drop(i, Error::Spoofed.index());
                } else if forbidden(&src) {
                    cx.drop(i, Error::Forbidden.index());
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
                } else if forbidden(&dst) {
                    cx.drop(i, Error::Forbidden.index());
                } else if fib.lan_proxy && fib.in_lan_prefix(&dst) {
                    // The proxied /64 is off-link for LAN hosts (L=0): a
                    // known LAN host goes back to the LAN, the rest to the
                    // WAN neighbor holding it, through the firewall.
                    if fib.proxied_wan_neighbor(&dst) {
                        cx.meta[usize::from(i)].tx = Port::Wan;
                        cx.next(i, NodeId::Ip6Firewall);
                    } else {
                        cx.meta[usize::from(i)].tx = Port::Lan;
                        cx.next(i, NodeId::Ip6Forward);
                    }
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

/// A Neighbor Solicitation or Advertisement without extension headers
/// (RFC 4861 7.1 requires none before the ICMPv6 header that matters).
#[inline]
fn is_nd(next: u8, data: &[u8]) -> bool {
    next == crate::wire::PROTO_ICMPV6 && matches!(data.get(ETH_LEN + IPV6_LEN), Some(135 | 136))
}

#[inline]
fn is_link_local(a: &[u8; 16]) -> bool {
    a[0] == 0xfe && a[1] & 0xc0 == 0x80
}

/// Addresses never forwarded (RFC 4291 2.5.2/2.5.3, RFC 5156, RFC 6092
/// REC-3): all of ::/8 (unspecified, loopback, IPv4-mapped, IPv4-compatible
/// and the rest that IANA reserves) except the NAT64 prefixes 64:ff9b::/96
/// and 64:ff9b:1::/48 (RFC 6052, RFC 8215), which an ISP may route;
/// deprecated site-local fec0::/10 (RFC 3879); ORCHID 2001:10::/28 and
/// ORCHIDv2 2001:20::/28 (RFC 4843, RFC 7343). Documentation 2001:db8::/32
/// is on REC-3's list too but stays forwardable: the lab and the tests use
/// it for every address. Unique local fc00::/7 is not refused either: a
/// site may reach other parts of itself across the WAN with it.
#[inline]
fn forbidden(a: &[u8; 16]) -> bool {
    match a[0] {
        0x00 => a[1..4] != [0x64, 0xff, 0x9b],
        0xfe => a[1] & 0xc0 == 0xc0,
        0x20 => a[1] == 0x01 && a[2] == 0x00 && matches!(a[3] & 0xf0, 0x10 | 0x20),
        _ => false,
    }
}

/// The AFTR's packet to the B4 with Hop-by-Hop or Destination Options
/// first (RFC 2473's encapsulation limit from a Linux ip6tnl AFTR): its
/// options are processed; IPv4 behind them goes on to dslite-decap without
/// them, a Fragment header to ip6-reassembly (which skips them), anything
/// else to ip6-local.
fn from_aftr_with_options(cx: &mut Cx, i: u16) {
    let data = cx.data(i);
    match tunnel_opts::walk(&data[ETH_LEN..], true) {
        Ok(p) if p.next == PROTO_IPIP => {
            if tunnel_opts::strip_packet(cx, i, p) {
                cx.next(i, NodeId::DsliteDecap);
            } else {
                cx.drop(i, Error::TunnelOptions.index());
            }
        }
        Ok(p) if p.next == EXT_FRAGMENT => cx.next(i, NodeId::Ip6Reassembly),
        Ok(_) => cx.next(i, NodeId::Ip6Local),
        Err(_) => cx.drop(i, Error::TunnelOptions.index()),
    }
}
