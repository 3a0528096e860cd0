//! Who an upstream session talks to, decided before any socket exists: the host's URL
//! reduced to a connect target, the plaintext policy, the subscribeRepos path with the
//! cursor, and the relay-loop guard on the upgrade response. Pure.
//!
//! Owns: [`HostId`], [`HostTarget`], [`ConnectTarget`], [`subscribe_path`],
//! [`is_relay_server`], the relay's User-Agent.
//! Must not: resolve names or open sockets (that is `connect`).
//! Always checks: the scheme is `ws` or `wss`; `ws://` only when the target allows
//! plaintext. Does not check: whether the address is public (SSRF policy belongs to host
//! admission, which decides `allow_plaintext` and which hosts become targets at all).

use crate::api::http::{Scheme, Url};
use crate::upstream::error::SessionError;

/// The path of the firehose endpoint every PDS serves.
pub const SUBSCRIBE_REPOS_PATH: &str = "/xrpc/com.atproto.sync.subscribeRepos";

/// Our User-Agent on upstream connections: names this relay and carries the
/// `(atproto-relay)` marker that relays look for, so an upstream relay can refuse us as
/// we refuse it.
pub const USER_AGENT: &str = concat!("relay/", env!("CARGO_PKG_VERSION"), " (atproto-relay)");

/// The marker relays put in their `Server` header (indigo: `indigo-relay/<ver>
/// (atproto-relay)`, zlay: `zlay (atproto-relay)`) and check on their upstreams.
pub const RELAY_SERVER_MARKER: &str = "atproto-relay";

/// A host's number in the relay's host table (assigned by host admission).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId(pub u64);

/// One upstream host as the session is told about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTarget {
    /// The host's number (carried on every delivered frame).
    pub host_id: HostId,
    /// `wss://host[:port]` (a path, if any, is replaced by the subscribeRepos path).
    pub url: String,
    /// Whether `ws://` is allowed for this host (loopback tests, explicit configuration).
    pub allow_plaintext: bool,
}

/// Where to connect and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectTarget {
    /// Name or IP literal, without brackets: resolved (or parsed) by `connect`, and the
    /// TLS server name.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Whether the connection uses TLS.
    pub tls: bool,
    /// The `Host` header value.
    pub host_header: String,
}

impl ConnectTarget {
    /// Reduce a target's URL to a connect target, applying the plaintext policy.
    pub fn from_target(target: &HostTarget) -> Result<ConnectTarget, SessionError> {
        let url = Url::parse(&target.url).map_err(|_| SessionError::BadUrl)?;
        let tls = match url.scheme {
            Scheme::Wss => true,
            Scheme::Ws if target.allow_plaintext => false,
            Scheme::Ws => return Err(SessionError::PlaintextRefused),
            Scheme::Http | Scheme::Https => return Err(SessionError::BadUrl),
        };
        if url.host.is_empty() {
            return Err(SessionError::BadUrl);
        }
        Ok(ConnectTarget {
            host_header: url.host_header(),
            host: url.host,
            port: url.port,
            tls,
        })
    }
}

/// The request path, with `?cursor=N` when the verifier holds a cursor for the host.
pub fn subscribe_path(cursor: Option<u64>) -> String {
    match cursor {
        Some(seq) => format!("{SUBSCRIBE_REPOS_PATH}?cursor={seq}"),
        None => SUBSCRIBE_REPOS_PATH.to_owned(),
    }
}

/// The loop guard: does this `Server` header say the peer is a relay? Relays consuming
/// relays would re-ingest their own output in a loop, so such an upstream is refused
/// (`upstream_is_relay`). Case-insensitive, anywhere in the header, as indigo checks.
pub fn is_relay_server(server: Option<&str>) -> bool {
    server.is_some_and(|value| {
        value
            .to_ascii_lowercase()
            .contains(&RELAY_SERVER_MARKER.to_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, allow_plaintext: bool) -> HostTarget {
        HostTarget {
            host_id: HostId(1),
            url: url.to_owned(),
            allow_plaintext,
        }
    }

    #[test]
    fn urls_become_connect_targets() {
        let wss = ConnectTarget::from_target(&target("wss://PDS.example.com", false)).unwrap();
        assert_eq!(
            wss,
            ConnectTarget {
                host: "pds.example.com".into(),
                port: 443,
                tls: true,
                host_header: "pds.example.com".into(),
            }
        );
        let ws = ConnectTarget::from_target(&target("ws://127.0.0.1:2583/ignored", true)).unwrap();
        assert_eq!(
            (ws.host.as_str(), ws.port, ws.tls),
            ("127.0.0.1", 2583, false)
        );
        assert_eq!(ws.host_header, "127.0.0.1:2583");
        let v6 = ConnectTarget::from_target(&target("wss://[::1]:8443", false)).unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 8443));
        assert_eq!(v6.host_header, "[::1]:8443");
    }

    #[test]
    fn plaintext_and_foreign_schemes_are_refused_with_a_reason() {
        let refused = ConnectTarget::from_target(&target("ws://pds.example.com", false));
        assert_eq!(refused.unwrap_err().reason(), "plaintext_refused");
        for url in [
            "https://pds.example.com",
            "ftp://x",
            "wss://",
            "pds.example.com",
        ] {
            let err = ConnectTarget::from_target(&target(url, true)).unwrap_err();
            assert_eq!(err.reason(), "bad_url", "{url}");
        }
    }

    #[test]
    fn the_cursor_goes_in_the_query() {
        assert_eq!(
            subscribe_path(None),
            "/xrpc/com.atproto.sync.subscribeRepos"
        );
        assert_eq!(
            subscribe_path(Some(42)),
            "/xrpc/com.atproto.sync.subscribeRepos?cursor=42"
        );
    }

    #[test]
    fn relays_are_recognised_by_their_server_header() {
        assert!(is_relay_server(Some("indigo-relay/0.2.0 (atproto-relay)")));
        assert!(is_relay_server(Some("zlay (ATProto-Relay)")));
        assert!(is_relay_server(Some(USER_AGENT)));
        assert!(!is_relay_server(Some("nginx/1.25")));
        assert!(!is_relay_server(Some("bluesky-pds")));
        assert!(!is_relay_server(None));
    }
}
