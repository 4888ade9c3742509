//! The `ipip` section: a fixed IPv4 address over IPv4-in-IPv6 (RFC 2473),
//! the fixed-IP services of the JP VNEs (transix, v6plus, Xpass, BBIX):
//! a tunnel from the WAN /64 (or subnet 0 of the delegated prefix) plus
//! the contract interface ID to the provider's tunnel end, NAPT44 of the
//! LAN onto the one address, and the provider's update URL told the
//! tunnel's local address. The URL's credentials and the password are
//! secrets: [`Ipip::masked`] is what `show config` prints.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipoe_proto::http::target::{mask_url_str, Target, MASK};
use serde::{Deserialize, Deserializer, Serialize};

use crate::de::{self as check, StrCheck};
use crate::map_e::PortForward;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of ipip settings")]
pub struct Ipip {
    /// The provider's tunnel end.
    #[serde(deserialize_with = "check::checked::<_, check::IpipRemote>")]
    pub remote: Ipv6Addr,
    /// The contract interface ID, written as an address with the upper 64
    /// bits zero (`"::feed"`).
    #[serde(deserialize_with = "check::checked::<_, LocalIid>")]
    pub local_iid: Ipv6Addr,
    #[serde(default)]
    pub local_prefix: LocalPrefix,
    /// The fixed /32.
    #[serde(deserialize_with = "check::checked::<_, FixedIpv4>")]
    pub ipv4: Ipv4Addr,
    /// The provider's update URL; none for a service that needs no
    /// registration (BBIX hands everything over at turn-up).
    #[serde(default)]
    pub update: Option<Update>,
    /// At most [`Ipip::MAX_PORT_FORWARDS`], each in 1-65535: the address
    /// is ours whole, so the system ports too (80, 443).
    #[serde(default)]
    pub port_forwards: Vec<PortForward>,
    /// Inner IPv4 MTU; `None`: 1460 (the VNEs'), lowered to fit the WAN.
    #[serde(default, deserialize_with = "check::opt::<_, check::TunnelMtu>")]
    pub mtu: Option<u16>,
    /// As `dslite.mss_clamp`: left out 1420 (lowered to fit the tunnel),
    /// `false` leaves SYNs alone.
    #[serde(
        default = "crate::default_mss_clamp_v4",
        deserialize_with = "check::checked::<_, check::MssOrOff>",
        serialize_with = "crate::serialize_section_or_off"
    )]
    pub mss_clamp: Option<u16>,
}

impl Ipip {
    pub const MAX_PORT_FORWARDS: usize = 64;
    /// The lowest port the NAPT hands out (forwards may use any).
    pub const FIRST_PORT: u16 = 1024;
    /// The inner MTU of the fixed-IP services (BBIX states 1460).
    pub const DEFAULT_MTU: u16 = 1460;

    /// The section with every secret replaced by `***`: the URL's
    /// password and credential query values, and `update.password`.
    pub fn masked(&self) -> Ipip {
        let mut m = self.clone();
        if let Some(u) = m.update.as_mut() {
            u.url = mask_url_str(&u.url);
            if u.password.is_some() {
                u.password = Some(MASK.to_owned());
            }
        }
        m
    }
}

/// Which IPv6 prefix the tunnel's local address is formed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", expecting = "wan or pd")]
pub enum LocalPrefix {
    /// The WAN /64 (SLAAC; the RA's prefix on a line without PD).
    #[default]
    Wan,
    /// Subnet 0 of the delegated prefix.
    Pd,
}

/// `update`: the provider's registration URL, with optional HTTP Basic.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of url, username, password"
)]
pub struct Update {
    #[serde(deserialize_with = "check::checked::<_, UpdateUrl>")]
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

impl std::fmt::Debug for Update {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Update")
            .field("url", &mask_url_str(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| MASK))
            .finish()
    }
}

struct LocalIid;

impl check::Rule for LocalIid {
    type Out = Ipv6Addr;
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ipv6Addr, D::Error> {
        d.deserialize_str(StrCheck::new(
            "an interface ID such as \"::feed\" (the lower 64 bits; the upper ones zero)",
            |s| {
                let a: Ipv6Addr = s
                    .parse()
                    .map_err(|_| format!("{s:?} is not an interface ID"))?;
                let v = u128::from(a);
                if v >> 64 != 0 {
                    Err(format!("{a} has bits in the prefix's half"))
                } else if v == 0 {
                    Err("::0 is the subnet-router anycast address".to_owned())
                } else {
                    Ok(a)
                }
            },
        ))
    }
}

struct FixedIpv4;

impl check::Rule for FixedIpv4 {
    type Out = Ipv4Addr;
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ipv4Addr, D::Error> {
        d.deserialize_str(StrCheck::new(
            "the fixed IPv4 address of the contract, such as 192.0.2.77",
            |s| {
                let a: Ipv4Addr = s
                    .parse()
                    .map_err(|_| format!("{s:?} is not an IPv4 address"))?;
                if a.is_unspecified()
                    || a.is_broadcast()
                    || a.is_multicast()
                    || a.is_loopback()
                    || a.is_link_local()
                    || a.octets()[0] >= 240
                    || a.octets()[0] == 0
                {
                    Err(format!("{a} is not a unicast address"))
                } else {
                    Ok(a)
                }
            },
        ))
    }
}

struct UpdateUrl;

impl check::Rule for UpdateUrl {
    type Out = String;
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_str(StrCheck::new(
            "an http or https URL such as \"http://[2001:db8:77:ee::80]:8082/update?user=U&pass=P\"",
            // The message never quotes the URL: it may hold the password.
            |s| match Target::parse(s) {
                Ok(_) => Ok(s.to_owned()),
                Err(e) => Err(format!("{} is not usable: {e}", mask_url_str(s))),
            },
        ))
    }
}
