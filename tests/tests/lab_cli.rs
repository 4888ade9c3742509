//! The control CLI of issue 7 against the real ipoed in the lab: exact
//! counters after known traffic, the packet trace, reload (good, broken,
//! needing a restart, by SIGHUP) while traffic flows, who may use the
//! socket, 100 concurrent clients and a 10 MB garbage request beside a
//! ping that must not lose a packet, the metrics listener, and systemd's
//! readiness notification.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::process::Command;
use std::time::{Duration, Instant};

use ipoe_tests::{bin, Lab};
use serde_json::{json, Value};

const V4_SERVER: &str = "198.51.100.10";
const LAN1_MAC: &str = "02:00:00:00:01:10";
const ROUTER_LAN_MAC: &str = "02:00:00:00:02:01";

fn sh(lab: &Lab, ns: &str, script: &str) -> ipoe_tests::Run {
    lab.exec(ns, &["sh", "-c", script])
}

/// The tunnel carries traffic (ND with the gateway and ARP with lan1 done).
fn wait_tunnel(lab: &Lab) {
    let t = lab.wait_for(Duration::from_secs(20), || {
        lab.fetch_within(
            "lan1",
            &format!("http://{V4_SERVER}/hello.txt"),
            Duration::from_secs(2),
        )
    });
    assert!(t.is_some(), "no DS-Lite traffic:\n{}", lab.ipoed_log());
}

/// lan1 sends nothing but what a test makes it send: no IPv6 (no ND, MLD
/// or RS) and a permanent ARP entry for the router.
fn quiet_lan1(lab: &Lab) {
    let r = sh(
        lab,
        "lan1",
        &format!(
            "sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 && \
             ip neigh replace 192.168.2.1 lladdr {ROUTER_LAN_MAC} nud permanent dev eth0"
        ),
    );
    assert!(r.ok, "{}", r.stderr);
    // The LAN switch's MLD querier asks every 10 s; one query landing in a
    // counting window is one more frame on lan0's rx side.
    let r = sh(
        lab,
        "lansw",
        "ip link set dev br0 type bridge mcast_querier 0",
    );
    assert!(r.ok, "{}", r.stderr);
    std::thread::sleep(Duration::from_millis(500));
}

/// `n` UDP datagrams of `payload` bytes from lan1 to the IPv4 server's
/// discard port, 1 ms apart.
fn send_udp(lab: &Lab, n: usize, payload: usize) {
    let py = format!(
        "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         for i in range({n}):\n    s.sendto(b'x'*{payload},('{V4_SERVER}',9))\n    time.sleep(0.001)\n"
    );
    let r = lab.exec("lan1", &["python3", "-c", &py]);
    assert!(r.ok, "{}", r.stderr);
}

fn lan_iface(v: &Value) -> &Value {
    v["interfaces"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["role"] == "lan"))
        .expect("a LAN interface")
}

fn node<'a>(runtime: &'a Value, name: &str) -> &'a Value {
    runtime["workers"][0]["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("no node {name} in {runtime}"))
}

/// Non-zero counters of the IPv4 and DS-Lite nodes (the WAN's RAs and
/// ND keep the punt and neighbor counters moving).
fn errors_nonzero(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            let n = e["node"].as_str().unwrap_or("");
            (n.starts_with("ip4") || n.starts_with("dslite"))
                && e["count"].as_u64().unwrap_or(0) > 0
        })
        .map(|e| format!("{}/{}={}", e["node"], e["counter"], e["count"]))
        .collect()
}

/// Ping through DS-Lite in the background: (child, ping count).
fn ping_background(lab: &Lab, count: u32) -> std::process::Child {
    lab.spawn(
        "lan1",
        &[
            "ping",
            "-n",
            "-q",
            "-i",
            "0.02",
            "-c",
            &count.to_string(),
            V4_SERVER,
        ],
    )
}

/// (transmitted, received) from a finished ping.
fn ping_result(child: std::process::Child) -> (u32, u32) {
    let out = child.wait_with_output().expect("ping");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary: {text}"));
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn every_command_answers_and_counts_are_exact() {
    let mut lab = Lab::up(1);
    let config = format!("{}  metrics: 192.168.2.1:9100\n", lab.config(1));
    lab.start_ipoed(&config);
    wait_tunnel(&lab);

    // Static fields.
    let ifs = lab.ctl_json(&["show", "interfaces"]);
    let lan = lan_iface(&ifs);
    assert_eq!(lan["name"], "lan0");
    assert_eq!(lan["mac"], ROUTER_LAN_MAC);
    assert_eq!(lan["mtu"], 1500);
    assert_eq!(lan["zero_copy"], false, "veth has no zero-copy");
    assert!(matches!(
        lan["xdp_mode"].as_str(),
        Some("native" | "generic")
    ));
    assert!(lan["addresses"].to_string().contains("192.168.2.1/24"));
    assert_eq!(lan["queues"].as_array().map(Vec::len), Some(1));
    let tunnel = lab.ctl_json(&["show", "tunnel"]);
    assert_eq!(tunnel["b4"], "2001:db8:0:100::2");
    assert_eq!(tunnel["aftr"], "2001:db8:aaaa::1");
    assert_eq!(tunnel["mtu"], 1460);
    assert_eq!(tunnel["mss_clamp"], 1420);
    assert_eq!(tunnel["up"], true);
    let wan = lab.ctl_json(&["show", "wan"]);
    assert!(wan.to_string().contains("2001:db8:0:100::2"), "{wan}");
    let cfg = lab.ctl_json(&["show", "config"]);
    assert!(cfg["yaml"]
        .as_str()
        .unwrap_or("")
        .contains("metrics: 192.168.2.1:9100"));
    let version = lab.ctl_json(&["version"]);
    assert_eq!(version["protocol"], 1);

    // Every command answers, as a table and as JSON.
    for cmd in [
        "show interfaces",
        "show runtime",
        "show errors",
        "show wan",
        "show pd",
        "show tunnel",
        "show neighbors",
        "show leases",
        "show lan",
        "show sessions",
        "show firewall",
        "show map",
        "show trace",
        "show config",
        "version",
    ] {
        let words: Vec<&str> = cmd.split(' ').collect();
        let r = lab.ctl(&words);
        assert!(r.ok && !r.stdout.trim().is_empty(), "{cmd}: {}", r.stderr);
        let mut j = vec!["--json"];
        j.extend(&words);
        let r = lab.ctl(&j);
        assert!(r.ok, "{cmd} --json: {}", r.stderr);
        serde_json::from_str::<Value>(&r.stdout).unwrap_or_else(|e| panic!("{cmd}: {e}"));
    }

    // MAP-E is off in this lab (DS-Lite): `show map` says so plainly and
    // exits 0, as the other commands of a feature not configured do.
    let r = lab.ctl(&["show", "map"]);
    assert!(r.ok, "show map: {}", r.stderr);
    assert_eq!(r.stdout, "MAP-E is not configured (no map_e section)\n");
    assert_eq!(lab.ctl_json(&["show", "map"])["configured"], false);
    assert_eq!(tunnel["kind"], "dslite");

    // Five packets with TTL 1: exactly five ttl-expired after `clear errors`,
    // and five time-exceeded errors sent back (a count, not a drop). The
    // switch may send lan0 a frame of its own meanwhile (make test once
    // counted an ip4-input/bad-source, what a query from 0.0.0.0 is): a
    // window in which the capture saw any frame but lan1's pings is
    // measured again, as for the datagram count below.
    quiet_lan1(&lab);
    let expected = [
        "\"ip4-input\"/\"ttl-expired\"=5",
        "\"ip4-icmp-error\"/\"sent\"=5",
    ];
    let mut tries = 0;
    let (e, strays) = loop {
        tries += 1;
        let cap = lab.spawn(
            "lansw",
            &[
                "tcpdump",
                "-i",
                "sw-router",
                "-Q",
                "out",
                "-n",
                "-l",
                "-e",
                "not (icmp and src host 192.168.2.10)",
            ],
        );
        std::thread::sleep(Duration::from_millis(1000));
        assert!(lab.ctl(&["clear", "errors"]).ok);
        let e = errors_nonzero(&lab.ctl_json(&["show", "errors"]));
        assert!(e.is_empty(), "counters after clear errors: {e:?}");
        sh(
            &lab,
            "lan1",
            &format!("ping -n -c 5 -i 0.05 -t 1 -W 1 {V4_SERVER}"),
        );
        let e = errors_nonzero(&lab.ctl_json(&["show", "errors"]));
        std::thread::sleep(Duration::from_millis(200));
        lab.exec("lansw", &["pkill", "-INT", "-f", "tcpdump -i sw-router"]);
        let strays = cap.wait_with_output().map(|o| o.stdout).unwrap_or_default();
        let strays = String::from_utf8_lossy(&strays).into_owned();
        if e == expected || strays.trim().is_empty() || tries == 3 {
            break (e, strays);
        }
        eprintln!("try {tries}: counters {e:?}, and the switch also sent lan0:\n{strays}");
    };
    assert_eq!(
        e, expected,
        "{tries} tries; the switch's own frames to lan0 in the last: {strays}"
    );
    // The router now knows lan1 (it sent it the time-exceeded errors).
    let neigh = lab.ctl_json(&["show", "neighbors"]);
    let lan1 = neigh["neighbors"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["ip"] == "192.168.2.10"))
        .unwrap_or_else(|| panic!("lan1 not in {neigh}"));
    assert_eq!(lan1["mac"], LAN1_MAC);
    assert!(lan1["age_s"].as_f64().is_some_and(|a| a < 60.0), "{lan1}");
    assert!(matches!(
        lan1["state"].as_str(),
        Some("reachable" | "stale" | "delay" | "probe" | "unreachable")
    ));

    // N datagrams from lan1: exactly N more on the LAN's rx side, N
    // vectors through dslite-encap since `clear runtime`, N packets and
    // N * 128 bytes (IPv4 + UDP + 100) into the tunnel.
    const N: u64 = 500;
    // A discard sink on the server: no port-unreachable comes back, so
    // nothing is forwarded to lan1 and the router has no reason to
    // re-probe it (which would add lan1's ARP reply to the count).
    let mut sink = lab.spawn(
        "inet",
        &["socat", "-u", "UDP6-RECV:9,reuseaddr", "/dev/null"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let delta = |a: &Value, b: &Value, k: &str| a[k].as_u64().unwrap() - b[k].as_u64().unwrap();
    // The count must be exact on a quiet LAN. The switch may still send lan0
    // a frame of its own (CI once counted 501 of 500): a window in which the
    // capture saw any frame but lan1's datagrams is measured again.
    let mut tries = 0;
    let (before_if, after_if, before_tun, after_tun, strays) = loop {
        tries += 1;
        assert!(lab.ctl(&["clear", "runtime"]).ok);
        let cap = lab.spawn(
            "lansw",
            &[
                "tcpdump",
                "-i",
                "sw-router",
                "-Q",
                "out",
                "-n",
                "-l",
                "-e",
                "not (udp and dst port 9)",
            ],
        );
        std::thread::sleep(Duration::from_millis(1000));
        let before_if = lab.ctl_json(&["show", "interfaces"]);
        let before_tun = lab.ctl_json(&["show", "tunnel"]);
        let rt = lab.ctl_json(&["show", "runtime"]);
        assert_eq!(node(&rt, "dslite-encap")["vectors"], 0, "{rt}");
        send_udp(&lab, N as usize, 100);
        std::thread::sleep(Duration::from_millis(500));
        let after_if = lab.ctl_json(&["show", "interfaces"]);
        let after_tun = lab.ctl_json(&["show", "tunnel"]);
        std::thread::sleep(Duration::from_millis(200));
        lab.exec("lansw", &["pkill", "-INT", "-f", "tcpdump -i sw-router"]);
        let strays = cap.wait_with_output().map(|o| o.stdout).unwrap_or_default();
        let strays = String::from_utf8_lossy(&strays).into_owned();
        let got = delta(lan_iface(&after_if), lan_iface(&before_if), "rx_packets");
        if got == N || strays.trim().is_empty() || tries == 3 {
            break (before_if, after_if, before_tun, after_tun, strays);
        }
        eprintln!("try {tries}: lan0 received {got}, and the switch also sent it:\n{strays}");
    };
    assert_eq!(
        delta(lan_iface(&after_if), lan_iface(&before_if), "rx_packets"),
        N,
        "{tries} tries; the switch's own frames to lan0 in the last: {strays}"
    );
    assert_eq!(
        delta(lan_iface(&after_if), lan_iface(&before_if), "rx_bytes"),
        N * (14 + 128),
        "rx bytes count the Ethernet header"
    );
    assert_eq!(delta(&after_tun, &before_tun, "encap_packets"), N);
    assert_eq!(delta(&after_tun, &before_tun, "encap_bytes"), N * 128);
    let rt = lab.ctl_json(&["show", "runtime"]);
    assert_eq!(node(&rt, "dslite-encap")["vectors"], N, "{rt}");
    assert_eq!(
        node(&rt, "dslite-decap")["vectors"],
        0,
        "nothing came back: {rt}"
    );
    let _ = sink.kill();
    let _ = sink.wait();
    assert!(rt["cleared_s_ago"].as_u64().is_some());
    let table = lab.ctl(&["show", "runtime"]).stdout;
    assert!(table.contains("dslite-encap"), "{table}");

    // The trace: the next 3 packets' path, node by node.
    assert_eq!(lab.ctl_json(&["trace", "add", "3", "lan"])["armed"], 3);
    send_udp(&lab, 3, 20);
    let tr = lab.ctl_json(&["show", "trace"]);
    let pkts = tr["packets"].as_array().expect("packets");
    assert_eq!(pkts.len(), 3, "{tr}");
    assert_eq!(tr["armed_left"], 0);
    for p in pkts {
        assert_eq!(p["rx"], "lan");
        assert_eq!(p["len"], 14 + 20 + 8 + 20);
        let summary = p["summary"].as_str().unwrap_or("");
        assert!(
            summary.starts_with("IPv4 192.168.2.10:")
                && summary.ends_with(&format!(" -> {V4_SERVER}:9 udp")),
            "{summary}"
        );
        let path: Vec<String> = p["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{} -> {}",
                    s["node"].as_str().unwrap(),
                    s["decision"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            path,
            [
                "ethernet-input -> ip4-input",
                "ip4-input -> ip4-firewall",
                "ip4-firewall -> dslite-encap",
                "dslite-encap -> interface-output",
                "interface-output -> tx wan",
            ]
        );
    }
    let human = lab.ctl(&["show", "trace"]).stdout;
    assert!(
        human.contains("dslite-encap") && human.contains("tx wan"),
        "{human}"
    );
    assert!(lab.ctl(&["clear", "trace"]).ok);
    assert_eq!(lab.ctl_json(&["show", "trace"])["packets"], json!([]));

    // Metrics on the LAN address, over ipoed's own TCP: the same figure.
    let r = lab.exec(
        "lan1",
        &[
            "curl",
            "-sS",
            "--max-time",
            "5",
            "http://192.168.2.1:9100/metrics",
        ],
    );
    assert!(r.ok, "curl: {}", r.stderr);
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("ipoed_node_vectors_total{") && l.contains("node=\"dslite-encap\""))
        .unwrap_or_else(|| panic!("no dslite-encap vectors in:\n{}", r.stdout));
    let v: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(v >= N + 3, "metrics count since start: {line}");
    assert!(r.stdout.contains("ipoed_errors_total{"));
    // From the WAN side nothing listens.
    let r = lab.exec(
        "hgw",
        &[
            "curl",
            "-s",
            "--max-time",
            "2",
            "http://[2001:db8:0:100::2]:9100/metrics",
        ],
    );
    assert!(!r.ok, "metrics answered on the WAN");
    for port in [22, 53, 80, 443, 8080, 9100] {
        let r = lab.exec(
            "hgw",
            &[
                "socat",
                "-T1",
                "-u",
                &format!("TCP6:[2001:db8:0:100::2]:{port},connect-timeout=1"),
                "STDOUT",
            ],
        );
        assert!(!r.ok, "TCP {port} answered on the WAN");
    }
    let r = lab.exec(
        "hgw",
        &[
            "dig",
            "+time=1",
            "+tries=1",
            "@2001:db8:0:100::2",
            "lab.example",
        ],
    );
    assert!(
        !r.stdout.contains("ANSWER SECTION"),
        "DNS answered on the WAN"
    );
}

#[test]
fn reload_applies_whole_configs_and_keeps_the_old_one_on_error() {
    let mut lab = Lab::up(1);
    let base = lab.config(1);
    lab.start_ipoed(&base);
    wait_tunnel(&lab);
    let ping = ping_background(&lab, 300);
    std::thread::sleep(Duration::from_millis(300));

    // A broken file: refused with file:line:column, the old config stays.
    let path = lab.config_path();
    std::fs::write(
        &path,
        format!("{base}firewall:\n  timeouts:\n    udp: soon\n"),
    )
    .unwrap();
    let r = lab.ctl(&["reload"]);
    assert!(!r.ok, "a broken config was accepted");
    let file_line = format!("{}:", path.display());
    assert!(
        r.stderr.contains(&file_line) && r.stderr.contains("firewall.timeouts.udp"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("running config stays"), "{}", r.stderr);
    let running = lab.ctl_json(&["show", "config"]);
    assert!(!running["yaml"].as_str().unwrap().contains("udp: soon"));

    // A key that needs a restart: nothing applied, the key named.
    std::fs::write(
        &path,
        base.replace("workers: 1", "workers: 2") + "firewall:\n  timeouts:\n    udp: 7\n",
    )
    .unwrap();
    let r = lab.ctl(&["reload"]);
    assert!(!r.ok);
    assert!(r.stderr.contains("dataplane.workers"), "{}", r.stderr);
    let fw = lab.ctl_json(&["show", "firewall"]);
    assert_ne!(fw["timeouts"]["udp"], 7, "half of a refused reload applied");

    // A good change: applied at once, the changed keys listed.
    std::fs::write(
        &path,
        base.replace("dslite:\n", "dslite:\n  mss_clamp: 1400\n")
            + "firewall:\n  timeouts:\n    udp: 7\n",
    )
    .unwrap();
    let r = lab.ctl_json(&["reload"]);
    assert_eq!(
        r["changed"],
        json!(["dslite.mss_clamp", "firewall.timeouts.udp"]),
        "{r}"
    );
    assert_eq!(lab.ctl_json(&["show", "tunnel"])["mss_clamp"], 1400);
    assert_eq!(lab.ctl_json(&["show", "firewall"])["timeouts"]["udp"], 7);
    let r = lab.ctl_json(&["reload"]);
    assert_eq!(r["unchanged"], true);

    // SIGHUP with a broken file: logged, still running, old config kept.
    std::fs::write(&path, "wan: [\n").unwrap();
    let pid = lab.ipoed_pid().expect("ipoed runs") as i32;
    assert!(Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let logged = lab.wait_for(Duration::from_secs(5), || {
        lab.ipoed_log().contains("reload refused")
    });
    assert!(logged.is_some(), "{}", lab.ipoed_log());
    assert_eq!(lab.ctl_json(&["show", "tunnel"])["mss_clamp"], 1400);

    // Not one ping lost across the four reloads.
    let (sent, got) = ping_result(ping);
    assert_eq!((sent, got), (300, 300), "pings lost during reloads");
    let log = lab.ipoed_log();
    assert!(log.contains("reload: ") && log.contains("applied"), "{log}");
}

/// Connect as root and ask one request; the reply line.
fn ask(sock: &std::path::Path, line: &str) -> String {
    let mut s = UnixStream::connect(sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(line.as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).unwrap();
    reply
}

#[test]
fn only_root_and_the_group_get_in_and_abuse_does_not_disturb_forwarding() {
    let mut lab = Lab::up(1);
    // A group for the socket (created once per machine).
    let _ = Command::new("groupadd")
        .args(["-f", "ipoe-lab-ctl"])
        .status();
    let gid = String::from_utf8(
        Command::new("getent")
            .args(["group", "ipoe-lab-ctl"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .split(':')
    .nth(2)
    .unwrap()
    .trim()
    .to_owned();
    let notify = lab.run_dir.join("notify.sock");
    let _ = std::fs::remove_file(&notify);
    let rx = UnixDatagram::bind(&notify).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let config = format!(
        "{}  group: ipoe-lab-ctl\n  metrics: 127.0.0.1:9100\n",
        lab.config(1)
    );
    lab.start_ipoed_env(&config, &[("NOTIFY_SOCKET", notify.to_str().unwrap())]);

    // systemd readiness: READY=1 once XDP is attached on both interfaces.
    let mut buf = [0u8; 512];
    let n = rx.recv(&mut buf).expect("READY=1 from ipoed");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        msg.starts_with("READY=1\n") && msg.contains("STATUS="),
        "{msg}"
    );
    assert!(ipoe_tests::xdp_attached(&lab, "router", "wan0"));
    assert!(ipoe_tests::xdp_attached(&lab, "router", "lan0"));
    wait_tunnel(&lab);

    // The socket: mode 0660, group ipoe-lab-ctl.
    let meta = std::fs::metadata(&lab.socket).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid().to_string(), gid);

    let ctl_as = |ids: &[&str], args: &[&str]| {
        let out = Command::new("setpriv")
            .args(ids)
            .arg(bin("ipoectl"))
            .arg("--socket")
            .arg(&lab.socket)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let (code, _, err) = ctl_as(&nobody, &["version"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&lab.socket.display().to_string()), "{err}");
    // Past the file mode, the daemon's own check (SO_PEERCRED) refuses.
    std::fs::set_permissions(&lab.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, _, err) = ctl_as(&nobody, &["version"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("uid 65534 may not use this socket"), "{err}");
    std::fs::set_permissions(&lab.socket, std::fs::Permissions::from_mode(0o660)).unwrap();
    // The group as primary group, and as a supplementary one.
    let regid = format!("--regid={gid}");
    let (code, out, err) = ctl_as(&["--reuid=65534", &regid, "--clear-groups"], &["version"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("ipoed"), "{out}");
    let groups = format!("--groups={gid}");
    let (code, _, err) = ctl_as(&["--reuid=65534", "--regid=65534", &groups], &["version"]);
    assert_eq!(code, Some(0), "{err}");

    // Usage errors exit 2, an absent daemon 1 with where it looked.
    let r = Command::new(bin("ipoectl"))
        .args(["show", "bogus"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    let r = Command::new(bin("ipoectl"))
        .args(["--socket", "/run/ipoe-lab/absent.sock", "version"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("/run/ipoe-lab/absent.sock"));

    // Abuse while a ping runs through DS-Lite: 100 clients at once, a
    // 10 MB request with no newline, a client that sends and never reads,
    // and malformed lines.
    let ping = ping_background(&lab, 250);
    std::thread::sleep(Duration::from_millis(200));
    let sock = lab.socket.clone();
    let garbage = {
        let sock = sock.clone();
        std::thread::spawn(move || {
            let mut s = UnixStream::connect(&sock).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let chunk = vec![b'x'; 1 << 20];
            for _ in 0..10 {
                // The daemon stops reading after 64 KiB: writes may fail.
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
            let mut reply = String::new();
            let _ = BufReader::new(s).read_line(&mut reply);
            reply
        })
    };
    let silent = {
        let sock = sock.clone();
        std::thread::spawn(move || {
            let mut s = UnixStream::connect(&sock).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
            let req = "{\"version\":1,\"command\":\"show errors\"}\n".repeat(2000);
            let _ = s.write_all(req.as_bytes());
            std::thread::sleep(Duration::from_secs(3));
            // Read a little at last: the replies are still coming.
            let mut b = [0u8; 4096];
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.read(&mut b).unwrap_or(0)
        })
    };
    let t0 = Instant::now();
    let clients: Vec<_> = (0..100)
        .map(|k| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(&sock).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut ok = 0;
                for cmd in [
                    "show runtime",
                    "show interfaces",
                    "nonsense",
                    "show sessions",
                ] {
                    let line = if cmd == "nonsense" {
                        format!("{{\"version\":1,\"command\":\"show {k}\"}}\n")
                    } else {
                        format!("{{\"version\":1,\"command\":\"{cmd}\"}}\n")
                    };
                    s.write_all(line.as_bytes()).unwrap();
                    let mut reply = String::new();
                    r.read_line(&mut reply).unwrap();
                    let v: Value = serde_json::from_str(&reply).unwrap();
                    if v["ok"] == (cmd != "nonsense") {
                        ok += 1;
                    }
                }
                s.write_all(b"{not json\n").unwrap();
                let mut reply = String::new();
                r.read_line(&mut reply).unwrap();
                assert!(reply.contains("malformed request"), "{reply}");
                ok
            })
        })
        .collect();
    let answered: u32 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let took = t0.elapsed();
    assert_eq!(answered, 400, "every client got its four answers");
    let reply = garbage.join().unwrap();
    assert!(reply.contains("request longer than 65536 bytes"), "{reply}");
    assert!(silent.join().unwrap() > 0);
    // Still answering, at once.
    let t = Instant::now();
    assert!(ask(&sock, "{\"version\":1,\"command\":\"version\"}\n").contains("\"ok\":true"));
    assert!(t.elapsed() < Duration::from_secs(1));
    let (sent, got) = ping_result(ping);
    assert_eq!(
        (sent, got),
        (250, 250),
        "pings lost while the socket was abused"
    );
    eprintln!("100 clients x 5 requests served in {took:?}");

    // Metrics on loopback in the router namespace.
    let r = lab.exec(
        "router",
        &[
            "curl",
            "-sS",
            "--max-time",
            "5",
            "http://127.0.0.1:9100/metrics",
        ],
    );
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stdout.contains("# TYPE ipoed_errors_total counter"),
        "{}",
        r.stdout
    );
    let r = lab.exec(
        "router",
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://127.0.0.1:9100/nope",
        ],
    );
    assert_eq!(r.stdout, "404");
}

/// `pd renew` and `pd rebind` against Kea, and reloads that rebuild the
/// LAN services and the WAN engines: leases and the delegated prefix stay.
#[test]
fn pd_commands_and_reloads_that_rebuild_engines_keep_leases() {
    let mut lab = Lab::fresh(1);
    let cfg = lab.auto_config(1, "aftr.lab.example", "wan").replace(
        "  ipv4: 192.168.2.1/24\n",
        "  ipv4: 192.168.2.1/24\n  dhcpv4:\n    lease_time: 1h\n",
    );
    lab.start_ipoed(&cfg);
    let pd = |lab: &Lab| lab.ctl_json(&["show", "pd"]);
    let bound = lab.wait_for(Duration::from_secs(30), || {
        pd(&lab)["lan_prefix"] == "2001:db8:0:111::/64"
            && lab.ctl_json(&["show", "tunnel"])["up"] == true
    });
    assert!(bound.is_some(), "{}\n{}", pd(&lab), lab.ipoed_log());
    let p = pd(&lab);
    assert_eq!(p["state"], "bound");
    assert_eq!(p["delegated_prefix"], "2001:db8:0:110::/60");
    assert!(
        p["server_duid"].as_str().is_some_and(|d| d.len() >= 8),
        "{p}"
    );
    assert!(p["duid"].as_str().is_some_and(|d| d.len() >= 8), "{p}");
    assert!(
        p["t1_left_s"].as_f64().is_some() || p["t1_left_s"].as_u64().is_some(),
        "{p}"
    );
    let human = lab.ctl(&["show", "pd"]).stdout;
    assert!(human.contains("2001:db8:0:110::/60"), "{human}");

    // Renew, then Rebind: each leaves `bound` and comes back to it with a
    // fresh lease from Kea.
    for (cmd, state) in [("renew", "renewing"), ("rebind", "rebinding")] {
        std::thread::sleep(Duration::from_millis(1500));
        let r = lab.ctl_json(&["pd", cmd]);
        assert_eq!(r["state"], state, "pd {cmd}: {r}");
        let back = lab.wait_for(Duration::from_secs(10), || {
            let p = pd(&lab);
            p["state"] == "bound" && p["obtained_s_ago"].as_u64().is_some_and(|s| s < 2)
        });
        assert!(back.is_some(), "pd {cmd}: {}", pd(&lab));
        assert_eq!(pd(&lab)["delegated_prefix"], "2001:db8:0:110::/60");
    }

    // A LAN host with a DHCPv4 lease.
    lab.lanhost("lan2", &["--ipv6", "off"]);
    assert!(lab.dhcp_client("lan2", "udhcpc", &[]));
    let lease_of_lan2 = |lab: &Lab| {
        lab.ctl_json(&["show", "leases"])["dhcpv4"]["leases"]
            .as_array()
            .and_then(|a| a.iter().find(|l| l["mac"] == "02:00:00:00:01:02").cloned())
    };
    let lease = lease_of_lan2(&lab).expect("lan2's lease");
    assert_eq!(lease["state"], "bound");

    // A LAN change rebuilds the LAN services: the lease is still there.
    let path = lab.config_path();
    std::fs::write(&path, cfg.replace("lease_time: 1h", "lease_time: 2h")).unwrap();
    let r = lab.ctl_json(&["reload"]);
    assert_eq!(r["changed"], json!(["lan.dhcpv4.lease_time"]), "{r}");
    let kept = lease_of_lan2(&lab).expect("lease kept across the reload");
    assert_eq!(kept["ip"], lease["ip"]);

    // A WAN change rebuilds the WAN engines: the saved prefix is confirmed
    // with Rebind and IPv4 flows again.
    let wan_cfg = cfg.replace("lease_time: 1h", "lease_time: 2h").replace(
        "dhcpv6_pd: { prefix_hint: 60 }",
        "dhcpv6_pd: { prefix_hint: 60, rapid_commit: false }",
    );
    std::fs::write(&path, &wan_cfg).unwrap();
    let t0 = Instant::now();
    let r = lab.ctl_json(&["reload"]);
    assert_eq!(
        r["changed"],
        json!(["wan.ipv6.dhcpv6_pd.rapid_commit"]),
        "{r}"
    );
    let back = lab.wait_for(Duration::from_secs(15), || {
        lab.fetch_within(
            "lan1",
            &format!("http://{V4_SERVER}/hello.txt"),
            Duration::from_secs(1),
        )
    });
    assert!(back.is_some(), "{}", lab.ipoed_log());
    eprintln!(
        "WAN engines rebuilt: IPv4 forwarded again {:?} after the reload",
        t0.elapsed()
    );
    assert_eq!(pd(&lab)["delegated_prefix"], "2001:db8:0:110::/60");
    assert!(lease_of_lan2(&lab).is_some());
}
