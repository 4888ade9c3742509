//! The response reader: bytes in as they arrive, a [`Response`] out. The
//! status line and headers are parsed by `httparse`; the body is framed by
//! `Content-Length`, `Transfer-Encoding: chunked` (chunk sizes by
//! `httparse::parse_chunk_size`) or the end of the connection. Every size
//! is bounded by [`Limits`]: the reader never holds more than the head
//! limit plus the body limit, whatever the peer sends.

use std::str;

/// Bounds of one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Status line and headers (and chunked trailers), in bytes.
    pub max_head: usize,
    /// Header fields.
    pub max_headers: usize,
    /// The decoded body, in bytes.
    pub max_body: usize,
}

impl Default for Limits {
    /// 16 KiB of head, 64 headers, 256 KiB of body: an HB46PP reply with
    /// 256 MAP rules is about 30 KiB.
    fn default() -> Self {
        Limits {
            max_head: 16 * 1024,
            max_headers: 64,
            max_body: 256 * 1024,
        }
    }
}

/// Most `1xx` interim responses skipped before the final one.
pub const MAX_INTERIM: usize = 8;
/// Longest chunk-size line (size, extensions, CRLF).
pub const MAX_CHUNK_LINE: usize = 1024;
/// Header fields (and the status line's reason) kept beyond this length
/// are refused: nothing the client reads needs more.
pub const MAX_FIELD_VALUE: usize = 8 * 1024;

/// A complete response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Names lower-cased, values as received.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The `Location` of a redirect (3xx with a UTF-8 Location).
    pub fn location(&self) -> Option<&str> {
        if !(300..400).contains(&self.status) {
            return None;
        }
        self.header("location")
            .and_then(|v| str::from_utf8(v).ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

/// Why a response was refused. Each variant is a counter of the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// httparse refused the status line or a header.
    #[error("malformed response head: {0}")]
    Malformed(&'static str),
    #[error("response head longer than the limit")]
    HeadTooLarge,
    #[error("more header fields than the limit")]
    TooManyHeaders,
    #[error("header field value longer than the limit")]
    FieldTooLong,
    #[error("more than {MAX_INTERIM} interim (1xx) responses")]
    TooManyInterim,
    #[error("invalid or conflicting Content-Length")]
    BadContentLength,
    #[error("Transfer-Encoding other than chunked")]
    UnsupportedTransferEncoding,
    #[error("both Transfer-Encoding and Content-Length")]
    ConflictingFraming,
    #[error("body longer than the limit")]
    BodyTooLarge,
    #[error("malformed chunked body")]
    BadChunk,
    #[error("connection closed before the response was complete")]
    Truncated,
}

impl ResponseError {
    /// A kebab-case name, for counters and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::HeadTooLarge => "head-too-large",
            Self::TooManyHeaders => "too-many-headers",
            Self::FieldTooLong => "field-too-long",
            Self::TooManyInterim => "too-many-interim",
            Self::BadContentLength => "bad-content-length",
            Self::UnsupportedTransferEncoding => "unsupported-transfer-encoding",
            Self::ConflictingFraming => "conflicting-framing",
            Self::BodyTooLarge => "body-too-large",
            Self::BadChunk => "bad-chunk",
            Self::Truncated => "truncated",
        }
    }
}

#[derive(Debug)]
enum Body {
    Length(usize),
    /// Waiting for a chunk-size line.
    ChunkSize,
    /// In a chunk: bytes of data left, then its CRLF.
    ChunkData(usize),
    ChunkCrlf,
    /// After the last chunk: trailer section up to an empty line.
    Trailers,
    UntilClose,
}

#[derive(Debug)]
enum State {
    Head,
    Body(Body),
    Done,
    Failed(ResponseError),
}

/// Reads one response; see the module documentation.
#[derive(Debug)]
pub struct ResponseReader {
    limits: Limits,
    state: State,
    /// Bytes received and not consumed yet.
    buf: Vec<u8>,
    interim: usize,
    /// Trailer bytes seen so far.
    trailer_len: usize,
    response: Option<Response>,
}

impl ResponseReader {
    pub fn new(limits: Limits) -> Self {
        ResponseReader {
            limits,
            state: State::Head,
            buf: Vec::new(),
            interim: 0,
            trailer_len: 0,
            response: None,
        }
    }

    /// Feeds received bytes. `Ok(true)` once the response is complete
    /// (bytes past its end are ignored); `Ok(false)` while more are needed.
    pub fn push(&mut self, data: &[u8]) -> Result<bool, ResponseError> {
        match self.state {
            State::Done => return Ok(true),
            State::Failed(e) => return Err(e),
            _ => {}
        }
        self.buf.extend_from_slice(data);
        let result = self.advance();
        if let Err(e) = result {
            self.state = State::Failed(e);
            self.buf = Vec::new();
        }
        result
    }

    /// The peer closed the connection: completes a body that runs to the
    /// close, anything else unfinished is [`ResponseError::Truncated`].
    pub fn eof(&mut self) -> Result<(), ResponseError> {
        match self.state {
            State::Done => Ok(()),
            State::Failed(e) => Err(e),
            State::Body(Body::UntilClose) => {
                self.state = State::Done;
                Ok(())
            }
            _ => {
                self.state = State::Failed(ResponseError::Truncated);
                Err(ResponseError::Truncated)
            }
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The response, once complete.
    pub fn take(&mut self) -> Option<Response> {
        if self.is_done() {
            self.response.take()
        } else {
            None
        }
    }

    fn advance(&mut self) -> Result<bool, ResponseError> {
        loop {
            match &mut self.state {
                State::Head => {
                    if !self.parse_head()? {
                        return Ok(false);
                    }
                }
                State::Body(_) => return self.read_body(),
                State::Done => return Ok(true),
                State::Failed(e) => return Err(*e),
            }
        }
    }

    /// Parses the head if it is all there; sets the body state.
    fn parse_head(&mut self) -> Result<bool, ResponseError> {
        let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut parsed = httparse::Response::new(&mut headers);
        let consumed = match parsed.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if self.buf.len() > self.limits.max_head {
                    return Err(ResponseError::HeadTooLarge);
                }
                return Ok(false);
            }
            Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::TooManyHeaders),
            Err(e) => return Err(ResponseError::Malformed(error_name(e))),
        };
        if consumed > self.limits.max_head {
            return Err(ResponseError::HeadTooLarge);
        }
        let status = parsed.code.unwrap_or(0);
        // httparse takes any three digits; RFC 9110 15 classes start at 1.
        if status < 100 {
            return Err(ResponseError::Malformed("status"));
        }
        let reason = parsed.reason.unwrap_or("");
        if reason.len() > MAX_FIELD_VALUE {
            return Err(ResponseError::FieldTooLong);
        }
        let mut list = Vec::with_capacity(parsed.headers.len());
        for h in parsed.headers.iter() {
            if h.value.len() > MAX_FIELD_VALUE {
                return Err(ResponseError::FieldTooLong);
            }
            list.push((h.name.to_ascii_lowercase(), h.value.to_vec()));
        }
        let reason = reason.to_string();
        self.buf.drain(..consumed);
        if (100..200).contains(&status) {
            // Interim: the final response follows.
            self.interim += 1;
            if self.interim > MAX_INTERIM {
                return Err(ResponseError::TooManyInterim);
            }
            return Ok(true);
        }
        let body = framing(status, &list, self.limits.max_body)?;
        self.response = Some(Response {
            status,
            reason,
            headers: list,
            body: Vec::new(),
        });
        self.state = match body {
            Body::Length(0) => State::Done,
            b => State::Body(b),
        };
        Ok(true)
    }

    fn read_body(&mut self) -> Result<bool, ResponseError> {
        let max_body = self.limits.max_body;
        let max_head = self.limits.max_head;
        let Some(response) = self.response.as_mut() else {
            return Err(ResponseError::Truncated);
        };
        let body = &mut response.body;
        let mut pos = 0;
        let result = loop {
            let State::Body(state) = &mut self.state else {
                break Ok(true);
            };
            let rest = &self.buf[pos..];
            match state {
                Body::Length(left) => {
                    let n = rest.len().min(*left);
                    body.extend_from_slice(&rest[..n]);
                    pos += n;
                    *left -= n;
                    if *left == 0 {
                        self.state = State::Done;
                    } else {
                        break Ok(false);
                    }
                }
                Body::UntilClose => {
                    if body.len() + rest.len() > max_body {
                        break Err(ResponseError::BodyTooLarge);
                    }
                    body.extend_from_slice(rest);
                    pos += rest.len();
                    break Ok(false);
                }
                Body::ChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((n, size))) => {
                        pos += n;
                        let size = usize::try_from(size).unwrap_or(usize::MAX);
                        if size > max_body.saturating_sub(body.len()) {
                            break Err(ResponseError::BodyTooLarge);
                        }
                        *state = if size == 0 {
                            Body::Trailers
                        } else {
                            Body::ChunkData(size)
                        };
                    }
                    Ok(httparse::Status::Partial) => {
                        if rest.len() > MAX_CHUNK_LINE {
                            break Err(ResponseError::BadChunk);
                        }
                        break Ok(false);
                    }
                    Err(_) => break Err(ResponseError::BadChunk),
                },
                Body::ChunkData(left) => {
                    let n = rest.len().min(*left);
                    body.extend_from_slice(&rest[..n]);
                    pos += n;
                    *left -= n;
                    if *left == 0 {
                        *state = Body::ChunkCrlf;
                    } else {
                        break Ok(false);
                    }
                }
                Body::ChunkCrlf => {
                    if rest.len() < 2 {
                        break Ok(false);
                    }
                    if &rest[..2] != b"\r\n" {
                        break Err(ResponseError::BadChunk);
                    }
                    pos += 2;
                    *state = Body::ChunkSize;
                }
                Body::Trailers => {
                    // Trailer fields are read and dropped, line by line,
                    // up to the empty line that ends the message.
                    let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                        if self.trailer_len + rest.len() > max_head {
                            break Err(ResponseError::HeadTooLarge);
                        }
                        break Ok(false);
                    };
                    pos += eol + 2;
                    self.trailer_len += eol + 2;
                    if self.trailer_len > max_head {
                        break Err(ResponseError::HeadTooLarge);
                    }
                    if eol == 0 {
                        self.state = State::Done;
                    }
                }
            }
        };
        self.buf.drain(..pos.min(self.buf.len()));
        if matches!(self.state, State::Done) {
            self.buf = Vec::new();
        }
        result
    }
}

fn error_name(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "header name",
        httparse::Error::HeaderValue => "header value",
        httparse::Error::NewLine => "new line",
        httparse::Error::Status => "status",
        httparse::Error::Token => "token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "version",
    }
}

/// How the body is delimited (RFC 9112 section 6.3, client side).
fn framing(
    status: u16,
    headers: &[(String, Vec<u8>)],
    max_body: usize,
) -> Result<Body, ResponseError> {
    if status == 204 || status == 304 {
        return Ok(Body::Length(0));
    }
    let mut chunked = false;
    let mut te = false;
    let mut length: Option<usize> = None;
    for (name, value) in headers {
        match name.as_str() {
            "transfer-encoding" => {
                te = true;
                let v = str::from_utf8(value).map_err(|_| ResponseError::BadChunk)?;
                // Only "chunked", once: a server that compresses or repeats
                // codings is not one we need to understand.
                if !v.trim().eq_ignore_ascii_case("chunked") || chunked {
                    return Err(ResponseError::UnsupportedTransferEncoding);
                }
                chunked = true;
            }
            "content-length" => {
                let v = str::from_utf8(value)
                    .ok()
                    .map(str::trim)
                    .filter(|v| {
                        !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .ok_or(ResponseError::BadContentLength)?;
                if length.is_some_and(|l| l != v) {
                    return Err(ResponseError::BadContentLength);
                }
                length = Some(v);
            }
            _ => {}
        }
    }
    if te && length.is_some() {
        return Err(ResponseError::ConflictingFraming);
    }
    if chunked {
        return Ok(Body::ChunkSize);
    }
    match length {
        Some(n) if n > max_body => Err(ResponseError::BodyTooLarge),
        Some(n) => Ok(Body::Length(n)),
        None => Ok(Body::UntilClose),
    }
}
