//! Content identifiers: the atproto CID ([`Cid`]: v1, sha2-256, dag-cbor or raw) and a
//! borrowed view of any well-formed CID ([`CidRef`]) for generic IPLD data.
//!
//! Owns: binary and base32 string forms, block hash checks.
//! Must not: decode blocks or know what they contain.
//! Always checks: varint forms, digest length against the multihash, exact lengths.
//! Does not check: that a link's target exists (the CAR/MST layers do).

use crate::frame::varint::read_varint;
use sha2::Digest;
use std::fmt;

/// Multicodec of DAG-CBOR blocks.
pub const CODEC_DAG_CBOR: u64 = 0x71;
/// Multicodec of raw blocks (blobs).
pub const CODEC_RAW: u64 = 0x55;
/// Multicodec of DAG-PB (CIDv0 implies it).
pub const CODEC_DAG_PB: u64 = 0x70;
/// Multihash code of SHA2-256.
pub const HASH_SHA2_256: u64 = 0x12;
/// Multihash code of BLAKE2b-256.
pub const HASH_BLAKE2B_256: u64 = 0xb220;
/// Multihash code of the identity "hash".
pub const HASH_IDENTITY: u64 = 0x00;

/// Binary length of an atproto CID: version, codec, hash code, digest length, digest.
pub const CID_BYTES_LEN: usize = 36;
/// Largest digest a generic CID may carry (identity hashes inline data).
const DIGEST_BYTES_MAX: u64 = 1024;

/// Why bytes or a string are not a usable CID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CidError {
    /// The input ended inside the CID.
    Truncated,
    /// A varint in the CID is malformed.
    BadVarint,
    /// A CID version other than 0 or 1.
    UnsupportedVersion,
    /// The digest is longer than allowed.
    DigestTooLong,
    /// Extra bytes after the CID where none may follow.
    TrailingBytes,
    /// A well-formed CID that is not atproto's (v1, sha2-256, dag-cbor or raw).
    NotAtprotoCid,
    /// A string that is not `b` + lowercase base32.
    BadString,
    /// A multihash this crate cannot compute.
    UnsupportedHash,
    /// The block's hash does not match the CID.
    HashMismatch,
}

impl CidError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            CidError::Truncated => "cid_truncated",
            CidError::BadVarint => "cid_bad_varint",
            CidError::UnsupportedVersion => "cid_unsupported_version",
            CidError::DigestTooLong => "cid_digest_too_long",
            CidError::TrailingBytes => "cid_trailing_bytes",
            CidError::NotAtprotoCid => "cid_not_atproto",
            CidError::BadString => "cid_bad_string",
            CidError::UnsupportedHash => "cid_unsupported_hash",
            CidError::HashMismatch => "cid_hash_mismatch",
        }
    }
}

impl fmt::Display for CidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for CidError {}

/// The codecs atproto links use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Codec {
    /// DAG-CBOR (0x71): commits, MST nodes, records.
    DagCbor,
    /// Raw (0x55): blobs.
    Raw,
}

impl Codec {
    /// The multicodec number.
    pub fn code(self) -> u64 {
        match self {
            Codec::DagCbor => CODEC_DAG_CBOR,
            Codec::Raw => CODEC_RAW,
        }
    }
}

/// An atproto CID: version 1, SHA2-256, DAG-CBOR or raw. `Copy`, 33 bytes of state.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid {
    codec: Codec,
    digest: [u8; 32],
}

impl Cid {
    /// The CID of `block` under `codec`.
    pub fn compute(codec: Codec, block: &[u8]) -> Cid {
        Cid {
            codec,
            digest: sha2::Sha256::digest(block).into(),
        }
    }

    /// The CID of a DAG-CBOR block.
    pub fn for_dag_cbor(block: &[u8]) -> Cid {
        Cid::compute(Codec::DagCbor, block)
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The SHA2-256 digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The binary form (36 bytes).
    pub fn to_bytes(&self) -> [u8; CID_BYTES_LEN] {
        let mut out = [0u8; CID_BYTES_LEN];
        let codec = self.codec.code() as u8;
        let (head, digest) = out.split_at_mut(4);
        head.copy_from_slice(&[0x01, codec, HASH_SHA2_256 as u8, 0x20]);
        digest.copy_from_slice(&self.digest);
        out
    }

    /// Parse the exact binary form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Cid, CidError> {
        let (cid, used) = CidRef::read_prefix(bytes)?;
        if used != bytes.len() {
            return Err(CidError::TrailingBytes);
        }
        Cid::try_from(cid)
    }

    /// Check that `block` hashes to this CID.
    pub fn verify_block(&self, block: &[u8]) -> Result<(), CidError> {
        let digest: [u8; 32] = sha2::Sha256::digest(block).into();
        if digest == self.digest {
            Ok(())
        } else {
            Err(CidError::HashMismatch)
        }
    }

    /// Parse the string form: `b` followed by lowercase base32 of the binary form.
    pub fn parse_str(text: &str) -> Result<Cid, CidError> {
        let rest = text.strip_prefix('b').ok_or(CidError::BadString)?;
        let mut bytes = [0u8; CID_BYTES_LEN];
        let len = base32_decode(rest.as_bytes(), &mut bytes)?;
        let bytes = bytes.get(..len).ok_or(CidError::BadString)?;
        Cid::from_bytes(bytes)
    }
}

impl std::str::FromStr for Cid {
    type Err = CidError;

    fn from_str(text: &str) -> Result<Cid, CidError> {
        Cid::parse_str(text)
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("b")?;
        base32_encode(&self.to_bytes(), f)
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({self})")
    }
}

impl<'a> TryFrom<CidRef<'a>> for Cid {
    type Error = CidError;

    fn try_from(cid: CidRef<'a>) -> Result<Cid, CidError> {
        let codec = match cid.codec {
            CODEC_DAG_CBOR => Codec::DagCbor,
            CODEC_RAW => Codec::Raw,
            _ => return Err(CidError::NotAtprotoCid),
        };
        if cid.version != 1 || cid.hash_code != HASH_SHA2_256 {
            return Err(CidError::NotAtprotoCid);
        }
        let digest: [u8; 32] = cid.digest.try_into().map_err(|_| CidError::NotAtprotoCid)?;
        Ok(Cid { codec, digest })
    }
}

/// A borrowed view of any well-formed CID (v0 or v1, any codec and multihash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CidRef<'a> {
    bytes: &'a [u8],
    version: u8,
    codec: u64,
    hash_code: u64,
    digest: &'a [u8],
}

impl<'a> CidRef<'a> {
    /// Read a CID at the start of `input`; returns it and the bytes it used.
    pub fn read_prefix(input: &'a [u8]) -> Result<(CidRef<'a>, usize), CidError> {
        // CIDv0 is a bare sha2-256 multihash: 0x12 0x20 + 32 bytes.
        if input.first() == Some(&0x12) && input.get(1) == Some(&0x20) {
            let bytes = input.get(..34).ok_or(CidError::Truncated)?;
            let digest = bytes.get(2..).ok_or(CidError::Truncated)?;
            let cid = CidRef {
                bytes,
                version: 0,
                codec: CODEC_DAG_PB,
                hash_code: HASH_SHA2_256,
                digest,
            };
            return Ok((cid, 34));
        }
        let mut pos = 0;
        let mut next = |input: &[u8]| -> Result<u64, CidError> {
            let rest = input.get(pos..).ok_or(CidError::Truncated)?;
            let (value, used) = read_varint(rest).map_err(|e| match e {
                crate::frame::varint::VarintError::UnexpectedEnd => CidError::Truncated,
                _ => CidError::BadVarint,
            })?;
            pos += used;
            Ok(value)
        };
        if next(input)? != 1 {
            return Err(CidError::UnsupportedVersion);
        }
        let codec = next(input)?;
        let hash_code = next(input)?;
        let digest_len = next(input)?;
        if digest_len > DIGEST_BYTES_MAX {
            return Err(CidError::DigestTooLong);
        }
        let end = pos + digest_len as usize;
        let digest = input.get(pos..end).ok_or(CidError::Truncated)?;
        let bytes = input.get(..end).ok_or(CidError::Truncated)?;
        Ok((
            CidRef {
                bytes,
                version: 1,
                codec,
                hash_code,
                digest,
            },
            end,
        ))
    }

    /// The content of a tag-42 byte string: `0x00` (the identity multibase) + one CID.
    pub fn from_tagged_bytes(tagged: &'a [u8]) -> Option<CidRef<'a>> {
        let (&prefix, rest) = tagged.split_first()?;
        if prefix != 0x00 {
            return None;
        }
        let (cid, used) = CidRef::read_prefix(rest).ok()?;
        (used == rest.len()).then_some(cid)
    }

    /// The binary form.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// 0 or 1.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The multicodec of the content.
    pub fn codec(&self) -> u64 {
        self.codec
    }

    /// The multihash code.
    pub fn hash_code(&self) -> u64 {
        self.hash_code
    }

    /// The digest bytes.
    pub fn digest(&self) -> &'a [u8] {
        self.digest
    }

    /// Check that `block` hashes to this CID (sha2-256, blake2b-256, identity).
    pub fn verify_block(&self, block: &[u8]) -> Result<(), CidError> {
        let matches = match self.hash_code {
            HASH_SHA2_256 => sha2::Sha256::digest(block).as_slice() == self.digest,
            HASH_BLAKE2B_256 => {
                blake2::Blake2b::<blake2::digest::consts::U32>::digest(block).as_slice()
                    == self.digest
            }
            HASH_IDENTITY => block == self.digest,
            _ => return Err(CidError::UnsupportedHash),
        };
        if matches {
            Ok(())
        } else {
            Err(CidError::HashMismatch)
        }
    }
}

const BASE32_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

fn base32_encode(bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let index = ((buffer >> bits) & 0x1f) as usize;
            f.write_str(base32_char(index))?;
        }
    }
    if bits > 0 {
        let index = ((buffer << (5 - bits)) & 0x1f) as usize;
        f.write_str(base32_char(index))?;
    }
    Ok(())
}

fn base32_char(index: usize) -> &'static str {
    const CHARS: [&str; 32] = [
        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r",
        "s", "t", "u", "v", "w", "x", "y", "z", "2", "3", "4", "5", "6", "7",
    ];
    CHARS.get(index).copied().unwrap_or("a")
}

/// Decode unpadded lowercase base32 into `out`; returns the length written.
fn base32_decode(text: &[u8], out: &mut [u8]) -> Result<usize, CidError> {
    let mut buffer: u32 = 0;
    let mut bits = 0;
    let mut len = 0;
    for &ch in text {
        let value = BASE32_ALPHABET
            .iter()
            .position(|&a| a == ch)
            .ok_or(CidError::BadString)? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            let slot = out.get_mut(len).ok_or(CidError::BadString)?;
            *slot = (buffer >> bits) as u8;
            len += 1;
        }
    }
    // Leftover bits must be zero padding of the last character, fewer than 5.
    if bits >= 5 || buffer & ((1 << bits) - 1) != 0 {
        return Err(CidError::BadString);
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_round_trip() {
        let text = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";
        let cid = Cid::parse_str(text).unwrap();
        assert_eq!(cid.to_string(), text);
        assert_eq!(cid.codec(), Codec::DagCbor);
        assert_eq!(Cid::from_bytes(&cid.to_bytes()).unwrap(), cid);
    }

    #[test]
    fn rejects_bad_strings() {
        assert!(Cid::parse_str("Bafy").is_err());
        assert!(
            Cid::parse_str("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hp").is_err()
        );
        assert!(Cid::parse_str("QmY7Yh4UquoXHLPFo2XbhXkhBvFoPwmQUSa92pxnxjQuPU").is_err());
    }
}
