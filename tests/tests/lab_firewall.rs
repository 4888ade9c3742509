//! The firewall, MTU and ICMP checks of issue 6, end to end with the real
//! ipoed: unsolicited traffic from the internet never reaches a LAN host,
//! LAN-initiated traffic works both ways, pinholes open exactly their port
//! and follow the host across renumbering, big packets cross the tunnel
//! (MSS clamping, outer fragmentation both ways, fragmentation-needed with
//! DF), and a flood of new flows or a scan of the LAN /64 leaves the
//! tables at their bounds while an established stream keeps flowing.

use std::time::{Duration, Instant};

use ipoe_tests::{bin, Lab, SHORT_PD_LEASE};
use serde_json::Value;

const V4_SERVER: &str = "198.51.100.10";
const V6_SERVER: &str = "2001:db8:ffff::10";
const LAN1_V6: &str = "2001:db8:0:111::10";

/// The lab's static config with a firewall section.
fn config(lab: &Lab, firewall: &str) -> String {
    format!("{}firewall:\n{firewall}", lab.config(1))
}

fn sh(lab: &Lab, ns: &str, script: &str) -> ipoe_tests::Run {
    lab.exec(ns, &["sh", "-c", script])
}

fn fw(lab: &Lab) -> Value {
    lab.ctl_json(&["show", "firewall"])
}

fn sessions(lab: &Lab, args: &[&str]) -> Value {
    let mut a = vec!["show", "sessions"];
    a.extend_from_slice(args);
    lab.ctl_json(&a)
}

/// TCP listeners answering "open PORT" on each of `ports` in `ns`.
fn listen(lab: &Lab, ns: &str, ports: &[u16]) -> Vec<std::process::Child> {
    ports
        .iter()
        .map(|p| {
            lab.spawn(
                ns,
                &[
                    "socat",
                    &format!("TCP6-LISTEN:{p},fork,reuseaddr"),
                    &format!("SYSTEM:echo open {p}"),
                ],
            )
        })
        .collect()
}

fn stop_capture(mut child: std::process::Child) {
    std::thread::sleep(Duration::from_millis(500));
    ipoe_tests::terminate(&mut child);
}

/// Check 2: an unsolicited TCP connection from the internet is refused
/// before the host sees a SYN; LAN-initiated TCP, UDP and ping work both
/// ways; a UDP session expires after its idle timeout.
#[test]
fn unsolicited_is_refused_and_lan_initiated_works() {
    let mut lab = Lab::up(1);
    let cfg = config(&lab, "  timeouts: { udp: 4, udp_stream: 4 }\n");
    lab.start_ipoed(&cfg);
    let _listeners = listen(&lab, "lan1", &[8081]);

    // LAN-initiated, both families, both directions of each exchange.
    assert!(lab.fetch_within(
        "lan1",
        "http://198.51.100.10/hello.txt",
        Duration::from_secs(10)
    ));
    assert!(lab.fetch("lan1", "http://[2001:db8:ffff::10]/hello.txt"));
    for (server, ping) in [(V4_SERVER, "ping"), (V6_SERVER, "ping")] {
        let r = lab.exec("lan1", &[ping, "-c", "3", "-i", "0.2", "-W", "2", server]);
        assert!(r.ok, "ping {server}: {}{}", r.stdout, r.stderr);
    }
    for server in [V4_SERVER, V6_SERVER] {
        let to = if server.contains(':') {
            format!("UDP6:[{server}]:7")
        } else {
            format!("UDP4:{server}:7")
        };
        let r = sh(
            &lab,
            "lan1",
            &format!("echo udp-echo-{server} | socat -T2 - {to},sourceport=40000"),
        );
        assert_eq!(
            r.stdout.trim(),
            format!("udp-echo-{server}"),
            "UDP echo via {server}: {}",
            r.stderr
        );
    }

    // The UDP session to the v6 echo server exists, then expires at 4 s idle.
    let q = ["--proto", "udp", "--host", V6_SERVER];
    let s = sessions(&lab, &q);
    assert!(
        s["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|x| x["inside_port"] == 40000
                && x["outside_port"] == 7
                && x["state"] == "udp-stream"),
        "UDP session listed: {s}"
    );
    let expired_before = fw(&lab)["sessions"]["expired"].as_u64().unwrap_or(0);
    let gone = lab.wait_for(Duration::from_secs(10), || {
        sessions(&lab, &q)["matched"].as_u64() == Some(0)
    });
    assert!(
        gone.is_some(),
        "UDP session still there: {}",
        sessions(&lab, &q)
    );
    // The listing hides a session once it is idle past its timeout; the
    // control thread frees and counts it on its next once-a-second pass.
    let counted = lab.wait_for(Duration::from_secs(3), || {
        fw(&lab)["sessions"]["expired"].as_u64().unwrap_or(0) > expired_before
    });
    assert!(counted.is_some(), "expired not counted: {}", fw(&lab));
    // Now a datagram from the server's port 7 to the old port is unsolicited.
    let before = lab.error_count("ip6-firewall", "no-session");
    // The echo server holds port 7, so send from a raw socket (the kernel
    // fills in the UDP checksum: IPV6_CHECKSUM at offset 6).
    let late = format!(
        "import socket,struct\n\
         s=socket.socket(socket.AF_INET6,socket.SOCK_RAW,socket.IPPROTO_UDP)\n\
         s.setsockopt(socket.IPPROTO_IPV6,7,6)\n\
         s.sendto(struct.pack('!HHHH',7,40000,12,0)+b'late',('{LAN1_V6}',0))\n"
    );
    let r = lab.exec("inet", &["python3", "-c", &late]);
    assert!(r.ok, "raw send: {}", r.stderr);
    assert!(
        lab.wait_for(Duration::from_secs(3), || lab
            .error_count("ip6-firewall", "no-session")
            > before)
            .is_some(),
        "a datagram after the session expired must be dropped"
    );

    // The internet tries the LAN host: no SYN may reach it.
    let pcap = lab.run_dir.join("fw-lan1.pcap").display().to_string();
    let cap = lab.tshark_capture("lan1", "eth0", "tcp port 8081 or icmp6", &pcap);
    let before = lab.error_count("ip6-firewall", "no-session");
    for _ in 0..3 {
        assert_eq!(
            lab.tcp6_connect("inet", LAN1_V6, 8081),
            None,
            "unsolicited connection got through"
        );
    }
    let r = lab.exec("inet", &["ping", "-6", "-c", "2", "-W", "1", LAN1_V6]);
    assert!(!r.ok, "unsolicited echo request answered: {}", r.stdout);
    stop_capture(cap);
    assert_eq!(
        lab.tshark_count("lan1", &pcap, "tcp.port == 8081"),
        0,
        "a SYN reached the host"
    );
    assert_eq!(
        lab.tshark_count("lan1", &pcap, "icmpv6.type == 128"),
        0,
        "an echo request reached the host"
    );
    let dropped = lab.error_count("ip6-firewall", "no-session") - before;
    // socat and the kernel retransmit SYNs: at least one per attempt, plus the pings.
    assert!(dropped >= 5, "no-session counted {dropped}");
    let ring = fw(&lab)["recent_drops"].clone();
    assert!(
        ring.as_array()
            .into_iter()
            .flatten()
            .any(|e| e["reason"] == "no-session" && e["dport"] == 8081),
        "the drop ring shows the refused SYN: {ring}"
    );
    let log = lab.ipoed_log();
    assert!(
        log.contains("ip6-firewall/no-session: tcp"),
        "drop logged:\n{log}"
    );
}

/// Check 2: a pinhole opens exactly its port, and follows the host (named
/// by its interface identifier) when the delegated prefix changes.
#[test]
fn pinhole_opens_its_port_and_follows_renumbering() {
    let mut lab = Lab::fresh(1);
    lab.restart_dhcp6(SHORT_PD_LEASE);
    let cfg = format!(
        "wan:\n  interface: wan0\n\
         lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    subnet_id: 1\n\
         \x20   ra: {{ interval: 30 }}\n\
         dslite:\n  aftr: aftr.lab.example\n\
         control:\n  socket: {}\n  state_dir: {}\n  log_level: debug\n\
         firewall:\n  pinholes:\n    - {{ host: \"::ff:fe00:104\", proto: tcp, port: 8080 }}\n",
        lab.socket.display(),
        lab.state_dir().display()
    );
    lab.start_ipoed(&cfg);
    lab.lanhost("lan4", &[]);
    let old = "2001:db8:0:111:0:ff:fe00:104";
    let has = |a: &str| {
        lab.exec("lan4", &["ip", "-6", "addr", "show", "dev", "eth0"])
            .stdout
            .contains(a)
    };
    assert!(
        lab.wait_for(Duration::from_secs(30), || has(old)).is_some(),
        "lan4 got no SLAAC address\n{}",
        lab.ipoed_log()
    );
    let _l = listen(&lab, "lan4", &[8080, 8081]);
    std::thread::sleep(Duration::from_millis(300));

    let opened = lab.wait_for(Duration::from_secs(10), || {
        lab.tcp6_connect("inet", old, 8080)
            .is_some_and(|s| s.contains("open 8080"))
    });
    assert!(
        opened.is_some(),
        "pinhole port 8080 not reachable\n{}",
        lab.ipoed_log()
    );
    assert_eq!(
        lab.tcp6_connect("inet", old, 8081),
        None,
        "8081 is not in the pinhole"
    );
    assert!(lab.error_count("ip6-firewall", "pinhole-opened") >= 1);

    // Renumber: the same interface identifier under the new prefix.
    let mut renumber = vec!["--pool", "2001:db8:0:120::/60"];
    renumber.extend_from_slice(SHORT_PD_LEASE);
    lab.restart_dhcp6(&renumber);
    let new = "2001:db8:0:121:0:ff:fe00:104";
    assert!(
        lab.wait_for(Duration::from_secs(45), || has(new)).is_some(),
        "lan4 was not renumbered"
    );
    let t0 = Instant::now();
    let followed = lab.wait_for(Duration::from_secs(20), || {
        lab.tcp6_connect("inet", new, 8080)
            .is_some_and(|s| s.contains("open 8080"))
    });
    assert!(
        followed.is_some(),
        "pinhole did not follow the host to {new}\n{}",
        lab.ipoed_log()
    );
    eprintln!(
        "pinhole reachable at the new prefix {:?} after lan4 had the address",
        t0.elapsed()
    );
    assert_eq!(lab.tcp6_connect("inet", new, 8081), None);
}

/// Checks 3 and 5: 20 MB through DS-Lite to a host with MTU 1500 (MSS
/// clamping), 1472-byte payloads without DF both ways (our outer
/// fragmentation, the AFTR's reassembly; the AFTR's fragmentation, our
/// reassembly), fragmentation-needed 1460 with DF, and tshark reading the
/// clamped SYNs and our fragments without a warning.
#[test]
fn big_packets_cross_the_tunnel() {
    let mut lab = Lab::up(1);
    let cfg = config(&lab, "  log_drops: true\n");
    lab.start_ipoed(&cfg);
    assert!(lab.fetch_within(
        "lan1",
        "http://198.51.100.10/hello.txt",
        Duration::from_secs(10)
    ));
    let pcap = lab.run_dir.join("fw-wan.pcap").display().to_string();
    let cap = lab.tshark_capture("hgw", "down0", "ip6", &pcap);

    // 20 MB download, checked end to end.
    let want =
        std::fs::read_to_string(lab.run_dir.join("www/blob20.bin.sha256")).unwrap_or_default();
    let want = want.split_whitespace().next().unwrap_or("?").to_owned();
    let t0 = Instant::now();
    let r = sh(
        &lab,
        "lan1",
        "curl -sS --max-time 120 http://198.51.100.10/blob20.bin | sha256sum",
    );
    assert_eq!(
        r.stdout.split_whitespace().next(),
        Some(want.as_str()),
        "20 MB via DS-Lite: {}",
        r.stderr
    );
    eprintln!("20 MB through DS-Lite in {:?}", t0.elapsed());

    // 1472 bytes of ICMP payload without DF: 1500-byte IPv4 packets both ways.
    let frag_before = lab.error_count("ip6-fragment", "fragmented");
    let r = lab.exec(
        "lan1",
        &[
            "ping", "-M", "dont", "-s", "1472", "-c", "3", "-i", "0.3", "-W", "2", V4_SERVER,
        ],
    );
    assert!(
        r.stdout.contains("3 received"),
        "1500-byte pings: {}{}",
        r.stdout,
        r.stderr
    );
    // 1472-byte UDP payload without DF, echoed back, compared byte for byte.
    let py = format!(
        "import socket,os\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.IPPROTO_IP,10,0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: no DF\n\
         s.settimeout(3)\n\
         ok=0\n\
         for i in range(3):\n\
         \x20   d=os.urandom(1472)\n\
         \x20   s.sendto(d,('{V4_SERVER}',7))\n\
         \x20   r,_=s.recvfrom(4096)\n\
         \x20   ok+= r==d\n\
         print('echoed',ok)\n"
    );
    let r = lab.exec("lan1", &["python3", "-c", &py]);
    assert_eq!(
        r.stdout.trim(),
        "echoed 3",
        "1472-byte UDP without DF: {}",
        r.stderr
    );
    let fragmented = lab.error_count("ip6-fragment", "fragmented") - frag_before;
    assert!(fragmented >= 6, "we fragmented {fragmented} outer packets");
    let reassembled = lab.error_count("ip6-reassembly", "buffered");
    assert!(
        reassembled >= 6,
        "we buffered {reassembled} outer fragments from the AFTR"
    );
    let aftr = lab.aftr_stats();
    assert_eq!(aftr["errors_total"], 0, "AFTR errors: {aftr}");

    // With DF the sender learns the tunnel MTU from us.
    let r = lab.exec(
        "lan1",
        &[
            "ping", "-M", "do", "-s", "1472", "-c", "1", "-W", "2", V4_SERVER,
        ],
    );
    assert!(
        r.stdout.contains("mtu = 1460")
            || r.stderr.contains("mtu = 1460")
            || r.stderr.contains("mtu=1460"),
        "frag-needed 1460: {}{}",
        r.stdout,
        r.stderr
    );
    stop_capture(cap);

    // What tshark makes of our frames on the WAN wire.
    let ours = "eth.src == 02:00:00:00:02:02";
    let syn = lab.tshark_count(
        "hgw",
        &pcap,
        &format!("{ours} && tcp.flags.syn == 1 && tcp.options.mss_val == 1420"),
    );
    assert!(syn >= 1, "no SYN with MSS 1420 from us");
    let synack = lab.tshark_count(
        "hgw",
        &pcap,
        "tcp.flags.syn == 1 && tcp.flags.ack == 1 && tcp.options.mss_val > 1420",
    );
    assert!(
        synack >= 1,
        "the server's SYN-ACK crossed the WAN with its own MSS (clamped after decapsulation)"
    );
    let frags = lab.tshark_count("hgw", &pcap, &format!("{ours} && ipv6.fragment"));
    assert!(frags >= 6, "tshark saw {frags} fragment frames from us");
    let reass = lab.tshark_count("hgw", &pcap, &format!("{ours} && ipv6.reassembled.length"));
    assert!(reass >= 3, "tshark reassembled {reass} of our datagrams");
    let warn = lab.tshark_warnings("hgw", &pcap, ours);
    assert!(warn.is_empty(), "tshark warnings on our frames:\n{warn}");
}

/// Check 4: a million new flows from a LAN host keep the session table at
/// its bound (evictions counted) while an established TCP stream keeps
/// flowing; a scan of the LAN /64 from the internet neither grows the
/// neighbor table nor evicts a live neighbor.
#[test]
fn flood_and_scan_stay_within_bounds() {
    let mut lab = Lab::up(1);
    let cap = 65_536u64;
    let cfg = config(&lab, &format!("  max_sessions: {cap}\n  log_drops: true\n"));
    lab.start_ipoed(&cfg);
    assert!(lab.fetch_within(
        "lan1",
        "http://[2001:db8:ffff::10]/hello.txt",
        Duration::from_secs(10)
    ));

    // The established stream: 20 MB at 1 MB/s, about 20 s, outlasting the flood.
    let want =
        std::fs::read_to_string(lab.run_dir.join("www/blob20.bin.sha256")).unwrap_or_default();
    let want = want.split_whitespace().next().unwrap_or("?").to_owned();
    let out = lab.run_dir.join("stream.sha256");
    let mut stream = lab.spawn(
        "lan1",
        &[
            "sh",
            "-c",
            &format!(
                "curl -sS --max-time 60 --limit-rate 1M -g 'http://[{V6_SERVER}]/blob20.bin' | sha256sum > {}",
                out.display()
            ),
        ],
    );
    std::thread::sleep(Duration::from_secs(1));

    // One million distinct UDP flows (ports) from lan1's address, 100 kpps.
    let gen = lab.exec(
        "lan1",
        &[
            bin("ipoe-bench").to_str().unwrap_or("ipoe-bench"),
            "pktgen",
            "tx",
            "--iface",
            "eth0",
            "--traffic",
            "ipv6",
            "--src",
            LAN1_V6,
            "--dst",
            V6_SERVER,
            "--src-mac",
            "02:00:00:00:01:10",
            "--dst-mac",
            "02:00:00:00:02:01",
            "--flows",
            "1000000",
            "--count",
            "1000000",
            "--rate",
            "100000",
            "--size",
            "64",
        ],
    );
    assert!(gen.ok, "pktgen: {}\n{}", gen.stdout, gen.stderr);
    let st = fw(&lab)["sessions"].clone();
    eprintln!("after 1M new flows: {st}");
    let active = st["active"].as_u64().unwrap_or(0);
    assert!(active <= cap, "table above its bound: {st}");
    assert!(
        active >= cap * 9 / 10,
        "table not filled by the flood: {st}"
    );
    assert!(
        st["evicted"].as_u64().unwrap_or(0) >= 1_000_000 - cap - 1000,
        "evictions not counted: {st}"
    );

    // The stream is still running: its session is established and was
    // never evicted, however many new flows came.
    let tcp = sessions(&lab, &["--proto", "tcp", "--host", V6_SERVER]);
    assert!(
        tcp["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["outside_port"] == 80 && s["state"] == "established"),
        "the stream's session survived the flood: {tcp}"
    );
    let done = lab.wait_for(Duration::from_secs(60), || {
        std::fs::read_to_string(&out).is_ok_and(|s| !s.trim().is_empty())
    });
    let _ = stream.wait();
    assert!(done.is_some(), "the stream did not finish");
    let got = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(
        got.split_whitespace().next(),
        Some(want.as_str()),
        "the established stream was cut or corrupted"
    );

    // A scan of the LAN /64 from the internet: 20000 random addresses.
    let neighbors = |lab: &Lab| {
        lab.ctl_json(&["show", "neighbors"])["neighbors"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let lan1_known = |n: &[Value]| {
        n.iter()
            .any(|e| e["ip"] == "192.168.2.10" || e["ip"] == LAN1_V6)
    };
    let before = neighbors(&lab);
    assert!(
        lan1_known(&before),
        "lan1 should be a known neighbor: {before:?}"
    );
    let drops_before = lab.error_count("ip6-firewall", "no-session");
    let scan = "import socket,random\n\
                s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n\
                r=random.Random(6)\n\
                for i in range(20000):\n\
                \x20   a='2001:db8:0:111:%x:%x:%x:%x'%tuple(r.getrandbits(16) for _ in range(4))\n\
                \x20   s.sendto(b'scan',(a,9))\n";
    let r = lab.exec("inet", &["python3", "-c", scan]);
    assert!(r.ok, "scan: {}", r.stderr);
    std::thread::sleep(Duration::from_secs(1));
    let dropped = lab.error_count("ip6-firewall", "no-session") - drops_before;
    assert!(
        dropped >= 19_000,
        "scan packets dropped by the firewall: {dropped}"
    );
    let after = neighbors(&lab);
    assert!(
        after.len() <= before.len() + 2,
        "neighbor table grew: {} -> {}",
        before.len(),
        after.len()
    );
    assert!(lan1_known(&after), "a live neighbor was evicted: {after:?}");
    assert!(lab.fetch("lan1", "http://[2001:db8:ffff::10]/hello.txt"));
}
