//! ip4-rewrite: the last step of a decapsulated IPv4 packet toward a LAN
//! host, after ip4-firewall admitted it: TTL (time exceeded if it would
//! reach 0), the LAN MTU (fragmentation needed for DF packets, two
//! fragments otherwise), then the host's MAC from the ARP table (a miss is
//! punted so the control thread resolves it).

use std::net::{IpAddr, Ipv4Addr};

use crate::graph::{Cx, NodeId, PuntReason};
use crate::tables::Port;
use crate::wire::{be16, checksum, checksum_adjust, put16, write_eth, ETHERTYPE_IPV4, ETH_LEN};

crate::node_errors! {
    pub enum Error {
        TtlExpired => ("ttl-expired", "TTL would reach 0 (time exceeded sent for first fragments)"),
        TooBig => ("too-big", "larger than the LAN MTU with DF set (frag-needed sent)"),
        FragOptions => ("frag-options", "larger than the LAN MTU, no DF, IPv4 options (not fragmented)"),
        NoBuffer => ("no-buffer", "no spare frame for the second fragment"),
        Fragmented => ("fragmented", "packets sent as two fragments at the LAN MTU (not a drop)"),
    }
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let fib = cx.fib;
    let lan_mac = fib.lan.mac;
    let lan_mtu = usize::from(fib.lan.mtu);
    for &i in pkts {
        let len = cx.meta[usize::from(i)].len as usize - ETH_LEN;
        let frame = cx.data(i);
        let ip = &mut frame[ETH_LEN..];
        if ip[8] <= 1 {
            // No error about a fragment other than the first (RFC 1812 4.3.2.7).
            if be16(ip, 6) & OFFSET_MASK == 0 {
                cx.count(Error::TtlExpired.index());
                cx.meta[usize::from(i)].icmp = (11, 0, 0);
                cx.next(i, NodeId::Icmp4Error);
            } else {
                cx.drop(i, Error::TtlExpired.index());
            }
            continue;
        }
        // The tunnel MTU and the LAN MTU are independent (issue 15 m3): a
        // DF packet that does not fit gets frag-needed with the LAN MTU
        // (RFC 1191; ip4-icmp-error stays silent about later fragments).
        let too_big = len > lan_mtu;
        if too_big && be16(ip, 6) & FLAG_DF != 0 {
            cx.count(Error::TooBig.index());
            cx.meta[usize::from(i)].icmp = (3, 4, lan_mtu as u16);
            cx.next(i, NodeId::Icmp4Error);
            continue;
        }
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let old = be16(ip, 8);
        ip[8] -= 1;
        let check = checksum_adjust(be16(ip, 10), old, be16(ip, 8));
        put16(ip, 10, check);
        let mac = fib.arp.get(&dst).copied();
        write_eth(frame, &mac.unwrap_or([0; 6]), &lan_mac, ETHERTYPE_IPV4);
        let second = if too_big {
            match fragment(cx, i, lan_mtu) {
                Ok(j) => Some(j),
                Err(e) => {
                    cx.drop(i, e.index());
                    continue;
                }
            }
        } else {
            None
        };
        for k in std::iter::once(i).chain(second) {
            match mac {
                Some(_) => {
                    cx.fw.neigh_use.mark_v4(dst);
                    cx.to_output(k, Port::Lan)
                }
                None => cx.punt(k, Port::Lan, PuntReason::NeighborMiss, IpAddr::V4(dst)),
            }
        }
    }
}

/// Splits IPv4 packet `i` (a whole Ethernet frame, TTL already decremented)
/// in two for `mtu` (RFC 791 3.2): `i` keeps the header and the first
/// multiple of 8 data bytes that fits, a spare frame gets the same Ethernet
/// and IPv4 headers and the rest. Two always suffice: `mtu` is at least
/// 1280 and a received packet at most 1778 bytes. A packet that was itself
/// a fragment keeps its offset and its MF flag on the last piece.
fn fragment(cx: &mut Cx, i: u16, mtu: usize) -> Result<u16, Error> {
    let m = cx.meta[usize::from(i)];
    let total = m.len as usize - ETH_LEN;
    let (chunk, off) = cx.chunk(i);
    let ip = &chunk[off + ETH_LEN..off + m.len as usize];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    // Options would have to be sorted by their copy flag; none of the
    // traffic we carry has them.
    if ihl != 20 {
        return Err(Error::FragOptions);
    }
    let field = be16(ip, 6);
    let offset = usize::from(field & OFFSET_MASK) * 8;
    let first = (mtu - ihl) & !7;
    let rest = total - ihl - first;
    if ihl + rest > mtu || (offset + first) / 8 > usize::from(OFFSET_MASK) {
        return Err(Error::TooBig);
    }
    let hdrs = ETH_LEN + ihl;
    let j = cx
        .new_packet((hdrs + rest) as u32, m.rx)
        .ok_or(Error::NoBuffer)?;
    let Some((a, aoff, b, boff)) = cx.two_chunks(i, j) else {
        cx.drop(j, Error::NoBuffer.index());
        return Err(Error::NoBuffer);
    };
    // Second: same headers, the data after `first`, the original MF.
    b[boff..boff + hdrs].copy_from_slice(&a[aoff..aoff + hdrs]);
    let tail = aoff + hdrs + first;
    b[boff + hdrs..boff + hdrs + rest].copy_from_slice(&a[tail..tail + rest]);
    let more = field & FLAG_MF;
    set_header(
        &mut b[boff + ETH_LEN..boff + hdrs],
        ihl + rest,
        more | ((offset + first) / 8) as u16,
    );
    // First: more fragments follow.
    set_header(
        &mut a[aoff + ETH_LEN..aoff + hdrs],
        ihl + first,
        FLAG_MF | (offset / 8) as u16,
    );
    cx.meta[usize::from(i)].len = (hdrs + first) as u32;
    cx.count(Error::Fragmented.index());
    Ok(j)
}

/// Total length and flags/offset of a 20-byte header, with a new checksum.
fn set_header(h: &mut [u8], total: usize, frag: u16) {
    put16(h, 2, total as u16);
    put16(h, 6, frag);
    put16(h, 10, 0);
    let c = checksum(h);
    put16(h, 10, c);
}
