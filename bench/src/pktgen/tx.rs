//! `pktgen tx`: one AF_XDP socket (copy mode) on one queue, no XDP program.
//!
//! Frames: with up to [`PREBUILT_MAX_FLOWS`] flows, every (flow, size) slot
//! gets a template frame in the UMEM at start, complete with its flow fields
//! and the unfolded UDP sum; a send patches only the 16 per-packet bytes
//! (sequence number, timestamp) and the UDP checksum. A template is sent in
//! place when it is not in flight; otherwise (few flows at a high rate) it is
//! copied into a pool buffer, and a pool buffer remembers which slot it last
//! carried, so the copy is skipped when it carries the same slot again.
//!
//! Beyond [`PREBUILT_MAX_FLOWS`], one template per size, and each send also
//! writes the flow fields (varying address, ports, flow id) and the IPv4
//! header checksum, with the UDP sum adjusted by those words. The trade-off:
//! the UMEM stays bounded (a 1M-flow IMIX run would need 6 GiB of
//! templates) for a few more stores, a division and ~10 additions per packet,
//! and a copy of the frame whenever a pool buffer last carried another size.
//!
//! Sending: batches of up to `--batch` (64) frames, capped by the free TX
//! slots and by `--inflight` (frames submitted but not completed, default
//! 256: enough to keep copy mode busy, which sends at most 32 frames per
//! sendto, without queueing ms of frames in front of every latency sample);
//! completions reclaimed and a sendto kick every loop turn while frames are
//! outstanding. The TX timestamp is taken once per batch.
//!
//! Pacing (`--rate`): a token bucket refilled from the elapsed time (burst
//! `max(2 * batch, rate * 1 ms)`); a turn sends as many frames as there are
//! whole tokens. Waiting for the next token, the generator sleeps when that
//! is more than 30 us away (timer slack set to 1 us) and otherwise spins
//! with `sched_yield`, so frames go out evenly instead of in batch bursts.

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ipoe_dataplane::xsk::{RingSizes, Umem, XdpDesc, XskSocket, ZeroCopyWish};
use ipoe_dataplane::FRAME_SIZE;
use serde::{Deserialize, Serialize};

use super::frames::{self, BaseSums, FrameSpec, Traffic};
use super::{Mac, Opts, XskStats};

pub(crate) const KEYS: &[&str] = &[
    "iface",
    "queue",
    "traffic",
    "src",
    "dst",
    "outer-src",
    "outer-dst",
    "src-mac",
    "dst-mac",
    "hosts",
    "flows",
    "size",
    "rate",
    "duration",
    "count",
    "stream",
    "batch",
    "core",
    "inflight",
    "endpoints",
    "port-map",
];

/// Up to this many flows, every (flow, size) slot has a prebuilt frame.
pub const PREBUILT_MAX_FLOWS: u32 = 4096;
/// Most flows a run may use (the per-flow sequence numbers are a Vec).
pub const MAX_FLOWS: u32 = 1 << 24;
pub const MAX_BATCH: u32 = 64;
/// Default cap on frames submitted but not completed. Copy mode sends at
/// most 32 frames per sendto, so a few batches keep the kernel busy; a full
/// 2048-frame TX ring would only add ~1.7 ms of queueing (at 1.2 Mpps) in
/// front of every latency sample.
pub const DEFAULT_INFLIGHT: u32 = 256;
const TX_RING: u32 = 2048;
const COMP_RING: u32 = 2048;
/// Frames can be in flight in the TX ring and the completion ring at once.
const POOL_FRAMES: u32 = TX_RING + COMP_RING + MAX_BATCH;

/// `--size`: one frame size (with FCS, like RFC 2544) or simple IMIX.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(try_from = "String", into = "String")]
pub enum SizeSpec {
    Fixed(u32),
    /// 7:4:1 of 64, 594 and 1518 bytes.
    Imix,
}

/// The order IMIX sizes go out in: seven 64s, four 594s, one 1518 per 12.
const IMIX_PATTERN: [u8; 12] = [0, 1, 0, 0, 1, 0, 2, 0, 1, 0, 0, 1];

impl SizeSpec {
    /// The sizes (with FCS) this spec uses.
    pub fn sizes(self) -> Vec<u32> {
        match self {
            SizeSpec::Fixed(s) => vec![s],
            SizeSpec::Imix => vec![64, 594, 1518],
        }
    }

    /// Indices into [`SizeSpec::sizes`], in sending order.
    pub fn pattern(self) -> &'static [u8] {
        match self {
            SizeSpec::Fixed(_) => &[0],
            SizeSpec::Imix => &IMIX_PATTERN,
        }
    }
}

impl std::str::FromStr for SizeSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<SizeSpec, String> {
        if s == "imix" {
            return Ok(SizeSpec::Imix);
        }
        match s.parse::<u32>() {
            Ok(n) if (64..=1518).contains(&n) => Ok(SizeSpec::Fixed(n)),
            _ => Err(format!("size must be 64..1518 or imix, got {s:?}")),
        }
    }
}

impl TryFrom<String> for SizeSpec {
    type Error = String;
    fn try_from(s: String) -> Result<SizeSpec, String> {
        s.parse()
    }
}

impl From<SizeSpec> for String {
    fn from(s: SizeSpec) -> String {
        match s {
            SizeSpec::Fixed(n) => n.to_string(),
            SizeSpec::Imix => "imix".into(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct TxArgs {
    pub iface: String,
    pub queue: u32,
    pub traffic: Traffic,
    /// Inner (ipip6) or only addresses; the host side varies over `hosts`.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub outer_src: Option<Ipv6Addr>,
    pub outer_dst: Option<Ipv6Addr>,
    /// Default: the interface's own MAC.
    pub src_mac: Option<Mac>,
    pub dst_mac: Mac,
    pub hosts: u32,
    pub flows: u32,
    pub size: SizeSpec,
    /// Packets per second; 0 = as fast as the ring allows.
    pub rate: f64,
    pub duration: Option<f64>,
    pub count: Option<u64>,
    pub stream: u32,
    pub batch: u32,
    /// Most frames submitted but not yet completed (<= 2048).
    pub inflight: u32,
    pub core: Option<usize>,
    /// LAN endpoints of the MAP-E layout (0: the plain layout).
    pub endpoints: u32,
    /// A file of external ports, one per endpoint (ipip6, MAP-E layout).
    pub port_map: Option<String>,
}

impl TxArgs {
    pub(crate) fn from_opts(o: &Opts) -> Result<TxArgs> {
        let traffic = o.required::<String>("traffic")?;
        let traffic = Traffic::parse(&traffic)
            .ok_or_else(|| anyhow!("--traffic must be ipv4, ipv6 or ipip6, got {traffic:?}"))?;
        Ok(TxArgs {
            iface: o.required("iface")?,
            queue: o.get("queue")?.unwrap_or(0),
            traffic,
            src: o.required("src")?,
            dst: o.required("dst")?,
            outer_src: o.get("outer-src")?,
            outer_dst: o.get("outer-dst")?,
            src_mac: o.get("src-mac")?,
            dst_mac: o.required("dst-mac")?,
            hosts: o.get("hosts")?.unwrap_or(1),
            flows: o.get("flows")?.unwrap_or(1),
            size: o.get("size")?.unwrap_or(SizeSpec::Fixed(64)),
            rate: o.get("rate")?.unwrap_or(0.0),
            duration: o.get("duration")?,
            count: o.get("count")?,
            stream: o.get("stream")?.unwrap_or(0),
            batch: o.get("batch")?.unwrap_or(MAX_BATCH),
            inflight: o.get("inflight")?.unwrap_or(DEFAULT_INFLIGHT),
            core: o.get("core")?,
            endpoints: o.get("endpoints")?.unwrap_or(0),
            port_map: o.get("port-map")?,
        })
    }

    fn spec(&self) -> Result<FrameSpec> {
        let src_mac = match self.src_mac {
            Some(m) => m,
            None => super::iface_mac(&self.iface)?,
        };
        let (outer_src, outer_dst) = match (self.traffic, self.outer_src, self.outer_dst) {
            (Traffic::Ipip6, Some(s), Some(d)) => (s, d),
            (Traffic::Ipip6, _, _) => bail!("ipip6 needs --outer-src and --outer-dst"),
            _ => (Ipv6Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED),
        };
        let spec = FrameSpec {
            traffic: self.traffic,
            src_mac: src_mac.0,
            dst_mac: self.dst_mac.0,
            src: self.src,
            dst: self.dst,
            outer_src,
            outer_dst,
            hosts: self.hosts,
            stream: self.stream,
            endpoints: self.endpoints,
            port_map: match &self.port_map {
                Some(p) => read_port_map(p)?,
                None => Vec::new(),
            },
        };
        spec.validate().map_err(|e| anyhow!(e))?;
        Ok(spec)
    }
}

/// Ports separated by white space or commas.
fn read_port_map(path: &str) -> Result<Vec<u16>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.parse::<u16>()
                .with_context(|| format!("{path}: bad port {w:?}"))
        })
        .collect()
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct SizeCount {
    /// Requested size, with FCS.
    pub size: u32,
    /// Frame length actually sent, without FCS (raised to fit the bench header).
    pub frame_len: u32,
    pub sent: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct TxReport {
    pub iface: String,
    pub queue: u32,
    pub traffic: Traffic,
    pub stream: u32,
    pub flows: u32,
    pub hosts: u32,
    /// "prebuilt" (<= 4096 flows) or "patched".
    pub frames: String,
    pub sent: u64,
    /// Sum of frame lengths (without FCS).
    pub bytes: u64,
    /// From the first send to the last completion.
    pub elapsed_s: f64,
    pub achieved_pps: f64,
    /// Requested rate; null = line rate.
    pub offered_pps: Option<f64>,
    /// Loop turns where the TX ring (or the in-flight cap) had less room than the batch wanted.
    pub tx_ring_full_loops: u64,
    /// Loop turns with no free pool buffer.
    pub pool_empty_loops: u64,
    pub kicks: u64,
    /// Frames still not completed when we gave up waiting (should be 0).
    pub unfinished: u32,
    pub sizes: Vec<SizeCount>,
    pub xdp: XskStats,
}

struct Slot {
    len: u32,
    /// UDP sum without sequence number and timestamp (prebuilt; unused when patched).
    udp_sum: u32,
}

/// Run the generator (see the module comment).
pub fn tx(a: &TxArgs) -> Result<TxReport> {
    if a.flows == 0 || a.flows > MAX_FLOWS {
        bail!("--flows must be 1..={MAX_FLOWS}");
    }
    if a.batch == 0 || a.batch > MAX_BATCH {
        bail!("--batch must be 1..={MAX_BATCH}");
    }
    if a.inflight < a.batch || a.inflight > TX_RING {
        bail!("--inflight must be --batch..={TX_RING}");
    }
    if !(a.rate >= 0.0 && a.rate.is_finite()) {
        bail!("--rate must be >= 0");
    }
    let spec = a.spec()?;
    super::install_stop_handler();
    if let Some(c) = a.core {
        super::pin_to_core(c)?;
    }
    // Precise sleeps for rate limiting (the default slack is 50 us).
    // SAFETY: prctl with plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000u64, 0u64, 0u64, 0u64) };
    let ifindex = ipoe_bpf::ifindex(&a.iface)?;
    let layout = a.traffic.layout();
    let sizes = a.size.sizes();
    let pattern = a.size.pattern();
    let nsizes = sizes.len() as u32;
    let frame_lens: Vec<u32> = sizes
        .iter()
        .map(|&s| a.traffic.frame_len(s) as u32)
        .collect();
    let prebuilt = a.flows <= PREBUILT_MAX_FLOWS;
    let n_templates = if prebuilt { a.flows * nsizes } else { nsizes };
    let total = n_templates + POOL_FRAMES;

    let mut umem = Umem::new(total).context("allocating the UMEM")?;
    let mut sock = XskSocket::new(
        &umem,
        ifindex,
        a.queue,
        RingSizes {
            fill: 64,
            comp: COMP_RING,
            rx: 64,
            tx: TX_RING,
        },
        ZeroCopyWish::Off,
        None,
    )
    .with_context(|| format!("{}: AF_XDP socket on queue {}", a.iface, a.queue))?;
    // We manage every frame ourselves: frame k is at k * FRAME_SIZE, the
    // first `n_templates` hold templates, the rest are the pool. The UMEM's
    // free list then only ever holds what `reclaim` puts back.
    while umem.alloc().is_some() {}
    let fs = FRAME_SIZE as u64;

    // Templates.
    let mut slots: Vec<Slot> = Vec::with_capacity(n_templates as usize);
    let mut base_sums: Vec<BaseSums> = Vec::with_capacity(nsizes as usize);
    {
        let mem = umem.mem();
        for k in 0..n_templates {
            let (flow, si) = (k / nsizes, (k % nsizes) as usize);
            let len = frame_lens[si] as usize;
            let buf = &mut mem[k as usize * FRAME_SIZE..][..len];
            let base = frames::write_base(&spec, len, buf);
            let udp_sum = if prebuilt {
                let f = spec.flow_fields(flow);
                let sum = frames::apply_flow(&layout, base, &f, flow, buf);
                frames::finish(&layout, sum, 0, 0, buf);
                sum
            } else {
                base_sums.push(base);
                0
            };
            slots.push(Slot {
                len: len as u32,
                udp_sum,
            });
        }
    }
    let mut inflight = vec![false; n_templates as usize];
    let mut pool: Vec<u32> = (n_templates..total).rev().collect();
    // What each pool buffer last carried: a slot (prebuilt) or a size (patched).
    let mut tags = vec![u32::MAX; POOL_FRAMES as usize];
    let mut seqs = vec![0u64; a.flows as usize];
    let mut size_sent = vec![0u64; sizes.len()];

    eprintln!(
        "pktgen tx: {} queue {}: {} {} flows over {} hosts, sizes {:?} (frames {:?} B without FCS), {}, {} frames",
        a.iface,
        a.queue,
        a.traffic.as_str(),
        a.flows,
        a.hosts,
        sizes,
        frame_lens,
        if a.rate > 0.0 { format!("{} pps", a.rate) } else { "line rate".into() },
        if prebuilt { "prebuilt" } else { "patched" },
    );

    let batch = a.batch;
    let limit = a.count.unwrap_or(u64::MAX);
    let deadline = a.duration.map(Duration::from_secs_f64);
    let burst = (f64::from(batch) * 2.0).max(a.rate * 0.001);
    let mut tokens = f64::from(batch).min(burst);
    let mut descs = [XdpDesc::default(); MAX_BATCH as usize];
    let (mut sent, mut bytes, mut ring_full, mut pool_empty, mut kicks) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut flow_i: u32 = 0;
    let mut pat_base: usize = 0;
    let mut pat_i: usize = 0;

    let start = Instant::now();
    let mut last = start;
    loop {
        if sent >= limit || super::stop_requested() {
            break;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now - start >= d) {
            break;
        }
        // Completions: templates leave flight, pool buffers go back.
        sock.reclaim(&mut umem);
        while let Some(addr) = umem.alloc() {
            let k = (addr / fs) as u32;
            if k < n_templates {
                inflight[k as usize] = false;
            } else {
                pool.push(k);
            }
        }

        let mut want = u64::from(batch).min(limit - sent) as u32;
        if a.rate > 0.0 {
            tokens = (tokens + (now - last).as_secs_f64() * a.rate).min(burst);
            want = want.min(tokens as u32);
        }
        last = now;
        let free = sock
            .tx_free()
            .min(a.inflight.saturating_sub(sock.tx_outstanding));
        if free < want {
            ring_full += 1;
            want = free;
        }

        if want > 0 {
            let ts = super::mono_ns();
            let mem = umem.mem();
            let mut n = 0usize;
            while (n as u32) < want {
                let flow = flow_i;
                let si = pattern[pat_i] as u32;
                let seq = seqs[flow as usize];
                let k = if prebuilt {
                    let slot = flow * nsizes + si;
                    let s = &slots[slot as usize];
                    if !inflight[slot as usize] {
                        inflight[slot as usize] = true;
                        let buf = &mut mem[slot as usize * FRAME_SIZE..][..s.len as usize];
                        frames::finish(&layout, s.udp_sum, seq, ts, buf);
                        slot
                    } else {
                        let Some(k) = pool.pop() else { break };
                        let off = k as usize * FRAME_SIZE;
                        let tag = &mut tags[(k - n_templates) as usize];
                        if *tag != slot {
                            mem.copy_within(
                                slot as usize * FRAME_SIZE
                                    ..slot as usize * FRAME_SIZE + s.len as usize,
                                off,
                            );
                            *tag = slot;
                        }
                        frames::finish(
                            &layout,
                            s.udp_sum,
                            seq,
                            ts,
                            &mut mem[off..off + s.len as usize],
                        );
                        k
                    }
                } else {
                    let Some(k) = pool.pop() else { break };
                    let len = slots[si as usize].len as usize;
                    let off = k as usize * FRAME_SIZE;
                    let tag = &mut tags[(k - n_templates) as usize];
                    if *tag != si {
                        mem.copy_within(
                            si as usize * FRAME_SIZE..si as usize * FRAME_SIZE + len,
                            off,
                        );
                        *tag = si;
                    }
                    let buf = &mut mem[off..off + len];
                    let f = spec.flow_fields(flow);
                    let sum = frames::apply_flow(&layout, base_sums[si as usize], &f, flow, buf);
                    frames::finish(&layout, sum, seq, ts, buf);
                    k
                };
                let len = frame_lens[si as usize];
                descs[n] = XdpDesc {
                    addr: u64::from(k) * fs,
                    len,
                    options: 0,
                };
                n += 1;
                seqs[flow as usize] = seq + 1;
                size_sent[si as usize] += 1;
                bytes += u64::from(len);
                // Flow i, round r sends pattern[(r + i) % len]: every flow
                // cycles through the sizes and each round mixes them.
                flow_i += 1;
                pat_i += 1;
                if pat_i == pattern.len() {
                    pat_i = 0;
                }
                if flow_i == a.flows {
                    flow_i = 0;
                    pat_base = (pat_base + 1) % pattern.len();
                    pat_i = pat_base;
                }
            }
            if (n as u32) < want {
                pool_empty += 1;
            }
            sock.send(descs[..n].iter().copied());
            sent += n as u64;
            tokens -= n as f64;
        } else if a.rate > 0.0 && sock.tx_outstanding == 0 {
            // Nothing in flight and no token yet: sleep until the next token
            // when that is far enough away for a sleep to be accurate (timer
            // slack is 1 us, see above); spin otherwise. So low rates go out
            // one frame at a time instead of in batch-sized bursts.
            let wait = (1.0 - tokens) / a.rate;
            if wait > 30e-6 {
                std::thread::sleep(Duration::from_secs_f64((wait - 10e-6).min(0.01)));
            } else {
                // Let a receiver sharing this core run.
                // SAFETY: plain syscall.
                unsafe { libc::sched_yield() };
            }
        }
        if sock.tx_outstanding > 0 {
            sock.service_wakeups();
            kicks += 1;
        }
    }

    // Drain: kick until every frame completed (or give up after 2 s).
    let drain_start = Instant::now();
    while sock.tx_outstanding > 0 && drain_start.elapsed() < Duration::from_secs(2) {
        sock.reclaim(&mut umem);
        if sock.tx_outstanding > 0 {
            sock.service_wakeups();
            kicks += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stats = sock.statistics().unwrap_or_default();
    let report = TxReport {
        iface: a.iface.clone(),
        queue: a.queue,
        traffic: a.traffic,
        stream: a.stream,
        flows: a.flows,
        hosts: a.hosts,
        frames: if prebuilt { "prebuilt" } else { "patched" }.into(),
        sent,
        bytes,
        elapsed_s: elapsed,
        achieved_pps: if elapsed > 0.0 {
            sent as f64 / elapsed
        } else {
            0.0
        },
        offered_pps: (a.rate > 0.0).then_some(a.rate),
        tx_ring_full_loops: ring_full,
        pool_empty_loops: pool_empty,
        kicks,
        unfinished: sock.tx_outstanding,
        sizes: sizes
            .iter()
            .zip(&frame_lens)
            .zip(&size_sent)
            .map(|((&size, &frame_len), &sent)| SizeCount {
                size,
                frame_len,
                sent,
            })
            .collect(),
        xdp: XskStats::new(&a.iface, a.queue, &stats),
    };
    eprintln!(
        "pktgen tx: sent {} in {:.3} s = {:.0} pps ({} ring-full loops, {} kicks)",
        sent, elapsed, report.achieved_pps, ring_full, kicks
    );
    Ok(report)
}
