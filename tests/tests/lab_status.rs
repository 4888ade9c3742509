//! The status page of issue 21 against the real ipoed in the lab: a
//! headless Chromium on a LAN host renders it (the DOM after page.js ran
//! holds the AFTR, the LAN prefix and a lease; a screenshot is kept in the
//! lab run directory), `/status.json` equals `ipoectl --json`, nothing
//! answers on port 80 from the WAN, and 100 concurrent page loads beside
//! a DS-Lite download leave the download intact.

use std::time::{Duration, Instant};

use ipoe_tests::Lab;
use serde_json::Value;

const V4_SERVER: &str = "198.51.100.10";
const LAN_V4: &str = "192.168.2.1";
const LAN_PREFIX: &str = "2001:db8:0:111::/64";
const LAN_V6: &str = "2001:db8:0:111::1";
const LAN2_MAC: &str = "02:00:00:00:01:02";

fn sh(lab: &Lab, ns: &str, script: &str) -> ipoe_tests::Run {
    lab.exec(ns, &["sh", "-c", script])
}

/// Chromium, headless, in `ns` with a fresh profile; `args` say what to
/// produce (`--dump-dom` or `--screenshot=...`). The virtual time budget
/// (ms) lets page.js poll `/status.json` every 3 s of it before the DOM is
/// read; virtual time runs ahead of the real one, so the page's rates
/// divide by the router's clock.
fn chromium(lab: &Lab, ns: &str, url: &str, budget_ms: u32, args: &str) -> ipoe_tests::Run {
    let profile = lab.run_dir.join("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).unwrap();
    sh(
        lab,
        ns,
        &format!(
            "HOME={p} timeout 90 chromium --headless --no-sandbox --disable-gpu \
             --disable-quic --no-first-run --disable-background-networking \
             --disable-component-update --disable-sync --disable-dev-shm-usage \
             --user-data-dir={p} --virtual-time-budget={budget_ms} {args} '{url}' 2>/dev/null",
            p = profile.display()
        ),
    )
}

/// `v` with every number set to 0: counters and times left move between
/// two calls, the facts do not.
fn facts(v: &Value) -> Value {
    match v {
        Value::Number(_) => Value::from(0),
        Value::Array(a) => Value::Array(a.iter().map(facts).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), facts(v))).collect()),
        other => other.clone(),
    }
}

/// The keys of `v`, recursively, as `a.b.c` paths (arrays by index).
fn keys(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                let p = format!("{at}.{k}");
                out.push(p.clone());
                keys(v, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                keys(v, &format!("{at}.{i}"), out);
            }
        }
        _ => {}
    }
}

fn curl(lab: &Lab, ns: &str, url: &str) -> ipoe_tests::Run {
    lab.exec(ns, &["curl", "-sS", "-g", "-m", "5", url])
}

/// curl from lan1 printing only `write_out` (the body is discarded).
fn curl_w(lab: &Lab, write_out: &str, extra: &[&str], url: &str) -> ipoe_tests::Run {
    let mut args = vec!["curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", write_out];
    args.extend_from_slice(extra);
    args.push(url);
    lab.exec("lan1", &args)
}

fn sha_of_blob(lab: &Lab) -> String {
    std::fs::read_to_string(lab.run_dir.join("www/blob20.bin.sha256"))
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned()
}

/// The 20 MB download over DS-Lite from `ns`, in the background: its
/// sha256 and its rate (bytes/s) go to `out`.
fn download(lab: &Lab, ns: &str, out: &std::path::Path) -> std::process::Child {
    let _ = std::fs::remove_file(out);
    lab.spawn(
        ns,
        &[
            "sh",
            "-c",
            &format!(
                "curl -sS --max-time 120 -o {o}.blob -w '%{{speed_download}}\\n' \
                 http://{V4_SERVER}/blob20.bin > {o}.rate; sha256sum {o}.blob > {o}.sum; \
                 rm -f {o}.blob",
                o = out.display()
            ),
        ],
    )
}

fn finish_download(mut child: std::process::Child, out: &std::path::Path) -> (String, f64) {
    let _ = child.wait();
    let sum = std::fs::read_to_string(format!("{}.sum", out.display()))
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned();
    let rate = std::fs::read_to_string(format!("{}.rate", out.display()))
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0.0);
    (sum, rate)
}

/// 100 concurrent `curl`s of `url` (50 from lan1, 50 from lan2, each
/// `timeout` s at most) started with a DS-Lite download from lan1: each
/// curl's `code size exitcode`, the download's sha256 and rate.
fn crowd_beside_download(
    lab: &Lab,
    url: &str,
    timeout: u32,
    out: &std::path::Path,
) -> (Vec<String>, String, f64) {
    let dl = download(lab, "lan1", out);
    std::thread::sleep(Duration::from_millis(100));
    let crowd = |ns: &str| {
        lab.spawn(
            ns,
            &[
                "sh",
                "-c",
                &format!(
                    "for i in $(seq 50); do curl -s -m {timeout} -o /dev/null \
                     -w '%{{http_code}} %{{size_download}} %{{exitcode}}\\n' {url} & done; wait"
                ),
            ],
        )
    };
    let crowds = [crowd("lan1"), crowd("lan2")];
    let mut lines = Vec::new();
    for c in crowds {
        let o = c.wait_with_output().unwrap();
        lines.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned),
        );
    }
    let (sum, rate) = finish_download(dl, out);
    (lines, sum, rate)
}

#[test]
fn status_page_renders_matches_the_cli_stays_off_the_wan_and_survives_a_crowd() {
    let t0 = Instant::now();
    let mut lab = Lab::fresh(1);
    let cfg = lab.auto_config(1, "aftr.lab.example", "wan");
    lab.start_ipoed(&cfg);
    let bound = lab.wait_for(Duration::from_secs(30), || {
        lab.ctl_json(&["show", "pd"])["lan_prefix"] == LAN_PREFIX
            && lab.ctl_json(&["show", "tunnel"])["up"] == true
    });
    assert!(bound.is_some(), "no prefix or tunnel:\n{}", lab.ipoed_log());
    let t = lab.wait_for(Duration::from_secs(20), || {
        lab.fetch("lan1", &format!("http://{V4_SERVER}/hello.txt"))
    });
    assert!(t.is_some(), "no DS-Lite traffic:\n{}", lab.ipoed_log());
    // A LAN host with a DHCPv4 lease and a host name.
    lab.lanhost("lan2", &["--ipv6", "off"]);
    assert!(lab.dhcp_client("lan2", "udhcpc", &[]));
    let leases = lab.ctl_json(&["show", "leases"]);
    let lease = leases["dhcpv4"]["leases"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l["mac"] == LAN2_MAC).cloned())
        .expect("lan2's lease");
    let lease_ip = lease["ip"].as_str().unwrap().to_owned();
    assert_eq!(lease["hostname"], "lan2", "{lease}");
    let aftr = lab.ctl_json(&["show", "tunnel"])["aftr"]
        .as_str()
        .expect("an AFTR")
        .to_owned();

    // 1. The page as a browser shows it, after its script ran, while lan1
    // sends 2000 packets/s of 1000 bytes (16 Mbit/s) into the tunnel for
    // 20 s: the chart has something to draw. (A TCP download would be over
    // at the router within a second, whatever curl's rate limit.)
    let stream = "import socket,time\n\
        s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
        end=time.time()+20\n\
        while time.time()<end:\n\
        \x20   for i in range(20): s.sendto(b'x'*1000,('198.51.100.10',9))\n\
        \x20   time.sleep(0.01)\n";
    let mut traffic = lab.spawn("lan1", &["python3", "-c", stream]);
    std::thread::sleep(Duration::from_millis(500));
    let url = format!("http://{LAN_V4}/");
    let started = Instant::now();
    let dom = chromium(&lab, "lan1", &url, 30_000, "--dump-dom");
    let browser_s = started.elapsed().as_secs_f64();
    assert!(dom.ok && !dom.stdout.is_empty(), "chromium: {}", dom.stderr);
    let html = dom.stdout;
    for (what, needle) in [
        ("the AFTR", aftr.as_str()),
        ("the LAN prefix", LAN_PREFIX),
        ("lan2's lease", lease_ip.as_str()),
        ("lan2's host name", "<td>lan2</td>"),
    ] {
        assert!(
            html.contains(needle),
            "{what} ({needle}) not in the DOM:\n{html}"
        );
    }
    // page.js fetched /status.json (from the browser, through our TCP) and
    // drew the traffic: the body counts its polls, the chart has points.
    let polls = html
        .split("data-polls=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    assert!(polls >= 2, "page.js did not poll twice ({polls}):\n{html}");
    assert!(
        html.contains("<polyline class=\"rx\" points=\"") && !html.contains("points=\"\""),
        "no chart drawn:\n{html}"
    );
    // The WAN chart saw the download: its peak is megabits per second.
    let wan_chart = html
        .split("data-role=\"wan\"")
        .nth(1)
        .and_then(|s| s.split("</figure>").next())
        .unwrap_or("");
    assert!(
        wan_chart.contains("Mbit/s</text>"),
        "the WAN chart missed the download:\n{wan_chart}"
    );
    let shot = lab.run_dir.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let r = chromium(
        &lab,
        "lan1",
        &url,
        60_000,
        &format!(
            "--hide-scrollbars --window-size=1280,1600 --screenshot={}",
            shot.display()
        ),
    );
    let png = std::fs::read(&shot).unwrap_or_default();
    assert!(
        png.len() > 10_000 && png.starts_with(b"\x89PNG"),
        "no screenshot ({} bytes): {}",
        png.len(),
        r.stderr
    );
    ipoe_tests::terminate(&mut traffic);
    // A name from outside (DNS rebinding) gets 421, not the page.
    let rebound = curl_w(
        &lab,
        "%{http_code}",
        &["-H", "Host: status.attacker.example"],
        &url,
    );
    assert_eq!(rebound.stdout, "421", "{}", rebound.stderr);
    // Over IPv6 too, on the LAN address.
    let v6 = curl(&lab, "lan1", &format!("http://[{LAN_V6}]/"));
    assert!(v6.ok && v6.stdout.contains(LAN_PREFIX), "{}", v6.stderr);

    // Page size and time to first byte, for the report.
    let m = curl_w(
        &lab,
        "%{http_code} %{size_download} %{time_starttransfer}",
        &[],
        &url,
    );
    let f: Vec<&str> = m.stdout.split_whitespace().collect();
    assert_eq!(f.first(), Some(&"200"), "{}", m.stderr);
    let (page_bytes, ttfb) = (f[1].to_owned(), f[2].to_owned());

    // 2. /status.json is `ipoectl --json show ...`: the same keys, the
    // same facts (counters and times left move between the two calls).
    let sections = [
        "interfaces",
        "wan",
        "pd",
        "tunnel",
        "map",
        "lan",
        "leases",
        "neighbors",
        "firewall",
    ];
    let mut last = String::new();
    let same = lab.wait_for(Duration::from_secs(10), || {
        let r = curl(&lab, "lan1", &format!("http://{LAN_V4}/status.json"));
        let Ok(json) = serde_json::from_str::<Value>(&r.stdout) else {
            last = format!("not JSON: {} {}", r.stdout, r.stderr);
            return false;
        };
        for s in sections {
            let cli = lab.ctl_json(&["show", s]);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            keys(&json[s], s, &mut a);
            keys(&cli, s, &mut b);
            // Neighbors and recent drops come and go; their keys must match.
            let comparable = s != "neighbors";
            if a != b || (comparable && facts(&json[s]) != facts(&cli)) {
                last = format!("{s}:\n page {}\n cli  {}", json[s], cli);
                return false;
            }
        }
        true
    });
    assert!(
        same.is_some(),
        "status.json differs from ipoectl --json: {last}"
    );
    let body = curl(&lab, "lan1", &format!("http://{LAN_V4}/status.json")).stdout;
    let json_bytes = body.len();
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["tunnel"]["aftr"], aftr.as_str());
    assert_eq!(json["pd"]["lan_prefix"], LAN_PREFIX);
    // Nothing of the config (its path, the socket) rides along.
    let text = json.to_string();
    assert!(
        !text.contains("ipoed.sock") && !text.contains("/state"),
        "{text}"
    );

    // 3. Nothing answers on port 80 from the WAN: not the WAN address, not
    // the LAN address routed through the WAN. No SYN-ACK leaves the router.
    let wan_addr = lab.ctl_json(&["show", "wan"])["address_in_use"]
        .as_str()
        .expect("a WAN address")
        .to_owned();
    let pcap = lab.run_dir.join("status-wan.pcap");
    let pcap_s = pcap.to_str().unwrap().to_owned();
    let mut cap = lab.tshark_capture("hgw", "down0", "tcp port 80", &pcap_s);
    let drops0 = lab.error_count("ip6-local", "wan-not-allowed");
    for target in [wan_addr.as_str(), LAN_V6] {
        let r = lab.exec(
            "hgw",
            &[
                "curl",
                "-sS",
                "-g",
                "-m",
                "3",
                &format!("http://[{target}]/"),
            ],
        );
        assert!(
            !r.ok,
            "port 80 answered on the WAN at {target}: {}",
            r.stdout
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    ipoe_tests::terminate(&mut cap);
    let syn_acks = lab.tshark_count(
        "hgw",
        &pcap_s,
        "tcp.srcport == 80 && tcp.flags.syn == 1 && tcp.flags.ack == 1",
    );
    let resets = lab.tshark_count("hgw", &pcap_s, "tcp.srcport == 80 && tcp.flags.reset == 1");
    let syns = lab.tshark_count("hgw", &pcap_s, "tcp.dstport == 80 && tcp.flags.syn == 1");
    assert!(syns >= 2, "the WAN SYNs were not captured ({syns})");
    assert_eq!((syn_acks, resets), (0, 0), "the router answered on the WAN");
    assert!(
        lab.error_count("ip6-local", "wan-not-allowed") > drops0,
        "the WAN SYNs were not dropped by ip6-local"
    );

    // 4. A DS-Lite download alone, then beside 100 concurrent page loads
    // (50 from lan1, 50 from lan2): intact both times; each load gets the
    // whole page or a clean refusal (every socket busy: RST).
    let want = sha_of_blob(&lab);
    let out = lab.run_dir.join("status-dl");
    let (sum, alone) = finish_download(download(&lab, "lan1", &out), &out);
    assert_eq!(sum, want, "the download alone was broken");
    // The same crowd with the page off (reloaded away): 100 curl
    // processes whose SYNs nobody answers. What it costs the download is
    // the lab's CPU (2 cores for the hosts, the Python AFTR and ipoed),
    // not the page.
    let path = lab.config_path();
    let off = cfg.replace(
        "  ipv4: 192.168.2.1/24\n",
        "  ipv4: 192.168.2.1/24\n  status_page: false\n",
    );
    std::fs::write(&path, &off).unwrap();
    let r = lab.ctl_json(&["reload"]);
    assert_eq!(r["changed"], serde_json::json!(["lan.status_page"]), "{r}");
    let gone = lab.exec("lan1", &["curl", "-sS", "-m", "2", &url]);
    assert!(!gone.ok, "the page answered while off: {}", gone.stdout);
    let (control_lines, sum, control) = crowd_beside_download(&lab, &url, 2, &out);
    assert_eq!(
        sum, want,
        "the download beside the unanswered crowd was broken"
    );
    assert!(
        control_lines.iter().all(|l| l.starts_with("000 ")),
        "{control_lines:?}"
    );
    std::fs::write(&path, &cfg).unwrap();
    let r = lab.ctl_json(&["reload"]);
    assert_eq!(r["changed"], serde_json::json!(["lan.status_page"]), "{r}");
    let back = lab.wait_for(Duration::from_secs(5), || curl(&lab, "lan1", &url).ok);
    assert!(
        back.is_some(),
        "the page did not come back after the reload"
    );

    let (lines, sum, beside) = crowd_beside_download(&lab, &url, 10, &out);
    assert_eq!(sum, want, "the download beside the page loads was broken");
    assert_eq!(lines.len(), 100, "{lines:?}");
    // Whole: 200, curl's exit code 0 (it checks the length against
    // Content-Length), and a page's size (counters change its length).
    let served = lines
        .iter()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 3
                && f[0] == "200"
                && f[2] == "0"
                && f[1].parse::<usize>().is_ok_and(|n| n > 5000)
        })
        .count();
    // curl's exit code 7: connection refused (our RST).
    let refused = lines.iter().filter(|l| l.ends_with(" 7")).count();
    assert_eq!(
        served + refused,
        100,
        "loads neither served whole nor refused: {lines:?}"
    );
    assert!(served >= 16, "only {served} of 100 loads served");
    // And the page loads again afterwards.
    let again = curl(&lab, "lan1", &url);
    assert!(
        again.ok && again.stdout.contains(LAN_PREFIX),
        "{}",
        again.stderr
    );
    assert!(lab.ipoed_alive());

    let total = t0.elapsed().as_secs_f64();
    eprintln!(
        "status page: {page_bytes} bytes (status.json {json_bytes}), time to first byte {ttfb} s, chromium {browser_s:.1} s; \
         100 loads: {served} served, {refused} refused; download {:.1} MB/s alone, \
         {:.1} MB/s beside the loads, {:.1} MB/s beside 100 unanswered curls (page off); \
         screenshot {}; test {total:.0} s",
        alone / 1e6,
        beside / 1e6,
        control / 1e6,
        shot.display()
    );
}
