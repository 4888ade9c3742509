//! The extension headers an AFTR may put in front of the IPv4 packet it
//! tunnels to the B4: a Hop-by-Hop Options header and Destination Options
//! headers. Linux `ip6tnl` sends RFC 2473's Tunnel Encapsulation Limit
//! option (type 4, in a Destination Options header, with PadN) on every
//! packet unless it is configured `encaplimit none`.
//!
//! Options are processed as RFC 8200 4.2 says: Pad1 and PadN are padding,
//! any other type we do not act on is skipped when its two high bits are
//! 00 and makes us discard the packet otherwise. The encapsulation limit
//! (type 4, high bits 00) is skipped that way: it limits re-encapsulation
//! of the inner packet, and an IPv4 inner packet is never re-encapsulated
//! here. No ICMPv6 Parameter Problem is sent for the discarded ones: the
//! only sender we accept these from is the AFTR, and the drop is counted.
//!
//! Pure functions over bytes (and one that applies `strip` to a packet of
//! the graph); every read is bounds-checked and the walk is bounded, so
//! hostile lengths give an error, never a panic.

use crate::flow::{EXT_DEST_OPTS, EXT_HOP_BY_HOP, MAX_EXT_HEADERS};
use crate::graph::Cx;
use crate::wire::{ETH_LEN, IPV6_LEN};

/// Why an options walk failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptError {
    /// A header or an option runs past its end, a Hop-by-Hop header that
    /// is not the first, or more headers than we walk.
    Malformed,
    /// An option whose type says "discard if not recognized".
    Unknown,
}

/// Where the walk stopped: the first header that is not HBH or
/// Destination Options, and its offset from the start of the IPv6 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload {
    pub next: u8,
    pub off: usize,
}

/// Walk the Hop-by-Hop (only where `hbh_first`, and only as the first
/// header, RFC 8200 4.1) and Destination Options headers of `ip` (the
/// fixed header first, cut at its Payload Length), checking their options.
pub fn walk(ip: &[u8], hbh_first: bool) -> Result<Payload, OptError> {
    if ip.len() < 40 {
        return Err(OptError::Malformed);
    }
    let mut next = ip[6];
    let mut off = 40usize;
    for n in 0..=MAX_EXT_HEADERS {
        match next {
            EXT_HOP_BY_HOP | EXT_DEST_OPTS => {
                if next == EXT_HOP_BY_HOP && (n != 0 || !hbh_first) {
                    return Err(OptError::Malformed);
                }
                let hdr = ip.get(off..off + 2).ok_or(OptError::Malformed)?;
                let len = (usize::from(hdr[1]) + 1) * 8;
                let h = ip.get(off..off + len).ok_or(OptError::Malformed)?;
                options(&h[2..])?;
                next = h[0];
                off += len;
            }
            _ => return Ok(Payload { next, off }),
        }
    }
    Err(OptError::Malformed)
}

/// Check the TLV-encoded options of one header (after its first 2 bytes).
fn options(mut o: &[u8]) -> Result<(), OptError> {
    while let Some(&t) = o.first() {
        if t == 0 {
            // Pad1: one byte, no length.
            o = &o[1..];
            continue;
        }
        let len = usize::from(*o.get(1).ok_or(OptError::Malformed)?);
        if o.len() < 2 + len {
            return Err(OptError::Malformed);
        }
        // PadN (1) and everything whose high bits say "skip" (00),
        // the Tunnel Encapsulation Limit (4) among them.
        if t != 1 && t >> 6 != 0 {
            return Err(OptError::Unknown);
        }
        o = &o[2 + len..];
    }
    Ok(())
}

/// Remove `ext` bytes of extension headers that follow the fixed IPv6
/// header of `frame` (Ethernet first): the Ethernet and IPv6 headers move
/// `ext` bytes forward, Next Header becomes `next` and Payload Length
/// shrinks by `ext`. The caller moves the frame start `ext` bytes forward.
/// False (nothing changed) if the frame is too short for that.
pub fn strip(frame: &mut [u8], eth: usize, ext: usize, next: u8) -> bool {
    let hdrs = eth + 40;
    if frame.len() < hdrs + ext {
        return false;
    }
    let plen = usize::from(u16::from_be_bytes([frame[eth + 4], frame[eth + 5]]));
    let Some(plen) = plen.checked_sub(ext) else {
        return false;
    };
    frame.copy_within(0..hdrs, ext);
    let ip = &mut frame[ext + eth..];
    ip[4..6].copy_from_slice(&(plen as u16).to_be_bytes());
    ip[6] = next;
    true
}

/// [`strip`] the headers [`walk`] went over from packet `i` of the graph
/// (Ethernet first), leaving the fixed header followed by `p.next`, and
/// move the packet's start accordingly.
pub fn strip_packet(cx: &mut Cx, i: u16, p: Payload) -> bool {
    let Some(ext) = p.off.checked_sub(IPV6_LEN) else {
        return false;
    };
    if !strip(cx.data(i), ETH_LEN, ext, p.next) {
        return false;
    }
    let m = &mut cx.meta[usize::from(i)];
    m.addr += ext as u64;
    m.len -= ext as u32;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed header with next header `nh` and `payload` after it.
    fn ip(nh: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        p.extend_from_slice(&[nh, 64]);
        p.extend_from_slice(&[0x20; 32]);
        p.extend_from_slice(payload);
        p
    }

    /// What Linux ip6tnl sends: Destination Options with the Tunnel
    /// Encapsulation Limit (type 4, length 1, value 4) and a PadN of 1.
    const ENCAP_LIMIT: [u8; 8] = [4, 0, 4, 1, 4, 1, 1, 0];

    #[test]
    fn encap_limit_and_padding_are_skipped() {
        let mut pl = ENCAP_LIMIT.to_vec();
        pl.extend_from_slice(&[0x45; 20]);
        assert_eq!(walk(&ip(60, &pl), true), Ok(Payload { next: 4, off: 48 }));
        // Hop-by-Hop with Pad1s, then the same.
        let mut pl = vec![60, 0, 0, 0, 0, 0, 0, 0];
        pl.extend_from_slice(&ENCAP_LIMIT);
        pl.extend_from_slice(&[0x45; 20]);
        assert_eq!(walk(&ip(0, &pl), true), Ok(Payload { next: 4, off: 56 }));
        // Nothing to walk.
        assert_eq!(
            walk(&ip(4, &[0x45; 20]), true),
            Ok(Payload { next: 4, off: 40 })
        );
    }

    #[test]
    fn unknown_options_follow_their_high_bits() {
        for (t, want) in [
            (0x1e, Ok(Payload { next: 4, off: 48 })),
            (0x5e, Err(OptError::Unknown)),
            (0x9e, Err(OptError::Unknown)),
            (0xde, Err(OptError::Unknown)),
        ] {
            let pl = [4, 0, t, 4, 0, 0, 0, 0];
            assert_eq!(walk(&ip(60, &pl), true), want, "type {t:#x}");
        }
    }

    #[test]
    fn hop_by_hop_only_first() {
        let pl = [0, 0, 1, 4, 0, 0, 0, 0, 4, 0, 1, 4, 0, 0, 0, 0];
        assert_eq!(walk(&ip(60, &pl), true), Err(OptError::Malformed));
        assert_eq!(walk(&ip(0, &pl[8..]), false), Err(OptError::Malformed));
    }

    #[test]
    fn hostile_lengths_are_malformed() {
        // Header length past the packet, option length past the header,
        // option type without its length byte, a chain that never ends.
        assert_eq!(
            walk(&ip(60, &[4, 1, 1, 0, 0, 0, 0, 0]), true),
            Err(OptError::Malformed)
        );
        assert_eq!(
            walk(&ip(60, &[4, 0, 1, 5, 0, 0, 0, 0]), true),
            Err(OptError::Malformed)
        );
        assert_eq!(
            walk(&ip(60, &[4, 0, 1, 3, 0, 0, 0, 1]), true),
            Err(OptError::Malformed)
        );
        assert_eq!(walk(&ip(60, &[4]), true), Err(OptError::Malformed));
        let chain: Vec<u8> = (0..16).flat_map(|_| [60, 0, 1, 4, 0, 0, 0, 0]).collect();
        assert_eq!(walk(&ip(60, &chain), true), Err(OptError::Malformed));
        // Every truncation of a valid chain, every byte value in every
        // position: an answer, never a panic.
        let mut pl = vec![60, 0, 0, 0, 0, 0, 0, 0];
        pl.extend_from_slice(&ENCAP_LIMIT);
        let full = ip(0, &pl);
        for cut in 0..full.len() {
            let _ = walk(&full[..cut], true);
        }
        for at in 40..full.len() {
            for v in 0..=255u8 {
                let mut p = full.clone();
                p[at] = v;
                let _ = walk(&p, true);
            }
        }
    }

    #[test]
    fn strip_moves_the_headers_forward() {
        let mut pl = ENCAP_LIMIT.to_vec();
        pl.extend_from_slice(&[0x45; 20]);
        let mut frame = vec![0xee; 14];
        frame.extend_from_slice(&ip(60, &pl));
        let before = frame.clone();
        assert!(strip(&mut frame, 14, 8, 4));
        let after = &frame[8..];
        assert_eq!(&after[..14], &before[..14], "Ethernet header moved");
        assert_eq!(
            &after[14 + 8..14 + 40],
            &before[14 + 8..14 + 40],
            "addresses moved"
        );
        assert_eq!(u16::from_be_bytes([after[18], after[19]]), 20);
        assert_eq!(after[20], 4);
        assert_eq!(&after[54..], &[0x45; 20]);
        assert!(!strip(&mut frame[..60], 14, 8, 4), "too short");
    }
}
