//! Parsing, refusals (each with its exact line:column) and round trips.

use super::*;
use crate::test_support::{ok, refused_with, BASE};

const FLETS: &str = include_str!("../examples/flets-dslite.yaml");
const LAB: &str = include_str!("../examples/lab.yaml");
const LAB_AUTO: &str = include_str!("../examples/lab-auto.yaml");

// --- accepted configurations ------------------------------------------------

/// Asserts a refusal at `line:column` for `path`, whose message contains
/// every needle.
#[track_caller]
fn refused(text: &str, line: usize, column: usize, path: Option<&str>, needles: &[&str]) {
    refused_with(text, line, Some(column), path, needles);
}

#[test]
fn flets_example_parses() {
    let config = ok(FLETS);
    assert_eq!(config.wan.interface, "enp1s0");
    assert_eq!(config.lan.interface, "enp2s0");
    assert_eq!(config.lan.ipv4, "192.168.2.1/24".parse().unwrap());
    let dslite = config.dslite.as_ref().unwrap();
    assert_eq!(dslite.aftr, Aftr::Name("gw.transix.jp".into()));
    assert_eq!(dslite.b4_address, B4Source::Wan);
    assert_eq!(config.lan.ipv6.subnet_id, 1);
    assert_eq!(config.wan.ipv6.dhcpv6_pd.as_ref().unwrap().prefix_hint, 60);
    assert_eq!(config.dataplane.workers, 1);
    assert_eq!(config.tunnel_mtu(), 1460);
    assert_eq!(config.lan_ipv6_address(), None);
    assert_eq!(config.mss_clamp_v4(), Some(1420));
    assert_eq!(config.firewall, Firewall::default());
    // The commented pinhole example is valid once uncommented.
    let opened = FLETS.replace(
        "  pinholes: []\n  # pinholes:\n  #   - {",
        "  pinholes:\n    - {",
    );
    assert_ne!(opened, FLETS);
    assert_eq!(ok(&opened).firewall.pinholes.len(), 1);
}

#[test]
fn lab_example_parses() {
    let config = ok(LAB);
    assert_eq!(config.wan.interface, "wan0");
    assert_eq!(
        config.wan.ipv6.address,
        Some("2001:db8:0:100::2/64".parse().unwrap())
    );
    assert_eq!(config.wan.ipv6.gateway, Some("fe80::1".parse().unwrap()));
    assert_eq!(config.lan.interface, "lan0");
    assert_eq!(config.lan.ipv4.to_string(), "192.168.2.1/24");
    assert_eq!(
        config.lan.ipv6.prefix.map(|p| p.to_string()).as_deref(),
        Some("2001:db8:0:111::/64")
    );
    assert_eq!(
        config.lan_ipv6_address(),
        Some("2001:db8:0:111::1".parse().unwrap())
    );
    assert_eq!(
        config.dslite.as_ref().map(|d| d.aftr.clone()),
        Some(Aftr::Address("2001:db8:aaaa::1".parse().unwrap()))
    );
    assert_eq!(config.dataplane.workers, 1);
    assert!(config.dataplane.cores.is_empty());
    assert_eq!(
        config.control.socket,
        PathBuf::from("/run/ipoed-lab/ipoed.sock")
    );
    assert_eq!(
        config.control.state_dir,
        PathBuf::from("/run/ipoed-lab/state")
    );
}

#[test]
fn minimal_config_gets_defaults() {
    let config = ok(BASE);
    assert_eq!(config.wan.mtu, 1500);
    assert_eq!(config.lan.mtu, 1500);
    assert_eq!(config.wan.ipv6, WanIpv6::default());
    assert_eq!(config.lan.ipv6, LanIpv6::default());
    assert_eq!(config.dslite, None);
    assert_eq!(config.dataplane, Dataplane::default());
    assert_eq!(config.dataplane.batch, 64);
    assert_eq!(config.dataplane.fill_ring, 4096);
    assert_eq!(config.dataplane.frames_per_worker, 16384);
    assert_eq!(config.dataplane.xdp_mode, XdpMode::Auto);
    assert_eq!(config.dataplane.zero_copy, ZeroCopy::Auto);
    assert_eq!(config.dataplane.poll, PollMode::Adaptive);
    assert_eq!(config.control, Control::default());
    assert_eq!(
        config.control.socket,
        PathBuf::from("/run/ipoed/ipoed.sock")
    );
    assert_eq!(config.control.state_dir, PathBuf::from("/var/lib/ipoed"));
    assert_eq!(config.control.max_neighbors, 1024);
    assert_eq!(config.control.log_level, LogLevel::Info);
    assert_eq!(config.tunnel_mtu(), 1460);
}

#[test]
fn empty_and_null_sections_mean_defaults() {
    let config = ok(&format!(
        "{BASE}  ipv6:\ndataplane:\ncontrol: ~\ndslite: null\n"
    ));
    assert_eq!(config.lan.ipv6, LanIpv6::default());
    assert_eq!(config.dataplane, Dataplane::default());
    assert_eq!(config.control, Control::default());
    assert_eq!(config.dslite, None);
}

#[test]
fn zero_copy_takes_words_not_booleans() {
    for (word, want) in [
        ("on", ZeroCopy::On),
        ("off", ZeroCopy::Off),
        ("auto", ZeroCopy::Auto),
        ("'on'", ZeroCopy::On),
    ] {
        let config = ok(&format!("{BASE}dataplane:\n  zero_copy: {word}\n"));
        assert_eq!(config.dataplane.zero_copy, want, "{word}");
    }
    refused(
        &format!("{BASE}dataplane:\n  zero_copy: true\n"),
        7,
        14,
        Some("dataplane.zero_copy"),
        &[
            "unknown value `true`",
            "expected one of `auto`, `on`, `off`",
        ],
    );
}

#[test]
fn everything_set_and_flow_style() {
    let config = ok("\
wan: {interface: wan0, mtu: 1778, ipv6: {address: 2001:db8::2/64, gateway: 2001:db8::1}}
lan:
  interface: \"lan0\"
  mtu: 1280
  ipv4: 10.0.0.1/8
  ipv6: {prefix: '2001:db8:1::/64', address: 2001:db8:1::abc, subnet_id: 7}
dslite: {aftr: 2404:8e00::feed:100, b4_address: delegated, mtu: 1738, mss_clamp: 1698}
firewall: {enabled: false, ipv6_mss_clamp: 1220, pinholes: [{host: \"02:00:00:00:01:10\", proto: icmpv6}]}
dataplane:
  workers: 2
  cores:
    - 1
    - 0
  xdp_mode: native
  zero_copy: off
  batch: 256
  poll: busy
  fill_ring: 512
  frames_per_worker: 262144
control:
  socket: /tmp/x.sock
  state_dir: /tmp/state
  group: ipoed
  max_neighbors: 65536
  log_level: trace
");
    assert_eq!(config.wan.mtu, 1778);
    assert_eq!(config.tunnel_mtu(), 1738);
    assert_eq!(config.dataplane.cores, vec![CpuId(1), CpuId(0)]);
    assert_eq!(
        config.dslite.as_ref().unwrap().b4_address,
        B4Source::Delegated
    );
    assert_eq!(config.control.group.as_deref(), Some("ipoed"));
    assert_eq!(
        config.lan_ipv6_address(),
        Some("2001:db8:1::abc".parse().unwrap())
    );
    assert_eq!(config.lan.ipv6.subnet_id, 7);
    assert_eq!(config.mss_clamp_v4(), Some(1698));
    assert!(!config.firewall.enabled);
    assert_eq!(config.firewall.ipv6_mss_clamp, Some(1220));
    let again = ok(&config.to_yaml());
    assert_eq!(again, config);
}

#[test]
fn round_trips_through_yaml() {
    let firewall = format!("{BASE}{FIREWALL}");
    for text in [FLETS, LAB, LAB_AUTO, BASE, &firewall] {
        let config = ok(text);
        let yaml = config.to_yaml();
        assert_eq!(ok(&yaml), config, "{yaml}");
    }
}

#[test]
fn load_reads_files() {
    let dir = std::env::temp_dir().join(format!("ipoe-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.yaml");
    std::fs::write(&file, LAB).unwrap();
    assert_eq!(load(&file).unwrap(), ok(LAB));

    std::fs::write(&file, "wan: [\n").unwrap();
    let err = load(&file).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2:1: ", file.display())),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let err = load(&dir.join("missing.yaml")).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!(
            "{}: cannot read: ",
            dir.join("missing.yaml").display()
        )),
        "{shown}"
    );
    assert_eq!((err.line(), err.column(), err.path()), (None, None, None));
}

// --- refusals, one per class, each with its exact position ------------------

#[test]
fn refuses_unknown_top_level_key() {
    refused(
        &format!("{BASE}dslte:\n  aftr: 2404:8e00::feed:100\n"),
        6,
        1,
        None,
        &[
            "unknown key `dslte`",
            "expected one of `wan`, `lan`, `dslite`, `map_e`, `ipip`, `provisioning`, `firewall`, `dataplane`, `control`",
        ],
    );
}

#[test]
fn refuses_unknown_nested_key() {
    refused(
        "wan:\n  interface: wan0\n  ipv6:\n    adress: 2001:db8::2/64\nlan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n",
        4,
        5,
        Some("wan.ipv6"),
        &["unknown key `adress`", "expected one of `address`, `gateway`"],
    );
}

#[test]
fn refuses_wrong_type() {
    refused(
        "wan:\n  interface: wan0\n  mtu: large\nlan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n",
        3,
        8,
        Some("wan.mtu"),
        &[
            "wrong type: found string \"large\"",
            "expected an MTU between 1280 and 1778",
        ],
    );
    refused(
        &format!("{BASE}dataplane:\n  cores: 1\n"),
        7,
        10,
        Some("dataplane.cores"),
        &["wrong type: found integer `1`", "expected a sequence"],
    );
}

#[test]
fn refuses_bad_ipv6_address() {
    refused(
        "wan:\n  interface: wan0\n  ipv6:\n    gateway: fe80::g\nlan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n",
        4,
        14,
        Some("wan.ipv6.gateway"),
        &["\"fe80::g\" is not an IPv6 address", "expected an IPv6 router address"],
    );
    refused(
        &format!("{BASE}dslite:\n  aftr: 2001:db8::g\n"),
        7,
        9,
        Some("dslite.aftr"),
        &[
            "\"2001:db8::g\" is not an IPv6 address",
            "expected an IPv6 address",
        ],
    );
    refused(
        "wan:\n  interface: wan0\n  ipv6:\n    address: fe80::2/64\nlan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n",
        4,
        14,
        Some("wan.ipv6.address"),
        &["fe80::2 is a link-local address", "expected a global IPv6 address"],
    );
}

#[test]
fn refuses_bad_ipv4_cidr() {
    let lan =
        |ipv4: &str| format!("wan:\n  interface: wan0\nlan:\n  interface: lan0\n  ipv4: {ipv4}\n");
    let expected = "expected the router's IPv4 address with prefix length 8 to 30";
    refused(
        &lan("192.168.2.1"),
        5,
        9,
        Some("lan.ipv4"),
        &["\"192.168.2.1\" has no prefix length", expected],
    );
    refused(
        &lan("192.168.2.256/24"),
        5,
        9,
        Some("lan.ipv4"),
        &["\"192.168.2.256\" is not an IPv4 address", expected],
    );
    refused(
        &lan("192.168.2.0/24"),
        5,
        9,
        Some("lan.ipv4"),
        &[
            "192.168.2.0 is the network address of 192.168.2.0/24",
            expected,
        ],
    );
    refused(
        &lan("192.168.2.255/24"),
        5,
        9,
        Some("lan.ipv4"),
        &["is the broadcast address", expected],
    );
    refused(
        &lan("192.168.2.1/31"),
        5,
        9,
        Some("lan.ipv4"),
        &["has prefix length 31", expected],
    );
    for bad in [
        "127.0.0.1/8",
        "224.0.0.1/24",
        "0.1.2.3/8",
        "255.255.255.255/24",
    ] {
        refused(&lan(bad), 5, 9, Some("lan.ipv4"), &[expected]);
    }
}

#[test]
fn refuses_lan_prefix_not_64() {
    refused(
        &format!("{BASE}  ipv6:\n    prefix: 2001:db8::/48\n"),
        7,
        13,
        Some("lan.ipv6.prefix"),
        &["2001:db8::/48 is not a /64 (expected an IPv6 /64 prefix such as 2001:db8:0:111::/64)"],
    );
}

#[test]
fn refuses_lan_prefix_with_host_bits() {
    refused(
        &format!("{BASE}  ipv6:\n    prefix: 2001:db8:0:111::1/64\n"),
        7,
        13,
        Some("lan.ipv6.prefix"),
        &[
            "2001:db8:0:111::1/64 has host bits set (did you mean 2001:db8:0:111::/64?)",
            "expected an IPv6 /64 prefix",
        ],
    );
}

#[test]
fn refuses_lan_address_outside_prefix() {
    refused(
        &format!(
            "{BASE}  ipv6:\n    prefix: 2001:db8:0:111::/64\n    address: 2001:db8:0:112::1\n"
        ),
        8,
        14,
        Some("lan.ipv6.address"),
        &[
            "2001:db8:0:112::1 is outside lan.ipv6.prefix 2001:db8:0:111::/64",
            "expected an address inside the prefix",
        ],
    );
    refused(
        &format!("{BASE}  ipv6:\n    address: 2001:db8:0:112::1\n"),
        7,
        14,
        Some("lan.ipv6.address"),
        &["set without lan.ipv6.prefix"],
    );
}

#[test]
fn refuses_core_that_does_not_exist() {
    refused(
        &format!("{BASE}dataplane:\n  cores: [4096]\n"),
        7,
        11,
        Some("dataplane.cores[0]"),
        &[
            "CPU 4096 does not exist on this machine",
            "expected a CPU id that exists on this machine",
        ],
    );
    refused(
        &format!("{BASE}dataplane:\n  cores:\n    - -1\n"),
        8,
        7,
        Some("dataplane.cores[0]"),
        &["-1 is out of range"],
    );
}

#[test]
fn refuses_cores_length_not_workers() {
    refused(
        &format!("{BASE}dataplane:\n  workers: 2\n  cores: [0]\n"),
        8,
        10,
        Some("dataplane.cores"),
        &["1 CPUs listed for 2 workers", "expected one CPU per worker"],
    );
    // Default workers (1) counts too.
    refused(
        &format!("{BASE}dataplane:\n  cores:\n    - 0\n    - 1\n"),
        8,
        5,
        Some("dataplane.cores"),
        &[
            "2 CPUs listed for 1 worker (",
            "expected one CPU per worker",
        ],
    );
}

#[test]
fn refuses_duplicate_core() {
    refused(
        &format!("{BASE}dataplane:\n  workers: 2\n  cores: [0, 0]\n"),
        8,
        14,
        Some("dataplane.cores[1]"),
        &["CPU 0 is listed twice", "expected each CPU at most once"],
    );
}

#[test]
fn refuses_same_interface_for_wan_and_lan() {
    refused(
        "wan:\n  interface: eth0\nlan:\n  interface: eth0\n  ipv4: 192.168.2.1/24\n",
        4,
        14,
        Some("lan.interface"),
        &[
            "eth0 is also wan.interface",
            "expected two different interfaces",
        ],
    );
}

#[test]
fn refuses_interface_name_too_long() {
    refused(
        "wan:\n  interface: enp1s0verylongname\nlan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n",
        2,
        14,
        Some("wan.interface"),
        &[
            "interface name \"enp1s0verylongname\" is 18 bytes long, more than 15",
            "expected a Linux interface name of 1 to 15 bytes",
        ],
    );
    refused(
        "wan:\n  interface: wan0\nlan:\n  interface: 'br/0'\n  ipv4: 192.168.2.1/24\n",
        4,
        14,
        Some("lan.interface"),
        &["contains '/'"],
    );
}

#[test]
fn refuses_missing_required_key() {
    refused(
        "wan:\n  interface: wan0\nlan:\n  interface: lan0\n  mtu: 1500\n",
        3,
        1,
        Some("lan"),
        &[
            "missing required key `ipv4`",
            "expected the router's IPv4 address with prefix length, such as 192.168.2.1/24",
        ],
    );
    refused(
        "# no lan yet\nwan:\n  interface: wan0\n",
        2,
        1,
        None,
        &["missing required key `lan`", "expected a `lan:` section"],
    );
    refused(
        &format!("{BASE}dslite:\n  b4_address: wan\n"),
        6,
        1,
        Some("dslite"),
        &[
            "missing required key `aftr`",
            "expected the AFTR's IPv6 address",
        ],
    );
}

#[test]
fn refuses_batch_zero() {
    refused(
        &format!("{BASE}dataplane:\n  batch: 0\n"),
        7,
        10,
        Some("dataplane.batch"),
        &["0 is out of range (expected a batch size between 1 and 256)"],
    );
}

#[test]
fn refuses_fill_ring_not_power_of_two() {
    refused(
        &format!("{BASE}dataplane:\n  fill_ring: 3000\n"),
        7,
        14,
        Some("dataplane.fill_ring"),
        &[
            "3000 is not a power of two",
            "expected a fill ring size that is a power of two between 512 and 16384",
        ],
    );
    refused(
        &format!("{BASE}dataplane:\n  frames_per_worker: 1024\n"),
        7,
        22,
        Some("dataplane.frames_per_worker"),
        &["1024 is out of range"],
    );
}

#[test]
fn refuses_tunnel_mtu_too_big() {
    refused(
        &format!("{BASE}dslite:\n  aftr: 2404:8e00::feed:100\n  mtu: 1500\n"),
        8,
        8,
        Some("dslite.mtu"),
        &[
            "1500 does not fit in wan.mtu 1500",
            "expected a tunnel MTU between 1240 and 1460",
        ],
    );
    // Within the static range but above a smaller wan.mtu.
    refused(
        "wan:\n  interface: wan0\n  mtu: 1280\nlan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\ndslite:\n  aftr: 2404:8e00::feed:100\n  mtu: 1460\n",
        9,
        8,
        Some("dslite.mtu"),
        &["expected a tunnel MTU between 1240 and 1240"],
    );
    refused(
        &format!("{BASE}dslite:\n  aftr: 2404:8e00::feed:100\n  mtu: 1000\n"),
        8,
        8,
        Some("dslite.mtu"),
        &["1000 is out of range"],
    );
}

#[test]
fn refuses_empty_file() {
    for text in ["", "\n\n", "# only a comment\n", "---\n"] {
        refused(
            text,
            1,
            1,
            None,
            &[
                "the document is empty",
                "expected a mapping with at least the `wan` and `lan` sections",
            ],
        );
    }
}

#[test]
fn refuses_yaml_syntax_errors() {
    // `ipv4` indented deeper than its sibling.
    refused(
        "wan:\n  interface: wan0\nlan:\n  interface: lan0\n    ipv4: 192.168.2.1/24\n",
        5,
        9,
        None,
        &[
            "invalid YAML: mapping values are not allowed in this context",
            "expected well-formed YAML",
        ],
    );
    // `ipv4` indented less than its sibling.
    refused(
        "wan:\n  interface: wan0\nlan:\n  interface: lan0\n ipv4: 192.168.2.1/24\n",
        5,
        2,
        None,
        &["invalid YAML: did not find expected key"],
    );
    refused(
        &format!("{BASE}---\nwan: {{}}\n"),
        6,
        1,
        None,
        &["a second YAML document starts here (expected a single document)"],
    );
}

#[test]
fn refuses_non_mapping_document() {
    refused(
        "- wan\n- lan\n",
        1,
        1,
        None,
        &[
            "wrong type: found sequence",
            "expected a mapping of sections",
        ],
    );
}

#[test]
fn refuses_bad_control_values() {
    refused(
        &format!("{BASE}control:\n  socket: run/ipoed.sock\n"),
        7,
        11,
        Some("control.socket"),
        &[
            "\"run/ipoed.sock\" is not an absolute path",
            "expected an absolute path",
        ],
    );
    refused(
        &format!("{BASE}control:\n  log_level: verbose\n"),
        7,
        14,
        Some("control.log_level"),
        &[
            "unknown value `verbose`",
            "`error`, `warn`, `info`, `debug`, `trace`",
        ],
    );
    refused(
        &format!("{BASE}control:\n  metrics: 203.0.113.1:9100\n"),
        7,
        12,
        Some("control.metrics"),
        &[
            "neither loopback nor the router's LAN address",
            "never served on the WAN",
        ],
    );
    refused(
        &format!("{BASE}control:\n  metrics: localhost\n"),
        7,
        12,
        Some("control.metrics"),
        &["invalid socket address"],
    );
}

#[test]
fn metrics_listen_on_loopback_or_the_lan_address() {
    for addr in ["127.0.0.1:9100", "[::1]:9100"] {
        let c = parse(&format!("{BASE}control:\n  metrics: \"{addr}\"\n"), "t").unwrap();
        assert_eq!(c.control.metrics, Some(addr.parse().unwrap()));
    }
    let c = parse(&format!("{BASE}control: {{}}\n"), "t").unwrap();
    assert_eq!(c.control.metrics, None);
    let lan = c.lan.ipv4.addr;
    let c = parse(&format!("{BASE}control:\n  metrics: {lan}:9100\n"), "t").unwrap();
    assert!(c.control.metrics.is_some());
}

#[test]
fn refuses_duplicate_key() {
    refused(
        "wan:\n  interface: wan0\n  interface: wan1\nlan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n",
        2,
        3,
        Some("wan"),
        &["duplicate key \"interface\"", "expected each key once"],
    );
}

#[test]
fn to_yaml_spells_out_defaults() {
    let yaml = ok(BASE).to_yaml();
    for line in [
        "mtu: 1500",
        "workers: 1",
        "fill_ring: 4096",
        "log_level: info",
        "zero_copy: auto",
    ] {
        assert!(yaml.contains(line), "{line:?} missing from\n{yaml}");
    }
}

#[test]
fn wan_autoconfiguration_keys() {
    let config = parse(
        &format!("{BASE}dslite:\n  aftr: gw.transix.jp.\n  b4_address: delegated\n"),
        "test.yaml",
    )
    .unwrap();
    let pd = config.wan.ipv6.dhcpv6_pd.clone().unwrap();
    assert_eq!(pd.prefix_hint, 60);
    assert_eq!(pd.duid_type, DuidType::Ll);
    assert!(!pd.release_on_shutdown);
    assert!(config.wan.ipv6.slaac);
    assert_eq!(
        config.dslite.as_ref().unwrap().aftr,
        Aftr::Name("gw.transix.jp".into())
    );
    let text = "wan:\n  interface: wan0\n  ipv6:\n    slaac: false\n    iid: stable-privacy\n    dhcpv6_pd: { prefix_hint: 56, duid_type: llt, release_on_shutdown: true }\nlan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    subnet_id: 255\ndslite:\n  aftr: transix-west\n  b4_address: delegated\n";
    let config = parse(text, "test.yaml").unwrap();
    assert_eq!(config.wan.ipv6.iid, IidMode::StablePrivacy);
    let pd = config.wan.ipv6.dhcpv6_pd.clone().unwrap();
    assert_eq!(
        (pd.prefix_hint, pd.duid_type, pd.release_on_shutdown),
        (56, DuidType::Llt, true)
    );
    assert_eq!(config.lan.ipv6.subnet_id, 255);
    assert_eq!(parse(&config.to_yaml(), "again.yaml").unwrap(), config);
    let off = parse(
        &BASE.replace(
            "interface: wan0",
            "interface: wan0\n  ipv6:\n    dhcpv6_pd: false",
        ),
        "t.yaml",
    )
    .unwrap();
    assert_eq!(off.wan.ipv6.dhcpv6_pd, None);
    assert_eq!(parse(&off.to_yaml(), "again.yaml").unwrap(), off);
}

#[test]
fn refuses_inconsistent_wan_autoconfiguration() {
    refused(
        &format!("{BASE}dslite:\n  aftr: dhcpv6\n").replace(
            "interface: wan0",
            "interface: wan0\n  ipv6:\n    dhcpv6_pd: false",
        ),
        9,
        9,
        Some("dslite.aftr"),
        &["dhcpv6 needs the DHCPv6 client"],
    );
    refused(
        &format!("{BASE}dslite:\n  aftr: transix-east\n").replace(
            "interface: wan0",
            "interface: wan0\n  ipv6:\n    slaac: false",
        ),
        8,
        1,
        Some("dslite.b4_address"),
        &["wan needs a WAN address"],
    );
    refused(
        "wan:\n  interface: wan0\n  ipv6:\n    dhcpv6_pd: { prefix_hint: 40 }\nlan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n",
        4,
        31,
        Some("wan.ipv6.dhcpv6_pd.prefix_hint"),
        &["/40 is shorter", "expected 0 (no hint) or a prefix length between 48 and 64"],
    );
}

const LAN_SERVICES: &str = "\
wan:
  interface: wan0
lan:
  interface: lan0
  ipv4: 192.168.2.1/24
  ipv6:
    ra: { interval: 200, m_flag: false, o_flag: true, dnssl: [home.arpa] }
    dhcpv6: stateless
    dns: router
  dhcpv4:
    range: 192.168.2.100-192.168.2.250
    lease_time: 12h
    dns: router
    domain: home.arpa
    static:
      - { mac: \"02:00:00:00:00:10\", ip: 192.168.2.10, hostname: nas }
";

#[test]
fn lan_services_keys() {
    let c = ok(LAN_SERVICES);
    let d = c.lan.dhcpv4.clone().unwrap();
    assert_eq!(d.lease_time.0 .0, 43200);
    assert_eq!(d.static_leases[0].hostname.as_ref().unwrap().0, "nas");
    assert_eq!(c.lan.ipv6.ra.dnssl[0].0, "home.arpa");
    assert_eq!(c.lan.ipv6.dhcpv6, Dhcpv6Mode::Stateless);
    assert_eq!(
        c.dhcpv4_range().unwrap().to_string(),
        "192.168.2.100-192.168.2.250"
    );
    assert_eq!(parse(&c.to_yaml(), "again.yaml").unwrap(), c);
    // Defaults: server on, proxy on, pool .100-.250 of a /24.
    let b = ok(BASE);
    assert!(b.lan.dns_proxy);
    assert_eq!(
        b.dhcpv4_range().unwrap().to_string(),
        "192.168.2.100-192.168.2.250"
    );
    assert_eq!(b.lan.ipv6.ra.interval, 200);
    let text = LAN_SERVICES
        .replace(
            "    dns: router\n    domain",
            "    dns: [192.168.2.53, 192.168.2.54]\n    domain",
        )
        .replace(
            "    dns: router\n  dhcpv4",
            "    dns: [2001:db8::53]\n  dhcpv4",
        )
        .replace("lease_time: 12h", "lease_time: 3600")
        .replace("  dhcpv4:\n", "  dns_proxy: false\n  dhcpv4:\n");
    let c = ok(&text);
    assert_eq!(c.lan.dhcpv4.as_ref().unwrap().lease_time.0 .0, 3600);
    assert_eq!(parse(&c.to_yaml(), "again.yaml").unwrap(), c);
    let off = ok(&BASE.replace(
        "ipv4: 192.168.2.1/24",
        "ipv4: 192.168.2.1/24\n  dhcpv4: false",
    ));
    assert!(off.lan.dhcpv4.is_none());
    assert_eq!(parse(&off.to_yaml(), "again.yaml").unwrap(), off);
}

#[test]
fn refuses_bad_lan_services() {
    let with = |from: &str, to: &str| LAN_SERVICES.replace(from, to);
    refused(
        &with("192.168.2.100-192.168.2.250", "192.168.3.100-192.168.3.250"),
        11,
        12,
        Some("lan.dhcpv4.range"),
        &["is not inside the host addresses of 192.168.2.0/24"],
    );
    refused(
        &with("lease_time: 12h", "lease_time: 12y"),
        12,
        17,
        Some("lan.dhcpv4.lease_time"),
        &["unknown unit", "expected a lease time"],
    );
    refused(
        &with("\"02:00:00:00:00:10\"", "\"01:00:00:00:00:10\""),
        16,
        16,
        Some("lan.dhcpv4.static[0].mac"),
        &["not a unicast MAC address"],
    );
    refused(
        &with("ip: 192.168.2.10,", "ip: 192.168.2.1,"),
        16,
        41,
        Some("lan.dhcpv4.static[0].ip"),
        &["is not a free host address"],
    );
    refused(
        &with("  dhcpv4:\n", "  dns_proxy: false\n  dhcpv4:\n"),
        9,
        10,
        Some("lan.ipv6.dns"),
        &["router needs the DNS proxy"],
    );
    refused(
        &with("interval: 200", "interval: 2"),
        7,
        21,
        Some("lan.ipv6.ra.interval"),
        &["2 is out of range", "between 4 and 1800"],
    );
    refused(
        &with("dhcpv6: stateless", "dhcpv6: sometimes"),
        8,
        13,
        Some("lan.ipv6.dhcpv6"),
        &["sometimes"],
    );
}

// --- firewall -----------------------------------------------------------------

/// Every firewall key, and dslite.mss_clamp; appended to BASE it starts at
/// line 6.
const FIREWALL: &str = "\
dslite:
  aftr: transix-east
  mss_clamp: 1400
firewall:
  enabled: true
  max_sessions: 1048576
  log_drops: false
  ipv6_mss_clamp: 1432
  echo_limit: 0
  timeouts:
    tcp_established: 2h4m
    tcp_transitory: 240
    tcp_closed: 30s
    udp: 3m
    udp_stream: 1h
    icmp: 7d
  pinholes:
    - host: \"::1234:56ff:fe78:9abc\"
      proto: tcp
      port: 443
    - { host: \"02:00:00:00:01:10\", proto: udp, port: \"8000-8010\" }
    - { host: \"::1\", proto: icmpv6 }
";

#[test]
fn firewall_defaults() {
    let config = ok(BASE);
    let fw = &config.firewall;
    assert_eq!(*fw, Firewall::default());
    assert!(fw.enabled);
    assert_eq!(fw.max_sessions, 262_144);
    assert!(fw.log_drops);
    assert_eq!(fw.ipv6_mss_clamp, None);
    assert_eq!(fw.echo_limit, 6);
    assert_eq!(
        fw.timeouts,
        FirewallTimeouts {
            tcp_established: 7440,
            tcp_transitory: 240,
            tcp_closed: 10,
            udp: 120,
            udp_stream: 300,
            icmp: 60,
        }
    );
    assert!(fw.pinholes.is_empty());
    assert_eq!(config.mss_clamp_v4(), None);
    for empty in ["firewall:\n", "firewall: ~\n", "firewall: {}\n"] {
        assert_eq!(ok(&format!("{BASE}{empty}")).firewall, Firewall::default());
    }
    let yaml = config.to_yaml();
    for line in [
        "ipv6_mss_clamp: false",
        "tcp_established: 2h4m",
        "echo_limit: 6",
    ] {
        assert!(yaml.contains(line), "{line:?} missing from\n{yaml}");
    }

    // dslite.mss_clamp: 1420 for the default 1460-byte tunnel, lowered to
    // fit a smaller one when left out, as written otherwise.
    let dslite = |more: &str| ok(&format!("{BASE}dslite:\n  aftr: transix-east\n{more}"));
    let c = dslite("");
    assert_eq!(c.dslite.as_ref().unwrap().mss_clamp, Some(1420));
    assert_eq!(c.mss_clamp_v4(), Some(1420));
    assert_eq!(ok(&c.to_yaml()), c);
    assert_eq!(dslite("  mtu: 1300\n").mss_clamp_v4(), Some(1260));
    assert_eq!(dslite("  mss_clamp: false\n").mss_clamp_v4(), None);
    assert_eq!(dslite("  mss_clamp: 536\n").mss_clamp_v4(), Some(536));
    let small = ok(&format!("{BASE}dslite:\n  aftr: transix-east\n")
        .replace("interface: wan0", "interface: wan0\n  mtu: 1280"));
    assert_eq!(small.mss_clamp_v4(), Some(1200));
    assert_eq!(ok(&small.to_yaml()), small);
    let jumbo = ok(&format!("{BASE}dslite:\n  aftr: transix-east\n")
        .replace("interface: wan0", "interface: wan0\n  mtu: 1778"));
    assert_eq!(jumbo.mss_clamp_v4(), Some(1420));
}

#[test]
fn firewall_full_section() {
    let config = ok(&format!("{BASE}{FIREWALL}"));
    assert_eq!(config.mss_clamp_v4(), Some(1400));
    assert_eq!(
        config.firewall,
        Firewall {
            enabled: true,
            max_sessions: 1_048_576,
            log_drops: false,
            ipv6_mss_clamp: Some(1432),
            echo_limit: 0,
            timeouts: FirewallTimeouts {
                tcp_established: 7440,
                tcp_transitory: 240,
                tcp_closed: 30,
                udp: 180,
                udp_stream: 3600,
                icmp: 604_800,
            },
            pinholes: vec![
                Pinhole {
                    host: PinholeHost::Iid([0x12, 0x34, 0x56, 0xff, 0xfe, 0x78, 0x9a, 0xbc]),
                    proto: PinholeProto::Tcp,
                    port: Some(PortRange {
                        first: 443,
                        last: 443
                    }),
                },
                Pinhole {
                    host: PinholeHost::Mac(MacAddr([0x02, 0, 0, 0, 0x01, 0x10])),
                    proto: PinholeProto::Udp,
                    port: Some(PortRange {
                        first: 8000,
                        last: 8010
                    }),
                },
                Pinhole {
                    host: PinholeHost::Iid([0, 0, 0, 0, 0, 0, 0, 1]),
                    proto: PinholeProto::Icmpv6,
                    port: None,
                },
            ],
        }
    );
    let numbers: Vec<u8> = config
        .firewall
        .pinholes
        .iter()
        .map(|p| p.proto.number())
        .collect();
    assert_eq!(numbers, [6, 17, 58]);
    let yaml = config.to_yaml();
    assert_eq!(ok(&yaml), config, "{yaml}");

    // The flow-style list of the README, and the largest values.
    let c = ok(&format!(
        "{BASE}firewall:\n  max_sessions: 4194304\n  echo_limit: 100000\n  ipv6_mss_clamp: 9000\n  \
         timeouts: {{ tcp_established: 604800, icmp: 1s }}\n  \
         pinholes: [{{ host: \"::1234:56ff:fe78:9abc\", proto: tcp, port: 443 }}]\n"
    ));
    assert_eq!(c.firewall.max_sessions, 4_194_304);
    assert_eq!(c.firewall.echo_limit, 100_000);
    assert_eq!(c.firewall.ipv6_mss_clamp, Some(9000));
    assert_eq!(c.firewall.timeouts.tcp_established, 604_800);
    assert_eq!(c.firewall.timeouts.icmp, 1);
    assert_eq!(c.firewall.timeouts.udp, 120);
    assert_eq!(c.firewall.pinholes.len(), 1);
    assert_eq!(
        c.firewall.pinholes[0].host.to_string(),
        "::1234:56ff:fe78:9abc"
    );
    assert_eq!(ok(&c.to_yaml()), c);

    // 64 pinholes are fine.
    let many = pinholes(64);
    assert_eq!(ok(&many).firewall.pinholes.len(), 64);
}

/// BASE and a firewall with `n` pinholes; the pinhole i is on line 8 + i.
fn pinholes(n: usize) -> String {
    let mut text = format!("{BASE}firewall:\n  pinholes:\n");
    for i in 0..n {
        text += &format!(
            "    - {{ host: \"::{:x}\", proto: tcp, port: {} }}\n",
            i + 1,
            i + 1
        );
    }
    text
}

#[test]
fn refuses_bad_firewall_values() {
    let fw = |body: &str| format!("{BASE}firewall:\n{body}");
    refused(
        &fw("  max_sessions: 1000\n"),
        7,
        17,
        Some("firewall.max_sessions"),
        &["1000 is out of range (expected a number of sessions between 1024 and 4194304)"],
    );
    refused(
        &fw("  max_sessions: 4194305\n"),
        7,
        17,
        Some("firewall.max_sessions"),
        &["4194305 is out of range", "expected a number of sessions"],
    );
    refused(
        &fw("  echo_limit: 100001\n"),
        7,
        15,
        Some("firewall.echo_limit"),
        &[
            "100001 is out of range",
            "expected a number of echo requests per second",
        ],
    );
    refused(
        &fw("  ipv6_mss_clamp: 500\n"),
        7,
        19,
        Some("firewall.ipv6_mss_clamp"),
        &["500 is out of range (expected false, or a TCP MSS between 536 and 9000)"],
    );
    refused(
        &fw("  ipv6_mss_clamp: true\n"),
        7,
        19,
        Some("firewall.ipv6_mss_clamp"),
        &[
            "true does not say which MSS",
            "expected false, or a TCP MSS",
        ],
    );
    refused(
        &fw("  enabled: yes please\n"),
        7,
        12,
        Some("firewall.enabled"),
        &[
            "wrong type: found string \"yes please\"",
            "expected a boolean",
        ],
    );
    refused(
        &fw("  logdrops: false\n"),
        7,
        3,
        Some("firewall"),
        &[
            "unknown key `logdrops`",
            "expected one of `enabled`, `max_sessions`, `log_drops`, `ipv6_mss_clamp`, \
             `echo_limit`, `timeouts`, `pinholes`",
        ],
    );
}

#[test]
fn refuses_bad_firewall_timeouts() {
    let timeouts = |body: &str| format!("{BASE}firewall:\n  timeouts:\n{body}");
    let expected = "expected an idle timeout between 1s and 7d, such as 2h4m, 30s or 120";
    refused(
        &timeouts("    udp: 2x\n"),
        8,
        10,
        Some("firewall.timeouts.udp"),
        &["\"2x\" has an unknown unit 'x'", expected],
    );
    refused(
        &timeouts("    tcp_closed: 0\n"),
        8,
        17,
        Some("firewall.timeouts.tcp_closed"),
        &["0 is out of range", expected],
    );
    refused(
        &timeouts("    icmp: 7d1s\n"),
        8,
        11,
        Some("firewall.timeouts.icmp"),
        &["7d1s is out of range", expected],
    );
    refused(
        &timeouts("    tcp_established: 4m2h\n"),
        8,
        22,
        Some("firewall.timeouts.tcp_established"),
        &["has the units out of order", expected],
    );
    refused(
        &timeouts("    udp_stream: -5\n"),
        8,
        17,
        Some("firewall.timeouts.udp_stream"),
        &["-5 is out of range", expected],
    );
    refused(
        &timeouts("    tcp: 60\n"),
        8,
        5,
        Some("firewall.timeouts"),
        &["unknown key `tcp`", "expected one of `tcp_established`"],
    );
}

#[test]
fn refuses_bad_pinholes() {
    let one = |entry: &str| format!("{BASE}firewall:\n  pinholes:\n    - {entry}\n");
    let host = "expected an interface identifier such as ::1234:56ff:fe78:9abc \
                (an IPv6 address with the upper 64 bits zero) or a MAC address such as \
                02:00:00:00:01:10";
    refused(
        &one("{ host: nas, proto: tcp, port: 22 }"),
        8,
        15,
        Some("firewall.pinholes[0].host"),
        &[
            "\"nas\" is neither an interface identifier nor a MAC address",
            host,
        ],
    );
    refused(
        &one("{ host: \"2001:db8:0:111:1234:56ff:fe78:9abc\", proto: tcp, port: 22 }"),
        8,
        15,
        Some("firewall.pinholes[0].host"),
        &[
            "2001:db8:0:111:1234:56ff:fe78:9abc is a full address with a prefix; \
             write only the interface identifier, e.g. \"::1234:56ff:fe78:9abc\"",
            host,
        ],
    );
    refused(
        &one("{ host: \"::\", proto: tcp, port: 22 }"),
        8,
        15,
        Some("firewall.pinholes[0].host"),
        &[":: is the all-zero interface identifier", host],
    );
    refused(
        &one("{ host: \"01:00:5e:00:00:01\", proto: tcp, port: 22 }"),
        8,
        15,
        Some("firewall.pinholes[0].host"),
        &["01:00:5e:00:00:01 is not a unicast MAC address", host],
    );
    refused(
        &one("{ host: \"::1\", proto: sctp, port: 22 }"),
        8,
        29,
        Some("firewall.pinholes[0].proto"),
        &[
            "unknown value `sctp`",
            "expected one of `tcp`, `udp`, `icmpv6`",
        ],
    );
    let ports = "expected a port between 1 and 65535, or a range such as 8000-8010";
    refused(
        &one("{ host: \"::1\", proto: tcp, port: 0 }"),
        8,
        40,
        Some("firewall.pinholes[0].port"),
        &["0 is out of range", ports],
    );
    refused(
        &one("{ host: \"::1\", proto: udp, port: 65536 }"),
        8,
        40,
        Some("firewall.pinholes[0].port"),
        &["65536 is out of range", ports],
    );
    refused(
        &one("{ host: \"::1\", proto: udp, port: \"8010-8000\" }"),
        8,
        40,
        Some("firewall.pinholes[0].port"),
        &["8010-8000 is reversed: 8010 comes after 8000", ports],
    );
    refused(
        &one("{ host: \"::1\", proto: udp, port: \"0-10\" }"),
        8,
        40,
        Some("firewall.pinholes[0].port"),
        &["0 is out of range", ports],
    );
    refused(
        &one("{ host: \"::1\", proto: tcp, ports: 22 }"),
        8,
        34,
        Some("firewall.pinholes[0]"),
        &[
            "unknown key `ports`",
            "expected one of `host`, `proto`, `port`",
        ],
    );
    refused(
        &one("{ proto: tcp, port: 22 }"),
        8,
        7,
        Some("firewall.pinholes[0]"),
        &["missing required key `host`"],
    );
}

#[test]
fn refuses_pinhole_port_mismatch() {
    // Block style: no port, so the refusal points at the pinhole.
    refused(
        &format!("{BASE}firewall:\n  pinholes:\n    - host: \"::1\"\n      proto: tcp\n"),
        8,
        7,
        Some("firewall.pinholes[0].port"),
        &[
            "a tcp pinhole without a port",
            "expected port: with a port such as 443 or a range such as 8000-8010",
        ],
    );
    refused(
        &format!(
            "{BASE}firewall:\n  pinholes:\n    - {{ host: \"::1\", proto: tcp, port: 22 }}\n    - {{ host: \"::2\", proto: udp }}\n"
        ),
        9,
        7,
        Some("firewall.pinholes[1].port"),
        &["a udp pinhole without a port"],
    );
    refused(
        &format!(
            "{BASE}firewall:\n  pinholes:\n    - host: \"::1\"\n      proto: icmpv6\n      port: 7\n"
        ),
        10,
        13,
        Some("firewall.pinholes[0].port"),
        &[
            "port 7 on an icmpv6 pinhole, which admits echo requests to the host",
            "expected no port with proto: icmpv6",
        ],
    );
}

#[test]
fn refuses_too_many_pinholes() {
    refused(
        &pinholes(65),
        8 + 64,
        7,
        Some("firewall.pinholes[64]"),
        &["65 pinholes listed (expected at most 64)"],
    );
}

#[test]
fn refuses_dslite_mss_clamp_too_big() {
    refused(
        &format!("{BASE}dslite:\n  aftr: transix-east\n  mss_clamp: 1421\n"),
        8,
        14,
        Some("dslite.mss_clamp"),
        &[
            "1421 does not fit in the tunnel MTU 1460 with the 20-byte IPv4 and 20-byte TCP headers",
            "expected false, or an MSS between 536 and 1420",
        ],
    );
    // The tunnel MTU may come from dslite.mtu or from wan.mtu.
    refused(
        &format!("{BASE}dslite: {{ aftr: transix-east, mtu: 1400, mss_clamp: 1380 }}\n"),
        6,
        53,
        Some("dslite.mss_clamp"),
        &[
            "1380 does not fit in the tunnel MTU 1400",
            "between 536 and 1360",
        ],
    );
    refused(
        &format!("{BASE}dslite:\n  aftr: transix-east\n  mss_clamp: 1420\n")
            .replace("interface: wan0", "interface: wan0\n  mtu: 1400"),
        9,
        14,
        Some("dslite.mss_clamp"),
        &["expected false, or an MSS between 536 and 1320"],
    );
    refused(
        &format!("{BASE}dslite:\n  aftr: transix-east\n  mss_clamp: 9001\n"),
        8,
        14,
        Some("dslite.mss_clamp"),
        &["9001 is out of range (expected false, or a TCP MSS between 536 and 9000)"],
    );
}
