//! Sequential record reading from one segment file, with read-ahead.
//!
//! Owns: walking records front to back between two offsets with `pread` (positioned reads
//! through `FileExt::read_exact_at`: readers never share a file cursor, and sealed and
//! active segments are read the same way), classifying what it finds as a record, the
//! clean end, or a defect at an offset. Used by recovery (verifying checksums), by replay
//! (verifying checksums and copying payloads) and by the lazy index build (headers only).
//! Must not: write, truncate, or decide what a defect means (recovery cuts, replay fails).
//! Always checks: the header (format.rs), that the payload fits before the end offset,
//! that seqs increase, and, when asked, the checksum. Does not check: anything past the
//! end offset it was given.

use super::format::{FormatDefect, RECORD_HEADER_LEN, RecordHeader};
use crate::config::limits::EVENTLOG_READ_AHEAD_BYTES_MAX;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// What the next position of a segment holds.
#[derive(Debug)]
pub(crate) enum Scanned {
    /// A record whose header starts at `offset`.
    Record { header: RecordHeader, offset: u64 },
    /// The scan reached its end offset exactly at a record boundary.
    End,
    /// Bytes at `offset` are not a valid record.
    Defect { offset: u64, defect: FormatDefect },
}

/// Whether the scan verifies checksums and hands out payloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScanMode {
    /// Headers only: payloads are skipped unread (index building over sealed segments,
    /// whose records replay verifies when it reads them).
    HeadersOnly,
    /// Read and checksum every payload.
    Verify,
}

/// A forward cursor over the records of one segment file.
#[derive(Debug)]
pub(crate) struct RecordScanner {
    offset: u64,
    end: u64,
    prev_seq: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl RecordScanner {
    /// Scan from `offset` to `end`; every record's seq must exceed `prev_seq`.
    pub(crate) fn new(offset: u64, end: u64, prev_seq: u64) -> Self {
        RecordScanner {
            offset,
            end,
            prev_seq,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// Offset of the next record (the end of the valid prefix once a scan stops).
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Move the end (the active segment grows as records become durable).
    pub(crate) fn set_end(&mut self, end: u64) {
        self.end = end.max(self.offset);
    }

    /// Read the next record. With `ScanMode::Verify` the payload is checked and, when
    /// `payload` is given, copied into it (replacing its contents).
    pub(crate) fn next(
        &mut self,
        file: &File,
        mode: ScanMode,
        payload: Option<&mut Vec<u8>>,
    ) -> io::Result<Scanned> {
        let offset = self.offset;
        let remaining = self.end.saturating_sub(offset);
        if remaining == 0 {
            return Ok(Scanned::End);
        }
        let defect = |defect| Ok(Scanned::Defect { offset, defect });
        if remaining < RECORD_HEADER_LEN as u64 {
            return defect(FormatDefect::TruncatedHeader);
        }
        let header = match RecordHeader::decode(self.window(file, offset, RECORD_HEADER_LEN)?) {
            Ok(header) => header,
            Err(e) => return defect(e),
        };
        if header.seq.get() <= self.prev_seq {
            return defect(FormatDefect::SeqOutOfOrder(header.seq.get()));
        }
        if header.record_len() > remaining {
            return defect(FormatDefect::TruncatedPayload);
        }
        if mode == ScanMode::Verify {
            let payload_at = offset + RECORD_HEADER_LEN as u64;
            if let Err(e) = self.check_payload(file, &header, payload_at, payload)? {
                return defect(e);
            }
        }
        self.offset = offset + header.record_len();
        self.prev_seq = header.seq.get();
        Ok(Scanned::Record { header, offset })
    }

    fn check_payload(
        &mut self,
        file: &File,
        header: &RecordHeader,
        at: u64,
        out: Option<&mut Vec<u8>>,
    ) -> io::Result<Result<(), FormatDefect>> {
        let len = header.payload_len as usize;
        if len <= EVENTLOG_READ_AHEAD_BYTES_MAX {
            let bytes = self.window(file, at, len)?;
            let checked = header.check_payload(bytes);
            if let (Ok(()), Some(out)) = (checked, out) {
                out.clear();
                out.extend_from_slice(bytes);
            }
            return Ok(checked);
        }
        let mut scratch = Vec::new();
        let target = out.unwrap_or(&mut scratch);
        target.clear();
        target.resize(len, 0);
        file.read_exact_at(target, at)?;
        Ok(header.check_payload(target))
    }

    /// `len` bytes of the file at `at`, served from the read-ahead buffer (refilled with
    /// one pread of up to `EVENTLOG_READ_AHEAD_BYTES_MAX`, never past the end offset).
    /// Callers ask for at most the read-ahead size.
    fn window(&mut self, file: &File, at: u64, len: usize) -> io::Result<&[u8]> {
        let start_in_buf = at.checked_sub(self.buf_start).map(|d| d as usize);
        let hit = start_in_buf.filter(|&s| s.saturating_add(len) <= self.buf.len());
        let start = match hit {
            Some(start) => start,
            None => {
                let want = (self.end.saturating_sub(at) as usize)
                    .min(EVENTLOG_READ_AHEAD_BYTES_MAX)
                    .max(len);
                self.buf.resize(want, 0);
                file.read_exact_at(&mut self.buf, at)?;
                self.buf_start = at;
                0
            }
        };
        self.buf
            .get(start..start + len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read-ahead window"))
    }
}
