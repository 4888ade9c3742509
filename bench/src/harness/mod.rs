//! The benchmark harness: builds the topology, runs each DUT interleaved
//! (A B C A B C ...) so machine noise hits them alike, and records for each
//! scenario the maximum forwarding rate, the zero-loss rate (RFC 2544 binary
//! search), latency at 10/50/90 % of it, the DUT core's CPU, and ipoed's
//! per-node clocks. `smoke` is the short version CI runs: exact counts at a
//! low rate, no speed asserted.

pub mod dut;
pub mod mape;
pub mod report;
pub mod topo;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;

use dut::{Bins, CpuSample, Dut, Running};
use topo::{Topology, DUT_CORE, GEN_CORE, GEN_IF, GEN_NS, SINK_IF, SINK_NS};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Scenario {
    /// IPv4 from the LAN into the DS-Lite tunnel.
    Encap,
    /// IPv4-in-IPv6 from the AFTR to the LAN.
    Decap,
    /// IPv6 from the LAN to the internet.
    Ip6Fwd,
    /// Encap and decap at once (a LAN uploading while downloading).
    Mix,
    /// IPv4 from the LAN through NAPT44 into the MAP-E tunnel to the BR.
    MapeEncap,
    /// IPv4-in-IPv6 from the BR to the shared address, back to the LAN.
    MapeDecap,
}

/// (generator ns, interface, receiver ns, interface, pktgen tx arguments)
type Endpoints = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Vec<String>,
);

/// One traffic direction of a scenario.
struct Direction {
    gen_ns: &'static str,
    gen_if: &'static str,
    rx_ns: &'static str,
    rx_if: &'static str,
    tx_args: Vec<String>,
    /// First TX queue of the generator (queues tx_queue..tx_queue+n).
    tx_queue: u32,
    /// Queues the receiver binds (None: all of them).
    rx_queues: Option<&'static str>,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Encap => "dslite-encap",
            Scenario::Decap => "dslite-decap",
            Scenario::Ip6Fwd => "ip6-forward",
            Scenario::Mix => "bidir-mix",
            Scenario::MapeEncap => "mape-encap",
            Scenario::MapeDecap => "mape-decap",
        }
    }

    /// ipoed runs MAP-E for it (DS-Lite otherwise).
    pub fn is_mape(self) -> bool {
        matches!(self, Scenario::MapeEncap | Scenario::MapeDecap)
    }

    /// ipoed graph nodes that must have seen this scenario's packets.
    fn nodes(self) -> &'static [&'static str] {
        match self {
            Scenario::Encap => &["dslite-encap"],
            Scenario::Decap => &["dslite-decap"],
            Scenario::Ip6Fwd => &["ip6-forward"],
            Scenario::Mix => &["dslite-encap", "dslite-decap"],
            Scenario::MapeEncap => &["nat44-out"],
            Scenario::MapeDecap => &["nat44-in"],
        }
    }

    /// Each direction's generator and receiver. In the mix, both ends send
    /// and receive on one veth; two AF_XDP sockets cannot share a queue, so
    /// generators send on queue 1 and receivers bind queue 0 only. That
    /// works for a DUT that serves every queue and transmits on queue 0:
    /// ipoed with one worker (the ceiling pins a thread per queue, ipoed
    /// with two workers transmits on queue 1 as well).
    fn directions(self) -> Vec<Direction> {
        let one = |(gen_ns, gen_if, rx_ns, rx_if, tx_args): Endpoints, mix: bool| Direction {
            gen_ns,
            gen_if,
            rx_ns,
            rx_if,
            tx_args,
            tx_queue: u32::from(mix),
            rx_queues: mix.then_some("0"),
        };
        match self {
            Scenario::Mix => vec![
                one(Scenario::Encap.endpoints(), true),
                one(Scenario::Decap.endpoints(), true),
            ],
            s => vec![one(s.endpoints(), false)],
        }
    }
    /// DUTs that can do this scenario (the kernel here has no ip6tnl).
    pub fn duts(self) -> &'static [Dut] {
        match self {
            Scenario::Encap | Scenario::Decap | Scenario::MapeEncap => {
                &[Dut::Ipoed1, Dut::Ipoed2, Dut::Ceiling]
            }
            // The ceiling's decap figure is dslite-decap's: the same frames
            // but for the addresses, and it has no port map to follow.
            Scenario::MapeDecap => &[Dut::Ipoed1, Dut::Ipoed2],
            Scenario::Mix => &[Dut::Ipoed1],
            Scenario::Ip6Fwd => &[
                Dut::Ipoed1,
                Dut::Ipoed2,
                Dut::Linux,
                Dut::LinuxNft,
                Dut::Ceiling,
            ],
        }
    }

    fn endpoints(self) -> Endpoints {
        let hosts = topo::HOSTS.to_string();
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            // MAP-E: LAN endpoint e -> remote r as in frames.rs's MAP-E
            // layout; run_trial adds --endpoints (and the decap's --port-map).
            Scenario::Encap | Scenario::MapeEncap => (
                GEN_NS,
                GEN_IF,
                SINK_NS,
                SINK_IF,
                a(&[
                    "--traffic",
                    "ipv4",
                    "--src",
                    "192.168.2.10",
                    "--dst",
                    "198.51.100.10",
                    "--src-mac",
                    topo::GEN_MAC,
                    "--dst-mac",
                    topo::DUT_LAN_MAC,
                    "--hosts",
                    &hosts,
                ]),
            ),
            Scenario::Decap => (
                SINK_NS,
                SINK_IF,
                GEN_NS,
                GEN_IF,
                a(&[
                    "--traffic",
                    "ipip6",
                    "--outer-src",
                    "2001:db8:aaaa::1",
                    "--outer-dst",
                    "2001:db8:0:100::2",
                    "--src",
                    "198.51.100.10",
                    "--dst",
                    "192.168.2.10",
                    "--src-mac",
                    topo::SINK_MAC,
                    "--dst-mac",
                    topo::DUT_WAN_MAC,
                    "--hosts",
                    &hosts,
                ]),
            ),
            Scenario::MapeDecap => (
                SINK_NS,
                SINK_IF,
                GEN_NS,
                GEN_IF,
                a(&[
                    "--traffic",
                    "ipip6",
                    "--outer-src",
                    mape::BR,
                    "--outer-dst",
                    mape::CE,
                    "--src",
                    "198.51.100.10",
                    "--dst",
                    mape::SHARED,
                    "--src-mac",
                    topo::SINK_MAC,
                    "--dst-mac",
                    topo::DUT_WAN_MAC,
                    "--hosts",
                    &hosts,
                ]),
            ),
            Scenario::Ip6Fwd | Scenario::Mix => (
                GEN_NS,
                GEN_IF,
                SINK_NS,
                SINK_IF,
                a(&[
                    "--traffic",
                    "ipv6",
                    "--src",
                    "2001:db8:0:111::10",
                    "--dst",
                    "2001:db8:ffff::10",
                    "--src-mac",
                    topo::GEN_MAC,
                    "--dst-mac",
                    topo::DUT_LAN_MAC,
                    "--hosts",
                    &hosts,
                ]),
            ),
        }
    }
}

/// What one trial offered and what came out.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Trial {
    pub offered_pps: Option<u64>,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    /// Received frames over the generator's sending time.
    pub rate_pps: f64,
    pub latency_ns: Value,
    pub dut_cpu: f64,
    pub rx: Value,
}

impl Trial {
    pub fn zero_loss(&self) -> bool {
        self.sent > 0 && self.received >= self.sent
    }
}

pub struct TrialSpec<'a> {
    pub scenario: Scenario,
    /// The DUT (its control socket for ipoed's MAP-E port map).
    pub running: &'a Running,
    pub size: &'a str,
    pub flows: u32,
    pub rate: Option<u64>,
    pub duration: Duration,
    pub count: Option<u64>,
    /// Zero ipoed's node clocks once the decap sessions are open, so the
    /// LAN-side packets that open them stay out of the trial's figures.
    pub clear_runtime: bool,
}

pub fn run_trial(bins: &Bins, spec: &TrialSpec) -> Result<Trial> {
    let dut = spec.running.dut;
    let dirs = spec.scenario.directions();
    let queues = dut.queues();
    // Rate, flows and counts are shared by every generator process.
    let procs = queues * dirs.len() as u32;
    let flows = (spec.flows / procs).max(topo::HOSTS);
    // MAP-E: the generators' flow layout, and for the decap the external
    // port of each LAN endpoint; the sink checks what a BR would.
    let mut tx_extra = Vec::new();
    let mut rx_extra = Vec::new();
    if spec.scenario.is_mape() {
        tx_extra = vec![
            "--endpoints".to_string(),
            mape::endpoints(flows).to_string(),
        ];
    }
    if dut.is_ipoed() {
        match spec.scenario {
            Scenario::Decap | Scenario::Mix => open_sessions(bins, Scenario::Encap, flows)?,
            Scenario::MapeDecap => {
                open_sessions(bins, Scenario::MapeEncap, flows)?;
                let ports = mape::discover_ports(bins, spec.running, mape::endpoints(flows))?;
                tx_extra.push("--port-map".into());
                tx_extra.push(ports.display().to_string());
            }
            Scenario::MapeEncap => rx_extra = mape::sink_check_args(),
            Scenario::Encap | Scenario::Ip6Fwd => {}
        }
    }
    if spec.clear_runtime {
        spec.running.clear_runtime(bins);
    }
    let wait = spec.duration + Duration::from_secs(3);
    let mut rxs = Vec::new();
    for d in &dirs {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            d.rx_ns,
            "taskset",
            "-c",
            &GEN_CORE.to_string(),
        ])
        .arg(&bins.bench)
        .args([
            "pktgen",
            "rx",
            "--iface",
            d.rx_if,
            "--idle",
            "1",
            "--duration",
        ])
        .arg(format!("{}", wait.as_secs_f64()));
        if let Some(q) = d.rx_queues {
            c.args(["--queues", q]);
        }
        c.args(&rx_extra);
        rxs.push(
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting the receiver")?,
        );
    }
    // Give the receivers time to attach before the first frame.
    std::thread::sleep(Duration::from_millis(400));
    let cpu0 = CpuSample::take(DUT_CORE);
    let mut txs = Vec::new();
    for d in &dirs {
        for q in 0..queues {
            let mut c = Command::new("ip");
            c.args([
                "netns",
                "exec",
                d.gen_ns,
                "taskset",
                "-c",
                &GEN_CORE.to_string(),
            ])
            .arg(&bins.bench)
            .args(["pktgen", "tx", "--iface", d.gen_if])
            .args(["--queue", &(d.tx_queue + q).to_string()])
            .args(&d.tx_args)
            .args(["--size", spec.size, "--stream", &q.to_string()])
            // Split flows over the processes, but each covers every host.
            .args(["--flows", &flows.to_string()])
            .args(&tx_extra)
            .args(["--duration", &format!("{}", spec.duration.as_secs_f64())]);
            if let Some(r) = spec.rate {
                c.args(["--rate", &(r / u64::from(procs)).max(1).to_string()]);
            }
            if let Some(n) = spec.count {
                c.args(["--count", &(n / u64::from(procs)).to_string()]);
            }
            txs.push(c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?);
        }
    }
    let mut sent = 0;
    let mut tx_elapsed: f64 = 0.0;
    for t in txs {
        let v = report_of(t, "tx")?;
        sent += v["sent"].as_u64().unwrap_or(0);
        tx_elapsed = tx_elapsed.max(v["elapsed_s"].as_f64().unwrap_or(0.0));
    }
    let cpu = CpuSample::take(DUT_CORE).share_since(cpu0);
    let mut received = 0;
    let mut reports = Vec::new();
    for rx in rxs {
        let v = report_of(rx, "rx")?;
        received += v["received"].as_u64().unwrap_or(0);
        // A wrong translation makes any rate meaningless.
        if v["tunnel"].is_object() {
            let t = &v["tunnel"];
            let bad: u64 = [
                "not_tunnelled",
                "outer_src",
                "outer_dst",
                "inner_src",
                "port_outside_set",
            ]
            .iter()
            .filter_map(|k| t[*k].as_u64())
            .sum();
            if bad > 0 {
                bail!(
                    "{} via {}: the sink found frames no BR would take: {t}",
                    spec.scenario.name(),
                    dut.name()
                );
            }
        }
        reports.push(v);
    }
    // With two directions each latency figure is the worse of the two.
    let mut latency = reports
        .first()
        .map(|r| r["latency"].clone())
        .unwrap_or_default();
    for r in reports.iter().skip(1) {
        if let (Some(l), Some(o)) = (latency.as_object_mut(), r["latency"].as_object()) {
            for (k, v) in o {
                let a = v.as_f64().unwrap_or(0.0);
                let b = l.get(k).and_then(Value::as_f64).unwrap_or(0.0);
                l.insert(k.clone(), serde_json::json!(a.max(b)));
            }
        }
    }
    let rx = if reports.len() == 1 {
        reports.remove(0)
    } else {
        Value::Array(reports)
    };
    Ok(Trial {
        offered_pps: spec.rate,
        sent,
        received,
        lost: sent.saturating_sub(received),
        rate_pps: if tx_elapsed > 0.0 {
            received as f64 / tx_elapsed
        } else {
            0.0
        },
        latency_ns: latency,
        dut_cpu: cpu,
        rx,
    })
}

/// ipoed's firewall admits traffic from the AFTR only inside a session, as
/// any stateful router does: before a decap trial, one LAN-side packet of
/// each of the first `flows` flows opens their sessions (the ipip6 frames
/// of flow i answer the ipv4 frames of flow i). The frames go to the sink,
/// where nothing receives them. `encap`: the scenario whose frames do it
/// (MAP-E's also take the LAN endpoints' external ports).
fn open_sessions(bins: &Bins, encap: Scenario, flows: u32) -> Result<()> {
    let (gen_ns, gen_if, _, _, mut tx_args) = encap.endpoints();
    if encap.is_mape() {
        tx_args.extend(["--endpoints".into(), mape::endpoints(flows).to_string()]);
    }
    let t = Command::new("ip")
        .args([
            "netns",
            "exec",
            gen_ns,
            "taskset",
            "-c",
            &GEN_CORE.to_string(),
        ])
        .arg(&bins.bench)
        .args(["pktgen", "tx", "--iface", gen_if, "--queue", "0"])
        .args(&tx_args)
        .args(["--size", "64", "--stream", "99"])
        .args(["--flows", &flows.to_string(), "--count", &flows.to_string()])
        .args(["--rate", "200000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the session opener")?;
    report_of(t, "session opener")?;
    // The last frames are still in the router's rings.
    std::thread::sleep(Duration::from_millis(100));
    Ok(())
}

/// Wait for a pktgen process and take its JSON report.
pub(crate) fn report_of(child: std::process::Child, what: &str) -> Result<Value> {
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "pktgen {what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    last_json(&out.stdout)
}

fn last_json(stdout: &[u8]) -> Result<Value> {
    let s = String::from_utf8_lossy(stdout);
    let line = s
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("no JSON report")?;
    Ok(serde_json::from_str(line)?)
}

/// Settings of a full run.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub rounds: usize,
    pub trial_s: f64,
    pub search_steps: usize,
    pub sizes: Vec<String>,
    pub flow_sweep: Vec<u32>,
    pub flows: u32,
    pub scenarios: Vec<Scenario>,
    /// The DUTs measured (of each scenario's).
    pub duts: Vec<Dut>,
}

impl Plan {
    pub fn full() -> Plan {
        Plan {
            rounds: 3,
            trial_s: 1.5,
            search_steps: 5,
            sizes: vec!["64".into(), "imix".into(), "1518".into()],
            flow_sweep: vec![1_000, 100_000, 1_000_000],
            flows: 1_000,
            scenarios: vec![Scenario::Encap, Scenario::Decap, Scenario::Ip6Fwd],
            duts: Dut::ALL.to_vec(),
        }
    }
    /// Rate and node costs against the number of flows only (the flow
    /// table's figures): 64 B, one worker against linux-nft (the ceiling
    /// keeps no state: flows change nothing for it).
    pub fn flows() -> Plan {
        Plan {
            rounds: 3,
            trial_s: 1.5,
            search_steps: 0,
            sizes: vec!["64".into()],
            flow_sweep: vec![1_000, 10_000, 100_000, 1_000_000],
            flows: 1_000,
            scenarios: vec![
                Scenario::Encap,
                Scenario::Decap,
                Scenario::Ip6Fwd,
                Scenario::MapeEncap,
                Scenario::MapeDecap,
            ],
            duts: vec![Dut::Ipoed1, Dut::LinuxNft],
        }
    }
    /// MAP-E against DS-Lite (issue 18): both tunnels' encap and decap at
    /// 1k-1M flows with one worker, interleaved in each round, and the
    /// AF_XDP ceiling at 1k flows (it keeps no state). Linux has no
    /// ip6tnl here, so no kernel row.
    pub fn mape() -> Plan {
        Plan {
            scenarios: vec![
                Scenario::Encap,
                Scenario::MapeEncap,
                Scenario::Decap,
                Scenario::MapeDecap,
            ],
            duts: vec![Dut::Ipoed1, Dut::Ceiling],
            ..Plan::flows()
        }
    }
    pub fn quick() -> Plan {
        Plan {
            rounds: 1,
            trial_s: 1.0,
            search_steps: 4,
            sizes: vec!["64".into()],
            flow_sweep: vec![1_000, 1_000_000],
            flows: 1_000,
            scenarios: vec![Scenario::Encap, Scenario::Decap, Scenario::Ip6Fwd],
            duts: Dut::ALL.to_vec(),
        }
    }
}

/// One measured cell: a DUT in a scenario at a size and flow count.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub scenario: Scenario,
    pub dut: Dut,
    pub size: String,
    pub flows: u32,
    pub round: usize,
    pub max_rate: Trial,
    pub zero_loss_pps: Option<f64>,
    /// (fraction of the zero-loss rate, trial).
    pub latency: Vec<(f64, Trial)>,
    pub runtime: Option<Value>,
}

/// Which cell to measure.
struct At<'a> {
    scenario: Scenario,
    size: &'a str,
    flows: u32,
    round: usize,
    /// Also search the zero-loss rate and measure latency.
    deep: bool,
}

/// Run one DUT through one cell's measurements.
fn measure(bins: &Bins, running: &Running, at: At, plan: &Plan) -> Result<Cell> {
    let At {
        scenario,
        size,
        flows,
        round,
        deep,
    } = at;
    let dut = running.dut;
    let d = Duration::from_secs_f64(plan.trial_s);
    let spec = |rate: Option<u64>| TrialSpec {
        scenario,
        running,
        size,
        flows,
        rate,
        duration: d,
        count: None,
        clear_runtime: false,
    };
    prime(bins, running, scenario, flows)?;
    // Node costs of this cell alone, at its maximum rate.
    let max_rate = run_trial(
        bins,
        &TrialSpec {
            clear_runtime: true,
            ..spec(None)
        },
    )?;
    let runtime = running.runtime(bins);
    eprintln!(
        "bench: {:<13} {:<12} {:>5} {:>8} flows: max {:>9.0} pps (sent {}, lost {}) cpu {:.0}%",
        scenario.name(),
        dut.name(),
        size,
        flows,
        max_rate.rate_pps,
        max_rate.sent,
        max_rate.lost,
        max_rate.dut_cpu * 100.0
    );
    let mut zero_loss_pps = None;
    let mut latency = Vec::new();
    if deep {
        // RFC 2544 style: the highest offered rate with no loss.
        let (mut lo, mut hi) = (
            0.0f64,
            max_rate.rate_pps.max(max_rate.sent as f64 / plan.trial_s) * 1.05,
        );
        let mut best = None;
        for _ in 0..plan.search_steps {
            let mid = (lo + hi) / 2.0;
            let t = run_trial(bins, &spec(Some(mid as u64)))?;
            if t.zero_loss() {
                lo = mid;
                best = Some(t.rate_pps);
            } else {
                hi = mid;
            }
        }
        zero_loss_pps = best.map(|_| lo);
        eprintln!("bench:   zero-loss {:>9.0} pps", lo);
        if lo > 0.0 {
            for frac in [0.1, 0.5, 0.9] {
                let t = run_trial(bins, &spec(Some((lo * frac) as u64)))?;
                latency.push((frac, t));
            }
        }
    }
    Ok(Cell {
        scenario,
        dut,
        size: size.to_string(),
        flows,
        round,
        max_rate,
        zero_loss_pps,
        latency,
        runtime,
    })
}

/// Rate of the priming pass: slow enough that every DUT keeps up.
const PRIME_PPS: u64 = 250_000;

/// Every flow of the cell once, at a rate every DUT sustains, so that the
/// trial after it measures packets of existing flows (a session lookup, a
/// conntrack hit) rather than the creation of a session per packet: a
/// 1.5 s trial at 1M flows would otherwise see most flows once. Every
/// cell is primed, so none is the first traffic a freshly started DUT
/// sees (whose control thread is still busy starting up on its core).
fn prime(bins: &Bins, running: &Running, scenario: Scenario, flows: u32) -> Result<()> {
    let dut = running.dut;
    let t = run_trial(
        bins,
        &TrialSpec {
            scenario,
            running,
            size: "64",
            flows,
            rate: Some(PRIME_PPS),
            duration: Duration::from_secs_f64(f64::from(flows) / PRIME_PPS as f64 + 1.0),
            count: Some(u64::from(flows)),
            clear_runtime: false,
        },
    )?;
    eprintln!(
        "bench: {:<13} {:<12} primed {} flows ({} of {} frames through)",
        scenario.name(),
        dut.name(),
        flows,
        t.received,
        t.sent
    );
    Ok(())
}

pub struct Outcome {
    pub cells: Vec<Cell>,
    pub idle_cpu: Vec<(Dut, f64)>,
}

/// The full comparison, interleaved by DUT within each round.
pub fn run(plan: &Plan, out_dir: &Path) -> Result<Outcome> {
    let bins = Bins::locate()?;
    let topo = Topology::up()?;
    let run_dir = out_dir.join("tmp");
    let mut cells = Vec::new();
    let mut idle_cpu = Vec::new();
    let t0 = Instant::now();
    for round in 0..plan.rounds {
        for &scenario in &plan.scenarios {
            for &dut in scenario.duts().iter().filter(|d| plan.duts.contains(d)) {
                let running = Running::start(dut, scenario.is_mape(), &topo, &bins, &run_dir)?;
                warm_up(&bins, &running, scenario)?;
                if round == 0 && scenario == Scenario::Encap && dut.is_ipoed() {
                    // An idle router with adaptive polling should sleep.
                    let c0 = CpuSample::take(DUT_CORE);
                    std::thread::sleep(Duration::from_secs(3));
                    idle_cpu.push((dut, CpuSample::take(DUT_CORE).share_since(c0)));
                }
                for size in &plan.sizes {
                    let deep = size == "64";
                    let at = At {
                        scenario,
                        size,
                        flows: plan.flows,
                        round,
                        deep,
                    };
                    cells.push(measure(&bins, &running, at, plan)?);
                }
                // Rate against the number of flows (sessions, once the firewall lands).
                // The ceiling keeps no state: flows change nothing for it.
                if matches!(dut, Dut::Ipoed1 | Dut::LinuxNft | Dut::Linux)
                    && scenario != Scenario::Mix
                {
                    for &flows in plan.flow_sweep.iter().filter(|&&f| f != plan.flows) {
                        let at = At {
                            scenario,
                            size: "64",
                            flows,
                            round,
                            deep: false,
                        };
                        cells.push(measure(&bins, &running, at, plan)?);
                    }
                }
                running.stop();
            }
        }
        eprintln!(
            "bench: round {} done after {:.0} s",
            round + 1,
            t0.elapsed().as_secs_f64()
        );
    }
    drop(topo);
    Ok(Outcome { cells, idle_cpu })
}

/// A few frames to every host so every neighbor is resolved before
/// measuring (a new neighbor's first packets wait in a 4-packet hold queue).
fn warm_up(bins: &Bins, running: &Running, scenario: Scenario) -> Result<()> {
    let dut = running.dut;
    // Each generator process must cover all hosts by itself.
    let flows = topo::HOSTS * dut.queues();
    let t = run_trial(
        bins,
        &TrialSpec {
            scenario,
            running,
            size: "64",
            flows,
            rate: Some(2_000),
            duration: Duration::from_millis(500),
            count: Some(u64::from(flows) * 8),
            clear_runtime: false,
        },
    )?;
    if t.received == 0 {
        bail!(
            "{} forwarded nothing in {} warm-up",
            dut.name(),
            scenario.name()
        );
    }
    Ok(())
}

/// The short proof for CI: every DUT in every scenario forwards exactly the
/// frames it was sent at a low rate. `only`: scenario names (all if empty).
pub fn smoke(only: &[String]) -> Result<Vec<(Scenario, Dut, Trial)>> {
    let all = [
        Scenario::Encap,
        Scenario::Decap,
        Scenario::Ip6Fwd,
        Scenario::Mix,
        Scenario::MapeEncap,
        Scenario::MapeDecap,
    ];
    for name in only {
        if !all.iter().any(|s| s.name() == name) {
            bail!("no scenario {name:?}");
        }
    }
    let bins = Bins::locate()?;
    let topo = Topology::up()?;
    let run_dir = std::env::temp_dir().join("ipoe-bench-smoke");
    let mut results = Vec::new();
    for scenario in all
        .into_iter()
        .filter(|s| only.is_empty() || only.iter().any(|n| n == s.name()))
    {
        // MAP-E: ipoed with one worker only (the time make test allows).
        let duts = if scenario.is_mape() {
            &[Dut::Ipoed1][..]
        } else {
            scenario.duts()
        };
        for &dut in duts {
            let running = Running::start(dut, scenario.is_mape(), &topo, &bins, &run_dir)?;
            warm_up(&bins, &running, scenario)?;
            let count = 4_000u64;
            let flows = 64;
            let t = run_trial(
                &bins,
                &TrialSpec {
                    scenario,
                    running: &running,
                    size: "64",
                    flows,
                    rate: Some(20_000),
                    duration: Duration::from_secs(2),
                    count: Some(count),
                    clear_runtime: false,
                },
            )?;
            eprintln!(
                "smoke: {:<13} {:<13} sent {} received {} lost {}",
                scenario.name(),
                dut.name(),
                t.sent,
                t.received,
                t.lost
            );
            if t.sent != count || t.received != count {
                let drops: Vec<String> = running
                    .ctl(&bins, &["show", "errors"])
                    .and_then(|v| v["errors"].as_array().cloned())
                    .into_iter()
                    .flatten()
                    .filter(|e| e["count"].as_u64().unwrap_or(0) > 0)
                    .map(|e| format!("{}/{}={}", e["node"], e["counter"], e["count"]))
                    .collect();
                bail!(
                    "{} via {}: sent {} and received {}, expected {count} each\n  DUT counters: {}\n  receiver XDP: {}",
                    scenario.name(),
                    dut.name(),
                    t.sent,
                    t.received,
                    drops.join(" "),
                    t.rx["xdp"]
                );
            }
            if dut.is_ipoed() {
                check_ipoed_counted(&running, &bins, scenario, count)?;
            }
            if scenario == Scenario::MapeEncap {
                check_mape_sink(&t, count, mape::endpoints(flows))?;
            }
            running.stop();
            results.push((scenario, dut, t));
        }
    }
    drop(topo);
    Ok(results)
}

/// The sink checked every MAP-E frame (run_trial fails on a violation),
/// and endpoint-independent mapping gave each LAN endpoint one port of its
/// own: as many distinct ports as endpoints.
fn check_mape_sink(t: &Trial, count: u64, endpoints: u32) -> Result<()> {
    let r = &t.rx["tunnel"];
    if r["checked"].as_u64() != Some(count) || r["ports_seen"].as_u64() != Some(endpoints.into()) {
        bail!("mape-encap: the sink checked {} frames and saw {} ports, expected {count} and {endpoints}: {r}", r["checked"], r["ports_seen"]);
    }
    Ok(())
}

/// ipoed's own node counters must have seen the frames too.
fn check_ipoed_counted(
    running: &Running,
    bins: &Bins,
    scenario: Scenario,
    count: u64,
) -> Result<()> {
    let rt = running.runtime(bins).context("show runtime")?;
    let vectors: u64 = rt["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|w| w["nodes"].as_array().into_iter().flatten())
        .filter(|n| scenario.nodes().iter().any(|name| n["name"] == *name))
        .filter_map(|n| n["vectors"].as_u64())
        .sum();
    // Warm-up frames come on top of the counted trial.
    if vectors < count {
        bail!(
            "ipoed's {} node counted {vectors} packets, expected >= {count}",
            scenario.name()
        );
    }
    Ok(())
}
