//! ip6-fragment: an encapsulated packet larger than the tunnel path (an
//! IPv4 packet without DF that did not fit the tunnel MTU) leaves as two
//! outer fragments of at most the tunnel MTU + 40 bytes (RFC 6333 5.3, RFC
//! 2473 7.2; the AFTR reassembles). Two always suffice: the path is at least
//! 1280 bytes (1232 of data per fragment) and an inner packet at most 1778
//! (`ipoe_config::MAX_MTU`). The first fragment stays in its frame, its
//! headers moved 8 bytes into the headroom to make room for the Fragment
//! header; the second is built in a spare frame.

use std::net::IpAddr;

use crate::graph::{Cx, PuntReason};
use crate::reass::{split_for_mtu, write_fragment_header};
use crate::tables::Port;
use crate::wire::{put16, ETH_LEN, IPV6_LEN};

const FRAG_HDR: usize = 8;
const EXT_FRAGMENT: u8 = 44;

crate::node_errors! {
    pub enum Error {
        TooBig => ("too-big", "does not fit in two fragments at the tunnel MTU"),
        NoHeadroom => ("no-headroom", "no room in front of the frame for the Fragment header"),
        NoBuffer => ("no-buffer", "no spare frame for the second fragment"),
        NoGateway => ("no-gateway", "no WAN default router"),
        Fragmented => ("fragmented", "packets sent as two fragments (not a drop)"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let fib = cx.fib;
    // The tunnel's path MTU, not the link's: `dslite.mtu` or a learned
    // PMTU may be below the WAN MTU (issue 15 M5).
    let wan_mtu = usize::from(fib.port(Port::Wan).mtu);
    let mtu = fib
        .tunnel
        .map_or(wan_mtu, |t| wan_mtu.min(usize::from(t.mtu) + IPV6_LEN));
    for &i in pkts {
        let m = cx.meta[usize::from(i)];
        let Some(gw) = fib.gateway else {
            cx.drop(i, Error::NoGateway.index());
            continue;
        };
        let plen = (m.len as usize).saturating_sub(ETH_LEN + IPV6_LEN);
        let Some(first) = split_for_mtu(plen, mtu) else {
            cx.drop(i, Error::TooBig.index());
            continue;
        };
        if cx.chunk(i).1 < FRAG_HDR {
            cx.drop(i, Error::NoHeadroom.index());
            continue;
        }
        let rest = plen - first;
        let hdrs = ETH_LEN + IPV6_LEN;
        let Some(j) = cx.new_packet((hdrs + FRAG_HDR + rest) as u32, m.rx) else {
            cx.drop(i, Error::NoBuffer.index());
            continue;
        };
        let id = cx.next_frag_id();
        let Some((a, off, b, boff)) = cx.two_chunks(i, j) else {
            cx.drop(i, Error::NoBuffer.index());
            continue;
        };
        let next = a[off + ETH_LEN + 6];
        // Second fragment: same Ethernet and IPv6 headers, then ours.
        b[boff..boff + hdrs].copy_from_slice(&a[off..off + hdrs]);
        put16(b, boff + ETH_LEN + 4, (FRAG_HDR + rest) as u16);
        b[boff + ETH_LEN + 6] = EXT_FRAGMENT;
        write_fragment_header(b, boff + hdrs, next, first, false, id);
        let tail = off + hdrs + first;
        b[boff + hdrs + FRAG_HDR..boff + hdrs + FRAG_HDR + rest]
            .copy_from_slice(&a[tail..tail + rest]);
        // First fragment: headers 8 bytes earlier, then ours.
        a.copy_within(off..off + hdrs, off - FRAG_HDR);
        let start = off - FRAG_HDR;
        put16(a, start + ETH_LEN + 4, (FRAG_HDR + first) as u16);
        a[start + ETH_LEN + 6] = EXT_FRAGMENT;
        write_fragment_header(a, start + hdrs, next, 0, true, id);

        let mi = &mut cx.meta[usize::from(i)];
        mi.addr -= FRAG_HDR as u64;
        mi.len = (hdrs + FRAG_HDR + first) as u32;
        let mj = &mut cx.meta[usize::from(j)];
        mj.local = m.local;
        cx.count(Error::Fragmented.index());
        for k in [i, j] {
            if fib.gateway_mac.is_some() {
                cx.to_output(k, Port::Wan);
            } else {
                cx.punt(k, Port::Wan, PuntReason::NeighborMiss, IpAddr::V6(gw));
            }
        }
    }
}
