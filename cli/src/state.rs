//! What the control plane learned and serves: `show wan`, `pd`, `tunnel`,
//! `lan` through the generic printer with a key order each, and `show
//! leases`, `version`, `config` by hand.

use std::fmt::Write as _;

use serde_json::Value;

use crate::table::{Align, Kv, Table};
use crate::tree::{self, Style};
use crate::val::{count, items, left, text};

use Align::{Left, Right};

pub fn wan(d: &Value) -> String {
    tree::render(
        d,
        &Style {
            order: &[
                (
                    "",
                    &[
                        "interface",
                        "link_local",
                        "link_local_dad",
                        "address_in_use",
                        "default_router",
                        "default_router_origin",
                        "mtu",
                        "last_ra_s_ago",
                        "dns_servers",
                        "domains",
                        "ra_flags",
                        "addresses",
                        "routers",
                    ],
                ),
                ("ra_flags", &["managed", "other"]),
                (
                    "addresses",
                    &[
                        "address",
                        "origin",
                        "dad",
                        "preferred_left_s",
                        "valid_left_s",
                    ],
                ),
                (
                    "routers",
                    &["address", "mac", "lifetime_s", "left_s", "last_ra_s_ago"],
                ),
            ],
            // PROTOCOL.md: a null lifetime of an address is infinite.
            infinite: true,
            ..Style::default()
        },
    )
}

pub fn pd(d: &Value) -> String {
    if d["enabled"] == Value::Bool(false) {
        let mut s = String::from("DHCPv6 prefix delegation is off (wan.ipv6.dhcpv6_pd)\n");
        if let Some(m) = d["lan_mode"].as_str() {
            s.push_str(&format!("lan ipv6: {m}\n"));
        }
        return s;
    }
    tree::render(
        d,
        &Style {
            order: &[(
                "",
                &[
                    "enabled",
                    "lan_mode",
                    "state",
                    "error",
                    "delegated_prefix",
                    "lan_prefix",
                    "lan_address",
                    "subnet_id",
                    "t1_left_s",
                    "t2_left_s",
                    "preferred_left_s",
                    "valid_left_s",
                    "t1_s",
                    "t2_s",
                    "obtained_s_ago",
                    "server_duid",
                    "duid",
                    "iaid",
                    "dns_servers",
                    "domains",
                    "aftr_name",
                ],
            )],
            nulls: &[("error", "none"), ("obtained_s_ago", "no lease")],
            // The times are null both without a lease and for an infinite
            // lifetime; only with a lease does null mean infinite.
            infinite: !d["obtained_s_ago"].is_null(),
        },
    )
}

pub fn tunnel(d: &Value) -> String {
    tree::render(
        d,
        &Style {
            order: &[
                (
                    "",
                    &[
                        "up",
                        "kind",
                        "configured_aftr",
                        "aftr",
                        "br",
                        "aftr_learned_from",
                        "b4_source",
                        "b4",
                        "mtu",
                        "mtu_source",
                        "configured_mtu",
                        "wan_mtu",
                        "path_mtu",
                        "ptb_used",
                        "ptb_ignored",
                        "ptb_relayed",
                        "hop_limit",
                        "mss_clamp",
                        "encap_packets",
                        "encap_bytes",
                        "decap_packets",
                        "decap_bytes",
                        "silent",
                        "dns",
                        "ipip",
                        "discovery",
                    ],
                ),
                ("silent", &["for_s", "sent"]),
                (
                    "ipip",
                    &[
                        "up",
                        "remote",
                        "local",
                        "local_prefix",
                        "ipv4",
                        "mtu",
                        "dad",
                        "local_changes",
                        "port_forwards",
                        "update",
                    ],
                ),
                (
                    "update",
                    &[
                        "url",
                        "basic_auth",
                        "registered",
                        "registered_age_s",
                        "last",
                        "next_attempt_in_s",
                        "in_progress",
                        "attempts",
                        "failures",
                        "error",
                    ],
                ),
                ("last", &["result", "ok", "local", "age_s"]),
                ("dns", &["addresses", "server", "ttl_s", "refresh_in_s"]),
                (
                    "discovery",
                    &[
                        "method_from",
                        "method",
                        "source",
                        "detail",
                        "why",
                        "waiting",
                        "decided_s_ago",
                        "changes",
                        "hb46pp",
                        "hb46pp_off",
                        "ca_file_error",
                        "names",
                    ],
                ),
                (
                    "hb46pp",
                    &[
                        "phase",
                        "server",
                        "enabler_name",
                        "decision",
                        "answer_from",
                        "last_success_s_ago",
                        "last_error",
                        "failures",
                        "next_in_s",
                    ],
                ),
                (
                    "path_mtu",
                    &["mtu", "aftr", "from", "age_s", "ages_out_in_s"],
                ),
            ],
            nulls: &[
                ("mss_clamp", "off"),
                ("dns", "no answer"),
                ("path_mtu", "none learned"),
                ("silent", "no"),
                ("update", "none (no update URL)"),
                ("last", "none yet"),
                ("next_attempt_in_s", "none"),
            ],
            infinite: false,
        },
    )
}

pub fn lan(d: &Value) -> String {
    tree::render(
        d,
        &Style {
            order: &[
                (
                    "",
                    &[
                        "interface",
                        "ipv4",
                        "ipv6",
                        "link_local",
                        "mode",
                        "ipv6_source",
                        "ra",
                        "dns_proxy",
                        "ndproxy",
                    ],
                ),
                (
                    "ra",
                    &[
                        "advertising",
                        "interval_s",
                        "last_sent_s_ago",
                        "router_lifetime_s",
                        "managed",
                        "other",
                        "mtu",
                        "rdnss",
                        "dnssl",
                        "prefixes",
                    ],
                ),
                (
                    "prefixes",
                    &["prefix", "preferred_s", "valid_s", "deprecated", "on_link"],
                ),
                ("dns_proxy", &["upstreams", "cache_entries", "pending"]),
                ("ndproxy", &["prefix", "hosts"]),
                ("hosts", &["address", "mac", "state", "age_s"]),
            ],
            nulls: &[("dns_proxy", "off"), ("ndproxy", "off")],
            infinite: false,
        },
    )
}

/// Two tables, DHCPv4 then DHCPv6, each under a line saying whether that
/// server is on.
pub fn leases(d: &Value) -> String {
    let v4 = &d["dhcpv4"];
    let v6 = &d["dhcpv6"];
    let mut t4 = Table::new(&[
        ("IP", Left),
        ("MAC", Left),
        ("Hostname", Left),
        ("State", Left),
        ("Left", Right),
    ]);
    for l in items(&v4["leases"]) {
        t4.row(vec![
            text(&l["ip"]),
            text(&l["mac"]),
            text(&l["hostname"]),
            text(&l["state"]),
            left(&l["left_s"], "never"),
        ]);
    }
    let mut t6 = Table::new(&[
        ("Address", Left),
        ("DUID", Left),
        ("IAID", Right),
        ("State", Left),
        ("Left", Right),
    ]);
    for l in items(&v6["leases"]) {
        t6.row(vec![
            text(&l["address"]),
            text(&l["duid"]),
            count(&l["iaid"]),
            text(&l["state"]),
            left(&l["left_s"], "never"),
        ]);
    }
    let mode = v6["mode"]
        .as_str()
        .map(|m| format!(", mode {m}"))
        .unwrap_or_default();
    let mut out = lease_block("DHCPv4", &v4["enabled"], "", &t4);
    out.push('\n');
    out.push_str(&lease_block("DHCPv6", &v6["enabled"], &mode, &t6));
    out
}

fn lease_block(name: &str, enabled: &Value, extra: &str, t: &Table) -> String {
    let state = match enabled.as_bool() {
        Some(true) => "on",
        Some(false) => "off",
        None => "-",
    };
    let n = t.len();
    let mut out = format!(
        "{name} server: {state}{extra}, {n} lease{}\n",
        if n == 1 { "" } else { "s" }
    );
    if !t.is_empty() {
        out.push_str(&t.render());
    }
    out
}

pub fn version(d: &Value) -> String {
    let mut kv = Kv::default();
    kv.add("ipoed", text(&d["daemon"]))
        .add("protocol", text(&d["protocol"]))
        .add("ipoectl", env!("CARGO_PKG_VERSION"));
    kv.render(0)
}

/// The YAML as the daemon sent it, under a comment naming its file, so the
/// output is still a config file.
pub fn config(d: &Value) -> String {
    let mut out = String::new();
    if let Some(p) = d["path"].as_str() {
        let _ = writeln!(out, "# {p}");
    }
    out.push_str(d["yaml"].as_str().unwrap_or(""));
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}
