//! The forwarder's two kinds of DNS message handling.
//!
//! * What it reads for its meaning or writes itself goes through
//!   hickory-proto: the question and OPT record of client queries
//!   ([`parse_query`]), and the queries it forwards and the replies it
//!   makes up ([`build`]).
//! * Answers it relays or replays from the cache stay bytes: a zero-copy
//!   walker ([`parse`]) frames every record of every section without
//!   decoding RDATA or following names, and notes where each TTL and the
//!   OPT record sit so the answer can be patched in place (id, question
//!   spelling, TTLs, OPT). ARCHITECTURE.md (Decisions) says why: hickory
//!   would cost 10 to 45 times as much there, and would reject or re-encode
//!   records the forwarder has no need to understand.

use std::ops::Range;

use hickory_proto::op::{self as hop, Edns, Header, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::dns::{Packet, CLASS_IN, HEADER_LEN, MAX_LABEL_LEN};
use crate::dns::{MAX_NAME_LEN, TYPE_OPT};

/// RR type of a start-of-authority record (RFC 1035 3.3.13).
pub const TYPE_SOA: u16 = 6;
/// The DO ("DNSSEC OK") bit in the flags half of the OPT TTL (RFC 3225).
#[cfg(test)]
pub const EDNS_DO: u16 = 0x8000;

/// Why a message does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than a header.
    Short,
    /// The question count is not 1 or the question does not parse.
    Question,
    /// A resource record runs past the end or has a bad name.
    Record,
    /// More than one OPT record, or one not owned by the root.
    Opt,
}

/// One resource record, located in the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rr {
    pub rtype: u16,
    pub class: u16,
    /// As received; see [`Rr::ttl`].
    pub raw_ttl: u32,
    /// Offset of the 4-octet TTL field.
    pub ttl_at: usize,
    pub rdata: Range<usize>,
}

impl Rr {
    /// RFC 2181 8: a TTL with the top bit set is treated as zero.
    pub fn ttl(&self) -> u32 {
        if self.raw_ttl > i32::MAX as u32 {
            0
        } else {
            self.raw_ttl
        }
    }
}

/// Where the OPT record sits and what it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opt {
    /// Byte range of the whole record.
    pub start: usize,
    pub end: usize,
    /// Additional-section records before it.
    pub index_in_additional: u16,
    pub udp_size: u16,
    /// Upper 8 bits of the 12-bit response code.
    pub ext_rcode: u8,
    pub version: u8,
    /// The 16 flag bits (DO is the top one).
    pub flags: u16,
}

/// A message whose header, question and every record frame correctly.
#[derive(Clone, Debug)]
pub struct Message {
    pub flags: u16,
    pub qclass: u16,
    /// Records of the answer, authority and additional sections, in order.
    pub records: Vec<Rr>,
    pub answers: usize,
    pub authorities: usize,
    /// End of the last record; anything after it is ignored.
    pub end: usize,
    pub opt: Option<Opt>,
}

impl Message {
    pub fn answer_records(&self) -> &[Rr] {
        &self.records[..self.answers]
    }

    pub fn authority_records(&self) -> &[Rr] {
        &self.records[self.answers..self.answers + self.authorities]
    }

    /// The 12-bit response code (header bits and the OPT extension).
    pub fn rcode(&self) -> u16 {
        let ext = self.opt.map_or(0, |opt| u16::from(opt.ext_rcode));
        (ext << 4) | (self.flags & 0x000f)
    }
}

fn read_u16(msg: &[u8], at: usize) -> Result<u16, WireError> {
    match msg.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(WireError::Record),
    }
}

fn read_u32(msg: &[u8], at: usize) -> Result<u32, WireError> {
    match msg.get(at..at + 4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(WireError::Record),
    }
}

/// The end of an uncompressed name at `pos` (plain labels, root octet
/// included, at most 255 octets): the form a question takes.
pub fn plain_name_end(msg: &[u8], pos: usize) -> Option<usize> {
    let mut at = pos;
    loop {
        let len = usize::from(*msg.get(at)?);
        if len > MAX_LABEL_LEN {
            // Compression pointers and extended label types: a question
            // name has nothing earlier to point at.
            return None;
        }
        at += 1 + len;
        if at - pos > MAX_NAME_LEN || at > msg.len() {
            return None;
        }
        if len == 0 {
            return Some(at);
        }
    }
}

/// The end of a possibly compressed name at `pos` in place (a pointer ends
/// it). Pointers are checked to point backwards into the message body but
/// not followed: the forwarder only needs to step over names.
fn skip_name(msg: &[u8], pos: usize) -> Result<usize, WireError> {
    let mut at = pos;
    loop {
        let len = *msg.get(at).ok_or(WireError::Record)?;
        match len & 0xc0 {
            0x00 => {
                at += 1 + usize::from(len);
                if at - pos > MAX_NAME_LEN || at > msg.len() {
                    return Err(WireError::Record);
                }
                if len == 0 {
                    return Ok(at);
                }
            }
            0xc0 => {
                let low = *msg.get(at + 1).ok_or(WireError::Record)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                if target < HEADER_LEN || target >= at {
                    return Err(WireError::Record);
                }
                return Ok(at + 2);
            }
            _ => return Err(WireError::Record),
        }
    }
}

/// The question of a message with exactly one: its byte range (name, type,
/// class), type and class.
pub fn question(msg: &[u8]) -> Result<(Range<usize>, u16, u16), WireError> {
    let header = Packet::new_checked(msg).map_err(|_| WireError::Short)?;
    if header.question_count() != 1 {
        return Err(WireError::Question);
    }
    let name_end = plain_name_end(msg, HEADER_LEN).ok_or(WireError::Question)?;
    let qtype = read_u16(msg, name_end).map_err(|_| WireError::Question)?;
    let qclass = read_u16(msg, name_end + 2).map_err(|_| WireError::Question)?;
    Ok((HEADER_LEN..name_end + 4, qtype, qclass))
}

/// Parses a whole message with one question. Every counted record must
/// frame; bytes after the last one are ignored.
pub fn parse(msg: &[u8]) -> Result<Message, WireError> {
    let header = Packet::new_checked(msg).map_err(|_| WireError::Short)?;
    let (question, _, qclass) = question(msg)?;
    let answers = usize::from(header.answer_count());
    let authorities = usize::from(header.authority_count());
    let additional = usize::from(header.additional_count());
    let total = answers + authorities + additional;
    // Every record takes at least 11 octets: a count beyond what the
    // message can hold is rejected before anything is allocated for it.
    if total > (msg.len() - question.end) / 11 {
        return Err(WireError::Record);
    }
    let mut records = Vec::with_capacity(total);
    let mut opt = None;
    let mut pos = question.end;
    for index in 0..total {
        let start = pos;
        let fixed = skip_name(msg, pos)?;
        let rtype = read_u16(msg, fixed)?;
        let class = read_u16(msg, fixed + 2)?;
        let raw_ttl = read_u32(msg, fixed + 4)?;
        let rdlen = usize::from(read_u16(msg, fixed + 8)?);
        let rdata = fixed + 10..fixed + 10 + rdlen;
        if rdata.end > msg.len() {
            return Err(WireError::Record);
        }
        pos = rdata.end;
        if rtype == TYPE_OPT && index >= answers + authorities {
            if opt.is_some() || msg[start] != 0 {
                return Err(WireError::Opt);
            }
            opt = Some(Opt {
                start,
                end: pos,
                index_in_additional: (index - answers - authorities) as u16,
                udp_size: class,
                ext_rcode: (raw_ttl >> 24) as u8,
                version: (raw_ttl >> 16) as u8,
                flags: raw_ttl as u16,
            });
        }
        records.push(Rr {
            rtype,
            class,
            raw_ttl,
            ttl_at: fixed + 4,
            rdata,
        });
    }
    Ok(Message {
        flags: header.flags(),
        qclass,
        records,
        answers,
        authorities,
        end: pos,
        opt,
    })
}

/// A client query as hickory read it.
#[derive(Clone, Debug)]
pub struct ParsedQuery {
    pub question: Query,
    /// The question's bytes as sent (name, type, class).
    pub wire: Vec<u8>,
    pub edns: Option<Edns>,
}

/// Reads a query: the walker ([`parse`]) frames it (one uncompressed
/// question, every record, at most one OPT record, owned by the root),
/// then hickory decodes the question and the OPT record, the two parts
/// the forwarder uses. Names elsewhere are stepped over, never followed:
/// hickory's decoder would follow every compression pointer chain to its
/// end, thousands of hops per name in a crafted 4 KiB query.
pub fn parse_query(msg: &[u8]) -> Result<ParsedQuery, WireError> {
    let framed = parse(msg)?;
    let mut decoder = decoder_at(msg, HEADER_LEN).ok_or(WireError::Short)?;
    let question = Query::read(&mut decoder).map_err(|_| WireError::Question)?;
    let wire = msg[HEADER_LEN..decoder.index()].to_vec();
    let edns = match framed.opt {
        Some(opt) => {
            let mut decoder = decoder_at(msg, opt.start).ok_or(WireError::Opt)?;
            let record = Record::read(&mut decoder).map_err(|_| WireError::Opt)?;
            // Edns::from panics on a record that is not OPT; the walker
            // found type OPT at this offset, this says so again.
            if record.record_type() != RecordType::OPT {
                return Err(WireError::Opt);
            }
            Some(Edns::from(&record))
        }
        None => None,
    };
    Ok(ParsedQuery {
        question,
        wire,
        edns,
    })
}

/// A hickory decoder positioned at `at` of `msg`.
fn decoder_at(msg: &[u8], at: usize) -> Option<BinDecoder<'_>> {
    let mut decoder = BinDecoder::new(msg);
    decoder.read_slice(at).ok()?;
    Some(decoder)
}

/// A message of our own: `header`, the question if any, and an OPT
/// record if `edns` is `Some((udp_size, do_bit))`. The header's extended
/// response code goes into the OPT.
pub fn build(header: &Header, question: Option<&Query>, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut msg = hop::Message::new();
    msg.set_header(*header);
    if let Some(question) = question {
        msg.add_query(question.clone());
    }
    if let Some((udp_size, do_bit)) = edns {
        let mut opt = Edns::new();
        opt.set_max_payload(udp_size).set_dnssec_ok(do_bit);
        msg.set_edns(opt);
    }
    // A header, a question that was read from the wire and an empty OPT
    // always encode; an empty reply would be dropped by the client anyway.
    msg.to_vec().unwrap_or_default()
}

/// The header of a reply to a query with header `query`: QR, the query's
/// id, opcode and RD, RA, and `rcode`.
pub fn reply_header(query: &Header, rcode: ResponseCode) -> Header {
    let mut header = Header::new();
    header
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(rcode);
    header
}

/// Whether two questions (name, type, class) are the same, the name
/// compared case-insensitively (RFC 4343).
pub fn same_question(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.len() >= 4
        && a[..a.len() - 4].eq_ignore_ascii_case(&b[..b.len() - 4])
        && a[a.len() - 4..] == b[b.len() - 4..]
}

/// The question class the forwarder caches for; others are forwarded but
/// not cached (CHAOS queries and the like are rare and odd).
pub const CACHED_CLASS: u16 = CLASS_IN;
