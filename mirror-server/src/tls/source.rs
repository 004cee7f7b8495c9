//! Where the certificate comes from ([`Source`]: the operator's files or
//! the generated ones), what one look at it found ([`Material`], compared
//! with the last to see a change), and the certificate made of it
//! ([`Loaded`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;

use super::auto;
use super::pem::{self, PemFile};
use super::{TlsError, TlsMode, TlsSettings, settings};

/// Where the certificate comes from.
#[derive(Debug)]
pub(super) enum Source {
    /// `tls_cert` and `tls_key`.
    Files { cert: PathBuf, key: PathBuf },
    /// Generated in `dir` for `names`.
    Auto { dir: PathBuf, names: Vec<String> },
}

/// The files as read: a change in any of them is a new certificate.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Material {
    cert: PemFile,
    key: PemFile,
    /// The generated CA (`auto`); with files, `/ca` serves the chain's
    /// last certificate.
    ca: Option<PemFile>,
}

/// A certificate ready for handshakes, and the CA certificate `/ca` serves.
#[derive(Debug, Clone)]
pub(super) struct Loaded {
    pub key: Arc<CertifiedKey>,
    pub ca_pem: Arc<str>,
}

impl Source {
    /// The source `settings` name (`None` with TLS off); generated
    /// certificates live in `<data_dir>/tls`.
    pub(super) fn new(settings: &TlsSettings, data_dir: &Path) -> Option<Source> {
        match &settings.mode {
            TlsMode::Off => None,
            TlsMode::Files { cert, key } => Some(Source::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            TlsMode::Auto { public_names } => Some(Source::Auto {
                dir: data_dir.join("tls"),
                names: match public_names.is_empty() {
                    true => settings::default_public_names(SocketAddr::from(([0, 0, 0, 0], 0))),
                    false => public_names.clone(),
                },
            }),
        }
    }

    /// Reads the files; in `auto` mode, first issues what is missing,
    /// broken or ending within 30 days. Blocking.
    pub(super) fn read(&self) -> Result<Material, TlsError> {
        match self {
            Source::Files { cert, key } => Ok(Material {
                cert: PemFile::read("tls_cert", cert)?,
                key: PemFile::read("tls_key", key)?,
                ca: None,
            }),
            Source::Auto { dir, names } => {
                auto::ensure(dir, names)?;
                let (cert, key) = auto::read_pair(dir, auto::SERVER_CERT, auto::SERVER_KEY)?;
                let ca = PemFile::read("generated CA", &dir.join(auto::CA_CERT))?;
                Ok(Material {
                    cert,
                    key,
                    ca: Some(ca),
                })
            }
        }
    }

    /// What the logs call it.
    pub(super) fn describe(&self) -> String {
        match self {
            Source::Files { cert, key } => {
                format!("tls_cert {} and tls_key {}", cert.display(), key.display())
            }
            Source::Auto { dir, .. } => format!("the generated certificate in {}", dir.display()),
        }
    }
}

impl Material {
    /// The certificate these files make, checked (PEM, key matches).
    pub(super) fn load(&self) -> Result<Loaded, TlsError> {
        let (certified, chain) = pem::certified_key(&self.cert, &self.key)?;
        let ca_der = match &self.ca {
            Some(ca) => pem::certificates(ca)?.swap_remove(0),
            None => chain.last().expect("a chain is never empty").clone(),
        };
        Ok(Loaded {
            key: Arc::new(certified),
            ca_pem: pem::encode("CERTIFICATE", &ca_der).into(),
        })
    }
}
