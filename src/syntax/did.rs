//! DIDs (<https://atproto.com/specs/did>): the generic DID syntax as atproto restricts it.
//!
//! Owns: [`Did`]. Must not: resolve DIDs or judge whether a method is supported.
//!
//! Always checks: lowercase `did:` prefix; a method of one or more lowercase ASCII letters;
//! a non-empty identifier of ASCII letters, digits and `._:%-` that does not end in `:` or
//! `%`; at most [`DID_LENGTH_BYTES_MAX`] bytes. Query and fragment parts are rejected
//! (their characters are outside the alphabet).
//!
//! Does not check: percent-encoding (the spec says implementations need not), or the
//! method-specific syntax of `did:plc` / `did:web`.

use super::SyntaxError;
use crate::config::limits::DID_LENGTH_BYTES_MAX;

const PREFIX: &str = "did:";

/// A syntactically valid DID, such as `did:plc:7iza6de2dwap2sbkpav7c6c6`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did(String);

impl Did {
    /// Checks `s` against the DID syntax and keeps an owned copy.
    pub fn parse(s: &str) -> Result<Self, SyntaxError> {
        check(s).map_err(SyntaxError::Did)?;
        Ok(Self(s.to_owned()))
    }

    /// The DID as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The method name, such as `plc` or `web`.
    pub fn method(&self) -> &str {
        self.split().0
    }

    /// The method-specific identifier: everything after `did:<method>:`.
    pub fn identifier(&self) -> &str {
        self.split().1
    }

    /// True for `did:plc:` DIDs.
    pub fn is_plc(&self) -> bool {
        self.method() == "plc"
    }

    /// True for `did:web:` DIDs.
    pub fn is_web(&self) -> bool {
        self.method() == "web"
    }

    fn split(&self) -> (&str, &str) {
        let rest = self.0.strip_prefix(PREFIX).unwrap_or_default();
        rest.split_once(':').unwrap_or((rest, ""))
    }
}

impl_string_traits!(Did);

pub(super) fn check(s: &str) -> Result<(), &'static str> {
    if s.len() > DID_LENGTH_BYTES_MAX {
        return Err("too long");
    }
    let rest = s
        .strip_prefix(PREFIX)
        .ok_or("missing lowercase did: prefix")?;
    let (method, identifier) = rest.split_once(':').ok_or("missing method or identifier")?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err("method is not lowercase letters");
    }
    if identifier.is_empty() {
        return Err("empty identifier");
    }
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'%' | b'-');
    if !identifier.bytes().all(allowed) {
        return Err("disallowed character");
    }
    if identifier.ends_with(':') || identifier.ends_with('%') {
        return Err("ends with ':' or '%'");
    }
    Ok(())
}
