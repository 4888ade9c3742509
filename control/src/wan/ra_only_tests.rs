//! Issue 19 at the WAN level: a line whose home gateway sends RAs with
//! M=0 O=1 and no RDNSS and answers only Information-request. DNS (and so
//! the AFTR name) comes from the stateless Reply; the LAN proxies the WAN
//! /64; a delegation that arrives later takes over.

use super::*;
use dhcproto::v6::{DhcpOption, DhcpOptions, IAPrefix, Message, MessageType, OptionCode, IAPD};
use dhcproto::{Decodable, Decoder, Encodable};
use ipoe_proto::slaac::ra::{PrefixInfo, RaRepr};

const MAC: Mac = [2, 0, 0, 0, 2, 2];
const HGW_MAC: Mac = [2, 0, 0, 0, 3, 1];
const HGW: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const DNS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x53, 0, 0, 0, 1);
const AFTR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xaaaa, 0, 0, 0, 0, 1);
const WAN64: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 0);

fn config(dir: &std::path::Path, pd: &str) -> Config {
    let text = format!(
        "wan:\n  interface: wan0\n  ipv6:\n    dhcpv6_pd: {pd}\n\
         lan:\n  interface: lan0\n  ipv4: 192.168.2.1/24\n\
         dslite:\n  aftr: aftr.lab.example\n\
         control:\n  state_dir: {}\n",
        dir.display()
    );
    ipoe_config::parse(&text, "test.yaml").unwrap()
}

struct Bench {
    wan: Wan,
    now: Instant,
    usable: Vec<Ipv6Addr>,
}

impl Bench {
    fn new(tag: &str, pd: &str) -> (Self, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("ipoed-raonly-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = Instant::now();
        let ll = crate::iface::link_local(&MAC);
        let b = Bench {
            wan: Wan::new(&config(&dir, pd), MAC, ll, now),
            now,
            usable: vec![ll],
        };
        (b, dir)
    }

    fn udp_sent(&mut self) -> Vec<(Ipv6Addr, u16, u16, Vec<u8>)> {
        let mut out = Vec::new();
        self.wan.poll(self.now, &self.usable, &[], &mut out);
        out.into_iter()
            .filter_map(|tx| {
                let (Tx::Ready(_, f) | Tx::Via(_, _, f)) = tx;
                match hostio::classify(&f).ok()? {
                    Inbound::Udp {
                        dst: IpAddr::V6(dst),
                        src_port,
                        dst_port,
                        payload,
                        ..
                    } => Some((dst, src_port, dst_port, payload.to_vec())),
                    _ => None,
                }
            })
            .collect()
    }

    fn dhcp_sent(&mut self) -> Vec<Message> {
        self.udp_sent()
            .into_iter()
            .filter(|u| u.2 == hostio::DHCP6_SERVER_PORT)
            .map(|u| Message::decode(&mut Decoder::new(&u.3)).unwrap())
            .collect()
    }

    /// Runs the clock `secs` seconds in 100 ms steps; the DHCPv6 messages
    /// sent meanwhile.
    fn run(&mut self, secs: u64) -> Vec<Message> {
        let mut sent = Vec::new();
        for _ in 0..secs * 10 {
            self.now += Duration::from_millis(100);
            sent.extend(self.dhcp_sent());
        }
        sent
    }

    fn deliver(&mut self, src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, payload: &[u8]) {
        let frame = hostio::udp_frame(
            &Route {
                src_mac: HGW_MAC,
                dst_mac: MAC,
                src,
                dst,
                hop_limit: 64,
            },
            sport,
            dport,
            payload,
        );
        assert!(self.wan.handle_frame(self.now, &frame));
    }

    /// The FLET'S RA: M and O as given, a /64 prefix, no RDNSS.
    fn ra(&mut self, managed: bool, prefix: Ipv6Addr, preferred: u32) {
        let ra = RaRepr {
            cur_hop_limit: 64,
            managed,
            other: true,
            router_lifetime: 1800,
            source_lladdr: Some(HGW_MAC),
            prefixes: vec![PrefixInfo {
                prefix,
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                valid_lifetime: 86400,
                preferred_lifetime: preferred,
            }],
            ..RaRepr::default()
        };
        let frame = hostio::icmpv6_frame(
            &Route {
                src_mac: HGW_MAC,
                dst_mac: hostio::multicast_mac(hostio::ALL_NODES),
                src: HGW,
                dst: hostio::ALL_NODES,
                hop_limit: 255,
            },
            &ra.emit().unwrap(),
        );
        assert!(self.wan.handle_frame(self.now, &frame));
    }

    fn reply_to(&mut self, request: &Message, pd: bool) {
        let mut reply = Message::new_with_id(MessageType::Reply, request.xid());
        let opts = reply.opts_mut();
        let Some(DhcpOption::ClientId(id)) = request.opts().get(OptionCode::ClientId) else {
            panic!("no client id")
        };
        opts.insert(DhcpOption::ClientId(id.clone()));
        opts.insert(DhcpOption::ServerId(vec![0, 3, 0, 1, 2, 0, 0, 0, 3, 1]));
        opts.insert(DhcpOption::DomainNameServers(vec![DNS]));
        if pd {
            opts.insert(DhcpOption::RapidCommit);
            let Some(DhcpOption::IAPD(ia)) = request.opts().get(OptionCode::IAPD) else {
                panic!("no IA_PD")
            };
            let mut pd_opts = DhcpOptions::new();
            pd_opts.insert(DhcpOption::IAPrefix(IAPrefix {
                preferred_lifetime: 3600,
                valid_lifetime: 7200,
                prefix_len: 60,
                prefix_ip: "2001:db8:0:110::".parse().unwrap(),
                opts: DhcpOptions::new(),
            }));
            opts.insert(DhcpOption::IAPD(IAPD {
                id: ia.id,
                t1: 1800,
                t2: 2880,
                opts: pd_opts,
            }));
        }
        let ll = crate::iface::link_local(&MAC);
        self.deliver(HGW, 547, ll, 546, &reply.to_vec().unwrap());
    }
}

/// Issue 19: with no DHCPv6-PD configured, an RA with O=1 and no RDNSS
/// gets an Information-request (never a Solicit); its DNS server resolves
/// the AFTR name; the LAN proxies the WAN /64 at once (nothing could
/// delegate), from the router's WAN address, which is also the B4.
#[test]
fn ra_only_line_learns_dns_by_information_request_and_proxies_the_wan_64() {
    let (mut b, dir) = Bench::new("ir", "false");
    b.udp_sent();
    b.ra(false, WAN64, 14400);
    let sent = b.run(2);
    assert!(
        sent.iter()
            .all(|m| m.msg_type() == MessageType::InformationRequest),
        "only Information-request: {:?}",
        sent.iter().map(|m| m.msg_type()).collect::<Vec<_>>()
    );
    let ir = sent.first().expect("an Information-request").clone();
    assert!(
        b.wan.dns_servers(b.now).is_empty(),
        "no RDNSS, no reply yet"
    );
    b.reply_to(&ir, false);
    assert_eq!(b.wan.dns_servers(b.now), vec![DNS]);

    let addr = b.wan.ra.addresses()[0].addr;
    b.usable.push(addr);
    let queries: Vec<_> = b
        .udp_sent()
        .into_iter()
        .filter(|u| u.2 == hostio::DNS_PORT)
        .collect();
    assert_eq!(queries.len(), 1, "the AAAA query for the AFTR");
    assert_eq!(queries[0].0, DNS, "sent to the server the Reply named");
    // Answer it (header + question, one AAAA record).
    let q = &queries[0].3;
    let mut end = 12;
    while q[end] != 0 {
        end += 1 + usize::from(q[end]);
    }
    end += 5;
    let mut msg = q[..end].to_vec();
    msg[2] |= 0x80;
    msg[3] |= 0x80;
    msg[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
    msg.extend_from_slice(&[0xc0, 0x0c, 0, 28, 0, 1, 0, 0, 0x0e, 0x10, 0, 16]);
    msg.extend_from_slice(&AFTR.octets());
    b.deliver(DNS, 53, addr, queries[0].1, &msg);
    b.udp_sent();

    let l = b.wan.learned(&b.usable);
    assert_eq!(l.aftr, Some(AFTR));
    assert_eq!(l.b4, Some(addr));
    assert!(l.proxied);
    assert_eq!(l.lan_prefix, Some(WAN64));
    assert_eq!(l.lan_address, Some(addr), "the WAN address serves the LAN");
    assert_eq!(b.wan.lan_mode.current(), LanV6::Proxy(WAN64));
    let _ = std::fs::remove_dir_all(dir);
}

/// With DHCPv6-PD configured and M=0: a server that never delegates gets
/// the M=0 grace (5 s) and the LAN proxies; the Information-request runs
/// meanwhile; a delegation arriving later replaces the proxied /64.
#[test]
fn auto_proxies_after_the_grace_and_a_late_delegation_wins() {
    let (mut b, dir) = Bench::new("late", "{ prefix_hint: 60 }");
    b.udp_sent();
    b.ra(false, WAN64, 14400);
    let addr = b.wan.ra.addresses()[0].addr;
    b.usable.push(addr);
    let sent = b.run(3);
    assert!(sent.iter().any(|m| m.msg_type() == MessageType::Solicit));
    assert!(sent
        .iter()
        .any(|m| m.msg_type() == MessageType::InformationRequest));
    assert_eq!(b.wan.lan_mode.current(), LanV6::Waiting);
    assert_eq!(b.wan.learned(&b.usable).lan_prefix, None);
    let solicits = b.run(4);
    assert_eq!(b.wan.lan_mode.current(), LanV6::Proxy(WAN64));
    assert!(b.wan.learned(&b.usable).proxied);

    // The PD server comes up: the next Solicit is answered.
    let later = b.run(60);
    let solicit = later
        .iter()
        .chain(solicits.iter())
        .rfind(|m| m.msg_type() == MessageType::Solicit)
        .expect("Solicit retransmitted")
        .clone();
    b.reply_to(&solicit, true);
    let l = b.wan.learned(&b.usable);
    assert!(!l.proxied);
    assert_eq!(l.lan_prefix, Some("2001:db8:0:110::".parse().unwrap()));
    b.udp_sent();
    assert_eq!(b.wan.lan_mode.current(), LanV6::Pd);
    let _ = std::fs::remove_dir_all(dir);
}

/// The WAN /64 changes: the proxy follows the new one, with the lifetimes
/// of the WAN RA bounding the LAN's.
#[test]
fn the_proxied_64_follows_wan_renumbering_with_the_wan_lifetimes() {
    let (mut b, dir) = Bench::new("renum", "false");
    b.udp_sent();
    b.ra(false, WAN64, 600);
    b.run(1);
    let (p, preferred, valid) = b.wan.proxied_prefix(b.now).expect("proxied");
    assert_eq!(p, WAN64);
    let left = preferred
        .unwrap()
        .saturating_duration_since(b.now)
        .as_secs();
    assert!((598..=600).contains(&left), "{left}");
    assert!(valid.unwrap() > preferred.unwrap());
    let new64: Ipv6Addr = "2001:db8:0:200::".parse().unwrap();
    // The gateway deprecates the old /64 and announces the new one.
    b.ra(false, WAN64, 0);
    b.ra(false, new64, 14400);
    b.run(1);
    assert_eq!(b.wan.lan_mode.current(), LanV6::Proxy(new64));
    assert_eq!(b.wan.learned(&b.usable).lan_prefix, Some(new64));
    let _ = std::fs::remove_dir_all(dir);
}
