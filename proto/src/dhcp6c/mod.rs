//! DHCPv6 client for prefix delegation (RFC 8415), sans-IO.
//!
//! The [`Client`] is pure logic: the caller feeds it received UDP payloads
//! ([`Client::handle`]) and the current time ([`Client::poll`]), sends the
//! payloads `poll` returns to `ff02::1:2` port 547 from its link-local
//! address port 546, and calls `poll` again at the returned deadline (and
//! after every `handle`/`start`/`restore`/`renew_now`/`rebind_now`). No
//! sockets, threads or clocks inside, so tests run hours of lease time with
//! a fake clock.
//!
//! # State machine
//!
//! ```text
//! state               input                                      next state
//! Idle                start()                                    Soliciting
//! any                 restore(lease), unexpired                  Rebinding
//! Soliciting          Advertise with Preference 255, or the      Requesting
//!                     best one when the first RT is over
//! Soliciting          Reply with Rapid Commit (if configured)    Bound
//! Requesting          Reply with a usable prefix                 Bound
//! Requesting          NoPrefixAvail                              Requesting (next
//!                                                                Advertise) or Soliciting
//! Requesting          REQ_MAX_RC sent, no Reply                  Soliciting
//! Bound               T1                                         Renewing
//! Bound               T2 (T1 skipped, e.g. T1 == T2)             Rebinding
//! Renewing            T2 (Renew's MRD)                           Rebinding
//! Renewing/Rebinding  Reply with a usable prefix                 Bound
//! Renewing/Rebinding  NoBinding in the IA_PD                     Requesting (held IA)
//! holding a lease     valid lifetime over      (Event::Expired)  Soliciting
//! holding a lease     our prefix with valid 0  (Event::Lost)     Soliciting, or Bound
//!                                                                to the new prefix
//! any                 release()                                  Idle
//! ```
//!
//! - **Soliciting**: the first Solicit waits a random 0..=1 s
//!   (SOL_MAX_DELAY). Advertises are collected during the first
//!   retransmission timeout; one with Preference 255 is taken at once, else
//!   the highest preference wins (ties: first received). After the first RT
//!   the first acceptable Advertise is taken. Servers answering NoPrefixAvail
//!   are ignored for a while (doubling hold, at most SOL_MAX_RT). With Rapid
//!   Commit configured, a Reply carrying Rapid Commit binds directly.
//! - **Requesting**: Request to the chosen server. NoPrefixAvail: that server
//!   is ignored and the next collected Advertise is tried, else back to
//!   Soliciting. After REQ_MAX_RC transmissions: back to Soliciting.
//! - **Bound**: Renew at T1 (to our server), Rebind at T2 (to any server),
//!   the prefix expires at the end of its valid lifetime ([`Event::Expired`],
//!   then Soliciting again). Infinite lifetimes and T1/T2 have no deadline.
//! - **Renewing / Rebinding**: a Reply refreshes the lease
//!   ([`Event::Renewed`]) or moves it to a new prefix ([`Event::Bound`]);
//!   NoBinding in the IA_PD sends a Request for it (18.2.10.1); our prefix
//!   returned with valid lifetime 0 is [`Event::Lost`].
//!
//! # Stateless configuration (Information-request)
//!
//! On a line without PD the DNS servers come only from stateless DHCPv6
//! (the FLET'S RA carries no RDNSS). [`Client::request_information`] (an RA
//! with O=1), or a server answering NoPrefixAvail (with
//! [`Client::set_stateless_fallback`]), asks for them: while no
//! lease is held, an Information-request exchange runs beside whatever PD
//! exchange runs (its first transmission delayed by 0..=INF_MAX_DELAY,
//! retransmitted from INF_TIMEOUT up to INF_MAX_RT, RFC 8415 18.2.6), and
//! its Reply is kept as [`Information`] and refreshed after the Information
//! Refresh Time (21.23: 86400 s if absent, at least 600 s, never if
//! infinite) stretched by a positive RAND of up to 10 %, so many clients
//! told the same time spread out and none asks before it. A lease's own
//! options take precedence ([`Client::dns_servers`]); while one is held no
//! Information-request is sent, and one resumes when the lease goes.
//!
//! Retransmission follows section 15 with the section 7.6 parameters. Every
//! received message is treated as hostile: it is decoded through
//! `wire::parse` (framing checked before dhcproto sees it), and every
//! reason to drop one has a counter in [`Counters`].

mod wire;

#[cfg(test)]
mod tests;

use crate::jitter::Jitter;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use dhcproto::v6::{MessageType, Status};

use wire::{IaPdView, PrefixView, Received, INFINITE};

// RFC 8415 7.6 transmission and retransmission parameters.
const SOL_MAX_DELAY: Duration = Duration::from_secs(1);
const SOL_TIMEOUT: Duration = Duration::from_secs(1);
const SOL_MAX_RT_DEFAULT: u32 = 3600;
/// Range of a server's SOL_MAX_RT option; a value outside it is ignored
/// (21.24: the client MUST ignore it, not clamp it).
const SOL_MAX_RT_MIN: u32 = 60;
const SOL_MAX_RT_MAX: u32 = 86400;
const REQ_TIMEOUT: Duration = Duration::from_secs(1);
const REQ_MAX_RT: Duration = Duration::from_secs(30);
const REQ_MAX_RC: u32 = 10;
const REN_TIMEOUT: Duration = Duration::from_secs(10);
const REN_MAX_RT: Duration = Duration::from_secs(600);
const REB_TIMEOUT: Duration = Duration::from_secs(10);
const REB_MAX_RT: Duration = Duration::from_secs(600);
const REL_TIMEOUT: Duration = Duration::from_secs(1);
const REL_MAX_RC: u32 = 4;
const DEC_TIMEOUT: Duration = Duration::from_secs(1);
const DEC_MAX_RC: u32 = 4;
const INF_MAX_DELAY: Duration = Duration::from_secs(1);
const INF_TIMEOUT: Duration = Duration::from_secs(1);
const INF_MAX_RT_DEFAULT: u32 = 3600;
/// RFC 8415 7.6 / 21.23: Information Refresh Time default and floor.
const IRT_DEFAULT: u32 = 86400;
const IRT_MINIMUM: u32 = 600;

/// Advertises remembered during one Solicit round.
const MAX_ADVERTISES: usize = 8;
/// Servers remembered as having no prefix for us.
const MAX_NO_PREFIX_SERVERS: usize = 8;
/// First hold on a server that answered NoPrefixAvail; doubles with each
/// such answer up to SOL_MAX_RT.
const NO_PREFIX_HOLD: Duration = Duration::from_secs(10);
/// Events kept until [`Client::drain_events`]; the oldest go first.
const MAX_PENDING_EVENTS: usize = 64;
/// Bound on state transitions in one `poll`, against any logic loop.
const MAX_STEPS_PER_POLL: usize = 16;

/// Static configuration of one client (one IA_PD on one interface).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Our DUID, raw bytes as in the Client Identifier option.
    pub duid: Vec<u8>,
    pub iaid: u32,
    /// IA_PD prefix-length hint sent in Solicit; 0 = no hint.
    pub prefix_hint: u8,
    /// Also ask for an address (IA_NA, same IAID) from the start; an RA
    /// with M=1 turns it on later ([`Client::request_address`]).
    pub request_na: bool,
    /// Put Rapid Commit in Solicit.
    pub rapid_commit: bool,
}

/// A delegated prefix and what came with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    /// Network address (host bits zero).
    pub prefix: Ipv6Addr,
    pub prefix_len: u8,
    /// Seconds from `obtained`; 0xffff_ffff = infinite.
    pub preferred: u32,
    pub valid: u32,
    /// Effective T1/T2 in seconds from `obtained`, after the RFC 8415
    /// 14.2 / 21.21 rules; 0xffff_ffff = never.
    pub t1: u32,
    pub t2: u32,
    /// Server DUID.
    pub server_id: Vec<u8>,
    /// When the Reply that (re)bound it arrived.
    pub obtained: Instant,
    /// Option 23.
    pub dns_servers: Vec<Ipv6Addr>,
    /// Option 24.
    pub domains: Vec<String>,
    /// Option 64 (RFC 6334), FQDN without trailing dot.
    pub aftr_name: Option<String>,
    /// Option 82 as received.
    pub sol_max_rt: Option<u32>,
    /// IA_NA address, preferred, valid (when `request_na`).
    pub address: Option<(Ipv6Addr, u32, u32)>,
    /// The IA_PD's other prefixes (a server renumbering gracefully returns
    /// the old one deprecated beside the new one, RFC 8415 18.3.4): kept
    /// and renewed with `prefix` until their valid lifetime ends.
    pub extra_prefixes: Vec<DelegatedPrefix>,
}

/// One more prefix of the IA_PD; lifetimes in seconds from the lease's
/// `obtained`, 0xffff_ffff = infinite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DelegatedPrefix {
    pub prefix: Ipv6Addr,
    pub prefix_len: u8,
    pub preferred: u32,
    pub valid: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Soliciting,
    Requesting,
    Bound,
    Renewing,
    Rebinding,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// First binding, or a binding with a different prefix than before.
    Bound(Lease),
    /// Same prefix, lifetimes/options refreshed (Renew, Rebind, or a
    /// restored lease confirmed).
    Renewed(Lease),
    /// The valid lifetime ran out without a successful Renew/Rebind: the
    /// prefix must be withdrawn. The client restarts with Solicit.
    Expired(Lease),
    /// The server said the binding is gone (our prefix returned with valid
    /// lifetime 0): withdraw it. Followed by `Bound` if the same Reply
    /// delegated another prefix, else the client restarts with Solicit.
    Lost(Lease),
}

/// What a Reply to Information-request said (stateless DHCPv6).
#[derive(Clone, Debug, PartialEq)]
pub struct Information {
    /// Option 23.
    pub dns_servers: Vec<Ipv6Addr>,
    /// Option 24.
    pub domains: Vec<String>,
    /// Option 64 (RFC 6334), FQDN without trailing dot.
    pub aftr_name: Option<String>,
    pub server_id: Vec<u8>,
    /// When the Reply arrived.
    pub obtained: Instant,
    /// The refresh time in effect, seconds (after the IRT_MINIMUM floor);
    /// 0xffff_ffff = never refreshed.
    pub refresh: u32,
}

/// Seconds left until each lease deadline; `None` = infinite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTimes {
    pub t1: Option<u64>,
    pub t2: Option<u64>,
    pub preferred: Option<u64>,
    pub valid: Option<u64>,
}

/// What the client sent, received and dropped, for `ipoectl show errors`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub tx_solicit: u64,
    pub tx_request: u64,
    pub tx_renew: u64,
    pub tx_rebind: u64,
    pub tx_release: u64,
    pub tx_decline: u64,
    /// IA_NA addresses whose valid lifetime ended.
    pub address_expirations: u64,
    /// Decoded Advertise / Reply messages, before any check.
    pub rx_advertise: u64,
    pub rx_reply: u64,
    /// Bad framing, bad option lengths, undecodable.
    pub rx_malformed: u64,
    /// No open transaction with that xid (includes late replies).
    pub rx_wrong_xid: u64,
    /// Client Identifier missing or not ours.
    pub rx_wrong_client_id: u64,
    pub rx_no_server_id: u64,
    /// A message type a client does not take in its current state.
    pub rx_unexpected_type: u64,
    /// A status code made us ignore the message (UnspecFail, UseMulticast...).
    pub rx_status_error: u64,
    /// NoPrefixAvail answers; that server is ignored for a while.
    pub ignored_noprefixavail: u64,
    /// Advertise/Reply without a usable prefix in our IA_PD.
    pub rx_no_prefix: u64,
    /// IA_PD with T1 > T2, or IAPREFIX with preferred > valid, discarded.
    pub rx_bad_lifetimes: u64,
    /// NoBinding in reply to Renew/Rebind (answered with Request).
    pub rx_nobinding: u64,
    /// dhcproto panicked on sanitized input (caught); should stay 0.
    pub rx_decoder_panic: u64,
    pub bindings: u64,
    pub renewals: u64,
    pub expirations: u64,
    pub losses: u64,
    /// Request exchanges given up after REQ_MAX_RC.
    pub request_failures: u64,
    /// Events dropped because nobody drained them.
    pub events_dropped: u64,
    pub tx_information_request: u64,
    /// Replies to Information-request taken.
    pub information_replies: u64,
}

impl Counters {
    /// Every counter with a kebab-case name, in a fixed order.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("tx-solicit", self.tx_solicit),
            ("tx-request", self.tx_request),
            ("tx-renew", self.tx_renew),
            ("tx-rebind", self.tx_rebind),
            ("tx-release", self.tx_release),
            ("tx-decline", self.tx_decline),
            ("address-expirations", self.address_expirations),
            ("rx-advertise", self.rx_advertise),
            ("rx-reply", self.rx_reply),
            ("rx-malformed", self.rx_malformed),
            ("rx-wrong-xid", self.rx_wrong_xid),
            ("rx-wrong-client-id", self.rx_wrong_client_id),
            ("rx-no-server-id", self.rx_no_server_id),
            ("rx-unexpected-type", self.rx_unexpected_type),
            ("rx-status-error", self.rx_status_error),
            ("ignored-noprefixavail", self.ignored_noprefixavail),
            ("rx-no-prefix", self.rx_no_prefix),
            ("rx-bad-lifetimes", self.rx_bad_lifetimes),
            ("rx-nobinding", self.rx_nobinding),
            ("rx-decoder-panic", self.rx_decoder_panic),
            ("bindings", self.bindings),
            ("renewals", self.renewals),
            ("expirations", self.expirations),
            ("losses", self.losses),
            ("request-failures", self.request_failures),
            ("events-dropped", self.events_dropped),
            ("tx-information-request", self.tx_information_request),
            ("information-replies", self.information_replies),
        ]
    }
}

/// DUID-LL (type 3) for an Ethernet MAC (hardware type 1).
pub fn duid_ll(mac: [u8; 6]) -> Vec<u8> {
    let mut duid = vec![0, 3, 0, 1];
    duid.extend_from_slice(&mac);
    duid
}

/// DUID-LLT (type 1) for an Ethernet MAC; `time` is seconds since
/// 2000-01-01 00:00 UTC.
pub fn duid_llt(mac: [u8; 6], time: u32) -> Vec<u8> {
    let mut duid = vec![0, 1, 0, 1];
    duid.extend_from_slice(&time.to_be_bytes());
    duid.extend_from_slice(&mac);
    duid
}

/// DUID-UUID (type 4, RFC 6355).
pub fn duid_uuid(uuid: [u8; 16]) -> Vec<u8> {
    let mut duid = vec![0, 4];
    duid.extend_from_slice(&uuid);
    duid
}

/// DUID-EN (type 2): enterprise number and its identifier.
pub fn duid_en(enterprise: u32, id: &[u8]) -> Vec<u8> {
    let mut duid = vec![0, 2];
    duid.extend_from_slice(&enterprise.to_be_bytes());
    duid.extend_from_slice(id);
    duid
}

/// An advertised binding we may Request.
#[derive(Clone, Debug)]
struct Advert {
    server_id: Vec<u8>,
    preference: u8,
    prefix: (Ipv6Addr, u8),
    address: Option<Ipv6Addr>,
    /// Arrival order, for "ties: first received".
    arrival: u64,
}

/// A server that answered NoPrefixAvail, ignored until `until`.
#[derive(Clone, Debug)]
struct NoPrefixServer {
    server_id: Vec<u8>,
    until: Instant,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ExchangeKind {
    Solicit,
    /// Request for an advertised binding, or for the one we hold after
    /// NoBinding.
    Request {
        server_id: Vec<u8>,
        prefix: (Ipv6Addr, u8),
        address: Option<Ipv6Addr>,
    },
    Renew,
    Rebind,
    /// Stateless configuration; runs in `Client::info_exchange`, never in
    /// `Client::exchange`.
    InformationRequest,
    /// An IA_NA address another node uses (DAD, 18.2.8); already dropped
    /// from the lease.
    Decline {
        server_id: Vec<u8>,
        address: Ipv6Addr,
    },
    /// The lease is already gone from the client; what to release is here.
    Release {
        server_id: Vec<u8>,
        prefix: (Ipv6Addr, u8),
        address: Option<Ipv6Addr>,
    },
}

impl ExchangeKind {
    fn message_type(&self) -> MessageType {
        match self {
            ExchangeKind::Solicit => MessageType::Solicit,
            ExchangeKind::Request { .. } => MessageType::Request,
            ExchangeKind::Renew => MessageType::Renew,
            ExchangeKind::Rebind => MessageType::Rebind,
            ExchangeKind::InformationRequest => MessageType::InformationRequest,
            ExchangeKind::Release { .. } => MessageType::Release,
            ExchangeKind::Decline { .. } => MessageType::Decline,
        }
    }
}

/// One message exchange with its retransmission state (section 15).
#[derive(Clone, Debug)]
struct Exchange {
    kind: ExchangeKind,
    xid: u32,
    /// First transmission: the base of Elapsed Time and of MRD.
    first_tx: Option<Instant>,
    /// Next (re)transmission, or when the exchange gives up.
    next_tx: Instant,
    /// The current retransmission timeout.
    rt: Duration,
    tx_count: u32,
    /// Absolute end of the exchange (MRD), if any.
    mrd_end: Option<Instant>,
}

/// The DHCPv6-PD client. See the module documentation.
#[derive(Debug)]
pub struct Client {
    cfg: ClientConfig,
    rng: Jitter,
    exchange: Option<Exchange>,
    lease: Option<Lease>,
    advertises: Vec<Advert>,
    arrivals: u64,
    no_prefix_servers: Vec<NoPrefixServer>,
    /// NoPrefixAvail answers since the last binding; doubles the hold.
    no_prefix_strikes: u32,
    /// SOL_MAX_RT in seconds: the default or the server's option 82.
    sol_max_rt: u32,
    /// IA_NA is asked for: configured, or an RA said M=1.
    request_na: bool,
    events: Vec<Event>,
    counters: Counters,
    /// Stateless configuration is wanted: an RA said O=1, or a server had
    /// no prefix for us.
    info_wanted: bool,
    info: Option<Information>,
    info_exchange: Option<Exchange>,
    /// When the held information is refreshed; `None`: never.
    info_refresh: Option<Instant>,
    /// INF_MAX_RT in seconds: the default or the server's option 83.
    inf_max_rt: u32,
    /// A NoPrefixAvail answer also asks for stateless configuration.
    stateless_fallback: bool,
}

impl Client {
    /// `seed` drives xids and jitter.
    pub fn new(cfg: ClientConfig, seed: u64) -> Self {
        Self {
            request_na: cfg.request_na,
            cfg,
            rng: Jitter::new(seed),
            exchange: None,
            lease: None,
            advertises: Vec::new(),
            arrivals: 0,
            no_prefix_servers: Vec::new(),
            no_prefix_strikes: 0,
            sol_max_rt: SOL_MAX_RT_DEFAULT,
            events: Vec::new(),
            counters: Counters::default(),
            info_wanted: false,
            info: None,
            info_exchange: None,
            info_refresh: None,
            inf_max_rt: INF_MAX_RT_DEFAULT,
            stateless_fallback: false,
        }
    }

    /// Begins server discovery; a no-op unless Idle.
    pub fn start(&mut self, now: Instant) {
        if self.state() == State::Idle {
            self.start_solicit(now, true);
        }
    }

    /// Takes over a persisted lease. Unexpired at `now`: it becomes the
    /// current lease and is confirmed with Rebind (MRD = the rest of its
    /// valid lifetime; Solicit if that fails). Expired: plain [`start`].
    ///
    /// [`start`]: Client::start
    pub fn restore(&mut self, lease: Lease, now: Instant) {
        self.exchange = None;
        self.advertises.clear();
        self.lease = None;
        if let Some(value) = lease.sol_max_rt.filter(|v| sol_max_rt_in_range(*v)) {
            self.sol_max_rt = value;
        }
        if deadline(lease.obtained, lease.valid).is_some_and(|end| end <= now) {
            log::info!(
                "dhcp6c: saved lease {}/{} has expired, soliciting",
                lease.prefix,
                lease.prefix_len
            );
            self.start_solicit(now, true);
            return;
        }
        log::info!(
            "dhcp6c: confirming saved lease {}/{} with Rebind",
            lease.prefix,
            lease.prefix_len
        );
        self.lease = Some(lease);
        self.start_rebind(now);
    }

    /// Takes a UDP payload received on port 546.
    pub fn handle(&mut self, now: Instant, payload: &[u8]) {
        let received = match wire::parse(payload, self.cfg.iaid) {
            Ok(received) => received,
            Err(error) => {
                self.counters.rx_malformed += 1;
                if error == wire::WireError::DecoderPanic {
                    self.counters.rx_decoder_panic += 1;
                }
                log::debug!(
                    "dhcp6c: rx malformed message ({error}), {} bytes",
                    payload.len()
                );
                return;
            }
        };
        log::debug!(
            "dhcp6c: rx {:?} xid {:06x} server {}",
            received.kind,
            received.xid,
            received.server_id.as_deref().map(hex).unwrap_or_default()
        );
        match received.kind {
            MessageType::Advertise => self.counters.rx_advertise += 1,
            MessageType::Reply => self.counters.rx_reply += 1,
            _ => {
                // Reconfigure included: this client does not support it.
                self.counters.rx_unexpected_type += 1;
                return;
            }
        }
        let for_information = self
            .info_exchange
            .as_ref()
            .is_some_and(|e| e.tx_count > 0 && e.xid == received.xid);
        if for_information && received.kind == MessageType::Reply {
            self.on_information_reply(now, &received);
            return;
        }
        let Some(exchange) = &self.exchange else {
            self.counters.rx_wrong_xid += 1;
            return;
        };
        if exchange.tx_count == 0 || received.xid != exchange.xid {
            self.counters.rx_wrong_xid += 1;
            return;
        }
        let kind = exchange.kind.clone();
        let acceptable = match (&kind, received.kind) {
            (ExchangeKind::Solicit, MessageType::Advertise) => true,
            (ExchangeKind::Solicit, MessageType::Reply) => {
                self.cfg.rapid_commit && received.rapid_commit
            }
            (_, MessageType::Reply) => true,
            _ => false,
        };
        if !acceptable {
            self.counters.rx_unexpected_type += 1;
            return;
        }
        if received.client_id.as_deref() != Some(self.cfg.duid.as_slice()) {
            self.counters.rx_wrong_client_id += 1;
            return;
        }
        let Some(server_id) = received.server_id.clone() else {
            self.counters.rx_no_server_id += 1;
            return;
        };
        // 18.2.9 / 18.2.10: SOL_MAX_RT is processed even from messages
        // that are otherwise ignored.
        if let Some(value) = received.sol_max_rt {
            if !sol_max_rt_in_range(value) {
                log::debug!("dhcp6c: SOL_MAX_RT {value} s out of range, ignored");
            } else {
                if value != self.sol_max_rt {
                    log::info!("dhcp6c: server sets SOL_MAX_RT to {value} s");
                }
                self.sol_max_rt = value;
            }
        }
        match received.kind {
            MessageType::Advertise => self.on_advertise(now, &received, server_id),
            _ => self.on_reply(now, kind, &received, server_id),
        }
    }

    /// Appends the messages due at `now` to `out` (UDP payloads for
    /// `ff02::1:2` port 547) and returns when to call again (`None`: only
    /// after some other input).
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) -> Option<Instant> {
        for _ in 0..MAX_STEPS_PER_POLL {
            if !self.step(now, out) {
                break;
            }
        }
        self.step_information(now, out);
        self.next_deadline()
    }

    /// The RA says O=1 (other configuration by DHCPv6): ask for it by
    /// Information-request while no lease brings it (RFC 8415 18.2.6).
    /// Call `poll` after.
    pub fn request_information(&mut self) {
        if !self.info_wanted {
            log::info!("dhcp6c: stateless configuration wanted (Information-request)");
            self.info_wanted = true;
        }
    }

    /// From now on, a server answering NoPrefixAvail also makes the client
    /// ask for stateless configuration, as [`Self::request_information`]
    /// does (a line without PD still has DNS servers to learn). Off by
    /// default so a PD-only client sends exactly the PD exchange.
    pub fn set_stateless_fallback(&mut self, on: bool) {
        self.stateless_fallback = on;
    }

    /// The last Reply to Information-request, if any.
    pub fn information(&self) -> Option<&Information> {
        self.info.as_ref()
    }

    /// The transaction id a Reply to our Information-request must carry,
    /// if one is open (beside [`Self::open_xid`]).
    pub fn information_xid(&self) -> Option<u32> {
        self.info_exchange.as_ref().map(|e| e.xid)
    }

    /// DNS servers learned by DHCPv6: the lease's, else the stateless ones.
    pub fn dns_servers(&self) -> &[Ipv6Addr] {
        match (&self.lease, &self.info) {
            (Some(lease), _) => &lease.dns_servers,
            (None, Some(info)) => &info.dns_servers,
            (None, None) => &[],
        }
    }

    /// Domain search list learned by DHCPv6, as [`Self::dns_servers`].
    pub fn domains(&self) -> &[String] {
        match (&self.lease, &self.info) {
            (Some(lease), _) => &lease.domains,
            (None, Some(info)) => &info.domains,
            (None, None) => &[],
        }
    }

    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The transaction id a reply must carry now, if an exchange is open
    /// (the workers let such replies through a flood: `police::Reserve`).
    pub fn open_xid(&self) -> Option<u32> {
        self.exchange.as_ref().map(|e| e.xid)
    }

    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    pub fn state(&self) -> State {
        match &self.exchange {
            None if self.lease.is_some() => State::Bound,
            None => State::Idle,
            Some(exchange) => match exchange.kind {
                ExchangeKind::Solicit => State::Soliciting,
                ExchangeKind::Request { .. } => State::Requesting,
                ExchangeKind::Renew => State::Renewing,
                ExchangeKind::Rebind => State::Rebinding,
                ExchangeKind::Release { .. } | ExchangeKind::InformationRequest => State::Idle,
                ExchangeKind::Decline { .. } => State::Bound,
            },
        }
    }

    /// Renew now (`ipoectl pd renew`); only when Bound.
    pub fn renew_now(&mut self, now: Instant) {
        if self.state() == State::Bound {
            log::info!("dhcp6c: renew requested");
            self.start_renew(now);
        }
    }

    /// Rebind now; only while holding a lease (Bound, Renewing, Rebinding).
    pub fn rebind_now(&mut self, now: Instant) {
        if matches!(
            self.state(),
            State::Bound | State::Renewing | State::Rebinding
        ) {
            log::info!("dhcp6c: rebind requested");
            self.start_rebind(now);
        }
    }

    /// The link may have changed (carrier up, or a router is back after a
    /// time without one): a Solicit that has backed off is started afresh,
    /// from IRT, instead of waiting up to SOL_MAX_RT for its next turn
    /// (RFC 8415 15 timers are per exchange; RFC 7084 WPD-4). Only while
    /// soliciting without a lease, and only once past the first
    /// retransmission: a young exchange has nothing to gain.
    pub fn restart_discovery(&mut self, now: Instant) {
        let backed_off = self.lease.is_none()
            && self
                .exchange
                .as_ref()
                .is_some_and(|e| e.kind == ExchangeKind::Solicit && e.tx_count >= 2);
        if backed_off {
            log::info!("dhcp6c: link changed, restarting Solicit");
            self.start_solicit(now, true);
        }
    }

    /// Ask for an address (IA_NA) from now on: an RA with M=1 says the
    /// link assigns addresses by DHCPv6 (RFC 7084 WAA-6). It goes into the
    /// next Solicit, Request, Renew or Rebind.
    pub fn request_address(&mut self) {
        if !self.request_na {
            log::info!("dhcp6c: RA with M=1, asking for an address (IA_NA) too");
            self.request_na = true;
        }
    }

    /// Our IA_NA address failed DAD: drop it and Decline it to the server
    /// that gave it (RFC 8415 18.2.8), which then asks for another one.
    pub fn decline(&mut self, now: Instant, address: Ipv6Addr) {
        let Some(lease) = &mut self.lease else { return };
        if lease.address.map(|(a, _, _)| a) != Some(address) {
            return;
        }
        lease.address = None;
        log::warn!(
            "dhcp6c: {address} is in use by another node, declining it to server {}",
            hex(&lease.server_id)
        );
        let kind = ExchangeKind::Decline {
            server_id: lease.server_id.clone(),
            address,
        };
        self.begin_exchange(kind, now, None);
    }

    /// Gives the current lease back: returns the first Release (which
    /// `poll` retransmits up to REL_MAX_RC times if still called) and goes
    /// Idle. `None` without a lease.
    pub fn release(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.exchange = None;
        self.advertises.clear();
        let lease = self.lease.take()?;
        log::info!(
            "dhcp6c: releasing {}/{} to server {}",
            lease.prefix,
            lease.prefix_len,
            hex(&lease.server_id)
        );
        let kind = ExchangeKind::Release {
            server_id: lease.server_id,
            prefix: (lease.prefix, lease.prefix_len),
            address: lease.address.map(|(addr, _, _)| addr),
        };
        self.begin_exchange(kind, now, None);
        self.transmit(now)
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn duid(&self) -> &[u8] {
        &self.cfg.duid
    }

    pub fn iaid(&self) -> u32 {
        self.cfg.iaid
    }

    /// Seconds left until T1, T2, preferred end and valid end of the
    /// current lease (`None` for infinite), for `ipoectl show pd`.
    pub fn times(&self, now: Instant) -> Option<LeaseTimes> {
        let lease = self.lease.as_ref()?;
        let left = |secs: u32| {
            deadline(lease.obtained, secs).map(|at| at.saturating_duration_since(now).as_secs())
        };
        Some(LeaseTimes {
            t1: left(lease.t1),
            t2: left(lease.t2),
            preferred: left(lease.preferred),
            valid: left(lease.valid),
        })
    }

    /// Makes one transition or transmission due at `now`; false when
    /// nothing is due.
    fn step(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) -> bool {
        if let Some(lease) = &mut self.lease {
            // Other prefixes of the IA_PD end silently: the LAN never
            // used them, or already advertises them deprecated.
            let obtained = lease.obtained;
            lease
                .extra_prefixes
                .retain(|p| deadline(obtained, p.valid).is_none_or(|end| now < end));
            if let Some((addr, _, valid)) = lease.address {
                if deadline(obtained, valid).is_some_and(|end| now >= end) {
                    log::info!("dhcp6c: address {addr} expired (valid lifetime over)");
                    lease.address = None;
                    self.counters.address_expirations += 1;
                }
            }
        }
        if let Some(lease) = &self.lease {
            if deadline(lease.obtained, lease.valid).is_some_and(|end| now >= end) {
                self.expire(now);
                return true;
            }
        }
        let Some(exchange) = &self.exchange else {
            let Some(lease) = &self.lease else {
                return false;
            };
            if deadline(lease.obtained, lease.t2).is_some_and(|t2| now >= t2) {
                self.start_rebind(now);
                return true;
            }
            if deadline(lease.obtained, lease.t1).is_some_and(|t1| now >= t1) {
                self.start_renew(now);
                return true;
            }
            return false;
        };
        if now < exchange.next_tx {
            return false;
        }
        let first_rt_over = exchange.kind == ExchangeKind::Solicit && exchange.tx_count >= 1;
        let (_, _, max_count) = self.parameters(&exchange.kind);
        let out_of_count = max_count != 0 && exchange.tx_count >= max_count;
        let out_of_time = exchange.mrd_end.is_some_and(|end| now >= end);
        if first_rt_over {
            // Collecting is over: act on the best Advertise received.
            if let Some(best) = self.take_best_advert(now) {
                self.start_request(now, best);
                return true;
            }
        }
        if out_of_count || out_of_time {
            self.exchange_failed(now);
            return true;
        }
        if let Some(message) = self.transmit(now) {
            out.push(message);
        }
        true
    }

    /// Starts, transmits or stops the Information-request exchange.
    fn step_information(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        if self.lease.is_some() || !self.info_wanted {
            // The lease's Replies carry the options.
            self.info_exchange = None;
            return;
        }
        if self.info_exchange.is_none() {
            let due = match &self.info {
                None => true,
                Some(_) => self.info_refresh.is_some_and(|at| now >= at),
            };
            if !due {
                return;
            }
            // 18.2.6: the first Information-request waits a random
            // 0..=INF_MAX_DELAY.
            let delay_ms = self.rng.range(0, INF_MAX_DELAY.as_millis() as i64) as u64;
            let xid = (self.rng.next_u64() >> 40) as u32;
            self.info_exchange = Some(Exchange {
                kind: ExchangeKind::InformationRequest,
                xid,
                first_tx: None,
                next_tx: now + Duration::from_millis(delay_ms),
                rt: Duration::ZERO,
                tx_count: 0,
                mrd_end: None,
            });
        }
        if self
            .info_exchange
            .as_ref()
            .is_some_and(|e| now >= e.next_tx)
        {
            // `transmit` runs `self.exchange`: lend it this one.
            std::mem::swap(&mut self.exchange, &mut self.info_exchange);
            let message = self.transmit(now);
            std::mem::swap(&mut self.exchange, &mut self.info_exchange);
            out.extend(message);
        }
    }

    /// A Reply to our Information-request (xid already matched).
    fn on_information_reply(&mut self, now: Instant, received: &Received) {
        if received.client_id.as_deref() != Some(self.cfg.duid.as_slice()) {
            self.counters.rx_wrong_client_id += 1;
            return;
        }
        let Some(server_id) = received.server_id.clone() else {
            self.counters.rx_no_server_id += 1;
            return;
        };
        // 21.25: INF_MAX_RT, range as SOL_MAX_RT's, out of range ignored;
        // processed even from a Reply that is otherwise ignored (18.2.10).
        if let Some(value) = received.inf_max_rt.filter(|v| sol_max_rt_in_range(*v)) {
            self.inf_max_rt = value;
        }
        if let Some(status) = received.status.filter(|s| *s != Status::Success) {
            // UnspecFail, UseMulticast, ...: keep retransmitting (18.2.10).
            log::debug!("dhcp6c: Reply to Information-request with status {status:?} ignored");
            self.counters.rx_status_error += 1;
            return;
        }
        let refresh = match received.information_refresh_time.unwrap_or(IRT_DEFAULT) {
            INFINITE => INFINITE,
            secs => secs.max(IRT_MINIMUM),
        };
        self.info_refresh = (refresh != INFINITE).then(|| {
            let base = Duration::from_secs(u64::from(refresh));
            now + self.jittered(base, true)
        });
        log::info!(
            "dhcp6c: stateless configuration from server {}: DNS {:?}, refresh {}",
            hex(&server_id),
            received.dns_servers,
            seconds(refresh)
        );
        self.info = Some(Information {
            dns_servers: received.dns_servers.clone(),
            domains: received.domains.clone(),
            aftr_name: received.aftr_name.clone(),
            server_id,
            obtained: now,
            refresh,
        });
        self.info_exchange = None;
        self.counters.information_replies += 1;
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        };
        consider(self.exchange.as_ref().map(|e| e.next_tx));
        consider(self.info_exchange.as_ref().map(|e| e.next_tx));
        if self.lease.is_none() && self.info_wanted && self.info_exchange.is_none() {
            consider(self.info_refresh);
        }
        if let Some(lease) = &self.lease {
            consider(deadline(lease.obtained, lease.valid));
            consider(
                lease
                    .address
                    .and_then(|(_, _, valid)| deadline(lease.obtained, valid)),
            );
            if self.exchange.is_none() {
                consider(deadline(lease.obtained, lease.t1));
                consider(deadline(lease.obtained, lease.t2));
            }
        }
        next
    }

    /// IRT, MRT and MRC for an exchange (7.6).
    fn parameters(&self, kind: &ExchangeKind) -> (Duration, Duration, u32) {
        match kind {
            ExchangeKind::Solicit => (
                SOL_TIMEOUT,
                Duration::from_secs(u64::from(self.sol_max_rt)),
                0,
            ),
            ExchangeKind::Request { .. } => (REQ_TIMEOUT, REQ_MAX_RT, REQ_MAX_RC),
            ExchangeKind::Renew => (REN_TIMEOUT, REN_MAX_RT, 0),
            ExchangeKind::Rebind => (REB_TIMEOUT, REB_MAX_RT, 0),
            ExchangeKind::InformationRequest => (
                INF_TIMEOUT,
                Duration::from_secs(u64::from(self.inf_max_rt)),
                0,
            ),
            ExchangeKind::Release { .. } => (REL_TIMEOUT, Duration::ZERO, REL_MAX_RC),
            ExchangeKind::Decline { .. } => (DEC_TIMEOUT, Duration::ZERO, DEC_MAX_RC),
        }
    }

    /// `base` + RAND * `base`, RAND uniform in [-0.1, +0.1] (or (0, 0.1]
    /// when `positive`), at millisecond-of-RAND resolution.
    fn jittered(&mut self, base: Duration, positive: bool) -> Duration {
        let permille = if positive {
            self.rng.range(1, 100)
        } else {
            self.rng.range(-100, 100)
        };
        let nanos = base.as_nanos() as i128;
        let jittered = nanos + nanos * i128::from(permille) / 1000;
        Duration::from_nanos(u64::try_from(jittered.max(0)).unwrap_or(u64::MAX))
    }

    fn begin_exchange(&mut self, kind: ExchangeKind, first_tx: Instant, mrd_end: Option<Instant>) {
        // 24-bit transaction id.
        let xid = (self.rng.next_u64() >> 40) as u32;
        self.exchange = Some(Exchange {
            kind,
            xid,
            first_tx: None,
            next_tx: first_tx,
            rt: Duration::ZERO,
            tx_count: 0,
            mrd_end,
        });
    }

    /// (Re)transmits the current exchange's message and schedules the next
    /// transmission (section 15).
    fn transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        let exchange = self.exchange.as_ref()?;
        let kind = exchange.kind.clone();
        let (initial, maximum, _) = self.parameters(&kind);
        let rt = if exchange.tx_count == 0 {
            // RT = IRT + RAND*IRT; strictly positive RAND for the first
            // Solicit so it never fires before IRT (15).
            self.jittered(initial, kind == ExchangeKind::Solicit)
        } else {
            // RT = 2*RTprev + RAND*RTprev, capped to MRT + RAND*MRT.
            let previous = exchange.rt;
            let doubled = previous + self.jittered(previous, false);
            if !maximum.is_zero() && doubled > maximum {
                self.jittered(maximum, false)
            } else {
                doubled
            }
        };
        let exchange = self.exchange.as_mut()?;
        let first_tx = *exchange.first_tx.get_or_insert(now);
        let elapsed_cs = now.saturating_duration_since(first_tx).as_millis() / 10;
        let elapsed = u16::try_from(elapsed_cs).unwrap_or(u16::MAX);
        exchange.tx_count += 1;
        exchange.rt = rt;
        let mut next_tx = now + rt;
        if let Some(end) = exchange.mrd_end {
            // Give up exactly at MRD, not one RT later.
            next_tx = next_tx.min(end);
        }
        exchange.next_tx = next_tx;
        let xid = exchange.xid;
        let tx_count = exchange.tx_count;

        let message = self.encode(&kind, xid, elapsed);
        let counter = match kind {
            ExchangeKind::Solicit => &mut self.counters.tx_solicit,
            ExchangeKind::Request { .. } => &mut self.counters.tx_request,
            ExchangeKind::Renew => &mut self.counters.tx_renew,
            ExchangeKind::Rebind => &mut self.counters.tx_rebind,
            ExchangeKind::InformationRequest => &mut self.counters.tx_information_request,
            ExchangeKind::Release { .. } => &mut self.counters.tx_release,
            ExchangeKind::Decline { .. } => &mut self.counters.tx_decline,
        };
        *counter += 1;
        log::debug!(
            "dhcp6c: tx {:?} xid {xid:06x} #{tx_count} elapsed {elapsed}/100 s, next in {} ms",
            kind.message_type(),
            rt.as_millis()
        );
        if message.is_none() {
            log::warn!("dhcp6c: could not encode {:?}", kind.message_type());
        }
        message
    }

    fn encode(&self, kind: &ExchangeKind, xid: u32, elapsed: u16) -> Option<Vec<u8>> {
        let held = self.lease.as_ref();
        let held_prefix = held.map(|l| (l.prefix, l.prefix_len));
        let extra: Vec<(Ipv6Addr, u8)> = match kind {
            ExchangeKind::Renew | ExchangeKind::Rebind => held
                .map(|l| {
                    l.extra_prefixes
                        .iter()
                        .map(|p| (p.prefix, p.prefix_len))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let held_address = held.and_then(|l| l.address).map(|(addr, _, _)| addr);
        let na = |address: Option<Ipv6Addr>| self.request_na.then_some(address);
        let (server_id, prefix, na) = match kind {
            ExchangeKind::Solicit => {
                let hint = (self.cfg.prefix_hint != 0)
                    .then_some((Ipv6Addr::UNSPECIFIED, self.cfg.prefix_hint));
                (None, hint, na(None))
            }
            ExchangeKind::Request {
                server_id,
                prefix,
                address,
            }
            | ExchangeKind::Release {
                server_id,
                prefix,
                address,
            } => (Some(server_id.as_slice()), Some(*prefix), na(*address)),
            ExchangeKind::Renew => (
                Some(held?.server_id.as_slice()),
                Some(held_prefix?),
                na(held_address),
            ),
            ExchangeKind::Rebind => (None, Some(held_prefix?), na(held_address)),
            // 18.2.6: no IA options.
            ExchangeKind::InformationRequest => (None, None, None),
            // 18.2.8: only the IA_NA with the address declined.
            ExchangeKind::Decline { server_id, address } => {
                (Some(server_id.as_slice()), None, Some(Some(*address)))
            }
        };
        wire::build(&wire::Outgoing {
            kind: kind.message_type(),
            xid,
            client_id: &self.cfg.duid,
            server_id,
            elapsed,
            iaid: self.cfg.iaid,
            prefix,
            extra_prefixes: &extra,
            na,
            rapid_commit: *kind == ExchangeKind::Solicit && self.cfg.rapid_commit,
            ia_pd: !matches!(
                kind,
                ExchangeKind::Decline { .. } | ExchangeKind::InformationRequest
            ),
            information: *kind == ExchangeKind::InformationRequest,
        })
    }

    /// A new Solicit round. `fresh` forgets servers that had no prefix
    /// (kept when we come back from their NoPrefixAvail to a Request).
    fn start_solicit(&mut self, now: Instant, fresh: bool) {
        if fresh {
            self.no_prefix_servers.clear();
            self.no_prefix_strikes = 0;
        }
        self.advertises.clear();
        // SOL_MAX_DELAY: random 0..=1 s before the first Solicit.
        let max_delay_ms = SOL_MAX_DELAY.as_millis() as i64;
        let delay = Duration::from_millis(self.rng.range(0, max_delay_ms) as u64);
        self.begin_exchange(ExchangeKind::Solicit, now + delay, None);
    }

    fn start_request(&mut self, now: Instant, advert: Advert) {
        log::info!(
            "dhcp6c: requesting {}/{} from server {} (preference {})",
            advert.prefix.0,
            advert.prefix.1,
            hex(&advert.server_id),
            advert.preference
        );
        // The other Advertises stay: if this server answers NoPrefixAvail,
        // the next one is tried without a new Solicit.
        let kind = ExchangeKind::Request {
            server_id: advert.server_id,
            prefix: advert.prefix,
            address: advert.address,
        };
        self.begin_exchange(kind, now, None);
    }

    /// Renew to our server at once; MRD ends at T2.
    fn start_renew(&mut self, now: Instant) {
        let Some(lease) = &self.lease else { return };
        let t2 = deadline(lease.obtained, lease.t2);
        if t2.is_some_and(|t2| now >= t2) {
            self.start_rebind(now);
            return;
        }
        log::info!(
            "dhcp6c: renewing {}/{} with server {}",
            lease.prefix,
            lease.prefix_len,
            hex(&lease.server_id)
        );
        self.begin_exchange(ExchangeKind::Renew, now, t2);
    }

    /// Rebind to any server at once; MRD ends with the valid lifetime.
    fn start_rebind(&mut self, now: Instant) {
        let Some(lease) = &self.lease else { return };
        log::info!("dhcp6c: rebinding {}/{}", lease.prefix, lease.prefix_len);
        let valid_end = deadline(lease.obtained, lease.valid);
        self.begin_exchange(ExchangeKind::Rebind, now, valid_end);
    }

    fn exchange_failed(&mut self, now: Instant) {
        let Some(exchange) = self.exchange.take() else {
            return;
        };
        match exchange.kind {
            ExchangeKind::Solicit => self.start_solicit(now, false),
            ExchangeKind::Request { server_id, .. } => {
                self.counters.request_failures += 1;
                log::info!(
                    "dhcp6c: no Reply from server {} after {REQ_MAX_RC} Requests, soliciting",
                    hex(&server_id)
                );
                self.start_solicit(now, true);
            }
            ExchangeKind::Renew => {
                log::info!("dhcp6c: no Reply to Renew by T2");
                self.start_rebind(now);
            }
            // Rebind's MRD is the valid lifetime: the expiry check in
            // `step` normally fires first.
            ExchangeKind::Rebind => self.expire(now),
            ExchangeKind::Release { .. } => {}
            // Given up: the next Renew asks for another address anyway.
            ExchangeKind::Decline { .. } => {}
            // No MRC/MRD: it never gives up, and never runs here.
            ExchangeKind::InformationRequest => {}
        }
    }

    /// The valid lifetime is over: drop the lease and solicit again.
    fn expire(&mut self, now: Instant) {
        self.exchange = None;
        if let Some(lease) = self.lease.take() {
            log::info!(
                "dhcp6c: {}/{} expired (valid lifetime over), soliciting",
                lease.prefix,
                lease.prefix_len
            );
            self.counters.expirations += 1;
            self.push_event(Event::Expired(lease));
        }
        self.start_solicit(now, true);
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() >= MAX_PENDING_EVENTS {
            self.events.remove(0);
            self.counters.events_dropped += 1;
        }
        self.events.push(event);
    }

    fn is_no_prefix_server(&self, server_id: &[u8], now: Instant) -> bool {
        self.no_prefix_servers
            .iter()
            .any(|s| s.server_id == server_id && now < s.until)
    }

    /// Remembers a server that answered NoPrefixAvail. The hold doubles with
    /// each such answer (10 s, 20 s, ... up to SOL_MAX_RT) so a lone server
    /// whose pool is exhausted is retried at a falling rate, not never.
    fn note_no_prefix(&mut self, now: Instant, server_id: &[u8]) {
        self.counters.ignored_noprefixavail += 1;
        // A line without PD: its DNS servers can still come by
        // Information-request.
        if self.stateless_fallback && !self.info_wanted && self.lease.is_none() {
            log::info!("dhcp6c: no prefix available, asking for stateless configuration");
            self.info_wanted = true;
        }
        let hold = NO_PREFIX_HOLD
            .saturating_mul(1 << self.no_prefix_strikes.min(16))
            .min(Duration::from_secs(u64::from(self.sol_max_rt)));
        self.no_prefix_strikes = self.no_prefix_strikes.saturating_add(1);
        let until = now + hold;
        log::info!(
            "dhcp6c: server {} has no prefix for us, ignoring it for {} s",
            hex(server_id),
            hold.as_secs()
        );
        self.no_prefix_servers.retain(|s| s.until > now);
        if let Some(known) = self
            .no_prefix_servers
            .iter_mut()
            .find(|s| s.server_id == server_id)
        {
            known.until = until;
            return;
        }
        if self.no_prefix_servers.len() >= MAX_NO_PREFIX_SERVERS {
            // Forget the one we would retry soonest anyway.
            if let Some(soonest) =
                (0..self.no_prefix_servers.len()).min_by_key(|&i| self.no_prefix_servers[i].until)
            {
                self.no_prefix_servers.swap_remove(soonest);
            }
        }
        self.no_prefix_servers.push(NoPrefixServer {
            server_id: server_id.to_vec(),
            until,
        });
    }

    /// Removes and returns the best collected Advertise: highest
    /// preference, then first received; skips servers since found to have
    /// no prefix.
    fn take_best_advert(&mut self, now: Instant) -> Option<Advert> {
        let ignored: Vec<Vec<u8>> = self
            .no_prefix_servers
            .iter()
            .filter(|s| now < s.until)
            .map(|s| s.server_id.clone())
            .collect();
        self.advertises.retain(|a| !ignored.contains(&a.server_id));
        let best = (0..self.advertises.len()).max_by_key(|&i| {
            let advert = &self.advertises[i];
            (advert.preference, std::cmp::Reverse(advert.arrival))
        })?;
        Some(self.advertises.swap_remove(best))
    }

    /// Our IA_PD from a message if it can be used at all (present, T1 <= T2),
    /// counting discarded prefixes.
    fn checked_ia_pd<'a>(&mut self, received: &'a Received) -> Option<&'a IaPdView> {
        let Some(pd) = received.ia_pd.as_ref() else {
            self.counters.rx_no_prefix += 1;
            return None;
        };
        self.counters.rx_bad_lifetimes += u64::from(pd.discarded);
        // 21.21: T1 > T2 with both non-zero: ignore the IA_PD.
        if pd.t1 != 0 && pd.t2 != 0 && pd.t1 > pd.t2 {
            self.counters.rx_bad_lifetimes += 1;
            return None;
        }
        Some(pd)
    }

    fn on_advertise(&mut self, now: Instant, received: &Received, server_id: Vec<u8>) {
        let pd_status = received.ia_pd.as_ref().and_then(|pd| pd.status);
        if received.status == Some(Status::NoPrefixAvail)
            || pd_status == Some(Status::NoPrefixAvail)
        {
            self.note_no_prefix(now, &server_id);
            return;
        }
        if self.is_no_prefix_server(&server_id, now) {
            self.counters.ignored_noprefixavail += 1;
            return;
        }
        if received.status.is_some_and(|s| s != Status::Success)
            || pd_status.is_some_and(|s| s != Status::Success)
        {
            self.counters.rx_status_error += 1;
            return;
        }
        let held = self.lease.as_ref().map(|l| (l.prefix, l.prefix_len));
        let Some(pd) = self.checked_ia_pd(received) else {
            return;
        };
        let Some(prefix) = choose_prefix(&pd.usable, held) else {
            self.counters.rx_no_prefix += 1;
            return;
        };
        let address = received
            .ia_na
            .as_ref()
            .and_then(|na| na.address)
            .map(|(addr, _, _)| addr);
        self.arrivals += 1;
        let advert = Advert {
            server_id,
            preference: received.preference,
            prefix: (prefix.prefix, prefix.len),
            address,
            arrival: self.arrivals,
        };
        let first_rt_over = self.exchange.as_ref().is_some_and(|e| e.tx_count >= 2);
        if advert.preference == u8::MAX || first_rt_over {
            self.start_request(now, advert);
            return;
        }
        self.collect_advert(advert);
    }

    /// Keeps at most MAX_ADVERTISES, one per server, the best ones.
    fn collect_advert(&mut self, mut advert: Advert) {
        if let Some(known) = self
            .advertises
            .iter_mut()
            .find(|a| a.server_id == advert.server_id)
        {
            // A server answering a retransmission: keep its first arrival.
            advert.arrival = known.arrival;
            *known = advert;
            return;
        }
        if self.advertises.len() < MAX_ADVERTISES {
            self.advertises.push(advert);
            return;
        }
        let worst = (0..self.advertises.len()).min_by_key(|&i| {
            let a = &self.advertises[i];
            (a.preference, std::cmp::Reverse(a.arrival))
        });
        if let Some(worst) = worst {
            if advert.preference > self.advertises[worst].preference {
                self.advertises[worst] = advert;
            }
        }
    }

    fn on_reply(
        &mut self,
        now: Instant,
        kind: ExchangeKind,
        received: &Received,
        server_id: Vec<u8>,
    ) {
        let for_release = matches!(kind, ExchangeKind::Release { .. });
        if for_release {
            log::debug!("dhcp6c: Release acknowledged by server {}", hex(&server_id));
            self.exchange = None;
            return;
        }
        if let ExchangeKind::Decline { address, .. } = kind {
            // Ask for another address at once: the Renew carries an empty
            // IA_NA (18.2.4), and the B4 may have nothing else.
            log::info!("dhcp6c: Decline of {address} acknowledged, asking for another address");
            self.exchange = None;
            self.start_renew(now);
            return;
        }
        let for_new_binding = matches!(kind, ExchangeKind::Solicit | ExchangeKind::Request { .. });
        match received.status {
            None | Some(Status::Success) => {}
            Some(Status::NoPrefixAvail) if for_new_binding => {
                self.no_prefix_reply(now, &kind, &server_id);
                return;
            }
            Some(status) => {
                // UseMulticast: we always multicast, so just keep
                // retransmitting; UnspecFail and the rest: same (18.2.10).
                log::debug!("dhcp6c: Reply with status {status:?} ignored");
                self.counters.rx_status_error += 1;
                return;
            }
        }
        let Some(pd) = self.checked_ia_pd(received) else {
            return;
        };
        match pd.status {
            None | Some(Status::Success) => {}
            Some(Status::NoBinding)
                if matches!(kind, ExchangeKind::Renew | ExchangeKind::Rebind) =>
            {
                self.counters.rx_nobinding += 1;
                self.request_held_binding(now, server_id);
                return;
            }
            Some(Status::NoPrefixAvail) if for_new_binding => {
                self.no_prefix_reply(now, &kind, &server_id);
                return;
            }
            Some(status) => {
                log::debug!("dhcp6c: Reply with IA_PD status {status:?} ignored");
                self.counters.rx_status_error += 1;
                return;
            }
        }
        self.apply_reply(now, received, server_id);
    }

    /// 18.2.10.1: NoBinding for the IA we hold: Request it from the server
    /// that answered, keeping the lease meanwhile.
    fn request_held_binding(&mut self, now: Instant, server_id: Vec<u8>) {
        let Some(lease) = &self.lease else { return };
        log::info!(
            "dhcp6c: server {} has no binding for {}/{}, requesting it",
            hex(&server_id),
            lease.prefix,
            lease.prefix_len
        );
        let kind = ExchangeKind::Request {
            server_id,
            prefix: (lease.prefix, lease.prefix_len),
            address: lease.address.map(|(addr, _, _)| addr),
        };
        self.begin_exchange(kind, now, None);
    }

    /// The IA_PD's prefixes besides `chosen`, rebased on `now`: those of
    /// this Reply, and those we held that it did not mention (18.2.10.1:
    /// a lease left out of a Reply is kept until its valid lifetime ends).
    /// At most MAX_PREFIXES_PER_IA.
    fn extra_prefixes(
        &self,
        now: Instant,
        pd: &IaPdView,
        chosen: &PrefixView,
    ) -> Vec<DelegatedPrefix> {
        let mut extra: Vec<DelegatedPrefix> = pd
            .usable
            .iter()
            .filter(|p| (p.prefix, p.len) != (chosen.prefix, chosen.len))
            .map(|p| DelegatedPrefix {
                prefix: p.prefix,
                prefix_len: p.len,
                preferred: p.preferred,
                valid: p.valid,
            })
            .collect();
        let mentioned = |prefix: Ipv6Addr, len: u8| {
            pd.usable
                .iter()
                .chain(&pd.withdrawn)
                .any(|p| (p.prefix, p.len) == (prefix, len))
        };
        if let Some(held) = &self.lease {
            let left = |secs: u32| match deadline(held.obtained, secs) {
                None => Some(INFINITE),
                Some(end) => {
                    let left = end.saturating_duration_since(now).as_secs();
                    (left > 0).then_some(u32::try_from(left).unwrap_or(INFINITE - 1))
                }
            };
            let previous = held
                .extra_prefixes
                .iter()
                .map(|p| (p.prefix, p.prefix_len, p.preferred, p.valid))
                .chain(std::iter::once((
                    held.prefix,
                    held.prefix_len,
                    held.preferred,
                    held.valid,
                )));
            for (prefix, prefix_len, preferred, valid) in previous {
                if mentioned(prefix, prefix_len) {
                    continue;
                }
                if let Some(valid) = left(valid) {
                    extra.push(DelegatedPrefix {
                        prefix,
                        prefix_len,
                        preferred: left(preferred).unwrap_or(0).min(valid),
                        valid,
                    });
                }
            }
        }
        extra.truncate(wire::MAX_PREFIXES_PER_IA);
        extra
    }

    /// NoPrefixAvail answering a Request (or a Rapid Commit Solicit).
    fn no_prefix_reply(&mut self, now: Instant, kind: &ExchangeKind, server_id: &[u8]) {
        self.note_no_prefix(now, server_id);
        if matches!(kind, ExchangeKind::Request { .. }) {
            // Try the next server we heard from, else discover again.
            match self.take_best_advert(now) {
                Some(next) => self.start_request(now, next),
                None => self.start_solicit(now, false),
            }
        }
    }

    fn apply_reply(&mut self, now: Instant, received: &Received, server_id: Vec<u8>) {
        let Some(pd) = received.ia_pd.as_ref() else {
            return;
        };
        let held = self.lease.as_ref().map(|l| (l.prefix, l.prefix_len));
        let held_withdrawn =
            held.is_some_and(|h| pd.withdrawn.iter().any(|p| (p.prefix, p.len) == h));
        let chosen = choose_prefix(&pd.usable, held);
        if held_withdrawn {
            if let Some(old) = self.lease.take() {
                log::info!(
                    "dhcp6c: server {} withdrew {}/{}",
                    hex(&server_id),
                    old.prefix,
                    old.prefix_len
                );
                self.counters.losses += 1;
                self.push_event(Event::Lost(old));
            }
        }
        let Some(chosen) = chosen else {
            if held_withdrawn {
                self.exchange = None;
                self.start_solicit(now, true);
            } else {
                // Nothing usable and nothing said about our prefix: as if
                // no Reply came; keep retransmitting.
                self.counters.rx_no_prefix += 1;
            }
            return;
        };
        let (t1, t2) = effective_timers(pd.t1, pd.t2, &chosen);
        let extra_prefixes = self.extra_prefixes(now, pd, &chosen);
        let address = if self.request_na {
            received.ia_na.as_ref().and_then(|na| na.address)
        } else {
            None
        };
        let lease = Lease {
            prefix: chosen.prefix,
            prefix_len: chosen.len,
            preferred: chosen.preferred,
            valid: chosen.valid,
            t1,
            t2,
            server_id,
            obtained: now,
            dns_servers: received.dns_servers.clone(),
            domains: received.domains.clone(),
            aftr_name: received.aftr_name.clone(),
            sol_max_rt: received.sol_max_rt,
            address,
            extra_prefixes,
        };
        let previous = self.lease.take();
        if let Some(previous) = &previous {
            if previous.server_id != lease.server_id {
                log::info!(
                    "dhcp6c: server changed from {} to {}",
                    hex(&previous.server_id),
                    hex(&lease.server_id)
                );
            }
        }
        let same_prefix = previous
            .as_ref()
            .is_some_and(|p| (p.prefix, p.prefix_len) == (lease.prefix, lease.prefix_len));
        log::info!(
            "dhcp6c: {} {}/{} from server {}: preferred {}, valid {}, T1 {}, T2 {}",
            if same_prefix { "renewed" } else { "bound" },
            lease.prefix,
            lease.prefix_len,
            hex(&lease.server_id),
            seconds(lease.preferred),
            seconds(lease.valid),
            seconds(lease.t1),
            seconds(lease.t2)
        );
        self.lease = Some(lease.clone());
        self.exchange = None;
        self.advertises.clear();
        self.no_prefix_servers.clear();
        self.no_prefix_strikes = 0;
        if same_prefix {
            self.counters.renewals += 1;
            self.push_event(Event::Renewed(lease));
        } else {
            self.counters.bindings += 1;
            self.push_event(Event::Bound(lease));
        }
    }
}

/// The prefix the LAN uses, from an IA_PD: a preferred one before a
/// deprecated one (a server renumbering gracefully deprecates the old
/// prefix beside the new one: keeping the old would turn the overlap it
/// offers into a hard cut at its expiry, RFC 9096), then the one we hold,
/// then the largest (shortest length), the longest valid lifetime, the
/// lowest address. Deterministic whatever the option order on the wire.
fn choose_prefix(usable: &[PrefixView], held: Option<(Ipv6Addr, u8)>) -> Option<PrefixView> {
    usable
        .iter()
        .max_by_key(|p| {
            (
                p.preferred > 0,
                Some((p.prefix, p.len)) == held,
                std::cmp::Reverse(p.len),
                p.valid,
                std::cmp::Reverse(p.prefix),
            )
        })
        .copied()
}

/// T1/T2 after RFC 8415 14.2 / 21.21: the server's, unless either is 0, in
/// which case the client picks 0.5 and 0.8 times the preferred lifetime
/// (the valid lifetime if preferred is 0, so a deprecated prefix does not
/// renew in a loop). Infinite stays infinite.
fn effective_timers(t1: u32, t2: u32, prefix: &PrefixView) -> (u32, u32) {
    if t1 != 0 && t2 != 0 {
        return (t1, t2);
    }
    let base = if prefix.preferred == 0 {
        prefix.valid
    } else {
        prefix.preferred
    };
    if base == INFINITE {
        return (INFINITE, INFINITE);
    }
    let base = u64::from(base);
    // At least 1 s so a tiny lifetime cannot make a zero-delay loop.
    let t1 = (base / 2).max(1);
    let t2 = (base * 4 / 5).max(1);
    (t1 as u32, t2 as u32)
}

/// 21.24: values below 60 s or above 86400 s must be ignored; clamping
/// would let one on-link Advertise cut the Solicit ceiling to a minute.
fn sol_max_rt_in_range(value: u32) -> bool {
    (SOL_MAX_RT_MIN..=SOL_MAX_RT_MAX).contains(&value)
}

/// `base + secs`, or `None` for infinite (and for a sum past what
/// `Instant` can hold, which is as good as infinite).
fn deadline(base: Instant, secs: u32) -> Option<Instant> {
    if secs == INFINITE {
        return None;
    }
    base.checked_add(Duration::from_secs(u64::from(secs)))
}

fn seconds(value: u32) -> String {
    if value == INFINITE {
        "infinite".to_owned()
    } else {
        format!("{value}s")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
