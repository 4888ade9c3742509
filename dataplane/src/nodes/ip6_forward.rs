//! ip6-forward: transit IPv6 between the LAN /64 and the WAN. Hop limit,
//! egress MTU (Packet Too Big), next-hop MAC from the published tables.

use std::net::{IpAddr, Ipv6Addr};

use crate::graph::{Cx, NodeId, PuntReason};
use crate::tables::Port;
use crate::wire::{write_eth, ETHERTYPE_IPV6, ETH_LEN};

crate::node_errors! {
    pub enum Error {
        HopLimitExceeded => ("hop-limit-exceeded", "hop limit would reach 0 (time exceeded sent)"),
        TooBig => ("too-big", "larger than the egress MTU (packet too big sent)"),
        NoGateway => ("no-gateway", "no WAN default router"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let fib = cx.fib;
    for &i in pkts {
        let m = cx.meta[usize::from(i)];
        let out = fib.port(m.tx);
        let data = cx.data(i);
        let ip_len = data.len() - ETH_LEN;
        if data[ETH_LEN + 7] <= 1 {
            cx.count(Error::HopLimitExceeded.index());
            cx.meta[usize::from(i)].icmp = (3, 0, 0);
            cx.next(i, NodeId::Icmp6Error);
            continue;
        }
        if ip_len > usize::from(out.mtu) {
            cx.count(Error::TooBig.index());
            cx.meta[usize::from(i)].icmp = (2, 0, out.mtu);
            cx.next(i, NodeId::Icmp6Error);
            continue;
        }
        data[ETH_LEN + 7] -= 1;
        let mut d = [0u8; 16];
        d.copy_from_slice(&data[ETH_LEN + 24..ETH_LEN + 40]);
        let (mac, next_hop) = match m.tx {
            // A WAN neighbor in the proxied /64 is on-link: no router.
            Port::Wan if fib.proxied_wan_neighbor(&d) => {
                let dst = Ipv6Addr::from(d);
                (fib.nd_wan.get(&dst).copied(), dst)
            }
            Port::Wan => match fib.gateway {
                Some(gw) => (fib.gateway_mac, gw),
                None => {
                    cx.drop(i, Error::NoGateway.index());
                    continue;
                }
            },
            Port::Lan => {
                let dst = Ipv6Addr::from(d);
                (fib.nd_lan.get(&dst).copied(), dst)
            }
        };
        write_eth(data, &mac.unwrap_or([0; 6]), &out.mac, ETHERTYPE_IPV6);
        match mac {
            Some(_) => {
                if m.tx == Port::Lan {
                    cx.fw.neigh_use.mark_v6(next_hop);
                }
                cx.to_output(i, m.tx)
            }
            None => cx.punt(i, m.tx, PuntReason::NeighborMiss, IpAddr::V6(next_hop)),
        }
    }
}
