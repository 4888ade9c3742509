//! ip4-firewall: stateful filtering of the IPv4 inside the DS-Lite tunnel,
//! both ways (the user's note: state RELATED,ESTABLISHED is enough behind
//! the AFTR's NAT). From the LAN (ip4-input) everything passes, opens or
//! refreshes a session and goes on to dslite-encap; decapsulated packets
//! from the AFTR pass only as part of a session, or as ICMP errors quoting
//! one, and go on to ip4-rewrite. TCP SYNs and SYN-ACKs get their MSS
//! clamped to `dslite.mss_clamp` (1420 = 1500 - 40 outer - 20 - 20), so
//! that no TCP segment needs fragmenting in the tunnel.
//!
//! Like ip6-firewall, the vector goes through in chunks: parse, one
//! `SessionTable::track_batch` for the chunk, then finish in order.

use crate::firewall::WorkerFirewall;
use crate::flow::{clamp_mss, flow_of, ipv4_l4, mapped, tcp_view, Fragment, TCP_SYN};
use crate::graph::{Cx, NodeId};
use crate::nodes::ip6_firewall::{related_key, Flow};
use crate::session::{Dir, Invalid, Request, Track, CHUNK};
use crate::tables::Port;
use crate::wire::{be16, ETH_LEN, PROTO_ICMP, PROTO_TCP};

crate::node_errors! {
    pub enum Error {
        Truncated => ("truncated", "upper-layer header truncated"),
        NoSession => ("no-session", "from the AFTR, not part of a session"),
        Unrelated => ("icmp-unrelated", "ICMP error from the AFTR quoting no session of its destination"),
        IcmpType => ("icmp-type", "ICMP type not forwarded to the LAN"),
        FragmentUnadmitted => ("fragment-unadmitted", "later fragment of a datagram not admitted"),
        TcpFragmentOffset8 => ("tcp-fragment-offset-8", "TCP fragment at offset 8 (FO=1), which can rewrite the flags of the first (RFC 1858)"),
        TcpNotSyn => ("tcp-not-syn", "TCP segment that may not open a session"),
        TcpBadFlags => ("tcp-bad-flags", "TCP flag combination never valid (SYN+FIN, SYN+RST, none)"),
        TcpOutOfWindow => ("tcp-out-of-window", "TCP RST or segment outside the window"),
        TableFull => ("table-full", "session table full of established sessions: new flow refused"),
        Clamped => ("mss-clamped", "SYNs whose MSS was lowered (not a drop)"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let enabled = cx.fib.firewall.enabled;
    let clamp = cx.fib.firewall.mss_clamp_v4;
    let mut steps = [Step::Done(Ok(None)); CHUNK];
    let mut reqs = [Request::EMPTY; CHUNK];
    let mut tracks = [Track::NotFound; CHUNK];
    for chunk in pkts.chunks(CHUNK) {
        let mut n = 0;
        for (step, &i) in steps.iter_mut().zip(chunk) {
            let out = cx.meta[usize::from(i)].rx == Port::Lan;
            *step = if !enabled {
                Step::Done(Ok(None))
            } else {
                match check(cx, i, out, false) {
                    Ok(Prep::Done) => Step::Done(Ok(None)),
                    Ok(Prep::Defer) => Step::Defer,
                    Ok(Prep::Track(req, after)) => {
                        reqs[n] = req;
                        n += 1;
                        Step::Track(after)
                    }
                    Err(e) => Step::Done(Err(e)),
                }
            };
        }
        cx.fw
            .sessions
            .track_batch(&reqs[..n], cx.now_s, &mut tracks[..n]);
        let mut tracked = tracks[..n].iter();
        for (step, &i) in steps.iter().zip(chunk) {
            let out = cx.meta[usize::from(i)].rx == Port::Lan;
            let next = if out {
                NodeId::DsliteEncap
            } else {
                NodeId::Ip4Rewrite
            };
            let verdict = match *step {
                Step::Done(v) => v,
                Step::Track(after) => {
                    let t = tracked.next().copied().unwrap_or(Track::NotFound);
                    finish(cx, t, &after)
                }
                Step::Defer => match check(cx, i, out, true) {
                    Ok(_) => Ok(None),
                    Err(e) => Err(e),
                },
            };
            match verdict {
                Ok(note) => {
                    if let Some(n) = note {
                        cx.count(n.index());
                    }
                    if let Some(mss) = clamp {
                        if clamp_v4(cx.data(i), mss) {
                            cx.count(Error::Clamped.index());
                        }
                    }
                    cx.next(i, next);
                }
                Err((e, flow)) => cx.drop_logged(i, e.index(), flow),
            }
        }
    }
}

type Verdict = Result<Option<Error>, (Error, Flow)>;

/// What a packet needs after its session lookup.
#[derive(Clone, Copy)]
struct After {
    flow: Flow,
    dir: Dir,
    frag: Option<Fragment>,
}

/// A packet of a chunk: decided, waiting for its session, or to be
/// checked in the last pass (see `Prep::Defer`).
#[derive(Clone, Copy)]
enum Step {
    Done(Verdict),
    Track(After),
    Defer,
}

/// What `check` found: passes without a session, or the lookup to do.
enum Prep {
    Done,
    Track(Request, After),
    /// A later fragment or an ICMP error from the AFTR: its verdict reads
    /// what earlier packets of the chunk may still change (the first
    /// fragment's admission, the quoted flow's session), so it is checked
    /// in order in the last pass.
    Defer,
}

/// `in_order`: the last pass, where deferred packets get their verdict.
fn check(cx: &mut Cx, i: u16, out: bool, in_order: bool) -> Result<Prep, (Error, Flow)> {
    let dir = if out { Dir::Out } else { Dir::In };
    let now_s = cx.now_s;
    let (data, fw) = cx.data_fw(i);
    let ip = &data[ETH_LEN..];
    let src = mapped(&ip[12..16]);
    let dst = mapped(&ip[16..20]);
    let l4 = ipv4_l4(ip);
    let mut flow: Flow = (src, dst, l4.proto, 0, 0);
    if let Some(f) = l4.frag.filter(|f| !f.is_first()) {
        // No sender needs it: the first fragment holds at least 8 bytes.
        if f.offset == 8 && l4.proto == PROTO_TCP {
            return Err((Error::TcpFragmentOffset8, flow));
        }
        if dir == Dir::In && !in_order {
            return Ok(Prep::Defer);
        }
        if dir == Dir::In && !fw.frags.admitted(&src, &dst, f.id, now_s) {
            return Err((Error::FragmentUnadmitted, flow));
        }
        return Ok(Prep::Done);
    }
    let up = &ip[l4.off.min(ip.len())..];
    if up.len() >= 4 && l4.proto != PROTO_ICMP {
        flow.3 = be16(up, 0);
        flow.4 = be16(up, 2);
    }
    if l4.proto == PROTO_ICMP {
        if up.len() < 8 {
            return Err((Error::Truncated, flow));
        }
        flow.3 = u16::from(up[0]);
        match up[0] {
            0 | 8 => {}
            // Unreachable (with fragmentation needed), time exceeded,
            // parameter problem: related to a session or nothing.
            3 | 11 | 12 if dir == Dir::In => {
                if !in_order {
                    return Ok(Prep::Defer);
                }
                return if related_v4(fw, &dst, &up[8..], now_s) {
                    Ok(Prep::Done)
                } else {
                    Err((Error::Unrelated, flow))
                };
            }
            _ if dir == Dir::Out => return Ok(Prep::Done),
            _ => return Err((Error::IcmpType, flow)),
        }
    }
    let Some((key, seg)) = flow_of(src, dst, &l4, up, out) else {
        return Err((Error::Truncated, flow));
    };
    // No pinholes for IPv4: the AFTR's NAT admits nothing unsolicited.
    let req = Request {
        key,
        seg,
        dir,
        bytes: ip.len() as u32,
        create: out,
    };
    Ok(Prep::Track(
        req,
        After {
            flow,
            dir,
            frag: l4.frag,
        },
    ))
}

/// The rest of `check` once the session lookup said `track`.
fn finish(cx: &mut Cx, track: Track, a: &After) -> Verdict {
    let flow = a.flow;
    match track {
        Track::Existing(_) | Track::Created(_) => {}
        Track::NotFound => return Err((Error::NoSession, flow)),
        Track::Refused => return Err((Error::TableFull, flow)),
        Track::Invalid(Invalid::NotSyn) => return Err((Error::TcpNotSyn, flow)),
        Track::Invalid(Invalid::BadFlags) => return Err((Error::TcpBadFlags, flow)),
        Track::Invalid(_) => return Err((Error::TcpOutOfWindow, flow)),
    }
    if let (Some(f), Dir::In) = (a.frag, a.dir) {
        cx.fw.frags.admit(&flow.0, &flow.1, f.id, cx.now_s);
    }
    Ok(None)
}

/// Does an ICMP error to `to` (IPv4-mapped) quoting `q` concern a packet
/// that `to` sent?
fn related_v4(fw: &WorkerFirewall, to: &[u8; 16], q: &[u8], now_s: u32) -> bool {
    if q.len() < 20 || q[0] >> 4 != 4 || usize::from(q[0] & 0x0f) * 4 < 20 {
        return false;
    }
    let l4 = ipv4_l4(q);
    if l4.frag.map(|f| !f.is_first()).unwrap_or(false) || q.len() < l4.off {
        return false;
    }
    let (src, dst) = (mapped(&q[12..16]), mapped(&q[16..20]));
    related_key(fw, to, src, dst, &l4, &q[l4.off..], now_s)
}

/// Clamp the MSS of an unfragmented TCP SYN (or SYN-ACK) in place.
fn clamp_v4(data: &mut [u8], mss: u16) -> bool {
    let ip = &mut data[ETH_LEN..];
    let l4 = ipv4_l4(ip);
    if l4.proto != PROTO_TCP || l4.frag.is_some() || ip.len() < l4.off {
        return false;
    }
    let tcp = &mut ip[l4.off..];
    match tcp_view(tcp) {
        Some(v) if v.flags & TCP_SYN != 0 => clamp_mss(tcp, &v, mss),
        _ => false,
    }
}
