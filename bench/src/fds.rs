//! File descriptors ipoe-bench was started with stay out of its children.
//!
//! `make bench` runs us under `flock /run/ipoe-lab.lock`, which hands us the
//! locked file as an inheritable descriptor. Every ipoed, ceiling and pktgen
//! we start would inherit it, so a killed bench left an orphan ipoed
//! holding the lab lock and every later lab run queued behind it forever.
//! We keep our copy (the lock lasts as long as we do); children get none.

use std::io;

/// Set FD_CLOEXEC on every open descriptor from 3 up; returns how many
/// lacked it.
pub fn cloexec_inherited() -> io::Result<usize> {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd >= 3)
        .collect();
    let mut set = 0;
    for fd in fds {
        // SAFETY: fcntl on a descriptor number; one that closed meanwhile
        // (the directory's own) fails with EBADF, which we skip.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 || flags & libc::FD_CLOEXEC != 0 {
            continue;
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } == 0 {
            set += 1;
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::process::Command;

    /// An inherited descriptor (like flock's lock file) reaches a child
    /// before the call and not after it; we keep it open ourselves.
    #[test]
    fn children_no_longer_inherit_descriptors() {
        let f = std::fs::File::open("/proc/self/status").unwrap();
        // SAFETY: dup of a descriptor we own; std's own are CLOEXEC, dup's
        // copy is not, like the one flock(1) hands its command.
        let fd = unsafe { libc::dup(f.as_raw_fd()) };
        assert!(fd >= 3);
        let child_has = || {
            Command::new("sh")
                .arg("-c")
                .arg(format!("test -e /proc/$$/fd/{fd}"))
                .status()
                .unwrap()
                .success()
        };
        assert!(child_has(), "a plain dup is inherited");
        assert!(cloexec_inherited().unwrap() >= 1);
        assert!(!child_has(), "fd {fd} still reaches children");
        // SAFETY: our own descriptor, still open.
        assert!(unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0);
        // SAFETY: closing what we dup'ed.
        unsafe { libc::close(fd) };
    }
}
