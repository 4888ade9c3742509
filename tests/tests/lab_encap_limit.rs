//! Issue 15 m5 in the lab: DS-Lite through an AFTR that sends what a Linux
//! ip6tnl AFTR sends by default, a Destination Options header with RFC
//! 2473's Tunnel Encapsulation Limit option (4) and a PadN on every packet
//! toward the B4 (`aftr.py --encap-limit 4`). Full-size packets then no
//! longer fit the 1500-byte link and arrive as outer fragments with the
//! option in front of the Fragment header, so reassembly is exercised too.

use std::time::Duration;

use ipoe_tests::Lab;

const V4_SERVER: &str = "198.51.100.10";
#[test]
fn m5_dslite_through_an_aftr_sending_the_encapsulation_limit_option() {
    let mut lab = Lab::up(1);
    let r = lab.script(&["aftr", "restart", "--encap-limit", "4"]);
    assert!(r.ok, "lab.sh aftr restart: {}{}", r.stdout, r.stderr);
    let cfg = lab.config(1);
    lab.start_ipoed(&cfg);
    assert!(
        lab.fetch_within(
            "lan1",
            &format!("http://{V4_SERVER}/hello.txt"),
            Duration::from_secs(10)
        ),
        "IPv4 via DS-Lite with the option: {}",
        lab.ipoed_log()
    );

    // The option is on the wire, before the Fragment header of the AFTR's
    // outer fragments too: pings of 56 and of 1472 bytes (a 1500-byte
    // inner packet, 1548 bytes outside).
    let pcap = lab.run_dir.join("encap-limit.pcap").display().to_string();
    let mut cap = lab.tshark_capture("hgw", "down0", "ip6 src host 2001:db8:aaaa::1", &pcap);
    for size in ["56", "1472"] {
        let r = lab.exec(
            "lan1",
            &[
                "ping", "-M", "dont", "-s", size, "-c", "3", "-i", "0.3", "-W", "2", V4_SERVER,
            ],
        );
        assert!(
            r.stdout.contains("3 received"),
            "ping -s {size}: {}{}",
            r.stdout,
            r.stderr
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    ipoe_tests::terminate(&mut cap);
    let tel = lab.tshark_count("hgw", &pcap, "ipv6.opt.tel == 4");
    let tel_frag = lab.tshark_count("hgw", &pcap, "ipv6.opt.tel == 4 && ipv6.fraghdr");
    // 3 small replies, 3 big ones in 2 fragments each.
    assert!(tel >= 3 + 6, "frames with the option: {tel}");
    assert!(tel_frag >= 6, "outer fragments with the option: {tel_frag}");

    // 20 MB, checked end to end.
    let want =
        std::fs::read_to_string(lab.run_dir.join("www/blob20.bin.sha256")).unwrap_or_default();
    let want = want.split_whitespace().next().unwrap_or("?").to_owned();
    let r = lab.exec(
        "lan1",
        &[
            "sh",
            "-c",
            &format!("curl -sS --max-time 120 http://{V4_SERVER}/blob20.bin | sha256sum"),
        ],
    );
    assert_eq!(
        r.stdout.split_whitespace().next(),
        Some(want.as_str()),
        "20 MB via DS-Lite with the option: {}",
        r.stderr
    );

    let aftr = lab.aftr_stats();
    assert_eq!(aftr["errors_total"], 0, "AFTR errors: {aftr}");
    assert!(
        aftr["encap_limit_sent"].as_u64().unwrap_or(0) > 10_000,
        "the AFTR sent the option on every packet: {aftr}"
    );
    // Nothing of it dropped on the way in: no option refused, no fragment
    // refused or lost in reassembly, nothing decapsulated badly, and none
    // of it taken for traffic to the router itself (what happened before).
    let errors = lab.error_counts();
    let get = |k: &str| *errors.get(k).unwrap_or_else(|| panic!("no counter {k}"));
    for k in [
        "ip6-input/tunnel-options",
        "ip6-input/fragment-not-from-aftr",
        "ip6-local/wan-not-allowed",
        "ip6-reassembly/overlap",
        "ip6-reassembly/too-big",
        "ip6-reassembly/malformed",
        "ip6-reassembly/unsupported",
        "ip6-reassembly/bad-options",
        "ip6-reassembly/evicted",
        "ip6-reassembly/timeout",
        "dslite-decap/unknown-aftr",
        "dslite-decap/inner-truncated",
        "dslite-decap/inner-length-mismatch",
        "dslite-decap/inner-bad-checksum",
        "dslite-decap/ecn-ce-not-ect",
    ] {
        assert_eq!(get(k), 0, "{k}");
    }
    assert!(
        get("ip6-reassembly/buffered") > 3,
        "outer fragments were reassembled"
    );
}
