//! The request writer: one `GET` per connection (`Connection: close`), with
//! HTTP Basic auth from explicit credentials or the URL's userinfo.

use super::target::Target;

/// Credentials for HTTP Basic auth (RFC 7617). `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub user: String,
    pub pass: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BasicAuth({}:{})", self.user, super::target::MASK)
    }
}

/// The bytes of `GET target` (HTTP/1.1). `auth` wins over the URL's
/// userinfo, which is otherwise sent as Basic auth and never on the
/// request line. Header values come from a parsed URL (no CR or LF can be
/// in them) and the caller's `user_agent`, whose control characters are
/// dropped.
pub fn get(target: &Target, auth: Option<&BasicAuth>, user_agent: &str) -> Vec<u8> {
    let mut req = String::with_capacity(256);
    req.push_str("GET ");
    req.push_str(&target.request_target());
    req.push_str(" HTTP/1.1\r\nHost: ");
    req.push_str(&target.host_header());
    req.push_str("\r\nUser-Agent: ");
    req.extend(user_agent.chars().filter(|c| !c.is_control()));
    req.push_str("\r\nAccept: */*\r\nConnection: close\r\n");
    let from_url = target
        .userinfo()
        .map(|(user, pass)| BasicAuth { user, pass });
    if let Some(auth) = auth.or(from_url.as_ref()) {
        req.push_str("Authorization: Basic ");
        req.push_str(&base64(format!("{}:{}", auth.user, auth.pass).as_bytes()));
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// Standard base64 with padding (RFC 4648 section 4), all Basic auth needs.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
