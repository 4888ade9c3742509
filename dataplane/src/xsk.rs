//! A thin AF_XDP layer over the raw syscalls (socket, XDP_UMEM_REG, ring
//! setsockopts, mmap, bind, sendto). We write our own rather than use a crate
//! so libbpf-rs can follow upstream on its own (see ARCHITECTURE.md), and
//! because a router needs exactly one shape: one UMEM per worker, shared by
//! its WAN and LAN sockets (XDP_SHARED_UMEM), so a received frame's address
//! goes straight onto the other port's TX ring without a copy.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::FRAME_SIZE;

const AF_XDP: i32 = 44;
const SOL_XDP: i32 = 283;
const XDP_MMAP_OFFSETS: i32 = 1;
const XDP_RX_RING: i32 = 2;
const XDP_TX_RING: i32 = 3;
const XDP_UMEM_REG: i32 = 4;
const XDP_UMEM_FILL_RING: i32 = 5;
const XDP_UMEM_COMPLETION_RING: i32 = 6;
const XDP_STATISTICS: i32 = 7;
const XDP_SHARED_UMEM: u16 = 1 << 0;
const XDP_COPY: u16 = 1 << 1;
const XDP_ZEROCOPY: u16 = 1 << 2;
const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
const XDP_RING_NEED_WAKEUP: u32 = 1;
const XDP_PGOFF_RX_RING: i64 = 0;
const XDP_PGOFF_TX_RING: i64 = 0x8000_0000;
const XDP_UMEM_PGOFF_FILL_RING: i64 = 0x1_0000_0000;
const XDP_UMEM_PGOFF_COMPLETION_RING: i64 = 0x1_8000_0000;

#[repr(C)]
#[derive(Default)]
struct UmemReg {
    addr: u64,
    len: u64,
    chunk_size: u32,
    headroom: u32,
    flags: u32,
    tx_metadata_len: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct RingOffset {
    producer: u64,
    consumer: u64,
    desc: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct MmapOffsets {
    rx: RingOffset,
    tx: RingOffset,
    fr: RingOffset,
    cr: RingOffset,
}

#[repr(C)]
struct SockaddrXdp {
    family: u16,
    flags: u16,
    ifindex: u32,
    queue_id: u32,
    shared_umem_fd: u32,
}

/// Which doorbells a socket needs rung this turn (`XskSocket::service_wakeups`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wakeup {
    /// recvfrom: the driver stopped filling RX until woken.
    pub rx: bool,
    /// sendto: frames wait in the TX ring.
    pub tx: bool,
}

impl Wakeup {
    /// The decision, from the rings' need_wakeup flags. TX: in copy mode
    /// each sendto transmits a bounded batch, so it is rung every turn
    /// while frames are outstanding; in zero-copy mode only when the
    /// driver asked. RX: whenever the fill ring's flag is set, in any mode
    /// (the kernel sets it only where a wake-up is needed).
    pub fn due(mode: BindMode, fill_flag: bool, tx_flag: bool, tx_outstanding: u32) -> Wakeup {
        Wakeup {
            rx: fill_flag,
            tx: tx_outstanding > 0 && (mode == BindMode::Copy || tx_flag),
        }
    }
}

/// An RX/TX ring descriptor.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XdpDesc {
    pub addr: u64,
    pub len: u32,
    pub options: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XdpStatistics {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

/// How the socket was bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindMode {
    Copy,
    ZeroCopy,
}

/// Wanted zero-copy behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeroCopyWish {
    Auto,
    On,
    Off,
}

fn setsockopt<T>(fd: RawFd, opt: i32, val: &T) -> io::Result<()> {
    // SAFETY: `val` is a valid T for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            SOL_XDP,
            opt,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn getsockopt<T: Default>(fd: RawFd, opt: i32) -> io::Result<T> {
    let mut v = T::default();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` is a valid, writable T and `len` its size.
    let rc = unsafe { libc::getsockopt(fd, SOL_XDP, opt, (&mut v as *mut T).cast(), &mut len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// A memory mapping, unmapped on drop.
struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; access is coordinated by the rings.
unsafe impl Send for Mmap {}

impl Mmap {
    fn anonymous(len: usize) -> io::Result<Self> {
        // SAFETY: anonymous private mapping, checked for failure.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr: NonNull::new(p.cast()).ok_or_else(io::Error::last_os_error)?,
            len,
        })
    }

    fn ring(fd: RawFd, len: usize, pgoff: i64) -> io::Result<Self> {
        // SAFETY: maps a ring of the socket at its documented page offset.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr: NonNull::new(p.cast()).ok_or_else(io::Error::last_os_error)?,
            len,
        })
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what we mapped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One single-producer/single-consumer ring shared with the kernel.
struct Ring<T: Copy> {
    _map: Mmap,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut T,
    mask: u32,
    size: u32,
    /// Our cached copy of the index we own, and of the other side's.
    cached_prod: u32,
    cached_cons: u32,
}

// SAFETY: a ring is used by one thread at a time (its worker).
unsafe impl<T: Copy> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    fn map(fd: RawFd, off: &RingOffset, size: u32, pgoff: i64) -> io::Result<Self> {
        let len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        Ok(Self::over(Mmap::ring(fd, len, pgoff)?, off, size))
    }

    /// A ring laid out in `map` as `off` says (the kernel's mapping, or
    /// plain memory standing in for the kernel in tests).
    fn over(map: Mmap, off: &RingOffset, size: u32) -> Self {
        let base = map.ptr.as_ptr();
        // SAFETY: offsets come from the kernel for this mapping.
        let (producer, consumer, flags, desc) = unsafe {
            (
                base.add(off.producer as usize) as *const AtomicU32,
                base.add(off.consumer as usize) as *const AtomicU32,
                base.add(off.flags as usize) as *const AtomicU32,
                base.add(off.desc as usize) as *mut T,
            )
        };
        Ring {
            _map: map,
            producer,
            consumer,
            flags,
            desc,
            mask: size - 1,
            size,
            cached_prod: 0,
            cached_cons: 0,
        }
    }

    #[inline]
    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into our live mapping.
        unsafe { &*self.producer }
    }
    #[inline]
    fn cons(&self) -> &AtomicU32 {
        // SAFETY: points into our live mapping.
        unsafe { &*self.consumer }
    }
    #[inline]
    fn needs_wakeup(&self) -> bool {
        // SAFETY: points into our live mapping.
        unsafe { &*self.flags }.load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }

    // Producer side (fill, tx).
    #[inline]
    fn free_slots(&mut self) -> u32 {
        self.cached_cons = self.cons().load(Ordering::Acquire);
        self.size - self.cached_prod.wrapping_sub(self.cached_cons)
    }
    #[inline]
    fn write(&mut self, i: u32, v: T) {
        // SAFETY: index masked into the ring.
        unsafe {
            self.desc
                .add((self.cached_prod.wrapping_add(i) & self.mask) as usize)
                .write(v)
        };
    }
    #[inline]
    fn submit(&mut self, n: u32) {
        self.cached_prod = self.cached_prod.wrapping_add(n);
        self.prod().store(self.cached_prod, Ordering::Release);
    }

    // Consumer side (rx, completion).
    #[inline]
    fn available(&mut self) -> u32 {
        let mut avail = self.cached_prod.wrapping_sub(self.cached_cons);
        if avail == 0 {
            self.cached_prod = self.prod().load(Ordering::Acquire);
            avail = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        avail
    }
    #[inline]
    fn read(&self, i: u32) -> T {
        // SAFETY: index masked into the ring.
        unsafe {
            self.desc
                .add((self.cached_cons.wrapping_add(i) & self.mask) as usize)
                .read()
        }
    }
    #[inline]
    fn release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.cons().store(self.cached_cons, Ordering::Release);
    }
}

/// Frame memory of one worker, registered with the first socket bound to it.
pub struct Umem {
    map: Mmap,
    pub frames: u32,
    /// Frames not owned by the kernel or in flight: a LIFO stack of chunk addresses.
    free: Vec<u64>,
}

impl Umem {
    pub fn new(frames: u32) -> io::Result<Self> {
        let map = Mmap::anonymous(frames as usize * FRAME_SIZE)?;
        let free = (0..u64::from(frames))
            .rev()
            .map(|i| i * FRAME_SIZE as u64)
            .collect();
        Ok(Umem { map, frames, free })
    }

    /// All frame memory, for the graph (addresses are offsets into it).
    #[inline]
    pub fn mem(&mut self) -> &mut [u8] {
        // SAFETY: our mapping, `len` bytes, exclusively borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.map.ptr.as_ptr(), self.map.len) }
    }

    #[inline]
    pub fn alloc(&mut self) -> Option<u64> {
        self.free.pop()
    }

    /// Give a frame back; any address inside the chunk will do.
    #[inline]
    pub fn free(&mut self, addr: u64) {
        // Capacity is `frames`, so this never reallocates.
        self.free.push(addr & !(FRAME_SIZE as u64 - 1));
    }

    pub fn free_count(&self) -> usize {
        self.free.len()
    }
}

/// Ring sizes of one socket.
#[derive(Clone, Copy, Debug)]
pub struct RingSizes {
    pub fill: u32,
    pub comp: u32,
    pub rx: u32,
    pub tx: u32,
}

/// One AF_XDP socket bound to (interface, queue), with its own fill and
/// completion rings (required for each device sharing a UMEM).
pub struct XskSocket {
    fd: OwnedFd,
    fill: Ring<u64>,
    comp: Ring<u64>,
    rx: Ring<XdpDesc>,
    tx: Ring<XdpDesc>,
    pub mode: BindMode,
    pub ifindex: u32,
    pub queue: u32,
    /// TX descriptors submitted but not yet completed.
    pub tx_outstanding: u32,
}

impl XskSocket {
    /// Create a socket on (ifindex, queue). The first socket of a worker
    /// registers `umem`; later ones pass `shared_with` to reuse it.
    pub fn new(
        umem: &Umem,
        ifindex: u32,
        queue: u32,
        sizes: RingSizes,
        zero_copy: ZeroCopyWish,
        shared_with: Option<&XskSocket>,
    ) -> io::Result<Self> {
        for s in [sizes.fill, sizes.comp, sizes.rx, sizes.tx] {
            if !s.is_power_of_two() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "ring sizes must be powers of two",
                ));
            }
        }
        // SAFETY: plain syscall.
        let raw = unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let f = fd.as_raw_fd();
        if shared_with.is_none() {
            let reg = UmemReg {
                addr: umem.map.ptr.as_ptr() as u64,
                len: umem.map.len as u64,
                chunk_size: FRAME_SIZE as u32,
                headroom: 0,
                flags: 0,
                tx_metadata_len: 0,
            };
            setsockopt(f, XDP_UMEM_REG, &reg)?;
        }
        setsockopt(f, XDP_UMEM_FILL_RING, &sizes.fill)?;
        setsockopt(f, XDP_UMEM_COMPLETION_RING, &sizes.comp)?;
        setsockopt(f, XDP_RX_RING, &sizes.rx)?;
        setsockopt(f, XDP_TX_RING, &sizes.tx)?;
        let off: MmapOffsets = getsockopt(f, XDP_MMAP_OFFSETS)?;
        let fill = Ring::map(f, &off.fr, sizes.fill, XDP_UMEM_PGOFF_FILL_RING)?;
        let comp = Ring::map(f, &off.cr, sizes.comp, XDP_UMEM_PGOFF_COMPLETION_RING)?;
        let rx = Ring::map(f, &off.rx, sizes.rx, XDP_PGOFF_RX_RING)?;
        let tx = Ring::map(f, &off.tx, sizes.tx, XDP_PGOFF_TX_RING)?;

        let attempts: &[(u16, BindMode)] = match (shared_with, zero_copy) {
            // A socket sharing a UMEM inherits copy/zero-copy and need_wakeup
            // from the UMEM's owner: the kernel refuses those flags here.
            (Some(owner), _) => &[(XDP_SHARED_UMEM, owner.mode)][..],
            (None, ZeroCopyWish::On) => &[(XDP_ZEROCOPY | XDP_USE_NEED_WAKEUP, BindMode::ZeroCopy)],
            (None, ZeroCopyWish::Off) => &[(XDP_COPY | XDP_USE_NEED_WAKEUP, BindMode::Copy)],
            (None, ZeroCopyWish::Auto) => &[
                (XDP_ZEROCOPY | XDP_USE_NEED_WAKEUP, BindMode::ZeroCopy),
                (XDP_COPY | XDP_USE_NEED_WAKEUP, BindMode::Copy),
            ],
        };
        let shared_fd = shared_with.map(|s| s.fd.as_raw_fd() as u32).unwrap_or(0);
        let mut last_err = io::Error::from_raw_os_error(libc::EINVAL);
        let mut bound = None;
        'outer: for &(flags, mode) in attempts {
            // A queue closed a moment ago can stay busy briefly: back off and retry.
            for attempt in 0..8u32 {
                let sa = SockaddrXdp {
                    family: AF_XDP as u16,
                    flags,
                    ifindex,
                    queue_id: queue,
                    shared_umem_fd: shared_fd,
                };
                // SAFETY: valid sockaddr_xdp of the right size.
                let rc = unsafe {
                    libc::bind(
                        f,
                        (&sa as *const SockaddrXdp).cast(),
                        std::mem::size_of::<SockaddrXdp>() as libc::socklen_t,
                    )
                };
                if rc == 0 {
                    bound = Some(mode);
                    break 'outer;
                }
                last_err = io::Error::last_os_error();
                if last_err.raw_os_error() != Some(libc::EBUSY) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10 << attempt.min(5)));
            }
        }
        let mode = bound.ok_or(last_err)?;
        Ok(XskSocket {
            fd,
            fill,
            comp,
            rx,
            tx,
            mode,
            ifindex,
            queue,
            tx_outstanding: 0,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Keep the fill ring topped up from the free list.
    pub fn refill(&mut self, umem: &mut Umem, target: u32) {
        let free = self.fill.free_slots();
        let in_ring = self.fill.size - free;
        let want = target.saturating_sub(in_ring).min(free);
        let mut n = 0;
        while n < want {
            let Some(addr) = umem.alloc() else { break };
            self.fill.write(n, addr);
            n += 1;
        }
        if n > 0 {
            self.fill.submit(n);
        }
    }

    /// Take up to `out.len()` received descriptors.
    pub fn recv(&mut self, out: &mut [XdpDesc]) -> usize {
        let n = self.rx.available().min(out.len() as u32);
        for (i, slot) in out.iter_mut().enumerate().take(n as usize) {
            *slot = self.rx.read(i as u32);
        }
        if n > 0 {
            self.rx.release(n);
        }
        n as usize
    }

    /// Frames the kernel finished transmitting go back to the free list.
    pub fn reclaim(&mut self, umem: &mut Umem) -> u32 {
        let n = self.comp.available();
        for i in 0..n {
            umem.free(self.comp.read(i));
        }
        if n > 0 {
            self.comp.release(n);
            self.tx_outstanding = self.tx_outstanding.saturating_sub(n);
        }
        n
    }

    /// Free TX slots right now (reservation is all-or-nothing, so callers cap
    /// a batch at this).
    pub fn tx_free(&mut self) -> u32 {
        self.tx.free_slots()
    }

    /// Queue descriptors for transmission; the caller checked `tx_free`.
    pub fn send(&mut self, descs: impl Iterator<Item = XdpDesc>) -> u32 {
        let mut n = 0;
        for d in descs {
            self.tx.write(n, d);
            n += 1;
        }
        if n > 0 {
            self.tx.submit(n);
            self.tx_outstanding += n;
        }
        n
    }

    /// Services the wake-ups the kernel asks for (call once per loop turn,
    /// after `refill` and after queuing TX). Every socket is bound with
    /// XDP_USE_NEED_WAKEUP, and the uAPI contract (if_xdp.h) is that while
    /// a ring's flag is set the driver does nothing until woken: "poll()
    /// (Rx and Tx) or sendto() (Tx only)". Zero-copy drivers (igb, ice,
    /// i40e, ixgbe) set the fill ring's flag when they ran out of fill
    /// buffers, at bind time in particular, and then stop receiving on that
    /// queue until a recvfrom/poll on *this* socket. Copy mode never sets
    /// the fill flag, so there this costs one relaxed load.
    pub fn service_wakeups(&mut self) -> Wakeup {
        let due = Wakeup::due(
            self.mode,
            self.fill.needs_wakeup(),
            self.tx.needs_wakeup(),
            self.tx_outstanding,
        );
        if due.rx {
            // SAFETY: a zero-length non-blocking recvfrom is the RX doorbell
            // (it runs the driver's ndo_xsk_wakeup for this queue).
            unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
        }
        if due.tx {
            // SAFETY: sendto with no data is the AF_XDP TX doorbell.
            unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
        }
        due
    }

    /// Frames currently held by the kernel in the fill ring.
    pub fn fill_level(&mut self) -> u32 {
        self.fill.size - self.fill.free_slots()
    }

    pub fn statistics(&self) -> io::Result<XdpStatistics> {
        getsockopt(self.fd.as_raw_fd(), XDP_STATISTICS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring over plain memory, laid out as the kernel lays out a fill
    /// ring, so the test can play the kernel's side.
    fn fake_fill_ring() -> (Ring<u64>, *mut u32) {
        let off = RingOffset {
            producer: 0,
            consumer: 64,
            flags: 128,
            desc: 192,
        };
        let map = Mmap::anonymous(4096).expect("mmap");
        let flags = unsafe { map.ptr.as_ptr().add(128) } as *mut u32;
        (Ring::over(map, &off, 8), flags)
    }

    #[test]
    fn fill_ring_need_wakeup_flag_is_read_from_the_kernels_word() {
        let (ring, flags) = fake_fill_ring();
        assert!(!ring.needs_wakeup());
        // SAFETY: the word lives in the ring's mapping, which `ring` keeps.
        unsafe { flags.write_volatile(XDP_RING_NEED_WAKEUP) };
        assert!(ring.needs_wakeup());
        unsafe { flags.write_volatile(0) };
        assert!(!ring.needs_wakeup());
    }

    #[test]
    fn a_dry_fill_ring_is_woken_in_every_mode_and_tx_as_the_mode_needs() {
        use BindMode::{Copy, ZeroCopy};
        // The driver stopped RX (fill flag): recvfrom, even with no TX pending.
        for mode in [Copy, ZeroCopy] {
            assert_eq!(
                Wakeup::due(mode, true, false, 0),
                Wakeup {
                    rx: true,
                    tx: false
                }
            );
        }
        // Nothing asked, nothing outstanding: no syscall at all.
        assert_eq!(Wakeup::due(ZeroCopy, false, false, 0), Wakeup::default());
        assert_eq!(Wakeup::due(Copy, false, true, 0), Wakeup::default());
        // Copy mode transmits a batch per sendto: ring while frames wait.
        assert_eq!(
            Wakeup::due(Copy, false, false, 3),
            Wakeup {
                rx: false,
                tx: true
            }
        );
        // Zero-copy: only when the driver set the TX flag.
        assert_eq!(Wakeup::due(ZeroCopy, false, false, 3), Wakeup::default());
        assert_eq!(
            Wakeup::due(ZeroCopy, true, true, 3),
            Wakeup { rx: true, tx: true }
        );
    }

    #[test]
    fn umem_free_list_hands_out_chunk_addresses() {
        let mut u = Umem::new(8).expect("mmap");
        let a = u.alloc().unwrap();
        assert_eq!(a % FRAME_SIZE as u64, 0);
        u.free(a + 300);
        assert_eq!(u.alloc(), Some(a));
        let mut n = 0;
        while u.alloc().is_some() {
            n += 1;
        }
        assert_eq!(n, 7);
    }
}
