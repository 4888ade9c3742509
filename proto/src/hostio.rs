//! The router's own traffic as a host: classifying a punted frame into a
//! checked UDP, TCP or ICMPv6 message for the control thread (RS/RA,
//! DHCPv4/v6, DNS), and framing what the control thread sends, with correct
//! checksums.
//!
//! The protocol engines work on payloads only (the DNS proxy's TCP front on
//! bare IP packets); this is the one place that knows Ethernet, IP headers
//! and pseudo-header sums.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpPacket, UdpPacket, UdpRepr, ETHERNET_HEADER_LEN,
};

use crate::neigh::{Mac, Side};

/// A frame for the workers to send, or one whose destination MAC the
/// neighbor engine must fill in first.
pub enum Tx {
    /// Complete: multicast, broadcast, or the MAC already known.
    Ready(Side, Vec<u8>),
    /// Unicast via `next_hop` on `side`.
    Via(Side, IpAddr, Vec<u8>),
}

/// A message for the control thread, checksums verified.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    Udp {
        src: IpAddr,
        dst: IpAddr,
        src_mac: Mac,
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
    },
    /// A TCP segment, handed on as the whole IP packet.
    Tcp {
        src: IpAddr,
        dst_port: u16,
        ip_packet: &'a [u8],
    },
    Icmpv6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        src_mac: Mac,
        hop_limit: u8,
        /// The ICMPv6 message from its type byte.
        message: &'a [u8],
    },
}

/// Why a frame was not a message for us; each is a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not IPv6, or extension headers we do not walk for local delivery.
    NotUdpOrIcmpv6,
    Malformed,
    BadChecksum,
}

impl Refused {
    pub fn name(self) -> &'static str {
        match self {
            Refused::NotUdpOrIcmpv6 => "not-udp-or-icmpv6",
            Refused::Malformed => "malformed",
            Refused::BadChecksum => "bad-checksum",
        }
    }
}

pub fn classify(frame: &[u8]) -> Result<Inbound<'_>, Refused> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| Refused::Malformed)?;
    let src_mac = eth.src_addr().0;
    match eth.ethertype() {
        EthernetProtocol::Ipv6 => {}
        EthernetProtocol::Ipv4 => return classify4(src_mac, &frame[ETHERNET_HEADER_LEN..]),
        _ => return Err(Refused::NotUdpOrIcmpv6),
    }
    let l3 = &frame[ETHERNET_HEADER_LEN..];
    let ip = Ipv6Packet::new_checked(l3).map_err(|_| Refused::Malformed)?;
    let src = ip.src_addr();
    let dst = ip.dst_addr();
    let hop_limit = ip.hop_limit();
    let next = ip.next_header();
    let payload_len = usize::from(ip.payload_len());
    let payload = &l3[40..40 + payload_len];
    match next {
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(payload).map_err(|_| Refused::Malformed)?;
            // A zero UDP checksum is invalid over IPv6 (RFC 8200 8.1).
            if udp.checksum() == 0
                || !udp.verify_checksum(&IpAddress::Ipv6(src), &IpAddress::Ipv6(dst))
            {
                return Err(Refused::BadChecksum);
            }
            let len = usize::from(udp.len());
            Ok(Inbound::Udp {
                src: src.into(),
                dst: dst.into(),
                src_mac,
                src_port: udp.src_port(),
                dst_port: udp.dst_port(),
                payload: &payload[8..len],
            })
        }
        IpProtocol::Tcp => {
            let tcp = TcpPacket::new_checked(payload).map_err(|_| Refused::Malformed)?;
            if !tcp.verify_checksum(&IpAddress::Ipv6(src), &IpAddress::Ipv6(dst)) {
                return Err(Refused::BadChecksum);
            }
            Ok(Inbound::Tcp {
                src: src.into(),
                dst_port: tcp.dst_port(),
                ip_packet: &l3[..40 + payload_len],
            })
        }
        IpProtocol::Icmpv6 => {
            if payload.len() < 4 {
                return Err(Refused::Malformed);
            }
            if checksum(src, dst, 58, payload) != 0 {
                return Err(Refused::BadChecksum);
            }
            Ok(Inbound::Icmpv6 {
                src,
                dst,
                src_mac,
                hop_limit,
                message: payload,
            })
        }
        _ => Err(Refused::NotUdpOrIcmpv6),
    }
}

fn classify4(src_mac: Mac, l3: &[u8]) -> Result<Inbound<'_>, Refused> {
    let ip = Ipv4Packet::new_checked(l3).map_err(|_| Refused::Malformed)?;
    if !ip.verify_checksum() {
        return Err(Refused::BadChecksum);
    }
    // Fragments are not reassembled for the router's own traffic.
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Err(Refused::NotUdpOrIcmpv6);
    }
    let src = IpAddress::Ipv4(ip.src_addr());
    let dst = IpAddress::Ipv4(ip.dst_addr());
    let total = usize::from(ip.total_len());
    let payload = &l3[usize::from(ip.header_len())..total];
    match ip.next_header() {
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(payload).map_err(|_| Refused::Malformed)?;
            // Zero means "no checksum" over IPv4.
            if udp.checksum() != 0 && !udp.verify_checksum(&src, &dst) {
                return Err(Refused::BadChecksum);
            }
            let len = usize::from(udp.len());
            Ok(Inbound::Udp {
                src: ip.src_addr().into(),
                dst: ip.dst_addr().into(),
                src_mac,
                src_port: udp.src_port(),
                dst_port: udp.dst_port(),
                payload: &payload[8..len],
            })
        }
        IpProtocol::Tcp => {
            let tcp = TcpPacket::new_checked(payload).map_err(|_| Refused::Malformed)?;
            if !tcp.verify_checksum(&src, &dst) {
                return Err(Refused::BadChecksum);
            }
            Ok(Inbound::Tcp {
                src: ip.src_addr().into(),
                dst_port: tcp.dst_port(),
                ip_packet: &l3[..total],
            })
        }
        _ => Err(Refused::NotUdpOrIcmpv6),
    }
}

/// The Internet checksum over the IPv6 pseudo-header and `data` (RFC 8200
/// 8.1); 0 when `data` already holds a correct checksum.
pub fn checksum(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        let mut chunks = bytes.chunks_exact(2);
        for c in &mut chunks {
            sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u64::from(u16::from_be_bytes([*last, 0]));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(data.len() as u32).to_be_bytes());
    add(&[0, 0, 0, next_header]);
    add(data);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Addressing of one datagram we send.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub src_mac: Mac,
    /// Filled by neighbor resolution for unicast next hops; callers pass
    /// the multicast MAC for multicast destinations.
    pub dst_mac: Mac,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
}

fn ipv6_frame(r: &Route, next_header: IpProtocol, payload_len: usize) -> Vec<u8> {
    let ip = Ipv6Repr {
        src_addr: r.src,
        dst_addr: r.dst,
        next_header,
        payload_len,
        hop_limit: r.hop_limit,
    };
    let mut buf = vec![0u8; ETHERNET_HEADER_LEN + ip.buffer_len() + payload_len];
    EthernetRepr {
        src_addr: EthernetAddress(r.src_mac),
        dst_addr: EthernetAddress(r.dst_mac),
        ethertype: EthernetProtocol::Ipv6,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    ip.emit(&mut Ipv6Packet::new_unchecked(
        &mut buf[ETHERNET_HEADER_LEN..],
    ));
    buf
}

pub fn udp_frame(r: &Route, src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let udp = UdpRepr { src_port, dst_port };
    let mut buf = ipv6_frame(r, IpProtocol::Udp, udp.header_len() + payload.len());
    let l4 = &mut buf[ETHERNET_HEADER_LEN + 40..];
    udp.emit(
        &mut UdpPacket::new_unchecked(l4),
        &IpAddress::Ipv6(r.src),
        &IpAddress::Ipv6(r.dst),
        payload.len(),
        |p| p.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    buf
}

/// An ICMPv6 message given from its type byte; its checksum field is
/// overwritten with the right value.
pub fn icmpv6_frame(r: &Route, message: &[u8]) -> Vec<u8> {
    let mut buf = ipv6_frame(r, IpProtocol::Icmpv6, message.len());
    let l4 = &mut buf[ETHERNET_HEADER_LEN + 40..];
    l4.copy_from_slice(message);
    if l4.len() >= 4 {
        l4[2..4].fill(0);
        let sum = checksum(r.src, r.dst, 58, l4);
        l4[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    buf
}

/// UDP over IPv4 (DHCPv4 replies, DNS answers to IPv4 hosts).
pub fn udp4_frame(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ports: (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    let udp = UdpRepr {
        src_port: ports.0,
        dst_port: ports.1,
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + payload.len(),
        hop_limit: 64,
    };
    let caps = ChecksumCapabilities::default();
    let mut buf = vec![0u8; ETHERNET_HEADER_LEN + ip.buffer_len() + ip.payload_len];
    EthernetRepr {
        src_addr: EthernetAddress(src_mac),
        dst_addr: EthernetAddress(dst_mac),
        ethertype: EthernetProtocol::Ipv4,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    let l3 = &mut buf[ETHERNET_HEADER_LEN..];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut *l3), &caps);
    udp.emit(
        &mut UdpPacket::new_unchecked(&mut l3[ip.buffer_len()..]),
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        payload.len(),
        |p| p.copy_from_slice(payload),
        &caps,
    );
    buf
}

/// An IP packet built elsewhere (the DNS proxy's TCP stack) in an Ethernet
/// frame; the destination MAC is filled by neighbor resolution.
pub fn ip_frame(src_mac: Mac, packet: &[u8]) -> Option<(IpAddr, Vec<u8>)> {
    let (dst, ethertype) = match packet.first()? >> 4 {
        4 => (
            IpAddr::V4(Ipv4Packet::new_checked(packet).ok()?.dst_addr()),
            EthernetProtocol::Ipv4,
        ),
        6 => (
            IpAddr::V6(Ipv6Packet::new_checked(packet).ok()?.dst_addr()),
            EthernetProtocol::Ipv6,
        ),
        _ => return None,
    };
    let mut buf = vec![0u8; ETHERNET_HEADER_LEN + packet.len()];
    EthernetRepr {
        src_addr: EthernetAddress(src_mac),
        dst_addr: EthernetAddress([0; 6]),
        ethertype,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    buf[ETHERNET_HEADER_LEN..].copy_from_slice(packet);
    Some((dst, buf))
}

/// Ethernet MAC of an IPv6 multicast group (RFC 2464 7).
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
pub const ALL_DHCP_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
pub const DHCP6_CLIENT_PORT: u16 = 546;
pub const DHCP6_SERVER_PORT: u16 = 547;
pub const DNS_PORT: u16 = 53;
pub const DHCP4_SERVER_PORT: u16 = 67;
pub const DHCP4_CLIENT_PORT: u16 = 68;

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> Route {
        Route {
            src_mac: [2, 0, 0, 0, 2, 2],
            dst_mac: multicast_mac(ALL_DHCP_SERVERS),
            src: "fe80::ff:fe00:202".parse().unwrap(),
            dst: ALL_DHCP_SERVERS,
            hop_limit: 1,
        }
    }

    #[test]
    fn udp_round_trips_with_checksum() {
        let f = udp_frame(&route(), 546, 547, b"hello");
        assert_eq!(&f[0..6], &[0x33, 0x33, 0, 1, 0, 2]);
        match classify(&f).unwrap() {
            Inbound::Udp {
                src_port,
                dst_port,
                payload,
                dst,
                ..
            } => {
                assert_eq!(
                    (src_port, dst_port, payload, dst),
                    (546, 547, &b"hello"[..], IpAddr::V6(ALL_DHCP_SERVERS))
                );
            }
            other => panic!("{other:?}"),
        }
        let mut bad = f.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(classify(&bad), Err(Refused::BadChecksum));
        for cut in 0..f.len() {
            assert!(classify(&f[..cut]).is_err());
        }
    }

    #[test]
    fn udp4_round_trips_and_ip_frames_wrap() {
        let f = udp4_frame(
            [2, 0, 0, 0, 2, 1],
            [0xff; 6],
            Ipv4Addr::new(192, 168, 2, 1),
            Ipv4Addr::BROADCAST,
            (67, 68),
            b"offer",
        );
        match classify(&f).unwrap() {
            Inbound::Udp {
                src_port,
                dst_port,
                payload,
                ..
            } => {
                assert_eq!((src_port, dst_port, payload), (67, 68, &b"offer"[..]))
            }
            other => panic!("{other:?}"),
        }
        let (dst, wrapped) = ip_frame([2, 0, 0, 0, 2, 1], &f[14..]).unwrap();
        assert_eq!(dst, IpAddr::V4(Ipv4Addr::BROADCAST));
        assert_eq!(&wrapped[14..], &f[14..]);
        let mut bad = f.clone();
        bad[14 + 10] ^= 1;
        assert_eq!(classify(&bad), Err(Refused::BadChecksum));
        for cut in 0..f.len() {
            assert!(classify(&f[..cut]).is_err());
        }
    }

    #[test]
    fn icmpv6_checksum_agrees_with_smoltcp() {
        // RS from fe80::ff:fe00:202 to ff02::2 with an SLLA option.
        let rs = [133u8, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 2, 2];
        let mut r = route();
        r.dst = ALL_ROUTERS;
        r.dst_mac = multicast_mac(ALL_ROUTERS);
        r.hop_limit = 255;
        let f = icmpv6_frame(&r, &rs);
        match classify(&f).unwrap() {
            Inbound::Icmpv6 {
                message,
                hop_limit,
                src_mac,
                ..
            } => {
                assert_eq!(hop_limit, 255);
                assert_eq!(src_mac, [2, 0, 0, 0, 2, 2]);
                assert_eq!(message[0], 133);
                let pkt = smoltcp::wire::Icmpv6Packet::new_checked(message).unwrap();
                assert!(pkt.verify_checksum(&r.src, &r.dst));
            }
            other => panic!("{other:?}"),
        }
    }
}
