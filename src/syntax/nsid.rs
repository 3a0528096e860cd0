//! NSIDs (<https://atproto.com/specs/nsid>): namespaced identifiers such as
//! `app.bsky.feed.post`, a reversed domain authority plus a name.
//!
//! Owns: [`Nsid`]. Must not: resolve Lexicon schemas or know any particular NSID.
//!
//! Always checks: ASCII letters, digits, `-` and `.` only; at most
//! [`NSID_LENGTH_BYTES_MAX`] bytes; at least three segments; an authority whose segments
//! are DNS labels (1 to 63 bytes, no leading or trailing hyphen) and whose first segment
//! (the TLD) does not start with a digit; a name of 1 to [`NSID_NAME_LENGTH_BYTES_MAX`]
//! ASCII letters and digits starting with a letter (the interop vectors allow digits).
//!
//! Does not check: the spec's separate 253-byte bound on the authority alone. The interop
//! vectors mark a 287-byte NSID with a 283-byte authority as valid, and the reference
//! implementations bound only the whole NSID; we follow them. Nor does it check that the
//! authority domain exists or that the name is camelCase.

use super::{SyntaxError, check_domain_label, is_domain_alphabet};
use crate::config::limits::{NSID_LENGTH_BYTES_MAX, NSID_NAME_LENGTH_BYTES_MAX};

/// A syntactically valid NSID, kept as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nsid(String);

impl Nsid {
    /// Checks `s` against the NSID syntax and keeps an owned copy.
    pub fn parse(s: &str) -> Result<Self, SyntaxError> {
        check(s).map_err(SyntaxError::Nsid)?;
        Ok(Self(s.to_owned()))
    }

    /// The NSID as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name: the last segment, case preserved (`post` in `app.bsky.feed.post`).
    pub fn name(&self) -> &str {
        self.split().1
    }

    /// The authority segments as written, in NSID (reversed-domain) order
    /// (`app.bsky.feed` in `app.bsky.feed.post`).
    pub fn authority_segments(&self) -> &str {
        self.split().0
    }

    /// The domain authority in DNS order and lowercased, as the spec normalises it
    /// (`feed.bsky.app` for `app.bsky.feed.post`).
    pub fn authority(&self) -> String {
        let reversed: Vec<&str> = self.authority_segments().rsplit('.').collect();
        reversed.join(".").to_ascii_lowercase()
    }

    fn split(&self) -> (&str, &str) {
        self.0.rsplit_once('.').unwrap_or(("", &self.0))
    }
}

impl_string_traits!(Nsid);

pub(super) fn check(s: &str) -> Result<(), &'static str> {
    if s.len() > NSID_LENGTH_BYTES_MAX {
        return Err("too long");
    }
    if !is_domain_alphabet(s) {
        return Err("disallowed character");
    }
    let (authority, name) = s.rsplit_once('.').ok_or("fewer than three segments")?;
    let mut segments = 0usize;
    for segment in authority.split('.') {
        check_domain_label(segment)?;
        segments += 1;
    }
    if segments < 2 {
        return Err("fewer than three segments");
    }
    if authority.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("first segment starts with a digit");
    }
    check_name(name)
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.len() > NSID_NAME_LENGTH_BYTES_MAX {
        return Err("name too long");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err("name does not start with a letter");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("name is not letters and digits");
    }
    Ok(())
}
