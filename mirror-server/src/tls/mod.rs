//! TLS, as DTR serves it: HTTPS with an operator's certificate or one the
//! server makes itself, HTTP/2 by ALPN, and the CA certificate at `/ca`.
//!
//! - [`settings`]: [`TlsSettings`] (`tls = "off" | "auto"`, or `tls_cert`
//!   and `tls_key`; `public_name`; `tls_reload_interval_secs`).
//! - `pem`: PEM files in ([`rustls`] on aws-lc-rs, the provider reqwest
//!   uses) and out.
//! - `auto`: the generated CA and server certificate in
//!   `<data_dir>/tls/`.
//! - `source`: where the certificate comes from and what it is made of.
//! - `resolver`: the certificate each new handshake gets, swapped whole on
//!   reload (open connections keep theirs).
//! - `watch`: [`CertWatcher`], the reload task (every interval and on
//!   `SIGHUP`; a bad new file is logged and the old certificate kept).
//!
//! [`ServerTls::load`] reads the certificate once at start (an error stops
//! the server, naming the setting and file), and gives the acceptor
//! `serve` hands connections to and the watcher `run` spawns.

mod auto;
mod pem;
mod resolver;
pub mod settings;
mod source;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

pub use settings::{TlsMode, TlsSettings};
pub use watch::CertWatcher;

use resolver::ReloadingCert;
use source::Source;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file is missing, unreadable or not PEM.
    #[error("{setting} {}: {reason}", path.display())]
    File {
        /// The setting naming the file (`tls_cert`, `tls_key`).
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error(
        "{key_setting} {} does not match the certificate in {cert_setting} {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The setting naming the certificate.
        cert_setting: &'static str,
        /// The certificate file.
        cert: PathBuf,
        /// The setting naming the key.
        key_setting: &'static str,
        /// The key file.
        key: PathBuf,
    },
    /// `tls = "auto"` could not make or store its certificates.
    #[error("tls = \"auto\": {}: {reason}", dir.display())]
    Auto {
        /// `<data_dir>/tls`.
        dir: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// A TLS server's certificate, as new handshakes get it.
pub struct ServerTls {
    acceptor: TlsAcceptor,
    cert: Arc<ReloadingCert>,
}

impl ServerTls {
    /// Loads (in `auto` mode, first generates) the certificate `settings`
    /// name; `None` with TLS off. Also the watcher that reloads it.
    pub fn load(
        settings: &TlsSettings,
        data_dir: &Path,
    ) -> Result<Option<(ServerTls, CertWatcher)>, TlsError> {
        let Some(source) = Source::new(settings, data_dir) else {
            return Ok(None);
        };
        let material = source.read()?;
        let cert = Arc::new(ReloadingCert::new(material.load()?));
        let mut config = rustls::ServerConfig::builder_with_provider(pem::PROVIDER.clone())
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(cert.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tracing::info!(
            mode = settings.mode_name(),
            "TLS from {}",
            source.describe()
        );
        let watcher = CertWatcher {
            source: Arc::new(source),
            last: material,
            cert: cert.clone(),
            interval: settings.reload_interval,
        };
        let tls = ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            cert,
        };
        Ok(Some((tls, watcher)))
    }

    /// Accepts TLS connections with the current certificate.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// The CA certificate clients should trust, PEM: the generated CA, or
    /// the last certificate of the configured chain.
    pub fn ca_pem(&self) -> Arc<str> {
        self.cert.ca_pem()
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}
