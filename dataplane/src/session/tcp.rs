//! The TCP state machine and its sequence checks, as Linux conntrack does
//! them: RFC 793 states; a reset closes only at the exact sequence number
//! the receiver expects (RFC 5961 3.2), other in-window resets pass for the
//! host's challenge ACK; a SYN with a new ISN on a held tuple resyncs when
//! the peer's SYN-ACK acknowledges it; windows scaled per RFC 7323. All
//! sequence arithmetic wraps.

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
const INIT_IN: u16 = 0x01;
/// Session picked up mid-stream: windows and scales unknown.
const LOOSE: u16 = 0x80;
/// The initiator sent a SYN with a new ISN on this held tuple; its end is
/// parked in `maxack[initiator]` (Linux ignores td_maxack then too) and
/// its window scale in the four bits at `PENDING_WS_SHIFT`.
const SYN_PENDING: u16 = 0x400;
/// Four bits: the pending SYN's window scale, 0xf = none.
const PENDING_WS_SHIFT: u16 = 12;
#[inline]
const fn seen(d: usize) -> u16 {
    0x02 << d
}
#[inline]
const fn fin(d: usize) -> u16 {
    0x08 << d
}
#[inline]
const fn fin_acked(d: usize) -> u16 {
    0x20 << d
}
/// `maxack[d]` holds the highest ACK side `d` has sent.
#[inline]
const fn maxack_set(d: usize) -> u16 {
    0x100 << d
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
    /// Highest ACK sent (valid if `maxack_set(d)`): the receiver's RCV.NXT
    /// as far as we know, which an acceptable RST must hit exactly.
    maxack: [u32; 2],
    /// Window scale from the side's SYN, or NO_WSCALE.
    wscale: [u8; 2],
    flags: u16,
}

impl Tracking {
    pub const EMPTY: Tracking = Tracking {
        end: [0; 2],
        max_win: [0; 2],
        maxack: [0; 2],
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

    /// Opened from the WAN (through a pinhole): such sessions never take a
    /// LAN-started one's slot.
    #[inline]
    pub fn wan_started(&self) -> bool {
        self.flags & INIT_IN != 0
    }

    /// Records the highest ACK side `d` has sent. An ACK of data the other
    /// side never sent is not believed (Linux bounds it by td_end too), so
    /// a forged one cannot move the exact point of a valid RST.
    #[inline]
    fn ack_from(&mut self, d: usize, ack: u32) {
        if seq_gt(ack, self.end[d ^ 1]) {
            return;
        }
        if self.flags & maxack_set(d) == 0 || seq_gt(ack, self.maxack[d]) {
            self.maxack[d] = ack;
            self.flags |= maxack_set(d);
        }
    }

    /// Forgets a pending resync SYN (any other accepted segment does, as
    /// Linux's last_index moves on); the initiator's max ACK it overwrote
    /// is learnt again from its next ACK.
    #[inline]
    fn drop_pending(&mut self) {
        if self.flags & SYN_PENDING != 0 {
            self.flags &= !(SYN_PENDING | maxack_set(self.initiator()));
        }
    }

    /// Parks a SYN with a new ISN from the initiator `d` on a held tuple
    /// (Linux's TCP_CONNTRACK_IGNORE): the end it expects acknowledged,
    /// and its window scale.
    fn park_syn(&mut self, d: usize, s: &TcpSeg) {
        let ws = u16::from(s.wscale.map_or(0xf, |w| w.min(MAX_WSCALE)));
        self.maxack[d] = s.seq.wrapping_add(1).wrapping_add(s.len);
        self.flags &= !(maxack_set(d) | 0xf << PENDING_WS_SHIFT);
        self.flags |= SYN_PENDING | ws << PENDING_WS_SHIFT;
    }

    /// The peer's SYN-ACK acknowledged the parked SYN exactly: both ends
    /// agree on a new connection, so start over from those two segments.
    fn resync(&mut self, r: usize, s: &TcpSeg) {
        let d = r ^ 1;
        let ws = ((self.flags >> PENDING_WS_SHIFT) & 0xf) as u8;
        let mut n = Tracking::origin(d);
        n.end[d] = self.maxack[d];
        // The SYN's window was not kept: the initiator's first ACK sets it.
        n.max_win[d] = 1;
        n.wscale[d] = if ws == 0xf { NO_WSCALE } else { ws };
        n.flags |= seen(d);
        n.syn_from(r, s);
        n.ack_from(r, s.ack);
        *self = n;
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

    /// RST from side `d` that has spoken, as Linux's TCP_CONNTRACK_CLOSE
    /// case: `Ok(true)` closes, `Ok(false)` passes leaving the state
    /// alone (the host will send a challenge ACK, RFC 5961 3.2).
    fn rst_from(&self, d: usize, s: &TcpSeg) -> Result<bool, Invalid> {
        let r = d ^ 1;
        if self.flags & SYN_PENDING != 0
            && d != self.initiator()
            && s.flags & ACK != 0
            && s.ack == self.maxack[r]
        {
            // The peer resets the parked SYN: it has no such connection.
            return Ok(true);
        }
        let known = self.flags & maxack_set(r) != 0;
        let exact = s.seq == self.end[d] || (known && s.seq == self.maxack[r]);
        if exact {
            return Ok(true);
        }
        // Picked up: the window is a guess, so only exact resets count.
        // Below the receiver's highest ACK: an old duplicate, or blind.
        if self.flags & LOOSE != 0
            || (known && seq_gt(self.maxack[r], s.seq))
            || !self.in_window(d, s.seq)
        {
            return Err(Invalid::RstOutOfWindow);
        }
        Ok(false)
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
        t.ack_from(d, s.ack);
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
        if n.flags & seen(d) == 0 {
            // The sender never spoke: only a reset answering the SYN is
            // believable (RFC 793: its ACK must acknowledge the SYN).
            return if f & ACK != 0 && n.flags & seen(r) != 0 && s.ack == n.end[r] {
                Ok(State::TcpClosed)
            } else {
                Err(Invalid::RstOutOfWindow)
            };
        }
        let close = n.rst_from(d, s)?;
        n.drop_pending();
        *t = n;
        return Ok(if close { State::TcpClosed } else { state });
    }

    if f & SYN != 0 {
        if f & ACK == 0 {
            if state == State::TcpSynSent {
                // Retransmitted SYN (possibly a new ISN), or the other side's
                // SYN in a simultaneous open.
                n.syn_from(d, s);
                *t = n;
            } else if d == n.initiator() {
                // A new ISN on a tuple we still hold (CLOSED and TIME_WAIT
                // reopen before this): pass it and remember it. If the
                // peer still has the old connection it sends a challenge
                // ACK (RFC 5961 4.2) and the stale side resets; if not,
                // its SYN-ACK resyncs us below.
                n.park_syn(d, s);
                *t = n;
            }
            // A SYN from the other side of a held tuple passes untouched
            // and is never a resync: accepting its SYN-ACK would open an
            // inbound connection without a pinhole (Linux: invalid).
            return Ok(state);
        }
        if state == State::TcpSynSent {
            // The SYN-ACK must acknowledge the other side's SYN exactly.
            if n.flags & seen(r) == 0 || s.ack != n.end[r] {
                return Err(Invalid::OutOfWindow);
            }
            n.syn_from(d, s);
            n.ack_from(d, s.ack);
            *t = n;
            return Ok(State::TcpSynReceived);
        }
        if n.flags & SYN_PENDING != 0 && d != n.initiator() && s.ack == n.maxack[r] {
            n.resync(d, s);
            *t = n;
            return Ok(State::TcpSynReceived);
        }
        // Retransmitted SYN-ACK (or one about some other SYN).
        n.drop_pending();
        *t = n;
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
    n.drop_pending();
    n.ack_from(d, s.ack);
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
