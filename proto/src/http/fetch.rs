//! One HTTP(S) fetch over the router's own TCP: a smoltcp interface
//! (`Medium::Ip` over [`QueueDevice`]) with one client socket, under the
//! [`Exchange`]. The integrator pushes the IP packets of the connection
//! ([`Fetch::push_ip`]: TCP from the server to our source address and
//! port, anything else is refused and counted) and sends what
//! [`Fetch::poll`] returns, at the latest by the instant it returns.
//!
//! The URL's host is not resolved here: the caller gives the server's
//! address (a literal from the URL, or what its resolver found) and the
//! source address (for HB46PP the WAN address, for a fixed-IP update the
//! tunnel's local address). Timeouts are timers of the engine: the
//! connection must be established within `connect_timeout` and the whole
//! response read within `timeout`; either way the socket is aborted (RST)
//! and the fetch ends with an error. A redirect is a response like any
//! other ([`super::Response::location`]): following it is the caller's
//! decision (a new `Fetch`).
//!
//! smoltcp's clock is derived from the `Instant`s passed in, relative to
//! the first one; nothing here reads a clock.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address, Ipv6Address};

use super::exchange::{Exchange, FetchError, RequestOptions};
use super::response::Response;
use super::target::Target;
use crate::smoldev::{segment_meta, smol_duration, QueueDevice};

/// Packets queued by `push_ip` before the next poll.
const MAX_INBOX: usize = 256;
/// Receive window: a whole default-limit body fits, so the server is
/// never stalled by a slow reader.
const RX_BUFFER: usize = 64 * 1024;
const TX_BUFFER: usize = 16 * 1024;
/// First ephemeral source port (RFC 6335 dynamic range).
const EPHEMERAL_FIRST: u16 = 49152;

/// One fetch's setup.
#[derive(Clone, Debug)]
pub struct FetchConfig {
    pub target: Target,
    /// The server's address (the URL's host, resolved by the caller).
    pub remote: IpAddr,
    /// Our source address.
    pub local: IpAddr,
    pub options: RequestOptions,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl FetchConfig {
    /// 10 s to connect, 30 s for the whole exchange.
    pub fn new(target: Target, remote: IpAddr, local: IpAddr, options: RequestOptions) -> Self {
        FetchConfig {
            target,
            remote,
            local,
            options,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
        }
    }
}

named_counters! {
    /// What one fetch saw of the packets pushed to it.
    pub struct FetchCounters {
        /// Packets of the connection taken in.
        rx_packets => "rx-packets",
        /// Packets that are not TCP from the server to our port.
        drop_not_ours => "drop-not-ours",
        /// Packets dropped because the inbox was full.
        drop_queue_full => "drop-queue-full",
        /// Packets sent.
        tx_packets => "tx-packets",
    }
}

/// The fetch; see the module documentation.
pub struct Fetch {
    iface: Interface,
    device: QueueDevice,
    sockets: SocketSet<'static>,
    handle: SocketHandle,
    exchange: Exchange,
    local: IpEndpoint,
    remote: IpEndpoint,
    base: Instant,
    connect_deadline: Instant,
    deadline: Instant,
    established: bool,
    inbox: VecDeque<Vec<u8>>,
    outcome: Option<Result<Response, FetchError>>,
    /// The exchange is over (the outcome may have been taken since).
    ended: bool,
    /// The abort's RST has been handed out.
    finished: bool,
    counters: FetchCounters,
}

impl std::fmt::Debug for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetch")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("established", &self.established)
            .field("outcome", &self.outcome)
            .finish()
    }
}

fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}

impl Fetch {
    /// Starts connecting at the next poll. `seed` seeds smoltcp (initial
    /// sequence numbers) and picks the source port: give it the kernel's
    /// randomness ([`crate::osrand::random_u64`]) outside tests, so an
    /// off-path attacker cannot guess the connection.
    pub fn new(now: Instant, cfg: FetchConfig, seed: u64) -> Result<Self, FetchError> {
        let exchange = Exchange::new(&cfg.target, &cfg.options)?;
        let (local_ip, remote_ip) = match (cfg.local, cfg.remote) {
            (IpAddr::V6(l), IpAddr::V6(r)) => (IpAddress::Ipv6(l), IpAddress::Ipv6(r)),
            (IpAddr::V4(l), IpAddr::V4(r)) => (IpAddress::Ipv4(l), IpAddress::Ipv4(r)),
            _ => {
                return Err(FetchError::Config(format!(
                    "source {} and server {} are of different families",
                    cfg.local, cfg.remote
                )))
            }
        };
        if cfg.local.is_unspecified() || cfg.remote.is_unspecified() || cfg.remote.is_multicast() {
            return Err(FetchError::Config(
                "unspecified or multicast address".into(),
            ));
        }
        let mut device = QueueDevice::default();
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut device, SmolInstant::ZERO);
        iface.update_ip_addrs(|addrs| {
            let len = if cfg.local.is_ipv6() { 128 } else { 32 };
            let _ = addrs.push(IpCidr::new(local_ip, len));
        });
        // Medium::Ip has no next hop to resolve: the gateways are never
        // used as addresses, they only make every destination routable.
        let routes = iface.routes_mut();
        let _ = routes.add_default_ipv4_route(Ipv4Address::new(192, 0, 0, 1));
        let _ = routes.add_default_ipv6_route(Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; RX_BUFFER]),
            tcp::SocketBuffer::new(vec![0; TX_BUFFER]),
        );
        socket.set_nagle_enabled(false);
        // Retransmissions give up with the fetch's own timeout, not later.
        socket.set_timeout(Some(smol_duration(cfg.timeout)));
        let port_span = u64::from(u16::MAX - EPHEMERAL_FIRST) + 1;
        let port = EPHEMERAL_FIRST + ((seed >> 17) % port_span) as u16;
        let local = IpEndpoint::new(local_ip, port);
        let remote = IpEndpoint::new(remote_ip, cfg.target.port());
        socket
            .connect(iface.context(), remote, local)
            .map_err(|e| FetchError::Config(format!("connect: {e}")))?;
        let mut sockets = SocketSet::new(Vec::new());
        let handle = sockets.add(socket);
        Ok(Fetch {
            iface,
            device,
            sockets,
            handle,
            exchange,
            local,
            remote,
            base: now,
            connect_deadline: later(now, cfg.connect_timeout),
            deadline: later(now, cfg.timeout),
            established: false,
            inbox: VecDeque::new(),
            outcome: None,
            ended: false,
            finished: false,
            counters: FetchCounters::default(),
        })
    }

    /// Our source address and port.
    pub fn local(&self) -> SocketAddr {
        SocketAddr::new(self.local.addr.into(), self.local.port)
    }

    pub fn remote(&self) -> SocketAddr {
        SocketAddr::new(self.remote.addr.into(), self.remote.port)
    }

    pub fn counters(&self) -> &FetchCounters {
        &self.counters
    }

    /// Whether this packet belongs to the connection (TCP from the server
    /// to our port); the integrator can use it to route punted packets.
    pub fn is_ours(&self, packet: &[u8]) -> bool {
        segment_meta(packet).is_some_and(|m| m.src == self.remote && m.dst == self.local)
    }

    /// An IP packet received for the connection.
    pub fn push_ip(&mut self, packet: &[u8]) {
        if !self.is_ours(packet) {
            self.counters.drop_not_ours += 1;
            return;
        }
        if self.inbox.len() >= MAX_INBOX {
            self.counters.drop_queue_full += 1;
            return;
        }
        self.counters.rx_packets += 1;
        self.inbox.push_back(packet.to_vec());
    }

    fn smol_now(&self, now: Instant) -> SmolInstant {
        let micros = now.saturating_duration_since(self.base).as_micros();
        SmolInstant::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
    }

    /// Runs the connection: packets to send go to `out`; returns when to
    /// poll next (`None` once the fetch is over and its last packet out).
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) -> Option<Instant> {
        let ts = self.smol_now(now);
        while let Some(packet) = self.inbox.pop_front() {
            self.device.rx.push_back(packet);
            self.iface
                .poll_ingress_single(ts, &mut self.device, &mut self.sockets);
        }
        // Two turns: what the socket received is answered (TLS records,
        // the request) in the same poll.
        for _ in 0..2 {
            self.iface.poll(ts, &mut self.device, &mut self.sockets);
            self.drive(now);
        }
        self.iface.poll(ts, &mut self.device, &mut self.sockets);
        self.counters.tx_packets += self.device.tx.len() as u64;
        out.append(&mut self.device.tx);
        if self.ended {
            self.finished = true;
            return None;
        }
        let next = if self.established {
            self.deadline
        } else {
            self.connect_deadline.min(self.deadline)
        };
        let smol_next = self.iface.poll_at(ts, &self.sockets).map(|at| {
            let micros = u64::try_from(at.total_micros()).unwrap_or(0);
            later(self.base, Duration::from_micros(micros)).max(now)
        });
        Some(smol_next.map_or(next, |s| s.min(next)))
    }

    fn drive(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        let socket = self.sockets.get_mut::<tcp::Socket>(self.handle);
        let state = socket.state();
        if !self.established {
            match state {
                tcp::State::Established | tcp::State::CloseWait => self.established = true,
                tcp::State::Closed => return self.end(Err(FetchError::Refused)),
                _ => {
                    if now >= self.connect_deadline || now >= self.deadline {
                        return self.end(Err(FetchError::ConnectTimeout));
                    }
                    return;
                }
            }
        }
        // Received bytes, before anything else: they may finish the
        // response or need an answer (TLS).
        while socket.can_recv() {
            let exchange = &mut self.exchange;
            let taken = socket.recv(|buf| {
                exchange.on_bytes(buf);
                (buf.len(), buf.len())
            });
            if !matches!(taken, Ok(n) if n > 0) {
                break;
            }
        }
        while !self.exchange.output().is_empty() && socket.can_send() {
            match socket.send_slice(self.exchange.output()) {
                Ok(n) if n > 0 => self.exchange.consume_output(n),
                _ => break,
            }
        }
        if !socket.may_recv() && !self.exchange.is_done() {
            // The server's FIN, or a reset (smoltcp goes to Closed on RST).
            if state == tcp::State::Closed {
                self.exchange.fail(FetchError::Reset);
            } else {
                self.exchange.on_eof();
            }
        }
        if !self.exchange.is_done() && now >= self.deadline {
            self.exchange.fail(FetchError::Timeout);
        }
        if let Some(result) = self.exchange.take_result() {
            self.end(result);
        }
    }

    /// Ends the fetch: the connection is reset (one RST, no lingering
    /// state: the request said `Connection: close`).
    fn end(&mut self, result: Result<Response, FetchError>) {
        match &result {
            Ok(r) => log::debug!("http: {} {} from {}", r.status, r.reason, self.remote),
            Err(e) => log::debug!("http: fetch from {} failed: {e}", self.remote),
        }
        self.sockets.get_mut::<tcp::Socket>(self.handle).abort();
        self.outcome = Some(result);
        self.ended = true;
    }

    /// The result, once the fetch is over.
    pub fn outcome(&self) -> Option<&Result<Response, FetchError>> {
        self.outcome.as_ref()
    }

    pub fn take_outcome(&mut self) -> Option<Result<Response, FetchError>> {
        self.outcome.take()
    }

    /// Over, with its last packet handed out: the fetch can be dropped.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}
