//! WAN autoconfiguration end to end: ipoed starts with no addresses and
//! learns everything from the lab's home gateway, which runs real radvd,
//! Kea (or ISC dhcpd -6) and dnsmasq. Each test is one check of the WAN
//! issue; timings they measure are printed for the record.

use std::time::{Duration, Instant};

use ipoe_tests::{terminate, Lab, PingProbe, SHORT_PD_LEASE};
use serde_json::Value;

const V4_URL: &str = "http://198.51.100.10/hello.txt";
const V6_URL: &str = "http://[2001:db8:ffff::10]/hello.txt";

fn pd(lab: &Lab) -> Value {
    lab.ctl_json(&["show", "pd"])
}

fn tunnel(lab: &Lab) -> Value {
    lab.ctl_json(&["show", "tunnel"])
}

fn wan(lab: &Lab) -> Value {
    lab.ctl_json(&["show", "wan"])
}

fn dhcp6_log(lab: &Lab) -> String {
    std::fs::read_to_string(lab.run_dir.join("dhcp6.log")).unwrap_or_default()
}

/// Lines of the DHCPv6 server's log that record a received message of `kind`
/// (SOLICIT, REQUEST, RENEW, REBIND).
fn server_saw(log: &str, kind: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            l.contains(kind)
                && (l.contains("DHCP6_QUERY_DATA")
                    || l.contains("DHCP6_BUFFER_RECEIVED")
                    || l.contains("DHCP6_PACKET_RECEIVED")
                    || l.contains("Received"))
        })
        .map(str::to_owned)
        .collect()
}

/// Seconds since midnight of a Kea log line (`2026-11-25 05:32:12.116 ...`).
fn clock_seconds(line: &str) -> Option<f64> {
    let t = line.split_whitespace().nth(1)?;
    let mut parts = t.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Moves the LAN host into the current LAN /64 (ipoed sends no LAN RAs
/// yet, so the host is renumbered by hand, as its SLAAC would do).
fn renumber_lan_host(lab: &Lab, lan_prefix: &str) {
    let base = lan_prefix.trim_end_matches("/64").trim_end_matches("::");
    let host = format!("{base}::10/64");
    let router = format!("{base}::1");
    lab.exec(
        "lan1",
        &[
            "ip", "-6", "addr", "flush", "dev", "eth0", "scope", "global",
        ],
    );
    let r = lab.exec(
        "lan1",
        &["ip", "-6", "addr", "add", &host, "dev", "eth0", "nodad"],
    );
    assert!(r.ok, "{}", r.stderr);
    let r = lab.exec(
        "lan1",
        &[
            "ip", "-6", "route", "replace", "default", "via", &router, "dev", "eth0",
        ],
    );
    assert!(r.ok, "{}", r.stderr);
}

fn wait_ready(lab: &Lab, lan_prefix: &str, timeout: Duration) -> Duration {
    let took = lab.wait_for(timeout, || {
        let p = pd(lab);
        let t = tunnel(lab);
        p["lan_prefix"] == lan_prefix && t["up"] == true
    });
    took.unwrap_or_else(|| {
        panic!(
            "not configured within {timeout:?}:\npd: {}\ntunnel: {}\nwan: {}\n{}",
            pd(lab),
            tunnel(lab),
            wan(lab),
            lab.ipoed_log()
        )
    })
}

/// Check 1: cold start, empty state, no addresses in the config.
#[test]
fn cold_start_learns_everything_and_forwards() {
    let mut lab = Lab::fresh(1);
    let cfg = lab.auto_config(1, "aftr.lab.example", "wan");
    // Everything ipoed says on the WAN, for tshark to judge afterwards.
    let pcap = lab.run_dir.join("wan-autoconf.pcap");
    let _ = std::fs::remove_file(&pcap);
    let pcap_s = pcap.to_str().unwrap().to_owned();
    let mut capture = lab.spawn(
        "hgw",
        &["tcpdump", "-U", "-n", "-i", "down0", "-w", &pcap_s, "ip6"],
    );
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    lab.start_ipoed(&cfg);
    // First forwarded packet: poll with short curls until one succeeds.
    let first = lab
        .wait_for(Duration::from_secs(30), || lab.fetch("lan1", V4_URL))
        .unwrap_or_else(|| {
            panic!(
                "no IPv4 via DS-Lite within 30 s\n{}\n{}",
                tunnel(&lab),
                lab.ipoed_log()
            )
        });
    eprintln!(
        "cold start: first IPv4 packet forwarded {:?} after start",
        t0.elapsed()
    );
    let _ = first;

    let p = pd(&lab);
    assert_eq!(p["delegated_prefix"], "2001:db8:0:110::/60", "{p}");
    assert_eq!(p["lan_prefix"], "2001:db8:0:111::/64");
    assert_eq!(p["lan_address"], "2001:db8:0:111::1");
    assert_eq!(p["state"], "bound");
    assert_eq!(p["aftr_name"], "aftr.lab.example");
    let w = wan(&lab);
    // EUI-64 of 02:00:00:00:02:02 in the RA's /64.
    assert_eq!(w["address_in_use"], "2001:db8:0:100:0:ff:fe00:202", "{w}");
    assert_eq!(w["default_router"], "fe80::1");
    assert_eq!(w["ra_flags"]["managed"], true);
    assert!(
        w["dns_servers"].to_string().contains("2001:db8:0:100::1"),
        "{w}"
    );
    let t = tunnel(&lab);
    assert_eq!(t["b4"], "2001:db8:0:100:0:ff:fe00:202", "{t}");
    assert_eq!(t["aftr"], "2001:db8:aaaa::1");
    assert_eq!(t["aftr_learned_from"], "dns");

    assert!(
        lab.fetch("lan1", V6_URL),
        "IPv6 via the learned prefix\n{}",
        lab.ipoed_log()
    );
    let access = std::fs::read_to_string(lab.run_dir.join("http-access.log")).unwrap_or_default();
    assert!(
        access.lines().any(|l| l.contains("203.0.113.1")),
        "{access}"
    );
    let stats = lab.aftr_stats();
    assert_eq!(stats["errors_total"], 0, "{stats}");
    assert_eq!(stats["last_b4"], "2001:db8:0:100:0:ff:fe00:202", "{stats}");
    std::thread::sleep(Duration::from_millis(500));
    terminate(&mut capture);
    // radvd's own RAs may beat our first RS (then none is needed); the RS
    // is checked where ipoed must solicit, after the router expired.
    check_wire(&lab, &pcap_s, &["dhcpv6", ":dns"]);
    // The DUID is kept for the next start.
    let duid = std::fs::read_to_string(lab.state_dir().join("duid")).unwrap();
    assert_eq!(
        duid.trim(),
        "00030001020000000202",
        "DUID-LL of the WAN MAC"
    );
    assert!(lab.state_dir().join("pd-lease.json").exists());
    let (code, _) = lab.stop_ipoed();
    assert_eq!(code, Some(0));
}

/// tshark, an independent decoder, must read our RS, DHCPv6 and DNS
/// messages with no malformed-packet or warning expert info.
fn check_wire(lab: &Lab, pcap: &str, expect: &[&str]) {
    let ours = "eth.src == 02:00:00:00:02:02";
    let r = lab.exec(
        "hgw",
        &[
            "tshark",
            "-n",
            "-r",
            pcap,
            "-Y",
            &format!("{ours} && (icmpv6.type == 133 || dhcpv6 || dns)"),
            "-T",
            "fields",
            "-e",
            "frame.protocols",
            "-e",
            "dhcpv6.msgtype",
            "-e",
            "_ws.expert.severity",
        ],
    );
    assert!(r.ok, "tshark: {}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    eprintln!("tshark on hgw down0, our control frames:\n{}", r.stdout);
    for want in expect {
        assert!(
            lines.iter().any(|l| l.contains(want)),
            "no {want} frame from us seen"
        );
    }
    for l in &lines {
        assert!(
            !l.contains("malformed") && !l.contains("_ws.malformed"),
            "malformed: {l}"
        );
    }
    let warn = lab.tshark_warnings("hgw", pcap, ours);
    assert!(warn.is_empty(), "tshark warnings on our frames:\n{warn}");
}

/// Release on shutdown when configured: the server sees a RELEASE and the
/// saved lease is gone.
#[test]
fn release_on_shutdown_when_configured() {
    let mut lab = Lab::fresh(1);
    let cfg = lab.auto_config(1, "aftr.lab.example", "wan").replace(
        "{ prefix_hint: 60 }",
        "{ prefix_hint: 60, release_on_shutdown: true }",
    );
    lab.start_ipoed(&cfg);
    wait_ready(&lab, "2001:db8:0:111::/64", Duration::from_secs(30));
    assert_eq!(lab.stop_ipoed().0, Some(0));
    let seen = lab.wait_for(Duration::from_secs(5), || {
        !server_saw(&dhcp6_log(&lab), "RELEASE").is_empty()
    });
    assert!(
        seen.is_some(),
        "no Release at the server:\n{}",
        dhcp6_log(&lab)
    );
    assert!(!lab.state_dir().join("pd-lease.json").exists());
}

/// Check 2: the LAN /64 for subnet ids 0, 1 and the last one, from a /56
/// and a /60 delegation; an id that does not fit is an error, not a panic.
#[test]
fn lan_subnet_of_56_and_60_delegations() {
    let mut lab = Lab::up(1);
    let cases: &[(&str, &str, u32, &str)] = &[
        ("2001:db8:0:200::/56", "56", 0, "2001:db8:0:200::/64"),
        ("2001:db8:0:200::/56", "56", 1, "2001:db8:0:201::/64"),
        ("2001:db8:0:200::/56", "56", 255, "2001:db8:0:2ff::/64"),
        ("2001:db8:0:110::/60", "60", 0, "2001:db8:0:110::/64"),
        ("2001:db8:0:110::/60", "60", 1, "2001:db8:0:111::/64"),
        ("2001:db8:0:110::/60", "60", 15, "2001:db8:0:11f::/64"),
    ];
    let mut pool = "";
    for &(prefix, len, id, want) in cases {
        if pool != prefix {
            lab.restart_dhcp6(&["--pool", prefix, "--delegated-len", len]);
            pool = prefix;
        }
        let _ = std::fs::remove_dir_all(lab.state_dir());
        let cfg = lab.auto_config(id, "2001:db8:aaaa::1", "delegated");
        lab.start_ipoed(&cfg);
        let took = wait_ready(&lab, want, Duration::from_secs(20));
        let p = pd(&lab);
        assert_eq!(p["delegated_prefix"], prefix, "{p}");
        let base = want.trim_end_matches("/64").trim_end_matches("::");
        assert_eq!(p["lan_address"], format!("{base}::1"));
        // B4 `delegated` is ::1 of subnet 0.
        let sub0 = prefix.split('/').next().unwrap().trim_end_matches("::");
        assert_eq!(tunnel(&lab)["b4"], format!("{sub0}::1"));
        eprintln!("{prefix} subnet {id} -> {want} in {took:?}");
        lab.stop_ipoed();
    }
    // subnet 16 of a /60 does not exist.
    let _ = std::fs::remove_dir_all(lab.state_dir());
    let cfg = lab.auto_config(16, "2001:db8:aaaa::1", "wan");
    lab.start_ipoed(&cfg);
    let err = lab.wait_for(Duration::from_secs(20), || pd(&lab)["error"].is_string());
    assert!(err.is_some(), "{}", pd(&lab));
    let p = pd(&lab);
    assert!(
        p["error"]
            .as_str()
            .unwrap()
            .contains("subnet_id 16 does not fit"),
        "{p}"
    );
    assert!(p["lan_prefix"].is_null());
    assert!(lab.ipoed_log().contains("subnet_id 16 does not fit"));
    assert_eq!(lab.stop_ipoed().0, Some(0));
}

/// Checks 3 and 4: short lifetimes for three minutes with traffic flowing,
/// Renew seen by the server at T1; then the RAs stop and the default route
/// expires (counted, logged) and comes back with the next RA.
#[test]
fn short_lifetimes_keep_forwarding_then_router_expires_and_returns() {
    let mut lab = Lab::fresh(1);
    lab.script_ok(&["radvd", "start", "--lifetime", "30", "--interval", "10"]);
    lab.restart_dhcp6(&[
        "--t1",
        "20",
        "--t2",
        "32",
        "--preferred",
        "40",
        "--valid",
        "60",
    ]);
    let cfg = lab.auto_config(1, "aftr.lab.example", "wan");
    lab.start_ipoed(&cfg);
    wait_ready(&lab, "2001:db8:0:111::/64", Duration::from_secs(30));

    // Pings both ways through the router, 5 per second, for 3 minutes.
    let secs = 180;
    let count = (secs * 5).to_string();
    let ping6 = lab.spawn(
        "lan1",
        &[
            "ping",
            "-6",
            "-n",
            "-i",
            "0.2",
            "-W",
            "1",
            "-c",
            &count,
            "2001:db8:ffff::10",
        ],
    );
    let ping4 = lab.spawn(
        "lan1",
        &[
            "ping",
            "-4",
            "-n",
            "-i",
            "0.2",
            "-W",
            "1",
            "-c",
            &count,
            "198.51.100.10",
        ],
    );
    let mut lapses = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        let w = wan(&lab);
        if w["default_router"].is_null() {
            lapses += 1;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let out6 = ping6.wait_with_output().unwrap();
    let out4 = ping4.wait_with_output().unwrap();
    let loss = |o: &std::process::Output| -> (u64, u64) {
        let text = String::from_utf8_lossy(&o.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or("")
            .to_owned();
        let nums: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|t| t.parse().ok())
            .collect();
        (
            nums.first().copied().unwrap_or(0),
            nums.get(1).copied().unwrap_or(0),
        )
    };
    let (tx6, rx6) = loss(&out6);
    let (tx4, rx4) = loss(&out4);
    eprintln!(
        "3 min with RA lifetime 30 s, T1 20 s: IPv6 {rx6}/{tx6}, IPv4 {rx4}/{tx4} echo replies"
    );
    assert_eq!(lapses, 0, "the default route lapsed\n{}", lab.ipoed_log());
    assert!(
        tx6 >= 850 && rx6 + 2 >= tx6,
        "IPv6 pings lost: {rx6}/{tx6}\n{}",
        lab.ipoed_log()
    );
    assert!(
        tx4 >= 850 && rx4 + 2 >= tx4,
        "IPv4 pings lost: {rx4}/{tx4}\n{}",
        lab.ipoed_log()
    );
    let log = dhcp6_log(&lab);
    let renews = server_saw(&log, "RENEW");
    assert!(
        renews.len() >= 5,
        "the server should see a Renew every ~20 s:\n{log}"
    );
    eprintln!("server log, first Renew: {}", renews[0]);
    // Renew at T1: consecutive Renews ~20 s apart (the Reply restarts T1).
    let stamps: Vec<f64> = renews.iter().filter_map(|l| clock_seconds(l)).collect();
    let mut gaps: Vec<f64> = stamps.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_by(f64::total_cmp);
    let median = gaps[gaps.len() / 2];
    eprintln!("Renew intervals seen by the server: median {median:.1} s, {gaps:?}");
    assert!(
        (18.0..=22.5).contains(&median),
        "Renew every {median} s, T1 is 20 s"
    );
    assert!(
        server_saw(&log, "REBIND").is_empty(),
        "Renew always answered, no Rebind expected"
    );
    assert_eq!(lab.error_count("wan-ra", "router-expired"), 0);

    // Check 4: the RAs stop without a final RA (SIGKILL): the route
    // expires 30 s after the last RA.
    assert!(lab.signal("radvd", 9), "radvd pid");
    let gone = lab.wait_for(Duration::from_secs(40), || {
        wan(&lab)["default_router"].is_null()
    });
    assert!(
        gone.is_some(),
        "default router still there 40 s after the last RA\n{}",
        wan(&lab)
    );
    eprintln!("router expired {:?} after radvd was killed", gone.unwrap());
    assert_eq!(lab.error_count("wan-ra", "router-expired"), 1);
    assert!(lab.ipoed_log().contains("expired"), "{}", lab.ipoed_log());
    assert!(
        !lab.fetch("lan1", V6_URL),
        "no default router, no forwarding"
    );
    lab.script_ok(&["radvd", "start", "--lifetime", "30", "--interval", "10"]);
    let back = lab.wait_for(Duration::from_secs(20), || {
        wan(&lab)["default_router"] == "fe80::1"
    });
    assert!(
        back.is_some(),
        "default router not back\n{}",
        lab.ipoed_log()
    );
    assert!(lab
        .wait_for(Duration::from_secs(10), || lab.fetch("lan1", V6_URL))
        .is_some());
    assert!(lab.fetch("lan1", V4_URL));
    assert_eq!(lab.stop_ipoed().0, Some(0));
}

/// Check 5: the server's pool changes; ipoed adopts the new prefix at the
/// next Renew, and the LAN /64, B4 and tunnel follow without a restart.
#[test]
fn delegated_prefix_change_is_followed_without_restart() {
    let mut lab = Lab::fresh(1);
    lab.restart_dhcp6(SHORT_PD_LEASE);
    let cfg = lab.auto_config(1, "aftr.lab.example", "delegated");
    lab.start_ipoed(&cfg);
    wait_ready(&lab, "2001:db8:0:111::/64", Duration::from_secs(30));
    assert_eq!(tunnel(&lab)["b4"], "2001:db8:0:110::1");
    assert!(
        lab.fetch("lan1", V4_URL) && lab.fetch("lan1", V6_URL),
        "{}",
        lab.ipoed_log()
    );

    lab.restart_dhcp6(&[
        "--pool",
        "2001:db8:0:120::/60",
        "--t1",
        "10",
        "--t2",
        "16",
        "--preferred",
        "30",
        "--valid",
        "60",
    ]);
    let t0 = Instant::now();
    let took = wait_ready(&lab, "2001:db8:0:121::/64", Duration::from_secs(30));
    eprintln!("new prefix adopted {took:?} after the server changed pools (T1 10 s)");
    let p = pd(&lab);
    assert_eq!(p["delegated_prefix"], "2001:db8:0:120::/60", "{p}");
    assert_eq!(p["lan_address"], "2001:db8:0:121::1");
    assert_eq!(tunnel(&lab)["b4"], "2001:db8:0:120::1");
    renumber_lan_host(&lab, "2001:db8:0:121::/64");
    let v4 = lab.wait_for(Duration::from_secs(10), || lab.fetch("lan1", V4_URL));
    assert!(v4.is_some(), "IPv4 after renumbering\n{}", lab.ipoed_log());
    assert!(
        lab.fetch("lan1", V6_URL),
        "IPv6 from the new prefix\n{}",
        lab.ipoed_log()
    );
    eprintln!("traffic resumed {:?} after the pool change", t0.elapsed());
    let stats = lab.aftr_stats();
    assert_eq!(stats["last_b4"], "2001:db8:0:120::1", "{stats}");
    assert_eq!(stats["errors_total"], 0);
    let saved = std::fs::read_to_string(lab.state_dir().join("pd-lease.json")).unwrap();
    assert!(saved.contains("2001:db8:0:120::"), "{saved}");
    renumber_lan_host(&lab, "2001:db8:0:111::/64");
    assert_eq!(lab.stop_ipoed().0, Some(0));
}

/// Check 6: kill -9, restart: the saved lease is published at once and
/// confirmed with Rebind, never Solicit; the DUID is the same.
#[test]
fn restart_keeps_prefix_with_rebind() {
    let mut lab = Lab::fresh(1);
    let cfg = lab.auto_config(1, "aftr.lab.example", "wan");
    lab.start_ipoed(&cfg);
    wait_ready(&lab, "2001:db8:0:111::/64", Duration::from_secs(30));
    let before = pd(&lab);
    assert!(lab.fetch("lan1", V4_URL));
    lab.kill_ipoed();
    let solicits_before = server_saw(&dhcp6_log(&lab), "SOLICIT").len();
    let rebinds_before = server_saw(&dhcp6_log(&lab), "REBIND").len();

    let t0 = Instant::now();
    lab.start_ipoed(&cfg);
    // The LAN prefix is there before any reply from the server.
    let p = pd(&lab);
    assert_eq!(
        p["lan_prefix"], "2001:db8:0:111::/64",
        "published at once: {p}"
    );
    let first = lab.wait_for(Duration::from_secs(15), || lab.fetch("lan1", V4_URL));
    assert!(first.is_some(), "{}", lab.ipoed_log());
    eprintln!(
        "restart with a saved lease: first IPv4 packet forwarded {:?} after start",
        t0.elapsed()
    );
    assert!(lab
        .wait_for(Duration::from_secs(10), || pd(&lab)["state"] == "bound")
        .is_some());
    let after = pd(&lab);
    assert_eq!(after["delegated_prefix"], before["delegated_prefix"]);
    assert_eq!(after["duid"], before["duid"]);
    let log = dhcp6_log(&lab);
    let rebinds = server_saw(&log, "REBIND");
    assert!(
        rebinds.len() > rebinds_before,
        "no Rebind after the restart:\n{log}"
    );
    eprintln!(
        "server log, Rebind after restart: {}",
        rebinds.last().unwrap()
    );
    assert_eq!(
        server_saw(&log, "SOLICIT").len(),
        solicits_before,
        "a Solicit after the restart:\n{log}"
    );
    assert_eq!(lab.stop_ipoed().0, Some(0));
}

/// Check 7: no DHCPv6 server for a while: Solicits back off (1, 2, 4, 8 s
/// ... with jitter), and binding completes when the server returns.
#[test]
fn solicit_backs_off_while_server_is_down() {
    let mut lab = Lab::fresh(1);
    lab.script_ok(&["dhcp6", "stop"]);
    let cfg = lab.auto_config(1, "aftr.lab.example", "wan");
    lab.start_ipoed(&cfg);
    std::thread::sleep(Duration::from_secs(25));
    let tx = |lab: &Lab| lab.error_count("dhcpv6-client", "tx-solicit");
    let n = tx(&lab);
    // Started ~1-5 s after ipoed (DAD, RA); RT 1, 2, 4, 8, 16: 4 to 6 in 25 s.
    assert!((3..=7).contains(&n), "{n} Solicits in 25 s");
    eprintln!("{n} Solicits in the first 25 s without a server");
    assert!(pd(&lab)["lan_prefix"].is_null());
    lab.script_ok(&["dhcp6", "start"]);
    let t0 = Instant::now();
    let bound = lab.wait_for(Duration::from_secs(45), || pd(&lab)["state"] == "bound");
    assert!(bound.is_some(), "{}\n{}", pd(&lab), lab.ipoed_log());
    eprintln!(
        "bound {:?} after the server came back ({} Solicits in all)",
        t0.elapsed(),
        tx(&lab)
    );
    wait_ready(&lab, "2001:db8:0:111::/64", Duration::from_secs(20));
    assert!(lab.fetch("lan1", V4_URL));
    assert_eq!(lab.stop_ipoed().0, Some(0));
}

/// The same cold start against ISC dhcpd -6, a second, independent server,
/// with the AFTR taken from its AFTR-Name option.
#[test]
fn cold_start_with_isc_dhcpd_and_aftr_from_dhcpv6() {
    let mut lab = Lab::fresh(1);
    lab.restart_dhcp6(&["--server", "isc"]);
    let cfg = lab.auto_config(1, "dhcpv6", "wan");
    lab.start_ipoed(&cfg);
    wait_ready(&lab, "2001:db8:0:111::/64", Duration::from_secs(30));
    let t = tunnel(&lab);
    assert_eq!(t["aftr"], "2001:db8:aaaa::1", "{t}");
    assert_eq!(t["aftr_learned_from"], "dhcpv6 (AFTR-Name) + dns");
    assert!(lab
        .wait_for(Duration::from_secs(10), || lab.fetch("lan1", V4_URL))
        .is_some());
    assert!(lab.fetch("lan1", V6_URL));
    assert_eq!(lab.stop_ipoed().0, Some(0));
}

/// Review finding 5: a `wan.*` reload that changes nothing the WAN engines
/// use (here `release_on_shutdown`) keeps what they learned. The LAN sees
/// no RA with router lifetime 0, `show tunnel` keeps its B4 and AFTR, and
/// a ping every 20 ms through DS-Lite loses nothing (the old code rebuilt
/// the engines from nothing: about 2 s without router, B4 and AFTR).
#[test]
fn f5_wan_reload_keeps_the_default_router_and_the_tunnel() {
    let mut lab = Lab::fresh(1);
    let cfg = lab.auto_config(1, "aftr.lab.example", "wan");
    lab.start_ipoed(&cfg);
    wait_ready(&lab, "2001:db8:0:111::/64", Duration::from_secs(30));
    assert!(lab
        .wait_for(Duration::from_secs(10), || lab.fetch("lan1", V4_URL))
        .is_some());
    let before = tunnel(&lab);

    // Every ICMPv6 message the router sends on the LAN.
    let pcap = lab.run_dir.join("f5-lan.pcap");
    let _ = std::fs::remove_file(&pcap);
    let pcap_s = pcap.to_str().unwrap().to_owned();
    let mut capture = lab.spawn(
        "lansw",
        &[
            "tcpdump",
            "-U",
            "-n",
            "-i",
            "sw-router",
            "-w",
            &pcap_s,
            "icmp6",
        ],
    );
    // A ping every 20 ms through DS-Lite, across the reload.
    let ping = PingProbe::start(&lab, "lan1", "198.51.100.10");
    std::thread::sleep(Duration::from_secs(1));

    std::fs::write(
        lab.config_path(),
        cfg.replace(
            "{ prefix_hint: 60 }",
            "{ prefix_hint: 60, release_on_shutdown: true }",
        ),
    )
    .unwrap();
    let r = lab.ctl_json(&["reload"]);
    assert_eq!(
        r["changed"],
        serde_json::json!(["wan.ipv6.dhcpv6_pd.release_on_shutdown"]),
        "{r}"
    );
    // Longer than the old outage: B4 and AFTR never leave `show tunnel`.
    let end = Instant::now() + Duration::from_secs(4);
    while Instant::now() < end {
        let t = tunnel(&lab);
        assert_eq!(
            (&t["up"], &t["b4"], &t["aftr"]),
            (&before["up"], &before["b4"], &before["aftr"]),
            "tunnel changed during the reload: {t}\n{}",
            lab.ipoed_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let p = ping.stop();
    eprintln!(
        "wan reload: {}/{} pings answered; longest gap between replies {} ms",
        p.received, p.sent, p.max_gap_ms
    );
    // The last echo may still be on its way when ping is stopped.
    assert!(
        p.sent >= 200 && p.sent - p.received <= 1,
        "pings lost across the reload: {}/{}",
        p.received,
        p.sent
    );

    // A LAN host asks now: the router is still a default router.
    let rd = lab.exec("lan1", &["rdisc6", "-1", "-n", "-w", "1500", "eth0"]);
    let lifetime: Option<u32> = rd
        .stdout
        .lines()
        .find(|l| l.contains("Router lifetime"))
        .and_then(|l| l.split(':').nth(1)?.split_whitespace().next()?.parse().ok());
    assert!(
        lifetime.is_some_and(|s| s > 0),
        "{}{}",
        rd.stdout,
        rd.stderr
    );
    std::thread::sleep(Duration::from_millis(300));
    terminate(&mut capture);
    let r = lab.exec(
        "lansw",
        &[
            "tshark",
            "-n",
            "-r",
            &pcap_s,
            "-Y",
            "icmpv6.type == 134",
            "-T",
            "fields",
            "-e",
            "icmpv6.nd.ra.router_lifetime",
        ],
    );
    assert!(r.ok, "tshark: {}", r.stderr);
    let lifetimes: Vec<&str> = r.stdout.lines().collect();
    eprintln!("LAN RAs during the reload, router lifetimes: {lifetimes:?}");
    assert!(!lifetimes.is_empty(), "the capture saw no RA at all");
    assert!(
        !lifetimes.contains(&"0"),
        "an RA with router lifetime 0 during a reload: {lifetimes:?}"
    );
    assert_eq!(lab.stop_ipoed().0, Some(0));
}

/// Issue 15, finding 3: after a power cut the home gateway boots slower
/// than the router. ipoed starts with no RA and no DHCPv6 server on the
/// link, long enough for its Solicit to back off past a minute (RT 64 s,
/// then 128 s: the 8th Solicit leaves about 2 minutes after start). Then
/// the gateway comes up (its DHCPv6 server, then radvd): its first RA
/// restarts the Solicit from IRT, and the LAN prefix is delegated within
/// seconds of that RA, not at the next backed-off Solicit.
#[test]
fn f3_hgw_slower_than_router_at_boot_pd_within_seconds_of_first_ra() {
    let mut lab = Lab::fresh(1);
    lab.script_ok(&["radvd", "stop"]);
    lab.script_ok(&["dhcp6", "stop"]);
    let cfg = lab.auto_config(1, "aftr.lab.example", "wan");
    let start = Instant::now();
    lab.start_ipoed(&cfg);
    let tx = |lab: &Lab| lab.error_count("dhcpv6-client", "tx-solicit");
    // Solicits at about 1, 2, 4, 8, 17, 33, 65 and 129 s: after the 8th the
    // next one is about 128 s away.
    let backed_off = lab.wait_for(Duration::from_secs(200), || tx(&lab) >= 8);
    assert!(
        backed_off.is_some(),
        "{} Solicits in 200 s\n{}",
        tx(&lab),
        lab.ipoed_log()
    );
    let solicits = tx(&lab);
    eprintln!(
        "{solicits} Solicits in the {:?} without a gateway; the next one is about 2 minutes away",
        start.elapsed()
    );
    assert!(pd(&lab)["lan_prefix"].is_null());

    lab.script_ok(&["dhcp6", "start"]);
    // The gateway's DHCPv6 server alone changes nothing: nobody tells us.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(tx(&lab), solicits, "a Solicit went out before any RA");
    let ra_start = Instant::now();
    lab.script_ok(&["radvd", "start"]);
    let delegated = lab.wait_for(Duration::from_secs(60), || {
        !pd(&lab)["lan_prefix"].is_null()
    });
    let took = delegated.map(|_| ra_start.elapsed());
    eprintln!("LAN prefix delegated {took:?} after the gateway's radvd started");
    let took = took.unwrap_or_else(|| panic!("no prefix within 60 s\n{}", lab.ipoed_log()));
    assert!(
        took < Duration::from_secs(10),
        "LAN prefix delegated only {took:?} after the gateway's first RA"
    );
    assert!(
        lab.ipoed_log().contains("restarting Solicit"),
        "{}",
        lab.ipoed_log()
    );
    wait_ready(&lab, "2001:db8:0:111::/64", Duration::from_secs(20));
    assert!(lab.fetch("lan1", V4_URL));
    assert_eq!(lab.stop_ipoed().0, Some(0));
}
