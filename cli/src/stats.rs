//! The dataplane's figures: `show interfaces`, `errors`, `runtime`,
//! `neighbors`. Tables in the manner of VPP's `show` commands.

use std::fmt::Write as _;

use serde_json::Value;

use crate::table::{Align, Kv, Table};
use crate::val::{as_u64, count, duration, fixed, items, text, unit, yes_no, NONE};

use Align::{Left, Right};

pub fn interfaces(d: &Value) -> String {
    let blocks: Vec<String> = items(&d["interfaces"]).map(interface).collect();
    if blocks.is_empty() {
        return "no interfaces\n".into();
    }
    blocks.join("\n")
}

/// One interface: its fields, then its queues.
fn interface(i: &Value) -> String {
    let mut out = format!("{} ({})\n", text(&i["name"]), text(&i["role"]));
    let mut kv = Kv::default();
    kv.add("ifindex", count(&i["ifindex"]))
        .add("MAC", text(&i["mac"]))
        .add("MTU", count(&i["mtu"]))
        .add("XDP", xdp(i))
        .add("addresses", text(&i["addresses"]))
        .add("RX", traffic(&i["rx_packets"], &i["rx_bytes"]))
        .add("TX", traffic(&i["tx_packets"], &i["tx_bytes"]))
        .add("drops", count(&i["drops"]))
        .add("checksums completed", count(&i["csum_completed"]));
    out.push_str(&kv.render(2));
    out.push_str(&queues(&i["queues"]));
    out
}

/// `native, zero-copy no (capable)`: whether zero-copy could be had is
/// the interesting part when it is off.
fn xdp(i: &Value) -> String {
    let zc = match (i["zero_copy"].as_bool(), i["zero_copy_capable"].as_bool()) {
        (Some(true), _) => "zero-copy yes".to_string(),
        (Some(false), Some(capable)) => format!(
            "zero-copy no ({})",
            if capable { "capable" } else { "not capable" }
        ),
        (Some(false), None) => "zero-copy no".into(),
        (None, _) => format!("zero-copy {NONE}"),
    };
    format!("{}, {zc}", text(&i["xdp_mode"]))
}

fn traffic(packets: &Value, bytes: &Value) -> String {
    let mut s = format!("{} packets, {} bytes", count(packets), count(bytes));
    if let Some(u) = as_u64(bytes).and_then(unit) {
        let _ = write!(s, " ({u})");
    }
    s
}

fn queues(q: &Value) -> String {
    let mut t = Table::new(&[
        ("Queue", Right),
        ("Worker", Right),
        ("RX packets", Right),
        ("RX bytes", Right),
        ("TX packets", Right),
        ("TX bytes", Right),
        ("TX ring full", Right),
        ("RX kernel dropped", Right),
        ("RX ring full", Right),
        ("RX fill empty", Right),
        ("Csum completed", Right),
    ])
    .indent(2);
    for q in items(q) {
        let mut row = vec![queue_ids(q), count(&q["worker"])];
        for k in [
            "rx_packets",
            "rx_bytes",
            "tx_packets",
            "tx_bytes",
            "tx_ring_full",
            "rx_kernel_dropped",
            "rx_ring_full",
            "rx_fill_empty",
            "csum_completed",
        ] {
            row.push(count(&q[k]));
        }
        t.row(row);
    }
    if t.is_empty() {
        return "  no queues\n".into();
    }
    t.render()
}

/// PROTOCOL.md names one `queue`; the daemon today sends `queues[]` (a
/// worker may own several). Either reads.
fn queue_ids(q: &Value) -> String {
    if q["queue"].is_number() {
        return count(&q["queue"]);
    }
    match q["queues"].as_array() {
        Some(ids) if !ids.is_empty() => ids.iter().map(count).collect::<Vec<_>>().join(","),
        _ => text(&q["queues"]),
    }
}

/// Non-zero counters only, unless `all`: a healthy router has hundreds of
/// zeros, and the non-zero ones are what someone runs this for.
pub fn errors(d: &Value, all: bool) -> String {
    let mut t = Table::new(&[
        ("Node", Left),
        ("Counter", Left),
        ("Count", Right),
        ("Description", Left),
    ]);
    let mut total = 0;
    for e in items(&d["errors"]) {
        total += 1;
        if !all && as_u64(&e["count"]) == Some(0) {
            continue;
        }
        t.row(vec![
            text(&e["node"]),
            text(&e["counter"]),
            count(&e["count"]),
            description(&e["description"]),
        ]);
    }
    if t.is_empty() {
        return if total == 0 {
            "no error counters\n".into()
        } else {
            format!("no errors counted ({total} counters, all zero; --all lists them)\n")
        };
    }
    t.render()
}

/// Descriptions may be empty; an empty cell is clearer than `-` there.
fn description(v: &Value) -> String {
    v.as_str().map_or_else(|| text(v), str::to_string)
}

/// VPP's `show runtime`: a header per worker, then its nodes that ran.
pub fn runtime(d: &Value) -> String {
    let mut out = format!("uptime {}\n", duration(&d["uptime_s"]));
    for w in items(&d["workers"]) {
        out.push('\n');
        out.push_str(&worker_header(w));
        out.push_str(&node_table(&w["nodes"]));
    }
    out
}

/// `Worker 0 (core 2, WAN queues 0, LAN queues 0): loops 1234, busy 12.3%`,
/// naming only the placement fields this daemon sends.
fn worker_header(w: &Value) -> String {
    let mut place = vec![format!("core {}", text(&w["core"]))];
    for (key, name) in [
        ("queue", "queue"),
        ("wan_queues", "WAN queues"),
        ("lan_queues", "LAN queues"),
    ] {
        if !w[key].is_null() {
            place.push(format!("{name} {}", text(&w[key])));
        }
    }
    let busy = w["busy_share"]
        .as_f64()
        .map_or_else(|| NONE.into(), |b| format!("{:.1}%", b * 100.0));
    format!(
        "Worker {} ({}): loops {}, busy {busy}\n",
        text(&w["worker"]),
        place.join(", "),
        count(&w["loops"]),
    )
}

fn node_table(nodes: &Value) -> String {
    let mut t = Table::new(&[
        ("Name", Left),
        ("Calls", Right),
        ("Vectors", Right),
        ("Vectors/Call", Right),
        ("Clocks/Packet", Right),
    ]);
    for n in items(nodes) {
        if as_u64(&n["calls"]) == Some(0) {
            continue;
        }
        t.row(vec![
            text(&n["name"]),
            count(&n["calls"]),
            count(&n["vectors"]),
            ratio(n, "vectors_per_call", "vectors", "calls", 2),
            ratio(n, "clocks_per_packet", "clocks", "vectors", 1),
        ]);
    }
    if t.is_empty() {
        return "no node has run yet\n".into();
    }
    t.render()
}

/// The daemon's ratio, or one computed from the raw counts when it did not
/// send it.
fn ratio(n: &Value, key: &str, num: &str, den: &str, prec: usize) -> String {
    if n[key].is_number() {
        return fixed(&n[key], prec);
    }
    match (n[num].as_f64(), n[den].as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.prec$}", a / b),
        _ => NONE.into(),
    }
}

pub fn neighbors(d: &Value) -> String {
    let mut t = Table::new(&[
        ("Interface", Left),
        ("IP", Left),
        ("MAC", Left),
        ("State", Left),
        ("Age", Right),
        ("Probes", Right),
        ("Held", Right),
    ]);
    for n in items(&d["neighbors"]) {
        t.row(vec![
            text(&n["interface"]),
            text(&n["ip"]),
            text(&n["mac"]),
            text(&n["state"]),
            duration(&n["age_s"]),
            count(&n["probes"]),
            held(&n["held"]),
        ]);
    }
    if t.is_empty() {
        return "no neighbors\n".into();
    }
    t.render()
}

/// `held` is a flag or a count of packets waiting for resolution.
fn held(v: &Value) -> String {
    match v {
        Value::Bool(b) => yes_no(*b).into(),
        other => count(other),
    }
}
