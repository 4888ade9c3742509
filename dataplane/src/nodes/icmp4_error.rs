//! ip4-icmp-error: turns the packet in place into an ICMPv4 error about it
//! (time exceeded, fragmentation needed) and routes it: to a LAN host
//! directly, from the router's LAN address; to an internet host through
//! DS-Lite, from 192.0.0.2, the B4's own IPv4 address (RFC 6333 5.7, RFC
//! 7335), so the softwire never sees the LAN's numbering.
//!
//! Layout trick: the quoted original stays where it is; the new IPv4 and
//! ICMP headers (28 bytes) are written over its old Ethernet header and the
//! headroom before it.

use std::net::IpAddr;

use crate::graph::{Cx, NodeId, PuntReason};
use crate::tables::Port;
use crate::wire::{be16, checksum, put16, write_eth, ETHERTYPE_IPV4, ETH_LEN, PROTO_ICMP};

/// RFC 1812 4.3.2.3: an error holds as much of the original as fits in 576 bytes.
const MAX_ERROR_LEN: usize = 576;
const HDRS: usize = 20 + 8;
/// The B4's IPv4 address (RFC 6333 5.7, from 192.0.0.0/29 of RFC 7335).
pub const B4_IPV4: [u8; 4] = [192, 0, 0, 2];

crate::node_errors! {
    pub enum Error {
        Suppressed => ("suppressed", "no error about an error, a non-first fragment, or a broadcast (IP or link layer)"),
        RateLimited => ("rate-limited", "ICMP error rate limit"),
        NoSource => ("no-source", "no LAN IPv4 address to send from"),
        NoHeadroom => ("no-headroom", "no room in front of the frame"),
        Sent => ("sent", "errors sent (not a drop)"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let fib = cx.fib;
    for &i in pkts {
        let m = cx.meta[usize::from(i)];
        let (chunk, off) = cx.chunk(i);
        let orig = &chunk[off + ETH_LEN..off + m.len as usize];
        let ihl = usize::from(orig[0] & 0x0f) * 4;
        let proto = orig[9];
        let src = [orig[12], orig[13], orig[14], orig[15]];
        let frag = be16(orig, 6) & 0x1fff;
        let src_ip = std::net::Ipv4Addr::from(src);
        let is_error =
            proto == PROTO_ICMP && orig.len() > ihl && matches!(orig[ihl], 3 | 4 | 5 | 11 | 12);
        if m.local
            || m.l2_group
            || is_error
            || frag != 0
            || src_ip.is_broadcast()
            || src_ip.is_multicast()
        {
            cx.drop(i, Error::Suppressed.index());
            continue;
        }
        if off < HDRS {
            cx.drop(i, Error::NoHeadroom.index());
            continue;
        }
        let to_lan = fib.in_lan_ipv4(u32::from(src_ip));
        let from = match fib.lan_ipv4 {
            _ if !to_lan => B4_IPV4,
            Some((lan_ip, _)) => lan_ip.octets(),
            None => {
                cx.drop(i, Error::NoSource.index());
                continue;
            }
        };
        if !cx.icmp_limit.allow(cx.now_ns) {
            cx.drop(i, Error::RateLimited.index());
            continue;
        }
        let (chunk, off) = cx.chunk(i);
        let quote = (m.len as usize - ETH_LEN).min(MAX_ERROR_LEN - HDRS);
        let start = off - HDRS;
        let total = HDRS + quote;
        let frame = &mut chunk[start..start + ETH_LEN + total];
        let (t, code, mtu) = m.icmp;
        {
            let ip = &mut frame[ETH_LEN..ETH_LEN + 20];
            ip.copy_from_slice(&[
                0x45, 0xc0, 0, 0, 0, 0, 0, 0, 64, PROTO_ICMP, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ]);
            put16(ip, 2, total as u16);
            ip[12..16].copy_from_slice(&from);
            ip[16..20].copy_from_slice(&src);
            let c = checksum(ip);
            put16(ip, 10, c);
        }
        {
            let icmp = &mut frame[ETH_LEN + 20..];
            icmp[0] = t;
            icmp[1] = code;
            icmp[2..8].fill(0);
            // RFC 1191: the next-hop MTU lives in the low half of the second word.
            put16(icmp, 6, mtu);
            let c = checksum(icmp);
            put16(icmp, 2, c);
        }
        let mm = &mut cx.meta[usize::from(i)];
        mm.addr -= HDRS as u64;
        mm.len = (ETH_LEN + total) as u32;
        mm.local = true;
        cx.count(Error::Sent.index());
        if to_lan {
            let mac = fib.arp.get(&src_ip).copied();
            let lan_mac = fib.lan.mac;
            write_eth(cx.data(i), &mac.unwrap_or([0; 6]), &lan_mac, ETHERTYPE_IPV4);
            match mac {
                Some(_) => cx.to_output(i, Port::Lan),
                None => cx.punt(i, Port::Lan, PuntReason::NeighborMiss, IpAddr::V4(src_ip)),
            }
        } else {
            // Back through the tunnel to the internet host.
            cx.next(i, NodeId::DsliteEncap);
        }
    }
}
