//! The `map_e` section: IPv4 by MAP-E (RFC 7597), the method of v6plus, OCN
//! Virtual Connect and BIGLOBE. The rule arithmetic and its consistency
//! checks are `ipoe_proto::map`'s; this file only reads the keys, with
//! their positions, and [`crate::Config::check_map_e`] refuses what the
//! arithmetic refuses.

use std::fmt;
use std::net::{Ipv6Addr, SocketAddrV4};

use ipoe_proto::map::{IidFormat, Prefix4, Prefix6, Rule, RuleError};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::de::{self as check, StrCheck};

/// MAP-E CE: the router's IPv4 address, PSID and port set come from a
/// Basic Mapping Rule and the end-user prefix; IPv4 from the LAN is
/// translated into that port set and tunnelled to the BR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of map_e settings")]
pub struct MapE {
    /// The Border Relay. Required with an explicit rule; with `rule: auto`
    /// the built-in table's BR is used unless this is given.
    #[serde(default, deserialize_with = "check::opt::<_, check::Br>")]
    pub br: Option<Ipv6Addr>,
    pub rule: MapRuleChoice,
    #[serde(default)]
    pub iid_format: MapIidFormat,
    /// At most [`MapE::MAX_PORT_FORWARDS`].
    #[serde(default)]
    pub port_forwards: Vec<PortForward>,
}

impl MapE {
    /// Port forwards allowed at most (the set has 240 or 1008 ports).
    pub const MAX_PORT_FORWARDS: usize = 64;
}

/// `rule: auto` (the built-in JP tables, matched on the end-user prefix)
/// or an explicit Basic Mapping Rule.
#[derive(Debug, Clone, PartialEq)]
pub enum MapRuleChoice {
    Auto,
    Rule(MapRuleSpec),
}

/// A Basic Mapping Rule as written; [`Config::check`](crate::Config) has
/// refused an inconsistent one, so [`MapRuleSpec::rule`] succeeds on a
/// parsed configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of map_e.rule settings")]
pub struct MapRuleSpec {
    #[serde(
        deserialize_with = "check::checked::<_, RulePrefix6>",
        serialize_with = "as_str"
    )]
    pub ipv6_prefix: Prefix6,
    #[serde(
        deserialize_with = "check::checked::<_, RulePrefix4>",
        serialize_with = "as_str"
    )]
    pub ipv4_prefix: Prefix4,
    #[serde(deserialize_with = "check::checked::<_, EaLength>")]
    pub ea_length: u8,
    #[serde(deserialize_with = "check::checked::<_, PsidOffset>")]
    pub psid_offset: u8,
}

impl MapRuleSpec {
    pub fn rule(&self) -> Result<Rule, RuleError> {
        Rule::new(
            self.ipv6_prefix,
            self.ipv4_prefix,
            self.ea_length,
            self.psid_offset,
        )
    }
}

/// One rule of `provisioning.map_rules`: a Basic Mapping Rule with its
/// BR and interface-ID format, for discovery's rule table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of ipv6_prefix, ipv4_prefix, ea_length, psid_offset, br"
)]
pub struct MapRuleEntry {
    #[serde(
        deserialize_with = "check::checked::<_, RulePrefix6>",
        serialize_with = "as_str"
    )]
    pub ipv6_prefix: Prefix6,
    #[serde(
        deserialize_with = "check::checked::<_, RulePrefix4>",
        serialize_with = "as_str"
    )]
    pub ipv4_prefix: Prefix4,
    #[serde(deserialize_with = "check::checked::<_, EaLength>")]
    pub ea_length: u8,
    #[serde(deserialize_with = "check::checked::<_, PsidOffset>")]
    pub psid_offset: u8,
    #[serde(deserialize_with = "check::checked::<_, check::Br>")]
    pub br: Ipv6Addr,
    #[serde(default)]
    pub iid_format: MapIidFormat,
}

impl MapRuleEntry {
    pub fn rule(&self) -> Result<Rule, RuleError> {
        Rule::new(
            self.ipv6_prefix,
            self.ipv4_prefix,
            self.ea_length,
            self.psid_offset,
        )
    }
}

/// The CE's interface identifier: `legacy` (draft-ietf-softwire-map-03, what
/// the JP VNEs use) or `rfc7597`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", expecting = "legacy or rfc7597")]
pub enum MapIidFormat {
    #[default]
    Legacy,
    Rfc7597,
}

impl From<MapIidFormat> for IidFormat {
    fn from(f: MapIidFormat) -> Self {
        match f {
            MapIidFormat::Legacy => IidFormat::Legacy,
            MapIidFormat::Rfc7597 => IidFormat::Rfc7597,
        }
    }
}

/// An inbound IPv4 port forward (DNAT) from the shared address to a LAN
/// host; the port must be in the router's port set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of proto, port and to")]
pub struct PortForward {
    pub proto: ForwardProto,
    #[serde(deserialize_with = "check::checked::<_, ForwardPort>")]
    pub port: u16,
    /// The LAN host and port, `"a.b.c.d:port"`.
    #[serde(deserialize_with = "check::checked::<_, ForwardTarget>")]
    pub to: SocketAddrV4,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", expecting = "tcp or udp")]
pub enum ForwardProto {
    Tcp,
    Udp,
}

impl fmt::Display for ForwardProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        })
    }
}

fn as_str<S: Serializer, T: fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

struct RulePrefix6;

impl check::Rule for RulePrefix6 {
    type Out = Prefix6;
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Prefix6, D::Error> {
        d.deserialize_str(StrCheck::new(
            "the rule IPv6 prefix such as 2001:db8:4d00::/40",
            |s| s.parse(),
        ))
    }
}

struct RulePrefix4;

impl check::Rule for RulePrefix4 {
    type Out = Prefix4;
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Prefix4, D::Error> {
        d.deserialize_str(StrCheck::new(
            "the rule IPv4 prefix such as 198.51.100.0/24",
            |s| s.parse(),
        ))
    }
}

struct EaLength;

impl check::Rule for EaLength {
    type Out = u8;
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        check::ranged(
            d,
            0,
            Rule::MAX_EA_LENGTH.into(),
            "an EA-bits length between 0 and 48",
            |_| None,
        )
    }
}

struct PsidOffset;

impl check::Rule for PsidOffset {
    type Out = u8;
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        check::ranged(
            d,
            0,
            15,
            "a PSID offset between 0 and 15 (4 for v6plus and BIGLOBE, 6 for OCN)",
            |_| None,
        )
    }
}

struct ForwardPort;

impl check::Rule for ForwardPort {
    type Out = u16;
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        check::ranged(d, 1, 65535, "a port between 1 and 65535", |_| None)
    }
}

struct ForwardTarget;

impl check::Rule for ForwardTarget {
    type Out = SocketAddrV4;
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddrV4, D::Error> {
        d.deserialize_str(StrCheck::new(
            "a LAN host and port such as \"192.168.2.20:8080\"",
            |s| {
                let a: SocketAddrV4 = s
                    .parse()
                    .map_err(|_| format!("{s:?} is not an IPv4 address and port"))?;
                if a.port() == 0 {
                    return Err(format!("{s} has port 0"));
                }
                Ok(a)
            },
        ))
    }
}

impl Serialize for MapRuleChoice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => s.serialize_str("auto"),
            Self::Rule(spec) => spec.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MapRuleChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor rather than an untagged enum: errors inside the mapping
        // keep their own message and position.
        struct V;

        impl<'de> Visitor<'de> for V {
            type Value = MapRuleChoice;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("auto, or a mapping {ipv6_prefix, ipv4_prefix, ea_length, psid_offset}")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<MapRuleChoice, E> {
                if v == "auto" {
                    Ok(MapRuleChoice::Auto)
                } else {
                    Err(E::custom(format!(
                        "{v:?} is not a rule (expected auto, or a mapping \
                         {{ipv6_prefix, ipv4_prefix, ea_length, psid_offset}})"
                    )))
                }
            }

            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<MapRuleChoice, A::Error> {
                MapRuleSpec::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(MapRuleChoice::Rule)
            }
        }

        deserializer.deserialize_any(V)
    }
}
