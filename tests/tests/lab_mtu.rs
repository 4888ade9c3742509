//! Issue 15 m1, end to end: the tunnel MTU follows the path to the AFTR.
//! The lab's hgw is a real Linux router: with its link toward the AFTR
//! narrowed to 1400 bytes it answers our 1500-byte tunnel packets with
//! ICMPv6 Packet Too Big, which ipoed must act on (RFC 8201, RFC 2473 7.1
//! and 8.3). And radvd's MTU option and Cur Hop Limit must be applied
//! (RFC 4861 6.3.4). The AFTR emulator checks every tunnel packet on its
//! own, with no code of ours.

use std::time::Duration;

use ipoe_tests::Lab;
use serde_json::Value;

fn sh(lab: &Lab, ns: &str, script: &str) -> ipoe_tests::Run {
    lab.exec(ns, &["sh", "-c", script])
}

fn tunnel(lab: &Lab) -> Value {
    lab.ctl_json(&["show", "tunnel"])
}

/// A DF ping of `total` IPv4 bytes from lan1 to the IPv4 server.
fn ping_df(lab: &Lab, total: usize) -> ipoe_tests::Run {
    ping(lab, "do", total, "198.51.100.10")
}

/// A ping from lan1 of `total` IPv4 bytes with `-M pmtudisc` (do, dont).
fn ping(lab: &Lab, pmtudisc: &str, total: usize, dst: &str) -> ipoe_tests::Run {
    let size = (total - 28).to_string();
    lab.exec(
        "lan1",
        &[
            "ping", "-M", pmtudisc, "-s", &size, "-c", "1", "-W", "2", dst,
        ],
    )
}

/// The 20 MB download through the tunnel, checked by its sha256.
fn blob20_ok(lab: &Lab) {
    let want =
        std::fs::read_to_string(lab.run_dir.join("www/blob20.bin.sha256")).unwrap_or_default();
    let want = want.split_whitespace().next().unwrap_or("?").to_owned();
    let t0 = std::time::Instant::now();
    let r = sh(
        lab,
        "lan1",
        "curl -sS --max-time 120 http://198.51.100.10/blob20.bin | sha256sum",
    );
    eprintln!("20 MB through the narrowed tunnel in {:?}", t0.elapsed());
    assert_eq!(
        r.stdout.split_whitespace().next(),
        Some(want.as_str()),
        "20 MB via DS-Lite: {}\n{}",
        r.stderr,
        lab.ipoed_log()
    );
}

#[test]
fn m1_packet_too_big_toward_the_b4_lowers_the_tunnel_mtu() {
    let mut lab = Lab::up(1);
    let cfg = lab.config(1);
    lab.start_ipoed(&cfg);
    assert!(lab.fetch_within(
        "lan1",
        "http://198.51.100.10/hello.txt",
        Duration::from_secs(10)
    ));
    let t = tunnel(&lab);
    assert_eq!(t["mtu"], 1460, "{t}");
    assert_eq!(t["mtu_source"], "config", "{t}");

    // A 1400-byte link between hgw and the AFTR (both ends).
    for (ns, dev) in [("hgw", "core0"), ("aftr", "up0")] {
        let r = lab.exec(ns, &["ip", "link", "set", dev, "mtu", "1400"]);
        assert!(r.ok, "{ns} {dev}: {}", r.stderr);
    }

    // 1460 bytes with DF: 1500 outer bytes, which hgw cannot forward. It
    // sends Packet Too Big 1400 to the B4.
    let _ = ping_df(&lab, 1460);
    let learned = lab.wait_for(Duration::from_secs(5), || {
        let t = tunnel(&lab);
        t["mtu"] == 1360 && t["path_mtu"]["mtu"] == 1400
    });
    let t = tunnel(&lab);
    assert!(
        learned.is_some(),
        "no PMTU learned: {t}\n{}",
        lab.ipoed_log()
    );
    assert_eq!(t["mtu_source"], "packet-too-big", "{t}");
    assert_eq!(t["path_mtu"]["aftr"], "2001:db8:aaaa::1", "{t}");
    assert_eq!(t["mss_clamp"], 1320, "the clamp follows: {t}");
    let out = lab.ctl(&["show", "tunnel"]);
    assert!(out.stdout.contains("packet-too-big"), "{}", out.stdout);

    // The PTB was translated for lan1 (RFC 2473 8.3): it knows 1360 at once.
    assert!(t["ptb_relayed"].as_u64() >= Some(1), "{t}");
    let r = lab.exec("lan1", &["ip", "route", "get", "198.51.100.10"]);
    assert!(r.stdout.contains("mtu 1360"), "lan1 route: {}", r.stdout);
    let r = ping_df(&lab, 1360);
    assert!(r.ok, "1360 with DF fits: {}{}", r.stdout, r.stderr);

    // Other destinations (lan1 has no PMTU for them yet). Without DF we
    // fragment at the path MTU, not at the WAN's 1500.
    let frags = lab.error_count("ip6-fragment", "fragmented");
    let r = ping(&lab, "dont", 1500, "203.0.113.2");
    assert!(r.ok, "1500 without DF: {}{}", r.stdout, r.stderr);
    assert!(lab.error_count("ip6-fragment", "fragmented") > frags);
    // With DF the router itself answers frag-needed 1360.
    let too_big = lab.error_count("dslite-encap", "too-big");
    let r = ping(&lab, "do", 1460, "203.0.113.1");
    assert!(!r.ok, "1460 with DF cannot pass a 1400 path");
    assert!(lab.error_count("dslite-encap", "too-big") > too_big);
    let r = lab.exec("lan1", &["ip", "route", "get", "203.0.113.1"]);
    assert!(r.stdout.contains("mtu 1360"), "lan1 route: {}", r.stdout);

    blob20_ok(&lab);
    let stats = lab.aftr_stats();
    assert_eq!(stats["errors_total"], 0, "aftr: {stats}");
}

#[test]
fn m1_ra_mtu_option_and_cur_hop_limit_are_applied() {
    let mut lab = Lab::up(1);
    lab.script_ok(&["radvd", "start", "--mtu", "1454", "--hop-limit", "48"]);
    let cfg = lab.config(1);
    lab.start_ipoed(&cfg);
    let applied = lab.wait_for(Duration::from_secs(15), || {
        let t = tunnel(&lab);
        t["wan_mtu"] == 1454 && t["mtu"] == 1414 && t["hop_limit"] == 48
    });
    let t = tunnel(&lab);
    assert!(
        applied.is_some(),
        "RA not applied: {t}\n{}",
        lab.ipoed_log()
    );
    assert_eq!(t["mtu_source"], "ra", "{t}");
    assert_eq!(t["mss_clamp"], 1374, "{t}");

    // 1414 with DF fits, 1415 gets frag-needed from the router.
    assert!(lab.fetch_within(
        "lan1",
        "http://198.51.100.10/hello.txt",
        Duration::from_secs(10)
    ));
    let r = ping_df(&lab, 1414);
    assert!(r.ok, "1414 with DF fits: {}{}", r.stdout, r.stderr);
    let too_big = lab.error_count("dslite-encap", "too-big");
    assert!(!ping_df(&lab, 1415).ok);
    assert!(lab.error_count("dslite-encap", "too-big") > too_big);

    // The outer hop limit is the RA's: the AFTR sees 48 - 1 (hgw).
    let pcap = lab.run_dir.join("mtu-hop.pcap").display().to_string();
    let mut cap = lab.spawn(
        "aftr",
        &[
            "timeout",
            "5",
            "tcpdump",
            "-n",
            "-i",
            "up0",
            "-c",
            "1",
            "-w",
            &pcap,
            "ip6 proto 4 and src host 2001:db8:0:100::2",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    let _ = ping_df(&lab, 100);
    let _ = cap.wait();
    let r = lab.exec("aftr", &["tcpdump", "-n", "-v", "-r", &pcap]);
    assert!(
        r.stdout.contains("hlim 47"),
        "outer hop limit: {}",
        r.stdout
    );
}
