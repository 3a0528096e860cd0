//! `com.atproto.sync.requestCrawl`: host admission.
//!
//! Owns: hostname syntax, the SSRF policy (private, loopback, link-local, reserved
//! addresses and names resolving to them), domain and host bans, the per-day new-host
//! budget, the liveness check (`GET /xrpc/com.atproto.server.describeServer` over
//! `api::http::client_request`, TLS through futures-rustls with the ring provider), the
//! relay-loop guard on its `Server` header, and handing accepted hosts to the ingest
//! side ([`CrawlRequest`] over a bounded channel).
//! Must not: subscribe to the host (ingest does), or block the executor (DNS runs on
//! glommio's blocking pool; the check is bounded by `API_CRAWL_CHECK_TIMEOUT_MILLIS_MAX`).
//!
//! Order: syntax → bans (store) → budget → resolve + address policy → liveness → store
//! (`upsert_host`) → channel. The check connects only to the addresses it validated, so
//! a name cannot pass the policy with one answer and be dialled at another.
//! Without `allow_private_hosts`: no port, no IP literal, no `localhost`/`.local`/
//! `.internal`/`.arpa` names, `https` only. With it (loopback tests): `host:port`, IP
//! literals and plain `http` for IP literals (names, `localhost` included, keep https).
//! Does not check: that the host is a PDS beyond answering `describeServer` with a
//! `did`; ports other than 443 are not refused when private hosts are allowed.

use super::{ApiContext, ApiError, ApiResult};
use crate::api::http::{Request, Url, client_request};
use crate::api::server::Reply;
use crate::config::limits::{
    API_CRAWL_CHECK_TIMEOUT_MILLIS_MAX, API_CRAWL_DESCRIBE_BODY_BYTES_MAX,
    API_CRAWL_QUEUE_ENTRIES_MAX, API_HOSTNAME_BYTES_MAX, API_NEW_HOSTS_PER_DAY_MAX,
};
use crate::state::{HostId, HostStatus};
use crate::syntax::Handle;
use crate::upstream::target::is_relay_server;
use futures_lite::{AsyncRead, AsyncWrite};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A host requestCrawl accepted: stored (status as it was, `active` if new) and live.
/// The ingest side subscribes to `wss://{hostname}` (`ws://` when private hosts are
/// allowed and the host is an IP literal). For a known host (`new:
/// false`) this is the operator-free way back from `offline` or `idle`: ingest should
/// reset its failure count and reconnect if no session runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrawlRequest {
    /// The host's id in the store.
    pub host_id: HostId,
    /// Lower-case hostname (`host:port` only when private hosts are allowed).
    pub hostname: String,
    /// True when the host was first stored by this request.
    pub new: bool,
}

/// The crawl-request queue, bounded by `API_CRAWL_QUEUE_ENTRIES_MAX`. Policy when full:
/// requestCrawl answers 503 (counted as `relay_api_crawl_refused_total{reason=
/// "queue_full"}`); nothing blocks. The sender goes in [`super::ApiShared`]; the receiver
/// to the ingest side.
pub fn crawl_channel() -> (flume::Sender<CrawlRequest>, flume::Receiver<CrawlRequest>) {
    flume::bounded(API_CRAWL_QUEUE_ENTRIES_MAX)
}

/// Milliseconds per UTC day.
const DAY_MILLIS: u64 = 24 * 60 * 60 * 1000;

/// How many new hosts requestCrawl may still admit today (UTC), shared by all cores.
/// In memory only: a restart gives a fresh budget, as in indigo.
#[derive(Debug)]
pub struct NewHostBudget {
    per_day: u64,
    used: Mutex<(u64, u64)>,
}

impl Default for NewHostBudget {
    fn default() -> Self {
        NewHostBudget::new(API_NEW_HOSTS_PER_DAY_MAX)
    }
}

impl NewHostBudget {
    /// A budget of `per_day` new hosts a day.
    pub fn new(per_day: u64) -> NewHostBudget {
        NewHostBudget {
            per_day,
            used: Mutex::new((0, 0)),
        }
    }

    fn used(&self) -> std::sync::MutexGuard<'_, (u64, u64)> {
        self.used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes one unit of today's budget; false when it is spent.
    pub fn try_take(&self, now_ms: u64) -> bool {
        let day = now_ms / DAY_MILLIS;
        let mut used = self.used();
        if used.0 != day {
            *used = (day, 0);
        }
        if used.1 >= self.per_day {
            return false;
        }
        used.1 += 1;
        true
    }

    /// Gives back a unit taken today (the host was refused after all).
    pub fn give_back(&self, now_ms: u64) {
        let mut used = self.used();
        if used.0 == now_ms / DAY_MILLIS {
            used.1 = used.1.saturating_sub(1);
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn refused(reason: &'static str) {
    metrics::counter!("relay_api_crawl_refused_total", "reason" => reason).increment(1);
}

/// A hostname as requestCrawl accepts it: the name (or IP literal) and optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrawlHost {
    /// Lower-case name or IP literal.
    pub host: String,
    /// Explicit port (private-hosts mode only).
    pub port: Option<u16>,
}

impl CrawlHost {
    /// The stored hostname: `host` or `host:port`.
    pub fn hostname(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Names that only mean something on a local network (RFC 6761, RFC 6762, ICANN's
/// `.internal`); refused before any lookup.
const LOCAL_SUFFIXES: [&str; 6] = [
    "localhost",
    ".localhost",
    ".local",
    ".internal",
    ".arpa",
    ".invalid",
];

/// Parses a requestCrawl hostname (not a URL: no scheme, path or user info).
pub fn parse_hostname(text: &str, allow_private: bool) -> Result<CrawlHost, ApiError> {
    let bad = ApiError::InvalidRequest("hostname is not a valid host name");
    if text.is_empty() || text.len() > API_HOSTNAME_BYTES_MAX {
        return Err(bad);
    }
    let lower = text.to_ascii_lowercase();
    let (host, port) = match lower.rsplit_once(':') {
        Some((host, port)) => {
            if !allow_private {
                return Err(ApiError::InvalidRequest("hostname must not carry a port"));
            }
            let port = port.parse::<u16>().map_err(|_| bad)?;
            (host.to_owned(), Some(port))
        }
        None => (lower, None),
    };
    if host.parse::<Ipv4Addr>().is_ok() || (allow_private && host == "localhost") {
        if !allow_private {
            return Err(ApiError::HostRefused("IP address hosts are not crawled"));
        }
        return Ok(CrawlHost { host, port });
    }
    if Handle::parse(&host).is_err() {
        return Err(ApiError::InvalidRequest(
            "hostname is not a valid host name",
        ));
    }
    if !allow_private
        && LOCAL_SUFFIXES
            .iter()
            .any(|s| host == s.trim_start_matches('.') || host.ends_with(s))
    {
        return Err(ApiError::HostRefused("local names are not crawled"));
    }
    Ok(CrawlHost { host, port })
}

/// `http` for IP literals when private hosts are allowed, else `https` (names, including
/// `localhost`, keep TLS: a certificate can name them).
pub fn scheme_for(hostname: &str, allow_private: bool) -> &'static str {
    let host = hostname.rsplit_once(':').map_or(hostname, |(h, _)| h);
    if allow_private && host.parse::<IpAddr>().is_ok() {
        "http"
    } else {
        "https"
    }
}

/// True for addresses a relay may dial on the public internet: not loopback, private
/// (RFC 1918, unique-local), link-local, CGNAT, unspecified, multicast, broadcast,
/// documentation, benchmarking or reserved. IPv4-mapped IPv6 is judged as its IPv4.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let reserved = ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT, RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, RFC 2544
        || a >= 240; // reserved, RFC 1112
    !reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let reserved = ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64: judged by where it maps
        || first == 0; // other IPv4-compatible and reserved forms
    !reserved
}

/// Keeps the addresses the policy allows; refuses the host if any answer is not public
/// (a name that resolves to an internal address is not crawled, whatever else it says).
pub fn check_addresses(
    addrs: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, ApiError> {
    if addrs.is_empty() {
        return Err(ApiError::HostRefused("hostname did not resolve"));
    }
    if !allow_private && addrs.iter().any(|a| !is_public_ip(a.ip())) {
        return Err(ApiError::HostRefused(
            "hostname resolves to a non-public address",
        ));
    }
    Ok(addrs)
}

/// The handler of `POST /xrpc/com.atproto.sync.requestCrawl`.
pub(crate) async fn request_crawl(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let allow_private = ctx.shared.allow_private_hosts;
    let hostname = body_hostname(&request.body)?;
    let host = parse_hostname(&hostname, allow_private).inspect_err(|e| refused(e.reason()))?;
    let name = host.hostname();
    let existing = check_bans(&ctx, &host.host, &name).await?;
    let now = now_ms();
    if existing.is_none() && !ctx.shared.new_hosts.try_take(now) {
        refused("budget");
        return Err(ApiError::RateLimited);
    }
    let result = admit(&ctx, &host, &name, existing.is_none()).await;
    if result.is_err() && existing.is_none() {
        ctx.shared.new_hosts.give_back(now);
    }
    result
}

fn body_hostname(body: &[u8]) -> Result<String, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| ApiError::InvalidRequest("body is not JSON"))?;
    match value.get("hostname") {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::InvalidRequest("hostname must be a string")),
        None => Err(ApiError::InvalidRequest("hostname is required")),
    }
}

/// True when `host` is `domain` or one of its subdomains.
pub fn domain_matches(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Refuses a banned domain or host; returns the stored host's status when known.
async fn check_bans(
    ctx: &ApiContext,
    host: &str,
    name: &str,
) -> Result<Option<HostStatus>, ApiError> {
    let (host, name) = (host.to_owned(), name.to_owned());
    let (banned_domain, stored) = ctx
        .state()
        .call(move |store| {
            let bans = store.list_domain_bans()?;
            let banned = bans.iter().any(|d| domain_matches(&host, d));
            Ok((banned, store.get_host(&name)?.map(|h| h.status)))
        })
        .await?;
    if banned_domain || stored == Some(HostStatus::Banned) {
        refused("banned");
        return Err(ApiError::HostBanned);
    }
    Ok(stored)
}

/// Liveness, then store and hand over.
async fn admit(ctx: &ApiContext, host: &CrawlHost, name: &str, new: bool) -> ApiResult {
    let allow_private = ctx.shared.allow_private_hosts;
    let timeout = Duration::from_millis(API_CRAWL_CHECK_TIMEOUT_MILLIS_MAX);
    let check = liveness(host, name, allow_private, &ctx.shared.tls);
    let expired = async {
        glommio::timer::sleep(timeout).await;
        Err(ApiError::HostRefused(
            "host did not answer describeServer in time",
        ))
    };
    futures_lite::future::or(check, expired)
        .await
        .inspect_err(|e| refused(e.reason()))?;
    let stored_name = name.to_owned();
    let record = ctx
        .state()
        .call(move |store| store.upsert_host(&stored_name, now_ms()))
        .await?;
    let request = CrawlRequest {
        host_id: record.id,
        hostname: record.hostname,
        new,
    };
    if ctx.shared.crawl_requests.try_send(request).is_err() {
        refused("queue_full");
        return Err(ApiError::Busy("crawl queue full, retry"));
    }
    metrics::counter!("relay_api_crawl_accepted_total").increment(1);
    Ok(Reply {
        status: 200,
        content_type: "application/json",
        body: Vec::new(),
        close: false,
        headers: Vec::new(),
    })
}

async fn resolve(host: &CrawlHost, allow_private: bool) -> Result<Vec<SocketAddr>, ApiError> {
    let port = host
        .port
        .unwrap_or(if scheme_for(&host.host, allow_private) == "http" {
            80
        } else {
            443
        });
    if let Ok(ip) = host.host.parse::<IpAddr>() {
        return check_addresses(vec![SocketAddr::new(ip, port)], allow_private);
    }
    let name = host.host.clone();
    let resolved = glommio::executor()
        .spawn_blocking(move || {
            (name.as_str(), port)
                .to_socket_addrs()
                .map(|addrs| addrs.collect::<Vec<_>>())
        })
        .await
        .unwrap_or_default();
    check_addresses(resolved, allow_private)
}

/// `describeServer` answers 200 with a JSON object carrying a string `did` (required by
/// its lexicon), from a server that does not say it is a relay.
async fn liveness(
    host: &CrawlHost,
    name: &str,
    allow_private: bool,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<(), ApiError> {
    let addrs = resolve(host, allow_private).await?;
    let scheme = scheme_for(name, allow_private);
    let url = Url::parse(&format!(
        "{scheme}://{name}/xrpc/com.atproto.server.describeServer"
    ))
    .map_err(|_| ApiError::InvalidRequest("hostname is not a valid host name"))?;
    let tcp = connect_any(&addrs).await?;
    let response = if scheme == "https" {
        let server_name = rustls::pki_types::ServerName::try_from(host.host.clone())
            .map_err(|_| ApiError::InvalidRequest("hostname is not a valid TLS name"))?;
        let connector = futures_rustls::TlsConnector::from(Arc::clone(tls));
        let mut stream = connector
            .connect(server_name, tcp)
            .await
            .map_err(|_| ApiError::HostRefused("TLS handshake with the host failed"))?;
        describe(&mut stream, &url).await?
    } else {
        let mut tcp = tcp;
        describe(&mut tcp, &url).await?
    };
    check_describe(&response)
}

/// The relay guard first (a relay answering an error is still a relay), then the answer.
fn check_describe(response: &crate::api::http::Response) -> Result<(), ApiError> {
    if is_relay_server(response.header("server")) {
        return Err(ApiError::HostRefused(
            "host is a relay; relays are not crawled",
        ));
    }
    if response.status != 200 {
        return Err(ApiError::HostRefused("describeServer did not answer 200"));
    }
    let body: serde_json::Value = serde_json::from_slice(&response.body)
        .map_err(|_| ApiError::HostRefused("describeServer body is not JSON"))?;
    if !body.get("did").is_some_and(serde_json::Value::is_string) {
        return Err(ApiError::HostRefused("describeServer has no did"));
    }
    Ok(())
}

async fn describe<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    url: &Url,
) -> Result<crate::api::http::Response, ApiError> {
    let accept = [("Accept", "application/json")];
    client_request(
        stream,
        "GET",
        url,
        &accept,
        b"",
        API_CRAWL_DESCRIBE_BODY_BYTES_MAX,
    )
    .await
    .map_err(|_| ApiError::HostRefused("describeServer request failed"))
}

async fn connect_any(addrs: &[SocketAddr]) -> Result<glommio::net::TcpStream, ApiError> {
    let timeout = Duration::from_millis(API_CRAWL_CHECK_TIMEOUT_MILLIS_MAX);
    for addr in addrs {
        if let Ok(stream) = glommio::net::TcpStream::connect_timeout(*addr, timeout).await {
            return Ok(stream);
        }
    }
    Err(ApiError::HostRefused("could not connect to the host"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_checked_for_syntax_and_locality() {
        let ok = parse_hostname("PDS.Example.com", false).unwrap();
        assert_eq!(ok.hostname(), "pds.example.com");
        for bad in [
            "",
            "pds",
            "https://pds.example.com",
            "pds.example.com/x",
            "-a.com",
            "a..com",
            "pds.example.com:443",
            "a b.com",
        ] {
            assert!(parse_hostname(bad, false).is_err(), "{bad}");
        }
        for local in [
            "localhost",
            "127.0.0.1",
            "10.0.0.1",
            "printer.local",
            "db.internal",
            "1.0.0.127.in-addr.arpa",
        ] {
            assert!(parse_hostname(local, false).is_err(), "{local}");
        }
        let private = parse_hostname("127.0.0.1:2583", true).unwrap();
        assert_eq!(
            (private.host.as_str(), private.port),
            ("127.0.0.1", Some(2583))
        );
        assert!(parse_hostname("127.0.0.1:99999", true).is_err());
    }

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(!is_public_ip(ip), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            let ip: IpAddr = public.parse().unwrap();
            assert!(is_public_ip(ip), "{public}");
        }
        let mixed = vec![
            "8.8.8.8:443".parse().unwrap(),
            "10.0.0.1:443".parse().unwrap(),
        ];
        assert!(check_addresses(mixed.clone(), false).is_err());
        assert_eq!(check_addresses(mixed, true).unwrap().len(), 2);
        assert!(check_addresses(Vec::new(), true).is_err());
    }

    #[test]
    fn domain_bans_cover_subdomains_only() {
        assert!(domain_matches("example.com", "example.com"));
        assert!(domain_matches("pds.example.com", "example.com"));
        assert!(!domain_matches("badexample.com", "example.com"));
        assert!(!domain_matches("example.com.evil", "example.com"));
    }

    #[test]
    fn the_budget_resets_each_day() {
        let budget = NewHostBudget::new(2);
        assert!(budget.try_take(5) && budget.try_take(6) && !budget.try_take(7));
        budget.give_back(8);
        assert!(budget.try_take(9));
        assert!(budget.try_take(DAY_MILLIS + 1));
    }

    #[test]
    fn describe_answers_are_judged_relay_guard_first() {
        let response = |status, server: Option<&str>, body: &str| crate::api::http::Response {
            status,
            headers: server
                .map(|s| vec![("server".to_owned(), s.to_owned())])
                .unwrap_or_default(),
            body: body.as_bytes().to_vec(),
        };
        assert!(check_describe(&response(200, Some("pds"), r#"{"did":"did:web:a"}"#)).is_ok());
        let relay = response(503, Some("zlay (atproto-relay)"), "");
        let refused = check_describe(&relay).unwrap_err();
        assert!(matches!(refused, ApiError::HostRefused(m) if m.contains("relay")));
        for (status, body) in [
            (404, "{}"),
            (200, "nope"),
            (200, r#"{"did":5}"#),
            (200, "[]"),
        ] {
            assert!(
                check_describe(&response(status, None, body)).is_err(),
                "{status} {body}"
            );
        }
    }

    #[test]
    fn plain_http_only_for_private_literals() {
        assert_eq!(scheme_for("127.0.0.1:80", true), "http");
        assert_eq!(scheme_for("localhost:80", true), "https");
        assert_eq!(scheme_for("pds.example.com", true), "https");
        assert_eq!(scheme_for("127.0.0.1:80", false), "https");
    }
}
