//! Results as JSON, a Markdown table (medians over rounds, ratios taken
//! pairwise within each round), and PNG plots.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde_json::{json, Value};

use super::dut::Dut;
use super::{Cell, Outcome, Plan, Scenario};

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn cells<'a>(o: &'a Outcome, s: Scenario, d: Dut, size: &str, flows: u32) -> Vec<&'a Cell> {
    o.cells
        .iter()
        .filter(|c| c.scenario == s && c.dut == d && c.size == size && c.flows == flows)
        .collect()
}

fn med_rate(o: &Outcome, s: Scenario, d: Dut, size: &str, flows: u32) -> Option<f64> {
    median(
        cells(o, s, d, size, flows)
            .iter()
            .map(|c| c.max_rate.rate_pps)
            .collect(),
    )
}

/// Median over rounds of (a / b) measured in the same round.
fn ratio(
    o: &Outcome,
    s: Scenario,
    a: Dut,
    sa: Scenario,
    b: Dut,
    size: &str,
    flows: u32,
) -> Option<f64> {
    ratio_at(o, (s, a, flows), (sa, b, flows), size)
}

/// Median over rounds of (x / y) measured in the same round, each side a
/// (scenario, DUT, flows) cell.
fn ratio_at(
    o: &Outcome,
    (s, a, fa): (Scenario, Dut, u32),
    (sb, b, fb): (Scenario, Dut, u32),
    size: &str,
) -> Option<f64> {
    let xs = cells(o, s, a, size, fa);
    let ys = cells(o, sb, b, size, fb);
    median(
        xs.iter()
            .filter_map(|x| {
                let y = ys.iter().find(|y| y.round == x.round)?;
                (y.max_rate.rate_pps > 0.0).then(|| x.max_rate.rate_pps / y.max_rate.rate_pps)
            })
            .collect(),
    )
}

fn kpps(v: Option<f64>) -> String {
    v.map(|x| format!("{:.0}", x / 1000.0))
        .unwrap_or_else(|| "-".into())
}

fn lat(c: &[&Cell], frac: f64, key: &str) -> Option<f64> {
    median(
        c.iter()
            .filter_map(|c| c.latency.iter().find(|(f, _)| (*f - frac).abs() < 1e-9))
            .filter_map(|(_, t)| t.latency_ns[key].as_f64())
            .collect(),
    )
}

/// Node clocks/packet from ipoed's show runtime, median over rounds.
fn node_clocks(o: &Outcome, s: Scenario, d: Dut, flows: u32) -> BTreeMap<String, f64> {
    let mut per: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for c in cells(o, s, d, "64", flows) {
        for w in c
            .runtime
            .as_ref()
            .and_then(|r| r["workers"].as_array())
            .into_iter()
            .flatten()
        {
            for n in w["nodes"].as_array().into_iter().flatten() {
                if n["vectors"].as_u64().unwrap_or(0) > 1000 {
                    per.entry(n["name"].as_str().unwrap_or("?").to_string())
                        .or_default()
                        .push(n["clocks_per_packet"].as_f64().unwrap_or(0.0));
                }
            }
        }
    }
    per.into_iter()
        .filter_map(|(k, v)| Some((k, median(v)?)))
        .collect()
}

pub fn markdown(o: &Outcome, plan: &Plan) -> String {
    let mut s = String::new();
    let flows = plan.flows;
    let _ = writeln!(
        s,
        "Rates in kpps received (medians of {} interleaved rounds, {} s trials); zero-loss by binary search ({} steps); latency at 50 % of the zero-loss rate.\n",
        plan.rounds, plan.trial_s, plan.search_steps
    );
    let _ = writeln!(
        s,
        "| scenario | DUT | size | max rate | zero-loss | p50 / p99 / p99.9 us | DUT core CPU |"
    );
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|");
    for &sc in &plan.scenarios {
        for &d in sc.duts() {
            for size in &plan.sizes {
                let c = cells(o, sc, d, size, flows);
                if c.is_empty() {
                    continue;
                }
                let zl = median(c.iter().filter_map(|c| c.zero_loss_pps).collect());
                let l = |k| {
                    lat(&c, 0.5, k)
                        .map(|x| format!("{:.0}", x / 1000.0))
                        .unwrap_or("-".into())
                };
                let lats = if size == "64" {
                    format!("{} / {} / {}", l("p50"), l("p99"), l("p999"))
                } else {
                    "-".into()
                };
                let cpu = median(c.iter().map(|c| c.max_rate.dut_cpu).collect()).unwrap_or(0.0);
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {:.0} % |",
                    sc.name(),
                    d.name(),
                    size,
                    kpps(med_rate(o, sc, d, size, flows)),
                    kpps(zl),
                    lats,
                    cpu * 100.0
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\nRatios (pairwise within each round, then the median), 64 B, {flows} flows:\n"
    );
    let _ = writeln!(s, "| ratio | value |");
    let _ = writeln!(s, "|---|---:|");
    let pairs = [
        (
            "ipoed-1w DS-Lite encap / afxdp-ceiling",
            Scenario::Encap,
            Dut::Ipoed1,
            Scenario::Encap,
            Dut::Ceiling,
        ),
        (
            "ipoed-1w DS-Lite encap / linux-nft IPv6 forward",
            Scenario::Encap,
            Dut::Ipoed1,
            Scenario::Ip6Fwd,
            Dut::LinuxNft,
        ),
        (
            "ipoed-1w DS-Lite encap / linux IPv6 forward",
            Scenario::Encap,
            Dut::Ipoed1,
            Scenario::Ip6Fwd,
            Dut::Linux,
        ),
        (
            "ipoed-1w IPv6 forward / linux-nft IPv6 forward",
            Scenario::Ip6Fwd,
            Dut::Ipoed1,
            Scenario::Ip6Fwd,
            Dut::LinuxNft,
        ),
        (
            "ipoed-1w IPv6 forward / linux IPv6 forward",
            Scenario::Ip6Fwd,
            Dut::Ipoed1,
            Scenario::Ip6Fwd,
            Dut::Linux,
        ),
        (
            "ipoed-1w IPv6 forward / afxdp-ceiling",
            Scenario::Ip6Fwd,
            Dut::Ipoed1,
            Scenario::Ip6Fwd,
            Dut::Ceiling,
        ),
        (
            "ipoed-2w DS-Lite encap / ipoed-1w",
            Scenario::Encap,
            Dut::Ipoed2,
            Scenario::Encap,
            Dut::Ipoed1,
        ),
        (
            "ipoed-1w MAP-E encap / DS-Lite encap",
            Scenario::MapeEncap,
            Dut::Ipoed1,
            Scenario::Encap,
            Dut::Ipoed1,
        ),
        (
            "ipoed-1w MAP-E decap / DS-Lite decap",
            Scenario::MapeDecap,
            Dut::Ipoed1,
            Scenario::Decap,
            Dut::Ipoed1,
        ),
        (
            "ipoed-1w MAP-E encap / afxdp-ceiling",
            Scenario::MapeEncap,
            Dut::Ipoed1,
            Scenario::MapeEncap,
            Dut::Ceiling,
        ),
    ];
    for (label, sa, a, sb, b) in pairs {
        let r = ratio(o, sa, a, sb, b, "64", flows);
        let _ = writeln!(
            s,
            "| {label} | {} |",
            r.map(|r| format!("{r:.2}")).unwrap_or("-".into())
        );
    }
    let _ = writeln!(s, "\nRate against flows (64 B, kpps):\n");
    let _ = writeln!(
        s,
        "| scenario | DUT | {} |",
        plan.flow_sweep
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(s, "|---|---|{}", "---:|".repeat(plan.flow_sweep.len()));
    for sc in FLOW_SCENARIOS {
        for &d in sc.duts() {
            let row: Vec<String> = plan
                .flow_sweep
                .iter()
                .map(|&f| kpps(med_rate(o, sc, d, "64", f)))
                .collect();
            if row.iter().all(|x| x == "-") || row.iter().filter(|x| *x != "-").count() < 2 {
                continue;
            }
            let _ = writeln!(s, "| {} | {} | {} |", sc.name(), d.name(), row.join(" | "));
        }
    }
    flow_ratios(&mut s, o, plan);
    let _ = writeln!(
        s,
        "\nipoed node cost (clocks/packet from `ipoectl show runtime`, 1 worker, 64 B, median):\n"
    );
    let _ = writeln!(s, "| scenario | node | clocks/packet |");
    let _ = writeln!(s, "|---|---|---:|");
    for &sc in &plan.scenarios {
        let nc = node_clocks(o, sc, Dut::Ipoed1, flows);
        let total: f64 = nc.values().sum();
        for (n, v) in &nc {
            let _ = writeln!(s, "| {} | {n} | {v:.0} |", sc.name());
        }
        if !nc.is_empty() {
            let _ = writeln!(
                s,
                "| {} | **all nodes (excl. AF_XDP I/O)** | **{total:.0}** |",
                sc.name()
            );
        }
    }
    let _ = writeln!(
        s,
        "\nIdle ipoed (adaptive polling, no traffic, 3 s): {}",
        o.idle_cpu
            .iter()
            .map(|(d, c)| format!("{} {:.2} % of its core", d.name(), c * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    s
}

/// Scenarios measured against the number of flows.
const FLOW_SCENARIOS: [Scenario; 5] = [
    Scenario::Encap,
    Scenario::Decap,
    Scenario::Ip6Fwd,
    Scenario::MapeEncap,
    Scenario::MapeDecap,
];

/// Against flows: ratios within each round (to linux-nft, and to ipoed's
/// own 1k-flow rate), and the firewall node's and the whole graph's
/// clocks/packet at the cell's maximum rate.
fn flow_ratios(s: &mut String, o: &Outcome, plan: &Plan) {
    let sweep = &plan.flow_sweep;
    let Some(&base) = sweep.first() else {
        return;
    };
    let head = sweep.iter().map(|f| f.to_string()).collect::<Vec<_>>();
    let _ = writeln!(
        s,
        "\nAgainst flows, ratios within each round (median), 64 B:\n\n| ratio | {} |\n|---|{}",
        head.join(" | "),
        "---:|".repeat(sweep.len())
    );
    let own =
        |sc: Scenario, f: u32| ratio_at(o, (sc, Dut::Ipoed1, f), (sc, Dut::Ipoed1, base), "64");
    let fmt = |r: Option<f64>| r.map(|r| format!("{r:.2}")).unwrap_or("-".into());
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for (label, sc) in [
        ("DS-Lite encap", Scenario::Encap),
        ("DS-Lite decap", Scenario::Decap),
        ("IPv6 forward", Scenario::Ip6Fwd),
    ] {
        rows.push((
            format!("ipoed-1w {label} / linux-nft IPv6 forward"),
            sweep
                .iter()
                .map(|&f| {
                    fmt(ratio(
                        o,
                        sc,
                        Dut::Ipoed1,
                        Scenario::Ip6Fwd,
                        Dut::LinuxNft,
                        "64",
                        f,
                    ))
                })
                .collect(),
        ));
        rows.push((
            format!("ipoed-1w {label} / itself at {base} flows"),
            sweep.iter().map(|&f| fmt(own(sc, f))).collect(),
        ));
    }
    // Issue 18's goal: MAP-E (NAPT44 + encapsulation) within 15 % of
    // DS-Lite (encapsulation only) at the same flows.
    for (label, m, d) in [
        ("encap", Scenario::MapeEncap, Scenario::Encap),
        ("decap", Scenario::MapeDecap, Scenario::Decap),
    ] {
        rows.push((
            format!("ipoed-1w MAP-E {label} / DS-Lite {label}"),
            sweep
                .iter()
                .map(|&f| fmt(ratio(o, m, Dut::Ipoed1, d, Dut::Ipoed1, "64", f)))
                .collect(),
        ));
        rows.push((
            format!("ipoed-1w MAP-E {label} / itself at {base} flows"),
            sweep.iter().map(|&f| fmt(own(m, f))).collect(),
        ));
    }
    for (label, row) in rows {
        if row.iter().any(|x| x != "-") {
            let _ = writeln!(s, "| {label} | {} |", row.join(" | "));
        }
    }
    let _ = writeln!(
        s,
        "\nipoed clocks/packet against flows (`show runtime` over each cell's max-rate trial, 1 worker, 64 B, median):\n\n| scenario | node | {} |\n|---|---|{}",
        head.join(" | "),
        "---:|".repeat(sweep.len())
    );
    for &sc in &plan.scenarios {
        let per: Vec<BTreeMap<String, f64>> = sweep
            .iter()
            .map(|&f| node_clocks(o, sc, Dut::Ipoed1, f))
            .collect();
        // The node that looks the session up: a firewall, or MAP-E's NAPT.
        let fw: Vec<String> = per
            .iter()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.ends_with("-firewall") || k.starts_with("nat44-"))
                    .map(|(_, v)| format!("{v:.0}"))
                    .next()
                    .unwrap_or("-".into())
            })
            .collect();
        let total: Vec<String> = per
            .iter()
            .map(|m| {
                if m.is_empty() {
                    "-".into()
                } else {
                    format!("{:.0}", m.values().sum::<f64>())
                }
            })
            .collect();
        if total.iter().all(|x| x == "-") {
            continue;
        }
        let _ = writeln!(
            s,
            "| {} | firewall / nat44 | {} |",
            sc.name(),
            fw.join(" | ")
        );
        let _ = writeln!(s, "| {} | all nodes | {} |", sc.name(), total.join(" | "));
    }
    // The DUT's own cost when the generator, not the DUT, sets the rate:
    // MAP-E's graph over DS-Lite's at the same flows (medians' ratio).
    for (m, d) in [
        (Scenario::MapeEncap, Scenario::Encap),
        (Scenario::MapeDecap, Scenario::Decap),
    ] {
        let all = |sc: Scenario, f: u32| -> Option<f64> {
            let n = node_clocks(o, sc, Dut::Ipoed1, f);
            (!n.is_empty()).then(|| n.values().sum())
        };
        let row: Vec<String> = sweep
            .iter()
            .map(|&f| match (all(m, f), all(d, f)) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "-".into(),
            })
            .collect();
        if row.iter().any(|x| x != "-") {
            let _ = writeln!(
                s,
                "| {} / {} | all nodes, ratio | {} |",
                m.name(),
                d.name(),
                row.join(" | ")
            );
        }
    }
}

pub fn write(o: &Outcome, plan: &Plan, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let doc = json!({
        "when_unix": stamp,
        "machine": machine(),
        "plan": plan,
        "idle_cpu": o.idle_cpu.iter().map(|(d, c)| json!({"dut": d.name(), "cpu": c})).collect::<Vec<_>>(),
        "cells": o.cells,
    });
    std::fs::write(dir.join("latest.json"), serde_json::to_string_pretty(&doc)?)?;
    std::fs::write(dir.join("latest.md"), markdown(o, plan))?;
    plots(o, plan, dir).context("drawing plots")?;
    Ok(())
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    json!({"cpu": model, "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "kernel": kernel})
}

fn font() -> Result<()> {
    let bytes = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
        .context("DejaVuSans.ttf (Debian package fonts-dejavu-core)")?;
    let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, leaked)
        .map_err(|_| anyhow::anyhow!("registering the font"))?;
    Ok(())
}

/// A plotted line: label, DUT (for its colour), points.
type Series<X> = (String, Dut, Vec<(X, f64)>);

/// Lines with a legend, one colour per DUT.
fn draw_lines<'a, CT>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
    series: Vec<(String, Dut, Vec<CT::From>)>,
) -> Result<()>
where
    CT: CoordTranslate,
    CT::From: Clone + 'static,
{
    for (label, d, pts) in series {
        let c = color(d);
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

fn color(d: Dut) -> RGBColor {
    COLORS[match d {
        Dut::Ipoed1 => 0,
        Dut::Ipoed2 => 1,
        Dut::Linux => 2,
        Dut::LinuxNft => 3,
        Dut::Ceiling => 4,
    }]
}

fn plots(o: &Outcome, plan: &Plan, dir: &Path) -> Result<()> {
    font()?;
    // Rate against frame size, one chart per scenario.
    for &sc in &plan.scenarios {
        let path = dir.join(format!("rate-vs-size-{}.png", sc.name()));
        let root = BitMapBackend::new(&path, (800, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let xs: Vec<&String> = plan.sizes.iter().collect();
        let ymax = sc
            .duts()
            .iter()
            .flat_map(|&d| {
                xs.iter()
                    .filter_map(move |s| med_rate(o, sc, d, s, plan.flows))
            })
            .fold(1.0f64, f64::max)
            / 1000.0
            * 1.15;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: max rate by frame size", sc.name()),
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0usize..xs.len().max(1), 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_labels(xs.len().max(1))
            .x_label_formatter(&|i| xs.get(*i).map(|s| s.to_string()).unwrap_or_default())
            .x_desc("frame size (B)")
            .y_desc("kpps")
            .draw()?;
        let series: Vec<Series<usize>> = sc
            .duts()
            .iter()
            .map(|&d| {
                let pts: Vec<(usize, f64)> = xs
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| Some((i, med_rate(o, sc, d, s, plan.flows)? / 1000.0)))
                    .collect();
                (d.name().to_string(), d, pts)
            })
            .filter(|s| !s.2.is_empty())
            .collect();
        for (_, d, pts) in &series {
            let c = color(*d);
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
        }
        draw_lines(&mut chart, series)?;
        root.present()?;
    }
    // Rate against number of flows.
    {
        let path = dir.join("rate-vs-flows.png");
        let root = BitMapBackend::new(&path, (800, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let fl = &plan.flow_sweep;
        let series: Vec<Series<usize>> = [Scenario::Encap, Scenario::Ip6Fwd, Scenario::MapeEncap]
            .iter()
            .flat_map(|&sc| {
                sc.duts().iter().filter_map(move |&d| {
                    let pts: Vec<(usize, f64)> = fl
                        .iter()
                        .enumerate()
                        .filter_map(|(i, &f)| Some((i, med_rate(o, sc, d, "64", f)? / 1000.0)))
                        .collect();
                    (pts.len() >= 2).then(|| (format!("{} {}", d.name(), sc.name()), d, pts))
                })
            })
            .collect();
        let ymax = series
            .iter()
            .flat_map(|s| s.2.iter().map(|p| p.1))
            .fold(1.0f64, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(&root)
            .caption("64 B max rate by number of flows", ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0usize..fl.len().max(1), 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_labels(fl.len().max(1))
            .x_label_formatter(&|i| fl.get(*i).map(|f| f.to_string()).unwrap_or_default())
            .x_desc("flows")
            .y_desc("kpps")
            .draw()?;
        draw_lines(&mut chart, series)?;
        root.present()?;
    }
    // Latency CDF at 50 % of the zero-loss rate, last round.
    {
        let path = dir.join("latency-cdf.png");
        let root = BitMapBackend::new(&path, (800, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut series = Vec::new();
        for sc in [Scenario::Encap, Scenario::Ip6Fwd] {
            for &d in sc.duts() {
                let Some(c) = cells(o, sc, d, "64", plan.flows).into_iter().last() else {
                    continue;
                };
                let Some((_, t)) = c.latency.iter().find(|(f, _)| (*f - 0.5).abs() < 1e-9) else {
                    continue;
                };
                let pts: Vec<(f64, f64)> = t.rx["latency"]["cdf"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| Some((p[1].as_f64()? / 1000.0, p[0].as_f64()?)))
                    .collect();
                if !pts.is_empty() {
                    series.push((format!("{} {}", d.name(), sc.name()), d, pts));
                }
            }
        }
        let xmax = series
            .iter()
            .flat_map(|s| s.2.iter().map(|p| p.0))
            .fold(1.0f64, f64::max)
            .min(2000.0);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "latency CDF at 50 % of the zero-loss rate",
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..xmax, 0f64..100f64)?;
        chart
            .configure_mesh()
            .x_desc("latency (us)")
            .y_desc("percentile")
            .draw()?;
        draw_lines(&mut chart, series)?;
        root.present()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::{Cell, Outcome, Plan, Trial};

    fn cell(scenario: Scenario, dut: Dut, size: &str, flows: u32, round: usize, pps: f64) -> Cell {
        let latency = json!({"p50": 30000.0, "p99": 150000.0, "p999": 900000.0,
                             "cdf": [[50.0, 30000.0], [99.0, 150000.0]]});
        let trial = |rate: f64| Trial {
            rate_pps: rate,
            sent: rate as u64,
            received: rate as u64,
            latency_ns: latency.clone(),
            rx: json!({ "latency": latency }),
            dut_cpu: 0.97,
            ..Default::default()
        };
        Cell {
            scenario,
            dut,
            size: size.to_string(),
            flows,
            round,
            max_rate: trial(pps),
            zero_loss_pps: (size == "64").then_some(pps * 0.98),
            latency: vec![(0.5, trial(pps / 2.0))],
            runtime: None,
        }
    }

    /// The whole report (JSON, Markdown, every plot) from synthetic cells:
    /// medians over rounds and pairwise ratios come out as computed by hand.
    #[test]
    fn report_medians_ratios_and_plots() {
        let plan = Plan::quick();
        let mut cells = Vec::new();
        for round in 0..3 {
            let k = 1.0 + round as f64 * 0.1; // noise that hits every DUT alike
            for sc in [Scenario::Encap, Scenario::Decap, Scenario::Ip6Fwd] {
                for &d in sc.duts() {
                    let base = match d {
                        Dut::Ipoed1 => 900e3,
                        Dut::Ceiling => 850e3,
                        Dut::LinuxNft => 600e3,
                        _ => 800e3,
                    };
                    for &f in &plan.flow_sweep {
                        cells.push(cell(sc, d, "64", f, round, base * k));
                    }
                }
            }
        }
        let o = Outcome {
            cells,
            idle_cpu: vec![(Dut::Ipoed1, 0.001)],
        };
        let md = markdown(&o, &plan);
        // Median of 900k x {1.0, 1.1, 1.2} = 990k.
        assert!(
            md.contains("| dslite-encap | ipoed-1w | 64 | 990 |"),
            "{md}"
        );
        // Ratios within a round cancel the noise: 900/600 = 1.50, 900/850 = 1.06.
        assert!(
            md.contains("| ipoed-1w DS-Lite encap / linux-nft IPv6 forward | 1.50 |"),
            "{md}"
        );
        assert!(
            md.contains("| ipoed-1w DS-Lite encap / afxdp-ceiling | 1.06 |"),
            "{md}"
        );
        assert!(md.contains("30 / 150 / 900"), "latency in us: {md}");

        let dir = std::env::temp_dir().join(format!("ipoe-report-{}", std::process::id()));
        write(&o, &plan, &dir).expect("report written");
        for f in [
            "latest.json",
            "latest.md",
            "rate-vs-flows.png",
            "latency-cdf.png",
            "rate-vs-size-dslite-encap.png",
            "rate-vs-size-ip6-forward.png",
        ] {
            let len = std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
            assert!(len > 1000, "{f}: {len} bytes");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// MAP-E rows: each round's MAP-E rate over that round's DS-Lite rate
    /// at the same flows, whatever the round's noise.
    #[test]
    fn mape_over_dslite_within_each_round() {
        let plan = Plan::mape();
        let mut cells = Vec::new();
        for round in 0..3 {
            let k = 1.0 + round as f64 * 0.3;
            for &f in &plan.flow_sweep {
                // DS-Lite slows with flows; MAP-E at 0.9 of it, 0.8 at 1M.
                let ds = 900e3 * k / (1.0 + f64::from(f) / 1e6);
                let m = if f == 1_000_000 { 0.8 } else { 0.9 };
                cells.push(cell(Scenario::Encap, Dut::Ipoed1, "64", f, round, ds));
                cells.push(cell(
                    Scenario::MapeEncap,
                    Dut::Ipoed1,
                    "64",
                    f,
                    round,
                    ds * m,
                ));
                cells.push(cell(Scenario::Decap, Dut::Ipoed1, "64", f, round, ds));
                cells.push(cell(
                    Scenario::MapeDecap,
                    Dut::Ipoed1,
                    "64",
                    f,
                    round,
                    ds * 0.5,
                ));
            }
            cells.push(cell(
                Scenario::MapeEncap,
                Dut::Ceiling,
                "64",
                1_000,
                round,
                1800e3 * k,
            ));
        }
        // Node clocks: MAP-E's graph 1.2x DS-Lite's at 1k flows.
        let rt = |nodes: &[(&str, f64)]| {
            let n: Vec<Value> = nodes
                .iter()
                .map(|(name, c)| json!({"name": name, "vectors": 5000, "clocks_per_packet": c}))
                .collect();
            Some(json!({"workers": [{"nodes": n}]}))
        };
        for c in cells
            .iter_mut()
            .filter(|c| c.flows == 1_000 && c.dut == Dut::Ipoed1)
        {
            c.runtime = match c.scenario {
                Scenario::Encap => rt(&[("ip4-input", 100.0), ("dslite-encap", 400.0)]),
                Scenario::MapeEncap => rt(&[("nat44-out", 200.0), ("dslite-encap", 400.0)]),
                _ => None,
            };
        }
        let o = Outcome {
            cells,
            idle_cpu: Vec::new(),
        };
        let md = markdown(&o, &plan);
        assert!(
            md.contains("| mape-encap / dslite-encap | all nodes, ratio | 1.20 | - | - | - |"),
            "{md}"
        );
        assert!(
            md.contains("| mape-encap | firewall / nat44 | 200 | - | - | - |"),
            "{md}"
        );
        assert!(
            md.contains("| ipoed-1w MAP-E encap / DS-Lite encap | 0.90 | 0.90 | 0.90 | 0.80 |"),
            "{md}"
        );
        assert!(
            md.contains("| ipoed-1w MAP-E decap / DS-Lite decap | 0.50 | 0.50 | 0.50 | 0.50 |"),
            "{md}"
        );
        // 1k flows: 0.9 * 900k / 1.001 over 1800k.
        assert!(
            md.contains("| ipoed-1w MAP-E encap / afxdp-ceiling | 0.45 |"),
            "{md}"
        );
        assert!(md.contains("| mape-encap | ipoed-1w | "), "{md}");
    }
}
