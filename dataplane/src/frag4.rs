//! Cutting an IPv4 packet in two (RFC 791 3.2), shared by ip4-rewrite (the
//! LAN MTU) and ip4-fragment (MAP-E's tunnel MTU). Each node keeps its own
//! counters: this returns why it refused and the node names the drop.

use crate::graph::Cx;
use crate::wire::{be16, checksum, put16, ETH_LEN};

const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;
const IHL: usize = 20;

/// Why a packet was not split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not 20-byte header: options would have to be sorted by their copy
    /// flag, which traffic we carry never needs.
    Options,
    /// Does not fit in two pieces at `mtu` (or is malformed).
    TooBig,
    /// No spare frame for the second piece.
    NoFrame,
}

/// Splits packet `i` (Ethernet + IPv4, DF clear) for `mtu`: `i` keeps the
/// header and the first multiple of 8 data bytes that fits, a spare frame
/// gets the same Ethernet and IPv4 headers and the rest. A packet that was
/// itself a fragment keeps its offset base, and its MF flag on the last
/// piece. `Ok(None)`: it fits as it is. `spare_drop`: the counter a spare
/// frame that cannot be paired is dropped with (none: freed uncounted).
pub fn split(
    cx: &mut Cx,
    i: u16,
    mtu: usize,
    spare_drop: Option<usize>,
) -> Result<Option<u16>, Refused> {
    let m = cx.meta[usize::from(i)];
    let total = (m.len as usize).saturating_sub(ETH_LEN);
    if total <= mtu {
        return Ok(None);
    }
    let (chunk, off) = cx.chunk(i);
    let Some(ip) = chunk.get(off + ETH_LEN..off + m.len as usize) else {
        return Err(Refused::TooBig);
    };
    if ip.len() < IHL {
        return Err(Refused::TooBig);
    }
    if usize::from(ip[0] & 0x0f) * 4 != IHL {
        return Err(Refused::Options);
    }
    let field = be16(ip, 6);
    let offset = usize::from(field & OFFSET_MASK) * 8;
    let first = mtu.saturating_sub(IHL) & !7;
    let rest = total.saturating_sub(IHL + first);
    if first == 0 || IHL + rest > mtu || (offset + first) / 8 > usize::from(OFFSET_MASK) {
        return Err(Refused::TooBig);
    }
    let hdrs = ETH_LEN + IHL;
    let j = cx
        .new_packet((hdrs + rest) as u32, m.rx)
        .ok_or(Refused::NoFrame)?;
    let Some((a, aoff, b, boff)) = cx.two_chunks(i, j) else {
        match spare_drop {
            Some(reason) => cx.drop(j, reason),
            None => cx.consume(j),
        }
        return Err(Refused::NoFrame);
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
    cx.meta[usize::from(j)].local = m.local;
    Ok(Some(j))
}

/// Total length and flags/offset of a 20-byte header (DF is clear: the
/// packet would not be split otherwise), with a new checksum.
fn set_header(h: &mut [u8], total: usize, frag: u16) {
    put16(h, 2, total as u16);
    put16(h, 6, frag);
    put16(h, 10, 0);
    let c = checksum(h);
    put16(h, 10, c);
}
