//! ip4-rewrite: the last step of a decapsulated IPv4 packet toward a LAN
//! host, after ip4-firewall admitted it: TTL (time exceeded if it would
//! reach 0), the LAN MTU (fragmentation needed for DF packets, two
//! fragments otherwise), then the host's MAC from the ARP table (a miss is
//! punted so the control thread resolves it).

use std::net::{IpAddr, Ipv4Addr};

use crate::frag4::{self, Refused};
use crate::graph::{Cx, NodeId, PuntReason};
use crate::tables::Port;
use crate::wire::{be16, checksum_adjust, put16, write_eth, ETHERTYPE_IPV4, ETH_LEN};

crate::node_errors! {
    pub enum Error {
        TtlExpired => ("ttl-expired", "TTL would reach 0 (time exceeded sent for first fragments)"),
        TooBig => ("too-big", "larger than the LAN MTU with DF set (frag-needed sent)"),
        FragOptions => ("frag-options", "larger than the LAN MTU, no DF, IPv4 options (not fragmented)"),
        NoBuffer => ("no-buffer", "no spare frame for the second fragment"),
        Fragmented => ("fragmented", "packets sent as two fragments at the LAN MTU (not a drop)"),
    }
}

const FLAG_DF: u16 = 0x4000;
const OFFSET_MASK: u16 = 0x1fff;

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let fib = cx.fib;
    let lan_mac = fib.lan.mac;
    let lan_mtu = usize::from(fib.lan.mtu);
    for &i in pkts {
        let len = cx.meta[usize::from(i)].len as usize - ETH_LEN;
        let frame = cx.data(i);
        let ip = &mut frame[ETH_LEN..];
        if ip[8] <= 1 {
            // No error about a fragment other than the first (RFC 1812 4.3.2.7).
            if be16(ip, 6) & OFFSET_MASK == 0 {
                cx.count(Error::TtlExpired.index());
                cx.meta[usize::from(i)].icmp = (11, 0, 0);
                cx.next(i, NodeId::Icmp4Error);
            } else {
                cx.drop(i, Error::TtlExpired.index());
            }
            continue;
        }
        // The tunnel MTU and the LAN MTU are independent (issue 15 m3): a
        // DF packet that does not fit gets frag-needed with the LAN MTU
        // (RFC 1191; ip4-icmp-error stays silent about later fragments).
        let too_big = len > lan_mtu;
        if too_big && be16(ip, 6) & FLAG_DF != 0 {
            cx.count(Error::TooBig.index());
            cx.meta[usize::from(i)].icmp = (3, 4, lan_mtu as u16);
            cx.next(i, NodeId::Icmp4Error);
            continue;
        }
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let old = be16(ip, 8);
        ip[8] -= 1;
        let check = checksum_adjust(be16(ip, 10), old, be16(ip, 8));
        put16(ip, 10, check);
        let mac = fib.arp.get(&dst).copied();
        write_eth(frame, &mac.unwrap_or([0; 6]), &lan_mac, ETHERTYPE_IPV4);
        let second = if too_big {
            // Two always suffice: the LAN MTU is at least 1280 and a
            // received packet at most 1778 bytes.
            match frag4::split(cx, i, lan_mtu, Some(Error::NoBuffer.index())) {
                Ok(j) => {
                    if j.is_some() {
                        cx.count(Error::Fragmented.index());
                    }
                    j
                }
                Err(e) => {
                    let e = match e {
                        Refused::Options => Error::FragOptions,
                        Refused::TooBig => Error::TooBig,
                        Refused::NoFrame => Error::NoBuffer,
                    };
                    cx.drop(i, e.index());
                    continue;
                }
            }
        } else {
            None
        };
        for k in std::iter::once(i).chain(second) {
            match mac {
                Some(_) => {
                    cx.fw.neigh_use.mark_v4(dst);
                    cx.to_output(k, Port::Lan)
                }
                None => cx.punt(k, Port::Lan, PuntReason::NeighborMiss, IpAddr::V4(dst)),
            }
        }
    }
}
