//! Faults of issue 8, end to end with the real ipoed: kill -9 under
//! traffic and a restart, links going down and up on both sides, the home
//! gateway's DHCPv6 server restarting with another prefix, the AFTR and
//! the DNS server going away and coming back, and a state directory that
//! is full or read-only. Each recovers by itself, says so in the log, and
//! the forwarding gaps are measured with a ping every 20 ms.

use std::process::Command;
use std::time::{Duration, Instant};

use ipoe_tests::{Lab, PingProbe as Probe, SHORT_PD_LEASE};
use serde_json::Value;

const V4_SERVER: &str = "198.51.100.10";
const V4_URL: &str = "http://198.51.100.10/hello.txt";

fn sh(lab: &Lab, ns: &str, script: &str) -> ipoe_tests::Run {
    lab.exec(ns, &["sh", "-c", script])
}

/// The lab's dynamic config (SLAAC, PD from Kea, the AFTR by name) with a
/// DHCPv4 server on the LAN.
fn config(lab: &Lab) -> String {
    lab.auto_config(1, "aftr.lab.example", "wan").replace(
        "  ipv4: 192.168.2.1/24\n",
        "  ipv4: 192.168.2.1/24\n  dhcpv4:\n    lease_time: 1h\n",
    )
}

fn wait_forwarding(lab: &Lab, within: Duration) -> Duration {
    lab.wait_for(within, || {
        lab.fetch_within("lan1", V4_URL, Duration::from_secs(1))
    })
    .unwrap_or_else(|| panic!("no forwarding within {within:?}\n{}", lab.ipoed_log()))
}

fn wait_log(lab: &Lab, needle: &str, within: Duration) -> Duration {
    lab.wait_for(within, || lab.ipoed_log().contains(needle))
        .unwrap_or_else(|| {
            panic!(
                "no {needle:?} in the log within {within:?}:\n{}",
                lab.ipoed_log()
            )
        })
}

fn lease_ips(lab: &Lab) -> Vec<String> {
    let v = lab.ctl_json(&["show", "leases"]);
    v["dhcpv4"]["leases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["ip"].as_str().map(str::to_owned))
        .collect()
}

fn start_ready(lab: &mut Lab, cfg: &str) {
    lab.start_ipoed(cfg);
    let ok = lab.wait_for(Duration::from_secs(30), || {
        lab.ctl_json(&["show", "pd"])["lan_prefix"] == "2001:db8:0:111::/64"
            && lab.ctl_json(&["show", "tunnel"])["up"] == true
    });
    assert!(ok.is_some(), "not ready:\n{}", lab.ipoed_log());
    wait_forwarding(lab, Duration::from_secs(10));
}

#[test]
fn kill_9_under_traffic_then_start_keeps_state_and_forwards_within_3_s() {
    let mut lab = Lab::fresh(1);
    let cfg = config(&lab);
    start_ready(&mut lab, &cfg);
    lab.lanhost("lan2", &["--ipv6", "off"]);
    assert!(lab.dhcp_client("lan2", "udhcpc", &[]));
    let leases = lease_ips(&lab);
    let pd: Value = lab.ctl_json(&["show", "pd"]);
    let caps = std::fs::read_to_string(format!(
        "/proc/{}/status",
        lab.ipoed_pid().expect("running")
    ))
    .unwrap();
    // Privileges: only net_admin, net_raw and bpf are left after start.
    let eff = caps
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    assert_eq!(eff, (1 << 12) | (1 << 13) | (1 << 39), "CapEff {eff:x}");

    let probe = Probe::start(&lab, "lan1", V4_SERVER);
    std::thread::sleep(Duration::from_millis(500));
    lab.kill_ipoed();
    // The kernel closed the bpf_link: no program of a dead ipoed is left
    // to drop traffic into sockets nobody reads.
    assert!(!ipoe_tests::xdp_attached(&lab, "router", "wan0"));
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    lab.start_ipoed(&cfg);
    let back = wait_forwarding(&lab, Duration::from_secs(10));
    let took = t0.elapsed();
    let r = probe.stop();
    eprintln!(
        "kill -9: forwarding again {took:?} after the start ({back:?} after it answered); \
         ping {}/{} answered, longest gap {} ms (includes the 0.5 s ipoed was dead)",
        r.received, r.sent, r.max_gap_ms
    );
    assert!(took < Duration::from_secs(3), "forwarding took {took:?}");
    let pd2 = lab.ctl_json(&["show", "pd"]);
    assert_eq!(pd2["delegated_prefix"], pd["delegated_prefix"]);
    assert_eq!(pd2["duid"], pd["duid"]);
    assert!(lab.ipoed_log().contains("confirming it with Rebind"));
    assert_eq!(lease_ips(&lab), leases, "DHCPv4 leases lost");
}

#[test]
fn links_and_peers_go_away_and_come_back() {
    let mut lab = Lab::fresh(1);
    // Short PD timers and DNS TTL so the recoveries happen within a test.
    lab.restart_dhcp6(SHORT_PD_LEASE);
    lab.script_ok(&["dns", "start", "--ttl", "4"]);
    let cfg = config(&lab);
    start_ready(&mut lab, &cfg);

    // WAN link: the home gateway's port goes down for 2 s. A real home
    // gateway keeps its addresses and routes across that; Linux drops them
    // with the link, so the lab's gateway puts them back as it comes up.
    let probe = Probe::start(&lab, "lan1", V4_SERVER);
    assert!(sh(&lab, "hgw", "ip link set down0 down").ok);
    wait_log(&lab, "wan: carrier lost", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(2));
    let pool = std::fs::read_to_string(lab.run_dir.join("dhcp6.route")).unwrap();
    let r = sh(
        &lab,
        "hgw",
        &format!(
            "ip link set down0 up && ip -6 addr replace fe80::1/64 dev down0 nodad && \
             ip -6 addr replace 2001:db8:0:100::1/64 dev down0 nodad && \
             ip -6 route replace {} via fe80::ff:fe00:202 dev down0",
            pool.trim()
        ),
    );
    assert!(r.ok, "{}", r.stderr);
    wait_log(&lab, "wan: carrier up", Duration::from_secs(5));
    wait_forwarding(&lab, Duration::from_secs(15));
    let r = probe.stop();
    eprintln!(
        "WAN link down 2 s: longest gap {} ms ({}/{})",
        r.max_gap_ms, r.received, r.sent
    );
    assert!(r.max_gap_ms < 10_000, "gap {} ms", r.max_gap_ms);

    // LAN link: the switch port goes down for 2 s.
    let probe = Probe::start(&lab, "lan1", V4_SERVER);
    assert!(sh(&lab, "lansw", "ip link set sw-router down").ok);
    wait_log(&lab, "lan: carrier lost", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(2));
    assert!(sh(&lab, "lansw", "ip link set sw-router up").ok);
    wait_log(
        &lab,
        "lan: carrier up; advertising at once",
        Duration::from_secs(5),
    );
    wait_forwarding(&lab, Duration::from_secs(10));
    let r = probe.stop();
    eprintln!(
        "LAN link down 2 s: longest gap {} ms ({}/{})",
        r.max_gap_ms, r.received, r.sent
    );
    assert!(r.max_gap_ms < 6_000, "gap {} ms", r.max_gap_ms);

    // The AFTR stops answering (SIGSTOP) for 12 s, then resumes.
    let probe = Probe::start(&lab, "lan1", V4_SERVER);
    assert!(lab.signal("aftr", 19));
    wait_log(&lab, "nothing from the AFTR", Duration::from_secs(20));
    assert!(lab.signal("aftr", 18));
    wait_log(&lab, "answers again", Duration::from_secs(10));
    let r = probe.stop();
    eprintln!(
        "AFTR stopped: longest gap {} ms ({}/{})",
        r.max_gap_ms, r.received, r.sent
    );
    wait_forwarding(&lab, Duration::from_secs(5));

    // The DNS server that named the AFTR goes away: the last answer is
    // kept (logged), forwarding goes on, and it resolves again after.
    let probe = Probe::start(&lab, "lan1", V4_SERVER);
    lab.script_ok(&["dns", "stop"]);
    wait_log(&lab, "keeping 2001:db8:aaaa::1", Duration::from_secs(30));
    lab.script_ok(&["dns", "start", "--ttl", "4"]);
    wait_log(&lab, "resolved again", Duration::from_secs(30));
    let r = probe.stop();
    eprintln!(
        "DNS down: {}/{} answered, longest gap {} ms",
        r.received, r.sent, r.max_gap_ms
    );
    assert!(
        r.max_gap_ms < 1_000,
        "forwarding stopped while DNS was down"
    );

    // The DHCPv6 server restarts with another pool, under traffic.
    let probe = Probe::start(&lab, "lan1", V4_SERVER);
    let mut args = vec!["--pool", "2001:db8:0:120::/60"];
    args.extend_from_slice(SHORT_PD_LEASE);
    lab.restart_dhcp6(&args);
    wait_log(
        &lab,
        "wan: delegated prefix 2001:db8:0:120::/60",
        Duration::from_secs(40),
    );
    wait_forwarding(&lab, Duration::from_secs(10));
    let r = probe.stop();
    eprintln!(
        "DHCPv6 server restarted with a new pool: {}/{} answered, longest gap {} ms",
        r.received, r.sent, r.max_gap_ms
    );
    assert_eq!(
        lab.ctl_json(&["show", "pd"])["lan_prefix"],
        "2001:db8:0:121::/64"
    );
    assert!(lab
        .wait_for(Duration::from_secs(5), || lab.ctl(&["version"]).ok)
        .is_some());
}

/// A tmpfs mounted on the state directory for one test, unmounted after.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path) -> SmallDisk {
        let _ = std::fs::create_dir_all(dir);
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k,mode=0700", "ipoe-state"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs on {}", dir.display());
        SmallDisk(dir.to_path_buf())
    }

    fn fill(&self) {
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4k"])
            .arg(format!("of={}", self.0.join("filler").display()))
            .stderr(std::process::Stdio::null())
            .status();
    }

    fn remount(&self, opt: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{opt}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {opt}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn state_dir_full_or_read_only_keeps_the_last_good_state() {
    let mut lab = Lab::fresh(1);
    let disk = SmallDisk::mount(&lab.state_dir());
    let cfg = config(&lab);
    start_ready(&mut lab, &cfg);
    lab.lanhost("lan2", &["--ipv6", "off"]);
    assert!(lab.dhcp_client("lan2", "udhcpc", &[]));
    let file = lab.state_dir().join("dhcpv4-leases.json");
    let saved = lab.wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.contains("192.168.2.100"))
    });
    assert!(saved.is_some(), "lease file not written");
    let good = std::fs::read(&file).unwrap();

    // Full: a new lease cannot be saved; the old file stays whole.
    disk.fill();
    lab.lanhost("lan3", &["--ipv6", "off"]);
    assert!(
        lab.dhcp_client("lan3", "udhcpc", &[]),
        "the server stopped serving"
    );
    wait_log(&lab, "No space left on device", Duration::from_secs(10));
    assert!(lab.ipoed_log().contains("the previous version is kept"));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        good,
        "last good file damaged"
    );
    serde_json::from_slice::<Value>(&good).expect("still valid JSON");
    assert!(
        lab.fetch("lan1", V4_URL),
        "forwarding stopped with the disk full"
    );
    assert!(lab.error_count("control", "state-write-failed") >= 1);
    // Room again: the pending write goes out by itself.
    std::fs::remove_file(lab.state_dir().join("filler")).unwrap();
    wait_log(&lab, "writing works again", Duration::from_secs(12));
    let now = std::fs::read_to_string(&file).unwrap();
    assert!(now.contains("192.168.2.101"), "{now}");

    // Read-only: the same, then back.
    let before_ro = std::fs::read(&file).unwrap();
    disk.remount("ro");
    lab.lanhost("lan4", &["--ipv6", "off"]);
    assert!(lab.dhcp_client("lan4", "udhcpc", &[]));
    wait_log(&lab, "Read-only file system", Duration::from_secs(10));
    assert_eq!(std::fs::read(&file).unwrap(), before_ro);
    assert!(lab.fetch("lan1", V4_URL));
    disk.remount("rw");
    let log_len = lab.ipoed_log().matches("writing works again").count();
    let again = lab.wait_for(Duration::from_secs(12), || {
        lab.ipoed_log().matches("writing works again").count() > log_len
    });
    assert!(again.is_some(), "{}", lab.ipoed_log());
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("192.168.2.102"));
    assert_eq!(lab.stop_ipoed().0, Some(0));
    drop(disk);
}
