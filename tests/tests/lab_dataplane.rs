//! The dataplane-core checks, end to end in the namespace lab with the real
//! ipoed: DS-Lite to the IPv4 server through the AFTR emulator, IPv6 to the
//! IPv6 server, the router answering ping, time exceeded, what tshark sees on
//! the WAN wire, and a clean exit.

use std::time::Duration;

use ipoe_tests::{xdp_attached, Lab};

fn curl(lab: &Lab, url: &str) -> ipoe_tests::Run {
    lab.exec("lan1", &["curl", "-sS", "--max-time", "10", "-g", url])
}

/// Traffic through the router in both families, then a clean SIGTERM.
fn forward_and_exit(workers: usize, queues: u32) {
    let mut lab = Lab::up(queues);
    let cfg = lab.config(workers);
    lab.start_ipoed(&cfg);

    // IPv4 through DS-Lite: the server must see the AFTR's NAT address.
    let r = curl(&lab, "http://198.51.100.10/hello.txt");
    assert!(
        r.ok,
        "IPv4 GET via DS-Lite failed: {}\n{}",
        r.stderr,
        lab.ipoed_log()
    );
    assert_eq!(r.stdout, "hello from inet\n");
    let access = std::fs::read_to_string(lab.run_dir.join("http-access.log")).unwrap_or_default();
    assert!(
        access
            .lines()
            .any(|l| l.contains("203.0.113.1") && l.contains("/hello.txt")),
        "the IPv4 server should log the AFTR's NAT address as client:\n{access}"
    );

    // IPv6 forwarding.
    let r = curl(&lab, "http://[2001:db8:ffff::10]/hello.txt");
    assert!(r.ok, "IPv6 GET failed: {}\n{}", r.stderr, lab.ipoed_log());
    assert_eq!(r.stdout, "hello from inet\n");

    // A bigger transfer both ways exercises full-size frames and many vectors.
    let r = lab.exec(
        "lan1",
        &[
            "sh",
            "-c",
            "curl -sS --max-time 20 http://198.51.100.10/blob.bin | wc -c",
        ],
    );
    assert_eq!(
        r.stdout.trim(),
        "1048576",
        "1 MiB over DS-Lite: {}",
        r.stderr
    );
    let r = lab.exec(
        "lan1",
        &[
            "sh",
            "-c",
            "curl -sS --max-time 20 -g 'http://[2001:db8:ffff::10]/blob.bin' | wc -c",
        ],
    );
    assert_eq!(r.stdout.trim(), "1048576", "1 MiB over IPv6: {}", r.stderr);

    // Many short flows: the peers hash them over all queues, so with N
    // workers every worker must have carried traffic.
    for _ in 0..16 {
        assert!(curl(&lab, "http://198.51.100.10/hello.txt").ok);
        assert!(curl(&lab, "http://[2001:db8:ffff::10]/hello.txt").ok);
    }

    // The AFTR emulator validates every packet independently of our code:
    // lengths, IPv4 header and L4 checksums, hop limit, traffic class.
    let stats = lab.aftr_stats();
    // 18 IPv4 connections of at least SYN, ACK, request, FIN each toward the
    // AFTR; at least 1 MiB / 1460 B segments back from it.
    assert!(
        stats["decap_ok"].as_u64().unwrap_or(0) >= 18 * 4,
        "aftr saw too little: {stats}"
    );
    assert!(
        stats["encap_ok"].as_u64().unwrap_or(0) >= (1 << 20) / 1460,
        "aftr sent too little: {stats}"
    );
    assert_eq!(
        stats["errors_total"], 0,
        "aftr found malformed tunnel packets: {stats}"
    );

    // Every worker's counters add up in show interfaces.
    let v = lab.ctl_json(&["show", "interfaces"]);
    let ifs = v["interfaces"].as_array().expect("interfaces");
    assert_eq!(ifs.len(), 2);
    for i in ifs {
        let queues = i["queues"].as_array().expect("queues");
        assert_eq!(queues.len(), workers);
        let mut owned: Vec<u64> = Vec::new();
        for q in queues {
            assert!(
                q["rx_packets"].as_u64().unwrap_or(0) > 0,
                "idle worker: {i}"
            );
            owned.extend(
                q["queues"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_u64()),
            );
        }
        owned.sort();
        let all: Vec<u64> = (0..u64::from(queues_of(&lab))).collect();
        assert_eq!(owned, all, "every NIC queue has exactly one worker: {i}");
        assert!(i["rx_packets"].as_u64().unwrap_or(0) > 100, "{i}");
        assert!(i["tx_packets"].as_u64().unwrap_or(0) > 100, "{i}");
        assert_eq!(i["xdp_mode"], "native", "veth supports native XDP");
    }

    // Nothing arrived on a queue without a socket.
    assert_eq!(lab.error_count("xdp-redirect", "no-socket"), 0);

    let (code, took) = lab.stop_ipoed();
    assert_eq!(
        code,
        Some(0),
        "ipoed exit status; log:\n{}",
        lab.ipoed_log()
    );
    assert!(took < Duration::from_secs(1), "ipoed took {took:?} to exit");
    for dev in ["wan0", "lan0"] {
        assert!(
            !xdp_attached(&lab, "router", dev),
            "XDP still attached to {dev}"
        );
    }
    assert!(!lab.socket.exists(), "control socket left behind");
}

fn queues_of(lab: &Lab) -> u32 {
    let r = lab.exec("router", &["ls", "/sys/class/net/lan0/queues"]);
    r.stdout
        .split_whitespace()
        .filter(|q| q.starts_with("rx-"))
        .count() as u32
}

#[test]
fn one_worker_forwards_dslite_and_ipv6_and_exits_clean() {
    forward_and_exit(1, 1);
}

#[test]
fn two_workers_on_two_queues_forward_and_exit_clean() {
    forward_and_exit(2, 2);
}

/// A NIC with more RSS queues than workers (an i210 has 4, the default is 1
/// worker): the peers hash flows over every queue, and all must be served.
#[test]
fn one_worker_serves_every_queue_of_a_two_queue_nic() {
    forward_and_exit(1, 2);
}

#[test]
fn router_answers_ping_and_sends_time_exceeded() {
    let mut lab = Lab::up(1);
    let cfg = lab.config(1);
    lab.start_ipoed(&cfg);

    for target in ["192.168.2.1", "2001:db8:0:111::1"] {
        let r = lab.exec("lan1", &["ping", "-c", "3", "-i", "0.2", "-W", "2", target]);
        assert!(r.ok, "ping {target}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("3 received"), "{}", r.stdout);
    }
    // The router's link-local address answers too (NDP on link-local).
    let r = lab.exec(
        "lan1",
        &["ping", "-c", "1", "-W", "2", "fe80::ff:fe00:201%eth0"],
    );
    assert!(r.ok, "ping link-local: {}{}", r.stdout, r.stderr);

    let r = lab.exec(
        "lan1",
        &["ping", "-c", "1", "-t", "1", "-W", "2", "198.51.100.10"],
    );
    assert!(
        r.stdout.contains("From 192.168.2.1") && r.stdout.contains("Time to live exceeded"),
        "TTL 1 probe: {}",
        r.stdout
    );
    let r = lab.exec(
        "lan1",
        &[
            "ping",
            "-6",
            "-c",
            "1",
            "-t",
            "1",
            "-W",
            "2",
            "2001:db8:ffff::10",
        ],
    );
    assert!(
        r.stdout.contains("From 2001:db8:0:111::1") && r.stdout.contains("Time exceeded"),
        "hop limit 1 probe: {}",
        r.stdout
    );
    assert!(lab.error_count("ip4-input", "ttl-expired") >= 1);
    assert!(lab.error_count("ip6-forward", "hop-limit-exceeded") >= 1);
    assert!(lab.error_count("ip6-icmp-error", "sent") >= 1);
}

#[test]
fn tshark_decodes_our_tunnel_frames_cleanly() {
    let mut lab = Lab::up(1);
    let cfg = lab.config(1);
    lab.start_ipoed(&cfg);
    // Warm up the neighbor caches so the capture holds the steady state.
    assert!(curl(&lab, "http://198.51.100.10/hello.txt").ok);

    // AF_XDP transmit bypasses the sender's packet taps, so capture on the
    // home gateway's end of the same veth: exactly the frames on the wire.
    let pcap = lab.run_dir.join("wan.pcap");
    let pcap_s = pcap.to_string_lossy().into_owned();
    let mut cap = lab.spawn(
        "hgw",
        &[
            "tshark",
            "-q",
            "-i",
            "down0",
            "-w",
            &pcap_s,
            "-a",
            "duration:6",
            "ip6 proto 4",
        ],
    );
    std::thread::sleep(Duration::from_secs(2));
    let r = curl(&lab, "http://198.51.100.10/hello.txt");
    assert!(r.ok, "{}", r.stderr);
    let _ = cap.wait();

    let r = lab.exec(
        "hgw",
        &[
            "tshark",
            "-r",
            &pcap_s,
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-T",
            "fields",
            "-e",
            "frame.protocols",
            "-e",
            "_ws.expert.message",
            "-e",
            "ipv6.src",
            "-e",
            "ipv6.hlim",
        ],
    );
    assert!(r.ok, "tshark: {}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let ours: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("2001:db8:0:100::2"))
        .collect();
    assert!(
        !ours.is_empty(),
        "no frames from our B4 captured:\n{}",
        r.stdout
    );
    for l in &ours {
        assert!(
            l.starts_with("eth:ethertype:ipv6:ip:tcp"),
            "frame not decoded as IPv6 > IPv4 > TCP: {l}"
        );
        let lower = l.to_lowercase();
        assert!(
            !lower.contains("malformed")
                && !lower.contains("bad checksum")
                && !lower.contains("incorrect"),
            "tshark warns: {l}"
        );
        assert!(l.ends_with("\t64"), "outer hop limit 64: {l}");
    }
}

#[test]
fn check_config_refuses_bad_files_with_position() {
    let dir = std::env::temp_dir().join(format!("ipoe-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "wan:\n  interface: wan0\nlan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    prefix: 2001:db8::/48\n",
    )
    .unwrap();
    let out = std::process::Command::new(ipoe_tests::bin("ipoed"))
        .arg("--check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:7:13"), "{err}");
    assert!(err.contains("/64"), "{err}");

    let good = ipoe_tests::workspace().join("config/examples/flets-dslite.yaml");
    let out = std::process::Command::new(ipoe_tests::bin("ipoed"))
        .arg("--check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn more_workers_than_queues_is_a_clear_startup_error() {
    let mut lab = Lab::up(1);
    let cfg = lab.config(2);
    let path = lab.run_dir.join("two-workers.yaml");
    std::fs::write(&path, cfg).unwrap();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", "router"])
        .arg(ipoe_tests::bin("ipoed"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wan0") && err.contains("2 workers") && err.contains("1 queue"),
        "{err}"
    );
    for dev in ["wan0", "lan0"] {
        assert!(
            !xdp_attached(&lab, "router", dev),
            "XDP left on {dev} after a refused start"
        );
    }
    // The lab itself is still fine for a correct config.
    let cfg = lab.config(1);
    lab.start_ipoed(&cfg);
    assert!(curl(&lab, "http://198.51.100.10/hello.txt").ok);
}

#[test]
fn kill_9_leaves_nothing_attached_and_a_restart_forwards_again() {
    let mut lab = Lab::up(1);
    let cfg = lab.config(1);
    lab.start_ipoed(&cfg);
    assert!(curl(&lab, "http://198.51.100.10/hello.txt").ok);
    lab.kill_ipoed();
    // The bpf_link died with the process: the kernel detached the program.
    let t0 = std::time::Instant::now();
    while xdp_attached(&lab, "router", "wan0") && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !xdp_attached(&lab, "router", "wan0"),
        "XDP outlived a killed ipoed"
    );
    lab.start_ipoed(&cfg);
    let t0 = std::time::Instant::now();
    let r = curl(&lab, "http://198.51.100.10/hello.txt");
    assert!(r.ok, "after restart: {}", r.stderr);
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "first request took {:?}",
        t0.elapsed()
    );
    let r = curl(&lab, "http://[2001:db8:ffff::10]/hello.txt");
    assert!(r.ok, "IPv6 after restart: {}", r.stderr);
}
