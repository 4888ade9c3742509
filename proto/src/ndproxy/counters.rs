//! Named event counters of the ND proxy.

named_counters! {
    /// Monotonic event counters; every dropped frame increments exactly one
    /// of the "why" counters (`*-bad`, `not-for-us`, `rate-limited`, ...).
    pub struct NdProxyCounters {
        /// Neighbor Solicitations received on the WAN for the proxied /64.
        wan_ns_rx => "wan-ns-rx",
        /// Neighbor Advertisements received on the WAN for the proxied /64.
        wan_na_rx => "wan-na-rx",
        /// DAD Neighbor Solicitations from LAN hosts for the proxied /64.
        lan_dad_rx => "lan-dad-rx",
        /// Neighbor Advertisements received on the LAN for the proxied /64.
        lan_na_rx => "lan-na-rx",
        /// Advertisements sent on the WAN for the router's own addresses.
        own_na_tx => "own-na-tx",
        /// Advertisements sent on the WAN for verified LAN hosts.
        proxy_na_tx => "proxy-na-tx",
        /// Multicast solicitations sent on the LAN to verify a target.
        verify_ns_tx => "verify-ns-tx",
        /// Unicast solicitations sent on the LAN to re-verify a STALE entry.
        probe_ns_tx => "probe-ns-tx",
        /// Targets found on the LAN (a LAN host answered).
        verified => "verified",
        /// Verifications given up: nobody on the LAN answered.
        verify_failed => "verify-failed",
        /// Verified entries removed after unanswered unicast probes.
        probe_failed => "probe-failed",
        /// STALE entries removed after the stale lifetime.
        aged_out => "aged-out",
        /// STALE entries evicted to make room for a newly verified host.
        evicted => "evicted",
        /// Verified hosts not stored: the table is full of fresh entries.
        table_full => "table-full",
        /// WAN solicitations not verified: `max_pending` verifications run.
        pending_full => "pending-full",
        /// Solicitations not sent because the side's rate limit was spent.
        rate_limited => "rate-limited",
        /// WAN solicitors not remembered: the entry already waits for enough.
        waiters_dropped => "waiters-dropped",
        /// Entries dropped because the WAN /64 changed or went away.
        renumber_dropped => "renumber-dropped",
        /// LAN neighbors reported by the neighbor table.
        neighbor_noted => "neighbor-noted",
        /// DAD solicitations relayed to the WAN for a LAN host.
        dad_wan_ns_tx => "dad-wan-ns-tx",
        /// DAD solicitations relayed to the LAN for a WAN node.
        dad_lan_ns_tx => "dad-lan-ns-tx",
        /// LAN hosts' DAD failed on our answer (the address is in use).
        dad_defended_lan => "dad-defended-lan",
        /// WAN nodes' DAD failed on our answer (a LAN host or we hold it).
        dad_defended_wan => "dad-defended-wan",
        /// DAD solicitations not relayed: `max_dad_pending` already wait.
        dad_pending_full => "dad-pending-full",
        /// A WAN node advertises an address a LAN host or the router holds.
        wan_conflict => "wan-conflict",
        /// A LAN host advertises one of the router's own addresses.
        lan_conflict => "lan-conflict",
        /// LAN advertisements for targets nobody asked about.
        na_unsolicited => "na-unsolicited",
        /// Valid frames about something other than the proxied /64.
        not_proxied => "not-proxied",
        /// Frames that do not parse as Ethernet/IPv6/ICMPv6.
        malformed => "malformed",
        /// ICMPv6 messages with a wrong checksum.
        checksum_bad => "checksum-bad",
        /// Solicitations failing RFC 4861 7.1.1 validation.
        ns_bad => "ns-bad",
        /// Advertisements failing RFC 4861 7.1.2 validation.
        na_bad => "na-bad",
        /// Valid frames addressed to someone else.
        not_for_us => "not-for-us",
        /// Our own frames reflected back to us.
        own_frame => "own-frame",
    }
}
