//! Every bound of the relay, named `*_max` with the unit last, grouped by the module
//! that enforces it (modules in alphabetical order).
//!
//! A bound lives here, not beside its user, so that the whole budget can be read in
//! one place. Nothing here is tunable at run time.

// identity

/// Largest decoded key encoding accepted from a DID document or a `did:key`: a 2-byte
/// multicodec varint (0x1200, p256-pub) plus a 65-byte uncompressed SEC1 point.
/// Base58 decoding writes into a fixed buffer of this size, so an oversized or hostile
/// string is rejected after O(this) work instead of being decoded in full.
pub const IDENTITY_KEY_DECODED_BYTES_MAX: usize = 67;
