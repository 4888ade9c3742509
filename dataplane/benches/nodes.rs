//! Node-path microbenchmarks: pre-built vectors of 64 and 256 frames, each
//! frame a different flow, run through the whole graph (`Graph::run`) the
//! way a worker runs a received vector.
//!
//! Groups (`testkit::Path`): `dslite-encap` (LAN IPv4/UDP, 64-byte frames:
//! ethernet-input, ip4-input, dslite-encap, interface-output),
//! `dslite-decap` (AFTR IPv4-in-IPv6, 104-byte frames that leave as 64-byte
//! LAN frames), `ip6-forward` (64-byte IPv6/UDP, LAN->WAN and WAN->LAN
//! alternating), `ip4-ttl-expired` (LAN IPv4 with TTL 1: ip4-icmp-error
//! builds a time exceeded back to the host) and `mixed` (the four
//! forwarding paths round-robin). Criterion reports time per vector and,
//! through `Throughput::Elements(n)`, packets per second.
//!
//! `nat44-map-e-encap` and `nat44-map-e-decap`: the same LAN frames with
//! MAP-E's NAPT44 on (nat44-out before dslite-encap), and the replies to
//! the ports they got (nat44-in after dslite-decap); see `napt`.
//!
//! `neighbor-lookup` times `Fib::arp` and `Fib::nd_lan` (HashMap with the
//! crate's `AddrHasher`) hits and misses at 1k and 1M entries.
//! `session-lookup` times `SessionTable::track` on existing sessions (the
//! per-packet call) and `lookup` misses, at 1k and 1M sessions, keys in
//! random order. `session-sweep` times lookup+update of every session of
//! a 1k, a 10k and a 1M table in a random order, vectors of 256, one by one
//! (`serial`) and through the firewall's three-pass `track_batch`
//! (`batch`), and at 1k with 1 or 4 MB of cache pollution between
//! vectors. `mss-clamp` times lowering the MSS of a Linux-style SYN
//! with the incremental checksum update. Path benchmarks open the sessions
//! their WAN frames need before measuring, as a real exchange would.
//!
//! `csum-partial` times what `csum.rs` adds at ip4-input, ip6-input and
//! dslite-decap: `compare-*` on ordinary frames (UDP and TCP, 256 flows)
//! is what every packet pays, the pseudo-header sum and one compare;
//! `complete-*` completes a kernel's partial checksum (64- and 1514-byte
//! frames), which only frames from offloading peers pay. The path groups
//! above include the compare; their `ip6-input`/`ip4-input` node clocks,
//! run on this tree and on the one before the change, give the difference
//! on the path.
//!
//! Resetting the frames. Nodes edit frames in place, so before every run
//! `FrameArena::load` restores the vector (copies the pristine frames back,
//! resets the meta). That copy is outside the timing: each `Graph::run` is
//! bracketed by two reads of `counters::clocks()` (rdtsc) with the load
//! before the first, and the bracket's own cost (two back-to-back reads,
//! median of 10,000, about 20 ticks per vector) is subtracted. Criterion
//! gets these ticks as a `Duration` through `iter_custom`, converted with
//! the TSC rate measured against `Instant` at start-up. (Timing load + run
//! and then load alone and subtracting was tried first: for small
//! iteration counts the noise made the difference zero, which criterion
//! rejects.) The load alone is still timed and reported as
//! `load_cycles_per_packet`, for reference.
//!
//! Cycles per packet. After criterion has run a path benchmark, the same
//! vector runs `CYCLE_RUNS` (20,000) more times, bracketed as above (1,000
//! warm-up runs first): cycles/packet = (sum of bracket ticks - 20,000 x
//! bracket cost) / (20,000 x n), in TSC ticks (what VPP calls clocks; the
//! TSC runs at a fixed rate, not the core's current one). The median run
//! is reported too, being robust to interrupts on a shared machine.
//! Printed to stderr as `cycles/packet <group> v<n>: <x>` and written to
//! `<target dir>/criterion-cycles.json`:
//!
//! ```json
//! {"tsc_ghz": 2.6, "runs": 20000, "bracket_ticks": 20, "results": [
//!   {"group": "dslite-encap", "vector": 64, "cycles_per_packet": 71.2,
//!    "median_cycles_per_packet": 69.8, "ns_per_packet": 27.4,
//!    "load_cycles_per_packet": 12.9,
//!    "nodes": {"ethernet-input": 9.9, ...},
//!    "nodes_median": {"ethernet-input": 9.6, ...}}]}
//! ```
//!
//! `nodes` are the graph's own per-node counters over the same runs: clocks
//! per packet that went through the node (VPP's "Clocks" column; they
//! include one rdtsc pair per node call, amortized over the vector);
//! `nodes_median` the same counters' median run, which interrupts on a
//! shared machine do not move the way they move the mean.
//! Only benchmarks criterion actually ran (see its filter argument) get a
//! cycle count, and none in `--test` or `--list` mode.

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::atomic::{compiler_fence, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use etherparse::{IpNumber, Ipv6Header, PacketBuilder};
use ipoe_dataplane::counters::clocks;
use ipoe_dataplane::csum::{complete_ipv4, complete_ipv6};
use ipoe_dataplane::flow::{clamp_mss, tcp_view};
use ipoe_dataplane::graph::{Graph, NodeId};
use ipoe_dataplane::nat::bindings::Bindings;
use ipoe_dataplane::nat::ports::Limits;
use ipoe_dataplane::nat::PortPool;
use ipoe_dataplane::session::{
    Dir, Key, Request, Segment, SessionTable, State, Timeouts, Track, CHUNK,
};
use ipoe_dataplane::tables::{Fib, Port};
use ipoe_dataplane::testkit::{
    as_refs, lab_fib, lan_udp4, lan_udp6, make_partial, open_sessions, unlimited_graph, vector,
    FrameArena, Path, HOST4, HOST6, HOST_MAC, LAN_MAC, SERVER4, SERVER6,
};
use ipoe_proto::map::PortSet;

/// Vector sizes: a typical busy-poll vector and the largest (MAX_BATCH).
const VECTORS: [usize; 2] = [64, 256];
/// LAN-side frame size of the path benchmarks.
const FRAME_LEN: usize = 64;
/// Graph runs per cycle measurement.
const CYCLE_RUNS: usize = 20_000;
/// Lookups per neighbor-table iteration.
const LOOKUPS: usize = 1024;

/// The TSC and how to read it around a run.
#[derive(Clone, Copy)]
struct Tsc {
    /// Ticks per nanosecond.
    per_ns: f64,
    /// Ticks two back-to-back reads take (subtracted from every bracket).
    bracket: u64,
}

impl Tsc {
    fn calibrate() -> Tsc {
        let mut pairs: Vec<u64> = (0..10_000)
            .map(|_| {
                let t0 = clocks();
                compiler_fence(SeqCst);
                clocks().wrapping_sub(t0)
            })
            .collect();
        pairs.sort_unstable();
        let t = Instant::now();
        let c0 = clocks();
        while t.elapsed() < Duration::from_millis(50) {
            std::hint::spin_loop();
        }
        let ticks = clocks().wrapping_sub(c0);
        Tsc {
            per_ns: ticks as f64 / t.elapsed().as_nanos() as f64,
            bracket: pairs[pairs.len() / 2],
        }
    }

    fn duration(&self, ticks: u64) -> Duration {
        Duration::from_nanos((ticks as f64 / self.per_ns) as u64)
    }
}

/// Restore the vector (untimed), then one timed graph run: its ticks,
/// bracket cost included.
#[inline(always)]
fn run_ticks(
    graph: &mut Graph,
    arena: &mut FrameArena,
    fib: &Fib,
    frames: &[(Port, &[u8])],
) -> u64 {
    let n = arena.load(graph, frames);
    let mem = arena.mem();
    compiler_fence(SeqCst);
    let t0 = clocks();
    compiler_fence(SeqCst);
    graph.run(fib, mem, n, 0);
    compiler_fence(SeqCst);
    let t = clocks().wrapping_sub(t0);
    compiler_fence(SeqCst);
    black_box(&graph.out);
    t
}

/// One path benchmark's TSC figures.
struct Cycles {
    group: &'static str,
    vector: usize,
    cycles_per_packet: f64,
    median_cycles_per_packet: f64,
    ns_per_packet: f64,
    load_cycles_per_packet: f64,
    nodes: Vec<(&'static str, f64)>,
    /// Per node, the median run's clocks per packet.
    nodes_median: Vec<(&'static str, f64)>,
}

fn measure_cycles(
    group: &'static str,
    tsc: Tsc,
    graph: &mut Graph,
    arena: &mut FrameArena,
    fib: &Fib,
    frames: &[(Port, &[u8])],
) -> Cycles {
    let n = frames.len() as f64;
    for _ in 0..1000 {
        run_ticks(graph, arena, fib, frames);
    }
    // The nodes this vector runs through, each one's clocks per run kept
    // for a median (what one node costs is lost in the mean when other
    // work on a shared machine interrupts a run).
    let ids: Vec<NodeId> = NodeId::ALL
        .iter()
        .copied()
        .filter(|&id| graph.stats.nodes[id as usize].vectors > 0)
        .collect();
    graph.stats = Default::default();
    let mut per_node: Vec<Vec<u64>> = vec![Vec::with_capacity(CYCLE_RUNS); ids.len()];
    let mut before = vec![0u64; ids.len()];
    let mut runs: Vec<u64> = Vec::with_capacity(CYCLE_RUNS);
    for _ in 0..CYCLE_RUNS {
        for (b, &id) in before.iter_mut().zip(&ids) {
            *b = graph.stats.nodes[id as usize].clocks;
        }
        runs.push(run_ticks(graph, arena, fib, frames).saturating_sub(tsc.bracket));
        for ((v, b), &id) in per_node.iter_mut().zip(&before).zip(&ids) {
            v.push(graph.stats.nodes[id as usize].clocks.wrapping_sub(*b));
        }
    }
    let nodes = ids
        .iter()
        .map(|&id| (id, graph.stats.nodes[id as usize]))
        .filter(|(_, s)| s.vectors > 0)
        .map(|(id, s)| (id.name(), s.clocks as f64 / s.vectors as f64))
        .collect();
    let nodes_median = ids
        .iter()
        .zip(&mut per_node)
        .filter(|(&id, _)| graph.stats.nodes[id as usize].vectors > 0)
        .map(|(&id, v)| {
            v.sort_unstable();
            let per_run = graph.stats.nodes[id as usize].vectors as f64 / CYCLE_RUNS as f64;
            (id.name(), v[v.len() / 2] as f64 / per_run)
        })
        .collect();
    let total: u64 = runs.iter().sum();
    runs.sort_unstable();
    let median = runs[runs.len() / 2];

    // The restore alone, for reference.
    let c0 = clocks();
    for _ in 0..CYCLE_RUNS {
        arena.load(graph, frames);
        black_box(arena.mem());
        black_box(&graph.meta);
    }
    let load = clocks().wrapping_sub(c0);

    let packets = CYCLE_RUNS as f64 * n;
    Cycles {
        group,
        vector: frames.len(),
        cycles_per_packet: total as f64 / packets,
        median_cycles_per_packet: median as f64 / n,
        ns_per_packet: total as f64 / tsc.per_ns / packets,
        load_cycles_per_packet: load as f64 / packets,
        nodes,
        nodes_median,
    }
}

/// Whether cargo bench (not cargo test) runs us: only then count cycles.
fn bench_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test" || a == "--list")
}

fn paths(c: &mut Criterion, tsc: Tsc, cycles: &mut Vec<Cycles>) {
    let fib = lab_fib();
    for path in Path::ALL {
        let mut group = c.benchmark_group(path.name());
        for n in VECTORS {
            let frames = vector(path, n, FRAME_LEN);
            let refs = as_refs(&frames);
            let mut graph = unlimited_graph();
            open_sessions(&mut graph, &fib, &frames);
            let mut arena = FrameArena::new(n);

            // Measure the path the group is named after.
            arena.run(&mut graph, &fib, &refs, 0);
            let tx = [graph.out.tx[0].len(), graph.out.tx[1].len()];
            assert_eq!(tx, path.expected_tx(n), "{} v{n}", path.name());

            bench_vector(
                &mut group,
                path.name(),
                tsc,
                cycles,
                (&mut graph, &mut arena, &fib, &refs),
            );
        }
        group.finish();
    }
}

/// Decapsulation of what a Linux ip6tnl AFTR sends: the Decap path's
/// frames with a Destination Options header (RFC 2473's encapsulation
/// limit and a PadN) between the IPv6 header and the IPv4 inside, which
/// ip6-input checks and removes (issue 15 m5).
fn encap_limit(c: &mut Criterion, tsc: Tsc, cycles: &mut Vec<Cycles>) {
    const GROUP: &str = "dslite-decap-encap-limit";
    let fib = lab_fib();
    let mut group = c.benchmark_group(GROUP);
    for n in VECTORS {
        let plain = vector(Path::Decap, n, FRAME_LEN);
        let frames: Vec<(Port, Vec<u8>)> = plain
            .iter()
            .map(|(port, f)| {
                let mut g = f[..14 + 40].to_vec();
                let plen = u16::from_be_bytes([g[18], g[19]]) + 8;
                g[18..20].copy_from_slice(&plen.to_be_bytes());
                g[20] = 60;
                g.extend_from_slice(&[4, 0, 4, 1, 4, 1, 1, 0]);
                g.extend_from_slice(&f[14 + 40..]);
                (*port, g)
            })
            .collect();
        let refs = as_refs(&frames);
        let mut graph = unlimited_graph();
        open_sessions(&mut graph, &fib, &plain);
        let mut arena = FrameArena::new(n);
        arena.run(&mut graph, &fib, &refs, 0);
        let tx = [graph.out.tx[0].len(), graph.out.tx[1].len()];
        assert_eq!(tx, Path::Decap.expected_tx(n), "{GROUP} v{n}");

        bench_vector(
            &mut group,
            GROUP,
            tsc,
            cycles,
            (&mut graph, &mut arena, &fib, &refs),
        );
    }
    group.finish();
}

/// MAP-E with NAPT44 (issue 18): the `dslite-encap` path's LAN frames
/// (one host, a socket per flow) through nat44-out onto an OCN-sized port
/// set (1008 ports, offset 6) and into the tunnel (`nat44-map-e-encap`),
/// and the server's replies to the ports they got back through nat44-in
/// (`nat44-map-e-decap`). A first run made the sessions and mappings, so
/// what is timed is the per-packet path: the session lookup that yields
/// the translation, and the rewrite.
fn napt(c: &mut Criterion, tsc: Tsc, cycles: &mut Vec<Cycles>) {
    const ENCAP: &str = "nat44-map-e-encap";
    const DECAP: &str = "nat44-map-e-decap";
    let shared = Ipv4Addr::new(203, 0, 113, 77);
    let pool = PortPool::from_set(PortSet::new(6, 6, 0x15));
    for (group_name, outbound) in [(ENCAP, true), (DECAP, false)] {
        let mut group = c.benchmark_group(group_name);
        for n in VECTORS {
            let bindings = Arc::new(Bindings::new(shared, pool, Limits::default()));
            let fib = Fib {
                napt: Some(bindings.clone()),
                ..lab_fib()
            };
            let mut graph = unlimited_graph();
            graph.fw.sessions.set_nat_release(bindings);
            let lan = vector(Path::Encap, n, FRAME_LEN);
            let mut arena = FrameArena::new(n);
            arena.run(&mut graph, &fib, &as_refs(&lan), 0);
            assert_eq!(graph.out.tx[0].len(), n, "{group_name} v{n}: opening run");
            let frames = if outbound {
                lan
            } else {
                graph.out.tx[0]
                    .as_slice()
                    .iter()
                    .map(|&i| (Port::Wan, reply_from_br(arena.packet(&graph, i))))
                    .collect()
            };
            let refs = as_refs(&frames);
            arena.run(&mut graph, &fib, &refs, 0);
            let tx = [graph.out.tx[0].len(), graph.out.tx[1].len()];
            let want = if outbound { [n, 0] } else { [0, n] };
            assert_eq!(tx, want, "{group_name} v{n}");
            bench_vector(
                &mut group,
                group_name,
                tsc,
                cycles,
                (&mut graph, &mut arena, &fib, &refs),
            );
        }
        group.finish();
    }
}

/// The server's UDP reply to a packet the CE sent the BR (`sent`: the
/// whole frame), in IPv6 from the BR to the CE.
fn reply_from_br(sent: &[u8]) -> Vec<u8> {
    let inner = &sent[14 + 40..];
    let (src, dst) = (&inner[12..16], &inner[16..20]);
    let (sport, dport) = (
        u16::from_be_bytes([inner[20], inner[21]]),
        u16::from_be_bytes([inner[22], inner[23]]),
    );
    let mut ip4 = Vec::new();
    PacketBuilder::ipv4(
        <[u8; 4]>::try_from(dst).unwrap(),
        <[u8; 4]>::try_from(src).unwrap(),
        50,
    )
    .udp(dport, sport)
    .write(&mut ip4, &[0x5a; 18])
    .unwrap();
    let mut v = Vec::new();
    v.extend_from_slice(&sent[6..12]);
    v.extend_from_slice(&sent[0..6]);
    v.extend_from_slice(&0x86ddu16.to_be_bytes());
    Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: ip4.len() as u16,
        next_header: IpNumber::IPV4,
        hop_limit: 60,
        source: sent[14 + 24..14 + 40].try_into().unwrap(),
        destination: sent[14 + 8..14 + 24].try_into().unwrap(),
    }
    .write(&mut v)
    .unwrap();
    v.extend_from_slice(&ip4);
    v
}

/// What one vector runs on: the graph, its frames' UMEM, the tables and the frames.
type Bed<'a> = (
    &'a mut Graph,
    &'a mut FrameArena,
    &'a Fib,
    &'a [(Port, &'a [u8])],
);

/// One vector through the graph as a criterion benchmark (`v{n}` in
/// `group`), and, when benching, its clocks per packet for the summary.
fn bench_vector(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &'static str,
    tsc: Tsc,
    cycles: &mut Vec<Cycles>,
    (graph, arena, fib, refs): Bed<'_>,
) {
    let mut ran = false;
    group.throughput(Throughput::Elements(refs.len() as u64));
    group.bench_function(
        BenchmarkId::from_parameter(format!("v{}", refs.len())),
        |b| {
            ran = true;
            b.iter_custom(|iters| {
                let mut ticks = 0u64;
                for _ in 0..iters {
                    ticks += run_ticks(graph, arena, fib, refs);
                }
                tsc.duration(ticks.saturating_sub(iters * tsc.bracket))
            })
        },
    );
    if ran && bench_mode() {
        cycles.push(measure_cycles(name, tsc, graph, arena, fib, refs));
    }
}

/// Pseudo-random, reproducible.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The i-th LAN host: IPv4 in 10.0.0.0/8, IPv6 in the lab's /64 with a
/// random-looking interface identifier (as SLAAC privacy addresses are).
fn host4(i: u64) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + i as u32)
}

fn host6(i: u64) -> Ipv6Addr {
    Ipv6Addr::from((0x2001_0db8_0000_0111u128 << 64) | u128::from(splitmix(i)))
}

fn mac(i: u64) -> [u8; 6] {
    let b = i.to_be_bytes();
    [0x02, 0, b[4], b[5], b[6], b[7]]
}

fn neighbors(c: &mut Criterion) {
    let mut group = c.benchmark_group("neighbor-lookup");
    group.throughput(Throughput::Elements(LOOKUPS as u64));
    for (entries, label) in [(1_000u64, "1k"), (1_000_000, "1M")] {
        let mut fib = Fib::default();
        for i in 0..entries {
            fib.arp.insert(host4(i), mac(i));
            fib.nd_lan.insert(host6(i), mac(i));
        }
        // Hits in random order over the whole table, so a big table costs
        // the cache misses it would in a router; misses are absent hosts.
        let pick = |k: u64| splitmix(k ^ 0x5eed) % entries;
        let hit4: Vec<Ipv4Addr> = (0..LOOKUPS as u64).map(|k| host4(pick(k))).collect();
        let miss4: Vec<Ipv4Addr> = (0..LOOKUPS as u64).map(|k| host4(entries + k)).collect();
        let hit6: Vec<Ipv6Addr> = (0..LOOKUPS as u64).map(|k| host6(pick(k))).collect();
        let miss6: Vec<Ipv6Addr> = (0..LOOKUPS as u64).map(|k| host6(entries + k)).collect();
        assert!(hit4.iter().all(|a| fib.arp.contains_key(a)));
        assert!(hit6.iter().all(|a| fib.nd_lan.contains_key(a)));
        assert!(!miss4.iter().any(|a| fib.arp.contains_key(a)));
        assert!(!miss6.iter().any(|a| fib.nd_lan.contains_key(a)));

        group.bench_function(BenchmarkId::new("arp-hit", label), |b| {
            b.iter(|| count(&hit4, |a| fib.arp.get(a).copied()))
        });
        group.bench_function(BenchmarkId::new("arp-miss", label), |b| {
            b.iter(|| count(&miss4, |a| fib.arp.get(a).copied()))
        });
        group.bench_function(BenchmarkId::new("nd-hit", label), |b| {
            b.iter(|| count(&hit6, |a| fib.nd_lan.get(a).copied()))
        });
        group.bench_function(BenchmarkId::new("nd-miss", label), |b| {
            b.iter(|| count(&miss6, |a| fib.nd_lan.get(a).copied()))
        });
    }
    group.finish();
}

fn session_key(i: u64) -> Key {
    let mut int_addr = [0u8; 16];
    int_addr[10] = 0xff;
    int_addr[11] = 0xff;
    int_addr[12..].copy_from_slice(&host4(i % 250).octets());
    let mut ext_addr = int_addr;
    ext_addr[12..].copy_from_slice(&[198, 51, 100, 10]);
    Key {
        int_addr,
        ext_addr,
        int_port: 1024 + (i % 64_000) as u16,
        ext_port: 9000 + (i / 64_000) as u16,
        proto: 17,
    }
}

fn sessions(c: &mut Criterion) {
    let mut group = c.benchmark_group("session-lookup");
    group.throughput(Throughput::Elements(LOOKUPS as u64));
    for (entries, label) in [(1_000u64, "1k"), (1_000_000, "1M")] {
        let table = SessionTable::new(entries as usize, Timeouts::default());
        for i in 0..entries {
            let t = table.track(&session_key(i), &Segment::Udp, Dir::Out, 64, 0, true);
            assert!(matches!(t, Track::Created(_)));
        }
        let pick = |k: u64| splitmix(k ^ 0x5e55) % entries;
        let hits: Vec<Key> = (0..LOOKUPS as u64).map(|k| session_key(pick(k))).collect();
        let misses: Vec<Key> = (0..LOOKUPS as u64)
            .map(|k| session_key(entries + k))
            .collect();
        group.bench_function(BenchmarkId::new("track-hit", label), |b| {
            b.iter(|| {
                hits.iter()
                    .filter(|k| {
                        let t = table.track(black_box(k), &Segment::Udp, Dir::In, 64, 1, false);
                        matches!(black_box(t), Track::Existing(_))
                    })
                    .count()
            })
        });
        group.bench_function(BenchmarkId::new("lookup-miss", label), |b| {
            b.iter(|| {
                misses
                    .iter()
                    .filter(|k| table.lookup(black_box(k), 1).is_some())
                    .count()
            })
        });
        // TCP: an ACK of an established connection, through the sequence
        // and RST bookkeeping (the common TCP packet).
        // Room to spare (twice the sessions: at 3/2 the fullest of 32 shards
        // sometimes filled up): a shard full of established sessions refuses.
        let tcp = SessionTable::new(entries as usize * 2, Timeouts::default());
        let tcp_key = |i: u64| Key {
            proto: 6,
            ..session_key(i)
        };
        let seg = |flags: u8, seq: u32, ack: u32| Segment::Tcp {
            flags,
            seq,
            ack,
            payload_len: 0,
            window: 1000,
            wscale: Some(7),
        };
        for i in 0..entries {
            let k = tcp_key(i);
            tcp.track(&k, &seg(0x02, 100, 0), Dir::Out, 64, 0, true);
            tcp.track(&k, &seg(0x12, 5000, 101), Dir::In, 64, 0, false);
            let t = tcp.track(&k, &seg(0x10, 101, 5001), Dir::Out, 64, 0, false);
            assert_eq!(t, Track::Existing(State::TcpEstablished));
        }
        let tcp_hits: Vec<Key> = (0..LOOKUPS as u64).map(|k| tcp_key(pick(k))).collect();
        let ack = seg(0x10, 5001, 101);
        group.bench_function(BenchmarkId::new("track-tcp-ack", label), |b| {
            b.iter(|| {
                tcp_hits
                    .iter()
                    .filter(|k| {
                        let t = tcp.track(black_box(k), &ack, Dir::In, 64, 1, false);
                        matches!(black_box(t), Track::Existing(_))
                    })
                    .count()
            })
        });
    }
    group.finish();

    // A SYN as Linux sends it: MSS 1460, SACK permitted, timestamps, window scale.
    let mut syn = vec![0u8; 40];
    syn[12] = 10 << 4;
    syn[13] = 0x02;
    syn[20..40].copy_from_slice(&[
        2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ]);
    let mut group = c.benchmark_group("mss-clamp");
    group.throughput(Throughput::Elements(1));
    group.bench_function("syn-1460-to-1420", |b| {
        b.iter(|| {
            let mut t = [0u8; 40];
            t.copy_from_slice(&syn);
            let v = tcp_view(black_box(&t)).expect("a valid SYN");
            black_box(clamp_mss(&mut t, &v, 1420))
        })
    });
    group.finish();
}

/// Ordinary TCP frames of `n` flows, `size` bytes, over IPv4 or IPv6.
fn tcp_frames(v6: bool, n: u32, size: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|k| {
            let b = etherparse::PacketBuilder::ethernet2(HOST_MAC, LAN_MAC);
            let b = if v6 {
                b.ipv6(HOST6.octets(), SERVER6.octets(), 64)
            } else {
                b.ipv4(HOST4.octets(), SERVER4.octets(), 64)
            };
            let hdr = if v6 { 14 + 40 + 20 } else { 14 + 20 + 20 };
            let payload: Vec<u8> = (0..size.saturating_sub(hdr))
                .map(|i| (i as u32 ^ k) as u8)
                .collect();
            let mut v = Vec::new();
            b.tcp(1024 + k as u16, 443, k.wrapping_mul(7919), 64240)
                .ack(k)
                .write(&mut v, &payload)
                .expect("write to a Vec");
            v
        })
        .collect()
}

/// Runs the input nodes' completion over every frame: how many matched.
fn complete_all(frames: &mut [Vec<u8>], v6: bool) -> usize {
    let mut n = 0;
    for f in frames.iter_mut() {
        let ip = black_box(&mut f[14..]);
        let done = if v6 {
            complete_ipv6(ip)
        } else {
            complete_ipv4(ip, 20)
        };
        n += usize::from(done);
    }
    n
}

fn checksums(c: &mut Criterion) {
    const FLOWS: u32 = 256;
    let mut group = c.benchmark_group("csum-partial");
    group.throughput(Throughput::Elements(u64::from(FLOWS)));
    let ordinary: [(&str, bool, Vec<Vec<u8>>); 4] = [
        (
            "compare-ipv4-udp-ordinary",
            false,
            (0..FLOWS).map(|k| lan_udp4(k, 64)).collect(),
        ),
        (
            "compare-ipv6-udp-ordinary",
            true,
            (0..FLOWS).map(|k| lan_udp6(k, 64)).collect(),
        ),
        (
            "compare-ipv4-tcp-ordinary",
            false,
            tcp_frames(false, FLOWS, 64),
        ),
        (
            "compare-ipv6-tcp-ordinary",
            true,
            tcp_frames(true, FLOWS, 1514),
        ),
    ];
    for (name, v6, mut frames) in ordinary {
        assert_eq!(
            complete_all(&mut frames, v6),
            0,
            "{name}: no ordinary frame matches"
        );
        group.bench_function(name, |b| b.iter(|| complete_all(&mut frames, v6)));
    }
    for (name, v6, size) in [
        ("complete-ipv4-tcp-64", false, 64),
        ("complete-ipv6-tcp-64", true, 64),
        ("complete-ipv4-tcp-1514", false, 1514),
        ("complete-ipv6-tcp-1514", true, 1514),
    ] {
        let mut frames = tcp_frames(v6, FLOWS, size);
        for f in &mut frames {
            assert!(make_partial(f));
        }
        let field = if v6 { 14 + 40 + 16 } else { 14 + 20 + 16 };
        let partial: Vec<[u8; 2]> = frames.iter().map(|f| [f[field], f[field + 1]]).collect();
        group.bench_function(name, |b| {
            b.iter(|| {
                // Back to partial (two bytes a frame), then complete.
                for (f, p) in frames.iter_mut().zip(&partial) {
                    f[field..field + 2].copy_from_slice(p);
                }
                let n = complete_all(&mut frames, v6);
                assert_eq!(n, FLOWS as usize);
                n
            })
        });
    }
    group.finish();
}

/// Look every key up as the nodes do (`get(..).copied()` for the MAC).
fn count<K>(keys: &[K], lookup: impl Fn(&K) -> Option<[u8; 6]>) -> usize {
    keys.iter()
        .filter_map(|k| black_box(lookup(black_box(k))))
        .count()
}

/// The workspace's target directory (where criterion writes too).
fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    // <target>/<profile>/deps/nodes-<hash>; cargo marks <target> with CACHEDIR.TAG.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(d) = exe.ancestors().find(|d| d.join("CACHEDIR.TAG").is_file()) {
            return d.to_path_buf();
        }
    }
    PathBuf::from("target")
}

fn report(tsc: Tsc, cycles: &[Cycles]) {
    if cycles.is_empty() {
        return;
    }
    eprintln!(
        "\nTSC ticks per packet ({CYCLE_RUNS} runs each, frame reload not timed, TSC {:.2} GHz, \
         bracket {} ticks subtracted):",
        tsc.per_ns, tsc.bracket
    );
    let mut json = format!(
        "{{\"tsc_ghz\": {:.3}, \"runs\": {CYCLE_RUNS}, \"bracket_ticks\": {}, \"results\": [",
        tsc.per_ns, tsc.bracket
    );
    for (k, c) in cycles.iter().enumerate() {
        eprintln!(
            "cycles/packet {} v{}: {:.1}  (median {:.1}; {:.1} ns/packet; reload {:.1} cycles/packet, not counted)",
            c.group,
            c.vector,
            c.cycles_per_packet,
            c.median_cycles_per_packet,
            c.ns_per_packet,
            c.load_cycles_per_packet
        );
        let fmt = |list: &[(&str, f64)]| {
            list.iter()
                .map(|(name, v)| format!("\"{name}\": {v:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (nodes, nodes_median) = (fmt(&c.nodes), fmt(&c.nodes_median));
        eprintln!("  node median clocks/packet: {nodes_median}");
        let _ = write!(
            json,
            "{}\n  {{\"group\": \"{}\", \"vector\": {}, \"cycles_per_packet\": {:.1}, \
             \"median_cycles_per_packet\": {:.1}, \"ns_per_packet\": {:.2}, \
             \"load_cycles_per_packet\": {:.1}, \"nodes\": {{{}}}, \"nodes_median\": {{{}}}}}",
            if k == 0 { "" } else { "," },
            c.group,
            c.vector,
            c.cycles_per_packet,
            c.median_cycles_per_packet,
            c.ns_per_packet,
            c.load_cycles_per_packet,
            nodes,
            nodes_median
        );
    }
    json.push_str("\n]}\n");
    let path = target_dir().join("criterion-cycles.json");
    match std::fs::write(&path, json) {
        Ok(()) => eprintln!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}

/// Packets per vector in `session-sweep` (a busy worker's vector).
const SWEEP_VECTOR: usize = 256;

/// Every key of the table, in a random order, laid out in that order so
/// reading them is sequential (as headers are) and only the table's own
/// memory is random.
fn sweep_keys(entries: u64) -> Vec<Key> {
    let mut order: Vec<u64> = (0..entries).collect();
    for i in (1..order.len()).rev() {
        let j = (splitmix(i as u64 ^ 0x5eed) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let mut keys: Vec<Key> = order.into_iter().map(session_key).collect();
    // Whole vectors only: the pass wraps onto its first keys.
    let pad = (SWEEP_VECTOR - keys.len() % SWEEP_VECTOR) % SWEEP_VECTOR;
    keys.extend_from_within(..pad.min(keys.len()));
    keys
}

/// How a `session-sweep` run does one vector; the number of hits.
type SweepRun = fn(&SessionTable, &[Key]) -> usize;

/// One vector through `track_batch` as the firewall nodes call it: in
/// chunks of `CHUNK`, the requests built from the keys inside the timing,
/// as a node builds them from headers.
fn sweep_batch(table: &SessionTable, keys: &[Key]) -> usize {
    let mut reqs = [Request::EMPTY; CHUNK];
    let mut out = [Track::NotFound; CHUNK];
    let mut hits = 0;
    for chunk in keys.chunks(CHUNK) {
        let n = chunk.len();
        for (r, k) in reqs.iter_mut().zip(chunk) {
            *r = Request {
                key: *black_box(k),
                seg: Segment::Udp,
                dir: Dir::In,
                bytes: 64,
                create: false,
            };
        }
        table.track_batch(&reqs[..n], 1, &mut out[..n]);
        hits += black_box(&out[..n])
            .iter()
            .filter(|t| matches!(t, Track::Existing(_)))
            .count();
    }
    hits
}

/// One vector of lookups+updates, packet by packet through `track`.
fn sweep_serial(table: &SessionTable, keys: &[Key]) -> usize {
    keys.iter()
        .filter(|k| {
            let t = table.track(black_box(k), &Segment::Udp, Dir::In, 64, 1, false);
            matches!(black_box(t), Track::Existing(_))
        })
        .count()
}

/// `session-sweep`: lookup+update of existing UDP sessions in vectors of
/// 256, every key of the table touched once per pass in a random order
/// (not a cached subset), at 1k and 1M sessions; and at 1k with 1 MB or
/// 4 MB of other memory written between vectors (outside the timing), as
/// the copy-mode I/O does to the cache between a worker's vectors.
fn session_sweep(c: &mut Criterion) {
    let mut group = c.benchmark_group("session-sweep");
    group.throughput(Throughput::Elements(SWEEP_VECTOR as u64));
    // `batch` is what one worker's firewall nodes do on its table (locked
    // per chunk); `batch-shard` and `serial` lock a shard per packet, as
    // the table of a dataplane with several workers does.
    let runs: [(&str, SweepRun, bool); 3] = [
        ("serial", sweep_serial, false),
        ("batch-shard", sweep_batch, false),
        ("batch", sweep_batch, true),
    ];
    for (entries, pollute, label) in [
        (1_000u64, 0usize, "1k"),
        (10_000, 0, "10k"),
        (1_000_000, 0, "1M"),
        (1_000, 1 << 20, "1k-pollute-1MB"),
        (1_000, 4 << 20, "1k-pollute-4MB"),
    ] {
        // Room to spare, so that no shard evicts any of the `entries`.
        let filled = |workers| {
            let table =
                SessionTable::for_workers(entries as usize * 2, Timeouts::default(), workers);
            for i in 0..entries {
                let t = table.track(&session_key(i), &Segment::Udp, Dir::Out, 64, 0, true);
                assert!(matches!(t, Track::Created(_)));
            }
            table
        };
        let (per_shard, per_chunk) = (filled(2), filled(1));
        let keys = sweep_keys(entries);
        let mut dirt = vec![0u8; pollute];
        for (name, run, chunk) in runs {
            let table = if chunk { &per_chunk } else { &per_shard };
            let mut at = 0;
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        if at + SWEEP_VECTOR > keys.len() {
                            at = 0;
                        }
                        let v = &keys[at..at + SWEEP_VECTOR];
                        at += SWEEP_VECTOR;
                        for line in dirt.chunks_mut(64) {
                            line[0] = line[0].wrapping_add(1);
                        }
                        black_box(&dirt);
                        let t = Instant::now();
                        let hit = run(table, v);
                        spent += t.elapsed();
                        assert_eq!(hit, v.len());
                    }
                    spent
                })
            });
        }
    }
    group.finish();
}

/// `session-workers`: 1 and 2 threads sweeping one shared 1M table at
/// once through `track_batch` (each its own half of the keys, as two
/// workers with their own flows): what the shard locks and shared lines
/// cost when workers run side by side. One iteration = one vector per
/// thread, timed from a common start to the last thread's end; on a
/// machine with free cores, two threads scale if the time stays flat.
fn session_workers(c: &mut Criterion) {
    let mut group = c.benchmark_group("session-workers");
    let entries = 1_000_000u64;
    let table = SessionTable::new(entries as usize * 2, Timeouts::default());
    for i in 0..entries {
        table.track(&session_key(i), &Segment::Udp, Dir::Out, 64, 0, true);
    }
    let keys = sweep_keys(entries);
    for workers in [1usize, 2] {
        group.throughput(Throughput::Elements((SWEEP_VECTOR * workers) as u64));
        let label = format!("{workers}-threads-1M");
        group.bench_function(BenchmarkId::new("batch", label), |b| {
            b.iter_custom(|iters| {
                let start = std::sync::Barrier::new(workers + 1);
                std::thread::scope(|s| {
                    for w in 0..workers {
                        let (table, keys, start) = (&table, &keys, &start);
                        s.spawn(move || {
                            let part = keys.len() / workers / SWEEP_VECTOR * SWEEP_VECTOR;
                            let mine = &keys[w * part..(w + 1) * part];
                            start.wait();
                            let mut at = 0;
                            for _ in 0..iters {
                                if at + SWEEP_VECTOR > mine.len() {
                                    at = 0;
                                }
                                black_box(sweep_batch(table, &mine[at..at + SWEEP_VECTOR]));
                                at += SWEEP_VECTOR;
                            }
                        });
                    }
                    start.wait();
                    let t = Instant::now();
                    // The scope joins the threads before it returns.
                    t
                })
                .elapsed()
            })
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let tsc = Tsc::calibrate();
    let mut cycles = Vec::new();
    paths(&mut c, tsc, &mut cycles);
    encap_limit(&mut c, tsc, &mut cycles);
    napt(&mut c, tsc, &mut cycles);
    neighbors(&mut c);
    sessions(&mut c);
    session_sweep(&mut c);
    session_workers(&mut c);
    checksums(&mut c);
    c.final_summary();
    report(tsc, &cycles);
}
