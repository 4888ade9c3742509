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
use crate::flow::{clamp_mss, flow_into, ipv4_l4, mapped, tcp_view, Fragment, TCP_SYN};
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
    // Small per-packet records, written in place: copying keys and flows
    // around costs more than the lookups save on warm caches.
    let mut steps = [Step::Done; CHUNK];
    let mut reqs = [Request::EMPTY; CHUNK];
    let mut flows: [Flow; CHUNK] = [([0; 16], [0; 16], 0, 0, 0); CHUNK];
    let mut afters = [After::EMPTY; CHUNK];
    let mut tracks = [Track::NotFound; CHUNK];
    for chunk in pkts.chunks(CHUNK) {
        let mut n = 0;
        for (step, &i) in steps.iter_mut().zip(chunk) {
            let out = cx.meta[usize::from(i)].rx == Port::Lan;
            *step = if !enabled {
                Step::Done
            } else {
                let slots = (&mut reqs[n], &mut flows[n], &mut afters[n]);
                match check(cx, i, out, false, slots) {
                    Ok(Prep::Done) => Step::Done,
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
            if matches!(step, Step::Dropped) {
                continue;
            }
            let out = cx.meta[usize::from(i)].rx == Port::Lan;
            let next = if out {
                NodeId::DsliteEncap
            } else {
                NodeId::Ip4Rewrite
            };
            let verdict = match *step {
                Step::Done | Step::Dropped => Ok(None),
                Step::Track => {
                    let k = j.min(CHUNK - 1);
                    j += 1;
                    let t = tracked.next().copied().unwrap_or(Track::NotFound);
                    finish(cx, i, t, &afters[k]).map_err(|e| (e, flows[k]))
                }
                Step::Defer => match check(
                    cx,
                    i,
                    out,
                    true,
                    (&mut unused.0, &mut unused.1, &mut unused.2),
                ) {
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

/// What a packet needs after its session lookup (its flow, for the drop
/// log, waits beside its request).
#[derive(Clone, Copy)]
struct After {
    dir: Dir,
    frag: Option<Fragment>,
}

impl After {
    const EMPTY: After = After {
        dir: Dir::Out,
        frag: None,
    };
}

/// A packet of a chunk: decided, waiting for its session, or to be
/// checked in the last pass (see `Prep::Defer`).
#[derive(Clone, Copy)]
enum Step {
    Done,
    Dropped,
    /// Its request, flow and `After` wait at the next tracked index.
    Track,
    Defer,
}

/// What `check` found: passes without a session, or the lookup to do.
enum Prep {
    Done,
    /// The request, flow and `After` are in the caller's slots.
    Track,
    /// A later fragment or an ICMP error from the AFTR: its verdict reads
    /// what earlier packets of the chunk may still change (the first
    /// fragment's admission, the quoted flow's session), so it is checked
    /// in order in the last pass.
    Defer,
}

/// `in_order`: the last pass, where deferred packets get their verdict.
/// A packet that needs its session gets its request written to `req`
/// (in place: no copy of a key per packet).
fn check(
    cx: &mut Cx,
    i: u16,
    out: bool,
    in_order: bool,
    (req, flow_out, after): (&mut Request, &mut Flow, &mut After),
) -> Result<Prep, (Error, Flow)> {
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
    // In place: a key returned by value stalls on store forwarding.
    if !flow_into(src, dst, &l4, up, out, (&mut req.key, &mut req.seg)) {
        return Err((Error::Truncated, flow));
    }
    req.dir = dir;
    req.bytes = ip.len() as u32;
    // No pinholes for IPv4: the AFTR's NAT admits nothing unsolicited.
    req.create = out;
    *flow_out = flow;
    *after = After { dir, frag: l4.frag };
    Ok(Prep::Track)
}

/// The rest of `check` once the session lookup said `track`.
fn finish(cx: &mut Cx, i: u16, track: Track, a: &After) -> Result<Option<Error>, Error> {
    match track {
        Track::Existing(_) | Track::Created(_) => {}
        Track::NotFound => return Err(Error::NoSession),
        Track::Refused => return Err(Error::TableFull),
        Track::Invalid(Invalid::NotSyn) => return Err(Error::TcpNotSyn),
        Track::Invalid(Invalid::BadFlags) => return Err(Error::TcpBadFlags),
        Track::Invalid(_) => return Err(Error::TcpOutOfWindow),
    }
    if let (Some(f), Dir::In) = (a.frag, a.dir) {
        let now_s = cx.now_s;
        let (data, fw) = cx.data_fw(i);
        let ip = &data[ETH_LEN..];
        fw.frags
            .admit(&mapped(&ip[12..16]), &mapped(&ip[16..20]), f.id, now_s);
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
