//! The selector's order and its grace, on a fake clock.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::*;
use crate::hb46pp::{DsLite, MapE};
use crate::map::{Prefix4, Prefix6, Rule};

const AFTR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xaaaa, 0, 0, 0, 0, 1);
const AFTR2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xaaaa, 0, 0, 0, 0, 2);
const BR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0xbb, 0, 0, 0, 1);

fn lab_rule() -> Rule {
    Rule::new(
        Prefix6::new("2001:db8:4d00::".parse().unwrap(), 40).unwrap(),
        Prefix4::new(Ipv4Addr::new(192, 0, 2, 0), 24).unwrap(),
        16,
        4,
    )
    .unwrap()
}

fn user_rules() -> Vec<TableRule> {
    vec![TableRule {
        rule: lab_rule(),
        br: BR,
        iid: IidFormat::Legacy,
        label: "provisioning.map_rules[0]".into(),
    }]
}

fn in_rule() -> Prefix6 {
    Prefix6::new("2001:db8:4d12:3400::".parse().unwrap(), 56).unwrap()
}

fn outside() -> Prefix6 {
    Prefix6::new("2001:db8:0:100::".parse().unwrap(), 56).unwrap()
}

fn inputs<'a>(
    hb: Hb46ppView<'a>,
    dhcpv6: Option<&'a str>,
    names: &'a [(String, NameState)],
    end_user: Option<Prefix6>,
    rules: &'a [TableRule],
) -> Inputs<'a> {
    Inputs {
        has_address: true,
        hb46pp: hb,
        dhcpv6_aftr: dhcpv6,
        names,
        end_user,
        user_rules: rules,
    }
}

fn failed(names: &[&str]) -> Vec<(String, NameState)> {
    names
        .iter()
        .map(|n| (n.to_string(), NameState::Failed("NXDOMAIN".into())))
        .collect()
}

#[test]
fn hb46pp_comes_first() {
    let t0 = Instant::now();
    let mut s = Selector::default();
    let d = Decision::DsLite(DsLite {
        aftr: Aftr::Addr(AFTR),
    });
    let names = vec![("aftr.lab.example".to_string(), NameState::Resolved(AFTR2))];
    let rules = user_rules();
    let sel = s.select(
        t0,
        &inputs(
            Hb46ppView::Answered(&d),
            Some("aftr.lab.example"),
            &names,
            Some(in_rule()),
            &rules,
        ),
    );
    let o = sel.outcome.unwrap();
    assert_eq!(o.source, Source::Hb46pp);
    assert_eq!(
        o.method,
        Method::DsLite {
            aftr: AFTR,
            name: None
        }
    );
    // Nothing to resolve for an address.
    assert!(sel.resolve.is_empty());
}

#[test]
fn hb46pp_map_e_takes_the_rule_of_the_prefix() {
    let mut s = Selector::default();
    let d = Decision::MapE(MapE {
        br: BR,
        rules: vec![lab_rule()],
        iid: IidFormat::Legacy,
        mesh: false,
    });
    let o = s
        .select(
            Instant::now(),
            &inputs(Hb46ppView::Answered(&d), None, &[], Some(in_rule()), &[]),
        )
        .outcome
        .unwrap();
    assert_eq!(
        o.method,
        Method::MapE {
            br: BR,
            rule: lab_rule(),
            iid: IidFormat::Legacy
        }
    );
    // A prefix outside its rules: the next steps decide, and say why.
    let names = failed(&WELL_KNOWN_AFTRS);
    let o = s
        .select(
            Instant::now(),
            &inputs(Hb46ppView::Answered(&d), None, &names, Some(outside()), &[]),
        )
        .outcome
        .unwrap();
    assert_eq!(o.method, Method::None);
    assert!(o.why.contains("none of its 1 rules covers"), "{}", o.why);
}

#[test]
fn dhcpv6_name_before_the_well_known_names() {
    let mut s = Selector::default();
    let mut names = vec![("aftr.lab.example".to_string(), NameState::Resolved(AFTR2))];
    names.push(("gw.transix.jp".to_string(), NameState::Resolved(AFTR)));
    let sel = s.select(
        Instant::now(),
        &inputs(
            Hb46ppView::Unavailable("no record"),
            Some("aftr.lab.example"),
            &names,
            None,
            &[],
        ),
    );
    let o = sel.outcome.unwrap();
    assert_eq!(o.source, Source::Dhcpv6);
    assert_eq!(
        o.method,
        Method::DsLite {
            aftr: AFTR2,
            name: Some("aftr.lab.example".into())
        }
    );
    assert!(o.why.starts_with("HB46PP: no record"), "{}", o.why);
    // The well-known names are not asked while DHCPv6's answers.
    assert_eq!(sel.resolve, vec!["aftr.lab.example".to_string()]);
}

#[test]
fn well_known_names_in_order() {
    let mut s = Selector::default();
    let mut names = failed(&["gw.transix.jp"]);
    names.push(("dgw.xpass.jp".to_string(), NameState::Resolved(AFTR2)));
    names.push((
        "dslite.v6connect.net".to_string(),
        NameState::Resolved(AFTR),
    ));
    let sel = s.select(
        Instant::now(),
        &inputs(Hb46ppView::Off, None, &names, None, &[]),
    );
    let o = sel.outcome.unwrap();
    assert_eq!(o.source, Source::WellKnownName("dgw.xpass.jp"));
    assert_eq!(
        o.method,
        Method::DsLite {
            aftr: AFTR2,
            name: Some("dgw.xpass.jp".into())
        }
    );
    assert_eq!(sel.resolve.len(), 3);
}

#[test]
fn rule_table_then_nothing() {
    let mut s = Selector::default();
    let names = failed(&WELL_KNOWN_AFTRS);
    let rules = user_rules();
    let o = s
        .select(
            Instant::now(),
            &inputs(
                Hb46ppView::Unavailable("x"),
                None,
                &names,
                Some(in_rule()),
                &rules,
            ),
        )
        .outcome
        .unwrap();
    assert_eq!(
        o.source,
        Source::RuleTable("provisioning.map_rules[0]".into())
    );
    assert_eq!(
        o.method,
        Method::MapE {
            br: BR,
            rule: lab_rule(),
            iid: IidFormat::Legacy
        }
    );
    let o = s
        .select(
            Instant::now(),
            &inputs(
                Hb46ppView::Unavailable("x"),
                None,
                &names,
                Some(outside()),
                &rules,
            ),
        )
        .outcome
        .unwrap();
    assert_eq!(o.method, Method::None);
    assert_eq!(o.source, Source::Nothing);
    for part in [
        "HB46PP: x",
        "no AFTR-Name from DHCPv6",
        "gw.transix.jp: NXDOMAIN",
        "no MAP rule covers",
        "no IPv4",
    ] {
        assert!(o.why.contains(part), "{part:?} not in {}", o.why);
    }
}

#[test]
fn a_pending_step_holds_the_decision_for_the_grace_only() {
    let t0 = Instant::now();
    let mut s = Selector::new(Duration::from_secs(20));
    let rules = user_rules();
    let names = failed(&WELL_KNOWN_AFTRS);
    let i = inputs(Hb46ppView::Pending, None, &names, Some(in_rule()), &rules);
    let sel = s.select(t0, &i);
    assert_eq!(sel.outcome, None);
    assert!(sel.waiting.unwrap().contains("HB46PP"));
    assert_eq!(s.select(t0 + Duration::from_secs(19), &i).outcome, None);
    // Then the lower steps decide...
    let o = s.select(t0 + Duration::from_secs(20), &i).outcome.unwrap();
    assert!(matches!(o.method, Method::MapE { .. }));
    assert!(o.why.contains("HB46PP: asking"), "{}", o.why);
    // ...and HB46PP takes over when it answers.
    let d = Decision::DsLite(DsLite {
        aftr: Aftr::Addr(AFTR),
    });
    let o = s
        .select(
            t0 + Duration::from_secs(30),
            &inputs(
                Hb46ppView::Answered(&d),
                None,
                &names,
                Some(in_rule()),
                &rules,
            ),
        )
        .outcome
        .unwrap();
    assert_eq!(o.source, Source::Hb46pp);
}

#[test]
fn an_earlier_well_known_name_still_resolving_is_waited_for() {
    let t0 = Instant::now();
    let mut s = Selector::new(Duration::from_secs(20));
    // gw.transix.jp pending, dgw.xpass.jp resolved.
    let names = vec![("dgw.xpass.jp".to_string(), NameState::Resolved(AFTR2))];
    let i = inputs(Hb46ppView::Off, None, &names, None, &[]);
    assert_eq!(s.select(t0, &i).outcome, None);
    let o = s.select(t0 + Duration::from_secs(21), &i).outcome.unwrap();
    assert_eq!(o.source, Source::WellKnownName("dgw.xpass.jp"));
}

#[test]
fn the_grace_restarts_when_the_address_is_lost() {
    let t0 = Instant::now();
    let mut s = Selector::new(Duration::from_secs(20));
    let mut i = inputs(Hb46ppView::Pending, None, &[], None, &[]);
    i.has_address = false;
    assert_eq!(s.select(t0 + Duration::from_secs(100), &i).outcome, None);
    i.has_address = true;
    assert_eq!(s.select(t0 + Duration::from_secs(101), &i).outcome, None);
    assert!(s
        .select(t0 + Duration::from_secs(121), &i)
        .outcome
        .is_some());
}

#[test]
fn ipip_is_an_outcome_of_its_own() {
    let d = Decision::Ipip(Ipip {
        local: "2001:db8:0:100::feed".parse().unwrap(),
        remote: "2001:db8:77:cc::1".parse().unwrap(),
        ipv4: Ipv4Addr::new(192, 0, 2, 77),
        ipv4_len: 32,
    });
    let o = Selector::default()
        .select(
            Instant::now(),
            &inputs(Hb46ppView::Answered(&d), None, &[], None, &[]),
        )
        .outcome
        .unwrap();
    assert_eq!(o.method.kind(), "ipip");
    assert_eq!(o.source, Source::Hb46pp);
}

#[test]
fn the_built_in_table_is_consulted_after_the_users() {
    // A v6plus prefix of the shipped table (as arithmetic only).
    let row = &jp_rules::rules()[0];
    let p = row.rule.ipv6_prefix();
    let end_user = Prefix6::new(p.addr(), p.prefix_len().max(56)).unwrap();
    let t = table_rule(&[], end_user).unwrap();
    assert!(t.label.starts_with("built-in"), "{}", t.label);
    assert_eq!(table_rule(&user_rules(), in_rule()).unwrap().br, BR);
}
