//! DAG-CBOR: the wire codec of firehose frames, CAR blocks, commits, MST nodes and records.
//!
//! Owns: strict decoding into borrowed views ([`decode`]), canonical encoding
//! ([`encode`]), and an owned value tree for building data in tests and the simulator
//! ([`OwnedValue`]).
//! Must not: know atproto record or frame types (that is `frame::event`, `frame::commit`
//! and `verify::mst`), allocate on the decode path, or do IO.

mod decode;
mod encode;
mod value;

pub use decode::{
    Array, ArrayIter, Map, MapIter, Value, canonical_key_cmp, decode, decode_prefix, validate,
};
pub use encode::{Encoder, encode_value};
pub use value::OwnedValue;

use std::fmt;

/// Why a byte string is not one well-formed DAG-CBOR item. Offsets are into the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside an item.
    UnexpectedEnd {
        /// Where the missing bytes were expected.
        offset: usize,
    },
    /// A length or count is larger than what is left of the input.
    LengthExceedsInput {
        /// Offset of the item.
        offset: usize,
    },
    /// An indefinite-length item or a break byte.
    IndefiniteLength {
        /// Offset of the head.
        offset: usize,
    },
    /// Additional information 28..30, reserved by CBOR.
    ReservedInfo {
        /// Offset of the head.
        offset: usize,
    },
    /// An integer or length not in its shortest form.
    NonMinimalInteger {
        /// Offset of the head.
        offset: usize,
    },
    /// Text that is not UTF-8.
    InvalidUtf8 {
        /// Offset of the string head.
        offset: usize,
    },
    /// A map key that is not a text string.
    MapKeyNotText {
        /// Offset of the key.
        offset: usize,
    },
    /// Map keys out of canonical order.
    MapKeyOrder {
        /// Offset of the key.
        offset: usize,
    },
    /// The same map key twice.
    DuplicateMapKey {
        /// Offset of the second key.
        offset: usize,
    },
    /// A tag other than 42.
    UnsupportedTag {
        /// Offset of the tag.
        offset: usize,
        /// The tag number.
        tag: u64,
    },
    /// Tag 42 around something that is not `0x00` + a CID.
    InvalidLink {
        /// Offset of the tag content.
        offset: usize,
    },
    /// The `undefined` simple value.
    Undefined {
        /// Offset of the value.
        offset: usize,
    },
    /// A simple value other than false, true and null.
    UnsupportedSimple {
        /// Offset of the value.
        offset: usize,
    },
    /// A 16- or 32-bit float: DAG-CBOR encodes every float in 64 bits.
    FloatNotDouble {
        /// Offset of the value.
        offset: usize,
    },
    /// NaN or an infinity.
    NonFiniteFloat {
        /// Offset of the value.
        offset: usize,
    },
    /// Nesting deeper than `CBOR_NESTING_DEPTH_MAX`.
    NestingTooDeep {
        /// Offset of the item that went too deep.
        offset: usize,
    },
    /// Bytes after the single item that was expected.
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
    },
    /// An item of the wrong type where a typed decoder expected another.
    WrongType {
        /// What was expected, e.g. "map".
        expected: &'static str,
    },
    /// A broken internal invariant; never expected on any input.
    Internal,
}

impl DecodeError {
    /// A short, bounded label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::UnexpectedEnd { .. } => "cbor_unexpected_end",
            DecodeError::LengthExceedsInput { .. } => "cbor_length_exceeds_input",
            DecodeError::IndefiniteLength { .. } => "cbor_indefinite_length",
            DecodeError::ReservedInfo { .. } => "cbor_reserved_info",
            DecodeError::NonMinimalInteger { .. } => "cbor_non_minimal_integer",
            DecodeError::InvalidUtf8 { .. } => "cbor_invalid_utf8",
            DecodeError::MapKeyNotText { .. } => "cbor_map_key_not_text",
            DecodeError::MapKeyOrder { .. } => "cbor_map_key_order",
            DecodeError::DuplicateMapKey { .. } => "cbor_duplicate_map_key",
            DecodeError::UnsupportedTag { .. } => "cbor_unsupported_tag",
            DecodeError::InvalidLink { .. } => "cbor_invalid_link",
            DecodeError::Undefined { .. } => "cbor_undefined",
            DecodeError::UnsupportedSimple { .. } => "cbor_unsupported_simple",
            DecodeError::FloatNotDouble { .. } => "cbor_float_not_double",
            DecodeError::NonFiniteFloat { .. } => "cbor_non_finite_float",
            DecodeError::NestingTooDeep { .. } => "cbor_nesting_too_deep",
            DecodeError::TrailingBytes { .. } => "cbor_trailing_bytes",
            DecodeError::WrongType { .. } => "cbor_wrong_type",
            DecodeError::Internal => "cbor_internal",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnsupportedTag { offset, tag } => {
                write!(f, "DAG-CBOR: unsupported tag {tag} at byte {offset}")
            }
            DecodeError::WrongType { expected } => write!(f, "DAG-CBOR: expected {expected}"),
            DecodeError::Internal => write!(f, "DAG-CBOR: internal decoder invariant broken"),
            other => write!(
                f,
                "DAG-CBOR: {} at byte {}",
                other.reason(),
                other.offset().unwrap_or(0)
            ),
        }
    }
}

impl DecodeError {
    /// The input offset the error refers to, where there is one.
    pub fn offset(&self) -> Option<usize> {
        match *self {
            DecodeError::UnexpectedEnd { offset }
            | DecodeError::LengthExceedsInput { offset }
            | DecodeError::IndefiniteLength { offset }
            | DecodeError::ReservedInfo { offset }
            | DecodeError::NonMinimalInteger { offset }
            | DecodeError::InvalidUtf8 { offset }
            | DecodeError::MapKeyNotText { offset }
            | DecodeError::MapKeyOrder { offset }
            | DecodeError::DuplicateMapKey { offset }
            | DecodeError::UnsupportedTag { offset, .. }
            | DecodeError::InvalidLink { offset }
            | DecodeError::Undefined { offset }
            | DecodeError::UnsupportedSimple { offset }
            | DecodeError::FloatNotDouble { offset }
            | DecodeError::NonFiniteFloat { offset }
            | DecodeError::NestingTooDeep { offset }
            | DecodeError::TrailingBytes { offset } => Some(offset),
            DecodeError::WrongType { .. } | DecodeError::Internal => None,
        }
    }
}

impl std::error::Error for DecodeError {}
