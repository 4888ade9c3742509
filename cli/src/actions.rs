//! Commands that change something (`trace add`, `clear ...`, `reload`,
//! `pd renew|rebind`) and `show trace`, whose output the first of them
//! sets up.

use std::fmt::Write as _;

use serde_json::Value;

use crate::val::{as_u64, count, human_secs, items, text};

/// VPP's `show trace`: per packet a header, the packet as received, and
/// each node's decision in path order.
pub fn trace(d: &Value) -> String {
    let packets: Vec<&Value> = items(&d["packets"]).collect();
    let mut out = format!(
        "{} packet{} traced, {} still armed, {} lost\n",
        packets.len(),
        if packets.len() == 1 { "" } else { "s" },
        count(&d["armed_left"]),
        count(&d["lost"]),
    );
    if packets.is_empty() {
        out.push_str("arm the trace with `ipoectl trace add N`\n");
    }
    for p in packets {
        out.push('\n');
        out.push_str(&packet(p));
    }
    out
}

fn packet(p: &Value) -> String {
    let mut out = format!(
        "Packet {} (worker {}, rx {}, {} bytes, {})\n",
        text(&p["seq"]),
        text(&p["worker"]),
        text(&p["rx"]),
        count(&p["len"]),
        age(&p["age_s"]),
    );
    let _ = writeln!(out, "{}", text(&p["summary"]));
    for s in items(&p["steps"]) {
        let _ = writeln!(out, "  {} -> {}", text(&s["node"]), text(&s["decision"]));
    }
    let not_kept = as_u64(&p["steps_not_kept"]).or_else(|| as_u64(&p["steps_lost"]));
    if let Some(n) = not_kept.filter(|n| *n > 0) {
        let _ = writeln!(out, "  ... {n} more steps not recorded");
    }
    out
}

/// `0.4 s ago` for recent packets (VPP's precision), humanised beyond a
/// minute.
fn age(v: &Value) -> String {
    match v.as_f64() {
        Some(s) if (0.0..60.0).contains(&s) => format!("{s:.1} s ago"),
        Some(s) => format!("{} ago", human_secs(s)),
        None => format!("age {}", text(v)),
    }
}

pub fn trace_add(d: &Value, asked: Option<&Value>) -> String {
    let armed = if d["armed"].is_null() {
        asked.map_or_else(|| text(&Value::Null), |a| count(&a["count"]))
    } else {
        count(&d["armed"])
    };
    format!("tracing the next {armed} packets; see them with `ipoectl show trace`\n")
}

/// `what` is the cleared thing as requested, used when the reply does not
/// name it.
pub fn cleared(d: &Value, what: &str) -> String {
    let name = d["cleared"].as_str().unwrap_or(what);
    let thing = match name {
        "runtime" => "runtime figures",
        "errors" => "error counters",
        "trace" => "traced packets",
        other => other,
    };
    format!("cleared the {thing}\n")
}

/// The daemon's message, and which config sections it applied.
pub fn reload(d: &Value) -> String {
    let mut out = String::new();
    if let Some(m) = d["message"].as_str().filter(|m| !m.is_empty()) {
        let _ = writeln!(out, "{m}");
    }
    let changed: Vec<String> = items(&d["changed"]).map(text).collect();
    if !changed.is_empty() {
        let _ = writeln!(out, "changed: {}", changed.join(", "));
    } else if d["unchanged"] == Value::Bool(true) && out.is_empty() {
        out.push_str("the config is unchanged\n");
    }
    if out.is_empty() {
        out.push_str("reloaded\n");
    }
    out
}

pub fn pd_action(d: &Value, command: &str) -> String {
    let verb = command.strip_prefix("pd ").unwrap_or(command);
    format!(
        "DHCPv6 client told to {verb}; its state is now {}\n",
        text(&d["state"])
    )
}
