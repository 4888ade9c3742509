//! ip4-rewrite: the last step of a decapsulated IPv4 packet toward a LAN
//! host, after ip4-firewall admitted it: TTL (time exceeded if it would
//! reach 0), then the host's MAC from the ARP table (a miss is punted so
//! the control thread resolves it).

use std::net::{IpAddr, Ipv4Addr};

use crate::graph::{Cx, NodeId, PuntReason};
use crate::tables::Port;
use crate::wire::{be16, checksum_adjust, put16, write_eth, ETHERTYPE_IPV4, ETH_LEN};

crate::node_errors! {
    pub enum Error {
        TtlExpired => ("ttl-expired", "TTL would reach 0 (time exceeded sent for first fragments)"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let fib = cx.fib;
    let lan_mac = fib.lan.mac;
    for &i in pkts {
        let frame = cx.data(i);
        let ip = &mut frame[ETH_LEN..];
        if ip[8] <= 1 {
            // No error about a fragment other than the first (RFC 1812 4.3.2.7).
            if be16(ip, 6) & 0x1fff == 0 {
                cx.count(Error::TtlExpired.index());
                cx.meta[usize::from(i)].icmp = (11, 0, 0);
                cx.next(i, NodeId::Icmp4Error);
            } else {
                cx.drop(i, Error::TtlExpired.index());
            }
            continue;
        }
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let old = be16(ip, 8);
        ip[8] -= 1;
        let check = checksum_adjust(be16(ip, 10), old, be16(ip, 8));
        put16(ip, 10, check);
        let mac = fib.arp.get(&dst).copied();
        write_eth(frame, &mac.unwrap_or([0; 6]), &lan_mac, ETHERTYPE_IPV4);
        match mac {
            Some(_) => {
                cx.fw.neigh_use.mark_v4(dst);
                cx.to_output(i, Port::Lan)
            }
            None => cx.punt(i, Port::Lan, PuntReason::NeighborMiss, IpAddr::V4(dst)),
        }
    }
}
