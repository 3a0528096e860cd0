//! DID documents: the JSON a PLC directory or a did:web host serves, reduced to what the
//! relay uses.
//!
//! Owns: parsing a document (serde_json) into [`DidDocument`]: the DID, the first
//! `at://` handle of `alsoKnownAs`, the `#atproto` signing key and the `#atproto_pds`
//! service endpoint.
//! Must not: fetch anything (that is `identity::resolver`), or verify handles (a handle
//! is only a claim until its DNS/well-known record is checked; the relay does not need it).
//! Always checks: the size bound before parsing, that `id` is the DID that was resolved,
//! that the `#atproto` key parses (via `identity::key`).
//! Does not check: `controller` fields, contexts, other verification methods or services.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::limits::DID_DOCUMENT_BYTES_MAX;
use crate::identity::key::{KeyError, PublicKey, VerificationMethodRef};

/// The service id of an account's PDS.
pub const ATPROTO_PDS_SERVICE_ID: &str = "#atproto_pds";
/// The service type of an account's PDS.
pub const ATPROTO_PDS_SERVICE_TYPE: &str = "AtprotoPersonalDataServer";
/// The URI prefix of a handle in `alsoKnownAs`.
const HANDLE_PREFIX: &str = "at://";

/// What the relay keeps of a DID document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DidDocument {
    /// The document's DID (equal to the DID resolved).
    pub id: String,
    /// The first `at://` entry of `alsoKnownAs`, without the prefix (unverified).
    pub handle: Option<String>,
    /// The `#atproto` verification method's key, in `did:key` form when serialised.
    #[serde(with = "did_key_serde")]
    pub signing_key: PublicKey,
    /// The `#atproto_pds` service endpoint.
    pub pds_endpoint: Option<String>,
}

/// Why a DID document is not usable.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DidDocError {
    /// Larger than `DID_DOCUMENT_BYTES_MAX`.
    TooLarge,
    /// Not JSON, or not the shape of a DID document.
    Json,
    /// `id` is not the DID that was resolved.
    IdMismatch,
    /// No usable `#atproto` key.
    Key(KeyError),
}

impl DidDocError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            DidDocError::TooLarge => "did_doc_too_large",
            DidDocError::Json => "did_doc_json",
            DidDocError::IdMismatch => "did_doc_id_mismatch",
            DidDocError::Key(_) => "did_doc_key",
        }
    }
}

impl fmt::Display for DidDocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DidDocError::Key(e) => write!(f, "{}: {e}", self.reason()),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for DidDocError {}

/// The wire shape, borrowed where serde_json allows; unknown fields are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDocument<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    #[serde(default)]
    also_known_as: Option<Vec<String>>,
    #[serde(default)]
    verification_method: Option<Vec<RawMethod>>,
    #[serde(default)]
    service: Option<Vec<RawService>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMethod {
    #[serde(default)]
    id: String,
    #[serde(default, rename = "type")]
    method_type: String,
    #[serde(default)]
    public_key_multibase: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawService {
    #[serde(default)]
    id: String,
    #[serde(default, rename = "type")]
    service_type: String,
    #[serde(default)]
    service_endpoint: serde_json::Value,
}

impl DidDocument {
    /// Parse `bytes` as the document of `did`.
    pub fn parse(did: &str, bytes: &[u8]) -> Result<DidDocument, DidDocError> {
        if bytes.len() > DID_DOCUMENT_BYTES_MAX {
            return Err(DidDocError::TooLarge);
        }
        let raw: RawDocument<'_> = serde_json::from_slice(bytes).map_err(|_| DidDocError::Json)?;
        if raw.id != did {
            return Err(DidDocError::IdMismatch);
        }
        let methods = raw.verification_method.unwrap_or_default();
        let signing_key = PublicKey::from_atproto_verification_method(methods.iter().map(|m| {
            VerificationMethodRef {
                id: &m.id,
                method_type: &m.method_type,
                public_key_multibase: m.public_key_multibase.as_deref(),
            }
        }))
        .map_err(DidDocError::Key)?;
        let handle = raw
            .also_known_as
            .unwrap_or_default()
            .iter()
            .find_map(|aka| aka.strip_prefix(HANDLE_PREFIX).map(str::to_owned));
        let pds_endpoint = raw.service.unwrap_or_default().into_iter().find_map(|s| {
            let id_matches = s.id == ATPROTO_PDS_SERVICE_ID
                || s.id.strip_prefix(did) == Some(ATPROTO_PDS_SERVICE_ID);
            match (
                id_matches && s.service_type == ATPROTO_PDS_SERVICE_TYPE,
                s.service_endpoint,
            ) {
                (true, serde_json::Value::String(endpoint)) => Some(endpoint),
                _ => None,
            }
        });
        Ok(DidDocument {
            id: raw.id.into_owned(),
            handle,
            signing_key,
            pds_endpoint,
        })
    }
}

/// `PublicKey` as its `did:key` string, for snapshots of the identity cache.
mod did_key_serde {
    use crate::identity::key::PublicKey;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(key: &PublicKey, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&key.to_did_key())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PublicKey, D::Error> {
        let text = String::deserialize(deserializer)?;
        PublicKey::from_did_key(&text).map_err(serde::de::Error::custom)
    }
}
