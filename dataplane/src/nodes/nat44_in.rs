//! nat44-in: IPv4 the tunnel brought for the shared address back to the
//! LAN host (MAP-E NAPT44), in place of ip4-firewall on that path. The
//! destination port (or echo identifier) names the mapping, whose owner is
//! read without a lock; the packet then passes only as part of a session
//! of that LAN endpoint with this very remote address and port
//! (address-and-port-dependent filtering, RFC 4787 REQ-8), which it
//! refreshes. ICMP errors are translated back through the packet they
//! quote, if that packet belongs to a session (looked up, not refreshed),
//! in the last pass over each chunk of 32 (after the chunk's one
//! `SessionTable::track_nat_batch`), in order, as ip4-firewall does.
//! A port forward's port welcomes new flows: they open a session of the
//! forward's LAN endpoint carrying the forwarded port, so its replies leave
//! from that port. Then ip4-rewrite sends it on the LAN.
//!
//! Fragments: a first fragment is translated like a whole datagram and its
//! translation remembered (`nat::frags`, per worker); later fragments,
//! handled after the rest of the vector so one that overtook its first
//! fragment there still finds it, only get the LAN host's address.

use crate::flow::{flow_into, ipv4_l4, mapped, L4};
use crate::graph::{Cx, NodeId, MAX_VECTOR};
use crate::nat::bindings::{Bindings, NatProto};
use crate::nat::frags::FragKey;
use crate::nat::rewrite::{quoted, rewrite, untranslate_error, Side};
use crate::nodes::nat44_out::clamp_syn;
use crate::session::{Dir, Invalid, Key, Nat, Request, Track, CHUNK};
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
    let id = nat.id();
    let clamp = fib.firewall.mss_clamp_v4;
    let mut later = [0u16; MAX_VECTOR];
    let mut n_later = 0;
    // Per-packet records of a chunk, written in place (no allocation).
    let mut steps = [Step::Done; CHUNK];
    let mut reqs = [Request::EMPTY; CHUNK];
    let mut afters = [After::EMPTY; CHUNK];
    let mut tracks = [(Track::NotFound, None); CHUNK];
    for chunk in pkts.chunks(CHUNK) {
        let mut n = 0;
        for (step, &i) in steps.iter_mut().zip(chunk) {
            let slots = (&mut reqs[n.min(CHUNK - 1)], &mut afters[n.min(CHUNK - 1)]);
            *step = match prepare(cx, i, nat, slots) {
                Ok(Step::Track(_)) => {
                    n += 1;
                    Step::Track(n as u8 - 1)
                }
                Ok(Step::Later) => {
                    // `pkts` is at most a vector.
                    if let Some(slot) = later.get_mut(n_later) {
                        *slot = i;
                        n_later += 1;
                    } else {
                        cx.drop(i, Error::Fragment.index());
                    }
                    Step::Done
                }
                Ok(s) => s,
                // A drop has no order to keep: now.
                Err(e) => {
                    cx.drop(i, e.index());
                    Step::Done
                }
            };
        }
        // Only a port forward's new flows bind (one more session on it).
        let bind = |j: usize| {
            let a = &afters[j];
            nat.bind_forward(a.proto, a.ext_port)
                .map(|port| Nat { port, addr: id })
        };
        let sessions = &cx.fw.sessions;
        sessions.track_nat_batch(&reqs[..n], cx.now_s, bind, &mut tracks[..n]);
        for (step, &i) in steps.iter().zip(chunk) {
            let res = match *step {
                Step::Done | Step::Later => continue,
                Step::Track(k) => {
                    let k = usize::from(k);
                    finish(cx, i, tracks[k].0, &reqs[k], &afters[k], clamp)
                }
                Step::Error => {
                    let now = cx.now_s;
                    let (data, fw) = cx.data_fw(i);
                    error_back(nat, fw, &mut data[ETH_LEN..], now)
                }
            };
            match res {
                Ok(()) => cx.next(i, NodeId::Ip4Rewrite),
                Err(e) => cx.drop(i, e.index()),
            }
        }
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

/// A packet of a chunk after `prepare`.
#[derive(Clone, Copy)]
enum Step {
    /// Dropped, or left for after the vector.
    Done,
    /// A later fragment: handled after the rest of the vector.
    Later,
    /// An ICMP error: translated back in the last pass, in order, since
    /// it reads the session of the flow it quotes, which the packets
    /// before it may still change.
    Error,
    /// Its request and `After` are at this index.
    Track(u8),
}

/// What a tracked packet needs after its session lookup.
#[derive(Clone, Copy)]
struct After {
    l4: L4,
    proto: NatProto,
    /// The port (or echo identifier) it came to.
    ext_port: u16,
    /// A first fragment's datagram, as it came (before the rewrite).
    frag: Option<FragKey>,
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
        ext_port: 0,
        frag: None,
    };
}

/// Everything before the session lookup: the mapping's owner (one atomic
/// read of a dense array, no hash: nothing to prefetch a pass ahead) makes
/// the key. A packet that needs a lookup gets its request and `After`
/// written to the caller's slots (`Step::Track`; the caller numbers it).
fn prepare(
    cx: &mut Cx,
    i: u16,
    nat: &Bindings,
    (req, after): (&mut Request, &mut After),
) -> Result<Step, Error> {
    let Some(ip) = cx.data(i).get_mut(ETH_LEN..) else {
        return Err(Error::Truncated);
    };
    let l4 = ipv4_l4(ip);
    if l4.frag.is_some_and(|f| !f.is_first()) {
        return Ok(Step::Later);
    }
    let frag = l4.frag.and_then(|_| FragKey::of(ip));
    let up = &ip[l4.off.min(ip.len())..];
    if l4.proto == PROTO_ICMP {
        match up.first() {
            None => return Err(Error::Truncated),
            Some(0) => {}
            Some(3 | 11 | 12) => return Ok(Step::Error),
            Some(_) => return Err(Error::IcmpType),
        }
    }
    let proto = NatProto::of(l4.proto).ok_or(Error::Protocol)?;
    let (src, dst) = (mapped(&ip[12..16]), mapped(&ip[16..20]));
    // In place: a key returned by value stalls on store forwarding.
    if !flow_into(src, dst, &l4, up, false, (&mut req.key, &mut req.seg)) {
        return Err(Error::Truncated);
    }
    // The key holds the external port so far: its owner is the key's
    // LAN side.
    let ext_port = req.key.int_port;
    let ((addr, port), forward) = nat.inbound(proto, ext_port).ok_or(Error::NoMapping)?;
    req.key.int_addr = mapped(&addr.octets());
    req.key.int_port = port;
    req.dir = Dir::In;
    req.bytes = ip.len() as u32;
    req.create = forward;
    *after = After {
        l4,
        proto,
        ext_port,
        frag,
    };
    Ok(Step::Track(0))
}

/// The rest once the session lookup said `track`: the translation back
/// to the LAN endpoint `r` names, the fragment memory, the MSS clamp.
fn finish(
    cx: &mut Cx,
    i: u16,
    track: Track,
    r: &Request,
    a: &After,
    clamp: Option<u16>,
) -> Result<(), Error> {
    let forwarded = r.create && matches!(track, Track::Created(_));
    match track {
        Track::Existing(_) | Track::Created(_) => {}
        Track::NotFound | Track::Refused => return Err(Error::Filtered),
        Track::Invalid(Invalid::NotSyn) => return Err(Error::TcpNotSyn),
        Track::Invalid(Invalid::BadFlags) => return Err(Error::TcpBadFlags),
        Track::Invalid(_) => return Err(Error::TcpOutOfWindow),
    }
    let k = &r.key;
    let addr = [
        k.int_addr[12],
        k.int_addr[13],
        k.int_addr[14],
        k.int_addr[15],
    ];
    let now = cx.now_s;
    let (data, fw) = cx.data_fw(i);
    let ip = &mut data[ETH_LEN..];
    if rewrite(ip, &a.l4, Side::Dst, addr, k.int_port).is_err() {
        return Err(Error::Truncated);
    }
    let mut evicted = false;
    if let Some(f) = &a.frag {
        let before = fw.nat_frags.evicted;
        fw.nat_frags.insert(f, addr, now);
        evicted = fw.nat_frags.evicted != before;
    }
    let clamped = clamp.is_some_and(|mss| clamp_syn(ip, a.l4.off, a.l4.proto, mss));
    if clamped {
        cx.count(Error::Clamped.index());
    }
    if forwarded {
        cx.count(Error::Forwarded.index());
    }
    if evicted {
        cx.count(Error::FragEvicted.index());
    }
    Ok(())
}

/// An ICMP error for the shared address, translated back for the LAN host
/// whose packet it quotes, if that packet is of a live session.
fn error_back(
    nat: &Bindings,
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
