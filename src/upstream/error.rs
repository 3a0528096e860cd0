//! Why an upstream connection ended or could not start: one enum for the session layer,
//! each variant with a bounded `reason()` used as the `reason` label of
//! `relay_upstream_disconnects_total` and as the admin API's last error.
//!
//! Owns: the reasons. Must not: carry a host name or any peer-chosen text (labels stay
//! bounded; the verifier's own reasons are `&'static str`).

use crate::frame::ws::WsError;
use crate::upstream::reader::ReadError;
use std::fmt;
use std::io;

/// Why a connection ended (or the session refused to open one).
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionError {
    /// The target's URL does not parse or is not `ws`/`wss`.
    BadUrl,
    /// `ws://` to a host that is not allowed plaintext.
    PlaintextRefused,
    /// The name did not resolve (or resolved to nothing).
    Resolve,
    /// The TCP connection was refused.
    ConnectRefused,
    /// Resolving, connecting, TLS and the upgrade did not finish in time.
    ConnectTimeout,
    /// Another socket error while connecting.
    Connect(io::ErrorKind),
    /// The TLS handshake failed (certificate, protocol, server name).
    Tls,
    /// The upgrade response head is malformed, too large or has a wrong accept key.
    Handshake(WsError),
    /// The upgrade was answered with this status instead of 101.
    HandshakeStatus(u16),
    /// The upstream's `Server` header names a relay (the loop guard).
    UpstreamIsRelay,
    /// The frame reader refused the stream.
    Read(ReadError),
    /// Nothing arrived for the read-idle time-out.
    IdleTimeout,
    /// The peer sent Close.
    ClosedByPeer,
    /// The peer closed the socket without a Close frame.
    Eof,
    /// A socket read or write failed on an open connection.
    Io(io::ErrorKind),
    /// The verifier asked for the connection to be dropped, for this reason.
    Verifier(&'static str),
    /// `SessionControl::stop` ended the session.
    Stopped,
    /// The frame channel's receiver is gone: nobody consumes this core's frames.
    ReceiverClosed,
}

impl SessionError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            SessionError::BadUrl => "bad_url",
            SessionError::PlaintextRefused => "plaintext_refused",
            SessionError::Resolve => "resolve_failed",
            SessionError::ConnectRefused => "connect_refused",
            SessionError::ConnectTimeout => "connect_timeout",
            SessionError::Connect(_) => "connect_failed",
            SessionError::Tls => "tls_failed",
            SessionError::Handshake(_) => "handshake_malformed",
            SessionError::HandshakeStatus(429) => "handshake_status_429",
            SessionError::HandshakeStatus(status) if *status >= 500 => "handshake_status_5xx",
            SessionError::HandshakeStatus(status) if *status >= 400 => "handshake_status_4xx",
            SessionError::HandshakeStatus(_) => "handshake_status_other",
            SessionError::UpstreamIsRelay => "upstream_is_relay",
            SessionError::Read(e) => e.reason(),
            SessionError::IdleTimeout => "idle_timeout",
            SessionError::ClosedByPeer => "closed_by_peer",
            SessionError::Eof => "peer_eof",
            SessionError::Io(_) => "io_error",
            SessionError::Verifier(reason) => reason,
            SessionError::Stopped => "stopped",
            SessionError::ReceiverClosed => "receiver_closed",
        }
    }

    /// Whether retrying cannot help: the session ends instead of backing off.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            SessionError::BadUrl
                | SessionError::PlaintextRefused
                | SessionError::UpstreamIsRelay
                | SessionError::Stopped
                | SessionError::ReceiverClosed
        )
    }

    /// Classify a socket error met while connecting.
    pub fn from_connect_io(error: &io::Error) -> SessionError {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => SessionError::ConnectRefused,
            io::ErrorKind::TimedOut => SessionError::ConnectTimeout,
            kind => SessionError::Connect(kind),
        }
    }

    /// Classify a socket error met on an open connection.
    pub fn from_stream_io(error: &io::Error) -> SessionError {
        match error.kind() {
            io::ErrorKind::UnexpectedEof => SessionError::Eof,
            io::ErrorKind::TimedOut => SessionError::IdleTimeout,
            kind => SessionError::Io(kind),
        }
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Connect(kind) | SessionError::Io(kind) => {
                write!(f, "{}: {kind}", self.reason())
            }
            SessionError::HandshakeStatus(status) => write!(f, "{}: {status}", self.reason()),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for SessionError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_collapse_to_bounded_labels() {
        let label = |s| SessionError::HandshakeStatus(s).reason();
        assert_eq!(label(429), "handshake_status_429");
        assert_eq!(label(503), "handshake_status_5xx");
        assert_eq!(label(404), "handshake_status_4xx");
        assert_eq!(label(200), "handshake_status_other");
    }

    #[test]
    fn reader_reasons_pass_through_and_terminal_ones_are_marked() {
        let read = SessionError::Read(ReadError::TextMessage);
        assert_eq!(read.reason(), "upstream_text_message");
        assert!(!read.is_terminal());
        assert!(SessionError::UpstreamIsRelay.is_terminal());
        assert!(!SessionError::ConnectRefused.is_terminal());
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            SessionError::from_connect_io(&refused).reason(),
            "connect_refused"
        );
    }
}
