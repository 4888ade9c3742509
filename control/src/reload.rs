//! What a reload changes: the running and the new config compared key by
//! key, sorted into what can be applied live and what needs a restart.
//!
//! All or nothing: if any key that needs a restart differs, nothing is
//! applied (the reply names those keys), so the running router never runs
//! half of one config and half of another.

use ipoe_config::Config;
use serde_json::Value;

/// Keys whose change needs a restart: they size or bind what the daemon
/// set up at start (interfaces, XDP sockets, the session table, the
/// control socket, the state directory).
pub const RESTART_KEYS: &[&str] = &[
    "wan.interface",
    "wan.mtu",
    "lan.interface",
    "lan.mtu",
    "dataplane",
    "control.socket",
    "control.state_dir",
    "control.max_neighbors",
    "control.metrics",
    "firewall.max_sessions",
];

/// DS-Lite keys that only change the tables the workers read.
const DSLITE_TABLE_KEYS: &[&str] = &["dslite.mtu", "dslite.mss_clamp"];

/// LAN keys the WAN side derives from: the LAN /64 and address it
/// publishes (and uses as a B4 or DNS source) come from them.
const WAN_READS_LAN_KEYS: &[&str] = &[
    "lan.ipv6.prefix",
    "lan.ipv6.address",
    "lan.ipv6.subnet_id",
    "lan.ipv6.mode",
];

/// What to redo for a new config.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every key path that differs, for the reply and the log.
    pub changed: Vec<String>,
    /// Reconfigure the WAN engines (RA/SLAAC, DHCPv6-PD client, AFTR
    /// resolver): each starts over only if its own settings changed.
    pub wan: bool,
    /// Rebuild the LAN services (RA, DHCPv4/v6 servers, DNS proxy).
    pub lan: bool,
    /// Rebuild the tables the workers read (policy, tunnel MTU, clamps).
    pub tables: bool,
    /// New session timeouts.
    pub timeouts: bool,
    pub log_level: bool,
    pub group: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
    }
}

/// Compare; `Err` lists the changed keys that need a restart.
pub fn plan(old: &Config, new: &Config) -> Result<Plan, Vec<String>> {
    let (a, b) = (to_value(old), to_value(new));
    let mut changed = Vec::new();
    diff("", &a, &b, &mut changed);
    let restart: Vec<String> = changed
        .iter()
        .filter(|k| RESTART_KEYS.iter().any(|r| under(k, r)))
        .cloned()
        .collect();
    if !restart.is_empty() {
        return Err(restart);
    }
    let any = |prefix: &str| changed.iter().any(|k| under(k, prefix));
    let dslite_tunnel = changed
        .iter()
        .any(|k| under(k, "dslite") && !DSLITE_TABLE_KEYS.iter().any(|t| under(k, t)));
    Ok(Plan {
        wan: any("wan") || dslite_tunnel || WAN_READS_LAN_KEYS.iter().any(|k| any(k)),
        lan: any("lan"),
        // MAP-E's and IPIP's mapping, bindings and tunnel are derived with
        // the tables.
        tables: any("firewall")
            || any("dslite")
            || any("map_e")
            || any("ipip")
            || any("lan")
            || any("wan"),
        timeouts: any("firewall.timeouts"),
        log_level: any("control.log_level"),
        group: any("control.group"),
        changed,
    })
}

fn to_value(c: &Config) -> Value {
    serde_json::to_value(c).unwrap_or(Value::Null)
}

/// `key` is `prefix` or inside it.
fn under(key: &str, prefix: &str) -> bool {
    key == prefix
        || key
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// Key paths (`lan.dhcpv4.range`, `firewall.pinholes[1]`) where `a` and `b`
/// differ; a list that changes length differs as a whole.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff(
                    &p,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), u, v, out);
            }
        }
        _ => out.push(path.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "wan:\n  interface: wan0\nlan:\n  interface: lan0\n  ipv4: 192.168.1.1/24\n  dhcpv4: {}\ndslite:\n  aftr: 2001:db8::1\n";

    fn cfg(extra: &str) -> Config {
        ipoe_config::parse(&format!("{BASE}{extra}"), "test.yaml").expect("valid config")
    }

    #[test]
    fn the_same_config_changes_nothing() {
        let p = plan(&cfg(""), &cfg("")).unwrap();
        assert!(p.is_empty());
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn firewall_changes_touch_only_the_tables() {
        let p = plan(
            &cfg(""),
            &cfg("firewall:\n  timeouts:\n    udp: 30\n  log_drops: false\n"),
        )
        .unwrap();
        assert_eq!(p.changed, ["firewall.log_drops", "firewall.timeouts.udp"]);
        assert!(p.tables && p.timeouts);
        assert!(!p.wan && !p.lan && !p.log_level);
    }

    #[test]
    fn mss_clamp_is_a_table_change_but_the_aftr_is_a_wan_one() {
        let p = plan(&cfg(""), &cfg("  mss_clamp: 1380\n")).unwrap();
        assert_eq!(p.changed, ["dslite.mss_clamp"]);
        assert!(p.tables && !p.wan);
        let other = BASE.replace("2001:db8::1", "2001:db8::2");
        let p = plan(&cfg(""), &ipoe_config::parse(&other, "t").unwrap()).unwrap();
        assert_eq!(p.changed, ["dslite.aftr"]);
        assert!(p.wan);
    }

    #[test]
    fn lan_services_are_rebuilt_for_a_lan_change() {
        let p = plan(&cfg(""), &cfg("control:\n  log_level: debug\n").clone()).unwrap();
        assert!(p.log_level && !p.lan && !p.tables);
        let other = BASE.replace("dhcpv4: {}", "dhcpv4:\n    lease_time: 1h");
        let p = plan(&cfg(""), &ipoe_config::parse(&other, "t").unwrap()).unwrap();
        assert!(p.lan && p.tables && !p.wan, "{p:?}");
    }

    #[test]
    fn restart_keys_refuse_the_whole_reload() {
        let other = BASE.replace("wan0", "wan1");
        let e = plan(
            &cfg("firewall:\n  log_drops: false\n"),
            &ipoe_config::parse(&format!("{other}dataplane:\n  batch: 32\n"), "t").unwrap(),
        )
        .unwrap_err();
        assert_eq!(e, ["dataplane.batch", "wan.interface"]);
        let e = plan(&cfg(""), &cfg("firewall:\n  max_sessions: 1024\n")).unwrap_err();
        assert_eq!(e, ["firewall.max_sessions"]);
    }

    #[test]
    fn paths_name_list_elements() {
        let a =
            cfg("firewall:\n  pinholes:\n    - {host: \"::ff:fe00:104\", proto: tcp, port: 80}\n");
        let b = cfg(
            "firewall:\n  pinholes:\n    - {host: \"::ff:fe00:104\", proto: tcp, port: 8080}\n",
        );
        assert_eq!(plan(&a, &b).unwrap().changed, ["firewall.pinholes[0].port"]);
        assert!(under("firewall.pinholes[0]", "firewall.pinholes"));
        assert!(!under("wanx", "wan"));
    }

    /// Found with review finding 5: `wan.rs` derives the LAN /64 from
    /// `lan.ipv6.subnet_id` (and takes a static prefix and address as
    /// they are), so a change there must reach the WAN side too, or the
    /// old /64 stays in use until a restart.
    #[test]
    fn f5_lan_keys_the_wan_derives_from_reconfigure_it() {
        for (key, extra) in [
            ("lan.ipv6.subnet_id", "    subnet_id: 2\n"),
            ("lan.ipv6.prefix", "    prefix: 2001:db8:0:5::/64\n"),
        ] {
            let other = BASE.replace(
                "  dhcpv4: {}\n",
                &format!("  dhcpv4: {{}}\n  ipv6:\n{extra}"),
            );
            let p = plan(&cfg(""), &ipoe_config::parse(&other, "t").unwrap()).unwrap();
            assert_eq!(p.changed, [key]);
            assert!(p.wan && p.lan, "{key}: {p:?}");
        }
    }

    /// A new MAP-E rule or BR is derived again (new bindings, tunnel) on
    /// reload, without a restart.
    #[test]
    fn map_e_changes_rebuild_the_tables() {
        let base = BASE.replace(
            "dslite:\n  aftr: 2001:db8::1\n",
            "map_e:\n  br: 2001:db8:77:bb::1\n  rule: { ipv6_prefix: \"2001:db8:4d00::/40\", ipv4_prefix: \"192.0.2.0/24\", ea_length: 16, psid_offset: 4 }\n",
        );
        let a = ipoe_config::parse(&base, "t").unwrap();
        let b = ipoe_config::parse(&base.replace("77:bb::1", "77:bb::2"), "t").unwrap();
        let p = plan(&a, &b).unwrap();
        assert_eq!(p.changed, ["map_e.br"]);
        assert!(p.tables, "{p:?}");
    }
}
