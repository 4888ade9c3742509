//! Deserialization helpers that validate while serde still knows where the
//! value is, so every refusal carries the line:column of the scalar.
//!
//! Field-specific rules are unit structs implementing [`Rule`]; fields name
//! them with `deserialize_with = "de::checked::<_, de::SomeRule>"` (or `opt` for
//! optional keys, which also accepts an empty value or `null`).

use std::fmt;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::types::{is_v6_link_local, v6_special, Ipv4Cidr, Ipv6Cidr};

/// Visits one YAML scalar as a string and runs `check` on it; a refusal reads
/// `<problem> (expected <expecting>)`.
pub(crate) struct StrCheck<T> {
    expecting: &'static str,
    check: fn(&str) -> Result<T, String>,
}

impl<T> StrCheck<T> {
    pub(crate) fn new(expecting: &'static str, check: fn(&str) -> Result<T, String>) -> Self {
        Self { expecting, check }
    }
}

impl<T> Visitor<'_> for StrCheck<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.check)(v)
            .map_err(|problem| E::custom(format!("{problem} (expected {})", self.expecting)))
    }
}

/// Deserializes an unsigned integer in `min..=max`; `extra` may refuse
/// further values (returns the problem). Strings, floats and negative
/// numbers are refused with the same `expecting` text.
pub(crate) fn ranged<'de, D, T>(
    deserializer: D,
    min: u64,
    max: u64,
    expecting: &'static str,
    extra: fn(u64) -> Option<String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    struct Ranged<T> {
        min: u64,
        max: u64,
        expecting: &'static str,
        extra: fn(u64) -> Option<String>,
        out: PhantomData<T>,
    }

    impl<T: TryFrom<u64>> Visitor<'_> for Ranged<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            let refuse =
                |problem: String| E::custom(format!("{problem} (expected {})", self.expecting));
            if !(self.min..=self.max).contains(&v) {
                return Err(refuse(format!("{v} is out of range")));
            }
            if let Some(problem) = (self.extra)(v) {
                return Err(refuse(problem));
            }
            T::try_from(v).map_err(|_| refuse(format!("{v} is out of range")))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::custom(format!(
                    "{v} is out of range (expected {})",
                    self.expecting
                ))),
            }
        }
    }

    // `deserialize_any` rather than `_u64`: serde_yaml_ng's `_u64` reports a
    // negative number as a type error instead of visiting it.
    deserializer.deserialize_any(Ranged {
        min,
        max,
        expecting,
        extra,
        out: PhantomData,
    })
}

/// A validation rule for one kind of field.
pub(crate) trait Rule {
    type Out;
    fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self::Out, D::Error>;
}

/// `deserialize_with` for a field that must hold a value satisfying `R`.
pub(crate) fn checked<'de, D: Deserializer<'de>, R: Rule>(
    deserializer: D,
) -> Result<R::Out, D::Error> {
    R::deserialize(deserializer)
}

/// `deserialize_with` for an optional field: empty, `~` and `null` are `None`.
pub(crate) fn opt<'de, D: Deserializer<'de>, R: Rule>(
    deserializer: D,
) -> Result<Option<R::Out>, D::Error> {
    struct Opt<R>(PhantomData<R>);

    impl<'de, R: Rule> Visitor<'de> for Opt<R> {
        type Value = Option<R::Out>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an optional value")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            R::deserialize(d).map(Some)
        }
    }

    deserializer.deserialize_option(Opt::<R>(PhantomData))
}

/// `deserialize_with` for an optional section: an empty `section:` or
/// `section: null` means "all defaults", like leaving the section out.
pub(crate) fn section<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `deserialize_with` for a section that can be switched off: absent means
/// all defaults, `null`/empty means defaults too, and `off`/`false` means
/// `None`.
pub(crate) fn section_or_off<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    // A visitor rather than an untagged enum: errors inside the mapping keep
    // their own message and position.
    struct OnOff<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for OnOff<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping of settings, or false to switch it off")
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(v.then(T::default))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Some(T::default()))
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Some(T::default()))
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }

        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }

    deserializer.deserialize_any(OnOff::<T>(PhantomData))
}

/// Declares an integer [`Rule`].
macro_rules! ranged_rule {
    ($(#[$doc:meta])* $name:ident: $t:ty, $min:expr, $max:expr, $expecting:expr) => {
        ranged_rule!($(#[$doc])* $name: $t, $min, $max, $expecting, |_| None);
    };
    ($(#[$doc:meta])* $name:ident: $t:ty, $min:expr, $max:expr, $expecting:expr, $extra:expr) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl Rule for $name {
            type Out = $t;
            fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                ranged(d, $min, $max, $expecting, $extra)
            }
        }
    };
}

/// Declares a string [`Rule`].
macro_rules! str_rule {
    ($(#[$doc:meta])* $name:ident: $t:ty, $expecting:expr, $check:expr) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl Rule for $name {
            type Out = $t;
            fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                d.deserialize_str(StrCheck::new($expecting, $check))
            }
        }
    };
}

fn power_of_two(v: u64) -> Option<String> {
    (!v.is_power_of_two()).then(|| format!("{v} is not a power of two"))
}

/// The IPv6 header that DS-Lite puts in front of every IPv4 packet.
pub(crate) const IPV6_HEADER: u16 = 40;

ranged_rule!(
    /// Interface MTU: IPv6 needs at least 1280; a received frame must fit a
    /// UMEM chunk ([`crate::MAX_MTU`]).
    Mtu: u16, 1280, crate::MAX_MTU.into(), "an MTU between 1280 and 1778"
);
ranged_rule!(
    /// Inner IPv4 MTU of the tunnel; the upper bound against wan.mtu is a
    /// cross-field check done after parsing.
    TunnelMtu: u16, 1240, (crate::MAX_MTU - IPV6_HEADER).into(),
    "a tunnel MTU between 1240 and wan.mtu - 40"
);
ranged_rule!(Workers: usize, 1, 64, "a number of workers between 1 and 64");
ranged_rule!(Batch: u32, 1, 256, "a batch size between 1 and 256");
ranged_rule!(
    FillRing: u32, 512, 16384,
    "a fill ring size that is a power of two between 512 and 16384",
    power_of_two
);
ranged_rule!(
    FramesPerWorker: u32, 4096, 262144,
    "a number of frames per worker that is a power of two between 4096 and 262144",
    power_of_two
);
ranged_rule!(
    MaxNeighbors: u32, 16, 65536,
    "a number of neighbors between 16 and 65536"
);
ranged_rule!(
    SubnetId: u32, 0, u64::from(u32::MAX),
    "a subnet number between 0 and 4294967295"
);

ranged_rule!(
    /// MaxRtrAdvInterval (RFC 4861 6.2.1).
    RaInterval: u32, 4, 1800,
    "an RA interval in seconds between 4 and 1800"
);

ranged_rule!(
    /// DHCPv6-PD prefix-length hint: 0 for none, else a length that leaves
    /// room for at least one /64.
    PrefixHint: u8, 0, 64,
    "0 (no hint) or a prefix length between 48 and 64",
    |v| (v != 0 && v < 48).then(|| format!("/{v} is shorter than a home gateway delegates"))
);

ranged_rule!(
    /// Size of the firewall's session table (shared by all workers).
    MaxSessions: u32, 1024, 4_194_304,
    "a number of sessions between 1024 and 4194304"
);
ranged_rule!(
    /// Echo requests per second from one source to the router; 0: no limit.
    EchoLimit: u32, 0, 100_000,
    "a number of echo requests per second between 0 (no limit) and 100000"
);

/// The smallest MSS every IPv4 host must accept (RFC 879), also used for
/// IPv6 here; the largest fits a 9000-byte jumbo frame.
pub(crate) const MSS_MIN: u16 = 536;
pub(crate) const MSS_MAX: u16 = 9000;
/// The IPv4 (or minimal IPv6 upper-layer) and TCP headers a TCP MSS leaves
/// out of the MTU: 20 + 20.
pub(crate) const TCP_IP_HEADERS: u16 = 40;

/// A TCP MSS clamp: `false` (no clamping) or an MSS in 536..=9000. `true`
/// and an empty value are refused: there is no "on" without a number.
pub(crate) struct MssOrOff;

impl Rule for MssOrOff {
    type Out = Option<u16>;

    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
        struct V;

        const EXPECTING: &str = "false, or a TCP MSS between 536 and 9000";

        impl Visitor<'_> for V {
            type Value = Option<u16>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTING)
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                if v {
                    Err(E::custom(format!(
                        "true does not say which MSS (expected {EXPECTING})"
                    )))
                } else {
                    Ok(None)
                }
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                match u16::try_from(v) {
                    Ok(mss) if (MSS_MIN..=MSS_MAX).contains(&mss) => Ok(Some(mss)),
                    _ => Err(E::custom(format!(
                        "{v} is out of range (expected {EXPECTING})"
                    ))),
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "{v} is out of range (expected {EXPECTING})"
                    ))),
                }
            }
        }

        d.deserialize_any(V)
    }
}

/// An idle timeout in seconds, 1s..=7d: a plain integer of seconds or a
/// duration such as `2h4m` (see [`crate::firewall::parse_duration`]).
pub(crate) struct IdleTimeout;

impl Rule for IdleTimeout {
    type Out = u32;

    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        struct V;

        const EXPECTING: &str = "an idle timeout between 1s and 7d, such as 2h4m, 30s or 120";
        const MAX: u64 = 7 * 86400;

        impl Visitor<'_> for V {
            type Value = u32;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTING)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
                if (1..=MAX).contains(&v) {
                    Ok(v as u32)
                } else {
                    Err(E::custom(format!(
                        "{v} is out of range (expected {EXPECTING})"
                    )))
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "{v} is out of range (expected {EXPECTING})"
                    ))),
                }
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<u32, E> {
                let refuse =
                    |problem: String| E::custom(format!("{problem} (expected {EXPECTING})"));
                let secs = crate::firewall::parse_duration(s).map_err(refuse)?;
                if (1..=MAX).contains(&secs) {
                    Ok(secs as u32)
                } else {
                    Err(refuse(format!("{s} is out of range")))
                }
            }
        }

        d.deserialize_any(V)
    }
}

str_rule!(
    /// The router's own LAN address; the network it implies is served by
    /// DHCPv4 later, so it must be a usable host address.
    LanIpv4: Ipv4Cidr,
    "the router's IPv4 address with prefix length 8 to 30, such as 192.168.2.1/24",
    |s| {
        let cidr: Ipv4Cidr = s.parse().map_err(|e: crate::ValueError| e.problem().to_owned())?;
        let a = cidr.addr;
        let [first, ..] = a.octets();
        if !(8..=30).contains(&cidr.len) {
            Err(format!("{s} has prefix length {}", cidr.len))
        } else if a == Ipv4Addr::BROADCAST {
            Err(format!("{a} is the limited broadcast address"))
        } else if first == 0 {
            Err(format!("{a} is in 0.0.0.0/8 (\"this network\")"))
        } else if a.is_loopback() {
            Err(format!("{a} is a loopback address"))
        } else if a.is_multicast() {
            Err(format!("{a} is a multicast address"))
        } else if first >= 240 {
            Err(format!("{a} is in the reserved range 240.0.0.0/4"))
        } else if a == cidr.network() {
            Err(format!("{a} is the network address of {}/{}", cidr.network(), cidr.len))
        } else if a == cidr.broadcast() {
            Err(format!("{a} is the broadcast address of {}/{}", cidr.network(), cidr.len))
        } else {
            Ok(cidr)
        }
    }
);

str_rule!(
    WanAddress: Ipv6Cidr,
    "a global IPv6 address with prefix length 1 to 128, such as 2001:db8:0:100::2/64",
    |s| {
        let cidr: Ipv6Cidr = s.parse().map_err(|e: crate::ValueError| e.problem().to_owned())?;
        if cidr.len == 0 {
            Err(format!("{s} has prefix length 0"))
        } else if let Some(what) = v6_special(&cidr.addr) {
            Err(format!("{} is a {what} address", cidr.addr))
        } else {
            Ok(cidr)
        }
    }
);

str_rule!(
    /// The default router: usually link-local (what RAs announce), but a
    /// global address is fine too.
    Gateway: Ipv6Addr,
    "an IPv6 router address (link-local or global) such as fe80::1",
    |s| {
        let a: Ipv6Addr = s.parse().map_err(|_| format!("{s:?} is not an IPv6 address"))?;
        match v6_special(&a) {
            Some(what) if !is_v6_link_local(&a) => Err(format!("{a} is a {what} address")),
            _ => Ok(a),
        }
    }
);

/// An IPv6 address that can be a global interface or tunnel end.
fn global_v6(s: &str) -> Result<Ipv6Addr, String> {
    let a: Ipv6Addr = s
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv6 address"))?;
    match v6_special(&a) {
        Some(what) => Err(format!("{a} is a {what} address")),
        None => Ok(a),
    }
}

str_rule!(
    LanAddress: Ipv6Addr,
    "a global IPv6 address inside lan.ipv6.prefix, such as 2001:db8:0:111::1",
    global_v6
);

str_rule!(
    /// MAP-E's border relay.
    Br: Ipv6Addr,
    "the BR's global IPv6 address, such as 2001:db8:77:bb::1",
    global_v6
);

str_rule!(
    /// The provider's end of a fixed-IPv4 IPIP tunnel.
    IpipRemote: Ipv6Addr,
    "the tunnel end's global IPv6 address, such as 2001:db8:77:cc::1",
    global_v6
);

/// `sun_path` holds 108 bytes including the terminating NUL.
const SUN_PATH_MAX: usize = 107;

fn absolute_path(s: &str) -> Result<PathBuf, String> {
    if !s.starts_with('/') {
        Err(format!("{s:?} is not an absolute path"))
    } else if s.contains('\0') {
        Err(format!("{s:?} contains a NUL byte"))
    } else {
        Ok(PathBuf::from(s))
    }
}

str_rule!(
    SocketPath: PathBuf,
    "an absolute path of at most 107 bytes, such as /run/ipoed/ipoed.sock",
    |s| {
        let path = absolute_path(s)?;
        if s.len() > SUN_PATH_MAX {
            return Err(format!("{s:?} is {} bytes long, too long for a unix socket", s.len()));
        }
        Ok(path)
    }
);

str_rule!(
    StateDir: PathBuf,
    "an absolute path such as /var/lib/ipoed",
    absolute_path
);

str_rule!(
    Group: String,
    "a group name of 1 to 32 bytes without whitespace, ':' or '/', such as ipoed",
    |s| {
        if s.is_empty() {
            Err("an empty group name".to_owned())
        } else if s.len() > 32 {
            Err(format!("group name {s:?} is {} bytes long", s.len()))
        } else if let Some(c) = s
            .chars()
            .find(|c| *c == ':' || *c == '/' || c.is_whitespace() || c.is_control())
        {
            Err(format!("group name {s:?} contains {c:?}"))
        } else {
            Ok(s.to_owned())
        }
    }
);
