//! Byte-level helpers the nodes share: header offsets, Internet checksums.
//! Nodes validate with etherparse slices and edit in place with these.

pub const ETH_LEN: usize = 14;
pub const IPV4_MIN_LEN: usize = 20;
pub const IPV6_LEN: usize = 40;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_IPIP: u8 = 4;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

pub type Mac = [u8; 6];

#[inline]
pub fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Write an Ethernet header at the start of `b`.
#[inline]
pub fn write_eth(b: &mut [u8], dst: &Mac, src: &Mac, ethertype: u16) {
    b[0..6].copy_from_slice(dst);
    b[6..12].copy_from_slice(src);
    put16(b, 12, ethertype);
}

/// One's-complement sum of `data` added to `sum` (not folded).
#[inline]
pub fn sum16(data: &[u8], mut sum: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

#[inline]
pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The Internet checksum of `data` (RFC 1071).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum16(data, 0))
}

/// Incremental update of a checksum when one 16-bit word changes (RFC 1624 eq. 3).
#[inline]
pub fn checksum_adjust(check: u16, old: u16, new: u16) -> u16 {
    let sum = u32::from(!check) + u32::from(!old) + u32::from(new);
    !fold(sum)
}

/// Sum of the IPv6 pseudo-header (RFC 8200 section 8.1).
#[inline]
pub fn ipv6_pseudo_sum(src: &[u8], dst: &[u8], len: u32, next_header: u8) -> u32 {
    let mut sum = sum16(src, 0);
    sum = sum16(dst, sum);
    sum += len >> 16;
    sum += len & 0xffff;
    sum + u32::from(next_header)
}

/// Whether the IPv4 header checksum of `hdr` (exactly IHL*4 bytes) is right.
#[inline]
pub fn ipv4_header_ok(hdr: &[u8]) -> bool {
    fold(sum16(hdr, 0)) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3 example bytes: sum 0xddf2, checksum 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum16(&data, 0)), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
    }

    #[test]
    fn incremental_update_equals_full_recompute() {
        // An IPv4 header (TTL 64, proto TCP) from a capture.
        let mut h = [
            0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xc0, 0xa8,
            0x02, 0x0a, 0xc6, 0x33, 0x64, 0x0a,
        ];
        let c = checksum(&h);
        put16(&mut h, 10, c);
        assert!(ipv4_header_ok(&h));
        let old = be16(&h, 8);
        h[8] -= 1;
        let new = be16(&h, 8);
        let adj = checksum_adjust(c, old, new);
        put16(&mut h, 10, 0);
        assert_eq!(adj, checksum(&h));
    }
}
