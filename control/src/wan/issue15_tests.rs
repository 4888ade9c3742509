//! Issue 15, DHCPv6 and WAN: the WAN engines driven together on a fake
//! clock (findings 3, 4, 9 and 2 of the control-plane review).

use super::*;

use ipoe_proto::slaac::ra::{PrefixInfo, RaRepr};

const MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x02, 0x02];
const ROUTER_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const ROUTER_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01];

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(crate) fn state_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ipoed-wan15-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The lab's automatic config (SLAAC, PD with a /60 hint, B4 on the WAN).
pub(crate) fn config(dir: &std::path::Path, extra_pd: &str) -> Config {
    let text = format!(
        "wan:\n  interface: wan0\n  ipv6:\n    slaac: true\n    dhcpv6_pd: {{ prefix_hint: 60{extra_pd} }}\n\
         lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n  ipv6:\n    subnet_id: 1\n\
         dslite:\n  aftr: 2001:db8:aaaa::1\n  b4_address: wan\n\
         control:\n  state_dir: {}\n",
        dir.display()
    );
    ipoe_config::parse(&text, "test.yaml").expect("test config")
}

fn link_local() -> Ipv6Addr {
    crate::iface::link_local(&MAC)
}

/// An RA from the home gateway: router lifetime 1800, M and O as given,
/// an autonomous /64.
fn ra(managed: bool, other: bool) -> Vec<u8> {
    RaRepr {
        cur_hop_limit: 64,
        managed,
        other,
        router_lifetime: 1800,
        source_lladdr: Some(ROUTER_MAC),
        prefixes: vec![PrefixInfo {
            prefix: "2001:db8:0:100::".parse().unwrap(),
            prefix_len: 64,
            on_link: true,
            autonomous: true,
            valid_lifetime: 86400,
            preferred_lifetime: 14400,
        }],
        ..RaRepr::default()
    }
    .emit()
    .unwrap()
}

/// The WAN on a fake clock, with its link-local address usable.
pub(crate) struct Rig {
    pub wan: Wan,
    pub now: Instant,
    next: Option<Instant>,
}

impl Rig {
    pub(crate) fn new(cfg: &Config, now: Instant) -> Self {
        let wan = Wan::new(cfg, MAC, link_local(), now);
        let mut rig = Self {
            wan,
            now,
            next: None,
        };
        rig.poll();
        rig
    }

    pub(crate) fn poll(&mut self) -> Vec<Tx> {
        let mut out = Vec::new();
        let mut usable = vec![link_local()];
        // Every candidate passes DAD at once here.
        usable.extend(self.wan.learned(&[]).wan_candidates.iter().map(|c| c.0));
        self.next = self.wan.poll(self.now, &usable, &[], &mut out);
        out
    }

    /// Runs deadline by deadline until `until`.
    pub(crate) fn run_until(&mut self, until: Instant) {
        while let Some(next) = self.next.filter(|n| *n <= until) {
            self.now = next.max(self.now);
            self.poll();
        }
        self.now = until;
        self.poll();
    }

    fn solicits(&self) -> u64 {
        self.wan.dhcp.as_ref().unwrap().counters().tx_solicit
    }

    /// How long until the next Solicit leaves, looking `limit` ahead.
    fn next_solicit_within(&mut self, limit: Duration) -> Option<Duration> {
        let start = self.now;
        let before = self.solicits();
        let end = start + limit;
        while let Some(next) = self.next.filter(|n| *n <= end) {
            self.now = next.max(self.now);
            self.poll();
            if self.solicits() > before {
                return Some(self.now - start);
            }
        }
        None
    }
}

/// Two hours with neither router nor DHCPv6 server: the Solicit has
/// backed off towards SOL_MAX_RT (3600 s).
fn backed_off(tag: &str) -> Rig {
    let dir = state_dir(tag);
    let cfg = config(&dir, "");
    let t0 = Instant::now();
    let mut rig = Rig::new(&cfg, t0);
    rig.run_until(t0 + secs(2 * 3600));
    assert!(rig.solicits() >= 10, "{} Solicits", rig.solicits());
    assert_eq!(
        rig.wan.dhcp.as_ref().unwrap().state(),
        dhcp6c::State::Soliciting
    );
    rig
}

/// Finding 3: carrier up restarts a backed-off Solicit from IRT.
#[test]
fn f3_solicit_restarts_on_link_up() {
    let mut rig = backed_off("f3-link");
    rig.wan.set_link(rig.now, false);
    rig.poll();
    rig.wan.set_link(rig.now, true);
    rig.poll();
    // SOL_MAX_DELAY (0..1 s), then the Solicit; then RT from IRT (1 s).
    let first = rig.next_solicit_within(secs(3600 * 2));
    assert!(
        first.is_some_and(|d| d <= secs(1)),
        "first Solicit {first:?} after carrier up"
    );
    let second = rig.next_solicit_within(secs(3600 * 2));
    assert!(
        second.is_some_and(|d| d > secs(1) && d <= Duration::from_millis(1100)),
        "second Solicit {second:?} after the first"
    );
}

/// Finding 3: the home gateway's first RA with M or O, after a time
/// without any router, restarts a backed-off Solicit.
#[test]
fn f3_solicit_restarts_on_first_managed_ra_after_no_router() {
    let mut rig = backed_off("f3-ra");
    let now = rig.now;
    rig.wan
        .ra
        .handle_ra(now, ROUTER_LL, 255, &ra(true, true))
        .unwrap();
    rig.poll();
    let first = rig.next_solicit_within(secs(3600 * 2));
    assert!(
        first.is_some_and(|d| d <= secs(1)),
        "first Solicit {first:?} after the gateway's RA"
    );
    // A later RA from the same router does not restart it again: the
    // Solicit keeps backing off (its next turn is not moved).
    let t = rig.now;
    rig.run_until(t + secs(60));
    let next = rig.next;
    let now = rig.now;
    rig.wan
        .ra
        .handle_ra(now, ROUTER_LL, 255, &ra(true, true))
        .unwrap();
    rig.poll();
    assert_eq!(rig.next, next, "a refreshing RA restarted the Solicit");
}

/// Finding 3: an RA with neither M nor O starts nothing (RFC 7084 WPD-4
/// ties PD to M/O; the 4-s fallback already runs).
#[test]
fn f3_ra_without_m_or_o_does_not_restart() {
    let mut rig = backed_off("f3-noflags");
    let now = rig.now;
    rig.wan
        .ra
        .handle_ra(now, ROUTER_LL, 255, &ra(false, false))
        .unwrap();
    rig.poll();
    // The backed-off Solicit's own turn may fall anywhere in the next hour
    // (it once fell within 5 s of the RA), so what tells a restart is the
    // one after: IRT (1 s) after a restart, about SOL_MAX_RT otherwise.
    assert!(rig.next_solicit_within(secs(2 * 3600)).is_some());
    let second = rig.next_solicit_within(secs(2 * 3600));
    assert!(
        second.is_some_and(|d| d > secs(3000)),
        "an RA without M or O restarted the Solicit: the next one {second:?} later"
    );
}

fn pd_lease(prefix: &str, obtained: Instant, extra: Vec<dhcp6c::DelegatedPrefix>) -> Lease {
    Lease {
        prefix: prefix.parse().unwrap(),
        prefix_len: 56,
        preferred: 3600,
        valid: 7200,
        t1: 1800,
        t2: 2880,
        server_id: vec![0, 2, 0, 0, 0x7e, 0xd9, 1, 1, 1, 1, 1, 1],
        obtained,
        dns_servers: vec![],
        domains: vec![],
        aftr_name: None,
        sol_max_rt: None,
        address: None,
        extra_prefixes: extra,
    }
}

/// (preferred, valid) of `prefix` in the LAN RA at `now`.
fn advertised(lan: &crate::lan::Lan, now: Instant, prefix: &str) -> Option<(u32, u32)> {
    let prefix: Ipv6Addr = prefix.parse().unwrap();
    lan.ra
        .current_advert(now)
        .prefixes
        .iter()
        .find(|p| p.prefix == prefix)
        .map(|p| (p.preferred_lifetime, p.valid_lifetime))
}

/// Finding 4 at the WAN/LAN level: the delegation moves to a new prefix
/// while the server keeps the old one deprecated (preferred 0, valid
/// 3000 s): the LAN advertises the new /64 and the old one with preferred
/// 0 and no more valid lifetime than the server left it (RFC 9096).
#[test]
fn f4_lan_moves_to_new_prefix_and_advertises_old_deprecated() {
    let dir = state_dir("f4-lan");
    let cfg = config(&dir, "");
    let t0 = Instant::now();
    let mut rig = Rig::new(&cfg, t0);
    let mut lan = crate::lan::Lan::new(&cfg, [2, 0, 0, 0, 3, 3], MAC, link_local(), vec![0, 3], t0);
    let old = "2001:db8:100::";
    rig.wan
        .dhcp
        .as_mut()
        .unwrap()
        .restore(pd_lease(old, t0, Vec::new()), t0);
    let learned = rig.wan.learned(&[]);
    lan.update(t0, &learned, &rig.wan);
    assert_eq!(advertised(&lan, t0, "2001:db8:100:1::"), Some((2700, 5400)));

    // At T1 the Reply deprecates the old /56 and delegates a new one.
    let t1 = t0 + secs(1800);
    let renumbered = pd_lease(
        "2001:db8:7700::",
        t1,
        vec![dhcp6c::DelegatedPrefix {
            prefix: old.parse().unwrap(),
            prefix_len: 56,
            preferred: 0,
            valid: 3000,
        }],
    );
    rig.wan.dhcp.as_mut().unwrap().restore(renumbered, t1);
    assert_eq!(
        rig.wan.other_lan_prefixes(),
        vec![("2001:db8:100:1::".parse().unwrap(), Some(t1 + secs(3000)))]
    );
    let learned = rig.wan.learned(&[]);
    assert_eq!(
        learned.lan_prefix,
        Some("2001:db8:7700:1::".parse().unwrap())
    );
    lan.update(t1, &learned, &rig.wan);
    assert_eq!(
        advertised(&lan, t1, "2001:db8:7700:1::"),
        Some((2700, 5400))
    );
    assert_eq!(advertised(&lan, t1, "2001:db8:100:1::"), Some((0, 3000)));
    assert_eq!(
        lan.stale_prefixes(t1),
        vec!["2001:db8:100:1::".parse::<Ipv6Addr>().unwrap()]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Finding 9 at the WAN level: a lease file whose age cannot be proven
/// (another boot, wall clock behind the save) is restored with short
/// lifetimes and confirmed with Rebind before anything longer is
/// published.
#[test]
fn f9_unproven_saved_lease_is_short_until_rebind_confirms() {
    let dir = state_dir("f9-wan");
    let cfg = config(&dir, "");
    let future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 30 * 86_400;
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(state::PD_LEASE_FILE),
        format!(
            r#"{{ "prefix": "2001:db8:0:110::", "prefix_len": 60, "preferred": 3600,
                 "valid": 7200, "t1": 1800, "t2": 2880, "server_id": "000100010abc",
                 "obtained_unix": {future}, "saved_unix": {future},
                 "boot_id": "another-boot", "obtained_boottime": 100 }}"#
        ),
    )
    .unwrap();
    let t0 = Instant::now();
    let rig = Rig::new(&cfg, t0);
    let lease = rig.wan.lease().expect("the saved lease is used");
    assert!(lease.valid <= state::UNPROVEN_VALID && lease.preferred <= state::UNPROVEN_PREFERRED);
    assert_eq!(
        rig.wan.dhcp.as_ref().unwrap().state(),
        dhcp6c::State::Rebinding
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const NA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 0x10);

fn with_address(mut lease: Lease) -> Lease {
    lease.address = Some((NA, 3600, 7200));
    lease
}

/// Finding 2 (the review's reproduction): the IA_NA address of a lease
/// is a WAN address: a DAD candidate, the WAN address once usable, and
/// the B4 with `b4_address: wan`.
#[test]
fn f2_ia_na_address_becomes_the_wan_address_and_the_b4() {
    let dir = state_dir("f2-na");
    let cfg = config(&dir, ", request_na: true");
    let t0 = Instant::now();
    let mut rig = Rig::new(&cfg, t0);
    rig.wan
        .dhcp
        .as_mut()
        .unwrap()
        .restore(with_address(pd_lease("2001:db8:100::", t0, Vec::new())), t0);
    let tentative = rig.wan.learned(&[link_local()]);
    assert_eq!(tentative.wan_candidates, vec![(NA, 128)]);
    assert_eq!(tentative.b4, None, "not before DAD");
    let l = rig.wan.learned(&[link_local(), NA]);
    assert_eq!(l.wan_address, Some(NA));
    assert_eq!(l.b4, Some(NA));

    // DAD finds it in use: declined, and no longer ours.
    rig.wan.dad_failed(t0, NA);
    let sent = rig.poll();
    assert_eq!(rig.wan.dhcp.as_ref().unwrap().counters().tx_decline, 1);
    assert!(!sent.is_empty());
    let l = rig.wan.learned(&[link_local(), NA]);
    assert!(l.wan_candidates.is_empty() && l.b4.is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Finding 2 (RFC 7084 WAA-6): an RA with M=1 makes the Solicit carry an
/// IA_NA although `request_na` is off.
#[test]
fn f2_ra_with_m_requests_ia_na() {
    let dir = state_dir("f2-m");
    let cfg = config(&dir, "");
    let t0 = Instant::now();
    let mut rig = Rig::new(&cfg, t0);
    rig.wan
        .ra
        .handle_ra(t0, ROUTER_LL, 255, &ra(true, false))
        .unwrap();
    let mut solicit = None;
    for _ in 0..20 {
        for tx in rig.poll() {
            if let Tx::Ready(_, frame) = tx {
                if let Ok(Inbound::Udp {
                    dst_port: hostio::DHCP6_SERVER_PORT,
                    payload,
                    ..
                }) = hostio::classify(&frame)
                {
                    solicit = Some(payload.to_vec());
                }
            }
        }
        if solicit.is_some() {
            break;
        }
        rig.now = rig.next.unwrap();
    }
    let solicit = solicit.expect("a Solicit");
    use dhcproto::{v6, Decodable, Decoder};
    let m = v6::Message::decode(&mut Decoder::new(&solicit)).unwrap();
    assert_eq!(m.msg_type(), v6::MessageType::Solicit);
    assert!(m.opts().get(v6::OptionCode::IANA).is_some(), "{m:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
