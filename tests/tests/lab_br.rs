//! The lab's MAP-E Border Relay emulator (tests/lab/br.py), checked on its
//! own before any ipoed MAP-E test trusts it: no ipoed runs. The router
//! namespace plays the CEs (their addresses on wan0, packets crafted by
//! tests/lab/brce.py); every address and port below is this file's own
//! vector, worked out by hand from RFC 7597 (sections 5.1, 5.2, 6) and
//! the JP "legacy" Interface-ID, not taken from br.py.
//!
//! Correct packets must reach the inet server and its answers come back
//! encapsulated to the right CE, chosen by port even when CEs share an
//! IPv4 address; wrong ones must be dropped and counted under their own
//! name, and nothing else may be counted.

use std::collections::BTreeMap;
use std::time::Duration;

use ipoe_tests::Lab;
use serde_json::{json, Value};

const BR: &str = "2001:db8:77:bb::1";
const SERVER: &str = "198.51.100.10";
const ROUTER_WAN_LL: &str = "fe80::ff:fe00:202";

/// The ports of PSID `psid` with offset `a` and PSID length `k` (RFC 7597
/// 5.1): (A << (16-a)) | (psid << (16-a-k)) | j, A = 1..2^a-1.
fn port_set(psid: u32, a: u32, k: u32) -> Vec<u16> {
    let m = 16 - a - k;
    (1..(1u32 << a))
        .flat_map(|big_a| {
            (0..(1u32 << m)).map(move |j| ((big_a << (16 - a)) | (psid << m) | j) as u16)
        })
        .collect()
}

/// Makes the router namespace the CEs' host: the WAN link-local hgw routes
/// the rule prefix to, the CE addresses, a default route to hgw.
fn ce_host(lab: &Lab, addrs: &[&str]) {
    let mut cmds = vec![
        format!("ip -6 addr add {ROUTER_WAN_LL}/64 dev wan0 nodad"),
        "ip -6 route add default via fe80::1 dev wan0".to_owned(),
    ];
    cmds.extend(
        addrs
            .iter()
            .map(|a| format!("ip -6 addr add {a}/128 dev wan0 nodad")),
    );
    for c in cmds {
        let args: Vec<&str> = c.split(' ').collect();
        let r = lab.exec("router", &args);
        assert!(r.ok, "{c}: {}", r.stderr);
    }
}

/// A brce.py step (see tests/lab/brce.py): `kind` sent from outer source
/// `ce` with inner source `src`:`port`; `expect` "reply" or "none".
fn pkt(name: &str, kind: &str, ce: &str, src: &str, port: u16, expect: &str) -> Value {
    json!({"name": name, "kind": kind, "ce": ce, "src": src, "port": port, "expect": expect})
}

/// `spec` with the fields of `more` added.
fn with(mut spec: Value, more: Value) -> Value {
    for (k, v) in more.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

/// Which of a step's inner packets br.py must hand to the internet.
#[derive(Clone, Copy)]
enum Fwd {
    All,
    Nothing,
    /// The first fragment only (its later ones are refused).
    FirstOnly,
}

/// One brce.py step; `violation` is what br.py must count for it (None:
/// nothing) and `forwarded` what still goes through.
struct Step {
    spec: Value,
    violation: Option<&'static str>,
    forwarded: Fwd,
}

fn step(spec: Value) -> Step {
    Step {
        spec,
        violation: None,
        forwarded: Fwd::All,
    }
}

fn counted(spec: Value, violation: &'static str, forwarded: Fwd) -> Step {
    Step {
        spec,
        violation: Some(violation),
        forwarded,
    }
}

/// Runs the steps through brce.py in the router namespace; returns the
/// inner packets of the forwarded steps (what br.py must have decapsulated).
fn run_ce(lab: &Lab, steps: &[Step]) -> u64 {
    let specs: Vec<Value> = steps.iter().map(|s| s.spec.clone()).collect();
    let out = lab.brce(BR, SERVER, 15, &specs, "br.log");
    steps
        .iter()
        .zip(&out)
        .map(|(s, o)| match s.forwarded {
            Fwd::All => o["packets"].as_u64().unwrap(),
            Fwd::Nothing => 0,
            Fwd::FirstOnly => 1,
        })
        .sum()
}

/// Waits until br.py counted every expected violation, then checks the
/// whole violation and error tables and the decapsulated packet count.
fn check_counters(lab: &Lab, steps: &[Step], decapsulated: u64) -> Value {
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for s in steps {
        if let Some(v) = s.violation {
            *want.entry(v.to_owned()).or_default() += 1;
        }
    }
    let mut stats = lab.br_stats();
    // frag-no-first is counted once the orphan has waited 2 s.
    lab.wait_for(Duration::from_secs(6), || {
        stats = lab.br_stats();
        want.iter()
            .all(|(k, v)| stats["violations"][k].as_u64() == Some(*v))
    });
    let got: BTreeMap<String, u64> = stats["violations"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.as_u64() != Some(0))
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(got, want, "violations counted by br.py: {stats:#}");
    assert_eq!(
        stats["errors_total"], 0,
        "BR-side errors: {}",
        stats["errors"]
    );
    assert_eq!(
        stats["decap_ok"], decapsulated,
        "every forwarded packet and nothing else went to the internet"
    );
    stats
}

fn ports_of(stats: &Value, ce: &str, proto: &str) -> Vec<u16> {
    stats["ces"][ce]["ports"][proto]
        .as_array()
        .unwrap_or_else(|| panic!("no {proto} ports of {ce}: {}", stats["ces"]))
        .iter()
        .map(|p| p.as_u64().unwrap() as u16)
        .collect()
}

#[test]
fn br_v6plus_rule_checks_ce_sources_and_ports_and_maps_replies_to_the_right_ce() {
    let lab = Lab::up(1);
    // v6plus-lab: 2001:db8:4d00::/40, 192.0.2.0/24, EA 16, offset 4 ->
    // PSID length 8, 15 runs of 16 ports. EA = IPv4 suffix . PSID, so
    // 192.0.2.18 PSID 0x34 has End-user prefix 2001:db8:4d12:3400::/56
    // and legacy IID 00|c0000212|0034|00.
    let a = "2001:db8:4d12:3400:c0:2:1200:3400"; // 192.0.2.18 PSID 52
    let b = "2001:db8:4d12:3500:c0:2:1200:3500"; // 192.0.2.18 PSID 53
    let c = "2001:db8:4dc8:100:c0:2:c800:100"; // 192.0.2.200 PSID 1
    let a_bad_iid = "2001:db8:4d12:3400::1"; // A's prefix, not A's address
    ce_host(&lab, &[a, b, c, a_bad_iid]);
    lab.br_start(&["--rule", "v6plus-lab"]);

    let ip_ab = "192.0.2.18";
    let b_ports = port_set(53, 4, 8);
    assert_eq!(b_ports.len(), 240);
    assert_eq!((b_ports[0], b_ports[239]), (4944, 62303));
    // A's ports used below: 4928.. (run 1), 62287 (the last of run 15).
    let steps = [
        step(pkt("a-udp", "udp", a, ip_ab, 4928, "reply")),
        step(pkt("a-udp-last", "udp", a, ip_ab, 62287, "reply")),
        step(with(
            pkt("a-udp-fragments", "udp", a, ip_ab, 4929, "reply"),
            json!({"size": 3000, "frag": true}),
        )),
        step(pkt("a-ping", "ping", a, ip_ab, 4930, "reply")),
        step(pkt("a-tcp-syn", "tcp-syn", a, ip_ab, 4931, "reply")),
        step(pkt(
            "a-icmp-error-back",
            "udp-closed",
            a,
            ip_ab,
            4932,
            "reply",
        )),
        step(pkt(
            "a-icmp-error-out",
            "icmp-error",
            a,
            ip_ab,
            4938,
            "none",
        )),
        // Every port of B's set: a SYN to a closed port, answered by inet's
        // kernel with a RST. (The UDP echo, one socat fork per datagram,
        // overflows its socket buffer under a burst of hundreds.)
        step(with(
            pkt("b-every-port", "tcp-rst", b, ip_ab, 0, "reply"),
            json!({"ports": b_ports}),
        )),
        step(pkt("c-ping", "ping", c, "192.0.2.200", 4112, "reply")),
        step(pkt("c-udp-last", "udp", c, "192.0.2.200", 61471, "reply")),
        // The last fragment first: held until the first one tells the CE.
        step(with(
            pkt("a-fragments-reversed", "udp", a, ip_ab, 4939, "reply"),
            json!({"size": 3000, "frag": true, "frag_order": "reverse"}),
        )),
        // CE to CE through the BR (no FMR): A -> C's address and port.
        step(with(
            pkt("a-to-c", "udp-to", a, ip_ab, 4941, "reply"),
            json!({"dst": "192.0.2.200", "dport": 4113, "reply_to": c}),
        )),
        // A's first fragment, its second from C: the second is refused.
        counted(
            with(
                pkt("a-fragment-from-c", "udp", a, ip_ab, 4940, "none"),
                json!({"size": 2000, "frag": true, "later_from": c}),
            ),
            "ce-source-mismatch",
            Fwd::FirstOnly,
        ),
        // Broken rules that do not hurt the BR: counted, still forwarded.
        counted(
            with(
                pkt("a-encap-limit", "udp", a, ip_ab, 4933, "reply"),
                json!({"dstopts": true}),
            ),
            "encap-limit-option",
            Fwd::All,
        ),
        counted(
            with(
                pkt("a-too-big", "udp", a, ip_ab, 4934, "reply"),
                json!({"size": 1480}),
            ),
            "inner-too-big",
            Fwd::All,
        ),
        // Spoofing and ports outside the set: counted and dropped.
        counted(
            pkt("a-port-of-psid-54", "udp", a, ip_ab, 4960, "none"),
            "port-outside-set",
            Fwd::Nothing,
        ),
        counted(
            pkt("c-claims-a", "udp", c, ip_ab, 4935, "none"),
            "ce-source-mismatch",
            Fwd::Nothing,
        ),
        counted(
            pkt("a-wrong-iid", "udp", a_bad_iid, ip_ab, 4936, "none"),
            "ce-source-mismatch",
            Fwd::Nothing,
        ),
        counted(
            pkt("a-excluded-port", "udp", a, ip_ab, 1000, "none"),
            "port-excluded",
            Fwd::Nothing,
        ),
        counted(
            pkt("a-outside-rule", "udp", a, "203.0.113.77", 4937, "none"),
            "src-outside-rule",
            Fwd::Nothing,
        ),
        counted(
            pkt("a-orphan-fragment", "orphan", a, ip_ab, 0, "none"),
            "frag-no-first",
            Fwd::Nothing,
        ),
    ];
    let decapsulated = run_ce(&lab, &steps);
    let stats = check_counters(&lab, &steps, decapsulated);

    assert_eq!(stats["rule"]["ports_per_ce"], 240, "{}", stats["rule"]);
    assert_eq!(ports_of(&stats, b, "tcp"), b_ports, "B used its whole set");
    assert_eq!(
        stats["ces"][b]["ports_used"]["tcp"], 240,
        "{}",
        stats["ces"][b]
    );
    assert_eq!(
        ports_of(&stats, a, "udp"),
        [4928, 4929, 4932, 4933, 4934, 4939, 4940, 4941, 62287]
    );
    assert_eq!(ports_of(&stats, a, "tcp"), [4931]);
    assert_eq!(ports_of(&stats, a, "icmp"), [4930, 4938]);
    assert_eq!(ports_of(&stats, c, "icmp"), [4112]);
    assert_eq!(
        (
            stats["ces"][a]["psid"].clone(),
            stats["ces"][b]["psid"].clone()
        ),
        (json!(52), json!(53))
    );
    // (IPv4, protocol, port): A 9 UDP + 1 TCP + 2 ICMP, B 240, C 2.
    assert_eq!(stats["flows"], 254, "distinct flows");
    assert_eq!(stats["ce_count"], 3, "{}", stats["ces"]);
    assert!(
        stats["encap_ok"].as_u64().unwrap() >= 240 + 10,
        "replies encapsulated: {}",
        stats["encap_ok"]
    );
}

#[test]
fn br_ocn_rule_with_rfc7597_interface_ids_serves_all_1008_ports() {
    let lab = Lab::up(1);
    // ocn-lab: 2001:db8:4e00::/42, 192.0.2.0/24, EA 14, offset 6 -> PSID
    // length 6, 63 runs of 16. 192.0.2.18 PSID 5: EA 0x485, End-user
    // prefix 2001:db8:4e04:8500::/56, RFC 7597 IID 0000|c0000212|0005.
    let d = "2001:db8:4e04:8500:0:c000:212:5"; // PSID 5
    let e = "2001:db8:4e04:8600:0:c000:212:6"; // PSID 6
    let d_legacy = "2001:db8:4e04:8500:c0:2:1200:500"; // D's legacy IID: wrong here
    ce_host(&lab, &[d, e, d_legacy]);
    // --bind-any: packets to another address of the BR's host reach br.py.
    lab.br_start(&["--rule", "ocn-lab", "--iid", "rfc7597", "--bind-any"]);

    let ip = "192.0.2.18";
    let d_ports = port_set(5, 6, 6);
    assert_eq!(d_ports.len(), 1008);
    assert_eq!((d_ports[0], d_ports[1007]), (1104, 64607));
    let steps = [
        step(with(
            pkt("d-every-port", "tcp-rst", d, ip, 0, "reply"),
            json!({"ports": d_ports}),
        )),
        step(pkt("e-udp", "udp", e, ip, 1120, "reply")),
        step(pkt("e-ping-last-port", "ping", e, ip, 64623, "reply")),
        counted(
            pkt("d-port-of-e", "udp", d, ip, 1122, "none"),
            "port-outside-set",
            Fwd::Nothing,
        ),
        counted(
            pkt("d-legacy-iid", "udp", d_legacy, ip, 1121, "none"),
            "ce-source-mismatch",
            Fwd::Nothing,
        ),
        // To the AFTR's address (aftr.py takes it too, and forwards a
        // fragment nobody completes): not for the BR.
        counted(
            with(
                pkt("d-to-the-aftr", "orphan", d, ip, 0, "none"),
                json!({"to": "2001:db8:aaaa::1"}),
            ),
            "bad-destination",
            Fwd::Nothing,
        ),
        counted(
            pkt("d-excluded-port", "udp", d, ip, 1000, "none"),
            "port-excluded",
            Fwd::Nothing,
        ),
    ];
    let decapsulated = run_ce(&lab, &steps);
    let stats = check_counters(&lab, &steps, decapsulated);
    assert_eq!(stats["rule"]["ports_per_ce"], 1008, "{}", stats["rule"]);
    assert_eq!(stats["rule"]["iid_format"], "rfc7597");
    assert_eq!(ports_of(&stats, d, "tcp"), d_ports);
    assert_eq!(stats["flows"], 1008 + 2);

    // 'stop' takes the BR and its rule routes away.
    lab.br_stop();
    let r = lab.exec("inet", &["ip", "-4", "route", "show", "192.0.2.0/24"]);
    assert_eq!(r.stdout.trim(), "", "inet still routes the rule prefix");
    let r = lab.exec("hgw", &["ip", "-6", "route", "show", "2001:db8:4e00::/42"]);
    assert_eq!(r.stdout.trim(), "", "hgw still routes the rule prefix");
}

/// br.py's arithmetic against the public vectors (no lab needed).
#[test]
fn br_mapping_matches_public_vectors() {
    // IPv4 198.51.133.177 PSID 25 -> legacy IID 00c6:3385:b100:1900 (the
    // JP provisioning example); RFC 7597 section 6: 0000:c633:85b1:0019.
    // A rule covering it: 198.51.128.0/18 (14 suffix bits) + PSID 8 = EA 22.
    let rule = "2001:db8:4f00::/40,198.51.128.0/18,22,4";
    let port = (1 << 12) | (25 << 4); // A = 1, PSID 25, j = 0
    for (iid, want) in [
        ("legacy", "c6:3385:b100:1900"),
        ("rfc7597", "0:c633:85b1:19"),
    ] {
        let v = Lab::br_explain(
            &["--rule", rule, "--iid", iid],
            &format!("198.51.133.177:{port}"),
        );
        assert_eq!(v["psid"], 25, "{v}");
        let ce = v["ce"].as_str().unwrap();
        assert!(ce.ends_with(want), "{iid}: {ce} should end in {want}");
        // The CE address maps back to the same IPv4 and PSID.
        let back = Lab::br_explain(&["--rule", rule, "--iid", iid], ce);
        assert_eq!(
            (back["ipv4"].as_str(), back["psid"].as_u64()),
            (Some("198.51.133.177"), Some(25))
        );
    }
    // v6plus-like sets: PSID 5 starts at 4176 (A = 1), 15 runs of 16.
    let v = Lab::br_explain(&["--rule", "v6plus-lab"], "2001:db8:4d00:500::/56");
    assert_eq!(v["runs"][0], json!([4176, 4191]), "{v}");
    assert_eq!(v["ports"], 240);
    let v = Lab::br_explain(&["--rule", "ocn-lab"], "2001:db8:4e04:8500::/56");
    assert_eq!(
        (v["ipv4"].as_str(), v["psid"].as_u64(), v["ports"].as_u64()),
        (Some("192.0.2.18"), Some(5), Some(1008))
    );
}

/// Real TCP through the BR: the router namespace's kernel is a CE with
/// 192.0.2.18 on a tun that tests/lab/b4ref.py relays to the BR from A's
/// address (the lab-only reference tunnel endpoint, here pointed at the
/// BR), and curl keeps to A's first port run. 20 MB arrive intact, the
/// server sees the shared address, and br.py finds nothing wrong.
#[test]
fn br_carries_a_20mb_http_download_between_a_ce_port_run_and_the_server() {
    let lab = Lab::up(1);
    let a = "2001:db8:4d12:3400:c0:2:1200:3400"; // 192.0.2.18 PSID 52
    ce_host(&lab, &[a]);
    lab.br_start(&[]);
    let b4ref = ipoe_tests::workspace().join("tests/lab/b4ref.py");
    let mut relay = lab.spawn(
        "router",
        &[
            "python3",
            b4ref.to_str().unwrap(),
            "--b4",
            a,
            "--aftr",
            BR,
            "--tun",
            "cetun",
            "--mtu",
            "1460",
            "--route",
            "198.51.100.0/24",
        ],
    );
    assert!(
        lab.wait_for(Duration::from_secs(5), || lab
            .exec("router", &["ip", "-4", "route", "show", "dev", "cetun"])
            .stdout
            .contains("198.51.100.0/24"))
            .is_some(),
        "b4ref.py did not set up cetun"
    );
    let r = lab.exec(
        "router",
        &["ip", "addr", "add", "192.0.2.18/32", "dev", "cetun"],
    );
    assert!(r.ok, "{}", r.stderr);

    let want = std::fs::read_to_string(lab.run_dir.join("www/blob20.bin.sha256")).unwrap();
    let t0 = std::time::Instant::now();
    let r = lab.exec(
        "router",
        &[
            "sh",
            "-c",
            "curl -sS -m 60 --interface 192.0.2.18 --local-port 4928-4943 \
             http://198.51.100.10/blob20.bin | sha256sum",
        ],
    );
    let took = t0.elapsed();
    ipoe_tests::terminate(&mut relay);
    assert_eq!(
        r.stdout.split_whitespace().next(),
        want.split_whitespace().next(),
        "20 MB through the BR: {}",
        r.stderr
    );
    eprintln!("20 MB through br.py in {took:?}");

    let stats = lab.br_stats();
    assert_eq!(stats["violations_total"], 0, "{}", stats["violations"]);
    assert_eq!(stats["errors_total"], 0, "{}", stats["errors"]);
    let ports = ports_of(&stats, a, "tcp");
    assert!(
        !ports.is_empty() && ports.iter().all(|p| (4928..=4943).contains(p)),
        "curl's ports: {ports:?}"
    );
    assert!(
        stats["encap_bytes"].as_u64().unwrap() > 20_000_000,
        "{stats}"
    );
    let log = std::fs::read_to_string(lab.run_dir.join("http-access.log")).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("::ffff:192.0.2.18") && l.contains("blob20.bin")),
        "the server logs the shared address: {log}"
    );
}
