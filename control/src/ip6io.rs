//! IPv6 datagrams the control thread itself sends and receives (RS/RA,
//! DHCPv6, DNS): classifying a punted frame into a checked UDP or ICMPv6
//! message, and framing our messages with correct checksums.
//!
//! The protocol engines (slaac, dhcp6c, dns) work on payloads only; this is
//! the one place that knows Ethernet, IPv6 headers and pseudo-header sums.

use std::net::Ipv6Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv6Packet, Ipv6Repr, UdpPacket, UdpRepr, ETHERNET_HEADER_LEN,
};

use crate::neigh::Mac;

/// A message for the control thread, checksums verified.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    Udp {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
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
    if eth.ethertype() != EthernetProtocol::Ipv6 {
        return Err(Refused::NotUdpOrIcmpv6);
    }
    let src_mac = eth.src_addr().0;
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
                src,
                dst,
                src_port: udp.src_port(),
                dst_port: udp.dst_port(),
                payload: &payload[8..len],
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

/// Ethernet MAC of an IPv6 multicast group (RFC 2464 7).
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
pub const ALL_DHCP_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
pub const DHCP6_CLIENT_PORT: u16 = 546;
pub const DHCP6_SERVER_PORT: u16 = 547;
pub const DNS_PORT: u16 = 53;

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
                    (546, 547, &b"hello"[..], ALL_DHCP_SERVERS)
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
