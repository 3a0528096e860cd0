//! Unsigned LEB128 varints as multiformats and CAR use them.
//!
//! Owns: decoding with the multiformats rules (at most 9 bytes, minimal form) and
//! encoding. Must not: allocate.

/// Most bytes a multiformats varint may take (63 bits of value).
const VARINT_BYTES_MAX: usize = 9;

/// Why a varint could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VarintError {
    /// The input ended inside the varint.
    UnexpectedEnd,
    /// More than 9 bytes.
    TooLong,
    /// A trailing zero byte: not the shortest form.
    NotMinimal,
}

impl VarintError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            VarintError::UnexpectedEnd => "varint_unexpected_end",
            VarintError::TooLong => "varint_too_long",
            VarintError::NotMinimal => "varint_not_minimal",
        }
    }
}

impl std::fmt::Display for VarintError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for VarintError {}

/// Read a varint from the start of `input`; returns the value and the bytes used.
pub fn read_varint(input: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (index, byte) in input.iter().take(VARINT_BYTES_MAX).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            if *byte == 0 && index > 0 {
                return Err(VarintError::NotMinimal);
            }
            return Ok((value, index + 1));
        }
    }
    if input.len() >= VARINT_BYTES_MAX {
        Err(VarintError::TooLong)
    } else {
        Err(VarintError::UnexpectedEnd)
    }
}

/// Append the varint form of `value`.
pub fn write_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_forms() {
        for value in [
            0u64,
            1,
            127,
            128,
            300,
            0x1200,
            u32::MAX as u64,
            (1 << 63) - 1,
        ] {
            let mut out = Vec::new();
            write_varint(value, &mut out);
            assert_eq!(read_varint(&out), Ok((value, out.len())));
        }
        assert_eq!(read_varint(&[0x80, 0x00]), Err(VarintError::NotMinimal));
        assert_eq!(read_varint(&[0x80]), Err(VarintError::UnexpectedEnd));
        assert_eq!(read_varint(&[0xff; 10]), Err(VarintError::TooLong));
    }
}
