//! The exposition parsed back and checked line by line, the HTTP reader on
//! hand-made and random input, the kernel-socket server over loopback, and
//! the LAN server driven by a second smoltcp stack on a fake clock.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::IpEndpoint;

use super::http::{self, HttpRequestReader, Progress};
use super::*;
use ipoe_proto::smoldev::QueueDevice;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A tiny xorshift64* generator, so the random tests are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `{a="x",b="y"}` (escapes undone); returns the labels and the rest.
fn parse_labels(s: &str) -> (Vec<(String, String)>, &str) {
    let mut labels = Vec::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return (labels, s);
    };
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after);
        }
        let eq = rest.find('=').expect("label without =");
        let name = &rest[..eq];
        assert!(is_label_name(name), "bad label name {name:?}");
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .expect("label value not quoted");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next().expect("unterminated label value");
            match c {
                '\\' => match chars.next().expect("dangling backslash").1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => panic!("bad escape \\{other}"),
                },
                '"' => break i,
                '\n' => panic!("raw newline in a label value"),
                c => value.push(c),
            }
        };
        labels.push((name.to_string(), value));
        rest = &rest[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Checks the text format line by line and returns every series (as
/// printed, `name{labels}`) with its value.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let mut helps = HashSet::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series = BTreeMap::new();
    assert!(text.is_empty() || text.ends_with('\n'));
    for line in text.lines() {
        assert!(!line.is_empty(), "empty line");
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(is_metric_name(name), "{line}");
            assert!(helps.insert(name.to_string()), "HELP twice: {line}");
            assert!(!types.contains_key(name), "HELP after TYPE: {line}");
            assert!(!finished.contains(name), "family reopened: {line}");
            if let Some(prev) = current.replace(name.to_string()) {
                finished.insert(prev);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(current.as_deref(), Some(name), "TYPE not after its HELP");
            assert!(kind == "counter" || kind == "gauge", "{line}");
            assert!(types.insert(name.to_string(), kind.to_string()).is_none());
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment {line}");
        let name_end = line.find(['{', ' ']).expect("no value");
        let name = &line[..name_end];
        assert!(is_metric_name(name), "{line}");
        assert!(name.starts_with("ipoed_"), "{line}");
        assert_eq!(
            current.as_deref(),
            Some(name),
            "sample outside its family: {line}"
        );
        let kind = types.get(name).expect("sample before TYPE");
        if kind == "counter" {
            assert!(name.ends_with("_total"), "counter without _total: {name}");
        }
        let (labels, rest) = parse_labels(&line[name_end..]);
        let mut seen = HashSet::new();
        for (k, _) in &labels {
            assert!(seen.insert(k.clone()), "label twice: {line}");
        }
        let value_text = rest.strip_prefix(' ').expect("no space before the value");
        assert!(!value_text.contains(' '), "timestamp or junk: {line}");
        let value: f64 = value_text.parse().expect("value not a number");
        if kind == "counter" {
            assert!(value >= 0.0, "negative counter: {line}");
        }
        let key = line[..line.len() - value_text.len() - 1].to_string();
        assert!(
            series.insert(key, value).is_none(),
            "duplicate series: {line}"
        );
    }
    series
}

fn sample() -> [Value; 8] {
    let interfaces = json!({"interfaces": [
        {"name": "wan0", "role": "wan", "ifindex": 2, "mac": "02:00:00:00:00:01", "mtu": 1500,
         "xdp_mode": "native", "zero_copy": true, "zero_copy_capable": true, "addresses": [],
         "rx_packets": 100, "rx_bytes": 150000, "tx_packets": 90, "tx_bytes": 120000, "drops": 3,
         "queues": [
            {"queue": 0, "worker": 0, "rx_packets": 60, "rx_bytes": 90000, "tx_packets": 50,
             "tx_bytes": 70000, "tx_ring_full": 1, "rx_kernel_dropped": 2, "rx_ring_full": 0,
             "rx_fill_empty": 5},
            {"queues": [1, 3], "worker": 1, "rx_packets": 40, "rx_bytes": 60000, "tx_packets": 40,
             "tx_bytes": 50000, "tx_ring_full": 0, "rx_kernel_dropped": 0, "rx_ring_full": 0,
             "rx_fill_empty": 0}
         ]},
        {"name": "lan\"0\\x\n", "role": "lan", "rx_packets": 18446744073709551615u64,
         "rx_bytes": "odd", "tx_packets": null, "queues": "odd"},
        {"role": "lan", "rx_packets": 1}
    ]});
    let errors = json!({"errors": [
        {"node": "ip6-input", "counter": "bad-checksum", "description": "", "count": 7},
        {"node": "control", "counter": "inject-failed", "description": "x", "count": 0},
        {"node": "neighbor", "counter": "probe-failed", "count": -1},
        {"node": "neighbor", "count": 4}
    ]});
    let runtime = json!({"uptime_s": 3600, "workers": [
        {"worker": 0, "queue": 0, "core": 2, "loops": 1000, "busy_share": 0.25, "nodes": [
            {"name": "ip6-input", "calls": 10, "vectors": 100, "clocks": 5000,
             "vectors_per_call": 10.0, "clocks_per_packet": 50.0},
            {"name": "ip4-forward", "calls": 1, "vectors": 2, "clocks": 3}
        ]},
        {"worker": 1, "busy_share": 0.0, "nodes": [{"name": "ip6-input", "calls": 0}]}
    ]});
    let tunnel = json!({"configured_aftr": null, "up": true, "mtu": 1460, "mss_clamp": null,
        "encap_packets": 11, "decap_packets": 12, "encap_bytes": 1100, "decap_bytes": 1200});
    let firewall = json!({"enabled": true, "sessions": {"active": 5, "capacity": 65536,
        "created": 50, "expired": 40, "evicted": 2, "refused": 1, "invalid": 9},
        "rules": [{"node": "ip6-firewall", "rule": "no-session", "description": "", "hits": 13}],
        "drops_logged": 4});
    let pd = json!({"enabled": true, "state": "renewing", "delegated_prefix": "2001:db8::/56",
        "valid_left_s": 7000, "preferred_left_s": null, "t1_left_s": -5, "t2_left_s": 100});
    let leases = json!({
        "dhcpv4": {"enabled": true, "leases": [
            {"ip": "192.168.1.10", "state": "bound", "left_s": 100},
            {"ip": "192.168.1.11", "state": "bound", "left_s": 100},
            {"ip": "192.168.1.12", "state": "offered", "left_s": 10},
            {"ip": "192.168.1.13", "state": "weird"}]},
        "dhcpv6": {"enabled": false, "mode": "off", "leases": []}
    });
    let wan = json!({"interface": "wan0", "default_router": "fe80::1", "last_ra_s_ago": 12,
        "routers": [
            {"address": "fe80::1", "lifetime_s": 1800, "left_s": 1788},
            {"address": "fe80::2", "lifetime_s": 1800, "left_s": 1000.5}]});
    [
        interfaces, errors, runtime, tunnel, firewall, pd, leases, wan,
    ]
}

fn render_all(v: &[Value; 8]) -> String {
    render_inputs(v, &Value::Null)
}

/// The page of `show` replies `v` (in `Inputs` order) and `show map`.
fn render_inputs(v: &[Value; 8], map: &Value) -> String {
    render(&Inputs {
        interfaces: &v[0],
        errors: &v[1],
        runtime: &v[2],
        tunnel: &v[3],
        firewall: &v[4],
        pd: &v[5],
        leases: &v[6],
        wan: &v[7],
        map,
    })
}

// ---------------------------------------------------------------------------
// Exposition
// ---------------------------------------------------------------------------

#[test]
fn render_is_valid_and_has_the_values() {
    let text = render_all(&sample());
    let m = parse_exposition(&text);
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("missing {k}\n{text}"));
    let wan = r#"interface="wan0",role="wan""#;
    assert_eq!(
        get(&format!("ipoed_interface_rx_packets_total{{{wan}}}")),
        100.0
    );
    assert_eq!(
        get(&format!("ipoed_interface_tx_bytes_total{{{wan}}}")),
        120000.0
    );
    assert_eq!(get(&format!("ipoed_interface_drops_total{{{wan}}}")), 3.0);
    assert_eq!(get(&format!("ipoed_interface_zero_copy{{{wan}}}")), 1.0);
    assert_eq!(
        get(&format!(
            r#"ipoed_queue_rx_bytes_total{{{wan},queue="0",worker="0"}}"#
        )),
        90000.0
    );
    // The daemon's `queues` list, joined.
    assert_eq!(
        get(&format!(
            r#"ipoed_queue_tx_packets_total{{{wan},queue="1,3",worker="1"}}"#
        )),
        40.0
    );
    assert_eq!(
        get(&format!(
            r#"ipoed_queue_drops_total{{{wan},queue="0",worker="0",reason="rx_kernel_dropped"}}"#
        )),
        2.0
    );
    // Escaped label value; u64::MAX printed exactly; odd fields skipped.
    assert!(text.contains(
        r#"ipoed_interface_rx_packets_total{interface="lan\"0\\x\n",role="lan"} 18446744073709551615"#
    ));
    assert!(!text.contains(r#"ipoed_interface_rx_bytes_total{interface="lan"#));
    assert!(!text.contains(r#"ipoed_interface_tx_packets_total{interface="lan"#));
    assert_eq!(
        text.matches("ipoed_interface_rx_packets_total{").count(),
        2,
        "an entry without a name is skipped"
    );

    assert_eq!(
        get(r#"ipoed_node_calls_total{worker="0",node="ip6-input"}"#),
        10.0
    );
    assert_eq!(
        get(r#"ipoed_node_clocks_total{worker="0",node="ip6-input"}"#),
        5000.0
    );
    assert_eq!(
        get(r#"ipoed_node_calls_total{worker="1",node="ip6-input"}"#),
        0.0
    );
    assert!(!m.contains_key(r#"ipoed_node_vectors_total{worker="1",node="ip6-input"}"#));
    assert_eq!(get(r#"ipoed_worker_busy_share{worker="0"}"#), 0.25);
    assert_eq!(get(r#"ipoed_worker_loops_total{worker="0"}"#), 1000.0);
    assert_eq!(get("ipoed_uptime_seconds"), 3600.0);

    assert_eq!(
        get(r#"ipoed_errors_total{node="ip6-input",counter="bad-checksum"}"#),
        7.0
    );
    assert_eq!(
        get(r#"ipoed_errors_total{node="control",counter="inject-failed"}"#),
        0.0
    );
    // A negative counter and an entry without its name are skipped.
    assert!(!text.contains("probe-failed"));
    assert_eq!(text.matches("ipoed_errors_total{").count(), 2);

    assert_eq!(get("ipoed_tunnel_up"), 1.0);
    assert_eq!(get("ipoed_tunnel_mtu_bytes"), 1460.0);
    assert!(!text.contains("ipoed_tunnel_mss_clamp_bytes"));
    assert_eq!(get("ipoed_tunnel_encap_packets_total"), 11.0);
    assert_eq!(get("ipoed_tunnel_decap_packets_total"), 12.0);
    assert_eq!(get("ipoed_tunnel_encap_bytes_total"), 1100.0);
    assert_eq!(get("ipoed_tunnel_decap_bytes_total"), 1200.0);

    assert_eq!(get("ipoed_sessions_active"), 5.0);
    assert_eq!(get("ipoed_sessions_capacity"), 65536.0);
    assert_eq!(get("ipoed_sessions_created_total"), 50.0);
    assert_eq!(get("ipoed_sessions_expired_total"), 40.0);
    assert_eq!(get("ipoed_sessions_evicted_total"), 2.0);
    assert_eq!(get("ipoed_sessions_refused_total"), 1.0);
    assert_eq!(get("ipoed_firewall_enabled"), 1.0);
    assert_eq!(
        get(r#"ipoed_firewall_rule_hits_total{node="ip6-firewall",rule="no-session"}"#),
        13.0
    );

    assert_eq!(get("ipoed_pd_bound"), 1.0);
    assert_eq!(get(r#"ipoed_pd_state{state="renewing"}"#), 1.0);
    assert_eq!(get(r#"ipoed_pd_state{state="bound"}"#), 0.0);
    assert_eq!(get("ipoed_pd_valid_left_seconds"), 7000.0);
    assert!(!text.contains("ipoed_pd_preferred_left_seconds"));
    assert_eq!(get("ipoed_pd_t1_left_seconds"), -5.0);

    assert_eq!(get(r#"ipoed_leases{family="dhcpv4",state="bound"}"#), 2.0);
    assert_eq!(get(r#"ipoed_leases{family="dhcpv4",state="offered"}"#), 1.0);
    assert_eq!(get(r#"ipoed_leases{family="dhcpv4",state="static"}"#), 0.0);
    assert_eq!(get(r#"ipoed_leases{family="dhcpv4",state="weird"}"#), 1.0);
    assert_eq!(get(r#"ipoed_leases{family="dhcpv6",state="bound"}"#), 0.0);
    assert_eq!(get(r#"ipoed_dhcp_server_enabled{family="dhcpv6"}"#), 0.0);

    assert_eq!(
        get("ipoed_wan_default_router_lifetime_left_seconds"),
        1788.0
    );
    assert_eq!(
        get(r#"ipoed_wan_router_lifetime_left_seconds{router="fe80::2"}"#),
        1000.5
    );
    assert_eq!(get("ipoed_wan_last_ra_seconds_ago"), 12.0);
}

#[test]
fn render_accepts_whole_replies_and_pd_off() {
    let mut v = sample();
    v[2] = json!({"version": 1, "ok": true, "data": {"uptime_s": 5}});
    v[5] = json!({"enabled": false});
    v[3] = json!({"version": 1, "ok": false, "error": "no"});
    let text = render_all(&v);
    let m = parse_exposition(&text);
    assert_eq!(m["ipoed_uptime_seconds"], 5.0);
    assert_eq!(m["ipoed_pd_bound"], 0.0);
    assert_eq!(m["ipoed_pd_enabled"], 0.0);
    assert!(!text.contains("ipoed_pd_state"));
    assert!(!text.contains("ipoed_tunnel_"));
}

#[test]
fn render_survives_odd_and_random_inputs() {
    let odd = [
        json!(null),
        json!(1),
        json!("x"),
        json!([]),
        json!({}),
        json!({"interfaces": 5, "errors": {}, "workers": [null, 1, {"nodes": 3}]}),
        json!({"interfaces": [null, {"name": {}}, {"name": 1, "queues": [null, 2, {}]}]}),
        json!({"sessions": [], "rules": [{}], "state": 5, "routers": [{"address": []}]}),
        json!({"dhcpv4": [], "dhcpv6": {"leases": [null, {"state": null}]}}),
    ];
    for a in &odd {
        for b in &odd {
            let v = [
                a.clone(),
                b.clone(),
                a.clone(),
                b.clone(),
                a.clone(),
                b.clone(),
                a.clone(),
                b.clone(),
            ];
            parse_exposition(&render_all(&v));
        }
    }
    // Random trees made of the keys render looks for.
    const KEYS: &[&str] = &[
        "interfaces",
        "name",
        "role",
        "queues",
        "queue",
        "worker",
        "rx_packets",
        "drops",
        "tx_ring_full",
        "errors",
        "node",
        "counter",
        "count",
        "workers",
        "nodes",
        "calls",
        "busy_share",
        "uptime_s",
        "up",
        "mss_clamp",
        "sessions",
        "active",
        "rules",
        "rule",
        "hits",
        "state",
        "enabled",
        "valid_left_s",
        "dhcpv4",
        "leases",
        "routers",
        "address",
        "left_s",
        "default_router",
        "data",
        "ok",
    ];
    fn tree(rng: &mut Rng, depth: u32) -> Value {
        match rng.below(if depth == 0 { 6 } else { 8 }) {
            0 => Value::Null,
            1 => json!(rng.below(3) == 0),
            2 => json!(rng.next() as i64),
            3 => json!((rng.next() as f64) / 7.0 - 1e18),
            4 => json!(KEYS[rng.below(KEYS.len() as u64) as usize]),
            5 => json!(["bound", "\"\\\n", "fe80::1", "é"][rng.below(4) as usize]),
            6 => Value::Array((0..rng.below(4)).map(|_| tree(rng, depth - 1)).collect()),
            _ => Value::Object(
                (0..rng.below(6))
                    .map(|_| {
                        let key = KEYS[rng.below(KEYS.len() as u64) as usize].to_string();
                        (key, tree(rng, depth - 1))
                    })
                    .collect(),
            ),
        }
    }
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..2000 {
        let v: [Value; 8] = std::array::from_fn(|_| tree(&mut rng, 4));
        parse_exposition(&render_all(&v));
    }
}

#[test]
fn exporter_counters_render() {
    let text = render_exporter(&[
        ("kernel", vec![("served", 3), ("bad-requests", 1)]),
        ("lan", vec![("served", 2)]),
    ]);
    let m = parse_exposition(&text);
    assert_eq!(
        m[r#"ipoed_metrics_http_events_total{listener="kernel",event="served"}"#],
        3.0
    );
    assert_eq!(
        m[r#"ipoed_metrics_http_events_total{listener="lan",event="served"}"#],
        2.0
    );
}

// ---------------------------------------------------------------------------
// HTTP reader
// ---------------------------------------------------------------------------

fn read_all(bytes: &[u8]) -> Progress {
    HttpRequestReader::new().push(bytes)
}

fn request(method: &str, path: &str) -> Progress {
    match read_all(format!("{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()) {
        Progress::Request(r) => {
            assert_eq!(r.method, method);
            Progress::Request(r)
        }
        other => other,
    }
}

fn path_of(p: Progress) -> String {
    match p {
        Progress::Request(r) => r.path,
        other => panic!("not a request: {other:?}"),
    }
}

#[test]
fn reader_takes_a_request_split_anywhere() {
    let raw = b"\r\nGET /metrics?x=1 HTTP/1.1\r\nHost: router\r\nUser-Agent: Prometheus/2.0\r\nAccept: */*\r\n\r\nBODY";
    for split in 0..raw.len() {
        let mut reader = HttpRequestReader::new();
        let first = reader.push(&raw[..split]);
        let done = if first == Progress::NeedMore {
            reader.push(&raw[split..])
        } else {
            first
        };
        let Progress::Request(r) = done else {
            panic!("split {split}: {done:?}");
        };
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/metrics"));
        assert_eq!(r.minor_version, 1);
    }
    // Byte by byte, with bare LF line ends.
    let mut reader = HttpRequestReader::new();
    let raw = b"HEAD / HTTP/1.0\n\n";
    for (i, b) in raw.iter().enumerate() {
        let p = reader.push(&[*b]);
        if i + 1 < raw.len() {
            assert_eq!(p, Progress::NeedMore, "at {i}");
        } else {
            assert_eq!(path_of(p), "/");
        }
    }
    // The result stays once final.
    assert!(
        matches!(reader.push(b"GET /x HTTP/1.1\r\n\r\n"), Progress::Request(r) if r.method == "HEAD")
    );
}

#[test]
fn reader_rejects_what_it_must() {
    // Oversized head: 431, whether in one push or many.
    let mut big = b"GET /metrics HTTP/1.1\r\nHost: x\r\n".to_vec();
    while big.len() < http::MAX_HEAD + 10 {
        big.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    assert_eq!(read_all(&big), Progress::Error(431));
    let mut reader = HttpRequestReader::new();
    let mut last = Progress::NeedMore;
    for chunk in big.chunks(100) {
        last = reader.push(chunk);
    }
    assert_eq!(last, Progress::Error(431));
    assert!(reader.buffered() <= http::MAX_HEAD);
    // A head of exactly MAX_HEAD bytes is fine.
    let mut exact = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
    exact.resize(http::MAX_HEAD - 4, b'a');
    exact.extend_from_slice(b"\r\n\r\n");
    assert_eq!(exact.len(), http::MAX_HEAD);
    assert_eq!(path_of(read_all(&exact)), "/");
    // Too many fields.
    let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for _ in 0..http::MAX_HEADERS {
        many.extend_from_slice(b"A: b\r\n");
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(read_all(&many), Progress::Error(431));

    for bad in [
        &b"GET /metrics\r\n\r\n"[..],
        b"GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /metrics HTTP/1.1 \r\nHost: x\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\x01\r\n\r\n",
        b"GET /met\x7frics HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /metrics HTTPS/1.1\r\nHost: x\r\n\r\n",
        b"G(T /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET relative HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        assert_eq!(
            read_all(bad),
            Progress::Error(400),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        read_all(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
        Progress::Error(505)
    );
    // Not HTTP at all (a TLS ClientHello): refused at the first byte.
    assert_eq!(read_all(&[0x16, 0x03, 0x01]), Progress::Error(400));
    // HTTP/1.0 needs no Host.
    assert_eq!(
        path_of(read_all(b"GET /metrics HTTP/1.0\r\n\r\n")),
        "/metrics"
    );
    // Absolute form.
    assert_eq!(
        path_of(read_all(
            b"GET http://router:9100/metrics?a HTTP/1.1\r\nHost: x\r\n\r\n"
        )),
        "/metrics"
    );
}

fn status_of(response: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(response);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(": ")?;
        n.eq_ignore_ascii_case(name).then_some(v)
    })
}

#[test]
fn routing() {
    let mut renders = 0;
    let mut render = || {
        renders += 1;
        "ipoed_up 1\n".to_string()
    };
    let answer = |p: Progress, render: &mut dyn FnMut() -> String| match p {
        Progress::Request(r) => http::route(&r, render),
        other => panic!("{other:?}"),
    };
    let (status, bytes) = answer(request("GET", "/metrics"), &mut render);
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(status, 200);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert_eq!(
        header(&text, "content-type"),
        Some(http::METRICS_CONTENT_TYPE)
    );
    assert_eq!(header(&text, "content-length"), Some("11"));
    assert_eq!(header(&text, "connection"), Some("close"));
    assert!(text.ends_with("\r\n\r\nipoed_up 1\n"));

    // HEAD: the same headers, no body.
    let (status, bytes) = answer(request("HEAD", "/metrics"), &mut render);
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(status, 200);
    assert_eq!(header(&text, "content-length"), Some("11"));
    assert!(text.ends_with("\r\n\r\n"));

    let (status, bytes) = answer(request("GET", "/"), &mut render);
    assert_eq!(status, 200);
    assert!(String::from_utf8(bytes).unwrap().contains("/metrics"));
    let (status, _) = answer(request("GET", "/metrics/x"), &mut render);
    assert_eq!(status, 404);
    let (status, bytes) = answer(request("HEAD", "/nope"), &mut render);
    assert_eq!(status, 404);
    assert!(bytes.ends_with(b"\r\n\r\n"));
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
        let (status, bytes) = answer(request(method, "/metrics"), &mut render);
        assert_eq!(status, 405, "{method}");
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(header(&text, "allow"), Some("GET, HEAD"));
    }
    let (status, _) = answer(request("GET", "*"), &mut render);
    assert_eq!(status, 400);
    assert_eq!(renders, 2, "render runs only for /metrics");

    let r = http::response(200, "text/x\r\nEvil: 1", "hi");
    let text = String::from_utf8(r).unwrap();
    assert_eq!(header(&text, "evil"), None);
    assert_eq!(status_of(&http::error_response(431)), 431);
}

#[test]
fn reader_never_panics_on_random_bytes() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let seeds: [&[u8]; 4] = [
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        b"HEAD / HTTP/1.0\r\n\r\n",
        b"\r\n\r\nPOST http://a/b?c HTTP/1.1\r\nHost:\r\n\r\n",
        b"GET * HTTP/9.9\n\n",
    ];
    let mut outcomes = [0usize; 3];
    for _ in 0..100_000 {
        let mut reader = HttpRequestReader::new();
        let mut exchange = http::Exchange::new();
        let mut render = || "x 1\n".to_string();
        // Mutated valid requests reach the parser's deep paths; pure
        // noise reaches the early rejections.
        let mut input: Vec<u8> = if rng.below(2) == 0 {
            seeds[rng.below(4) as usize].to_vec()
        } else {
            (0..rng.below(64))
                .map(|_| b" \r\n:/GETHP1.x\t\x00\xff"[rng.below(16) as usize])
                .collect()
        };
        for _ in 0..rng.below(6) {
            if input.is_empty() {
                break;
            }
            let at = rng.below(input.len() as u64) as usize;
            match rng.below(3) {
                0 => input[at] = rng.next() as u8,
                1 => {
                    input.remove(at);
                }
                _ => input.insert(at, rng.next() as u8),
            }
        }
        if rng.below(50) == 0 {
            input.resize(input.len() + 9000, b'a');
        }
        let mut last = Progress::NeedMore;
        let mut rest = &input[..];
        while !rest.is_empty() {
            let n = (rng.below(rest.len() as u64) + 1) as usize;
            last = reader.push(&rest[..n]);
            exchange.feed(&rest[..n], &mut render);
            rest = &rest[n..];
        }
        exchange.eof();
        assert!(reader.buffered() <= http::MAX_HEAD);
        match last {
            Progress::NeedMore => outcomes[0] += 1,
            Progress::Request(_) => outcomes[1] += 1,
            Progress::Error(status) => {
                assert!(matches!(status, 400 | 431 | 505));
                outcomes[2] += 1;
            }
        }
        if !input.is_empty() {
            assert!(!exchange.pending().is_empty() || exchange.wants_input());
        }
    }
    assert!(outcomes.iter().all(|&n| n > 100), "{outcomes:?}");
}

// ---------------------------------------------------------------------------
// Kernel-socket server
// ---------------------------------------------------------------------------

fn loopback_server() -> (MetricsServer, SocketAddr) {
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    (server, addr)
}

/// Sends `request` and services the server until the client has read to
/// end of file.
fn kernel_fetch(
    server: &mut MetricsServer,
    addr: SocketAddr,
    request: &[u8],
    body: &str,
) -> Vec<u8> {
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(request).unwrap();
    client.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(10), "no answer");
        server.service(Instant::now(), &mut || body.to_string());
        match client.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn counter_of(counters: &[(&'static str, u64)], name: &str) -> u64 {
    counters
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

fn big_body() -> String {
    let mut body = String::new();
    let mut k = 0;
    while body.len() < 100_000 {
        body.push_str(&format!("ipoed_test_total{{n=\"{k}\"}} {k}\n"));
        k += 1;
    }
    body
}

#[test]
fn kernel_server_serves_over_loopback() {
    let (mut server, addr) = loopback_server();
    let body = big_body();
    let got = kernel_fetch(
        &mut server,
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        &body,
    );
    let text = String::from_utf8(got).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{}", &text[..40]);
    assert_eq!(
        header(&text, "content-length"),
        Some(body.len().to_string().as_str())
    );
    assert!(text.ends_with(&body));

    // Request bytes past the head (a body) do not spoil the close.
    let got = kernel_fetch(
        &mut server,
        addr,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        &body,
    );
    assert_eq!(status_of(&got), 405);
    let got = kernel_fetch(
        &mut server,
        addr,
        b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n",
        &body,
    );
    assert_eq!(status_of(&got), 404);
    let got = kernel_fetch(&mut server, addr, b"\x16\x03\x01\x00", &body);
    assert_eq!(status_of(&got), 400);

    // Let the server notice the closes.
    for _ in 0..100 {
        server.service(Instant::now(), &mut String::new);
        if server.connections() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(server.connections(), 0);
    let c = server.counters();
    assert_eq!(counter_of(&c, "served"), 3);
    assert_eq!(counter_of(&c, "bad-requests"), 1);
    assert_eq!(counter_of(&c, "accepted"), 4);
    let mut fds = Vec::new();
    server.add_pollfds(&mut fds);
    assert_eq!(fds.len(), 1);
}

#[test]
fn kernel_server_limits_and_times_out() {
    let (mut server, addr) = loopback_server();
    let mut render = || "x 1\n".to_string();
    let clients: Vec<TcpStream> = (0..MAX_CONNECTIONS + 3)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let t0 = Instant::now();
    for _ in 0..200 {
        server.service(t0, &mut render);
        let c = server.counters();
        if counter_of(&c, "accepted") + counter_of(&c, "refused") == clients.len() as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(server.connections(), MAX_CONNECTIONS);
    assert_eq!(counter_of(&server.counters(), "refused"), 3);
    let mut fds = Vec::new();
    server.add_pollfds(&mut fds);
    assert_eq!(fds.len(), 1 + MAX_CONNECTIONS);
    assert!(server.next_deadline().is_some_and(|d| d > t0));

    // Another is refused at once: it sees end of file.
    let mut late = TcpStream::connect(addr).unwrap();
    server.service(t0 + Duration::from_secs(4), &mut render);
    assert_eq!(counter_of(&server.counters(), "refused"), 4);
    late.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(late.read(&mut [0u8; 16]).unwrap_or(0), 0);

    // One sends half a request at 4 s (one the server kept: those it
    // refused see end of file at once)...
    let mut clients = clients;
    let kept = clients
        .iter()
        .position(|c| {
            c.set_nonblocking(true).unwrap();
            let mut probe = [0u8; 1];
            matches!(c.peek(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .expect("no client kept");
    let mut busy = clients.remove(kept);
    busy.set_nonblocking(false).unwrap();
    busy.write_all(b"GET /metr").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    server.service(t0 + Duration::from_secs(4), &mut render);
    // ... so at 6 s only the others are idle, and at 10 s that one too.
    server.service(t0 + Duration::from_secs(6), &mut render);
    assert_eq!(server.connections(), 1);
    assert_eq!(
        counter_of(&server.counters(), "timeouts"),
        MAX_CONNECTIONS as u64 - 1
    );
    server.service(t0 + Duration::from_secs(10), &mut render);
    assert_eq!(server.connections(), 0);
    assert_eq!(
        counter_of(&server.counters(), "timeouts"),
        MAX_CONNECTIONS as u64
    );
    drop(clients);
    // The closed client sees end of file.
    busy.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let _ = busy.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

// ---------------------------------------------------------------------------
// LAN server over smoltcp
// ---------------------------------------------------------------------------

const LAN_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const LAN_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const HOST_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const HOST_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10);
const PORT: u16 = 9100;

/// A LAN host with its own smoltcp stack, wired back to back with the
/// server, on a fake clock.
struct LanBench {
    server: LanMetrics,
    iface: Interface,
    dev: QueueDevice,
    sockets: SocketSet<'static>,
    base: Instant,
    now: Instant,
    body: String,
    renders: usize,
    /// Every packet the server sent.
    sent: usize,
}

impl LanBench {
    fn new(addr: IpAddr, slots: usize) -> LanBench {
        let now = Instant::now();
        let (iface, dev) = ipoe_proto::smoldev::test_client(7, HOST_V4, HOST_V6);
        LanBench {
            server: LanMetrics::new(addr, PORT, slots, now),
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
            base: now,
            now,
            body: big_body(),
            renders: 0,
            sent: 0,
        }
    }

    fn smol(&self) -> SmolInstant {
        SmolInstant::from_micros((self.now - self.base).as_micros() as i64)
    }

    fn connect(&mut self, to: IpAddr, local_port: u16) -> SocketHandle {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 65536]),
            tcp::SocketBuffer::new(vec![0; 65536]),
        );
        socket
            .connect(
                self.iface.context(),
                IpEndpoint::new(to.into(), PORT),
                local_port,
            )
            .unwrap();
        self.sockets.add(socket)
    }

    fn socket(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut(handle)
    }

    /// One round: the host's packets to the server and back.
    fn round(&mut self) -> usize {
        let ts = self.smol();
        self.iface.poll(ts, &mut self.dev, &mut self.sockets);
        let to_server = std::mem::take(&mut self.dev.tx);
        for p in &to_server {
            assert!(self.server.wants(
                match p[0] >> 4 {
                    4 => IpAddr::from([p[16], p[17], p[18], p[19]]),
                    _ => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(&p[24..40]);
                        IpAddr::from(a)
                    }
                },
                PORT
            ));
            self.server.push_ip(self.now, p);
        }
        let mut to_host = Vec::new();
        let (body, renders) = (&self.body, &mut self.renders);
        self.server.poll(
            self.now,
            &mut || {
                *renders += 1;
                body.clone()
            },
            &mut to_host,
        );
        let moved = to_server.len() + to_host.len();
        self.sent += to_host.len();
        self.dev.rx.extend(to_host);
        moved
    }

    /// Rounds every 10 ms of fake time until `done` or `limit` passes.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            self.round();
            if done(self) {
                return true;
            }
            self.now += Duration::from_millis(10);
        }
        false
    }

    /// Connects, sends `request`, reads until the server closes.
    fn fetch(&mut self, to: IpAddr, local_port: u16, request: &[u8]) -> Vec<u8> {
        let h = self.connect(to, local_port);
        let mut request = Some(request.to_vec());
        let mut got = Vec::new();
        let closed = self.run_until(Duration::from_secs(4), |b| {
            let socket = b.socket(h);
            if socket.may_send() {
                if let Some(r) = request.take() {
                    assert_eq!(socket.send_slice(&r).unwrap(), r.len());
                }
            }
            while socket.can_recv() {
                socket
                    .recv(|buf| {
                        got.extend_from_slice(buf);
                        (buf.len(), ())
                    })
                    .unwrap();
            }
            // End of file: the server's FIN arrived and all was read.
            request.is_none() && !socket.may_recv()
        });
        assert!(closed, "no close; got {} bytes", got.len());
        self.socket(h).close();
        self.run_until(Duration::from_secs(1), |b| b.round() == 0);
        self.sockets.remove(h);
        got
    }
}

#[test]
fn lan_serves_a_large_response_over_ipv4() {
    let mut b = LanBench::new(IpAddr::V4(LAN_V4), 4);
    let got = b.fetch(
        IpAddr::V4(LAN_V4),
        40000,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let text = String::from_utf8(got).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert_eq!(
        header(&text, "content-length"),
        Some(b.body.len().to_string().as_str())
    );
    assert!(text.ends_with(&b.body), "body cut short");
    assert_eq!(b.renders, 1);
    // Many segments: the response went out across polls, window by window.
    assert!(b.sent > 60, "{} packets", b.sent);
    assert!(b.server.connections().is_empty());
    let c = b.server.counters();
    assert_eq!(counter_of(&c, "accepted"), 1);
    assert_eq!(counter_of(&c, "served"), 1);

    // The slot serves again, on the same client port too.
    let got = b.fetch(IpAddr::V4(LAN_V4), 40000, b"HEAD / HTTP/1.0\r\n\r\n");
    assert_eq!(status_of(&got), 200);
    assert!(got.ends_with(b"\r\n\r\n"));
    let got = b.fetch(
        IpAddr::V4(LAN_V4),
        40001,
        b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(status_of(&got), 405);
    let got = b.fetch(IpAddr::V4(LAN_V4), 40002, b"\x00\x01junk\r\n\r\n");
    assert_eq!(status_of(&got), 400);
    let c = b.server.counters();
    assert_eq!(counter_of(&c, "served"), 3);
    assert_eq!(counter_of(&c, "bad-requests"), 1);
    assert_eq!(counter_of(&c, "timeouts"), 0);
}

#[test]
fn lan_serves_over_ipv6() {
    let mut b = LanBench::new(IpAddr::V6(LAN_V6), 1);
    let got = b.fetch(
        IpAddr::V6(LAN_V6),
        40000,
        b"GET /metrics HTTP/1.1\r\nHost: [fd00::1]\r\n\r\n",
    );
    let text = String::from_utf8(got).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(text.ends_with(&b.body));
}

#[test]
fn lan_slots_bound_and_idle_connections_close() {
    let mut b = LanBench::new(IpAddr::V4(LAN_V4), 2);
    let h1 = b.connect(IpAddr::V4(LAN_V4), 41000);
    let h2 = b.connect(IpAddr::V4(LAN_V4), 41001);
    assert!(b.run_until(Duration::from_secs(1), |b| {
        b.socket(h1).state() == tcp::State::Established
            && b.socket(h2).state() == tcp::State::Established
    }));
    // A third finds no slot: reset.
    let h3 = b.connect(IpAddr::V4(LAN_V4), 41002);
    assert!(b.run_until(Duration::from_secs(1), |b| b.socket(h3).state()
        == tcp::State::Closed));
    assert_eq!(counter_of(&b.server.counters(), "refused"), 1);
    assert_eq!(b.server.connections().len(), 2);

    // h1 sends part of a request, then both fall silent: closed after 5 s.
    b.socket(h1).send_slice(b"GET /met").unwrap();
    let start = b.now;
    assert!(
        b.run_until(Duration::from_secs(8), |b| !b.socket(h1).may_recv()
            && !b.socket(h2).may_recv())
    );
    let took = b.now - start;
    assert!(
        took >= IDLE_TIMEOUT && took < IDLE_TIMEOUT + Duration::from_secs(1),
        "{took:?}"
    );
    assert_eq!(counter_of(&b.server.counters(), "timeouts"), 2);
    b.socket(h1).close();
    b.socket(h2).close();
    assert!(b.run_until(Duration::from_secs(2), |b| b
        .server
        .connections()
        .is_empty()));
    // The slots are free again.
    let got = b.fetch(
        IpAddr::V4(LAN_V4),
        41003,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(status_of(&got), 200);
}

#[test]
fn lan_client_not_reading_is_aborted() {
    let mut b = LanBench::new(IpAddr::V4(LAN_V4), 1);
    let h = b.connect(IpAddr::V4(LAN_V4), 42000);
    assert!(b.run_until(Duration::from_secs(1), |b| b.socket(h).may_send()));
    b.socket(h)
        .send_slice(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // The host never reads: its 64 KiB window fills, the 100 KB response
    // stalls, and the server gives up.
    assert!(b.run_until(Duration::from_secs(10), |b| b.socket(h).state()
        == tcp::State::Closed));
    let c = b.server.counters();
    assert_eq!(counter_of(&c, "served"), 1);
    assert_eq!(counter_of(&c, "timeouts"), 1);
    assert!(b.run_until(Duration::from_secs(1), |b| b
        .server
        .connections()
        .is_empty()));
}

#[test]
fn lan_drops_what_is_not_ours_and_survives_junk() {
    let now = Instant::now();
    let mut server = LanMetrics::new(IpAddr::V4(LAN_V4), PORT, 2, now);
    assert!(server.wants(IpAddr::V4(LAN_V4), PORT));
    assert!(!server.wants(IpAddr::V4(LAN_V4), 80));
    assert!(!server.wants(IpAddr::V6(LAN_V6), PORT));
    let mut rng = Rng(42);
    let mut out = Vec::new();
    // A valid SYN header to mutate (IPv4, TCP to 192.168.1.1:9100).
    let mut syn = vec![
        0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 192, 168, 1, 10, 192, 168, 1, 1,
    ];
    syn.extend_from_slice(&[0x9c, 0x40, 0x23, 0x8c, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02]);
    syn.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    for i in 0..20_000u32 {
        let mut p = if rng.below(2) == 0 {
            syn.clone()
        } else {
            (0..rng.below(80)).map(|_| rng.next() as u8).collect()
        };
        for _ in 0..rng.below(4) {
            if !p.is_empty() {
                let at = rng.below(p.len() as u64) as usize;
                p[at] = rng.next() as u8;
            }
        }
        let t = now + Duration::from_millis(u64::from(i));
        server.push_ip(t, &p);
        if rng.below(4) == 0 {
            server.poll(t, &mut || String::from("x 1\n"), &mut out);
            out.clear();
        }
    }
    let c = server.counters();
    assert!(counter_of(&c, "not-ours") > 0);
    assert!(counter_of(&c, "rx-packets") > 0);
}

#[test]
fn completed_checksums_are_an_interface_counter() {
    let mut v = sample();
    v[0]["interfaces"][0]["csum_completed"] = json!(4);
    let text = render_all(&v);
    let m = parse_exposition(&text);
    assert_eq!(
        m.get(r#"ipoed_interface_csum_completed_total{interface="wan0",role="wan"}"#),
        Some(&4.0),
        "{text}"
    );
    assert!(text.contains("# TYPE ipoed_interface_csum_completed_total counter"));
}

// ---------------------------------------------------------------------------
// MAP-E (issue 18)
// ---------------------------------------------------------------------------

/// `show map` of a real MAP-E state (PSID 0x34 of 192.0.2.18, 240 ports)
/// with ports bound, and the other inputs of `sample()`.
fn render_with_map(map: &Value) -> String {
    render_inputs(&sample(), map)
}

#[test]
fn map_e_mapping_ports_and_refusals_are_exported() {
    use crate::map_e::MapState;
    use crate::wan::Learned;
    use ipoe_dataplane::nat::bindings::NatProto;
    let config = ipoe_config::parse(
        "wan:\n  interface: wan0\nlan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n\
         map_e:\n  br: 2001:db8:77:bb::1\n  rule: { ipv6_prefix: \"2001:db8:4d00::/40\", \
         ipv4_prefix: \"192.0.2.0/24\", ea_length: 16, psid_offset: 4 }\n",
        "test.yaml",
    )
    .unwrap();
    let sessions = ipoe_dataplane::session::SessionTable::new(1024, Default::default());
    let mut m = MapState::default();
    let learned = Learned {
        delegated: Some(("2001:db8:4d12:3400::".parse().unwrap(), 56)),
        ..Learned::default()
    };
    m.update(&config, &learned, &sessions);
    let b = m.napt.clone().unwrap();
    let host = Ipv4Addr::new(192, 168, 2, 10);
    for port in 1000..1003 {
        b.bind(NatProto::Udp, (host, port), 0, port.into()).unwrap();
    }
    b.bind(NatProto::Tcp, (host, 5000), 0, 7).unwrap();
    let text = render_with_map(&m.report(&config));
    let metrics = parse_exposition(&text);
    let get = |k: &str| {
        *metrics
            .get(k)
            .unwrap_or_else(|| panic!("missing {k}\n{text}"))
    };
    assert_eq!(
        get("ipoed_map_e_info{ipv4=\"192.0.2.18\",psid=\"52\",ce_address=\"2001:db8:4d12:3400:c0:2:1200:3400\",\
             br=\"2001:db8:77:bb::1\",rule_source=\"config\"}"),
        1.0
    );
    assert_eq!(get("ipoed_map_e_up"), 1.0);
    assert_eq!(get("ipoed_map_e_tunnel_up"), 1.0);
    for proto in ["tcp", "udp", "icmp"] {
        assert_eq!(
            get(&format!("ipoed_map_e_ports{{proto=\"{proto}\"}}")),
            240.0
        );
    }
    assert_eq!(get("ipoed_map_e_ports_in_use{proto=\"udp\"}"), 3.0);
    assert_eq!(get("ipoed_map_e_ports_in_use{proto=\"tcp\"}"), 1.0);
    assert_eq!(get("ipoed_map_e_ports_in_use{proto=\"icmp\"}"), 0.0);
    assert_eq!(get("ipoed_map_e_ports_resting{proto=\"udp\"}"), 0.0);
    assert_eq!(get("ipoed_map_e_ports_exhausted_total"), 0.0);
    assert_eq!(get("ipoed_map_e_host_limit_refused_total"), 0.0);
    assert_eq!(get("ipoed_map_e_hosts"), 1.0);
    assert_eq!(get("ipoed_map_e_ce_duplicate"), 0.0);
    assert_eq!(get("ipoed_map_e_ce_conflicts_total"), 0.0);
    assert!(text.contains("# TYPE ipoed_map_e_ports_exhausted_total counter"));

    // Every port of the set taken: the next flow is refused and counted.
    let mut next = 2000u16;
    while b.bind(NatProto::Udp, (host, next), 0, next.into()).is_ok() {
        next += 1;
    }
    let metrics = parse_exposition(&render_with_map(&m.report(&config)));
    assert_eq!(metrics["ipoed_map_e_ports_in_use{proto=\"udp\"}"], 240.0);
    assert_eq!(metrics["ipoed_map_e_ports_exhausted_total"], 1.0);
}

/// A DS-Lite router (no `map_e`) has no MAP-E series at all; MAP-E
/// without a mapping yet says it is down.
#[test]
fn map_e_series_only_with_map_e() {
    let off = render_with_map(&json!({"configured": false}));
    assert!(!off.contains("map_e"), "{off}");
    let down = render_with_map(&json!({"configured": true, "up": false, "rule_source": "auto"}));
    let m = parse_exposition(&down);
    assert_eq!(m["ipoed_map_e_up"], 0.0);
    assert!(!down.contains("map_e_info"), "{down}");
}

/// The NAT nodes' and ip4-fragment's drop counters are in `show errors`
/// (every name of their Error enums), hence in `ipoed_errors_total`.
#[test]
fn nat_and_fragment_node_counters_are_in_show_errors() {
    use ipoe_dataplane::counters::all_error_names;
    use ipoe_dataplane::graph::NodeId;
    use ipoe_dataplane::nodes::{ip4_fragment, nat44_in, nat44_out};
    for (node, names) in [
        (NodeId::Nat44Out, nat44_out::Error::NAMES),
        (NodeId::Nat44In, nat44_in::Error::NAMES),
        (NodeId::Ip4Fragment, ip4_fragment::Error::NAMES),
    ] {
        let listed: Vec<&str> = all_error_names()
            .filter(|(n, ..)| *n == node)
            .map(|(_, _, c, _)| c)
            .collect();
        let want: Vec<&str> = names.iter().map(|(c, _)| *c).collect();
        assert_eq!(listed, want, "{}", node.name());
        assert!(!listed.is_empty());
    }
    let errors = json!({"errors": [
        {"node": "nat44-out", "counter": "ports-exhausted", "count": 7},
        {"node": "ip4-fragment", "counter": "too-big", "count": 2}]});
    let v = sample();
    let text = render(&Inputs {
        interfaces: &v[0],
        errors: &errors,
        runtime: &v[2],
        tunnel: &v[3],
        firewall: &v[4],
        pd: &v[5],
        leases: &v[6],
        wan: &v[7],
        map: &Value::Null,
    });
    let m = parse_exposition(&text);
    assert_eq!(
        m["ipoed_errors_total{node=\"nat44-out\",counter=\"ports-exhausted\"}"],
        7.0
    );
    assert_eq!(
        m["ipoed_errors_total{node=\"ip4-fragment\",counter=\"too-big\"}"],
        2.0
    );
}
