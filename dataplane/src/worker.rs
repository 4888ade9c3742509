//! A worker: owns the queues `q` with `q % workers == i` of both interfaces
//! (one UMEM shared by all its sockets, so a frame address moves from an RX
//! ring to the other port's TX ring without a copy), polls them, and runs
//! vectors through the graph. Owning every queue matters: a NIC with more
//! RSS queues than workers would otherwise drop what lands on the others. It never blocks on a lock; when there is no
//! traffic (adaptive mode) it sleeps in poll() until a frame or a wake-up.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::counters::{clocks, WorkerStats};
use crate::firewall::WorkerFirewall;
use crate::graph::{Graph, Meta, NodeId, SPARE_FRAMES};
use crate::nodes;
use crate::punt::{Channels, PuntFrame};
use crate::tables::{Port, SharedFib};
use crate::xsk::{BindMode, RingSizes, Umem, XdpDesc, XskSocket, ZeroCopyWish};
use crate::{FRAME_SIZE, MAX_BATCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    Busy,
    Adaptive,
}

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub id: usize,
    pub core: Option<usize>,
    /// Queues of the WAN and LAN interface this worker owns (at least one each).
    pub wan_queues: Vec<u32>,
    pub lan_queues: Vec<u32>,
    pub wan_ifindex: u32,
    pub lan_ifindex: u32,
    pub frames: u32,
    pub fill: u32,
    pub batch: usize,
    pub poll: Poll,
    pub zero_copy: ZeroCopyWish,
    /// `trace add`'s budget and records, shared with the control thread.
    pub trace: Option<Arc<crate::trace::TraceControl>>,
    /// What the control thread publishes for the punt reserve (our DHCPv6
    /// transaction), shared by every worker.
    pub reserve: Arc<crate::police::Reserve>,
}

/// One AF_XDP socket of a worker.
pub struct PortSocket {
    pub port: Port,
    pub queue: u32,
    sock: XskSocket,
}

/// The sockets of one worker, created before its thread starts so that
/// errors surface at start-up and the XSKMAP can be filled with their fds.
pub struct WorkerPorts {
    umem: Umem,
    socks: Vec<PortSocket>,
    /// The socket each port transmits on (the first one of that port).
    tx_sock: [usize; 2],
    /// Fill ring level to keep per socket: the UMEM must also cover what
    /// sits in RX and TX rings.
    fill_target: u32,
}

impl WorkerPorts {
    pub fn open(cfg: &WorkerConfig) -> io::Result<Self> {
        let umem = Umem::new(cfg.frames)?;
        let sizes = RingSizes {
            fill: cfg.fill,
            comp: cfg.fill,
            rx: cfg.fill,
            tx: (cfg.fill / 2).max(512),
        };
        let wanted: Vec<(Port, u32, u32)> = cfg
            .wan_queues
            .iter()
            .map(|&q| (Port::Wan, cfg.wan_ifindex, q))
            .chain(
                cfg.lan_queues
                    .iter()
                    .map(|&q| (Port::Lan, cfg.lan_ifindex, q)),
            )
            .collect();
        let mut socks: Vec<PortSocket> = Vec::with_capacity(wanted.len());
        for (port, ifindex, queue) in wanted {
            let owner = socks.first().map(|s| &s.sock);
            let sock = XskSocket::new(&umem, ifindex, queue, sizes, cfg.zero_copy, owner).map_err(
                |e| {
                    io::Error::new(
                        e.kind(),
                        format!("AF_XDP socket on {} queue {queue}: {e}", port.name()),
                    )
                },
            )?;
            socks.push(PortSocket { port, queue, sock });
        }
        let first = |p: Port| socks.iter().position(|s| s.port == p);
        let (Some(w), Some(l)) = (first(Port::Wan), first(Port::Lan)) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a worker needs at least one queue of each interface",
            ));
        };
        let fill_target = cfg.fill.min(cfg.frames / (2 * socks.len() as u32)).max(64);
        Ok(WorkerPorts {
            umem,
            socks,
            tx_sock: [w, l],
            fill_target,
        })
    }

    /// (port, queue, fd) of every socket, for the XSKMAP.
    pub fn sockets(&self) -> impl Iterator<Item = (Port, u32, i32)> + '_ {
        self.socks.iter().map(|s| (s.port, s.queue, s.sock.fd()))
    }

    pub fn mode(&self) -> BindMode {
        self.socks[0].sock.mode
    }
}

pub struct WorkerHandle {
    pub id: usize,
    pub wan_queues: Vec<u32>,
    pub lan_queues: Vec<u32>,
    pub core: Option<usize>,
    pub mode: BindMode,
    pub stats: Arc<WorkerStats>,
    pub channels: Arc<Channels>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    pub fn spawn(
        cfg: WorkerConfig,
        ports: WorkerPorts,
        fib: SharedFib,
        channels: Arc<Channels>,
        fw: WorkerFirewall,
    ) -> io::Result<Self> {
        let stats = Arc::new(WorkerStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mode = ports.mode();
        let (s, st, ch) = (stats.clone(), stop.clone(), channels.clone());
        let c = cfg.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ipoe-worker-{}", cfg.id))
            .spawn(move || {
                if let Some(core) = c.core {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                        log::warn!("worker {}: could not pin to core {core}", c.id);
                    }
                }
                let mut w = Worker::new(c, ports, fib, ch, s, st, fw);
                w.run();
            })?;
        Ok(WorkerHandle {
            id: cfg.id,
            wan_queues: cfg.wan_queues.clone(),
            lan_queues: cfg.lan_queues.clone(),
            core: cfg.core,
            mode,
            stats,
            channels,
            stop,
            thread: Some(thread),
        })
    }

    /// Ask the worker to stop and wait for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.channels.to_worker.notify();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

#[inline(always)]
fn prefetch(mem: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if at < mem.len() {
        // SAFETY: a prefetch of an address inside our mapping; it never faults.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                mem.as_ptr().add(at).cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (mem, at);
}

/// (rx dropped, rx ring full, fill ring empty, tx invalid) summed per port.
#[derive(Clone, Copy, Default)]
struct XdpStatisticsSum(u64, u64, u64, u64);

struct Worker {
    cfg: WorkerConfig,
    /// The sockets' fds and the wake-up eventfd (last), built once.
    pollfds: Vec<libc::pollfd>,
    ports: WorkerPorts,
    fib: SharedFib,
    ch: Arc<Channels>,
    shared: Arc<WorkerStats>,
    stop: Arc<AtomicBool>,
    graph: Graph,
    descs: Vec<XdpDesc>,
    t0: Instant,
}

/// Idle loop turns before an adaptive worker goes to sleep in poll().
const SPIN_BEFORE_SLEEP: u32 = 256;
/// How often a busy worker copies its counters for the control thread.
const PUBLISH_EVERY: Duration = Duration::from_millis(1);
/// Longest sleep; a wake-up eventfd cuts it short.
const SLEEP_MS: i32 = 200;

impl Worker {
    fn new(
        cfg: WorkerConfig,
        ports: WorkerPorts,
        fib: SharedFib,
        ch: Arc<Channels>,
        shared: Arc<WorkerStats>,
        stop: Arc<AtomicBool>,
        fw: WorkerFirewall,
    ) -> Self {
        let pollfds = ports
            .socks
            .iter()
            .map(|s| s.sock.fd())
            .chain(std::iter::once(ch.to_worker.fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let tracer = crate::trace::Tracer::new(cfg.trace.clone(), cfg.id as u16);
        let police = crate::police::Police::new(cfg.reserve.clone());
        Worker {
            cfg,
            pollfds,
            ports,
            fib,
            ch,
            shared,
            stop,
            // The graph's clock starts at the session table's epoch, shared
            // with the other workers and the control thread.
            t0: fw.epoch,
            graph: {
                let mut g = Graph::with_firewall(fw);
                g.tracer = tracer;
                g.police = police;
                g
            },
            descs: vec![XdpDesc::default(); MAX_BATCH],
        }
    }

    fn run(&mut self) {
        let batch = self.cfg.batch.clamp(1, MAX_BATCH);
        let mut idle_turns = 0u32;
        let mut last_stats = Instant::now();
        let mut last_publish = Instant::now();
        while !self.stop.load(Ordering::Acquire) {
            let c0 = clocks();
            let now = Instant::now();
            let now_ns = now.duration_since(self.t0).as_nanos() as u64;
            let mut work = 0usize;
            let target = self.ports.fill_target;
            for s in &mut self.ports.socks {
                s.sock.reclaim(&mut self.ports.umem);
                s.sock.refill(&mut self.ports.umem, target);
            }
            work += self.drain_inject();
            for k in 0..self.ports.socks.len() {
                work += self.rx_vector(k, batch, now_ns);
            }
            // Every socket, not only the TX one of each port: a zero-copy
            // queue whose fill ring ran dry receives nothing until its own
            // socket is woken.
            for s in &mut self.ports.socks {
                s.sock.service_wakeups();
            }
            if now.duration_since(last_stats) >= Duration::from_millis(500) {
                self.read_xdp_statistics();
                last_stats = now;
            }
            let dt = clocks().wrapping_sub(c0);
            let st = &mut self.graph.stats;
            st.loops += 1;
            if work > 0 {
                st.busy_clocks += dt;
                idle_turns = 0;
                // Readers (ipoectl) need fresh figures, not per-loop ones.
                if now.duration_since(last_publish) >= PUBLISH_EVERY {
                    self.shared.publish(&self.graph.stats);
                    last_publish = now;
                }
            } else {
                st.idle_clocks += dt;
                idle_turns += 1;
                if idle_turns == 1 {
                    // Traffic just stopped: show its last counts (busy polling never sleeps).
                    self.shared.publish(&self.graph.stats);
                    last_publish = now;
                }
                if self.cfg.poll == Poll::Adaptive
                    && idle_turns >= SPIN_BEFORE_SLEEP
                    && self.ports.socks.iter().all(|s| s.sock.tx_outstanding == 0)
                {
                    self.shared.publish(&self.graph.stats);
                    self.sleep();
                    idle_turns = 0;
                }
            }
        }
        self.shared.publish(&self.graph.stats);
    }

    fn sleep(&mut self) {
        if !self.ch.inject.is_empty() {
            return;
        }
        let fds = &mut self.pollfds;
        for f in fds.iter_mut() {
            f.revents = 0;
        }
        // SAFETY: valid pollfd array.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, SLEEP_MS) };
        // The wake-up eventfd is last.
        if fds.last().map(|f| f.revents != 0).unwrap_or(false) {
            self.ch.to_worker.drain();
        }
    }

    /// Frames from the control thread (ARP/NDP replies, packets whose
    /// neighbor just resolved) go out on their port.
    fn drain_inject(&mut self) -> usize {
        let mut n = 0;
        while n < MAX_BATCH {
            let Some(pf) = self.ch.inject.pop() else {
                break;
            };
            self.send_copy(&pf);
            let _ = self.ch.free.push(pf.data);
            n += 1;
        }
        n
    }

    fn send_copy(&mut self, pf: &PuntFrame) {
        let sock_idx = self.ports.tx_sock[pf.port.index()];
        if self.ports.socks[sock_idx].sock.tx_free() == 0 {
            self.count_output_error(nodes::interface_output::Error::TxRingFull.index());
            return;
        }
        let Some(addr) = self.ports.umem.alloc() else {
            self.count_output_error(nodes::interface_output::Error::TxRingFull.index());
            return;
        };
        let len = pf.len.min(FRAME_SIZE);
        let mem = self.ports.umem.mem();
        mem[addr as usize..addr as usize + len].copy_from_slice(&pf.data[..len]);
        let ps = &mut self.graph.stats.ports[pf.port.index()];
        ps.tx_packets += 1;
        ps.tx_bytes += len as u64;
        self.ports.socks[sock_idx]
            .sock
            .send(std::iter::once(XdpDesc {
                addr,
                len: len as u32,
                options: 0,
            }));
    }

    fn count_output_error(&mut self, e: usize) {
        self.graph.stats.nodes[NodeId::InterfaceOutput as usize].errors[e] += 1;
    }

    fn rx_vector(&mut self, k: usize, batch: usize, now_ns: u64) -> usize {
        let port = self.ports.socks[k].port;
        let n = self.ports.socks[k].sock.recv(&mut self.descs[..batch]);
        if n == 0 {
            return 0;
        }
        {
            let mem = self.ports.umem.mem();
            let ps = &mut self.graph.stats.ports[port.index()];
            for (m, d) in self.graph.meta.iter_mut().zip(&self.descs[..n]) {
                *m = Meta::new(d.addr, d.len, port);
                ps.rx_bytes += u64::from(d.len);
                // The kernel wrote the frame, often on the other core: start
                // loading its headers now so ethernet-input does not stall
                // on each one in turn.
                prefetch(mem, d.addr as usize);
            }
            ps.rx_packets += n as u64;
        }
        // Frames for packets the graph makes (second fragments); only
        // those it used need replacing, so this is usually one compare.
        while self.graph.spare.len() < SPARE_FRAMES {
            match self.ports.umem.alloc() {
                Some(a) => self.graph.spare.push(a),
                None => break,
            }
        }
        let fib = self.fib.load();
        self.graph.run(&fib, self.ports.umem.mem(), n, now_ns);
        drop(fib);
        self.dispose();
        n
    }

    /// Act on the graph's outputs: transmit, punt (copy out), or free.
    fn dispose(&mut self) {
        let g = &mut self.graph;
        for p in Port::ALL {
            let q = &g.out.tx[p.index()];
            if q.is_empty() {
                continue;
            }
            let sock = &mut self.ports.socks[self.ports.tx_sock[p.index()]].sock;
            let room = sock.tx_free() as usize;
            let take = q.len().min(room);
            let meta = &g.meta;
            let ps = &mut g.stats.ports[p.index()];
            sock.send(q.as_slice()[..take].iter().map(|&i| {
                let m = meta[usize::from(i)];
                ps.tx_packets += 1;
                ps.tx_bytes += u64::from(m.len);
                XdpDesc {
                    addr: m.addr,
                    len: m.len,
                    options: 0,
                }
            }));
            for &i in &q.as_slice()[take..] {
                self.ports.umem.free(meta[usize::from(i)].addr);
                g.stats.nodes[NodeId::InterfaceOutput as usize].errors
                    [nodes::interface_output::Error::TxRingFull.index()] += 1;
                ps.tx_ring_full += 1;
            }
        }
        let mut punted = false;
        let capacity = self.ch.punt.capacity();
        for &i in g.out.punt.as_slice() {
            let m = g.meta[usize::from(i)];
            let errs = &mut g.stats.nodes[NodeId::Punt as usize].errors;
            if !crate::police::queue_admits(m.class, self.ch.punt.len(), capacity) {
                errs[nodes::punt::Error::QueueFull.index()] += 1;
                self.ports.umem.free(m.addr);
                continue;
            }
            match self.ch.free.pop() {
                Some(mut data) => {
                    let len = (m.len as usize).min(FRAME_SIZE);
                    let start = m.addr as usize;
                    data[..len].copy_from_slice(&self.ports.umem.mem()[start..start + len]);
                    let pf = PuntFrame {
                        port: m.tx,
                        reason: m.punt,
                        next_hop: m.next_hop,
                        len,
                        data,
                    };
                    if let Err(pf) = self.ch.punt.push(pf) {
                        let _ = self.ch.free.push(pf.data);
                        errs[nodes::punt::Error::QueueFull.index()] += 1;
                    } else {
                        punted = true;
                    }
                }
                None => errs[nodes::punt::Error::NoBuffer.index()] += 1,
            }
            self.ports.umem.free(m.addr);
        }
        for &i in g.out.drop.as_slice() {
            self.ports.umem.free(g.meta[usize::from(i)].addr);
        }
        if punted {
            self.ch.to_control.notify();
        }
    }

    fn read_xdp_statistics(&mut self) {
        let mut sum = [XdpStatisticsSum::default(); 2];
        for s in &self.ports.socks {
            if let Ok(st) = s.sock.statistics() {
                let t = &mut sum[s.port.index()];
                t.0 += st.rx_dropped;
                t.1 += st.rx_ring_full;
                t.2 += st.rx_fill_ring_empty_descs;
                t.3 += st.tx_invalid_descs;
            }
        }
        for p in Port::ALL {
            let (t, ps) = (sum[p.index()], &mut self.graph.stats.ports[p.index()]);
            ps.rx_kernel_dropped = t.0;
            ps.rx_ring_full = t.1;
            ps.rx_fill_empty = t.2;
            ps.tx_invalid = t.3;
        }
    }
}
