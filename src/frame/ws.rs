//! WebSocket (RFC 6455) framing and the HTTP/1.1 upgrade handshake, sans-IO.
//!
//! Owns: frame header parsing and encoding, masking, the accept-key derivation, and
//! building/parsing the upgrade request and response heads.
//! Must not: own sockets or buffers. Callers read bytes wherever they want them (the
//! ingest path reads straight into shared-memory frame buffers) and ask this module where
//! the payload is, so a binary message's payload is never copied to be decoded.
//! Always checks: reserved bits, known opcodes, control frames ≤ 125 bytes and final,
//! minimal-length encodings, the masking direction, payload length against the caller's
//! bound before anything is read.
//! Does not check: UTF-8 of text messages (firehose peers send binary; a text frame is
//! itself the protocol error upstream reports), extensions (none are negotiated).

use base64::Engine;
use sha1::Digest;
use std::fmt;

/// Largest header: 2 bytes + 8 bytes of length + 4 bytes of mask.
pub const WS_HEADER_BYTES_MAX: usize = 14;
/// Largest control-frame payload RFC 6455 allows.
const CONTROL_PAYLOAD_BYTES_MAX: u64 = 125;
/// The GUID RFC 6455 appends to the client key.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A frame's opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    /// Continuation of a fragmented message.
    Continuation,
    /// A text message (firehose peers must not send these).
    Text,
    /// A binary message: one firehose frame.
    Binary,
    /// Close.
    Close,
    /// Ping.
    Ping,
    /// Pong.
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xa => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xa,
        }
    }

    /// Close, ping and pong.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Which side sends: clients mask, servers must not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// We are the client: frames we receive must be unmasked.
    Client,
    /// We are the server: frames we receive must be masked.
    Server,
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// FIN bit: the last frame of a message.
    pub fin: bool,
    /// The opcode.
    pub opcode: Opcode,
    /// The masking key, when masked.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// Header length in bytes (payload starts here).
    pub header_len: usize,
}

/// Why a peer's bytes are not acceptable WebSocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsError {
    /// RSV bits set without a negotiated extension.
    ReservedBits,
    /// An opcode RFC 6455 does not define.
    UnknownOpcode,
    /// A control frame that is fragmented or longer than 125 bytes.
    BadControlFrame,
    /// A length not in its shortest form, or with the top bit set.
    BadLength,
    /// A masked frame to a client or an unmasked one to a server.
    BadMasking,
    /// A payload over the caller's bound.
    TooLarge,
    /// An HTTP head that is malformed or not the expected upgrade.
    BadHandshake,
}

impl WsError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            WsError::ReservedBits => "ws_reserved_bits",
            WsError::UnknownOpcode => "ws_unknown_opcode",
            WsError::BadControlFrame => "ws_bad_control_frame",
            WsError::BadLength => "ws_bad_length",
            WsError::BadMasking => "ws_bad_masking",
            WsError::TooLarge => "ws_too_large",
            WsError::BadHandshake => "ws_bad_handshake",
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for WsError {}

/// Parse a frame header at the start of `buf`. `Ok(None)`: more bytes are needed.
/// `payload_bytes_max` is checked before the caller reads any payload.
pub fn parse_header(
    buf: &[u8],
    role: Role,
    payload_bytes_max: u64,
) -> Result<Option<Header>, WsError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(WsError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = Opcode::from_bits(b0 & 0x0f).ok_or(WsError::UnknownOpcode)?;
    let masked = b1 & 0x80 != 0;
    if masked != (role == Role::Server) {
        return Err(WsError::BadMasking);
    }
    let (payload_len, mut header_len) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            None => return Ok(None),
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            None => return Ok(None),
            Some(b) => (u64::from_be_bytes(b), 10),
        },
        short => (u64::from(short), 2),
    };
    let minimal = match header_len {
        4 => payload_len >= 126,
        10 => payload_len > 0xffff && payload_len >> 63 == 0,
        _ => true,
    };
    if !minimal {
        return Err(WsError::BadLength);
    }
    if opcode.is_control() && (!fin || payload_len > CONTROL_PAYLOAD_BYTES_MAX) {
        return Err(WsError::BadControlFrame);
    }
    if payload_len > payload_bytes_max {
        return Err(WsError::TooLarge);
    }
    let mask = if masked {
        let Some(key) = buf
            .get(header_len..header_len + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
        else {
            return Ok(None);
        };
        header_len += 4;
        Some(key)
    } else {
        None
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        payload_len,
        header_len,
    }))
}

/// Write a frame header into `out`; returns its length. `mask` is for client frames.
pub fn encode_header(
    fin: bool,
    opcode: Opcode,
    payload_len: u64,
    mask: Option<[u8; 4]>,
    out: &mut [u8; WS_HEADER_BYTES_MAX],
) -> usize {
    out[0] = (if fin { 0x80 } else { 0 }) | opcode.bits();
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut len = if payload_len < 126 {
        out[1] = mask_bit | payload_len as u8;
        2
    } else if payload_len <= 0xffff {
        out[1] = mask_bit | 126;
        out[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
        4
    } else {
        out[1] = mask_bit | 127;
        out[2..10].copy_from_slice(&payload_len.to_be_bytes());
        10
    };
    if let Some(key) = mask {
        out[len..len + 4].copy_from_slice(&key);
        len += 4;
    }
    len
}

/// XOR `data` with the masking key, as if `data` started `offset` bytes into the payload.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    for (index, byte) in data.iter_mut().enumerate() {
        *byte ^= key[(offset + index) % 4];
    }
}

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`.
pub fn accept_key(client_key: &str) -> String {
    let mut hasher = sha1::Sha1::new();
    hasher.update(client_key.as_bytes());
    hasher.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
}

/// A fresh client key from 16 bytes of entropy.
pub fn client_key(nonce: [u8; 16]) -> String {
    base64::engine::general_purpose::STANDARD.encode(nonce)
}

/// The client's upgrade request head for `GET path_and_query` on `host`.
pub fn client_request(host: &str, path_and_query: &str, key: &str, user_agent: &str) -> String {
    format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: {user_agent}\r\n\r\n"
    )
}

/// What the server answered to an upgrade request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeResponse {
    /// Bytes of the head, including the blank line; the WebSocket stream starts after.
    pub head_len: usize,
    /// HTTP status code (101 when the upgrade succeeded).
    pub status: u16,
    /// The `Server` header, for the relay-loop guard.
    pub server: Option<String>,
}

/// Parse the server's response head. `Ok(None)`: more bytes needed. A 101 response must
/// carry the right accept key.
pub fn parse_upgrade_response(
    buf: &[u8],
    client_key: &str,
) -> Result<Option<UpgradeResponse>, WsError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf).map_err(|_| WsError::BadHandshake)? {
        httparse::Status::Partial => return Ok(None),
        httparse::Status::Complete(len) => len,
    };
    let status = response.code.ok_or(WsError::BadHandshake)?;
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::to_owned)
    };
    let server = header("server");
    if status == 101
        && header("sec-websocket-accept").as_deref() != Some(accept_key(client_key).as_str())
    {
        return Err(WsError::BadHandshake);
    }
    Ok(Some(UpgradeResponse {
        head_len,
        status,
        server,
    }))
}

/// The server's `101 Switching Protocols` head for a client key.
pub fn server_response(client_key: &str, server_name: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nServer: {server_name}\r\n\r\n",
        accept_key(client_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn header_round_trips_for_every_length_class() {
        for len in [0u64, 1, 125, 126, 65_535, 65_536, 5_000_000] {
            for (mask, role) in [(None, Role::Client), (Some([1, 2, 3, 4]), Role::Server)] {
                let mut out = [0u8; WS_HEADER_BYTES_MAX];
                let n = encode_header(true, Opcode::Binary, len, mask, &mut out);
                let header = parse_header(&out[..n], role, u64::MAX).unwrap().unwrap();
                assert_eq!(
                    (header.payload_len, header.header_len, header.mask),
                    (len, n, mask)
                );
                // Every strict prefix asks for more bytes instead of failing.
                for cut in 0..n {
                    assert_eq!(parse_header(&out[..cut], role, u64::MAX), Ok(None));
                }
            }
        }
    }

    #[test]
    fn hostile_headers_are_rejected() {
        let role = Role::Client;
        assert_eq!(
            parse_header(&[0xc2, 0x00], role, 10),
            Err(WsError::ReservedBits)
        );
        assert_eq!(
            parse_header(&[0x83, 0x00], role, 10),
            Err(WsError::UnknownOpcode)
        );
        assert_eq!(
            parse_header(&[0x09, 0x00], role, 10),
            Err(WsError::BadControlFrame)
        );
        assert_eq!(
            parse_header(&[0x89, 126, 0, 126], role, 1000),
            Err(WsError::BadControlFrame)
        );
        assert_eq!(
            parse_header(&[0x82, 126, 0, 10], role, 1000),
            Err(WsError::BadLength)
        );
        assert_eq!(
            parse_header(&[0x82, 0x85, 0, 0, 0, 0], role, 1000),
            Err(WsError::BadMasking)
        );
        assert_eq!(
            parse_header(&[0x82, 0x05], Role::Server, 1000),
            Err(WsError::BadMasking)
        );
        let huge = [0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(parse_header(&huge, role, 5_000_000), Err(WsError::TooLarge));
    }

    #[test]
    fn handshake_round_trip() {
        let key = client_key([7; 16]);
        let response = server_response(&key, "relay (atproto-relay)");
        let parsed = parse_upgrade_response(response.as_bytes(), &key)
            .unwrap()
            .unwrap();
        assert_eq!(parsed.status, 101);
        assert_eq!(parsed.head_len, response.len());
        assert_eq!(parsed.server.as_deref(), Some("relay (atproto-relay)"));
        assert_eq!(
            parse_upgrade_response(response.as_bytes(), "other"),
            Err(WsError::BadHandshake)
        );
        assert_eq!(
            parse_upgrade_response(&response.as_bytes()[..20], &key),
            Ok(None)
        );
    }
}
