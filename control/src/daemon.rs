//! ipoed: start-up, the control thread's loop, and a clean shutdown.
//!
//! Start-up order matters: everything that can fail on bad input (config,
//! interfaces, queue counts) is checked before anything on the host changes;
//! sockets are bound and registered in the XSKMAP before the XDP program is
//! attached, so the first frame already has a socket to go to.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ipoe_bpf::{AttachMode, Attachment, Redirector};
use ipoe_config::Config;
use ipoe_dataplane::counters::WorkerSnapshot;
use ipoe_dataplane::graph::PuntReason;
use ipoe_dataplane::punt::{Channels, Notify};
use ipoe_dataplane::tables::{Fib, Port, PortAddrs, SharedFib, Tunnel};
use ipoe_dataplane::trace::TraceControl;
use ipoe_dataplane::worker::{Poll, WorkerConfig, WorkerHandle, WorkerPorts};
use ipoe_dataplane::xsk::ZeroCopyWish;

use crate::ctl::CtlServer;
use crate::iface::{self, Interface};
use crate::lan::{self, Lan};
use crate::wan::{Learned, Wan};
use ipoe_proto::hostio::Tx;
use ipoe_proto::ndproxy::{self, NdProxy, NdProxyConfig};
use ipoe_proto::neigh::{IfaceAddrs, NeighConfig, NeighborEngine, Outgoing, Side, Verdict};

/// Depth of each worker's punt and inject queues.
const PUNT_DEPTH: usize = 1024;
/// TCP segments for the LAN metrics server held between two loop turns.
const METRICS_INBOX: usize = 256;

/// `control.metrics` when it names a LAN address (served over ipoed's own
/// TCP); loopback is served by a kernel socket instead.
fn config_metrics_lan(config: &Config) -> Option<std::net::SocketAddr> {
    config.control.metrics.filter(|m| !m.ip().is_loopback())
}

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);
static SIGNAL_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGHUP {
        RELOAD.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
    let fd = SIGNAL_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let one: u64 = 1;
        // SAFETY: write(2) is async-signal-safe; 8 bytes from a valid u64.
        unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
    }
}

fn install_signals(wake: &Notify) {
    SIGNAL_FD.store(wake.fd(), Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installing a handler that only touches atomics and write(2).
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    // A CLI client that goes away must not kill the daemon.
    // SAFETY: ignoring SIGPIPE is always sound.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

pub fn side(p: Port) -> Side {
    match p {
        Port::Wan => Side::Wan,
        Port::Lan => Side::Lan,
    }
}

pub fn port(s: Side) -> Port {
    match s {
        Side::Wan => Port::Wan,
        Side::Lan => Port::Lan,
    }
}

/// Everything the control thread owns and the CLI reports on.
pub struct Router {
    /// The config the router runs: the file's, with the discovered IPv4
    /// method filled in when the file names none (zeroconf.rs).
    pub config: Config,
    /// The config as the file has it (`show config`).
    pub file_config: Config,
    /// Finds the IPv4 method when the file names none (issue 20).
    pub zeroconf: crate::zeroconf::Zeroconf,
    pub config_path: std::path::PathBuf,
    pub started: Instant,
    pub wan: Interface,
    pub lan: Interface,
    pub fib: SharedFib,
    /// The Fib built from the config, the interfaces and what the WAN
    /// learned; neighbor entries are merged into a copy of it on every
    /// publish.
    base_fib: Fib,
    pub neigh: NeighborEngine,
    neigh_generation: u64,
    /// RA/SLAAC, DHCPv6-PD and the AFTR resolver.
    pub wan6: Wan,
    /// LAN RAs, DHCPv4/v6 servers and the DNS proxy.
    pub lan_services: Lan,
    /// /64s being renumbered away, as last put in the Fib.
    stale_prefixes: Vec<Ipv6Addr>,
    /// WAN and LAN carrier as last read, and when they are next read.
    wan_carrier: bool,
    lan_carrier: bool,
    /// Notices an AFTR that stopped answering (checked with the carrier).
    pub tunnel_watch: ipoe_proto::tunnel_watch::TunnelWatch,
    /// WAN tx packets at the last neighbor-use check.
    wan_tx_seen: u64,
    carrier_checked: Instant,
    /// What `base_fib` was built from.
    pub learned: Learned,
    /// Duplicate addresses already reported to `wan6`.
    dad_reported: Vec<Ipv6Addr>,
    /// Set when `base_fib` changed and must be published.
    base_changed: bool,
    pub publishes: u64,
    pub workers: Vec<WorkerHandle>,
    pub attachments: Vec<Attachment>,
    pub redirector: Redirector,
    pub inject_failed: u64,
    pub punts_handled: u64,
    /// The session table the workers share, drop log and expiry.
    pub firewall: crate::firewall::Firewall,
    /// `trace add`: budget and records shared with the workers.
    pub trace: Arc<TraceControl>,
    /// Our open DHCPv6 transaction, for the workers' punt reserve.
    punt_reserve: Arc<ipoe_dataplane::police::Reserve>,
    /// `clear runtime` and `clear errors` keep the counters as they were
    /// and subtract: the workers' counters have a single writer each.
    pub runtime_base: Vec<WorkerSnapshot>,
    pub runtime_cleared: Option<Instant>,
    /// "node/counter" -> count at `clear errors`.
    pub errors_base: HashMap<String, u64>,
    pub reloads: u64,
    /// `control.metrics` on a LAN address: its TCP segments, punted by the
    /// workers, wait here for the metrics server in the daemon loop.
    pub metrics_lan: Option<std::net::SocketAddr>,
    pub metrics_inbox: Vec<Vec<u8>>,
    pub metrics_inbox_dropped: u64,
    /// TCP to port 80 of the LAN addresses, for the status page.
    pub status_inbox: Vec<Vec<u8>>,
    pub status_inbox_dropped: u64,
    /// The groups each port listens to: NIC filter and MLD.
    pub multicast: crate::multicast::Multicast,
    /// MAP-E: the CE's mapping and the NAPT44 bindings (issue 18).
    pub map: crate::map_e::MapState,
    /// Fixed IPv4 over IPIP: the local address, the NAPT44 bindings onto
    /// the fixed /32 and the registration at the update URL (issue 20).
    pub ipip: crate::ipip::IpipState,
    /// The routed ND proxy for a proxied WAN /64 (issue 19): off (no
    /// prefix) unless the LAN uses the WAN RA's /64.
    pub ndproxy: NdProxy,
    ndproxy_generation: u64,
    /// When LAN neighbors were last reported to `ndproxy`.
    ndproxy_noted: Instant,
}

impl Router {
    pub fn start(config: Config, config_path: &Path) -> Result<Self> {
        let dp = &config.dataplane;
        let wan = iface::Interface::probe(config.wan.interface.as_str(), config.wan.mtu)?;
        let lan = iface::Interface::probe(config.lan.interface.as_str(), config.lan.mtu)?;
        for i in [&wan, &lan] {
            if i.queues < dp.workers as u32 {
                bail!(
                    "{}: {} workers configured but the interface has {} queue(s) \
                     (see `ethtool -l {}`; lower dataplane.workers or raise the channel count)",
                    i.name,
                    dp.workers,
                    i.queues,
                    i.name
                );
            }
        }

        let now = Instant::now();
        let wan6 = Wan::new(&config, wan.mac, iface::link_local(&wan.mac), now);
        // The DHCPv6 server speaks with the router's one DUID.
        let duid = match &wan6.dhcp {
            Some(c) => c.duid().to_vec(),
            None => crate::state::StateDir::open(&config.control.state_dir)
                .duid(|| ipoe_proto::dhcp6c::duid_ll(wan.mac)),
        };
        let lan_services = Lan::new(
            &config,
            lan.mac,
            wan.mac,
            iface::link_local(&lan.mac),
            duid,
            now,
        );
        let learned = wan6.learned(&[]);
        log_learned(&Learned::default(), &learned);
        let firewall = crate::firewall::Firewall::new(&config, now);
        let mut map = crate::map_e::MapState::default();
        map.update(&config, &learned, &firewall.sessions);
        let mut ipip = crate::ipip::IpipState::default();
        ipip.update(
            &config,
            &learned,
            wan6.ra_prefix(now).map(|a| a.addr),
            &firewall.sessions,
        );
        let base_fib = base_fib(&config, &wan, &lan, &learned, &map, &ipip);
        let fib = SharedFib::new(base_fib.clone());
        let neigh = NeighborEngine::new(
            NeighConfig {
                max_entries: config.control.max_neighbors as usize,
                max_incomplete: 64,
                hold_per_neighbor: 4,
                reachable: Duration::from_secs(30),
                stale_gc: Duration::from_secs(20 * 60),
                retrans: Duration::from_secs(1),
                max_probes: 3,
            },
            iface_addrs(&base_fib, Port::Wan, &learned, &map, &ipip),
            iface_addrs(&base_fib, Port::Lan, &learned, &map, &ipip),
            now,
        );

        // The filter socket needs CAP_NET_RAW: opened before the drop.
        let multicast = crate::multicast::Multicast::new(
            (wan.mac, config.wan.mtu),
            (lan.mac, config.lan.mtu),
            ipoe_proto::osrand::random_u64(),
        );
        let trace = Arc::new(TraceControl::default());
        let punt_reserve = Arc::new(ipoe_dataplane::police::Reserve::default());
        let redirector = Redirector::load().context("loading the XDP program")?;
        let to_control = Arc::new(Notify::new()?);
        let mut workers = Vec::new();
        let zero_copy = match dp.zero_copy {
            ipoe_config::ZeroCopy::Auto => ZeroCopyWish::Auto,
            ipoe_config::ZeroCopy::On => ZeroCopyWish::On,
            ipoe_config::ZeroCopy::Off => ZeroCopyWish::Off,
        };
        let mut pending = Vec::new();
        for id in 0..dp.workers {
            // Worker i owns every queue q with q % workers == i: RSS may put
            // traffic on any queue the NIC has.
            let owned = |n: u32| -> Vec<u32> {
                (0..n).filter(|q| *q as usize % dp.workers == id).collect()
            };
            let cfg = WorkerConfig {
                id,
                core: dp.cores.get(id).map(|c| c.0),
                wan_queues: owned(wan.queues),
                lan_queues: owned(lan.queues),
                wan_ifindex: wan.ifindex,
                lan_ifindex: lan.ifindex,
                frames: dp.frames_per_worker,
                fill: dp.fill_ring,
                batch: dp.batch as usize,
                poll: match dp.poll {
                    ipoe_config::PollMode::Busy => Poll::Busy,
                    ipoe_config::PollMode::Adaptive => Poll::Adaptive,
                },
                zero_copy,
                trace: Some(trace.clone()),
                reserve: punt_reserve.clone(),
            };
            let ports = WorkerPorts::open(&cfg)?;
            for (p, q, fd) in ports.sockets() {
                redirector.register_socket(p as u32, q, fd)?;
            }
            pending.push((cfg, ports));
        }
        let mode = match dp.xdp_mode {
            ipoe_config::XdpMode::Native => AttachMode::Native,
            ipoe_config::XdpMode::Generic => AttachMode::Generic,
            ipoe_config::XdpMode::Auto => AttachMode::Auto,
        };
        let mut attachments = Vec::new();
        for (p, i) in [(Port::Wan, &wan), (Port::Lan, &lan)] {
            let a = redirector.attach(&i.name, p as u32, mode)?;
            log::info!(
                "{}: XDP attached ({}), zero-copy capable: {}",
                i.name,
                a.mode.as_str(),
                a.zero_copy_capable
            );
            attachments.push(a);
        }
        // Everything that needed privileges is done (sockets, XSKMAP, XDP
        // attached); the workers spawned next inherit the reduced set.
        match crate::caps::drop_all_but(crate::caps::KEEP) {
            Ok(kept) => log::info!(
                "capabilities: kept {:?}, dropped the rest",
                crate::caps::names(kept)
            ),
            Err(e) => log::warn!("capabilities: could not drop: {e}"),
        }
        for (cfg, ports) in pending {
            let ch = Arc::new(Channels::new(PUNT_DEPTH, to_control.clone())?);
            log::info!(
                "worker {} on WAN queues {:?}, LAN queues {:?}, core {:?}, AF_XDP {:?}",
                cfg.id,
                cfg.wan_queues,
                cfg.lan_queues,
                cfg.core,
                ports.mode()
            );
            workers.push(WorkerHandle::spawn(
                cfg,
                ports,
                fib.clone(),
                ch,
                firewall.worker_state(),
            )?);
        }
        let metrics_lan = config_metrics_lan(&config);
        let zeroconf = crate::zeroconf::Zeroconf::new(&config, now);
        let ndproxy = NdProxy::new(
            NdProxyConfig::default(),
            ndproxy::Link {
                mac: wan.mac,
                link_local: iface::link_local(&wan.mac),
            },
            ndproxy::Link {
                mac: lan.mac,
                link_local: iface::link_local(&lan.mac),
            },
            now,
        );
        Ok(Router {
            file_config: config.clone(),
            zeroconf,
            config,
            config_path: config_path.to_path_buf(),
            started: now,
            wan,
            lan,
            fib,
            base_fib,
            neigh,
            neigh_generation: 0,
            wan6,
            lan_services,
            stale_prefixes: Vec::new(),
            wan_carrier: true,
            lan_carrier: true,
            tunnel_watch: Default::default(),
            wan_tx_seen: 0,
            carrier_checked: now,
            learned,
            dad_reported: Vec::new(),
            base_changed: false,
            publishes: 0,
            workers,
            attachments,
            redirector,
            inject_failed: 0,
            punts_handled: 0,
            firewall,
            trace,
            punt_reserve,
            runtime_base: Vec::new(),
            runtime_cleared: None,
            errors_base: HashMap::new(),
            reloads: 0,
            metrics_lan,
            metrics_inbox: Vec::new(),
            metrics_inbox_dropped: 0,
            status_inbox: Vec::new(),
            status_inbox_dropped: 0,
            multicast,
            map,
            ipip,
            ndproxy,
            ndproxy_generation: 0,
            ndproxy_noted: now,
        })
    }

    /// Handle everything the workers punted; returns how many.
    fn drain_punts(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> usize {
        let mut n = 0;
        let mut txs = Vec::new();
        for w in 0..self.workers.len() {
            let ch = self.workers[w].channels.clone();
            while let Some(pf) = ch.punt.pop() {
                let side = side(pf.port);
                match pf.reason {
                    // MLD queries (and other listeners' reports) are the
                    // MLD host's, whichever port they come from.
                    PuntReason::Local
                        if self.multicast.mld(side).handle_frame(now, pf.bytes())
                            != ipoe_proto::mld::Verdict::NotMld => {}
                    PuntReason::Local if side == Side::Lan && self.take_lan_http(pf.bytes()) => {}
                    // The update GET's TCP (ip6-local admits only the
                    // flows in the reserve).
                    PuntReason::Local
                        if side == Side::Wan && self.ipip.handle_frame(pf.bytes()) => {}
                    PuntReason::Local if side == Side::Lan && lan::wants(pf.bytes()) => {
                        self.lan_services.handle_frame(now, pf.bytes(), &mut txs);
                    }
                    PuntReason::Local => {
                        let v = self.neigh.handle_frame(now, side, pf.bytes(), out);
                        // NS/NA the neighbor engine found not about its own
                        // addresses: a proxied host's, a LAN host's DAD, or
                        // a LAN answer to the proxy's verification.
                        if matches!(
                            v,
                            Verdict::Dropped(
                                ipoe_proto::neigh::DropReason::NotForUs
                                    | ipoe_proto::neigh::DropReason::NaUnsolicited
                            )
                        ) && self.ndproxy.prefix().is_some()
                        {
                            self.ndproxy.handle_frame(now, side, pf.bytes(), out);
                        }
                        if v == Verdict::Unhandled
                            && side == Side::Wan
                            && !self.wan6.handle_frame(now, pf.bytes())
                            && !self.lan_services.handle_upstream(now, pf.bytes(), &mut txs)
                            && !self.zeroconf.handle_frame(now, pf.bytes())
                            && !self.ipip.handle_dns(now, pf.bytes())
                        {
                            self.wan6.counters.rx_unexpected += 1;
                        }
                        if let Some(ptb) = self.wan6.take_ptb_to_relay() {
                            self.relay_ptb(&ptb, &mut txs);
                        }
                    }
                    PuntReason::NeighborMiss => {
                        self.neigh.resolve(now, side, pf.next_hop, pf.bytes(), out);
                    }
                }
                ch.recycle(pf);
                n += 1;
            }
        }
        self.punts_handled += n as u64;
        self.transmit(now, txs, out);
        n
    }

    /// RFC 2473 8.3: the LAN host whose packet a PTB quoted learns the new
    /// tunnel MTU at once, not only when it sends the next big one.
    fn relay_ptb(&mut self, ptb: &[u8], txs: &mut Vec<ipoe_proto::hostio::Tx>) {
        let Some(p) = self.wan6.pmtu.learned() else {
            return;
        };
        let mtu = self
            .config
            .tunnel_mtu()
            .min(p.mtu.min(self.wan6.link_mtu()) - 40);
        let fib = &self.base_fib;
        let Some((lan_ip, _)) = fib.lan_ipv4 else {
            return;
        };
        let relayed = ipoe_proto::pmtu::frag_needed_for_sender(ptb, mtu, lan_ip, |a| {
            fib.in_lan_ipv4(u32::from(a))
        });
        if let Some((_, packet)) = relayed {
            if let Some((dst, frame)) = ipoe_proto::hostio::ip_frame(self.lan.mac, &packet) {
                txs.push(ipoe_proto::hostio::Tx::Via(Side::Lan, dst, frame));
                self.wan6.pmtu.relayed += 1;
            }
        }
    }

    /// TCP for the LAN's HTTP servers (the metrics exporter's port, the
    /// status page's), queued for their next poll; classified once.
    /// Returns whether the frame was theirs.
    fn take_lan_http(&mut self, frame: &[u8]) -> bool {
        let Ok(ipoe_proto::hostio::Inbound::Tcp {
            dst_port,
            ip_packet,
            ..
        }) = ipoe_proto::hostio::classify(frame)
        else {
            return false;
        };
        let (inbox, dropped, limit) = if self.metrics_lan.is_some_and(|m| m.port() == dst_port) {
            (
                &mut self.metrics_inbox,
                &mut self.metrics_inbox_dropped,
                METRICS_INBOX,
            )
        } else if self.config.lan.status_page && dst_port == crate::status::PORT {
            (
                &mut self.status_inbox,
                &mut self.status_inbox_dropped,
                crate::status::INBOX,
            )
        } else {
            return false;
        };
        if inbox.len() < limit {
            inbox.push(ip_packet.to_vec());
        } else {
            *dropped += 1;
        }
        true
    }

    /// IP packets from the LAN metrics server, out through the neighbor
    /// engine like the DNS proxy's.
    pub fn send_ip_lan(&mut self, now: Instant, packets: Vec<Vec<u8>>, out: &mut Vec<Outgoing>) {
        let txs = packets
            .iter()
            .filter_map(|p| ipoe_proto::hostio::ip_frame(self.lan.mac, p))
            .map(|(dst, frame)| Tx::Via(Side::Lan, dst, frame))
            .collect();
        self.transmit(now, txs, out);
    }

    fn send(&mut self, out: &mut Vec<Outgoing>) {
        let Some(w) = self.workers.first() else {
            out.clear();
            return;
        };
        for o in out.drain(..) {
            if !w.channels.inject(port(o.side), &o.frame) {
                self.inject_failed += 1;
            }
        }
    }

    /// Runs the WAN engines and folds what they learned into the tables;
    /// returns their next deadline.
    fn poll_wan(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> Option<Instant> {
        // The carrier is read from sysfs once a second: cheap, and enough
        // for RFC 7084's "at once" on a human scale.
        if now >= self.carrier_checked {
            self.carrier_checked = now + Duration::from_secs(1);
            let up = iface::carrier(&self.wan.name).unwrap_or(true);
            if up != self.wan_carrier {
                self.wan_carrier = up;
                self.wan6.set_link(now, up);
                if up {
                    self.multicast.wan.link_up(now);
                }
            }
            let up = iface::carrier(&self.lan.name).unwrap_or(true);
            if up != self.lan_carrier {
                self.lan_carrier = up;
                if up {
                    log::info!("lan: carrier up; advertising at once");
                    self.lan_services.link_up(now);
                    self.multicast.lan.link_up(now);
                } else {
                    log::warn!("lan: carrier lost");
                }
            }
            // One read of the workers' counters serves both checks.
            let snaps: Vec<WorkerSnapshot> =
                self.workers.iter().map(|w| w.stats.snapshot()).collect();
            self.watch_tunnel(now, &snaps);
            self.touch_neighbors(now, &snaps);
        }
        let ce = self.map.on_link_ce(&self.learned.wan_candidates);
        let local = self.ipip.on_link_local(&self.learned.wan_candidates);
        let mut ce_failed = false;
        let mut local_failed = false;
        for (side, addr) in self.neigh.dad_failed() {
            if side == Side::Wan && Some(addr) == ce {
                // map_e::CeDad logs, counts and withdraws it.
                ce_failed = true;
                continue;
            }
            if side == Side::Wan && Some(addr) == local {
                local_failed = true;
                continue;
            }
            if side == Side::Wan && !self.dad_reported.contains(&addr) {
                log::warn!("wan: {addr} is in use by another node (DAD)");
                self.dad_reported.push(addr);
                self.wan6.dad_failed(now, addr);
            }
        }
        let ce_usable = ce.is_some_and(|a| self.neigh.usable_ipv6(Side::Wan).contains(&a));
        let local_usable = local.is_some_and(|a| self.neigh.usable_ipv6(Side::Wan).contains(&a));
        let ipip_dad = self
            .ipip
            .dad
            .observe(now, local, local_usable, local_failed);
        if self.map.dad.observe(now, ce, ce_usable, ce_failed) | ipip_dad {
            // Withdrawn (no tunnel, not answered) or back for a new DAD.
            self.rebuild_base_fib();
            let addrs = iface_addrs(
                &self.base_fib,
                Port::Wan,
                &self.learned,
                &self.map,
                &self.ipip,
            );
            self.neigh.set_addrs(Side::Wan, addrs, now);
            self.base_changed = true;
        }
        let usable = self.neigh.usable_ipv6(Side::Wan);
        let mut sends = Vec::new();
        let usable_lan = self.neigh.usable_ipv6(Side::Lan);
        let next = self
            .wan6
            .poll(now, &usable, &usable_lan, &mut sends)
            .map(|t| t.min(self.carrier_checked))
            .or(Some(self.carrier_checked));
        // Before this turn's messages leave (Router::send), so the reply
        // to a new exchange finds its xid published.
        self.punt_reserve.set_dhcp6_xid(self.wan6.reserved_xid());
        self.transmit(now, sends, out);
        let learned = self.wan6.learned(&self.neigh.usable_ipv6(Side::Wan));
        // The WAN /64 of IPIP's local address: a new or deprecated RA prefix
        // need not change `learned`.
        let wan64 = self.wan6.ra_prefix(now).map(|a| a.addr);
        if learned != self.learned || self.ipip.wan64_changed(&self.config, wan64) {
            log_learned(&self.learned, &learned);
            let map_changed = self
                .map
                .update(&self.config, &learned, &self.firewall.sessions)
                | self
                    .ipip
                    .update(&self.config, &learned, wan64, &self.firewall.sessions);
            let addrs_changed = learned.wan_candidates != self.learned.wan_candidates
                || learned.lan_address != self.learned.lan_address
                || map_changed;
            self.base_fib = base_fib(
                &self.config,
                &self.wan,
                &self.lan,
                &learned,
                &self.map,
                &self.ipip,
            );
            self.base_fib.stale_lan_prefixes = self.stale_prefixes_octets();
            if addrs_changed {
                for p in [Port::Wan, Port::Lan] {
                    let addrs = iface_addrs(&self.base_fib, p, &learned, &self.map, &self.ipip);
                    self.neigh.set_addrs(side(p), addrs, now);
                }
            }
            self.learned = learned;
            self.base_changed = true;
        }
        // Discovery first: a new outcome may change the ipip section the
        // registration below works from.
        let next_zc = self.poll_zeroconf(now, out);
        let next_ipip = self.poll_ipip(now, out);
        [next, next_zc, next_ipip].into_iter().flatten().min()
    }

    /// The router's own open TCP connections on the WAN (the HB46PP fetch,
    /// the IPIP update GET) for ip6-local: only their segments pass.
    fn publish_tcp_flows(&self) {
        let mut flows = self.zeroconf.tcp_flows();
        flows.extend(self.ipip.tcp_flows());
        self.punt_reserve.set_tcp_flows(&flows);
    }

    /// Runs IPv4 discovery on what the WAN learned; a new outcome is
    /// applied at once through the reload path.
    fn poll_zeroconf(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> Option<Instant> {
        if !self.zeroconf.active() {
            return None;
        }
        let l = &self.learned;
        let usable_lan = self.neigh.usable_ipv6(Side::Lan);
        let view = crate::zeroconf::WanView {
            mac: self.wan.mac,
            // As the AFTR resolver's: the one WAN address the workers
            // deliver to the router.
            source: l
                .wan_address
                .or(l.lan_address.filter(|a| usable_lan.contains(a))),
            gateway: l.gateway,
            hop_limit: l.hop_limit.unwrap_or(crate::wan::DEFAULT_HOP_LIMIT),
            dns_servers: self.wan6.dns_servers(now),
            dhcpv6_aftr: self.wan6.dhcpv6_aftr_name(),
            end_user: crate::map_e::end_user_prefix(
                self.file_config.wan.ipv6.dhcpv6_pd.is_some(),
                l,
            ),
        };
        let mut sends = Vec::new();
        let next = self.zeroconf.poll(now, &view, &mut sends);
        // Before the SYN leaves, so the SYN-ACK finds its slot.
        self.publish_tcp_flows();
        self.transmit(now, sends, out);
        if self.zeroconf.take_changed() {
            let effective =
                crate::zeroconf::effective(&self.file_config, self.zeroconf.current.as_ref());
            match self.apply_effective(effective, now) {
                Ok(keys) if keys.is_empty() => {}
                Ok(keys) => log::info!("ipv4: applied ({})", keys.join(", ")),
                Err(e) => log::error!("ipv4: the discovered method cannot be applied: {e}"),
            }
        }
        next
    }

    /// Registers IPIP's local address at the update URL (explicit or
    /// from HB46PP's answer through `self.config`).
    fn poll_ipip(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> Option<Instant> {
        // The update GET leaves from the local address once it may be used:
        // passed DAD when on-link, at once inside the delegated prefix.
        let local_ok = match self.ipip.current {
            Some(d)
                if self
                    .ipip
                    .on_link_local(&self.learned.wan_candidates)
                    .is_some() =>
            {
                self.neigh.usable_ipv6(Side::Wan).contains(&d.local)
            }
            Some(_) => true,
            None => false,
        };
        let wan_view = crate::ipip::WanView {
            gateway: self.learned.gateway,
            mac: self.wan.mac,
            dns_source: self.learned.wan_address,
            dns_servers: self.wan6.dns_servers(now),
            hop_limit: self
                .learned
                .hop_limit
                .unwrap_or(ipoe_dataplane::nodes::dslite_encap::OUTER_HOP_LIMIT),
        };
        let mut txs = Vec::new();
        let next = self
            .ipip
            .poll(now, &self.config, local_ok, &wan_view, &mut txs);
        // Before the SYN leaves, so the SYN-ACK finds its slot.
        self.publish_tcp_flows();
        self.transmit(now, txs, out);
        next
    }

    /// Tell the neighbor engine which neighbors carry traffic (RFC 4861
    /// 7.3.3: a used STALE entry is re-probed; a used one is never
    /// collected). LAN neighbors come from the workers' marks; the WAN
    /// gateway is in use whenever anything left on the WAN.
    fn touch_neighbors(&mut self, now: Instant, snaps: &[WorkerSnapshot]) {
        for ip in self.firewall.neigh_use.take() {
            self.neigh.touch(now, Side::Lan, ip);
        }
        let wan_tx: u64 = snaps
            .iter()
            .map(|s| s.ports[Port::Wan.index()].tx_packets)
            .sum();
        if wan_tx != self.wan_tx_seen {
            self.wan_tx_seen = wan_tx;
            if let Some(gw) = self.learned.gateway {
                self.neigh.touch(now, Side::Wan, IpAddr::V6(gw));
            }
        }
    }

    /// Logs an AFTR that stopped answering, and its return.
    fn watch_tunnel(&mut self, now: Instant, snaps: &[WorkerSnapshot]) {
        let (mut encap, mut decap) = (0, 0);
        for s in snaps {
            encap += s.nodes[ipoe_dataplane::graph::NodeId::DsliteEncap as usize].ok_packets;
            decap += s.nodes[ipoe_dataplane::graph::NodeId::DsliteDecap as usize].ok_packets;
        }
        // The BR under MAP-E: the tunnel's far end either way.
        let aftr = self
            .base_fib
            .tunnel
            .map(|t| t.aftr)
            .map_or_else(|| "?".to_owned(), |a| a.to_string());
        if let Some(e) = self.tunnel_watch.check(now, encap, decap) {
            let (level, text) = match (&self.config.ipip, self.ipip.current) {
                (Some(_), Some(d)) => {
                    crate::ipip::tunnel_event_text(&aftr, &d.local.to_string(), e)
                }
                _ => tunnel_event_text(self.map.current.is_some(), &aftr, e),
            };
            log::log!(level, "{text}");
        }
    }

    /// Runs the LAN services with the latest WAN state; returns their next
    /// deadline.
    fn poll_lan(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> Option<Instant> {
        self.lan_services.update(now, &self.learned, &self.wan6);
        let ll = iface::link_local(&self.lan.mac);
        let ll_usable = self.neigh.usable_ipv6(Side::Lan).contains(&ll);
        let mut txs = Vec::new();
        let next = self.lan_services.poll(now, ll_usable, &mut txs);
        self.transmit(now, txs, out);
        let stale = self.lan_services.stale_prefixes(now);
        if stale != self.stale_prefixes {
            log::info!("lan: prefixes being renumbered away: {stale:?}");
            self.stale_prefixes = stale;
            self.rebuild_base_fib();
            self.base_changed = true;
        }
        next
    }

    /// Keeps each port's groups in step with its addresses (tentative ones
    /// included) and runs the MLD hosts; returns their next deadline. Run
    /// before the neighbor engine's poll, so the report for a tentative
    /// address goes out ahead of its DAD solicitation (RFC 4862 5.4.2).
    fn sync_multicast(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> Option<Instant> {
        for side in [Side::Wan, Side::Lan] {
            let i = match side {
                Side::Wan => &self.wan,
                Side::Lan => &self.lan,
            };
            // On the WAN ipoed is a host: it sends no RAs there and serves
            // no DHCPv6, so all-routers and ff02::1:2 are not its business.
            let role = ipoe_proto::mld::Role {
                router: side == Side::Lan,
                dhcpv6_server: side == Side::Lan
                    && self.config.lan.ipv6.dhcpv6 != ipoe_config::Dhcpv6Mode::Off,
            };
            let ll = iface::link_local(&i.mac);
            let source = if self.neigh.usable_ipv6(side).contains(&ll) {
                ll
            } else {
                Ipv6Addr::UNSPECIFIED
            };
            let own = self.neigh.assigned_ipv6(side);
            self.multicast
                .sync(now, side, (i.ifindex, &i.name), role, own, source);
        }
        self.multicast.poll(now, out)
    }

    /// The base `Fib` again from what the engines know now, with the LAN
    /// prefixes being renumbered away.
    fn rebuild_base_fib(&mut self) {
        self.base_fib = base_fib(
            &self.config,
            &self.wan,
            &self.lan,
            &self.learned,
            &self.map,
            &self.ipip,
        );
        self.base_fib.stale_lan_prefixes = self.stale_prefixes_octets();
    }

    fn stale_prefixes_octets(&self) -> Vec<[u8; 8]> {
        self.stale_prefixes
            .iter()
            .map(|p| {
                let mut o = [0u8; 8];
                o.copy_from_slice(&p.octets()[..8]);
                o
            })
            .collect()
    }

    /// Queues frames from the protocol engines, resolving unicast next hops.
    fn transmit(&mut self, now: Instant, frames: Vec<Tx>, out: &mut Vec<Outgoing>) {
        for tx in frames {
            match tx {
                Tx::Ready(side, frame) => out.push(Outgoing { side, frame }),
                Tx::Via(side, next_hop, frame) => {
                    self.neigh.resolve(now, side, next_hop, &frame, out)
                }
            }
        }
    }

    /// Runs the ND proxy: the proxied /64 and the router's own addresses
    /// in it from what the WAN learned, fresh LAN neighbors as verified
    /// hosts, its timers. Returns its next deadline.
    fn poll_ndproxy(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> Option<Instant> {
        let prefix = self.learned.lan_prefix.filter(|_| self.learned.proxied);
        if prefix != self.ndproxy.prefix() {
            self.ndproxy.set_prefix(prefix);
            self.multicast
                .set_allmulti(self.wan.ifindex, &self.wan.name, prefix.is_some());
        }
        // Ours but not the neighbor engine's (it answers for its own).
        let own: Vec<Ipv6Addr> = self
            .learned
            .b4
            .into_iter()
            .filter(|a| !self.learned.wan_candidates.iter().any(|c| c.0 == *a))
            .collect();
        self.ndproxy.set_own(&own);
        let p = prefix?;
        // A LAN neighbor the neighbor engine confirmed since the last look
        // is as good as the proxy's own NS/NA exchange.
        let g = self.neigh.generation();
        if g != self.neigh_generation || now >= self.ndproxy_noted + Duration::from_secs(1) {
            let since = now.saturating_duration_since(self.ndproxy_noted);
            self.ndproxy_noted = now;
            for n in self.neigh.dump(now) {
                if let (Side::Lan, IpAddr::V6(a), Some(mac)) = (n.side, n.ip, n.mac) {
                    if n.state == ipoe_proto::neigh::NeighState::Reachable
                        && n.age <= since.max(Duration::from_secs(1))
                        && crate::wan::with_iid(a, 0) == p
                    {
                        self.ndproxy.note_lan_neighbor(now, a, mac, out);
                    }
                }
            }
        }
        let next = self.ndproxy.poll(now, out);
        Some(
            next.map_or(self.ndproxy_noted + Duration::from_secs(1), |t| {
                t.min(self.ndproxy_noted + Duration::from_secs(1))
            }),
        )
    }

    /// Publish a new table when the neighbor engine, the ND proxy or the
    /// WAN learned something.
    fn publish_if_changed(&mut self) {
        let g = self.neigh.generation();
        let pg = self.ndproxy.generation();
        if g == self.neigh_generation && pg == self.ndproxy_generation && !self.base_changed {
            return;
        }
        self.neigh_generation = g;
        self.ndproxy_generation = pg;
        self.base_changed = false;
        self.publishes += 1;
        let mut fib = self.base_fib.clone();
        for (side, ip, mac) in self.neigh.entries() {
            match (side, ip) {
                (Side::Lan, IpAddr::V4(a)) => {
                    fib.arp.insert(a, mac);
                }
                (Side::Lan, IpAddr::V6(a)) => {
                    fib.nd_lan.insert(a, mac);
                }
                (Side::Wan, IpAddr::V6(a)) => {
                    if Some(a) == fib.gateway {
                        // Neighbor discovery is authoritative over the RA's
                        // source link-layer option.
                        fib.gateway_mac = Some(mac);
                    }
                    fib.nd_wan.insert(a, mac);
                }
                (Side::Wan, IpAddr::V4(_)) => {}
            }
        }
        // Verified proxied hosts are LAN hosts too (forwarding to them
        // stays on the LAN; from the WAN their addresses are spoofed).
        if fib.lan_proxy {
            for e in self.ndproxy.entries(Instant::now()) {
                if let Some(mac) = e.mac {
                    fib.nd_lan.entry(e.addr).or_insert(mac);
                }
            }
        }
        self.fib.publish(fib);
    }

    /// Apply a new, already validated config: all of it, or (when a key
    /// that needs a restart differs) none of it. Returns the keys changed.
    pub fn apply_config(&mut self, new: Config, now: Instant) -> Result<Vec<String>, String> {
        // The file's keys that need a restart are the file's to refuse.
        crate::reload::plan(&self.file_config, &new).map_err(|keys| {
            format!(
                "not applied: {} cannot change without a restart (systemctl restart ipoed); \
                 the running config stays",
                keys.join(", ")
            )
        })?;
        let provisioning_changed = new.provisioning != self.file_config.provisioning;
        let effective = crate::zeroconf::effective(&new, self.zeroconf.current.as_ref());
        let mut keys = self.apply_effective(effective, now)?;
        self.zeroconf.reconfigure(&new, now);
        self.file_config = new;
        if provisioning_changed && !keys.iter().any(|k| k.starts_with("provisioning")) {
            // Masked secrets compare equal as values.
            keys.push("provisioning".into());
        }
        if !keys.is_empty() {
            self.reloads += 1;
        }
        Ok(keys)
    }

    /// Apply a new effective config (the file's with the discovered method):
    /// all of it, or (when a key that needs a restart differs) none of it.
    fn apply_effective(&mut self, new: Config, now: Instant) -> Result<Vec<String>, String> {
        let plan = crate::reload::plan(&self.config, &new).map_err(|keys| {
            format!(
                "not applied: {} cannot change without a restart (systemctl restart ipoed); \
                 the running config stays",
                keys.join(", ")
            )
        })?;
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        let old = std::mem::replace(&mut self.config, new);
        if plan.log_level {
            log::set_max_level(crate::logger::level(self.config.control.log_level));
        }
        if plan.timeouts {
            self.firewall
                .sessions
                .set_timeouts(crate::firewall::timeouts(&self.config));
        }
        if plan.wan {
            // Only the engines whose settings changed start over; the
            // router, the SLAAC addresses, the PD lease and the AFTR
            // answer stay, so the LAN sees no change. `learned` stays
            // until the next poll compares it with what they know.
            let rebuilt = self.wan6.reconfigure(&self.config, now);
            log::info!("reload: WAN engines: {rebuilt}");
            if rebuilt.addresses {
                self.dad_reported.clear();
            }
        }
        if plan.lan {
            // Leases are on disk (written at every change): the new servers
            // start with them.
            self.lan_services.flush(now);
            let duid = match &self.wan6.dhcp {
                Some(c) => c.duid().to_vec(),
                None => crate::state::StateDir::open(&self.config.control.state_dir)
                    .duid(|| ipoe_proto::dhcp6c::duid_ll(self.wan.mac)),
            };
            self.lan_services = Lan::new(
                &self.config,
                self.lan.mac,
                self.wan.mac,
                iface::link_local(&self.lan.mac),
                duid,
                now,
            );
        }
        if plan.tables || plan.wan || plan.lan {
            self.map
                .update(&self.config, &self.learned, &self.firewall.sessions);
            let wan64 = self.wan6.ra_prefix(now).map(|a| a.addr);
            self.ipip
                .update(&self.config, &self.learned, wan64, &self.firewall.sessions);
            self.rebuild_base_fib();
            for p in [Port::Wan, Port::Lan] {
                let addrs = iface_addrs(&self.base_fib, p, &self.learned, &self.map, &self.ipip);
                self.neigh.set_addrs(side(p), addrs, now);
            }
            self.base_changed = true;
        }
        drop(old);
        Ok(plan.changed)
    }

    /// `ipoectl reload` and SIGHUP: read the config file again and apply
    /// it; on any error the running config stays and the error (with
    /// file:line:column for a bad file) is returned.
    pub fn reload_from_file(&mut self) -> Result<serde_json::Value, String> {
        crate::sdnotify::reloading();
        let result = ipoe_config::load(&self.config_path)
            .map_err(|e| format!("{e}\nnot applied: the running config stays"))
            .and_then(|new| self.apply_config(new, Instant::now()));
        crate::sdnotify::notify("READY=1");
        match &result {
            Ok(keys) if keys.is_empty() => {
                log::info!("reload: {} unchanged", self.config_path.display())
            }
            Ok(keys) => log::info!(
                "reload: {} applied ({})",
                self.config_path.display(),
                keys.join(", ")
            ),
            Err(e) => log::error!("reload refused: {}", e.replace('\n', "; ")),
        }
        result.map(|keys| {
            let message = if keys.is_empty() {
                format!("{}: no change", self.config_path.display())
            } else {
                format!(
                    "{}: applied {} change(s)",
                    self.config_path.display(),
                    keys.len()
                )
            };
            serde_json::json!({"changed": keys, "unchanged": keys.is_empty(), "message": message})
        })
    }

    /// `clear runtime`: node and worker figures count from now.
    pub fn clear_runtime(&mut self) {
        self.runtime_base = self.workers.iter().map(|w| w.stats.snapshot()).collect();
        self.runtime_cleared = Some(Instant::now());
    }

    fn shutdown(&mut self) {
        let t0 = Instant::now();
        for w in &mut self.workers {
            w.stop();
        }
        log::debug!("workers stopped after {:?}", t0.elapsed());
        for w in &self.workers {
            for (p, qs) in [(Port::Wan, &w.wan_queues), (Port::Lan, &w.lan_queues)] {
                for &q in qs {
                    let _ = self.redirector.unregister_socket(p as u32, q);
                }
            }
        }
        // Closing the bpf_link fds detaches the program.
        self.attachments.clear();
        log::debug!("XDP detached after {:?}", t0.elapsed());
        self.workers.clear();
        log::debug!("AF_XDP sockets closed after {:?}", t0.elapsed());
    }
}

/// The log line of a tunnel watch event, naming the tunnel and its far
/// end as the operator knows them: MAP-E has a BR, not an AFTR.
pub fn tunnel_event_text(
    map_e: bool,
    far_addr: &str,
    e: ipoe_proto::tunnel_watch::Event,
) -> (log::Level, String) {
    let (kind, far) = if map_e {
        ("map-e", "BR")
    } else {
        ("dslite", "AFTR")
    };
    match e {
        ipoe_proto::tunnel_watch::Event::Silent { for_s, sent } => (
            log::Level::Warn,
            format!(
                "{kind}: nothing from the {far} {far_addr} for {for_s} s while {sent} packets \
                 went to it ({far} down or unreachable?)"
            ),
        ),
        ipoe_proto::tunnel_watch::Event::Back { after_s } => (
            log::Level::Info,
            format!("{kind}: the {far} {far_addr} answers again (silent for {after_s} s)"),
        ),
    }
}

/// The inner MTU of the tunnel: `dslite.mtu` (or `wan.mtu - 40`), lowered
/// to what the WAN link (the RA's MTU) and the path to the AFTR (Packet Too
/// Big) carry, each minus the outer header (RFC 2473 7.1).
pub fn tunnel_mtu(config: &Config, learned: &Learned) -> u16 {
    let link = wan_mtu(config, learned);
    let path = learned.tunnel_pmtu.map_or(link, |(m, _)| m.min(link));
    config.tunnel_mtu().min(path - 40)
}

fn wan_mtu(config: &Config, learned: &Learned) -> u16 {
    match learned.wan_mtu {
        0 => config.wan.mtu,
        m => m.min(config.wan.mtu),
    }
}

/// The Fib from the config, the interfaces, what the WAN learned and, with
/// MAP-E, the mapping (its tunnel, bindings and clamp replace DS-Lite's).
fn base_fib(
    config: &Config,
    wan: &Interface,
    lan: &Interface,
    learned: &Learned,
    map: &crate::map_e::MapState,
    ipip: &crate::ipip::IpipState,
) -> Fib {
    let tun_mtu = tunnel_mtu(config, learned);
    let tunnel = match (learned.b4, learned.aftr) {
        (Some(b4), Some(aftr)) => Some(Tunnel {
            b4,
            aftr,
            mtu: tun_mtu,
            hop_limit: learned
                .hop_limit
                .unwrap_or(ipoe_dataplane::nodes::dslite_encap::OUTER_HOP_LIMIT),
        }),
        _ => None,
    };
    let mut firewall = crate::firewall::policy(config);
    // TCP through a narrower tunnel than configured needs no PMTUD round.
    firewall.mss_clamp_v4 = firewall.mss_clamp_v4.map(|mss| mss.min(tun_mtu - 40));
    let mut fib = Fib {
        wan: PortAddrs {
            mac: wan.mac,
            mtu: wan_mtu(config, learned),
            link_local: Some(iface::link_local(&wan.mac)),
            ipv6: learned.wan_address,
        },
        lan: PortAddrs {
            mac: lan.mac,
            mtu: config.lan.mtu,
            link_local: Some(iface::link_local(&lan.mac)),
            ipv6: learned.lan_address,
        },
        lan_ipv4: Some((config.lan.ipv4.addr, config.lan.ipv4.len)),
        lan_prefix: learned.lan_prefix,
        lan_proxy: learned.proxied,
        tunnel,
        gateway: learned.gateway,
        // Until neighbor discovery confirms it, the RA's source link-layer
        // option is the best knowledge of the router's MAC.
        gateway_mac: learned.gateway_mac,
        firewall,
        ..Default::default()
    };
    map.apply(&mut fib, learned.hop_limit);
    ipip.apply(config, &mut fib, learned.hop_limit);
    fib
}

fn iface_addrs(
    fib: &Fib,
    p: Port,
    learned: &Learned,
    map: &crate::map_e::MapState,
    ipip: &crate::ipip::IpipState,
) -> IfaceAddrs {
    let pa = fib.port(p);
    let ipv6: Vec<(Ipv6Addr, u8)> = match p {
        Port::Wan => {
            let mut v = learned.wan_candidates.clone();
            // An on-link CE address is resolved by the BR's side of the
            // link like any address of ours: answered, and defended (DAD).
            let own = map
                .wan_address(&learned.wan_candidates)
                .or(ipip.wan_address(&learned.wan_candidates));
            if let Some(ce) = own {
                if !v.iter().any(|c| c.0 == ce) {
                    v.push((ce, 128));
                }
            }
            v
        }
        Port::Lan => pa.ipv6.map(|a| vec![(a, 64)]).unwrap_or_default(),
    };
    IfaceAddrs {
        mac: pa.mac,
        ipv4: match p {
            Port::Lan => fib.lan_ipv4,
            Port::Wan => None,
        },
        link_local: pa.link_local.unwrap_or(Ipv6Addr::UNSPECIFIED),
        ipv6,
        mtu: pa.mtu,
    }
}

/// One log line per thing that changed, so the log tells the story of the
/// WAN without a line per poll.
fn log_learned(old: &Learned, new: &Learned) {
    fn show<T: std::fmt::Display>(v: &Option<T>) -> String {
        v.as_ref()
            .map_or_else(|| "none".to_owned(), |v| v.to_string())
    }
    if old.wan_address != new.wan_address {
        log::info!(
            "wan: address {} (was {})",
            show(&new.wan_address),
            show(&old.wan_address)
        );
    }
    if old.gateway != new.gateway {
        match new.gateway {
            Some(gw) => log::info!("wan: default router {gw}"),
            None => log::warn!(
                "wan: no default router (was {}); IPv6 to the internet and DS-Lite stop",
                show(&old.gateway)
            ),
        }
    }
    if old.delegated != new.delegated {
        let d = |p: &Option<(Ipv6Addr, u8)>| {
            p.map_or_else(|| "none".to_owned(), |(a, l)| format!("{a}/{l}"))
        };
        log::info!(
            "wan: delegated prefix {} (was {})",
            d(&new.delegated),
            d(&old.delegated)
        );
    }
    if old.lan_prefix != new.lan_prefix {
        log::info!(
            "lan: prefix {} (was {})",
            new.lan_prefix
                .map_or_else(|| "none".to_owned(), |p| format!("{p}/64")),
            old.lan_prefix
                .map_or_else(|| "none".to_owned(), |p| format!("{p}/64"))
        );
    }
    if old.pd_error != new.pd_error {
        if let Some(e) = &new.pd_error {
            log::error!("lan: {e}");
        }
    }
    if (old.b4, old.aftr) != (new.b4, new.aftr) {
        match (new.b4, new.aftr) {
            (Some(b4), Some(aftr)) => log::info!(
                "dslite: tunnel {b4} -> {aftr} (AFTR from {})",
                new.aftr_source.map_or("?", |s| s.as_str())
            ),
            _ => log::warn!(
                "dslite: tunnel down (B4 {}, AFTR {}); IPv4 from the LAN is dropped (no-tunnel)",
                show(&new.b4),
                show(&new.aftr)
            ),
        }
    }
}

/// Run until SIGINT/SIGTERM. Returns after a clean shutdown.
pub fn run(config: Config, config_path: &Path) -> Result<()> {
    let wake = Notify::new()?;
    install_signals(&wake);
    let mut ctl = CtlServer::bind(&config.control.socket, config.control.group.as_deref())?;
    // Bound before the privileges go (a port below 1024 needs them).
    let mut metrics = match Metrics::start(&config) {
        Ok(m) => m,
        Err(e) => {
            ctl.remove();
            return Err(e);
        }
    };
    let mut router = match Router::start(config, config_path) {
        Ok(r) => r,
        Err(e) => {
            ctl.remove();
            return Err(e);
        }
    };
    log::info!("ipoed {} running", env!("CARGO_PKG_VERSION"));
    // XDP is attached and the first table is published (Router::start):
    // systemd may start what depends on the network now.
    crate::sdnotify::notify(&format!(
        "READY=1\nSTATUS=forwarding on {} (WAN) and {} (LAN)\nMAINPID={}",
        router.wan.name,
        router.lan.name,
        std::process::id()
    ));
    let control_fd = router.workers[0].channels.to_control.fd();
    let mut out = Vec::new();
    let mut status = crate::status::StatusPage::default();

    while !STOP.load(Ordering::SeqCst) {
        let now = Instant::now();
        router.drain_punts(now, &mut out);
        router.sync_multicast(now, &mut out);
        let next = router.neigh.poll(now, &mut out);
        let next_wan = router.poll_wan(now, &mut out);
        let next_lan = router.poll_lan(now, &mut out);
        // The WAN may have added addresses whose DAD starts now.
        let next_mcast = router.sync_multicast(now, &mut out);
        let next_ndproxy = router.poll_ndproxy(now, &mut out);
        let next_neigh = router.neigh.poll(now, &mut out);
        let next_fw = router.firewall.poll(now);
        router.map.tick(router.firewall.now_s(now));
        router.ipip.tick(router.firewall.now_s(now));
        let next = [
            next,
            next_wan,
            next_lan,
            next_mcast,
            next_neigh,
            next_ndproxy,
            Some(next_fw),
        ]
        .into_iter()
        .flatten()
        .min();
        let next_metrics = metrics.poll_lan(&mut router, now, &mut out);
        let next_status = status.poll(&mut router, now, &mut out);
        let next = next
            .into_iter()
            .chain(next_metrics)
            .chain(next_status)
            .min();
        router.send(&mut out);
        router.publish_if_changed();

        let timeout = next
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        let mut fds = vec![
            libc::pollfd {
                fd: control_fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake.fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        ctl.add_pollfds(&mut fds);
        let metrics_fds = fds.len();
        if let Some(k) = &metrics.kernel {
            k.add_pollfds(&mut fds);
        }
        // SAFETY: valid pollfd array for the duration of the call.
        unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                timeout.as_millis().max(1) as i32,
            )
        };
        if fds[0].revents != 0 {
            router.workers[0].channels.to_control.drain();
        }
        if fds[1].revents != 0 {
            wake.drain();
        }
        ctl.service(&fds[2..metrics_fds], &mut router);
        if let Some(k) = &mut metrics.kernel {
            k.service(Instant::now(), &mut || {
                render_metrics(&router, &metrics.counters)
            });
        }
        metrics.counters = metrics.kernel_counters();
        if RELOAD.swap(false, Ordering::SeqCst) {
            log::info!("SIGHUP: reloading {}", router.config_path.display());
            let _ = router.reload_from_file();
        }
    }
    crate::sdnotify::notify("STOPPING=1");
    log::info!("shutting down");
    // RFC 4861 6.2.5: tell the LAN we stop being a router.
    let finals = router.lan_services.shutdown(Instant::now());
    for (k, frame) in finals.into_iter().enumerate() {
        if k > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        out.push(Outgoing {
            side: Side::Lan,
            frame,
        });
        router.send(&mut out);
    }
    // Tell snooping switches we are gone (the NIC filter entries go with
    // the socket).
    for side in [Side::Wan, Side::Lan] {
        for frame in router.multicast.mld(side).leave_all(Instant::now()) {
            out.push(Outgoing { side, frame });
        }
    }
    router.send(&mut out);
    // Let the worker transmit them before the sockets close.
    std::thread::sleep(Duration::from_millis(20));
    if let Some(release) = router.wan6.shutdown(Instant::now()) {
        log::info!("dhcpv6-pd: sending Release (release_on_shutdown)");
        out.push(Outgoing {
            side: Side::Wan,
            frame: release,
        });
        router.send(&mut out);
        // Let the worker transmit it before the sockets close.
        std::thread::sleep(Duration::from_millis(20));
    }
    router.shutdown();
    ctl.remove();
    Ok(())
}

/// The metrics listener of `control.metrics`: a kernel socket on loopback,
/// or a server on ipoed's own TCP (smoltcp) for the LAN address.
struct Metrics {
    kernel: Option<crate::metrics::MetricsServer>,
    lan: Option<crate::metrics::LanMetrics>,
    /// The servers' own counters, for the next scrape.
    counters: Vec<(&'static str, Vec<(&'static str, u64)>)>,
}

impl Metrics {
    fn start(config: &Config) -> Result<Self> {
        let mut m = Metrics {
            kernel: None,
            lan: None,
            counters: Vec::new(),
        };
        match config.control.metrics {
            Some(addr) if addr.ip().is_loopback() => {
                m.kernel = Some(
                    crate::metrics::MetricsServer::bind(addr)
                        .with_context(|| format!("control.metrics {addr}"))?,
                );
                log::info!("metrics: http://{addr}/metrics");
            }
            Some(addr) => {
                m.lan = Some(crate::metrics::LanMetrics::new(
                    addr.ip(),
                    addr.port(),
                    8,
                    Instant::now(),
                ));
                log::info!("metrics: http://{addr}/metrics (LAN)");
            }
            None => {}
        }
        Ok(m)
    }

    fn kernel_counters(&self) -> Vec<(&'static str, Vec<(&'static str, u64)>)> {
        let mut v = Vec::new();
        if let Some(k) = &self.kernel {
            v.push(("kernel", k.counters()));
        }
        if let Some(l) = &self.lan {
            v.push(("lan", l.counters()));
        }
        v
    }

    /// Feed the LAN server what the workers punted, and send its answers.
    fn poll_lan(
        &mut self,
        router: &mut Router,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Option<Instant> {
        let lan = self.lan.as_mut()?;
        for p in router.metrics_inbox.drain(..) {
            lan.push_ip(now, &p);
        }
        let counters = self.counters.clone();
        let mut packets = Vec::new();
        let next = lan.poll(now, &mut || render_metrics(router, &counters), &mut packets);
        router.send_ip_lan(now, packets, out);
        self.counters = self.kernel_counters();
        next
    }
}

/// One scrape: the same JSON the CLI shows, as Prometheus text.
fn render_metrics(router: &Router, servers: &[(&'static str, Vec<(&'static str, u64)>)]) -> String {
    let (interfaces, errors, runtime, tunnel) = (
        crate::report::interfaces(router),
        crate::report::errors_since_start(router),
        crate::report::runtime_since_start(router),
        crate::report::tunnel(router),
    );
    let (firewall, pd, leases, wan) = (
        crate::report::firewall(router),
        crate::report::pd(router),
        crate::report::leases(router),
        crate::report::wan(router),
    );
    let mut text = crate::metrics::render(&crate::metrics::Inputs {
        interfaces: &interfaces,
        errors: &errors,
        runtime: &runtime,
        tunnel: &tunnel,
        firewall: &firewall,
        pd: &pd,
        leases: &leases,
        wan: &wan,
        map: &router.map.report(&router.config),
    });
    let listeners: Vec<(&str, Vec<(&'static str, u64)>)> =
        servers.iter().map(|(n, c)| (*n, c.clone())).collect();
    text.push_str(&crate::metrics::render_exporter(&listeners));
    text
}
