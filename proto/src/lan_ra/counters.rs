//! Named event counters of the LAN Router Advertisement sender.

named_counters! {
    /// Monotonic event counters. Every RS handed to
    /// [`LanRa::handle_rs`](super::LanRa::handle_rs) counts in `rx_rs`;
    /// a rejected one also counts in exactly one `drop_rs_*` counter.
    pub struct Counters {
        /// Router Advertisements produced (by `poll` and `shutdown`).
        tx_ra => "tx-ra",
        /// RAs that answered at least one Router Solicitation.
        tx_ra_solicited => "tx-ra-solicited",
        /// RAs sent ahead of the schedule because what we advertise changed.
        tx_ra_change => "tx-ra-change",
        /// Final RAs with router lifetime 0 (RFC 4861 6.2.5).
        tx_ra_final => "tx-ra-final",
        /// Router Solicitations handed in, valid or not.
        rx_rs => "rx-rs",
        /// Valid RSs answered by an RA that was already scheduled.
        rs_coalesced => "rs-coalesced",
        /// Valid RSs whose RA was held back to MIN_DELAY_BETWEEN_RAS after the
        /// previous one (RFC 4861 6.2.6).
        rs_rate_limited => "rs-rate-limited",
        /// RSs whose IPv6 hop limit was not 255 (RFC 4861 6.1.1: off-link).
        drop_rs_hop_limit => "drop-rs-hop-limit",
        /// RSs from a multicast source address.
        drop_rs_source => "drop-rs-source",
        /// RSs failing the message checks (type, code, length, option lengths).
        drop_rs_malformed => "drop-rs-malformed",
        /// RSs from the unspecified address carrying a source link-layer
        /// address option (RFC 4861 6.1.1).
        drop_rs_unspecified_slla => "drop-rs-unspecified-slla",
        /// Valid RSs that arrived while we were not advertising.
        drop_rs_not_advertising => "drop-rs-not-advertising",
        /// Router Advertisements from another router on the LAN.
        rogue_ra => "rogue-ra",
        /// Log lines written about rogue RAs (at most one a minute).
        rogue_ra_logged => "rogue-ra-logged",
        /// Prefixes moved to the stale list (advertised with preferred
        /// lifetime 0 until their valid lifetime runs out).
        prefix_deprecated => "prefix-deprecated",
        /// Stale prefixes whose valid lifetime ran out.
        stale_expired => "stale-expired",
        /// Stale or remembered prefixes dropped early because their table was
        /// full.
        stale_evicted => "stale-evicted",
        /// Stale or remembered prefixes that became the current prefix again.
        prefix_returned => "prefix-returned",
        /// Remembered prefixes accepted by `restore_stale`.
        restored_prefix => "restored-prefix",
        /// Remembered prefixes refused by `restore_stale` (not a usable
        /// prefix, or already expired).
        restore_ignored => "restore-ignored",
        /// Current prefixes refused (multicast, link-local, unspecified).
        input_prefix_invalid => "input-prefix-invalid",
        /// DNS servers not announced (unusable, duplicate, over the limit).
        input_rdnss_dropped => "input-rdnss-dropped",
        /// Search domains not announced (not a DNS name, duplicate, over the
        /// count or size limits).
        input_dnssl_dropped => "input-dnssl-dropped",
        /// RAs that could not be encoded (a bug: inputs are sanitized first).
        emit_failed => "emit-failed",
    }
}
