//! `tls = "auto"`: a CA and a server certificate of our own, kept in
//! `<data_dir>/tls/` (directory 0700, files 0600):
//!
//! - `ca.pem`, `ca.key`: the CA (ECDSA P-256, 10 years), made once; what
//!   `GET /ca` serves and clients trust.
//! - `server.pem`, `server.key`: the server certificate (1 year), for the
//!   configured public names.
//! - `issued.json`: what was issued: the names, the end dates, and the
//!   CA it was signed by.
//!
//! [`ensure`] leaves good files alone and re-issues the server certificate
//! from the same CA when the names change, the CA changed, it ends within
//! 30 days, or its files are missing or broken. The CA is only made anew
//! when its own files are missing or broken, or it ends within 30 days.
//!
//! The CA's name is derived from its key (`regmirror CA <hash>`), so a CA
//! is rebuilt as an issuer from its key file alone (no certificate parser)
//! and two servers' CAs never share a name.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::TlsError;
use super::pem::{self, PemFile};

/// The CA certificate file.
pub(super) const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
/// The server certificate file.
pub(super) const SERVER_CERT: &str = "server.pem";
/// Its key.
pub(super) const SERVER_KEY: &str = "server.key";
const ISSUED: &str = "issued.json";

/// How long the CA and the server certificate are valid.
const CA_DAYS: i64 = 3650;
const SERVER_DAYS: i64 = 365;
/// A certificate ending sooner than this is replaced.
const RENEW_DAYS: i64 = 30;

/// What `issued.json` records.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Issued {
    /// SHA-256 of the CA certificate's DER, hex.
    ca_sha256: String,
    /// When the CA ends (Unix seconds; 0: unknown).
    ca_not_after: i64,
    /// The names in the server certificate, in the configured order.
    names: Vec<String>,
    /// When the server certificate ends (Unix seconds).
    server_not_after: i64,
}

/// The CA, loaded or made.
struct Ca {
    key: KeyPair,
    der: Vec<u8>,
    not_after: i64,
}

/// Makes sure `dir` holds a CA and a server certificate for `names` that
/// are valid for at least 30 more days.
pub(super) fn ensure(dir: &Path, names: &[String]) -> Result<(), TlsError> {
    let fail = |reason: String| TlsError::Auto {
        dir: dir.to_path_buf(),
        reason,
    };
    create_private_dir(dir).map_err(|e| fail(format!("cannot create the directory: {e}")))?;
    let today = Utc::now().date_naive();
    let renew_by = midnight(today + Duration::days(RENEW_DAYS));
    let issued: Option<Issued> = std::fs::read(dir.join(ISSUED))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());

    let had_ca = dir.join(CA_CERT).exists() || dir.join(CA_KEY).exists();
    let ca = match had_ca.then(|| load_ca(dir, issued.as_ref())).flatten() {
        Some(ca) if ca.not_after == 0 || ca.not_after > renew_by => ca,
        _ => {
            let ca = new_ca(today).map_err(|e| fail(format!("cannot make a CA: {e}")))?;
            write_pair(dir, (CA_CERT, &ca.der), (CA_KEY, &ca.key))
                .map_err(|e| fail(format!("cannot write the CA: {e}")))?;
            if had_ca {
                tracing::warn!(
                    dir = %dir.display(),
                    "generated a new TLS CA: clients must trust it anew (GET /ca)"
                );
            } else {
                tracing::info!(dir = %dir.display(), "generated a TLS CA (GET /ca serves it)");
            }
            ca
        }
    };
    let ca_sha256 = hex::encode(Sha256::digest(&ca.der));
    let current = issued.filter(|i| {
        i.ca_sha256 == ca_sha256
            && i.names == names
            && i.server_not_after > renew_by
            && server_files_load(dir)
    });
    let record = match current {
        Some(record) => record,
        None => {
            let (key, cert_der, not_after) = issue_server(&ca, names, today)
                .map_err(|e| fail(format!("cannot issue the server certificate: {e}")))?;
            write_pair(dir, (SERVER_CERT, &cert_der), (SERVER_KEY, &key))
                .map_err(|e| fail(format!("cannot write the server certificate: {e}")))?;
            tracing::info!(names = %names.join(","), "issued the TLS server certificate");
            Issued {
                ca_sha256,
                ca_not_after: ca.not_after,
                names: names.to_vec(),
                server_not_after: not_after,
            }
        }
    };
    let json = serde_json::to_vec_pretty(&record).expect("serializable");
    if std::fs::read(dir.join(ISSUED)).ok().as_deref() != Some(&json[..]) {
        write_private(dir, ISSUED, json)
            .map_err(|e| fail(format!("cannot write {ISSUED}: {e}")))?;
    }
    Ok(())
}

/// The CA in `dir` if its two files load and belong together.
fn load_ca(dir: &Path, issued: Option<&Issued>) -> Option<Ca> {
    let loaded = read_pair(dir, CA_CERT, CA_KEY).and_then(|(cert, key)| {
        let (_, chain) = pem::certified_key(&cert, &key)?;
        let signer = KeyPair::try_from(&pem::private_key(&key)?).map_err(|e| TlsError::Auto {
            dir: dir.to_path_buf(),
            reason: format!("the CA key cannot sign: {e}"),
        })?;
        Ok((signer, chain[0].to_vec()))
    });
    match loaded {
        Ok((key, der)) => {
            let sha = hex::encode(Sha256::digest(&der));
            let not_after = issued
                .filter(|i| i.ca_sha256 == sha)
                .map_or(0, |i| i.ca_not_after);
            Some(Ca {
                key,
                der,
                not_after,
            })
        }
        Err(e) => {
            tracing::warn!("the generated TLS CA is not usable, making a new one: {e}");
            None
        }
    }
}

/// Whether `server.pem` and `server.key` load and belong together.
fn server_files_load(dir: &Path) -> bool {
    read_pair(dir, SERVER_CERT, SERVER_KEY)
        .and_then(|(cert, key)| pem::certified_key(&cert, &key))
        .is_ok()
}

/// The certificate file `cert` and key file `key` of `dir`.
pub(super) fn read_pair(dir: &Path, cert: &str, key: &str) -> Result<(PemFile, PemFile), TlsError> {
    Ok((
        PemFile::read("generated certificate", &dir.join(cert))?,
        PemFile::read("generated key", &dir.join(key))?,
    ))
}

/// The CA's parameters: everything an issuer needs, derived from its key.
fn ca_params(key: &KeyPair, today: NaiveDate) -> CertificateParams {
    let id = hex::encode(Sha256::digest(key.subject_public_key_info()));
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "regmirror");
    dn.push(DnType::CommonName, format!("regmirror CA {}", &id[..16]));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, today, today + Duration::days(CA_DAYS));
    params.serial_number = Some(serial());
    params
}

fn new_ca(today: NaiveDate) -> Result<Ca, rcgen::Error> {
    let key = KeyPair::generate()?;
    let cert = ca_params(&key, today).self_signed(&key)?;
    Ok(Ca {
        der: cert.der().to_vec(),
        key,
        not_after: midnight(today + Duration::days(CA_DAYS)),
    })
}

/// A new key and a certificate for `names` signed by `ca`, and its end.
fn issue_server(
    ca: &Ca,
    names: &[String],
    today: NaiveDate,
) -> Result<(KeyPair, Vec<u8>, i64), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().map_or("localhost", String::as_str),
    );
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let end = today + Duration::days(SERVER_DAYS);
    set_validity(&mut params, today, end);
    params.serial_number = Some(serial());
    let issuer = Issuer::new(ca_params(&ca.key, today), &ca.key);
    let cert = params.signed_by(&key, &issuer)?;
    Ok((key, cert.der().to_vec(), midnight(end)))
}

/// Valid from the day before `today` (against clock skew) to `end`.
fn set_validity(params: &mut CertificateParams, today: NaiveDate, end: NaiveDate) {
    let date = |d: NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    params.not_before = date(today - Duration::days(1));
    params.not_after = date(end);
}

fn midnight(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp()
}

/// A random positive 127-bit serial number.
fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

/// Creates `dir` (0700).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes a key, then its certificate, as PEM.
fn write_pair(dir: &Path, cert: (&str, &[u8]), key: (&str, &KeyPair)) -> std::io::Result<()> {
    write_private(
        dir,
        key.0,
        pem::encode("PRIVATE KEY", &key.1.serialize_der()),
    )?;
    write_private(dir, cert.0, pem::encode("CERTIFICATE", cert.1))
}

/// Writes `dir/name` (0600) through a temporary file renamed into place.
fn write_private(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    let tmp: PathBuf = dir.join(format!("{name}.tmp"));
    let mut file = mirror_core::store::open_private_file(&tmp, true)?;
    file.write_all(bytes.as_ref())?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))
}
