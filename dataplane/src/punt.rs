//! The worker <-> control thread channels: bounded lock-free queues of
//! recycled buffers, and an eventfd each way so neither side has to poll.
//! Nothing here allocates after start-up.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crossbeam_queue::ArrayQueue;

use crate::graph::PuntReason;
use crate::tables::Port;
use crate::FRAME_SIZE;

/// A frame copied out of (or into) UMEM.
pub struct PuntFrame {
    pub port: Port,
    pub reason: PuntReason,
    pub next_hop: IpAddr,
    pub len: usize,
    pub data: Box<[u8; FRAME_SIZE]>,
}

impl PuntFrame {
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len.min(FRAME_SIZE)]
    }
}

/// A wake-up counter (eventfd): the writer bumps it, the reader polls it.
pub struct Notify(OwnedFd);

impl Notify {
    pub fn new() -> std::io::Result<Self> {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fresh fd we own.
        Ok(Notify(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64; EAGAIN (counter full) is fine.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
    /// Reset the counter after waking.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64; EAGAIN when nothing is pending.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Channels of one worker.
pub struct Channels {
    /// Worker -> control: frames for the router or waiting for a neighbor.
    pub punt: ArrayQueue<PuntFrame>,
    /// Control -> worker: frames to transmit (ARP/NDP replies, resolved held packets).
    pub inject: ArrayQueue<PuntFrame>,
    /// Empty buffers, shared by both directions.
    pub free: ArrayQueue<Box<[u8; FRAME_SIZE]>>,
    /// Wakes the control thread (worker pushed punts).
    pub to_control: std::sync::Arc<Notify>,
    /// Wakes the worker (control pushed injects, or stop requested).
    pub to_worker: Notify,
}

impl Channels {
    pub fn new(depth: usize, to_control: std::sync::Arc<Notify>) -> std::io::Result<Self> {
        let free = ArrayQueue::new(depth * 2);
        for _ in 0..depth * 2 {
            let _ = free.push(Box::new([0u8; FRAME_SIZE]));
        }
        Ok(Channels {
            punt: ArrayQueue::new(depth),
            inject: ArrayQueue::new(depth),
            free,
            to_control,
            to_worker: Notify::new()?,
        })
    }

    /// Control thread: queue a frame for transmission on `port`. False when
    /// out of buffers or the queue is full (the caller counts it).
    pub fn inject(&self, port: Port, frame: &[u8]) -> bool {
        if frame.len() > FRAME_SIZE {
            return false;
        }
        let Some(mut data) = self.free.pop() else {
            return false;
        };
        data[..frame.len()].copy_from_slice(frame);
        let pf = PuntFrame {
            port,
            reason: PuntReason::Local,
            next_hop: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            len: frame.len(),
            data,
        };
        match self.inject.push(pf) {
            Ok(()) => {
                self.to_worker.notify();
                true
            }
            Err(pf) => {
                let _ = self.free.push(pf.data);
                false
            }
        }
    }

    /// Control thread: give a punted frame's buffer back.
    pub fn recycle(&self, pf: PuntFrame) {
        let _ = self.free.push(pf.data);
    }
}
