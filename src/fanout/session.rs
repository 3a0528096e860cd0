//! One consumer's session: the start decided by the cursor, then a loop that sends the
//! next seq from the live ring when the ring holds it, or replays it from the log when it
//! does not, or waits for the next publish when the consumer is caught up.
//!
//! Owns: the consumer's position (`next`, the smallest seq it still needs), its stream
//! offset for the lag bound, and the socket. Must not: block the executor (log reads go to
//! the replay pool), or copy live frame bytes.
//!
//! No gap, no duplicate at the crossover: `next` only grows, every frame sent has seq ≥
//! `next`, and the ring is used only when its oldest frame is ≤ `next` (so nothing between
//! `next` and the ring's frame is missing); replay stops at the first record the ring
//! holds. Frames published while a replay batch is in flight just land in the ring.

use super::cursor::{Start, start_for};
use super::gather::{GATHER_PARTS_MAX, write_gathered};
use super::replay::ReplayReply;
use super::ring::{Entry, Lookup};
use super::{ConsumerCell, Hub};
use crate::config::limits::{FANOUT_WRITE_BATCH_BYTES_MAX, FANOUT_WRITE_BATCH_FRAMES_MAX};
use crate::eventlog::{ReplayRecord, Seq};
use crate::frame::event::{ErrorFrameOwned, InfoEventOwned};
use crate::frame::ws::{
    Opcode, Role, WS_HEADER_BYTES_MAX, apply_mask, encode_header, parse_header,
};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use glommio::net::TcpStream;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// How long a consumer waits before asking the log again when a replay batch came back
/// empty although the log held more (a record still becoming readable).
const EMPTY_BATCH_RETRY: Duration = Duration::from_millis(20);

/// Why a session ended (the `reason` label of `relay_fanout_disconnects_total`).
pub(crate) type Reason = &'static str;

/// The payload of the client's latest ping, until the session answers it (RFC 6455 lets
/// a server answer only the most recent ping).
type PendingPong = RefCell<Option<Vec<u8>>>;

struct Session<'a> {
    hub: &'a Hub,
    cell: &'a ConsumerCell,
    pong: &'a PendingPong,
    writer: WriteHalf<TcpStream>,
    /// The socket `writer` writes to, for gathered writes (`gather`).
    fd: RawFd,
    /// Live frames of the current gathered write (reused: no allocation per write).
    batch: Vec<Entry>,
    /// The smallest seq the consumer still needs.
    next: u64,
    /// Stream offset of `next` once the consumer has been live (None before).
    offset: Option<u64>,
}

/// Run the session until the consumer leaves or is disconnected.
pub(crate) async fn run(
    hub: &Hub,
    stream: TcpStream,
    cursor: Option<u64>,
    cell: &ConsumerCell,
) -> Reason {
    let _ = stream.set_write_timeout(Some(hub.config.write_timeout));
    let fd = stream.as_raw_fd();
    let (reader, writer) = futures_lite::io::split(stream);
    let pong = RefCell::new(None);
    let mut session = Session {
        hub,
        cell,
        pong: &pong,
        writer,
        fd,
        batch: Vec::with_capacity(FANOUT_WRITE_BATCH_FRAMES_MAX),
        next: 0,
        offset: None,
    };
    let reason =
        futures_lite::future::or(session.stream(cursor), watch_client(reader, &pong)).await;
    let _ = session.writer.close().await;
    reason
}

/// Read what the client sends (nothing but control frames is expected) until it closes;
/// a ping is handed to the session to answer between messages.
async fn watch_client(mut reader: ReadHalf<TcpStream>, pong: &PendingPong) -> Reason {
    let mut buf = vec![0u8; 4096];
    let mut held = 0usize;
    loop {
        let read = match reader.read(&mut buf[held..]).await {
            Ok(0) => return "client_closed",
            Ok(n) => n,
            Err(_) => return "read_error",
        };
        held += read;
        // Discard whole frames; a close frame ends the session.
        loop {
            match parse_header(&buf[..held], Role::Server, 125) {
                Ok(Some(header)) => {
                    if header.opcode == Opcode::Close {
                        return "client_closed";
                    }
                    let total = header.header_len + header.payload_len as usize;
                    if total > held {
                        break;
                    }
                    if header.opcode == Opcode::Ping {
                        let mut payload = buf[header.header_len..total].to_vec();
                        if let Some(key) = header.mask {
                            apply_mask(&mut payload, key, 0);
                        }
                        *pong.borrow_mut() = Some(payload);
                        // Let the session (polled first in this task) see the ping now.
                        glommio::executor().yield_now().await;
                    }
                    buf.copy_within(total..held, 0);
                    held -= total;
                }
                Ok(None) => break,
                Err(_) => return "client_protocol_error",
            }
        }
    }
}

/// Ready once the client has sent a ping (the reader yields after storing it, so this is
/// polled again without a waker of its own).
struct PongPending<'a>(&'a PendingPong);

impl Future for PongPending<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.0.borrow().is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

fn write_reason(error: &io::Error) -> Reason {
    if error.kind() == io::ErrorKind::TimedOut {
        "write_timeout"
    } else {
        "write_error"
    }
}

impl Session<'_> {
    async fn stream(&mut self, cursor: Option<u64>) -> Reason {
        let hub = self.hub;
        let latest = hub
            .log
            .durable_seq()
            .max(hub.ring.borrow().head_seq().and_then(Seq::new));
        match start_for(cursor, hub.log.oldest_seq(), latest) {
            Start::Future => {
                let _ = self
                    .send_error("FutureCursor", "cursor is ahead of the latest seq")
                    .await;
                return "future_cursor";
            }
            Start::Outdated { from } => {
                let info = InfoEventOwned {
                    name: "OutdatedCursor".to_owned(),
                    message: Some("cursor is older than the replay window".to_owned()),
                };
                let mut frame = Vec::new();
                info.encode_frame(&mut frame);
                if let Err(e) = self.write_message(&[&frame]).await {
                    return write_reason(&e);
                }
                self.next = from;
            }
            Start::Replay { from } => self.next = from,
            Start::Live => self.next = latest.map_or(1, |s| s.get() + 1),
        }
        loop {
            if let Err(reason) = self.step().await {
                return reason;
            }
        }
    }

    /// Send (or wait for) what comes next.
    async fn step(&mut self) -> Result<(), Reason> {
        let pong = self.pong.borrow_mut().take();
        if let Some(payload) = pong {
            self.write_frame(Opcode::Pong, &[&payload])
                .await
                .map_err(|e| write_reason(&e))?;
        }
        self.check_lag().await?;
        let lookup = self.hub.ring.borrow().lookup(self.next);
        let ring_empty = self.hub.ring.borrow().is_empty();
        let log_has_next = self
            .hub
            .log
            .durable_seq()
            .is_some_and(|d| d.get() >= self.next);
        match lookup {
            Lookup::Hit => self.send_live_run().await,
            Lookup::Behind => self.replay_batch().await,
            Lookup::Ahead if ring_empty && log_has_next => self.replay_batch().await,
            Lookup::Ahead => {
                self.cell.set_replaying(false);
                let pinged = PongPending(self.pong);
                futures_lite::future::or(self.hub.changed(), pinged).await;
                Ok(())
            }
        }
    }

    async fn check_lag(&mut self) -> Result<(), Reason> {
        let Some(offset) = self.offset else {
            return Ok(());
        };
        let lag = self.hub.ring.borrow().end_offset().saturating_sub(offset);
        if lag <= self.hub.config.consumer_lag_bytes_max {
            return Ok(());
        }
        let _ = self
            .send_error("ConsumerTooSlow", "fell too far behind the live stream")
            .await;
        Err("consumer_too_slow")
    }

    /// Send the ring's frames from `next` on in one gathered write (one frame when the
    /// consumer is caught up, up to `FANOUT_WRITE_BATCH_FRAMES_MAX` when it is behind).
    async fn send_live_run(&mut self) -> Result<(), Reason> {
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        self.hub.ring.borrow().run_from(
            self.next,
            FANOUT_WRITE_BATCH_FRAMES_MAX,
            FANOUT_WRITE_BATCH_BYTES_MAX,
            &mut batch,
        );
        let result = self.write_live(&batch).await;
        batch.clear();
        self.batch = batch;
        result
    }

    async fn write_live(&mut self, batch: &[Entry]) -> Result<(), Reason> {
        let mut headers = Headers::new();
        for entry in batch {
            let visible = !entry.hidden && !self.hub.is_hidden(entry.frame.account_key());
            headers.push(visible.then_some(entry.len));
        }
        let parts = batch
            .iter()
            .zip(headers.iter())
            .filter_map(|(entry, header)| Some((header?, entry.frame.out().slices())))
            .flat_map(|(header, frame)| std::iter::once(header).chain(frame));
        self.write_parts(parts).await?;
        for (entry, header) in batch.iter().zip(headers.iter()) {
            let seq = entry.frame.seq().get();
            if header.is_some() {
                self.hub.record_sent(entry.len as usize, false);
                self.cell.record_sent(seq, entry.len);
            }
            self.next = seq + 1;
            self.offset = Some(entry.start_offset + entry.len);
        }
        self.cell.set_replaying(false);
        Ok(())
    }

    /// One gathered write of `parts` (at most `GATHER_PARTS_MAX`; the callers' batches
    /// stay below it); nothing to send is no write.
    async fn write_parts<'p>(
        &mut self,
        parts: impl Iterator<Item = &'p [u8]>,
    ) -> Result<(), Reason> {
        let mut slots: [&[u8]; GATHER_PARTS_MAX] = [&[]; GATHER_PARTS_MAX];
        let mut used = 0;
        for (slot, part) in slots.iter_mut().zip(parts) {
            *slot = part;
            used += 1;
        }
        if used == 0 {
            return Ok(());
        }
        write_gathered(
            self.fd,
            &mut self.writer,
            slots.get(..used).unwrap_or_default(),
        )
        .await
        .map_err(|e| write_reason(&e))
    }

    async fn replay_batch(&mut self) -> Result<(), Reason> {
        self.cell.set_replaying(true);
        let records = match self.hub.pool.request(self.next).await {
            ReplayReply::Batch { records, next } => {
                if records.is_empty() {
                    if next <= self.next {
                        glommio::timer::sleep(EMPTY_BATCH_RETRY).await;
                    }
                    // Past records of taken-down accounts the log skipped.
                    self.next = self.next.max(next);
                    return Ok(());
                }
                records
            }
            ReplayReply::Outdated => {
                let _ = self
                    .send_error("ConsumerTooSlow", "fell out of the replay window")
                    .await;
                return Err("consumer_too_slow");
            }
            ReplayReply::Failed(reason) => return Err(reason),
        };
        let mut rest = records.as_slice();
        while !rest.is_empty() {
            let ring_oldest = self.hub.ring.borrow().oldest_seq();
            let (skip, run, crossed) = replay_run(rest, self.next, ring_oldest);
            let sending = rest.get(skip..skip + run).unwrap_or_default();
            rest = rest.get(skip + run..).unwrap_or_default();
            if !sending.is_empty() {
                self.check_lag().await?;
                self.send_replayed_run(sending).await?;
            }
            if let Some(seq) = crossed {
                // The ring holds this seq: nothing visible lies between `next` and it.
                self.next = seq;
                return Ok(());
            }
        }
        Ok(())
    }

    /// Replayed records in one gathered write.
    async fn send_replayed_run(&mut self, run: &[ReplayRecord]) -> Result<(), Reason> {
        let mut headers = Headers::new();
        for record in run {
            headers.push(Some(record.payload.len() as u64));
        }
        let parts = run
            .iter()
            .zip(headers.iter())
            .filter_map(|(record, header)| Some([header?, record.payload.as_slice()]))
            .flatten();
        self.write_parts(parts).await?;
        for (record, _) in run.iter().zip(headers.iter()) {
            self.hub.record_sent(record.payload.len(), true);
            self.cell
                .record_sent(record.seq.get(), record.payload.len() as u64);
            self.next = record.seq.get() + 1;
            if let Some(offset) = self.offset.as_mut() {
                *offset += record.payload.len() as u64;
            }
        }
        Ok(())
    }

    async fn send_error(&mut self, error: &str, message: &str) -> io::Result<()> {
        let body = ErrorFrameOwned {
            error: error.to_owned(),
            message: Some(message.to_owned()),
        };
        let mut frame = Vec::new();
        body.encode_frame(&mut frame);
        self.write_message(&[&frame]).await
    }

    /// One binary message: the header, then each part as it is (no concatenation).
    async fn write_message(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        self.write_frame(Opcode::Binary, parts).await
    }

    async fn write_frame(&mut self, opcode: Opcode, parts: &[&[u8]]) -> io::Result<()> {
        let len: usize = parts.iter().map(|part| part.len()).sum();
        let mut header = [0u8; WS_HEADER_BYTES_MAX];
        let header_len = encode_header(true, opcode, len as u64, None, &mut header);
        self.writer.write_all(&header[..header_len]).await?;
        for part in parts.iter().filter(|part| !part.is_empty()) {
            self.writer.write_all(part).await?;
        }
        Ok(())
    }
}

/// Where the next gathered replay write starts and ends in `records`: `skip` records
/// already sent (below `next`), then `run` records to send (at most
/// `FANOUT_WRITE_BATCH_FRAMES_MAX` frames and `FANOUT_WRITE_BATCH_BYTES_MAX` bytes, the
/// first always), and the seq of the first record the live ring holds if the run stopped
/// there (the session switches to the ring at it).
fn replay_run(
    records: &[ReplayRecord],
    next: u64,
    ring_oldest: Option<u64>,
) -> (usize, usize, Option<u64>) {
    let skip = records
        .iter()
        .take_while(|record| record.seq.get() < next)
        .count();
    let mut run = 0;
    let mut bytes = 0usize;
    for record in records.iter().skip(skip) {
        let seq = record.seq.get();
        if ring_oldest.is_some_and(|oldest| oldest <= seq) {
            return (skip, run, Some(seq));
        }
        let full = run >= FANOUT_WRITE_BATCH_FRAMES_MAX
            || bytes + record.payload.len() > FANOUT_WRITE_BATCH_BYTES_MAX;
        if run > 0 && full {
            break;
        }
        bytes += record.payload.len();
        run += 1;
    }
    (skip, run, None)
}

/// The WebSocket headers of one gathered write, on the stack; `None` marks a frame that
/// is skipped (its account is hidden).
struct Headers {
    bytes: [[u8; WS_HEADER_BYTES_MAX]; FANOUT_WRITE_BATCH_FRAMES_MAX],
    lens: [Option<usize>; FANOUT_WRITE_BATCH_FRAMES_MAX],
    count: usize,
}

impl Headers {
    fn new() -> Self {
        Headers {
            bytes: [[0; WS_HEADER_BYTES_MAX]; FANOUT_WRITE_BATCH_FRAMES_MAX],
            lens: [None; FANOUT_WRITE_BATCH_FRAMES_MAX],
            count: 0,
        }
    }

    /// The header of the next frame (`None`: the frame is skipped). Past the capacity the
    /// frame is left out of this write (the callers' batches never get there).
    fn push(&mut self, payload_len: Option<u64>) {
        let (Some(bytes), Some(len)) = (
            self.bytes.get_mut(self.count),
            self.lens.get_mut(self.count),
        ) else {
            return;
        };
        *len = payload_len.map(|payload| encode_header(true, Opcode::Binary, payload, None, bytes));
        self.count += 1;
    }

    fn iter(&self) -> impl Iterator<Item = Option<&[u8]>> {
        self.bytes
            .iter()
            .zip(self.lens.iter())
            .take(self.count)
            .map(|(bytes, len)| len.map(|len| bytes.get(..len).unwrap_or_default()))
    }
}
