//! The parts of the DNS wire format the forwarder needs beyond what
//! [`crate::dns`] exports: a generic record walker (every section, every
//! type, names skipped without being followed), the position of every TTL
//! field and of the EDNS0 OPT record, and builders for the replies the
//! forwarder writes itself.
//!
//! `crate::dns` keeps its name and record readers private (they are shaped
//! for the AAAA resolver), so the small walker here is separate; the header
//! view ([`Packet`]), the constants and the flag bits are shared.

use std::ops::Range;

use crate::dns::{Packet, CLASS_IN, FLAG_QR, FLAG_RA, FLAG_RD, HEADER_LEN, MAX_LABEL_LEN};
use crate::dns::{MAX_NAME_LEN, TYPE_OPT};

/// RR type of a start-of-authority record (RFC 1035 3.3.13).
pub const TYPE_SOA: u16 = 6;
/// The DO ("DNSSEC OK") bit in the flags half of the OPT TTL (RFC 3225).
pub const EDNS_DO: u16 = 0x8000;
/// Header flag: authenticated data (RFC 4035 3.2.3).
pub const FLAG_AD: u16 = 0x0020;
/// Header flag: checking disabled (RFC 4035 3.2.2).
pub const FLAG_CD: u16 = 0x0010;

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
    /// The question: name, type and class.
    pub question: Range<usize>,
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
        question,
        qclass,
        records,
        answers,
        authorities,
        end: pos,
        opt,
    })
}

/// Appends an OPT record without options.
pub fn push_opt(out: &mut Vec<u8>, udp_size: u16, ext_rcode: u8, flags: u16) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&udp_size.to_be_bytes());
    out.push(ext_rcode);
    out.push(0); // version
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
}

/// A header followed by the question (if any) and an OPT record (if
/// `opt` is `Some((udp_size, ext_rcode, flags))`); no other records.
pub fn build(id: u16, flags: u16, question: Option<&[u8]>, opt: Option<(u16, u8, u16)>) -> Vec<u8> {
    let mut msg = vec![0; HEADER_LEN];
    {
        let mut header = Packet::new_unchecked(&mut msg[..]);
        header.set_id(id);
        header.set_flags(flags);
        header.set_question_count(u16::from(question.is_some()));
        header.set_additional_count(u16::from(opt.is_some()));
    }
    if let Some(question) = question {
        msg.extend_from_slice(question);
    }
    if let Some((udp_size, ext_rcode, flags)) = opt {
        push_opt(&mut msg, udp_size, ext_rcode, flags);
    }
    msg
}

/// The header flags of a reply to a query with `query_flags`: QR, the
/// query's opcode and RD, RA, and `rcode` (low 4 bits).
pub fn reply_flags(query_flags: u16, rcode: u16) -> u16 {
    FLAG_QR | (query_flags & (0x7800 | FLAG_RD)) | FLAG_RA | (rcode & 0x000f)
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
