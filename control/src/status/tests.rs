//! The status page: escaping, rendering hostile values, routes and
//! headers, no secrets in the JSON, and the bounded server on smoltcp.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::IpEndpoint;

use super::page::{escape, render, MAX_ROWS};
use super::*;
use crate::metrics::http::{HttpRequestReader, Progress};
use ipoe_proto::smoldev::QueueDevice;

fn request(text: &str) -> Request {
    match HttpRequestReader::new().push(text.as_bytes()) {
        Progress::Request(r) => r,
        other => panic!("{other:?}"),
    }
}

fn get(path: &str) -> Request {
    request(&format!("GET {path} HTTP/1.1\r\nHost: 192.168.2.1\r\n\r\n"))
}

/// A `/status.json` as the daemon builds it, trimmed, with what a LAN
/// host or the network controls set to hostile strings.
fn snapshot() -> Value {
    json!({
        "router": {"daemon": "0.1.0", "uptime_s": 3725},
        "interfaces": {"interfaces": [
            {"name": "wan0", "role": "wan", "rx_packets": 10, "rx_bytes": 1500,
             "tx_packets": 20, "tx_bytes": 2_500_000, "drops": 0, "mtu": 1500,
             "xdp_mode": "native"},
            {"name": "lan0", "role": "lan", "rx_packets": 30, "rx_bytes": 4000,
             "tx_packets": 40, "tx_bytes": 5000, "drops": 1, "mtu": 1500,
             "xdp_mode": "native"}]},
        "wan": {"interface": "wan0", "address_in_use": "2001:db8:0:1::100",
                "default_router": "fe80::1", "default_router_origin": "ra",
                "routers": [{"lifetime_s": 1800, "left_s": 1700}],
                "last_ra_s_ago": 12, "dns_servers": ["2001:db8::53"],
                "addresses": [{"address": "2001:db8:0:1::100/64", "origin": "slaac",
                               "dad": "ok", "preferred_left_s": 600, "valid_left_s": null}]},
        "pd": {"enabled": true, "lan_mode": "pd", "state": "bound",
               "delegated_prefix": "2001:db8:100::/56", "lan_prefix": "2001:db8:100:1::/64",
               "lan_address": "2001:db8:100:1::1", "subnet_id": 1,
               "t1_left_s": 1000, "t2_left_s": 2000, "preferred_left_s": 3000,
               "valid_left_s": 4000, "error": null},
        "tunnel": {"kind": "dslite", "up": true, "aftr": "2001:db8:ffff::1",
                   "aftr_learned_from": "dhcpv6", "b4": "2001:db8:0:1::100",
                   "mtu": 1460, "mtu_source": "config", "mss_clamp": 1420,
                   "encap_packets": 5, "encap_bytes": 700, "decap_packets": 6,
                   "decap_bytes": 800,
                   "discovery": {"method_from": "discovery", "source": "hb46pp",
                                 "why": "<img src=x onerror=alert(1)>"}},
        "map": {"configured": false},
        "lan": {"interface": "lan0", "ipv4": "192.168.2.1/24", "ipv6": "2001:db8:100:1::1",
                "ra": {"prefixes": [{"prefix": "2001:db8:100:1::/64", "preferred_s": 3000,
                                     "valid_s": 4000}]}},
        "leases": {"dhcpv4": {"leases": [
                      {"ip": "192.168.2.100", "mac": "02:00:00:00:00:10",
                       "hostname": "<script>alert('pwned')</script>", "state": "bound",
                       "left_s": 3600}]},
                   "dhcpv6": {"leases": []}},
        "neighbors": {"neighbors": [
            {"interface": "lan0", "ip": "192.168.2.100", "mac": "02:00:00:00:00:10",
             "state": "reachable"}]},
        "firewall": {"enabled": true, "sessions": {"active": 3, "capacity": 262144},
                     "drops_logged": 0, "recent_drops": []},
        "top_hosts": {"hosts": [{"host": "192.168.2.100", "sessions": 3}], "host_count": 1},
    })
}

#[test]
fn escape_covers_every_special_character() {
    assert_eq!(
        escape(r#"<a href="x" onclick='y'>&amp;</a>"#),
        "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
    );
    assert_eq!(escape("plain 2001:db8::1/64"), "plain 2001:db8::1/64");
    assert_eq!(escape("a\u{0}b\u{1b}c\td\ne"), "a\u{fffd}b\u{fffd}c\td\ne");
    assert_eq!(escape("ホーム"), "ホーム");
}

#[test]
fn page_shows_the_facts_and_escapes_hostile_values() {
    let html = render(&snapshot());
    for fact in [
        "2001:db8:ffff::1",
        "2001:db8:100:1::/64",
        "2001:db8:100::/56",
        "192.168.2.100",
        "DS-Lite",
        "1h 2m",
        "2.5 MB",
    ] {
        assert!(html.contains(fact), "{fact} missing");
    }
    // Our one script tag, and none from the lease or the discovery.
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(!html.contains("<img"));
    assert!(html.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // Nothing from anywhere else: the only URLs are our own paths.
    assert!(!html.contains("http://") && !html.contains("https://"));
}

#[test]
fn page_survives_missing_and_wrong_typed_fields() {
    for v in [
        Value::Null,
        json!({}),
        json!({"interfaces": 5, "wan": [], "leases": {"dhcpv4": {"leases": "x"}}}),
    ] {
        let html = render(&v);
        assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
    }
}

#[test]
fn long_tables_are_cut_and_counted() {
    let mut s = snapshot();
    let many: Vec<Value> = (0..MAX_ROWS + 7)
        .map(|i| json!({"interface": "lan0", "ip": format!("192.168.2.{i}"), "state": "stale"}))
        .collect();
    s["neighbors"]["neighbors"] = Value::Array(many);
    let html = render(&s);
    assert!(html.contains("and 7 more"));
}

#[test]
fn scrub_masks_url_credentials_and_leaves_the_rest() {
    let secret = "https://user:hunter2@update.example/nic/update?hostname=x&password=hunter2";
    let masked = ipoe_proto::http::target::mask_url_str(secret);
    let v = scrub(json!({
        "tunnel": {"ipip": {"update": {"url": secret, "already": masked}}},
        "list": ["HTTP://u:hunter2@h/", "not a url: http://u:hunter2@h/", 5],
    }));
    let text = v.to_string();
    // The one string not starting with a scheme is left alone (no field
    // carries such a thing); every URL is masked.
    assert_eq!(text.matches("hunter2").count(), 1, "{text}");
    assert_eq!(v["tunnel"]["ipip"]["update"]["url"], json!(masked));
    // Masking is idempotent: an already masked URL (ipip.rs) stays as is,
    // so the JSON still equals `ipoectl show tunnel --json`.
    assert_eq!(v["tunnel"]["ipip"]["update"]["already"], json!(masked));
    assert_eq!(v["list"][2], 5);
}

#[test]
fn json_endpoint_serves_the_snapshot_without_secrets() {
    let mut s = snapshot();
    s["tunnel"]["ipip"] = json!({"update": {"url": "http://me:s3cret@198.51.100.9/u"}});
    let (status, bytes) = route(&get(JSON_PATH), &[], &mut || scrub(s.clone()));
    assert_eq!(status, 200);
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("Content-Type: application/json\r\n"));
    assert!(head.contains("Cache-Control: no-store\r\n"));
    assert!(!body.contains("s3cret"), "{body}");
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["tunnel"]["aftr"], "2001:db8:ffff::1");
    assert_eq!(v["leases"], s["leases"]);
}

#[test]
fn routes_statuses_and_headers() {
    let mut calls = 0;
    let mut snap = || {
        calls += 1;
        snapshot()
    };
    let (status, page) = route(&get("/"), &[], &mut snap);
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("Content-Type: text/html; charset=utf-8\r\n"));
    // Our own files only: no inline script or style may run.
    assert!(page.contains("Content-Security-Policy: default-src 'none'; script-src 'self';"));
    assert!(page.contains("X-Content-Type-Options: nosniff\r\n"));
    for (path, ty) in [
        ("/status.css", "text/css"),
        ("/status.js", "text/javascript"),
    ] {
        let (status, r) = route(&get(path), &[], &mut snap);
        let r = String::from_utf8(r).unwrap();
        assert_eq!(status, 200, "{path}");
        assert!(r.contains(&format!("Content-Type: {ty}")), "{path}");
    }
    let (status, head) = route(
        &request("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"),
        &[],
        &mut snap,
    );
    let head = String::from_utf8(head).unwrap();
    assert_eq!(status, 200);
    assert!(head.ends_with("\r\n\r\n"), "HEAD carries no body");
    assert_eq!(route(&get("/nope"), &[], &mut snap).0, 404);
    assert_eq!(route(&get("/metrics"), &[], &mut snap).0, 404);
    let (status, r) = route(
        &request("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
        &[],
        &mut snap,
    );
    assert_eq!(status, 405);
    assert!(String::from_utf8(r)
        .unwrap()
        .contains("Allow: GET, HEAD\r\n"));
    // The page and HEAD / built the snapshot; the files and errors did not.
    assert_eq!(calls, 2);
}

#[test]
fn assets_are_self_contained() {
    let (_, js) = route(&get("/status.js"), &[], &mut snapshot);
    let (_, css) = route(&get("/status.css"), &[], &mut snapshot);
    for asset in [js, css] {
        let text = String::from_utf8(asset).unwrap();
        assert!(!text.contains("http://") && !text.contains("https://"));
        assert!(!text.contains("@import") && !text.contains("url("));
    }
}

// --- the server on smoltcp ---------------------------------------------------

const LAN_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 2, 1);
const LAN_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 1, 0, 0, 0, 1);
const HOST_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 2, 100);
const HOST_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 1, 0, 0, 0, 0x100);

/// A LAN host's smoltcp stack wired to the page's server, fake clock.
struct Bench {
    server: LanHttp,
    iface: Interface,
    dev: QueueDevice,
    sockets: SocketSet<'static>,
    base: Instant,
    now: Instant,
    snapshots: usize,
}

impl Bench {
    fn new() -> Bench {
        let now = Instant::now();
        let (iface, dev) = ipoe_proto::smoldev::test_client(11, HOST_V4, HOST_V6);
        let mut server = LanHttp::new(IpAddr::V4(LAN_V4), PORT, SLOTS, now);
        server.set_addrs(&[IpAddr::V4(LAN_V4), IpAddr::V6(LAN_V6)]);
        Bench {
            server,
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
            base: now,
            now,
            snapshots: 0,
        }
    }

    fn connect(&mut self, to: IpAddr, local_port: u16) -> SocketHandle {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 65536]),
            tcp::SocketBuffer::new(vec![0; 4096]),
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

    fn round(&mut self) {
        let ts = SmolInstant::from_micros((self.now - self.base).as_micros() as i64);
        self.iface.poll(ts, &mut self.dev, &mut self.sockets);
        for p in std::mem::take(&mut self.dev.tx) {
            self.server.push_ip(self.now, &p);
        }
        let mut out = Vec::new();
        let snapshots = &mut self.snapshots;
        self.server.serve(
            self.now,
            &mut |r| {
                route(r, &[], &mut || {
                    *snapshots += 1;
                    snapshot()
                })
            },
            &mut out,
        );
        self.dev.rx.extend(out);
        self.now += Duration::from_millis(5);
    }

    /// Runs `n` connections at once, each sending `GET /`, for `limit` of
    /// fake time; returns each one's bytes and whether it was reset.
    fn load(&mut self, to: IpAddr, n: u16, limit: Duration) -> Vec<(Vec<u8>, bool)> {
        let handles: Vec<SocketHandle> = (0..n).map(|i| self.connect(to, 40000 + i)).collect();
        let mut sent = vec![false; handles.len()];
        let mut got = vec![Vec::new(); handles.len()];
        let mut ever_open = vec![false; handles.len()];
        let end = self.now + limit;
        while self.now < end {
            self.round();
            for (k, &h) in handles.iter().enumerate() {
                let s = self.sockets.get_mut::<tcp::Socket>(h);
                if s.may_send() && !sent[k] {
                    ever_open[k] = true;
                    s.send_slice(b"GET / HTTP/1.1\r\nHost: 192.168.2.1\r\n\r\n")
                        .unwrap();
                    sent[k] = true;
                }
                while s.can_recv() {
                    s.recv(|buf| {
                        got[k].extend_from_slice(buf);
                        (buf.len(), ())
                    })
                    .unwrap();
                }
                if sent[k] && !s.may_recv() && s.state() != tcp::State::Closed {
                    s.close();
                }
            }
        }
        let out = handles
            .iter()
            .enumerate()
            .map(|(k, &h)| {
                let reset = !ever_open[k]
                    && self.sockets.get::<tcp::Socket>(h).state() == tcp::State::Closed;
                (std::mem::take(&mut got[k]), reset)
            })
            .collect();
        for h in handles {
            self.sockets.remove(h);
        }
        out
    }
}

fn complete_page(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("</html>\n")
}

#[test]
fn server_bounds_connections_and_refuses_the_rest_cleanly() {
    let mut b = Bench::new();
    let extra = 8;
    let results = b.load(
        IpAddr::V4(LAN_V4),
        SLOTS as u16 + extra,
        Duration::from_secs(3),
    );
    let served = results.iter().filter(|(g, _)| complete_page(g)).count();
    let refused = results.iter().filter(|(g, r)| *r && g.is_empty()).count();
    // Every connection got either the whole page or a clean reset.
    assert_eq!(served + refused, results.len(), "partial answers");
    assert_eq!(served, SLOTS);
    assert_eq!(refused, usize::from(extra));
    let counters: std::collections::HashMap<_, _> = b.server.counters().into_iter().collect();
    assert_eq!(counters["refused"], u64::from(extra));
    assert_eq!(counters["served"], SLOTS as u64);
    assert_eq!(b.snapshots, SLOTS);
    // The slots come back: the page loads again, over IPv6 too.
    let again = b.load(IpAddr::V6(LAN_V6), 2, Duration::from_secs(3));
    assert!(again.iter().all(|(g, _)| complete_page(g)));
}

#[test]
fn server_answers_only_its_addresses_and_port() {
    let mut b = Bench::new();
    assert!(b.server.wants(IpAddr::V4(LAN_V4), PORT));
    assert!(b.server.wants(IpAddr::V6(LAN_V6), PORT));
    assert!(!b.server.wants(IpAddr::V4(LAN_V4), 8080));
    assert!(!b
        .server
        .wants(IpAddr::V4(Ipv4Addr::new(192, 168, 2, 9)), PORT));
    // A new prefix: the old address is no longer served.
    let new_v6 = Ipv6Addr::new(0x2001, 0xdb8, 0x200, 1, 0, 0, 0, 1);
    b.server
        .set_addrs(&[IpAddr::V4(LAN_V4), IpAddr::V6(new_v6)]);
    assert!(!b.server.wants(IpAddr::V6(LAN_V6), PORT));
    assert!(b.server.wants(IpAddr::V6(new_v6), PORT));
    // An empty list is ignored rather than serving nothing at all.
    b.server.set_addrs(&[]);
    assert!(b.server.wants(IpAddr::V4(LAN_V4), PORT));
}

// --- the busiest LAN hosts ---------------------------------------------------

#[test]
fn top_hosts_counts_live_sessions_per_lan_host() {
    use ipoe_dataplane::session::{Dir, Key, Segment};
    let config = ipoe_config::parse(
        "wan:\n  interface: wan0\nlan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n\
         firewall:\n  max_sessions: 1024\n",
        "t.yaml",
    )
    .unwrap();
    let now = Instant::now();
    let fw = crate::firewall::Firewall::new(&config, now);
    let now_s = fw.now_s(now);
    let mapped = |a: Ipv4Addr| a.to_ipv6_mapped().octets();
    let flows = [
        (Ipv4Addr::new(192, 168, 2, 20), 3u16),
        (Ipv4Addr::new(192, 168, 2, 10), 5),
        (Ipv4Addr::new(192, 168, 2, 30), 1),
    ];
    for (host, n) in flows {
        for port in 0..n {
            let key = Key {
                int_addr: mapped(host),
                ext_addr: mapped(Ipv4Addr::new(198, 51, 100, 10)),
                int_port: 40000 + port,
                ext_port: 53,
                proto: 17,
            };
            fw.sessions
                .track(&key, &Segment::Udp, Dir::Out, 60, now_s, true);
        }
    }
    let top = fw.top_hosts(now, 2);
    assert_eq!(top["host_count"], 3, "{top}");
    assert_eq!(
        top["hosts"],
        json!([{"host": "192.168.2.10", "sessions": 5}, {"host": "192.168.2.20", "sessions": 3}])
    );
}

// --- DNS rebinding -----------------------------------------------------------

#[test]
fn host_check_takes_addresses_and_local_names_only() {
    let domains = vec!["example.home".to_string()];
    for ok in [
        None,
        Some("192.168.2.1"),
        Some("192.168.2.1:80"),
        Some("[2001:db8:0:111::1]"),
        Some("[fe80::ff:fe00:201]:80"),
        Some("[fe80::ff:fe00:201%25eth0]"),
        Some("router"),
        Some("router:80"),
        Some("router.home.arpa"),
        Some("ROUTER.LAN."),
        Some("gw.example.home"),
        Some("example.home"),
    ] {
        assert!(host_allowed(ok, &domains), "{ok:?} refused");
    }
    for bad in [
        Some("evil.example.com"),
        Some("192.168.2.1.nip.io"),
        Some("example.home.evil.com"),
        Some("[not-an-address]"),
        Some(""),
        Some(":80"),
    ] {
        assert!(!host_allowed(bad, &domains), "{bad:?} allowed");
    }
}

#[test]
fn a_rebound_name_gets_421_and_no_snapshot() {
    let mut calls = 0;
    let req = request("GET /status.json HTTP/1.1\r\nHost: attacker.example.com\r\n\r\n");
    let (status, r) = route(&req, &[], &mut || {
        calls += 1;
        snapshot()
    });
    assert_eq!(status, 421);
    let text = String::from_utf8(r).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 421 Misdirected Request\r\n"),
        "{text}"
    );
    assert!(!text.contains("192.168.2.100"));
    assert_eq!(calls, 0);
    // HTTP/1.0 without Host (curl -0, scripts) is served.
    let old = request("GET / HTTP/1.0\r\n\r\n");
    assert_eq!(route(&old, &[], &mut snapshot).0, 200);
}
