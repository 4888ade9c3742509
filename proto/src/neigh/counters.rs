//! Named event counters of the neighbor engine.

/// Declares the counter struct and its `(name, value)` iterator from one
/// list, so a counter can never be added without being exported.
macro_rules! counters {
    ($($(#[doc = $doc:literal])+ $name:ident,)+) => {
        /// Monotonic event counters; every dropped input increments exactly one
        /// of the "why" counters (`*_bad`, `not_for_us`, `malformed`, ...).
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct NeighCounters {
            $($(#[doc = $doc])+ pub $name: u64,)+
        }

        impl NeighCounters {
            /// Every counter as `(name, value)`, in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$((stringify!($name), self.$name),)+].into_iter()
            }
        }
    };
}

counters! {
    /// ARP frames received.
    arp_rx,
    /// ARP frames that failed validation (bad header, bad sender).
    arp_bad,
    /// Valid ARP that the RFC 826 merge rule says not to learn from
    /// (reply we did not ask for).
    arp_unsolicited,
    /// ARP from another station claiming our IPv4 address.
    arp_conflict,
    /// ARP replies sent.
    arp_reply_tx,
    /// ARP requests sent (broadcast resolution and unicast probes).
    arp_request_tx,
    /// Neighbor entries confirmed by an ARP reply.
    arp_learned,
    /// Neighbor Solicitations received.
    ns_rx,
    /// Neighbor Solicitations failing RFC 4861 7.1.1 validation.
    ns_bad,
    /// Neighbor Solicitations sent (resolution, unicast probes and DAD).
    ns_tx,
    /// Neighbor Advertisements sent.
    na_tx,
    /// Neighbor Advertisements received.
    na_rx,
    /// Neighbor Advertisements failing RFC 4861 7.1.2 validation.
    na_bad,
    /// Neighbor Advertisements for targets we have no entry for.
    na_unsolicited,
    /// Neighbor Advertisements from another node for an address we own.
    na_conflict,
    /// ICMP/ICMPv6 messages with a wrong checksum.
    icmp_checksum_bad,
    /// Echo replies sent (IPv4 and IPv6).
    echo_reply_tx,
    /// `resolve` calls answered from the table.
    resolve_hit,
    /// Packets queued behind an INCOMPLETE entry.
    resolve_hold,
    /// Held packets dropped because the per-neighbor queue was full.
    resolve_hold_overflow,
    /// `resolve` calls with an unusable next hop or packet.
    resolve_invalid,
    /// Misses dropped because `max_incomplete` entries already exist.
    incomplete_full,
    /// Resolved entries refused: the table is full of non-STALE entries, or
    /// full and the neighbor only announced itself (NS, ARP request), which
    /// never evicts anyone.
    table_full,
    /// INCOMPLETE entries abandoned after `max_probes` requests.
    resolve_failed,
    /// Held packets released once their neighbor resolved.
    held_sent,
    /// Held packets discarded with a failed or refused entry.
    held_dropped,
    /// Resolved entries whose unicast probes went unanswered (RFC 7048
    /// UNREACHABLE: still used, probed by multicast with backoff).
    unreachable,
    /// Entries removed after unanswered unicast and multicast probes.
    probe_failed,
    /// STALE (or UNREACHABLE) entries evicted to make room for a neighbor
    /// we resolved.
    stale_evicted,
    /// STALE entries removed after `stale_gc` without use.
    gc_removed,
    /// Solicitations not sent because no usable source address exists yet.
    no_source,
    /// Duplicate address detections started.
    dad_started,
    /// Own addresses that passed DAD.
    dad_ok,
    /// Own addresses found to be duplicates.
    dad_conflict,
    /// Valid frames not addressed to us.
    not_for_us,
    /// Frames that do not parse as Ethernet/IPv4/IPv6.
    malformed,
    /// Our own frames reflected back to us.
    own_frame,
    /// Valid frames of a kind this engine does not process (RA, TCP, ...).
    unhandled,
}
