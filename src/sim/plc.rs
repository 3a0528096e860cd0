//! The fleet's directory of accounts and the simulated PLC directory that serves it:
//! `GET /{did}` answers a DID document for every `did:plc` account, 404 otherwise.
//!
//! Owns: the shared account table (DID, seed, curve, host, key generation, handle, last
//! emitted commit), DID document JSON, and the PLC HTTP server task. The table changes
//! only when an event that announces the change is emitted (a key rotation or migration
//! is visible in the DID document from its `#identity` event on), so a consumer that
//! resolves after the event sees the key of the commits that follow it.
//! Must not: build frames or hold repos (that is the generator). Checks nothing but the
//! request path.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite};
use serde_json::{Value as Json, json};

use crate::api::http::{self, ReadBuffer};
use crate::config::limits::SIM_HTTP_BODY_BYTES_MAX;
use crate::frame::cid::Cid;
use crate::identity::key::Curve;
use crate::sim::account::{SimError, key_for_generation};

/// One account of the fleet as the directory knows it.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub did: String,
    pub seed: u64,
    pub curve: Curve,
    /// Index of the host the DID document names.
    pub host: usize,
    pub key_generation: u32,
    pub handle: String,
    /// `publicKeyMultibase` of `key_generation`, derived on first use.
    pub multikey: Option<String>,
    /// The last emitted honest commit: CID and rev.
    pub head: Option<(Cid, String)>,
    /// `false` once an `#account` event said the account is not active.
    pub active: bool,
}

/// The shared account table. Locked briefly by the emit loops (when an event changes an
/// account) and the HTTP handlers; nothing is awaited under the lock.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    pub entries: Vec<Entry>,
    pub by_did: HashMap<String, usize>,
    /// `127.0.0.1:<port>` of each host, by index.
    pub hosts: Vec<String>,
    /// The did:web account of each host, when it has one.
    pub did_web_of_host: Vec<Option<usize>>,
}

/// The directory behind a lock, shared by every executor and the API.
pub(crate) type SharedDirectory = Arc<RwLock<Directory>>;

impl Directory {
    /// The DID document of account `index`, deriving (and caching) its multikey.
    pub fn document(&mut self, index: usize) -> Result<Option<Json>, SimError> {
        let Some(entry) = self.entries.get_mut(index) else {
            return Ok(None);
        };
        let multikey = match &entry.multikey {
            Some(key) => key.clone(),
            None => {
                let key = key_for_generation(entry.seed, entry.curve, entry.key_generation)?
                    .public_key()
                    .to_multikey();
                entry.multikey = Some(key.clone());
                key
            }
        };
        let entry = entry.clone();
        let endpoint = self
            .hosts
            .get(entry.host)
            .map(|h| format!("http://{h}"))
            .unwrap_or_default();
        Ok(Some(did_document(
            &entry.did,
            &entry.handle,
            &multikey,
            &endpoint,
        )))
    }
}

/// A DID document as plc.directory and a did:web host serve it.
pub fn did_document(did: &str, handle: &str, multikey: &str, endpoint: &str) -> Json {
    json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1",
        ],
        "id": did,
        "alsoKnownAs": [format!("at://{handle}")],
        "verificationMethod": [{
            "id": format!("{did}#atproto"),
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": multikey,
        }],
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": endpoint,
        }],
    })
}

/// Answer one PLC request: the document of a known did:plc, else 404.
fn plc_answer(directory: &SharedDirectory, path: &str) -> (u16, Vec<u8>) {
    let did = path.trim_start_matches('/');
    let Ok(mut table) = directory.write() else {
        return (
            500,
            error_body("InternalServerError", "directory lock poisoned"),
        );
    };
    let index = table.by_did.get(did).copied();
    let document = match index {
        Some(index) if did.starts_with("did:plc:") => table.document(index),
        _ => Ok(None),
    };
    match document {
        Ok(Some(doc)) => (200, doc.to_string().into_bytes()),
        Ok(None) => (
            404,
            json!({"message": format!("DID not registered: {did}")})
                .to_string()
                .into_bytes(),
        ),
        Err(e) => (500, error_body("InternalServerError", &e.to_string())),
    }
}

/// An XRPC error body.
pub(crate) fn error_body(error: &str, message: &str) -> Vec<u8> {
    json!({"error": error, "message": message})
        .to_string()
        .into_bytes()
}

/// Serve PLC requests on one connection until the peer closes or the fleet stops.
pub(crate) async fn serve_plc_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    directory: SharedDirectory,
) {
    let mut buffer = ReadBuffer::new();
    while let Ok(Some(request)) =
        http::read_request(&mut stream, &mut buffer, SIM_HTTP_BODY_BYTES_MAX).await
    {
        let (status, body) = if request.method == "GET" {
            plc_answer(&directory, &request.path)
        } else {
            (405, error_body("MethodNotAllowed", "GET only"))
        };
        let headers = [("Content-Type", "application/json")];
        if http::write_response(&mut stream, status, &headers, &body)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Accept PLC connections for as long as the executor runs (it ends when the fleet
/// stops, which drops this task and its connections).
pub(crate) async fn run_plc(listener: glommio::net::TcpListener, directory: SharedDirectory) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let directory = directory.clone();
                glommio::spawn_local(serve_plc_connection(stream, directory)).detach();
            }
            // A failed accept (e.g. out of descriptors) must not spin the executor.
            Err(_) => glommio::timer::sleep(Duration::from_millis(10)).await,
        }
    }
}
