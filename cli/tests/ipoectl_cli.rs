//! ipoectl as a user runs it: the built binary, its exit codes, its
//! stderr, and what it sends and prints against a fake daemon (a unix
//! listener in a thread answering canned reply lines). This checks the CLI
//! only; the daemon's side is tested with the daemon.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A directory of its own per test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ipoectl-cli-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("ipoed.sock")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs ipoectl with `args`, `$IPOED_SOCKET` unset.
fn ipoectl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ipoectl"))
        .args(args)
        .env_remove("IPOED_SOCKET")
        .output()
        .expect("run ipoectl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code, not a signal")
}

/// A daemon that accepts one connection, records the request line and
/// answers `reply` (a whole line; `None`: says nothing and holds the
/// connection until ipoectl gives up).
struct FakeDaemon {
    dir: TempDir,
    thread: Option<JoinHandle<Option<String>>>,
}

impl FakeDaemon {
    fn start(reply: Option<String>) -> Self {
        let dir = TempDir::new();
        let listener = UnixListener::bind(dir.socket()).expect("bind fake daemon");
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || serve_one(&listener, reply));
        FakeDaemon {
            dir,
            thread: Some(thread),
        }
    }

    fn answering(reply: &Value) -> Self {
        Self::start(Some(reply.to_string()))
    }

    fn with_data(data: Value) -> Self {
        Self::answering(&json!({"version": 1, "ok": true, "data": data}))
    }

    fn path(&self) -> &Path {
        self.dir.0.as_path()
    }

    /// Runs ipoectl against this daemon, `--socket` last (options go
    /// anywhere); returns its output and the request line received.
    fn run(mut self, args: &[&str]) -> (Output, Option<String>) {
        let sock = self.dir.socket();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--socket", sock.to_str().unwrap()]);
        let out = ipoectl(&all);
        let req = self.thread.take().unwrap().join().expect("fake daemon");
        (out, req)
    }
}

fn serve_one(listener: &UnixListener, reply: Option<String>) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => return None,
        }
    };
    stream.set_nonblocking(false).unwrap();
    let mut r = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    match reply {
        Some(reply) => {
            let mut w = stream;
            let _ = w.write_all(format!("{reply}\n").as_bytes());
        }
        // Hold the connection open until ipoectl closes it.
        None => {
            let _ = r.read_line(&mut String::new());
        }
    }
    Some(line)
}

/// The request as JSON, and its exact text without the newline.
fn request(req: Option<String>) -> (Value, String) {
    let line = req.expect("the fake daemon got a request");
    assert!(
        line.ends_with('\n'),
        "request ends with a newline: {line:?}"
    );
    let text = line.trim_end_matches('\n').to_string();
    (serde_json::from_str(&text).expect("request is JSON"), text)
}

fn assert_usage_error(args: &[&str], reason: &str) {
    let o = ipoectl(args);
    assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(reason), "{args:?}: want {reason:?} in {err}");
    assert!(
        err.contains("usage: ipoectl"),
        "{args:?}: usage text in {err}"
    );
    assert!(stdout(&o).is_empty(), "{args:?} printed on stdout");
}

// --- the command line ---

#[test]
fn help_prints_usage_and_succeeds() {
    for flag in ["-h", "--help"] {
        let o = ipoectl(&[flag]);
        assert_eq!(code(&o), 0);
        assert!(stdout(&o).contains("usage: ipoectl"));
        assert!(stdout(&o).contains("trace add N [wan|lan]"));
        // Anywhere on the line, it is the help of the command before it.
        let o = ipoectl(&["show", "wan", flag]);
        assert_eq!(code(&o), 0);
        assert!(stdout(&o).contains("usage: ipoectl show wan"));
        assert!(stdout(&o).contains("WAN IPv6: addresses, routers, RA"));
        assert!(stderr(&o).is_empty());
    }
}

#[test]
fn unknown_or_missing_command_is_a_usage_error() {
    assert_usage_error(&["show", "foo"], "unknown command \"show foo\"");
    assert_usage_error(&["frobnicate"], "unknown command");
    assert_usage_error(&[], "no command given");
    assert_usage_error(&["show"], "incomplete command \"show\"");
    assert_usage_error(&["clear"], "runtime, errors, trace");
}

#[test]
fn trace_add_count_is_checked_before_sending() {
    for bad in ["x", "0", "1001", "-5", "1.5", "+3", ""] {
        assert_usage_error(&["trace", "add", bad], "from 1 to 1000");
    }
    assert_usage_error(&["trace", "add"], "needs a packet count");
    assert_usage_error(&["trace", "add", "5", "6"], "wan or lan");
    assert_usage_error(&["trace", "add", "5", "lan", "x"], "unexpected");
}

#[test]
fn options_that_do_not_go_with_the_command_are_refused() {
    assert_usage_error(
        &["--proto", "tcp", "show", "wan"],
        "--proto goes only with `show sessions`",
    );
    assert_usage_error(
        &["show", "errors", "--host", "::1"],
        "--host goes only with",
    );
    assert_usage_error(
        &["show", "runtime", "--all"],
        "--all goes only with `show errors`",
    );
}

#[test]
fn bad_options_are_usage_errors() {
    assert_usage_error(&["show", "wan", "--frob"], "unknown option --frob");
    assert_usage_error(&["show", "wan", "--socket"], "--socket needs a value");
    assert_usage_error(&["show", "sessions", "--proto"], "--proto needs a value");
    assert_usage_error(
        &["show", "sessions", "--proto", "sctpx"],
        "--proto \"sctpx\"",
    );
    assert_usage_error(
        &["show", "sessions", "--host", "1.2.3"],
        "not an IPv4 or IPv6",
    );
    assert_usage_error(&["--json=yes", "version"], "--json takes no value");
    assert_usage_error(
        &["show", "sessions", "--proto", "tcp", "--proto", "udp"],
        "--proto given twice",
    );
}

// --- reaching the daemon ---

#[test]
fn missing_socket_exits_1_naming_the_path() {
    let dir = TempDir::new();
    let sock = dir.socket();
    let o = ipoectl(&["--socket", sock.to_str().unwrap(), "show", "wan"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "ipoectl: cannot reach ipoed at {}: ",
            sock.display()
        )),
        "{err}"
    );
    assert!(err.contains("is ipoed running?"), "{err}");
    assert!(err.contains("$IPOED_SOCKET"), "{err}");
}

#[test]
fn ipoed_socket_variable_names_the_default_socket() {
    let dir = TempDir::new();
    let sock = dir.0.join("from-env.sock");
    let o = Command::new(env!("CARGO_BIN_EXE_ipoectl"))
        .arg("version")
        .env("IPOED_SOCKET", &sock)
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains(sock.to_str().unwrap()),
        "{}",
        stderr(&o)
    );
}

#[test]
fn stale_socket_says_nobody_listens() {
    let dir = TempDir::new();
    drop(UnixListener::bind(dir.socket()).unwrap());
    let o = ipoectl(&["--socket", dir.socket().to_str().unwrap(), "version"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(err.contains("cannot reach ipoed"), "{err}");
    assert!(err.contains("nobody listens"), "{err}");
}

#[test]
fn silent_daemon_times_out() {
    let d = FakeDaemon::start(None);
    let started = Instant::now();
    let (o, req) = d.run(&["version"]);
    assert!(req.is_some());
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("no reply within 10 s"),
        "{}",
        stderr(&o)
    );
    assert!(started.elapsed() < Duration::from_secs(19));
}

#[test]
fn error_reply_exits_1_with_the_error() {
    let d = FakeDaemon::answering(
        &json!({"version": 1, "ok": false, "error": "no delegated prefix to renew yet"}),
    );
    let (o, _) = d.run(&["pd", "renew"]);
    assert_eq!(code(&o), 1);
    assert_eq!(stderr(&o), "ipoed: no delegated prefix to renew yet\n");
    assert!(stdout(&o).is_empty());
}

#[test]
fn reload_error_is_printed_verbatim() {
    let e = "/etc/ipoed.yaml:12:5: firewall.timeouts.udp: expected a number";
    let d = FakeDaemon::answering(&json!({"version": 1, "ok": false, "error": e}));
    let (o, req) = d.run(&["reload"]);
    assert_eq!(request(req).1, r#"{"version":1,"command":"reload"}"#);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).lines().any(|l| l == e), "{}", stderr(&o));
}

#[test]
fn unreadable_reply_exits_1() {
    let d = FakeDaemon::start(Some("this is not json".into()));
    let (o, _) = d.run(&["version"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("not JSON"), "{}", stderr(&o));
}

// --- what is sent ---

#[test]
fn trace_add_sends_the_count() {
    let d = FakeDaemon::with_data(json!({"armed": 5}));
    let (o, req) = d.run(&["trace", "add", "5"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (v, text) = request(req);
    assert_eq!(
        v,
        json!({"version": 1, "command": "trace add", "args": {"count": 5}})
    );
    assert_eq!(
        text,
        r#"{"version":1,"command":"trace add","args":{"count":5}}"#
    );
    assert!(stdout(&o).contains("tracing the next 5 packets"));
}

#[test]
fn sessions_filters_are_sent_as_args() {
    let d = FakeDaemon::with_data(json!({"matched": 0, "shown": 0, "totals": {}, "sessions": []}));
    let (o, req) = d.run(&[
        "show",
        "sessions",
        "--proto",
        "tcp",
        "--host",
        "192.168.1.10",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (v, _) = request(req);
    assert_eq!(
        v,
        json!({"version": 1, "command": "show sessions",
               "args": {"proto": "tcp", "host": "192.168.1.10"}})
    );
}

#[test]
fn commands_without_arguments_send_no_args() {
    for (args, command) in [
        (&["clear", "runtime"][..], "clear runtime"),
        (&["clear", "errors"][..], "clear errors"),
        (&["clear", "trace"][..], "clear trace"),
        (&["show", "trace"][..], "show trace"),
        (&["show", "sessions"][..], "show sessions"),
        (&["version"][..], "version"),
    ] {
        let d = FakeDaemon::with_data(json!({}));
        let (o, req) = d.run(args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        assert_eq!(
            request(req).1,
            format!(r#"{{"version":1,"command":"{command}"}}"#)
        );
    }
}

// --- what is printed ---

fn runtime_data() -> Value {
    json!({
        "uptime_s": 3723,
        "workers": [{
            "worker": 0, "wan_queues": [0], "lan_queues": [0], "core": 2,
            "loops": 123456, "busy_share": 0.123,
            "nodes": [
                {"name": "ethernet-input", "calls": 1000, "vectors": 32000, "clocks": 1,
                 "vectors_per_call": 32.0, "clocks_per_packet": 41.5},
                {"name": "ip4-input", "calls": 7, "vectors": 9, "clocks": 1,
                 "vectors_per_call": 1.29, "clocks_per_packet": 1234.5},
                {"name": "dslite-decap", "calls": 0, "vectors": 0, "clocks": 0,
                 "vectors_per_call": 0.0, "clocks_per_packet": 0.0}
            ]
        }]
    })
}

#[test]
fn runtime_renders_an_aligned_table() {
    let (o, req) = FakeDaemon::with_data(runtime_data()).run(&["show", "runtime"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(request(req).0["command"], "show runtime");
    let out = stdout(&o);
    assert!(out.contains("uptime 1h02m03s"), "{out}");
    assert!(out.contains("Worker 0 (core 2"), "{out}");
    assert!(out.contains("loops 123456, busy 12.3%"), "{out}");
    assert!(
        !out.contains("dslite-decap"),
        "nodes with no calls are left out:\n{out}"
    );
    let lines: Vec<&str> = out.lines().collect();
    let head = lines
        .iter()
        .find(|l| l.starts_with("Name"))
        .expect("header");
    let eth = lines
        .iter()
        .find(|l| l.starts_with("ethernet-input"))
        .expect("row");
    let ip4 = lines
        .iter()
        .find(|l| l.starts_with("ip4-input"))
        .expect("row");
    // Numbers are right-aligned under their headings.
    for col in ["Calls", "Vectors", "Vectors/Call", "Clocks/Packet"] {
        let end = head.find(&format!(" {col}")).unwrap() + 1 + col.len();
        for row in [eth, ip4] {
            let b = row.as_bytes();
            assert!(
                b[end - 1].is_ascii_digit(),
                "{col} ends at {end} in {row:?}\n{out}"
            );
            assert!(
                b.get(end).copied().unwrap_or(b' ') == b' ',
                "{col} in {row:?}"
            );
        }
    }
    assert!(eth.contains("32.00") && eth.contains("41.5"), "{eth}");
}

#[test]
fn json_prints_the_data() {
    let data = runtime_data();
    let (o, _) = FakeDaemon::with_data(data.clone()).run(&["show", "--json", "runtime"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let printed: Value = serde_json::from_str(&stdout(&o)).expect("stdout is JSON");
    assert_eq!(printed, data);
}

#[test]
fn large_reply_is_read_whole() {
    let sessions: Vec<Value> = (0..20_000)
        .map(|i| {
            json!({"proto": 6, "inside": "192.168.1.10", "inside_port": i % 65536,
                        "outside": "203.0.113.1", "outside_port": 443, "state": "established",
                        "idle_s": 1, "expires_in_s": 7000, "packets_out": 1, "packets_in": 1,
                        "bytes_out": 60, "bytes_in": 60, "pad": "x".repeat(100)})
        })
        .collect();
    let data = json!({"matched": 20000, "shown": 1000, "totals": {}, "sessions": sessions});
    assert!(data.to_string().len() > 2_000_000);
    let (o, _) = FakeDaemon::with_data(data.clone()).run(&["--json", "show", "sessions"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let printed: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(printed, data);
}

#[test]
fn errors_hide_zero_counters_unless_all() {
    let data = json!({"errors": [
        {"node": "ip4-input", "counter": "bad-checksum", "description": "bad IPv4 header checksum", "count": 17},
        {"node": "ip6-input", "counter": "hop-limit", "description": "hop limit exceeded", "count": 0},
    ]});
    let (o, _) = FakeDaemon::with_data(data.clone()).run(&["show", "errors"]);
    let out = stdout(&o);
    assert!(out.contains("bad-checksum") && out.contains("17"), "{out}");
    assert!(!out.contains("hop-limit"), "{out}");
    let (o, req) = FakeDaemon::with_data(data).run(&["show", "errors", "--all"]);
    assert!(stdout(&o).contains("hop-limit"), "{}", stdout(&o));
    // --all filters here; the daemon is not told.
    assert_eq!(request(req).1, r#"{"version":1,"command":"show errors"}"#);
}

#[test]
fn trace_prints_packets_and_steps() {
    let data = json!({"armed_left": 2, "lost": 0, "packets": [{
        "seq": 3, "worker": 0, "rx": "lan", "len": 74, "age_s": 0.4,
        "summary": "IPv4 192.168.1.10:5555 -> 203.0.113.1:80 tcp",
        "steps": [
            {"node": "ethernet-input", "decision": "ip4-input"},
            {"node": "dslite-encap", "decision": "ip6-fragment"},
            {"node": "interface-output", "decision": "tx wan"}
        ]
    }]});
    let (o, _) = FakeDaemon::with_data(data).run(&["show", "trace"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "Packet 3 (worker 0, rx lan, 74 bytes, 0.4 s ago)")
        .unwrap_or_else(|| panic!("packet header in\n{out}"));
    assert_eq!(
        lines[at + 1],
        "IPv4 192.168.1.10:5555 -> 203.0.113.1:80 tcp"
    );
    assert_eq!(lines[at + 2], "  ethernet-input -> ip4-input");
    assert_eq!(lines[at + 3], "  dslite-encap -> ip6-fragment");
    assert_eq!(lines[at + 4], "  interface-output -> tx wan");
}

#[test]
fn reload_prints_the_message_and_changes() {
    let data = json!({"changed": ["firewall", "lan"], "unchanged": false,
                      "message": "applied without a restart"});
    let (o, _) = FakeDaemon::with_data(data).run(&["reload"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        stdout(&o),
        "applied without a restart\nchanged: firewall, lan\n"
    );
}

#[test]
fn leases_show_time_left_humanised() {
    let data = json!({
        "dhcpv4": {"enabled": true, "leases": [
            {"ip": "192.168.1.10", "mac": "02:00:00:00:00:01", "hostname": "laptop",
             "state": "bound", "left_s": 3723}]},
        "dhcpv6": {"enabled": false, "mode": "off", "leases": []}
    });
    let (o, _) = FakeDaemon::with_data(data).run(&["show", "leases"]);
    let out = stdout(&o);
    assert!(out.contains("DHCPv4 server: on, 1 lease"), "{out}");
    assert!(out.contains("1h02m03s"), "{out}");
    assert!(out.contains("DHCPv6 server: off"), "{out}");
}

#[test]
fn tunnel_shows_mss_clamp_and_byte_counts() {
    let data = json!({"configured_aftr": null, "b4": "2001:db8::2", "aftr": "2001:db8::1",
                      "up": true, "mtu": 1460, "mss_clamp": null, "encap_packets": 10,
                      "encap_bytes": 3_145_728, "decap_packets": 9, "decap_bytes": 900,
                      "dns": {"addresses": ["2001:db8::1"], "ttl_s": 3600, "refresh_in_s": 125,
                              "server": "2001:db8::53"}});
    let (o, _) = FakeDaemon::with_data(data).run(&["show", "tunnel"]);
    let out = stdout(&o);
    let line = |key: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("{key} in\n{out}"))
            .to_string()
    };
    assert!(line("MSS clamp").ends_with(" off"), "{out}");
    assert!(line("encap bytes").ends_with("3145728 (3.0 MiB)"), "{out}");
    assert!(line("configured AFTR").ends_with(" -"), "{out}");
    assert!(line("up").ends_with(" yes"), "{out}");
    assert!(line("refresh in").ends_with(" 2m05s"), "{out}");
    // Values start in one column.
    let col = |l: String| l.rfind("  ").map(|i| i + 2);
    assert_eq!(col(line("up")), col(line("decap packets")), "{out}");
}

#[test]
fn odd_replies_never_crash_the_printers() {
    let commands: &[&[&str]] = &[
        &["show", "interfaces"],
        &["show", "errors"],
        &["show", "runtime"],
        &["show", "neighbors"],
        &["show", "config"],
        &["show", "wan"],
        &["show", "pd"],
        &["show", "tunnel"],
        &["show", "lan"],
        &["show", "leases"],
        &["show", "firewall"],
        &["show", "sessions"],
        &["show", "trace"],
        &["trace", "add", "3"],
        &["clear", "errors"],
        &["pd", "rebind"],
        &["reload"],
        &["version"],
    ];
    let odd = [
        json!(null),
        json!([1, "x"]),
        json!("text"),
        json!({"interfaces": [{"queues": "no"}, 7], "errors": {"a": 1},
               "workers": [{"nodes": [{"calls": "many"}, null]}], "neighbors": [[]],
               "sessions": [{"proto": "tcp", "inside": 5}], "packets": [{"steps": [1]}],
               "dhcpv4": [], "rules": [{"hits": -1}], "recent_drops": [{"at_unix": "x"}],
               "ra": {"interval_s": ["a"], "prefixes": [{"prefix": {"deep": [1]}}]},
               "changed": "all", "yaml": 5, "armed": {"n": 1}, "timeouts": []}),
    ];
    for args in commands {
        for data in &odd {
            let (o, _) = FakeDaemon::with_data(data.clone()).run(args);
            assert_eq!(code(&o), 0, "{args:?} with {data}: {}", stderr(&o));
            assert!(
                stderr(&o).is_empty(),
                "{args:?} with {data}: {}",
                stderr(&o)
            );
        }
    }
}

#[test]
fn fake_daemon_dir_is_private_to_each_test() {
    let a = FakeDaemon::with_data(json!({}));
    let b = FakeDaemon::with_data(json!({}));
    assert_ne!(a.path(), b.path());
    let _ = a.run(&["version"]);
    let _ = b.run(&["version"]);
}
