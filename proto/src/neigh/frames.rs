//! Building the frames the engine transmits, plus the small address
//! helpers smoltcp keeps crate-private.
//!
//! Every builder sizes its own buffer from the `Repr` it emits, so the
//! `new_unchecked` wrappers below never see a short buffer.

use std::net::{Ipv4Addr, Ipv6Addr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet,
    Ipv4Repr, Ipv6Packet, Ipv6Repr, NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
    ETHERNET_HEADER_LEN,
};

use super::Mac;

pub(super) const BROADCAST_MAC: Mac = [0xff; 6];
/// Hop limit of NDP messages (RFC 4861 checks it to prove on-link origin).
pub(crate) const NDP_HOP_LIMIT: u8 = 255;
/// TTL / hop limit of the echo replies we originate.
pub(super) const ECHO_HOP_LIMIT: u8 = 64;
/// Minimum Ethernet frame without FCS. Some NICs do not pad short frames
/// sent through AF_XDP, so ARP replies (42 bytes) are padded here.
const MIN_FRAME_LEN: usize = 60;

/// True for multicast and broadcast MACs (I/G bit set).
pub(crate) fn is_group_mac(mac: Mac) -> bool {
    mac[0] & 0x01 != 0
}

/// A MAC usable as a neighbor's link-layer address.
pub(crate) fn is_unicast_mac(mac: Mac) -> bool {
    !is_group_mac(mac) && mac != [0; 6]
}

/// Solicited-node multicast group of `addr` (RFC 4291 2.7.1).
pub(crate) fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

pub(crate) fn is_solicited_node(addr: Ipv6Addr) -> bool {
    addr.octets()[..13] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff]
}

/// Ethernet MAC an IPv6 multicast group maps to (RFC 2464 7).
pub(crate) fn ipv6_multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// A 6-byte link-layer address from an NDP option; anything else is invalid
/// on Ethernet.
pub(super) fn ndp_lladdr(raw: RawHardwareAddress) -> Option<Mac> {
    raw.as_bytes().try_into().ok()
}

/// Buffer of exactly an Ethernet header plus `payload_len` bytes, header
/// filled in. It is padded only by [`padded`] once the payload is emitted,
/// because ICMP checksums cover the whole buffer they are emitted into.
fn ethernet(src: Mac, dst: Mac, ethertype: EthernetProtocol, payload_len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; ETHERNET_HEADER_LEN + payload_len];
    EthernetRepr {
        src_addr: EthernetAddress(src),
        dst_addr: EthernetAddress(dst),
        ethertype,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    buf
}

fn padded(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < MIN_FRAME_LEN {
        frame.resize(MIN_FRAME_LEN, 0);
    }
    frame
}

pub(super) struct ArpFields {
    pub op: ArpOperation,
    pub sha: Mac,
    pub spa: Ipv4Addr,
    pub tha: Mac,
    pub tpa: Ipv4Addr,
}

pub(super) fn arp(eth_dst: Mac, f: ArpFields) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: f.op,
        source_hardware_addr: EthernetAddress(f.sha),
        source_protocol_addr: f.spa,
        target_hardware_addr: EthernetAddress(f.tha),
        target_protocol_addr: f.tpa,
    };
    let mut buf = ethernet(f.sha, eth_dst, EthernetProtocol::Arp, repr.buffer_len());
    repr.emit(&mut ArpPacket::new_unchecked(
        &mut buf[ETHERNET_HEADER_LEN..],
    ));
    padded(buf)
}

/// IPv6 + ICMPv6 frame with a correct checksum.
pub(crate) struct Icmpv6Frame {
    pub src_mac: Mac,
    pub dst_mac: Mac,
    pub src_ip: Ipv6Addr,
    pub dst_ip: Ipv6Addr,
    pub hop_limit: u8,
}

impl Icmpv6Frame {
    pub fn build(&self, icmp: &Icmpv6Repr<'_>) -> Vec<u8> {
        let ip = Ipv6Repr {
            src_addr: self.src_ip,
            dst_addr: self.dst_ip,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp.buffer_len(),
            hop_limit: self.hop_limit,
        };
        let mut buf = ethernet(
            self.src_mac,
            self.dst_mac,
            EthernetProtocol::Ipv6,
            ip.buffer_len() + icmp.buffer_len(),
        );
        let l3 = &mut buf[ETHERNET_HEADER_LEN..];
        ip.emit(&mut Ipv6Packet::new_unchecked(&mut *l3));
        icmp.emit(
            &self.src_ip,
            &self.dst_ip,
            &mut Icmpv6Packet::new_unchecked(&mut l3[ip.buffer_len()..]),
            &ChecksumCapabilities::default(),
        );
        padded(buf)
    }
}

/// Neighbor Solicitation. `src_ip` is `::` for DAD, in which case the
/// source link-layer option must be absent (RFC 4861 7.1.1).
pub(crate) fn neighbor_solicit(
    our_mac: Mac,
    src_ip: Ipv6Addr,
    dst_mac: Mac,
    dst_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> Vec<u8> {
    let lladdr = (!src_ip.is_unspecified()).then(|| RawHardwareAddress::from_bytes(&our_mac));
    Icmpv6Frame {
        src_mac: our_mac,
        dst_mac,
        src_ip,
        dst_ip,
        hop_limit: NDP_HOP_LIMIT,
    }
    .build(&Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr,
    }))
}

pub(crate) fn neighbor_advert(
    frame: Icmpv6Frame,
    flags: NdiscNeighborFlags,
    target: Ipv6Addr,
) -> Vec<u8> {
    let lladdr = Some(RawHardwareAddress::from_bytes(&frame.src_mac));
    frame.build(&Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        flags,
        target_addr: target,
        lladdr,
    }))
}

pub(super) fn echo6_reply(frame: Icmpv6Frame, ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    frame.build(&Icmpv6Repr::EchoReply {
        ident,
        seq_no,
        data,
    })
}

pub(super) struct Echo4 {
    pub src_mac: Mac,
    pub dst_mac: Mac,
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
}

pub(super) fn echo4_reply(e: Echo4, ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    let icmp = Icmpv4Repr::EchoReply {
        ident,
        seq_no,
        data,
    };
    let ip = Ipv4Repr {
        src_addr: e.src_ip,
        dst_addr: e.dst_ip,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: ECHO_HOP_LIMIT,
    };
    let caps = ChecksumCapabilities::default();
    let mut buf = ethernet(
        e.src_mac,
        e.dst_mac,
        EthernetProtocol::Ipv4,
        ip.buffer_len() + icmp.buffer_len(),
    );
    let l3 = &mut buf[ETHERNET_HEADER_LEN..];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut *l3), &caps);
    icmp.emit(
        &mut Icmpv4Packet::new_unchecked(&mut l3[ip.buffer_len()..]),
        &caps,
    );
    padded(buf)
}
