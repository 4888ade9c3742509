//! The effective config: the discovered method as the section a user would
//! have written, and an explicit section always winning.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use ipoe_proto::hb46pp::Ipip;
use ipoe_proto::map::{Prefix4, Rule};
use ipoe_proto::zeroconf::Source;

const AFTR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xaaaa, 0, 0, 0, 0, 1);
const BR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0xbb, 0, 0, 0, 1);

fn config(extra: &str, slaac: bool) -> Config {
    ipoe_config::parse(
        &format!(
            "wan:\n  interface: wan0\n  ipv6:\n    slaac: {slaac}\n    dhcpv6_pd: {{ prefix_hint: 56 }}\n\
             lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n{extra}"
        ),
        "t.yaml",
    )
    .unwrap()
}

fn outcome(method: Method) -> Outcome {
    Outcome {
        method,
        source: Source::Hb46pp,
        why: "test".into(),
    }
}

fn rule() -> Rule {
    Rule::new(
        Prefix6::new("2001:db8:4d00::".parse().unwrap(), 40).unwrap(),
        Prefix4::new(Ipv4Addr::new(192, 0, 2, 0), 24).unwrap(),
        16,
        4,
    )
    .unwrap()
}

#[test]
fn ds_lite_becomes_a_dslite_section() {
    let user = config("", true);
    let o = outcome(Method::DsLite {
        aftr: AFTR,
        name: None,
    });
    let c = effective(&user, Some(&o));
    let d = c.dslite.as_ref().unwrap();
    assert_eq!(d.aftr, Aftr::Address(AFTR));
    assert_eq!(d.b4_address, B4Source::Wan);
    assert_eq!(d.mss_clamp, Some(1420));
    assert_eq!(c.tunnel_mtu(), 1460);
    // What the user wrote is otherwise untouched.
    assert_eq!(c.wan, user.wan);
    assert_eq!(c.lan, user.lan);
    // It is a config the parser takes as it is.
    assert_eq!(ipoe_config::parse(&c.to_yaml(), "again.yaml").unwrap(), c);
    // Without a WAN address of its own: subnet 0 of the delegation.
    let c = effective(&config("", false), Some(&o));
    assert_eq!(c.dslite.unwrap().b4_address, B4Source::Delegated);
}

#[test]
fn map_e_becomes_an_explicit_rule() {
    let user = config("", true);
    let o = outcome(Method::MapE {
        br: BR,
        rule: rule(),
        iid: IidFormat::Legacy,
    });
    let c = effective(&user, Some(&o));
    let m = c.map_e.as_ref().unwrap();
    assert_eq!(m.br, Some(BR));
    let MapRuleChoice::Rule(spec) = &m.rule else {
        panic!("{:?}", m.rule)
    };
    assert_eq!(spec.rule().unwrap(), rule());
    assert!(c.dslite.is_none());
    assert_eq!(ipoe_config::parse(&c.to_yaml(), "again.yaml").unwrap(), c);
}

#[test]
fn nothing_and_explicit_sections_leave_the_config_alone() {
    let user = config("", true);
    assert_eq!(effective(&user, None), user);
    assert_eq!(effective(&user, Some(&outcome(Method::None))), user);
    // An explicit section wins over any outcome.
    let explicit = config("dslite:\n  aftr: 2001:db8:aaaa::2\n", true);
    let o = outcome(Method::MapE {
        br: BR,
        rule: rule(),
        iid: IidFormat::Legacy,
    });
    assert_eq!(effective(&explicit, Some(&o)), explicit);
    // An explicit ipip section too.
    let explicit = config(
        "ipip:\n  remote: 2001:db8:77:cc::2\n  local_iid: \"::beef\"\n  ipv4: 192.0.2.78\n",
        true,
    );
    assert!(explicit.ipv4_method_given());
    assert_eq!(effective(&explicit, Some(&o)), explicit);
}

fn hb46pp_ipip() -> Ipip {
    Ipip {
        local: "2001:db8:0:100::feed".parse().unwrap(),
        remote: "2001:db8:77:cc::1".parse().unwrap(),
        ipv4: Ipv4Addr::new(192, 0, 2, 77),
        ipv4_len: 32,
    }
}

/// HB46PP's IPIP answer runs as the ipip section a user would write:
/// remote, fixed address, the local address's interface ID on the WAN /64,
/// and no update URL (HB46PP names none), so nothing is registered.
#[test]
fn ipip_becomes_an_ipip_section_without_registration() {
    let user = config("", true);
    let c = effective(&user, Some(&outcome(Method::Ipip(hb46pp_ipip()))));
    let i = c.ipip.as_ref().unwrap();
    assert_eq!(i.remote, "2001:db8:77:cc::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(i.local_iid, "::feed".parse::<Ipv6Addr>().unwrap());
    assert_eq!(i.ipv4, Ipv4Addr::new(192, 0, 2, 77));
    assert_eq!(i.local_prefix, LocalPrefix::Wan);
    assert!(i.update.is_none());
    assert!(i.port_forwards.is_empty());
    assert!(c.dslite.is_none() && c.map_e.is_none());
    assert_eq!(c.tunnel_mtu(), 1460);
    assert_eq!(c.mss_clamp_v4(), Some(1420));
    assert_eq!(c.wan, user.wan);
    assert_eq!(c.lan, user.lan);
    // A config the parser takes as it is (its checks pass too).
    assert_eq!(ipoe_config::parse(&c.to_yaml(), "again.yaml").unwrap(), c);
    // Without a WAN address of its own: subnet 0 of the delegation.
    let c = effective(
        &config("", false),
        Some(&outcome(Method::Ipip(hb46pp_ipip()))),
    );
    assert_eq!(c.ipip.unwrap().local_prefix, LocalPrefix::Pd);
    // An answer the config's checks would refuse runs nothing.
    let mut zero_iid = hb46pp_ipip();
    zero_iid.local = "2001:db8:0:100::".parse().unwrap();
    let in_lan = Ipip {
        ipv4: Ipv4Addr::new(192, 168, 2, 77),
        ..hb46pp_ipip()
    };
    for t in [zero_iid, in_lan] {
        assert_eq!(effective(&user, Some(&outcome(Method::Ipip(t)))), user);
    }
    // The text says what runs, and that there is nothing to register.
    let text = describe(&Method::Ipip(hb46pp_ipip()));
    for part in [
        "2001:db8:77:cc::1",
        "192.0.2.77/32",
        "::feed",
        "no update URL",
    ] {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
}

#[test]
fn discovery_runs_only_without_a_method_section() {
    let dir = std::env::temp_dir().join(format!("ipoed-zeroconf-{}", std::process::id()));
    let with_dir = |extra: &str| {
        config(
            &format!("{extra}control:\n  state_dir: {}\n", dir.display()),
            true,
        )
    };
    let now = Instant::now();
    let mut z = Zeroconf::new(&with_dir(""), now);
    assert!(z.active());
    assert_eq!(z.report(now)["method_from"], "discovery");
    z.reconfigure(&with_dir("dslite:\n  aftr: 2001:db8:aaaa::2\n"), now);
    assert!(!z.active());
    assert_eq!(z.report(now)["method_from"], "config");
    let mut out = Vec::new();
    assert_eq!(z.poll(now, &WanView::default(), &mut out), None);
    assert!(out.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
