//! Server tests: a fake clock (`t0 + n seconds`), client messages built
//! with dhcproto (malformed ones by hand), replies decoded with dhcproto and
//! checked on the raw bytes where dhcproto would hide something.

use super::*;
use crate::jitter::Jitter;

use dhcproto::v6::{
    DhcpOption, IAAddr, Message, MessageType, OptionCode, Status, IANA, IAPD, IATA, ORO,
};
use dhcproto::{Decodable, Decoder, Encodable};

const SRC: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x1c2d, 0x3eff, 0xfe4f, 0x5a6b);
const NET: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0);
const NET2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 7, 8, 0, 0, 0, 0);
const IAID: u32 = 0x0102_0304;
const XID: [u8; 3] = [0xab, 0xcd, 0xef];

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn server_duid() -> Vec<u8> {
    vec![0, 3, 0, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55]
}

/// DUID-LL of a made-up MAC ending in `n`.
fn client_duid(n: u8) -> Vec<u8> {
    vec![0, 3, 0, 1, 0x52, 0x54, 0x00, 0x00, 0x00, n]
}

fn config(mode: Mode) -> Dhcp6sConfig {
    Dhcp6sConfig {
        server_duid: server_duid(),
        mode,
        dns: vec![
            Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 1),
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x53),
        ],
        domains: vec!["home.arpa".into(), "lan.home.arpa.".into()],
        ..Dhcp6sConfig::default()
    }
}

/// The LAN /64 with lifetimes far beyond the configured ones.
fn long_prefix(t0: Instant, net: Ipv6Addr) -> PrefixState {
    PrefixState {
        prefix: net,
        preferred_until: Some(t0 + secs(86_400)),
        valid_until: Some(t0 + secs(2 * 86_400)),
    }
}

fn server(mode: Mode, t0: Instant) -> Dhcp6Server {
    let mut s = Dhcp6Server::new(config(mode), 7);
    s.set_prefix(t0, Some(long_prefix(t0, NET)), &[]);
    s
}

/// A client message, encoded by dhcproto.
#[derive(Clone)]
struct Msg {
    kind: MessageType,
    client: Option<Vec<u8>>,
    server: Option<Vec<u8>>,
    na: Vec<(u32, Vec<Ipv6Addr>)>,
    ta: Vec<(u32, Vec<Ipv6Addr>)>,
    pd: Vec<u32>,
    rapid: bool,
}

impl Msg {
    fn new(kind: MessageType) -> Self {
        Self {
            kind,
            client: Some(client_duid(1)),
            server: None,
            na: Vec::new(),
            ta: Vec::new(),
            pd: Vec::new(),
            rapid: false,
        }
    }

    fn client(mut self, duid: Vec<u8>) -> Self {
        self.client = Some(duid);
        self
    }

    fn no_client(mut self) -> Self {
        self.client = None;
        self
    }

    fn server(mut self, duid: Vec<u8>) -> Self {
        self.server = Some(duid);
        self
    }

    fn ours(self) -> Self {
        self.server(server_duid())
    }

    fn na(mut self, iaid: u32, addrs: &[Ipv6Addr]) -> Self {
        self.na.push((iaid, addrs.to_vec()));
        self
    }

    fn ta(mut self, iaid: u32, addrs: &[Ipv6Addr]) -> Self {
        self.ta.push((iaid, addrs.to_vec()));
        self
    }

    fn pd(mut self, iaid: u32) -> Self {
        self.pd.push(iaid);
        self
    }

    fn rapid(mut self) -> Self {
        self.rapid = true;
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut m = Message::new_with_id(self.kind, XID);
        let opts = m.opts_mut();
        if let Some(id) = &self.client {
            opts.insert(DhcpOption::ClientId(id.clone()));
        }
        if let Some(id) = &self.server {
            opts.insert(DhcpOption::ServerId(id.clone()));
        }
        opts.insert(DhcpOption::ElapsedTime(0));
        opts.insert(DhcpOption::ORO(ORO {
            opts: vec![OptionCode::DomainNameServers, OptionCode::DomainSearchList],
        }));
        if self.rapid {
            opts.insert(DhcpOption::RapidCommit);
        }
        let iaaddrs = |addrs: &[Ipv6Addr]| {
            addrs
                .iter()
                .map(|a| {
                    DhcpOption::IAAddr(IAAddr {
                        addr: *a,
                        preferred_life: 0,
                        valid_life: 0,
                        opts: Default::default(),
                    })
                })
                .collect()
        };
        for (id, addrs) in &self.na {
            opts.insert(DhcpOption::IANA(IANA {
                id: *id,
                t1: 0,
                t2: 0,
                opts: iaaddrs(addrs),
            }));
        }
        for (id, addrs) in &self.ta {
            opts.insert(DhcpOption::IATA(IATA {
                id: *id,
                opts: iaaddrs(addrs),
            }));
        }
        for id in &self.pd {
            opts.insert(DhcpOption::IAPD(IAPD {
                id: *id,
                t1: 0,
                t2: 0,
                opts: Default::default(),
            }));
        }
        m.to_vec().expect("test message encodes")
    }
}

fn decode(bytes: &[u8]) -> Message {
    let m = Message::decode(&mut Decoder::new(bytes)).expect("reply decodes");
    // dhcproto stops silently at a bad option: the counts must agree.
    assert_eq!(m.opts().iter().count(), raw_options(bytes).len());
    m
}

/// Top-level (code, body) of a payload, asserting exact framing.
fn raw_options(payload: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = &payload[4..];
    while !rest.is_empty() {
        assert!(rest.len() >= 4, "truncated option header");
        let code = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        assert!(rest.len() >= 4 + len, "option {code} overruns");
        out.push((code, rest[4..4 + len].to_vec()));
        rest = &rest[4 + len..];
    }
    out
}

fn codes(payload: &[u8]) -> Vec<u16> {
    let mut codes: Vec<u16> = raw_options(payload).iter().map(|(c, _)| *c).collect();
    codes.sort_unstable();
    codes
}

fn ia_na(m: &Message, iaid: u32) -> IANA {
    m.opts()
        .iter()
        .find_map(|o| match o {
            DhcpOption::IANA(na) if na.id == iaid => Some(na.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no IA_NA {iaid:#x} in {m:?}"))
}

/// (address, preferred, valid) of each IAADDR.
fn addrs(na: &IANA) -> Vec<(Ipv6Addr, u32, u32)> {
    na.opts
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IAAddr(a) => Some((a.addr, a.preferred_life, a.valid_life)),
            _ => None,
        })
        .collect()
}

fn ia_status(opts: &dhcproto::v6::DhcpOptions) -> Option<Status> {
    opts.iter().find_map(|o| match o {
        DhcpOption::StatusCode(s) => Some(s.status),
        _ => None,
    })
}

fn top_status(m: &Message) -> Option<Status> {
    ia_status(m.opts())
}

fn has(m: &Message, code: OptionCode) -> bool {
    m.opts().get(code).is_some()
}

/// Solicit + Request for `client`/`iaid`; returns the bound address.
fn bind(s: &mut Dhcp6Server, now: Instant, client: Vec<u8>, iaid: u32) -> Ipv6Addr {
    let adv = s
        .handle(
            now,
            SRC,
            &Msg::new(MessageType::Solicit)
                .client(client.clone())
                .na(iaid, &[])
                .bytes(),
        )
        .expect("advertise");
    let offered = addrs(&ia_na(&decode(&adv), iaid))[0].0;
    let reply = s
        .handle(
            now,
            SRC,
            &Msg::new(MessageType::Request)
                .client(client)
                .ours()
                .na(iaid, &[offered])
                .bytes(),
        )
        .expect("reply");
    let got = addrs(&ia_na(&decode(&reply), iaid));
    assert_eq!(got[0].0, offered);
    offered
}

fn lease_of(s: &Dhcp6Server, now: Instant, addr: Ipv6Addr) -> Option<LeaseInfo> {
    s.leases(now).into_iter().find(|l| l.addr == addr)
}

#[test]
fn information_request_reply_has_exactly_the_options() {
    let t0 = Instant::now();
    for mode in [Mode::Stateless, Mode::Stateful] {
        let mut s = server(mode, t0);
        let bytes = s
            .handle(t0, SRC, &Msg::new(MessageType::InformationRequest).bytes())
            .expect("reply");
        assert_eq!(&bytes[..4], &[7, 0xab, 0xcd, 0xef]);
        assert_eq!(codes(&bytes), vec![1, 2, 23, 24, 32]);
        let m = decode(&bytes);
        assert_eq!(m.msg_type(), MessageType::Reply);
        assert_eq!(
            m.opts().get(OptionCode::ServerId),
            Some(&DhcpOption::ServerId(server_duid()))
        );
        assert_eq!(
            m.opts().get(OptionCode::ClientId),
            Some(&DhcpOption::ClientId(client_duid(1)))
        );
        assert_eq!(
            m.opts().get(OptionCode::DomainNameServers),
            Some(&DhcpOption::DomainNameServers(config(mode).dns))
        );
        let raw = raw_options(&bytes);
        let body = |code: u16| raw.iter().find(|(c, _)| *c == code).unwrap().1.clone();
        // Uncompressed names (RFC 8415 10), both ending in the root label.
        assert_eq!(
            body(24),
            b"\x04home\x04arpa\x00\x03lan\x04home\x04arpa\x00".to_vec()
        );
        assert_eq!(body(32), 86_400u32.to_be_bytes().to_vec());
        assert_eq!(s.counters().rx_information_request, 1);
        assert_eq!(s.counters().tx_reply, 1);
        assert!(s.leases(t0).is_empty());
    }
}

#[test]
fn information_request_variants() {
    let t0 = Instant::now();
    let mut s = server(Mode::Stateless, t0);
    // No Client Identifier: allowed, and none echoed.
    let bytes = s
        .handle(
            t0,
            SRC,
            &Msg::new(MessageType::InformationRequest)
                .no_client()
                .bytes(),
        )
        .expect("reply");
    assert_eq!(codes(&bytes), vec![2, 23, 24, 32]);
    // Our Server Identifier: answered; another server's: dropped.
    assert!(s
        .handle(
            t0,
            SRC,
            &Msg::new(MessageType::InformationRequest).ours().bytes()
        )
        .is_some());
    let other = Msg::new(MessageType::InformationRequest).server(client_duid(9));
    assert_eq!(s.handle(t0, SRC, &other.bytes()), None);
    assert_eq!(s.counters().drop_wrong_server_id, 1);
    // An IA in an Information-Request: dropped (RFC 8415 16.12).
    let with_ia = Msg::new(MessageType::InformationRequest).na(1, &[]);
    assert_eq!(s.handle(t0, SRC, &with_ia.bytes()), None);
    assert_eq!(s.counters().drop_ia_in_information_request, 1);

    // Refresh time clamped to IRT_MINIMUM, empty lists omitted.
    s.set_config(Dhcp6sConfig {
        info_refresh: secs(5),
        dns: Vec::new(),
        domains: vec!["bad domain".into()],
        ..config(Mode::Stateless)
    });
    let bytes = s
        .handle(t0, SRC, &Msg::new(MessageType::InformationRequest).bytes())
        .expect("reply");
    assert_eq!(codes(&bytes), vec![1, 2, 32]);
    assert_eq!(raw_options(&bytes)[2].1, 600u32.to_be_bytes().to_vec());
}

#[test]
fn stateless_mode_answers_solicit_and_request_with_noaddrsavail_and_options() {
    let t0 = Instant::now();
    let mut s = server(Mode::Stateless, t0);
    let solicit = Msg::new(MessageType::Solicit).na(IAID, &[]);
    let m = decode(&s.handle(t0, SRC, &solicit.bytes()).expect("advertise"));
    assert_eq!(m.msg_type(), MessageType::Advertise);
    let na = ia_na(&m, IAID);
    assert!(addrs(&na).is_empty());
    assert_eq!(ia_status(&na.opts), Some(Status::NoAddrsAvail));
    assert!(has(&m, OptionCode::DomainNameServers));
    assert!(has(&m, OptionCode::DomainSearchList));
    assert!(!has(&m, OptionCode::Preference));

    // Rapid Commit changes nothing without addresses.
    let m = decode(&s.handle(t0, SRC, &solicit.clone().rapid().bytes()).unwrap());
    assert_eq!(m.msg_type(), MessageType::Advertise);
    assert!(!has(&m, OptionCode::RapidCommit));

    // A Solicit without IA (options only) gets the options.
    let m = decode(
        &s.handle(t0, SRC, &Msg::new(MessageType::Solicit).bytes())
            .unwrap(),
    );
    assert!(has(&m, OptionCode::DomainNameServers));

    for kind in [MessageType::Request, MessageType::Renew] {
        let msg = Msg::new(kind).ours().na(IAID, &[]);
        let m = decode(&s.handle(t0, SRC, &msg.bytes()).expect("reply"));
        assert_eq!(m.msg_type(), MessageType::Reply);
        assert_eq!(ia_status(&ia_na(&m, IAID).opts), Some(Status::NoAddrsAvail));
        assert!(has(&m, OptionCode::DomainNameServers));
    }
    let m = decode(
        &s.handle(
            t0,
            SRC,
            &Msg::new(MessageType::Rebind).na(IAID, &[]).bytes(),
        )
        .unwrap(),
    );
    assert_eq!(ia_status(&ia_na(&m, IAID).opts), Some(Status::NoAddrsAvail));
    assert!(s.leases(t0).is_empty());
    assert_eq!(s.counters().no_addrs_avail, 5);
    assert_eq!(s.counters().tx_advertise, 3);
}

#[test]
fn stateful_solicit_advertise_request_reply() {
    let t0 = Instant::now();
    let mut s = server(Mode::Stateful, t0);
    let adv = s
        .handle(
            t0,
            SRC,
            &Msg::new(MessageType::Solicit).na(IAID, &[]).bytes(),
        )
        .unwrap();
    assert_eq!(&adv[..4], &[2, 0xab, 0xcd, 0xef]);
    let m = decode(&adv);
    assert_eq!(m.msg_type(), MessageType::Advertise);
    assert_eq!(
        m.opts().get(OptionCode::Preference),
        Some(&DhcpOption::Preference(255))
    );
    let na = ia_na(&m, IAID);
    assert_eq!((na.t1, na.t2), (1350, 2160));
    let offered = addrs(&na);
    assert_eq!(offered.len(), 1);
    let (addr, preferred, valid) = offered[0];
    assert_eq!((preferred, valid), (2700, 5400));
    assert_eq!(mask64(addr), NET);
    assert!(!reserved_iid(addr));
    let lease = lease_of(&s, t0, addr).unwrap();
    assert_eq!(lease.state, "advertised");
    assert_eq!(lease.expires, t0 + ADVERTISE_HOLD);
    assert_eq!(lease.duid_hex, "000300015254000000".to_string() + "01");
    assert!(!s.take_dirty(), "an advertisement is not persisted");
    assert_eq!(s.poll(t0), Some(t0 + ADVERTISE_HOLD));

    let t1 = t0 + secs(2);
    let request = Msg::new(MessageType::Request).ours().na(IAID, &[addr]);
    let reply = s.handle(t1, SRC, &request.bytes()).unwrap();
    let m = decode(&reply);
    assert_eq!(m.msg_type(), MessageType::Reply);
    assert_eq!(addrs(&ia_na(&m, IAID)), vec![(addr, 2700, 5400)]);
    assert!(has(&m, OptionCode::DomainNameServers));
    let lease = lease_of(&s, t1, addr).unwrap();
    assert_eq!((lease.state, lease.iaid), ("bound", IAID));
    assert_eq!(lease.expires, t1 + secs(5400));
    assert!(s.take_dirty());
    assert!(!s.take_dirty());
    assert_eq!(s.poll(t1), Some(t1 + secs(5400)));
    assert_eq!(s.counters().bindings, 1);

    // A second Solicit from the bound client advertises the same address
    // and does not shorten the binding.
    let m = decode(
        &s.handle(
            t1,
            SRC,
            &Msg::new(MessageType::Solicit).na(IAID, &[]).bytes(),
        )
        .unwrap(),
    );
    assert_eq!(addrs(&ia_na(&m, IAID))[0].0, addr);
    assert_eq!(lease_of(&s, t1, addr).unwrap().state, "bound");

    // Expiry without renewal.
    let end = t1 + secs(5400);
    assert_eq!(s.poll(end), None);
    assert!(s.leases(end).is_empty());
    assert_eq!(s.counters().expirations, 1);
    assert!(s.take_dirty());
}

#[test]
fn rapid_commit_binds_at_once() {
    let t0 = Instant::now();
    let mut s = server(Mode::Stateful, t0);
    let msg = Msg::new(MessageType::Solicit).na(IAID, &[]).rapid();
    let bytes = s.handle(t0, SRC, &msg.bytes()).unwrap();
    let m = decode(&bytes);
    assert_eq!(m.msg_type(), MessageType::Reply);
    assert!(has(&m, OptionCode::RapidCommit));
    assert!(!has(&m, OptionCode::Preference));
    let (addr, _, valid) = addrs(&ia_na(&m, IAID))[0];
    assert_eq!(valid, 5400);
    assert_eq!(lease_of(&s, t0, addr).unwrap().state, "bound");
    assert_eq!(s.counters().rapid_commits, 1);
    assert_eq!(s.counters().tx_reply, 1);
    assert!(s.take_dirty());

    // Without a prefix nothing can be committed: a plain Advertise.
    let mut s = Dhcp6Server::new(config(Mode::Stateful), 1);
    let m = decode(&s.handle(t0, SRC, &msg.bytes()).unwrap());
    assert_eq!(m.msg_type(), MessageType::Advertise);
    assert_eq!(ia_status(&ia_na(&m, IAID).opts), Some(Status::NoAddrsAvail));
}

#[test]
fn address_is_stable_per_duid_and_iaid_across_instances() {
    let t0 = Instant::now();
    let mut a = server(Mode::Stateful, t0);
    let first = bind(&mut a, t0, client_duid(1), IAID);
    let other_iaid = bind(&mut a, t0, client_duid(1), IAID + 1);
    let other_duid = bind(&mut a, t0, client_duid(2), IAID);
    assert_ne!(first, other_iaid);
    assert_ne!(first, other_duid);

    // A new instance (other seed, nothing imported) gives the same ones.
    let mut b = Dhcp6Server::new(config(Mode::Stateful), 0xdead_beef);
    b.set_prefix(t0, Some(long_prefix(t0, NET)), &[]);
    assert_eq!(bind(&mut b, t0, client_duid(2), IAID), other_duid);
    assert_eq!(bind(&mut b, t0, client_duid(1), IAID), first);
    assert_eq!(bind(&mut b, t0, client_duid(1), IAID + 1), other_iaid);

    // Another router (server DUID) derives other addresses.
    let mut c = Dhcp6Server::new(
        Dhcp6sConfig {
            server_duid: client_duid(77),
            ..config(Mode::Stateful)
        },
        7,
    );
    c.set_prefix(t0, Some(long_prefix(t0, NET)), &[]);
    let adv = c
        .handle(
            t0,
            SRC,
            &Msg::new(MessageType::Solicit).na(IAID, &[]).bytes(),
        )
        .unwrap();
    assert_ne!(addrs(&ia_na(&decode(&adv), IAID))[0].0, first);
}

#[test]
fn derived_addresses_skip_reserved_and_taken_ones() {
    let net = NET;
    for probe in 0..1000 {
        let addr = derive_address(net, &server_duid(), &client_duid(3), probe, 0);
        assert_eq!(mask64(addr), net);
    }
    assert!(reserved_iid(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0)));
    assert!(reserved_iid(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 1)));
    assert!(reserved_iid(Ipv6Addr::new(
        0x2001, 0xdb8, 1, 2, 0xfdff, 0xffff, 0xffff, 0xff80
    )));
    assert!(reserved_iid(Ipv6Addr::new(
        0x2001, 0xdb8, 1, 2, 0x0200, 0x5eff, 0xfe00, 0x5213
    )));
    assert!(!reserved_iid(Ipv6Addr::new(
        0x2001, 0xdb8, 1, 2, 0, 0, 0, 2
    )));

    // A client hinting at an address held by another client gets its own.
    let t0 = Instant::now();
    let mut s = server(Mode::Stateful, t0);
    let taken = bind(&mut s, t0, client_duid(1), IAID);
    let msg = Msg::new(MessageType::Solicit)
        .client(client_duid(2))
        .na(IAID, &[taken]);
    let m = decode(&s.handle(t0, SRC, &msg.bytes()).unwrap());
    let got = addrs(&ia_na(&m, IAID))[0].0;
    assert_ne!(got, taken);
    assert_eq!(
        got,
        derive_address(NET, &server_duid(), &client_duid(2), IAID, 0)
    );

    // A free hint in the /64 is honoured; a reserved one is not.
    let hint = Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0x99);
    let msg = Msg::new(MessageType::Solicit).client(client_duid(3)).na(
        IAID,
        &[Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 1), hint],
    );
    let m = decode(&s.handle(t0, SRC, &msg.bytes()).unwrap());
    assert_eq!(addrs(&ia_na(&m, IAID))[0].0, hint);
}

#[test]
fn renew_and_rebind_extend_the_binding() {
    let t0 = Instant::now();
    let mut s = server(Mode::Stateful, t0);
    let addr = bind(&mut s, t0, client_duid(1), IAID);
    s.take_dirty();

    let t1 = t0 + secs(1350);
    let renew = Msg::new(MessageType::Renew).ours().na(IAID, &[addr]);
    let m = decode(&s.handle(t1, SRC, &renew.bytes()).unwrap());
    let na = ia_na(&m, IAID);
    assert_eq!((na.t1, na.t2), (1350, 2160));
    assert_eq!(addrs(&na), vec![(addr, 2700, 5400)]);
    assert_eq!(lease_of(&s, t1, addr).unwrap().expires, t1 + secs(5400));
    assert_eq!(s.counters().renewals, 1);
    assert!(s.take_dirty());

    // Rebind: no Server Identifier.
    let t2 = t1 + secs(2160);
    let rebind = Msg::new(MessageType::Rebind).na(IAID, &[addr]);
    let m = decode(&s.handle(t2, SRC, &rebind.bytes()).unwrap());
    assert_eq!(addrs(&ia_na(&m, IAID)), vec![(addr, 2700, 5400)]);
    assert_eq!(lease_of(&s, t2, addr).unwrap().expires, t2 + secs(5400));
    assert_eq!(s.counters().renewals, 2);

    // Identifier rules.
    assert_eq!(
        s.handle(t2, SRC, &rebind.clone().ours().bytes()),
        None,
        "Rebind must not carry a Server Identifier"
    );
    assert_eq!(s.counters().drop_unexpected_server_id, 1);
    let unaddressed = Msg::new(MessageType::Renew).na(IAID, &[addr]);
    assert_eq!(s.handle(t2, SRC, &unaddressed.bytes()), None);
    assert_eq!(s.counters().drop_missing_server_id, 1);
    let foreign = Msg::new(MessageType::Renew)
        .server(client_duid(99))
        .na(IAID, &[addr]);
    assert_eq!(s.handle(t2, SRC, &foreign.bytes()), None);
    assert_eq!(s.counters().drop_wrong_server_id, 1);

    // Renew after a restart without import: the binding is recreated with
    // the address the client has.
    let mut fresh = server(Mode::Stateful, t0);
    let m = decode(&fresh.handle(t2, SRC, &renew.bytes()).unwrap());
    assert_eq!(addrs(&ia_na(&m, IAID)), vec![(addr, 2700, 5400)]);
    assert_eq!(lease_of(&fresh, t2, addr).unwrap().state, "bound");
}

#[test]
fn release_frees_and_answers_success() {
    let t0 = Instant::now();
    let mut s = server(Mode::Stateful, t0);
    let addr = bind(&mut s, t0, client_duid(1), IAID);
    let kept = bind(&mut s, t0, client_duid(2), IAID);
    s.take_dirty();

    let release = Msg::new(MessageType::Release).ours().na(IAID, &[addr]);
    let bytes = s.handle(t0, SRC, &release.bytes()).unwrap();
    let m = decode(&bytes);
    assert_eq!(m.msg_type(), MessageType::Reply);
    assert_eq!(top_status(&m), Some(Status::Success));
    assert!(m.opts().get(OptionCode::IANA).is_none());
    assert_eq!(lease_of(&s, t0, addr), None);
    assert!(lease_of(&s, t0, kept).is_some());
    assert!(s.take_dirty());
    assert_eq!(s.counters().releases, 1);

    // Again: no binding any more.
    let m = decode(&s.handle(t0, SRC, &release.bytes()).unwrap());
    assert_eq!(top_status(&m), Some(Status::Success));
    assert_eq!(ia_status(&ia_na(&m, IAID).opts), Some(Status::NoBinding));

    // Releasing someone else's address does nothing.
    let theft = Msg::new(MessageType::Release).ours().na(IAID, &[kept]);
    s.handle(t0, SRC, &theft.bytes()).unwrap();
    assert!(lease_of(&s, t0, kept).is_some());

    // Release needs our Server Identifier.
    let blind = Msg::new(MessageType::Release)
        .client(client_duid(2))
        .na(IAID, &[kept]);
    assert_eq!(s.handle(t0, SRC, &blind.bytes()), None);
    assert!(lease_of(&s, t0, kept).is_some());
}

#[test]
fn declined_address_is_quarantined() {
    let t0 = Instant::now();
    let mut s = server(Mode::Stateful, t0);
    let addr = bind(&mut s, t0, client_duid(1), IAID);
    let decline = Msg::new(MessageType::Decline).ours().na(IAID, &[addr]);
    let m = decode(&s.handle(t0, SRC, &decline.bytes()).unwrap());
    assert_eq!(m.msg_type(), MessageType::Reply);
    assert_eq!(top_status(&m), Some(Status::Success));
    let lease = lease_of(&s, t0, addr).unwrap();
    assert_eq!(lease.state, "declined");
    assert_eq!(lease.expires, t0 + DECLINE_HOLD);
    assert_eq!(s.counters().declines, 1);

    // The client gets another address; nobody gets the declined one.
    let again = bind(&mut s, t0, client_duid(1), IAID);
    assert_ne!(again, addr);
    assert_eq!(
        again,
        derive_address(NET, &server_duid(), &client_duid(1), IAID, 1)
    );
    let thief = Msg::new(MessageType::Solicit)
        .client(client_duid(5))
        .na(IAID, &[addr]);
    let m = decode(&s.handle(t0, SRC, &thief.bytes()).unwrap());
    assert_ne!(addrs(&ia_na(&m, IAID))[0].0, addr);

    // Declining an IA without binding: NoBinding.
    let stranger = Msg::new(MessageType::Decline)
        .client(client_duid(8))
        .ours()
        .na(IAID, &[addr]);
    let m = decode(&s.handle(t0, SRC, &stranger.bytes()).unwrap());
    assert_eq!(ia_status(&ia_na(&m, IAID).opts), Some(Status::NoBinding));

    // The quarantine ends.
    s.poll(t0 + DECLINE_HOLD);
    assert_eq!(lease_of(&s, t0 + DECLINE_HOLD, addr), None);
}

#[test]
fn confirm_on_link_and_not() {
    let t0 = Instant::now();
    let mut s = server(Mode::Stateful, t0);
    let addr = bind(&mut s, t0, client_duid(1), IAID);
    let confirm = |addrs: &[Ipv6Addr]| Msg::new(MessageType::Confirm).na(IAID, addrs).bytes();

    let m = decode(&s.handle(t0, SRC, &confirm(&[addr])).unwrap());
    assert_eq!(m.msg_type(), MessageType::Reply);
    assert_eq!(top_status(&m), Some(Status::Success));
    assert!(m.opts().get(OptionCode::IANA).is_none());

    let elsewhere = Ipv6Addr::new(0x2001, 0xdb8, 9, 9, 0, 0, 0, 5);
    let m = decode(&s.handle(t0, SRC, &confirm(&[addr, elsewhere])).unwrap());
    assert_eq!(top_status(&m), Some(Status::NotOnLink));

    // IA_TA addresses count too.
    let ta = Msg::new(MessageType::Confirm).ta(5, &[elsewhere]).bytes();
    let m = decode(&s.handle(t0, SRC, &ta).unwrap());
    assert_eq!(top_status(&m), Some(Status::NotOnLink));

    // No addresses: no reply. A Server Identifier: dropped.
    assert_eq!(s.handle(t0, SRC, &confirm(&[])), None);
    assert_eq!(s.counters().drop_confirm_no_addresses, 1);
    let with_sid = Msg::new(MessageType::Confirm).ours().na(IAID, &[addr]);
    assert_eq!(s.handle(t0, SRC, &with_sid.bytes()), None);
    assert_eq!(s.counters().drop_unexpected_server_id, 1);

    // Without a prefix we cannot tell: no reply.
    let mut bare = Dhcp6Server::new(config(Mode::Stateful), 1);
    assert_eq!(bare.handle(t0, SRC, &confirm(&[addr])), None);
    assert_eq!(bare.counters().drop_confirm_no_prefix, 1);
    assert_eq!(bare.counters().rx_confirm, 1);
}

#[test]
fn lifetimes_are_capped_by_the_prefix() {
    let t0 = Instant::now();
    let mut s = Dhcp6Server::new(config(Mode::Stateful), 1);
    s.set_prefix(
        t0,
        Some(PrefixState {
            prefix: NET,
            preferred_until: Some(t0 + secs(1000)),
            valid_until: Some(t0 + secs(2000)),
        }),
        &[],
    );
    let msg = Msg::new(MessageType::Solicit).na(IAID, &[]).rapid();
    let m = decode(&s.handle(t0, SRC, &msg.bytes()).unwrap());
    let na = ia_na(&m, IAID);
    let (addr, preferred, valid) = addrs(&na)[0];
    assert_eq!((preferred, valid), (1000, 2000));
    assert_eq!((na.t1, na.t2), (500, 800));
    assert_eq!(lease_of(&s, t0, addr).unwrap().expires, t0 + secs(2000));

    // Deprecated prefix: preferred 0, the rest of the valid lifetime.
    let t1 = t0 + secs(1500);
    let renew = Msg::new(MessageType::Renew).ours().na(IAID, &[addr]);
    let m = decode(&s.handle(t1, SRC, &renew.bytes()).unwrap());
    let na = ia_na(&m, IAID);
    assert_eq!(addrs(&na), vec![(addr, 0, 500)]);
    assert_eq!((na.t1, na.t2), (0, 0));

    // Prefix gone: NoAddrsAvail, and the client's address back with 0.
    let t2 = t0 + secs(2000);
    let m = decode(&s.handle(t2, SRC, &renew.bytes()).unwrap());
    let na = ia_na(&m, IAID);
    assert_eq!(ia_status(&na.opts), Some(Status::NoAddrsAvail));
    assert_eq!(addrs(&na), vec![(addr, 0, 0)]);

    // Infinite prefix lifetimes: the configured ones.
    s.set_prefix(
        t2,
        Some(PrefixState {
            prefix: NET,
            preferred_until: None,
            valid_until: None,
        }),
        &[],
    );
    let m = decode(&s.handle(t2, SRC, &renew.bytes()).unwrap());
    assert_eq!(addrs(&ia_na(&m, IAID)), vec![(addr, 2700, 5400)]);
}

#[test]
fn renumbering_returns_the_old_address_with_zero_lifetimes() {
    let t0 = Instant::now();
    let mut s = server(Mode::Stateful, t0);
    let old = bind(&mut s, t0, client_duid(1), IAID);
    let other = bind(&mut s, t0, client_duid(2), IAID);
    s.take_dirty();

    let t1 = t0 + secs(100);
    s.set_prefix(t1, Some(long_prefix(t1, NET2)), &[NET]);
    assert!(!s.take_dirty(), "stale leases are kept");
    assert_eq!(s.leases(t1).len(), 2);

    for kind in [
        MessageType::Renew,
        MessageType::Rebind,
        MessageType::Request,
    ] {
        let mut msg = Msg::new(kind).na(IAID, &[old]);
        if kind != MessageType::Rebind {
            msg = msg.ours();
        }
        let m = decode(&s.handle(t1, SRC, &msg.bytes()).unwrap());
        let got = addrs(&ia_na(&m, IAID));
        assert_eq!(got.len(), 2, "{kind:?}: {got:?}");
        let (new, preferred, valid) = got[0];
        assert_eq!(mask64(new), NET2);
        assert_eq!(iid(new), iid(old), "same IID in the new /64");
        assert_eq!((preferred, valid), (2700, 5400));
        assert_eq!(got[1], (old, 0, 0));
    }
    // Even if the client does not list it, the stale lease is withdrawn.
    let bare = Msg::new(MessageType::Renew)
        .client(client_duid(2))
        .ours()
        .na(IAID, &[]);
    let m = decode(&s.handle(t1, SRC, &bare.bytes()).unwrap());
    let got = addrs(&ia_na(&m, IAID));
    assert_eq!(got.len(), 2);
    assert_eq!(mask64(got[0].0), NET2);
    assert_eq!(got[1], (other, 0, 0));

    // Confirm of the old address: NotOnLink.
    let confirm = Msg::new(MessageType::Confirm).na(IAID, &[old]);
    let m = decode(&s.handle(t1, SRC, &confirm.bytes()).unwrap());
    assert_eq!(top_status(&m), Some(Status::NotOnLink));

    // Once the old /64 is no longer listed, its leases go.
    s.take_dirty();
    s.set_prefix(t1, Some(long_prefix(t1, NET2)), &[]);
    assert!(s.take_dirty());
    assert!(s.leases(t1).iter().all(|l| mask64(l.addr) == NET2));
    assert_eq!(s.leases(t1).len(), 2);

    // A Request hinting at an address off the link gets it back with 0.
    let foreign = Ipv6Addr::new(0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 7);
    let msg = Msg::new(MessageType::Request)
        .client(client_duid(3))
        .ours()
        .na(IAID, &[foreign]);
    let m = decode(&s.handle(t1, SRC, &msg.bytes()).unwrap());
    let got = addrs(&ia_na(&m, IAID));
    assert_eq!(mask64(got[0].0), NET2);
    assert_eq!(got[1], (foreign, 0, 0));
}

#[test]
fn no_prefix_means_noaddrsavail() {
    let t0 = Instant::now();
    let mut s = Dhcp6Server::new(config(Mode::Stateful), 1);
    let m = decode(
        &s.handle(
            t0,
            SRC,
            &Msg::new(MessageType::Solicit).na(IAID, &[]).bytes(),
        )
        .unwrap(),
    );
    let na = ia_na(&m, IAID);
    assert_eq!(ia_status(&na.opts), Some(Status::NoAddrsAvail));
    assert!(addrs(&na).is_empty());
    assert_eq!(s.counters().no_addrs_avail, 1);
    // A prefix withdrawn (current None) keeps the table as it is.
    let mut s = server(Mode::Stateful, t0);
    let addr = bind(&mut s, t0, client_duid(1), IAID);
    s.set_prefix(t0, None, &[]);
    assert!(lease_of(&s, t0, addr).is_some());
    s.set_prefix(t0, Some(long_prefix(t0, NET)), &[]);
    assert_eq!(bind(&mut s, t0, client_duid(1), IAID), addr);
}

#[test]
fn ia_ta_and_ia_pd_are_refused() {
    let t0 = Instant::now();
    let mut s = server(Mode::Stateful, t0);
    let msg = Msg::new(MessageType::Solicit)
        .na(IAID, &[])
        .ta(7, &[])
        .pd(9);
    let m = decode(&s.handle(t0, SRC, &msg.bytes()).unwrap());
    assert_eq!(addrs(&ia_na(&m, IAID)).len(), 1);
    let ta = m
        .opts()
        .iter()
        .find_map(|o| match o {
            DhcpOption::IATA(ta) => Some(ta.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (ta.id, ia_status(&ta.opts)),
        (7, Some(Status::NoAddrsAvail))
    );
    let pd = m
        .opts()
        .iter()
        .find_map(|o| match o {
            DhcpOption::IAPD(pd) => Some(pd.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (pd.id, ia_status(&pd.opts)),
        (9, Some(Status::NoPrefixAvail))
    );
}

#[test]
fn messages_that_are_dropped_each_have_a_counter() {
    let t0 = Instant::now();
    let mut s = server(Mode::Stateful, t0);
    let solicit = Msg::new(MessageType::Solicit).na(IAID, &[]).bytes();

    assert_eq!(
        s.handle(t0, SRC, &Msg::new(MessageType::Solicit).no_client().bytes()),
        None
    );
    assert_eq!(s.counters().drop_no_client_id, 1);
    let with_sid = Msg::new(MessageType::Solicit).ours().bytes();
    assert_eq!(s.handle(t0, SRC, &with_sid), None);
    assert_eq!(s.counters().drop_unexpected_server_id, 1);
    let foreign = Msg::new(MessageType::Request)
        .server(client_duid(42))
        .na(IAID, &[])
        .bytes();
    assert_eq!(s.handle(t0, SRC, &foreign), None);
    assert_eq!(s.counters().drop_wrong_server_id, 1);

    let mut relay = vec![12, 0];
    relay.extend_from_slice(&[0; 32]);
    assert_eq!(s.handle(t0, SRC, &relay), None);
    assert_eq!(s.handle(t0, SRC, &[13, 0, 0, 0]), None);
    assert_eq!(s.counters().drop_relay, 2);
    for kind in [2u8, 7, 10, 14, 20, 255] {
        let mut msg = solicit.clone();
        msg[0] = kind;
        assert_eq!(s.handle(t0, SRC, &msg), None);
    }
    assert_eq!(s.counters().drop_unexpected_type, 6);

    let ff02 = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
    assert_eq!(s.handle(t0, ff02, &solicit), None);
    assert_eq!(s.handle(t0, Ipv6Addr::UNSPECIFIED, &solicit), None);
    assert_eq!(s.counters().drop_bad_source, 2);

    // Malformed: empty, short header, truncated option, bad lengths,
    // repeated identifiers.
    let mut malformed: Vec<Vec<u8>> = vec![vec![], vec![1, 2]];
    malformed.push(solicit[..solicit.len() - 1].to_vec());
    let mut long_len = solicit.clone();
    long_len[7] = long_len[7].wrapping_add(1); // Client ID length + 1
    malformed.push(long_len);
    let mut msg = vec![1, 0, 0, 1];
    msg.extend_from_slice(&[0, 14, 0, 1, 0]); // Rapid Commit with a body
    malformed.push(msg);
    let mut msg = vec![1, 0, 0, 1];
    msg.extend_from_slice(&[0, 1, 0, 0]); // empty Client ID
    malformed.push(msg);
    let mut msg = vec![1, 0, 0, 1];
    for _ in 0..2 {
        msg.extend_from_slice(&[0, 1, 0, 2, 0xaa, 0xbb]); // Client ID twice
    }
    malformed.push(msg);
    let mut msg = vec![1, 0, 0, 1, 0, 1, 0, 2, 0xaa, 0xbb];
    msg.extend_from_slice(&[0, 3, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0]); // short IA_NA
    malformed.push(msg);
    let mut msg = vec![1, 0, 0, 1, 0, 1, 0, 2, 0xaa, 0xbb];
    // IA_NA holding an IAADDR of 20 octets.
    msg.extend_from_slice(&[0, 3, 0, 36, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    msg.extend_from_slice(&[0, 5, 0, 20]);
    msg.extend_from_slice(&[0; 20]);
    malformed.push(msg);
    let mut msg = vec![1, 0, 0, 1, 0, 1, 0, 2, 0xaa, 0xbb];
    // IA_NA whose sub-option overruns it.
    msg.extend_from_slice(&[0, 3, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    msg.extend_from_slice(&[0, 13, 0, 9]);
    malformed.push(msg);
    let count = malformed.len() as u64;
    for msg in malformed {
        assert_eq!(s.handle(t0, SRC, &msg), None, "{msg:?}");
    }
    assert_eq!(s.counters().drop_malformed, count);

    // Unknown options and odd Status Code text are tolerated.
    let mut msg = vec![1, 0, 0, 1, 0, 1, 0, 2, 0xaa, 0xbb];
    msg.extend_from_slice(&[0x12, 0x34, 0, 3, 1, 2, 3]);
    msg.extend_from_slice(&[0, 13, 0, 3, 0, 0, 0xff]);
    assert!(s.handle(t0, SRC, &msg).is_some());

    // A server without a usable DUID answers nothing.
    let mut mute = Dhcp6Server::new(
        Dhcp6sConfig {
            server_duid: vec![1],
            ..config(Mode::Stateless)
        },
        1,
    );
    assert_eq!(mute.handle(t0, SRC, &solicit), None);
    assert_eq!(mute.counters().drop_unconfigured, 1);

    let c = s.counters();
    assert_eq!(c.tx_advertise + c.tx_reply + c.dropped(), 24);
    let names: Vec<&str> = c.named().iter().map(|(n, _)| *n).collect();
    for name in [
        "rx-solicit",
        "rx-request",
        "rx-renew",
        "rx-rebind",
        "rx-release",
        "rx-decline",
        "rx-confirm",
        "rx-information-request",
        "tx-advertise",
        "tx-reply",
        "drop-malformed",
        "drop-wrong-server-id",
        "drop-no-client-id",
        "drop-unexpected-type",
        "drop-relay",
        "no-addrs-avail",
        "table-full",
    ] {
        assert!(names.contains(&name), "{name}");
    }
}

#[test]
fn tables_are_bounded() {
    let t0 = Instant::now();
    let mut s = Dhcp6Server::new(
        Dhcp6sConfig {
            max_leases: 4,
            ..config(Mode::Stateful)
        },
        1,
    );
    s.set_prefix(t0, Some(long_prefix(t0, NET)), &[]);
    // Advertisements evict each other.
    for n in 0..10 {
        let msg = Msg::new(MessageType::Solicit)
            .client(client_duid(n))
            .na(IAID, &[]);
        let m = decode(
            &s.handle(t0 + secs(u64::from(n)), SRC, &msg.bytes())
                .unwrap(),
        );
        assert_eq!(addrs(&ia_na(&m, IAID)).len(), 1);
    }
    assert_eq!(s.leases(t0).len(), 4);
    // Bindings evict advertisements, never each other.
    for n in 20..24 {
        bind(&mut s, t0 + secs(10), client_duid(n), IAID);
    }
    assert!(s.leases(t0).iter().all(|l| l.state == "bound"));
    let msg = Msg::new(MessageType::Solicit)
        .client(client_duid(30))
        .na(IAID, &[]);
    let m = decode(&s.handle(t0 + secs(10), SRC, &msg.bytes()).unwrap());
    assert_eq!(ia_status(&ia_na(&m, IAID).opts), Some(Status::NoAddrsAvail));
    assert_eq!(s.counters().table_full, 1);
    assert_eq!(s.leases(t0).len(), 4);

    // One client: at most MAX_IAS_PER_CLIENT addresses; per message at
    // most wire::MAX_IAS IAs answered.
    let mut s = server(Mode::Stateful, t0);
    let mut msg = Msg::new(MessageType::Solicit);
    for iaid in 0..10 {
        msg = msg.na(iaid, &[]);
    }
    let bytes = s.handle(t0, SRC, &msg.bytes()).unwrap();
    let m = decode(&bytes);
    assert_eq!(
        m.opts()
            .iter()
            .filter(|o| matches!(o, DhcpOption::IANA(_)))
            .count(),
        wire::MAX_IAS
    );
    assert_eq!(s.counters().ias_ignored, 2);
    let mut msg = Msg::new(MessageType::Solicit);
    for iaid in 100..102 {
        msg = msg.na(iaid, &[]);
    }
    let m = decode(&s.handle(t0, SRC, &msg.bytes()).unwrap());
    assert_eq!(ia_status(&ia_na(&m, 100).opts), Some(Status::NoAddrsAvail));
    assert_eq!(s.counters().client_limit, 2);
    assert_eq!(s.leases(t0).len(), MAX_IAS_PER_CLIENT);
}

#[test]
fn switching_to_stateless_drops_the_table() {
    let t0 = Instant::now();
    let mut s = server(Mode::Stateful, t0);
    bind(&mut s, t0, client_duid(1), IAID);
    s.take_dirty();
    s.set_config(config(Mode::Stateless));
    assert!(s.leases(t0).is_empty());
    assert!(s.take_dirty());
    assert_eq!(s.poll(t0), None);
}

#[test]
fn export_import_round_trip() {
    let t0 = Instant::now();
    let wall = UNIX_EPOCH + secs(1_700_000_000);
    let mut s = server(Mode::Stateful, t0);
    let a = bind(&mut s, t0, client_duid(1), IAID);
    let b = bind(&mut s, t0, client_duid(2), 5);
    let declined = bind(&mut s, t0, client_duid(3), IAID);
    let decline = Msg::new(MessageType::Decline)
        .client(client_duid(3))
        .ours()
        .na(IAID, &[declined]);
    s.handle(t0, SRC, &decline.bytes()).unwrap();
    // An advertisement is not exported.
    let advertised = Msg::new(MessageType::Solicit)
        .client(client_duid(4))
        .na(1, &[]);
    s.handle(t0, SRC, &advertised.bytes()).unwrap();
    assert_eq!(s.leases(t0).len(), 4);

    let t1 = t0 + secs(100);
    let stored = s.export(t1, wall);
    assert_eq!(stored.len(), 3);
    let json = serde_json::to_string(&stored).unwrap();
    assert!(json.contains("\"declined\""));
    let back: Vec<StoredLease> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, stored);
    let first = stored.iter().find(|l| l.addr == a).unwrap();
    assert_eq!(first.expires, 1_700_000_000 + 5400 - 100);
    assert_eq!(first.duid_hex, to_hex(&client_duid(1)));
    assert_eq!(first.state, StoredState::Bound);

    // A restart 50 s later on another monotonic clock.
    let u0 = t0 + secs(10_000);
    let mut r = Dhcp6Server::new(config(Mode::Stateful), 99);
    r.import(u0, wall + secs(50), back);
    r.set_prefix(u0, Some(long_prefix(u0, NET)), &[]);
    assert_eq!(r.counters().import_rejected, 0);
    let leases = r.leases(u0);
    assert_eq!(leases.len(), 3);
    let la = leases.iter().find(|l| l.addr == a).unwrap();
    assert_eq!((la.state, la.iaid), ("bound", IAID));
    assert_eq!(la.expires, u0 + secs(5400 - 150));
    assert_eq!(
        leases.iter().find(|l| l.addr == declined).unwrap().state,
        "declined"
    );
    assert!(leases.iter().any(|l| l.addr == b && l.iaid == 5));
    assert!(!r.take_dirty(), "an import is not a change");
    assert_eq!(r.export(u0, wall + secs(50)).len(), 3);

    // The imported binding is used (Renew keeps the address).
    let renew = Msg::new(MessageType::Renew).ours().na(IAID, &[a]);
    let m = decode(&r.handle(u0, SRC, &renew.bytes()).unwrap());
    assert_eq!(addrs(&ia_na(&m, IAID)), vec![(a, 2700, 5400)]);
    assert_eq!(r.counters().renewals, 1);

    // Rejected and skipped entries.
    let mut bad = Dhcp6Server::new(config(Mode::Stateful), 1);
    let good = StoredLease {
        duid_hex: "000300015254000000aa".into(),
        iaid: 1,
        addr: Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0x42),
        expires: 1_700_000_100,
        state: StoredState::Bound,
    };
    let entries = vec![
        good.clone(),
        // Same address again.
        StoredLease {
            duid_hex: "0003000152540000bbbb".into(),
            ..good.clone()
        },
        // Same IA again in the same /64.
        StoredLease {
            addr: Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0x43),
            ..good.clone()
        },
        StoredLease {
            duid_hex: "zz".into(),
            addr: Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0x44),
            ..good.clone()
        },
        StoredLease {
            addr: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
            iaid: 2,
            ..good.clone()
        },
        StoredLease {
            addr: Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 1),
            iaid: 3,
            ..good.clone()
        },
        // Expired: skipped silently.
        StoredLease {
            expires: 1_600_000_000,
            iaid: 4,
            addr: Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0x45),
            ..good.clone()
        },
        // Absurdly far: capped.
        StoredLease {
            expires: u64::MAX,
            iaid: 5,
            addr: Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0x46),
            ..good.clone()
        },
    ];
    bad.import(t0, wall, entries);
    assert_eq!(bad.counters().import_rejected, 5);
    let leases = bad.leases(t0);
    assert_eq!(leases.len(), 2);
    assert_eq!(leases[0].expires, t0 + secs(100));
    assert_eq!(leases[1].expires, t0 + MAX_LIFETIME);

    // Stateless servers import nothing.
    let mut stateless = Dhcp6Server::new(config(Mode::Stateless), 1);
    stateless.import(t0, wall, vec![good]);
    assert!(stateless.leases(t0).is_empty());
}

#[test]
fn hex_helpers() {
    assert_eq!(to_hex(&[0, 0xab, 0x10]), "00ab10");
    assert_eq!(from_hex("00AB10"), Some(vec![0, 0xab, 0x10]));
    assert_eq!(from_hex("0"), None);
    assert_eq!(from_hex("0g"), None);
    assert_eq!(from_hex("+1"), None);
    assert_eq!(from_hex(""), Some(vec![]));
}

#[test]
fn domain_encoding() {
    let mut out = Vec::new();
    assert!(wire::encode_domain("a-b.c_d.", &mut out));
    assert_eq!(out, b"\x03a-b\x03c_d\x00");
    for bad in ["", ".", "a..b", "a b", "ä.de", &"x".repeat(64)] {
        let mut out = Vec::new();
        assert!(!wire::encode_domain(bad, &mut out), "{bad:?}");
        assert!(out.is_empty());
    }
    let long = vec!["abcdefghi"; 26].join(".");
    assert!(!wire::encode_domain(&long, &mut Vec::new()));
}

/// Valid client messages of every kind, addressed so that they reach the
/// deep paths of a stateful server.
fn fuzz_corpus(bound: Ipv6Addr) -> Vec<Vec<u8>> {
    use MessageType as T;
    let elsewhere = Ipv6Addr::new(0x2001, 0xdb8, 5, 5, 0, 0, 0, 5);
    vec![
        Msg::new(T::Solicit).na(IAID, &[]).bytes(),
        Msg::new(T::Solicit)
            .na(IAID, &[bound])
            .rapid()
            .ta(3, &[])
            .pd(4)
            .bytes(),
        Msg::new(T::Request).ours().na(IAID, &[bound]).bytes(),
        Msg::new(T::Renew)
            .ours()
            .na(IAID, &[bound, elsewhere])
            .bytes(),
        Msg::new(T::Rebind).na(IAID, &[bound]).na(2, &[]).bytes(),
        Msg::new(T::Release).ours().na(IAID, &[bound]).bytes(),
        Msg::new(T::Decline).ours().na(IAID, &[bound]).bytes(),
        Msg::new(T::Confirm)
            .na(IAID, &[bound])
            .ta(1, &[elsewhere])
            .bytes(),
        Msg::new(T::InformationRequest).bytes(),
        Msg::new(T::InformationRequest).no_client().ours().bytes(),
    ]
}

#[test]
fn mutated_messages_never_panic() {
    let t0 = Instant::now();
    let mut fuzz = Jitter::new(0x5eed_d6c6_0000_0001);
    let mut s = Dhcp6Server::new(
        Dhcp6sConfig {
            max_leases: 64,
            ..config(Mode::Stateful)
        },
        3,
    );
    s.set_prefix(t0, Some(long_prefix(t0, NET)), &[NET2]);
    let bound = bind(&mut s, t0, client_duid(1), IAID);
    let corpus = fuzz_corpus(bound);
    let base = s.counters().tx_advertise + s.counters().tx_reply + s.counters().dropped();
    const ROUNDS: u64 = 100_000;
    let mut now = t0;
    let mut answered = 0u64;
    for round in 0..ROUNDS {
        now += Duration::from_millis(fuzz.below(2000) as u64);
        let mut msg = if fuzz.below(20) == 0 {
            // Pure garbage, sometimes with a client message type.
            let len = fuzz.below(64);
            let mut g: Vec<u8> = (0..len).map(|_| fuzz.next_u64() as u8).collect();
            if let Some(first) = g.first_mut() {
                *first = [1, 3, 4, 5, 6, 8, 9, 11][fuzz.below(8)];
            }
            g
        } else {
            corpus[fuzz.below(corpus.len())].clone()
        };
        for _ in 0..=fuzz.below(4) {
            if msg.is_empty() {
                break;
            }
            let at = fuzz.below(msg.len());
            match fuzz.below(8) {
                0 => msg[at] = fuzz.next_u64() as u8,
                1 => msg.insert(at, fuzz.next_u64() as u8),
                2 => {
                    msg.remove(at);
                }
                3 => msg.truncate(at),
                // Length-ish fields: small values around real lengths.
                4 => msg[at] = msg[at].wrapping_add(fuzz.below(5) as u8).wrapping_sub(2),
                5 => msg[at] ^= 1 << fuzz.below(8),
                // Another client DUID byte so the table fills.
                6 => {
                    if msg.len() > 13 {
                        msg[13] = fuzz.next_u64() as u8;
                    }
                }
                _ => {
                    let other = &corpus[fuzz.below(corpus.len())];
                    msg.extend_from_slice(&other[4..]);
                }
            }
        }
        // Distinct clients now and then.
        let src = if round % 7 == 0 {
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, fuzz.below(65536) as u16)
        } else {
            SRC
        };
        if let Some(reply) = s.handle(now, src, &msg) {
            answered += 1;
            assert!(matches!(reply[0], 2 | 7));
            assert_eq!(&reply[1..4], &msg[1..4], "xid echoed");
            // Exact framing, and dhcproto reads every option back.
            decode(&reply);
            assert!(reply.len() < 8192, "reply of {} octets", reply.len());
        }
        if round % 1000 == 0 {
            s.poll(now);
        }
        assert!(s.leases(now).len() <= 64);
    }
    let c = s.counters();
    assert_eq!(
        c.tx_advertise + c.tx_reply + c.dropped() - base,
        ROUNDS,
        "every message answered or counted as dropped once"
    );
    assert!(answered > ROUNDS / 10, "only {answered} answered");
    assert!(c.drop_malformed > 0);
    // The server still works.
    let m = decode(
        &s.handle(now, SRC, &Msg::new(MessageType::InformationRequest).bytes())
            .unwrap(),
    );
    assert_eq!(m.msg_type(), MessageType::Reply);
}
