//! DID resolution, one blocking lookup at a time: did:plc through a PLC directory
//! (`GET {plc}/{did}`), did:web through `https://{host}/.well-known/did.json`.
//!
//! Owns: the URL of each DID method, the HTTP exchange (`api::http::client_request` over
//! a [`ClientStream`], driven by `block_on` on the calling thread), the status mapping
//! (404/410 → not found) and the document bound.
//! Must not: run on a data-plane executor (it blocks: `identity::service` runs it on
//! worker threads), cache (the service does).
//! Always checks: the DID's syntax and method, the scheme policy (plain HTTP only when
//! `allow_http`, for loopback tests), the body bound `DID_DOCUMENT_BYTES_MAX` before
//! reading it, the document against the DID (`identity::did_doc`).
//! Does not check: PLC operation logs (the directory is trusted for the current
//! document), handles. did:web with a path (`did:web:host:path`) is refused, as atproto
//! allows host-only did:web.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use crate::api::http::{HttpError, Scheme, Url};
use crate::config::limits::DID_DOCUMENT_BYTES_MAX;
use crate::identity::did_doc::{DidDocError, DidDocument};
use crate::identity::transport::{ConnectError, FetchError, get, is_timeout, tls_client_config};
use crate::syntax::Did;

/// The path of a did:web document.
const DID_WEB_PATH: &str = "/.well-known/did.json";

/// Why a DID could not be resolved. Cloned to every waiter of a coalesced lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// Not a DID, or a method other than plc and web (or did:web with a path).
    UnsupportedDid,
    /// The URL needs plain HTTP and configuration does not allow it.
    HttpNotAllowed,
    /// The PLC directory URL is unusable.
    BadPlcUrl,
    /// Connecting or TLS failed (the label names the step).
    Connect(&'static str),
    /// The exchange took longer than the lookup time-out.
    Timeout,
    /// The HTTP exchange failed (the label names how).
    Http(&'static str),
    /// The directory or host answered with an unexpected status.
    Status(u16),
    /// The directory or host has no document for this DID (404 or 410).
    NotFound,
    /// The document is unusable.
    Document(DidDocError),
    /// The lookup queue is full: refused at once (see `identity::service`).
    Overloaded,
    /// The service is shutting down.
    Stopped,
}

impl ResolveError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            ResolveError::UnsupportedDid => "unsupported_did",
            ResolveError::HttpNotAllowed => "http_not_allowed",
            ResolveError::BadPlcUrl => "bad_plc_url",
            ResolveError::Connect(label) => label,
            ResolveError::Timeout => "timeout",
            ResolveError::Http(label) => label,
            ResolveError::Status(_) => "http_status",
            ResolveError::NotFound => "not_found",
            ResolveError::Document(e) => e.reason(),
            ResolveError::Overloaded => "overloaded",
            ResolveError::Stopped => "stopped",
        }
    }

    /// Failures that say something about the DID itself rather than the network: these
    /// are remembered for the negative TTL.
    pub fn is_cacheable(&self) -> bool {
        matches!(
            self,
            ResolveError::NotFound | ResolveError::Document(_) | ResolveError::UnsupportedDid
        )
    }
}

impl ResolveError {
    /// Failures of the network or an overloaded server, worth asking again soon: the DID
    /// may resolve fine a moment later.
    pub fn is_transient(&self) -> bool {
        match self {
            ResolveError::Connect(_) | ResolveError::Timeout | ResolveError::Http(_) => true,
            ResolveError::Status(code) => *code == 429 || *code >= 500,
            _ => false,
        }
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Status(code) => write!(f, "http_status {code}"),
            ResolveError::Document(e) => write!(f, "{e}"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for ResolveError {}

impl From<ConnectError> for ResolveError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Connect(io) if is_timeout(&io) => ResolveError::Timeout,
            other => ResolveError::Connect(other.reason()),
        }
    }
}

impl From<HttpError> for ResolveError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Io(io) if is_timeout(&io) => ResolveError::Timeout,
            HttpError::BodyTooLarge => ResolveError::Document(DidDocError::TooLarge),
            other => ResolveError::Http(other.reason()),
        }
    }
}

/// A blocking resolver. Cheap to share across worker threads.
#[derive(Clone, Debug)]
pub struct Resolver {
    plc: Url,
    allow_http: bool,
    timeout: Duration,
    tls: Arc<ClientConfig>,
}

impl Resolver {
    /// A resolver using the PLC directory at `plc_url` (`https://plc.directory`).
    /// `allow_http` permits `http://` for the directory and did:web (loopback tests).
    pub fn new(
        plc_url: &str,
        allow_http: bool,
        timeout: Duration,
    ) -> Result<Resolver, ResolveError> {
        let plc = Url::parse(plc_url.trim_end_matches('/')).map_err(|_| ResolveError::BadPlcUrl)?;
        if !matches!(plc.scheme, Scheme::Http | Scheme::Https) {
            return Err(ResolveError::BadPlcUrl);
        }
        let tls = tls_client_config().map_err(ResolveError::from)?;
        Ok(Resolver {
            plc,
            allow_http,
            timeout,
            tls,
        })
    }

    /// The URL a DID's document is fetched from.
    pub fn document_url(&self, did: &str) -> Result<Url, ResolveError> {
        let parsed = Did::parse(did).map_err(|_| ResolveError::UnsupportedDid)?;
        if parsed.is_plc() {
            let base = self.plc.path_and_query.trim_end_matches('/');
            return Ok(self.plc.with_path(&format!("{base}/{did}")));
        }
        if !parsed.is_web() {
            return Err(ResolveError::UnsupportedDid);
        }
        let authority = parsed.identifier();
        if authority.contains(':') {
            return Err(ResolveError::UnsupportedDid);
        }
        let authority = authority.replace("%3A", ":").replace("%3a", ":");
        let scheme = if self.allow_http { "http" } else { "https" };
        Url::parse(&format!("{scheme}://{authority}{DID_WEB_PATH}"))
            .map_err(|_| ResolveError::UnsupportedDid)
    }

    /// Fetch and parse the document of `did`. Blocks the calling thread up to about the
    /// time-out per step.
    pub fn resolve(&self, did: &str) -> Result<DidDocument, ResolveError> {
        let url = self.document_url(did)?;
        if url.scheme == Scheme::Http && !self.allow_http {
            return Err(ResolveError::HttpNotAllowed);
        }
        let response = get(
            &url,
            "application/did+ld+json, application/json",
            DID_DOCUMENT_BYTES_MAX,
            self.timeout,
            &self.tls,
        )
        .map_err(|e| match e {
            FetchError::Connect(e) => ResolveError::from(e),
            FetchError::Http(e) => ResolveError::from(e),
        })?;
        match response.status {
            200 => DidDocument::parse(did, &response.body).map_err(ResolveError::Document),
            404 | 410 => Err(ResolveError::NotFound),
            status => Err(ResolveError::Status(status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_failures_are_transient_and_answers_about_the_did_are_not() {
        for transient in [
            ResolveError::Timeout,
            ResolveError::Connect("connect_refused"),
            ResolveError::Http("http_io"),
            ResolveError::Status(503),
            ResolveError::Status(429),
        ] {
            assert!(transient.is_transient(), "{transient}");
        }
        for lasting in [
            ResolveError::NotFound,
            ResolveError::Status(400),
            ResolveError::UnsupportedDid,
            ResolveError::HttpNotAllowed,
            ResolveError::Overloaded,
        ] {
            assert!(!lasting.is_transient(), "{lasting}");
        }
    }
}
