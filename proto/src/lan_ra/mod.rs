//! Router Advertisements on the LAN, sans-IO.
//!
//! [`LanRa`] is the router side of IPv6 router discovery on the LAN link
//! (RFC 4861 6.2) for a home router (RFC 7084, RFC 9096): it advertises the
//! LAN /64 taken from the delegated prefix, the DNS servers and search
//! domains (RFC 8106), answers Router Solicitations, deprecates prefixes
//! that went away, and notices other routers' advertisements.
//!
//! It owns no socket or clock: the caller feeds `(now, ...)` and sends
//! what [`LanRa::poll`] returns (ICMPv6 messages from the type byte,
//! checksum zero) from the LAN link-local address to ff02::1 with hop limit
//! 255, at the latest by the deadline `poll` returns. Messages are encoded
//! with [`crate::slaac::ra`], the codec the WAN side parses with.
//!
//! # Schedule (RFC 4861 6.2.4, 6.2.6)
//!
//! * [`LanRa::start`] (once the link-local address passed DAD) sends an RA
//!   at once; the first [`MAX_INITIAL_RTR_ADVERTISEMENTS`] RAs are 3 to 4 s
//!   apart (RFC 4861 allows up to [`MAX_INITIAL_RTR_ADVERT_INTERVAL`]),
//!   later ones uniformly in `[MinRtrAdvInterval, MaxRtrAdvInterval]`,
//!   MinRtrAdvInterval being 0.33 x MaxRtrAdvInterval but at least 3 s.
//!   Every RA sent restarts that timer.
//! * A change of what is advertised (prefix changed or gone, default router
//!   role lost or regained, DNS servers or search domains changed) sends an
//!   RA at once, or [`MIN_DELAY_BETWEEN_RAS`] after the previous one if that
//!   is later, and restarts the fast initial series so that hosts which
//!   missed one RA still learn of the change within seconds.
//! * A valid Router Solicitation is answered by a multicast RA after a
//!   random delay of up to [`MAX_RA_DELAY_TIME`], unless an RA is already
//!   due by then. No two RAs are ever closer than `MIN_DELAY_BETWEEN_RAS`
//!   (save the final ones), so a flood of RSs yields at most one RA every
//!   3 s.
//! * [`LanRa::shutdown`] returns [`MAX_FINAL_RTR_ADVERTISEMENTS`] RAs with
//!   router lifetime 0 (RFC 4861 6.2.5) and DNS lifetimes 0, as radvd does;
//!   the prefixes keep their lifetimes so that hosts keep their addresses
//!   across a restart (RFC 9096).
//!
//! # Contents and lifetimes
//!
//! Current hop limit 64, M and O from the configuration, reachable time and
//! retransmission timer unspecified, source link-layer address, MTU. The
//! router lifetime is the configured one (default 3 x MaxRtrAdvInterval,
//! at most 9000 s), but 0 while the WAN has no default router or the LAN
//! has no prefix (RFC 7084 G-4, G-5): hosts then still hear the RA and
//! learn that this router is not a default router.
//!
//! The current /64 goes out with L and A set, preferred lifetime
//! min(remaining delegated preferred lifetime, 2700 s) and valid lifetime
//! min(remaining delegated valid lifetime, 5400 s) (RFC 9096 3.5:
//! ND_PREFERRED_LIMIT, ND_VALID_LIMIT), computed at send time and never
//! above what the lease has left. The DNS servers (RDNSS) and search
//! domains (DNSSL) carry a lifetime of 3 x MaxRtrAdvInterval (RFC 8106
//! 5.1); ones that are no longer announced go out with lifetime 0 in the
//! next three RAs so hosts drop them at once.
//!
//! # Renumbering (RFC 9096)
//!
//! When the current prefix changes or goes away, the old one becomes
//! *stale*: it is advertised with preferred lifetime 0 and a valid lifetime
//! counting down from min(what the lease had left, 5400 s) to 0, then
//! dropped. [`LanRa::stale_prefixes`] lists them for the dataplane, which
//! answers traffic from them with ICMPv6 destination unreachable code 5.
//! [`LanRa::remembered`] is what the caller persists across restarts and
//! hands back to [`LanRa::restore_stale`]; a remembered prefix is held
//! silently until the first current prefix is known, then either forgotten
//! (the same prefix came back) or deprecated like any stale one.
//!
//! Every received byte is untrusted: rejected input counts in a named
//! [`Counters`] field, every table is bounded, nothing panics.

mod counters;
#[cfg(test)]
mod on_link_tests;
#[cfg(test)]
mod tests;

use crate::jitter::Jitter;
use std::fmt;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

pub use counters::Counters;

use crate::slaac::ra::{self, Dnssl, PrefixInfo, RaRepr, RouterAdvert};

/// RFC 4861 10: RAs sent at the short initial interval.
pub const MAX_INITIAL_RTR_ADVERTISEMENTS: u32 = 3;
/// RFC 4861 10: ceiling of the interval after each initial RA.
pub const MAX_INITIAL_RTR_ADVERT_INTERVAL: Duration = Duration::from_secs(16);
/// The interval after each initial RA is drawn from this range: short, yet
/// never below [`MIN_DELAY_BETWEEN_RAS`].
pub const INITIAL_ADVERT_INTERVAL_MIN: Duration = Duration::from_secs(3);
pub const INITIAL_ADVERT_INTERVAL_MAX: Duration = Duration::from_secs(4);
/// RFC 4861 10: RAs with router lifetime 0 sent when stopping.
pub const MAX_FINAL_RTR_ADVERTISEMENTS: usize = 3;
/// RFC 4861 10: minimum spacing of multicast RAs.
pub const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);
/// RFC 4861 10: upper bound of the random delay before answering an RS.
pub const MAX_RA_DELAY_TIME: Duration = Duration::from_millis(500);
/// RFC 4861 6.2.1: bounds of MaxRtrAdvInterval.
pub const MAX_RTR_ADV_INTERVAL_MIN: Duration = Duration::from_secs(4);
pub const MAX_RTR_ADV_INTERVAL_MAX: Duration = Duration::from_secs(1800);
/// RFC 4861 6.2.1: MinRtrAdvInterval is at least 3 s.
pub const MIN_RTR_ADV_INTERVAL_FLOOR: Duration = Duration::from_secs(3);
/// RFC 4861 6.2.1: AdvDefaultLifetime is at most 9000 s.
pub const MAX_ROUTER_LIFETIME: Duration = Duration::from_secs(9000);
/// RFC 9096 3.5: ND_PREFERRED_LIMIT and ND_VALID_LIMIT, in seconds.
pub const ND_PREFERRED_LIMIT: u32 = 2700;
pub const ND_VALID_LIMIT: u32 = 5400;
/// Stale prefixes advertised (and remembered prefixes held); the oldest is
/// dropped beyond this. Keeps every RA well under the IPv6 minimum MTU.
pub const MAX_STALE_PREFIXES: usize = 8;
/// DNS servers and search domains per RA, including withdrawn ones: the
/// limits our own parser (and so the WAN side) keeps.
pub const MAX_RDNSS_SERVERS: usize = ra::MAX_RDNSS_SERVERS;
pub const MAX_SEARCH_DOMAINS: usize = ra::MAX_DOMAINS;
/// Encoded octets of all search domains of one RA. With the other bounds
/// an RA stays below 1280 - 40 octets: no fragmentation, ever.
pub const DNSSL_NAME_BUDGET: usize = 512;
/// At most one rogue-RA log line per this interval.
pub const ROGUE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// AdvCurHopLimit: the usual Linux default.
const CUR_HOP_LIMIT: u8 = 64;
/// Hop limit proving on-link origin (RFC 4861 6.1.1).
const ND_HOP_LIMIT: u8 = 255;
/// RAs that carry withdrawn DNS servers/domains with lifetime 0.
const WITHDRAWAL_RAS: u8 = 3;
/// A valid MTU option value (RFC 8200 5; the option is a 32-bit field but
/// an IPv6 packet is at most 65535 octets without jumbograms).
const MIN_LINK_MTU: u32 = 1280;
const MAX_LINK_MTU: u32 = 65535;
/// Prefixes listed in one rogue-RA log line.
const ROGUE_LOG_PREFIXES: usize = 4;

/// The router lifetime used when the configuration does not set one:
/// 3 x MaxRtrAdvInterval (RFC 4861 6.2.1), at most 9000 s.
pub fn default_router_lifetime(max_interval: Duration) -> Duration {
    max_interval.saturating_mul(3).min(MAX_ROUTER_LIFETIME)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LanRaConfig {
    /// LAN MAC, for the source link-layer address option.
    pub mac: [u8; 6],
    /// LAN MTU for the MTU option; outside 1280..=65535 the option is left
    /// out.
    pub mtu: u32,
    /// MaxRtrAdvInterval (`lan.ipv6.ra.interval`), clamped to 4..=1800 s.
    pub max_interval: Duration,
    /// M flag: addresses via DHCPv6.
    pub managed: bool,
    /// O flag: other configuration via DHCPv6.
    pub other: bool,
    /// Router lifetime while we are a default router; 0 = never one,
    /// otherwise clamped to `max_interval..=9000 s` (RFC 4861 6.2.1).
    pub router_lifetime: Duration,
}

impl LanRaConfig {
    /// The defaults of `lan.ipv6.ra`: M off, O on, router lifetime
    /// [`default_router_lifetime`].
    pub fn with_defaults(mac: [u8; 6], mtu: u32, max_interval: Duration) -> Self {
        LanRaConfig {
            mac,
            mtu,
            max_interval,
            managed: false,
            other: true,
            router_lifetime: default_router_lifetime(max_interval),
        }
    }
}

/// The LAN /64 and the lifetimes of the delegated prefix it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LanPrefix {
    /// The /64 network; host bits are ignored.
    pub prefix: Ipv6Addr,
    /// None = infinite.
    pub preferred_until: Option<Instant>,
    /// None = infinite.
    pub valid_until: Option<Instant>,
}

/// What the rest of the daemon knows, handed to [`LanRa::update`] every
/// control-loop turn.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaInputs {
    /// The current LAN /64; None without a delegated prefix.
    pub prefix: Option<LanPrefix>,
    /// The WAN has a default router (otherwise router lifetime 0).
    pub default_route: bool,
    /// DNS servers to announce.
    pub rdnss: Vec<Ipv6Addr>,
    /// Search domains to announce.
    pub dnssl: Vec<String>,
}

/// A /64 that hosts may still hold addresses in, and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StalePrefix {
    pub prefix: Ipv6Addr,
    pub valid_until: Instant,
}

/// Why a Router Solicitation was not valid (RFC 4861 6.1.1 message checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsMalformed {
    /// Shorter than the 8-octet RS header.
    Truncated,
    /// ICMPv6 type is not 133.
    NotRouterSolicit(u8),
    /// ICMPv6 code is not 0.
    BadCode(u8),
    /// An option with length 0.
    ZeroLengthOption { offset: usize },
    /// An option extends past the end of the message.
    OptionOverrun { offset: usize },
}

impl fmt::Display for RsMalformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RsMalformed::Truncated => {
                write!(f, "shorter than the {}-octet RS header", ra::RS_HEADER_LEN)
            }
            RsMalformed::NotRouterSolicit(t) => {
                write!(f, "ICMPv6 type {t} is not a router solicitation")
            }
            RsMalformed::BadCode(c) => write!(f, "ICMPv6 code {c} is not 0"),
            RsMalformed::ZeroLengthOption { offset } => {
                write!(f, "zero-length option at offset {offset}")
            }
            RsMalformed::OptionOverrun { offset } => {
                write!(
                    f,
                    "option at offset {offset} runs past the end of the message"
                )
            }
        }
    }
}

/// Why a Router Solicitation was dropped. Each counts in one `drop_rs_*`
/// counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsDrop {
    /// IPv6 hop limit was not 255: forwarded from off-link.
    HopLimit(u8),
    /// Multicast source address.
    MulticastSource(Ipv6Addr),
    Malformed(RsMalformed),
    /// Unspecified source with a source link-layer address option.
    UnspecifiedSourceWithSlla,
    /// Valid, but we are not advertising (before `start`, after
    /// `shutdown`).
    NotAdvertising,
}

impl fmt::Display for RsDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RsDrop::HopLimit(h) => write!(f, "hop limit {h} is not 255"),
            RsDrop::MulticastSource(a) => write!(f, "multicast source {a}"),
            RsDrop::Malformed(e) => write!(f, "malformed: {e}"),
            RsDrop::UnspecifiedSourceWithSlla => {
                f.write_str("unspecified source with a source link-layer address option")
            }
            RsDrop::NotAdvertising => f.write_str("not advertising"),
        }
    }
}

impl std::error::Error for RsDrop {}

/// Rogue RA bookkeeping for the once-a-minute log line.
#[derive(Clone, Debug, Default)]
struct RogueLog {
    last_logged: Option<Instant>,
    suppressed: u64,
    last_seen: Option<(Instant, Ipv6Addr)>,
}

/// The LAN's Router Advertisement sender. See the module docs.
#[derive(Debug)]
pub struct LanRa {
    cfg: LanRaConfig,
    min_interval: Duration,
    /// RDNSS/DNSSL lifetime in seconds.
    dns_lifetime: u32,
    mtu_option: Option<u32>,
    rng: Jitter,
    advertising: bool,
    /// RAs still to send at the short initial interval.
    initial_left: u32,
    next_unsolicited: Option<Instant>,
    /// An RA due early: for an RS or a change.
    prompt_at: Option<Instant>,
    /// An RS arrived since the last RA.
    answers_rs: bool,
    /// What we advertise changed since the last RA.
    changed_since_sent: bool,
    last_sent: Option<Instant>,
    /// The latest `now` any call passed in.
    clock: Option<Instant>,
    current: Option<LanPrefix>,
    default_route: bool,
    /// Announced DNS servers and domains, sanitized.
    rdnss: Vec<Ipv6Addr>,
    dnssl: Vec<String>,
    /// The lists as last handed in, so unchanged inputs are not
    /// re-examined (or re-logged) every control-loop turn.
    raw_rdnss: Vec<Ipv6Addr>,
    raw_dnssl: Vec<String>,
    /// The last refused current prefix, logged once.
    refused_prefix: Option<Ipv6Addr>,
    /// No longer announced; sent with lifetime 0 in the next RAs.
    withdrawn_rdnss: Vec<Ipv6Addr>,
    withdrawn_dnssl: Vec<String>,
    withdrawal_ras_left: u8,
    /// Deprecated prefixes, advertised with preferred lifetime 0.
    stale: Vec<StalePrefix>,
    /// Remembered prefixes waiting for the first current prefix.
    held: Vec<StalePrefix>,
    rogue: RogueLog,
    counters: Counters,
    /// The prefixes' on-link flag: cleared for a proxied WAN /64, so LAN
    /// hosts send even that /64 through the router (`set_on_link`).
    on_link: bool,
    /// Deprecated prefixes that were advertised off-link: they stay so (a
    /// PIO with L=1 would make the old WAN /64 on-link on the LAN now).
    off_link_stale: Vec<Ipv6Addr>,
}

impl LanRa {
    /// `seed` drives the random intervals and delays.
    pub fn new(cfg: LanRaConfig, seed: u64) -> Self {
        let cfg = normalize_config(cfg);
        let min_interval = (cfg.max_interval * 33 / 100).max(MIN_RTR_ADV_INTERVAL_FLOOR);
        let dns_lifetime = secs_u32(cfg.max_interval.saturating_mul(3));
        let mtu_option = if (MIN_LINK_MTU..=MAX_LINK_MTU).contains(&cfg.mtu) {
            Some(cfg.mtu)
        } else {
            log::warn!(
                "lan: MTU {} is outside {MIN_LINK_MTU}..={MAX_LINK_MTU}; RAs carry no MTU option",
                cfg.mtu
            );
            None
        };
        LanRa {
            cfg,
            min_interval,
            dns_lifetime,
            mtu_option,
            rng: Jitter::new(seed),
            advertising: false,
            initial_left: 0,
            next_unsolicited: None,
            prompt_at: None,
            answers_rs: false,
            changed_since_sent: false,
            last_sent: None,
            clock: None,
            current: None,
            default_route: false,
            rdnss: Vec::new(),
            dnssl: Vec::new(),
            raw_rdnss: Vec::new(),
            raw_dnssl: Vec::new(),
            refused_prefix: None,
            withdrawn_rdnss: Vec::new(),
            withdrawn_dnssl: Vec::new(),
            withdrawal_ras_left: 0,
            stale: Vec::new(),
            held: Vec::new(),
            rogue: RogueLog::default(),
            counters: Counters::default(),
            on_link: true,
            off_link_stale: Vec::new(),
        }
    }

    /// Sets the on-link (L) flag of every advertised prefix. Off for a
    /// proxied WAN /64 (issue 19): A=1 L=0 gives hosts addresses in it but
    /// no on-link route (RFC 4861 6.3.4), so they send all of it, the
    /// WAN's hosts included, to the router, and nothing on the LAN needs
    /// proxying. A change is advertised promptly.
    pub fn set_on_link(&mut self, now: Instant, on: bool) {
        if self.on_link != on {
            self.tick(now);
            self.on_link = on;
            if self.advertising {
                self.schedule_for_change(now);
            }
        }
    }

    pub fn on_link(&self) -> bool {
        self.on_link
    }

    /// Begins advertising: the first RA is due at once (or
    /// `MIN_DELAY_BETWEEN_RAS` after the final RAs of a previous run).
    /// Call it once the LAN link-local address passed DAD.
    pub fn start(&mut self, now: Instant) {
        self.tick(now);
        if self.advertising {
            return;
        }
        self.advertising = true;
        self.initial_left = MAX_INITIAL_RTR_ADVERTISEMENTS;
        self.next_unsolicited = Some(self.earliest_send(now));
        self.prompt_at = None;
        self.answers_rs = false;
        self.changed_since_sent = false;
        log::info!(
            "lan: sending router advertisements every {}-{} s ({})",
            self.min_interval.as_secs(),
            self.cfg.max_interval.as_secs(),
            self.describe_role()
        );
    }

    /// The LAN link came back (a cable, a switch reboot): hosts that
    /// joined meanwhile get the initial burst of RAs at once instead of
    /// waiting up to an interval.
    pub fn link_up(&mut self, now: Instant) {
        self.tick(now);
        if !self.advertising {
            return;
        }
        self.initial_left = MAX_INITIAL_RTR_ADVERTISEMENTS;
        self.next_unsolicited = Some(self.earliest_send(now));
    }

    /// Takes the current inputs; called every control-loop turn. A change
    /// of what is advertised schedules an RA promptly.
    pub fn update(&mut self, now: Instant, inputs: RaInputs) {
        self.tick(now);
        let lifetime_before = self.router_lifetime_secs();
        let prefix = self.accept_prefix(inputs.prefix);
        let mut changed = self.set_prefix(now, prefix);
        self.default_route = inputs.default_route;
        let lifetime_after = self.router_lifetime_secs();
        if (lifetime_before == 0) != (lifetime_after == 0) {
            changed = true;
            log::info!("lan: {}", self.describe_role());
        }
        changed |= self.set_rdnss(inputs.rdnss);
        changed |= self.set_dnssl(inputs.dnssl);
        if changed {
            self.schedule_for_change(now);
        }
    }

    /// Prefixes remembered across a restart (what [`Self::remembered`]
    /// returned then). One that is the current prefix is forgotten, one
    /// that differs from it is deprecated; before the first current prefix
    /// is known they are held, unadvertised, for that decision.
    pub fn restore_stale(&mut self, now: Instant, stale: Vec<StalePrefix>) {
        self.tick(now);
        let mut changed = false;
        for entry in stale {
            let Some(prefix) = network64(entry.prefix) else {
                self.counters.restore_ignored += 1;
                log::warn!(
                    "lan: remembered prefix {} is not a usable /64; ignored",
                    entry.prefix
                );
                continue;
            };
            if entry.valid_until <= now {
                self.counters.restore_ignored += 1;
                log::info!("lan: remembered prefix {prefix}/64 has expired; forgotten");
                continue;
            }
            self.counters.restored_prefix += 1;
            // Hosts were never told more than ND_VALID_LIMIT.
            let valid_until = entry.valid_until.min(now + secs(ND_VALID_LIMIT));
            match self.current {
                Some(current) if current.prefix == prefix => {
                    log::info!("lan: remembered prefix {prefix}/64 is the current prefix");
                }
                Some(_) => changed |= self.deprecate(now, prefix, valid_until),
                None => {
                    log::info!(
                        "lan: remembered prefix {prefix}/64 held until the current prefix is known"
                    );
                    insert_bounded(
                        &mut self.held,
                        StalePrefix {
                            prefix,
                            valid_until,
                        },
                        &mut self.counters.stale_evicted,
                    );
                }
            }
        }
        if changed {
            self.schedule_for_change(now);
        }
    }

    /// The prefixes hosts may hold addresses in, for persistence: the
    /// current one (valid until min(lease, now + 5400 s), `now` being the
    /// latest instant any call passed in), the stale ones and the
    /// remembered ones still held.
    pub fn remembered(&self) -> Vec<StalePrefix> {
        let mut out = Vec::new();
        if let (Some(current), Some(now)) = (self.current, self.clock) {
            let cap = now + secs(ND_VALID_LIMIT);
            let valid_until = current.valid_until.map_or(cap, |v| v.min(cap));
            if valid_until > now {
                out.push(StalePrefix {
                    prefix: current.prefix,
                    valid_until,
                });
            }
        }
        let live = |s: &&StalePrefix| self.clock.is_none_or(|now| s.valid_until > now);
        out.extend(self.stale.iter().filter(live).copied());
        out.extend(self.held.iter().filter(live).copied());
        out
    }

    /// The delegation still holds `prefix` deprecated, valid until
    /// `valid_until` (a server renumbering gracefully): a stale entry for
    /// it is not advertised past that, whatever the old lease said.
    pub fn bound_stale(&mut self, prefix: Ipv6Addr, valid_until: Instant) {
        if let Some(s) = self.stale.iter_mut().find(|s| s.prefix == prefix) {
            s.valid_until = s.valid_until.min(valid_until);
        }
    }

    /// The /64s being deprecated at `now` (advertised with preferred
    /// lifetime 0). Remembered prefixes still held are not listed.
    pub fn stale_prefixes(&self, now: Instant) -> Vec<Ipv6Addr> {
        self.stale
            .iter()
            .filter(|s| s.valid_until > now)
            .map(|s| s.prefix)
            .collect()
    }

    /// Validates a Router Solicitation (RFC 4861 6.1.1; the caller checked
    /// the ICMPv6 checksum) and schedules a multicast RA to answer it.
    /// `icmp` starts at the ICMPv6 type byte.
    pub fn handle_rs(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        hop_limit: u8,
        icmp: &[u8],
    ) -> Result<(), RsDrop> {
        self.tick(now);
        self.counters.rx_rs += 1;
        let result = self.check_rs(src, hop_limit, icmp);
        if let Err(e) = result {
            let counter = match e {
                RsDrop::HopLimit(_) => &mut self.counters.drop_rs_hop_limit,
                RsDrop::MulticastSource(_) => &mut self.counters.drop_rs_source,
                RsDrop::Malformed(_) => &mut self.counters.drop_rs_malformed,
                RsDrop::UnspecifiedSourceWithSlla => &mut self.counters.drop_rs_unspecified_slla,
                RsDrop::NotAdvertising => &mut self.counters.drop_rs_not_advertising,
            };
            *counter += 1;
            log::debug!("lan: dropped RS from {src}: {e}");
            return result;
        }
        self.answers_rs = true;
        let wanted = now + self.rng.between(Duration::ZERO, MAX_RA_DELAY_TIME);
        let target = wanted.max(self.earliest_send(now));
        if self.next_due().is_some_and(|due| due <= target) {
            self.counters.rs_coalesced += 1;
        } else {
            if target > wanted {
                self.counters.rs_rate_limited += 1;
            }
            self.prompt_at = Some(target);
        }
        Ok(())
    }

    /// Another router's RA on the LAN: counted and logged (at most once a
    /// minute), never acted on.
    pub fn handle_foreign_ra(&mut self, now: Instant, src: Ipv6Addr, icmp: &[u8]) {
        self.tick(now);
        self.counters.rogue_ra += 1;
        self.rogue.last_seen = Some((now, src));
        let log_due = self
            .rogue
            .last_logged
            .is_none_or(|t| now.saturating_duration_since(t) >= ROGUE_LOG_INTERVAL);
        if !log_due {
            self.rogue.suppressed += 1;
            return;
        }
        let suppressed = std::mem::take(&mut self.rogue.suppressed);
        let more = if suppressed > 0 {
            format!("; {suppressed} more since the last report")
        } else {
            String::new()
        };
        log::warn!(
            "lan: rogue router advertisement from {src} ({}), ignored{more}",
            describe_foreign_ra(icmp)
        );
        self.rogue.last_logged = Some(now);
        self.counters.rogue_ra_logged += 1;
    }

    /// The source and time of the last rogue RA.
    pub fn last_rogue_ra(&self) -> Option<(Instant, Ipv6Addr)> {
        self.rogue.last_seen
    }

    /// Appends the RAs due at `now` to `out` and returns when to call
    /// again. Also expires stale prefixes.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) -> Option<Instant> {
        self.tick(now);
        self.expire(now);
        if self.advertising && self.next_due().is_some_and(|due| due <= now) {
            self.send(now, out);
        }
        self.next_deadline()
    }

    /// Stops advertising and returns the final RAs, router lifetime 0
    /// (RFC 4861 6.2.5), for the caller to send about 100 ms apart. Empty
    /// when we were not advertising.
    pub fn shutdown(&mut self, now: Instant) -> Vec<Vec<u8>> {
        self.tick(now);
        if !self.advertising {
            return Vec::new();
        }
        self.advertising = false;
        self.next_unsolicited = None;
        self.prompt_at = None;
        self.answers_rs = false;
        self.expire(now);
        let repr = self.advert(now, true);
        match repr.emit() {
            Ok(bytes) => {
                let count = MAX_FINAL_RTR_ADVERTISEMENTS as u64;
                self.counters.tx_ra += count;
                self.counters.tx_ra_final += count;
                self.last_sent = Some(now);
                log::info!("lan: stopped advertising; final RAs with router lifetime 0");
                vec![bytes; MAX_FINAL_RTR_ADVERTISEMENTS]
            }
            Err(e) => {
                self.counters.emit_failed += 1;
                log::error!("lan: cannot encode the final RA: {e}");
                Vec::new()
            }
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// When the last RA was produced.
    pub fn last_sent(&self) -> Option<Instant> {
        self.last_sent
    }

    /// Between `start` and `shutdown`.
    pub fn is_advertising(&self) -> bool {
        self.advertising
    }

    /// The current LAN prefix as accepted by `update`.
    pub fn prefix(&self) -> Option<LanPrefix> {
        self.current
    }

    /// MinRtrAdvInterval and MaxRtrAdvInterval in effect.
    pub fn intervals(&self) -> (Duration, Duration) {
        (self.min_interval, self.cfg.max_interval)
    }

    /// The RA that would be sent at `now`, for status output and tests.
    pub fn current_advert(&self, now: Instant) -> RaRepr {
        self.advert(now, false)
    }

    fn tick(&mut self, now: Instant) {
        self.clock = Some(self.clock.map_or(now, |c| c.max(now)));
    }

    /// RFC 4861 6.1.1 checks, in its order (hop limit first).
    fn check_rs(&self, src: Ipv6Addr, hop_limit: u8, icmp: &[u8]) -> Result<(), RsDrop> {
        if hop_limit != ND_HOP_LIMIT {
            return Err(RsDrop::HopLimit(hop_limit));
        }
        if src.is_multicast() {
            return Err(RsDrop::MulticastSource(src));
        }
        let has_slla = check_rs_message(icmp).map_err(RsDrop::Malformed)?;
        if src.is_unspecified() && has_slla {
            return Err(RsDrop::UnspecifiedSourceWithSlla);
        }
        if !self.advertising {
            return Err(RsDrop::NotAdvertising);
        }
        Ok(())
    }

    /// A current prefix as a /64 network, or None (counted and logged once)
    /// when it cannot be advertised.
    fn accept_prefix(&mut self, prefix: Option<LanPrefix>) -> Option<LanPrefix> {
        let given = prefix?;
        match network64(given.prefix) {
            Some(net) => {
                self.refused_prefix = None;
                Some(LanPrefix {
                    prefix: net,
                    ..given
                })
            }
            None => {
                if self.refused_prefix != Some(given.prefix) {
                    self.refused_prefix = Some(given.prefix);
                    self.counters.input_prefix_invalid += 1;
                    log::warn!(
                        "lan: {} cannot be a LAN prefix; not advertised",
                        given.prefix
                    );
                }
                None
            }
        }
    }

    /// Installs the current prefix; true when the advertised prefix changed.
    fn set_prefix(&mut self, now: Instant, new: Option<LanPrefix>) -> bool {
        let old = self.current;
        self.current = new;
        match (old, new) {
            (None, None) => false,
            // A lease refresh: the lifetimes follow at the next RA.
            (Some(o), Some(n)) if o.prefix == n.prefix => false,
            _ => {
                if let Some(o) = old {
                    let cap = now + secs(ND_VALID_LIMIT);
                    let valid_until = o.valid_until.map_or(cap, |v| v.min(cap));
                    match new {
                        Some(n) => {
                            log::info!("lan: prefix {}/64 replaced by {}/64", o.prefix, n.prefix)
                        }
                        None => log::info!("lan: prefix {}/64 is gone", o.prefix),
                    }
                    self.deprecate(now, o.prefix, valid_until);
                }
                if let Some(n) = new {
                    log::info!(
                        "lan: advertising prefix {}/64 (preferred {}, valid {})",
                        n.prefix,
                        describe_until(n.preferred_until, now),
                        describe_until(n.valid_until, now)
                    );
                    if let Some(i) = self.stale.iter().position(|s| s.prefix == n.prefix) {
                        self.stale.remove(i);
                        self.counters.prefix_returned += 1;
                        log::info!("lan: stale prefix {}/64 is current again", n.prefix);
                    }
                    self.settle_held(now, n.prefix);
                }
                true
            }
        }
    }

    /// The first current prefix decides about the remembered ones.
    fn settle_held(&mut self, now: Instant, current: Ipv6Addr) {
        for held in std::mem::take(&mut self.held) {
            if held.prefix == current {
                self.counters.prefix_returned += 1;
                log::info!("lan: remembered prefix {current}/64 is current again");
            } else {
                self.deprecate(now, held.prefix, held.valid_until);
            }
        }
    }

    /// Moves a prefix to the stale list; false when it had no valid
    /// lifetime left.
    fn deprecate(&mut self, now: Instant, prefix: Ipv6Addr, valid_until: Instant) -> bool {
        if valid_until <= now {
            log::info!("lan: prefix {prefix}/64 has no valid lifetime left; dropped");
            return false;
        }
        if !self.on_link && !self.off_link_stale.contains(&prefix) {
            self.off_link_stale.push(prefix);
        }
        let stale = &self.stale;
        self.off_link_stale
            .retain(|p| *p == prefix || stale.iter().any(|s| s.prefix == *p));
        if let Some(existing) = self.stale.iter_mut().find(|s| s.prefix == prefix) {
            // Already being deprecated: hosts may hold the later deadline.
            existing.valid_until = existing.valid_until.max(valid_until);
            return true;
        }
        insert_bounded(
            &mut self.stale,
            StalePrefix {
                prefix,
                valid_until,
            },
            &mut self.counters.stale_evicted,
        );
        self.counters.prefix_deprecated += 1;
        log::info!(
            "lan: deprecating prefix {prefix}/64: preferred lifetime 0, valid for {} s more",
            valid_until.saturating_duration_since(now).as_secs()
        );
        true
    }

    /// Sanitizes and installs the DNS server list; true when the announced
    /// list changed.
    fn set_rdnss(&mut self, raw: Vec<Ipv6Addr>) -> bool {
        if raw == self.raw_rdnss {
            return false;
        }
        let mut servers: Vec<Ipv6Addr> = Vec::new();
        let mut dropped = 0u64;
        for &addr in &raw {
            let unusable = addr.is_unspecified() || addr.is_loopback() || addr.is_multicast();
            if unusable || servers.contains(&addr) || servers.len() >= MAX_RDNSS_SERVERS {
                dropped += 1;
            } else {
                servers.push(addr);
            }
        }
        if dropped > 0 {
            self.counters.input_rdnss_dropped += dropped;
            log::warn!(
                "lan: {dropped} DNS server(s) not announced ({})",
                "unusable, duplicate or over the limit"
            );
        }
        self.raw_rdnss = raw;
        if servers == self.rdnss {
            return false;
        }
        let old = std::mem::replace(&mut self.rdnss, servers);
        let withdrawn = withdraw(
            &mut self.withdrawn_rdnss,
            old,
            &self.rdnss,
            MAX_RDNSS_SERVERS - self.rdnss.len(),
        );
        if withdrawn {
            self.withdrawal_ras_left = WITHDRAWAL_RAS;
        }
        log::info!("lan: announcing DNS servers {:?}", self.rdnss);
        true
    }

    /// Sanitizes and installs the search domains; true when the announced
    /// list changed.
    fn set_dnssl(&mut self, raw: Vec<String>) -> bool {
        if raw == self.raw_dnssl {
            return false;
        }
        let mut domains: Vec<String> = Vec::new();
        let mut used = 0usize;
        let mut dropped = 0u64;
        for name in &raw {
            let accepted = normalize_domain(name).filter(|d| {
                !domains.contains(d)
                    && domains.len() < MAX_SEARCH_DOMAINS
                    && used + encoded_name_len(d) <= DNSSL_NAME_BUDGET
            });
            match accepted {
                Some(d) => {
                    used += encoded_name_len(&d);
                    domains.push(d);
                }
                None => dropped += 1,
            }
        }
        if dropped > 0 {
            self.counters.input_dnssl_dropped += dropped;
            log::warn!(
                "lan: {dropped} search domain(s) not announced ({})",
                "not a DNS name, duplicate or over the limits"
            );
        }
        self.raw_dnssl = raw;
        if domains == self.dnssl {
            return false;
        }
        let old = std::mem::replace(&mut self.dnssl, domains);
        // Withdrawn names share the count and size limits.
        let room = MAX_SEARCH_DOMAINS - self.dnssl.len();
        let withdrawn = withdraw(&mut self.withdrawn_dnssl, old, &self.dnssl, room);
        let mut used: usize = self.dnssl.iter().map(|d| encoded_name_len(d)).sum();
        self.withdrawn_dnssl.retain(|d| {
            used += encoded_name_len(d);
            used <= DNSSL_NAME_BUDGET
        });
        if withdrawn {
            self.withdrawal_ras_left = WITHDRAWAL_RAS;
        }
        log::info!("lan: announcing search domains {:?}", self.dnssl);
        true
    }

    /// Router lifetime of a regular RA, in seconds.
    fn router_lifetime_secs(&self) -> u16 {
        if self.default_route && self.current.is_some() {
            u16::try_from(self.cfg.router_lifetime.as_secs()).unwrap_or(u16::MAX)
        } else {
            0
        }
    }

    fn describe_role(&self) -> String {
        match self.router_lifetime_secs() {
            0 if self.current.is_none() => {
                "not a default router: the LAN has no IPv6 prefix".to_string()
            }
            0 if self.cfg.router_lifetime.is_zero() => {
                "not a default router: router lifetime 0 configured".to_string()
            }
            0 => "not a default router: the WAN has no default router".to_string(),
            secs => format!("default router, lifetime {secs} s"),
        }
    }

    /// The earliest a multicast RA may go out (RFC 4861 6.2.6).
    fn earliest_send(&self, now: Instant) -> Instant {
        self.last_sent
            .map_or(now, |t| now.max(t + MIN_DELAY_BETWEEN_RAS))
    }

    /// When the next RA is due.
    fn next_due(&self) -> Option<Instant> {
        if !self.advertising {
            return None;
        }
        [self.prompt_at, self.next_unsolicited]
            .into_iter()
            .flatten()
            .min()
    }

    /// Sends an RA promptly and restarts the fast initial series.
    fn schedule_for_change(&mut self, now: Instant) {
        self.changed_since_sent = true;
        if !self.advertising {
            return;
        }
        let at = self.earliest_send(now);
        self.prompt_at = Some(self.prompt_at.map_or(at, |p| p.min(at)));
        self.initial_left = MAX_INITIAL_RTR_ADVERTISEMENTS;
    }

    fn send(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        let repr = self.advert(now, false);
        match repr.emit() {
            Ok(bytes) => {
                out.push(bytes);
                self.counters.tx_ra += 1;
                if self.answers_rs {
                    self.counters.tx_ra_solicited += 1;
                }
                if self.changed_since_sent && self.prompt_at.is_some_and(|t| t <= now) {
                    self.counters.tx_ra_change += 1;
                }
                self.last_sent = Some(now);
            }
            Err(e) => {
                // Cannot happen with sanitized inputs; keep the schedule
                // going rather than retrying in a busy loop.
                self.counters.emit_failed += 1;
                log::error!("lan: cannot encode the RA: {e}");
            }
        }
        self.answers_rs = false;
        self.changed_since_sent = false;
        self.prompt_at = None;
        if self.withdrawal_ras_left > 0 {
            self.withdrawal_ras_left -= 1;
            if self.withdrawal_ras_left == 0 {
                self.withdrawn_rdnss.clear();
                self.withdrawn_dnssl.clear();
            }
        }
        let interval = if self.initial_left > 0 {
            self.initial_left -= 1;
            if self.initial_left > 0 {
                self.rng
                    .between(INITIAL_ADVERT_INTERVAL_MIN, INITIAL_ADVERT_INTERVAL_MAX)
            } else {
                self.rng.between(self.min_interval, self.cfg.max_interval)
            }
        } else {
            self.rng.between(self.min_interval, self.cfg.max_interval)
        };
        self.next_unsolicited = Some(now + interval);
    }

    /// Drops stale and held prefixes whose valid lifetime is over.
    fn expire(&mut self, now: Instant) {
        let counters = &mut self.counters;
        self.stale.retain(|s| {
            let live = s.valid_until > now;
            if !live {
                counters.stale_expired += 1;
                log::info!("lan: stale prefix {}/64 expired", s.prefix);
            }
            live
        });
        self.held.retain(|h| {
            let live = h.valid_until > now;
            if !live {
                log::info!("lan: remembered prefix {}/64 expired", h.prefix);
            }
            live
        });
    }

    fn next_deadline(&self) -> Option<Instant> {
        let expiries = self
            .stale
            .iter()
            .chain(self.held.iter())
            .map(|s| s.valid_until);
        self.next_due().into_iter().chain(expiries).min()
    }

    /// The RA to send at `now`; `final_ra` for the ones sent on shutdown.
    fn advert(&self, now: Instant, final_ra: bool) -> RaRepr {
        let mut prefixes = Vec::with_capacity(1 + self.stale.len());
        if let Some(p) = self.current {
            let valid = remaining_secs(p.valid_until, now, ND_VALID_LIMIT);
            // RFC 4862 5.5.3 c: hosts ignore a PIO with preferred > valid.
            let preferred = remaining_secs(p.preferred_until, now, ND_PREFERRED_LIMIT).min(valid);
            prefixes.push(slaac_prefix(p.prefix, preferred, valid, self.on_link));
        }
        for s in self.stale.iter().filter(|s| s.valid_until > now) {
            let valid = remaining_secs(Some(s.valid_until), now, ND_VALID_LIMIT);
            let on_link = self.on_link && !self.off_link_stale.contains(&s.prefix);
            prefixes.push(slaac_prefix(s.prefix, 0, valid, on_link));
        }
        let dns_lifetime = if final_ra { 0 } else { self.dns_lifetime };
        let withdrawing = self.withdrawal_ras_left > 0;
        let mut rdnss = Vec::new();
        if !self.rdnss.is_empty() {
            rdnss.push(ra::Rdnss {
                lifetime: dns_lifetime,
                servers: self.rdnss.clone(),
            });
        }
        if withdrawing && !self.withdrawn_rdnss.is_empty() {
            rdnss.push(ra::Rdnss {
                lifetime: 0,
                servers: self.withdrawn_rdnss.clone(),
            });
        }
        let mut dnssl = Vec::new();
        if !self.dnssl.is_empty() {
            dnssl.push(Dnssl {
                lifetime: dns_lifetime,
                domains: self.dnssl.clone(),
            });
        }
        if withdrawing && !self.withdrawn_dnssl.is_empty() {
            dnssl.push(Dnssl {
                lifetime: 0,
                domains: self.withdrawn_dnssl.clone(),
            });
        }
        RaRepr {
            cur_hop_limit: CUR_HOP_LIMIT,
            managed: self.cfg.managed,
            other: self.cfg.other,
            router_lifetime: if final_ra {
                0
            } else {
                self.router_lifetime_secs()
            },
            reachable_time: 0,
            retrans_timer: 0,
            source_lladdr: Some(self.cfg.mac),
            mtu: self.mtu_option,
            prefixes,
            rdnss,
            dnssl,
        }
    }
}

/// Clamps the configuration to what RFC 4861 6.2.1 allows, with a warning
/// for every adjustment.
fn normalize_config(mut cfg: LanRaConfig) -> LanRaConfig {
    let max = cfg
        .max_interval
        .clamp(MAX_RTR_ADV_INTERVAL_MIN, MAX_RTR_ADV_INTERVAL_MAX);
    if max != cfg.max_interval {
        log::warn!(
            "lan: RA interval {:?} is outside 4..=1800 s; using {} s",
            cfg.max_interval,
            max.as_secs()
        );
        cfg.max_interval = max;
    }
    if !cfg.router_lifetime.is_zero() {
        let lifetime = cfg.router_lifetime.clamp(max, MAX_ROUTER_LIFETIME);
        // The field counts whole seconds; never round below the interval.
        let lifetime =
            Duration::from_secs(lifetime.as_secs() + u64::from(lifetime.subsec_nanos() > 0));
        if lifetime != cfg.router_lifetime {
            log::warn!(
                "lan: router lifetime {:?} is outside {}..=9000 s; using {} s",
                cfg.router_lifetime,
                max.as_secs(),
                lifetime.as_secs()
            );
            cfg.router_lifetime = lifetime;
        }
    }
    cfg
}

/// RFC 4861 6.1.1 message checks of an RS: type, code, length, every
/// option non-empty and inside the message. Returns whether a source
/// link-layer address option is present.
fn check_rs_message(icmp: &[u8]) -> Result<bool, RsMalformed> {
    if icmp.len() < ra::RS_HEADER_LEN {
        return Err(RsMalformed::Truncated);
    }
    if icmp[0] != ra::ICMPV6_ROUTER_SOLICIT {
        return Err(RsMalformed::NotRouterSolicit(icmp[0]));
    }
    if icmp[1] != 0 {
        return Err(RsMalformed::BadCode(icmp[1]));
    }
    let mut has_slla = false;
    let mut offset = ra::RS_HEADER_LEN;
    while offset < icmp.len() {
        let rest = &icmp[offset..];
        if rest.len() < 2 {
            return Err(RsMalformed::OptionOverrun { offset });
        }
        let len = usize::from(rest[1]) * 8;
        if len == 0 {
            return Err(RsMalformed::ZeroLengthOption { offset });
        }
        if len > rest.len() {
            return Err(RsMalformed::OptionOverrun { offset });
        }
        has_slla |= rest[0] == ra::option_type::SOURCE_LLADDR;
        offset += len;
    }
    Ok(has_slla)
}

/// One line about a foreign RA for the log; the message is untrusted, so
/// only parsed numbers and addresses go in.
fn describe_foreign_ra(icmp: &[u8]) -> String {
    let parsed = RouterAdvert::new_checked(icmp).and_then(|view| RaRepr::parse(&view));
    match parsed {
        Ok((repr, _)) => {
            let mut text = format!("router lifetime {} s", repr.router_lifetime);
            if repr.managed || repr.other {
                text.push_str(&format!(
                    ", flags{}{}",
                    if repr.managed { " M" } else { "" },
                    if repr.other { " O" } else { "" }
                ));
            }
            if let Some(mac) = repr.source_lladdr {
                text.push_str(&format!(", MAC {}", format_mac(mac)));
            }
            for p in repr.prefixes.iter().take(ROGUE_LOG_PREFIXES) {
                text.push_str(&format!(", prefix {}/{}", p.prefix, p.prefix_len));
            }
            if repr.prefixes.len() > ROGUE_LOG_PREFIXES {
                text.push_str(&format!(
                    ", {} more prefixes",
                    repr.prefixes.len() - ROGUE_LOG_PREFIXES
                ));
            }
            text
        }
        Err(e) => format!("malformed: {e}"),
    }
}

fn format_mac(mac: [u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// The /64 network of `addr`, or None when that cannot be a LAN prefix.
fn network64(addr: Ipv6Addr) -> Option<Ipv6Addr> {
    let mut octets = addr.octets();
    octets[8..].fill(0);
    let net = Ipv6Addr::from(octets);
    let link_local = net.segments()[0] & 0xffc0 == 0xfe80;
    if net.is_unspecified() || net.is_multicast() || link_local {
        None
    } else {
        Some(net)
    }
}

/// A dotted name as it goes into a DNSSL option (no trailing dot, lower
/// case), or None when the codec cannot encode it.
fn normalize_domain(name: &str) -> Option<String> {
    // RFC 1035: 255 octets on the wire, so at most 254 as text with a dot.
    if name.len() > 254 {
        return None;
    }
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let probe = RaRepr {
        dnssl: vec![Dnssl {
            lifetime: 0,
            domains: vec![name.clone()],
        }],
        ..RaRepr::default()
    };
    probe.emit().ok().map(|_| name)
}

/// Octets of a valid dotted name without trailing dot in wire form
/// (length octets, labels, terminating zero).
fn encoded_name_len(name: &str) -> usize {
    name.len() + 2
}

/// Adds what left `old` to `withdrawn` (dropping what is announced again)
/// within `room` entries, the latest withdrawals kept. True when
/// something was newly withdrawn.
fn withdraw<T: PartialEq + Clone>(
    withdrawn: &mut Vec<T>,
    old: Vec<T>,
    current: &[T],
    room: usize,
) -> bool {
    withdrawn.retain(|w| !current.contains(w));
    let mut added = false;
    for item in old {
        if !current.contains(&item) && !withdrawn.contains(&item) {
            withdrawn.push(item);
            added = true;
        }
    }
    if withdrawn.len() > room {
        let excess = withdrawn.len() - room;
        withdrawn.drain(..excess);
    }
    added
}

/// Inserts into a bounded prefix table, evicting the entry that expires
/// first when full.
fn insert_bounded(table: &mut Vec<StalePrefix>, entry: StalePrefix, evicted: &mut u64) {
    if let Some(existing) = table.iter_mut().find(|s| s.prefix == entry.prefix) {
        existing.valid_until = existing.valid_until.max(entry.valid_until);
        return;
    }
    if table.len() >= MAX_STALE_PREFIXES {
        if let Some((i, _)) = table.iter().enumerate().min_by_key(|(_, s)| s.valid_until) {
            let gone = table.remove(i);
            *evicted += 1;
            log::warn!(
                "lan: too many old prefixes; {}/64 no longer deprecated",
                gone.prefix
            );
        }
    }
    table.push(entry);
}

fn slaac_prefix(prefix: Ipv6Addr, preferred: u32, valid: u32, on_link: bool) -> PrefixInfo {
    PrefixInfo {
        prefix,
        prefix_len: 64,
        on_link,
        autonomous: true,
        valid_lifetime: valid,
        preferred_lifetime: preferred,
    }
}

/// Whole seconds left until `until` (None = forever), at most `cap`.
fn remaining_secs(until: Option<Instant>, now: Instant, cap: u32) -> u32 {
    match until {
        Some(t) => secs_u32(t.saturating_duration_since(now)).min(cap),
        None => cap,
    }
}

fn secs_u32(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

fn describe_until(until: Option<Instant>, now: Instant) -> String {
    match until {
        Some(t) => format!("{} s", t.saturating_duration_since(now).as_secs()),
        None => "forever".to_string(),
    }
}
