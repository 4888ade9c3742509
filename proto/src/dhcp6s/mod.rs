//! DHCPv6 server for the LAN (RFC 8415 server side, options of RFC 3646 /
//! RFC 8415), sans-IO.
//!
//! The [`Dhcp6Server`] is pure logic: the caller feeds it the UDP payloads
//! received on port 547 ([`Dhcp6Server::handle`], with the time and the
//! client's source address) and sends the returned payload to that source,
//! port 546. [`Dhcp6Server::poll`] expires leases and returns the next
//! deadline. No sockets, threads or clock reads inside.
//!
//! # Modes
//!
//! - **Stateless** (default): Information-Request is answered with DNS
//!   servers (23), domain search list (24) and Information Refresh Time
//!   (32). Solicit / Request / Renew / Rebind get the same options and
//!   every IA_NA back with status NoAddrsAvail (RFC 8415 18.3.1, 18.3.2),
//!   so clients that insist on Solicit still learn the options.
//! - **Stateful**: one address per IA_NA from the current LAN /64. Solicit
//!   -> Advertise (Preference 255: we are the only server on a home LAN),
//!   or Reply with a committed binding when the Solicit carries Rapid
//!   Commit; Request / Renew / Rebind -> Reply with the binding; Release
//!   frees; Decline quarantines the address for [`DECLINE_HOLD`]; Confirm
//!   answers Success / NotOnLink.
//!
//! Information-Request is answered the same way in both modes.
//!
//! # Addresses
//!
//! The interface identifier is derived from SHA-256 over the server DUID,
//! the client DUID, the IAID and a probe counter: stable per (client DUID,
//! IAID) across restarts and renumbering even without [`Dhcp6Server::import`],
//! different on another router (the server DUID keys the hash, so a device
//! is not trackable across networks by its IID). Reserved IIDs (RFC 5453,
//! and ::1, the router) and addresses held by someone else or declined are
//! skipped by probing the next counter value. A client's own address hint
//! (an IAADDR in its IA_NA) from the current /64 is honoured when free,
//! which keeps bindings across a server restart without a lease file.
//!
//! Lifetimes are the configured ones capped by the prefix's remaining
//! lifetimes; T1 = 0.5 and T2 = 0.8 times the preferred lifetime.
//!
//! # Renumbering
//!
//! [`Dhcp6Server::set_prefix`] gives the current /64 and the stale ones
//! still deprecated on the link. Leases in a stale /64 stay until they
//! expire; every Request / Renew / Rebind (or Rapid Commit Solicit) of
//! their IA gets them back with preferred and valid lifetime 0 next to the
//! new address, as does any address the client lists that it cannot keep.
//!
//! # Hostile input
//!
//! Every payload goes through `wire::parse` (own framing validator, no
//! dhcproto on received bytes). Every reason a message is not answered has
//! a `drop-*` counter, exactly one per unanswered message. The lease table
//! holds at most `max_leases` entries (advertised entries, then declined
//! ones, are evicted first; bound ones never), at most
//! [`MAX_IAS_PER_CLIENT`] addresses per client DUID, and each message is
//! answered for at most `wire::MAX_IAS` IAs of each type.

mod wire;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, info, warn};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use wire::{Class, Ia, Inbound, Kind, Writer};

/// How long an advertised address stays reserved for the client that was
/// offered it.
pub const ADVERTISE_HOLD: Duration = Duration::from_secs(60);
/// How long a declined address is kept out of use (Kea's default
/// decline-probation-period).
pub const DECLINE_HOLD: Duration = Duration::from_secs(86_400);
/// Longest lifetime the server ever offers: configured lifetimes are
/// clamped to it (a LAN address that may be renumbered is never infinite).
pub const MAX_LIFETIME: Duration = Duration::from_secs(365 * 86_400);
/// Shortest valid lifetime accepted from the configuration.
pub const MIN_VALID: Duration = Duration::from_secs(60);
/// RFC 8415 IRT_MINIMUM: the smallest Information Refresh Time.
pub const IRT_MINIMUM: Duration = Duration::from_secs(600);
/// Addresses (IA_NAs) one client DUID may hold in the current /64.
pub const MAX_IAS_PER_CLIENT: usize = 8;
/// Stale /64s remembered by [`Dhcp6Server::set_prefix`].
pub const MAX_STALE_PREFIXES: usize = 8;
/// DNS servers and search domains sent (the rest of the list is ignored).
pub const MAX_DNS_SERVERS: usize = 16;
pub const MAX_DOMAINS: usize = 16;
/// Candidates tried for one (DUID, IAID) before giving up (NoAddrsAvail).
const MAX_PROBES: u32 = 32;
/// Zero-lifetime addresses returned in one IA.
const MAX_ZERO_LIFETIME: usize = 16;
/// The lifetime / T1 / T2 value meaning "forever" (RFC 8415 7.7).
const INFINITE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Options only (SLAAC addresses); IA_NA answered with NoAddrsAvail.
    #[default]
    Stateless,
    /// Addresses from the LAN /64 (IA_NA).
    Stateful,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dhcp6sConfig {
    /// Our DUID, raw bytes as in the Server Identifier option (3..=130
    /// octets; with anything else the server answers nothing and counts
    /// `drop-unconfigured`).
    pub server_duid: Vec<u8>,
    pub mode: Mode,
    /// Option 23 (unspecified, loopback and multicast entries and
    /// duplicates are skipped; at most [`MAX_DNS_SERVERS`]).
    pub dns: Vec<Ipv6Addr>,
    /// Option 24, host names with or without the trailing dot (invalid ones
    /// are skipped with a warning; at most [`MAX_DOMAINS`]).
    pub domains: Vec<String>,
    /// Option 32 in Information-Request replies; at least [`IRT_MINIMUM`],
    /// 0xffff_ffff seconds or more = infinite.
    pub info_refresh: Duration,
    /// Address lifetimes offered (clamped to [`MAX_LIFETIME`], valid to at
    /// least [`MIN_VALID`], preferred to at most valid), always capped by
    /// the prefix's remaining lifetimes.
    pub preferred: Duration,
    pub valid: Duration,
    pub max_leases: usize,
}

impl Default for Dhcp6sConfig {
    fn default() -> Self {
        Self {
            server_duid: Vec::new(),
            mode: Mode::Stateless,
            dns: Vec::new(),
            domains: Vec::new(),
            info_refresh: Duration::from_secs(86_400),
            preferred: Duration::from_secs(2700),
            valid: Duration::from_secs(5400),
            max_leases: 4096,
        }
    }
}

/// The LAN prefix addresses are assigned from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixState {
    /// The LAN /64 (bits beyond 64 are ignored).
    pub prefix: Ipv6Addr,
    /// `None` = infinite.
    pub preferred_until: Option<Instant>,
    pub valid_until: Option<Instant>,
}

/// One lease table entry, for `ipoectl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    /// Client DUID, lowercase hex without separators.
    pub duid_hex: String,
    pub iaid: u32,
    pub addr: Ipv6Addr,
    /// End of the valid lifetime given (bound), of the reservation
    /// (advertised) or of the quarantine (declined).
    pub expires: Instant,
    /// "advertised", "bound" or "declined".
    pub state: &'static str,
}

/// A lease as persisted across restarts (bound and declined entries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLease {
    /// Client DUID, hex.
    pub duid_hex: String,
    pub iaid: u32,
    pub addr: Ipv6Addr,
    /// Unix time (seconds) the entry ends.
    pub expires: u64,
    #[serde(default)]
    pub state: StoredState,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredState {
    #[default]
    Bound,
    Declined,
}

/// What the server received, sent and dropped, for `ipoectl show errors`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Client messages that passed the framing check, before any other.
    pub rx_solicit: u64,
    pub rx_request: u64,
    pub rx_confirm: u64,
    pub rx_renew: u64,
    pub rx_rebind: u64,
    pub rx_release: u64,
    pub rx_decline: u64,
    pub rx_information_request: u64,
    pub tx_advertise: u64,
    pub tx_reply: u64,
    /// Bad framing or option lengths, repeated identifiers, empty payload.
    pub drop_malformed: u64,
    /// A Server Identifier that is not ours.
    pub drop_wrong_server_id: u64,
    /// Request / Renew / Release / Decline without a Server Identifier.
    pub drop_missing_server_id: u64,
    /// Solicit / Rebind / Confirm carrying a Server Identifier.
    pub drop_unexpected_server_id: u64,
    pub drop_no_client_id: u64,
    /// Server-to-client and unknown message types.
    pub drop_unexpected_type: u64,
    /// Relay-Forward / Relay-Reply: no relay support on a home LAN.
    pub drop_relay: u64,
    /// Source address we cannot answer (multicast, unspecified).
    pub drop_bad_source: u64,
    /// Information-Request carrying an IA option (RFC 8415 16.12).
    pub drop_ia_in_information_request: u64,
    /// Confirm without any address (RFC 8415 18.3.3: no reply).
    pub drop_confirm_no_addresses: u64,
    /// Confirm while we have no prefix to judge by (18.3.3: no reply).
    pub drop_confirm_no_prefix: u64,
    /// No valid server DUID configured.
    pub drop_unconfigured: u64,
    /// IA_NAs answered NoAddrsAvail (stateless mode included).
    pub no_addrs_avail: u64,
    /// A new entry did not fit in `max_leases`.
    pub table_full: u64,
    /// A client DUID already holds [`MAX_IAS_PER_CLIENT`] addresses.
    pub client_limit: u64,
    /// IA options beyond the per-message limit or with a repeated IAID.
    pub ias_ignored: u64,
    /// Replies with Rapid Commit.
    pub rapid_commits: u64,
    /// Addresses newly bound / bindings extended.
    pub bindings: u64,
    pub renewals: u64,
    pub releases: u64,
    pub declines: u64,
    /// Bound leases that ran out.
    pub expirations: u64,
    /// Stored leases refused by `import`.
    pub import_rejected: u64,
}

impl Counters {
    /// Every counter with a kebab-case name, in a fixed order.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("rx-solicit", self.rx_solicit),
            ("rx-request", self.rx_request),
            ("rx-confirm", self.rx_confirm),
            ("rx-renew", self.rx_renew),
            ("rx-rebind", self.rx_rebind),
            ("rx-release", self.rx_release),
            ("rx-decline", self.rx_decline),
            ("rx-information-request", self.rx_information_request),
            ("tx-advertise", self.tx_advertise),
            ("tx-reply", self.tx_reply),
            ("drop-malformed", self.drop_malformed),
            ("drop-wrong-server-id", self.drop_wrong_server_id),
            ("drop-missing-server-id", self.drop_missing_server_id),
            ("drop-unexpected-server-id", self.drop_unexpected_server_id),
            ("drop-no-client-id", self.drop_no_client_id),
            ("drop-unexpected-type", self.drop_unexpected_type),
            ("drop-relay", self.drop_relay),
            ("drop-bad-source", self.drop_bad_source),
            (
                "drop-ia-in-information-request",
                self.drop_ia_in_information_request,
            ),
            ("drop-confirm-no-addresses", self.drop_confirm_no_addresses),
            ("drop-confirm-no-prefix", self.drop_confirm_no_prefix),
            ("drop-unconfigured", self.drop_unconfigured),
            ("no-addrs-avail", self.no_addrs_avail),
            ("table-full", self.table_full),
            ("client-limit", self.client_limit),
            ("ias-ignored", self.ias_ignored),
            ("rapid-commits", self.rapid_commits),
            ("bindings", self.bindings),
            ("renewals", self.renewals),
            ("releases", self.releases),
            ("declines", self.declines),
            ("expirations", self.expirations),
            ("import-rejected", self.import_rejected),
        ]
    }

    /// Sum of the `drop-*` counters: every received payload is either
    /// answered (`tx-*`) or counted here exactly once.
    pub fn dropped(&self) -> u64 {
        self.named()
            .iter()
            .filter(|(name, _)| name.starts_with("drop-"))
            .map(|(_, value)| value)
            .sum()
    }
}

/// The configuration as used: validated, clamped, options pre-encoded.
#[derive(Clone, Debug)]
struct Settings {
    duid: Option<Vec<u8>>,
    mode: Mode,
    /// Option 23 / 24 bodies; empty = option not sent.
    dns: Vec<u8>,
    domains: Vec<u8>,
    info_refresh: u32,
    preferred: u32,
    valid: u32,
    max_leases: usize,
}

impl Settings {
    fn new(cfg: &Dhcp6sConfig) -> Self {
        let duid = (3..=wire::MAX_DUID_LEN)
            .contains(&cfg.server_duid.len())
            .then(|| cfg.server_duid.clone());
        if duid.is_none() {
            warn!(
                "dhcp6s: server DUID of {} octets is unusable; not answering",
                cfg.server_duid.len()
            );
        }
        let mut servers: Vec<Ipv6Addr> = Vec::new();
        for server in &cfg.dns {
            let usable =
                !server.is_unspecified() && !server.is_loopback() && !server.is_multicast();
            if !usable {
                warn!("dhcp6s: DNS server {server} skipped");
            } else if servers.len() < MAX_DNS_SERVERS && !servers.contains(server) {
                servers.push(*server);
            }
        }
        let dns = servers.iter().flat_map(|s| s.octets()).collect();
        let mut domains = Vec::new();
        let mut count = 0;
        for name in &cfg.domains {
            if count >= MAX_DOMAINS {
                warn!("dhcp6s: more than {MAX_DOMAINS} search domains; the rest are skipped");
                break;
            }
            if wire::encode_domain(name, &mut domains) {
                count += 1;
            } else {
                warn!("dhcp6s: search domain {name:?} is not a host name; skipped");
            }
        }
        let valid = cfg.valid.clamp(MIN_VALID, MAX_LIFETIME);
        let preferred = cfg.preferred.min(valid);
        Self {
            duid,
            mode: cfg.mode,
            dns,
            domains,
            info_refresh: seconds_u32(cfg.info_refresh.max(IRT_MINIMUM)),
            preferred: seconds_u32(preferred),
            valid: seconds_u32(valid),
            max_leases: cfg.max_leases,
        }
    }
}

/// A duration in whole seconds; 0xffff_ffff (infinite) if it does not fit.
fn seconds_u32(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(INFINITE)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LeaseState {
    Advertised,
    Bound,
    Declined,
}

impl LeaseState {
    fn name(self) -> &'static str {
        match self {
            LeaseState::Advertised => "advertised",
            LeaseState::Bound => "bound",
            LeaseState::Declined => "declined",
        }
    }
}

#[derive(Clone, Debug)]
struct Lease {
    duid: Vec<u8>,
    iaid: u32,
    state: LeaseState,
    expires: Instant,
}

impl Lease {
    /// Held (advertised or bound) for this IA.
    fn held_by(&self, duid: &[u8], iaid: u32) -> bool {
        self.state != LeaseState::Declined && self.iaid == iaid && self.duid == duid
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Prefix {
    net: Ipv6Addr,
    preferred_until: Option<Instant>,
    valid_until: Option<Instant>,
}

/// Why an IA_NA got no address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NoAddr {
    NoPrefix,
    Exhausted,
    TableFull,
    ClientLimit,
}

impl NoAddr {
    fn message(self) -> &'static str {
        match self {
            NoAddr::NoPrefix => "no prefix on this link",
            NoAddr::Exhausted => "no free address",
            NoAddr::TableFull => "lease table full",
            NoAddr::ClientLimit => "too many addresses for this client",
        }
    }
}

pub struct Dhcp6Server {
    cfg: Dhcp6sConfig,
    s: Settings,
    prefix: Option<Prefix>,
    stale: Vec<Ipv6Addr>,
    /// Keyed by address: one entry per address, whatever its state.
    leases: BTreeMap<Ipv6Addr, Lease>,
    /// No entry expires before this (may be early, never late).
    next_expiry: Option<Instant>,
    dirty: bool,
    counters: Counters,
}

impl Dhcp6Server {
    /// `seed` is accepted like the other engines' but unused: nothing here
    /// is random, addresses in particular must not depend on it so they
    /// survive restarts.
    pub fn new(cfg: Dhcp6sConfig, seed: u64) -> Self {
        let _ = seed;
        Self {
            s: Settings::new(&cfg),
            cfg,
            prefix: None,
            stale: Vec::new(),
            leases: BTreeMap::new(),
            next_expiry: None,
            dirty: false,
            counters: Counters::default(),
        }
    }

    pub fn config(&self) -> &Dhcp6sConfig {
        &self.cfg
    }

    /// Takes effect for the next message. Switching to stateless drops the
    /// lease table; lowering `max_leases` evicts advertised and declined
    /// entries to fit (bound ones stay until they expire).
    pub fn set_config(&mut self, cfg: Dhcp6sConfig) {
        if cfg == self.cfg {
            return;
        }
        self.s = Settings::new(&cfg);
        self.cfg = cfg;
        if self.s.mode == Mode::Stateless && !self.leases.is_empty() {
            info!(
                "dhcp6s: stateless mode, dropping {} leases",
                self.leases.len()
            );
            self.leases.clear();
            self.next_expiry = None;
            self.dirty = true;
        }
        while self.leases.len() > self.s.max_leases && self.evict_one(true) {}
    }

    /// The current LAN /64 (`None`: no prefix, IA_NAs get NoAddrsAvail) and
    /// the stale /64s still on the link. With a current prefix, leases
    /// outside it and the stale ones are dropped; leases in a stale /64 are
    /// kept until they expire and returned with zero lifetimes when their
    /// client comes back. Without one, the table is kept as it is (a WAN
    /// flap does not forget bindings).
    pub fn set_prefix(&mut self, now: Instant, current: Option<PrefixState>, stale: &[Ipv6Addr]) {
        let _ = now;
        let current = current.map(|p| Prefix {
            net: mask64(p.prefix),
            preferred_until: p.preferred_until,
            valid_until: p.valid_until,
        });
        let mut nets: Vec<Ipv6Addr> = Vec::new();
        for net in stale.iter().map(|s| mask64(*s)) {
            if Some(net) != current.map(|p| p.net) && !nets.contains(&net) {
                nets.push(net);
            }
        }
        if nets.len() > MAX_STALE_PREFIXES {
            warn!(
                "dhcp6s: {} stale prefixes, keeping {MAX_STALE_PREFIXES}",
                nets.len()
            );
            nets.truncate(MAX_STALE_PREFIXES);
        }
        if current.map(|p| p.net) != self.prefix.map(|p| p.net) {
            match current {
                Some(p) => info!("dhcp6s: LAN prefix {}/64", p.net),
                None => info!("dhcp6s: no LAN prefix"),
            }
        }
        self.prefix = current;
        self.stale = nets;
        let Some(current) = current else { return };
        let stale = &self.stale;
        let mut dropped_bound = false;
        self.leases.retain(|addr, lease| {
            let net = mask64(*addr);
            let keep =
                net == current.net || (stale.contains(&net) && lease.state == LeaseState::Bound);
            if !keep && lease.state == LeaseState::Bound {
                debug!("dhcp6s: lease {addr} left with its prefix");
                dropped_bound = true;
            }
            keep
        });
        self.dirty |= dropped_bound;
    }

    /// Answers one UDP payload received on port 547 from `src`; the reply
    /// goes to `src` port 546.
    pub fn handle(&mut self, now: Instant, src: Ipv6Addr, msg: &[u8]) -> Option<Vec<u8>> {
        if self.next_expiry.is_some_and(|t| t <= now) {
            self.expire(now);
        }
        let (msg_type, reply) = self.answer(now, src, msg)?;
        if msg_type == wire::MSG_ADVERTISE {
            self.counters.tx_advertise += 1;
        } else {
            self.counters.tx_reply += 1;
        }
        Some(reply)
    }

    /// Expires leases; returns when to call again (`None`: no lease).
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.expire(now);
        self.next_expiry
    }

    pub fn leases(&self, now: Instant) -> Vec<LeaseInfo> {
        self.leases
            .iter()
            .filter(|(_, lease)| lease.expires > now)
            .map(|(addr, lease)| LeaseInfo {
                duid_hex: to_hex(&lease.duid),
                iaid: lease.iaid,
                addr: *addr,
                expires: lease.expires,
                state: lease.state.name(),
            })
            .collect()
    }

    /// Bound and declined entries, expiry converted to Unix seconds.
    pub fn export(&self, now: Instant, wall_now: SystemTime) -> Vec<StoredLease> {
        let base = wall_now.duration_since(UNIX_EPOCH).unwrap_or_default();
        self.leases
            .iter()
            .filter(|(_, lease)| lease.expires > now)
            .filter_map(|(addr, lease)| {
                let state = match lease.state {
                    LeaseState::Bound => StoredState::Bound,
                    LeaseState::Declined => StoredState::Declined,
                    LeaseState::Advertised => return None,
                };
                Some(StoredLease {
                    duid_hex: to_hex(&lease.duid),
                    iaid: lease.iaid,
                    addr: *addr,
                    expires: base
                        .saturating_add(lease.expires.saturating_duration_since(now))
                        .as_secs(),
                    state,
                })
            })
            .collect()
    }

    /// Loads exported leases (call before serving). Expired entries are
    /// skipped; invalid, duplicate or non-fitting ones are counted in
    /// `import-rejected`. Remaining time is capped at [`MAX_LIFETIME`]
    /// (bound) or [`DECLINE_HOLD`] (declined). Nothing is imported in
    /// stateless mode. Not filtered by prefix: the next `set_prefix` does
    /// that.
    pub fn import(&mut self, now: Instant, wall_now: SystemTime, leases: Vec<StoredLease>) {
        if self.s.mode == Mode::Stateless {
            if !leases.is_empty() {
                info!(
                    "dhcp6s: stateless mode, {} stored leases ignored",
                    leases.len()
                );
            }
            return;
        }
        let base = wall_now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut loaded = 0usize;
        for stored in leases {
            let left = stored.expires.saturating_sub(base);
            if left == 0 {
                continue;
            }
            let (state, cap) = match stored.state {
                StoredState::Bound => (LeaseState::Bound, MAX_LIFETIME),
                StoredState::Declined => (LeaseState::Declined, DECLINE_HOLD),
            };
            let duid = from_hex(&stored.duid_hex)
                .filter(|d| !d.is_empty() && d.len() <= wire::MAX_DUID_LEN);
            let addr = stored.addr;
            let acceptable = duid.is_some()
                && is_unicast(addr)
                && !reserved_iid(addr)
                && !self.leases.contains_key(&addr);
            let Some(duid) = duid.filter(|_| acceptable) else {
                self.counters.import_rejected += 1;
                continue;
            };
            let duplicate = state == LeaseState::Bound
                && self.leases.iter().any(|(other, lease)| {
                    mask64(*other) == mask64(addr) && lease.held_by(&duid, stored.iaid)
                });
            if duplicate || !self.make_room(true) {
                self.counters.import_rejected += 1;
                continue;
            }
            let expires = later(now, Duration::from_secs(left).min(cap));
            self.leases.insert(
                addr,
                Lease {
                    duid,
                    iaid: stored.iaid,
                    state,
                    expires,
                },
            );
            self.note_deadline(expires);
            loaded += 1;
        }
        info!("dhcp6s: {loaded} leases imported");
    }

    /// Whether bound leases changed (new, extended, released, declined,
    /// expired, dropped) since the last call; clears the flag.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Validation and dispatch; returns the reply's message type and
    /// payload. Every `None` has counted exactly one `drop-*`.
    fn answer(&mut self, now: Instant, src: Ipv6Addr, msg: &[u8]) -> Option<(u8, Vec<u8>)> {
        let Some(server_duid) = self.s.duid.clone() else {
            self.counters.drop_unconfigured += 1;
            return None;
        };
        if src.is_multicast() || src.is_unspecified() {
            self.counters.drop_bad_source += 1;
            debug!("dhcp6s: message from unusable source {src}");
            return None;
        }
        let Some(&msg_type) = msg.first() else {
            self.counters.drop_malformed += 1;
            return None;
        };
        let kind = match wire::classify(msg_type) {
            Class::Client(kind) => kind,
            Class::Relay => {
                self.counters.drop_relay += 1;
                debug!("dhcp6s: relay message from {src} dropped");
                return None;
            }
            Class::Unexpected => {
                self.counters.drop_unexpected_type += 1;
                debug!("dhcp6s: message type {msg_type} from {src} dropped");
                return None;
            }
        };
        let inbound = match wire::parse(kind, msg) {
            Ok(inbound) => inbound,
            Err(e) => {
                self.counters.drop_malformed += 1;
                debug!("dhcp6s: malformed message from {src}: {e}");
                return None;
            }
        };
        self.count_rx(kind);
        self.counters.ias_ignored += u64::from(inbound.ias_ignored);

        // Server Identifier rules (RFC 8415 16).
        let must_have = matches!(
            kind,
            Kind::Request | Kind::Renew | Kind::Release | Kind::Decline
        );
        let must_not_have = matches!(kind, Kind::Solicit | Kind::Rebind | Kind::Confirm);
        match &inbound.server_id {
            Some(_) if must_not_have => {
                self.counters.drop_unexpected_server_id += 1;
                debug!("dhcp6s: {kind:?} from {src} with a Server Identifier dropped");
                return None;
            }
            Some(id) if *id != server_duid => {
                self.counters.drop_wrong_server_id += 1;
                debug!("dhcp6s: {kind:?} from {src} for another server dropped");
                return None;
            }
            None if must_have => {
                self.counters.drop_missing_server_id += 1;
                debug!("dhcp6s: {kind:?} from {src} without Server Identifier dropped");
                return None;
            }
            _ => {}
        }
        if kind == Kind::InformationRequest && inbound.has_ia {
            self.counters.drop_ia_in_information_request += 1;
            debug!("dhcp6s: Information-Request from {src} with an IA dropped");
            return None;
        }
        let client = match (&inbound.client_id, kind) {
            (Some(id), _) => id.clone(),
            (None, Kind::InformationRequest) => Vec::new(),
            (None, _) => {
                self.counters.drop_no_client_id += 1;
                debug!("dhcp6s: {kind:?} from {src} without Client Identifier dropped");
                return None;
            }
        };

        let mut w = Writer::new();
        if let Some(id) = &inbound.client_id {
            w.option(wire::OPT_CLIENT_ID, id);
        }
        w.option(wire::OPT_SERVER_ID, &server_duid);
        let msg_type = match kind {
            Kind::InformationRequest => {
                self.put_config_options(&mut w);
                let refresh = self.s.info_refresh.to_be_bytes();
                w.option(wire::OPT_INFORMATION_REFRESH_TIME, &refresh);
                wire::MSG_REPLY
            }
            Kind::Solicit => self.solicit(now, &inbound, &client, &mut w),
            Kind::Request | Kind::Renew | Kind::Rebind => {
                for ia in &inbound.ia_na {
                    self.answer_na(now, &client, ia, true, &mut w);
                }
                self.refuse_other_ias(&inbound, &mut w);
                self.put_config_options(&mut w);
                wire::MSG_REPLY
            }
            Kind::Release | Kind::Decline => {
                self.release_or_decline(now, &inbound, &client, &mut w);
                wire::MSG_REPLY
            }
            Kind::Confirm => {
                let mut addrs = inbound
                    .ia_na
                    .iter()
                    .chain(&inbound.ia_ta)
                    .flat_map(|ia| ia.addrs.iter().copied())
                    .peekable();
                if addrs.peek().is_none() {
                    self.counters.drop_confirm_no_addresses += 1;
                    debug!("dhcp6s: Confirm from {src} without addresses dropped");
                    return None;
                }
                let Some(net) = self.current_net(now) else {
                    self.counters.drop_confirm_no_prefix += 1;
                    debug!("dhcp6s: Confirm from {src} while we have no prefix dropped");
                    return None;
                };
                if addrs.all(|addr| mask64(addr) == net) {
                    w.status(wire::STATUS_SUCCESS, "all addresses on link");
                } else {
                    w.status(wire::STATUS_NOT_ON_LINK, "not on link");
                }
                wire::MSG_REPLY
            }
        };
        Some((msg_type, w.finish(msg_type, inbound.xid)))
    }

    fn count_rx(&mut self, kind: Kind) {
        let c = &mut self.counters;
        let counter = match kind {
            Kind::Solicit => &mut c.rx_solicit,
            Kind::Request => &mut c.rx_request,
            Kind::Confirm => &mut c.rx_confirm,
            Kind::Renew => &mut c.rx_renew,
            Kind::Rebind => &mut c.rx_rebind,
            Kind::Release => &mut c.rx_release,
            Kind::Decline => &mut c.rx_decline,
            Kind::InformationRequest => &mut c.rx_information_request,
        };
        *counter += 1;
    }

    fn put_config_options(&self, w: &mut Writer) {
        if !self.s.dns.is_empty() {
            w.option(wire::OPT_DNS_SERVERS, &self.s.dns);
        }
        if !self.s.domains.is_empty() {
            w.option(wire::OPT_DOMAIN_LIST, &self.s.domains);
        }
    }

    /// Solicit: Advertise, or Reply with committed bindings when the client
    /// asked for Rapid Commit and got at least one address.
    fn solicit(&mut self, now: Instant, inbound: &Inbound, client: &[u8], w: &mut Writer) -> u8 {
        let stateful = self.s.mode == Mode::Stateful;
        let commit = stateful && inbound.rapid_commit;
        let mut assigned = 0;
        for ia in &inbound.ia_na {
            if self.answer_na(now, client, ia, commit, w) {
                assigned += 1;
            }
        }
        self.refuse_other_ias(inbound, w);
        self.put_config_options(w);
        if commit && assigned > 0 {
            w.option(wire::OPT_RAPID_COMMIT, &[]);
            self.counters.rapid_commits += 1;
            wire::MSG_REPLY
        } else {
            if stateful {
                w.option(wire::OPT_PREFERENCE, &[255]);
            }
            wire::MSG_ADVERTISE
        }
    }

    /// IA_TA and IA_PD: not served on the LAN.
    fn refuse_other_ias(&self, inbound: &Inbound, w: &mut Writer) {
        for ia in &inbound.ia_ta {
            w.ia_status(
                wire::OPT_IA_TA,
                ia.iaid,
                wire::STATUS_NO_ADDRS_AVAIL,
                "no temporary addresses",
            );
        }
        for iaid in &inbound.ia_pd {
            w.ia_status(
                wire::OPT_IA_PD,
                *iaid,
                wire::STATUS_NO_PREFIX_AVAIL,
                "no prefix delegation on this link",
            );
        }
    }

    /// Writes the answer for one IA_NA; `commit` binds (Request, Renew,
    /// Rebind, Rapid Commit) instead of advertising. Returns whether an
    /// address was given.
    fn answer_na(
        &mut self,
        now: Instant,
        client: &[u8],
        ia: &Ia,
        commit: bool,
        w: &mut Writer,
    ) -> bool {
        if self.s.mode == Mode::Stateless {
            self.counters.no_addrs_avail += 1;
            w.ia_status(
                wire::OPT_IA_NA,
                ia.iaid,
                wire::STATUS_NO_ADDRS_AVAIL,
                "addresses by SLAAC only",
            );
            return false;
        }
        let result = self.assign(now, client, ia, commit);
        let assigned = result.ok().map(|(addr, _, _)| addr);
        // What the client must stop using: its leases off the current /64
        // (renumbering) and anything it listed that it does not get.
        let mut zero: Vec<Ipv6Addr> = Vec::new();
        if commit {
            let current = self.current_net(now);
            for (addr, lease) in &self.leases {
                if zero.len() >= MAX_ZERO_LIFETIME {
                    break;
                }
                if lease.held_by(client, ia.iaid)
                    && Some(*addr) != assigned
                    && Some(mask64(*addr)) != current
                {
                    zero.push(*addr);
                }
            }
            for addr in &ia.addrs {
                if zero.len() < MAX_ZERO_LIFETIME && Some(*addr) != assigned && !zero.contains(addr)
                {
                    zero.push(*addr);
                }
            }
        }
        match result {
            Ok((addr, preferred, valid)) => {
                let (t1, t2) = t1_t2(preferred);
                let start = w.begin_ia(wire::OPT_IA_NA, ia.iaid, t1, t2);
                w.iaaddr(addr, preferred, valid);
                for old in zero {
                    w.iaaddr(old, 0, 0);
                }
                w.end(start);
                true
            }
            Err(reason) => {
                self.counters.no_addrs_avail += 1;
                debug!(
                    "dhcp6s: IA_NA {} of {}: {}",
                    ia.iaid,
                    to_hex(client),
                    reason.message()
                );
                let start = w.begin_ia(wire::OPT_IA_NA, ia.iaid, 0, 0);
                for old in zero {
                    w.iaaddr(old, 0, 0);
                }
                w.status(wire::STATUS_NO_ADDRS_AVAIL, reason.message());
                w.end(start);
                false
            }
        }
    }

    /// Picks and records the address for one IA_NA: returns it with the
    /// preferred and valid lifetimes to send.
    fn assign(
        &mut self,
        now: Instant,
        client: &[u8],
        ia: &Ia,
        commit: bool,
    ) -> Result<(Ipv6Addr, u32, u32), NoAddr> {
        let (net, preferred, valid) = self.offer(now).ok_or(NoAddr::NoPrefix)?;
        let addr = self.pick(net, client, ia).ok_or(NoAddr::Exhausted)?;
        let expires = if commit {
            later(now, Duration::from_secs(u64::from(valid)))
        } else {
            later(now, ADVERTISE_HOLD)
        };
        if let Some(lease) = self.leases.get_mut(&addr) {
            // `pick` only returns entries held by this IA.
            if commit {
                if lease.state == LeaseState::Bound {
                    self.counters.renewals += 1;
                } else {
                    self.counters.bindings += 1;
                    info!(
                        "dhcp6s: {addr} bound to {} iaid {}",
                        to_hex(client),
                        ia.iaid
                    );
                }
                lease.state = LeaseState::Bound;
                lease.expires = expires;
                self.dirty = true;
            } else if lease.state == LeaseState::Advertised {
                lease.expires = lease.expires.max(expires);
            }
        } else {
            let held = self
                .leases
                .iter()
                .filter(|(a, lease)| {
                    mask64(**a) == net
                        && lease.state != LeaseState::Declined
                        && lease.duid == client
                })
                .count();
            if held >= MAX_IAS_PER_CLIENT {
                self.counters.client_limit += 1;
                return Err(NoAddr::ClientLimit);
            }
            if !self.make_room(commit) {
                self.counters.table_full += 1;
                return Err(NoAddr::TableFull);
            }
            let state = if commit {
                self.counters.bindings += 1;
                self.dirty = true;
                info!(
                    "dhcp6s: {addr} bound to {} iaid {}",
                    to_hex(client),
                    ia.iaid
                );
                LeaseState::Bound
            } else {
                LeaseState::Advertised
            };
            self.leases.insert(
                addr,
                Lease {
                    duid: client.to_vec(),
                    iaid: ia.iaid,
                    state,
                    expires,
                },
            );
        }
        self.note_deadline(expires);
        Ok((addr, preferred, valid))
    }

    /// The address for an IA in `net`: the one it holds, else its hint if
    /// free, else the first free derived candidate.
    fn pick(&self, net: Ipv6Addr, client: &[u8], ia: &Ia) -> Option<Ipv6Addr> {
        let held = self
            .leases
            .iter()
            .find(|(addr, lease)| mask64(**addr) == net && lease.held_by(client, ia.iaid))
            .map(|(addr, _)| *addr);
        if held.is_some() {
            return held;
        }
        let free = |addr: &Ipv6Addr| {
            !reserved_iid(*addr)
                && match self.leases.get(addr) {
                    None => true,
                    Some(lease) => lease.held_by(client, ia.iaid),
                }
        };
        if let Some(hint) = ia
            .addrs
            .iter()
            .copied()
            .find(|addr| mask64(*addr) == net && free(addr))
        {
            return Some(hint);
        }
        let key = self.s.duid.as_deref().unwrap_or_default();
        (0..MAX_PROBES)
            .map(|probe| derive_address(net, key, client, ia.iaid, probe))
            .find(|addr| free(addr))
    }

    fn release_or_decline(
        &mut self,
        now: Instant,
        inbound: &Inbound,
        client: &[u8],
        w: &mut Writer,
    ) {
        let decline = inbound.kind == Kind::Decline;
        for ia in &inbound.ia_na {
            let bound = self
                .leases
                .values()
                .any(|lease| lease.held_by(client, ia.iaid));
            if !bound {
                w.ia_status(
                    wire::OPT_IA_NA,
                    ia.iaid,
                    wire::STATUS_NO_BINDING,
                    "no binding",
                );
                continue;
            }
            for addr in &ia.addrs {
                let Some(lease) = self.leases.get_mut(addr) else {
                    continue;
                };
                if !lease.held_by(client, ia.iaid) {
                    continue;
                }
                self.dirty = true;
                if decline {
                    warn!(
                        "dhcp6s: {addr} declined by {} (in use by another host?)",
                        to_hex(client)
                    );
                    lease.state = LeaseState::Declined;
                    lease.expires = later(now, DECLINE_HOLD);
                    let expires = lease.expires;
                    self.counters.declines += 1;
                    self.note_deadline(expires);
                } else {
                    info!("dhcp6s: {addr} released by {}", to_hex(client));
                    self.leases.remove(addr);
                    self.counters.releases += 1;
                }
            }
        }
        for ia in &inbound.ia_ta {
            w.ia_status(
                wire::OPT_IA_TA,
                ia.iaid,
                wire::STATUS_NO_BINDING,
                "no binding",
            );
        }
        for iaid in &inbound.ia_pd {
            w.ia_status(
                wire::OPT_IA_PD,
                *iaid,
                wire::STATUS_NO_BINDING,
                "no binding",
            );
        }
        w.status(wire::STATUS_SUCCESS, "");
    }

    /// The current /64 if its valid lifetime is not over.
    fn current_net(&self, now: Instant) -> Option<Ipv6Addr> {
        self.offer(now).map(|(net, _, _)| net)
    }

    /// The current /64 and the preferred / valid lifetimes (seconds) an
    /// address in it gets now; `None` without a usable prefix.
    fn offer(&self, now: Instant) -> Option<(Ipv6Addr, u32, u32)> {
        let prefix = self.prefix?;
        let left = |until: Option<Instant>| {
            until.map_or(u64::MAX, |t| t.saturating_duration_since(now).as_secs())
        };
        let valid_left = left(prefix.valid_until);
        if valid_left == 0 {
            return None;
        }
        let valid = u64::from(self.s.valid).min(valid_left);
        let preferred = u64::from(self.s.preferred)
            .min(left(prefix.preferred_until))
            .min(valid);
        // Both at most the configured u32 values.
        Some((
            prefix.net,
            u32::try_from(preferred).unwrap_or(INFINITE),
            u32::try_from(valid).unwrap_or(INFINITE),
        ))
    }

    /// Makes room for one new entry; `for_bound` may also evict declined
    /// entries. Advertised entries go first, the oldest first.
    fn make_room(&mut self, for_bound: bool) -> bool {
        while self.leases.len() >= self.s.max_leases {
            if !self.evict_one(for_bound) {
                return false;
            }
        }
        true
    }

    fn evict_one(&mut self, declined_too: bool) -> bool {
        let victim = self
            .leases
            .iter()
            .filter(|(_, lease)| {
                lease.state == LeaseState::Advertised
                    || (declined_too && lease.state == LeaseState::Declined)
            })
            .min_by_key(|(_, lease)| (lease.state != LeaseState::Advertised, lease.expires))
            .map(|(addr, _)| *addr);
        match victim {
            Some(addr) => {
                debug!("dhcp6s: evicting {addr} to make room");
                self.leases.remove(&addr);
                true
            }
            None => false,
        }
    }

    fn note_deadline(&mut self, at: Instant) {
        self.next_expiry = Some(self.next_expiry.map_or(at, |t| t.min(at)));
    }

    fn expire(&mut self, now: Instant) {
        let mut next: Option<Instant> = None;
        let mut expired = 0u64;
        self.leases.retain(|addr, lease| {
            if lease.expires <= now {
                if lease.state == LeaseState::Bound {
                    info!("dhcp6s: lease {addr} of {} expired", to_hex(&lease.duid));
                    expired += 1;
                }
                false
            } else {
                next = Some(next.map_or(lease.expires, |t| t.min(lease.expires)));
                true
            }
        });
        self.counters.expirations += expired;
        self.dirty |= expired > 0;
        self.next_expiry = next;
    }
}

/// T1 = 0.5 and T2 = 0.8 times the preferred lifetime.
fn t1_t2(preferred: u32) -> (u32, u32) {
    if preferred == INFINITE {
        return (INFINITE, INFINITE);
    }
    let p = u64::from(preferred);
    // Both below `preferred`, so they fit.
    let t1 = u32::try_from(p / 2).unwrap_or(INFINITE);
    let t2 = u32::try_from(p * 4 / 5).unwrap_or(INFINITE);
    (t1, t2)
}

/// The /64 network of an address.
fn mask64(addr: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(addr) & !u128::from(u64::MAX))
}

fn iid(addr: Ipv6Addr) -> u64 {
    // The low 64 bits; truncation intended.
    (u128::from(addr) & u128::from(u64::MAX)) as u64
}

/// IIDs never assigned: RFC 5453 reserved ones and ::1 (the router).
fn reserved_iid(addr: Ipv6Addr) -> bool {
    let iid = iid(addr);
    iid == 1 || crate::slaac::is_reserved_iid(iid.to_be_bytes())
}

fn is_unicast(addr: Ipv6Addr) -> bool {
    !(addr.is_unspecified() || addr.is_loopback() || addr.is_multicast())
}

/// Candidate `probe` for (client DUID, IAID) in `net`: the first 64 bits
/// of SHA-256 over a label, the server DUID, the client DUID (both length
/// prefixed), the IAID and the probe counter.
fn derive_address(net: Ipv6Addr, server: &[u8], client: &[u8], iaid: u32, probe: u32) -> Ipv6Addr {
    let mut hasher = Sha256::new();
    hasher.update(b"ipoe-dhcp6s-iid-v1");
    // DUIDs are at most 130 octets.
    hasher.update([u8::try_from(server.len()).unwrap_or(u8::MAX)]);
    hasher.update(server);
    hasher.update([u8::try_from(client.len()).unwrap_or(u8::MAX)]);
    hasher.update(client);
    hasher.update(iaid.to_be_bytes());
    hasher.update(probe.to_be_bytes());
    let digest = hasher.finalize();
    let mut iid = [0u8; 8];
    iid.copy_from_slice(&digest[..8]);
    Ipv6Addr::from(u128::from(mask64(net)) | u128::from(u64::from_be_bytes(iid)))
}

/// `now + d`, saturating at `now` plus [`MAX_LIFETIME`] (never reached with
/// the clamped inputs, but `Instant` addition may panic on overflow).
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(MAX_LIFETIME))
        .or_else(|| now.checked_add(Duration::from_secs(1)))
        .unwrap_or(now)
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Hex (either case) to bytes; `None` for odd length or a non-hex digit.
fn from_hex(text: &str) -> Option<Vec<u8>> {
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}
