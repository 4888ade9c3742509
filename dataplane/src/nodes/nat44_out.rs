//! nat44-out: IPv4 from the LAN onto the shared address (MAP-E NAPT44),
//! in place of ip4-firewall on that path. Each packet's session (the
//! firewall's table, one lookup) carries its translation on its hot line;
//! a new session binds one (endpoint-independent: a LAN socket keeps its
//! port for every destination). The source becomes the shared address
//! and a port of the set (or an echo identifier mapped like one); TCP SYNs
//! get their MSS clamped to `firewall.mss_clamp_v4` (1420 in the tunnel).
//! Then dslite-encap puts it into IPv6 toward the BR, from the CE address
//! (through ip4-fragment first when it is too big for the tunnel, no DF).
//!
//! A later fragment carries no ports: it gets the address only.
//!
//! Hairpinning (RFC 4787 REQ-9, RFC 5382 REQ-8): TCP or UDP to the shared
//! address itself, once its source is translated, goes to nat44-in as if
//! it came back through the BR, so it reaches the LAN endpoint behind the
//! destination port (by its filtering, or a port forward) and sees the
//! sender's external address and port; it never goes to the BR.

use std::net::Ipv4Addr;

use crate::flow::{clamp_mss, flow_of, ipv4_l4, mapped, tcp_view, TCP_SYN};
use crate::graph::{Cx, NodeId};
use crate::nat::bindings::NatProto;
use crate::nat::ports::AllocError;
use crate::nat::rewrite::{rewrite, Side};
use crate::session::{Dir, Invalid, Nat, Request, Track};
use crate::wire::{ETH_LEN, PROTO_ICMP, PROTO_TCP};

crate::node_errors! {
    pub enum Error {
        NoNat => ("no-nat", "no shared IPv4 address and port set yet"),
        Truncated => ("truncated", "upper-layer header truncated"),
        Protocol => ("protocol", "neither TCP, UDP nor ICMP echo: a NAPT has no port to map it by"),
        IcmpType => ("icmp-type", "ICMP from the LAN other than an echo request"),
        TooBig => ("too-big", "does not fit the tunnel MTU with DF set (frag-needed sent)"),
        PortsExhausted => ("ports-exhausted", "every port of the set in use or resting: new flow refused"),
        HostLimit => ("host-limit", "the LAN host holds its limit of ports: new flow refused"),
        HostsFull => ("hosts-full", "the per-host port table is full: new flow refused"),
        TableFull => ("table-full", "session table full of established sessions: new flow refused"),
        TcpNotSyn => ("tcp-not-syn", "TCP segment that may not open a session"),
        TcpBadFlags => ("tcp-bad-flags", "TCP flag combination never valid (SYN+FIN, SYN+RST, none)"),
        TcpOutOfWindow => ("tcp-out-of-window", "TCP RST or segment outside the window"),
        Clamped => ("mss-clamped", "SYNs whose MSS was lowered (not a drop)"),
        Hairpinned => ("hairpinned", "sent to the shared address: turned back to nat44-in (not a drop)"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let fib = cx.fib;
    let (Some(nat), Some(tun)) = (fib.napt.as_deref(), fib.tunnel) else {
        for &i in pkts {
            cx.drop(i, Error::NoNat.index());
        }
        return;
    };
    let ext = nat.external().octets();
    let clamp = fib.firewall.mss_clamp_v4;
    for &i in pkts {
        let now = cx.now_s;
        let local = cx.meta[usize::from(i)].local;
        let (data, fw) = cx.data_fw(i);
        let Some(ip) = data.get_mut(ETH_LEN..) else {
            cx.drop(i, Error::Truncated.index());
            continue;
        };
        // Too big for the tunnel with DF: the error must quote the LAN
        // host's own packet, so it is sent before the translation. (A
        // hairpinned one never enters the tunnel: ip4-rewrite checks it
        // against the LAN MTU.)
        let to_tunnel = ip.get(16..20) != Some(&ext[..]);
        if ip.len() > usize::from(tun.mtu) && ip[6] & 0x40 != 0 && !local && to_tunnel {
            cx.count(Error::TooBig.index());
            cx.meta[usize::from(i)].icmp = (3, 4, tun.mtu);
            cx.next(i, NodeId::Icmp4Error);
            continue;
        }
        // Too big without DF: cut into IPv4 fragments before the tunnel,
        // since a BR may not reassemble outer IPv6 fragments.
        let encap = if ip.len() > usize::from(tun.mtu) && ip[6] & 0x40 == 0 {
            NodeId::Ip4Fragment
        } else {
            NodeId::DsliteEncap
        };
        let l4 = ipv4_l4(ip);
        if l4.frag.is_some_and(|f| !f.is_first()) {
            // The far end reassembles by (source, destination, id,
            // protocol): the shared source is all it needs.
            let next = if to_tunnel { encap } else { NodeId::Nat44In };
            match rewrite(ip, &l4, Side::Src, ext, 0) {
                Ok(()) => cx.next(i, next),
                Err(_) => cx.drop(i, Error::Truncated.index()),
            }
            continue;
        }
        let Some(proto) = NatProto::of(l4.proto) else {
            cx.drop(i, Error::Protocol.index());
            continue;
        };
        let up = &ip[l4.off.min(ip.len())..];
        if l4.proto == PROTO_ICMP && up.first() != Some(&8) {
            let e = if up.is_empty() {
                Error::Truncated
            } else {
                Error::IcmpType
            };
            cx.drop(i, e.index());
            continue;
        }
        let (src, dst) = (mapped(&ip[12..16]), mapped(&ip[16..20]));
        let Some((key, seg)) = flow_of(src, dst, &l4, up, true) else {
            cx.drop(i, Error::Truncated.index());
            continue;
        };
        let int = (Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]), key.int_port);
        let remote = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
        let req = Request {
            key,
            seg,
            dir: Dir::Out,
            bytes: ip.len() as u32,
            create: true,
        };
        let mut refused = None;
        let mut bind = || match nat.bind(proto, int, now, nat.hint(int, remote)) {
            Ok(port) => Some(Nat {
                port,
                addr: nat.id(),
            }),
            Err(e) => {
                refused = Some(e);
                None
            }
        };
        let (track, got) = fw.sessions.track_nat(&req, now, &mut bind);
        let why = match track {
            Track::Existing(_) | Track::Created(_) => None,
            Track::NotFound | Track::Refused => Some(Error::TableFull),
            Track::Invalid(Invalid::NotSyn) => Some(Error::TcpNotSyn),
            Track::Invalid(Invalid::BadFlags) => Some(Error::TcpBadFlags),
            Track::Invalid(_) => Some(Error::TcpOutOfWindow),
        };
        let why = match (refused, why, got) {
            (Some(AllocError::Exhausted), ..) => Some(Error::PortsExhausted),
            (Some(AllocError::HostLimit), ..) => Some(Error::HostLimit),
            (Some(AllocError::HostsFull), ..) => Some(Error::HostsFull),
            (None, Some(e), _) => Some(e),
            // A session of another bindings set (before a prefix change)
            // whose new binding failed: nothing to send it from.
            (None, None, None) => Some(Error::PortsExhausted),
            (None, None, Some(_)) => None,
        };
        if let Some(e) = why {
            cx.drop(i, e.index());
            continue;
        }
        let Some(n) = got else { continue };
        if rewrite(ip, &l4, Side::Src, ext, n.port).is_err() {
            cx.drop(i, Error::Truncated.index());
            continue;
        }
        let hairpin = ip[16..20] == ext && proto != NatProto::Icmp;
        if let Some(mss) = clamp {
            if clamp_syn(ip, l4.off, l4.proto, mss) {
                cx.count(Error::Clamped.index());
            }
        }
        if hairpin {
            cx.count(Error::Hairpinned.index());
            cx.next(i, NodeId::Nat44In);
            continue;
        }
        cx.next(i, encap);
    }
}

/// Clamps the MSS of a TCP SYN (or SYN-ACK) starting at `off` of `ip`.
pub(crate) fn clamp_syn(ip: &mut [u8], off: usize, proto: u8, mss: u16) -> bool {
    if proto != PROTO_TCP || ip.len() < off {
        return false;
    }
    let tcp = &mut ip[off..];
    match tcp_view(tcp) {
        Some(v) if v.flags & TCP_SYN != 0 => clamp_mss(tcp, &v, mss),
        _ => false,
    }
}
