//! tail's own WebSocket client: a blocking socket on tail's thread (plain or rustls),
//! the upgrade handshake and RFC 6455 framing from `frame::ws`. Independent of the
//! relay's upstream session code on purpose: tail is a client like any other.
//!
//! Owns: the read buffer, message reassembly (continuation frames), answering pings and
//! closes. Must not: interpret payloads (the checker does).
//! Always checks: the handshake's accept key and status 101, every frame header (via
//! `frame::ws::parse_header`, client role: server frames must be unmasked), the message
//! size against `FRAME_SIZE_BYTES_MAX` before buffering it.
//! Does not check: UTF-8 of text messages (a firehose sends binary; text is passed on
//! and fails to decode as a frame).

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::ClientConfig;
use sha2::{Digest, Sha256};

use crate::api::http::Url;
use crate::config::limits::FRAME_SIZE_BYTES_MAX;
use crate::frame::ws::{
    self, Opcode, Role, WS_HEADER_BYTES_MAX, WsError, apply_mask, encode_header, parse_header,
};
use crate::identity::transport::{ClientStream, ConnectError, is_timeout};

/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Largest upgrade response head accepted.
const HANDSHAKE_HEAD_BYTES_MAX: usize = 16 * 1024;

/// Why the subscription failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting or TLS failed.
    Connect(ConnectError),
    /// The server did not upgrade (its status), or the head was malformed (0).
    Handshake(u16),
    /// The server broke RFC 6455.
    Ws(WsError),
    /// The socket failed.
    Io(io::Error),
    /// The server closed the connection.
    Closed,
}

impl ClientError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            ClientError::Connect(e) => e.reason(),
            ClientError::Handshake(_) => "ws_handshake",
            ClientError::Ws(e) => e.reason(),
            ClientError::Io(_) => "io",
            ClientError::Closed => "closed",
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Connect(e) => write!(f, "{e}"),
            ClientError::Handshake(status) => write!(f, "ws_handshake: status {status}"),
            ClientError::Io(e) => write!(f, "io: {e}"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for ClientError {}

/// One step of the read loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A complete binary (or text) message is in the caller's buffer.
    Message,
    /// Nothing arrived within the poll interval (partial data is kept).
    Idle,
}

/// A subscribed WebSocket connection.
#[derive(Debug)]
pub struct WsClient {
    stream: ClientStream,
    buf: Vec<u8>,
    start: usize,
    /// Payload of a fragmented message so far.
    partial: Vec<u8>,
}

impl WsClient {
    /// Connect to `url` (ws:// or wss://), upgrade, and poll reads every `poll`.
    pub fn connect(
        url: &Url,
        tls: Option<&Arc<ClientConfig>>,
        connect_timeout: Duration,
        poll: Duration,
    ) -> Result<WsClient, ClientError> {
        let tls = if url.scheme.is_tls() { tls } else { None };
        let stream =
            ClientStream::connect(&url.host, url.port, tls, connect_timeout, connect_timeout)
                .map_err(ClientError::Connect)?;
        let mut client = WsClient {
            stream,
            buf: Vec::with_capacity(READ_CHUNK_BYTES),
            start: 0,
            partial: Vec::new(),
        };
        client.handshake(url)?;
        client
            .stream
            .tcp()
            .set_read_timeout(Some(poll))
            .map_err(ClientError::Io)?;
        Ok(client)
    }

    fn handshake(&mut self, url: &Url) -> Result<(), ClientError> {
        let key = ws::client_key(nonce());
        let agent = concat!("relay-tail/", env!("CARGO_PKG_VERSION"));
        let request = ws::client_request(&url.host_header(), &url.path_and_query, &key, agent);
        self.stream
            .write_all(request.as_bytes())
            .map_err(ClientError::Io)?;
        self.stream.flush().map_err(ClientError::Io)?;
        loop {
            match ws::parse_upgrade_response(&self.buf, &key) {
                Ok(Some(response)) if response.status == 101 => {
                    self.start = response.head_len;
                    return Ok(());
                }
                Ok(Some(response)) => return Err(ClientError::Handshake(response.status)),
                Ok(None) if self.buf.len() < HANDSHAKE_HEAD_BYTES_MAX => {}
                Ok(None) | Err(_) => return Err(ClientError::Handshake(0)),
            }
            if self.fill()? == 0 {
                return Err(ClientError::Closed);
            }
        }
    }

    /// Read until a whole message is in `out` (replacing its contents), or until one poll
    /// interval passes without data.
    pub fn next_message(&mut self, out: &mut Vec<u8>) -> Result<Next, ClientError> {
        loop {
            if self.take_message(out)? {
                return Ok(Next::Message);
            }
            match self.fill() {
                Ok(0) => return Err(ClientError::Closed),
                Ok(_) => {}
                Err(ClientError::Io(e)) if is_timeout(&e) => return Ok(Next::Idle),
                Err(e) => return Err(e),
            }
        }
    }

    /// Parse buffered frames; true when a complete message was moved into `out`.
    fn take_message(&mut self, out: &mut Vec<u8>) -> Result<bool, ClientError> {
        loop {
            let available = self.buf.get(self.start..).unwrap_or_default();
            let payload_max =
                (FRAME_SIZE_BYTES_MAX - self.partial.len().min(FRAME_SIZE_BYTES_MAX)) as u64;
            let Some(header) =
                parse_header(available, Role::Client, payload_max).map_err(ClientError::Ws)?
            else {
                return Ok(false);
            };
            let end = header.header_len + header.payload_len as usize;
            if available.len() < end {
                return Ok(false);
            }
            let range = self.start + header.header_len..self.start + end;
            self.start += end;
            match header.opcode {
                Opcode::Ping => {
                    let payload = self.buf.get(range).unwrap_or_default().to_vec();
                    self.send(Opcode::Pong, &payload)?;
                }
                Opcode::Pong => {}
                Opcode::Close => {
                    // Echo the close code; the peer is going away either way.
                    let code = self
                        .buf
                        .get(range)
                        .and_then(|p| p.get(..2))
                        .unwrap_or_default()
                        .to_vec();
                    let _ = self.send(Opcode::Close, &code);
                    return Err(ClientError::Closed);
                }
                Opcode::Binary | Opcode::Text | Opcode::Continuation => {
                    let payload = self.buf.get(range).unwrap_or_default();
                    if header.fin && self.partial.is_empty() {
                        out.clear();
                        out.extend_from_slice(payload);
                        return Ok(true);
                    }
                    self.partial.extend_from_slice(payload);
                    if header.fin {
                        out.clear();
                        std::mem::swap(out, &mut self.partial);
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// Read more bytes into the buffer (compacting it first).
    fn fill(&mut self) -> Result<usize, ClientError> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let filled = self.buf.len();
        self.buf.resize(filled + READ_CHUNK_BYTES, 0);
        let result = self
            .stream
            .read(self.buf.get_mut(filled..).unwrap_or_default());
        let read = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(filled + read);
        result.map_err(ClientError::Io)
    }

    fn send(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), ClientError> {
        let mask: [u8; 4] = nonce()[..4].try_into().unwrap_or([0; 4]);
        let mut head = [0u8; WS_HEADER_BYTES_MAX];
        let head_len = encode_header(true, opcode, payload.len() as u64, Some(mask), &mut head);
        let mut masked = payload.to_vec();
        apply_mask(&mut masked, mask, 0);
        self.stream
            .write_all(&head[..head_len])
            .map_err(ClientError::Io)?;
        self.stream.write_all(&masked).map_err(ClientError::Io)?;
        self.stream.flush().map_err(ClientError::Io)
    }
}

/// 16 unpredictable-enough bytes for the handshake key and masks (RFC 6455 wants them
/// unpredictable to intermediaries, not secret): SHA-256 of the clock and a counter.
fn nonce() -> [u8; 16] {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digest = Sha256::new()
        .chain_update(nanos.to_le_bytes())
        .chain_update(count.to_le_bytes())
        .chain_update(std::process::id().to_le_bytes())
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
    out
}
