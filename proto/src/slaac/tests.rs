//! Tests of the RA wire format and the WAN RA/SLAAC engine: captured radvd
//! bytes, exact RS bytes, hostile input, and hours to years of protocol
//! time on a fake clock (`t0 + Duration`).

use std::cell::RefCell;
use std::net::Ipv6Addr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::ra::{
    self, Dnssl, NdOption, OptionError, PrefixInfo, RaRepr, Rdnss, RouterAdvert, INFINITE_LIFETIME,
};
use super::*;

const SEC: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86400);

const OUR_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const ROUTER_MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
/// Link-local address the kernel gave the radvd side (EUI-64 of ROUTER_MAC).
const ROUTER_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x11, 0x22ff, 0xfe33, 0x4455);
const OTHER_ROUTER_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
const PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0);
const PREFIX_B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 0);
const SECRET: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];

/// An RA from radvd 2.19, captured with tcpdump on a veth pair between two
/// network namespaces (ICMPv6 part only, from the type byte). radvd.conf:
///
/// ```text
/// interface slaac-cap-a {
///     AdvSendAdvert on; AdvOtherConfigFlag on; AdvLinkMTU 1492;
///     AdvCurHopLimit 64; AdvDefaultLifetime 1800;
///     AdvReachableTime 30000; AdvRetransTimer 1000;
///     prefix 2001:db8:1:2::/64 { AdvOnLink on; AdvAutonomous on;
///         AdvValidLifetime 86400; AdvPreferredLifetime 14400; };
///     prefix 2001:db8:ffff::/48 { AdvOnLink on; AdvAutonomous off;
///         AdvValidLifetime infinity; AdvPreferredLifetime infinity; };
///     RDNSS 2001:db8::53 2001:db8::5353 { AdvRDNSSLifetime 600; };
///     DNSSL example.com home.arpa { AdvDNSSLLifetime 600; };
/// };
/// ```
///
/// Sent from fe80::11:22ff:fe33:4455 (MAC 02:11:22:33:44:55) to ff02::1
/// with hop limit 255; tcpdump reported the checksum (0x1ec6) correct.
const RADVD_RA_HEX: &str = concat!(
    "86001ec64040070800007530000003e8",
    "030440c000015180000038400000000020010db8000100020000000000000000",
    "03043080ffffffffffffffff0000000020010db8ffff00000000000000000000",
    "190500000000025820010db800000000000000000000005320010db8000000000000000000005353",
    "1f04000000000258076578616d706c6503636f6d0004686f6d65046172706100",
    "05010000000005d4",
    "0101021122334455",
);

/// The RA the same radvd sent when stopped: router lifetime 0, RDNSS and
/// DNSSL lifetimes 0, everything else as above.
const RADVD_STOP_RA_HEX: &str = concat!(
    "86002a7e4040000000007530000003e8",
    "030440c000015180000038400000000020010db8000100020000000000000000",
    "03043080ffffffffffffffff0000000020010db8ffff00000000000000000000",
    "190500000000000020010db800000000000000000000005320010db8000000000000000000005353",
    "1f04000000000000076578616d706c6503636f6d0004686f6d65046172706100",
    "05010000000005d4",
    "0101021122334455",
);

fn hex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() % 2, 0);
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn cfg(iid: IidMode) -> SlaacConfig {
    SlaacConfig {
        mac: OUR_MAC,
        ifname: "wan0".to_string(),
        iid,
        autoconf: true,
    }
}

fn eui64_engine() -> WanRa {
    WanRa::new(cfg(IidMode::Eui64), 1)
}

fn privacy_engine() -> WanRa {
    WanRa::new(cfg(IidMode::StablePrivacy { secret: SECRET }), 1)
}

fn autonomous(prefix: Ipv6Addr, len: u8, valid: u32, preferred: u32) -> PrefixInfo {
    PrefixInfo {
        prefix,
        prefix_len: len,
        on_link: true,
        autonomous: true,
        valid_lifetime: valid,
        preferred_lifetime: preferred,
    }
}

fn repr(router_lifetime: u16) -> RaRepr {
    RaRepr {
        cur_hop_limit: 64,
        router_lifetime,
        source_lladdr: Some(ROUTER_MAC),
        ..RaRepr::default()
    }
}

fn with_prefix(router_lifetime: u16, valid: u32, preferred: u32) -> RaRepr {
    RaRepr {
        prefixes: vec![autonomous(PREFIX, 64, valid, preferred)],
        ..repr(router_lifetime)
    }
}

fn feed_from(w: &mut WanRa, now: Instant, src: Ipv6Addr, ra: &RaRepr) {
    w.handle_ra(now, src, 255, &ra.emit().unwrap()).unwrap();
}

fn feed(w: &mut WanRa, now: Instant, ra: &RaRepr) {
    feed_from(w, now, ROUTER_LL, ra);
}

/// An RA with lifetime 1800 and the given raw option bytes.
fn ra_with_options(options: &[u8]) -> Vec<u8> {
    let mut bytes = repr(1800);
    bytes.source_lladdr = None;
    let mut bytes = bytes.emit().unwrap();
    bytes.extend_from_slice(options);
    bytes
}

fn parse(bytes: &[u8]) -> Result<(RaRepr, Vec<OptionError>), ra::Error> {
    RaRepr::parse(&RouterAdvert::new_unchecked(bytes))
}

/// Polls at every deadline up to and including `until`, returning the
/// messages sent with their send times.
fn run_until(w: &mut WanRa, mut now: Instant, until: Instant) -> Vec<(Instant, Vec<u8>)> {
    let mut sent = Vec::new();
    loop {
        let mut out = Vec::new();
        let next = w.poll(now, &mut out);
        sent.extend(out.into_iter().map(|m| (now, m)));
        match next {
            Some(deadline) if deadline <= until => {
                assert!(deadline > now, "deadline {deadline:?} not after {now:?}");
                now = deadline;
            }
            _ => return sent,
        }
    }
}

fn slaac(prefix: Ipv6Addr, iid: [u8; 8]) -> Ipv6Addr {
    let mut octets = prefix.octets();
    octets[8..].copy_from_slice(&iid);
    Ipv6Addr::from(octets)
}

fn prefix8(prefix: Ipv6Addr) -> [u8; 8] {
    let mut p = [0u8; 8];
    p.copy_from_slice(&prefix.octets()[..8]);
    p
}

/// SplitMix64 for the fuzz loop.
struct TestRng(u64);

impl TestRng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

// ---- log capture -------------------------------------------------------

thread_local! {
    static CAPTURED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

struct CaptureLogger;

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        CAPTURED.with(|c| {
            if let Some(lines) = c.borrow_mut().as_mut() {
                lines.push(format!("{} {}", record.level(), record.args()));
            }
        });
    }

    fn flush(&self) {}
}

static CAPTURE_LOGGER: CaptureLogger = CaptureLogger;

/// Runs `f` and returns the log lines it produced on this thread, or None
/// when another logger owns the process (then the caller skips its check).
fn capture_logs(f: impl FnOnce()) -> Option<Vec<String>> {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    let installed = *INSTALLED.get_or_init(|| {
        let ok = log::set_logger(&CAPTURE_LOGGER).is_ok();
        if ok {
            log::set_max_level(log::LevelFilter::Info);
        }
        ok
    });
    if !installed {
        eprintln!("another logger is installed; log lines not checked");
        f();
        return None;
    }
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    f();
    CAPTURED.with(|c| c.borrow_mut().take())
}

// ---- wire --------------------------------------------------------------

#[test]
fn captured_radvd_ra_parses_to_expected_fields() {
    let bytes = hex(RADVD_RA_HEX);
    assert_eq!(bytes.len(), 168, "tcpdump: payload length 168");
    let view = RouterAdvert::new_checked(&bytes[..]).unwrap();
    assert_eq!(view.msg_type(), 134);
    assert_eq!(view.msg_code(), 0);
    assert_eq!(view.checksum(), 0x1ec6);
    assert_eq!(view.cur_hop_limit(), 64);
    assert_eq!(view.flags(), 0x40);
    assert!(!view.managed());
    assert!(view.other());
    assert_eq!(view.router_lifetime(), 1800);
    assert_eq!(view.reachable_time(), 30000);
    assert_eq!(view.retrans_timer(), 1000);
    let kinds: Vec<u8> = view.options().map(|o| o.kind).collect();
    assert_eq!(kinds, [3, 3, 25, 31, 5, 1]);
    let lengths: Vec<usize> = view.options().map(|o| o.body.len() + 2).collect();
    assert_eq!(lengths, [32, 32, 40, 32, 8, 8]);

    let (repr, skipped) = RaRepr::parse(&view).unwrap();
    assert!(skipped.is_empty());
    let expected = RaRepr {
        cur_hop_limit: 64,
        managed: false,
        other: true,
        router_lifetime: 1800,
        reachable_time: 30000,
        retrans_timer: 1000,
        source_lladdr: Some(ROUTER_MAC),
        mtu: Some(1492),
        prefixes: vec![
            PrefixInfo {
                prefix: PREFIX,
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                valid_lifetime: 86400,
                preferred_lifetime: 14400,
            },
            PrefixInfo {
                prefix: "2001:db8:ffff::".parse().unwrap(),
                prefix_len: 48,
                on_link: true,
                autonomous: false,
                valid_lifetime: INFINITE_LIFETIME,
                preferred_lifetime: INFINITE_LIFETIME,
            },
        ],
        rdnss: vec![Rdnss {
            lifetime: 600,
            servers: vec![
                "2001:db8::53".parse().unwrap(),
                "2001:db8::5353".parse().unwrap(),
            ],
        }],
        dnssl: vec![Dnssl {
            lifetime: 600,
            domains: vec!["example.com".to_string(), "home.arpa".to_string()],
        }],
    };
    assert_eq!(repr, expected);
}

#[test]
fn captured_radvd_stop_ra_has_zero_lifetimes() {
    let (repr, skipped) = parse(&hex(RADVD_STOP_RA_HEX)).unwrap();
    assert!(skipped.is_empty());
    assert_eq!(repr.router_lifetime, 0);
    assert_eq!(repr.rdnss[0].lifetime, 0);
    assert_eq!(repr.dnssl[0].lifetime, 0);
    assert_eq!(repr.prefixes.len(), 2);
    assert_eq!(repr.mtu, Some(1492));
}

#[test]
fn captured_ra_round_trips_through_emit() {
    let (captured, _) = parse(&hex(RADVD_RA_HEX)).unwrap();
    let emitted = captured.emit().unwrap();
    // Same options, in our order (SLLA, MTU, prefixes, RDNSS, DNSSL).
    assert_eq!(emitted.len(), 168);
    assert_eq!(&emitted[..2], &[134, 0]);
    assert_eq!(&emitted[2..4], &[0, 0], "checksum is the caller's");
    assert_eq!(parse(&emitted).unwrap(), (captured, vec![]));
    // radvd's DNSSL option is byte-identical to ours.
    let dnssl = |bytes: &[u8]| {
        let view = RouterAdvert::new_checked(bytes.to_vec()).unwrap();
        let body: Vec<u8> = view.options().find(|o| o.kind == 31).unwrap().body.to_vec();
        body
    };
    assert_eq!(dnssl(&emitted), dnssl(&hex(RADVD_RA_HEX)));
}

#[test]
fn rich_repr_round_trips() {
    let rich = RaRepr {
        cur_hop_limit: 255,
        managed: true,
        other: true,
        router_lifetime: 65535,
        reachable_time: u32::MAX,
        retrans_timer: 7,
        source_lladdr: Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
        mtu: Some(9000),
        prefixes: (0..16u16)
            .map(|i| autonomous(Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 0), 64, 100, 50))
            .collect(),
        rdnss: vec![
            Rdnss {
                lifetime: INFINITE_LIFETIME,
                servers: vec!["2001:db8::1".parse().unwrap()],
            },
            Rdnss {
                lifetime: 0,
                servers: (1..8u16)
                    .map(|i| Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i))
                    .collect(),
            },
        ],
        dnssl: vec![
            Dnssl {
                lifetime: 1,
                domains: vec!["a".into(), "x-y_z.Example.ORG".into(), "b".repeat(63)],
            },
            Dnssl {
                lifetime: 2,
                domains: vec!["c.d".into()],
            },
        ],
    };
    let bytes = rich.emit().unwrap();
    let view = RouterAdvert::new_checked(&bytes[..]).unwrap();
    assert_eq!(view.flags(), 0xc0);
    assert_eq!(RaRepr::parse(&view).unwrap(), (rich, vec![]));
}

#[test]
fn emit_refuses_unencodable_domains() {
    let mut bad = repr(0);
    for domain in [
        "",
        ".",
        "a..b",
        "with space.com",
        "ünï.com",
        &"a".repeat(64),
    ] {
        bad.dnssl = vec![Dnssl {
            lifetime: 1,
            domains: vec![domain.to_string()],
        }];
        assert_eq!(
            bad.emit(),
            Err(ra::EmitError::InvalidDomain(domain.to_string())),
            "{domain:?}"
        );
    }
    // A trailing dot is accepted and dropped.
    bad.dnssl[0].domains = vec!["example.com.".into()];
    let (parsed, _) = parse(&bad.emit().unwrap()).unwrap();
    assert_eq!(parsed.dnssl[0].domains, ["example.com"]);
    // 128 servers need 257 units.
    bad.dnssl.clear();
    bad.rdnss = vec![Rdnss {
        lifetime: 1,
        servers: vec![Ipv6Addr::LOCALHOST; 128],
    }];
    assert_eq!(bad.emit(), Err(ra::EmitError::OptionTooLong));
}

#[test]
fn view_setters_write_the_header() {
    let mut bytes = repr(0).emit().unwrap();
    let mut view = RouterAdvert::new_unchecked(&mut bytes[..]);
    view.set_cur_hop_limit(9);
    view.set_flags(0x80);
    view.set_router_lifetime(300);
    view.set_reachable_time(1);
    view.set_retrans_timer(2);
    view.set_checksum(0xbeef);
    assert_eq!(view.checksum(), 0xbeef);
    let (parsed, _) = RaRepr::parse(&view).unwrap();
    assert_eq!(
        (
            parsed.cur_hop_limit,
            parsed.managed,
            parsed.other,
            parsed.router_lifetime
        ),
        (9, true, false, 300)
    );
    assert_eq!((parsed.reachable_time, parsed.retrans_timer), (1, 2));
    view.set_msg_type(133);
    assert_eq!(view.check(), Err(ra::Error::NotRouterAdvert(133)));
    view.set_msg_type(134);
    view.set_msg_code(1);
    assert_eq!(view.check(), Err(ra::Error::BadCode(1)));
}

#[test]
fn router_solicit_bytes_are_exact() {
    assert_eq!(
        ra::router_solicit(Some(OUR_MAC)),
        [133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
    );
    assert_eq!(ra::router_solicit(None), [133, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn message_level_errors() {
    let good = ra_with_options(&[]);
    assert_eq!(parse(&good[..15]), Err(ra::Error::Truncated));
    assert_eq!(parse(&[]), Err(ra::Error::Truncated));
    let mut other_type = good.clone();
    other_type[0] = 135;
    assert_eq!(parse(&other_type), Err(ra::Error::NotRouterAdvert(135)));
    let zero = ra_with_options(&[1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        parse(&zero),
        Err(ra::Error::ZeroLengthOption { offset: 16 })
    );
    let overrun = ra_with_options(&[3, 4, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        parse(&overrun),
        Err(ra::Error::OptionOverrun { offset: 16 })
    );
    let lone_byte = ra_with_options(&[5]);
    assert_eq!(
        parse(&lone_byte),
        Err(ra::Error::OptionOverrun { offset: 16 })
    );
    let captured = hex(RADVD_RA_HEX);
    assert_eq!(
        parse(&captured[..100]),
        Err(ra::Error::OptionOverrun { offset: 80 })
    );
    // The options iterator of an unchecked view stops instead of panicking.
    let cut = RouterAdvert::new_unchecked(&captured[..100]);
    let options: Vec<NdOption> = cut.options().collect();
    assert_eq!(options.len(), 2);
    assert_eq!(RouterAdvert::new_unchecked(&[1u8][..]).options().count(), 0);
}

#[test]
fn option_level_errors_skip_only_that_option() {
    let lifetime = [0, 0, 0x02, 0x58];
    let cases: Vec<(Vec<u8>, OptionError)> = vec![
        // RDNSS length 4 (even), 2 (even) and 1 (< 3).
        (
            [&[25u8, 4, 0, 0][..], &lifetime, &[0x11; 24]].concat(),
            OptionError::RdnssBadLength,
        ),
        (
            [&[25u8, 2, 0, 0][..], &lifetime, &[0x11; 8]].concat(),
            OptionError::RdnssBadLength,
        ),
        (
            [&[25u8, 1, 0, 0][..], &lifetime].concat(),
            OptionError::RdnssBadLength,
        ),
        // DNSSL shorter than 2 units.
        (
            [&[31u8, 1, 0, 0][..], &lifetime].concat(),
            OptionError::DnsslBadLength,
        ),
        // Compression pointer.
        (
            [
                &[31u8, 2, 0, 0][..],
                &lifetime,
                &[0xc0, 0x0c, 0, 0, 0, 0, 0, 0],
            ]
            .concat(),
            OptionError::DnsslBadName,
        ),
        // Label running past the option.
        (
            [
                &[31u8, 2, 0, 0][..],
                &lifetime,
                &[20, b'a', b'b', b'c', b'd', b'e', b'f', b'g'],
            ]
            .concat(),
            OptionError::DnsslBadName,
        ),
        // No terminating zero.
        (
            [&[31u8, 2, 0, 0][..], &lifetime, &[7], b"example"].concat(),
            OptionError::DnsslBadName,
        ),
        // A space inside a label.
        (
            [
                &[31u8, 2, 0, 0][..],
                &lifetime,
                &[3, b'a', b' ', b'b', 0, 0, 0, 0],
            ]
            .concat(),
            OptionError::DnsslBadName,
        ),
        // A name after the padding started.
        (
            [
                &[31u8, 2, 0, 0][..],
                &lifetime,
                &[1, b'a', 0, 0, 1, b'b', 0, 0],
            ]
            .concat(),
            OptionError::DnsslBadName,
        ),
        // Padding only: no name at all.
        (
            [&[31u8, 2, 0, 0][..], &lifetime, &[0; 8]].concat(),
            OptionError::DnsslBadName,
        ),
        // Prefix information with option length 3.
        (
            [&[3u8, 3, 64, 0xc0][..], &[0; 20]].concat(),
            OptionError::PrefixBadLength,
        ),
        // MTU option with length 2.
        (
            [&[5u8, 2, 0, 0][..], &[0, 0, 5, 0xdc], &[0; 8]].concat(),
            OptionError::MtuBadLength,
        ),
        // SLLA of a non-Ethernet length.
        (
            [&[1u8, 2][..], &[0xaa; 14]].concat(),
            OptionError::SourceLladdrBadLength,
        ),
    ];
    for (option, error) in cases {
        let bytes = ra_with_options(&option);
        let (repr, skipped) = parse(&bytes).unwrap_or_else(|e| panic!("{option:02x?}: {e}"));
        assert_eq!(skipped, [error], "{option:02x?}");
        assert_eq!(repr.router_lifetime, 1800);
        assert!(repr.rdnss.is_empty() && repr.dnssl.is_empty() && repr.prefixes.is_empty());
        assert_eq!((repr.mtu, repr.source_lladdr), (None, None));
    }
}

#[test]
fn dnssl_padding_and_good_options_next_to_bad_ones() {
    let lifetime = [0, 0, 0x02, 0x58];
    let padded = [&[31u8, 3, 0, 0][..], &lifetime, &[3], b"com", &[0; 12]].concat();
    let bad = [
        &[31u8, 2, 0, 0][..],
        &lifetime,
        &[0xc0, 0x0c, 0, 0, 0, 0, 0, 0],
    ]
    .concat();
    let (repr, skipped) = parse(&ra_with_options(&[bad, padded].concat())).unwrap();
    assert_eq!(skipped, [OptionError::DnsslBadName]);
    assert_eq!(
        repr.dnssl,
        [Dnssl {
            lifetime: 600,
            domains: vec!["com".into()]
        }]
    );
}

#[test]
fn parse_limits_are_enforced() {
    let many = RaRepr {
        prefixes: (0..20u16)
            .map(|i| autonomous(Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 0), 64, 1, 1))
            .collect(),
        rdnss: vec![
            Rdnss {
                lifetime: 1,
                servers: (0..6u16)
                    .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))
                    .collect(),
            },
            Rdnss {
                lifetime: 2,
                servers: (6..12u16)
                    .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))
                    .collect(),
            },
        ],
        dnssl: vec![Dnssl {
            lifetime: 1,
            domains: (0..10).map(|i| format!("d{i}.example")).collect(),
        }],
        ..repr(1)
    };
    let (parsed, skipped) = parse(&many.emit().unwrap()).unwrap();
    assert_eq!(parsed.prefixes, many.prefixes[..16]);
    assert_eq!(parsed.rdnss.len(), 2);
    assert_eq!(parsed.rdnss[1].servers, many.rdnss[1].servers[..2]);
    assert_eq!(parsed.dnssl[0].domains, many.dnssl[0].domains[..8]);
    let mut expected = vec![OptionError::TooManyPrefixes; 4];
    expected.push(OptionError::TooManyRdnssServers);
    expected.push(OptionError::TooManyDomains);
    assert_eq!(skipped, expected);
}

// ---- validation and drops ----------------------------------------------

#[test]
fn invalid_ras_are_dropped_with_their_counter() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    let good = hex(RADVD_RA_HEX);

    assert_eq!(
        w.handle_ra(t0, ROUTER_LL, 64, &good),
        Err(RaDrop::HopLimit(64))
    );
    assert_eq!(w.counters().drop_hop_limit, 1);

    let global: Ipv6Addr = "2001:db8::1".parse().unwrap();
    assert_eq!(
        w.handle_ra(t0, global, 255, &good),
        Err(RaDrop::NotLinkLocal(global))
    );
    assert_eq!(w.counters().drop_not_link_local, 1);

    let truncated = w.handle_ra(t0, ROUTER_LL, 255, &good[..12]);
    assert_eq!(truncated, Err(RaDrop::Malformed(ra::Error::Truncated)));
    let cut = w.handle_ra(t0, ROUTER_LL, 255, &good[..50]);
    assert_eq!(
        cut,
        Err(RaDrop::Malformed(ra::Error::OptionOverrun { offset: 48 }))
    );
    let zero = ra_with_options(&[25, 0, 0, 0, 0, 0, 0, 0]);
    let zero = w.handle_ra(t0, ROUTER_LL, 255, &zero);
    assert_eq!(
        zero,
        Err(RaDrop::Malformed(ra::Error::ZeroLengthOption {
            offset: 16
        }))
    );
    assert_eq!(w.counters().drop_malformed, 3);
    assert_eq!(w.counters().rx_ra, 5);
    assert!(w.routers().is_empty() && w.addresses().is_empty());
    assert!(w.drain_events().is_empty());
    assert_eq!(w.last_ra(), None);
}

#[test]
fn malformed_dns_options_are_counted_and_the_ra_kept() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    let lifetime = [0, 0, 0x02, 0x58];
    let even_rdnss = [&[25u8, 4, 0, 0][..], &lifetime, &[0x20; 24]].concat();
    let bad_dnssl = [
        &[31u8, 2, 0, 0][..],
        &lifetime,
        &[3, b'a', b'.', b'b', 0, 0, 0, 0],
    ]
    .concat();
    let bytes = ra_with_options(&[even_rdnss, bad_dnssl].concat());
    w.handle_ra(t0, ROUTER_LL, 255, &bytes).unwrap();
    assert_eq!(w.counters().rdnss_ignored, 1);
    assert_eq!(w.counters().dnssl_ignored, 1);
    assert!(w.dns_servers(t0).is_empty() && w.domains(t0).is_empty());
    assert_eq!(w.default_router().unwrap().addr, ROUTER_LL);
}

#[test]
fn fuzzed_ras_never_panic_and_tables_stay_bounded() {
    let mut seeds = vec![hex(RADVD_RA_HEX), hex(RADVD_STOP_RA_HEX)];
    let mut rich = with_prefix(30, 120, 60);
    rich.prefixes
        .push(autonomous(PREFIX_B, 64, INFINITE_LIFETIME, 10));
    rich.rdnss.push(Rdnss {
        lifetime: 20,
        servers: vec!["2001:db8::53".parse().unwrap(), Ipv6Addr::UNSPECIFIED],
    });
    rich.dnssl.push(Dnssl {
        lifetime: INFINITE_LIFETIME,
        domains: vec!["lan".into(), "example.net".into()],
    });
    rich.mtu = Some(1500);
    seeds.push(rich.emit().unwrap());
    seeds.push(ra_with_options(&[]));

    let mut rng = TestRng(0x5eed);
    let t0 = Instant::now();
    let mut now = t0;
    let mut engines = [eui64_engine(), privacy_engine()];
    let mut accepted = [0u64; 2];
    let mut out = Vec::new();
    for i in 0..200_000u32 {
        let mut pkt = seeds[rng.below(seeds.len())].clone();
        match rng.below(6) {
            0 => {
                for _ in 0..=rng.below(4) {
                    let at = rng.below(pkt.len());
                    pkt[at] ^= 1 << rng.below(8);
                }
            }
            1 => pkt.truncate(rng.below(pkt.len() + 1)),
            2 => {
                let at = rng.below(pkt.len());
                pkt[at] = [0, 1, 2, 3, 0x7f, 0x80, 0xff, rng.byte()][rng.below(8)];
            }
            3 => pkt.extend((0..rng.below(48)).map(|_| rng.byte())),
            4 => {
                // Rewrite one option's type or length octet.
                let starts: Vec<usize> = {
                    let mut at = ra::RA_HEADER_LEN;
                    let mut v = Vec::new();
                    while at + 1 < pkt.len() && pkt[at + 1] != 0 {
                        v.push(at);
                        at += usize::from(pkt[at + 1]) * 8;
                    }
                    v
                };
                if !starts.is_empty() {
                    let at = starts[rng.below(starts.len())] + rng.below(2);
                    pkt[at] = [0, 1, 2, 3, 4, 5, 25, 31, rng.byte()][rng.below(9)];
                }
            }
            _ => {
                // Random options after a valid header.
                pkt.truncate(ra::RA_HEADER_LEN);
                for _ in 0..rng.below(6) {
                    let units = 1 + rng.below(5);
                    let kind = [1, 3, 5, 25, 31, rng.byte()][rng.below(6)];
                    pkt.push(kind);
                    pkt.push(units as u8);
                    pkt.extend((0..units * 8 - 2).map(|_| rng.byte()));
                }
            }
        }

        // The wire layer: parse, and re-emit whatever parsed.
        let _ = RouterAdvert::new_unchecked(&pkt[..]).options().count();
        if let Ok((parsed, _)) = parse(&pkt) {
            let again = parsed.emit().expect("parsed RAs re-encode");
            assert_eq!(parse(&again).unwrap(), (parsed, vec![]));
        }

        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1 + rng.below(7) as u16);
        let which = rng.below(2);
        let w = &mut engines[which];
        if w.handle_ra(now, src, 255, &pkt).is_ok() {
            accepted[which] += 1;
        }
        if i % 32 == 0 {
            now += Duration::from_millis(rng.next() % 20_000);
            w.poll(now, &mut out);
            out.clear();
            if let Some(a) = w.addresses().first() {
                if rng.below(4) == 0 {
                    w.dad_failed(now, a.addr);
                }
            }
            if rng.below(8) == 0 {
                w.drain_events();
            }
        }
        if i == 1000 {
            engines[0].start(now);
            engines[1].start(now);
        }
        for w in &engines {
            assert!(w.routers().len() <= MAX_ROUTERS);
            assert!(w.addresses().len() <= MAX_SLAAC_PREFIXES);
            assert!(w.dns_servers(now).len() <= MAX_DNS_SERVERS);
            assert!(w.domains(now).len() <= MAX_SEARCH_DOMAINS);
            if let Some(mtu) = w.mtu() {
                assert!((1280..=65535).contains(&mtu));
            }
        }
    }
    for (w, accepted) in engines.iter_mut().zip(accepted) {
        let c = w.counters();
        assert_eq!(
            c.rx_ra,
            accepted + c.drop_hop_limit + c.drop_not_link_local + c.drop_malformed
        );
        assert!(c.drop_malformed > 1000 && accepted > 1000, "{c:?}");
        assert!(w.drain_events().len() <= 256);
    }
}

// ---- routers -----------------------------------------------------------

#[test]
fn router_refreshed_every_10s_with_lifetime_30s_never_lapses() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    w.start(t0);
    let ra = repr(30);
    let mut now = t0;
    let end = t0 + 3 * HOUR;
    let mut first = true;
    while now < end {
        feed(&mut w, now, &ra);
        if first {
            let events = w.drain_events();
            assert!(matches!(
                events[..],
                [Event::Flags { .. }, Event::RouterAdded(_)]
            ));
            first = false;
        }
        let next = now + 10 * SEC;
        run_until(&mut w, now, next - Duration::from_nanos(1));
        let router = w.default_router().expect("router lapsed");
        assert_eq!(router.expires_at, now + 30 * SEC);
        assert_eq!(router.last_ra, now);
        now = next;
    }
    assert_eq!(w.counters().router_expired, 0);
    assert!(w.drain_events().is_empty());
    assert_eq!(w.counters().router_added, 1);
}

#[test]
fn router_expires_exactly_at_lifetime_end_and_is_logged() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    w.start(t0);
    run_until(&mut w, t0, t0 + 5 * SEC);
    let arrival = t0 + 5 * SEC;
    feed(&mut w, arrival, &repr(30));
    let router = w.default_router().unwrap();
    assert_eq!(router.mac, Some(ROUTER_MAC));
    assert_eq!(router.lifetime, 30 * SEC);
    w.drain_events();

    let end = arrival + 30 * SEC;
    let mut out = Vec::new();
    assert_eq!(w.poll(end - Duration::from_nanos(1), &mut out), Some(end));
    assert!(out.is_empty() && w.default_router().is_some());
    let logs = capture_logs(|| {
        w.poll(end, &mut out);
    });
    assert_eq!(w.drain_events(), [Event::RouterExpired(ROUTER_LL)]);
    assert_eq!(w.default_router(), None);
    assert_eq!(w.counters().router_expired, 1);
    if let Some(logs) = logs {
        let line = "WARN wan: default router fe80::11:22ff:fe33:4455 expired \
                    (lifetime 30 s, last RA 30 s ago)";
        assert!(logs.iter().any(|l| l == line), "{logs:?}");
    }
    // With no router left, soliciting starts again within a second.
    let sent = run_until(&mut w, end, end + SEC);
    assert_eq!(sent.len(), 1);
}

#[test]
fn router_lifetime_zero_removes_at_once() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    feed(&mut w, t0, &repr(1800));
    w.drain_events();
    feed(&mut w, t0 + SEC, &repr(0));
    assert_eq!(w.drain_events(), [Event::RouterRemoved(ROUTER_LL)]);
    assert_eq!(w.default_router(), None);
    assert_eq!(w.counters().router_removed, 1);
    // Lifetime 0 from an unknown router is not an event.
    feed_from(&mut w, t0 + SEC, OTHER_ROUTER_LL, &repr(0));
    assert!(w.drain_events().is_empty());
    assert!(w.routers().is_empty());
}

#[test]
fn radvd_stop_ra_withdraws_router_and_dns() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    w.handle_ra(t0, ROUTER_LL, 255, &hex(RADVD_RA_HEX)).unwrap();
    assert_eq!(w.dns_servers(t0).len(), 2);
    w.drain_events();
    w.handle_ra(t0 + SEC, ROUTER_LL, 255, &hex(RADVD_STOP_RA_HEX))
        .unwrap();
    assert_eq!(
        w.drain_events(),
        [Event::RouterRemoved(ROUTER_LL), Event::DnsChanged]
    );
    assert!(w.dns_servers(t0 + SEC).is_empty() && w.domains(t0 + SEC).is_empty());
    // The prefix stays: its lifetimes were re-advertised unchanged.
    assert_eq!(w.addresses().len(), 1);
}

#[test]
fn router_table_is_bounded_and_default_moves_on() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    for i in 1..=6u16 {
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, i);
        feed_from(&mut w, t0 + SEC * u32::from(i), src, &repr(100));
    }
    let routers: Vec<Ipv6Addr> = w.routers().iter().map(|r| r.addr).collect();
    assert_eq!(routers.len(), MAX_ROUTERS);
    assert_eq!(w.counters().table_full, 2);
    assert_eq!(w.default_router().unwrap().addr, routers[0]);
    // The first router expires; the second becomes the default.
    run_until(&mut w, t0, t0 + 101 * SEC);
    assert_eq!(w.default_router().unwrap().addr, routers[1]);
}

#[test]
fn router_mac_survives_an_ra_without_slla() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    feed(&mut w, t0, &repr(100));
    let mut bare = repr(200);
    bare.source_lladdr = None;
    bare.managed = true;
    feed(&mut w, t0 + SEC, &bare);
    let router = w.default_router().unwrap();
    assert_eq!(router.mac, Some(ROUTER_MAC));
    assert_eq!(router.lifetime, 200 * SEC);
    assert!(router.managed && !router.other);
}

#[test]
fn flags_and_mtu_events() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    assert!(!w.managed() && !w.other());
    w.handle_ra(t0, ROUTER_LL, 255, &hex(RADVD_RA_HEX)).unwrap();
    let events = w.drain_events();
    assert!(events.contains(&Event::Flags {
        managed: false,
        other: true
    }));
    assert!(events.contains(&Event::MtuChanged(1492)));
    assert!(!w.managed() && w.other());
    assert_eq!(w.mtu(), Some(1492));
    assert_eq!(w.last_ra(), Some(t0));

    w.handle_ra(t0 + SEC, ROUTER_LL, 255, &hex(RADVD_RA_HEX))
        .unwrap();
    assert!(w.drain_events().is_empty(), "nothing changed");

    let mut changed = repr(1800);
    changed.managed = true;
    changed.mtu = Some(1280);
    feed(&mut w, t0 + 2 * SEC, &changed);
    assert_eq!(
        w.drain_events(),
        [
            Event::Flags {
                managed: true,
                other: false
            },
            Event::MtuChanged(1280)
        ]
    );
    for bad in [1279, 65536, 0, u32::MAX] {
        changed.mtu = Some(bad);
        feed(&mut w, t0 + 3 * SEC, &changed);
    }
    assert_eq!(w.mtu(), Some(1280));
    assert_eq!(w.counters().mtu_ignored, 4);
    assert!(w.drain_events().is_empty());
}

#[test]
fn pending_events_are_bounded() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    for i in 0..300u32 {
        let mut ra = repr(0);
        ra.managed = i % 2 == 0;
        feed(&mut w, t0 + SEC * i, &ra);
    }
    assert_eq!(w.drain_events().len(), 256);
    assert_eq!(w.counters().events_dropped, 44);
}

// ---- router solicitation ---------------------------------------------

#[test]
fn rs_schedule_delay_then_three_4s_apart_then_backoff() {
    let rs = ra::router_solicit(Some(OUR_MAC));
    for seed in 0..64 {
        let t0 = Instant::now();
        let mut w = WanRa::new(cfg(IidMode::Eui64), seed);
        w.start(t0);
        let sent = run_until(&mut w, t0, t0 + 60 * SEC);
        assert!(sent.iter().all(|(_, m)| *m == rs));
        let times: Vec<Instant> = sent.iter().map(|(t, _)| *t).collect();
        assert!(times[0] - t0 <= MAX_RTR_SOLICITATION_DELAY, "seed {seed}");
        assert_eq!(times[1] - times[0], 4 * SEC);
        assert_eq!(times[2] - times[1], 4 * SEC);
        // RFC 7559: then 2 * 4 s +- 10 %, 16 s +- 10 %, ...
        let fourth = times[3] - times[2];
        assert!((7600..=8400).contains(&fourth.as_millis()), "{fourth:?}");
        let fifth = times[4] - times[3];
        let lo = fourth.as_millis() * 2 - fourth.as_millis() / 10;
        let hi = fourth.as_millis() * 2 + fourth.as_millis() / 10;
        assert!((lo..=hi).contains(&fifth.as_millis()), "{fifth:?}");
        assert_eq!(w.counters().tx_rs, times.len() as u64);
    }
}

#[test]
fn rs_stops_once_an_ra_arrives() {
    let t0 = Instant::now();
    let mut w = WanRa::new(cfg(IidMode::Eui64), 7);
    w.start(t0);
    let sent = run_until(&mut w, t0, t0 + 5 * SEC);
    assert_eq!(sent.len(), 2);
    // A lifetime-0 RA does not count (RFC 4861 6.3.7 wants a router).
    feed(&mut w, t0 + 5 * SEC, &repr(0));
    assert_eq!(run_until(&mut w, t0 + 5 * SEC, t0 + 10 * SEC).len(), 1);
    feed(&mut w, t0 + 10 * SEC, &repr(1800));
    let sent = run_until(&mut w, t0 + 10 * SEC, t0 + 1809 * SEC);
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(w.counters().tx_rs, 3);
}

#[test]
fn rs_resumes_when_the_last_router_withdraws_and_skips_known_routers() {
    let t0 = Instant::now();
    // An RA before start: no solicitation needed.
    let mut w = WanRa::new(cfg(IidMode::Eui64), 3);
    feed(&mut w, t0, &repr(1800));
    w.start(t0);
    assert!(run_until(&mut w, t0, t0 + 60 * SEC).is_empty());
    // Router lifetime 0 from the only router: solicit again.
    feed(&mut w, t0 + 60 * SEC, &repr(0));
    let sent = run_until(&mut w, t0 + 60 * SEC, t0 + 70 * SEC);
    assert_eq!(sent.len(), 3);
    assert!(sent[0].0 - (t0 + 60 * SEC) <= MAX_RTR_SOLICITATION_DELAY);
}

#[test]
fn rs_backoff_caps_at_an_hour() {
    let t0 = Instant::now();
    let mut w = WanRa::new(cfg(IidMode::Eui64), 99);
    w.start(t0);
    let sent = run_until(&mut w, t0, t0 + 2 * DAY);
    let gaps: Vec<Duration> = sent.windows(2).map(|p| p[1].0 - p[0].0).collect();
    assert!(gaps
        .iter()
        .all(|g| *g <= MAX_RTR_SOLICITATION_INTERVAL * 11 / 10));
    assert!(gaps[gaps.len() - 1] >= MAX_RTR_SOLICITATION_INTERVAL * 9 / 10);
    assert!((40..=70).contains(&sent.len()), "{}", sent.len());
}

#[test]
fn no_rs_before_start() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    let mut out = Vec::new();
    assert_eq!(w.poll(t0 + HOUR, &mut out), None);
    assert!(out.is_empty());
}

// ---- SLAAC -------------------------------------------------------------

#[test]
fn eui64_address_value() {
    assert_eq!(
        eui64_iid(OUR_MAC),
        [0x50, 0x54, 0x00, 0xff, 0xfe, 0x12, 0x34, 0x56]
    );
    // The kernel derived the captured router's link-local the same way.
    assert_eq!(
        slaac(
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
            eui64_iid(ROUTER_MAC)
        ),
        ROUTER_LL
    );

    let t0 = Instant::now();
    let mut w = eui64_engine();
    w.handle_ra(t0, ROUTER_LL, 255, &hex(RADVD_RA_HEX)).unwrap();
    let expected = SlaacAddress {
        addr: "2001:db8:1:2:5054:ff:fe12:3456".parse().unwrap(),
        prefix_len: 64,
        preferred_until: Some(t0 + 14400 * SEC),
        valid_until: Some(t0 + 86400 * SEC),
    };
    assert_eq!(w.addresses(), [expected]);
    assert!(w.drain_events().contains(&Event::AddressAdded(expected)));
    assert_eq!(w.counters().address_added, 1);
}

#[test]
fn stable_privacy_known_answer() {
    // sha256(prefix || "wan0" || DAD_Counter || secret)[..8], computed
    // independently with Python's hashlib.
    let p = prefix8(PREFIX);
    assert_eq!(
        stable_privacy_iid(p, "wan0", 0, &SECRET),
        hex("f0da4c0e77afceac")[..]
    );
    assert_eq!(
        stable_privacy_iid(p, "wan0", 1, &SECRET),
        hex("5df6fc597c60d903")[..]
    );
    let b = prefix8(PREFIX_B);
    assert_eq!(
        stable_privacy_iid(b, "wan0", 0, &SECRET),
        hex("b1d6f11789d28414")[..]
    );
}

#[test]
fn stable_privacy_addresses_are_stable_and_per_prefix() {
    let t0 = Instant::now();
    let mut ra = with_prefix(1800, 86400, 14400);
    ra.prefixes.push(autonomous(PREFIX_B, 64, 86400, 14400));
    let addresses = |seed: u64, secret: [u8; 32], ifname: &str| {
        let mut c = cfg(IidMode::StablePrivacy { secret });
        c.ifname = ifname.to_string();
        let mut w = WanRa::new(c, seed);
        feed(&mut w, t0, &ra);
        w.addresses().iter().map(|a| a.addr).collect::<Vec<_>>()
    };
    let first = addresses(1, SECRET, "wan0");
    // A restart (new engine, other seed) yields the same addresses.
    assert_eq!(addresses(2, SECRET, "wan0"), first);
    assert_eq!(
        first,
        [
            slaac(PREFIX, hex("f0da4c0e77afceac").try_into().unwrap()),
            slaac(PREFIX_B, hex("b1d6f11789d28414").try_into().unwrap()),
        ]
    );
    assert_ne!(first[0].octets()[8..], first[1].octets()[8..]);
    let mut other_secret = SECRET;
    other_secret[0] ^= 1;
    assert_ne!(addresses(1, other_secret, "wan0")[0], first[0]);
    assert_ne!(addresses(1, SECRET, "wan1")[0], first[0]);
    // The secret never shows in Debug output.
    let shown = format!("{:?}", cfg(IidMode::StablePrivacy { secret: SECRET }));
    assert!(
        shown.contains("redacted") && !shown.contains("31"),
        "{shown}"
    );
}

#[test]
fn dad_failure_regenerates_stable_privacy_then_gives_up() {
    let t0 = Instant::now();
    let mut w = privacy_engine();
    let ra = with_prefix(1800, 86400, 14400);
    feed(&mut w, t0, &ra);
    w.drain_events();
    let p = prefix8(PREFIX);
    let mut current = w.addresses()[0];
    assert_eq!(
        current.addr,
        slaac(PREFIX, stable_privacy_iid(p, "wan0", 0, &SECRET))
    );
    for counter in 1..=IDGEN_RETRIES {
        w.dad_failed(t0 + SEC, current.addr);
        let next = SlaacAddress {
            addr: slaac(PREFIX, stable_privacy_iid(p, "wan0", counter, &SECRET)),
            ..current
        };
        assert_eq!(
            w.drain_events(),
            [
                Event::AddressRemoved(current.addr),
                Event::AddressAdded(next)
            ]
        );
        assert_eq!(w.addresses(), [next]);
        current = next;
    }
    w.dad_failed(t0 + SEC, current.addr);
    assert_eq!(w.drain_events(), [Event::AddressRemoved(current.addr)]);
    assert!(w.addresses().is_empty());
    let c = w.counters();
    assert_eq!((c.dad_failed, c.dad_regenerated, c.dad_gave_up), (4, 3, 1));
    // Later RAs for the prefix do not restart the cycle...
    feed(&mut w, t0 + 2 * SEC, &ra);
    assert!(w.addresses().is_empty());
    assert!(w.drain_events().is_empty());
    // ...until the prefix has expired; then DAD_Counter starts from 0.
    let later = t0 + 2 * SEC + 86400 * SEC;
    run_until(&mut w, t0 + 2 * SEC, later);
    feed(&mut w, later, &ra);
    assert_eq!(
        w.addresses()[0].addr,
        slaac(PREFIX, stable_privacy_iid(p, "wan0", 0, &SECRET))
    );
}

#[test]
fn dad_failure_with_eui64_gives_up_on_the_prefix() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    feed(&mut w, t0, &with_prefix(1800, 86400, 14400));
    w.drain_events();
    let addr = w.addresses()[0].addr;
    w.dad_failed(t0, "2001:db8::dead".parse().unwrap());
    assert_eq!(w.counters().dad_unknown, 1);
    assert_eq!(w.addresses().len(), 1);
    w.dad_failed(t0, addr);
    assert_eq!(w.drain_events(), [Event::AddressRemoved(addr)]);
    assert!(w.addresses().is_empty());
    assert_eq!(w.counters().dad_gave_up, 1);
}

#[test]
fn reserved_iids_are_recognised() {
    for reserved in [
        0u64,
        0xfdff_ffff_ffff_ff80,
        0xfdff_ffff_ffff_ffff,
        0x0200_5eff_fe00_0000,
        0x0200_5eff_fe00_5213,
        0x0200_5eff_feff_ffff,
    ] {
        assert!(is_reserved_iid(reserved.to_be_bytes()), "{reserved:x}");
    }
    for fine in [
        1u64,
        0xfdff_ffff_ffff_ff7f,
        0x0200_5eff_fdff_ffff,
        0x0200_5eff_ff00_0000,
    ] {
        assert!(!is_reserved_iid(fine.to_be_bytes()), "{fine:x}");
    }
}

#[test]
fn two_hour_rule() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    let valid_until = |w: &WanRa| w.addresses()[0].valid_until;
    feed(&mut w, t0, &with_prefix(0, 86400, 14400));
    assert_eq!(valid_until(&w), Some(t0 + DAY));

    // Shorter than 2 h with > 2 h remaining: clamp to 2 h.
    let t1 = t0 + 10 * SEC;
    feed(&mut w, t1, &with_prefix(0, 3600, 1800));
    assert_eq!(valid_until(&w), Some(t1 + 2 * HOUR));
    assert_eq!(w.addresses()[0].preferred_until, Some(t1 + 1800 * SEC));
    assert_eq!(w.counters().two_hour_rule, 1);

    // Longer than 2 h: taken as advertised.
    let t2 = t1 + 10 * SEC;
    feed(&mut w, t2, &with_prefix(0, 3 * 3600, 0));
    assert_eq!(valid_until(&w), Some(t2 + 3 * HOUR));

    // Remaining <= 2 h and a shorter advertisement: ignored, even 0.
    let t3 = t2 + 2 * HOUR;
    run_until(&mut w, t2, t3);
    feed(&mut w, t3, &with_prefix(0, 60, 0));
    assert_eq!(valid_until(&w), Some(t2 + 3 * HOUR));
    feed(&mut w, t3, &with_prefix(0, 0, 0));
    assert_eq!(valid_until(&w), Some(t2 + 3 * HOUR));
    assert_eq!(w.counters().two_hour_rule, 3);
    assert!(w.addresses()[0].deprecated(t3));

    // Longer than what remains: taken.
    feed(&mut w, t3, &with_prefix(0, 5400, 5400));
    assert_eq!(valid_until(&w), Some(t3 + 5400 * SEC));
    assert!(!w.addresses()[0].deprecated(t3));

    // Infinite, then a short lifetime: 2 h.
    let mut w = eui64_engine();
    feed(
        &mut w,
        t0,
        &with_prefix(0, INFINITE_LIFETIME, INFINITE_LIFETIME),
    );
    assert_eq!(valid_until(&w), None);
    feed(&mut w, t1, &with_prefix(0, 0, 0));
    assert_eq!(valid_until(&w), Some(t1 + 2 * HOUR));
    feed(&mut w, t1, &with_prefix(0, INFINITE_LIFETIME, 60));
    assert_eq!(valid_until(&w), None);
}

#[test]
fn addresses_deprecate_and_expire_on_time_with_logs() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    feed(&mut w, t0, &with_prefix(0, 100, 40));
    let addr = w.addresses()[0].addr;
    w.drain_events();
    let mut out = Vec::new();
    assert_eq!(w.poll(t0, &mut out), Some(t0 + 40 * SEC));
    let logs = capture_logs(|| {
        assert_eq!(w.poll(t0 + 40 * SEC, &mut out), Some(t0 + 100 * SEC));
        assert!(w.addresses()[0].deprecated(t0 + 40 * SEC));
        assert!(w.drain_events().is_empty());
        w.poll(t0 + 100 * SEC - Duration::from_nanos(1), &mut out);
        assert_eq!(w.addresses().len(), 1);
        assert_eq!(w.poll(t0 + 100 * SEC, &mut out), None);
    });
    assert_eq!(w.drain_events(), [Event::AddressRemoved(addr)]);
    assert!(w.addresses().is_empty());
    let c = w.counters();
    assert_eq!((c.address_deprecated, c.address_expired), (1, 1));
    if let Some(logs) = logs {
        let expected = [
            "INFO wan: SLAAC address 2001:db8:1:2:5054:ff:fe12:3456 deprecated (preferred lifetime ended)",
            "INFO wan: SLAAC address 2001:db8:1:2:5054:ff:fe12:3456 expired (valid lifetime of 2001:db8:1:2::/64 ended)",
        ];
        assert_eq!(logs, expected);
    }
}

#[test]
fn prefixes_unfit_for_slaac_are_ignored_and_counted() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    let mut ra = repr(0);
    ra.prefixes = vec![
        autonomous("2001:db8:9::".parse().unwrap(), 48, 100, 100),
        autonomous("2001:db8:a::".parse().unwrap(), 96, 100, 100),
        autonomous("fe80::".parse().unwrap(), 64, 100, 100),
        autonomous("ff02::".parse().unwrap(), 64, 100, 100),
        autonomous("::".parse().unwrap(), 64, 100, 100),
        autonomous("2001:db8:b::".parse().unwrap(), 64, 100, 101),
        PrefixInfo {
            autonomous: false,
            ..autonomous(PREFIX, 64, 100, 100)
        },
        autonomous(PREFIX_B, 64, 0, 0),
    ];
    feed(&mut w, t0, &ra);
    assert!(w.addresses().is_empty());
    let c = w.counters();
    assert_eq!(c.prefix_ignored_len, 2);
    assert_eq!(c.prefix_ignored_link_local, 1);
    assert_eq!(c.prefix_ignored_scope, 2);
    assert_eq!(c.prefix_ignored_lifetimes, 1);

    // Bits past /64 are the receiver's to ignore.
    let mut sloppy = with_prefix(0, 100, 100);
    sloppy.prefixes[0].prefix = "2001:db8:1:2:ffff::1".parse().unwrap();
    feed(&mut w, t0, &sloppy);
    assert_eq!(
        w.addresses()[0].addr,
        "2001:db8:1:2:5054:ff:fe12:3456"
            .parse::<Ipv6Addr>()
            .unwrap()
    );

    // autoconf off: nothing formed.
    let mut c = cfg(IidMode::Eui64);
    c.autoconf = false;
    let mut w = WanRa::new(c, 1);
    feed(&mut w, t0, &with_prefix(1800, 100, 100));
    assert!(w.addresses().is_empty());
    assert_eq!(w.default_router().unwrap().addr, ROUTER_LL);
}

#[test]
fn slaac_table_is_bounded() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    let mut ra = repr(0);
    ra.prefixes = (0..12u16)
        .map(|i| {
            autonomous(
                Ipv6Addr::new(0x2001, 0xdb8, 0x100 + i, 0, 0, 0, 0, 0),
                64,
                100,
                100,
            )
        })
        .collect();
    feed(&mut w, t0, &ra);
    assert_eq!(w.addresses().len(), MAX_SLAAC_PREFIXES);
    assert_eq!(w.counters().table_full, 4);
}

#[test]
fn infinite_lifetimes_hold_for_ten_years() {
    let t0 = Instant::now();
    let mut w = privacy_engine();
    w.start(t0);
    let mut ra = with_prefix(65535, INFINITE_LIFETIME, INFINITE_LIFETIME);
    ra.prefixes.push(autonomous(
        PREFIX_B,
        64,
        INFINITE_LIFETIME - 1,
        INFINITE_LIFETIME - 1,
    ));
    ra.rdnss.push(Rdnss {
        lifetime: INFINITE_LIFETIME,
        servers: vec!["2001:db8::53".parse().unwrap()],
    });
    ra.dnssl.push(Dnssl {
        lifetime: INFINITE_LIFETIME,
        domains: vec!["example.com".into()],
    });
    // The router lifetime (at most 65535 s) is the only finite one: an RA
    // every 12 hours keeps it.
    let mut now = t0;
    let end = t0 + 3650 * DAY;
    while now < end {
        feed(&mut w, now, &ra);
        let sent = run_until(&mut w, now, now + 12 * HOUR);
        assert!(sent.is_empty());
        now += 12 * HOUR;
    }
    let addresses = w.addresses();
    assert_eq!(addresses.len(), 2);
    assert_eq!(
        (addresses[0].preferred_until, addresses[0].valid_until),
        (None, None)
    );
    assert!(!addresses[0].deprecated(end));
    // 0xfffffffe s is ~136 years: a real deadline, not an overflow.
    assert!(addresses[1].valid_until.unwrap() > end);
    assert_eq!(
        w.dns_servers(end),
        ["2001:db8::53".parse::<Ipv6Addr>().unwrap()]
    );
    assert_eq!(w.domains(end), ["example.com"]);
    let c = w.counters();
    assert_eq!(
        (
            c.router_expired,
            c.address_expired,
            c.rdnss_expired,
            c.dnssl_expired
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(c.rx_ra, 7300);
}

// ---- DNS ---------------------------------------------------------------

#[test]
fn rdnss_and_dnssl_learn_and_expire() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    w.handle_ra(t0, ROUTER_LL, 255, &hex(RADVD_RA_HEX)).unwrap();
    let servers: Vec<Ipv6Addr> = vec![
        "2001:db8::53".parse().unwrap(),
        "2001:db8::5353".parse().unwrap(),
    ];
    assert_eq!(w.dns_servers(t0), servers);
    assert_eq!(w.domains(t0), ["example.com", "home.arpa"]);
    assert_eq!(
        w.drain_events()
            .iter()
            .filter(|e| **e == Event::DnsChanged)
            .count(),
        1
    );

    // A refresh is not a change.
    let t1 = t0 + 100 * SEC;
    w.handle_ra(t1, ROUTER_LL, 255, &hex(RADVD_RA_HEX)).unwrap();
    assert!(w.drain_events().is_empty());

    let end = t1 + 600 * SEC;
    assert_eq!(w.dns_servers(end - Duration::from_nanos(1)), servers);
    assert!(
        w.dns_servers(end).is_empty(),
        "lifetime over even before poll"
    );
    let logs = capture_logs(|| {
        run_until(&mut w, t1, end);
    });
    assert_eq!(w.drain_events(), [Event::DnsChanged]);
    let c = w.counters();
    assert_eq!((c.rdnss_expired, c.dnssl_expired), (2, 2));
    if let Some(logs) = logs {
        assert!(logs.contains(
            &"INFO wan: DNS server 2001:db8::53 expired (RDNSS lifetime ended)".to_string()
        ));
        assert!(logs.contains(
            &"INFO wan: search domain home.arpa expired (DNSSL lifetime ended)".to_string()
        ));
    }
}

#[test]
fn dns_tables_are_bounded_and_prefer_longer_lifetimes() {
    let t0 = Instant::now();
    let mut w = eui64_engine();
    let server = |i: u16| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i);
    let mut ra = repr(0);
    ra.rdnss = (0..8u16)
        .map(|i| Rdnss {
            lifetime: 100 + u32::from(i),
            servers: vec![server(i)],
        })
        .collect();
    feed(&mut w, t0, &ra);
    assert_eq!(w.dns_servers(t0).len(), 8);

    // Longer-lived newcomer replaces the entry expiring soonest (server 0).
    ra.rdnss = vec![Rdnss {
        lifetime: 1000,
        servers: vec![server(8)],
    }];
    feed(&mut w, t0, &ra);
    let now_servers = w.dns_servers(t0);
    assert!(!now_servers.contains(&server(0)) && now_servers.contains(&server(8)));
    // Shorter-lived newcomer is refused.
    ra.rdnss = vec![Rdnss {
        lifetime: 50,
        servers: vec![server(9)],
    }];
    feed(&mut w, t0, &ra);
    assert!(!w.dns_servers(t0).contains(&server(9)));
    assert_eq!(w.counters().table_full, 2);

    // Unusable server addresses.
    ra.rdnss = vec![Rdnss {
        lifetime: 50,
        servers: vec![
            Ipv6Addr::UNSPECIFIED,
            Ipv6Addr::LOCALHOST,
            "ff02::1".parse().unwrap(),
        ],
    }];
    feed(&mut w, t0, &ra);
    assert_eq!(w.counters().rdnss_address_ignored, 3);

    // Domains: 8 kept, compared case-insensitively.
    let mut ra = repr(0);
    ra.dnssl = vec![Dnssl {
        lifetime: 100,
        domains: (0..8).map(|i| format!("d{i}.example")).collect(),
    }];
    feed(&mut w, t0, &ra);
    ra.dnssl = vec![Dnssl {
        lifetime: 100,
        domains: vec!["D0.EXAMPLE".into()],
    }];
    feed(&mut w, t0, &ra);
    assert_eq!(w.domains(t0).len(), 8);
    assert_eq!(w.domains(t0)[0], "d0.example");
}

#[test]
fn counter_names_are_kebab_case_field_names() {
    let names = Counters::assert_names_are_kebab_fields();
    for required in [
        "rx-ra",
        "tx-rs",
        "drop-hop-limit",
        "drop-not-link-local",
        "drop-malformed",
        "router-expired",
        "router-removed",
        "prefix-ignored-len",
        "address-expired",
        "rdnss-ignored",
        "table-full",
    ] {
        assert!(names.contains(&required), "{required}");
    }
}

/// Review finding 5: a reload that changes how addresses are made keeps
/// the routers and RDNSS and only re-forms (or drops) the addresses.
#[test]
fn f5_set_config_keeps_routers_and_reforms_or_drops_addresses() {
    let t0 = Instant::now();
    let dns = Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0x53);
    let mut w = eui64_engine();
    w.start(t0);
    let mut ra = with_prefix(1800, 86400, 14400);
    ra.rdnss = vec![ra::Rdnss {
        lifetime: 1800,
        servers: vec![dns],
    }];
    feed(&mut w, t0, &ra);
    let eui = w.addresses()[0];
    w.drain_events();

    w.set_config(t0 + SEC, cfg(IidMode::StablePrivacy { secret: SECRET }));
    let new = w.addresses();
    assert_eq!(new.len(), 1);
    assert_ne!(new[0].addr, eui.addr);
    assert_eq!(
        new[0].valid_until, eui.valid_until,
        "the prefix's lifetimes stay"
    );
    assert_eq!(
        w.drain_events(),
        [Event::AddressRemoved(eui.addr), Event::AddressAdded(new[0])]
    );
    assert_eq!(w.default_router().map(|r| r.addr), Some(ROUTER_LL));
    assert_eq!(w.dns_servers(t0 + SEC), [dns]);

    let mut off = cfg(IidMode::Eui64);
    off.autoconf = false;
    w.set_config(t0 + 2 * SEC, off);
    assert!(w.addresses().is_empty());
    assert_eq!(w.default_router().map(|r| r.addr), Some(ROUTER_LL));
    // Back on: asks for an RA at once instead of waiting for one.
    w.set_config(t0 + 3 * SEC, cfg(IidMode::Eui64));
    let mut out = Vec::new();
    w.poll(t0 + 5 * SEC, &mut out);
    assert_eq!(out.len(), 1, "a Router Solicitation");
    feed(&mut w, t0 + 5 * SEC, &ra);
    assert_eq!(w.addresses()[0].addr, eui.addr);
}
