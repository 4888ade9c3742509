//! The provisioning server's JSON reply (HB46PP 3.4), read with serde into
//! raw structs and then checked field by field into a [`Provisioning`].
//!
//! Hostile input: the body is bounded before parsing ([`MAX_BODY`]);
//! serde_json bounds nesting (128 levels) and refuses duplicate keys of
//! the known fields; unknown keys are ignored (the spec allows it), as are
//! the sections of methods the router does not run (`lw4o6`, `map_t`,
//! `464xlat`), whose content is skipped without being kept. Everything
//! kept is checked: a reply that breaks the spec in a field the router
//! reads is refused whole, with the [`ReplyError`] that names the field
//! (each one a counter of the client).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::map::{IidFormat, Prefix4, Prefix6, Rule};

/// Largest reply body parsed (256 rules take about 30 KiB).
pub const MAX_BODY: usize = 256 * 1024;
/// The spec's bound on `ttl` (7 days).
pub const MAX_TTL: u64 = 604_800;
/// MAP-E rules a reply may carry (the spec: accept 256).
pub const MAX_RULES: usize = 256;
/// Entries of `order` and of `ipip` looked at.
pub const MAX_ORDER: usize = 16;
pub const MAX_IPIP: usize = 16;
/// `enabler_name`, `service_name`, `isp_name`: 256 bytes with the quotes.
pub const MAX_NAME: usize = 254;

/// A migration method of `order` / `capability`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    DsLite,
    MapE,
    Ipip,
    Lw4o6,
    MapT,
    Xlat464,
}

impl Method {
    /// The spec's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DsLite => "dslite",
            Self::MapE => "map_e",
            Self::Ipip => "ipip",
            Self::Lw4o6 => "lw4o6",
            Self::MapT => "map_t",
            Self::Xlat464 => "464xlat",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::DsLite,
            Self::MapE,
            Self::Ipip,
            Self::Lw4o6,
            Self::MapT,
            Self::Xlat464,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }

    /// Whether ipoed runs it.
    pub fn supported(self) -> bool {
        matches!(self, Self::DsLite | Self::MapE | Self::Ipip)
    }
}

/// `auth`: the result of `user`/`pass`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// Not sent, but more parameters may come with them.
    Req,
    /// Sent and refused.
    Bad,
    Ok,
}

/// The AFTR: an address, or a name to resolve with the WAN's DNS.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aftr {
    Addr(Ipv6Addr),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DsLite {
    pub aftr: Aftr,
}

/// MAP-E parameters: the BR and the rules for `crate::map`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapE {
    pub br: Ipv6Addr,
    pub rules: Vec<Rule>,
    /// `version` 0 (or absent): draft-03 interface ID; 1: RFC 7597.
    pub iid: IidFormat,
    /// Mesh mode (CE to CE) rather than hub and spoke.
    pub mesh: bool,
}

impl MapE {
    /// The rule whose IPv6 prefix holds `end_user` (the delegated prefix
    /// or the WAN /64), the longest one if several do (RFC 7597 5.1).
    pub fn rule_for(&self, end_user: Prefix6) -> Option<&Rule> {
        self.rules
            .iter()
            .filter(|r| r.ipv6_prefix().contains(end_user.addr()))
            .filter(|r| r.ipv6_prefix().prefix_len() <= end_user.prefix_len())
            .max_by_key(|r| r.ipv6_prefix().prefix_len())
    }
}

/// One fixed-IPv4 tunnel.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Ipip {
    pub local: Ipv6Addr,
    pub remote: Ipv6Addr,
    /// The fixed address and its prefix length (`/32` when not given).
    pub ipv4: Ipv4Addr,
    pub ipv4_len: u8,
}

/// A checked reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provisioning {
    pub enabler_name: Option<String>,
    pub service_name: Option<String>,
    pub isp_name: Option<String>,
    /// As received; `None` means the 20-24 h default refresh.
    pub ttl: Option<Duration>,
    pub token: Option<String>,
    pub auth: Option<Auth>,
    /// The known methods of `order`, in order (unknown names skipped).
    pub order: Vec<Method>,
    pub dslite: Option<DsLite>,
    pub map_e: Option<MapE>,
    pub ipip: Vec<Ipip>,
}

/// What the router should run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    DsLite(DsLite),
    MapE(MapE),
    Ipip(Ipip),
    /// `order` offers nothing the router runs (`order: []` included).
    Nothing,
}

impl Decision {
    pub fn method(&self) -> Option<Method> {
        match self {
            Self::DsLite(_) => Some(Method::DsLite),
            Self::MapE(_) => Some(Method::MapE),
            Self::Ipip(_) => Some(Method::Ipip),
            Self::Nothing => None,
        }
    }
}

impl Provisioning {
    /// The first method of `order` that is in `capabilities` (what the
    /// request offered) and whose section the reply carries. For IPIP,
    /// the first tunnel.
    pub fn decide(&self, capabilities: &[Method]) -> Decision {
        for method in &self.order {
            if !capabilities.contains(method) {
                continue;
            }
            match method {
                Method::DsLite => {
                    if let Some(d) = &self.dslite {
                        return Decision::DsLite(d.clone());
                    }
                }
                Method::MapE => {
                    if let Some(m) = &self.map_e {
                        return Decision::MapE(m.clone());
                    }
                }
                Method::Ipip => {
                    if let Some(t) = self.ipip.first() {
                        return Decision::Ipip(t.clone());
                    }
                }
                _ => {}
            }
        }
        Decision::Nothing
    }
}

/// Why a reply was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("reply body longer than {MAX_BODY} bytes")]
    TooLarge,
    /// Not JSON, not an object, a known key with the wrong type, or a
    /// known key twice.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("no order")]
    NoOrder,
    #[error("ttl {0} is more than {MAX_TTL}")]
    BadTtl(u64),
    #[error("token is not 64 lower-case hex digits")]
    BadToken,
    #[error("auth {0:?} is not req, bad or ok")]
    BadAuth(String),
    #[error("{0} longer than {MAX_NAME} bytes")]
    BadName(&'static str),
    #[error("map_e: {0}")]
    BadMapE(String),
    #[error("dslite: {0}")]
    BadDsLite(String),
    #[error("ipip: {0}")]
    BadIpip(String),
    /// `order` names a method the router runs but its section is missing.
    #[error("order names {0} but the reply has no {0} section")]
    MissingSection(&'static str),
}

impl ReplyError {
    /// The counter's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::TooLarge => "reply-too-large",
            Self::Malformed(_) => "reply-malformed",
            Self::NoOrder => "reply-no-order",
            Self::BadTtl(_) => "reply-bad-ttl",
            Self::BadToken => "reply-bad-token",
            Self::BadAuth(_) => "reply-bad-auth",
            Self::BadName(_) => "reply-bad-name",
            Self::BadMapE(_) => "reply-bad-map-e",
            Self::BadDsLite(_) => "reply-bad-dslite",
            Self::BadIpip(_) => "reply-bad-ipip",
            Self::MissingSection(_) => "reply-missing-section",
        }
    }
}

// ---------------------------------------------------------------------------
// Raw shapes
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct Raw {
    enabler_name: Option<String>,
    service_name: Option<String>,
    isp_name: Option<String>,
    ttl: Option<u64>,
    token: Option<String>,
    auth: Option<String>,
    order: Option<Vec<String>>,
    map_e: Option<RawMapE>,
    dslite: Option<RawDsLite>,
    ipip: Option<RawIpipList>,
    // Methods ipoed does not run: skipped, whatever they hold.
    #[serde(rename = "lw4o6")]
    _lw4o6: Option<IgnoredAny>,
    #[serde(rename = "map_t")]
    _map_t: Option<IgnoredAny>,
    #[serde(rename = "464xlat")]
    _xlat: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct RawMapE {
    version: Option<u64>,
    mesh: Option<BoolOrInt>,
    br: Option<String>,
    rules: Option<Vec<RawRule>>,
}

/// The spec's text says 0/1, its example `true`.
#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrInt {
    Bool(bool),
    Int(u64),
}

#[derive(Deserialize)]
struct RawRule {
    ipv6: String,
    ipv4: String,
    ea_length: u8,
    psid_offset: u8,
}

#[derive(Deserialize)]
struct RawDsLite {
    aftr: Option<String>,
}

/// The spec's `ipip` is a list; a single object is taken as a list of one.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawIpipList {
    List(Vec<RawIpip>),
    One(RawIpip),
}

#[derive(Deserialize)]
struct RawIpip {
    ipv6_local: String,
    ipv6_remote: String,
    ipv4: String,
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// Parses and checks a reply body.
pub fn parse(body: &[u8]) -> Result<Provisioning, ReplyError> {
    if body.len() > MAX_BODY {
        return Err(ReplyError::TooLarge);
    }
    let raw: Raw = serde_json::from_slice(body).map_err(|e| {
        // The message says where; it never quotes the input at length.
        ReplyError::Malformed(e.to_string().chars().take(200).collect())
    })?;
    let name = |v: Option<String>, field: &'static str| match v {
        Some(s) if s.len() > MAX_NAME => Err(ReplyError::BadName(field)),
        other => Ok(other),
    };
    let enabler_name = name(raw.enabler_name, "enabler_name")?;
    let service_name = name(raw.service_name, "service_name")?;
    let isp_name = name(raw.isp_name, "isp_name")?;
    let ttl = match raw.ttl {
        Some(t) if t > MAX_TTL => return Err(ReplyError::BadTtl(t)),
        t => t.map(Duration::from_secs),
    };
    let token = match raw.token {
        Some(t) if !super::query::is_token(&t) => return Err(ReplyError::BadToken),
        t => t,
    };
    let auth = match raw.auth.as_deref() {
        None | Some("") => None,
        Some("req") => Some(Auth::Req),
        Some("bad") => Some(Auth::Bad),
        Some("ok") => Some(Auth::Ok),
        Some(other) => return Err(ReplyError::BadAuth(other.chars().take(32).collect())),
    };
    let raw_order = raw.order.ok_or(ReplyError::NoOrder)?;
    let mut order = Vec::new();
    for m in raw_order.iter().take(MAX_ORDER) {
        if let Some(m) = Method::parse(m) {
            if !order.contains(&m) {
                order.push(m);
            }
        }
    }
    let dslite = raw.dslite.map(check_dslite).transpose()?;
    let map_e = raw.map_e.map(check_map_e).transpose()?;
    let ipip = match raw.ipip {
        None => Vec::new(),
        Some(RawIpipList::One(t)) => vec![check_ipip(t)?],
        Some(RawIpipList::List(list)) => {
            if list.len() > MAX_IPIP {
                return Err(ReplyError::BadIpip(format!("more than {MAX_IPIP} tunnels")));
            }
            list.into_iter().map(check_ipip).collect::<Result<_, _>>()?
        }
    };
    for m in &order {
        let present = match m {
            Method::DsLite => dslite.is_some(),
            Method::MapE => map_e.is_some(),
            Method::Ipip => !ipip.is_empty(),
            // Not run here: whether the server sent its section is moot.
            _ => true,
        };
        if !present {
            return Err(ReplyError::MissingSection(m.as_str()));
        }
    }
    Ok(Provisioning {
        enabler_name,
        service_name,
        isp_name,
        ttl,
        token,
        auth,
        order,
        dslite,
        map_e,
        ipip,
    })
}

fn check_dslite(raw: RawDsLite) -> Result<DsLite, ReplyError> {
    let aftr = raw
        .aftr
        .ok_or_else(|| ReplyError::BadDsLite("no aftr".into()))?;
    let aftr = aftr.trim_end_matches('.');
    if let Ok(addr) = Ipv6Addr::from_str(aftr) {
        if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
            return Err(ReplyError::BadDsLite(format!("aftr {addr} is not unicast")));
        }
        return Ok(DsLite {
            aftr: Aftr::Addr(addr),
        });
    }
    // A name must be one the resolver can ask for; a dotted quad is not
    // an AFTR (DS-Lite runs over IPv6).
    let all_numeric = aftr
        .split('.')
        .all(|l| l.bytes().all(|b| b.is_ascii_digit()));
    if all_numeric || crate::dns::encode_name(aftr, &mut Vec::new()).is_err() {
        return Err(ReplyError::BadDsLite(format!(
            "aftr {:?} is neither an IPv6 address nor a DNS name",
            aftr.chars().take(64).collect::<String>()
        )));
    }
    Ok(DsLite {
        aftr: Aftr::Name(aftr.to_ascii_lowercase()),
    })
}

fn check_map_e(raw: RawMapE) -> Result<MapE, ReplyError> {
    let bad = ReplyError::BadMapE;
    let iid = match raw.version {
        None | Some(0) => IidFormat::Legacy,
        Some(1) => IidFormat::Rfc7597,
        Some(v) => return Err(bad(format!("version {v} is neither 0 nor 1"))),
    };
    let mesh = match raw.mesh {
        None | Some(BoolOrInt::Int(0)) | Some(BoolOrInt::Bool(false)) => false,
        Some(BoolOrInt::Int(1)) | Some(BoolOrInt::Bool(true)) => true,
        Some(BoolOrInt::Int(v)) => return Err(bad(format!("mesh {v} is neither 0 nor 1"))),
    };
    let br = raw.br.ok_or_else(|| bad("no br".into()))?;
    let br = Ipv6Addr::from_str(&br).map_err(|_| {
        bad(format!(
            "br {:?} is not an IPv6 address",
            br.chars().take(64).collect::<String>()
        ))
    })?;
    if br.is_unspecified() || br.is_multicast() || br.is_loopback() {
        return Err(bad(format!("br {br} is not unicast")));
    }
    let raw_rules = raw.rules.ok_or_else(|| bad("no rules".into()))?;
    if raw_rules.is_empty() || raw_rules.len() > MAX_RULES {
        return Err(bad(format!(
            "{} rules (expected 1 to {MAX_RULES})",
            raw_rules.len()
        )));
    }
    let mut rules = Vec::with_capacity(raw_rules.len());
    for (i, r) in raw_rules.into_iter().enumerate() {
        let v6 = Prefix6::from_str(&r.ipv6).map_err(|e| bad(format!("rule {i}: {}", clip(&e))))?;
        let v4 = Prefix4::from_str(&r.ipv4).map_err(|e| bad(format!("rule {i}: {}", clip(&e))))?;
        let rule = Rule::new(v6, v4, r.ea_length, r.psid_offset)
            .map_err(|e| bad(format!("rule {i}: {e}")))?;
        rules.push(rule);
    }
    Ok(MapE {
        br,
        rules,
        iid,
        mesh,
    })
}

fn check_ipip(raw: RawIpip) -> Result<Ipip, ReplyError> {
    let bad = ReplyError::BadIpip;
    let addr6 = |s: &str, field: &str| {
        Ipv6Addr::from_str(s)
            .ok()
            .filter(|a| !a.is_unspecified() && !a.is_multicast() && !a.is_loopback())
            .ok_or_else(|| {
                bad(format!(
                    "{field} {:?} is not a unicast IPv6 address",
                    clip(s)
                ))
            })
    };
    let local = addr6(&raw.ipv6_local, "ipv6_local")?;
    let remote = addr6(&raw.ipv6_remote, "ipv6_remote")?;
    let (addr, len) = raw.ipv4.split_once('/').unwrap_or((&raw.ipv4, "32"));
    let ipv4 = Ipv4Addr::from_str(addr)
        .ok()
        .filter(|a| !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast())
        .ok_or_else(|| {
            bad(format!(
                "ipv4 {:?} is not a unicast IPv4 address",
                clip(&raw.ipv4)
            ))
        })?;
    let ipv4_len = len
        .parse::<u8>()
        .ok()
        .filter(|l| (1..=32).contains(l))
        .ok_or_else(|| {
            bad(format!(
                "ipv4 {:?} has no valid prefix length",
                clip(&raw.ipv4)
            ))
        })?;
    Ok(Ipip {
        local,
        remote,
        ipv4,
        ipv4_len,
    })
}

/// At most 64 characters of a hostile string, for messages.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}
