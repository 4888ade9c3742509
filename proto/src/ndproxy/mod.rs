//! Routed ND proxy (RFC 4389) for a line without prefix delegation: the
//! WAN /64 learned from the WAN RA is advertised on the LAN (on-link flag
//! cleared, so LAN hosts send everything through the router and its
//! firewall), and this engine makes the WAN link deliver that /64's LAN
//! hosts to the router by answering the WAN's Neighbor Solicitations with
//! the router's WAN MAC.
//!
//! It answers for a LAN host only after verifying that the host is there:
//! a LAN NS/NA exchange it starts itself, or a fresh LAN neighbor entry the
//! caller reports ([`NdProxy::note_lan_neighbor`]). An address nobody holds
//! is never answered for. The router's own addresses in the /64 (B4, MAP-E
//! CE, IPIP local: [`NdProxy::set_own`]) are answered directly. DAD is
//! proxied both ways (RFC 4389 4.1.3.2): a LAN host's DAD probe is repeated
//! on the WAN and the address defended on the LAN if a WAN node holds it; a
//! WAN node's DAD probe is defended at once for a host verified within
//! REACHABLE_TIME, else repeated on the LAN and defended on the WAN if a
//! LAN host answers.
//!
//! Timers, all RFC 4861 section 10 constants unless said otherwise:
//! - a verification sends MAX_MULTICAST_SOLICIT (3) multicast NS,
//!   RETRANS_TIMER (1 s) apart, and is given up 3 s after it began;
//! - a verified entry is answered for during REACHABLE_TIME (30 s) after
//!   its last confirmation (a LAN NA, or a reported neighbor);
//! - then it is STALE: the next WAN solicitation for it sends up to
//!   MAX_UNICAST_SOLICIT (3) unicast NS to the host's MAC, RETRANS_TIMER
//!   apart, and is answered when the host confirms; no answer removes it;
//! - a STALE entry nobody asks about is removed 20 min after its last
//!   confirmation (no RFC constant: the neighbor engine's stale GC);
//! - a relayed DAD probe waits RETRANS_TIMER, the time the probing node
//!   itself waits (RFC 4862 5.1, DupAddrDetectTransmits 1).
//!
//! Bounds: `max_entries` verified entries (a full table evicts the STALE
//! entry confirmed longest ago, never a fresh one), `max_pending`
//! verifications in progress (more are refused, not queued), 4 WAN
//! solicitors remembered per target, `max_dad_pending` relayed DAD probes
//! per direction. Every multicast solicitation and relayed DAD probe the
//! engine sends spends a token of a per-side bucket (`solicit_rate` per
//! second, `solicit_burst` deep), so an NS flood aimed at the WAN /64 sends
//! at most that many LAN solicitations whatever its rate. Unicast probes of
//! known hosts do not spend tokens: at most MAX_UNICAST_SOLICIT per entry
//! per REACHABLE_TIME, bounded by the table; they keep verified hosts
//! answered while a flood spends the bucket.
//!
//! Sans-IO like the neighbor engine: frames in with `(now, side)`, frames
//! out in `out`, the next deadline from [`NdProxy::poll`].

mod counters;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, Icmpv6Message, Icmpv6Repr, IpProtocol, Ipv6Packet, Ipv6Repr,
    NdiscNeighborFlags, NdiscRepr,
};

pub use counters::NdProxyCounters;

use crate::neigh::frames::{self, Icmpv6Frame};
use crate::neigh::{
    is_link_local6, is_unicast6, option_lladdr, parse_ndisc, Mac, NdpError, Outgoing, Side,
};

/// RFC 4861 10: MAX_MULTICAST_SOLICIT.
pub const MAX_MULTICAST_SOLICIT: u32 = 3;
/// RFC 4861 10: MAX_UNICAST_SOLICIT.
pub const MAX_UNICAST_SOLICIT: u32 = 3;
/// RFC 4861 10: RETRANS_TIMER.
pub const RETRANS_TIMER: Duration = Duration::from_secs(1);
/// RFC 4861 10: REACHABLE_TIME.
pub const REACHABLE_TIME: Duration = Duration::from_secs(30);
/// WAN solicitors remembered per target being verified: a neighbor
/// retransmits from one address, so more only serve a flood.
const MAX_WAITERS: usize = 4;
/// The router's own addresses answered for; a handful exist (B4, MAP-E CE,
/// IPIP local), the cap only bounds a misbehaving caller.
const MAX_OWN: usize = 16;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NdProxyConfig {
    /// Verified LAN hosts remembered.
    pub max_entries: usize,
    /// Verifications in progress, on top of `max_entries`.
    pub max_pending: usize,
    /// Relayed DAD probes waiting for an answer, per direction.
    pub max_dad_pending: usize,
    /// How long a confirmation lets the engine answer for a host.
    pub reachable: Duration,
    /// A STALE entry is removed this long after its last confirmation.
    pub stale_lifetime: Duration,
    /// Interval between solicitations, and the DAD wait.
    pub retrans: Duration,
    /// Multicast (new target) and unicast (STALE target) solicitations
    /// sent before giving up.
    pub max_multicast_solicit: u32,
    pub max_unicast_solicit: u32,
    /// Token bucket of multicast solicitations and relayed DAD probes,
    /// per side: tokens per second and depth.
    pub solicit_rate: u32,
    pub solicit_burst: u32,
}

impl Default for NdProxyConfig {
    fn default() -> Self {
        Self {
            max_entries: 1024,
            max_pending: 64,
            max_dad_pending: 16,
            reachable: REACHABLE_TIME,
            stale_lifetime: Duration::from_secs(20 * 60),
            retrans: RETRANS_TIMER,
            max_multicast_solicit: MAX_MULTICAST_SOLICIT,
            max_unicast_solicit: MAX_UNICAST_SOLICIT,
            // A home LAN's hosts all verified within a couple of seconds
            // when the WAN asks for all of them at once (32 at once, 16/s).
            solicit_rate: 16,
            solicit_burst: 32,
        }
    }
}

impl NdProxyConfig {
    /// Caps keep `Instant + Duration` far from overflow and make zero
    /// counts mean "one".
    fn sanitized(mut self) -> Self {
        const MAX_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);
        for d in [
            &mut self.reachable,
            &mut self.stale_lifetime,
            &mut self.retrans,
        ] {
            *d = (*d).min(MAX_INTERVAL);
        }
        self.retrans = self.retrans.max(Duration::from_millis(1));
        self.max_multicast_solicit = self.max_multicast_solicit.max(1);
        self.max_unicast_solicit = self.max_unicast_solicit.max(1);
        self
    }
}

/// The router on one side: the MAC it answers with and the link-local
/// address its NDP messages come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub mac: Mac,
    pub link_local: Ipv6Addr,
}

/// What the engine did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Answered a WAN solicitation for one of the router's own addresses.
    OwnAnswered,
    /// Answered a WAN solicitation for a verified LAN host.
    ProxyAnswered,
    /// A WAN solicitation started a LAN verification (or a probe of a
    /// STALE host); it is answered when the host answers.
    Verifying,
    /// A verification for that target already runs; the solicitor is
    /// answered with the others.
    VerifyPending,
    /// A LAN answer verified a target (and answered its solicitors).
    Confirmed,
    /// A DAD probe was repeated on the other side.
    DadRelayed,
    /// A DAD probe was answered: the address is in use.
    DadDefended,
    /// Valid, but not about the proxied /64 (or the proxy is off): other
    /// engines may want it.
    NotProxied,
    /// Dropped; the counter named after the reason was incremented.
    Dropped(DropReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    Malformed,
    ChecksumBad,
    NsBad,
    NaBad,
    NotForUs,
    OwnFrame,
    /// A LAN advertisement nobody asked for.
    NaUnsolicited,
    /// A node on one side claims an address held on the other (or ours).
    Conflict,
    PendingFull,
    DadPendingFull,
    RateLimited,
}

/// State of a proxied target (RFC 4861 7.3.2 names; DELAY is folded into
/// PROBE as in the neighbor engine).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyState {
    /// Multicast LAN solicitations sent; nothing answered yet.
    Incomplete,
    /// Confirmed within `reachable`: answered for.
    Reachable,
    /// Confirmed before; re-verified on the next WAN solicitation.
    Stale,
    /// Unicast LAN solicitations re-verifying a STALE host.
    Probe,
}

/// One row of [`NdProxy::entries`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyEntry {
    pub addr: Ipv6Addr,
    /// The LAN host's MAC; `None` while INCOMPLETE.
    pub mac: Option<Mac>,
    pub state: ProxyState,
    /// Time since the last confirmation (or since the verification began).
    pub age: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Waiter {
    ip: Ipv6Addr,
    mac: Mac,
}

#[derive(Debug)]
struct Entry {
    state: ProxyState,
    /// Meaningless while INCOMPLETE.
    mac: Mac,
    probes: u32,
    /// Next solicitation (INCOMPLETE, PROBE) or end of REACHABLE.
    timer: Instant,
    /// Last confirmation; the start of the verification while INCOMPLETE.
    confirmed: Instant,
    /// WAN solicitors to answer once the host confirms.
    waiters: Vec<Waiter>,
}

impl Entry {
    fn deadline(&self, stale_lifetime: Duration) -> Instant {
        match self.state {
            ProxyState::Stale => self.confirmed + stale_lifetime,
            _ => self.timer,
        }
    }
}

/// A DAD probe repeated on the other side, waiting for an answer there.
#[derive(Clone, Copy, Debug)]
struct DadProbe {
    target: Ipv6Addr,
    /// Where the probing node is (where a defence goes).
    origin: Side,
    until: Instant,
}

/// Token bucket counted in nanotokens, so refills at any call rate are
/// exact (`rate` tokens per second = `rate` nanotokens per nanosecond).
#[derive(Debug)]
struct Bucket {
    nano: u64,
    last: Instant,
}

const TOKEN: u64 = 1_000_000_000;

impl Bucket {
    fn new(burst: u32, now: Instant) -> Self {
        Self {
            nano: u64::from(burst).saturating_mul(TOKEN),
            last: now,
        }
    }

    fn take(&mut self, now: Instant, rate: u32, burst: u32) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        let refill = u64::try_from(elapsed)
            .unwrap_or(u64::MAX)
            .saturating_mul(u64::from(rate));
        self.nano = self
            .nano
            .saturating_add(refill)
            .min(u64::from(burst).saturating_mul(TOKEN));
        self.last = self.last.max(now);
        if self.nano >= TOKEN {
            self.nano -= TOKEN;
            true
        } else {
            false
        }
    }
}

pub struct NdProxy {
    cfg: NdProxyConfig,
    wan: Link,
    lan: Link,
    /// Network address of the proxied /64; `None`: the proxy is off.
    prefix: Option<Ipv6Addr>,
    own: Vec<Ipv6Addr>,
    entries: HashMap<Ipv6Addr, Entry>,
    /// INCOMPLETE entries among `entries`.
    pending: usize,
    dad: Vec<DadProbe>,
    buckets: [Bucket; 2],
    generation: u64,
    counters: NdProxyCounters,
}

impl NdProxy {
    pub fn new(cfg: NdProxyConfig, wan: Link, lan: Link, now: Instant) -> Self {
        let cfg = cfg.sanitized();
        let buckets = [
            Bucket::new(cfg.solicit_burst, now),
            Bucket::new(cfg.solicit_burst, now),
        ];
        Self {
            cfg,
            wan,
            lan,
            prefix: None,
            own: Vec::new(),
            entries: HashMap::new(),
            pending: 0,
            dad: Vec::new(),
            buckets,
            generation: 0,
            counters: NdProxyCounters::default(),
        }
    }

    /// Sets the proxied /64 (any address in it; `None` turns the proxy
    /// off). A different /64 replaces the old one: every entry, pending
    /// verification and DAD probe of the old one is dropped, since its
    /// hosts now form addresses in the new one.
    pub fn set_prefix(&mut self, prefix: Option<Ipv6Addr>) {
        let prefix = prefix
            .map(network64)
            .filter(|p| !p.is_multicast() && !p.is_unspecified() && !is_link_local6(*p));
        if prefix == self.prefix {
            return;
        }
        let dropped = self.entries.len() + self.dad.len();
        if dropped > 0 {
            self.counters.renumber_dropped += dropped as u64;
            self.generation += 1;
        }
        log::info!(
            "ndproxy: proxied prefix {} -> {} ({dropped} entries dropped)",
            fmt_prefix(self.prefix),
            fmt_prefix(prefix)
        );
        self.entries.clear();
        self.dad.clear();
        self.pending = 0;
        self.prefix = prefix;
    }

    /// The router's own addresses in the /64 (B4, MAP-E CE, IPIP local),
    /// answered for directly. Addresses outside the /64 are kept but only
    /// matter once it covers them. Entries for them are dropped.
    pub fn set_own(&mut self, addrs: &[Ipv6Addr]) {
        self.own.clear();
        for a in addrs {
            if is_unicast6(*a) && !self.own.contains(a) && self.own.len() < MAX_OWN {
                self.own.push(*a);
            }
        }
        let own = &self.own;
        let before = self.entries.len();
        let mut pending_removed = 0;
        self.entries.retain(|a, e| {
            let keep = !own.contains(a);
            if !keep && e.state == ProxyState::Incomplete {
                pending_removed += 1;
            }
            keep
        });
        self.pending -= pending_removed;
        if self.entries.len() != before {
            self.generation += 1;
        }
    }

    /// A frame punted from `side`: WAN solicitations and advertisements for
    /// the /64, LAN advertisements answering our verifications, DAD probes
    /// from either side.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        side: Side,
        frame: &[u8],
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return self.drop(DropReason::Malformed);
        };
        let (src_mac, dst_mac) = (eth.src_addr().0, eth.dst_addr().0);
        let our_mac = self.link(side).mac;
        if src_mac == our_mac {
            return self.drop(DropReason::OwnFrame);
        }
        if !frames::is_unicast_mac(src_mac) {
            return self.drop(DropReason::Malformed);
        }
        if eth.ethertype() != EthernetProtocol::Ipv6 {
            return self.not_proxied();
        }
        let Ok(packet) = Ipv6Packet::new_checked(eth.payload()) else {
            return self.drop(DropReason::Malformed);
        };
        let Ok(ip) = Ipv6Repr::parse(&packet) else {
            return self.drop(DropReason::Malformed);
        };
        let icmp = packet.payload();
        let is_ndisc = ip.next_header == IpProtocol::Icmpv6
            && matches!(
                icmp.first().map(|t| Icmpv6Message::from(*t)),
                Some(Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert)
            );
        if !is_ndisc || self.prefix.is_none() {
            return self.not_proxied();
        }
        if dst_mac != our_mac && !frames::is_group_mac(dst_mac) {
            return self.drop(DropReason::NotForUs);
        }
        let repr = match parse_ndisc(&ip, icmp) {
            Ok(Icmpv6Repr::Ndisc(repr)) => repr,
            Err(NdpError::Checksum) => return self.drop(DropReason::ChecksumBad),
            Ok(_) | Err(NdpError::Invalid) => {
                return self.drop(if icmp[0] == u8::from(Icmpv6Message::NeighborSolicit) {
                    DropReason::NsBad
                } else {
                    DropReason::NaBad
                })
            }
        };
        match repr {
            NdiscRepr::NeighborSolicit {
                target_addr,
                lladdr,
            } => {
                let Ok(lla) = option_lladdr(lladdr) else {
                    return self.drop(DropReason::NsBad);
                };
                self.handle_ns(now, side, src_mac, &ip, target_addr, lla, out)
            }
            NdiscRepr::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            } => {
                let Ok(lla) = option_lladdr(lladdr) else {
                    return self.drop(DropReason::NaBad);
                };
                self.handle_na(now, side, src_mac, &ip, flags, target_addr, lla, out)
            }
            _ => self.not_proxied(),
        }
    }

    /// The LAN neighbor table confirmed `addr` at `mac` just now (the
    /// neighbor engine's REACHABLE entries): as good as a LAN NA. Creates
    /// the entry if there is room (evicting the oldest STALE one), and
    /// answers WAN solicitors waiting for it.
    pub fn note_lan_neighbor(
        &mut self,
        now: Instant,
        addr: Ipv6Addr,
        mac: Mac,
        out: &mut Vec<Outgoing>,
    ) {
        if !self.in_prefix(addr) || self.own.contains(&addr) || !frames::is_unicast_mac(mac) {
            return;
        }
        self.counters.neighbor_noted += 1;
        self.confirm(now, addr, mac, true, out);
    }

    /// Runs the timers due at `now`; returns the next deadline.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> Option<Instant> {
        let Self {
            cfg,
            lan,
            entries,
            pending,
            buckets,
            generation,
            counters,
            ..
        } = self;
        let lan_bucket = &mut buckets[Side::Lan.idx()];
        entries.retain(|addr, e| {
            if e.state == ProxyState::Reachable && e.timer <= now {
                e.state = ProxyState::Stale;
            }
            match e.state {
                ProxyState::Incomplete if e.timer <= now => {
                    if e.probes >= cfg.max_multicast_solicit {
                        counters.verify_failed += 1;
                        *pending -= 1;
                        log::debug!("ndproxy: nobody on the LAN holds {addr}");
                        return false;
                    }
                    if lan_bucket.take(now, cfg.solicit_rate, cfg.solicit_burst) {
                        out.push(solicit(lan, *addr, None));
                        counters.verify_ns_tx += 1;
                    } else {
                        counters.rate_limited += 1;
                    }
                    e.probes += 1;
                    e.timer = now + cfg.retrans;
                    true
                }
                ProxyState::Probe if e.timer <= now => {
                    if e.probes >= cfg.max_unicast_solicit {
                        counters.probe_failed += 1;
                        *generation += 1;
                        log::debug!("ndproxy: {addr} no longer answers on the LAN");
                        return false;
                    }
                    out.push(solicit(lan, *addr, Some(e.mac)));
                    counters.probe_ns_tx += 1;
                    e.probes += 1;
                    e.timer = now + cfg.retrans;
                    true
                }
                ProxyState::Stale if e.confirmed + cfg.stale_lifetime <= now => {
                    counters.aged_out += 1;
                    *generation += 1;
                    false
                }
                _ => true,
            }
        });
        self.dad.retain(|d| d.until > now);
        self.next_deadline()
    }

    /// Every entry, sorted by address, for `ipoectl` and the dataplane.
    pub fn entries(&self, now: Instant) -> Vec<ProxyEntry> {
        let mut rows: Vec<ProxyEntry> = self
            .entries
            .iter()
            .map(|(addr, e)| ProxyEntry {
                addr: *addr,
                mac: (e.state != ProxyState::Incomplete).then_some(e.mac),
                state: e.state,
                age: now.saturating_duration_since(e.confirmed),
            })
            .collect();
        rows.sort_by_key(|r| r.addr);
        rows
    }

    /// Bumped whenever a verified entry appears, changes MAC or goes.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn prefix(&self) -> Option<Ipv6Addr> {
        self.prefix
    }

    pub fn counters(&self) -> &NdProxyCounters {
        &self.counters
    }

    fn link(&self, side: Side) -> &Link {
        match side {
            Side::Wan => &self.wan,
            Side::Lan => &self.lan,
        }
    }

    fn in_prefix(&self, addr: Ipv6Addr) -> bool {
        self.prefix.is_some_and(|p| network64(addr) == p)
    }

    fn not_proxied(&mut self) -> Verdict {
        self.counters.not_proxied += 1;
        Verdict::NotProxied
    }

    fn drop(&mut self, reason: DropReason) -> Verdict {
        let c = &mut self.counters;
        *match reason {
            DropReason::Malformed => &mut c.malformed,
            DropReason::ChecksumBad => &mut c.checksum_bad,
            DropReason::NsBad => &mut c.ns_bad,
            DropReason::NaBad => &mut c.na_bad,
            DropReason::NotForUs => &mut c.not_for_us,
            DropReason::OwnFrame => &mut c.own_frame,
            DropReason::NaUnsolicited => &mut c.na_unsolicited,
            // Counted per side where the conflict is found.
            DropReason::Conflict => return Verdict::Dropped(reason),
            DropReason::PendingFull => &mut c.pending_full,
            DropReason::DadPendingFull => &mut c.dad_pending_full,
            DropReason::RateLimited => &mut c.rate_limited,
        } += 1;
        Verdict::Dropped(reason)
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_ns(
        &mut self,
        now: Instant,
        side: Side,
        src_mac: Mac,
        ip: &Ipv6Repr,
        target: Ipv6Addr,
        lla: Option<Mac>,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        if !self.in_prefix(target) {
            return self.not_proxied();
        }
        // RFC 4861 7.1.1: DAD comes from ::, to the solicited-node group,
        // without a source link-layer address.
        let from_dad = ip.src_addr.is_unspecified();
        if ip.src_addr.is_multicast()
            || (from_dad && (!frames::is_solicited_node(ip.dst_addr) || lla.is_some()))
        {
            return self.drop(DropReason::NsBad);
        }
        if ip.dst_addr.is_multicast() {
            if ip.dst_addr != frames::solicited_node(target) {
                return self.drop(DropReason::NotForUs);
            }
        } else if ip.dst_addr != target {
            // A unicast NS (NUD) is addressed to the target itself.
            return self.drop(DropReason::NotForUs);
        }
        match side {
            Side::Wan => {
                self.counters.wan_ns_rx += 1;
                if from_dad {
                    return self.wan_dad(now, target, out);
                }
                let solicitor = Waiter {
                    ip: ip.src_addr,
                    mac: lla.unwrap_or(src_mac),
                };
                self.wan_ns(now, target, solicitor, out)
            }
            Side::Lan => {
                // Non-DAD LAN solicitations are the neighbor engine's (our
                // own LAN addresses) or the hosts' among themselves.
                if !from_dad {
                    return self.not_proxied();
                }
                self.counters.lan_dad_rx += 1;
                self.lan_dad(now, target, out)
            }
        }
    }

    /// A WAN neighbor resolves (or probes) `target` in the /64.
    fn wan_ns(
        &mut self,
        now: Instant,
        target: Ipv6Addr,
        solicitor: Waiter,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        if self.own.contains(&target) {
            out.push(advert(Side::Wan, &self.wan, solicitor, target, Flags::Own));
            self.counters.own_na_tx += 1;
            return Verdict::OwnAnswered;
        }
        let Self {
            cfg,
            wan,
            lan,
            entries,
            pending,
            buckets,
            counters,
            ..
        } = self;
        if let Some(e) = entries.get_mut(&target) {
            match e.state {
                ProxyState::Reachable => {
                    out.push(advert(Side::Wan, wan, solicitor, target, Flags::Proxy));
                    counters.proxy_na_tx += 1;
                    return Verdict::ProxyAnswered;
                }
                ProxyState::Stale => {
                    // Verified before: ask the host directly, no token
                    // spent (bounded by the table, see the module doc).
                    out.push(solicit(lan, target, Some(e.mac)));
                    counters.probe_ns_tx += 1;
                    e.state = ProxyState::Probe;
                    e.probes = 1;
                    e.timer = now + cfg.retrans;
                    add_waiter(e, solicitor, counters);
                    return Verdict::Verifying;
                }
                ProxyState::Incomplete | ProxyState::Probe => {
                    add_waiter(e, solicitor, counters);
                    return Verdict::VerifyPending;
                }
            }
        }
        if *pending >= cfg.max_pending {
            return self.drop(DropReason::PendingFull);
        }
        if !buckets[Side::Lan.idx()].take(now, cfg.solicit_rate, cfg.solicit_burst) {
            return self.drop(DropReason::RateLimited);
        }
        out.push(solicit(lan, target, None));
        counters.verify_ns_tx += 1;
        *pending += 1;
        entries.insert(
            target,
            Entry {
                state: ProxyState::Incomplete,
                mac: [0; 6],
                probes: 1,
                timer: now + cfg.retrans,
                confirmed: now,
                waiters: vec![solicitor],
            },
        );
        Verdict::Verifying
    }

    /// A WAN node runs DAD for `target`: defend it if we or a freshly
    /// verified LAN host hold it, else ask the LAN.
    fn wan_dad(&mut self, now: Instant, target: Ipv6Addr, out: &mut Vec<Outgoing>) -> Verdict {
        let own = self.own.contains(&target);
        let fresh = self
            .entries
            .get(&target)
            .is_some_and(|e| e.state == ProxyState::Reachable);
        if own || fresh {
            let flags = if own { Flags::Own } else { Flags::Proxy };
            out.push(defend(Side::Wan, &self.wan, target, flags));
            self.counters.dad_defended_wan += 1;
            return Verdict::DadDefended;
        }
        self.relay_dad(now, Side::Wan, target, out)
    }

    /// A LAN host runs DAD for `target`: defend our own addresses, ask the
    /// WAN about the rest.
    fn lan_dad(&mut self, now: Instant, target: Ipv6Addr, out: &mut Vec<Outgoing>) -> Verdict {
        if self.own.contains(&target) {
            out.push(defend(Side::Lan, &self.lan, target, Flags::Own));
            self.counters.dad_defended_lan += 1;
            return Verdict::DadDefended;
        }
        self.relay_dad(now, Side::Lan, target, out)
    }

    /// Repeats a DAD probe from `origin` on the other side (source ::, as
    /// RFC 4389 4.1.3.2 relays it) and remembers it for RETRANS_TIMER.
    fn relay_dad(
        &mut self,
        now: Instant,
        origin: Side,
        target: Ipv6Addr,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        self.dad.retain(|d| d.until > now);
        if self
            .dad
            .iter()
            .any(|d| d.target == target && d.origin == origin)
        {
            // The node retransmits (DupAddrDetectTransmits > 1): one relay
            // is enough while it waits.
            return Verdict::DadRelayed;
        }
        let waiting = self.dad.iter().filter(|d| d.origin == origin).count();
        if waiting >= self.cfg.max_dad_pending {
            return self.drop(DropReason::DadPendingFull);
        }
        let other = origin.other();
        let (rate, burst) = (self.cfg.solicit_rate, self.cfg.solicit_burst);
        if !self.buckets[other.idx()].take(now, rate, burst) {
            return self.drop(DropReason::RateLimited);
        }
        let link = *self.link(other);
        let group = frames::solicited_node(target);
        let frame = frames::neighbor_solicit(
            link.mac,
            Ipv6Addr::UNSPECIFIED,
            frames::ipv6_multicast_mac(group),
            group,
            target,
        );
        out.push(Outgoing { side: other, frame });
        match other {
            Side::Wan => self.counters.dad_wan_ns_tx += 1,
            Side::Lan => self.counters.dad_lan_ns_tx += 1,
        }
        self.dad.push(DadProbe {
            target,
            origin,
            until: now + self.cfg.retrans,
        });
        Verdict::DadRelayed
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_na(
        &mut self,
        now: Instant,
        side: Side,
        src_mac: Mac,
        ip: &Ipv6Repr,
        flags: NdiscNeighborFlags,
        target: Ipv6Addr,
        lla: Option<Mac>,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        if !self.in_prefix(target) {
            return self.not_proxied();
        }
        // RFC 4861 7.1.2: answers to a solicitation are unicast.
        if !is_unicast6(ip.src_addr)
            || (ip.dst_addr.is_multicast() && flags.contains(NdiscNeighborFlags::SOLICITED))
        {
            return self.drop(DropReason::NaBad);
        }
        let own = self.own.contains(&target);
        let dad_index = self
            .dad
            .iter()
            .position(|d| d.target == target && d.origin == side.other() && d.until > now);
        match side {
            Side::Wan => {
                self.counters.wan_na_rx += 1;
                if let Some(i) = dad_index {
                    // A WAN node holds the address a LAN host probes: its
                    // DAD must fail.
                    self.dad.swap_remove(i);
                    out.push(defend(Side::Lan, &self.lan, target, Flags::Proxy));
                    self.counters.dad_defended_lan += 1;
                    log::info!("ndproxy: {target} is in use on the WAN, defended on the LAN");
                    return Verdict::DadDefended;
                }
                if own || self.entries.contains_key(&target) {
                    self.counters.wan_conflict += 1;
                    log::warn!(
                        "ndproxy: a WAN node advertises {target}, which {} holds",
                        if own { "the router" } else { "a LAN host" }
                    );
                    return self.drop(DropReason::Conflict);
                }
                // A WAN node's own address: the neighbor engine's business.
                self.not_proxied()
            }
            Side::Lan => {
                self.counters.lan_na_rx += 1;
                if own {
                    self.counters.lan_conflict += 1;
                    log::warn!("ndproxy: a LAN host advertises the router's {target}");
                    return self.drop(DropReason::Conflict);
                }
                let mac = lla.unwrap_or(src_mac);
                if let Some(i) = dad_index {
                    self.dad.swap_remove(i);
                    out.push(defend(Side::Wan, &self.wan, target, Flags::Proxy));
                    self.counters.dad_defended_wan += 1;
                    log::info!("ndproxy: {target} is in use on the LAN, defended on the WAN");
                    self.confirm(now, target, mac, true, out);
                    return Verdict::DadDefended;
                }
                if !self.entries.contains_key(&target) {
                    // Never create entries from advertisements nobody asked
                    // for: a LAN host could fill the table.
                    return self.drop(DropReason::NaUnsolicited);
                }
                self.confirm(now, target, mac, false, out);
                Verdict::Confirmed
            }
        }
    }

    /// `addr` is on the LAN at `mac` now: REACHABLE, solicitors answered.
    /// `create`: add it if missing (a known-real host, never a guess).
    fn confirm(
        &mut self,
        now: Instant,
        addr: Ipv6Addr,
        mac: Mac,
        create: bool,
        out: &mut Vec<Outgoing>,
    ) {
        let reachable_until = now + self.cfg.reachable;
        if let Some(e) = self.entries.get_mut(&addr) {
            let was_pending = e.state == ProxyState::Incomplete;
            if was_pending || e.mac != mac {
                self.generation += 1;
            }
            e.state = ProxyState::Reachable;
            e.mac = mac;
            e.probes = 0;
            e.timer = reachable_until;
            e.confirmed = now;
            let waiters = std::mem::take(&mut e.waiters);
            if was_pending {
                self.pending -= 1;
                self.counters.verified += 1;
                log::debug!("ndproxy: {addr} verified on the LAN at {mac:02x?}");
                // It moved to the verified budget: make room there.
                if !self.make_room(Some(addr)) {
                    self.entries.remove(&addr);
                    self.counters.table_full += 1;
                }
            }
            // Answered even if the table had no room: the host is there.
            for w in waiters {
                out.push(advert(Side::Wan, &self.wan, w, addr, Flags::Proxy));
                self.counters.proxy_na_tx += 1;
            }
            return;
        }
        if !create {
            return;
        }
        if !self.make_room(None) {
            self.counters.table_full += 1;
            return;
        }
        self.entries.insert(
            addr,
            Entry {
                state: ProxyState::Reachable,
                mac,
                probes: 0,
                timer: reachable_until,
                confirmed: now,
                waiters: Vec::new(),
            },
        );
        self.generation += 1;
    }

    /// Room for one more verified entry (besides `counted`, already in the
    /// map): evicts the STALE entry confirmed longest ago if needed; false
    /// when every verified entry is fresher than STALE.
    fn make_room(&mut self, counted: Option<Ipv6Addr>) -> bool {
        let verified = self.entries.len() - self.pending - usize::from(counted.is_some());
        if verified < self.cfg.max_entries {
            return true;
        }
        let victim = self
            .entries
            .iter()
            .filter(|(_, e)| e.state == ProxyState::Stale)
            .min_by_key(|(_, e)| e.confirmed)
            .map(|(a, _)| *a);
        match victim {
            Some(v) => {
                self.entries.remove(&v);
                self.counters.evicted += 1;
                self.generation += 1;
                true
            }
            None => false,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let lifetime = self.cfg.stale_lifetime;
        let entries = self.entries.values().map(|e| e.deadline(lifetime));
        let dad = self.dad.iter().map(|d| d.until);
        entries.chain(dad).min()
    }
}

fn add_waiter(e: &mut Entry, w: Waiter, counters: &mut NdProxyCounters) {
    if let Some(known) = e.waiters.iter_mut().find(|k| k.ip == w.ip) {
        known.mac = w.mac;
    } else if e.waiters.len() < MAX_WAITERS {
        e.waiters.push(w);
    } else {
        counters.waiters_dropped += 1;
    }
}

/// Flags of the advertisements we send.
#[derive(Clone, Copy)]
enum Flags {
    /// Our own address: Router and Override, as the neighbor engine does.
    Own,
    /// On a LAN host's behalf: a proxy clears Override (RFC 4861 7.2.8) so
    /// the host's own advertisement would win where both are heard, and
    /// leaves Router clear since the target is a host.
    Proxy,
}

impl Flags {
    fn bits(self) -> NdiscNeighborFlags {
        match self {
            Flags::Own => NdiscNeighborFlags::ROUTER | NdiscNeighborFlags::OVERRIDE,
            Flags::Proxy => NdiscNeighborFlags::empty(),
        }
    }
}

/// A solicited NA for `target` to one solicitor, with our MAC as TLLA.
fn advert(side: Side, link: &Link, to: Waiter, target: Ipv6Addr, flags: Flags) -> Outgoing {
    let frame = frames::neighbor_advert(
        Icmpv6Frame {
            src_mac: link.mac,
            dst_mac: to.mac,
            src_ip: link.link_local,
            dst_ip: to.ip,
            hop_limit: frames::NDP_HOP_LIMIT,
        },
        flags.bits() | NdiscNeighborFlags::SOLICITED,
        target,
    );
    Outgoing { side, frame }
}

/// An unsolicited NA to all nodes: the answer to a DAD probe (RFC 4861
/// 7.2.4), which makes the probing node's DAD fail.
fn defend(side: Side, link: &Link, target: Ipv6Addr, flags: Flags) -> Outgoing {
    let frame = frames::neighbor_advert(
        Icmpv6Frame {
            src_mac: link.mac,
            dst_mac: frames::ipv6_multicast_mac(ALL_NODES),
            src_ip: link.link_local,
            dst_ip: ALL_NODES,
            hop_limit: frames::NDP_HOP_LIMIT,
        },
        flags.bits(),
        target,
    );
    Outgoing { side, frame }
}

/// A LAN NS for `target` from our LAN link-local address: multicast to its
/// solicited-node group, or unicast to `mac` to re-verify a known host.
fn solicit(lan: &Link, target: Ipv6Addr, mac: Option<Mac>) -> Outgoing {
    let (dst_mac, dst_ip) = match mac {
        Some(m) => (m, target),
        None => {
            let group = frames::solicited_node(target);
            (frames::ipv6_multicast_mac(group), group)
        }
    };
    let frame = frames::neighbor_solicit(lan.mac, lan.link_local, dst_mac, dst_ip, target);
    Outgoing {
        side: Side::Lan,
        frame,
    }
}

fn network64(addr: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(addr) & !u128::from(u64::MAX))
}

fn fmt_prefix(p: Option<Ipv6Addr>) -> String {
    p.map_or_else(|| "none".to_owned(), |p| format!("{p}/64"))
}
