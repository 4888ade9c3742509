//! `ipoe-bench ceiling`: the "AF_XDP ceiling", the least a forwarder between
//! two veths can do. Every frame received on `a` goes out of `b` with its
//! destination MAC set to `--b-peer-mac` and its source to `b`'s own MAC,
//! and the other way round; nothing is parsed. One thread per queue pair,
//! both sockets of a pair on one UMEM (a received frame goes straight onto
//! the other socket's TX ring), busy polling, copy mode.
//!
//! ```text
//! ipoe-bench ceiling --a IF --b IF --a-peer-mac M --b-peer-mac M [--queues N] [--core C]
//! ```
//!
//! Runs until SIGINT/SIGTERM, then detaches and prints one JSON report line.

use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use ipoe_bpf::{AttachMode, Redirector};
use ipoe_dataplane::xsk::{RingSizes, Umem, XdpDesc, XskSocket, ZeroCopyWish};
use serde::{Deserialize, Serialize};

use crate::pktgen::{self, Mac, Opts, XskStats};

const KEYS: &[&str] = &["a", "b", "a-peer-mac", "b-peer-mac", "queues", "core"];
const BATCH: usize = 64;
/// A fill ring this deep keeps a ceiling forwarder fed (harness notes).
const FILL_RING: u32 = 8192;
const RING: u32 = 2048;
/// Both fill rings full, plus every other ring of both sockets.
const UMEM_FRAMES: u32 = 2 * FILL_RING + 2 * 3 * RING;
const PORT_A: u32 = 0;
const PORT_B: u32 = 1;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CeilingQueue {
    pub queue: u32,
    pub a_to_b: u64,
    pub b_to_a: u64,
    pub xdp: Vec<XskStats>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CeilingReport {
    pub a: String,
    pub b: String,
    /// How the redirect program attached on a and b.
    pub xdp_mode: [String; 2],
    pub elapsed_s: f64,
    pub forwarded_a_to_b: u64,
    pub forwarded_b_to_a: u64,
    pub pps_a_to_b: f64,
    pub pps_b_to_a: f64,
    /// Frames the redirect program dropped for want of a socket.
    pub xdp_no_socket: u64,
    /// Sum over sockets of rx_dropped + rx_ring_full (frames lost on receive).
    pub rx_drops: u64,
    pub queues: Vec<CeilingQueue>,
}

/// Entry point of `ipoe-bench ceiling ...`.
pub fn main_ceiling(args: &[String]) -> Result<()> {
    let o = Opts::parse(args, KEYS)?;
    let a: String = o.required("a")?;
    let b: String = o.required("b")?;
    let a_peer: Mac = o.required("a-peer-mac")?;
    let b_peer: Mac = o.required("b-peer-mac")?;
    let nq: u32 = o.get("queues")?.unwrap_or(1);
    let core: Option<usize> = o.get("core")?;
    if nq == 0 || nq > ipoe_bpf::MAX_QUEUES {
        return Err(anyhow!("--queues must be 1..={}", ipoe_bpf::MAX_QUEUES));
    }
    pktgen::install_stop_handler();

    // New MACs of frames going out of b (to b's peer) and out of a.
    let mut to_b = [0u8; 12];
    to_b[..6].copy_from_slice(&b_peer.0);
    to_b[6..].copy_from_slice(&pktgen::iface_mac(&b)?.0);
    let mut to_a = [0u8; 12];
    to_a[..6].copy_from_slice(&a_peer.0);
    to_a[6..].copy_from_slice(&pktgen::iface_mac(&a)?.0);
    let (ia, ib) = (ipoe_bpf::ifindex(&a)?, ipoe_bpf::ifindex(&b)?);

    let red = Redirector::load()?;
    let att_a = red.attach(&a, PORT_A, AttachMode::Auto)?;
    let att_b = red.attach(&b, PORT_B, AttachMode::Auto)?;
    eprintln!(
        "ceiling: {a} ({}) <-> {b} ({}), {nq} queue(s); SIGINT/SIGTERM to stop",
        att_a.mode.as_str(),
        att_b.mode.as_str()
    );

    let start = Instant::now();
    let results: Vec<Result<CeilingQueue>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..nq)
            .map(|q| {
                let red = &red;
                s.spawn(move || {
                    if let Some(c) = core {
                        pktgen::pin_to_core(c + q as usize)?;
                    }
                    forward_queue(red, q, ia, ib, &to_a, &to_b)
                        .with_context(|| format!("queue {q}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("forwarder thread panicked")))
            })
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let no_socket = red.stats().no_socket;
    let modes = [
        att_a.mode.as_str().to_string(),
        att_b.mode.as_str().to_string(),
    ];
    drop(att_a);
    drop(att_b);
    drop(red);

    let mut queues = Vec::new();
    for r in results {
        queues.push(r?);
    }
    let a_to_b = queues.iter().map(|q| q.a_to_b).sum::<u64>();
    let b_to_a = queues.iter().map(|q| q.b_to_a).sum::<u64>();
    let rx_drops = queues
        .iter()
        .flat_map(|q| &q.xdp)
        .map(|x| x.rx_dropped + x.rx_ring_full)
        .sum();
    let report = CeilingReport {
        a,
        b,
        xdp_mode: modes,
        elapsed_s: elapsed,
        forwarded_a_to_b: a_to_b,
        forwarded_b_to_a: b_to_a,
        pps_a_to_b: a_to_b as f64 / elapsed.max(1e-9),
        pps_b_to_a: b_to_a as f64 / elapsed.max(1e-9),
        xdp_no_socket: no_socket,
        rx_drops,
        queues,
    };
    eprintln!(
        "ceiling: forwarded {a_to_b} a->b, {b_to_a} b->a in {elapsed:.3} s, {rx_drops} rx drops"
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// One queue pair until the stop signal.
fn forward_queue(
    red: &Redirector,
    q: u32,
    ia: u32,
    ib: u32,
    to_a: &[u8; 12],
    to_b: &[u8; 12],
) -> Result<CeilingQueue> {
    let sizes = RingSizes {
        fill: FILL_RING,
        comp: RING,
        rx: RING,
        tx: RING,
    };
    let mut umem = Umem::new(UMEM_FRAMES)?;
    let mut sa = XskSocket::new(&umem, ia, q, sizes, ZeroCopyWish::Off, None)?;
    let mut sb = XskSocket::new(&umem, ib, q, sizes, ZeroCopyWish::Off, Some(&sa))?;
    sa.refill(&mut umem, FILL_RING);
    sb.refill(&mut umem, FILL_RING);
    red.register_socket(PORT_A, q, sa.fd())?;
    red.register_socket(PORT_B, q, sb.fd())?;
    // The harness waits for one of these per queue before it sends: frames
    // that come before the socket is in the XSKMAP are dropped by XDP.
    eprintln!("ceiling: queue {q} ready");

    let mut descs = [XdpDesc::default(); BATCH];
    let (mut a_to_b, mut b_to_a) = (0u64, 0u64);
    while !pktgen::stop_requested() {
        a_to_b += forward(&mut umem, &mut sa, &mut sb, to_b, &mut descs);
        b_to_a += forward(&mut umem, &mut sb, &mut sa, to_a, &mut descs);
    }
    let _ = red.unregister_socket(PORT_A, q);
    let _ = red.unregister_socket(PORT_B, q);
    let xdp = vec![
        XskStats::new(&iface_name(ia), q, &sa.statistics().unwrap_or_default()),
        XskStats::new(&iface_name(ib), q, &sb.statistics().unwrap_or_default()),
    ];
    Ok(CeilingQueue {
        queue: q,
        a_to_b,
        b_to_a,
        xdp,
    })
}

/// Move one batch from `rx` to `tx`, rewriting the MACs; never more than
/// `tx` has room for, so nothing is dropped here (the rx ring pushes back).
#[inline]
fn forward(
    umem: &mut Umem,
    rx: &mut XskSocket,
    tx: &mut XskSocket,
    macs: &[u8; 12],
    descs: &mut [XdpDesc; BATCH],
) -> u64 {
    tx.reclaim(umem);
    let room = (tx.tx_free() as usize).min(BATCH);
    let n = if room > 0 {
        rx.recv(&mut descs[..room])
    } else {
        0
    };
    if n > 0 {
        let mem = umem.mem();
        for d in &descs[..n] {
            let at = d.addr as usize;
            if let Some(h) = mem.get_mut(at..at + 12) {
                h.copy_from_slice(macs);
            }
        }
        tx.send(descs[..n].iter().copied());
    }
    tx.service_wakeups();
    rx.refill(umem, FILL_RING);
    rx.service_wakeups();
    n as u64
}

fn iface_name(ifindex: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return ifindex.to_string();
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name into buf.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}
