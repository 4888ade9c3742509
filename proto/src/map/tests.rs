//! MAP-E arithmetic against public vectors (RFC 7597 Appendix A, the JP
//! draft-03 IID vector), worked examples for each built-in JP table, and
//! the port set checked exhaustively against the RFC 7597 5.1 formula.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::jp_rules::{self, JpRule, Provider};
use super::*;

fn p6(s: &str) -> Prefix6 {
    s.parse().unwrap()
}

fn p4(s: &str) -> Prefix4 {
    s.parse().unwrap()
}

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn a4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn rule(v6: &str, v4: &str, ea: u8, offset: u8) -> Rule {
    Rule::new(p6(v6), p4(v4), ea, offset).unwrap()
}

/// The port set by the letter of RFC 7597 5.1: every
/// `(A << (16 - a)) | (PSID << m) | j`, A from 1 (0 when a = 0).
fn reference_ports(a: u8, k: u8, psid: u16) -> Vec<u16> {
    if k == 0 {
        return (0..=u16::MAX).collect();
    }
    let m = 16 - a - k;
    let first_a = u32::from(a > 0);
    let mut out = Vec::new();
    for big_a in first_a..(1u32 << a) {
        for j in 0..(1u32 << m) {
            let high = if a == 0 { 0 } else { big_a << (16 - a) };
            out.push((high | (u32::from(psid) << m) | j) as u16);
        }
    }
    out
}

// --- RFC 7597 Appendix A ------------------------------------------------------

/// Appendix A, Example 1: BMR {2001:db8::/40, 192.0.2.0/24, EA 16}, PSID
/// offset 6 (default), end-user prefix 2001:db8:0012:3400::/56 -> IPv4
/// 192.0.2.18, PSID 0x34, 63 ranges 1232-1235, 2256-2259, ..., 63696-63699,
/// 64720-64723, CE 2001:db8:0012:3400:0000:c000:0212:0034. (The same rule
/// and ranges appear in RFC 7599 Appendix A Example 5 as corrected by
/// erratum 5324.)
#[test]
fn rfc7597_example1_bmr() {
    let r = rule("2001:db8::/40", "192.0.2.0/24", 16, 6);
    assert_eq!(r.psid_length(), 8);
    let m = r.map(p6("2001:db8:12:3400::/56")).unwrap();
    assert_eq!(m.ea_bits, 0x1234);
    assert_eq!((m.ipv4, m.ipv4_len), (a4("192.0.2.18"), 32));
    assert_eq!(m.psid(), 0x34);
    assert!(m.is_shared());
    let runs: Vec<_> = m.ports.runs().collect();
    assert_eq!(runs.len(), 63);
    assert_eq!(runs[0], (1232, 1235));
    assert_eq!(runs[1], (2256, 2259));
    assert_eq!(runs[61], (63696, 63699));
    assert_eq!(runs[62], (64720, 64723));
    assert_eq!(m.ports.len(), 63 * 4);
    assert_eq!(
        m.ce_address(IidFormat::Rfc7597),
        a6("2001:db8:0012:3400:0000:c000:0212:0034")
    );
    // The same CE in the draft-03 layout: 0x00 | c0000212 | 0034 | 0x00.
    assert_eq!(
        m.ce_address(IidFormat::Legacy),
        a6("2001:db8:12:3400:c0:2:1200:3400")
    );
}

/// Appendix A, Example 2 (FMR): destination 192.0.2.18 port 1232 under the
/// same rule -> PSID 0x34 -> CE 2001:db8:0012:3400:0000:c000:0212:0034.
#[test]
fn rfc7597_example2_fmr() {
    let r = rule("2001:db8::/40", "192.0.2.0/24", 16, 6);
    assert_eq!(r.psid_of_port(1232), Some(0x34));
    assert_eq!(
        r.owner(a4("192.0.2.18"), 1232),
        Some(p6("2001:db8:12:3400::/56"))
    );
    assert_eq!(
        r.ce_address_for(a4("192.0.2.18"), 1232, IidFormat::Rfc7597),
        Some(a6("2001:db8:0012:3400:0000:c000:0212:0034"))
    );
    // Another port of the same CE, and one of its neighbour PSID 0x35.
    assert_eq!(
        r.ce_address_for(a4("192.0.2.18"), 64723, IidFormat::Rfc7597),
        Some(a6("2001:db8:12:3400:0:c000:212:34"))
    );
    assert_eq!(
        r.ce_address_for(a4("192.0.2.18"), 1236, IidFormat::Rfc7597),
        Some(a6("2001:db8:12:3500:0:c000:212:35"))
    );
}

/// Appendix A, Example 4: rule {2001:db8:0012:3400::/56, 192.0.2.18/32,
/// EA 0}: no sharing, CE 2001:db8:0012:3400:0000:c000:0212:0000.
#[test]
fn rfc7597_example4_no_ea_bits() {
    let r = rule("2001:db8:12:3400::/56", "192.0.2.18/32", 0, 6);
    assert_eq!(r.psid_length(), 0);
    let m = r.map(p6("2001:db8:12:3400::/56")).unwrap();
    assert_eq!((m.ipv4, m.ipv4_len, m.psid()), (a4("192.0.2.18"), 32, 0));
    assert!(!m.is_shared());
    assert!(m.ports.is_unrestricted());
    assert_eq!(m.ports.len(), 65536);
    assert_eq!(
        m.ce_address(IidFormat::Rfc7597),
        a6("2001:db8:0012:3400:0000:c000:0212:0000")
    );
    assert_eq!(
        r.ce_address_for(a4("192.0.2.18"), 80, IidFormat::Rfc7597),
        Some(a6("2001:db8:12:3400:0:c000:212:0"))
    );
}

// --- the JP draft-03 ("legacy") IID --------------------------------------------

/// The public vector of issue 18 and jp-ipoe-methods.md 1.1 (an OCN
/// provisioning note; also negineri/mapecd:docs/plan/ce-ipv6-format-plan.md):
/// IPv4 198.51.133.177, PSID 25 -> IID 00c6:3385:b100:1900.
#[test]
fn legacy_iid_public_vector() {
    assert_eq!(
        IidFormat::Legacy.iid(a4("198.51.133.177"), 25),
        0x00c6_3385_b100_1900
    );
    assert_eq!(
        IidFormat::Rfc7597.iid(a4("198.51.133.177"), 25),
        0x0000_c633_85b1_0019
    );
    assert_eq!(IidFormat::default(), IidFormat::Legacy);
}

/// The same vector reached through a whole mapping: an OCN-shaped rule
/// (/38 -> IPv4 /20, EA 18, offset 6) moved into documentation space,
/// 2001:db8:4000::/38 -> 198.51.128.0/20. 198.51.133.177 is suffix 0x5b1 of
/// the /20; with PSID 25 the EA bits are 0x5b1 << 6 | 25 = 0x16c59, which
/// after the /38 give the /56 2001:db8:416c:5900::.
#[test]
fn legacy_vector_through_an_ocn_shaped_rule() {
    let r = rule("2001:db8:4000::/38", "198.51.128.0/20", 18, 6);
    let m = r.map(p6("2001:db8:416c:5900::/56")).unwrap();
    assert_eq!(m.ipv4, a4("198.51.133.177"));
    assert_eq!(m.psid(), 25);
    assert_eq!(
        m.ce_address(IidFormat::Legacy),
        a6("2001:db8:416c:5900:00c6:3385:b100:1900")
    );
    assert_eq!(
        r.ce_address_for(
            a4("198.51.133.177"),
            m.ports.port_at(0).unwrap(),
            IidFormat::Legacy
        ),
        Some(m.ce_address(IidFormat::Legacy))
    );
    // 63 runs of 16 = 1008 ports, the first 1024 + 25 * 16 = 1424.
    assert_eq!(m.ports.len(), 1008);
    assert_eq!(m.ports.runs().next(), Some((1424, 1439)));
}

// --- worked examples for the built-in JP tables --------------------------------
//
// Each end-user prefix below is made up inside a table row and worked by
// hand with the steps of jp-ipoe-methods.md 1.1 (RFC 7597 5.2 as the fc2
// calculator and site-u2023/config-software:map-e.sh do it); the rows are
// the fc2 table's. Real provider prefixes here are arithmetic only.

/// v6plus: row 240b:10::/31 -> 106.72.0.0/15 (the row jp-ipoe-methods.md 1.1
/// quotes). 240b:11:2233:4400::/56: the EA bits (25 after the /31) are 1
/// (last bit of 0x0011), 0x2233 and 0x44; the 17-bit suffix 0x12233 on
/// 106.72.0.0 is 106.73.34.51, PSID 0x44 = 68; offset 4 gives runs of 16
/// from 1 << 12 | 68 << 4 = 5184.
#[test]
fn jp_v6plus_worked_example() {
    let prefix = a6("240b:11:2233:4400::");
    let row = jp_rules::lookup(prefix).expect("a v6plus row");
    assert_eq!(row.provider, Provider::V6plus);
    assert_eq!(row.br, a6("2404:9200:225:100::64"));
    assert_eq!(row.rule.ipv6_prefix(), p6("240b:10::/31"));
    let m = row.rule.map(Prefix6::truncate(prefix, 56)).unwrap();
    assert_eq!((m.ipv4, m.psid()), (a4("106.73.34.51"), 68));
    let runs: Vec<_> = m.ports.runs().collect();
    assert_eq!(runs.len(), 15);
    assert_eq!(runs[0], (5184, 5199));
    assert_eq!(runs[14], (62528, 62543));
    assert_eq!(m.ports.len(), 240);
    assert_eq!(
        m.ce_address(IidFormat::Legacy),
        a6("240b:11:2233:4400:6a:4922:3300:4400")
    );
    // On a line without PD the RA /64 itself is the end-user prefix.
    let ra = row.rule.map(p6("240b:11:2233:4412::/64")).unwrap();
    assert_eq!((ra.ipv4, ra.psid()), (m.ipv4, m.psid()));
    assert_eq!(
        ra.ce_address(IidFormat::Legacy),
        a6("240b:11:2233:4412:6a:4922:3300:4400")
    );
}

/// The port runs negineri/mapecd:docs/v6plus-spec.md lists for v6plus PSID 5
/// (a = 4, k = 8): 4176-4191, 8272-8287, ... Its last row, 61536-61551,
/// is an arithmetic slip there: 15 * 4096 + 5 * 16 = 61520.
#[test]
fn jp_v6plus_psid5_runs() {
    let set = PortSet::new(4, 8, 5);
    let runs: Vec<_> = set.runs().collect();
    assert_eq!(runs[0], (4176, 4191));
    assert_eq!(runs[1], (8272, 8287));
    assert_eq!(runs[14], (61520, 61535));
    assert!(!set.contains(61536));
}

/// OCN Virtual Connect: row 2400:4050::/38 -> 153.240.0.0/20 (the row
/// jp-ipoe-methods.md 1.1 quotes), EA 18, offset 6. 2400:4050:12:3400::/56:
/// EA = 0x012 (last 10 bits of the third hextet) << 8 | 0x34 = 0x1234; the
/// 12-bit suffix 0x1234 >> 6 = 72 gives 153.240.0.72, PSID 0x1234 & 63 = 52;
/// runs of 16 from 1 << 10 | 52 << 4 = 1856, 63 of them.
#[test]
fn jp_ocn_worked_example() {
    let prefix = a6("2400:4050:12:3400::");
    let row = jp_rules::lookup(prefix).expect("an OCN row");
    assert_eq!(row.provider, Provider::Ocn);
    assert_eq!(row.br, a6("2001:380:a120::9"));
    let m = row.rule.map(Prefix6::truncate(prefix, 56)).unwrap();
    assert_eq!((m.ipv4, m.psid()), (a4("153.240.0.72"), 52));
    let runs: Vec<_> = m.ports.runs().collect();
    assert_eq!(runs.len(), 63);
    assert_eq!(runs[0], (1856, 1871));
    assert_eq!(runs[62], (65344, 65359));
    assert_eq!(m.ports.len(), 1008);
    assert_eq!(
        m.ce_address(IidFormat::Legacy),
        a6("2400:4050:12:3400:99:f000:4800:3400")
    );
}

/// BIGLOBE, both row shapes: the /38 row 2404:7a82::/38 -> 125.196.208.0/22
/// (EA 18, 8-bit PSID, East BR): 2404:7a82:12:3400::/56 has EA 0x1234, the
/// 10-bit suffix 0x12 gives 125.196.208.18, PSID 0x34; and the /31 row
/// 2404:7a84::/31 -> 133.206.0.0/15 (West BR): 2404:7a84:1:200::/56 has EA
/// 0 | 0x0001 | 0x02 -> suffix 1 -> 133.206.0.1, PSID 2.
#[test]
fn jp_biglobe_worked_examples() {
    let prefix = a6("2404:7a82:12:3400::");
    let row = jp_rules::lookup(prefix).expect("a BIGLOBE /38 row");
    assert_eq!(row.provider, Provider::Biglobe);
    assert_eq!(row.br, a6("2001:260:700:1::1:275"));
    assert_eq!(row.rule.ipv6_prefix(), p6("2404:7a82::/38"));
    let m = row.rule.map(Prefix6::truncate(prefix, 56)).unwrap();
    assert_eq!((m.ipv4, m.psid()), (a4("125.196.208.18"), 0x34));
    assert_eq!(m.ports.len(), 240);
    assert_eq!(m.ports.runs().next(), Some((4928, 4943)));

    let prefix = a6("2404:7a84:1:200::");
    let row = jp_rules::lookup(prefix).expect("a BIGLOBE /31 row");
    assert_eq!(row.provider, Provider::Biglobe);
    assert_eq!(row.br, a6("2001:260:700:1::1:276"));
    let m = row.rule.map(Prefix6::truncate(prefix, 56)).unwrap();
    assert_eq!((m.ipv4, m.psid()), (a4("133.206.0.1"), 2));
}

#[test]
fn jp_table_parses_whole_and_is_dated() {
    let rows: Vec<_> = jp_rules::parse_table(jp_rules::TABLE).collect();
    for row in &rows {
        assert!(row.is_ok(), "{row:?}");
    }
    assert_eq!(rows.len(), jp_rules::rules().len());
    let count = |p| jp_rules::rules().iter().filter(|r| r.provider == p).count();
    // The fc2 table's row counts: 4 v6plus /31, 2 + 256 BIGLOBE, 428 OCN.
    assert_eq!(count(Provider::V6plus), 4);
    assert_eq!(count(Provider::Biglobe), 258);
    assert_eq!(count(Provider::Ocn), 428);
    assert!(jp_rules::TABLE.contains(&format!("# Date: {}.", jp_rules::TABLE_DATE)));
    // Every row gives the port counts the VNEs are known for.
    for r in jp_rules::rules() {
        let set = PortSet::new(r.rule.psid_offset(), r.rule.psid_length(), 0);
        let want = if r.provider == Provider::Ocn {
            1008
        } else {
            240
        };
        assert_eq!(set.len(), want, "{}", r.rule);
        assert_eq!(r.rule.end_user_len(), 56, "{}", r.rule);
    }
    // No two rows claim the same prefix.
    let prefixes: BTreeSet<_> = jp_rules::rules()
        .iter()
        .map(|r| r.rule.ipv6_prefix().to_string())
        .collect();
    assert_eq!(prefixes.len(), jp_rules::rules().len());
}

#[test]
fn jp_lookup_misses_and_longest_match() {
    assert!(jp_rules::lookup(a6("2001:db8::1")).is_none());
    // A table of our own in documentation space: the /40 inside the /32 wins.
    let text = "# test\n\
        v6plus,2001:db8::/32,192.0.2.0/24,16,4,2001:db8:ffff::1\n\
        ocn,2001:db8:100::/40,198.51.100.0/24,16,6,2001:db8:ffff::2\n";
    let rows: Vec<JpRule> = jp_rules::parse_table(text).map(Result::unwrap).collect();
    let hit = jp_rules::lookup_in(&rows, a6("2001:db8:100:1200::")).unwrap();
    assert_eq!(hit.provider, Provider::Ocn);
    let hit = jp_rules::lookup_in(&rows, a6("2001:db8:200::")).unwrap();
    assert_eq!(hit.provider, Provider::V6plus);
    assert!(jp_rules::parse_row("ocn,2001:db8::/32,192.0.2.0/24,49,4,::1").is_err());
    assert!(jp_rules::parse_row("nuro,2001:db8::/32,192.0.2.0/24,8,4,::1").is_err());
    assert!(jp_rules::parse_row("ocn,2001:db8::/32,192.0.2.0/24,8").is_err());
}

// --- edge cases --------------------------------------------------------------------

/// EA length 0 with a /24: the CE gets the whole rule IPv4 prefix.
#[test]
fn ea_zero_gives_the_whole_ipv4_prefix() {
    let r = rule("2001:db8:1::/48", "192.0.2.0/24", 0, 4);
    let m = r.map(p6("2001:db8:1:ff00::/56")).unwrap();
    assert_eq!((m.ipv4, m.ipv4_len, m.psid()), (a4("192.0.2.0"), 24, 0));
    assert!(m.ports.is_unrestricted());
    assert_eq!(
        m.ce_address(IidFormat::Rfc7597),
        a6("2001:db8:1:ff00:0:c000:200:0")
    );
    assert_eq!(r.owner(a4("192.0.2.200"), 7), Some(p6("2001:db8:1::/48")));
}

/// EA bits exactly cover the suffix: a whole address, no PSID, every port.
#[test]
fn k_zero_gives_a_whole_address() {
    let r = rule("2001:db8::/40", "198.51.100.0/24", 8, 6);
    assert_eq!(r.psid_length(), 0);
    let m = r.map(p6("2001:db8:ab::/48")).unwrap();
    assert_eq!((m.ipv4, m.ipv4_len), (a4("198.51.100.171"), 32));
    assert!(m.ports.contains(80) && m.ports.contains(0) && m.ports.contains(65535));
    assert_eq!(m.ports.index_of(80), Some(80));
    assert_eq!(m.ports.port_at(65535), Some(65535));
    assert_eq!(m.ports.port_at(65536), None);
    assert_eq!(m.ports.runs().collect::<Vec<_>>(), vec![(0, 65535)]);
    assert!(r.port_possible(80) && !r.port_possible(0));
}

/// EA bits shorter than the suffix: the CE gets an IPv4 prefix (here a /28)
/// and the IID carries its network address.
#[test]
fn short_ea_gives_an_ipv4_prefix() {
    let r = rule("2001:db8::/40", "203.0.113.0/24", 4, 6);
    let m = r.map(p6("2001:db8:a0::/44")).unwrap();
    assert_eq!((m.ipv4, m.ipv4_len), (a4("203.0.113.160"), 28));
    assert!(!m.is_shared());
    assert_eq!(
        m.ce_address(IidFormat::Rfc7597),
        a6("2001:db8:a0:0:0:cb00:71a0:0")
    );
    assert_eq!(
        r.owner(a4("203.0.113.170"), 1),
        Some(p6("2001:db8:a0::/44"))
    );
    assert_eq!(
        r.ce_address_for(a4("203.0.113.175"), 9, IidFormat::Rfc7597),
        Some(m.ce_address(IidFormat::Rfc7597))
    );
}

/// A /32 with EA bits: every EA bit is PSID (one shared address).
#[test]
fn full_address_rule_is_all_psid() {
    let r = rule("2001:db8:ff00::/40", "192.0.2.7/32", 6, 2);
    assert_eq!(r.psid_length(), 6);
    let m = r.map(p6("2001:db8:ff2c::/46")).unwrap();
    assert_eq!((m.ipv4, m.psid()), (a4("192.0.2.7"), 0x2c >> 2));
    assert_eq!(m.ports.len(), 3 * 256);
}

#[test]
fn psid_offset_zero() {
    let r = rule("2001:db8::/40", "192.0.2.0/24", 16, 0);
    let m = r.map(p6("2001:db8:12:3400::/56")).unwrap();
    assert_eq!(m.ports.runs().collect::<Vec<_>>(), vec![(0x3400, 0x34ff)]);
    assert_eq!(m.ports.len(), 256);
    assert_eq!(m.ports.index_of(0x34ff), Some(255));
    assert!(!m.ports.contains(0x3500));
    // No range is excluded with a = 0: port 1 belongs to PSID 0.
    assert_eq!(r.psid_of_port(1), Some(0));
    assert!(r.port_possible(1));
}

/// Offsets 4 and 6 (the JP ones) and a few others, every port checked
/// against the RFC formula: membership, dense index, and back.
#[test]
fn port_sets_match_the_rfc_formula_exhaustively() {
    for (a, k, psid) in [
        (4, 8, 0),
        (4, 8, 5),
        (4, 8, 255),
        (6, 6, 25),
        (6, 6, 63),
        (6, 8, 0x34),
        (0, 6, 9),
        (2, 14, 0x3fff),
        (15, 1, 1),
        (4, 0, 0),
    ] {
        let set = PortSet::new(a, k, psid);
        let want = reference_ports(a, k, psid);
        assert_eq!(set.len() as usize, want.len(), "a={a} k={k} psid={psid}");
        let members: BTreeSet<u16> = want.iter().copied().collect();
        for port in 0..=u16::MAX {
            assert_eq!(set.contains(port), members.contains(&port), "port {port}");
        }
        for (index, &port) in want.iter().enumerate() {
            assert_eq!(set.port_at(index as u32), Some(port));
            assert_eq!(set.index_of(port), Some(index as u32));
        }
        assert_eq!(set.port_at(set.len()), None);
        let runs: Vec<_> = set.runs().collect();
        assert_eq!(runs.len() as u32, set.run_count());
        let from_runs: Vec<u16> = runs.iter().flat_map(|&(f, l)| f..=l).collect();
        assert_eq!(from_runs, want);
    }
}

/// Under one rule the PSIDs split the ports with A > 0 among them, without
/// overlap: no port is handed to two CEs.
#[test]
fn psids_partition_the_ports() {
    for (a, k) in [(4u8, 8u8), (6, 6)] {
        let mut owner = vec![None; 65536];
        for psid in 0..(1u16 << k) {
            let set = PortSet::new(a, k, psid);
            for index in 0..set.len() {
                let port = set.port_at(index).unwrap();
                assert_eq!(owner[usize::from(port)], None, "port {port} twice");
                owner[usize::from(port)] = Some(psid);
            }
        }
        let low = 1usize << (16 - a);
        assert!(owner[..low].iter().all(Option::is_none));
        assert!(owner[low..].iter().all(Option::is_some));
    }
}

#[test]
fn reverse_lookup_round_trips() {
    let r = rule("2001:db8:4000::/38", "198.51.128.0/20", 18, 6);
    for ea in [0u32, 1, 0x16c59, 0x3ffff, 0x2a5a5] {
        let h2 = 0x4000 | (ea >> 8) as u16;
        let h3 = ((ea & 0xff) as u16) << 8;
        let end_user = Prefix6::new(Ipv6Addr::new(0x2001, 0xdb8, h2, h3, 0, 0, 0, 0), 56).unwrap();
        let m = r.map(end_user).unwrap();
        for (first, last) in m.ports.runs() {
            for port in [first, last] {
                assert_eq!(r.psid_of_port(port), Some(m.psid()));
                assert_eq!(r.owner(m.ipv4, port), Some(end_user));
                for iid in [IidFormat::Legacy, IidFormat::Rfc7597] {
                    assert_eq!(r.ce_address_for(m.ipv4, port, iid), Some(m.ce_address(iid)));
                }
            }
        }
    }
    // Ports no CE owns, and addresses outside the rule.
    assert_eq!(r.psid_of_port(1023), None);
    assert_eq!(r.owner(a4("198.51.133.177"), 80), None);
    assert_eq!(r.owner(a4("198.51.144.1"), 5000), None);
    assert_eq!(
        r.ce_address_for(a4("192.0.2.1"), 5000, IidFormat::Legacy),
        None
    );
}

#[test]
fn port_possible_excludes_the_low_range() {
    let v6plus_like = rule("2001:db8::/31", "192.0.0.0/15", 25, 4);
    assert!(!v6plus_like.port_possible(0));
    assert!(!v6plus_like.port_possible(80));
    assert!(!v6plus_like.port_possible(4095));
    assert!(v6plus_like.port_possible(4096));
    assert!(v6plus_like.port_possible(65535));
    let ocn_like = rule("2001:db8::/38", "198.51.128.0/20", 18, 6);
    assert!(!ocn_like.port_possible(1023));
    assert!(ocn_like.port_possible(1024));
    assert!(!jp_rules::port_possible_under_some_rule(1023));
    assert!(jp_rules::port_possible_under_some_rule(1024));
}

// --- refusals ------------------------------------------------------------------------

#[test]
fn refuses_inconsistent_rules() {
    let v6 = p6("2001:db8::/32");
    let v4 = p4("192.0.2.0/24");
    assert_eq!(
        Rule::new(v6, v4, 49, 4),
        Err(RuleError::EaTooLong { ea_length: 49 })
    );
    assert_eq!(
        Rule::new(p6("2001:db8::/40"), v4, 25, 4),
        Err(RuleError::EndUserPastSlash64 {
            ipv6_len: 40,
            ea_length: 25
        })
    );
    assert_eq!(
        Rule::new(v6, p4("192.0.2.1/32"), 17, 0),
        Err(RuleError::PsidTooLong { psid_length: 17 })
    );
    assert_eq!(
        Rule::new(v6, v4, 16, 9),
        Err(RuleError::OffsetTooLarge {
            psid_offset: 9,
            psid_length: 8
        })
    );
    assert!(Rule::new(v6, v4, 16, 8).is_ok());
    assert!(Rule::new(v6, v4, 8, 16).is_err());
    let shown = Rule::new(p6("2001:db8::/40"), v4, 25, 4)
        .unwrap_err()
        .to_string();
    assert!(shown.contains("/65"), "{shown}");
    // Prefixes with host bits, or too long.
    assert!("192.0.2.1/24".parse::<Prefix4>().is_err());
    assert!("2001:db8::1/64".parse::<Prefix6>().is_err());
    assert!("192.0.2.0/33".parse::<Prefix4>().is_err());
    assert!("2001:db8::".parse::<Prefix6>().is_err());
}

#[test]
fn refuses_end_user_prefixes_that_do_not_fit() {
    let r = rule("2001:db8::/40", "192.0.2.0/24", 16, 6);
    assert_eq!(
        r.map(p6("2001:db8:12::/48")),
        Err(MapError::TooShort {
            end_user: p6("2001:db8:12::/48"),
            needed: 56
        })
    );
    assert!(matches!(
        r.map(p6("2001:db9:12:3400::/56")),
        Err(MapError::NotInRule { .. })
    ));
    assert!(matches!(
        r.map(p6("2001:db8:12:3400:1::/80")),
        Err(MapError::TooLong { .. })
    ));
    assert!(matches!(
        r.map(p6("2001:db8::/32")),
        Err(MapError::TooShort { .. })
    ));
    // A /60 behind a home gateway is fine: subnet 0 of the /60.
    let m = r.map(p6("2001:db8:12:3410::/60")).unwrap();
    assert_eq!(m.psid(), 0x34);
    assert_eq!(
        m.ce_address(IidFormat::Rfc7597),
        a6("2001:db8:12:3410:0:c000:212:34")
    );
}
