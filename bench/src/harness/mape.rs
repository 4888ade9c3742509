//! The MAP-E setup of the bench (issue 18): the rule ipoed runs with, the
//! values a MAP-E CE must derive from it (worked out by hand below, not
//! taken from ipoed, and checked against `show map` at start), and the
//! external ports the NAPT gave the generator's LAN endpoints.
//!
//! The rule is OCN-like (PSID offset 6, 6 PSID bits: 63 runs of 16 = 1008
//! ports) so the generator's 1000 LAN endpoints all get a port: the
//! largest real set, and the most mappings a MAP-E CE ever holds. Without
//! prefix delegation the end-user prefix is the WAN /64,
//! 2001:db8:0:1234::/64; under 2001:db8::/50 its EA bits (bits 50-63) are
//! 0x1234 & 0x3fff = 0x1234: IPv4 suffix 0x1234 >> 6 = 72 (192.0.2.72),
//! PSID 0x1234 & 0x3f = 52. Ports: (A << 10) | (52 << 4) | j, A = 1..63,
//! j = 0..15. CE address, legacy IID 0x00 | IPv4 | PSID (16 bits) | 0x00:
//! 2001:db8:0:1234:c0:2:4800:3400.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::dut::{Bins, Running};
use super::topo::{self, GEN_CORE, GEN_IF, GEN_NS};

pub const WAN_ADDRESS: &str = "2001:db8:0:1234::2/64";
pub const RULE: &str = "{ ipv6_prefix: \"2001:db8::/50\", ipv4_prefix: \"192.0.2.0/24\", ea_length: 14, psid_offset: 6 }";
pub const BR: &str = "2001:db8:aaaa::1";
pub const CE: &str = "2001:db8:0:1234:c0:2:4800:3400";
pub const SHARED: &str = "192.0.2.72";
/// PSID/length/offset, as `pktgen rx --psid` takes it.
pub const PSID: &str = "52/6/6";
pub const SET_PORTS: u64 = 1008;
/// The generator's LAN endpoints at most, 1000 of the set's 1008 ports;
/// more flows are more remote endpoints per LAN endpoint.
pub const ENDPOINTS: u32 = 1000;
/// Where the discovery pass sends: no flow of a trial goes there, so the
/// sessions to it are one per LAN endpoint.
const DISCOVERY_DST: &str = "203.0.113.1";

/// LAN endpoints for `flows` flows per generator.
pub fn endpoints(flows: u32) -> u32 {
    flows.min(ENDPOINTS)
}

/// The `map_e` section of ipoed's config.
pub fn config_section() -> String {
    format!("map_e:\n  br: {BR}\n  rule: {RULE}\n")
}

/// `pktgen rx` arguments that make the sink check every frame as a BR.
pub fn sink_check_args() -> Vec<String> {
    [
        "--tunnel-src",
        CE,
        "--tunnel-dst",
        BR,
        "--inner-src",
        SHARED,
        "--psid",
        PSID,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// ipoed derived what the generator and the sink assume.
pub fn check_show_map(map: &Value) -> Result<()> {
    let want = [
        ("ce_address", Value::from(CE)),
        ("ipv4", Value::from(SHARED)),
        ("psid", Value::from(52)),
        ("ports", Value::from(SET_PORTS)),
        ("br", Value::from(BR)),
    ];
    for (k, v) in want {
        if map[k] != v {
            bail!(
                "ipoed's show map has {k} = {}, the bench assumes {v}: {map}",
                map[k]
            );
        }
    }
    Ok(())
}

/// One frame from each of `endpoints` LAN endpoints to an address no trial
/// uses, then `show sessions` for it: the external port of each endpoint
/// (endpoint-independent mapping: the same for all its sessions), written
/// one per line for `pktgen tx --port-map`.
pub fn discover_ports(bins: &Bins, running: &Running, endpoints: u32) -> Result<PathBuf> {
    let t = Command::new("ip")
        .args([
            "netns",
            "exec",
            GEN_NS,
            "taskset",
            "-c",
            &GEN_CORE.to_string(),
        ])
        .arg(&bins.bench)
        .args(["pktgen", "tx", "--iface", GEN_IF, "--queue", "0"])
        .args(["--traffic", "ipv4", "--src", "192.168.2.10"])
        .args(["--dst", DISCOVERY_DST, "--src-mac", topo::GEN_MAC])
        .args(["--dst-mac", topo::DUT_LAN_MAC])
        .args(["--hosts", &topo::HOSTS.to_string()])
        .args(["--endpoints", &endpoints.to_string()])
        .args(["--flows", &endpoints.to_string()])
        .args(["--count", &endpoints.to_string()])
        .args(["--rate", "100000", "--size", "64", "--stream", "98"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the port discovery")?;
    super::report_of(t, "port discovery")?;
    std::thread::sleep(Duration::from_millis(100));
    let s = running
        .ctl(
            bins,
            &[
                "show",
                "sessions",
                "--host",
                DISCOVERY_DST,
                "--proto",
                "udp",
            ],
        )
        .context("show sessions")?;
    let map = port_map(&s, endpoints)?;
    let path = running.run_dir().join("mape-ports.txt");
    let text: Vec<String> = map.iter().map(|p| p.to_string()).collect();
    std::fs::write(&path, text.join("\n"))?;
    Ok(path)
}

/// Endpoint `e` (host `192.168.2.10 + e % HOSTS`, port `1024 + e / HOSTS`,
/// as pktgen numbers them) -> its translated port, from `show sessions`.
fn port_map(sessions: &Value, endpoints: u32) -> Result<Vec<u16>> {
    let mut by_endpoint = HashMap::new();
    for s in sessions["sessions"].as_array().into_iter().flatten() {
        let inside: Option<Ipv4Addr> = s["inside"].as_str().and_then(|a| a.parse().ok());
        let (Some(inside), Some(lport), Some(port)) = (
            inside,
            s["inside_port"].as_u64(),
            s["translated"]["port"].as_u64(),
        ) else {
            continue;
        };
        by_endpoint.insert((inside, lport as u16), port as u16);
    }
    let base = u32::from(Ipv4Addr::new(192, 168, 2, 10));
    let mut out = Vec::with_capacity(endpoints as usize);
    for e in 0..endpoints {
        let host = Ipv4Addr::from(base + e % topo::HOSTS);
        let lport = 1024 + (e / topo::HOSTS) as u16;
        match by_endpoint.get(&(host, lport)) {
            Some(&p) => out.push(p),
            None => bail!(
                "LAN endpoint {host}:{lport} has no MAP-E translation ({} of {} sessions listed; refused for want of ports?)",
                sessions["shown"],
                sessions["matched"]
            ),
        }
    }
    let mut distinct = out.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != out.len() {
        bail!("two LAN endpoints share an external port: {out:?}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::frames::PortSet;
    use serde_json::json;

    /// The hand-derived set: 1008 ports, the first run 1856-1871.
    #[test]
    fn the_set_is_the_one_worked_out_by_hand() {
        let set = PortSet::parse(PSID).unwrap();
        let all: Vec<u16> = (0..=u16::MAX).filter(|&p| set.contains(p)).collect();
        assert_eq!(all.len() as u64, SET_PORTS);
        assert_eq!(&all[..2], &[1856, 1857]);
        assert_eq!(all[16], 2048 + 832);
        assert_eq!(*all.last().unwrap(), (63 << 10) + 832 + 15);
        assert!(ENDPOINTS as u64 <= SET_PORTS);
    }

    #[test]
    fn port_map_follows_pktgen_numbering_and_refuses_gaps() {
        let sess = |list: Vec<(u32, u16, u16)>| {
            let v: Vec<Value> = list
                .into_iter()
                .map(|(h, lp, p)| {
                    json!({"inside": format!("192.168.2.{}", 10 + h), "inside_port": lp,
                           "translated": {"address": SHARED, "port": p}})
                })
                .collect();
            json!({"matched": v.len(), "shown": v.len(), "sessions": v})
        };
        // 18 endpoints over 16 hosts: e = 16, 17 are hosts 0, 1 on port 1025.
        let mut list: Vec<(u32, u16, u16)> = (0..16).map(|h| (h, 1024, 2000 + h as u16)).collect();
        list.push((1, 1025, 3001));
        list.push((0, 1025, 3000));
        let m = port_map(&sess(list.clone()), 18).unwrap();
        assert_eq!(m[0], 2000);
        assert_eq!(m[15], 2015);
        assert_eq!(&m[16..], &[3000, 3001]);
        assert!(
            port_map(&sess(list.clone()), 19).is_err(),
            "endpoint 18 missing"
        );
        list[3].2 = 2000;
        assert!(port_map(&sess(list), 18).is_err(), "a shared port");
    }
}
