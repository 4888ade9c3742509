//! MAP-E (issue 18) on the control thread: from the `map_e` section and
//! the end-user prefix (the delegated prefix, or the WAN /64 on a line
//! without PD) the CE's IPv4 address, PSID, port set and MAP address;
//! the NAPT44 bindings the workers translate with, the tunnel to the BR,
//! and the CE address the WAN must answer for when it is on-link.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipoe_config::{Config, MapRuleChoice};
use ipoe_dataplane::nat::bindings::{Bindings, Forward, ForwardError, NatProto};
use ipoe_dataplane::nat::ports::Limits;
use ipoe_dataplane::nat::{Fmr, PortPool};
use ipoe_dataplane::session::SessionTable;
use ipoe_dataplane::tables::{Fib, Tunnel};
use ipoe_proto::map::jp_rules::{self, Provider};
use ipoe_proto::map::{IidFormat, Mapping, Prefix6, Rule};

use serde_json::{json, Value};

use crate::wan::Learned;

/// The MAP-E tunnel's inner MTU (the JP VNEs' 1460; lowered to the WAN
/// link's) and the TCP MSS clamp that fits it.
pub const TUNNEL_MTU: u16 = 1460;
pub const MSS_CLAMP: u16 = 1420;

/// The first wait before a CE address found duplicated is tried again
/// (a fresh DAD); doubled at each conflict up to [`DAD_RETRY_MAX`].
pub const DAD_RETRY_FIRST: Duration = Duration::from_secs(60);
pub const DAD_RETRY_MAX: Duration = Duration::from_secs(3600);

/// Grace periods retired per protocol and tick: the tick runs every
/// second, so a whole OCN set (1008) drains in one.
const GRACE_BUDGET: usize = 1024;

/// Where the Basic Mapping Rule came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleSource {
    Config,
    /// `rule: auto`, the built-in JP table's row of this provider.
    Table(Provider),
}

impl RuleSource {
    pub fn describe(self) -> String {
        match self {
            RuleSource::Config => "config".to_owned(),
            RuleSource::Table(p) => format!("auto ({p}, built-in table)"),
        }
    }
}

/// What the CE is under its rule and end-user prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Derived {
    pub rule: Rule,
    pub source: RuleSource,
    pub br: Ipv6Addr,
    pub iid: IidFormat,
    pub mapping: Mapping,
    /// The CE's MAP IPv6 address: the tunnel's local end.
    pub ce: Ipv6Addr,
}

impl Derived {
    pub fn ipv4(&self) -> Ipv4Addr {
        self.mapping.ipv4
    }

    /// Peer CEs can be told apart only when the EA bits carry something.
    pub fn fmr(&self) -> Option<Fmr> {
        (self.rule.ea_length() > 0).then_some(Fmr {
            rule: self.rule,
            iid: self.iid,
        })
    }
}

/// The end-user prefix MAP-E maps: the delegated prefix when the DHCPv6
/// client runs (none until it has a lease, so the mapping does not jump
/// from the WAN /64 to the delegated prefix), else the WAN address's /64.
pub fn end_user_prefix(pd_enabled: bool, learned: &Learned) -> Option<Prefix6> {
    if pd_enabled {
        let (p, len) = learned.delegated?;
        Some(Prefix6::truncate(p, len))
    } else {
        learned.wan_address.map(|a| Prefix6::truncate(a, 64))
    }
}

/// The mapping for `config`'s `map_e` and what the WAN learned:
/// `Ok(None)` without `map_e` or while there is no end-user prefix yet;
/// `Err` (to log) when the prefix does not fit the rule.
pub fn derive(config: &Config, learned: &Learned) -> Result<Option<Derived>, String> {
    let Some(m) = &config.map_e else {
        return Ok(None);
    };
    let Some(end_user) = end_user_prefix(config.wan.ipv6.dhcpv6_pd.is_some(), learned) else {
        return Ok(None);
    };
    let (rule, source, table_br) = match &m.rule {
        MapRuleChoice::Rule(spec) => (
            spec.rule().map_err(|e| format!("map_e.rule: {e}"))?,
            RuleSource::Config,
            None,
        ),
        MapRuleChoice::Auto => {
            let row = jp_rules::lookup(end_user.addr()).ok_or_else(|| {
                format!("map_e: rule auto: no built-in rule covers the end-user prefix {end_user}")
            })?;
            (row.rule, RuleSource::Table(row.provider), Some(row.br))
        }
    };
    // The config's BR wins over the table's (a reseller's own BR).
    let br =
        m.br.or(table_br)
            .ok_or_else(|| "map_e: no BR (map_e.br)".to_owned())?;
    let mapping = rule
        .map(end_user)
        .map_err(|e| format!("map_e: end-user prefix {end_user}: {e}"))?;
    let iid = IidFormat::from(m.iid_format);
    Ok(Some(Derived {
        rule,
        source,
        br,
        iid,
        mapping,
        ce: mapping.ce_address(iid),
    }))
}

/// Whether `ce` lies in one of the WAN's on-link /64s (a SLAAC prefix):
/// then other nodes resolve it on the link and we must answer and defend.
pub fn on_link(ce: Ipv6Addr, wan_candidates: &[(Ipv6Addr, u8)]) -> bool {
    let upper = |a: Ipv6Addr| u128::from(a) >> 64;
    wan_candidates
        .iter()
        .any(|&(a, len)| len == 64 && upper(a) == upper(ce))
}

/// MAP-E state of the running daemon.
#[derive(Default)]
pub struct MapState {
    pub current: Option<Derived>,
    /// The bindings of `current`, shared with the workers through the Fib.
    pub napt: Option<Arc<Bindings>>,
    /// Last derivation error, logged once.
    pub error: Option<String>,
    /// Identity of the next bindings set (`Nat::addr`), so sessions of an
    /// earlier set never release ports into a new one.
    next_id: u8,
    /// Prefix changes that moved the CE (for `show map`).
    pub changes: u64,
    /// The session second of the last grace tick.
    ticked: u32,
    /// The port forwards `napt` was built with (a reload may change them).
    forwards: Vec<Forward>,
    /// The WAN's last Packet Too Big estimate: (quoted destination, path
    /// MTU in IPv6 bytes, sender). Used while the destination is the BR.
    path_pmtu: Option<(Ipv6Addr, u16, Ipv6Addr)>,
    /// The WAN link MTU in use (for `show map`; `apply` reads the Fib's).
    link_mtu: u16,
    /// Whether the on-link CE address is ours to use (DAD).
    pub dad: CeDad,
}

impl MapState {
    /// Derives again; on a change makes new bindings and points the
    /// session table's release hook at them. Returns whether it changed.
    pub fn update(&mut self, config: &Config, learned: &Learned, sessions: &SessionTable) -> bool {
        // Not a change of the mapping: the daemon rebuilds the Fib on any
        // change of `learned`, and `apply` reads it then.
        self.path_pmtu = learned.path_pmtu;
        self.link_mtu = match learned.wan_mtu {
            0 => config.wan.mtu,
            m => m.min(config.wan.mtu),
        };
        let derived = match derive(config, learned) {
            Ok(d) => {
                self.error = None;
                d
            }
            Err(e) => {
                if self.error.as_ref() != Some(&e) {
                    log::error!("{e}; IPv4 from the LAN is dropped (no-tunnel)");
                    self.error = Some(e);
                }
                None
            }
        };
        let forwards: Vec<Forward> = config
            .map_e
            .as_ref()
            .map(|m| m.port_forwards.iter().map(Forward::from_config).collect())
            .unwrap_or_default();
        if derived == self.current && forwards == self.forwards {
            return false;
        }
        self.forwards = forwards;
        match &derived {
            Some(d) => {
                let pool = PortPool::from_set(d.mapping.ports);
                let b =
                    Arc::new(with_forwards(d.ipv4(), pool, &self.forwards).with_id(self.next_id));
                self.next_id = self.next_id.wrapping_add(1);
                sessions.set_nat_release(b.clone());
                log::info!(
                    "map-e: rule {} from {}; end-user prefix {}; IPv4 {}{} PSID {} ({} ports in {}); \
                     CE {} -> BR {}",
                    d.rule,
                    d.source.describe(),
                    d.mapping.end_user,
                    d.ipv4(),
                    if d.mapping.ipv4_len < 32 {
                        format!("/{}", d.mapping.ipv4_len)
                    } else {
                        String::new()
                    },
                    d.mapping.psid(),
                    pool.len(),
                    describe_runs(pool),
                    d.ce,
                    d.br
                );
                if self.current.is_some() {
                    self.changes += 1;
                }
                self.napt = Some(b);
            }
            None => {
                if self.current.is_some() {
                    log::warn!("map-e: no end-user prefix; IPv4 from the LAN is dropped");
                }
                self.napt = None;
            }
        }
        self.current = derived;
        true
    }

    /// Puts the tunnel to the BR, the bindings and the FMR into `fib`
    /// (built without them), with the MTU and clamp of the MAP-E tunnel.
    /// Nothing while another node holds the CE address (RFC 4862 5.4.5:
    /// a duplicate address is not used): IPv4 from the LAN is dropped as
    /// no-tunnel until DAD passes again.
    pub fn apply(&self, fib: &mut Fib, hop_limit: Option<u8>) {
        let (Some(d), Some(napt)) = (&self.current, &self.napt) else {
            return;
        };
        if self.dad.withheld() {
            return;
        }
        let mtu = self.tunnel_mtu(fib.wan.mtu);
        fib.tunnel = Some(Tunnel {
            b4: d.ce,
            aftr: d.br,
            mtu,
            hop_limit: hop_limit.unwrap_or(ipoe_dataplane::nodes::dslite_encap::OUTER_HOP_LIMIT),
        });
        fib.firewall.mss_clamp_v4 = Some(MSS_CLAMP.min(mtu.saturating_sub(40)));
        fib.napt = Some(napt.clone());
        fib.map_fmr = d.fmr();
    }

    /// The inner MTU: 1460, lowered to the WAN link's and to the path MTU
    /// a Packet Too Big about the tunnel to the BR taught, each minus the
    /// outer header (RFC 2473 7.1, as DS-Lite). The PMTU is never below
    /// 1280 (proto::pmtu), so the inner MTU never below 1240.
    pub fn tunnel_mtu(&self, link_mtu: u16) -> u16 {
        let path = self.br_pmtu().map_or(link_mtu, |(m, _)| m.min(link_mtu));
        TUNNEL_MTU.min(path.saturating_sub(40))
    }

    /// Where `mtu` (this tunnel's) comes from: MAP-E's 1460, a Packet Too
    /// Big, or the WAN link's MTU (the RA's or `wan.mtu`).
    pub fn mtu_source(&self, mtu: u16) -> &'static str {
        match self.br_pmtu() {
            _ if mtu == TUNNEL_MTU => "map-e",
            Some((p, _)) if p.min(self.link_mtu).saturating_sub(40) == mtu => "packet-too-big",
            _ => "wan-link",
        }
    }

    /// The path MTU to the BR in use and the router that reported it.
    pub fn br_pmtu(&self) -> Option<(u16, Ipv6Addr)> {
        let br = self.current?.br;
        self.path_pmtu
            .filter(|p| p.0 == br)
            .map(|(_, mtu, from)| (mtu, from))
    }

    /// The CE address the WAN must answer for and defend, when on-link
    /// and not found duplicated.
    pub fn wan_address(&self, wan_candidates: &[(Ipv6Addr, u8)]) -> Option<Ipv6Addr> {
        self.on_link_ce(wan_candidates)
            .filter(|_| !self.dad.withheld())
    }

    /// The CE address when it lies in an on-link /64, duplicated or not.
    pub fn on_link_ce(&self, wan_candidates: &[(Ipv6Addr, u8)]) -> Option<Ipv6Addr> {
        let ce = self.current?.ce;
        on_link(ce, wan_candidates).then_some(ce)
    }

    /// Retires the port grace periods that ended (control loop, 1 s).
    pub fn tick(&mut self, now_s: u32) {
        if now_s == self.ticked {
            return;
        }
        self.ticked = now_s;
        if let Some(b) = &self.napt {
            b.tick(now_s, GRACE_BUDGET);
        }
    }
}

/// Why the CE address was found to be held by another node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// Our DAD probe was answered or met another node's probe.
    DadFailed,
    /// An address in use (it had passed DAD) was claimed by another node.
    ClaimedInUse,
}

impl Conflict {
    pub fn as_str(self) -> &'static str {
        match self {
            Conflict::DadFailed => "dad-failed",
            Conflict::ClaimedInUse => "claimed-while-in-use",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Duplicate {
    reason: Conflict,
    since: Instant,
    retry_at: Instant,
}

/// DAD of the on-link CE address (sans-IO: fed the time and what the
/// neighbor engine says of the address). RFC 4862 5.4.5 says a duplicate
/// address is not used and leaves the rest to the operator; the CE address
/// is derived from the prefix and cannot move to another IID, and the
/// holder is often transient (a BR or a bridge looping our probe, a CE
/// being replaced), so the address is withdrawn (not answered, not
/// defended, no tunnel from it) and DAD runs again after a back-off of
/// [`DAD_RETRY_FIRST`], doubled at each conflict up to [`DAD_RETRY_MAX`]
/// and reset once the address passes DAD.
#[derive(Debug, Default)]
pub struct CeDad {
    /// Whose address it is, for the log (IPIP's local address is
    /// defended the same way).
    label: DadLabel,
    /// The address this is about; another one starts afresh.
    ce: Option<Ipv6Addr>,
    /// It passed DAD since it was (re)installed.
    passed: bool,
    duplicate: Option<Duplicate>,
    backoff: Option<Duration>,
    /// Conflicts found, and DAD runs started again after one.
    pub conflicts: u64,
    pub retries: u64,
}

/// Whose address a [`CeDad`] defends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DadLabel {
    #[default]
    MapE,
    Ipip,
}

impl DadLabel {
    fn prefix(self) -> &'static str {
        match self {
            DadLabel::MapE => "map-e: the CE address",
            DadLabel::Ipip => "ipip: the local address",
        }
    }
}

impl CeDad {
    pub fn labelled(label: DadLabel) -> Self {
        CeDad {
            label,
            ..CeDad::default()
        }
    }

    pub fn label(&self) -> DadLabel {
        self.label
    }

    /// What the neighbor engine says of `ce` (the on-link CE address, if
    /// any): `usable` once it passed DAD, `failed` when marked duplicate.
    /// Returns whether the address was withdrawn or given back, so the
    /// daemon rebuilds the Fib and the WAN's address list.
    pub fn observe(
        &mut self,
        now: Instant,
        ce: Option<Ipv6Addr>,
        usable: bool,
        failed: bool,
    ) -> bool {
        if ce != self.ce {
            let was = self.withheld();
            *self = CeDad {
                label: self.label,
                ce,
                conflicts: self.conflicts,
                retries: self.retries,
                ..CeDad::default()
            };
            return was;
        }
        let Some(ce) = ce else {
            return false;
        };
        if let Some(d) = self.duplicate {
            if now < d.retry_at {
                return false;
            }
            self.duplicate = None;
            self.passed = false;
            self.retries += 1;
            log::info!("{} {ce}: trying it again (DAD)", self.label.prefix());
            return true;
        }
        if failed {
            let reason = if self.passed {
                Conflict::ClaimedInUse
            } else {
                Conflict::DadFailed
            };
            let wait = self
                .backoff
                .map_or(DAD_RETRY_FIRST, |b| (b * 2).min(DAD_RETRY_MAX));
            self.backoff = Some(wait);
            self.conflicts += 1;
            self.duplicate = Some(Duplicate {
                reason,
                since: now,
                retry_at: now + wait,
            });
            log::error!(
                "{} {ce} is held by another node ({}); not using it, \
                 IPv4 from the LAN is dropped (no-tunnel); DAD again in {} s",
                self.label.prefix(),
                reason.as_str(),
                wait.as_secs()
            );
            return true;
        }
        if usable && !self.passed {
            self.passed = true;
            self.backoff = None;
        }
        false
    }

    /// The address is withdrawn (found duplicated, waiting to retry).
    pub fn withheld(&self) -> bool {
        self.duplicate.is_some()
    }

    /// When [`Self::observe`] must run next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.duplicate.map(|d| d.retry_at)
    }

    /// The `dad` object of `show map`.
    pub fn report(&self, now: Instant) -> Value {
        let state = match (self.ce, self.duplicate) {
            (None, _) => "off-link",
            (Some(_), Some(_)) => "duplicate",
            (Some(_), None) if self.passed => "ok",
            (Some(_), None) => "tentative",
        };
        let d = self.duplicate;
        json!({
            "state": state,
            "reason": d.map(|d| d.reason.as_str()),
            "since_s": d.map(|d| now.saturating_duration_since(d.since).as_secs()),
            "retry_in_s": d.map(|d| d.retry_at.saturating_duration_since(now).as_secs()),
            "conflicts": self.conflicts,
            "retries": self.retries,
        })
    }
}

/// "1024-1039, 5120-5135, ... (15 runs)": the first and last runs.
pub fn describe_runs(pool: PortPool) -> String {
    let runs = runs(pool);
    let show = |r: &(u16, u16)| format!("{}-{}", r.0, r.1);
    match runs.len() {
        0 => "no ports".to_owned(),
        1..=3 => runs.iter().map(show).collect::<Vec<_>>().join(", "),
        n => format!(
            "{}, {}, ..., {} ({n} runs)",
            show(&runs[0]),
            show(&runs[1]),
            show(&runs[n - 1])
        ),
    }
}

/// The contiguous runs of a pool, ascending.
pub fn runs(pool: PortPool) -> Vec<(u16, u16)> {
    pool.runs()
}

/// LAN hosts `show map` lists at most (the biggest users first).
pub const SHOW_HOSTS: usize = 256;

impl MapState {
    /// `show map` (control/PROTOCOL.md).
    pub fn report(&self, config: &Config) -> Value {
        self.report_at(config, Instant::now())
    }

    fn report_at(&self, config: &Config, now: Instant) -> Value {
        let Some(m) = &config.map_e else {
            return json!({"configured": false});
        };
        let iid = match IidFormat::from(m.iid_format) {
            IidFormat::Legacy => "legacy",
            IidFormat::Rfc7597 => "rfc7597",
        };
        let (Some(d), Some(b)) = (&self.current, &self.napt) else {
            return json!({
                "configured": true,
                "up": false,
                "rule_source": match m.rule { MapRuleChoice::Auto => "auto", MapRuleChoice::Rule(_) => "config" },
                "iid_format": iid,
                "error": self.error,
                "prefix_changes": self.changes,
            });
        };
        let pool = b.pool();
        let mut in_use = serde_json::Map::new();
        let mut in_grace = serde_json::Map::new();
        let mut exhausted = 0;
        let mut host_limit = 0;
        let (mut total, mut grace_total) = (0, 0);
        // Per LAN host: its ports of each protocol, from the owners of the
        // whole set (bounded by the set: 240, 1008, or 64512 for a whole
        // address).
        let mut hosts: BTreeMap<Ipv4Addr, [u32; 3]> = BTreeMap::new();
        for (k, p) in NatProto::ALL.into_iter().enumerate() {
            let st = b.stats(p);
            in_use.insert(p.name().to_owned(), json!(st.mappings));
            in_grace.insert(p.name().to_owned(), json!(st.in_grace));
            total += st.mappings;
            grace_total += st.in_grace;
            exhausted += st.ports.exhausted;
            host_limit += st.ports.host_limit + st.ports.hosts_full;
            for i in 0..pool.len() {
                let Some(port) = pool.port_at(i) else { break };
                if let Some((host, _)) = b.internal(p, port) {
                    hosts.entry(host).or_default()[k] += 1;
                }
            }
        }
        let mut hosts: Vec<(Ipv4Addr, [u32; 3])> = hosts.into_iter().collect();
        hosts.sort_by_key(|(h, c)| (std::cmp::Reverse(c.iter().sum::<u32>()), *h));
        let host_count = hosts.len();
        hosts.truncate(SHOW_HOSTS);
        let hosts: Vec<Value> = hosts
            .iter()
            .map(|(h, c)| {
                let mut o = serde_json::Map::new();
                o.insert("host".into(), json!(h.to_string()));
                for (k, p) in NatProto::ALL.into_iter().enumerate() {
                    o.insert(p.name().to_owned(), json!(c[k]));
                }
                o.insert("total".into(), json!(c.iter().sum::<u32>()));
                Value::Object(o)
            })
            .collect();
        in_use.insert("total".into(), json!(total));
        in_grace.insert("total".into(), json!(grace_total));
        let mtu = self.tunnel_mtu(self.link_mtu);
        let pmtu = self.br_pmtu();
        let mtu_source = self.mtu_source(mtu);
        json!({
            "configured": true,
            "up": true,
            "rule": {
                "ipv6_prefix": d.rule.ipv6_prefix().to_string(),
                "ipv4_prefix": d.rule.ipv4_prefix().to_string(),
                "ea_length": d.rule.ea_length(),
                "psid_offset": d.rule.psid_offset(),
                "psid_length": d.rule.psid_length(),
            },
            "rule_source": match d.source {
                RuleSource::Config => "config".to_owned(),
                RuleSource::Table(p) => format!("auto ({p})"),
            },
            "br": d.br.to_string(),
            "iid_format": iid,
            "end_user_prefix": d.mapping.end_user.to_string(),
            "ce_address": d.ce.to_string(),
            "ipv4": d.ipv4().to_string(),
            "ipv4_prefix_length": d.mapping.ipv4_len,
            "psid": d.mapping.psid(),
            "shared": d.mapping.is_shared(),
            "fmr": d.fmr().is_some(),
            "ports": pool.len(),
            "port_runs": runs(pool).iter().map(|(a, z)| format!("{a}-{z}")).collect::<Vec<_>>(),
            "in_use": in_use,
            "in_grace": in_grace,
            "exhausted": exhausted,
            "host_limit_refused": host_limit,
            "host_count": host_count,
            "hosts": hosts,
            "prefix_changes": self.changes,
            "error": self.error,
            "tunnel_up": !self.dad.withheld(),
            "dad": self.dad.report(now),
            "mtu": mtu,
            "mtu_source": mtu_source,
            "path_mtu": pmtu.map(|(m, from)| json!({"mtu": m, "from": from.to_string()})),
        })
    }

    /// The external address of bindings `id`, if it is the current set
    /// (what `show sessions` prints a session's translation with).
    pub fn external_of(&self, id: u8) -> Option<Ipv4Addr> {
        self.napt
            .as_ref()
            .filter(|b| b.id() == id)
            .map(|b| b.external())
    }
}

/// Bindings with every forward of `list` that fits the port set: the
/// config checks an explicit rule's set, but `rule: auto` or a new prefix
/// may give another one. A forward that does not fit is logged and left out.
fn with_forwards(ipv4: Ipv4Addr, pool: PortPool, list: &[Forward]) -> Bindings {
    let mut list = list.to_vec();
    loop {
        match Bindings::new(ipv4, pool, Limits::default()).with_forwards(&list) {
            Ok(b) => return b,
            Err(e) => {
                log::error!("map-e: port forward {e}: not installed");
                let (ForwardError::NotInSet(bad) | ForwardError::Duplicate(bad)) = e;
                // Drop one copy: a duplicate's first entry still installs.
                if let Some(i) = list.iter().rposition(|f| *f == bad) {
                    list.remove(i);
                } else {
                    return Bindings::new(ipv4, pool, Limits::default());
                }
            }
        }
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
map_e:
  br: 2001:db8:77:bb::1
  rule: { ipv6_prefix: \"2001:db8:4d00::/40\", ipv4_prefix: \"192.0.2.0/24\", ea_length: 16, psid_offset: 4 }
";

    fn config(extra: &str) -> Config {
        let text = format!("{LAB}{extra}");
        ipoe_config::parse(&text, "test.yaml").expect("config parses")
    }

    fn pd(p: &str, len: u8) -> Learned {
        Learned {
            delegated: Some((p.parse().unwrap(), len)),
            ..Learned::default()
        }
    }

    /// 2001:db8:4d12:3400::/56: EA bits 0x1234 = IPv4 suffix 0x12, PSID
    /// 0x34; the CE sits in subnet 0 with the legacy IID.
    #[test]
    fn derives_ipv4_psid_and_ce_from_the_delegated_prefix() {
        let d = derive(&config(""), &pd("2001:db8:4d12:3400::", 56))
            .unwrap()
            .unwrap();
        assert_eq!(d.ipv4(), Ipv4Addr::new(192, 0, 2, 0x12));
        assert_eq!(d.mapping.psid(), 0x34);
        assert_eq!(d.source, RuleSource::Config);
        assert_eq!(
            d.ce,
            "2001:db8:4d12:3400:c0:2:1200:3400"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
        assert_eq!(d.br, "2001:db8:77:bb::1".parse::<Ipv6Addr>().unwrap());
        // offset 4, PSID 8 bits: 15 runs of 16 ports, all of PSID 0x34.
        let runs = runs(PortPool::from_set(d.mapping.ports));
        assert_eq!(runs.len(), 15);
        assert_eq!(runs[0], (0x1340, 0x134f));
        assert_eq!(runs[14], (0xf340, 0xf34f));
        assert!(d.fmr().is_some());
    }

    #[test]
    fn rfc7597_iid_format_is_followed() {
        let d = derive(
            &config("  iid_format: rfc7597\n"),
            &pd("2001:db8:4d12:3400::", 56),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            d.ce,
            "2001:db8:4d12:3400:0:c000:212:34"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
    }

    #[test]
    fn waits_for_the_lease_with_pd_and_uses_the_wan_64_without() {
        let wan = Learned {
            wan_address: Some("2001:db8:4d56:7800::99".parse().unwrap()),
            ..Learned::default()
        };
        assert_eq!(derive(&config(""), &wan), Ok(None));
        let no_pd = config("").clone();
        let mut no_pd = no_pd;
        no_pd.wan.ipv6.dhcpv6_pd = None;
        let d = derive(&no_pd, &wan).unwrap().unwrap();
        assert_eq!(d.ipv4(), Ipv4Addr::new(192, 0, 2, 0x56));
        assert_eq!(d.mapping.psid(), 0x78);
        assert!(on_link(
            d.ce,
            &[("2001:db8:4d56:7800::99".parse().unwrap(), 64)]
        ));
        assert!(!on_link(
            d.ce,
            &[("2001:db8:4d56:7801::99".parse().unwrap(), 64)]
        ));
    }

    #[test]
    fn a_prefix_outside_the_rule_is_an_error() {
        let e = derive(&config(""), &pd("2001:db8:9900::", 56)).unwrap_err();
        assert!(e.contains("2001:db8:9900::/56"), "{e}");
    }

    /// `rule: auto` takes the table's rule and BR for a prefix it covers.
    #[test]
    fn auto_uses_the_built_in_table() {
        let row = jp_rules::rules()[0];
        let text = LAB.replace(
            "  br: 2001:db8:77:bb::1\n  rule: { ipv6_prefix: \"2001:db8:4d00::/40\", ipv4_prefix: \"192.0.2.0/24\", ea_length: 16, psid_offset: 4 }\n",
            "  rule: auto\n",
        );
        let c = ipoe_config::parse(&text, "test.yaml").unwrap();
        let p = row.rule.ipv6_prefix();
        let d = derive(&c, &pd(&p.addr().to_string(), row.rule.end_user_len()))
            .unwrap()
            .unwrap();
        assert_eq!(d.source, RuleSource::Table(row.provider));
        assert_eq!(d.br, row.br);
        assert_eq!(d.rule, row.rule);
    }

    /// A prefix change makes a new bindings set with another identity, on
    /// the new address, and the Fib gets the tunnel from the new CE.
    #[test]
    fn a_prefix_change_moves_everything() {
        let c = config("");
        let sessions = SessionTable::new(1024, Default::default());
        let mut m = MapState::default();
        assert!(m.update(&c, &pd("2001:db8:4d12:3400::", 56), &sessions));
        let first = m.napt.clone().unwrap();
        assert!(!m.update(&c, &pd("2001:db8:4d12:3400::", 56), &sessions));
        assert!(m.update(&c, &pd("2001:db8:4d56:7800::", 56), &sessions));
        let second = m.napt.clone().unwrap();
        assert_ne!(first.id(), second.id());
        assert_eq!(second.external(), Ipv4Addr::new(192, 0, 2, 0x56));
        assert_eq!(m.changes, 1);
        let mut fib = Fib::default();
        fib.wan.mtu = 1500;
        m.apply(&mut fib, None);
        let t = fib.tunnel.unwrap();
        assert_eq!(t.b4, m.current.unwrap().ce);
        assert_eq!(t.mtu, 1460);
        assert_eq!(fib.firewall.mss_clamp_v4, Some(1420));
        assert!(fib.napt.is_some() && fib.map_fmr.is_some());
        // Losing the lease takes the translation away.
        assert!(m.update(&c, &Learned::default(), &sessions));
        let mut fib = Fib::default();
        m.apply(&mut fib, None);
        assert!(fib.tunnel.is_none() && fib.napt.is_none());
    }

    /// The config's port forwards are installed in the bindings, follow a
    /// reload, and one outside the set of a new prefix is left out alone.
    #[test]
    fn port_forwards_are_installed_and_follow_the_config() {
        // PSID 0x34 at offset 4: the first run is 0x1340-0x134f.
        let fw = "  port_forwards:\n    - { proto: tcp, port: 4930, to: \"192.168.2.20:8080\" }\n";
        let c = config(fw);
        let sessions = SessionTable::new(1024, Default::default());
        let mut m = MapState::default();
        assert!(m.update(&c, &pd("2001:db8:4d12:3400::", 56), &sessions));
        let b = m.napt.clone().unwrap();
        assert_eq!(b.forwards().len(), 1);
        let (to, _) = b.inbound(NatProto::Tcp, 4930).expect("forwarded");
        assert_eq!(to.0, Ipv4Addr::new(192, 168, 2, 20));
        // Same prefix, forwards gone (a reload): new bindings without them.
        assert!(m.update(&config(""), &pd("2001:db8:4d12:3400::", 56), &sessions));
        assert!(m.napt.clone().unwrap().forwards().is_empty());
        // Back, then a prefix whose set lacks 4930: installed without it.
        assert!(m.update(&c, &pd("2001:db8:4d12:3400::", 56), &sessions));
        assert!(m.update(&c, &pd("2001:db8:4d12:5600::", 56), &sessions));
        let b = m.napt.clone().unwrap();
        assert!(b.forwards().is_empty());
        assert!(b.inbound(NatProto::Tcp, 4930).is_none());
    }

    /// `show map` counts ports per protocol and per LAN host from the
    /// bindings themselves.
    #[test]
    fn show_map_counts_ports_per_host() {
        let c = config("");
        let sessions = SessionTable::new(1024, Default::default());
        let mut m = MapState::default();
        assert_eq!(m.report(&c)["up"], false);
        m.update(&c, &pd("2001:db8:4d12:3400::", 56), &sessions);
        let b = m.napt.clone().unwrap();
        let (h1, h2) = (
            Ipv4Addr::new(192, 168, 2, 10),
            Ipv4Addr::new(192, 168, 2, 11),
        );
        for port in 1000..1003 {
            b.bind(NatProto::Udp, (h1, port), 0, port.into()).unwrap();
        }
        b.bind(NatProto::Tcp, (h2, 5000), 0, 7).unwrap();
        let r = m.report(&c);
        assert_eq!(r["ipv4"], "192.0.2.18");
        assert_eq!(r["psid"], 52);
        assert_eq!(r["ports"], 240);
        assert_eq!(r["port_runs"].as_array().unwrap().len(), 15);
        assert_eq!(r["port_runs"][0], "4928-4943");
        assert_eq!(r["rule_source"], "config");
        assert_eq!(r["in_use"]["udp"], 3);
        assert_eq!(r["in_use"]["total"], 4);
        assert_eq!(r["hosts"][0]["host"], "192.168.2.10");
        assert_eq!(r["hosts"][0]["udp"], 3);
        assert_eq!(r["hosts"][1]["host"], "192.168.2.11");
        assert_eq!(r["hosts"][1]["tcp"], 1);
        assert_eq!(r["exhausted"], 0);
        assert_eq!(m.external_of(b.id()), Some(Ipv4Addr::new(192, 0, 2, 18)));
    }
}

#[cfg(test)]
mod ctl2_tests;
