//! Issue 19: a line without prefix delegation. The home gateway sends RAs
//! with M=0 O=1 and no RDNSS and answers only Information-request (Kea with
//! no pool); ipoed learns DNS by Information-request, resolves the AFTR by
//! name through it, re-advertises the WAN /64 on the LAN (A=1, L=0) and
//! answers the gateway's neighbor solicitations for the LAN hosts it has
//! verified (the routed RFC 4389 proxy), with the firewall in the path.

use std::process::Child;
use std::time::{Duration, Instant};

use ipoe_tests::Lab;

const WAN64: &str = "2001:db8:0:100::";
const NEW64: &str = "2001:db8:0:200::";
const V6_SERVER: &str = "2001:db8:ffff::10";
const V6_URL: &str = "http://[2001:db8:ffff::10]/hello.txt";
const V4_URL: &str = "http://198.51.100.10/hello.txt";
const ROUTER_WAN_MAC: &str = "02:00:00:00:02:02";
/// The lab hosts' EUI-64 addresses in the WAN /64 (MAC 02:00:00:00:01:0N).
const LAN2: &str = "2001:db8:0:100:0:ff:fe00:102";
const LAN3: &str = "2001:db8:0:100:0:ff:fe00:103";

/// No delegation at all: the LAN mode is chosen automatically.
fn config(lab: &Lab, extra: &str) -> String {
    format!(
        "wan:\n  interface: wan0\n  ipv6:\n    slaac: true\n    dhcpv6_pd: false\n\
         lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    subnet_id: 1\n\
         \x20   ra: {{ interval: 30, o_flag: true }}\n    dns: router\n\
         \x20 dhcpv4:\n    range: 192.168.2.100-192.168.2.250\n    dns: router\n\
         dslite:\n  aftr: aftr.lab.example\n  b4_address: wan\n\
         dataplane:\n  workers: 1\n\
         control:\n  socket: {}\n  state_dir: {}\n  log_level: debug\n{extra}",
        lab.socket.display(),
        lab.state_dir().display()
    )
}

/// The FLET'S-like gateway of a line without PD.
fn hgw_without_pd(lab: &Lab) {
    lab.script_ok(&["radvd", "start", "--managed", "off", "--rdnss", "off"]);
    lab.restart_dhcp6(&["--stateless"]);
}

fn run(lab: &Lab, ns: &str, cmd: &[&str]) -> String {
    let r = lab.exec(ns, cmd);
    format!("{}{}", r.stdout, r.stderr)
}

fn addrs(lab: &Lab, ns: &str) -> String {
    run(
        lab,
        ns,
        &["ip", "-6", "addr", "show", "dev", "eth0", "scope", "global"],
    )
}

/// Global addresses of `ns` in the /64 `prefix` (`2001:db8:0:100::`).
fn addrs_in(lab: &Lab, ns: &str, prefix: &str) -> Vec<String> {
    let head = prefix.trim_end_matches("::");
    addrs(lab, ns)
        .split_whitespace()
        .filter(|w| w.starts_with(&format!("{head}:")))
        .map(|w| w.split('/').next().unwrap_or(w).to_owned())
        .collect()
}

fn log_tail(lab: &Lab) -> String {
    let log = lab.ipoed_log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// tshark on `iface` in `ns` writing `file`, once it captures.
fn capture(lab: &Lab, ns: &str, iface: &str, filter: &str, file: &str) -> Child {
    let _ = std::fs::remove_file(file);
    let child = lab.spawn(ns, &["tshark", "-n", "-i", iface, "-f", filter, "-w", file]);
    let up = lab.wait_for(Duration::from_secs(15), || {
        std::path::Path::new(file).exists()
    });
    assert!(up.is_some(), "tshark did not start on {ns}/{iface}");
    std::thread::sleep(Duration::from_millis(500));
    child
}

fn frames(lab: &Lab, ns: &str, file: &str, filter: &str) -> usize {
    let r = lab.exec(ns, &["tshark", "-n", "-r", file, "-Y", filter]);
    assert!(r.ok, "tshark -r: {}", r.stderr);
    r.stdout.lines().count()
}

/// The gateway's neighbor entry for `addr` (`ip -6 neigh` line), after it
/// tried to reach it.
fn hgw_neighbor(lab: &Lab, addr: &str) -> String {
    let _ = lab.exec("hgw", &["ping", "-6", "-n", "-c", "1", "-W", "1", addr]);
    run(
        lab,
        "hgw",
        &["ip", "-6", "neigh", "show", addr, "dev", "down0"],
    )
}

/// The 20 MB blob from the IPv6 server, checked against its sha256.
fn blob_intact(lab: &Lab, ns: &str) -> bool {
    let want = std::fs::read_to_string(lab.run_dir.join("www/blob20.bin.sha256"))
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned();
    let got = run(
        lab,
        ns,
        &[
            "sh",
            "-c",
            &format!("curl -sS -m 60 -g http://[{V6_SERVER}]/blob20.bin | sha256sum"),
        ],
    );
    got.split_whitespace().next() == Some(want.as_str())
}

fn connect(lab: &Lab, ns: &str, addr: &str, port: u16) -> Option<String> {
    let r = lab.exec(
        ns,
        &[
            "socat",
            "-T2",
            "-u",
            &format!("TCP6:[{addr}]:{port},connect-timeout=2"),
            "STDOUT",
        ],
    );
    r.ok.then_some(r.stdout)
}

/// Checks 1-5 and 7 of the issue on one RA-only line: Information-request
/// DNS and the AFTR by name; kernel SLAAC, dhcpcd and a SLAAC-only host
/// with temporary addresses all in the WAN /64 reaching the IPv6 server (20
/// MB, sha256); the gateway resolving each to the router's MAC and nothing
/// for an unused address; the firewall and a pinhole; DS-Lite; tshark on
/// our NAs and RAs. Prints the time from start to a host's first IPv6
/// exchange.
#[test]
fn ra_only_line_lan_hosts_use_the_wan_64_through_the_proxy() {
    let mut lab = Lab::fresh(1);
    hgw_without_pd(&lab);
    // The hosts are there before ipoed: the first RA configures them.
    lab.lanhost("lan2", &[]);
    lab.lanhost("lan4", &[]);
    for k in ["all", "default", "eth0"] {
        lab.exec(
            "lan4",
            &[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{k}.use_tempaddr=2"),
            ],
        );
    }
    let pcap_wan = lab.run_dir.join("ndproxy-wan.pcap");
    let pcap_lan = lab.run_dir.join("ndproxy-lan.pcap");
    let cap_wan = capture(&lab, "hgw", "down0", "icmp6", pcap_wan.to_str().unwrap());
    let cap_lan = capture(&lab, "lan2", "eth0", "icmp6", pcap_lan.to_str().unwrap());

    let t0 = Instant::now();
    lab.start_ipoed(&config(
        &lab,
        "firewall:\n  pinholes:\n    - { host: \"::ff:fe00:102\", proto: tcp, port: 8080 }\n",
    ));
    let first = lab.wait_for(Duration::from_secs(60), || {
        lab.exec(
            "lan2",
            &["ping", "-6", "-n", "-c", "1", "-W", "0.5", V6_SERVER],
        )
        .ok
    });
    assert!(
        first.is_some(),
        "lan2 never reached the IPv6 server\n{}\n{}",
        addrs(&lab, "lan2"),
        log_tail(&lab)
    );
    eprintln!(
        "MEASURE ipoed start -> first IPv6 exchange of a LAN host (proxy mode): {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let lan = lab.ctl_json(&["show", "lan"]);
    assert_eq!(lan["mode"], "auto", "{lan}");
    assert_eq!(lan["ipv6_source"], format!("proxy {WAN64}/64"), "{lan}");
    let pio = &lan["ra"]["prefixes"][0];
    assert_eq!(pio["prefix"], format!("{WAN64}/64"), "{lan}");
    assert_eq!(pio["on_link"], false, "{lan}");
    assert!(lab.ipoed_log().contains("lan ipv6: waiting -> proxy"));

    // DNS only by Information-request: the AFTR name resolved through it.
    let wan = lab.ctl_json(&["show", "wan"]);
    assert_eq!(wan["dns_servers"][0], "2001:db8:0:100::1", "{wan}");
    let kea = std::fs::read_to_string(lab.run_dir.join("dhcp6.log")).unwrap_or_default();
    assert!(
        kea.contains("INFORMATION_REQUEST (type 11) received"),
        "Kea saw no Information-request"
    );
    let tunnel = lab.wait_for(Duration::from_secs(20), || {
        lab.ctl_json(&["show", "tunnel"])["aftr"] == "2001:db8:aaaa::1"
    });
    assert!(tunnel.is_some(), "AFTR not resolved\n{}", log_tail(&lab));

    // Kernel SLAAC (EUI-64), a dhcpcd host, a SLAAC-only host using
    // temporary addresses: all in the WAN /64, all reach the server.
    lab.lanhost("lan3", &[]);
    assert!(
        lab.dhcp_client("lan3", "dhcpcd", &[]),
        "dhcpcd\n{}",
        log_tail(&lab)
    );
    for (ns, want) in [("lan2", Some(LAN2)), ("lan3", Some(LAN3)), ("lan4", None)] {
        let got = lab.wait_for(Duration::from_secs(30), || {
            let a = addrs_in(&lab, ns, WAN64);
            want.map_or(a.len() >= 2, |w| a.iter().any(|x| x == w))
        });
        assert!(got.is_some(), "{ns}: {}", addrs(&lab, ns));
        assert!(
            lab.fetch_within(ns, V6_URL, Duration::from_secs(15)),
            "{ns} cannot reach the IPv6 server\n{}\n{}",
            addrs(&lab, ns),
            log_tail(&lab)
        );
        assert!(blob_intact(&lab, ns), "{ns}: 20 MB blob broken");
    }
    assert!(
        addrs(&lab, "lan4").contains("temporary"),
        "lan4 has no temporary address: {}",
        addrs(&lab, "lan4")
    );
    // The server saw the hosts' own WAN-/64 addresses (no NAT anywhere).
    let access = std::fs::read_to_string(lab.run_dir.join("http-access.log")).unwrap_or_default();
    for a in [LAN2, LAN3] {
        assert!(access.contains(a), "server never saw {a}");
    }

    // The gateway resolves every LAN address it sent to to our WAN MAC,
    // and an address nobody holds to nothing.
    let temp = addrs_in(&lab, "lan4", WAN64);
    for a in [LAN2, LAN3]
        .iter()
        .copied()
        .chain(temp.iter().map(String::as_str))
    {
        let n = hgw_neighbor(&lab, a);
        assert!(n.contains(ROUTER_WAN_MAC), "hgw neighbor {a}: {n:?}");
    }
    let unused = "2001:db8:0:100::dead";
    let n = hgw_neighbor(&lab, unused);
    assert!(
        !n.contains("lladdr"),
        "an unused address resolved: {n:?}\n{}",
        log_tail(&lab)
    );
    // Its verification (3 LAN solicitations, 1 s apart) found nobody and
    // left no entry.
    let gone = lab.wait_for(Duration::from_secs(6), || {
        lab.ctl_json(&["show", "lan"])["ndproxy"]["hosts"]
            .as_array()
            .is_some_and(|h| h.iter().all(|e| e["address"] != unused))
    });
    assert!(
        gone.is_some(),
        "{}",
        lab.ctl_json(&["show", "lan"])["ndproxy"]
    );
    assert!(lab.error_count("ndproxy", "verify-failed") >= 1);

    // The firewall: unsolicited TCP to a LAN host is dropped, its pinhole
    // port opens.
    let mut listeners: Vec<Child> = [8080u16, 8081]
        .iter()
        .map(|p| {
            lab.spawn(
                "lan2",
                &[
                    "socat",
                    &format!("TCP6-LISTEN:{p},fork,reuseaddr"),
                    &format!("SYSTEM:echo open {p}"),
                ],
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let opened = lab.wait_for(Duration::from_secs(10), || {
        connect(&lab, "inet", LAN2, 8080).is_some_and(|s| s.contains("open 8080"))
    });
    assert!(opened.is_some(), "pinhole 8080\n{}", log_tail(&lab));
    assert_eq!(connect(&lab, "inet", LAN2, 8081), None, "8081 is closed");
    assert!(lab.error_count("ip6-firewall", "pinhole-opened") >= 1);
    for l in &mut listeners {
        ipoe_tests::terminate(l);
    }

    // DS-Lite from the dhcpcd host (IPv4 by DHCPv4): B4 = the WAN address.
    assert!(
        lab.fetch_within("lan3", V4_URL, Duration::from_secs(10)),
        "DS-Lite\n{}",
        log_tail(&lab)
    );
    assert_eq!(lab.aftr_stats()["malformed_total"].as_u64().unwrap_or(0), 0);

    // tshark reads our proxied NAs and the LAN RAs without a warning.
    std::thread::sleep(Duration::from_millis(500));
    for c in [cap_wan, cap_lan] {
        let mut c = c;
        ipoe_tests::terminate(&mut c);
    }
    let wan_pcap = pcap_wan.to_str().unwrap();
    let lan_pcap = pcap_lan.to_str().unwrap();
    let ours_na = format!("icmpv6.type == 136 && eth.src == {ROUTER_WAN_MAC}");
    assert!(
        frames(&lab, "hgw", wan_pcap, &ours_na) >= 3,
        "no proxied NAs"
    );
    assert!(
        frames(
            &lab,
            "hgw",
            wan_pcap,
            &format!("{ours_na} && icmpv6.nd.na.target_address == {LAN2}")
        ) >= 1
    );
    assert_eq!(lab.tshark_warnings("hgw", wan_pcap, &ours_na), "");
    let ours_ra = "icmpv6.type == 134 && eth.src == 02:00:00:00:02:01";
    assert!(frames(&lab, "lan2", lan_pcap, ours_ra) >= 1, "no LAN RA");
    assert!(
        frames(
            &lab,
            "lan2",
            lan_pcap,
            &format!("{ours_ra} && icmpv6.opt.prefix.flag.l == 0 && icmpv6.opt.prefix.flag.a == 1 && icmpv6.opt.mtu == 1500")
        ) >= 1,
        "no RA with A=1 L=0 and the MTU option"
    );
    assert_eq!(lab.tshark_warnings("lan2", lan_pcap, ours_ra), "");
    assert!(lab.ipoed_alive());
}

/// Check 6: the gateway's /64 changes (the old one deprecated in its RA);
/// the LAN follows, the old /64 advertised with preferred lifetime 0, and
/// hosts reach the server from the new one.
#[test]
fn the_wan_64_changes_and_lan_hosts_follow() {
    let mut lab = Lab::fresh(1);
    hgw_without_pd(&lab);
    lab.lanhost("lan2", &[]);
    lab.start_ipoed(&config(&lab, ""));
    assert!(
        lab.fetch_within("lan2", V6_URL, Duration::from_secs(60)),
        "{}",
        log_tail(&lab)
    );
    // Renumber: hgw takes an address in the new /64 and advertises it,
    // the old one deprecated.
    lab.exec(
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
    lab.script_ok(&[
        "radvd",
        "start",
        "--managed",
        "off",
        "--rdnss",
        "off",
        "--prefix",
        &format!("{NEW64}/64"),
        "--deprecated",
        &format!("{WAN64}/64"),
    ]);
    let moved = lab.wait_for(Duration::from_secs(60), || {
        lab.ctl_json(&["show", "lan"])["ipv6_source"] == format!("proxy {NEW64}/64")
    });
    assert!(moved.is_some(), "{}", log_tail(&lab));
    let new = "2001:db8:0:200:0:ff:fe00:102";
    let followed = lab.wait_for(Duration::from_secs(60), || {
        addrs_in(&lab, "lan2", NEW64).iter().any(|a| a == new)
    });
    assert!(followed.is_some(), "{}", addrs(&lab, "lan2"));
    let lan = lab.ctl_json(&["show", "lan"]);
    let old = lan["ra"]["prefixes"]
        .as_array()
        .and_then(|p| {
            p.iter()
                .find(|p| p["prefix"] == format!("{WAN64}/64"))
                .cloned()
        })
        .unwrap_or_default();
    assert_eq!(old["preferred_s"], 0, "old /64 not deprecated: {lan}");
    // The host's old address is deprecated (preferred 0) and the new one
    // carries its traffic.
    let a = addrs(&lab, "lan2");
    let old_line = a
        .lines()
        .skip_while(|l| !l.contains(LAN2))
        .nth(1)
        .unwrap_or("");
    assert!(old_line.contains("preferred_lft 0sec"), "{a}");
    assert!(
        lab.fetch_within("lan2", V6_URL, Duration::from_secs(15)),
        "{}",
        log_tail(&lab)
    );
    let access = std::fs::read_to_string(lab.run_dir.join("http-access.log")).unwrap_or_default();
    assert!(access.contains(new), "the server never saw {new}");
    let n = hgw_neighbor(&lab, new);
    assert!(n.contains(ROUTER_WAN_MAC), "{n:?}");
}

/// Check 6 (last part): M=1 and a PD server that comes up late: auto
/// proxies the WAN /64 after M1_WAIT (65 s), then switches to the
/// delegated prefix when the server answers.
#[test]
fn auto_switches_to_pd_when_a_late_server_delegates() {
    let mut lab = Lab::fresh(1);
    lab.script_ok(&["dhcp6", "stop"]);
    lab.lanhost("lan2", &[]);
    let cfg = config(&lab, "").replace("dhcpv6_pd: false", "dhcpv6_pd: { prefix_hint: 60 }");
    lab.start_ipoed(&cfg);
    let t0 = Instant::now();
    let proxied = lab.wait_for(Duration::from_secs(90), || {
        lab.ctl_json(&["show", "lan"])["ipv6_source"] == format!("proxy {WAN64}/64")
    });
    assert!(proxied.is_some(), "{}", log_tail(&lab));
    assert!(
        t0.elapsed() >= Duration::from_secs(55),
        "proxied before the M=1 wait: {:?}",
        t0.elapsed()
    );
    assert!(lab
        .ipoed_log()
        .contains("M=1 and no prefix was delegated within 65 s"));
    assert!(lab.fetch_within("lan2", V6_URL, Duration::from_secs(30)));
    lab.script_ok(&["dhcp6", "start"]);
    let pd = lab.wait_for(Duration::from_secs(200), || {
        lab.ctl_json(&["show", "lan"])["ipv6_source"] == "pd"
    });
    assert!(pd.is_some(), "no switch to PD\n{}", log_tail(&lab));
    assert_eq!(
        lab.ctl_json(&["show", "pd"])["lan_prefix"],
        "2001:db8:0:111::/64"
    );
    assert!(lab
        .ipoed_log()
        .contains("a prefix was delegated; it replaces the proxied /64"));
    let moved = lab.wait_for(Duration::from_secs(60), || {
        addrs(&lab, "lan2").contains("2001:db8:0:111:0:ff:fe00:102")
    });
    assert!(moved.is_some(), "{}", addrs(&lab, "lan2"));
    assert!(lab.fetch_within("lan2", V6_URL, Duration::from_secs(30)));
}

/// The closing note's bound: an NS flood from the WAN for random addresses
/// of the proxied /64 (tests/lab/nsflood.py, one Python thread) leaves the
/// proxy table at its bounds (64 verifications in progress, the real hosts
/// verified), sends LAN solicitations only at the rate limit, answers for
/// no address nobody holds, and the LAN host keeps being reached.
#[test]
fn ns_flood_at_the_wan_64_keeps_the_proxy_table_bounded() {
    let mut lab = Lab::fresh(1);
    hgw_without_pd(&lab);
    lab.lanhost("lan2", &[]);
    lab.start_ipoed(&config(&lab, ""));
    assert!(
        lab.fetch_within("lan2", V6_URL, Duration::from_secs(60)),
        "{}",
        log_tail(&lab)
    );
    let before = lab.error_counts();
    let script = ipoe_tests::workspace().join("tests/lab/nsflood.py");
    let secs = 20;
    let flood = lab.spawn(
        "hgw",
        &[
            "python3",
            script.to_str().unwrap(),
            "down0",
            WAN64,
            &secs.to_string(),
            "2001:db8:0:100::1",
        ],
    );
    let t0 = Instant::now();
    let (mut peak, mut fetches, mut failed) = (0usize, 0, 0);
    while t0.elapsed() < Duration::from_secs(secs - 2) {
        let hosts = lab.ctl_json(&["show", "lan"])["ndproxy"]["hosts"]
            .as_array()
            .map_or(0, Vec::len);
        peak = peak.max(hosts);
        fetches += 1;
        if !lab.fetch("lan2", V6_URL) {
            failed += 1;
        }
    }
    let out = flood.wait_with_output().expect("nsflood");
    let sent = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let after = lab.error_counts();
    let delta = |k: &str| after.get(k).unwrap_or(&0) - before.get(k).unwrap_or(&0);
    eprintln!(
        "MEASURE NS flood at the WAN /64: {sent}; proxy table peak {peak} entries \
         (bound 1024 verified + 64 pending); ndproxy/wan-ns-rx {}, verify-ns-tx {}, \
         pending-full {}, rate-limited {}, verify-failed {}, proxy-na-tx {}; \
         punt/police-reserve {}, punt/police-nd {}; lan2 fetches {fetches}, failed {failed}",
        delta("ndproxy/wan-ns-rx"),
        delta("ndproxy/verify-ns-tx"),
        delta("ndproxy/pending-full"),
        delta("ndproxy/rate-limited"),
        delta("ndproxy/verify-failed"),
        delta("ndproxy/proxy-na-tx"),
        delta("punt/police-reserve"),
        delta("punt/police-nd"),
    );
    assert!(
        peak <= 64 + 2,
        "the table grew past its pending bound: {peak}"
    );
    assert!(
        delta("ndproxy/wan-ns-rx") > 1000,
        "the flood did not arrive"
    );
    // 16/s and a burst of 32: at most that many LAN solicitations.
    assert!(
        delta("ndproxy/verify-ns-tx") <= 32 + 16 * (secs + 5),
        "LAN solicitations beyond the rate limit"
    );
    assert_eq!(failed, 0, "lan2 lost IPv6 during the flood");
    assert!(lab.ipoed_alive());
    // Afterwards only real hosts stay.
    let settled = lab.wait_for(Duration::from_secs(10), || {
        lab.ctl_json(&["show", "lan"])["ndproxy"]["hosts"]
            .as_array()
            .is_some_and(|h| h.iter().all(|e| e["state"] != "incomplete"))
    });
    assert!(settled.is_some());
    let hosts = lab.ctl_json(&["show", "lan"])["ndproxy"]["hosts"].clone();
    assert!(
        hosts
            .as_array()
            .is_some_and(|h| h.iter().all(|e| e["address"]
                .as_str()
                .unwrap_or("")
                .ends_with(":ff:fe00:102"))),
        "{hosts}"
    );
}
