//! CID strings (<https://atproto.com/specs/data-model>, Lexicon `cid` format): the textual
//! form of a content identifier, checked for shape only.
//!
//! Owns: [`CidString`]. Must not: decode multibase or multihash (the frame module owns
//! binary CIDs and their strict decoding).
//!
//! Always checks: [`CID_STRING_LENGTH_BYTES_MIN`] to [`CID_STRING_LENGTH_BYTES_MAX`] bytes
//! of ASCII letters, digits, `+` and `=` (the characters of the multibase encodings in
//! use); not a CIDv0 (base58btc of a sha2-256 multihash, which always starts `Qm`).
//!
//! Does not check: that the multibase prefix is known, that the string decodes, or that
//! the CID is CIDv1 dag-cbor/raw with sha2-256 as atproto data requires.

use super::SyntaxError;
use crate::config::limits::{CID_STRING_LENGTH_BYTES_MAX, CID_STRING_LENGTH_BYTES_MIN};

/// A CID in string form that passes the syntax check.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CidString(String);

impl CidString {
    /// Checks `s` against the CID string syntax and keeps an owned copy.
    pub fn parse(s: &str) -> Result<Self, SyntaxError> {
        check(s).map_err(SyntaxError::CidString)?;
        Ok(Self(s.to_owned()))
    }

    /// The CID string as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl_string_traits!(CidString);

fn check(s: &str) -> Result<(), &'static str> {
    if s.len() < CID_STRING_LENGTH_BYTES_MIN {
        return Err("too short");
    }
    if s.len() > CID_STRING_LENGTH_BYTES_MAX {
        return Err("too long");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'=')
    {
        return Err("disallowed character");
    }
    if s.starts_with("Qm") {
        return Err("CIDv0 is not allowed");
    }
    Ok(())
}
