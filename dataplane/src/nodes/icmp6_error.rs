//! ip6-icmp-error: turns a forwarded packet in place into an ICMPv6 error
//! (time exceeded, packet too big, source address failed policy) sent back out of the port it came in on,
//! from the router's global address on that side (RFC 4443).

use std::net::{IpAddr, Ipv6Addr};

use crate::flow::ipv6_l4;
use crate::graph::{Cx, PuntReason};
use crate::tables::Port;
use crate::wire::{
    fold, ipv6_pseudo_sum, put16, sum16, write_eth, ETHERTYPE_IPV6, ETH_LEN, IPV6_LEN, PROTO_ICMPV6,
};

/// RFC 4443 2.4(c): the error must not exceed the minimum IPv6 MTU.
const MIN_MTU: usize = 1280;
const HDRS: usize = IPV6_LEN + 8;

crate::node_errors! {
    pub enum Error {
        Suppressed => ("suppressed", "no error about an error, a later fragment, to/from multicast or unspecified, or a link-layer broadcast"),
        RateLimited => ("rate-limited", "ICMPv6 error rate limit"),
        NoSource => ("no-source", "no global address on that side to send from"),
        NoHeadroom => ("no-headroom", "no room in front of the frame"),
        NoGateway => ("no-gateway", "no WAN default router"),
        Sent => ("sent", "errors sent (not a drop)"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let fib = cx.fib;
    for &i in pkts {
        let m = cx.meta[usize::from(i)];
        let (chunk, off) = cx.chunk(i);
        let orig = &chunk[off + ETH_LEN..off + m.len as usize];
        let mut s = [0u8; 16];
        s.copy_from_slice(&orig[8..24]);
        let src = Ipv6Addr::from(s);
        // The offending frame's sender, read before the error overwrites
        // its Ethernet header: on the LAN it is the host itself.
        let mut sender_mac = [0u8; 6];
        sender_mac.copy_from_slice(&chunk[off + 6..off + 12]);
        // RFC 4443 2.4(e): never about an error (behind any extension
        // headers), a fragment other than the first, to or from multicast,
        // or received as a link-layer broadcast or multicast.
        let unanswerable = match ipv6_l4(orig) {
            Ok(l4) => {
                l4.frag.map(|f| !f.is_first()).unwrap_or(false)
                    || (l4.proto == PROTO_ICMPV6 && orig.get(l4.off).is_some_and(|&t| t < 128))
            }
            Err(_) => true,
        };
        if m.local
            || m.l2_group
            || unanswerable
            || s[0] == 0xff
            || orig[24] == 0xff
            || src.is_unspecified()
        {
            cx.drop(i, Error::Suppressed.index());
            continue;
        }
        let back = m.rx;
        let Some(our) = fib.port(back).ipv6 else {
            cx.drop(i, Error::NoSource.index());
            continue;
        };
        if off < HDRS {
            cx.drop(i, Error::NoHeadroom.index());
            continue;
        }
        if !cx.icmp_limit.allow(cx.now_ns) {
            cx.drop(i, Error::RateLimited.index());
            continue;
        }
        let (chunk, off) = cx.chunk(i);
        let quote = (m.len as usize - ETH_LEN).min(MIN_MTU - HDRS);
        let start = off - HDRS;
        let plen = 8 + quote;
        let frame = &mut chunk[start..start + ETH_LEN + HDRS + quote];
        let (t, code, mtu) = m.icmp;
        {
            let ip = &mut frame[ETH_LEN..ETH_LEN + IPV6_LEN];
            ip[0..4].copy_from_slice(&(6u32 << 28).to_be_bytes());
            put16(ip, 4, plen as u16);
            ip[6] = PROTO_ICMPV6;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&our.octets());
            ip[24..40].copy_from_slice(&s);
        }
        {
            let icmp = &mut frame[ETH_LEN + IPV6_LEN..];
            icmp[0] = t;
            icmp[1] = code;
            icmp[2..4].fill(0);
            icmp[4..8].copy_from_slice(&u32::from(mtu).to_be_bytes());
            let pseudo = ipv6_pseudo_sum(&our.octets(), &s, plen as u32, PROTO_ICMPV6);
            let c = !fold(sum16(icmp, pseudo));
            put16(icmp, 2, c);
        }
        let mm = &mut cx.meta[usize::from(i)];
        mm.addr -= HDRS as u64;
        mm.len = (ETH_LEN + HDRS + quote) as u32;
        mm.local = true;
        cx.count(Error::Sent.index());

        let (mac, next_hop) = match back {
            Port::Wan => match fib.gateway {
                Some(gw) => (fib.gateway_mac, gw),
                None => {
                    cx.drop(i, Error::NoGateway.index());
                    continue;
                }
            },
            // A source the neighbor table does not know (e.g. an address
            // of a prefix being renumbered away) is answered at the MAC it
            // sent from.
            Port::Lan => (
                Some(fib.nd_lan.get(&src).copied().unwrap_or(sender_mac)),
                src,
            ),
        };
        let our_mac = fib.port(back).mac;
        write_eth(cx.data(i), &mac.unwrap_or([0; 6]), &our_mac, ETHERTYPE_IPV6);
        match mac {
            Some(_) => cx.to_output(i, back),
            None => cx.punt(i, back, PuntReason::NeighborMiss, IpAddr::V6(next_hop)),
        }
    }
}
