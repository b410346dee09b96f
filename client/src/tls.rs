//! TLS to the servers' secure client port (feature `tls`): [`TlsConfig`] says what to trust and
//! which certificate to present; [`TlsConnector`] is a [`Connector`] that opens a connection with
//! an inner connector (tokio TCP by default) and runs a rustls handshake over it. The session
//! engine does not know TLS exists: it only sees a byte stream.
//!
//! Certificates and keys are PEM files, read again for every new connection: replacing them on
//! disk (a rotated client certificate, a new CA bundle) takes effect at the next reconnect,
//! without restarting the client. A file that cannot be read or parsed then fails that attempt
//! with a [`TlsError`] (logged, and reported by [`Connector::last_error`]); the client keeps
//! trying, so a rotation caught half-written heals on the next attempt. (The files are small
//! and read with plain blocking reads.)
//!
//! rustls with the `ring` provider: TLS 1.2 and 1.3, no OpenSSL.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::connector::{BoxStream, ConnectFuture, Connector, TcpConnector};

/// Why TLS could not be set up or a TLS connection failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// What the file was for (`CA file`, `client certificate`, `client key`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A file (or in-memory PEM) held no usable PEM block, or a garbled one.
    #[error("bad PEM in {what} {origin}: {reason}")]
    BadPem {
        /// What the PEM was for.
        what: &'static str,
        /// The file, or `(in memory)`.
        origin: String,
        /// What was wrong.
        reason: String,
    },
    /// A CA certificate was refused as a trust anchor.
    #[error("bad CA certificate in {origin}: {reason}")]
    BadCa {
        /// The file, or `(in memory)`.
        origin: String,
        /// What rustls said.
        reason: String,
    },
    /// No certificate could be loaded from the platform's trust store.
    #[error("no platform root certificates could be loaded: {0}")]
    NoPlatformRoots(String),
    /// The pieces do not fit together (e.g. the key does not match the certificate).
    #[error("bad TLS configuration: {0}")]
    Config(String),
    /// The server name to verify is not a DNS name or an IP address.
    #[error("{0:?} is not a valid TLS server name (a DNS name or an IP address)")]
    BadServerName(String),
    /// The server could not be reached (before any TLS was spoken).
    #[error("cannot reach {addr}: {source}")]
    Unreachable {
        /// The server, `host:port`.
        addr: String,
        /// What the inner connector said.
        source: io::Error,
    },
    /// The handshake with a server failed (untrusted certificate, wrong name, refused
    /// client certificate, or the peer does not speak TLS).
    #[error("TLS handshake with {addr} failed: {reason}")]
    Handshake {
        /// The server, `host:port`.
        addr: String,
        /// What rustls or the network said.
        reason: String,
    },
}

/// Where PEM data comes from: a file read at each connection, or bytes given in memory.
#[derive(Clone)]
enum Pem {
    File(PathBuf),
    Memory(Arc<Vec<u8>>),
}

impl Pem {
    fn origin(&self) -> String {
        match self {
            Pem::File(p) => p.display().to_string(),
            Pem::Memory(_) => "(in memory)".to_owned(),
        }
    }

    fn load(&self, what: &'static str) -> Result<Arc<Vec<u8>>, TlsError> {
        match self {
            Pem::File(path) => std::fs::read(path)
                .map(Arc::new)
                .map_err(|source| TlsError::Read {
                    what,
                    path: path.clone(),
                    source,
                }),
            Pem::Memory(bytes) => Ok(bytes.clone()),
        }
    }

    fn certificates(&self, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let bytes = self.load(what)?;
        let bad = |reason: String| TlsError::BadPem {
            what,
            origin: self.origin(),
            reason,
        };
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no CERTIFICATE block".to_owned()));
        }
        Ok(certs)
    }

    fn private_key(&self, what: &'static str) -> Result<PrivateKeyDer<'static>, TlsError> {
        let bytes = self.load(what)?;
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::BadPem {
            what,
            origin: self.origin(),
            reason: match e {
                rustls::pki_types::pem::Error::NoItemsFound => {
                    "no PRIVATE KEY block (PKCS#8, PKCS#1 or SEC1)".to_owned()
                }
                e => e.to_string(),
            },
        })
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin())
    }
}

/// What the client trusts to sign the servers' certificates.
#[derive(Debug, Clone)]
enum Trust {
    Ca(Pem),
    Platform,
}

/// How the server's certificate is matched against a name.
#[derive(Debug, Clone)]
enum NameCheck {
    /// Against the host of the connect string (DNS name or IP address).
    Host,
    /// Against this name, whatever host is connected to.
    Fixed(String),
    /// Not at all (the chain is still verified against the trusted CAs).
    Skip,
}

/// TLS settings: what to trust, which client certificate to present, how to check names.
///
/// ```no_run
/// # async fn f() -> zkit::Result<()> {
/// use zkit::tls::TlsConfig;
/// let tls = TlsConfig::with_ca_file("/etc/zookeeper/ca.pem")
///     .client_cert_files("/etc/zookeeper/client.pem", "/etc/zookeeper/client.key");
/// let client = zkit::Client::builder("zk1.example.com:2281").tls(tls).connect().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TlsConfig {
    trust: Trust,
    client: Option<(Pem, Pem)>,
    names: NameCheck,
}

impl TlsConfig {
    /// Trusts the CA certificates in a PEM file (one or more `CERTIFICATE` blocks), read again
    /// for every new connection.
    pub fn with_ca_file(path: impl AsRef<Path>) -> TlsConfig {
        TlsConfig::new(Trust::Ca(Pem::File(path.as_ref().to_owned())))
    }

    /// Trusts the CA certificates in PEM bytes.
    pub fn with_ca_pem(pem: impl Into<Vec<u8>>) -> TlsConfig {
        TlsConfig::new(Trust::Ca(Pem::Memory(Arc::new(pem.into()))))
    }

    /// Trusts the platform's root certificates (on Linux the system CA bundle, found as
    /// OpenSSL would: `SSL_CERT_FILE`, `/etc/ssl/certs`, ...).
    pub fn with_platform_roots() -> TlsConfig {
        TlsConfig::new(Trust::Platform)
    }

    fn new(trust: Trust) -> TlsConfig {
        TlsConfig {
            trust,
            client: None,
            names: NameCheck::Host,
        }
    }

    /// Presents a client certificate (mutual TLS, ZooKeeper's `ssl.clientAuth=need`): a PEM
    /// certificate chain (leaf first) and its PEM private key (PKCS#8, PKCS#1 or SEC1), both
    /// read again for every new connection.
    pub fn client_cert_files(mut self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        self.client = Some((
            Pem::File(cert.as_ref().to_owned()),
            Pem::File(key.as_ref().to_owned()),
        ));
        self
    }

    /// Presents a client certificate given as PEM bytes (chain, then key).
    pub fn client_cert_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.client = Some((
            Pem::Memory(Arc::new(cert.into())),
            Pem::Memory(Arc::new(key.into())),
        ));
        self
    }

    /// Verifies every server's certificate against `name` (a DNS name or an IP address)
    /// instead of the host it was reached at: for connect strings of IP addresses, or servers
    /// sharing one certificate. Hostname verification stays on.
    pub fn server_name(mut self, name: &str) -> Self {
        self.names = NameCheck::Fixed(name.to_owned());
        self
    }

    /// Turns hostname verification OFF: any certificate signed by a trusted CA is accepted,
    /// whatever name it was issued for. The chain, its validity dates and the handshake
    /// signature are still checked. For test setups only: anyone holding a certificate from
    /// the same CA can then pose as the server. Prefer [`TlsConfig::server_name`].
    pub fn danger_skip_hostname_verification(mut self) -> Self {
        self.names = NameCheck::Skip;
        self
    }

    /// Reads every file and builds the rustls configuration.
    fn load(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        match &self.trust {
            Trust::Ca(pem) => {
                for cert in pem.certificates("CA file")? {
                    roots.add(cert).map_err(|e| TlsError::BadCa {
                        origin: pem.origin(),
                        reason: e.to_string(),
                    })?;
                }
            }
            Trust::Platform => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    let why = found
                        .errors
                        .first()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "the trust store is empty".to_owned());
                    return Err(TlsError::NoPlatformRoots(why));
                }
            }
        }
        let config = |e: rustls::Error| TlsError::Config(e.to_string());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(config)?;
        let builder = match &self.names {
            NameCheck::Skip => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier {
                    roots: Arc::new(roots),
                    algorithms: provider.signature_verification_algorithms,
                })),
            _ => builder.with_root_certificates(roots),
        };
        let tls = match &self.client {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    cert.certificates("client certificate")?,
                    key.private_key("client key")?,
                )
                .map_err(config)?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(tls))
    }

    /// The name to verify the server at `addr` (`host:port`) against.
    fn name_for(&self, addr: &str) -> Result<ServerName<'static>, TlsError> {
        let host = match &self.names {
            NameCheck::Fixed(name) => name.as_str(),
            _ => host_of(addr),
        };
        match ServerName::try_from(host.to_owned()) {
            Ok(name) => Ok(name),
            // Not checked anyway: any valid placeholder will do.
            Err(_) if matches!(self.names, NameCheck::Skip) => {
                Ok(ServerName::try_from("zookeeper.invalid")
                    .map_err(|_| TlsError::BadServerName(host.to_owned()))?)
            }
            Err(_) => Err(TlsError::BadServerName(host.to_owned())),
        }
    }
}

/// The host part of `host:port` (brackets of an IPv6 host removed).
fn host_of(addr: &str) -> &str {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => addr,
    };
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Verifies the chain up to a trusted root and the handshake signatures, not the name.
#[derive(Debug)]
struct ChainOnlyVerifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A [`Connector`] that runs TLS over another connector's streams (tokio TCP by default).
///
/// Certificate files are read again for every connection (see the module docs), so
/// [`TlsConnector::new`] loading them once only checks them early.
pub struct TlsConnector {
    config: TlsConfig,
    inner: Arc<dyn Connector>,
    last_error: Arc<Mutex<Option<String>>>,
}

impl TlsConnector {
    /// TLS over tokio TCP. Fails if the files named in `config` cannot be read or parsed now.
    pub fn new(config: TlsConfig) -> Result<TlsConnector, TlsError> {
        TlsConnector::over(config, Arc::new(TcpConnector))
    }

    /// TLS over the streams of `inner`. Fails as [`TlsConnector::new`].
    pub fn over(config: TlsConfig, inner: Arc<dyn Connector>) -> Result<TlsConnector, TlsError> {
        config.load()?;
        Ok(TlsConnector {
            config,
            inner,
            last_error: Arc::new(Mutex::new(None)),
        })
    }

    /// Connects to `addr` and completes the TLS handshake, with a typed error.
    pub async fn connect_tls(&self, addr: &str) -> Result<BoxStream, TlsError> {
        let result = self.try_connect(addr).await;
        match &result {
            Ok(_) => self.set_last_error(None),
            // Not a TLS problem: the session logs it; keep the last TLS reason.
            Err(TlsError::Unreachable { .. }) => {}
            Err(e) => {
                tracing::warn!(addr, error = %e, "TLS connection failed");
                self.set_last_error(Some(e.to_string()));
            }
        }
        result
    }

    async fn try_connect(&self, addr: &str) -> Result<BoxStream, TlsError> {
        let tls = self.config.load()?;
        let name = self.config.name_for(addr)?;
        let handshake = |e: io::Error| TlsError::Handshake {
            addr: addr.to_owned(),
            reason: e.to_string(),
        };
        let tcp = self
            .inner
            .connect(addr)
            .await
            .map_err(|source| TlsError::Unreachable {
                addr: addr.to_owned(),
                source,
            })?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(handshake)?;
        Ok(Box::new(Reporting {
            inner: stream,
            addr: addr.to_owned(),
            last_error: self.last_error.clone(),
        }))
    }

    fn set_last_error(&self, e: Option<String>) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = e;
        }
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Connector for TlsConnector {
    fn connect<'a>(&'a self, addr: &'a str) -> ConnectFuture<'a> {
        Box::pin(async move {
            self.connect_tls(addr).await.map_err(|e| match e {
                TlsError::Unreachable { source, .. } => source,
                e => io::Error::other(e),
            })
        })
    }

    fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

/// A TLS stream that records its read and write errors as the connector's last error: a
/// server that refuses the client's certificate says so (a TLS alert) only after the client's
/// side of a TLS 1.3 handshake is done, on the first read.
struct Reporting<S> {
    inner: S,
    addr: String,
    last_error: Arc<Mutex<Option<String>>>,
}

impl<S> Reporting<S> {
    fn note<T>(&self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(e)) = &result {
            let e = TlsError::Handshake {
                addr: self.addr.clone(),
                reason: e.to_string(),
            };
            tracing::warn!(error = %e, "TLS connection failed");
            if let Ok(mut slot) = self.last_error.lock() {
                *slot = Some(e.to_string());
            }
        }
        result
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Reporting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.note(result)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Reporting<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_port_and_brackets() {
        assert_eq!(host_of("zk1.example.com:2281"), "zk1.example.com");
        assert_eq!(host_of("127.0.0.1:2281"), "127.0.0.1");
        assert_eq!(host_of("[::1]:2281"), "::1");
    }

    #[test]
    fn missing_ca_file_is_a_read_error() {
        let e = TlsConnector::new(TlsConfig::with_ca_file("/nonexistent/ca.pem")).unwrap_err();
        assert!(
            matches!(
                e,
                TlsError::Read {
                    what: "CA file",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn garbled_pem_is_a_pem_error() {
        let e = TlsConnector::new(TlsConfig::with_ca_pem("hello, not a certificate")).unwrap_err();
        assert!(matches!(e, TlsError::BadPem { .. }), "{e}");
        let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let e = TlsConnector::new(TlsConfig::with_ca_pem(bad_base64)).unwrap_err();
        assert!(matches!(e, TlsError::BadPem { .. }), "{e}");
        let not_der = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        let e = TlsConnector::new(TlsConfig::with_ca_pem(not_der)).unwrap_err();
        assert!(matches!(e, TlsError::BadCa { .. }), "{e}");
    }

    #[test]
    fn invalid_server_name_is_refused_unless_names_are_skipped() {
        let cfg = TlsConfig::with_ca_pem("").server_name("not a name!");
        assert!(matches!(
            cfg.name_for("h:1"),
            Err(TlsError::BadServerName(_))
        ));
        let cfg = TlsConfig::with_ca_pem("").danger_skip_hostname_verification();
        assert!(cfg.name_for("bad_host!:1").is_ok());
    }
}
