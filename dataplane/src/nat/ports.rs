//! The port allocator: which ports of a [`PortPool`] are free, who holds
//! the others, and when a freed one may be handed out again.
//!
//! - A two-level bitmap over the pool's dense index (one bit per port, one
//!   summary bit per 64-port word saying it has a free port): a free port
//!   anywhere in the set is found in at most `len / 4096 + 2` word reads,
//!   however full the pool is (65536 ports: 18). The search starts at a
//!   rotating cursor plus a caller's hint (a keyed flow hash), so ports are
//!   not handed out in an order an off-path attacker can follow.
//! - A freed port stays taken for a grace period (a FIFO of release times,
//!   every port in it at most once), so late packets of the old flow, and
//!   the peer's state for it, never meet a new flow on the same port.
//! - An optional per-host limit, counted in a fixed open-addressing table.
//!
//! Everything is sized at construction; refusals are counted, never a panic.

use super::PortPool;

/// Why no port was handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocError {
    /// Every port is in use or in its grace period (`nat/ports-exhausted`).
    Exhausted,
    /// The host already holds its limit of ports.
    HostLimit,
    /// The per-host table is full of other hosts (only with a limit).
    HostsFull,
}

/// What the allocator has done, for `show map` and the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub allocated: u64,
    pub released: u64,
    pub exhausted: u64,
    pub host_limit: u64,
    pub hosts_full: u64,
    /// Releases of a port that was not in use (a caller bug), ignored.
    pub bad_release: u64,
}

/// The settings an allocator is built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Seconds a freed port waits before it is handed out again.
    pub grace_s: u32,
    /// Most ports one LAN host may hold; `None` = no limit.
    pub per_host: Option<u32>,
    /// Distinct LAN hosts the per-host table holds (with a limit only).
    pub max_hosts: u32,
}

/// RFC 4787 REQ-5's minimum UDP mapping lifetime: a peer (or a NAT in front
/// of it) still holding state for the old flow has let it go by then.
pub const DEFAULT_GRACE_S: u32 = 120;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            grace_s: DEFAULT_GRACE_S,
            per_host: None,
            max_hosts: 4096,
        }
    }
}

/// `owner` of an index nobody holds (only read for live indices).
const NO_OWNER: u32 = 0;

pub struct PortAllocator {
    pool: PortPool,
    len: u32,
    /// 1 = not available: in use, in its grace period, reserved, or past
    /// the end of the pool.
    taken: Box<[u64]>,
    /// Bit w = `taken[w]` has a 0 bit.
    summary: Box<[u64]>,
    /// 1 = in use (handed out, not released).
    live: Box<[u64]>,
    /// The host holding each index (LAN IPv4 as u32), `NO_OWNER` if none.
    owner: Box<[u32]>,
    cursor: u32,
    /// Ring of (index, second it was freed), oldest first.
    grace: Box<[(u32, u32)]>,
    grace_head: usize,
    grace_len: usize,
    limits: Limits,
    hosts: HostCounts,
    in_use: u32,
    counters: Counters,
}

impl PortAllocator {
    /// An allocator over `pool`; port 0 is never handed out.
    pub fn new(pool: PortPool, limits: Limits) -> Self {
        let len = pool.len();
        let words = (len as usize).div_ceil(64).max(1);
        let mut a = PortAllocator {
            pool,
            len,
            taken: vec![0; words].into_boxed_slice(),
            summary: vec![0; words.div_ceil(64)].into_boxed_slice(),
            live: vec![0; words].into_boxed_slice(),
            owner: vec![NO_OWNER; len as usize].into_boxed_slice(),
            cursor: 0,
            grace: vec![(0, 0); len as usize].into_boxed_slice(),
            grace_head: 0,
            grace_len: 0,
            limits,
            hosts: HostCounts::new(if limits.per_host.is_some() {
                limits.max_hosts
            } else {
                0
            }),
            in_use: 0,
            counters: Counters::default(),
        };
        // Bits past the end of the pool are never free.
        for i in len..(words * 64) as u32 {
            a.set_taken(i);
        }
        for w in 0..words {
            a.update_summary(w);
        }
        if let Some(i) = pool.index_of(0) {
            a.set_taken(i);
            a.update_summary(i as usize / 64);
        }
        a
    }

    pub fn pool(&self) -> PortPool {
        self.pool
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Ports handed out and not released.
    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    /// Ports released and still in their grace period.
    pub fn in_grace(&self) -> u32 {
        self.grace_len as u32
    }

    /// Ports held by `host` (0 when no per-host limit is set: not counted).
    pub fn host_ports(&self, host: u32) -> u32 {
        self.hosts.get(host)
    }

    /// Whether `port` is handed out now.
    pub fn is_live(&self, port: u16) -> bool {
        self.pool.index_of(port).is_some_and(|i| bit(&self.live, i))
    }

    /// The host holding `port`, if it is in use.
    pub fn owner(&self, port: u16) -> Option<u32> {
        let i = self.pool.index_of(port)?;
        bit(&self.live, i).then(|| self.owner[i as usize])
    }

    /// Takes `port` out of the dynamic pool for good (a port forward).
    /// False if it is not in the pool or not free now.
    pub fn reserve(&mut self, port: u16) -> bool {
        match self.pool.index_of(port) {
            Some(i) if port != 0 && !bit(&self.taken, i) => {
                self.set_taken(i);
                self.update_summary(i as usize / 64);
                true
            }
            _ => false,
        }
    }

    /// A free port for a new mapping of LAN host `host` (its IPv4 address,
    /// not 0.0.0.0). `hint` (e.g. a keyed hash of the flow) moves where the
    /// search starts. Ports whose grace period has ended by `now` are made
    /// free first. Bounded: a few ring entries and at most
    /// `len / 4096 + 2` bitmap words.
    pub fn alloc(&mut self, host: u32, now: u32, hint: u32) -> Result<u16, AllocError> {
        self.expire_grace(now, GRACE_DRAIN);
        if let Some(limit) = self.limits.per_host {
            if self.hosts.get(host) >= limit {
                self.counters.host_limit += 1;
                return Err(AllocError::HostLimit);
            }
            if !self.hosts.has_room_for(host) {
                self.counters.hosts_full += 1;
                return Err(AllocError::HostsFull);
            }
        }
        let start = if self.len == 0 {
            0
        } else {
            ((u64::from(self.cursor) + u64::from(hint)) % u64::from(self.len)) as u32
        };
        let Some(i) = self.find_free(start) else {
            self.counters.exhausted += 1;
            return Err(AllocError::Exhausted);
        };
        self.set_taken(i);
        self.update_summary(i as usize / 64);
        set_bit(&mut self.live, i, true);
        self.owner[i as usize] = host;
        if self.limits.per_host.is_some() {
            self.hosts.add(host, 1);
        }
        self.in_use += 1;
        self.counters.allocated += 1;
        self.cursor = if i + 1 >= self.len { 0 } else { i + 1 };
        // `find_free` only returns indices of the pool.
        Ok(self.pool.port_at(i).unwrap_or(0))
    }

    /// Gives `port` back at `now`: it is handed out again once the grace
    /// period has passed. False (and counted) if it was not in use.
    pub fn release(&mut self, port: u16, now: u32) -> bool {
        let Some(i) = self.pool.index_of(port).filter(|&i| bit(&self.live, i)) else {
            self.counters.bad_release += 1;
            return false;
        };
        set_bit(&mut self.live, i, false);
        let host = std::mem::replace(&mut self.owner[i as usize], NO_OWNER);
        if self.limits.per_host.is_some() {
            self.hosts.add(host, -1);
        }
        self.in_use -= 1;
        self.counters.released += 1;
        if self.limits.grace_s == 0 {
            self.clear_taken(i);
        } else {
            // Room: a port is in the ring at most once, and the ring holds
            // every index of the pool.
            let at = (self.grace_head + self.grace_len) % self.grace.len();
            self.grace[at] = (i, now);
            self.grace_len += 1;
        }
        true
    }

    /// Frees up to `budget` ports whose grace period has ended by `now`;
    /// returns how many. `alloc` does a few itself; a control-thread tick
    /// may call this to keep the in-grace count honest while nothing is
    /// allocated.
    pub fn expire_grace(&mut self, now: u32, budget: usize) -> usize {
        let mut n = 0;
        while n < budget && self.grace_len > 0 {
            let (i, freed) = self.grace[self.grace_head];
            // Wrapping like the session clock; a `now` behind `freed`
            // (another core's second) is not yet due.
            let waited = now.wrapping_sub(freed);
            if (waited as i32) < 0 || waited < self.limits.grace_s {
                break;
            }
            self.grace_head = (self.grace_head + 1) % self.grace.len();
            self.grace_len -= 1;
            self.clear_taken(i);
            n += 1;
        }
        n
    }

    /// First index at or after `start` (cyclically) whose `taken` bit is 0.
    fn find_free(&self, start: u32) -> Option<u32> {
        let w0 = start as usize / 64;
        let above = !self.taken[w0] & (u64::MAX << (start % 64));
        if above != 0 {
            return Some((w0 * 64) as u32 + above.trailing_zeros());
        }
        // Another word with a free bit, after w0 cyclically, or w0 itself
        // (its bits below `start`) last.
        let nwords = self.taken.len();
        let w = next_set_cyclic(&self.summary, (w0 + 1) % nwords, nwords)?;
        let free = !self.taken[w];
        Some((w * 64) as u32 + free.trailing_zeros())
    }

    fn set_taken(&mut self, i: u32) {
        set_bit(&mut self.taken, i, true);
    }

    fn clear_taken(&mut self, i: u32) {
        set_bit(&mut self.taken, i, false);
        self.update_summary(i as usize / 64);
    }

    fn update_summary(&mut self, w: usize) {
        let has_free = self.taken[w] != u64::MAX;
        set_bit(&mut self.summary, w as u32, has_free);
    }

    /// Checks the invariants; for tests.
    #[cfg(test)]
    pub fn audit(&self) {
        let words = self.taken.len();
        for w in 0..words {
            assert_eq!(
                bit(&self.summary, w as u32),
                self.taken[w] != u64::MAX,
                "summary of word {w}"
            );
        }
        let live = (0..self.len).filter(|&i| bit(&self.live, i)).count();
        assert_eq!(live as u32, self.in_use);
        for k in 0..self.grace_len {
            let (i, _) = self.grace[(self.grace_head + k) % self.grace.len()];
            assert!(
                bit(&self.taken, i) && !bit(&self.live, i),
                "grace entry {i}"
            );
        }
        for i in 0..self.len {
            if bit(&self.live, i) {
                assert!(bit(&self.taken, i));
            }
        }
    }
}

/// Grace entries `alloc` retires per call: more than the one port it takes,
/// so the ring never grows behind the allocations.
const GRACE_DRAIN: usize = 4;

#[inline]
fn bit(map: &[u64], i: u32) -> bool {
    map[i as usize / 64] >> (i % 64) & 1 != 0
}

#[inline]
fn set_bit(map: &mut [u64], i: u32, on: bool) {
    let w = &mut map[i as usize / 64];
    if on {
        *w |= 1 << (i % 64);
    } else {
        *w &= !(1 << (i % 64));
    }
}

/// The first set bit at or after `from` in a bitmap of `nbits` bits,
/// wrapping around to the bits before `from`.
fn next_set_cyclic(map: &[u64], from: usize, nbits: usize) -> Option<usize> {
    let nw = map.len();
    let w0 = from / 64;
    let first = map[w0] & (u64::MAX << (from % 64));
    if first != 0 {
        return Some(w0 * 64 + first.trailing_zeros() as usize);
    }
    for k in 1..=nw {
        let w = (w0 + k) % nw;
        let mut v = map[w];
        if w == w0 {
            v &= !(u64::MAX << (from % 64));
        }
        if v != 0 {
            let b = w * 64 + v.trailing_zeros() as usize;
            return (b < nbits).then_some(b);
        }
    }
    None
}

/// Ports per LAN host: open addressing with linear probing and
/// backward-shift deletion (a count of 0 is an empty slot, so any address
/// is a key), fixed capacity (twice the hosts, so probes stay
/// short), no allocation after `new`.
struct HostCounts {
    slots: Box<[(u32, u32)]>,
    used: u32,
    max: u32,
}

impl HostCounts {
    fn new(max_hosts: u32) -> Self {
        let cap = if max_hosts == 0 {
            0
        } else {
            (max_hosts as usize * 2).next_power_of_two()
        };
        HostCounts {
            slots: vec![(NO_OWNER, 0); cap].into_boxed_slice(),
            used: 0,
            max: max_hosts,
        }
    }

    fn home(&self, host: u32) -> usize {
        // Fibonacci hashing: LAN addresses differ in their low bits.
        (host.wrapping_mul(0x9e37_79b9) as usize) & (self.slots.len() - 1)
    }

    /// The slot holding `host`, or the empty slot where it would go.
    fn probe(&self, host: u32) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut s = self.home(host);
        loop {
            let (h, n) = self.slots[s];
            if n == 0 || h == host {
                return Some(s);
            }
            s = (s + 1) & mask;
        }
    }

    fn get(&self, host: u32) -> u32 {
        match self.probe(host) {
            Some(s) if self.slots[s].1 > 0 => self.slots[s].1,
            _ => 0,
        }
    }

    fn has_room_for(&self, host: u32) -> bool {
        self.get(host) > 0 || self.used < self.max
    }

    fn add(&mut self, host: u32, d: i32) {
        let Some(s) = self.probe(host) else { return };
        if self.slots[s].1 == 0 {
            if d <= 0 || self.used >= self.max {
                return;
            }
            self.slots[s] = (host, 0);
            self.used += 1;
        }
        let n = self.slots[s].1.saturating_add_signed(d);
        self.slots[s].1 = n;
        if n == 0 {
            self.remove_at(s);
        }
    }

    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.slots.len() - 1;
        self.slots[hole] = (NO_OWNER, 0);
        self.used -= 1;
        let mut s = (hole + 1) & mask;
        while self.slots[s].1 != 0 {
            let home = self.home(self.slots[s].0);
            // Move back an entry whose probe passed the hole.
            if (s.wrapping_sub(home) & mask) >= (s.wrapping_sub(hole) & mask) {
                self.slots[hole] = self.slots[s];
                self.slots[s] = (NO_OWNER, 0);
                hole = s;
            }
            s = (s + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests;
