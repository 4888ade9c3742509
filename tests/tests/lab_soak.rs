//! The soak of issue 8 (`make soak DURATION=10m`, not in CI): ipoed under
//! mixed traffic from the generator and a TCP download loop, while the
//! home gateway changes the delegated prefix, the config is reloaded (good
//! and broken files), and DHCP clients come and go. It reports crashes,
//! ipoed's RSS after warm-up and at the end, leases lost, and the longest
//! forwarding gap seen by a ping every 20 ms through DS-Lite.

use std::process::Command;
use std::time::{Duration, Instant};

use ipoe_tests::{bin, Lab, PingProbe, SHORT_PD_LEASE};

const V4_SERVER: &str = "198.51.100.10";

/// `10m`, `90s`, `1h` or plain seconds.
fn duration_from_env() -> Duration {
    let s = std::env::var("DURATION").unwrap_or_else(|_| "10m".to_owned());
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().expect("DURATION like 10m, 90s or 600");
    Duration::from_secs(match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        other => panic!("DURATION unit {other:?}: use s, m or h"),
    })
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn leases(lab: &Lab) -> Vec<(String, String)> {
    let v = lab.ctl_json(&["show", "leases"]);
    let mut l: Vec<(String, String)> = v["dhcpv4"]["leases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["state"] == "bound")
        .map(|l| {
            (
                l["mac"].as_str().unwrap_or("").to_owned(),
                l["ip"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    l.sort();
    l
}

#[test]
#[ignore = "long: run with `make soak DURATION=10m`"]
fn soak() {
    let total = duration_from_env();
    let mut lab = Lab::fresh(1);
    lab.restart_dhcp6(SHORT_PD_LEASE);
    let cfg = lab.auto_config(1, "aftr.lab.example", "wan").replace(
        "  ipv4: 192.168.2.1/24\n",
        "  ipv4: 192.168.2.1/24\n  dhcpv4:\n    lease_time: 10m\n",
    );
    lab.start_ipoed(&cfg);
    let ready = lab.wait_for(Duration::from_secs(30), || {
        lab.fetch_within(
            "lan1",
            &format!("http://{V4_SERVER}/hello.txt"),
            Duration::from_secs(1),
        )
    });
    assert!(ready.is_some(), "{}", lab.ipoed_log());
    let pid = lab.ipoed_pid().expect("ipoed");
    let clients = ["lan2", "lan3", "lan4"];
    for c in clients {
        lab.lanhost(c, &["--ipv6", "off"]);
        assert!(lab.dhcp_client(c, "udhcpc", &[]), "{c} got no lease");
    }

    // Background load: a ping for the gaps, a TCP download loop, and the
    // generator's UDP over IPv4 (DS-Lite) and IPv6 in bursts.
    let ping = PingProbe::start(&lab, "lan1", V4_SERVER);
    let stop_flag = lab.run_dir.join("soak.stop");
    let _ = std::fs::remove_file(&stop_flag);
    let downloads = lab.spawn(
        "lan1",
        &[
            "sh",
            "-c",
            &format!(
                "n=0; bad=0; while [ ! -e {stop} ]; do \
                 h=$(curl -s --max-time 30 --limit-rate 4M http://{V4_SERVER}/blob.bin | sha256sum | cut -d' ' -f1); \
                 [ \"$h\" = \"$(cut -d' ' -f1 {www}/blob.bin.sha256)\" ] || bad=$((bad+1)); n=$((n+1)); done; \
                 echo downloads=$n bad=$bad",
                stop = stop_flag.display(),
                www = lab.run_dir.join("www").display(),
            ),
        ],
    );
    let gen = |traffic: &str, src: &str, dst: &str| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", "lan1"])
            .arg(bin("ipoe-bench"))
            .args([
                "pktgen",
                "tx",
                "--iface",
                "eth0",
                "--traffic",
                traffic,
                "--src",
                src,
                "--dst",
                dst,
                "--src-mac",
                "02:00:00:00:01:10",
                "--dst-mac",
                "02:00:00:00:02:01",
                "--flows",
                "5000",
                "--count",
                "50000",
                "--rate",
                "5000",
                "--size",
                "128",
            ]);
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };

    let t0 = Instant::now();
    let warm = Duration::from_secs(60).min(total / 4);
    let mut rss_warm = 0;
    let mut rss_max = 0;
    let (mut reloads, mut refused, mut prefix_changes, mut churns, mut bursts) = (0, 0, 0, 0, 0);
    let mut pool_high = false;
    let mut tick = 0u64;
    let mut gen_child: Option<std::process::Child> = None;
    while t0.elapsed() < total {
        std::thread::sleep(Duration::from_secs(5));
        tick += 1;
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "ipoed died:\n{}",
            lab.ipoed_log()
        );
        let rss = rss_kib(pid);
        rss_max = rss_max.max(rss);
        if rss_warm == 0 && t0.elapsed() >= warm {
            rss_warm = rss;
        }
        // Generator bursts, alternating IPv4 and IPv6.
        if gen_child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
        {
            gen_child = Some(
                if bursts % 2 == 0 {
                    gen("ipv4", "192.168.2.10", V4_SERVER)
                } else {
                    gen("ipv6", "2001:db8:0:111::10", "2001:db8:ffff::10")
                }
                .spawn()
                .expect("pktgen"),
            );
            bursts += 1;
        }
        // Every 30 s a reload (a good change, then a broken file).
        if tick.is_multiple_of(6) {
            let udp = 60 + (tick % 12) * 5;
            std::fs::write(
                lab.config_path(),
                format!("{cfg}firewall:\n  timeouts:\n    udp: {udp}\n"),
            )
            .unwrap();
            assert!(lab.ctl(&["reload"]).ok, "{}", lab.ipoed_log());
            reloads += 1;
            std::fs::write(lab.config_path(), format!("{cfg}firewall: [\n")).unwrap();
            assert!(!lab.ctl(&["reload"]).ok);
            refused += 1;
        }
        // Every 20 s a client renews, or releases and asks again.
        if tick.is_multiple_of(4) {
            let c = clients[(tick / 4) as usize % clients.len()];
            if (tick / 4).is_multiple_of(2) {
                lab.script_ok(&["lanhost", "renew", c]);
            } else {
                lab.script_ok(&["lanhost", "release", c]);
                assert!(lab.dhcp_client(c, "udhcpc", &[]), "{c} got no lease again");
            }
            churns += 1;
        }
        // Every 2 min the home gateway hands out another prefix.
        if tick.is_multiple_of(24) {
            pool_high = !pool_high;
            let pool = if pool_high {
                "2001:db8:0:120::/60"
            } else {
                "2001:db8:0:110::/60"
            };
            let mut args = vec!["--pool", pool];
            args.extend_from_slice(SHORT_PD_LEASE);
            lab.restart_dhcp6(&args);
            prefix_changes += 1;
        }
    }
    std::fs::write(&stop_flag, b"").unwrap();
    if let Some(mut c) = gen_child {
        let _ = c.wait();
    }
    let rss_end = rss_kib(pid);
    let dl = downloads.wait_with_output().expect("downloads");
    let dl = String::from_utf8_lossy(&dl.stdout).trim().to_owned();
    let ping = ping.stop();
    let gap_ms = ping.max_gap_ms;
    let summary = format!("{} sent, {} answered", ping.sent, ping.received);
    // Leases: every client still holds one, and the server agrees.
    let held = leases(&lab);
    let lost = clients.len().saturating_sub(held.len());
    let growth = (rss_end as f64 - rss_warm as f64) / rss_warm.max(1) as f64 * 100.0;
    let report = format!(
        "| figure | value |\n|---|---|\n\
         | duration | {:?} |\n| crashes | 0 (pid {pid} ran throughout) |\n\
         | RSS after warm-up / max / end | {rss_warm} / {rss_max} / {rss_end} KiB ({growth:+.1} %) |\n\
         | leases held / lost | {} / {lost} |\n| longest forwarding gap (ping every 20 ms) | {gap_ms} ms |\n\
         | ping | {summary} |\n| TCP downloads (1 MiB, SHA-256 checked) | {dl} |\n\
         | reloads applied / refused | {reloads} / {refused} |\n| prefix changes | {prefix_changes} |\n\
         | DHCP renewals | {churns} |\n| generator bursts (50k packets at 5 kpps) | {bursts} |\n",
        t0.elapsed(),
        held.len()
    );
    eprintln!("{report}");
    let _ = std::fs::write(bin("ipoed").with_file_name("soak-report.md"), &report);
    assert_eq!(lost, 0, "leases lost: {held:?}");
    assert!(growth.abs() <= 5.0, "RSS grew {growth:.1} % after warm-up");
    assert!(dl.contains("bad=0"), "corrupted downloads: {dl}");
    assert_eq!(lab.stop_ipoed().0, Some(0));
}
