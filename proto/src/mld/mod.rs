//! Multicast listening on ipoed's ports: which groups each port must be in
//! ([`memberships`]), and the MLD host side (RFC 3810, with the MLDv1
//! compatibility of RFC 3810 8.2 / RFC 2710) that tells MLD-snooping
//! switches about them ([`Mld`]).
//!
//! The kernel holds no addresses on these ports, so neither its NIC
//! multicast filter nor its MLD knows our groups: a real NIC drops RS to
//! ff02::2, DHCPv6 to ff02::1:2 and NS to our solicited-node groups before
//! XDP sees them, and a snooping switch never forwards them to our port.
//! The daemon programs the NIC filter from [`memberships`] and feeds the
//! same set to one [`Mld`] per port.
//!
//! [`Mld`] is sans-IO like the other engines: `(now, frame)` in, frames
//! and the next deadline out, its randomness from a seed, so tests run
//! the timers of RFC 3810 6 with a fake clock.

mod counters;
#[cfg(test)]
mod tests;
pub mod wire;

use crate::jitter::Jitter;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

pub use counters::Counters;

use crate::neigh::Mac;
use wire::{record_type, Ipv6Mld, Message, QueryRepr, Record};

/// All_DHCP_Relay_Agents_and_Servers (RFC 8415 7.1).
pub const ALL_DHCP_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// What a port is, for the groups it must listen to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Role {
    /// Sends Router Advertisements here: all-routers (RFC 4861 6.2.2).
    pub router: bool,
    /// Runs the DHCPv6 server here: ff02::1:2 (RFC 8415 7.1, 18.4).
    pub dhcpv6_server: bool,
}

/// The solicited-node group of `addr` (RFC 4291 2.7.1).
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// The groups a port must be in: all-nodes, the solicited-node group of
/// every address we hold there, tentative ones included (RFC 4861 7.2.1,
/// RFC 4862 5.4.2), and what its role adds.
pub fn memberships(role: Role, own: &[Ipv6Addr]) -> BTreeSet<Ipv6Addr> {
    let mut g = BTreeSet::from([wire::ALL_NODES]);
    if role.router {
        g.insert(wire::ALL_ROUTERS);
    }
    if role.dhcpv6_server {
        g.insert(ALL_DHCP_SERVERS);
    }
    g.extend(
        own.iter()
            .filter(|a| !a.is_multicast() && !a.is_unspecified() && !a.is_loopback())
            .map(|a| solicited_node(*a)),
    );
    g
}

/// RFC 3810 6: nothing is ever reported for all-nodes or for groups of
/// scope 0 or 1.
pub fn reportable(group: Ipv6Addr) -> bool {
    group.is_multicast() && group != wire::ALL_NODES && group.octets()[1] & 0x0f > 1
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MldConfig {
    /// RFC 3810 9.1 Robustness Variable until a querier says otherwise.
    pub robustness: u8,
    /// RFC 3810 9.11 Unsolicited Report Interval.
    pub unsolicited_interval: Duration,
    /// Groups reported; a port never needs more than a handful.
    pub max_groups: usize,
    /// Sources kept from source-specific queries, per group.
    pub max_sources: usize,
    /// IP MTU (1280 at least): reports are split to fit.
    pub mtu: usize,
}

impl Default for MldConfig {
    fn default() -> Self {
        Self {
            robustness: 2,
            unsolicited_interval: Duration::from_secs(1),
            max_groups: 64,
            max_sources: 64,
            mtu: 1280,
        }
    }
}

/// RFC 3810 9.2 Query Interval, for the MLDv1 querier-present timeout.
const DEFAULT_QUERY_INTERVAL: Duration = Duration::from_secs(125);

/// What [`Mld::handle_frame`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not MLD: for the other engines.
    NotMld,
    /// An MLD message, taken (answered, scheduled or ignored as the RFC
    /// says); the counters tell which.
    Taken,
    /// An MLD message dropped; its reason was counted.
    Dropped,
}

/// A state change being retransmitted (RFC 3810 6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Change {
    join: bool,
    left: u8,
}

/// A scheduled answer to a Multicast Address (and Source) Specific Query.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending {
    at: Instant,
    /// `None`: the whole group; otherwise the queried sources.
    sources: Option<BTreeSet<Ipv6Addr>>,
}

pub struct Mld {
    cfg: MldConfig,
    mac: Mac,
    rng: Jitter,
    /// Link-local once it passed DAD, `::` before (RFC 3810 5.2.13).
    source: Ipv6Addr,
    robustness: u8,
    /// The reportable groups we are in.
    groups: BTreeSet<Ipv6Addr>,
    changes: BTreeMap<Ipv6Addr, Change>,
    change_at: Option<Instant>,
    /// The interface timer (answer to a General Query, MLDv2).
    general_at: Option<Instant>,
    /// Per-group timers.
    group_at: BTreeMap<Ipv6Addr, Pending>,
    /// An MLDv1 querier was heard: MLDv1 compatibility until then.
    v1_until: Option<Instant>,
    counters: Counters,
}

impl Mld {
    pub fn new(mut cfg: MldConfig, mac: Mac, seed: u64) -> Self {
        // IPv6's minimum MTU holds a record with `max_sources` (64) sources,
        // so no single record ever needs splitting.
        cfg.mtu = cfg.mtu.max(1280);
        cfg.max_sources = cfg.max_sources.min(64);
        let robustness = cfg.robustness.max(1);
        Self {
            cfg,
            mac,
            rng: Jitter::new(seed),
            source: Ipv6Addr::UNSPECIFIED,
            robustness,
            groups: BTreeSet::new(),
            changes: BTreeMap::new(),
            change_at: None,
            general_at: None,
            group_at: BTreeMap::new(),
            v1_until: None,
            counters: Counters::default(),
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The groups being reported.
    pub fn groups(&self) -> &BTreeSet<Ipv6Addr> {
        &self.groups
    }

    /// Whether MLDv1 compatibility is on (an MLDv1 querier was heard).
    pub fn v1_mode(&self, now: Instant) -> bool {
        self.v1_until.is_some_and(|t| t > now)
    }

    /// The groups we are in now, and the address to send from. Joins and
    /// leaves go out at the next `poll` as State Change Reports.
    pub fn set_groups(&mut self, now: Instant, wanted: &BTreeSet<Ipv6Addr>, source: Ipv6Addr) {
        self.source = source;
        let mut next = BTreeSet::new();
        for g in wanted.iter().copied().filter(|g| reportable(*g)) {
            if next.len() >= self.cfg.max_groups {
                self.counters.groups_over_limit += 1;
                break;
            }
            next.insert(g);
        }
        if next == self.groups {
            return;
        }
        let robustness = self.robustness;
        for &g in next.difference(&self.groups) {
            self.changes.insert(
                g,
                Change {
                    join: true,
                    left: robustness,
                },
            );
        }
        for &g in self.groups.difference(&next) {
            self.changes.insert(
                g,
                Change {
                    join: false,
                    left: robustness,
                },
            );
            self.group_at.remove(&g);
        }
        self.groups = next;
        // RFC 3810 6.1: a change is reported at once, together with the
        // changes still being retransmitted.
        self.change_at = Some(now);
    }

    /// The link came back: a switch may have forgotten us, so every group
    /// is announced again.
    pub fn link_up(&mut self, now: Instant) {
        let robustness = self.robustness;
        for &g in &self.groups {
            self.changes.insert(
                g,
                Change {
                    join: true,
                    left: robustness,
                },
            );
        }
        if !self.groups.is_empty() {
            self.change_at = Some(now);
        }
    }

    /// Leaving the link (shutdown): one report leaving every group.
    pub fn leave_all(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let groups = std::mem::take(&mut self.groups);
        if self.v1_mode(now) {
            for g in groups {
                out.push(self.frame_v1(wire::TYPE_DONE_V1, g));
                self.counters.tx_done += 1;
            }
        } else {
            let records: Vec<Record> = groups
                .into_iter()
                .map(|group| Record {
                    kind: record_type::CHANGE_TO_INCLUDE,
                    group,
                    sources: Vec::new(),
                })
                .collect();
            self.counters.tx_report += self.reports_v2(&records, &mut out);
        }
        self.changes.clear();
        self.group_at.clear();
        self.general_at = None;
        self.change_at = None;
        out
    }

    /// A frame punted from this port. Queries are checked as RFC 3810 6.2
    /// asks (link-local source, hop limit 1, Router Alert) and answered
    /// after a random delay; other listeners' reports are only counted
    /// (MLDv1 ones stop our own pending answer for that group).
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> Verdict {
        let m = match Ipv6Mld::parse(frame) {
            Ok(m) => m,
            Err(wire::FrameError::NotMld) => return Verdict::NotMld,
            Err(wire::FrameError::Malformed) => {
                self.counters.rx_malformed += 1;
                return Verdict::Dropped;
            }
        };
        if m.src_mac == self.mac {
            // Our own report, reflected by a switch: nothing to learn.
            self.counters.rx_own += 1;
            return Verdict::Dropped;
        }
        if !m.checksum_ok {
            self.counters.rx_bad_checksum += 1;
            return Verdict::Dropped;
        }
        let msg = match Message::parse(m.message, self.cfg.max_sources) {
            Ok(msg) => msg,
            Err(_) => {
                self.counters.rx_malformed += 1;
                return Verdict::Dropped;
            }
        };
        match msg {
            Message::Query(q) => self.handle_query(now, &m, q),
            Message::ReportV1 { group } => {
                // RFC 2710 4: another listener answered for the group.
                if self.v1_mode(now) && self.group_at.remove(&group).is_some() {
                    self.counters.rx_report_suppressed += 1;
                } else {
                    self.counters.rx_report += 1;
                }
                Verdict::Taken
            }
            Message::DoneV1 { .. } | Message::ReportV2 { .. } => {
                self.counters.rx_report += 1;
                Verdict::Taken
            }
        }
    }

    fn handle_query(&mut self, now: Instant, m: &Ipv6Mld<'_>, q: QueryRepr) -> Verdict {
        // RFC 3810 5.1.14 and 6.2.
        if m.src.segments()[0] & 0xffc0 != 0xfe80 {
            self.counters.rx_query_bad_source += 1;
            return Verdict::Dropped;
        }
        if m.hop_limit != wire::HOP_LIMIT {
            self.counters.rx_query_bad_hop_limit += 1;
            return Verdict::Dropped;
        }
        if !m.router_alert {
            self.counters.rx_query_no_router_alert += 1;
            return Verdict::Dropped;
        }
        if q.v1 {
            self.counters.rx_query_v1 += 1;
            if !self.v1_mode(now) {
                // RFC 3810 8.2.1: switching versions cancels whatever
                // MLDv2 answer or retransmission was pending.
                self.general_at = None;
                self.group_at.clear();
                self.changes.clear();
                self.change_at = None;
            }
            // RFC 3810 9.12: Older Version Querier Present Timeout.
            self.v1_until =
                Some(now + DEFAULT_QUERY_INTERVAL * u32::from(self.robustness) + q.max_response);
        } else {
            self.counters.rx_query_v2 += 1;
            if q.qrv != 0 {
                // RFC 3810 5.1.8: the querier's robustness is the link's.
                self.robustness = q.qrv;
            }
        }
        if !q.group.is_unspecified() && !self.groups.contains(&q.group) {
            self.counters.rx_query_other_group += 1;
            return Verdict::Taken;
        }
        let at = now + self.rng.between(Duration::ZERO, q.max_response);
        if self.v1_mode(now) {
            // MLDv1: one timer per group, a General Query sets them all.
            let groups: Vec<Ipv6Addr> = if q.group.is_unspecified() {
                self.groups.iter().copied().collect()
            } else {
                vec![q.group]
            };
            for (k, g) in groups.into_iter().enumerate() {
                let at = if k == 0 {
                    at
                } else {
                    now + self.rng.between(Duration::ZERO, q.max_response)
                };
                let p = self
                    .group_at
                    .entry(g)
                    .or_insert(Pending { at, sources: None });
                p.at = p.at.min(at);
            }
            return Verdict::Taken;
        }
        // RFC 3810 6.2, rule 1: an earlier answer to a General Query
        // covers this one too.
        if self.general_at.is_some_and(|t| t <= at) {
            self.counters.rx_query_covered += 1;
            return Verdict::Taken;
        }
        if q.group.is_unspecified() {
            // Rule 2.
            self.general_at = Some(at);
            return Verdict::Taken;
        }
        // Rules 3 to 5.
        let queried: Option<BTreeSet<Ipv6Addr>> = if q.sources.is_empty() || q.sources_truncated {
            // Too many sources to keep: answering for the whole group is
            // a superset of the answer, and always correct for EXCLUDE {}.
            None
        } else {
            Some(q.sources.iter().copied().collect())
        };
        match self.group_at.get_mut(&q.group) {
            None => {
                self.group_at.insert(
                    q.group,
                    Pending {
                        at,
                        sources: queried,
                    },
                );
            }
            Some(p) => {
                p.at = p.at.min(at);
                p.sources = match (p.sources.take(), queried) {
                    (Some(mut a), Some(b)) if a.len() + b.len() <= self.cfg.max_sources => {
                        a.extend(b);
                        Some(a)
                    }
                    _ => None,
                };
            }
        }
        Verdict::Taken
    }

    /// Sends what is due; returns the next deadline.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) -> Option<Instant> {
        if self.v1_until.is_some_and(|t| t <= now) {
            self.v1_until = None;
        }
        let v1 = self.v1_mode(now);
        if self.change_at.is_some_and(|t| t <= now) {
            self.send_changes(now, v1, out);
        }
        if self.general_at.is_some_and(|t| t <= now) {
            self.general_at = None;
            let records: Vec<Record> = self
                .groups
                .iter()
                .map(|&group| Record {
                    kind: record_type::MODE_IS_EXCLUDE,
                    group,
                    sources: Vec::new(),
                })
                .collect();
            self.counters.tx_answer += self.reports_v2(&records, out);
        }
        let due: Vec<Ipv6Addr> = self
            .group_at
            .iter()
            .filter(|(_, p)| p.at <= now)
            .map(|(g, _)| *g)
            .collect();
        let mut records = Vec::new();
        for g in due {
            let Some(p) = self.group_at.remove(&g) else {
                continue;
            };
            if v1 {
                out.push(self.frame_v1(wire::TYPE_REPORT_V1, g));
                self.counters.tx_answer += 1;
                continue;
            }
            // RFC 3810 6.3: we are in EXCLUDE {} for every group, so the
            // answer is IS_EX {} for the group, IS_IN (the sources asked
            // about) for a source-specific query.
            records.push(match p.sources {
                None => Record {
                    kind: record_type::MODE_IS_EXCLUDE,
                    group: g,
                    sources: Vec::new(),
                },
                Some(s) => Record {
                    kind: record_type::MODE_IS_INCLUDE,
                    group: g,
                    sources: s.into_iter().collect(),
                },
            });
        }
        self.counters.tx_answer += self.reports_v2(&records, out);
        [self.change_at, self.general_at, self.v1_until]
            .into_iter()
            .flatten()
            .chain(self.group_at.values().map(|p| p.at))
            .min()
    }

    fn send_changes(&mut self, now: Instant, v1: bool, out: &mut Vec<Vec<u8>>) {
        let mut records = Vec::new();
        for (&group, c) in self.changes.iter_mut() {
            if v1 {
                // RFC 2710 4: a Report on join, repeated; one Done on leave.
                let ty = if c.join {
                    wire::TYPE_REPORT_V1
                } else {
                    c.left = 1;
                    wire::TYPE_DONE_V1
                };
                records.push((ty, group));
            } else {
                records.push((
                    if c.join {
                        record_type::CHANGE_TO_EXCLUDE
                    } else {
                        record_type::CHANGE_TO_INCLUDE
                    },
                    group,
                ));
            }
            c.left = c.left.saturating_sub(1);
        }
        self.changes.retain(|_, c| c.left > 0);
        if v1 {
            for (ty, g) in records {
                out.push(self.frame_v1(ty, g));
                if ty == wire::TYPE_DONE_V1 {
                    self.counters.tx_done += 1;
                } else {
                    self.counters.tx_report += 1;
                }
            }
        } else {
            let records: Vec<Record> = records
                .into_iter()
                .map(|(kind, group)| Record {
                    kind,
                    group,
                    sources: Vec::new(),
                })
                .collect();
            self.counters.tx_report += self.reports_v2(&records, out);
        }
        // RFC 3810 6.1: the retransmissions follow at random intervals
        // in (0, Unsolicited Report Interval].
        self.change_at = (!self.changes.is_empty()).then(|| {
            now + self
                .rng
                .between(Duration::from_millis(1), self.cfg.unsolicited_interval)
        });
    }

    /// MLDv2 reports carrying `records`, as many as the MTU needs; returns
    /// how many.
    fn reports_v2(&self, records: &[Record], out: &mut Vec<Vec<u8>>) -> u64 {
        // IPv6 header, Hop-by-Hop header, report header.
        let room = self
            .cfg
            .mtu
            .saturating_sub(40 + 8 + wire::V2_REPORT_HEADER_LEN);
        let mut sent = 0;
        let mut chunk: Vec<Record> = Vec::new();
        let mut used = 0;
        for r in records {
            if !chunk.is_empty() && used + r.wire_len() > room {
                out.push(self.frame_v2(&chunk));
                sent += 1;
                chunk.clear();
                used = 0;
            }
            used += r.wire_len();
            chunk.push(r.clone());
        }
        if !chunk.is_empty() {
            out.push(self.frame_v2(&chunk));
            sent += 1;
        }
        sent
    }

    fn frame_v2(&self, records: &[Record]) -> Vec<u8> {
        wire::frame(
            self.mac,
            self.source,
            wire::ALL_MLDV2_ROUTERS,
            wire::emit_report_v2(records),
        )
    }

    /// RFC 2710 3.6/3.7: a Report goes to the group, a Done to all-routers.
    fn frame_v1(&self, ty: u8, group: Ipv6Addr) -> Vec<u8> {
        let dst = if ty == wire::TYPE_DONE_V1 {
            wire::ALL_ROUTERS
        } else {
            group
        };
        wire::frame(self.mac, self.source, dst, wire::emit_v1(ty, group))
    }
}
