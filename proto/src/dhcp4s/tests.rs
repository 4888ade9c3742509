//! Server tests: a fake clock (`t0 + n seconds`) and client messages built
//! with dhcproto (a few by hand for the malformed cases), independently of
//! the server's own decoder.

use super::*;
use crate::jitter::Jitter;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const OTHER_SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);
const STATIC_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x10];
const STATIC_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const HOUR: u64 = 3600;

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 1, last)
}

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x01, n]
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn config() -> Dhcp4Config {
    Dhcp4Config {
        server_ip: SERVER,
        prefix_len: 24,
        range: (ip(100), ip(199)),
        lease_time: secs(HOUR),
        dns: vec![SERVER],
        domain: Some("lan".to_owned()),
        ntp: vec![SERVER],
        mtu: None,
        static_leases: vec![StaticLease {
            mac: STATIC_MAC,
            ip: STATIC_IP,
            hostname: Some("printer".to_owned()),
        }],
        max_leases: DEFAULT_MAX_LEASES,
        decline_quarantine: DEFAULT_DECLINE_QUARANTINE,
        offer_hold: DEFAULT_OFFER_HOLD,
    }
}

fn server() -> Dhcp4Server {
    Dhcp4Server::new(config(), 7)
}

/// A client message under construction.
struct Msg(Message);

impl Msg {
    fn new(kind: MessageType, mac: [u8; 6]) -> Self {
        let unspecified = Ipv4Addr::UNSPECIFIED;
        let mut message = Message::new_with_id(
            0x0bad_cafe,
            unspecified,
            unspecified,
            unspecified,
            unspecified,
            &mac,
        );
        message.opts_mut().insert(DhcpOption::MessageType(kind));
        Msg(message)
    }

    fn discover(mac: [u8; 6]) -> Self {
        Self::new(MessageType::Discover, mac)
    }

    fn request(mac: [u8; 6]) -> Self {
        Self::new(MessageType::Request, mac)
    }

    fn option(mut self, option: DhcpOption) -> Self {
        self.0.opts_mut().insert(option);
        self
    }

    fn requested(self, address: Ipv4Addr) -> Self {
        self.option(DhcpOption::RequestedIpAddress(address))
    }

    fn server_id(self, address: Ipv4Addr) -> Self {
        self.option(DhcpOption::ServerIdentifier(address))
    }

    fn client_id(self, id: &[u8]) -> Self {
        self.option(DhcpOption::ClientIdentifier(id.to_vec()))
    }

    fn hostname(self, name: &str) -> Self {
        self.option(DhcpOption::Hostname(name.to_owned()))
    }

    fn prl(self, codes: &[u8]) -> Self {
        self.option(DhcpOption::ParameterRequestList(
            codes.iter().map(|code| OptionCode::from(*code)).collect(),
        ))
    }

    fn max_size(self, size: u16) -> Self {
        self.option(DhcpOption::MaxMessageSize(size))
    }

    fn ciaddr(mut self, address: Ipv4Addr) -> Self {
        self.0.set_ciaddr(address);
        self
    }

    fn broadcast(mut self) -> Self {
        self.0.set_flags(Flags::default().set_broadcast());
        self
    }

    fn bytes(&self) -> Vec<u8> {
        self.0.to_vec().expect("test message encodes")
    }

    fn to(self, server: &mut Dhcp4Server, now: Instant) -> Option<Reply> {
        let src = mac_of(&self.0);
        server.handle(now, src, &self.bytes())
    }
}

fn mac_of(message: &Message) -> [u8; 6] {
    let mut mac = [0; 6];
    mac.copy_from_slice(&message.chaddr()[..6]);
    mac
}

fn decode(reply: &Reply) -> Message {
    Message::decode(&mut Decoder::new(&reply.payload))
        .expect("the server sent an undecodable reply")
}

fn kind(reply: &Reply) -> MessageType {
    decode(reply)
        .opts()
        .msg_type()
        .expect("reply without message type")
}

fn yiaddr(reply: &Reply) -> Ipv4Addr {
    decode(reply).yiaddr()
}

fn option(reply: &Reply, code: OptionCode) -> Option<DhcpOption> {
    decode(reply).opts().get(code).cloned()
}

fn lease_time(reply: &Reply) -> Option<u32> {
    match option(reply, OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(secs)) => Some(secs),
        _ => None,
    }
}

/// Option codes in wire order (the server never overloads).
fn wire_codes(payload: &[u8]) -> Vec<u8> {
    let mut codes = Vec::new();
    let mut rest = &payload[wire::HEADER_LEN..];
    while let Some((&code, tail)) = rest.split_first() {
        match code {
            0 => rest = tail,
            255 => break,
            _ => {
                let len = usize::from(tail[0]);
                codes.push(code);
                rest = &tail[1 + len..];
            }
        }
    }
    codes
}

/// The raw value of one option on the wire.
fn wire_option(payload: &[u8], wanted: u8) -> Option<Vec<u8>> {
    let mut rest = &payload[wire::HEADER_LEN..];
    while let Some((&code, tail)) = rest.split_first() {
        match code {
            0 => rest = tail,
            255 => break,
            _ => {
                let len = usize::from(tail[0]);
                if code == wanted {
                    return Some(tail[1..1 + len].to_vec());
                }
                rest = &tail[1 + len..];
            }
        }
    }
    None
}

/// DISCOVER / OFFER / REQUEST / ACK; returns the address bound.
fn dora(server: &mut Dhcp4Server, now: Instant, client: [u8; 6]) -> Ipv4Addr {
    let offer = Msg::discover(client).to(server, now).expect("no OFFER");
    assert_eq!(kind(&offer), MessageType::Offer);
    let address = yiaddr(&offer);
    let ack = Msg::request(client)
        .requested(address)
        .server_id(SERVER)
        .to(server, now)
        .expect("no ACK");
    assert_eq!(kind(&ack), MessageType::Ack);
    assert_eq!(yiaddr(&ack), address);
    address
}

fn state_of(server: &Dhcp4Server, now: Instant, address: Ipv4Addr) -> Option<&'static str> {
    server
        .leases(now)
        .into_iter()
        .find(|info| info.ip == address)
        .map(|info| info.state)
}

fn counter(server: &Dhcp4Server, name: &str) -> u64 {
    server
        .counters()
        .named()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no counter {name}"))
        .1
}

#[test]
fn dora_grants_the_lowest_address_with_all_options() {
    let t0 = Instant::now();
    let mut server = server();
    assert!(!server.take_dirty());
    let offer = Msg::discover(mac(1))
        .prl(&[1, 3, 6, 15, 28, 42, 119])
        .to(&mut server, t0)
        .expect("no OFFER");
    assert_eq!(kind(&offer), MessageType::Offer);
    assert_eq!(yiaddr(&offer), ip(100));
    assert_eq!(state_of(&server, t0, ip(100)), Some("offered"));
    // Offers are not persisted.
    assert!(!server.take_dirty());
    let message = decode(&offer);
    assert_eq!(message.opcode(), dhcproto::v4::Opcode::BootReply);
    assert_eq!(message.xid(), 0x0bad_cafe);
    assert_eq!(message.chaddr(), &mac(1));
    assert_eq!(message.ciaddr(), Ipv4Addr::UNSPECIFIED);
    let opts = message.opts();
    assert_eq!(
        opts.get(OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(SERVER))
    );
    assert_eq!(
        opts.get(OptionCode::SubnetMask),
        Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)))
    );
    assert_eq!(
        opts.get(OptionCode::Router),
        Some(&DhcpOption::Router(vec![SERVER]))
    );
    assert_eq!(
        opts.get(OptionCode::DomainNameServer),
        Some(&DhcpOption::DomainNameServer(vec![SERVER]))
    );
    assert_eq!(
        opts.get(OptionCode::DomainName),
        Some(&DhcpOption::DomainName("lan".to_owned()))
    );
    assert_eq!(
        opts.get(OptionCode::BroadcastAddr),
        Some(&DhcpOption::BroadcastAddr(ip(255)))
    );
    assert_eq!(
        opts.get(OptionCode::NtpServers),
        Some(&DhcpOption::NtpServers(vec![SERVER]))
    );
    assert_eq!(
        opts.get(OptionCode::AddressLeaseTime),
        Some(&DhcpOption::AddressLeaseTime(3600))
    );
    assert_eq!(
        opts.get(OptionCode::Renewal),
        Some(&DhcpOption::Renewal(1800))
    );
    assert_eq!(
        opts.get(OptionCode::Rebinding),
        Some(&DhcpOption::Rebinding(3150))
    );
    // RFC 3397 encoding of the search list: one uncompressed name.
    assert_eq!(
        wire_option(&offer.payload, 119),
        Some(b"\x03lan\x00".to_vec())
    );
    // No MTU configured, no hostname for a dynamic client.
    assert!(opts.get(OptionCode::InterfaceMtu).is_none());
    assert!(opts.get(OptionCode::Hostname).is_none());
    assert!(offer.payload.len() >= 300);

    let ack = Msg::request(mac(1))
        .requested(ip(100))
        .server_id(SERVER)
        .hostname("laptop")
        .to(&mut server, t0 + secs(1))
        .expect("no ACK");
    assert_eq!(kind(&ack), MessageType::Ack);
    assert_eq!(yiaddr(&ack), ip(100));
    assert_eq!(lease_time(&ack), Some(3600));
    assert!(server.take_dirty());
    assert!(!server.take_dirty());
    let leases = server.leases(t0 + secs(1));
    let info = leases.iter().find(|info| info.ip == ip(100)).unwrap();
    assert_eq!(info.state, "bound");
    assert_eq!(info.mac, mac(1));
    assert_eq!(info.hostname.as_deref(), Some("laptop"));
    assert_eq!(info.expires, Some(t0 + secs(1 + HOUR)));
    let counters = server.counters();
    assert_eq!(
        (
            counters.rx_discover,
            counters.tx_offer,
            counters.rx_request,
            counters.tx_ack
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(counters.leases_granted, 1);
    assert_eq!(server.poll(t0 + secs(1)), Some(t0 + secs(1 + HOUR)));
}

#[test]
fn two_clients_get_different_addresses() {
    let t0 = Instant::now();
    let mut server = server();
    // Both discover before either requests: the first offer is held.
    let first = Msg::discover(mac(1)).to(&mut server, t0).unwrap();
    let second = Msg::discover(mac(2)).to(&mut server, t0).unwrap();
    assert_eq!(yiaddr(&first), ip(100));
    assert_eq!(yiaddr(&second), ip(101));
    // Rediscovering gets the same offer.
    let again = Msg::discover(mac(1)).to(&mut server, t0 + secs(5)).unwrap();
    assert_eq!(yiaddr(&again), ip(100));
    assert_eq!(dora(&mut server, t0 + secs(6), mac(2)), ip(101));
    assert_eq!(dora(&mut server, t0 + secs(6), mac(1)), ip(100));
    assert_eq!(dora(&mut server, t0 + secs(7), mac(3)), ip(102));
}

#[test]
fn client_identifier_takes_precedence_over_chaddr() {
    let t0 = Instant::now();
    let mut server = server();
    let first = Msg::discover(mac(1))
        .client_id(b"\x01one")
        .to(&mut server, t0)
        .unwrap();
    // Same hardware, another identity (e.g. a dual-boot machine).
    let second = Msg::discover(mac(1))
        .client_id(b"\x01two")
        .to(&mut server, t0)
        .unwrap();
    assert_eq!(yiaddr(&first), ip(100));
    assert_eq!(yiaddr(&second), ip(101));
    // RFC 6842: option 61 echoed.
    assert_eq!(
        option(&second, OptionCode::ClientIdentifier),
        Some(DhcpOption::ClientIdentifier(b"\x01two".to_vec()))
    );
    let ack = Msg::request(mac(1))
        .client_id(b"\x01two")
        .requested(ip(101))
        .server_id(SERVER)
        .to(&mut server, t0)
        .unwrap();
    assert_eq!(kind(&ack), MessageType::Ack);
    let stored = server.export(t0, SystemTime::UNIX_EPOCH + secs(1_000_000));
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].client_id.as_deref(), Some("0174776f"));
}

#[test]
fn static_reservation_always_wins_and_carries_hostname() {
    let t0 = Instant::now();
    let mut server = server();
    assert_eq!(state_of(&server, t0, STATIC_IP), Some("static"));
    // Even asking for a pool address, the static host is offered its own.
    let offer = Msg::discover(STATIC_MAC)
        .requested(ip(150))
        .to(&mut server, t0)
        .unwrap();
    assert_eq!(yiaddr(&offer), STATIC_IP);
    assert_eq!(
        option(&offer, OptionCode::Hostname),
        Some(DhcpOption::Hostname("printer".to_owned()))
    );
    // Requesting another address is refused.
    let nak = Msg::request(STATIC_MAC)
        .requested(ip(150))
        .server_id(SERVER)
        .to(&mut server, t0)
        .unwrap();
    assert_eq!(kind(&nak), MessageType::Nak);
    let ack = Msg::request(STATIC_MAC)
        .requested(STATIC_IP)
        .server_id(SERVER)
        .to(&mut server, t0)
        .unwrap();
    assert_eq!(kind(&ack), MessageType::Ack);
    assert_eq!(yiaddr(&ack), STATIC_IP);
    assert_eq!(
        option(&ack, OptionCode::Hostname),
        Some(DhcpOption::Hostname("printer".to_owned()))
    );
    let info = server
        .leases(t0)
        .into_iter()
        .find(|info| info.ip == STATIC_IP)
        .unwrap();
    assert_eq!(
        (info.state, info.expires, info.hostname.as_deref()),
        ("bound", Some(t0 + secs(HOUR)), Some("printer"))
    );
    // Static bindings are configuration, not persisted state.
    assert!(server.export(t0, SystemTime::now()).is_empty());

    // Nobody else gets the reserved address, whatever they ask.
    let offer = Msg::discover(mac(1))
        .requested(STATIC_IP)
        .to(&mut server, t0)
        .unwrap();
    assert_eq!(yiaddr(&offer), ip(100));
    let nak = Msg::request(mac(2))
        .requested(STATIC_IP)
        .to(&mut server, t0)
        .unwrap();
    assert_eq!(kind(&nak), MessageType::Nak);

    // The binding ends with the lease; the reservation stays.
    server.poll(t0 + secs(HOUR));
    assert_eq!(
        state_of(&server, t0 + secs(HOUR), STATIC_IP),
        Some("static")
    );
}

#[test]
fn init_reboot_after_a_restart_keeps_the_address() {
    let t0 = Instant::now();
    let wall0 = SystemTime::UNIX_EPOCH + secs(1_700_000_000);
    let mut first = server();
    dora(&mut first, t0, mac(1));
    let kept = dora(&mut first, t0, mac(2));
    assert_eq!(kept, ip(101));
    let stored = first.export(t0 + secs(60), wall0 + secs(60));
    assert_eq!(stored.len(), 2);

    // The new process: another Instant base, 30 s of downtime.
    let t1 = t0 + secs(1000);
    let mut second = server();
    second.import(t1, wall0 + secs(90), stored);
    assert!(!second.take_dirty(), "a clean import is not a change");
    let ack = Msg::request(mac(2))
        .requested(kept)
        .to(&mut second, t1)
        .unwrap();
    assert_eq!(kind(&ack), MessageType::Ack);
    assert_eq!(yiaddr(&ack), kept);
    // Someone else asking for it is refused.
    let nak = Msg::request(mac(3))
        .requested(kept)
        .to(&mut second, t1)
        .unwrap();
    assert_eq!(kind(&nak), MessageType::Nak);

    // Without the persisted state, a client asking for a free pool address
    // keeps it too (INIT-REBOOT, and RENEWING with ciaddr).
    let mut amnesic = server();
    let ack = Msg::request(mac(1))
        .requested(ip(100))
        .to(&mut amnesic, t1)
        .unwrap();
    assert_eq!((kind(&ack), yiaddr(&ack)), (MessageType::Ack, ip(100)));
    let ack = Msg::request(mac(2))
        .ciaddr(ip(101))
        .to(&mut amnesic, t1)
        .unwrap();
    assert_eq!((kind(&ack), yiaddr(&ack)), (MessageType::Ack, ip(101)));
    assert_eq!(state_of(&amnesic, t1, ip(101)), Some("bound"));
    // But not an address outside the pool, nor the server's.
    for address in [ip(20), SERVER, ip(0), ip(255)] {
        let nak = Msg::request(mac(3))
            .requested(address)
            .to(&mut amnesic, t1)
            .unwrap();
        assert_eq!(kind(&nak), MessageType::Nak, "{address}");
    }
}

#[test]
fn wrong_subnet_is_naked_by_broadcast() {
    let t0 = Instant::now();
    let mut server = server();
    let nak = Msg::request(mac(1))
        .requested(Ipv4Addr::new(10, 0, 0, 5))
        .client_id(b"\x01me")
        .to(&mut server, t0)
        .unwrap();
    assert_eq!(kind(&nak), MessageType::Nak);
    assert_eq!(nak.dst_ip, Ipv4Addr::BROADCAST);
    assert_eq!(nak.dst_mac, [0xff; 6]);
    assert_eq!(yiaddr(&nak), Ipv4Addr::UNSPECIFIED);
    // A NAK carries no configuration.
    assert_eq!(wire_codes(&nak.payload), vec![53, 54, 61, 56]);
    // A client moved from another network renewing its old address.
    let nak = Msg::request(mac(1))
        .ciaddr(Ipv4Addr::new(10, 0, 0, 5))
        .to(&mut server, t0)
        .unwrap();
    assert_eq!(kind(&nak), MessageType::Nak);
    assert_eq!(nak.dst_ip, Ipv4Addr::BROADCAST);
    assert_eq!(server.counters().tx_nak, 2);
    assert!(server.leases(t0).iter().all(|info| info.state == "static"));
}

#[test]
fn renew_extends_the_lease() {
    let t0 = Instant::now();
    let mut server = server();
    let address = dora(&mut server, t0, mac(1));
    server.take_dirty();
    let t1 = t0 + secs(HOUR / 2);
    let ack = Msg::request(mac(1))
        .ciaddr(address)
        .to(&mut server, t1)
        .unwrap();
    assert_eq!(kind(&ack), MessageType::Ack);
    assert_eq!(yiaddr(&ack), address);
    assert_eq!(decode(&ack).ciaddr(), address);
    // RENEWING: unicast to ciaddr.
    assert_eq!((ack.dst_ip, ack.dst_mac), (address, mac(1)));
    assert!(server.take_dirty());
    assert_eq!(server.counters().leases_renewed, 1);
    assert_eq!(server.counters().leases_granted, 1);
    // Still bound past the original expiry.
    assert_eq!(server.poll(t0 + secs(HOUR)), Some(t1 + secs(HOUR)));
    assert_eq!(state_of(&server, t0 + secs(HOUR), address), Some("bound"));
    // Another client renewing that address is refused.
    let nak = Msg::request(mac(2))
        .ciaddr(address)
        .to(&mut server, t1)
        .unwrap();
    assert_eq!(kind(&nak), MessageType::Nak);
    // REBINDING (broadcast) from the owner works too.
    let ack = Msg::request(mac(1))
        .ciaddr(address)
        .broadcast()
        .to(&mut server, t1 + secs(100))
        .unwrap();
    assert_eq!(kind(&ack), MessageType::Ack);
    assert_eq!(server.poll(t1), Some(t1 + secs(100 + HOUR)));
}

#[test]
fn release_frees_the_lease() {
    let t0 = Instant::now();
    let mut server = server();
    let address = dora(&mut server, t0, mac(1));
    server.take_dirty();
    // Not the owner: ignored.
    let release = Msg::new(MessageType::Release, mac(2))
        .ciaddr(address)
        .server_id(SERVER);
    assert!(release.to(&mut server, t0).is_none());
    assert_eq!(server.counters().release_ignored, 1);
    assert_eq!(state_of(&server, t0, address), Some("bound"));
    assert!(!server.take_dirty());

    let release = Msg::new(MessageType::Release, mac(1))
        .ciaddr(address)
        .server_id(SERVER);
    assert!(release.to(&mut server, t0).is_none());
    assert_eq!(state_of(&server, t0, address), None);
    assert!(server.take_dirty());
    assert_eq!(server.counters().leases_released, 1);
    // The address is free again: the next client gets it.
    assert_eq!(dora(&mut server, t0 + secs(1), mac(3)), address);
}

#[test]
fn decline_quarantines_for_the_configured_time() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.decline_quarantine = secs(300);
    let mut server = Dhcp4Server::new(cfg, 1);
    let address = dora(&mut server, t0, mac(1));
    server.take_dirty();
    let decline = Msg::new(MessageType::Decline, mac(1))
        .requested(address)
        .server_id(SERVER);
    assert!(decline.to(&mut server, t0 + secs(1)).is_none());
    assert_eq!(counter(&server, "decline-quarantined"), 1);
    assert!(server.take_dirty(), "the client's lease is forgotten");
    let info = server
        .leases(t0 + secs(1))
        .into_iter()
        .find(|info| info.ip == address)
        .unwrap();
    assert_eq!(
        (info.state, info.mac, info.expires),
        ("declined", mac(1), Some(t0 + secs(301)))
    );
    // The same client restarts and is offered another address, and so is
    // anyone asking for the declined one.
    assert_eq!(dora(&mut server, t0 + secs(2), mac(1)), ip(101));
    let offer = Msg::discover(mac(2))
        .requested(address)
        .to(&mut server, t0 + secs(3))
        .unwrap();
    assert_eq!(yiaddr(&offer), ip(102));
    let nak = Msg::request(mac(3))
        .requested(address)
        .to(&mut server, t0 + secs(3))
        .unwrap();
    assert_eq!(kind(&nak), MessageType::Nak);
    // Just before the end, still quarantined; at the end, back in the pool.
    assert_eq!(server.poll(t0 + secs(300)), Some(t0 + secs(301)));
    assert_eq!(state_of(&server, t0 + secs(300), address), Some("declined"));
    server.poll(t0 + secs(301));
    assert_eq!(state_of(&server, t0 + secs(301), address), None);
    assert_eq!(dora(&mut server, t0 + secs(302), mac(4)), address);

    // Declining someone else's address, or a free one, does nothing.
    let decline = Msg::new(MessageType::Decline, mac(9)).requested(ip(101));
    assert!(decline.to(&mut server, t0 + secs(303)).is_none());
    let decline = Msg::new(MessageType::Decline, mac(9)).requested(ip(150));
    assert!(decline.to(&mut server, t0 + secs(303)).is_none());
    assert_eq!(counter(&server, "decline-ignored"), 2);
    assert_eq!(state_of(&server, t0 + secs(303), ip(150)), None);
    assert_eq!(state_of(&server, t0 + secs(303), ip(101)), Some("bound"));
    // A DECLINE naming another server is not ours.
    let decline = Msg::new(MessageType::Decline, mac(1))
        .requested(ip(101))
        .server_id(OTHER_SERVER);
    assert!(decline.to(&mut server, t0 + secs(303)).is_none());
    assert_eq!(counter(&server, "drop-wrong-server-id"), 1);
    assert_eq!(state_of(&server, t0 + secs(303), ip(101)), Some("bound"));
}

#[test]
fn pool_exhaustion() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.range = (ip(100), ip(102));
    let mut server = Dhcp4Server::new(cfg, 1);
    for n in 1..=3 {
        dora(&mut server, t0, mac(n));
    }
    assert!(Msg::discover(mac(4)).to(&mut server, t0).is_none());
    assert_eq!(counter(&server, "pool-exhausted"), 1);
    // A release makes room.
    Msg::new(MessageType::Release, mac(2))
        .ciaddr(ip(101))
        .to(&mut server, t0);
    assert_eq!(dora(&mut server, t0, mac(4)), ip(101));

    // Pending offers do not lock the pool: the oldest one is withdrawn.
    let mut cfg = config();
    cfg.range = (ip(100), ip(101));
    let mut server = Dhcp4Server::new(cfg, 1);
    Msg::discover(mac(1)).to(&mut server, t0).unwrap();
    Msg::discover(mac(2)).to(&mut server, t0 + secs(1)).unwrap();
    let offer = Msg::discover(mac(3)).to(&mut server, t0 + secs(2)).unwrap();
    assert_eq!(yiaddr(&offer), ip(100));
    assert_eq!(counter(&server, "offer-evicted"), 1);
    // The client whose offer went away is refused and starts over.
    let nak = Msg::request(mac(1))
        .requested(ip(100))
        .server_id(SERVER)
        .to(&mut server, t0 + secs(3))
        .unwrap();
    assert_eq!(kind(&nak), MessageType::Nak);
}

#[test]
fn lease_table_is_bounded() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.max_leases = 2;
    let mut server = Dhcp4Server::new(cfg, 1);
    dora(&mut server, t0, mac(1));
    dora(&mut server, t0, mac(2));
    assert!(Msg::discover(mac(3)).to(&mut server, t0).is_none());
    assert_eq!(counter(&server, "table-full"), 1);
    // INIT-REBOOT of an unknown client cannot add an entry either.
    assert!(Msg::request(mac(3))
        .requested(ip(150))
        .to(&mut server, t0)
        .is_none());
    assert_eq!(counter(&server, "table-full"), 2);
    // Static hosts are not in the table and are still served.
    let offer = Msg::discover(STATIC_MAC).to(&mut server, t0).unwrap();
    assert_eq!(yiaddr(&offer), STATIC_IP);
    // A flood of DISCOVERs from random MACs never grows the table.
    let mut rng = Jitter::new(5);
    let mut small = Dhcp4Server::new(
        Dhcp4Config {
            max_leases: 16,
            ..config()
        },
        1,
    );
    for n in 0..1000u64 {
        let bytes = rng.next_u64().to_be_bytes();
        let random_mac = [0x02, bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]];
        Msg::discover(random_mac).to(&mut small, t0 + secs(n / 100));
    }
    let dynamic = small
        .leases(t0 + secs(10))
        .into_iter()
        .filter(|info| info.state != "static")
        .count();
    assert_eq!(dynamic, 16);
}

#[test]
fn inform_gets_configuration_without_lease() {
    let t0 = Instant::now();
    let mut server = server();
    let ack = Msg::new(MessageType::Inform, mac(1))
        .ciaddr(ip(50))
        .to(&mut server, t0)
        .unwrap();
    assert_eq!(kind(&ack), MessageType::Ack);
    assert_eq!(yiaddr(&ack), Ipv4Addr::UNSPECIFIED);
    assert_eq!(decode(&ack).ciaddr(), ip(50));
    assert_eq!(lease_time(&ack), None);
    assert!(option(&ack, OptionCode::Renewal).is_none());
    assert!(option(&ack, OptionCode::Rebinding).is_none());
    assert!(option(&ack, OptionCode::DomainNameServer).is_some());
    assert!(option(&ack, OptionCode::ServerIdentifier).is_some());
    assert_eq!((ack.dst_ip, ack.dst_mac), (ip(50), mac(1)));
    assert!(server.leases(t0).iter().all(|info| info.state == "static"));
    assert!(!server.take_dirty());
    assert_eq!(counter(&server, "rx-inform"), 1);
}

#[test]
fn request_for_another_server_withdraws_our_offer_only() {
    let t0 = Instant::now();
    let mut server = server();
    let offer = Msg::discover(mac(1)).to(&mut server, t0).unwrap();
    assert_eq!(yiaddr(&offer), ip(100));
    let chosen_elsewhere = Msg::request(mac(1))
        .requested(Ipv4Addr::new(192, 168, 1, 240))
        .server_id(OTHER_SERVER);
    assert!(chosen_elsewhere.to(&mut server, t0).is_none());
    assert_eq!(state_of(&server, t0, ip(100)), None);
    assert_eq!(counter(&server, "drop-wrong-server-id"), 1);
    assert_eq!(counter(&server, "offers-withdrawn"), 1);
    // The address is available again at once.
    assert_eq!(dora(&mut server, t0, mac(2)), ip(100));
    // A bound client's lease is not disturbed by such a REQUEST.
    let chosen_elsewhere = Msg::request(mac(2))
        .requested(Ipv4Addr::new(192, 168, 1, 240))
        .server_id(OTHER_SERVER);
    server.take_dirty();
    assert!(chosen_elsewhere.to(&mut server, t0).is_none());
    assert_eq!(state_of(&server, t0, ip(100)), Some("bound"));
    assert!(!server.take_dirty());
}

#[test]
fn selecting_a_different_address_than_offered() {
    let t0 = Instant::now();
    let mut server = server();
    dora(&mut server, t0, mac(1));
    Msg::discover(mac(2)).to(&mut server, t0).unwrap();
    // Asks us for a free address we did not offer: fine, it moves there.
    let ack = Msg::request(mac(2))
        .requested(ip(150))
        .server_id(SERVER)
        .to(&mut server, t0)
        .unwrap();
    assert_eq!((kind(&ack), yiaddr(&ack)), (MessageType::Ack, ip(150)));
    assert_eq!(state_of(&server, t0, ip(101)), None);
    // Asks for someone else's: NAK.
    Msg::discover(mac(3)).to(&mut server, t0).unwrap();
    let nak = Msg::request(mac(3))
        .requested(ip(100))
        .server_id(SERVER)
        .to(&mut server, t0)
        .unwrap();
    assert_eq!(kind(&nak), MessageType::Nak);
    // A REQUEST with no address at all is dropped.
    assert!(Msg::request(mac(3)).to(&mut server, t0).is_none());
    assert_eq!(counter(&server, "drop-no-address"), 1);
}

#[test]
fn reply_destination_rules() {
    let t0 = Instant::now();
    let mut server = server();
    // No broadcast bit, no ciaddr: unicast to yiaddr at chaddr.
    let offer = Msg::discover(mac(1)).to(&mut server, t0).unwrap();
    assert_eq!((offer.dst_ip, offer.dst_mac), (ip(100), mac(1)));
    // Broadcast bit: broadcast.
    let offer = Msg::discover(mac(2))
        .broadcast()
        .to(&mut server, t0)
        .unwrap();
    assert_eq!(
        (offer.dst_ip, offer.dst_mac),
        (Ipv4Addr::BROADCAST, [0xff; 6])
    );
    assert!(decode(&offer).flags().broadcast(), "flags are echoed");
    // Reserved flag bits are not.
    let mut odd_flags = Msg::discover(mac(5)).bytes();
    odd_flags[10..12].copy_from_slice(&[0x80, 0x01]);
    let offer = server.handle(t0, mac(5), &odd_flags).unwrap();
    assert_eq!(&offer.payload[10..12], &[0x80, 0x00]);
    let ack = Msg::request(mac(2))
        .requested(ip(101))
        .server_id(SERVER)
        .broadcast()
        .to(&mut server, t0)
        .unwrap();
    assert_eq!(ack.dst_ip, Ipv4Addr::BROADCAST);
    // ciaddr set wins over the broadcast bit.
    let ack = Msg::request(mac(2))
        .ciaddr(ip(101))
        .broadcast()
        .to(&mut server, t0)
        .unwrap();
    assert_eq!((ack.dst_ip, ack.dst_mac), (ip(101), mac(2)));
    // NAK: always broadcast (RFC 2131 4.1), even with ciaddr set.
    let nak = Msg::request(mac(3))
        .ciaddr(ip(101))
        .to(&mut server, t0)
        .unwrap();
    assert_eq!(kind(&nak), MessageType::Nak);
    assert_eq!((nak.dst_ip, nak.dst_mac), (Ipv4Addr::BROADCAST, [0xff; 6]));
    // The Ethernet source does not matter, chaddr does.
    let bytes = Msg::discover(mac(4)).bytes();
    let offer = server.handle(t0, mac(99), &bytes).unwrap();
    assert_eq!(offer.dst_mac, mac(4));
    assert_eq!(counter(&server, "chaddr-mismatch"), 1);
}

/// A configuration whose options cannot all fit in 576 octets.
fn bulky_config() -> Dhcp4Config {
    let label = "a".repeat(60);
    Dhcp4Config {
        dns: (1..=40).map(|n| Ipv4Addr::new(10, 0, 0, n)).collect(),
        ntp: (1..=20).map(|n| Ipv4Addr::new(10, 0, 1, n)).collect(),
        domain: Some(format!("{label}.{label}.{label}.example")),
        mtu: Some(1500),
        ..config()
    }
}

#[test]
fn replies_stay_within_576_bytes_with_a_huge_parameter_list() {
    let t0 = Instant::now();
    let mut server = Dhcp4Server::new(bulky_config(), 1);
    let everything: Vec<u8> = (1..=254).collect();
    let offer = Msg::discover(mac(1))
        .prl(&everything)
        .client_id(&[7; 200])
        .to(&mut server, t0)
        .unwrap();
    assert!(offer.payload.len() + 28 <= 576, "{}", offer.payload.len());
    assert!(counter(&server, "options-trimmed") > 0);
    let codes = wire_codes(&offer.payload);
    // What must be there is there, first; 1 precedes 3.
    assert_eq!(&codes[..7], &[53, 54, 51, 58, 59, 61, 1]);
    assert_eq!(codes[7], 3);
    assert_eq!(kind(&offer), MessageType::Offer);

    // Option 57 allows more: everything fits.
    let before = counter(&server, "options-trimmed");
    let offer = Msg::discover(mac(1))
        .prl(&everything)
        .max_size(1500)
        .to(&mut server, t0)
        .unwrap();
    assert!(offer.payload.len() > 548);
    assert!(offer.payload.len() + 28 <= 1500);
    assert_eq!(counter(&server, "options-trimmed"), before);
    for code in [1, 3, 6, 15, 26, 28, 42, 119] {
        assert!(wire_codes(&offer.payload).contains(&code), "{code}");
    }
    // Option 57 beyond the MTU is capped at the MTU.
    let mut cfg = bulky_config();
    cfg.mtu = Some(600);
    let mut server = Dhcp4Server::new(cfg, 1);
    let offer = Msg::discover(mac(1))
        .prl(&everything)
        .max_size(9000)
        .to(&mut server, t0)
        .unwrap();
    assert!(offer.payload.len() + 28 <= 600);
}

#[test]
fn parameter_request_list_order_is_honored() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.mtu = Some(1500);
    let mut server = Dhcp4Server::new(cfg, 1);
    let offer = Msg::discover(mac(1))
        .prl(&[119, 3, 42, 6, 1, 15])
        .to(&mut server, t0)
        .unwrap();
    // Mandatory, mask before router, then the asked ones in the client's
    // order, then the unrequested ones.
    assert_eq!(
        wire_codes(&offer.payload),
        vec![53, 54, 51, 58, 59, 1, 3, 119, 42, 6, 15, 28, 26]
    );
}

/// A BOOTREQUEST built by hand: fixed header, cookie, then `options`.
fn raw(options: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; 236];
    bytes[..4].copy_from_slice(&[1, 1, 6, 0]);
    bytes[4..8].copy_from_slice(&[1, 2, 3, 4]);
    bytes[28..34].copy_from_slice(&mac(1));
    bytes.extend_from_slice(&[99, 130, 83, 99]);
    bytes.extend_from_slice(options);
    bytes
}

const DISCOVER: &[u8] = &[53, 1, 1];

#[test]
fn hand_built_discover_is_served() {
    let t0 = Instant::now();
    let mut server = server();
    let mut options = DISCOVER.to_vec();
    options.push(255);
    let offer = server.handle(t0, mac(1), &raw(&options)).unwrap();
    assert_eq!(yiaddr(&offer), ip(100));
    // Without an End option, and with padding: still fine.
    let offer = server
        .handle(t0, mac(1), &raw(&[0, 0, 53, 1, 1, 0]))
        .unwrap();
    assert_eq!(kind(&offer), MessageType::Offer);
}

#[test]
fn split_and_overloaded_options_are_understood() {
    let t0 = Instant::now();
    let mut server = server();
    // Option 50 split in two (RFC 3396), not even adjacent.
    let options = [53, 1, 1, 50, 2, 192, 168, 12, 0, 50, 2, 1, 177, 255];
    let offer = server.handle(t0, mac(1), &raw(&options)).unwrap();
    assert_eq!(yiaddr(&offer), ip(177));
    // The message type in `file`, the requested address in `sname`.
    let mut bytes = raw(&[52, 1, 3, 255]);
    bytes[108..111].copy_from_slice(&[53, 1, 1]);
    bytes[111] = 255;
    bytes[44..50].copy_from_slice(&[50, 4, 192, 168, 1, 188]);
    bytes[50] = 255;
    bytes[28..34].copy_from_slice(&mac(2));
    let offer = server.handle(t0, mac(2), &bytes).unwrap();
    assert_eq!(kind(&offer), MessageType::Offer);
    assert_eq!(yiaddr(&offer), ip(188));
}

#[test]
fn each_malformed_case_is_counted() {
    let t0 = Instant::now();
    let mut server = server();
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    cases.push(("drop-truncated", raw(DISCOVER)[..200].to_vec()));
    cases.push(("drop-truncated", raw(&[])[..238].to_vec()));
    let mut bad_cookie = raw(DISCOVER);
    bad_cookie[236] = 98;
    cases.push(("drop-bad-cookie", bad_cookie));
    // An option whose length runs past the end of the buffer.
    cases.push(("drop-option-overflow", raw(&[53, 1, 1, 61, 40, 1, 2, 3])));
    cases.push(("drop-option-overflow", raw(&[53, 1, 1, 61])));
    // Overload pointing nowhere: an invalid value, or fields without
    // options (no End).
    cases.push(("drop-bad-overload", raw(&[53, 1, 1, 52, 1, 9, 255])));
    cases.push(("drop-bad-overload", raw(&[53, 1, 1, 52, 1, 3, 255])));
    cases.push(("drop-bad-overload", raw(&[53, 1, 1, 52, 0, 255])));
    let mut overflowing_file = raw(&[53, 1, 1, 52, 1, 1, 255]);
    overflowing_file[230..233].copy_from_slice(&[61, 50, 1]);
    cases.push(("drop-bad-overload", overflowing_file));
    // Option 55 repeated to 765 codes.
    let mut huge = DISCOVER.to_vec();
    for _ in 0..3 {
        huge.extend_from_slice(&[55, 255]);
        huge.extend((0..255).map(|n| (n % 254 + 1) as u8));
    }
    huge.push(255);
    cases.push(("drop-huge-prl", raw(&huge)));
    cases.push(("drop-no-message-type", raw(&[50, 4, 192, 168, 1, 5, 255])));
    cases.push(("drop-no-message-type", raw(&[255, 53, 1, 1])));
    let mut hlen = raw(DISCOVER);
    hlen[2] = 16;
    cases.push(("drop-bad-hardware", hlen));
    let mut hlen = raw(DISCOVER);
    hlen[2] = 200;
    cases.push(("drop-bad-hardware", hlen));
    let mut htype = raw(DISCOVER);
    htype[1] = 6;
    cases.push(("drop-bad-hardware", htype));
    let mut multicast = raw(DISCOVER);
    multicast[28] = 0x01;
    cases.push(("drop-bad-hardware", multicast));
    let mut zero = raw(DISCOVER);
    zero[28..34].fill(0);
    cases.push(("drop-bad-hardware", zero));
    let mut reply = raw(DISCOVER);
    reply[0] = 2;
    cases.push(("drop-not-bootrequest", reply));
    // Known options with impossible lengths.
    cases.push(("drop-malformed", raw(&[53, 2, 1, 1, 255])));
    cases.push(("drop-malformed", raw(&[53, 1, 1, 50, 3, 1, 2, 3, 255])));
    cases.push((
        "drop-malformed",
        raw(&[53, 1, 1, 54, 5, 1, 2, 3, 4, 5, 255]),
    ));
    cases.push(("drop-malformed", raw(&[53, 1, 1, 57, 1, 2, 255])));
    cases.push(("drop-malformed", raw(&[53, 1, 1, 61, 0, 255])));
    let mut relayed = raw(DISCOVER);
    relayed[24..28].copy_from_slice(&[10, 0, 0, 1]);
    cases.push(("drop-relayed", relayed));
    cases.push(("drop-unexpected-type", raw(&[53, 1, 2, 255])));
    cases.push(("drop-unexpected-type", raw(&[53, 1, 200, 255])));

    for (name, bytes) in &cases {
        let before = counter(&server, name);
        assert!(
            server.handle(t0, mac(1), bytes).is_none(),
            "{name}: answered"
        );
        assert_eq!(counter(&server, name), before + 1, "{name}");
    }
    // Nothing else moved: no message counted as received, no state.
    let counters = server.counters();
    assert_eq!(counters.rx_discover + counters.rx_request, 0);
    assert_eq!(counters.drop_decoder_panic, 0);
    assert!(server.leases(t0).iter().all(|info| info.state == "static"));
    // Garbage in option fields we do not use is fine: framing is all we
    // check there (a Client FQDN of length 0 panics dhcproto in debug).
    let offer = server
        .handle(
            t0,
            mac(1),
            &raw(&[53, 1, 1, 81, 0, 151, 0, 12, 2, 0xff, 0xfe, 255]),
        )
        .unwrap();
    assert_eq!(kind(&offer), MessageType::Offer);
}

/// Valid messages of every kind, to mutate.
fn corpus() -> Vec<Vec<u8>> {
    let everything: Vec<u8> = (1..=80).collect();
    vec![
        Msg::discover(mac(1)).bytes(),
        Msg::discover(mac(2))
            .prl(&everything)
            .client_id(b"\x01abc")
            .hostname("phone")
            .max_size(1200)
            .requested(ip(120))
            .bytes(),
        Msg::request(mac(1))
            .requested(ip(100))
            .server_id(SERVER)
            .bytes(),
        Msg::request(mac(3)).requested(ip(130)).bytes(),
        Msg::request(mac(1)).ciaddr(ip(100)).broadcast().bytes(),
        Msg::request(mac(4))
            .requested(ip(140))
            .server_id(OTHER_SERVER)
            .bytes(),
        Msg::new(MessageType::Release, mac(1))
            .ciaddr(ip(100))
            .server_id(SERVER)
            .bytes(),
        Msg::new(MessageType::Decline, mac(2))
            .requested(ip(101))
            .server_id(SERVER)
            .bytes(),
        Msg::new(MessageType::Inform, mac(5)).ciaddr(ip(50)).bytes(),
        Msg::discover(STATIC_MAC).bytes(),
        {
            let mut bytes = raw(&[52, 1, 3, 255]);
            bytes[108..111].copy_from_slice(&[53, 1, 1]);
            bytes[111] = 255;
            bytes[44..46].copy_from_slice(&[255, 0]);
            bytes
        },
    ]
}

fn mutate(rng: &mut Jitter, base: &[u8]) -> Vec<u8> {
    let mut bytes = base.to_vec();
    // Many distinct clients, to put pressure on the pool and the table.
    if rng.below(2) == 0 {
        bytes[33] = rng.next_u64() as u8;
    }
    // Somewhere in the options, mostly, where the parsing happens.
    let in_options = |rng: &mut Jitter, len: usize| {
        if len > 240 {
            240 + rng.below(len - 240)
        } else {
            rng.below(len.max(1))
        }
    };
    for _ in 0..1 + rng.below(2) {
        match rng.below(10) {
            0..=2 => {
                let at = in_options(rng, bytes.len());
                if let Some(byte) = bytes.get_mut(at) {
                    *byte ^= 1 << rng.below(8);
                }
            }
            3 => {
                let at = rng.below(240);
                if let Some(byte) = bytes.get_mut(at) {
                    *byte ^= 1 << rng.below(8);
                }
            }
            4 | 5 => {
                let at = in_options(rng, bytes.len());
                if let Some(byte) = bytes.get_mut(at) {
                    *byte = rng.next_u64() as u8;
                }
            }
            6 if rng.below(2) == 0 => bytes.truncate(rng.below(bytes.len() + 1)),
            6 => bytes.truncate(bytes.len().saturating_sub(rng.below(8))),
            7 => {
                let at = in_options(rng, bytes.len()).min(bytes.len());
                let junk: Vec<u8> = (0..rng.below(40)).map(|_| rng.next_u64() as u8).collect();
                bytes.splice(at..at, junk);
            }
            // A random option (its length not always matching) first.
            8 => {
                let code = rng.next_u64() as u8;
                let len = rng.below(256);
                let mut option = vec![code, len as u8];
                let body = if rng.below(4) == 0 {
                    rng.below(len + 2)
                } else {
                    len
                };
                option.extend((0..body).map(|_| rng.next_u64() as u8));
                let at = 240.min(bytes.len());
                bytes.splice(at..at, option);
            }
            // Overload pointing somewhere, maybe at something.
            _ => {
                if bytes.len() > 243 {
                    bytes.splice(240..240, [52, 1, rng.below(5) as u8]);
                }
                let field = 44 + rng.below(192);
                let len = rng.below(6);
                let option = [
                    53,
                    1,
                    1 + rng.below(8) as u8,
                    50,
                    4,
                    192,
                    168,
                    1,
                    100 + len as u8,
                ];
                for (offset, byte) in option.into_iter().enumerate() {
                    if let Some(slot) = bytes
                        .get_mut(field + offset)
                        .filter(|_| field + offset < 236)
                    {
                        *slot = byte;
                    }
                }
                if let Some(slot) = bytes.get_mut(field + 9).filter(|_| field + 9 < 236) {
                    *slot = 255;
                }
            }
        }
    }
    bytes
}

#[test]
fn fuzz_100k_mutated_messages_no_panic_bounded_tables() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.max_leases = 32;
    cfg.range = (ip(100), ip(119));
    cfg.decline_quarantine = secs(30);
    cfg.lease_time = secs(300);
    let mut server = Dhcp4Server::new(cfg, 3);
    let corpus = corpus();
    let mut rng = Jitter::new(0x5eed);
    let mutated = 100_000u64;
    let mut total = mutated;
    let mut now = t0;
    let mut answered = 0u64;
    for n in 0..mutated {
        let base = &corpus[rng.below(corpus.len())];
        let bytes = mutate(&mut rng, base);
        if server.handle(now, mac(1), &bytes).is_some() {
            answered += 1;
        }
        // Well-behaved clients in the noise: DORA, then maybe RELEASE or
        // DECLINE.
        if n % 16 == 0 {
            let client = [0x02, 0, 0, 0, 0x02, rng.next_u64() as u8];
            total += 1;
            if let Some(offer) = Msg::discover(client).to(&mut server, now) {
                answered += 1;
                let address = yiaddr(&offer);
                total += 1;
                let request = Msg::request(client).requested(address).server_id(SERVER);
                if request.to(&mut server, now).is_some() {
                    answered += 1;
                }
                match rng.below(8) {
                    0 | 1 => {
                        total += 1;
                        Msg::new(MessageType::Release, client)
                            .ciaddr(address)
                            .to(&mut server, now);
                    }
                    2 => {
                        total += 1;
                        Msg::new(MessageType::Decline, client)
                            .requested(address)
                            .to(&mut server, now);
                    }
                    _ => {}
                }
            }
        }
        if n % 64 == 0 {
            now += secs(rng.below(20) as u64);
            let next = server.poll(now);
            assert!(!matches!(next, Some(next) if next <= now));
        }
        assert!(server.leases.len() <= 32);
        assert!(server.quarantine.len() <= 32);
        assert_eq!(server.leases.len(), server.by_client.len());
    }
    let c = server.counters();
    // Every message is either received or dropped, exactly once.
    let received = c.rx_discover + c.rx_request + c.rx_release + c.rx_decline + c.rx_inform;
    let dropped = c.drop_truncated
        + c.drop_malformed
        + c.drop_bad_cookie
        + c.drop_not_bootrequest
        + c.drop_bad_hardware
        + c.drop_option_overflow
        + c.drop_bad_overload
        + c.drop_huge_prl
        + c.drop_no_message_type
        + c.drop_unexpected_type
        + c.drop_relayed;
    assert_eq!(received + dropped, total);
    assert_eq!(c.drop_decoder_panic, 0);
    assert_eq!(c.drop_encode, 0);
    assert_eq!(answered, c.tx_offer + c.tx_ack + c.tx_nak);
    assert!(c.tx_ack > 0 && c.tx_offer > 0 && c.tx_nak > 0);
    assert!(c.drop_option_overflow > 0 && c.drop_bad_overload > 0);
    assert!(c.pool_exhausted + c.offer_evicted > 0 && c.decline_quarantined > 0);
    assert!(c.leases_granted > 0 && c.leases_released > 0 && c.leases_expired > 0);
    // Each table entry is a pool address.
    for info in server.leases(now) {
        if info.state != "static" && info.ip != STATIC_IP {
            assert!((100..=119).contains(&info.ip.octets()[3]), "{info:?}");
        }
    }
}

#[test]
fn raw_random_bytes_never_panic() {
    let t0 = Instant::now();
    let mut server = server();
    let mut rng = Jitter::new(99);
    for _ in 0..20_000 {
        let len = rng.below(700);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        // Make most of them get past the header checks.
        if bytes.len() >= 240 && rng.below(4) != 0 {
            bytes[..3].copy_from_slice(&[1, 1, 6]);
            bytes[28] &= 0xfe;
            bytes[236..240].copy_from_slice(&[99, 130, 83, 99]);
            bytes[24..28].fill(0);
        }
        server.handle(t0, mac(1), &bytes);
    }
    assert_eq!(server.counters().drop_decoder_panic, 0);
}

#[test]
fn export_import_round_trip_across_restarts() {
    let t0 = Instant::now();
    let wall0 = SystemTime::UNIX_EPOCH + secs(1_700_000_000);
    let mut first = server();
    let a = dora(&mut first, t0, mac(1));
    let b = dora(&mut first, t0 + secs(600), mac(2));
    Msg::request(mac(3))
        .client_id(b"\x01three")
        .hostname("tv")
        .requested(ip(160))
        .to(&mut first, t0 + secs(1200))
        .unwrap();
    // Offers are not exported.
    Msg::discover(mac(4))
        .to(&mut first, t0 + secs(1200))
        .unwrap();
    let stored = first.export(t0 + secs(1800), wall0 + secs(1800));
    assert_eq!(stored.len(), 3);
    let json = serde_json::to_string(&stored).unwrap();
    let stored: Vec<StoredLease> = serde_json::from_str(&json).unwrap();
    let tv = stored.iter().find(|s| s.ip == ip(160)).unwrap();
    assert_eq!(tv.mac, "02:00:00:00:01:03");
    assert_eq!(tv.client_id.as_deref(), Some("017468726565"));
    assert_eq!(tv.hostname.as_deref(), Some("tv"));
    assert_eq!(tv.expires_unix, 1_700_000_000 + 1200 + HOUR);

    // Restart 15 minutes of wall time later, with a new Instant base:
    // the first lease (expiring at wall0 + 1 h) has 15 min left.
    let t1 = t0 + secs(50_000);
    let mut second = server();
    second.import(t1, wall0 + secs(2700), stored.clone());
    assert_eq!(second.counters().imported, 3);
    let infos = second.leases(t1);
    let expires = |address| {
        infos
            .iter()
            .find(|info| info.ip == address)
            .and_then(|info| info.expires)
    };
    assert_eq!(expires(a), Some(t1 + secs(900)));
    assert_eq!(expires(b), Some(t1 + secs(1500)));
    assert_eq!(expires(ip(160)), Some(t1 + secs(2100)));
    // And back out again: same wall-clock expiries.
    let again = second.export(t1, wall0 + secs(2700));
    assert_eq!(again, stored);
    // The client-id client is still known by its id.
    let ack = Msg::request(mac(3))
        .client_id(b"\x01three")
        .ciaddr(ip(160))
        .to(&mut second, t1)
        .unwrap();
    assert_eq!(kind(&ack), MessageType::Ack);

    // A third restart after the first lease ran out, with junk added.
    let mut junk = stored.clone();
    let entry = |mac: &str, address: Ipv4Addr| StoredLease {
        mac: mac.to_owned(),
        ip: address,
        hostname: None,
        client_id: None,
        expires_unix: 1_700_000_000 + 10 * HOUR,
    };
    junk.push(entry("02:00:00:00:09:01", Ipv4Addr::new(10, 0, 0, 1)));
    junk.push(entry("02:00:00:00:09:02", SERVER));
    junk.push(entry("02:00:00:00:09:03", ip(0)));
    junk.push(entry("02:00:00:00:09:04", ip(255)));
    junk.push(entry("02:00:00:00:09:05", STATIC_IP));
    junk.push(entry("not a mac", ip(170)));
    junk.push(entry("02:00:00:00:09:06", b));
    junk.push(StoredLease {
        client_id: Some("xyz".to_owned()),
        ..entry("02:00:00:00:09:07", ip(171))
    });
    junk.push(entry("02:00:00:00:09:08", ip(172)));
    let t2 = t1 + secs(10_000);
    let mut third = server();
    third.import(t2, wall0 + secs(3700), junk);
    // b, tv and the last valid junk entry come back; the rest does not.
    assert_eq!(third.counters().imported, 3);
    assert_eq!(third.counters().import_rejected, 9);
    assert!(
        third.take_dirty(),
        "rejected entries are cleaned up by a save"
    );
    let states: Vec<_> = third
        .leases(t2)
        .into_iter()
        .filter(|info| info.state == "bound")
        .map(|info| info.ip)
        .collect();
    assert_eq!(states, vec![b, ip(160), ip(172)]);
    // A stored expiry far in the future is capped at the lease time.
    let mut fourth = server();
    fourth.import(
        t2,
        wall0,
        vec![StoredLease {
            expires_unix: u64::MAX,
            ..entry("02:00:00:00:09:09", ip(180))
        }],
    );
    assert_eq!(
        fourth.leases(t2).last().and_then(|info| info.expires),
        Some(t2 + secs(HOUR))
    );
}

#[test]
fn expiry_over_simulated_days() {
    let t0 = Instant::now();
    let mut server = server();
    let renewing = dora(&mut server, t0, mac(1));
    let vanishing = dora(&mut server, t0, mac(2));
    // An offer never taken.
    Msg::discover(mac(3)).to(&mut server, t0).unwrap();
    server.take_dirty();
    let mut now = t0;
    let mut expired_at = None;
    let mut last_deadline = None;
    // Three days in 10-minute steps; mac(1) renews at T1 for two days.
    let mut renew_at = t0 + secs(HOUR / 2);
    while now < t0 + secs(3 * 24 * HOUR) {
        now += secs(600);
        if now >= renew_at && now < t0 + secs(2 * 24 * HOUR) {
            let ack = Msg::request(mac(1))
                .ciaddr(renewing)
                .to(&mut server, now)
                .unwrap();
            assert_eq!(kind(&ack), MessageType::Ack);
            renew_at = now + secs(HOUR / 2);
        }
        let deadline = server.poll(now);
        if let Some(deadline) = deadline {
            assert!(deadline > now);
        }
        if expired_at.is_none() && state_of(&server, now, vanishing).is_none() {
            expired_at = Some(now);
            assert!(server.take_dirty());
        }
        last_deadline = deadline;
        // The last renewal is shortly before two days; one lease time later
        // the address is gone.
        if now <= t0 + secs(2 * 24 * HOUR) {
            assert_eq!(state_of(&server, now, renewing), Some("bound"), "{now:?}");
        } else if now >= t0 + secs(2 * 24 * HOUR + HOUR) {
            assert_eq!(state_of(&server, now, renewing), None, "{now:?}");
        }
    }
    // The unrenewed lease ended at the first poll past one hour.
    assert_eq!(expired_at, Some(t0 + secs(HOUR)));
    assert_eq!(server.counters().offers_expired, 1);
    assert_eq!(server.counters().leases_expired, 2);
    assert_eq!(last_deadline, None, "nothing left to expire");
    assert!(server
        .leases(now)
        .into_iter()
        .all(|info| info.state == "static"));
    // Everything is free again: lowest first.
    assert_eq!(dora(&mut server, now, mac(9)), ip(100));
}

#[test]
fn offers_expire_after_the_hold() {
    let t0 = Instant::now();
    let mut server = server();
    Msg::discover(mac(1)).to(&mut server, t0).unwrap();
    assert_eq!(server.poll(t0), Some(t0 + DEFAULT_OFFER_HOLD));
    server.poll(t0 + DEFAULT_OFFER_HOLD);
    assert_eq!(state_of(&server, t0 + DEFAULT_OFFER_HOLD, ip(100)), None);
    // A late REQUEST for a still-free address is granted anyway.
    let ack = Msg::request(mac(1))
        .requested(ip(100))
        .server_id(SERVER)
        .to(&mut server, t0 + secs(120))
        .unwrap();
    assert_eq!(kind(&ack), MessageType::Ack);
}

#[test]
fn reload_keeps_leases_that_still_fit() {
    let t0 = Instant::now();
    let mut server = server();
    let a = dora(&mut server, t0, mac(1));
    let b = dora(&mut server, t0, mac(2));
    let c = dora(&mut server, t0, mac(3));
    dora(&mut server, t0, STATIC_MAC);
    server.take_dirty();
    let mut cfg = config();
    // b's address leaves the pool; mac(3) gets a reservation.
    cfg.range = (ip(100), ip(100));
    cfg.static_leases.push(StaticLease {
        mac: mac(3),
        ip: ip(30),
        hostname: None,
    });
    server.set_config(cfg.clone());
    assert!(server.take_dirty());
    assert_eq!(state_of(&server, t0, a), Some("bound"));
    assert_eq!(state_of(&server, t0, b), None);
    assert_eq!(state_of(&server, t0, c), None);
    assert_eq!(state_of(&server, t0, ip(30)), Some("static"));
    // The unchanged static host stays bound.
    assert_eq!(state_of(&server, t0, STATIC_IP), Some("bound"));
    // b renewing is told to start over.
    let nak = Msg::request(mac(2)).ciaddr(b).to(&mut server, t0).unwrap();
    assert_eq!(kind(&nak), MessageType::Nak);
    // The same configuration again changes nothing.
    server.set_config(cfg);
    assert!(!server.take_dirty());
    assert_eq!(state_of(&server, t0, a), Some("bound"));
}

#[test]
fn invalid_configuration_does_not_panic() {
    let t0 = Instant::now();
    for (prefix_len, range) in [
        (32, (ip(100), ip(199))),
        (31, (ip(0), ip(1))),
        (0, (ip(100), ip(199))),
        (24, (ip(199), ip(100))),
        (
            24,
            (Ipv4Addr::new(10, 0, 0, 0), Ipv4Addr::new(10, 0, 0, 255)),
        ),
        (8, (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)),
    ] {
        let cfg = Dhcp4Config {
            prefix_len,
            range,
            lease_time: Duration::ZERO,
            offer_hold: Duration::MAX,
            decline_quarantine: Duration::MAX,
            max_leases: 0,
            domain: Some("bad domain!".to_owned()),
            static_leases: vec![StaticLease {
                mac: [0xff; 6],
                ip: SERVER,
                hostname: Some("x".repeat(300)),
            }],
            ..config()
        };
        let mut server = Dhcp4Server::new(cfg, 0);
        for n in 1..4 {
            if let Some(reply) = Msg::discover(mac(n)).to(&mut server, t0) {
                let address = yiaddr(&reply);
                assert_ne!(address, SERVER);
                Msg::request(mac(n))
                    .requested(address)
                    .server_id(SERVER)
                    .to(&mut server, t0);
            }
        }
        server.poll(t0 + secs(100_000));
    }
}
