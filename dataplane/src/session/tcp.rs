//! The TCP state machine and its sequence checks: RFC 793 states, resets
//! validated against the receiver's window (RFC 5961 spirit), windows scaled
//! per RFC 7323. All sequence arithmetic wraps.

use super::{Invalid, State};

pub(super) const FIN: u8 = 0x01;
pub(super) const SYN: u8 = 0x02;
pub(super) const RST: u8 = 0x04;
pub(super) const ACK: u8 = 0x10;
/// The flags that decide what a segment means (PSH, URG, ECE, CWR don't).
const CORE: u8 = FIN | SYN | RST | ACK;

const OUT: usize = 0;
/// Window scale not offered (or not seen).
const NO_WSCALE: u8 = 0xff;
/// RFC 7323 caps the shift at 14.
const MAX_WSCALE: u8 = 14;
/// Window assumed when the scale is unknown (loose pickup): lenient, as
/// the true window may be up to 2^30.
const LOOSE_WINDOW: u32 = 1 << 30;

/// `Tracking::flags` bits. The initiator bit also serves UDP/ICMP (originator).
const INIT_IN: u8 = 0x01;
/// Session picked up mid-stream: windows and scales unknown.
const LOOSE: u8 = 0x80;
#[inline]
const fn seen(d: usize) -> u8 {
    0x02 << d
}
#[inline]
const fn fin(d: usize) -> u8 {
    0x08 << d
}
#[inline]
const fn fin_acked(d: usize) -> u8 {
    0x20 << d
}

/// `a` after `b` in sequence space.
#[inline]
fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

#[inline]
fn seq_ge(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// The fields of a TCP segment the tracker uses.
#[derive(Clone, Copy, Debug)]
pub(super) struct TcpSeg {
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub len: u32,
    pub window: u16,
    pub wscale: Option<u8>,
}

/// Per-direction sequence state of a session (indexed by `Dir::index`: the
/// side that sends).
#[derive(Clone, Copy, Debug)]
pub(super) struct Tracking {
    /// Highest seq + len (+ SYN/FIN) sent: what the receiver expects next.
    end: [u32; 2],
    /// Largest window advertised, scaled.
    max_win: [u32; 2],
    /// Window scale from the side's SYN, or NO_WSCALE.
    wscale: [u8; 2],
    flags: u8,
}

impl Tracking {
    pub const EMPTY: Tracking = Tracking {
        end: [0; 2],
        max_win: [0; 2],
        wscale: [NO_WSCALE; 2],
        flags: 0,
    };

    /// Fresh state for a flow first seen travelling in direction `d`.
    pub fn origin(d: usize) -> Tracking {
        Tracking {
            flags: if d == OUT { 0 } else { INIT_IN },
            ..Tracking::EMPTY
        }
    }

    #[inline]
    fn initiator(&self) -> usize {
        usize::from(self.flags & INIT_IN)
    }

    /// Records a SYN (or SYN-ACK) from side `d`.
    fn syn_from(&mut self, d: usize, s: &TcpSeg) {
        self.end[d] = s.seq.wrapping_add(1).wrapping_add(s.len);
        // Windows in SYNs are never scaled.
        self.max_win[d] = u32::from(s.window);
        self.wscale[d] = s.wscale.map_or(NO_WSCALE, |w| w.min(MAX_WSCALE));
        self.flags |= seen(d);
    }

    /// A non-SYN window from side `d`, scaled only if both SYNs offered scaling.
    fn scaled(&self, d: usize, window: u16) -> u32 {
        let [a, b] = self.wscale;
        if self.flags & LOOSE == 0 && a != NO_WSCALE && b != NO_WSCALE {
            u32::from(window) << self.wscale[d]
        } else {
            u32::from(window)
        }
    }

    /// Is `seq` from side `d` within the receiver's window around what the
    /// receiver expects? The receiver's next expected sequence number lies
    /// between end[d] - window (data in flight) and end[d], and the sender may
    /// run at most a window ahead of it.
    fn in_window(&self, d: usize, seq: u32) -> bool {
        let win = if self.flags & LOOSE != 0 {
            LOOSE_WINDOW
        } else {
            // At least 1 so keepalives (seq = end - 1) pass a zero window.
            self.max_win[d ^ 1].max(1)
        };
        // win <= 65535 << 14 < 2^30, so 2 * win cannot overflow.
        seq.wrapping_sub(self.end[d].wrapping_sub(win)) <= 2 * win
    }
}

/// Flag combinations a real stack sends; anything else is rejected.
pub(super) fn flags_valid(flags: u8) -> bool {
    const SYN_ACK: u8 = SYN | ACK;
    const RST_ACK: u8 = RST | ACK;
    const FIN_ACK: u8 = FIN | ACK;
    matches!(flags & CORE, SYN | SYN_ACK | RST | RST_ACK | ACK | FIN_ACK)
}

/// A SYN on a dead connection starts a new one on the same tuple.
pub(super) fn is_reopen(state: State, flags: u8) -> bool {
    flags & CORE == SYN && matches!(state, State::TcpClosed | State::TcpTimeWait)
}

/// State of a new session opened by `s` travelling in direction `d`.
pub(super) fn open(s: &TcpSeg, d: usize) -> Result<(State, Tracking), Invalid> {
    let mut t = Tracking::origin(d);
    if s.flags & CORE == SYN {
        t.syn_from(d, s);
        return Ok((State::TcpSynSent, t));
    }
    if s.flags & CORE == ACK && d == OUT {
        // Loose pickup: a LAN host's connection that predates us (restart).
        // Its ACK field is what the other side will send next.
        t.flags |= LOOSE | seen(0) | seen(1);
        t.end = [s.seq.wrapping_add(s.len), s.ack];
        t.max_win[d] = u32::from(s.window);
        return Ok((State::TcpEstablished, t));
    }
    Err(Invalid::NotSyn)
}

/// Applies segment `s` from side `d` to a session in `state`. On error `t`
/// is left unchanged. The caller has checked `flags_valid` and handled
/// reopening SYNs.
pub(super) fn update(
    state: State,
    t: &mut Tracking,
    s: &TcpSeg,
    d: usize,
) -> Result<State, Invalid> {
    let r = d ^ 1;
    let f = s.flags & CORE;
    let mut n = *t;

    if f & RST != 0 {
        let ok = if n.flags & seen(d) == 0 {
            // The sender never spoke: only a reset answering the SYN is
            // believable (RFC 793: its ACK must acknowledge the SYN).
            f & ACK != 0 && n.flags & seen(r) != 0 && s.ack == n.end[r]
        } else {
            n.in_window(d, s.seq)
        };
        return if ok {
            Ok(State::TcpClosed)
        } else {
            Err(Invalid::RstOutOfWindow)
        };
    }

    if f & SYN != 0 {
        if f & ACK == 0 {
            if state == State::TcpSynSent {
                // Retransmitted SYN (possibly a new ISN), or the other side's
                // SYN in a simultaneous open.
                n.syn_from(d, s);
                *t = n;
            }
            // Elsewhere a stray SYN passes untouched: the peer's challenge
            // ACK (RFC 5961 4.2) then lets the stale side reset.
            return Ok(state);
        }
        if state == State::TcpSynSent {
            // The SYN-ACK must acknowledge the other side's SYN exactly.
            if n.flags & seen(r) == 0 || s.ack != n.end[r] {
                return Err(Invalid::OutOfWindow);
            }
            n.syn_from(d, s);
            *t = n;
            return Ok(State::TcpSynReceived);
        }
        // Retransmitted SYN-ACK.
        return Ok(state);
    }

    // ACK or FIN+ACK.
    if n.flags & seen(d) == 0 {
        if state == State::TcpSynSent {
            // The side that never sent a SYN cannot send anything else yet.
            return Err(Invalid::OutOfWindow);
        }
    } else if !n.in_window(d, s.seq) {
        return Err(Invalid::OutOfWindow);
    }
    let is_fin = f & FIN != 0;
    let end = s.seq.wrapping_add(s.len).wrapping_add(u32::from(is_fin));
    if n.flags & seen(d) == 0 || seq_gt(end, n.end[d]) {
        n.end[d] = end;
    }
    n.flags |= seen(d);
    let win = n.scaled(d, s.window);
    n.max_win[d] = n.max_win[d].max(win);
    if matches!(state, State::TcpClosed | State::TcpTimeWait) {
        *t = n;
        return Ok(state);
    }
    if is_fin {
        n.flags |= fin(d);
    }
    if n.flags & fin(r) != 0 && seq_ge(s.ack, n.end[r]) {
        n.flags |= fin_acked(r);
    }
    let mut next = state;
    if state == State::TcpSynReceived && d == n.initiator() {
        next = State::TcpEstablished;
    }
    let fins = n.flags & (fin(0) | fin(1));
    if fins == fin(0) | fin(1) {
        let acked = fin_acked(0) | fin_acked(1);
        next = if n.flags & acked == acked {
            State::TcpTimeWait
        } else {
            State::TcpClosing
        };
    } else if fins != 0 {
        next = State::TcpFinWait;
    }
    *t = n;
    Ok(next)
}

/// UDP (and echo): a packet against the originator's direction makes a stream.
pub(super) fn udp_update(state: State, t: &Tracking, d: usize) -> State {
    if state == State::Udp && d != t.initiator() {
        State::UdpStream
    } else {
        state
    }
}
