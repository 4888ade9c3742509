//! The LAN's DNS forwarder (what dnsmasq did for the user): answers queries
//! sent to the router's LAN addresses on UDP and TCP port 53 from a small
//! cache, and forwards the rest over UDP to the DNS servers learned on the
//! WAN (RA RDNSS or DHCPv6 option 23), over native IPv6: RFC 6333 5.5 keeps
//! DNS out of the DS-Lite tunnel.
//!
//! Sans-IO, like [`crate::dns::Resolver`]: the router has no kernel sockets,
//! the dataplane punts frames to the control thread and the integrator
//! hands them here.
//!
//! * UDP queries go to [`DnsProxy::handle_query`], datagrams from upstream
//!   servers to [`DnsProxy::handle_upstream`]; what to send comes back as
//!   [`Action`]s.
//! * TCP segments to port 53 go, as raw IP packets, to
//!   [`DnsProxy::push_tcp_ip`]; a smoltcp stack ([`TcpFront`]) terminates
//!   the connections and the IP packets it sends come out of
//!   [`DnsProxy::poll`]. Queries read from TCP take the same path as UDP
//!   ones (cache, then upstream over UDP).
//! * [`DnsProxy::poll`] runs retransmissions and timeouts and the TCP
//!   stack. Call it after every input and when its deadline passes.
//!
//! # Forwarding
//!
//! A query is checked (QR clear, opcode QUERY, one question, every record
//! framing, at most one OPT, EDNS version 0) and answered from the cache
//! or forwarded with a fresh random id from a fresh random source port
//! (49152..=65535). The forwarded query is rebuilt rather than copied: the
//! header flags RD, CD and AD, the question, and an OPT record advertising
//! [`ProxyConfig::udp_payload`] octets with the client's DO bit. The OPT is
//! always sent, so even a client without EDNS gets answers up to that
//! size from upstream (a TCP client needs that: its query may have no OPT
//! at all); the client's EDNS options (cookies, padding...) are not
//! forwarded. A reply is accepted only from the server and port the query
//! went to, on the port it came from, with the id and the question echoed;
//! the client's id and question spelling are restored, and the OPT is
//! removed again for a client that sent none.
//!
//! hickory-proto reads the query's question and OPT record and writes the
//! forwarded query and every reply made here (SERVFAIL, FORMERR, NOTIMP,
//! BADVERS, TC); answers from upstream and from the cache stay bytes,
//! framed by a zero-copy walker and patched in place (`wire.rs` says why).
//!
//! # Cache
//!
//! Keyed by the question (name case-insensitively, type, class IN only)
//! and the RD, CD and DO bits. Positive answers live for the smallest TTL
//! of the answer section clamped to `min_ttl..=max_ttl`; NXDOMAIN and
//! NODATA for min(SOA TTL, SOA MINIMUM) (RFC 2308 5), capped at
//! [`NEGATIVE_TTL_CAP`]. TC answers, other response codes and messages
//! over [`MAX_CACHED_LEN`] are not cached. Answers from the cache have
//! every TTL decremented by the time spent there and AA cleared.
//!
//! # UDP size
//!
//! A UDP answer larger than the client can take (its EDNS size, 512
//! without EDNS, never more than [`ProxyConfig::udp_payload`]) is cut to
//! the header and question (and an OPT for an EDNS client) with TC set, so
//! the client retries over TCP. Answers on TCP are never truncated by us;
//! an upstream UDP answer with TC set is passed on as it is, see
//! [`tcp`](TcpFront).

#[cfg(test)]
mod cost;
#[cfg(test)]
mod hickory_tests;
mod tcp;
#[cfg(test)]
mod tests;
mod wire;

pub use tcp::{TcpConnInfo, TcpFront, MAX_IN_FLIGHT, TCP_PORT};

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Header, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::dns::{Packet, DNS_PORT, FLAG_AA, HEADER_LEN};
use crate::dns::{RCODE_NXDOMAIN, RCODE_SERVFAIL};
use crate::osrand::OsRandom;
use wire::{Message, Opt, WireError};

/// Upstream servers kept from [`DnsProxy::set_upstreams`].
pub const MAX_UPSTREAMS: usize = crate::dns::MAX_SERVERS;
/// Largest query accepted (UDP or TCP); a real one is a few hundred octets.
pub const MAX_QUERY_LEN: usize = 4096;
/// Largest answer kept in the cache.
pub const MAX_CACHED_LEN: usize = 4096;
/// Cap of the lifetime of a cached NXDOMAIN / NODATA answer, in seconds.
pub const NEGATIVE_TTL_CAP: u32 = 300;
/// What a client without EDNS can take over UDP (RFC 1035 4.2.1).
pub const PLAIN_UDP_LIMIT: usize = 512;
/// First source port of forwarded queries (RFC 6335 dynamic range).
pub const EPHEMERAL_PORT_FIRST: u16 = 49152;
/// RCODE NOTIMP (RFC 1035 4.1.1).
pub const RCODE_NOTIMP: u8 = 4;
/// Extended RCODE BADVERS (RFC 6891 9).
pub const RCODE_BADVERS: u16 = 16;
const EPHEMERAL_PORTS: u16 = 16384;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Answers kept in the cache; 0 disables it.
    pub cache_entries: usize,
    /// Queries waiting for upstream at once; more get SERVFAIL.
    pub max_pending: usize,
    /// How long to wait for an upstream answer before asking the next one.
    pub upstream_timeout: Duration,
    /// Sends per query (first try included) before SERVFAIL.
    pub attempts: u32,
    /// Lower bound of a positive answer's lifetime in the cache, seconds.
    pub min_ttl: u32,
    /// Upper bound of any answer's lifetime in the cache, seconds.
    pub max_ttl: u32,
    /// EDNS UDP payload size advertised upstream, and the largest UDP
    /// answer sent to a client (the DNS flag day 2020 value by default).
    pub udp_payload: u16,
    /// TCP connections served at once; SYNs beyond get RST.
    pub tcp_slots: usize,
    /// A TCP connection with nothing in flight for this long is closed.
    pub tcp_idle_timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            cache_entries: 512,
            max_pending: 256,
            upstream_timeout: Duration::from_secs(2),
            attempts: 3,
            min_ttl: 0,
            max_ttl: 86_400,
            udp_payload: crate::dns::EDNS_UDP_PAYLOAD,
            tcp_slots: 8,
            tcp_idle_timeout: Duration::from_secs(10),
        }
    }
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// UDP to a LAN client, from `local`:`from_port` (the address and port
    /// the query was sent to).
    Reply {
        to: SocketAddr,
        local: IpAddr,
        from_port: u16,
        payload: Vec<u8>,
    },
    /// UDP from the router's WAN address, port `src_port`, to
    /// `[upstream]:53`.
    Forward {
        upstream: Ipv6Addr,
        src_port: u16,
        payload: Vec<u8>,
    },
}

named_counters! {
    /// Monotonic event counters.
    pub struct Counters {
        /// UDP queries received (every `handle_query` call).
        rx_query => "rx-query",
        /// Queries forwarded upstream (first tries).
        tx_forward => "tx-forward",
        /// Queries sent again to the next upstream after a timeout.
        tx_retry => "tx-retry",
        /// Upstream answers matched to a pending query and relayed.
        rx_upstream => "rx-upstream",
        /// UDP replies sent to clients.
        tx_reply => "tx-reply",
        /// Queries answered from the cache.
        cache_hit => "cache-hit",
        /// Valid queries not in the cache.
        cache_miss => "cache-miss",
        /// Answers stored in the cache.
        cache_insert => "cache-insert",
        /// Cache entries dropped to make room (before they expired).
        cache_evict => "cache-evict",
        /// UDP replies cut to header and question with TC set.
        truncated => "truncated",
        /// Upstream answers with TC set relayed (never cached).
        upstream_tc => "upstream-tc",
        /// Queries dropped without a reply: shorter than a header, or a response.
        drop_malformed => "drop-malformed",
        /// Queries answered FORMERR.
        formerr => "formerr",
        /// Queries answered NOTIMP (opcode other than QUERY).
        notimp => "notimp",
        /// Queries answered BADVERS (EDNS version other than 0).
        badvers => "badvers",
        /// Queries dropped as a retransmission of one still pending.
        drop_duplicate => "drop-duplicate",
        /// Upstream datagrams matching no pending query (unknown port, wrong
        /// source, id or question).
        drop_unmatched => "drop-unmatched",
        /// Matched upstream answers that do not parse; the query stays pending.
        drop_upstream_malformed => "drop-upstream-malformed",
        /// Queries answered SERVFAIL because no upstream server is known.
        servfail_no_upstream => "servfail-no-upstream",
        /// Queries answered SERVFAIL after `attempts` timeouts.
        servfail_timeout => "servfail-timeout",
        /// Queries answered SERVFAIL because the pending table was full.
        pending_full => "pending-full",
        /// Upstream server addresses refused (unspecified, multicast,
        /// duplicates, beyond `MAX_UPSTREAMS`).
        upstreams_ignored => "upstreams-ignored",
        /// IP packets accepted by `push_tcp_ip`.
        tcp_rx_packets => "tcp-rx-packets",
        /// IP packets sent by the TCP stack.
        tcp_tx_packets => "tcp-tx-packets",
        /// IP packets refused by `push_tcp_ip`: not TCP to port 53 of a LAN
        /// address, or not parsable.
        tcp_drop_not_ours => "tcp-drop-not-ours",
        /// IP packets dropped because the input queue was full.
        tcp_drop_queue_full => "tcp-drop-queue-full",
        /// TCP connections established.
        tcp_accepted => "tcp-accepted",
        /// TCP connections ended (after being counted in `tcp-accepted`).
        tcp_closed => "tcp-closed",
        /// SYNs refused with RST because every connection slot was in use.
        tcp_rejected => "tcp-rejected",
        /// TCP connections closed for being idle.
        tcp_idle_timeout => "tcp-idle-timeout",
        /// TCP connections aborted (peer not reading answers, or not
        /// finishing the close).
        tcp_aborted => "tcp-aborted",
        /// Queries read from TCP connections.
        tcp_rx_query => "tcp-rx-query",
        /// Answers written to TCP connections.
        tcp_tx_reply => "tcp-tx-reply",
        /// Answers for a TCP connection that had gone.
        tcp_drop_late => "tcp-drop-late",
    }
}

/// Who asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Udp {
        addr: SocketAddr,
        local: IpAddr,
    },
    /// A connection of the [`TcpFront`]; `gen` tells a slot's connections
    /// apart.
    Tcp {
        slot: usize,
        gen: u64,
    },
}

/// Everything needed to answer one query.
#[derive(Clone, Debug)]
struct Asker {
    client: Client,
    /// The query's header (id, opcode, RD, CD, AD).
    header: Header,
    /// The question, and its bytes as the client sent them (name, type,
    /// class; uncompressed), which the relay path compares and copies in
    /// place. `None` and empty for a query that did not parse.
    query: Option<Query>,
    question: Vec<u8>,
    /// The client's EDNS UDP size and DO bit, if it sent an OPT.
    edns: Option<(u16, bool)>,
}

impl Asker {
    /// Largest answer this client takes.
    fn limit(&self, udp_payload: u16) -> usize {
        match self.client {
            Client::Tcp { .. } => usize::from(u16::MAX),
            Client::Udp { .. } => {
                let cap = usize::from(udp_payload).max(PLAIN_UDP_LIMIT);
                match self.edns {
                    None => PLAIN_UDP_LIMIT,
                    Some((size, _)) => usize::from(size).clamp(PLAIN_UDP_LIMIT, cap),
                }
            }
        }
    }

    fn do_bit(&self) -> bool {
        self.edns.is_some_and(|(_, do_bit)| do_bit)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    /// The question with the name lower-cased.
    question: Vec<u8>,
    /// RD, CD and DO.
    bits: u8,
}

impl CacheKey {
    fn new(asker: &Asker) -> Self {
        let mut question = asker.question.clone();
        let name_len = question.len() - 4;
        question[..name_len].make_ascii_lowercase();
        let bits = u8::from(asker.header.recursion_desired())
            | u8::from(asker.header.checking_disabled()) << 1
            | u8::from(asker.do_bit()) << 2;
        CacheKey { question, bits }
    }
}

#[derive(Clone, Debug)]
struct CacheEntry {
    /// The answer as received (trailing bytes removed).
    msg: Vec<u8>,
    /// Offsets and values of the TTL of every record but the OPT.
    ttls: Vec<(usize, u32)>,
    opt: Option<Opt>,
    stored: Instant,
    expires: Instant,
    /// Seconds from `stored` to `expires`.
    lifetime: u32,
    /// Insertion order, to break ties when evicting.
    seq: u64,
}

/// A query waiting for upstream, keyed by its source port.
#[derive(Clone, Debug)]
struct Pending {
    asker: Asker,
    key: CacheKey,
    upstream: Ipv6Addr,
    id: u16,
    deadline: Instant,
    /// Sends so far.
    tries: u32,
}

/// An answer for a TCP connection, picked up by [`TcpFront`] in `poll`.
#[derive(Clone, Debug)]
struct TcpReply {
    slot: usize,
    gen: u64,
    payload: Vec<u8>,
}

/// The transport-independent part: cache, pending queries, upstreams.
#[derive(Debug)]
struct Core {
    cfg: ProxyConfig,
    rng: OsRandom,
    upstreams: Vec<Ipv6Addr>,
    /// Index into `upstreams` of the server asked first.
    preferred: usize,
    pending: BTreeMap<u16, Pending>,
    cache: HashMap<CacheKey, CacheEntry>,
    cache_seq: u64,
    counters: Counters,
    tcp_replies: Vec<TcpReply>,
}

/// The DNS forwarder; see the module documentation.
pub struct DnsProxy {
    core: Core,
    tcp: TcpFront,
}

impl DnsProxy {
    /// Transaction ids, source ports and smoltcp's seed (TCP initial
    /// sequence numbers) come from the kernel's CSPRNG.
    pub fn new(cfg: ProxyConfig) -> Self {
        let mut cfg = cfg;
        cfg.max_ttl = cfg.max_ttl.max(cfg.min_ttl);
        cfg.attempts = cfg.attempts.max(1);
        cfg.upstream_timeout = cfg.upstream_timeout.max(Duration::from_millis(100));
        // Leave room to draw a free source port quickly.
        cfg.max_pending = cfg.max_pending.min(usize::from(EPHEMERAL_PORTS / 2));
        cfg.udp_payload = cfg.udp_payload.max(PLAIN_UDP_LIMIT as u16);
        let mut rng = OsRandom::new();
        // Its own draw: smoltcp's PCG32 output (ISNs a LAN host sees)
        // then tells nothing about the ids and ports.
        let tcp = TcpFront::new(&cfg, rng.next_u64());
        DnsProxy {
            core: Core {
                cfg,
                rng,
                upstreams: Vec::new(),
                preferred: 0,
                pending: BTreeMap::new(),
                cache: HashMap::new(),
                cache_seq: 0,
                counters: Counters::default(),
                tcp_replies: Vec::new(),
            },
            tcp,
        }
    }

    /// Replaces the upstream servers. Unspecified and multicast addresses
    /// and duplicates are dropped, at most [`MAX_UPSTREAMS`] kept. Pending
    /// queries keep waiting for the server they were sent to and move to
    /// the new list on retry. The cache is kept.
    pub fn set_upstreams(&mut self, servers: &[Ipv6Addr]) {
        let core = &mut self.core;
        let mut list = Vec::with_capacity(servers.len().min(MAX_UPSTREAMS));
        for &server in servers {
            if server.is_unspecified()
                || server.is_multicast()
                || list.contains(&server)
                || list.len() == MAX_UPSTREAMS
            {
                core.counters.upstreams_ignored += 1;
                continue;
            }
            list.push(server);
        }
        if list != core.upstreams {
            log::info!("dnsproxy: upstream servers now {list:?}");
            core.upstreams = list;
            core.preferred = 0;
        }
    }

    pub fn upstreams(&self) -> &[Ipv6Addr] {
        &self.core.upstreams
    }

    /// A UDP query from `client` to `local`:53. Replies and forwards go to
    /// `out`.
    pub fn handle_query(
        &mut self,
        now: Instant,
        client: SocketAddr,
        local: IpAddr,
        payload: &[u8],
        out: &mut Vec<Action>,
    ) {
        self.core.counters.rx_query += 1;
        self.core.query(
            now,
            Client::Udp {
                addr: client,
                local,
            },
            payload,
            out,
        );
    }

    /// A UDP datagram from `from`:`from_port` to our port `dst_port`.
    /// Returns true if it answered a pending query; the answer goes to
    /// `out` for a UDP client, or is queued for a TCP client (written out
    /// by the next [`DnsProxy::poll`]). Anything else is counted and
    /// ignored.
    pub fn handle_upstream(
        &mut self,
        now: Instant,
        from: Ipv6Addr,
        from_port: u16,
        dst_port: u16,
        payload: &[u8],
        out: &mut Vec<Action>,
    ) -> bool {
        self.core
            .upstream(now, from, from_port, dst_port, payload, out)
    }

    /// A raw IPv4 or IPv6 packet carrying a TCP segment for port 53 of a
    /// LAN address. Queued; [`DnsProxy::poll`] processes it.
    pub fn push_tcp_ip(&mut self, now: Instant, packet: &[u8]) {
        self.tcp.push_ip(now, packet, &mut self.core.counters);
    }

    /// Runs timeouts (retry on the next upstream, SERVFAIL after
    /// `attempts`) and the TCP stack. UDP datagrams go to `out`, IP packets
    /// of the TCP stack to `out_ip`. Returns when to call it again.
    pub fn poll(
        &mut self,
        now: Instant,
        out: &mut Vec<Action>,
        out_ip: &mut Vec<Vec<u8>>,
    ) -> Option<Instant> {
        self.core.expire(now, out);
        let tcp_at = self.tcp.poll(now, &mut self.core, out, out_ip);
        let core_at = self.core.pending.values().map(|p| p.deadline).min();
        match (tcp_at, core_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The TCP side: LAN addresses, connection state.
    pub fn tcp(&mut self) -> &mut TcpFront {
        &mut self.tcp
    }

    pub fn counters(&self) -> &Counters {
        &self.core.counters
    }

    /// Entries in the cache, expired ones not yet dropped included.
    pub fn cache_len(&self) -> usize {
        self.core.cache.len()
    }

    /// Queries waiting for an upstream answer.
    pub fn pending_len(&self) -> usize {
        self.core.pending.len()
    }

    /// Empties the cache (e.g. when the WAN changes).
    pub fn clear_cache(&mut self) {
        self.core.cache.clear();
    }
}

impl Core {
    fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Validates a query and answers or forwards it.
    fn query(&mut self, now: Instant, client: Client, payload: &[u8], out: &mut Vec<Action>) {
        let header = match Header::read(&mut BinDecoder::new(payload)) {
            Ok(header) if header.message_type() == MessageType::Query => header,
            _ => {
                // Unreadable, or a response: answering a response could
                // start a loop between two forwarders.
                self.counters.drop_malformed += 1;
                log::debug!("dnsproxy: dropped malformed query from {client:?}");
                return;
            }
        };
        let unparsed = Asker {
            client,
            header,
            query: None,
            question: Vec::new(),
            edns: None,
        };
        if header.op_code() != OpCode::Query {
            self.counters.notimp += 1;
            let reply = wire::build(
                &wire::reply_header(&header, ResponseCode::NotImp),
                None,
                None,
            );
            self.respond(&unparsed, reply, out);
            return;
        }
        let parsed = match payload.len() {
            len if len > MAX_QUERY_LEN => Err(WireError::Record),
            _ => wire::parse_query(payload),
        };
        let query = match parsed {
            Ok(query) => query,
            Err(e) => {
                self.counters.formerr += 1;
                log::debug!("dnsproxy: FORMERR to {client:?}: {e:?}");
                let reply = wire::build(
                    &wire::reply_header(&header, ResponseCode::FormErr),
                    None,
                    None,
                );
                self.respond(&unparsed, reply, out);
                return;
            }
        };
        let asker = Asker {
            query: Some(query.question),
            question: query.wire,
            edns: query
                .edns
                .as_ref()
                .map(|edns| (edns.max_payload(), edns.flags().dnssec_ok)),
            ..unparsed
        };
        if query.edns.is_some_and(|edns| edns.version() != 0) {
            // RFC 6891 6.1.3: BADVERS, with the version we do speak.
            self.counters.badvers += 1;
            let reply = wire::build(
                &wire::reply_header(&header, ResponseCode::BADVERS),
                asker.query.as_ref(),
                Some((self.cfg.udp_payload, false)),
            );
            self.respond(&asker, reply, out);
            return;
        }
        let key = CacheKey::new(&asker);
        if let Some((mut answer, opt)) = self.cache_lookup(now, &key) {
            self.counters.cache_hit += 1;
            self.finalize(&mut answer, opt, &asker, true);
            self.respond(&asker, answer, out);
            return;
        }
        self.counters.cache_miss += 1;
        if self.pending.values().any(|p| {
            p.asker.client == asker.client
                && p.asker.header.id() == asker.header.id()
                && p.asker.question == asker.question
        }) {
            // The client's own retransmission: the query is on its way.
            self.counters.drop_duplicate += 1;
            return;
        }
        if self.upstreams.is_empty() {
            self.counters.servfail_no_upstream += 1;
            self.servfail(&asker, out);
            return;
        }
        if self.pending.len() >= self.cfg.max_pending {
            self.counters.pending_full += 1;
            log::debug!("dnsproxy: pending table full, SERVFAIL to {client:?}");
            self.servfail(&asker, out);
            return;
        }
        let upstream = self.upstreams[self.preferred % self.upstreams.len()];
        self.counters.tx_forward += 1;
        self.send(now, asker, key, upstream, 1, out);
    }

    /// Sends (or resends) a query to `upstream` with a fresh id and port.
    fn send(
        &mut self,
        now: Instant,
        asker: Asker,
        key: CacheKey,
        upstream: Ipv6Addr,
        tries: u32,
        out: &mut Vec<Action>,
    ) {
        let id = self.random() as u16;
        let port = loop {
            let port = EPHEMERAL_PORT_FIRST + (self.random() % u64::from(EPHEMERAL_PORTS)) as u16;
            if !self.pending.contains_key(&port) {
                break port;
            }
        };
        let mut header = Header::new();
        header
            .set_id(id)
            .set_recursion_desired(asker.header.recursion_desired())
            .set_checking_disabled(asker.header.checking_disabled())
            .set_authentic_data(asker.header.authentic_data());
        let mut payload = wire::build(
            &header,
            asker.query.as_ref(),
            Some((self.cfg.udp_payload, asker.do_bit())),
        );
        payload.shrink_to_fit();
        out.push(Action::Forward {
            upstream,
            src_port: port,
            payload,
        });
        self.pending.insert(
            port,
            Pending {
                asker,
                key,
                upstream,
                id,
                deadline: later(now, self.cfg.upstream_timeout),
                tries,
            },
        );
    }

    /// Timed-out queries: retry on the next server or give up.
    fn expire(&mut self, now: Instant, out: &mut Vec<Action>) {
        let expired: Vec<u16> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(port, _)| *port)
            .collect();
        for port in expired {
            let Some(p) = self.pending.remove(&port) else {
                continue;
            };
            if p.tries >= self.cfg.attempts || self.upstreams.is_empty() {
                self.counters.servfail_timeout += 1;
                log::debug!(
                    "dnsproxy: no answer after {} tries, SERVFAIL to {:?}",
                    p.tries,
                    p.asker.client
                );
                self.servfail(&p.asker, out);
                continue;
            }
            let n = self.upstreams.len();
            let next = match self.upstreams.iter().position(|u| *u == p.upstream) {
                Some(index) => {
                    // A silent preferred server stops being preferred.
                    if index == self.preferred % n {
                        self.preferred = (index + 1) % n;
                    }
                    (index + 1) % n
                }
                None => self.preferred % n,
            };
            log::debug!(
                "dnsproxy: {} did not answer, asking {}",
                p.upstream,
                self.upstreams[next]
            );
            self.counters.tx_retry += 1;
            let upstream = self.upstreams[next];
            self.send(now, p.asker, p.key, upstream, p.tries + 1, out);
        }
    }

    fn upstream(
        &mut self,
        now: Instant,
        from: Ipv6Addr,
        from_port: u16,
        dst_port: u16,
        payload: &[u8],
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(p) = self.pending.get(&dst_port) else {
            self.counters.drop_unmatched += 1;
            return false;
        };
        if from != p.upstream || from_port != DNS_PORT {
            self.counters.drop_unmatched += 1;
            return false;
        }
        let matched = match Packet::new_checked(payload) {
            Ok(header) => header.is_response() && header.opcode() == 0 && header.id() == p.id,
            Err(_) => false,
        };
        let echoed = matched
            && wire::question(payload)
                .is_ok_and(|(q, _, _)| wire::same_question(&payload[q], &p.asker.question));
        if !echoed {
            self.counters.drop_unmatched += 1;
            return false;
        }
        let truncated = Packet::new_unchecked(payload).is_truncated();
        let parsed = wire::parse(payload);
        if parsed.is_err() && !truncated {
            // Possibly forged by someone who guessed port and id; the real
            // answer may still come.
            self.counters.drop_upstream_malformed += 1;
            return false;
        }
        let Some(p) = self.pending.remove(&dst_port) else {
            return false;
        };
        self.counters.rx_upstream += 1;
        if let Some(index) = self.upstreams.iter().position(|u| *u == from) {
            self.preferred = index;
        }
        let msg = match parsed {
            Ok(msg) => msg,
            Err(_) => {
                // TC set and cut mid-record: keep header and question.
                self.counters.upstream_tc += 1;
                let reply = self.truncated_reply(&p.asker, payload);
                self.respond(&p.asker, reply, out);
                return true;
            }
        };
        let mut answer = payload[..msg.end].to_vec();
        if truncated {
            self.counters.upstream_tc += 1;
        } else if let Some(lifetime) = self.cache_lifetime(&answer, &msg) {
            self.cache_store(now, p.key, &answer, &msg, lifetime);
        }
        self.finalize(&mut answer, msg.opt, &p.asker, false);
        self.respond(&p.asker, answer, out);
        true
    }

    /// How long an answer may be cached, in seconds, if at all.
    fn cache_lifetime(&self, answer: &[u8], msg: &Message) -> Option<u32> {
        if msg.qclass != wire::CACHED_CLASS
            || self.cfg.cache_entries == 0
            || answer.len() > MAX_CACHED_LEN
        {
            return None;
        }
        let rcode = msg.rcode();
        let lifetime = if rcode == 0 && msg.answers > 0 {
            let ttl = msg.answer_records().iter().map(wire::Rr::ttl).min()?;
            ttl.clamp(self.cfg.min_ttl, self.cfg.max_ttl)
        } else if rcode == u16::from(RCODE_NXDOMAIN) || rcode == 0 {
            // NXDOMAIN or NODATA: min(SOA TTL, SOA MINIMUM), RFC 2308 5;
            // without an SOA it is not cached (RFC 2308 5 again).
            let soa = msg
                .authority_records()
                .iter()
                .find(|rr| rr.rtype == wire::TYPE_SOA && rr.rdata.len() >= 22)?;
            let m = &answer[soa.rdata.end - 4..soa.rdata.end];
            let minimum = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
            soa.ttl()
                .min(minimum)
                .min(NEGATIVE_TTL_CAP)
                .min(self.cfg.max_ttl)
        } else {
            return None;
        };
        (lifetime > 0).then_some(lifetime)
    }

    fn cache_store(
        &mut self,
        now: Instant,
        key: CacheKey,
        answer: &[u8],
        msg: &Message,
        lifetime: u32,
    ) {
        if self.cache.len() >= self.cfg.cache_entries && !self.cache.contains_key(&key) {
            self.cache.retain(|_, entry| entry.expires > now);
            while self.cache.len() >= self.cfg.cache_entries {
                let Some(soonest) = self
                    .cache
                    .iter()
                    .min_by_key(|(_, entry)| (entry.expires, entry.seq))
                    .map(|(key, _)| key.clone())
                else {
                    break;
                };
                self.cache.remove(&soonest);
                self.counters.cache_evict += 1;
            }
        }
        // Every TTL but the OPT's (whose "TTL" holds flags).
        let ttls = msg
            .records
            .iter()
            .filter(|rr| msg.opt.is_none_or(|opt| rr.ttl_at != opt.start + 5))
            .map(|rr| (rr.ttl_at, rr.ttl()))
            .collect();
        self.counters.cache_insert += 1;
        self.cache_seq += 1;
        self.cache.insert(
            key,
            CacheEntry {
                msg: answer.to_vec(),
                ttls,
                opt: msg.opt,
                stored: now,
                expires: later(now, Duration::from_secs(lifetime.into())),
                lifetime,
                seq: self.cache_seq,
            },
        );
    }

    /// A copy of a fresh cached answer with its TTLs counted down.
    fn cache_lookup(&mut self, now: Instant, key: &CacheKey) -> Option<(Vec<u8>, Option<Opt>)> {
        let entry = self.cache.get(key)?;
        if entry.expires <= now {
            self.cache.remove(key);
            return None;
        }
        let elapsed = u32::try_from(now.saturating_duration_since(entry.stored).as_secs())
            .unwrap_or(u32::MAX);
        let mut msg = entry.msg.clone();
        for &(at, ttl) in &entry.ttls {
            let left = ttl.min(entry.lifetime).saturating_sub(elapsed);
            msg[at..at + 4].copy_from_slice(&left.to_be_bytes());
        }
        Some((msg, entry.opt))
    }

    /// Makes an upstream or cached answer the reply to `asker`'s query.
    fn finalize(&self, answer: &mut Vec<u8>, opt: Option<Opt>, asker: &Asker, from_cache: bool) {
        let mut header = Packet::new_unchecked(&mut answer[..]);
        header.set_id(asker.header.id());
        let mut flags = header.flags();
        if from_cache {
            flags &= !FLAG_AA;
        }
        header.set_flags(flags);
        // The client's spelling of the name (0x20 randomisation).
        let question = HEADER_LEN..HEADER_LEN + asker.question.len();
        if answer
            .get(question.clone())
            .is_some_and(|q| wire::same_question(q, &asker.question))
        {
            answer[question].copy_from_slice(&asker.question);
        }
        let Some(opt) = opt else {
            return;
        };
        if asker.edns.is_some() {
            answer[opt.start + 3..opt.start + 5]
                .copy_from_slice(&self.cfg.udp_payload.to_be_bytes());
            return;
        }
        // RFC 6891 7: no OPT in a reply to a query without one. It is the
        // last record in practice; anything after it is additional data
        // that can go too.
        answer.truncate(opt.start);
        let mut header = Packet::new_unchecked(&mut answer[..]);
        header.set_additional_count(opt.index_in_additional);
        if opt.ext_rcode != 0 {
            // An extended rcode a client without EDNS cannot see.
            let flags = (header.flags() & !0x000f) | u16::from(RCODE_SERVFAIL);
            header.set_flags(flags);
        }
    }

    /// Header and question with TC set (and an OPT for an EDNS client),
    /// the header flags taken from `answer`.
    fn truncated_reply(&self, asker: &Asker, answer: &[u8]) -> Vec<u8> {
        // The callers checked that `answer` holds a header.
        let mut header = Header::read(&mut BinDecoder::new(answer)).unwrap_or_default();
        header.set_id(asker.header.id()).set_truncated(true);
        wire::build(
            &header,
            asker.query.as_ref(),
            asker.edns.map(|(_, do_bit)| (self.cfg.udp_payload, do_bit)),
        )
    }

    fn servfail(&mut self, asker: &Asker, out: &mut Vec<Action>) {
        let reply = wire::build(
            &wire::reply_header(&asker.header, ResponseCode::ServFail),
            asker.query.as_ref(),
            asker.edns.map(|(_, do_bit)| (self.cfg.udp_payload, do_bit)),
        );
        self.respond(asker, reply, out);
    }

    /// Sends a reply on the client's transport, truncated for UDP if it is
    /// larger than the client takes.
    fn respond(&mut self, asker: &Asker, payload: Vec<u8>, out: &mut Vec<Action>) {
        match asker.client {
            Client::Udp { addr, local } => {
                let payload = if payload.len() > asker.limit(self.cfg.udp_payload) {
                    self.counters.truncated += 1;
                    self.truncated_reply(asker, &payload)
                } else {
                    payload
                };
                self.counters.tx_reply += 1;
                out.push(Action::Reply {
                    to: addr,
                    local,
                    from_port: DNS_PORT,
                    payload,
                });
            }
            Client::Tcp { slot, gen } => self.tcp_replies.push(TcpReply { slot, gen, payload }),
        }
    }

    /// Queries of one TCP connection waiting for upstream.
    fn pending_for(&self, slot: usize, gen: u64) -> usize {
        let client = Client::Tcp { slot, gen };
        self.pending
            .values()
            .filter(|p| p.asker.client == client)
            .count()
    }
}

/// `now + d`, saturating far in the future instead of overflowing.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}
