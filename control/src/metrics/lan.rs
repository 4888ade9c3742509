//! HTTP on the LAN addresses, on a smoltcp TCP stack: the metrics
//! (`control.metrics` on a LAN address) and the status page (port 80,
//! `crate::status`), each its own [`LanHttp`] with its own sockets.
//!
//! AF_XDP takes every frame of the LAN interface, so the kernel never sees
//! a connection to the router's LAN address. As for DNS over TCP
//! (`dnsproxy/tcp.rs`, whose device and filter are private to it, hence
//! the copies here), a smoltcp [`Interface`] with `Medium::Ip` runs over a
//! pair of packet queues: the integrator pushes the raw IP packets of TCP
//! segments to `addr:port` ([`LanHttp::push_ip`]) and sends the IP
//! packets that come out of [`LanHttp::poll`] (or [`LanHttp::serve`]).
//!
//! * The interface runs in "any IP" mode with catch-all routes and no
//!   address of its own (smoltcp panics on a non-unicast address, and the
//!   address may change with the prefix); [`LanHttp::wants`] and the
//!   check in `push_ip` are the filter.
//! * A fixed pool of sockets listens; each serves one connection at a
//!   time, one request per connection ([`super::http::Exchange`]). With
//!   every slot busy a new SYN finds no listener and smoltcp answers RST
//!   (counted as `refused`).
//! * The response (100 KB and more) is written into the socket as its
//!   buffer drains, across polls, at the pace the peer's window allows.
//! * A connection with no progress for [`IDLE_TIMEOUT`] is closed (still
//!   reading) or aborted (not taking the response); one whose close does
//!   not finish within another idle timeout is aborted.
//!
//! smoltcp's clock is derived from the `Instant`s passed in, relative to
//! the one given to [`LanHttp::new`]; nothing here reads a clock.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;

use ipoe_proto::smoldev::{segment_meta, smol_duration, QueueDevice, SegmentMeta};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{HardwareAddress, Ipv4Address, Ipv6Address};

use super::http::{route, Exchange, Handler, Outcome};
use super::{later, IDLE_TIMEOUT};

pub use ipoe_proto::smoldev::MTU;
/// Most sockets, whatever `new` is asked for.
pub const MAX_SLOTS: usize = 64;
/// Packets queued by `push_ip` before the next poll.
const MAX_INBOX: usize = 256;
/// The request head is read in pieces; it needs no more.
const RX_BUFFER: usize = 4096;
/// Response bytes in flight or queued per connection.
const TX_BUFFER: usize = 32 * 1024;

ipoe_proto::named_counters! {
    /// What the LAN listener did.
    pub struct LanCounters {
        /// IP packets taken by `push_ip`.
        rx_packets => "rx-packets",
        /// IP packets sent.
        tx_packets => "tx-packets",
        /// IP packets refused by `push_ip`: not TCP to our address and port.
        not_ours => "not-ours",
        /// IP packets dropped: too many queued before a poll.
        queue_full => "queue-full",
        /// Connections established.
        accepted => "accepted",
        /// Well-formed requests answered (any status, 404 and 405 too).
        served => "served",
        /// Connection attempts answered with RST: every slot in use.
        refused => "refused",
        /// Malformed, oversized or non-HTTP/1.x requests (400, 431, 505).
        bad_requests => "bad-requests",
        /// Connections closed or aborted for making no progress for 5 s.
        timeouts => "timeouts",
        /// Connections aborted because their close did not finish.
        aborted => "aborted",
    }
}

/// One established connection.
struct Conn {
    peer: SocketAddr,
    exchange: Exchange,
    last_active: Instant,
    /// When we closed (or aborted) it.
    closing_since: Option<Instant>,
}

struct Slot {
    handle: SocketHandle,
    conn: Option<Conn>,
}

/// Serves HTTP on one port of a few LAN addresses; see the module docs.
pub struct LanHttp {
    /// Never empty; the first is the one given to `new`.
    addrs: Vec<IpAddr>,
    port: u16,
    /// Names the server in the log.
    label: &'static str,
    iface: Interface,
    device: QueueDevice,
    sockets: SocketSet<'static>,
    slots: Vec<Slot>,
    /// The `std` instant that is smoltcp's zero.
    base: Instant,
    inbox: VecDeque<Vec<u8>>,
    counters: LanCounters,
}

/// The metrics' server: a [`LanHttp`] on one address.
pub type LanMetrics = LanHttp;

/// Most addresses one server answers on.
pub const MAX_ADDRS: usize = 8;

impl LanHttp {
    /// Serves `addr:port` with `slots` sockets (1 to [`MAX_SLOTS`]); `now`
    /// becomes the stack's clock zero.
    pub fn new(addr: IpAddr, port: u16, slots: usize, now: Instant) -> Self {
        let mut device = QueueDevice::default();
        let mut config = Config::new(HardwareAddress::Ip);
        // Initial sequence numbers: unpredictable enough for a LAN
        // service, without a source of randomness to pass in.
        config.random_seed = seed(addr, port);
        let mut iface = Interface::new(config, &mut device, SmolInstant::ZERO);
        // Accept every destination (push_ip filters) and route every reply
        // back out: with Medium::Ip there is no next hop to resolve, the
        // gateways are never used as addresses.
        iface.set_any_ip(true);
        let routes = iface.routes_mut();
        let _ = routes.add_default_ipv4_route(Ipv4Address::new(192, 0, 0, 1));
        let _ = routes.add_default_ipv6_route(Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
        let mut sockets = SocketSet::new(Vec::new());
        let slots = (0..slots.clamp(1, MAX_SLOTS))
            .map(|_| Slot {
                handle: sockets.add(listener(port)),
                conn: None,
            })
            .collect();
        if port == 0 {
            log::warn!("metrics: LAN port 0, nothing will be served");
        }
        LanHttp {
            addrs: vec![addr],
            port,
            label: "metrics",
            iface,
            device,
            sockets,
            slots,
            base: now,
            inbox: VecDeque::new(),
            counters: LanCounters::default(),
        }
    }

    /// Names the server in the log lines (`metrics` by default).
    pub fn with_label(mut self, label: &'static str) -> Self {
        self.label = label;
        self
    }

    /// The address served (the first, when there are several).
    pub fn addr(&self) -> IpAddr {
        self.addrs[0]
    }

    /// Serves these addresses from now on (the LAN's change with the
    /// prefix); at most [`MAX_ADDRS`], and an empty list changes nothing.
    /// Connections in progress go on.
    pub fn set_addrs(&mut self, addrs: &[IpAddr]) {
        if addrs.is_empty() || addrs == self.addrs.as_slice() {
            return;
        }
        self.addrs = addrs.iter().copied().take(MAX_ADDRS).collect();
    }

    /// Whether a TCP segment to `dst:dst_port` is for this listener.
    pub fn wants(&self, dst: IpAddr, dst_port: u16) -> bool {
        self.port != 0 && dst_port == self.port && self.addrs.contains(&dst)
    }

    /// Counters as `(kebab-case name, value)`.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        self.counters.named()
    }

    /// Connections in progress.
    pub fn connections(&self) -> Vec<SocketAddr> {
        self.slots
            .iter()
            .filter_map(|s| s.conn.as_ref().map(|c| c.peer))
            .collect()
    }

    /// Queues a raw IPv4 or IPv6 packet carrying a TCP segment to
    /// `addr:port`; anything else is dropped (`not-ours`). Handled at the
    /// next [`LanMetrics::poll`].
    pub fn push_ip(&mut self, _now: Instant, ip_packet: &[u8]) {
        let ours = segment_meta(ip_packet)
            .is_some_and(|meta| self.wants(meta.dst.addr.into(), meta.dst.port));
        if !ours {
            self.counters.not_ours += 1;
            return;
        }
        if self.inbox.len() >= MAX_INBOX {
            self.counters.queue_full += 1;
            return;
        }
        self.counters.rx_packets += 1;
        self.inbox.push_back(ip_packet.to_vec());
    }

    fn smol_now(&self, now: Instant) -> SmolInstant {
        let micros = now.saturating_duration_since(self.base).as_micros();
        SmolInstant::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
    }

    fn std_at(&self, at: SmolInstant, now: Instant) -> Instant {
        let micros = u64::try_from(at.total_micros()).unwrap_or(0);
        later(self.base, Duration::from_micros(micros)).max(now)
    }

    /// Whether a socket takes this SYN: one is listening, or it is the
    /// retransmission of a SYN a socket already took.
    fn takes_syn(&self, meta: &SegmentMeta) -> bool {
        self.slots.iter().any(|slot| {
            let socket = self.sockets.get::<tcp::Socket>(slot.handle);
            socket.state() == tcp::State::Listen
                || (socket.remote_endpoint() == Some(meta.src)
                    && socket.local_endpoint() == Some(meta.dst))
        })
    }

    /// Handles the queued packets, reads requests, answers them (calling
    /// `render` once per metrics request), runs the timers; appends the IP
    /// packets to send to `out`. Returns when to call it again (it must
    /// also be called after every `push_ip`).
    pub fn poll(
        &mut self,
        now: Instant,
        render: &mut dyn FnMut() -> String,
        out: &mut Vec<Vec<u8>>,
    ) -> Option<Instant> {
        self.serve(now, &mut |request| route(request, render), out)
    }

    /// [`LanHttp::poll`] for any server: `handler` answers each parsed
    /// request.
    pub fn serve(
        &mut self,
        now: Instant,
        handler: &mut Handler<'_>,
        out: &mut Vec<Vec<u8>>,
    ) -> Option<Instant> {
        let ts = self.smol_now(now);
        for index in 0..self.slots.len() {
            self.recycle(index);
        }
        // One packet at a time, so a SYN meeting no listener is seen.
        while let Some(packet) = self.inbox.pop_front() {
            if let Some(meta) = segment_meta(&packet) {
                if meta.syn && !meta.ack && !meta.rst && !self.takes_syn(&meta) {
                    self.counters.refused += 1;
                    log::debug!(
                        "{}: LAN TCP from {} refused, every slot in use",
                        self.label,
                        meta.src
                    );
                }
            }
            self.device.rx.push_back(packet);
            self.iface
                .poll_ingress_single(ts, &mut self.device, &mut self.sockets);
        }
        self.iface.poll(ts, &mut self.device, &mut self.sockets);
        for index in 0..self.slots.len() {
            self.drive(index, now, handler);
        }
        self.iface.poll(ts, &mut self.device, &mut self.sockets);
        for index in 0..self.slots.len() {
            self.recycle(index);
        }
        self.counters.tx_packets += self.device.tx.len() as u64;
        out.append(&mut self.device.tx);

        let mut next = self
            .iface
            .poll_at(ts, &self.sockets)
            .map(|at| self.std_at(at, now));
        for slot in &self.slots {
            if let Some(conn) = &slot.conn {
                let since = conn.closing_since.unwrap_or(conn.last_active);
                let at = later(since, IDLE_TIMEOUT).max(now);
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        next
    }

    /// Returns closed sockets to listening and forgets their connection.
    fn recycle(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        let ended = ipoe_proto::smoldev::recycle(
            &mut self.sockets,
            &mut slot.handle,
            self.port,
            IDLE_TIMEOUT,
            (RX_BUFFER, TX_BUFFER),
        );
        if ended {
            if let Some(conn) = slot.conn.take() {
                log::debug!(
                    "{}: LAN TCP connection from {} ended",
                    self.label,
                    conn.peer
                );
            }
        }
    }

    /// Reads the request, writes the response as the socket takes it,
    /// closes when it is all in, and runs the idle timer.
    fn drive(&mut self, index: usize, now: Instant, handler: &mut Handler<'_>) {
        let label = self.label;
        let counters = &mut self.counters;
        let slot = &mut self.slots[index];
        let socket = self.sockets.get_mut::<tcp::Socket>(slot.handle);
        if slot.conn.is_none() {
            if !matches!(
                socket.state(),
                tcp::State::Established | tcp::State::CloseWait
            ) {
                return;
            }
            let Some(peer) = socket.remote_endpoint() else {
                return;
            };
            counters.accepted += 1;
            // Our idle timer closes it and aborts a close that does not
            // finish; smoltcp's own timeout is only the backstop now.
            socket.set_timeout(Some(smol_duration(IDLE_TIMEOUT * 3)));
            log::debug!("{label}: LAN TCP connection from {peer}");
            slot.conn = Some(Conn {
                peer: peer.into(),
                exchange: Exchange::new(),
                last_active: now,
                closing_since: None,
            });
        }
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        if let Some(since) = conn.closing_since {
            // Discard what still comes so the window never blocks the close.
            while socket.can_recv() {
                if socket.recv(|buf| (buf.len(), ())).is_err() {
                    break;
                }
            }
            if now >= later(since, IDLE_TIMEOUT) && socket.state() != tcp::State::Closed {
                counters.aborted += 1;
                log::debug!(
                    "{label}: LAN TCP connection from {} aborted (close stuck)",
                    conn.peer
                );
                socket.abort();
            }
            return;
        }
        while conn.exchange.wants_input() && socket.can_recv() {
            let exchange = &mut conn.exchange;
            let read =
                socket.recv(|buf| (buf.len(), (buf.len(), exchange.feed_with(buf, handler))));
            match read {
                Ok((n, outcome)) => {
                    if n > 0 {
                        conn.last_active = now;
                    }
                    count(outcome, counters);
                    if n == 0 {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        if conn.exchange.wants_input() && !socket.may_recv() {
            // The peer closed before its request was complete.
            let outcome = conn.exchange.eof();
            if outcome.is_none() {
                socket.close();
                conn.closing_since = Some(now);
                return;
            }
            count(outcome, counters);
        }
        if !conn.exchange.pending().is_empty() && socket.may_send() {
            if let Ok(n) = socket.send_slice(conn.exchange.pending()) {
                conn.exchange.advance(n);
                if n > 0 {
                    conn.last_active = now;
                }
            }
        }
        if conn.exchange.done() {
            // Everything is in the socket; FIN follows the data.
            socket.close();
            conn.closing_since = Some(now);
        } else if now >= later(conn.last_active, IDLE_TIMEOUT) {
            counters.timeouts += 1;
            if conn.exchange.wants_input() {
                log::debug!(
                    "{label}: LAN TCP connection from {} idle, closing",
                    conn.peer
                );
                socket.close();
            } else {
                log::debug!(
                    "{label}: LAN TCP connection from {} not reading, aborted",
                    conn.peer
                );
                socket.abort();
            }
            conn.closing_since = Some(now);
        }
    }
}

fn count(outcome: Option<Outcome>, counters: &mut LanCounters) {
    match outcome {
        Some(Outcome::Served) => counters.served += 1,
        Some(Outcome::BadRequest) => counters.bad_requests += 1,
        None => {}
    }
}

/// A seed for smoltcp's initial sequence numbers from the address, the
/// port and the wall clock.
fn seed(addr: IpAddr, port: u16) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    addr.hash(&mut h);
    port.hash(&mut h);
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        t.as_nanos().hash(&mut h);
    }
    h.finish()
}

/// A socket listening on `port`.
fn listener(port: u16) -> tcp::Socket<'static> {
    ipoe_proto::smoldev::listener(port, IDLE_TIMEOUT, RX_BUFFER, TX_BUFFER)
}
