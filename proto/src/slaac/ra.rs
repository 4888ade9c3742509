//! Wire format of Router Solicitations and Router Advertisements, in the
//! style of smoltcp's `wire` module: a zero-copy [`RouterAdvert`] view with
//! a validating constructor, and an owned [`RaRepr`] with `parse`/`emit`.
//!
//! smoltcp's own `NdiscRepr::RouterAdvert` keeps a single prefix option
//! and drops RDNSS/DNSSL, so the WAN side needs this one. Covered:
//! RFC 4861 4.1/4.2 (RS/RA), 4.6.1 (link-layer address), 4.6.2 (prefix
//! information), 4.6.4 (MTU) and RFC 8106 5.1/5.2 (RDNSS, DNSSL).
//!
//! Every byte is untrusted. [`RouterAdvert::new_checked`] enforces what
//! RFC 4861 6.1.2 makes fatal for the whole message (type, code, length,
//! zero-length or overrunning options). Problems local to one option only
//! skip that option ([`RaRepr::parse`] reports them as [`OptionError`]s),
//! as RFC 8106 5.3 asks for RDNSS/DNSSL. Unknown options are ignored as
//! RFC 4861 4.6 requires. Output sizes are bounded ([`MAX_PREFIXES`],
//! [`MAX_RDNSS_SERVERS`], [`MAX_DOMAINS`]).
//!
//! The ICMPv6 checksum is neither verified nor computed here: it covers the
//! IPv6 pseudo-header, which the caller owns.

use std::fmt;
use std::net::Ipv6Addr;

/// ICMPv6 type of a Router Solicitation.
pub const ICMPV6_ROUTER_SOLICIT: u8 = 133;
/// ICMPv6 type of a Router Advertisement.
pub const ICMPV6_ROUTER_ADVERT: u8 = 134;

/// Fixed part of an RA: type, code, checksum, hop limit, flags, router
/// lifetime, reachable time, retrans timer.
pub const RA_HEADER_LEN: usize = 16;
/// Fixed part of an RS: type, code, checksum, reserved.
pub const RS_HEADER_LEN: usize = 8;

/// Prefix information options kept per RA; more are reported and dropped.
pub const MAX_PREFIXES: usize = 16;
/// RDNSS server addresses kept per RA, over all RDNSS options.
pub const MAX_RDNSS_SERVERS: usize = 8;
/// DNSSL domains kept per RA, over all DNSSL options.
pub const MAX_DOMAINS: usize = 8;

/// Lifetime value meaning "forever" (RFC 4861 4.6.2, RFC 8106 5.1).
pub const INFINITE_LIFETIME: u32 = 0xffff_ffff;

/// Neighbor Discovery option types (RFC 4861 4.6, RFC 8106 5).
pub mod option_type {
    pub const SOURCE_LLADDR: u8 = 1;
    pub const PREFIX_INFO: u8 = 3;
    pub const MTU: u8 = 5;
    pub const RDNSS: u8 = 25;
    pub const DNSSL: u8 = 31;
}

/// RA flag bits (RFC 4861 4.2).
const FLAG_MANAGED: u8 = 0x80;
const FLAG_OTHER: u8 = 0x40;
/// Prefix information flag bits (RFC 4861 4.6.2).
const PREFIX_FLAG_ON_LINK: u8 = 0x80;
const PREFIX_FLAG_AUTONOMOUS: u8 = 0x40;

/// Option lengths count 8-octet units.
const OPTION_UNIT: usize = 8;
/// RFC 1035 2.3.4: labels of at most 63 octets, names of at most 255.
const MAX_LABEL_LEN: usize = 63;
const MAX_NAME_WIRE_LEN: usize = 255;

/// Why a whole message was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the 16-octet RA header.
    Truncated,
    /// ICMPv6 type is not 134.
    NotRouterAdvert(u8),
    /// ICMPv6 code is not 0.
    BadCode(u8),
    /// An option with length 0 (RFC 4861 6.1.2 says discard the packet).
    ZeroLengthOption { offset: usize },
    /// An option extends past the end of the message.
    OptionOverrun { offset: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => write!(f, "shorter than the {RA_HEADER_LEN}-octet RA header"),
            Error::NotRouterAdvert(t) => write!(f, "ICMPv6 type {t} is not a router advertisement"),
            Error::BadCode(c) => write!(f, "ICMPv6 code {c} is not 0"),
            Error::ZeroLengthOption { offset } => {
                write!(f, "zero-length option at offset {offset}")
            }
            Error::OptionOverrun { offset } => {
                write!(
                    f,
                    "option at offset {offset} runs past the end of the message"
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// Why one option was skipped (or cut short) while the rest of the RA was
/// still accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionError {
    /// Source link-layer address option whose length is not 1 (not an
    /// Ethernet address).
    SourceLladdrBadLength,
    /// Prefix information option whose length is not 4.
    PrefixBadLength,
    /// More than [`MAX_PREFIXES`] prefix options; the rest were dropped.
    TooManyPrefixes,
    /// MTU option whose length is not 1.
    MtuBadLength,
    /// RDNSS option with an even length or a length below 3.
    RdnssBadLength,
    /// More than [`MAX_RDNSS_SERVERS`] servers; the rest were dropped.
    TooManyRdnssServers,
    /// DNSSL option shorter than 2 units.
    DnsslBadLength,
    /// DNSSL option with an undecodable or unacceptable domain name
    /// (compression pointer, overrun, missing terminator, bad character,
    /// over-long name, no name at all, garbage after the padding).
    DnsslBadName,
    /// More than [`MAX_DOMAINS`] domains; the rest were dropped.
    TooManyDomains,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            OptionError::SourceLladdrBadLength => {
                "source link-layer address option length is not 1"
            }
            OptionError::PrefixBadLength => "prefix information option length is not 4",
            OptionError::TooManyPrefixes => "too many prefix information options",
            OptionError::MtuBadLength => "MTU option length is not 1",
            OptionError::RdnssBadLength => "RDNSS option length is even or below 3",
            OptionError::TooManyRdnssServers => "too many RDNSS servers",
            OptionError::DnsslBadLength => "DNSSL option length is below 2",
            OptionError::DnsslBadName => "DNSSL option has a malformed domain name",
            OptionError::TooManyDomains => "too many DNSSL domains",
        };
        f.write_str(text)
    }
}

/// Why [`RaRepr::emit`] could not encode a representation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmitError {
    /// A domain that is not a valid dotted name of LDH/underscore labels.
    InvalidDomain(String),
    /// An RDNSS or DNSSL option longer than 255 units.
    OptionTooLong,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::InvalidDomain(d) => write!(f, "cannot encode domain {d:?}"),
            EmitError::OptionTooLong => f.write_str("option longer than 255 units"),
        }
    }
}

impl std::error::Error for EmitError {}

fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn read_ipv6(b: &[u8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&b[..16]);
    Ipv6Addr::from(octets)
}

/// Zero-copy view of an ICMPv6 Router Advertisement, starting at the
/// ICMPv6 type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouterAdvert<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RouterAdvert<T> {
    /// Wraps a buffer without any check; accessors of the fixed header may
    /// panic on a buffer shorter than [`RA_HEADER_LEN`], the option
    /// iterator never does.
    pub const fn new_unchecked(buffer: T) -> Self {
        RouterAdvert { buffer }
    }

    /// Wraps a buffer after [`Self::check`].
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// RFC 4861 6.1.2 checks that reject the whole message: type 134,
    /// code 0, at least 16 octets, every option non-empty and inside the
    /// buffer.
    pub fn check(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < RA_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] != ICMPV6_ROUTER_ADVERT {
            return Err(Error::NotRouterAdvert(b[0]));
        }
        if b[1] != 0 {
            return Err(Error::BadCode(b[1]));
        }
        let mut offset = RA_HEADER_LEN;
        while offset < b.len() {
            if b.len() - offset < 2 {
                return Err(Error::OptionOverrun { offset });
            }
            let len = usize::from(b[offset + 1]) * OPTION_UNIT;
            if len == 0 {
                return Err(Error::ZeroLengthOption { offset });
            }
            if len > b.len() - offset {
                return Err(Error::OptionOverrun { offset });
            }
            offset += len;
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 2)
    }

    pub fn cur_hop_limit(&self) -> u8 {
        self.buffer.as_ref()[4]
    }

    /// The whole flags octet (M, O and the bits of later RFCs).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[5]
    }

    /// M: addresses are available via DHCPv6.
    pub fn managed(&self) -> bool {
        self.flags() & FLAG_MANAGED != 0
    }

    /// O: other configuration is available via DHCPv6.
    pub fn other(&self) -> bool {
        self.flags() & FLAG_OTHER != 0
    }

    /// Seconds this router may serve as a default router; 0 = not one.
    pub fn router_lifetime(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 6)
    }

    /// Milliseconds; 0 = unspecified.
    pub fn reachable_time(&self) -> u32 {
        read_u32(self.buffer.as_ref(), 8)
    }

    /// Milliseconds; 0 = unspecified.
    pub fn retrans_timer(&self) -> u32 {
        read_u32(self.buffer.as_ref(), 12)
    }

    /// Iterates over the options; stops silently at the first malformed one
    /// (which [`Self::check`] would have refused).
    pub fn options(&self) -> NdOptions<'_> {
        let b = self.buffer.as_ref();
        NdOptions {
            rest: b.get(RA_HEADER_LEN..).unwrap_or(&[]),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RouterAdvert<T> {
    pub fn set_msg_type(&mut self, value: u8) {
        self.buffer.as_mut()[0] = value;
    }

    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[1] = value;
    }

    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[2..4].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_cur_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[4] = value;
    }

    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[5] = value;
    }

    pub fn set_router_lifetime(&mut self, value: u16) {
        self.buffer.as_mut()[6..8].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_reachable_time(&mut self, value: u32) {
        self.buffer.as_mut()[8..12].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_retrans_timer(&mut self, value: u32) {
        self.buffer.as_mut()[12..16].copy_from_slice(&value.to_be_bytes());
    }
}

/// One Neighbor Discovery option: its type and the octets after the type
/// and length octets (`body.len() + 2` is a multiple of 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdOption<'a> {
    pub kind: u8,
    pub body: &'a [u8],
}

/// Iterator over the options of a message (see [`RouterAdvert::options`]).
#[derive(Clone, Debug)]
pub struct NdOptions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for NdOptions<'a> {
    type Item = NdOption<'a>;

    fn next(&mut self) -> Option<NdOption<'a>> {
        if self.rest.len() < 2 {
            return None;
        }
        let len = usize::from(self.rest[1]) * OPTION_UNIT;
        if len == 0 || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let (option, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(NdOption {
            kind: option[0],
            body: &option[2..],
        })
    }
}

/// Prefix information option (RFC 4861 4.6.2). The prefix is kept as sent:
/// bits past `prefix_len` are the receiver's to ignore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixInfo {
    pub prefix: Ipv6Addr,
    pub prefix_len: u8,
    /// L: the prefix is on-link.
    pub on_link: bool,
    /// A: the prefix may be used for SLAAC.
    pub autonomous: bool,
    /// Seconds; [`INFINITE_LIFETIME`] = forever.
    pub valid_lifetime: u32,
    /// Seconds; [`INFINITE_LIFETIME`] = forever.
    pub preferred_lifetime: u32,
}

/// Recursive DNS Server option (RFC 8106 5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rdnss {
    /// Seconds; 0 = stop using these, [`INFINITE_LIFETIME`] = forever.
    pub lifetime: u32,
    pub servers: Vec<Ipv6Addr>,
}

/// DNS Search List option (RFC 8106 5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dnssl {
    /// Seconds; 0 = stop using these, [`INFINITE_LIFETIME`] = forever.
    pub lifetime: u32,
    /// Dotted names without the trailing dot, e.g. `example.com`.
    pub domains: Vec<String>,
}

/// Owned, high-level form of a Router Advertisement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaRepr {
    pub cur_hop_limit: u8,
    /// M flag.
    pub managed: bool,
    /// O flag.
    pub other: bool,
    /// Seconds; 0 = not a default router.
    pub router_lifetime: u16,
    /// Milliseconds.
    pub reachable_time: u32,
    /// Milliseconds.
    pub retrans_timer: u32,
    /// From the first well-formed source link-layer address option.
    pub source_lladdr: Option<[u8; 6]>,
    /// From the first well-formed MTU option, not range-checked here.
    pub mtu: Option<u32>,
    pub prefixes: Vec<PrefixInfo>,
    pub rdnss: Vec<Rdnss>,
    pub dnssl: Vec<Dnssl>,
}

impl RaRepr {
    /// Parses a checked view. Options that are malformed on their own are
    /// skipped and reported, in message order, in the returned list; the
    /// list holds at most one entry per option.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &RouterAdvert<T>,
    ) -> Result<(RaRepr, Vec<OptionError>), Error> {
        packet.check()?;
        let mut repr = RaRepr {
            cur_hop_limit: packet.cur_hop_limit(),
            managed: packet.managed(),
            other: packet.other(),
            router_lifetime: packet.router_lifetime(),
            reachable_time: packet.reachable_time(),
            retrans_timer: packet.retrans_timer(),
            ..RaRepr::default()
        };
        let mut skipped = Vec::new();
        let mut server_count = 0usize;
        let mut domain_count = 0usize;
        for option in packet.options() {
            let body = option.body;
            match option.kind {
                option_type::SOURCE_LLADDR => {
                    if body.len() != 6 {
                        skipped.push(OptionError::SourceLladdrBadLength);
                    } else if repr.source_lladdr.is_none() {
                        let mut mac = [0u8; 6];
                        mac.copy_from_slice(body);
                        repr.source_lladdr = Some(mac);
                    }
                }
                option_type::MTU => {
                    if body.len() != 6 {
                        skipped.push(OptionError::MtuBadLength);
                    } else if repr.mtu.is_none() {
                        repr.mtu = Some(read_u32(body, 2));
                    }
                }
                option_type::PREFIX_INFO => {
                    if body.len() != 30 {
                        skipped.push(OptionError::PrefixBadLength);
                    } else if repr.prefixes.len() >= MAX_PREFIXES {
                        skipped.push(OptionError::TooManyPrefixes);
                    } else {
                        repr.prefixes.push(parse_prefix_info(body));
                    }
                }
                option_type::RDNSS => match parse_rdnss(body, MAX_RDNSS_SERVERS - server_count) {
                    Ok((rdnss, truncated)) => {
                        server_count += rdnss.servers.len();
                        if truncated {
                            skipped.push(OptionError::TooManyRdnssServers);
                        }
                        if !rdnss.servers.is_empty() {
                            repr.rdnss.push(rdnss);
                        }
                    }
                    Err(e) => skipped.push(e),
                },
                option_type::DNSSL => match parse_dnssl(body, MAX_DOMAINS - domain_count) {
                    Ok((dnssl, truncated)) => {
                        domain_count += dnssl.domains.len();
                        if truncated {
                            skipped.push(OptionError::TooManyDomains);
                        }
                        if !dnssl.domains.is_empty() {
                            repr.dnssl.push(dnssl);
                        }
                    }
                    Err(e) => skipped.push(e),
                },
                // RFC 4861 4.6: unrecognized options are silently ignored.
                _ => {}
            }
        }
        Ok((repr, skipped))
    }

    /// Encodes the message (checksum left zero), options in the order
    /// SLLA, MTU, prefixes, RDNSS, DNSSL. Empty RDNSS/DNSSL lists are
    /// not emitted.
    pub fn emit(&self) -> Result<Vec<u8>, EmitError> {
        let mut out = Vec::with_capacity(RA_HEADER_LEN + 64 + 32 * self.prefixes.len());
        out.extend_from_slice(&[ICMPV6_ROUTER_ADVERT, 0, 0, 0, self.cur_hop_limit]);
        let mut flags = 0u8;
        if self.managed {
            flags |= FLAG_MANAGED;
        }
        if self.other {
            flags |= FLAG_OTHER;
        }
        out.push(flags);
        out.extend_from_slice(&self.router_lifetime.to_be_bytes());
        out.extend_from_slice(&self.reachable_time.to_be_bytes());
        out.extend_from_slice(&self.retrans_timer.to_be_bytes());
        if let Some(mac) = self.source_lladdr {
            out.extend_from_slice(&[option_type::SOURCE_LLADDR, 1]);
            out.extend_from_slice(&mac);
        }
        if let Some(mtu) = self.mtu {
            out.extend_from_slice(&[option_type::MTU, 1, 0, 0]);
            out.extend_from_slice(&mtu.to_be_bytes());
        }
        for p in &self.prefixes {
            let mut flags = 0u8;
            if p.on_link {
                flags |= PREFIX_FLAG_ON_LINK;
            }
            if p.autonomous {
                flags |= PREFIX_FLAG_AUTONOMOUS;
            }
            out.extend_from_slice(&[option_type::PREFIX_INFO, 4, p.prefix_len, flags]);
            out.extend_from_slice(&p.valid_lifetime.to_be_bytes());
            out.extend_from_slice(&p.preferred_lifetime.to_be_bytes());
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&p.prefix.octets());
        }
        for r in self.rdnss.iter().filter(|r| !r.servers.is_empty()) {
            let units = 1 + 2 * r.servers.len();
            let units = u8::try_from(units).map_err(|_| EmitError::OptionTooLong)?;
            out.extend_from_slice(&[option_type::RDNSS, units, 0, 0]);
            out.extend_from_slice(&r.lifetime.to_be_bytes());
            for s in &r.servers {
                out.extend_from_slice(&s.octets());
            }
        }
        for d in self.dnssl.iter().filter(|d| !d.domains.is_empty()) {
            let mut names = Vec::new();
            for domain in &d.domains {
                encode_name(domain, &mut names)?;
            }
            let len = (8 + names.len()).div_ceil(OPTION_UNIT) * OPTION_UNIT;
            let units = u8::try_from(len / OPTION_UNIT).map_err(|_| EmitError::OptionTooLong)?;
            out.extend_from_slice(&[option_type::DNSSL, units, 0, 0]);
            out.extend_from_slice(&d.lifetime.to_be_bytes());
            out.extend_from_slice(&names);
            out.resize(out.len() + len - 8 - names.len(), 0);
        }
        Ok(out)
    }
}

fn parse_prefix_info(body: &[u8]) -> PrefixInfo {
    // body: prefix_len, flags, valid(4), preferred(4), reserved(4), prefix(16)
    PrefixInfo {
        prefix_len: body[0],
        on_link: body[1] & PREFIX_FLAG_ON_LINK != 0,
        autonomous: body[1] & PREFIX_FLAG_AUTONOMOUS != 0,
        valid_lifetime: read_u32(body, 2),
        preferred_lifetime: read_u32(body, 6),
        prefix: read_ipv6(&body[14..30]),
    }
}

/// Returns the option and whether servers past `room` were dropped.
fn parse_rdnss(body: &[u8], room: usize) -> Result<(Rdnss, bool), OptionError> {
    // body: reserved(2), lifetime(4), addresses(16 each). Length in units
    // is 1 + 2n, so the body is 6 + 16n octets with n >= 1.
    let units = (body.len() + 2) / OPTION_UNIT;
    if units < 3 || units & 1 == 0 {
        return Err(OptionError::RdnssBadLength);
    }
    let lifetime = read_u32(body, 2);
    let addresses = body[6..].chunks_exact(16);
    let total = addresses.len();
    let servers: Vec<Ipv6Addr> = addresses.take(room).map(read_ipv6).collect();
    let truncated = servers.len() < total;
    Ok((Rdnss { lifetime, servers }, truncated))
}

/// Returns the option and whether domains past `room` were dropped. Any
/// bad name rejects the whole option (RFC 8106 5.3.1 "silently ignore").
fn parse_dnssl(body: &[u8], room: usize) -> Result<(Dnssl, bool), OptionError> {
    // body: reserved(2), lifetime(4), names, zero padding.
    if body.len() + 2 < 2 * OPTION_UNIT {
        return Err(OptionError::DnsslBadLength);
    }
    let lifetime = read_u32(body, 2);
    let names = &body[6..];
    let mut domains: Vec<String> = Vec::new();
    let mut total = 0usize;
    let mut at = 0usize;
    while at < names.len() {
        if names[at] == 0 {
            // A zero octet where a name would start is padding: everything
            // after it must be padding too.
            if names[at..].iter().any(|&b| b != 0) {
                return Err(OptionError::DnsslBadName);
            }
            break;
        }
        let (name, next) = decode_name(names, at).ok_or(OptionError::DnsslBadName)?;
        total += 1;
        if domains.len() < room {
            domains.push(name);
        }
        at = next;
    }
    if total == 0 {
        return Err(OptionError::DnsslBadName);
    }
    let truncated = domains.len() < total;
    Ok((Dnssl { lifetime, domains }, truncated))
}

/// A label byte that is safe to hand to resolvers and config files:
/// letters, digits, hyphen, underscore.
fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Decodes one uncompressed name (RFC 1035 3.1) starting at `at`, which
/// holds a non-zero length octet. Returns the dotted name and the offset
/// after its terminating zero.
fn decode_name(buf: &[u8], mut at: usize) -> Option<(String, usize)> {
    let start = at;
    let mut name = String::new();
    loop {
        let len = usize::from(*buf.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        // 0x40..=0xff: compression pointers and reserved label types.
        if len > MAX_LABEL_LEN {
            return None;
        }
        let label = buf.get(at + 1..at + 1 + len)?;
        if !label.iter().all(|&b| is_label_byte(b)) {
            return None;
        }
        if !name.is_empty() {
            name.push('.');
        }
        // Only ASCII bytes pass is_label_byte.
        name.extend(label.iter().map(|&b| char::from(b)));
        at += 1 + len;
        if at - start > MAX_NAME_WIRE_LEN {
            return None;
        }
    }
    if at - start > MAX_NAME_WIRE_LEN {
        return None;
    }
    Some((name, at))
}

/// Appends the RFC 1035 3.1 encoding of a dotted name (a trailing dot is
/// allowed).
fn encode_name(domain: &str, out: &mut Vec<u8>) -> Result<(), EmitError> {
    let invalid = || EmitError::InvalidDomain(domain.to_string());
    let trimmed = domain.strip_suffix('.').unwrap_or(domain);
    if trimmed.is_empty() {
        return Err(invalid());
    }
    let start = out.len();
    for label in trimmed.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL_LEN || !label.bytes().all(is_label_byte) {
            out.truncate(start);
            return Err(invalid());
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    if out.len() - start > MAX_NAME_WIRE_LEN {
        out.truncate(start);
        return Err(invalid());
    }
    Ok(())
}

/// A Router Solicitation (RFC 4861 4.1) as ICMPv6 message bytes, checksum
/// zero for the caller to fill, with a source link-layer address option
/// when a source MAC is given (it must be omitted when the IPv6 source is
/// the unspecified address).
pub fn router_solicit(source_lladdr: Option<[u8; 6]>) -> Vec<u8> {
    let mut out = vec![ICMPV6_ROUTER_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
    if let Some(mac) = source_lladdr {
        out.extend_from_slice(&[option_type::SOURCE_LLADDR, 1]);
        out.extend_from_slice(&mac);
    }
    out
}
