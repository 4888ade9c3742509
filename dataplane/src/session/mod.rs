//! Connection tracking: a sharded session table shared by all workers.
//!
//! Fast-path rules: everything is allocated in [`SessionTable::new`] (on
//! huge pages when the kernel gives them); a packet costs one keyed hash,
//! one index line (8 tagged slots, probed with one compare per 4), one
//! 64-byte hot line (plus a cold record for TCP) and one shard spinlock,
//! with no allocation, no syscall and no list operation.
//! [`SessionTable::track_batch`] does a vector in three passes (hash and
//! prefetch the buckets; match tags and prefetch the sessions; then lock,
//! compare and update), so the misses of 32 packets overlap. Each shard
//! keeps one FIFO per timeout class, corrected lazily at its head, so the
//! oldest session of a class is found without scanning.

mod pages;
mod table;
mod tcp;
#[cfg(test)]
mod tests;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

pub use pages::Pages;
use pages::Region;
use table::{
    class_timeout, idle, prefetch, tag_of, Bucket, Cold, Hot, Inner, Shard, ShardGuard, Span,
    SpinGuard, SpinLock,
};
use tcp::{TcpSeg, Tracking};

/// A flow as the firewall sees it: the LAN host's side is "int", the other side "ext".
/// IPv4 addresses are IPv4-mapped (::ffff:a.b.c.d). ICMP echo: int_port = identifier,
/// ext_port = 0 when the LAN host pings, 1 when it is pinged (through a pinhole).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub int_addr: [u8; 16],
    pub ext_addr: [u8; 16],
    pub int_port: u16,
    pub ext_port: u16,
    pub proto: u8,
}

/// What one packet tells the tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    Tcp {
        flags: u8,
        seq: u32,
        ack: u32,
        payload_len: u32,
        window: u16,
        wscale: Option<u8>,
    },
    /// Also used for other protocols with no ports.
    Udp,
    /// Echo request/reply.
    Icmp,
}

/// Direction of a packet: Out = sent by the LAN host (int -> ext), In = ext -> int.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Out,
    In,
}

impl Dir {
    /// Index into the per-direction arrays of an entry.
    #[inline]
    fn index(self) -> usize {
        match self {
            Dir::Out => 0,
            Dir::In => 1,
        }
    }
}

/// Idle timeouts in seconds. Defaults in the spirit of RFC 6092 / RFC 5382 / Linux.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// 2 h 4 min (RFC 5382 REQ-5).
    pub tcp_established: u32,
    /// Opening or closing.
    pub tcp_transitory: u32,
    /// After an accepted RST, like Linux.
    pub tcp_closed: u32,
    /// Seen one way only (RFC 4787).
    pub udp: u32,
    /// Replies seen both ways.
    pub udp_stream: u32,
    pub icmp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_established: 7440,
            tcp_transitory: 240,
            tcp_closed: 10,
            udp: 120,
            udp_stream: 300,
            icmp: 60,
        }
    }
}

/// Result of [`SessionTable::track`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    /// The packet belongs to a known session; state after the update.
    Existing(State),
    /// A new session was made for it.
    Created(State),
    /// No session and `create == false`.
    NotFound,
    /// `create == true` but the shard is full of sessions that may not be evicted.
    Refused,
    /// A TCP segment the tracker rejects; the session (if any) is unchanged.
    Invalid(Invalid),
}

/// Why a TCP segment was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// New TCP session from a segment that may not open one.
    NotSyn,
    /// SYN+FIN, SYN+RST, FIN without ACK, no flags, ...
    BadFlags,
    /// RST whose sequence number is outside the receiver's window.
    RstOutOfWindow,
    /// Segment outside the window, or a SYN-ACK that does not acknowledge the SYN.
    OutOfWindow,
}

/// Session state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    TcpSynSent,
    TcpSynReceived,
    TcpEstablished,
    /// One side sent FIN.
    TcpFinWait,
    /// Both sides sent FIN.
    TcpClosing,
    TcpTimeWait,
    /// RST seen.
    TcpClosed,
    Udp,
    UdpStream,
    Icmp,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::TcpSynSent => "syn-sent",
            State::TcpSynReceived => "syn-received",
            State::TcpEstablished => "established",
            State::TcpFinWait => "fin-wait",
            State::TcpClosing => "closing",
            State::TcpTimeWait => "time-wait",
            State::TcpClosed => "closed",
            State::Udp => "udp",
            State::UdpStream => "udp-stream",
            State::Icmp => "icmp",
        }
    }

    /// TcpEstablished, UdpStream, and echo sessions. An echo session has no
    /// separate "replied" state; the first packet of a flow is marked by
    /// `Track::Created`, so any later packet of it counts as established.
    pub fn is_established(self) -> bool {
        matches!(self, State::TcpEstablished | State::UdpStream | State::Icmp)
    }

    fn is_tcp(self) -> bool {
        !matches!(self, State::Udp | State::UdpStream | State::Icmp)
    }
}

/// Table-wide counters (sums over shards).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub active: u64,
    pub created: u64,
    pub expired: u64,
    pub evicted: u64,
    pub refused: u64,
    pub invalid: u64,
    pub capacity: u64,
}

/// A session's NAPT44 translation, kept on its hot line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nat {
    /// External port (or ICMP echo identifier).
    pub port: u16,
    /// Which external address (an index the NAT owner defines).
    pub addr: u8,
}

/// Whoever hands out translations, told when a translated session is
/// freed (expired, evicted, reopened, cleared) so the port can go back.
/// Called under a shard lock: it must not call into the session table.
pub trait NatRelease: Send + Sync {
    /// `last_seen`: the session's last packet, in the table's seconds.
    fn release(&self, proto: u8, nat: Nat, last_seen: u32);
}

/// One session as `ipoectl show sessions` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub key: Key,
    pub state: State,
    pub idle_s: u32,
    pub expires_in_s: u32,
    pub packets_out: u64,
    pub packets_in: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub nat: Option<Nat>,
}

/// Bytes of memory per session slot: its hot line, its cold record and its
/// share of the index (a 64-byte bucket per `PER_BUCKET` slots, rounded up).
pub const BYTES_PER_SESSION: usize = std::mem::size_of::<Hot>()
    + std::mem::size_of::<Cold>()
    + std::mem::size_of::<Bucket>().div_ceil(table::PER_BUCKET);

/// Packets [`SessionTable::track_batch`] carries through each pass: enough
/// misses in flight, little enough state to stay in L1 (32 x 64 B lines).
pub const CHUNK: usize = 32;

/// One packet for [`SessionTable::track_batch`]: the arguments of
/// [`SessionTable::track`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub key: Key,
    pub seg: Segment,
    pub dir: Dir,
    /// IP length, for the byte counters.
    pub bytes: u32,
    /// Make a session if there is none.
    pub create: bool,
}

impl Request {
    /// A placeholder to fill arrays with.
    pub const EMPTY: Request = Request {
        key: Key {
            int_addr: [0; 16],
            ext_addr: [0; 16],
            int_port: 0,
            ext_port: 0,
            proto: 0,
        },
        seg: Segment::Udp,
        dir: Dir::Out,
        bytes: 0,
        create: false,
    };
}

/// Shards never get fewer slots than this unless the table is smaller, so
/// that eviction within a shard still has a useful choice of victims.
const MIN_SLOTS_PER_SHARD: usize = 32;
const MAX_SHARDS: usize = 256;
/// Expired heads freed on each session creation: keeps `active` honest
/// between control-thread sweeps at a bounded per-packet cost.
/// Timeouts the control thread may change while workers read them (a
/// reload): each field is its own atomic, so a reader sees, per field, the
/// old or the new value; a mix for one packet is harmless.
struct SharedTimeouts([AtomicU32; 6]);

impl SharedTimeouts {
    fn new(t: Timeouts) -> Self {
        let s = SharedTimeouts(Default::default());
        s.store(t);
        s
    }

    fn store(&self, t: Timeouts) {
        let v = [
            t.tcp_established,
            t.tcp_transitory,
            t.tcp_closed,
            t.udp,
            t.udp_stream,
            t.icmp,
        ];
        for (a, v) in self.0.iter().zip(v) {
            a.store(v, Ordering::Relaxed);
        }
    }

    #[inline]
    fn load(&self) -> Timeouts {
        let v = |k: usize| self.0[k].load(Ordering::Relaxed);
        Timeouts {
            tcp_established: v(0),
            tcp_transitory: v(1),
            tcp_closed: v(2),
            udp: v(3),
            udp_stream: v(4),
            icmp: v(5),
        }
    }
}

const LAZY_REAP: usize = 2;

/// How threads reach the shards; fixed for the life of a table.
enum Locking {
    /// Every access locks its shard: workers meet only when two packets
    /// fall in one shard at once. A locked instruction per packet.
    PerShard,
    /// The table has one worker: it takes this lock once per chunk of
    /// `CHUNK` packets and reaches the shards without their locks, so a
    /// packet pays no locked instruction. The control thread's expiry,
    /// `stats` and `show` take the same lock a shard at a time, so the
    /// worker waits at most one shard's bounded work.
    Chunk(SpinLock),
}

/// The table lock of a `Locking::Chunk` table while held (None otherwise).
struct Entered<'a>(Option<SpinGuard<'a>>);

/// The connection-tracking table. Shared (`Arc`) by all workers.
pub struct SessionTable {
    /// Point into the regions below (declared first: dropped first).
    shards: Box<[Shard]>,
    hot: Region<Hot>,
    cold: Region<Cold>,
    index: Region<Bucket>,
    /// Right shift turning a hash into a shard number (64 = one shard).
    shard_shift: u32,
    seeds: [u64; 2],
    timeouts: SharedTimeouts,
    capacity: usize,
    /// Where the next `expire` sweep starts, so a small budget still reaches
    /// every shard over successive calls.
    expire_cursor: AtomicUsize,
    locking: Locking,
}

impl SessionTable {
    /// Preallocates everything. `max_sessions` is a hard bound on the sessions
    /// held, split over shards (0 is treated as 1).
    ///
    /// Panics only if a shard would need more than `u32::MAX - 1` slots.
    /// Any number of threads may track through it at once (each packet
    /// locks its shard); see `for_workers`.
    pub fn new(max_sessions: usize, timeouts: Timeouts) -> Self {
        Self::build(max_sessions, timeouts, true, 0)
    }

    /// As `new`, for a dataplane of `workers` worker threads (plus the
    /// control thread): with one, the worker locks the table once per chunk
    /// instead of a shard per packet. Any number of threads stays correct
    /// either way; more than one worker on a one-worker table only waits.
    pub fn for_workers(max_sessions: usize, timeouts: Timeouts, workers: usize) -> Self {
        Self::build(max_sessions, timeouts, true, workers)
    }

    /// As `new`; `huge` false keeps the arrays on 4 KiB pages (what the
    /// table falls back to when the kernel refuses huge pages).
    pub fn with_pages(max_sessions: usize, timeouts: Timeouts, huge: bool) -> Self {
        Self::build(max_sessions, timeouts, huge, 0)
    }

    /// `workers` == 1 locks per chunk; anything else per shard.
    fn build(max_sessions: usize, timeouts: Timeouts, huge: bool, workers: usize) -> Self {
        let capacity = max_sessions.max(1);
        let want = (capacity / MIN_SLOTS_PER_SHARD).clamp(1, MAX_SHARDS);
        // Largest power of two <= want (so never more shards than sessions).
        let nshards = 1usize << (usize::BITS - 1 - want.leading_zeros());
        let base = capacity / nshards;
        let extra = capacity % nshards;
        assert!(
            base + 1 < table::NIL as usize,
            "session table too large for u32 slot indices"
        );
        let slots_of = |i: usize| base + usize::from(i < extra);
        let nbuckets: usize = (0..nshards)
            .map(|i| slots_of(i).div_ceil(table::PER_BUCKET).max(1))
            .sum();
        let hot = Region::<Hot>::zeroed(capacity, huge);
        let cold = Region::<Cold>::zeroed(capacity, huge);
        let index = Region::<Bucket>::zeroed(nbuckets, huge);
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0x5e55_10c7);
        let s0 = h.finish();
        // A second, independent-looking secret: an odd multiplier.
        let s1 = fmix64(s0 ^ 0x9e37_79b9_7f4a_7c15) | 1;
        let (mut at, mut at_bucket) = (0, 0);
        let shards = (0..nshards)
            .map(|i| {
                let slots = slots_of(i);
                let nb = slots.div_ceil(table::PER_BUCKET).max(1);
                debug_assert!(at + slots <= hot.len() && at_bucket + nb <= index.len());
                let span = Span {
                    hot: hot.ptr().wrapping_add(at),
                    cold: cold.ptr().wrapping_add(at),
                    buckets: index.ptr().wrapping_add(at_bucket),
                    slots: slots as u32,
                    nbuckets: nb as u32,
                };
                at += slots;
                at_bucket += nb;
                Shard::new(span, [s0, s1])
            })
            .collect();
        let pages = [hot.pages(), cold.pages(), index.pages()];
        let mib = (hot.bytes() + cold.bytes() + index.bytes()) as f64 / f64::from(1 << 20);
        if pages.contains(&Pages::Huge) {
            log::info!(
                "session table: {capacity} sessions, {mib:.1} MiB on {}",
                Pages::Huge.name()
            );
        } else if huge && hot.bytes() >= 2 << 20 {
            // Asked for and big enough: the kernel said no (THP off).
            log::warn!(
                "session table: {capacity} sessions, {mib:.1} MiB on {}: huge pages refused",
                Pages::Small.name()
            );
        } else {
            log::info!(
                "session table: {capacity} sessions, {mib:.1} MiB on {}",
                Pages::Small.name()
            );
        }
        SessionTable {
            shards,
            hot,
            cold,
            index,
            shard_shift: 64 - nshards.trailing_zeros(),
            seeds: [s0, s1],
            timeouts: SharedTimeouts::new(timeouts),
            capacity,
            expire_cursor: AtomicUsize::new(0),
            locking: if workers == 1 {
                Locking::Chunk(SpinLock::new())
            } else {
                Locking::PerShard
            },
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts.load()
    }

    /// New idle timeouts (a reload); sessions keep their state and are
    /// judged by the new values from now on.
    pub fn set_timeouts(&self, t: Timeouts) {
        self.timeouts.store(t);
    }

    /// What backs the session arrays: huge pages if any of them got them.
    pub fn pages(&self) -> Pages {
        let p = [self.hot.pages(), self.cold.pages(), self.index.pages()];
        if p.contains(&Pages::Huge) {
            Pages::Huge
        } else {
            Pages::Small
        }
    }

    #[inline]
    fn hash(&self, k: &Key) -> u64 {
        hash_key(self.seeds, k)
    }

    #[inline]
    /// Whether a worker locks whole chunks (`for_workers(_, _, 1)`).
    pub fn locks_per_chunk(&self) -> bool {
        matches!(self.locking, Locking::Chunk(_))
    }

    /// Takes the table lock of a `Chunk` table; nothing for `PerShard`.
    #[inline]
    fn enter(&self) -> Entered<'_> {
        match &self.locking {
            Locking::Chunk(l) => Entered(Some(l.lock())),
            Locking::PerShard => Entered(None),
        }
    }

    /// The only way to a shard's state: under the table lock `e` of a
    /// `Chunk` table, else under the shard's own lock.
    #[inline]
    fn guard<'a>(&'a self, shard: &'a Shard, e: &'a Entered<'_>) -> ShardGuard<'a> {
        match e.0 {
            // SAFETY: a `Chunk` table (fixed at construction) reaches its
            // shards only here, always holding the table lock `e` proves,
            // and never calls `Shard::lock`.
            Some(_) => unsafe { shard.assume_locked() },
            None => shard.lock(),
        }
    }

    /// Runs `f` on every shard's state in turn, under its lock (tests).
    #[cfg(test)]
    fn each_shard(&self, mut f: impl FnMut(&mut Inner)) {
        for shard in self.shards.iter() {
            let e = self.enter();
            f(&mut self.guard(shard, &e));
        }
    }

    /// The sum of `f` over the shards (tests).
    #[cfg(test)]
    fn sum_shards(&self, f: impl Fn(&Inner) -> u64) -> u64 {
        let mut sum = 0;
        self.each_shard(|s| sum += f(s));
        sum
    }

    fn shard(&self, hash: u64) -> &Shard {
        // High bits pick the shard, low bits the bucket: independent choices.
        let i = hash.checked_shr(self.shard_shift).unwrap_or(0) as usize;
        &self.shards[i & (self.shards.len() - 1)]
    }

    /// The per-packet call. Finds the session of `key`; updates its state
    /// machine with `seg` travelling in `dir`, its last-seen time and its
    /// per-direction counters (`bytes` = IP length). If there is none and
    /// `create` is true, makes one (evicting if the shard is full).
    pub fn track(
        &self,
        key: &Key,
        seg: &Segment,
        dir: Dir,
        bytes: u32,
        now_s: u32,
        create: bool,
    ) -> Track {
        let r = Request {
            key: *key,
            seg: *seg,
            dir,
            bytes,
            create,
        };
        let e = self.enter();
        self.track_hashed(&e, &r, self.hash(key), now_s, &self.timeouts.load())
    }

    /// `track` for a vector of packets, `out[i]` the result of `reqs[i]`
    /// (as if tracked one by one, in order). Works through chunks of
    /// `CHUNK` in three passes so the cache misses of a chunk overlap:
    /// hash every key and prefetch its bucket; read the buckets (without
    /// the lock: only to prefetch) and prefetch the sessions they name;
    /// then lock, find and update each, in order.
    ///
    /// Small tables too: a shortcut that skipped the passes below 2048
    /// sessions won on warm caches (criterion) but lost in the real worker,
    /// whose copy-mode I/O evicts the table between vectors (BENCHMARKS.md,
    /// "The flow table", third pass).
    pub fn track_batch(&self, reqs: &[Request], now_s: u32, out: &mut [Track]) {
        let t = &self.timeouts.load();
        // As many as there are answers for (the chunks once zipped them).
        let reqs = &reqs[..reqs.len().min(out.len())];
        self.chunked(reqs, |j, e, r, h| {
            if let Some(o) = out.get_mut(j) {
                *o = self.track_hashed(e, r, h, now_s, t);
            }
        });
    }

    /// The passes of `track_batch`: per chunk, hash every key and
    /// prefetch its bucket; read the buckets (unlocked: only to prefetch)
    /// and prefetch the sessions they name; then, under one `enter`,
    /// `locked(index in reqs, entered, request, hash)` for each in order.
    #[inline(always)]
    fn chunked(
        &self,
        reqs: &[Request],
        mut locked: impl FnMut(usize, &Entered<'_>, &Request, u64),
    ) {
        for (c, rq) in reqs.chunks(CHUNK).enumerate() {
            let mut hashes = [0u64; CHUNK];
            for (h, r) in hashes.iter_mut().zip(rq) {
                *h = self.hash(&r.key);
                let span = &self.shard(*h).span;
                prefetch(span.buckets.wrapping_add(span.home(*h)) as *const u8);
            }
            for (&h, r) in hashes.iter().zip(rq) {
                let span = &self.shard(h).span;
                let b = &span.buckets()[span.home(h)];
                let m = b.matches(tag_of(h));
                if m != 0 {
                    let tcp = matches!(r.seg, Segment::Tcp { .. });
                    span.prefetch_entry(b.slot(m.trailing_zeros()), tcp);
                }
            }
            let e = self.enter();
            for (k, (&h, r)) in hashes.iter().zip(rq).enumerate() {
                locked(c * CHUNK + k, &e, r, h);
            }
        }
    }

    #[inline]
    fn track_hashed(
        &self,
        e: &Entered<'_>,
        r: &Request,
        hash: u64,
        now_s: u32,
        t: &Timeouts,
    ) -> Track {
        let mut guard = self.guard(self.shard(hash), e);
        track_locked(&mut guard, r, hash, now_s, t).0
    }

    /// Tells `release` of every translated session freed from now on.
    pub fn set_nat_release(&self, release: Arc<dyn NatRelease>) {
        for shard in self.shards.iter() {
            let e = self.enter();
            self.guard(shard, &e).nat_release = Some(release.clone());
        }
    }

    /// `track` for the NAPT44 nodes, with the session's translation from
    /// the same lookup. A session that has none (a new one) gets the one
    /// `bind` makes, under the shard lock, so no packet ever sees the
    /// session without it; `bind` failing (ports exhausted) frees the new
    /// session again and the packet is `Refused`. `bind` is only called
    /// when `r.create` is true.
    pub fn track_nat(
        &self,
        r: &Request,
        now_s: u32,
        bind: &mut dyn FnMut() -> Option<Nat>,
    ) -> (Track, Option<Nat>) {
        let hash = self.hash(&r.key);
        let t = &self.timeouts.load();
        let e = self.enter();
        let mut s = self.guard(self.shard(hash), &e);
        nat_locked(&mut s, r, hash, now_s, t, bind)
    }

    /// `track_nat` for a vector, in the passes of `track_batch`:
    /// `out[i]` is what `track_nat` would have returned for `reqs[i]`
    /// (tracked in order, so two packets of one new flow make one session
    /// and one binding). `bind(i)` makes the translation for `reqs[i]`
    /// when its session has none and `create` is set, under the lock as
    /// in `track_nat`.
    pub fn track_nat_batch(
        &self,
        reqs: &[Request],
        now_s: u32,
        mut bind: impl FnMut(usize) -> Option<Nat>,
        out: &mut [(Track, Option<Nat>)],
    ) {
        let t = &self.timeouts.load();
        let reqs = &reqs[..reqs.len().min(out.len())];
        self.chunked(reqs, |j, e, r, h| {
            let mut s = self.guard(self.shard(h), e);
            let res = nat_locked(&mut s, r, h, now_s, t, &mut || bind(j));
            if let Some(o) = out.get_mut(j) {
                *o = res;
            }
        });
    }

    /// Read-only lookup for ICMP errors that quote a packet of this flow:
    /// never creates, never deletes, never refreshes. None if absent or expired.
    pub fn lookup(&self, key: &Key, now_s: u32) -> Option<State> {
        let hash = self.hash(key);
        let e = self.enter();
        let guard = self.guard(self.shard(hash), &e);
        let i = guard.find(key, hash)?;
        if guard.is_expired(i, now_s, &self.timeouts.load()) {
            return None;
        }
        Some(guard.hot(i).state)
    }

    /// Frees expired sessions, looking only at the heads of each shard's
    /// class lists, at most `budget` in all; returns how many were freed.
    /// Sessions refreshed since they were queued are moved to the tail of
    /// their FIFO on the way, at most a few times `budget` in all, so one
    /// call's work is bounded whatever the traffic did.
    pub fn expire(&self, now_s: u32, budget: usize) -> usize {
        let n = self.shards.len();
        let start = self.expire_cursor.load(Ordering::Relaxed);
        let mut freed = 0;
        let mut moves = table::reap_moves(budget);
        for k in 0..n {
            if freed >= budget || moves == 0 {
                // Resume here next time so no shard starves.
                self.expire_cursor
                    .store((start + k) & (n - 1), Ordering::Relaxed);
                return freed;
            }
            let e = self.enter();
            let mut g = self.guard(&self.shards[(start + k) & (n - 1)], &e);
            freed += g.reap(now_s, &self.timeouts.load(), budget - freed, &mut moves);
        }
        freed
    }

    pub fn stats(&self) -> Stats {
        let mut st = Stats {
            capacity: self.capacity as u64,
            ..Stats::default()
        };
        for shard in self.shards.iter() {
            let e = self.enter();
            let g = self.guard(shard, &e);
            let c = g.counters;
            st.active += u64::from(g.used);
            st.created += c.created;
            st.expired += c.expired;
            st.evicted += c.evicted;
            st.refused += c.refused;
            st.invalid += c.invalid;
        }
        st
    }

    /// Up to `limit` live sessions matching `filter` (one shard locked at a
    /// time), plus how many matched in all.
    pub fn snapshot(
        &self,
        now_s: u32,
        limit: usize,
        filter: &dyn Fn(&SessionInfo) -> bool,
    ) -> (Vec<SessionInfo>, usize) {
        let mut out = Vec::with_capacity(limit.min(self.capacity));
        let mut total = 0;
        let t = &self.timeouts.load();
        for shard in self.shards.iter() {
            let e = self.enter();
            let g = self.guard(shard, &e);
            g.for_each(|h, _, packets, bytes| {
                let idle_s = idle(h.last_seen, now_s);
                let timeout = class_timeout(t, h.class());
                if idle_s > timeout {
                    return;
                }
                let info = SessionInfo {
                    key: h.key,
                    state: h.state,
                    idle_s,
                    expires_in_s: timeout - idle_s,
                    packets_out: packets[0],
                    packets_in: packets[1],
                    bytes_out: bytes[0],
                    bytes_in: bytes[1],
                    nat: h.nat(),
                };
                if filter(&info) {
                    total += 1;
                    if out.len() < limit {
                        out.push(info);
                    }
                }
            });
        }
        (out, total)
    }

    /// Drops every session (counters other than `active` are kept).
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let e = self.enter();
            self.guard(shard, &e).clear();
        }
    }
}

/// `track_nat` under the shard lock: the translation is read from (or
/// bound onto) the very slot `track_locked` used, no second lookup.
#[inline]
fn nat_locked(
    s: &mut Inner,
    r: &Request,
    hash: u64,
    now_s: u32,
    t: &Timeouts,
    bind: &mut dyn FnMut() -> Option<Nat>,
) -> (Track, Option<Nat>) {
    let (res, slot) = track_locked(s, r, hash, now_s, t);
    let Some(i) = slot else {
        return (res, None);
    };
    let mut nat = s.hot(i).nat();
    if nat.is_none() && r.create {
        nat = bind();
        match nat {
            Some(n) => s.set_nat(i, n),
            None if matches!(res, Track::Created(_)) => {
                // Never made, as far as the counters go.
                s.free(i, hash);
                s.counters.created -= 1;
                s.counters.refused += 1;
                return (Track::Refused, None);
            }
            None => {}
        }
    }
    (res, nat)
}

/// `track` under the shard lock (`s` is the locked shard of `hash`), and
/// the slot of the session it found or made (`Existing`, `Created`).
fn track_locked(
    s: &mut Inner,
    r: &Request,
    hash: u64,
    now_s: u32,
    t: &Timeouts,
) -> (Track, Option<u32>) {
    let (key, dir, bytes, create) = (&r.key, r.dir, r.bytes, r.create);
    let d = dir.index();
    let tcp_seg = match r.seg {
        Segment::Tcp {
            flags,
            seq,
            ack,
            payload_len,
            window,
            wscale,
        } => Some(TcpSeg {
            flags,
            seq,
            ack,
            len: payload_len,
            window,
            wscale,
        }),
        _ => None,
    };
    if let Some(ts) = &tcp_seg {
        if !tcp::flags_valid(ts.flags) {
            s.counters.invalid += 1;
            return (Track::Invalid(Invalid::BadFlags), None);
        }
    }
    let mut found = s.find(key, hash);
    if let Some(i) = found {
        let state = s.hot(i).state;
        let expired = s.is_expired(i, now_s, t);
        let reopen = !expired && tcp_seg.is_some_and(|ts| tcp::is_reopen(state, ts.flags));
        if reopen && !create {
            // A new connection on a dead tuple is subject to the
            // caller's rules for new flows; leave the old one alone.
            return (Track::NotFound, None);
        }
        if expired || reopen {
            s.free(i, hash);
            s.counters.expired += 1;
            found = None;
        }
    }
    if let Some(i) = found {
        let old = s.hot(i).state;
        let next = match &tcp_seg {
            Some(ts) if old.is_tcp() => tcp::update(old, &mut s.cold_mut(i).track, ts, d),
            // UDP needs only who started it, which the hot line has.
            None if !old.is_tcp() => {
                let origin = Tracking::origin(usize::from(s.hot(i).wan_started()));
                Ok(tcp::udp_update(old, &origin, d))
            }
            // Segment kind does not match the session (caller bug):
            // count the packet, change nothing else.
            _ => Ok(old),
        };
        return match next {
            Ok(state) => {
                // Stamp first: a move to a shorter class's FIFO then
                // queues it as of this packet, not as refreshed since.
                s.touch(i, d, bytes, now_s);
                s.set_state(i, state, t);
                (Track::Existing(state), Some(i))
            }
            Err(why) => {
                s.counters.invalid += 1;
                (Track::Invalid(why), None)
            }
        };
    }
    if !create {
        return (Track::NotFound, None);
    }
    let (state, track) = match (&tcp_seg, &r.seg) {
        (Some(ts), _) => match tcp::open(ts, d) {
            Ok(x) => x,
            Err(why) => {
                s.counters.invalid += 1;
                return (Track::Invalid(why), None);
            }
        },
        (None, Segment::Icmp) => (State::Icmp, Tracking::origin(d)),
        (None, _) => (State::Udp, Tracking::origin(d)),
    };
    s.reap(now_s, t, LAZY_REAP, &mut table::reap_moves(LAZY_REAP));
    match s.insert(key, hash, state, track, now_s, t) {
        Some(i) => {
            s.counters.created += 1;
            s.count(i, d, bytes);
            (Track::Created(state), Some(i))
        }
        None => {
            s.counters.refused += 1;
            (Track::Refused, None)
        }
    }
}

/// Keyed hash of a key: a chain of folded 64x64->128 multiplies with the
/// secret seeds, so remote hosts cannot aim collisions at one bucket. The
/// top bits pick the shard, the low 32 the bucket, bits 32-47 the tag.
#[inline]
fn hash_key(seeds: [u64; 2], k: &Key) -> u64 {
    let [s0, s1] = seeds;
    let ports = u64::from(k.int_port) | u64::from(k.ext_port) << 16 | u64::from(k.proto) << 32;
    let mut h = s0;
    for w in [
        half(&k.int_addr, 0),
        half(&k.int_addr, 8),
        half(&k.ext_addr, 0),
        half(&k.ext_addr, 8),
        ports,
    ] {
        h = fold_mul(h ^ w, s1);
    }
    fmix64(h)
}

/// Native-endian word of an address half (endianness is irrelevant to a hash).
#[inline]
fn half(a: &[u8; 16], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&a[at..at + 8]);
    u64::from_ne_bytes(w)
}

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// MurmurHash3's finalizer: spreads every input bit over the output.
#[inline]
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}
