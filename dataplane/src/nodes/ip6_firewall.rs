//! ip6-firewall: the user's ip6tables FORWARD chain and RFC 6092 for
//! transit IPv6. From the LAN everything passes and opens a session; from
//! the WAN only packets of a session, the ICMPv6 errors RFC 4890 4.3.1
//! requires when they quote a packet of a session ("related"), and new
//! flows a pinhole admits. RH0 is dropped either way (RFC 5095). SYNs get
//! their MSS clamped when `firewall.ipv6_mss_clamp` is set. Passing
//! packets go on to ip6-forward.
//!
//! The vector goes through in chunks and three steps: parse every packet
//! and decide what needs no session; look all the sessions up at once
//! (`SessionTable::track_batch`, which overlaps their cache misses); then
//! finish each packet in order.

use crate::firewall::{Policy, WorkerFirewall};
use crate::flow::{clamp_mss, flow_into, flow_of, ipv6_l4, tcp_view, Fragment, L4, TCP_SYN};
use crate::graph::{Cx, NodeId};
use crate::session::{Dir, Invalid, Key, Request, Track, CHUNK};
use crate::tables::Port;
use crate::wire::{be16, ETH_LEN, PROTO_ICMPV6, PROTO_TCP};

crate::node_errors! {
    pub enum Error {
        BadHeader => ("bad-header", "extension header chain truncated or too long"),
        Rh0 => ("rh0", "type 0 routing header (RFC 5095)"),
        Truncated => ("truncated", "upper-layer header truncated"),
        NoSession => ("no-session", "from the WAN, not part of a session and no pinhole"),
        Unrelated => ("icmp-unrelated", "ICMPv6 error from the WAN quoting no session of its destination"),
        IcmpType => ("icmp-type", "ICMPv6 type or code not forwarded from the WAN (RFC 4890)"),
        FragmentUnadmitted => ("fragment-unadmitted", "later fragment from the WAN of a datagram not admitted"),
        TcpNotSyn => ("tcp-not-syn", "TCP segment that may not open a session"),
        TcpBadFlags => ("tcp-bad-flags", "TCP flag combination never valid (SYN+FIN, SYN+RST, none)"),
        TcpOutOfWindow => ("tcp-out-of-window", "TCP RST or segment outside the window"),
        TableFull => ("table-full", "session table full (of established sessions, or of the LAN's for a flow from the WAN): new flow refused"),
        Pinhole => ("pinhole-opened", "sessions opened from the WAN by a pinhole (not a drop)"),
        Clamped => ("mss-clamped", "SYNs whose MSS was lowered (not a drop)"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    if !cx.fib.firewall.enabled {
        for &i in pkts {
            cx.next(i, NodeId::Ip6Forward);
        }
        return;
    }
    // Small per-packet records, written in place: copying keys and flows
    // around costs more than the lookups save on warm caches.
    let mut steps = [Step::Done(None); CHUNK];
    let mut reqs = [Request::EMPTY; CHUNK];
    let mut flows: [Flow; CHUNK] = [([0; 16], [0; 16], 0, 0, 0); CHUNK];
    let mut afters = [After::EMPTY; CHUNK];
    let mut tracks = [Track::NotFound; CHUNK];
    for chunk in pkts.chunks(CHUNK) {
        let mut n = 0;
        for (step, &i) in steps.iter_mut().zip(chunk) {
            let out = (&mut reqs[n], &mut flows[n], &mut afters[n]);
            *step = match check(cx, i, false, out) {
                Ok(Prep::Done(note)) => Step::Done(note),
                Ok(Prep::Defer) => Step::Defer,
                Ok(Prep::Track) => {
                    n += 1;
                    Step::Track
                }
                // A drop has no order to keep: now.
                Err((e, flow)) => {
                    cx.drop_logged(i, e.index(), flow);
                    Step::Dropped
                }
            };
        }
        cx.fw
            .sessions
            .track_batch(&reqs[..n], cx.now_s, &mut tracks[..n]);
        let mut tracked = tracks[..n].iter();
        let mut j = 0;
        // Deferred packets never need a request of their own.
        let mut unused = (Request::EMPTY, flows[0], After::EMPTY);
        for (step, &i) in steps.iter().zip(chunk) {
            let verdict = match *step {
                Step::Dropped => continue,
                Step::Done(v) => Ok(v),
                Step::Track => {
                    let k = j.min(CHUNK - 1);
                    j += 1;
                    let t = tracked.next().copied().unwrap_or(Track::NotFound);
                    finish(cx, i, t, &afters[k]).map_err(|e| (e, flows[k]))
                }
                Step::Defer => {
                    match check(cx, i, true, (&mut unused.0, &mut unused.1, &mut unused.2)) {
                        Ok(Prep::Done(note)) => Ok(note),
                        Err(e) => Err(e),
                        // Not for the packets deferred.
                        Ok(_) => Ok(None),
                    }
                }
            };
            match verdict {
                Ok(note) => {
                    if let Some(n) = note {
                        cx.count(n.index());
                    }
                    cx.next(i, NodeId::Ip6Forward);
                }
                Err((e, flow)) => cx.drop_logged(i, e.index(), flow),
            }
        }
    }
}

/// (source, destination, protocol, source port or ICMP type, destination port) for the drop log.
pub(crate) type Flow = ([u8; 16], [u8; 16], u8, u16, u16);

/// What a packet needs after its session lookup (its flow, for the drop
/// log, waits beside its request).
#[derive(Clone, Copy)]
struct After {
    dir: Dir,
    proto: u8,
    frag: Option<Fragment>,
    /// Where the upper-layer header starts in the IP packet.
    off: u16,
}

impl After {
    const EMPTY: After = After {
        dir: Dir::Out,
        proto: 0,
        frag: None,
        off: 0,
    };
}

/// A packet of a chunk: passed (with a note), dropped already, waiting for
/// its session, or to be checked in the last pass (see `Prep::Defer`).
#[derive(Clone, Copy)]
enum Step {
    Done(Option<Error>),
    Dropped,
    /// Its request, flow and `After` wait at the next tracked index.
    Track,
    Defer,
}

/// What `check` found: a verdict needing no session, or the lookup to do.
enum Prep {
    Done(Option<Error>),
    /// The request, flow and `After` are in the caller's slots.
    Track,
    /// A later fragment or an ICMPv6 error from the WAN: its verdict
    /// reads what earlier packets of the chunk may still change (the
    /// first fragment's admission, the quoted flow's session), so it is
    /// checked in order in the last pass.
    Defer,
}

/// `in_order`: the last pass, where deferred packets get their verdict.
/// A packet that needs its session gets its request written to `req` and
/// its flow to `flow_out` (in place: no copy of a key per packet).
fn check(
    cx: &mut Cx,
    i: u16,
    in_order: bool,
    (req, flow_out, after): (&mut Request, &mut Flow, &mut After),
) -> Result<Prep, (Error, Flow)> {
    let fib = cx.fib;
    let policy: &Policy = &fib.firewall;
    let dir = if cx.meta[usize::from(i)].rx == Port::Lan {
        Dir::Out
    } else {
        Dir::In
    };
    let now_s = cx.now_s;
    let (data, fw) = cx.data_fw(i);
    let ip = &mut data[ETH_LEN..];
    let ip_len = ip.len() as u32;
    let src: [u8; 16] = ip[8..24].try_into().unwrap_or([0; 16]);
    let dst: [u8; 16] = ip[24..40].try_into().unwrap_or([0; 16]);
    let mut flow: Flow = (src, dst, 0, 0, 0);
    let l4 = ipv6_l4(ip).map_err(|_| (Error::BadHeader, flow))?;
    flow.2 = l4.proto;
    if l4.rh0 {
        return Err((Error::Rh0, flow));
    }
    if let Some(f) = l4.frag.filter(|f| !f.is_first()) {
        // No ports in a later fragment: it follows its first fragment's verdict.
        if dir == Dir::In && !in_order {
            return Ok(Prep::Defer);
        }
        if dir == Dir::In && !fw.frags.admitted(&src, &dst, f.id, now_s) {
            return Err((Error::FragmentUnadmitted, flow));
        }
        return Ok(Prep::Done(None));
    }
    let off = l4.off.min(ip_len as usize);
    let up = &mut ip[off..];
    if up.len() >= 4 && l4.proto != PROTO_ICMPV6 {
        flow.3 = be16(up, 0);
        flow.4 = be16(up, 2);
    }
    if l4.proto == PROTO_ICMPV6 {
        if up.len() < 8 {
            return Err((Error::Truncated, flow));
        }
        let (t, code) = (up[0], up[1]);
        flow.3 = u16::from(t);
        if t < 128 {
            if dir == Dir::Out {
                return Ok(Prep::Done(None));
            }
            // RFC 4890 4.3.1: destination unreachable, packet too big,
            // time exceeded code 0, parameter problem codes 1-2 — and only
            // about a packet of a session.
            if !matches!((t, code), (1, _) | (2, _) | (3, 0) | (4, 1) | (4, 2)) {
                return Err((Error::IcmpType, flow));
            }
            if !in_order {
                return Ok(Prep::Defer);
            }
            return if related_v6(fw, &dst, &up[8..], now_s) {
                Ok(Prep::Done(None))
            } else {
                Err((Error::Unrelated, flow))
            };
        }
        if t != 128 && t != 129 && dir == Dir::In {
            // Informational messages other than echo (MLD, ND, node
            // information) have no business crossing into the LAN.
            return Err((Error::IcmpType, flow));
        }
    }
    // In place: a key returned by value stalls on store forwarding.
    if !flow_into(
        src,
        dst,
        &l4,
        up,
        dir == Dir::Out,
        (&mut req.key, &mut req.seg),
    ) {
        return Err((Error::Truncated, flow));
    }
    req.dir = dir;
    req.bytes = ip_len;
    req.create = match dir {
        Dir::Out => true,
        Dir::In => policy.pinhole_allows(fib, &dst, l4.proto, req.key.int_port),
    };
    *flow_out = flow;
    *after = After {
        dir,
        proto: l4.proto,
        frag: l4.frag,
        off: off as u16,
    };
    Ok(Prep::Track)
}

/// The rest of `check` once the session lookup said `track`.
fn finish(cx: &mut Cx, i: u16, track: Track, a: &After) -> Result<Option<Error>, Error> {
    let dir = a.dir;
    let mut note = None;
    match track {
        Track::Existing(_) => {}
        Track::Created(_) if dir == Dir::In => note = Some(Error::Pinhole),
        Track::Created(_) => {}
        Track::NotFound => return Err(Error::NoSession),
        Track::Refused => return Err(Error::TableFull),
        Track::Invalid(Invalid::NotSyn) => return Err(Error::TcpNotSyn),
        Track::Invalid(Invalid::BadFlags) => return Err(Error::TcpBadFlags),
        Track::Invalid(_) => return Err(Error::TcpOutOfWindow),
    }
    let now_s = cx.now_s;
    let clamp = cx.fib.firewall.mss_clamp_v6;
    let (data, fw) = cx.data_fw(i);
    if let Some(f) = a.frag {
        // A first fragment that passed admits the rest of its datagram.
        if dir == Dir::In {
            let ip = &data[ETH_LEN..];
            let src: [u8; 16] = ip[8..24].try_into().unwrap_or([0; 16]);
            let dst: [u8; 16] = ip[24..40].try_into().unwrap_or([0; 16]);
            fw.frags.admit(&src, &dst, f.id, now_s);
        }
        return Ok(note);
    }
    if a.proto == PROTO_TCP {
        let ip = &mut data[ETH_LEN..];
        let off = usize::from(a.off).min(ip.len());
        let up = &mut ip[off..];
        if let (Some(clamp), Some(v)) = (clamp, tcp_view(up)) {
            if v.flags & TCP_SYN != 0 && clamp_mss(up, &v, clamp) {
                note = note.or(Some(Error::Clamped));
            }
        }
    }
    Ok(note)
}

/// Does an ICMPv6 error to `to` quoting `q` concern a packet that `to`
/// sent in a known session? Never creates or refreshes the session.
fn related_v6(fw: &WorkerFirewall, to: &[u8; 16], q: &[u8], now_s: u32) -> bool {
    if q.len() < 40 || q[0] >> 4 != 6 {
        return false;
    }
    // The quote may be cut short: walk its chain on what is there.
    let Ok(l4) = ipv6_l4(q) else {
        return false;
    };
    if l4.frag.map(|f| !f.is_first()).unwrap_or(false) {
        return false;
    }
    let src: [u8; 16] = q[8..24].try_into().unwrap_or([0; 16]);
    let dst: [u8; 16] = q[24..40].try_into().unwrap_or([0; 16]);
    related_key(fw, to, src, dst, &l4, &q[l4.off.min(q.len())..], now_s)
}

/// Shared with ip4-firewall: look up the quoted packet's flow as the LAN
/// host sent it. A quote holds at least 8 bytes of the upper layer, which
/// for TCP is its ports and sequence number only, so TCP keys are built
/// from the ports alone. The error must go to the quoted packet's source,
/// the host whose flow it is: otherwise a peer of one flow could reach any
/// LAN address (Linux's nf_conntrack_inet_error makes the same check).
pub(crate) fn related_key(
    fw: &WorkerFirewall,
    to: &[u8; 16],
    src: [u8; 16],
    dst: [u8; 16],
    l4: &L4,
    up: &[u8],
    now_s: u32,
) -> bool {
    if *to != src {
        return false;
    }
    let key = if l4.proto == PROTO_TCP {
        if up.len() < 4 {
            return false;
        }
        Key {
            int_addr: src,
            ext_addr: dst,
            int_port: be16(up, 0),
            ext_port: be16(up, 2),
            proto: PROTO_TCP,
        }
    } else {
        match flow_of(src, dst, l4, up, true) {
            Some((k, _)) => k,
            None => return false,
        }
    };
    fw.sessions.lookup(&key, now_s).is_some()
}
