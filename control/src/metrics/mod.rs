//! Prometheus exporter: the router's counters in the text exposition
//! format 0.0.4, over HTTP.
//!
//! * [`render`] turns the control protocol's replies (PROTOCOL.md, "Data
//!   by command") into the exposition. It reads JSON rather than the
//!   router's structures so that the metrics and `ipoectl` always agree,
//!   and so that a field the daemon drops or renames only drops a metric.
//!   What is missing or has the wrong type is skipped; nothing panics.
//! * [`MetricsServer`] serves it on a kernel TCP socket (management or
//!   loopback address), driven from the daemon's poll loop.
//! * [`LanMetrics`] serves it on the LAN address, where there are no
//!   kernel sockets (AF_XDP takes every frame), on a smoltcp stack.
//!
//! Both servers answer one request per connection and close
//! (`Connection: close`): scrapes are seconds apart, and this keeps each
//! connection's state to one small machine ([`http::Exchange`]).

pub mod http;
pub mod lan;
#[cfg(test)]
mod tests;

pub use lan::{LanCounters, LanHttp, LanMetrics};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use http::{Exchange, Outcome};

// ---------------------------------------------------------------------------
// Exposition
// ---------------------------------------------------------------------------

/// The replies `render` reads, each the `data` of a control-protocol reply
/// (a whole reply `{"version", "ok", "data"}` is accepted too).
pub struct Inputs<'a> {
    pub interfaces: &'a Value,
    pub errors: &'a Value,
    pub runtime: &'a Value,
    pub tunnel: &'a Value,
    pub firewall: &'a Value,
    pub pd: &'a Value,
    pub leases: &'a Value,
    pub wan: &'a Value,
    /// `show map`.
    pub map: &'a Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// A metric family; `name` is without the `ipoed_` prefix.
#[derive(Clone, Copy, Debug)]
struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
}

const fn counter(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Kind::Counter,
        help,
    }
}

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Kind::Gauge,
        help,
    }
}

/// Metric name prefix.
const PREFIX: &str = "ipoed_";

/// JSON field of an entry, and the family it feeds.
type Fields = &'static [(&'static str, Family)];

/// A [`Fields`] table, one `"json_key" => counter|gauge(name, help)` per
/// entry (a macro so that the tables stay one entry per line).
macro_rules! fields {
    ($($key:literal => $kind:ident($name:literal, $help:literal),)+) => {
        &[$(($key, $kind($name, $help)),)+]
    };
}

const INTERFACE: Fields = fields! {
    "rx_packets" => counter("interface_rx_packets_total",
        "Packets received on the interface, all queues."),
    "rx_bytes" => counter("interface_rx_bytes_total",
        "Bytes received on the interface, all queues."),
    "tx_packets" => counter("interface_tx_packets_total",
        "Packets sent on the interface, all queues."),
    "tx_bytes" => counter("interface_tx_bytes_total",
        "Bytes sent on the interface, all queues."),
    "drops" => counter("interface_drops_total",
        "Frames lost on the interface: TX ring full plus dropped by the kernel on RX."),
    "csum_completed" => counter("interface_csum_completed_total",
        "TCP/UDP segments received with a partial checksum (a kernel peer's transmit \
         checksum offload) that ipoed completed."),
    "mtu" => gauge("interface_mtu_bytes", "IP MTU of the interface."),
    "zero_copy" => gauge("interface_zero_copy",
        "1 when the AF_XDP sockets run in zero-copy mode."),
};

const QUEUE: Fields = fields! {
    "rx_packets" => counter("queue_rx_packets_total", "Packets received per queue and worker."),
    "rx_bytes" => counter("queue_rx_bytes_total", "Bytes received per queue and worker."),
    "tx_packets" => counter("queue_tx_packets_total", "Packets sent per queue and worker."),
    "tx_bytes" => counter("queue_tx_bytes_total", "Bytes sent per queue and worker."),
};

/// Per-queue losses, one family with a `reason` label (the JSON field) so
/// that a new reason needs no new family.
const QUEUE_DROPS: Family = counter(
    "queue_drops_total",
    "Per-queue losses by reason: tx_ring_full, rx_kernel_dropped and rx_ring_full count \
     frames lost; rx_fill_empty counts times the fill ring ran empty.",
);
const QUEUE_DROP_FIELDS: &[&str] = &[
    "tx_ring_full",
    "rx_kernel_dropped",
    "rx_ring_full",
    "rx_fill_empty",
];

const WORKER: Fields = fields! {
    "busy_share" => gauge("worker_busy_share",
        "Share of the worker's cycles spent processing packets (0 to 1)."),
    "loops" => counter("worker_loops_total", "Main loop iterations of the worker."),
};

const NODE: Fields = fields! {
    "calls" => counter("node_calls_total", "Times the graph node ran."),
    "vectors" => counter("node_vectors_total", "Packets the graph node processed."),
    "clocks" => counter("node_clocks_total", "TSC cycles spent in the graph node."),
};

const UPTIME: Family = gauge("uptime_seconds", "Seconds since ipoed started.");
const ERRORS: Family = counter(
    "errors_total",
    "Named event and error counters of every node and engine (ipoectl show errors).",
);

const TUNNEL: Fields = fields! {
    "up" => gauge("tunnel_up",
        "1 when the DS-Lite tunnel is up (AFTR and default router known)."),
    "mtu" => gauge("tunnel_mtu_bytes", "MTU of the DS-Lite tunnel."),
    "mss_clamp" => gauge("tunnel_mss_clamp_bytes", "TCP MSS the tunnel clamps to."),
    "encap_packets" => counter("tunnel_encap_packets_total",
        "IPv4 packets encapsulated into the tunnel."),
    "decap_packets" => counter("tunnel_decap_packets_total",
        "IPv4 packets decapsulated from the tunnel."),
    "encap_bytes" => counter("tunnel_encap_bytes_total", "Bytes encapsulated into the tunnel."),
    "decap_bytes" => counter("tunnel_decap_bytes_total", "Bytes decapsulated from the tunnel."),
};

const FIREWALL: Fields = fields! {
    "enabled" => gauge("firewall_enabled", "1 when the stateful firewall is on."),
    "drops_logged" => counter("firewall_drops_logged_total", "Firewall drops logged."),
};

const SESSIONS: Fields = fields! {
    "active" => gauge("sessions_active", "Firewall sessions in the table."),
    "capacity" => gauge("sessions_capacity", "Firewall session table capacity."),
    "created" => counter("sessions_created_total", "Firewall sessions created."),
    "expired" => counter("sessions_expired_total", "Firewall sessions expired."),
    "evicted" => counter("sessions_evicted_total", "Firewall sessions evicted to make room."),
    "refused" => counter("sessions_refused_total",
        "Firewall sessions not created: the table was full and nothing could be evicted."),
    "invalid" => counter("sessions_invalid_total",
        "TCP segments the session tracker rejected (bad flags, wrong state or window)."),
};

const RULE_HITS: Family = counter(
    "firewall_rule_hits_total",
    "Packets dropped by each named firewall rule, summed over workers.",
);

const PD: Fields = fields! {
    "enabled" => gauge("pd_enabled", "1 when the DHCPv6-PD client is on."),
    "valid_left_s" => gauge("pd_valid_left_seconds",
        "Seconds until the delegated prefix's valid lifetime ends (absent when infinite)."),
    "preferred_left_s" => gauge("pd_preferred_left_seconds",
        "Seconds until the delegated prefix's preferred lifetime ends (absent when infinite)."),
    "t1_left_s" => gauge("pd_t1_left_seconds", "Seconds until the DHCPv6 client renews (T1)."),
    "t2_left_s" => gauge("pd_t2_left_seconds", "Seconds until the DHCPv6 client rebinds (T2)."),
};

/// "Bound" as in holding a lease: renewing and rebinding still route
/// the prefix, so an alert on 0 does not fire at every T1.
const PD_BOUND: Family = gauge(
    "pd_bound",
    "1 while the DHCPv6 client holds a delegated prefix (bound, renewing, rebinding).",
);
const PD_STATE: Family = gauge("pd_state", "1 for the DHCPv6 client's current state.");
const PD_STATES: &[&str] = &[
    "idle",
    "soliciting",
    "requesting",
    "bound",
    "renewing",
    "rebinding",
];
const PD_HOLDING: &[&str] = &["bound", "renewing", "rebinding"];

const LEASES: Family = gauge("leases", "DHCP leases by family and state.");
const DHCP_ENABLED: Family = gauge(
    "dhcp_server_enabled",
    "1 when the DHCP server of the family is on.",
);
/// The families of `show leases` and the states each always reports (as
/// 0 when none), so a series does not vanish when its count drops to 0.
const LEASE_FAMILIES: &[(&str, &[&str])] = &[
    ("dhcpv4", &["offered", "bound", "static", "declined"]),
    ("dhcpv6", &["advertised", "bound", "declined"]),
];

const WAN: Fields = fields! {
    "last_ra_s_ago" => gauge("wan_last_ra_seconds_ago",
        "Seconds since the last Router Advertisement on the WAN."),
};
const WAN_ROUTER_LEFT: Family = gauge(
    "wan_router_lifetime_left_seconds",
    "Seconds left of each WAN router's default router lifetime.",
);
const WAN_DEFAULT_LEFT: Family = gauge(
    "wan_default_router_lifetime_left_seconds",
    "Seconds left of the default router's lifetime (learned from RAs).",
);

const MAP_E: Fields = fields! {
    "up" => gauge("map_e_up",
        "1 while MAP-E has a mapping (an end-user prefix under the rule)."),
    "tunnel_up" => gauge("map_e_tunnel_up",
        "0 while the CE address is withdrawn as held by another node (DAD)."),
    "exhausted" => counter("map_e_ports_exhausted_total",
        "New flows refused because no port of the set was free."),
    "host_limit_refused" => counter("map_e_host_limit_refused_total",
        "New flows refused by the per-LAN-host port limit."),
    "host_count" => gauge("map_e_hosts", "LAN hosts holding ports of the set."),
    "prefix_changes" => counter("map_e_prefix_changes_total",
        "End-user prefix changes that moved the CE address, IPv4 and PSID."),
};
const MAP_E_INFO: Family = gauge(
    "map_e_info",
    "1, labelled with the MAP-E mapping: shared IPv4, PSID, CE address, BR, rule source.",
);
const MAP_E_PORTS: Family = gauge(
    "map_e_ports",
    "Ports of the MAP-E port set, per protocol (each protocol has the whole set).",
);
const MAP_E_IN_USE: Family = gauge(
    "map_e_ports_in_use",
    "Ports of the set bound, per protocol.",
);
const MAP_E_RESTING: Family = gauge(
    "map_e_ports_resting",
    "Ports of the set freed but not yet reusable (grace period), per protocol.",
);
const MAP_E_DUPLICATE: Family = gauge(
    "map_e_ce_duplicate",
    "1 while the on-link CE address is found held by another node (DAD).",
);
const MAP_E_CONFLICTS: Family = counter(
    "map_e_ce_conflicts_total",
    "Times the on-link CE address was found held by another node (DAD).",
);
/// The protocols `show map` counts ports of.
const MAP_E_PROTOS: &[&str] = &["tcp", "udp", "icmp"];

/// A sample value, kept as an integer when the JSON number is one so that
/// large counters print exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Num {
    U(u64),
    I(i64),
    F(f64),
}

impl Num {
    fn negative(self) -> bool {
        match self {
            Num::U(_) => false,
            Num::I(v) => v < 0,
            Num::F(v) => v < 0.0,
        }
    }
}

/// A number or a boolean (1/0); `None` for null and anything else.
fn number(v: Option<&Value>) -> Option<Num> {
    match v? {
        Value::Bool(b) => Some(Num::U(u64::from(*b))),
        Value::Number(n) => n
            .as_u64()
            .map(Num::U)
            .or_else(|| n.as_i64().map(Num::I))
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(Num::F)),
        _ => None,
    }
}

/// A label value from a string, number or boolean.
fn label(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The `data` of a whole reply, or the value itself.
fn data(v: &Value) -> &Value {
    match (v.get("ok"), v.get("data")) {
        (Some(_), Some(d)) => d,
        _ => v,
    }
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Label value escaping of the text format: backslash, double quote, newline.
fn escape_label(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escaping: backslash and newline.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Samples grouped by family, so each family's HELP and TYPE come once,
/// before its samples, however the inputs interleave them.
#[derive(Default)]
struct Exposition {
    blocks: Vec<Block>,
    index: HashMap<&'static str, usize>,
}

struct Block {
    family: Family,
    lines: String,
    /// Label sets written, so a duplicate entry in the input cannot make
    /// a duplicate series (which fails the whole scrape).
    series: HashSet<String>,
}

impl Exposition {
    fn sample(&mut self, family: Family, labels: &[(&str, &str)], value: Option<Num>) {
        let Some(value) = value else {
            return;
        };
        if family.kind == Kind::Counter && value.negative() {
            return;
        }
        let mut set = String::new();
        if !labels.is_empty() {
            set.push('{');
            for (k, (name, v)) in labels.iter().enumerate() {
                if k > 0 {
                    set.push(',');
                }
                set.push_str(name);
                set.push_str("=\"");
                escape_label(v, &mut set);
                set.push('"');
            }
            set.push('}');
        }
        let at = *self.index.entry(family.name).or_insert_with(|| {
            self.blocks.push(Block {
                family,
                lines: String::new(),
                series: HashSet::new(),
            });
            self.blocks.len() - 1
        });
        let block = &mut self.blocks[at];
        if !block.series.insert(set.clone()) {
            return;
        }
        let _ = match value {
            Num::U(v) => writeln!(block.lines, "{PREFIX}{}{set} {v}", family.name),
            Num::I(v) => writeln!(block.lines, "{PREFIX}{}{set} {v}", family.name),
            Num::F(v) => writeln!(block.lines, "{PREFIX}{}{set} {v}", family.name),
        };
    }

    /// Every field of `table` found in `entry`, with the same labels.
    fn fields(&mut self, table: Fields, entry: &Value, labels: &[(&str, &str)]) {
        for (key, family) in table {
            self.sample(*family, labels, number(entry.get(*key)));
        }
    }

    fn finish(self) -> String {
        let mut out = String::new();
        for block in self.blocks {
            let f = block.family;
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {PREFIX}{} {}", f.name, escape_help(f.help));
            let _ = writeln!(out, "# TYPE {PREFIX}{} {kind}", f.name);
            out.push_str(&block.lines);
        }
        out
    }
}

/// The exposition of everything in `r`.
pub fn render(r: &Inputs) -> String {
    let mut x = Exposition::default();
    interfaces(&mut x, data(r.interfaces));
    runtime(&mut x, data(r.runtime));
    errors(&mut x, data(r.errors));
    x.fields(TUNNEL, data(r.tunnel), &[]);
    firewall(&mut x, data(r.firewall));
    pd(&mut x, data(r.pd));
    leases(&mut x, data(r.leases));
    wan(&mut x, data(r.wan));
    map_e(&mut x, data(r.map));
    x.finish()
}

/// The queue label of a per-worker entry: `queue` as documented, or the
/// worker's `queues` list joined with commas (what the daemon sends when a
/// worker serves several queues of the interface).
fn queue_label(q: &Value) -> String {
    if let Some(queue) = label(q.get("queue")) {
        return queue;
    }
    let list: Vec<String> = array(q, "queues")
        .iter()
        .filter_map(|v| label(Some(v)))
        .collect();
    list.join(",")
}

fn interfaces(x: &mut Exposition, v: &Value) {
    for iface in array(v, "interfaces") {
        let Some(name) = label(iface.get("name")) else {
            continue;
        };
        let role = label(iface.get("role")).unwrap_or_default();
        x.fields(INTERFACE, iface, &[("interface", &name), ("role", &role)]);
        for q in array(iface, "queues") {
            let queue = queue_label(q);
            let worker = label(q.get("worker")).unwrap_or_default();
            let labels = [
                ("interface", name.as_str()),
                ("role", role.as_str()),
                ("queue", queue.as_str()),
                ("worker", worker.as_str()),
            ];
            x.fields(QUEUE, q, &labels);
            for reason in QUEUE_DROP_FIELDS {
                let mut with_reason = labels.to_vec();
                with_reason.push(("reason", reason));
                x.sample(QUEUE_DROPS, &with_reason, number(q.get(*reason)));
            }
        }
    }
}

fn runtime(x: &mut Exposition, v: &Value) {
    x.sample(UPTIME, &[], number(v.get("uptime_s")));
    for w in array(v, "workers") {
        let Some(worker) = label(w.get("worker")) else {
            continue;
        };
        x.fields(WORKER, w, &[("worker", &worker)]);
        for node in array(w, "nodes") {
            let Some(name) = label(node.get("name")) else {
                continue;
            };
            x.fields(NODE, node, &[("worker", &worker), ("node", &name)]);
        }
    }
}

fn errors(x: &mut Exposition, v: &Value) {
    for e in array(v, "errors") {
        let (Some(node), Some(name)) = (label(e.get("node")), label(e.get("counter"))) else {
            continue;
        };
        x.sample(
            ERRORS,
            &[("node", &node), ("counter", &name)],
            number(e.get("count")),
        );
    }
}

fn firewall(x: &mut Exposition, v: &Value) {
    x.fields(FIREWALL, v, &[]);
    if let Some(sessions) = v.get("sessions") {
        x.fields(SESSIONS, sessions, &[]);
    }
    for rule in array(v, "rules") {
        let (Some(node), Some(name)) = (label(rule.get("node")), label(rule.get("rule"))) else {
            continue;
        };
        x.sample(
            RULE_HITS,
            &[("node", &node), ("rule", &name)],
            number(rule.get("hits")),
        );
    }
}

fn pd(x: &mut Exposition, v: &Value) {
    x.fields(PD, v, &[]);
    let state = v.get("state").and_then(Value::as_str);
    match (state, v.get("enabled").and_then(Value::as_bool)) {
        (Some(state), _) => {
            let holding = PD_HOLDING.contains(&state);
            x.sample(PD_BOUND, &[], Some(Num::U(u64::from(holding))));
            for known in PD_STATES {
                x.sample(
                    PD_STATE,
                    &[("state", known)],
                    Some(Num::U(u64::from(*known == state))),
                );
            }
            if !PD_STATES.contains(&state) {
                x.sample(PD_STATE, &[("state", state)], Some(Num::U(1)));
            }
        }
        (None, Some(_)) => x.sample(PD_BOUND, &[], Some(Num::U(0))),
        (None, None) => {}
    }
}

fn leases(x: &mut Exposition, v: &Value) {
    for (family, states) in LEASE_FAMILIES {
        let Some(f) = v.get(*family) else {
            continue;
        };
        x.sample(
            DHCP_ENABLED,
            &[("family", family)],
            number(f.get("enabled")),
        );
        let Some(list) = f.get("leases").and_then(Value::as_array) else {
            continue;
        };
        let mut counts: BTreeMap<String, u64> = states.iter().map(|s| (s.to_string(), 0)).collect();
        for lease in list {
            if let Some(state) = label(lease.get("state")) {
                *counts.entry(state).or_default() += 1;
            }
        }
        for (state, n) in &counts {
            x.sample(
                LEASES,
                &[("family", family), ("state", state)],
                Some(Num::U(*n)),
            );
        }
    }
}

fn wan(x: &mut Exposition, v: &Value) {
    x.fields(WAN, v, &[]);
    let default = label(v.get("default_router"));
    for router in array(v, "routers") {
        let Some(address) = label(router.get("address")) else {
            continue;
        };
        let left = number(router.get("left_s"));
        x.sample(WAN_ROUTER_LEFT, &[("router", &address)], left);
        if default.as_deref() == Some(address.as_str()) {
            x.sample(WAN_DEFAULT_LEFT, &[], left);
        }
    }
}

/// Nothing without `map_e`, so a DS-Lite router has no MAP-E series.
fn map_e(x: &mut Exposition, v: &Value) {
    if v.get("configured").and_then(Value::as_bool) != Some(true) {
        return;
    }
    x.fields(MAP_E, v, &[]);
    if let (Some(ipv4), Some(psid)) = (label(v.get("ipv4")), label(v.get("psid"))) {
        let ce = label(v.get("ce_address")).unwrap_or_default();
        let br = label(v.get("br")).unwrap_or_default();
        let source = label(v.get("rule_source")).unwrap_or_default();
        x.sample(
            MAP_E_INFO,
            &[
                ("ipv4", &ipv4),
                ("psid", &psid),
                ("ce_address", &ce),
                ("br", &br),
                ("rule_source", &source),
            ],
            Some(Num::U(1)),
        );
    }
    let ports = number(v.get("ports"));
    for proto in MAP_E_PROTOS {
        let labels = [("proto", *proto)];
        x.sample(MAP_E_PORTS, &labels, ports);
        x.sample(
            MAP_E_IN_USE,
            &labels,
            number(v.pointer(&format!("/in_use/{proto}"))),
        );
        x.sample(
            MAP_E_RESTING,
            &labels,
            number(v.pointer(&format!("/in_grace/{proto}"))),
        );
    }
    if let Some(dad) = v.get("dad") {
        let duplicate = dad.get("state").and_then(Value::as_str) == Some("duplicate");
        x.sample(MAP_E_DUPLICATE, &[], Some(Num::U(u64::from(duplicate))));
        x.sample(MAP_E_CONFLICTS, &[], number(dad.get("conflicts")));
    }
}

const EXPORTER: Family = counter(
    "metrics_http_events_total",
    "Events of the metrics HTTP listeners themselves.",
);

/// The listeners' own counters as an exposition to append to [`render`]'s:
/// one `ipoed_metrics_http_events_total{listener,event}` family, so pass
/// every listener in one call, e.g.
/// `&[("kernel", server.counters()), ("lan", lan.counters())]`.
pub fn render_exporter(listeners: &[(&str, Vec<(&'static str, u64)>)]) -> String {
    let mut x = Exposition::default();
    for (listener, counters) in listeners {
        for (event, n) in counters {
            x.sample(
                EXPORTER,
                &[("listener", listener), ("event", event)],
                Some(Num::U(*n)),
            );
        }
    }
    x.finish()
}

// ---------------------------------------------------------------------------
// Kernel-socket server
// ---------------------------------------------------------------------------

/// Connections served at once; beyond, a new one is closed at once.
pub const MAX_CONNECTIONS: usize = 32;
/// A connection with no progress for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections accepted per `service` call, so a flood cannot keep the
/// control thread in the accept loop.
const MAX_ACCEPTS: usize = 64;
/// Bytes read and discarded after the response before giving up on a
/// clean close.
const MAX_DRAIN: usize = 64 * 1024;
const READ_CHUNK: usize = 4096;

ipoe_proto::named_counters! {
    /// What the kernel-socket listener did.
    pub struct ServerCounters {
        /// Connections accepted and served a slot.
        accepted => "accepted",
        /// Well-formed requests answered (any status, 404 and 405 too).
        served => "served",
        /// Connections closed at once: every slot in use.
        refused => "refused",
        /// Malformed, oversized or non-HTTP/1.x requests (400, 431, 505).
        bad_requests => "bad-requests",
        /// Connections closed for making no progress for 5 s.
        timeouts => "timeouts",
    }
}

/// One client connection.
struct Conn {
    stream: TcpStream,
    exchange: Exchange,
    last_active: Instant,
    /// The response is out and our side shut down: read and discard until
    /// the peer closes, so unread request bytes do not make the kernel
    /// reset the connection before the peer has read the response.
    draining: bool,
    drained: usize,
}

/// Serves the metrics on a kernel TCP socket; see the module docs. Call
/// [`MetricsServer::service`] when one of its pollfds is ready, and at
/// least every second (or at [`MetricsServer::next_deadline`]).
pub struct MetricsServer {
    listener: TcpListener,
    conns: Vec<Conn>,
    counters: ServerCounters,
}

impl MetricsServer {
    /// Listens on `addr` (non-blocking; std sets SO_REUSEADDR, so a
    /// restart does not wait for TIME-WAIT connections).
    pub fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind(addr).with_context(|| format!("metrics: cannot listen on {addr}"))?;
        listener
            .set_nonblocking(true)
            .context("metrics: cannot make the listener non-blocking")?;
        log::info!("metrics: listening on http://{addr}/metrics");
        Ok(MetricsServer {
            listener,
            conns: Vec::new(),
            counters: ServerCounters::default(),
        })
    }

    /// The address it listens on (the port, when bound to port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// The listener and every connection: POLLOUT while a response is
    /// being written, POLLIN otherwise.
    pub fn add_pollfds(&self, fds: &mut Vec<libc::pollfd>) {
        fds.push(libc::pollfd {
            fd: self.listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        for conn in &self.conns {
            let events = if conn.exchange.pending().is_empty() {
                libc::POLLIN
            } else {
                libc::POLLOUT
            };
            fds.push(libc::pollfd {
                fd: conn.stream.as_raw_fd(),
                events,
                revents: 0,
            });
        }
    }

    /// When the next idle connection times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .iter()
            .map(|c| later(c.last_active, IDLE_TIMEOUT))
            .min()
    }

    /// Counters as `(kebab-case name, value)`.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        self.counters.named()
    }

    /// Accepts, reads, answers, writes and closes, all without blocking.
    pub fn service(&mut self, now: Instant, render: &mut dyn FnMut() -> String) {
        self.accept(now);
        let mut i = 0;
        while i < self.conns.len() {
            if drive(&mut self.conns[i], now, render, &mut self.counters) {
                i += 1;
            } else {
                self.conns.swap_remove(i);
            }
        }
    }

    fn accept(&mut self, now: Instant) {
        for _ in 0..MAX_ACCEPTS {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if self.conns.len() >= MAX_CONNECTIONS {
                        self.counters.refused += 1;
                        log::debug!("metrics: {peer} refused, every slot in use");
                        continue;
                    }
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.counters.accepted += 1;
                    self.conns.push(Conn {
                        stream,
                        exchange: Exchange::new(),
                        last_active: now,
                        draining: false,
                        drained: 0,
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    // ECONNABORTED, EMFILE and the like: try again next time.
                    log::debug!("metrics: accept: {e}");
                    break;
                }
            }
        }
    }
}

fn count(outcome: Option<Outcome>, counters: &mut ServerCounters) {
    match outcome {
        Some(Outcome::Served) => counters.served += 1,
        Some(Outcome::BadRequest) => counters.bad_requests += 1,
        None => {}
    }
}

/// Moves one connection along; `false` when it is to be closed.
fn drive(
    conn: &mut Conn,
    now: Instant,
    render: &mut dyn FnMut() -> String,
    counters: &mut ServerCounters,
) -> bool {
    let mut buf = [0u8; READ_CHUNK];
    // Read the request; the reader finishes within MAX_HEAD bytes, so
    // this loop is bounded.
    while !conn.draining && conn.exchange.wants_input() {
        match conn.stream.read(&mut buf) {
            Ok(0) => {
                let outcome = conn.exchange.eof();
                if outcome.is_none() {
                    return false;
                }
                count(outcome, counters);
            }
            Ok(n) => {
                conn.last_active = now;
                count(conn.exchange.feed(&buf[..n], render), counters);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
    }
    while !conn.exchange.pending().is_empty() {
        match conn.stream.write(conn.exchange.pending()) {
            Ok(0) => return false,
            Ok(n) => {
                conn.exchange.advance(n);
                conn.last_active = now;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
    }
    if conn.exchange.done() && !conn.draining {
        // FIN after the response; the peer closing its side ends it.
        let _ = conn.stream.shutdown(Shutdown::Write);
        conn.draining = true;
        conn.last_active = now;
    }
    if conn.draining {
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    conn.drained += n;
                    if conn.drained > MAX_DRAIN {
                        return false;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return false,
            }
        }
    }
    if now >= later(conn.last_active, IDLE_TIMEOUT) {
        if !conn.draining {
            counters.timeouts += 1;
        }
        return false;
    }
    true
}

/// `t + d`, saturating instead of panicking on overflow.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(t)
}
