//! DHCPv4 wire format for the server: turning a UDP payload received on
//! port 67 into a small, bounded [`Received`] view, and encoding replies.
//!
//! Encoding and decoding go through `dhcproto::v4`, whose decoder is not
//! safe to feed hostile bytes directly:
//! - `DhcpOptions::decode` stops silently at the first option it cannot
//!   decode (bad length, non-UTF-8 string, truncated body), so a broken
//!   message decodes "successfully" with options missing;
//! - `Message::chaddr()` slices the 16-octet field with `hlen`, which panics
//!   for `hlen > 16`;
//! - Client FQDN (81) and BLQ Status Code (151) compute `len - N`, which
//!   overflows (a panic in debug builds) on short options, and several
//!   fixed-size options `debug_assert!` their length;
//! - fixed-size options are read with their natural size whatever the
//!   option length says;
//! - repeated options that are not adjacent overwrite each other instead of
//!   being concatenated (RFC 3396), and Option Overload (52) is ignored, so
//!   options carried in `sname`/`file` are lost.
//!
//! So [`parse`] checks the fixed header and walks the option framing of the
//! `options` field (and of `file`/`sname` when option 52 says so) itself,
//! concatenates split options, keeps only the options this server uses,
//! each checked for its length, and rebuilds a plain message: no overload,
//! each option once, `sname`/`file` zeroed. dhcproto then decodes the
//! rebuilt buffer, inside `catch_unwind` as a last line of defence.
//!
//! Replies are encoded with dhcproto too, but option by option: its
//! `DhcpOptions` map always encodes in option-code order, while we want our
//! own order (RFC 2131 4.3.1: the client's Parameter Request List order;
//! RFC 2132 3.3: subnet mask before router) and a size budget.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

/// BOOTP fixed header: op .. file, without the magic cookie.
const FIXED_LEN: usize = 236;
/// Fixed header plus magic cookie: where the `options` field starts.
pub(super) const HEADER_LEN: usize = FIXED_LEN + 4;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;
const CHADDR: std::ops::Range<usize> = 28..44;
/// BOOTP replies are padded to this size (RFC 1542 2.1): some old clients
/// drop anything shorter.
const MIN_REPLY_LEN: usize = 300;

const OP_BOOTREQUEST: u8 = 1;
const HTYPE_ETHERNET: u8 = 1;
const HLEN_ETHERNET: u8 = 6;

const OPT_PAD: u8 = 0;
const OPT_HOSTNAME: u8 = 12;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_OVERLOAD: u8 = 52;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_PARAMETER_LIST: u8 = 55;
const OPT_MAX_MESSAGE_SIZE: u8 = 57;
const OPT_CLIENT_ID: u8 = 61;
const OPT_END: u8 = 255;

/// Longest option value we keep (after RFC 3396 concatenation): one
/// option's worth. A Parameter Request List can name at most 254 distinct
/// codes, a client identifier or host name of more is not sane.
const MAX_KEPT_OPTION_LEN: usize = 255;
/// Host names kept from option 12 (one DNS label).
const MAX_HOSTNAME_LEN: usize = 63;

/// Why a payload was refused before interpretation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WireError {
    /// Shorter than the fixed header and magic cookie.
    Truncated,
    BadCookie,
    /// op is not BOOTREQUEST.
    NotBootRequest,
    /// htype != 1 (Ethernet), hlen != 6, or a multicast / all-zero chaddr.
    BadHardware,
    /// An option runs past the end of the `options` field.
    OptionOverflow,
    /// Option 52 with a bad length or value, or pointing at a `file` /
    /// `sname` field whose options do not frame or lack the End option.
    BadOverload,
    /// A Parameter Request List longer than 255 octets.
    HugeParameterList,
    NoMessageType,
    /// An option we use with a length it cannot have.
    BadOption {
        code: u8,
        len: usize,
    },
    /// dhcproto refused the (already sanitized) buffer or lost options.
    Decode,
    /// dhcproto panicked; caught, but worth its own counter.
    DecoderPanic,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Truncated => write!(f, "truncated fixed header"),
            WireError::BadCookie => write!(f, "bad magic cookie"),
            WireError::NotBootRequest => write!(f, "not a BOOTREQUEST"),
            WireError::BadHardware => write!(f, "not Ethernet (htype/hlen/chaddr)"),
            WireError::OptionOverflow => write!(f, "option overflows the message"),
            WireError::BadOverload => write!(f, "bad option overload"),
            WireError::HugeParameterList => write!(f, "parameter request list too long"),
            WireError::NoMessageType => write!(f, "no message type"),
            WireError::BadOption { code, len } => write!(f, "option {code} with length {len}"),
            WireError::Decode => write!(f, "undecodable"),
            WireError::DecoderPanic => write!(f, "decoder panic"),
        }
    }
}

/// The parts of a received BOOTREQUEST the server acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Received {
    pub kind: MessageType,
    pub xid: u32,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 55, raw codes in the client's order (at most 255).
    pub parameters: Vec<u8>,
    /// Option 57.
    pub max_message_size: Option<u16>,
    /// Option 61 (1..=255 octets).
    pub client_id: Option<Vec<u8>>,
    /// Option 12, if it is a usable host name label.
    pub hostname: Option<String>,
}

impl Received {
    pub fn broadcast(&self) -> bool {
        Flags::new(self.flags).broadcast()
    }
}

/// Decodes a UDP payload received on port 67. Never panics.
pub(super) fn parse(payload: &[u8]) -> Result<Received, WireError> {
    let (clean, kept_options) = sanitize(payload)?;
    let decoded = std::panic::catch_unwind(|| Message::decode(&mut Decoder::new(&clean)));
    let message = match decoded {
        Ok(Ok(message)) => message,
        Ok(Err(_)) => return Err(WireError::Decode),
        Err(_) => return Err(WireError::DecoderPanic),
    };
    // Every option left after sanitizing is well-formed, so dhcproto must
    // return all of them; fewer means it silently stopped somewhere.
    if message.opts().len() != kept_options {
        return Err(WireError::Decode);
    }
    interpret(&message)
}

/// The value of every option found, concatenated per RFC 3396, by code.
struct Collected {
    values: Vec<Option<Vec<u8>>>,
}

impl Collected {
    fn new() -> Self {
        Self {
            values: vec![None; 256],
        }
    }

    fn get(&self, code: u8) -> Option<&[u8]> {
        self.values[usize::from(code)].as_deref()
    }

    fn append(&mut self, code: u8, body: &[u8]) {
        self.values[usize::from(code)]
            .get_or_insert_with(Vec::new)
            .extend_from_slice(body);
    }

    /// Walks one option area. `Ok(true)` if it ended with the End option,
    /// `Ok(false)` if it ran to the end of the area without one; `Err` if
    /// an option runs past the area.
    fn walk(&mut self, mut area: &[u8], skip_overload: bool) -> Result<bool, ()> {
        loop {
            let Some((&code, rest)) = area.split_first() else {
                return Ok(false);
            };
            match code {
                OPT_PAD => area = rest,
                OPT_END => return Ok(true),
                _ => {
                    let (&len, rest) = rest.split_first().ok_or(())?;
                    let (body, rest) = rest.split_at_checked(usize::from(len)).ok_or(())?;
                    // Option 52 is only meaningful in the `options` field.
                    if !(skip_overload && code == OPT_OVERLOAD) {
                        self.append(code, body);
                    }
                    area = rest;
                }
            }
        }
    }
}

/// Checks the fixed header and the option framing and rebuilds the
/// message with only the options we use, each of a valid length, all in
/// the `options` field. Returns the rebuilt message and its option count.
pub(super) fn sanitize(payload: &[u8]) -> Result<(Vec<u8>, usize), WireError> {
    let (fixed, rest) = payload
        .split_at_checked(FIXED_LEN)
        .ok_or(WireError::Truncated)?;
    let (cookie, options) = rest.split_at_checked(4).ok_or(WireError::Truncated)?;
    if cookie != MAGIC_COOKIE {
        return Err(WireError::BadCookie);
    }
    if fixed[0] != OP_BOOTREQUEST {
        return Err(WireError::NotBootRequest);
    }
    let chaddr = &fixed[CHADDR];
    let multicast_or_zero = chaddr[0] & 1 == 1 || chaddr[..6].iter().all(|b| *b == 0);
    if fixed[1] != HTYPE_ETHERNET || fixed[2] != HLEN_ETHERNET || multicast_or_zero {
        return Err(WireError::BadHardware);
    }

    // RFC 3396: options split in several instances are concatenated, in
    // the order options field, file, sname.
    let mut found = Collected::new();
    found
        .walk(options, false)
        .map_err(|()| WireError::OptionOverflow)?;
    if let Some(overload) = found.get(OPT_OVERLOAD) {
        let fields: &[std::ops::Range<usize>] = match overload {
            [1] => &[FILE],
            [2] => &[SNAME],
            [3] => &[FILE, SNAME],
            _ => return Err(WireError::BadOverload),
        };
        for field in fields {
            // RFC 2132 9.3: options in sname/file must end with End.
            match found.walk(&fixed[field.clone()], true) {
                Ok(true) => {}
                Ok(false) | Err(()) => return Err(WireError::BadOverload),
            }
        }
    }

    let message_type = found
        .get(OPT_MESSAGE_TYPE)
        .ok_or(WireError::NoMessageType)?;
    let exact = |code: u8, value: &[u8], want: usize| {
        if value.len() == want {
            Ok(())
        } else {
            Err(WireError::BadOption {
                code,
                len: value.len(),
            })
        }
    };
    exact(OPT_MESSAGE_TYPE, message_type, 1)?;
    for (code, want) in [
        (OPT_REQUESTED_IP, 4),
        (OPT_SERVER_ID, 4),
        (OPT_MAX_MESSAGE_SIZE, 2),
    ] {
        if let Some(value) = found.get(code) {
            exact(code, value, want)?;
        }
    }
    if found
        .get(OPT_PARAMETER_LIST)
        .is_some_and(|list| list.len() > MAX_KEPT_OPTION_LEN)
    {
        return Err(WireError::HugeParameterList);
    }
    if let Some(id) = found.get(OPT_CLIENT_ID) {
        if id.is_empty() || id.len() > MAX_KEPT_OPTION_LEN {
            return Err(WireError::BadOption {
                code: OPT_CLIENT_ID,
                len: id.len(),
            });
        }
    }
    // A host name is informational: a bad one is dropped, not the message.
    let hostname = found.get(OPT_HOSTNAME).and_then(clean_hostname);

    let mut out = Vec::with_capacity(HEADER_LEN + 600);
    out.extend_from_slice(fixed);
    // sname/file may hold overloaded options (now merged) or junk; we use
    // neither.
    out[SNAME].fill(0);
    out[FILE].fill(0);
    out.extend_from_slice(&MAGIC_COOKIE);
    let mut kept = 0;
    for code in [
        OPT_MESSAGE_TYPE,
        OPT_REQUESTED_IP,
        OPT_SERVER_ID,
        OPT_PARAMETER_LIST,
        OPT_MAX_MESSAGE_SIZE,
        OPT_CLIENT_ID,
    ] {
        if let Some(value) = found.get(code) {
            push_option(&mut out, code, value);
            kept += 1;
        }
    }
    if let Some(name) = hostname {
        push_option(&mut out, OPT_HOSTNAME, name.as_bytes());
        kept += 1;
    }
    out.push(OPT_END);
    Ok((out, kept))
}

/// Writes one option; every value kept is at most 255 octets.
fn push_option(out: &mut Vec<u8>, code: u8, value: &[u8]) {
    let len = value.len().min(MAX_KEPT_OPTION_LEN);
    out.push(code);
    out.push(u8::try_from(len).unwrap_or(u8::MAX));
    out.extend_from_slice(&value[..len]);
}

/// A client's option 12 reduced to something safe to log and show: the
/// first label, letters, digits, '-' and '_' only, at most 63 characters.
fn clean_hostname(raw: &[u8]) -> Option<String> {
    let label = raw.split(|b| *b == b'.' || *b == 0).next()?;
    if label.is_empty()
        || label.len() > MAX_HOSTNAME_LEN
        || !label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    {
        return None;
    }
    // Checked ASCII above.
    Some(label.iter().map(|b| char::from(*b)).collect())
}

fn interpret(message: &Message) -> Result<Received, WireError> {
    let kind = message.opts().msg_type().ok_or(WireError::NoMessageType)?;
    let mut chaddr = [0u8; 6];
    // hlen was checked to be 6 before dhcproto saw the buffer.
    let raw = message.chaddr();
    if raw.len() != 6 {
        return Err(WireError::BadHardware);
    }
    chaddr.copy_from_slice(raw);
    let mut received = Received {
        kind,
        xid: message.xid(),
        flags: message.flags().into(),
        ciaddr: message.ciaddr(),
        giaddr: message.giaddr(),
        chaddr,
        requested_ip: None,
        server_id: None,
        parameters: Vec::new(),
        max_message_size: None,
        client_id: None,
        hostname: None,
    };
    for (_, option) in message.opts().iter() {
        match option {
            DhcpOption::RequestedIpAddress(ip) => received.requested_ip = Some(*ip),
            DhcpOption::ServerIdentifier(ip) => received.server_id = Some(*ip),
            DhcpOption::ParameterRequestList(codes) => {
                received.parameters = codes.iter().map(|code| u8::from(*code)).collect();
            }
            DhcpOption::MaxMessageSize(size) => received.max_message_size = Some(*size),
            DhcpOption::ClientIdentifier(id) => received.client_id = Some(id.clone()),
            DhcpOption::Hostname(name) => received.hostname = Some(name.clone()),
            _ => {}
        }
    }
    Ok(received)
}

/// The fixed fields of a reply.
pub(super) struct ReplyHeader {
    pub xid: u32,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
}

/// An encoded reply and how many optional options did not fit.
pub(super) struct Encoded {
    pub payload: Vec<u8>,
    pub dropped: usize,
}

/// Encodes a BOOTREPLY. `options` go on the wire in the given order; the
/// first `mandatory` are always included, the others only while the
/// message (End option included) stays within `limit` octets. `None` only
/// if dhcproto refuses to encode, which it does not for our options.
pub(super) fn build(
    header: &ReplyHeader,
    options: &[DhcpOption],
    mandatory: usize,
    limit: usize,
) -> Option<Encoded> {
    // `Message::default()` draws an xid from the OS RNG; decoding a blank
    // header builds the same empty message without it.
    let mut blank = [0u8; HEADER_LEN];
    blank[..3].copy_from_slice(&[2, HTYPE_ETHERNET, HLEN_ETHERNET]);
    blank[FIXED_LEN..].copy_from_slice(&MAGIC_COOKIE);
    let mut message = Message::decode(&mut Decoder::new(&blank)).ok()?;
    message
        .set_opcode(Opcode::BootReply)
        .set_xid(header.xid)
        .set_flags(Flags::new(header.flags))
        .set_ciaddr(header.ciaddr)
        .set_yiaddr(header.yiaddr)
        .set_chaddr(&header.chaddr);
    // No options in the map: dhcproto writes the header and cookie only.
    let mut out = Vec::with_capacity(MIN_REPLY_LEN.max(limit));
    message.encode(&mut Encoder::new(&mut out)).ok()?;
    let mut dropped = 0;
    let mut scratch = Vec::new();
    for (index, option) in options.iter().enumerate() {
        scratch.clear();
        option.encode(&mut Encoder::new(&mut scratch)).ok()?;
        if index < mandatory || out.len() + scratch.len() < limit {
            out.extend_from_slice(&scratch);
        } else {
            dropped += 1;
        }
    }
    out.push(OPT_END);
    if out.len() < MIN_REPLY_LEN {
        out.resize(MIN_REPLY_LEN, OPT_PAD);
    }
    Some(Encoded {
        payload: out,
        dropped,
    })
}
