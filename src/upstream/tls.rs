//! The TLS client configuration of upstream sessions: rustls with the ring provider only
//! and the system's trusted roots.
//!
//! Owns: building the one `ClientConfig` a process shares across its ingest cores (it is
//! `Send + Sync`; each session clones the `Arc`). Must not: open sockets.
//! Always checks: at least one root loaded (a relay that trusts nothing would fail every
//! host with `tls_failed`, better to refuse at start). Does not: pin certificates or
//! allow invalid ones; tests build their own config trusting their own certificate.
//!
//! Reading the roots reads files, so call this at start, off the data-plane executors.

use rustls::{ClientConfig, RootCertStore};
use std::fmt;
use std::sync::Arc;

/// Why the TLS client configuration could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// No usable root certificate was found in the system store.
    NoRoots,
    /// rustls refused the protocol versions for the ring provider.
    Provider(rustls::Error),
}

impl TlsConfigError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            TlsConfigError::NoRoots => "tls_no_roots",
            TlsConfigError::Provider(_) => "tls_provider",
        }
    }
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Provider(e) => write!(f, "{}: {e}", self.reason()),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for TlsConfigError {}

/// The upstream client config over the system roots.
pub fn client_tls_config() -> Result<Arc<ClientConfig>, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    let loaded = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        return Err(TlsConfigError::NoRoots);
    }
    client_tls_config_with_roots(roots)
}

/// A client config trusting exactly `roots` (tests trust their self-signed certificate).
pub fn client_tls_config_with_roots(
    roots: RootCertStore,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    // An explicit provider: with two providers compiled in, `ClientConfig::builder()`
    // panics at run time (docs/build-notes.md).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsConfigError::Provider)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
