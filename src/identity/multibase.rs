//! Base58btc, the multibase `z` prefix, and unsigned varints (the multicodec prefix):
//! the text encodings that carry public keys in `did:key` and DID documents.
//!
//! Owns: encoding and decoding of these three formats, written here (no codec crate).
//! Must not touch: key semantics (which multicodec means which curve lives in `key`).
//! Always checks: every character is in the Bitcoin base58 alphabet; the decoded value
//! fits `IDENTITY_KEY_DECODED_BYTES_MAX` (decoding stops as soon as it cannot, so a
//! hostile string costs O(that bound), never O(its length²)); varints are minimal and at
//! most 9 bytes, as the multiformats unsigned-varint spec requires.
//! Does not check: other multibase bases (only `z` is used by atproto keys), what the
//! decoded bytes mean.

use std::fmt;

use crate::config::limits::IDENTITY_KEY_DECODED_BYTES_MAX;

/// The multibase prefix character of base58btc.
pub const BASE58BTC_PREFIX: char = 'z';

/// The Bitcoin base58 alphabet: digit value = position.
const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// The multiformats unsigned-varint spec caps a varint at 9 bytes (63 bits of value).
const UVARINT_BYTES_MAX: usize = 9;

/// Why a multibase string or a varint was rejected.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultibaseError {
    /// The string holds no characters (or only the multibase prefix).
    Empty,
    /// A character outside the base58 alphabet, at this byte offset of the input.
    InvalidCharacter {
        /// Byte offset in the decoded string (after the prefix for multibase).
        position: usize,
    },
    /// The decoded bytes would exceed `IDENTITY_KEY_DECODED_BYTES_MAX`.
    TooLong,
    /// A multibase prefix other than `z` (base58btc).
    UnsupportedBase {
        /// The prefix character found.
        prefix: char,
    },
    /// A varint with a redundant trailing zero group (more bytes than its value needs).
    VarintNotMinimal,
    /// A varint longer than 9 bytes.
    VarintTooLong,
    /// The input ended inside a varint.
    VarintTruncated,
}

impl MultibaseError {
    /// A short snake_case label, usable as a bounded metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "multibase_empty",
            Self::InvalidCharacter { .. } => "base58_character_invalid",
            Self::TooLong => "base58_decoded_too_long",
            Self::UnsupportedBase { .. } => "multibase_base_unsupported",
            Self::VarintNotMinimal => "varint_not_minimal",
            Self::VarintTooLong => "varint_too_long",
            Self::VarintTruncated => "varint_truncated",
        }
    }
}

impl fmt::Display for MultibaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty multibase string"),
            Self::InvalidCharacter { position } => {
                write!(
                    f,
                    "character at byte {position} is not in the base58 alphabet"
                )
            }
            Self::TooLong => write!(
                f,
                "decoded value exceeds {IDENTITY_KEY_DECODED_BYTES_MAX} bytes"
            ),
            Self::UnsupportedBase { prefix } => {
                write!(f, "multibase prefix {prefix:?} is not base58btc ('z')")
            }
            Self::VarintNotMinimal => f.write_str("varint is not minimally encoded"),
            Self::VarintTooLong => write!(f, "varint exceeds {UVARINT_BYTES_MAX} bytes"),
            Self::VarintTruncated => f.write_str("input ends inside a varint"),
        }
    }
}

impl std::error::Error for MultibaseError {}

/// Bytes decoded from base58, held inline (no allocation) because keys are small.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DecodedBytes {
    buffer: [u8; IDENTITY_KEY_DECODED_BYTES_MAX],
    len: usize,
}

impl DecodedBytes {
    /// The decoded bytes.
    pub fn as_slice(&self) -> &[u8] {
        // `len <= buffer.len()` is kept by the only constructor, `decode_base58btc`.
        self.buffer.get(..self.len).unwrap_or(&[])
    }
}

impl fmt::Debug for DecodedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DecodedBytes")
            .field(&self.as_slice())
            .finish()
    }
}

/// The value of one base58 character, or `None` outside the alphabet (which leaves out
/// `0`, `O`, `I` and `l`).
fn digit_value(character: u8) -> Option<u8> {
    let value = match character {
        b'1'..=b'9' => character - b'1',
        b'A'..=b'H' => character - b'A' + 9,
        b'J'..=b'N' => character - b'J' + 17,
        b'P'..=b'Z' => character - b'P' + 22,
        b'a'..=b'k' => character - b'a' + 33,
        b'm'..=b'z' => character - b'm' + 44,
        _ => return None,
    };
    Some(value)
}

/// Encode bytes as base58btc (Bitcoin alphabet), without a multibase prefix.
/// Each leading zero byte becomes a leading `1`.
pub fn encode_base58btc(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|byte| **byte == 0).count();
    // Base-58 digits of the value, least significant first; log(256)/log(58) < 1.37.
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 137 / 100 + 1);
    for byte in bytes.iter().skip(zeros) {
        let mut carry = u32::from(*byte);
        for digit in digits.iter_mut() {
            carry += u32::from(*digit) << 8;
            *digit = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut text = String::with_capacity(zeros + digits.len());
    text.extend(std::iter::repeat_n('1', zeros));
    for digit in digits.iter().rev() {
        // Every digit is a remainder mod 58, so the lookup always succeeds.
        if let Some(character) = ALPHABET.get(usize::from(*digit)) {
            text.push(char::from(*character));
        }
    }
    text
}

/// Decode base58btc text (no multibase prefix) into at most
/// `IDENTITY_KEY_DECODED_BYTES_MAX` bytes. Each leading `1` is a leading zero byte.
pub fn decode_base58btc(text: &str) -> Result<DecodedBytes, MultibaseError> {
    if text.is_empty() {
        return Err(MultibaseError::Empty);
    }
    // The value's bytes, least significant first; `used` of them are significant.
    let mut limbs = [0u8; IDENTITY_KEY_DECODED_BYTES_MAX];
    let mut used = 0usize;
    let mut zeros = 0usize;
    for (position, character) in text.bytes().enumerate() {
        let digit = digit_value(character).ok_or(MultibaseError::InvalidCharacter { position })?;
        if digit == 0 && used == 0 && zeros == position {
            zeros += 1;
            if zeros > IDENTITY_KEY_DECODED_BYTES_MAX {
                return Err(MultibaseError::TooLong);
            }
            continue;
        }
        let mut carry = u32::from(digit);
        for limb in limbs.iter_mut().take(used) {
            carry += u32::from(*limb) * 58;
            *limb = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            let limb = limbs.get_mut(used).ok_or(MultibaseError::TooLong)?;
            *limb = (carry & 0xff) as u8;
            used += 1;
            carry >>= 8;
        }
    }
    let len = zeros + used;
    if len > IDENTITY_KEY_DECODED_BYTES_MAX {
        return Err(MultibaseError::TooLong);
    }
    let mut buffer = [0u8; IDENTITY_KEY_DECODED_BYTES_MAX];
    let significant = limbs.iter().take(used).rev();
    for (slot, limb) in buffer.iter_mut().skip(zeros).zip(significant) {
        *slot = *limb;
    }
    Ok(DecodedBytes { buffer, len })
}

/// Encode bytes as a base58btc multibase string (`z` + base58btc).
pub fn encode_multibase_base58btc(bytes: &[u8]) -> String {
    let mut text = String::from(BASE58BTC_PREFIX);
    text.push_str(&encode_base58btc(bytes));
    text
}

/// Decode a multibase string that must use base58btc (prefix `z`).
pub fn decode_multibase_base58btc(text: &str) -> Result<DecodedBytes, MultibaseError> {
    let mut characters = text.chars();
    match characters.next() {
        None => Err(MultibaseError::Empty),
        Some(BASE58BTC_PREFIX) => decode_base58btc(characters.as_str()),
        Some(prefix) => Err(MultibaseError::UnsupportedBase { prefix }),
    }
}

/// Append `value` as an unsigned varint (multicodec prefixes use them).
pub fn encode_uvarint(value: u64, out: &mut Vec<u8>) {
    crate::frame::varint::write_varint(value, out);
}

/// Read one unsigned varint from the front of `bytes`; returns the value and the
/// bytes after it. Rejects non-minimal encodings, so each value has one encoding.
pub fn decode_uvarint(bytes: &[u8]) -> Result<(u64, &[u8]), MultibaseError> {
    use crate::frame::varint::{VarintError, read_varint};
    let (value, used) = read_varint(bytes).map_err(|e| match e {
        VarintError::NotMinimal => MultibaseError::VarintNotMinimal,
        VarintError::TooLong => MultibaseError::VarintTooLong,
        _ => MultibaseError::VarintTruncated,
    })?;
    Ok((value, bytes.get(used..).unwrap_or(&[])))
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "tests fail loudly on a broken invariant"
)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base58_known_vectors() {
        // Vectors from the base58 draft (draft-msporny-base58) and Bitcoin's tests.
        let cases: [(&[u8], &str); 5] = [
            (b"Hello World!", "2NEpo7TZRRrLZSi2U"),
            (
                b"The quick brown fox jumps over the lazy dog.",
                "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z",
            ),
            (&[0x00, 0x00, 0x28, 0x7f, 0xb4, 0xcd], "11233QC4"),
            (&[0x00], "1"),
            (&[0x61], "2g"),
        ];
        for (bytes, text) in cases {
            assert_eq!(encode_base58btc(bytes), text);
            if bytes.len() <= IDENTITY_KEY_DECODED_BYTES_MAX {
                assert_eq!(decode_base58btc(text).unwrap().as_slice(), bytes);
            }
        }
    }

    #[test]
    fn base58_rejects_bad_input() {
        assert_eq!(decode_base58btc(""), Err(MultibaseError::Empty));
        for (text, position) in [("0", 0), ("12O", 2), ("abIc", 2), ("zl", 1), ("2é", 1)] {
            assert_eq!(
                decode_base58btc(text),
                Err(MultibaseError::InvalidCharacter { position })
            );
        }
        let many_ones = "1".repeat(IDENTITY_KEY_DECODED_BYTES_MAX + 1);
        assert_eq!(decode_base58btc(&many_ones), Err(MultibaseError::TooLong));
        let huge = "z".repeat(1_000_000);
        assert_eq!(decode_base58btc(&huge), Err(MultibaseError::TooLong));
        let exact_ones = "1".repeat(IDENTITY_KEY_DECODED_BYTES_MAX);
        let zeros = [0u8; IDENTITY_KEY_DECODED_BYTES_MAX];
        assert_eq!(decode_base58btc(&exact_ones).unwrap().as_slice(), zeros);
        let mut one_past = exact_ones.clone();
        one_past.push('2');
        assert_eq!(decode_base58btc(&one_past), Err(MultibaseError::TooLong));
    }

    #[test]
    fn multibase_prefix_is_checked() {
        assert_eq!(decode_multibase_base58btc(""), Err(MultibaseError::Empty));
        assert_eq!(decode_multibase_base58btc("z"), Err(MultibaseError::Empty));
        assert_eq!(
            decode_multibase_base58btc("f00"),
            Err(MultibaseError::UnsupportedBase { prefix: 'f' })
        );
        assert_eq!(
            decode_multibase_base58btc("z2NEpo7TZRRrLZSi2U")
                .unwrap()
                .as_slice(),
            b"Hello World!"
        );
        assert_eq!(
            encode_multibase_base58btc(b"Hello World!"),
            "z2NEpo7TZRRrLZSi2U"
        );
    }

    #[test]
    fn uvarint_known_vectors() {
        let cases: [(u64, &[u8]); 7] = [
            (0, &[0x00]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (0xe7, &[0xe7, 0x01]),
            (0x1200, &[0x80, 0x24]),
            (16384, &[0x80, 0x80, 0x01]),
        ];
        for (value, bytes) in cases {
            let mut encoded = Vec::new();
            encode_uvarint(value, &mut encoded);
            assert_eq!(encoded, bytes);
            let mut with_tail = bytes.to_vec();
            with_tail.push(0xaa);
            assert_eq!(decode_uvarint(&with_tail), Ok((value, &[0xaa][..])));
        }
    }

    #[test]
    fn uvarint_rejects_bad_input() {
        assert_eq!(decode_uvarint(&[]), Err(MultibaseError::VarintTruncated));
        assert_eq!(
            decode_uvarint(&[0x80]),
            Err(MultibaseError::VarintTruncated)
        );
        assert_eq!(
            decode_uvarint(&[0x81, 0x00]),
            Err(MultibaseError::VarintNotMinimal)
        );
        assert_eq!(
            decode_uvarint(&[0xff; 9]),
            Err(MultibaseError::VarintTooLong)
        );
        let mut largest = vec![0xff; 8];
        largest.push(0x7f);
        assert_eq!(decode_uvarint(&largest), Ok((u64::MAX >> 1, &[][..])));
    }

    #[test]
    fn reasons_are_snake_case() {
        let errors = [
            MultibaseError::Empty,
            MultibaseError::InvalidCharacter { position: 3 },
            MultibaseError::TooLong,
            MultibaseError::UnsupportedBase { prefix: 'f' },
            MultibaseError::VarintNotMinimal,
            MultibaseError::VarintTooLong,
            MultibaseError::VarintTruncated,
        ];
        for error in errors {
            let reason = error.reason();
            assert!(
                reason
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            );
            assert!(!error.to_string().is_empty());
        }
    }

    proptest! {
        #[test]
        fn base58_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..=IDENTITY_KEY_DECODED_BYTES_MAX)) {
            let text = encode_base58btc(&bytes);
            if bytes.is_empty() {
                prop_assert_eq!(decode_base58btc(&text), Err(MultibaseError::Empty));
            } else {
                let decoded = decode_base58btc(&text).unwrap();
                prop_assert_eq!(decoded.as_slice(), &bytes[..]);
            }
        }

        #[test]
        fn uvarint_round_trips(value in 0u64..(1 << 63)) {
            let mut encoded = Vec::new();
            encode_uvarint(value, &mut encoded);
            prop_assert!(encoded.len() <= UVARINT_BYTES_MAX);
            prop_assert_eq!(decode_uvarint(&encoded), Ok((value, &[][..])));
        }
    }
}
