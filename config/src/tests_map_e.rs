//! The `map_e` section: accepted forms, and refusals with their exact
//! line:column.

use super::*;
use crate::test_support::{ok, refused_with, BASE};

const FLETS_MAP_E: &str = include_str!("../examples/flets-map-e.yaml");

/// The issue's example with a LAN host of BASE: `map_e:` is line 6, the
/// rule's keys lines 9-12, the port forward line 14.
fn block(rule_lines: &str, forwards: &str) -> String {
    format!(
        "{BASE}map_e:\n  br: 2001:db8:77:bb::1\n  rule:\n{rule_lines}  port_forwards:\n{forwards}"
    )
}

const RULE: &str = "    ipv6_prefix: \"2001:db8:4d00::/40\"\n    ipv4_prefix: 198.51.100.0/24\n    ea_length: 16\n    psid_offset: 4\n";

fn forward(port: u16, to: &str) -> String {
    format!("    - {{ proto: tcp, port: {port}, to: \"{to}\" }}\n")
}

#[track_caller]
fn refused(text: &str, line: usize, column: usize, path: &str, needles: &[&str]) {
    refused_with(text, line, Some(column), Some(path), needles);
}

#[test]
fn accepts_the_issue_example() {
    let text = format!(
        "{BASE}map_e:\n  br: 2001:db8:77:bb::1\n  rule: {{ ipv6_prefix: \"2001:db8:4d00::/40\", \
         ipv4_prefix: \"198.51.100.0/24\", ea_length: 16, psid_offset: 4 }}\n  \
         iid_format: legacy\n  port_forwards:\n    - {{ proto: tcp, port: 7376, to: \"192.168.2.20:8080\" }}\n"
    );
    let config = ok(&text);
    let map_e = config.map_e.as_ref().unwrap();
    assert_eq!(map_e.br, Some("2001:db8:77:bb::1".parse().unwrap()));
    assert_eq!(map_e.iid_format, MapIidFormat::Legacy);
    let MapRuleChoice::Rule(spec) = &map_e.rule else {
        panic!("not an explicit rule: {:?}", map_e.rule);
    };
    let rule = spec.rule().unwrap();
    assert_eq!(rule.ipv6_prefix().to_string(), "2001:db8:4d00::/40");
    assert_eq!(rule.ipv4_prefix().to_string(), "198.51.100.0/24");
    assert_eq!((rule.ea_length(), rule.psid_offset()), (16, 4));
    assert_eq!(rule.psid_length(), 8);
    assert_eq!(
        map_e.port_forwards,
        vec![PortForward {
            proto: ForwardProto::Tcp,
            port: 7376,
            to: "192.168.2.20:8080".parse().unwrap(),
        }]
    );
    // Round trip: every key spelled out parses back to the same.
    assert_eq!(ok(&config.to_yaml()), config);
}

#[test]
fn accepts_rule_auto_and_rfc7597() {
    let config = ok(&format!("{BASE}map_e:\n  rule: auto\n"));
    let map_e = config.map_e.as_ref().unwrap();
    assert_eq!(map_e.rule, MapRuleChoice::Auto);
    assert_eq!(map_e.br, None);
    assert_eq!(map_e.iid_format, MapIidFormat::Legacy);
    assert!(map_e.port_forwards.is_empty());
    assert_eq!(ok(&config.to_yaml()), config);

    let config = ok(&format!(
        "{BASE}map_e:\n  rule: auto\n  br: 2001:db8:77:bb::2\n  iid_format: rfc7597\n"
    ));
    let map_e = config.map_e.as_ref().unwrap();
    assert_eq!(map_e.iid_format, MapIidFormat::Rfc7597);
    assert_eq!(
        ipoe_proto::map::IidFormat::from(map_e.iid_format),
        ipoe_proto::map::IidFormat::Rfc7597
    );
    assert_eq!(config.dslite, None);
}

#[test]
fn example_file_parses() {
    let config = ok(FLETS_MAP_E);
    assert_eq!(config.dslite, None);
    let map_e = config.map_e.as_ref().unwrap();
    assert_eq!(map_e.rule, MapRuleChoice::Auto);
    assert_eq!(map_e.port_forwards.len(), 1);
}

#[test]
fn refuses_map_e_with_dslite() {
    refused(
        &format!("{BASE}dslite:\n  aftr: transix-east\nmap_e:\n  rule: auto\n"),
        9,
        3,
        "map_e",
        &["map_e and dslite are both set"],
    );
}

#[test]
fn refuses_map_e_without_an_end_user_prefix() {
    let text = "wan:\n  interface: wan0\n  ipv6:\n    slaac: false\n    dhcpv6_pd: false\n\
                lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\nmap_e:\n  rule: auto\n";
    refused(text, 10, 3, "map_e", &["needs an end-user prefix"]);
    // The WAN /64 of a static address will do.
    ok(&text.replace(
        "    slaac: false\n",
        "    slaac: false\n    address: 2001:db8:0:100::2/64\n",
    ));
}

#[test]
fn refuses_an_explicit_rule_without_br() {
    let text = format!("{BASE}map_e:\n  rule:\n{RULE}");
    refused(&text, 6, 1, "map_e.br", &["without br"]);
}

#[test]
fn refuses_inconsistent_rules() {
    // /40 + 25 EA bits is a /65 end-user prefix.
    let rule = RULE.replace("ea_length: 16", "ea_length: 25");
    refused(
        &block(&rule, ""),
        11,
        16,
        "map_e.rule.ea_length",
        &["/65", "longer than /64"],
    );
    // 8 PSID bits after offset 9 do not fit a port.
    let rule = RULE.replace("psid_offset: 4", "psid_offset: 9");
    refused(
        &block(&rule, ""),
        12,
        18,
        "map_e.rule.psid_offset",
        &["psid_offset 9 with a 8-bit PSID"],
    );
    // A /32 with 17 EA bits: a 17-bit PSID.
    let rule = RULE
        .replace("198.51.100.0/24", "198.51.100.7/32")
        .replace("ea_length: 16", "ea_length: 17");
    refused(
        &block(&rule, ""),
        11,
        16,
        "map_e.rule.ea_length",
        &["17-bit PSID"],
    );
}

#[test]
fn refuses_bad_rule_values_where_they_are() {
    let rule = RULE.replace("ea_length: 16", "ea_length: 49");
    refused(
        &block(&rule, ""),
        11,
        16,
        "map_e.rule.ea_length",
        &["49 is out of range", "between 0 and 48"],
    );
    let rule = RULE.replace("psid_offset: 4", "psid_offset: 16");
    refused(
        &block(&rule, ""),
        12,
        18,
        "map_e.rule.psid_offset",
        &["16 is out of range"],
    );
    let rule = RULE.replace("198.51.100.0/24", "198.51.100.1/24");
    refused(
        &block(&rule, ""),
        10,
        18,
        "map_e.rule.ipv4_prefix",
        &["bits set past the prefix length", "198.51.100.0/24"],
    );
    let rule = RULE.replace("2001:db8:4d00::/40", "2001:db8:4d00::");
    refused(
        &block(&rule, ""),
        9,
        18,
        "map_e.rule.ipv6_prefix",
        &["no prefix length"],
    );
    refused(
        &format!("{BASE}map_e:\n  rule: manual\n"),
        7,
        9,
        "map_e.rule",
        &["\"manual\" is not a rule", "auto"],
    );
    let rule = format!("{RULE}    fmr: true\n");
    refused(
        &block(&rule, ""),
        13,
        5,
        "map_e.rule",
        &["unknown key `fmr`"],
    );
    refused(
        &format!("{BASE}map_e:\n  rule: auto\n  iid_format: rfc7598\n"),
        8,
        15,
        "map_e.iid_format",
        &["legacy", "rfc7597"],
    );
    refused(
        &format!("{BASE}map_e:\n  rule: auto\n  br: ff02::1\n"),
        8,
        7,
        "map_e.br",
        &["multicast"],
    );
}

#[test]
fn refuses_ports_in_no_port_set() {
    // Offset 4: 0-4095 (A = 0) belong to no CE; 4096 is the first port.
    ok(&block(RULE, &forward(4096, "192.168.2.20:80")));
    ok(&block(RULE, &forward(65535, "192.168.2.20:80")));
    refused(
        &block(RULE, &forward(4095, "192.168.2.20:80")),
        14,
        27,
        "map_e.port_forwards[0].port",
        &["port 4095 can be in no port set", "0-4095"],
    );
    refused(
        &block(RULE, &forward(80, "192.168.2.20:80")),
        14,
        27,
        "map_e.port_forwards[0].port",
        &["port 80"],
    );
    // Offset 6 (OCN): 0-1023 excluded.
    let ocn = RULE
        .replace("psid_offset: 4", "psid_offset: 6")
        .replace("ea_length: 16", "ea_length: 14");
    ok(&block(&ocn, &forward(1024, "192.168.2.20:80")));
    refused(
        &block(&ocn, &forward(1023, "192.168.2.20:80")),
        14,
        27,
        "map_e.port_forwards[0].port",
        &["0-1023"],
    );
    // Offset 0: every port but 0 can be someone's.
    let zero = RULE.replace("psid_offset: 4", "psid_offset: 0");
    ok(&block(&zero, &forward(1, "192.168.2.20:80")));
    // Port 0 is no port at all.
    refused(
        &block(RULE, &forward(0, "192.168.2.20:80")),
        14,
        27,
        "map_e.port_forwards[0].port",
        &["0 is out of range"],
    );
    // rule: auto: the built-in rules have offsets 4 and 6.
    let auto = |port| {
        format!(
            "{BASE}map_e:\n  rule: auto\n  port_forwards:\n{}",
            forward(port, "192.168.2.20:80")
        )
    };
    ok(&auto(1024));
    refused(
        &auto(1023),
        9,
        27,
        "map_e.port_forwards[0].port",
        &["below 1024"],
    );
}

#[test]
fn refuses_bad_forward_targets_and_duplicates() {
    for (to, needle) in [
        ("10.55.0.20:8080", "not a host of the LAN 192.168.2.0/24"),
        ("192.168.2.1:8080", "other than the router"),
        ("192.168.2.255:8080", "not a host"),
    ] {
        refused(
            &block(RULE, &forward(7376, to)),
            14,
            37,
            "map_e.port_forwards[0].to",
            &[needle],
        );
    }
    refused(
        &block(RULE, &forward(7376, "192.168.2.20:0")),
        14,
        37,
        "map_e.port_forwards[0].to",
        &["port 0"],
    );
    let twice = format!(
        "{}{}",
        forward(7376, "192.168.2.20:80"),
        forward(7376, "192.168.2.21:80")
    );
    refused(
        &block(RULE, &twice),
        15,
        27,
        "map_e.port_forwards[1].port",
        &["tcp port 7376 is forwarded twice"],
    );
    // The same port for TCP and UDP is two forwards.
    let both = format!(
        "{}    - {{ proto: udp, port: 7376, to: \"192.168.2.21:80\" }}\n",
        forward(7376, "192.168.2.20:80")
    );
    assert_eq!(
        ok(&block(RULE, &both)).map_e.unwrap().port_forwards.len(),
        2
    );
    refused(
        &block(
            RULE,
            "    - { proto: icmp, port: 7376, to: \"192.168.2.20:80\" }\n",
        ),
        14,
        16,
        "map_e.port_forwards[0].proto",
        &["`tcp` or `udp`"],
    );
}

#[test]
fn refuses_too_many_forwards() {
    let many: String = (0..=MapE::MAX_PORT_FORWARDS as u16)
        .map(|i| forward(5000 + i, "192.168.2.20:80"))
        .collect();
    let err = parse(&block(RULE, &many), "test.yaml").unwrap_err();
    assert_eq!(err.path(), Some("map_e.port_forwards[64]"));
    assert_eq!(err.line(), Some(14 + MapE::MAX_PORT_FORWARDS));
    let fits: String = (0..MapE::MAX_PORT_FORWARDS as u16)
        .map(|i| forward(5000 + i, "192.168.2.20:80"))
        .collect();
    ok(&block(RULE, &fits));
}
