//! The NAPT's mappings: per protocol, which LAN endpoint (address, port or
//! echo identifier) owns which external port.
//!
//! Endpoint-independent mapping (RFC 4787 REQ-1, RFC 5382 REQ-1): every
//! session of one LAN endpoint uses the same external port, whatever its
//! destination; a mapping counts the sessions using it and gives its port
//! back to the allocator (grace period included) when the last one goes.
//! Filtering is the session table's business: an inbound packet passes
//! only with a session for (LAN endpoint, remote endpoint), i.e. address-
//! and port-dependent filtering (RFC 4787 REQ-8's strictest choice).
//!
//! New mappings take a per-protocol spinlock (a new flow only); the
//! inbound direction reads the port's owner from an atomic array without
//! one, and the session lookup that follows confirms it.

use std::cell::UnsafeCell;
use std::net::Ipv4Addr;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::ports::{AllocError, Counters, Limits, PortAllocator};
use super::PortPool;
use crate::session::{Nat, NatRelease};
use crate::wire::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// The three port spaces a NAPT keeps apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatProto {
    Tcp,
    Udp,
    /// ICMP echo: the identifier is mapped like a port (RFC 7597 8.2).
    Icmp,
}

impl NatProto {
    pub const ALL: [NatProto; 3] = [NatProto::Tcp, NatProto::Udp, NatProto::Icmp];

    /// From an IP protocol number; `None` for one a NAPT cannot map.
    #[inline]
    pub fn of(proto: u8) -> Option<Self> {
        match proto {
            PROTO_TCP => Some(NatProto::Tcp),
            PROTO_UDP => Some(NatProto::Udp),
            PROTO_ICMP => Some(NatProto::Icmp),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NatProto::Tcp => "tcp",
            NatProto::Udp => "udp",
            NatProto::Icmp => "icmp",
        }
    }

    #[inline]
    fn idx(self) -> usize {
        self as usize
    }
}

/// A LAN endpoint: IPv4 address and port (or echo identifier).
pub type Endpoint = (Ipv4Addr, u16);

/// One protocol's figures, for `show map`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtoStats {
    /// Mappings (= external ports) in use.
    pub mappings: u32,
    /// Ports released and waiting out their grace period.
    pub in_grace: u32,
    pub ports: Counters,
}

/// Flag of a `reverse` word in use; the LAN address and port below it.
const LIVE: u64 = 1 << 63;
/// Flag of a `reverse` word that is a port forward: reserved for good, its
/// mapping holds one share of its own so it is never given back.
const FORWARD: u64 = 1 << 62;
/// The LAN address and port of a `reverse` word.
const EP_MASK: u64 = (1 << 48) - 1;

/// A port forward (DNAT): new flows from the internet to the shared
/// address and `port` go to the LAN endpoint `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forward {
    pub proto: NatProto,
    pub port: u16,
    pub to: Endpoint,
}

impl Forward {
    pub fn from_config(f: &ipoe_config::PortForward) -> Self {
        Forward {
            proto: match f.proto {
                ipoe_config::ForwardProto::Tcp => NatProto::Tcp,
                ipoe_config::ForwardProto::Udp => NatProto::Udp,
            },
            port: f.port,
            to: (*f.to.ip(), f.to.port()),
        }
    }
}

/// Why a port forward could not be installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardError {
    /// The port is not in the set (or is port 0); config refuses this
    /// first, but the set may have changed with the prefix since.
    NotInSet(Forward),
    /// Another forward already holds this protocol and port.
    Duplicate(Forward),
}

impl std::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (why, fw) = match self {
            ForwardError::NotInSet(fw) => ("not in the port set", fw),
            ForwardError::Duplicate(fw) => ("forwarded twice", fw),
        };
        write!(f, "port forward {} {}: {why}", fw.proto.name(), fw.port)
    }
}
/// `fwd` slot value of an empty slot.
const EMPTY: u32 = u32::MAX;

/// What the lock guards for one protocol.
struct ProtoNat {
    alloc: PortAllocator,
    /// LAN endpoint -> dense index of its external port: open addressing,
    /// linear probing, backward-shift deletion; twice the pool's size.
    fwd: Box<[(u64, u32)]>,
    /// Sessions using each index's mapping.
    refs: Box<[u32]>,
}

pub struct Bindings {
    /// Which bindings a session's `Nat::addr` names: a session made under
    /// an earlier set (before a prefix change) never releases into this one.
    id: u8,
    /// Secret of `hint`, so where new ports are searched for cannot be
    /// predicted from the flow.
    seed: u64,
    external: Ipv4Addr,
    pool: PortPool,
    /// The port forwards, as installed.
    forwards: Vec<Forward>,
    protos: [Spin<ProtoNat>; 3],
    /// Per protocol and dense index: `LIVE | addr << 16 | port` of the
    /// owner, 0 when unmapped. Written under the protocol's lock.
    reverse: [Box<[AtomicU64]>; 3],
}

#[inline]
fn ep_key(ep: Endpoint) -> u64 {
    u64::from(u32::from(ep.0)) << 16 | u64::from(ep.1)
}

impl Bindings {
    /// Mappings onto `external` with ports from `pool`, each protocol with
    /// its own allocator built with `limits`.
    pub fn new(external: Ipv4Addr, pool: PortPool, limits: Limits) -> Self {
        let len = pool.len() as usize;
        let fwd_len = (len * 2).next_power_of_two().max(2);
        let proto = || {
            Spin::new(ProtoNat {
                alloc: PortAllocator::new(pool, limits),
                fwd: vec![(0, EMPTY); fwd_len].into_boxed_slice(),
                refs: vec![0; len].into_boxed_slice(),
            })
        };
        let rev = || (0..len).map(|_| AtomicU64::new(0)).collect::<Box<[_]>>();
        let seed = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(u32::from(external));
            h.finish()
        };
        Bindings {
            id: 0,
            seed,
            external,
            pool,
            forwards: Vec::new(),
            protos: [proto(), proto(), proto()],
            reverse: [rev(), rev(), rev()],
        }
    }

    /// The same bindings with `seed` as the secret of [`Bindings::hint`]
    /// instead of a random one: port choice becomes reproducible, which a
    /// fuzzer needs (never for a live router).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The same bindings with identity `id` (see `Nat::addr`).
    pub fn with_id(mut self, id: u8) -> Self {
        self.id = id;
        self
    }

    /// [`Bindings::new`] with the config's port forwards installed.
    pub fn from_config(
        external: Ipv4Addr,
        pool: PortPool,
        limits: Limits,
        forwards: &[ipoe_config::PortForward],
    ) -> Result<Self, ForwardError> {
        let list: Vec<Forward> = forwards.iter().map(Forward::from_config).collect();
        Bindings::new(external, pool, limits).with_forwards(&list)
    }

    /// The same bindings with `list` installed: each port reserved in its
    /// protocol's allocator for good and mapped to its LAN endpoint. That
    /// endpoint's own outbound flows then leave from the forwarded port too
    /// (endpoint-independent), unless it is forwarded twice: then from the
    /// first forward's port.
    pub fn with_forwards(mut self, list: &[Forward]) -> Result<Self, ForwardError> {
        for &f in list {
            let p = f.proto.idx();
            let mut g = self.protos[p].lock();
            let i = match self.pool.index_of(f.port) {
                Some(i) if f.port != 0 => i,
                _ => return Err(ForwardError::NotInSet(f)),
            };
            if self.reverse[p][i as usize].load(Ordering::Relaxed) != 0 || !g.alloc.reserve(f.port)
            {
                return Err(ForwardError::Duplicate(f));
            }
            let key = ep_key(f.to);
            let (slot, found) = probe(&g.fwd, key);
            if !found {
                g.fwd[slot] = (key, i);
            }
            g.refs[i as usize] = 1;
            self.reverse[p][i as usize].store(LIVE | FORWARD | key, Ordering::Release);
            drop(g);
            self.forwards.push(f);
        }
        Ok(self)
    }

    /// The same bindings with every system port (below 1024) that is not
    /// forwarded taken for good, in every protocol: new mappings never get
    /// one (a LAN host's flow from port 80 of the router's address would
    /// look like a server there), while forwards installed before may.
    pub fn reserving_system_ports(self) -> Self {
        for p in NatProto::ALL {
            let mut g = self.protos[p.idx()].lock();
            for port in 1..1024 {
                // Taken already (a forward) or outside the pool: left.
                let _ = g.alloc.reserve(port);
            }
        }
        self
    }

    /// The port forwards installed.
    pub fn forwards(&self) -> &[Forward] {
        &self.forwards
    }

    pub fn id(&self) -> u8 {
        self.id
    }

    /// Where a new mapping's port search starts for a flow from `int` to
    /// `remote`: a keyed mix, so a LAN host's next port is not its last
    /// one plus one.
    #[inline]
    pub fn hint(&self, int: Endpoint, remote: u32) -> u32 {
        let x = (u64::from(u32::from(int.0)) << 16 | u64::from(int.1)) ^ u64::from(remote) << 24;
        let m = u128::from(x ^ self.seed) * u128::from(self.seed | 1);
        ((m >> 64) as u64 ^ m as u64) as u32
    }

    /// The shared IPv4 address.
    pub fn external(&self) -> Ipv4Addr {
        self.external
    }

    pub fn pool(&self) -> PortPool {
        self.pool
    }

    /// The external port of `int`'s mapping, made if it has none, and one
    /// more session counted on it. `hint` moves where a new port is
    /// searched for (pass a keyed hash of the flow).
    pub fn bind(&self, p: NatProto, int: Endpoint, now: u32, hint: u32) -> Result<u16, AllocError> {
        let mut g = self.protos[p.idx()].lock();
        let key = ep_key(int);
        let (slot, found) = probe(&g.fwd, key);
        if found {
            let i = g.fwd[slot].1;
            g.refs[i as usize] += 1;
            return Ok(self.pool.port_at(i).unwrap_or(0));
        }
        let port = g.alloc.alloc(u32::from(int.0), now, hint)?;
        let Some(i) = self.pool.index_of(port) else {
            return Err(AllocError::Exhausted);
        };
        g.fwd[slot] = (key, i);
        g.refs[i as usize] = 1;
        self.reverse[p.idx()][i as usize].store(LIVE | key, Ordering::Release);
        Ok(port)
    }

    /// One session fewer on the mapping of `ext_port`; the last one gives
    /// the port back to the allocator as of `at` (when the flow was last
    /// seen, from which its grace period runs). False for a port not mapped.
    pub fn unbind(&self, p: NatProto, ext_port: u16, at: u32) -> bool {
        let Some(i) = self.pool.index_of(ext_port) else {
            return false;
        };
        let mut g = self.protos[p.idx()].lock();
        let forward = self.reverse[p.idx()][i as usize].load(Ordering::Relaxed) & FORWARD != 0;
        // A forward's own share is never given back.
        if g.refs[i as usize] <= u32::from(forward) {
            return false;
        }
        g.refs[i as usize] -= 1;
        if g.refs[i as usize] > 0 {
            return true;
        }
        let word = self.reverse[p.idx()][i as usize].swap(0, Ordering::Release);
        let (slot, found) = probe(&g.fwd, word & EP_MASK);
        if found {
            remove_at(&mut g.fwd, slot);
        }
        g.alloc.release(ext_port, at);
        true
    }

    /// The LAN endpoint that owns `ext_port`, if mapped. No lock.
    #[inline]
    pub fn internal(&self, p: NatProto, ext_port: u16) -> Option<Endpoint> {
        self.inbound(p, ext_port).map(|(ep, _)| ep)
    }

    /// As [`Bindings::internal`], and whether `ext_port` is a port forward
    /// (new inbound flows welcome). One atomic read.
    #[inline]
    pub fn inbound(&self, p: NatProto, ext_port: u16) -> Option<(Endpoint, bool)> {
        let i = self.pool.index_of(ext_port)?;
        let w = self.reverse[p.idx()][i as usize].load(Ordering::Acquire);
        (w & LIVE != 0).then(|| {
            let ep = (Ipv4Addr::from((w >> 16) as u32), w as u16);
            (ep, w & FORWARD != 0)
        })
    }

    /// One more session counted on the port forward `ext_port` (a new
    /// inbound flow to it); `None` if it is not a forward.
    pub fn bind_forward(&self, p: NatProto, ext_port: u16) -> Option<u16> {
        let i = self.pool.index_of(ext_port)? as usize;
        let mut g = self.protos[p.idx()].lock();
        if self.reverse[p.idx()][i].load(Ordering::Relaxed) & FORWARD == 0 {
            return None;
        }
        g.refs[i] += 1;
        Some(ext_port)
    }

    /// The external port `int` is mapped to, if any (no session counted).
    pub fn mapped(&self, p: NatProto, int: Endpoint) -> Option<u16> {
        let g = self.protos[p.idx()].lock();
        let (slot, found) = probe(&g.fwd, ep_key(int));
        found.then(|| self.pool.port_at(g.fwd[slot].1).unwrap_or(0))
    }

    /// Sessions on the mapping of `ext_port`.
    pub fn refs(&self, p: NatProto, ext_port: u16) -> u32 {
        let Some(i) = self.pool.index_of(ext_port) else {
            return 0;
        };
        self.protos[p.idx()].lock().refs[i as usize]
    }

    /// Ports of `p` held by LAN host `host` (counted with a per-host
    /// limit only).
    pub fn host_ports(&self, p: NatProto, host: Ipv4Addr) -> u32 {
        self.protos[p.idx()]
            .lock()
            .alloc
            .host_ports(u32::from(host))
    }

    /// Retires grace periods that ended by `now` (a control-thread tick).
    pub fn tick(&self, now: u32, budget: usize) {
        for p in NatProto::ALL {
            self.protos[p.idx()].lock().alloc.expire_grace(now, budget);
        }
    }

    pub fn stats(&self, p: NatProto) -> ProtoStats {
        let g = self.protos[p.idx()].lock();
        ProtoStats {
            mappings: g.alloc.in_use(),
            in_grace: g.alloc.in_grace(),
            ports: g.alloc.counters(),
        }
    }

    /// Checks that the three views of each protocol agree; for tests.
    #[cfg(test)]
    pub fn audit(&self) {
        for p in NatProto::ALL {
            let g = self.protos[p.idx()].lock();
            g.alloc.audit();
            let (mut mapped, mut dynamic) = (std::collections::HashSet::new(), 0);
            for i in 0..self.pool.len() {
                let w = self.reverse[p.idx()][i as usize].load(Ordering::Relaxed);
                let port = self.pool.port_at(i).unwrap();
                let forward = w & FORWARD != 0;
                assert_eq!(w != 0, g.refs[i as usize] > 0, "{p:?} port {port}");
                assert_eq!(
                    w != 0 && !forward,
                    g.alloc.is_live(port),
                    "{p:?} port {port}"
                );
                if w != 0 {
                    mapped.insert(w & EP_MASK);
                    dynamic += usize::from(!forward);
                    let (slot, found) = probe(&g.fwd, w & EP_MASK);
                    // A LAN endpoint forwarded twice is indexed once.
                    assert!(
                        found && (forward || g.fwd[slot].1 == i),
                        "{p:?} port {port} not indexed"
                    );
                }
            }
            let indexed = g.fwd.iter().filter(|e| e.1 != EMPTY).count();
            assert_eq!(indexed, mapped.len());
            assert_eq!(g.alloc.in_use() as usize, dynamic);
        }
    }
}

/// Sessions freed by the session table give their mapping's share back.
impl NatRelease for Bindings {
    fn release(&self, proto: u8, nat: Nat, last_seen: u32) {
        if nat.addr != self.id {
            return;
        }
        if let Some(p) = NatProto::of(proto) {
            self.unbind(p, nat.port, last_seen);
        }
    }
}

impl std::fmt::Debug for Bindings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bindings")
            .field("id", &self.id)
            .field("external", &self.external)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

#[inline]
fn home(key: u64, len: usize) -> usize {
    // Fibonacci hashing of the 48-bit endpoint.
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & (len - 1)
}

/// The slot holding `key` (true), or the empty slot where it goes (false).
/// Terminates: the table is at most half full.
fn probe(t: &[(u64, u32)], key: u64) -> (usize, bool) {
    let mask = t.len() - 1;
    let mut s = home(key, t.len());
    loop {
        let (k, v) = t[s];
        if v == EMPTY {
            return (s, false);
        }
        if k == key {
            return (s, true);
        }
        s = (s + 1) & mask;
    }
}

fn remove_at(t: &mut [(u64, u32)], mut hole: usize) {
    let mask = t.len() - 1;
    t[hole] = (0, EMPTY);
    let mut s = (hole + 1) & mask;
    while t[s].1 != EMPTY {
        let h = home(t[s].0, t.len());
        if (s.wrapping_sub(h) & mask) >= (s.wrapping_sub(hole) & mask) {
            t[hole] = t[s];
            t[s] = (0, EMPTY);
            hole = s;
        }
        s = (s + 1) & mask;
    }
}

/// A spinlock: held for a table operation of bounded length, so a worker
/// spins rather than sleeps (as the session table's shards do).
struct Spin<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is reached only through a `SpinGuard`, which exists only
// while its thread holds `locked` (Acquire to take, Release to give back).
unsafe impl<T: Send> Sync for Spin<T> {}

impl<T> Spin<T> {
    fn new(value: T) -> Self {
        Spin {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    fn lock(&self) -> SpinGuard<'_, T> {
        loop {
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return SpinGuard { lock: self };
            }
            while self.locked.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        }
    }
}

struct SpinGuard<'a, T> {
    lock: &'a Spin<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock (see `unsafe impl Sync`).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` makes this the only reference.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;
