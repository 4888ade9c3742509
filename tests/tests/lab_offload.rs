//! Peers with the kernel's default offloads (issue 14, part 1). hgw's down0
//! keeps transmit checksum offload on (lab.sh), and so does a LAN host
//! added with `--offload default`: their TCP and UDP reach ipoed with only
//! the pseudo-header sum in the checksum field (CHECKSUM_PARTIAL). ipoed
//! must complete them where they enter, or DHCPv6-PD, the AFTR's DNS
//! lookup, the LAN's DNS and every TCP transfer through these peers fail.

use std::time::{Duration, Instant};

use ipoe_tests::{terminate, Lab};
use serde_json::Value;

/// The offload host: kernel defaults on its veth and its switch port.
const HOST: &str = "lan7";
const V4_SERVER: &str = "198.51.100.10";
const V6_SERVER: &str = "2001:db8:ffff::10";
const BLOB: &str = "/run/ipoe-lab/www/blob20.bin";
const BLOB_BYTES: u64 = 20_000_000;

/// Everything learned from hgw: SLAAC, the LAN /64 by DHCPv6-PD (Kea), the
/// AFTR by DNS (dnsmasq); LAN services for the host, DNS by the proxy.
fn config(lab: &Lab) -> String {
    format!(
        "wan:\n  interface: wan0\n\
         lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    subnet_id: 1\n\
         \x20   ra: {{ interval: 30 }}\n    dhcpv6: stateless\n    dns: router\n\
         \x20 dhcpv4:\n    range: 192.168.2.100-192.168.2.250\n    dns: router\n\
         dslite:\n  aftr: aftr.lab.example\n\
         control:\n  socket: {}\n  state_dir: {}\n  log_level: debug\n",
        lab.socket.display(),
        lab.state_dir().display()
    )
}

/// Completed checksums of the interface with `role` (wan, lan).
fn completed(lab: &Lab, role: &str) -> u64 {
    let v = lab.ctl_json(&["show", "interfaces"]);
    let i = v["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["role"] == role)
        .unwrap_or_else(|| panic!("no {role} interface: {v}"));
    let per_queue: u64 = i["queues"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|q| q["csum_completed"].as_u64())
        .sum();
    let total = i["csum_completed"].as_u64().expect("csum_completed");
    assert_eq!(total, per_queue, "the total is the queues' sum: {i}");
    total
}

fn sh(lab: &Lab, ns: &str, script: &str) -> String {
    let r = lab.exec(ns, &["sh", "-c", script]);
    assert!(r.ok, "{ns}: {script}: {}{}", r.stdout, r.stderr);
    r.stdout.trim().to_owned()
}

/// Frames of `pcap` (read in `ns`) matching `filter`, with tshark's verdict
/// on their TCP/UDP checksum: (bad, good).
fn checksum_verdicts(lab: &Lab, ns: &str, pcap: &str, filter: &str) -> (usize, usize) {
    let r = lab.exec(
        ns,
        &[
            "tshark",
            "-n",
            "-r",
            pcap,
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-Y",
            filter,
            "-T",
            "fields",
            "-e",
            "tcp.checksum.status",
            "-e",
            "udp.checksum.status",
        ],
    );
    assert!(r.ok, "tshark -r {pcap}: {}", r.stderr);
    // 0 bad, 1 good, 2 unverified (tshark's checksum status values).
    let status: Vec<&str> = r
        .stdout
        .lines()
        .map(|l| l.split('\t').find(|s| !s.is_empty()).unwrap_or(""))
        .collect();
    (
        status.iter().filter(|s| **s == "0").count(),
        status.iter().filter(|s| **s == "1").count(),
    )
}

/// Starts tcpdump on `iface` in `ns`, writing `filter`'s frames to `pcap`,
/// and waits until it captures (tshark starts too slowly on a busy
/// machine: the exchange was over before it listened). Stop it with
/// [`stop`].
fn capture(lab: &Lab, ns: &str, iface: &str, pcap: &str, filter: &str) -> std::process::Child {
    let _ = std::fs::remove_file(pcap);
    let c = lab.spawn(
        ns,
        &[
            "tcpdump",
            "-n",
            "-U",
            "--immediate-mode",
            "-i",
            iface,
            "-w",
            pcap,
            filter,
        ],
    );
    let started = lab.wait_for(Duration::from_secs(10), || {
        std::path::Path::new(pcap).exists()
    });
    assert!(started.is_some(), "tcpdump on {ns} {iface} did not start");
    std::thread::sleep(Duration::from_millis(300));
    c
}

/// Stops a capture of [`capture`]: a moment for the last frames to reach
/// the file (libpcap hands frames over in blocks), then SIGTERM.
fn stop(mut c: std::process::Child) {
    std::thread::sleep(Duration::from_millis(1200));
    terminate(&mut c);
}

/// Downloads blob20.bin from `url` in the offload host; its sha256 and
/// the time it took.
fn download(lab: &Lab, url: &str) -> (String, Duration) {
    let t0 = Instant::now();
    let out = sh(
        lab,
        HOST,
        &format!("curl -sS -g --max-time 120 '{url}' | sha256sum | cut -d' ' -f1"),
    );
    (out, t0.elapsed())
}

/// Uploads blob20.bin from the offload host to a one-shot TCP sink in inet
/// on `port`, connecting to the socat address `connect`; the sha256 the
/// sink computed and the time.
fn upload(lab: &Lab, port: u16, connect: &str) -> (String, Duration) {
    let sink = lab.spawn(
        "inet",
        &[
            "timeout",
            "150",
            "sh",
            "-c",
            &format!(
                "socat -u TCP6-LISTEN:{port},ipv6only=0,reuseaddr - | sha256sum | cut -d' ' -f1"
            ),
        ],
    );
    let listening = lab.wait_for(Duration::from_secs(5), || {
        sh(lab, "inet", "ss -Hltn").contains(&format!(":{port} "))
    });
    assert!(listening.is_some(), "the sink in inet listens on {port}");
    let t0 = Instant::now();
    sh(
        lab,
        HOST,
        &format!("timeout 120 socat -u FILE:{BLOB} '{connect}'"),
    );
    let out = sink.wait_with_output().expect("sink");
    (
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        t0.elapsed(),
    )
}

fn mbps(d: Duration) -> f64 {
    BLOB_BYTES as f64 * 8.0 / d.as_secs_f64() / 1e6
}

/// DHCPv6-PD, the AFTR's DNS lookup, LAN DNS (UDP and TCP, both families)
/// and 20 MB each way over DS-Lite and native IPv6, all through peers
/// with default offloads; the frames are partial on the wire (tshark says
/// so), ipoed completes them and counts it per interface, and nothing is
/// dropped as a bad checksum anywhere.
#[test]
fn default_offload_peers_work_through_ipoed() {
    let mut lab = Lab::fresh(1);
    let pcap_wan = lab.run_dir.join("offload-down0.pcap");
    let pcap_wan = pcap_wan.to_str().expect("utf-8 path").to_owned();
    // hgw's answers to ipoed: DHCPv6 (Kea) and DNS (dnsmasq).
    let cap = capture(
        &lab,
        "hgw",
        "down0",
        &pcap_wan,
        "udp port 547 or udp port 53",
    );
    lab.start_ipoed(&config(&lab));
    let up = lab.wait_for(Duration::from_secs(40), || {
        lab.ctl_json(&["show", "pd"])["lan_prefix"] == "2001:db8:0:111::/64"
            && lab.ctl_json(&["show", "tunnel"])["up"] == true
    });
    assert!(
        up.is_some(),
        "no PD or no AFTR from the default-offload gateway\n{}",
        lab.ipoed_log()
    );
    stop(cap);
    // What hgw put on the wire was partial: ipoed got it only by completing.
    let (bad, good) = checksum_verdicts(&lab, "hgw", &pcap_wan, "eth.src == 02:00:00:00:03:01");
    eprintln!("hgw down0 -> ipoed, DHCPv6 and DNS: {bad} partial, {good} whole");
    assert!(
        bad > 0,
        "hgw's DHCPv6/DNS frames to ipoed are partial on the wire"
    );
    let wan_at_start = completed(&lab, "wan");
    assert!(
        wan_at_start > 0,
        "the DHCPv6 replies and DNS answers were completed"
    );

    lab.lanhost(HOST, &["--offload", "default"]);
    assert!(
        lab.dhcp_client(HOST, "dhcpcd", &[]),
        "dhcpcd on the offload host\n{}",
        lab.ipoed_log()
    );
    let v6 = lab.wait_for(Duration::from_secs(20), || {
        sh(&lab, HOST, "ip -6 -o addr show dev eth0 scope global").contains("2001:db8:0:111:")
    });
    assert!(v6.is_some(), "the offload host got no SLAAC address");

    // LAN DNS: the host's queries (UDP and TCP) are partial, so are hgw's
    // answers to the proxy.
    let pcap_lan = lab.run_dir.join("offload-sw-router.pcap");
    let pcap_lan = pcap_lan.to_str().expect("utf-8 path").to_owned();
    let cap = capture(&lab, "lansw", "sw-router", &pcap_lan, "port 53 or port 80");
    let dig = |server: &str, qtype: &str, tcp: bool| {
        sh(
            &lab,
            HOST,
            &format!(
                "dig +short +time=2 +tries=2 {} @{server} www.lab.example {qtype}",
                if tcp { "+tcp" } else { "" }
            ),
        )
    };
    assert_eq!(dig("192.168.2.1", "A", false), V4_SERVER);
    assert_eq!(dig("2001:db8:0:111::1", "AAAA", false), V6_SERVER);
    assert_eq!(dig("192.168.2.1", "AAAA", true), V6_SERVER);
    assert_eq!(dig("2001:db8:0:111::1", "A", true), V4_SERVER);
    assert!(lab.fetch(HOST, &format!("http://{V4_SERVER}/hello.txt")));
    assert!(lab.fetch_within(
        HOST,
        &format!("http://[{V6_SERVER}]/hello.txt"),
        Duration::from_secs(10)
    ));
    stop(cap);
    // The switch port toward ipoed keeps tx checksum on: the host's frames
    // arrive partial, not completed by the bridge.
    let (bad, good) = checksum_verdicts(&lab, "lansw", &pcap_lan, "eth.src == 02:00:00:00:01:07");
    eprintln!("{HOST} -> lan0, DNS and HTTP: {bad} partial, {good} whole");
    assert!(bad > 0, "the offload host's frames reach lan0 partial");

    // 20 MB each way, over DS-Lite and native IPv6.
    let want = std::fs::read_to_string(lab.run_dir.join("www/blob20.bin.sha256"))
        .expect("blob20.bin.sha256");
    let want = want.split_whitespace().next().expect("a hash").to_owned();
    let lan_before = completed(&lab, "lan");
    let wan_before = completed(&lab, "wan");
    let (got, t) = download(&lab, &format!("http://{V4_SERVER}/blob20.bin"));
    assert_eq!(got, want, "DS-Lite download");
    eprintln!("DS-Lite download: {:.0} Mbit/s", mbps(t));
    let (got, t) = upload(&lab, 9000, &format!("TCP4:{V4_SERVER}:9000"));
    assert_eq!(got, want, "DS-Lite upload");
    eprintln!("DS-Lite upload: {:.0} Mbit/s", mbps(t));
    let lan_after_v4 = completed(&lab, "lan");
    // About 14k full segments up, 7k ACKs down: each of them was partial.
    assert!(
        lan_after_v4 - lan_before > 10_000,
        "LAN completions over DS-Lite: {}",
        lan_after_v4 - lan_before
    );
    let (got, t) = download(&lab, &format!("http://[{V6_SERVER}]/blob20.bin"));
    assert_eq!(got, want, "IPv6 download");
    eprintln!("IPv6 download: {:.0} Mbit/s", mbps(t));
    let (got, t) = upload(&lab, 9001, &format!("TCP6:[{V6_SERVER}]:9001"));
    assert_eq!(got, want, "IPv6 upload");
    eprintln!("IPv6 upload: {:.0} Mbit/s", mbps(t));
    let wan_after = completed(&lab, "wan");
    // inet's segments come through hgw still partial.
    assert!(
        wan_after - wan_before > 10_000,
        "WAN completions over IPv6: {}",
        wan_after - wan_before
    );
    let lan_after = completed(&lab, "lan");
    assert!(
        lan_after - lan_after_v4 > 10_000,
        "LAN completions over IPv6"
    );
    eprintln!("checksums completed: wan {wan_after} (at start {wan_at_start}), lan {lan_after}");

    // The AFTR emulator checks every inner checksum independently.
    let stats: Value = lab.aftr_stats();
    assert_eq!(stats["errors_total"], 0, "aftr found bad packets: {stats}");
    assert_eq!(lab.error_count("wan", "rx-bad-checksum"), 0);
    assert_eq!(lab.error_count("lan", "rx-bad-checksum"), 0);
    let text = lab.ctl(&["show", "interfaces"]).stdout;
    assert!(text.contains("checksums completed"), "{text}");
}
