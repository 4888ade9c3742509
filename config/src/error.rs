//! `ConfigError` and the translation of serde_yaml_ng errors into
//! `FILE:LINE:COLUMN: PATH: MESSAGE` refusals.

use crate::locate::{locate, Target};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, permissions, not UTF-8).
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML or not a valid configuration.
    #[error("{file}:{line}:{column}: {}{message}", path_prefix(path))]
    Invalid {
        file: String,
        /// 1-based line of the offending value (or key, or mapping).
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// Dotted key path such as `lan.ipv6.prefix`, when known.
        path: Option<String>,
        /// What was found and what was expected.
        message: String,
    },
}

fn path_prefix(path: &Option<String>) -> String {
    path.as_ref().map(|p| format!("{p}: ")).unwrap_or_default()
}

impl ConfigError {
    /// The file name given to [`crate::load`] or [`crate::parse`].
    pub fn file(&self) -> &str {
        match self {
            Self::Io { file, .. } | Self::Invalid { file, .. } => file,
        }
    }

    /// 1-based line of the refusal; `None` for I/O errors.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Io { .. } => None,
            Self::Invalid { line, .. } => Some(*line),
        }
    }

    /// 1-based column of the refusal; `None` for I/O errors.
    pub fn column(&self) -> Option<usize> {
        match self {
            Self::Io { .. } => None,
            Self::Invalid { column, .. } => Some(*column),
        }
    }

    /// Dotted key path of the offending value (`dataplane.cores[1]`), when
    /// known.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Io { .. } => None,
            Self::Invalid { path, .. } => path.as_deref(),
        }
    }

    /// The message without file, position and path.
    pub fn message(&self) -> String {
        match self {
            Self::Io { source, .. } => format!("cannot read: {source}"),
            Self::Invalid { message, .. } => message.clone(),
        }
    }

    pub(crate) fn invalid(
        file: &str,
        (line, column): (usize, usize),
        path: Option<String>,
        message: String,
    ) -> Self {
        Self::Invalid {
            file: file.to_owned(),
            line,
            column,
            path,
            message,
        }
    }

    /// A YAML syntax error (from the first, schema-less parse).
    pub(crate) fn syntax(file: &str, text: &str, err: &serde_yaml::Error) -> Self {
        let (pos, message) = strip_location(err);
        let (path, message) = split_path(&message);
        let pos = pos.unwrap_or_else(|| second_document(text).unwrap_or((1, 1)));
        let message = if message.contains("more than one document") {
            "a second YAML document starts here (expected a single document)".to_owned()
        } else if let Some(key) = message.strip_prefix("duplicate entry with key ") {
            format!("duplicate key {key} in this mapping (expected each key once)")
        } else if message.starts_with("unknown anchor") {
            format!("invalid YAML: {message} (expected an alias to an anchor defined above it)")
        } else {
            format!(
                "invalid YAML: {message} (expected well-formed YAML: `key: value` \
                 lines, nested keys indented consistently with spaces)"
            )
        };
        Self::invalid(file, pos, path, message)
    }

    /// A schema error reported by serde (wrong type, unknown or missing key,
    /// a value refused by a validating `Deserialize` impl).
    pub(crate) fn schema(file: &str, text: &str, err: &serde_yaml::Error) -> Self {
        let (pos, message) = strip_location(err);
        let (path, message) = split_path(&message);
        let mut pos = pos.unwrap_or((1, 1));
        let message = if let Some(key) = missing_key(message) {
            // serde points at the start of the mapping's contents; the key of
            // the section that lacks the entry is where a reader looks.
            if let Some(section) = path.as_deref() {
                pos = locate(text, section, Target::Key).unwrap_or(pos);
            }
            match missing_key_hint(path.as_deref(), key) {
                Some(hint) => format!("missing required key `{key}` (expected {hint})"),
                None => format!("missing required key `{key}`"),
            }
        } else {
            reword(message)
        };
        Self::invalid(file, pos, path, message)
    }
}

/// The error's position, and its text without serde_yaml_ng's
/// " at line L column C" (the position is printed in front instead).
fn strip_location(err: &serde_yaml::Error) -> (Option<(usize, usize)>, String) {
    let text = err.to_string();
    match err.location() {
        Some(loc) => {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            (
                Some((loc.line(), loc.column())),
                text.replacen(&suffix, "", 1),
            )
        }
        None => (None, text),
    }
}

/// serde_yaml_ng prefixes messages with the dotted path of the value, e.g.
/// `lan.mtu: invalid type: ...`. Paths are made of our own (known) keys, so a
/// leading run of key characters followed by ": " is a path and nothing else.
fn split_path(message: &str) -> (Option<String>, &str) {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']');
    match message.split_once(": ") {
        Some((path, rest)) if !path.is_empty() && path.chars().all(is_path_char) => {
            (Some(path.to_owned()), rest)
        }
        _ => (None, message),
    }
}

/// The key name of serde's "missing field `x`" message.
fn missing_key(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

fn missing_key_hint(section: Option<&str>, key: &str) -> Option<&'static str> {
    Some(match (section, key) {
        (None, "wan") => "a `wan:` section with at least `interface`",
        (None, "lan") => "a `lan:` section with at least `interface` and `ipv4`",
        (_, "interface") => "the name of a network interface, such as enp1s0",
        (Some("lan"), "ipv4") => {
            "the router's IPv4 address with prefix length, such as 192.168.2.1/24"
        }
        (Some("dslite"), "aftr") => "the AFTR's IPv6 address, such as 2404:8e00::feed:100",
        _ => return None,
    })
}

/// Rewords serde's standard messages ("invalid type: X, expected Y") into
/// this crate's "found ... (expected ...)" style; our own messages pass.
fn reword(message: &str) -> String {
    let rewrites: [(&str, &str); 5] = [
        ("unknown field ", "unknown key "),
        ("unknown variant ", "unknown value "),
        ("invalid type: ", "wrong type: found "),
        ("invalid value: ", "invalid value: found "),
        ("invalid length ", "wrong number of entries: "),
    ];
    for (serde_prefix, ours) in rewrites {
        if let Some(rest) = message.strip_prefix(serde_prefix) {
            if let Some((found, expected)) = rest.split_once(", expected ") {
                let found = found.replace("unit value", "an empty value");
                // What serde_yaml_ng says when a keyword enum gets a
                // sequence or mapping; the words are listed in the README.
                let expected = expected.replace("a YAML tag starting with '!'", "a single word");
                return format!("{ours}{found} (expected {expected})");
            }
        }
    }
    if let Some(key) = message
        .strip_prefix("duplicate field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return format!("duplicate key `{key}` (expected each key once)");
    }
    message.to_owned()
}

/// Where the second document of a multi-document stream starts (the
/// parser does not say): the first `---` line after any content.
fn second_document(text: &str) -> Option<(usize, usize)> {
    let mut started = false;
    for (index, line) in text.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_marker && started {
            return Some((index + 1, 1));
        }
        let trimmed = line.trim_start();
        if is_marker || !(trimmed.is_empty() || trimmed.starts_with('#')) {
            started = true;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths_only() {
        assert_eq!(
            split_path("lan.ipv6.prefix: 2001:db8::/48 is not a /64"),
            (
                Some("lan.ipv6.prefix".to_owned()),
                "2001:db8::/48 is not a /64"
            )
        );
        assert_eq!(
            split_path("dataplane.cores[1]: x"),
            (Some("dataplane.cores[1]".to_owned()), "x")
        );
        assert_eq!(
            split_path("invalid type: string \"a\", expected u16"),
            (None, "invalid type: string \"a\", expected u16")
        );
        assert_eq!(
            split_path("missing field `wan`"),
            (None, "missing field `wan`")
        );
    }

    #[test]
    fn rewords_serde_messages() {
        assert_eq!(
            reword("unknown field `foo`, expected one of `a`, `b`"),
            "unknown key `foo` (expected one of `a`, `b`)"
        );
        assert_eq!(
            reword("invalid type: string \"abc\", expected an MTU"),
            "wrong type: found string \"abc\" (expected an MTU)"
        );
        assert_eq!(reword("x is bad (expected y)"), "x is bad (expected y)");
    }

    #[test]
    fn finds_second_document() {
        assert_eq!(second_document("a: 1\n---\nb: 2\n"), Some((2, 1)));
        assert_eq!(
            second_document("# c\n---\na: 1\n--- \nb: 2\n"),
            Some((4, 1))
        );
        assert_eq!(second_document("---\na: 1\n"), None);
    }

    #[test]
    fn display_formats() {
        let e = ConfigError::invalid("c.yaml", (3, 5), Some("a.b".into()), "bad".into());
        assert_eq!(e.to_string(), "c.yaml:3:5: a.b: bad");
        assert_eq!(
            (e.line(), e.column(), e.path()),
            (Some(3), Some(5), Some("a.b"))
        );
        let e = ConfigError::invalid("c.yaml", (1, 1), None, "bad".into());
        assert_eq!(e.to_string(), "c.yaml:1:1: bad");
    }
}
