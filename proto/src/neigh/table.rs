//! Per-interface neighbor cache with hard bounds.
//!
//! Two independent budgets: at most `max_incomplete` INCOMPLETE entries
//! (created by traffic, i.e. by anyone who can make us route a packet) and
//! at most `max_entries` resolved entries (created only by a neighbor that
//! answered or addressed us). Keeping them apart is what lets a flood of
//! misses fail without ever displacing a resolved neighbor.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{Mac, Side};

/// Neighbor Unreachability Detection state (RFC 4861 7.3.2, with DELAY
/// folded into PROBE: a used STALE entry is probed on the next `poll`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NeighState {
    /// Resolution in progress; packets are held.
    Incomplete,
    /// Confirmed within the last `reachable` interval.
    Reachable,
    /// MAC known but unconfirmed; still used for forwarding.
    Stale,
    /// MAC in use while unicast probes verify it.
    Probe,
    /// The unicast probes went unanswered (RFC 7048): the MAC stays in use
    /// while multicast probes back off, and the entry goes only when they
    /// too fail. A home LAN has no other neighbor to fail over to, and a
    /// host that missed three probes (a flood on the link filled its
    /// queues) is usually still there.
    Unreachable,
}

/// One row of [`super::NeighborEngine::dump`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborInfo {
    pub side: Side,
    pub ip: IpAddr,
    /// `None` while INCOMPLETE.
    pub mac: Option<Mac>,
    pub state: NeighState,
    /// Time since the last state change or confirmation.
    pub age: Duration,
    /// Time since the dataplane last reported use.
    pub idle: Duration,
    /// Requests sent in the current INCOMPLETE/PROBE round.
    pub probes: u32,
    /// Packets waiting for resolution.
    pub held: usize,
}

#[derive(Debug)]
pub(super) struct Entry {
    pub state: NeighState,
    /// Meaningless while INCOMPLETE.
    pub mac: Mac,
    /// Only non-empty while INCOMPLETE.
    pub held: VecDeque<Vec<u8>>,
    pub probes: u32,
    /// Next retransmission (INCOMPLETE, PROBE, UNREACHABLE) or expiry
    /// (REACHABLE).
    pub timer: Instant,
    pub last_used: Instant,
    pub updated: Instant,
}

impl Entry {
    pub fn is_resolved(&self) -> bool {
        self.state != NeighState::Incomplete
    }

    /// When `poll` next has work for this entry.
    pub fn deadline(&self, stale_gc: Duration) -> Instant {
        match self.state {
            NeighState::Incomplete
            | NeighState::Probe
            | NeighState::Reachable
            | NeighState::Unreachable => self.timer,
            NeighState::Stale => self.last_used + stale_gc,
        }
    }

    pub fn info(&self, side: Side, ip: IpAddr, now: Instant) -> NeighborInfo {
        NeighborInfo {
            side,
            ip,
            mac: self.is_resolved().then_some(self.mac),
            state: self.state,
            age: now.saturating_duration_since(self.updated),
            idle: now.saturating_duration_since(self.last_used),
            probes: self.probes,
            held: self.held.len(),
        }
    }
}

/// Why a resolved entry could not be stored.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TableFull;

#[derive(Debug, Default)]
pub(super) struct Table {
    map: HashMap<IpAddr, Entry>,
    incomplete: usize,
}

impl Table {
    pub fn get(&self, ip: &IpAddr) -> Option<&Entry> {
        self.map.get(ip)
    }

    pub fn get_mut(&mut self, ip: &IpAddr) -> Option<&mut Entry> {
        self.map.get_mut(ip)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&IpAddr, &Entry)> {
        self.map.iter()
    }

    fn resolved(&self) -> usize {
        self.map.len() - self.incomplete
    }

    /// Adds an INCOMPLETE entry if the incomplete budget allows; never
    /// touches existing entries.
    pub fn insert_incomplete(
        &mut self,
        ip: IpAddr,
        now: Instant,
        max_incomplete: usize,
    ) -> Option<&mut Entry> {
        if self.incomplete >= max_incomplete {
            return None;
        }
        match self.map.entry(ip) {
            MapEntry::Occupied(_) => None,
            MapEntry::Vacant(v) => {
                self.incomplete += 1;
                Some(v.insert(Entry {
                    state: NeighState::Incomplete,
                    mac: [0; 6],
                    held: VecDeque::new(),
                    probes: 0,
                    timer: now,
                    last_used: now,
                    updated: now,
                }))
            }
        }
    }

    /// Adds a resolved entry for an address not in the table. If the
    /// resolved budget is spent, the least-recently-used STALE entry is
    /// evicted when `may_evict` (we asked for this neighbor), and the new
    /// entry is refused otherwise. Returns the evicted address.
    pub fn insert_resolved(
        &mut self,
        ip: IpAddr,
        entry: Entry,
        max_entries: usize,
        may_evict: bool,
    ) -> Result<Option<IpAddr>, TableFull> {
        debug_assert!(entry.is_resolved() && !self.map.contains_key(&ip));
        let evicted = self.make_room(max_entries, may_evict)?;
        self.map.insert(ip, entry);
        Ok(evicted)
    }

    fn make_room(
        &mut self,
        max_entries: usize,
        may_evict: bool,
    ) -> Result<Option<IpAddr>, TableFull> {
        if self.resolved() < max_entries {
            return Ok(None);
        }
        if !may_evict {
            return Err(TableFull);
        }
        // An UNREACHABLE entry goes before any STALE one.
        let victim = self
            .map
            .iter()
            .filter(|(_, e)| matches!(e.state, NeighState::Stale | NeighState::Unreachable))
            .min_by_key(|(_, e)| (e.state == NeighState::Stale, e.last_used))
            .map(|(ip, _)| *ip)
            .ok_or(TableFull)?;
        self.remove(&victim);
        Ok(Some(victim))
    }

    pub fn remove(&mut self, ip: &IpAddr) -> Option<Entry> {
        let e = self.map.remove(ip)?;
        if !e.is_resolved() {
            self.incomplete -= 1;
        }
        Some(e)
    }

    /// `HashMap::retain` that keeps the incomplete count right. `keep` may
    /// change an entry's state but not whether it is INCOMPLETE: moving
    /// between budgets goes through `remove` + `insert_resolved`.
    pub fn retain(&mut self, mut keep: impl FnMut(&IpAddr, &mut Entry) -> bool) {
        let mut dropped_incomplete = 0;
        self.map.retain(|ip, e| {
            let kept = keep(ip, e);
            if !kept && !e.is_resolved() {
                dropped_incomplete += 1;
            }
            kept
        });
        self.incomplete -= dropped_incomplete;
    }
}
