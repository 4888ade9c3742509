//! The `provisioning` section: how ipoed finds its IPv4 method when the
//! config has no `dslite` or `map_e` (issue 20): HB46PP settings
//! (vendorid, credentials, the CA of a provider's server) and extra MAP
//! rules consulted before the built-in table. The secrets (`password`,
//! `token`) are written masked by `Serialize` (`show config`, `--json`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

use crate::map_e::MapRuleEntry;

/// What `password` and `token` are written as: the same mask as the
/// update URL's secrets (`ipip.update`) and the HTTP client's logs.
pub use ipoe_proto::http::target::MASK;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "a mapping of provisioning settings"
)]
pub struct Provisioning {
    /// HB46PP (the `4over6.info` TXT record and the provisioning server).
    /// The other discovery steps run either way.
    pub enabled: bool,
    /// HB46PP `vendorid`: an OUI (6 hex digits), optionally `-` and up to
    /// 24 of `[0-9A-Za-z_]`.
    pub vendorid: String,
    /// HB46PP `user`/`pass` (`[0-9A-Za-z_-]`, up to 32 each), both or
    /// neither.
    pub user: Option<String>,
    #[serde(serialize_with = "masked")]
    pub password: Option<String>,
    /// A 64-hex-digit HB46PP token given by the provider.
    #[serde(serialize_with = "masked")]
    pub token: Option<String>,
    /// A PEM file of CAs trusted for the provisioning server, besides the
    /// built-in webpki roots.
    pub ca_file: Option<PathBuf>,
    /// MAP rules consulted before the built-in JP table, at most
    /// [`Provisioning::MAX_MAP_RULES`].
    pub map_rules: Vec<MapRuleEntry>,
}

impl Provisioning {
    pub const MAX_MAP_RULES: usize = 64;
}

impl Default for Provisioning {
    fn default() -> Self {
        Provisioning {
            enabled: true,
            // No OUI of our own: the zero OUI with the product's name.
            vendorid: "000000-ipoe_router".into(),
            user: None,
            password: None,
            token: None,
            ca_file: None,
            map_rules: Vec::new(),
        }
    }
}

fn masked<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str(MASK),
        None => s.serialize_none(),
    }
}

fn charset(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// The checks of the section; `Err((key, message))`.
pub(crate) fn check(p: &Provisioning) -> Result<(), (String, String)> {
    let (oui, code) = p.vendorid.split_once('-').unwrap_or((&p.vendorid, ""));
    let code_ok = code.is_empty() && !p.vendorid.contains('-') || charset(code, 24, b"_");
    if oui.len() != 6 || !oui.bytes().all(|b| b.is_ascii_hexdigit()) || !code_ok {
        return Err((
            "provisioning.vendorid".into(),
            format!(
                "{:?} (expected 6 hex digits, an OUI, optionally followed by - and up to \
                 24 letters, digits or _)",
                p.vendorid
            ),
        ));
    }
    match (&p.user, &p.password) {
        (Some(_), None) | (None, Some(_)) => {
            return Err((
                "provisioning.user".into(),
                "user and password go together (expected both or neither)".into(),
            ))
        }
        (Some(u), Some(pw)) => {
            if !charset(u, 32, b"_-") {
                return Err((
                    "provisioning.user".into(),
                    "expected 1 to 32 letters, digits, _ or -".into(),
                ));
            }
            if !charset(pw, 32, b"_-") {
                // The value itself is never repeated.
                return Err((
                    "provisioning.password".into(),
                    "expected 1 to 32 letters, digits, _ or -".into(),
                ));
            }
        }
        (None, None) => {}
    }
    if let Some(t) = &p.token {
        if t.len() != 64 || !t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err((
                "provisioning.token".into(),
                "expected 64 lower-case hex digits".into(),
            ));
        }
    }
    if p.ca_file.as_ref().is_some_and(|f| !f.is_absolute()) {
        return Err((
            "provisioning.ca_file".into(),
            "expected an absolute path to a PEM file".into(),
        ));
    }
    if p.map_rules.len() > Provisioning::MAX_MAP_RULES {
        return Err((
            format!("provisioning.map_rules[{}]", Provisioning::MAX_MAP_RULES),
            format!(
                "{} rules listed (expected at most {})",
                p.map_rules.len(),
                Provisioning::MAX_MAP_RULES
            ),
        ));
    }
    for (i, r) in p.map_rules.iter().enumerate() {
        if let Err(e) = r.rule() {
            return Err((
                format!("provisioning.map_rules[{i}].ea_length"),
                format!("{e} (expected a consistent rule, as for map_e.rule)"),
            ));
        }
    }
    Ok(())
}
