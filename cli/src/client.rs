//! One request, one reply, over the daemon's unix socket (PROTOCOL.md:
//! a JSON line each way). Failures are sorted by what the user should do
//! about them: a daemon that cannot be reached, one that does not answer,
//! and one that answers nonsense.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::Value;

/// How long the daemon may stay silent while we wait for its reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub enum Failure {
    /// connect() failed: no daemon, wrong path, or no permission.
    Connect(std::io::Error),
    /// The daemon stayed silent for `REPLY_TIMEOUT`; `partial` when it had
    /// sent part of the reply.
    Timeout {
        partial: bool,
    },
    /// It closed the connection before a whole reply.
    Closed {
        partial: bool,
    },
    Io(std::io::Error),
    /// The reply is not JSON.
    BadReply(String),
}

/// Sends `line` and returns the parsed reply.
pub fn ask(socket: &str, line: &str) -> Result<Value, Failure> {
    let mut s = UnixStream::connect(socket).map_err(Failure::Connect)?;
    s.set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(Failure::Io)?;
    s.set_write_timeout(Some(REPLY_TIMEOUT))
        .map_err(Failure::Io)?;
    // A daemon that refuses us (credentials, too many clients) writes its
    // error reply and closes; our write may then fail, but the reply is
    // already waiting and says more than EPIPE would.
    let sent = s.write_all(line.as_bytes());
    let reply = match read_line(&mut s) {
        Ok(r) => r,
        Err(e) => return Err(sent.err().map_or(e, Failure::Io)),
    };
    serde_json::from_slice(&reply).map_err(|e| Failure::BadReply(e.to_string()))
}

/// Reads up to the first newline, however long the line: `show sessions`
/// and `show trace` replies can run to megabytes.
fn read_line(s: &mut UnixStream) -> Result<Vec<u8>, Failure> {
    let mut line = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) if line.is_empty() => return Err(Failure::Closed { partial: false }),
            // A last line without its newline is still a whole JSON value
            // if it parses; the caller finds out.
            Ok(0) => return Ok(line),
            Ok(n) => {
                if let Some(end) = chunk[..n].iter().position(|&b| b == b'\n') {
                    line.extend_from_slice(&chunk[..end]);
                    return Ok(line);
                }
                line.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Failure::Timeout {
                    partial: !line.is_empty(),
                })
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return Err(Failure::Closed {
                    partial: !line.is_empty(),
                })
            }
            Err(e) => return Err(Failure::Io(e)),
        }
    }
}

/// What to tell the user, one message line and hint lines, for a failure
/// to talk to the daemon at `socket`.
pub fn explain(socket: &str, f: &Failure) -> Vec<String> {
    let secs = REPLY_TIMEOUT.as_secs();
    match f {
        Failure::Connect(e) => vec![
            format!("ipoectl: cannot reach ipoed at {socket}: {e}"),
            connect_hint(e.kind()).to_string(),
        ],
        Failure::Timeout { partial: false } => vec![format!(
            "ipoectl: ipoed at {socket} accepted the request but sent no reply within {secs} s"
        )],
        Failure::Timeout { partial: true } => vec![format!(
            "ipoectl: ipoed at {socket} stopped for {secs} s in the middle of its reply"
        )],
        Failure::Closed { partial } => vec![format!(
            "ipoectl: ipoed at {socket} closed the connection {}",
            if *partial {
                "in the middle of its reply"
            } else {
                "without replying"
            }
        )],
        Failure::Io(e) => vec![format!("ipoectl: talking to ipoed at {socket}: {e}")],
        Failure::BadReply(e) => vec![format!(
            "ipoectl: ipoed at {socket} sent a reply that is not JSON: {e}"
        )],
    }
}

fn connect_hint(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::PermissionDenied => {
            "hint: the socket admits root and the group named in control.group only; \
             run as root or join that group"
        }
        ErrorKind::ConnectionRefused => {
            "hint: the socket file is there but nobody listens on it; is ipoed running? \
             (a crashed ipoed leaves its socket behind)"
        }
        _ => {
            "hint: is ipoed running? is the socket path right? \
             (set it with --socket PATH or $IPOED_SOCKET)"
        }
    }
}
