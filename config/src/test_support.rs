//! What the config tests share: a minimal config to append snippets to,
//! and the accepted/refused assertions.

use super::*;

/// Lines 1-5; snippets appended by tests start at line 6.
pub(crate) const BASE: &str = "\
wan:
  interface: wan0
lan:
  interface: lan0
  ipv4: 192.168.2.1/24
";

#[track_caller]
pub(crate) fn ok(text: &str) -> Config {
    parse(text, "test.yaml").unwrap_or_else(|e| panic!("refused: {e}\n{text}"))
}

/// Asserts that `text` is refused at `line` (and `column`, when given) for
/// `path` (when given), with every needle in the message; returns it.
#[track_caller]
pub(crate) fn refused_with(
    text: &str,
    line: usize,
    column: Option<usize>,
    path: Option<&str>,
    needles: &[&str],
) -> String {
    let err = match parse(text, "test.yaml") {
        Ok(config) => panic!("accepted: {config:?}\n{text}"),
        Err(err) => err,
    };
    let shown = err.to_string();
    assert_eq!(err.line(), Some(line), "line of: {shown}");
    if let Some(column) = column {
        assert_eq!(err.column(), Some(column), "column of: {shown}");
    }
    if let Some(path) = path {
        assert_eq!(err.path(), Some(path), "path of: {shown}");
    }
    for needle in needles {
        assert!(shown.contains(needle), "{shown:?} lacks {needle:?}");
    }
    shown
}
