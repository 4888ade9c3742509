//! The URL masking, the request writer, the response reader (split at
//! every byte, limits, hostile bytes), and whole fetches over two smoltcp
//! stacks joined in memory, against a small HTTP(S) server (rustls on the
//! server side, a CA and certificate in `testdata/`) on a fake clock.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use super::request::{base64, get};
use super::response::MAX_CHUNK_LINE;
use super::target::{mask_url_str, MASK};
use super::tls::{client_config, insecure_config, Roots, TlsError};
use super::*;
use crate::jitter::Jitter;
use crate::smoldev::{smol_duration, QueueDevice};

const CA_PEM: &[u8] = include_bytes!("testdata/ca.pem");
const SERVER_PEM: &[u8] = include_bytes!("testdata/server.pem");
const SERVER_KEY: &[u8] = include_bytes!("testdata/server.key");

const SERVER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xee, 0, 0, 0, 0, 0x80);
const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xee, 0, 0, 0, 0, 2);

// ---------------------------------------------------------------------------
// URLs and masking
// ---------------------------------------------------------------------------

#[test]
fn masking_hides_query_credentials_and_userinfo() {
    let t = Target::parse("http://[2001:db8::1]:8082/update?user=lab&pass=secret").unwrap();
    let shown = t.to_string();
    assert_eq!(shown, "http://[2001:db8::1]:8082/update?user=lab&pass=***");
    assert!(!format!("{t:?}").contains("secret"));
    assert!(t.expose().contains("pass=secret"));

    let t = Target::parse(
        "https://lab:hunter2@prov.example/cfg?token=abcd&Password=x&d=host&p=pw1&api_key=k",
    )
    .unwrap();
    let shown = t.masked();
    for secret in ["hunter2", "abcd", "=x", "pw1", "=k"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("lab:***@"), "{shown}");
    assert!(shown.contains("d=host"), "{shown}");
    // transix' and v6plus' key names; percent-encoded key names too.
    let t =
        Target::parse("http://update.example/request?username=u&password=p%40ss&pa%73s=z").unwrap();
    let shown = t.masked();
    assert!(
        !shown.contains("p%40ss") && !shown.contains("=z"),
        "{shown}"
    );
    assert!(shown.contains("username=u"), "{shown}");
}

#[test]
fn masking_a_string_that_is_not_a_url_hides_everything_after_the_scheme() {
    assert_eq!(mask_url_str("http://[::1"), format!("http://{MASK}"));
    assert_eq!(mask_url_str("pass=secret"), MASK);
    assert_eq!(
        mask_url_str("http://[2001:db8::1]:8082/update?user=lab&pass=secret"),
        "http://[2001:db8::1]:8082/update?user=lab&pass=***"
    );
}

#[test]
fn targets_refuse_other_schemes_and_resolve_redirects() {
    assert!(matches!(
        Target::parse("ftp://x/"),
        Err(UrlError::Scheme(_))
    ));
    assert!(Target::parse("not a url").is_err());
    assert!(matches!(
        Target::parse(&format!("http://x/{}", "a".repeat(5000))),
        Err(UrlError::TooLong)
    ));
    let t = Target::parse("https://prov.example/config?a=1").unwrap();
    assert_eq!(t.port(), 443);
    assert_eq!(t.host_header(), "prov.example");
    assert_eq!(t.request_target(), "/config?a=1");
    let r = t.join("/other?b=2").unwrap();
    assert_eq!(r.expose(), "https://prov.example/other?b=2");
    let r = t.join("http://[2001:db8::2]:8080/x").unwrap();
    assert_eq!(r.host(), TargetHost::Ip("2001:db8::2".parse().unwrap()));
    assert_eq!(r.host_header(), "[2001:db8::2]:8080");
    assert!(t.join("mailto:a@b").is_err());
}

// ---------------------------------------------------------------------------
// Request writer
// ---------------------------------------------------------------------------

#[test]
fn base64_matches_rfc4648_vectors() {
    for (input, out) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), out);
    }
}

#[test]
fn get_request_carries_host_and_basic_auth_from_userinfo() {
    let t = Target::parse("http://lab:p%40ss@[2001:db8::1]:8082/update?x=1#frag").unwrap();
    let req = String::from_utf8(get(&t, None, "ua\r\nInjected: 1")).unwrap();
    assert!(
        req.starts_with("GET /update?x=1 HTTP/1.1\r\nHost: [2001:db8::1]:8082\r\n"),
        "{req}"
    );
    assert!(req.contains("User-Agent: uaInjected: 1\r\n"), "{req}");
    // "lab:p@ss"
    assert!(
        req.contains(&format!("Authorization: Basic {}\r\n", base64(b"lab:p@ss"))),
        "{req}"
    );
    assert!(req.ends_with("\r\n\r\n"));
    let auth = BasicAuth {
        user: "u".into(),
        pass: "v".into(),
    };
    let req = String::from_utf8(get(&t, Some(&auth), "ua")).unwrap();
    assert!(req.contains(&format!("Basic {}\r\n", base64(b"u:v"))));
    assert_eq!(format!("{auth:?}"), "BasicAuth(u:***)");
    let plain = Target::parse("http://h/").unwrap();
    assert!(!String::from_utf8(get(&plain, None, "ua"))
        .unwrap()
        .contains("Authorization"));
}

// ---------------------------------------------------------------------------
// Response reader
// ---------------------------------------------------------------------------

fn read_all(bytes: &[u8], chunk: usize, limits: Limits) -> Result<Response, ResponseError> {
    let mut r = ResponseReader::new(limits);
    for piece in bytes.chunks(chunk.max(1)) {
        if r.push(piece)? {
            return Ok(r.take().expect("done"));
        }
    }
    r.eof()?;
    Ok(r.take().expect("done after eof"))
}

const CHUNKED: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n\
4;ext=1\r\n{\"or\r\n6\r\nder\":[\r\n2\r\n]}\r\n0\r\nX-Trailer: 1\r\n\r\n";

#[test]
fn reader_handles_every_framing_split_at_every_byte() {
    let cases: [(&[u8], u16, &[u8]); 5] = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOKtrailing junk", 200, b"OK"),
        (CHUNKED, 200, b"{\"order\":[]}"),
        (b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nuntil close", 200, b"until close"),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 204, b""),
        (b"HTTP/1.1 307 Temporary Redirect\r\nLocation: https://x/y\r\nContent-Length: 0\r\n\r\n", 307, b""),
    ];
    for (bytes, status, body) in cases {
        for chunk in 1..=bytes.len() {
            let r = read_all(bytes, chunk, Limits::default()).unwrap();
            assert_eq!(r.status, status);
            assert_eq!(r.body, body, "chunk {chunk}");
        }
    }
    let r = read_all(cases[4].0, 1000, Limits::default()).unwrap();
    assert_eq!(r.location(), Some("https://x/y"));
    assert_eq!(r.header("LOCATION"), Some(&b"https://x/y"[..]));
}

#[test]
fn reader_refuses_what_breaks_the_framing_or_the_limits() {
    let l = Limits::default();
    let cases: Vec<(Vec<u8>, ResponseError)> = vec![
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab".to_vec(),
            ResponseError::Truncated,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n".to_vec(),
            ResponseError::BadContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n".to_vec(),
            ResponseError::BadContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
            ResponseError::BadContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 9999999\r\n\r\n".to_vec(),
            ResponseError::BodyTooLarge,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(),
            ResponseError::UnsupportedTransferEncoding,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n".to_vec(),
            ResponseError::ConflictingFraming,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            ResponseError::BadChunk,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX".to_vec(),
            ResponseError::BadChunk,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n".to_vec(),
            ResponseError::BodyTooLarge,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n".to_vec(),
            ResponseError::Truncated,
        ),
        (
            b"HTTP/9.9 200 OK\r\n\r\n".to_vec(),
            ResponseError::Malformed("version"),
        ),
        (
            b"garbage\r\n\r\n".to_vec(),
            ResponseError::Malformed("version"),
        ),
        // Found by the http_response fuzz target: httparse takes any
        // three digits.
        (
            b"HTTP/1.1 050 Continue\r\n\r\n".to_vec(),
            ResponseError::Malformed("status"),
        ),
    ];
    for (bytes, want) in cases {
        for chunk in [1, 3, bytes.len()] {
            assert_eq!(
                read_all(&bytes, chunk, l),
                Err(want),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
    // Head limit, headers limit, chunk line, close-delimited body limit.
    let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 20_000));
    assert_eq!(read_all(&long, 512, l), Err(ResponseError::HeadTooLarge));
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..100 {
        many.extend(format!("H{i}: v\r\n").bytes());
    }
    many.extend(b"\r\n");
    assert_eq!(read_all(&many, 4096, l), Err(ResponseError::TooManyHeaders));
    let mut ext = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
    ext.extend(std::iter::repeat_n(b'e', MAX_CHUNK_LINE + 10));
    assert_eq!(read_all(&ext, 100, l), Err(ResponseError::BadChunk));
    let small = Limits { max_body: 4, ..l };
    assert_eq!(
        read_all(b"HTTP/1.1 200 OK\r\n\r\n12345", 2, small),
        Err(ResponseError::BodyTooLarge)
    );
    let mut interim = Vec::new();
    for _ in 0..10 {
        interim.extend(b"HTTP/1.1 102 Processing\r\n\r\n");
    }
    assert_eq!(read_all(&interim, 7, l), Err(ResponseError::TooManyInterim));
    // After an error, more bytes change nothing.
    let mut r = ResponseReader::new(l);
    assert!(r.push(b"garbage\r\n\r\n").is_err());
    assert!(r
        .push(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .is_err());
    assert!(r.take().is_none());
}

/// Random and mutated responses never panic, and whatever is held stays
/// within the limits.
#[test]
fn reader_survives_random_and_mutated_bytes() {
    let mut rng = Jitter::new(20);
    let limits = Limits {
        max_head: 512,
        max_headers: 8,
        max_body: 1024,
    };
    let seeds: [&[u8]; 2] = [
        CHUNKED,
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
    ];
    for round in 0..20_000 {
        let mut bytes: Vec<u8> = if round % 2 == 0 {
            let mut b = seeds[rng.below(2)].to_vec();
            for _ in 0..=rng.below(4) {
                let i = rng.below(b.len());
                b[i] = rng.next_u64() as u8;
            }
            b
        } else {
            (0..rng.below(600)).map(|_| rng.next_u64() as u8).collect()
        };
        if round % 7 == 0 {
            bytes.truncate(rng.below(bytes.len() + 1));
        }
        if let Ok(r) = read_all(&bytes, 1 + rng.below(64), limits) {
            assert!(r.body.len() <= limits.max_body);
            assert!(r.headers.len() <= limits.max_headers);
        }
    }
}

// ---------------------------------------------------------------------------
// TLS configuration
// ---------------------------------------------------------------------------

#[test]
fn tls_roots_need_a_certificate() {
    assert!(matches!(
        client_config(&Roots::default()),
        Err(TlsError::Config(_))
    ));
    let garbage = Roots {
        webpki: false,
        pem: vec![b"not pem".to_vec()],
    };
    assert!(matches!(client_config(&garbage), Err(TlsError::Config(_))));
    assert!(client_config(&Roots {
        webpki: true,
        pem: vec![]
    })
    .is_ok());
    assert!(client_config(&Roots {
        webpki: false,
        pem: vec![CA_PEM.to_vec()]
    })
    .is_ok());
}

// ---------------------------------------------------------------------------
// Whole fetches: smoltcp client <-> smoltcp test server
// ---------------------------------------------------------------------------

/// What the test server does with a connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Answers the request with the canned response and closes.
    Answer,
    /// Accepts the connection, never answers.
    Mute,
    /// Drops every packet (no SYN-ACK).
    BlackHole,
}

struct TestServer {
    iface: Interface,
    dev: QueueDevice,
    sockets: SocketSet<'static>,
    handle: SocketHandle,
    tls: Option<rustls::ServerConnection>,
    behaviour: Behaviour,
    response: Vec<u8>,
    /// Plaintext of the request received.
    request: Vec<u8>,
    answered: bool,
    base: Instant,
}

fn server_tls() -> rustls::ServerConnection {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(SERVER_PEM)
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    rustls::ServerConnection::new(Arc::new(config)).unwrap()
}

impl TestServer {
    fn new(
        port: Option<u16>,
        tls: bool,
        behaviour: Behaviour,
        response: &[u8],
        base: Instant,
    ) -> Self {
        let mut dev = QueueDevice::default();
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = 7;
        let mut iface = Interface::new(config, &mut dev, SmolInstant::ZERO);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::Ipv6(SERVER), 64)).unwrap();
        });
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 65536]),
            tcp::SocketBuffer::new(vec![0; 65536]),
        );
        socket.set_timeout(Some(smol_duration(Duration::from_secs(120))));
        if let Some(port) = port {
            socket.listen(port).unwrap();
        }
        let mut sockets = SocketSet::new(Vec::new());
        let handle = sockets.add(socket);
        TestServer {
            iface,
            dev,
            sockets,
            handle,
            tls: tls.then(server_tls),
            behaviour,
            response: response.to_vec(),
            request: Vec::new(),
            answered: false,
            base,
        }
    }

    fn step(&mut self, now: Instant, inbound: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        if self.behaviour == Behaviour::BlackHole {
            return Vec::new();
        }
        let ts = SmolInstant::from_micros(now.duration_since(self.base).as_micros() as i64);
        self.dev.rx.extend(inbound);
        for _ in 0..3 {
            self.iface.poll(ts, &mut self.dev, &mut self.sockets);
            self.serve();
        }
        self.iface.poll(ts, &mut self.dev, &mut self.sockets);
        std::mem::take(&mut self.dev.tx)
    }

    fn serve(&mut self) {
        let socket = self.sockets.get_mut::<tcp::Socket>(self.handle);
        let mut wire = Vec::new();
        while socket.can_recv() {
            socket
                .recv(|b| {
                    wire.extend_from_slice(b);
                    (b.len(), ())
                })
                .unwrap();
        }
        match &mut self.tls {
            Some(conn) => {
                let mut rd = &wire[..];
                while !rd.is_empty() {
                    conn.read_tls(&mut rd).unwrap();
                    conn.process_new_packets().unwrap();
                }
                let mut buf = [0u8; 4096];
                while let Ok(n) = std::io::Read::read(&mut conn.reader(), &mut buf) {
                    if n == 0 {
                        break;
                    }
                    self.request.extend_from_slice(&buf[..n]);
                }
            }
            None => self.request.extend_from_slice(&wire),
        }
        let complete = self.request.windows(4).any(|w| w == b"\r\n\r\n");
        if complete && !self.answered && self.behaviour == Behaviour::Answer {
            self.answered = true;
            match &mut self.tls {
                Some(conn) => {
                    std::io::Write::write_all(&mut conn.writer(), &self.response).unwrap();
                    conn.send_close_notify();
                }
                None => wire_out(socket, &self.response),
            }
        }
        if let Some(conn) = &mut self.tls {
            let mut out = Vec::new();
            while conn.wants_write() {
                conn.write_tls(&mut out).unwrap();
            }
            wire_out(socket, &out);
        }
        if self.answered {
            socket.close();
        }
    }
}

fn wire_out(socket: &mut tcp::Socket, bytes: &[u8]) {
    if !bytes.is_empty() {
        assert_eq!(socket.send_slice(bytes).unwrap(), bytes.len());
    }
}

/// Runs a fetch against the server until it is over; returns its outcome
/// and how long it took on the fake clock.
fn run(
    fetch: &mut Fetch,
    server: &mut TestServer,
    start: Instant,
) -> (Result<Response, FetchError>, Duration) {
    let mut now = start;
    for _ in 0..100_000 {
        let mut out = Vec::new();
        let next = fetch.poll(now, &mut out);
        let back = server.step(now, out);
        let moved = !back.is_empty();
        for p in back {
            fetch.push_ip(&p);
        }
        if fetch.is_finished() {
            return (fetch.take_outcome().expect("outcome"), now - start);
        }
        if !moved {
            let next = next.expect("a timer while running");
            now = next.max(now + Duration::from_millis(1));
        }
    }
    panic!("fetch did not finish");
}

fn fetch_to(
    url: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
    port: Option<u16>,
    behaviour: Behaviour,
    response: &[u8],
) -> (Result<Response, FetchError>, Duration, TestServer) {
    let start = Instant::now();
    let target = Target::parse(url).unwrap();
    let mut server = TestServer::new(port, tls.is_some(), behaviour, response, start);
    let opts = RequestOptions {
        tls,
        ..RequestOptions::default()
    };
    let cfg = FetchConfig::new(target, IpAddr::V6(SERVER), IpAddr::V6(CLIENT), opts);
    let mut fetch = Fetch::new(start, cfg, 0x1234_5678_9abc).unwrap();
    let (result, took) = run(&mut fetch, &mut server, start);
    (result, took, server)
}

fn lab_ca() -> Arc<rustls::ClientConfig> {
    client_config(&Roots {
        webpki: false,
        pem: vec![CA_PEM.to_vec()],
    })
    .unwrap()
}

const OK_REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK";

#[test]
fn plain_http_fetch_sends_the_credentials_and_reads_the_reply() {
    let (r, took, server) = fetch_to(
        "http://[2001:db8:ee::80]:8082/update?user=lab&pass=secret",
        None,
        Some(8082),
        Behaviour::Answer,
        OK_REPLY,
    );
    let r = r.unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"OK"[..]));
    assert!(took < Duration::from_secs(1), "{took:?}");
    let req = String::from_utf8(server.request).unwrap();
    assert!(
        req.starts_with(
            "GET /update?user=lab&pass=secret HTTP/1.1\r\nHost: [2001:db8:ee::80]:8082\r\n"
        ),
        "{req}"
    );
}

#[test]
fn chunked_reply_and_redirect_come_back_to_the_caller() {
    let (r, _, _) = fetch_to(
        "http://[2001:db8:ee::80]/config",
        None,
        Some(80),
        Behaviour::Answer,
        CHUNKED,
    );
    assert_eq!(r.unwrap().body, b"{\"order\":[]}");
    let redirect =
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /next?x=1\r\nContent-Length: 0\r\n\r\n";
    let (r, _, _) = fetch_to(
        "http://[2001:db8:ee::80]/config",
        None,
        Some(80),
        Behaviour::Answer,
        redirect,
    );
    let r = r.unwrap();
    assert_eq!(r.status, 307);
    let next = Target::parse("http://[2001:db8:ee::80]/config")
        .unwrap()
        .join(r.location().unwrap())
        .unwrap();
    assert_eq!(next.expose(), "http://[2001:db8:ee::80]/next?x=1");
}

#[test]
fn https_fetch_verifies_the_server_against_the_ca_file() {
    let body = br#"{"order":["dslite"],"dslite":{"aftr":"2001:db8:aa::1"}}"#;
    let reply = [
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes(),
        body.to_vec(),
    ]
    .concat();
    for url in [
        "https://[2001:db8:ee::80]/config",
        "https://prov.lab.example/config",
    ] {
        let (r, _, server) = fetch_to(url, Some(lab_ca()), Some(443), Behaviour::Answer, &reply);
        assert_eq!(r.unwrap().body, body, "{url}");
        assert!(server.request.starts_with(b"GET /config HTTP/1.1\r\n"));
    }
}

#[test]
fn https_refuses_an_unknown_issuer_or_another_name_unless_told_not_to_check() {
    let webpki_only = client_config(&Roots {
        webpki: true,
        pem: vec![],
    })
    .unwrap();
    let (r, _, server) = fetch_to(
        "https://prov.lab.example/config",
        Some(webpki_only),
        Some(443),
        Behaviour::Answer,
        OK_REPLY,
    );
    let e = r.unwrap_err();
    assert_eq!(e.name(), "tls-certificate", "{e}");
    assert!(
        server.request.is_empty(),
        "the request went out before the server was verified"
    );
    let (r, _, _) = fetch_to(
        "https://other.lab.example/config",
        Some(lab_ca()),
        Some(443),
        Behaviour::Answer,
        OK_REPLY,
    );
    assert_eq!(r.unwrap_err().name(), "tls-certificate");
    // t=a: no certificate check, same server.
    let (r, _, _) = fetch_to(
        "https://other.lab.example/config",
        Some(insecure_config()),
        Some(443),
        Behaviour::Answer,
        OK_REPLY,
    );
    assert_eq!(r.unwrap().body, b"OK");
}

#[test]
fn fetch_timeouts_and_refusals_are_errors_at_the_right_time() {
    let (r, took, _) = fetch_to(
        "http://[2001:db8:ee::80]/",
        None,
        Some(80),
        Behaviour::BlackHole,
        OK_REPLY,
    );
    assert_eq!(r.unwrap_err(), FetchError::ConnectTimeout);
    assert!(
        (Duration::from_secs(10)..Duration::from_millis(10_100)).contains(&took),
        "{took:?}"
    );
    let (r, took, _) = fetch_to(
        "http://[2001:db8:ee::80]/",
        None,
        Some(80),
        Behaviour::Mute,
        OK_REPLY,
    );
    assert_eq!(r.unwrap_err(), FetchError::Timeout);
    assert!(
        (Duration::from_secs(30)..Duration::from_millis(30_100)).contains(&took),
        "{took:?}"
    );
    // Nobody listens on the port: smoltcp answers RST.
    let (r, took, _) = fetch_to(
        "http://[2001:db8:ee::80]/",
        None,
        None,
        Behaviour::Answer,
        OK_REPLY,
    );
    assert_eq!(r.unwrap_err(), FetchError::Refused);
    assert!(took < Duration::from_secs(1));
    // A reply cut short by the server's FIN.
    let (r, _, _) = fetch_to(
        "http://[2001:db8:ee::80]/",
        None,
        Some(80),
        Behaviour::Answer,
        b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort",
    );
    assert_eq!(
        r.unwrap_err(),
        FetchError::Response(ResponseError::Truncated)
    );
}

#[test]
fn fetch_refuses_packets_of_other_connections_and_bad_setups() {
    let start = Instant::now();
    let target = Target::parse("http://[2001:db8:ee::80]/").unwrap();
    let cfg = FetchConfig::new(
        target.clone(),
        IpAddr::V6(SERVER),
        IpAddr::V6(CLIENT),
        RequestOptions::default(),
    );
    let mut fetch = Fetch::new(start, cfg, 1).unwrap();
    fetch.push_ip(&[0x60; 60]);
    fetch.push_ip(b"");
    assert_eq!(fetch.counters().drop_not_ours, 2);
    let v4 = FetchConfig::new(
        target,
        "192.0.2.1".parse().unwrap(),
        IpAddr::V6(CLIENT),
        RequestOptions::default(),
    );
    assert!(matches!(
        Fetch::new(start, v4, 1),
        Err(FetchError::Config(_))
    ));
    let https = FetchConfig::new(
        Target::parse("https://[2001:db8:ee::80]/").unwrap(),
        IpAddr::V6(SERVER),
        IpAddr::V6(CLIENT),
        RequestOptions::default(),
    );
    assert!(matches!(
        Fetch::new(start, https, 1),
        Err(FetchError::Config(_))
    ));
}

/// The exchange fed hostile bytes as if from a TLS server: never a panic.
#[test]
fn tls_exchange_survives_random_bytes() {
    let mut rng = Jitter::new(7);
    let target = Target::parse("https://prov.lab.example/config").unwrap();
    let opts = RequestOptions {
        tls: Some(lab_ca()),
        ..RequestOptions::default()
    };
    for _ in 0..2000 {
        let mut ex = Exchange::new(&target, &opts).unwrap();
        assert!(!ex.output().is_empty(), "ClientHello");
        for _ in 0..=rng.below(3) {
            let mut bytes: Vec<u8> = (0..rng.below(300)).map(|_| rng.next_u64() as u8).collect();
            if rng.below(2) == 0 && bytes.len() > 5 {
                // A plausible record header, so rustls reads further.
                bytes[..3].copy_from_slice(&[22, 3, 3]);
            }
            ex.on_bytes(&bytes);
        }
        ex.on_eof();
        assert!(matches!(ex.result(), Some(Err(_))));
    }
}

/// An HB46PP round end to end: the client's fetch carried by `Fetch` over
/// smoltcp and TLS (verified with the CA file, as `t=b` asks) to the test
/// server, whose reply decides DS-Lite.
#[test]
fn hb46pp_round_over_smoltcp_and_tls() {
    use crate::hb46pp::{self, Action, Decision, TxtOutcome};
    let start = Instant::now();
    let mut cfg = hb46pp::RequestConfig::new("acde48-ipoe_test");
    cfg.credentials = Some(hb46pp::Credentials {
        user: "lab".into(),
        pass: "lab_secret".into(),
        server: Some("prov.lab.example".into()),
    });
    let mut client = hb46pp::Client::new(hb46pp::Settings::new(cfg), 9).unwrap();
    client.set_address(start, Some(CLIENT));
    let mut actions = Vec::new();
    client.poll(start, &mut actions);
    let Some(Action::QueryTxt { id }) = actions.pop() else {
        panic!("{actions:?}")
    };
    let record = b"v=v6mig-1 url=https://prov.lab.example/config t=b".to_vec();
    client.txt_result(start, id, TxtOutcome::Records(vec![record]));
    client.poll(start, &mut actions);
    let Some(Action::Fetch {
        id,
        target,
        verify,
        source,
    }) = actions.pop()
    else {
        panic!("{actions:?}")
    };
    assert!(verify);
    let body = br#"{"enabler_name":"lab","order":["dslite"],"dslite":{"aftr":"2001:db8:aa::1"}}"#;
    let reply = [
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes(),
        body.to_vec(),
    ]
    .concat();
    let mut server = TestServer::new(Some(443), true, Behaviour::Answer, &reply, start);
    let opts = RequestOptions {
        tls: Some(lab_ca()),
        ..RequestOptions::default()
    };
    // The name resolves (by the integrator's resolver) to the server.
    let fetch_cfg = FetchConfig::new(target, IpAddr::V6(SERVER), IpAddr::V6(source), opts);
    let mut fetch = Fetch::new(start, fetch_cfg, 99).unwrap();
    let (result, took) = run(&mut fetch, &mut server, start);
    client.http_result(start + took, id, &result);
    let request = String::from_utf8(server.request).unwrap();
    assert!(
        request.starts_with("GET /config?vendorid=acde48-ipoe_test&product=ipoe-router&version="),
        "{request}"
    );
    assert!(request.contains("&capability=dslite,map_e,ipip&user=lab&pass=lab_secret HTTP/1.1\r\n"));
    assert_eq!(
        client.decision(),
        Some(&Decision::DsLite(hb46pp::DsLite {
            aftr: hb46pp::Aftr::Addr("2001:db8:aa::1".parse().unwrap())
        }))
    );
}
