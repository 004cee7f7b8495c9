//! PEM files in and out: a certificate chain and its private key read into
//! a rustls [`CertifiedKey`] (the key checked against the certificate),
//! and DER written back as PEM.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use base64::Engine as _;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::TlsError;

/// The one crypto provider: aws-lc-rs, which reqwest's rustls uses too.
pub(super) static PROVIDER: LazyLock<Arc<CryptoProvider>> =
    LazyLock::new(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));

/// One PEM file as read, with the setting that names it (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PemFile {
    /// `tls_cert`, `tls_key`, or what a generated file is.
    pub setting: &'static str,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

impl PemFile {
    /// Reads `path`, named `setting` in errors.
    pub(super) fn read(setting: &'static str, path: &Path) -> Result<PemFile, TlsError> {
        let bytes = std::fs::read(path).map_err(|e| TlsError::File {
            setting,
            path: path.to_path_buf(),
            reason: format!("cannot read: {e}"),
        })?;
        Ok(PemFile {
            setting,
            path: path.to_path_buf(),
            bytes,
        })
    }

    fn error(&self, reason: impl Into<String>) -> TlsError {
        TlsError::File {
            setting: self.setting,
            path: self.path.clone(),
            reason: reason.into(),
        }
    }
}

/// The certificates of `file`, in order.
pub(super) fn certificates(file: &PemFile) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(&file.bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file.error(format!("not a PEM certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(file.error("not a PEM certificate file: no CERTIFICATE block"));
    }
    Ok(chain)
}

/// The private key of `file` (PKCS#8, PKCS#1 or SEC1).
pub(super) fn private_key(file: &PemFile) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(&file.bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            file.error("not a PEM private key file: no PRIVATE KEY block")
        }
        e => file.error(format!("not a PEM private key file: {e}")),
    })
}

/// The chain of `cert` with the key of `key`, checked to belong together;
/// also the chain's certificates.
pub(super) fn certified_key(
    cert: &PemFile,
    key: &PemFile,
) -> Result<(CertifiedKey, Vec<CertificateDer<'static>>), TlsError> {
    let chain = certificates(cert)?;
    let private = private_key(key)?;
    let certified =
        CertifiedKey::from_der(chain.clone(), private, &PROVIDER).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                cert_setting: cert.setting,
                cert: cert.path.clone(),
                key_setting: key.setting,
                key: key.path.clone(),
            },
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                cert.error(format!("not a usable certificate: {e}"))
            }
            e => key.error(format!("not a usable private key: {e}")),
        })?;
    Ok((certified, chain))
}

/// `der` as a PEM block labeled `label` (`CERTIFICATE`, `PRIVATE KEY`).
pub(super) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(setting: &'static str, bytes: &[u8]) -> PemFile {
        PemFile {
            setting,
            path: "/etc/x.pem".into(),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn encode_round_trips_and_errors_name_the_setting() {
        let der: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let pem = encode("CERTIFICATE", &der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        let back = certificates(&file("tls_cert", pem.as_bytes())).unwrap();
        assert_eq!(back[0].as_ref(), der.as_slice());

        let e = certificates(&file("tls_cert", b"garbage")).unwrap_err();
        assert!(
            e.to_string().starts_with("tls_cert /etc/x.pem: not a PEM"),
            "{e}"
        );
        let e = private_key(&file("tls_key", pem.as_bytes())).unwrap_err();
        assert!(
            e.to_string().contains("tls_key /etc/x.pem") && e.to_string().contains("PRIVATE KEY"),
            "{e}"
        );
    }
}
