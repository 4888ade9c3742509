//! `lan.ipv6.mode` (issue 19): values, default and the prefix rules.

use super::*;
use crate::test_support::{ok, BASE};

#[track_caller]
fn refused_at(text: &str, at: &str, needles: &[&str]) {
    let err = match parse(text, "test.yaml") {
        Ok(c) => panic!("accepted: {c:?}\n{text}"),
        Err(e) => e.to_string(),
    };
    assert!(err.starts_with(at), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} missing from {err}");
    }
}

#[test]
fn mode_defaults_to_auto_and_takes_each_value() {
    assert_eq!(ok(BASE).lan.ipv6.mode, Ipv6Mode::Auto);
    for (word, want) in [
        ("auto", Ipv6Mode::Auto),
        ("pd", Ipv6Mode::Pd),
        ("proxy", Ipv6Mode::Proxy),
    ] {
        let c = ok(&format!("{BASE}  ipv6:\n    mode: {word}\n"));
        assert_eq!(c.lan.ipv6.mode, want, "{word}");
    }
    let c = ok(&format!(
        "{BASE}  ipv6:\n    mode: static\n    prefix: 2001:db8:0:1::/64\n"
    ));
    assert_eq!(c.lan.ipv6.mode, Ipv6Mode::Static);
}

#[test]
fn bad_mode_values_are_refused_with_their_position() {
    refused_at(
        &format!("{BASE}  ipv6:\n    mode: bridge\n"),
        "test.yaml:7:11: lan.ipv6.mode: ",
        &["unknown value `bridge`", "`auto`, `pd`, `proxy`, `static`"],
    );
    refused_at(
        &format!("{BASE}  ipv6:\n    mode: static\n"),
        "test.yaml:7:11: lan.ipv6.mode: ",
        &["static needs lan.ipv6.prefix"],
    );
    refused_at(
        &format!("{BASE}  ipv6:\n    mode: proxy\n    prefix: 2001:db8:0:1::/64\n"),
        "test.yaml:7:11: lan.ipv6.mode: ",
        &["only static (or auto) uses"],
    );
}
