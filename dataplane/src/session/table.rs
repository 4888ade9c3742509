//! One shard: a slab of entries, a chained hash index and one LRU list per
//! timeout class, all linked by u32 slot numbers so the shard is allocated
//! once and never grows. Guarded by a spinlock: workers never sleep.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

use super::tcp::Tracking;
use super::{Key, State, Timeouts};

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

/// The timeout class (and so the LRU list) of a state, for a session the
/// LAN started or (`from_wan`) one a pinhole let the WAN start.
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

/// One session slot.
#[derive(Clone, Copy)]
pub(super) struct Entry {
    pub key: Key,
    /// Per direction, indexed by `Dir::index`.
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub last_seen: u32,
    /// Low 32 bits of the key hash: bucket choice and a cheap pre-compare.
    hash: u32,
    /// Next in the bucket chain, or in the free list.
    chain: u32,
    /// Neighbours in the class LRU list (head = least recently seen).
    prev: u32,
    next: u32,
    pub track: Tracking,
    pub state: State,
}

impl Entry {
    #[inline]
    pub fn class(&self) -> usize {
        class_of(self.state, self.track.wan_started())
    }

    const EMPTY: Entry = Entry {
        key: Key {
            int_addr: [0; 16],
            ext_addr: [0; 16],
            int_port: 0,
            ext_port: 0,
            proto: 0,
        },
        packets: [0; 2],
        bytes: [0; 2],
        last_seen: 0,
        hash: 0,
        chain: NIL,
        prev: NIL,
        next: NIL,
        track: Tracking::EMPTY,
        state: State::Udp,
    };
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
}

pub(super) struct Inner {
    entries: Box<[Entry]>,
    /// Heads of the hash chains; length is a power of two.
    buckets: Box<[u32]>,
    head: [u32; NCLASS],
    tail: [u32; NCLASS],
    free: u32,
    pub used: u32,
    pub counters: Counters,
}

impl Inner {
    fn new(slots: usize) -> Self {
        let mut s = Inner {
            entries: vec![Entry::EMPTY; slots].into_boxed_slice(),
            buckets: vec![NIL; slots.next_power_of_two()].into_boxed_slice(),
            head: [NIL; NCLASS],
            tail: [NIL; NCLASS],
            free: NIL,
            used: 0,
            counters: Counters::default(),
        };
        s.reset();
        s
    }

    fn reset(&mut self) {
        self.buckets.fill(NIL);
        self.head = [NIL; NCLASS];
        self.tail = [NIL; NCLASS];
        let n = self.entries.len() as u32;
        for (i, e) in self.entries.iter_mut().enumerate() {
            let next = i as u32 + 1;
            e.chain = if next < n { next } else { NIL };
        }
        self.free = if n > 0 { 0 } else { NIL };
        self.used = 0;
    }

    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    pub fn entry(&self, i: u32) -> &Entry {
        &self.entries[i as usize]
    }

    #[inline]
    pub fn entry_mut(&mut self, i: u32) -> &mut Entry {
        &mut self.entries[i as usize]
    }

    #[inline]
    fn bucket(&self, hash: u32) -> usize {
        hash as usize & (self.buckets.len() - 1)
    }

    pub fn find(&self, key: &Key, hash: u32) -> Option<u32> {
        let mut i = self.buckets[self.bucket(hash)];
        while i != NIL {
            let e = self.entry(i);
            if e.hash == hash && e.key == *key {
                return Some(i);
            }
            i = e.chain;
        }
        None
    }

    pub fn is_expired(&self, i: u32, now: u32, t: &Timeouts) -> bool {
        let e = self.entry(i);
        idle(e.last_seen, now) > class_timeout(t, e.class())
    }

    fn link_tail(&mut self, i: u32, class: usize) {
        let tail = self.tail[class];
        let e = self.entry_mut(i);
        e.prev = tail;
        e.next = NIL;
        if tail == NIL {
            self.head[class] = i;
        } else {
            self.entry_mut(tail).next = i;
        }
        self.tail[class] = i;
    }

    fn unlink(&mut self, i: u32, class: usize) {
        let (prev, next) = {
            let e = self.entry(i);
            (e.prev, e.next)
        };
        if prev == NIL {
            self.head[class] = next;
        } else {
            self.entry_mut(prev).next = next;
        }
        if next == NIL {
            self.tail[class] = prev;
        } else {
            self.entry_mut(next).prev = prev;
        }
    }

    /// Unlinks a live entry from its list and chain and returns its slot.
    pub fn free(&mut self, i: u32) {
        let (class, hash, chain) = {
            let e = self.entry(i);
            (e.class(), e.hash, e.chain)
        };
        self.unlink(i, class);
        let b = self.bucket(hash);
        if self.buckets[b] == i {
            self.buckets[b] = chain;
        } else {
            let mut p = self.buckets[b];
            while p != NIL {
                let pe = self.entry_mut(p);
                if pe.chain == i {
                    pe.chain = chain;
                    break;
                }
                p = pe.chain;
            }
        }
        let free = self.free;
        self.entry_mut(i).chain = free;
        self.free = i;
        self.used -= 1;
    }

    /// Frees up to `budget` expired sessions from the list heads.
    pub fn reap(&mut self, now: u32, t: &Timeouts, budget: usize) -> usize {
        let mut freed = 0;
        for class in 0..NCLASS {
            let timeout = class_timeout(t, class);
            while freed < budget {
                let h = self.head[class];
                if h == NIL || idle(self.entry(h).last_seen, now) <= timeout {
                    break;
                }
                self.free(h);
                freed += 1;
            }
        }
        self.counters.expired += freed as u64;
        freed
    }

    /// A free slot: from the free list, else by reaping expired sessions,
    /// else by evicting the oldest non-established session a new flow from
    /// the WAN (`from_wan`) or the LAN may take.
    fn alloc(&mut self, now: u32, t: &Timeouts, from_wan: bool) -> Option<u32> {
        if self.free == NIL {
            self.reap(now, t, FULL_REAP);
        }
        if self.free == NIL {
            let order: &[usize] = if from_wan {
                &EVICT_FOR_WAN
            } else {
                &EVICT_FOR_LAN
            };
            let victim = order.iter().map(|&c| self.head[c]).find(|&h| h != NIL)?;
            self.free(victim);
            self.counters.evicted += 1;
        }
        let i = self.free;
        self.free = self.entry(i).chain;
        self.used += 1;
        Some(i)
    }

    /// Makes a new session; None if the shard holds only established ones.
    pub fn insert(
        &mut self,
        key: &Key,
        hash: u32,
        state: State,
        track: Tracking,
        now: u32,
        t: &Timeouts,
    ) -> Option<u32> {
        let i = self.alloc(now, t, track.wan_started())?;
        let b = self.bucket(hash);
        let chain = self.buckets[b];
        *self.entry_mut(i) = Entry {
            key: *key,
            packets: [0; 2],
            bytes: [0; 2],
            last_seen: now,
            hash,
            chain,
            prev: NIL,
            next: NIL,
            track,
            state,
        };
        self.buckets[b] = i;
        let class = self.entry(i).class();
        self.link_tail(i, class);
        Some(i)
    }

    /// Counts one packet of direction `d`.
    #[inline]
    pub fn count(&mut self, i: u32, d: usize, bytes: u32) {
        let e = self.entry_mut(i);
        e.packets[d] = e.packets[d].wrapping_add(1);
        e.bytes[d] = e.bytes[d].wrapping_add(u64::from(bytes));
    }

    /// Counts a packet and refreshes the entry (its state already updated;
    /// `old_class` is the list it is on).
    pub fn touch(&mut self, i: u32, old_class: usize, d: usize, bytes: u32, now: u32) {
        self.count(i, d, bytes);
        let e = self.entry_mut(i);
        let class = e.class();
        // Never move last_seen backwards (clock skew between cores).
        let newer = (now.wrapping_sub(e.last_seen) as i32) > 0;
        if newer {
            e.last_seen = now;
        }
        // Lists are ordered by the second of last use: an entry already
        // stamped with this second is in place, which saves the relink
        // (and its neighbours' cache lines) for most packets.
        if newer || class != old_class {
            self.unlink(i, old_class);
            self.link_tail(i, class);
        }
    }

    /// Calls `f` on every live entry, oldest first within each class.
    pub fn for_each(&self, mut f: impl FnMut(&Entry)) {
        for class in 0..NCLASS {
            let mut i = self.head[class];
            while i != NIL {
                let e = self.entry(i);
                f(e);
                i = e.next;
            }
        }
    }

    pub fn clear(&mut self) {
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
                let e = self.entry(i);
                assert_eq!(e.class(), class, "entry on the wrong list");
                assert_eq!(e.prev, prev, "broken back link");
                assert_eq!(
                    self.find(&e.key, e.hash),
                    Some(i),
                    "listed entry not indexed"
                );
                listed += 1;
                assert!(listed <= self.used, "list cycle");
                prev = i;
                i = e.next;
            }
            assert_eq!(self.tail[class], prev, "wrong tail");
        }
        assert_eq!(listed, self.used);
        let mut chained = 0u32;
        for &b in self.buckets.iter() {
            let mut i = b;
            while i != NIL {
                chained += 1;
                assert!(chained <= self.used, "chain cycle");
                i = self.entry(i).chain;
            }
        }
        assert_eq!(chained, self.used);
        let mut free = 0usize;
        let mut i = self.free;
        while i != NIL {
            free += 1;
            assert!(free <= self.entries.len(), "free-list cycle");
            i = self.entry(i).chain;
        }
        assert_eq!(free + self.used as usize, self.entries.len());
    }
}

/// A shard on its own cache line(s), so locks of different shards do not
/// share a line between cores.
#[repr(align(64))]
pub(super) struct Shard {
    locked: AtomicBool,
    inner: UnsafeCell<Inner>,
}

// SAFETY: `inner` is reached only through a `ShardGuard`, and a guard exists
// only while its thread holds `locked` (acquired with Acquire, released with
// Release), so at most one thread accesses `Inner` at a time and its writes
// are visible to the next holder. `Inner` itself is plain owned data (Send).
unsafe impl Sync for Shard {}

impl Shard {
    pub fn new(slots: usize) -> Self {
        Shard {
            locked: AtomicBool::new(false),
            inner: UnsafeCell::new(Inner::new(slots)),
        }
    }

    /// Spins until the shard is ours. Critical sections are O(1) (or bounded
    /// by a budget on the control path), so spinning beats sleeping.
    #[inline]
    pub fn lock(&self) -> ShardGuard<'_> {
        loop {
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return ShardGuard { shard: self };
            }
            // Wait on a plain load so the line stays shared while it is held.
            while self.locked.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        }
    }
}

pub(super) struct ShardGuard<'a> {
    shard: &'a Shard,
}

impl Deref for ShardGuard<'_> {
    type Target = Inner;
    #[inline]
    fn deref(&self) -> &Inner {
        // SAFETY: this guard holds the shard lock (see `unsafe impl Sync`).
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

impl Drop for ShardGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.shard.locked.store(false, Ordering::Release);
    }
}
