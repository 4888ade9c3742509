//! Completing the partial TCP/UDP checksums of kernel peers with transmit
//! checksum offload on (veth, containers, tap-backed VMs).
//!
//! Such a sender leaves the checksum to "the hardware": the skb is
//! CHECKSUM_PARTIAL and the TCP/UDP checksum field holds only the folded
//! pseudo-header sum (`~csum_tcpudp_magic(.., 0)`, `~csum_ipv6_magic(.., 0)`).
//! Nothing completes it on the way to us: the kernel does that only when the
//! frame leaves through a device without the offload (`skb_checksum_help`
//! in `validate_xmit_skb`). AF_XDP hands over the bytes without the
//! checksum status, so it is read from the packet: a field equal to the
//! folded pseudo-header sum is taken as partial and completed as
//! `skb_checksum_help` does, by summing the L4 segment (the field, holding
//! the pseudo sum, stands in for the pseudo-header) and storing the
//! complement, 0 written as 0xffff.
//!
//! Why a correct packet whose field happens to equal the pseudo sum comes
//! out unchanged. In ones' complement arithmetic let P be the pseudo-header
//! sum, D the sum of the segment without its checksum field and C the
//! field. Correct means P + D + C = 0xffff (negative zero), so C = ~(P + D).
//! Completion writes ~(D + C); with C = P that is ~(D + P) = C. The only
//! ambiguity is zero's two forms: when P + D = 0xffff a correct field is
//! 0x0000 or 0xffff. P is never zero (it includes the protocol number), so
//! a matching C is 0xffff, and completion's ~0xffff = 0 is written as
//! 0xffff: C again. A *damaged* segment whose field happens to equal P
//! (about 1 in 65535 of damaged ones) comes out with a valid checksum; the
//! kernel could not tell either, and link damage fails the Ethernet FCS
//! before it gets here.
//!
//! Only whole segments are completed: IPv4 that is not a fragment, IPv6
//! whose next header is TCP or UDP itself (a partial checksum behind
//! extension headers would need the routing header's final destination in
//! its pseudo-header; Linux sockets practically never send that). An IPv4
//! UDP field of 0 means "no checksum" and is never touched (P is never 0,
//! so it could not match anyway).
//!
//! Cost for ordinary frames: the pseudo-header sum (summed as 32-bit
//! words) and one compare; the segment is summed only on a match.

use crate::wire::{be16, put16, PROTO_TCP, PROTO_UDP};

/// The checksum field's offset in the L4 header, if `proto` is TCP or UDP
/// and the segment holds at least the whole header.
#[inline]
fn field_at(proto: u8, l4_len: usize) -> Option<usize> {
    match proto {
        PROTO_TCP if l4_len >= 20 => Some(16),
        PROTO_UDP if l4_len >= 8 => Some(6),
        _ => None,
    }
}

/// Ones' complement sum of `b` taken as big-endian 32-bit words (the
/// remainder as 16-bit words, an odd last byte padded with zero), not
/// folded. 2^16 = 1 modulo 0xffff, so this folds to the same value as the
/// sum of 16-bit words, in half the additions.
#[inline]
fn sum32(b: &[u8]) -> u64 {
    let mut words = b.chunks_exact(4);
    let mut sum: u64 = 0;
    for w in &mut words {
        sum += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        sum += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds a sum to 16 bits with end-around carries: 0 only for 0, else
/// 1..=0xffff (the form Linux's `csum_fold` leaves before complementing).
#[inline]
fn fold64(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Completes the field at `at` of `l4` (the whole segment).
#[cold]
#[inline(never)]
fn complete(l4: &mut [u8], at: usize) {
    let c = !fold64(sum32(l4));
    put16(l4, at, if c == 0 { 0xffff } else { c });
}

/// `ip`: one IPv4 packet, exactly its total length, whose header (`ihl`
/// bytes) is valid. Completes a partial TCP/UDP checksum; whether it did.
#[inline]
pub fn complete_ipv4(ip: &mut [u8], ihl: usize) -> bool {
    if ihl < 20 || ip.len() < ihl {
        return false;
    }
    let proto = ip[9];
    let Some(at) = field_at(proto, ip.len() - ihl) else {
        return false;
    };
    // More fragments, or an offset: not the whole segment.
    if be16(ip, 6) & 0x3fff != 0 {
        return false;
    }
    let field = be16(ip, ihl + at);
    if field == 0 && proto == PROTO_UDP {
        return false;
    }
    let pseudo = sum32(&ip[12..20]) + u64::from(proto) + (ip.len() - ihl) as u64;
    if field != fold64(pseudo) {
        return false;
    }
    complete(&mut ip[ihl..], at);
    true
}

/// `ip`: one IPv6 packet, exactly 40 bytes plus its payload length.
/// Completes a partial TCP/UDP checksum right behind the fixed header;
/// whether it did.
#[inline]
pub fn complete_ipv6(ip: &mut [u8]) -> bool {
    if ip.len() < 40 {
        return false;
    }
    let next = ip[6];
    let Some(at) = field_at(next, ip.len() - 40) else {
        return false;
    };
    let pseudo = sum32(&ip[8..40]) + u64::from(next) + (ip.len() - 40) as u64;
    if be16(ip, 40 + at) != fold64(pseudo) {
        return false;
    }
    complete(&mut ip[40..], at);
    true
}

#[cfg(test)]
mod tests;
