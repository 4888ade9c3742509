//! The `ipip` section: the issue's example, refusals with their exact
//! line:column, and the masking of its secrets.

use super::*;
use crate::test_support::{ok, refused_with, BASE};

/// The issue's example (its port forward moved into the lab LAN):
/// `remote` line 7, `local_iid` line 8, `ipv4` line 9, `update` line 10,
/// `url` line 11, the port forward line 13.
const EXAMPLE: &str = "ipip:
  remote: 2001:db8:77:cc::1
  local_iid: \"::feed\"
  ipv4: 192.0.2.77
  update:
    url: \"http://[2001:db8:77:ee::80]:8082/update?user=lab&pass=secret\"
  port_forwards:
    - { proto: tcp, port: 8080, to: \"192.168.2.20:8080\" }
";

#[track_caller]
fn refused(text: &str, line: usize, column: usize, path: &str, needles: &[&str]) {
    refused_with(text, line, Some(column), Some(path), needles);
}

#[test]
fn accepts_the_issue_example_with_defaults() {
    let c = ok(&format!("{BASE}{EXAMPLE}"));
    let i = c.ipip.as_ref().unwrap();
    assert_eq!(i.remote, "2001:db8:77:cc::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(u128::from(i.local_iid), 0xfeed);
    assert_eq!(i.local_prefix, LocalPrefix::Wan);
    assert_eq!(i.ipv4, std::net::Ipv4Addr::new(192, 0, 2, 77));
    assert_eq!(i.port_forwards.len(), 1);
    assert_eq!(c.tunnel_mtu(), 1460);
    assert_eq!(c.mss_clamp_v4(), Some(1420));
    // The YAML written back parses to the same config.
    assert_eq!(ok(&c.to_yaml()), c);
}

#[test]
fn mtu_and_clamp_follow_a_smaller_tunnel() {
    let c = ok(&format!("{BASE}{EXAMPLE}  mtu: 1452\n"));
    assert_eq!(c.tunnel_mtu(), 1452);
    assert_eq!(c.mss_clamp_v4(), Some(1412));
    let c = ok(&format!("{BASE}{EXAMPLE}  mss_clamp: false\n"));
    assert_eq!(c.mss_clamp_v4(), None);
}

#[test]
fn refuses_two_methods_at_the_ipip_key() {
    refused(
        &format!("{BASE}dslite:\n  aftr: transix-east\n{EXAMPLE}"),
        9,
        3,
        "ipip",
        &["ipip and dslite are both set", "one of dslite, map_e, ipip"],
    );
    refused(
        &format!("{BASE}map_e:\n  rule: auto\n{EXAMPLE}"),
        9,
        3,
        "ipip",
        &["ipip and map_e are both set"],
    );
}

#[test]
fn refuses_a_bad_interface_id() {
    for (iid, needle) in [
        ("\"2001:db8::feed\"", "bits in the prefix's half"),
        ("\"::\"", "subnet-router anycast"),
        ("feed", "is not an interface ID"),
    ] {
        let text = format!("{BASE}{}", EXAMPLE.replace("\"::feed\"", iid));
        refused(&text, 8, 14, "ipip.local_iid", &[needle, "::feed"]);
    }
}

#[test]
fn refuses_bad_values_where_they_are() {
    let text = format!("{BASE}{}", EXAMPLE.replace("192.0.2.77", "192.168.2.77"));
    refused(&text, 9, 9, "ipip.ipv4", &["inside the LAN"]);
    let text = format!("{BASE}{}", EXAMPLE.replace("2001:db8:77:cc::1", "fe80::1"));
    refused(&text, 7, 11, "ipip.remote", &["link-local"]);
    // The address is ours whole: a system port is forwarded, port 0 not.
    let text = format!("{BASE}{}", EXAMPLE.replace("port: 8080", "port: 80"));
    let c = crate::parse(&text, "t.yaml").expect("port 80 forwarded");
    assert_eq!(c.ipip.unwrap().port_forwards[0].port, 80);
    let text = format!("{BASE}{}", EXAMPLE.replace("port: 8080", "port: 0"));
    refused(
        &text,
        13,
        27,
        "ipip.port_forwards[0].port",
        &["0 is out of range"],
    );
    let text = format!(
        "{BASE}{}",
        EXAMPLE.replace("192.168.2.20:8080", "10.0.0.20:8080")
    );
    refused(
        &text,
        13,
        37,
        "ipip.port_forwards[0].to",
        &["not a host of the LAN"],
    );
    let text = format!("{BASE}{EXAMPLE}  local_prefix: pd\n")
        .replace("wan0\n", "wan0\n  ipv6: { dhcpv6_pd: false }\n");
    refused(&text, 15, 17, "ipip.local_prefix", &["dhcpv6_pd is off"]);
    let text = format!(
        "{BASE}{}",
        EXAMPLE.replace("pass=secret\"\n", "pass=secret\"\n    password: hunter2\n")
    );
    refused(
        &text,
        11,
        5,
        "ipip.update",
        &["only one of username and password"],
    );
}

/// A URL that does not parse is refused without being quoted: it may
/// hold the password.
#[test]
fn a_bad_url_is_refused_without_its_secret() {
    let text = format!(
        "{BASE}{}",
        EXAMPLE.replace("http://[2001:db8:77:ee::80]", "ftp://[2001:db8:77:ee::80]")
    );
    let err = parse(&text, "test.yaml").unwrap_err().to_string();
    assert!(err.contains("scheme"), "{err}");
    assert!(!err.contains("secret"), "{err}");
}

#[test]
fn show_config_masks_every_secret() {
    let text = format!(
        "{BASE}{}",
        EXAMPLE.replace(
            "url: \"http://[2001:db8:77:ee::80]:8082/update?user=lab&pass=secret\"\n",
            "url: \"https://lab:urlpw@update.example/update?user=lab&pass=secret&token=tok1\"\n    username: basicuser\n    password: hunter2\n"
        )
    );
    let c = ok(&text);
    let yaml = c.masked().to_yaml();
    for secret in ["secret", "urlpw", "tok1", "hunter2"] {
        assert!(!yaml.contains(secret), "{secret} in {yaml}");
        assert!(!format!("{c:?}").contains(secret), "{secret} in Debug");
    }
    assert!(yaml.contains("user=lab"), "{yaml}");
    assert!(yaml.contains("basicuser"), "{yaml}");
    // The real config keeps them (the request needs them).
    let u = c.ipip.as_ref().unwrap().update.as_ref().unwrap();
    assert!(u.url.contains("pass=secret"));
    assert_eq!(u.password.as_deref(), Some("hunter2"));
}
