//! ip4-fragment: MAP-E only. A translated IPv4 packet without DF that is
//! larger than the tunnel's inner MTU is cut into IPv4 fragments (RFC 791
//! 3.2) before dslite-encap, so that no outer IPv6 packet is fragmented:
//! MAP-E BRs need not reassemble IPv6 fragments (RFC 7597 8.3.1 lets the CE
//! fragment the IPv4 packet instead). DS-Lite keeps outer fragmentation
//! (ip6-fragment). Two pieces always suffice: the inner MTU is at least
//! 1240 bytes and a packet at most 1778. The first piece stays in its
//! frame; the second is built in a spare frame, like ip6-fragment's.

use crate::graph::{Cx, NodeId};
use crate::wire::{be16, checksum, put16, ETH_LEN};

crate::node_errors! {
    pub enum Error {
        TooBig => ("too-big", "does not fit in two fragments at the tunnel MTU"),
        NoFrames => ("no-frames", "no spare frame for the second fragment"),
        Options => ("options", "IPv4 options: sent whole, the outer packet fragmented (not a drop)"),
        Fragmented => ("fragmented", "packets sent as two IPv4 fragments (not a drop)"),
    }
}

const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;
const IHL: usize = 20;

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let Some(tun) = cx.fib.tunnel else {
        // dslite-encap names the missing tunnel.
        for &i in pkts {
            cx.next(i, NodeId::DsliteEncap);
        }
        return;
    };
    let mtu = usize::from(tun.mtu);
    for &i in pkts {
        match split(cx, i, mtu) {
            Ok(Some(j)) => {
                cx.count(Error::Fragmented.index());
                cx.next(i, NodeId::DsliteEncap);
                cx.next(j, NodeId::DsliteEncap);
            }
            Ok(None) => cx.next(i, NodeId::DsliteEncap),
            Err(Error::Options) => {
                // Sorting options by their copy flag is not worth it for
                // traffic that never carries them: the old way instead.
                cx.count(Error::Options.index());
                cx.next(i, NodeId::DsliteEncap);
            }
            Err(e) => cx.drop(i, e.index()),
        }
    }
}

/// Splits packet `i` (Ethernet + IPv4) for `mtu`: `i` keeps the header and
/// the first multiple of 8 data bytes that fits, a spare frame gets the
/// same headers and the rest. A packet that was itself a fragment keeps
/// its offset base, and its MF flag on the last piece. `None`: it fits.
fn split(cx: &mut Cx, i: u16, mtu: usize) -> Result<Option<u16>, Error> {
    let m = cx.meta[usize::from(i)];
    let total = (m.len as usize).saturating_sub(ETH_LEN);
    if total <= mtu {
        return Ok(None);
    }
    let (chunk, off) = cx.chunk(i);
    let Some(ip) = chunk.get(off + ETH_LEN..off + m.len as usize) else {
        return Err(Error::TooBig);
    };
    if ip.len() < IHL {
        return Err(Error::TooBig);
    }
    if usize::from(ip[0] & 0x0f) * 4 != IHL {
        return Err(Error::Options);
    }
    let field = be16(ip, 6);
    let offset = usize::from(field & OFFSET_MASK) * 8;
    let first = mtu.saturating_sub(IHL) & !7;
    let rest = total.saturating_sub(IHL + first);
    if first == 0 || IHL + rest > mtu || (offset + first) / 8 > usize::from(OFFSET_MASK) {
        return Err(Error::TooBig);
    }
    let hdrs = ETH_LEN + IHL;
    let j = cx
        .new_packet((hdrs + rest) as u32, m.rx)
        .ok_or(Error::NoFrames)?;
    let Some((a, aoff, b, boff)) = cx.two_chunks(i, j) else {
        cx.consume(j);
        return Err(Error::NoFrames);
    };
    // Second: same headers, the data after `first`, the original MF.
    b[boff..boff + hdrs].copy_from_slice(&a[aoff..aoff + hdrs]);
    let tail = aoff + hdrs + first;
    b[boff + hdrs..boff + hdrs + rest].copy_from_slice(&a[tail..tail + rest]);
    set_header(
        &mut b[boff + ETH_LEN..boff + hdrs],
        IHL + rest,
        (field & FLAG_MF) | ((offset + first) / 8) as u16,
    );
    // First: more fragments follow.
    set_header(
        &mut a[aoff + ETH_LEN..aoff + hdrs],
        IHL + first,
        FLAG_MF | (offset / 8) as u16,
    );
    cx.meta[usize::from(i)].len = (hdrs + first) as u32;
    let mj = &mut cx.meta[usize::from(j)];
    mj.local = m.local;
    Ok(Some(j))
}

/// Total length and flags/offset of a 20-byte header (DF is clear: the
/// packet would not be here otherwise), with a new checksum.
fn set_header(h: &mut [u8], total: usize, frag: u16) {
    put16(h, 2, total as u16);
    put16(h, 6, frag);
    put16(h, 10, 0);
    let c = checksum(h);
    put16(h, 10, c);
}
