//! The lab's provider side of issue 20, checked on its own before any
//! ipoed test trusts it (no ipoed runs): the fixed-IPv4 tunnel end
//! (tests/lab/ipip.py), the update URL (update_server.py), the HB46PP
//! server (hb46pp_server.py) and the lab DNS records they need. The router
//! namespace plays the customer: its kernel owns the tunnel-local
//! addresses on wan0, tests/lab/brce.py crafts the tunnel packets, b4ref.py
//! relays real TCP, and real curl and dig talk to the servers. Every
//! expected value below is this file's own (the service rules of
//! jp-ipoe-methods.md section 4 and the HB46PP spec 3.3/3.4), not read
//! from the emulators.

use std::collections::BTreeMap;
use std::time::Duration;

use ipoe_tests::{Lab, Run};
use serde_json::{json, Value};

const REMOTE: &str = Lab::IPIP_REMOTE;
const FIXED: &str = Lab::IPIP_IPV4;
const SERVER: &str = "198.51.100.10";
const LOCAL: &str = "2001:db8:0:100::feed"; // WAN /64 + the contract IID ::feed
const OTHER: &str = "2001:db8:0:100::bad"; // another host of the same /64
const MOVED: &str = "2001:db8:0:100::beef"; // the customer after a renumbering
const ROUTER_WAN_LL: &str = "fe80::ff:fe00:202";
const HGW_DNS: &str = "2001:db8:0:100::1";
/// A query every HB46PP spec rule accepts.
const GOOD_QUERY: &str =
    "vendorid=acde48-ipoe_lab&product=ipoed&version=0_1&capability=dslite,map_e,ipip";

/// Makes the router namespace the customer's host: WAN link-local, the
/// given addresses on wan0 (answered by its kernel's NDP), default route
/// to hgw.
fn customer_host(lab: &Lab, addrs: &[&str]) {
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

// ------------------------------------------------------------------ ipip.py

/// A brce.py step sent from outer source `from` with inner source `src`.
fn pkt(name: &str, kind: &str, from: &str, src: &str, port: u16, expect: &str) -> Value {
    json!({"name": name, "kind": kind, "ce": from, "src": src, "port": port, "expect": expect})
}

fn with(mut spec: Value, more: Value) -> Value {
    for (k, v) in more.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

/// One step and what ipip.py must make of it: the violation counted (if
/// any) and whether its packets still reach the internet.
struct Step {
    spec: Value,
    violation: Option<&'static str>,
    forwarded: bool,
}

fn fine(spec: Value) -> Step {
    Step {
        spec,
        violation: None,
        forwarded: true,
    }
}

fn counted(spec: Value, violation: &'static str, forwarded: bool) -> Step {
    Step {
        spec,
        violation: Some(violation),
        forwarded,
    }
}

/// Runs the steps through brce.py (aimed at the tunnel end); returns how
/// many inner packets ipip.py must have forwarded.
fn run_customer(lab: &Lab, steps: &[Step]) -> u64 {
    let specs: Vec<Value> = steps.iter().map(|s| s.spec.clone()).collect();
    let out = lab.brce(REMOTE, SERVER, 10, &specs, "ipip.log");
    steps
        .iter()
        .zip(&out)
        .filter(|(s, _)| s.forwarded)
        .map(|(_, o)| o["packets"].as_u64().unwrap())
        .sum()
}

/// The non-zero violations of ipip.py's stats.
fn violations(stats: &Value) -> BTreeMap<String, u64> {
    stats["violations"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.as_u64() != Some(0))
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

fn want(steps: &[Step]) -> BTreeMap<String, u64> {
    let mut w = BTreeMap::new();
    for s in steps {
        if let Some(v) = s.violation {
            *w.entry(v.to_owned()).or_default() += 1;
        }
    }
    w
}

#[test]
fn ipip_forwards_only_the_registered_customer_and_counts_each_violation() {
    let lab = Lab::up(1);
    customer_host(&lab, &[LOCAL, OTHER]);
    lab.ipip_start(&[]);

    // Nobody registered yet: refused.
    let early = [counted(
        pkt("before-registration", "udp", LOCAL, FIXED, 40000, "none"),
        "not-registered",
        false,
    )];
    assert_eq!(run_customer(&lab, &early), 0);
    let s = lab.ipip_stats();
    assert_eq!(violations(&s), want(&early), "{s:#}");
    assert_eq!(s["registered_local"], Value::Null);

    lab.ipip_register(Some(LOCAL));
    let steps = [
        fine(pkt("udp", "udp", LOCAL, FIXED, 40001, "reply")),
        fine(pkt("ping", "ping", LOCAL, FIXED, 40002, "reply")),
        fine(with(
            pkt("syn-mss-1420", "tcp-syn", LOCAL, FIXED, 40003, "reply"),
            json!({"mss": 1420}),
        )),
        // 3000 bytes in inner fragments, the echo comes back fragmented too.
        fine(with(
            pkt("udp-fragments", "udp", LOCAL, FIXED, 40004, "reply"),
            json!({"size": 3000, "frag": true}),
        )),
        fine(pkt("udp-low-port", "udp", LOCAL, FIXED, 1024, "reply")),
        // Dropped: not the registered address, not the fixed IPv4, broken.
        counted(
            pkt("from-another-address", "udp", OTHER, FIXED, 40010, "none"),
            "wrong-outer-source",
            false,
        ),
        counted(
            pkt("another-ipv4", "udp", LOCAL, "192.0.2.78", 40011, "none"),
            "inner-source-not-fixed",
            false,
        ),
        counted(
            pkt(
                "lan-address-not-natted",
                "udp",
                LOCAL,
                "192.168.2.10",
                40012,
                "none",
            ),
            "inner-source-not-fixed",
            false,
        ),
        counted(
            with(
                pkt("bad-ip-checksum", "udp", LOCAL, FIXED, 40013, "none"),
                json!({"corrupt": "ip-checksum"}),
            ),
            "bad-ip-checksum",
            false,
        ),
        counted(
            with(
                pkt("bad-total-length", "udp", LOCAL, FIXED, 40014, "none"),
                json!({"corrupt": "total-length"}),
            ),
            "bad-total-length",
            false,
        ),
        counted(
            with(
                pkt("twelve-bytes", "udp", LOCAL, FIXED, 40015, "none"),
                json!({"corrupt": "short"}),
            ),
            "short-packet",
            false,
        ),
        // Broken service rules that do not hurt: counted, still forwarded.
        counted(
            with(
                pkt("encap-limit", "udp", LOCAL, FIXED, 40020, "reply"),
                json!({"dstopts": true}),
            ),
            "encap-limit-option",
            true,
        ),
        counted(
            with(
                pkt("inner-1480", "udp", LOCAL, FIXED, 40021, "reply"),
                json!({"size": 1480}),
            ),
            "inner-too-big",
            true,
        ),
        counted(
            with(
                pkt("syn-mss-1460", "tcp-syn", LOCAL, FIXED, 40022, "reply"),
                json!({"mss": 1460}),
            ),
            "mss-above-clamp",
            true,
        ),
    ];
    let forwarded = run_customer(&lab, &steps);
    let s = lab.ipip_stats();
    let mut all = want(&early);
    all.extend(want(&steps));
    assert_eq!(violations(&s), all, "{s:#}");
    assert_eq!(s["errors_total"], 0, "{}", s["errors"]);
    assert_eq!(s["decap_ok"], forwarded, "forwarded packets: {s:#}");
    assert_eq!(s["registered_local"], LOCAL);
    assert_eq!(s["wrong_sources"], json!({OTHER: 1}));
    assert_eq!(s["max_mss"], 1460);
    assert_eq!(s["ports_used"]["tcp"], 2, "{}", s["ports_used"]);
    assert_eq!(s["port_range"]["udp"], json!([1024, 40021]));
    assert!(s["encap_ok"].as_u64().unwrap() >= 7, "replies: {s:#}");

    // Unregistered, the answers from the internet have nowhere to go.
    // (inet's SYN-ACKs to the SYNs above may still be retransmitted.)
    lab.ipip_register(None);
    let before = lab.ipip_stats()["errors"]["encap-not-registered"]
        .as_u64()
        .unwrap();
    let r = lab.exec("inet", &["ping", "-c", "1", "-W", "1", FIXED]);
    assert!(!r.ok, "a ping to the fixed address was answered");
    let s = lab.ipip_stats();
    assert!(
        s["errors"]["encap-not-registered"].as_u64().unwrap() > before,
        "{}",
        s["errors"]
    );

    // 'stop' takes the tunnel end and inet's route to the fixed address away.
    lab.ipip_stop();
    let r = lab.exec("inet", &["ip", "-4", "route", "show", FIXED]);
    assert_eq!(r.stdout.trim(), "", "inet still routes the fixed address");
}

/// b4ref.py in the router namespace: a tun `fixtun` (MTU 1460) holding the
/// fixed address, relayed to the tunnel end from `local`.
fn relay(lab: &Lab, local: &str) -> std::process::Child {
    let b4ref = ipoe_tests::workspace().join("tests/lab/b4ref.py");
    let child = lab.spawn(
        "router",
        &[
            "python3",
            b4ref.to_str().unwrap(),
            "--b4",
            local,
            "--aftr",
            REMOTE,
            "--tun",
            "fixtun",
            "--mtu",
            "1460",
            "--route",
            "198.51.100.0/24",
            "--route",
            "203.0.113.0/24",
        ],
    );
    assert!(
        lab.wait_for(Duration::from_secs(5), || lab
            .exec("router", &["ip", "-4", "route", "show", "dev", "fixtun"])
            .stdout
            .contains("198.51.100.0/24"))
            .is_some(),
        "b4ref.py did not set up fixtun"
    );
    let r = lab.exec(
        "router",
        &["ip", "addr", "add", &format!("{FIXED}/32"), "dev", "fixtun"],
    );
    assert!(r.ok, "{}", r.stderr);
    child
}

/// An HTTP GET from namespace `ns`: (curl's exit code, HTTP status, body).
fn get(ns: &str, extra: &[&str], url: &str) -> (i32, u16, String) {
    let mut cmd = vec!["curl", "-sS", "-m", "4", "-g", "-w", "\n%{http_code}"];
    cmd.extend_from_slice(extra);
    cmd.push(url);
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns])
        .args(&cmd)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        out.status.code().unwrap_or(-1),
        code.trim().parse().unwrap_or(0),
        body.to_owned(),
    )
}

fn fetch_hello(lab: &Lab) -> Run {
    lab.exec(
        "router",
        &[
            "curl",
            "-sS",
            "-m",
            "3",
            "--interface",
            FIXED,
            "http://198.51.100.10/hello.txt",
        ],
    )
}

#[test]
fn ipip_carries_real_tcp_both_ways_and_follows_a_new_registration() {
    let lab = Lab::up(1);
    customer_host(&lab, &[LOCAL, MOVED]);
    lab.ipip_start(&[]);
    lab.update_start(&[]);

    // Registered by the update server, from the tunnel-local address.
    let (rc, status, body) = get("router", &["--interface", LOCAL], Lab::UPDATE_URL);
    assert_eq!((rc, status, body.as_str()), (0, 200, "OK"));
    assert_eq!(lab.ipip_stats()["registered_local"], LOCAL);

    let mut tunnel = relay(&lab, LOCAL);
    let r = fetch_hello(&lab);
    assert_eq!(r.stdout, "hello from inet\n", "{}", r.stderr);
    let log = std::fs::read_to_string(lab.run_dir.join("http-access.log")).unwrap_or_default();
    assert!(
        log.contains("::ffff:192.0.2.77"),
        "the server sees the fixed address: {log}"
    );
    // From the internet to the fixed address (what a port forward needs).
    let www = lab.run_dir.join("www");
    let mut server = lab.spawn(
        "router",
        &[
            "python3",
            "-m",
            "http.server",
            "--bind",
            FIXED,
            "--directory",
            www.to_str().unwrap(),
            "8080",
        ],
    );
    assert!(
        lab.wait_for(Duration::from_secs(5), || lab
            .fetch("inet", "http://192.0.2.77:8080/hello.txt"))
            .is_some(),
        "the internet does not reach the fixed address"
    );
    ipoe_tests::terminate(&mut server);
    let s = lab.ipip_stats();
    assert_eq!(s["violations_total"], 0, "{}", s["violations"]);
    assert_eq!(s["errors_total"], 0, "{}", s["errors"]);
    assert_eq!(s["max_mss"], 1420, "the kernel's MSS over a 1460 tun");
    assert!(s["decap_ok"].as_u64().unwrap() >= 10, "{s:#}");

    // The WAN /64 changes: the customer registers its new address; packets
    // from the old one are refused from then on.
    let (rc, status, body) = get("router", &["--interface", MOVED], Lab::UPDATE_URL);
    assert_eq!((rc, status, body.as_str()), (0, 200, "OK"));
    let r = fetch_hello(&lab);
    assert!(!r.ok, "the old address still gets through: {}", r.stdout);
    let s = lab.ipip_stats();
    assert_eq!(s["registered_local"], MOVED);
    assert_eq!(s["registration_changes"], 2);
    assert!(
        s["violations"]["wrong-outer-source"].as_u64().unwrap() >= 1,
        "{}",
        s["violations"]
    );
    assert!(s["wrong_sources"][LOCAL].as_u64().unwrap() >= 1);
    ipoe_tests::terminate(&mut tunnel);

    let mut tunnel = relay(&lab, MOVED);
    let r = fetch_hello(&lab);
    assert_eq!(r.stdout, "hello from inet\n", "{}", r.stderr);
    ipoe_tests::terminate(&mut tunnel);

    let u = lab.update_stats();
    let oks: Vec<(&str, &str, &str)> = u["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["result"] == "ok")
        .map(|r| {
            (
                r["source"].as_str().unwrap(),
                r["user"].as_str().unwrap(),
                r["pass"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        oks,
        [(LOCAL, "lab", "secret"), (MOVED, "lab", "secret")],
        "{u:#}"
    );
}

// ------------------------------------------------------------ update server

fn last_record(v: &Value) -> Value {
    v["records"].as_array().unwrap().last().unwrap().clone()
}

#[test]
fn update_server_answers_like_the_providers_and_records_every_request() {
    let lab = Lab::up(1);
    customer_host(&lab, &[LOCAL, OTHER]);
    lab.ipip_start(&[]);
    lab.update_start(&[]);
    let base = "http://[2001:db8:77:ee::80]:8082";
    let from = |a: &'static str| ["--interface", a];

    // v6plus style: OK for the right credentials, from the source address.
    assert_eq!(
        get("router", &from(LOCAL), Lab::UPDATE_URL),
        (0, 200, "OK".to_owned())
    );
    let r = last_record(&lab.update_stats());
    assert_eq!(
        (&r["source"], &r["user"], &r["pass"], &r["result"]),
        (&json!(LOCAL), &json!("lab"), &json!("secret"), &json!("ok")),
        "{r:#}"
    );
    assert_eq!(
        r["user_agent"].as_str().unwrap_or("").split('/').next(),
        Some("curl")
    );
    // Wrong password: "NG", nothing registered.
    let url = format!("{base}/update?user=lab&pass=wrong");
    assert_eq!(get("router", &from(OTHER), &url), (0, 200, "NG".to_owned()));
    // No credentials at all: "OK" as the real one says, but nothing registered.
    let url = format!("{base}/update");
    assert_eq!(get("router", &from(OTHER), &url), (0, 200, "OK".to_owned()));
    assert_eq!(last_record(&lab.update_stats())["result"], "anonymous");
    // Another path: 404.
    let url = format!("{base}/request?user=lab&pass=secret");
    assert_eq!(get("router", &from(OTHER), &url).1, 404);
    let s = lab.ipip_stats();
    assert_eq!(
        (&s["registered_local"], &s["registration_changes"]),
        (&json!(LOCAL), &json!(1))
    );
    let u = lab.update_stats();
    assert_eq!(
        u["results"],
        json!({"ok": 1, "bad-credentials": 1, "anonymous": 1, "not-found": 1,
               "no-credentials": 0, "injected-failure": 0, "bad-method": 0})
    );
    let r = lab.exec(
        "router",
        &[
            "curl",
            "-sS",
            "-g",
            "-X",
            "POST",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            Lab::UPDATE_URL,
        ],
    );
    assert_eq!(r.stdout, "405");

    // transix style: /request?username=&password=, 400 "NG" on failure.
    lab.update_start(&["--style", "transix"]);
    let url = format!("{base}/request?username=lab&password=secret");
    assert_eq!(get("router", &from(OTHER), &url), (0, 200, "OK".to_owned()));
    assert_eq!(lab.ipip_stats()["registered_local"], OTHER);
    let url = format!("{base}/request?username=lab&password=nope");
    assert_eq!(get("router", &from(LOCAL), &url), (0, 400, "NG".to_owned()));
    let url = format!("{base}/request");
    assert_eq!(get("router", &from(LOCAL), &url), (0, 400, "NG".to_owned()));
    assert_eq!(lab.ipip_stats()["registered_local"], OTHER);

    // HTTP Basic: 401 without, OK with; the records keep what came.
    lab.update_start(&["--basic"]);
    let url = format!("{base}/update");
    assert_eq!(get("router", &from(LOCAL), &url).1, 401);
    let r = lab.exec(
        "router",
        &["curl", "-sS", "-g", "-D", "-", "-o", "/dev/null", &url],
    );
    assert!(r.stdout.contains("WWW-Authenticate: Basic"), "{}", r.stdout);
    assert_eq!(
        get("router", &["--interface", LOCAL, "-u", "lab:secret"], &url),
        (0, 200, "OK".to_owned())
    );
    let r = last_record(&lab.update_stats());
    assert_eq!(
        (&r["basic_user"], &r["basic_pass"]),
        (&json!("lab"), &json!("secret"))
    );
    assert_eq!(lab.ipip_stats()["registered_local"], LOCAL);

    // Injected failures first, then service as usual.
    lab.update_start(&["--fail-first", "2"]);
    let codes: Vec<u16> = (0..3)
        .map(|_| get("router", &from(OTHER), Lab::UPDATE_URL).1)
        .collect();
    assert_eq!(codes, [503, 503, 200]);
    assert_eq!(lab.ipip_stats()["registered_local"], OTHER);

    // Without a tunnel end the registration waits in its file.
    lab.ipip_stop();
    assert_eq!(
        get("router", &from(LOCAL), Lab::UPDATE_URL),
        (0, 200, "OK".to_owned())
    );
    assert_eq!(
        last_record(&lab.update_stats())["tunnel_end"],
        "not running"
    );
    lab.ipip_start(&[]);
    assert_eq!(lab.ipip_stats()["registered_local"], LOCAL);
}

// ------------------------------------------------------------ HB46PP server

fn resolve() -> String {
    format!("{}:443:[{}]", Lab::HB46PP_NAME, Lab::HB46PP_ADDR)
}

/// GET the HB46PP URL over HTTPS by name, trusting the lab CA unless `ca`
/// is false.
fn hb46pp_https(lab: &Lab, query: &str, ca: bool, extra: &[&str]) -> (i32, u16, String) {
    let ca_path = lab.lab_ca();
    let resolve = resolve();
    let mut a = vec!["--resolve", resolve.as_str()];
    if ca {
        a.extend(["--cacert", ca_path.to_str().unwrap()]);
    }
    a.extend_from_slice(extra);
    let url = format!("https://{}/config?{query}", Lab::HB46PP_NAME);
    get("router", &a, &url)
}

fn hb46pp_http(query: &str) -> (i32, u16, String) {
    let url = format!("http://[{}]/config?{query}", Lab::HB46PP_ADDR);
    get("router", &[], &url)
}

fn json_body(r: &(i32, u16, String)) -> Value {
    assert_eq!((r.0, r.1), (0, 200), "{}", r.2);
    serde_json::from_str(&r.2).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.2))
}

fn dig(lab: &Lab, kind: &str, name: &str) -> String {
    let server = format!("@{HGW_DNS}");
    let r = lab.exec(
        "router",
        &["dig", "+short", "+time=2", "+tries=1", &server, kind, name],
    );
    assert!(r.ok, "dig {kind} {name}: {}", r.stderr);
    r.stdout.trim().to_owned()
}

#[test]
fn hb46pp_server_answers_over_http_and_https_with_the_lab_ca_and_checks_the_query() {
    let lab = Lab::up(1);
    customer_host(&lab, &[LOCAL]);
    lab.hb46pp_start(&Lab::hb46pp_answer_file("dslite"), &["--tls", "--dns"]);

    // The lab DNS points at it (spec 3.1), through hgw's resolver.
    assert_eq!(
        dig(&lab, "TXT", "4over6.info"),
        "\"v=v6mig-1 url=https://hb46pp.lab.example/config t=b\""
    );
    assert_eq!(dig(&lab, "AAAA", Lab::HB46PP_NAME), Lab::HB46PP_ADDR);

    // HTTPS with the lab CA; without it the certificate is refused.
    let v = json_body(&hb46pp_https(&lab, GOOD_QUERY, true, &[]));
    assert_eq!(v["order"], json!(["dslite"]));
    assert_eq!(v["dslite"]["aftr"], "2001:db8:aaaa::1");
    let r = last_record(&lab.hb46pp_stats());
    assert_eq!(
        (&r["scheme"], &r["sni"], &r["source"], &r["violations"]),
        (
            &json!("https"),
            &json!(Lab::HB46PP_NAME),
            &json!(LOCAL),
            &json!([])
        ),
        "{r:#}"
    );
    assert_eq!(r["params"]["capability"], "dslite,map_e,ipip");
    let (rc, _, _) = hb46pp_https(&lab, GOOD_QUERY, false, &[]);
    assert_eq!(rc, 60, "curl trusted a certificate without the lab CA");
    assert!(lab.hb46pp_stats()["tls_failure_count"].as_u64().unwrap() >= 1);
    // And plain HTTP.
    let v = json_body(&hb46pp_http(GOOD_QUERY));
    assert_eq!(v["order"], json!(["dslite"]));

    // Each breach of spec 3.3 is counted by name; the answer still comes.
    let bad = "vendorid=acde4-x&version=1.0&capability=dslite,pppoe&token=XYZ&user=lab";
    json_body(&hb46pp_http(bad));
    let s = lab.hb46pp_stats();
    let got: BTreeMap<&str, u64> = s["violations"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.as_u64() != Some(0))
        .map(|(k, v)| (k.as_str(), v.as_u64().unwrap()))
        .collect();
    let want: BTreeMap<&str, u64> = [
        "vendorid-bad",
        "product-missing",
        "version-bad",
        "capability-bad",
        "token-bad",
        "user-without-pass",
        "credentials-over-http",
    ]
    .into_iter()
    .map(|k| (k, 1))
    .collect();
    assert_eq!(got, want, "{s:#}");

    // Another answer from the next request on (no restart).
    lab.hb46pp_answer(&Lab::hb46pp_answer_file("map_e"));
    let v = json_body(&hb46pp_https(&lab, GOOD_QUERY, true, &[]));
    assert_eq!(v["order"], json!(["map_e"]));
    assert_eq!(v["map_e"]["rules"][0]["ipv6"], "2001:db8:4d00::/40");

    // Faults on demand, each for one request.
    lab.hb46pp_fault(&["redirect", "--count", "1"]);
    let r = hb46pp_https(&lab, GOOD_QUERY, true, &["-o", "/dev/null", "-D", "-"]);
    assert_eq!(r.1, 307);
    assert!(
        r.2.contains("Location: https://hb46pp.lab.example/redirected/config?vendorid="),
        "{}",
        r.2
    );
    lab.hb46pp_fault(&["redirect", "--count", "1"]);
    let v = json_body(&hb46pp_https(&lab, GOOD_QUERY, true, &["-L"]));
    assert_eq!(
        v["order"],
        json!(["map_e"]),
        "the redirect's target answers"
    );
    lab.hb46pp_fault(&["status", "503", "--count", "1"]);
    assert_eq!(hb46pp_https(&lab, GOOD_QUERY, true, &[]).1, 503);
    assert_eq!(hb46pp_https(&lab, GOOD_QUERY, true, &[]).1, 200);
    lab.hb46pp_fault(&["malformed", "truncated", "--count", "1"]);
    let r = hb46pp_https(&lab, GOOD_QUERY, true, &[]);
    assert_eq!(r.1, 200);
    assert!(serde_json::from_str::<Value>(&r.2).is_err(), "{}", r.2);
    // (Over plain HTTP: curl's exit codes for a cut TLS stream vary.)
    lab.hb46pp_fault(&["malformed", "short-body", "--count", "1"]);
    assert_eq!(hb46pp_http(GOOD_QUERY).0, 18, "partial body");
    lab.hb46pp_fault(&["close"]);
    assert_eq!(hb46pp_http(GOOD_QUERY).0, 52, "empty reply");
    lab.hb46pp_fault(&["none"]);
    json_body(&hb46pp_https(&lab, GOOD_QUERY, true, &[]));

    // A certificate for another name is refused even with the lab CA.
    lab.hb46pp_start(
        &Lab::hb46pp_answer_file("dslite"),
        &["--tls", "--cert", "wrong-name"],
    );
    assert_eq!(hb46pp_https(&lab, GOOD_QUERY, true, &[]).0, 60);

    // Authentication (spec 3.4 "auth"), answering IPIP when it succeeds.
    lab.hb46pp_start(
        &Lab::hb46pp_answer_file("ipip"),
        &["--tls", "--user", "lab", "--pass", "secret"],
    );
    let v = json_body(&hb46pp_https(&lab, GOOD_QUERY, true, &[]));
    assert_eq!((&v["auth"], &v["order"]), (&json!("req"), &json!([])));
    let v = json_body(&hb46pp_https(
        &lab,
        &format!("{GOOD_QUERY}&user=lab&pass=nope"),
        true,
        &[],
    ));
    assert_eq!((&v["auth"], &v["order"]), (&json!("bad"), &json!([])));
    let v = json_body(&hb46pp_https(
        &lab,
        &format!("{GOOD_QUERY}&user=lab&pass=secret"),
        true,
        &[],
    ));
    assert_eq!((&v["auth"], &v["order"]), (&json!("ok"), &json!(["ipip"])));
    assert_eq!(
        v["ipip"][0],
        json!({"ipv6_local": LOCAL, "ipv6_remote": REMOTE, "ipv4": "192.0.2.77/32"})
    );
    assert_eq!(lab.hb46pp_stats()["violations_total"], 0);

    // 'stop' takes the records 'start --dns' added; others come and go by hand.
    lab.hb46pp_stop();
    assert_eq!(dig(&lab, "TXT", "4over6.info"), "");
    assert_eq!(dig(&lab, "AAAA", Lab::HB46PP_NAME), "");
    lab.dns_add("host", "gw.transix.jp", "2001:db8:aaaa::1");
    assert_eq!(dig(&lab, "AAAA", "gw.transix.jp"), "2001:db8:aaaa::1");
    assert_eq!(dig(&lab, "AAAA", "aftr.lab.example"), "2001:db8:aaaa::1");
    lab.dns_del("host", "gw.transix.jp");
    assert_eq!(dig(&lab, "AAAA", "gw.transix.jp"), "");
}
