//! DHCPv6 server wire format: a received client message turned into a
//! small, bounded [`Inbound`] view, and the option writer for replies.
//!
//! The server does not hand received bytes to dhcproto at all. dhcproto
//! 0.14's decoder stops silently at a bad option, reads fixed-size options
//! with their natural size whatever the length says, computes `len - N` on
//! short Status Code / Vendor options (a panic in debug builds) and
//! recurses without a depth limit (see `dhcp6c/wire.rs`, whose validator is
//! private to the client). A server needs only a handful of fixed-layout
//! options, so [`parse`] walks the TLV framing itself, checks every option
//! it uses for its exact length, and extracts the values directly. The
//! option tree is walked to a fixed depth (IA -> IAADDR/IAPREFIX -> framing
//! of their sub-options), with no recursion.
//!
//! Replies are written by hand too ([`Writer`]): dhcproto compresses the
//! names of the Domain Search List (hickory's encoder emits compression
//! pointers), which RFC 8415 section 10 forbids.

use std::net::Ipv6Addr;

pub(super) const MSG_SOLICIT: u8 = 1;
pub(super) const MSG_ADVERTISE: u8 = 2;
pub(super) const MSG_REQUEST: u8 = 3;
pub(super) const MSG_CONFIRM: u8 = 4;
pub(super) const MSG_RENEW: u8 = 5;
pub(super) const MSG_REBIND: u8 = 6;
pub(super) const MSG_REPLY: u8 = 7;
pub(super) const MSG_RELEASE: u8 = 8;
pub(super) const MSG_DECLINE: u8 = 9;
pub(super) const MSG_INFORMATION_REQUEST: u8 = 11;
pub(super) const MSG_RELAY_FORW: u8 = 12;
pub(super) const MSG_RELAY_REPL: u8 = 13;

pub(super) const OPT_CLIENT_ID: u16 = 1;
pub(super) const OPT_SERVER_ID: u16 = 2;
pub(super) const OPT_IA_NA: u16 = 3;
pub(super) const OPT_IA_TA: u16 = 4;
pub(super) const OPT_IAADDR: u16 = 5;
pub(super) const OPT_ORO: u16 = 6;
pub(super) const OPT_PREFERENCE: u16 = 7;
pub(super) const OPT_ELAPSED_TIME: u16 = 8;
pub(super) const OPT_STATUS_CODE: u16 = 13;
pub(super) const OPT_RAPID_COMMIT: u16 = 14;
pub(super) const OPT_DNS_SERVERS: u16 = 23;
pub(super) const OPT_DOMAIN_LIST: u16 = 24;
pub(super) const OPT_IA_PD: u16 = 25;
pub(super) const OPT_IAPREFIX: u16 = 26;
pub(super) const OPT_INFORMATION_REFRESH_TIME: u16 = 32;

pub(super) const STATUS_SUCCESS: u16 = 0;
pub(super) const STATUS_NO_ADDRS_AVAIL: u16 = 2;
pub(super) const STATUS_NO_BINDING: u16 = 3;
pub(super) const STATUS_NOT_ON_LINK: u16 = 4;
pub(super) const STATUS_NO_PREFIX_AVAIL: u16 = 6;

/// A DUID is at most 128 octets plus its 2-octet type (RFC 8415 11.1).
pub(super) const MAX_DUID_LEN: usize = 130;
/// IA options of one type answered per message; more are ignored.
pub(super) const MAX_IAS: usize = 8;
/// IAADDR options kept per IA; more are ignored.
pub(super) const MAX_ADDRS_PER_IA: usize = 8;

/// Fixed part of IA_NA / IA_PD (IAID, T1, T2), IA_TA (IAID), IAADDR and
/// IAPREFIX.
const IA_NA_HEADER_LEN: usize = 12;
const IA_TA_HEADER_LEN: usize = 4;
const IAADDR_HEADER_LEN: usize = 24;
const IAPREFIX_HEADER_LEN: usize = 25;

/// The client-to-server message types a server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Solicit,
    Request,
    Confirm,
    Renew,
    Rebind,
    Release,
    Decline,
    InformationRequest,
}

/// What the message-type octet says about a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    Client(Kind),
    Relay,
    /// Server-to-client types (Advertise, Reply, Reconfigure), leasequery,
    /// DHCPv4-over-DHCPv6, unassigned...
    Unexpected,
}

pub(super) fn classify(msg_type: u8) -> Class {
    match msg_type {
        MSG_SOLICIT => Class::Client(Kind::Solicit),
        MSG_REQUEST => Class::Client(Kind::Request),
        MSG_CONFIRM => Class::Client(Kind::Confirm),
        MSG_RENEW => Class::Client(Kind::Renew),
        MSG_REBIND => Class::Client(Kind::Rebind),
        MSG_RELEASE => Class::Client(Kind::Release),
        MSG_DECLINE => Class::Client(Kind::Decline),
        MSG_INFORMATION_REQUEST => Class::Client(Kind::InformationRequest),
        MSG_RELAY_FORW | MSG_RELAY_REPL => Class::Relay,
        _ => Class::Unexpected,
    }
}

/// Why a payload was refused before interpretation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WireError {
    /// Shorter than the 4-octet header, or an option runs past its container.
    Truncated,
    /// An option we use with a length it cannot have.
    BadLength { code: u16, len: usize },
    /// A second Client or Server Identifier: ambiguous, refused.
    Repeated { code: u16 },
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Truncated => write!(f, "truncated"),
            WireError::BadLength { code, len } => write!(f, "option {code} with length {len}"),
            WireError::Repeated { code } => write!(f, "option {code} repeated"),
        }
    }
}

/// One IA_NA or IA_TA as received: its IAID and the addresses listed in it
/// (unicast ones only, deduplicated, at most [`MAX_ADDRS_PER_IA`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Ia {
    pub iaid: u32,
    pub addrs: Vec<Ipv6Addr>,
}

/// The parts of a client message the server acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Inbound {
    pub kind: Kind,
    pub xid: [u8; 3],
    pub client_id: Option<Vec<u8>>,
    pub server_id: Option<Vec<u8>>,
    /// At most [`MAX_IAS`] each, first occurrence of an IAID wins.
    pub ia_na: Vec<Ia>,
    pub ia_ta: Vec<Ia>,
    pub ia_pd: Vec<u32>,
    /// Any IA option at all (including ignored ones).
    pub has_ia: bool,
    pub rapid_commit: bool,
    /// IA options not answered: beyond [`MAX_IAS`] or a repeated IAID.
    pub ias_ignored: u32,
}

/// Decodes the UDP payload of a client message whose type octet
/// [`classify`] mapped to `kind`. Never panics.
pub(super) fn parse(kind: Kind, payload: &[u8]) -> Result<Inbound, WireError> {
    let (header, options) = payload.split_at_checked(4).ok_or(WireError::Truncated)?;
    let mut inbound = Inbound {
        kind,
        xid: [header[1], header[2], header[3]],
        client_id: None,
        server_id: None,
        ia_na: Vec::new(),
        ia_ta: Vec::new(),
        ia_pd: Vec::new(),
        has_ia: false,
        rapid_commit: false,
        ias_ignored: 0,
    };
    walk(options, |code, body| {
        let bad_length = WireError::BadLength {
            code,
            len: body.len(),
        };
        match code {
            OPT_CLIENT_ID | OPT_SERVER_ID => {
                if body.is_empty() || body.len() > MAX_DUID_LEN {
                    return Err(bad_length);
                }
                let slot = if code == OPT_CLIENT_ID {
                    &mut inbound.client_id
                } else {
                    &mut inbound.server_id
                };
                if slot.is_some() {
                    return Err(WireError::Repeated { code });
                }
                *slot = Some(body.to_vec());
            }
            OPT_IA_NA | OPT_IA_TA => {
                let header_len = if code == OPT_IA_NA {
                    IA_NA_HEADER_LEN
                } else {
                    IA_TA_HEADER_LEN
                };
                let (header, sub) = body.split_at_checked(header_len).ok_or(bad_length)?;
                let addrs = ia_addresses(sub)?;
                inbound.has_ia = true;
                let iaid = be_u32(header);
                let list = if code == OPT_IA_NA {
                    &mut inbound.ia_na
                } else {
                    &mut inbound.ia_ta
                };
                if list.len() >= MAX_IAS || list.iter().any(|ia| ia.iaid == iaid) {
                    inbound.ias_ignored = inbound.ias_ignored.saturating_add(1);
                } else {
                    list.push(Ia { iaid, addrs });
                }
            }
            OPT_IA_PD => {
                let (header, sub) = body.split_at_checked(IA_NA_HEADER_LEN).ok_or(bad_length)?;
                walk(sub, |code, body| {
                    if code == OPT_IAPREFIX {
                        let (_, inner) = body.split_at_checked(IAPREFIX_HEADER_LEN).ok_or(
                            WireError::BadLength {
                                code,
                                len: body.len(),
                            },
                        )?;
                        walk(inner, |_, _| Ok(()))?;
                    }
                    Ok(())
                })?;
                inbound.has_ia = true;
                let iaid = be_u32(header);
                if inbound.ia_pd.len() >= MAX_IAS || inbound.ia_pd.contains(&iaid) {
                    inbound.ias_ignored = inbound.ias_ignored.saturating_add(1);
                } else {
                    inbound.ia_pd.push(iaid);
                }
            }
            OPT_RAPID_COMMIT => {
                if !body.is_empty() {
                    return Err(bad_length);
                }
                inbound.rapid_commit = true;
            }
            OPT_ORO if body.len() % 2 != 0 => return Err(bad_length),
            OPT_ELAPSED_TIME if body.len() != 2 => return Err(bad_length),
            // Anything else: framing checked by `walk`, content unused.
            _ => {}
        }
        Ok(())
    })?;
    Ok(inbound)
}

/// The IAADDR options inside an IA_NA / IA_TA.
fn ia_addresses(sub: &[u8]) -> Result<Vec<Ipv6Addr>, WireError> {
    let mut addrs = Vec::new();
    walk(sub, |code, body| {
        if code == OPT_IAADDR {
            let (fixed, inner) =
                body.split_at_checked(IAADDR_HEADER_LEN)
                    .ok_or(WireError::BadLength {
                        code,
                        len: body.len(),
                    })?;
            walk(inner, |_, _| Ok(()))?;
            let addr = Ipv6Addr::from(be_array::<16>(fixed));
            let unicast = !(addr.is_unspecified() || addr.is_loopback() || addr.is_multicast());
            if unicast && addrs.len() < MAX_ADDRS_PER_IA && !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        Ok(())
    })?;
    Ok(addrs)
}

/// Calls `f` with each (code, body) of a run of options, checking that
/// every option fits in `data`.
fn walk<'a>(
    mut data: &'a [u8],
    mut f: impl FnMut(u16, &'a [u8]) -> Result<(), WireError>,
) -> Result<(), WireError> {
    while !data.is_empty() {
        let (head, rest) = data.split_at_checked(4).ok_or(WireError::Truncated)?;
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let (body, rest) = rest.split_at_checked(len).ok_or(WireError::Truncated)?;
        data = rest;
        f(code, body)?;
    }
    Ok(())
}

/// The first `N` octets of `bytes`, zero-padded if shorter (callers pass
/// slices already checked to be long enough).
fn be_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    let n = N.min(bytes.len());
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(be_array::<4>(bytes))
}

/// Appends `name` in uncompressed DNS wire format (RFC 8415 10), root label
/// included. `false` (and nothing appended) unless it is a host name:
/// labels of letters, digits, '-' and '_', 1..=63 octets each, at most 255
/// octets encoded. A trailing dot is accepted.
pub(super) fn encode_domain(name: &str, out: &mut Vec<u8>) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return false;
    }
    let mut encoded = Vec::with_capacity(name.len() + 2);
    for label in name.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return false;
        }
        // At most 63, checked above.
        encoded.push(u8::try_from(label.len()).unwrap_or(63));
        encoded.extend_from_slice(label.as_bytes());
    }
    encoded.push(0);
    if encoded.len() > 255 {
        return false;
    }
    out.extend_from_slice(&encoded);
    true
}

/// Builds the options part of a reply; [`Writer::finish`] puts the header
/// in front. Option bodies are small and bounded by the callers (a few
/// IAs of a few addresses, capped DNS and domain lists), so every length
/// fits in 16 bits.
#[derive(Debug, Default)]
pub(super) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn option(&mut self, code: u16, body: &[u8]) {
        self.buf.extend_from_slice(&code.to_be_bytes());
        self.buf.extend_from_slice(&len16(body.len()).to_be_bytes());
        self.buf.extend_from_slice(body);
    }

    /// Opens a container option; close it with [`Writer::end`].
    pub fn begin(&mut self, code: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&code.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        start
    }

    pub fn end(&mut self, start: usize) {
        let len = len16(self.buf.len().saturating_sub(start + 4));
        if let Some(field) = self.buf.get_mut(start + 2..start + 4) {
            field.copy_from_slice(&len.to_be_bytes());
        }
    }

    pub fn put(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn status(&mut self, code: u16, message: &str) {
        let start = self.begin(OPT_STATUS_CODE);
        self.put(&code.to_be_bytes());
        self.put(message.as_bytes());
        self.end(start);
    }

    pub fn iaaddr(&mut self, addr: Ipv6Addr, preferred: u32, valid: u32) {
        let start = self.begin(OPT_IAADDR);
        self.put(&addr.octets());
        self.put(&preferred.to_be_bytes());
        self.put(&valid.to_be_bytes());
        self.end(start);
    }

    /// Opens an IA_NA or IA_PD (with T1/T2) or an IA_TA (without).
    pub fn begin_ia(&mut self, code: u16, iaid: u32, t1: u32, t2: u32) -> usize {
        let start = self.begin(code);
        self.put(&iaid.to_be_bytes());
        if code != OPT_IA_TA {
            self.put(&t1.to_be_bytes());
            self.put(&t2.to_be_bytes());
        }
        start
    }

    /// An IA holding only a Status Code.
    pub fn ia_status(&mut self, code: u16, iaid: u32, status: u16, message: &str) {
        let start = self.begin_ia(code, iaid, 0, 0);
        self.status(status, message);
        self.end(start);
    }

    pub fn finish(self, msg_type: u8, xid: [u8; 3]) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.buf.len());
        out.push(msg_type);
        out.extend_from_slice(&xid);
        out.extend_from_slice(&self.buf);
        out
    }
}

fn len16(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}
