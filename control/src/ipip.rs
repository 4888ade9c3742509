//! Fixed IPv4 over IPIP (issue 20) on the control thread: the tunnel's
//! local address (the WAN /64 or subnet 0 of the delegated prefix, plus
//! the contract interface ID), the NAPT44 bindings onto the fixed /32 with
//! the whole port range, and the registration of the local address at the
//! provider's update URL over the router's own TCP on the WAN.
//!
//! The wire format is DS-Lite's (RFC 2473, next header 4), so the
//! dataplane runs dslite-encap/-decap with B4 = the local address and
//! AFTR = `ipip.remote`, and MAP-E's nat44-out/-in with one address that
//! owns every port (`nat::FIXED_ADDRESS`: forwards may use the system
//! ports, the NAPT only 1024-65535). The local address is defended
//! like MAP-E's CE address (`map_e::CeDad`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;

use ipoe_config::{Config, Ipip, LocalPrefix};
use ipoe_dataplane::nat::bindings::{Bindings, Forward};
use ipoe_dataplane::nat::ports::Limits;
use ipoe_dataplane::nat::FIXED_ADDRESS;
use ipoe_dataplane::session::SessionTable;
use ipoe_dataplane::tables::{Fib, Tunnel};
use ipoe_proto::dns::{Resolver, ResolverConfig};
use ipoe_proto::hostio::{self, Route, Tx};
use ipoe_proto::http::tls::{self, Roots};
use ipoe_proto::http::{BasicAuth, Fetch, FetchConfig, RequestOptions, Target, TargetHost};
use ipoe_proto::ipip_update::{Outcome, Registrar};
use ipoe_proto::neigh::Side;
use serde_json::{json, Value};

use crate::map_e::{on_link, CeDad, DadLabel};
use crate::wan::Learned;

/// What the tunnel is under the config and the current prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Derived {
    /// The tunnel's local end: prefix + `local_iid`.
    pub local: Ipv6Addr,
    pub remote: Ipv6Addr,
    pub ipv4: Ipv4Addr,
}

/// The local address for `ipip` and what the WAN learned: the WAN /64
/// (`wan64`: the RA's prefix, a preferred one first, else the WAN
/// address's), or subnet 0 of the delegated prefix, with the contract
/// interface ID. `None` while that prefix is unknown.
pub fn derive(ipip: &Ipip, learned: &Learned, wan64: Option<Ipv6Addr>) -> Option<Derived> {
    let prefix = match ipip.local_prefix {
        LocalPrefix::Wan => wan64.or(learned.wan_address)?,
        LocalPrefix::Pd => {
            let (p, len) = learned.delegated?;
            if len > 64 {
                return None;
            }
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            Ipv6Addr::from(u128::from(p) & mask)
        }
    };
    let hi = u128::from(prefix) & !u128::from(u64::MAX);
    Some(Derived {
        local: Ipv6Addr::from(hi | (u128::from(ipip.local_iid) & u128::from(u64::MAX))),
        remote: ipip.remote,
        ipv4: ipip.ipv4,
    })
}

/// What the registration needs of the WAN.
pub struct WanView {
    pub gateway: Option<Ipv6Addr>,
    pub mac: [u8; 6],
    /// A WAN address that passed DAD, for DNS queries (as the AFTR's).
    pub dns_source: Option<Ipv6Addr>,
    pub dns_servers: Vec<Ipv6Addr>,
    pub hop_limit: u8,
}

/// IPIP state of the running daemon.
#[derive(Default)]
pub struct IpipState {
    pub current: Option<Derived>,
    /// The bindings of `current`, shared with the workers through the Fib.
    pub napt: Option<Arc<Bindings>>,
    next_id: u8,
    /// Local address changes (renumbering) since start.
    pub changes: u64,
    ticked: u32,
    forwards: Vec<Forward>,
    /// The WAN's last Packet Too Big estimate (see `map_e::MapState`).
    path_pmtu: Option<(Ipv6Addr, u16, Ipv6Addr)>,
    /// Whether the on-link local address is ours to use (DAD).
    pub dad: CeDad,
    pub registrar: Registrar,
    fetch: Option<Fetch>,
    /// The update URL, parsed once per config.
    target: Option<Target>,
    /// Why no GET can be sent (TLS).
    pub update_error: Option<String>,
    /// Resolves the update URL's host when it is a name.
    resolver: Option<Resolver>,
    /// The WAN /64 `update` last derived from.
    wan64: Option<Ipv6Addr>,
}

impl IpipState {
    /// Derives again; on a change of the address or the forwards makes new
    /// bindings and points the session table's release hook at them.
    /// Returns whether the tunnel changed.
    pub fn update(
        &mut self,
        config: &Config,
        learned: &Learned,
        wan64: Option<Ipv6Addr>,
        sessions: &SessionTable,
    ) -> bool {
        self.wan64 = wan64;
        self.path_pmtu = learned.path_pmtu;
        if self.dad.label() != DadLabel::Ipip {
            self.dad = CeDad::labelled(DadLabel::Ipip);
        }
        let target = config
            .ipip
            .as_ref()
            .and_then(|i| i.update.as_ref())
            .and_then(|u| Target::parse(&u.url).ok());
        if target != self.target {
            // A new URL (a reload) is registered at once.
            self.target = target;
            self.resolver = match self.target.as_ref().map(Target::host) {
                Some(TargetHost::Name(n)) => Some(Resolver::new(ResolverConfig::new(n))),
                _ => None,
            };
            self.fetch = None;
            self.registrar = Registrar::default();
        }
        let Some(ipip) = &config.ipip else {
            let was = self.current.take().is_some();
            self.napt = None;
            self.fetch = None;
            self.registrar = Registrar::default();
            return was;
        };
        let derived = derive(ipip, learned, wan64);
        let forwards: Vec<Forward> = ipip
            .port_forwards
            .iter()
            .map(Forward::from_config)
            .collect();
        if derived == self.current && forwards == self.forwards {
            return false;
        }
        self.forwards = forwards;
        match &derived {
            Some(d) => {
                // Only the config's forwards (1-65535, each once) go in:
                // config refused the rest, so this cannot fail. Then the
                // system ports nobody forwards are kept from the NAPT.
                let b = Bindings::new(d.ipv4, FIXED_ADDRESS, Limits::default())
                    .with_forwards(&self.forwards)
                    .unwrap_or_else(|e| {
                        log::error!("ipip: {e}: port forwards not installed");
                        Bindings::new(d.ipv4, FIXED_ADDRESS, Limits::default())
                    })
                    .reserving_system_ports()
                    .with_id(self.next_id);
                let b = Arc::new(b);
                self.next_id = self.next_id.wrapping_add(1);
                sessions.set_nat_release(b.clone());
                log::info!(
                    "ipip: tunnel {} -> remote {}; IPv4 {} (NAPT ports 1024-65535, {} forwarded)",
                    d.local,
                    d.remote,
                    d.ipv4,
                    self.forwards.len()
                );
                if self.current.is_some_and(|c| c.local != d.local) {
                    self.changes += 1;
                }
                self.napt = Some(b);
            }
            None => {
                log::warn!(
                    "ipip: no {} prefix for the local address yet; IPv4 from the LAN is dropped",
                    match ipip.local_prefix {
                        LocalPrefix::Wan => "WAN /64",
                        LocalPrefix::Pd => "delegated",
                    }
                );
                self.napt = None;
            }
        }
        self.current = derived;
        true
    }

    /// Whether the WAN /64 differs from the one `update` last saw (a new
    /// RA prefix, or the old one deprecated): then `update` must run.
    pub fn wan64_changed(&self, config: &Config, wan64: Option<Ipv6Addr>) -> bool {
        config
            .ipip
            .as_ref()
            .is_some_and(|i| i.local_prefix == LocalPrefix::Wan)
            && wan64 != self.wan64
    }

    /// Puts the tunnel, the bindings and the clamp into `fib`. Nothing
    /// while another node holds the local address (RFC 4862 5.4.5).
    pub fn apply(&self, config: &Config, fib: &mut Fib, hop_limit: Option<u8>) {
        let (Some(d), Some(napt)) = (&self.current, &self.napt) else {
            return;
        };
        if self.dad.withheld() {
            return;
        }
        let mtu = self.tunnel_mtu(config, fib.wan.mtu);
        fib.tunnel = Some(Tunnel {
            b4: d.local,
            aftr: d.remote,
            mtu,
            hop_limit: hop_limit.unwrap_or(ipoe_dataplane::nodes::dslite_encap::OUTER_HOP_LIMIT),
        });
        fib.firewall.mss_clamp_v4 = config.mss_clamp_v4().map(|m| m.min(mtu.saturating_sub(40)));
        fib.napt = Some(napt.clone());
        fib.map_fmr = None;
    }

    /// `ipip.mtu` (1460), lowered to the WAN link's MTU and the path MTU
    /// a Packet Too Big about the tunnel taught, each minus 40.
    pub fn tunnel_mtu(&self, config: &Config, link_mtu: u16) -> u16 {
        let path = self.remote_pmtu().map_or(link_mtu, |m| m.min(link_mtu));
        config.tunnel_mtu().min(path.saturating_sub(40))
    }

    fn remote_pmtu(&self) -> Option<u16> {
        let remote = self.current?.remote;
        self.path_pmtu.filter(|p| p.0 == remote).map(|p| p.1)
    }

    /// The local address when it lies in an on-link WAN /64.
    pub fn on_link_local(&self, wan_candidates: &[(Ipv6Addr, u8)]) -> Option<Ipv6Addr> {
        let l = self.current?.local;
        on_link(l, wan_candidates).then_some(l)
    }

    /// The local address the WAN must answer for and defend.
    pub fn wan_address(&self, wan_candidates: &[(Ipv6Addr, u8)]) -> Option<Ipv6Addr> {
        self.on_link_local(wan_candidates)
            .filter(|_| !self.dad.withheld())
    }

    /// Retires the port grace periods that ended (control loop, 1 s).
    pub fn tick(&mut self, now_s: u32) {
        if now_s == self.ticked {
            return;
        }
        self.ticked = now_s;
        if let Some(b) = &self.napt {
            b.tick(now_s, 1024);
        }
    }

    /// Runs the registration: `usable` says whether the local address may
    /// be used as a source (it passed DAD, or it is not on-link); packets go
    /// out on the WAN via `gateway`. Returns the next deadline.
    pub fn poll(
        &mut self,
        now: Instant,
        config: &Config,
        usable: bool,
        wan: &WanView,
        out: &mut Vec<Tx>,
    ) -> Option<Instant> {
        let gateway = wan.gateway;
        let wan_mac = wan.mac;
        let mut next = self.poll_dns(now, wan, out);
        // The GET needs the server's address: the URL's, or its name's.
        let server = match self.target.as_ref().map(Target::host) {
            Some(TargetHost::Ip(ip)) => Some(ip),
            Some(TargetHost::Name(_)) => self
                .resolver
                .as_ref()
                .and_then(|r| r.answer())
                .map(|a| IpAddr::V6(a.addr)),
            None => None,
        };
        let ready = self.current.map(|d| d.local).filter(|_| {
            usable
                && gateway.is_some()
                && server.is_some()
                && !self.dad.withheld()
                && self.napt.is_some()
        });
        if self.registrar.set_local(now, ready) {
            self.fetch = None;
        }
        if self.fetch.is_none() {
            if let (Some(local), Some(server)) = (self.registrar.due(now), server) {
                self.start(now, config, local, server);
            }
        }
        if let Some(f) = self.fetch.as_mut() {
            let mut packets = Vec::new();
            next = soonest(next, f.poll(now, &mut packets));
            if let Some(gw) = gateway {
                for p in packets {
                    if let Some((_, frame)) = hostio::ip_frame(wan_mac, &p) {
                        out.push(Tx::Via(Side::Wan, IpAddr::V6(gw), frame));
                    }
                }
            }
            let outcome = f.take_outcome().map(|r| Outcome::of(&r));
            if f.is_finished() {
                self.fetch = None;
            }
            if let Some(outcome) = outcome {
                self.registrar.finished(now, outcome.clone());
                self.log_outcome(now, &outcome);
            }
        }
        soonest(next, self.registrar.next_attempt())
    }

    /// Resolves the update URL's host name with the WAN's DNS servers
    /// (as the AFTR's name); returns the resolver's deadline.
    fn poll_dns(&mut self, now: Instant, wan: &WanView, out: &mut Vec<Tx>) -> Option<Instant> {
        let r = self.resolver.as_mut()?;
        let routable = wan.dns_source.is_some() && wan.gateway.is_some();
        r.set_servers(now, if routable { &wan.dns_servers[..] } else { &[] });
        let mut queries = Vec::new();
        let next = r.poll(now, &mut queries);
        if let (Some(src), Some(gw)) = (wan.dns_source, wan.gateway) {
            for q in queries {
                let frame = hostio::udp_frame(
                    &Route {
                        src_mac: wan.mac,
                        dst_mac: [0; 6],
                        src,
                        dst: q.server,
                        hop_limit: wan.hop_limit,
                    },
                    q.src_port,
                    hostio::DNS_PORT,
                    &q.payload,
                );
                out.push(Tx::Via(Side::Wan, IpAddr::V6(gw), frame));
            }
        }
        for ev in r.drain_events() {
            match ev {
                ipoe_proto::dns::Event::Resolved(a) => {
                    log::info!("ipip: update server {} resolves to {a}", r.name())
                }
                ipoe_proto::dns::Event::Failed(why) => {
                    log::warn!("ipip: resolving the update server {}: {why}", r.name())
                }
            }
        }
        next
    }

    /// A DNS answer for the update server's name: taken.
    pub fn handle_dns(&mut self, now: Instant, frame: &[u8]) -> bool {
        let Some(r) = self.resolver.as_mut() else {
            return false;
        };
        match hostio::classify(frame) {
            Ok(hostio::Inbound::Udp {
                src: IpAddr::V6(src),
                src_port,
                dst_port,
                payload,
                ..
            }) if src_port == hostio::DNS_PORT => r.handle(now, src, src_port, dst_port, payload),
            _ => false,
        }
    }

    fn start(&mut self, now: Instant, config: &Config, local: Ipv6Addr, server: IpAddr) {
        let (Some(target), Some(update)) = (
            self.target.clone(),
            config.ipip.as_ref().and_then(|i| i.update.as_ref()),
        ) else {
            return;
        };
        let mut options = RequestOptions {
            auth: update
                .username
                .as_ref()
                .zip(update.password.as_ref())
                .map(|(u, p)| BasicAuth {
                    user: u.clone(),
                    pass: p.clone(),
                }),
            ..RequestOptions::default()
        };
        if target.is_https() {
            match tls::client_config(&Roots {
                webpki: true,
                pem: Vec::new(),
            }) {
                Ok(c) => options.tls = Some(c),
                Err(e) => {
                    let e = format!("TLS for the update URL: {e}");
                    log::error!("ipip: {e}");
                    self.update_error = Some(e);
                    self.registrar.finished(now, Outcome::Error("tls"));
                    return;
                }
            }
        }
        log::info!("ipip: registering {local} at {target}");
        let cfg = FetchConfig::new(target, server, IpAddr::V6(local), options);
        match Fetch::new(now, cfg, ipoe_proto::osrand::random_u64()) {
            Ok(f) => self.fetch = Some(f),
            Err(e) => {
                log::error!("ipip: cannot send the update GET: {e}");
                self.registrar.finished(now, Outcome::Error(e.name()));
            }
        }
    }

    fn log_outcome(&self, now: Instant, outcome: &Outcome) {
        let (Some(d), Some(t)) = (self.current, &self.target) else {
            return;
        };
        let next_s = self
            .registrar
            .next_attempt()
            .map_or(0, |n| n.saturating_duration_since(now).as_secs());
        if outcome.is_ok() {
            log::info!(
                "ipip: {} registered at {t} (remote {}); next refresh in {next_s} s",
                d.local,
                d.remote
            );
        } else {
            log::warn!(
                "ipip: registering {} at {t} failed: {}; again in {next_s} s",
                d.local,
                outcome.name()
            );
        }
    }

    /// The update GET's open connection, (server port, our port), for
    /// the workers' reserve (ip6-local admits only registered flows).
    pub fn tcp_flows(&self) -> Vec<(u16, u16)> {
        self.fetch
            .as_ref()
            .filter(|f| !f.is_finished())
            .map(|f| vec![(f.remote().port(), f.local().port())])
            .unwrap_or_default()
    }

    /// A punted WAN frame for the update GET's connection: taken.
    pub fn handle_frame(&mut self, frame: &[u8]) -> bool {
        let Some(f) = self.fetch.as_mut() else {
            return false;
        };
        match hostio::classify(frame) {
            Ok(hostio::Inbound::Tcp { ip_packet, .. }) if f.is_ours(ip_packet) => {
                f.push_ip(ip_packet);
                true
            }
            _ => false,
        }
    }

    /// The `ipip` object of `show tunnel` (control/PROTOCOL.md).
    pub fn report(&self, config: &Config, now: Instant, link_mtu: u16) -> Value {
        let Some(ipip) = &config.ipip else {
            return Value::Null;
        };
        let r = &self.registrar;
        let ago = |t: Instant| now.saturating_duration_since(t).as_secs();
        let last = r.last.as_ref().map(|a| {
            json!({
                "local": a.local.to_string(),
                "result": a.outcome.name(),
                "ok": a.outcome.is_ok(),
                "age_s": ago(a.at),
            })
        });
        let update = ipip.update.as_ref().map(|u| {
            json!({
                "url": ipoe_proto::http::target::mask_url_str(&u.url),
                "basic_auth": u.username.is_some(),
                "registered": r.is_registered(),
                "registered_age_s": r.registered.filter(|_| r.is_registered()).map(|(_, t)| ago(t)),
                "last": last,
                "next_attempt_in_s": r.next_attempt().map(|t| t.saturating_duration_since(now).as_secs()),
                "in_progress": r.in_flight(),
                "attempts": r.attempts,
                "failures": r.failures,
                "server": self.resolver.as_ref().map(|r| json!({
                    "name": r.name(),
                    "address": r.answer().map(|a| a.addr.to_string()),
                })),
                "error": self.update_error,
            })
        });
        json!({
            "remote": ipip.remote.to_string(),
            "local": self.current.map(|d| d.local.to_string()),
            "local_prefix": match ipip.local_prefix { LocalPrefix::Wan => "wan", LocalPrefix::Pd => "pd" },
            "ipv4": ipip.ipv4.to_string(),
            "up": self.current.is_some() && self.napt.is_some() && !self.dad.withheld(),
            "dad": self.dad.report(now),
            "mtu": self.tunnel_mtu(config, link_mtu),
            "local_changes": self.changes,
            "port_forwards": self.forwards.len(),
            "update": update,
        })
    }

    /// The external address of bindings `id`, if current.
    pub fn external_of(&self, id: u8) -> Option<Ipv4Addr> {
        self.napt
            .as_ref()
            .filter(|b| b.id() == id)
            .map(|b| b.external())
    }
}

fn soonest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The log line of a tunnel watch event under IPIP: a typo in the remote
/// looks "up" otherwise.
pub fn tunnel_event_text(
    remote: &str,
    local: &str,
    e: ipoe_proto::tunnel_watch::Event,
) -> (log::Level, String) {
    match e {
        ipoe_proto::tunnel_watch::Event::Silent { for_s, sent } => (
            log::Level::Warn,
            format!(
                "ipip: nothing from the remote {remote} to {local} for {for_s} s while {sent} \
                 packets went to it (wrong remote, not registered, or down?)"
            ),
        ),
        ipoe_proto::tunnel_watch::Event::Back { after_s } => (
            log::Level::Info,
            format!("ipip: the remote {remote} answers again (silent for {after_s} s)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = "
wan:
  interface: wan0
lan:
  interface: lan0
  ipv4: 192.168.2.1/24
ipip:
  remote: 2001:db8:77:cc::1
  local_iid: \"::feed\"
  ipv4: 192.0.2.77
  port_forwards:
    - { proto: tcp, port: 8080, to: \"192.168.2.20:8080\" }
    - { proto: tcp, port: 443, to: \"192.168.2.20:8443\" }
";

    fn config(extra: &str) -> Config {
        ipoe_config::parse(&format!("{LAB}{extra}"), "test.yaml").expect("config parses")
    }

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn local_address_from_the_wan_64_or_subnet_0_of_the_delegation() {
        let c = config("");
        let i = c.ipip.as_ref().unwrap();
        let learned = Learned {
            wan_address: Some(a("2001:db8:0:100::99")),
            delegated: Some((a("2001:db8:4d12:3400::"), 56)),
            ..Learned::default()
        };
        let d = derive(i, &learned, None).unwrap();
        assert_eq!(d.local, a("2001:db8:0:100::feed"));
        // The RA's preferred /64 wins over the address still in use.
        let d = derive(i, &learned, Some(a("2001:db8:0:200::5"))).unwrap();
        assert_eq!(d.local, a("2001:db8:0:200::feed"));
        let c = config("  local_prefix: pd\n");
        let d = derive(c.ipip.as_ref().unwrap(), &learned, None).unwrap();
        assert_eq!(d.local, a("2001:db8:4d12:3400::feed"));
        assert_eq!(
            derive(c.ipip.as_ref().unwrap(), &Learned::default(), None),
            None
        );
    }

    /// The Fib gets the tunnel to the remote from the local address, the
    /// whole-address NAPT with the forward, MTU 1460 and clamp 1420; a
    /// renumbering moves it to a new bindings set.
    #[test]
    fn the_fib_carries_the_tunnel_and_a_renumbering_moves_it() {
        let c = config("");
        let sessions = SessionTable::new(1024, Default::default());
        let mut s = IpipState::default();
        let l1 = Learned {
            wan_address: Some(a("2001:db8:0:100::99")),
            ..Learned::default()
        };
        assert!(s.update(&c, &l1, None, &sessions));
        assert!(!s.update(&c, &l1, None, &sessions));
        let mut fib = Fib::default();
        fib.wan.mtu = 1500;
        fib.firewall.mss_clamp_v4 = c.mss_clamp_v4();
        s.apply(&c, &mut fib, None);
        let t = fib.tunnel.unwrap();
        assert_eq!(t.b4, a("2001:db8:0:100::feed"));
        assert_eq!(t.aftr, a("2001:db8:77:cc::1"));
        assert_eq!(t.mtu, 1460);
        assert_eq!(fib.firewall.mss_clamp_v4, Some(1420));
        let b = fib.napt.clone().unwrap();
        assert_eq!(b.external(), Ipv4Addr::new(192, 0, 2, 77));
        assert_eq!(b.pool().len(), 65535);
        assert!(b
            .inbound(ipoe_dataplane::nat::bindings::NatProto::Tcp, 8080)
            .is_some());
        // The system port forwarded, and no other.
        assert!(b
            .inbound(ipoe_dataplane::nat::bindings::NatProto::Tcp, 443)
            .is_some());
        assert!(b
            .inbound(ipoe_dataplane::nat::bindings::NatProto::Tcp, 80)
            .is_none());
        assert!(fib.map_fmr.is_none());
        assert!(s.wan64_changed(&c, Some(a("2001:db8:0:200::1"))));
        assert!(s.update(&c, &l1, Some(a("2001:db8:0:200::1")), &sessions));
        assert_eq!(s.current.unwrap().local, a("2001:db8:0:200::feed"));
        assert_ne!(s.napt.as_ref().unwrap().id(), b.id());
        assert_eq!(s.changes, 1);
        // On-link: the WAN answers for it and defends it.
        let wan = [(a("2001:db8:0:200::5"), 64)];
        assert_eq!(s.wan_address(&wan), Some(a("2001:db8:0:200::feed")));
        assert_eq!(s.wan_address(&[(a("2001:db8:0:300::5"), 64)]), None);
    }

    /// `show tunnel` never shows the URL's password.
    #[test]
    fn the_report_masks_the_update_url() {
        let c = config(
            "  update:\n    url: \"http://[2001:db8:77:ee::80]:8082/update?user=lab&pass=secret\"\n",
        );
        let sessions = SessionTable::new(1024, Default::default());
        let mut s = IpipState::default();
        let l = Learned {
            wan_address: Some(a("2001:db8:0:100::99")),
            ..Learned::default()
        };
        s.update(&c, &l, None, &sessions);
        let r = s.report(&c, Instant::now(), 1500);
        let text = r.to_string();
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(
            r["update"]["url"],
            "http://[2001:db8:77:ee::80]:8082/update?user=lab&pass=***"
        );
        assert_eq!(r["local"], "2001:db8:0:100::feed");
    }
}
