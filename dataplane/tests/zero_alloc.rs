//! The fast path never touches the heap: after one warm-up run, 10,000
//! vectors of every path (DS-Lite encap and decap, IPv6 both ways, TTL and
//! MTU ICMP errors, rate-limited errors, local and neighbor-miss punts,
//! malformed frames) go through `Graph::run` with a counting global
//! allocator armed, and it must count nothing. Reloading the frames
//! (`FrameArena::load`) is inside the armed region too.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use ipoe_dataplane::graph::{Graph, NodeId};
use ipoe_dataplane::tables::{Fib, Port};
use ipoe_dataplane::testkit::{
    aftr_ipip6, as_refs, lab_fib, lab_fib_unresolved, lan_udp4, lan_udp6, open_sessions,
    set_hop_limit, set_ipv4_ttl, unlimited_graph, vector, wan_udp6, FrameArena, Path, HOST_MAC,
};
use ipoe_dataplane::MAX_BATCH;

/// System's allocator, counting while the calling thread is armed.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static DEALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Thread-local so the test harness's other threads don't count.
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

fn armed() -> bool {
    ARMED.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every call goes straight to System; counting has no effect on it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if armed() {
            ALLOCS.fetch_add(1, Relaxed);
        }
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if armed() {
            ALLOCS.fetch_add(1, Relaxed);
        }
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if armed() {
            REALLOCS.fetch_add(1, Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if armed() {
            DEALLOCS.fetch_add(1, Relaxed);
        }
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    allocs: u64,
    reallocs: u64,
    deallocs: u64,
}

/// One measurement at a time (the counters are global; the tests of this
/// file run on parallel threads).
static SERIAL: Mutex<()> = Mutex::new(());

/// Heap calls `f` makes on this thread.
fn count_allocs<R>(f: impl FnOnce() -> R) -> (R, Counts) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ALLOCS.store(0, Relaxed);
    REALLOCS.store(0, Relaxed);
    DEALLOCS.store(0, Relaxed);
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    let c = Counts {
        allocs: ALLOCS.load(Relaxed),
        reallocs: REALLOCS.load(Relaxed),
        deallocs: DEALLOCS.load(Relaxed),
    };
    (r, c)
}

const VECTORS: u64 = 10_000;
const VECTOR_LEN: usize = 64;
/// Vector length of the cases that checksum 500 to 1,300 bytes per packet,
/// which an unoptimized test build does slowly.
const SHORT: usize = 8;

/// A vector of traffic, the tables to run it against, and where its
/// packets must end up: (tx WAN, tx LAN, punt, drop) after one run.
struct Case {
    name: &'static str,
    fib: Fib,
    frames: Vec<Vec<(Port, Vec<u8>)>>,
    outcome: Option<[usize; 4]>,
    /// Run with the normal ICMP rate limit (most errors are rate-limited).
    rate_limited: bool,
}

fn case(name: &'static str, fib: Fib, frames: Vec<(Port, Vec<u8>)>, outcome: [usize; 4]) -> Case {
    Case {
        name,
        fib,
        frames: vec![frames],
        outcome: Some(outcome),
        rate_limited: false,
    }
}

fn each(n: usize, f: impl Fn(u32) -> (Port, Vec<u8>)) -> Vec<(Port, Vec<u8>)> {
    (0..n as u32).map(f).collect()
}

/// Hostile frames: valid frames of every kind with random bytes changed and
/// random lengths, deterministic.
fn malformed(vectors: usize) -> Vec<Vec<(Port, Vec<u8>)>> {
    let mut prng = ipoe_dataplane::testkit::XorShift::new(0x2545_f491_4f6c_dd1d);
    let mut rnd = move || prng.next().unwrap_or(0);
    let templates = [
        lan_udp4(1, 64),
        aftr_ipip6(2, 104),
        lan_udp6(3, 64),
        wan_udp6(4, 64),
        arp(),
    ];
    (0..vectors)
        .map(|v| {
            (0..VECTOR_LEN)
                .map(|k| {
                    let mut f = templates[(v + k) % templates.len()].clone();
                    for _ in 0..rnd() % 6 {
                        let pos = (rnd() as usize) % f.len();
                        f[pos] = rnd() as u8;
                    }
                    f.truncate(1 + (rnd() as usize) % (f.len() + 8));
                    let port = if rnd() & 1 == 0 { Port::Lan } else { Port::Wan };
                    (port, f)
                })
                .collect()
        })
        .collect()
}

/// Frames for the router itself: ARP, NDP (link-scope multicast), IPv4 to
/// its LAN address, IPv6 to its LAN address.
fn local(k: usize) -> (Port, Vec<u8>) {
    match k % 4 {
        0 => (Port::Lan, arp()),
        1 => {
            let mut f = wan_udp6(k as u32, 64);
            f[14 + 24..14 + 40].copy_from_slice(&"ff02::1".parse::<Ipv6Addr>().unwrap().octets());
            f[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
            // A DHCPv6 reply: the router's input policy admits it from the WAN.
            f[14 + 42..14 + 44].copy_from_slice(&546u16.to_be_bytes());
            (Port::Wan, f)
        }
        2 => {
            let mut f = lan_udp4(k as u32, 64);
            f[14 + 16..14 + 20].copy_from_slice(&[192, 168, 2, 1]);
            set_ipv4_ttl(&mut f, 64);
            (Port::Lan, f)
        }
        _ => {
            let mut f = lan_udp6(k as u32, 64);
            let router: Ipv6Addr = "2001:db8:0:111::1".parse().unwrap();
            f[14 + 24..14 + 40].copy_from_slice(&router.octets());
            (Port::Lan, f)
        }
    }
}

fn arp() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&HOST_MAC);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0u8; 28]);
    f
}

fn cases() -> Vec<Case> {
    let n = VECTOR_LEN;
    let fib = lab_fib;
    let mut big4 = lan_udp4(0, 1514);
    big4[14 + 6] |= 0x40; // DF
    set_ipv4_ttl(&mut big4, 64); // same TTL, but recomputes the checksum for DF
    vec![
        case(
            "dslite-encap",
            fib(),
            vector(Path::Encap, n, 64),
            [n, 0, 0, 0],
        ),
        case(
            "dslite-decap",
            fib(),
            vector(Path::Decap, n, 64),
            [0, n, 0, 0],
        ),
        case(
            "ip6-forward both ways",
            fib(),
            vector(Path::Ip6Forward, n, 64),
            [n / 2, n / 2, 0, 0],
        ),
        case(
            "mixed, 256 frames of 1400 bytes",
            fib(),
            vector(Path::Mixed, MAX_BATCH, 1400),
            [MAX_BATCH / 2, MAX_BATCH / 2, 0, 0],
        ),
        case(
            "ip4 TTL expired -> time exceeded to the LAN",
            fib(),
            vector(Path::Ip4TtlExpired, n, 64),
            [0, n, 0, 0],
        ),
        case(
            "decap inner TTL expired -> time exceeded back through the tunnel",
            fib(),
            each(n, |k| {
                let mut f = aftr_ipip6(k, 104);
                set_ipv4_ttl(&mut f, 1);
                (Port::Wan, f)
            }),
            [n, 0, 0, 0],
        ),
        case(
            "ip6 hop limit expired -> ICMPv6 time exceeded",
            fib(),
            each(n, |k| {
                let (p, mut f) = if k & 1 == 0 {
                    (Port::Lan, lan_udp6(k, 64))
                } else {
                    (Port::Wan, wan_udp6(k, 64))
                };
                set_hop_limit(&mut f, 1);
                (p, f)
            }),
            [n / 2, n / 2, 0, 0],
        ),
        case(
            "too big for the tunnel (DF) -> fragmentation needed",
            fib(),
            each(SHORT, |_| (Port::Lan, big4.clone())),
            [0, SHORT, 0, 0],
        ),
        case(
            "too big for the LAN -> packet too big",
            Fib {
                lan: ipoe_dataplane::tables::PortAddrs {
                    mtu: 1280,
                    ..fib().lan
                },
                ..fib()
            },
            each(SHORT, |k| (Port::Wan, wan_udp6(k, 1514))),
            [SHORT, 0, 0, 0],
        ),
        case(
            "ARP, NDP and packets for the router -> local punt",
            fib(),
            each(n, |k| local(k as usize)),
            [0, 0, n, 0],
        ),
        case(
            "neighbor misses -> punt",
            lab_fib_unresolved(),
            vector(Path::Mixed, n, 64),
            [0, 0, n, 0],
        ),
        Case {
            name: "ICMP errors past the rate limit",
            fib: fib(),
            frames: vec![vector(Path::Ip4TtlExpired, n, 64)],
            outcome: None,
            rate_limited: true,
        },
        Case {
            name: "malformed frames",
            fib: fib(),
            frames: malformed(16),
            outcome: None,
            rate_limited: false,
        },
    ]
}

fn outcome(g: &Graph) -> [usize; 4] {
    let o = &g.out;
    [o.tx[0].len(), o.tx[1].len(), o.punt.len(), o.drop.len()]
}

#[test]
fn every_path_runs_without_touching_the_heap() {
    let cases = cases();
    for c in &cases {
        let t = std::time::Instant::now();
        let vectors: Vec<Vec<(Port, &[u8])>> = c.frames.iter().map(|v| as_refs(v)).collect();
        let mut graph = if c.rate_limited {
            Graph::new()
        } else {
            unlimited_graph()
        };
        // Replies from the WAN need their sessions, as in real life.
        for v in &c.frames {
            open_sessions(&mut graph, &c.fib, v);
        }
        let mut arena = FrameArena::new(MAX_BATCH);

        // Warm-up, and proof that the case exercises what it says.
        arena.run(&mut graph, &c.fib, &vectors[0], 0);
        if let Some(want) = c.outcome {
            assert_eq!(outcome(&graph), want, "{}", c.name);
        }
        let packets_before: u64 = graph.stats.nodes[NodeId::EthernetInput as usize].vectors;

        let ((), counts) = count_allocs(|| {
            for k in 0..VECTORS {
                let v = &vectors[k as usize % vectors.len()];
                // Time moves 1 µs per vector: the rate limiter refills.
                arena.run(&mut graph, &c.fib, v, k * 1_000);
            }
        });
        assert_eq!(counts, Counts::default(), "{} touched the heap", c.name);

        let per_run: u64 =
            vectors.iter().map(|v| v.len() as u64).sum::<u64>() / vectors.len() as u64;
        let packets = graph.stats.nodes[NodeId::EthernetInput as usize].vectors - packets_before;
        assert_eq!(packets, VECTORS * per_run, "{}", c.name);
        if let Some(want) = c.outcome {
            assert_eq!(outcome(&graph), want, "{} (last run)", c.name);
        }
        if c.rate_limited {
            let limited = graph.stats.nodes[NodeId::Icmp4Error as usize].errors
                [ipoe_dataplane::nodes::icmp4_error::Error::RateLimited.index()];
            assert!(limited > 0, "the rate limit never hit");
        }
        eprintln!(
            "{}: {} packets in {:?}, {:?}",
            c.name,
            VECTORS * per_run,
            t.elapsed(),
            counts
        );
    }
}

#[test]
fn the_counter_sees_allocations() {
    let (v, counts) = count_allocs(|| {
        let mut v: Vec<u64> = vec![1];
        v.push(2); // grows: a realloc
        std::hint::black_box(v)
    });
    assert_eq!(v, [1, 2]);
    assert_eq!(counts.allocs, 1, "{counts:?}");
    assert_eq!(counts.reallocs, 1, "{counts:?}");
    let ((), counts) = count_allocs(|| drop(std::hint::black_box(vec![0u8; 100])));
    assert_eq!((counts.allocs, counts.deallocs), (1, 1), "{counts:?}");
    // Not armed: not counted (under the lock, so no other test is armed).
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = ALLOCS.load(Relaxed);
    drop(std::hint::black_box(vec![0u8; 100]));
    assert_eq!(ALLOCS.load(Relaxed), before);
}
