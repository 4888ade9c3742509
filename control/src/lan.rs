//! LAN services: router advertisements, the DHCPv4 and DHCPv6 servers and
//! the DNS proxy, fed from what the WAN learned.
//!
//! Like `wan.rs` this is sans-IO glue: `handle_frame` takes punted LAN
//! frames, `update` takes the WAN's latest `Learned`, `poll` returns frames
//! and the next deadline. Leases and the advertised prefixes are saved in
//! `state_dir` whenever they change.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipoe_config::{Config, Dhcpv6Mode, DnsChoice};
use serde::{Deserialize, Serialize};

use crate::state::StateDir;
use crate::wan::{Learned, Wan};
use ipoe_proto::dhcp4s::{self, Dhcp4Config, Dhcp4Server};
use ipoe_proto::dhcp6s::{self, Dhcp6Server, Dhcp6sConfig, PrefixState};
use ipoe_proto::dnsproxy::{self, DnsProxy, ProxyConfig};
use ipoe_proto::hostio::{self, Inbound, Route, Tx};
use ipoe_proto::lan_ra::{LanPrefix, LanRa, LanRaConfig, RaInputs, StalePrefix};
use ipoe_proto::neigh::{Mac, Side};

pub const DHCP4_LEASES_FILE: &str = "dhcpv4-leases.json";
pub const DHCP6_LEASES_FILE: &str = "dhcpv6-leases.json";
pub const LAN_PREFIXES_FILE: &str = "lan-prefixes.json";

/// Frames that are the LAN services' business, recognised before the
/// neighbor engine sees them (DHCP broadcasts are not addressed to us).
pub fn wants(frame: &[u8]) -> bool {
    match hostio::classify(frame) {
        Ok(Inbound::Udp { dst_port, .. }) => matches!(
            dst_port,
            hostio::DHCP4_SERVER_PORT | hostio::DHCP6_SERVER_PORT | hostio::DNS_PORT
        ),
        Ok(Inbound::Tcp { dst_port, .. }) => dst_port == hostio::DNS_PORT,
        Ok(Inbound::Icmpv6 { message, .. }) => matches!(message.first(), Some(133 | 134)),
        // Broken frames are counted by the handler that owns their kind.
        Err(_) => false,
    }
}

#[derive(Clone, Debug, Default)]
pub struct LanCounters {
    pub rx_malformed: u64,
    pub rx_bad_checksum: u64,
    pub rx_unexpected: u64,
    pub dns_no_upstream_route: u64,
}

impl LanCounters {
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("rx-malformed", self.rx_malformed),
            ("rx-bad-checksum", self.rx_bad_checksum),
            ("rx-unexpected", self.rx_unexpected),
            ("dns-no-upstream-route", self.dns_no_upstream_route),
        ]
    }
}

/// A prefix remembered across restarts, with wall-clock expiry.
#[derive(Serialize, Deserialize)]
struct StoredPrefix {
    prefix: Ipv6Addr,
    valid_until_unix: u64,
}

pub struct Lan {
    mac: Mac,
    /// Source MAC of the DNS proxy's queries upstream.
    wan_mac: Mac,
    link_local: Ipv6Addr,
    ipv4: Ipv4Addr,
    dns_choice: DnsChoice<Ipv6Addr>,
    dnssl: Vec<String>,
    pub ra: LanRa,
    pub dhcp4: Option<Dhcp4Server>,
    pub dhcp6: Option<Dhcp6Server>,
    pub dns: Option<DnsProxy>,
    pub state: StateDir,
    ra_started: bool,
    saved_prefixes: Vec<(Ipv6Addr, u64)>,
    /// The router's LAN IPv6 address (DNS proxy source of its answers).
    lan_address: Option<Ipv6Addr>,
    /// The source and next hop of DNS queries to the upstream servers.
    upstream_route: Option<(Ipv6Addr, Ipv6Addr)>,
    /// Hop limit of those queries: the WAN RA's Cur Hop Limit.
    wan_hop_limit: u8,
    pub counters: LanCounters,
}

impl Lan {
    pub fn new(
        config: &Config,
        mac: Mac,
        wan_mac: Mac,
        link_local: Ipv6Addr,
        duid: Vec<u8>,
        now: Instant,
    ) -> Self {
        let state = StateDir::open(&config.control.state_dir);
        let seed = ipoe_proto::osrand::random_u64();
        let lan = &config.lan;
        let ra_cfg = &lan.ipv6.ra;
        let max_interval = Duration::from_secs(u64::from(ra_cfg.interval));
        let mut ra = LanRa::new(
            LanRaConfig {
                mac,
                mtu: u32::from(lan.mtu),
                max_interval,
                managed: ra_cfg.m_flag,
                other: ra_cfg.o_flag,
                router_lifetime: (max_interval * 3).min(Duration::from_secs(9000)),
            },
            seed,
        );
        let wall = SystemTime::now();
        let stored: Vec<StoredPrefix> = state
            .read(LAN_PREFIXES_FILE)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let stale: Vec<StalePrefix> = stored
            .into_iter()
            .filter_map(|p| {
                let left = Duration::from_secs(p.valid_until_unix)
                    .checked_sub(wall.duration_since(UNIX_EPOCH).ok()?)?;
                Some(StalePrefix {
                    prefix: p.prefix,
                    valid_until: now + left,
                })
            })
            .collect();
        if !stale.is_empty() {
            ra.restore_stale(now, stale);
        }
        let dnssl: Vec<String> = if ra_cfg.dnssl.is_empty() {
            lan.dhcpv4
                .as_ref()
                .and_then(|d| d.domain.as_ref())
                .map(|d| vec![d.0.clone()])
                .unwrap_or_default()
        } else {
            ra_cfg.dnssl.iter().map(|d| d.0.clone()).collect()
        };

        let dhcp4 = lan.dhcpv4.as_ref().map(|d| {
            let range = config.dhcpv4_range().expect("dhcpv4 is on");
            let mut server = Dhcp4Server::new(
                Dhcp4Config {
                    server_ip: lan.ipv4.addr,
                    prefix_len: lan.ipv4.len,
                    range: (range.first, range.last),
                    lease_time: Duration::from_secs(u64::from(d.lease_time.0 .0)),
                    dns: match &d.dns {
                        DnsChoice::List(l) => l.clone(),
                        _ => vec![lan.ipv4.addr],
                    },
                    domain: d.domain.as_ref().map(|d| d.0.clone()),
                    ntp: d.ntp.clone(),
                    mtu: (lan.mtu != 1500).then_some(lan.mtu),
                    static_leases: d
                        .static_leases
                        .iter()
                        .map(|s| dhcp4s::StaticLease {
                            mac: s.mac.0,
                            ip: s.ip,
                            hostname: s.hostname.as_ref().map(|h| h.0.clone()),
                        })
                        .collect(),
                    max_leases: 4096,
                    decline_quarantine: Duration::from_secs(600),
                    offer_hold: Duration::from_secs(60),
                },
                seed.rotate_left(13),
            );
            if let Some(leases) = state
                .read(DHCP4_LEASES_FILE)
                .and_then(|b| serde_json::from_slice::<Vec<dhcp4s::StoredLease>>(&b).ok())
            {
                log::info!("dhcpv4: {} saved lease(s) restored", leases.len());
                server.import(now, wall, leases);
            }
            server
        });

        let dhcp6 = (lan.ipv6.dhcpv6 != Dhcpv6Mode::Off).then(|| {
            let mut server = Dhcp6Server::new(
                Dhcp6sConfig {
                    server_duid: duid,
                    mode: if lan.ipv6.dhcpv6 == Dhcpv6Mode::Stateful {
                        dhcp6s::Mode::Stateful
                    } else {
                        dhcp6s::Mode::Stateless
                    },
                    dns: Vec::new(),
                    domains: dnssl.clone(),
                    info_refresh: Duration::from_secs(86400),
                    preferred: Duration::from_secs(2700),
                    valid: Duration::from_secs(5400),
                    max_leases: 4096,
                },
                seed.rotate_left(29),
            );
            if let Some(leases) = state
                .read(DHCP6_LEASES_FILE)
                .and_then(|b| serde_json::from_slice::<Vec<dhcp6s::StoredLease>>(&b).ok())
            {
                log::info!("dhcpv6: {} saved lease(s) restored", leases.len());
                server.import(now, wall, leases);
            }
            server
        });

        let dns = lan.dns_proxy.then(|| DnsProxy::new(ProxyConfig::default()));

        Self {
            mac,
            wan_mac,
            link_local,
            ipv4: lan.ipv4.addr,
            dns_choice: lan.ipv6.dns.clone(),
            dnssl,
            ra,
            dhcp4,
            dhcp6,
            dns,
            state,
            ra_started: false,
            saved_prefixes: Vec::new(),
            lan_address: None,
            upstream_route: None,
            wan_hop_limit: crate::wan::DEFAULT_HOP_LIMIT,
            counters: LanCounters::default(),
        }
    }

    /// A punted LAN frame that [`wants`] said is ours.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8], out: &mut Vec<Tx>) {
        let inbound = match hostio::classify(frame) {
            Ok(i) => i,
            Err(hostio::Refused::BadChecksum) => {
                self.counters.rx_bad_checksum += 1;
                return;
            }
            Err(_) => {
                self.counters.rx_malformed += 1;
                return;
            }
        };
        match inbound {
            Inbound::Icmpv6 {
                src,
                hop_limit,
                message,
                ..
            } => match message.first() {
                Some(133) => {
                    let _ = self.ra.handle_rs(now, src, hop_limit, message);
                }
                _ => self.ra.handle_foreign_ra(now, src, message),
            },
            Inbound::Udp {
                src,
                src_mac,
                src_port,
                dst,
                dst_port,
                payload,
            } => match (dst_port, src) {
                (hostio::DHCP4_SERVER_PORT, IpAddr::V4(_)) => {
                    let Some(server) = &mut self.dhcp4 else {
                        self.counters.rx_unexpected += 1;
                        return;
                    };
                    if let Some(r) = server.handle(now, src_mac, payload) {
                        out.push(Tx::Ready(
                            Side::Lan,
                            hostio::udp4_frame(
                                self.mac,
                                r.dst_mac,
                                self.ipv4,
                                r.dst_ip,
                                (hostio::DHCP4_SERVER_PORT, hostio::DHCP4_CLIENT_PORT),
                                &r.payload,
                            ),
                        ));
                    }
                }
                (hostio::DHCP6_SERVER_PORT, IpAddr::V6(client)) => {
                    let Some(server) = &mut self.dhcp6 else {
                        self.counters.rx_unexpected += 1;
                        return;
                    };
                    if let Some(reply) = server.handle(now, client, payload) {
                        // To the client's link-local address, at the MAC
                        // it asked from (RFC 8415 18.3).
                        out.push(Tx::Ready(
                            Side::Lan,
                            hostio::udp_frame(
                                &Route {
                                    src_mac: self.mac,
                                    dst_mac: src_mac,
                                    src: self.link_local,
                                    dst: client,
                                    hop_limit: 64,
                                },
                                hostio::DHCP6_SERVER_PORT,
                                hostio::DHCP6_CLIENT_PORT,
                                &reply,
                            ),
                        ));
                    }
                }
                (hostio::DNS_PORT, _) => {
                    let Some(proxy) = &mut self.dns else {
                        self.counters.rx_unexpected += 1;
                        return;
                    };
                    let mut actions = Vec::new();
                    proxy.handle_query(
                        now,
                        SocketAddr::new(src, src_port),
                        dst,
                        payload,
                        &mut actions,
                    );
                    self.dns_actions(actions, out);
                }
                _ => self.counters.rx_unexpected += 1,
            },
            Inbound::Tcp { ip_packet, .. } => match &mut self.dns {
                Some(proxy) => {
                    proxy.push_tcp_ip(now, ip_packet);
                }
                None => self.counters.rx_unexpected += 1,
            },
        }
    }

    /// A DNS answer that arrived on the WAN and was not the AFTR
    /// resolver's: perhaps the proxy's. Returns whether it was.
    pub fn handle_upstream(&mut self, now: Instant, frame: &[u8], out: &mut Vec<Tx>) -> bool {
        let Ok(Inbound::Udp {
            src: IpAddr::V6(src),
            src_port,
            dst_port,
            payload,
            ..
        }) = hostio::classify(frame)
        else {
            return false;
        };
        let Some(proxy) = &mut self.dns else {
            return false;
        };
        let mut actions = Vec::new();
        let ours = proxy.handle_upstream(now, src, src_port, dst_port, payload, &mut actions);
        self.dns_actions(actions, out);
        ours
    }

    fn dns_actions(&mut self, actions: Vec<dnsproxy::Action>, out: &mut Vec<Tx>) {
        for a in actions {
            match a {
                dnsproxy::Action::Reply {
                    to,
                    local,
                    from_port,
                    payload,
                } => match to {
                    SocketAddr::V4(c) => out.push(Tx::Via(
                        Side::Lan,
                        IpAddr::V4(*c.ip()),
                        hostio::udp4_frame(
                            self.mac,
                            [0; 6],
                            match local {
                                IpAddr::V4(a) => a,
                                IpAddr::V6(_) => self.ipv4,
                            },
                            *c.ip(),
                            (from_port, c.port()),
                            &payload,
                        ),
                    )),
                    SocketAddr::V6(c) => {
                        // From the address the client asked.
                        let src = match local {
                            IpAddr::V6(a) => a,
                            IpAddr::V4(_) => match self.lan_address {
                                Some(a) => a,
                                None => continue,
                            },
                        };
                        out.push(Tx::Via(
                            Side::Lan,
                            IpAddr::V6(*c.ip()),
                            hostio::udp_frame(
                                &Route {
                                    src_mac: self.mac,
                                    dst_mac: [0; 6],
                                    src,
                                    dst: *c.ip(),
                                    hop_limit: 64,
                                },
                                from_port,
                                c.port(),
                                &payload,
                            ),
                        ))
                    }
                },
                dnsproxy::Action::Forward {
                    upstream,
                    src_port,
                    payload,
                } => {
                    // Native IPv6 to the WAN's DNS servers, never the tunnel
                    // (RFC 6333 5.5).
                    let Some((src, gw)) = self.upstream_route else {
                        self.counters.dns_no_upstream_route += 1;
                        continue;
                    };
                    out.push(Tx::Via(
                        Side::Wan,
                        IpAddr::V6(gw),
                        hostio::udp_frame(
                            &Route {
                                src_mac: self.wan_mac,
                                dst_mac: [0; 6],
                                src,
                                dst: upstream,
                                hop_limit: self.wan_hop_limit,
                            },
                            src_port,
                            hostio::DNS_PORT,
                            &payload,
                        ),
                    ));
                }
            }
        }
    }

    /// Follows what the WAN learned: the LAN prefix and its lifetimes, the
    /// default route, the DNS servers.
    pub fn update(&mut self, now: Instant, learned: &Learned, wan: &Wan) {
        if self.lan_address != learned.lan_address {
            if let Some(d) = &mut self.dns {
                use smoltcp::wire::{Ipv4Cidr, Ipv6Cidr};
                let v6 = learned
                    .lan_address
                    .map(|a| vec![Ipv6Cidr::new(a, 64)])
                    .unwrap_or_default();
                d.tcp().set_addrs(Some(Ipv4Cidr::new(self.ipv4, 32)), v6);
            }
        }
        self.lan_address = learned.lan_address;
        self.upstream_route = learned
            .wan_address
            .or(learned.lan_address)
            .zip(learned.gateway);
        self.wan_hop_limit = learned.hop_limit.unwrap_or(crate::wan::DEFAULT_HOP_LIMIT);
        let lease = wan.lease();
        let until = |secs: Option<u32>| -> Option<Instant> {
            match (secs, lease) {
                (Some(s), Some(l)) if s != u32::MAX => {
                    Some(l.obtained + Duration::from_secs(u64::from(s)))
                }
                _ => None,
            }
        };
        let proxied = wan.proxied_prefix(now).filter(|_| learned.proxied).map(
            |(prefix, preferred_until, valid_until)| LanPrefix {
                // The WAN RA's lifetimes bound the LAN's (RFC 9096 caps
                // follow in LanRa).
                prefix,
                preferred_until,
                valid_until,
            },
        );
        let prefix = proxied.or_else(|| {
            learned.lan_prefix.map(|p| {
                // A static prefix has no lease: infinite lifetimes.
                let from_pd = learned.delegated.is_some() && wan.lease().is_some();
                LanPrefix {
                    prefix: p,
                    preferred_until: if from_pd {
                        until(lease.map(|l| l.preferred))
                    } else {
                        None
                    },
                    valid_until: if from_pd {
                        until(lease.map(|l| l.valid))
                    } else {
                        None
                    },
                }
            })
        });
        let upstream = wan.dns_servers(now);
        let rdnss: Vec<Ipv6Addr> = match &self.dns_choice {
            DnsChoice::Router => learned.lan_address.into_iter().collect(),
            DnsChoice::Upstream => upstream.clone(),
            DnsChoice::List(l) => l.clone(),
        };
        if let Some(d) = &mut self.dns {
            d.set_upstreams(&upstream);
        }
        // A proxied /64 is the WAN's: no IA_NA from it (stateless only).
        let dhcp6_prefix = prefix
            .as_ref()
            .filter(|_| !learned.proxied)
            .map(|p| PrefixState {
                prefix: p.prefix,
                preferred_until: p.preferred_until,
                valid_until: p.valid_until,
            });
        if let Some(s) = &mut self.dhcp6 {
            if s.config().dns != rdnss {
                let mut cfg = s.config().clone();
                cfg.dns = rdnss.clone();
                s.set_config(cfg);
            }
        }
        self.ra.update(
            now,
            RaInputs {
                prefix,
                default_route: learned.gateway.is_some() && learned.lan_prefix.is_some(),
                rdnss,
                dnssl: self.dnssl.clone(),
            },
        );
        // After the update: a proxied /64 replaced now is deprecated
        // off-link (LanRa keeps it so).
        self.ra.set_on_link(now, !learned.proxied);
        // An old prefix the server still lists deprecated is advertised no
        // longer than the server keeps it.
        for (p, until) in wan.other_lan_prefixes() {
            if let Some(until) = until {
                self.ra.bound_stale(p, until);
            }
        }
        // After `ra.update`: a /64 just replaced is stale only from there
        // on, and dhcp6s drops the bindings of a /64 not in this list.
        let stale = self.ra.stale_prefixes(now);
        if let Some(s) = &mut self.dhcp6 {
            s.set_prefix(now, dhcp6_prefix, &stale);
        }
    }

    /// Timers, persistence and frames due; `lan_ll_usable`: our LAN
    /// link-local address passed DAD (RAs come from it).
    pub fn poll(
        &mut self,
        now: Instant,
        lan_ll_usable: bool,
        out: &mut Vec<Tx>,
    ) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut soonest = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        if lan_ll_usable && !self.ra_started {
            self.ra_started = true;
            self.ra.start(now);
        }
        let mut msgs = Vec::new();
        soonest(self.ra.poll(now, &mut msgs));
        for m in msgs {
            out.push(Tx::Ready(Side::Lan, self.ra_frame(&m)));
        }
        if let Some(s) = &mut self.dhcp4 {
            soonest(s.poll(now));
        }
        if let Some(s) = &mut self.dhcp6 {
            soonest(s.poll(now));
        }
        if let Some(d) = &mut self.dns {
            let mut actions = Vec::new();
            let mut packets = Vec::new();
            soonest(d.poll(now, &mut actions, &mut packets));
            self.dns_actions(actions, out);
            for p in packets {
                if let Some((dst, frame)) = hostio::ip_frame(self.mac, &p) {
                    out.push(Tx::Via(Side::Lan, dst, frame));
                }
            }
        }
        self.persist(now);
        // Lease and prefix files are checked at least every few seconds.
        soonest(Some(now + Duration::from_secs(5)));
        next
    }

    fn ra_frame(&self, message: &[u8]) -> Vec<u8> {
        hostio::icmpv6_frame(
            &Route {
                src_mac: self.mac,
                dst_mac: hostio::multicast_mac(hostio::ALL_NODES),
                src: self.link_local,
                dst: hostio::ALL_NODES,
                hop_limit: 255,
            },
            message,
        )
    }

    fn persist(&mut self, now: Instant) {
        // Files whose last write failed (disk full, read-only) first; the
        // poll comes back at least every 5 s.
        let _ = self.state.retry(now);
        let wall = SystemTime::now();
        if let Some(s) = &mut self.dhcp4 {
            if s.take_dirty() {
                let text = serde_json::to_vec_pretty(&s.export(now, wall)).unwrap_or_default();
                let _ = self.state.write_atomic(DHCP4_LEASES_FILE, &text);
            }
        }
        if let Some(s) = &mut self.dhcp6 {
            if s.take_dirty() {
                let text = serde_json::to_vec_pretty(&s.export(now, wall)).unwrap_or_default();
                let _ = self.state.write_atomic(DHCP6_LEASES_FILE, &text);
            }
        }
        let unix_now = wall
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let remembered: Vec<(Ipv6Addr, u64)> = self
            .ra
            .remembered()
            .iter()
            .map(|p| {
                let left = p.valid_until.saturating_duration_since(now).as_secs();
                // Rounded to the minute so a countdown is not a write per poll.
                (p.prefix, (unix_now + left) / 60 * 60)
            })
            .collect();
        if remembered != self.saved_prefixes {
            let stored: Vec<StoredPrefix> = remembered
                .iter()
                .map(|(prefix, until)| StoredPrefix {
                    prefix: *prefix,
                    valid_until_unix: *until,
                })
                .collect();
            let text = serde_json::to_vec_pretty(&stored).unwrap_or_default();
            if self.state.write_atomic(LAN_PREFIXES_FILE, &text).is_ok() {
                self.saved_prefixes = remembered;
            }
        }
    }

    /// The final RAs (router lifetime 0), to send ~100 ms apart.
    pub fn shutdown(&mut self, now: Instant) -> Vec<Vec<u8>> {
        self.persist(now);
        if !self.ra_started {
            return Vec::new();
        }
        let msgs = self.ra.shutdown(now);
        msgs.iter().map(|m| self.ra_frame(m)).collect()
    }

    /// The LAN carrier came back: advertise at once.
    pub fn link_up(&mut self, now: Instant) {
        self.ra.link_up(now);
    }

    /// Write what is not yet on disk (before the services are rebuilt).
    pub fn flush(&mut self, now: Instant) {
        self.persist(now);
    }

    /// /64s being renumbered away, for the dataplane's code-5 answers.
    pub fn stale_prefixes(&self, now: Instant) -> Vec<Ipv6Addr> {
        self.ra.stale_prefixes(now)
    }
}

#[cfg(test)]
mod renumbering_tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn config(tag: &str) -> Config {
        let dir = std::env::temp_dir().join(format!("ipoed-lan-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let yaml = format!(
            "wan:\n  interface: wan0\n  ipv6:\n    slaac: false\n    dhcpv6_pd: false\n\
             lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    dhcpv6: stateful\n\
             control:\n  state_dir: {}\n",
            dir.display()
        );
        ipoe_config::parse(&yaml, "test.yaml").unwrap()
    }

    fn learned(prefix: &str) -> Learned {
        let p = a(prefix);
        Learned {
            gateway: Some(a("fe80::1")),
            lan_prefix: Some(p),
            lan_address: Some(crate::wan::with_iid(p, 1)),
            ..Learned::default()
        }
    }

    /// Finding 7 of the December review: the old /64 must be in dhcp6s's
    /// stale list when the new one arrives, or its bindings are dropped
    /// instead of being answered with lifetime 0 until they expire.
    #[test]
    fn f7_renumbering_keeps_dhcpv6_leases_of_the_old_prefix_as_stale() {
        let cfg = config("f7");
        let now = Instant::now();
        let (mac, wan_mac) = ([2, 0, 0, 0, 2, 1], [2, 0, 0, 0, 2, 2]);
        let wan = Wan::new(&cfg, wan_mac, a("fe80::ff:fe00:202"), now);
        let mut lan = Lan::new(
            &cfg,
            mac,
            wan_mac,
            a("fe80::ff:fe00:201"),
            vec![0, 3, 0, 1, 2],
            now,
        );
        let old = "2001:db8:0:111::";
        lan.update(now, &learned(old), &wan);
        let bound = a("2001:db8:0:111::1234");
        let wall = SystemTime::now();
        let expires = wall.duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600;
        lan.dhcp6.as_mut().unwrap().import(
            now,
            wall,
            vec![dhcp6s::StoredLease {
                duid_hex: "00030001020000000110".into(),
                iaid: 1,
                addr: bound,
                expires,
                state: dhcp6s::StoredState::Bound,
            }],
        );

        let later = now + Duration::from_secs(10);
        lan.update(later, &learned("2001:db8:0:222::"), &wan);
        assert_eq!(lan.stale_prefixes(later), [a(old)]);
        let leases: Vec<Ipv6Addr> = lan
            .dhcp6
            .as_ref()
            .unwrap()
            .leases(later)
            .iter()
            .map(|l| l.addr)
            .collect();
        assert_eq!(
            leases,
            [bound],
            "the old /64's binding must stay until it expires"
        );
    }
}
