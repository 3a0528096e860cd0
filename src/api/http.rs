//! HTTP/1.1 for the relay's own needs: request heads and responses on the server side,
//! a small client for DID resolution, liveness checks and the simulator's checks, and the
//! URL shapes those use.
//!
//! Owns: framing (heads, Content-Length and chunked bodies), bounds on every part, query
//! string decoding. Runtime-agnostic: it works over any `futures-io` stream (glommio
//! sockets, TLS streams).
//! Must not: route, authorise or know any endpoint (that is `api` and `admin`).
//! Always checks: head size, header count, body size against the caller's bound before
//! reading it; rejects transfer encodings other than chunked.

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::fmt;

/// Largest request or response head accepted, in bytes.
pub const HTTP_HEAD_BYTES_MAX: usize = 16 * 1024;
/// Most headers accepted in one head.
const HTTP_HEADERS_MAX: usize = 64;
/// Read granularity for heads and bodies.
const READ_CHUNK_BYTES: usize = 8 * 1024;

/// Why an HTTP exchange failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpError {
    /// The socket failed.
    Io(std::io::Error),
    /// The peer closed before a complete message.
    UnexpectedEof,
    /// The head is not valid HTTP/1.1.
    Malformed,
    /// The head is larger than `HTTP_HEAD_BYTES_MAX` or has too many headers.
    HeadTooLarge,
    /// The body is larger than the caller's bound.
    BodyTooLarge,
    /// A URL the relay cannot use.
    BadUrl,
}

impl HttpError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            HttpError::Io(_) => "http_io",
            HttpError::UnexpectedEof => "http_unexpected_eof",
            HttpError::Malformed => "http_malformed",
            HttpError::HeadTooLarge => "http_head_too_large",
            HttpError::BodyTooLarge => "http_body_too_large",
            HttpError::BadUrl => "http_bad_url",
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Io(e) => write!(f, "http: {e}"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<std::io::Error> for HttpError {
    fn from(e: std::io::Error) -> Self {
        HttpError::Io(e)
    }
}

/// A parsed request (head and body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query string (without `?`), possibly empty.
    pub query: String,
    /// Header names lowercased, values as sent.
    pub headers: Vec<(String, String)>,
    /// The body (empty for GET).
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    /// True when the request asks for a WebSocket upgrade.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }
}

/// A parsed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }
}

fn header_value<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A connection's read side: a buffer that carries bytes past one message over to the
/// next (keep-alive, and the first WebSocket bytes after an upgrade).
#[derive(Debug, Default)]
pub struct ReadBuffer {
    bytes: Vec<u8>,
}

impl ReadBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        ReadBuffer { bytes: Vec::new() }
    }

    /// Bytes received but not consumed (e.g. WebSocket frames after the upgrade head).
    pub fn take_remaining(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }

    async fn fill<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> Result<usize, HttpError> {
        let start = self.bytes.len();
        self.bytes.resize(start + READ_CHUNK_BYTES, 0);
        let read = stream.read(&mut self.bytes[start..]).await;
        let read = match read {
            Ok(n) => n,
            Err(e) => {
                self.bytes.truncate(start);
                return Err(e.into());
            }
        };
        self.bytes.truncate(start + read);
        Ok(read)
    }

    /// Read until a whole head is buffered; returns its length, or `None` at a clean EOF
    /// before any byte.
    async fn read_head<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<Option<usize>, HttpError> {
        loop {
            if let Some(end) = find_head_end(&self.bytes) {
                return Ok(Some(end));
            }
            if self.bytes.len() > HTTP_HEAD_BYTES_MAX {
                return Err(HttpError::HeadTooLarge);
            }
            if self.fill(stream).await? == 0 {
                return if self.bytes.is_empty() {
                    Ok(None)
                } else {
                    Err(HttpError::UnexpectedEof)
                };
            }
        }
    }

    async fn read_exact_body<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        len: usize,
    ) -> Result<Vec<u8>, HttpError> {
        while self.bytes.len() < len {
            if self.fill(stream).await? == 0 {
                return Err(HttpError::UnexpectedEof);
            }
        }
        let rest = self.bytes.split_off(len);
        Ok(std::mem::replace(&mut self.bytes, rest))
    }

    async fn read_line<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<Vec<u8>, HttpError> {
        loop {
            if let Some(pos) = self.bytes.windows(2).position(|w| w == b"\r\n") {
                let rest = self.bytes.split_off(pos + 2);
                let mut line = std::mem::replace(&mut self.bytes, rest);
                line.truncate(pos);
                return Ok(line);
            }
            if self.bytes.len() > HTTP_HEAD_BYTES_MAX {
                return Err(HttpError::HeadTooLarge);
            }
            if self.fill(stream).await? == 0 {
                return Err(HttpError::UnexpectedEof);
            }
        }
    }

    fn consume(&mut self, len: usize) {
        self.bytes.drain(..len.min(self.bytes.len()));
    }
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|pos| pos + 4)
}

fn collect_headers(raw: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    raw.iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// Read one request. `Ok(None)`: the peer closed the connection cleanly between requests.
pub async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut ReadBuffer,
    body_bytes_max: usize,
) -> Result<Option<Request>, HttpError> {
    let Some(head_len) = buffer.read_head(stream).await? else {
        return Ok(None);
    };
    let mut raw = [httparse::EMPTY_HEADER; HTTP_HEADERS_MAX];
    let mut parsed = httparse::Request::new(&mut raw);
    match parsed.parse(&buffer.bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        _ => return Err(HttpError::Malformed),
    }
    let method = parsed.method.ok_or(HttpError::Malformed)?.to_owned();
    let target = parsed.path.ok_or(HttpError::Malformed)?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (path, query) = (path.to_owned(), query.to_owned());
    let headers = collect_headers(parsed.headers);
    buffer.consume(head_len);
    let body = read_body(stream, buffer, &headers, body_bytes_max, false).await?;
    Ok(Some(Request {
        method,
        path,
        query,
        headers,
        body,
    }))
}

async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut ReadBuffer,
    headers: &[(String, String)],
    body_bytes_max: usize,
    read_to_eof_without_length: bool,
) -> Result<Vec<u8>, HttpError> {
    if let Some(encoding) = header_value(headers, "transfer-encoding") {
        if !encoding.eq_ignore_ascii_case("chunked") {
            return Err(HttpError::Malformed);
        }
        return read_chunked(stream, buffer, body_bytes_max).await;
    }
    match header_value(headers, "content-length") {
        Some(len) => {
            let len: usize = len.trim().parse().map_err(|_| HttpError::Malformed)?;
            if len > body_bytes_max {
                return Err(HttpError::BodyTooLarge);
            }
            buffer.read_exact_body(stream, len).await
        }
        None if read_to_eof_without_length => {
            while buffer.fill(stream).await? > 0 {
                if buffer.bytes.len() > body_bytes_max {
                    return Err(HttpError::BodyTooLarge);
                }
            }
            Ok(buffer.take_remaining())
        }
        None => Ok(Vec::new()),
    }
}

async fn read_chunked<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut ReadBuffer,
    body_bytes_max: usize,
) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        let line = buffer.read_line(stream).await?;
        let line = std::str::from_utf8(&line).map_err(|_| HttpError::Malformed)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| HttpError::Malformed)?;
        if body.len().saturating_add(size) > body_bytes_max {
            return Err(HttpError::BodyTooLarge);
        }
        if size == 0 {
            // Trailers, then the blank line.
            while !buffer.read_line(stream).await?.is_empty() {}
            return Ok(body);
        }
        body.extend_from_slice(&buffer.read_exact_body(stream, size).await?);
        if !buffer.read_line(stream).await?.is_empty() {
            return Err(HttpError::Malformed);
        }
    }
}

/// The reason phrase of the status codes the relay sends.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Write a complete response with a Content-Length body.
pub async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), HttpError> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    Ok(())
}

/// Send a request and read the whole response. The connection is used once
/// (`Connection: close`), which keeps the client simple; resolution traffic is light.
pub async fn client_request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    method: &str,
    url: &Url,
    extra_headers: &[(&str, &str)],
    body: &[u8],
    body_bytes_max: usize,
) -> Result<Response, HttpError> {
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: relay/{}\r\n",
        url.path_and_query,
        url.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    for (name, value) in extra_headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;

    let mut buffer = ReadBuffer::new();
    let head_len = buffer
        .read_head(stream)
        .await?
        .ok_or(HttpError::UnexpectedEof)?;
    let mut raw = [httparse::EMPTY_HEADER; HTTP_HEADERS_MAX];
    let mut parsed = httparse::Response::new(&mut raw);
    match parsed.parse(&buffer.bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(HttpError::Malformed),
    }
    let status = parsed.code.ok_or(HttpError::Malformed)?;
    let headers = collect_headers(parsed.headers);
    buffer.consume(head_len);
    let body = read_body(stream, &mut buffer, &headers, body_bytes_max, true).await?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// URL schemes the relay speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http://` (loopback tests, when configuration allows it).
    Http,
    /// `https://`.
    Https,
    /// `ws://` (loopback tests, when configuration allows it).
    Ws,
    /// `wss://`.
    Wss,
}

impl Scheme {
    /// True for the TLS schemes.
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Https | Scheme::Wss)
    }

    fn default_port(self) -> u16 {
        if self.is_tls() { 443 } else { 80 }
    }
}

/// An absolute URL reduced to what a client needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// The scheme.
    pub scheme: Scheme,
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port, explicit or the scheme's default.
    pub port: u16,
    /// Whether the port was written out.
    pub explicit_port: bool,
    /// Path and query, at least `/`.
    pub path_and_query: String,
}

impl Url {
    /// Parse `scheme://host[:port][/path][?query]`. No user info, no fragments.
    pub fn parse(text: &str) -> Result<Url, HttpError> {
        let (scheme, rest) = text.split_once("://").ok_or(HttpError::BadUrl)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            _ => return Err(HttpError::BadUrl),
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() || authority.contains(['@', '#', ' ']) || path.contains('#') {
            return Err(HttpError::BadUrl);
        }
        let (host, port) = split_host_port(authority)?;
        let path_and_query = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(Url {
            scheme,
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(scheme.default_port()),
            explicit_port: port.is_some(),
            path_and_query,
        })
    }

    /// The value of the Host header.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.explicit_port {
            format!("{host}:{}", self.port)
        } else {
            host
        }
    }

    /// The same URL with another path and query.
    pub fn with_path(&self, path_and_query: &str) -> Url {
        Url {
            path_and_query: path_and_query.to_owned(),
            ..self.clone()
        }
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), HttpError> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(HttpError::BadUrl)?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().map_err(|_| HttpError::BadUrl)?),
            None if after.is_empty() => None,
            None => return Err(HttpError::BadUrl),
        };
        return Ok((host, port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => {
            Ok((host, Some(port.parse().map_err(|_| HttpError::BadUrl)?)))
        }
        Some(_) => Err(HttpError::BadUrl),
        None => Ok((authority, None)),
    }
}

/// Decode `application/x-www-form-urlencoded` query pairs (`+` is a space, `%XX` bytes).
/// Pairs whose percent-encoding is broken or not UTF-8 are returned as errors, so an
/// endpoint can answer `InvalidRequest` instead of guessing.
pub fn query_pairs(query: &str) -> impl Iterator<Item = Result<(String, String), HttpError>> + '_ {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(key)?, percent_decode(value)?))
        })
}

fn percent_decode(text: &str) -> Result<String, HttpError> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.next().and_then(|b| (b as char).to_digit(16));
                let lo = bytes.next().and_then(|b| (b as char).to_digit(16));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => return Err(HttpError::Malformed),
                }
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).map_err(|_| HttpError::Malformed)
}

/// Percent-encode a query value (unreserved characters kept).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;
    use futures_lite::io::Cursor;

    #[test]
    fn parses_urls() {
        let url =
            Url::parse("wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos?cursor=5").unwrap();
        assert_eq!(
            (url.scheme, url.host.as_str(), url.port),
            (Scheme::Wss, "bsky.network", 443)
        );
        assert_eq!(
            url.path_and_query,
            "/xrpc/com.atproto.sync.subscribeRepos?cursor=5"
        );
        let url = Url::parse("http://127.0.0.1:2582").unwrap();
        assert_eq!(
            (url.port, url.path_and_query.as_str(), url.host_header()),
            (2582, "/", "127.0.0.1:2582".into())
        );
        let url = Url::parse("ws://[::1]:80/x").unwrap();
        assert_eq!(
            (url.host.as_str(), url.host_header()),
            ("::1", "[::1]:80".to_owned())
        );
        for bad in [
            "ftp://x",
            "http://",
            "http://a@b",
            "http://x:port",
            "nocolon",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_pipelined_requests_and_bodies() {
        let wire = b"GET /xrpc/a?x=1&y=%41+b HTTP/1.1\r\nHost: h\r\n\r\nPOST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        let mut stream = Cursor::new(wire.to_vec());
        let mut buffer = ReadBuffer::new();
        let first = block_on(read_request(&mut stream, &mut buffer, 100))
            .unwrap()
            .unwrap();
        assert_eq!(
            (first.method.as_str(), first.path.as_str()),
            ("GET", "/xrpc/a")
        );
        let pairs: Vec<_> = query_pairs(&first.query).map(Result::unwrap).collect();
        assert_eq!(
            pairs,
            vec![("x".into(), "1".into()), ("y".into(), "A b".into())]
        );
        let second = block_on(read_request(&mut stream, &mut buffer, 100))
            .unwrap()
            .unwrap();
        assert_eq!(second.body, b"abc");
        assert!(
            block_on(read_request(&mut stream, &mut buffer, 100))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bounds_are_enforced() {
        let wire = b"POST /p HTTP/1.1\r\nContent-Length: 1000\r\n\r\n";
        let mut buffer = ReadBuffer::new();
        let result = block_on(read_request(
            &mut Cursor::new(wire.to_vec()),
            &mut buffer,
            10,
        ));
        assert!(matches!(result, Err(HttpError::BodyTooLarge)));
        let huge = vec![b'a'; HTTP_HEAD_BYTES_MAX * 2];
        let result = block_on(read_request(
            &mut Cursor::new(huge),
            &mut ReadBuffer::new(),
            10,
        ));
        assert!(matches!(result, Err(HttpError::HeadTooLarge)));
    }

    #[test]
    fn client_reads_chunked_responses() {
        let reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let mut stream = Duplex {
            input: Cursor::new(reply.to_vec()),
            output: Vec::new(),
        };
        let url = Url::parse("http://plc.test/did:plc:abc").unwrap();
        let response = block_on(client_request(&mut stream, "GET", &url, &[], b"", 100)).unwrap();
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, b"abcde".as_slice())
        );
        assert!(
            String::from_utf8(stream.output)
                .unwrap()
                .starts_with("GET /did:plc:abc HTTP/1.1\r\nHost: plc.test\r\n")
        );
    }

    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl AsyncRead for Duplex {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::pin::Pin::new(&mut self.input).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Duplex {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.output.extend_from_slice(buf);
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }
}
