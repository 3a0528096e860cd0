//! Record keys (<https://atproto.com/specs/record-key>): the last path segment of a record's
//! AT-URI and its key in the repository.
//!
//! Owns: [`RecordKey`]. Must not: know a collection's key type (`tid`, `literal:self`,
//! `nsid`, `any`), which is Lexicon knowledge.
//!
//! Always checks: 1 to [`RECORD_KEY_LENGTH_BYTES_MAX`] bytes of ASCII letters, digits and
//! `.-_:~`; not `.` and not `..`.
//!
//! Does not check: that the key is a TID or any other per-collection form.

use super::SyntaxError;
use crate::config::limits::RECORD_KEY_LENGTH_BYTES_MAX;

/// A syntactically valid record key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey(String);

impl RecordKey {
    /// Checks `s` against the record-key syntax and keeps an owned copy.
    pub fn parse(s: &str) -> Result<Self, SyntaxError> {
        check(s).map_err(SyntaxError::RecordKey)?;
        Ok(Self(s.to_owned()))
    }

    /// The record key as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl_string_traits!(RecordKey);

pub(super) fn check(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("empty");
    }
    if s.len() > RECORD_KEY_LENGTH_BYTES_MAX {
        return Err("too long");
    }
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'~');
    if !s.bytes().all(allowed) {
        return Err("disallowed character");
    }
    if s == "." || s == ".." {
        return Err("is . or ..");
    }
    Ok(())
}
