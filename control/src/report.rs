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
                        "csum_completed": ps.csum_completed,
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
                // What ipoed put in the NIC's multicast filter.
                "multicast_filter": r.multicast.filter_joined(iface.ifindex),
                "rx_packets": sum("rx_packets"),
                "rx_bytes": sum("rx_bytes"),
                "tx_packets": sum("tx_packets"),
                "tx_bytes": sum("tx_bytes"),
                "drops": sum("tx_ring_full") + sum("rx_kernel_dropped"),
                "csum_completed": sum("csum_completed"),
                "queues": queues,
            })
        })
        .collect();
    json!({ "interfaces": list })
}

/// Every named counter, less what `clear errors` set aside.
pub fn errors(r: &Router) -> Value {
    let mut rows = error_rows(r);
    for row in &mut rows {
        let key = error_key(row);
        let base = r.errors_base.get(&key).copied().unwrap_or(0);
        let count = row["count"].as_u64().unwrap_or(0);
        // A counter that went backwards (an engine rebuilt by a reload)
        // counts from its new start.
        row["count"] = json!(if count >= base { count - base } else { count });
    }
    json!({ "errors": rows })
}

/// Every named counter since the start (metrics: Prometheus counters
/// never go down, whatever `clear errors` did).
pub fn errors_since_start(r: &Router) -> Value {
    json!({ "errors": error_rows(r) })
}

/// `clear errors`: remember every counter as it is now.
pub fn clear_errors(r: &mut Router) {
    r.errors_base = error_rows(r)
        .iter()
        .map(|row| (error_key(row), row["count"].as_u64().unwrap_or(0)))
        .collect();
}

fn error_key(row: &Value) -> String {
    format!(
        "{}/{}",
        row["node"].as_str().unwrap_or(""),
        row["counter"].as_str().unwrap_or("")
    )
}

fn error_rows(r: &Router) -> Vec<Value> {
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
    let (w, l) = (&r.wan6, &r.lan_services);
    // Engines that are off (or not yet needed) list no counters.
    fn named<T>(
        engine: Option<&T>,
        f: fn(&T) -> Vec<(&'static str, u64)>,
    ) -> Vec<(&'static str, u64)> {
        engine.map(f).unwrap_or_default()
    }
    let engines: [(&str, Vec<(&'static str, u64)>); 12] = [
        ("wan", w.counters.named()),
        ("wan-ra", w.ra.counters().named()),
        (
            "dhcpv6-client",
            named(w.dhcp.as_ref(), |c| c.counters().named()),
        ),
        (
            "aftr-resolver",
            named(w.resolver.as_ref(), |c| c.counters().named()),
        ),
        ("lan", l.counters.named()),
        ("lan-ra", l.ra.counters().named()),
        (
            "dhcpv4-server",
            named(l.dhcp4.as_ref(), |c| c.counters().named()),
        ),
        (
            "dhcpv6-server",
            named(l.dhcp6.as_ref(), |c| c.counters().named()),
        ),
        ("dns-proxy", named(l.dns.as_ref(), |c| c.counters().named())),
        ("mld-wan", r.multicast.wan.counters().named()),
        ("mld-lan", r.multicast.lan.counters().named()),
        ("ndproxy", r.ndproxy.counters().named()),
    ];
    for (node, counters) in engines {
        for (name, count) in counters {
            rows.push(json!({"node": node, "counter": name, "description": "", "count": count}));
        }
    }
    rows.push(json!({"node": "control", "counter": "state-write-failed", "description": "a state file could not be written (the previous one is kept)", "count": w.state.write_errors + l.state.write_errors}));
    rows.push(json!({"node": "control", "counter": "mcast-filter-failed", "description": "a multicast group could not be added to or removed from a NIC filter", "count": r.multicast.filter_errors()}));
    rows.push(json!({"node": "control", "counter": "inject-failed", "description": "control frame not queued to a worker (queue full or no buffer)", "count": r.inject_failed}));
    rows.push(json!({"node": "control", "counter": "metrics-inbox-full", "description": "TCP segment for the LAN metrics server dropped (more than 256 waiting)", "count": r.metrics_inbox_dropped}));
    rows.push(json!({"node": "control", "counter": "trace-lost", "description": "traced packets whose record found the trace store busy", "count": r.trace.lost()}));
    rows
}

/// Counters less the baseline of `clear runtime`.
fn since_clear(s: &WorkerSnapshot, base: Option<&WorkerSnapshot>) -> WorkerSnapshot {
    let Some(b) = base else { return s.clone() };
    let mut d = s.clone();
    for (n, bn) in d.nodes.iter_mut().zip(&b.nodes) {
        n.calls = n.calls.saturating_sub(bn.calls);
        n.vectors = n.vectors.saturating_sub(bn.vectors);
        n.clocks = n.clocks.saturating_sub(bn.clocks);
    }
    d.busy_clocks = d.busy_clocks.saturating_sub(b.busy_clocks);
    d.idle_clocks = d.idle_clocks.saturating_sub(b.idle_clocks);
    d.loops = d.loops.saturating_sub(b.loops);
    d
}

/// `show runtime`: figures since `clear runtime`.
pub fn runtime(r: &Router) -> Value {
    runtime_of(r, true)
}

/// The figures since the start (metrics).
pub fn runtime_since_start(r: &Router) -> Value {
    runtime_of(r, false)
}

fn runtime_of(r: &Router, cleared: bool) -> Value {
    let snaps: Vec<WorkerSnapshot> = snapshots(r)
        .iter()
        .enumerate()
        .map(|(k, s)| since_clear(s, r.runtime_base.get(k).filter(|_| cleared)))
        .collect();
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
    json!({
        "uptime_s": r.started.elapsed().as_secs(),
        "cleared_s_ago": r.runtime_cleared.filter(|_| cleared).map(|t| t.elapsed().as_secs()),
        "workers": workers,
    })
}

pub fn neighbors(r: &Router) -> Value {
    let now = Instant::now();
    let rows: Vec<Value> = r
        .neigh
        .dump(now)
        .into_iter()
        .map(|n| {
            json!({
                "interface": match n.side { ipoe_proto::neigh::Side::Wan => r.wan.name.as_str(), ipoe_proto::neigh::Side::Lan => r.lan.name.as_str() },
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

/// Seconds from `now` until `t` (negative when past), for "time left".
fn secs_until(now: Instant, t: Instant) -> i64 {
    if t >= now {
        t.duration_since(now).as_secs() as i64
    } else {
        -(now.duration_since(t).as_secs() as i64)
    }
}

fn prefix_str(p: Option<(std::net::Ipv6Addr, u8)>) -> Value {
    p.map_or(Value::Null, |(a, l)| json!(format!("{a}/{l}")))
}

pub fn wan(r: &Router) -> Value {
    let now = Instant::now();
    let w = &r.wan6;
    let l = &r.learned;
    let usable = r.neigh.usable_ipv6(ipoe_proto::neigh::Side::Wan);
    let addresses: Vec<Value> = w
        .ra
        .addresses()
        .iter()
        .map(|a| {
            json!({
                "address": format!("{}/{}", a.addr, a.prefix_len),
                "origin": "slaac",
                "dad": if usable.contains(&a.addr) { "ok" } else if r.neigh.dad_failed().iter().any(|d| d.1 == a.addr) { "duplicate" } else { "tentative" },
                "preferred_left_s": a.preferred_until.map(|t| secs_until(now, t)),
                "valid_left_s": a.valid_until.map(|t| secs_until(now, t)),
            })
        })
        .chain(r.config.wan.ipv6.address.map(|c| {
            json!({"address": c.to_string(), "origin": "static",
                   "dad": if usable.contains(&c.addr) { "ok" } else { "tentative" },
                   "preferred_left_s": null, "valid_left_s": null})
        }))
        .chain(w.lease().and_then(|lease| {
            // The IA_NA address, lifetimes counted from the Reply.
            let (addr, preferred, valid) = lease.address?;
            let left = |s: u32| {
                (s != u32::MAX).then(|| {
                    secs_until(now, lease.obtained + std::time::Duration::from_secs(u64::from(s)))
                })
            };
            Some(json!({"address": format!("{addr}/128"), "origin": "dhcpv6",
                   "dad": if usable.contains(&addr) { "ok" } else { "tentative" },
                   "preferred_left_s": left(preferred), "valid_left_s": left(valid)}))
        }))
        .collect();
    let routers: Vec<Value> =
        w.ra.routers()
            .iter()
            .map(|rt| {
                json!({
                    "address": rt.addr.to_string(),
                    "mac": rt.mac.as_ref().map(format_mac),
                    "lifetime_s": rt.lifetime.as_secs(),
                    "left_s": secs_until(now, rt.expires_at),
                    "last_ra_s_ago": now.saturating_duration_since(rt.last_ra).as_secs(),
                })
            })
            .collect();
    json!({
        "interface": r.wan.name,
        "link_local": iface_ll(r),
        "link_local_dad": if usable.contains(&crate::iface::link_local(&r.wan.mac)) { "ok" } else { "tentative" },
        "addresses": addresses,
        "address_in_use": l.wan_address.map(|a| a.to_string()),
        "default_router": l.gateway.map(|a| a.to_string()),
        "default_router_origin": if r.config.wan.ipv6.gateway.is_some() { "static" } else { "ra" },
        "routers": routers,
        "last_ra_s_ago": w.ra.last_ra().map(|t| now.saturating_duration_since(t).as_secs()),
        "ra_flags": {"managed": w.ra.managed(), "other": w.ra.other()},
        "mtu": w.ra.mtu(),
        "dns_servers": w.dns_servers(now).iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "domains": w.ra.domains(now),
    })
}

fn iface_ll(r: &Router) -> String {
    crate::iface::link_local(&r.wan.mac).to_string()
}

pub fn pd(r: &Router) -> Value {
    let now = Instant::now();
    let w = &r.wan6;
    let lan_mode = w.lan_mode.current().to_string();
    let Some(c) = w.dhcp.as_ref().filter(|_| w.pd_enabled()) else {
        return json!({"enabled": false, "lan_mode": lan_mode,
            "lan_prefix": r.learned.lan_prefix.map(|p| format!("{p}/64"))});
    };
    let lease = c.lease();
    let times = c.times(now);
    json!({
        "enabled": true,
        "lan_mode": lan_mode,
        "state": format!("{:?}", c.state()).to_lowercase(),
        "delegated_prefix": prefix_str(r.learned.delegated),
        "lan_prefix": r.learned.lan_prefix.map(|p| format!("{p}/64")),
        "lan_address": r.learned.lan_address.map(|a| a.to_string()),
        "subnet_id": r.config.lan.ipv6.subnet_id,
        "error": r.learned.pd_error,
        "t1_left_s": times.as_ref().and_then(|t| t.t1),
        "t2_left_s": times.as_ref().and_then(|t| t.t2),
        "preferred_left_s": times.as_ref().and_then(|t| t.preferred),
        "valid_left_s": times.as_ref().and_then(|t| t.valid),
        "t1_s": lease.map(|l| l.t1),
        "t2_s": lease.map(|l| l.t2),
        "obtained_s_ago": lease.map(|l| now.saturating_duration_since(l.obtained).as_secs()),
        "server_duid": lease.map(|l| crate::state::hex(&l.server_id)),
        "duid": crate::state::hex(c.duid()),
        "iaid": c.iaid(),
        "dns_servers": lease.map(|l| l.dns_servers.iter().map(|a| a.to_string()).collect::<Vec<_>>()),
        "domains": lease.map(|l| l.domains.clone()),
        "aftr_name": lease.and_then(|l| l.aftr_name.clone()),
    })
}

pub fn tunnel(r: &Router) -> Value {
    let now = Instant::now();
    let l = &r.learned;
    let fib = r.fib.load_full();
    let snaps = snapshots(r);
    let ok = |node: NodeId| -> (u64, u64) {
        snaps.iter().fold((0, 0), |(p, b), s| {
            let n = &s.nodes[node as usize];
            (p + n.ok_packets, b + n.ok_bytes)
        })
    };
    let (encap, decap) = (ok(NodeId::DsliteEncap), ok(NodeId::DsliteDecap));
    let resolver = r.wan6.resolver.as_ref().and_then(|res| res.answer()).map(|a| {
        json!({"addresses": a.all.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
               "ttl_s": a.ttl, "refresh_in_s": secs_until(now, a.expires), "server": a.server.to_string()})
    });
    // Where the tunnel MTU comes from: the smallest of the three wins.
    let configured = r.config.tunnel_mtu();
    let mtu = crate::daemon::tunnel_mtu(&r.config, l);
    let mtu_source = match l.tunnel_pmtu {
        _ if mtu == configured => "config",
        Some((p, _)) if p - 40 == mtu => "packet-too-big",
        _ => "ra",
    };
    // Under MAP-E the far end is the BR and the MTU MAP-E's (map_e.rs).
    let map_e = r.config.map_e.is_some();
    let (mtu_source, configured) = if map_e {
        (
            r.map.mtu_source(r.map.tunnel_mtu(fib.wan.mtu)),
            crate::map_e::TUNNEL_MTU,
        )
    } else if let Some(d) = r.ipip.current.filter(|_| r.config.ipip.is_some()) {
        let mtu = r.ipip.tunnel_mtu(&r.config, fib.wan.mtu);
        let source = match l.path_pmtu {
            _ if mtu == configured => "config",
            Some((dst, p, _)) if dst == d.remote && p.saturating_sub(40) == mtu => "packet-too-big",
            _ => "wan-link",
        };
        (source, configured)
    } else {
        (mtu_source, configured)
    };
    let ipip = r.config.ipip.is_some();
    let pmtu = r.wan6.pmtu.learned().map(|p| {
        json!({"mtu": p.mtu, "aftr": p.dst.to_string(), "from": p.from.to_string(),
               "age_s": now.saturating_duration_since(p.at).as_secs(),
               "ages_out_in_s": secs_until(now, p.at + ipoe_proto::pmtu::AGE)})
    });
    let mut v = json!({
        "configured_aftr": r.config.dslite.as_ref().map(|d| d.aftr.to_string()),
        "b4_source": r.config.dslite.as_ref().map(|d| format!("{:?}", d.b4_address).to_lowercase()),
        // Under MAP-E the tunnel runs from the CE address to the BR.
        "b4": l.b4.or(fib.tunnel.map(|t| t.b4)).map(|a| a.to_string()),
        "kind": if map_e { Some("map-e") } else if ipip { Some("ipip") } else { r.config.dslite.as_ref().map(|_| "dslite") },
        "aftr": l.aftr.filter(|_| !map_e).map(|a| a.to_string()),
        "br": fib.tunnel.filter(|_| map_e).map(|t| t.aftr.to_string()),
        "aftr_learned_from": l.aftr_source.map(|s| s.as_str()),
        "dns": resolver,
        "up": fib.tunnel.is_some() && fib.gateway.is_some(),
        "mtu": fib.tunnel.map(|t| t.mtu),
        "mtu_source": mtu_source,
        "configured_mtu": configured,
        "wan_mtu": fib.wan.mtu,
        "path_mtu": pmtu,
        "ptb_used": r.wan6.pmtu.ptb_used,
        "ptb_ignored": r.wan6.pmtu.ptb_ignored,
        "ptb_relayed": r.wan6.pmtu.relayed,
        "hop_limit": fib.tunnel.map(|t| t.hop_limit),
        "mss_clamp": fib.firewall.mss_clamp_v4,
        "encap_packets": encap.0,
        "encap_bytes": encap.1,
        "decap_packets": decap.0,
        "decap_bytes": decap.1,
        // Packets went into the tunnel and nothing came out for a while:
        // IPIP has no handshake, a wrong remote looks "up" otherwise.
        "silent": r.tunnel_watch.silence(now).map(|(for_s, sent)| json!({"for_s": for_s, "sent": sent})),
        // How the method was found: the config, or discovery (issue 20).
        "discovery": r.zeroconf.report(now),
    });
    if ipip {
        v["ipip"] = r.ipip.report(&r.config, now, fib.wan.mtu);
    }
    v
}

pub fn leases(r: &Router) -> Value {
    let now = Instant::now();
    let l = &r.lan_services;
    let v4: Vec<Value> = l
        .dhcp4
        .as_ref()
        .map(|s| s.leases(now))
        .unwrap_or_default()
        .into_iter()
        .map(|x| {
            json!({
                "ip": x.ip.to_string(),
                "mac": format_mac(&x.mac),
                "hostname": x.hostname,
                "state": x.state,
                "left_s": x.expires.map(|t| secs_until(now, t)),
            })
        })
        .collect();
    let v6: Vec<Value> = l
        .dhcp6
        .as_ref()
        .map(|s| s.leases(now))
        .unwrap_or_default()
        .into_iter()
        .map(|x| {
            json!({
                "address": x.addr.to_string(),
                "duid": x.duid_hex,
                "iaid": x.iaid,
                "state": x.state,
                "left_s": secs_until(now, x.expires),
            })
        })
        .collect();
    json!({
        "dhcpv4": {"enabled": l.dhcp4.is_some(), "leases": v4},
        "dhcpv6": {"enabled": l.dhcp6.is_some(), "mode": format!("{:?}", r.config.lan.ipv6.dhcpv6).to_lowercase(), "leases": v6},
    })
}

pub fn lan(r: &Router) -> Value {
    let now = Instant::now();
    let l = &r.lan_services;
    let ra = l.ra.current_advert(now);
    let (min, max) = l.ra.intervals();
    let prefixes: Vec<Value> = ra
        .prefixes
        .iter()
        .map(|p| {
            json!({
                "prefix": format!("{}/{}", p.prefix, p.prefix_len),
                "preferred_s": p.preferred_lifetime,
                "valid_s": p.valid_lifetime,
                "deprecated": p.preferred_lifetime == 0,
                "on_link": p.on_link,
            })
        })
        .collect();
    json!({
        "interface": r.lan.name,
        "ipv4": format!("{}/{}", r.config.lan.ipv4.addr, r.config.lan.ipv4.len),
        "ipv6": r.learned.lan_address.map(|a| a.to_string()),
        "link_local": crate::iface::link_local(&r.lan.mac).to_string(),
        "ra": {
            "advertising": l.ra.is_advertising(),
            "interval_s": [min.as_secs(), max.as_secs()],
            "router_lifetime_s": ra.router_lifetime,
            "managed": ra.managed,
            "other": ra.other,
            "mtu": ra.mtu,
            "prefixes": prefixes,
            "rdnss": ra.rdnss.iter().flat_map(|x| x.servers.iter().map(|a| a.to_string())).collect::<Vec<_>>(),
            "dnssl": ra.dnssl.iter().flat_map(|x| x.domains.clone()).collect::<Vec<_>>(),
            "last_sent_s_ago": l.ra.last_sent().map(|t| now.saturating_duration_since(t).as_secs()),
        },
        "dns_proxy": l.dns.as_ref().map(|d| json!({
            "upstreams": d.upstreams().iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "cache_entries": d.cache_len(),
            "pending": d.pending_len(),
        })),
        "mode": r.config.lan.ipv6.mode.as_str(),
        "ipv6_source": r.wan6.lan_mode.current().to_string(),
        "ndproxy": r.ndproxy.prefix().map(|p| ndproxy_json(r, p, now)),
    })
}

/// The ND proxy's table (issue 19), for `show lan`.
fn ndproxy_json(r: &Router, prefix: std::net::Ipv6Addr, now: Instant) -> Value {
    let entries: Vec<Value> = r
        .ndproxy
        .entries(now)
        .iter()
        .map(|e| {
            json!({
                "address": e.addr.to_string(),
                "mac": e.mac.map(crate::mcast_filter::show),
                "state": format!("{:?}", e.state).to_lowercase(),
                "age_s": e.age.as_secs(),
            })
        })
        .collect();
    json!({"prefix": format!("{prefix}/64"), "hosts": entries})
}

/// `show firewall`: the policy, the session table, the per-rule drop
/// counters (the policy nodes' named counters, summed over workers) and
/// the recent drops.
pub fn firewall(r: &Router) -> Value {
    let snaps = snapshots(r);
    let mut rules = Vec::new();
    for node in crate::firewall::rule_nodes() {
        for (idx, (name, desc)) in node.errors().iter().enumerate() {
            let hits: u64 = snaps
                .iter()
                .map(|s| s.nodes[node as usize].errors[idx])
                .sum();
            rules.push(
                json!({"node": node.name(), "rule": name, "description": desc, "hits": hits}),
            );
        }
    }
    let fib = r.fib.load_full();
    let t = crate::firewall::timeouts(&r.config);
    r.firewall.report(&fib.firewall, &t, rules)
}

/// `show sessions`, with optional `proto` (tcp, udp, icmp, icmpv6 or a
/// number) and `host` (either end's address) arguments.
pub fn sessions(r: &Router, args: &Value) -> Result<Value, String> {
    let proto = match args.get("proto") {
        None | Some(Value::Null) => None,
        Some(v) => Some(match v.as_str().unwrap_or("") {
            "tcp" => 6,
            "udp" => 17,
            "icmp" => 1,
            "icmpv6" => 58,
            other => other.parse::<u8>().map_err(|_| {
                format!("proto {v}: expected tcp, udp, icmp, icmpv6 or a protocol number")
            })?,
        }),
    };
    let host = match args.get("host") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .unwrap_or("")
                .parse::<std::net::IpAddr>()
                .map_err(|_| format!("host {v}: expected an IPv4 or IPv6 address"))?,
        ),
    };
    Ok(r.firewall
        .sessions_report(Instant::now(), proto, host, |id| {
            r.map.external_of(id).or(r.ipip.external_of(id))
        }))
}

/// `show trace`: the records of `trace add`, oldest first.
pub fn trace(r: &Router) -> Value {
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let packets: Vec<Value> = r
        .trace
        .records()
        .iter()
        .map(|p| {
            let steps: Vec<Value> = p
                .steps()
                .iter()
                .map(|s| json!({"node": s.node.name(), "decision": s.decision.describe(s.node)}))
                .collect();
            json!({
                "seq": p.seq,
                "worker": p.worker,
                "rx": p.rx.name(),
                "len": p.len,
                "age_s": (now_ns.saturating_sub(p.at_unix_ns) / 1_000_000) as f64 / 1000.0,
                "summary": p.summary(),
                "steps": steps,
                "steps_not_kept": p.steps_lost,
            })
        })
        .collect();
    json!({"armed_left": r.trace.armed(), "lost": r.trace.lost(), "packets": packets})
}
