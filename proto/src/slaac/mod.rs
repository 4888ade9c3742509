//! Router Advertisements and SLAAC on the WAN, sans-IO.
//!
//! [`WanRa`] is the host side of IPv6 Neighbor Discovery's router
//! discovery on the WAN link: it solicits routers (RFC 4861 6.3.7 with the
//! RFC 7559 backoff), validates and digests their advertisements (RFC 4861
//! 6.1.2, 6.3.4), keeps the default-router list, forms SLAAC addresses
//! (RFC 4862 5.5.3) with modified EUI-64 or RFC 7217 stable-privacy
//! interface identifiers, and tracks RDNSS/DNSSL (RFC 8106) and the link
//! MTU.
//!
//! It owns no socket or clock: the caller feeds `(now, packet)` to
//! [`WanRa::handle_ra`], calls [`WanRa::poll`] at the returned deadline to
//! get Router Solicitations to send and to run expiries, and reads
//! [`WanRa::drain_events`]. Tests drive years of protocol time on a fake
//! clock. The caller verifies the ICMPv6 checksum and runs DAD on the
//! addresses it is told about, reporting duplicates to
//! [`WanRa::dad_failed`].
//!
//! Every received byte is untrusted: rejected input counts in a named
//! [`Counters`] field, every table is bounded, and no timer expires
//! without a log line.

mod counters;
#[cfg(test)]
mod flood_tests;
pub mod ra;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use counters::Counters;
use ra::{OptionError, PrefixInfo, RaRepr, RouterAdvert, INFINITE_LIFETIME};

/// RFC 4861 10: upper bound of the random delay before the first RS.
pub const MAX_RTR_SOLICITATION_DELAY: Duration = Duration::from_secs(1);
/// RFC 4861 10: spacing of the initial solicitations.
pub const RTR_SOLICITATION_INTERVAL: Duration = Duration::from_secs(4);
/// RFC 4861 10: solicitations sent at the fixed interval.
pub const MAX_RTR_SOLICITATIONS: u32 = 3;
/// RFC 7559 2: ceiling of the backoff while no router answers.
pub const MAX_RTR_SOLICITATION_INTERVAL: Duration = Duration::from_secs(3600);
/// RFC 7217 5: DAD-triggered regenerations before giving up on a prefix.
pub const IDGEN_RETRIES: u8 = 3;

/// Routers kept; more are refused and counted.
pub const MAX_ROUTERS: usize = 4;
/// SLAAC prefixes (one address each) kept.
pub const MAX_SLAAC_PREFIXES: usize = 8;
/// RDNSS servers kept.
pub const MAX_DNS_SERVERS: usize = 8;
/// DNSSL domains kept.
pub const MAX_SEARCH_DOMAINS: usize = 8;
/// Undrained events kept.
const MAX_PENDING_EVENTS: usize = 256;

/// RA hop limit proving on-link origin (RFC 4861 6.1.2).
const ND_HOP_LIMIT: u8 = 255;
/// RFC 4862 5.5.3 e.
const TWO_HOURS: Duration = Duration::from_secs(2 * 3600);
/// Prefix length SLAAC on Ethernet needs (RFC 4862 5.5.3 d, RFC 2464 4).
const SLAAC_PREFIX_LEN: u8 = 64;
/// IPv6 minimum MTU (RFC 8200 5) and largest MTU the option can sensibly carry.
const MIN_LINK_MTU: u32 = 1280;
const MAX_LINK_MTU: u32 = 65535;

/// How interface identifiers of SLAAC addresses are made.
#[derive(Clone, PartialEq, Eq)]
pub enum IidMode {
    /// Modified EUI-64 of the interface MAC (RFC 4291 appendix A).
    Eui64,
    /// RFC 7217 stable, semantically opaque identifiers with SHA-256 as F.
    StablePrivacy { secret: [u8; 32] },
}

// The secret must never reach a log line.
impl fmt::Debug for IidMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IidMode::Eui64 => f.write_str("Eui64"),
            IidMode::StablePrivacy { .. } => f.write_str("StablePrivacy { secret: <redacted> }"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlaacConfig {
    /// MAC of the WAN interface: EUI-64 source and the RS's SLLA option.
    pub mac: [u8; 6],
    /// Interface name: RFC 7217's Net_Iface.
    pub ifname: String,
    pub iid: IidMode,
    /// Form SLAAC addresses from autonomous prefixes.
    pub autoconf: bool,
}

/// A router learned from its advertisements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouterInfo {
    /// Link-local source address of its RAs.
    pub addr: Ipv6Addr,
    /// From the last RA that carried a source link-layer address option.
    pub mac: Option<[u8; 6]>,
    /// Router lifetime of the last RA.
    pub lifetime: Duration,
    /// Last RA arrival + `lifetime`.
    pub expires_at: Instant,
    pub last_ra: Instant,
    /// M and O flags of its last RA.
    pub managed: bool,
    pub other: bool,
}

/// An address formed by SLAAC. The caller runs DAD on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlaacAddress {
    pub addr: Ipv6Addr,
    pub prefix_len: u8,
    /// None = infinite.
    pub preferred_until: Option<Instant>,
    /// None = infinite.
    pub valid_until: Option<Instant>,
}

impl SlaacAddress {
    /// True once the preferred lifetime is over (RFC 4862 5.5.4): still
    /// valid, but not to be chosen for new connections.
    pub fn deprecated(&self, now: Instant) -> bool {
        self.preferred_until.is_some_and(|t| now >= t)
    }
}

/// Why an RA was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaDrop {
    /// IPv6 hop limit was not 255: forwarded from off-link.
    HopLimit(u8),
    /// Source address was not link-local.
    NotLinkLocal(Ipv6Addr),
    Malformed(ra::Error),
}

impl fmt::Display for RaDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaDrop::HopLimit(h) => write!(f, "hop limit {h} is not 255"),
            RaDrop::NotLinkLocal(a) => write!(f, "source {a} is not link-local"),
            RaDrop::Malformed(e) => write!(f, "malformed: {e}"),
        }
    }
}

impl std::error::Error for RaDrop {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    RouterAdded(RouterInfo),
    /// Lifetime ran out without a refreshing RA.
    RouterExpired(Ipv6Addr),
    /// The router advertised lifetime 0.
    RouterRemoved(Ipv6Addr),
    /// A new tentative address: run DAD on it.
    AddressAdded(SlaacAddress),
    /// Valid lifetime over, or given up after DAD failures.
    AddressRemoved(Ipv6Addr),
    /// M/O flags, on the first RA and whenever they change.
    Flags {
        managed: bool,
        other: bool,
    },
    MtuChanged(u32),
    /// The live RDNSS or DNSSL set changed.
    DnsChanged,
}

/// One autonomous /64 prefix and the address formed from it.
#[derive(Clone, Debug)]
struct SlaacPrefix {
    prefix: [u8; 8],
    /// None once DAD failures made us give up; the entry then only
    /// remembers the prefix so later RAs do not restart the cycle.
    addr: Option<Ipv6Addr>,
    /// RFC 7217 DAD_Counter the current address was generated with.
    dad_counter: u8,
    dad_failures: u8,
    preferred_until: Option<Instant>,
    valid_until: Option<Instant>,
    /// Deprecation already logged for the current preferred lifetime.
    deprecated_seen: bool,
}

impl SlaacPrefix {
    fn prefix_addr(&self) -> Ipv6Addr {
        let mut octets = [0u8; 16];
        octets[..8].copy_from_slice(&self.prefix);
        Ipv6Addr::from(octets)
    }

    fn address(&self) -> Option<SlaacAddress> {
        Some(SlaacAddress {
            addr: self.addr?,
            prefix_len: SLAAC_PREFIX_LEN,
            preferred_until: self.preferred_until,
            valid_until: self.valid_until,
        })
    }
}

/// A value learned from RDNSS or DNSSL with its expiry (None = infinite).
#[derive(Clone, Debug)]
struct Expiring<T> {
    value: T,
    expires: Option<Instant>,
}

fn is_live<T>(entry: &Expiring<T>, now: Instant) -> bool {
    match entry.expires {
        Some(t) => now < t,
        None => true,
    }
}

/// Router solicitation progress (RFC 4861 6.3.7, RFC 7559).
#[derive(Clone, Copy, Debug)]
struct Solicit {
    next_at: Instant,
    sent: u32,
    /// Interval used after the last RS, the RFC 3315 "RTprev".
    interval: Duration,
}

/// SplitMix64: small, seedable, good enough for timer jitter.
#[derive(Clone, Debug)]
struct Jitter(u64);

impl Jitter {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-ish duration in `0..=max`.
    fn up_to(&mut self, max: Duration) -> Duration {
        let max_ns = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX - 1);
        Duration::from_nanos(self.next_u64() % (max_ns + 1))
    }

    /// `base` plus a uniform offset in -10%..=+10% of `spread`
    /// (RFC 3315 14's `RAND * RT`).
    fn around(&mut self, base: Duration, spread: Duration) -> Duration {
        let tenth = spread / 10;
        base.saturating_sub(tenth) + self.up_to(tenth * 2)
    }
}

/// The WAN's router discovery and SLAAC engine. See the module docs.
#[derive(Debug)]
pub struct WanRa {
    cfg: SlaacConfig,
    jitter: Jitter,
    started: bool,
    solicit: Option<Solicit>,
    /// Insertion order: the first is the default router.
    routers: Vec<RouterInfo>,
    /// The router that became default on an empty table, remembered after
    /// it went (lifetime 0, expiry). An RA flood from made-up routers fills
    /// the table while it is away; when it comes back it goes first again,
    /// displacing one of them if the table is full, instead of being
    /// refused while they hold the default route.
    known_router: Option<Ipv6Addr>,
    prefixes: Vec<SlaacPrefix>,
    dns_servers: ExpiringSet<Ipv6Addr>,
    search_domains: ExpiringSet<String>,
    mtu: Option<u32>,
    /// The last nonzero Cur Hop Limit (RFC 4861 6.3.4).
    cur_hop_limit: Option<u8>,
    flags: Option<(bool, bool)>,
    last_ra: Option<Instant>,
    events: Vec<Event>,
    counters: Counters,
}

impl WanRa {
    /// `seed` drives the RS delay and backoff jitter.
    pub fn new(cfg: SlaacConfig, seed: u64) -> Self {
        WanRa {
            cfg,
            jitter: Jitter(seed),
            started: false,
            solicit: None,
            routers: Vec::new(),
            known_router: None,
            prefixes: Vec::new(),
            dns_servers: ExpiringSet::new(MAX_DNS_SERVERS),
            search_domains: ExpiringSet::new(MAX_SEARCH_DOMAINS),
            mtu: None,
            cur_hop_limit: None,
            flags: None,
            last_ra: None,
            events: Vec::new(),
            counters: Counters::default(),
        }
    }

    pub fn config(&self) -> &SlaacConfig {
        &self.cfg
    }

    /// A reload changed how addresses are made (`iid`, `autoconf`).
    /// Routers, RDNSS/DNSSL and the MTU do not depend on it and stay; the
    /// addresses are formed anew from the known prefixes (and go through
    /// DAD, as any new address), or dropped when autoconf is now off.
    pub fn set_config(&mut self, now: Instant, cfg: SlaacConfig) {
        let was_on = self.cfg.autoconf;
        self.cfg = cfg;
        for entry in std::mem::take(&mut self.prefixes) {
            if let Some(old) = entry.addr {
                self.push_event(Event::AddressRemoved(old));
            }
            if !self.cfg.autoconf {
                continue;
            }
            let mut entry = SlaacPrefix {
                addr: None,
                dad_counter: 0,
                dad_failures: 0,
                ..entry
            };
            if let Some((iid, counter)) = self.interface_id(entry.prefix, 0) {
                entry.dad_counter = counter;
                entry.addr = Some(slaac_address(entry.prefix, iid));
            }
            if let Some(a) = entry.address() {
                self.counters.address_added += 1;
                log::info!("wan: SLAAC address {} (new interface identifier)", a.addr);
                self.push_event(Event::AddressAdded(a));
            }
            self.prefixes.push(entry);
        }
        if self.cfg.autoconf && !was_on && self.started {
            // No prefix was kept while autoconf was off: ask for an RA
            // rather than wait up to MaxRtrAdvInterval for one.
            self.begin_soliciting(now);
        }
    }

    /// Our link-local address passed DAD: start soliciting unless a router
    /// is already known.
    pub fn start(&mut self, now: Instant) {
        self.started = true;
        if self.routers.is_empty() {
            self.begin_soliciting(now);
        }
    }

    /// The WAN link lost its carrier: routers learned on it can no longer
    /// be trusted (RFC 7084 G-5 wants the LAN told at once, not when their
    /// lifetimes end). Addresses are kept: their lifetimes still hold.
    pub fn link_down(&mut self, _now: Instant) {
        for r in self.routers.drain(..) {
            self.counters.router_link_down += 1;
            log::warn!("wan: link down, router {} forgotten", r.addr);
            self.events.push(Event::RouterRemoved(r.addr));
        }
        self.solicit = None;
    }

    /// The carrier is back: solicit at once (RFC 4861 6.3.7 allows an RS
    /// whenever the link may have changed).
    pub fn link_up(&mut self, now: Instant) {
        if self.started && self.routers.is_empty() {
            self.begin_soliciting(now);
        }
    }

    /// Validates (RFC 4861 6.1.2) and digests one RA. `icmp` starts at the
    /// ICMPv6 type byte; its checksum must already have been verified.
    pub fn handle_ra(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        hop_limit: u8,
        icmp: &[u8],
    ) -> Result<(), RaDrop> {
        self.counters.rx_ra += 1;
        if hop_limit != ND_HOP_LIMIT {
            self.counters.drop_hop_limit += 1;
            log::debug!("wan: dropped RA from {src}: hop limit {hop_limit}");
            return Err(RaDrop::HopLimit(hop_limit));
        }
        if !is_link_local(src) {
            self.counters.drop_not_link_local += 1;
            log::debug!("wan: dropped RA from non-link-local {src}");
            return Err(RaDrop::NotLinkLocal(src));
        }
        let parsed = RouterAdvert::new_checked(icmp).and_then(|p| RaRepr::parse(&p));
        let (repr, skipped) = match parsed {
            Ok(ok) => ok,
            Err(e) => {
                self.counters.drop_malformed += 1;
                log::debug!("wan: dropped RA from {src}: {e}");
                return Err(RaDrop::Malformed(e));
            }
        };
        for e in &skipped {
            self.count_skipped_option(*e);
            log::debug!("wan: RA from {src}: ignored an option: {e}");
        }

        self.last_ra = Some(now);
        if self.flags != Some((repr.managed, repr.other)) {
            self.flags = Some((repr.managed, repr.other));
            self.push_event(Event::Flags {
                managed: repr.managed,
                other: repr.other,
            });
        }
        self.update_router(now, src, &repr);
        if let Some(mtu) = repr.mtu {
            self.update_mtu(src, mtu);
        }
        // 0 means "unspecified by this router" (RFC 4861 4.2).
        if repr.cur_hop_limit != 0 {
            self.cur_hop_limit = Some(repr.cur_hop_limit);
        }
        for p in &repr.prefixes {
            self.update_prefix(now, p);
        }
        let mut dns_changed = false;
        for r in &repr.rdnss {
            for &server in &r.servers {
                dns_changed |= self.update_dns_server(now, server, r.lifetime);
            }
        }
        for d in &repr.dnssl {
            for domain in &d.domains {
                dns_changed |= self.update_search_domain(now, domain, d.lifetime);
            }
        }
        if dns_changed {
            self.push_event(Event::DnsChanged);
        }
        Ok(())
    }

    /// Emits due Router Solicitations into `out` (ICMPv6 messages, checksum
    /// zero, to send from our link-local address to ff02::2 with hop limit
    /// 255), runs expiries, and returns the next deadline.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) -> Option<Instant> {
        self.expire_routers(now);
        self.expire_prefixes(now);
        self.expire_dns(now);
        self.send_due_solicitation(now, out);
        self.next_deadline()
    }

    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The router to route through: the longest-known one still live as
    /// of the last `poll` (which removes expired routers).
    pub fn default_router(&self) -> Option<RouterInfo> {
        self.routers.first().copied()
    }

    pub fn routers(&self) -> Vec<RouterInfo> {
        self.routers.clone()
    }

    /// Current SLAAC addresses, deprecated ones included.
    pub fn addresses(&self) -> Vec<SlaacAddress> {
        self.prefixes
            .iter()
            .filter_map(SlaacPrefix::address)
            .collect()
    }

    /// The caller's DAD found `addr` in use by another node.
    /// Stable-privacy identifiers move to the next DAD_Counter (at most
    /// [`IDGEN_RETRIES`] times); EUI-64 cannot change, so its prefix gets
    /// no address.
    pub fn dad_failed(&mut self, now: Instant, addr: Ipv6Addr) {
        let Some(idx) = self.prefixes.iter().position(|p| p.addr == Some(addr)) else {
            self.counters.dad_unknown += 1;
            log::debug!("wan: DAD failure reported for {addr}, which is not ours");
            return;
        };
        self.counters.dad_failed += 1;
        self.push_event(Event::AddressRemoved(addr));
        let prefix = self.prefixes[idx].prefix;
        let expired = self.prefixes[idx].valid_until.is_some_and(|t| t <= now);
        self.prefixes[idx].dad_failures = self.prefixes[idx].dad_failures.saturating_add(1);
        let failures = self.prefixes[idx].dad_failures;
        let next = match self.cfg.iid {
            IidMode::Eui64 => None,
            IidMode::StablePrivacy { .. } if failures > IDGEN_RETRIES || expired => None,
            IidMode::StablePrivacy { .. } => self.prefixes[idx]
                .dad_counter
                .checked_add(1)
                .and_then(|c| self.interface_id(prefix, c)),
        };
        let prefix_addr = self.prefixes[idx].prefix_addr();
        match next {
            Some((iid, counter)) => {
                let new_addr = slaac_address(prefix, iid);
                let entry = &mut self.prefixes[idx];
                entry.dad_counter = counter;
                entry.addr = Some(new_addr);
                let added = entry.address();
                self.counters.dad_regenerated += 1;
                self.counters.address_added += 1;
                log::warn!("wan: {addr} is a duplicate; trying {new_addr} (DAD_Counter {counter})");
                if let Some(a) = added {
                    self.push_event(Event::AddressAdded(a));
                }
            }
            None => {
                self.prefixes[idx].addr = None;
                self.counters.dad_gave_up += 1;
                log::warn!(
                    "wan: {addr} is a duplicate; no SLAAC address on {prefix_addr}/64 after {failures} DAD failure(s)"
                );
            }
        }
    }

    /// Live RDNSS servers, in the order they were learned.
    pub fn dns_servers(&self, now: Instant) -> Vec<Ipv6Addr> {
        self.dns_servers.live(now).copied().collect()
    }

    /// Live DNSSL domains, in the order they were learned.
    pub fn domains(&self, now: Instant) -> Vec<String> {
        self.search_domains.live(now).cloned().collect()
    }

    /// The last MTU option within 1280..=65535.
    pub fn mtu(&self) -> Option<u32> {
        self.mtu
    }

    /// The hop limit the routers ask for, from the last RA that set one.
    pub fn cur_hop_limit(&self) -> Option<u8> {
        self.cur_hop_limit
    }

    /// M flag of the last RA.
    pub fn managed(&self) -> bool {
        self.flags.is_some_and(|(m, _)| m)
    }

    /// O flag of the last RA.
    pub fn other(&self) -> bool {
        self.flags.is_some_and(|(_, o)| o)
    }

    /// Arrival of the last accepted RA.
    pub fn last_ra(&self) -> Option<Instant> {
        self.last_ra
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() >= MAX_PENDING_EVENTS {
            self.counters.events_dropped += 1;
        } else {
            self.events.push(event);
        }
    }

    fn count_skipped_option(&mut self, e: OptionError) {
        let c = &mut self.counters;
        match e {
            OptionError::SourceLladdrBadLength => c.slla_ignored += 1,
            OptionError::PrefixBadLength => c.prefix_option_bad_length += 1,
            OptionError::MtuBadLength => c.mtu_ignored += 1,
            OptionError::RdnssBadLength => c.rdnss_ignored += 1,
            OptionError::DnsslBadLength | OptionError::DnsslBadName => c.dnssl_ignored += 1,
            OptionError::TooManyPrefixes
            | OptionError::TooManyRdnssServers
            | OptionError::TooManyDomains => c.option_limit += 1,
        }
    }

    fn begin_soliciting(&mut self, now: Instant) {
        let delay = self.jitter.up_to(MAX_RTR_SOLICITATION_DELAY);
        self.solicit = Some(Solicit {
            next_at: now + delay,
            sent: 0,
            interval: RTR_SOLICITATION_INTERVAL,
        });
    }

    fn send_due_solicitation(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        let Some(mut s) = self.solicit else { return };
        if now < s.next_at {
            return;
        }
        out.push(ra::router_solicit(Some(self.cfg.mac)));
        self.counters.tx_rs += 1;
        s.sent += 1;
        if s.sent >= MAX_RTR_SOLICITATIONS {
            // RFC 7559 2 / RFC 3315 14: RT = 2*RTprev + RAND*RTprev, and
            // MRT + RAND*MRT once past the ceiling.
            let doubled = s.interval * 2;
            s.interval = if doubled > MAX_RTR_SOLICITATION_INTERVAL {
                self.jitter
                    .around(MAX_RTR_SOLICITATION_INTERVAL, MAX_RTR_SOLICITATION_INTERVAL)
            } else {
                self.jitter.around(doubled, s.interval)
            };
            if s.sent == MAX_RTR_SOLICITATIONS {
                log::info!(
                    "wan: no router answered {MAX_RTR_SOLICITATIONS} solicitations; backing off"
                );
            }
        }
        // Keep the cadence, but never burst after a late poll.
        let next = s.next_at + s.interval;
        s.next_at = if next > now { next } else { now + s.interval };
        self.solicit = Some(s);
    }

    fn update_router(&mut self, now: Instant, src: Ipv6Addr, repr: &RaRepr) {
        let idx = self.routers.iter().position(|r| r.addr == src);
        if repr.router_lifetime == 0 {
            if let Some(i) = idx {
                let was_default = i == 0;
                self.routers.remove(i);
                self.counters.router_removed += 1;
                log::info!(
                    "wan: {} {src} withdrew (router lifetime 0)",
                    router_role(was_default)
                );
                self.push_event(Event::RouterRemoved(src));
                self.resolicit_if_routerless(now);
            }
            return;
        }
        let lifetime = Duration::from_secs(repr.router_lifetime.into());
        // u16 seconds cannot overflow an Instant; the fallback is unreachable.
        let expires_at = now.checked_add(lifetime).unwrap_or(now);
        // RFC 4861 6.3.7: a non-zero router lifetime ends soliciting.
        self.solicit = None;
        if let Some(i) = idx {
            let r = &mut self.routers[i];
            r.lifetime = lifetime;
            r.expires_at = expires_at;
            r.last_ra = now;
            r.managed = repr.managed;
            r.other = repr.other;
            if repr.source_lladdr.is_some() {
                r.mac = repr.source_lladdr;
            }
            return;
        }
        let known = self.known_router == Some(src);
        if self.routers.len() >= MAX_ROUTERS {
            self.counters.table_full += 1;
            if !known {
                log::debug!("wan: router table full, ignoring router {src}");
                return;
            }
            // The newest entry: the one that has had the least chance to
            // prove itself by refreshing.
            if let Some(gone) = self.routers.pop() {
                self.counters.router_displaced += 1;
                log::info!("wan: router {} dropped to let {src} back in", gone.addr);
                self.push_event(Event::RouterRemoved(gone.addr));
            }
        }
        let info = RouterInfo {
            addr: src,
            mac: repr.source_lladdr,
            lifetime,
            expires_at,
            last_ra: now,
            managed: repr.managed,
            other: repr.other,
        };
        let is_default = self.routers.is_empty() || known;
        if self.routers.is_empty() {
            self.known_router = Some(src);
        }
        if known {
            self.routers.insert(0, info);
        } else {
            self.routers.push(info);
        }
        self.counters.router_added += 1;
        log::info!(
            "wan: {} {src} added (lifetime {} s, M={} O={})",
            router_role(is_default),
            repr.router_lifetime,
            u8::from(repr.managed),
            u8::from(repr.other)
        );
        self.push_event(Event::RouterAdded(info));
    }

    fn resolicit_if_routerless(&mut self, now: Instant) {
        if self.started && self.routers.is_empty() && self.solicit.is_none() {
            log::info!("wan: no router left; soliciting");
            self.begin_soliciting(now);
        }
    }

    fn update_mtu(&mut self, src: Ipv6Addr, mtu: u32) {
        if !(MIN_LINK_MTU..=MAX_LINK_MTU).contains(&mtu) {
            self.counters.mtu_ignored += 1;
            log::debug!("wan: RA from {src}: ignored MTU {mtu}");
            return;
        }
        if self.mtu != Some(mtu) {
            log::info!("wan: link MTU {mtu} (RA from {src})");
            self.mtu = Some(mtu);
            self.push_event(Event::MtuChanged(mtu));
        }
    }

    /// RFC 4862 5.5.3 for one prefix information option.
    fn update_prefix(&mut self, now: Instant, p: &PrefixInfo) {
        if !self.cfg.autoconf || !p.autonomous {
            return;
        }
        if is_link_local(p.prefix) {
            self.counters.prefix_ignored_link_local += 1;
            return;
        }
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&p.prefix.octets()[..8]);
        if p.prefix.is_multicast() || prefix == [0; 8] {
            self.counters.prefix_ignored_scope += 1;
            return;
        }
        if p.preferred_lifetime > p.valid_lifetime {
            self.counters.prefix_ignored_lifetimes += 1;
            return;
        }
        if p.prefix_len != SLAAC_PREFIX_LEN {
            self.counters.prefix_ignored_len += 1;
            log::debug!(
                "wan: not autoconfiguring {}/{}: SLAAC needs a /64",
                p.prefix,
                p.prefix_len
            );
            return;
        }
        let preferred_until = lifetime_deadline(now, p.preferred_lifetime);
        if let Some(entry) = self.prefixes.iter_mut().find(|e| e.prefix == prefix) {
            entry.preferred_until = preferred_until;
            let preferred_again = match preferred_until {
                Some(t) => t > now,
                None => true,
            };
            if preferred_again {
                entry.deprecated_seen = false;
            }
            if !apply_two_hour_rule(now, entry, p.valid_lifetime) {
                self.counters.two_hour_rule += 1;
            }
            return;
        }
        if p.valid_lifetime == 0 {
            return;
        }
        if self.prefixes.len() >= MAX_SLAAC_PREFIXES {
            self.counters.table_full += 1;
            log::debug!("wan: SLAAC table full, ignoring {}/64", p.prefix);
            return;
        }
        let mut entry = SlaacPrefix {
            prefix,
            addr: None,
            dad_counter: 0,
            dad_failures: 0,
            preferred_until,
            valid_until: lifetime_deadline(now, p.valid_lifetime),
            deprecated_seen: false,
        };
        match self.interface_id(prefix, 0) {
            Some((iid, counter)) => {
                entry.dad_counter = counter;
                entry.addr = Some(slaac_address(prefix, iid));
            }
            None => {
                // Only reachable if 256 hashes in a row were reserved IIDs.
                self.counters.dad_gave_up += 1;
                log::warn!(
                    "wan: no usable interface identifier for {}/64",
                    entry.prefix_addr()
                );
            }
        }
        if let Some(a) = entry.address() {
            self.counters.address_added += 1;
            log::info!(
                "wan: SLAAC address {} from {}/64 (preferred {}, valid {})",
                a.addr,
                entry.prefix_addr(),
                describe_lifetime(p.preferred_lifetime),
                describe_lifetime(p.valid_lifetime)
            );
            self.push_event(Event::AddressAdded(a));
        }
        self.prefixes.push(entry);
    }

    /// The interface identifier for `prefix` from `dad_counter` on, skipping
    /// RFC 5453 reserved values; returns it with the counter used.
    fn interface_id(&self, prefix: [u8; 8], dad_counter: u8) -> Option<([u8; 8], u8)> {
        match &self.cfg.iid {
            IidMode::Eui64 => Some((eui64_iid(self.cfg.mac), dad_counter)),
            IidMode::StablePrivacy { secret } => (dad_counter..=u8::MAX)
                .map(|c| (stable_privacy_iid(prefix, &self.cfg.ifname, c, secret), c))
                .find(|(iid, _)| !is_reserved_iid(*iid)),
        }
    }

    /// Returns whether the set changed.
    fn update_dns_server(&mut self, now: Instant, server: Ipv6Addr, lifetime: u32) -> bool {
        if server.is_unspecified() || server.is_loopback() || server.is_multicast() {
            self.counters.rdnss_address_ignored += 1;
            return false;
        }
        let update = self.dns_servers.update(
            now,
            |s| *s == server,
            server,
            lifetime,
            &format_args!("DNS server {server}"),
        );
        self.count_set_update(update)
    }

    /// Returns whether the set changed.
    fn update_search_domain(&mut self, now: Instant, domain: &str, lifetime: u32) -> bool {
        let update = self.search_domains.update(
            now,
            |d| d.eq_ignore_ascii_case(domain),
            domain.to_string(),
            lifetime,
            &format_args!("search domain {domain}"),
        );
        self.count_set_update(update)
    }

    fn count_set_update(&mut self, update: SetUpdate) -> bool {
        match update {
            SetUpdate::Unchanged => false,
            SetUpdate::Changed => true,
            SetUpdate::RefusedFull => {
                self.counters.table_full += 1;
                false
            }
            SetUpdate::ReplacedFull => {
                self.counters.table_full += 1;
                true
            }
        }
    }

    fn expire_routers(&mut self, now: Instant) {
        let mut i = 0;
        let mut expired = 0;
        while i < self.routers.len() {
            let r = self.routers[i];
            if r.expires_at > now {
                i += 1;
                continue;
            }
            self.routers.remove(i);
            self.counters.router_expired += 1;
            let was_default = i == 0 && expired == 0;
            expired += 1;
            log::warn!(
                "wan: {} {} expired (lifetime {} s, last RA {} s ago)",
                router_role(was_default),
                r.addr,
                r.lifetime.as_secs(),
                now.saturating_duration_since(r.last_ra).as_secs()
            );
            self.push_event(Event::RouterExpired(r.addr));
        }
        if expired > 0 {
            self.resolicit_if_routerless(now);
        }
    }

    fn expire_prefixes(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.prefixes.len() {
            let p = &mut self.prefixes[i];
            if p.valid_until.is_some_and(|t| t <= now) {
                let p = self.prefixes.remove(i);
                match p.addr {
                    Some(addr) => {
                        self.counters.address_expired += 1;
                        log::info!(
                            "wan: SLAAC address {addr} expired (valid lifetime of {}/64 ended)",
                            p.prefix_addr()
                        );
                        self.push_event(Event::AddressRemoved(addr));
                    }
                    None => log::info!(
                        "wan: prefix {}/64 expired (had no address after DAD failures)",
                        p.prefix_addr()
                    ),
                }
                continue;
            }
            if !p.deprecated_seen && p.preferred_until.is_some_and(|t| t <= now) {
                p.deprecated_seen = true;
                if let Some(addr) = p.addr {
                    self.counters.address_deprecated += 1;
                    log::info!("wan: SLAAC address {addr} deprecated (preferred lifetime ended)");
                }
            }
            i += 1;
        }
    }

    fn expire_dns(&mut self, now: Instant) {
        let servers = self.dns_servers.expire(now, |server| {
            log::info!("wan: DNS server {server} expired (RDNSS lifetime ended)");
        });
        let domains = self.search_domains.expire(now, |domain| {
            log::info!("wan: search domain {domain} expired (DNSSL lifetime ended)");
        });
        self.counters.rdnss_expired += servers as u64;
        self.counters.dnssl_expired += domains as u64;
        if servers + domains > 0 {
            self.push_event(Event::DnsChanged);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let solicit = self.solicit.map(|s| s.next_at);
        let routers = self.routers.iter().map(|r| Some(r.expires_at));
        let prefixes = self.prefixes.iter().flat_map(|p| {
            let deprecation = if p.deprecated_seen {
                None
            } else {
                p.preferred_until
            };
            [deprecation, p.valid_until]
        });
        let dns = self.dns_servers.entries.iter().map(|e| e.expires);
        let domains = self.search_domains.entries.iter().map(|e| e.expires);
        std::iter::once(solicit)
            .chain(routers)
            .chain(prefixes)
            .chain(dns)
            .chain(domains)
            .flatten()
            .min()
    }
}

/// Outcome of [`ExpiringSet::update`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SetUpdate {
    /// Refreshed, or a withdrawal of an unknown value.
    Unchanged,
    Changed,
    /// Full, and the new value would not outlive any entry.
    RefusedFull,
    /// Full; the entry expiring soonest gave way to the new value.
    ReplacedFull,
}

/// Bounded RDNSS or DNSSL store (RFC 8106 5.3.1), in learning order.
#[derive(Clone, Debug)]
struct ExpiringSet<T> {
    entries: Vec<Expiring<T>>,
    capacity: usize,
}

impl<T: fmt::Display> ExpiringSet<T> {
    fn new(capacity: usize) -> Self {
        ExpiringSet {
            entries: Vec::new(),
            capacity,
        }
    }

    fn live(&self, now: Instant) -> impl Iterator<Item = &T> + '_ {
        self.entries
            .iter()
            .filter(move |e| is_live(e, now))
            .map(|e| &e.value)
    }

    /// Adds, refreshes or (lifetime 0) removes one value.
    fn update(
        &mut self,
        now: Instant,
        matches: impl Fn(&T) -> bool,
        value: T,
        lifetime: u32,
        what: &dyn fmt::Display,
    ) -> SetUpdate {
        let expires = lifetime_deadline(now, lifetime);
        let idx = self.entries.iter().position(|e| matches(&e.value));
        if lifetime == 0 {
            return match idx {
                Some(i) => {
                    self.entries.remove(i);
                    log::info!("wan: {what} withdrawn (lifetime 0)");
                    SetUpdate::Changed
                }
                None => SetUpdate::Unchanged,
            };
        }
        if let Some(i) = idx {
            self.entries[i].expires = expires;
            return SetUpdate::Unchanged;
        }
        let mut outcome = SetUpdate::Changed;
        if self.entries.len() >= self.capacity {
            // Infinite (None) entries sort last.
            let soonest = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.expires.map_or((1, now), |t| (0, t)))
                .map(|(i, e)| (i, e.expires));
            let Some((victim, victim_expires)) = soonest else {
                return SetUpdate::RefusedFull;
            };
            let new_outlives = match (expires, victim_expires) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(new), Some(old)) => new > old,
            };
            if !new_outlives {
                log::debug!("wan: {what} not kept: table full");
                return SetUpdate::RefusedFull;
            }
            let old = self.entries.remove(victim);
            log::info!("wan: {} dropped to make room (table full)", old.value);
            outcome = SetUpdate::ReplacedFull;
        }
        log::info!(
            "wan: {what} learned (lifetime {})",
            describe_lifetime(lifetime)
        );
        self.entries.push(Expiring { value, expires });
        outcome
    }

    /// Removes expired entries, calling `on_expired` for each; returns how
    /// many went.
    fn expire(&mut self, now: Instant, mut on_expired: impl FnMut(&T)) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| {
            let live = is_live(e, now);
            if !live {
                on_expired(&e.value);
            }
            live
        });
        before - self.entries.len()
    }
}

/// RFC 4862 5.5.3 e for the valid lifetime. Returns false when the rule
/// held the advertised value back.
fn apply_two_hour_rule(now: Instant, entry: &mut SlaacPrefix, advertised: u32) -> bool {
    let advertised_until = lifetime_deadline(now, advertised);
    // None = infinite for both.
    let remaining = entry.valid_until.map(|t| t.saturating_duration_since(now));
    let advertised_dur =
        (advertised != INFINITE_LIFETIME).then(|| Duration::from_secs(advertised.into()));
    let take_advertised = match (advertised_dur, remaining) {
        (None, _) => true,
        (Some(adv), _) if adv > TWO_HOURS => true,
        (Some(adv), Some(rem)) => adv > rem,
        (Some(_), None) => false,
    };
    if take_advertised {
        entry.valid_until = advertised_until;
        return true;
    }
    let more_than_two_hours_left = match remaining {
        Some(rem) => rem > TWO_HOURS,
        None => true,
    };
    if more_than_two_hours_left {
        entry.valid_until = now.checked_add(TWO_HOURS);
    }
    false
}

/// Expiry of a lifetime in seconds; None = infinite (also if `now + secs`
/// would not fit an Instant).
fn lifetime_deadline(now: Instant, secs: u32) -> Option<Instant> {
    if secs == INFINITE_LIFETIME {
        return None;
    }
    now.checked_add(Duration::from_secs(secs.into()))
}

fn describe_lifetime(secs: u32) -> String {
    if secs == INFINITE_LIFETIME {
        "infinite".to_string()
    } else {
        format!("{secs} s")
    }
}

fn router_role(is_default: bool) -> &'static str {
    if is_default {
        "default router"
    } else {
        "router"
    }
}

/// fe80::/10 (Ipv6Addr::is_unicast_link_local needs Rust 1.84).
fn is_link_local(addr: Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

fn slaac_address(prefix: [u8; 8], iid: [u8; 8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets[..8].copy_from_slice(&prefix);
    octets[8..].copy_from_slice(&iid);
    Ipv6Addr::from(octets)
}

/// Modified EUI-64 (RFC 4291 appendix A): ff:fe in the middle, U/L bit
/// inverted.
pub fn eui64_iid(mac: [u8; 6]) -> [u8; 8] {
    [
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ]
}

/// RFC 7217 5: RID = F(Prefix, Net_Iface, Network_ID, DAD_Counter,
/// secret_key) with F = SHA-256 over the concatenation of the 8 prefix
/// octets, the interface name's bytes, the (empty) Network_ID, the
/// DAD_Counter as one octet and the 32-octet secret; the IID is the first
/// 64 bits of the digest.
pub fn stable_privacy_iid(
    prefix: [u8; 8],
    ifname: &str,
    dad_counter: u8,
    secret: &[u8; 32],
) -> [u8; 8] {
    let mut hasher = Sha256::new();
    hasher.update(prefix);
    hasher.update(ifname.as_bytes());
    // Network_ID: none.
    hasher.update([dad_counter]);
    hasher.update(secret);
    let digest = hasher.finalize();
    let mut iid = [0u8; 8];
    iid.copy_from_slice(&digest[..8]);
    iid
}

/// Reserved interface identifiers (RFC 5453 3): the subnet-router anycast
/// IID, the reserved subnet anycast range and the proxy mobile IPv6 /
/// IANA-reserved 0200:5eff:fe00:0000-0200:5eff:feff:ffff range.
pub fn is_reserved_iid(iid: [u8; 8]) -> bool {
    let value = u64::from_be_bytes(iid);
    value == 0
        || (0xfdff_ffff_ffff_ff80..=0xfdff_ffff_ffff_ffff).contains(&value)
        || (0x0200_5eff_fe00_0000..=0x0200_5eff_feff_ffff).contains(&value)
}
