//! The tunnel's path MTU toward the AFTR (RFC 8201 for IPv6, RFC 2473 7.1:
//! the tunnel entry point owns the tunnel's PMTU). Sans-IO: fed ICMPv6
//! Packet Too Big messages sent to the B4 with the time, it keeps one
//! estimate and forgets it [`AGE`] after the last PTB, so the tunnel tries
//! the full size again (RFC 8201 4: no less than 5 minutes, 10 suggested).
//!
//! Only a PTB that quotes one of our IPv4-in-IPv6 packets counts: the
//! quoted source is the address the PTB was sent to (ip6-local punts only
//! our own addresses) and the quoted next header is IPv4 (4), directly or
//! after a Fragment header (our outer fragments). The daemon then uses it
//! only while the quoted destination is the AFTR in use. A PTB can only
//! lower the estimate (RFC 8201 4), and never below 1280: RFC 8021 removed
//! atomic fragments, so a smaller MTU means "send 1280-byte packets".

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// How long a learned PMTU holds after its last PTB.
pub const AGE: Duration = Duration::from_secs(600);
/// The IPv6 minimum link MTU (RFC 8200 5).
pub const MIN_MTU: u16 = 1280;

const ICMPV6_PTB: u8 = 2;
const PROTO_IPIP: u8 = 4;
const EXT_FRAGMENT: u8 = 44;

/// What the last PTBs taught.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learned {
    /// Path MTU in IPv6 bytes (at least [`MIN_MTU`]).
    pub mtu: u16,
    /// The destination of the quoted packet (the AFTR).
    pub dst: Ipv6Addr,
    /// The router that sent the last PTB.
    pub from: Ipv6Addr,
    /// When the estimate was last lowered or confirmed.
    pub at: Instant,
}

/// Why a PTB was not used; each is a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ignored {
    /// Too short, not type 2 code 0, or the quote is not IPv6.
    Malformed,
    /// The quoted packet is not IPv4-in-IPv6 from the address the PTB was
    /// sent to.
    NotOurTunnel,
    /// Not below the MTU already in use.
    NotLower,
}

#[derive(Debug, Default)]
pub struct TunnelPmtu {
    learned: Option<Learned>,
    pub ptb_used: u64,
    pub ptb_ignored: u64,
    /// PTBs translated into frag-needed for the IPv4 sender.
    pub relayed: u64,
}

impl TunnelPmtu {
    /// A PTB (the ICMPv6 message from its type byte) from `src` to our
    /// address `to`; `ceiling` is the WAN link MTU in use. `Ok(true)` when
    /// the estimate changed.
    pub fn handle_ptb(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        to: Ipv6Addr,
        message: &[u8],
        ceiling: u16,
    ) -> Result<bool, Ignored> {
        let r = self.check(now, src, to, message, ceiling);
        match r {
            Ok(_) => self.ptb_used += 1,
            Err(_) => self.ptb_ignored += 1,
        }
        r
    }

    fn check(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        to: Ipv6Addr,
        message: &[u8],
        ceiling: u16,
    ) -> Result<bool, Ignored> {
        // Type, code, checksum, MTU, then the quoted packet (at least its
        // IPv6 header).
        if message.len() < 8 + 40 || message[0] != ICMPV6_PTB || message[1] != 0 {
            return Err(Ignored::Malformed);
        }
        let reported = u32::from_be_bytes([message[4], message[5], message[6], message[7]]);
        let q = &message[8..];
        if q[0] >> 4 != 6 {
            return Err(Ignored::Malformed);
        }
        let qsrc = Ipv6Addr::from(<[u8; 16]>::try_from(&q[8..24]).unwrap_or_default());
        let qdst = Ipv6Addr::from(<[u8; 16]>::try_from(&q[24..40]).unwrap_or_default());
        let ipip = match q[6] {
            PROTO_IPIP => true,
            EXT_FRAGMENT => q.get(40) == Some(&PROTO_IPIP),
            _ => false,
        };
        if !ipip || qsrc != to {
            return Err(Ignored::NotOurTunnel);
        }
        let mtu = reported.clamp(u32::from(MIN_MTU), u32::from(u16::MAX)) as u16;
        let current = match self.learned {
            Some(l) if l.dst == qdst => l.mtu.min(ceiling),
            _ => ceiling,
        };
        if mtu > current {
            return Err(Ignored::NotLower);
        }
        let changed = mtu < current || self.learned.is_none_or(|l| l.dst != qdst);
        if changed {
            log::info!("tunnel: path MTU to {qdst} is {mtu} (Packet Too Big from {src}, reported {reported})");
        }
        self.learned = Some(Learned {
            mtu,
            dst: qdst,
            from: src,
            at: now,
        });
        Ok(changed)
    }

    /// Forgets an estimate [`AGE`] old; returns when the current one ages.
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        let l = self.learned?;
        let until = l.at + AGE;
        if now >= until {
            log::info!(
                "tunnel: path MTU {} to {} aged out; trying the link MTU again",
                l.mtu,
                l.dst
            );
            self.learned = None;
            return None;
        }
        Some(until)
    }

    /// The estimate, if one holds.
    pub fn learned(&self) -> Option<Learned> {
        self.learned
    }
}

/// RFC 2473 8.3: a PTB translated for the IPv4 sender of the packet it
/// quotes, so the first oversized packet is not lost without a word: ICMPv4
/// fragmentation needed (type 3 code 4, RFC 1191) from `from` with
/// `tunnel_mtu` as next-hop MTU, quoting what the PTB kept of the inner
/// packet (at most 548 bytes, RFC 1812 4.3.2.3). `None` unless that is a
/// first fragment with DF from a sender `is_lan` accepts, and not an ICMP
/// error itself (RFC 1812 4.3.2.7). Returns the destination and the packet.
pub fn frag_needed_for_sender(
    message: &[u8],
    tunnel_mtu: u16,
    from: Ipv4Addr,
    is_lan: impl Fn(Ipv4Addr) -> bool,
) -> Option<(Ipv4Addr, Vec<u8>)> {
    let q = message.get(8..)?;
    let inner = match *q.get(6)? {
        PROTO_IPIP => q.get(40..)?,
        EXT_FRAGMENT => {
            // Only the first outer fragment starts with the inner header.
            let f = q.get(40..48)?;
            if f[0] != PROTO_IPIP || u16::from_be_bytes([f[2], f[3]]) & 0xfff8 != 0 {
                return None;
            }
            q.get(48..)?
        }
        _ => return None,
    };
    let ihl = usize::from(*inner.first()? & 0x0f) * 4;
    if inner.len() < ihl + 8 || inner[0] >> 4 != 4 || ihl < 20 {
        return None;
    }
    let flags = u16::from_be_bytes([inner[6], inner[7]]);
    let src = Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]);
    let icmp_error = inner[9] == 1 && matches!(inner[ihl], 3 | 4 | 5 | 11 | 12);
    if flags & 0x4000 == 0 || flags & 0x1fff != 0 || icmp_error || !is_lan(src) {
        return None;
    }
    let quote = &inner[..inner.len().min(576 - 28)];
    let total = 28 + quote.len();
    let mut p = vec![0u8; total];
    p[..12].copy_from_slice(&[0x45, 0xc0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0]);
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[12..16].copy_from_slice(&from.octets());
    p[16..20].copy_from_slice(&src.octets());
    let c = ones_complement(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20] = 3;
    p[21] = 4;
    p[26..28].copy_from_slice(&tunnel_mtu.to_be_bytes());
    p[28..].copy_from_slice(quote);
    let c = ones_complement(&p[20..]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    Some((src, p))
}

/// The Internet checksum (RFC 1071) of `data`.
fn ones_complement(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B4: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 2);
    const AFTR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xaaaa, 0, 0, 0, 0, 1);
    const HOP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);

    /// A PTB quoting the start of an outer packet src -> dst, next header nh.
    fn ptb(mtu: u32, src: Ipv6Addr, dst: Ipv6Addr, nh: u8) -> Vec<u8> {
        let mut m = vec![2, 0, 0, 0];
        m.extend_from_slice(&mtu.to_be_bytes());
        let mut q = [0u8; 40 + 28];
        q[0] = 0x60;
        q[4..6].copy_from_slice(&1460u16.to_be_bytes());
        q[6] = nh;
        q[7] = 63;
        q[8..24].copy_from_slice(&src.octets());
        q[24..40].copy_from_slice(&dst.octets());
        q[40] = if nh == EXT_FRAGMENT { PROTO_IPIP } else { 0x45 };
        m.extend_from_slice(&q);
        m
    }

    #[test]
    fn m1_ptb_quoting_our_tunnel_lowers_the_pmtu_then_ages_out() {
        let t0 = Instant::now();
        let mut p = TunnelPmtu::default();
        assert_eq!(p.poll(t0), None);
        assert_eq!(
            p.handle_ptb(t0, HOP, B4, &ptb(1400, B4, AFTR, 4), 1500),
            Ok(true)
        );
        let l = p.learned().unwrap();
        assert_eq!((l.mtu, l.dst, l.from), (1400, AFTR, HOP));
        // A larger one never raises it (RFC 8201 4); an equal one confirms.
        assert_eq!(
            p.handle_ptb(t0, HOP, B4, &ptb(1454, B4, AFTR, 4), 1500),
            Err(Ignored::NotLower)
        );
        let t1 = t0 + Duration::from_secs(300);
        assert_eq!(
            p.handle_ptb(t1, HOP, B4, &ptb(1400, B4, AFTR, 4), 1500),
            Ok(false)
        );
        assert_eq!(p.poll(t1), Some(t1 + AGE));
        // Our outer fragments are ours too.
        assert_eq!(
            p.handle_ptb(t1, HOP, B4, &ptb(1300, B4, AFTR, 44), 1500),
            Ok(true)
        );
        assert_eq!(p.learned().unwrap().mtu, 1300);
        // Ten minutes after the last PTB it is forgotten.
        assert_eq!(p.poll(t1 + AGE - Duration::from_secs(1)), Some(t1 + AGE));
        assert_eq!(p.poll(t1 + AGE), None);
        assert_eq!(p.learned(), None);
        assert_eq!(p.ptb_used, 3);
    }

    /// The PTB about a 1460-byte DF TCP segment of a LAN host, as hgw
    /// sends it (the quote cut short, as a router keeps at most 1280).
    fn ptb_about_lan_tcp(df: bool, inner_src: [u8; 4]) -> Vec<u8> {
        let mut m = ptb(1400, B4, AFTR, 4);
        m.truncate(8 + 40);
        let mut inner = vec![0u8; 600];
        inner[0] = 0x45;
        inner[2..4].copy_from_slice(&1460u16.to_be_bytes());
        inner[6] = if df { 0x40 } else { 0 };
        inner[8] = 63;
        inner[9] = 6;
        inner[12..16].copy_from_slice(&inner_src);
        inner[16..20].copy_from_slice(&[198, 51, 100, 10]);
        inner[20..24].copy_from_slice(&[0x9c, 0x40, 0, 80]);
        m.extend_from_slice(&inner);
        m
    }

    #[test]
    fn m1_ptb_is_translated_to_frag_needed_for_the_lan_sender() {
        let lan = |a: Ipv4Addr| a.octets()[..3] == [192, 168, 2];
        let from = Ipv4Addr::new(192, 168, 2, 1);
        let m = ptb_about_lan_tcp(true, [192, 168, 2, 10]);
        let (dst, p) = frag_needed_for_sender(&m, 1360, from, lan).expect("translated");
        assert_eq!(dst, Ipv4Addr::new(192, 168, 2, 10));
        let ip = smoltcp::wire::Ipv4Packet::new_checked(&p[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src_addr(), ip.dst_addr()), (from, dst));
        assert_eq!(
            usize::from(ip.total_len()),
            576,
            "RFC 1812: at most 576 bytes"
        );
        let icmp = smoltcp::wire::Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!(
            (icmp.msg_type(), icmp.msg_code()),
            (smoltcp::wire::Icmpv4Message::DstUnreachable, 4)
        );
        assert_eq!(&ip.payload()[6..8], &1360u16.to_be_bytes());
        assert_eq!(
            &ip.payload()[8..28],
            &m[8 + 40..8 + 60],
            "quotes the inner header"
        );
        // No DF, or not from the LAN (our own ICMP from 192.0.0.2): nothing.
        let no_df = ptb_about_lan_tcp(false, [192, 168, 2, 10]);
        assert!(frag_needed_for_sender(&no_df, 1360, from, lan).is_none());
        let ours = ptb_about_lan_tcp(true, [192, 0, 0, 2]);
        assert!(frag_needed_for_sender(&ours, 1360, from, lan).is_none());
        // Truncated quotes never panic.
        for n in 0..m.len() {
            let _ = frag_needed_for_sender(&m[..n], 1360, from, lan);
        }
    }

    #[test]
    fn m1_ptb_below_1280_means_1280_no_atomic_fragments() {
        let mut p = TunnelPmtu::default();
        let now = Instant::now();
        assert_eq!(
            p.handle_ptb(now, HOP, B4, &ptb(576, B4, AFTR, 4), 1500),
            Ok(true)
        );
        assert_eq!(p.learned().unwrap().mtu, 1280);
    }

    #[test]
    fn m1_ptb_about_other_traffic_is_ignored() {
        let mut p = TunnelPmtu::default();
        let now = Instant::now();
        let other = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 9);
        // Not IPv4-in-IPv6 (UDP).
        assert_eq!(
            p.handle_ptb(now, HOP, B4, &ptb(1400, B4, AFTR, 17), 1500),
            Err(Ignored::NotOurTunnel)
        );
        // Quoting a packet that was not ours.
        assert_eq!(
            p.handle_ptb(now, HOP, B4, &ptb(1400, other, AFTR, 4), 1500),
            Err(Ignored::NotOurTunnel)
        );
        // Not above the link MTU in use.
        assert_eq!(
            p.handle_ptb(now, HOP, B4, &ptb(1460, B4, AFTR, 4), 1454),
            Err(Ignored::NotLower)
        );
        // Truncated, wrong code.
        let m = ptb(1400, B4, AFTR, 4);
        assert_eq!(
            p.handle_ptb(now, HOP, B4, &m[..47], 1500),
            Err(Ignored::Malformed)
        );
        let mut c = m.clone();
        c[1] = 1;
        assert_eq!(
            p.handle_ptb(now, HOP, B4, &c, 1500),
            Err(Ignored::Malformed)
        );
        assert_eq!(p.learned(), None);
        assert_eq!(p.ptb_ignored, 5);
    }
}
