//! systemd's readiness protocol (sd_notify(3)) without libsystemd: one
//! datagram to the unix socket named by `NOTIFY_SOCKET`. Outside systemd
//! the variable is unset and every call is a no-op.

use std::os::unix::net::UnixDatagram;

/// Send `state` (e.g. `READY=1\nSTATUS=...`); returns whether it was sent.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return false;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket name.
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), std::path::Path::new(&path))
    };
    match sent {
        Ok(_) => true,
        Err(e) => {
            log::debug!("sd_notify: {e}");
            false
        }
    }
}

/// `RELOADING=1` needs the time of the reload (systemd 253+).
pub fn reloading() -> bool {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ready_reaches_the_socket() {
        let dir = std::env::temp_dir().join(format!("sdnotify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        // Only this test sets the variable in this process.
        std::env::set_var("NOTIFY_SOCKET", &path);
        assert!(super::notify("READY=1\nSTATUS=running"));
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=running");
        assert!(super::reloading());
        let n = rx.recv(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"RELOADING=1\nMONOTONIC_USEC="));
        std::env::remove_var("NOTIFY_SOCKET");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
