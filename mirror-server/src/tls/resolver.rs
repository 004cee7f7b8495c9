//! [`ReloadingCert`]: the certificate rustls hands to each new handshake,
//! swapped whole when a new one is loaded. A connection keeps the
//! certificate it was opened with; only later handshakes see the new one.

use std::sync::{Arc, PoisonError, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::source::Loaded;

/// The current certificate (and the CA `/ca` serves with it).
#[derive(Debug)]
pub(super) struct ReloadingCert {
    current: RwLock<Loaded>,
}

impl ReloadingCert {
    pub(super) fn new(loaded: Loaded) -> Self {
        ReloadingCert {
            current: RwLock::new(loaded),
        }
    }

    /// From now on, handshakes get `loaded`.
    pub(super) fn set(&self, loaded: Loaded) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = loaded;
    }

    /// The CA certificate, PEM.
    pub(super) fn ca_pem(&self) -> Arc<str> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .ca_pem
            .clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .key
                .clone(),
        )
    }
}
