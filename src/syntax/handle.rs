//! Handles (<https://atproto.com/specs/handle>): DNS hostnames used as account names.
//!
//! Owns: [`Handle`]. Must not: resolve handles or apply registration policy.
//!
//! Always checks: ASCII letters, digits, `-` and `.` only; at most
//! [`HANDLE_LENGTH_BYTES_MAX`] bytes; at least two labels; each label 1 to
//! [`DOMAIN_LABEL_LENGTH_BYTES_MAX`] bytes and not starting or ending with a hyphen; the
//! last label (the TLD) starting with a letter (so IPv4 addresses are rejected).
//!
//! Does not check: reserved or disallowed TLDs (`.local`, `.onion`, `.invalid`, ...),
//! which the spec treats as policy, not syntax; punycode validity.
//!
//! [`DOMAIN_LABEL_LENGTH_BYTES_MAX`]: crate::config::limits::DOMAIN_LABEL_LENGTH_BYTES_MAX

use super::{SyntaxError, check_domain_label, is_domain_alphabet};
use crate::config::limits::HANDLE_LENGTH_BYTES_MAX;

/// A syntactically valid handle, kept exactly as written (case preserved). Handles compare
/// case-insensitively in the protocol: compare [`Handle::normalized`] forms for that.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(String);

impl Handle {
    /// Checks `s` against the handle syntax and keeps an owned copy.
    pub fn parse(s: &str) -> Result<Self, SyntaxError> {
        check(s).map_err(SyntaxError::Handle)?;
        Ok(Self(s.to_owned()))
    }

    /// The handle as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The normalised (lowercase) form, the one to store and compare.
    pub fn normalized(&self) -> Handle {
        Self(self.0.to_ascii_lowercase())
    }

    /// True when the handle is already in normalised (lowercase) form.
    pub fn is_normalized(&self) -> bool {
        !self.0.bytes().any(|b| b.is_ascii_uppercase())
    }
}

impl_string_traits!(Handle);

pub(super) fn check(s: &str) -> Result<(), &'static str> {
    if s.len() > HANDLE_LENGTH_BYTES_MAX {
        return Err("too long");
    }
    if !is_domain_alphabet(s) {
        return Err("disallowed character");
    }
    let mut labels = s.split('.').peekable();
    let mut count = 0usize;
    while let Some(label) = labels.next() {
        check_domain_label(label)?;
        count += 1;
        let is_tld = labels.peek().is_none();
        if is_tld && !label.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err("top-level domain does not start with a letter");
        }
    }
    if count < 2 {
        return Err("fewer than two labels");
    }
    Ok(())
}
