//! The signed repo commit: decode the commit block and check its signature with the
//! account's parsed key.
//!
//! Owns: the rule that a commit's signature covers the canonical DAG-CBOR encoding of the
//! commit object without `sig`, hashed with SHA-256.
//! Must not: resolve keys (the caller passes the key parsed once per DID), or judge rev
//! order, host authority or MST proofs (other rules in `verify`).

use crate::frame::commit::{Commit, CommitError};
use crate::verify::signature::{ParsedKey, SignatureError};
use std::fmt;

/// Why a commit block does not carry a valid signature.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommitSignatureError {
    /// The block is not a well-formed commit object.
    Commit(CommitError),
    /// The signature does not verify with the key (or is malformed).
    Signature(SignatureError),
}

impl CommitSignatureError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            CommitSignatureError::Commit(e) => e.reason(),
            CommitSignatureError::Signature(e) => e.reason(),
        }
    }
}

impl fmt::Display for CommitSignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommitSignatureError::Commit(e) => write!(f, "commit: {e}"),
            CommitSignatureError::Signature(e) => write!(f, "commit signature: {e}"),
        }
    }
}

impl std::error::Error for CommitSignatureError {}

/// Decode `block` as a commit and verify its signature with `key`. `scratch` receives the
/// unsigned encoding; reuse it across calls so steady state allocates nothing.
pub fn verify_commit_signature<'a>(
    block: &'a [u8],
    key: &ParsedKey,
    scratch: &mut Vec<u8>,
) -> Result<Commit<'a>, CommitSignatureError> {
    let commit = Commit::decode(block).map_err(CommitSignatureError::Commit)?;
    commit.unsigned_bytes(scratch);
    key.verify(scratch, commit.sig())
        .map_err(CommitSignatureError::Signature)?;
    Ok(commit)
}
