//! Named event counters of the WAN RA/SLAAC engine.

named_counters! {
    /// Monotonic event counters. Every RA handed to
    /// [`WanRa::handle_ra`](super::WanRa::handle_ra) counts in `rx_ra`;
    /// a rejected one also counts in exactly one `drop_*` counter.
    pub struct Counters {
        /// Router Advertisements handed in, valid or not.
        rx_ra => "rx-ra",
        /// Router Solicitations emitted by `poll`.
        tx_rs => "tx-rs",
        /// RAs whose IPv6 hop limit was not 255 (RFC 4861 6.1.2: off-link).
        drop_hop_limit => "drop-hop-limit",
        /// RAs whose source was not a link-local address.
        drop_not_link_local => "drop-not-link-local",
        /// RAs failing the message checks (type, code, length, option lengths).
        drop_malformed => "drop-malformed",
        /// Routers added to the table.
        router_added => "router-added",
        /// Routers whose lifetime ran out without a refreshing RA.
        router_expired => "router-expired",
        /// Routers removed by an RA with router lifetime 0.
        router_removed => "router-removed",
        /// Routers forgotten because the WAN link lost its carrier.
        router_link_down => "router-link-down",
        /// Other routers dropped from a full table to let the known router
        /// back in (an RA flood had filled it while it was away).
        router_displaced => "router-displaced",
        /// Autonomous prefixes whose length is not 64 (RFC 4862 5.5.3 d).
        prefix_ignored_len => "prefix-ignored-len",
        /// Autonomous prefixes inside fe80::/10 (RFC 4862 5.5.3 b).
        prefix_ignored_link_local => "prefix-ignored-link-local",
        /// Autonomous prefixes that are multicast or have an all-zero /64.
        prefix_ignored_scope => "prefix-ignored-scope",
        /// Autonomous prefixes with preferred > valid lifetime (RFC 4862 5.5.3 c).
        prefix_ignored_lifetimes => "prefix-ignored-lifetimes",
        /// Prefix information options whose option length is not 4.
        prefix_option_bad_length => "prefix-option-bad-length",
        /// Valid-lifetime updates held back by the two-hour rule (RFC 4862 5.5.3 e).
        two_hour_rule => "two-hour-rule",
        /// SLAAC addresses formed (including regenerations after DAD failures).
        address_added => "address-added",
        /// SLAAC addresses whose preferred lifetime ran out.
        address_deprecated => "address-deprecated",
        /// SLAAC addresses whose valid lifetime ran out.
        address_expired => "address-expired",
        /// Duplicate address reports for one of our addresses.
        dad_failed => "dad-failed",
        /// Addresses regenerated with the next RFC 7217 DAD counter.
        dad_regenerated => "dad-regenerated",
        /// Prefixes left without an address after DAD failures.
        dad_gave_up => "dad-gave-up",
        /// Duplicate address reports for an address we do not hold.
        dad_unknown => "dad-unknown",
        /// MTU options with a bad length or a value outside 1280..=65535.
        mtu_ignored => "mtu-ignored",
        /// Source link-layer address options whose length is not 1.
        slla_ignored => "slla-ignored",
        /// Malformed RDNSS options skipped (RFC 8106 5.3.1).
        rdnss_ignored => "rdnss-ignored",
        /// RDNSS addresses that cannot be a server (unspecified, loopback, multicast).
        rdnss_address_ignored => "rdnss-address-ignored",
        /// DNS servers whose lifetime ran out.
        rdnss_expired => "rdnss-expired",
        /// Malformed DNSSL options skipped (RFC 8106 5.3.1).
        dnssl_ignored => "dnssl-ignored",
        /// Search domains whose lifetime ran out.
        dnssl_expired => "dnssl-expired",
        /// Prefixes, RDNSS servers or domains beyond the per-RA parse limits.
        option_limit => "option-limit",
        /// Routers, prefixes, DNS servers or domains refused or evicted because
        /// their table was full.
        table_full => "table-full",
        /// Events discarded because `drain_events` was not called.
        events_dropped => "events-dropped",
    }
}
