//! Opening one upstream connection: name resolution off the executor, TCP through
//! glommio, TLS through futures-rustls (ring provider), and the WebSocket upgrade with the
//! relay-loop guard.
//!
//! Owns: [`UpstreamStream`] (plain or TLS, one futures-io type) and [`open`], which hands
//! the session a stream positioned exactly at the first WebSocket frame byte.
//! Must not: read frames (that is `reader`), retry or time out by itself (the session
//! bounds `open` as a whole with the connect time-out and retries with backoff).
//! Always checks: the upgrade head's size (`UPSTREAM_UPGRADE_HEAD_BYTES_MAX`), its accept
//! key and status, and the `Server` header against the loop guard — before the status, so
//! a relay answering 4xx/5xx is still recognised as a relay.
//! Does not check: that resolved addresses are public (host admission decides which hosts
//! are targets).
//!
//! The upgrade head is read only up to its blank line (each read asks for at most the
//! bytes that could still complete `\r\n\r\n`), so no frame byte is read into the head
//! buffer: the first frame lands in the frame buffer like every other.

use crate::config::limits::UPSTREAM_UPGRADE_HEAD_BYTES_MAX;
use crate::frame::ws::{self, WsError};
use crate::upstream::error::SessionError;
use crate::upstream::target::{ConnectTarget, USER_AGENT, is_relay_server};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;
use ring::rand::{SecureRandom, SystemRandom};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The head's terminator.
const HEAD_END: &[u8] = b"\r\n\r\n";

/// An open upstream byte stream, plain or TLS.
#[derive(Debug)]
pub enum UpstreamStream {
    /// `ws://` (allowed hosts only).
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_flush(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_close(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// An upgraded connection.
#[derive(Debug)]
pub struct Opened {
    /// The stream, at the first byte of the first WebSocket frame.
    pub stream: UpstreamStream,
    /// The upstream's `Server` header, if any.
    pub server: Option<String>,
}

/// Resolve, connect, secure and upgrade. `path` is the request path and query. The caller
/// bounds the whole call with the connect time-out; `tcp_timeout` bounds each TCP connect.
pub async fn open(
    target: &ConnectTarget,
    path: &str,
    tls: &Arc<ClientConfig>,
    rng: &SystemRandom,
    tcp_timeout: Duration,
) -> Result<Opened, SessionError> {
    let addrs = resolve(&target.host, target.port).await?;
    let tcp = connect_any(&addrs, tcp_timeout).await?;
    // Pings, pongs and the upgrade request are small writes that should leave at once.
    tcp.set_nodelay(true)
        .map_err(|e| SessionError::from_connect_io(&e.into()))?;
    let mut stream = if target.tls {
        let name = ServerName::try_from(target.host.clone()).map_err(|_| SessionError::BadUrl)?;
        let connector = futures_rustls::TlsConnector::from(Arc::clone(tls));
        let secured = connector
            .connect(name, tcp)
            .await
            .map_err(|_| SessionError::Tls)?;
        UpstreamStream::Tls(Box::new(secured))
    } else {
        UpstreamStream::Plain(tcp)
    };
    let server = upgrade(&mut stream, &target.host_header, path, rng).await?;
    Ok(Opened { stream, server })
}

/// IP literals need no lookup; names are resolved on glommio's blocking thread pool so
/// the executor never waits on DNS.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, SessionError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.to_owned();
    let resolved = glommio::executor()
        .spawn_blocking(move || {
            (name.as_str(), port)
                .to_socket_addrs()
                .map(|addrs| addrs.collect::<Vec<_>>())
        })
        .await;
    match resolved {
        Ok(addrs) if !addrs.is_empty() => Ok(addrs),
        _ => Err(SessionError::Resolve),
    }
}

/// Try each address in turn; the last error is the reason.
async fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, SessionError> {
    let mut last = SessionError::Resolve;
    for addr in addrs {
        match TcpStream::connect_timeout(*addr, timeout).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = SessionError::from_connect_io(&e.into()),
        }
    }
    Err(last)
}

/// Send the upgrade request and read the response head; returns the `Server` header.
async fn upgrade(
    stream: &mut UpstreamStream,
    host_header: &str,
    path: &str,
    rng: &SystemRandom,
) -> Result<Option<String>, SessionError> {
    let mut nonce = [0u8; 16];
    rng.fill(&mut nonce).map_err(|_| SessionError::Tls)?;
    let key = ws::client_key(nonce);
    let request = ws::client_request(host_header, path, &key, USER_AGENT);
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| SessionError::from_stream_io(&e))?;
    stream
        .flush()
        .await
        .map_err(|e| SessionError::from_stream_io(&e))?;
    let head = read_head(stream).await?;
    let response = ws::parse_upgrade_response(&head, &key)
        .map_err(handshake_error(&head))?
        .ok_or(SessionError::Handshake(WsError::BadHandshake))?;
    if is_relay_server(response.server.as_deref()) {
        return Err(SessionError::UpstreamIsRelay);
    }
    if response.status != 101 {
        return Err(SessionError::HandshakeStatus(response.status));
    }
    Ok(response.server)
}

/// A head with a wrong accept key is still checked by the loop guard: a relay is a relay
/// whatever else is wrong with its answer.
fn handshake_error(head: &[u8]) -> impl Fn(WsError) -> SessionError + '_ {
    move |e| {
        if is_relay_server(server_header(head).as_deref()) {
            SessionError::UpstreamIsRelay
        } else {
            SessionError::Handshake(e)
        }
    }
}

fn server_header(head: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    response.parse(head).ok()?;
    response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("server"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::to_owned)
}

/// Read the response head up to and including its blank line, never past it.
async fn read_head(stream: &mut UpstreamStream) -> Result<Vec<u8>, SessionError> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; HEAD_END.len()];
    loop {
        let need = bytes_to_head_end(&head);
        if need == 0 {
            return Ok(head);
        }
        if head.len() + need > UPSTREAM_UPGRADE_HEAD_BYTES_MAX {
            return Err(SessionError::Handshake(WsError::BadHandshake));
        }
        let buf = chunk.get_mut(..need).unwrap_or_default();
        let n = stream
            .read(buf)
            .await
            .map_err(|e| SessionError::from_stream_io(&e))?;
        if n == 0 {
            return Err(SessionError::Eof);
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
}

/// How many more bytes could at most be needed to complete `\r\n\r\n`: 4 minus the
/// longest suffix of `head` that is a prefix of the terminator (0 when it is complete).
pub fn bytes_to_head_end(head: &[u8]) -> usize {
    if head.ends_with(HEAD_END) {
        return 0;
    }
    let matched = (1..HEAD_END.len())
        .rev()
        .find(|&k| head.ends_with(HEAD_END.get(..k).unwrap_or_default()))
        .unwrap_or(0);
    HEAD_END.len() - matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_reads_never_overshoot_the_blank_line() {
        assert_eq!(bytes_to_head_end(b""), 4);
        assert_eq!(bytes_to_head_end(b"HTTP/1.1 101"), 4);
        assert_eq!(bytes_to_head_end(b"x\r"), 3);
        assert_eq!(bytes_to_head_end(b"x\r\n"), 2);
        assert_eq!(bytes_to_head_end(b"x\r\n\r"), 1);
        assert_eq!(bytes_to_head_end(b"x\r\n\r\n"), 0);
        assert_eq!(bytes_to_head_end(b"x\r\r"), 3);
        // Simulate the reads over a head followed by frame bytes.
        let stream = b"HTTP/1.1 101 OK\r\nA: b\r\n\r\n\x82\x01z";
        let mut head = Vec::new();
        while bytes_to_head_end(&head) > 0 {
            let take = bytes_to_head_end(&head);
            head.extend_from_slice(&stream[head.len()..head.len() + take]);
        }
        assert_eq!(head.len(), stream.len() - 3);
    }

    #[test]
    fn the_server_header_is_found_in_a_head_rustls_would_not_otherwise_see() {
        let head = b"HTTP/1.1 403 Forbidden\r\nServer: indigo-relay/1 (atproto-relay)\r\n\r\n";
        assert_eq!(
            server_header(head).as_deref(),
            Some("indigo-relay/1 (atproto-relay)")
        );
        assert!(matches!(
            handshake_error(head)(WsError::BadHandshake),
            SessionError::UpstreamIsRelay
        ));
    }
}
