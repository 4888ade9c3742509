//! One `GET` over a byte stream, TLS or not, with no transport: the
//! request bytes come out of [`Exchange::output`], the stream's bytes go
//! into [`Exchange::on_bytes`], and the end of the stream into
//! [`Exchange::on_eof`]. [`super::fetch::Fetch`] carries it over smoltcp;
//! the tests and the fuzz target feed it directly.

use std::sync::Arc;

use rustls::ClientConfig;

use super::request::{self, BasicAuth};
use super::response::{Limits, Response, ResponseError, ResponseReader};
use super::target::Target;
use super::tls::{self, TlsError, TlsSession};

/// Why a fetch failed. [`FetchError::name`] is its counter's name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The setup cannot work: `https` without a TLS configuration, a
    /// source and destination of different families, a bad server name.
    #[error("cannot fetch: {0}")]
    Config(String),
    /// The connection was refused or reset before it was established.
    #[error("connection refused")]
    Refused,
    #[error("no connection within the connect timeout")]
    ConnectTimeout,
    #[error("no complete response within the timeout")]
    Timeout,
    /// The connection was reset while the response was being read.
    #[error("connection reset")]
    Reset,
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error("{0}")]
    Response(#[from] ResponseError),
}

impl FetchError {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Refused => "refused",
            Self::ConnectTimeout => "connect-timeout",
            Self::Timeout => "timeout",
            Self::Reset => "reset",
            Self::Tls(TlsError::Certificate(_)) => "tls-certificate",
            Self::Tls(_) => "tls",
            Self::Response(e) => e.name(),
        }
    }
}

/// What the request needs besides its URL.
#[derive(Clone, Debug)]
pub struct RequestOptions {
    /// Basic auth; without it the URL's userinfo is used, if any.
    pub auth: Option<BasicAuth>,
    pub user_agent: String,
    pub limits: Limits,
    /// Required for `https` URLs.
    pub tls: Option<Arc<ClientConfig>>,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            auth: None,
            user_agent: concat!("ipoed/", env!("CARGO_PKG_VERSION")).to_string(),
            limits: Limits::default(),
            tls: None,
        }
    }
}

/// The GET exchange; see the module documentation.
#[derive(Debug)]
pub struct Exchange {
    tls: Option<TlsSession>,
    reader: ResponseReader,
    /// Bytes for the transport, from `out_off`.
    out: Vec<u8>,
    out_off: usize,
    result: Option<Result<Response, FetchError>>,
}

impl Exchange {
    pub fn new(target: &Target, opts: &RequestOptions) -> Result<Self, FetchError> {
        let req = request::get(target, opts.auth.as_ref(), &opts.user_agent);
        let mut ex = Exchange {
            tls: None,
            reader: ResponseReader::new(opts.limits),
            out: Vec::new(),
            out_off: 0,
            result: None,
        };
        if target.is_https() {
            let config = opts
                .tls
                .clone()
                .ok_or_else(|| FetchError::Config("https without a TLS configuration".into()))?;
            let name = tls::server_name(&target.host())?;
            let mut session = TlsSession::new(config, name)?;
            session.write(&req)?;
            session.pull(&mut ex.out);
            ex.tls = Some(session);
        } else {
            ex.out = req;
        }
        Ok(ex)
    }

    /// Bytes to send now.
    pub fn output(&self) -> &[u8] {
        &self.out[self.out_off..]
    }

    /// The transport took `n` bytes of [`Exchange::output`].
    pub fn consume_output(&mut self, n: usize) {
        self.out_off = (self.out_off + n).min(self.out.len());
        if self.out_off == self.out.len() {
            self.out.clear();
            self.out_off = 0;
        }
    }

    /// Bytes received from the stream.
    pub fn on_bytes(&mut self, data: &[u8]) {
        if self.result.is_some() {
            return;
        }
        match &mut self.tls {
            Some(session) => {
                let mut plain = Vec::new();
                let read = session.read(data, &mut plain);
                session.pull(&mut self.out);
                match read {
                    Ok(closed) => {
                        self.feed(&plain);
                        if closed {
                            self.end_of_stream();
                        }
                    }
                    Err(e) => self.fail(e.into()),
                }
            }
            None => self.feed(data),
        }
    }

    /// The stream ended (the peer's FIN).
    pub fn on_eof(&mut self) {
        if self.result.is_some() {
            return;
        }
        if let Some(session) = &mut self.tls {
            let mut plain = Vec::new();
            match session.eof(&mut plain) {
                Ok(_) => self.feed(&plain),
                Err(e) => return self.fail(e.into()),
            }
        }
        self.end_of_stream();
    }

    fn end_of_stream(&mut self) {
        if self.result.is_some() {
            return;
        }
        match self.reader.eof() {
            Ok(()) => self.complete(),
            Err(e) => self.fail(e.into()),
        }
    }

    fn feed(&mut self, data: &[u8]) {
        if self.result.is_some() || data.is_empty() {
            return;
        }
        match self.reader.push(data) {
            Ok(true) => self.complete(),
            Ok(false) => {}
            Err(e) => self.fail(e.into()),
        }
    }

    fn complete(&mut self) {
        if let Some(response) = self.reader.take() {
            self.result = Some(Ok(response));
        }
    }

    /// Ends the exchange with `e` unless it has ended already.
    pub fn fail(&mut self, e: FetchError) {
        if self.result.is_none() {
            self.result = Some(Err(e));
        }
    }

    pub fn is_done(&self) -> bool {
        self.result.is_some()
    }

    /// Whether the TLS handshake is still running (false without TLS).
    pub fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(TlsSession::is_handshaking)
    }

    pub fn result(&self) -> Option<&Result<Response, FetchError>> {
        self.result.as_ref()
    }

    pub fn take_result(&mut self) -> Option<Result<Response, FetchError>> {
        self.result.take()
    }
}
