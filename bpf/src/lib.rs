//! The XDP side of ipoe-router: loads `xsk_redirect.bpf.c` (compiled at build
//! time by libbpf-cargo) and attaches it to the interfaces ipoed owns with a
//! `bpf_link`, so the kernel detaches it by itself if ipoed dies.
//!
//! Slot layout of the XSKMAP: `port * MAX_QUEUES + queue`, where `port` is the
//! small number ipoed gives each interface (0 = WAN, 1 = LAN) and registers in
//! the `ports` map by ifindex.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject};

mod skel {
    #![allow(clippy::all, unsafe_op_in_unsafe_fn, dead_code, non_camel_case_types)]
    include!(concat!(env!("OUT_DIR"), "/xsk_redirect.skel.rs"));
}
use skel::{XskRedirectSkel, XskRedirectSkelBuilder};

/// Must match MAX_QUEUES in the BPF program.
pub const MAX_QUEUES: u32 = 64;
/// Must match the `ports` map size in the BPF program.
pub const MAX_PORTS: u32 = 8;

/// `NETDEV_XDP_ACT_XSK_ZEROCOPY` from linux/netdev.h.
const XDP_ACT_XSK_ZEROCOPY: u64 = 1 << 3;

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("loading the XDP program: {0}")]
    Load(#[source] libbpf_rs::Error),
    #[error("{iface}: {what}: {source}")]
    Iface {
        iface: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("updating BPF map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("port {0} or queue {1} out of range")]
    Range(u32, u32),
}

/// How to attach: driver (native) mode, generic (skb) mode, or native with a
/// fallback to generic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    Native,
    Generic,
    Auto,
}

/// The mode the kernel actually attached in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachedMode {
    Native,
    Generic,
}

impl AttachedMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AttachedMode::Native => "native",
            AttachedMode::Generic => "generic",
        }
    }
}

/// One interface with our program attached; dropping it closes the link fd,
/// which detaches the program.
pub struct Attachment {
    pub ifindex: u32,
    pub iface: String,
    pub mode: AttachedMode,
    /// The driver advertises AF_XDP zero-copy.
    pub zero_copy_capable: bool,
    _link: OwnedFd,
}

/// Counters kept by the BPF program (summed over CPUs).
#[derive(Clone, Copy, Debug, Default)]
pub struct XdpStats {
    pub redirected: u64,
    pub no_port: u64,
    pub bad_queue: u64,
    pub no_socket: u64,
}

/// The loaded program and its maps.
pub struct Redirector {
    // Field order matters: the skeleton borrows `storage` and must drop first.
    skel: Option<XskRedirectSkel<'static>>,
    storage: *mut MaybeUninit<OpenObject>,
}

// SAFETY: the skeleton is Send + Sync (libbpf objects are plain fds and heap
// memory); `storage` is only touched in Drop, after the skeleton is gone.
unsafe impl Send for Redirector {}
unsafe impl Sync for Redirector {}

impl Redirector {
    pub fn load() -> Result<Self, BpfError> {
        let storage = Box::into_raw(Box::new(MaybeUninit::<OpenObject>::uninit()));
        // SAFETY: `storage` lives until Drop, which drops the skeleton first.
        let storage_ref: &'static mut MaybeUninit<OpenObject> = unsafe { &mut *storage };
        let result = XskRedirectSkelBuilder::default()
            .open(storage_ref)
            .and_then(|open| open.load());
        match result {
            Ok(skel) => Ok(Redirector {
                skel: Some(skel),
                storage,
            }),
            Err(e) => {
                // SAFETY: nothing borrows `storage` any more.
                drop(unsafe { Box::from_raw(storage) });
                Err(BpfError::Load(e))
            }
        }
    }

    fn skel(&self) -> &XskRedirectSkel<'static> {
        self.skel.as_ref().expect("skeleton present until drop")
    }

    /// Attach to `iface` as `port`, first removing a stale program that an
    /// earlier crashed run (or anything else attached through netlink) left.
    pub fn attach(&self, iface: &str, port: u32, mode: AttachMode) -> Result<Attachment, BpfError> {
        if port >= MAX_PORTS {
            return Err(BpfError::Range(port, 0));
        }
        let ifindex = ifindex(iface)?;
        let io_err = |what: &'static str, errno: i32| BpfError::Iface {
            iface: iface.to_string(),
            what,
            source: std::io::Error::from_raw_os_error(errno),
        };
        detach_stale(ifindex).map_err(|e| io_err("removing a stale XDP program", e))?;

        self.skel()
            .maps
            .ports
            .update(&ifindex.to_ne_bytes(), &port.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| BpfError::Map {
                map: "ports",
                source,
            })?;

        let prog_fd = self.skel().progs.xsk_redirect.as_fd().as_raw_fd();
        let (link, _) = attach_xdp(prog_fd, ifindex, mode)
            .map_err(|e| io_err("attaching the XDP program", e.raw_os_error().unwrap_or(0)))?;

        let (attach_mode, features) =
            query(ifindex).map_err(|e| io_err("querying the XDP mode", e))?;
        let mode = if attach_mode == libbpf_sys::XDP_ATTACHED_SKB as u8 {
            AttachedMode::Generic
        } else {
            AttachedMode::Native
        };
        Ok(Attachment {
            ifindex,
            iface: iface.to_string(),
            mode,
            zero_copy_capable: mode == AttachedMode::Native && features & XDP_ACT_XSK_ZEROCOPY != 0,
            _link: link,
        })
    }

    /// Point slot (port, queue) at an AF_XDP socket.
    pub fn register_socket(&self, port: u32, queue: u32, xsk_fd: RawFd) -> Result<(), BpfError> {
        let slot = slot(port, queue)?;
        self.skel()
            .maps
            .xsks
            .update(
                &slot.to_ne_bytes(),
                &(xsk_fd as u32).to_ne_bytes(),
                MapFlags::ANY,
            )
            .map_err(|source| BpfError::Map {
                map: "xsks",
                source,
            })
    }

    pub fn unregister_socket(&self, port: u32, queue: u32) -> Result<(), BpfError> {
        let slot = slot(port, queue)?;
        // A missing entry is fine: it is what we want.
        let _ = self.skel().maps.xsks.delete(&slot.to_ne_bytes());
        Ok(())
    }

    pub fn stats(&self) -> XdpStats {
        let read = |i: u32| -> u64 {
            self.skel()
                .maps
                .stats
                .lookup_percpu(&i.to_ne_bytes(), MapFlags::ANY)
                .ok()
                .flatten()
                .map(|per_cpu| {
                    per_cpu
                        .iter()
                        .filter_map(|v| {
                            v.get(..8)
                                .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
                        })
                        .sum()
                })
                .unwrap_or(0)
        };
        XdpStats {
            redirected: read(0),
            no_port: read(1),
            bad_queue: read(2),
            no_socket: read(3),
        }
    }
}

impl Drop for Redirector {
    fn drop(&mut self) {
        self.skel = None;
        // SAFETY: the skeleton that borrowed `storage` is gone.
        drop(unsafe { Box::from_raw(self.storage) });
    }
}

fn slot(port: u32, queue: u32) -> Result<u32, BpfError> {
    if port >= MAX_PORTS || queue >= MAX_QUEUES {
        return Err(BpfError::Range(port, queue));
    }
    Ok(port * MAX_QUEUES + queue)
}

pub fn ifindex(iface: &str) -> Result<u32, BpfError> {
    let name = std::ffi::CString::new(iface).map_err(|_| BpfError::Iface {
        iface: iface.to_string(),
        what: "interface name",
        source: std::io::Error::from_raw_os_error(libc::EINVAL),
    })?;
    // SAFETY: a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if idx == 0 {
        return Err(BpfError::Iface {
            iface: iface.to_string(),
            what: "no such interface",
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(idx)
}

/// Attach an XDP program to `ifindex` through a bpf_link (the kernel
/// detaches it when the returned fd closes, also when the process dies).
/// `Auto` tries native mode first, then generic.
pub fn attach_xdp(
    prog_fd: RawFd,
    ifindex: u32,
    mode: AttachMode,
) -> std::io::Result<(OwnedFd, AttachedMode)> {
    let native = || link_create(prog_fd, ifindex, libbpf_sys::XDP_FLAGS_DRV_MODE);
    let generic = || link_create(prog_fd, ifindex, libbpf_sys::XDP_FLAGS_SKB_MODE);
    let r = match mode {
        AttachMode::Native => native().map(|l| (l, AttachedMode::Native)),
        AttachMode::Generic => generic().map(|l| (l, AttachedMode::Generic)),
        AttachMode::Auto => native()
            .map(|l| (l, AttachedMode::Native))
            .or_else(|_| generic().map(|l| (l, AttachedMode::Generic))),
    };
    r.map_err(std::io::Error::from_raw_os_error)
}

fn link_create(prog_fd: RawFd, ifindex: u32, flags: u32) -> Result<OwnedFd, i32> {
    let opts = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        flags,
        ..Default::default()
    };
    // SAFETY: plain syscall wrapper; opts outlives the call.
    let fd =
        unsafe { libbpf_sys::bpf_link_create(prog_fd, ifindex as i32, libbpf_sys::BPF_XDP, &opts) };
    if fd < 0 {
        return Err(-fd);
    }
    // SAFETY: a fresh fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn query(ifindex: u32) -> Result<(u8, u64), i32> {
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    // SAFETY: opts is a valid, sized out-parameter.
    let rc = unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) };
    if rc < 0 {
        return Err(-rc);
    }
    Ok((opts.attach_mode, opts.feature_flags))
}

/// Detach a program attached through netlink (a bpf_link detaches on its
/// own when its owner dies; one still held by a live process is EBUSY, which
/// we report instead of fighting over the interface).
fn detach_stale(ifindex: u32) -> Result<(), i32> {
    let (mode, _) = query(ifindex)?;
    if mode == libbpf_sys::XDP_ATTACHED_NONE as u8 {
        return Ok(());
    }
    let flags = match mode as u32 {
        m if m == libbpf_sys::XDP_ATTACHED_SKB => libbpf_sys::XDP_FLAGS_SKB_MODE,
        m if m == libbpf_sys::XDP_ATTACHED_DRV => libbpf_sys::XDP_FLAGS_DRV_MODE,
        _ => 0,
    };
    log::warn!("ifindex {ifindex}: removing a stale XDP program (mode {mode})");
    // SAFETY: plain syscall wrapper.
    let rc = unsafe { libbpf_sys::bpf_xdp_detach(ifindex as i32, flags, std::ptr::null()) };
    if rc < 0 {
        return Err(-rc);
    }
    Ok(())
}

/// Whether `iface` has any XDP program attached (used by tests and shutdown checks).
pub fn xdp_attached(iface: &str) -> Result<bool, BpfError> {
    let idx = ifindex(iface)?;
    let (mode, _) = query(idx).map_err(|e| BpfError::Iface {
        iface: iface.to_string(),
        what: "querying XDP",
        source: std::io::Error::from_raw_os_error(e),
    })?;
    Ok(mode != libbpf_sys::XDP_ATTACHED_NONE as u8)
}
