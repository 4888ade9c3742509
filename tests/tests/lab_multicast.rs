//! Multicast membership on ipoed's ports (issue 14, part 3): the NIC
//! filter holds the groups ipoed must hear (`ip maddr`), the LAN switch's
//! MLD snooping learns them from ipoed's reports (`bridge mdb`), both
//! follow the addresses as they change after start (privileges already
//! dropped), and with the switch delivering only reported groups to
//! ipoed's port, RS, DHCPv6 and NS from a real client are still answered.

use std::collections::BTreeSet;
use std::time::Duration;

use ipoe_tests::Lab;

/// Everything learned from the home gateway; stable-privacy IIDs on the
/// WAN so its address's solicited-node group differs from the
/// link-local's.
fn config(lab: &Lab, iid: &str, lan_static: Option<(&str, &str)>) -> String {
    let lan6 = match lan_static {
        Some((prefix, address)) => format!("prefix: {prefix}\n    address: {address}"),
        None => "subnet_id: 1".to_owned(),
    };
    format!(
        "wan:\n  interface: wan0\n  ipv6:\n    slaac: true\n    iid: {iid}\n    dhcpv6_pd: {{ prefix_hint: 60 }}\n\
         lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    {lan6}\n    dhcpv6: stateless\n    dns: router\n\
         dslite:\n  aftr: aftr.lab.example\n\
         control:\n  socket: {}\n  state_dir: {}\n  log_level: debug\n",
        lab.socket.display(),
        lab.state_dir().display()
    )
}

fn run(lab: &Lab, ns: &str, cmd: &[&str]) -> String {
    let r = lab.exec(ns, cmd);
    format!("{}{}", r.stdout, r.stderr)
}

/// The link-layer groups in the filter of `dev` in the router namespace.
fn maddr(lab: &Lab, dev: &str) -> BTreeSet<String> {
    run(lab, "router", &["ip", "maddr", "show", "dev", dev])
        .lines()
        .filter_map(|l| l.trim().strip_prefix("link"))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The groups the LAN switch has on ipoed's port.
fn mdb_router_port(lab: &Lab) -> BTreeSet<String> {
    run(lab, "lansw", &["bridge", "mdb", "show"])
        .lines()
        .filter(|l| l.contains("port sw-router "))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "grp")
                .and_then(|_| w.next())
                .map(str::to_owned)
        })
        .collect()
}

/// The Ethernet address of the solicited-node group of `addr`.
fn sn_mac(addr: &str) -> String {
    let o = addr.parse::<std::net::Ipv6Addr>().unwrap().octets();
    format!("33:33:ff:{:02x}:{:02x}:{:02x}", o[13], o[14], o[15])
}

/// lan2's kernel resolves `addr` (an NS to its solicited-node group,
/// answered by ipoed) and reaches it.
fn assert_resolves(lab: &Lab, addr: &str) {
    // On-link, whatever the RAs said so far: the kernel must ask for it.
    let _ = run(
        lab,
        "lan2",
        &[
            "ip",
            "-6",
            "route",
            "replace",
            &format!("{addr}/128"),
            "dev",
            "eth0",
        ],
    );
    // Up to three tries of three NS each. In about one run in six the
    // first try went unanswered right after lan2 came up (ipoed counted no
    // NS from it; not understood yet, see the closing note of issue 14):
    // a resolution that never works still fails.
    let (mut ping, mut neigh) = (String::new(), String::new());
    for attempt in 1..=3 {
        let _ = run(lab, "lan2", &["ip", "-6", "neigh", "flush", "dev", "eth0"]);
        ping = run(lab, "lan2", &["ping", "-6", "-c", "1", "-W", "3", addr]);
        neigh = run(lab, "lan2", &["ip", "-6", "neigh", "show", addr]);
        if ping.contains("1 received") {
            eprintln!("{addr} resolved at try {attempt}");
            break;
        }
        eprintln!(
            "{addr}: try {attempt} unanswered (ipoed counted {} NS so far)",
            lab.error_count("neighbor", "ns_rx")
        );
    }
    assert!(
        ping.contains("1 received") && neigh.contains("02:00:00:00:02:01"),
        "{addr}:\n{ping}\n{neigh}\nmdb:\n{}\n{}",
        run(lab, "lansw", &["bridge", "mdb", "show"]),
        lab.ctl(&["show", "errors"]).stdout
    );
}

fn has_all(have: &BTreeSet<String>, want: &[&str]) -> bool {
    want.iter().all(|w| have.contains(*w))
}

#[test]
fn memberships_follow_the_addresses_and_a_snooping_switch_delivers_to_ipoed() {
    let mut lab = Lab::fresh(1);
    let cfg = config(&lab, "stable-privacy", None);
    lab.start_ipoed(&cfg);
    let up = lab.wait_for(Duration::from_secs(30), || {
        lab.ctl_json(&["show", "pd"])["lan_prefix"] == "2001:db8:0:111::/64"
            && lab.ctl_json(&["show", "wan"])["address_in_use"].is_string()
    });
    assert!(up.is_some(), "WAN/LAN not up\n{}", lab.ipoed_log());
    let wan_addr = lab.ctl_json(&["show", "wan"])["address_in_use"]
        .as_str()
        .unwrap()
        .to_owned();
    let wan_sn = sn_mac(&wan_addr);
    // RFC 7217: not the MAC-derived IID, so a group of its own.
    assert_ne!(wan_sn, "33:33:ff:00:02:02", "{wan_addr}");

    // The NIC filters. LAN: all-nodes, all-routers, DHCPv6 servers, the
    // link-local's and prefix::1's solicited-node groups.
    let lan_want = [
        "33:33:00:00:00:01",
        "33:33:00:00:00:02",
        "33:33:00:01:00:02",
        "33:33:ff:00:02:01",
        "33:33:ff:00:00:01",
    ];
    let ok = lab.wait_for(Duration::from_secs(5), || {
        has_all(&maddr(&lab, "lan0"), &lan_want)
            && has_all(&maddr(&lab, "wan0"), &["33:33:ff:00:02:02", &wan_sn])
    });
    assert!(
        ok.is_some(),
        "lan0 {:?}\nwan0 {:?} (want {wan_sn})\n{}",
        maddr(&lab, "lan0"),
        maddr(&lab, "wan0"),
        lab.ipoed_log()
    );
    // On the WAN ipoed is a host and runs no DHCPv6 server.
    assert!(!maddr(&lab, "wan0").contains("33:33:00:01:00:02"));

    // The switch learned them from ipoed's reports (all-nodes is never
    // reported, RFC 3810 6).
    let lan_groups = ["ff02::2", "ff02::1:2", "ff02::1:ff00:201", "ff02::1:ff00:1"];
    let ok = lab.wait_for(Duration::from_secs(10), || {
        has_all(&mdb_router_port(&lab), &lan_groups)
    });
    assert!(
        ok.is_some(),
        "mdb on sw-router: {:?}\n{}",
        mdb_router_port(&lab),
        run(&lab, "lansw", &["bridge", "mdb", "show"])
    );
    // The querier asks every 10 s; ipoed answers within the 5 s asked.
    let answered = lab.wait_for(Duration::from_secs(25), || {
        lab.error_count("mld-lan", "tx-answer") > 0
    });
    assert!(
        answered.is_some(),
        "queries {} answers {}",
        lab.error_count("mld-lan", "rx-query-v2"),
        lab.error_count("mld-lan", "tx-answer")
    );
    for bad in [
        "rx-malformed",
        "rx-bad-checksum",
        "rx-query-bad-source",
        "rx-query-bad-hop-limit",
        "rx-query-no-router-alert",
    ] {
        assert_eq!(lab.error_count("mld-lan", bad), 0, "mld-lan/{bad}");
    }

    // From now on the switch sends ipoed's port only the groups it
    // reported, as a filtering NIC behind a snooping switch would.
    let r = lab.exec(
        "lansw",
        &[
            "bridge",
            "link",
            "set",
            "dev",
            "sw-router",
            "mcast_flood",
            "off",
        ],
    );
    assert!(r.ok, "{}", r.stderr);
    lab.lanhost("lan2", &[]);
    // RS to ff02::2.
    let rd = run(
        &lab,
        "lan2",
        &["rdisc6", "-1", "-r", "3", "-w", "1500", "eth0"],
    );
    assert!(rd.contains("from fe80::ff:fe00:201"), "rdisc6:\n{rd}");
    // NS to prefix::1's solicited-node group (the RDNSS address).
    assert_resolves(&lab, "2001:db8:0:111::1");
    // Information-Request to ff02::1:2.
    assert!(
        lab.dhcp_client("lan2", "dhclient6", &["-S"]),
        "dhclient -6 -S\n{}",
        lab.ipoed_log()
    );

    // Renumbering after start (privileges dropped): a new LAN address
    // whose group differs, and a WAN address from EUI-64 instead of RFC
    // 7217 (a `wan.*` change also rebuilds the WAN engines, which is what
    // applies a static LAN prefix). New groups are joined, old ones left.
    std::fs::write(
        lab.config_path(),
        config(
            &lab,
            "eui64",
            Some(("2001:db8:0:122::/64", "2001:db8:0:122::1:5")),
        ),
    )
    .unwrap();
    let r = lab.ctl(&["reload"]);
    assert!(r.ok, "reload: {}{}", r.stdout, r.stderr);
    let moved = lab.wait_for(Duration::from_secs(20), || {
        let m = maddr(&lab, "lan0");
        let d = mdb_router_port(&lab);
        m.contains("33:33:ff:01:00:05")
            && !m.contains("33:33:ff:00:00:01")
            && d.contains("ff02::1:ff01:5")
            && !d.contains("ff02::1:ff00:1")
            && !maddr(&lab, "wan0").contains(&wan_sn)
            && lab.ctl_json(&["show", "wan"])["address_in_use"] == "2001:db8:0:100:0:ff:fe00:202"
    });
    assert!(
        moved.is_some(),
        "lan0 {:?}\nwan0 {:?}\nmdb {:?}\n{}",
        maddr(&lab, "lan0"),
        maddr(&lab, "wan0"),
        mdb_router_port(&lab),
        lab.ipoed_log()
    );
    assert_resolves(&lab, "2001:db8:0:122::1:5");
    assert!(lab.ipoed_log().contains("capabilities: kept"));
}
