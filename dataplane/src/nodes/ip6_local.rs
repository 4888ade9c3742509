//! ip6-local: the policy for IPv6 addressed to the router itself (the
//! user's ip6tables INPUT chain, RFC 4890 section 4.4): everything from the
//! LAN; from the WAN only DHCPv6 replies, DNS answers (the control thread's
//! resolvers accept only answers to their pending queries, which is the
//! "established" check), TCP answering the router's own connections (ACK
//! set, to an ephemeral port: its HTTP client takes only segments of its
//! open connection, the same check), and the ICMPv6 the router needs. ND must come with
//! hop limit 255 and MLD from a link-local source on either side; echo
//! requests are limited per source. What passes is punted.

use std::net::{IpAddr, Ipv6Addr};

use crate::flow::ipv6_l4;
use crate::graph::Cx;
use crate::police::{self, PuntClass};
use crate::tables::Port;
use crate::wire::{be16, ETH_LEN, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

crate::node_errors! {
    pub enum Error {
        WanNotAllowed => ("wan-not-allowed", "from the WAN to the router, not allowed by the policy"),
        NdHopLimit => ("nd-hop-limit", "ND message with hop limit below 255 (RFC 4861)"),
        MldNotLinkLocal => ("mld-not-link-local", "MLD from a non-link-local source"),
        EchoRate => ("echo-rate", "echo requests from one source above the per-second limit"),
        BadHeader => ("bad-header", "extension header chain truncated or too long"),
    }
}

const DHCPV6_CLIENT_PORT: u16 = 546;
const DNS_PORT: u16 = 53;
/// The router's own TCP connections (`ipoe_proto::http::fetch`) use source
/// ports from here up (RFC 6335's dynamic range).
const EPHEMERAL_FIRST: u16 = 49152;
const TCP_ACK: u8 = 0x10;

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    for &i in pkts {
        let rx = cx.meta[usize::from(i)].rx;
        let echo_limit = cx.fib.firewall.echo_limit;
        let fib = cx.fib;
        // Every frame here is punted or dropped: one load for the reserve.
        let xid = cx.police.reserve.dhcp6_xid();
        let data = cx.data(i);
        let ip = &data[ETH_LEN..];
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        src.copy_from_slice(&ip[8..24]);
        dst.copy_from_slice(&ip[24..40]);
        let hop_limit = ip[7];
        let l4 = match ipv6_l4(ip) {
            Ok(l4) => l4,
            Err(_) => {
                cx.drop(i, Error::BadHeader.index());
                continue;
            }
        };
        let first = l4.frag.map(|f| f.is_first()).unwrap_or(true);
        let up = &ip[l4.off.min(ip.len())..];
        let (sport, dport) = if up.len() >= 4 && l4.proto != PROTO_ICMPV6 {
            (be16(up, 0), be16(up, 2))
        } else {
            (0, 0)
        };
        let flow = (src, dst, l4.proto, sport, dport);
        let link_local_src = src[0] == 0xfe && src[1] & 0xc0 == 0x80;
        // The punt budget: from what was parsed above, for what passes.
        let class = if l4.proto == PROTO_ICMPV6 && first && up.len() >= 4 {
            police::icmpv6_class(fib, rx, data, &src, &dst, up)
        } else if l4.frag.is_none() {
            police::ipv6_l4_class(xid, rx, l4.proto, sport, dport, up.get(8..).unwrap_or(&[]))
        } else {
            PuntClass::Other
        };
        let verdict: Result<(), Error> = if l4.proto == PROTO_ICMPV6 && first && up.len() >= 4 {
            match up[0] {
                1..=4 => Ok(()),
                128 => {
                    if echo_limit == 0 || cx.fw.echo.allow(&src, echo_limit, cx.now_ns) {
                        Ok(())
                    } else {
                        Err(Error::EchoRate)
                    }
                }
                129 => Ok(()),
                133..=137 | 141 | 142 | 148 | 149 => {
                    if hop_limit == 255 {
                        Ok(())
                    } else {
                        Err(Error::NdHopLimit)
                    }
                }
                130..=132 | 143 | 151..=153 => {
                    if link_local_src {
                        Ok(())
                    } else {
                        Err(Error::MldNotLinkLocal)
                    }
                }
                _ if rx == Port::Lan => Ok(()),
                _ => Err(Error::WanNotAllowed),
            }
        } else if rx == Port::Lan
            || (l4.proto == PROTO_UDP
                && l4.frag.is_none()
                && (dport == DHCPV6_CLIENT_PORT || sport == DNS_PORT))
            || (l4.proto == PROTO_TCP
                && l4.frag.is_none()
                && dport >= EPHEMERAL_FIRST
                && up.get(13).is_some_and(|f| f & TCP_ACK != 0))
        {
            Ok(())
        } else {
            Err(Error::WanNotAllowed)
        };
        match verdict {
            Ok(()) => cx.punt_local(i, rx, class, IpAddr::V6(Ipv6Addr::from(dst))),
            Err(e) => cx.drop_logged(i, e.index(), flow),
        }
    }
}
