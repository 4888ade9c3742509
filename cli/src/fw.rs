//! `show firewall` and `show sessions`.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::table::{Align, Kv, Table};
use crate::tree::{field, Style};
use crate::val::{ago, as_u64, count, duration, endpoint, is_icmp, items, proto, text};

use Align::{Left, Right};

/// The policy, the session table, the timeouts, the pinholes, the rules
/// that have dropped something, and the recent drops.
pub fn firewall(d: &Value) -> String {
    let mut out = policy(d).render(0);
    out.push_str("timeouts:\n");
    out.push_str(&timeouts(&d["timeouts"]).render(2));
    out.push('\n');
    out.push_str(&pinholes(&d["pinholes"]));
    out.push('\n');
    out.push_str(&rules(&d["rules"]));
    out.push('\n');
    out.push_str(&recent_drops(d));
    out
}

fn policy(d: &Value) -> Kv {
    let on = match d["enabled"].as_bool() {
        Some(true) => "on",
        Some(false) => "off",
        None => "-",
    };
    let clamp = |v: &Value| if v.is_null() { "off".into() } else { count(v) };
    let s = &d["sessions"];
    let mut kv = Kv::default();
    kv.add("firewall", on)
        .add("log drops", text(&d["log_drops"]))
        .add(
            "echo limit",
            format!("{}/s per source", count(&d["echo_limit_per_source"])),
        )
        .add(
            "MSS clamp",
            format!(
                "tunnel {}, IPv6 {}",
                clamp(&d["mss_clamp_tunnel"]),
                clamp(&d["mss_clamp_ipv6"])
            ),
        )
        .add(
            "sessions",
            format!(
                "{} active of {} ({} bytes each)",
                count(&s["active"]),
                count(&s["capacity"]),
                count(&d["bytes_per_session"])
            ),
        )
        .add("", table_counts(s));
    kv
}

/// The session table's lifetime counters, one line.
pub fn table_counts(s: &Value) -> String {
    ["created", "expired", "evicted", "refused", "invalid"]
        .iter()
        .map(|k| format!("{} {k}", count(&s[*k])))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every timeout class the daemon sends, humanised.
fn timeouts(t: &Value) -> Kv {
    let mut kv = Kv::default();
    match t.as_object() {
        Some(map) if !map.is_empty() => {
            for (k, v) in map {
                kv.add(&k.replace('_', " "), duration(v));
            }
        }
        _ => {
            kv.add("-", "");
        }
    }
    kv
}

fn pinholes(p: &Value) -> String {
    let mut t = Table::new(&[("Pinhole host", Left), ("Proto", Left), ("Ports", Left)]);
    for h in items(p) {
        t.row(vec![
            text(&h["host"]),
            proto(&h["proto"]),
            text(&h["ports"]),
        ]);
    }
    if t.is_empty() {
        return "no pinholes\n".into();
    }
    t.render()
}

/// Rules with hits only: the list names every drop the policy can make.
fn rules(r: &Value) -> String {
    let mut t = Table::new(&[
        ("Node", Left),
        ("Rule", Left),
        ("Hits", Right),
        ("Description", Left),
    ]);
    let mut quiet = 0;
    for rule in items(r) {
        if as_u64(&rule["hits"]) == Some(0) {
            quiet += 1;
            continue;
        }
        t.row(vec![
            text(&rule["node"]),
            text(&rule["rule"]),
            count(&rule["hits"]),
            rule["description"].as_str().unwrap_or("").to_string(),
        ]);
    }
    let mut out = if t.is_empty() {
        "no rule has dropped a packet\n".to_string()
    } else {
        t.render()
    };
    if quiet > 0 && !t.is_empty() {
        let rules = if quiet == 1 { "rule" } else { "rules" };
        let _ = writeln!(out, "({quiet} more {rules} with no hits)");
    }
    out
}

fn recent_drops(d: &Value) -> String {
    let mut t = Table::new(&[
        ("When", Right),
        ("Node", Left),
        ("Reason", Left),
        ("Proto", Left),
        ("Source", Left),
        ("Destination", Left),
    ]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |t| t.as_secs_f64());
    for e in items(&d["recent_drops"]) {
        let when = e["at_unix"]
            .as_f64()
            .map_or(Value::Null, |at| Value::from((now - at).max(0.0).round()));
        let (proto, src, dst) = if is_icmp(&e["proto"]) {
            (
                format!("{} type {}", proto(&e["proto"]), count(&e["sport"])),
                text(&e["src"]),
                text(&e["dst"]),
            )
        } else {
            (
                proto(&e["proto"]),
                endpoint(&e["src"], &e["sport"]),
                endpoint(&e["dst"], &e["dport"]),
            )
        };
        t.row(vec![
            ago(&when),
            text(&e["node"]),
            text(&e["reason"]),
            proto,
            src,
            dst,
        ]);
    }
    let mut out = format!(
        "drops logged: {} (recent ones, newest first)\n",
        count(&d["drops_logged"])
    );
    if t.is_empty() {
        out.push_str("none recorded\n");
    } else {
        out.push_str(&t.render());
    }
    out
}

pub fn sessions(d: &Value) -> String {
    // MAP-E: the shared address and port each flow leaves with, shown
    // only when some session is translated.
    let nat = items(&d["sessions"]).any(|s| !s["translated"].is_null());
    let mut head = vec![("Proto", Left), ("Inside", Left)];
    if nat {
        head.push(("Translated", Left));
    }
    head.extend([
        ("Outside", Left),
        ("State", Left),
        ("Idle", Right),
        ("Expires", Right),
        ("Pkts out", Right),
        ("Pkts in", Right),
        ("Bytes out", Right),
        ("Bytes in", Right),
    ]);
    let mut t = Table::new(&head);
    let style = Style::default();
    for s in items(&d["sessions"]) {
        let mut row = vec![
            proto(&s["proto"]),
            endpoint(&s["inside"], &s["inside_port"]),
        ];
        if nat {
            let x = &s["translated"];
            row.push(match (&x["address"], &x["port"]) {
                (_, Value::Null) => "-".to_owned(),
                (Value::Null, p) => format!("(old set):{}", text(p)),
                (a, p) => endpoint(a, p),
            });
        }
        row.extend([
            endpoint(&s["outside"], &s["outside_port"]),
            text(&s["state"]),
            duration(&s["idle_s"]),
            field("expires_in_s", &s["expires_in_s"], &style),
            count(&s["packets_out"]),
            count(&s["packets_in"]),
            count(&s["bytes_out"]),
            count(&s["bytes_in"]),
        ]);
        t.row(row);
    }
    let mut out = if t.is_empty() {
        "no sessions\n".to_string()
    } else {
        t.render()
    };
    let _ = writeln!(
        out,
        "{} shown of {} matching",
        count(&d["shown"]),
        count(&d["matched"])
    );
    if let (Some(shown), Some(matched)) = (as_u64(&d["shown"]), as_u64(&d["matched"])) {
        if shown < matched {
            out.push_str("(the daemon lists at most 1000; narrow with --proto or --host)\n");
        }
    }
    let tot = &d["totals"];
    let _ = writeln!(
        out,
        "table: {} active of {}; {}",
        count(&tot["active"]),
        count(&tot["capacity"]),
        table_counts(tot)
    );
    out
}
