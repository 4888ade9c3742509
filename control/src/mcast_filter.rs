//! The NIC's multicast filter: adds and removes the Ethernet addresses of
//! the groups ipoed listens to (mld::memberships), so a NIC that filters
//! multicast in hardware (igb, e1000e, ixgbe, r8169, mlx5) passes them to
//! XDP.
//!
//! One AF_PACKET socket with protocol 0 holds the memberships
//! (PACKET_ADD_MEMBERSHIP, PACKET_MR_MULTICAST). Protocol 0 means the
//! socket receives nothing, so it costs no copies. Why this and not
//! SIOCADDMULTI or ALLMULTI:
//! - the memberships belong to the socket: when ipoed exits, even by
//!   `kill -9`, the kernel removes them, so nothing is left behind in the
//!   NIC filter;
//! - the socket is opened at start with CAP_NET_RAW, and adding or dropping
//!   a membership on it later needs no capability, so renumbering after
//!   the privilege drop still works;
//! - ALLMULTI would pass every group on the link to the control thread's
//!   punt queue, for nothing.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use ipoe_proto::neigh::Mac;

pub struct McastFilter {
    fd: OwnedFd,
    /// Per ifindex: the addresses we asked for last, and those the kernel
    /// accepted.
    wanted: HashMap<u32, BTreeSet<Mac>>,
    joined: HashMap<u32, BTreeSet<Mac>>,
    /// Interfaces we put in all-multicast mode (a proxied WAN /64).
    allmulti: BTreeSet<u32>,
    pub errors: u64,
}

impl McastFilter {
    /// Needs CAP_NET_RAW (AF_PACKET): call before the privileges go.
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2); the fd is owned below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: a fresh descriptor nobody else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            wanted: HashMap::new(),
            joined: HashMap::new(),
            allmulti: BTreeSet::new(),
            errors: 0,
        })
    }

    /// Makes the filter of `ifindex` hold exactly `macs` (of what we add;
    /// the kernel's own entries stay). A failure is logged and retried only
    /// when the wanted set changes, so a refusing driver cannot flood the
    /// log.
    pub fn sync(&mut self, ifindex: u32, name: &str, macs: &BTreeSet<Mac>) {
        if self.wanted.get(&ifindex) == Some(macs) {
            return;
        }
        self.wanted.insert(ifindex, macs.clone());
        let joined = self.joined.entry(ifindex).or_default();
        let leave: Vec<Mac> = joined.difference(macs).copied().collect();
        let join: Vec<Mac> = macs.difference(joined).copied().collect();
        for mac in leave {
            match membership(&self.fd, ifindex, mac, libc::PACKET_DROP_MEMBERSHIP) {
                Ok(()) => log::debug!("{name}: multicast filter: left {}", show(mac)),
                Err(e) => {
                    self.errors += 1;
                    log::warn!("{name}: multicast filter: leaving {}: {e}", show(mac));
                }
            }
            // Either way it is no longer ours to drop again.
            joined.remove(&mac);
        }
        for mac in join {
            match membership(&self.fd, ifindex, mac, libc::PACKET_ADD_MEMBERSHIP) {
                Ok(()) => {
                    log::debug!("{name}: multicast filter: joined {}", show(mac));
                    joined.insert(mac);
                }
                Err(e) => {
                    self.errors += 1;
                    log::warn!(
                        "{name}: multicast filter: joining {}: {e} (frames to that group may \
                         not reach ipoed on a NIC that filters multicast)",
                        show(mac)
                    );
                }
            }
        }
    }

    /// All multicast on `ifindex` (PACKET_MR_ALLMULTI, counted by the
    /// kernel per socket and dropped with it): with a proxied WAN /64 the
    /// WAN solicits each LAN host at its own solicited-node group, which
    /// no filter entry of ours covers.
    pub fn set_allmulti(&mut self, ifindex: u32, name: &str, on: bool) {
        if self.allmulti.contains(&ifindex) == on {
            return;
        }
        let op = if on {
            libc::PACKET_ADD_MEMBERSHIP
        } else {
            libc::PACKET_DROP_MEMBERSHIP
        };
        match membership_of(&self.fd, ifindex, libc::PACKET_MR_ALLMULTI, [0; 6], op) {
            Ok(()) => log::info!("{name}: all-multicast {}", if on { "on" } else { "off" }),
            Err(e) => {
                self.errors += 1;
                log::warn!("{name}: all-multicast {on}: {e}");
            }
        }
        // Either way: retried only when the wish changes.
        if on {
            self.allmulti.insert(ifindex);
        } else {
            self.allmulti.remove(&ifindex);
        }
    }

    /// What the filter holds for `ifindex` on our behalf.
    pub fn joined(&self, ifindex: u32) -> BTreeSet<Mac> {
        self.joined.get(&ifindex).cloned().unwrap_or_default()
    }
}

fn membership(fd: &OwnedFd, ifindex: u32, mac: Mac, op: libc::c_int) -> io::Result<()> {
    membership_of(fd, ifindex, libc::PACKET_MR_MULTICAST, mac, op)
}

fn membership_of(
    fd: &OwnedFd,
    ifindex: u32,
    mr_type: libc::c_int,
    mac: Mac,
    op: libc::c_int,
) -> io::Result<()> {
    let mut mr = libc::packet_mreq {
        mr_ifindex: ifindex as libc::c_int,
        mr_type: mr_type as libc::c_ushort,
        mr_alen: 6,
        mr_address: [0; 8],
    };
    mr.mr_address[..6].copy_from_slice(&mac);
    // SAFETY: setsockopt with a packet_mreq of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            op,
            (&mr as *const libc::packet_mreq).cast(),
            std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub fn show(mac: Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
