//! LAN services end to end: ordinary clients (dhcpcd, busybox udhcpc, ISC
//! dhclient, the kernel's own SLAAC) configure themselves from ipoed alone,
//! keep their addresses across restarts, follow a renumbering, and hostile
//! DHCP and rogue RAs change nothing. One test per check of the LAN issue.

use std::time::{Duration, Instant};

use ipoe_tests::{Lab, SHORT_PD_LEASE};
use serde_json::Value;

const V4_URL: &str = "http://198.51.100.10/hello.txt";
const V6_URL: &str = "http://[2001:db8:ffff::10]/hello.txt";
const NAS_MAC: &str = "02:00:00:00:01:05";

/// Learns the WAN from the lab's home gateway; LAN services as the issue's
/// example, RAs every 10-30 s so the tests need not wait long.
fn lan_config(lab: &Lab, dhcpv6: &str, m_flag: bool) -> String {
    format!(
        "wan:\n  interface: wan0\n\
         lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    subnet_id: 1\n\
         \x20   ra: {{ interval: 30, m_flag: {m_flag}, o_flag: true, dnssl: [home.arpa] }}\n\
         \x20   dhcpv6: {dhcpv6}\n    dns: router\n\
         \x20 dhcpv4:\n    range: 192.168.2.100-192.168.2.250\n    lease_time: 1h\n    dns: router\n\
         \x20   domain: home.arpa\n    static:\n      - {{ mac: \"{NAS_MAC}\", ip: 192.168.2.50, hostname: nas }}\n\
         dslite:\n  aftr: aftr.lab.example\n\
         control:\n  socket: {}\n  state_dir: {}\n  log_level: debug\n",
        lab.socket.display(),
        lab.state_dir().display()
    )
}

fn start(lab: &mut Lab, cfg: &str) {
    lab.start_ipoed(cfg);
    let ok = lab.wait_for(Duration::from_secs(30), || {
        lab.ctl_json(&["show", "pd"])["lan_prefix"] == "2001:db8:0:111::/64"
            && lab.ctl_json(&["show", "lan"])["ra"]["advertising"] == true
    });
    assert!(ok.is_some(), "LAN not up\n{}", lab.ipoed_log());
}

fn run(lab: &Lab, ns: &str, cmd: &[&str]) -> String {
    let r = lab.exec(ns, cmd);
    format!("{}{}", r.stdout, r.stderr)
}

fn ipv6_addrs(lab: &Lab, ns: &str) -> String {
    run(
        lab,
        ns,
        &["ip", "-6", "addr", "show", "dev", "eth0", "scope", "global"],
    )
}

fn ipv4_of(lab: &Lab, ns: &str) -> String {
    run(lab, ns, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
}

/// dhcpcd's record of the RA it acted on, once it has a SLAAC address.
fn wait_ra(lab: &Lab, host: &str) -> std::collections::HashMap<String, String> {
    let _ = lab.wait_for(Duration::from_secs(15), || {
        lab.lease_file(host, "dhcpcd.ra")
            .get("slaac")
            .is_some_and(|s| !s.is_empty())
    });
    lab.lease_file(host, "dhcpcd.ra")
}

fn counter(lab: &Lab, node: &str, name: &str) -> u64 {
    lab.error_count(node, name)
}

/// Checks 1, 3 and 7: dhcpcd, udhcpc, dhclient and kernel SLAAC hosts
/// configure themselves; rdisc6 sees every RA option; the reserved MAC
/// gets its address; RELEASE and DECLINE (dhcpcd's ARP probe finding the
/// address taken) behave; an IPv4-only host resolves through the proxy.
#[test]
fn clients_configure_themselves_from_ipoed() {
    let mut lab = Lab::fresh(1);
    let cfg = lan_config(&lab, "stateless", false);
    start(&mut lab, &cfg);

    lab.lanhost("lan2", &[]);
    assert!(
        lab.dhcp_client("lan2", "dhcpcd", &[]),
        "dhcpcd\n{}",
        lab.ipoed_log()
    );
    let l2 = lab.lease_file("lan2", "dhcpcd.lease4");
    assert_eq!(l2["state"], "bound", "{l2:?}");
    assert_eq!(l2["ip"], "192.168.2.100");
    assert_eq!(l2["router"], "192.168.2.1");
    assert_eq!(l2["dns"], "192.168.2.1");
    assert_eq!(l2["domain"], "home.arpa");
    assert_eq!(l2["lease"], "3600");
    let ra = wait_ra(&lab, "lan2");
    assert_eq!(ra["prefix"], "2001:db8:0:111::/64", "{ra:?}");
    assert!(ra["slaac"].starts_with("2001:db8:0:111:"), "{ra:?}");
    assert_eq!(ra["rdnss"], "2001:db8:0:111::1");
    assert_eq!(ra["dnssl"], "home.arpa");

    lab.lanhost("lan3", &["--ipv6", "off"]);
    assert!(lab.dhcp_client("lan3", "udhcpc", &[]));
    let l3 = lab.lease_file("lan3", "udhcpc.lease4");
    assert_eq!(l3["ip"], "192.168.2.101", "a different lease: {l3:?}");
    assert_eq!(l3["domain"], "home.arpa");

    // Kernel SLAAC only (accept_ra=1).
    lab.lanhost("lan4", &[]);
    let slaac = lab.wait_for(Duration::from_secs(15), || {
        ipv6_addrs(&lab, "lan4").contains("2001:db8:0:111:0:ff:fe00:104/64")
            && run(&lab, "lan4", &["ip", "-6", "route", "show", "default"])
                .contains("fe80::ff:fe00:201")
    });
    assert!(slaac.is_some(), "{}", ipv6_addrs(&lab, "lan4"));
    // The host's own DAD must finish before its address sources traffic.
    let v6 = lab.wait_for(Duration::from_secs(10), || lab.fetch("lan4", V6_URL));
    assert!(
        v6.is_some(),
        "IPv6 from the SLAAC host\n{}\n{}",
        ipv6_addrs(&lab, "lan4"),
        lab.ipoed_log()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let rd = run(&lab, "lan4", &["rdisc6", "-1", "-w", "1500", "eth0"]);
    eprintln!("rdisc6 on lan4:\n{rd}");
    for want in [
        "Stateful address conf.    :           No",
        "Stateful other conf.      :          Yes",
        "Router lifetime           :           90",
        "Source link-layer address: 02:00:00:00:02:01",
        "MTU                      :         1500 bytes (valid)",
        "Prefix                   : 2001:db8:0:111::/64",
        "On-link                 :          Yes",
        "Autonomous address conf.:          Yes",
        "Valid time              :         5400",
        "Pref. time              :         2700",
        "Recursive DNS server     : 2001:db8:0:111::1",
        "DNS search list          : home.arpa",
        "from fe80::ff:fe00:201",
    ] {
        assert!(rd.contains(want), "rdisc6 lacks {want:?}:\n{rd}");
    }

    // The reserved MAC, with ISC dhclient and dhclient -6 -S.
    lab.lanhost("lan5", &["--mac", NAS_MAC]);
    assert!(lab.dhcp_client("lan5", "dhclient4", &[]));
    assert_eq!(
        lab.lease_file("lan5", "dhclient4.lease4")["ip"],
        "192.168.2.50"
    );
    assert!(lab.dhcp_client("lan5", "dhclient6", &["-S"]));
    let l5 = lab.lease_file("lan5", "dhclient6.lease6");
    assert_eq!(l5["state"], "informed", "{l5:?}");
    assert_eq!(l5["dns"], "2001:db8:0:111::1");
    assert_eq!(l5["domain_search"], "home.arpa");
    let leases = lab.ctl_json(&["show", "leases"]);
    let nas = leases["dhcpv4"]["leases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["ip"] == "192.168.2.50")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(nas["hostname"], "nas", "{leases}");
    assert_eq!(nas["mac"], NAS_MAC);

    // DECLINE: lan6 holds .102 by hand; dhcpcd in lan7 is offered it, finds
    // it taken by ARP probe, declines, and gets the next one.
    lab.lanhost("lan6", &["--ipv6", "off"]);
    let r = lab.exec(
        "lan6",
        &["ip", "addr", "add", "192.168.2.102/24", "dev", "eth0"],
    );
    assert!(r.ok, "{}", r.stderr);
    lab.lanhost("lan7", &["--ipv6", "off"]);
    assert!(lab.dhcp_client("lan7", "dhcpcd", &["-4"]));
    let l7 = lab.lease_file("lan7", "dhcpcd.lease4");
    assert_eq!(l7["ip"], "192.168.2.103", "{l7:?}\n{}", lab.ipoed_log());
    assert_eq!(counter(&lab, "dhcpv4-server", "decline-quarantined"), 1);
    let leases = lab.ctl_json(&["show", "leases"]).to_string();
    assert!(
        leases.contains("\"ip\":\"192.168.2.102\"") && leases.contains("declined"),
        "{leases}"
    );

    // RELEASE frees the address.
    lab.script_ok(&["lanhost", "release", "lan3"]);
    let freed = lab.wait_for(Duration::from_secs(5), || {
        !lab.ctl_json(&["show", "leases"])
            .to_string()
            .contains("\"ip\":\"192.168.2.101\"")
    });
    assert!(freed.is_some(), "{}", lab.ctl_json(&["show", "leases"]));
    assert_eq!(counter(&lab, "dhcpv4-server", "rx-release"), 1);

    // Check 7: an IPv4-only host resolves through the router's proxy,
    // over UDP and TCP, and with the system resolver (getent).
    assert!(lab.dhcp_client("lan3", "udhcpc", &[]));
    for tcp in ["+notcp", "+tcp"] {
        let a = run(
            &lab,
            "lan3",
            &[
                "dig",
                "+short",
                "+time=3",
                "+tries=1",
                tcp,
                "@192.168.2.1",
                "www.lab.example",
                "A",
            ],
        );
        assert_eq!(
            a.trim(),
            "198.51.100.10",
            "dig {tcp}: {a}\n{}",
            lab.ipoed_log()
        );
    }
    let netns_etc = std::path::Path::new("/etc/netns/lan3");
    std::fs::create_dir_all(netns_etc).unwrap();
    std::fs::write(netns_etc.join("resolv.conf"), "nameserver 192.168.2.1\n").unwrap();
    let g = run(&lab, "lan3", &["getent", "ahostsv4", "www.lab.example"]);
    let _ = std::fs::remove_dir_all(netns_etc);
    assert!(g.contains("198.51.100.10"), "getent: {g}");
    let nx = run(
        &lab,
        "lan3",
        &[
            "dig",
            "+time=3",
            "+tries=1",
            "@192.168.2.1",
            "nothing.lab.example",
        ],
    );
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert!(counter(&lab, "dns-proxy", "tcp-accepted") >= 1);
    assert!(lab.fetch("lan3", V4_URL));
    assert_eq!(lab.stop_ipoed().0, Some(0));
}

/// Check 2: stateful DHCPv6 gives dhclient -6 an address from the LAN /64.
#[test]
fn stateful_dhcpv6_gives_addresses() {
    let mut lab = Lab::fresh(1);
    let cfg = lan_config(&lab, "stateful", true);
    start(&mut lab, &cfg);
    lab.lanhost("lan6", &["--ipv6", "off"]);
    assert!(
        lab.dhcp_client("lan6", "dhclient6", &["-N"]),
        "{}",
        lab.ipoed_log()
    );
    let l = lab.lease_file("lan6", "dhclient6.lease6");
    assert_eq!(l["state"], "bound", "{l:?}");
    assert!(l["addr"].starts_with("2001:db8:0:111:"), "{l:?}");
    assert_eq!(l["dns"], "2001:db8:0:111::1");
    let leases = lab.ctl_json(&["show", "leases"]);
    assert!(
        leases["dhcpv6"]["leases"].to_string().contains(&l["addr"]),
        "{leases}"
    );
    assert!(lab.state_dir().join("dhcpv6-leases.json").exists());
    assert_eq!(lab.stop_ipoed().0, Some(0));
}

/// Check 4: SIGTERM, then kill -9: clients renew and keep the same IPv4
/// and IPv6 addresses; the final RAs withdraw the default route meanwhile.
#[test]
fn clients_keep_addresses_across_restarts() {
    let mut lab = Lab::fresh(1);
    let cfg = lan_config(&lab, "stateless", false);
    start(&mut lab, &cfg);
    lab.lanhost("lan2", &[]);
    assert!(lab.dhcp_client("lan2", "dhcpcd", &["-4"]));
    lab.lanhost("lan3", &["--ipv6", "off"]);
    assert!(lab.dhcp_client("lan3", "udhcpc", &[]));
    let ip2 = lab.lease_file("lan2", "dhcpcd.lease4")["ip"].clone();
    let ip3 = lab.lease_file("lan3", "udhcpc.lease4")["ip"].clone();
    let got6 = lab.wait_for(Duration::from_secs(15), || {
        ipv6_addrs(&lab, "lan2").contains("2001:db8:0:111:")
    });
    assert!(got6.is_some());
    let v6 = ipv6_addrs(&lab, "lan2");

    for kill in [false, true] {
        if kill {
            lab.kill_ipoed();
        } else {
            assert_eq!(lab.stop_ipoed().0, Some(0));
            // Three final RAs with router lifetime 0: the host drops us
            // as its default router right away.
            let gone = lab.wait_for(Duration::from_secs(3), || {
                !run(&lab, "lan2", &["ip", "-6", "route", "show", "default"])
                    .contains("fe80::ff:fe00:201")
            });
            assert!(gone.is_some(), "default route still there after SIGTERM");
        }
        let t0 = Instant::now();
        start(&mut lab, &cfg);
        lab.script_ok(&["lanhost", "renew", "lan2"]);
        lab.script_ok(&["lanhost", "renew", "lan3"]);
        let same = lab.wait_for(Duration::from_secs(15), || {
            ipv4_of(&lab, "lan2").contains(&format!("{ip2}/24"))
                && ipv4_of(&lab, "lan3").contains(&format!("{ip3}/24"))
                && lab
                    .ctl_json(&["show", "leases"])
                    .to_string()
                    .contains(&format!("\"ip\":\"{ip2}\""))
                && lab
                    .ctl_json(&["show", "leases"])
                    .to_string()
                    .contains(&format!("\"ip\":\"{ip3}\""))
        });
        assert!(
            same.is_some(),
            "after {}: lan2 {} lan3 {}\n{}",
            if kill { "kill -9" } else { "SIGTERM" },
            ipv4_of(&lab, "lan2"),
            ipv4_of(&lab, "lan3"),
            lab.ipoed_log()
        );
        let back = lab.wait_for(Duration::from_secs(40), || {
            run(&lab, "lan2", &["ip", "-6", "route", "show", "default"])
                .contains("fe80::ff:fe00:201")
        });
        assert!(back.is_some());
        assert_eq!(
            ipv6_addrs(&lab, "lan2")
                .lines()
                .find(|l| l.contains("inet6")),
            v6.lines().find(|l| l.contains("inet6")),
            "IPv6 address changed"
        );
        assert!(lab.fetch("lan2", V4_URL));
        eprintln!(
            "{}: clients renewed with the same addresses {:?} after start",
            if kill { "kill -9" } else { "SIGTERM" },
            t0.elapsed()
        );
    }
    assert_eq!(lab.stop_ipoed().0, Some(0));
}

/// Checks 5 and 6: renumbering at the home gateway, then a WAN cut.
#[test]
fn renumbering_and_wan_cut() {
    let mut lab = Lab::fresh(1);
    lab.restart_dhcp6(SHORT_PD_LEASE);
    let cfg = lan_config(&lab, "stateless", false);
    start(&mut lab, &cfg);
    lab.lanhost("lan4", &[]);
    let old = "2001:db8:0:111:0:ff:fe00:104";
    assert!(lab
        .wait_for(Duration::from_secs(15), || ipv6_addrs(&lab, "lan4")
            .contains(old))
        .is_some());

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
    let new = "2001:db8:0:121:0:ff:fe00:104";
    let t0 = Instant::now();
    // Within one renew cycle (10 s) plus one RA interval (30 s).
    let moved = lab.wait_for(Duration::from_secs(45), || {
        let a = ipv6_addrs(&lab, "lan4");
        let old_line = a
            .lines()
            .skip_while(|l| !l.contains(old))
            .nth(1)
            .unwrap_or("")
            .to_owned();
        a.contains(new) && old_line.contains("preferred_lft 0sec")
    });
    assert!(
        moved.is_some(),
        "{}\n{}",
        ipv6_addrs(&lab, "lan4"),
        lab.ipoed_log()
    );
    eprintln!(
        "renumbered: new address on the host, old one deprecated {:?} after the pool change",
        t0.elapsed()
    );
    // New connections use the new prefix.
    assert!(lab.fetch_within("lan4", V6_URL, Duration::from_secs(10)));
    let access = std::fs::read_to_string(lab.run_dir.join("http-access.log")).unwrap_or_default();
    assert!(
        access
            .lines()
            .last()
            .unwrap_or("")
            .contains("2001:db8:0:121:"),
        "{access}"
    );
    // The old prefix gets code 5.
    let p = run(
        &lab,
        "lan4",
        &[
            "ping",
            "-6",
            "-c",
            "1",
            "-W",
            "2",
            "-I",
            old,
            "2001:db8:ffff::10",
        ],
    );
    assert!(
        p.to_lowercase().contains("unreachable") || p.contains("policy"),
        "{p}"
    );
    assert!(counter(&lab, "ip6-input", "stale-prefix-source") >= 1);
    let lan = lab.ctl_json(&["show", "lan"]);
    assert!(
        lan["ra"]["prefixes"]
            .to_string()
            .contains("2001:db8:0:111::/64"),
        "old prefix still advertised: {lan}"
    );

    // Check 6: WAN cut. The hgw's port goes down: LAN RAs go to router
    // lifetime 0 and hosts drop their default route; back when it returns.
    // A real home gateway keeps its configuration over a cable pull;
    // Linux flushes IPv6 addresses on link down unless told not to.
    let r = lab.exec(
        "hgw",
        &["sysctl", "-qw", "net.ipv6.conf.down0.keep_addr_on_down=1"],
    );
    assert!(r.ok, "{}", r.stderr);
    let r = lab.exec("hgw", &["ip", "link", "set", "down0", "down"]);
    assert!(r.ok);
    let t0 = Instant::now();
    let lost = lab.wait_for(Duration::from_secs(10), || {
        !run(&lab, "lan4", &["ip", "-6", "route", "show", "default"]).contains("fe80::ff:fe00:201")
    });
    assert!(
        lost.is_some(),
        "default route kept on the LAN during the WAN cut\n{}",
        lab.ipoed_log()
    );
    eprintln!(
        "WAN cut: LAN hosts lost the default route {:?} after the link went down",
        t0.elapsed()
    );
    assert_eq!(lab.ctl_json(&["show", "lan"])["ra"]["router_lifetime_s"], 0);
    let r = lab.exec("hgw", &["ip", "link", "set", "down0", "up"]);
    assert!(r.ok);
    // The kernel drops link-local addresses on link down whatever
    // keep_addr_on_down says; the gateway's fe80::1 comes back with it,
    // and radvd is restarted to advertise from it again.
    let r = lab.exec(
        "hgw",
        &[
            "ip",
            "-6",
            "addr",
            "add",
            "fe80::1/64",
            "dev",
            "down0",
            "nodad",
        ],
    );
    assert!(r.ok, "{}", r.stderr);
    lab.script_ok(&["radvd", "start"]);
    // So does the route to the delegated pool; a real gateway keeps it.
    let r = lab.exec(
        "hgw",
        &[
            "ip",
            "-6",
            "route",
            "replace",
            "2001:db8:0:120::/60",
            "via",
            "fe80::ff:fe00:202",
            "dev",
            "down0",
        ],
    );
    assert!(r.ok, "{}", r.stderr);
    let t0 = Instant::now();
    let back = lab.wait_for(Duration::from_secs(30), || {
        run(&lab, "lan4", &["ip", "-6", "route", "show", "default"]).contains("fe80::ff:fe00:201")
    });
    assert!(
        back.is_some(),
        "default route not back\n{}",
        lab.ipoed_log()
    );
    eprintln!(
        "WAN back: LAN default route restored {:?} after the link came up",
        t0.elapsed()
    );
    assert!(lab.fetch_within("lan4", V6_URL, Duration::from_secs(10)));
    assert_eq!(lab.stop_ipoed().0, Some(0));
}

/// Check 8: malformed DHCP and rogue RAs are counted and ignored; a rogue
/// DHCP server on the LAN does not disturb ours.
#[test]
fn hostile_dhcp_and_rogue_ra_are_ignored() {
    let mut lab = Lab::fresh(1);
    let cfg = lan_config(&lab, "stateless", false);
    start(&mut lab, &cfg);
    lab.lanhost("lan2", &[]);
    assert!(lab.dhcp_client("lan2", "dhcpcd", &["-4"]));
    let ip2 = lab.lease_file("lan2", "dhcpcd.lease4")["ip"].clone();
    lab.lanhost("lan6", &[]);
    let dropped = |lab: &Lab| -> u64 {
        [
            "drop-truncated",
            "drop-malformed",
            "drop-bad-cookie",
            "drop-option-overflow",
            "drop-bad-overload",
            "drop-huge-prl",
        ]
        .iter()
        .map(|c| counter(lab, "dhcpv4-server", c))
        .sum()
    };
    let before = dropped(&lab);
    // Hand-made broken DHCP broadcasts and a rogue RA, from a raw socket.
    let py = r#"
import socket, struct
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
mac = bytes.fromhex("020000000106")
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return (~t) & 0xffff
def dhcp_frame(payload):
    udp = struct.pack("!HHHH", 68, 67, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, bytes(4), b"\xff" * 4)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\xff" * 6 + mac + b"\x08\x00" + ip + udp
def bootp(options, cookie=b"\x63\x82\x53\x63"):
    fixed = struct.pack("!BBBBIHH", 1, 1, 6, 0, 0x1234, 0, 0x8000) + bytes(16) + mac + bytes(10) + bytes(192)
    return fixed + cookie + options
cases = [
    bootp(b"\x35\x01\x01\x0c\x20ab"),                    # option 12 runs past the end
    bootp(b"\x35\x01\x01\xff", cookie=b"\x00\x00\x00\x00"),   # bad magic cookie
    bootp(b"\x35\x01\x01\x34\x01\x03\xff"),              # overload pointing at empty file/sname
    bootp(b"\x35\x01\x01" + b"\x37\xff" + bytes(range(255)) + b"\x37\xff" + bytes(range(255)) + b"\xff"),  # huge option 55
    bootp(b"")[:100],                                    # truncated fixed header
]
for c in cases:
    s.send(dhcp_frame(c))
# A rogue RA from another "router" on the LAN.
src = bytes.fromhex("fe80000000000000" + "00000000000000bb")
dst = bytes.fromhex("ff020000000000000000000000000001")
ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
ra += struct.pack("!BBBBIII16s", 3, 4, 64, 0xc0, 86400, 14400, 0, bytes.fromhex("20010db8666600000000000000000000"))
ph = src + dst + struct.pack("!I3xB", len(ra), 58)
ra = ra[:2] + struct.pack("!H", csum(ph + ra)) + ra[4:]
ip6 = struct.pack("!IHBB", 6 << 28, len(ra), 58, 255) + src + dst
s.send(b"\x33\x33\x00\x00\x00\x01" + mac + b"\x86\xdd" + ip6 + ra)
print("sent", len(cases) + 1)
"#;
    let r = lab.exec("lan6", &["python3", "-c", py]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    std::thread::sleep(Duration::from_millis(500));
    let after = dropped(&lab);
    eprintln!("malformed DHCP frames counted: {} of 5", after - before);
    assert_eq!(after - before, 5, "every malformed frame has its counter");
    assert_eq!(counter(&lab, "lan-ra", "rogue-ra"), 1);
    // Our RAs are unchanged: no 2001:db8:6666::/64 anywhere.
    assert!(!lab.ctl_json(&["show", "lan"]).to_string().contains("6666"));

    // A rogue DHCP server (dnsmasq) in lan6.
    let r = lab.exec(
        "lan6",
        &["ip", "addr", "add", "192.168.2.240/24", "dev", "eth0"],
    );
    assert!(r.ok);
    let dir = lab.run_dir.join("lanhosts/lan6");
    let rogue = lab.spawn(
        "lan6",
        &[
            "dnsmasq",
            "--no-daemon",
            "--port=0",
            "--interface=eth0",
            "--bind-interfaces",
            "--dhcp-range=192.168.2.230,192.168.2.235,10m",
            "--dhcp-authoritative",
            &format!("--dhcp-leasefile={}", dir.join("rogue.leases").display()),
            &format!("--pid-file={}", dir.join("rogue.pid").display()),
        ],
    );
    std::thread::sleep(Duration::from_secs(1));
    let acks = counter(&lab, "dhcpv4-server", "tx-ack");
    lab.script_ok(&["lanhost", "renew", "lan2"]);
    let renewed = lab.wait_for(Duration::from_secs(10), || {
        counter(&lab, "dhcpv4-server", "tx-ack") > acks
    });
    let mut rogue = rogue;
    let _ = rogue.kill();
    let _ = rogue.wait();
    assert!(
        renewed.is_some(),
        "our server stopped answering with a rogue server present"
    );
    assert!(
        ipv4_of(&lab, "lan2").contains(&format!("{ip2}/24")),
        "{}",
        ipv4_of(&lab, "lan2")
    );
    assert!(lab
        .ctl_json(&["show", "leases"])
        .to_string()
        .contains(&format!("\"ip\":\"{ip2}\"")));
    assert!(lab.fetch("lan2", V4_URL));
    assert_eq!(lab.stop_ipoed().0, Some(0));
}
