//! The signed repository commit object (atproto repository spec,
//! <https://atproto.com/specs/repository>): `{did, version: 3, data, rev, prev, sig}`,
//! as a borrowed view ([`Commit`]), the bytes its signature covers
//! ([`Commit::unsigned_bytes`]), and a builder for new commits ([`UnsignedCommit`]).
//!
//! Owns: the commit's field set and types, and its canonical encoding with and without
//! `sig`.
//! Must not: verify the signature or resolve the DID (that is `verify`), walk the MST
//! behind `data`, or do IO. The signature itself comes from the signing module; this one
//! only takes its 64 bytes.
//!
//! Always checks: strict DAG-CBOR, a map with exactly the known fields (a commit is signed
//! as a whole, so an unknown field is an error, not forward compatibility), `version` 3,
//! or 2 for legacy commits (flagged by [`Commit::version`]), `rev` present in v3 (legacy
//! v2 commits may predate it), `prev` present (nullable), atproto CIDs in `data`/`prev`, a
//! 64-byte `sig`, and the DID length.
//!
//! Does not check: DID or TID syntax, or that `data` points at a block you have.

use crate::config::limits::DID_LENGTH_BYTES_MAX;
use crate::frame::cbor::{self, DecodeError, Encoder, Value};
use crate::frame::cid::Cid;
use std::fmt;

/// The current commit format version.
pub const COMMIT_VERSION: u64 = 3;
/// The legacy format still found in old repos (no `rev` required).
pub const LEGACY_COMMIT_VERSION: u64 = 2;
/// Length of a commit signature: a compact (r ‖ s) ECDSA signature, P-256 or K-256.
pub const SIGNATURE_BYTES_LEN: usize = 64;

/// Why a block is not a valid commit object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommitError {
    /// Not one valid DAG-CBOR item.
    NotCbor(DecodeError),
    /// Not a map.
    NotMap,
    /// A required field is absent.
    MissingField(&'static str),
    /// A field has the wrong type.
    WrongFieldType(&'static str),
    /// A field the commit format does not have.
    UnknownField,
    /// A version other than 3 or 2.
    UnsupportedVersion(u64),
    /// A text field longer than its bound.
    FieldTooLong(&'static str),
    /// A link that is not an atproto CID.
    InvalidCid(&'static str),
    /// A `sig` that is not 64 bytes.
    BadSignatureLength {
        /// Its length.
        len: usize,
    },
}

impl CommitError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            CommitError::NotCbor(_) => "commit_not_cbor",
            CommitError::NotMap => "commit_not_map",
            CommitError::MissingField(_) => "commit_missing_field",
            CommitError::WrongFieldType(_) => "commit_wrong_field_type",
            CommitError::UnknownField => "commit_unknown_field",
            CommitError::UnsupportedVersion(_) => "commit_unsupported_version",
            CommitError::FieldTooLong(_) => "commit_field_too_long",
            CommitError::InvalidCid(_) => "commit_invalid_cid",
            CommitError::BadSignatureLength { .. } => "commit_bad_signature_length",
        }
    }
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommitError::NotCbor(e) => write!(f, "commit: {e}"),
            CommitError::MissingField(field) => write!(f, "commit field `{field}` is missing"),
            CommitError::WrongFieldType(field) => {
                write!(f, "commit field `{field}` has the wrong type")
            }
            CommitError::UnsupportedVersion(v) => write!(f, "commit version {v} is unsupported"),
            CommitError::FieldTooLong(field) => write!(f, "commit field `{field}` is too long"),
            CommitError::InvalidCid(field) => {
                write!(f, "commit field `{field}` is not an atproto CID")
            }
            CommitError::BadSignatureLength { len } => {
                write!(
                    f,
                    "commit signature of {len} bytes, not {SIGNATURE_BYTES_LEN}"
                )
            }
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for CommitError {}

/// The commit format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommitVersion {
    /// Version 3, the current format.
    V3,
    /// Version 2, found in old repos; `rev` may be absent.
    LegacyV2,
}

impl CommitVersion {
    /// The integer written in the commit.
    pub fn number(self) -> u64 {
        match self {
            CommitVersion::V3 => COMMIT_VERSION,
            CommitVersion::LegacyV2 => LEGACY_COMMIT_VERSION,
        }
    }
}

/// A decoded commit object borrowing from its block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commit<'a> {
    did: &'a str,
    version: CommitVersion,
    data: Cid,
    rev: Option<&'a str>,
    prev: Option<Cid>,
    sig: &'a [u8; SIGNATURE_BYTES_LEN],
}

/// Fields collected while walking the map, before the version decides what is required.
#[derive(Default)]
struct Fields<'a> {
    did: Option<&'a str>,
    version: Option<u64>,
    data: Option<Cid>,
    rev: Option<&'a str>,
    prev: Option<Option<Cid>>,
    sig: Option<&'a [u8; SIGNATURE_BYTES_LEN]>,
}

impl<'a> Commit<'a> {
    /// Decode a commit block strictly.
    pub fn decode(block: &'a [u8]) -> Result<Commit<'a>, CommitError> {
        let Value::Map(map) = cbor::decode(block).map_err(CommitError::NotCbor)? else {
            return Err(CommitError::NotMap);
        };
        let mut fields = Fields::default();
        for (key, value) in map.iter() {
            read_field(&mut fields, key, value)?;
        }
        let version = match fields.version.ok_or(CommitError::MissingField("version"))? {
            COMMIT_VERSION => CommitVersion::V3,
            LEGACY_COMMIT_VERSION => CommitVersion::LegacyV2,
            other => return Err(CommitError::UnsupportedVersion(other)),
        };
        if version == CommitVersion::V3 && fields.rev.is_none() {
            return Err(CommitError::MissingField("rev"));
        }
        Ok(Commit {
            did: fields.did.ok_or(CommitError::MissingField("did"))?,
            version,
            data: fields.data.ok_or(CommitError::MissingField("data"))?,
            rev: fields.rev,
            prev: fields.prev.ok_or(CommitError::MissingField("prev"))?,
            sig: fields.sig.ok_or(CommitError::MissingField("sig"))?,
        })
    }

    /// The repo's DID.
    pub fn did(&self) -> &'a str {
        self.did
    }

    /// The format version; [`CommitVersion::LegacyV2`] flags a legacy commit.
    pub fn version(&self) -> CommitVersion {
        self.version
    }

    /// True for a version-2 commit.
    pub fn is_legacy(&self) -> bool {
        self.version == CommitVersion::LegacyV2
    }

    /// CID of the MST root.
    pub fn data(&self) -> Cid {
        self.data
    }

    /// The revision (a TID); always present in v3, possibly absent in legacy v2.
    pub fn rev(&self) -> Option<&'a str> {
        self.rev
    }

    /// The previous commit, virtually always `None` in v3.
    pub fn prev(&self) -> Option<Cid> {
        self.prev
    }

    /// The signature over [`Commit::unsigned_bytes`].
    pub fn sig(&self) -> &'a [u8; SIGNATURE_BYTES_LEN] {
        self.sig
    }

    /// Clear `out` and write the canonical DAG-CBOR of this commit without `sig`: the
    /// bytes the signature covers. `out` is the caller's so its capacity is reused.
    pub fn unsigned_bytes(&self, out: &mut Vec<u8>) {
        out.clear();
        self.shape().write(None, out);
    }

    /// Append the canonical DAG-CBOR of the whole commit (for a canonical input block,
    /// the same bytes).
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.shape().write(Some(self.sig), out);
    }

    /// The fields as a builder; `None` for a legacy commit, which cannot be rebuilt as v3.
    pub fn to_unsigned(&self) -> Option<UnsignedCommit<'a>> {
        match (self.version, self.rev) {
            (CommitVersion::V3, Some(rev)) => Some(UnsignedCommit {
                did: self.did,
                data: self.data,
                rev,
                prev: self.prev,
            }),
            _ => None,
        }
    }

    fn shape(&self) -> Shape<'a> {
        Shape {
            did: self.did,
            version: self.version.number(),
            data: self.data,
            rev: self.rev,
            prev: self.prev,
        }
    }
}

fn read_field<'a>(fields: &mut Fields<'a>, key: &str, value: Value<'a>) -> Result<(), CommitError> {
    match (key, value) {
        ("did", Value::Text(did)) if did.len() > DID_LENGTH_BYTES_MAX => {
            return Err(CommitError::FieldTooLong("did"));
        }
        ("did", Value::Text(did)) => fields.did = Some(did),
        ("version", Value::Unsigned(v)) => fields.version = Some(v),
        ("data", value) => fields.data = Some(link("data", value)?),
        ("rev", Value::Text(rev)) => fields.rev = Some(rev),
        ("prev", Value::Null) => fields.prev = Some(None),
        ("prev", value) => fields.prev = Some(Some(link("prev", value)?)),
        ("sig", Value::Bytes(sig)) => {
            let sig = sig
                .try_into()
                .map_err(|_| CommitError::BadSignatureLength { len: sig.len() })?;
            fields.sig = Some(sig);
        }
        ("did", _) => return Err(CommitError::WrongFieldType("did")),
        ("version", _) => return Err(CommitError::WrongFieldType("version")),
        ("rev", _) => return Err(CommitError::WrongFieldType("rev")),
        ("sig", _) => return Err(CommitError::WrongFieldType("sig")),
        _ => return Err(CommitError::UnknownField),
    }
    Ok(())
}

fn link(field: &'static str, value: Value<'_>) -> Result<Cid, CommitError> {
    match value {
        Value::Link(cid) => Cid::try_from(cid).map_err(|_| CommitError::InvalidCid(field)),
        _ => Err(CommitError::WrongFieldType(field)),
    }
}

/// A v3 commit to be signed: encode [`UnsignedCommit::encode_unsigned`], sign those
/// bytes elsewhere, then write the block with [`UnsignedCommit::encode_signed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsignedCommit<'a> {
    /// The repo's DID.
    pub did: &'a str,
    /// CID of the MST root.
    pub data: Cid,
    /// The revision (a TID, increasing per repo).
    pub rev: &'a str,
    /// The previous commit; `None` (written as null) in practice.
    pub prev: Option<Cid>,
}

impl UnsignedCommit<'_> {
    /// Append the canonical bytes to sign.
    pub fn encode_unsigned(&self, out: &mut Vec<u8>) {
        self.shape().write(None, out);
    }

    /// Append the canonical signed commit block.
    pub fn encode_signed(&self, sig: &[u8; SIGNATURE_BYTES_LEN], out: &mut Vec<u8>) {
        self.shape().write(Some(sig), out);
    }

    fn shape(&self) -> Shape<'_> {
        Shape {
            did: self.did,
            version: COMMIT_VERSION,
            data: self.data,
            rev: Some(self.rev),
            prev: self.prev,
        }
    }
}

/// Everything but the signature, in the form both encoders share.
struct Shape<'a> {
    did: &'a str,
    version: u64,
    data: Cid,
    rev: Option<&'a str>,
    prev: Option<Cid>,
}

impl Shape<'_> {
    /// Canonical key order: did, rev, sig, data, prev, version.
    fn write(&self, sig: Option<&[u8; SIGNATURE_BYTES_LEN]>, out: &mut Vec<u8>) {
        let entries = 4 + u64::from(self.rev.is_some()) + u64::from(sig.is_some());
        let mut enc = Encoder::new(out);
        enc.map(entries).text("did").text(self.did);
        if let Some(rev) = self.rev {
            enc.text("rev").text(rev);
        }
        if let Some(sig) = sig {
            enc.text("sig").bytes(sig);
        }
        enc.text("data")
            .link_bytes(&self.data.to_bytes())
            .text("prev");
        match &self.prev {
            Some(prev) => enc.link_bytes(&prev.to_bytes()),
            None => enc.null(),
        };
        enc.text("version").u64(self.version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_round_trips_and_unsigned_omits_sig() {
        let commit = UnsignedCommit {
            did: "did:plc:abc",
            data: Cid::for_dag_cbor(b"mst"),
            rev: "3lmxjza3nva27",
            prev: None,
        };
        let sig = [7u8; SIGNATURE_BYTES_LEN];
        let mut block = Vec::new();
        commit.encode_signed(&sig, &mut block);
        let decoded = Commit::decode(&block).unwrap();
        assert_eq!(decoded.to_unsigned(), Some(commit));
        assert_eq!(decoded.sig(), &sig);
        let mut unsigned = vec![1, 2, 3];
        decoded.unsigned_bytes(&mut unsigned);
        let mut expected = Vec::new();
        commit.encode_unsigned(&mut expected);
        assert_eq!(unsigned, expected);
        let mut again = Vec::new();
        decoded.encode(&mut again);
        assert_eq!(again, block);
    }
}
