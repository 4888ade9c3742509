//! The provisioning request (HB46PP 3.3): `GET <url>?vendorid=..&product=..
//! &version=..&capability=..[&token=..][&user=..&pass=..]`, with every
//! value checked against the spec's character sets, so nothing needs
//! escaping and the commas of `capability` go out as commas.

use super::reply::Method;
use super::txt::Discovery;
use crate::http::target::Target;

/// What the router says about itself, and optional credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestConfig {
    /// `<OUI, 6 hex digits>[-<up to 24 of [0-9A-Za-z_]>]`.
    pub vendorid: String,
    /// Up to 32 of `[0-9A-Za-z_-]`.
    pub product: String,
    /// Up to 32 of `[0-9_]` (`1_32` for 1.32).
    pub version: String,
    /// The methods the router runs, in the order it prefers them.
    pub capabilities: Vec<Method>,
    pub credentials: Option<Credentials>,
}

impl std::fmt::Debug for RequestConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestConfig")
            .field("vendorid", &self.vendorid)
            .field("product", &self.product)
            .field("version", &self.version)
            .field("capabilities", &self.capabilities)
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// `user`/`pass` (each up to 32 of `[0-9A-Za-z_-]`). With `server`, they
/// go only to that host over verified https (HB46PP 3.3, `user`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub pass: String,
    pub server: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials({}:{} server {:?})",
            self.user,
            crate::http::target::MASK,
            self.server
        )
    }
}

impl RequestConfig {
    /// Product `ipoe-router`, this crate's version, DS-Lite, MAP-E and IPIP.
    pub fn new(vendorid: impl Into<String>) -> Self {
        RequestConfig {
            vendorid: vendorid.into(),
            product: "ipoe-router".into(),
            version: env!("CARGO_PKG_VERSION").replace('.', "_"),
            capabilities: vec![Method::DsLite, Method::MapE, Method::Ipip],
            credentials: None,
        }
    }

    /// Refuses values outside the spec's character sets and lengths.
    pub fn validate(&self) -> Result<(), String> {
        let (oui, code) = self
            .vendorid
            .split_once('-')
            .unwrap_or((&self.vendorid, ""));
        if oui.len() != 6 || !oui.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "vendorid {:?}: expected 6 hex digits (an OUI) first",
                self.vendorid
            ));
        }
        if self.vendorid.contains('-')
            && !charset(code, 24, |b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(format!(
                "vendorid {:?}: after '-' expected 1-24 of 0-9, a-z, A-Z, _",
                self.vendorid
            ));
        }
        if !charset(&self.product, 32, word) {
            return Err(format!(
                "product {:?}: expected 1-32 of 0-9, a-z, A-Z, -, _",
                self.product
            ));
        }
        if !charset(&self.version, 32, |b| b.is_ascii_digit() || b == b'_') {
            return Err(format!(
                "version {:?}: expected 1-32 of 0-9 and _",
                self.version
            ));
        }
        if self.capabilities.is_empty() {
            return Err("no capability".into());
        }
        if let Some(c) = &self.credentials {
            if !charset(&c.user, 32, word) || !charset(&c.pass, 32, word) {
                return Err("user and pass: expected 1-32 of 0-9, a-z, A-Z, -, _ each".into());
            }
        }
        Ok(())
    }
}

fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn charset(s: &str, max: usize, ok: impl Fn(u8) -> bool) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(ok)
}

/// A token as the spec writes it: 64 lower-case hex digits.
pub fn is_token(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `user`/`pass` may go to `target`: always without a configured
/// server name; with one, only to that host over https with `t=b`.
pub fn may_send_credentials(creds: &Credentials, target: &Target, verify: bool) -> bool {
    match &creds.server {
        None => true,
        Some(server) => {
            target.is_https()
                && verify
                && target
                    .host_str()
                    .eq_ignore_ascii_case(server.trim_end_matches('.'))
        }
    }
}

/// The request URL: `target` with our parameters after its own query.
pub fn build(cfg: &RequestConfig, target: &Target, verify: bool, token: Option<&str>) -> Target {
    let caps: Vec<&str> = cfg.capabilities.iter().map(|m| m.as_str()).collect();
    let mut pairs = vec![
        ("vendorid", cfg.vendorid.as_str()),
        ("product", cfg.product.as_str()),
        ("version", cfg.version.as_str()),
    ];
    let caps = caps.join(",");
    pairs.push(("capability", &caps));
    if let Some(token) = token.filter(|t| is_token(t)) {
        pairs.push(("token", token));
    }
    if let Some(c) = &cfg.credentials {
        if may_send_credentials(c, target, verify) {
            pairs.push(("user", &c.user));
            pairs.push(("pass", &c.pass));
        }
    }
    // The values were checked (or are ours): no escaping needed.
    let ours: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let query = match target.query() {
        Some(q) if !q.is_empty() => format!("{q}&{}", ours.join("&")),
        _ => ours.join("&"),
    };
    target.with_query(&query)
}

/// The request for a discovered server.
pub fn for_discovery(cfg: &RequestConfig, d: &Discovery, token: Option<&str>) -> Target {
    build(cfg, &d.url, d.verify, token)
}
