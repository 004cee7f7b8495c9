//! TLS to PostgreSQL. tokio-postgres reads `sslmode` as `disable`,
//! `prefer` or `require` only, and neither `sslrootcert` nor libpq's
//! `verify-ca`/`verify-full`; [`split_url`] takes those out of a URL and
//! says what TLS it asked for.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StoreError;

/// TLS a URL asked for: the server's certificate is verified against the
/// system's roots and those in `root_file`.
#[derive(Debug)]
pub struct TlsWanted {
    root_file: Option<PathBuf>,
}

fn invalid(reason: String) -> StoreError {
    StoreError::Database {
        context: "reading the database URL".into(),
        source: reason.into(),
    }
}

/// The URL tokio-postgres can read (`sslrootcert` out, a `verify-*` mode
/// as `require`), and the TLS it asks for (`None`: plain, for `prefer`,
/// `disable` or no `sslmode`). Only URLs (`postgres://…`) are rewritten;
/// a `key=value` string is passed on as it is.
pub fn split_url(url: &str) -> Result<(String, Option<TlsWanted>), StoreError> {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return Ok((url.to_string(), None));
    };
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Ok((url.to_string(), None));
    }
    let mut kept = Vec::new();
    let (mut tls, mut root_file) = (false, None);
    for (key, value) in parsed.query_pairs() {
        match (key.as_ref(), value.as_ref()) {
            ("sslrootcert", file) => root_file = Some(PathBuf::from(file)),
            ("sslmode", "require" | "verify-ca" | "verify-full") => {
                tls = true;
                kept.push(("sslmode".to_string(), "require".to_string()));
            }
            ("sslmode", mode @ ("disable" | "allow" | "prefer")) => {
                let mode = if mode == "allow" { "prefer" } else { mode };
                kept.push(("sslmode".to_string(), mode.to_string()));
            }
            ("sslmode", other) => {
                return Err(invalid(format!(
                    "sslmode {other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )));
            }
            (k, v) => kept.push((k.to_string(), v.to_string())),
        }
    }
    if root_file.is_some() && !tls {
        return Err(invalid(
            "sslrootcert is given but sslmode does not ask for TLS (use sslmode=verify-full)"
                .into(),
        ));
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((parsed.to_string(), tls.then_some(TlsWanted { root_file })))
}

impl TlsWanted {
    /// The connector: rustls on aws-lc-rs, with the system's roots and
    /// `root_file`'s certificates.
    pub fn connector(&self) -> Result<MakeRustlsConnect, StoreError> {
        let mut roots = rustls::RootCertStore::empty();
        // A machine without a system store still verifies `sslrootcert`.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(file) = &self.root_file {
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| invalid(format!("sslrootcert {}: {e}", file.display())))?;
            if certs.is_empty() {
                return Err(invalid(format!(
                    "sslrootcert {}: no PEM certificate in it",
                    file.display()
                )));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| invalid(format!("sslrootcert {}: {e}", file.display())))?;
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn libpq_tls_options_are_read_and_taken_out() {
        let (url, tls) = split_url(
            "postgres://u:p%40ss@db:5432/r?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://u:p%40ss@db:5432/r?sslmode=require&application_name=x"
        );
        assert_eq!(
            tls.unwrap().root_file.unwrap().to_str(),
            Some("/etc/ca.pem")
        );
        let (url, tls) = split_url("postgres://u@db/r").unwrap();
        assert_eq!((url.as_str(), tls.is_none()), ("postgres://u@db/r", true));
        assert!(
            split_url("postgres://u@db/r?sslmode=prefer")
                .unwrap()
                .1
                .is_none()
        );
        let e = split_url("postgres://u@db/r?sslmode=nope").unwrap_err();
        assert!(e.to_string().contains("sslmode"), "{e}");
        let e = split_url("postgres://u@db/r?sslrootcert=/ca.pem").unwrap_err();
        assert!(e.to_string().contains("sslrootcert"), "{e}");
        let (kv, tls) = split_url("host=db user=u").unwrap();
        assert_eq!((kv.as_str(), tls.is_none()), ("host=db user=u", true));
    }
}
