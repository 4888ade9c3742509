//! ipoectl: asks ipoed over its unix socket and prints the answer as a
//! table, or as JSON with `--json`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

const DEFAULT_SOCKET: &str = "/run/ipoed/ipoed.sock";
const COMMANDS: &[&str] = &[
    "show interfaces",
    "show errors",
    "show runtime",
    "show neighbors",
    "show config",
    "show wan",
    "show pd",
    "show tunnel",
    "show lan",
    "show leases",
    "show firewall",
    "show sessions",
    "pd renew",
    "pd rebind",
    "version",
];

fn usage() -> String {
    format!(
        "usage: ipoectl [--socket PATH] [--json] COMMAND\ncommands:\n  {}\n`show sessions` takes --proto tcp|udp|icmp|icmpv6 and --host ADDR\nthe socket defaults to {DEFAULT_SOCKET} (or $IPOED_SOCKET)",
        COMMANDS.join("\n  ")
    )
}

fn main() -> ExitCode {
    let mut socket = std::env::var("IPOED_SOCKET").unwrap_or_else(|_| DEFAULT_SOCKET.to_string());
    let mut as_json = false;
    let mut words = Vec::new();
    let mut filters = serde_json::Map::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => as_json = true,
            "--proto" | "--host" => match args.next() {
                Some(v) => {
                    filters.insert(a[2..].to_string(), Value::String(v));
                }
                None => {
                    eprintln!("{a} needs a value\n{}", usage());
                    return ExitCode::from(2);
                }
            },
            "--socket" => match args.next() {
                Some(s) => socket = s,
                None => {
                    eprintln!("--socket needs a path\n{}", usage());
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{}", usage());
                return ExitCode::SUCCESS;
            }
            w if w.starts_with('-') => {
                eprintln!("unknown option {w}\n{}", usage());
                return ExitCode::from(2);
            }
            w => words.push(w.to_string()),
        }
    }
    let command = words.join(" ");
    if !COMMANDS.contains(&command.as_str()) {
        if command.is_empty() {
            eprintln!("{}", usage());
        } else {
            eprintln!("unknown command {command:?}\n{}", usage());
        }
        return ExitCode::from(2);
    }
    if !filters.is_empty() && command != "show sessions" {
        eprintln!("--proto and --host go with `show sessions`\n{}", usage());
        return ExitCode::from(2);
    }
    let reply = match ask(&socket, &command, Value::Object(filters)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("ipoectl: cannot reach ipoed at {socket}: {e}");
            return ExitCode::from(1);
        }
    };
    if reply["ok"] != json!(true) {
        eprintln!("ipoed: {}", reply["error"].as_str().unwrap_or("error"));
        return ExitCode::from(1);
    }
    let data = &reply["data"];
    if as_json {
        println!("{}", serde_json::to_string_pretty(data).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    match command.as_str() {
        "show interfaces" => print_interfaces(data),
        "show errors" => print_errors(data),
        "show runtime" => print_runtime(data),
        "show neighbors" => print_neighbors(data),
        "show config" => print!("{}", data["yaml"].as_str().unwrap_or("")),
        "show sessions" => print_sessions(data),
        "show firewall" => print_firewall(data),
        "show wan" | "show pd" | "show tunnel" | "show lan" | "show leases" | "pd renew"
        | "pd rebind" => print_fields(data, ""),
        _ => println!(
            "ipoed {} (protocol {})",
            data["daemon"].as_str().unwrap_or("?"),
            data["protocol"]
        ),
    }
    ExitCode::SUCCESS
}

fn ask(socket: &str, command: &str, args: Value) -> std::io::Result<Value> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let req = json!({"version": 1, "command": command, "args": args});
    s.write_all(format!("{req}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn print_interfaces(d: &Value) {
    for i in d["interfaces"].as_array().into_iter().flatten() {
        println!(
            "{} ({}) ifindex {} mac {} mtu {} xdp {} zero-copy {}",
            i["name"].as_str().unwrap_or("?"),
            i["role"].as_str().unwrap_or("?"),
            i["ifindex"],
            i["mac"].as_str().unwrap_or("?"),
            i["mtu"],
            i["xdp_mode"].as_str().unwrap_or("?"),
            if i["zero_copy"] == json!(true) {
                "yes"
            } else {
                "no"
            },
        );
        let addrs: Vec<&str> = i["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!("  addresses: {}", addrs.join(", "));
        println!(
            "  {:>6} {:>6} {:>12} {:>14} {:>12} {:>14} {:>8}",
            "worker", "queues", "rx packets", "rx bytes", "tx packets", "tx bytes", "drops"
        );
        for q in i["queues"].as_array().into_iter().flatten() {
            let qs: Vec<String> = q["queues"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.to_string())
                .collect();
            println!(
                "  {:>6} {:>6} {:>12} {:>14} {:>12} {:>14} {:>8}",
                u(&q["worker"]),
                qs.join(","),
                u(&q["rx_packets"]),
                u(&q["rx_bytes"]),
                u(&q["tx_packets"]),
                u(&q["tx_bytes"]),
                u(&q["tx_ring_full"]) + u(&q["rx_kernel_dropped"]),
            );
        }
    }
}

fn print_errors(d: &Value) {
    println!(
        "{:>12}  {:<18} {:<24} description",
        "count", "node", "reason"
    );
    let mut any = false;
    for e in d["errors"].as_array().into_iter().flatten() {
        if u(&e["count"]) == 0 {
            continue;
        }
        any = true;
        println!(
            "{:>12}  {:<18} {:<24} {}",
            u(&e["count"]),
            e["node"].as_str().unwrap_or("?"),
            e["counter"].as_str().unwrap_or("?"),
            e["description"].as_str().unwrap_or(""),
        );
    }
    if !any {
        println!("(no errors counted)");
    }
}

fn print_runtime(d: &Value) {
    println!("uptime {} s", u(&d["uptime_s"]));
    for w in d["workers"].as_array().into_iter().flatten() {
        println!(
            "worker {} WAN queues {} LAN queues {} core {} loops {} busy {:.1}%",
            w["worker"],
            w["wan_queues"],
            w["lan_queues"],
            w["core"],
            u(&w["loops"]),
            w["busy_share"].as_f64().unwrap_or(0.0) * 100.0
        );
        println!(
            "  {:<18} {:>12} {:>14} {:>10} {:>12}",
            "node", "calls", "vectors", "vec/call", "clocks/pkt"
        );
        for n in w["nodes"].as_array().into_iter().flatten() {
            println!(
                "  {:<18} {:>12} {:>14} {:>10.2} {:>12.1}",
                n["name"].as_str().unwrap_or("?"),
                u(&n["calls"]),
                u(&n["vectors"]),
                n["vectors_per_call"].as_f64().unwrap_or(0.0),
                n["clocks_per_packet"].as_f64().unwrap_or(0.0),
            );
        }
    }
}

fn print_neighbors(d: &Value) {
    println!(
        "{:<8} {:<28} {:<18} {:<10} {:>8}",
        "iface", "address", "mac", "state", "age s"
    );
    for n in d["neighbors"].as_array().into_iter().flatten() {
        println!(
            "{:<8} {:<28} {:<18} {:<10} {:>8.1}",
            n["interface"].as_str().unwrap_or("?"),
            n["ip"].as_str().unwrap_or("?"),
            n["mac"].as_str().unwrap_or("(incomplete)"),
            n["state"].as_str().unwrap_or("?"),
            n["age_s"].as_f64().unwrap_or(0.0),
        );
    }
}

/// Nested JSON as indented `key: value` lines; lists of objects as one
/// block per element.
fn print_fields(d: &Value, indent: &str) {
    let Some(map) = d.as_object() else {
        println!("{indent}{}", scalar(d));
        return;
    };
    for (k, v) in map {
        let key = k.replace('_', " ");
        match v {
            Value::Object(_) => {
                println!("{indent}{key}:");
                print_fields(v, &format!("{indent}  "));
            }
            Value::Array(items) if items.iter().any(Value::is_object) => {
                println!("{indent}{key}:");
                for item in items {
                    print_list_item(item, &format!("{indent}  "));
                }
            }
            Value::Array(items) => {
                let list: Vec<String> = items.iter().map(scalar).collect();
                println!(
                    "{indent}{key}: {}",
                    if list.is_empty() {
                        "-".into()
                    } else {
                        list.join(", ")
                    }
                );
            }
            _ => println!("{indent}{key}: {}", scalar(v)),
        }
    }
}

/// One element of a list: `- ` before its first field, aligned after.
fn print_list_item(item: &Value, indent: &str) {
    let Some(map) = item.as_object() else {
        println!("{indent}- {}", scalar(item));
        return;
    };
    for (i, (k, v)) in map.iter().enumerate() {
        let lead = if i == 0 { "- " } else { "  " };
        println!("{indent}{lead}{}: {}", k.replace('_', " "), scalar(v));
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_sessions(d: &Value) {
    println!(
        "{:<6} {:<40} {:<40} {:<13} {:>6} {:>8} {:>8}",
        "proto", "inside", "outside", "state", "idle", "pkts-out", "pkts-in"
    );
    for s in d["sessions"].as_array().into_iter().flatten() {
        let end = |a: &str, p: &str| format!("[{}]:{}", s[a].as_str().unwrap_or("?"), s[p]);
        println!(
            "{:<6} {:<40} {:<40} {:<13} {:>5}s {:>8} {:>8}",
            s["proto"],
            end("inside", "inside_port"),
            end("outside", "outside_port"),
            s["state"].as_str().unwrap_or("?"),
            s["idle_s"],
            s["packets_out"],
            s["packets_in"],
        );
    }
    let t = &d["totals"];
    println!(
        "{} shown of {} matching; table: {} active of {}, {} created, {} expired, {} evicted, {} refused, {} invalid",
        d["shown"], d["matched"], t["active"], t["capacity"], t["created"], t["expired"], t["evicted"], t["refused"], t["invalid"]
    );
}

fn print_firewall(d: &Value) {
    let t = &d["sessions"];
    println!(
        "firewall {}; sessions {} of {} ({} bytes each); created {}, expired {}, evicted {}, refused {}",
        if d["enabled"] == json!(true) { "on" } else { "off" },
        t["active"],
        t["capacity"],
        d["bytes_per_session"],
        t["created"],
        t["expired"],
        t["evicted"],
        t["refused"],
    );
    println!(
        "mss clamp: tunnel {}, ipv6 {}; echo limit {}/s per source",
        scalar(&d["mss_clamp_tunnel"]),
        scalar(&d["mss_clamp_ipv6"]),
        d["echo_limit_per_source"]
    );
    for p in d["pinholes"].as_array().into_iter().flatten() {
        println!(
            "pinhole {} proto {} ports {}",
            scalar(&p["host"]),
            p["proto"],
            scalar(&p["ports"])
        );
    }
    println!("{:<14} {:<22} {:>12}", "node", "rule", "hits");
    for r in d["rules"].as_array().into_iter().flatten() {
        if u(&r["hits"]) > 0 {
            println!(
                "{:<14} {:<22} {:>12}",
                scalar(&r["node"]),
                scalar(&r["rule"]),
                r["hits"]
            );
        }
    }
    println!("recent drops (newest first):");
    for e in d["recent_drops"].as_array().into_iter().flatten() {
        println!(
            "  {} {}/{} proto {} {}:{} -> {}:{}",
            e["at_unix"],
            scalar(&e["node"]),
            scalar(&e["reason"]),
            e["proto"],
            scalar(&e["src"]),
            e["sport"],
            scalar(&e["dst"]),
            e["dport"]
        );
    }
}
