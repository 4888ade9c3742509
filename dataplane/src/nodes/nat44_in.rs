//! nat44-in: IPv4 the tunnel brought for the shared address back to the
//! LAN host (MAP-E NAPT44), in place of ip4-firewall on that path. The
//! destination port (or echo identifier) names the mapping, whose owner is
//! read without a lock; the packet then passes only as part of a session
//! of that LAN endpoint with this very remote address and port
//! (address-and-port-dependent filtering, RFC 4787 REQ-8), which it
//! refreshes. ICMP errors are translated back through the packet they
//! quote, if that packet belongs to a session (looked up, not refreshed).
//! A port forward's port welcomes new flows: they open a session of the
//! forward's LAN endpoint carrying the forwarded port, so its replies leave
//! from that port. Then ip4-rewrite sends it on the LAN.
//!
//! Fragments: a first fragment is translated like a whole datagram and its
//! translation remembered (`nat::frags`, per worker); later fragments,
//! handled after the rest of the vector so one that overtook its first
//! fragment there still finds it, only get the LAN host's address.

use crate::flow::{flow_of, ipv4_l4, mapped};
use crate::graph::{Cx, NodeId, MAX_VECTOR};
use crate::nat::bindings::NatProto;
use crate::nat::frags::FragKey;
use crate::nat::rewrite::{quoted, rewrite, untranslate_error, Side};
use crate::nodes::nat44_out::clamp_syn;
use crate::session::{Dir, Invalid, Key, Nat, Request, Track};
use crate::wire::{ETH_LEN, PROTO_ICMP};

crate::node_errors! {
    pub enum Error {
        NoNat => ("no-nat", "no shared IPv4 address and port set yet"),
        Truncated => ("truncated", "upper-layer header truncated"),
        Protocol => ("protocol", "neither TCP, UDP nor ICMP: nothing maps it to a LAN host"),
        Fragment => ("fragment", "later fragment whose first fragment did not pass (or came too long before, or was evicted)"),
        IcmpType => ("icmp-type", "ICMP other than echo reply, unreachable, time exceeded, parameter problem"),
        NoMapping => ("no-mapping", "destination port (or echo identifier) mapped to no LAN host"),
        Filtered => ("filtered", "the LAN endpoint has no session with this remote address and port"),
        Unrelated => ("icmp-unrelated", "ICMP error quoting no session of ours"),
        TcpNotSyn => ("tcp-not-syn", "TCP segment that may not open a session"),
        TcpBadFlags => ("tcp-bad-flags", "TCP flag combination never valid (SYN+FIN, SYN+RST, none)"),
        TcpOutOfWindow => ("tcp-out-of-window", "TCP RST or segment outside the window"),
        Clamped => ("mss-clamped", "SYN-ACKs whose MSS was lowered (not a drop)"),
        Forwarded => ("port-forwarded", "new inbound flows a port forward sent to its LAN host (not a drop)"),
        FragEvicted => ("frag-evicted", "fragmented datagrams forgotten for room: their later fragments are dropped (not a drop)"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let fib = cx.fib;
    let Some(nat) = fib.napt.as_deref() else {
        for &i in pkts {
            cx.drop(i, Error::NoNat.index());
        }
        return;
    };
    let clamp = fib.firewall.mss_clamp_v4;
    let mut later = [0u16; MAX_VECTOR];
    let mut n_later = 0;
    for &i in pkts {
        let now = cx.now_s;
        let (data, fw) = cx.data_fw(i);
        let Some(ip) = data.get_mut(ETH_LEN..) else {
            cx.drop(i, Error::Truncated.index());
            continue;
        };
        let l4 = ipv4_l4(ip);
        if l4.frag.is_some_and(|f| !f.is_first()) {
            // `pkts` is at most a vector.
            if let Some(slot) = later.get_mut(n_later) {
                *slot = i;
                n_later += 1;
            } else {
                cx.drop(i, Error::Fragment.index());
            }
            continue;
        }
        let frag_key = l4.frag.and_then(|_| FragKey::of(ip));
        let up = &ip[l4.off.min(ip.len())..];
        if l4.proto == PROTO_ICMP {
            match up.first() {
                None => {
                    cx.drop(i, Error::Truncated.index());
                    continue;
                }
                Some(0) => {}
                Some(3 | 11 | 12) => {
                    let res = error_back(nat, fw, ip, now);
                    match res {
                        Ok(()) => cx.next(i, NodeId::Ip4Rewrite),
                        Err(e) => cx.drop(i, e.index()),
                    }
                    continue;
                }
                Some(_) => {
                    cx.drop(i, Error::IcmpType.index());
                    continue;
                }
            }
        }
        let Some(proto) = NatProto::of(l4.proto) else {
            cx.drop(i, Error::Protocol.index());
            continue;
        };
        let (src, dst) = (mapped(&ip[12..16]), mapped(&ip[16..20]));
        let Some((mut key, seg)) = flow_of(src, dst, &l4, up, false) else {
            cx.drop(i, Error::Truncated.index());
            continue;
        };
        // The key holds the external port so far: its owner is the key's
        // LAN side.
        let ext_port = key.int_port;
        let Some(((addr, port), forward)) = nat.inbound(proto, ext_port) else {
            cx.drop(i, Error::NoMapping.index());
            continue;
        };
        key.int_addr = mapped(&addr.octets());
        key.int_port = port;
        let req = Request {
            key,
            seg,
            dir: Dir::In,
            bytes: ip.len() as u32,
            create: forward,
        };
        let mut bind = || {
            nat.bind_forward(proto, ext_port).map(|port| Nat {
                port,
                addr: nat.id(),
            })
        };
        let (track, _) = fw.sessions.track_nat(&req, now, &mut bind);
        let forwarded = forward && matches!(track, Track::Created(_));
        let why = match track {
            Track::Existing(_) | Track::Created(_) => None,
            Track::NotFound | Track::Refused => Some(Error::Filtered),
            Track::Invalid(Invalid::NotSyn) => Some(Error::TcpNotSyn),
            Track::Invalid(Invalid::BadFlags) => Some(Error::TcpBadFlags),
            Track::Invalid(_) => Some(Error::TcpOutOfWindow),
        };
        if let Some(e) = why {
            cx.drop(i, e.index());
            continue;
        }
        if rewrite(ip, &l4, Side::Dst, addr.octets(), port).is_err() {
            cx.drop(i, Error::Truncated.index());
            continue;
        }
        let mut evicted = false;
        if let Some(k) = frag_key {
            let before = fw.nat_frags.evicted;
            fw.nat_frags.insert(&k, addr.octets(), now);
            evicted = fw.nat_frags.evicted != before;
        }
        if let Some(mss) = clamp {
            if clamp_syn(ip, l4.off, l4.proto, mss) {
                cx.count(Error::Clamped.index());
            }
        }
        if forwarded {
            cx.count(Error::Forwarded.index());
        }
        if evicted {
            cx.count(Error::FragEvicted.index());
        }
        cx.next(i, NodeId::Ip4Rewrite);
    }
    for &i in &later[..n_later] {
        let now = cx.now_s;
        let (data, fw) = cx.data_fw(i);
        let ip = &mut data[ETH_LEN..];
        let l4 = ipv4_l4(ip);
        let to = FragKey::of(ip).and_then(|k| fw.nat_frags.lookup(&k, now));
        // A later fragment has no ports: the address is all it changes.
        match to.map(|to| rewrite(ip, &l4, Side::Dst, to, 0)) {
            Some(Ok(())) => cx.next(i, NodeId::Ip4Rewrite),
            Some(Err(_)) => cx.drop(i, Error::Truncated.index()),
            None => cx.drop(i, Error::Fragment.index()),
        }
    }
}

/// An ICMP error for the shared address, translated back for the LAN host
/// whose packet it quotes, if that packet is of a live session.
fn error_back(
    nat: &crate::nat::bindings::Bindings,
    fw: &crate::firewall::WorkerFirewall,
    ip: &mut [u8],
    now: u32,
) -> Result<(), Error> {
    let q = quoted(ip).map_err(|_| Error::Unrelated)?;
    if q.src != nat.external().octets() {
        return Err(Error::Unrelated);
    }
    let proto = NatProto::of(q.proto).ok_or(Error::Unrelated)?;
    let (addr, port) = nat.internal(proto, q.src_port).ok_or(Error::Unrelated)?;
    let key = Key {
        int_addr: mapped(&addr.octets()),
        ext_addr: mapped(&q.dst),
        int_port: port,
        // An echo session of a LAN host's ping has 0 here (flow_of).
        ext_port: if q.proto == PROTO_ICMP { 0 } else { q.dst_port },
        proto: q.proto,
    };
    fw.sessions.lookup(&key, now).ok_or(Error::Unrelated)?;
    untranslate_error(ip, addr.octets(), port).map_err(|_| Error::Unrelated)
}
