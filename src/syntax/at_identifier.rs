//! At-identifiers (Lexicon `at-identifier` format): a DID or a handle, as in the authority
//! of an AT-URI or an XRPC `repo` parameter.
//!
//! Owns: [`AtIdentifier`]. Must not: resolve either form.
//!
//! Always checks: a string starting `did:` must be a valid [`Did`]; anything else must be a
//! valid [`Handle`]. Does not check: anything beyond those two syntaxes.

use super::{Did, Handle, SyntaxError};

/// A DID or a handle.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AtIdentifier {
    /// The identifier is a DID.
    Did(Did),
    /// The identifier is a handle.
    Handle(Handle),
}

impl AtIdentifier {
    /// Parses `s` as a DID when it starts with `did:`, otherwise as a handle.
    pub fn parse(s: &str) -> Result<Self, SyntaxError> {
        let to_own_error = |e: SyntaxError| SyntaxError::AtIdentifier(e.detail());
        if s.starts_with("did:") {
            Did::parse(s).map(Self::Did).map_err(to_own_error)
        } else {
            Handle::parse(s).map(Self::Handle).map_err(to_own_error)
        }
    }

    /// The identifier as written.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Did(did) => did.as_str(),
            Self::Handle(handle) => handle.as_str(),
        }
    }

    /// The DID, when the identifier is one.
    pub fn as_did(&self) -> Option<&Did> {
        match self {
            Self::Did(did) => Some(did),
            Self::Handle(_) => None,
        }
    }

    /// The handle, when the identifier is one.
    pub fn as_handle(&self) -> Option<&Handle> {
        match self {
            Self::Did(_) => None,
            Self::Handle(handle) => Some(handle),
        }
    }
}

impl_string_traits!(AtIdentifier);

impl From<Did> for AtIdentifier {
    fn from(did: Did) -> Self {
        Self::Did(did)
    }
}

impl From<Handle> for AtIdentifier {
    fn from(handle: Handle) -> Self {
        Self::Handle(handle)
    }
}
