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
use super::replay::ReplayReply;
use super::ring::{Entry, Lookup};
use super::{ConsumerCell, Hub};
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
    let (reader, writer) = futures_lite::io::split(stream);
    let pong = RefCell::new(None);
    let mut session = Session {
        hub,
        cell,
        pong: &pong,
        writer,
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
            Lookup::Hit(entry) => self.send_live(entry).await,
            Lookup::Behind => self.replay_batch().await,
            Lookup::Ahead if ring_empty && log_has_next => self.replay_batch().await,
            Lookup::Ahead => {
                self.cell.replaying.set(false);
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

    async fn send_live(&mut self, entry: Entry) -> Result<(), Reason> {
        let seq = entry.frame.seq().get();
        if !entry.hidden && !self.hub.is_hidden(entry.frame.account_key()) {
            let parts = entry.frame.out().slices();
            self.write_message(&parts)
                .await
                .map_err(|e| write_reason(&e))?;
            self.hub.record_sent(entry.len as usize, false);
            self.cell.sent_seq.set(Some(seq));
        }
        self.cell.replaying.set(false);
        self.next = seq + 1;
        self.offset = Some(entry.start_offset + entry.len);
        Ok(())
    }

    async fn replay_batch(&mut self) -> Result<(), Reason> {
        self.cell.replaying.set(true);
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
        for record in records {
            if record.seq.get() < self.next {
                continue;
            }
            if self
                .hub
                .ring
                .borrow()
                .oldest_seq()
                .is_some_and(|oldest| oldest <= record.seq.get())
            {
                // The ring holds this seq: nothing visible lies between `next` and it.
                self.next = record.seq.get();
                return Ok(());
            }
            self.check_lag().await?;
            self.send_replayed(&record).await?;
        }
        Ok(())
    }

    async fn send_replayed(&mut self, record: &ReplayRecord) -> Result<(), Reason> {
        self.write_message(&[&record.payload])
            .await
            .map_err(|e| write_reason(&e))?;
        self.hub.record_sent(record.payload.len(), true);
        self.cell.sent_seq.set(Some(record.seq.get()));
        self.next = record.seq.get() + 1;
        if let Some(offset) = self.offset.as_mut() {
            *offset += record.payload.len() as u64;
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
