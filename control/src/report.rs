//! The data behind `ipoectl show ...`, as JSON. ipoectl renders tables from
//! the same JSON, so `--json` and the human view never disagree.

use std::time::Instant;

use ipoe_dataplane::counters::{all_error_names, WorkerSnapshot};
use ipoe_dataplane::graph::NodeId;
use ipoe_dataplane::tables::Port;
use serde_json::{json, Value};

use crate::daemon::Router;
use crate::iface::format_mac;

fn snapshots(r: &Router) -> Vec<WorkerSnapshot> {
    r.workers.iter().map(|w| w.stats.snapshot()).collect()
}

pub fn interfaces(r: &Router) -> Value {
    let snaps = snapshots(r);
    let fib = r.fib.load_full();
    let list: Vec<Value> = Port::ALL
        .iter()
        .map(|&p| {
            let iface = match p {
                Port::Wan => &r.wan,
                Port::Lan => &r.lan,
            };
            let att = r.attachments.get(p.index());
            let pa = fib.port(p);
            let mut addrs: Vec<String> = Vec::new();
            if p == Port::Lan {
                if let Some((a, l)) = fib.lan_ipv4 {
                    addrs.push(format!("{a}/{l}"));
                }
            }
            if let Some(a) = pa.ipv6 {
                addrs.push(a.to_string());
            }
            if let Some(a) = pa.link_local {
                addrs.push(a.to_string());
            }
            let queues: Vec<Value> = r
                .workers
                .iter()
                .zip(&snaps)
                .map(|(w, s)| {
                    let ps = &s.ports[p.index()];
                    let qs = match p {
                        Port::Wan => &w.wan_queues,
                        Port::Lan => &w.lan_queues,
                    };
                    json!({
                        "queues": qs,
                        "worker": w.id,
                        "rx_packets": ps.rx_packets,
                        "rx_bytes": ps.rx_bytes,
                        "tx_packets": ps.tx_packets,
                        "tx_bytes": ps.tx_bytes,
                        "tx_ring_full": ps.tx_ring_full,
                        "rx_kernel_dropped": ps.rx_kernel_dropped,
                        "rx_ring_full": ps.rx_ring_full,
                        "rx_fill_empty": ps.rx_fill_empty,
                    })
                })
                .collect();
            let sum = |k: &str| -> u64 { queues.iter().filter_map(|q| q[k].as_u64()).sum() };
            json!({
                "name": iface.name,
                "role": p.name(),
                "ifindex": iface.ifindex,
                "mac": format_mac(&iface.mac),
                "mtu": pa.mtu,
                "xdp_mode": att.map(|a| a.mode.as_str()).unwrap_or("detached"),
                "zero_copy": r.workers.first().map(|w| w.mode == ipoe_dataplane::xsk::BindMode::ZeroCopy).unwrap_or(false),
                "zero_copy_capable": att.map(|a| a.zero_copy_capable).unwrap_or(false),
                "addresses": addrs,
                "rx_packets": sum("rx_packets"),
                "rx_bytes": sum("rx_bytes"),
                "tx_packets": sum("tx_packets"),
                "tx_bytes": sum("tx_bytes"),
                "drops": sum("tx_ring_full") + sum("rx_kernel_dropped"),
                "queues": queues,
            })
        })
        .collect();
    json!({ "interfaces": list })
}

pub fn errors(r: &Router) -> Value {
    let snaps = snapshots(r);
    let mut rows: Vec<Value> = all_error_names()
        .map(|(node, idx, name, desc)| {
            let count: u64 = snaps
                .iter()
                .map(|s| s.nodes[node as usize].errors[idx])
                .sum();
            json!({"node": node.name(), "counter": name, "description": desc, "count": count})
        })
        .collect();
    let xdp = r.redirector.stats();
    for (name, count, desc) in [
        (
            "no-socket",
            xdp.no_socket,
            "frame arrived on a queue with no AF_XDP socket",
        ),
        ("bad-queue", xdp.bad_queue, "queue number beyond the XSKMAP"),
        (
            "no-port",
            xdp.no_port,
            "interface not registered (passed to the kernel)",
        ),
    ] {
        rows.push(
            json!({"node": "xdp-redirect", "counter": name, "description": desc, "count": count}),
        );
    }
    for (name, count) in r.neigh.counters().iter() {
        rows.push(json!({"node": "neighbor", "counter": name, "description": "", "count": count}));
    }
    rows.push(json!({"node": "control", "counter": "inject-failed", "description": "control frame not queued to a worker (queue full or no buffer)", "count": r.inject_failed}));
    json!({ "errors": rows })
}

pub fn runtime(r: &Router) -> Value {
    let snaps = snapshots(r);
    let workers: Vec<Value> = r
        .workers
        .iter()
        .zip(&snaps)
        .map(|(w, s)| {
            let nodes: Vec<Value> = NodeId::ALL
                .iter()
                .map(|&n| {
                    let st = &s.nodes[n as usize];
                    let vpc = if st.calls > 0 {
                        st.vectors as f64 / st.calls as f64
                    } else {
                        0.0
                    };
                    let cpp = if st.vectors > 0 {
                        st.clocks as f64 / st.vectors as f64
                    } else {
                        0.0
                    };
                    json!({
                        "name": n.name(),
                        "calls": st.calls,
                        "vectors": st.vectors,
                        "clocks": st.clocks,
                        "vectors_per_call": (vpc * 100.0).round() / 100.0,
                        "clocks_per_packet": (cpp * 10.0).round() / 10.0,
                    })
                })
                .collect();
            let total = (s.busy_clocks + s.idle_clocks).max(1);
            json!({
                "worker": w.id,
                "wan_queues": w.wan_queues,
                "lan_queues": w.lan_queues,
                "core": w.core,
                "loops": s.loops,
                "busy_share": (s.busy_clocks as f64 / total as f64 * 1000.0).round() / 1000.0,
                "nodes": nodes,
            })
        })
        .collect();
    json!({ "uptime_s": r.started.elapsed().as_secs(), "workers": workers })
}

pub fn neighbors(r: &Router) -> Value {
    let now = Instant::now();
    let rows: Vec<Value> = r
        .neigh
        .dump(now)
        .into_iter()
        .map(|n| {
            json!({
                "interface": match n.side { crate::neigh::Side::Wan => r.wan.name.as_str(), crate::neigh::Side::Lan => r.lan.name.as_str() },
                "ip": n.ip.to_string(),
                "mac": n.mac.map(|m| format_mac(&m)),
                "state": format!("{:?}", n.state).to_lowercase(),
                "age_s": n.age.as_secs_f64(),
                "probes": n.probes,
                "held": n.held,
            })
        })
        .collect();
    json!({ "neighbors": rows })
}
