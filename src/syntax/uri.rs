//! Generic URIs (Lexicon `uri` format, <https://atproto.com/specs/lexicon>): any scheme,
//! RFC 3986 shape, bounded length.
//!
//! Owns: [`Uri`]. Must not: dereference URIs or interpret any scheme.
//!
//! Always checks: at most [`URI_LENGTH_BYTES_MAX`] bytes; an RFC 3986 scheme (a letter,
//! then letters, digits, `+`, `-`, `.`), a `:`, then at least one character, all printable
//! ASCII without spaces (`!` to `~`).
//!
//! Does not check: the hierarchical parts (authority, path, query, fragment) against the
//! full RFC 3986 grammar, or percent-encoding. Internationalised (non-ASCII) IRIs are
//! rejected.

use super::SyntaxError;
use crate::config::limits::URI_LENGTH_BYTES_MAX;

/// A URI that passes the Lexicon `uri` syntax check.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uri(String);

impl Uri {
    /// Checks `s` against the URI syntax and keeps an owned copy.
    pub fn parse(s: &str) -> Result<Self, SyntaxError> {
        check(s).map_err(SyntaxError::Uri)?;
        Ok(Self(s.to_owned()))
    }

    /// The URI as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scheme, as written (schemes compare case-insensitively).
    pub fn scheme(&self) -> &str {
        self.0.split_once(':').map_or("", |(scheme, _)| scheme)
    }
}

impl_string_traits!(Uri);

fn check(s: &str) -> Result<(), &'static str> {
    if s.len() > URI_LENGTH_BYTES_MAX {
        return Err("too long");
    }
    let (scheme, rest) = s.split_once(':').ok_or("missing scheme")?;
    if !scheme.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err("scheme does not start with a letter");
    }
    let scheme_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.');
    if !scheme.bytes().all(scheme_char) {
        return Err("disallowed character in scheme");
    }
    if rest.is_empty() {
        return Err("nothing after the scheme");
    }
    if !rest.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("whitespace, control or non-ASCII character");
    }
    Ok(())
}
