//! The LAN's DHCPv4 server (RFC 2131 / RFC 2132), sans-IO.
//!
//! [`Dhcp4Server`] is pure logic: the caller feeds it the UDP payloads
//! received on port 67 of the LAN ([`Dhcp4Server::handle`]), sends the
//! [`Reply`] it returns from port 67 to port 68 (building Ethernet / IPv4 /
//! UDP around `payload` with the destination given), and calls
//! [`Dhcp4Server::poll`] at the returned deadline and after every `handle`.
//! No sockets, threads or clocks inside: every call takes `now`, so tests
//! run days of lease time with a fake clock.
//!
//! # Address assignment
//!
//! ```text
//! message             condition                                   answer
//! DISCOVER            chaddr has a static reservation             OFFER that address
//!                     the client has an offer or a lease          OFFER the same address
//!                     option 50 free and in the pool              OFFER it
//!                     otherwise                                   OFFER the lowest free address
//!                     nothing free: the oldest pending offer of   OFFER its address
//!                     another client is withdrawn
//! REQUEST, 54 = us    (SELECTING) see "verify" below, address = option 50
//! REQUEST, 54 other   the client chose another server: our offer is withdrawn, silence
//! REQUEST, no 54      (INIT-REBOOT, RENEWING, REBINDING) see "verify",
//!                     address = option 50, else ciaddr
//! DECLINE             the client's offered or leased address (option 50) is
//!                     quarantined and the lease forgotten; other DECLINEs are ignored
//! RELEASE             the client's lease for ciaddr is freed
//! INFORM              ACK with the configuration, no address, no lease time
//!
//! verify(address)     static client: ACK its reserved address, NAK anything else
//!                     outside the subnet                          NAK
//!                     the client's own offer or lease             ACK (bind / extend)
//!                     someone else's lease, offer or reservation  NAK
//!                     not a pool address, or quarantined          NAK
//!                     free pool address                           ACK (a client keeps its
//!                                                                 address across a restart
//!                                                                 of the server)
//! ```
//!
//! A client is identified by option 61 if present, else by chaddr; static
//! reservations are by chaddr. Offers are held for `offer_hold`, leases
//! last `lease_time` (T1 = 0.5, T2 = 0.875), a DECLINEd address is not
//! used for `decline_quarantine`. The lease table (offers and dynamic
//! leases) holds at most `max_leases` entries, the quarantine as many.
//! Relayed messages (giaddr set) are dropped: this server only serves its
//! own link.
//!
//! # Replies
//!
//! Options 53, 54, 51/58/59 (leases only) and 61 (echoed, RFC 6842) come
//! first, then 1 (before 3, RFC 2132 3.3) and 3, then the configured
//! options the client asked for in its Parameter Request List order, then
//! the other configured ones. A reply never exceeds 576 octets of IP
//! datagram (548 of DHCP payload) unless option 57 allows more (up to the
//! configured MTU, else 1500): options that do not fit are dropped from the
//! end and counted (`options-trimmed`). Option overload is not used.
//!
//! Destination (RFC 2131 4.1, giaddr being always 0 here): a NAK is
//! broadcast; else unicast to ciaddr if set; else broadcast if the client
//! set the broadcast bit; else unicast to yiaddr at chaddr.
//!
//! Every received message is treated as hostile: `wire::parse` checks its
//! framing before dhcproto sees it, and each reason to drop one has a
//! counter in [`Counters`].

mod wire;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use dhcproto::v4::{DhcpOption, MessageType};
use dhcproto::Name;
use serde::{Deserialize, Serialize};

use wire::{Received, ReplyHeader, WireError};

/// Default bound on the lease table.
pub const DEFAULT_MAX_LEASES: usize = 4096;
/// Default time a DECLINEd address stays out of use.
pub const DEFAULT_DECLINE_QUARANTINE: Duration = Duration::from_secs(600);
/// Default time an offered address is reserved awaiting the REQUEST.
pub const DEFAULT_OFFER_HOLD: Duration = Duration::from_secs(60);
/// Default lease time for [`Dhcp4Config::new`].
pub const DEFAULT_LEASE_TIME: Duration = Duration::from_secs(12 * 3600);

/// Clamps applied to the configuration (see [`Dhcp4Config`]).
const MIN_LEASE_TIME: Duration = Duration::from_secs(60);
/// 0xffff_ffff means "infinite" on the wire; we never grant that.
const MAX_LEASE_SECS: u64 = 0xffff_fffe;
const MIN_OFFER_HOLD: Duration = Duration::from_secs(1);
const MAX_OFFER_HOLD: Duration = Duration::from_secs(3600);
const MAX_DECLINE_QUARANTINE: Duration = Duration::from_secs(7 * 86400);
const MAX_TABLE: usize = 1 << 20;

/// RFC 2131 2: every client accepts 576-octet IP datagrams.
const MIN_DATAGRAM: usize = 576;
/// Ceiling for option 57 when no MTU is configured.
const DEFAULT_MTU: usize = 1500;
/// IPv4 + UDP headers around the DHCP payload.
const IP_UDP_HEADERS: usize = 28;

const BROADCAST_MAC: [u8; 6] = [0xff; 6];
const BROADCAST_FLAG: u16 = 0x8000;
/// RFC 2132 5.1: the smallest legal MTU.
const MIN_MTU: u16 = 68;

/// A fixed address for one MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticLease {
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    /// Sent as option 12.
    pub hostname: Option<String>,
}

/// What the server hands out. Out-of-range values are clamped (with a
/// warning) when the server takes the configuration: lease time to
/// 60 s ..= 0xffff_fffe s, offer hold to 1 s ..= 1 h, quarantine to at
/// most 7 days, `max_leases` to 1 ..= 2^20. Static leases outside the
/// subnet, on the server / network / broadcast address, with a multicast
/// MAC, or repeating a MAC or an address are ignored (warning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dhcp4Config {
    /// Router LAN address (option 54, and option 3 router).
    pub server_ip: Ipv4Addr,
    /// LAN subnet (option 1; option 28 broadcast derived).
    pub prefix_len: u8,
    /// Dynamic pool, inclusive; clipped to the subnet.
    pub range: (Ipv4Addr, Ipv4Addr),
    /// Option 51; T1 (58) = 0.5, T2 (59) = 0.875.
    pub lease_time: Duration,
    /// Option 6.
    pub dns: Vec<Ipv4Addr>,
    /// Option 15, and option 119 with the same domain.
    pub domain: Option<String>,
    /// Option 42, only if non-empty.
    pub ntp: Vec<Ipv4Addr>,
    /// Option 26 if Some; also the ceiling for option 57.
    pub mtu: Option<u16>,
    pub static_leases: Vec<StaticLease>,
    /// Bound on the lease table (offers and dynamic leases).
    pub max_leases: usize,
    /// A DECLINEd address is not offered for this long.
    pub decline_quarantine: Duration,
    /// An offered address is reserved for this long awaiting REQUEST.
    pub offer_hold: Duration,
}

impl Dhcp4Config {
    /// A configuration with the defaults: 12 h leases, the server as DNS
    /// server, no domain, no NTP, no MTU, no static lease.
    pub fn new(server_ip: Ipv4Addr, prefix_len: u8, range: (Ipv4Addr, Ipv4Addr)) -> Self {
        Self {
            server_ip,
            prefix_len,
            range,
            lease_time: DEFAULT_LEASE_TIME,
            dns: vec![server_ip],
            domain: None,
            ntp: Vec::new(),
            mtu: None,
            static_leases: Vec::new(),
            max_leases: DEFAULT_MAX_LEASES,
            decline_quarantine: DEFAULT_DECLINE_QUARANTINE,
            offer_hold: DEFAULT_OFFER_HOLD,
        }
    }
}

/// One answer to send from port 67 to port 68.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The DHCP message (UDP payload).
    pub payload: Vec<u8>,
    pub dst_mac: [u8; 6],
    pub dst_ip: Ipv4Addr,
}

/// One row of `ipoectl show dhcp4` (or similar).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub hostname: Option<String>,
    /// End of the offer / lease / quarantine; `None` for a static lease
    /// not currently bound.
    pub expires: Option<Instant>,
    /// "offered" | "bound" | "static" | "declined".
    pub state: &'static str,
}

/// A bound lease as persisted across restarts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLease {
    /// "aa:bb:cc:dd:ee:ff".
    pub mac: String,
    pub ip: Ipv4Addr,
    pub hostname: Option<String>,
    /// Option 61 in hex, when the client identifies itself with it.
    pub client_id: Option<String>,
    /// Seconds since the Unix epoch.
    pub expires_unix: u64,
}

/// What the server received, sent and dropped, for `ipoectl show errors`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_discover: u64,
    pub rx_request: u64,
    pub rx_release: u64,
    pub rx_decline: u64,
    pub rx_inform: u64,
    pub tx_offer: u64,
    pub tx_ack: u64,
    pub tx_nak: u64,
    /// Shorter than the fixed header and magic cookie.
    pub drop_truncated: u64,
    /// An option we use with an impossible length, or undecodable.
    pub drop_malformed: u64,
    pub drop_bad_cookie: u64,
    /// op = BOOTREPLY (or anything but BOOTREQUEST).
    pub drop_not_bootrequest: u64,
    /// htype != Ethernet, hlen != 6, multicast or zero chaddr.
    pub drop_bad_hardware: u64,
    /// An option runs past the end of the message.
    pub drop_option_overflow: u64,
    /// Option 52 invalid or pointing at fields that hold no options.
    pub drop_bad_overload: u64,
    /// Option 55 longer than 255 octets (after concatenation).
    pub drop_huge_prl: u64,
    pub drop_no_message_type: u64,
    /// dhcproto panicked on sanitized input (caught; also counted in
    /// drop-malformed). Should stay 0.
    pub drop_decoder_panic: u64,
    /// A message type a server does not take (OFFER, ACK, ...).
    pub drop_unexpected_type: u64,
    /// giaddr set: relayed from another link, which we do not serve.
    pub drop_relayed: u64,
    /// REQUEST / DECLINE / RELEASE naming another server.
    pub drop_wrong_server_id: u64,
    /// REQUEST with neither option 50 nor ciaddr.
    pub drop_no_address: u64,
    /// A reply dhcproto would not encode. Should stay 0.
    pub drop_encode: u64,
    /// DISCOVER with no address left to offer.
    pub pool_exhausted: u64,
    /// A new entry refused: the lease table is full of bound leases.
    pub table_full: u64,
    /// Pending offers withdrawn to make room for another client.
    pub offer_evicted: u64,
    /// Offers withdrawn because the client chose another server.
    pub offers_withdrawn: u64,
    pub offers_expired: u64,
    /// Addresses bound (first ACK for an address).
    pub leases_granted: u64,
    pub leases_renewed: u64,
    pub leases_released: u64,
    pub leases_expired: u64,
    /// RELEASE for an address that is not the client's.
    pub release_ignored: u64,
    pub decline_quarantined: u64,
    /// DECLINE without option 50, or for someone else's / a non-pool address.
    pub decline_ignored: u64,
    /// DECLINE of a statically reserved address (not quarantined).
    pub decline_static: u64,
    /// DECLINE not quarantined: the quarantine is full.
    pub quarantine_full: u64,
    /// Options left out of replies to stay within the size limit.
    pub options_trimmed: u64,
    /// chaddr differs from the Ethernet source (informational; Wi-Fi
    /// extenders do that).
    pub chaddr_mismatch: u64,
    pub imported: u64,
    /// Stored leases not restored: expired, invalid, or no longer fitting.
    pub import_rejected: u64,
}

impl Counters {
    /// Every counter with a kebab-case name, in a fixed order.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("rx-discover", self.rx_discover),
            ("rx-request", self.rx_request),
            ("rx-release", self.rx_release),
            ("rx-decline", self.rx_decline),
            ("rx-inform", self.rx_inform),
            ("tx-offer", self.tx_offer),
            ("tx-ack", self.tx_ack),
            ("tx-nak", self.tx_nak),
            ("drop-truncated", self.drop_truncated),
            ("drop-malformed", self.drop_malformed),
            ("drop-bad-cookie", self.drop_bad_cookie),
            ("drop-not-bootrequest", self.drop_not_bootrequest),
            ("drop-bad-hardware", self.drop_bad_hardware),
            ("drop-option-overflow", self.drop_option_overflow),
            ("drop-bad-overload", self.drop_bad_overload),
            ("drop-huge-prl", self.drop_huge_prl),
            ("drop-no-message-type", self.drop_no_message_type),
            ("drop-decoder-panic", self.drop_decoder_panic),
            ("drop-unexpected-type", self.drop_unexpected_type),
            ("drop-relayed", self.drop_relayed),
            ("drop-wrong-server-id", self.drop_wrong_server_id),
            ("drop-no-address", self.drop_no_address),
            ("drop-encode", self.drop_encode),
            ("pool-exhausted", self.pool_exhausted),
            ("table-full", self.table_full),
            ("offer-evicted", self.offer_evicted),
            ("offers-withdrawn", self.offers_withdrawn),
            ("offers-expired", self.offers_expired),
            ("leases-granted", self.leases_granted),
            ("leases-renewed", self.leases_renewed),
            ("leases-released", self.leases_released),
            ("leases-expired", self.leases_expired),
            ("release-ignored", self.release_ignored),
            ("decline-quarantined", self.decline_quarantined),
            ("decline-ignored", self.decline_ignored),
            ("decline-static", self.decline_static),
            ("quarantine-full", self.quarantine_full),
            ("options-trimmed", self.options_trimmed),
            ("chaddr-mismatch", self.chaddr_mismatch),
            ("imported", self.imported),
            ("import-rejected", self.import_rejected),
        ]
    }
}

/// How a client is known: option 61, else chaddr.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ClientKey {
    Id(Vec<u8>),
    Mac([u8; 6]),
}

impl ClientKey {
    fn of(received: &Received) -> Self {
        match &received.client_id {
            Some(id) => ClientKey::Id(id.clone()),
            None => ClientKey::Mac(received.chaddr),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LeaseState {
    Offered { until: Instant },
    Bound { expires: Instant },
}

/// An entry of the dynamic lease table.
#[derive(Clone, Debug)]
struct Lease {
    client: ClientKey,
    mac: [u8; 6],
    /// The client's option 12.
    hostname: Option<String>,
    state: LeaseState,
}

impl Lease {
    fn deadline(&self) -> Instant {
        match self.state {
            LeaseState::Offered { until } => until,
            LeaseState::Bound { expires } => expires,
        }
    }

    fn is_bound(&self) -> bool {
        matches!(self.state, LeaseState::Bound { .. })
    }
}

/// A static reservation and its current binding.
#[derive(Clone, Debug)]
struct StaticEntry {
    ip: u32,
    hostname: Option<String>,
    /// End of the lease when the host has been ACKed.
    bound_until: Option<Instant>,
    /// The host's own option 12, shown when no hostname is configured.
    client_hostname: Option<String>,
}

#[derive(Clone, Copy, Debug)]
struct Quarantined {
    until: Instant,
    /// Who declined it.
    mac: [u8; 6],
}

/// The subnet and pool, as integers.
#[derive(Clone, Copy, Debug)]
struct Subnet {
    server: u32,
    mask: u32,
    network: u32,
    broadcast: u32,
    /// Inclusive, inside the subnet; `None` if empty.
    pool: Option<(u32, u32)>,
}

impl Subnet {
    fn new(server: Ipv4Addr, prefix_len: u8, range: (Ipv4Addr, Ipv4Addr)) -> Self {
        let server = u32::from(server);
        let mask = match u32::from(prefix_len.min(32)) {
            0 => 0,
            n => u32::MAX << (32 - n),
        };
        let network = server & mask;
        let broadcast = network | !mask;
        let pool = if prefix_len >= 31 {
            None
        } else {
            let low = u32::from(range.0).max(network + 1);
            let high = u32::from(range.1).min(broadcast - 1);
            (low <= high).then_some((low, high))
        };
        Self {
            server,
            mask,
            network,
            broadcast,
            pool,
        }
    }

    fn contains(&self, ip: u32) -> bool {
        ip & self.mask == self.network
    }

    /// An address a host of the subnet may use (not network, broadcast or
    /// the server).
    fn is_host(&self, ip: u32) -> bool {
        self.contains(ip) && ip != self.network && ip != self.broadcast && ip != self.server
    }

    fn in_pool(&self, ip: u32) -> bool {
        self.is_host(ip) && self.pool.is_some_and(|(low, high)| low <= ip && ip <= high)
    }
}

/// Answer to a REQUEST.
enum Verdict {
    /// ACK the static reservation of chaddr.
    AckStatic,
    /// ACK this dynamic address for the client (bind or extend).
    Ack(u32),
    Nak(&'static str),
}

/// What goes into one reply besides the header.
struct ReplySpec<'a> {
    kind: MessageType,
    yiaddr: Ipv4Addr,
    ciaddr: Ipv4Addr,
    with_lease: bool,
    hostname: Option<&'a str>,
    message: Option<&'static str>,
}

/// The LAN's DHCPv4 server. See the module documentation.
#[derive(Debug)]
pub struct Dhcp4Server {
    cfg: Dhcp4Config,
    subnet: Subnet,
    /// Option 119 for `cfg.domain`, if the domain is a valid DNS name.
    search: Option<Name>,
    statics: BTreeMap<[u8; 6], StaticEntry>,
    static_ips: BTreeMap<u32, [u8; 6]>,
    /// The dynamic lease table, by address.
    leases: BTreeMap<u32, Lease>,
    by_client: BTreeMap<ClientKey, u32>,
    quarantine: BTreeMap<u32, Quarantined>,
    /// Earliest deadline in the tables (may be early, never late).
    next_due: Option<Instant>,
    dirty: bool,
    counters: Counters,
}

impl Dhcp4Server {
    /// `seed` is accepted for API stability; assignment is deterministic
    /// (lowest free address) so nothing draws from it today.
    pub fn new(cfg: Dhcp4Config, seed: u64) -> Self {
        let _ = seed;
        let mut server = Self {
            cfg: cfg.clone(),
            subnet: Subnet::new(cfg.server_ip, cfg.prefix_len, cfg.range),
            search: None,
            statics: BTreeMap::new(),
            static_ips: BTreeMap::new(),
            leases: BTreeMap::new(),
            by_client: BTreeMap::new(),
            quarantine: BTreeMap::new(),
            next_due: None,
            dirty: false,
            counters: Counters::default(),
        };
        server.apply_config(cfg);
        server
    }

    /// Reload: leases, offers and quarantine entries that still fit the
    /// new pool are kept (a dynamic lease on an address now reserved, or of
    /// a MAC that now has a reservation, is dropped); bindings of static
    /// hosts whose reservation did not change are kept.
    pub fn set_config(&mut self, cfg: Dhcp4Config) {
        let old_statics = std::mem::take(&mut self.statics);
        self.apply_config(cfg);
        for (mac, entry) in self.statics.iter_mut() {
            if let Some(old) = old_statics.get(mac).filter(|old| old.ip == entry.ip) {
                entry.bound_until = old.bound_until;
                entry.client_hostname = old.client_hostname.clone();
            }
        }
        let subnet = self.subnet;
        let mut removed = Vec::new();
        self.leases.retain(|ip, lease| {
            let fits = subnet.in_pool(*ip)
                && !self.static_ips.contains_key(ip)
                && !self.statics.contains_key(&lease.mac);
            if !fits {
                removed.push((*ip, lease.clone()));
            }
            fits
        });
        for (ip, lease) in removed {
            log::info!(
                "dhcp4s: dropping {} lease of {} for {}: no longer fits the configuration",
                if lease.is_bound() { "bound" } else { "offered" },
                mac_text(&lease.mac),
                Ipv4Addr::from(ip)
            );
            self.forget(ip, &lease);
        }
        self.quarantine.retain(|ip, _| subnet.in_pool(*ip));
        // A smaller bound: offers go first, then the leases ending first.
        while self.leases.len() > self.cfg.max_leases {
            let victim = self
                .oldest_offer()
                .or_else(|| self.soonest_entry(|_| true))
                .map(|(ip, _)| ip);
            let Some(ip) = victim else { break };
            if let Some(lease) = self.leases.remove(&ip) {
                log::info!(
                    "dhcp4s: dropping lease of {} for {}: table bound lowered",
                    mac_text(&lease.mac),
                    Ipv4Addr::from(ip)
                );
                self.forget(ip, &lease);
            }
        }
        while self.quarantine.len() > self.cfg.max_leases {
            let soonest = self
                .quarantine
                .iter()
                .min_by_key(|(_, q)| q.until)
                .map(|(ip, _)| *ip);
            match soonest {
                Some(ip) => self.quarantine.remove(&ip),
                None => break,
            };
        }
        self.recompute_deadline();
    }

    /// Takes a UDP payload received on port 67 of the LAN from `src_mac`.
    pub fn handle(&mut self, now: Instant, src_mac: [u8; 6], payload: &[u8]) -> Option<Reply> {
        if self.next_due.is_some_and(|due| due <= now) {
            self.expire(now);
        }
        let received = match wire::parse(payload) {
            Ok(received) => received,
            Err(error) => {
                self.count_drop(error);
                log::debug!(
                    "dhcp4s: rx from {} dropped ({error}), {} bytes",
                    mac_text(&src_mac),
                    payload.len()
                );
                return None;
            }
        };
        log::debug!(
            "dhcp4s: rx {:?} from {} xid {:08x} ciaddr {} requested {:?} server {:?}",
            received.kind,
            mac_text(&received.chaddr),
            received.xid,
            received.ciaddr,
            received.requested_ip,
            received.server_id
        );
        if !received.giaddr.is_unspecified() {
            self.counters.drop_relayed += 1;
            return None;
        }
        if received.chaddr != src_mac {
            self.counters.chaddr_mismatch += 1;
        }
        match received.kind {
            MessageType::Discover => {
                self.counters.rx_discover += 1;
                self.on_discover(now, &received)
            }
            MessageType::Request => {
                self.counters.rx_request += 1;
                self.on_request(now, &received)
            }
            MessageType::Release => {
                self.counters.rx_release += 1;
                self.on_release(&received);
                None
            }
            MessageType::Decline => {
                self.counters.rx_decline += 1;
                self.on_decline(now, &received);
                None
            }
            MessageType::Inform => {
                self.counters.rx_inform += 1;
                self.on_inform(&received)
            }
            _ => {
                self.counters.drop_unexpected_type += 1;
                None
            }
        }
    }

    /// Expires offers, leases and quarantine entries due at `now`; returns
    /// the next deadline.
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.expire(now);
        self.next_due
    }

    /// Every reservation, offer, lease and quarantined address, by address.
    pub fn leases(&self, now: Instant) -> Vec<LeaseInfo> {
        let mut out = Vec::new();
        for (mac, entry) in &self.statics {
            let bound = entry.bound_until.filter(|until| *until > now);
            out.push(LeaseInfo {
                mac: *mac,
                ip: Ipv4Addr::from(entry.ip),
                hostname: entry
                    .hostname
                    .clone()
                    .or_else(|| entry.client_hostname.clone()),
                expires: bound,
                state: if bound.is_some() { "bound" } else { "static" },
            });
        }
        for (ip, lease) in &self.leases {
            if lease.deadline() <= now {
                continue;
            }
            out.push(LeaseInfo {
                mac: lease.mac,
                ip: Ipv4Addr::from(*ip),
                hostname: lease.hostname.clone(),
                expires: Some(lease.deadline()),
                state: if lease.is_bound() { "bound" } else { "offered" },
            });
        }
        for (ip, quarantined) in &self.quarantine {
            if quarantined.until <= now {
                continue;
            }
            out.push(LeaseInfo {
                mac: quarantined.mac,
                ip: Ipv4Addr::from(*ip),
                hostname: None,
                expires: Some(quarantined.until),
                state: "declined",
            });
        }
        out.sort_by_key(|info| info.ip);
        out
    }

    /// The unexpired dynamic leases, for persistence (static hosts come
    /// back from the configuration). `wall_now` is the wall clock at `now`.
    pub fn export(&self, now: Instant, wall_now: SystemTime) -> Vec<StoredLease> {
        let wall = unix_seconds(wall_now);
        self.leases
            .iter()
            .filter_map(|(ip, lease)| match lease.state {
                LeaseState::Bound { expires } if expires > now => Some(StoredLease {
                    mac: mac_text(&lease.mac),
                    ip: Ipv4Addr::from(*ip),
                    hostname: lease.hostname.clone(),
                    client_id: match &lease.client {
                        ClientKey::Id(id) => Some(hex(id)),
                        ClientKey::Mac(_) => None,
                    },
                    expires_unix: wall
                        .saturating_add(expires.saturating_duration_since(now).as_secs()),
                }),
                _ => None,
            })
            .collect()
    }

    /// Restores leases after a restart. `wall_now` is the wall clock at
    /// `now`. A stored lease comes back if it has not expired, its MAC and
    /// client id parse, its address is a pool address (inside the subnet,
    /// not the server, network or broadcast address, not reserved, not
    /// quarantined) not already taken, its client has no entry yet, its MAC
    /// has no reservation, and the table has room. Its remaining time is
    /// capped at the configured lease time.
    pub fn import(&mut self, now: Instant, wall_now: SystemTime, leases: Vec<StoredLease>) {
        let wall = unix_seconds(wall_now);
        // Restoring is not a change; dropping stored leases is.
        let was_dirty = self.dirty;
        let mut rejected = false;
        for stored in leases {
            match self.import_one(now, wall, &stored) {
                Ok(()) => {
                    self.counters.imported += 1;
                    log::debug!("dhcp4s: restored lease {} for {}", stored.ip, stored.mac);
                }
                Err(reason) => {
                    self.counters.import_rejected += 1;
                    rejected = true;
                    log::info!(
                        "dhcp4s: not restoring lease {} for {}: {reason}",
                        stored.ip,
                        stored.mac
                    );
                }
            }
        }
        self.dirty = was_dirty || rejected;
    }

    /// True once after any change of the bound-lease table.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Checks and normalizes `cfg` and installs it with the derived state;
    /// the tables are not touched.
    fn apply_config(&mut self, mut cfg: Dhcp4Config) {
        let lease_secs = cfg
            .lease_time
            .as_secs()
            .clamp(MIN_LEASE_TIME.as_secs(), MAX_LEASE_SECS);
        if lease_secs != cfg.lease_time.as_secs() {
            log::warn!("dhcp4s: lease time clamped to {lease_secs} s");
        }
        cfg.lease_time = Duration::from_secs(lease_secs);
        cfg.offer_hold = cfg.offer_hold.clamp(MIN_OFFER_HOLD, MAX_OFFER_HOLD);
        cfg.decline_quarantine = cfg.decline_quarantine.min(MAX_DECLINE_QUARANTINE);
        cfg.max_leases = cfg.max_leases.clamp(1, MAX_TABLE);
        if cfg.mtu.is_some_and(|mtu| mtu < MIN_MTU) {
            log::warn!("dhcp4s: ignoring MTU {:?} (below {MIN_MTU})", cfg.mtu);
            cfg.mtu = None;
        }
        self.subnet = Subnet::new(cfg.server_ip, cfg.prefix_len, cfg.range);
        if self.subnet.pool.is_none() {
            log::warn!(
                "dhcp4s: empty pool {}-{} in {}/{}",
                cfg.range.0,
                cfg.range.1,
                cfg.server_ip,
                cfg.prefix_len
            );
        }
        cfg.domain = cfg.domain.and_then(|domain| {
            let trimmed = domain.trim_end_matches('.');
            if valid_dns_name(trimmed) {
                Some(trimmed.to_owned())
            } else {
                log::warn!("dhcp4s: ignoring invalid domain {domain:?}");
                None
            }
        });
        self.search = cfg
            .domain
            .as_deref()
            .and_then(|domain| Name::from_ascii(format!("{domain}.")).ok());

        self.statics.clear();
        self.static_ips.clear();
        for entry in &cfg.static_leases {
            let ip = u32::from(entry.ip);
            let reason = if !self.subnet.is_host(ip) {
                Some("not a host address of the subnet")
            } else if entry.mac[0] & 1 == 1 || entry.mac == [0; 6] {
                Some("not a unicast MAC")
            } else if self.statics.contains_key(&entry.mac) {
                Some("MAC already reserved")
            } else if self.static_ips.contains_key(&ip) {
                Some("address already reserved")
            } else {
                None
            };
            if let Some(reason) = reason {
                log::warn!(
                    "dhcp4s: ignoring static lease {} for {}: {reason}",
                    entry.ip,
                    mac_text(&entry.mac)
                );
                continue;
            }
            let hostname = entry.hostname.as_deref().and_then(|name| {
                let name = name.trim_end_matches('.');
                if valid_dns_name(name) {
                    Some(name.to_owned())
                } else {
                    log::warn!("dhcp4s: ignoring invalid hostname {name:?}");
                    None
                }
            });
            self.statics.insert(
                entry.mac,
                StaticEntry {
                    ip,
                    hostname,
                    bound_until: None,
                    client_hostname: None,
                },
            );
            self.static_ips.insert(ip, entry.mac);
        }
        self.cfg = cfg;
    }

    fn count_drop(&mut self, error: WireError) {
        let counters = &mut self.counters;
        match error {
            WireError::Truncated => counters.drop_truncated += 1,
            WireError::BadCookie => counters.drop_bad_cookie += 1,
            WireError::NotBootRequest => counters.drop_not_bootrequest += 1,
            WireError::BadHardware => counters.drop_bad_hardware += 1,
            WireError::OptionOverflow => counters.drop_option_overflow += 1,
            WireError::BadOverload => counters.drop_bad_overload += 1,
            WireError::HugeParameterList => counters.drop_huge_prl += 1,
            WireError::NoMessageType => counters.drop_no_message_type += 1,
            WireError::BadOption { .. } | WireError::Decode => counters.drop_malformed += 1,
            WireError::DecoderPanic => {
                counters.drop_malformed += 1;
                counters.drop_decoder_panic += 1;
            }
        }
    }

    fn on_discover(&mut self, now: Instant, received: &Received) -> Option<Reply> {
        if let Some(entry) = self.statics.get(&received.chaddr) {
            let ip = Ipv4Addr::from(entry.ip);
            let hostname = entry.hostname.clone();
            return self.reply_offer(received, ip, hostname.as_deref());
        }
        let key = ClientKey::of(received);
        let hold = later(now, self.cfg.offer_hold);
        let ip = match self.by_client.get(&key).copied() {
            Some(ip) => {
                if let Some(lease) = self.leases.get_mut(&ip) {
                    if let LeaseState::Offered { until } = &mut lease.state {
                        *until = hold;
                    }
                    if received.hostname.is_some() {
                        lease.hostname.clone_from(&received.hostname);
                    }
                }
                ip
            }
            None => {
                let chosen = received
                    .requested_ip
                    .map(u32::from)
                    .filter(|ip| self.is_free(*ip))
                    .or_else(|| self.lowest_free());
                let ip = match chosen {
                    Some(ip) => ip,
                    None => match self.evict_oldest_offer() {
                        Some(ip) => ip,
                        None => {
                            self.counters.pool_exhausted += 1;
                            if sparse(self.counters.pool_exhausted) {
                                log::warn!(
                                    "dhcp4s: pool exhausted, no offer for {} ({} times)",
                                    mac_text(&received.chaddr),
                                    self.counters.pool_exhausted
                                );
                            }
                            return None;
                        }
                    },
                };
                if !self.make_room() {
                    return None;
                }
                self.insert_lease(
                    ip,
                    Lease {
                        client: key,
                        mac: received.chaddr,
                        hostname: received.hostname.clone(),
                        state: LeaseState::Offered { until: hold },
                    },
                );
                ip
            }
        };
        self.note_deadline(hold);
        self.reply_offer(received, Ipv4Addr::from(ip), None)
    }

    fn on_request(&mut self, now: Instant, received: &Received) -> Option<Reply> {
        let key = ClientKey::of(received);
        if let Some(server_id) = received.server_id {
            if server_id != self.cfg.server_ip {
                // SELECTING another server's offer: ours is withdrawn; a
                // bound lease is left alone.
                self.counters.drop_wrong_server_id += 1;
                if let Some(ip) = self.by_client.get(&key).copied() {
                    if self.leases.get(&ip).is_some_and(|lease| !lease.is_bound()) {
                        if let Some(lease) = self.leases.remove(&ip) {
                            self.forget(ip, &lease);
                        }
                        self.counters.offers_withdrawn += 1;
                        log::debug!(
                            "dhcp4s: {} chose server {server_id}, offer of {} withdrawn",
                            mac_text(&received.chaddr),
                            Ipv4Addr::from(ip)
                        );
                    }
                }
                return None;
            }
        }
        let address = received
            .requested_ip
            .or_else(|| (!received.ciaddr.is_unspecified()).then_some(received.ciaddr));
        let Some(address) = address else {
            self.counters.drop_no_address += 1;
            return None;
        };
        match self.verify(received, &key, u32::from(address)) {
            Verdict::Nak(reason) => {
                if sparse(self.counters.tx_nak + 1) {
                    log::info!(
                        "dhcp4s: NAK {address} for {}: {reason} ({} NAKs so far)",
                        mac_text(&received.chaddr),
                        self.counters.tx_nak + 1
                    );
                } else {
                    log::debug!(
                        "dhcp4s: NAK {address} for {}: {reason}",
                        mac_text(&received.chaddr)
                    );
                }
                self.reply(
                    received,
                    &ReplySpec {
                        kind: MessageType::Nak,
                        yiaddr: Ipv4Addr::UNSPECIFIED,
                        ciaddr: Ipv4Addr::UNSPECIFIED,
                        with_lease: false,
                        hostname: None,
                        message: Some(reason),
                    },
                )
            }
            Verdict::AckStatic => {
                let expires = later(now, self.cfg.lease_time);
                let entry = self.statics.get_mut(&received.chaddr)?;
                let fresh = !matches!(entry.bound_until, Some(until) if until > now);
                entry.bound_until = Some(expires);
                if received.hostname.is_some() {
                    entry.client_hostname.clone_from(&received.hostname);
                }
                let hostname = entry.hostname.clone();
                self.note_deadline(expires);
                self.log_binding(fresh, received, address, true);
                self.reply_ack(received, address, hostname.as_deref())
            }
            Verdict::Ack(ip) => {
                let fresh = !self.bind(now, received, key, ip)?;
                self.log_binding(fresh, received, address, false);
                self.reply_ack(received, address, None)
            }
        }
    }

    fn log_binding(&mut self, fresh: bool, received: &Received, address: Ipv4Addr, fixed: bool) {
        let kind = if fixed { "static " } else { "" };
        if fresh {
            self.counters.leases_granted += 1;
            log::info!(
                "dhcp4s: {kind}lease {address} granted to {}{}",
                mac_text(&received.chaddr),
                received
                    .hostname
                    .as_deref()
                    .map(|name| format!(" ({name})"))
                    .unwrap_or_default()
            );
        } else {
            self.counters.leases_renewed += 1;
            log::debug!(
                "dhcp4s: {kind}lease {address} renewed for {}",
                mac_text(&received.chaddr)
            );
        }
    }

    /// Decides a REQUEST for `ip` (see the module documentation).
    fn verify(&self, received: &Received, key: &ClientKey, ip: u32) -> Verdict {
        if let Some(entry) = self.statics.get(&received.chaddr) {
            return if entry.ip == ip {
                Verdict::AckStatic
            } else {
                Verdict::Nak("not the reserved address")
            };
        }
        if !self.subnet.contains(ip) {
            return Verdict::Nak("wrong subnet");
        }
        if self.by_client.get(key) == Some(&ip) {
            return Verdict::Ack(ip);
        }
        if self.leases.contains_key(&ip) || self.static_ips.contains_key(&ip) {
            return Verdict::Nak("address in use");
        }
        if !self.subnet.in_pool(ip) {
            return Verdict::Nak("address not in the pool");
        }
        if self.quarantine.contains_key(&ip) {
            return Verdict::Nak("address declined");
        }
        Verdict::Ack(ip)
    }

    /// Binds (or extends) `ip` for the client, moving it off any other
    /// entry it had. `Some(true)` if it was already bound to it, `None` if
    /// the table is full.
    fn bind(&mut self, now: Instant, received: &Received, key: ClientKey, ip: u32) -> Option<bool> {
        let expires = later(now, self.cfg.lease_time);
        let previous = self.by_client.get(&key).copied();
        if previous == Some(ip) {
            self.dirty = true;
            let lease = self.leases.get_mut(&ip)?;
            let was_bound = lease.is_bound();
            lease.state = LeaseState::Bound { expires };
            lease.mac = received.chaddr;
            if received.hostname.is_some() {
                lease.hostname.clone_from(&received.hostname);
            }
            self.note_deadline(expires);
            return Some(was_bound);
        }
        if let Some(old) = previous {
            if let Some(lease) = self.leases.remove(&old) {
                self.forget(old, &lease);
            }
        }
        if !self.make_room() {
            return None;
        }
        self.insert_lease(
            ip,
            Lease {
                client: key,
                mac: received.chaddr,
                hostname: received.hostname.clone(),
                state: LeaseState::Bound { expires },
            },
        );
        Some(false)
    }

    fn on_release(&mut self, received: &Received) {
        if received
            .server_id
            .is_some_and(|id| id != self.cfg.server_ip)
        {
            self.counters.drop_wrong_server_id += 1;
            return;
        }
        let ip = u32::from(received.ciaddr);
        if let Some(entry) = self.statics.get_mut(&received.chaddr) {
            if entry.ip == ip && entry.bound_until.is_some() {
                entry.bound_until = None;
                self.counters.leases_released += 1;
                log::info!(
                    "dhcp4s: static lease {} released by {}",
                    received.ciaddr,
                    mac_text(&received.chaddr)
                );
            } else {
                self.counters.release_ignored += 1;
            }
            return;
        }
        let key = ClientKey::of(received);
        if self.by_client.get(&key) != Some(&ip) {
            self.counters.release_ignored += 1;
            log::debug!(
                "dhcp4s: RELEASE of {} by {} ignored: not its lease",
                received.ciaddr,
                mac_text(&received.chaddr)
            );
            return;
        }
        if let Some(lease) = self.leases.remove(&ip) {
            self.forget(ip, &lease);
            self.counters.leases_released += 1;
            log::info!(
                "dhcp4s: lease {} released by {}",
                received.ciaddr,
                mac_text(&received.chaddr)
            );
        }
    }

    fn on_decline(&mut self, now: Instant, received: &Received) {
        if received
            .server_id
            .is_some_and(|id| id != self.cfg.server_ip)
        {
            self.counters.drop_wrong_server_id += 1;
            return;
        }
        let Some(address) = received.requested_ip else {
            self.counters.decline_ignored += 1;
            return;
        };
        let ip = u32::from(address);
        if let Some(entry) = self.statics.get_mut(&received.chaddr) {
            // Quarantining a reservation would not help: it is the only
            // address this host gets. Someone squats it.
            entry.bound_until = None;
            self.counters.decline_static += 1;
            log::warn!(
                "dhcp4s: {} declined its reserved address {address}: address conflict on the LAN",
                mac_text(&received.chaddr)
            );
            return;
        }
        // Only an address we gave this client (offered or bound): anyone
        // else could otherwise quarantine the whole pool with made-up
        // DECLINEs. After a restart, the client's INIT-REBOOT ACK recreates
        // its entry before it can find a conflict.
        let key = ClientKey::of(received);
        if self.by_client.get(&key) != Some(&ip) {
            self.counters.decline_ignored += 1;
            log::debug!(
                "dhcp4s: DECLINE of {address} by {} ignored: not its address",
                mac_text(&received.chaddr)
            );
            return;
        }
        if let Some(lease) = self.leases.remove(&ip) {
            self.forget(ip, &lease);
        }
        if self.quarantine.len() >= self.cfg.max_leases && !self.quarantine.contains_key(&ip) {
            self.counters.quarantine_full += 1;
            if sparse(self.counters.quarantine_full) {
                log::warn!("dhcp4s: quarantine full, declined {address} stays in the pool");
            }
            return;
        }
        let until = later(now, self.cfg.decline_quarantine);
        self.quarantine.insert(
            ip,
            Quarantined {
                until,
                mac: received.chaddr,
            },
        );
        self.note_deadline(until);
        self.counters.decline_quarantined += 1;
        log::info!(
            "dhcp4s: {address} declined by {}, quarantined for {} s",
            mac_text(&received.chaddr),
            self.cfg.decline_quarantine.as_secs()
        );
    }

    fn on_inform(&mut self, received: &Received) -> Option<Reply> {
        let hostname = self
            .statics
            .get(&received.chaddr)
            .and_then(|entry| entry.hostname.clone());
        self.reply(
            received,
            &ReplySpec {
                kind: MessageType::Ack,
                yiaddr: Ipv4Addr::UNSPECIFIED,
                ciaddr: received.ciaddr,
                with_lease: false,
                hostname: hostname.as_deref(),
                message: None,
            },
        )
    }

    fn reply_offer(
        &mut self,
        received: &Received,
        ip: Ipv4Addr,
        hostname: Option<&str>,
    ) -> Option<Reply> {
        self.reply(
            received,
            &ReplySpec {
                kind: MessageType::Offer,
                yiaddr: ip,
                ciaddr: Ipv4Addr::UNSPECIFIED,
                with_lease: true,
                hostname,
                message: None,
            },
        )
    }

    fn reply_ack(
        &mut self,
        received: &Received,
        ip: Ipv4Addr,
        hostname: Option<&str>,
    ) -> Option<Reply> {
        self.reply(
            received,
            &ReplySpec {
                kind: MessageType::Ack,
                yiaddr: ip,
                ciaddr: received.ciaddr,
                with_lease: true,
                hostname,
                message: None,
            },
        )
    }

    /// Encodes a reply and picks its destination (module documentation).
    fn reply(&mut self, received: &Received, spec: &ReplySpec<'_>) -> Option<Reply> {
        let server = self.cfg.server_ip;
        let mut options = vec![
            DhcpOption::MessageType(spec.kind),
            DhcpOption::ServerIdentifier(server),
        ];
        if spec.with_lease {
            let lease = u32::try_from(self.cfg.lease_time.as_secs()).unwrap_or(u32::MAX - 1);
            options.push(DhcpOption::AddressLeaseTime(lease));
            options.push(DhcpOption::Renewal(lease / 2));
            options.push(DhcpOption::Rebinding(
                u32::try_from(u64::from(lease) * 7 / 8).unwrap_or(lease),
            ));
        }
        if let Some(id) = &received.client_id {
            options.push(DhcpOption::ClientIdentifier(id.clone()));
        }
        if let Some(text) = spec.message {
            options.push(DhcpOption::Message(text.to_owned()));
        }
        let mandatory = options.len();
        if spec.kind != MessageType::Nak {
            options.push(DhcpOption::SubnetMask(Ipv4Addr::from(self.subnet.mask)));
            options.push(DhcpOption::Router(vec![server]));
            let mut extra = self.configured_options(spec.hostname);
            // Stable: unrequested options keep the default order, last.
            extra.sort_by_key(|(code, _)| {
                received
                    .parameters
                    .iter()
                    .position(|asked| asked == code)
                    .unwrap_or(usize::MAX)
            });
            options.extend(extra.into_iter().map(|(_, option)| option));
        }
        let limit = self.size_limit(received);
        let header = ReplyHeader {
            xid: received.xid,
            // Only the broadcast bit is defined (the rest MUST be zero).
            flags: received.flags & BROADCAST_FLAG,
            ciaddr: spec.ciaddr,
            yiaddr: spec.yiaddr,
            chaddr: received.chaddr,
        };
        let Some(encoded) = wire::build(&header, &options, mandatory, limit) else {
            self.counters.drop_encode += 1;
            log::warn!("dhcp4s: could not encode a {:?}", spec.kind);
            return None;
        };
        if encoded.dropped > 0 {
            self.counters.options_trimmed += encoded.dropped as u64;
            log::debug!(
                "dhcp4s: {} option(s) left out of the {:?} to {} ({} bytes max)",
                encoded.dropped,
                spec.kind,
                mac_text(&received.chaddr),
                limit
            );
        }
        match spec.kind {
            MessageType::Offer => self.counters.tx_offer += 1,
            MessageType::Nak => self.counters.tx_nak += 1,
            _ => self.counters.tx_ack += 1,
        }
        let broadcast = (BROADCAST_MAC, Ipv4Addr::BROADCAST);
        let (dst_mac, dst_ip) = if spec.kind == MessageType::Nak {
            broadcast
        } else if !received.ciaddr.is_unspecified() {
            (received.chaddr, received.ciaddr)
        } else if received.broadcast() || spec.yiaddr.is_unspecified() {
            broadcast
        } else {
            (received.chaddr, spec.yiaddr)
        };
        log::debug!(
            "dhcp4s: tx {:?} yiaddr {} to {dst_ip} ({}), {} bytes",
            spec.kind,
            spec.yiaddr,
            mac_text(&dst_mac),
            encoded.payload.len()
        );
        Some(Reply {
            payload: encoded.payload,
            dst_mac,
            dst_ip,
        })
    }

    /// The optional configured options with their codes, in the default
    /// order.
    fn configured_options(&self, hostname: Option<&str>) -> Vec<(u8, DhcpOption)> {
        let cfg = &self.cfg;
        let mut options = Vec::new();
        if !cfg.dns.is_empty() {
            options.push((6, DhcpOption::DomainNameServer(cfg.dns.clone())));
        }
        if let Some(domain) = &cfg.domain {
            options.push((15, DhcpOption::DomainName(domain.clone())));
        }
        if let Some(name) = hostname {
            options.push((12, DhcpOption::Hostname(name.to_owned())));
        }
        options.push((
            28,
            DhcpOption::BroadcastAddr(Ipv4Addr::from(self.subnet.broadcast)),
        ));
        if !cfg.ntp.is_empty() {
            options.push((42, DhcpOption::NtpServers(cfg.ntp.clone())));
        }
        if let Some(mtu) = cfg.mtu {
            options.push((26, DhcpOption::InterfaceMtu(mtu)));
        }
        if let Some(name) = &self.search {
            options.push((119, DhcpOption::DomainSearch(vec![name.clone()])));
        }
        options
    }

    /// Largest DHCP payload the client takes: 576-octet datagrams, or what
    /// option 57 allows up to the link MTU.
    fn size_limit(&self, received: &Received) -> usize {
        let ceiling = self
            .cfg
            .mtu
            .map_or(DEFAULT_MTU, usize::from)
            .max(MIN_DATAGRAM);
        let asked = received
            .max_message_size
            .map_or(MIN_DATAGRAM, usize::from)
            .clamp(MIN_DATAGRAM, ceiling);
        asked - IP_UDP_HEADERS
    }

    /// A pool address nobody holds, reserves or has declined.
    fn is_free(&self, ip: u32) -> bool {
        self.subnet.in_pool(ip)
            && !self.leases.contains_key(&ip)
            && !self.static_ips.contains_key(&ip)
            && !self.quarantine.contains_key(&ip)
    }

    /// The lowest free pool address. Each address skipped is in one of the
    /// (bounded) tables or is the server / network / broadcast address, so
    /// the walk is bounded by the table sizes, not the pool size.
    fn lowest_free(&self) -> Option<u32> {
        let (low, high) = self.subnet.pool?;
        let mut ip = low;
        loop {
            if self.is_free(ip) {
                return Some(ip);
            }
            if ip >= high {
                return None;
            }
            ip += 1;
        }
    }

    fn oldest_offer(&self) -> Option<(u32, Instant)> {
        self.soonest_entry(|lease| !lease.is_bound())
    }

    fn soonest_entry(&self, filter: impl Fn(&Lease) -> bool) -> Option<(u32, Instant)> {
        self.leases
            .iter()
            .filter(|(_, lease)| filter(lease))
            .map(|(ip, lease)| (*ip, lease.deadline()))
            .min_by_key(|(_, deadline)| *deadline)
    }

    /// Withdraws the pending offer that expires first; returns its address.
    fn evict_oldest_offer(&mut self) -> Option<u32> {
        let (ip, _) = self.oldest_offer()?;
        let lease = self.leases.remove(&ip)?;
        self.forget(ip, &lease);
        self.counters.offer_evicted += 1;
        log::debug!(
            "dhcp4s: offer of {} to {} withdrawn to make room",
            Ipv4Addr::from(ip),
            mac_text(&lease.mac)
        );
        Some(ip)
    }

    /// Room for one more entry, withdrawing an offer if needed; counts
    /// `table-full` when only bound leases are left.
    fn make_room(&mut self) -> bool {
        if self.leases.len() < self.cfg.max_leases || self.evict_oldest_offer().is_some() {
            return true;
        }
        self.counters.table_full += 1;
        if sparse(self.counters.table_full) {
            log::warn!(
                "dhcp4s: lease table full ({} entries, {} times)",
                self.cfg.max_leases,
                self.counters.table_full
            );
        }
        false
    }

    fn insert_lease(&mut self, ip: u32, lease: Lease) {
        self.by_client.insert(lease.client.clone(), ip);
        self.note_deadline(lease.deadline());
        if lease.is_bound() {
            self.dirty = true;
        }
        self.leases.insert(ip, lease);
    }

    /// Bookkeeping after `lease` (for `ip`) left the table.
    fn forget(&mut self, ip: u32, lease: &Lease) {
        if self.by_client.get(&lease.client) == Some(&ip) {
            self.by_client.remove(&lease.client);
        }
        if lease.is_bound() {
            self.dirty = true;
        }
    }

    fn import_one(
        &mut self,
        now: Instant,
        wall: u64,
        stored: &StoredLease,
    ) -> Result<(), &'static str> {
        let remaining = stored.expires_unix.saturating_sub(wall);
        if remaining == 0 {
            return Err("expired");
        }
        let mac = parse_mac(&stored.mac).ok_or("bad MAC")?;
        let client = match &stored.client_id {
            Some(text) => ClientKey::Id(
                unhex(text)
                    .filter(|id| !id.is_empty() && id.len() <= 255)
                    .ok_or("bad client id")?,
            ),
            None => ClientKey::Mac(mac),
        };
        let ip = u32::from(stored.ip);
        if !self.subnet.in_pool(ip) {
            return Err("not a pool address");
        }
        if self.statics.contains_key(&mac) {
            return Err("the MAC has a static lease");
        }
        if !self.is_free(ip) {
            return Err("address taken");
        }
        if self.by_client.contains_key(&client) {
            return Err("client already has a lease");
        }
        if self.leases.len() >= self.cfg.max_leases {
            return Err("lease table full");
        }
        let remaining = Duration::from_secs(remaining).min(self.cfg.lease_time);
        let hostname = stored
            .hostname
            .as_deref()
            .filter(|name| name.len() <= 63 && valid_dns_name(name))
            .map(str::to_owned);
        self.insert_lease(
            ip,
            Lease {
                client,
                mac,
                hostname,
                state: LeaseState::Bound {
                    expires: later(now, remaining),
                },
            },
        );
        Ok(())
    }

    fn expire(&mut self, now: Instant) {
        let mut gone = Vec::new();
        self.leases.retain(|ip, lease| {
            let alive = lease.deadline() > now;
            if !alive {
                gone.push((*ip, lease.clone()));
            }
            alive
        });
        for (ip, lease) in gone {
            if lease.is_bound() {
                self.counters.leases_expired += 1;
                log::info!(
                    "dhcp4s: lease {} of {} expired",
                    Ipv4Addr::from(ip),
                    mac_text(&lease.mac)
                );
            } else {
                self.counters.offers_expired += 1;
                log::debug!(
                    "dhcp4s: offer of {} to {} expired",
                    Ipv4Addr::from(ip),
                    mac_text(&lease.mac)
                );
            }
            self.forget(ip, &lease);
        }
        for (mac, entry) in self.statics.iter_mut() {
            if entry.bound_until.is_some_and(|until| until <= now) {
                entry.bound_until = None;
                self.counters.leases_expired += 1;
                log::info!(
                    "dhcp4s: static lease {} of {} expired",
                    Ipv4Addr::from(entry.ip),
                    mac_text(mac)
                );
            }
        }
        self.quarantine.retain(|ip, quarantined| {
            let alive = quarantined.until > now;
            if !alive {
                log::debug!("dhcp4s: {} out of quarantine", Ipv4Addr::from(*ip));
            }
            alive
        });
        self.recompute_deadline();
    }

    fn recompute_deadline(&mut self) {
        self.next_due = self
            .leases
            .values()
            .map(Lease::deadline)
            .chain(self.statics.values().filter_map(|entry| entry.bound_until))
            .chain(self.quarantine.values().map(|q| q.until))
            .min();
    }

    fn note_deadline(&mut self, deadline: Instant) {
        self.next_due = Some(self.next_due.map_or(deadline, |due| due.min(deadline)));
    }
}

/// Whether the `count`th occurrence of something a LAN host can trigger at
/// will gets logged: the 1st, 2nd, 4th, 8th... so a flood cannot flood
/// the log.
fn sparse(count: u64) -> bool {
    count.is_power_of_two()
}

/// `now + duration`; durations are clamped by the configuration, so the
/// fallback (a far, not infinite, deadline) is never expected.
fn later(now: Instant, duration: Duration) -> Instant {
    now.checked_add(duration)
        .or_else(|| now.checked_add(Duration::from_secs(MAX_LEASE_SECS)))
        .unwrap_or(now)
}

fn unix_seconds(wall: SystemTime) -> u64 {
    wall.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// A DNS name of host-name labels (letters, digits, '-', '_'), at most 253
/// characters, no trailing dot.
fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn mac_text(mac: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for octet in mac.iter_mut() {
        *octet = hex_octet(parts.next()?.as_bytes())?;
    }
    parts.next().is_none().then_some(mac)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    text.as_bytes().chunks(2).map(hex_octet).collect()
}

/// Two hex digits (and nothing else: `from_str_radix` would take "+f").
fn hex_octet(digits: &[u8]) -> Option<u8> {
    if digits.len() != 2 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u8::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}
