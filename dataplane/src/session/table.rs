//! One shard: its part of the table's three arrays (index buckets, hot
//! lines, cold records), one FIFO per timeout class and a free list, all
//! linked by u32 slot numbers so nothing is allocated after start-up.
//! Guarded by a spinlock: workers never sleep.
//!
//! Per packet a session costs one index line and one hot line (plus its
//! cold record for TCP); no list is touched. The FIFOs are ordered by when
//! a session was queued, and corrected lazily at their heads (VPP's ACL
//! plugin does the same): a head that was refreshed, or whose class has
//! changed, goes to the tail of its class instead of being expired or
//! evicted.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, Ordering::Relaxed};
use std::sync::Arc;

use super::pages::Zeroed;
use super::tcp::Tracking;
use super::{Key, Nat, NatRelease, State, Timeouts};

/// "No slot" in every u32 link.
pub(super) const NIL: u32 = u32::MAX;

const CLASS_CLOSED: usize = 0;
const CLASS_TRANSITORY: usize = 1;
const CLASS_UDP: usize = 2;
const CLASS_ICMP: usize = 3;
const CLASS_ESTABLISHED: usize = 4;
const CLASS_STREAM: usize = 5;
/// The four evictable classes again, for sessions the WAN opened through a
/// pinhole: their own lists, so the LAN's sessions never lose a slot to one.
const WAN_OFFSET: usize = 6;
const NCLASS: usize = 10;
/// Classes a new flow from the WAN may take a slot from: only its own kind.
const EVICT_FOR_WAN: [usize; 4] = [
    WAN_OFFSET + CLASS_CLOSED,
    WAN_OFFSET + CLASS_TRANSITORY,
    WAN_OFFSET + CLASS_UDP,
    WAN_OFFSET + CLASS_ICMP,
];
/// A new flow from the LAN: flows the internet started go first, then the
/// LAN's own, most expendable first. Established TCP and UDP streams are
/// never evicted.
const EVICT_FOR_LAN: [usize; 8] = [
    WAN_OFFSET + CLASS_CLOSED,
    WAN_OFFSET + CLASS_TRANSITORY,
    WAN_OFFSET + CLASS_UDP,
    WAN_OFFSET + CLASS_ICMP,
    CLASS_CLOSED,
    CLASS_TRANSITORY,
    CLASS_UDP,
    CLASS_ICMP,
];
/// Expired heads freed before evicting when a shard is full.
const FULL_REAP: usize = 8;
/// Refreshed heads an eviction moves to the tail before it takes the head
/// it is looking at anyway: bounds one packet's work when every session of
/// a class is busy (they are all recent then, so any is as good a victim).
const EVICT_SCAN: usize = 16;

/// Index lanes per bucket: one cache line of 8 (tag, slot) pairs.
pub(super) const LANES: usize = 8;
/// Sessions per bucket at full load (6 of 8 lanes): probes stay short.
pub(super) const PER_BUCKET: usize = 6;

/// `Hot::meta`: the WAN opened the session (through a pinhole).
const WAN: u8 = 0x01;
/// `Hot::meta`: last_seen moved since the session was queued.
const REFRESHED: u8 = 0x02;
/// `Hot::meta`: the FIFO the session is on (its class when queued) in
/// the high four bits.
const QUEUED_SHIFT: u8 = 4;

/// The timeout class (and so the FIFO) of a state, for a session the LAN
/// started or (`from_wan`) one a pinhole let the WAN start.
#[inline]
pub(super) fn class_of(s: State, from_wan: bool) -> usize {
    let c = base_class(s);
    if from_wan && c < CLASS_ESTABLISHED {
        c + WAN_OFFSET
    } else {
        c
    }
}

#[inline]
fn base_class(s: State) -> usize {
    match s {
        State::TcpClosed => CLASS_CLOSED,
        State::TcpSynSent
        | State::TcpSynReceived
        | State::TcpFinWait
        | State::TcpClosing
        | State::TcpTimeWait => CLASS_TRANSITORY,
        State::Udp => CLASS_UDP,
        State::Icmp => CLASS_ICMP,
        State::TcpEstablished => CLASS_ESTABLISHED,
        State::UdpStream => CLASS_STREAM,
    }
}

pub(super) fn class_timeout(t: &Timeouts, class: usize) -> u32 {
    let class = if class >= WAN_OFFSET {
        class - WAN_OFFSET
    } else {
        class
    };
    match class {
        CLASS_CLOSED => t.tcp_closed,
        CLASS_TRANSITORY => t.tcp_transitory,
        CLASS_UDP => t.udp,
        CLASS_ICMP => t.icmp,
        CLASS_ESTABLISHED => t.tcp_established,
        _ => t.udp_stream,
    }
}

/// Seconds since `last` on a wrapping clock. A `now` slightly behind `last`
/// (another core stamped the entry with a newer second) counts as 0 rather
/// than as a 136-year idle time.
#[inline]
pub(super) fn idle(last: u32, now: u32) -> u32 {
    let d = now.wrapping_sub(last);
    if (d as i32) < 0 {
        0
    } else {
        d
    }
}

/// The part of a session every packet reads and writes: one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct Hot {
    pub key: Key,
    pub state: State,
    /// WAN | REFRESHED | queued class << QUEUED_SHIFT.
    meta: u8,
    /// The NAPT44 translation on the same line, so the NAT nodes need no
    /// second lookup: external port, and external address index + 1 (0:
    /// no translation).
    nat: [u16; 2],
    pub last_seen: u32,
    /// Per direction (`Dir::index`); the high bits live in `Cold`.
    packets: [u32; 2],
    bytes: [u32; 2],
}

const _: () = assert!(std::mem::size_of::<Hot>() == 64);
const _: () = assert!(std::mem::size_of::<Cold>() == 44);

impl Hot {
    #[inline]
    pub fn wan_started(&self) -> bool {
        self.meta & WAN != 0
    }

    #[inline]
    pub fn class(&self) -> usize {
        class_of(self.state, self.wan_started())
    }

    #[inline]
    fn queued(&self) -> usize {
        usize::from(self.meta >> QUEUED_SHIFT)
    }

    #[inline]
    pub fn nat(&self) -> Option<Nat> {
        (self.nat[1] != 0).then(|| Nat {
            port: self.nat[0],
            addr: (self.nat[1] - 1) as u8,
        })
    }
}

/// What only TCP segments, counter carries and the expiry lists touch, in
/// an array parallel to the hot lines (same slot number).
#[derive(Clone, Copy)]
#[repr(C)]
pub(super) struct Cold {
    pub track: Tracking,
    /// Carries out of `Hot::bytes` (so 48-bit byte counts) and
    /// `Hot::packets` (40-bit packet counts).
    bytes_hi: [u16; 2],
    packets_hi: [u8; 2],
    /// Low 16 bits of its last-seen second when it was queued: the reaper
    /// looks at a head only once that is its class's timeout ago.
    queued_at: u16,
    /// Neighbours in its FIFO (head = queued first); `next` is also the
    /// free-list link.
    prev: u32,
    next: u32,
}

// SAFETY: integers, arrays of integers and `Tracking` (integers); State's
// zero discriminant is a variant (it is `repr(u8)` from 0).
unsafe impl Zeroed for Hot {}
// SAFETY: integers and `Tracking`, itself integers only.
unsafe impl Zeroed for Cold {}
// SAFETY: atomics of integers.
unsafe impl Zeroed for Bucket {}

/// One index line: 8 x (16-bit tag, 32-bit slot), and how many sessions
/// live further on although their probe passed here (linear probing to the
/// next bucket; a miss stops at the first bucket with a zero count).
/// Atomics so that workers may read a bucket without the lock to prefetch
/// the entry it names; what they decide is always re-read under the lock.
#[repr(C, align(64))]
pub(super) struct Bucket {
    /// Four 16-bit tags per word; 0 is an empty lane.
    tags: [AtomicU64; 2],
    slots: [AtomicU32; LANES],
    overflow: AtomicU32,
}

const _: () = assert!(std::mem::size_of::<Bucket>() == 64);

/// 16 tag bits of a hash (not the bits that pick the shard or the
/// bucket); never 0, which marks an empty lane.
#[inline]
pub(super) fn tag_of(hash: u64) -> u16 {
    ((hash >> 32) as u16).max(1)
}

/// One bit per 16-bit lane of `word` equal to `tag` (exact: no false
/// positives from borrows).
#[inline]
pub(super) fn lanes_eq(word: u64, tag: u16) -> u32 {
    const LO: u64 = 0x7fff_7fff_7fff_7fff;
    let v = word ^ (u64::from(tag) * 0x0001_0001_0001_0001);
    // High bit of a lane set iff the lane is zero.
    let z = !(((v & LO) + LO) | v | LO);
    ((z >> 15) & 1 | (z >> 30) & 2 | (z >> 45) & 4 | (z >> 60) & 8) as u32
}

impl Bucket {
    /// Lanes holding `tag`, as a bit mask (one compare per 4 lanes).
    #[inline]
    pub fn matches(&self, tag: u16) -> u32 {
        lanes_eq(self.tags[0].load(Relaxed), tag) | lanes_eq(self.tags[1].load(Relaxed), tag) << 4
    }

    #[inline]
    pub fn slot(&self, lane: u32) -> u32 {
        self.slots[lane as usize & (LANES - 1)].load(Relaxed)
    }

    #[inline]
    fn overflowed(&self) -> bool {
        self.overflow.load(Relaxed) != 0
    }

    /// Writers hold the shard lock.
    fn set(&self, lane: usize, tag: u16, slot: u32) {
        self.slots[lane].store(slot, Relaxed);
        let w = &self.tags[lane / 4];
        let sh = (lane % 4) * 16;
        w.store(
            w.load(Relaxed) & !(0xffff << sh) | u64::from(tag) << sh,
            Relaxed,
        );
    }

    fn add_overflow(&self, d: i32) {
        let v = self.overflow.load(Relaxed);
        self.overflow.store(v.wrapping_add_signed(d), Relaxed);
    }
}

/// Per-shard counters, changed only under the shard lock so their sums stay
/// consistent with `used`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counters {
    pub created: u64,
    pub expired: u64,
    pub evicted: u64,
    pub refused: u64,
    pub invalid: u64,
    /// Sessions dropped by `clear` (not in `Stats`, kept for the invariant).
    pub cleared: u64,
    /// FIFO heads moved to a tail instead of expiring (for tests).
    pub requeued: u64,
}

/// Moves a reap with budget `budget` may make: a few per session it may
/// free, so a turn stays bounded however many sessions were refreshed.
pub(super) fn reap_moves(budget: usize) -> usize {
    budget.saturating_mul(4).saturating_add(16)
}

/// Where a shard's part of each array starts, and its size. Fixed at
/// construction, so readable without the lock.
#[derive(Clone, Copy)]
pub(super) struct Span {
    pub hot: *mut Hot,
    pub cold: *mut Cold,
    pub buckets: *const Bucket,
    pub slots: u32,
    pub nbuckets: u32,
}

impl Span {
    /// The bucket a hash starts probing at (Lemire's multiply-shift: any
    /// bucket count, no modulo).
    #[inline]
    pub fn home(&self, hash: u64) -> usize {
        ((u64::from(hash as u32) * u64::from(self.nbuckets)) >> 32) as usize
    }

    #[inline]
    pub fn buckets(&self) -> &[Bucket] {
        // SAFETY: `nbuckets` zeroed buckets of the table's index region,
        // which outlives every shard; buckets are atomics (shared access).
        unsafe { std::slice::from_raw_parts(self.buckets, self.nbuckets as usize) }
    }

    /// Prefetch of the hot line (and for TCP the cold record) of slot `i`,
    /// which may come from an unlocked read: bounds-checked, never read.
    #[inline(always)]
    pub fn prefetch_entry(&self, i: u32, cold: bool) {
        if i < self.slots {
            prefetch(self.hot.wrapping_add(i as usize) as *const u8);
            if cold {
                prefetch(self.cold.wrapping_add(i as usize) as *const u8);
            }
        }
    }
}

#[inline(always)]
pub(super) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

pub(super) struct Inner {
    span: Span,
    seeds: [u64; 2],
    head: [u32; NCLASS],
    tail: [u32; NCLASS],
    free: u32,
    pub used: u32,
    pub counters: Counters,
    /// Told of every translated session that goes, so its port does too.
    pub nat_release: Option<Arc<dyn NatRelease>>,
}

impl Inner {
    fn new(span: Span, seeds: [u64; 2]) -> Self {
        let mut s = Inner {
            span,
            seeds,
            head: [NIL; NCLASS],
            tail: [NIL; NCLASS],
            free: NIL,
            used: 0,
            counters: Counters::default(),
            nat_release: None,
        };
        s.reset();
        s
    }

    fn reset(&mut self) {
        for b in self.span.buckets() {
            b.tags[0].store(0, Relaxed);
            b.tags[1].store(0, Relaxed);
            b.overflow.store(0, Relaxed);
        }
        self.head = [NIL; NCLASS];
        self.tail = [NIL; NCLASS];
        let n = self.span.slots;
        for (i, c) in self.colds_mut().iter_mut().enumerate() {
            let next = i as u32 + 1;
            c.next = if next < n { next } else { NIL };
        }
        self.free = if n > 0 { 0 } else { NIL };
        self.used = 0;
    }

    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.span.slots as usize
    }

    #[inline]
    fn hots(&self) -> &[Hot] {
        // SAFETY: this shard's `slots` lines of the hot region (which
        // outlives the shard), reached only through the shard lock.
        unsafe { std::slice::from_raw_parts(self.span.hot, self.span.slots as usize) }
    }

    #[inline]
    fn hots_mut(&mut self) -> &mut [Hot] {
        // SAFETY: as `hots`, and `&mut self` means we hold the lock.
        unsafe { std::slice::from_raw_parts_mut(self.span.hot, self.span.slots as usize) }
    }

    #[inline]
    fn colds(&self) -> &[Cold] {
        // SAFETY: as `hots`, for the cold region.
        unsafe { std::slice::from_raw_parts(self.span.cold, self.span.slots as usize) }
    }

    #[inline]
    fn colds_mut(&mut self) -> &mut [Cold] {
        // SAFETY: as `hots_mut`, for the cold region.
        unsafe { std::slice::from_raw_parts_mut(self.span.cold, self.span.slots as usize) }
    }

    #[inline]
    pub fn hot(&self, i: u32) -> &Hot {
        &self.hots()[i as usize]
    }

    #[inline]
    pub fn cold(&self, i: u32) -> &Cold {
        &self.colds()[i as usize]
    }

    #[inline]
    pub fn cold_mut(&mut self, i: u32) -> &mut Cold {
        &mut self.colds_mut()[i as usize]
    }

    #[inline]
    fn next_bucket(&self, b: usize) -> usize {
        if b + 1 == self.span.nbuckets as usize {
            0
        } else {
            b + 1
        }
    }

    #[inline]
    pub fn find(&self, key: &Key, hash: u64) -> Option<u32> {
        let tag = tag_of(hash);
        let buckets = self.span.buckets();
        let mut b = self.span.home(hash);
        for _ in 0..buckets.len() {
            let bk = &buckets[b];
            let mut m = bk.matches(tag);
            while m != 0 {
                let i = bk.slot(m.trailing_zeros());
                if self.hots().get(i as usize).is_some_and(|h| h.key == *key) {
                    return Some(i);
                }
                m &= m - 1;
            }
            if !bk.overflowed() {
                return None;
            }
            b = self.next_bucket(b);
        }
        None
    }

    /// Indexes slot `i` under `hash`: the first bucket with an empty lane
    /// from the home bucket on (there is one: lanes outnumber slots).
    fn index_insert(&mut self, hash: u64, i: u32) {
        let tag = tag_of(hash);
        let buckets = self.span.buckets();
        let mut b = self.span.home(hash);
        for _ in 0..buckets.len() {
            let bk = &buckets[b];
            let empty = bk.matches(0);
            if empty != 0 {
                bk.set(empty.trailing_zeros() as usize, tag, i);
                return;
            }
            bk.add_overflow(1);
            b = self.next_bucket(b);
        }
        debug_assert!(false, "index full");
    }

    fn index_remove(&mut self, hash: u64, i: u32) {
        let tag = tag_of(hash);
        let buckets = self.span.buckets();
        let mut b = self.span.home(hash);
        for _ in 0..buckets.len() {
            let bk = &buckets[b];
            let mut m = bk.matches(tag);
            while m != 0 {
                let lane = m.trailing_zeros();
                if bk.slot(lane) == i {
                    bk.set(lane as usize, 0, NIL);
                    return;
                }
                m &= m - 1;
            }
            bk.add_overflow(-1);
            b = self.next_bucket(b);
        }
        debug_assert!(false, "slot not indexed");
    }

    pub fn is_expired(&self, i: u32, now: u32, t: &Timeouts) -> bool {
        let h = self.hot(i);
        idle(h.last_seen, now) > class_timeout(t, h.class())
    }

    /// Queues slot `i` on the FIFO of `class`, as of its last-seen second
    /// (not now: a session moved at its head is then looked at again just
    /// when it is due, not a whole timeout later).
    fn link_tail(&mut self, i: u32, class: usize) {
        let tail = self.tail[class];
        let seen = self.hot(i).last_seen;
        let c = self.cold_mut(i);
        c.prev = tail;
        c.next = NIL;
        c.queued_at = seen as u16;
        if tail == NIL {
            self.head[class] = i;
        } else {
            self.cold_mut(tail).next = i;
        }
        self.tail[class] = i;
        let h = &mut self.hots_mut()[i as usize];
        h.meta = h.meta & WAN | (class as u8) << QUEUED_SHIFT;
    }

    fn unlink(&mut self, i: u32) {
        let Cold { prev, next, .. } = *self.cold(i);
        let class = self.hot(i).queued();
        if prev == NIL {
            self.head[class] = next;
        } else {
            self.cold_mut(prev).next = next;
        }
        if next == NIL {
            self.tail[class] = prev;
        } else {
            self.cold_mut(next).prev = prev;
        }
    }

    /// To the tail of the FIFO of its class now.
    fn requeue(&mut self, i: u32) {
        let class = self.hot(i).class();
        self.unlink(i);
        self.link_tail(i, class);
    }

    /// Unindexes and unlinks a live session (`hash` its key's hash) and
    /// returns its slot to the free list.
    pub fn free(&mut self, i: u32, hash: u64) {
        self.release_nat(i);
        self.index_remove(hash, i);
        self.unlink(i);
        let free = self.free;
        self.cold_mut(i).next = free;
        self.free = i;
        self.used -= 1;
    }

    /// Gives slot `i`'s translation back (as of its last packet, from
    /// which the port's grace period runs) and forgets it.
    fn release_nat(&mut self, i: u32) {
        let h = &mut self.hots_mut()[i as usize];
        let (nat, proto, seen) = (h.nat(), h.key.proto, h.last_seen);
        h.nat = [0; 2];
        if let (Some(n), Some(r)) = (nat, &self.nat_release) {
            r.release(proto, n, seen);
        }
    }

    /// Sets the translation of live slot `i`.
    #[inline]
    pub fn set_nat(&mut self, i: u32, nat: Nat) {
        self.hots_mut()[i as usize].nat = [nat.port, u16::from(nat.addr) + 1];
    }

    fn free_unhashed(&mut self, i: u32) {
        let hash = super::hash_key(self.seeds, &self.hot(i).key);
        self.free(i, hash);
    }

    /// Frees up to `budget` expired sessions from the FIFO heads, moving
    /// refreshed or reclassified heads to their tails on the way, at most
    /// `moves` of them (taken off it), so a turn's work is bounded too.
    pub fn reap(&mut self, now: u32, t: &Timeouts, budget: usize, moves: &mut usize) -> usize {
        let mut freed = 0;
        for class in 0..NCLASS {
            while freed < budget && *moves > 0 {
                let h = self.head[class];
                if h == NIL {
                    break;
                }
                let queued_for = (now as u16).wrapping_sub(self.cold(h).queued_at);
                if u32::from(queued_for) < class_timeout(t, class).min(u32::from(i16::MAX as u16)) {
                    // Not due yet, and (the FIFO being in queueing order,
                    // give or take the moved ones) neither is what follows.
                    break;
                }
                let hot = self.hot(h);
                let cur = hot.class();
                if idle(hot.last_seen, now) > class_timeout(t, cur) {
                    self.free_unhashed(h);
                    freed += 1;
                } else if cur != class || hot.meta & REFRESHED != 0 {
                    self.requeue(h);
                    *moves -= 1;
                    self.counters.requeued += 1;
                } else {
                    // Queued no later than anything behind it and not
                    // refreshed since: nothing behind it is due before it.
                    break;
                }
            }
        }
        self.counters.expired += freed as u64;
        freed
    }

    /// The oldest session a new flow from the WAN (`from_wan`) or the LAN
    /// may take the slot of, fixing up lazily queued heads on the way.
    fn victim(&mut self, from_wan: bool) -> Option<u32> {
        let order: &[usize] = if from_wan {
            &EVICT_FOR_WAN
        } else {
            &EVICT_FOR_LAN
        };
        for &class in order {
            let mut scanned = 0;
            loop {
                let h = self.head[class];
                if h == NIL {
                    break;
                }
                let hot = self.hot(h);
                let cur = hot.class();
                if cur != class && !order.contains(&cur) {
                    // Now established (or the other side's kind): it
                    // belongs on another list, where it is safe.
                    self.requeue(h);
                } else if hot.meta & REFRESHED != 0 && scanned < EVICT_SCAN {
                    self.requeue(h);
                    scanned += 1;
                } else {
                    return Some(h);
                }
            }
        }
        None
    }

    /// A free slot: from the free list, else by reaping expired sessions,
    /// else by evicting the oldest non-established session a new flow from
    /// the WAN (`from_wan`) or the LAN may take.
    fn alloc(&mut self, now: u32, t: &Timeouts, from_wan: bool) -> Option<u32> {
        if self.free == NIL {
            self.reap(now, t, FULL_REAP, &mut reap_moves(FULL_REAP));
        }
        if self.free == NIL {
            let victim = self.victim(from_wan)?;
            self.free_unhashed(victim);
            self.counters.evicted += 1;
        }
        let i = self.free;
        self.free = self.cold(i).next;
        self.used += 1;
        Some(i)
    }

    /// Makes a new session; None if the shard holds only sessions it may
    /// not evict.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        key: &Key,
        hash: u64,
        state: State,
        track: Tracking,
        now: u32,
        t: &Timeouts,
    ) -> Option<u32> {
        let from_wan = track.wan_started();
        let i = self.alloc(now, t, from_wan)?;
        self.hots_mut()[i as usize] = Hot {
            key: *key,
            state,
            meta: if from_wan { WAN } else { 0 },
            nat: [0; 2],
            last_seen: now,
            packets: [0; 2],
            bytes: [0; 2],
        };
        let c = self.cold_mut(i);
        c.track = track;
        c.bytes_hi = [0; 2];
        c.packets_hi = [0; 2];
        self.index_insert(hash, i);
        let class = self.hot(i).class();
        self.link_tail(i, class);
        Some(i)
    }

    /// Counts one packet of direction `d` (the carries are rare, so the
    /// cold record is normally not written).
    #[inline]
    pub fn count(&mut self, i: u32, d: usize, bytes: u32) {
        let h = &mut self.hots_mut()[i as usize];
        let (p, pc) = h.packets[d].overflowing_add(1);
        let (b, bc) = h.bytes[d].overflowing_add(bytes);
        h.packets[d] = p;
        h.bytes[d] = b;
        if pc || bc {
            let c = self.cold_mut(i);
            c.packets_hi[d] = c.packets_hi[d].wrapping_add(u8::from(pc));
            c.bytes_hi[d] = c.bytes_hi[d].wrapping_add(u16::from(bc));
        }
    }

    /// A session's new state. A class with a shorter timeout than the one
    /// it is queued under (an RST, a FIN) moves it now, so it expires on
    /// time, and so does leaving the established classes, so eviction
    /// finds it (whatever the configured timeouts); a longer one (the
    /// handshake done, a reply) waits for the FIFO head to reach it.
    #[inline]
    pub fn set_state(&mut self, i: u32, state: State, t: &Timeouts) {
        let h = &mut self.hots_mut()[i as usize];
        if h.state == state {
            return;
        }
        h.state = state;
        let (class, queued) = (h.class(), h.queued());
        let settled = |c: usize| c == CLASS_ESTABLISHED || c == CLASS_STREAM;
        if class != queued
            && (class_timeout(t, class) < class_timeout(t, queued)
                || settled(queued) && !settled(class))
        {
            self.requeue(i);
        }
    }

    /// Counts a packet and refreshes the session: a store only when the
    /// second changed, never a list operation.
    #[inline]
    pub fn touch(&mut self, i: u32, d: usize, bytes: u32, now: u32) {
        self.count(i, d, bytes);
        let h = &mut self.hots_mut()[i as usize];
        // Never move last_seen backwards (clock skew between cores).
        if (now.wrapping_sub(h.last_seen) as i32) > 0 {
            h.last_seen = now;
            h.meta |= REFRESHED;
        }
    }

    /// Calls `f` on every live session (hot line, cold record, 64-bit
    /// packet and byte counts per direction), FIFO order within each class.
    pub fn for_each(&self, mut f: impl FnMut(&Hot, &Cold, [u64; 2], [u64; 2])) {
        for class in 0..NCLASS {
            let mut i = self.head[class];
            while i != NIL {
                let (h, c) = (self.hot(i), self.cold(i));
                let wide =
                    |hi: [u64; 2], lo: [u32; 2]| [0, 1].map(|d| hi[d] << 32 | u64::from(lo[d]));
                let packets = wide(c.packets_hi.map(u64::from), h.packets);
                let bytes = wide(c.bytes_hi.map(u64::from), h.bytes);
                f(h, c, packets, bytes);
                i = c.next;
            }
        }
    }

    pub fn clear(&mut self) {
        if self.nat_release.is_some() {
            for class in 0..NCLASS {
                let mut i = self.head[class];
                while i != NIL {
                    self.release_nat(i);
                    i = self.cold(i).next;
                }
            }
        }
        self.counters.cleared += u64::from(self.used);
        self.reset();
    }

    /// Checks every structural invariant; for tests.
    #[cfg(test)]
    pub fn audit(&self) {
        let mut listed = 0u32;
        for class in 0..NCLASS {
            let mut prev = NIL;
            let mut i = self.head[class];
            while i != NIL {
                let c = self.cold(i);
                assert_eq!(self.hot(i).queued(), class, "entry on the wrong list");
                assert_eq!(c.prev, prev, "broken back link");
                let h = self.hot(i);
                let hash = super::hash_key(self.seeds, &h.key);
                assert_eq!(self.find(&h.key, hash), Some(i), "listed entry not indexed");
                listed += 1;
                assert!(listed <= self.used, "list cycle");
                prev = i;
                i = c.next;
            }
            assert_eq!(self.tail[class], prev, "wrong tail");
        }
        assert_eq!(listed, self.used);
        // Every lane in use names a distinct live slot, and the overflow
        // counts are exactly the probes that pass each bucket.
        let buckets = self.span.buckets();
        let mut indexed = 0u32;
        let mut passes = vec![0u32; buckets.len()];
        for (b, bk) in buckets.iter().enumerate() {
            for lane in 0..LANES as u32 {
                let tag = (bk.tags[lane as usize / 4].load(Relaxed) >> (lane % 4 * 16)) as u16;
                if tag == 0 {
                    continue;
                }
                indexed += 1;
                let i = bk.slot(lane);
                let hash = super::hash_key(self.seeds, &self.hot(i).key);
                assert_eq!(tag, tag_of(hash), "wrong tag");
                let mut p = self.span.home(hash);
                while p != b {
                    passes[p] += 1;
                    p = self.next_bucket(p);
                }
            }
        }
        assert_eq!(indexed, self.used, "index and lists disagree");
        for (bk, n) in buckets.iter().zip(passes) {
            assert_eq!(bk.overflow.load(Relaxed), n, "overflow count");
        }
        let mut free = 0usize;
        let mut i = self.free;
        while i != NIL {
            free += 1;
            assert!(free <= self.slots(), "free-list cycle");
            i = self.cold(i).next;
        }
        assert_eq!(free + self.used as usize, self.slots());
    }
}

/// A shard on its own cache line(s), so locks of different shards do not
/// share a line between cores.
#[repr(align(64))]
/// A spinlock: workers never sleep, and every critical section is O(1)
/// (or bounded by a budget on the control path), so spinning beats sleeping.
pub(super) struct SpinLock(AtomicBool);

impl SpinLock {
    pub const fn new() -> Self {
        SpinLock(AtomicBool::new(false))
    }

    #[inline]
    pub fn lock(&self) -> SpinGuard<'_> {
        loop {
            if self
                .0
                .compare_exchange_weak(false, true, Ordering::Acquire, Relaxed)
                .is_ok()
            {
                return SpinGuard(self);
            }
            // Wait on a plain load so the line stays shared while it is held.
            while self.0.load(Relaxed) {
                std::hint::spin_loop();
            }
        }
    }
}

/// Holds a `SpinLock` until dropped.
pub(super) struct SpinGuard<'a>(&'a SpinLock);

impl Drop for SpinGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        (self.0).0.store(false, Ordering::Release);
    }
}

pub(super) struct Shard {
    lock: SpinLock,
    /// Read without the lock, to prefetch.
    pub span: Span,
    inner: UnsafeCell<Inner>,
}

// SAFETY: `inner` is reached only through a `ShardGuard`. A guard exists
// only while its thread holds either this shard's lock or, for a table
// that locks whole chunks (`Locking::Chunk` in mod.rs), the table's lock,
// which every path to every shard of such a table then takes: a table
// uses one scheme for its whole life. Both locks are acquired with Acquire
// and released with Release, so at most one thread accesses `Inner` (and
// the hot and cold lines of its span) at a time and its writes are visible
// to the next holder. `span` is immutable; its buckets are atomics. The
// regions the pointers name belong to the `SessionTable` that owns the
// shards.
unsafe impl Sync for Shard {}
// SAFETY: as above; nothing in a shard is tied to a thread.
unsafe impl Send for Shard {}

impl Shard {
    pub fn new(span: Span, seeds: [u64; 2]) -> Self {
        Shard {
            lock: SpinLock::new(),
            span,
            inner: UnsafeCell::new(Inner::new(span, seeds)),
        }
    }

    /// Spins until the shard is ours.
    #[inline]
    pub fn lock(&self) -> ShardGuard<'_> {
        ShardGuard {
            shard: self,
            _held: Some(self.lock.lock()),
        }
    }

    /// The shard, under a lock the caller already holds for it.
    ///
    /// # Safety
    /// The caller holds a lock that every other access to this shard's
    /// `Inner` also takes for as long as the guard lives (the table lock of
    /// a `Locking::Chunk` table), and never calls `lock` on this shard.
    #[inline]
    pub unsafe fn assume_locked(&self) -> ShardGuard<'_> {
        ShardGuard {
            shard: self,
            _held: None,
        }
    }
}

pub(super) struct ShardGuard<'a> {
    shard: &'a Shard,
    /// The shard's own lock, or None under the table's (`assume_locked`).
    _held: Option<SpinGuard<'a>>,
}

impl Deref for ShardGuard<'_> {
    type Target = Inner;
    #[inline]
    fn deref(&self) -> &Inner {
        // SAFETY: this guard exists only under a lock (see `unsafe impl Sync`).
        unsafe { &*self.shard.inner.get() }
    }
}

impl DerefMut for ShardGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Inner {
        // SAFETY: as above, and `&mut self` makes this the only reference
        // derived from the guard.
        unsafe { &mut *self.shard.inner.get() }
    }
}
