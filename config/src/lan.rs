//! LAN services: router advertisements, the DHCPv4 and DHCPv6 servers and
//! the DNS proxy. Value types validate themselves while serde still knows
//! their position, as in `types.rs`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};

use crate::types::{check_dns_name, serde_via_str, ValueError};

/// A DNS name such as `home.arpa` (two labels at least).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainName(pub String);

impl DomainName {
    const EXPECTED: &'static str = "a DNS domain such as home.arpa";
}

impl FromStr for DomainName {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        check_dns_name(s)
            .map(DomainName)
            .map_err(|p| ValueError::new(p, Self::EXPECTED))
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

serde_via_str!(DomainName);

/// A host name label for a static lease (RFC 1123): 1 to 63 letters,
/// digits and hyphens, not starting or ending with a hyphen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostName(pub String);

impl HostName {
    const EXPECTED: &'static str =
        "a host name of 1 to 63 letters, digits and hyphens, such as nas";
}

impl FromStr for HostName {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(HostName(s.to_ascii_lowercase()))
        } else {
            Err(ValueError::new(
                format!("{s:?} is not a host name"),
                Self::EXPECTED,
            ))
        }
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

serde_via_str!(HostName);

/// An Ethernet MAC address written `02:00:00:00:00:10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    const EXPECTED: &'static str = "a unicast MAC address such as 02:00:00:00:00:10";
}

impl FromStr for MacAddr {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let err = |p: String| ValueError::new(p, Self::EXPECTED);
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(err(format!("{s:?} is not a MAC address")));
        }
        let mut mac = [0u8; 6];
        for (b, p) in mac.iter_mut().zip(&parts) {
            if p.len() != 2 {
                return Err(err(format!("{s:?} is not a MAC address")));
            }
            *b = u8::from_str_radix(p, 16)
                .map_err(|_| err(format!("{s:?} is not a MAC address")))?;
        }
        if mac[0] & 1 != 0 || mac == [0; 6] {
            return Err(err(format!("{s} is not a unicast MAC address")));
        }
        Ok(MacAddr(mac))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

serde_via_str!(MacAddr);

/// An inclusive IPv4 address range `first-last`; that it lies in the LAN
/// subnet is a cross-field check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Range {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl Ipv4Range {
    const EXPECTED: &'static str = "an address range such as 192.168.2.100-192.168.2.250";

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        (u32::from(self.first)..=u32::from(self.last)).contains(&u32::from(a))
    }
}

impl FromStr for Ipv4Range {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let err = |p: String| ValueError::new(p, Self::EXPECTED);
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| err(format!("{s:?} has no '-' between two addresses")))?;
        let first: Ipv4Addr = a
            .trim()
            .parse()
            .map_err(|_| err(format!("{:?} is not an IPv4 address", a.trim())))?;
        let last: Ipv4Addr = b
            .trim()
            .parse()
            .map_err(|_| err(format!("{:?} is not an IPv4 address", b.trim())))?;
        if u32::from(first) > u32::from(last) {
            return Err(err(format!("{first} comes after {last}")));
        }
        Ok(Ipv4Range { first, last })
    }
}

impl fmt::Display for Ipv4Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

serde_via_str!(Ipv4Range);

/// A duration written as seconds (`3600`) or with a unit (`90s`, `30m`,
/// `12h`, `7d`); kept in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseTime(pub u32);

impl LeaseTime {
    const EXPECTED: &'static str = "a lease time between 2m and 30d, such as 12h, 30m or 3600";
    const MIN: u32 = 120;
    const MAX: u32 = 30 * 86400;
}

impl FromStr for LeaseTime {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let err = |p: String| ValueError::new(p, Self::EXPECTED);
        let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => s.split_at(i),
            None => (s, ""),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| err(format!("{s:?} is not a duration")))?;
        let mult = match unit {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(err(format!("{s:?} has an unknown unit {unit:?}"))),
        };
        let secs = n.saturating_mul(mult);
        if !(u64::from(Self::MIN)..=u64::from(Self::MAX)).contains(&secs) {
            return Err(err(format!("{s} is out of range")));
        }
        Ok(LeaseTime(secs as u32))
    }
}

impl fmt::Display for LeaseTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s.is_multiple_of(86400) {
            write!(f, "{}d", s / 86400)
        } else if s.is_multiple_of(3600) {
            write!(f, "{}h", s / 3600)
        } else if s.is_multiple_of(60) {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

serde_via_str!(LeaseTime);

impl<'de> Deserialize<'de> for LeaseTimeOrInt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LeaseTimeOrInt;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(LeaseTime::EXPECTED)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                s.parse::<LeaseTime>()
                    .map(LeaseTimeOrInt)
                    .map_err(|e| E::custom(format!("{} (expected {})", e.problem(), e.expected())))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// [`LeaseTime`] that also accepts a bare YAML integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimeOrInt(pub LeaseTime);

impl Serialize for LeaseTimeOrInt {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// `router`, or a list of addresses: which DNS servers a LAN service
/// announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsChoice<A> {
    /// The router's own LAN address (the DNS proxy).
    Router,
    /// The servers learned on the WAN (IPv6 only).
    Upstream,
    List(Vec<A>),
}

impl<A: fmt::Display> Serialize for DnsChoice<A> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            DnsChoice::Router => serializer.serialize_str("router"),
            DnsChoice::Upstream => serializer.serialize_str("upstream"),
            DnsChoice::List(v) => {
                let mut seq = serializer.serialize_seq(Some(v.len()))?;
                for a in v {
                    seq.serialize_element(&a.to_string())?;
                }
                seq.end()
            }
        }
    }
}

/// The address family's parsing and the keywords it allows.
pub trait DnsAddr: FromStr + fmt::Display + Sized {
    const EXPECTED: &'static str;
    const UPSTREAM: bool;
}

impl DnsAddr for Ipv6Addr {
    const EXPECTED: &'static str = "router, upstream, or a list of IPv6 addresses";
    const UPSTREAM: bool = true;
}

impl DnsAddr for Ipv4Addr {
    const EXPECTED: &'static str = "router, or a list of IPv4 addresses";
    const UPSTREAM: bool = false;
}

impl<'de, A: DnsAddr> Deserialize<'de> for DnsChoice<A> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<A>(std::marker::PhantomData<A>);
        impl<'de, A: DnsAddr> Visitor<'de> for V<A> {
            type Value = DnsChoice<A>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(A::EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                match s {
                    "router" => Ok(DnsChoice::Router),
                    "upstream" if A::UPSTREAM => Ok(DnsChoice::Upstream),
                    _ => Err(E::custom(format!(
                        "{s:?} is not a keyword here (expected {})",
                        A::EXPECTED
                    ))),
                }
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    let a = s.parse::<A>().map_err(|_| {
                        de::Error::custom(format!(
                            "{s:?} is not an address (expected {})",
                            A::EXPECTED
                        ))
                    })?;
                    if out.len() == 8 {
                        return Err(de::Error::custom(format!(
                            "more than 8 servers (expected {})",
                            A::EXPECTED
                        )));
                    }
                    out.push(a);
                }
                if out.is_empty() {
                    return Err(de::Error::custom(format!(
                        "an empty list (expected {})",
                        A::EXPECTED
                    )));
                }
                Ok(DnsChoice::List(out))
            }
        }
        deserializer.deserialize_any(V::<A>(std::marker::PhantomData))
    }
}

/// `lan.ipv6.ra`: router advertisements on the LAN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "a mapping of lan.ipv6.ra settings"
)]
pub struct RaSettings {
    /// MaxRtrAdvInterval in seconds (RFC 4861: 4..=1800).
    #[serde(deserialize_with = "crate::de::checked::<_, crate::de::RaInterval>")]
    pub interval: u32,
    pub m_flag: bool,
    pub o_flag: bool,
    /// Search domains announced (RFC 8106 DNSSL); empty: `lan.dhcpv4.domain`.
    pub dnssl: Vec<DomainName>,
}

impl Default for RaSettings {
    fn default() -> Self {
        Self {
            interval: 200,
            m_flag: false,
            o_flag: true,
            dnssl: Vec::new(),
        }
    }
}

/// `lan.ipv6.dhcpv6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Dhcpv6Mode {
    /// Information-Request only (DNS servers, domains).
    #[default]
    Stateless,
    /// Also addresses (IA_NA) from the LAN /64.
    Stateful,
    Off,
}

/// `lan.ipv6.mode`: where the LAN's IPv6 prefix comes from (issue 19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Ipv6Mode {
    /// The delegated prefix when there is one, else the WAN RA's /64
    /// proxied (`ndproxy`) once the PD client had its chance.
    #[default]
    Auto,
    /// Only a delegated prefix.
    Pd,
    /// Only the WAN RA's /64, proxied.
    Proxy,
    /// Only `lan.ipv6.prefix`.
    Static,
}

impl Ipv6Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Ipv6Mode::Auto => "auto",
            Ipv6Mode::Pd => "pd",
            Ipv6Mode::Proxy => "proxy",
            Ipv6Mode::Static => "static",
        }
    }
}

/// A fixed address for one MAC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with mac, ip and optionally hostname"
)]
pub struct StaticLease {
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    #[serde(default)]
    pub hostname: Option<HostName>,
}

/// `lan.dhcpv4`: the DHCPv4 server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "a mapping of lan.dhcpv4 settings"
)]
pub struct Dhcpv4 {
    /// Dynamic pool; `None`: derived from `lan.ipv4` (see `Config::dhcpv4_range`).
    pub range: Option<Ipv4Range>,
    pub lease_time: LeaseTimeOrInt,
    pub dns: DnsChoice<Ipv4Addr>,
    pub domain: Option<DomainName>,
    /// Option 42, sent only when set.
    pub ntp: Vec<Ipv4Addr>,
    #[serde(rename = "static")]
    pub static_leases: Vec<StaticLease>,
}

impl Default for Dhcpv4 {
    fn default() -> Self {
        Self {
            range: None,
            lease_time: LeaseTimeOrInt(LeaseTime(12 * 3600)),
            dns: DnsChoice::Router,
            domain: None,
            ntp: Vec::new(),
            static_leases: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_types_parse_and_print_back() {
        assert_eq!("12h".parse::<LeaseTime>().unwrap().0, 43200);
        assert_eq!("3600".parse::<LeaseTime>().unwrap().to_string(), "1h");
        assert_eq!("150s".parse::<LeaseTime>().unwrap().to_string(), "150s");
        assert!("10s".parse::<LeaseTime>().is_err());
        assert!("31d".parse::<LeaseTime>().is_err());
        assert!("12x".parse::<LeaseTime>().is_err());
        assert!("99999999999999999999d".parse::<LeaseTime>().is_err());
        let r: Ipv4Range = "192.168.2.100-192.168.2.250".parse().unwrap();
        assert!(r.contains("192.168.2.100".parse().unwrap()));
        assert!(!r.contains("192.168.2.251".parse().unwrap()));
        assert!("192.168.2.250-192.168.2.100".parse::<Ipv4Range>().is_err());
        assert_eq!(
            "02:00:00:00:00:10".parse::<MacAddr>().unwrap().to_string(),
            "02:00:00:00:00:10"
        );
        assert!("01:00:00:00:00:10".parse::<MacAddr>().is_err(), "multicast");
        assert!("02:00:00:00:00".parse::<MacAddr>().is_err());
        assert!("NAS".parse::<HostName>().is_ok());
        assert!("-nas".parse::<HostName>().is_err());
        assert!("home.arpa".parse::<DomainName>().is_ok());
    }
}
