//! Neighbor discovery engine of the control thread: ARP (RFC 826), IPv6
//! Neighbor Discovery (RFC 4861), duplicate address detection (RFC 4862)
//! and echo replies for the router's own addresses.
//!
//! The router's interfaces carry no kernel addresses, so nothing else
//! answers ARP/NDP for them: the workers punt those frames (and packets
//! whose next-hop MAC is unknown) to the control thread, which feeds them
//! here and publishes [`NeighborEngine::entries`] back to the workers.
//!
//! The engine is sans-IO: it only reacts to `(now, frame)` inputs and to
//! [`NeighborEngine::poll`], returning frames to transmit and the next
//! deadline. It owns no clock, socket or thread, so tests drive hours of
//! protocol time in milliseconds.
//!
//! Every input is untrusted: malformed or unexpected frames are dropped
//! with a named counter, and every table has a hard bound.

mod counters;
pub(crate) mod frames;
mod table;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, Icmpv4Message, Icmpv4Packet,
    Icmpv4Repr, Icmpv6Message, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet, Ipv4Repr,
    Ipv6Packet, Ipv6Repr, NdiscNeighborFlags, NdiscRepr, RawHardwareAddress, ETHERNET_HEADER_LEN,
};

pub use counters::NeighCounters;
pub use table::{NeighState, NeighborInfo};

use frames::{ArpFields, Icmpv6Frame};
use table::{Entry, Table, TableFull};

pub type Mac = [u8; 6];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Wan,
    Lan,
}

impl Side {
    const ALL: [Side; 2] = [Side::Wan, Side::Lan];

    pub(crate) fn idx(self) -> usize {
        match self {
            Side::Wan => 0,
            Side::Lan => 1,
        }
    }

    pub(crate) fn other(self) -> Side {
        match self {
            Side::Wan => Side::Lan,
            Side::Lan => Side::Wan,
        }
    }
}

/// The router's own addresses on one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceAddrs {
    pub mac: Mac,
    /// Address and prefix length; ARP is answered and neighbors learned
    /// only within this subnet.
    pub ipv4: Option<(Ipv4Addr, u8)>,
    pub link_local: Ipv6Addr,
    /// Global addresses with their prefix lengths.
    pub ipv6: Vec<(Ipv6Addr, u8)>,
    /// IP MTU; `resolve` refuses larger packets.
    pub mtu: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighConfig {
    /// Resolved entries per side.
    pub max_entries: usize,
    /// INCOMPLETE entries per side, on top of `max_entries`.
    pub max_incomplete: usize,
    /// Packets held per INCOMPLETE neighbor; the oldest is dropped first.
    pub hold_per_neighbor: usize,
    /// REACHABLE lifetime after a confirmation.
    pub reachable: Duration,
    /// A STALE entry unused this long is removed.
    pub stale_gc: Duration,
    /// Interval between ARP/NS retransmissions, and the DAD wait.
    pub retrans: Duration,
    /// Requests sent before giving up on resolution or a probe.
    pub max_probes: u32,
}

impl Default for NeighConfig {
    fn default() -> Self {
        Self {
            max_entries: 1024,
            max_incomplete: 64,
            hold_per_neighbor: 4,
            reachable: Duration::from_secs(30),
            stale_gc: Duration::from_secs(20 * 60),
            retrans: Duration::from_secs(1),
            max_probes: 3,
        }
    }
}

impl NeighConfig {
    /// Longest interval honored. Capping keeps `Instant + Duration` far from
    /// overflow whatever the configuration says.
    const MAX_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

    fn sanitized(mut self) -> Self {
        for d in [&mut self.reachable, &mut self.stale_gc, &mut self.retrans] {
            *d = (*d).min(Self::MAX_INTERVAL);
        }
        // Zero probes would abandon every resolution before asking.
        self.max_probes = self.max_probes.max(1);
        self
    }
}

/// A complete Ethernet frame to transmit on `side`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub side: Side,
    pub frame: Vec<u8>,
}

/// An input of the engine.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// A frame punted by a worker.
    Frame(&'a [u8]),
}

/// What [`NeighborEngine::handle_frame`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Answered an ARP request for our IPv4 address.
    ArpReplied,
    /// An ARP reply to our request resolved or confirmed a neighbor.
    ArpLearned,
    /// Answered a Neighbor Solicitation for one of our addresses.
    NaSent,
    /// A Neighbor Advertisement updated an existing entry.
    NaAccepted,
    /// Answered an echo request (IPv4 or IPv6).
    EchoReplied,
    /// Another node uses one of our tentative addresses.
    DadConflict,
    /// Valid, but of a kind this engine does not process (RA, RS, TCP to
    /// us, ...); other control-thread modules may want it.
    Unhandled,
    /// Dropped; the counter named after the reason was incremented.
    Dropped(DropReason),
}

/// Why a frame was dropped; each maps to one counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// `malformed`: not parseable as Ethernet/IPv4/IPv6/ICMP.
    Malformed,
    /// `not_for_us`: valid but addressed to someone else.
    NotForUs,
    /// `own_frame`: sent by us and reflected back.
    OwnFrame,
    /// `arp_bad`
    ArpBad,
    /// `arp_unsolicited`: a reply we did not ask for (RFC 826 merge rule).
    ArpUnsolicited,
    /// `arp_conflict`: someone else claims our IPv4 address.
    ArpConflict,
    /// `ns_bad`: fails RFC 4861 7.1.1.
    NsBad,
    /// `na_bad`: fails RFC 4861 7.1.2, or cannot resolve anything.
    NaBad,
    /// `na_unsolicited`: advertises a target we have no entry for.
    NaUnsolicited,
    /// `na_conflict`: someone else advertises one of our addresses.
    NaConflict,
    /// `icmp_checksum_bad`
    ChecksumBad,
    /// `table_full`: the answer could not be stored.
    TableFull,
}

/// How far a learned MAC can be trusted (RFC 4861 7.2.3 / 7.2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Confirm {
    /// The neighbor addressed us (ARP request, NS, unsolicited NA): its
    /// MAC is known but not that our packets reach it.
    Unsolicited,
    /// The neighbor answered our request: two-way reachability.
    Solicited,
}

/// RFC 4862 DupAddrDetectTransmits.
const DAD_TRANSMITS: u32 = 1;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DadState {
    Tentative { sent: u32, timer: Instant },
    Usable,
    Duplicate,
}

#[derive(Clone, Copy, Debug)]
struct OwnAddr {
    addr: Ipv6Addr,
    state: DadState,
}

/// What we are on one interface.
struct Local {
    addrs: IfaceAddrs,
    /// Link-local first, then globals; each with its DAD state.
    own6: Vec<OwnAddr>,
}

struct SideState {
    local: Local,
    table: Table,
}

pub struct NeighborEngine {
    cfg: NeighConfig,
    sides: [SideState; 2],
    generation: u64,
    counters: NeighCounters,
}

impl NeighborEngine {
    pub fn new(cfg: NeighConfig, wan: IfaceAddrs, lan: IfaceAddrs, now: Instant) -> Self {
        let mut counters = NeighCounters::default();
        let mut side = |addrs: IfaceAddrs| SideState {
            local: Local::new(addrs, &[], now, &mut counters),
            table: Table::default(),
        };
        let sides = [side(wan), side(lan)];
        Self {
            cfg: cfg.sanitized(),
            sides,
            generation: 0,
            counters,
        }
    }

    /// Replaces the addresses of `side`. Addresses already present keep
    /// their DAD state; new IPv6 addresses start DAD on the next `poll`.
    /// Neighbors that the new addressing makes invalid (IPv4 off the new
    /// subnet, or now one of our own addresses) are removed.
    pub fn set_addrs(&mut self, side: Side, addrs: IfaceAddrs, now: Instant) {
        let Self {
            sides,
            counters,
            generation,
            ..
        } = self;
        let st = &mut sides[side.idx()];
        st.local = Local::new(addrs, &st.local.own6, now, counters);
        let local = &st.local;
        let mut resolved_removed = false;
        st.table.retain(|ip, e| {
            let keep = match *ip {
                IpAddr::V4(v4) => local.is_ipv4_neighbor(v4),
                IpAddr::V6(v6) => local.own6_state(v6).is_none(),
            };
            if !keep {
                resolved_removed |= e.is_resolved();
                counters.held_dropped += e.held.len() as u64;
            }
            keep
        });
        if resolved_removed {
            *generation += 1;
        }
    }

    /// Feeds one input; see [`Self::handle_frame`].
    pub fn handle(
        &mut self,
        now: Instant,
        side: Side,
        input: Input<'_>,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        match input {
            Input::Frame(frame) => self.handle_frame(now, side, frame, out),
        }
    }

    /// A frame punted to the control thread from `side`: answers ARP, NS
    /// and echo requests for our addresses, learns neighbors from ARP/NDP,
    /// and detects conflicts with our tentative addresses.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        side: Side,
        frame: &[u8],
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return self.drop(DropReason::Malformed);
        };
        let src_mac = eth.src_addr().0;
        let dst_mac = eth.dst_addr().0;
        let our_mac = self.local(side).addrs.mac;
        if src_mac == our_mac {
            // Reflected by a switch or hairpin: answering it (or, during
            // DAD, treating it as a conflict) would be wrong.
            return self.drop(DropReason::OwnFrame);
        }
        if !frames::is_unicast_mac(src_mac) {
            return self.drop(DropReason::Malformed);
        }
        if dst_mac != our_mac && !frames::is_group_mac(dst_mac) {
            return self.drop(DropReason::NotForUs);
        }
        let payload = eth.payload();
        match eth.ethertype() {
            EthernetProtocol::Arp => self.handle_arp(now, side, payload, out),
            EthernetProtocol::Ipv4 => self.handle_ipv4(side, src_mac, payload, out),
            EthernetProtocol::Ipv6 => self.handle_ipv6(now, side, src_mac, payload, out),
            _ => self.unhandled(),
        }
    }

    /// Sends `packet` (a complete frame whose destination MAC is still to
    /// be filled) to `next_hop`, or holds it while the neighbor is resolved.
    /// Misses are bounded by `max_incomplete` and never evict anything.
    pub fn resolve(
        &mut self,
        now: Instant,
        side: Side,
        next_hop: IpAddr,
        packet: &[u8],
        out: &mut Vec<Outgoing>,
    ) {
        let Self {
            cfg,
            sides,
            counters,
            ..
        } = self;
        let SideState { local, table } = &mut sides[side.idx()];
        let max_len = ETHERNET_HEADER_LEN + usize::from(local.addrs.mtu);
        if packet.len() < ETHERNET_HEADER_LEN
            || packet.len() > max_len
            || !local.is_valid_next_hop(next_hop)
        {
            counters.resolve_invalid += 1;
            return;
        }
        if let Some(e) = table.get_mut(&next_hop) {
            if e.is_resolved() {
                mark_used(e, now);
                let mut frame = packet.to_vec();
                fill_dst_mac(&mut frame, e.mac);
                out.push(Outgoing { side, frame });
                counters.resolve_hit += 1;
            } else {
                hold(e, packet, cfg.hold_per_neighbor, counters);
            }
            return;
        }
        let Some(e) = table.insert_incomplete(next_hop, now, cfg.max_incomplete) else {
            counters.incomplete_full += 1;
            return;
        };
        hold(e, packet, cfg.hold_per_neighbor, counters);
        if let Some(frame) = local.solicit(next_hop, None, counters) {
            out.push(Outgoing { side, frame });
        }
        e.probes = 1;
        e.timer = now + cfg.retrans;
    }

    /// Runs every timer due at `now` and returns the next deadline.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> Option<Instant> {
        for side in Side::ALL {
            // DAD first: an address becoming usable here can already source
            // the solicitations sent below.
            self.poll_dad(now, side, out);
            self.poll_neighbors(now, side, out);
        }
        self.next_deadline()
    }

    /// The dataplane forwarded to `ip`: keeps the entry from being
    /// collected and, if it is STALE, has it reconfirmed by a unicast probe.
    pub fn touch(&mut self, now: Instant, side: Side, ip: IpAddr) {
        if let Some(e) = self.sides[side.idx()].table.get_mut(&ip) {
            if e.is_resolved() {
                mark_used(e, now);
            }
        }
    }

    /// Resolved neighbors `(side, ip, mac)` for the dataplane snapshot.
    pub fn entries(&self) -> impl Iterator<Item = (Side, IpAddr, Mac)> + '_ {
        Side::ALL.into_iter().flat_map(move |side| {
            self.sides[side.idx()]
                .table
                .iter()
                .filter(|(_, e)| e.is_resolved())
                .map(move |(ip, e)| (side, *ip, e.mac))
        })
    }

    /// Bumped whenever the content of [`Self::entries`] changes.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The whole table (INCOMPLETE entries included), sorted by side and IP.
    pub fn dump(&self, now: Instant) -> Vec<NeighborInfo> {
        let mut rows: Vec<NeighborInfo> = Side::ALL
            .into_iter()
            .flat_map(|side| {
                self.sides[side.idx()]
                    .table
                    .iter()
                    .map(move |(ip, e)| e.info(side, *ip, now))
            })
            .collect();
        rows.sort_by_key(|r| (r.side.idx(), r.ip));
        rows
    }

    pub fn counters(&self) -> &NeighCounters {
        &self.counters
    }

    /// Own IPv6 addresses of `side` that passed DAD.
    pub fn usable_ipv6(&self, side: Side) -> Vec<Ipv6Addr> {
        self.local(side)
            .own6
            .iter()
            .filter(|a| a.state == DadState::Usable)
            .map(|a| a.addr)
            .collect()
    }

    /// Own IPv6 addresses of `side` that are tentative or usable: those
    /// whose solicited-node group we listen to (RFC 4862 5.4.2). A
    /// duplicate is not ours, so its group is left.
    pub fn assigned_ipv6(&self, side: Side) -> Vec<Ipv6Addr> {
        self.local(side)
            .own6
            .iter()
            .filter(|a| a.state != DadState::Duplicate)
            .map(|a| a.addr)
            .collect()
    }

    /// Own IPv6 addresses found to be in use by another node.
    pub fn dad_failed(&self) -> Vec<(Side, Ipv6Addr)> {
        Side::ALL
            .into_iter()
            .flat_map(|side| {
                self.local(side)
                    .own6
                    .iter()
                    .filter(|a| a.state == DadState::Duplicate)
                    .map(move |a| (side, a.addr))
            })
            .collect()
    }

    fn local(&self, side: Side) -> &Local {
        &self.sides[side.idx()].local
    }

    fn unhandled(&mut self) -> Verdict {
        self.counters.unhandled += 1;
        Verdict::Unhandled
    }

    fn drop(&mut self, reason: DropReason) -> Verdict {
        let c = &mut self.counters;
        *match reason {
            DropReason::Malformed => &mut c.malformed,
            DropReason::NotForUs => &mut c.not_for_us,
            DropReason::OwnFrame => &mut c.own_frame,
            DropReason::ArpBad => &mut c.arp_bad,
            DropReason::ArpUnsolicited => &mut c.arp_unsolicited,
            DropReason::ArpConflict => &mut c.arp_conflict,
            DropReason::NsBad => &mut c.ns_bad,
            DropReason::NaBad => &mut c.na_bad,
            DropReason::NaUnsolicited => &mut c.na_unsolicited,
            DropReason::NaConflict => &mut c.na_conflict,
            DropReason::ChecksumBad => &mut c.icmp_checksum_bad,
            // Counted where the refusal happens, with its held packets.
            DropReason::TableFull => return Verdict::Dropped(reason),
        } += 1;
        Verdict::Dropped(reason)
    }

    fn handle_arp(
        &mut self,
        now: Instant,
        side: Side,
        payload: &[u8],
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        self.counters.arp_rx += 1;
        let Ok(packet) = ArpPacket::new_checked(payload) else {
            return self.drop(DropReason::ArpBad);
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr: spa,
            target_protocol_addr: tpa,
            ..
        }) = ArpRepr::parse(&packet)
        else {
            return self.drop(DropReason::ArpBad);
        };
        let sha = source_hardware_addr.0;
        let local = self.local(side);
        let our_mac = local.addrs.mac;
        let Some(our_ip) = local.ipv4() else {
            return self.drop(DropReason::NotForUs);
        };
        if !frames::is_unicast_mac(sha) || spa.is_multicast() || spa.is_broadcast() {
            return self.drop(DropReason::ArpBad);
        }
        if sha == our_mac {
            return self.drop(DropReason::OwnFrame);
        }
        if spa == our_ip {
            log::warn!("{side:?}: {spa} is also used by {sha:02x?}");
            return self.drop(DropReason::ArpConflict);
        }
        if tpa != our_ip {
            return self.drop(DropReason::NotForUs);
        }
        let sender = IpAddr::V4(spa);
        let sender_is_neighbor = local.is_ipv4_neighbor(spa);
        match operation {
            ArpOperation::Request => {
                // RFC 826 merge rule: a request aimed at us means the sender
                // is about to talk to us, so its MAC is worth caching (as
                // STALE: nothing proves our frames reach it yet). Probes
                // from 0.0.0.0 (RFC 5227) and off-subnet senders are still
                // answered but teach nothing. A full table only costs the
                // learning, not the reply.
                if sender_is_neighbor {
                    let _ = self.learn(now, side, sender, sha, Confirm::Unsolicited, out);
                }
                let frame = frames::arp(
                    sha,
                    ArpFields {
                        op: ArpOperation::Reply,
                        sha: our_mac,
                        spa: our_ip,
                        tha: sha,
                        tpa: spa,
                    },
                );
                out.push(Outgoing { side, frame });
                self.counters.arp_reply_tx += 1;
                Verdict::ArpReplied
            }
            ArpOperation::Reply => {
                if !sender_is_neighbor {
                    return self.drop(DropReason::ArpBad);
                }
                // Only replies we are waiting for may set a MAC: otherwise
                // any host could redirect our traffic with one frame.
                let asked = self.sides[side.idx()].table.get(&sender).is_some_and(|e| {
                    matches!(
                        e.state,
                        NeighState::Incomplete | NeighState::Probe | NeighState::Unreachable
                    )
                });
                if !asked {
                    return self.drop(DropReason::ArpUnsolicited);
                }
                match self.learn(now, side, sender, sha, Confirm::Solicited, out) {
                    Ok(()) => {
                        self.counters.arp_learned += 1;
                        Verdict::ArpLearned
                    }
                    Err(TableFull) => self.drop(DropReason::TableFull),
                }
            }
            _ => self.drop(DropReason::ArpBad),
        }
    }

    fn handle_ipv4(
        &mut self,
        side: Side,
        src_mac: Mac,
        payload: &[u8],
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        let Ok(packet) = Ipv4Packet::new_checked(payload) else {
            return self.drop(DropReason::Malformed);
        };
        // Also verifies the header checksum and rejects fragments.
        let Ok(ip) = Ipv4Repr::parse(&packet, &ChecksumCapabilities::default()) else {
            return self.drop(DropReason::Malformed);
        };
        let local = self.local(side);
        let Some(our_ip) = local.ipv4().filter(|a| *a == ip.dst_addr) else {
            return self.drop(DropReason::NotForUs);
        };
        let our_mac = local.addrs.mac;
        if ip.next_header != IpProtocol::Icmp {
            return self.unhandled();
        }
        let Ok(icmp) = Icmpv4Packet::new_checked(packet.payload()) else {
            return self.drop(DropReason::Malformed);
        };
        if !icmp.verify_checksum() {
            return self.drop(DropReason::ChecksumBad);
        }
        if icmp.msg_type() != Icmpv4Message::EchoRequest {
            return self.unhandled();
        }
        let Ok(Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data,
        }) = Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::ignored())
        else {
            return self.drop(DropReason::Malformed);
        };
        if !is_unicast4(ip.src_addr) {
            return self.drop(DropReason::Malformed);
        }
        // Answer the MAC the request came from: for off-link senders that is
        // the gateway, which needs no neighbor entry of ours.
        let frame = frames::echo4_reply(
            frames::Echo4 {
                src_mac: our_mac,
                dst_mac: src_mac,
                src_ip: our_ip,
                dst_ip: ip.src_addr,
            },
            ident,
            seq_no,
            data,
        );
        out.push(Outgoing { side, frame });
        self.counters.echo_reply_tx += 1;
        Verdict::EchoReplied
    }

    fn handle_ipv6(
        &mut self,
        now: Instant,
        side: Side,
        src_mac: Mac,
        payload: &[u8],
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        let Ok(packet) = Ipv6Packet::new_checked(payload) else {
            return self.drop(DropReason::Malformed);
        };
        let Ok(ip) = Ipv6Repr::parse(&packet) else {
            return self.drop(DropReason::Malformed);
        };
        // Weak host model for global addresses: a DNS reply to our LAN
        // address arrives on the WAN. Link-local ones stay on their link.
        let other = side.other();
        let ours = self.local(side).own6_state(ip.dst_addr).is_some()
            || (!is_link_local6(ip.dst_addr) && self.local(other).is_usable6(ip.dst_addr));
        if !ip.dst_addr.is_multicast() && !ours {
            return self.drop(DropReason::NotForUs);
        }
        if ip.next_header != IpProtocol::Icmpv6 {
            return self.unhandled();
        }
        // Bounded by the IPv6 payload length, so Ethernet padding is excluded.
        let icmp = packet.payload();
        let Some(&msg_type) = icmp.first() else {
            return self.drop(DropReason::Malformed);
        };
        match Icmpv6Message::from(msg_type) {
            Icmpv6Message::NeighborSolicit => self.handle_ns(now, side, src_mac, &ip, icmp, out),
            Icmpv6Message::NeighborAdvert => self.handle_na(now, side, &ip, icmp, out),
            Icmpv6Message::EchoRequest => self.handle_echo6(side, src_mac, &ip, icmp, out),
            _ => self.unhandled(),
        }
    }

    fn handle_ns(
        &mut self,
        now: Instant,
        side: Side,
        src_mac: Mac,
        ip: &Ipv6Repr,
        bytes: &[u8],
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        self.counters.ns_rx += 1;
        let (target, lladdr) = match parse_ndisc(ip, bytes) {
            Ok(Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                target_addr,
                lladdr,
            })) => (target_addr, lladdr),
            Ok(_) | Err(NdpError::Invalid) => return self.drop(DropReason::NsBad),
            Err(NdpError::Checksum) => return self.drop(DropReason::ChecksumBad),
        };
        let Ok(lla) = option_lladdr(lladdr) else {
            return self.drop(DropReason::NsBad);
        };
        // RFC 4861 7.1.1: a solicitation from :: is DAD, which must go to
        // the solicited-node group and cannot carry a source LLA.
        let from_dad = ip.src_addr.is_unspecified();
        if !is_unicast6(target)
            || ip.src_addr.is_multicast()
            || (from_dad && (!frames::is_solicited_node(ip.dst_addr) || lla.is_some()))
        {
            return self.drop(DropReason::NsBad);
        }
        if ip.dst_addr.is_multicast() && ip.dst_addr != frames::solicited_node(target) {
            return self.drop(DropReason::NotForUs);
        }
        let local = self.local(side);
        if local.own6_state(ip.src_addr).is_some() {
            // Sourced from one of our addresses by another MAC: answering
            // would teach us a neighbor entry for ourselves.
            return self.drop(DropReason::NsBad);
        }
        match local.own6_state(target) {
            Some(DadState::Usable) => {}
            Some(DadState::Tentative { .. }) if from_dad => return self.dad_conflict(side, target),
            // RFC 4862 5.4.3: a node resolving our tentative address is no
            // conflict, and we may not answer for the address yet.
            _ => return self.drop(DropReason::NotForUs),
        }
        if !ip.dst_addr.is_multicast() && !local.is_usable6(ip.dst_addr) {
            return self.drop(DropReason::NotForUs);
        }
        let our_mac = local.addrs.mac;
        let src_ip = local.ndp_source().unwrap_or(target);
        let (dst_ip, dst_mac, solicited) = if from_dad {
            // The soliciting node has no address to answer: tell everyone
            // (RFC 4861 7.2.4), so its DAD fails.
            (ALL_NODES, frames::ipv6_multicast_mac(ALL_NODES), false)
        } else {
            if let Some(mac) = lla {
                let sender = IpAddr::V6(ip.src_addr);
                let _ = self.learn(now, side, sender, mac, Confirm::Unsolicited, out);
            }
            // Without a source LLA the solicitation still came from the
            // Ethernet source; answering there saves a resolution round.
            (ip.src_addr, lla.unwrap_or(src_mac), true)
        };
        let mut flags = NdiscNeighborFlags::ROUTER | NdiscNeighborFlags::OVERRIDE;
        flags.set(NdiscNeighborFlags::SOLICITED, solicited);
        let frame = frames::neighbor_advert(
            Icmpv6Frame {
                src_mac: our_mac,
                dst_mac,
                src_ip,
                dst_ip,
                hop_limit: frames::NDP_HOP_LIMIT,
            },
            flags,
            target,
        );
        out.push(Outgoing { side, frame });
        self.counters.na_tx += 1;
        Verdict::NaSent
    }

    fn handle_na(
        &mut self,
        now: Instant,
        side: Side,
        ip: &Ipv6Repr,
        bytes: &[u8],
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        self.counters.na_rx += 1;
        let (flags, target, lladdr) = match parse_ndisc(ip, bytes) {
            Ok(Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            })) => (flags, target_addr, lladdr),
            Ok(_) | Err(NdpError::Invalid) => return self.drop(DropReason::NaBad),
            Err(NdpError::Checksum) => return self.drop(DropReason::ChecksumBad),
        };
        let Ok(lla) = option_lladdr(lladdr) else {
            return self.drop(DropReason::NaBad);
        };
        let solicited = flags.contains(NdiscNeighborFlags::SOLICITED);
        // RFC 4861 7.1.2: answers to a solicitation are unicast.
        if !is_unicast6(target)
            || !is_unicast6(ip.src_addr)
            || (ip.dst_addr.is_multicast() && solicited)
        {
            return self.drop(DropReason::NaBad);
        }
        match self.local(side).own6_state(target) {
            Some(DadState::Tentative { .. }) => return self.dad_conflict(side, target),
            Some(_) => {
                log::warn!("{side:?}: another node advertises our address {target}");
                return self.drop(DropReason::NaConflict);
            }
            None => {}
        }
        let key = IpAddr::V6(target);
        let Some(entry) = self.sides[side.idx()].table.get_mut(&key) else {
            // Never create entries from advertisements nobody asked for.
            return self.drop(DropReason::NaUnsolicited);
        };
        if !entry.is_resolved() {
            let Some(mac) = lla else {
                // RFC 4861 7.2.5: without a target LLA it resolves nothing.
                return self.drop(DropReason::NaBad);
            };
            let confirm = if solicited {
                Confirm::Solicited
            } else {
                Confirm::Unsolicited
            };
            return match self.learn(now, side, key, mac, confirm, out) {
                Ok(()) => Verdict::NaAccepted,
                Err(TableFull) => self.drop(DropReason::TableFull),
            };
        }
        // RFC 4861 7.2.5 for an entry that already has a MAC.
        let changed = lla.is_some_and(|m| m != entry.mac);
        if changed && !flags.contains(NdiscNeighborFlags::OVERRIDE) {
            // Keep the cached MAC, but stop trusting it blindly.
            if entry.state == NeighState::Reachable {
                entry.state = NeighState::Stale;
                entry.updated = now;
            }
            return Verdict::NaAccepted;
        }
        if let Some(mac) = lla.filter(|_| changed) {
            entry.mac = mac;
            self.generation += 1;
        }
        if solicited {
            entry.state = NeighState::Reachable;
            entry.timer = now + self.cfg.reachable;
            entry.probes = 0;
            entry.updated = now;
        } else if changed {
            entry.state = NeighState::Stale;
            entry.probes = 0;
            entry.updated = now;
        }
        Verdict::NaAccepted
    }

    fn handle_echo6(
        &mut self,
        side: Side,
        src_mac: Mac,
        ip: &Ipv6Repr,
        bytes: &[u8],
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        let local = self.local(side);
        // Tentative addresses and multicast groups are not answered for.
        if !local.is_usable6(ip.dst_addr) {
            return self.drop(DropReason::NotForUs);
        }
        let our_mac = local.addrs.mac;
        let Ok(icmp) = Icmpv6Packet::new_checked(bytes) else {
            return self.drop(DropReason::Malformed);
        };
        if !icmp.verify_checksum(&ip.src_addr, &ip.dst_addr) {
            return self.drop(DropReason::ChecksumBad);
        }
        let Ok(Icmpv6Repr::EchoRequest {
            ident,
            seq_no,
            data,
        }) = Icmpv6Repr::parse(
            &ip.src_addr,
            &ip.dst_addr,
            &icmp,
            &ChecksumCapabilities::ignored(),
        )
        else {
            return self.drop(DropReason::Malformed);
        };
        if !is_unicast6(ip.src_addr) {
            return self.drop(DropReason::Malformed);
        }
        // Reply from the address that was pinged, so a request to our
        // link-local address is answered from it.
        let frame = frames::echo6_reply(
            Icmpv6Frame {
                src_mac: our_mac,
                dst_mac: src_mac,
                src_ip: ip.dst_addr,
                dst_ip: ip.src_addr,
                hop_limit: frames::ECHO_HOP_LIMIT,
            },
            ident,
            seq_no,
            data,
        );
        out.push(Outgoing { side, frame });
        self.counters.echo_reply_tx += 1;
        Verdict::EchoReplied
    }

    fn dad_conflict(&mut self, side: Side, addr: Ipv6Addr) -> Verdict {
        let own = &mut self.sides[side.idx()].local.own6;
        if let Some(a) = own.iter_mut().find(|a| a.addr == addr) {
            a.state = DadState::Duplicate;
        }
        self.counters.dad_conflict += 1;
        log::warn!("{side:?}: duplicate address {addr}, not using it");
        Verdict::DadConflict
    }

    /// Records `mac` for `ip` per RFC 4861 7.2.3/7.2.5 (and the RFC 826
    /// merge rule for ARP). An INCOMPLETE entry moves to the resolved
    /// budget and releases its held packets, evicting the LRU STALE entry
    /// if that budget is spent. A neighbor we did not ask for (it sent an
    /// NS or ARP request) gets an entry only while the budget has room:
    /// announcing oneself costs nothing, so a flood of solicitations from
    /// made-up sources must never displace a neighbor we know (RFC 6583:
    /// existing entries before new ones).
    fn learn(
        &mut self,
        now: Instant,
        side: Side,
        ip: IpAddr,
        mac: Mac,
        confirm: Confirm,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), TableFull> {
        let Self {
            cfg,
            sides,
            generation,
            counters,
        } = self;
        let table = &mut sides[side.idx()].table;
        let solicited = confirm == Confirm::Solicited;
        if let Some(e) = table.get_mut(&ip).filter(|e| e.is_resolved()) {
            let changed = e.mac != mac;
            if solicited {
                e.state = NeighState::Reachable;
                e.timer = now + cfg.reachable;
                e.probes = 0;
                e.updated = now;
            } else if changed {
                e.state = NeighState::Stale;
                e.probes = 0;
                e.updated = now;
            }
            if changed {
                e.mac = mac;
                *generation += 1;
            }
            return Ok(());
        }
        // Whatever is left under `ip` is INCOMPLETE: our own resolution.
        let asked = table.remove(&ip);
        let may_evict = asked.is_some();
        let (held, last_used) = asked.map_or((VecDeque::new(), now), |e| (e.held, e.last_used));
        let entry = Entry {
            state: if solicited {
                NeighState::Reachable
            } else {
                NeighState::Stale
            },
            mac,
            held: VecDeque::new(),
            probes: 0,
            timer: now + cfg.reachable,
            last_used,
            updated: now,
        };
        match table.insert_resolved(ip, entry, cfg.max_entries, may_evict) {
            Ok(evicted) => {
                if evicted.is_some() {
                    counters.stale_evicted += 1;
                }
                *generation += 1;
            }
            Err(TableFull) => {
                counters.table_full += 1;
                counters.held_dropped += held.len() as u64;
                return Err(TableFull);
            }
        }
        counters.held_sent += held.len() as u64;
        out.extend(held.into_iter().map(|mut frame| {
            fill_dst_mac(&mut frame, mac);
            Outgoing { side, frame }
        }));
        Ok(())
    }

    fn poll_dad(&mut self, now: Instant, side: Side, out: &mut Vec<Outgoing>) {
        let Self {
            cfg,
            sides,
            counters,
            ..
        } = self;
        let local = &mut sides[side.idx()].local;
        let our_mac = local.addrs.mac;
        for a in &mut local.own6 {
            let DadState::Tentative { sent, timer } = &mut a.state else {
                continue;
            };
            if *timer > now {
                continue;
            }
            if *sent >= DAD_TRANSMITS {
                a.state = DadState::Usable;
                counters.dad_ok += 1;
                log::info!("{side:?}: {} passed DAD", a.addr);
                continue;
            }
            let group = frames::solicited_node(a.addr);
            let frame = frames::neighbor_solicit(
                our_mac,
                Ipv6Addr::UNSPECIFIED,
                frames::ipv6_multicast_mac(group),
                group,
                a.addr,
            );
            out.push(Outgoing { side, frame });
            counters.ns_tx += 1;
            *sent += 1;
            *timer = now + cfg.retrans;
        }
    }

    fn poll_neighbors(&mut self, now: Instant, side: Side, out: &mut Vec<Outgoing>) {
        let Self {
            cfg,
            sides,
            counters,
            generation,
        } = self;
        let SideState { local, table } = &mut sides[side.idx()];
        let mut resolved_removed = false;
        table.retain(|ip, e| {
            if e.state == NeighState::Reachable && e.timer <= now {
                e.state = NeighState::Stale;
                e.updated = now;
            }
            match e.state {
                NeighState::Incomplete | NeighState::Probe | NeighState::Unreachable
                    if e.timer <= now =>
                {
                    if e.state == NeighState::Probe && e.probes >= cfg.max_probes {
                        counters.unreachable += 1;
                        e.state = NeighState::Unreachable;
                        e.probes = 0;
                        e.updated = now;
                    }
                    let unreachable = e.state == NeighState::Unreachable;
                    let limit = if unreachable {
                        UNREACHABLE_PROBES
                    } else {
                        cfg.max_probes
                    };
                    if e.probes >= limit {
                        if e.is_resolved() {
                            counters.probe_failed += 1;
                            resolved_removed = true;
                        } else {
                            counters.resolve_failed += 1;
                            counters.held_dropped += e.held.len() as u64;
                        }
                        return false;
                    }
                    // PROBE verifies the MAC we have, so it asks it
                    // directly; UNREACHABLE asks the link, in case the
                    // host came back with another MAC.
                    let unicast = (e.state == NeighState::Probe).then_some(e.mac);
                    if let Some(frame) = local.solicit(*ip, unicast, counters) {
                        out.push(Outgoing { side, frame });
                    }
                    e.probes += 1;
                    e.timer = now
                        + if unreachable {
                            unreachable_backoff(cfg.retrans, e.probes)
                        } else {
                            cfg.retrans
                        };
                    true
                }
                NeighState::Stale if e.last_used + cfg.stale_gc <= now => {
                    counters.gc_removed += 1;
                    resolved_removed = true;
                    false
                }
                _ => true,
            }
        });
        if resolved_removed {
            *generation += 1;
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let stale_gc = self.cfg.stale_gc;
        self.sides
            .iter()
            .flat_map(|st| {
                let dad = st.local.own6.iter().filter_map(|a| match a.state {
                    DadState::Tentative { timer, .. } => Some(timer),
                    DadState::Usable | DadState::Duplicate => None,
                });
                let neighbors = st.table.iter().map(move |(_, e)| e.deadline(stale_gc));
                dad.chain(neighbors)
            })
            .min()
    }
}

impl Local {
    /// Builds the own-address list for `addrs`, carrying over the DAD state
    /// of addresses in `previous`; new ones start tentative.
    fn new(addrs: IfaceAddrs, previous: &[OwnAddr], now: Instant, c: &mut NeighCounters) -> Self {
        let mut own6: Vec<OwnAddr> = Vec::with_capacity(addrs.ipv6.len() + 1);
        let candidates = std::iter::once(addrs.link_local).chain(addrs.ipv6.iter().map(|a| a.0));
        for addr in candidates {
            if !is_unicast6(addr) || own6.iter().any(|a| a.addr == addr) {
                continue;
            }
            let kept = previous.iter().find(|a| a.addr == addr).copied();
            own6.push(kept.unwrap_or_else(|| {
                c.dad_started += 1;
                OwnAddr {
                    addr,
                    state: DadState::Tentative {
                        sent: 0,
                        timer: now,
                    },
                }
            }));
        }
        Self { addrs, own6 }
    }

    fn ipv4(&self) -> Option<Ipv4Addr> {
        self.addrs.ipv4.map(|(a, _)| a)
    }

    /// `ip` can be a neighbor: a host address of our subnet other than ours.
    fn is_ipv4_neighbor(&self, ip: Ipv4Addr) -> bool {
        let Some((ours, prefix)) = self.addrs.ipv4 else {
            return false;
        };
        let mask = u32::MAX
            .checked_shl(32 - u32::from(prefix.min(32)))
            .unwrap_or(0);
        let host = u32::from(ip) & !mask;
        // /31 and /32 have no network or broadcast address (RFC 3021).
        let special_host = prefix < 31 && (host == 0 || host == !mask);
        (u32::from(ip) ^ u32::from(ours)) & mask == 0
            && ip != ours
            && is_unicast4(ip)
            && !special_host
    }

    fn own6_state(&self, addr: Ipv6Addr) -> Option<DadState> {
        self.own6.iter().find(|a| a.addr == addr).map(|a| a.state)
    }

    fn is_usable6(&self, addr: Ipv6Addr) -> bool {
        self.own6_state(addr) == Some(DadState::Usable)
    }

    /// Source of our NS/NA: the link-local address, as neighbors expect;
    /// any usable address while it is still tentative.
    fn ndp_source(&self) -> Option<Ipv6Addr> {
        self.own6
            .iter()
            .filter(|a| a.state == DadState::Usable)
            .min_by_key(|a| a.addr != self.addrs.link_local)
            .map(|a| a.addr)
    }

    fn is_valid_next_hop(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.is_ipv4_neighbor(v4),
            IpAddr::V6(v6) => is_unicast6(v6) && self.own6_state(v6).is_none(),
        }
    }

    /// ARP request or NS for `ip`: broadcast / solicited-node multicast, or
    /// unicast to `unicast` when probing a known MAC. `None` if we have no
    /// usable source address on this side yet.
    fn solicit(&self, ip: IpAddr, unicast: Option<Mac>, c: &mut NeighCounters) -> Option<Vec<u8>> {
        let mac = self.addrs.mac;
        let frame = match ip {
            IpAddr::V4(target) => {
                let Some(spa) = self.ipv4() else {
                    c.no_source += 1;
                    return None;
                };
                c.arp_request_tx += 1;
                frames::arp(
                    unicast.unwrap_or(frames::BROADCAST_MAC),
                    ArpFields {
                        op: ArpOperation::Request,
                        sha: mac,
                        spa,
                        tha: unicast.unwrap_or([0; 6]),
                        tpa: target,
                    },
                )
            }
            IpAddr::V6(target) => {
                let Some(src) = self.ndp_source() else {
                    c.no_source += 1;
                    return None;
                };
                let (dst_mac, dst_ip) = match unicast {
                    Some(m) => (m, target),
                    None => {
                        let group = frames::solicited_node(target);
                        (frames::ipv6_multicast_mac(group), group)
                    }
                };
                c.ns_tx += 1;
                frames::neighbor_solicit(mac, src, dst_mac, dst_ip, target)
            }
        };
        Some(frame)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NdpError {
    Checksum,
    /// Fails the RFC 4861 7.1 validation common to all NDP messages.
    Invalid,
}

/// Validation shared by NS and NA (RFC 4861 7.1.1 / 7.1.2): hop limit 255
/// (proves the sender is on-link), checksum, code 0, length, and options of
/// non-zero length (smoltcp rejects those).
pub(crate) fn parse_ndisc<'a>(ip: &Ipv6Repr, bytes: &'a [u8]) -> Result<Icmpv6Repr<'a>, NdpError> {
    let icmp = Icmpv6Packet::new_checked(bytes).map_err(|_| NdpError::Invalid)?;
    if !icmp.verify_checksum(&ip.src_addr, &ip.dst_addr) {
        return Err(NdpError::Checksum);
    }
    if ip.hop_limit != frames::NDP_HOP_LIMIT || icmp.msg_code() != 0 {
        return Err(NdpError::Invalid);
    }
    Icmpv6Repr::parse(
        &ip.src_addr,
        &ip.dst_addr,
        &icmp,
        &ChecksumCapabilities::ignored(),
    )
    .map_err(|_| NdpError::Invalid)
}

/// A link-layer address option must hold a unicast Ethernet MAC if present.
pub(crate) fn option_lladdr(raw: Option<RawHardwareAddress>) -> Result<Option<Mac>, ()> {
    match raw {
        None => Ok(None),
        Some(raw) => frames::ndp_lladdr(raw)
            .filter(|m| frames::is_unicast_mac(*m))
            .map(Some)
            .ok_or(()),
    }
}

fn is_unicast4(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback())
}

pub(crate) fn is_link_local6(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

pub(crate) fn is_unicast6(ip: Ipv6Addr) -> bool {
    !(ip.is_unspecified() || ip.is_multicast() || ip.is_loopback())
}

/// Multicast probes of an UNREACHABLE entry before it is removed: with the
/// RFC 7048 backoff (x3 from `retrans`, at most 60 s) that is about 100 s
/// at the default 1 s.
const UNREACHABLE_PROBES: u32 = 4;

/// RFC 7048 BACKOFF_MULTIPLE and MAX_RETRANS_TIMER.
const BACKOFF_MULTIPLE: u32 = 3;
const MAX_RETRANS_TIMER: Duration = Duration::from_secs(60);

/// The wait after the `sent`th probe of an UNREACHABLE entry.
fn unreachable_backoff(retrans: Duration, sent: u32) -> Duration {
    let factor = BACKOFF_MULTIPLE.saturating_pow(sent.min(16));
    retrans.saturating_mul(factor).min(MAX_RETRANS_TIMER)
}

/// Records use by the dataplane; a STALE entry in use is reconfirmed. RFC
/// 4861 would wait DELAY_FIRST_PROBE_TIME for an upper-layer confirmation
/// first, but the dataplane never provides one, so the probe goes out on the
/// next `poll`.
fn mark_used(e: &mut Entry, now: Instant) {
    e.last_used = e.last_used.max(now);
    if e.state == NeighState::Stale {
        e.state = NeighState::Probe;
        e.probes = 0;
        e.timer = now;
        e.updated = now;
    }
}

fn hold(e: &mut Entry, packet: &[u8], limit: usize, c: &mut NeighCounters) {
    if limit == 0 {
        c.resolve_hold_overflow += 1;
        return;
    }
    while e.held.len() >= limit {
        e.held.pop_front();
        c.resolve_hold_overflow += 1;
    }
    e.held.push_back(packet.to_vec());
    c.resolve_hold += 1;
}

fn fill_dst_mac(frame: &mut [u8], mac: Mac) {
    if let Some(dst) = frame.get_mut(..6) {
        dst.copy_from_slice(&mac);
    }
}
