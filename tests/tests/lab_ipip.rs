//! Fixed IPv4 over IPIP with the real ipoed (issue 20): the provider's
//! side is the lab's own (tests/lab/ipip.py, the tunnel end at
//! 2001:db8:77:cc::1 carrying 192.0.2.77; update_server.py, the v6plus
//! style update URL), written independently of ipoed: ipip.py counts every
//! packet from an unregistered or wrong source, the update server records
//! every request with its source address and credentials.
//!
//! Expected values are this file's: the local address is the WAN /64 that
//! hgw advertises (2001:db8:0:100::/64) plus the contract IID ::feed.

use std::time::Duration;

use ipoe_tests::Lab;
use serde_json::Value;

const LOCAL: &str = "2001:db8:0:100::feed";
const NEW64: &str = "2001:db8:0:200::";
const MOVED: &str = "2001:db8:0:200::feed";
const FIXED: &str = Lab::IPIP_IPV4;
const SERVER_URL: &str = "http://198.51.100.10/hello.txt";
const PASSWORD: &str = "secret";
const LAN2: &str = "192.168.2.20";

/// `ipip_extra`: lines indented under `ipip:` (after `update:`'s).
fn config(lab: &Lab, remote: &str, update: &str, ipip_extra: &str) -> String {
    format!(
        "wan:\n  interface: wan0\n  ipv6:\n    slaac: true\n\
         lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    subnet_id: 1\n\
         ipip:\n  remote: {remote}\n  local_iid: \"::feed\"\n  ipv4: {FIXED}\n{update}{ipip_extra}\
         dataplane:\n  workers: 1\n\
         control:\n  socket: {}\n  state_dir: {}\n  log_level: debug\n",
        lab.socket.display(),
        lab.state_dir().display()
    )
}

fn query_update() -> String {
    format!("  update:\n    url: \"{}\"\n", Lab::UPDATE_URL)
}

/// Two forwards to lan2's server: 8080, and 80 (a system port: the fixed
/// address is ours whole).
fn forward() -> String {
    format!(
        "  port_forwards:\n    - {{ proto: tcp, port: 8080, to: \"{LAN2}:8080\" }}\n    - {{ proto: tcp, port: 80, to: \"{LAN2}:8080\" }}\n"
    )
}

/// The update server's records of requests that registered `local`.
fn registrations_from(lab: &Lab, local: &str) -> Vec<Value> {
    lab.update_stats()["records"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["source"] == local && r["registered"] == true)
        .collect()
}

fn registered(lab: &Lab, local: &str, secs: u64) -> bool {
    let took = lab.wait_for(Duration::from_secs(secs), || {
        lab.update_stats()["registered"]["local"] == local
    });
    if let Some(t) = took {
        eprintln!("{local} registered after {:.1} s", t.as_secs_f64());
    }
    took.is_some()
}

fn http_log(lab: &Lab) -> String {
    std::fs::read_to_string(lab.run_dir.join("http-access.log")).unwrap_or_default()
}

fn no_secret(lab: &Lab) {
    let log = lab.ipoed_log();
    assert!(
        !log.contains(PASSWORD),
        "the password is in the log:\n{log}"
    );
    assert!(
        log.contains("pass=***"),
        "the log names the masked URL:\n{log}"
    );
    let r = lab.ctl(&["--json", "show", "config"]);
    assert!(r.ok, "{}", r.stderr);
    assert!(!r.stdout.contains(PASSWORD), "show config: {}", r.stdout);
    assert!(r.stdout.contains("pass=***"), "show config: {}", r.stdout);
}

/// The checks: the registration (source = the local address, the
/// credentials), LAN hosts reaching the IPv4 server from the fixed address,
/// a port forward from the internet, the WAN /64 changing (re-registered
/// from the new address, traffic resumes), and no password anywhere.
#[test]
fn ipip_registers_carries_the_lan_forwards_and_follows_a_new_wan_64() {
    let mut lab = Lab::fresh(1);
    lab.ipip_start(&[]);
    lab.ipip_register(None);
    lab.update_start(&[]);
    lab.start_ipoed(&config(&lab, Lab::IPIP_REMOTE, &query_update(), &forward()));

    assert!(registered(&lab, LOCAL, 60), "{}", lab.ipoed_log());
    let regs = registrations_from(&lab, LOCAL);
    let r = &regs[0];
    assert_eq!(r["path"], "/update");
    assert_eq!(r["user"], "lab");
    assert_eq!(r["pass"], PASSWORD);
    assert!(r["user_agent"].as_str().unwrap_or("").starts_with("ipoed/"));

    assert!(
        lab.fetch_within("lan1", SERVER_URL, Duration::from_secs(30)),
        "lan1 never reached the server over IPIP:\n{}",
        lab.ipoed_log()
    );
    assert!(
        http_log(&lab).contains(&format!("::ffff:{FIXED}")),
        "the server never saw {FIXED}:\n{}",
        http_log(&lab)
    );
    let t = lab.ctl_json(&["show", "tunnel"]);
    assert_eq!(t["kind"], "ipip", "{t}");
    assert_eq!(t["ipip"]["local"], LOCAL, "{t}");
    assert_eq!(t["ipip"]["remote"], Lab::IPIP_REMOTE, "{t}");
    assert_eq!(t["ipip"]["ipv4"], FIXED, "{t}");
    assert_eq!(t["ipip"]["update"]["last"]["result"], "ok", "{t}");
    assert_eq!(t["ipip"]["update"]["registered"], true, "{t}");
    assert_eq!(t["mtu"], 1460, "{t}");
    assert_eq!(t["mss_clamp"], 1420, "{t}");
    assert!(t["silent"].is_null(), "{t}");

    // A port forward from the internet to lan2.
    lab.add_lan2_v4();
    let mut server = lab.tcp_server("lan2");
    let mut answer = Err(String::new());
    lab.wait_for(Duration::from_secs(15), || {
        answer = lab.tcp_ask("inet", FIXED, 8080);
        answer.is_ok()
    });
    assert_eq!(
        answer,
        Ok("server sees 203.0.113.2".to_owned()),
        "{}",
        lab.ctl(&["show", "errors"]).stdout
    );
    assert_eq!(
        lab.tcp_ask("inet", FIXED, 80),
        Ok("server sees 203.0.113.2".to_owned()),
        "the forward of system port 80"
    );
    // Hairpinning: lan1 reaches the forward at the fixed address, lan2
    // sees the fixed address, and nothing of it enters the tunnel.
    let before = lab.ipip_stats()["decap_ok"].as_u64().unwrap_or(0);
    assert_eq!(
        lab.tcp_ask("lan1", FIXED, 8080),
        Ok(format!("server sees {FIXED}"))
    );
    let after = lab.ipip_stats()["decap_ok"].as_u64().unwrap_or(0);
    assert_eq!(before, after, "the hairpin went through the tunnel end");
    ipoe_tests::terminate(&mut server);

    // Renumbering: hgw advertises another /64, the old one deprecated.
    let r = lab.exec(
        "hgw",
        &[
            "ip",
            "-6",
            "addr",
            "add",
            "2001:db8:0:200::1/64",
            "dev",
            "down0",
            "nodad",
        ],
    );
    assert!(r.ok, "{}", r.stderr);
    lab.script_ok(&[
        "radvd",
        "start",
        "--prefix",
        &format!("{NEW64}/64"),
        "--deprecated",
        "2001:db8:0:100::/64",
    ]);
    assert!(
        registered(&lab, MOVED, 90),
        "not re-registered from {MOVED}:\n{}\n{}",
        lab.ctl(&["show", "tunnel"]).stdout,
        lab.ipoed_log()
    );
    let t = lab.ctl_json(&["show", "tunnel"]);
    assert_eq!(t["ipip"]["local"], MOVED, "{t}");
    assert!(t["ipip"]["local_changes"].as_u64().unwrap_or(0) >= 1, "{t}");
    let before = lab.ipip_stats()["decap_ok"].as_u64().unwrap_or(0);
    let t0 = std::time::Instant::now();
    assert!(
        lab.fetch_within("lan1", SERVER_URL, Duration::from_secs(30)),
        "traffic did not resume after the renumbering:\n{}",
        lab.ipoed_log()
    );
    eprintln!(
        "traffic again {:.1} s after the re-registration",
        t0.elapsed().as_secs_f64()
    );
    for line in lab.ipoed_log().lines().filter(|l| l.contains("ipip")) {
        eprintln!("ipoed: {line}");
    }
    let stats = lab.ipip_stats();
    assert!(stats["decap_ok"].as_u64().unwrap_or(0) > before, "{stats}");
    assert_eq!(stats["registered_local"], MOVED, "{stats}");
    // Nothing ipoed sent was refused by the tunnel end, but what raced the
    // renumbering from the old address (counted by name, listed).
    let v = &stats["violations"];
    for name in v
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if name != "wrong-outer-source" && name != "not-registered" {
            assert_eq!(v[&name], 0, "{name}: {stats}");
        }
    }
    no_secret(&lab);
    assert!(lab.ipoed_alive());
}

/// A remote with a typo: nothing ever comes back, and `show tunnel` says
/// so. The update server wants HTTP Basic and fails the first request:
/// the retry 30 s later registers with the configured credentials.
#[test]
fn ipip_wrong_remote_is_silent_and_a_failed_registration_is_retried() {
    let mut lab = Lab::fresh(1);
    lab.ipip_start(&[]);
    lab.ipip_register(None);
    lab.update_start(&["--basic", "--fail-first", "1"]);
    let update =
        "  update:\n    url: \"http://[2001:db8:77:ee::80]:8082/update?user=lab&pass=secret\"\n\
                  \x20   username: lab\n    password: secret\n";
    // 2001:db8:77:cc::11 for ::1: routed to the provider, nobody answers.
    lab.start_ipoed(&config(&lab, "2001:db8:77:cc::11", update, ""));

    let failed = lab.wait_for(Duration::from_secs(60), || {
        lab.ctl_json(&["show", "tunnel"])["ipip"]["update"]["last"]["result"] == "http-503"
    });
    assert!(failed.is_some(), "{}", lab.ipoed_log());
    let t = lab.ctl_json(&["show", "tunnel"]);
    let next = t["ipip"]["update"]["next_attempt_in_s"]
        .as_u64()
        .unwrap_or(0);
    assert!((20..=30).contains(&next), "retry in 30 s: {t}");

    // Traffic into the tunnel, none back.
    let _ = lab.exec(
        "lan1",
        &[
            "ping",
            "-n",
            "-c",
            "15",
            "-i",
            "1",
            "-W",
            "1",
            "198.51.100.10",
        ],
    );
    let silent = lab.wait_for(Duration::from_secs(10), || {
        !lab.ctl_json(&["show", "tunnel"])["silent"].is_null()
    });
    let t = lab.ctl_json(&["show", "tunnel"]);
    assert!(silent.is_some(), "no silent alarm: {t}");
    assert!(t["silent"]["sent"].as_u64().unwrap_or(0) >= 10, "{t}");
    assert!(lab
        .ipoed_log()
        .contains("ipip: nothing from the remote 2001:db8:77:cc::11"));
    let table = lab.ctl(&["show", "tunnel"]).stdout;
    assert!(table.contains("silent"), "{table}");

    assert!(registered(&lab, LOCAL, 45), "{}", lab.ipoed_log());
    let regs = registrations_from(&lab, LOCAL);
    assert_eq!(regs[0]["basic_user"], "lab");
    assert_eq!(regs[0]["basic_pass"], PASSWORD);
    let s = lab.update_stats();
    assert_eq!(s["results"]["injected-failure"], 1, "{s}");
    no_secret(&lab);
}

/// An update URL naming its server (as the real ones do): the name is
/// resolved with the DNS servers the WAN learned, and the GET goes to the
/// answer from the local address, with transix-style credentials.
#[test]
fn ipip_update_url_by_name_is_resolved_with_the_wan_dns() {
    let mut lab = Lab::fresh(1);
    lab.ipip_start(&[]);
    lab.ipip_register(None);
    lab.update_start(&["--style", "transix"]);
    lab.dns_add("host", "update.lab.example", "2001:db8:77:ee::80");
    let update = "  update:\n    url: \"http://update.lab.example:8082/request?username=lab&password=secret\"\n";
    lab.start_ipoed(&config(&lab, Lab::IPIP_REMOTE, update, ""));
    assert!(registered(&lab, LOCAL, 60), "{}", lab.ipoed_log());
    let regs = registrations_from(&lab, LOCAL);
    assert_eq!(regs[0]["path"], "/request");
    assert_eq!(regs[0]["host"], "update.lab.example:8082");
    let t = lab.ctl_json(&["show", "tunnel"]);
    assert_eq!(
        t["ipip"]["update"]["server"]["address"], "2001:db8:77:ee::80",
        "{t}"
    );
    assert!(
        lab.fetch_within("lan1", SERVER_URL, Duration::from_secs(30)),
        "{}",
        lab.ipoed_log()
    );
    let log = lab.ipoed_log();
    assert!(!log.contains(PASSWORD), "{log}");
    assert!(log.contains("password=***"), "{log}");
}
