//! [`TlsSettings`]: whether the server speaks TLS, with which certificate,
//! and how often it looks for a new one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the server's certificate comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP (the default).
    #[default]
    Off,
    /// A CA and a server certificate for `public_names` (none: `localhost`,
    /// `127.0.0.1` and `::1`), generated at
    /// first start in `<data_dir>/tls/` and reused (re-issued from the same
    /// CA when the names change or the certificate nears its end).
    Auto {
        /// DNS names and IP addresses the certificate is valid for.
        public_names: Vec<String>,
    },
    /// An operator's PEM files, reloaded when they change.
    Files {
        /// The certificate chain, the server's certificate first.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
}

/// TLS settings of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Off, auto or files.
    pub mode: TlsMode,
    /// How often the certificate files are checked for a change (`SIGHUP`
    /// checks at once).
    pub reload_interval: Duration,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            mode: TlsMode::Off,
            reload_interval: Duration::from_secs(10),
        }
    }
}

impl TlsSettings {
    /// `auto` mode for `public_names`, with the default reload interval.
    pub fn auto(public_names: Vec<String>) -> Self {
        TlsSettings {
            mode: TlsMode::Auto { public_names },
            ..Default::default()
        }
    }

    /// `files` mode, with the default reload interval.
    pub fn files(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsSettings {
            mode: TlsMode::Files {
                cert: cert.into(),
                key: key.into(),
            },
            ..Default::default()
        }
    }

    /// Whether the server speaks TLS.
    pub fn is_on(&self) -> bool {
        self.mode != TlsMode::Off
    }

    /// The mode's name as the `tls` setting spells it.
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            TlsMode::Off => "off",
            TlsMode::Auto { .. } => "auto",
            TlsMode::Files { .. } => "files",
        }
    }
}

/// The names an `auto` certificate gets when none are configured:
/// `localhost`, `127.0.0.1`, `::1`, and the IP address the server listens
/// on unless it is unspecified (`0.0.0.0`, `::`).
pub fn default_public_names(listen: SocketAddr) -> Vec<String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    let ip = listen.ip();
    if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
        names.push(ip.to_string());
    }
    names
}

/// Checks that `name` can stand in a certificate: a DNS name or an IP
/// address.
pub fn check_public_name(name: &str) -> Result<(), String> {
    rustls::pki_types::ServerName::try_from(name)
        .map(|_| ())
        .map_err(|_| format!("{name:?} is not a DNS name or an IP address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_add_a_specific_listen_address() {
        let names = default_public_names("0.0.0.0:5000".parse().unwrap());
        assert_eq!(names, ["localhost", "127.0.0.1", "::1"]);
        let names = default_public_names("127.0.0.1:5000".parse().unwrap());
        assert_eq!(names, ["localhost", "127.0.0.1", "::1"]);
        let names = default_public_names("10.1.2.3:443".parse().unwrap());
        assert_eq!(names, ["localhost", "127.0.0.1", "::1", "10.1.2.3"]);
        assert!(check_public_name("registry.example.com").is_ok());
        assert!(check_public_name("fd00::1").is_ok());
        assert!(check_public_name("not a name").is_err());
    }
}
