//! The status page (issue 21): what `ipoectl show ...` tells, as one
//! read-only page for anyone on the LAN, at `http://<LAN address>/`.
//!
//! * Served on port 80 of the router's LAN addresses (IPv4, the LAN's
//!   IPv6 address, the LAN link-local) by a [`LanHttp`] on ipoed's own
//!   TCP, the metrics' server with its own sockets. Only the LAN port
//!   punts TCP to the router (ip6-local refuses it from the WAN, and IPv4
//!   never reaches the router from the WAN), the punt node charges it to
//!   the `tcp` budget (apart from DNS's), and [`SLOTS`] sockets bound the
//!   connections: a LAN host hammering the page costs the control thread,
//!   never the workers.
//! * [`collect`] builds `/status.json` from the very values of
//!   `ipoectl show NAME --json` ([`crate::ctl::show`], which never carry
//!   the config or its secrets), plus the busiest LAN hosts; [`scrub`]
//!   masks any URL credentials once more.
//! * [`page::render`] turns that JSON into HTML on the server (every value
//!   escaped); `page.js` then polls `/status.json` and draws the traffic.
//!   The CSS and JS are compiled in: the page needs no internet.
//! * Nothing runs while nobody looks: the JSON is built per request.

pub mod page;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::time::Instant;

use serde_json::{json, Value};

use crate::daemon::Router;
use crate::metrics::http::{self, Request};
use crate::metrics::LanHttp;
use ipoe_proto::neigh::Outgoing;

/// The page's TCP port on the LAN addresses.
pub const PORT: u16 = ipoe_config::STATUS_PAGE_PORT;
/// The page's JSON.
pub const JSON_PATH: &str = "/status.json";
const CSS_PATH: &str = "/status.css";
const JS_PATH: &str = "/status.js";
/// Connections served at once; a SYN beyond them is answered with RST.
pub const SLOTS: usize = 16;
/// Packets held between two loop turns (the punt budget bounds the rate).
pub const INBOX: usize = 256;
/// LAN hosts listed by sessions in use.
pub const TOP_HOSTS: usize = 10;
/// The `show` commands the JSON carries, each under its name.
pub const SECTIONS: &[&str] = &[
    "interfaces",
    "wan",
    "pd",
    "tunnel",
    "map",
    "lan",
    "leases",
    "neighbors",
    "firewall",
];

const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");
const HTML_TYPE: &str = "text/html; charset=utf-8";
const JSON_TYPE: &str = "application/json";
/// Nothing but our own files; inline script and style are refused, so a
/// value that escaped the escaping still could not run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// `/status.json`: `show NAME` for each of [`SECTIONS`], the busiest LAN
/// hosts, and who serves it.
pub fn collect(router: &Router, server: Value) -> Value {
    let mut v = serde_json::Map::new();
    v.insert(
        "router".into(),
        json!({
            "daemon": env!("CARGO_PKG_VERSION"),
            "protocol": ipoe_proto::ctl::PROTOCOL_VERSION,
            "uptime_s": router.started.elapsed().as_secs(),
            // The page's rates divide by the router's clock, not the
            // browser's (throttled tabs, clocks that jump).
            "clock_ms": (router.started.elapsed().as_micros() as f64) / 1000.0,
            "status_server": server,
        }),
    );
    for name in SECTIONS {
        let data = crate::ctl::show(router, &format!("show {name}")).unwrap_or(Value::Null);
        v.insert((*name).into(), data);
    }
    v.insert(
        "top_hosts".into(),
        router.firewall.top_hosts(Instant::now(), TOP_HOSTS),
    );
    scrub(Value::Object(v))
}

/// Masks the credentials of every URL (a string starting `http://` or
/// `https://`) in `v`, as the update URL already is: the page is for
/// anyone on the LAN, so no secret may ride a field added later.
pub fn scrub(v: Value) -> Value {
    match v {
        Value::String(s) if is_url(&s) => Value::String(ipoe_proto::http::target::mask_url_str(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(scrub).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, scrub(v))).collect()),
        other => other,
    }
}

fn is_url(s: &str) -> bool {
    let l = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// Names a LAN page is opened by besides addresses: names no one outside
/// can point at the router (DNS rebinding, below).
const LOCAL_SUFFIXES: &[&str] = &[".home.arpa", ".local", ".lan", ".internal"];

/// Whether the page answers a request naming `host`: an address, a name
/// of one label, or a name in a local domain (`LOCAL_SUFFIXES` and the
/// LAN's own, `domains`). A web page from the internet that points its
/// own name at 192.168.2.1 (DNS rebinding) would otherwise read the LAN's
/// hosts through a browser on the LAN; its requests carry its name.
pub fn host_allowed(host: Option<&str>, domains: &[String]) -> bool {
    let Some(host) = host else {
        return true;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6] or [v6]:port; a link-local may carry its zone (%25eth0).
        return rest
            .split([']', '%'])
            .next()
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return false;
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() || !name.contains('.') {
        return true;
    }
    LOCAL_SUFFIXES.iter().any(|s| name.ends_with(s))
        || domains.iter().any(|d| {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            name == d || name.ends_with(&format!(".{d}"))
        })
}

/// The LAN's own domains (DHCPv4's domain, the RA's DNSSL).
pub fn lan_domains(config: &ipoe_config::Config) -> Vec<String> {
    let lan = &config.lan;
    lan.dhcpv4
        .iter()
        .filter_map(|d| d.domain.as_ref())
        .chain(lan.ipv6.ra.dnssl.iter())
        .map(|d| d.0.clone())
        .collect()
}

/// Answers a request: the page, its JSON, CSS and JS; `snapshot` is
/// called once for the page and the JSON, never for the rest. A request
/// whose Host [`host_allowed`] refuses gets 421.
pub fn route(
    request: &Request,
    domains: &[String],
    snapshot: &mut dyn FnMut() -> Value,
) -> (u16, Vec<u8>) {
    let with_body = request.method != "HEAD";
    if !host_allowed(request.host.as_deref(), domains) {
        let body = "421 Misdirected Request\nOpen the status page by the router's address, \
                    such as http://192.168.2.1/\n";
        return (
            421,
            http::build(421, "text/plain; charset=utf-8", &[], body, with_body),
        );
    }
    let ok = |content_type: &str, body: &str| {
        (
            200,
            http::build(200, content_type, &headers(), body, with_body),
        )
    };
    match (request.method.as_str(), request.path.as_str()) {
        ("GET" | "HEAD", "/" | "/index.html") => ok(HTML_TYPE, &page::render(&snapshot())),
        ("GET" | "HEAD", JSON_PATH) => ok(
            JSON_TYPE,
            &serde_json::to_string(&snapshot()).unwrap_or_else(|_| "null".into()),
        ),
        ("GET" | "HEAD", CSS_PATH) => ok("text/css; charset=utf-8", CSS),
        ("GET" | "HEAD", JS_PATH) => ok("text/javascript; charset=utf-8", JS),
        ("GET" | "HEAD", path) => {
            let status = if path.starts_with('/') { 404 } else { 400 };
            let body = format!("{} {}\n", status, http::reason(status));
            (
                status,
                http::build(status, "text/plain; charset=utf-8", &[], &body, with_body),
            )
        }
        _ => (
            405,
            http::build(
                405,
                "text/plain; charset=utf-8",
                &[("Allow", "GET, HEAD")],
                "405 Method Not Allowed\n",
                true,
            ),
        ),
    }
}

fn headers() -> [(&'static str, &'static str); 4] {
    [
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Content-Security-Policy", CSP),
    ]
}

/// The router's LAN addresses the page answers on.
pub fn lan_addrs(router: &Router) -> Vec<IpAddr> {
    let mut v = vec![IpAddr::V4(router.config.lan.ipv4.addr)];
    v.extend(router.learned.lan_address.map(IpAddr::V6));
    v.push(IpAddr::V6(crate::iface::link_local(&router.lan.mac)));
    v
}

/// The page's server in the daemon loop; it exists only while
/// `lan.status_page` is on (a reload may turn it on or off).
#[derive(Default)]
pub struct StatusPage {
    server: Option<LanHttp>,
    /// When the server asked to be polled again.
    next: Option<Instant>,
}

impl StatusPage {
    /// Feeds the server what the workers punted to port 80, answers, and
    /// sends its packets; returns when to call it again.
    pub fn poll(
        &mut self,
        router: &mut Router,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Option<Instant> {
        if !router.config.lan.status_page {
            router.status_inbox.clear();
            if self.server.take().is_some() {
                log::info!("status page: off");
            }
            return None;
        }
        // Nothing came and no timer is due: nobody is looking.
        let due = self.next.is_some_and(|t| now >= t);
        if self.server.is_some() && router.status_inbox.is_empty() && !due {
            return self.next;
        }
        let addrs = lan_addrs(router);
        let server = self.server.get_or_insert_with(|| {
            log::info!("status page: http://{}:{PORT}/", addrs[0]);
            LanHttp::new(addrs[0], PORT, SLOTS, now).with_label("status page")
        });
        server.set_addrs(&addrs);
        for p in router.status_inbox.drain(..) {
            server.push_ip(now, &p);
        }
        let mut counters: serde_json::Map<String, Value> = server
            .counters()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        counters.insert("inbox-full".into(), json!(router.status_inbox_dropped));
        let counters = Value::Object(counters);
        let domains = lan_domains(&router.config);
        let mut packets = Vec::new();
        let next = {
            let r: &Router = router;
            server.serve(
                now,
                &mut |request| route(request, &domains, &mut || collect(r, counters.clone())),
                &mut packets,
            )
        };
        router.send_ip_lan(now, packets, out);
        self.next = next;
        next
    }
}
