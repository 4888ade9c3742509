//! DNS over TCP (RFC 7766) for the LAN, on a smoltcp TCP stack.
//!
//! The router has no kernel sockets, so the TCP connections to port 53 are
//! terminated here: a smoltcp [`Interface`] with `Medium::Ip` runs over
//! [`QueueDevice`], a pair of packet queues. The integrator pushes the raw
//! IP packets of TCP segments for port 53 ([`super::DnsProxy::push_tcp_ip`])
//! and sends the IP packets that come out of [`super::DnsProxy::poll`].
//!
//! * The interface runs in "any IP" mode with catch-all routes, so it
//!   takes every LAN address however many there are (smoltcp keeps two at
//!   most); [`TcpFront::set_addrs`] is the filter instead: only TCP to port
//!   53 of those addresses is let in.
//! * A fixed pool of sockets ([`super::ProxyConfig::tcp_slots`]) listens on
//!   port 53; each serves one connection at a time. When every one is busy
//!   a new SYN finds no listener and smoltcp answers RST
//!   (`tcp-rejected`).
//! * Messages are framed with the 2-octet length (RFC 7766 8); several
//!   queries per connection, answered as they come (possibly out of
//!   order, RFC 7766 7). At most [`MAX_IN_FLIGHT`] per connection wait for
//!   upstream; beyond that the connection is not read (TCP flow control
//!   pushes back).
//! * Queries go through the same path as UDP ones: cache, then upstream
//!   **over UDP**. An upstream answer with TC set is passed on as it is
//!   (the client sees TC on TCP and gives up or asks elsewhere): asking
//!   upstream over TCP would need a second TCP stack on the WAN side, and
//!   with an advertised 1232-octet EDNS size truncated upstream answers
//!   are rare.
//! * A connection with nothing in flight and nothing to send for
//!   [`super::ProxyConfig::tcp_idle_timeout`] (10 s) is closed; one whose
//!   peer has closed its side is closed once its answers are out; one that
//!   does not finish closing within another idle timeout is aborted.
//!
//! smoltcp's clock is derived from the `std::time::Instant`s passed in,
//! relative to the first one seen; nothing here reads a clock.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;

use crate::smoldev::{segment_meta, smol_duration, QueueDevice, SegmentMeta};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};

use super::{Action, Client, Core, Counters, ProxyConfig};

/// The port DNS over TCP listens on.
pub const TCP_PORT: u16 = 53;
/// Queries of one connection waiting for upstream at once.
pub const MAX_IN_FLIGHT: usize = 16;
/// Upper bound of the idle timeout.
const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// Packets queued by `push_ip` before the next poll.
const MAX_INBOX: usize = 256;
const RX_BUFFER: usize = 4096;
const TX_BUFFER: usize = 16384;
/// Answers queued on one connection beyond what its socket takes; a peer
/// that asks but does not read is cut off past this.
const MAX_TX_BACKLOG: usize = 256 * 1024;

/// One established connection.
#[derive(Debug)]
struct Conn {
    peer: SocketAddr,
    local: IpAddr,
    /// The message being read, length prefix included.
    rx: Vec<u8>,
    /// Framed answers not yet taken by the socket, from `tx_off`.
    tx: Vec<u8>,
    tx_off: usize,
    last_active: Instant,
    /// When we started closing it.
    closing_since: Option<Instant>,
}

#[derive(Debug)]
struct Slot {
    handle: SocketHandle,
    /// Bumped per connection, so late answers for an earlier connection
    /// on the same slot are told apart.
    gen: u64,
    conn: Option<Conn>,
}

/// A connection as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpConnInfo {
    pub peer: SocketAddr,
    pub local: IpAddr,
    pub state: tcp::State,
}

/// The TCP side of the forwarder; see the module documentation.
pub struct TcpFront {
    iface: Interface,
    device: QueueDevice,
    sockets: SocketSet<'static>,
    slots: Vec<Slot>,
    /// The `std` instant that is smoltcp's zero.
    base: Option<Instant>,
    v4: Option<Ipv4Cidr>,
    v6: Vec<Ipv6Cidr>,
    inbox: VecDeque<Vec<u8>>,
    idle_timeout: Duration,
}

impl TcpFront {
    pub(super) fn new(cfg: &ProxyConfig, seed: u64) -> Self {
        let mut device = QueueDevice::default();
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut device, SmolInstant::ZERO);
        // Accept every destination (set_addrs filters) and route every
        // reply back out: with Medium::Ip there is no next hop to resolve,
        // the gateways below are never used as addresses.
        iface.set_any_ip(true);
        let routes = iface.routes_mut();
        let _ = routes.add_default_ipv4_route(Ipv4Address::new(192, 0, 0, 1));
        let _ = routes.add_default_ipv6_route(Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
        // Bounded so that no timer arithmetic here or in smoltcp overflows.
        let idle_timeout = cfg
            .tcp_idle_timeout
            .clamp(Duration::from_millis(100), MAX_IDLE_TIMEOUT);
        let mut sockets = SocketSet::new(Vec::new());
        let slots = (0..cfg.tcp_slots.max(1))
            .map(|_| Slot {
                handle: sockets.add(listener(idle_timeout)),
                gen: 0,
                conn: None,
            })
            .collect();
        TcpFront {
            iface,
            device,
            sockets,
            slots,
            base: None,
            v4: None,
            v6: Vec::new(),
            inbox: VecDeque::new(),
            idle_timeout,
        }
    }

    /// The router's LAN addresses: TCP to port 53 of these is served,
    /// anything else pushed is dropped. Connections already open stay.
    pub fn set_addrs(&mut self, v4: Option<Ipv4Cidr>, v6: Vec<Ipv6Cidr>) {
        log::info!("dnsproxy: TCP on {v4:?} {v6:?}");
        self.v4 = v4;
        self.v6 = v6;
    }

    fn is_local(&self, addr: IpAddress) -> bool {
        match addr {
            IpAddress::Ipv4(a) => self.v4.is_some_and(|cidr| cidr.address() == a),
            IpAddress::Ipv6(a) => self.v6.iter().any(|cidr| cidr.address() == a),
        }
    }

    /// Connections in progress.
    pub fn connections(&self) -> Vec<TcpConnInfo> {
        let mut list = Vec::new();
        for slot in &self.slots {
            if let Some(conn) = &slot.conn {
                let socket = self.sockets.get::<tcp::Socket>(slot.handle);
                list.push(TcpConnInfo {
                    peer: conn.peer,
                    local: conn.local,
                    state: socket.state(),
                });
            }
        }
        list
    }

    /// Sockets listening for a new connection.
    pub fn listening(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| {
                self.sockets.get::<tcp::Socket>(slot.handle).state() == tcp::State::Listen
            })
            .count()
    }

    fn smol_now(&mut self, now: Instant) -> SmolInstant {
        let base = *self.base.get_or_insert(now);
        let micros = now.saturating_duration_since(base).as_micros();
        SmolInstant::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
    }

    fn std_at(&self, at: SmolInstant, now: Instant) -> Instant {
        let base = self.base.unwrap_or(now);
        let micros = u64::try_from(at.total_micros()).unwrap_or(0);
        super::later(base, Duration::from_micros(micros)).max(now)
    }

    pub(super) fn push_ip(&mut self, now: Instant, packet: &[u8], counters: &mut Counters) {
        self.base.get_or_insert(now);
        let ours = segment_meta(packet)
            .is_some_and(|meta| meta.dst.port == TCP_PORT && self.is_local(meta.dst.addr));
        if !ours {
            counters.tcp_drop_not_ours += 1;
            return;
        }
        if self.inbox.len() >= MAX_INBOX {
            counters.tcp_drop_queue_full += 1;
            return;
        }
        counters.tcp_rx_packets += 1;
        self.inbox.push_back(packet.to_vec());
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

    pub(super) fn poll(
        &mut self,
        now: Instant,
        core: &mut Core,
        out: &mut Vec<Action>,
        out_ip: &mut Vec<Vec<u8>>,
    ) -> Option<Instant> {
        let ts = self.smol_now(now);
        for index in 0..self.slots.len() {
            self.recycle(index, &mut core.counters);
        }
        // One packet at a time, so a SYN meeting no listener is seen.
        while let Some(packet) = self.inbox.pop_front() {
            if let Some(meta) = segment_meta(&packet) {
                if meta.syn && !meta.ack && !meta.rst && !self.takes_syn(&meta) {
                    core.counters.tcp_rejected += 1;
                    log::debug!("dnsproxy: TCP from {} refused, every slot in use", meta.src);
                }
            }
            self.device.rx.push_back(packet);
            self.iface
                .poll_ingress_single(ts, &mut self.device, &mut self.sockets);
        }
        self.iface.poll(ts, &mut self.device, &mut self.sockets);
        for index in 0..self.slots.len() {
            self.read(index, now, core, out);
        }
        self.deliver(now, core);
        for index in 0..self.slots.len() {
            self.write_and_close(index, now, core);
        }
        self.iface.poll(ts, &mut self.device, &mut self.sockets);
        for index in 0..self.slots.len() {
            self.recycle(index, &mut core.counters);
        }
        core.counters.tcp_tx_packets += self.device.tx.len() as u64;
        out_ip.append(&mut self.device.tx);

        let mut next = self
            .iface
            .poll_at(ts, &self.sockets)
            .map(|at| self.std_at(at, now));
        for (index, slot) in self.slots.iter().enumerate() {
            let Some(conn) = &slot.conn else {
                continue;
            };
            let at = match conn.closing_since {
                Some(since) => super::later(since, self.idle_timeout),
                None if conn.tx.is_empty() && core.pending_for(index, slot.gen) == 0 => {
                    super::later(conn.last_active, self.idle_timeout)
                }
                None => continue,
            };
            next = Some(next.map_or(at, |n| n.min(at)).max(now));
        }
        next
    }

    /// Returns closed sockets to listening, and counts the end of their
    /// connection.
    fn recycle(&mut self, index: usize, counters: &mut Counters) {
        let slot = &mut self.slots[index];
        let ended = crate::smoldev::recycle(
            &mut self.sockets,
            &mut slot.handle,
            TCP_PORT,
            self.idle_timeout,
            (RX_BUFFER, TX_BUFFER),
        );
        if ended {
            if let Some(conn) = slot.conn.take() {
                counters.tcp_closed += 1;
                log::debug!("dnsproxy: TCP connection from {} ended", conn.peer);
            }
        }
    }

    /// Reads complete messages off a connection and hands them to `core`.
    fn read(&mut self, index: usize, now: Instant, core: &mut Core, out: &mut Vec<Action>) {
        let slot = &mut self.slots[index];
        let socket = self.sockets.get_mut::<tcp::Socket>(slot.handle);
        if !matches!(
            socket.state(),
            tcp::State::Established
                | tcp::State::CloseWait
                | tcp::State::FinWait1
                | tcp::State::FinWait2
                | tcp::State::Closing
                | tcp::State::LastAck
        ) {
            return;
        }
        if slot.conn.is_none() {
            let (Some(peer), Some(local)) = (socket.remote_endpoint(), socket.local_endpoint())
            else {
                return;
            };
            slot.gen += 1;
            core.counters.tcp_accepted += 1;
            // Our idle timer closes it, and aborts a close that does not
            // finish; smoltcp's own timeout (counted from the last segment
            // received) is only the backstop now.
            socket.set_timeout(Some(smol_duration(self.idle_timeout * 3)));
            log::debug!("dnsproxy: TCP connection from {peer}");
            slot.conn = Some(Conn {
                peer: peer.into(),
                local: local.addr.into(),
                rx: Vec::new(),
                tx: Vec::new(),
                tx_off: 0,
                last_active: now,
                closing_since: None,
            });
        }
        let gen = slot.gen;
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        if conn.closing_since.is_some() {
            return;
        }
        loop {
            let need = match conn.rx.get(..2) {
                Some(len) => 2 + usize::from(u16::from_be_bytes([len[0], len[1]])),
                None => 2,
            };
            if conn.rx.len() == need && need > 2 {
                let msg = std::mem::take(&mut conn.rx);
                core.counters.tcp_rx_query += 1;
                core.query(now, Client::Tcp { slot: index, gen }, &msg[2..], out);
                continue;
            }
            if conn.rx.len() == 2 && need == 2 {
                // A zero-length message: nothing to answer.
                conn.rx.clear();
                continue;
            }
            if core.pending_for(index, gen) >= MAX_IN_FLIGHT || !socket.can_recv() {
                break;
            }
            let want = need - conn.rx.len();
            let rx = &mut conn.rx;
            let read = socket.recv(|buf| {
                let n = buf.len().min(want);
                rx.extend_from_slice(&buf[..n]);
                (n, n)
            });
            match read {
                Ok(n) if n > 0 => conn.last_active = now,
                _ => break,
            }
        }
    }

    /// Moves the answers `core` produced onto their connections.
    fn deliver(&mut self, now: Instant, core: &mut Core) {
        for reply in std::mem::take(&mut core.tcp_replies) {
            let conn = self
                .slots
                .get_mut(reply.slot)
                .filter(|slot| slot.gen == reply.gen)
                .and_then(|slot| slot.conn.as_mut())
                .filter(|conn| conn.closing_since.is_none());
            let (Some(conn), Ok(len)) = (conn, u16::try_from(reply.payload.len())) else {
                core.counters.tcp_drop_late += 1;
                continue;
            };
            conn.tx.extend_from_slice(&len.to_be_bytes());
            conn.tx.extend_from_slice(&reply.payload);
            conn.last_active = now;
            core.counters.tcp_tx_reply += 1;
        }
    }

    /// Writes queued answers into the socket; closes idle and finished
    /// connections, aborts stuck ones.
    fn write_and_close(&mut self, index: usize, now: Instant, core: &mut Core) {
        let slot = &mut self.slots[index];
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        let socket = self.sockets.get_mut::<tcp::Socket>(slot.handle);
        if conn.tx_off < conn.tx.len() && socket.may_send() {
            if let Ok(n) = socket.send_slice(&conn.tx[conn.tx_off..]) {
                conn.tx_off += n;
            }
        }
        if conn.tx_off == conn.tx.len() {
            conn.tx.clear();
            conn.tx_off = 0;
        }
        if let Some(since) = conn.closing_since {
            if now >= super::later(since, self.idle_timeout) && socket.state() != tcp::State::Closed
            {
                core.counters.tcp_aborted += 1;
                log::debug!(
                    "dnsproxy: TCP connection from {} aborted (close stuck)",
                    conn.peer
                );
                socket.abort();
            }
            return;
        }
        if conn.tx.len() - conn.tx_off > MAX_TX_BACKLOG {
            core.counters.tcp_aborted += 1;
            log::debug!(
                "dnsproxy: TCP connection from {} aborted (not reading)",
                conn.peer
            );
            socket.abort();
            conn.closing_since = Some(now);
            return;
        }
        let quiet = conn.tx.is_empty() && core.pending_for(index, slot.gen) == 0;
        if !quiet {
            return;
        }
        if socket.state() == tcp::State::CloseWait {
            // The client is done asking and has all its answers.
            socket.close();
            conn.closing_since = Some(now);
        } else if now >= super::later(conn.last_active, self.idle_timeout) {
            core.counters.tcp_idle_timeout += 1;
            log::debug!("dnsproxy: TCP connection from {} idle, closing", conn.peer);
            socket.close();
            conn.closing_since = Some(now);
        }
    }
}

/// A socket listening on port 53.
fn listener(timeout: Duration) -> tcp::Socket<'static> {
    crate::smoldev::listener(TCP_PORT, timeout, RX_BUFFER, TX_BUFFER)
}
