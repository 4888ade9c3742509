//! MAP-E rule arithmetic (RFC 7597 section 5 and 6): from a Basic Mapping
//! Rule and the end-user IPv6 prefix (a delegated prefix, or the WAN /64 on
//! a line without PD), the CE's IPv4 address or prefix, its PSID, its port
//! set and its IPv6 address; and the reverse a BR or a CE with FMR needs:
//! which CE owns an IPv4 address and port.
//!
//! Pure integer arithmetic, no tables: the dataplane may call any of it per
//! packet (every [`PortSet`] query is a few shifts). `jp_rules` holds the
//! built-in Japanese rule tables matched on the end-user prefix.

pub mod jp_rules;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv6 prefix with no bits set past its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix6 {
    addr: Ipv6Addr,
    len: u8,
}

/// An IPv4 prefix with no bits set past its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix4 {
    addr: Ipv4Addr,
    len: u8,
}

fn mask128(len: u8) -> u128 {
    match len {
        0 => 0,
        l => u128::MAX << (128 - u32::from(l.min(128))),
    }
}

fn mask32(len: u8) -> u32 {
    match len {
        0 => 0,
        l => u32::MAX << (32 - u32::from(l.min(32))),
    }
}

impl Prefix6 {
    /// Refuses a length over 128 and bits set past the length.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, String> {
        if len > 128 {
            return Err(format!("/{len} is longer than 128 bits"));
        }
        if u128::from(addr) & !mask128(len) != 0 {
            return Err(format!(
                "{addr}/{len} has bits set past the prefix length (expected {}/{len})",
                Ipv6Addr::from(u128::from(addr) & mask128(len))
            ));
        }
        Ok(Self { addr, len })
    }

    /// The prefix of `len` bits holding `addr` (host bits cleared).
    pub fn truncate(addr: Ipv6Addr, len: u8) -> Self {
        let len = len.min(128);
        Self {
            addr: Ipv6Addr::from(u128::from(addr) & mask128(len)),
            len,
        }
    }

    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether the address lies inside this prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & mask128(self.len) == u128::from(self.addr)
    }
}

impl Prefix4 {
    /// Refuses a length over 32 and bits set past the length.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self, String> {
        if len > 32 {
            return Err(format!("/{len} is longer than 32 bits"));
        }
        if u32::from(addr) & !mask32(len) != 0 {
            return Err(format!(
                "{addr}/{len} has bits set past the prefix length (expected {}/{len})",
                Ipv4Addr::from(u32::from(addr) & mask32(len))
            ));
        }
        Ok(Self { addr, len })
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask32(self.len) == u32::from(self.addr)
    }
}

impl fmt::Display for Prefix6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl fmt::Display for Prefix4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn split_prefix(s: &str) -> Result<(&str, u8), String> {
    let (addr, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} has no prefix length"))?;
    let len = len
        .parse::<u8>()
        .map_err(|_| format!("{s:?} has no valid prefix length"))?;
    Ok((addr, len))
}

impl FromStr for Prefix6 {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = split_prefix(s)?;
        let addr = addr
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("{s:?} is not an IPv6 prefix"))?;
        Self::new(addr, len)
    }
}

impl FromStr for Prefix4 {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = split_prefix(s)?;
        let addr = addr
            .parse::<Ipv4Addr>()
            .map_err(|_| format!("{s:?} is not an IPv4 prefix"))?;
        Self::new(addr, len)
    }
}

/// Layout of the CE's interface identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IidFormat {
    /// draft-ietf-softwire-map-03, what the Japanese VNEs' BRs expect:
    /// `0x00 | IPv4 (32) | PSID (16, right-aligned) | 0x00`.
    #[default]
    Legacy,
    /// RFC 7597 section 6: `0x0000 | IPv4 (32) | PSID (16, right-aligned)`.
    Rfc7597,
}

impl IidFormat {
    /// The 64-bit interface identifier for an IPv4 address (a prefix's
    /// network address, i.e. right-padded with zeros) and PSID (0 when the
    /// address is not shared).
    pub fn iid(self, ipv4: Ipv4Addr, psid: u16) -> u64 {
        let v4 = u64::from(u32::from(ipv4));
        match self {
            Self::Legacy => (v4 << 24) | (u64::from(psid) << 8),
            Self::Rfc7597 => (v4 << 16) | u64::from(psid),
        }
    }
}

/// Why a rule is inconsistent. The messages name the numbers involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    /// More than [`Rule::MAX_EA_LENGTH`] EA bits.
    EaTooLong { ea_length: u8 },
    /// Rule IPv6 prefix + EA bits pass /64: the end-user prefix would
    /// leave no room for the 64-bit interface identifier.
    EndUserPastSlash64 { ipv6_len: u8, ea_length: u8 },
    /// More PSID bits (EA bits beyond the IPv4 suffix) than a port has.
    PsidTooLong { psid_length: u8 },
    /// The PSID offset must leave a 16-bit port room for the PSID.
    OffsetTooLarge { psid_offset: u8, psid_length: u8 },
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::EaTooLong { ea_length } => write!(
                f,
                "ea_length {ea_length} is more than {} bits (RFC 7597 section 5.2)",
                Rule::MAX_EA_LENGTH
            ),
            Self::EndUserPastSlash64 {
                ipv6_len,
                ea_length,
            } => write!(
                f,
                "the rule IPv6 prefix /{ipv6_len} with ea_length {ea_length} makes a /{} \
                 end-user prefix, longer than /64",
                u16::from(ipv6_len) + u16::from(ea_length)
            ),
            Self::PsidTooLong { psid_length } => write!(
                f,
                "ea_length minus the IPv4 suffix leaves a {psid_length}-bit PSID, more than 16"
            ),
            Self::OffsetTooLarge {
                psid_offset,
                psid_length,
            } => write!(
                f,
                "psid_offset {psid_offset} with a {psid_length}-bit PSID does not fit a \
                 16-bit port (expected psid_offset + PSID length <= 16 and psid_offset <= 15)"
            ),
        }
    }
}

impl std::error::Error for RuleError {}

/// Why an end-user prefix cannot be mapped under a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapError {
    /// The prefix is not inside the rule IPv6 prefix.
    NotInRule { end_user: Prefix6, rule: Prefix6 },
    /// The prefix is shorter than rule prefix + EA bits: some EA bits are
    /// not the CE's.
    TooShort { end_user: Prefix6, needed: u8 },
    /// Longer than /64: no room for the interface identifier.
    TooLong { end_user: Prefix6 },
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInRule { end_user, rule } => {
                write!(f, "{end_user} is not inside the rule IPv6 prefix {rule}")
            }
            Self::TooShort { end_user, needed } => write!(
                f,
                "{end_user} is shorter than the rule needs (/{needed}: rule prefix + EA bits)"
            ),
            Self::TooLong { end_user } => {
                write!(f, "{end_user} is longer than /64")
            }
        }
    }
}

impl std::error::Error for MapError {}

/// A validated MAP Basic (or Forwarding) Mapping Rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    ipv6_prefix: Prefix6,
    ipv4_prefix: Prefix4,
    ea_length: u8,
    psid_offset: u8,
    /// Derived: EA bits past the IPv4 suffix (k).
    psid_length: u8,
}

impl Rule {
    /// RFC 7597 section 5.2: 0..=48 EA bits.
    pub const MAX_EA_LENGTH: u8 = 48;

    pub fn new(
        ipv6_prefix: Prefix6,
        ipv4_prefix: Prefix4,
        ea_length: u8,
        psid_offset: u8,
    ) -> Result<Self, RuleError> {
        if ea_length > Self::MAX_EA_LENGTH {
            return Err(RuleError::EaTooLong { ea_length });
        }
        if u16::from(ipv6_prefix.len) + u16::from(ea_length) > 64 {
            return Err(RuleError::EndUserPastSlash64 {
                ipv6_len: ipv6_prefix.len,
                ea_length,
            });
        }
        let suffix = 32 - ipv4_prefix.len;
        let psid_length = ea_length.saturating_sub(suffix);
        if psid_length > 16 {
            return Err(RuleError::PsidTooLong { psid_length });
        }
        if psid_offset > 15 || psid_offset + psid_length > 16 {
            return Err(RuleError::OffsetTooLarge {
                psid_offset,
                psid_length,
            });
        }
        Ok(Self {
            ipv6_prefix,
            ipv4_prefix,
            ea_length,
            psid_offset,
            psid_length,
        })
    }

    pub fn ipv6_prefix(&self) -> Prefix6 {
        self.ipv6_prefix
    }

    pub fn ipv4_prefix(&self) -> Prefix4 {
        self.ipv4_prefix
    }

    pub fn ea_length(&self) -> u8 {
        self.ea_length
    }

    pub fn psid_offset(&self) -> u8 {
        self.psid_offset
    }

    /// k: the EA bits past the IPv4 suffix; 0 when the CE gets a whole
    /// address or a prefix.
    pub fn psid_length(&self) -> u8 {
        self.psid_length
    }

    /// Bits of the IPv4 address the rule leaves to the EA bits (r).
    fn suffix_len(&self) -> u8 {
        32 - self.ipv4_prefix.len
    }

    /// The shortest end-user prefix the rule can map: rule prefix + EA bits.
    pub fn end_user_len(&self) -> u8 {
        self.ipv6_prefix.len + self.ea_length
    }

    /// Whether some CE under this rule can own `port`: not port 0, and not
    /// in the range with A = 0 that RFC 7597 5.1 gives to no CE (0..2^(16-a))
    /// when the address is shared and a > 0. For a port forward checked
    /// before the PSID is known.
    pub fn port_possible(&self, port: u16) -> bool {
        port != 0
            && (self.psid_length == 0
                || self.psid_offset == 0
                || port >> (16 - self.psid_offset) != 0)
    }

    /// The EA bits of an end-user prefix.
    fn ea_bits(&self, end_user: &Prefix6) -> u64 {
        if self.ea_length == 0 {
            return 0;
        }
        let shift = 128 - u32::from(self.end_user_len());
        ((u128::from(end_user.addr) >> shift) as u64) & ((1u64 << self.ea_length) - 1)
    }

    /// The CE's IPv4 address (or prefix network), prefix length and PSID
    /// from its EA bits.
    fn split_ea(&self, ea: u64) -> (Ipv4Addr, u8, u16) {
        let r = self.suffix_len();
        let o = self.ea_length;
        let base = u32::from(self.ipv4_prefix.addr);
        if o >= r {
            let k = o - r;
            let suffix = (ea >> k) as u32; // r <= 32 bits
            let psid = (ea & ((1u64 << k) - 1)) as u16;
            (Ipv4Addr::from(base | suffix), 32, psid)
        } else {
            // An IPv4 prefix: the EA bits are its leading suffix bits.
            let suffix = (ea << (r - o)) as u32;
            (Ipv4Addr::from(base | suffix), self.ipv4_prefix.len + o, 0)
        }
    }

    /// The CE's mapping from its end-user prefix (a delegated prefix, or the
    /// WAN /64 on a line without PD).
    pub fn map(&self, end_user: Prefix6) -> Result<Mapping, MapError> {
        if !self.ipv6_prefix.contains(end_user.addr) {
            return Err(MapError::NotInRule {
                end_user,
                rule: self.ipv6_prefix,
            });
        }
        if end_user.len < self.end_user_len() {
            return Err(MapError::TooShort {
                end_user,
                needed: self.end_user_len(),
            });
        }
        if end_user.len > 64 {
            return Err(MapError::TooLong { end_user });
        }
        let ea = self.ea_bits(&end_user);
        let (ipv4, ipv4_len, psid) = self.split_ea(ea);
        Ok(Mapping {
            end_user,
            ea_bits: ea,
            ipv4,
            ipv4_len,
            ports: PortSet::new(self.psid_offset, self.psid_length, psid),
        })
    }

    /// The PSID a destination port carries under this rule; `None` for a
    /// port no CE owns (A = 0 with a > 0). 0 when addresses are not shared.
    pub fn psid_of_port(&self, port: u16) -> Option<u16> {
        let (a, k) = (self.psid_offset, self.psid_length);
        if k == 0 {
            return Some(0);
        }
        if a > 0 && port >> (16 - a) == 0 {
            return None;
        }
        let m = 16 - a - k;
        Some((port >> m) & (((1u32 << k) - 1) as u16))
    }

    /// The end-user prefix (rule prefix + EA bits, RFC 7597 5.3) of the CE
    /// that owns `ipv4` and `port` under this rule; `None` when the address
    /// is outside the rule IPv4 prefix or no CE owns the port.
    pub fn owner(&self, ipv4: Ipv4Addr, port: u16) -> Option<Prefix6> {
        if !self.ipv4_prefix.contains(ipv4) {
            return None;
        }
        let r = self.suffix_len();
        let o = self.ea_length;
        let suffix = u64::from(u32::from(ipv4) & !mask32(self.ipv4_prefix.len));
        let ea = if o >= r {
            let k = o - r;
            (suffix << k) | u64::from(self.psid_of_port(port)?)
        } else {
            suffix >> (r - o)
        };
        let len = self.end_user_len();
        let bits = if o == 0 {
            0
        } else {
            u128::from(ea) << (128 - u32::from(len))
        };
        Some(Prefix6 {
            addr: Ipv6Addr::from(u128::from(self.ipv6_prefix.addr) | bits),
            len,
        })
    }

    /// The MAP IPv6 address of the CE that owns `ipv4` and `port`: where a
    /// CE sends CE-to-CE traffic under a Forwarding Mapping Rule, and what
    /// the source of a decapsulated packet from a peer CE must be (RFC 7597
    /// 8.1). Subnet 0 of the rule prefix + EA bits.
    pub fn ce_address_for(&self, ipv4: Ipv4Addr, port: u16, iid: IidFormat) -> Option<Ipv6Addr> {
        let end_user = self.owner(ipv4, port)?;
        self.map(end_user).ok().map(|m| m.ce_address(iid))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ea_length {} psid_offset {}",
            self.ipv6_prefix, self.ipv4_prefix, self.ea_length, self.psid_offset
        )
    }
}

/// What a CE gets under a rule from its end-user prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub end_user: Prefix6,
    pub ea_bits: u64,
    /// The CE's IPv4 address, or its prefix's network address when
    /// `ipv4_len` < 32.
    pub ipv4: Ipv4Addr,
    /// 32 for a whole or shared address; shorter when the EA bits do not
    /// reach the end of the address (an IPv4 prefix for the CE).
    pub ipv4_len: u8,
    pub ports: PortSet,
}

impl Mapping {
    pub fn psid(&self) -> u16 {
        self.ports.psid
    }

    /// Whether the IPv4 address is shared with other CEs (a PSID exists).
    pub fn is_shared(&self) -> bool {
        self.ports.psid_len > 0
    }

    /// The CE's MAP IPv6 address: subnet 0 of the end-user prefix (bits
    /// from its length to 64 are zero) with the interface identifier.
    pub fn ce_address(&self, iid: IidFormat) -> Ipv6Addr {
        let upper = u128::from(self.end_user.addr) & mask128(self.end_user.len.min(64));
        Ipv6Addr::from(upper | u128::from(iid.iid(self.ipv4, self.ports.psid)))
    }
}

/// The ports one CE may use: for offset a, PSID length k and m = 16 - a - k,
/// `(A << (16 - a)) | (PSID << m) | j` with A in 1..2^a (A = 0 excluded,
/// RFC 7597 5.1; A = 0 only when a = 0) and j in 0..2^m. Indexed densely
/// 0..len in port order, so an allocator can treat the whole set as one
/// array. With k = 0 the address is not shared and every port 0..=65535 is
/// in the set (index = port); the allocator decides about system ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortSet {
    psid_offset: u8,
    psid_len: u8,
    psid: u16,
}

impl PortSet {
    /// `psid` is masked to `psid_len` bits; `psid_offset + psid_len` must be
    /// at most 16 (a [`Rule`] guarantees it; larger values are clamped).
    pub fn new(psid_offset: u8, psid_len: u8, psid: u16) -> Self {
        let psid_len = psid_len.min(16);
        let psid_offset = psid_offset.min(16 - psid_len);
        let psid = if psid_len == 0 {
            0
        } else {
            psid & (((1u32 << psid_len) - 1) as u16)
        };
        Self {
            psid_offset,
            psid_len,
            psid,
        }
    }

    pub fn psid(&self) -> u16 {
        self.psid
    }

    pub fn psid_len(&self) -> u8 {
        self.psid_len
    }

    pub fn psid_offset(&self) -> u8 {
        self.psid_offset
    }

    /// Whether every port is in the set (no PSID).
    pub fn is_unrestricted(&self) -> bool {
        self.psid_len == 0
    }

    /// m: bits of j, the port's position inside a run.
    fn m(&self) -> u8 {
        16 - self.psid_offset - self.psid_len
    }

    /// Ports in one contiguous run.
    pub fn run_len(&self) -> u32 {
        if self.is_unrestricted() {
            1 << 16
        } else {
            1 << self.m()
        }
    }

    /// Number of runs: 2^a - 1 (2^0 = 1 when a = 0).
    pub fn run_count(&self) -> u32 {
        if self.is_unrestricted() || self.psid_offset == 0 {
            1
        } else {
            (1 << self.psid_offset) - 1
        }
    }

    /// Ports in the set.
    pub fn len(&self) -> u32 {
        self.run_count() * self.run_len()
    }

    /// Always false: a set has at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The lowest value of A (1, or 0 when a = 0).
    fn first_a(&self) -> u32 {
        u32::from(self.psid_offset > 0)
    }

    /// The port at dense index `index` (0..len), in ascending port order.
    pub fn port_at(&self, index: u32) -> Option<u16> {
        if index >= self.len() {
            return None;
        }
        if self.is_unrestricted() {
            return Some(index as u16);
        }
        let run = index >> self.m();
        let j = index & (self.run_len() - 1);
        Some(self.run_start(run) | j as u16)
    }

    /// First port of run `run` (0..run_count).
    fn run_start(&self, run: u32) -> u16 {
        let a = run + self.first_a();
        let shifted_a = if self.psid_offset == 0 {
            0
        } else {
            a << (16 - self.psid_offset)
        };
        (shifted_a | (u32::from(self.psid) << self.m())) as u16
    }

    /// The dense index of `port`, or `None` when it is not in the set.
    pub fn index_of(&self, port: u16) -> Option<u32> {
        if self.is_unrestricted() {
            return Some(u32::from(port));
        }
        let port = u32::from(port);
        let m = self.m();
        let psid = (port >> m) & ((1 << self.psid_len) - 1);
        if psid != u32::from(self.psid) {
            return None;
        }
        let a = if self.psid_offset == 0 {
            0
        } else {
            port >> (16 - self.psid_offset)
        };
        if self.psid_offset > 0 && a == 0 {
            return None;
        }
        let run = a - self.first_a();
        Some((run << m) | (port & ((1 << m) - 1)))
    }

    pub fn contains(&self, port: u16) -> bool {
        self.index_of(port).is_some()
    }

    /// The runs in ascending order, each as `(first, last)` inclusive.
    pub fn runs(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        (0..self.run_count()).map(move |run| {
            let first = if self.is_unrestricted() {
                0
            } else {
                self.run_start(run)
            };
            (first, (u32::from(first) + self.run_len() - 1) as u16)
        })
    }
}

#[cfg(test)]
mod tests;
