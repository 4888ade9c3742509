//! Devices under test: ipoed (1 and 2 workers), the Linux kernel (plain and
//! with the user's firewall as nftables conntrack), and the AF_XDP ceiling.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::Value;

use super::mape;
use super::topo::{self, Topology, DUT_CORE, DUT_NS};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Dut {
    Ipoed1,
    Ipoed2,
    Linux,
    LinuxNft,
    Ceiling,
}

impl Dut {
    pub const ALL: [Dut; 5] = [
        Dut::Ipoed1,
        Dut::Ipoed2,
        Dut::Linux,
        Dut::LinuxNft,
        Dut::Ceiling,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dut::Ipoed1 => "ipoed-1w",
            Dut::Ipoed2 => "ipoed-2w",
            Dut::Linux => "linux",
            Dut::LinuxNft => "linux-nft",
            Dut::Ceiling => "afxdp-ceiling",
        }
    }

    /// Queues the generator must spread traffic over: a 1-queue DUT only
    /// listens on queue 0.
    pub fn queues(self) -> u32 {
        match self {
            Dut::Ipoed2 => 2,
            _ => 1,
        }
    }

    pub fn is_ipoed(self) -> bool {
        matches!(self, Dut::Ipoed1 | Dut::Ipoed2)
    }
}

pub struct Bins {
    pub ipoed: PathBuf,
    pub ipoectl: PathBuf,
    pub bench: PathBuf,
}

impl Bins {
    /// The binaries next to this one (make build puts them in target/release).
    pub fn locate() -> Result<Bins> {
        let me = std::env::current_exe()?;
        let dir = me.parent().unwrap_or(Path::new("."));
        let b = Bins {
            ipoed: dir.join("ipoed"),
            ipoectl: dir.join("ipoectl"),
            bench: me.clone(),
        };
        for p in [&b.ipoed, &b.ipoectl] {
            if !p.exists() {
                bail!(
                    "{} missing: run `cargo build --release --workspace --bins` first",
                    p.display()
                );
            }
        }
        Ok(b)
    }
}

pub struct Running {
    pub dut: Dut,
    child: Option<Child>,
    socket: PathBuf,
    run_dir: PathBuf,
}

impl Running {
    /// `mape`: ipoed runs MAP-E (a CE behind a BR) instead of DS-Lite; the
    /// other DUTs do not care.
    pub fn start(
        dut: Dut,
        mape: bool,
        topo: &Topology,
        bins: &Bins,
        run_dir: &Path,
    ) -> Result<Running> {
        std::fs::create_dir_all(run_dir)?;
        let socket = run_dir.join("ipoed.sock");
        let mut r = Running {
            dut,
            child: None,
            socket,
            run_dir: run_dir.to_path_buf(),
        };
        match dut {
            Dut::Linux => topo.kernel_router(false)?,
            Dut::LinuxNft => topo.kernel_router(true)?,
            Dut::Ipoed1 | Dut::Ipoed2 => {
                topo.clear_dut()?;
                let workers = if dut == Dut::Ipoed2 { 2 } else { 1 };
                // Worker 0 on the DUT core; a second worker has only the
                // generator's core left on this 2-core machine.
                let cores = if workers == 2 {
                    format!("[{DUT_CORE}, {}]", topo::GEN_CORE)
                } else {
                    format!("[{DUT_CORE}]")
                };
                // MAP-E and DS-Lite exclude each other; MAP-E takes its
                // end-user prefix from the WAN /64 (mape.rs).
                let (wan_addr, tunnel) = if mape {
                    (mape::WAN_ADDRESS, mape::config_section())
                } else {
                    (
                        "2001:db8:0:100::2/64",
                        "dslite:\n  aftr: 2001:db8:aaaa::1\n".to_string(),
                    )
                };
                let cfg = format!(
                    "wan:\n  interface: {}\n  ipv6:\n    address: {wan_addr}\n    gateway: fe80::1\n    slaac: false\n    dhcpv6_pd: false\n\
                     lan:\n  interface: {}\n  ipv4: 192.168.2.1/24\n  ipv6:\n    prefix: 2001:db8:0:111::/64\n\
                     {tunnel}\
                     firewall:\n  max_sessions: 1048576\n\
                     dataplane:\n  workers: {workers}\n  cores: {cores}\n  poll: adaptive\n  fill_ring: 8192\n  frames_per_worker: 32768\n\
                     control:\n  socket: {}\n  state_dir: {}\n  log_level: warn\n",
                    topo::DUT_WAN,
                    topo::DUT_LAN,
                    r.socket.display(),
                    run_dir.join("state").display()
                );
                let cfg_path = run_dir.join(format!("ipoed-{workers}w.yaml"));
                std::fs::write(&cfg_path, cfg)?;
                let log = std::fs::File::create(run_dir.join(format!("ipoed-{workers}w.log")))?;
                let child = Command::new("ip")
                    .args(["netns", "exec", DUT_NS, "nice", "-n", "-20"])
                    .arg(&bins.ipoed)
                    .arg("--config")
                    .arg(&cfg_path)
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()?;
                r.child = Some(child);
                let t0 = Instant::now();
                loop {
                    // Our child must be the one answering (not a stale daemon on the socket).
                    if let Some(Ok(Some(st))) = r.child.as_mut().map(|c| c.try_wait()) {
                        bail!("ipoed exited at start ({st}); see {}", run_dir.display());
                    }
                    // Ready once the tunnel is up: the static WAN address
                    // (the B4, or MAP-E's CE address) has passed DAD and the
                    // far end is known (`aftr` for DS-Lite, `br` for MAP-E).
                    if r.ctl(bins, &["show", "tunnel"]).is_some_and(|t| {
                        t["b4"].is_string() && (t["aftr"].is_string() || t["br"].is_string())
                    }) {
                        if !mape {
                            break;
                        }
                        if let Some(m) = r.ctl(bins, &["show", "map"]).filter(|m| m["up"] == true) {
                            mape::check_show_map(&m)?;
                            break;
                        }
                    }
                    if t0.elapsed() > Duration::from_secs(10) {
                        bail!("ipoed did not come up; see {}", run_dir.display());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                std::thread::sleep(Duration::from_millis(100));
                if let Some(Ok(Some(st))) = r.child.as_mut().map(|c| c.try_wait()) {
                    bail!("ipoed exited at start ({st}); see {}", run_dir.display());
                }
            }
            Dut::Ceiling => {
                topo.clear_dut()?;
                let log = std::fs::File::create(run_dir.join("ceiling.log"))?;
                let child = Command::new("ip")
                    .args(["netns", "exec", DUT_NS, "nice", "-n", "-20"])
                    .arg(&bins.bench)
                    .args([
                        "ceiling",
                        "--a",
                        topo::DUT_LAN,
                        "--b",
                        topo::DUT_WAN,
                        "--a-peer-mac",
                        topo::GEN_MAC,
                        "--b-peer-mac",
                        topo::SINK_MAC,
                        "--core",
                        &DUT_CORE.to_string(),
                    ])
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()?;
                r.child = Some(child);
                // Ready when every queue's sockets are in the XSKMAP: a fixed
                // wait lost the warm-up on a loaded machine.
                let log_path = run_dir.join("ceiling.log");
                let t0 = Instant::now();
                loop {
                    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if text.matches(" ready").count() >= Dut::Ceiling.queues() as usize {
                        break;
                    }
                    if let Some(Ok(Some(st))) = r.child.as_mut().map(|c| c.try_wait()) {
                        bail!(
                            "the ceiling exited at start ({st}); see {}",
                            log_path.display()
                        );
                    }
                    if t0.elapsed() > Duration::from_secs(10) {
                        bail!("the ceiling did not come up; see {}", log_path.display());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        Ok(r)
    }

    /// Where this DUT's config, log and state live.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    pub fn ctl(&self, bins: &Bins, args: &[&str]) -> Option<Value> {
        let out = Command::new(&bins.ipoectl)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--json")
            .args(args)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Zeroes ipoed's runtime figures (nothing for other DUTs).
    pub fn clear_runtime(&self, bins: &Bins) {
        if self.dut.is_ipoed() {
            self.ctl(bins, &["clear", "runtime"]);
        }
    }

    /// ipoed's per-node clocks/packet (VPP's show runtime).
    pub fn runtime(&self, bins: &Bins) -> Option<Value> {
        self.dut
            .is_ipoed()
            .then(|| self.ctl(bins, &["show", "runtime"]))
            .flatten()
    }

    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(3) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
            log_note(&format!(
                "{} needed SIGKILL; see {}",
                self.dut.name(),
                self.run_dir.display()
            ));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

fn log_note(s: &str) {
    eprintln!("bench: {s}");
}

/// Busy share of one CPU between two /proc/stat samples.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    busy: u64,
    total: u64,
}

impl CpuSample {
    pub fn take(cpu: usize) -> CpuSample {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let name = format!("cpu{cpu} ");
        let Some(line) = stat.lines().find(|l| l.starts_with(&name)) else {
            return CpuSample::default();
        };
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let total: u64 = v.iter().take(8).sum();
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        CpuSample {
            busy: total - idle,
            total,
        }
    }

    pub fn share_since(self, earlier: CpuSample) -> f64 {
        let t = self.total.saturating_sub(earlier.total);
        if t == 0 {
            return 0.0;
        }
        self.busy.saturating_sub(earlier.busy) as f64 / t as f64
    }
}
