//! TIDs (<https://atproto.com/specs/tid>): 13-character base32-sortable timestamp
//! identifiers, used as record keys and as repository revisions.
//!
//! Owns: [`Tid`], its encoding from and decoding to (microseconds, clock id). Must not:
//! read a clock or generate TIDs on its own (that needs time and state; callers pass the
//! parts to [`Tid::from_parts`]).
//!
//! Always checks: exactly [`TID_LENGTH`] characters from `234567abcdefghijklmnopqrstuvwxyz`
//! with a first character in `234567abcdefghij` (the spec's syntax rule: the value fits in
//! 64 bits). Because every TID has the same length and the alphabet is in ASCII order,
//! comparing TIDs as strings compares their integers, hence their timestamps.
//!
//! Does not check: that the top bit is 0. The spec's layout says it always is, but its
//! syntax rule (and the interop vectors) accept first characters up to `j`, which set it;
//! such TIDs decode to a timestamp of 2^53 microseconds or more (after year 2255).

use super::SyntaxError;

/// Length of every TID, in characters.
pub const TID_LENGTH: usize = 13;

const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";
const CLOCK_ID_BITS: u32 = 10;
const TIMESTAMP_BITS: u32 = 53;

/// A syntactically valid TID. Stored inline (no heap), so it is `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid {
    text: [u8; TID_LENGTH],
}

impl Tid {
    /// Checks `s` against the TID syntax.
    pub fn parse(s: &str) -> Result<Self, SyntaxError> {
        let text: [u8; TID_LENGTH] = s
            .as_bytes()
            .try_into()
            .map_err(|_| SyntaxError::Tid("not 13 characters"))?;
        let mut digits = text.iter().map(|&b| digit_value(b));
        match digits.next() {
            Some(Some(first)) if first < 16 => {}
            Some(Some(_)) => return Err(SyntaxError::Tid("first character above j")),
            _ => return Err(SyntaxError::Tid("not base32-sortable")),
        }
        if digits.any(|d| d.is_none()) {
            return Err(SyntaxError::Tid("not base32-sortable"));
        }
        Ok(Self { text })
    }

    /// Builds the TID of a microsecond timestamp and a clock id. Fails when the timestamp
    /// does not fit in 53 bits or the clock id in 10 bits.
    pub fn from_parts(timestamp_micros: u64, clock_id: u16) -> Result<Self, SyntaxError> {
        if timestamp_micros >> TIMESTAMP_BITS != 0 {
            return Err(SyntaxError::Tid("timestamp does not fit in 53 bits"));
        }
        if u64::from(clock_id) >> CLOCK_ID_BITS != 0 {
            return Err(SyntaxError::Tid("clock id does not fit in 10 bits"));
        }
        Ok(Self::from_u64(
            (timestamp_micros << CLOCK_ID_BITS) | u64::from(clock_id),
        ))
    }

    /// The TID as its 13 characters.
    pub fn as_str(&self) -> &str {
        // The bytes are ASCII by construction, so this never takes the fallback.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }

    /// The 64-bit integer the TID encodes.
    pub fn as_u64(&self) -> u64 {
        self.text.iter().fold(0u64, |n, &b| {
            (n << 5) | u64::from(digit_value(b).unwrap_or(0))
        })
    }

    /// Microseconds since the UNIX epoch: every bit above the clock id.
    pub fn timestamp_micros(&self) -> u64 {
        self.as_u64() >> CLOCK_ID_BITS
    }

    /// The 10-bit clock identifier (the low bits).
    pub fn clock_id(&self) -> u16 {
        // Masked to 10 bits, so the narrowing is lossless.
        (self.as_u64() & ((1 << CLOCK_ID_BITS) - 1)) as u16
    }

    fn from_u64(n: u64) -> Self {
        let mut text = [b'2'; TID_LENGTH];
        for (i, slot) in text.iter_mut().enumerate() {
            let shift = 5 * (TID_LENGTH - 1 - i);
            let digit = (n >> shift) & 0x1f;
            // `digit` is masked to 5 bits, so the lookup always hits.
            *slot = ALPHABET.get(digit as usize).copied().unwrap_or(b'2');
        }
        Self { text }
    }
}

impl_string_traits!(Tid);

fn digit_value(b: u8) -> Option<u8> {
    match b {
        b'2'..=b'7' => Some(b - b'2'),
        b'a'..=b'z' => Some(b - b'a' + 6),
        _ => None,
    }
}
