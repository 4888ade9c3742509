//! What the firewall nodes read from a packet: the upper-layer header behind
//! IPv6 extension headers or the IPv4 header, fragment position, ports or
//! echo identifier, TCP flags, sequence numbers and options. Shared by
//! ip6-firewall, ip4-firewall and ip6-local, and used on the packet an ICMP
//! error quotes. Pure functions over bytes; every read is bounds-checked.

use crate::session::{Key, Segment};
use crate::wire::{be16, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// Most extension headers we walk before giving up (RFC 7045 lets us
/// refuse chains we can't parse at line rate; real traffic has 0-2).
pub const MAX_EXT_HEADERS: usize = 8;

pub const EXT_HOP_BY_HOP: u8 = 0;
pub const EXT_ROUTING: u8 = 43;
pub const EXT_FRAGMENT: u8 = 44;
pub const EXT_AH: u8 = 51;
pub const EXT_DEST_OPTS: u8 = 60;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fragment {
    /// Offset in bytes.
    pub offset: u16,
    pub more: bool,
    pub id: u32,
}

impl Fragment {
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// Where the upper-layer header is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct L4 {
    pub proto: u8,
    /// Offset of the upper-layer header from the start of the IP header.
    pub off: usize,
    /// Set when the packet is a fragment (IPv6 fragment header, or IPv4
    /// MF/offset) — an atomic IPv6 fragment (offset 0, M 0) is not one.
    pub frag: Option<Fragment>,
    /// A type 0 routing header with segments left (RFC 5095).
    pub rh0: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4Error {
    /// An extension header runs past the packet, or too many of them.
    BadChain,
}

/// Walk the IPv6 extension headers of `ip` (fixed header first).
pub fn ipv6_l4(ip: &[u8]) -> Result<L4, L4Error> {
    if ip.len() < 40 {
        return Err(L4Error::BadChain);
    }
    let mut next = ip[6];
    let mut off = 40usize;
    let mut l4 = L4::default();
    for _ in 0..=MAX_EXT_HEADERS {
        match next {
            EXT_HOP_BY_HOP | EXT_ROUTING | EXT_DEST_OPTS | EXT_AH => {
                if ip.len() < off + 8 {
                    return Err(L4Error::BadChain);
                }
                let len = if next == EXT_AH {
                    (usize::from(ip[off + 1]) + 2) * 4
                } else {
                    (usize::from(ip[off + 1]) + 1) * 8
                };
                if next == EXT_ROUTING && ip[off + 2] == 0 && ip[off + 3] != 0 {
                    l4.rh0 = true;
                }
                if ip.len() < off + len {
                    return Err(L4Error::BadChain);
                }
                next = ip[off];
                off += len;
            }
            EXT_FRAGMENT => {
                if ip.len() < off + 8 {
                    return Err(L4Error::BadChain);
                }
                let fo = be16(ip, off + 2);
                let frag = Fragment {
                    offset: fo & 0xfff8,
                    more: fo & 1 != 0,
                    id: u32::from_be_bytes([ip[off + 4], ip[off + 5], ip[off + 6], ip[off + 7]]),
                };
                if frag.offset != 0 || frag.more {
                    l4.frag = Some(frag);
                }
                next = ip[off];
                off += 8;
                if frag.offset != 0 {
                    // No upper-layer header in a later fragment.
                    l4.proto = next;
                    l4.off = off;
                    return Ok(l4);
                }
            }
            _ => {
                l4.proto = next;
                l4.off = off;
                return Ok(l4);
            }
        }
    }
    Err(L4Error::BadChain)
}

/// The upper layer of an IPv4 packet whose header ip4-input validated.
pub fn ipv4_l4(ip: &[u8]) -> L4 {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let ff = be16(ip, 6);
    let frag = if ff & 0x3fff != 0 {
        Some(Fragment {
            offset: (ff & 0x1fff) * 8,
            more: ff & 0x2000 != 0,
            id: u32::from(be16(ip, 4)),
        })
    } else {
        None
    };
    L4 {
        proto: ip[9],
        off: ihl,
        frag,
        rh0: false,
    }
}

/// A TCP header's fields the session table and the MSS clamp need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpView {
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub header_len: usize,
    pub wscale: Option<u8>,
    /// Offset (from the TCP header) of the MSS option's value, if present.
    pub mss_at: Option<usize>,
}

/// Parse a TCP header; `None` if truncated or the data offset is wrong.
pub fn tcp_view(tcp: &[u8]) -> Option<TcpView> {
    if tcp.len() < 20 {
        return None;
    }
    let header_len = usize::from(tcp[12] >> 4) * 4;
    if header_len < 20 || header_len > tcp.len() {
        return None;
    }
    let mut v = TcpView {
        flags: tcp[13],
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        ack: u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]),
        window: be16(tcp, 14),
        header_len,
        wscale: None,
        mss_at: None,
    };
    // Options only matter on SYNs (MSS, window scale).
    if v.flags & TCP_SYN != 0 {
        let mut k = 20;
        while k < header_len {
            match tcp[k] {
                0 => break,
                1 => k += 1,
                kind => {
                    if k + 1 >= header_len {
                        break;
                    }
                    let len = usize::from(tcp[k + 1]);
                    if len < 2 || k + len > header_len {
                        break;
                    }
                    if kind == 2 && len == 4 {
                        v.mss_at = Some(k + 2);
                    } else if kind == 3 && len == 3 {
                        v.wscale = Some(tcp[k + 2].min(14));
                    }
                    k += len;
                }
            }
        }
    }
    Some(v)
}

/// Is this ICMPv6 / ICMP type an echo request or reply?
pub fn is_echo(proto: u8, icmp_type: u8) -> bool {
    (proto == PROTO_ICMPV6 && (icmp_type == 128 || icmp_type == 129))
        || (proto == PROTO_ICMP && (icmp_type == 8 || icmp_type == 0))
}

/// Address bytes as the session key stores them (IPv4 mapped into IPv6).
#[inline]
pub fn mapped(v4: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[10] = 0xff;
    a[11] = 0xff;
    a[12..16].copy_from_slice(&v4[..4]);
    a
}

/// The session key and segment of a packet's upper layer, given which
/// address is the LAN host's. `None` if the header is truncated or the
/// protocol has no ports and is not echo (generic protocols get ports 0).
pub fn flow_of(
    src: [u8; 16],
    dst: [u8; 16],
    l4: &L4,
    payload: &[u8],
    from_lan: bool,
) -> Option<(Key, Segment)> {
    let mut key = Key {
        int_addr: [0; 16],
        ext_addr: [0; 16],
        int_port: 0,
        ext_port: 0,
        proto: 0,
    };
    let mut seg = Segment::Udp;
    flow_into(src, dst, l4, payload, from_lan, (&mut key, &mut seg)).then_some((key, seg))
}

/// `flow_of` written in place (a request's key and segment): returned by
/// value, a key is copied through the stack right after it was written,
/// and those copies stall on store forwarding. False where `flow_of`
/// gives `None` (the key and segment are then unspecified).
#[inline]
pub fn flow_into(
    src: [u8; 16],
    dst: [u8; 16],
    l4: &L4,
    payload: &[u8],
    from_lan: bool,
    (key, seg): (&mut Key, &mut Segment),
) -> bool {
    let (int_addr, ext_addr) = if from_lan { (src, dst) } else { (dst, src) };
    let (sport, dport) = match l4.proto {
        PROTO_TCP => {
            let Some(t) = tcp_view(payload) else {
                return false;
            };
            let data_len = payload.len().saturating_sub(t.header_len) as u32;
            *seg = Segment::Tcp {
                flags: t.flags,
                seq: t.seq,
                ack: t.ack,
                payload_len: data_len,
                window: t.window,
                wscale: t.wscale,
            };
            (be16(payload, 0), be16(payload, 2))
        }
        PROTO_UDP => {
            if payload.len() < 8 {
                return false;
            }
            *seg = Segment::Udp;
            (be16(payload, 0), be16(payload, 2))
        }
        PROTO_ICMP | PROTO_ICMPV6 => {
            if payload.len() < 8 || !is_echo(l4.proto, payload[0]) {
                return false;
            }
            let id = be16(payload, 4);
            // Requests one way, replies the other: which side pings is
            // part of the key, so the peer of a LAN host's ping cannot send
            // requests with its identifier into the LAN.
            let request = matches!(payload[0], 128 | 8);
            *key = Key {
                int_addr,
                ext_addr,
                int_port: id,
                ext_port: u16::from(request != from_lan),
                proto: l4.proto,
            };
            *seg = Segment::Icmp;
            return true;
        }
        // Other protocols (ESP, GRE, SCTP...): one session per address pair.
        _ => {
            *seg = Segment::Udp;
            (0, 0)
        }
    };
    let (int_port, ext_port) = if from_lan {
        (sport, dport)
    } else {
        (dport, sport)
    };
    *key = Key {
        int_addr,
        ext_addr,
        int_port,
        ext_port,
        proto: l4.proto,
    };
    true
}

/// Lower the MSS option of a SYN to `clamp`, fixing the TCP checksum
/// incrementally (RFC 1624). Returns whether it changed anything.
pub fn clamp_mss(tcp: &mut [u8], view: &TcpView, clamp: u16) -> bool {
    let Some(at) = view.mss_at else {
        return false;
    };
    let old = be16(tcp, at);
    if old <= clamp {
        return false;
    }
    crate::wire::put16(tcp, at, clamp);
    // The option may start at an odd offset: adjust over the aligned word(s).
    if at % 2 == 0 {
        let c = crate::wire::checksum_adjust(be16(tcp, 16), old, clamp);
        crate::wire::put16(tcp, 16, c);
    } else {
        let (w1_old, w2_old) = (
            u16::from_be_bytes([tcp[at - 1], (old >> 8) as u8]),
            u16::from_be_bytes([old as u8, tcp[at + 2]]),
        );
        let (w1_new, w2_new) = (be16(tcp, at - 1), be16(tcp, at + 1));
        let c = crate::wire::checksum_adjust(be16(tcp, 16), w1_old, w1_new);
        let c = crate::wire::checksum_adjust(c, w2_old, w2_new);
        crate::wire::put16(tcp, 16, c);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{checksum, fold, ipv6_pseudo_sum, sum16};

    fn v6_packet(next: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        let plen = (ext.len() + payload.len()) as u16;
        p[4..6].copy_from_slice(&plen.to_be_bytes());
        p[6] = next;
        p[7] = 64;
        p.extend_from_slice(ext);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn walks_hop_by_hop_and_dest_opts() {
        let ext = [
            EXT_DEST_OPTS,
            0,
            1,
            4,
            0,
            0,
            0,
            0, // HBH, PadN
            PROTO_UDP,
            0,
            1,
            4,
            0,
            0,
            0,
            0, // DO
        ];
        let p = v6_packet(EXT_HOP_BY_HOP, &ext, &[0; 8]);
        let l4 = ipv6_l4(&p).unwrap();
        assert_eq!(
            (l4.proto, l4.off, l4.frag, l4.rh0),
            (PROTO_UDP, 56, None, false)
        );
    }

    #[test]
    fn finds_rh0_and_later_fragments() {
        let rh0 = [
            PROTO_TCP, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let l4 = ipv6_l4(&v6_packet(EXT_ROUTING, &rh0, &[0; 20])).unwrap();
        assert!(l4.rh0);
        // Segments left 0: harmless (RFC 5095 only forbids processing it).
        let mut rh0_done = rh0;
        rh0_done[3] = 0;
        assert!(
            !ipv6_l4(&v6_packet(EXT_ROUTING, &rh0_done, &[0; 20]))
                .unwrap()
                .rh0
        );

        let frag = [PROTO_UDP, 0, 0x05, 0xa9, 0xde, 0xad, 0xbe, 0xef]; // offset 181*8, M=1
        let l4 = ipv6_l4(&v6_packet(EXT_FRAGMENT, &frag, &[0; 16])).unwrap();
        assert_eq!(
            l4.frag,
            Some(Fragment {
                offset: 1448,
                more: true,
                id: 0xdead_beef
            })
        );
        // An atomic fragment is no fragment.
        let atomic = [PROTO_UDP, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(
            ipv6_l4(&v6_packet(EXT_FRAGMENT, &atomic, &[0; 8]))
                .unwrap()
                .frag,
            None
        );
    }

    #[test]
    fn refuses_truncated_and_endless_chains() {
        let p = v6_packet(EXT_HOP_BY_HOP, &[PROTO_UDP, 3, 0, 0], &[]);
        assert_eq!(ipv6_l4(&p), Err(L4Error::BadChain));
        let mut ext = Vec::new();
        for _ in 0..MAX_EXT_HEADERS + 1 {
            ext.extend_from_slice(&[EXT_DEST_OPTS, 0, 1, 4, 0, 0, 0, 0]);
        }
        let p = v6_packet(EXT_DEST_OPTS, &ext, &[0; 8]);
        assert_eq!(ipv6_l4(&p), Err(L4Error::BadChain));
        assert_eq!(ipv6_l4(&[0x60; 20]), Err(L4Error::BadChain));
    }

    /// A SYN as Linux sends it: MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
    const SYN_OPTIONS: [u8; 20] = [
        2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];

    fn syn(options: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&40000u16.to_be_bytes());
        t[2..4].copy_from_slice(&80u16.to_be_bytes());
        t[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        t[12] = (((20 + options.len()) / 4) as u8) << 4;
        t[13] = TCP_SYN;
        t[14..16].copy_from_slice(&64240u16.to_be_bytes());
        t.extend_from_slice(options);
        t
    }

    fn tcp6_checksum(src: &[u8; 16], dst: &[u8; 16], tcp: &[u8]) -> u16 {
        !fold(sum16(
            tcp,
            ipv6_pseudo_sum(src, dst, tcp.len() as u32, PROTO_TCP),
        ))
    }

    #[test]
    fn reads_mss_and_window_scale() {
        let t = syn(&SYN_OPTIONS);
        let v = tcp_view(&t).unwrap();
        assert_eq!(
            (v.flags, v.seq, v.mss_at, v.wscale),
            (TCP_SYN, 0x1234_5678, Some(22), Some(7))
        );
        // Garbage option lengths stop the walk without panicking.
        let v = tcp_view(&syn(&[2, 0, 0, 0])).unwrap();
        assert_eq!(v.mss_at, None);
        let v = tcp_view(&syn(&[3, 9, 0, 0])).unwrap();
        assert_eq!(v.wscale, None);
        assert_eq!(tcp_view(&t[..19]), None);
    }

    #[test]
    fn clamp_keeps_checksum_right_at_even_and_odd_offsets() {
        let (src, dst) = ([0x20; 16], [0x30; 16]);
        for options in [SYN_OPTIONS.to_vec(), {
            // NOP first: the MSS value sits at an odd offset.
            let mut o = vec![1u8];
            o.extend_from_slice(&[2, 4, 0x05, 0xb4, 1, 1, 1]);
            o
        }] {
            let mut t = syn(&options);
            let c = tcp6_checksum(&src, &dst, &t);
            t[16..18].copy_from_slice(&c.to_be_bytes());
            let v = tcp_view(&t).unwrap();
            assert!(clamp_mss(&mut t, &v, 1420));
            assert_eq!(be16(&t, v.mss_at.unwrap()), 1420);
            // A correct checksum sums to zero.
            assert_eq!(tcp6_checksum(&src, &dst, &t), 0, "options {options:?}");
            // Already small enough: untouched.
            let v = tcp_view(&t).unwrap();
            assert!(!clamp_mss(&mut t, &v, 1440));
        }
        let _ = checksum(&[]);
    }

    #[test]
    fn keys_are_the_same_both_ways() {
        let host = [0x20, 1, 0xd, 0xb8, 0, 0, 1, 0x11, 0, 0, 0, 0, 0, 0, 0, 0x10];
        let server = [
            0x20, 1, 0xd, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let out = [0x9c, 0x40, 0, 80, 0, 8, 0, 0];
        let back = [0, 80, 0x9c, 0x40, 0, 8, 0, 0];
        let l4 = L4 {
            proto: PROTO_UDP,
            off: 40,
            ..L4::default()
        };
        let (k1, _) = flow_of(host, server, &l4, &out, true).unwrap();
        let (k2, _) = flow_of(server, host, &l4, &back, false).unwrap();
        assert_eq!(k1, k2);
        assert_eq!((k1.int_port, k1.ext_port), (40000, 80));
        // Echo: the identifier is the port, type must be echo.
        let l4 = L4 {
            proto: PROTO_ICMPV6,
            off: 40,
            ..L4::default()
        };
        let req = [128, 0, 0, 0, 0x12, 0x34, 0, 1];
        let rep = [129, 0, 0, 0, 0x12, 0x34, 0, 1];
        let (k1, _) = flow_of(host, server, &l4, &req, true).unwrap();
        let (k2, _) = flow_of(server, host, &l4, &rep, false).unwrap();
        assert_eq!(k1, k2);
        assert_eq!(
            flow_of(host, server, &l4, &[1, 0, 0, 0, 0, 0, 0, 0], true),
            None
        );
    }
}
