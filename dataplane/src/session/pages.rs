//! The session table's big arrays: anonymous mappings that ask for 2 MiB
//! pages (madvise(MADV_HUGEPAGE)), because at 1M sessions every random
//! access on 4 KiB pages is also a TLB miss. The kernel may say no (THP
//! compiled out or set to "never"); then the array lives on 4 KiB pages and
//! works the same, only slower. Either way every page is faulted in when
//! the table is built, not by the first packets.

use std::marker::PhantomData;
use std::ptr::NonNull;

const HUGE: usize = 2 << 20;

/// What backs the table's arrays, for the log and `ipoectl`-style status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pages {
    /// madvise(MADV_HUGEPAGE) accepted and THP not disabled.
    Huge,
    /// 4 KiB pages: not asked for, too small to matter, or refused.
    Small,
}

impl Pages {
    pub fn name(self) -> &'static str {
        match self {
            Pages::Huge => "2 MiB pages (transparent huge pages)",
            Pages::Small => "4 KiB pages",
        }
    }
}

/// Types whose all-zero bit pattern is a valid value (an empty slot).
///
/// # Safety
/// Implementors must be plain data (integers, atomics, arrays of them)
/// for which all-zero bytes are a valid, initialised value.
pub(super) unsafe trait Zeroed {}

/// A fixed array of `T` in its own zero-filled mapping.
pub(super) struct Region<T> {
    map: NonNull<u8>,
    map_len: usize,
    data: NonNull<T>,
    len: usize,
    pages: Pages,
    _own: PhantomData<T>,
}

// SAFETY: a Region owns its mapping like a Box<[T]> owns its allocation.
// It hands out raw pointers only; every user (the session table) guards
// mutable access with a shard lock or uses atomics.
unsafe impl<T: Send> Send for Region<T> {}
unsafe impl<T: Sync> Sync for Region<T> {}

impl<T: Zeroed> Region<T> {
    /// `len` zeroed elements, on huge pages if `huge` and the kernel agrees.
    /// Aborts like `Vec` does if the memory cannot be mapped.
    pub fn zeroed(len: usize, huge: bool) -> Self {
        let bytes = len.max(1) * std::mem::size_of::<T>().max(1);
        // Only worth it (and only possible) for at least one whole page,
        // and then the start must be 2 MiB aligned: map one page more.
        let want = huge && bytes >= HUGE;
        let map_len = if want {
            bytes.div_ceil(HUGE) * HUGE + HUGE
        } else {
            bytes
        };
        // SAFETY: a fresh private anonymous mapping; no existing memory
        // is touched. MAP_FAILED is checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            let layout = std::alloc::Layout::from_size_align(map_len, HUGE)
                .unwrap_or(std::alloc::Layout::new::<u8>());
            std::alloc::handle_alloc_error(layout);
        }
        let map = NonNull::new(p.cast::<u8>()).unwrap_or(NonNull::dangling());
        let mut start = map.as_ptr();
        let mut pages = Pages::Small;
        if want {
            let skew = (HUGE - start as usize % HUGE) % HUGE;
            // SAFETY: skew < HUGE and the mapping is bytes + HUGE long.
            start = unsafe { start.add(skew) };
            // SAFETY: [start, start + bytes) lies inside our mapping.
            let r = unsafe {
                libc::madvise(
                    start.cast(),
                    bytes.div_ceil(HUGE) * HUGE,
                    libc::MADV_HUGEPAGE,
                )
            };
            if r == 0 && thp_enabled() {
                pages = Pages::Huge;
            }
        }
        prefault(start, bytes);
        Region {
            map,
            map_len,
            // mmap returns page-aligned memory, aligned enough for any T
            // up to 4 KiB (ours are 64 at most).
            data: NonNull::new(start.cast::<T>()).unwrap_or(NonNull::dangling()),
            len,
            pages,
            _own: PhantomData,
        }
    }
}

/// Faults the pages of `[start, start + bytes)` in now, at start-up: the
/// first flows would otherwise pay the page faults (in a VM also the
/// host's), measured at several hundred clocks per packet over a 1.5 s
/// trial. MADV_POPULATE_WRITE (Linux 5.14) does it in one call; older
/// kernels get one write per 4 KiB page.
fn prefault(start: *mut u8, bytes: usize) {
    // SAFETY: the range lies inside a private anonymous mapping we own
    // and nothing references yet.
    let r = unsafe { libc::madvise(start.cast(), bytes, libc::MADV_POPULATE_WRITE) };
    if r != 0 {
        for off in (0..bytes).step_by(4096) {
            // SAFETY: as above; zero is what the byte holds already.
            unsafe { start.add(off).write_volatile(0) };
        }
    }
}

impl<T> Region<T> {
    #[inline]
    pub fn ptr(&self) -> *mut T {
        self.data.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn pages(&self) -> Pages {
        self.pages
    }

    pub fn bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }
}

impl<T> Drop for Region<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping we made in `zeroed`, unmapped once.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
    }
}

/// THP not set to "never" (madvise succeeds even then, to no effect).
fn thp_enabled() -> bool {
    match std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled") {
        Ok(s) => !s.contains("[never]"),
        // No sysfs (a container): madvise said yes, believe it.
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SAFETY: plain bytes.
    unsafe impl Zeroed for [u8; 64] {}

    /// Every page of a new region is resident before anything writes it.
    #[test]
    fn a_new_region_is_faulted_in() {
        for huge in [false, true] {
            let r = Region::<[u8; 64]>::zeroed(6 << 20 >> 6, huge);
            let bytes = r.len * 64;
            let mut vec = vec![0u8; bytes.div_ceil(4096)];
            // SAFETY: the range is our mapping; `vec` has a byte per page.
            let rc = unsafe { libc::mincore(r.ptr().cast(), bytes, vec.as_mut_ptr()) };
            assert_eq!(rc, 0);
            let absent = vec.iter().filter(|&&b| b & 1 == 0).count();
            assert_eq!(
                absent,
                0,
                "huge {huge}: {absent} of {} pages absent",
                vec.len()
            );
        }
    }
}
