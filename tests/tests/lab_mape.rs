//! MAP-E with the real ipoed (issue 18): the router takes a /56 from hgw
//! inside the lab rule (tests/lab/br.py's `v6plus-lab`: 2001:db8:4d00::/40,
//! 192.0.2.0/24, EA 16, offset 4), derives its shared IPv4 address and
//! port set, translates the LAN into it and tunnels to br.py, which checks
//! every packet independently (outer source = the CE address the rule gives
//! the inner source and port) and counts what is wrong.
//!
//! The vector is worked out by hand (RFC 7597 5.1-6, JP legacy IID), not
//! taken from ipoed or br.py: 2001:db8:4d12:3400::/56 -> EA bits 0x1234 ->
//! IPv4 192.0.2.18, PSID 0x34 = 52, CE 2001:db8:4d12:3400:c0:2:1200:3400,
//! ports (A << 12) | (52 << 4) | j for A = 1..15, j = 0..15.

use std::collections::BTreeSet;
use std::time::Duration;

use ipoe_tests::{Lab, SHORT_PD_LEASE};
use serde_json::Value;

const POOL: &str = "2001:db8:4d12:3400::/56";
const CE: &str = "2001:db8:4d12:3400:c0:2:1200:3400";
const SHARED: &str = "192.0.2.18";
const SERVER: &str = "198.51.100.10";

fn in_set(port: u16) -> bool {
    port >> 12 != 0 && (port >> 4) & 0xff == 52
}

/// `map_e_extra`: lines indented under `map_e:`; `extra`: top-level keys.
fn config_with(lab: &Lab, map_e_extra: &str, extra: &str) -> String {
    format!(
        "wan:\n  interface: wan0\n  ipv6:\n    slaac: true\n    dhcpv6_pd: {{ prefix_hint: 56 }}\n\
         lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    subnet_id: 1\n\
         map_e:\n  br: 2001:db8:77:bb::1\n  rule: {{ ipv6_prefix: \"2001:db8:4d00::/40\", ipv4_prefix: \"192.0.2.0/24\", ea_length: 16, psid_offset: 4 }}\n{map_e_extra}\
         dataplane:\n  workers: 1\n\
         control:\n  socket: {}\n  state_dir: {}\n  log_level: debug\n{extra}",
        lab.socket.display(),
        lab.state_dir().display()
    )
}

/// The lab with br.py, hgw delegating the /56 and ipoed running MAP-E;
/// returns once lan1 reaches the server through it.
fn mape_lab(dhcp6: &[&str], extra: &str) -> Lab {
    mape_lab_with(dhcp6, "", extra)
}

/// `mape_lab` with `config_with`'s `map_e_extra`.
fn mape_lab_with(dhcp6: &[&str], map_e_extra: &str, extra: &str) -> Lab {
    let mut lab = Lab::fresh(1);
    lab.br_start(&["--rule", "v6plus-lab"]);
    let mut args = vec!["--pool", POOL];
    args.extend_from_slice(dhcp6);
    lab.restart_dhcp6(&args);
    let cfg = config_with(&lab, map_e_extra, extra);
    lab.start_ipoed(&cfg);
    assert!(
        lab.fetch_within(
            "lan1",
            &format!("http://{SERVER}/hello.txt"),
            Duration::from_secs(30)
        ),
        "lan1 never reached the server over MAP-E; ipoed log:\n{}\nbr.log:\n{}",
        lab.ipoed_log(),
        std::fs::read_to_string(lab.run_dir.join("br.log")).unwrap_or_default()
    );
    lab
}

fn ports_of(stats: &Value, proto: &str) -> Vec<u16> {
    stats["ces"][CE]["ports"][proto]
        .as_array()
        .unwrap_or_else(|| panic!("br.py saw no {proto} from {CE}: {}", stats["ces"]))
        .iter()
        .map(|p| p.as_u64().unwrap() as u16)
        .collect()
}

/// Opens `n` UDP sockets in `ns`, all at once, sends one datagram from
/// each to the server's echo (paced, so the lab's socat echo keeps up;
/// unanswered ones are sent again for 10 s); returns how many got their
/// echo back. With `base` > 0 the sockets use the local ports `base..`,
/// so two batches never share a LAN endpoint (whose mapping the second
/// would rightly reuse, RFC 4787 REQ-1); 0: ephemeral ports.
fn udp_flows(lab: &Lab, ns: &str, n: usize, base: u16) -> usize {
    let script = format!(
        r#"
import socket, time, select
socks = []
for i in range({n}):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", {base} + i if {base} else 0))
    socks.append(s)
for i, s in enumerate(socks):
    s.sendto(b"flow %d" % i, ("{SERVER}", 7))
    time.sleep(0.01)
got = set()
deadline = time.time() + 10
while len(got) < len(socks) and time.time() < deadline:
    r, _, _ = select.select([s for s in socks if s.fileno() not in got], [], [], 0.5)
    for s in r:
        s.recv(100)
        got.add(s.fileno())
    if not r:
        for s in socks:
            if s.fileno() not in got:
                s.sendto(b"again", ("{SERVER}", 7))
                time.sleep(0.01)
print(len(got))
"#
    );
    let r = lab.exec(ns, &["python3", "-c", &script]);
    assert!(r.ok, "{}", r.stderr);
    r.stdout.trim().parse().unwrap_or(0)
}

/// 20 MB over HTTP arrive intact, the server sees the shared address,
/// ping works, and br.py finds every packet from the CE address with
/// ports of the set.
#[test]
fn mape_http_and_ping_through_the_br() {
    let lab = mape_lab(&[], "");
    assert!(
        lab.ipoed_log()
            .contains(&format!("IPv4 {SHARED} PSID 52 (240 ports")),
        "the derived values are logged: {}",
        lab.ipoed_log()
    );
    let want = std::fs::read_to_string(lab.run_dir.join("www/blob20.bin.sha256")).unwrap();
    let t0 = std::time::Instant::now();
    let r = lab.exec(
        "lan1",
        &[
            "sh",
            "-c",
            &format!("curl -sS --max-time 120 http://{SERVER}/blob20.bin | sha256sum"),
        ],
    );
    assert_eq!(
        r.stdout.split_whitespace().next(),
        want.split_whitespace().next(),
        "20 MB over MAP-E: {}",
        r.stderr
    );
    eprintln!("20 MB over MAP-E in {:?}", t0.elapsed());
    let log = std::fs::read_to_string(lab.run_dir.join("http-access.log")).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("::ffff:{SHARED}")) && l.contains("blob20.bin")),
        "the server logs the shared address: {log}"
    );

    let r = lab.exec("lan1", &["ping", "-c", "3", "-i", "0.3", "-W", "2", SERVER]);
    assert!(r.ok, "ping over MAP-E: {}\n{}", r.stdout, r.stderr);

    let stats = lab.br_stats();
    assert_eq!(stats["violations_total"], 0, "{}", stats["violations"]);
    let tcp = ports_of(&stats, "tcp");
    assert!(
        !tcp.is_empty() && tcp.iter().all(|p| in_set(*p)),
        "TCP ports: {tcp:?}"
    );
    assert!(
        stats["encap_bytes"].as_u64().unwrap() > 20_000_000,
        "{stats}"
    );
}

/// 200 concurrent UDP flows from lan1 (the set has 240 ports) leave with
/// 200 distinct ports, all inside the set, and each gets its echo back.
#[test]
fn mape_concurrent_udp_flows_get_distinct_ports_in_the_set() {
    let lab = mape_lab(&[], "");
    const FLOWS: usize = 200;
    let answered = udp_flows(&lab, "lan1", FLOWS, 0);
    let stats = lab.br_stats();
    assert_eq!(stats["violations_total"], 0, "{}", stats["violations"]);
    let udp = ports_of(&stats, "udp");
    let distinct: BTreeSet<u16> = udp.iter().copied().collect();
    assert!(
        udp.iter().all(|p| in_set(*p)),
        "ports outside the set: {:?}",
        udp.iter().filter(|p| !in_set(**p)).collect::<Vec<_>>()
    );
    assert!(
        distinct.len() >= FLOWS,
        "{} distinct UDP ports for {FLOWS} flows: {distinct:?}",
        distinct.len()
    );
    assert_eq!(answered, FLOWS, "flows answered");

    // ipoectl sees the same: the ports in use, all of lan1's, and each
    // session's translation is one of the ports br.py saw.
    let map = lab.ctl_json(&["show", "map"]);
    assert_eq!(map["ipv4"], SHARED, "{map}");
    assert_eq!(map["psid"], 52);
    assert_eq!(map["ports"], 240);
    assert_eq!(map["port_runs"][0], "4928-4943");
    assert!(
        map["in_use"]["udp"].as_u64().unwrap() >= FLOWS as u64,
        "{map}"
    );
    assert_eq!(map["hosts"][0]["host"], "192.168.2.10", "{map}");
    assert!(
        map["hosts"][0]["udp"].as_u64().unwrap() >= FLOWS as u64,
        "{map}"
    );
    assert_eq!(map["exhausted"], 0);
    let text = lab.ctl(&["show", "map"]).stdout;
    assert!(
        text.contains("192.0.2.18 (shared: yes)") && text.contains("192.168.2.10"),
        "{text}"
    );
    let sessions = lab.ctl_json(&["show", "sessions", "--proto", "udp", "--host", SERVER]);
    let translated: BTreeSet<u16> = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["outside_port"] == 7)
        .map(|s| {
            assert_eq!(s["translated"]["address"], SHARED, "{s}");
            s["translated"]["port"].as_u64().unwrap() as u16
        })
        .collect();
    assert_eq!(
        translated, distinct,
        "show sessions' translations vs br.py's ports"
    );
}

/// A new delegated prefix moves the CE address, the IPv4 address and the
/// PSID without a restart, and traffic resumes on the new set.
/// 2001:db8:4d56:7800::/56 -> EA 0x5678 -> 192.0.2.86, PSID 0x78 = 120.
#[test]
fn mape_prefix_change_moves_ce_ipv4_and_psid() {
    let lab = mape_lab(SHORT_PD_LEASE, "");
    let pid = lab.ipoed_pid();
    let mut renumber = vec!["--pool", "2001:db8:4d56:7800::/56"];
    renumber.extend_from_slice(SHORT_PD_LEASE);
    lab.restart_dhcp6(&renumber);
    let moved = lab.wait_for(Duration::from_secs(60), || {
        let m = lab.ctl_json(&["show", "map"]);
        m["ipv4"] == "192.0.2.86" && m["psid"] == 120
    });
    assert!(
        moved.is_some(),
        "the mapping did not move: {}\n{}",
        lab.ctl_json(&["show", "map"]),
        lab.ipoed_log()
    );
    let map = lab.ctl_json(&["show", "map"]);
    let new_ce = "2001:db8:4d56:7800:c0:2:5600:7800";
    assert_eq!(map["ce_address"], new_ce);
    assert_eq!(map["prefix_changes"], 1);
    assert!(
        lab.fetch_within(
            "lan1",
            &format!("http://{SERVER}/hello.txt"),
            Duration::from_secs(20)
        ),
        "no IPv4 after the prefix change\n{}\n{}\nbr.log:\n{}",
        lab.ctl(&["show", "errors"]).stdout,
        lab.ctl(&["show", "tunnel"]).stdout,
        std::fs::read_to_string(lab.run_dir.join("br.log")).unwrap_or_default()
    );
    let r = lab.exec("lan1", &["ping", "-c", "2", "-i", "0.3", "-W", "2", SERVER]);
    assert!(r.ok, "ping after the prefix change: {}", r.stdout);
    assert_eq!(lab.ipoed_pid(), pid, "no restart");
    let stats = lab.br_stats();
    assert_eq!(stats["violations_total"], 0, "{}", stats["violations"]);
    let tcp: Vec<u64> = stats["ces"][new_ce]["ports"]["tcp"]
        .as_array()
        .unwrap_or_else(|| panic!("br.py saw nothing from {new_ce}: {}", stats["ces"]))
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert!(
        !tcp.is_empty() && tcp.iter().all(|p| p >> 12 != 0 && (p >> 4) & 0xff == 120),
        "new set's TCP ports: {tcp:?}"
    );
    let log = lab.ipoed_log();
    assert!(
        log.contains("IPv4 192.0.2.86 PSID 120 (240 ports"),
        "the new mapping is logged"
    );
}

/// A line without PD: the end-user prefix is the WAN /64, so the CE
/// address is on-link there. hgw is given that /64 on its side of the
/// link, so it resolves the CE address by NS instead of routing the rule
/// prefix to the router: traffic comes back only if ipoed answers for
/// (and so owns) the CE address on the WAN.
#[test]
fn mape_without_pd_answers_for_the_on_link_ce_address() {
    let mut lab = Lab::fresh(1);
    lab.br_start(&["--rule", "v6plus-lab"]);
    let r = lab.exec(
        "hgw",
        &[
            "ip",
            "-6",
            "addr",
            "add",
            "2001:db8:4d56:7800::1/64",
            "dev",
            "down0",
            "nodad",
        ],
    );
    assert!(r.ok, "{}", r.stderr);
    let cfg = format!(
        "wan:\n  interface: wan0\n  ipv6:\n    address: 2001:db8:4d56:7800::2/64\n    gateway: fe80::1\n    slaac: false\n    dhcpv6_pd: false\n\
         lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    prefix: 2001:db8:0:111::/64\n\
         map_e:\n  br: 2001:db8:77:bb::1\n  rule: {{ ipv6_prefix: \"2001:db8:4d00::/40\", ipv4_prefix: \"192.0.2.0/24\", ea_length: 16, psid_offset: 4 }}\n\
         dataplane:\n  workers: 1\n\
         control:\n  socket: {}\n  state_dir: {}\n  log_level: debug\n",
        lab.socket.display(),
        lab.state_dir().display()
    );
    lab.start_ipoed(&cfg);
    let ce = "2001:db8:4d56:7800:c0:2:5600:7800";
    assert!(
        lab.fetch_within(
            "lan1",
            &format!("http://{SERVER}/hello.txt"),
            Duration::from_secs(30)
        ),
        "no IPv4 over MAP-E on the WAN /64\n{}\n{}",
        lab.ctl(&["show", "errors"]).stdout,
        lab.ipoed_log()
    );
    let map = lab.ctl_json(&["show", "map"]);
    assert_eq!(map["end_user_prefix"], "2001:db8:4d56:7800::/64", "{map}");
    assert_eq!(map["ce_address"], ce);
    assert_eq!(map["ipv4"], "192.0.2.86");
    let neigh = lab.exec("hgw", &["ip", "-6", "neigh", "show", ce, "dev", "down0"]);
    assert!(
        neigh.stdout.contains("lladdr 02:00:00:00:02:02"),
        "hgw resolved the CE address to the router's WAN MAC: {:?}",
        neigh.stdout
    );
    let stats = lab.br_stats();
    assert_eq!(stats["violations_total"], 0, "{}", stats["violations"]);
}

/// The whole set in use: 120 UDP flows each from two LAN hosts take all
/// 240 ports, distinct and inside the set; 300 more are refused and
/// counted as exhaustion while ipoed stays up; once the sessions expire
/// and the ports have rested (120 s), new flows work again.
#[test]
fn mape_exhausted_set_refuses_counts_and_recovers() {
    let lab = mape_lab(
        &[],
        "firewall:\n  timeouts:\n    udp: 5\n    udp_stream: 5\n",
    );
    lab.lanhost("lan2", &["--ipv6", "off"]);
    for c in [
        "ip addr add 192.168.2.20/24 dev eth0",
        "ip route add default via 192.168.2.1",
    ] {
        let args: Vec<&str> = c.split(' ').collect();
        let r = lab.exec("lan2", &args);
        assert!(r.ok, "{c}: {}", r.stderr);
    }
    let t_full = std::time::Instant::now();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| udp_flows(&lab, "lan1", 120, 20000));
        let b = s.spawn(|| udp_flows(&lab, "lan2", 120, 20000));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((a, b), (120, 120), "flows answered per host");
    let stats = lab.br_stats();
    assert_eq!(stats["violations_total"], 0, "{}", stats["violations"]);
    let udp: BTreeSet<u16> = ports_of(&stats, "udp").into_iter().collect();
    assert_eq!(udp.len(), 240, "distinct UDP ports: {udp:?}");
    assert!(udp.iter().all(|p| in_set(*p)), "{udp:?}");

    // The set is full (in use or resting): everything new is refused.
    let more = udp_flows(&lab, "lan1", 300, 30000);
    assert_eq!(more, 0, "flows beyond the set were answered");
    let map = lab.ctl_json(&["show", "map"]);
    assert!(map["exhausted"].as_u64().unwrap() >= 300, "{map}");
    assert!(lab.error_count("nat44-out", "ports-exhausted") >= 300);
    assert!(lab.ipoed_alive(), "ipoed died");
    let udp_after: BTreeSet<u16> = ports_of(&lab.br_stats(), "udp").into_iter().collect();
    assert_eq!(udp_after, udp, "no port outside the 240 ever left");

    // Sessions (udp and udp-stream) expire after 5 s idle; their ports rest 120 s from the last
    // packet. Then a new flow gets a port again.
    let back = lab.wait_for(Duration::from_secs(200), || {
        udp_flows(&lab, "lan2", 1, 40000) == 1
    });
    assert!(
        back.is_some(),
        "no new flow after the ports rested: {}",
        lab.ctl_json(&["show", "map"])
    );
    let waited = t_full.elapsed();
    // The session clock counts whole seconds: allow a little below 120.
    assert!(
        waited >= Duration::from_secs(115),
        "a port came back before its 120 s rest: {waited:?}"
    );
    eprintln!("a new flow worked {waited:?} after the set filled");
}

/// An external port of the set (A = 1, j = 2: (1 << 12) | (52 << 4) | 2),
/// forwarded to lan2's TCP 8080.
const FORWARDED: u16 = 4930;
const LAN2: &str = "192.168.2.20";

fn forward_config() -> String {
    format!("  port_forwards:\n    - {{ proto: tcp, port: {FORWARDED}, to: \"{LAN2}:8080\" }}\n")
}

/// Asks until the answer comes (up to `secs`), for a lab still settling.
fn tcp_ask_within(lab: &Lab, ns: &str, addr: &str, port: u16, secs: u64) -> Result<String, String> {
    let mut last = Err(String::from("never asked"));
    lab.wait_for(Duration::from_secs(secs), || {
        last = lab.tcp_ask(ns, addr, port);
        last.is_ok()
    });
    last
}

/// A port forward from the internet: inet connects to the shared address
/// at a forwarded port of the set; br.py (stateless, by port) carries it
/// to the CE and ipoed to lan2's server, which sees inet's own address.
/// After a restart of ipoed the forward works again.
#[test]
fn mape_port_forward_reaches_a_lan_host_and_survives_a_restart() {
    let mut lab = mape_lab_with(&[], &forward_config(), "");
    lab.add_lan2_v4();
    let mut server = lab.tcp_server("lan2");
    let inet = "203.0.113.2";
    let r = tcp_ask_within(&lab, "inet", SHARED, FORWARDED, 15);
    assert_eq!(
        r,
        Ok(format!("server sees {inet}")),
        "inet -> {SHARED}:{FORWARDED}\n{}\n{}",
        lab.ctl(&["show", "errors"]).stdout,
        lab.ipoed_log()
    );

    let cfg = std::fs::read_to_string(lab.config_path()).unwrap();
    assert_eq!(lab.stop_ipoed().0, Some(0), "ipoed exits cleanly");
    lab.start_ipoed(&cfg);
    let r = tcp_ask_within(&lab, "inet", SHARED, FORWARDED, 30);
    assert_eq!(
        r,
        Ok(format!("server sees {inet}")),
        "after the restart\n{}\n{}",
        lab.ctl(&["show", "map"]).stdout,
        lab.ipoed_log()
    );
    let stats = lab.br_stats();
    assert_eq!(stats["violations_total"], 0, "{}", stats["violations"]);
    let tcp = ports_of(&stats, "tcp");
    assert!(
        tcp.contains(&FORWARDED),
        "the answers left from {FORWARDED}: {tcp:?}"
    );
    ipoe_tests::terminate(&mut server);
}

/// br.py's packet counters both ways.
fn br_packets(lab: &Lab) -> (u64, u64) {
    let s = lab.br_stats();
    (
        s["decap_ok"].as_u64().unwrap(),
        s["encap_ok"].as_u64().unwrap(),
    )
}

/// Hairpinning (RFC 4787 REQ-9, RFC 5382 REQ-8): lan1 reaches lan2's
/// forwarded port at the shared address; lan2 sees the shared address as
/// the source, and nothing of it goes through the tunnel to br.py.
#[test]
fn mape_hairpin_reaches_a_forwarded_lan_host_without_the_br() {
    let lab = mape_lab_with(&[], &forward_config(), "");
    lab.add_lan2_v4();
    let mut server = lab.tcp_server("lan2");
    let before = br_packets(&lab);
    let r = lab.tcp_ask("lan1", SHARED, FORWARDED);
    let after = br_packets(&lab);
    assert_eq!(
        r,
        Ok(format!("server sees {SHARED}")),
        "lan1 -> {SHARED}:{FORWARDED}\n{}\n{}",
        lab.ctl(&["show", "errors"]).stdout,
        lab.ipoed_log()
    );
    assert_eq!(after, before, "hairpinned packets went through br.py");
    let stats = lab.br_stats();
    assert_eq!(stats["violations_total"], 0, "{}", stats["violations"]);
    ipoe_tests::terminate(&mut server);
}

/// A 3000-byte UDP datagram (DF clear, so lan1 fragments it) goes to the
/// server's echo and comes back whole: ipoed translates the fragments
/// out (br.py checks each against the CE of its first fragment) and
/// matches the echo's fragments in; lan1 reassembles them.
///
/// lan1 fragments at its 1500-byte MTU, more than the tunnel's 1460:
/// ipoed's ip4-fragment cuts those pieces to the tunnel MTU before
/// encapsulating them (an outer IPv6 fragment is what br.py counts as
/// `inner-too-big`).
#[test]
fn mape_fragmented_udp_both_ways() {
    let lab = mape_lab(&[], "");
    let script = format!(
        r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: DF clear
s.settimeout(2)
msg = bytes((i * 7) % 251 for i in range(3000))
for _ in range(5):
    s.sendto(msg, ("{SERVER}", 7))
    try:
        got = s.recv(65535)
    except socket.timeout:
        continue
    print("same" if got == msg else "differs %d" % len(got))
    break
else:
    print("no echo")
"#
    );
    let r = lab.exec("lan1", &["python3", "-c", &script]);
    let stats = lab.br_stats();
    assert_eq!(
        r.stdout.trim(),
        "same",
        "{}\n{}\nbr: {}",
        r.stderr,
        lab.ctl(&["show", "errors"]).stdout,
        stats
    );
    assert_eq!(stats["violations_total"], 0, "{}", stats["violations"]);
    assert_eq!(stats["errors_total"], 0, "{}", stats["errors"]);
    assert!(
        stats["decap_fragments"].as_u64().unwrap() >= 3,
        "the datagram left in fragments: {stats}"
    );
    assert!(
        stats["encap_fragments"].as_u64().unwrap() >= 3,
        "the echo came back in fragments: {stats}"
    );
    assert!(lab.error_count("ip4-fragment", "fragmented") >= 2);
    assert_eq!(lab.error_count("ip6-fragment", "fragmented"), 0);
}

/// Issue 18 (control side): hgw holds the on-link CE address, so ipoed's
/// DAD for it fails. ipoed withdraws it (RFC 4862 5.4.5: no tunnel from an
/// address another node holds), shows why in `show map`, logs it once, and
/// tries DAD again after 60 s: hgw has let go by then, so the address
/// passes and IPv4 works again without a restart.
#[test]
fn mape_duplicate_ce_address_is_withdrawn_shown_and_retried() {
    let mut lab = Lab::fresh(1);
    lab.br_start(&["--rule", "v6plus-lab"]);
    let ce = "2001:db8:4d56:7800:c0:2:5600:7800";
    for addr in ["2001:db8:4d56:7800::1/64", &format!("{ce}/64")] {
        let r = lab.exec(
            "hgw",
            &["ip", "-6", "addr", "add", addr, "dev", "down0", "nodad"],
        );
        assert!(r.ok, "{}", r.stderr);
    }
    let cfg = format!(
        "wan:\n  interface: wan0\n  ipv6:\n    address: 2001:db8:4d56:7800::2/64\n    gateway: fe80::1\n    slaac: false\n    dhcpv6_pd: false\n\
         lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    prefix: 2001:db8:0:111::/64\n\
         map_e:\n  br: 2001:db8:77:bb::1\n  rule: {{ ipv6_prefix: \"2001:db8:4d00::/40\", ipv4_prefix: \"192.0.2.0/24\", ea_length: 16, psid_offset: 4 }}\n\
         dataplane:\n  workers: 1\n\
         control:\n  socket: {}\n  state_dir: {}\n  log_level: debug\n",
        lab.socket.display(),
        lab.state_dir().display()
    );
    lab.start_ipoed(&cfg);
    let found = lab.wait_for(Duration::from_secs(20), || {
        lab.ctl_json(&["show", "map"])["dad"]["state"] == "duplicate"
    });
    assert!(
        found.is_some(),
        "DAD did not find hgw's copy: {}\n{}",
        lab.ctl_json(&["show", "map"]),
        lab.ipoed_log()
    );
    let map = lab.ctl_json(&["show", "map"]);
    assert_eq!(map["ce_address"], ce);
    assert_eq!(map["dad"]["reason"], "dad-failed", "{map}");
    assert_eq!(map["dad"]["conflicts"], 1, "{map}");
    assert_eq!(map["tunnel_up"], false);
    let text = lab.ctl(&["show", "map"]).stdout;
    assert!(text.contains("DUPLICATE (dad-failed)"), "{text}");
    let tunnel = lab.ctl_json(&["show", "tunnel"]);
    assert_eq!(tunnel["up"], false, "no tunnel from a duplicate: {tunnel}");
    assert_eq!(tunnel["kind"], "map-e");
    assert!(
        !lab.fetch("lan1", &format!("http://{SERVER}/hello.txt")),
        "IPv4 left from an address hgw holds"
    );

    // hgw lets go; the retry (60 s after the conflict) passes DAD.
    let r = lab.exec(
        "hgw",
        &[
            "ip",
            "-6",
            "addr",
            "del",
            &format!("{ce}/64"),
            "dev",
            "down0",
        ],
    );
    assert!(r.ok, "{}", r.stderr);
    let back = lab.wait_for(Duration::from_secs(90), || {
        lab.ctl_json(&["show", "map"])["dad"]["state"] == "ok"
    });
    assert!(
        back.is_some(),
        "the CE address did not come back: {}\n{}",
        lab.ctl_json(&["show", "map"]),
        lab.ipoed_log()
    );
    assert!(
        lab.fetch_within(
            "lan1",
            &format!("http://{SERVER}/hello.txt"),
            Duration::from_secs(20)
        ),
        "no IPv4 after the CE address came back\n{}\n{}",
        lab.ctl(&["show", "errors"]).stdout,
        lab.ipoed_log()
    );
    let map = lab.ctl_json(&["show", "map"]);
    assert_eq!(
        (
            map["dad"]["conflicts"].as_u64(),
            map["dad"]["retries"].as_u64()
        ),
        (Some(1), Some(1)),
        "{map}"
    );
    assert_eq!(map["tunnel_up"], true);
    let tunnel = lab.ctl_json(&["show", "tunnel"]);
    assert_eq!(tunnel["br"], "2001:db8:77:bb::1", "{tunnel}");
    assert_eq!(tunnel["aftr"], Value::Null, "{tunnel}");
    let log = lab.ipoed_log();
    assert_eq!(log.matches("is held by another node").count(), 1, "{log}");
    let stats = lab.br_stats();
    assert_eq!(stats["violations_total"], 0, "{}", stats["violations"]);
}
