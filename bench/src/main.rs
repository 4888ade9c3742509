//! ipoe-bench: the benchmark harness (`run`, `smoke`) and its tools: the
//! AF_XDP traffic generator and receiver (`pktgen tx|rx`) and the AF_XDP
//! ceiling forwarder (`ceiling`).

mod ceiling;
mod endpoint;
mod fds;
mod harness;
mod pktgen;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage:
  ipoe-bench run [--quick|--flows|--mape] [--mix] [--rounds N] [--duts A,B] [--out DIR]   interleaved comparison (make bench); --flows: 1k-1M flows only; --mape: MAP-E vs DS-Lite at 1k-1M flows; --mix: the bidirectional mix; --duts: only these of the plan's DUTs
  ipoe-bench smoke [SCENARIO...]         short exact-count run of every DUT (make test), or of the scenarios named
  ipoe-bench pktgen tx|rx OPTIONS        AF_XDP traffic generator / receiver
  ipoe-bench ceiling OPTIONS             minimal AF_XDP MAC-swapping forwarder";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Before any child starts: none may inherit the lab lock (see fds.rs).
    if let Err(e) = fds::cloexec_inherited() {
        eprintln!("ipoe-bench: /proc/self/fd: {e}");
        return ExitCode::FAILURE;
    }
    let result = match args.first().map(String::as_str) {
        Some("pktgen") => pktgen::main_pktgen(&args[1..]),
        Some("ceiling") => ceiling::main_ceiling(&args[1..]),
        Some("smoke") => smoke(&args[1..]),
        Some("run") => run(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipoe-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn smoke(only: &[String]) -> anyhow::Result<()> {
    let results = harness::smoke(only)?;
    // The plain closing line CI reads, one check per scenario and DUT.
    println!("bench smoke: {} passed, 0 failed", results.len());
    Ok(())
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let mut plan = harness::Plan::full();
    let mut out = PathBuf::from("bench/results");
    let mut mix = false;
    let mut rounds = None;
    let mut duts: Option<Vec<harness::dut::Dut>> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => plan = harness::Plan::quick(),
            // Rate and node costs against flows only (1k-1M, 64 B).
            "--flows" => plan = harness::Plan::flows(),
            // MAP-E against DS-Lite and the ceiling (issue 18).
            "--mape" => plan = harness::Plan::mape(),
            "--rounds" => {
                rounds = Some(
                    it.next()
                        .and_then(|n| n.parse().ok())
                        .filter(|&n| n > 0)
                        .ok_or_else(|| anyhow::anyhow!("--rounds needs a number > 0"))?,
                )
            }
            "--duts" => {
                let list = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--duts needs a list"))?;
                duts = Some(
                    list.split(',')
                        .map(|n| {
                            harness::dut::Dut::ALL
                                .into_iter()
                                .find(|d| d.name() == n.trim())
                                .ok_or_else(|| anyhow::anyhow!("--duts: no DUT {n:?}"))
                        })
                        .collect::<anyhow::Result<_>>()?,
                )
            }
            // The bidirectional mix on its own (ipoed with one worker only).
            "--mix" => mix = true,
            "--out" => {
                out = it
                    .next()
                    .map(PathBuf::from)
                    .ok_or_else(|| anyhow::anyhow!("--out needs a directory"))?
            }
            other => anyhow::bail!("unknown option {other}\n{USAGE}"),
        }
    }
    if mix {
        plan.scenarios = vec![harness::Scenario::Mix];
    }
    if let Some(n) = rounds {
        plan.rounds = n;
    }
    if let Some(d) = duts {
        plan.duts.retain(|x| d.contains(x));
    }
    // ipoed's config takes only absolute paths (the socket lives under it).
    let out = std::path::absolute(&out)?;
    let outcome = harness::run(&plan, &out)?;
    harness::report::write(&outcome, &plan, &out)?;
    print!("{}", harness::report::markdown(&outcome, &plan));
    eprintln!("results in {}", out.display());
    Ok(())
}
