//! WAN autoconfiguration: ties the RA/SLAAC engine, the DHCPv6-PD client
//! and the AFTR resolver together and derives what the dataplane needs (WAN
//! address, default router, LAN /64, B4 and AFTR) as one [`Learned`] value.
//!
//! Everything here is sans-IO like the engines it drives: `handle` takes
//! received datagrams, `poll` returns frames to send and the next deadline.
//! The daemon publishes a new dataplane snapshot whenever `learned` changes,
//! so a worker switches from one complete set of addresses to the next.

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipoe_config::{Aftr, B4Source, Config, Dhcpv6Pd, DuidType, IidMode, Ipv6Mode};

use crate::state::{self, StateDir};
use ipoe_proto::dhcp6c::{self, Client, ClientConfig, Event as PdEvent, Lease};
use ipoe_proto::dns::{self, Resolver, ResolverConfig};
use ipoe_proto::hostio::{self, Inbound, Route, Tx};
use ipoe_proto::lan_mode::{LanV6, Mode, ModeSelector, WanView};
use ipoe_proto::neigh::{Mac, Side};
use ipoe_proto::pmtu::TunnelPmtu;
use ipoe_proto::slaac::{self, IidMode as SlaacIid, SlaacConfig, WanRa};

/// DHCPv6 starts on an RA with M or O set; without any RA it starts anyway
/// after this long (RFC 7084 WPD-1: PD does not depend on the RA).
const PD_WITHOUT_RA: Duration = Duration::from_secs(4);
/// Hop limit of what the router sends on the WAN until an RA sets one.
pub const DEFAULT_HOP_LIMIT: u8 = 64;

/// How the AFTR address was learned, for `ipoectl show tunnel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AftrSource {
    Config,
    Dns,
    Dhcpv6Dns,
}

impl AftrSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AftrSource::Config => "config",
            AftrSource::Dns => "dns",
            AftrSource::Dhcpv6Dns => "dhcpv6 (AFTR-Name) + dns",
        }
    }
}

/// What the WAN side has learned, derived on demand. Two equal values mean
/// the dataplane needs no new snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Learned {
    /// Our WAN addresses, tentative ones included (the neighbor engine runs
    /// DAD on them), static first.
    pub wan_candidates: Vec<(Ipv6Addr, u8)>,
    /// The WAN global address in use (passed DAD).
    pub wan_address: Option<Ipv6Addr>,
    pub gateway: Option<Ipv6Addr>,
    pub gateway_mac: Option<Mac>,
    pub delegated: Option<(Ipv6Addr, u8)>,
    pub lan_prefix: Option<Ipv6Addr>,
    pub lan_address: Option<Ipv6Addr>,
    pub b4: Option<Ipv6Addr>,
    pub aftr: Option<Ipv6Addr>,
    pub aftr_source: Option<AftrSource>,
    /// Why a delegated prefix could not be used, if it could not.
    pub pd_error: Option<String>,
    /// The WAN link MTU in use: `wan.mtu`, or the RA's MTU option when
    /// smaller (RFC 4861 6.3.4; never above what is configured).
    pub wan_mtu: u16,
    /// The RA's Cur Hop Limit, for packets the router sends on the WAN.
    pub hop_limit: Option<u8>,
    /// The tunnel's path MTU from Packet Too Big (IPv6 bytes) and the
    /// router that sent it, while one holds for the AFTR in use.
    pub tunnel_pmtu: Option<(u16, Ipv6Addr)>,
    /// The LAN uses the WAN RA's /64 (`lan_prefix`), proxied (issue 19).
    pub proxied: bool,
    /// The same estimate whatever tunnel it is for: (quoted destination,
    /// path MTU, sender). MAP-E keeps it for its BR (map_e.rs).
    pub path_pmtu: Option<(Ipv6Addr, u16, Ipv6Addr)>,
}

/// Drops and oddities of the WAN control traffic; each a named counter.
#[derive(Clone, Debug, Default)]
pub struct WanCounters {
    pub rx_malformed: u64,
    pub rx_bad_checksum: u64,
    pub rx_unexpected: u64,
    pub tx_no_route: u64,
    pub pd_bound: u64,
    pub pd_renewed: u64,
    pub pd_expired: u64,
    pub pd_lost: u64,
    pub prefix_changes: u64,
}

impl WanCounters {
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("rx-malformed", self.rx_malformed),
            ("rx-bad-checksum", self.rx_bad_checksum),
            ("rx-unexpected", self.rx_unexpected),
            ("tx-no-route", self.tx_no_route),
            ("pd-bound", self.pd_bound),
            ("pd-renewed", self.pd_renewed),
            ("pd-expired", self.pd_expired),
            ("pd-lost", self.pd_lost),
            ("prefix-changes", self.prefix_changes),
        ]
    }
}

/// The static parts of the configuration this module reads.
struct Settings {
    mac: Mac,
    link_local: Ipv6Addr,
    static_address: Option<(Ipv6Addr, u8)>,
    static_gateway: Option<Ipv6Addr>,
    static_lan_prefix: Option<Ipv6Addr>,
    lan_address: Option<Ipv6Addr>,
    subnet_id: u32,
    b4_source: Option<B4Source>,
    aftr: Option<Aftr>,
    release_on_shutdown: bool,
    wan_mtu: u16,
}

/// What [`Wan::reconfigure`] redid; the rest kept what it had learned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// SLAAC addresses formed anew (`wan.ipv6.iid` or `slaac` changed).
    pub addresses: bool,
    /// A new DHCPv6 client (its settings changed), confirming the saved
    /// lease with Rebind.
    pub dhcp: bool,
    /// The AFTR name changed: it is resolved again.
    pub resolver: bool,
}

impl std::fmt::Display for Rebuilt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redone: Vec<&str> = [
            (self.addresses, "new SLAAC addresses"),
            (self.dhcp, "new DHCPv6 client (Rebind)"),
            (self.resolver, "new AFTR name"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, what)| *what)
        .collect();
        if redone.is_empty() {
            f.write_str("everything learned kept")
        } else {
            write!(f, "{}; the rest kept", redone.join(", "))
        }
    }
}

pub struct Wan {
    settings: Settings,
    pub ra: WanRa,
    /// Always present: without `wan.ipv6.dhcpv6_pd` it never solicits and
    /// only sends Information-request (DNS on an RA-only line).
    pub dhcp: Option<Client>,
    /// `wan.ipv6.dhcpv6_pd` is configured: the client may solicit.
    pd_enabled: bool,
    /// Where the LAN prefix comes from (`lan.ipv6.mode`).
    pub lan_mode: ModeSelector,
    /// What `dhcp` was built from, to tell at a reload whether it changed.
    pd_config: Option<Dhcpv6Pd>,
    pub resolver: Option<Resolver>,
    /// The name `resolver` looks up.
    resolver_name: Option<String>,
    pub state: StateDir,
    started: bool,
    pd_started: bool,
    pd_deadline: Option<Instant>,
    /// A default router was known at the end of the last `poll`: the first
    /// M/O RA after a time without one restarts a backed-off Solicit.
    had_router: bool,
    pub counters: WanCounters,
    /// The tunnel's path MTU, from Packet Too Big sent to the B4.
    pub pmtu: TunnelPmtu,
    /// The last PTB that lowered it, for the daemon to translate for the
    /// IPv4 sender (RFC 2473 8.3). One slot: only decreases fill it.
    ptb_to_relay: Option<Vec<u8>>,
}

impl Wan {
    pub fn new(config: &Config, mac: Mac, link_local: Ipv6Addr, now: Instant) -> Self {
        let mut state = StateDir::open(&config.control.state_dir);
        let seed = ipoe_proto::osrand::random_u64();
        let ra = WanRa::new(slaac_config(config, mac, &mut state), seed);
        let pd = config.wan.ipv6.dhcpv6_pd.as_ref();
        let dhcp = Some(pd_client(pd, mac, &mut state, now));
        let mut wan = Self {
            settings: settings(config, mac, link_local),
            ra,
            dhcp,
            pd_enabled: pd.is_some(),
            lan_mode: ModeSelector::new(lan_mode(config)),
            pd_config: pd.map(client_part),
            resolver: None,
            resolver_name: None,
            state,
            started: false,
            pd_started: false,
            pd_deadline: None,
            had_router: false,
            counters: WanCounters::default(),
            pmtu: TunnelPmtu::default(),
            ptb_to_relay: None,
        };
        // A restored lease is the LAN's prefix at once (confirmed later).
        wan.update_lan_mode(now);
        wan
    }

    /// A reload: takes the new config and rebuilds only the engines whose
    /// part of it changed. What they learned (routers, SLAAC addresses
    /// that passed DAD, RDNSS, the PD lease, the AFTR answer) would
    /// otherwise be lost until the next RA, DAD and DNS answer, and the
    /// LAN told "no default router" in between (RFC 7084 G-5 is for a
    /// real loss, not a reload).
    pub fn reconfigure(&mut self, config: &Config, now: Instant) -> Rebuilt {
        let mac = self.settings.mac;
        self.settings = settings(config, mac, self.settings.link_local);
        let mut rebuilt = Rebuilt::default();
        let slaac = slaac_config(config, mac, &mut self.state);
        if slaac != *self.ra.config() {
            // Routers and RDNSS stay; only the addresses are formed anew.
            self.ra.set_config(now, slaac);
            rebuilt.addresses = true;
        }
        let pd = config.wan.ipv6.dhcpv6_pd.as_ref();
        let pd_config = pd.map(client_part);
        if pd_config != self.pd_config {
            // As at start: the saved lease is confirmed with Rebind.
            let mut client = pd_client(pd, mac, &mut self.state, now);
            if self.ra.other() {
                client.request_information();
            }
            self.dhcp = Some(client);
            self.pd_config = pd_config;
            self.pd_enabled = pd.is_some();
            rebuilt.dhcp = true;
            if self.pd_started {
                self.start_pd(now);
            }
        }
        // The resolver follows the name at the next poll: kept with its
        // answer while the name is the same.
        rebuilt.resolver = self.aftr_name() != self.resolver_name;
        if let Some(t) = self.lan_mode.set_mode(now, lan_mode(config)) {
            log::info!("reload: lan ipv6 {} -> {}", t.from, t.to);
        }
        self.update_lan_mode(now);
        rebuilt
    }

    /// A frame punted from the WAN that the neighbor engine left alone.
    /// Returns whether it was ours.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> bool {
        let inbound = match hostio::classify(frame) {
            Ok(i) => i,
            Err(hostio::Refused::BadChecksum) => {
                self.counters.rx_bad_checksum += 1;
                return true;
            }
            Err(hostio::Refused::Malformed) => {
                self.counters.rx_malformed += 1;
                return true;
            }
            Err(hostio::Refused::NotUdpOrIcmpv6) => return false,
        };
        match inbound {
            Inbound::Icmpv6 {
                src,
                hop_limit,
                message,
                ..
            } if message.first() == Some(&134) => {
                // Counted inside on refusal.
                let _ = self.ra.handle_ra(now, src, hop_limit, message);
                true
            }
            // Packet Too Big about our tunnel packets (issue 15 m1).
            Inbound::Icmpv6 {
                src, dst, message, ..
            } if message.first() == Some(&2) => {
                let ceiling = self.link_mtu();
                match self.pmtu.handle_ptb(now, src, dst, message, ceiling) {
                    Ok(true) => self.ptb_to_relay = Some(message.to_vec()),
                    Ok(false) => {}
                    Err(e) => log::debug!("wan: Packet Too Big from {src} ignored: {e:?}"),
                }
                true
            }
            Inbound::Udp {
                src_port: hostio::DHCP6_SERVER_PORT,
                dst_port: hostio::DHCP6_CLIENT_PORT,
                payload,
                ..
            } => {
                match &mut self.dhcp {
                    Some(c) => c.handle(now, payload),
                    None => self.counters.rx_unexpected += 1,
                }
                true
            }
            // Not ours unless the AFTR resolver asked: the LAN's DNS proxy
            // may have.
            Inbound::Udp {
                src: IpAddr::V6(src),
                src_port,
                dst_port,
                payload,
                ..
            } if src_port == hostio::DNS_PORT => self
                .resolver
                .as_mut()
                .is_some_and(|r| r.handle(now, src, src_port, dst_port, payload)),
            _ => false,
        }
    }

    /// The WAN carrier changed. Down: the routers are forgotten, so the LAN
    /// stops being offered a default route at once. Up: solicit, and
    /// confirm the delegated prefix with Rebind (RFC 8415 18.2.12), or
    /// without one restart a backed-off Solicit from its first timeout.
    pub fn set_link(&mut self, now: Instant, up: bool) {
        if up {
            log::info!("wan: carrier up; soliciting routers and confirming the prefix");
            self.ra.link_up(now);
            if let Some(c) = self.dhcp.as_mut().filter(|_| self.pd_enabled) {
                c.rebind_now(now);
                c.restart_discovery(now);
            }
        } else {
            log::warn!("wan: carrier lost");
            self.ra.link_down(now);
        }
    }

    /// The neighbor engine found another node using `addr`: a SLAAC
    /// address is given up by WanRa, an IA_NA one declined to its server.
    pub fn dad_failed(&mut self, now: Instant, addr: Ipv6Addr) {
        self.ra.dad_failed(now, addr);
        if let Some(c) = &mut self.dhcp {
            c.decline(now, addr);
        }
    }

    /// Runs the engines' timers; `usable` are our WAN addresses that passed
    /// DAD (the link-local one among them once it has), `usable_lan` the
    /// LAN's.
    pub fn poll(
        &mut self,
        now: Instant,
        usable: &[Ipv6Addr],
        usable_lan: &[Ipv6Addr],
        out: &mut Vec<Tx>,
    ) -> Option<Instant> {
        let s = &self.settings;
        let ll_usable = usable.contains(&s.link_local);
        let mut next: Option<Instant> = None;
        let mut soonest = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        // A PD lease that could not be saved (disk full, read-only).
        soonest(self.state.retry(now));
        soonest(self.pmtu.poll(now));
        if !ll_usable {
            // Nothing leaves before our link-local address passed DAD.
            return None;
        }
        if !self.started {
            self.started = true;
            self.ra.start(now);
            self.pd_deadline = Some(now + PD_WITHOUT_RA);
        }

        let mut msgs = Vec::new();
        soonest(self.ra.poll(now, &mut msgs));
        for m in msgs.drain(..) {
            out.push(Tx::Ready(
                Side::Wan,
                hostio::icmpv6_frame(
                    &Route {
                        src_mac: self.settings.mac,
                        dst_mac: hostio::multicast_mac(hostio::ALL_ROUTERS),
                        src: self.settings.link_local,
                        dst: hostio::ALL_ROUTERS,
                        hop_limit: 255,
                    },
                    &m,
                ),
            ));
        }
        for ev in self.ra.drain_events() {
            match ev {
                slaac::Event::Flags { managed, other } if managed || other => {
                    if managed && self.pd_enabled {
                        // RFC 7084 WAA-6: M=1, so ask for an IA_NA too.
                        if let Some(c) = &mut self.dhcp {
                            c.request_address();
                        }
                    }
                    if other {
                        // The RA carries no RDNSS on FLET'S: DNS (and the
                        // AFTR name) come by Information-request while no
                        // lease brings them (RFC 8415 18.2.6).
                        if let Some(c) = &mut self.dhcp {
                            c.request_information();
                        }
                    }
                    if !self.pd_started && self.pd_enabled {
                        log::info!("wan: RA with M={managed} O={other}: starting DHCPv6");
                        self.start_pd(now);
                    }
                }
                // A gateway that booted slower than us (power cut): its
                // first RA ends the wait for a Solicit that backed off.
                slaac::Event::RouterAdded(r)
                    if (r.managed || r.other) && !self.had_router && self.pd_enabled =>
                {
                    if let Some(c) = &mut self.dhcp {
                        c.restart_discovery(now);
                    }
                }
                _ => {}
            }
        }
        self.had_router = self.ra.default_router().is_some();
        if !self.pd_started && self.pd_enabled && self.pd_deadline.is_some_and(|d| d <= now) {
            log::info!("wan: no RA with M/O flags yet; starting DHCPv6-PD anyway");
            self.start_pd(now);
        }
        soonest(
            self.pd_deadline
                .filter(|_| !self.pd_started && self.pd_enabled),
        );

        if let Some(dhcp) = &mut self.dhcp {
            soonest(dhcp.poll(now, &mut msgs));
            for m in msgs.drain(..) {
                out.push(Tx::Ready(Side::Wan, dhcp_frame(&self.settings, &m)));
            }
            for ev in dhcp.drain_events() {
                self.on_pd_event(now, ev);
            }
        }
        self.update_lan_mode(now);
        soonest(self.lan_mode.next_deadline());

        let learned = self.learned(usable);
        // DNS leaves from a global address of ours that passed DAD (an
        // answer to a tentative one would be refused), through the default
        // router: the server is usually off-link.
        let dns_source = learned
            .wan_address
            .or(learned.lan_address.filter(|a| usable_lan.contains(a)));
        self.update_resolver(now, dns_source.is_some() && learned.gateway.is_some());
        if let Some(r) = &mut self.resolver {
            let mut queries = Vec::new();
            soonest(r.poll(now, &mut queries));
            for q in queries {
                let (Some(src), Some(gw)) = (dns_source, learned.gateway) else {
                    self.counters.tx_no_route += 1;
                    continue;
                };
                let frame = hostio::udp_frame(
                    &Route {
                        src_mac: self.settings.mac,
                        dst_mac: [0; 6],
                        src,
                        dst: q.server,
                        // RFC 4861 6.3.4: the routers' Cur Hop Limit.
                        hop_limit: learned.hop_limit.unwrap_or(DEFAULT_HOP_LIMIT),
                    },
                    q.src_port,
                    hostio::DNS_PORT,
                    &q.payload,
                );
                out.push(Tx::Via(Side::Wan, IpAddr::V6(gw), frame));
            }
            for ev in r.drain_events() {
                match ev {
                    dns::Event::Resolved(a) => log::info!(
                        "dslite: AFTR {} resolves to {a}",
                        self.resolver_name.as_deref().unwrap_or("?")
                    ),
                    dns::Event::Failed(why) => log::warn!(
                        "dslite: resolving AFTR {}: {why}",
                        self.resolver_name.as_deref().unwrap_or("?")
                    ),
                }
            }
        }
        next
    }

    fn start_pd(&mut self, now: Instant) {
        self.pd_started = true;
        if let Some(c) = self.dhcp.as_mut().filter(|_| self.pd_enabled) {
            // A restored lease is already being confirmed by Rebind.
            if c.state() == dhcp6c::State::Idle {
                c.start(now);
            }
        }
    }

    fn on_pd_event(&mut self, now: Instant, ev: PdEvent) {
        match ev {
            PdEvent::Bound(l) => {
                self.counters.pd_bound += 1;
                self.counters.prefix_changes += 1;
                log::info!(
                    "dhcpv6-pd: bound {}/{} (T1 {} s, T2 {} s, preferred {} s, valid {} s)",
                    l.prefix,
                    l.prefix_len,
                    l.t1,
                    l.t2,
                    l.preferred,
                    l.valid
                );
                self.state.save_pd_lease(&l, now);
            }
            PdEvent::Renewed(l) => {
                self.counters.pd_renewed += 1;
                log::info!("dhcpv6-pd: {}/{} renewed", l.prefix, l.prefix_len);
                self.state.save_pd_lease(&l, now);
            }
            PdEvent::Expired(l) => {
                self.counters.pd_expired += 1;
                log::warn!(
                    "dhcpv6-pd: {}/{} expired without renewal; withdrawn",
                    l.prefix,
                    l.prefix_len
                );
                self.state.remove(state::PD_LEASE_FILE);
            }
            PdEvent::Lost(l) => {
                self.counters.pd_lost += 1;
                log::warn!("dhcpv6-pd: server withdrew {}/{}", l.prefix, l.prefix_len);
                self.state.remove(state::PD_LEASE_FILE);
            }
        }
    }

    /// The AFTR-Name (option 64) DHCPv6 gave: the lease's, else the
    /// stateless Reply's. For discovery, whatever the config says.
    pub fn dhcpv6_aftr_name(&self) -> Option<String> {
        self.dhcp.as_ref().and_then(|c| match c.lease() {
            Some(l) => l.aftr_name.clone(),
            None => c.information().and_then(|i| i.aftr_name.clone()),
        })
    }

    /// The AFTR name to resolve now, if any.
    fn aftr_name(&self) -> Option<String> {
        match &self.settings.aftr {
            Some(Aftr::Name(n)) => Some(n.clone()),
            // The lease's option, else the stateless Reply's.
            Some(Aftr::Dhcpv6) => self.dhcp.as_ref().and_then(|c| match c.lease() {
                Some(l) => l.aftr_name.clone(),
                None => c.information().and_then(|i| i.aftr_name.clone()),
            }),
            _ => None,
        }
    }

    /// DNS servers learned on the WAN: DHCPv6 first (asked for by name:
    /// the lease's, else the Information-request Reply's), then RDNSS.
    pub fn dns_servers(&self, now: Instant) -> Vec<Ipv6Addr> {
        let mut servers: Vec<Ipv6Addr> = self
            .dhcp
            .as_ref()
            .map(|c| c.dns_servers().to_vec())
            .unwrap_or_default();
        for s in self.ra.dns_servers(now) {
            if !servers.contains(&s) {
                servers.push(s);
            }
        }
        servers
    }

    /// Follows the AFTR name; `routable`: a query can leave now.
    fn update_resolver(&mut self, now: Instant, routable: bool) {
        let name = self.aftr_name();
        if name != self.resolver_name {
            self.resolver = name.as_ref().map(|n| {
                log::info!("dslite: AFTR name {n}, resolving it");
                Resolver::new(ResolverConfig {
                    name: n.clone(),
                    min_ttl: Duration::from_secs(30),
                    max_ttl: Duration::from_secs(24 * 3600),
                    retry_initial: Duration::from_secs(1),
                    retry_max: Duration::from_secs(60),
                })
            });
            self.resolver_name = name;
        }
        // Without a source address or a router a query cannot leave; the
        // resolver waits rather than time out queries it never sent.
        let servers = if routable {
            self.dns_servers(now)
        } else {
            Vec::new()
        };
        if let Some(r) = &mut self.resolver {
            r.set_servers(now, &servers);
        }
    }

    /// The PTB (ICMPv6 message) that last lowered the tunnel's path MTU,
    /// once.
    pub fn take_ptb_to_relay(&mut self) -> Option<Vec<u8>> {
        self.ptb_to_relay.take()
    }

    /// The WAN link MTU: the RA's MTU option within the configured one
    /// (RFC 4861 6.3.4: a host adopts it; the config is what the interface
    /// and the receive path were sized for).
    pub fn link_mtu(&self) -> u16 {
        let configured = self.settings.wan_mtu;
        match self.ra.mtu() {
            Some(m) if m >= u32::from(ipoe_proto::pmtu::MIN_MTU) => {
                configured.min(u16::try_from(m).unwrap_or(u16::MAX))
            }
            _ => configured,
        }
    }

    /// The current outcome; `usable` as for [`Self::poll`].
    pub fn learned(&self, usable: &[Ipv6Addr]) -> Learned {
        let s = &self.settings;
        let mut l = Learned {
            wan_mtu: self.link_mtu(),
            hop_limit: self.ra.cur_hop_limit(),
            ..Learned::default()
        };
        if let Some(a) = s.static_address {
            l.wan_candidates.push(a);
        }
        for a in self.ra.addresses() {
            if !l.wan_candidates.iter().any(|c| c.0 == a.addr) {
                l.wan_candidates.push((a.addr, a.prefix_len));
            }
        }
        // The IA_NA address (a /128, RFC 8415 21.6): the neighbor engine
        // runs DAD on it and answers for it like any other; it can be the
        // B4 and the DNS source. The client drops it when it expires.
        let na = self.dhcp.as_ref().and_then(|c| c.lease()?.address);
        if let Some((addr, _, _)) = na {
            if !l.wan_candidates.iter().any(|c| c.0 == addr) {
                l.wan_candidates.push((addr, 128));
            }
        }
        l.wan_address = l
            .wan_candidates
            .iter()
            .map(|c| c.0)
            .find(|a| usable.contains(a));

        match s.static_gateway {
            Some(gw) => l.gateway = Some(gw),
            None => {
                if let Some(r) = self.ra.default_router() {
                    l.gateway = Some(r.addr);
                    l.gateway_mac = r.mac;
                }
            }
        }

        let lease = self.dhcp.as_ref().and_then(|c| c.lease());
        l.delegated = lease.map(|l| (l.prefix, l.prefix_len));
        // A delegation wins in auto and pd at once, as the selector
        // decides at the next poll: a Reply handled since is used now.
        let source = match self.lan_mode.mode() {
            Mode::Auto | Mode::Pd if l.delegated.is_some() => LanV6::Pd,
            _ => self.lan_mode.current(),
        };
        match source {
            LanV6::Static => l.lan_prefix = s.static_lan_prefix,
            LanV6::Pd => {
                if let Some((p, len)) = l.delegated {
                    match subnet(p, len, u64::from(s.subnet_id)) {
                        Ok(lan) => l.lan_prefix = Some(lan),
                        Err(e) => l.pd_error = Some(e),
                    }
                }
            }
            LanV6::Proxy(p) => {
                l.lan_prefix = Some(p);
                l.proxied = true;
            }
            LanV6::Waiting => {}
        }
        l.lan_address = match (s.static_lan_prefix, s.lan_address) {
            // A configured address belongs to the configured prefix.
            (Some(_), Some(a)) => Some(a),
            // The /64 is the WAN's: its ::1 may be anyone's there. The
            // router's WAN address in it serves the LAN too (weak host:
            // DNS proxy, RDNSS), reached through the router (L=0).
            _ if l.proxied => l
                .wan_address
                .filter(|a| l.lan_prefix == Some(network64(*a))),
            _ => l.lan_prefix.map(|p| with_iid(p, 1)),
        };

        l.b4 = match s.b4_source {
            None => None,
            Some(B4Source::Wan) => l.wan_address,
            Some(B4Source::Delegated) => match l.delegated {
                Some((p, len)) if len <= 64 => Some(with_iid(subnet_zero(p, len), 1)),
                // Nothing delegated on a proxied line: the WAN address.
                _ if l.proxied => l.wan_address,
                _ => s.static_lan_prefix.and(l.lan_address),
            },
        };
        match &s.aftr {
            Some(Aftr::Address(a)) => {
                l.aftr = Some(*a);
                l.aftr_source = Some(AftrSource::Config);
            }
            Some(kind) => {
                if let Some(r) = self.resolver.as_ref().and_then(|r| r.answer()) {
                    l.aftr = Some(r.addr);
                    l.aftr_source = Some(if *kind == Aftr::Dhcpv6 {
                        AftrSource::Dhcpv6Dns
                    } else {
                        AftrSource::Dns
                    });
                }
            }
            None => {}
        }
        l.tunnel_pmtu = self
            .pmtu
            .learned()
            .filter(|p| Some(p.dst) == l.aftr)
            .map(|p| (p.mtu.min(l.wan_mtu), p.from));
        l.path_pmtu = self
            .pmtu
            .learned()
            .map(|p| (p.dst, p.mtu.min(l.wan_mtu), p.from));
        l
    }

    /// Feeds the LAN prefix selector what the WAN knows now; it logs a
    /// change with its reason.
    fn update_lan_mode(&mut self, now: Instant) {
        let view = WanView {
            delegation: self.lease().is_some(),
            ra_prefix: self.ra_prefix(now).map(|a| a.addr),
            managed: self.ra.managed(),
            pd_client: self.pd_enabled,
        };
        self.lan_mode.update(now, view);
    }

    /// The WAN RA's /64 the LAN could use: the SLAAC address formed in it
    /// (valid, the preferred one first: after a renumbering the new /64).
    pub fn ra_prefix(&self, now: Instant) -> Option<ipoe_proto::slaac::SlaacAddress> {
        let live: Vec<_> = self
            .ra
            .addresses()
            .into_iter()
            .filter(|a| a.prefix_len == 64 && a.valid_until.is_none_or(|v| v > now))
            .collect();
        live.iter()
            .find(|a| !a.deprecated(now))
            .or(live.first())
            .copied()
    }

    /// The proxied /64 with its preferred and valid ends (the WAN RA's,
    /// which bound the LAN RA's; `None` = infinite).
    pub fn proxied_prefix(
        &self,
        now: Instant,
    ) -> Option<(Ipv6Addr, Option<Instant>, Option<Instant>)> {
        let LanV6::Proxy(p) = self.lan_mode.current() else {
            return None;
        };
        let a = self
            .ra
            .addresses()
            .into_iter()
            .filter(|a| network64(a.addr) == p)
            .max_by_key(|a| {
                a.valid_until
                    .map_or(u128::MAX, |v| v.saturating_duration_since(now).as_nanos())
            });
        Some(match a {
            Some(a) => (p, a.preferred_until, a.valid_until),
            // Gone from the RA: advertise it as ending now.
            None => (p, Some(now), Some(now)),
        })
    }

    /// The DHCPv6 transaction whose replies the punt reserve lets through:
    /// the PD exchange, else the Information-request.
    pub fn reserved_xid(&self) -> Option<u32> {
        let c = self.dhcp.as_ref()?;
        c.open_xid().or(c.information_xid())
    }

    pub fn pd_enabled(&self) -> bool {
        self.pd_enabled
    }

    /// The Release to send at shutdown, if configured (RFC 9096 advises
    /// against it: the LAN keeps its addresses across a restart).
    pub fn shutdown(&mut self, now: Instant) -> Option<Vec<u8>> {
        if !self.settings.release_on_shutdown {
            return None;
        }
        let msg = self.dhcp.as_mut()?.release(now)?;
        self.state.remove(state::PD_LEASE_FILE);
        Some(dhcp_frame(&self.settings, &msg))
    }

    pub fn lease(&self) -> Option<&Lease> {
        self.dhcp.as_ref().and_then(|c| c.lease())
    }

    /// The LAN /64s of the delegation's other prefixes (those the server
    /// keeps beside the one in use, e.g. the old one deprecated while it
    /// renumbers), with the end of their valid lifetime; `None` = infinite.
    pub fn other_lan_prefixes(&self) -> Vec<(Ipv6Addr, Option<Instant>)> {
        let Some(lease) = self.lease() else {
            return Vec::new();
        };
        if self.settings.static_lan_prefix.is_some() {
            return Vec::new();
        }
        lease
            .extra_prefixes
            .iter()
            .filter_map(|p| {
                let lan =
                    subnet(p.prefix, p.prefix_len, u64::from(self.settings.subnet_id)).ok()?;
                let until = (p.valid != u32::MAX)
                    .then(|| {
                        lease
                            .obtained
                            .checked_add(Duration::from_secs(u64::from(p.valid)))
                    })
                    .flatten();
                Some((lan, until))
            })
            .collect()
    }
}

/// A DHCPv6 client message to All_DHCP_Relay_Agents_and_Servers, from our
/// link-local address (RFC 8415 7.1, 13.1).
fn dhcp_frame(s: &Settings, msg: &[u8]) -> Vec<u8> {
    hostio::udp_frame(
        &Route {
            src_mac: s.mac,
            dst_mac: hostio::multicast_mac(hostio::ALL_DHCP_SERVERS),
            src: s.link_local,
            dst: hostio::ALL_DHCP_SERVERS,
            hop_limit: 1,
        },
        hostio::DHCP6_CLIENT_PORT,
        hostio::DHCP6_SERVER_PORT,
        msg,
    )
}

/// The parts of the config [`Settings`] holds.
fn settings(config: &Config, mac: Mac, link_local: Ipv6Addr) -> Settings {
    let v6 = &config.wan.ipv6;
    let ds = config.dslite.as_ref();
    Settings {
        mac,
        link_local,
        static_address: v6.address.map(|c| (c.addr, c.len)),
        static_gateway: v6.gateway,
        static_lan_prefix: config.lan.ipv6.prefix.map(|p| p.addr()),
        lan_address: config.lan.ipv6.address,
        subnet_id: config.lan.ipv6.subnet_id,
        b4_source: ds.map(|d| d.b4_address),
        aftr: ds.map(|d| d.aftr.clone()),
        release_on_shutdown: v6.dhcpv6_pd.as_ref().is_some_and(|p| p.release_on_shutdown),
        wan_mtu: config.wan.mtu,
    }
}

fn slaac_config(config: &Config, mac: Mac, state: &mut StateDir) -> SlaacConfig {
    let v6 = &config.wan.ipv6;
    let iid = match v6.iid {
        IidMode::Eui64 => SlaacIid::Eui64,
        IidMode::StablePrivacy => SlaacIid::StablePrivacy {
            secret: state.stable_privacy_secret(),
        },
    };
    SlaacConfig {
        mac,
        ifname: config.wan.interface.as_str().to_owned(),
        iid,
        autoconf: v6.slaac,
    }
}

/// What the DHCPv6 client is built from: all but `release_on_shutdown`,
/// which only the shutdown reads.
fn client_part(pd: &Dhcpv6Pd) -> Dhcpv6Pd {
    Dhcpv6Pd {
        release_on_shutdown: false,
        ..pd.clone()
    }
}

/// `lan.ipv6.mode` for the selector; a configured prefix is what `auto`
/// uses (the config refuses it with `pd` or `proxy`).
fn lan_mode(config: &Config) -> Mode {
    let v6 = &config.lan.ipv6;
    match v6.mode {
        _ if v6.prefix.is_some() => Mode::Static,
        Ipv6Mode::Auto => Mode::Auto,
        Ipv6Mode::Pd => Mode::Pd,
        Ipv6Mode::Proxy => Mode::Proxy,
        Ipv6Mode::Static => Mode::Static,
    }
}

fn network64(a: Ipv6Addr) -> Ipv6Addr {
    with_iid(a, 0)
}

/// The DHCPv6 client with the saved DUID and, with `wan.ipv6.dhcpv6_pd`,
/// the saved lease (confirmed with Rebind). Without it the client is only
/// started for Information-request.
fn pd_client(pd: Option<&Dhcpv6Pd>, mac: Mac, state: &mut StateDir, now: Instant) -> Client {
    let enabled = pd.is_some();
    let default = Dhcpv6Pd::default();
    let pd = pd.unwrap_or(&default);
    let duid = state.duid(|| match pd.duid_type {
        DuidType::Ll => dhcp6c::duid_ll(mac),
        DuidType::Llt => dhcp6c::duid_llt(mac, seconds_since_2000()),
        DuidType::Uuid => {
            let mut uuid = [0u8; 16];
            ipoe_proto::osrand::fill_random(&mut uuid);
            // RFC 4122 version 4, variant 1.
            uuid[6] = (uuid[6] & 0x0f) | 0x40;
            uuid[8] = (uuid[8] & 0x3f) | 0x80;
            dhcp6c::duid_uuid(uuid)
        }
    });
    let mut client = Client::new(
        ClientConfig {
            duid,
            // Stable across restarts and unique per interface: the low
            // bytes of the MAC.
            iaid: u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]),
            prefix_hint: pd.prefix_hint,
            request_na: pd.request_na,
            rapid_commit: pd.rapid_commit,
        },
        ipoe_proto::osrand::random_u64(),
    );
    // A line without PD still has DNS to learn: NoPrefixAvail asks for it.
    client.set_stateless_fallback(true);
    if let Some(lease) = state.load_pd_lease(now).filter(|_| enabled) {
        log::info!(
            "dhcpv6-pd: saved lease {}/{} found, confirming it with Rebind",
            lease.prefix,
            lease.prefix_len
        );
        client.restore(lease, now);
    }
    client
}

fn seconds_since_2000() -> u32 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    unix.saturating_sub(946_684_800) as u32
}

/// `prefix` with the low 64 bits replaced by `iid`.
pub fn with_iid(prefix: Ipv6Addr, iid: u64) -> Ipv6Addr {
    let hi = u128::from(prefix) & !u128::from(u64::MAX);
    Ipv6Addr::from(hi | u128::from(iid))
}

fn subnet_zero(prefix: Ipv6Addr, len: u8) -> Ipv6Addr {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    Ipv6Addr::from(u128::from(prefix) & mask)
}

/// The /64 numbered `id` inside `prefix/len` (the "sla-id" of the user's
/// dhcp6c.conf): 2001:db8:0:110::/60 with id 1 is 2001:db8:0:111::/64.
pub fn subnet(prefix: Ipv6Addr, len: u8, id: u64) -> Result<Ipv6Addr, String> {
    if len > 64 {
        return Err(format!(
            "delegated prefix {prefix}/{len} is longer than /64: no LAN /64 can be made from it"
        ));
    }
    let bits = 64 - u32::from(len);
    let count = 1u128 << bits;
    if u128::from(id) >= count {
        return Err(format!(
            "delegated prefix {prefix}/{len} holds {count} /64 subnet(s), 0 to {}; \
             lan.ipv6.subnet_id {id} does not fit",
            count - 1
        ));
    }
    let base = u128::from(subnet_zero(prefix, len));
    Ok(Ipv6Addr::from(base | (u128::from(id) << 64)))
}

#[cfg(test)]
mod issue15_tests;
#[cfg(test)]
mod ra_only_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn lan_subnets_of_56_and_60() {
        let p60 = a("2001:db8:0:110::");
        assert_eq!(subnet(p60, 60, 0).unwrap(), a("2001:db8:0:110::"));
        assert_eq!(subnet(p60, 60, 1).unwrap(), a("2001:db8:0:111::"));
        assert_eq!(subnet(p60, 60, 15).unwrap(), a("2001:db8:0:11f::"));
        assert!(subnet(p60, 60, 16)
            .unwrap_err()
            .contains("holds 16 /64 subnet(s), 0 to 15"));
        let p56 = a("2001:db8:0:200::");
        assert_eq!(subnet(p56, 56, 0).unwrap(), a("2001:db8:0:200::"));
        assert_eq!(subnet(p56, 56, 1).unwrap(), a("2001:db8:0:201::"));
        assert_eq!(subnet(p56, 56, 255).unwrap(), a("2001:db8:0:2ff::"));
        assert!(subnet(p56, 56, 256).is_err());
        // Host bits in the delegated prefix are ignored, not or-ed in.
        assert_eq!(
            subnet(a("2001:db8:0:21f::5"), 56, 2).unwrap(),
            a("2001:db8:0:202::")
        );
        assert_eq!(subnet(a("2001:db8::"), 64, 0).unwrap(), a("2001:db8::"));
        assert!(subnet(a("2001:db8::"), 64, 1).is_err());
        assert!(subnet(a("2001:db8::"), 80, 0)
            .unwrap_err()
            .contains("longer than /64"));
        assert_eq!(
            subnet(a("2001:db8::"), 32, 0xffff_ffff).unwrap(),
            a("2001:db8:ffff:ffff::")
        );
    }

    #[test]
    fn b4_of_a_delegated_prefix_is_subnet_zero_one() {
        assert_eq!(
            with_iid(subnet_zero(a("2001:db8:0:110::"), 60), 1),
            a("2001:db8:0:110::1")
        );
    }
}

#[cfg(test)]
mod mtu_tests;

/// The UDP datagrams among frames the WAN sent: (destination, source
/// port, destination port, payload). For the test rigs.
#[cfg(test)]
fn udp_of(sent: Vec<Tx>) -> Vec<(Ipv6Addr, u16, u16, Vec<u8>)> {
    sent.into_iter()
        .filter_map(|tx| {
            let (Tx::Ready(_, frame) | Tx::Via(_, _, frame)) = tx;
            match hostio::classify(&frame).ok()? {
                Inbound::Udp {
                    dst: IpAddr::V6(dst),
                    src_port,
                    dst_port,
                    payload,
                    ..
                } => Some((dst, src_port, dst_port, payload.to_vec())),
                _ => None,
            }
        })
        .collect()
}

/// The DHCPv6 messages among `udp_of`'s datagrams.
#[cfg(test)]
fn dhcp_of(udp: Vec<(Ipv6Addr, u16, u16, Vec<u8>)>) -> Vec<dhcproto::v6::Message> {
    use dhcproto::Decodable;
    udp.into_iter()
        .filter(|u| u.2 == hostio::DHCP6_SERVER_PORT)
        .map(|u| dhcproto::v6::Message::decode(&mut dhcproto::Decoder::new(&u.3)).unwrap())
        .collect()
}

/// Reload of the WAN config against engines that have learned everything
/// (router, SLAAC address, PD lease, AFTR answer), driven through
/// `handle_frame` and `poll` as the daemon drives them.
#[cfg(test)]
mod reload_tests {
    use super::*;
    use dhcproto::v6::{DhcpOption, DhcpOptions, IAPrefix, Message, MessageType, OptionCode, IAPD};
    use dhcproto::Encodable;
    use ipoe_proto::slaac::ra::{PrefixInfo, RaRepr, Rdnss};

    const MAC: Mac = [2, 0, 0, 0, 2, 2];
    const HGW_MAC: Mac = [2, 0, 0, 0, 3, 1];
    const HGW: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    const DNS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 1);
    const AFTR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xaaaa, 0, 0, 0, 0, 1);

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn yaml(dir: &std::path::Path, pd: &str, aftr: &str, iid: &str) -> Config {
        let text = format!(
            "wan:\n  interface: wan0\n  ipv6:\n    iid: {iid}\n    dhcpv6_pd: {pd}\n\
             lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    subnet_id: 1\n\
             dslite:\n  aftr: {aftr}\n  b4_address: wan\n\
             control:\n  state_dir: {}\n",
            dir.display()
        );
        ipoe_config::parse(&text, "test.yaml").unwrap()
    }

    const PD: &str = "{ prefix_hint: 60 }";

    struct Bench {
        wan: Wan,
        now: Instant,
        usable: Vec<Ipv6Addr>,
        server_duid: Vec<u8>,
    }

    impl Bench {
        fn ll() -> Ipv6Addr {
            crate::iface::link_local(&MAC)
        }

        /// A WAN that learned everything, as in the lab.
        fn learned(tag: &str) -> (Bench, std::path::PathBuf) {
            let dir = std::env::temp_dir().join(format!("ipoed-wan-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let cfg = yaml(&dir, PD, "aftr.lab.example", "eui64");
            let now = Instant::now();
            let mut b = Bench {
                wan: Wan::new(&cfg, MAC, Self::ll(), now),
                now,
                usable: vec![Self::ll()],
                server_duid: vec![0, 3, 0, 1, 2, 0, 0, 0, 3, 1],
            };
            b.poll();
            b.ra();
            // The RA's M flag starts DHCPv6.
            b.poll();
            // DHCPv6: the Solicit (Rapid Commit) and its Reply.
            b.now += Duration::from_secs(2);
            // O=1 also sends an Information-request while no lease is held.
            let solicit = b
                .dhcp_sent()
                .into_iter()
                .find(|m| m.msg_type() == MessageType::Solicit)
                .expect("a Solicit");
            assert_eq!(solicit.msg_type(), MessageType::Solicit);
            b.rapid_reply(&solicit);
            // The SLAAC address passed DAD; the AFTR query and its answer.
            let addr = b.wan.ra.addresses()[0].addr;
            b.usable.push(addr);
            b.now += Duration::from_millis(10);
            let queries = b.dns_sent();
            assert_eq!(queries.len(), 1, "one AAAA query");
            b.answer(&queries[0]);
            let l = b.learned_now();
            assert_eq!(l.gateway, Some(HGW));
            assert_eq!(l.wan_address, Some(addr));
            assert_eq!(l.b4, Some(addr));
            assert_eq!(l.aftr, Some(AFTR));
            assert_eq!(l.lan_prefix, Some(a("2001:db8:0:111::")));
            (b, dir)
        }

        fn poll(&mut self) -> Vec<Tx> {
            let mut out = Vec::new();
            self.wan.poll(self.now, &self.usable, &[], &mut out);
            out
        }

        fn learned_now(&mut self) -> Learned {
            self.poll();
            self.wan.learned(&self.usable)
        }

        fn ra(&mut self) {
            let ra = RaRepr {
                cur_hop_limit: 64,
                managed: true,
                other: true,
                router_lifetime: 1800,
                source_lladdr: Some(HGW_MAC),
                prefixes: vec![PrefixInfo {
                    prefix: a("2001:db8:0:100::"),
                    prefix_len: 64,
                    on_link: true,
                    autonomous: true,
                    valid_lifetime: 86400,
                    preferred_lifetime: 14400,
                }],
                rdnss: vec![Rdnss {
                    lifetime: 1800,
                    servers: vec![DNS],
                }],
                ..RaRepr::default()
            };
            let frame = hostio::icmpv6_frame(
                &Route {
                    src_mac: HGW_MAC,
                    dst_mac: hostio::multicast_mac(a("ff02::1")),
                    src: HGW,
                    dst: a("ff02::1"),
                    hop_limit: 255,
                },
                &ra.emit().unwrap(),
            );
            assert!(self.wan.handle_frame(self.now, &frame));
        }

        fn udp_sent(&mut self) -> Vec<(Ipv6Addr, u16, u16, Vec<u8>)> {
            udp_of(self.poll())
        }

        fn dhcp_sent(&mut self) -> Vec<Message> {
            dhcp_of(self.udp_sent())
        }

        fn dns_sent(&mut self) -> Vec<(Ipv6Addr, u16, Vec<u8>)> {
            self.udp_sent()
                .into_iter()
                .filter(|u| u.2 == hostio::DNS_PORT)
                .map(|u| (u.0, u.1, u.3))
                .collect()
        }

        fn deliver_udp(
            &mut self,
            src: Ipv6Addr,
            src_port: u16,
            dst: Ipv6Addr,
            dst_port: u16,
            payload: &[u8],
        ) {
            let frame = hostio::udp_frame(
                &Route {
                    src_mac: HGW_MAC,
                    dst_mac: MAC,
                    src,
                    dst,
                    hop_limit: 64,
                },
                src_port,
                dst_port,
                payload,
            );
            assert!(self.wan.handle_frame(self.now, &frame));
        }

        fn rapid_reply(&mut self, solicit: &Message) {
            let mut reply = Message::new_with_id(MessageType::Reply, solicit.xid());
            let opts = reply.opts_mut();
            let Some(DhcpOption::ClientId(id)) = solicit.opts().get(OptionCode::ClientId) else {
                panic!("no client id")
            };
            opts.insert(DhcpOption::ClientId(id.clone()));
            opts.insert(DhcpOption::ServerId(self.server_duid.clone()));
            opts.insert(DhcpOption::RapidCommit);
            let Some(DhcpOption::IAPD(pd)) = solicit.opts().get(OptionCode::IAPD) else {
                panic!("no IA_PD")
            };
            let mut pd_opts = DhcpOptions::new();
            pd_opts.insert(DhcpOption::IAPrefix(IAPrefix {
                preferred_lifetime: 3600,
                valid_lifetime: 7200,
                prefix_len: 60,
                prefix_ip: a("2001:db8:0:110::"),
                opts: DhcpOptions::new(),
            }));
            opts.insert(DhcpOption::IAPD(IAPD {
                id: pd.id,
                t1: 1800,
                t2: 2880,
                opts: pd_opts,
            }));
            opts.insert(DhcpOption::DomainNameServers(vec![DNS]));
            let bytes = reply.to_vec().unwrap();
            self.deliver_udp(HGW, 547, Self::ll(), 546, &bytes);
            assert!(self.wan.lease().is_some(), "bound");
        }

        /// The AAAA answer to `query`, from the server it went to.
        fn answer(&mut self, query: &(Ipv6Addr, u16, Vec<u8>)) {
            let (server, port, q) = query;
            // Header and question (labels up to the root, type, class).
            let mut end = 12;
            while q[end] != 0 {
                end += 1 + usize::from(q[end]);
            }
            end += 5;
            let mut msg = q[..end].to_vec();
            msg[2] |= 0x80; // QR
            msg[3] |= 0x80; // RA
            msg[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
            msg.extend_from_slice(&[0xc0, 0x0c, 0, 28, 0, 1, 0, 0, 0x0e, 0x10, 0, 16]);
            msg.extend_from_slice(&AFTR.octets());
            let to = self.usable[1];
            self.deliver_udp(*server, 53, to, *port, &msg);
        }
    }

    /// Review finding 5: a `wan.*` reload that changes nothing the engines
    /// use keeps the router, the SLAAC address (no new DAD), the PD lease
    /// (no Rebind) and the AFTR answer (no query): the LAN sees no change.
    #[test]
    fn f5_wan_reload_keeps_the_default_router_address_lease_and_aftr() {
        let (mut b, dir) = Bench::learned("f5-keep");
        let before = b.learned_now();
        b.now += Duration::from_secs(1);
        let cfg = yaml(
            &dir,
            "{ prefix_hint: 60, release_on_shutdown: true }",
            "aftr.lab.example",
            "eui64",
        );
        assert_eq!(b.wan.reconfigure(&cfg, b.now), Rebuilt::default());
        let after = b.learned_now();
        assert_eq!(after, before);
        assert!(b.dhcp_sent().is_empty(), "no Rebind: the client is kept");
        assert!(b.dns_sent().is_empty(), "no query: the answer is kept");
        assert!(
            b.wan.shutdown(b.now).is_some(),
            "release_on_shutdown applied"
        );
    }

    /// A new AFTR name is resolved again; router, address and lease stay.
    #[test]
    fn f5_wan_reload_of_the_aftr_name_asks_for_it_and_keeps_the_rest() {
        let (mut b, dir) = Bench::learned("f5-aftr");
        let before = b.learned_now();
        let cfg = yaml(&dir, PD, "aftr2.lab.example", "eui64");
        let rebuilt = b.wan.reconfigure(&cfg, b.now);
        assert_eq!(
            rebuilt,
            Rebuilt {
                resolver: true,
                ..Rebuilt::default()
            }
        );
        let queries = b.dns_sent();
        assert_eq!(queries.len(), 1);
        assert!(queries[0].2.windows(5).any(|w| w == b"aftr2"));
        let after = b.wan.learned(&b.usable);
        assert_eq!(
            after.aftr, None,
            "the old name's answer is not the new name's"
        );
        assert_eq!(
            (after.gateway, after.b4, after.lan_prefix),
            (before.gateway, before.b4, before.lan_prefix)
        );
        assert!(b.dhcp_sent().is_empty());
        b.answer(&queries[0]);
        assert_eq!(b.learned_now(), before);
    }

    /// New client settings: a new client confirms the saved lease with
    /// Rebind; the router, the address and the AFTR answer stay.
    #[test]
    fn f5_wan_reload_of_the_pd_client_rebinds_and_keeps_the_rest() {
        let (mut b, dir) = Bench::learned("f5-pd");
        let before = b.learned_now();
        let cfg = yaml(&dir, "{ prefix_hint: 56 }", "aftr.lab.example", "eui64");
        let rebuilt = b.wan.reconfigure(&cfg, b.now);
        assert_eq!(
            rebuilt,
            Rebuilt {
                dhcp: true,
                ..Rebuilt::default()
            }
        );
        let sent = b.dhcp_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].msg_type(), MessageType::Rebind);
        assert_eq!(
            b.wan.learned(&b.usable),
            before,
            "the saved lease is published at once"
        );
        assert!(b.dns_sent().is_empty());
    }

    /// A new interface identifier: new addresses (through DAD), while the
    /// router, the RDNSS servers and the lease stay.
    #[test]
    fn f5_wan_reload_of_the_iid_forms_new_addresses_and_keeps_the_router() {
        let (mut b, dir) = Bench::learned("f5-iid");
        let before = b.learned_now();
        let cfg = yaml(&dir, PD, "aftr.lab.example", "stable-privacy");
        let rebuilt = b.wan.reconfigure(&cfg, b.now);
        assert_eq!(
            rebuilt,
            Rebuilt {
                addresses: true,
                ..Rebuilt::default()
            }
        );
        let after = b.learned_now();
        assert_eq!(after.gateway, before.gateway);
        assert_eq!(after.lan_prefix, before.lan_prefix);
        assert_eq!(after.wan_candidates.len(), 1);
        let new = after.wan_candidates[0].0;
        assert_ne!(Some(new), before.wan_address);
        assert_eq!(after.wan_address, None, "not before DAD");
        assert_eq!(b.wan.dns_servers(b.now), [DNS]);
        assert!(b.dhcp_sent().is_empty());
        b.usable = vec![Bench::ll(), new];
        assert_eq!(b.learned_now().b4, Some(new));
    }
}
