//! The `provisioning` section: defaults, accepted forms, refusals with
//! their position, and the masked secrets.

use super::*;
use crate::test_support::{ok, refused_with, BASE};

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[track_caller]
fn refused(text: &str, line: usize, path: &str, needle: &str) -> String {
    refused_with(text, line, None, Some(path), &[needle])
}

#[test]
fn absent_means_discovery_with_hb46pp_on() {
    let c = ok(BASE);
    assert!(!c.ipv4_method_given());
    assert!(c.provisioning.enabled);
    assert_eq!(c.provisioning.vendorid, "000000-ipoe_router");
    assert!(c.provisioning.map_rules.is_empty());
    assert_eq!(parse(&c.to_yaml(), "again.yaml").unwrap(), c);
}

#[test]
fn a_tunnel_section_means_no_discovery() {
    let c = ok(&format!("{BASE}dslite:\n  aftr: 2001:db8:aaaa::1\n"));
    assert!(c.ipv4_method_given());
}

#[test]
fn accepts_every_key() {
    let text = format!(
        "{BASE}provisioning:\n  enabled: true\n  vendorid: 0012e2-lab\n  user: lab-user\n  \
         password: s3cret_pw\n  token: {TOKEN}\n  ca_file: /etc/ipoed/lab-ca.pem\n  map_rules:\n    \
         - {{ ipv6_prefix: \"2001:db8:4d00::/40\", ipv4_prefix: 192.0.2.0/24, ea_length: 16, \
         psid_offset: 4, br: 2001:db8:77:bb::1 }}\n"
    );
    let c = ok(&text);
    let p = &c.provisioning;
    assert_eq!(p.vendorid, "0012e2-lab");
    assert_eq!(p.user.as_deref(), Some("lab-user"));
    assert_eq!(p.password.as_deref(), Some("s3cret_pw"));
    assert_eq!(p.token.as_deref(), Some(TOKEN));
    assert_eq!(p.map_rules.len(), 1);
    let r = p.map_rules[0].rule().unwrap();
    assert_eq!(r.ipv6_prefix().to_string(), "2001:db8:4d00::/40");
    assert_eq!(p.map_rules[0].iid_format, MapIidFormat::Legacy);
    // The secrets never appear in what show config and --json print.
    let yaml = c.to_yaml();
    let json = serde_json::to_string(&c).unwrap();
    for shown in [&yaml, &json] {
        assert!(!shown.contains("s3cret_pw"), "{shown}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(shown.contains(provisioning::MASK), "{shown}");
        assert!(shown.contains("lab-user"), "{shown}");
    }
}

#[test]
fn refuses_bad_values_at_their_key() {
    refused(
        &format!("{BASE}provisioning:\n  vendorid: lab\n"),
        7,
        "provisioning.vendorid",
        "OUI",
    );
    refused(
        &format!("{BASE}provisioning:\n  user: lab\n"),
        7,
        "provisioning.user",
        "both or neither",
    );
    let shown = refused(
        &format!("{BASE}provisioning:\n  user: lab\n  password: \"pass word\"\n"),
        8,
        "provisioning.password",
        "letters",
    );
    assert!(!shown.contains("pass word"), "{shown}");
    refused(
        &format!("{BASE}provisioning:\n  token: ABC\n"),
        7,
        "provisioning.token",
        "64 lower-case hex",
    );
    refused(
        &format!("{BASE}provisioning:\n  ca_file: lab.pem\n"),
        7,
        "provisioning.ca_file",
        "absolute",
    );
    refused(
        &format!(
            "{BASE}provisioning:\n  map_rules:\n    - {{ ipv6_prefix: \"2001:db8:4d00::/40\", \
             ipv4_prefix: 192.0.2.0/24, ea_length: 40, psid_offset: 4, br: 2001:db8:77:bb::1 }}\n"
        ),
        8,
        "provisioning.map_rules[0].ea_length",
        "consistent rule",
    );
    // Unknown keys are refused like everywhere else.
    assert!(parse(&format!("{BASE}provisioning:\n  url: x\n"), "t.yaml").is_err());
}
