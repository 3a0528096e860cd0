//! A minimal blocking WebSocket client for end-to-end tests: connects to a loopback
//! `subscribeRepos`, reads whole binary messages. Written over `frame::ws` so tests need
//! no second WebSocket implementation; it answers pings and stops at a close frame.

use relay::frame::ws::{self, Opcode, Role};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One subscription.
pub struct WsClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// What the server sent.
#[derive(Debug)]
pub enum Message {
    /// A binary message (a firehose frame).
    Binary(Vec<u8>),
    /// The server closed.
    Closed,
    /// Nothing arrived within the read time-out.
    Idle,
}

impl WsClient {
    /// Connect to `addr` and upgrade on `path_and_query`; `read_timeout` bounds each read.
    pub fn connect(
        addr: SocketAddr,
        path_and_query: &str,
        read_timeout: Duration,
    ) -> std::io::Result<WsClient> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(read_timeout))?;
        stream.set_nodelay(true)?;
        let key = ws::client_key(*b"relay-test-nonce");
        let request = ws::client_request(&addr.to_string(), path_and_query, &key, "relay-tests");
        stream.write_all(request.as_bytes())?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::other("closed during the upgrade"));
            }
            buf.extend_from_slice(&chunk[..n]);
            match ws::parse_upgrade_response(&buf, &key) {
                Ok(Some(response)) if response.status == 101 => {
                    buf.drain(..response.head_len);
                    return Ok(WsClient { stream, buf });
                }
                Ok(Some(response)) => {
                    return Err(std::io::Error::other(format!(
                        "upgrade refused with {}: {}",
                        response.status,
                        String::from_utf8_lossy(&buf)
                    )));
                }
                Ok(None) => continue,
                Err(e) => return Err(std::io::Error::other(format!("handshake: {e}"))),
            }
        }
    }

    /// The client's own address (the relay sees it as the consumer's remote address).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    /// The next message.
    pub fn next(&mut self) -> std::io::Result<Message> {
        loop {
            if let Some(header) = ws::parse_header(&self.buf, Role::Client, 64 << 20)
                .map_err(|e| std::io::Error::other(format!("ws: {e}")))?
            {
                let total = header.header_len + header.payload_len as usize;
                if self.buf.len() >= total {
                    let payload = self.buf[header.header_len..total].to_vec();
                    self.buf.drain(..total);
                    match header.opcode {
                        Opcode::Binary => return Ok(Message::Binary(payload)),
                        Opcode::Close => return Ok(Message::Closed),
                        Opcode::Ping => self.pong(&payload)?,
                        _ => {}
                    }
                    continue;
                }
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(Message::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(Message::Idle);
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Ok(Message::Closed);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn pong(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let mut header = [0u8; ws::WS_HEADER_BYTES_MAX];
        let mask = [1, 2, 3, 4];
        let len = ws::encode_header(
            true,
            Opcode::Pong,
            payload.len() as u64,
            Some(mask),
            &mut header,
        );
        let mut masked = payload.to_vec();
        ws::apply_mask(&mut masked, mask, 0);
        self.stream.write_all(&header[..len])?;
        self.stream.write_all(&masked)
    }
}
