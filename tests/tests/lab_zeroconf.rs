//! IPv4 with nothing to configure (issue 20): ipoed runs with no `dslite`,
//! `map_e` or `ipip` section and finds the line's method by itself, in order:
//! HB46PP (tests/lab/hb46pp_server.py, HTTP and HTTPS with the lab CA),
//! the AFTR names (DHCPv6 option 64, the well-known names in the lab DNS),
//! a MAP rule covering the delegated prefix, or nothing. Every test sends
//! a LAN host's traffic through the method chosen (aftr.py or br.py check
//! it independently), not only `show tunnel`.

use std::time::Duration;

use ipoe_tests::{Lab, SHORT_PD_LEASE};
use serde_json::Value;

const V4_URL: &str = "http://198.51.100.10/hello.txt";
const V6_URL: &str = "http://[2001:db8:ffff::10]/hello.txt";
const AFTR: &str = "2001:db8:aaaa::1";
/// br.py's `v6plus-lab` rule (as in lab_mape.rs): 2001:db8:4d00::/40,
/// 192.0.2.0/24, EA 16, offset 4; this /56 maps to CE
/// 2001:db8:4d12:3400:c0:2:1200:3400, IPv4 192.0.2.18.
const MAP_POOL: &str = "2001:db8:4d12:3400::/56";
const CE: &str = "2001:db8:4d12:3400:c0:2:1200:3400";
const LAB_RULE: &str = "{ ipv6_prefix: \"2001:db8:4d00::/40\", ipv4_prefix: 192.0.2.0/24, \
                        ea_length: 16, psid_offset: 4, br: 2001:db8:77:bb::1 }";

/// No `dslite`, no `map_e`: `provisioning` lines (indented by two) or
/// nothing.
fn config(lab: &Lab, provisioning: &str) -> String {
    let prov = if provisioning.is_empty() {
        String::new()
    } else {
        format!("provisioning:\n{provisioning}")
    };
    format!(
        "wan:\n  interface: wan0\n  ipv6:\n    slaac: true\n    dhcpv6_pd: {{ prefix_hint: 56 }}\n\
         lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    subnet_id: 1\n\
         {prov}\
         dataplane:\n  workers: 1\n\
         control:\n  socket: {}\n  state_dir: {}\n  log_level: debug\n",
        lab.socket.display(),
        lab.state_dir().display()
    )
}

fn discovery(lab: &Lab) -> Value {
    lab.ctl_json(&["show", "tunnel"])["discovery"].clone()
}

/// Waits until discovery settled on `method` (`dslite`, `map-e`, `none`);
/// returns `show tunnel`.
fn settled(lab: &Lab, method: &str, within: Duration) -> Value {
    let got = lab.wait_for(within, || discovery(lab)["method"] == method);
    let t = lab.ctl_json(&["show", "tunnel"]);
    assert!(
        got.is_some(),
        "discovery never chose {method}: {t:#}\nipoed log:\n{}",
        lab.ipoed_log()
    );
    t
}

fn reaches_v4(lab: &Lab) {
    assert!(
        lab.fetch_within("lan1", V4_URL, Duration::from_secs(30)),
        "lan1 never reached the IPv4 server: {:#}\nipoed log:\n{}",
        lab.ctl_json(&["show", "tunnel"]),
        lab.ipoed_log()
    );
}

/// The request the HB46PP server recorded last.
fn last_request(lab: &Lab) -> Value {
    let s = lab.hb46pp_stats();
    s["records"]
        .as_array()
        .and_then(|r| r.last().cloned())
        .unwrap_or_else(|| panic!("the HB46PP server saw no request: {s:#}"))
}

fn assert_spec_query(r: &Value) {
    assert_eq!(r["method"], "GET", "{r:#}");
    assert_eq!(r["path"], "/config", "{r:#}");
    assert_eq!(r["violations"].as_array().map(Vec::len), Some(0), "{r:#}");
    let q = r["query"].as_str().unwrap_or_default();
    for part in [
        "vendorid=",
        "product=ipoe-router",
        "version=",
        "capability=dslite,map_e,ipip",
    ] {
        assert!(q.contains(part), "{part} not in the query {q}");
    }
}

/// HB46PP over plain HTTP (the TXT says `t=a`) answers DS-Lite: the router
/// asks from its WAN address, tunnels to the AFTR it was given, caches the
/// answer in state_dir (used at the next start while the server is
/// silent), and `show config` stays the file's.
#[test]
fn hb46pp_over_http_answers_ds_lite() {
    let mut lab = Lab::fresh(1);
    // Without option 64, so only HB46PP can name the AFTR.
    lab.restart_dhcp6(&["--aftr-name", ""]);
    lab.hb46pp_start(&Lab::hb46pp_answer_file("dslite"), &["--dns"]);
    lab.start_ipoed(&config(&lab, ""));
    let t = settled(&lab, "dslite", Duration::from_secs(60));
    let d = &t["discovery"];
    assert_eq!(d["source"], "hb46pp", "{t:#}");
    assert_eq!(d["hb46pp"]["enabler_name"], "Lab VNE", "{t:#}");
    assert_eq!(d["hb46pp"]["answer_from"], "server", "{t:#}");
    reaches_v4(&lab);
    let t = lab.ctl_json(&["show", "tunnel"]);
    assert_eq!(t["kind"], "dslite", "{t:#}");
    assert_eq!(t["aftr"], AFTR, "{t:#}");
    assert!(t["encap_packets"].as_u64().unwrap_or(0) > 0, "{t:#}");
    let stats = lab.aftr_stats();
    assert_eq!(stats["errors_total"], 0, "{stats}");
    let r = last_request(&lab);
    assert_spec_query(&r);
    assert_eq!(r["scheme"], "http", "{r:#}");
    // From the router's WAN address (EUI-64 in the RA's /64).
    assert_eq!(r["source"], "2001:db8:0:100:0:ff:fe00:202", "{r:#}");
    // The answer is cached, and the file's config has no dslite.
    let cache = std::fs::read_to_string(lab.state_dir().join("hb46pp-cache.json"))
        .expect("hb46pp-cache.json in state_dir");
    assert!(cache.contains(AFTR), "{cache}");
    let shown = lab.ctl_json(&["show", "config"]);
    let yaml = shown["yaml"].as_str().unwrap_or_default();
    assert!(yaml.contains("dslite: null"), "{yaml}");
    assert!(!yaml.contains(AFTR), "{yaml}");

    // A restart while the server answers nothing: the cached answer runs
    // the tunnel at once and stays while the server is silent.
    lab.hb46pp_fault(&["close"]);
    lab.stop_ipoed();
    lab.start_ipoed(&config(&lab, ""));
    let t = settled(&lab, "dslite", Duration::from_secs(30));
    assert_eq!(t["discovery"]["source"], "hb46pp", "{t:#}");
    assert_eq!(t["discovery"]["hb46pp"]["answer_from"], "cache", "{t:#}");
    reaches_v4(&lab);
    assert!(
        lab.ipoed_log().contains("using the cached answer"),
        "{}",
        lab.ipoed_log()
    );
    lab.hb46pp_stop();
}

/// HB46PP over HTTPS (`t=b`): the router verifies the server against
/// `provisioning.ca_file` (the lab CA) and runs the MAP-E it answers; br.py
/// sees the CE the rule gives the delegated prefix.
#[test]
fn hb46pp_over_https_with_the_lab_ca_answers_map_e() {
    let mut lab = Lab::fresh(1);
    lab.br_start(&["--rule", "v6plus-lab"]);
    lab.restart_dhcp6(&["--pool", MAP_POOL, "--aftr-name", ""]);
    lab.hb46pp_start(&Lab::hb46pp_answer_file("map_e"), &["--tls", "--dns"]);
    let ca = lab.lab_ca();
    lab.start_ipoed(&config(&lab, &format!("  ca_file: {}\n", ca.display())));
    let t = settled(&lab, "map-e", Duration::from_secs(60));
    assert_eq!(t["discovery"]["source"], "hb46pp", "{t:#}");
    reaches_v4(&lab);
    let t = lab.ctl_json(&["show", "tunnel"]);
    assert_eq!(t["kind"], "map-e", "{t:#}");
    assert_eq!(t["br"], "2001:db8:77:bb::1", "{t:#}");
    let stats = lab.br_stats();
    assert!(
        !stats["ces"][CE].is_null(),
        "br.py saw nothing from {CE}: {stats}"
    );
    assert_eq!(stats["violations_total"], 0, "{}", stats["violations"]);
    let h = lab.hb46pp_stats();
    let r = last_request(&lab);
    assert_spec_query(&r);
    assert_eq!(r["scheme"], "https", "{r:#}");
    assert_eq!(r["sni"], Lab::HB46PP_NAME, "{r:#}");
    assert_eq!(h["tls_failure_count"], 0, "{h:#}");
    lab.hb46pp_stop();
    lab.br_stop();
}

/// No TXT record, no option 64, but gw.transix.jp in the lab DNS: DS-Lite
/// to what it resolves to.
#[test]
fn a_well_known_aftr_name_gives_ds_lite() {
    let mut lab = Lab::fresh(1);
    lab.restart_dhcp6(&["--aftr-name", ""]);
    lab.dns_add("host", "gw.transix.jp", AFTR);
    lab.start_ipoed(&config(&lab, ""));
    let t = settled(&lab, "dslite", Duration::from_secs(90));
    let d = &t["discovery"];
    assert_eq!(d["source"], "well-known name gw.transix.jp", "{t:#}");
    let why = d["why"].as_str().unwrap_or_default();
    assert!(why.contains("no 4over6.info TXT record"), "{why}");
    assert!(why.contains("no AFTR-Name from DHCPv6"), "{why}");
    reaches_v4(&lab);
    assert_eq!(lab.ctl_json(&["show", "tunnel"])["aftr"], AFTR);
    lab.dns_del("host", "gw.transix.jp");
}

/// A delegated prefix inside a MAP rule of the table the router uses
/// (`provisioning.map_rules`, consulted before the built-in JP table; the
/// lab rule is documentation space): MAP-E through br.py.
#[test]
fn a_delegated_prefix_in_a_map_rule_gives_map_e() {
    let mut lab = Lab::fresh(1);
    lab.br_start(&["--rule", "v6plus-lab"]);
    lab.restart_dhcp6(&["--pool", MAP_POOL, "--aftr-name", ""]);
    lab.start_ipoed(&config(&lab, &format!("  map_rules:\n    - {LAB_RULE}\n")));
    let t = settled(&lab, "map-e", Duration::from_secs(90));
    assert_eq!(
        t["discovery"]["source"], "rule table (provisioning.map_rules[0])",
        "{t:#}"
    );
    reaches_v4(&lab);
    let stats = lab.br_stats();
    assert!(
        !stats["ces"][CE].is_null(),
        "br.py saw nothing from {CE}: {stats}"
    );
    assert_eq!(stats["violations_total"], 0, "{}", stats["violations"]);
    lab.br_stop();
}

/// Nothing anywhere: "no IPv4" in show tunnel and the log, IPv4 from the
/// LAN goes nowhere, IPv6 forwarding as before.
#[test]
fn nothing_found_means_no_ipv4_and_ipv6_as_before() {
    let mut lab = Lab::fresh(1);
    lab.restart_dhcp6(&["--aftr-name", ""]);
    lab.start_ipoed(&config(&lab, ""));
    let t = settled(&lab, "none", Duration::from_secs(90));
    assert_eq!(t["up"], false, "{t:#}");
    assert!(t["kind"].is_null(), "{t:#}");
    let why = t["discovery"]["why"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(why.contains("no IPv4"), "{why}");
    assert!(why.contains("no MAP rule covers"), "{why}");
    assert!(
        lab.ipoed_log().contains("ipv4: no IPv4 found"),
        "{}",
        lab.ipoed_log()
    );
    assert!(
        lab.fetch_within("lan1", V6_URL, Duration::from_secs(30)),
        "IPv6 from the LAN: {}",
        lab.ipoed_log()
    );
    assert!(!lab.fetch("lan1", V4_URL), "IPv4 went somewhere");
}

/// The answer changes: HB46PP says DS-Lite, then the server says MAP-E and
/// the delegated prefix is renumbered (the spec's "address changed"
/// refresh); the router moves to MAP-E without a restart and the LAN
/// reaches the server through br.py from the CE of the new prefix.
/// 2001:db8:4d56:7800::/56 -> 192.0.2.86, CE 2001:db8:4d56:7800:c0:2:5600:7800.
#[test]
fn a_new_hb46pp_answer_switches_the_method_without_a_restart() {
    let mut lab = Lab::fresh(1);
    lab.br_start(&["--rule", "v6plus-lab"]);
    let mut dhcp = vec!["--pool", MAP_POOL, "--aftr-name", ""];
    dhcp.extend_from_slice(SHORT_PD_LEASE);
    lab.restart_dhcp6(&dhcp);
    lab.hb46pp_start(&Lab::hb46pp_answer_file("dslite"), &["--dns"]);
    lab.start_ipoed(&config(&lab, ""));
    settled(&lab, "dslite", Duration::from_secs(60));
    reaches_v4(&lab);
    let pid = lab.ipoed_pid();
    let requests = lab.hb46pp_stats()["requests"].as_u64().unwrap_or(0);

    lab.hb46pp_answer(&Lab::hb46pp_answer_file("map_e"));
    let mut renumber = vec!["--pool", "2001:db8:4d56:7800::/56", "--aftr-name", ""];
    renumber.extend_from_slice(SHORT_PD_LEASE);
    lab.restart_dhcp6(&renumber);
    let t = settled(&lab, "map-e", Duration::from_secs(90));
    assert_eq!(t["discovery"]["source"], "hb46pp", "{t:#}");
    assert!(
        t["discovery"]["changes"].as_u64().unwrap_or(0) >= 2,
        "{t:#}"
    );
    assert!(lab.hb46pp_stats()["requests"].as_u64().unwrap_or(0) > requests);
    reaches_v4(&lab);
    let new_ce = "2001:db8:4d56:7800:c0:2:5600:7800";
    let stats = lab.br_stats();
    assert!(
        !stats["ces"][new_ce].is_null(),
        "br.py saw nothing from {new_ce}: {stats}"
    );
    assert_eq!(stats["violations_total"], 0, "{}", stats["violations"]);
    assert_eq!(lab.ipoed_pid(), pid, "ipoed restarted");
    assert_eq!(lab.ctl_json(&["show", "tunnel"])["kind"], "map-e");
    assert!(
        lab.ipoed_log().contains("asking again"),
        "{}",
        lab.ipoed_log()
    );
    lab.hb46pp_stop();
    lab.br_stop();
}

/// HTTPS with `t=b` and no `provisioning.ca_file`: the lab CA is not
/// trusted, the router refuses the server (it never turns verification off
/// for a `t=b` record) and, with nothing else on the line, says no IPv4.
#[test]
fn an_untrusted_provisioning_server_is_refused() {
    let mut lab = Lab::fresh(1);
    lab.restart_dhcp6(&["--aftr-name", ""]);
    lab.hb46pp_start(&Lab::hb46pp_answer_file("dslite"), &["--tls", "--dns"]);
    lab.start_ipoed(&config(&lab, ""));
    let t = settled(&lab, "none", Duration::from_secs(90));
    let why = t["discovery"]["why"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(why.contains("HB46PP: "), "{why}");
    assert!(why.to_lowercase().contains("certificate"), "{why}");
    let h = lab.hb46pp_stats();
    assert!(h["tls_failure_count"].as_u64().unwrap_or(0) > 0, "{h:#}");
    assert_eq!(h["requests"], 0, "a request reached the server: {h:#}");
    assert!(!lab.fetch("lan1", V4_URL), "IPv4 went somewhere");
    lab.hb46pp_stop();
}

/// HB46PP answers IPIP (tests/lab/hb46pp/ipip.json: remote
/// 2001:db8:77:cc::1, 192.0.2.77, local 2001:db8:0:100::feed): the router
/// runs the fixed-IPv4 tunnel as for an `ipip` section, from the WAN /64
/// plus the answer's interface ID, with nothing to register (HB46PP names
/// no update URL; the provider's side is registered as its provisioning
/// would). ipip.py carries lan1's traffic and the IPv4 server sees the
/// fixed address. Then a new answer (DS-Lite, asked again on a new
/// delegated prefix) takes the tunnel down and DS-Lite up, no restart.
#[test]
fn hb46pp_answering_ipip_gives_the_fixed_ipv4() {
    const LOCAL: &str = "2001:db8:0:100::feed";
    let mut lab = Lab::fresh(1);
    lab.ipip_start(&[]);
    lab.ipip_register(Some(LOCAL));
    let mut dhcp = vec!["--aftr-name", ""];
    dhcp.extend_from_slice(SHORT_PD_LEASE);
    lab.restart_dhcp6(&dhcp);
    lab.hb46pp_start(&Lab::hb46pp_answer_file("ipip"), &["--dns"]);
    lab.start_ipoed(&config(&lab, ""));
    let t = settled(&lab, "ipip", Duration::from_secs(60));
    let d = &t["discovery"];
    assert_eq!(d["source"], "hb46pp", "{t:#}");
    let detail = d["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("no update URL"), "{t:#}");
    assert!(d.get("ipip_offered").is_none(), "{t:#}");
    reaches_v4(&lab);
    let http_log = std::fs::read_to_string(lab.run_dir.join("http-access.log")).unwrap_or_default();
    assert!(
        http_log.contains(&format!("::ffff:{}", Lab::IPIP_IPV4)),
        "the server never saw {}:\n{http_log}",
        Lab::IPIP_IPV4
    );
    let t = lab.ctl_json(&["show", "tunnel"]);
    assert_eq!(t["kind"], "ipip", "{t:#}");
    assert_eq!(t["ipip"]["local"], LOCAL, "{t:#}");
    assert_eq!(t["ipip"]["remote"], Lab::IPIP_REMOTE, "{t:#}");
    assert_eq!(t["ipip"]["ipv4"], Lab::IPIP_IPV4, "{t:#}");
    assert_eq!(t["ipip"]["up"], true, "{t:#}");
    assert!(t["ipip"]["update"].is_null(), "{t:#}");
    assert_eq!(t["mtu"], 1460, "{t:#}");
    assert_eq!(t["mss_clamp"], 1420, "{t:#}");
    let stats = lab.ipip_stats();
    assert!(stats["decap_ok"].as_u64().unwrap_or(0) > 0, "{stats}");
    assert!(stats["encap_ok"].as_u64().unwrap_or(0) > 0, "{stats}");
    assert_eq!(stats["violations_total"], 0, "{}", stats["violations"]);
    // show config is the file's: no ipip section in it.
    let shown = lab.ctl_json(&["show", "config"]);
    let yaml = shown["yaml"].as_str().unwrap_or_default();
    assert!(yaml.contains("ipip: null"), "{yaml}");
    assert!(!yaml.contains(Lab::IPIP_REMOTE), "{yaml}");
    assert!(
        !lab.ipoed_log().contains("applied once"),
        "{}",
        lab.ipoed_log()
    );

    // DS-Lite from the next answer: the tunnel moves to the AFTR.
    let pid = lab.ipoed_pid();
    lab.hb46pp_answer(&Lab::hb46pp_answer_file("dslite"));
    let mut renumber = vec!["--pool", "2001:db8:4d56:7800::/56", "--aftr-name", ""];
    renumber.extend_from_slice(SHORT_PD_LEASE);
    lab.restart_dhcp6(&renumber);
    let t = settled(&lab, "dslite", Duration::from_secs(90));
    assert_eq!(t["kind"], "dslite", "{t:#}");
    assert!(t["ipip"].is_null(), "{t:#}");
    let decap = lab.ipip_stats()["decap_ok"].as_u64().unwrap_or(0);
    reaches_v4(&lab);
    assert_eq!(lab.aftr_stats()["errors_total"], 0);
    assert_eq!(
        lab.ipip_stats()["decap_ok"].as_u64().unwrap_or(0),
        decap,
        "IPv4 still went to the IPIP tunnel end"
    );
    assert_eq!(lab.ipoed_pid(), pid, "ipoed restarted");
    lab.hb46pp_stop();
    lab.ipip_stop();
}
