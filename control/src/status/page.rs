//! The status page's HTML, rendered on the router from `/status.json`
//! (the JSON of `ipoectl show ...`), so that the page shows the facts with
//! no script at all; `page.js` only adds the live traffic and refreshes
//! the counters marked `data-k`.
//!
//! Every value goes through [`escape`]: host names, DHCP hostnames and
//! the discovery's messages come from the network.

use std::fmt::Write as _;

use serde_json::Value;

/// Rows a table shows at most; the rest is counted ("and N more").
pub const MAX_ROWS: usize = 100;
/// Recent firewall drops shown.
const RECENT_DROPS: usize = 10;

/// `s` made safe as HTML text and as a quoted attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Controls other than tab and newline have no business in
            // HTML text (and NUL is a parse error).
            c if c.is_control() && c != '\t' && c != '\n' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as text: `none` for null, lists joined with ", ".
fn text(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
        Value::Object(_) => v.to_string(),
    }
}

/// Seconds as `2d 3h`, `3h 4m`, `5m 6s`, `7s`; `null` is `null_text`
/// (infinite lifetimes, times not known).
fn dur(v: &Value, null_text: &str) -> String {
    let Some(s) = v.as_i64() else {
        return null_text.into();
    };
    let (sign, s) = if s < 0 { ("-", -s) } else { ("", s) };
    let (d, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    let body = if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    };
    format!("{sign}{body}")
}

/// A byte count with a binary-free SI unit (B, kB, MB, GB, TB).
fn bytes(v: &Value) -> String {
    let Some(n) = v.as_u64() else {
        return text(v);
    };
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut x = n as f64;
    let mut u = 0;
    while x >= 1000.0 && u + 1 < units.len() {
        x /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", units[u])
    }
}

/// The page being written.
struct Page {
    out: String,
}

impl Page {
    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn section(&mut self, id: &str, title: &str) {
        let _ = write!(
            self.out,
            "<section id=\"{}\"><h2>{}</h2>",
            escape(id),
            escape(title)
        );
    }

    fn end_section(&mut self) {
        self.raw("</section>\n");
    }

    /// Starts a two-column table of facts.
    fn facts(&mut self) {
        self.raw("<table class=\"facts\">");
    }

    /// One fact; `key` is the `data-k` path page.js refreshes, if any.
    fn fact(&mut self, name: &str, value: &str, key: Option<&str>) {
        let _ = write!(self.out, "<tr><th>{}</th><td", escape(name));
        if let Some(k) = key {
            // Byte counts keep their unit when page.js refreshes them.
            let fmt = if k.ends_with("bytes") { "bytes" } else { "n" };
            let _ = write!(self.out, " data-k=\"{}\" data-f=\"{fmt}\"", escape(k));
        }
        let _ = write!(self.out, ">{}</td></tr>", escape(value));
    }

    fn end_table(&mut self) {
        self.raw("</table>");
    }

    /// A table with a header row and at most [`MAX_ROWS`] rows.
    fn table(&mut self, class: &str, head: &[&str], rows: &[Vec<String>]) {
        if rows.is_empty() {
            self.raw("<p class=\"none\">none</p>");
            return;
        }
        let _ = write!(self.out, "<table class=\"{}\"><tr>", escape(class));
        for h in head {
            let _ = write!(self.out, "<th>{}</th>", escape(h));
        }
        self.raw("</tr>");
        for row in rows.iter().take(MAX_ROWS) {
            self.raw("<tr>");
            for cell in row {
                let _ = write!(self.out, "<td>{}</td>", escape(cell));
            }
            self.raw("</tr>");
        }
        self.raw("</table>");
        if rows.len() > MAX_ROWS {
            let _ = write!(
                self.out,
                "<p class=\"more\">and {} more (ipoectl shows them all)</p>",
                rows.len() - MAX_ROWS
            );
        }
    }

    fn h3(&mut self, title: &str) {
        let _ = write!(self.out, "<h3>{}</h3>", escape(title));
    }
}

fn rows(list: &Value, f: impl Fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    list.as_array()
        .map(|a| a.iter().map(f).collect())
        .unwrap_or_default()
}

/// The whole page from a `/status.json` value; what is missing shows as
/// `none`, nothing panics.
pub fn render(s: &Value) -> String {
    let mut p = Page {
        out: String::with_capacity(16 * 1024),
    };
    let router = &s["router"];
    p.raw(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>ipoed status</title><link rel=\"stylesheet\" href=\"/status.css\">\
         </head>\n<body>\n<header><h1>ipoed</h1><p>",
    );
    let _ = write!(
        p.out,
        "version {} · up <span data-k=\"router.uptime_s\" data-f=\"dur\">{}</span> · \
         <span id=\"live\">as rendered by the router</span>",
        escape(&text(&router["daemon"])),
        escape(&dur(&router["uptime_s"], "?"))
    );
    p.raw("</p></header>\n<main>\n");
    traffic(&mut p, s);
    wan(&mut p, s);
    prefix(&mut p, s);
    ipv4(&mut p, s);
    lan(&mut p, s);
    firewall(&mut p, s);
    p.raw(
        "</main>\n<footer>Read-only. The same facts as <code>ipoectl show … --json</code>, \
         at <a href=\"/status.json\">/status.json</a>.</footer>\n\
         <script src=\"/status.js\"></script>\n</body></html>\n",
    );
    p.out
}

fn traffic(p: &mut Page, s: &Value) {
    p.section("traffic", "Traffic");
    let list = s["interfaces"]["interfaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    p.raw("<div class=\"charts\">");
    for (i, iface) in list.iter().enumerate() {
        let role = text(&iface["role"]);
        let _ = write!(
            p.out,
            "<figure class=\"chart\" data-role=\"{role}\" data-index=\"{i}\">\
             <figcaption>{role} ({name}) <span class=\"rate\">waiting for a second sample</span>\
             </figcaption><svg viewBox=\"0 0 600 130\" preserveAspectRatio=\"none\" role=\"img\">\
             <polyline class=\"rx\" points=\"\"/><polyline class=\"tx\" points=\"\"/>\
             <text class=\"max\" x=\"4\" y=\"12\"></text></svg></figure>",
            role = escape(&role),
            name = escape(&text(&iface["name"])),
        );
    }
    p.raw(
        "</div><p class=\"legend\"><span class=\"rx\">received</span> \
         <span class=\"tx\">sent</span>, bits per second over the last 5 minutes \
         (drawn while this page is open)</p>",
    );
    p.raw(
        "<table class=\"list\"><tr><th>interface</th><th>role</th><th>rx packets</th>\
         <th>rx bytes</th><th>tx packets</th><th>tx bytes</th><th>drops</th><th>MTU</th>\
         <th>XDP</th></tr>",
    );
    for (i, iface) in list.iter().enumerate() {
        let k = |f: &str| format!("interfaces.interfaces.{i}.{f}");
        // `data-f`: how page.js formats the refreshed value.
        let cell = |f: &str, v: String, fmt: &str| {
            format!(
                "<td data-k=\"{}\" data-f=\"{fmt}\">{}</td>",
                escape(&k(f)),
                escape(&v)
            )
        };
        let _ = write!(
            p.out,
            "<tr><td>{}</td><td>{}</td>{}{}{}{}{}<td>{}</td><td>{}</td></tr>",
            escape(&text(&iface["name"])),
            escape(&text(&iface["role"])),
            cell("rx_packets", text(&iface["rx_packets"]), "n"),
            cell("rx_bytes", bytes(&iface["rx_bytes"]), "bytes"),
            cell("tx_packets", text(&iface["tx_packets"]), "n"),
            cell("tx_bytes", bytes(&iface["tx_bytes"]), "bytes"),
            cell("drops", text(&iface["drops"]), "n"),
            escape(&text(&iface["mtu"])),
            escape(&text(&iface["xdp_mode"])),
        );
    }
    p.raw("</table>");
    p.end_section();
}

fn wan(p: &mut Page, s: &Value) {
    let w = &s["wan"];
    p.section("wan", "WAN");
    p.facts();
    p.fact("interface", &text(&w["interface"]), None);
    p.fact("address in use", &text(&w["address_in_use"]), None);
    p.fact("link-local", &text(&w["link_local"]), None);
    p.fact(
        "default router",
        &format!(
            "{} (from {})",
            text(&w["default_router"]),
            text(&w["default_router_origin"])
        ),
        None,
    );
    if let Some(r) = w["routers"].as_array().and_then(|a| a.first()) {
        p.fact(
            "router lifetime",
            &format!(
                "{} ({} left)",
                dur(&r["lifetime_s"], "?"),
                dur(&r["left_s"], "?")
            ),
            None,
        );
    }
    p.fact(
        "last RA",
        &match w["last_ra_s_ago"].as_i64() {
            Some(_) => format!("{} ago", dur(&w["last_ra_s_ago"], "?")),
            None => "none yet".into(),
        },
        None,
    );
    p.fact("MTU (RA)", &text(&w["mtu"]), None);
    p.fact("DNS servers", &text(&w["dns_servers"]), None);
    p.end_table();
    p.h3("Addresses");
    let r = rows(&w["addresses"], |a| {
        vec![
            text(&a["address"]),
            text(&a["origin"]),
            text(&a["dad"]),
            dur(&a["preferred_left_s"], "infinite"),
            dur(&a["valid_left_s"], "infinite"),
        ]
    });
    p.table(
        "list",
        &["address", "origin", "DAD", "preferred", "valid"],
        &r,
    );
    p.end_section();
}

fn prefix(p: &mut Page, s: &Value) {
    let pd = &s["pd"];
    let lan = &s["lan"];
    p.section("prefix", "IPv6 prefix");
    p.facts();
    p.fact("LAN IPv6 from", &text(&pd["lan_mode"]), None);
    p.fact("LAN prefix", &text(&pd["lan_prefix"]), None);
    if pd["enabled"] == Value::Bool(true) {
        p.fact("delegated prefix", &text(&pd["delegated_prefix"]), None);
        p.fact("DHCPv6-PD state", &text(&pd["state"]), None);
        p.fact("LAN address", &text(&pd["lan_address"]), None);
        p.fact("subnet id", &text(&pd["subnet_id"]), None);
        p.fact("renews (T1) in", &dur(&pd["t1_left_s"], "never"), None);
        p.fact("rebinds (T2) in", &dur(&pd["t2_left_s"], "never"), None);
        p.fact(
            "preferred lifetime left",
            &dur(&pd["preferred_left_s"], "infinite"),
            None,
        );
        p.fact(
            "valid lifetime left",
            &dur(&pd["valid_left_s"], "infinite"),
            None,
        );
        if !pd["error"].is_null() {
            p.fact("error", &text(&pd["error"]), None);
        }
    }
    if let Some(nd) = lan["ndproxy"].as_object() {
        p.fact("ND proxy for", &text(&nd["prefix"]), None);
        let hosts = nd
            .get("hosts")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        p.fact("proxied hosts", &hosts.to_string(), None);
    }
    p.end_table();
    p.h3("Announced on the LAN");
    let r = rows(&lan["ra"]["prefixes"], |x| {
        vec![
            text(&x["prefix"]),
            dur(&x["preferred_s"], "infinite"),
            dur(&x["valid_s"], "infinite"),
        ]
    });
    p.table("list", &["prefix", "preferred", "valid"], &r);
    p.end_section();
}

fn ipv4(p: &mut Page, s: &Value) {
    let t = &s["tunnel"];
    let m = &s["map"];
    p.section("ipv4", "IPv4");
    p.facts();
    let kind = match t["kind"].as_str() {
        Some("dslite") => "DS-Lite",
        Some("map-e") => "MAP-E",
        Some("ipip") => "IPIP (fixed IPv4)",
        Some(other) => other,
        None => "none",
    };
    p.fact("method", kind, None);
    let d = &t["discovery"];
    let how = match d["method_from"].as_str() {
        Some("discovery") => format!("discovery: {} ({})", text(&d["source"]), text(&d["why"])),
        Some(other) => other.to_string(),
        None => "none".into(),
    };
    p.fact("how it was found", &how, None);
    p.fact(
        "tunnel",
        if t["up"] == Value::Bool(true) {
            "up"
        } else {
            "down"
        },
        None,
    );
    if t["kind"] == "map-e" {
        p.fact("BR", &text(&t["br"]), None);
    } else {
        p.fact("AFTR", &text(&t["aftr"]), None);
        p.fact("AFTR learned from", &text(&t["aftr_learned_from"]), None);
    }
    p.fact("B4 / CE address", &text(&t["b4"]), None);
    p.fact(
        "MTU",
        &format!("{} (from {})", text(&t["mtu"]), text(&t["mtu_source"])),
        None,
    );
    p.fact("MSS clamp", &text(&t["mss_clamp"]), None);
    if m["up"] == Value::Bool(true) {
        p.fact("MAP-E IPv4", &text(&m["ipv4"]), None);
        p.fact("PSID", &text(&m["psid"]), None);
        p.fact("rule from", &text(&m["rule_source"]), None);
        p.fact(
            "ports",
            &format!("{} in runs {}", text(&m["ports"]), text(&m["port_runs"])),
            None,
        );
        p.fact(
            "ports in use",
            &text(&m["in_use"]["total"]),
            Some("map.in_use.total"),
        );
    }
    if let Some(ip) = t["ipip"].as_object() {
        p.fact("IPIP remote", &text(&ip["remote"]), None);
        p.fact("IPIP local", &text(&ip["local"]), None);
        p.fact("fixed IPv4", &text(&ip["ipv4"]), None);
        if let Some(u) = ip.get("update").filter(|u| !u.is_null()) {
            p.fact("update URL", &text(&u["url"]), None);
            p.fact("registered", &text(&u["registered"]), None);
        }
    }
    p.fact(
        "to the tunnel, packets",
        &text(&t["encap_packets"]),
        Some("tunnel.encap_packets"),
    );
    p.fact(
        "to the tunnel, bytes",
        &bytes(&t["encap_bytes"]),
        Some("tunnel.encap_bytes"),
    );
    p.fact(
        "from the tunnel, packets",
        &text(&t["decap_packets"]),
        Some("tunnel.decap_packets"),
    );
    p.fact(
        "from the tunnel, bytes",
        &bytes(&t["decap_bytes"]),
        Some("tunnel.decap_bytes"),
    );
    p.end_table();
    if m["up"] == Value::Bool(true) {
        p.h3("Ports in use per LAN host");
        let r = rows(&m["hosts"], |h| {
            vec![
                text(&h["host"]),
                text(&h["tcp"]),
                text(&h["udp"]),
                text(&h["icmp"]),
                text(&h["total"]),
            ]
        });
        p.table("list", &["host", "TCP", "UDP", "ICMP", "total"], &r);
    }
    p.end_section();
}

fn lan(p: &mut Page, s: &Value) {
    let l = &s["lan"];
    let leases = &s["leases"];
    p.section("lan", "LAN");
    p.facts();
    p.fact("interface", &text(&l["interface"]), None);
    p.fact("IPv4", &text(&l["ipv4"]), None);
    p.fact("IPv6", &text(&l["ipv6"]), None);
    p.fact("link-local", &text(&l["link_local"]), None);
    p.fact("IPv6 mode", &text(&l["mode"]), None);
    p.end_table();
    p.h3("DHCPv4 leases");
    let r = rows(&leases["dhcpv4"]["leases"], |x| {
        vec![
            text(&x["ip"]),
            text(&x["hostname"]),
            text(&x["mac"]),
            text(&x["state"]),
            dur(&x["left_s"], "static"),
        ]
    });
    p.table(
        "list leases4",
        &["address", "host name", "MAC", "state", "left"],
        &r,
    );
    p.h3("DHCPv6 leases");
    let r = rows(&leases["dhcpv6"]["leases"], |x| {
        vec![
            text(&x["address"]),
            text(&x["duid"]),
            text(&x["state"]),
            dur(&x["left_s"], "?"),
        ]
    });
    p.table("list leases6", &["address", "DUID", "state", "left"], &r);
    p.h3("Neighbors");
    let r = rows(&s["neighbors"]["neighbors"], |x| {
        vec![
            text(&x["interface"]),
            text(&x["ip"]),
            text(&x["mac"]),
            text(&x["state"]),
        ]
    });
    p.table("list", &["interface", "address", "MAC", "state"], &r);
    p.end_section();
}

fn firewall(p: &mut Page, s: &Value) {
    let f = &s["firewall"];
    p.section("firewall", "Firewall");
    p.facts();
    p.fact("enabled", &text(&f["enabled"]), None);
    p.fact(
        "sessions in use",
        &text(&f["sessions"]["active"]),
        Some("firewall.sessions.active"),
    );
    p.fact("session capacity", &text(&f["sessions"]["capacity"]), None);
    p.fact(
        "drops logged",
        &text(&f["drops_logged"]),
        Some("firewall.drops_logged"),
    );
    p.end_table();
    p.h3("LAN hosts by sessions");
    let r = rows(&s["top_hosts"]["hosts"], |h| {
        vec![text(&h["host"]), text(&h["sessions"])]
    });
    p.table("list", &["host", "sessions"], &r);
    p.h3("Recent drops");
    let drops: Vec<Value> = f["recent_drops"]
        .as_array()
        .map(|a| a.iter().take(RECENT_DROPS).cloned().collect())
        .unwrap_or_default();
    let r = rows(&Value::Array(drops), |d| {
        // Ports only for TCP and UDP; ICMP's are zero.
        let ported = matches!(d["proto"].as_u64(), Some(6 | 17));
        let end = |a: &str, p: &str| {
            if ported {
                format!("{} port {}", text(&d[a]), text(&d[p]))
            } else {
                text(&d[a])
            }
        };
        let proto = match d["proto"].as_u64() {
            Some(1) => "ICMP".to_string(),
            Some(6) => "TCP".to_string(),
            Some(17) => "UDP".to_string(),
            Some(58) => "ICMPv6".to_string(),
            _ => text(&d["proto"]),
        };
        vec![
            text(&d["reason"]),
            end("src", "sport"),
            end("dst", "dport"),
            proto,
        ]
    });
    p.table("list", &["reason", "from", "to", "protocol"], &r);
    p.end_section();
}
