//! dslite-decap: IPv4-in-IPv6 from the AFTR to our B4 address. Validates the
//! inner IPv4 strictly and strips the outer header; ip4-firewall decides
//! whether it may reach the LAN host, ip4-rewrite sends it there.

use std::net::Ipv4Addr;

use etherparse::Ipv4HeaderSlice;

use crate::csum::complete_ipv4;
use crate::graph::{Cx, NodeId};
use crate::tables::Port;
use crate::wire::{be16, checksum_adjust, ipv4_header_ok, put16, ETH_LEN, IPV6_LEN};

crate::node_errors! {
    pub enum Error {
        UnknownAftr => ("unknown-aftr", "IPv4-in-IPv6 from a source other than the configured AFTR"),
        InnerTruncated => ("inner-truncated", "inner IPv4 shorter than its header or total length"),
        InnerBadHeader => ("inner-bad-header", "inner IPv4 version or header length invalid"),
        InnerBadChecksum => ("inner-bad-checksum", "inner IPv4 header checksum wrong"),
        InnerLengthMismatch => ("inner-length-mismatch", "inner total length differs from the IPv6 payload length"),
        InnerNotLan => ("inner-dst-not-lan", "inner destination outside the LAN subnet"),
        InnerToRouter => ("inner-to-router", "inner destination is the router or the LAN broadcast"),
        InnerBadSource => ("inner-bad-source", "inner source multicast, broadcast, or in the LAN subnet"),
        NoLanAddress => ("no-lan-ipv4", "no LAN IPv4 configured"),
        EcnCeNotEct => ("ecn-ce-not-ect", "outer header ECN CE over a Not-ECT inner packet (RFC 6040 4.2)"),
        CeMismatch => ("map-e-ce-mismatch", "MAP-E: IPv4-in-IPv6 from a peer CE whose address is not the one the rule gives the inner source address and port (RFC 7597 8.1)"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let fib = cx.fib;
    for &i in pkts {
        let (Some(tun), Some((lan_ip, _))) = (fib.tunnel, fib.lan_ipv4) else {
            cx.drop(i, Error::NoLanAddress.index());
            continue;
        };
        let len = cx.meta[usize::from(i)].len as usize;
        let data = cx.data(i);
        let outer = &data[ETH_LEN..ETH_LEN + IPV6_LEN];
        // MAP-E with a Forwarding Mapping Rule: peer CEs may send directly;
        // their source is checked against the inner packet below.
        let from_br = outer[8..24] == tun.aftr.octets();
        if !from_br && fib.map_fmr.is_none() {
            cx.drop(i, Error::UnknownAftr.index());
            continue;
        }
        let outer_src: [u8; 16] = outer[8..24].try_into().unwrap_or_default();
        let inner = &data[ETH_LEN + IPV6_LEN..len];
        let hdr = match Ipv4HeaderSlice::from_slice(inner) {
            Ok(h) => h,
            Err(etherparse::err::ipv4::HeaderSliceError::Len(_)) => {
                cx.drop(i, Error::InnerTruncated.index());
                continue;
            }
            Err(_) => {
                cx.drop(i, Error::InnerBadHeader.index());
                continue;
            }
        };
        if usize::from(hdr.total_len()) != inner.len() {
            cx.drop(i, Error::InnerLengthMismatch.index());
            continue;
        }
        if !ipv4_header_ok(hdr.slice()) {
            cx.drop(i, Error::InnerBadChecksum.index());
            continue;
        }
        let src = hdr.source_addr();
        let dst = hdr.destination_addr();
        let ihl = hdr.slice().len();
        // MAP-E: the shared address is ours; nat44-in finds the LAN host,
        // so only the source checks apply.
        let napt = fib.napt.as_ref().is_some_and(|n| n.external() == dst);
        let bad_source =
            src.is_multicast() || src.is_broadcast() || fib.in_lan_ipv4(u32::from(src));
        if !napt && (dst == lan_ip || bcast(fib, dst)) {
            cx.drop(i, Error::InnerToRouter.index());
            continue;
        }
        if !napt && !fib.in_lan_ipv4(u32::from(dst)) {
            cx.drop(i, Error::InnerNotLan.index());
            continue;
        }
        if bad_source {
            cx.drop(i, Error::InnerBadSource.index());
            continue;
        }
        if !from_br {
            let ok = fib.map_fmr.as_ref().is_some_and(|f| {
                f.owner_of(src, inner_source_port(inner, ihl)) == Some(outer_src.into())
            });
            if !ok {
                cx.drop(i, Error::CeMismatch.index());
                continue;
            }
        }
        // RFC 6040 4.2: a congestion mark the IPv6 path set must reach the
        // receiver. Only outer ECT(1) and CE change anything.
        let outer_ecn = (data[ETH_LEN + 1] >> 4) & 3;
        if outer_ecn & 1 != 0 && !ecn_decap(&mut data[ETH_LEN + IPV6_LEN..], outer_ecn) {
            cx.drop(i, Error::EcnCeNotEct.index());
            continue;
        }

        // A kernel AFTR encapsulates a CHECKSUM_PARTIAL skb as it is: the
        // inner TCP/UDP checksum may still be partial (csum.rs).
        if let Some(ip) = cx.data(i).get_mut(ETH_LEN + IPV6_LEN..len) {
            if complete_ipv4(ip, ihl) {
                cx.csum_completed(Port::Wan);
            }
        }

        // Strip the outer headers: the inner packet stays where it is; the
        // 14 bytes before it become its Ethernet header in ip4-rewrite,
        // once ip4-firewall has admitted it.
        let m = &mut cx.meta[usize::from(i)];
        m.addr += IPV6_LEN as u64;
        m.len -= IPV6_LEN as u32;
        let inner = m.len - ETH_LEN as u32;
        cx.done(inner);
        cx.next(
            i,
            if napt {
                NodeId::Nat44In
            } else {
                NodeId::Ip4Firewall
            },
        );
    }
}

/// The port RFC 7597 8.1 checks a peer CE's packet by: the TCP or UDP
/// source port, an echo's identifier; `None` (no CE owns it) otherwise or
/// when the header is cut short or a later fragment.
fn inner_source_port(ip: &[u8], ihl: usize) -> Option<u16> {
    if be16(ip, 6) & 0x1fff != 0 {
        return None;
    }
    let l4 = ip.get(ihl..)?;
    match ip[9] {
        crate::wire::PROTO_TCP | crate::wire::PROTO_UDP if l4.len() >= 2 => Some(be16(l4, 0)),
        crate::wire::PROTO_ICMP if l4.len() >= 6 && matches!(l4[0], 0 | 8) => Some(be16(l4, 4)),
        _ => None,
    }
}

/// The inner ECN field from the outer one (RFC 6040 4.2 table; only
/// ECT(1) and CE outer codepoints get here): CE over any ECT is CE, ECT(1)
/// over ECT(0) is ECT(1), the rest stays. The IPv4 header checksum is
/// updated in place. False when the packet must be dropped: CE over
/// Not-ECT, whose sender would not understand the mark.
#[inline]
fn ecn_decap(inner: &mut [u8], outer_ecn: u8) -> bool {
    let inner_ecn = inner[1] & 3;
    let new = match (outer_ecn, inner_ecn) {
        (3, 0) => return false,
        (3, _) => 3,
        (1, 2) => 1,
        _ => return true,
    };
    if new != inner_ecn {
        let old = be16(inner, 0);
        inner[1] = (inner[1] & !3) | new;
        let sum = checksum_adjust(be16(inner, 10), old, be16(inner, 0));
        put16(inner, 10, sum);
    }
    true
}

fn bcast(fib: &crate::tables::Fib, dst: Ipv4Addr) -> bool {
    dst.is_broadcast()
        || match fib.lan_ipv4 {
            Some((a, len)) if len < 31 => u32::from(dst) == (u32::from(a) | (u32::MAX >> len)),
            _ => false,
        }
}
