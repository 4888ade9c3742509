//! The built-in MAP-E rules of the Japanese VNEs (v6plus, OCN Virtual
//! Connect, BIGLOBE), used with `map_e.rule: auto`: the rule whose IPv6
//! prefix is the longest to contain the end-user prefix wins.
//!
//! The data is `jp_rules.csv`, dated, with its source in its header; how to
//! update it is in config/README.md. These are real provider prefixes and
//! BR addresses shipped for users; tests use them only as arithmetic.

use std::fmt;
use std::net::Ipv6Addr;
use std::sync::OnceLock;

use super::{Prefix4, Prefix6, Rule};

/// The table as shipped.
pub const TABLE: &str = include_str!("jp_rules.csv");

/// The date of the table (its header's `Date:` line).
pub const TABLE_DATE: &str = "2026-12-06";

/// Which VNE a built-in rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// JPNE/JPIX v6plus and its resellers.
    V6plus,
    /// OCN Virtual Connect (also plala).
    Ocn,
    /// BIGLOBE's IPv6 option.
    Biglobe,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Self::V6plus => "v6plus",
            Self::Ocn => "ocn",
            Self::Biglobe => "biglobe",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpRule {
    pub provider: Provider,
    pub rule: Rule,
    pub br: Ipv6Addr,
}

/// Parses one data row; the error names the problem.
pub fn parse_row(line: &str) -> Result<JpRule, String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [provider, v6, v4, ea, offset, br] = fields[..] else {
        return Err(format!("{line:?} does not have 6 fields"));
    };
    let provider = match provider {
        "v6plus" => Provider::V6plus,
        "ocn" => Provider::Ocn,
        "biglobe" => Provider::Biglobe,
        other => return Err(format!("unknown provider {other:?}")),
    };
    let v6: Prefix6 = v6.parse()?;
    let v4: Prefix4 = v4.parse()?;
    let ea: u8 = ea.parse().map_err(|_| format!("bad ea_length {ea:?}"))?;
    let offset: u8 = offset
        .parse()
        .map_err(|_| format!("bad psid_offset {offset:?}"))?;
    let br: Ipv6Addr = br.parse().map_err(|_| format!("bad BR {br:?}"))?;
    let rule = Rule::new(v6, v4, ea, offset).map_err(|e| e.to_string())?;
    Ok(JpRule { provider, rule, br })
}

/// The data rows of `text` (comments and blank lines skipped), each parsed.
pub fn parse_table(text: &str) -> impl Iterator<Item = Result<JpRule, String>> + '_ {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse_row)
}

/// The shipped rules, parsed once. A row that fails to parse is left out
/// (the unit tests require that none does).
pub fn rules() -> &'static [JpRule] {
    static RULES: OnceLock<Vec<JpRule>> = OnceLock::new();
    RULES.get_or_init(|| parse_table(TABLE).filter_map(Result::ok).collect())
}

/// The built-in rule for an end-user prefix (or an address in it): the
/// longest rule IPv6 prefix that contains it.
pub fn lookup(end_user: Ipv6Addr) -> Option<&'static JpRule> {
    lookup_in(rules(), end_user)
}

/// [`lookup`] in another table (a user's, or a test's).
pub fn lookup_in(rules: &[JpRule], end_user: Ipv6Addr) -> Option<&JpRule> {
    rules
        .iter()
        .filter(|r| r.rule.ipv6_prefix().contains(end_user))
        .max_by_key(|r| r.rule.ipv6_prefix().prefix_len())
}

/// Whether some built-in rule can carry `port` (see
/// [`Rule::port_possible`]): what a port forward under `rule: auto` is
/// checked against before the line's rule is known.
pub fn port_possible_under_some_rule(port: u16) -> bool {
    rules().iter().any(|r| r.rule.port_possible(port))
}
