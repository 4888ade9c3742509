//! The XDP program of the benchmark endpoints (`src/bpf/endpoint.bpf.c`):
//! ARP, ICMPv6 (so NDP) and IPv4 ICMP stay with the kernel, so the device
//! under test can resolve the endpoint's addresses and `ping` works; every
//! other IPv4/IPv6 frame goes to the AF_XDP socket registered for its rx
//! queue (or to the kernel when that queue has none).
//!
//! Attached through a `bpf_link` (native, falling back to generic), so it
//! goes away with the process; dropping the [`Endpoint`] detaches it.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use anyhow::{anyhow, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject};

mod skel {
    #![allow(clippy::all, unsafe_op_in_unsafe_fn, dead_code, non_camel_case_types)]
    include!(concat!(env!("OUT_DIR"), "/endpoint.skel.rs"));
}
use skel::{EndpointSkel, EndpointSkelBuilder};

/// Must match MAX_QUEUES in the BPF program.
pub const MAX_QUEUES: u32 = 64;

/// The endpoint program, loaded and attached to one interface.
pub struct Endpoint {
    // Field order matters: the link goes first (detach), then the skeleton,
    // which borrows `storage`, then `storage` itself in Drop.
    link: Option<OwnedFd>,
    skel: Option<EndpointSkel<'static>>,
    storage: *mut MaybeUninit<OpenObject>,
    pub iface: String,
    /// "native" or "generic".
    pub mode: &'static str,
}

// SAFETY: the skeleton is plain fds and heap memory; `storage` is only
// touched in Drop, after the skeleton is gone.
unsafe impl Send for Endpoint {}
unsafe impl Sync for Endpoint {}

impl Endpoint {
    /// Load the program and attach it to `iface` (native mode, generic as a
    /// fallback).
    pub fn attach(iface: &str) -> Result<Endpoint> {
        let ifindex = ipoe_bpf::ifindex(iface)?;
        let storage = Box::into_raw(Box::new(MaybeUninit::<OpenObject>::uninit()));
        // SAFETY: `storage` lives until Drop, which drops the skeleton first.
        let storage_ref: &'static mut MaybeUninit<OpenObject> = unsafe { &mut *storage };
        let skel = match EndpointSkelBuilder::default()
            .open(storage_ref)
            .and_then(|open| open.load())
        {
            Ok(s) => s,
            Err(e) => {
                // SAFETY: nothing borrows `storage` any more.
                drop(unsafe { Box::from_raw(storage) });
                return Err(anyhow!("loading the endpoint XDP program: {e}"));
            }
        };
        let mut ep = Endpoint {
            link: None,
            skel: Some(skel),
            storage,
            iface: iface.to_string(),
            mode: "native",
        };
        let prog_fd = ep.skel().progs.endpoint.as_fd().as_raw_fd();
        let (link, mode) = ipoe_bpf::attach_xdp(prog_fd, ifindex, ipoe_bpf::AttachMode::Auto)
            .map_err(|e| anyhow!("{iface}: attaching the endpoint XDP program: {e}"))?;
        ep.mode = mode.as_str();
        ep.link = Some(link);
        Ok(ep)
    }

    fn skel(&self) -> &EndpointSkel<'static> {
        self.skel.as_ref().expect("skeleton present until drop")
    }

    /// Send the bench frames of rx queue `queue` to the AF_XDP socket `fd`.
    pub fn register(&self, queue: u32, fd: RawFd) -> Result<()> {
        if queue >= MAX_QUEUES {
            return Err(anyhow!("queue {queue} out of range (max {MAX_QUEUES})"));
        }
        self.skel()
            .maps
            .xsks
            .update(
                &queue.to_ne_bytes(),
                &(fd as u32).to_ne_bytes(),
                MapFlags::ANY,
            )
            .with_context(|| format!("{}: registering queue {queue}", self.iface))
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.link = None;
        self.skel = None;
        // SAFETY: the skeleton that borrowed `storage` is gone.
        drop(unsafe { Box::from_raw(self.storage) });
    }
}
