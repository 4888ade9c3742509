//! A small HTTP/1.1 client for the router's own requests (HB46PP
//! provisioning, fixed-IPv4 update URLs), sans-IO like every engine here:
//!
//! * [`target`]: the URL (`url` crate), with credentials masked in its
//!   `Display`/`Debug` and in [`target::mask_url_str`] for config values.
//! * [`request`]: the `GET` writer, HTTP Basic auth.
//! * [`response`]: the bounded response reader on `httparse`
//!   (Content-Length, chunked, read-to-close).
//! * [`tls`]: rustls (ring provider) over byte slices; webpki or PEM roots,
//!   and the certificate-blind mode HB46PP's `t=a` asks for.
//! * [`exchange`]: request, TLS and response over any byte stream.
//! * [`fetch`]: that exchange over a smoltcp TCP connection, fed IP
//!   packets and a clock, returning IP packets and its next timer.

pub mod exchange;
pub mod fetch;
pub mod request;
pub mod response;
pub mod target;
pub mod tls;

#[cfg(test)]
mod tests;

pub use exchange::{Exchange, FetchError, RequestOptions};
pub use fetch::{Fetch, FetchConfig, FetchCounters};
pub use request::BasicAuth;
pub use response::{Limits, Response, ResponseError, ResponseReader};
pub use target::{Target, TargetHost, UrlError};
