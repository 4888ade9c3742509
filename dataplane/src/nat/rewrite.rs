//! The packet edits of NAPT44: one address and the port (or echo
//! identifier) beside it, with every checksum they are in updated
//! incrementally (RFC 1624), so a packet that arrived with a wrong checksum
//! leaves with a wrong one and its receiver still drops it.
//!
//! All functions take the IPv4 packet from its header on and check every
//! length they touch: hostile input gives `Err`, never a panic.

use crate::flow::L4;
use crate::wire::{be16, fold, put16, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// Which end of the packet changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Outbound: the LAN host's source becomes the shared address.
    Src,
    /// Inbound: the shared destination becomes the LAN host's.
    Dst,
}

/// Why a packet could not be rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RewriteError {
    /// A header the edit needs is cut short.
    Truncated,
    /// Not an ICMP error this NAPT translates, or what it quotes is not a
    /// TCP, UDP or echo packet.
    NotTranslatable,
}

/// A checksum after the bytes `old` became `new` (same even length, at an
/// even offset of the summed data).
#[inline]
pub fn csum_replace(check: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut sum = u32::from(!check);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        sum += u32::from(!u16::from_be_bytes([o[0], o[1]]));
        sum += u32::from(u16::from_be_bytes([n[0], n[1]]));
    }
    !fold(sum)
}

/// Offset of the address `side` names in an IPv4 header.
#[inline]
fn addr_at(side: Side) -> usize {
    match side {
        Side::Src => 12,
        Side::Dst => 16,
    }
}

/// Sets the `side` address of `ip` to `addr` and, unless `l4` is a later
/// fragment (no upper-layer header), the port on that side (for TCP and
/// UDP) or the echo identifier (ICMP echo) to `port`.
pub fn rewrite(
    ip: &mut [u8],
    l4: &L4,
    side: Side,
    addr: [u8; 4],
    port: u16,
) -> Result<(), RewriteError> {
    let ihl = l4.off;
    if ip.len() < ihl || ihl < 20 {
        return Err(RewriteError::Truncated);
    }
    let at = addr_at(side);
    let old_addr: [u8; 4] = [ip[at], ip[at + 1], ip[at + 2], ip[at + 3]];
    let later_fragment = l4.frag.is_some_and(|f| !f.is_first());
    if !later_fragment {
        let l4b = &mut ip[ihl..];
        match l4.proto {
            PROTO_TCP | PROTO_UDP => {
                let ck_at = if l4.proto == PROTO_TCP { 16 } else { 6 };
                if l4b.len() < ck_at + 2 {
                    return Err(RewriteError::Truncated);
                }
                let port_at = if side == Side::Src { 0 } else { 2 };
                let old_port = be16(l4b, port_at);
                put16(l4b, port_at, port);
                let ck = be16(l4b, ck_at);
                // A zero UDP checksum means "none" (RFC 768): it stays so.
                if !(l4.proto == PROTO_UDP && ck == 0) {
                    // The address is in the pseudo-header the sum covers.
                    let mut c = csum_replace(ck, &old_port.to_be_bytes(), &port.to_be_bytes());
                    c = csum_replace(c, &old_addr, &addr);
                    if l4.proto == PROTO_UDP && c == 0 {
                        c = 0xffff;
                    }
                    put16(l4b, ck_at, c);
                }
            }
            PROTO_ICMP => {
                // Echo: the identifier, under the ICMP checksum only (no
                // pseudo-header in ICMPv4).
                if l4b.len() < 8 {
                    return Err(RewriteError::Truncated);
                }
                let old_id = be16(l4b, 4);
                put16(l4b, 4, port);
                let c = csum_replace(be16(l4b, 2), &old_id.to_be_bytes(), &port.to_be_bytes());
                put16(l4b, 2, c);
            }
            _ => {}
        }
    }
    ip[at..at + 4].copy_from_slice(&addr);
    let c = csum_replace(be16(ip, 10), &old_addr, &addr);
    put16(ip, 10, c);
    Ok(())
}

/// What an ICMP error quotes, as the NAPT needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted {
    /// The quoted packet's protocol (TCP, UDP, ICMP for an echo request).
    pub proto: u8,
    /// Its source: the shared address and the external port (identifier).
    pub src: [u8; 4],
    pub src_port: u16,
    /// Its destination (the remote end of the flow), port 0 for echo.
    pub dst: [u8; 4],
    pub dst_port: u16,
}

/// Offsets in an ICMP error: the ICMP header, the quoted IPv4 header and
/// its upper layer.
struct ErrorLayout {
    icmp: usize,
    qip: usize,
    ql4: usize,
}

fn error_layout(ip: &[u8]) -> Result<ErrorLayout, RewriteError> {
    let ihl = usize::from(ip.first().ok_or(RewriteError::Truncated)? & 0x0f) * 4;
    let icmp = ihl;
    if ihl < 20 || ip.len() <= icmp {
        return Err(RewriteError::Truncated);
    }
    // Destination unreachable, time exceeded, parameter problem.
    if ip[9] != PROTO_ICMP || !matches!(ip[icmp], 3 | 11 | 12) {
        return Err(RewriteError::NotTranslatable);
    }
    if ip.len() < icmp + 8 + 20 {
        return Err(RewriteError::Truncated);
    }
    let qip = icmp + 8;
    let qihl = usize::from(ip[qip] & 0x0f) * 4;
    if ip[qip] >> 4 != 4 || qihl < 20 {
        return Err(RewriteError::NotTranslatable);
    }
    let ql4 = qip + qihl;
    // RFC 792: at least the first 8 bytes of the quoted upper layer.
    if ip.len() < ql4 + 8 {
        return Err(RewriteError::Truncated);
    }
    // A later fragment quotes no ports.
    if be16(ip, qip + 6) & 0x1fff != 0 {
        return Err(RewriteError::NotTranslatable);
    }
    Ok(ErrorLayout { icmp, qip, ql4 })
}

/// The flow an ICMP error (a whole IPv4 packet) quotes, to find its mapping.
pub fn quoted(ip: &[u8]) -> Result<Quoted, RewriteError> {
    let l = error_layout(ip)?;
    let q = &ip[l.qip..];
    let proto = q[9];
    let u = &ip[l.ql4..];
    let (src_port, dst_port) = match proto {
        PROTO_TCP | PROTO_UDP => (be16(u, 0), be16(u, 2)),
        // Only our echo requests are quoted back to us.
        PROTO_ICMP if u[0] == 8 => (be16(u, 4), 0),
        _ => return Err(RewriteError::NotTranslatable),
    };
    Ok(Quoted {
        proto,
        src: [q[12], q[13], q[14], q[15]],
        src_port,
        dst: [q[16], q[17], q[18], q[19]],
        dst_port,
    })
}

/// Translates an ICMP error from the internet back to the LAN host whose
/// packet it quotes: the outer destination and the quoted source (address
/// and port or identifier) become `addr`/`port`, and the outer IPv4, ICMP,
/// quoted IPv4 and quoted TCP/UDP/ICMP checksums follow (the quoted upper
/// layer's only when the quote holds it).
pub fn untranslate_error(ip: &mut [u8], addr: [u8; 4], port: u16) -> Result<(), RewriteError> {
    let q = quoted(ip)?;
    let l = error_layout(ip)?;
    // The words the ICMP checksum covers that change, old values first.
    let old_q_addr = q.src;
    let old_q_ck = be16(ip, l.qip + 10);
    let (port_at, ck_at) = match q.proto {
        PROTO_TCP => (0, Some(16)),
        PROTO_UDP => (0, Some(6)),
        _ => (4, Some(2)),
    };
    let ql4_len = ip.len() - l.ql4;
    // The quoted checksum field, if the quote reaches it.
    let ck_at = ck_at.filter(|&c| ql4_len >= c + 2);
    let old_port = be16(ip, l.ql4 + port_at);
    let old_l4_ck = ck_at.map(|c| be16(ip, l.ql4 + c));

    // Quoted upper layer: port (or identifier) and its checksum.
    put16(ip, l.ql4 + port_at, port);
    if let (Some(c), Some(old)) = (ck_at, old_l4_ck) {
        if !(q.proto == PROTO_UDP && old == 0) {
            let mut n = csum_replace(old, &old_port.to_be_bytes(), &port.to_be_bytes());
            if q.proto != PROTO_ICMP {
                n = csum_replace(n, &old_q_addr, &addr);
            }
            if q.proto == PROTO_UDP && n == 0 {
                n = 0xffff;
            }
            put16(ip, l.ql4 + c, n);
        }
    }
    // Quoted IPv4 header: source and checksum.
    ip[l.qip + 12..l.qip + 16].copy_from_slice(&addr);
    let q_ck = csum_replace(old_q_ck, &old_q_addr, &addr);
    put16(ip, l.qip + 10, q_ck);

    // ICMP checksum over everything that changed inside the message.
    let mut c = be16(ip, l.icmp + 2);
    c = csum_replace(c, &old_q_addr, &addr);
    c = csum_replace(c, &old_q_ck.to_be_bytes(), &q_ck.to_be_bytes());
    c = csum_replace(c, &old_port.to_be_bytes(), &port.to_be_bytes());
    if let (Some(at), Some(old)) = (ck_at, old_l4_ck) {
        let new = be16(ip, l.ql4 + at);
        c = csum_replace(c, &old.to_be_bytes(), &new.to_be_bytes());
    }
    put16(ip, l.icmp + 2, c);

    // Outer destination and header checksum.
    let old_dst = [ip[16], ip[17], ip[18], ip[19]];
    ip[16..20].copy_from_slice(&addr);
    let oc = csum_replace(be16(ip, 10), &old_dst, &addr);
    put16(ip, 10, oc);
    Ok(())
}

#[cfg(test)]
mod tests;
