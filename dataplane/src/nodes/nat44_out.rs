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
//! Like ip4-firewall, the vector goes through in chunks: parse, one
//! `SessionTable::track_nat_batch` for the chunk (new sessions bind in
//! it), then translate and send on in order.
//!
//! Hairpinning (RFC 4787 REQ-9, RFC 5382 REQ-8): TCP or UDP to the shared
//! address itself, once its source is translated, goes to nat44-in as if
//! it came back through the BR, so it reaches the LAN endpoint behind the
//! destination port (by its filtering, or a port forward) and sees the
//! sender's external address and port; it never goes to the BR.

use std::net::Ipv4Addr;

use crate::flow::{clamp_mss, flow_into, ipv4_l4, mapped, tcp_view, L4, TCP_SYN};
use crate::graph::{Cx, NodeId};
use crate::nat::bindings::NatProto;
use crate::nat::ports::AllocError;
use crate::nat::rewrite::{rewrite, Side};
use crate::session::{Dir, Invalid, Nat, Request, Track, CHUNK};
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
    let id = nat.id();
    let clamp = fib.firewall.mss_clamp_v4;
    // Per-packet records of a chunk, written in place (no allocation):
    // what `prepare` decided, and for the tracked ones their request and
    // what `finish` needs after the session lookup.
    let mut steps = [Step::Dropped; CHUNK];
    let mut reqs = [Request::EMPTY; CHUNK];
    let mut afters = [After::EMPTY; CHUNK];
    let mut tracks = [(Track::NotFound, None); CHUNK];
    for chunk in pkts.chunks(CHUNK) {
        let mut n = 0;
        for (step, &i) in steps.iter_mut().zip(chunk) {
            let slots = (&mut reqs[n.min(CHUNK - 1)], &mut afters[n.min(CHUNK - 1)]);
            *step = match prepare(cx, i, ext, tun.mtu, slots) {
                Ok(Step::Track(_)) => {
                    n += 1;
                    Step::Track(n as u8 - 1)
                }
                Ok(s) => s,
                // A drop has no order to keep: now.
                Err(e) => {
                    cx.drop(i, e.index());
                    Step::Dropped
                }
            };
        }
        // New sessions bind under the session lock (see `track_nat`);
        // why a bind failed waits beside its request.
        let now = cx.now_s;
        let mut refused = [None; CHUNK];
        let bind = |j: usize| {
            let k = &reqs[j].key;
            let a = &k.int_addr[12..16];
            let int = (Ipv4Addr::new(a[0], a[1], a[2], a[3]), k.int_port);
            let remote = u32::from_be_bytes([
                k.ext_addr[12],
                k.ext_addr[13],
                k.ext_addr[14],
                k.ext_addr[15],
            ]);
            match nat.bind(afters[j].proto, int, now, nat.hint(int, remote)) {
                Ok(port) => Some(Nat { port, addr: id }),
                Err(e) => {
                    refused[j] = Some(e);
                    None
                }
            }
        };
        let sessions = &cx.fw.sessions;
        sessions.track_nat_batch(&reqs[..n], now, bind, &mut tracks[..n]);
        for (step, &i) in steps.iter().zip(chunk) {
            match *step {
                Step::Dropped => {}
                Step::Next(node) => cx.next(i, node),
                Step::Track(k) => {
                    let k = usize::from(k);
                    match finish(cx, i, tracks[k], refused[k], &afters[k], ext, clamp) {
                        Ok(node) => cx.next(i, node),
                        Err(e) => cx.drop(i, e.index()),
                    }
                }
            }
        }
    }
}

/// A packet of a chunk after `prepare`.
#[derive(Clone, Copy)]
enum Step {
    Dropped,
    /// Done without a session: sent on in order in the last pass.
    Next(NodeId),
    /// Its request and `After` are at this index.
    Track(u8),
}

/// What a tracked packet needs after its session lookup.
#[derive(Clone, Copy)]
struct After {
    l4: L4,
    proto: NatProto,
    /// Where it goes into the tunnel (straight, or cut first).
    encap: NodeId,
}

impl After {
    const EMPTY: After = After {
        l4: L4 {
            proto: 0,
            off: 0,
            frag: None,
            rh0: false,
        },
        proto: NatProto::Udp,
        encap: NodeId::DsliteEncap,
    };
}

/// Everything before the session lookup. A packet that needs one gets its
/// request and `After` written to the caller's slots (`Step::Track`; the
/// caller numbers it).
fn prepare(
    cx: &mut Cx,
    i: u16,
    ext: [u8; 4],
    mtu: u16,
    (req, after): (&mut Request, &mut After),
) -> Result<Step, Error> {
    let local = cx.meta[usize::from(i)].local;
    let Some(ip) = cx.data(i).get_mut(ETH_LEN..) else {
        return Err(Error::Truncated);
    };
    // Too big for the tunnel with DF: the error must quote the LAN
    // host's own packet, so it is sent before the translation. (A
    // hairpinned one never enters the tunnel: ip4-rewrite checks it
    // against the LAN MTU.)
    let to_tunnel = ip.get(16..20) != Some(&ext[..]);
    let big = ip.len() > usize::from(mtu);
    if big && ip[6] & 0x40 != 0 && !local && to_tunnel {
        cx.count(Error::TooBig.index());
        cx.meta[usize::from(i)].icmp = (3, 4, mtu);
        return Ok(Step::Next(NodeId::Icmp4Error));
    }
    // Too big without DF: cut into IPv4 fragments before the tunnel,
    // since a BR may not reassemble outer IPv6 fragments.
    let encap = if big && ip[6] & 0x40 == 0 {
        NodeId::Ip4Fragment
    } else {
        NodeId::DsliteEncap
    };
    let l4 = ipv4_l4(ip);
    if l4.frag.is_some_and(|f| !f.is_first()) {
        // The far end reassembles by (source, destination, id,
        // protocol): the shared source is all it needs.
        let next = if to_tunnel { encap } else { NodeId::Nat44In };
        return match rewrite(ip, &l4, Side::Src, ext, 0) {
            Ok(()) => Ok(Step::Next(next)),
            Err(_) => Err(Error::Truncated),
        };
    }
    let proto = NatProto::of(l4.proto).ok_or(Error::Protocol)?;
    let up = &ip[l4.off.min(ip.len())..];
    if l4.proto == PROTO_ICMP && up.first() != Some(&8) {
        return Err(if up.is_empty() {
            Error::Truncated
        } else {
            Error::IcmpType
        });
    }
    let (src, dst) = (mapped(&ip[12..16]), mapped(&ip[16..20]));
    if !flow_into(src, dst, &l4, up, true, (&mut req.key, &mut req.seg)) {
        return Err(Error::Truncated);
    }
    req.dir = Dir::Out;
    req.bytes = ip.len() as u32;
    req.create = true;
    *after = After { l4, proto, encap };
    Ok(Step::Track(0))
}

/// The rest once the session lookup gave `got` (and, if binding a port
/// failed, `refused`): the translation, the MSS clamp, and where it goes.
fn finish(
    cx: &mut Cx,
    i: u16,
    (track, got): (Track, Option<Nat>),
    refused: Option<AllocError>,
    a: &After,
    ext: [u8; 4],
    clamp: Option<u16>,
) -> Result<NodeId, Error> {
    let why = match track {
        Track::Existing(_) | Track::Created(_) => None,
        Track::NotFound | Track::Refused => Some(Error::TableFull),
        Track::Invalid(Invalid::NotSyn) => Some(Error::TcpNotSyn),
        Track::Invalid(Invalid::BadFlags) => Some(Error::TcpBadFlags),
        Track::Invalid(_) => Some(Error::TcpOutOfWindow),
    };
    let n = match (refused, why, got) {
        (Some(AllocError::Exhausted), ..) => return Err(Error::PortsExhausted),
        (Some(AllocError::HostLimit), ..) => return Err(Error::HostLimit),
        (Some(AllocError::HostsFull), ..) => return Err(Error::HostsFull),
        (None, Some(e), _) => return Err(e),
        // A session of another bindings set (before a prefix change)
        // whose new binding failed: nothing to send it from.
        (None, None, None) => return Err(Error::PortsExhausted),
        (None, None, Some(n)) => n,
    };
    let ip = &mut cx.data(i)[ETH_LEN..];
    if rewrite(ip, &a.l4, Side::Src, ext, n.port).is_err() {
        return Err(Error::Truncated);
    }
    let hairpin = ip[16..20] == ext && a.proto != NatProto::Icmp;
    let clamped = clamp.is_some_and(|mss| clamp_syn(ip, a.l4.off, a.l4.proto, mss));
    if clamped {
        cx.count(Error::Clamped.index());
    }
    if hairpin {
        cx.count(Error::Hairpinned.index());
        return Ok(NodeId::Nat44In);
    }
    Ok(a.encap)
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
