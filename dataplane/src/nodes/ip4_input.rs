//! ip4-input: validates IPv4 from the LAN, delivers what is for the router,
//! and sends the rest toward the DS-Lite tunnel (through ip4-firewall).

use std::net::{IpAddr, Ipv4Addr};

use etherparse::Ipv4HeaderSlice;

use crate::csum::complete_ipv4;
use crate::graph::{Cx, NodeId};
use crate::police::{self, PuntClass};
use crate::tables::Port;
use crate::wire::{be16, ipv4_header_ok, ETH_LEN};

crate::node_errors! {
    pub enum Error {
        OnWan => ("ipv4-on-wan", "native IPv4 on the IPv6-only WAN"),
        Truncated => ("truncated", "shorter than its IPv4 header or total length"),
        BadHeader => ("bad-header", "IPv4 version or header length invalid"),
        BadChecksum => ("bad-checksum", "IPv4 header checksum wrong"),
        BadSource => ("bad-source", "source is multicast, broadcast, loopback or 0.0.0.0"),
        Multicast => ("multicast", "multicast destination (no multicast routing)"),
        LanDestination => ("lan-destination", "destination on the LAN itself"),
        Martian => ("martian-destination", "destination 0/8, 127/8 or 240/4"),
        NoTunnel => ("no-tunnel", "no DS-Lite tunnel configured or up"),
        TtlExpired => ("ttl-expired", "TTL would reach 0 (time exceeded sent)"),
        L2Group => ("l2-group-unicast", "unicast IP received as a link-layer broadcast or multicast: not forwarded (RFC 1812 5.3.4)"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    for &i in pkts {
        let m = cx.meta[usize::from(i)];
        if m.rx == Port::Wan {
            cx.drop(i, Error::OnWan.index());
            continue;
        }
        let fib = cx.fib;
        let data = cx.data(i);
        let l3 = &data[ETH_LEN.min(data.len())..];
        let hdr = match Ipv4HeaderSlice::from_slice(l3) {
            Ok(h) => h,
            Err(etherparse::err::ipv4::HeaderSliceError::Len(_)) => {
                cx.drop(i, Error::Truncated.index());
                continue;
            }
            Err(_) => {
                cx.drop(i, Error::BadHeader.index());
                continue;
            }
        };
        let total = usize::from(hdr.total_len());
        // A total length below the header's own length would cut the
        // packet inside its header (the nodes after read the whole header).
        if total > l3.len() || total < hdr.slice().len() {
            cx.drop(i, Error::Truncated.index());
            continue;
        }
        if !ipv4_header_ok(hdr.slice()) {
            cx.drop(i, Error::BadChecksum.index());
            continue;
        }
        let src = hdr.source_addr();
        let dst = hdr.destination_addr();
        let ttl = hdr.ttl();
        let flags_frag = be16(l3, 6);
        let (ihl, proto) = (hdr.ihl(), hdr.protocol().0);
        let to_dhcp_server = src.is_unspecified() && is_udp_to(l3, ihl, proto, 67);
        let hdr_len = hdr.slice().len();
        // Ethernet pads short frames: the IPv4 total length is the truth.
        cx.meta[usize::from(i)].len = (ETH_LEN + total) as u32;
        // Here, before any path splits, so that forwarded and punted
        // traffic both see whole checksums (csum.rs says why it is safe).
        if let Some(ip) = cx.data(i).get_mut(ETH_LEN..ETH_LEN + total) {
            if complete_ipv4(ip, hdr_len) {
                cx.csum_completed(Port::Lan);
            }
        }

        let own = fib.lan_ipv4.map(|(a, _)| a);
        // A DHCP client without an address yet (RFC 2131 4.1: source
        // 0.0.0.0, to the broadcast address or to us) is the DHCP server's.
        if to_dhcp_server && (dst.is_broadcast() || Some(dst) == own) {
            cx.punt_local(i, Port::Lan, PuntClass::Dhcp4, IpAddr::V4(dst));
            continue;
        }
        if src.is_multicast() || src.is_broadcast() || src.is_loopback() || src.is_unspecified() {
            cx.drop(i, Error::BadSource.index());
            continue;
        }
        if Some(dst) == own || dst.is_broadcast() || is_lan_broadcast(fib, dst) {
            let class = police::ipv4_class(&cx.data(i)[ETH_LEN..], ihl, proto);
            cx.punt_local(i, Port::Lan, class, IpAddr::V4(dst));
            continue;
        }
        if dst.is_multicast() {
            cx.drop(i, Error::Multicast.index());
            continue;
        }
        let first = dst.octets()[0];
        if first == 0 || first == 127 || first >= 240 {
            cx.drop(i, Error::Martian.index());
            continue;
        }
        if fib.in_lan_ipv4(u32::from(dst)) {
            cx.drop(i, Error::LanDestination.index());
            continue;
        }
        if fib.tunnel.is_none() {
            cx.drop(i, Error::NoTunnel.index());
            continue;
        }
        // Multicast and broadcast destinations were handled above: what is
        // left would be forwarded, which a link-layer broadcast never is.
        if m.l2_group {
            cx.drop(i, Error::L2Group.index());
            continue;
        }
        if ttl <= 1 {
            // Fragments other than the first get no ICMP error (RFC 1812 4.3.2.7).
            if flags_frag & 0x1fff == 0 {
                cx.count(Error::TtlExpired.index());
                cx.meta[usize::from(i)].icmp = (11, 0, 0);
                cx.next(i, NodeId::Icmp4Error);
            } else {
                cx.drop(i, Error::TtlExpired.index());
            }
            continue;
        }
        // With NAPT44 (MAP-E), nat44-out is the firewall of this path.
        let next = if fib.napt.is_some() {
            NodeId::Nat44Out
        } else {
            NodeId::Ip4Firewall
        };
        cx.next(i, next);
    }
}

/// An unfragmented UDP datagram to `port`.
fn is_udp_to(l3: &[u8], ihl: u8, proto: u8, port: u16) -> bool {
    let off = usize::from(ihl) * 4;
    let unfragmented = be16(l3, 6) & 0x3fff == 0;
    proto == 17 && unfragmented && l3.len() >= off + 8 && be16(l3, off + 2) == port
}

fn is_lan_broadcast(fib: &crate::tables::Fib, dst: Ipv4Addr) -> bool {
    match fib.lan_ipv4 {
        Some((a, len)) if len < 31 => {
            let host_mask = u32::MAX >> len;
            u32::from(dst) == (u32::from(a) | host_mask)
        }
        _ => false,
    }
}
