//! TLS for the client, on rustls, which is itself sans-IO: ciphertext goes
//! in with `read_tls`, out with `write_tls`, and `process_new_packets` runs
//! the handshake. [`TlsSession`] is that loop over byte slices; the TCP
//! bytes come from whoever carries them (smoltcp in [`super::fetch`]).
//!
//! Trust: [`client_config`] builds a verifying configuration from the
//! webpki (Mozilla) roots and/or PEM bundles the caller read (the system
//! store, a CA file), on the `ring` provider. [`insecure_config`] checks
//! the handshake's signatures but not who signed the certificate: HB46PP's
//! `t=a` ("no certificate check") and nothing else.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
/// The client configuration type, for callers without a rustls dependency.
pub use rustls::ClientConfig as TlsConfig;
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// Certificates read from one PEM bundle at most (the Debian bundle has
/// about 150).
pub const MAX_PEM_CERTS: usize = 1024;

/// Why TLS failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The server's certificate was refused (unknown issuer, wrong name,
    /// expired...).
    #[error("certificate refused: {0}")]
    Certificate(String),
    /// Anything else rustls refused: an alert, a malformed record.
    #[error("TLS: {0}")]
    Protocol(String),
    /// No root to verify with, or a PEM bundle without a certificate.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// The server name is not a DNS name or an IP address.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
}

impl TlsError {
    fn from_rustls(e: rustls::Error) -> Self {
        match e {
            rustls::Error::InvalidCertificate(c) => TlsError::Certificate(format!("{c:?}")),
            other => TlsError::Protocol(other.to_string()),
        }
    }
}

/// Where trusted roots come from.
#[derive(Clone, Debug, Default)]
pub struct Roots {
    /// The webpki-roots (Mozilla) set compiled into the binary.
    pub webpki: bool,
    /// PEM bundles: the system store's file, a CA file. Each must hold at
    /// least one certificate.
    pub pem: Vec<Vec<u8>>,
}

/// rustls' ring provider: no cmake and no C toolchain beyond cc, unlike
/// aws-lc. rustls 0.23.48 deprecates it for lacking post-quantum key
/// exchange, which provisioning replies (public data, or a short-lived
/// token) do not need.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A verifying client configuration.
pub fn client_config(roots: &Roots) -> Result<Arc<ClientConfig>, TlsError> {
    let mut store = RootCertStore::empty();
    if roots.webpki {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for bundle in &roots.pem {
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(bundle).take(MAX_PEM_CERTS) {
            let cert = cert.map_err(|e| TlsError::Config(format!("PEM: {e}")))?;
            // A bundle may hold certificates webpki cannot use as anchors
            // (old v1 roots): skip those, as the system stores' users do.
            if store.add(cert).is_ok() {
                found += 1;
            }
        }
        if found == 0 {
            return Err(TlsError::Config(
                "a PEM bundle holds no usable certificate".into(),
            ));
        }
    }
    if store.is_empty() {
        return Err(TlsError::Config("no trusted root".into()));
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A configuration that accepts any certificate (HB46PP `t=a` only): the
/// connection is encrypted but the server is not authenticated.
pub fn insecure_config() -> Arc<ClientConfig> {
    let provider = provider();
    let verifier = Arc::new(NoCertificateCheck(provider.clone()));
    // The ring provider supports the safe default versions.
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| ClientConfig::builder());
    Arc::new(
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    )
}

/// Accepts every certificate chain but still checks that the server holds
/// the key of the certificate it sent (the handshake signatures).
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The name to verify and send as SNI: an IP literal or a DNS name.
pub fn server_name(host: &super::target::TargetHost) -> Result<ServerName<'static>, TlsError> {
    match host {
        super::target::TargetHost::Ip(ip) => Ok(ServerName::IpAddress((*ip).into())),
        super::target::TargetHost::Name(name) => {
            ServerName::try_from(name.clone()).map_err(|_| TlsError::ServerName(name.clone()))
        }
    }
}

/// One client TLS connection over byte slices.
#[derive(Debug)]
pub struct TlsSession {
    conn: ClientConnection,
}

impl TlsSession {
    pub fn new(config: Arc<ClientConfig>, name: ServerName<'static>) -> Result<Self, TlsError> {
        let conn = ClientConnection::new(config, name).map_err(TlsError::from_rustls)?;
        Ok(TlsSession { conn })
    }

    /// Application bytes to send once the handshake allows (rustls holds
    /// them until then, up to its buffer limit of 64 KiB).
    pub fn write(&mut self, plaintext: &[u8]) -> Result<(), TlsError> {
        self.conn
            .writer()
            .write_all(plaintext)
            .map_err(|e| TlsError::Protocol(e.to_string()))
    }

    /// Takes received TCP bytes; decrypted application bytes are appended
    /// to `plaintext`. Returns whether the server sent close_notify.
    pub fn read(
        &mut self,
        mut ciphertext: &[u8],
        plaintext: &mut Vec<u8>,
    ) -> Result<bool, TlsError> {
        let mut closed = false;
        while !ciphertext.is_empty() {
            match self.conn.read_tls(&mut ciphertext) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(TlsError::Protocol(e.to_string())),
            }
            let state = self
                .conn
                .process_new_packets()
                .map_err(TlsError::from_rustls)?;
            closed |= state.peer_has_closed();
            closed |= self.drain(plaintext)?;
        }
        Ok(closed)
    }

    /// The TCP stream ended (FIN): lets rustls see the end, returns the
    /// last plaintext and whether the close was clean (close_notify first).
    pub fn eof(&mut self, plaintext: &mut Vec<u8>) -> Result<bool, TlsError> {
        let _ = self.conn.read_tls(&mut &[][..]);
        let state = self
            .conn
            .process_new_packets()
            .map_err(TlsError::from_rustls)?;
        let clean = self.drain(plaintext)?;
        Ok(clean || state.peer_has_closed())
    }

    /// Plaintext available now into `out`; true on close_notify.
    fn drain(&mut self, out: &mut Vec<u8>) -> Result<bool, TlsError> {
        let mut buf = [0u8; 4096];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) => return Ok(true),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
                // UnexpectedEof: TCP ended without close_notify; the HTTP
                // framing decides whether that truncated anything.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
                Err(e) => return Err(TlsError::Protocol(e.to_string())),
            }
        }
    }

    /// TLS records to send, appended to `out`.
    pub fn pull(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            match self.conn.write_tls(out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }
}
