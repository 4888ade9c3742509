//! `lan.status_page` (issue 21): on by default, a boolean, and port 80 of
//! the LAN addresses is its own.

use super::*;
use crate::test_support::BASE;

#[test]
fn status_page_defaults_on_and_round_trips() {
    let c = parse(BASE, "t.yaml").unwrap();
    assert!(c.lan.status_page);
    let off = parse(&format!("{BASE}  status_page: false\n"), "t.yaml").unwrap();
    assert!(!off.lan.status_page);
    assert_eq!(parse(&off.to_yaml(), "again.yaml").unwrap(), off);
}

#[test]
fn status_page_refuses_a_non_boolean_with_its_position() {
    let err = parse(&format!("{BASE}  status_page: sometimes\n"), "t.yaml").unwrap_err();
    assert_eq!((err.line(), err.column()), (Some(6), Some(16)), "{err}");
    assert_eq!(err.path(), Some("lan.status_page"), "{err}");
    assert!(err.to_string().contains("expected a boolean"), "{err}");
}

#[test]
fn metrics_on_lan_port_80_conflicts_with_the_status_page() {
    let text = format!("{BASE}control:\n  metrics: 192.168.2.1:80\n");
    let err = parse(&text, "t.yaml").unwrap_err();
    assert_eq!((err.line(), err.column()), (Some(7), Some(12)), "{err}");
    assert_eq!(err.path(), Some("control.metrics"), "{err}");
    assert!(err.to_string().contains("status page"), "{err}");
    // Without the page, or on loopback, port 80 is free for the metrics.
    let off = format!("{BASE}  status_page: false\ncontrol:\n  metrics: 192.168.2.1:80\n");
    assert!(parse(&off, "t.yaml").is_ok());
    let lo = format!("{BASE}control:\n  metrics: 127.0.0.1:80\n");
    assert!(parse(&lo, "t.yaml").is_ok());
}
