//! The TXT record, the request URL, the reply parser (the spec's example
//! with every key, each kind of breakage, hostile bytes), and the client's
//! timers over days of fake time.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::query::{build, is_token};
use super::reply::{parse, MAX_RULES};
use super::*;
use crate::http::{FetchError, Response};
use crate::jitter::Jitter;
use crate::map::{IidFormat, Prefix6};

const TOKEN: &str = "640756965820d3b9025b6941f9590af6802830ba58663fe8f043dc92b576f17a";

/// The spec's example reply (HB46PP 3.4), every key, plus keys it does not
/// define.
const SPEC_REPLY: &str = r#"{
  "enabler_name": "A VNE",
  "service_name": "Highspeed 4over6",
  "isp_name": "ISP-A",
  "ttl": 86400,
  "token": "640756965820d3b9025b6941f9590af6802830ba58663fe8f043dc92b576f17a",
  "auth": "ok",
  "order": [ "464xlat", "map_e", "dslite" ],
  "map_e": {
    "version": 0,
    "mesh": true,
    "br": "2001:db8:1::1",
    "rules": [
      { "ipv6": "2001:db8:1:2000::/52", "ipv4": "203.0.113.0/24", "ea_length": 12, "psid_offset": 4 }
    ]
  },
  "dslite": { "aftr": "aftr.example.net" },
  "lw4o6": { "lwaftr": "lwaftr.example.net", "ipv6": "2001:db8:3:100::/56", "ipv4": "203.0.113.16",
             "psid": 3, "psid_length": 8, "psid_offset": 6 },
  "map_t": { "dmr": "2001:db8:5::/64",
             "rules": [ { "ipv6": "2001:db8:5:100::/56", "ipv4": "203.0.113.32/28", "ea_length": 8, "psid_offset": 4 } ] },
  "464xlat": { "nat64prefix": "2001:db8:6::/96" },
  "ipip": [ { "ipv6_local": "2001:db8:7:100::7", "ipv6_remote": "2001:db8:7::1", "ipv4": "203.0.113.0/29" } ],
  "x_vendor_extension": { "nested": [1, 2, {"a": null}] }
}"#;

/// transix' answer, as the reference notes record it.
const TRANSIX_REPLY: &str = r#"{"order":["dslite"],"dslite":{"aftr":"2404:8e00::feed:101"}}"#;

// ---------------------------------------------------------------------------
// TXT
// ---------------------------------------------------------------------------

fn rec(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[test]
fn txt_record_gives_url_and_certificate_check() {
    let d = txt::parse(&[rec("v=v6mig-1 url=https://vne.example.jp/rule.cgi t=b")]).unwrap();
    assert_eq!(d.url.expose(), "https://vne.example.jp/rule.cgi");
    assert!(d.verify);
    let d = txt::parse(&[rec("v=v6mig-1 url=https://vne.example.jp/rule.cgi t=a")]).unwrap();
    assert!(!d.verify);
    // http has no certificate; t missing means b; other records and unknown fields are skipped.
    let d = txt::parse(&[
        rec("v=spf1 -all"),
        rec("  v=v6mig-1   url=http://[2001:db8::80]:8080/config  x=y"),
    ])
    .unwrap();
    assert!(!d.verify);
    assert_eq!(d.url.port(), 8080);
    let d = txt::parse(&[rec("v=v6mig-1 url=https://a.example/ z=1")]).unwrap();
    assert!(d.verify);
}

#[test]
fn txt_record_refusals_are_named() {
    type Check = fn(&TxtError) -> bool;
    let cases: [(&[&str], Check); 8] = [
        (&[], |e| *e == TxtError::NoRecord),
        (&["hello"], |e| *e == TxtError::NoRecord),
        (&["v=v6mig-2 url=https://a/ t=b"], |e| {
            matches!(e, TxtError::Version(_))
        }),
        (&["v=v6mig-1 t=b"], |e| *e == TxtError::NoUrl),
        (&["v=v6mig-1 url=ftp://a/ t=b"], |e| {
            matches!(e, TxtError::Url(_))
        }),
        (&["v=v6mig-1 url=https://a/ t=c"], |e| {
            matches!(e, TxtError::BadT(_))
        }),
        (&["v=v6mig-1 url=https://a/ url=https://b/"], |e| {
            matches!(e, TxtError::Duplicate(_))
        }),
        (
            &[
                "v=v6mig-1 url=https://a/ t=b",
                "v=v6mig-1 url=https://b/ t=b",
            ],
            |e| *e == TxtError::Ambiguous,
        ),
    ];
    for (records, check) in cases {
        let records: Vec<Vec<u8>> = records.iter().map(|r| rec(r)).collect();
        let e = txt::parse(&records).unwrap_err();
        assert!(check(&e), "{records:?}: {e:?}");
    }
    assert_eq!(
        txt::parse(&[b"v=v6mig-1 url=\xff".to_vec()]),
        Err(TxtError::Encoding)
    );
    // The same record twice is one record.
    let same = rec("v=v6mig-1 url=https://a/ t=b");
    assert!(txt::parse(&[same.clone(), same]).is_ok());
}

// ---------------------------------------------------------------------------
// Request URL
// ---------------------------------------------------------------------------

fn request_config() -> RequestConfig {
    RequestConfig {
        vendorid: "acde48-v6pc_swg_hgw".into(),
        product: "V6MIG-ROUTER".into(),
        version: "1_32".into(),
        capabilities: vec![Method::DsLite, Method::MapE, Method::Ipip],
        credentials: None,
    }
}

#[test]
fn request_url_carries_the_spec_parameters() {
    let cfg = request_config();
    let base = Target::parse("https://vne.example.jp/config").unwrap();
    let t = build(&cfg, &base, true, None);
    assert_eq!(
        t.expose(),
        "https://vne.example.jp/config?vendorid=acde48-v6pc_swg_hgw&product=V6MIG-ROUTER&version=1_32&capability=dslite,map_e,ipip"
    );
    // The server's own query stays first; a token goes back; a bad one does not.
    let base = Target::parse("https://vne.example.jp/rule.cgi?site=1").unwrap();
    let t = build(&cfg, &base, true, Some(TOKEN));
    assert!(t
        .expose()
        .starts_with("https://vne.example.jp/rule.cgi?site=1&vendorid="));
    assert!(t.expose().ends_with(&format!("&token={TOKEN}")));
    assert!(!build(&cfg, &base, true, Some("NOTHEX"))
        .expose()
        .contains("token"));
    assert!(is_token(TOKEN) && !is_token(&TOKEN.to_uppercase()));
}

#[test]
fn credentials_go_only_where_the_spec_allows() {
    let mut cfg = request_config();
    cfg.credentials = Some(Credentials {
        user: "myname".into(),
        pass: "secret_pw".into(),
        server: None,
    });
    let https = Target::parse("https://prov.example/config").unwrap();
    let http = Target::parse("http://prov.example/config").unwrap();
    let t = build(&cfg, &http, false, None);
    assert!(t.expose().ends_with("&user=myname&pass=secret_pw"));
    assert!(!t.to_string().contains("secret_pw"), "masked: {t}");
    // With a server name: only that host, over verified https.
    cfg.credentials.as_mut().unwrap().server = Some("prov.example".into());
    assert!(build(&cfg, &https, true, None)
        .expose()
        .contains("pass=secret_pw"));
    assert!(!build(&cfg, &https, false, None).expose().contains("pass="));
    assert!(!build(&cfg, &http, false, None).expose().contains("pass="));
    let other = Target::parse("https://evil.example/config").unwrap();
    assert!(!build(&cfg, &other, true, None).expose().contains("pass="));
    assert!(!format!("{cfg:?}").contains("secret_pw"));
}

#[test]
fn request_config_values_are_checked() {
    assert!(request_config().validate().is_ok());
    assert!(RequestConfig::new("acde48").validate().is_ok());
    assert!(RequestConfig::new("acde48-ipoe_router").validate().is_ok());
    for bad in [
        "acde4",
        "acde4g",
        "acde48-",
        "acde48-a.b",
        "acde48-aaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        assert!(RequestConfig::new(bad).validate().is_err(), "{bad}");
    }
    let mut c = request_config();
    c.version = "1.2".into();
    assert!(c.validate().is_err());
    let mut c = request_config();
    c.product = "a b".into();
    assert!(c.validate().is_err());
    let mut c = request_config();
    c.credentials = Some(Credentials {
        user: "u".into(),
        pass: "p&x=1".into(),
        server: None,
    });
    assert!(c.validate().is_err());
    // The default version is this crate's, in the spec's form.
    assert!(RequestConfig::new("acde48")
        .version
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'_'));
}

// ---------------------------------------------------------------------------
// Reply
// ---------------------------------------------------------------------------

#[test]
fn spec_example_reply_reads_every_key() {
    let p = parse(SPEC_REPLY.as_bytes()).unwrap();
    assert_eq!(p.enabler_name.as_deref(), Some("A VNE"));
    assert_eq!(p.service_name.as_deref(), Some("Highspeed 4over6"));
    assert_eq!(p.isp_name.as_deref(), Some("ISP-A"));
    assert_eq!(p.ttl, Some(Duration::from_secs(86400)));
    assert_eq!(p.token.as_deref(), Some(TOKEN));
    assert_eq!(p.auth, Some(Auth::Ok));
    assert_eq!(p.order, vec![Method::Xlat464, Method::MapE, Method::DsLite]);
    let m = p.map_e.as_ref().unwrap();
    assert_eq!(m.br, "2001:db8:1::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(m.iid, IidFormat::Legacy);
    assert!(m.mesh);
    assert_eq!(m.rules.len(), 1);
    assert_eq!(m.rules[0].ea_length(), 12);
    assert_eq!(m.rules[0].psid_offset(), 4);
    assert_eq!(m.rules[0].psid_length(), 4);
    assert_eq!(
        p.dslite,
        Some(DsLite {
            aftr: Aftr::Name("aftr.example.net".into())
        })
    );
    assert_eq!(
        p.ipip,
        vec![Ipip {
            local: "2001:db8:7:100::7".parse().unwrap(),
            remote: "2001:db8:7::1".parse().unwrap(),
            ipv4: Ipv4Addr::new(203, 0, 113, 0),
            ipv4_len: 29,
        }]
    );
    // 464xlat is not run here: MAP-E, the next in order, is chosen.
    let d = p.decide(&[Method::DsLite, Method::MapE, Method::Ipip]);
    let Decision::MapE(map) = &d else {
        panic!("{d:?}")
    };
    // The rule maps an end-user /64 inside it (crate::map does the
    // arithmetic): EA bits 0x345, IPv4 suffix 0x34, PSID 5.
    let end_user: Prefix6 = "2001:db8:1:2345::/64".parse().unwrap();
    let rule = map.rule_for(end_user).expect("rule");
    let mapping = rule.map(end_user).unwrap();
    assert_eq!(
        (mapping.ipv4, mapping.psid()),
        (Ipv4Addr::new(203, 0, 113, 52), 5)
    );
    assert!(map.rule_for("2001:db8:2::/56".parse().unwrap()).is_none());
    // Without MAP-E in the capabilities, DS-Lite.
    assert!(matches!(p.decide(&[Method::DsLite]), Decision::DsLite(_)));
    assert_eq!(p.decide(&[Method::Ipip]), Decision::Nothing);
}

#[test]
fn transix_style_and_empty_orders() {
    let p = parse(TRANSIX_REPLY.as_bytes()).unwrap();
    assert_eq!(p.ttl, None);
    assert_eq!(
        p.decide(&[Method::DsLite, Method::MapE, Method::Ipip]),
        Decision::DsLite(DsLite {
            aftr: Aftr::Addr("2404:8e00::feed:101".parse().unwrap())
        })
    );
    let p = parse(br#"{"order":[],"auth":"req"}"#).unwrap();
    assert_eq!(p.decide(&[Method::DsLite]), Decision::Nothing);
    assert_eq!(p.auth, Some(Auth::Req));
    // Unknown methods in order are skipped; RFC 7597 IIDs; mesh as 0/1; ipip as one object.
    let p = parse(
        br#"{"order":["quantum","ipip","map_e"],
             "map_e":{"version":1,"mesh":0,"br":"2001:db8::9","rules":[{"ipv6":"2001:db8:100::/40","ipv4":"198.51.100.0/24","ea_length":16,"psid_offset":6}]},
             "ipip":{"ipv6_local":"2001:db8:7:100::feed","ipv6_remote":"2001:db8:77:cc::1","ipv4":"192.0.2.77"}}"#,
    )
    .unwrap();
    assert_eq!(p.order, vec![Method::Ipip, Method::MapE]);
    assert_eq!(p.map_e.as_ref().unwrap().iid, IidFormat::Rfc7597);
    assert!(!p.map_e.as_ref().unwrap().mesh);
    let Decision::Ipip(t) = p.decide(&[Method::DsLite, Method::MapE, Method::Ipip]) else {
        panic!()
    };
    assert_eq!((t.ipv4, t.ipv4_len), (Ipv4Addr::new(192, 0, 2, 77), 32));
}

#[test]
fn malformed_replies_are_refused_with_their_counter_name() {
    let rules = |n: usize| {
        let one = r#"{"ipv6":"2001:db8:1:2000::/52","ipv4":"203.0.113.0/24","ea_length":12,"psid_offset":4}"#;
        format!(
            r#"{{"order":["map_e"],"map_e":{{"br":"2001:db8::1","rules":[{}]}}}}"#,
            vec![one; n].join(",")
        )
    };
    let long_name = format!(r#"{{"order":[],"enabler_name":"{}"}}"#, "x".repeat(300));
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "reply-malformed"),
        ("[]".into(), "reply-malformed"),
        ("<html>".into(), "reply-malformed"),
        (r#"{"order":["dslite"],"dslite":{"aftr":"a.example"}"#.into(), "reply-malformed"),
        (r#"{"order":"dslite"}"#.into(), "reply-malformed"),
        (r#"{"order":[],"ttl":-1}"#.into(), "reply-malformed"),
        (r#"{"order":[],"ttl":1.5}"#.into(), "reply-malformed"),
        (r#"{"order":[],"order":[]}"#.into(), "reply-malformed"),
        (r#"{"ttl":60}"#.into(), "reply-no-order"),
        (r#"{"order":[],"ttl":604801}"#.into(), "reply-bad-ttl"),
        (r#"{"order":[],"token":"abc"}"#.into(), "reply-bad-token"),
        (r#"{"order":[],"auth":"maybe"}"#.into(), "reply-bad-auth"),
        (long_name, "reply-bad-name"),
        (r#"{"order":["dslite"]}"#.into(), "reply-missing-section"),
        (r#"{"order":["ipip"],"ipip":[]}"#.into(), "reply-missing-section"),
        (r#"{"order":[],"dslite":{}}"#.into(), "reply-bad-dslite"),
        (r#"{"order":[],"dslite":{"aftr":"bad name!"}}"#.into(), "reply-bad-dslite"),
        (r#"{"order":[],"dslite":{"aftr":"192.0.2.1"}}"#.into(), "reply-bad-dslite"),
        (r#"{"order":[],"dslite":{"aftr":"ff02::1"}}"#.into(), "reply-bad-dslite"),
        (r#"{"order":[],"map_e":{"br":"x","rules":[]}}"#.into(), "reply-bad-map-e"),
        (r#"{"order":[],"map_e":{"version":2,"br":"2001:db8::1","rules":[]}}"#.into(), "reply-bad-map-e"),
        (rules(0), "reply-bad-map-e"),
        (rules(MAX_RULES + 1), "reply-bad-map-e"),
        (
            r#"{"order":[],"map_e":{"br":"2001:db8::1","rules":[{"ipv6":"2001:db8::/32","ipv4":"203.0.113.0/24","ea_length":40,"psid_offset":4}]}}"#.into(),
            "reply-bad-map-e",
        ),
        (
            r#"{"order":[],"map_e":{"br":"2001:db8::1","rules":[{"ipv6":"2001:db8::1/32","ipv4":"203.0.113.0/24","ea_length":8,"psid_offset":4}]}}"#.into(),
            "reply-bad-map-e",
        ),
        (r#"{"order":[],"ipip":[{"ipv6_local":"::","ipv6_remote":"2001:db8::1","ipv4":"192.0.2.1"}]}"#.into(), "reply-bad-ipip"),
        (r#"{"order":[],"ipip":[{"ipv6_local":"2001:db8::2","ipv6_remote":"2001:db8::1","ipv4":"192.0.2.1/33"}]}"#.into(), "reply-bad-ipip"),
    ];
    for (body, name) in cases {
        let e = parse(body.as_bytes()).unwrap_err();
        assert_eq!(e.name(), name, "{body:.120}: {e}");
        // Every refusal has a counter of that name.
        assert!(
            Counters::default().named().iter().any(|(n, _)| *n == name),
            "{name}"
        );
    }
    assert_eq!(
        parse(rules(MAX_RULES).as_bytes())
            .unwrap()
            .map_e
            .unwrap()
            .rules
            .len(),
        MAX_RULES
    );
    let huge = vec![b' '; reply::MAX_BODY + 1];
    assert_eq!(parse(&huge).unwrap_err().name(), "reply-too-large");
}

#[test]
fn hostile_reply_bytes_never_panic() {
    let mut rng = Jitter::new(46);
    let seeds = [SPEC_REPLY.as_bytes(), TRANSIX_REPLY.as_bytes()];
    for round in 0..20_000 {
        let bytes: Vec<u8> = if round % 3 == 0 {
            (0..rng.below(200)).map(|_| rng.next_u64() as u8).collect()
        } else {
            let mut b = seeds[rng.below(2)].to_vec();
            for _ in 0..=rng.below(3) {
                let i = rng.below(b.len());
                match rng.below(3) {
                    0 => b[i] = rng.next_u64() as u8,
                    1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, b"{}[]\",:0-e"[rng.below(10)]),
                }
            }
            b
        };
        if let Ok(p) = parse(&bytes) {
            let _ = p.decide(&[Method::DsLite, Method::MapE, Method::Ipip]);
        }
    }
    // Deep nesting: skipped without recursion under an unknown key,
    // refused (serde_json's depth limit) under a known one; no stack
    // overflow either way.
    let (open, close) = ("[".repeat(100_000), "]".repeat(100_000));
    assert!(parse(format!(r#"{{"order":[],"x":{open}{close}}}"#).as_bytes()).is_ok());
    let deep = format!(r#"{{"order":{open}{close}}}"#);
    assert_eq!(
        parse(deep.as_bytes()).unwrap_err().name(),
        "reply-malformed"
    );
    let deep = format!(r#"{{"order":[],"lw4o6":{open}{close}}}"#);
    assert!(parse(deep.as_bytes()).is_ok());
    // The untagged shapes buffer what they read: still depth-limited.
    for deep in [
        format!(r#"{{"order":[],"ipip":{open}{close}}}"#),
        format!(r#"{{"order":[],"map_e":{{"mesh":{open}{close}}}}}"#),
    ] {
        assert_eq!(
            parse(deep.as_bytes()).unwrap_err().name(),
            "reply-malformed"
        );
    }
}

// ---------------------------------------------------------------------------
// The client on a fake clock
// ---------------------------------------------------------------------------

const WAN: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0x1, 0, 0, 0, 0x10);
const TXT_HTTPS: &str = "v=v6mig-1 url=https://prov.example/config t=b";

fn client() -> Client {
    Client::new(Settings::new(request_config()), 1).unwrap()
}

fn ok(body: &str) -> Result<Response, FetchError> {
    Ok(Response {
        status: 200,
        reason: "OK".into(),
        headers: vec![],
        body: body.as_bytes().to_vec(),
    })
}

fn status(code: u16, location: Option<&str>) -> Result<Response, FetchError> {
    Ok(Response {
        status: code,
        reason: String::new(),
        headers: location
            .map(|l| vec![("location".to_string(), l.as_bytes().to_vec())])
            .unwrap_or_default(),
        body: vec![],
    })
}

/// Polls at `now`; returns the one action asked for and the next timer.
fn step(c: &mut Client, now: Instant) -> (Option<Action>, Option<Instant>) {
    let mut out = Vec::new();
    let next = c.poll(now, &mut out);
    assert!(out.len() <= 1, "{out:?}");
    (out.pop(), next)
}

fn txt_id(a: Option<Action>) -> u64 {
    match a {
        Some(Action::QueryTxt { id }) => id,
        other => panic!("expected a TXT query, got {other:?}"),
    }
}

fn fetch_of(a: Option<Action>) -> (u64, Target, bool, Ipv6Addr) {
    match a {
        Some(Action::Fetch {
            id,
            target,
            verify,
            source,
        }) => (id, target, verify, source),
        other => panic!("expected a fetch, got {other:?}"),
    }
}

/// One full round at `now` answered with `reply`; returns the next timer.
fn round(c: &mut Client, now: Instant, reply: &Result<Response, FetchError>) -> Instant {
    let id = txt_id(step(c, now).0);
    c.txt_result(now, id, TxtOutcome::Records(vec![rec(TXT_HTTPS)]));
    let (id, _, _, _) = fetch_of(step(c, now).0);
    c.http_result(now, id, reply);
    step(c, now).1.expect("a next round")
}

#[test]
fn first_round_fetches_from_the_wan_address_and_decides() {
    let t0 = Instant::now();
    let mut c = client();
    assert_eq!(step(&mut c, t0), (None, None), "no address, nothing to do");
    c.set_address(t0, Some(WAN));
    let id = txt_id(step(&mut c, t0).0);
    c.txt_result(t0, id, TxtOutcome::Records(vec![rec(TXT_HTTPS)]));
    let (id, target, verify, source) = fetch_of(step(&mut c, t0).0);
    assert!(verify);
    assert_eq!(source, WAN);
    assert_eq!(
        target.expose(),
        "https://prov.example/config?vendorid=acde48-v6pc_swg_hgw&product=V6MIG-ROUTER&version=1_32&capability=dslite,map_e,ipip"
    );
    c.http_result(t0, id, &ok(SPEC_REPLY));
    let next = step(&mut c, t0).1.unwrap();
    assert_eq!(next - t0, Duration::from_secs(86400), "the reply's ttl");
    assert!(matches!(c.decision(), Some(Decision::MapE(_))));
    assert_eq!(c.take_events().len(), 1);
    let s = c.status(t0);
    assert_eq!(
        (s.phase, s.enabler_name.as_deref(), s.failures),
        ("waiting", Some("A VNE"), 0)
    );
    assert_eq!(s.server.as_deref(), Some("https://prov.example/config"));
    // The token goes back with the next request.
    let id = txt_id(step(&mut c, next).0);
    c.txt_result(next, id, TxtOutcome::Records(vec![rec(TXT_HTTPS)]));
    let (_, target, _, _) = fetch_of(step(&mut c, next).0);
    assert!(target.expose().ends_with(&format!("&token={TOKEN}")));
    assert!(
        !target.to_string().contains(TOKEN),
        "the token is masked in logs"
    );
}

#[test]
fn refresh_without_ttl_runs_every_20_to_24_hours_for_days() {
    let t0 = Instant::now();
    let mut c = client();
    c.set_address(t0, Some(WAN));
    let mut now = t0;
    let mut gaps = Vec::new();
    while now - t0 < Duration::from_secs(30 * 86400) {
        let next = round(&mut c, now, &ok(TRANSIX_REPLY));
        gaps.push(next - now);
        now = next;
    }
    assert!(gaps.len() >= 30, "{}", gaps.len());
    let (lo, hi) = (
        Duration::from_secs(20 * 3600),
        Duration::from_secs(24 * 3600),
    );
    assert!(gaps.iter().all(|g| (lo..=hi).contains(g)), "{gaps:?}");
    // Jittered: not all the same.
    assert!(gaps.iter().any(|g| *g != gaps[0]));
    assert_eq!(c.counters().accepted as usize, gaps.len());
    // One decision event only: the answer never changed.
    assert_eq!(c.take_events().len(), 1);
}

#[test]
fn ttl_is_honoured_with_a_floor() {
    let t0 = Instant::now();
    let mut c = client();
    c.set_address(t0, Some(WAN));
    let next = round(
        &mut c,
        t0,
        &ok(r#"{"order":["dslite"],"ttl":3600,"dslite":{"aftr":"2001:db8::1"}}"#),
    );
    assert_eq!(next - t0, Duration::from_secs(3600));
    let next2 = round(
        &mut c,
        next,
        &ok(r#"{"order":["dslite"],"ttl":0,"dslite":{"aftr":"2001:db8::1"}}"#),
    );
    assert_eq!(next2 - next, MIN_TTL);
}

#[test]
fn failures_back_off_exponentially_and_keep_the_decision() {
    let t0 = Instant::now();
    let mut c = client();
    c.set_address(t0, Some(WAN));
    let mut now = round(&mut c, t0, &ok(TRANSIX_REPLY));
    c.take_events();
    // HTTP failures: 10-30 min, doubling, capped at x8.
    for n in 0..6u32 {
        let next = round(&mut c, now, &Err(FetchError::ConnectTimeout));
        let f = 1u32 << n.min(3);
        let gap = next - now;
        assert!(
            (Duration::from_secs(600) * f..=Duration::from_secs(1800) * f).contains(&gap),
            "failure {}: {gap:?}",
            n + 1
        );
        now = next;
        assert!(matches!(c.decision(), Some(Decision::DsLite(_))), "kept");
    }
    assert_eq!(c.status(now).failures, 6);
    assert!(c
        .status(now)
        .last_error
        .unwrap()
        .contains("connect timeout"));
    // Success resets the backoff.
    round(&mut c, now, &ok(TRANSIX_REPLY));
    assert_eq!(c.status(now).failures, 0);
    assert_eq!(c.counters().http_failed, 6);
    // DNS failures: 1-10 min, doubling.
    let mut c = client();
    c.set_address(t0, Some(WAN));
    let mut now = t0;
    for n in 0..5u32 {
        let id = txt_id(step(&mut c, now).0);
        c.txt_result(now, id, TxtOutcome::Failed("SERVFAIL".into()));
        let next = step(&mut c, now).1.unwrap();
        let f = 1u32 << n.min(3);
        assert!(
            (Duration::from_secs(60) * f..=Duration::from_secs(600) * f).contains(&(next - now))
        );
        now = next;
    }
    // A lookup never answered counts as a DNS failure after dns_timeout.
    let id = txt_id(step(&mut c, now).0);
    let (none, deadline) = step(&mut c, now);
    assert!(none.is_none());
    assert_eq!(deadline.unwrap() - now, Duration::from_secs(30));
    let (none, _) = step(&mut c, deadline.unwrap());
    assert!(none.is_none());
    assert_eq!(c.counters().dns_failed, 6);
    c.txt_result(now, id, TxtOutcome::NoData);
    assert_eq!(c.counters().stale_results, 1, "late answer ignored");
}

#[test]
fn no_record_drops_the_method_and_waits_hours() {
    let t0 = Instant::now();
    let mut c = client();
    c.set_address(t0, Some(WAN));
    let mut now = round(&mut c, t0, &ok(TRANSIX_REPLY));
    c.take_events();
    for outcome in [
        TxtOutcome::NxDomain,
        TxtOutcome::NoData,
        TxtOutcome::Records(vec![rec("v=spf1")]),
    ] {
        let id = txt_id(step(&mut c, now).0);
        c.txt_result(now, id, outcome);
        let next = step(&mut c, now).1.unwrap();
        assert!((Duration::from_secs(3600)..=Duration::from_secs(3 * 3600)).contains(&(next - now)));
        now = next;
    }
    assert_eq!(c.decision(), None);
    assert_eq!(c.take_events(), vec![Event::Decided(Decision::Nothing)]);
    assert_eq!(c.counters().no_record, 3);
    assert!(c.cache(0).is_none(), "nothing to keep");
}

#[test]
fn an_address_change_asks_again_at_once_and_ignores_the_old_round() {
    let t0 = Instant::now();
    let mut c = client();
    c.set_address(t0, Some(WAN));
    let next = round(&mut c, t0, &ok(TRANSIX_REPLY));
    let t1 = t0 + Duration::from_secs(3600);
    assert!(next > t1);
    let id = {
        c.refresh(t1);
        txt_id(step(&mut c, t1).0)
    };
    c.txt_result(t1, id, TxtOutcome::Records(vec![rec(TXT_HTTPS)]));
    let (old, _, _, _) = fetch_of(step(&mut c, t1).0);
    let wan2: Ipv6Addr = "2001:db8:200::10".parse().unwrap();
    c.set_address(t1, Some(wan2));
    c.http_result(t1, old, &ok(r#"{"order":[]}"#));
    assert_eq!(c.counters().stale_results, 1);
    let id = txt_id(step(&mut c, t1).0);
    c.txt_result(t1, id, TxtOutcome::Records(vec![rec(TXT_HTTPS)]));
    let (_, _, _, source) = fetch_of(step(&mut c, t1).0);
    assert_eq!(source, wan2);
    assert_eq!(c.counters().address_changes, 1);
    // Losing the address stops the rounds.
    c.set_address(t1, None);
    assert_eq!(step(&mut c, t1), (None, None));
}

#[test]
fn redirects_are_followed_within_bounds() {
    let t0 = Instant::now();
    let mut c = client();
    c.set_address(t0, Some(WAN));
    let id = txt_id(step(&mut c, t0).0);
    c.txt_result(t0, id, TxtOutcome::Records(vec![rec(TXT_HTTPS)]));
    let (id, _, _, _) = fetch_of(step(&mut c, t0).0);
    // No query: ours are added. With a query: as given.
    c.http_result(t0, id, &status(307, Some("https://prov2.example/cfg")));
    let (id, target, verify, _) = fetch_of(step(&mut c, t0).0);
    assert!(verify);
    assert!(
        target
            .expose()
            .starts_with("https://prov2.example/cfg?vendorid=acde48"),
        "{target}"
    );
    c.http_result(t0, id, &status(308, Some("/v2?session=9")));
    let (id, target, _, _) = fetch_of(step(&mut c, t0).0);
    assert_eq!(target.expose(), "https://prov2.example/v2?session=9");
    c.http_result(t0, id, &ok(TRANSIX_REPLY));
    assert!(c.decision().is_some());
    assert_eq!(c.counters().redirects, 2);

    // A loop ends after max_redirects; https to http is refused.
    for (location, follows) in [
        ("https://prov.example/again", 5),
        ("http://prov.example/plain", 0),
    ] {
        let mut c = client();
        c.set_address(t0, Some(WAN));
        let id = txt_id(step(&mut c, t0).0);
        c.txt_result(t0, id, TxtOutcome::Records(vec![rec(TXT_HTTPS)]));
        let (mut id, _, _, _) = fetch_of(step(&mut c, t0).0);
        for _ in 0..follows {
            c.http_result(t0, id, &status(307, Some(location)));
            id = fetch_of(step(&mut c, t0).0).0;
        }
        c.http_result(t0, id, &status(307, Some(location)));
        let (none, next) = step(&mut c, t0);
        assert!(none.is_none());
        assert!(next.unwrap() - t0 >= Duration::from_secs(600));
        assert_eq!(c.counters().redirect_refused, 1);
    }
}

#[test]
fn refused_replies_and_statuses_count_and_back_off() {
    let t0 = Instant::now();
    let mut c = client();
    c.set_address(t0, Some(WAN));
    let mut now = t0;
    for reply in [
        ok("{not json"),
        ok(r#"{"order":["dslite"]}"#),
        status(403, None),
        status(404, None),
        status(302, Some("https://x/")),
    ] {
        now = round(&mut c, now, &reply);
    }
    let k = c.counters();
    assert_eq!(
        (k.reply_malformed, k.reply_missing_section, k.http_status),
        (1, 1, 3)
    );
    assert_eq!(c.decision(), None);
    assert_eq!(c.status(now).failures, 5);
}

#[test]
fn cache_round_trips_without_credentials() {
    let t0 = Instant::now();
    let mut cfg = request_config();
    cfg.credentials = Some(Credentials {
        user: "myname".into(),
        pass: "secret_pw".into(),
        server: None,
    });
    let mut c = Client::new(Settings::new(cfg.clone()), 3).unwrap();
    c.set_address(t0, Some(WAN));
    round(&mut c, t0, &ok(SPEC_REPLY));
    let json = c.cache(1_700_000_000).unwrap().to_json();
    assert!(
        !json.contains("secret_pw") && !json.contains("myname"),
        "{json}"
    );
    let cache = Cache::from_json(json.as_bytes()).unwrap();
    assert_eq!(cache.address, Some(WAN));
    assert_eq!(cache.server, "https://prov.example/config");

    // A new client starts from it: the decision at once, the token sent.
    let mut d = Client::new(Settings::new(cfg), 4).unwrap();
    d.restore(t0, &cache).unwrap();
    assert_eq!(d.decision(), c.decision());
    assert_eq!(d.answer().unwrap().source, Source::Cache);
    d.set_address(t0, Some(WAN));
    let id = txt_id(step(&mut d, t0).0);
    d.txt_result(t0, id, TxtOutcome::Records(vec![rec(TXT_HTTPS)]));
    let (_, target, _, _) = fetch_of(step(&mut d, t0).0);
    assert!(target.expose().contains(TOKEN));

    // A tampered cache is refused by the same parser; garbage is not a cache.
    let mut bad = cache.clone();
    bad.body = r#"{"order":["dslite"]}"#.into();
    assert!(d.restore(t0, &bad).is_err());
    assert_eq!(d.counters().cache_refused, 1);
    assert!(Cache::from_json(b"\x00\x01").is_none());
    // clear() forgets it.
    d.clear(t0);
    assert_eq!(d.decision(), None);
    assert!(d.cache(0).is_none());
}
