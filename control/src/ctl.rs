//! The control socket: line-delimited JSON requests and replies (see
//! control/PROTOCOL.md). Non-blocking throughout: the control thread serves
//! clients between protocol work and never waits on one.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};

// The messages themselves are ipoe-proto's, shared with ipoectl.
pub use ipoe_proto::ctl::{
    error_reply, ok_reply, parse_request, Request, MAX_REQUEST, PROTOCOL_VERSION, TRACE_ADD_MAX,
};

use crate::daemon::Router;
use crate::report;

/// Most clients served at once; more are refused with an error reply.
pub const MAX_CLIENTS: usize = 256;
/// A client with replies this large still unread is not served more
/// requests until it reads them (it cannot make the daemon buffer without
/// bound).
const MAX_PENDING_OUT: usize = 16 << 20;
/// A connection with no request in progress for this long is closed, so
/// idle clients cannot hold every slot.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    closing: bool,
    /// The peer closed its side.
    eof: bool,
    last_active: Instant,
}

pub struct CtlServer {
    path: PathBuf,
    listener: UnixListener,
    clients: HashMap<i32, Client>,
    allowed_gid: Option<u32>,
    pub refused: u64,
    pub oversized: u64,
    pub timed_out: u64,
    /// `router.reloads` when `allowed_gid` was last read from the config.
    reloads_seen: u64,
}

impl CtlServer {
    pub fn bind(path: &Path, group: Option<&str>) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // A socket file left by a crashed run: nobody answers on it.
        if path.exists() && UnixStream::connect(path).is_err() {
            let _ = std::fs::remove_file(path);
        }
        let listener = UnixListener::bind(path)
            .with_context(|| format!("binding the control socket {}", path.display()))?;
        listener.set_nonblocking(true)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        let mut server = CtlServer {
            path: path.to_path_buf(),
            listener,
            clients: HashMap::new(),
            allowed_gid: None,
            refused: 0,
            oversized: 0,
            timed_out: 0,
            reloads_seen: 0,
        };
        server.set_group(group)?;
        Ok(server)
    }

    /// The group allowed besides root; the socket file is given to it so
    /// its members pass the file mode as well as the credential check.
    pub fn set_group(&mut self, group: Option<&str>) -> Result<()> {
        self.allowed_gid = match group {
            Some(g) => {
                let gid = group_id(g).with_context(|| format!("control.group {g}"))?;
                let c = std::ffi::CString::new(self.path.as_os_str().as_encoded_bytes())?;
                // SAFETY: chown on a path we created, with a valid C string.
                if unsafe { libc::chown(c.as_ptr(), u32::MAX, gid) } != 0 {
                    // After start ipoed no longer holds CAP_CHOWN: members
                    // are still let in (SO_PEERCRED) once the file mode is
                    // fixed by hand or at the next restart.
                    log::warn!(
                        "control socket: cannot give {} to group {g}: {}",
                        self.path.display(),
                        std::io::Error::last_os_error()
                    );
                }
                Some(gid)
            }
            None => None,
        };
        Ok(())
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }

    pub fn add_pollfds(&self, fds: &mut Vec<libc::pollfd>) {
        fds.push(libc::pollfd {
            fd: self.listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        for (fd, c) in &self.clients {
            // Level-triggered: asking for input it will not read would
            // wake the loop for nothing.
            let reading = !c.closing
                && !c.eof
                && c.inbuf.len() <= MAX_REQUEST
                && c.outbuf.len() < MAX_PENDING_OUT;
            let mut events = if reading { libc::POLLIN } else { 0 };
            if !c.outbuf.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(libc::pollfd {
                fd: *fd,
                events,
                revents: 0,
            });
        }
    }

    /// Accept, read, answer and write, without blocking.
    pub fn service(&mut self, _polled: &[libc::pollfd], router: &mut Router) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::warn!("control socket accept: {e}");
                    break;
                }
            }
        }
        let now = Instant::now();
        let fds: Vec<i32> = self.clients.keys().copied().collect();
        for fd in fds {
            let Some(c) = self.clients.get_mut(&fd) else {
                continue;
            };
            // A closing client's further bytes are not read: the error
            // reply is all it gets.
            let mut gone = !c.closing && !c.eof && read_some(c);
            let before = (c.inbuf.len(), c.outbuf.len());
            while !c.closing && c.outbuf.len() < MAX_PENDING_OUT {
                let Some(pos) = c.inbuf.iter().position(|&b| b == b'\n') else {
                    break;
                };
                let line: Vec<u8> = c.inbuf.drain(..=pos).collect();
                let reply = handle_line(&line[..line.len() - 1], router);
                c.outbuf.extend_from_slice(reply.to_string().as_bytes());
                c.outbuf.push(b'\n');
            }
            if !c.closing && c.inbuf.len() > MAX_REQUEST && !c.inbuf[..MAX_REQUEST].contains(&b'\n')
            {
                let reply = error_reply(&format!("request longer than {MAX_REQUEST} bytes"));
                c.outbuf.extend_from_slice(reply.to_string().as_bytes());
                c.outbuf.push(b'\n');
                c.inbuf = Vec::new();
                c.closing = true;
                self.oversized += 1;
                // Nothing more is read from it.
                let _ = c.stream.shutdown(std::net::Shutdown::Read);
            }
            let out_before = c.outbuf.len();
            gone |= write_some(c);
            if (c.inbuf.len(), c.outbuf.len()) != before || c.outbuf.len() != out_before {
                c.last_active = now;
            }
            if !gone && now.duration_since(c.last_active) > IDLE_TIMEOUT {
                gone = true;
                self.timed_out += 1;
            }
            let served = !c.inbuf.contains(&b'\n');
            if gone || ((c.closing || (c.eof && served)) && c.outbuf.is_empty()) {
                self.clients.remove(&fd);
            }
        }
        if router.reloads != self.reloads_seen {
            self.reloads_seen = router.reloads;
            let group = router.config.control.group.clone();
            if let Err(e) = self.set_group(group.as_deref()) {
                log::warn!("control socket: {e:#}");
            }
        }
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    fn admit(&mut self, stream: UnixStream) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let mut c = Client {
            stream,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            closing: false,
            eof: false,
            last_active: Instant::now(),
        };
        let refuse = if self.clients.len() >= MAX_CLIENTS {
            Some(format!("too many clients (at most {MAX_CLIENTS})"))
        } else {
            match peer_cred(&c.stream) {
                Some((uid, gid))
                    if uid == 0
                        || self
                            .allowed_gid
                            .is_some_and(|g| g == gid || peer_groups(&c.stream).contains(&g)) =>
                {
                    None
                }
                Some((uid, _)) => Some(format!(
                    "uid {uid} may not use this socket (root or the members of control.group only)"
                )),
                None => Some("cannot read the peer's credentials".to_string()),
            }
        };
        if let Some(why) = refuse {
            self.refused += 1;
            log::info!("control socket: refused a client: {why}");
            // Non-blocking: a short line fits the socket buffer.
            let _ = c
                .stream
                .write(format!("{}\n", error_reply(&why)).as_bytes());
            return;
        }
        self.clients.insert(c.stream.as_raw_fd(), c);
    }
}

/// Read what is there; true when the peer closed or failed.
fn read_some(c: &mut Client) -> bool {
    let mut buf = [0u8; 8192];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => {
                // Its requests so far are still answered.
                c.eof = true;
                return false;
            }
            Ok(n) => {
                c.inbuf.extend_from_slice(&buf[..n]);
                // Leave the rest in the socket until these are served.
                if c.inbuf.len() > MAX_REQUEST {
                    return false;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

fn write_some(c: &mut Client) -> bool {
    while !c.outbuf.is_empty() {
        match c.stream.write(&c.outbuf) {
            Ok(0) => return true,
            Ok(n) => {
                c.outbuf.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
    false
}

fn peer_cred(s: &UnixStream) -> Option<(u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED fills a ucred of the given size.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some((cred.uid, cred.gid))
}

/// The peer's supplementary groups (SO_PEERGROUPS, Linux 4.13): a member
/// of control.group whose primary group is another one is let in too.
fn peer_groups(s: &UnixStream) -> Vec<u32> {
    let mut groups = [0u32; 256];
    let mut len = std::mem::size_of_val(&groups) as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `groups`.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERGROUPS,
            groups.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Vec::new();
    }
    let n = (len as usize / std::mem::size_of::<u32>()).min(groups.len());
    groups[..n].to_vec()
}

fn group_id(name: &str) -> Result<u32> {
    let groups = std::fs::read_to_string("/etc/group")?;
    groups
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let gid = f.nth(1)?.parse().ok()?;
            (n == name).then_some(gid)
        })
        .next()
        .with_context(|| format!("no group named {name} in /etc/group"))
}

/// The data of the `show` commands that take no arguments and tell
/// nothing secret; the status page's JSON is made of these very values
/// (`crate::status`), so the page and `ipoectl --json` always agree.
pub fn show(router: &Router, cmd: &str) -> Option<Value> {
    Some(match cmd {
        "show interfaces" => report::interfaces(router),
        "show neighbors" => report::neighbors(router),
        "show wan" => report::wan(router),
        "show pd" => report::pd(router),
        "show tunnel" => report::tunnel(router),
        "show map" => router.map.report(&router.config),
        "show leases" => report::leases(router),
        "show lan" => report::lan(router),
        "show firewall" => report::firewall(router),
        _ => return None,
    })
}

/// Parse one request line and answer it. Hostile input gets an error reply.
pub fn handle_line(line: &[u8], router: &mut Router) -> Value {
    let req = match parse_request(line) {
        Ok(req) => req,
        Err(e) => return error_reply(&e),
    };
    let cmd = req.command.as_str();
    if let Some(data) = show(router, cmd) {
        return ok_reply(data);
    }
    let data = match cmd {
        "version" => json!({"daemon": env!("CARGO_PKG_VERSION"), "protocol": PROTOCOL_VERSION}),
        "show errors" => report::errors(router),
        "show runtime" => report::runtime(router),
        // The file's config, not the effective one (discovery's method is
        // in `show tunnel`), and its secrets (the update URL's credentials)
        // never leave the daemon.
        "show config" => {
            json!({"yaml": router.file_config.masked().to_yaml(), "path": router.config_path})
        }
        "show trace" => report::trace(router),
        "clear runtime" => {
            router.clear_runtime();
            json!({"cleared": "runtime"})
        }
        "clear errors" => {
            report::clear_errors(router);
            json!({"cleared": "errors"})
        }
        "clear trace" => {
            router.trace.clear();
            json!({"cleared": "trace"})
        }
        "trace add" => {
            let count = req.args.get("count").and_then(Value::as_u64);
            let rx = match req.args.get("rx") {
                None | Some(Value::Null) => None,
                Some(v) if v == "wan" => Some(ipoe_dataplane::tables::Port::Wan),
                Some(v) if v == "lan" => Some(ipoe_dataplane::tables::Port::Lan),
                Some(v) => {
                    return error_reply(&format!(
                        "trace add: args.rx {v} is not \"wan\" or \"lan\""
                    ))
                }
            };
            match count {
                Some(n @ 1..=TRACE_ADD_MAX) => {
                    json!({"armed": router.trace.add_on(n as u32, rx)})
                }
                _ => {
                    return error_reply(&format!(
                        "trace add needs args.count, a number from 1 to {TRACE_ADD_MAX}"
                    ))
                }
            }
        }
        "reload" => match router.reload_from_file() {
            Ok(v) => v,
            Err(e) => return error_reply(&e),
        },
        "show sessions" => match report::sessions(router, &req.args) {
            Ok(v) => v,
            Err(e) => return error_reply(&e),
        },
        "pd renew" | "pd rebind" => {
            let now = std::time::Instant::now();
            let pd = router.wan6.pd_enabled();
            let Some(c) = router.wan6.dhcp.as_mut().filter(|_| pd) else {
                return error_reply("the DHCPv6 client is off (wan.ipv6.dhcpv6_pd)");
            };
            if c.lease().is_none() {
                return error_reply("no delegated prefix to renew yet");
            }
            if cmd == "pd renew" {
                c.renew_now(now);
            } else {
                c.rebind_now(now);
            }
            json!({"state": format!("{:?}", c.state()).to_lowercase()})
        }
        other => return error_reply(&format!("unknown command {other:?}")),
    };
    ok_reply(data)
}
