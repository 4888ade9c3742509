//! Value types of the configuration: addresses, prefixes, interface names,
//! CPU ids and the small keyword enums.
//!
//! Every type that is written as one YAML string validates itself in its
//! `Deserialize` impl, so that serde attaches the line:column of the
//! offending scalar to the refusal without any extra bookkeeping.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that could not be parsed or is not acceptable: what was found,
/// and what was expected instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    problem: String,
    expected: &'static str,
}

impl ValueError {
    pub(crate) fn new(problem: impl Into<String>, expected: &'static str) -> Self {
        Self {
            problem: problem.into(),
            expected,
        }
    }

    /// What was wrong with the value, e.g. `2001:db8::/48 is not a /64`.
    pub fn problem(&self) -> &str {
        &self.problem
    }

    /// What would have been accepted, e.g. `an IPv6 /64 prefix such as ...`.
    pub fn expected(&self) -> &'static str {
        self.expected
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (expected {})", self.problem, self.expected)
    }
}

impl std::error::Error for ValueError {}

/// Implements `Serialize` (via `Display`) and `Deserialize` (via `FromStr`,
/// with the type's `EXPECTED` text for type errors) for a string-like type.
macro_rules! serde_via_str {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str($crate::de::StrCheck::new(<$t>::EXPECTED, |s| {
                    s.parse::<$t>().map_err(|e| e.problem().to_owned())
                }))
            }
        }
    };
}

pub(crate) use serde_via_str;

// ---------------------------------------------------------------------------
// Interface names
// ---------------------------------------------------------------------------

/// A Linux network interface name, checked against the kernel's rules
/// (`dev_valid_name()`): 1..=15 bytes, no `/`, `:` or whitespace, and not
/// `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName(String);

impl IfName {
    /// IFNAMSIZ (16) minus the terminating NUL.
    pub const MAX_LEN: usize = 15;
    const EXPECTED: &'static str =
        "a Linux interface name of 1 to 15 bytes without '/', ':' or whitespace, such as enp1s0";

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IfName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let problem = if s.is_empty() {
            "an empty interface name".to_owned()
        } else if s.len() > Self::MAX_LEN {
            format!(
                "interface name {s:?} is {} bytes long, more than {}",
                s.len(),
                Self::MAX_LEN
            )
        } else if s == "." || s == ".." {
            format!("{s:?} is not a valid interface name")
        } else if let Some(c) = s
            .chars()
            .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
        {
            format!("interface name {s:?} contains {c:?}")
        } else {
            return Ok(Self(s.to_owned()));
        };
        Err(ValueError::new(problem, Self::EXPECTED))
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for IfName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for IfName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for IfName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

serde_via_str!(IfName);

// ---------------------------------------------------------------------------
// CIDR types
// ---------------------------------------------------------------------------

/// Splits `addr/len`; `None` when there is no `/`.
fn split_cidr(s: &str) -> Option<(&str, &str)> {
    s.split_once('/')
}

/// Parses the prefix length part of a CIDR, refusing signs and leading `+`
/// that `u8::from_str` would accept.
fn parse_len(len: &str, max: u8) -> Option<u8> {
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    len.parse::<u8>().ok().filter(|l| *l <= max)
}

/// An IPv4 address together with a prefix length, such as `192.168.2.1/24`.
/// The address may have host bits set (it usually is an interface address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Ipv4Cidr {
    const EXPECTED: &'static str = "an IPv4 address with prefix length such as 192.168.2.1/24";

    /// The netmask, e.g. 255.255.255.0 for a /24.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask32(self.len))
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & mask32(self.len))
    }

    /// The directed broadcast address (host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask32(self.len))
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: &Ipv4Addr) -> bool {
        u32::from(*ip) & mask32(self.len) == u32::from(self.network())
    }
}

fn mask32(len: u8) -> u32 {
    // `checked_shl` handles /0, where a plain shift by 32 would overflow.
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

impl FromStr for Ipv4Cidr {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let err = |problem: String| ValueError::new(problem, Self::EXPECTED);
        let (addr, len) =
            split_cidr(s).ok_or_else(|| err(format!("{s:?} has no prefix length")))?;
        let addr = addr
            .parse::<Ipv4Addr>()
            .map_err(|_| err(format!("{addr:?} is not an IPv4 address")))?;
        let len = parse_len(len, 32)
            .ok_or_else(|| err(format!("{len:?} is not a prefix length 0..=32")))?;
        Ok(Self { addr, len })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

serde_via_str!(Ipv4Cidr);

/// An IPv6 address together with a prefix length, such as
/// `2001:db8:0:100::2/64`. The address may have host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Cidr {
    pub addr: Ipv6Addr,
    pub len: u8,
}

impl Ipv6Cidr {
    const EXPECTED: &'static str =
        "an IPv6 address with prefix length such as 2001:db8:0:100::2/64";

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) & mask128(self.len))
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: &Ipv6Addr) -> bool {
        u128::from(*ip) & mask128(self.len) == u128::from(self.network())
    }
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl FromStr for Ipv6Cidr {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let err = |problem: String| ValueError::new(problem, Self::EXPECTED);
        let (addr, len) =
            split_cidr(s).ok_or_else(|| err(format!("{s:?} has no prefix length")))?;
        let addr = addr
            .parse::<Ipv6Addr>()
            .map_err(|_| err(format!("{addr:?} is not an IPv6 address")))?;
        let len = parse_len(len, 128)
            .ok_or_else(|| err(format!("{len:?} is not a prefix length 0..=128")))?;
        Ok(Self { addr, len })
    }
}

impl fmt::Display for Ipv6Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

serde_via_str!(Ipv6Cidr);

/// An IPv6 /64 prefix with no host bits set, such as `2001:db8:0:111::/64`:
/// the only prefix length that SLAAC on the LAN works with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Prefix64(Ipv6Addr);

impl Ipv6Prefix64 {
    const EXPECTED: &'static str = "an IPv6 /64 prefix such as 2001:db8:0:111::/64";

    /// Builds a prefix from its network address; refuses host bits.
    pub fn new(network: Ipv6Addr) -> Result<Self, ValueError> {
        format!("{network}/64").parse()
    }

    /// The network address (the prefix with all host bits zero).
    pub fn addr(&self) -> Ipv6Addr {
        self.0
    }

    /// Whether `ip` lies inside this /64.
    pub fn contains(&self, ip: &Ipv6Addr) -> bool {
        u128::from(*ip) >> 64 == u128::from(self.0) >> 64
    }

    /// The address in this prefix with the given 64-bit interface identifier,
    /// e.g. `with_interface_id(1)` is `prefix::1`.
    pub fn with_interface_id(&self, iid: u64) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.0) | u128::from(iid))
    }
}

impl FromStr for Ipv6Prefix64 {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let err = |problem: String| ValueError::new(problem, Self::EXPECTED);
        let cidr = s.parse::<Ipv6Cidr>().map_err(|e| err(e.problem))?;
        if cidr.len != 64 {
            return Err(err(format!("{s} is not a /64")));
        }
        if cidr.network() != cidr.addr {
            return Err(err(format!(
                "{s} has host bits set (did you mean {}/64?)",
                cidr.network()
            )));
        }
        if let Some(what) = v6_special(&cidr.addr) {
            return Err(err(format!("{s} is a {what} prefix")));
        }
        Ok(Self(cidr.addr))
    }
}

impl fmt::Display for Ipv6Prefix64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/64", self.0)
    }
}

serde_via_str!(Ipv6Prefix64);

/// Names the class of `ip` when it cannot be a (routable) unicast address of
/// an interface or tunnel end point.
pub(crate) fn v6_special(ip: &Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if is_v6_link_local(ip) {
        Some("link-local")
    } else if ip.to_ipv4_mapped().is_some() {
        Some("IPv4-mapped")
    } else {
        None
    }
}

/// fe80::/10 (`Ipv6Addr::is_unicast_link_local` needs a newer Rust than the
/// workspace's minimum).
pub(crate) fn is_v6_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

// ---------------------------------------------------------------------------
// AFTR
// ---------------------------------------------------------------------------

/// The DS-Lite AFTR (tunnel concentrator) the B4 sends IPv4-in-IPv6 to.
///
/// Where the AFTR (the DS-Lite tunnel's far end) comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Aftr {
    /// A fixed address (also what the `transix-east`/`transix-west`
    /// presets stand for).
    Address(Ipv6Addr),
    /// A DNS name (e.g. `gw.transix.jp`), resolved with an AAAA query to the
    /// DNS servers learned on the WAN and re-resolved when its TTL runs out.
    Name(String),
    /// The AFTR-Name option (64, RFC 6334) of the DHCPv6 reply, then resolved.
    Dhcpv6,
}

impl Aftr {
    const EXPECTED: &'static str = "an IPv6 address such as 2404:8e00::feed:100, a DNS name \
         such as gw.transix.jp, transix-east, transix-west or dhcpv6";

    /// transix's documented AFTR addresses (what gw.transix.jp resolves to
    /// in NTT East and NTT West).
    pub const TRANSIX_EAST: Ipv6Addr = Ipv6Addr::new(0x2404, 0x8e00, 0, 0, 0, 0, 0xfeed, 0x100);
    pub const TRANSIX_WEST: Ipv6Addr = Ipv6Addr::new(0x2404, 0x8e01, 0, 0, 0, 0, 0xfeed, 0x100);
}

/// A DNS name as RFC 1035 and 1123 allow for host names: labels of 1 to 63
/// letters, digits, hyphens (and underscores, seen in the wild), 253
/// characters at most, at least two labels; a trailing dot is dropped.
pub(crate) fn check_dns_name(s: &str) -> Result<String, String> {
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.is_empty() || name.len() > 253 {
        return Err(format!("{s:?} is not a DNS name of 1 to 253 characters"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(format!(
            "{s:?} is a single label, not a fully qualified name"
        ));
    }
    for label in &labels {
        let ok_chars = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if label.is_empty()
            || label.len() > 63
            || !ok_chars
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!("{s:?} has an invalid label {label:?}"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("{s:?} is neither an IPv6 address nor a DNS name"));
    }
    Ok(name.to_ascii_lowercase())
}

impl FromStr for Aftr {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let err = |problem: String| ValueError::new(problem, Self::EXPECTED);
        match s {
            "transix-east" => return Ok(Self::Address(Self::TRANSIX_EAST)),
            "transix-west" => return Ok(Self::Address(Self::TRANSIX_WEST)),
            "dhcpv6" => return Ok(Self::Dhcpv6),
            _ => {}
        }
        if s.contains(':') {
            let addr = s
                .parse::<Ipv6Addr>()
                .map_err(|_| err(format!("{s:?} is not an IPv6 address")))?;
            if let Some(what) = v6_special(&addr) {
                return Err(err(format!("{s} is a {what} address")));
            }
            return Ok(Self::Address(addr));
        }
        check_dns_name(s).map(Self::Name).map_err(err)
    }
}

impl fmt::Display for Aftr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(addr) => addr.fmt(f),
            Self::Name(name) => f.write_str(name),
            Self::Dhcpv6 => f.write_str("dhcpv6"),
        }
    }
}

serde_via_str!(Aftr);

// ---------------------------------------------------------------------------
// CPU ids
// ---------------------------------------------------------------------------

/// A CPU id that exists on this machine (checked against
/// `/sys/devices/system/cpu/present` while parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CpuId(pub usize);

impl<'de> Deserialize<'de> for CpuId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::de::ranged(
            deserializer,
            0,
            u64::from(u32::MAX),
            "a CPU id that exists on this machine",
            |id| {
                let cpus = crate::cpu::present();
                let exists = usize::try_from(id).is_ok_and(|id| cpus.contains(id));
                (!exists).then(|| {
                    format!("CPU {id} does not exist on this machine, which has CPUs {cpus}")
                })
            },
        )
        .map(Self)
    }
}

impl fmt::Display for CpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

// ---------------------------------------------------------------------------
// Keyword enums
// ---------------------------------------------------------------------------

/// How the XDP program is attached to the interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// In the driver (fast; needs driver support).
    Native,
    /// In the generic (skb) path: works everywhere, slowly.
    Generic,
    /// Native if the driver supports it, else generic.
    #[default]
    Auto,
}

/// Whether AF_XDP sockets bind in zero-copy mode. Only these three words are
/// accepted: YAML booleans are refused so that `on`/`off` keep one meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ZeroCopy {
    /// Try zero-copy, fall back to copy mode.
    #[default]
    Auto,
    /// Require zero-copy; fail to start otherwise.
    On,
    /// Always copy mode.
    Off,
}

/// How the workers wait for packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PollMode {
    /// Spin on the rings: lowest latency, one CPU at 100 % per worker.
    Busy,
    /// Spin while busy, sleep in poll(2) when idle.
    #[default]
    Adaptive,
}

/// Where the B4 (our end of the DS-Lite tunnel) takes its IPv6 address from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum B4Source {
    /// The WAN interface's global address.
    #[default]
    Wan,
    /// `::1` of subnet 0 of the delegated prefix (RFC 7084 WAA-7), for WAN
    /// links without a global address.
    Delegated,
}

/// How the WAN SLAAC address's interface identifier is made.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum IidMode {
    /// Modified EUI-64 from the MAC address (RFC 4291 appendix A).
    #[default]
    Eui64,
    /// RFC 7217 stable, semantically opaque identifiers; the secret is
    /// generated once and kept in `state_dir`.
    StablePrivacy,
}

/// The DUID type ipoed generates (once, then keeps in `state_dir`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum DuidType {
    /// DUID-LL (type 3): the WAN MAC address.
    #[default]
    Ll,
    /// DUID-LLT (type 1): the WAN MAC address and the time it was made.
    Llt,
    /// DUID-UUID (type 4): a random UUID.
    Uuid,
}

/// Log verbosity of the daemon.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_rules() {
        assert!("enp1s0".parse::<IfName>().is_ok());
        assert!("a23456789012345".parse::<IfName>().is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a234567890123456",
            "a/b",
            "a:1",
            "a b",
            "a\tb",
        ] {
            assert!(bad.parse::<IfName>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ipv4_cidr_arithmetic() {
        let c: Ipv4Cidr = "192.168.2.1/24".parse().unwrap();
        assert_eq!(c.network(), Ipv4Addr::new(192, 168, 2, 0));
        assert_eq!(c.broadcast(), Ipv4Addr::new(192, 168, 2, 255));
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert!(c.contains(&Ipv4Addr::new(192, 168, 2, 200)));
        assert!(!c.contains(&Ipv4Addr::new(192, 168, 3, 1)));
        let all: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(&Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(all.broadcast(), Ipv4Addr::BROADCAST);
        for bad in [
            "192.168.2.1",
            "192.168.2.1/33",
            "192.168.2/24",
            "192.168.2.1/+8",
            "x/8",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ipv6_prefix64() {
        let p: Ipv6Prefix64 = "2001:db8:0:111::/64".parse().unwrap();
        assert!(p.contains(&"2001:db8:0:111::abcd".parse().unwrap()));
        assert!(!p.contains(&"2001:db8:0:112::1".parse().unwrap()));
        assert_eq!(
            p.with_interface_id(1),
            "2001:db8:0:111::1".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(p.to_string(), "2001:db8:0:111::/64");
        assert_eq!(Ipv6Prefix64::new(p.addr()), Ok(p));
        let e = "2001:db8::/48".parse::<Ipv6Prefix64>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "2001:db8::/48 is not a /64 (expected an IPv6 /64 prefix such as 2001:db8:0:111::/64)"
        );
        assert!("2001:db8::1/64".parse::<Ipv6Prefix64>().is_err());
        assert!("fe80::/64".parse::<Ipv6Prefix64>().is_err());
        assert!("ff02::/64".parse::<Ipv6Prefix64>().is_err());
    }

    #[test]
    fn ipv6_cidr() {
        let c: Ipv6Cidr = "2001:db8:0:100::2/64".parse().unwrap();
        assert_eq!(c.network(), "2001:db8:0:100::".parse::<Ipv6Addr>().unwrap());
        assert!(c.contains(&"2001:db8:0:100::ffff".parse().unwrap()));
        assert!("::/0"
            .parse::<Ipv6Cidr>()
            .unwrap()
            .contains(&Ipv6Addr::LOCALHOST));
        assert!("2001:db8::1/129".parse::<Ipv6Cidr>().is_err());
    }

    #[test]
    fn aftr_refuses_names_and_special_addresses() {
        assert_eq!(
            "2404:8e00::feed:100".parse::<Aftr>(),
            Ok(Aftr::Address("2404:8e00::feed:100".parse().unwrap()))
        );
        assert_eq!(
            "gw.transix.jp.".parse::<Aftr>(),
            Ok(Aftr::Name("gw.transix.jp".into()))
        );
        assert_eq!(
            "transix-west".parse::<Aftr>(),
            Ok(Aftr::Address("2404:8e01::feed:100".parse().unwrap()))
        );
        assert_eq!("dhcpv6".parse::<Aftr>(), Ok(Aftr::Dhcpv6));
        for bad in [
            "gw",
            "gw..transix.jp",
            "-gw.transix.jp",
            "1.2.3.4",
            "gw.transix.jp/",
            "::",
            "::1",
            "ff02::1",
            "fe80::1",
            "::ffff:1.2.3.4",
        ] {
            assert!(bad.parse::<Aftr>().is_err(), "{bad:?} accepted");
        }
    }
}
