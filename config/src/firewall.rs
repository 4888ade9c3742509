//! The `firewall` section: connection tracking of forwarded traffic, its
//! idle timeouts, and pinholes that admit unsolicited inbound IPv6 to LAN
//! hosts. Value types validate themselves while serde still knows their
//! position, as in `types.rs`.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::de as check;
use crate::lan::MacAddr;
use crate::types::{serde_via_str, ValueError};

/// The stateful firewall (RFC 6092): forwarded traffic from the WAN is
/// admitted only as part of a session the LAN started, or through a
/// pinhole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "a mapping of firewall settings"
)]
pub struct Firewall {
    /// Off: forwarded traffic is neither tracked nor filtered (the rules for
    /// traffic to the router still apply).
    pub enabled: bool,
    /// Sessions tracked at most (all workers together).
    #[serde(deserialize_with = "check::checked::<_, check::MaxSessions>")]
    pub max_sessions: u32,
    /// Log dropped packets (rate-limited) and keep the last ones for
    /// `ipoectl show firewall`.
    pub log_drops: bool,
    /// MSS clamp for forwarded IPv6 TCP SYNs; `None` (written `false`) by
    /// default.
    #[serde(
        deserialize_with = "check::checked::<_, check::MssOrOff>",
        serialize_with = "crate::serialize_section_or_off"
    )]
    pub ipv6_mss_clamp: Option<u16>,
    /// Echo requests per second accepted from one source to the router
    /// (the user's ip6tables ICMPFLOOD rule: 6); 0 = no limit.
    #[serde(deserialize_with = "check::checked::<_, check::EchoLimit>")]
    pub echo_limit: u32,
    #[serde(deserialize_with = "check::section")]
    pub timeouts: FirewallTimeouts,
    /// At most [`Firewall::MAX_PINHOLES`].
    pub pinholes: Vec<Pinhole>,
}

impl Firewall {
    /// Pinholes allowed at most.
    pub const MAX_PINHOLES: usize = 64;
}

impl Default for Firewall {
    fn default() -> Self {
        Self {
            enabled: true,
            max_sessions: 262_144,
            log_drops: true,
            ipv6_mss_clamp: None,
            echo_limit: 6,
            timeouts: FirewallTimeouts::default(),
            pinholes: Vec::new(),
        }
    }
}

/// Idle timeouts of sessions, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "a mapping of firewall.timeouts settings"
)]
pub struct FirewallTimeouts {
    /// Established TCP: 2 h 4 min (RFC 5382 REQ-5, taken over by RFC 6092).
    #[serde(
        deserialize_with = "check::checked::<_, check::IdleTimeout>",
        serialize_with = "serialize_duration"
    )]
    pub tcp_established: u32,
    /// TCP opening or closing: 4 min (RFC 5382 REQ-5).
    #[serde(
        deserialize_with = "check::checked::<_, check::IdleTimeout>",
        serialize_with = "serialize_duration"
    )]
    pub tcp_transitory: u32,
    /// TCP after a RST or both FINs.
    #[serde(
        deserialize_with = "check::checked::<_, check::IdleTimeout>",
        serialize_with = "serialize_duration"
    )]
    pub tcp_closed: u32,
    /// UDP: 2 min (RFC 4787 REQ-5).
    #[serde(
        deserialize_with = "check::checked::<_, check::IdleTimeout>",
        serialize_with = "serialize_duration"
    )]
    pub udp: u32,
    /// UDP once packets went both ways.
    #[serde(
        deserialize_with = "check::checked::<_, check::IdleTimeout>",
        serialize_with = "serialize_duration"
    )]
    pub udp_stream: u32,
    /// ICMP echo and other ICMP sessions.
    #[serde(
        deserialize_with = "check::checked::<_, check::IdleTimeout>",
        serialize_with = "serialize_duration"
    )]
    pub icmp: u32,
}

impl Default for FirewallTimeouts {
    fn default() -> Self {
        Self {
            tcp_established: 7440,
            tcp_transitory: 240,
            tcp_closed: 10,
            udp: 120,
            udp_stream: 300,
            icmp: 60,
        }
    }
}

/// Parses a duration: a number of seconds (`120`) or numbers with units in
/// decreasing order, each at most once (`7d`, `2h4m`, `1m30s`). Returns the
/// seconds (saturating), or the problem.
pub(crate) fn parse_duration(s: &str) -> Result<u64, String> {
    if s.is_empty() {
        return Err("an empty duration".to_owned());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| format!("{s} is out of range"));
    }
    const UNITS: [(char, u64); 4] = [('d', 86400), ('h', 3600), ('m', 60), ('s', 1)];
    let mut rest = s;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(digits);
        let Some(unit) = after.chars().next() else {
            return Err(format!("{s:?} ends in a number without a unit"));
        };
        if num.is_empty() {
            return Err(format!("{s:?} is not a duration"));
        }
        let Some(index) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!("{s:?} has an unknown unit {unit:?}"));
        };
        if index < next_unit {
            return Err(format!(
                "{s:?} has the units out of order (write d, h, m, s, each once)"
            ));
        }
        next_unit = index + 1;
        let n: u64 = num.parse().unwrap_or(u64::MAX);
        total = total.saturating_add(n.saturating_mul(UNITS[index].1));
        rest = &after[unit.len_utf8()..];
    }
    Ok(total)
}

/// Formats seconds the way [`parse_duration`] reads them, e.g. `2h4m`.
pub(crate) fn format_duration(secs: u32) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut left = secs;
    for (unit, size) in [('d', 86400), ('h', 3600), ('m', 60), ('s', 1)] {
        if left >= size {
            out.push_str(&(left / size).to_string());
            out.push(unit);
            left %= size;
        }
    }
    out
}

fn serialize_duration<S: Serializer>(secs: &u32, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_duration(*secs))
}

/// Inbound IPv6 admitted to one LAN host: TCP or UDP to a port range, or
/// ICMPv6 echo requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with host, proto and (for tcp and udp) port"
)]
pub struct Pinhole {
    pub host: PinholeHost,
    pub proto: PinholeProto,
    /// Required for tcp and udp, absent for icmpv6 (a cross-field check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortRange>,
}

/// Which LAN host a pinhole opens to, independent of the (delegated,
/// changing) prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinholeHost {
    /// The low 64 bits of the host's address (interface identifier),
    /// network byte order: matches that host in whatever the LAN prefix is.
    Iid([u8; 8]),
    /// Any address the host with this MAC uses (learned from neighbor
    /// discovery), including its temporary addresses.
    Mac(MacAddr),
}

impl PinholeHost {
    const EXPECTED: &'static str = "an interface identifier such as ::1234:56ff:fe78:9abc \
         (an IPv6 address with the upper 64 bits zero) or a MAC address such as \
         02:00:00:00:01:10";
}

impl FromStr for PinholeHost {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let err = |problem: String| ValueError::new(problem, Self::EXPECTED);
        if let Ok(addr) = s.parse::<Ipv6Addr>() {
            let bits = u128::from(addr);
            let iid = bits as u64;
            if bits >> 64 != 0 {
                let only = Ipv6Addr::from(u128::from(iid));
                return Err(err(format!(
                    "{s} is a full address with a prefix; write only the interface \
                     identifier, e.g. \"{only}\", so the pinhole survives renumbering"
                )));
            }
            if iid == 0 {
                return Err(err(format!("{s} is the all-zero interface identifier")));
            }
            return Ok(Self::Iid(iid.to_be_bytes()));
        }
        match s.parse::<MacAddr>() {
            Ok(mac) => Ok(Self::Mac(mac)),
            // Six groups: meant as a MAC address, say why it is refused.
            Err(e) if s.split([':', '-']).count() == 6 => Err(err(e.problem().to_owned())),
            Err(_) => Err(err(format!(
                "{s:?} is neither an interface identifier nor a MAC address"
            ))),
        }
    }
}

impl fmt::Display for PinholeHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Iid(iid) => Ipv6Addr::from(u128::from(u64::from_be_bytes(*iid))).fmt(f),
            Self::Mac(mac) => mac.fmt(f),
        }
    }
}

serde_via_str!(PinholeHost);

/// The protocol a pinhole admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PinholeProto {
    Tcp,
    Udp,
    /// Echo requests to the host.
    Icmpv6,
}

impl PinholeProto {
    /// The IP protocol number (next header): 6, 17 or 58.
    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Icmpv6 => 58,
        }
    }
}

impl fmt::Display for PinholeProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Icmpv6 => "icmpv6",
        })
    }
}

/// An inclusive port range; one port is `first == last`. Written `443` or
/// `"8000-8010"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    const EXPECTED: &'static str = "a port between 1 and 65535, or a range such as 8000-8010";

    /// Whether `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a port number"));
    }
    match s.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(format!("{s} is out of range")),
    }
}

impl FromStr for PortRange {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let err = |problem: String| ValueError::new(problem, Self::EXPECTED);
        let (first, last) = match s.split_once('-') {
            Some((a, b)) => (parse_port(a).map_err(err)?, parse_port(b).map_err(err)?),
            None => {
                let p = parse_port(s).map_err(err)?;
                (p, p)
            }
        };
        if first > last {
            return Err(err(format!("{s} is reversed: {first} comes after {last}")));
        }
        Ok(Self { first, last })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// One port as an integer, a range as a string.
impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.first == self.last {
            serializer.serialize_u16(self.first)
        } else {
            serializer.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;

        impl Visitor<'_> for V {
            type Value = PortRange;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(PortRange::EXPECTED)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortRange, E> {
                match u16::try_from(v) {
                    Ok(p) if p != 0 => Ok(PortRange { first: p, last: p }),
                    _ => Err(E::custom(format!(
                        "{v} is out of range (expected {})",
                        PortRange::EXPECTED
                    ))),
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortRange, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "{v} is out of range (expected {})",
                        PortRange::EXPECTED
                    ))),
                }
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<PortRange, E> {
                s.parse::<PortRange>()
                    .map_err(|e| E::custom(format!("{} (expected {})", e.problem(), e.expected())))
            }
        }

        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_back() {
        for (text, secs) in [
            ("120", 120),
            ("30s", 30),
            ("2h4m", 7440),
            ("4m", 240),
            ("7d", 604_800),
            ("1d1h1m1s", 90061),
            ("1m30s", 90),
        ] {
            assert_eq!(parse_duration(text), Ok(secs), "{text}");
            let shown = format_duration(secs as u32);
            assert_eq!(parse_duration(&shown), Ok(secs), "{shown}");
        }
        assert_eq!(format_duration(7440), "2h4m");
        assert_eq!(format_duration(10), "10s");
        assert_eq!(format_duration(604_800), "7d");
        for bad in ["", "2x", "4m2h", "2h2h", "2h30", "h", "-5", "1.5h", "2 h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_duration("99999999999999999999999d"), Ok(u64::MAX));
    }

    #[test]
    fn pinhole_hosts() {
        assert_eq!(
            "::1234:56ff:fe78:9abc".parse::<PinholeHost>(),
            Ok(PinholeHost::Iid([
                0x12, 0x34, 0x56, 0xff, 0xfe, 0x78, 0x9a, 0xbc
            ]))
        );
        assert_eq!(
            "02:00:00:00:01:10".parse::<PinholeHost>(),
            Ok(PinholeHost::Mac(MacAddr([2, 0, 0, 0, 1, 0x10])))
        );
        for text in [
            "::1234:56ff:fe78:9abc",
            "::1",
            "::ffff:0:1",
            "02:00:00:00:01:10",
        ] {
            let host: PinholeHost = text.parse().unwrap();
            assert_eq!(host.to_string().parse::<PinholeHost>(), Ok(host), "{text}");
        }
        for bad in ["::", "2001:db8::1", "01:00:00:00:00:01", "nas", "fe80::1"] {
            assert!(bad.parse::<PinholeHost>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn port_ranges() {
        assert_eq!(
            "8000-8010".parse::<PortRange>(),
            Ok(PortRange {
                first: 8000,
                last: 8010
            })
        );
        assert_eq!(
            "443".parse::<PortRange>().map(|r| r.to_string()),
            Ok("443".into())
        );
        assert!("8000-8010".parse::<PortRange>().unwrap().contains(8005));
        for bad in ["0", "65536", "10-5", "-5", "1-", "a-b", "+5", ""] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(PinholeProto::Icmpv6.number(), 58);
    }
}
