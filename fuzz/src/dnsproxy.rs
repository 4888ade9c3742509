//! The `dns_proxy` target: the LAN's DNS forwarder fed queries over UDP
//! and TCP and answers from upstream, as `control/src/lan.rs` drives it.
//!
//! Only the proxy's public API is used, so the target survives a rewrite
//! of the wire code behind it. TCP comes from a real TCP peer: a smoltcp
//! stack playing the LAN host, its packets framed and classified as the
//! daemon's punt path does, so the fuzzer's bytes reach the proxy's DNS
//! framing over an established connection.
//!
//! Header: one byte. Bit 0: a four-entry cache; bit 1: two pending queries
//! at most; bit 2: no upstream server at first; bits 3-4: the EDNS UDP
//! size (1232, 512, 4096, or 0 which the proxy raises to 512); bit 5: one
//! TCP slot; bit 6: one attempt per query and a 60 s minimum TTL; bit 7:
//! no cache.
//!
//! Records. Flags bits 0-2: the clock runs first, poll by poll (0, 10 ms,
//! 500 ms, 2 s, 5 s, 30 s, 10 min, 1 day); bits 3-5: what the bytes are:
//! - 0, 1: a UDP query from an IPv4 or an IPv6 LAN host;
//! - 2: the answer to a forwarded query: from its server's port 53 to its
//!   port, with its id (bit 7: the oldest forward still unanswered, else
//!   the newest; bit 6: the record holds the header then what follows the
//!   question, and the forward's question goes in between);
//! - 3: a datagram from the first upstream server's port 53 to the port
//!   in the first two bytes;
//! - 4: a LAN Ethernet frame, routed as `lan.rs` routes it (UDP to port 53
//!   to `handle_query`, TCP to `push_tcp_ip`), checksums fixed first;
//! - 5: a WAN Ethernet frame, routed as `lan.rs::handle_upstream` (bit 6:
//!   UDP destination port and DNS id are the newest forward's), checksums
//!   fixed first;
//! - 6: bytes the LAN host writes on its TCP connection to port 53
//!   (connecting first if it has none, to the router's IPv6 address with
//!   bit 6, else its IPv4 one), length-prefixed messages as RFC 7766
//!   frames them;
//! - 7: the first byte picks: the host closes, aborts, or opens another
//!   connection; new upstream servers (16 bytes each) or the lab's again;
//!   the cache cleared; the LAN addresses gone or back.
//!
//! Checked: replies go to a client that asked, from the address it asked,
//! with the id of one of its queries and a question of its own (as it
//! spelled it), QR set, within the UDP size; TCP
//! answers frame exactly and answer a query of that connection; forwards
//! go to a configured server from an ephemeral port, QR clear, one
//! question; every IP packet of the TCP stack classifies (checksums
//! right); the counters add up (replies and forwards seen against
//! `tx-reply`, `tx-forward` + `tx-retry`; every query read lands in exactly
//! one outcome; every TCP packet pushed is taken or counted as dropped);
//! tables stay within their bounds; deadlines are never in the past.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use ipoe_proto::dnsproxy::{Action, DnsProxy, ProxyConfig};
use ipoe_proto::hostio::{self, Inbound};
use ipoe_proto::smoldev::QueueDevice;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Cidr, Ipv6Cidr};

use super::{dns_question_len, fix_checksums, lab, split};

const STEPS_MS: [u64; 8] = [0, 10, 500, 2000, 5000, 30_000, 600_000, 86_400_000];
const UDP_SIZES: [u16; 4] = [1232, 512, 4096, 0];
/// The WAN's DNS servers in the lab, and a second one.
pub const UPSTREAMS: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 0x53),
];
const CLIENT4: SocketAddr = SocketAddr::new(IpAddr::V4(lab::HOST4), 5353);
const CLIENT6: SocketAddr = SocketAddr::new(IpAddr::V6(lab::HOST6), 40000);
/// Forwards remembered to answer.
const MAX_FORWARDS: usize = 16;
/// TCP connections the host opens in turn.
const HOST_SOCKETS: usize = 2;

fn config(h: u8) -> ProxyConfig {
    let mut cfg = ProxyConfig::default();
    if h & 1 != 0 {
        cfg.cache_entries = 4;
    }
    if h & 128 != 0 {
        cfg.cache_entries = 0;
    }
    if h & 2 != 0 {
        cfg.max_pending = 2;
    }
    cfg.udp_payload = UDP_SIZES[usize::from((h >> 3) & 3)];
    if h & 32 != 0 {
        cfg.tcp_slots = 1;
    }
    if h & 64 != 0 {
        cfg.attempts = 1;
        cfg.min_ttl = 60;
    }
    cfg
}

fn id_of(msg: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.first()?, *msg.get(1)?]))
}

/// One TCP connection of the LAN host.
struct HostConn {
    handle: SocketHandle,
    /// Ids of the queries written on it.
    ids: HashSet<u16>,
    /// Bytes read and not yet a whole message.
    rx: Vec<u8>,
    /// Bytes written and not yet a whole message.
    tx: Vec<u8>,
}

struct Forward {
    upstream: Ipv6Addr,
    port: u16,
    payload: Vec<u8>,
}

struct Harness {
    cfg: ProxyConfig,
    p: DnsProxy,
    t0: Instant,
    now: Instant,
    next: Option<Instant>,
    iface: Interface,
    dev: QueueDevice,
    sockets: SocketSet<'static>,
    conns: Vec<HostConn>,
    current: usize,
    next_port: u16,
    /// (client, id) of every UDP query, and the local address it went to.
    asked: HashSet<(SocketAddr, u16)>,
    /// The questions (name, type, class as sent) each client asked.
    questions: HashSet<(SocketAddr, Vec<u8>)>,
    locals: HashSet<(SocketAddr, IpAddr)>,
    configured: Vec<Ipv6Addr>,
    forwards: Vec<Forward>,
    udp_queries: u64,
    tcp_pushed: u64,
    replies: u64,
    forwarded: u64,
}

impl Harness {
    fn smol(&self) -> SmolInstant {
        SmolInstant::from_micros((self.now - self.t0).as_micros() as i64)
    }

    fn check_actions(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Reply {
                    to,
                    local,
                    from_port,
                    payload,
                } => {
                    self.replies += 1;
                    let id = id_of(&payload).expect("a reply has a header");
                    assert!(payload.len() >= 12, "{}-byte reply", payload.len());
                    assert!(
                        self.asked.contains(&(to, id)),
                        "reply {id:#x} to {to}: not asked"
                    );
                    assert!(self.locals.contains(&(to, local)), "reply from {local}");
                    assert_eq!(from_port, 53);
                    assert_ne!(payload[2] & 0x80, 0, "reply without QR");
                    let limit = usize::from(self.cfg.udp_payload).max(512);
                    assert!(payload.len() <= limit, "{}-byte UDP reply", payload.len());
                    // The client's question as it spelled it (one in plain
                    // labels: a pointer would only be the client's own).
                    let question = dns_question_len(&payload).filter(|_| payload[4..6] == [0, 1]);
                    if let Some(len) = question {
                        let q = payload[12..12 + len].to_vec();
                        assert!(
                            self.questions.contains(&(to, q)),
                            "reply to {to} with a question it did not ask"
                        );
                    }
                    // The frame lan.rs sends classifies back to the payload.
                    let frame = match (to, local) {
                        (SocketAddr::V4(c), IpAddr::V4(l)) => hostio::udp4_frame(
                            lab::LAN_MAC,
                            [0; 6],
                            l,
                            *c.ip(),
                            (from_port, c.port()),
                            &payload,
                        ),
                        (SocketAddr::V6(c), IpAddr::V6(l)) => hostio::udp_frame(
                            &hostio::Route {
                                src_mac: lab::LAN_MAC,
                                dst_mac: [0; 6],
                                src: l,
                                dst: *c.ip(),
                                hop_limit: 64,
                            },
                            from_port,
                            c.port(),
                            &payload,
                        ),
                        _ => continue,
                    };
                    match hostio::classify(&frame) {
                        Ok(Inbound::Udp { payload: p, .. }) => assert_eq!(p, &payload[..]),
                        other => panic!("reply frame classifies as {other:?}"),
                    }
                }
                Action::Forward {
                    upstream,
                    src_port,
                    payload,
                } => {
                    self.forwarded += 1;
                    assert!(self.configured.contains(&upstream), "forward to {upstream}");
                    assert!(src_port >= 49152, "forward from port {src_port}");
                    assert!(payload.len() >= 12, "{}-byte forward", payload.len());
                    assert_eq!(payload[2] & 0x80, 0, "forward with QR");
                    assert_eq!(payload[4..6], [0, 1], "forward without one question");
                    assert!(dns_question_len(&payload).is_some(), "forward's question");
                    if self.forwards.len() == MAX_FORWARDS {
                        self.forwards.remove(0);
                    }
                    self.forwards.push(Forward {
                        upstream,
                        port: src_port,
                        payload,
                    });
                }
            }
        }
    }

    /// Runs both TCP stacks and the proxy until nothing moves.
    fn pump(&mut self) {
        for _ in 0..32 {
            let ts = self.smol();
            self.iface.poll(ts, &mut self.dev, &mut self.sockets);
            let to_proxy = std::mem::take(&mut self.dev.tx);
            for packet in &to_proxy {
                // The punt path: an Ethernet frame, classified as TCP.
                let (_, frame) = hostio::ip_frame(lab::HOST_MAC, packet).expect("host packet");
                match hostio::classify(&frame) {
                    Ok(Inbound::Tcp { ip_packet, .. }) => self.push_tcp(ip_packet),
                    other => panic!("host packet classifies as {other:?}"),
                }
            }
            let mut actions = Vec::new();
            let mut to_host = Vec::new();
            self.next = self.p.poll(self.now, &mut actions, &mut to_host);
            if let Some(n) = self.next {
                assert!(n >= self.now, "deadline {n:?} before {:?}", self.now);
            }
            self.check_actions(actions);
            for packet in &to_host {
                let (_, frame) = hostio::ip_frame(lab::LAN_MAC, packet).expect("our packet");
                match hostio::classify(&frame) {
                    Ok(Inbound::Tcp { .. }) => {}
                    other => panic!("the proxy's packet classifies as {other:?}"),
                }
            }
            let moved = !to_proxy.is_empty() || !to_host.is_empty();
            self.dev.rx.extend(to_host);
            if !moved {
                break;
            }
        }
        self.read_host();
        self.check();
    }

    fn push_tcp(&mut self, packet: &[u8]) {
        self.p.push_tcp_ip(self.now, packet);
        self.tcp_pushed += 1;
    }

    /// Answers the host got over TCP.
    fn read_host(&mut self) {
        for conn in &mut self.conns {
            let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
            while socket.can_recv() {
                let _ = socket.recv(|buf| {
                    conn.rx.extend_from_slice(buf);
                    (buf.len(), ())
                });
            }
            while conn.rx.len() >= 2 {
                let len = usize::from(u16::from_be_bytes([conn.rx[0], conn.rx[1]]));
                if conn.rx.len() < 2 + len {
                    break;
                }
                let msg: Vec<u8> = conn.rx.drain(..2 + len).skip(2).collect();
                let id = id_of(&msg).expect("a TCP answer has a header");
                assert!(msg.len() >= 12, "{}-byte TCP answer", msg.len());
                assert!(
                    conn.ids.contains(&id),
                    "TCP answer {id:#x} to no query of ours"
                );
                assert_ne!(msg[2] & 0x80, 0, "TCP answer without QR");
            }
        }
    }

    fn check(&self) {
        let c = self.p.counters();
        assert_eq!(c.rx_query, self.udp_queries, "rx-query");
        assert_eq!(c.tx_reply, self.replies, "tx-reply against replies seen");
        assert_eq!(c.tx_forward + c.tx_retry, self.forwarded, "forwards seen");
        let outcomes = c.drop_malformed
            + c.notimp
            + c.formerr
            + c.badvers
            + c.cache_hit
            + c.drop_duplicate
            + c.servfail_no_upstream
            + c.pending_full
            + c.tx_forward;
        assert_eq!(
            outcomes,
            c.rx_query + c.tcp_rx_query,
            "query outcomes: {:?}",
            c.named()
        );
        assert_eq!(
            c.tcp_rx_packets + c.tcp_drop_not_ours + c.tcp_drop_queue_full,
            self.tcp_pushed,
            "TCP packets"
        );
        assert!(c.tcp_closed <= c.tcp_accepted);
        assert!(self.p.pending_len() <= self.cfg.max_pending.max(1));
        assert!(self.p.cache_len() <= self.cfg.cache_entries);
        assert!(self.p.upstreams().len() <= ipoe_proto::dnsproxy::MAX_UPSTREAMS);
    }

    /// Polls deadline by deadline up to `until` (see [`crate::run_until`]);
    /// a deadline not after the clock is not stepped to.
    fn run_until(&mut self, until: Instant) {
        let clock: fn(&mut Self) -> (&mut Instant, Option<Instant>) = |h| {
            let next = h.next.filter(|&n| n > h.now);
            (&mut h.now, next)
        };
        crate::run_until(self, until, 32, clock, Self::pump);
    }

    fn query(&mut self, client: SocketAddr, local: IpAddr, payload: &[u8]) {
        if let Some(id) = id_of(payload) {
            self.asked.insert((client, id));
        }
        if let Some(len) = dns_question_len(payload) {
            self.questions
                .insert((client, payload[12..12 + len].to_vec()));
        }
        self.locals.insert((client, local));
        let mut actions = Vec::new();
        self.p
            .handle_query(self.now, client, local, payload, &mut actions);
        self.udp_queries += 1;
        self.check_actions(actions);
    }

    fn upstream(&mut self, from: Ipv6Addr, from_port: u16, dst_port: u16, payload: &[u8]) {
        let mut actions = Vec::new();
        let ours =
            self.p
                .handle_upstream(self.now, from, from_port, dst_port, payload, &mut actions);
        if ours {
            self.forwards.retain(|f| f.port != dst_port);
        }
        self.check_actions(actions);
    }

    fn set_upstreams(&mut self, list: &[Ipv6Addr]) {
        self.configured.extend_from_slice(list);
        self.p.set_upstreams(list);
    }

    /// The host's connection, opened to the router's IPv4 or IPv6 address.
    fn connection(&mut self, v6: bool) -> SocketHandle {
        let handle = self.conns[self.current].handle;
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        if socket.state() == tcp::State::Closed {
            self.next_port = self.next_port.wrapping_add(1).max(40_000);
            let to = if v6 {
                IpEndpoint::new(IpAddress::Ipv6(lab::LAN_GUA), 53)
            } else {
                IpEndpoint::new(IpAddress::Ipv4(lab::LAN_V4), 53)
            };
            let _ = socket.connect(self.iface.context(), to, self.next_port);
            let conn = &mut self.conns[self.current];
            conn.ids.clear();
            conn.rx.clear();
            conn.tx.clear();
            self.pump();
        }
        handle
    }

    fn tcp_write(&mut self, v6: bool, bytes: &[u8]) {
        let handle = self.connection(v6);
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        let sent = if socket.may_send() {
            socket.send_slice(bytes).unwrap_or(0)
        } else {
            0
        };
        // The ids of the messages as the stream frames them, for checking
        // the answers (a message may span several writes).
        let conn = &mut self.conns[self.current];
        conn.tx.extend_from_slice(&bytes[..sent]);
        while conn.tx.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([conn.tx[0], conn.tx[1]]));
            if conn.tx.len() < 2 + len {
                break;
            }
            if len >= 2 {
                conn.ids
                    .insert(u16::from_be_bytes([conn.tx[2], conn.tx[3]]));
            }
            conn.tx.drain(..2 + len);
        }
        self.pump();
    }

    fn control(&mut self, bytes: &[u8]) {
        let handle = self.conns[self.current].handle;
        match bytes.first().copied().unwrap_or(0) % 8 {
            0 => self.sockets.get_mut::<tcp::Socket>(handle).close(),
            1 => self.sockets.get_mut::<tcp::Socket>(handle).abort(),
            2 => self.current = (self.current + 1) % HOST_SOCKETS,
            3 => {
                let list: Vec<Ipv6Addr> = bytes[1..]
                    .chunks_exact(16)
                    .take(20)
                    .map(|c| Ipv6Addr::from(<[u8; 16]>::try_from(c).unwrap_or_default()))
                    .collect();
                self.set_upstreams(&list);
            }
            4 => self.p.clear_cache(),
            5 => self.set_upstreams(&UPSTREAMS),
            6 => self.p.tcp().set_addrs(None, Vec::new()),
            _ => lan_addrs(&mut self.p),
        }
        self.pump();
    }
}

/// lan.rs: the LAN's IPv4 address as a /32 and the router's /64 address.
fn lan_addrs(p: &mut DnsProxy) {
    p.tcp().set_addrs(
        Some(Ipv4Cidr::new(lab::LAN_V4, 32)),
        vec![Ipv6Cidr::new(lab::LAN_GUA, 64)],
    );
}

pub fn run(data: &[u8]) {
    super::log_everything();
    let ([h], records) = split::<1>(data);
    let cfg = config(h);
    let t0 = Instant::now();
    let mut p = DnsProxy::new(cfg.clone());
    lan_addrs(&mut p);
    let (iface, dev) = ipoe_proto::smoldev::test_client(u64::from(h), lab::HOST4, lab::HOST6);
    let mut sockets = SocketSet::new(Vec::new());
    let conns = (0..HOST_SOCKETS)
        .map(|_| HostConn {
            handle: sockets.add(tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 8192]),
                tcp::SocketBuffer::new(vec![0; 8192]),
            )),
            ids: HashSet::new(),
            rx: Vec::new(),
            tx: Vec::new(),
        })
        .collect();
    let mut hs = Harness {
        cfg: ProxyConfig {
            // What the proxy makes of the config.
            udp_payload: cfg.udp_payload.max(512),
            ..cfg
        },
        p,
        t0,
        now: t0,
        next: None,
        iface,
        dev,
        sockets,
        conns,
        current: 0,
        next_port: 40_000,
        asked: HashSet::new(),
        questions: HashSet::new(),
        locals: HashSet::new(),
        configured: Vec::new(),
        forwards: Vec::new(),
        udp_queries: 0,
        tcp_pushed: 0,
        replies: 0,
        forwarded: 0,
    };
    if h & 4 == 0 {
        hs.set_upstreams(&UPSTREAMS[..1]);
    }
    for r in records {
        let step = Duration::from_millis(STEPS_MS[usize::from(r.flags & 7)]);
        if !step.is_zero() {
            hs.run_until(hs.now + step);
        }
        match (r.flags >> 3) & 7 {
            0 => hs.query(CLIENT4, IpAddr::V4(lab::LAN_V4), r.bytes),
            1 => hs.query(CLIENT6, IpAddr::V6(lab::LAN_GUA), r.bytes),
            2 => {
                let pick = if r.flags & 128 != 0 {
                    hs.forwards.first()
                } else {
                    hs.forwards.last()
                };
                let Some(f) = pick else { continue };
                let (upstream, port) = (f.upstream, f.port);
                let question = f
                    .payload
                    .get(12..12 + dns_question_len(&f.payload).unwrap_or(0))
                    .unwrap_or(&[])
                    .to_vec();
                let id = [f.payload[0], f.payload[1]];
                let mut msg = super::reply_with_question(r.bytes, &question, r.flags & 64 != 0);
                if msg.len() >= 2 {
                    msg[..2].copy_from_slice(&id);
                }
                hs.upstream(upstream, 53, port, &msg);
            }
            3 => {
                let port = id_of(r.bytes).unwrap_or(0);
                hs.upstream(UPSTREAMS[0], 53, port, r.bytes.get(2..).unwrap_or(&[]));
            }
            4 => {
                let mut frame = r.bytes.to_vec();
                fix_checksums(&mut frame);
                match hostio::classify(&frame) {
                    Ok(Inbound::Udp {
                        src,
                        src_port,
                        dst,
                        dst_port: 53,
                        payload,
                        ..
                    }) => hs.query(SocketAddr::new(src, src_port), dst, payload),
                    Ok(Inbound::Tcp { ip_packet, .. }) => hs.push_tcp(ip_packet),
                    _ => {}
                }
            }
            5 => {
                let mut frame = r.bytes.to_vec();
                if r.flags & 64 != 0 && frame.len() >= 64 {
                    if let Some(f) = hs.forwards.last() {
                        frame[56..58].copy_from_slice(&f.port.to_be_bytes());
                        frame[62..64].copy_from_slice(&f.payload[..2]);
                    }
                }
                fix_checksums(&mut frame);
                if let Ok(Inbound::Udp {
                    src: IpAddr::V6(src),
                    src_port,
                    dst_port,
                    payload,
                    ..
                }) = hostio::classify(&frame)
                {
                    hs.upstream(src, src_port, dst_port, payload);
                }
            }
            6 => hs.tcp_write(r.flags & 64 != 0, r.bytes),
            _ => hs.control(r.bytes),
        }
        hs.pump();
    }
    let conns = hs.p.tcp().connections();
    assert!(conns.len() <= hs.cfg.tcp_slots.max(1));
    let _ = hs.p.tcp().listening();
    super::show("dns_proxy", &hs.p.counters().named());
}
