//! The systemd unit's sandbox still lets ipoed work: ipoed runs in the lab
//! under packaging/sandbox-exec.sh, which applies the unit's capability
//! bounding set, NoNewPrivileges, ProtectSystem=strict (everything
//! read-only but the runtime and state directories), ProtectHome and
//! PrivateTmp as the kernel sees them. It must start, forward, answer the
//! CLI, reload, save its state, and stop cleanly.

use std::time::Duration;

use std::path::{Path, PathBuf};

use ipoe_tests::{bin, workspace, Lab};

#[test]
fn ipoed_works_inside_the_units_sandbox() {
    let mut lab = Lab::fresh(1);
    let unit = workspace().join("packaging/ipoed.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for opt in [
        "Type=notify",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=",
    ] {
        assert!(text.contains(opt), "the unit lacks {opt}");
    }
    let wrapper: Vec<String> = vec![
        workspace()
            .join("packaging/sandbox-exec.sh")
            .display()
            .to_string(),
        unit.display().to_string(),
        lab.run_dir.display().to_string(),
        lab.state_dir().display().to_string(),
        "--".to_owned(),
    ];
    let cfg = lab.auto_config(1, "aftr.lab.example", "wan").replace(
        "  ipv4: 192.168.2.1/24\n",
        "  ipv4: 192.168.2.1/24\n  dhcpv4: {}\n",
    );
    // The sandbox hides /tmp (PrivateTmp) and /home and /root (ProtectHome),
    // where checkouts usually live: run a copy installed as a package would.
    let installed = install_like_a_package(&bin("ipoed"));
    lab.start_ipoed_binary(&installed, &cfg, &[], &wrapper);
    let pid = lab.ipoed_pid().expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap()
    };
    // The bounding set is the unit's; the effective set what ipoed keeps.
    let (bpf, perfmon, net_admin, net_raw, ipc_lock, chown) = (39, 38, 12, 13, 14, 0);
    let unit_caps = [bpf, perfmon, net_admin, net_raw, ipc_lock, chown]
        .iter()
        .fold(0u64, |m, c| m | 1 << c);
    assert_eq!(
        field("CapBnd:") & !unit_caps,
        0,
        "bounding set wider than the unit's"
    );
    assert_eq!(field("CapEff:"), 1 << net_admin | 1 << net_raw | 1 << bpf);
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");

    let fwd = lab.wait_for(Duration::from_secs(30), || {
        lab.fetch_within(
            "lan1",
            "http://198.51.100.10/hello.txt",
            Duration::from_secs(1),
        )
    });
    assert!(
        fwd.is_some(),
        "no forwarding in the sandbox:\n{}",
        lab.ipoed_log()
    );
    assert!(
        lab.ctl(&["show", "errors"]).ok,
        "BPF maps unreadable after the drop"
    );
    // State is written (StateDirectory), the rest of the system is not.
    let saved = lab.wait_for(Duration::from_secs(10), || {
        lab.state_dir().join("pd-lease.json").exists() && lab.state_dir().join("duid").exists()
    });
    assert!(saved.is_some(), "state not written in the sandbox");
    assert!(lab.ctl(&["reload"]).ok);
    let log = lab.ipoed_log();
    assert!(!log.contains("state will not survive"), "{log}");
    assert_eq!(lab.stop_ipoed().0, Some(0), "{}", lab.ipoed_log());
}

/// Where the lab installs the ipoed that runs in the sandbox: under /usr,
/// which ProtectSystem=strict leaves readable, as the unit's /usr/sbin is.
const INSTALL_DIR: &str = "/usr/local/libexec/ipoe-lab";

/// Copies `binary` to INSTALL_DIR atomically (a copy, then a rename, so a
/// second run never finds a half-written file) and returns the new path.
fn install_like_a_package(binary: &Path) -> PathBuf {
    let dir = Path::new(INSTALL_DIR);
    std::fs::create_dir_all(dir).expect("create the install directory");
    let dest = dir.join("ipoed");
    let tmp = dir.join(".ipoed.tmp");
    std::fs::copy(binary, &tmp).expect("copy ipoed");
    std::fs::rename(&tmp, &dest).expect("install ipoed");
    dest
}
