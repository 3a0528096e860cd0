//! Reading an upstream WebSocket stream so that each binary message's payload lands
//! straight in a shared-memory frame buffer, sans-IO.
//!
//! Owns: the read state of one upstream connection — where the next socket read must
//! land (the small header buffer, a control-frame buffer, or the reserved frame slot) and
//! what a completed read produced.
//! Must not: own the socket, decode the firehose frame (that is `frame`), or wait: when the
//! frame buffer is full it reports backpressure and the caller stops reading the socket.
//! Always checks: every header (`frame::ws::parse_header`, client role), payload length
//! against `FRAME_SIZE_BYTES_MAX` before reserving, text frames (refused: firehose frames
//! are binary), fragmented messages (refused, see below).
//! Does not: reassemble fragmented messages. Firehose servers send each event as one
//! binary frame; reassembly would need a copy into a second slot, so a fragmented message
//! is a protocol error with its own reason (`upstream_fragmented_message`), and the
//! connection is dropped and retried.
//!
//! Reads are exact: 2 header bytes, then the extended length, then exactly the payload
//! into a slot reserved at the declared length. No byte of a frame is read twice or moved.

use crate::config::limits::FRAME_SIZE_BYTES_MAX;
use crate::frame::ws::{self, Header, Opcode, Role, WsError};
use crate::runtime::frames::{FrameBufferError, FrameHandle, FrameWriter, WriteSlot};
use std::fmt;

/// Largest control-frame payload (RFC 6455).
const CONTROL_PAYLOAD_BYTES_MAX: usize = 125;

/// What a completed read produced.
#[derive(Debug)]
pub enum Incoming {
    /// A whole binary message: one firehose frame, in the frame buffer.
    Frame(FrameHandle),
    /// A ping; answer with a pong carrying this payload.
    Ping(ControlPayload),
    /// A pong (keep-alive answer).
    Pong,
    /// The peer closes, with its status code if it sent one.
    Close(Option<u16>),
}

/// A control frame's payload (at most 125 bytes), held inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlPayload {
    bytes: [u8; CONTROL_PAYLOAD_BYTES_MAX],
    len: usize,
}

impl ControlPayload {
    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// Why the connection must be dropped (or, for backpressure, paused).
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// The peer broke the WebSocket protocol.
    Protocol(WsError),
    /// A text message: firehose frames are binary.
    TextMessage,
    /// A fragmented message (see the module doc).
    FragmentedMessage,
    /// An empty binary message: no firehose frame is empty.
    EmptyMessage,
    /// The frame buffer has no free segment: stop reading, poll reclaim, retry `buffer`.
    Backpressure,
    /// Another frame-buffer failure.
    FrameBuffer(FrameBufferError),
    /// `advance` was told about more bytes than the buffer it handed out.
    Overrun,
}

impl ReadError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            ReadError::Protocol(e) => e.reason(),
            ReadError::TextMessage => "upstream_text_message",
            ReadError::FragmentedMessage => "upstream_fragmented_message",
            ReadError::EmptyMessage => "upstream_empty_message",
            ReadError::Backpressure => "frame_buffer_backpressure",
            ReadError::FrameBuffer(e) => e.reason(),
            ReadError::Overrun => "upstream_read_overrun",
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ReadError {}

#[derive(Debug)]
enum State {
    /// Collecting header bytes; `need` is how many are known to be needed so far.
    Header { have: usize, need: usize },
    /// Reading a binary payload into its slot.
    Payload { slot: WriteSlot, len: usize },
    /// Reading a control payload into the control buffer.
    Control { header: Header, have: usize },
}

/// The read state of one upstream connection.
#[derive(Debug)]
pub struct FrameReader {
    state: State,
    header: [u8; ws::WS_HEADER_BYTES_MAX],
    control: [u8; CONTROL_PAYLOAD_BYTES_MAX],
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader::new()
    }
}

impl FrameReader {
    /// A reader at the start of a frame.
    pub fn new() -> Self {
        FrameReader {
            state: State::Header { have: 0, need: 2 },
            header: [0; ws::WS_HEADER_BYTES_MAX],
            control: [0; CONTROL_PAYLOAD_BYTES_MAX],
        }
    }

    /// Where the next socket read must land. Empty only while the frame buffer reports
    /// backpressure (then the socket is not read; retry with `advance(0, ..)`).
    pub fn buffer(&mut self) -> &mut [u8] {
        match &mut self.state {
            State::Header { have, need } => self.header.get_mut(*have..*need).unwrap_or_default(),
            State::Payload { slot, len } => {
                let missing = len.saturating_sub(slot.filled());
                let unfilled = slot.unfilled_mut();
                let end = missing.min(unfilled.len());
                unfilled.get_mut(..end).unwrap_or_default()
            }
            State::Control { header, have } => {
                let end = (header.payload_len as usize).min(CONTROL_PAYLOAD_BYTES_MAX);
                self.control.get_mut(*have..end).unwrap_or_default()
            }
        }
    }

    /// Record that `n` bytes were read into [`buffer`](Self::buffer). Returns what a
    /// completed frame produced. On `Backpressure` the read state is unchanged: call
    /// again (with `n = 0`) once the writer has reclaimed a segment.
    pub fn advance(
        &mut self,
        n: usize,
        writer: &mut FrameWriter,
    ) -> Result<Option<Incoming>, ReadError> {
        if n > self.buffer().len() {
            return Err(ReadError::Overrun);
        }
        match std::mem::replace(&mut self.state, State::Header { have: 0, need: 2 }) {
            State::Header { have, need } => self.advance_header(have + n, need, writer),
            State::Payload { mut slot, len } => {
                slot.advance(n).map_err(ReadError::FrameBuffer)?;
                if slot.filled() < len {
                    self.state = State::Payload { slot, len };
                    return Ok(None);
                }
                let handle = writer.commit(slot, len).map_err(ReadError::FrameBuffer)?;
                Ok(Some(Incoming::Frame(handle)))
            }
            State::Control { header, have } => self.advance_control(header, have + n),
        }
    }

    fn advance_header(
        &mut self,
        have: usize,
        need: usize,
        writer: &mut FrameWriter,
    ) -> Result<Option<Incoming>, ReadError> {
        let bytes = self.header.get(..have).unwrap_or_default();
        let parsed = ws::parse_header(bytes, Role::Client, FRAME_SIZE_BYTES_MAX as u64)
            .map_err(ReadError::Protocol)?;
        let Some(header) = parsed else {
            // Not complete: work out how many header bytes are needed in all so far.
            self.state = State::Header {
                have,
                need: header_len_needed(bytes).max(need).max(have + 1),
            };
            return Ok(None);
        };
        match header.opcode {
            Opcode::Text => Err(ReadError::TextMessage),
            Opcode::Continuation => Err(ReadError::FragmentedMessage),
            Opcode::Binary if !header.fin => Err(ReadError::FragmentedMessage),
            Opcode::Binary => self.start_payload(header, have, writer),
            _ => self.advance_control(header, 0),
        }
    }

    fn start_payload(
        &mut self,
        header: Header,
        have: usize,
        writer: &mut FrameWriter,
    ) -> Result<Option<Incoming>, ReadError> {
        let len = header.payload_len as usize;
        if len == 0 {
            return Err(ReadError::EmptyMessage);
        }
        match writer.reserve(len) {
            Ok(slot) => {
                self.state = State::Payload { slot, len };
                Ok(None)
            }
            Err(FrameBufferError::Backpressure) => {
                // Keep the complete header: the next advance(0) retries the reservation.
                self.state = State::Header { have, need: have };
                Err(ReadError::Backpressure)
            }
            Err(e) => Err(ReadError::FrameBuffer(e)),
        }
    }

    fn advance_control(
        &mut self,
        header: Header,
        have: usize,
    ) -> Result<Option<Incoming>, ReadError> {
        let len = header.payload_len as usize;
        if have < len {
            self.state = State::Control { header, have };
            return Ok(None);
        }
        let payload = self.control.get_mut(..len).unwrap_or_default();
        if let Some(mask) = header.mask {
            ws::apply_mask(payload, mask, 0);
        }
        Ok(Some(match header.opcode {
            Opcode::Ping => Incoming::Ping(ControlPayload {
                bytes: self.control,
                len,
            }),
            Opcode::Pong => Incoming::Pong,
            _ => {
                let code = payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
                Incoming::Close(code)
            }
        }))
    }
}

/// Header bytes needed given the first bytes: 2, then 4 or 10 by the length marker.
fn header_len_needed(bytes: &[u8]) -> usize {
    match bytes.get(1) {
        None => 2,
        Some(b1) => match b1 & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        },
    }
}
