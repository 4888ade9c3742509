//! The `4over6.info` TXT record (HB46PP 3.1):
//! `v=v6mig-1 url=https://vne.example.jp/rule.cgi t=b`.

use crate::http::target::{Target, UrlError};

/// The name whose TXT record points at the provisioning server.
pub const TXT_NAME: &str = "4over6.info";
/// The only version of the record.
pub const VERSION: &str = "v6mig-1";
/// TXT records looked at per answer, and bytes per record (the
/// concatenation of its character-strings).
pub const MAX_RECORDS: usize = 16;
pub const MAX_RECORD_LEN: usize = 4096;

/// Where the provisioning server is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    pub url: Target,
    /// `t=b`: verify the server's certificate. `t=a` (and any `http` URL,
    /// which has no certificate) does not.
    pub verify: bool,
}

/// Why the answer gave no server.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxtError {
    /// No record starts with `v=v6mig-`: as NODATA for HB46PP.
    #[error("no v6mig record")]
    NoRecord,
    #[error("more than one different v6mig record")]
    Ambiguous,
    #[error("record version {0:?} is not {VERSION}")]
    Version(String),
    #[error("record is not UTF-8 or longer than {MAX_RECORD_LEN} bytes")]
    Encoding,
    #[error("field {0:?} given twice")]
    Duplicate(String),
    #[error("record has no url=")]
    NoUrl,
    #[error("url: {0}")]
    Url(#[from] UrlError),
    #[error("t={0:?} is neither a nor b")]
    BadT(String),
}

/// Reads the TXT answer: each entry is one record, its character-strings
/// joined. Records of other uses at the same name are skipped; unknown
/// fields are ignored; a missing `t` means `b` (checking is the safe side).
pub fn parse(records: &[Vec<u8>]) -> Result<Discovery, TxtError> {
    let mut found: Option<&[u8]> = None;
    for record in records.iter().take(MAX_RECORDS) {
        let trimmed = record.trim_ascii_start();
        if !trimmed.starts_with(b"v=v6mig-") {
            continue;
        }
        match found {
            Some(prev) if prev.trim_ascii() != record.trim_ascii() => {
                return Err(TxtError::Ambiguous)
            }
            _ => found = Some(record),
        }
    }
    let record = found.ok_or(TxtError::NoRecord)?;
    if record.len() > MAX_RECORD_LEN {
        return Err(TxtError::Encoding);
    }
    let text = std::str::from_utf8(record).map_err(|_| TxtError::Encoding)?;
    let (mut v, mut url, mut t) = (None, None, None);
    for field in text.split_ascii_whitespace() {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        let slot = match key {
            "v" => &mut v,
            "url" => &mut url,
            "t" => &mut t,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(TxtError::Duplicate(key.to_string()));
        }
    }
    let v = v.unwrap_or("");
    if v != VERSION {
        return Err(TxtError::Version(v.chars().take(32).collect()));
    }
    let url = Target::parse(url.ok_or(TxtError::NoUrl)?)?;
    let verify = match t {
        None | Some("b") => true,
        Some("a") => false,
        Some(other) => return Err(TxtError::BadT(other.chars().take(32).collect())),
    };
    Ok(Discovery {
        verify: verify && url.is_https(),
        url,
    })
}
