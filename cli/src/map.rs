//! `show map`: the MAP-E mapping and the NAPT44's ports.

use std::fmt::Write as _;

use serde_json::Value;

use crate::table::{Align, Kv, Table};
use crate::val::{count, items, text, yes_no};

use Align::{Left, Right};

pub fn map(d: &Value) -> String {
    if d["configured"] != true {
        return "MAP-E is not configured (no map_e section)\n".to_owned();
    }
    let mut kv = Kv::default();
    if d["up"] != true {
        kv.add("state", "down: no mapping yet");
        kv.add("rule source", text(&d["rule_source"]));
        if !d["error"].is_null() {
            kv.add("error", text(&d["error"]));
        }
        return kv.render(0);
    }
    let r = &d["rule"];
    kv.add(
        "rule",
        format!(
            "{} {} ea_length {} psid_offset {} (psid_length {})",
            text(&r["ipv6_prefix"]),
            text(&r["ipv4_prefix"]),
            text(&r["ea_length"]),
            text(&r["psid_offset"]),
            text(&r["psid_length"])
        ),
    );
    kv.add("rule source", text(&d["rule_source"]));
    kv.add("BR", text(&d["br"]));
    kv.add("end-user prefix", text(&d["end_user_prefix"]));
    kv.add(
        "CE address",
        format!(
            "{} (IID {})",
            text(&d["ce_address"]),
            text(&d["iid_format"])
        ),
    );
    let dad = &d["dad"];
    if dad["state"] == "duplicate" {
        // Withdrawn: say why and when it is tried again.
        kv.add(
            "CE address state",
            format!(
                "DUPLICATE ({}): not used, no tunnel; DAD again in {} s",
                text(&dad["reason"]),
                count(&dad["retry_in_s"])
            ),
        );
    } else if let Some(state) = dad["state"].as_str() {
        kv.add("CE address state", state);
    }
    if dad["conflicts"].as_u64().is_some_and(|n| n > 0) {
        kv.add(
            "CE address conflicts",
            format!(
                "{} (DAD retried {})",
                count(&dad["conflicts"]),
                count(&dad["retries"])
            ),
        );
    }
    if !d["mtu"].is_null() {
        kv.add(
            "tunnel MTU",
            format!("{} ({})", count(&d["mtu"]), text(&d["mtu_source"])),
        );
    }
    let ipv4 = match d["ipv4_prefix_length"].as_u64() {
        Some(32) | None => text(&d["ipv4"]),
        Some(l) => format!("{}/{l}", text(&d["ipv4"])),
    };
    kv.add(
        "IPv4",
        format!("{ipv4} (shared: {})", yes_no(d["shared"] == true)),
    );
    kv.add("PSID", text(&d["psid"]));
    kv.add("direct CE-to-CE (FMR)", yes_no(d["fmr"] == true));
    let runs: Vec<String> = items(&d["port_runs"]).map(text).collect();
    kv.add(
        "ports",
        format!("{} in {} run(s)", count(&d["ports"]), runs.len()),
    );
    let u = &d["in_use"];
    kv.add(
        "in use",
        format!(
            "{} (tcp {}, udp {}, icmp {}); resting {}",
            count(&u["total"]),
            count(&u["tcp"]),
            count(&u["udp"]),
            count(&u["icmp"]),
            count(&d["in_grace"]["total"])
        ),
    );
    kv.add("exhausted", count(&d["exhausted"]));
    kv.add("prefix changes", count(&d["prefix_changes"]));
    let mut out = kv.render(0);
    out.push_str("port runs:\n");
    for chunk in runs.chunks(6) {
        let _ = writeln!(out, "  {}", chunk.join("  "));
    }
    let mut t = Table::new(&[
        ("LAN host", Left),
        ("TCP", Right),
        ("UDP", Right),
        ("ICMP", Right),
        ("Total", Right),
    ]);
    for h in items(&d["hosts"]) {
        t.row(vec![
            text(&h["host"]),
            count(&h["tcp"]),
            count(&h["udp"]),
            count(&h["icmp"]),
            count(&h["total"]),
        ]);
    }
    if t.is_empty() {
        out.push_str("no ports in use\n");
    } else {
        out.push_str("ports in use per LAN host:\n");
        out.push_str(&t.indent(2).render());
        if d["host_count"].as_u64() > Some(t_len(&d["hosts"])) {
            let _ = writeln!(
                out,
                "  ({} hosts, the first shown)",
                count(&d["host_count"])
            );
        }
    }
    out
}

fn t_len(v: &Value) -> u64 {
    v.as_array().map_or(0, |a| a.len() as u64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn shows_the_mapping_runs_and_hosts() {
        let d = json!({
            "configured": true, "up": true,
            "rule": {"ipv6_prefix": "2001:db8:4d00::/40", "ipv4_prefix": "192.0.2.0/24",
                     "ea_length": 16, "psid_offset": 4, "psid_length": 8},
            "rule_source": "config", "br": "2001:db8:77:bb::1", "iid_format": "legacy",
            "end_user_prefix": "2001:db8:4d12:3400::/56",
            "ce_address": "2001:db8:4d12:3400:c0:2:1200:3400",
            "ipv4": "192.0.2.18", "ipv4_prefix_length": 32, "psid": 52, "shared": true, "fmr": true,
            "ports": 240, "port_runs": ["4928-4943", "9024-9039"],
            "in_use": {"tcp": 1, "udp": 3, "icmp": 0, "total": 4},
            "in_grace": {"total": 2}, "exhausted": 7, "host_count": 1,
            "hosts": [{"host": "192.168.2.10", "tcp": 1, "udp": 3, "icmp": 0, "total": 4}],
            "prefix_changes": 0
        });
        let out = super::map(&d);
        for want in [
            "192.0.2.18 (shared: yes)",
            "PSID                   52",
            "240 in 2 run(s)",
            "4 (tcp 1, udp 3, icmp 0); resting 2",
            "exhausted              7",
            "  4928-4943  9024-9039",
            "192.168.2.10    1    3     0      4",
        ] {
            assert!(out.contains(want), "{want:?} in\n{out}");
        }
        assert!(super::map(&json!({"configured": false})).contains("not configured"));
    }

    /// A CE address another node holds is shown with its reason and the
    /// retry; the tunnel MTU with where it comes from.
    #[test]
    fn shows_a_duplicate_ce_address_and_the_tunnel_mtu() {
        let d = json!({
            "configured": true, "up": true, "rule": {}, "ce_address": "2001:db8:4d12:3400:c0:2:1200:3400",
            "ipv4": "192.0.2.18", "ports": 240, "port_runs": [], "in_use": {}, "in_grace": {},
            "hosts": [], "mtu": 1360, "mtu_source": "packet-too-big", "tunnel_up": false,
            "dad": {"state": "duplicate", "reason": "dad-failed", "since_s": 10, "retry_in_s": 50,
                    "conflicts": 2, "retries": 1}
        });
        let out = super::map(&d);
        for want in [
            "DUPLICATE (dad-failed): not used, no tunnel; DAD again in 50 s",
            "2 (DAD retried 1)",
            "1360 (packet-too-big)",
        ] {
            assert!(out.contains(want), "{want:?} in\n{out}");
        }
    }

    /// `show sessions` gets a Translated column once a session has one.
    #[test]
    fn sessions_show_the_translation() {
        let row = |t: serde_json::Value| {
            json!({"proto": 17, "inside": "192.168.2.10", "inside_port": 40000,
                   "outside": "198.51.100.10", "outside_port": 7, "state": "udp",
                   "idle_s": 1, "expires_in_s": 29, "packets_out": 1, "packets_in": 1,
                   "bytes_out": 30, "bytes_in": 30, "translated": t})
        };
        let d = |rows: Vec<serde_json::Value>| json!({"matched": rows.len(), "shown": rows.len(), "totals": {}, "sessions": rows});
        let plain = crate::fw::sessions(&d(vec![row(serde_json::Value::Null)]));
        assert!(!plain.contains("Translated"), "{plain}");
        let nat = crate::fw::sessions(&d(vec![row(
            json!({"address": "192.0.2.18", "port": 4930}),
        )]));
        assert!(
            nat.contains("Translated") && nat.contains("192.0.2.18:4930"),
            "{nat}"
        );
    }
}
