//! DHCPv6 wire format for the client: building the messages we send and
//! turning a received UDP payload into a small, bounded [`Received`] view.
//!
//! Encoding and decoding go through `dhcproto::v6`. Its decoder is not safe
//! to feed hostile bytes directly:
//! - `DhcpOptions::decode` stops silently at the first bad option, so a
//!   truncated message decodes "successfully" with options missing (a
//!   NoPrefixAvail status could vanish);
//! - fixed-size options (Preference, Elapsed Time, Rapid Commit, ...) are read
//!   with their natural size whatever the option length says, which desyncs
//!   the option framing;
//! - Status Code, Vendor Class/Opts and Authentication compute `len - N`,
//!   which overflows (a panic in debug builds) on short options;
//! - nested options recurse without a depth limit.
//!
//! So [`sanitize`] walks the TLV framing first and rebuilds the message with
//! only the options this client uses, each checked for its exact length.
//! Anything that does not frame is rejected as malformed; options we do not
//! use are framing-checked and dropped. dhcproto then decodes the rebuilt
//! buffer, inside `catch_unwind` as a last line of defence.

use std::net::Ipv6Addr;

use dhcproto::v6::{
    DhcpOption, IAAddr, IAPrefix, Message, MessageType, OptionCode, Status, IANA, IAPD, ORO,
};
use dhcproto::{Decodable, Decoder, Encodable};

/// Lifetime / T1 / T2 value meaning "forever" (RFC 8415 7.7).
pub(super) const INFINITE: u32 = u32::MAX;

/// Caps on what we keep from a server's message: memory stays bounded
/// whatever it sends.
pub(super) const MAX_DNS_SERVERS: usize = 8;
pub(super) const MAX_DOMAINS: usize = 8;
pub(super) const MAX_PREFIXES_PER_IA: usize = 4;

const OPT_CLIENT_ID: u16 = 1;
const OPT_SERVER_ID: u16 = 2;
const OPT_IA_NA: u16 = 3;
const OPT_IAADDR: u16 = 5;
const OPT_PREFERENCE: u16 = 7;
const OPT_STATUS_CODE: u16 = 13;
const OPT_RAPID_COMMIT: u16 = 14;
const OPT_DNS_SERVERS: u16 = 23;
const OPT_INFORMATION_REFRESH_TIME: u16 = 32;
const OPT_DOMAIN_LIST: u16 = 24;
const OPT_IA_PD: u16 = 25;
const OPT_IAPREFIX: u16 = 26;
const OPT_AFTR_NAME: u16 = 64;
const OPT_SOL_MAX_RT: u16 = 82;
const OPT_INF_MAX_RT: u16 = 83;

/// A DUID is at most 128 octets plus its 2-octet type (RFC 8415 11.1).
const MAX_DUID_LEN: usize = 130;
/// Fixed part of IA_NA / IA_PD (IAID, T1, T2), IAADDR and IAPREFIX.
const IA_HEADER_LEN: usize = 12;
const IAADDR_HEADER_LEN: usize = 24;
const IAPREFIX_HEADER_LEN: usize = 25;

/// Why a payload was refused before interpretation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WireError {
    /// Shorter than the 4-octet header, or an option runs past its container.
    Truncated,
    /// A known option with a length it cannot have.
    BadLength { code: u16, len: usize },
    /// dhcproto refused the (already sanitized) buffer or lost options.
    Decode,
    /// dhcproto panicked; caught, but worth its own counter.
    DecoderPanic,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Truncated => write!(f, "truncated"),
            WireError::BadLength { code, len } => write!(f, "option {code} with length {len}"),
            WireError::Decode => write!(f, "undecodable"),
            WireError::DecoderPanic => write!(f, "decoder panic"),
        }
    }
}

/// One delegated prefix as received, host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PrefixView {
    pub prefix: Ipv6Addr,
    pub len: u8,
    pub preferred: u32,
    pub valid: u32,
}

/// Our IA_PD as received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct IaPdView {
    pub t1: u32,
    pub t2: u32,
    pub status: Option<Status>,
    /// Prefixes with a valid lifetime > 0 (at most [`MAX_PREFIXES_PER_IA`]).
    pub usable: Vec<PrefixView>,
    /// Prefixes the server returned with valid lifetime 0: withdrawals.
    pub withdrawn: Vec<PrefixView>,
    /// IAPREFIX options discarded: preferred > valid (21.22) or a prefix
    /// length outside 1..=128.
    pub discarded: u32,
}

/// Our IA_NA as received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct IaNaView {
    pub status: Option<Status>,
    /// First address with valid lifetime > 0 and preferred <= valid.
    pub address: Option<(Ipv6Addr, u32, u32)>,
}

/// The parts of a received message the client acts on.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Received {
    pub kind: MessageType,
    pub xid: u32,
    pub client_id: Option<Vec<u8>>,
    pub server_id: Option<Vec<u8>>,
    pub preference: u8,
    /// Top-level Status Code.
    pub status: Option<Status>,
    pub rapid_commit: bool,
    /// The IA_PD carrying our IAID (the first one if the server repeats it).
    pub ia_pd: Option<IaPdView>,
    pub ia_na: Option<IaNaView>,
    pub dns_servers: Vec<Ipv6Addr>,
    pub domains: Vec<String>,
    pub aftr_name: Option<String>,
    pub sol_max_rt: Option<u32>,
    /// Option 32 (RFC 8415 21.23), as received.
    pub information_refresh_time: Option<u32>,
    /// Option 83 (RFC 8415 21.25), as received.
    pub inf_max_rt: Option<u32>,
}

/// Decodes a UDP payload received on port 546. Never panics.
pub(super) fn parse(payload: &[u8], iaid: u32) -> Result<Received, WireError> {
    let (clean, kept_options) = sanitize(payload)?;
    let decoded = std::panic::catch_unwind(|| Message::decode(&mut Decoder::new(&clean)));
    let message = match decoded {
        Ok(Ok(message)) => message,
        Ok(Err(_)) => return Err(WireError::Decode),
        Err(_) => return Err(WireError::DecoderPanic),
    };
    // Every option left after sanitizing is well-formed, so dhcproto must
    // return all of them; fewer means it silently stopped somewhere.
    if message.opts().iter().count() != kept_options {
        return Err(WireError::Decode);
    }
    Ok(interpret(&message, iaid))
}

/// Where in the option tree an option sits; decides which codes we keep.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Message,
    IaNa,
    IaPd,
    IaAddr,
    IaPrefix,
}

/// Checks the TLV framing of the whole message and rebuilds it with only
/// the options we use, each of a valid length. Returns the rebuilt message
/// and the number of top-level options in it.
pub(super) fn sanitize(payload: &[u8]) -> Result<(Vec<u8>, usize), WireError> {
    let (header, options) = payload.split_at_checked(4).ok_or(WireError::Truncated)?;
    let mut out = Vec::with_capacity(payload.len());
    out.extend_from_slice(header);
    let kept = sanitize_options(options, Level::Message, &mut out)?;
    Ok((out, kept))
}

/// Returns how many options at this level were copied to `out`.
fn sanitize_options(
    mut options: &[u8],
    level: Level,
    out: &mut Vec<u8>,
) -> Result<usize, WireError> {
    let mut kept = 0;
    while !options.is_empty() {
        let (head, rest) = options.split_at_checked(4).ok_or(WireError::Truncated)?;
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let (body, rest) = rest.split_at_checked(len).ok_or(WireError::Truncated)?;
        options = rest;
        let bad_length = WireError::BadLength { code, len };
        let copied = match (level, code) {
            (Level::Message, OPT_CLIENT_ID | OPT_SERVER_ID) => {
                if len == 0 || len > MAX_DUID_LEN {
                    return Err(bad_length);
                }
                copy_option(out, code, body)
            }
            (Level::Message, OPT_IA_NA) => {
                copy_container(out, code, body, IA_HEADER_LEN, Level::IaNa)?
            }
            (Level::Message, OPT_IA_PD) => {
                copy_container(out, code, body, IA_HEADER_LEN, Level::IaPd)?
            }
            (Level::IaNa, OPT_IAADDR) => {
                copy_container(out, code, body, IAADDR_HEADER_LEN, Level::IaAddr)?
            }
            (Level::IaPd, OPT_IAPREFIX) => {
                copy_container(out, code, body, IAPREFIX_HEADER_LEN, Level::IaPrefix)?
            }
            (_, OPT_STATUS_CODE) => {
                let (status, text) = body.split_at_checked(2).ok_or(bad_length)?;
                // dhcproto wants UTF-8 and silently drops the option (and all
                // after it) otherwise; the text is informational, the code is
                // what matters, so keep the code and drop bad text.
                let text = if std::str::from_utf8(text).is_ok() {
                    text
                } else {
                    &[]
                };
                begin_option(out, code, status.len() + text.len());
                out.extend_from_slice(status);
                out.extend_from_slice(text);
                true
            }
            (Level::Message, OPT_PREFERENCE) if len != 1 => return Err(bad_length),
            (Level::Message, OPT_RAPID_COMMIT) if len != 0 => return Err(bad_length),
            (Level::Message, OPT_DNS_SERVERS) if len % 16 != 0 => return Err(bad_length),
            (Level::Message, OPT_SOL_MAX_RT | OPT_INF_MAX_RT | OPT_INFORMATION_REFRESH_TIME)
                if len != 4 =>
            {
                return Err(bad_length)
            }
            (
                Level::Message,
                OPT_PREFERENCE
                | OPT_RAPID_COMMIT
                | OPT_DNS_SERVERS
                | OPT_SOL_MAX_RT
                | OPT_DOMAIN_LIST
                | OPT_AFTR_NAME
                | OPT_INF_MAX_RT
                | OPT_INFORMATION_REFRESH_TIME,
            ) => copy_option(out, code, body),
            // Not used by this client (or misplaced): framing was checked,
            // the option is dropped.
            _ => false,
        };
        if copied {
            kept += 1;
        }
    }
    Ok(kept)
}

fn begin_option(out: &mut Vec<u8>, code: u16, len: usize) {
    out.extend_from_slice(&code.to_be_bytes());
    // Never more than the received length, which fitted in 16 bits.
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
}

fn copy_option(out: &mut Vec<u8>, code: u16, body: &[u8]) -> bool {
    begin_option(out, code, body.len());
    out.extend_from_slice(body);
    true
}

/// Copies an option made of a fixed header and encapsulated options,
/// sanitizing the encapsulated ones and fixing up the length.
fn copy_container(
    out: &mut Vec<u8>,
    code: u16,
    body: &[u8],
    header_len: usize,
    inner: Level,
) -> Result<bool, WireError> {
    let (header, options) = body
        .split_at_checked(header_len)
        .ok_or(WireError::BadLength {
            code,
            len: body.len(),
        })?;
    let start = out.len();
    begin_option(out, code, 0);
    out.extend_from_slice(header);
    sanitize_options(options, inner, out)?;
    let len = u16::try_from(out.len() - start - 4).unwrap_or(u16::MAX);
    out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(true)
}

fn interpret(message: &Message, iaid: u32) -> Received {
    let mut received = Received {
        kind: message.msg_type(),
        xid: message.xid_num(),
        client_id: None,
        server_id: None,
        preference: 0,
        status: None,
        rapid_commit: false,
        ia_pd: None,
        ia_na: None,
        dns_servers: Vec::new(),
        domains: Vec::new(),
        aftr_name: None,
        sol_max_rt: None,
        information_refresh_time: None,
        inf_max_rt: None,
    };
    // Where the server repeats an option, the first one wins.
    for option in message.opts().iter() {
        match option {
            DhcpOption::ClientId(id) if received.client_id.is_none() => {
                received.client_id = Some(id.clone());
            }
            DhcpOption::ServerId(id) if received.server_id.is_none() => {
                received.server_id = Some(id.clone());
            }
            DhcpOption::Preference(preference) => received.preference = *preference,
            DhcpOption::StatusCode(code) if received.status.is_none() => {
                received.status = Some(code.status);
            }
            DhcpOption::RapidCommit => received.rapid_commit = true,
            DhcpOption::IAPD(pd) if pd.id == iaid && received.ia_pd.is_none() => {
                received.ia_pd = Some(ia_pd_view(pd));
            }
            DhcpOption::IANA(na) if na.id == iaid && received.ia_na.is_none() => {
                received.ia_na = Some(ia_na_view(na));
            }
            DhcpOption::DomainNameServers(servers) => {
                for server in servers {
                    let usable =
                        !server.is_unspecified() && !server.is_loopback() && !server.is_multicast();
                    if usable
                        && received.dns_servers.len() < MAX_DNS_SERVERS
                        && !received.dns_servers.contains(server)
                    {
                        received.dns_servers.push(*server);
                    }
                }
            }
            DhcpOption::DomainSearchList(names) => {
                for name in names {
                    if received.domains.len() >= MAX_DOMAINS {
                        break;
                    }
                    if let Some(domain) = join_labels(name.iter()) {
                        if !received.domains.contains(&domain) {
                            received.domains.push(domain);
                        }
                    }
                }
            }
            DhcpOption::Unknown(unknown) => {
                let code = u16::from(unknown.code());
                if code == OPT_AFTR_NAME && received.aftr_name.is_none() {
                    received.aftr_name = parse_fqdn(unknown.data());
                } else if code == OPT_SOL_MAX_RT && received.sol_max_rt.is_none() {
                    if let Ok(value) = <[u8; 4]>::try_from(unknown.data()) {
                        received.sol_max_rt = Some(u32::from_be_bytes(value));
                    }
                } else if code == OPT_INF_MAX_RT && received.inf_max_rt.is_none() {
                    if let Ok(value) = <[u8; 4]>::try_from(unknown.data()) {
                        received.inf_max_rt = Some(u32::from_be_bytes(value));
                    }
                } else if code == OPT_INFORMATION_REFRESH_TIME
                    && received.information_refresh_time.is_none()
                {
                    // dhcproto 0.14 encodes option 32 but decodes it as
                    // unknown.
                    if let Ok(value) = <[u8; 4]>::try_from(unknown.data()) {
                        received.information_refresh_time = Some(u32::from_be_bytes(value));
                    }
                }
            }
            _ => {}
        }
    }
    received
}

fn ia_pd_view(pd: &IAPD) -> IaPdView {
    let mut view = IaPdView {
        t1: pd.t1,
        t2: pd.t2,
        ..IaPdView::default()
    };
    for option in pd.opts.iter() {
        match option {
            DhcpOption::StatusCode(code) if view.status.is_none() => {
                view.status = Some(code.status)
            }
            DhcpOption::IAPrefix(p) => {
                if p.preferred_lifetime > p.valid_lifetime
                    || p.prefix_len == 0
                    || p.prefix_len > 128
                {
                    view.discarded = view.discarded.saturating_add(1);
                    continue;
                }
                let prefix = PrefixView {
                    prefix: mask(p.prefix_ip, p.prefix_len),
                    len: p.prefix_len,
                    preferred: p.preferred_lifetime,
                    valid: p.valid_lifetime,
                };
                let list = if prefix.valid == 0 {
                    &mut view.withdrawn
                } else {
                    &mut view.usable
                };
                if list.len() < MAX_PREFIXES_PER_IA && !list.contains(&prefix) {
                    list.push(prefix);
                }
            }
            _ => {}
        }
    }
    view
}

fn ia_na_view(na: &IANA) -> IaNaView {
    let mut view = IaNaView::default();
    for option in na.opts.iter() {
        match option {
            DhcpOption::StatusCode(code) if view.status.is_none() => {
                view.status = Some(code.status)
            }
            DhcpOption::IAAddr(a)
                if view.address.is_none()
                    && a.valid_life > 0
                    && a.preferred_life <= a.valid_life =>
            {
                view.address = Some((a.addr, a.preferred_life, a.valid_life));
            }
            _ => {}
        }
    }
    view
}

/// The network address of `addr/len` (host bits cleared).
pub(super) fn mask(addr: Ipv6Addr, len: u8) -> Ipv6Addr {
    let bits = u128::from(addr);
    let keep = match u32::from(len.min(128)) {
        0 => 0,
        n => u128::MAX << (128 - n),
    };
    Ipv6Addr::from(bits & keep)
}

/// An uncompressed DNS wire-format name (RFC 8415 10) as dotted text
/// without the trailing dot; `None` unless it is a plain host name.
fn parse_fqdn(mut data: &[u8]) -> Option<String> {
    let mut labels = Vec::new();
    loop {
        let (&len, rest) = data.split_first()?;
        if len == 0 {
            // The root label ends the name and must end the option too.
            if !rest.is_empty() {
                return None;
            }
            break;
        }
        let (label, rest) = rest.split_at_checked(usize::from(len))?;
        labels.push(label);
        data = rest;
    }
    join_labels(labels.into_iter())
}

/// Joins DNS labels with dots after checking each is a host-name label
/// (letters, digits, '-', '_', at most 63 octets) and the name fits 253
/// characters; `None` for the root name or anything else.
fn join_labels<'a>(labels: impl Iterator<Item = &'a [u8]>) -> Option<String> {
    let mut name = String::new();
    for label in labels {
        let valid = !label.is_empty()
            && label.len() <= 63
            && label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
        if !valid {
            return None;
        }
        if !name.is_empty() {
            name.push('.');
        }
        // Checked ASCII above.
        name.extend(label.iter().map(|b| char::from(*b)));
        if name.len() > 253 {
            return None;
        }
    }
    (!name.is_empty()).then_some(name)
}

/// What goes into one message we send.
pub(super) struct Outgoing<'a> {
    pub kind: MessageType,
    pub xid: u32,
    pub client_id: &'a [u8],
    pub server_id: Option<&'a [u8]>,
    /// Hundredths of a second since the first transmission of the exchange.
    pub elapsed: u16,
    pub iaid: u32,
    /// The IAPREFIX to put in the IA_PD (lifetimes 0, 21.22); a prefix
    /// length hint is `(::, hint)`. `None`: an empty IA_PD.
    pub prefix: Option<(Ipv6Addr, u8)>,
    /// The IA_PD's other prefixes we hold, renewed with it.
    pub extra_prefixes: &'a [(Ipv6Addr, u8)],
    /// `None`: no IA_NA. `Some(None)`: an empty IA_NA. `Some(Some(a))`:
    /// an IA_NA with an IAADDR for `a`.
    pub na: Option<Option<Ipv6Addr>>,
    pub rapid_commit: bool,
    /// Include the IA_PD (everything but a Decline).
    pub ia_pd: bool,
    /// An Information-request: the ORO also asks for the Information
    /// Refresh Time and INF_MAX_RT (RFC 8415 18.2.6, 21.23).
    pub information: bool,
}

/// Options we ask for in every message (ORO, 21.7).
pub(super) fn requested_options() -> Vec<OptionCode> {
    vec![
        OptionCode::DomainNameServers,
        OptionCode::DomainSearchList,
        OptionCode::from(OPT_AFTR_NAME),
        OptionCode::from(OPT_SOL_MAX_RT),
    ]
}

/// Encodes a client message. `None` only if dhcproto refuses to encode,
/// which it does not for the options used here.
pub(super) fn build(outgoing: &Outgoing<'_>) -> Option<Vec<u8>> {
    let xid = outgoing.xid.to_be_bytes();
    // `Message::new_with_id` goes through `Default`, which draws an unused
    // xid from the OS RNG; decoding the bare header builds the same empty
    // message and keeps the client deterministic for a given seed.
    let header = [u8::from(outgoing.kind), xid[1], xid[2], xid[3]];
    let mut message = Message::decode(&mut Decoder::new(&header)).ok()?;
    // DhcpOptions keeps options sorted by code, so the wire order is
    // by option code whatever the insertion order.
    let options = message.opts_mut();
    options.insert(DhcpOption::ClientId(outgoing.client_id.to_vec()));
    if let Some(server_id) = outgoing.server_id {
        options.insert(DhcpOption::ServerId(server_id.to_vec()));
    }
    options.insert(DhcpOption::ElapsedTime(outgoing.elapsed));
    let mut oro = requested_options();
    if outgoing.information {
        oro.push(OptionCode::InformationRefreshTime);
        oro.push(OptionCode::from(OPT_INF_MAX_RT));
    }
    options.insert(DhcpOption::ORO(ORO { opts: oro }));
    if outgoing.rapid_commit {
        options.insert(DhcpOption::RapidCommit);
    }
    let mut pd = IAPD {
        id: outgoing.iaid,
        t1: 0,
        t2: 0,
        opts: Default::default(),
    };
    for &(prefix_ip, prefix_len) in outgoing.prefix.iter().chain(outgoing.extra_prefixes) {
        pd.opts.insert(DhcpOption::IAPrefix(IAPrefix {
            preferred_lifetime: 0,
            valid_lifetime: 0,
            prefix_len,
            prefix_ip,
            opts: Default::default(),
        }));
    }
    if outgoing.ia_pd {
        options.insert(DhcpOption::IAPD(pd));
    }
    if let Some(address) = outgoing.na {
        let mut na = IANA {
            id: outgoing.iaid,
            t1: 0,
            t2: 0,
            opts: Default::default(),
        };
        if let Some(addr) = address {
            na.opts.insert(DhcpOption::IAAddr(IAAddr {
                addr,
                preferred_life: 0,
                valid_life: 0,
                opts: Default::default(),
            }));
        }
        options.insert(DhcpOption::IANA(na));
    }
    message.to_vec().ok()
}
