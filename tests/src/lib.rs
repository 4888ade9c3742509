//! The lab fixture for integration tests: brings the namespace lab up
//! (tests/lab/lab.sh), runs the real `ipoed` in the `router` namespace, and
//! tears everything down on drop, even when a test fails half-way.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Lab tests share fixed namespace names: one at a time.
static LAB_LOCK: Mutex<()> = Mutex::new(());

/// DHCPv6 server timers short enough to see a Renew cycle in a test.
pub const SHORT_PD_LEASE: &[&str] = &[
    "--t1",
    "10",
    "--t2",
    "16",
    "--preferred",
    "30",
    "--valid",
    "60",
];

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// A binary of the workspace, built by `make build` (release) or `cargo build`.
pub fn bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let p = target.join(profile).join(name);
    assert!(
        p.exists(),
        "{} is missing: build it first (make build, or cargo build{} --bins)",
        p.display(),
        if profile == "release" {
            " --release"
        } else {
            ""
        }
    );
    p
}

pub struct Lab {
    _guard: MutexGuard<'static, ()>,
    /// Held until the lab is down (dropped after `Drop::drop` ran).
    _flock: std::fs::File,
    pub run_dir: PathBuf,
    ipoed: Option<Child>,
    pub socket: PathBuf,
    pub log: PathBuf,
}

pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

fn to_run(o: Output) -> Run {
    Run {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

impl Lab {
    /// Build the lab with `queues` queues on the router's veths.
    pub fn up(queues: u32) -> Lab {
        let guard = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // The namespaces have fixed names: a lab test of another process
        // (another test binary, a second `cargo test`) waits its turn.
        let flock = machine_lock();
        let run_dir = PathBuf::from("/run/ipoe-lab");
        let lab = Lab {
            _guard: guard,
            _flock: flock,
            socket: run_dir.join("ipoed.sock"),
            log: run_dir.join("ipoed.log"),
            run_dir,
            ipoed: None,
        };
        let r = lab.script(&["up", "--queues", &queues.to_string()]);
        assert!(r.ok, "lab.sh up failed:\n{}\n{}", r.stdout, r.stderr);
        lab
    }

    /// Run a lab.sh subcommand (e.g. `["dhcp6", "start", "--pool", ...]`).
    pub fn script(&self, args: &[&str]) -> Run {
        let out = Command::new("bash")
            .arg(workspace().join("tests/lab/lab.sh"))
            .args(args)
            .env("IPOE_LAB_DIR", &self.run_dir)
            .output()
            .expect("run lab.sh");
        to_run(out)
    }

    /// The lab config with `workers` workers (see config/examples/lab.yaml).
    pub fn config(&self, workers: usize) -> String {
        format!(
            "wan:\n  interface: wan0\n  ipv6:\n    address: 2001:db8:0:100::2/64\n    gateway: fe80::1\n    slaac: false\n    dhcpv6_pd: false\n\
             lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    prefix: 2001:db8:0:111::/64\n\
             dslite:\n  aftr: 2001:db8:aaaa::1\n  b4_address: wan\n\
             dataplane:\n  workers: {workers}\n  poll: adaptive\n\
             control:\n  socket: {}\n  state_dir: {}\n  log_level: debug\n",
            self.socket.display(),
            self.run_dir.join("state").display()
        )
    }

    /// A config with no addresses: everything is learned from the home
    /// gateway (see config/examples/lab-auto.yaml). `subnet_id`, the AFTR
    /// (`aftr.lab.example`, an address or `dhcpv6`) and the B4 source
    /// (`wan` or `delegated`) vary between tests.
    pub fn auto_config(&self, subnet_id: u32, aftr: &str, b4: &str) -> String {
        format!(
            "wan:\n  interface: wan0\n  ipv6:\n    slaac: true\n    dhcpv6_pd: {{ prefix_hint: 60 }}\n\
             lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    subnet_id: {subnet_id}\n\
             dslite:\n  aftr: {aftr}\n  b4_address: {b4}\n\
             dataplane:\n  workers: 1\n\
             control:\n  socket: {}\n  state_dir: {}\n  log_level: debug\n",
            self.socket.display(),
            self.state_dir().display()
        )
    }

    /// A lab with an empty `state_dir`: ipoed starts as on a new machine.
    pub fn fresh(queues: u32) -> Lab {
        let lab = Lab::up(queues);
        let _ = std::fs::remove_dir_all(lab.state_dir());
        lab
    }

    /// An HTTP GET from namespace `ns` (3 s at most); whether it worked.
    pub fn fetch(&self, ns: &str, url: &str) -> bool {
        self.exec(
            ns,
            &["curl", "-sS", "-m", "3", "-g", "-o", "/dev/null", url],
        )
        .ok
    }

    /// [`Self::fetch`] retried until it works or `timeout` passes.
    pub fn fetch_within(&self, ns: &str, url: &str, timeout: Duration) -> bool {
        self.wait_for(timeout, || self.fetch(ns, url)).is_some()
    }

    /// Frames of the capture `pcap` (read in `ns`) that match `ours` and
    /// that tshark finds malformed or warns about, one per line; empty if
    /// none. TCP analysis (zero windows, retransmissions) judges the end
    /// hosts' TCP, not what the router put on the wire, so it is left out.
    pub fn tshark_warnings(&self, ns: &str, pcap: &str, ours: &str) -> String {
        let filter = format!(
            "{ours} && ((_ws.expert.severity >= 6291456 && !tcp.analysis.flags) || _ws.malformed)"
        );
        let r = self.exec(ns, &["tshark", "-n", "-r", pcap, "-Y", &filter]);
        assert!(r.ok, "tshark -r {pcap}: {}", r.stderr);
        r.stdout.trim().to_owned()
    }

    /// Starts tshark on `iface` in `ns`, writing the frames of the capture
    /// filter `filter` to `file`; returns once it captures (tshark creates
    /// the file then).
    pub fn tshark_capture(&self, ns: &str, iface: &str, filter: &str, file: &str) -> Child {
        let _ = std::fs::remove_file(file);
        let child = self.spawn(ns, &["tshark", "-n", "-i", iface, "-f", filter, "-w", file]);
        let up = self.wait_for(Duration::from_secs(15), || {
            std::path::Path::new(file).exists()
        });
        assert!(up.is_some(), "tshark did not start on {ns}/{iface}");
        std::thread::sleep(Duration::from_millis(500));
        child
    }

    /// Frames of the capture `file` (read in `ns`) that match the display
    /// filter `filter`.
    pub fn tshark_count(&self, ns: &str, file: &str, filter: &str) -> usize {
        let r = self.exec(ns, &["tshark", "-n", "-r", file, "-Y", filter]);
        assert!(r.ok, "tshark -r: {}", r.stderr);
        r.stdout.lines().count()
    }

    /// A TCP connection attempt over IPv6 from `ns` to `[addr]:port` (2 s
    /// at most); what the server said, or `None` if it did not connect.
    pub fn tcp6_connect(&self, ns: &str, addr: &str, port: u16) -> Option<String> {
        let target = format!("TCP6:[{addr}]:{port},connect-timeout=2");
        let r = self.exec(ns, &["socat", "-T2", "-u", &target, "STDOUT"]);
        r.ok.then_some(r.stdout)
    }

    /// lan2 at 192.168.2.20, IPv4 only (a LAN server for port forwards).
    pub fn add_lan2_v4(&self) {
        self.lanhost("lan2", &["--ipv6", "off"]);
        for c in [
            "ip addr add 192.168.2.20/24 dev eth0",
            "ip route add default via 192.168.2.1",
        ] {
            let args: Vec<&str> = c.split(' ').collect();
            let r = self.exec("lan2", &args);
            assert!(r.ok, "{c}: {}", r.stderr);
        }
    }

    /// A TCP server on `ns`:8080 that answers each connection with the
    /// address it sees the client at; returns once it listens.
    pub fn tcp_server(&self, ns: &str) -> Child {
        let script = r#"
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen(16)
while True:
    c, a = s.accept()
    c.sendall(b"server sees %s\n" % a[0].encode())
    c.close()
"#;
        let child = self.spawn(ns, &["python3", "-c", script]);
        let up = self.wait_for(Duration::from_secs(10), || {
            !self
                .exec(ns, &["ss", "-Hltn", "sport = :8080"])
                .stdout
                .trim()
                .is_empty()
        });
        assert!(up.is_some(), "the TCP server on {ns} does not listen");
        child
    }

    /// Connects over IPv4 from `ns` to `addr`:`port` (3 s at most) and
    /// returns the server's line, or what went wrong.
    pub fn tcp_ask(&self, ns: &str, addr: &str, port: u16) -> Result<String, String> {
        let script = format!(
            r#"
import socket
c = socket.create_connection(("{addr}", {port}), timeout=3)
c.settimeout(3)
data = b""
while True:
    b = c.recv(100)
    if not b:
        break
    data += b
print(data.decode().strip())
"#
        );
        let r = self.exec(ns, &["python3", "-c", &script]);
        if r.ok {
            Ok(r.stdout.trim().to_owned())
        } else {
            Err(r.stderr)
        }
    }

    /// A lab.sh subcommand that must succeed.
    pub fn script_ok(&self, args: &[&str]) {
        let r = self.script(args);
        assert!(r.ok, "lab.sh {args:?} failed:\n{}\n{}", r.stdout, r.stderr);
    }

    /// Restarts the home gateway's DHCPv6 server with `args` (e.g.
    /// `["--pool", "2001:db8:0:120::/60", "--t1", "10"]`).
    pub fn restart_dhcp6(&self, args: &[&str]) {
        self.script_ok(&["dhcp6", "stop"]);
        let mut a = vec!["dhcp6", "start"];
        a.extend_from_slice(args);
        self.script_ok(&a);
    }

    /// A LAN host (lan2..lan9) on the lab's switch, with no addresses.
    pub fn lanhost(&self, name: &str, args: &[&str]) {
        let mut a = vec!["lanhost", "add", name];
        a.extend_from_slice(args);
        let r = self.script(&a);
        assert!(r.ok, "lanhost add {name}: {}\n{}", r.stdout, r.stderr);
    }

    /// Starts a DHCP client (`dhcpcd`, `udhcpc`, `dhclient4`, `dhclient6`)
    /// in a LAN host and waits up to 20 s for its result; returns whether
    /// it got one.
    pub fn dhcp_client(&self, name: &str, client: &str, args: &[&str]) -> bool {
        let mut a = vec!["lanhost", "dhcp", name, client];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--wait", "20"]);
        self.script(&a).ok
    }

    /// A `KEY=VALUE` result file a LAN host's client wrote (see
    /// tests/lab/README.md), e.g. `("lan2", "dhcpcd.lease4")`.
    pub fn lease_file(&self, host: &str, file: &str) -> std::collections::HashMap<String, String> {
        std::fs::read_to_string(self.run_dir.join("lanhosts").join(host).join(file))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.run_dir.join("state")
    }

    /// Start ipoed in the router namespace and wait until it answers.
    pub fn start_ipoed(&mut self, config: &str) {
        self.start_ipoed_env(config, &[]);
    }

    /// The config file ipoed runs with (rewrite it, then `reload`).
    pub fn config_path(&self) -> PathBuf {
        self.run_dir.join("ipoed.yaml")
    }

    /// `start_ipoed` with extra environment variables (e.g. NOTIFY_SOCKET).
    pub fn start_ipoed_env(&mut self, config: &str, env: &[(&str, &str)]) {
        self.start_ipoed_with(config, env, &[]);
    }

    /// `start_ipoed_env` with ipoed run by `wrapper` (a command that execs
    /// its last arguments, such as packaging/sandbox-exec.sh).
    pub fn start_ipoed_with(&mut self, config: &str, env: &[(&str, &str)], wrapper: &[String]) {
        self.start_ipoed_binary(&bin("ipoed"), config, env, wrapper)
    }

    /// Like `start_ipoed_with`, with the ipoed binary at `binary` (a copy
    /// installed where a sandbox can see it, for instance).
    pub fn start_ipoed_binary(
        &mut self,
        binary: &Path,
        config: &str,
        env: &[(&str, &str)],
        wrapper: &[String],
    ) {
        let path = self.config_path();
        std::fs::write(&path, config).expect("write config");
        let log = std::fs::File::create(&self.log).expect("ipoed log");
        let child = Command::new("ip")
            .args(["netns", "exec", "router"])
            .args(wrapper)
            .arg(binary)
            .arg("--config")
            .arg(&path)
            .envs(env.iter().copied())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn ipoed");
        self.ipoed = Some(child);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Some(status) = self
                .ipoed
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("ipoed exited at start ({status}):\n{}", self.ipoed_log());
            }
            if self.ctl(&["version"]).ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("ipoed did not answer within 10 s:\n{}", self.ipoed_log());
    }

    pub fn ipoed_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM ipoed; returns its exit code and how long it took to exit.
    pub fn stop_ipoed(&mut self) -> (Option<i32>, Duration) {
        let mut child = self.ipoed.take().expect("ipoed running");
        // `ip netns exec` execs the binary, so this pid is ipoed itself.
        let t0 = Instant::now();
        // SAFETY: sending a signal to our child.
        unsafe { libc_kill(child.id() as i32, 15) };
        loop {
            if let Some(st) = child.try_wait().expect("wait ipoed") {
                return (st.code(), t0.elapsed());
            }
            if t0.elapsed() > Duration::from_secs(5) {
                let _ = child.kill();
                let _ = child.wait();
                return (None, t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// ipoed's pid while it runs.
    pub fn ipoed_pid(&self) -> Option<u32> {
        self.ipoed.as_ref().map(|c| c.id())
    }

    /// SIGKILL ipoed, as a crash would.
    pub fn kill_ipoed(&mut self) {
        let mut child = self.ipoed.take().expect("ipoed running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Run a command in a namespace.
    pub fn exec(&self, ns: &str, cmd: &[&str]) -> Run {
        let out = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec");
        to_run(out)
    }

    /// Start a command in a namespace in the background.
    pub fn spawn(&self, ns: &str, cmd: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn in namespace")
    }

    pub fn ctl(&self, args: &[&str]) -> Run {
        let out = Command::new(bin("ipoectl"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run ipoectl");
        to_run(out)
    }

    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let r = self.ctl(&a);
        assert!(r.ok, "ipoectl {args:?} failed: {}", r.stderr);
        serde_json::from_str(&r.stdout).expect("ipoectl --json prints JSON")
    }

    /// The AFTR emulator's counters (SIGUSR1 makes it write them at once).
    pub fn aftr_stats(&self) -> Value {
        let pid = std::fs::read_to_string(self.run_dir.join("pids/aftr.pid")).unwrap_or_default();
        if let Some(Ok(pid)) = pid.split_whitespace().next().map(str::parse::<i32>) {
            // SAFETY: signalling the lab's own process.
            unsafe { libc_kill(pid, 10) };
            std::thread::sleep(Duration::from_millis(300));
        }
        let text =
            std::fs::read_to_string(self.run_dir.join("aftr-stats.json")).expect("aftr-stats.json");
        serde_json::from_str(&text).expect("aftr stats are JSON")
    }

    /// Polls `cond` every 100 ms until it holds or `timeout` passes;
    /// returns how long it took.
    pub fn wait_for(&self, timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
        let t0 = Instant::now();
        loop {
            if cond() {
                return Some(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pid lab.sh recorded for one of its processes.
    pub fn pid_of(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.run_dir.join(format!("pids/{name}.pid")))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Send `sig` to a lab process by its pid file name.
    pub fn signal(&self, name: &str, sig: i32) -> bool {
        match self.pid_of(name) {
            // SAFETY: signalling one of the lab's own processes.
            Some(pid) => unsafe { libc_kill(pid, sig) == 0 },
            None => false,
        }
    }

    /// A named drop counter from `show errors`.
    pub fn error_count(&self, node: &str, counter: &str) -> u64 {
        let v = self.ctl_json(&["show", "errors"]);
        v["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["node"] == node && e["counter"] == counter)
            .and_then(|e| e["count"].as_u64())
            .unwrap_or_else(|| panic!("no counter {node}/{counter}"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.ipoed.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let r = self.script(&["down"]);
        if !r.ok {
            eprintln!("lab.sh down failed: {}{}", r.stdout, r.stderr);
        }
    }
}

/// A `ping -D` every 20 ms through the router, read back as the longest
/// gap between two replies: the outage a user would see.
pub struct PingProbe {
    child: Child,
    /// Its output: a file, as a pipe nobody reads would fill and stop ping.
    out: PathBuf,
}

pub struct PingResult {
    pub sent: u32,
    pub received: u32,
    /// Longest time without a reply, in ms (`u64::MAX` with under two
    /// replies).
    pub max_gap_ms: u64,
}

impl PingProbe {
    pub fn start(lab: &Lab, ns: &str, dst: &str) -> PingProbe {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = lab
            .run_dir
            .join(format!("ping-{}-{k}.txt", std::process::id()));
        let file = std::fs::File::create(&out).expect("ping output file");
        let child = Command::new("ip")
            .args([
                "netns", "exec", ns, "ping", "-D", "-n", "-i", "0.02", "-W", "1", dst,
            ])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ping");
        std::thread::sleep(Duration::from_millis(300));
        PingProbe { child, out }
    }

    pub fn stop(self) -> PingResult {
        // SAFETY: signalling our own child (ping prints its summary on INT).
        unsafe { libc_kill(self.child.id() as i32, 2) };
        let mut child = self.child;
        let _ = child.wait();
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let _ = std::fs::remove_file(&self.out);
        let mut times: Vec<f64> = text
            .lines()
            .filter(|l| l.contains("bytes from"))
            .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
            .collect();
        times.sort_by(f64::total_cmp);
        let max_gap_ms = times
            .windows(2)
            .map(|w| ((w[1] - w[0]) * 1000.0) as u64)
            .max()
            .unwrap_or(u64::MAX);
        let summary = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or("");
        let nums: Vec<u32> = summary
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        PingResult {
            sent: nums.first().copied().unwrap_or(0),
            received: nums.get(1).copied().unwrap_or(0),
            max_gap_ms,
        }
    }
}

/// An exclusive lock on /run/ipoe-lab.lock, across processes; released when
/// the file is closed.
fn machine_lock() -> std::fs::File {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/run/ipoe-lab.lock")
        .expect("open /run/ipoe-lab.lock");
    extern "C" {
        fn flock(fd: i32, op: i32) -> i32;
    }
    const LOCK_EX: i32 = 2;
    // SAFETY: flock on a file we opened; blocks until the lab is free.
    while unsafe { flock(f.as_raw_fd(), LOCK_EX) } != 0 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    f
}

/// SIGTERM a child (e.g. tcpdump, so it flushes its capture) and reap it.
pub fn terminate(child: &mut Child) {
    // SAFETY: signalling our own child.
    unsafe { libc_kill(child.id() as i32, 15) };
    let _ = child.wait();
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Whether any XDP program is attached to `iface` in namespace `ns`.
pub fn xdp_attached(lab: &Lab, ns: &str, iface: &str) -> bool {
    let r = lab.exec(ns, &["ip", "-d", "link", "show", "dev", iface]);
    assert!(r.ok, "ip link show {iface}: {}", r.stderr);
    r.stdout.contains("prog/xdp") || r.stdout.contains(" xdp")
}

impl Lab {
    /// ipoed's resident set size in KiB (`VmRSS`), while it runs.
    pub fn ipoed_rss_kib(&self) -> Option<u64> {
        let pid = self.ipoed_pid()?;
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Whether ipoed still runs (not exited: our unreaped child would be a
    /// zombie) and answers `ipoectl version`.
    pub fn ipoed_alive(&self) -> bool {
        let Some(pid) = self.ipoed_pid() else {
            return false;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // "pid (comm) S ...": the state follows the last ')'.
        let running = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X");
        running && self.ctl(&["version"]).ok
    }

    /// Every counter of `show errors`, keyed `node/counter`.
    pub fn error_counts(&self) -> std::collections::HashMap<String, u64> {
        let v = self.ctl_json(&["show", "errors"]);
        v["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some((
                    format!("{}/{}", e["node"].as_str()?, e["counter"].as_str()?),
                    e["count"].as_u64()?,
                ))
            })
            .collect()
    }
}

/// The MAP-E BR emulator (tests/lab/br.py, run by `lab.sh br`).
impl Lab {
    /// Starts (or restarts) the BR beside the AFTR with br.py options such
    /// as `["--rule", "ocn-lab", "--iid", "rfc7597"]` (default: the
    /// `v6plus-lab` rule, legacy Interface-IDs); returns once it listens and
    /// its routes are in place.
    pub fn br_start(&self, args: &[&str]) {
        let mut a = vec!["br", "start"];
        a.extend_from_slice(args);
        self.script_ok(&a);
    }

    /// Stops the BR and removes its rule routes.
    pub fn br_stop(&self) {
        self.script_ok(&["br", "stop"]);
    }

    /// The BR's counters (SIGUSR1 makes it write them at once); see
    /// tests/lab/README.md, "br.py".
    pub fn br_stats(&self) -> Value {
        assert!(self.signal("br", 10), "br.py is not running");
        std::thread::sleep(Duration::from_millis(300));
        let text =
            std::fs::read_to_string(self.run_dir.join("br-stats.json")).expect("br-stats.json");
        serde_json::from_str(&text).expect("br stats are JSON")
    }

    /// Runs brce.py (a CE or customer of our own) in the router namespace
    /// against the tunnel end `end` (br.py or ipip.py) and `server`, with
    /// `steps` (tests/lab/brce.py says what a step is); returns each step's
    /// result. Every step must have gone as its `expect` says; otherwise
    /// the failure shows with the end's log (`log`, in the run directory).
    pub fn brce(
        &self,
        end: &str,
        server: &str,
        wait_s: u64,
        steps: &[Value],
        log: &str,
    ) -> Vec<Value> {
        let spec = serde_json::json!({
            "br": end,
            "server": server,
            "wait": wait_s,
            "steps": steps,
        });
        let script = workspace().join("tests/lab/brce.py");
        let r = self.exec(
            "router",
            &["python3", script.to_str().unwrap(), &spec.to_string()],
        );
        let out: Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("brce.py output ({e}): {}\n{}", r.stdout, r.stderr));
        let results = out["steps"].as_array().cloned().unwrap_or_default();
        let failed: Vec<&Value> = results.iter().filter(|s| s["ok"] != true).collect();
        assert!(
            r.ok && failed.is_empty() && results.len() == steps.len(),
            "brce.py steps failed: {failed:#?}\n{log}:\n{}",
            std::fs::read_to_string(self.run_dir.join(log)).unwrap_or_default()
        );
        results
    }

    /// br.py's own mapping of `what` (an IPv6 address or prefix inside the
    /// rule, or `IPV4:PORT`) under the rule of `args`: IPv4, PSID, CE
    /// address, port runs. Needs no lab (pure arithmetic).
    pub fn br_explain(args: &[&str], what: &str) -> Value {
        let out = Command::new("python3")
            .arg(workspace().join("tests/lab/br.py"))
            .args(args)
            .arg("--explain")
            .arg(what)
            .output()
            .expect("run br.py --explain");
        assert!(
            out.status.success(),
            "br.py --explain {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("br.py --explain prints JSON")
    }
}

/// The provider side of a fixed-IPv4 service and of HB46PP (issue 20):
/// tests/lab/ipip.py, update_server.py and hb46pp_server.py, run by
/// `lab.sh ipip|update|hb46pp`; see tests/lab/README.md, "Fixed IPv4 and
/// HB46PP".
impl Lab {
    /// The fixed-IPv4 tunnel end's IPv6 address (ipip.py).
    pub const IPIP_REMOTE: &'static str = "2001:db8:77:cc::1";
    /// The customer's fixed IPv4 address behind it.
    pub const IPIP_IPV4: &'static str = "192.0.2.77";
    /// The update URL with the lab's credentials (update_server.py, v6plus style).
    pub const UPDATE_URL: &'static str =
        "http://[2001:db8:77:ee::80]:8082/update?user=lab&pass=secret";
    /// The HB46PP server's address and name (in the lab DNS after
    /// `hb46pp_start(.., &["--dns"])`, and in its certificate).
    pub const HB46PP_ADDR: &'static str = "2001:db8:77:ee::46";
    pub const HB46PP_NAME: &'static str = "hb46pp.lab.example";

    /// Starts (or restarts) ipip.py with options such as `["--mtu", "1460"]`;
    /// the registration of an earlier run is kept (`ipip_register`).
    pub fn ipip_start(&self, args: &[&str]) {
        let mut a = vec!["ipip", "start"];
        a.extend_from_slice(args);
        self.script_ok(&a);
    }

    pub fn ipip_stop(&self) {
        self.script_ok(&["ipip", "stop"]);
    }

    /// Registers `local` (None: nobody) as the customer's tunnel address,
    /// as the update server does; ipip.py follows at once.
    pub fn ipip_register(&self, local: Option<&str>) {
        self.script_ok(&["ipip", "register", local.unwrap_or("none")]);
    }

    /// ipip.py's counters (SIGUSR1 makes it write them at once).
    pub fn ipip_stats(&self) -> Value {
        assert!(self.signal("ipip", 10), "ipip.py is not running");
        std::thread::sleep(Duration::from_millis(300));
        self.json_file("ipip-stats.json")
    }

    /// Starts (or restarts) the update server with update_server.py
    /// options such as `["--style", "transix"]` or `["--basic"]`.
    pub fn update_start(&self, args: &[&str]) {
        let mut a = vec!["update", "start"];
        a.extend_from_slice(args);
        self.script_ok(&a);
    }

    pub fn update_stop(&self) {
        self.script_ok(&["update", "stop"]);
    }

    /// The update server's counters and records (written after every request).
    pub fn update_stats(&self) -> Value {
        self.json_file("update-stats.json")
    }

    /// Starts (or restarts) the HB46PP server answering with `answer` (e.g.
    /// [`Lab::hb46pp_answer_file`]`("dslite")`), plus `--tls`, `--dns`,
    /// `--user U --pass P`, ... (see lab.sh).
    pub fn hb46pp_start(&self, answer: &Path, args: &[&str]) {
        let answer = answer.to_str().expect("UTF-8 path");
        let mut a = vec!["hb46pp", "start", "--answer", answer];
        a.extend_from_slice(args);
        self.script_ok(&a);
    }

    pub fn hb46pp_stop(&self) {
        self.script_ok(&["hb46pp", "stop"]);
    }

    /// Serve another answer from the next request on.
    pub fn hb46pp_answer(&self, answer: &Path) {
        self.script_ok(&["hb46pp", "answer", answer.to_str().expect("UTF-8 path")]);
    }

    /// A fault for the next requests: `["status", "503"]`, `["redirect"]`,
    /// `["malformed", "truncated", "--count", "1"]`, `["close"]`, `["none"]`.
    pub fn hb46pp_fault(&self, fault: &[&str]) {
        let mut a = vec!["hb46pp", "fault"];
        a.extend_from_slice(fault);
        self.script_ok(&a);
    }

    /// The HB46PP server's counters and records (written after every request).
    pub fn hb46pp_stats(&self) -> Value {
        self.json_file("hb46pp-stats.json")
    }

    /// One of the answer files of tests/lab/hb46pp (`dslite`, `map_e`, `ipip`).
    pub fn hb46pp_answer_file(name: &str) -> PathBuf {
        workspace().join(format!("tests/lab/hb46pp/{name}.json"))
    }

    /// The lab CA's certificate (made by `lab.sh up`), which signs the
    /// HB46PP server's.
    pub fn lab_ca(&self) -> PathBuf {
        self.run_dir.join("tls/ca.pem")
    }

    /// Adds a record to the lab DNS: `("txt", "4over6.info", "v=v6mig-1 ...")`
    /// or `("host", "gw.transix.jp", "2001:db8:aaaa::1")`.
    pub fn dns_add(&self, kind: &str, name: &str, value: &str) {
        self.script_ok(&["dns", "add", kind, name, value]);
    }

    /// Removes a record added by [`Self::dns_add`].
    pub fn dns_del(&self, kind: &str, name: &str) {
        self.script_ok(&["dns", "del", kind, name]);
    }

    fn json_file(&self, name: &str) -> Value {
        let path = self.run_dir.join(name);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}
