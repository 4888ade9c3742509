//! IPv4 with nothing to configure (issue 20): with neither `dslite` nor
//! `map_e` in the config, this finds the line's method and the daemon runs
//! it as if the user had written it ([`effective`]), through the same
//! live-reload path as an edited file (reload.rs plans `dslite`/`map_e`
//! changes without a restart).
//!
//! It drives, on the WAN, with the DNS servers learned there:
//! * the HB46PP client ([`ipoe_proto::hb46pp::Client`]): the `4over6.info`
//!   TXT lookup ([`TxtLookup`]), the server's AAAA ([`Resolver`]) and the
//!   provisioning fetch over the router's own TCP ([`Fetch`], rustls with
//!   the webpki roots plus `provisioning.ca_file`); the last accepted
//!   answer is cached in `state_dir` ([`CACHE_FILE`], written atomically)
//!   and used at start until a fresh one arrives;
//! * AAAA resolvers for the AFTR names the selector asks for (DHCPv6's
//!   option 64, the well-known names, HB46PP's AFTR name);
//! * the [`Selector`], which reads all of it and the end-user prefix.
//!
//! The outcome, its source and why are in [`Zeroconf::report`] (`show
//! tunnel`) and the log.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipoe_config::{
    Aftr, B4Source, Config, DsLite, Ipip, LocalPrefix, MapE, MapIidFormat, MapRuleChoice,
    MapRuleSpec, DEFAULT_MSS_CLAMP_V4,
};
use ipoe_proto::dns::txt::{TxtLookup, TxtResult};
use ipoe_proto::dns::{self, Resolver, ResolverConfig};
use ipoe_proto::hb46pp::{self, Action, Cache, Client, Credentials, RequestConfig, TxtOutcome};
use ipoe_proto::hostio::{self, Inbound, Route, Tx};
use ipoe_proto::http::target::TargetHost;
use ipoe_proto::http::tls::{self, Roots};
use ipoe_proto::http::{Fetch, FetchConfig, FetchError, RequestOptions, Target};
use ipoe_proto::map::{IidFormat, Prefix6};
use ipoe_proto::neigh::{Mac, Side};
use ipoe_proto::zeroconf::{Hb46ppView, Inputs, Method, NameState, Outcome, Selector, TableRule};
use serde_json::{json, Value};

use crate::state::StateDir;

/// The last accepted HB46PP answer (no credential in it).
pub const CACHE_FILE: &str = "hb46pp-cache.json";
/// AFTR names resolved at once at most (HB46PP's, DHCPv6's, the three
/// well-known ones).
const MAX_NAMES: usize = 5;

/// What the WAN knows, for one poll.
#[derive(Clone, Debug, Default)]
pub struct WanView {
    pub mac: Mac,
    /// The global address DNS and HTTP leave from (passed DAD).
    pub source: Option<Ipv6Addr>,
    pub gateway: Option<Ipv6Addr>,
    pub hop_limit: u8,
    pub dns_servers: Vec<Ipv6Addr>,
    /// DHCPv6 option 64.
    pub dhcpv6_aftr: Option<String>,
    pub end_user: Option<Prefix6>,
}

impl WanView {
    /// A query can leave: a source, a router and a server to ask.
    fn routable(&self) -> bool {
        self.source.is_some() && self.gateway.is_some() && !self.dns_servers.is_empty()
    }
}

/// One AFTR name being resolved.
struct Name {
    name: String,
    resolver: Resolver,
    /// The last round failed with no answer held.
    failed: Option<String>,
}

/// The fetch HB46PP asked for: its server's address (resolved when the
/// URL names a host), then the connection.
struct HttpJob {
    id: u64,
    target: Target,
    verify: bool,
    source: Ipv6Addr,
    server: Option<Ipv6Addr>,
    resolver: Option<Resolver>,
    fetch: Option<Fetch>,
}

pub struct Zeroconf {
    /// The config names no method: discovery runs.
    active: bool,
    hb: Option<Client>,
    /// Why HB46PP is off or could not start.
    hb_off: Option<String>,
    txt: Option<(u64, TxtLookup)>,
    job: Option<HttpJob>,
    names: Vec<Name>,
    selector: Selector,
    user_rules: Vec<TableRule>,
    /// Verifying TLS: webpki roots and `provisioning.ca_file`.
    tls: Option<Arc<tls::TlsConfig>>,
    pub tls_error: Option<String>,
    pub current: Option<Outcome>,
    pub decided_at: Option<Instant>,
    pub waiting: Option<String>,
    /// Outcomes adopted since start.
    pub changes: u64,
    changed: bool,
    state: StateDir,
    /// The provisioning settings this was built from.
    built_from: ipoe_config::Provisioning,
    /// The last end-user prefix seen (a change asks HB46PP again).
    end_user: Option<Prefix6>,
}

/// The HB46PP request of `provisioning`.
fn request(p: &ipoe_config::Provisioning) -> RequestConfig {
    let mut r = RequestConfig::new(p.vendorid.clone());
    if let (Some(user), Some(pass)) = (&p.user, &p.password) {
        r.credentials = Some(Credentials {
            user: user.clone(),
            pass: pass.clone(),
            server: None,
        });
    }
    r
}

fn user_rules(p: &ipoe_config::Provisioning) -> Vec<TableRule> {
    p.map_rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            Some(TableRule {
                rule: r.rule().ok()?,
                br: r.br,
                iid: IidFormat::from(r.iid_format),
                label: format!("provisioning.map_rules[{i}]"),
            })
        })
        .collect()
}

fn tls_config(p: &ipoe_config::Provisioning) -> (Option<Arc<tls::TlsConfig>>, Option<String>) {
    let mut roots = Roots {
        webpki: true,
        pem: Vec::new(),
    };
    let mut error = None;
    if let Some(f) = &p.ca_file {
        match std::fs::read(f) {
            Ok(bytes) => roots.pem.push(bytes),
            Err(e) => error = Some(format!("provisioning.ca_file {}: {e}", f.display())),
        }
    }
    match tls::client_config(&roots) {
        Ok(c) => (Some(c), error),
        Err(e) => {
            // A bad CA file: the webpki roots alone still verify.
            let e = format!("provisioning.ca_file: {e}");
            roots.pem.clear();
            (tls::client_config(&roots).ok(), Some(e))
        }
    }
}

impl Zeroconf {
    pub fn new(config: &Config, now: Instant) -> Self {
        let mut z = Zeroconf {
            active: false,
            hb: None,
            hb_off: None,
            txt: None,
            job: None,
            names: Vec::new(),
            selector: Selector::default(),
            user_rules: Vec::new(),
            tls: None,
            tls_error: None,
            current: None,
            decided_at: None,
            waiting: None,
            changes: 0,
            changed: false,
            state: StateDir::open(&config.control.state_dir),
            built_from: config.provisioning.clone(),
            end_user: None,
        };
        z.configure(config, now);
        z
    }

    /// A (re)load of the config: discovery starts or stops; new HB46PP
    /// settings start a new client (from the cache).
    pub fn reconfigure(&mut self, config: &Config, now: Instant) {
        let was = self.active;
        if was != config.ipv4_method_given() && self.built_from == config.provisioning {
            return;
        }
        self.built_from = config.provisioning.clone();
        self.configure(config, now);
    }

    fn configure(&mut self, config: &Config, now: Instant) {
        self.active = !config.ipv4_method_given();
        self.txt = None;
        self.job = None;
        self.hb = None;
        self.names.clear();
        self.current = None;
        self.waiting = None;
        self.selector = Selector::default();
        if !self.active {
            log::info!("ipv4: the config names the method; no discovery");
            return;
        }
        let p = &config.provisioning;
        self.user_rules = user_rules(p);
        (self.tls, self.tls_error) = tls_config(p);
        if let Some(e) = &self.tls_error {
            log::error!("hb46pp: {e}; only the built-in roots are trusted");
        }
        if !p.enabled {
            self.hb_off = Some("provisioning.enabled: false".into());
        } else {
            match Client::new(
                hb46pp::Settings::new(request(p)),
                ipoe_proto::osrand::random_u64(),
            ) {
                Ok(mut c) => {
                    c.set_token(p.token.clone());
                    self.restore(&mut c, now);
                    self.hb = Some(c);
                    self.hb_off = None;
                }
                Err(e) => self.hb_off = Some(e),
            }
        }
        log::info!(
            "ipv4: no dslite or map_e in the config: finding the method (HB46PP {}, \
             AFTR names, MAP rule tables)",
            if self.hb.is_some() { "on" } else { "off" }
        );
    }

    fn restore(&mut self, c: &mut Client, now: Instant) {
        let Some(bytes) = self.state.read(CACHE_FILE) else {
            return;
        };
        match Cache::from_json(&bytes) {
            Some(cache) => match c.restore(now, &cache) {
                Ok(()) => log::info!(
                    "hb46pp: using the cached answer of {} until the server answers",
                    cache.server
                ),
                Err(e) => {
                    log::warn!("hb46pp: cached answer refused ({e}); removed");
                    self.state.remove(CACHE_FILE);
                }
            },
            None => {
                log::warn!("hb46pp: {CACHE_FILE} is not a cache file; removed");
                self.state.remove(CACHE_FILE);
            }
        }
    }

    pub fn active(&self) -> bool {
        self.active
    }

    /// Whether the outcome changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The router's own TCP connections on the WAN, (server port, our
    /// port), for the workers' reserve.
    pub fn tcp_flows(&self) -> Vec<(u16, u16)> {
        self.job
            .as_ref()
            .and_then(|j| j.fetch.as_ref())
            .filter(|f| !f.is_finished())
            .map(|f| vec![(f.remote().port(), f.local().port())])
            .unwrap_or_default()
    }

    /// A frame punted from the WAN that nothing else took: DNS replies to
    /// our lookups, TCP of the fetch. Returns whether it was ours.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> bool {
        if !self.active {
            return false;
        }
        match hostio::classify(frame) {
            Ok(Inbound::Udp {
                src: IpAddr::V6(src),
                src_port,
                dst_port,
                payload,
                ..
            }) if src_port == dns::DNS_PORT => {
                if let Some((_, l)) = &mut self.txt {
                    if l.wants(src, src_port, dst_port) {
                        return l.handle(now, src, src_port, dst_port, payload);
                    }
                }
                if let Some(r) = self.job.as_mut().and_then(|j| j.resolver.as_mut()) {
                    if r.handle(now, src, src_port, dst_port, payload) {
                        return true;
                    }
                }
                self.names
                    .iter_mut()
                    .any(|n| n.resolver.handle(now, src, src_port, dst_port, payload))
            }
            Ok(Inbound::Tcp { ip_packet, .. }) => {
                match self.job.as_mut().and_then(|j| j.fetch.as_mut()) {
                    Some(f) if f.is_ours(ip_packet) => {
                        f.push_ip(ip_packet);
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// Runs the lookups, the fetch and the selector; frames to send go to
    /// `out`. Returns when to poll next.
    pub fn poll(&mut self, now: Instant, view: &WanView, out: &mut Vec<Tx>) -> Option<Instant> {
        if !self.active {
            return None;
        }
        let mut next = Soonest::default();
        let routable = view.routable();
        if let Some(hb) = &mut self.hb {
            // Only with somewhere to ask: a round without DNS servers would
            // fail and back off for minutes.
            hb.set_address(now, view.source.filter(|_| routable));
            // A new delegated prefix renumbers the CE (B4, LAN, MAP CE
            // address): HB46PP's "address changed", ask again.
            if let (Some(old), Some(new)) = (self.end_user, view.end_user) {
                if old != new {
                    log::info!("hb46pp: end-user prefix now {new} (was {old}), asking again");
                    hb.refresh(now);
                }
            }
        }
        if view.end_user.is_some() {
            self.end_user = view.end_user;
        }
        // A TXT answer starts a fetch, a resolved server a connection: a
        // few turns so one poll carries a step through.
        for _ in 0..3 {
            let progressed = self.drive_hb46pp(now, view, out, &mut next);
            if !progressed {
                break;
            }
        }
        self.select(now, view);
        let servers = if routable {
            view.dns_servers.clone()
        } else {
            Vec::new()
        };
        for n in &mut self.names {
            n.resolver.set_servers(now, &servers);
            let mut queries = Vec::new();
            next.add(n.resolver.poll(now, &mut queries));
            send_dns(view, queries, out);
            for ev in n.resolver.drain_events() {
                match ev {
                    dns::Event::Resolved(a) => {
                        log::info!("ipv4: {} resolves to {a}", n.name);
                        n.failed = None;
                    }
                    dns::Event::Failed(why) => {
                        if n.resolver.answer().is_none() {
                            n.failed = Some(short_dns_error(&why));
                        }
                    }
                }
            }
        }
        // What the resolvers learned this turn decides now, not at the next
        // poll.
        self.select(now, view);
        if let Some(w) = &self.waiting {
            // Re-checked when the grace ends.
            log::trace!("ipv4: waiting: {w}");
            next.add(Some(now + Duration::from_secs(1)));
        }
        next.0
    }

    /// One turn of the HB46PP client and what it asked for; returns
    /// whether a result was handed back (so another turn may act on it).
    fn drive_hb46pp(
        &mut self,
        now: Instant,
        view: &WanView,
        out: &mut Vec<Tx>,
        next: &mut Soonest,
    ) -> bool {
        let Some(hb) = &mut self.hb else {
            return false;
        };
        let mut actions = Vec::new();
        next.add(hb.poll(now, &mut actions));
        for a in actions {
            match a {
                Action::QueryTxt { id } => {
                    self.txt = Some((id, TxtLookup::new(hb46pp::TXT_NAME, &view.dns_servers)));
                }
                Action::Fetch {
                    id,
                    target,
                    verify,
                    source,
                } => {
                    log::info!("hb46pp: asking {target}");
                    let (server, resolver) = match target.host() {
                        TargetHost::Ip(IpAddr::V6(a)) => (Some(a), None),
                        TargetHost::Ip(IpAddr::V4(_)) => (None, None),
                        TargetHost::Name(n) => (None, Some(Resolver::new(ResolverConfig::new(n)))),
                    };
                    self.job = Some(HttpJob {
                        id,
                        target,
                        verify,
                        source,
                        server,
                        resolver,
                        fetch: None,
                    });
                }
            }
        }
        let mut progressed = false;
        // The TXT lookup.
        if let Some((id, l)) = &mut self.txt {
            let mut queries = Vec::new();
            next.add(l.poll(now, &mut queries));
            send_dns(view, queries, out);
            if let Some(r) = l.result() {
                let outcome = match r.clone() {
                    TxtResult::Records(r) => TxtOutcome::Records(r),
                    TxtResult::NxDomain => TxtOutcome::NxDomain,
                    TxtResult::NoData => TxtOutcome::NoData,
                    TxtResult::Failed(e) => TxtOutcome::Failed(e),
                };
                hb.txt_result(now, *id, outcome);
                self.txt = None;
                progressed = true;
            }
        }
        // The fetch.
        if let Some(job) = &mut self.job {
            let mut result: Option<Result<ipoe_proto::http::Response, FetchError>> = None;
            if let Some(r) = &mut job.resolver {
                let servers = if view.routable() {
                    view.dns_servers.clone()
                } else {
                    Vec::new()
                };
                r.set_servers(now, &servers);
                let mut queries = Vec::new();
                next.add(r.poll(now, &mut queries));
                send_dns(view, queries, out);
                for ev in r.drain_events() {
                    match ev {
                        dns::Event::Resolved(a) => job.server = job.server.or(Some(a)),
                        dns::Event::Failed(why) if job.server.is_none() => {
                            result = Some(Err(FetchError::Config(format!(
                                "resolving {}: {}",
                                job.target.host_str(),
                                short_dns_error(&why)
                            ))));
                        }
                        dns::Event::Failed(_) => {}
                    }
                }
            }
            if job.server.is_none() && job.resolver.is_none() {
                result = Some(Err(FetchError::Config(
                    "the provisioning server must be reached over IPv6".into(),
                )));
            }
            if let (None, Some(server), None) = (&job.fetch, job.server, &result) {
                let tls = if !job.target.is_https() {
                    None
                } else if job.verify {
                    self.tls.clone()
                } else {
                    // HB46PP t=a: the record says the server has no
                    // certificate worth checking.
                    Some(tls::insecure_config())
                };
                let options = RequestOptions {
                    tls,
                    ..RequestOptions::default()
                };
                let cfg = FetchConfig::new(
                    job.target.clone(),
                    IpAddr::V6(server),
                    IpAddr::V6(job.source),
                    options,
                );
                match Fetch::new(now, cfg, ipoe_proto::osrand::random_u64()) {
                    Ok(f) => job.fetch = Some(f),
                    Err(e) => result = Some(Err(e)),
                }
            }
            if let Some(f) = &mut job.fetch {
                let mut packets = Vec::new();
                next.add(f.poll(now, &mut packets));
                if let Some(gw) = view.gateway {
                    for p in packets {
                        if let Some((_, frame)) = hostio::ip_frame(view.mac, &p) {
                            out.push(Tx::Via(Side::Wan, IpAddr::V6(gw), frame));
                        }
                    }
                }
                if let Some(r) = f.take_outcome() {
                    result = Some(r);
                }
            }
            if let Some(r) = result {
                let id = job.id;
                // The fetch's last RST went out with this poll.
                self.job = None;
                hb.http_result(now, id, &r);
                progressed = true;
            }
        }
        for ev in hb.take_events() {
            if let hb46pp::Event::Decided(d) = ev {
                log::info!("hb46pp: decision now {:?}", d.method());
                let unix = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                match hb.cache(unix) {
                    Some(c) => {
                        if let Err(e) = self.state.write_atomic(CACHE_FILE, c.to_json().as_bytes())
                        {
                            log::warn!("hb46pp: cannot save {CACHE_FILE}: {e}");
                        }
                    }
                    None => self.state.remove(CACHE_FILE),
                }
            }
        }
        progressed
    }

    fn select(&mut self, now: Instant, view: &WanView) {
        let names: Vec<(String, NameState)> = self
            .names
            .iter()
            .map(|n| {
                let state = match (n.resolver.answer(), &n.failed) {
                    (Some(a), _) => NameState::Resolved(a.addr),
                    (None, Some(e)) => NameState::Failed(e.clone()),
                    (None, None) => NameState::Pending,
                };
                (n.name.clone(), state)
            })
            .collect();
        // The reason of an unavailable HB46PP, owned for the borrow.
        let hb_error = self.hb.as_ref().and_then(|c| c.status(now).last_error);
        let hb_view = match &self.hb {
            None => Hb46ppView::Off,
            Some(c) => match (c.decision(), &hb_error) {
                (Some(d), _) => Hb46ppView::Answered(d),
                (None, Some(e)) => Hb46ppView::Unavailable(e),
                (None, None) => Hb46ppView::Pending,
            },
        };
        let inputs = Inputs {
            has_address: view.routable(),
            hb46pp: hb_view,
            dhcpv6_aftr: view.dhcpv6_aftr.as_deref(),
            names: &names,
            end_user: view.end_user,
            user_rules: &self.user_rules,
        };
        let selection = self.selector.select(now, &inputs);
        // The resolvers follow what the selector wants.
        let mut wanted = selection.resolve.clone();
        wanted.truncate(MAX_NAMES);
        self.names
            .retain(|n| wanted.iter().any(|w| w.eq_ignore_ascii_case(&n.name)));
        for w in wanted {
            if !self.names.iter().any(|n| n.name.eq_ignore_ascii_case(&w)) {
                log::info!("ipv4: resolving {w}");
                self.names.push(Name {
                    resolver: Resolver::new(ResolverConfig::new(w.clone())),
                    name: w,
                    failed: None,
                });
            }
        }
        match selection.outcome {
            Some(o) => {
                self.waiting = None;
                if self.current.as_ref() != Some(&o) {
                    let level = if o.method == Method::None {
                        log::Level::Warn
                    } else {
                        log::Level::Info
                    };
                    if o.method == Method::None {
                        log::log!(level, "ipv4: no IPv4 found ({})", o.why);
                    } else {
                        log::log!(
                            level,
                            "ipv4: {} from {}: {}",
                            describe(&o.method),
                            o.source.as_str(),
                            o.why
                        );
                    }
                    self.current = Some(o);
                    self.decided_at = Some(now);
                    self.changes += 1;
                    self.changed = true;
                }
            }
            None => {
                if self.waiting != selection.waiting {
                    if let Some(w) = &selection.waiting {
                        log::info!("ipv4: waiting: {w}");
                    }
                }
                self.waiting = selection.waiting;
            }
        }
    }

    /// For `show tunnel`.
    pub fn report(&self, now: Instant) -> Value {
        if !self.active {
            return json!({"method_from": "config"});
        }
        let hb = self.hb.as_ref().map(|c| {
            let s = c.status(now);
            json!({
                "phase": s.phase,
                "server": s.server,
                "enabler_name": s.enabler_name,
                "decision": s.decision.as_ref().and_then(|d| d.method()).map(|m| m.as_str()),
                "answer_from": s.source.map(|x| match x {
                    hb46pp::Source::Server => "server",
                    hb46pp::Source::Cache => "cache",
                }),
                "last_success_s_ago": s.last_success.map(|t| now.saturating_duration_since(t).as_secs()),
                "last_error": s.last_error,
                "failures": s.failures,
                "next_in_s": s.next.map(|t| t.saturating_duration_since(now).as_secs()),
            })
        });
        let names: Vec<Value> = self
            .names
            .iter()
            .map(|n| {
                json!({"name": n.name,
                       "address": n.resolver.answer().map(|a| a.addr.to_string()),
                       "error": n.failed})
            })
            .collect();
        json!({
            "method_from": "discovery",
            "method": self.current.as_ref().map(|o| o.method.kind()),
            "source": self.current.as_ref().map(|o| o.source.as_str()),
            "why": self.current.as_ref().map(|o| o.why.clone()),
            "detail": self.current.as_ref().map(|o| describe(&o.method)),
            "waiting": self.waiting,
            "decided_s_ago": self.decided_at.map(|t| now.saturating_duration_since(t).as_secs()),
            "changes": self.changes,
            "hb46pp": hb,
            "hb46pp_off": self.hb_off,
            "ca_file_error": self.tls_error,
            "names": names,
        })
    }
}

fn describe(m: &Method) -> String {
    match m {
        Method::DsLite { aftr, name } => match name {
            Some(n) => format!("DS-Lite to AFTR {aftr} ({n})"),
            None => format!("DS-Lite to AFTR {aftr}"),
        },
        Method::MapE { br, rule, .. } => format!(
            "MAP-E to BR {br}, rule {} -> {}",
            rule.ipv6_prefix(),
            rule.ipv4_prefix()
        ),
        Method::Ipip(t) => format!(
            "fixed IPv4 {}/{} over IPIP to {}, local interface ID {} (no update URL: \
             nothing to register)",
            t.ipv4,
            t.ipv4_len,
            t.remote,
            local_iid(t.local)
        ),
        Method::None => "no IPv4".into(),
    }
}

/// The first line of a resolver's failure (its messages are long).
fn short_dns_error(why: &str) -> String {
    why.chars().take(160).collect()
}

fn send_dns(view: &WanView, queries: Vec<dns::Query>, out: &mut Vec<Tx>) {
    let (Some(src), Some(gw)) = (view.source, view.gateway) else {
        return;
    };
    for q in queries {
        let frame = hostio::udp_frame(
            &Route {
                src_mac: view.mac,
                dst_mac: [0; 6],
                src,
                dst: q.server,
                hop_limit: view.hop_limit,
            },
            q.src_port,
            dns::DNS_PORT,
            &q.payload,
        );
        out.push(Tx::Via(Side::Wan, IpAddr::V6(gw), frame));
    }
}

#[derive(Default)]
struct Soonest(Option<Instant>);

impl Soonest {
    fn add(&mut self, t: Option<Instant>) {
        if let Some(t) = t {
            self.0 = Some(self.0.map_or(t, |n| n.min(t)));
        }
    }
}

/// The interface ID of the tunnel's local address (`::feed`).
fn local_iid(a: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(a) & u128::from(u64::MAX))
}

/// Whether the user's WAN forms an address of its own (static, SLAAC or a
/// DHCPv6 NA): then a discovered tunnel starts from the WAN /64, else
/// from subnet 0 of the delegated prefix.
fn wan_has_address(user: &Config) -> bool {
    let v6 = &user.wan.ipv6;
    v6.address.is_some() || v6.slaac || v6.dhcpv6_pd.as_ref().is_some_and(|p| p.request_na)
}

/// HB46PP's IPIP answer as the `ipip` section a user would write: its
/// remote, its fixed address (the first of a shorter prefix: the NAPT has
/// one address), the interface ID of its local address on the WAN /64 (or
/// subnet 0 of the delegation when the WAN forms no /64 of its own), the
/// fixed-IP services' MTU and clamp. HB46PP names no update URL, so
/// nothing is registered. `None` for an answer the config's checks would
/// refuse (no interface ID, the fixed address inside the LAN): no IPv4
/// rather than a broken tunnel.
fn ipip_section(user: &Config, t: &hb46pp::Ipip) -> Option<Ipip> {
    let iid = local_iid(t.local);
    if iid.is_unspecified() || user.lan.ipv4.contains(&t.ipv4) {
        log::warn!(
            "ipv4: HB46PP's IPIP answer ({}) is not usable here: {}",
            describe(&Method::Ipip(t.clone())),
            if iid.is_unspecified() {
                "its local address has no interface ID"
            } else {
                "its IPv4 address lies inside lan.ipv4"
            }
        );
        return None;
    }
    let v6 = &user.wan.ipv6;
    // As `ipip.local_prefix`'s check: wan needs SLAAC or a static address.
    let local_prefix = if v6.slaac || v6.address.is_some() || v6.dhcpv6_pd.is_none() {
        LocalPrefix::Wan
    } else {
        LocalPrefix::Pd
    };
    Some(Ipip {
        remote: t.remote,
        local_iid: iid,
        local_prefix,
        ipv4: t.ipv4,
        update: None,
        port_forwards: Vec::new(),
        mtu: None,
        mss_clamp: Some(DEFAULT_MSS_CLAMP_V4),
    })
}

/// The config the daemon runs: the user's, with the discovered method's
/// section filled in when the user's names none.
pub fn effective(user: &Config, outcome: Option<&Outcome>) -> Config {
    let mut c = user.clone();
    if user.ipv4_method_given() {
        return c;
    }
    match outcome.map(|o| &o.method) {
        Some(Method::DsLite { aftr, .. }) => {
            // The WAN address when there is one (what the JP AFTRs see
            // from every CE), else subnet 0 of the delegated prefix.
            let b4_address = if wan_has_address(user) {
                B4Source::Wan
            } else {
                B4Source::Delegated
            };
            let clamp = DEFAULT_MSS_CLAMP_V4.min(user.tunnel_mtu().saturating_sub(40));
            c.dslite = Some(DsLite {
                aftr: Aftr::Address(*aftr),
                b4_address,
                mtu: None,
                mss_clamp: Some(clamp),
            });
        }
        Some(Method::MapE { br, rule, iid }) => {
            c.map_e = Some(MapE {
                br: Some(*br),
                rule: MapRuleChoice::Rule(MapRuleSpec {
                    ipv6_prefix: rule.ipv6_prefix(),
                    ipv4_prefix: rule.ipv4_prefix(),
                    ea_length: rule.ea_length(),
                    psid_offset: rule.psid_offset(),
                }),
                iid_format: match iid {
                    IidFormat::Legacy => MapIidFormat::Legacy,
                    IidFormat::Rfc7597 => MapIidFormat::Rfc7597,
                },
                port_forwards: Vec::new(),
            });
        }
        Some(Method::Ipip(t)) => c.ipip = ipip_section(user, t),
        Some(Method::None) | None => {}
    }
    c
}

#[cfg(test)]
#[path = "zeroconf_tests.rs"]
mod tests;
