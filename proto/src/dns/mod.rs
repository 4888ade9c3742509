//! Stub resolver for one AAAA name: how `ipoed` finds the DS-Lite AFTR
//! address from its FQDN (e.g. `gw.transix.jp`) using the DNS servers
//! learned on the WAN (RA RDNSS or DHCPv6 option 23).
//!
//! Two layers:
//!
//! * **Wire** (RFC 1035, RFC 6891), on hickory-proto's codec:
//!   [`build_query`] writes the query with it; [`parse_aaaa_response`]
//!   validates a reply and extracts the addresses, following a bounded
//!   CNAME chain, with hickory's decoder reading the header, the question
//!   and every name. Every received byte is hostile: hickory checks
//!   lengths and makes compression pointers point before the name holding
//!   them (so they cannot loop); our own rules on top keep pointers out of
//!   the header and at most [`MAX_POINTER_HOPS`] per name, bound CNAME
//!   chains at [`MAX_CNAME_CHAIN`], and decode RDATA only for the records
//!   used (so a stray record only has to frame). [`encode_name`] checks a
//!   configured name (letters, digits, `-`, `_`), stricter than hickory.
//!   [`Packet`] is a zero-copy header view in the style of `smoltcp::wire`,
//!   kept for the DNS proxy, which patches relayed answers in place.
//! * **[`Resolver`]**: a sans-IO state machine. It owns no socket and reads
//!   no clock: it is fed `(now, datagram)` and [`Resolver::poll`] returns the
//!   queries to send and the next deadline, so tests run days of protocol
//!   time on a fake clock.
//!
//! The resolver keeps the last good answer for as long as nothing better is
//! known: an unreachable, failing or lying DNS server must not take the
//! softwire down, so failures only produce one [`Event::Failed`] per lookup
//! round and the previous [`Resolved`] stays available until a *different*
//! answer replaces it.

pub mod txt;

#[cfg(test)]
mod hickory_tests;
#[cfg(test)]
mod tests;

use std::net::Ipv6Addr;
use std::ops::Range;
use std::time::{Duration, Instant};

use hickory_proto::op::{self as hop, Edns, Header, Message, MessageType, OpCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable};
use hickory_proto::{ProtoError, ProtoErrorKind};

use crate::osrand::OsRandom;

// ---------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------

/// UDP port DNS servers listen on.
pub const DNS_PORT: u16 = 53;
/// Fixed DNS header length.
pub const HEADER_LEN: usize = 12;
/// RR type of an IPv6 address record (RFC 3596).
pub const TYPE_AAAA: u16 = 28;
/// RR type of a canonical-name alias.
pub const TYPE_CNAME: u16 = 5;
/// RR type of the EDNS0 pseudo-record (RFC 6891).
pub const TYPE_OPT: u16 = 41;
/// The Internet class.
pub const CLASS_IN: u16 = 1;
/// UDP payload size advertised in EDNS0: the DNS flag day 2020 value, which
/// avoids IP fragmentation on any path with the IPv6 minimum MTU.
pub const EDNS_UDP_PAYLOAD: u16 = 1232;
/// Longest domain name in wire form, root octet included (RFC 1035 2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// CNAME records followed before giving up on a reply.
pub const MAX_CNAME_CHAIN: usize = 8;
/// Addresses kept from one reply.
pub const MAX_ADDRS: usize = 16;
/// Compression pointers followed within one name. Legitimate compressors
/// need a handful; the backwards-only rule already prevents loops, this
/// bounds the work a crafted chain of pointers can cause (hickory alone
/// follows a chain to its end, thousands of hops).
pub const MAX_POINTER_HOPS: usize = 32;

/// Header flag: this is a response.
pub const FLAG_QR: u16 = 0x8000;
/// Header flag: authoritative answer.
pub const FLAG_AA: u16 = 0x0400;
/// Header flag: the reply was truncated.
pub const FLAG_TC: u16 = 0x0200;
/// Header flag: recursion desired.
pub const FLAG_RD: u16 = 0x0100;
/// Header flag: recursion available.
pub const FLAG_RA: u16 = 0x0080;

/// Response codes the resolver distinguishes.
pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_REFUSED: u8 = 5;

/// Why a name cannot be put on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty name")]
    Empty,
    #[error("empty label")]
    EmptyLabel,
    #[error("label longer than 63 octets")]
    LabelTooLong,
    #[error("name longer than 255 octets")]
    TooLong,
    #[error("invalid character {0:?} (letters, digits, '-' and '_' only)")]
    InvalidChar(char),
}

/// Why a reply was not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("message truncated")]
    Truncated,
    #[error("not a response (QR clear)")]
    NotAResponse,
    #[error("unexpected opcode {0}")]
    Opcode(u8),
    #[error("transaction id mismatch")]
    IdMismatch,
    #[error("question section does not echo the query")]
    QuestionMismatch,
    /// A non-zero response code; 3 is NXDOMAIN, 2 SERVFAIL. Includes the
    /// EDNS0 extended bits (saturated to 255).
    #[error("response code {0}")]
    Rcode(u8),
    /// NOERROR without an AAAA record for the name (NODATA).
    #[error("no AAAA record in the answer")]
    NoAnswer,
    #[error("compression pointer not pointing backwards")]
    BadPointer,
    #[error("compression pointers loop")]
    LoopingPointers,
    #[error("name longer than 255 octets")]
    TooLong,
    /// A label type other than a plain label or a pointer (RFC 6891 9).
    #[error("unsupported label type")]
    BadLabel,
    /// RDATA whose length does not fit its type (AAAA not 16 octets, CNAME
    /// target not filling its RDATA).
    #[error("malformed record data")]
    BadRdata,
    #[error("CNAME chain longer than {MAX_CNAME_CHAIN}")]
    CnameChainTooLong,
    /// The truncated (TC) flag is set: the reply is incomplete.
    #[error("truncated flag set")]
    Tc,
    /// The name asked for is not a valid name.
    #[error("invalid name: {0}")]
    Name(#[from] NameError),
}

/// Byte ranges of the header fields.
mod field {
    use std::ops::Range;

    pub const ID: Range<usize> = 0..2;
    pub const FLAGS: Range<usize> = 2..4;
    pub const QDCOUNT: Range<usize> = 4..6;
    pub const ANCOUNT: Range<usize> = 6..8;
    pub const NSCOUNT: Range<usize> = 8..10;
    pub const ARCOUNT: Range<usize> = 10..12;
}

/// A read/write view of a DNS message header, in the style of
/// `smoltcp::wire`: construct with [`Packet::new_checked`] and every
/// accessor is in bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors panic if it is shorter
    /// than [`HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer that holds at least a full header.
    pub fn new_checked(buffer: T) -> Result<Self, DnsError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    pub fn check_len(&self) -> Result<(), DnsError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(DnsError::Truncated)
        } else {
            Ok(())
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn get_u16(&self, at: Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[at];
        u16::from_be_bytes([b[0], b[1]])
    }

    pub fn id(&self) -> u16 {
        self.get_u16(field::ID)
    }

    pub fn flags(&self) -> u16 {
        self.get_u16(field::FLAGS)
    }

    pub fn is_response(&self) -> bool {
        self.flags() & FLAG_QR != 0
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags() >> 11) & 0x0f) as u8
    }

    pub fn is_authoritative(&self) -> bool {
        self.flags() & FLAG_AA != 0
    }

    pub fn is_truncated(&self) -> bool {
        self.flags() & FLAG_TC != 0
    }

    pub fn recursion_desired(&self) -> bool {
        self.flags() & FLAG_RD != 0
    }

    pub fn recursion_available(&self) -> bool {
        self.flags() & FLAG_RA != 0
    }

    /// The 4-bit header response code (without EDNS0 extension bits).
    pub fn rcode(&self) -> u8 {
        (self.flags() & 0x000f) as u8
    }

    pub fn question_count(&self) -> u16 {
        self.get_u16(field::QDCOUNT)
    }

    pub fn answer_count(&self) -> u16 {
        self.get_u16(field::ANCOUNT)
    }

    pub fn authority_count(&self) -> u16 {
        self.get_u16(field::NSCOUNT)
    }

    pub fn additional_count(&self) -> u16 {
        self.get_u16(field::ARCOUNT)
    }

    /// Everything after the header.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u16(&mut self, at: Range<usize>, value: u16) {
        self.buffer.as_mut()[at].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_id(&mut self, value: u16) {
        self.set_u16(field::ID, value)
    }

    pub fn set_flags(&mut self, value: u16) {
        self.set_u16(field::FLAGS, value)
    }

    pub fn set_question_count(&mut self, value: u16) {
        self.set_u16(field::QDCOUNT, value)
    }

    pub fn set_answer_count(&mut self, value: u16) {
        self.set_u16(field::ANCOUNT, value)
    }

    pub fn set_authority_count(&mut self, value: u16) {
        self.set_u16(field::NSCOUNT, value)
    }

    pub fn set_additional_count(&mut self, value: u16) {
        self.set_u16(field::ARCOUNT, value)
    }
}

/// Appends `name` in uncompressed wire form (length-prefixed labels and the
/// root octet). Labels are 1..=63 octets of letters, digits, `-` or `_`;
/// the whole name at most 255 octets; one trailing dot is accepted. On
/// error `out` is left as it was.
pub fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), NameError> {
    let name = checked_name(name)?;
    // A fresh encoder has nothing to compress against.
    out.extend_from_slice(&name.to_bytes().unwrap_or_default());
    Ok(())
}

/// `name` as an absolute hickory name, if it follows the rules of
/// [`encode_name`] (stricter than hickory's, which takes any octet).
pub(crate) fn checked_name(name: &str) -> Result<Name, NameError> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err(NameError::Empty);
    }
    let mut wire_len = 1; // the root octet
    for label in bare.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::LabelTooLong);
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(NameError::InvalidChar(bad));
        }
        wire_len += 1 + label.len();
        if wire_len > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
    }
    let mut name = Name::from_ascii(bare).map_err(|_| NameError::TooLong)?;
    name.set_fqdn(true);
    Ok(name)
}

/// A recursive query (RD=1) with one question of class IN for `name` and
/// an EDNS0 OPT record advertising [`EDNS_UDP_PAYLOAD`] bytes.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, NameError> {
    let mut msg = Message::new();
    msg.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(hop::Query::query(
            checked_name(name)?,
            RecordType::from(qtype),
        ));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_UDP_PAYLOAD);
    msg.set_edns(edns);
    // One checked name and an empty OPT always encode.
    Ok(msg.to_vec().unwrap_or_default())
}

/// The hickory error of a name or record as ours. Pointer errors tell a
/// pointer at or after itself (bad) from one revisiting bytes (a loop).
fn decode_error(e: &ProtoError) -> DnsError {
    match e.kind() {
        ProtoErrorKind::PointerNotPriorToLabel { idx, ptr } if usize::from(*ptr) >= *idx => {
            DnsError::BadPointer
        }
        ProtoErrorKind::PointerNotPriorToLabel { .. }
        | ProtoErrorKind::LabelOverlapsWithOther { .. } => DnsError::LoopingPointers,
        ProtoErrorKind::DomainNameTooLong(_) | ProtoErrorKind::LabelBytesTooLong(_) => {
            DnsError::TooLong
        }
        ProtoErrorKind::UnrecognizedLabelCode(_) => DnsError::BadLabel,
        _ => DnsError::Truncated,
    }
}

/// The pointer rules hickory does not enforce. It follows any pointer to
/// before the name holding it, so also into the header and along chains
/// of thousands of pointers (quadratic work over a message of records
/// owned by one long chain); ours never point into the header and take at
/// most [`MAX_POINTER_HOPS`]. Only pointers are checked here: everything
/// else about the name is left to hickory, which reads it next.
fn check_pointers(msg: &[u8], mut pos: usize) -> Result<(), DnsError> {
    let mut hops = 0;
    while let Some(&len) = msg.get(pos) {
        match len & 0xc0 {
            0x00 if len == 0 => break,
            0x00 => pos += 1 + usize::from(len),
            0xc0 => {
                let Some(&low) = msg.get(pos + 1) else { break };
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                if target < HEADER_LEN {
                    return Err(DnsError::BadPointer);
                }
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err(DnsError::LoopingPointers);
                }
                if target >= pos {
                    break;
                }
                pos = target;
            }
            _ => break,
        }
    }
    Ok(())
}

/// Reads the possibly compressed name at the decoder's position.
fn read_name(msg: &[u8], decoder: &mut BinDecoder<'_>) -> Result<Name, DnsError> {
    check_pointers(msg, decoder.index())?;
    Name::read(decoder).map_err(|e| decode_error(&e))
}

/// A decoder positioned at `at` of `msg`.
fn decoder_at(msg: &[u8], at: usize) -> Result<BinDecoder<'_>, DnsError> {
    let mut decoder = BinDecoder::new(msg);
    decoder.read_slice(at).map_err(|_| DnsError::Truncated)?;
    Ok(decoder)
}

/// One resource record: its owner decoded, its RDATA located in the
/// message (decoded on demand, so records of types we do not use are
/// only framed, never rejected for their content).
#[derive(Clone, Debug)]
struct Record {
    owner: Name,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: Range<usize>,
}

impl Record {
    fn read(msg: &[u8], decoder: &mut BinDecoder<'_>) -> Result<Self, DnsError> {
        let owner = read_name(msg, decoder)?;
        let mut u16_field = || {
            decoder
                .read_u16()
                .map(|v| v.unverified(/* any value */))
                .map_err(|_| DnsError::Truncated)
        };
        let (rtype, class) = (u16_field()?, u16_field()?);
        let ttl = decoder
            .read_u32()
            .map_err(|_| DnsError::Truncated)?
            .unverified(/* any value */);
        let rdlen = decoder
            .read_u16()
            .map_err(|_| DnsError::Truncated)?
            .unverified(/* checked by read_slice */);
        let start = decoder.index();
        decoder
            .read_slice(usize::from(rdlen))
            .map_err(|_| DnsError::Truncated)?;
        Ok(Record {
            owner,
            rtype,
            class,
            ttl,
            rdata: start..decoder.index(),
        })
    }

    /// RFC 2181 8: a TTL with the top bit set is treated as zero.
    fn ttl(&self) -> u32 {
        if self.ttl > i32::MAX as u32 {
            0
        } else {
            self.ttl
        }
    }
}

/// The addresses of a successful AAAA lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AaaaAnswer {
    /// In answer order, duplicates removed, at most [`MAX_ADDRS`].
    pub addrs: Vec<Ipv6Addr>,
    /// Minimum TTL over the CNAME records followed and the AAAA records
    /// used, in seconds.
    pub ttl: u32,
}

/// The answer section of a validated reply, with the name the CNAME chain
/// from the question ends at (the owner of the records asked for).
struct Answers {
    current: Name,
    records: Vec<Record>,
    /// Minimum TTL over the CNAME records followed.
    ttl: u32,
}

/// What [`parse_aaaa_response`] and [`parse_txt_response`] share: every
/// check up to and including the CNAME chain, for a question of `qtype`.
fn parse_answers(id: u16, name: &str, qtype: RecordType, msg: &[u8]) -> Result<Answers, DnsError> {
    let qname = checked_name(name)?;
    let mut decoder = BinDecoder::new(msg);
    let header = Header::read(&mut decoder).map_err(|_| DnsError::Truncated)?;
    if header.message_type() != MessageType::Response {
        return Err(DnsError::NotAResponse);
    }
    if header.id() != id {
        return Err(DnsError::IdMismatch);
    }
    if header.op_code() != OpCode::Query {
        return Err(DnsError::Opcode(header.op_code().into()));
    }

    // The echoed question is what ties the reply to our query beyond the
    // 16-bit id; an off-path spoofer has to get it right too.
    if header.query_count() != 1 {
        return Err(DnsError::QuestionMismatch);
    }
    check_pointers(msg, HEADER_LEN)?;
    let question = hop::Query::read(&mut decoder).map_err(|e| decode_error(&e))?;
    if *question.name() != qname
        || question.query_type() != qtype
        || question.query_class() != DNSClass::IN
    {
        return Err(DnsError::QuestionMismatch);
    }
    if header.truncated() {
        return Err(DnsError::Tc);
    }

    let mut answers = Vec::new();
    for _ in 0..header.answer_count() {
        answers.push(Record::read(msg, &mut decoder)?);
    }
    for _ in 0..header.name_server_count() {
        Record::read(msg, &mut decoder)?;
    }
    let mut rcode = u16::from(header.response_code());
    for _ in 0..header.additional_count() {
        let record = Record::read(msg, &mut decoder)?;
        if record.rtype == TYPE_OPT && record.owner.is_root() {
            // RFC 6891 6.1.3: the upper 8 bits of the 12-bit RCODE.
            rcode |= (record.ttl >> 24) as u16 * 16;
        }
    }
    if rcode != u16::from(RCODE_NOERROR) {
        return Err(DnsError::Rcode(u8::try_from(rcode).unwrap_or(u8::MAX)));
    }

    let mut current = qname;
    let mut ttl = u32::MAX;
    let mut hops = 0;
    'chain: loop {
        for record in &answers {
            if record.rtype == TYPE_CNAME && record.class == CLASS_IN && record.owner == current {
                if hops == MAX_CNAME_CHAIN {
                    return Err(DnsError::CnameChainTooLong);
                }
                let mut rdata = decoder_at(msg, record.rdata.start)?;
                let target = read_name(msg, &mut rdata)?;
                if rdata.index() != record.rdata.end {
                    return Err(DnsError::BadRdata);
                }
                hops += 1;
                ttl = ttl.min(record.ttl());
                current = target;
                continue 'chain;
            }
        }
        break;
    }
    Ok(Answers {
        current,
        records: answers,
        ttl,
    })
}

/// Validates a reply to `build_query(id, name, TYPE_AAAA)` and extracts the
/// addresses.
///
/// Checks, in order: header length, QR, id, opcode, the echoed question
/// (exactly one, case-insensitive name, AAAA, IN), TC, the framing of every
/// record in all three sections, the response code (with the EDNS0
/// extended bits), then follows CNAMEs from `name` inside the answer
/// section (at most [`MAX_CNAME_CHAIN`], in any order) and collects the
/// AAAA records of the final name. Records for other names or classes are
/// ignored; bytes after the last counted record are ignored.
pub fn parse_aaaa_response(id: u16, name: &str, msg: &[u8]) -> Result<AaaaAnswer, DnsError> {
    let Answers {
        current,
        records: answers,
        mut ttl,
    } = parse_answers(id, name, RecordType::AAAA, msg)?;
    let mut addrs = Vec::new();
    for record in &answers {
        if record.rtype != TYPE_AAAA || record.class != CLASS_IN || record.owner != current {
            continue;
        }
        let octets: [u8; 16] = msg[record.rdata.clone()]
            .try_into()
            .map_err(|_| DnsError::BadRdata)?;
        let addr = Ipv6Addr::from(octets);
        if addrs.len() < MAX_ADDRS && !addrs.contains(&addr) {
            addrs.push(addr);
        }
        ttl = ttl.min(record.ttl());
    }
    if addrs.is_empty() {
        return Err(DnsError::NoAnswer);
    }
    Ok(AaaaAnswer { addrs, ttl })
}

// ---------------------------------------------------------------------------
// Resolver
// ---------------------------------------------------------------------------

/// Servers kept from [`Resolver::set_servers`]; RDNSS/option 23 lists are
/// short, a hostile one must not grow the state.
pub const MAX_SERVERS: usize = 8;
/// Events kept until [`Resolver::drain_events`]; the oldest are dropped.
const MAX_EVENTS: usize = 32;
/// Floor of the retransmission timeout, so a zero `retry_initial` cannot
/// turn `poll` into a busy loop.
const MIN_RETRY: Duration = Duration::from_millis(100);
/// Floor of an answer's lifetime, so TTL 0 with `min_ttl` 0 cannot make the
/// resolver re-query back to back.
const MIN_LIFETIME: Duration = Duration::from_secs(1);
/// First ephemeral source port (RFC 6335 dynamic range 49152..=65535).
const EPHEMERAL_PORT_FIRST: u16 = 49152;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverConfig {
    /// The name to resolve, e.g. the DS-Lite AFTR FQDN.
    pub name: String,
    /// Lower bound on how long an answer is used before re-resolving.
    pub min_ttl: Duration,
    /// Upper bound on how long an answer is used before re-resolving.
    pub max_ttl: Duration,
    /// Timeout of the first query of a lookup; doubles per retry.
    pub retry_initial: Duration,
    /// Cap of the retry timeout.
    pub retry_max: Duration,
}

impl ResolverConfig {
    /// `name` with the defaults: TTL clamped to 30 s..1 day, retries
    /// backing off from 1 s to 60 s.
    pub fn new(name: impl Into<String>) -> Self {
        ResolverConfig {
            name: name.into(),
            min_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(86_400),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// A datagram to send from `[::]:src_port` to `[server]:53`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub server: Ipv6Addr,
    pub src_port: u16,
    pub payload: Vec<u8>,
}

/// The answer in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The address to use: the first AAAA of the first answer, then kept
    /// across refreshes for as long as later answers still contain it.
    pub addr: Ipv6Addr,
    /// Every address of the latest answer, in answer order.
    pub all: Vec<Ipv6Addr>,
    /// TTL of the latest answer as received, in seconds.
    pub ttl: u32,
    /// When the answer is re-resolved (the clamped TTL after
    /// `resolved_at`). It stays in use past this point until a different
    /// answer arrives.
    pub expires: Instant,
    /// The server that gave the latest answer.
    pub server: Ipv6Addr,
    pub resolved_at: Instant,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The first address, or a different one than before.
    Resolved(Ipv6Addr),
    /// A lookup round failed (once per round); the reason is log-worthy.
    Failed(String),
}

named_counters! {
    /// Monotonic event counters. Every datagram passed to
    /// [`Resolver::handle`] increments exactly one of `rx_answer`, the
    /// `drop_*` counters, or a failure counter (`nxdomain`, `servfail`,
    /// `refused`, `rcode_other`, `nodata`, `truncated`, `bad_answer`).
    pub struct Counters {
        /// Queries sent (first tries and retransmissions).
        tx_query => "tx-query",
        /// Usable answers accepted.
        rx_answer => "rx-answer",
        /// Answers that changed the address in use (the first one included).
        address_changed => "address-changed",
        /// Datagrams arriving while no query is outstanding.
        drop_unsolicited => "drop-unsolicited",
        /// Datagrams not from port 53 of the server the query went to.
        drop_unexpected_source => "drop-unexpected-source",
        /// Datagrams not sent to the outstanding query's source port.
        drop_wrong_port => "drop-wrong-port",
        /// Replies with another transaction id (older queries included).
        drop_id_mismatch => "drop-id-mismatch",
        /// Replies not echoing our question (possible spoofing).
        drop_question_mismatch => "drop-question-mismatch",
        /// Replies that do not parse; the query stays outstanding.
        drop_malformed => "drop-malformed",
        /// NXDOMAIN replies.
        nxdomain => "nxdomain",
        /// SERVFAIL replies.
        servfail => "servfail",
        /// REFUSED replies.
        refused => "refused",
        /// Replies with any other non-zero response code.
        rcode_other => "rcode-other",
        /// NOERROR replies without an AAAA record for the name.
        nodata => "nodata",
        /// Replies with the TC flag (no TCP fallback: an AAAA answer fits).
        truncated => "truncated",
        /// Well-formed replies that cannot be used (CNAME chain too long).
        bad_answer => "bad-answer",
        /// Queries that got no usable reply before their timeout.
        timeout => "timeout",
        /// Lookup rounds reported as failed (one `Event::Failed` each).
        failed_rounds => "failed-rounds",
        /// Lookups restarted because the server list changed or a refresh was forced.
        restarts => "restarts",
        /// Server addresses refused by `set_servers` (unspecified, multicast,
        /// duplicates, beyond `MAX_SERVERS`).
        servers_ignored => "servers-ignored",
    }
}

/// The query in flight.
#[derive(Clone, Debug)]
struct Outstanding {
    id: u16,
    src_port: u16,
    server: Ipv6Addr,
    deadline: Instant,
    /// A reply from the right source that had to be ignored, reported if
    /// the query then times out.
    ignored: Option<DnsError>,
}

/// One lookup: queries with exponential backoff until an answer arrives.
#[derive(Clone, Debug)]
struct Round {
    outstanding: Option<Outstanding>,
    /// When the next query goes out if none is in flight; `None` means at
    /// the next poll.
    next_send: Option<Instant>,
    /// Timeout of the next query.
    timeout: Duration,
    failed_attempts: u32,
    reported: bool,
}

impl Round {
    fn new(timeout: Duration, next_send: Option<Instant>) -> Self {
        Round {
            outstanding: None,
            next_send,
            timeout,
            failed_attempts: 0,
            reported: false,
        }
    }
}

#[derive(Clone, Debug)]
enum State {
    /// Holding a fresh answer; re-resolve at `refresh_at`.
    Idle {
        refresh_at: Instant,
    },
    Lookup(Round),
    /// The configured name is invalid: nothing to ask.
    Disabled,
}

/// The resolver of one AAAA name; see the module documentation.
///
/// Drive it by calling [`Resolver::poll`] after every input
/// ([`Resolver::handle`], [`Resolver::set_servers`],
/// [`Resolver::force_refresh`]) and whenever the returned deadline passes.
#[derive(Clone, Debug)]
pub struct Resolver {
    cfg: ResolverConfig,
    rng: OsRandom,
    servers: Vec<Ipv6Addr>,
    /// Index into `servers` of the next server to ask.
    next_server: usize,
    state: State,
    answer: Option<Resolved>,
    events: Vec<Event>,
    counters: Counters,
    last_id: Option<u16>,
}

impl Resolver {
    /// Transaction ids and source ports come from the kernel's CSPRNG.
    pub fn new(cfg: ResolverConfig) -> Self {
        let mut cfg = cfg;
        // Keep the bounds ordered so the clamps below cannot panic.
        cfg.retry_initial = cfg.retry_initial.max(MIN_RETRY);
        cfg.retry_max = cfg.retry_max.max(cfg.retry_initial);
        cfg.max_ttl = cfg.max_ttl.max(cfg.min_ttl);
        let name_check = encode_name(&cfg.name, &mut Vec::new());
        let state = match name_check {
            Ok(()) => State::Lookup(Round::new(cfg.retry_initial, None)),
            Err(_) => State::Disabled,
        };
        let mut resolver = Resolver {
            cfg,
            rng: OsRandom::new(),
            servers: Vec::new(),
            next_server: 0,
            state,
            answer: None,
            events: Vec::new(),
            counters: Counters::default(),
            last_id: None,
        };
        if let Err(e) = name_check {
            let reason = format!("cannot resolve {:?}: {e}", resolver.cfg.name);
            log::warn!("dns: {reason}");
            resolver.push_event(Event::Failed(reason));
        }
        resolver
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// The servers in use, after filtering.
    pub fn servers(&self) -> &[Ipv6Addr] {
        &self.servers
    }

    /// Replaces the server list (RDNSS / DHCPv6 option 23). Unspecified and
    /// multicast addresses and duplicates are dropped; at most
    /// [`MAX_SERVERS`] are kept. A different list restarts a lookup in
    /// progress at the next poll with a fresh backoff; an answer being held
    /// is kept until its refresh. An empty list pauses lookups.
    pub fn set_servers(&mut self, now: Instant, servers: &[Ipv6Addr]) {
        let mut list = Vec::with_capacity(servers.len().min(MAX_SERVERS));
        for &server in servers {
            if server.is_unspecified()
                || server.is_multicast()
                || list.contains(&server)
                || list.len() == MAX_SERVERS
            {
                self.counters.servers_ignored += 1;
                continue;
            }
            list.push(server);
        }
        if list == self.servers {
            return;
        }
        log::info!("dns: servers for {} now {:?}", self.cfg.name, list);
        let was_asking = !self.servers.is_empty();
        self.servers = list;
        self.next_server = 0;
        if let State::Lookup(_) = self.state {
            // Resuming from a pause is not a restart, but it also gets a
            // fresh backoff.
            self.counters.restarts += u64::from(was_asking);
            self.state = State::Lookup(Round::new(self.cfg.retry_initial, Some(now)));
        }
    }

    /// Starts a lookup now, even if the answer held is still fresh. The
    /// previous answer stays in use.
    pub fn force_refresh(&mut self, now: Instant) {
        if !matches!(self.state, State::Disabled) {
            self.restart(now);
        }
    }

    fn restart(&mut self, now: Instant) {
        self.counters.restarts += 1;
        self.state = State::Lookup(Round::new(self.cfg.retry_initial, Some(now)));
    }

    /// Queries due at `now` go to `out`; returns when to poll next (`None`:
    /// nothing to do until an input arrives).
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Query>) -> Option<Instant> {
        if let State::Idle { refresh_at } = self.state {
            if now < refresh_at {
                return Some(refresh_at);
            }
            log::debug!("dns: re-resolving {}", self.cfg.name);
            self.state = State::Lookup(Round::new(self.cfg.retry_initial, None));
        }
        if self.servers.is_empty() {
            return None;
        }
        let timed_out = match &mut self.state {
            State::Lookup(round) => match &round.outstanding {
                Some(query) if now < query.deadline => return Some(query.deadline),
                Some(_) => round.outstanding.take(),
                None => None,
            },
            _ => return None,
        };
        if let Some(query) = timed_out {
            self.counters.timeout += 1;
            let mut reason = format!("no reply from {} (timeout)", query.server);
            if let Some(e) = query.ignored {
                reason.push_str(&format!("; ignored a reply: {e}"));
            }
            self.attempt_failed(reason);
        }

        let State::Lookup(round) = &self.state else {
            return None;
        };
        if let Some(at) = round.next_send {
            if now < at {
                return Some(at);
            }
        }
        let timeout = round.timeout;
        let (id, query) = self.new_query();
        let deadline = later(now, timeout);
        let retry_max = self.cfg.retry_max;
        if let State::Lookup(round) = &mut self.state {
            round.timeout = timeout.saturating_mul(2).min(retry_max);
            round.next_send = None;
            round.outstanding = Some(Outstanding {
                id,
                src_port: query.src_port,
                server: query.server,
                deadline,
                ignored: None,
            });
        }
        self.counters.tx_query += 1;
        out.push(query);
        Some(deadline)
    }

    /// A query to the next server in turn with a fresh id and source port.
    fn new_query(&mut self) -> (u16, Query) {
        let server = self.servers[self.next_server % self.servers.len()];
        self.next_server = (self.next_server + 1) % self.servers.len();
        // A new id every time, so a late reply to the previous query can
        // never be taken for this one.
        let id = loop {
            let id = self.random() as u16;
            if Some(id) != self.last_id {
                break id;
            }
        };
        self.last_id = Some(id);
        let src_port = EPHEMERAL_PORT_FIRST + (self.random() % 16384) as u16;
        // The name was validated in `new`, so this cannot fail.
        let payload = build_query(id, &self.cfg.name, TYPE_AAAA).unwrap_or_default();
        (
            id,
            Query {
                server,
                src_port,
                payload,
            },
        )
    }

    /// Feeds a UDP datagram received `from`:`from_port` on local `dst_port`.
    /// Returns true if it was the reply to the outstanding query (an answer
    /// or a DNS error that ends the attempt); anything else is counted and
    /// ignored, and the query stays outstanding.
    pub fn handle(
        &mut self,
        now: Instant,
        from: Ipv6Addr,
        from_port: u16,
        dst_port: u16,
        msg: &[u8],
    ) -> bool {
        let State::Lookup(Round {
            outstanding: Some(query),
            ..
        }) = &self.state
        else {
            self.counters.drop_unsolicited += 1;
            return false;
        };
        if from != query.server || from_port != DNS_PORT {
            self.counters.drop_unexpected_source += 1;
            return false;
        }
        if dst_port != query.src_port {
            self.counters.drop_wrong_port += 1;
            return false;
        }
        let (id, server, deadline) = (query.id, query.server, query.deadline);
        match Packet::new_checked(msg) {
            Err(_) => {
                self.counters.drop_malformed += 1;
                return false;
            }
            Ok(header) if header.id() != id => {
                self.counters.drop_id_mismatch += 1;
                return false;
            }
            Ok(_) => {}
        }

        let error = match parse_aaaa_response(id, &self.cfg.name, msg) {
            Ok(answer) => {
                self.accept(now, server, answer);
                return true;
            }
            Err(e) => e,
        };
        let counter = match error {
            DnsError::Rcode(RCODE_NXDOMAIN) => &mut self.counters.nxdomain,
            DnsError::Rcode(RCODE_SERVFAIL) => &mut self.counters.servfail,
            DnsError::Rcode(RCODE_REFUSED) => &mut self.counters.refused,
            DnsError::Rcode(_) => &mut self.counters.rcode_other,
            DnsError::NoAnswer => &mut self.counters.nodata,
            DnsError::Tc => &mut self.counters.truncated,
            DnsError::CnameChainTooLong => &mut self.counters.bad_answer,
            DnsError::QuestionMismatch | DnsError::IdMismatch => {
                self.counters.drop_question_mismatch += 1;
                self.note_ignored(error);
                return false;
            }
            DnsError::Truncated
            | DnsError::NotAResponse
            | DnsError::Opcode(_)
            | DnsError::BadPointer
            | DnsError::LoopingPointers
            | DnsError::TooLong
            | DnsError::BadLabel
            | DnsError::BadRdata
            | DnsError::Name(_) => {
                // Possibly forged by someone who guessed id and port: keep
                // waiting for the real reply.
                self.counters.drop_malformed += 1;
                self.note_ignored(error);
                return false;
            }
        };
        *counter += 1;

        let reason = match error {
            DnsError::Rcode(RCODE_NXDOMAIN) => format!("NXDOMAIN from {server}"),
            DnsError::Rcode(RCODE_SERVFAIL) => format!("SERVFAIL from {server}"),
            DnsError::Rcode(RCODE_REFUSED) => format!("REFUSED from {server}"),
            DnsError::NoAnswer => format!("no AAAA record (NODATA) from {server}"),
            e => format!("{e} from {server}"),
        };
        if let State::Lookup(round) = &mut self.state {
            // Retry when the timeout would have fired: a failing server is
            // not asked faster than a silent one.
            round.outstanding = None;
            round.next_send = Some(deadline);
        }
        self.attempt_failed(reason);
        true
    }

    fn note_ignored(&mut self, error: DnsError) {
        if let State::Lookup(Round {
            outstanding: Some(query),
            ..
        }) = &mut self.state
        {
            query.ignored = Some(error);
        }
    }

    fn accept(&mut self, now: Instant, server: Ipv6Addr, answer: AaaaAnswer) {
        self.counters.rx_answer += 1;
        let lifetime = Duration::from_secs(answer.ttl.into())
            .clamp(self.cfg.min_ttl, self.cfg.max_ttl)
            .max(MIN_LIFETIME);
        let expires = later(now, lifetime);
        // Stay on the address in use while the name still maps to it:
        // moving a softwire to another AFTR drops every session on it.
        let addr = match &self.answer {
            Some(prev) if answer.addrs.contains(&prev.addr) => prev.addr,
            _ => answer.addrs[0],
        };
        let previous = self.answer.as_ref().map(|prev| prev.addr);
        if previous != Some(addr) {
            self.counters.address_changed += 1;
            match previous {
                Some(old) => log::info!("dns: {} now {addr} (was {old})", self.cfg.name),
                None => log::info!("dns: {} is {addr}", self.cfg.name),
            }
            self.push_event(Event::Resolved(addr));
        }
        if let State::Lookup(Round { reported: true, .. }) = self.state {
            log::info!("dns: {} resolved again via {server}", self.cfg.name);
        }
        // The next refresh asks the server that just answered first.
        if let Some(index) = self.servers.iter().position(|s| *s == server) {
            self.next_server = index;
        }
        self.answer = Some(Resolved {
            addr,
            all: answer.addrs,
            ttl: answer.ttl,
            expires,
            server,
            resolved_at: now,
        });
        self.state = State::Idle {
            refresh_at: expires,
        };
    }

    /// Counts a failed attempt; the round is reported once every server
    /// has had a try.
    fn attempt_failed(&mut self, reason: String) {
        let servers = self.servers.len().max(1);
        let State::Lookup(round) = &mut self.state else {
            return;
        };
        round.failed_attempts += 1;
        if round.reported || (round.failed_attempts as usize) < servers {
            log::debug!("dns: {} attempt failed: {reason}", self.cfg.name);
            return;
        }
        round.reported = true;
        let attempts = round.failed_attempts;
        self.counters.failed_rounds += 1;
        let keeping = match &self.answer {
            Some(prev) => format!("keeping {}", prev.addr),
            None => "no address yet".to_string(),
        };
        let message = format!(
            "AAAA lookup of {} failed ({attempts} attempts, last: {reason}); {keeping}; retrying",
            self.cfg.name
        );
        log::warn!("dns: {message}");
        self.push_event(Event::Failed(message));
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() == MAX_EVENTS {
            self.events.remove(0);
        }
        self.events.push(event);
    }

    /// The answer in use, possibly past its `expires` while re-resolving.
    pub fn answer(&self) -> Option<&Resolved> {
        self.answer.as_ref()
    }

    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

/// `now + d`, saturating far in the future instead of overflowing.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}
