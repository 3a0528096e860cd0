//! Blocking client connections for the tools that run on their own threads: identity
//! resolution workers and `relay tail`. Plain TCP, or TLS with rustls (ring provider
//! only) and the system trust roots.
//!
//! Owns: connecting with a time-out, socket read/write time-outs, the rustls client
//! configuration. Must not: run on a glommio data-plane executor (every call blocks its
//! thread; DNS goes through the system resolver).
//! Always checks: the server certificate against the system roots and the host name
//! (rustls' webpki verifier). Does not check: anything above TLS.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Why a connection could not be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The host name did not resolve to any address.
    Dns,
    /// No address accepted the connection in time.
    Connect(io::Error),
    /// The host is not a valid TLS server name.
    ServerName,
    /// The TLS configuration could not be built (no usable roots, provider refused).
    TlsConfig,
    /// The TLS session could not start.
    Tls,
}

impl ConnectError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            ConnectError::Dns => "dns",
            ConnectError::Connect(e) if is_timeout(e) => "connect_timeout",
            ConnectError::Connect(_) => "connect",
            ConnectError::ServerName => "tls_server_name",
            ConnectError::TlsConfig => "tls_config",
            ConnectError::Tls => "tls",
        }
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Connect(e) => write!(f, "{}: {e}", self.reason()),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for ConnectError {}

/// True for the error kinds a socket time-out produces.
pub fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The rustls client configuration: ring provider (never the process default, so a
/// second provider compiled in cannot make the builder panic), safe protocol versions,
/// the system roots. Certificates the system store cannot parse are skipped.
pub fn tls_client_config() -> Result<Arc<ClientConfig>, ConnectError> {
    let mut roots = RootCertStore::empty();
    let loaded = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(loaded.certs);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| ConnectError::TlsConfig)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A connected client stream, plain or TLS.
#[derive(Debug)]
pub enum ClientStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl ClientStream {
    /// Connect to `host:port` within `timeout`; with `tls`, start a TLS session for
    /// `host`. Reads and writes then time out after `io_timeout`.
    pub fn connect(
        host: &str,
        port: u16,
        tls: Option<&Arc<ClientConfig>>,
        timeout: Duration,
        io_timeout: Duration,
    ) -> Result<ClientStream, ConnectError> {
        let tcp = connect_tcp(host, port, timeout)?;
        tcp.set_read_timeout(Some(io_timeout))
            .and_then(|()| tcp.set_write_timeout(Some(io_timeout)))
            .and_then(|()| tcp.set_nodelay(true))
            .map_err(ConnectError::Connect)?;
        let Some(config) = tls else {
            return Ok(ClientStream::Plain(tcp));
        };
        let name = ServerName::try_from(host.to_owned()).map_err(|_| ConnectError::ServerName)?;
        let connection =
            ClientConnection::new(Arc::clone(config), name).map_err(|_| ConnectError::Tls)?;
        Ok(ClientStream::Tls(Box::new(StreamOwned::new(
            connection, tcp,
        ))))
    }

    /// The TCP socket under the stream (to change its time-outs).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(tcp) => tcp,
            ClientStream::Tls(tls) => tls.get_ref(),
        }
    }
}

fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let addresses = (host, port)
        .to_socket_addrs()
        .map_err(|_| ConnectError::Dns)?;
    let mut last = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or(ConnectError::Dns, ConnectError::Connect))
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(tcp) => tcp.read(buf),
            ClientStream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(tcp) => tcp.write(buf),
            ClientStream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ClientStream::Plain(tcp) => tcp.flush(),
            ClientStream::Tls(tls) => tls.flush(),
        }
    }
}

/// Why a blocking [`get`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum FetchError {
    /// The connection could not be opened.
    Connect(ConnectError),
    /// The HTTP exchange failed.
    Http(crate::api::http::HttpError),
}

impl FetchError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::Connect(e) => e.reason(),
            FetchError::Http(e) => e.reason(),
        }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Connect(e) => write!(f, "connect: {}", e.reason()),
            FetchError::Http(e) => write!(f, "{e}"),
        }
    }
}

/// `GET url` on the calling thread (blocking), reading at most `body_bytes_max` of body.
/// TLS for `https`/`wss` with `tls`; every step times out after `timeout`.
pub fn get(
    url: &crate::api::http::Url,
    accept: &str,
    body_bytes_max: usize,
    timeout: Duration,
    tls: &Arc<ClientConfig>,
) -> Result<crate::api::http::Response, FetchError> {
    let tls = url.scheme.is_tls().then_some(tls);
    let stream = ClientStream::connect(&url.host, url.port, tls, timeout, timeout)
        .map_err(FetchError::Connect)?;
    let mut stream = futures_lite::io::AssertAsync::new(stream);
    futures_lite::future::block_on(crate::api::http::client_request(
        &mut stream,
        "GET",
        url,
        &[("Accept", accept)],
        &[],
        body_bytes_max,
    ))
    .map_err(FetchError::Http)
}
