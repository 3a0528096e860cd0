//! The writer's io_uring: gathered writes at an offset (`IORING_OP_WRITEV`).
//!
//! Owns: the ring and the only `unsafe` of the writer (pushing submission entries that
//! point at caller memory). A run of records goes in one `io_uring_enter`: its writev
//! chunks (at most `IOV_MAX` iovecs each) linked in order, so a short write cancels the
//! chunks after it and what was written is always a prefix; the rest is then finished one
//! operation at a time. fdatasync is not submitted here: the kernel always hands
//! `IORING_OP_FSYNC` to an io-wq worker thread, and on the reference machine that hop cost
//! about 50 µs per group commit over a direct `fdatasync` (docs/specs/eventlog-format.md,
//! "Measurements"), so the writer calls `File::sync_data` itself.
//! Must not: return while an operation it submitted may still be running: every entry
//! pushed is reaped before `write` returns, except when the ring itself fails, in which
//! case it says so (`in_flight_unknown`) and the caller leaks the memory instead of
//! freeing it under the kernel.
//! Always checks: every completion's result (errors, short writes, zero-length writes).
//! Does not check: what the bytes are, or the offset (the writer owns the file layout).

#![allow(unsafe_code)]

use super::writer::WriteFailure;
use crate::config::limits::{EVENTLOG_URING_ENTRIES_MAX, EVENTLOG_WRITEV_SLICES_MAX};
use io_uring::{IoUring, opcode, squeue, types};
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;

/// `-ECANCELED`: a linked operation did not run because an earlier one fell short.
const ECANCELED: i32 = 125;
const EINTR: i32 = 4;
const EAGAIN: i32 = 11;
/// `io_uring_enter` with a full completion queue: reap, then enter again.
const EBUSY: i32 = 16;

/// A submitted operation whose completion has not been reaped yet would make returning
/// unsound; this marks the failures after which that cannot be ruled out.
fn ring_failure(op: &'static str, error: io::Error) -> WriteFailure {
    WriteFailure {
        op,
        error,
        in_flight_unknown: true,
    }
}

fn op_failure(op: &'static str, error: io::Error) -> WriteFailure {
    WriteFailure {
        op,
        error,
        in_flight_unknown: false,
    }
}

/// The writer thread's ring.
pub(crate) struct Ring {
    ring: IoUring,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ring")
    }
}

impl Ring {
    /// Set up a ring; fails with ENOSYS or EPERM where io_uring is unavailable or disabled.
    pub(crate) fn new() -> io::Result<Ring> {
        Ok(Ring {
            ring: IoUring::new(EVENTLOG_URING_ENTRIES_MAX)?,
        })
    }

    /// Write `slices` contiguously at `offset` (no sync: the caller fdatasyncs).
    pub(crate) fn write(
        &mut self,
        file: &File,
        offset: u64,
        slices: &[IoSlice<'_>],
    ) -> Result<(), WriteFailure> {
        let fd = types::Fd(file.as_raw_fd());
        let chunks: Vec<&[IoSlice<'_>]> = slices.chunks(EVENTLOG_WRITEV_SLICES_MAX).collect();
        if chunks.len() > EVENTLOG_URING_ENTRIES_MAX as usize {
            return self.finish_sequentially(fd, offset, slices, 0);
        }
        let mut entries = Vec::with_capacity(chunks.len());
        let mut at = offset;
        for (i, chunk) in chunks.iter().enumerate() {
            let entry = opcode::Writev::new(fd, chunk.as_ptr().cast(), chunk.len() as u32)
                .offset(at)
                .build()
                .user_data(i as u64);
            let linked = i + 1 < chunks.len();
            entries.push(if linked {
                entry.flags(squeue::Flags::IO_LINK)
            } else {
                entry
            });
            at += total_len(chunk);
        }
        let results = self.submit_all(&entries)?;
        let mut written = 0u64;
        for (chunk, result) in chunks.iter().zip(&results) {
            let expected = total_len(chunk);
            let done = u64::try_from(*result).unwrap_or(0).min(expected);
            written += done;
            if done < expected {
                return self.finish_sequentially(fd, offset, slices, written);
            }
        }
        Ok(())
    }

    /// Push `entries` and wait for all their completions; results in entry order.
    fn submit_all(&mut self, entries: &[squeue::Entry]) -> Result<Vec<i32>, WriteFailure> {
        {
            let mut sq = self.ring.submission();
            if sq.capacity() - sq.len() < entries.len() {
                return Err(op_failure(
                    "uring_push",
                    io::Error::other("submission queue full"),
                ));
            }
            // SAFETY: each entry points at an iovec array (a chunk of the caller's
            // `slices`) and the iovecs point at memory the caller keeps borrowed until this
            // function returns; it returns only after every pushed entry completed, or with
            // `in_flight_unknown`, after which the caller leaks that memory (never frees it).
            // The fd outlives the call because `file` is borrowed for its whole duration.
            unsafe { sq.push_multiple(entries) }
                .map_err(|_| op_failure("uring_push", io::Error::other("submission queue full")))?;
        }
        let mut results: Vec<Option<i32>> = vec![None; entries.len()];
        let mut pending = entries.len();
        while pending > 0 {
            match self.ring.submit_and_wait(pending) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(EINTR | EAGAIN | EBUSY)) => {}
                Err(e) => return Err(ring_failure("uring_enter", e)),
            }
            for cqe in self.ring.completion() {
                if let Some(slot @ None) = results.get_mut(cqe.user_data() as usize) {
                    *slot = Some(cqe.result());
                    pending -= 1;
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(-ECANCELED))
            .collect())
    }

    /// Complete a write that fell short (or is too long for one submission), one
    /// operation at a time, from `written` bytes on.
    fn finish_sequentially(
        &mut self,
        fd: types::Fd,
        offset: u64,
        slices: &[IoSlice<'_>],
        mut written: u64,
    ) -> Result<(), WriteFailure> {
        let total = total_len(slices);
        let mut rest: Vec<IoSlice<'_>> = slices.to_vec();
        let mut rest_view: &mut [IoSlice<'_>] = &mut rest;
        // Cannot panic: the amount is clamped to the total length.
        IoSlice::advance_slices(&mut rest_view, written.min(total) as usize);
        while written < total {
            let count = rest_view.len().min(EVENTLOG_WRITEV_SLICES_MAX);
            let entry = opcode::Writev::new(fd, rest_view.as_ptr().cast(), count as u32)
                .offset(offset + written)
                .build()
                .user_data(0);
            let results = self.submit_all(&[entry])?;
            match results.first().copied().unwrap_or(-ECANCELED) {
                r if r == -EINTR || r == -EAGAIN => continue,
                r if r < 0 => return Err(op_failure("writev", io::Error::from_raw_os_error(-r))),
                0 => return Err(op_failure("writev", io::ErrorKind::WriteZero.into())),
                r => {
                    // Cannot panic: the kernel never reports more than the iovecs hold.
                    let done = (r as u64).min(total - written);
                    written += done;
                    IoSlice::advance_slices(&mut rest_view, done as usize);
                }
            }
        }
        Ok(())
    }
}

fn total_len(slices: &[IoSlice<'_>]) -> u64 {
    slices.iter().map(|s| s.len() as u64).sum()
}
