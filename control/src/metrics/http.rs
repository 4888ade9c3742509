//! A sans-IO HTTP/1.x server side small enough to audit: it reads one
//! request head, answers it, and the connection is closed after the
//! answer. Both listeners (kernel socket and the LAN's smoltcp stack) drive
//! it through [`Exchange`], so they parse and answer the same way.
//!
//! Only the request head is read. A body (nobody sends one to a metrics
//! endpoint) is never needed because the connection closes after the
//! response; the listeners read and discard what follows, so closing does
//! not turn into a reset that could destroy the response in flight.

/// Longest request head accepted (request line, headers, blank line),
/// counting any blank lines before the request line. Beyond: 431.
pub const MAX_HEAD: usize = 8192;
/// Most header fields accepted. Beyond: 431.
pub const MAX_HEADERS: usize = 100;
/// Content type of the exposition (Prometheus text format 0.0.4).
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The path serving the metrics.
pub const METRICS_PATH: &str = "/metrics";

const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
const INDEX_BODY: &str = "ipoed metrics exporter\nPrometheus metrics are at /metrics\n";

/// A request head that parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Case-sensitive, as sent (`GET`, `HEAD`, ...).
    pub method: String,
    /// The request target as sent.
    pub target: String,
    /// The path of the target without its query: for origin-form and
    /// absolute-form targets it starts with `/`; for `*` and authority-form
    /// it is the target itself.
    pub path: String,
    /// `x` of `HTTP/1.x`.
    pub minor_version: u8,
    /// The Host field's value, trimmed (none in an HTTP/1.0 request
    /// without one).
    pub host: Option<String>,
}

/// What the reader has after a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The head is not complete yet.
    NeedMore,
    /// A complete, well-formed head.
    Request(Request),
    /// The request cannot be served; answer with this status and close.
    Error(u16),
}

/// Collects the bytes of one request head; see [`HttpRequestReader::push`].
#[derive(Debug, Default)]
pub struct HttpRequestReader {
    buf: Vec<u8>,
    /// Where the line being scanned starts.
    line_start: usize,
    /// Whether a non-empty line (the request line) was seen; blank lines
    /// before it are skipped (RFC 9112 2.2).
    started: bool,
    /// The final result, once there is one.
    done: Option<Progress>,
}

impl HttpRequestReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes received so far (at most [`MAX_HEAD`]).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds received bytes. Once the result is final (a request or an
    /// error) every later push returns it again and ignores the bytes
    /// (a body or a pipelined request: the connection closes after the
    /// answer anyway).
    pub fn push(&mut self, data: &[u8]) -> Progress {
        if let Some(done) = &self.done {
            return done.clone();
        }
        let room = MAX_HEAD - self.buf.len();
        let take = data.len().min(room);
        let scan_from = self.buf.len();
        self.buf.extend_from_slice(&data[..take]);
        let result = self.scan(scan_from);
        if let Progress::NeedMore = result {
            if self.buf.len() >= MAX_HEAD {
                return self.finish(Progress::Error(431));
            }
        }
        if result != Progress::NeedMore {
            return self.finish(result);
        }
        Progress::NeedMore
    }

    fn finish(&mut self, result: Progress) -> Progress {
        self.done = Some(result.clone());
        self.buf = Vec::new();
        result
    }

    /// Looks for the blank line ending the head in the new bytes from
    /// `from`; rejects at once a request line that cannot be HTTP (a TLS
    /// handshake, binary junk) instead of waiting for 8 KiB or a timeout.
    fn scan(&mut self, from: usize) -> Progress {
        let mut i = from;
        while let Some(offset) = self.buf[i..].iter().position(|&b| b == b'\n') {
            let end = i + offset;
            let line = strip_cr(&self.buf[self.line_start..end]);
            if line.is_empty() {
                if self.started {
                    return parse_head(&self.buf[..self.line_start]);
                }
            } else {
                if !self.started && !plausible_request_line(line) {
                    return Progress::Error(400);
                }
                self.started = true;
            }
            self.line_start = end + 1;
            i = end + 1;
        }
        if !self.started && !plausible_request_line(&self.buf[self.line_start..]) {
            return Progress::Error(400);
        }
        Progress::NeedMore
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// tchar of RFC 9110 5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether a (possibly partial) request line starts like one: a method
/// made of tchars, then a space. A lone CR may end a partial line.
fn plausible_request_line(line: &[u8]) -> bool {
    let method_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let method = &line[..method_end];
    let method = if method_end == line.len() {
        method.strip_suffix(b"\r").unwrap_or(method)
    } else {
        method
    };
    method.iter().all(|&b| is_tchar(b))
}

/// Parses a complete head, up to the blank line that ends it (excluded).
fn parse_head(head: &[u8]) -> Progress {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(strip_cr)
        .skip_while(|line| line.is_empty());
    let Some(request_line) = lines.next() else {
        return Progress::Error(400);
    };
    let (method, target, minor_version) = match parse_request_line(request_line) {
        Ok(parts) => parts,
        Err(status) => return Progress::Error(status),
    };
    let mut hosts = 0usize;
    let mut host = None;
    let mut count = 0usize;
    // The head passed in ends with the last field's line end.
    for line in lines.take_while(|line| !line.is_empty()) {
        count += 1;
        if count > MAX_HEADERS {
            return Progress::Error(431);
        }
        // Line folding is obsolete and may be rejected (RFC 9112 5.2).
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            return Progress::Error(400);
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Progress::Error(400);
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        // No whitespace between name and colon (RFC 9112 5.1).
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Progress::Error(400);
        }
        if !value
            .iter()
            .all(|&b| b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80)
        {
            return Progress::Error(400);
        }
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            host = Some(String::from_utf8_lossy(value).trim().to_string());
        }
    }
    // RFC 9112 3.2: an HTTP/1.1 request without Host, or any request with
    // more than one, gets 400.
    if hosts > 1 || (minor_version >= 1 && hosts == 0) {
        return Progress::Error(400);
    }
    let Some(path) = target_path(&target) else {
        return Progress::Error(400);
    };
    Progress::Request(Request {
        method,
        target,
        path,
        minor_version,
        host,
    })
}

/// `method SP target SP HTTP/1.x`, each part checked; 505 for a well-formed
/// version that is not 1.x.
fn parse_request_line(line: &[u8]) -> Result<(String, String, u8), u16> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(400);
    }
    if target.is_empty() || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(400);
    }
    let minor = match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            if *major != b'1' {
                return Err(505);
            }
            minor - b'0'
        }
        _ => return Err(400),
    };
    // Both are ASCII (checked above), so these cannot fail.
    let method = String::from_utf8(method.to_vec()).map_err(|_| 400u16)?;
    let target = String::from_utf8(target.to_vec()).map_err(|_| 400u16)?;
    Ok((method, target, minor))
}

/// The path of a request target (RFC 9112 3.2): origin-form `/p?q`,
/// absolute-form `http://host/p?q`, asterisk-form `*`, authority-form
/// `host:port`. `None` for anything else.
fn target_path(target: &str) -> Option<String> {
    let without_query = |s: &str| s.split('?').next().unwrap_or("").to_string();
    if target.starts_with('/') {
        return Some(without_query(target));
    }
    if target == "*" {
        return Some(target.to_string());
    }
    let lower = target.to_ascii_lowercase();
    for scheme in ["http://", "https://"] {
        if lower.starts_with(scheme) {
            let rest = &target[scheme.len()..];
            return Some(match rest.find(['/', '?']) {
                Some(at) if rest[at..].starts_with('/') => without_query(&rest[at..]),
                _ => "/".to_string(),
            });
        }
    }
    // authority-form: host:port, no slash.
    (target.contains(':') && !target.contains('/')).then(|| target.to_string())
}

/// The reason phrase of the statuses this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        421 => "Misdirected Request",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// A complete response with `Content-Length` and `Connection: close`.
pub fn response(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    build(status, content_type, &[], body, true)
}

/// The response to a request the reader rejected (or any bare status).
pub fn error_response(status: u16) -> Vec<u8> {
    let body = format!("{} {}\n", status, reason(status));
    build(status, TEXT_CONTENT_TYPE, &[], &body, true)
}

/// A complete response with extra header fields; the body is left out
/// (HEAD) unless `with_body`.
pub fn build(
    status: u16,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &str,
    with_body: bool,
) -> Vec<u8> {
    let status = if (100..=999).contains(&status) {
        status
    } else {
        500
    };
    // Header values are ours, but a CR or LF must never split them.
    let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).collect() };
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        status,
        reason(status),
        clean(content_type),
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{}: {}\r\n", clean(name), clean(value)));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Answers a parsed request; `render` is called only for the metrics.
/// Returns the status and the bytes to send. A HEAD answer carries the
/// headers the GET answer would, without the body.
pub fn route(request: &Request, render: &mut dyn FnMut() -> String) -> (u16, Vec<u8>) {
    let with_body = request.method != "HEAD";
    match (request.method.as_str(), request.path.as_str()) {
        ("GET" | "HEAD", METRICS_PATH) => (
            200,
            build(200, METRICS_CONTENT_TYPE, &[], &render(), with_body),
        ),
        ("GET" | "HEAD", "/") => (
            200,
            build(200, TEXT_CONTENT_TYPE, &[], INDEX_BODY, with_body),
        ),
        ("GET" | "HEAD", path) => {
            let status = if path.starts_with('/') { 404 } else { 400 };
            let body = format!("{} {}\n", status, reason(status));
            (
                status,
                build(status, TEXT_CONTENT_TYPE, &[], &body, with_body),
            )
        }
        _ => (
            405,
            build(
                405,
                TEXT_CONTENT_TYPE,
                &[("Allow", "GET, HEAD")],
                "405 Method Not Allowed\n",
                true,
            ),
        ),
    }
}

/// What answers a parsed request: its status and the whole response
/// ([`route`] for the metrics, the status page's own for port 80).
pub type Handler<'a> = dyn FnMut(&Request) -> (u16, Vec<u8>) + 'a;

/// How an exchange ended, for the listeners' counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A well-formed request was answered (any status).
    Served,
    /// The request was malformed, too large or not HTTP/1.x; answered
    /// with 400, 431 or 505.
    BadRequest,
}

/// One request and its response on one connection: feed it received
/// bytes, send what [`Exchange::pending`] holds, close when
/// [`Exchange::done`].
#[derive(Debug, Default)]
pub struct Exchange {
    reader: HttpRequestReader,
    response: Option<Vec<u8>>,
    sent: usize,
}

impl Exchange {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether it still reads the request (no response yet).
    pub fn wants_input(&self) -> bool {
        self.response.is_none()
    }

    /// Feeds received bytes; returns the outcome when this completes the
    /// request (the response is then pending). Bytes after that are ignored.
    pub fn feed(&mut self, data: &[u8], render: &mut dyn FnMut() -> String) -> Option<Outcome> {
        self.feed_with(data, &mut |request| route(request, render))
    }

    /// [`Exchange::feed`] for any server: `handler` answers a parsed
    /// request with its status and the whole response.
    pub fn feed_with(&mut self, data: &[u8], handler: &mut Handler<'_>) -> Option<Outcome> {
        if self.response.is_some() {
            return None;
        }
        match self.reader.push(data) {
            Progress::NeedMore => None,
            Progress::Request(request) => {
                let (status, bytes) = handler(&request);
                self.response = Some(bytes);
                Some(if status == 400 {
                    Outcome::BadRequest
                } else {
                    Outcome::Served
                })
            }
            Progress::Error(status) => {
                self.response = Some(error_response(status));
                Some(Outcome::BadRequest)
            }
        }
    }

    /// The peer closed its side before the request was complete: a
    /// partial request gets 400; `None` (just close) when nothing came.
    pub fn eof(&mut self) -> Option<Outcome> {
        if self.response.is_some() || self.reader.buffered() == 0 {
            return None;
        }
        self.response = Some(error_response(400));
        Some(Outcome::BadRequest)
    }

    /// Response bytes not sent yet.
    pub fn pending(&self) -> &[u8] {
        match &self.response {
            Some(bytes) => bytes.get(self.sent..).unwrap_or(&[]),
            None => &[],
        }
    }

    /// `n` bytes of [`Exchange::pending`] were sent.
    pub fn advance(&mut self, n: usize) {
        let len = self.response.as_ref().map_or(0, Vec::len);
        self.sent = self.sent.saturating_add(n).min(len);
    }

    /// Whether the whole response was sent.
    pub fn done(&self) -> bool {
        self.response
            .as_ref()
            .is_some_and(|bytes| self.sent >= bytes.len())
    }
}
