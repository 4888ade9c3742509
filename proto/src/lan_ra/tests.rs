//! Tests of the LAN RA sender: every emitted RA is parsed back with the
//! WAN side's codec and checked field by field; the schedule runs for hours
//! on a fake clock (`t0 + Duration`); hostile RS/RA input is fuzzed.

use crate::jitter::Jitter;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use super::*;
use crate::slaac::ra::{RouterAdvert, INFINITE_LIFETIME};

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x10];
const HOST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef];
const PREFIX_A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0x100, 0, 0, 0, 0);
const PREFIX_B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0x200, 0, 0, 0, 0);
const PREFIX_C: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0x300, 0, 0, 0, 0);
const ROUTER_DNS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0x100, 0, 0, 0, 1);
const UPSTREAM_DNS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53);
const HOST_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfeab, 0xcdef);
const ROGUE_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xbad);

fn cfg() -> LanRaConfig {
    LanRaConfig::with_defaults(MAC, 1500, Duration::from_secs(200))
}

fn infinite(prefix: Ipv6Addr) -> LanPrefix {
    LanPrefix {
        prefix,
        preferred_until: None,
        valid_until: None,
    }
}

fn leased(prefix: Ipv6Addr, preferred_until: Instant, valid_until: Instant) -> LanPrefix {
    LanPrefix {
        prefix,
        preferred_until: Some(preferred_until),
        valid_until: Some(valid_until),
    }
}

fn inputs(prefix: Option<LanPrefix>, default_route: bool) -> RaInputs {
    RaInputs {
        prefix,
        default_route,
        rdnss: vec![ROUTER_DNS],
        dnssl: vec!["home.arpa".to_string()],
    }
}

/// An engine with prefix A, a default route and DNS, started at `t0`.
fn running(t0: Instant, seed: u64) -> LanRa {
    let mut ra = LanRa::new(cfg(), seed);
    ra.update(t0, inputs(Some(infinite(PREFIX_A)), true));
    ra.start(t0);
    ra
}

/// Parses an emitted RA with the WAN side's codec, insisting on a clean
/// parse and a zero checksum (the caller fills it).
fn parse(bytes: &[u8]) -> RaRepr {
    assert_eq!(bytes[0], 134, "ICMPv6 type");
    assert_eq!(bytes[1], 0, "code");
    assert_eq!(&bytes[2..4], &[0, 0], "checksum left for the caller");
    assert!(
        bytes.len() <= 1240,
        "RA of {} octets would fragment",
        bytes.len()
    );
    let view = RouterAdvert::new_checked(bytes).expect("our RA passes RFC 4861 6.1.2");
    let (repr, skipped) = RaRepr::parse(&view).unwrap();
    assert!(skipped.is_empty(), "options skipped: {skipped:?}");
    // Emitting the parse result gives the same bytes: nothing was lost.
    assert_eq!(repr.emit().unwrap(), bytes);
    repr
}

/// Polls at every deadline from `from` to `until` (inclusive) like the
/// control loop does, returning the RAs sent with their send times.
fn run(ra: &mut LanRa, from: Instant, until: Instant) -> Vec<(Instant, RaRepr)> {
    let mut sent = Vec::new();
    let mut now = from;
    for _ in 0..1_000_000 {
        let mut out = Vec::new();
        let next = ra.poll(now, &mut out);
        sent.extend(out.iter().map(|b| (now, parse(b))));
        match next {
            Some(t) if t <= until => {
                assert!(t > now || !out.is_empty(), "busy loop at {now:?}");
                now = t.max(now);
            }
            _ => return sent,
        }
    }
    panic!("poll never settled");
}

/// Polls once at `now`.
fn poll_once(ra: &mut LanRa, now: Instant) -> Vec<RaRepr> {
    let mut out = Vec::new();
    ra.poll(now, &mut out);
    out.iter().map(|b| parse(b)).collect()
}

fn pio(repr: &RaRepr, prefix: Ipv6Addr) -> Option<PrefixInfo> {
    repr.prefixes.iter().copied().find(|p| p.prefix == prefix)
}

fn rs(slla: Option<[u8; 6]>) -> Vec<u8> {
    ra::router_solicit(slla)
}

/// The full field check of a regular RA from `running()`.
fn assert_regular(repr: &RaRepr) {
    assert_eq!(repr.cur_hop_limit, 64);
    assert!(!repr.managed);
    assert!(repr.other);
    assert_eq!(repr.router_lifetime, 600);
    assert_eq!(repr.reachable_time, 0);
    assert_eq!(repr.retrans_timer, 0);
    assert_eq!(repr.source_lladdr, Some(MAC));
    assert_eq!(repr.mtu, Some(1500));
    assert_eq!(
        repr.prefixes,
        vec![PrefixInfo {
            prefix: PREFIX_A,
            prefix_len: 64,
            on_link: true,
            autonomous: true,
            valid_lifetime: 5400,
            preferred_lifetime: 2700,
        }]
    );
    assert_eq!(
        repr.rdnss,
        vec![ra::Rdnss {
            lifetime: 600,
            servers: vec![ROUTER_DNS],
        }]
    );
    assert_eq!(
        repr.dnssl,
        vec![Dnssl {
            lifetime: 600,
            domains: vec!["home.arpa".to_string()],
        }]
    );
}

/// Consecutive multicast RAs are at least MIN_DELAY_BETWEEN_RAS apart.
fn assert_spaced(sent: &[(Instant, RaRepr)]) {
    for pair in sent.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= MIN_DELAY_BETWEEN_RAS, "RAs only {gap:?} apart");
    }
}

// ---- the bytes on the wire --------------------------------------------

/// An RA with a leased prefix, a stale prefix, two DNS servers and two
/// domains, checked byte for byte. Verified outside Rust: put in an IPv6
/// packet from fe80::ff:fe00:10 to ff02::1 (hop limit 255, checksum
/// 0x7aed), tshark 4 (`-V`, "[Checksum Status: Good]", no expert items)
/// and rdisc6 (from a veth pair in two network namespaces) both decoded:
/// hop limit 64, O set and M not, router lifetime 600, reachable and
/// retrans unspecified, SLLA 02:00:00:00:00:10, MTU 1500,
/// 2001:db8:a:100::/64 L A valid 3600 preferred 1800,
/// 2001:db8:c:300::/64 L A valid 1000 preferred 0, RDNSS
/// 2001:db8:a:100::1 2001:db8::53 lifetime 600, DNSSL home.arpa
/// example.com lifetime 600. The Linux kernel on the receiving side
/// (accept_ra=1) formed 2001:db8:a:100:<eui64> (valid 3600, preferred 1800)
/// and a deprecated 2001:db8:c:300:<eui64> (valid 1000, preferred 0), and a
/// default route via fe80::ff:fe00:10 expiring in 600 s.
const GOLDEN_RA_HEX: &str = concat!(
    "86000000404002580000000000000000",
    "0101020000000010",
    "05010000000005dc",
    "030440c000000e10000007080000000020010db8000a01000000000000000000",
    "030440c0000003e8000000000000000020010db8000c03000000000000000000",
    "190500000000025820010db8000a0100000000000000000120010db8000000000000000000000053",
    "1f0400000000025804686f6d65046172706100076578616d706c6503636f6d00",
);

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn golden_engine(t0: Instant) -> LanRa {
    let mut ra = LanRa::new(cfg(), 7);
    ra.update(t0, inputs(Some(infinite(PREFIX_C)), true));
    ra.update(
        t0,
        RaInputs {
            prefix: Some(leased(PREFIX_A, t0 + 1800 * SEC, t0 + 3600 * SEC)),
            default_route: true,
            rdnss: vec![ROUTER_DNS, UPSTREAM_DNS],
            dnssl: vec!["home.arpa.".to_string(), "Example.COM".to_string()],
        },
    );
    ra
}

#[test]
fn golden_ra_bytes() {
    let t0 = Instant::now();
    let mut ra = golden_engine(t0);
    // PREFIX_C had an infinite lease: stale for 5400 s. Send at t0 + 4400.
    let now = t0 + 4400 * SEC;
    ra.update(
        now,
        RaInputs {
            prefix: Some(leased(PREFIX_A, now + 1800 * SEC, now + 3600 * SEC)),
            default_route: true,
            rdnss: vec![ROUTER_DNS, UPSTREAM_DNS],
            dnssl: vec!["home.arpa.".to_string(), "Example.COM".to_string()],
        },
    );
    ra.start(now);
    let mut out = Vec::new();
    ra.poll(now, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0], hex(GOLDEN_RA_HEX));
    let repr = parse(&out[0]);
    assert_eq!(repr.dnssl[0].domains, vec!["home.arpa", "example.com"]);
}

// ---- schedule ----------------------------------------------------------

#[test]
fn three_fast_initial_ras_then_random_intervals_for_hours() {
    for seed in 1..=20 {
        let t0 = Instant::now();
        let mut ra = running(t0, seed);
        let sent = run(&mut ra, t0, t0 + 12 * HOUR);
        assert_eq!(sent[0].0, t0, "first RA at start");
        for (_, repr) in &sent {
            assert_regular(repr);
        }
        let gaps: Vec<Duration> = sent.windows(2).map(|w| w[1].0 - w[0].0).collect();
        for gap in &gaps[..2] {
            assert!(
                (INITIAL_ADVERT_INTERVAL_MIN..=INITIAL_ADVERT_INTERVAL_MAX).contains(gap),
                "initial gap {gap:?}"
            );
            assert!(*gap <= MAX_INITIAL_RTR_ADVERT_INTERVAL);
        }
        let (min, max) = ra.intervals();
        assert_eq!(min, Duration::from_secs(66));
        assert_eq!(max, Duration::from_secs(200));
        for gap in &gaps[2..] {
            assert!((min..=max).contains(gap), "gap {gap:?}");
        }
        // Uniform in [66, 200]: mean 133 s, so about 325 RAs in 12 hours,
        // and both ends of the range are reached.
        assert!((280..=380).contains(&sent.len()), "{} RAs", sent.len());
        assert!(gaps[2..].iter().any(|g| *g < Duration::from_secs(80)));
        assert!(gaps[2..].iter().any(|g| *g > Duration::from_secs(185)));
        assert_eq!(ra.counters().tx_ra, sent.len() as u64);
        assert_eq!(ra.last_sent(), Some(sent.last().unwrap().0));
    }
}

#[test]
fn interval_bounds_follow_max_interval() {
    for (max, want_min) in [(4, 3.0), (9, 3.0), (10, 3.3), (1800, 594.0)] {
        let t0 = Instant::now();
        let c = LanRaConfig::with_defaults(MAC, 1500, Duration::from_secs(max));
        let mut ra = LanRa::new(c, max);
        ra.update(t0, inputs(Some(infinite(PREFIX_A)), true));
        ra.start(t0);
        let (min, got_max) = ra.intervals();
        assert_eq!(min, Duration::from_secs_f64(want_min));
        assert_eq!(got_max, Duration::from_secs(max));
        let sent = run(&mut ra, t0, t0 + 48 * HOUR);
        assert_spaced(&sent);
        for w in sent.windows(2).skip(2) {
            assert!((min..=got_max).contains(&(w[1].0 - w[0].0)));
        }
        let lifetime = (3 * max).min(9000) as u16;
        assert!(sent.iter().all(|(_, r)| r.router_lifetime == lifetime));
        let dns = (3 * max) as u32;
        assert!(sent.iter().all(|(_, r)| r.rdnss[0].lifetime == dns));
    }
}

#[test]
fn nothing_before_start_and_deadline_is_exact() {
    let t0 = Instant::now();
    let mut ra = LanRa::new(cfg(), 1);
    ra.update(t0, inputs(Some(infinite(PREFIX_A)), true));
    let mut out = Vec::new();
    assert_eq!(ra.poll(t0, &mut out), None);
    assert!(out.is_empty());
    ra.start(t0 + SEC);
    let deadline = ra.poll(t0 + SEC, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    // Early polls send nothing and keep the deadline.
    out.clear();
    assert_eq!(ra.poll(deadline - MS, &mut out), Some(deadline));
    assert!(out.is_empty());
    ra.poll(deadline, &mut out);
    assert_eq!(out.len(), 1);
    // A second start is ignored.
    ra.start(deadline);
    out.clear();
    ra.poll(deadline, &mut out);
    assert!(out.is_empty());
}

// ---- solicitations -----------------------------------------------------

#[test]
fn solicited_ra_within_half_a_second() {
    let mut delays = Vec::new();
    for seed in 0..200 {
        let t0 = Instant::now();
        let mut ra = running(t0, seed);
        run(&mut ra, t0, t0 + 60 * SEC);
        let at = t0 + 60 * SEC;
        ra.handle_rs(at, HOST_LL, 255, &rs(Some(HOST_MAC))).unwrap();
        let sent = run(&mut ra, at, at + 2 * SEC);
        assert_eq!(sent.len(), 1);
        let delay = sent[0].0 - at;
        assert!(delay <= MAX_RA_DELAY_TIME, "answered after {delay:?}");
        assert_regular(&sent[0].1);
        assert_eq!(ra.counters().tx_ra_solicited, 1);
        assert_eq!(ra.counters().rx_rs, 1);
        delays.push(delay);
    }
    // The delay is random, not fixed.
    assert!(delays.iter().any(|d| *d < 100 * MS));
    assert!(delays.iter().any(|d| *d > 400 * MS));
}

#[test]
fn rs_from_unspecified_source_is_answered() {
    let t0 = Instant::now();
    let mut ra = running(t0, 3);
    run(&mut ra, t0, t0 + 60 * SEC);
    let at = t0 + 60 * SEC;
    ra.handle_rs(at, Ipv6Addr::UNSPECIFIED, 255, &rs(None))
        .unwrap();
    assert_eq!(run(&mut ra, at, at + SEC).len(), 1);
}

#[test]
fn rs_flood_yields_at_most_one_ra_per_three_seconds() {
    let t0 = Instant::now();
    let mut ra = running(t0, 11);
    let mut sent = run(&mut ra, t0, t0 + 100 * SEC);
    let flood_start = t0 + 100 * SEC;
    // 1000 RSs in one second, polling after each like the control loop.
    let mut now = flood_start;
    for i in 0..1000u32 {
        now = flood_start + i * MS;
        ra.handle_rs(now, HOST_LL, 255, &rs(Some(HOST_MAC)))
            .unwrap();
        for r in poll_once(&mut ra, now) {
            sent.push((now, r));
        }
    }
    let in_flood = sent.iter().filter(|(t, _)| *t >= flood_start).count();
    assert!(in_flood <= 1, "{in_flood} RAs during a 1 s RS flood");
    // Then a sustained flood: 30 s at 1000 RS/s.
    for i in 0..30_000u32 {
        now = flood_start + SEC + i * MS;
        ra.handle_rs(now, HOST_LL, 255, &rs(Some(HOST_MAC)))
            .unwrap();
        for r in poll_once(&mut ra, now) {
            sent.push((now, r));
        }
    }
    assert_spaced(&sent);
    let flooded: Vec<_> = sent.iter().filter(|(t, _)| *t >= flood_start).collect();
    assert!(
        (10..=11).contains(&flooded.len()),
        "{} RAs in 31 s of flood",
        flooded.len()
    );
    let c = ra.counters();
    assert_eq!(c.rx_rs, 31_000);
    assert!(c.rs_coalesced > 30_000);
    assert!(c.rs_rate_limited >= 9, "{c:?}");
    assert_eq!(c.tx_ra_solicited as usize, flooded.len());
    // After the flood the regular schedule resumes.
    let after = run(&mut ra, now, now + HOUR);
    assert!(after.len() >= 18);
}

#[test]
fn rs_validation_drops_with_counters() {
    let t0 = Instant::now();
    let mut before_start = LanRa::new(cfg(), 1);
    assert_eq!(
        before_start.handle_rs(t0, HOST_LL, 255, &rs(None)),
        Err(RsDrop::NotAdvertising)
    );
    assert_eq!(before_start.counters().drop_rs_not_advertising, 1);

    let mut ra = running(t0, 1);
    run(&mut ra, t0, t0 + 60 * SEC);
    let now = t0 + 60 * SEC;
    let good = rs(Some(HOST_MAC));
    let mut zero_len = good.clone();
    zero_len[9] = 0;
    let mut overrun = good.clone();
    overrun[9] = 2;
    let mut odd_tail = good.clone();
    odd_tail.push(1);
    let mut bad_code = good.clone();
    bad_code[1] = 1;
    let cases: Vec<(Ipv6Addr, u8, Vec<u8>, RsDrop)> = vec![
        (HOST_LL, 64, good.clone(), RsDrop::HopLimit(64)),
        (HOST_LL, 254, good.clone(), RsDrop::HopLimit(254)),
        (
            "ff02::1".parse().unwrap(),
            255,
            good.clone(),
            RsDrop::MulticastSource("ff02::1".parse().unwrap()),
        ),
        (
            HOST_LL,
            255,
            good[..7].to_vec(),
            RsDrop::Malformed(RsMalformed::Truncated),
        ),
        (
            HOST_LL,
            255,
            vec![],
            RsDrop::Malformed(RsMalformed::Truncated),
        ),
        (
            HOST_LL,
            255,
            vec![134, 0, 0, 0, 0, 0, 0, 0],
            RsDrop::Malformed(RsMalformed::NotRouterSolicit(134)),
        ),
        (
            HOST_LL,
            255,
            bad_code,
            RsDrop::Malformed(RsMalformed::BadCode(1)),
        ),
        (
            HOST_LL,
            255,
            zero_len,
            RsDrop::Malformed(RsMalformed::ZeroLengthOption { offset: 8 }),
        ),
        (
            HOST_LL,
            255,
            overrun,
            RsDrop::Malformed(RsMalformed::OptionOverrun { offset: 8 }),
        ),
        (
            HOST_LL,
            255,
            odd_tail,
            RsDrop::Malformed(RsMalformed::OptionOverrun { offset: 16 }),
        ),
        (
            Ipv6Addr::UNSPECIFIED,
            255,
            good.clone(),
            RsDrop::UnspecifiedSourceWithSlla,
        ),
    ];
    for (src, hop, bytes, want) in &cases {
        assert_eq!(ra.handle_rs(now, *src, *hop, bytes), Err(*want), "{want}");
    }
    let c = ra.counters();
    assert_eq!(c.rx_rs, cases.len() as u64);
    assert_eq!(c.drop_rs_hop_limit, 2);
    assert_eq!(c.drop_rs_source, 1);
    assert_eq!(c.drop_rs_malformed, 7);
    assert_eq!(c.drop_rs_unspecified_slla, 1);
    // None of them scheduled anything.
    let next = run(&mut ra, now, now + 60 * SEC);
    assert!(next.iter().all(|(t, _)| *t >= now + Duration::from_secs(3)));
    assert_eq!(ra.counters().tx_ra_solicited, 0);

    // Unknown options and a non-Ethernet SLLA are fine (RFC 4861 6.1.1
    // checks lengths only).
    let mut unknown = rs(None);
    unknown.extend_from_slice(&[200, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    unknown.extend_from_slice(&[1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let later = now + 120 * SEC;
    assert_eq!(ra.handle_rs(later, HOST_LL, 255, &unknown), Ok(()));
    // A global source is allowed too.
    assert_eq!(ra.handle_rs(later, ROUTER_DNS, 255, &rs(None)), Ok(()));
}

// ---- lifetimes ---------------------------------------------------------

#[test]
fn lifetimes_capped_and_never_above_the_lease() {
    let t0 = Instant::now();
    // Long lease: the RFC 9096 caps.
    let mut ra = LanRa::new(cfg(), 5);
    ra.update(
        t0,
        inputs(
            Some(leased(PREFIX_A, t0 + 100_000 * SEC, t0 + 200_000 * SEC)),
            true,
        ),
    );
    ra.start(t0);
    let p = pio(&poll_once(&mut ra, t0)[0], PREFIX_A).unwrap();
    assert_eq!((p.preferred_lifetime, p.valid_lifetime), (2700, 5400));

    // Short lease: the remaining time, counting down, never negative.
    let preferred_until = t0 + 1000 * SEC + 700 * MS;
    let valid_until = t0 + 4000 * SEC;
    let lease = leased(PREFIX_A, preferred_until, valid_until);
    let mut ra = LanRa::new(cfg(), 5);
    ra.update(t0, inputs(Some(lease), true));
    ra.start(t0);
    let sent = run(&mut ra, t0, t0 + 2 * HOUR);
    assert!(sent.len() > 40);
    for (at, repr) in &sent {
        let p = pio(repr, PREFIX_A).unwrap();
        let preferred_left = preferred_until.saturating_duration_since(*at).as_secs() as u32;
        let valid_left = valid_until.saturating_duration_since(*at).as_secs() as u32;
        assert_eq!(p.preferred_lifetime, preferred_left.min(2700));
        assert_eq!(p.valid_lifetime, valid_left.min(5400));
        assert!(p.preferred_lifetime <= p.valid_lifetime);
    }
    assert_eq!(pio(&sent[0].1, PREFIX_A).unwrap().preferred_lifetime, 1000);
    assert_eq!(pio(&sent[0].1, PREFIX_A).unwrap().valid_lifetime, 4000);
    // Past the lease end both are 0 (the caller is expected to withdraw it).
    let last = &sent.last().unwrap().1;
    assert_eq!(pio(last, PREFIX_A).unwrap().valid_lifetime, 0);

    // A lease renewal on the same prefix is no change: no early RA.
    let now = t0 + 2 * HOUR;
    let renewed = leased(PREFIX_A, now + 3000 * SEC, now + 6000 * SEC);
    ra.update(now, inputs(Some(renewed), true));
    let tx = ra.counters().tx_ra;
    assert!(poll_once(&mut ra, now + SEC).is_empty());
    assert_eq!(ra.counters().tx_ra, tx);
    let p = pio(&ra.current_advert(now), PREFIX_A).unwrap();
    assert_eq!((p.preferred_lifetime, p.valid_lifetime), (2700, 5400));

    // preferred_until after valid_until: preferred is held to valid
    // (RFC 4862 5.5.3 c hosts would ignore the option otherwise).
    let odd = leased(PREFIX_A, now + 5000 * SEC, now + 100 * SEC);
    ra.update(now, inputs(Some(odd), true));
    let p = pio(&ra.current_advert(now), PREFIX_A).unwrap();
    assert_eq!((p.preferred_lifetime, p.valid_lifetime), (100, 100));
}

#[test]
fn no_prefix_still_advertises_as_non_default_router() {
    let t0 = Instant::now();
    let mut ra = LanRa::new(cfg(), 9);
    ra.update(t0, inputs(None, true));
    ra.start(t0);
    let repr = &poll_once(&mut ra, t0)[0];
    assert_eq!(repr.router_lifetime, 0);
    assert!(repr.prefixes.is_empty());
    assert_eq!(repr.rdnss[0].servers, vec![ROUTER_DNS]);
    assert_eq!(repr.source_lladdr, Some(MAC));
    assert_eq!(repr.mtu, Some(1500));

    // The prefix arrives: an RA at MIN_DELAY_BETWEEN_RAS after the first.
    let at = t0 + SEC;
    ra.update(at, inputs(Some(infinite(PREFIX_A)), true));
    let sent = run(&mut ra, at, at + 10 * SEC);
    assert_eq!(sent[0].0, t0 + MIN_DELAY_BETWEEN_RAS);
    assert_regular(&sent[0].1);
    assert_eq!(ra.counters().tx_ra_change, 1);
}

// ---- changes -----------------------------------------------------------

#[test]
fn prefix_change_deprecates_the_old_one_until_its_valid_lifetime_ends() {
    let t0 = Instant::now();
    let mut ra = running(t0, 21);
    let sent = run(&mut ra, t0, t0 + HOUR);
    let last = sent.last().unwrap().0;

    // Renumbering 50 s after the last RA: the next RA comes at once.
    let change = last + 50 * SEC;
    ra.update(change, inputs(Some(infinite(PREFIX_B)), true));
    assert_eq!(ra.stale_prefixes(change), vec![PREFIX_A]);
    assert_eq!(ra.counters().prefix_deprecated, 1);
    let stale_until = change + 5400 * SEC;
    assert_eq!(ra.stale_prefixes(stale_until - MS), vec![PREFIX_A]);
    assert!(ra.stale_prefixes(stale_until).is_empty());
    let sent = run(&mut ra, change, change + 3 * HOUR);
    assert_eq!(sent[0].0, change, "RA at once after a change");
    // Then the fast series again: hosts that missed one still hear it soon.
    assert!(sent[1].0 - sent[0].0 <= INITIAL_ADVERT_INTERVAL_MAX);
    assert!(sent[2].0 - sent[1].0 <= INITIAL_ADVERT_INTERVAL_MAX);
    assert_spaced(&sent);
    let mut last_valid = u32::MAX;
    for (at, repr) in &sent {
        let new = pio(repr, PREFIX_B).unwrap();
        assert_eq!((new.preferred_lifetime, new.valid_lifetime), (2700, 5400));
        assert_eq!(repr.prefixes[0].prefix, PREFIX_B, "current prefix first");
        assert_eq!(repr.router_lifetime, 600);
        match pio(repr, PREFIX_A) {
            Some(old) => {
                assert!(*at < stale_until);
                assert_eq!(old.preferred_lifetime, 0);
                assert!(old.on_link && old.autonomous);
                let left = (stale_until - *at).as_secs() as u32;
                assert_eq!(old.valid_lifetime, left);
                assert!(old.valid_lifetime < last_valid, "counts down");
                last_valid = old.valid_lifetime;
            }
            None => assert!(*at >= stale_until, "stale prefix gone early"),
        }
    }
    assert!(
        last_valid < 200,
        "advertised until close to 0: {last_valid}"
    );
    assert!(ra.stale_prefixes(stale_until).is_empty());
    assert_eq!(ra.counters().stale_expired, 1);
    assert!(ra.remembered().iter().all(|r| r.prefix == PREFIX_B));
}

#[test]
fn stale_valid_lifetime_is_what_the_lease_had_left() {
    let t0 = Instant::now();
    let mut ra = LanRa::new(cfg(), 2);
    ra.update(
        t0,
        inputs(
            Some(leased(PREFIX_A, t0 + 500 * SEC, t0 + 1000 * SEC)),
            true,
        ),
    );
    ra.start(t0);
    run(&mut ra, t0, t0 + 100 * SEC);
    let change = t0 + 100 * SEC;
    ra.update(change, inputs(Some(infinite(PREFIX_B)), true));
    let sent = run(&mut ra, change, change + HOUR);
    let old = pio(&sent[0].1, PREFIX_A).unwrap();
    assert_eq!((old.preferred_lifetime, old.valid_lifetime), (0, 900));
    assert!(sent
        .iter()
        .all(|(at, r)| pio(r, PREFIX_A).is_none() == (*at >= t0 + 1000 * SEC)));

    // A prefix whose lease is already over is not deprecated at all.
    let mut ra = LanRa::new(cfg(), 2);
    ra.update(t0, inputs(Some(leased(PREFIX_A, t0, t0 + SEC)), true));
    ra.update(t0 + 2 * SEC, inputs(Some(infinite(PREFIX_B)), true));
    assert!(ra.stale_prefixes(t0 + 2 * SEC).is_empty());
    assert_eq!(ra.counters().prefix_deprecated, 0);
}

#[test]
fn prefix_gone_then_back() {
    let t0 = Instant::now();
    let mut ra = running(t0, 4);
    let sent = run(&mut ra, t0, t0 + 20 * SEC);
    let last = sent.last().unwrap().0;

    // The delegated prefix is lost 1 s after an RA: RA at last + 3 s.
    let lost = last + SEC;
    ra.update(lost, inputs(None, true));
    let sent = run(&mut ra, lost, lost + 10 * SEC);
    assert_eq!(sent[0].0, last + MIN_DELAY_BETWEEN_RAS);
    let repr = &sent[0].1;
    assert_eq!(
        repr.router_lifetime, 0,
        "RFC 7084: no prefix, no default router"
    );
    let old = pio(repr, PREFIX_A).unwrap();
    assert_eq!(old.preferred_lifetime, 0);
    assert_eq!(
        old.valid_lifetime,
        5400 - (sent[0].0 - lost).as_secs() as u32
    );
    assert_eq!(ra.stale_prefixes(lost), vec![PREFIX_A]);

    // It comes back: advertised as current again, no longer stale.
    let back = lost + 60 * SEC;
    ra.update(back, inputs(Some(infinite(PREFIX_A)), true));
    assert!(ra.stale_prefixes(back).is_empty());
    assert_eq!(ra.counters().prefix_returned, 1);
    let sent = run(&mut ra, back, back + 10 * SEC);
    assert_eq!(sent[0].0, back);
    assert_regular(&sent[0].1);
}

#[test]
fn stale_table_is_bounded() {
    let t0 = Instant::now();
    let mut ra = running(t0, 8);
    let mut now = t0;
    for i in 0..40u16 {
        now += SEC;
        let p = Ipv6Addr::new(0x2001, 0xdb8, 0x77, i, 0, 0, 0, 0);
        ra.update(now, inputs(Some(infinite(p)), true));
        run(&mut ra, now, now);
    }
    assert_eq!(ra.stale_prefixes(now).len(), MAX_STALE_PREFIXES);
    assert_eq!(ra.counters().prefix_deprecated, 40);
    assert_eq!(ra.counters().stale_evicted, 40 - MAX_STALE_PREFIXES as u64);
    // The newest ones are kept.
    assert!(ra
        .stale_prefixes(now)
        .contains(&Ipv6Addr::new(0x2001, 0xdb8, 0x77, 38, 0, 0, 0, 0)));
    let repr = ra.current_advert(now);
    assert_eq!(repr.prefixes.len(), 1 + MAX_STALE_PREFIXES);
    assert_eq!(ra.remembered().len(), 1 + MAX_STALE_PREFIXES);
}

#[test]
fn default_route_lost_and_regained() {
    let t0 = Instant::now();
    let mut ra = running(t0, 6);
    let sent = run(&mut ra, t0, t0 + 30 * MINUTE);
    let last = sent.last().unwrap().0;

    let lost = last + 20 * SEC;
    ra.update(lost, inputs(Some(infinite(PREFIX_A)), false));
    // Unchanged inputs on the next loop turns schedule nothing more.
    ra.update(lost + MS, inputs(Some(infinite(PREFIX_A)), false));
    let sent = run(&mut ra, lost, lost + 10 * SEC);
    assert_eq!(sent[0].0, lost);
    assert_eq!(sent[0].1.router_lifetime, 0);
    // Everything else unchanged.
    let mut expect = sent[0].1.clone();
    expect.router_lifetime = 600;
    assert_regular(&expect);
    assert!(sent.iter().all(|(_, r)| r.router_lifetime == 0));

    let regained = lost + 60 * SEC;
    ra.update(regained, inputs(Some(infinite(PREFIX_A)), true));
    let sent = run(&mut ra, regained, regained + 10 * SEC);
    assert_eq!(sent[0].0, regained);
    assert_regular(&sent[0].1);
    assert_eq!(ra.counters().tx_ra_change, 2);
}

#[test]
fn dns_changes_are_sent_promptly_and_withdrawn_ones_get_lifetime_0() {
    let t0 = Instant::now();
    let mut ra = running(t0, 12);
    let sent = run(&mut ra, t0, t0 + 10 * MINUTE);
    let last = sent.last().unwrap().0;

    let at = last + 30 * SEC;
    let new_inputs = RaInputs {
        prefix: Some(infinite(PREFIX_A)),
        default_route: true,
        rdnss: vec![UPSTREAM_DNS],
        dnssl: vec!["example.net".to_string()],
    };
    ra.update(at, new_inputs.clone());
    let sent = run(&mut ra, at, at + HOUR);
    assert_eq!(sent[0].0, at);
    for (i, (_, repr)) in sent.iter().enumerate() {
        let mut want_rdnss = vec![ra::Rdnss {
            lifetime: 600,
            servers: vec![UPSTREAM_DNS],
        }];
        let mut want_dnssl = vec![Dnssl {
            lifetime: 600,
            domains: vec!["example.net".to_string()],
        }];
        if i < 3 {
            want_rdnss.push(ra::Rdnss {
                lifetime: 0,
                servers: vec![ROUTER_DNS],
            });
            want_dnssl.push(Dnssl {
                lifetime: 0,
                domains: vec!["home.arpa".to_string()],
            });
        }
        assert_eq!(repr.rdnss, want_rdnss, "RA {i}");
        assert_eq!(repr.dnssl, want_dnssl, "RA {i}");
    }

    // Announcing nothing: the RDNSS/DNSSL options go with lifetime 0, then
    // disappear.
    let at = at + HOUR + SEC;
    ra.update(at, inputs(Some(infinite(PREFIX_A)), true));
    run(&mut ra, at, at + MINUTE);
    let at = at + MINUTE;
    ra.update(
        at,
        RaInputs {
            prefix: Some(infinite(PREFIX_A)),
            default_route: true,
            rdnss: vec![],
            dnssl: vec![],
        },
    );
    let sent = run(&mut ra, at, at + HOUR);
    assert_eq!(sent[0].1.rdnss[0].lifetime, 0);
    assert_eq!(sent[0].1.dnssl[0].lifetime, 0);
    assert!(sent[3..]
        .iter()
        .all(|(_, r)| r.rdnss.is_empty() && r.dnssl.is_empty()));
}

#[test]
fn unusable_dns_inputs_are_dropped_once_not_every_turn() {
    let t0 = Instant::now();
    let mut ra = running(t0, 13);
    let many: Vec<Ipv6Addr> = (1..=12)
        .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))
        .collect();
    let mut rdnss = vec![
        Ipv6Addr::UNSPECIFIED,
        Ipv6Addr::LOCALHOST,
        "ff02::1".parse().unwrap(),
        UPSTREAM_DNS,
        UPSTREAM_DNS,
    ];
    rdnss.extend(&many);
    let long_label = "a".repeat(64);
    let big: Vec<String> = (0..6)
        .map(|i| format!("{}.{}.{i}", "b".repeat(60), "c".repeat(58)))
        .collect();
    let mut dnssl = vec![
        "".to_string(),
        ".".to_string(),
        "bad name.example".to_string(),
        format!("{long_label}.example"),
        "ok.example".to_string(),
        "OK.example.".to_string(),
        "a..b".to_string(),
        "ünïcode.example".to_string(),
    ];
    dnssl.extend(big.iter().cloned());
    let given = RaInputs {
        prefix: Some(infinite(PREFIX_A)),
        default_route: true,
        rdnss,
        dnssl,
    };
    for turn in 0..100 {
        ra.update(t0 + turn * MS, given.clone());
    }
    let c = ra.counters();
    // 3 unusable + 1 duplicate + 5 over the limit of 8.
    assert_eq!(c.input_rdnss_dropped, 9);
    // 6 invalid + 1 duplicate + the big names past the 512-octet budget
    // (123 octets each: 4 fit after the 12 of "ok.example").
    assert_eq!(c.input_dnssl_dropped, 7 + 2);
    let repr = ra.current_advert(t0);
    assert_eq!(repr.rdnss[0].servers.len(), MAX_RDNSS_SERVERS);
    assert_eq!(repr.rdnss[0].servers[0], UPSTREAM_DNS);
    assert_eq!(repr.dnssl[0].domains.len(), 5);
    assert_eq!(repr.dnssl[0].domains[0], "ok.example");
    // Parses (within the parser's limits, withdrawn entries included) and
    // fits an unfragmented packet.
    let sent = run(&mut ra, t0 + SEC, t0 + MINUTE);
    assert!(!sent.is_empty());
}

#[test]
fn invalid_current_prefix_is_refused() {
    let t0 = Instant::now();
    let mut ra = LanRa::new(cfg(), 1);
    for bad in ["fe80::", "ff05::", "::", "::1"] {
        for _ in 0..3 {
            ra.update(t0, inputs(Some(infinite(bad.parse().unwrap())), true));
        }
    }
    assert_eq!(ra.counters().input_prefix_invalid, 4);
    assert_eq!(ra.prefix(), None);
    // Host bits are cleared.
    ra.update(
        t0,
        inputs(
            Some(infinite("2001:db8:a:100::1234".parse().unwrap())),
            true,
        ),
    );
    assert_eq!(ra.prefix().unwrap().prefix, PREFIX_A);
}

// ---- shutdown and restart ----------------------------------------------

#[test]
fn shutdown_sends_three_final_ras() {
    let t0 = Instant::now();
    let mut ra = running(t0, 14);
    ra.update(t0, inputs(Some(infinite(PREFIX_B)), true));
    ra.update(t0, inputs(Some(infinite(PREFIX_A)), true));
    run(&mut ra, t0, t0 + HOUR);
    // One stale prefix for the check below.
    ra.update(t0 + HOUR, inputs(Some(infinite(PREFIX_C)), true));
    let tx = ra.counters().tx_ra;
    let at = t0 + HOUR + MS;
    let finals = ra.shutdown(at);
    assert_eq!(finals.len(), 3);
    for bytes in &finals {
        let repr = parse(bytes);
        assert_eq!(repr.router_lifetime, 0);
        assert_eq!(repr.cur_hop_limit, 64);
        assert_eq!(repr.source_lladdr, Some(MAC));
        // Prefixes keep their lifetimes: a restart keeps host addresses.
        let current = pio(&repr, PREFIX_C).unwrap();
        assert_eq!(
            (current.preferred_lifetime, current.valid_lifetime),
            (2700, 5400)
        );
        assert_eq!(pio(&repr, PREFIX_A).unwrap().preferred_lifetime, 0);
        assert!(repr.rdnss.iter().all(|r| r.lifetime == 0));
        assert!(repr.dnssl.iter().all(|d| d.lifetime == 0));
        assert_eq!(repr.rdnss[0].servers, vec![ROUTER_DNS]);
    }
    assert_eq!(ra.counters().tx_ra_final, 3);
    assert_eq!(ra.counters().tx_ra, tx + 3);
    assert!(!ra.is_advertising());
    // Silent afterwards; RSs are not answered; a second shutdown is empty.
    let later = run(&mut ra, at, at + HOUR);
    assert!(later.is_empty());
    assert_eq!(
        ra.handle_rs(at + SEC, HOST_LL, 255, &rs(None)),
        Err(RsDrop::NotAdvertising)
    );
    assert!(ra.shutdown(at + SEC).is_empty());

    // Never started: nothing to retract.
    let mut idle = LanRa::new(cfg(), 1);
    assert!(idle.shutdown(t0).is_empty());

    // Started again: the first RA keeps MIN_DELAY_BETWEEN_RAS after the
    // final ones.
    ra.start(at + SEC);
    let sent = run(&mut ra, at + SEC, at + 10 * SEC);
    assert_eq!(sent[0].0, at + MIN_DELAY_BETWEEN_RAS);
    assert_eq!(sent[0].1.router_lifetime, 600);
}

#[test]
fn restart_with_a_different_prefix_deprecates_the_remembered_one() {
    let t0 = Instant::now();
    let mut before = running(t0, 15);
    run(&mut before, t0, t0 + HOUR);
    let stopped = t0 + HOUR;
    before.shutdown(stopped);
    let remembered = before.remembered();
    assert_eq!(
        remembered,
        vec![StalePrefix {
            prefix: PREFIX_A,
            valid_until: stopped + 5400 * SEC,
        }]
    );

    // The new process, 20 s later: the PD takes a while to come back.
    let t1 = stopped + 20 * SEC;
    let mut after = LanRa::new(cfg(), 16);
    after.restore_stale(t1, remembered.clone());
    after.start(t1);
    for turn in 0..10u32 {
        after.update(t1 + turn * SEC, inputs(None, true));
    }
    let sent = run(&mut after, t1, t1 + 10 * SEC);
    // Held, not advertised: it may well come back unchanged.
    assert!(sent.iter().all(|(_, r)| r.prefixes.is_empty()));
    assert!(after.stale_prefixes(t1 + 10 * SEC).is_empty());
    assert_eq!(after.remembered(), remembered, "held entries persist");

    // A different prefix arrives: the remembered one is deprecated.
    let pd = t1 + 10 * SEC;
    after.update(pd, inputs(Some(infinite(PREFIX_B)), true));
    assert_eq!(after.stale_prefixes(pd), vec![PREFIX_A]);
    let sent = run(&mut after, pd, pd + 3 * HOUR);
    assert!(sent[0].0 - pd <= MIN_DELAY_BETWEEN_RAS);
    let old = pio(&sent[0].1, PREFIX_A).unwrap();
    assert_eq!(old.preferred_lifetime, 0);
    assert_eq!(
        old.valid_lifetime,
        (stopped + 5400 * SEC - sent[0].0).as_secs() as u32
    );
    assert!(pio(&sent[0].1, PREFIX_B).is_some());
    let gone = stopped + 5400 * SEC;
    assert!(sent
        .iter()
        .all(|(at, r)| pio(r, PREFIX_A).is_some() == (*at < gone)));
    assert_eq!(after.counters().restored_prefix, 1);
    assert_eq!(after.counters().prefix_deprecated, 1);
}

#[test]
fn restart_with_the_same_prefix_forgets_the_remembered_one() {
    let t0 = Instant::now();
    let mut ra = LanRa::new(cfg(), 17);
    ra.restore_stale(
        t0,
        vec![StalePrefix {
            prefix: PREFIX_A,
            valid_until: t0 + HOUR,
        }],
    );
    ra.update(t0, inputs(Some(infinite(PREFIX_A)), true));
    ra.start(t0);
    assert!(ra.stale_prefixes(t0).is_empty());
    assert_regular(&poll_once(&mut ra, t0)[0]);
    assert_eq!(ra.counters().prefix_returned, 1);
    assert_eq!(ra.counters().prefix_deprecated, 0);
}

#[test]
fn restore_after_the_prefix_is_known_and_bad_entries() {
    let t0 = Instant::now();
    let mut ra = running(t0, 18);
    run(&mut ra, t0, t0 + MINUTE);
    let at = t0 + MINUTE;
    ra.restore_stale(
        at,
        vec![
            // Different from the current one: deprecated at once.
            StalePrefix {
                prefix: PREFIX_B,
                valid_until: at + 100 * HOUR,
            },
            // The current one: nothing to do.
            StalePrefix {
                prefix: PREFIX_A,
                valid_until: at + HOUR,
            },
            // Expired, or not a prefix: ignored.
            StalePrefix {
                prefix: PREFIX_C,
                valid_until: at,
            },
            StalePrefix {
                prefix: "fe80::".parse().unwrap(),
                valid_until: at + HOUR,
            },
            StalePrefix {
                prefix: "ff02::".parse().unwrap(),
                valid_until: at + HOUR,
            },
        ],
    );
    let c = ra.counters();
    assert_eq!((c.restored_prefix, c.restore_ignored), (2, 3));
    assert_eq!(ra.stale_prefixes(at), vec![PREFIX_B]);
    let sent = run(&mut ra, at, at + 10 * SEC);
    assert_eq!(sent[0].0, at, "an RA at once for the deprecation");
    // Capped at ND_VALID_LIMIT even though the file said 100 hours.
    let old = pio(&sent[0].1, PREFIX_B).unwrap();
    assert_eq!((old.preferred_lifetime, old.valid_lifetime), (0, 5400));
}

#[test]
fn remembered_caps_the_current_prefix() {
    let t0 = Instant::now();
    let mut ra = LanRa::new(cfg(), 1);
    assert!(ra.remembered().is_empty());
    ra.update(
        t0,
        inputs(Some(leased(PREFIX_A, t0 + 60 * SEC, t0 + 120 * SEC)), true),
    );
    assert_eq!(
        ra.remembered(),
        vec![StalePrefix {
            prefix: PREFIX_A,
            valid_until: t0 + 120 * SEC,
        }]
    );
    ra.update(t0 + SEC, inputs(Some(infinite(PREFIX_A)), true));
    assert_eq!(ra.remembered()[0].valid_until, t0 + SEC + 5400 * SEC);
}

// ---- rogue routers -----------------------------------------------------

#[test]
fn rogue_ra_counted_logged_once_a_minute_never_acted_on() {
    let t0 = Instant::now();
    let mut ra = running(t0, 19);
    run(&mut ra, t0, t0 + MINUTE);
    let ours = ra.current_advert(t0 + MINUTE);
    let rogue = RaRepr {
        cur_hop_limit: 64,
        router_lifetime: 1800,
        source_lladdr: Some(HOST_MAC),
        prefixes: vec![PrefixInfo {
            prefix: PREFIX_C,
            prefix_len: 64,
            on_link: true,
            autonomous: true,
            valid_lifetime: INFINITE_LIFETIME,
            preferred_lifetime: INFINITE_LIFETIME,
        }],
        ..RaRepr::default()
    }
    .emit()
    .unwrap();
    let start = t0 + MINUTE;
    // 10 a second for 3.5 minutes, some of them garbage.
    for i in 0..2100u32 {
        let bytes: &[u8] = if i % 7 == 0 { &rogue[..5] } else { &rogue };
        ra.handle_foreign_ra(start + i * 100 * MS, ROGUE_LL, bytes);
    }
    let end = start + 2099 * 100 * MS;
    let c = ra.counters();
    assert_eq!(c.rogue_ra, 2100);
    assert_eq!(c.rogue_ra_logged, 4, "at 0, 60, 120 and 180 s");
    assert_eq!(ra.last_rogue_ra(), Some((end, ROGUE_LL)));
    assert_eq!(ra.current_advert(start), ours);
    assert!(ra.stale_prefixes(end).is_empty());
    assert_eq!(ra.prefix().unwrap().prefix, PREFIX_A);
    assert_eq!(
        describe_foreign_ra(&rogue[..5]),
        "malformed: shorter than the 16-octet RA header"
    );
    assert_eq!(
        describe_foreign_ra(&rogue),
        "router lifetime 1800 s, MAC 52:54:00:ab:cd:ef, prefix 2001:db8:c:300::/64"
    );
}

// ---- configuration -----------------------------------------------------

#[test]
fn configuration_is_clamped_to_rfc_4861() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.max_interval = SEC;
    c.router_lifetime = SEC;
    c.mtu = 1000;
    c.managed = true;
    c.other = false;
    let mut ra = LanRa::new(c, 1);
    assert_eq!(ra.intervals(), (3 * SEC, 4 * SEC));
    ra.update(t0, inputs(Some(infinite(PREFIX_A)), true));
    let repr = ra.current_advert(t0);
    assert_eq!(repr.router_lifetime, 4, "at least MaxRtrAdvInterval");
    assert_eq!(repr.mtu, None, "no MTU option below 1280");
    assert!(repr.managed && !repr.other);
    assert_eq!(repr.rdnss[0].lifetime, 12);

    let mut c = cfg();
    c.max_interval = 5000 * SEC;
    c.router_lifetime = 100_000 * SEC;
    let mut ra = LanRa::new(c, 1);
    assert_eq!(ra.intervals().1, 1800 * SEC);
    ra.update(t0, inputs(Some(infinite(PREFIX_A)), true));
    assert_eq!(ra.current_advert(t0).router_lifetime, 9000);

    // Router lifetime 0: never a default router.
    let mut c = cfg();
    c.router_lifetime = Duration::ZERO;
    let mut ra = LanRa::new(c, 1);
    ra.update(t0, inputs(Some(infinite(PREFIX_A)), true));
    assert_eq!(ra.current_advert(t0).router_lifetime, 0);

    assert_eq!(default_router_lifetime(200 * SEC), 600 * SEC);
    assert_eq!(default_router_lifetime(1800 * SEC), 5400 * SEC);
    assert_eq!(default_router_lifetime(3001 * SEC), 9000 * SEC);
}

#[test]
fn largest_ra_fits_the_minimum_mtu() {
    let t0 = Instant::now();
    let mut ra = running(t0, 20);
    for i in 0..20u16 {
        let p = Ipv6Addr::new(0x2001, 0xdb8, 0x99, i, 0, 0, 0, 0);
        ra.update(t0, inputs(Some(infinite(p)), true));
    }
    let long = |c: char| -> Vec<String> {
        (0..8)
            .map(|i| {
                format!(
                    "{}.{}.{}{i}",
                    c.to_string().repeat(63),
                    c.to_string().repeat(63),
                    c
                )
            })
            .collect()
    };
    let servers = |base: u16| -> Vec<Ipv6Addr> {
        (0..8)
            .map(|i| Ipv6Addr::new(0x2001, 0xdb8, base, 0, 0, 0, 0, i + 1))
            .collect()
    };
    ra.update(
        t0,
        RaInputs {
            prefix: Some(infinite(PREFIX_A)),
            default_route: true,
            rdnss: servers(1),
            dnssl: long('x'),
        },
    );
    // Half replaced: the withdrawn ones ride along with lifetime 0.
    let mut mixed_servers = servers(1)[..4].to_vec();
    mixed_servers.extend(&servers(2)[..4]);
    let mut mixed_domains = long('x')[..2].to_vec();
    mixed_domains.extend(long('y'));
    ra.update(
        t0,
        RaInputs {
            prefix: Some(infinite(PREFIX_A)),
            default_route: true,
            rdnss: mixed_servers,
            dnssl: mixed_domains,
        },
    );
    let sent = run(&mut ra, t0, t0 + MINUTE);
    let biggest = &sent[0].1;
    assert_eq!(biggest.prefixes.len(), 1 + MAX_STALE_PREFIXES);
    let servers: usize = biggest.rdnss.iter().map(|r| r.servers.len()).sum();
    assert_eq!(servers, MAX_RDNSS_SERVERS);
    // `parse` already held every RA to 1240 octets and a clean parse.
    assert!(biggest.emit().unwrap().len() <= 1240);
}

#[test]
fn counter_names_are_kebab_case_field_names() {
    let names = Counters::assert_names_are_kebab_fields();
    for required in [
        "tx-ra",
        "tx-ra-solicited",
        "rx-rs",
        "rs-rate-limited",
        "drop-rs-hop-limit",
        "drop-rs-malformed",
        "rogue-ra",
        "prefix-deprecated",
    ] {
        assert!(names.contains(&required), "{required}");
    }
}

// ---- hostile input -----------------------------------------------------

fn mutate(rng: &mut Jitter, seed: &[u8], header_len: usize) -> Vec<u8> {
    let mut pkt = seed.to_vec();
    match rng.below(6) {
        0 => {
            for _ in 0..=rng.below(4) {
                if !pkt.is_empty() {
                    let at = rng.below(pkt.len());
                    pkt[at] ^= 1 << rng.below(8);
                }
            }
        }
        1 => pkt.truncate(rng.below(pkt.len() + 1)),
        2 => {
            if !pkt.is_empty() {
                let at = rng.below(pkt.len());
                pkt[at] = [0, 1, 2, 3, 0x7f, 0x80, 0xff, (rng.next_u64() as u8)][rng.below(8)];
            }
        }
        3 => pkt.extend((0..rng.below(48)).map(|_| rng.next_u64() as u8)),
        4 => pkt = (0..rng.below(64)).map(|_| rng.next_u64() as u8).collect(),
        _ => {
            // Random options after the header.
            pkt.truncate(header_len.min(pkt.len()));
            for _ in 0..rng.below(6) {
                let units = rng.below(5);
                pkt.push([1, 3, 5, 25, 31, (rng.next_u64() as u8)][rng.below(6)]);
                pkt.push(units as u8);
                pkt.extend((0..(units * 8).saturating_sub(2)).map(|_| rng.next_u64() as u8));
            }
        }
    }
    pkt
}

#[test]
fn fuzzed_rs_and_ra_never_panic_and_tables_stay_bounded() {
    let rs_seeds = [rs(None), rs(Some(HOST_MAC)), {
        let mut v = rs(Some(HOST_MAC));
        v.extend_from_slice(&[200, 1, 0, 0, 0, 0, 0, 0]);
        v
    }];
    let t0 = Instant::now();
    let mut ra_seeds = vec![golden_engine(t0).current_advert(t0).emit().unwrap()];
    ra_seeds.push(hex(GOLDEN_RA_HEX));
    let mut rng = Jitter::new(0x1a2b);
    let mut engines = [running(t0, 1), running(t0, 2)];
    let mut now = t0;
    let mut last_sent: [Option<Instant>; 2] = [None, None];
    let mut accepted = [0u64; 2];
    let sources = [
        HOST_LL,
        Ipv6Addr::UNSPECIFIED,
        "ff02::2".parse().unwrap(),
        ROUTER_DNS,
    ];
    for i in 0..100_000u32 {
        let which = rng.below(2);
        let ra = &mut engines[which];
        let src = sources[rng.below(sources.len())];
        let hop = [255, 255, 255, 64, 0, (rng.next_u64() as u8)][rng.below(6)];
        if rng.below(2) == 0 {
            let seed = &rs_seeds[rng.below(rs_seeds.len())];
            let pkt = mutate(&mut rng, seed, ra::RS_HEADER_LEN);
            if ra.handle_rs(now, src, hop, &pkt).is_ok() {
                accepted[which] += 1;
            }
        } else {
            let seed = &ra_seeds[rng.below(ra_seeds.len())];
            let pkt = mutate(&mut rng, seed, ra::RA_HEADER_LEN);
            ra.handle_foreign_ra(now, src, &pkt);
            let _ = describe_foreign_ra(&pkt);
        }
        if i % 16 == 0 {
            now += Duration::from_millis(rng.next_u64() % 5_000);
            if rng.below(8) == 0 {
                // Random inputs, some garbage.
                let prefix = match rng.below(4) {
                    0 => None,
                    1 => Some(infinite(Ipv6Addr::from(
                        rng.next_u64() as u128 * u128::from(rng.next_u64()),
                    ))),
                    _ => Some(leased(
                        Ipv6Addr::new(0x2001, 0xdb8, rng.below(4) as u16, 0, 0, 0, 0, 0),
                        now + Duration::from_secs(rng.next_u64() % 10_000),
                        now + Duration::from_secs(rng.next_u64() % 20_000),
                    )),
                };
                let rdnss = (0..rng.below(12))
                    .map(|_| Ipv6Addr::from(u128::from(rng.next_u64()) << rng.below(64)))
                    .collect();
                let dnssl = (0..rng.below(12))
                    .map(|_| {
                        let len = rng.below(300);
                        (0..len)
                            .map(|_| {
                                char::from(
                                    [b'a', b'.', b'-', b'Z', (rng.next_u64() as u8)][rng.below(5)],
                                )
                            })
                            .collect()
                    })
                    .collect();
                ra.update(
                    now,
                    RaInputs {
                        prefix,
                        default_route: rng.below(2) == 0,
                        rdnss,
                        dnssl,
                    },
                );
            }
            if rng.below(64) == 0 {
                let stale = (0..rng.below(20))
                    .map(|_| StalePrefix {
                        prefix: Ipv6Addr::from(u128::from(rng.next_u64()) << 64),
                        valid_until: now + Duration::from_secs(rng.next_u64() % 100_000),
                    })
                    .collect();
                ra.restore_stale(now, stale);
            }
            let mut out = Vec::new();
            ra.poll(now, &mut out);
            assert!(out.len() <= 1);
            for bytes in &out {
                parse(bytes);
                if let Some(prev) = last_sent[which] {
                    assert!(now - prev >= MIN_DELAY_BETWEEN_RAS);
                }
                last_sent[which] = Some(now);
            }
            assert!(ra.stale_prefixes(now).len() <= MAX_STALE_PREFIXES);
            assert!(ra.remembered().len() <= 2 * MAX_STALE_PREFIXES + 1);
        }
    }
    for (which, ra) in engines.iter().enumerate() {
        let c = ra.counters();
        let dropped = c.drop_rs_hop_limit
            + c.drop_rs_source
            + c.drop_rs_malformed
            + c.drop_rs_unspecified_slla
            + c.drop_rs_not_advertising;
        assert_eq!(c.rx_rs, dropped + accepted[which], "every RS accounted for");
        assert!(accepted[which] > 100, "the fuzzer reaches valid RSs");
        assert!(c.drop_rs_malformed > 1000 && c.drop_rs_hop_limit > 1000);
        assert!(c.rogue_ra > 10_000);
        assert_eq!(c.emit_failed, 0);
    }
}
