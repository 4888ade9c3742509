//! TCP tracking of issue 15 end to end with the real ipoed: an inexact RST
//! from the internet leaves the connection alive (RFC 5961, M3), and a new
//! connection on a tuple the tracker still holds resyncs at once (m4).
//! The packets the kernel would never send (a forged RST, a silent close)
//! come from Python: a raw socket, and TCP_REPAIR to close without a FIN.

use std::io::Read;
use std::time::Duration;

use ipoe_tests::Lab;

const V6_SERVER: &str = "2001:db8:ffff::10";
const LAN1_V6: &str = "2001:db8:0:111::10";

/// The lab's static config with short TCP timeouts, so "longer than the
/// closed timeout" is a short wait.
fn config(lab: &Lab) -> String {
    format!(
        "{}firewall:\n  timeouts: {{ tcp_closed: 3 }}\n",
        lab.config(1)
    )
}

/// Waits for a background command and returns what it printed.
fn output(mut child: std::process::Child) -> (bool, String, String) {
    let ok = child.wait().map(|s| s.success()).unwrap_or(false);
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (ok, out, err)
}

/// The server on inet: accepts one connection on port 9000, learns its
/// SYN-ACK's sequence number from a packet socket, sends one RST 30000
/// above the next sequence number (in the window, not exact), watches for
/// lan1's challenge ACK, waits past the closed timeout, then sends data.
const RST_SERVER: &str = r#"
import socket, struct, time, sys
SERVER = sys.argv[1]
# ETH_P_ALL: only taps for every protocol see outgoing frames (the SYN-ACK).
sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
sniff.bind(("v6", 0))
sniff.settimeout(0.2)
ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((SERVER, 9000))
ls.listen(1)
print("listening", flush=True)
ls.settimeout(20)
c, peer = ls.accept()
# lan1 has several addresses (static and SLAAC): answer the one it used.
CLIENT, cport = peer[0], peer[1]

def tcp_frames(until):
    while time.time() < until:
        try:
            f = sniff.recv(2048)
        except socket.timeout:
            continue
        if len(f) < 14 + 40 + 20 or f[12:14] != b"\x86\xdd" or f[14 + 6] != 6:
            continue
        ip = f[14:]
        t = ip[40:]
        sp, dp, seq, ack = struct.unpack("!HHII", t[:12])
        off = (t[12] >> 4) * 4
        yield sp, dp, seq, ack, t[13], len(t) - off

isn = None
for sp, dp, seq, ack, flags, n in tcp_frames(time.time() + 3):
    if sp == 9000 and dp == cport and flags & 0x12 == 0x12:
        isn = seq
        break
if isn is None:
    print("no syn-ack seen", flush=True)
    sys.exit(1)
rst_seq = (isn + 1 + 30000) & 0xffffffff
raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_TCP)
raw.setsockopt(socket.IPPROTO_IPV6, 7, 16)  # IPV6_CHECKSUM at the TCP checksum
raw.bind((SERVER, 0))
seg = struct.pack("!HHIIBBHHH", 9000, cport, rst_seq, 0, 5 << 4, 0x04, 0, 0, 0)
raw.sendto(seg, (CLIENT, 0))
# The frames already queued (the handshake's last ACK) come first: only
# a pure ACK from lan1 after our RST went out is the challenge ACK.
rst_out = challenge = False
for sp, dp, seq, ack, flags, n in tcp_frames(time.time() + 3):
    print("frame", sp, dp, seq, ack, hex(flags), n, flush=True)
    if sp == 9000 and dp == cport and flags & 0x04 and seq == rst_seq:
        rst_out = True
    elif rst_out and sp == cport and dp == 9000 and flags & 0x14 == 0x10 and n == 0:
        challenge = ack == (isn + 1) & 0xffffffff
        break
print("rst-sent" if rst_out else "rst-not-seen", flush=True)
print("challenge-ack" if challenge else "no-challenge-ack", flush=True)
time.sleep(7)
c.sendall(b"late-data\n")
print("sent", flush=True)
time.sleep(4)
"#;

const RST_CLIENT: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], 9000), timeout=5)
s.settimeout(20)
data = s.recv(100)
print(data.decode().strip())
"#;

/// M3: one inexact RST from the internet; the host answers it with a
/// challenge ACK and keeps the connection, and so must the firewall, past
/// the closed timeout.
#[test]
fn m3_inexact_rst_leaves_an_idle_connection_alive() {
    let mut lab = Lab::up(1);
    lab.start_ipoed(&config(&lab));
    assert!(lab.fetch_within(
        "lan1",
        "http://[2001:db8:ffff::10]/hello.txt",
        Duration::from_secs(10)
    ));
    let server = lab.spawn("inet", &["python3", "-c", RST_SERVER, V6_SERVER]);
    std::thread::sleep(Duration::from_millis(500));
    let client = lab.exec("lan1", &["python3", "-c", RST_CLIENT, V6_SERVER]);
    let (_, out, err) = output(server);
    eprintln!("server: {out}{err}");
    assert!(out.contains("rst-sent"), "the RST went out: {out}{err}");
    assert!(
        out.lines().any(|l| l == "challenge-ack"),
        "lan1 answered the RST with a challenge ACK: {out}{err}"
    );
    assert_eq!(
        client.stdout.trim(),
        "late-data",
        "the server's data after the RST reached lan1 (server: {out}{err}; client: {})",
        client.stderr
    );
}

/// The server on inet for the port-reuse test: one exchange on the first
/// connection, which it then drops silently (TCP_REPAIR: no FIN, no RST)
/// once the client has; then one exchange on the second.
const REUSE_SERVER: &str = r#"
import socket, sys, os, time
SERVER, FLAG = sys.argv[1], sys.argv[2]
ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((SERVER, 9001))
ls.listen(2)
ls.settimeout(20)
print("listening", flush=True)
c1, _ = ls.accept()
c1.settimeout(10)
assert c1.recv(10) == b"one"
c1.sendall(b"ONE")
for _ in range(100):
    if os.path.exists(FLAG):
        break
    time.sleep(0.1)
c1.setsockopt(socket.SOL_TCP, 19, 1)  # TCP_REPAIR: close without a word
c1.close()
c2, _ = ls.accept()
c2.settimeout(10)
got = c2.recv(10)
c2.sendall(b"TWO")
print("second", got.decode(), flush=True)
time.sleep(1)
"#;

const REUSE_CLIENT: &str = r#"
import socket, sys, time
SERVER, CLIENT, FLAG = sys.argv[1], sys.argv[2], sys.argv[3]
def conn():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((CLIENT, 45454))
    s.settimeout(5)
    s.connect((SERVER, 9001))
    return s
s = conn()
s.sendall(b"one")
assert s.recv(10) == b"ONE"
s.setsockopt(socket.SOL_TCP, 19, 1)  # TCP_REPAIR: close without a word
s.close()
open(FLAG, "w").close()
# Let the ISN clock move well past the old window.
time.sleep(2)
s = conn()
s.sendall(b"two")
print(s.recv(10).decode())
"#;

/// m4: both ends drop a connection without the tracker seeing it close;
/// a new connection from the same port (new ISN) completes and carries
/// data at once instead of hanging until the old session idles out.
#[test]
fn m4_port_reuse_with_a_new_isn_carries_data_at_once() {
    let mut lab = Lab::up(1);
    lab.start_ipoed(&config(&lab));
    assert!(lab.fetch_within(
        "lan1",
        "http://[2001:db8:ffff::10]/hello.txt",
        Duration::from_secs(10)
    ));
    let flag = lab.run_dir.join("reuse-flag").display().to_string();
    let _ = std::fs::remove_file(&flag);
    let server = lab.spawn("inet", &["python3", "-c", REUSE_SERVER, V6_SERVER, &flag]);
    std::thread::sleep(Duration::from_millis(500));
    let client = lab.exec(
        "lan1",
        &["python3", "-c", REUSE_CLIENT, V6_SERVER, LAN1_V6, &flag],
    );
    let (_, out, err) = output(server);
    assert_eq!(
        client.stdout.trim(),
        "TWO",
        "the second connection carried data (client: {}; server: {out}{err})",
        client.stderr
    );
    assert!(out.contains("second two"), "{out}{err}");
    // The tracker followed: the session is established again, not waiting
    // for the old one to expire.
    let s = lab.ctl_json(&["show", "sessions", "--proto", "tcp", "--host", V6_SERVER]);
    assert!(
        s["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|x| x["inside_port"] == 45454 && x["outside_port"] == 9001),
        "session listed: {s}"
    );
}
