//! TXT lookups (RFC 1035 3.3.14): what HB46PP's `4over6.info` record needs
//! from the WAN's resolvers.
//!
//! * Wire: [`TxtRdata`], a checked view of one TXT RDATA (a sequence of
//!   `<character-string>`s: a length octet and that many octets), and
//!   [`parse_txt_response`], which validates a reply exactly as the AAAA
//!   parser does (header, echoed question, framing, RCODE, bounded CNAME
//!   chain) and returns the TXT records of the final name, each its
//!   character-strings joined (HB46PP 3.1: a record longer than 255 octets
//!   is split into several strings).
//! * [`TxtLookup`]: one lookup, sans-IO: a query to each server in turn
//!   with a doubling timeout, ending in a [`TxtResult`]. Unlike the AAAA
//!   [`super::Resolver`] it keeps nothing: its caller (the HB46PP client)
//!   owns the retry timers of the protocol.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::{
    build_query, later, parse_answers, DnsError, Packet, Query, CLASS_IN, DNS_PORT,
    EPHEMERAL_PORT_FIRST, RCODE_NXDOMAIN, RCODE_REFUSED, RCODE_SERVFAIL,
};
use crate::osrand::OsRandom;

/// RR type of a text record.
pub const TYPE_TXT: u16 = 16;
/// TXT records kept from one reply.
pub const MAX_TXT_RECORDS: usize = 16;
/// Bytes kept per record (its strings joined): what HB46PP reads at most.
pub const MAX_TXT_LEN: usize = 4096;

/// A checked view of one TXT RDATA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxtRdata<'a> {
    buffer: &'a [u8],
}

impl<'a> TxtRdata<'a> {
    /// RFC 1035 3.3.14: one or more character-strings, each a length
    /// octet and that many octets, filling the RDATA exactly.
    pub fn new_checked(buffer: &'a [u8]) -> Result<Self, DnsError> {
        if buffer.is_empty() {
            return Err(DnsError::BadRdata);
        }
        let mut at = 0;
        while at < buffer.len() {
            at += 1 + usize::from(buffer[at]);
        }
        if at != buffer.len() {
            return Err(DnsError::BadRdata);
        }
        Ok(TxtRdata { buffer })
    }

    /// The character-strings, in order.
    pub fn strings(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let buffer = self.buffer;
        let mut at = 0;
        std::iter::from_fn(move || {
            let len = usize::from(*buffer.get(at)?);
            let s = buffer.get(at + 1..at + 1 + len)?;
            at += 1 + len;
            Some(s)
        })
    }

    /// The strings joined: the record's text.
    pub fn joined(&self) -> Vec<u8> {
        self.strings().flatten().copied().collect()
    }
}

/// Writes TXT RDATA for `text`, split into 255-octet strings (the
/// inverse of [`TxtRdata::joined`]; for tests and the lab).
pub fn emit_txt_rdata(text: &[u8], out: &mut Vec<u8>) {
    if text.is_empty() {
        out.push(0);
    }
    for chunk in text.chunks(255) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
}

/// Validates a reply to `build_query(id, name, TYPE_TXT)` and returns the
/// TXT records of `name` (or of the end of its CNAME chain), at most
/// [`MAX_TXT_RECORDS`], each at most [`MAX_TXT_LEN`] bytes (longer ones
/// are cut, so the reader refuses them as too long rather than never
/// seeing them). NODATA is [`DnsError::NoAnswer`], NXDOMAIN
/// `Rcode(3)`.
pub fn parse_txt_response(id: u16, name: &str, msg: &[u8]) -> Result<Vec<Vec<u8>>, DnsError> {
    let answers = parse_answers(id, name, RecordType::TXT, msg)?;
    let mut records = Vec::new();
    for record in &answers.records {
        if record.rtype != TYPE_TXT || record.class != CLASS_IN || record.owner != answers.current {
            continue;
        }
        let rdata = TxtRdata::new_checked(&msg[record.rdata.clone()])?;
        if records.len() < MAX_TXT_RECORDS {
            let mut text = rdata.joined();
            text.truncate(MAX_TXT_LEN + 1);
            records.push(text);
        }
    }
    if records.is_empty() {
        return Err(DnsError::NoAnswer);
    }
    Ok(records)
}

/// How a lookup ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxtResult {
    /// The records, each its strings joined.
    Records(Vec<Vec<u8>>),
    NxDomain,
    NoData,
    /// Every attempt failed (timeouts, SERVFAIL, REFUSED...), or no server.
    Failed(String),
}

named_counters! {
    /// What one lookup saw.
    pub struct TxtCounters {
        /// Queries sent.
        tx_query => "tx-query",
        /// Datagrams from another source or to another port.
        drop_unexpected => "drop-unexpected",
        /// Replies not for the query in flight (id, question) or that do
        /// not parse: the query stays outstanding.
        drop_malformed => "drop-malformed",
        /// Attempts ended by an error reply or a timeout.
        attempts_failed => "attempts-failed",
    }
}

#[derive(Clone, Debug)]
struct Outstanding {
    id: u16,
    src_port: u16,
    server: Ipv6Addr,
    deadline: Instant,
}

/// One TXT lookup of a name; see the module documentation.
#[derive(Debug)]
pub struct TxtLookup {
    name: String,
    servers: Vec<Ipv6Addr>,
    rng: OsRandom,
    attempts: u32,
    max_attempts: u32,
    timeout: Duration,
    outstanding: Option<Outstanding>,
    last_error: Option<String>,
    result: Option<TxtResult>,
    counters: TxtCounters,
}

/// First timeout; doubled per attempt up to [`MAX_TIMEOUT`].
const FIRST_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_TIMEOUT: Duration = Duration::from_secs(8);

impl TxtLookup {
    /// A lookup of `name` through `servers` (the WAN's), four attempts
    /// at most (2, 4, 8 and 8 s: about 22 s before it fails).
    pub fn new(name: &str, servers: &[Ipv6Addr]) -> Self {
        let mut list: Vec<Ipv6Addr> = Vec::new();
        for s in servers {
            if !s.is_unspecified() && !s.is_multicast() && !list.contains(s) {
                list.push(*s);
            }
        }
        list.truncate(super::MAX_SERVERS);
        let result = if list.is_empty() {
            Some(TxtResult::Failed("no DNS server learned on the WAN".into()))
        } else if build_query(0, name, TYPE_TXT).is_err() {
            Some(TxtResult::Failed(format!("cannot look up {name:?}")))
        } else {
            None
        };
        TxtLookup {
            name: name.to_string(),
            servers: list,
            rng: OsRandom::new(),
            attempts: 0,
            max_attempts: 4,
            timeout: FIRST_TIMEOUT,
            outstanding: None,
            last_error: None,
            result,
            counters: TxtCounters::default(),
        }
    }

    pub fn counters(&self) -> &TxtCounters {
        &self.counters
    }

    /// The result once the lookup is over.
    pub fn result(&self) -> Option<&TxtResult> {
        self.result.as_ref()
    }

    /// Queries due at `now` go to `out`; returns when to poll next
    /// (`None` once it is over).
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Query>) -> Option<Instant> {
        if self.result.is_some() {
            return None;
        }
        if let Some(q) = &self.outstanding {
            if now < q.deadline {
                return Some(q.deadline);
            }
            let server = q.server;
            self.outstanding = None;
            self.attempt_failed(format!("no reply from {server} (timeout)"));
            if self.result.is_some() {
                return None;
            }
        }
        let server = self.servers[self.attempts as usize % self.servers.len()];
        let id = self.rng.next_u64() as u16;
        let src_port = EPHEMERAL_PORT_FIRST + (self.rng.next_u64() % 16384) as u16;
        // The name was checked in `new`.
        let payload = build_query(id, &self.name, TYPE_TXT).unwrap_or_default();
        let deadline = later(now, self.timeout);
        self.timeout = (self.timeout * 2).min(MAX_TIMEOUT);
        self.outstanding = Some(Outstanding {
            id,
            src_port,
            server,
            deadline,
        });
        self.counters.tx_query += 1;
        out.push(Query {
            server,
            src_port,
            payload,
        });
        Some(deadline)
    }

    /// Whether this datagram is a reply this lookup waits for (from port 53
    /// of the server asked, to the query's port); the caller tries the
    /// other lookups otherwise.
    pub fn wants(&self, from: Ipv6Addr, from_port: u16, dst_port: u16) -> bool {
        self.outstanding
            .as_ref()
            .is_some_and(|q| q.server == from && from_port == DNS_PORT && q.src_port == dst_port)
    }

    /// A UDP datagram; returns whether it was the reply awaited.
    pub fn handle(
        &mut self,
        now: Instant,
        from: Ipv6Addr,
        from_port: u16,
        dst_port: u16,
        msg: &[u8],
    ) -> bool {
        let _ = now;
        if !self.wants(from, from_port, dst_port) {
            self.counters.drop_unexpected += 1;
            return false;
        }
        let Some(q) = self.outstanding.clone() else {
            return false;
        };
        match Packet::new_checked(msg) {
            Ok(h) if h.id() == q.id => {}
            _ => {
                self.counters.drop_malformed += 1;
                return false;
            }
        }
        let error = match parse_txt_response(q.id, &self.name, msg) {
            Ok(records) => {
                self.finish(TxtResult::Records(records));
                return true;
            }
            Err(DnsError::Rcode(RCODE_NXDOMAIN)) => {
                self.finish(TxtResult::NxDomain);
                return true;
            }
            Err(DnsError::NoAnswer) => {
                self.finish(TxtResult::NoData);
                return true;
            }
            Err(e @ (DnsError::Rcode(_) | DnsError::Tc | DnsError::CnameChainTooLong)) => e,
            Err(_) => {
                // Possibly forged: keep waiting for the real reply.
                self.counters.drop_malformed += 1;
                return false;
            }
        };
        let reason = match error {
            DnsError::Rcode(RCODE_SERVFAIL) => format!("SERVFAIL from {}", q.server),
            DnsError::Rcode(RCODE_REFUSED) => format!("REFUSED from {}", q.server),
            e => format!("{e} from {}", q.server),
        };
        // The next attempt goes out at the next poll, to the next server.
        self.outstanding = None;
        self.attempt_failed(reason);
        true
    }

    fn finish(&mut self, result: TxtResult) {
        self.outstanding = None;
        self.result = Some(result);
    }

    fn attempt_failed(&mut self, reason: String) {
        self.counters.attempts_failed += 1;
        self.attempts += 1;
        log::debug!("dns: TXT {} attempt failed: {reason}", self.name);
        if self.attempts >= self.max_attempts {
            self.result = Some(TxtResult::Failed(format!(
                "{} attempts, last: {reason}",
                self.attempts
            )));
        }
        self.last_error = Some(reason);
    }
}

#[cfg(test)]
#[path = "txt_tests.rs"]
mod tests;
