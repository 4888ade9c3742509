//! MLD messages (RFC 2710, RFC 3810) in the style of smoltcp's `wire`
//! module: [`Query`] is a zero-copy view with a validating constructor,
//! [`QueryRepr`] and [`Message`] the parsed forms, and the `emit_*`
//! functions write reports. Around the message, [`Ipv6Mld`] finds an MLD
//! message in an Ethernet frame (walking the Hop-by-Hop header and noting
//! its Router Alert) and [`frame`] builds a complete one to send.
//!
//! Every byte is untrusted: lengths are checked before any field is read,
//! and a query's source list is read only as far as the message holds it.
//! The ICMPv6 checksum covers the IPv6 pseudo-header, so [`Ipv6Mld`]
//! verifies it and [`frame`] computes it.

use std::net::Ipv6Addr;
use std::time::Duration;

use crate::neigh::Mac;

/// ICMPv6 types (RFC 2710 3, RFC 3810 5).
pub const TYPE_QUERY: u8 = 130;
pub const TYPE_REPORT_V1: u8 = 131;
pub const TYPE_DONE_V1: u8 = 132;
pub const TYPE_REPORT_V2: u8 = 143;

/// An MLDv1 message is exactly 24 octets; an MLDv2 query at least 28
/// (RFC 3810 8.1: any other query length is ignored).
pub const V1_LEN: usize = 24;
pub const V2_QUERY_LEN: usize = 28;
/// Report header (type, code, checksum, reserved, record count) and the
/// fixed part of one multicast address record (RFC 3810 5.2).
pub const V2_REPORT_HEADER_LEN: usize = 8;
pub const RECORD_HEADER_LEN: usize = 20;

/// Multicast address record types (RFC 3810 5.2.12).
pub mod record_type {
    pub const MODE_IS_INCLUDE: u8 = 1;
    pub const MODE_IS_EXCLUDE: u8 = 2;
    pub const CHANGE_TO_INCLUDE: u8 = 3;
    pub const CHANGE_TO_EXCLUDE: u8 = 4;
}

/// The MLDv2 report destination: all MLDv2-capable routers (RFC 3810 5.2.14).
pub const ALL_MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);
/// Where an MLDv1 Done goes (RFC 2710 3.7).
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// MLD is link-local business: hop limit 1 (RFC 3810 5, RFC 2710 3).
pub const HOP_LIMIT: u8 = 1;

const ETH_LEN: usize = 14;
const IPV6_LEN: usize = 40;
const NEXT_HOP_BY_HOP: u8 = 0;
const NEXT_ICMPV6: u8 = 58;
/// Router Alert option (RFC 2711), value 0: the datagram holds MLD.
const OPT_ROUTER_ALERT: u8 = 5;
/// What we send after the IPv6 header: next header ICMPv6, length 0 (8
/// octets), Router Alert for MLD, then a PadN of 2 to fill the 8 octets.
const HOP_BY_HOP_RA: [u8; 8] = [NEXT_ICMPV6, 0, OPT_ROUTER_ALERT, 2, 0, 0, 1, 0];

/// Why a message was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Too short for its type, a query of neither 24 nor 28+ octets, or a
    /// source list / record past the end of the message.
    Truncated,
    /// Not one of the four MLD types.
    NotMld(u8),
    /// A query names a group that is not a multicast address.
    BadGroup,
}

/// A zero-copy view of a Multicast Listener Query (v1 or v2), from the
/// ICMPv6 type byte.
#[derive(Debug)]
pub struct Query<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Query<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Query { buffer }
    }

    /// Checks the type and that every field read below is in the buffer:
    /// 24 octets (MLDv1), or 28 plus 16 per announced source (MLDv2).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let q = Query::new_unchecked(buffer);
        let b = q.buffer.as_ref();
        let Some(&ty) = b.first() else {
            return Err(Error::Truncated);
        };
        if ty != TYPE_QUERY {
            return Err(Error::NotMld(ty));
        }
        match b.len() {
            V1_LEN => Ok(q),
            n if n >= V2_QUERY_LEN && n >= V2_QUERY_LEN + 16 * usize::from(q.num_sources()) => {
                Ok(q)
            }
            _ => Err(Error::Truncated),
        }
    }

    pub fn is_v1(&self) -> bool {
        self.buffer.as_ref().len() == V1_LEN
    }

    /// Maximum Response Code (v2) or Maximum Response Delay in ms (v1).
    pub fn max_response_code(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[4], b[5]])
    }

    pub fn multicast_address(&self) -> Ipv6Addr {
        let b = self.buffer.as_ref();
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[8..24]);
        Ipv6Addr::from(a)
    }

    /// S flag (v2): routers suppress their timer updates; hosts ignore it.
    pub fn suppress(&self) -> bool {
        !self.is_v1() && self.buffer.as_ref()[24] & 0x08 != 0
    }

    /// Querier's Robustness Variable (v2), 0 when absent.
    pub fn qrv(&self) -> u8 {
        if self.is_v1() {
            0
        } else {
            self.buffer.as_ref()[24] & 0x07
        }
    }

    /// Querier's Query Interval Code (v2), 0 when absent.
    pub fn qqic(&self) -> u8 {
        if self.is_v1() {
            0
        } else {
            self.buffer.as_ref()[25]
        }
    }

    pub fn num_sources(&self) -> u16 {
        let b = self.buffer.as_ref();
        match b.get(26..28) {
            Some(n) if b.len() != V1_LEN => u16::from_be_bytes([n[0], n[1]]),
            _ => 0,
        }
    }

    /// The source list (v2); `new_checked` made sure it is all there.
    pub fn sources(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        let b = self.buffer.as_ref();
        let n = usize::from(self.num_sources());
        b.get(V2_QUERY_LEN..V2_QUERY_LEN + 16 * n)
            .unwrap_or(&[])
            .chunks_exact(16)
            .map(|c| {
                let mut a = [0u8; 16];
                a.copy_from_slice(c);
                Ipv6Addr::from(a)
            })
    }
}

/// RFC 3810 5.1.3: codes from 32768 on are a floating-point number of ms.
pub fn max_response_delay(code: u16) -> Duration {
    let ms = if code < 0x8000 {
        u64::from(code)
    } else {
        let mant = u64::from(code & 0x0fff);
        let exp = u32::from((code >> 12) & 0x7);
        (mant | 0x1000) << (exp + 3)
    };
    Duration::from_millis(ms)
}

/// RFC 3810 5.1.9: the Querier's Query Interval, in seconds.
pub fn query_interval(qqic: u8) -> Duration {
    let s = if qqic < 0x80 {
        u64::from(qqic)
    } else {
        let mant = u64::from(qqic & 0x0f);
        let exp = u32::from((qqic >> 4) & 0x7);
        (mant | 0x10) << (exp + 3)
    };
    Duration::from_secs(s)
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryRepr {
    pub v1: bool,
    pub max_response: Duration,
    /// `::` for a General Query.
    pub group: Ipv6Addr,
    pub qrv: u8,
    /// Zero when the query does not say (v1, or a QQIC of 0).
    pub query_interval: Duration,
    /// Sources of a Multicast Address and Source Specific Query, at most
    /// `max_sources` of them; `truncated` says there were more.
    pub sources: Vec<Ipv6Addr>,
    pub sources_truncated: bool,
}

impl QueryRepr {
    pub fn parse<T: AsRef<[u8]>>(q: &Query<T>, max_sources: usize) -> Result<Self, Error> {
        let group = q.multicast_address();
        if !group.is_unspecified() && !group.is_multicast() {
            return Err(Error::BadGroup);
        }
        let v1 = q.is_v1();
        let max_response = if v1 {
            Duration::from_millis(u64::from(q.max_response_code()))
        } else {
            max_response_delay(q.max_response_code())
        };
        let sources: Vec<Ipv6Addr> = q.sources().take(max_sources).collect();
        // A general query with sources is meaningless (RFC 3810 5.1.10).
        if group.is_unspecified() && !sources.is_empty() {
            return Err(Error::BadGroup);
        }
        Ok(QueryRepr {
            v1,
            max_response,
            group,
            qrv: q.qrv(),
            query_interval: query_interval(q.qqic()),
            sources_truncated: usize::from(q.num_sources()) > sources.len(),
            sources,
        })
    }
}

/// Any MLD message, as much of it as a host needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Query(QueryRepr),
    /// Another listener's MLDv1 report (for report suppression).
    ReportV1 {
        group: Ipv6Addr,
    },
    DoneV1 {
        group: Ipv6Addr,
    },
    /// An MLDv2 report with this many records, all within the message.
    ReportV2 {
        records: u16,
    },
}

impl Message {
    /// `bytes` is the ICMPv6 message, from its type byte, checksum already
    /// verified by the caller.
    pub fn parse(bytes: &[u8], max_sources: usize) -> Result<Self, Error> {
        let Some(&ty) = bytes.first() else {
            return Err(Error::Truncated);
        };
        let v1_group = || -> Result<Ipv6Addr, Error> {
            if bytes.len() < V1_LEN {
                return Err(Error::Truncated);
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&bytes[8..24]);
            Ok(Ipv6Addr::from(a))
        };
        match ty {
            TYPE_QUERY => {
                QueryRepr::parse(&Query::new_checked(bytes)?, max_sources).map(Message::Query)
            }
            TYPE_REPORT_V1 => Ok(Message::ReportV1 { group: v1_group()? }),
            TYPE_DONE_V1 => Ok(Message::DoneV1 { group: v1_group()? }),
            TYPE_REPORT_V2 => {
                if bytes.len() < V2_REPORT_HEADER_LEN {
                    return Err(Error::Truncated);
                }
                let records = u16::from_be_bytes([bytes[6], bytes[7]]);
                let mut off = V2_REPORT_HEADER_LEN;
                for _ in 0..records {
                    let rec = bytes
                        .get(off..off + RECORD_HEADER_LEN)
                        .ok_or(Error::Truncated)?;
                    let aux = usize::from(rec[1]) * 4;
                    let n = usize::from(u16::from_be_bytes([rec[2], rec[3]]));
                    off += RECORD_HEADER_LEN + 16 * n + aux;
                    if off > bytes.len() {
                        return Err(Error::Truncated);
                    }
                }
                Ok(Message::ReportV2 { records })
            }
            other => Err(Error::NotMld(other)),
        }
    }
}

/// One multicast address record to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub kind: u8,
    pub group: Ipv6Addr,
    pub sources: Vec<Ipv6Addr>,
}

impl Record {
    /// Octets on the wire.
    pub fn wire_len(&self) -> usize {
        RECORD_HEADER_LEN + 16 * self.sources.len()
    }
}

/// An MLDv2 report holding `records` (checksum left 0 for [`frame`]).
pub fn emit_report_v2(records: &[Record]) -> Vec<u8> {
    let mut m = Vec::with_capacity(
        V2_REPORT_HEADER_LEN + records.iter().map(Record::wire_len).sum::<usize>(),
    );
    m.extend_from_slice(&[TYPE_REPORT_V2, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&(records.len() as u16).to_be_bytes());
    for r in records {
        m.extend_from_slice(&[r.kind, 0]);
        m.extend_from_slice(&(r.sources.len() as u16).to_be_bytes());
        m.extend_from_slice(&r.group.octets());
        for s in &r.sources {
            m.extend_from_slice(&s.octets());
        }
    }
    m
}

/// An MLDv1 Report or Done for `group` (RFC 2710 3).
pub fn emit_v1(ty: u8, group: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![ty, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&group.octets());
    m
}

/// The Ethernet address of an IPv6 multicast group (RFC 2464 7).
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// A complete frame: Ethernet, IPv6 with hop limit 1, the Hop-by-Hop
/// header with Router Alert, and `message` with its checksum filled in.
pub fn frame(src_mac: Mac, src: Ipv6Addr, dst: Ipv6Addr, mut message: Vec<u8>) -> Vec<u8> {
    if message.len() >= 4 {
        message[2] = 0;
        message[3] = 0;
        let sum = crate::hostio::checksum(src, dst, NEXT_ICMPV6, &message);
        message[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    let payload_len = HOP_BY_HOP_RA.len() + message.len();
    let mut f = Vec::with_capacity(ETH_LEN + IPV6_LEN + payload_len);
    f.extend_from_slice(&multicast_mac(dst));
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&0x86ddu16.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(payload_len as u16).to_be_bytes());
    f.extend_from_slice(&[NEXT_HOP_BY_HOP, HOP_LIMIT]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&HOP_BY_HOP_RA);
    f.extend_from_slice(&message);
    f
}

/// An MLD message found in an Ethernet frame: the IPv6 fields the checks
/// of RFC 3810 6.2 need, and the ICMPv6 message from its type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Mld<'a> {
    pub src_mac: Mac,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    pub router_alert: bool,
    /// The ICMPv6 checksum is right.
    pub checksum_ok: bool,
    pub message: &'a [u8],
}

/// Why a frame holds no MLD message we can look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not IPv6, or IPv6 carrying something other than MLD.
    NotMld,
    /// Claims to be IPv6 with MLD but the headers do not add up.
    Malformed,
}

impl<'a> Ipv6Mld<'a> {
    /// Parses Ethernet, IPv6, an optional Hop-by-Hop header (noting a
    /// Router Alert) and an ICMPv6 message of an MLD type.
    pub fn parse(frame: &'a [u8]) -> Result<Self, FrameError> {
        if frame.len() < ETH_LEN + IPV6_LEN || frame[12..14] != [0x86, 0xdd] {
            return Err(FrameError::NotMld);
        }
        let ip = &frame[ETH_LEN..];
        if ip[0] >> 4 != 6 {
            return Err(FrameError::NotMld);
        }
        let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        let Some(payload) = ip.get(IPV6_LEN..IPV6_LEN + payload_len) else {
            return Err(FrameError::Malformed);
        };
        let mut next = ip[6];
        let mut off = 0;
        let mut router_alert = false;
        if next == NEXT_HOP_BY_HOP {
            let Some(h) = payload.get(..2) else {
                return Err(FrameError::Malformed);
            };
            let len = 8 * (usize::from(h[1]) + 1);
            let Some(opts) = payload.get(2..len) else {
                return Err(FrameError::Malformed);
            };
            router_alert = has_mld_router_alert(opts).ok_or(FrameError::Malformed)?;
            next = h[0];
            off = len;
        }
        if next != NEXT_ICMPV6 {
            return Err(FrameError::NotMld);
        }
        let message = &payload[off..];
        match message.first() {
            Some(&(TYPE_QUERY | TYPE_REPORT_V1 | TYPE_DONE_V1 | TYPE_REPORT_V2)) => {}
            _ => return Err(FrameError::NotMld),
        }
        if message.len() < 4 {
            return Err(FrameError::Malformed);
        }
        let addr = |at: usize| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&ip[at..at + 16]);
            Ipv6Addr::from(a)
        };
        let (src, dst) = (addr(8), addr(24));
        let mut src_mac = [0u8; 6];
        src_mac.copy_from_slice(&frame[6..12]);
        Ok(Ipv6Mld {
            src_mac,
            src,
            dst,
            hop_limit: ip[7],
            router_alert,
            checksum_ok: crate::hostio::checksum(src, dst, NEXT_ICMPV6, message) == 0,
            message,
        })
    }
}

/// Walks Hop-by-Hop options: `Some(true)` with a Router Alert of value 0
/// (MLD), `None` when an option runs past the header.
fn has_mld_router_alert(opts: &[u8]) -> Option<bool> {
    let mut found = false;
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => i += 1, // Pad1
            ty => {
                let len = usize::from(*opts.get(i + 1)?);
                let data = opts.get(i + 2..i + 2 + len)?;
                if ty == OPT_ROUTER_ALERT && data == [0, 0] {
                    found = true;
                }
                i += 2 + len;
            }
        }
    }
    Some(found)
}
