//! dslite-encap: IPv4 from the LAN into IPv6 toward the AFTR (RFC 6333 B4,
//! RFC 2473): TTL decrement, then a 40-byte IPv6 header with next header 4,
//! the WAN's hop limit (the RA's Cur Hop Limit, else 64), traffic class
//! copied from the TOS, no encapsulation limit.

use std::net::IpAddr;

use crate::graph::{Cx, NodeId, PuntReason};
use crate::tables::Port;
use crate::wire::{
    be16, checksum_adjust, put16, write_eth, ETHERTYPE_IPV6, ETH_LEN, IPV6_LEN, PROTO_IPIP,
    PROTO_TCP, PROTO_UDP,
};

/// Hop limit of the outer header until an RA gives one (RFC 2473 6.3
/// suggests the default hop limit, which RFC 4861 6.3.4 lets the RA set).
pub const OUTER_HOP_LIMIT: u8 = 64;

crate::node_errors! {
    pub enum Error {
        NoTunnel => ("no-tunnel", "no B4/AFTR addresses yet"),
        NoGateway => ("no-gateway", "no WAN default router"),
        NoHeadroom => ("no-headroom", "frame has no room for the IPv6 header"),
        TooBig => ("too-big", "does not fit the tunnel MTU with DF set (frag-needed sent)"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let fib = cx.fib;
    let Some(tun) = fib.tunnel else {
        for &i in pkts {
            cx.drop(i, Error::NoTunnel.index());
        }
        return;
    };
    let wan_mac = fib.wan.mac;
    for &i in pkts {
        let m = cx.meta[usize::from(i)];
        let Some(gw) = fib.gateway else {
            cx.drop(i, Error::NoGateway.index());
            continue;
        };
        let inner_len = m.len as usize - ETH_LEN;
        let (chunk, off) = cx.chunk(i);
        if off < IPV6_LEN {
            cx.drop(i, Error::NoHeadroom.index());
            continue;
        }
        let ip = &mut chunk[off + ETH_LEN..off + ETH_LEN + inner_len];
        // Too big for the tunnel: with DF the sender learns the tunnel MTU;
        // without, we encapsulate and fragment the outer packet (RFC 6333
        // 5.3, RFC 2473 7.2) so that the AFTR reassembles it.
        let fragment = inner_len > usize::from(tun.mtu);
        if fragment && ip[6] & 0x40 != 0 && !m.local {
            cx.count(Error::TooBig.index());
            cx.meta[usize::from(i)].icmp = (3, 4, tun.mtu);
            cx.next(i, NodeId::Icmp4Error);
            continue;
        }
        if !m.local {
            // ip4-input made sure TTL > 1.
            let old = be16(ip, 8);
            ip[8] -= 1;
            let check = checksum_adjust(be16(ip, 10), old, be16(ip, 8));
            put16(ip, 10, check);
        }
        let tos = ip[1];
        let flow = flow_label(ip);

        let start = off - IPV6_LEN;
        let frame = &mut chunk[start..off + ETH_LEN + inner_len];
        write_eth(
            frame,
            &fib.gateway_mac.unwrap_or([0; 6]),
            &wan_mac,
            ETHERTYPE_IPV6,
        );
        let h = &mut frame[ETH_LEN..ETH_LEN + IPV6_LEN];
        let word0 = (6u32 << 28) | (u32::from(tos) << 20) | flow;
        h[0..4].copy_from_slice(&word0.to_be_bytes());
        put16(h, 4, inner_len as u16);
        h[6] = PROTO_IPIP;
        h[7] = tun.hop_limit;
        h[8..24].copy_from_slice(&tun.b4.octets());
        h[24..40].copy_from_slice(&tun.aftr.octets());

        let meta = &mut cx.meta[usize::from(i)];
        meta.addr -= IPV6_LEN as u64;
        meta.len += IPV6_LEN as u32;
        meta.tx = Port::Wan;
        cx.done(inner_len as u32);
        if fragment {
            cx.next(i, NodeId::Ip6Fragment);
        } else if fib.gateway_mac.is_some() {
            cx.to_output(i, Port::Wan);
        } else {
            cx.punt(i, Port::Wan, PuntReason::NeighborMiss, IpAddr::V6(gw));
        }
    }
}

/// RFC 6437 flow label from the inner 5-tuple, so the AFTR side can spread
/// softwire traffic over queues even though every packet has the same outer
/// addresses. Never 0 (0 means "no label").
#[inline]
fn flow_label(ip: &[u8]) -> u32 {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let mut h: u32 = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]])
        ^ u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]).rotate_left(13)
        ^ u32::from(ip[9]);
    if (ip[9] == PROTO_TCP || ip[9] == PROTO_UDP) && ip.len() >= ihl + 4 {
        h ^= u32::from_be_bytes([ip[ihl], ip[ihl + 1], ip[ihl + 2], ip[ihl + 3]]).rotate_left(7);
    }
    h = h.wrapping_mul(0x9e37_79b1);
    let l = (h >> 12) & 0xfffff;
    if l == 0 {
        1
    } else {
        l
    }
}
