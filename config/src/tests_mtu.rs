//! Issue 15 m10: MTUs the receive path cannot hold are refused where they
//! are written. A 2 KiB UMEM chunk minus the kernel's 256-byte XDP headroom
//! holds a 1792-byte frame: 1778 bytes of IP after Ethernet.

use super::*;
use crate::test_support::{refused_with, BASE};

#[track_caller]
fn refused_at(text: &str, line: usize, column: usize, path: &str, needle: &str) {
    refused_with(text, line, Some(column), Some(path), &[needle]);
}

#[test]
fn m10_mtus_above_what_a_frame_holds_are_refused() {
    assert_eq!(MAX_MTU, 1778);
    let wan = BASE.replace("interface: wan0", "interface: wan0\n  mtu: 1779");
    refused_at(&wan, 3, 8, "wan.mtu", "an MTU between 1280 and 1778");
    let lan = BASE.replace("interface: lan0", "interface: lan0\n  mtu: 9000");
    refused_at(&lan, 5, 8, "lan.mtu", "an MTU between 1280 and 1778");
    let tun = format!("{BASE}dslite:\n  aftr: 2404:8e00::feed:100\n  mtu: 1739\n");
    refused_at(&tun, 8, 8, "dslite.mtu", "a tunnel MTU between 1240 and");

    // The largest that fits is accepted.
    let max = BASE
        .replace("interface: wan0", "interface: wan0\n  mtu: 1778")
        .replace("interface: lan0", "interface: lan0\n  mtu: 1778");
    let c = parse(
        &format!("{max}dslite:\n  aftr: 2404:8e00::feed:100\n  mtu: 1738\n"),
        "t.yaml",
    )
    .expect("1778 fits a frame");
    assert_eq!((c.wan.mtu, c.lan.mtu, c.tunnel_mtu()), (1778, 1778, 1738));
}
