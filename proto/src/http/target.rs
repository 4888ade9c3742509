//! The URL of a request, on the `url` crate (WHATWG parsing, IPv6
//! literals, percent-encoding), restricted to what the client speaks:
//! `http` and `https` with a host. Its `Display` and `Debug` mask every
//! credential, so a `Target` can go into a log line or `show` as it is.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

/// What replaces a masked credential.
pub const MASK: &str = "***";

/// Longest URL accepted (a request line must fit the server's limits too).
pub const MAX_URL_LEN: usize = 4096;

/// Why a URL was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not a URL: {0}")]
    Parse(#[from] url::ParseError),
    #[error("scheme {0:?} is not http or https")]
    Scheme(String),
    #[error("no host in the URL")]
    NoHost,
    #[error("URL longer than {MAX_URL_LEN} characters")]
    TooLong,
}

/// The host to connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetHost {
    /// A DNS name (lower case, IDNA-mapped by the `url` crate).
    Name(String),
    Ip(IpAddr),
}

/// An `http` or `https` URL with a host.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    url: Url,
}

impl Target {
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        if s.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        Self::from_url(Url::parse(s)?)
    }

    fn from_url(url: Url) -> Result<Self, UrlError> {
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(UrlError::Scheme(url.scheme().to_string()));
        }
        if url.host().is_none() {
            return Err(UrlError::NoHost);
        }
        if url.as_str().len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        Ok(Target { url })
    }

    /// A `Location` header resolved against this URL (a relative reference
    /// keeps this scheme and host).
    pub fn join(&self, location: &str) -> Result<Self, UrlError> {
        if location.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        Self::from_url(self.url.join(location)?)
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    pub fn host(&self) -> TargetHost {
        match self.url.host() {
            Some(Host::Ipv4(a)) => TargetHost::Ip(IpAddr::V4(a)),
            Some(Host::Ipv6(a)) => TargetHost::Ip(IpAddr::V6(a)),
            Some(Host::Domain(d)) => TargetHost::Name(d.to_string()),
            // from_url refuses a URL without a host.
            None => TargetHost::Name(String::new()),
        }
    }

    /// The host as the URL writes it (`[2001:db8::1]` for IPv6).
    pub fn host_str(&self) -> &str {
        self.url.host_str().unwrap_or("")
    }

    /// The port, the scheme's default when the URL names none.
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(80)
    }

    /// The `Host` header's value: the port only when it is not the default.
    pub fn host_header(&self) -> String {
        match self.url.port() {
            Some(port) => format!("{}:{port}", self.host_str()),
            None => self.host_str().to_string(),
        }
    }

    /// Path and query, as they go on the request line (no fragment).
    pub fn request_target(&self) -> String {
        match self.url.query() {
            Some(q) => format!("{}?{q}", self.url.path()),
            None => self.url.path().to_string(),
        }
    }

    pub fn query(&self) -> Option<&str> {
        self.url.query()
    }

    /// The same URL with `query` (already encoded; characters a query
    /// cannot hold are percent-encoded by the `url` crate).
    pub fn with_query(&self, query: &str) -> Target {
        let mut url = self.url.clone();
        url.set_query(Some(query));
        Target { url }
    }

    /// The same URL without userinfo, query or fragment: the server as
    /// `show` names it.
    pub fn origin_and_path(&self) -> String {
        let mut url = self.url.clone();
        url.set_query(None);
        url.set_fragment(None);
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.to_string()
    }

    /// The userinfo of the URL, percent-decoded, for HTTP Basic auth.
    pub fn userinfo(&self) -> Option<(String, String)> {
        if self.url.username().is_empty() && self.url.password().is_none() {
            return None;
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        Some((
            decode(self.url.username()),
            decode(self.url.password().unwrap_or("")),
        ))
    }

    /// The full URL, credentials included: for the wire only, never a log.
    pub fn expose(&self) -> &str {
        self.url.as_str()
    }

    /// The URL with the userinfo's password and the values of credential
    /// query keys (see [`is_secret_key`]) replaced by [`MASK`].
    pub fn masked(&self) -> String {
        mask_url(&self.url)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({})", self.masked())
    }
}

/// Whether a query key names a credential: the keys the JP update and
/// provisioning services use (`pass`, `password`, `p` for Xpass, `token`)
/// and the usual others (`key`, `secret`, `api_key`, ...).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    matches!(
        k.as_str(),
        "p" | "pw" | "pwd" | "auth" | "sig" | "signature"
    ) || ["pass", "token", "secret", "key"]
        .iter()
        .any(|word| k.contains(word))
}

fn mask_url(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Cannot fail: the URL has a host (Target checks it).
        let _ = shown.set_password(Some(MASK));
    }
    if let Some(query) = url.query() {
        shown.set_query(Some(&mask_query(query)));
    }
    shown.set_fragment(None);
    shown.to_string()
}

/// `query` with the value of every credential key replaced, the rest
/// kept byte for byte.
pub fn mask_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((key, _)) if is_secret_key(&decode_key(key)) => {
                out.push_str(key);
                out.push('=');
                out.push_str(MASK);
            }
            _ => out.push_str(pair),
        }
    }
    out
}

fn decode_key(key: &str) -> String {
    let plus = key.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

/// Masks the credentials of a URL given as text (a config value that may
/// not even parse): parsed, it is [`Target::masked`]; otherwise everything
/// after the scheme is hidden.
pub fn mask_url_str(s: &str) -> String {
    match Url::parse(s) {
        Ok(url) if url.has_host() => mask_url(&url),
        _ => match s.split_once("://") {
            Some((scheme, _)) if scheme.len() < 16 => format!("{scheme}://{MASK}"),
            _ => MASK.to_string(),
        },
    }
}
