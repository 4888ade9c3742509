//! `pktgen rx`: the endpoint XDP program on the interface, one AF_XDP socket
//! (copy mode, its own UMEM) per queue, all polled by one thread.
//!
//! Per (stream, flow) the receiver keeps the next expected sequence number
//! and a 64-bit window of the sequence numbers just below it:
//! - `seq >= expected`: `seq - expected` frames are counted lost (a gap);
//! - `seq < expected`, inside the window and not seen: reordered (it was
//!   counted lost, so lost goes down by one);
//! - inside the window and seen: duplicate;
//! - older than the window: counted reordered (a duplicate that old is
//!   miscounted: the figures are approximate there).
//!
//! Frames lost at the very end of a run leave no gap; compare `received`
//! with the sender's `sent` for the exact loss.

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use ipoe_dataplane::xsk::{RingSizes, Umem, XdpDesc, XskSocket, ZeroCopyWish};
use serde::{Deserialize, Serialize};

use super::frames::{self, BenchHdr, Parsed, PortSet};
use super::{Opts, XskStats};
use crate::endpoint::Endpoint;

pub(crate) const KEYS: &[&str] = &[
    "iface",
    "queues",
    "duration",
    "idle",
    "expect",
    "max-flows",
    "poll",
    "verify",
    "core",
    "ready-file",
    "tunnel-src",
    "tunnel-dst",
    "inner-src",
    "psid",
];

/// Deep rings: 16384 frames absorb a ~13 ms stall of the receiver at
/// 1.2 Mpps, e.g. time slices when it shares a core with the generator.
const FILL_RING: u32 = 16384;
const RX_RING: u32 = 16384;
const UMEM_FRAMES: u32 = FILL_RING + RX_RING + BATCH as u32;
const BATCH: usize = 64;
/// Streams tracked per flow; frames of further streams count as untracked.
pub const MAX_STREAMS: usize = 16;
/// Latency histogram bounds: 1 ns .. 10 s, 3 significant digits.
const LAT_MAX_NS: u64 = 10_000_000_000;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PollMode {
    /// Spin on the rings.
    Busy,
    /// Spin while frames come; after 256 empty turns sleep in poll() (10 ms max).
    Adaptive,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RxArgs {
    pub iface: String,
    /// Default: every rx queue of the interface.
    pub queues: Option<Vec<u32>>,
    /// Stop after this long (from when the sockets are ready).
    pub duration: Option<f64>,
    /// Stop after this long without a bench frame, once one arrived.
    pub idle: f64,
    /// Stop at this many bench frames.
    pub expect: Option<u64>,
    /// Flow ids at or above this are counted but not tracked.
    pub max_flows: u32,
    pub poll: PollMode,
    /// Verify IPv4 header and UDP checksums of bench frames.
    pub verify: bool,
    pub core: Option<usize>,
    /// Written (empty) once the sockets are ready, for harnesses.
    pub ready_file: Option<String>,
    /// Check every bench frame as a MAP-E BR would.
    pub tunnel_check: Option<TunnelCheck>,
}

/// What a MAP-E CE's packets must carry: outer source its CE address,
/// outer destination the BR, inner source the shared IPv4 address and a
/// source port of its set.
#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
pub struct TunnelCheck {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub inner_src: Ipv4Addr,
    pub ports: PortSet,
}

/// Bench frames that broke a [`TunnelCheck`], by what was wrong (a frame
/// counts once per field).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct TunnelReport {
    pub checked: u64,
    /// Not IPv4-in-IPv6 at all.
    pub not_tunnelled: u64,
    pub outer_src: u64,
    pub outer_dst: u64,
    pub inner_src: u64,
    pub port_outside_set: u64,
    /// Distinct inner source ports seen (one per LAN endpoint with
    /// endpoint-independent mapping).
    pub ports_seen: u32,
}

/// The per-frame side of [`TunnelCheck`] (no I/O, unit-tested).
pub(crate) struct TunnelChecker {
    check: TunnelCheck,
    report: TunnelReport,
    seen: Vec<u64>,
}

impl TunnelChecker {
    pub(crate) fn new(check: TunnelCheck) -> TunnelChecker {
        TunnelChecker {
            check,
            report: TunnelReport::default(),
            seen: vec![0; 65536 / 64],
        }
    }

    pub(crate) fn record(&mut self, frame: &[u8]) {
        let r = &mut self.report;
        r.checked += 1;
        let Some(v) = frames::tunnel_view(frame) else {
            r.not_tunnelled += 1;
            return;
        };
        let c = &self.check;
        r.outer_src += u64::from(v.outer_src != c.src);
        r.outer_dst += u64::from(v.outer_dst != c.dst);
        r.inner_src += u64::from(v.inner_src != c.inner_src);
        r.port_outside_set += u64::from(!c.ports.contains(v.inner_sport));
        let (w, bit) = (usize::from(v.inner_sport) / 64, v.inner_sport % 64);
        if self.seen[w] & (1 << bit) == 0 {
            self.seen[w] |= 1 << bit;
            r.ports_seen += 1;
        }
    }

    pub(crate) fn report(&self) -> TunnelReport {
        self.report.clone()
    }
}

impl RxArgs {
    pub(crate) fn from_opts(o: &Opts) -> Result<RxArgs> {
        let queues = match o.str("queues") {
            None => None,
            Some(s) => Some(
                s.split(',')
                    .map(|q| {
                        q.trim()
                            .parse::<u32>()
                            .with_context(|| format!("--queues {s:?}"))
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        let poll = match o.str("poll").unwrap_or("adaptive") {
            "busy" => PollMode::Busy,
            "adaptive" => PollMode::Adaptive,
            p => bail!("--poll must be busy or adaptive, got {p:?}"),
        };
        Ok(RxArgs {
            iface: o.required("iface")?,
            queues,
            duration: o.get("duration")?,
            idle: o.get("idle")?.unwrap_or(1.0),
            expect: o.get("expect")?,
            max_flows: o.get("max-flows")?.unwrap_or(1 << 20),
            poll,
            verify: o
                .str("verify")
                .map(super::parse_bool)
                .transpose()?
                .unwrap_or(false),
            core: o.get("core")?,
            ready_file: o.get("ready-file")?,
            tunnel_check: match (
                o.get::<Ipv6Addr>("tunnel-src")?,
                o.get::<Ipv6Addr>("tunnel-dst")?,
                o.get::<Ipv4Addr>("inner-src")?,
                o.str("psid"),
            ) {
                (None, None, None, None) => None,
                (Some(src), Some(dst), Some(inner_src), Some(p)) => Some(TunnelCheck {
                    src,
                    dst,
                    inner_src,
                    ports: PortSet::parse(p)
                        .ok_or_else(|| anyhow::anyhow!("--psid {p:?}: want PSID/LEN/OFFSET"))?,
                }),
                _ => bail!("--tunnel-src, --tunnel-dst, --inner-src and --psid go together"),
            },
        })
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Latency {
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CdfPoint {
    pub percentile: f64,
    pub ns: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct StreamReport {
    pub stream: u32,
    pub received: u64,
    pub flows_seen: u64,
    pub lost: u64,
    pub reordered: u64,
    pub duplicates: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RxReport {
    pub iface: String,
    pub queues: Vec<u32>,
    /// How the endpoint program attached: "native" or "generic".
    pub xdp_mode: String,
    /// Bench frames.
    pub received: u64,
    /// Frame bytes (without FCS) of bench frames.
    pub bytes: u64,
    pub non_bench_frames: u64,
    pub malformed: u64,
    pub bad_checksum: u64,
    /// Bench frames whose flow id >= max_flows or of a 17th stream.
    pub untracked: u64,
    pub flows_seen: u64,
    pub lost: u64,
    pub reordered: u64,
    pub duplicates: u64,
    /// From the first to the last bench frame.
    pub elapsed_s: f64,
    pub pps: f64,
    /// "expect", "idle", "duration" or "signal".
    pub stopped_by: String,
    pub latency: Latency,
    pub cdf: Vec<CdfPoint>,
    pub streams: Vec<StreamReport>,
    pub xdp: Vec<XskStats>,
    /// With a tunnel check only.
    pub tunnel: Option<TunnelReport>,
}

#[derive(Clone, Copy, Default)]
struct FlowState {
    /// Next expected sequence number; 0 = flow not seen yet.
    next: u64,
    /// Bit i: seq `next - 1 - i` was received.
    window: u64,
}

struct Stream {
    report: StreamReport,
    flows: Vec<FlowState>,
}

/// The per-(stream, flow) accounting, without any I/O (unit-tested).
pub(crate) struct Tracker {
    streams: Vec<Stream>,
    max_flows: u32,
    pub untracked: u64,
}

impl Tracker {
    pub(crate) fn new(max_flows: u32) -> Tracker {
        Tracker {
            streams: Vec::with_capacity(MAX_STREAMS),
            max_flows,
            untracked: 0,
        }
    }

    #[inline]
    pub(crate) fn record(&mut self, h: &BenchHdr) {
        let si = match self
            .streams
            .iter()
            .position(|s| s.report.stream == h.stream)
        {
            Some(i) => i,
            None if self.streams.len() < MAX_STREAMS => {
                // Capacity reserved once per stream; pages are touched as flows appear.
                self.streams.push(Stream {
                    report: StreamReport {
                        stream: h.stream,
                        ..Default::default()
                    },
                    flows: Vec::with_capacity(self.max_flows as usize),
                });
                self.streams.len() - 1
            }
            None => {
                self.untracked += 1;
                return;
            }
        };
        let s = &mut self.streams[si];
        if h.flow >= self.max_flows {
            self.untracked += 1;
            s.report.received += 1;
            return;
        }
        let fi = h.flow as usize;
        if fi >= s.flows.len() {
            // Within the reserved capacity: no reallocation.
            s.flows.resize(fi + 1, FlowState::default());
        }
        let f = &mut s.flows[fi];
        let r = &mut s.report;
        r.received += 1;
        if f.next == 0 {
            r.flows_seen += 1;
        }
        if h.seq >= f.next {
            let gap = h.seq - f.next;
            r.lost += gap;
            f.window = if gap >= 63 {
                1
            } else {
                (f.window << (gap + 1)) | 1
            };
            f.next = h.seq.saturating_add(1);
        } else {
            let off = f.next - 1 - h.seq;
            if off < 64 {
                let bit = 1u64 << off;
                if f.window & bit != 0 {
                    r.duplicates += 1;
                    return;
                }
                f.window |= bit;
            }
            r.reordered += 1;
            r.lost = r.lost.saturating_sub(1);
        }
    }

    pub(crate) fn streams(&self) -> Vec<StreamReport> {
        self.streams.iter().map(|s| s.report.clone()).collect()
    }
}

/// Percentiles of the `cdf` report field (~50 points, dense in the tail).
const CDF_PERCENTILES: [f64; 50] = [
    0.0, 1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0,
    75.0, 80.0, 85.0, 90.0, 91.0, 92.0, 93.0, 94.0, 95.0, 96.0, 97.0, 97.5, 98.0, 98.5, 99.0, 99.1,
    99.2, 99.3, 99.4, 99.5, 99.6, 99.7, 99.8, 99.9, 99.91, 99.92, 99.93, 99.95, 99.97, 99.99,
    99.995, 99.999, 99.9999, 100.0,
];

/// Run the receiver (see the module comment).
pub fn rx(a: &RxArgs) -> Result<RxReport> {
    super::install_stop_handler();
    if let Some(c) = a.core {
        super::pin_to_core(c)?;
    }
    if a.max_flows == 0 {
        bail!("--max-flows must be at least 1");
    }
    let ifindex = ipoe_bpf::ifindex(&a.iface)?;
    let queues = match &a.queues {
        Some(q) if !q.is_empty() => q.clone(),
        _ => (0..super::rx_queue_count(&a.iface)?).collect(),
    };
    let ep = Endpoint::attach(&a.iface)?;
    let mut ports: Vec<(Umem, XskSocket)> = Vec::with_capacity(queues.len());
    for &q in &queues {
        let mut umem = Umem::new(UMEM_FRAMES).context("allocating a UMEM")?;
        let mut sock = XskSocket::new(
            &umem,
            ifindex,
            q,
            RingSizes {
                fill: FILL_RING,
                comp: 64,
                rx: RX_RING,
                tx: 64,
            },
            ZeroCopyWish::Off,
            None,
        )
        .with_context(|| format!("{}: AF_XDP socket on queue {q}", a.iface))?;
        sock.refill(&mut umem, FILL_RING);
        ep.register(q, sock.fd())?;
        ports.push((umem, sock));
    }
    let mut pollfds: Vec<libc::pollfd> = ports
        .iter()
        .map(|(_, s)| libc::pollfd {
            fd: s.fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    eprintln!(
        "pktgen rx: {} queues {:?} ready (endpoint XDP {})",
        a.iface, queues, ep.mode
    );
    if let Some(p) = &a.ready_file {
        fs::write(p, b"").with_context(|| format!("writing {p}"))?;
    }

    let mut hist = Histogram::<u64>::new_with_bounds(1, LAT_MAX_NS, 3)?;
    let mut tracker = Tracker::new(a.max_flows);
    let mut checker = a.tunnel_check.map(TunnelChecker::new);
    let (mut received, mut bytes, mut non_bench, mut malformed, mut bad_csum) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut first_ns, mut last_ns) = (0u64, 0u64);
    let mut descs = [XdpDesc::default(); BATCH];
    let start = Instant::now();
    let duration = a.duration.map(Duration::from_secs_f64);
    let idle_ns = (a.idle * 1e9) as u64;
    let expect = a.expect.unwrap_or(u64::MAX);
    let mut empty_turns = 0u32;
    let stopped_by = loop {
        let mut got = 0usize;
        for (umem, sock) in ports.iter_mut() {
            let n = sock.recv(&mut descs);
            if n > 0 {
                let now = super::mono_ns();
                let mem = umem.mem();
                for d in &descs[..n] {
                    let lo = d.addr as usize;
                    let Some(frame) = mem.get(lo..lo + d.len as usize) else {
                        malformed += 1;
                        continue;
                    };
                    match frames::parse(frame, a.verify) {
                        Parsed::Bench(h) => {
                            received += 1;
                            bytes += u64::from(d.len);
                            tracker.record(&h);
                            if let Some(c) = checker.as_mut() {
                                c.record(frame);
                            }
                            hist.saturating_record(now.saturating_sub(h.ts).max(1));
                            if first_ns == 0 {
                                first_ns = now;
                            }
                            last_ns = now;
                        }
                        Parsed::BadChecksum => bad_csum += 1,
                        Parsed::NotBench => non_bench += 1,
                        Parsed::Malformed => malformed += 1,
                    }
                }
                for d in &descs[..n] {
                    umem.free(d.addr);
                }
                got += n;
            }
            sock.refill(umem, FILL_RING);
            sock.service_wakeups();
        }
        if super::stop_requested() {
            break "signal";
        }
        if received >= expect {
            break "expect";
        }
        if got > 0 {
            empty_turns = 0;
            continue;
        }
        empty_turns = empty_turns.saturating_add(1);
        if duration.is_some_and(|d| start.elapsed() >= d) {
            break "duration";
        }
        if first_ns != 0 && super::mono_ns().saturating_sub(last_ns) >= idle_ns {
            break "idle";
        }
        if a.poll == PollMode::Adaptive && empty_turns > 256 {
            // SAFETY: `pollfds` is a valid array of pollfd.
            unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, 10) };
        }
    };

    let elapsed = if last_ns > first_ns {
        (last_ns - first_ns) as f64 / 1e9
    } else {
        0.0
    };
    let streams = tracker.streams();
    let sum = |f: fn(&StreamReport) -> u64| streams.iter().map(f).sum::<u64>();
    let latency = if hist.is_empty() {
        Latency::default()
    } else {
        Latency {
            min: hist.min(),
            p50: hist.value_at_quantile(0.50),
            p90: hist.value_at_quantile(0.90),
            p99: hist.value_at_quantile(0.99),
            p999: hist.value_at_quantile(0.999),
            max: hist.max(),
            mean: hist.mean(),
        }
    };
    let cdf = if hist.is_empty() {
        Vec::new()
    } else {
        CDF_PERCENTILES
            .iter()
            .map(|&p| CdfPoint {
                percentile: p,
                ns: hist.value_at_quantile(p / 100.0),
            })
            .collect()
    };
    let xdp = ports
        .iter()
        .map(|(_, s)| XskStats::new(&a.iface, s.queue, &s.statistics().unwrap_or_default()))
        .collect();
    let report = RxReport {
        iface: a.iface.clone(),
        queues,
        xdp_mode: ep.mode.to_string(),
        received,
        bytes,
        non_bench_frames: non_bench,
        malformed,
        bad_checksum: bad_csum,
        untracked: tracker.untracked,
        flows_seen: sum(|s| s.flows_seen),
        lost: sum(|s| s.lost),
        reordered: sum(|s| s.reordered),
        duplicates: sum(|s| s.duplicates),
        elapsed_s: elapsed,
        pps: if elapsed > 0.0 {
            received as f64 / elapsed
        } else {
            0.0
        },
        stopped_by: stopped_by.into(),
        latency,
        cdf,
        streams,
        xdp,
        tunnel: checker.map(|c| c.report()),
    };
    eprintln!(
        "pktgen rx: received {} ({} lost, {} reordered, {} dup) in {:.3} s = {:.0} pps, latency p50 {} ns p99 {} ns; stopped by {}",
        report.received,
        report.lost,
        report.reordered,
        report.duplicates,
        elapsed,
        report.pps,
        report.latency.p50,
        report.latency.p99,
        report.stopped_by
    );
    drop(ports);
    drop(ep);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(stream: u32, flow: u32, seq: u64) -> BenchHdr {
        BenchHdr {
            stream,
            flow,
            seq,
            ts: 0,
        }
    }

    fn one(t: &Tracker) -> StreamReport {
        t.streams()[0].clone()
    }

    #[test]
    fn in_order_gaps_reorder_and_duplicates() {
        let mut t = Tracker::new(16);
        for s in 0..10 {
            t.record(&hdr(1, 0, s));
        }
        let r = one(&t);
        assert_eq!(
            (r.received, r.lost, r.reordered, r.duplicates, r.flows_seen),
            (10, 0, 0, 0, 1)
        );
        // 10 and 11 go missing, 13 comes before 12, 12 comes twice.
        for s in [13, 12, 12, 14] {
            t.record(&hdr(1, 0, s));
        }
        let r = one(&t);
        assert_eq!((r.lost, r.reordered, r.duplicates), (2, 1, 1));
        // 11 arrives very late but inside the window.
        t.record(&hdr(1, 0, 11));
        let r = one(&t);
        assert_eq!((r.lost, r.reordered, r.duplicates), (1, 2, 1));
        // A jump of more than the window, then something older than it.
        t.record(&hdr(1, 0, 1000));
        t.record(&hdr(1, 0, 500));
        let r = one(&t);
        assert_eq!((r.lost, r.reordered), (1 + 985 - 1, 3));
        // Another 14 is older than the window: approximate (reordered).
        t.record(&hdr(1, 0, 14));
        assert_eq!(one(&t).reordered, 4);
    }

    #[test]
    fn flows_and_streams_are_separate_and_bounded() {
        let mut t = Tracker::new(4);
        t.record(&hdr(1, 0, 0));
        t.record(&hdr(1, 3, 0));
        t.record(&hdr(2, 3, 0));
        t.record(&hdr(1, 4, 0)); // flow id beyond max_flows
        let s = t.streams();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].received, s[0].flows_seen, s[0].lost), (3, 2, 0));
        assert_eq!((s[1].received, s[1].flows_seen), (1, 1));
        assert_eq!(t.untracked, 1);
        for st in 3..(MAX_STREAMS as u32 + 5) {
            t.record(&hdr(st, 0, 0));
        }
        assert_eq!(t.streams().len(), MAX_STREAMS);
        // Streams 3..MAX_STREAMS+5: 14 fit beside 1 and 2, 4 do not.
        assert_eq!(t.untracked, 1 + 4);
    }

    #[test]
    fn first_frame_with_late_seq_counts_the_missing_ones() {
        let mut t = Tracker::new(4);
        t.record(&hdr(0, 1, 5));
        assert_eq!(one(&t).lost, 5);
        t.record(&hdr(0, 1, 0));
        assert_eq!((one(&t).lost, one(&t).reordered), (4, 1));
    }

    /// The sink's BR checks: each wrong field counted once per frame,
    /// distinct source ports counted.
    #[test]
    fn tunnel_checker_counts_what_a_br_would_refuse() {
        use crate::pktgen::frames::{apply_flow, finish, write_base, FrameSpec, Traffic};
        let ce: Ipv6Addr = "2001:db8:0:1234:c0:2:4800:3400".parse().unwrap();
        let br: Ipv6Addr = "2001:db8:aaaa::1".parse().unwrap();
        let shared: Ipv4Addr = "192.0.2.72".parse().unwrap();
        // What ipoed sends to the BR: ipip6 frames "from" the CE whose
        // inner source is the shared address (the layout's peer) and port.
        let frame = |outer_src: Ipv6Addr, inner: Ipv4Addr, sport: u16| {
            let s = FrameSpec {
                traffic: Traffic::Ipip6,
                src_mac: [2, 0, 0, 0, 0, 1],
                dst_mac: [2, 0, 0, 0, 0, 2],
                src: inner.into(),
                dst: "198.51.100.10".parse().unwrap(),
                outer_src,
                outer_dst: br,
                hosts: 1,
                stream: 1,
                endpoints: 0,
                port_map: Vec::new(),
            };
            let l = Traffic::Ipip6.layout();
            let mut b = vec![0u8; 200];
            let len = Traffic::Ipip6.min_frame_len();
            let base = write_base(&s, len, &mut b);
            let mut f = s.flow_fields(0);
            f.sport = sport;
            let sum = apply_flow(&l, base, &f, 0, &mut b);
            finish(&l, sum, 0, 0, &mut b);
            b.truncate(len);
            b
        };
        let mut c = TunnelChecker::new(TunnelCheck {
            src: ce,
            dst: br,
            inner_src: shared,
            ports: PortSet::parse("52/6/6").unwrap(),
        });
        for _ in 0..3 {
            c.record(&frame(ce, shared, 1856));
        }
        c.record(&frame(ce, shared, 2048 + 832 + 15));
        let r = c.report();
        assert_eq!((r.checked, r.ports_seen), (4, 2));
        assert_eq!(
            r.not_tunnelled + r.outer_src + r.outer_dst + r.inner_src + r.port_outside_set,
            0
        );
        c.record(&frame(br, shared, 1856));
        c.record(&frame(ce, "192.0.2.73".parse().unwrap(), 1856));
        c.record(&frame(ce, shared, 1872));
        c.record(&frame(ce, shared, 832));
        c.record(&[0u8; 60]);
        let r = c.report();
        assert_eq!(
            (
                r.checked,
                r.outer_src,
                r.inner_src,
                r.port_outside_set,
                r.not_tunnelled
            ),
            (9, 1, 1, 2, 1)
        );
        assert_eq!((r.outer_dst, r.ports_seen), (0, 4));
    }
}
