//! The event log's on-disk bytes (docs/specs/eventlog-format.md, format version 1).
//!
//! Owns: the segment file header, the record header, the tombstone file header and entry,
//! their little-endian layouts, CRC-32C, and segment file names. Everything here is a
//! pure function over bytes: no files, no clocks, no allocation on the decode paths.
//!
//! Must not: touch files or know about the writer, readers or retention.
//!
//! Always checks, on decode: length, magic, version, header length, reserved bits and
//! bytes being zero, seq range (1..=`EVENTLOG_SEQ_MAX`), payload length bound, and the
//! checksum (headers here; a record's payload through [`RecordHeader::check_payload`]).
//! Does not check: seq order across records (the scanners do) or what a payload means
//! (the log stores frames as opaque bytes).

use super::{AccountKey, RecordKind, Seq};
use crate::config::limits::EVENTLOG_RECORD_PAYLOAD_BYTES_MAX;

/// The format version this code writes and the only one it reads.
pub const FORMAT_VERSION: u16 = 1;
/// First bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"RLYEVSEG";
/// First bytes of the tombstone file.
pub const TOMBSTONE_FILE_MAGIC: [u8; 8] = *b"RLYEVTMB";
/// Length of a segment (or tombstone) file header; the first record starts here.
pub const FILE_HEADER_LEN: usize = 64;
/// First bytes of every record header.
pub const RECORD_MAGIC: [u8; 4] = *b"EVR1";
/// Length of a record header; the payload follows it directly.
pub const RECORD_HEADER_LEN: usize = 32;
/// First bytes of every tombstone entry.
pub const TOMBSTONE_MAGIC: [u8; 4] = *b"TMB1";
/// Length of one tombstone entry.
pub const TOMBSTONE_ENTRY_LEN: usize = 32;
/// Suffix of segment file names.
pub const SEGMENT_FILE_SUFFIX: &str = ".seg";
/// Digits of the zero-padded first seq in a segment file name.
pub const SEGMENT_NAME_DIGITS: usize = 20;

/// Bytes of a record header covered by its checksum (all but the checksum itself).
const RECORD_CHECKED_LEN: usize = RECORD_HEADER_LEN - 4;
/// Bytes of a file header covered by its checksum.
const FILE_HEADER_CHECKED_LEN: usize = FILE_HEADER_LEN - 4;
/// Tombstone entry flag: this entry reverses the account's takedown.
const TOMBSTONE_FLAG_REVERSED: u32 = 1;

/// Why bytes are not a valid header, record or entry of this format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatDefect {
    /// Fewer bytes than the fixed header needs (a torn header at the end of a file).
    TruncatedHeader,
    /// The header's payload runs past the end of the file (a torn payload).
    TruncatedPayload,
    /// The magic bytes are wrong (garbage, zeros, or a different file type).
    BadMagic,
    /// A format version this code does not read.
    UnsupportedVersion(u16),
    /// The header length field is not the one this version defines.
    BadHeaderLength(u16),
    /// Flags or reserved bytes that version 1 requires to be zero are not.
    ReservedNotZero,
    /// The stored checksum does not match the bytes.
    ChecksumMismatch,
    /// A payload longer than `EVENTLOG_RECORD_PAYLOAD_BYTES_MAX`.
    PayloadTooLarge(u32),
    /// A seq of 0 or above `EVENTLOG_SEQ_MAX`.
    InvalidSeq(u64),
    /// A record's seq is not above the previous record's (or below its segment's first seq).
    SeqOutOfOrder(u64),
}

impl FormatDefect {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            FormatDefect::TruncatedHeader => "truncated_header",
            FormatDefect::TruncatedPayload => "truncated_payload",
            FormatDefect::BadMagic => "bad_magic",
            FormatDefect::UnsupportedVersion(_) => "unsupported_version",
            FormatDefect::BadHeaderLength(_) => "bad_header_length",
            FormatDefect::ReservedNotZero => "reserved_not_zero",
            FormatDefect::ChecksumMismatch => "checksum_mismatch",
            FormatDefect::PayloadTooLarge(_) => "payload_too_large",
            FormatDefect::InvalidSeq(_) => "invalid_seq",
            FormatDefect::SeqOutOfOrder(_) => "seq_out_of_order",
        }
    }
}

impl std::fmt::Display for FormatDefect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatDefect::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            FormatDefect::BadHeaderLength(v) => write!(f, "bad header length {v}"),
            FormatDefect::PayloadTooLarge(v) => write!(f, "payload of {v} bytes is too large"),
            FormatDefect::InvalidSeq(v) => write!(f, "invalid seq {v}"),
            FormatDefect::SeqOutOfOrder(v) => write!(f, "seq {v} out of order"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for FormatDefect {}

// ---- CRC-32C (Castagnoli), slice-by-8 ----

/// Reflected Castagnoli polynomial (iSCSI, ext4, RocksDB use the same checksum).
const CRC32C_POLY: u32 = 0x82F6_3B78;

/// Eight 256-entry tables, computed at compile time (indexing in a const evaluation cannot
/// fail at run time).
const CRC32C_TABLES: [[u32; 256]; 8] = crc32c_tables();

const fn crc32c_tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut n = 0;
    while n < 256 {
        let mut crc = n as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ CRC32C_POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][n] = crc;
        n += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut n = 0;
        while n < 256 {
            let prev = tables[k - 1][n];
            tables[k][n] = (prev >> 8) ^ tables[0][(prev & 0xFF) as usize];
            n += 1;
        }
        k += 1;
    }
    tables
}

/// One table lookup; the index is a byte, so `get` never misses (and the bounds check
/// folds away).
#[inline(always)]
fn lookup(table: usize, byte: u32) -> u32 {
    CRC32C_TABLES
        .get(table)
        .and_then(|t| t.get((byte & 0xFF) as usize))
        .copied()
        .unwrap_or(0)
}

/// A running CRC-32C over bytes fed in pieces (a record's header fields, then each slice
/// of its payload).
#[derive(Clone, Copy, Debug)]
pub struct Crc32c(u32);

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    /// A fresh checksum.
    pub fn new() -> Self {
        Crc32c(!0)
    }

    /// Feed more bytes.
    pub fn update(mut self, bytes: &[u8]) -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(crc) = crc32c_sse42::update(self.0, bytes) {
            self.0 = crc;
            return self;
        }
        self.0 = crc32c_software(self.0, bytes);
        self
    }

    /// The checksum of everything fed so far.
    pub fn finish(self) -> u32 {
        !self.0
    }
}

/// Slice-by-8 over the running (non-inverted) state.
fn crc32c_software(state: u32, bytes: &[u8]) -> u32 {
    let mut crc = state;
    let (words, tail) = bytes.as_chunks::<8>();
    for &[b0, b1, b2, b3, b4, b5, b6, b7] in words {
        let lo = u32::from_le_bytes([b0, b1, b2, b3]) ^ crc;
        let hi = u32::from_le_bytes([b4, b5, b6, b7]);
        crc = lookup(7, lo)
            ^ lookup(6, lo >> 8)
            ^ lookup(5, lo >> 16)
            ^ lookup(4, lo >> 24)
            ^ lookup(3, hi)
            ^ lookup(2, hi >> 8)
            ^ lookup(1, hi >> 16)
            ^ lookup(0, hi >> 24);
    }
    for &byte in tail {
        crc = (crc >> 8) ^ lookup(0, crc ^ u32::from(byte));
    }
    crc
}

/// The SSE4.2 `crc32` instruction computes the same CRC-32C step (same polynomial, same
/// reflected state) about 4x faster than the tables; every appended byte goes through it
/// on the writer thread.
#[cfg(target_arch = "x86_64")]
mod crc32c_sse42 {
    #![allow(unsafe_code)]
    use std::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u64};

    #[target_feature(enable = "sse4.2")]
    fn update_sse42(state: u32, bytes: &[u8]) -> u32 {
        let (words, tail) = bytes.as_chunks::<8>();
        let wide = words.iter().fold(u64::from(state), |crc, word| {
            _mm_crc32_u64(crc, u64::from_le_bytes(*word))
        });
        // The instruction leaves the 32-bit state in the low half.
        tail.iter()
            .fold(wide as u32, |crc, &byte| _mm_crc32_u8(crc, byte))
    }

    /// The updated state, or `None` when the CPU lacks SSE4.2.
    pub(super) fn update(state: u32, bytes: &[u8]) -> Option<u32> {
        if std::arch::is_x86_feature_detected!("sse4.2") {
            // SAFETY: `update_sse42` only requires SSE4.2, detected just above.
            Some(unsafe { update_sse42(state, bytes) })
        } else {
            None
        }
    }
}

/// CRC-32C of one byte string.
pub fn crc32c(bytes: &[u8]) -> u32 {
    Crc32c::new().update(bytes).finish()
}

// ---- little-endian field access without indexing ----

/// Reads fixed-size fields front to back; every read is checked against the length.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], FormatDefect> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(FormatDefect::TruncatedHeader)?;
        self.0 = rest;
        Ok(*head)
    }
    fn u16(&mut self) -> Result<u16, FormatDefect> {
        self.take::<2>().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32, FormatDefect> {
        self.take::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, FormatDefect> {
        self.take::<8>().map(u64::from_le_bytes)
    }
}

/// Copy `parts`, in order, into a fixed array (the remaining bytes stay zero).
fn assemble<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    for (dst, src) in out.iter_mut().zip(parts.iter().flat_map(|p| p.iter())) {
        *dst = *src;
    }
    out
}

fn checked_prefix(bytes: &[u8], len: usize) -> Result<&[u8], FormatDefect> {
    bytes.get(..len).ok_or(FormatDefect::TruncatedHeader)
}

// ---- file headers (segments and the tombstone file) ----

/// Layout (64 bytes, little-endian): magic[8] | version u16 | header_len u16 | flags u32 |
/// first_seq u64 | created_unix_micros u64 | reserved[28] zero | crc32c u32 over 0..60.
fn encode_file_header(magic: &[u8; 8], first_seq: u64, created_unix_micros: u64) -> [u8; 64] {
    let mut out: [u8; FILE_HEADER_LEN] = assemble(&[
        magic,
        &FORMAT_VERSION.to_le_bytes(),
        &(FILE_HEADER_LEN as u16).to_le_bytes(),
        &0u32.to_le_bytes(),
        &first_seq.to_le_bytes(),
        &created_unix_micros.to_le_bytes(),
    ]);
    let crc = crc32c(out.get(..FILE_HEADER_CHECKED_LEN).unwrap_or_default());
    if let Some(slot) = out.get_mut(FILE_HEADER_CHECKED_LEN..) {
        slot.copy_from_slice(&crc.to_le_bytes());
    }
    out
}

/// Returns (first_seq field, created_unix_micros).
fn decode_file_header(bytes: &[u8], magic: &[u8; 8]) -> Result<(u64, u64), FormatDefect> {
    let header = checked_prefix(bytes, FILE_HEADER_LEN)?;
    let mut f = Fields(header);
    if &f.take::<8>()? != magic {
        return Err(FormatDefect::BadMagic);
    }
    let version = f.u16()?;
    let header_len = f.u16()?;
    let flags = f.u32()?;
    let first_seq = f.u64()?;
    let created = f.u64()?;
    let reserved = f.take::<28>()?;
    let stored_crc = f.u32()?;
    if crc32c(checked_prefix(header, FILE_HEADER_CHECKED_LEN)?) != stored_crc {
        return Err(FormatDefect::ChecksumMismatch);
    }
    if version != FORMAT_VERSION {
        return Err(FormatDefect::UnsupportedVersion(version));
    }
    if usize::from(header_len) != FILE_HEADER_LEN {
        return Err(FormatDefect::BadHeaderLength(header_len));
    }
    if flags != 0 || reserved.iter().any(|&b| b != 0) {
        return Err(FormatDefect::ReservedNotZero);
    }
    Ok((first_seq, created))
}

/// The header at the start of every segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Seq of the record the segment was created for: every record in the segment has a
    /// seq at least this, and below the next segment's first seq.
    pub first_seq: Seq,
    /// When the segment was created (microseconds since the Unix epoch). It is also the
    /// moment the previous segment was sealed, which retention by age relies on.
    pub created_unix_micros: u64,
}

impl SegmentHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        encode_file_header(
            &SEGMENT_MAGIC,
            self.first_seq.get(),
            self.created_unix_micros,
        )
    }

    /// Read a header from the start of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatDefect> {
        let (first_seq, created_unix_micros) = decode_file_header(bytes, &SEGMENT_MAGIC)?;
        let first_seq = Seq::new(first_seq).ok_or(FormatDefect::InvalidSeq(first_seq))?;
        Ok(SegmentHeader {
            first_seq,
            created_unix_micros,
        })
    }
}

/// The tombstone file's header bytes (its first-seq field is always 0).
pub fn encode_tombstone_file_header(created_unix_micros: u64) -> [u8; FILE_HEADER_LEN] {
    encode_file_header(&TOMBSTONE_FILE_MAGIC, 0, created_unix_micros)
}

/// Check the tombstone file's header; returns its creation time.
pub fn decode_tombstone_file_header(bytes: &[u8]) -> Result<u64, FormatDefect> {
    match decode_file_header(bytes, &TOMBSTONE_FILE_MAGIC)? {
        (0, created) => Ok(created),
        _ => Err(FormatDefect::ReservedNotZero),
    }
}

// ---- records ----

/// A decoded record header. Its payload (`payload_len` bytes) follows it in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Payload length in bytes (at most `EVENTLOG_RECORD_PAYLOAD_BYTES_MAX`).
    pub payload_len: u32,
    /// The record's relay seq.
    pub seq: Seq,
    /// The account the record belongs to (what takedowns match).
    pub account_key: AccountKey,
    /// The caller's record kind tag.
    pub kind: RecordKind,
    /// CRC-32C over header bytes 0..28 followed by the payload.
    pub crc: u32,
}

/// Layout (32 bytes, little-endian): magic[4] | payload_len u32 | seq u64 | account_key
/// u64 | flags u16 (zero in v1) | kind u16 | crc32c u32.
fn record_prefix(
    payload_len: u32,
    seq: Seq,
    account: AccountKey,
    kind: RecordKind,
) -> [u8; RECORD_CHECKED_LEN] {
    assemble(&[
        &RECORD_MAGIC,
        &payload_len.to_le_bytes(),
        &seq.get().to_le_bytes(),
        &account.get().to_le_bytes(),
        &0u16.to_le_bytes(),
        &kind.get().to_le_bytes(),
    ])
}

impl RecordHeader {
    /// Build the header bytes for a payload given as slices; `payload_len` must be their
    /// total length (the caller has checked it against the bound).
    pub fn encode<'a>(
        seq: Seq,
        account_key: AccountKey,
        kind: RecordKind,
        payload_len: u32,
        payload: impl IntoIterator<Item = &'a [u8]>,
    ) -> [u8; RECORD_HEADER_LEN] {
        let prefix = record_prefix(payload_len, seq, account_key, kind);
        let crc = payload
            .into_iter()
            .fold(Crc32c::new().update(&prefix), Crc32c::update)
            .finish();
        assemble(&[&prefix, &crc.to_le_bytes()])
    }

    /// Read a header from the start of `bytes` (its payload is checked separately).
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatDefect> {
        let mut f = Fields(checked_prefix(bytes, RECORD_HEADER_LEN)?);
        if f.take::<4>()? != RECORD_MAGIC {
            return Err(FormatDefect::BadMagic);
        }
        let payload_len = f.u32()?;
        let seq = f.u64()?;
        let account_key = AccountKey::new(f.u64()?);
        let flags = f.u16()?;
        let kind = RecordKind::new(f.u16()?);
        let crc = f.u32()?;
        if flags != 0 {
            return Err(FormatDefect::ReservedNotZero);
        }
        if payload_len > EVENTLOG_RECORD_PAYLOAD_BYTES_MAX {
            return Err(FormatDefect::PayloadTooLarge(payload_len));
        }
        let seq = Seq::new(seq).ok_or(FormatDefect::InvalidSeq(seq))?;
        Ok(RecordHeader {
            payload_len,
            seq,
            account_key,
            kind,
            crc,
        })
    }

    /// Header plus payload length in bytes.
    pub fn record_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + u64::from(self.payload_len)
    }

    /// Verify the payload against the header's checksum.
    pub fn check_payload(&self, payload: &[u8]) -> Result<(), FormatDefect> {
        if payload.len() as u64 != u64::from(self.payload_len) {
            return Err(FormatDefect::TruncatedPayload);
        }
        let prefix = record_prefix(self.payload_len, self.seq, self.account_key, self.kind);
        match Crc32c::new().update(&prefix).update(payload).finish() == self.crc {
            true => Ok(()),
            false => Err(FormatDefect::ChecksumMismatch),
        }
    }
}

/// Offset of the first occurrence of [`RECORD_MAGIC`] in `window`, if any (the salvage
/// scan looks for records after a cut).
pub fn find_record_magic(window: &[u8]) -> Option<usize> {
    window
        .windows(RECORD_MAGIC.len())
        .position(|w| w == RECORD_MAGIC)
}

// ---- tombstones ----

/// One entry of the tombstone file: a takedown of an account, or its reversal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TombstoneEntry {
    /// The account taken down (or restored).
    pub account_key: AccountKey,
    /// The relay seq at which the takedown (or reversal) took effect.
    pub seq: Seq,
    /// True when this entry reverses an earlier takedown.
    pub reversed: bool,
}

impl TombstoneEntry {
    /// Layout (32 bytes, little-endian): magic[4] | flags u32 (bit 0 = reversed) |
    /// account_key u64 | seq u64 | reserved u32 zero | crc32c u32 over 0..28.
    pub fn encode(&self) -> [u8; TOMBSTONE_ENTRY_LEN] {
        let flags = if self.reversed {
            TOMBSTONE_FLAG_REVERSED
        } else {
            0
        };
        let body: [u8; TOMBSTONE_ENTRY_LEN - 4] = assemble(&[
            &TOMBSTONE_MAGIC,
            &flags.to_le_bytes(),
            &self.account_key.get().to_le_bytes(),
            &self.seq.get().to_le_bytes(),
            &0u32.to_le_bytes(),
        ]);
        assemble(&[&body, &crc32c(&body).to_le_bytes()])
    }

    /// Read one entry from the start of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatDefect> {
        let entry = checked_prefix(bytes, TOMBSTONE_ENTRY_LEN)?;
        let mut f = Fields(entry);
        if f.take::<4>()? != TOMBSTONE_MAGIC {
            return Err(FormatDefect::BadMagic);
        }
        let flags = f.u32()?;
        let account_key = AccountKey::new(f.u64()?);
        let seq = f.u64()?;
        let reserved = f.u32()?;
        let stored_crc = f.u32()?;
        if crc32c(checked_prefix(entry, TOMBSTONE_ENTRY_LEN - 4)?) != stored_crc {
            return Err(FormatDefect::ChecksumMismatch);
        }
        if flags & !TOMBSTONE_FLAG_REVERSED != 0 || reserved != 0 {
            return Err(FormatDefect::ReservedNotZero);
        }
        let seq = Seq::new(seq).ok_or(FormatDefect::InvalidSeq(seq))?;
        Ok(TombstoneEntry {
            account_key,
            seq,
            reversed: flags & TOMBSTONE_FLAG_REVERSED != 0,
        })
    }
}

// ---- file names ----

/// `<first_seq zero-padded to 20 digits>.seg`: names sort in seq order.
pub fn segment_file_name(first_seq: Seq) -> String {
    format!(
        "{:0width$}{SEGMENT_FILE_SUFFIX}",
        first_seq.get(),
        width = SEGMENT_NAME_DIGITS
    )
}

/// The first seq a segment file name carries, or `None` for any other name.
pub fn parse_segment_file_name(name: &str) -> Option<Seq> {
    let digits = name.strip_suffix(SEGMENT_FILE_SUFFIX)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Seq::new(digits.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(v: u64) -> Seq {
        Seq::new(v).unwrap()
    }

    #[test]
    fn crc32c_known_vectors() {
        // RFC 3720 B.4 and the common check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn crc32c_hardware_and_tables_agree() {
        let data: Vec<u8> = (0..4099u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [0, 1, 7, 8, 9, 63, 64, 65, 4099] {
            let expected = !crc32c_software(!0, &data[..len]);
            assert_eq!(crc32c(&data[..len]), expected, "len {len}");
        }
        assert_eq!(!crc32c_software(!0, b"123456789"), 0xE306_9283);
    }

    #[test]
    fn crc32c_pieces_equal_whole() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let (a, b) = data.split_at(split);
            assert_eq!(Crc32c::new().update(a).update(b).finish(), crc32c(&data));
        }
    }

    #[test]
    fn segment_header_round_trip_and_defects() {
        let header = SegmentHeader {
            first_seq: seq(42),
            created_unix_micros: 1_700_000_000_000_000,
        };
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        assert_eq!(
            SegmentHeader::decode(&bytes[..63]),
            Err(FormatDefect::TruncatedHeader)
        );
        for i in 0..FILE_HEADER_LEN {
            let mut bad = bytes;
            bad[i] ^= 0x01;
            assert!(SegmentHeader::decode(&bad).is_err(), "flip at {i} accepted");
        }
        assert_eq!(
            decode_tombstone_file_header(&bytes),
            Err(FormatDefect::BadMagic)
        );
        let tomb = encode_tombstone_file_header(5);
        assert_eq!(decode_tombstone_file_header(&tomb), Ok(5));
    }

    #[test]
    fn record_header_round_trip_and_payload_check() {
        let parts: [&[u8]; 3] = [b"prefix", &7u64.to_be_bytes(), b"suffix"];
        let len = parts.iter().map(|p| p.len()).sum::<usize>() as u32;
        let bytes =
            RecordHeader::encode(seq(7), AccountKey::new(9), RecordKind::new(3), len, parts);
        let header = RecordHeader::decode(&bytes).unwrap();
        assert_eq!(header.seq, seq(7));
        assert_eq!(header.account_key, AccountKey::new(9));
        assert_eq!(header.kind, RecordKind::new(3));
        assert_eq!(header.record_len(), 32 + u64::from(len));
        let payload = parts.concat();
        assert_eq!(header.check_payload(&payload), Ok(()));
        let mut bad = payload.clone();
        bad[3] ^= 0x80;
        assert_eq!(
            header.check_payload(&bad),
            Err(FormatDefect::ChecksumMismatch)
        );
        assert_eq!(
            header.check_payload(&payload[1..]),
            Err(FormatDefect::TruncatedPayload)
        );
    }

    #[test]
    fn record_header_rejections() {
        let good = RecordHeader::encode(seq(1), AccountKey::new(0), RecordKind::new(0), 0, []);
        assert!(RecordHeader::decode(&good).is_ok());
        assert_eq!(
            RecordHeader::decode(&good[..31]),
            Err(FormatDefect::TruncatedHeader)
        );
        assert_eq!(
            RecordHeader::decode(&[0u8; 32]),
            Err(FormatDefect::BadMagic)
        );
        let mut flags = good;
        flags[24] = 1;
        assert_eq!(
            RecordHeader::decode(&flags),
            Err(FormatDefect::ReservedNotZero)
        );
        let mut zero_seq = good;
        zero_seq[8..16].fill(0);
        assert_eq!(
            RecordHeader::decode(&zero_seq),
            Err(FormatDefect::InvalidSeq(0))
        );
        let mut huge = good;
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            RecordHeader::decode(&huge),
            Err(FormatDefect::PayloadTooLarge(u32::MAX))
        );
    }

    #[test]
    fn tombstone_entry_round_trip_and_flips() {
        for reversed in [false, true] {
            let entry = TombstoneEntry {
                account_key: AccountKey::new(77),
                seq: seq(5),
                reversed,
            };
            let bytes = entry.encode();
            assert_eq!(TombstoneEntry::decode(&bytes), Ok(entry));
            for i in 0..TOMBSTONE_ENTRY_LEN {
                let mut bad = bytes;
                bad[i] ^= 0x10;
                assert!(
                    TombstoneEntry::decode(&bad).is_err(),
                    "flip at {i} accepted"
                );
            }
        }
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_file_name(seq(1)), "00000000000000000001.seg");
        assert_eq!(
            parse_segment_file_name("00000000000000000001.seg"),
            Some(seq(1))
        );
        assert_eq!(parse_segment_file_name("00000000000000000000.seg"), None);
        assert_eq!(parse_segment_file_name("0000000000000000001.seg"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000a.seg"), None);
        assert_eq!(
            parse_segment_file_name("00000000000000000001.seg.tmp"),
            None
        );
        assert_eq!(parse_segment_file_name("+0000000000000000001.seg"), None);
    }

    #[test]
    fn magic_search() {
        assert_eq!(find_record_magic(b"xxEVR1yy"), Some(2));
        assert_eq!(find_record_magic(b"EVR"), None);
    }
}
