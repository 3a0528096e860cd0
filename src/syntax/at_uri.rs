//! AT-URIs (<https://atproto.com/specs/at-uri-scheme>) in the restricted form Lexicon's
//! `at-uri` format allows: `at://AUTHORITY[/COLLECTION[/RKEY]]`.
//!
//! Owns: [`AtUri`]. Must not: resolve the authority or fetch the record.
//!
//! Always checks: at most [`AT_URI_LENGTH_BYTES_MAX`] bytes; the lowercase `at://` prefix;
//! an authority that is a valid DID or handle; an optional collection that is a valid NSID
//! and an optional record key that is a valid record key; no empty segment, no trailing
//! slash, no more than two path segments.
//!
//! Does not check: anything the restricted form leaves out. Query (`?`) and fragment (`#`)
//! parts are rejected, since no Lexicon-valid AT-URI carries them (their characters are
//! outside the authority, NSID and record-key alphabets). Percent-encoding is likewise
//! rejected, which keeps every accepted AT-URI in normal form.

use super::{SyntaxError, did, handle, nsid, record_key};
use crate::config::limits::AT_URI_LENGTH_BYTES_MAX;

const PREFIX: &str = "at://";

/// A valid AT-URI in the Lexicon-restricted form. The accessors return slices of the URI,
/// each already checked against its own syntax.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AtUri {
    text: String,
    /// Byte offset just past the authority.
    authority_end: usize,
    /// Byte offset just past the collection (equal to `authority_end` when there is none).
    collection_end: usize,
}

impl AtUri {
    /// Checks `s` against the restricted AT-URI syntax and keeps an owned copy.
    pub fn parse(s: &str) -> Result<Self, SyntaxError> {
        let (authority_end, collection_end) = check(s).map_err(SyntaxError::AtUri)?;
        Ok(Self {
            text: s.to_owned(),
            authority_end,
            collection_end,
        })
    }

    /// The AT-URI as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The authority: a DID or a handle, as written.
    pub fn authority(&self) -> &str {
        self.text
            .get(PREFIX.len()..self.authority_end)
            .unwrap_or_default()
    }

    /// True when the authority is a DID (not a handle).
    pub fn has_did_authority(&self) -> bool {
        self.authority().starts_with("did:")
    }

    /// The collection NSID, when the URI has a path.
    pub fn collection(&self) -> Option<&str> {
        self.text.get(self.authority_end + 1..self.collection_end)
    }

    /// The record key, when the URI names a record.
    pub fn record_key(&self) -> Option<&str> {
        self.text.get(self.collection_end + 1..)
    }
}

impl_string_traits!(AtUri);

/// Returns the end offsets of the authority and of the collection.
fn check(s: &str) -> Result<(usize, usize), &'static str> {
    if s.len() > AT_URI_LENGTH_BYTES_MAX {
        return Err("too long");
    }
    let rest = s.strip_prefix(PREFIX).ok_or("missing at:// prefix")?;
    let mut parts = rest.split('/');
    let authority = parts.next().unwrap_or_default();
    if authority.is_empty() {
        return Err("empty authority");
    }
    let authority_valid = if authority.starts_with("did:") {
        did::check(authority)
    } else {
        handle::check(authority)
    };
    authority_valid.map_err(|_| "invalid authority")?;
    let authority_end = PREFIX.len() + authority.len();
    let Some(collection) = parts.next() else {
        return Ok((authority_end, authority_end));
    };
    nsid::check(collection).map_err(|_| "invalid collection")?;
    let collection_end = authority_end + 1 + collection.len();
    if let Some(rkey) = parts.next() {
        record_key::check(rkey).map_err(|_| "invalid record key")?;
    }
    if parts.next().is_some() {
        return Err("more than two path segments");
    }
    Ok((authority_end, collection_end))
}
