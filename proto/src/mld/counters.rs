//! Named event counters of the MLD host engine.

named_counters! {
    /// Monotonic counters; every MLD frame handed in counts in exactly one
    /// `rx-*` counter.
    pub struct Counters {
        /// MLDv2 General, Multicast Address or Source Specific Queries taken.
        rx_query_v2 => "rx-query-v2",
        /// MLDv1 queries taken (they switch the port to MLDv1 reports).
        rx_query_v1 => "rx-query-v1",
        /// Queries about a group we are not in (nothing to answer).
        rx_query_other_group => "rx-query-other-group",
        /// Queries already covered by a pending General Query answer.
        rx_query_covered => "rx-query-covered",
        /// Queries dropped: source not link-local (RFC 3810 5.1.14).
        rx_query_bad_source => "rx-query-bad-source",
        /// Queries dropped: hop limit not 1 (RFC 3810 6.2).
        rx_query_bad_hop_limit => "rx-query-bad-hop-limit",
        /// Queries dropped: no Router Alert option (RFC 3810 6.2).
        rx_query_no_router_alert => "rx-query-no-router-alert",
        /// Other listeners' reports and Dones (hosts do nothing with them).
        rx_report => "rx-report",
        /// MLDv1 reports that answered for us (RFC 2710 4 suppression).
        rx_report_suppressed => "rx-report-suppressed",
        /// Our own frames reflected back to us.
        rx_own => "rx-own",
        /// MLD messages with a bad ICMPv6 checksum.
        rx_bad_checksum => "rx-bad-checksum",
        /// MLD messages too short, of a wrong length or with overrunning lists.
        rx_malformed => "rx-malformed",
        /// State Change Reports sent (joins and leaves, with retransmissions).
        tx_report => "tx-report",
        /// Reports sent in answer to queries.
        tx_answer => "tx-answer",
        /// MLDv1 Dones sent.
        tx_done => "tx-done",
        /// Groups left unreported because the port has too many.
        groups_over_limit => "groups-over-limit",
    }
}
