//! The relay's `com.atproto.sync.*` query and procedure endpoints (everything but the
//! `subscribeRepos` stream, which `fanout` serves), over the state store.
//!
//! Owns: [`ApiShared`] (the `Send` parts built once per process) and [`ApiContext`] (one
//! per fan-out core), [`register`] (which also registers the `admin` routes), parameter
//! parsing and the lexicon error names, and requestCrawl host admission (`crawl`).
//! Must not: block the executor (every store call goes through [`StateService`] futures;
//! DNS runs on glommio's blocking pool), open upstream subscriptions (accepted crawl
//! requests go to the ingest side over [`ApiShared::crawl_requests`]).
//!
//! Always checks: parameters against the lexicons in
//! `atproto-lexicons/com/atproto/sync/*.json` (required, syntax of DIDs and TIDs,
//! `limit` within the lexicon's `minimum..=maximum`, cursors are decimal ids) — a bad
//! one is 400 `InvalidRequest`. Lexicon errors (`HostNotFound`, `RepoNotFound`,
//! `RepoTakendown`, `RepoSuspended`, `RepoDeactivated`, `HostBanned`) are 400, as XRPC
//! custom errors are; a full state queue is 503, a store failure 500.
//!
//! Paging: `listHosts` pages by host id, `listRepos` by uid, `listReposByCollection` by
//! DID; the cursor is the last id of
//! the page, returned only when the page was full (so a last page may come back empty).
//!
//! Heads: `listRepos.head` and `getLatestCommit.cid` are the CID of the account's last
//! accepted commit block (`AccountRecord::commit_cid`, stored with the rev from the
//! verified `#commit` / `#sync`), printed as base32 `b…` text ([`head_cid`]). The lexicon
//! requires `head` and `rev`, so an account without both — no commit relayed yet, or a
//! rev stored by an older relay version that did not record the commit CID, until the
//! account's next commit — is left out of `listRepos` and is `RepoNotFound` for
//! `getLatestCommit`; `getRepoStatus` still reports it (its `rev` is optional).
//!
//! `listReposByCollection` pages the collection index (`collections`) by DID: the cursor
//! is the last DID read, `limit` 1..=2000 (default 500) as in its lexicon.

mod crawl;

pub(crate) use crawl::now_ms;
pub use crawl::{
    CrawlHost, CrawlRequest, NewHostBudget, check_addresses, crawl_channel, domain_matches,
    is_public_ip, parse_hostname,
};

/// A hostname as the admin API names it: syntax-checked like requestCrawl's with
/// private hosts allowed (an operator may name any stored host), lower-cased.
pub(crate) fn crawl_parse_any(text: &str) -> Result<String, ApiError> {
    crawl::parse_hostname(text, true).map(|h| h.hostname())
}

use crate::admin::{self, AdminEvent};
use crate::api::http::{Request, query_pairs};
use crate::api::server::{Method, Reply, Router};
use crate::config::limits::{
    COLLECTIONS_LIST_PAGE_ENTRIES_DEFAULT, COLLECTIONS_LIST_PAGE_ENTRIES_MAX,
};
use crate::frame::cid::Cid;
use crate::state::{
    AccountRecord, HostRecord, HostStatus, LocalStatus, StateError, StateService, UpstreamStatus,
};
use crate::syntax::{Did, Tid};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

/// `listHosts.limit` default (lexicon).
pub(crate) const LIST_HOSTS_LIMIT_DEFAULT: u64 = 200;
/// `listRepos.limit` default (lexicon).
const LIST_REPOS_LIMIT_DEFAULT: u64 = 500;
/// `limit` maximum of both list endpoints (lexicon `maximum`; also the store's page).
pub(crate) const LIST_LIMIT_MAX: u64 = 1000;

/// What the serve wiring builds once and hands (cloned) to every fan-out core.
///
/// The lead must connect: `state` (the process's one [`StateService`]); the receiving
/// end of `crawl_requests` (from [`crawl_channel`]) to the ingest side, which subscribes
/// to each [`CrawlRequest`]'s host; the receiving end of `admin_events` (from
/// [`admin::admin_channel`]) to whatever applies [`AdminEvent`]s (disconnect a banned
/// host, reload limits, reset a session cursor, emit `#account` and tombstone the event
/// log on a takedown).
#[derive(Clone)]
pub struct ApiShared {
    /// The state thread.
    pub state: Arc<StateService>,
    /// Bearer token of `/admin/*`; `None` disables admin (403).
    pub admin_token: Option<String>,
    /// Accept private, loopback and link-local hosts, ports and plain `http` liveness
    /// checks (loopback tests and development only).
    pub allow_private_hosts: bool,
    /// Accepted requestCrawl hosts, to the ingest side.
    pub crawl_requests: flume::Sender<CrawlRequest>,
    /// Admin changes the data plane must apply.
    pub admin_events: flume::Sender<AdminEvent>,
    /// TLS client configuration of the liveness checks (`upstream::tls::client_tls_config`).
    pub tls: Arc<rustls::ClientConfig>,
    /// The per-day new-host budget, shared by every core.
    pub new_hosts: Arc<NewHostBudget>,
    /// The collection backfill worker (admin triggers wake it); `None`: no backfill.
    pub backfill: Option<crate::collections::backfill::BackfillWorker>,
    /// Allow `http://` backfill sources (loopback tests; `--allow-plaintext`).
    pub allow_plaintext: bool,
    /// The ingest shards' recent rejections, read by `GET /admin/rejections` (an empty
    /// log, `RejectionLog::default()`, lists nothing).
    pub rejections: Arc<crate::runtime::rejections::RejectionLog>,
    /// Every fan-out core's consumers, read by `GET /admin/consumers` (each core's hub
    /// registers its view when it starts).
    pub consumers: Arc<crate::fanout::ConsumerRegistry>,
    /// The limits in force of the hosts the ingest shards run (`GET /admin/hosts`).
    pub host_limits: Arc<crate::verify::limits::HostLimitsBoard>,
    /// Whether the relay's default host limits apply (false: `--no-default-host-limits`).
    pub default_host_limits: bool,
    /// Hosts whose upstream seq went back below the relay's cursor, flagged in
    /// `GET /admin/hosts` until `resetCursor` (an empty map flags nothing).
    pub seq_alerts: Arc<crate::runtime::seq_alerts::SeqAlerts>,
}

/// One core's view of the API: the shared parts plus this core's counters.
pub struct ApiContext {
    shared: ApiShared,
}

impl ApiContext {
    /// The context of one fan-out core.
    pub fn new(shared: ApiShared) -> ApiContext {
        ApiContext { shared }
    }

    /// The shared parts.
    pub fn shared(&self) -> &ApiShared {
        &self.shared
    }

    /// The state thread.
    pub fn state(&self) -> &StateService {
        &self.shared.state
    }
}

/// Errors of the API layer; each maps to one XRPC error reply.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// A parameter or body is missing or malformed (400 `InvalidRequest`).
    InvalidRequest(&'static str),
    /// `getHostStatus` of an unknown host (400 `HostNotFound`).
    HostNotFound,
    /// An unknown DID (400 `RepoNotFound`).
    RepoNotFound,
    /// A known account whose current commit the relay does not know: none relayed yet,
    /// or its rev was stored without the commit CID (400 `RepoNotFound`, the lexicon's
    /// name for it, with its own message and label).
    NoCommit,
    /// The account is taken down (400 `RepoTakendown`).
    RepoTakendown,
    /// The account is suspended (400 `RepoSuspended`).
    RepoSuspended,
    /// The account is deactivated (400 `RepoDeactivated`).
    RepoDeactivated,
    /// requestCrawl of a banned host or domain (400 `HostBanned`).
    HostBanned,
    /// requestCrawl refused the host: private address, no answer, a relay, … (400).
    HostRefused(&'static str),
    /// The daily new-host budget is spent (429 `RateLimitExceeded`).
    RateLimited,
    /// A bounded queue (state requests, crawl or admin notifications) is full (503).
    Busy(&'static str),
    /// The store failed (500 `InternalServerError`).
    Store(StateError),
    /// Admin: no or wrong bearer token (401 `AuthenticationRequired`).
    AuthRequired,
    /// Admin: no token configured (403 `Forbidden`).
    AdminDisabled,
}

impl ApiError {
    /// A short static label, usable as a bounded metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::HostNotFound => "host_not_found",
            ApiError::RepoNotFound => "repo_not_found",
            ApiError::NoCommit => "no_commit",
            ApiError::RepoTakendown => "repo_takendown",
            ApiError::RepoSuspended => "repo_suspended",
            ApiError::RepoDeactivated => "repo_deactivated",
            ApiError::HostBanned => "host_banned",
            ApiError::HostRefused(_) => "host_refused",
            ApiError::RateLimited => "rate_limited",
            ApiError::Busy(_) => "busy",
            ApiError::Store(_) => "store",
            ApiError::AuthRequired => "auth_required",
            ApiError::AdminDisabled => "admin_disabled",
        }
    }

    /// The XRPC error reply.
    pub fn reply(&self) -> Reply {
        let (status, name, message) = match self {
            ApiError::InvalidRequest(m) => (400, "InvalidRequest", *m),
            ApiError::HostNotFound => (400, "HostNotFound", "host not known to this relay"),
            ApiError::RepoNotFound => (400, "RepoNotFound", "repo not found"),
            ApiError::NoCommit => (400, "RepoNotFound", "no commit of this repo relayed yet"),
            ApiError::RepoTakendown => (400, "RepoTakendown", "repo has been taken down"),
            ApiError::RepoSuspended => (400, "RepoSuspended", "repo is suspended"),
            ApiError::RepoDeactivated => (400, "RepoDeactivated", "repo is deactivated"),
            ApiError::HostBanned => (400, "HostBanned", "host or domain is banned"),
            ApiError::HostRefused(m) => (400, "InvalidRequest", *m),
            ApiError::RateLimited => (429, "RateLimitExceeded", "new-host limit reached today"),
            ApiError::Busy(m) => (503, "ServiceUnavailable", *m),
            ApiError::Store(StateError::QueueFull) => {
                (503, "ServiceUnavailable", "state queue full, retry")
            }
            ApiError::Store(_) => (500, "InternalServerError", "state store failed"),
            ApiError::AuthRequired => (401, "AuthenticationRequired", "bad or missing token"),
            ApiError::AdminDisabled => (403, "Forbidden", "admin API disabled (no token)"),
        };
        Reply::xrpc_error(status, name, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Store(e) => write!(f, "store: {e}"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        ApiError::Store(e)
    }
}

/// The result of a handler body.
pub type ApiResult = Result<Reply, ApiError>;

/// Register every XRPC endpoint of this module and the `/admin` routes on `router`.
/// Call once per fan-out core with that core's context.
pub fn register(router: &mut Router, ctx: Rc<ApiContext>) {
    let sync = "/xrpc/com.atproto.sync.";
    add(
        router,
        Method::Get,
        &format!("{sync}listHosts"),
        &ctx,
        list_hosts,
    );
    add(
        router,
        Method::Get,
        &format!("{sync}getHostStatus"),
        &ctx,
        get_host_status,
    );
    add(
        router,
        Method::Get,
        &format!("{sync}listRepos"),
        &ctx,
        list_repos,
    );
    add(
        router,
        Method::Get,
        &format!("{sync}getRepoStatus"),
        &ctx,
        get_repo_status,
    );
    add(
        router,
        Method::Get,
        &format!("{sync}getLatestCommit"),
        &ctx,
        get_latest_commit,
    );
    add(
        router,
        Method::Get,
        &format!("{sync}getRepo"),
        &ctx,
        get_repo,
    );
    add(
        router,
        Method::Get,
        &format!("{sync}listReposByCollection"),
        &ctx,
        list_repos_by_collection,
    );
    add(
        router,
        Method::Post,
        &format!("{sync}requestCrawl"),
        &ctx,
        crawl::request_crawl,
    );
    admin::register(router, &ctx);
}

/// Route `path` to `handler`, giving it the context; errors become their XRPC replies.
pub(crate) fn add<F, Fut>(
    router: &mut Router,
    method: Method,
    path: &str,
    ctx: &Rc<ApiContext>,
    handler: F,
) where
    F: Fn(Rc<ApiContext>, Request) -> Fut + 'static,
    Fut: Future<Output = ApiResult> + 'static,
{
    let ctx = Rc::clone(ctx);
    router.route(method, path, move |request: Request| {
        let done = handler(Rc::clone(&ctx), request);
        async move {
            match done.await {
                Ok(reply) => reply,
                Err(e) => {
                    metrics::counter!("relay_api_errors_total", "reason" => e.reason())
                        .increment(1);
                    e.reply()
                }
            }
        }
    });
}

/// Decoded query parameters.
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decode a query string; broken percent-encoding is `InvalidRequest`.
    pub(crate) fn parse(query: &str) -> Result<Params, ApiError> {
        let pairs = query_pairs(query)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ApiError::InvalidRequest("malformed query string"))?;
        Ok(Params { pairs })
    }

    /// The value of `name`; given twice is `InvalidRequest` (the lexicons take scalars).
    pub(crate) fn get(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut found = self.pairs.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(ApiError::InvalidRequest("parameter given more than once"));
        }
        Ok(first)
    }

    pub(crate) fn required(&self, name: &str, missing: &'static str) -> Result<&str, ApiError> {
        self.get(name)?.ok_or(ApiError::InvalidRequest(missing))
    }

    /// `limit` within `1..=max` (lexicon `minimum`, `maximum`), `default` when absent.
    pub(crate) fn limit(&self, default: u64, max: u64) -> Result<usize, ApiError> {
        let Some(text) = self.get("limit")? else {
            return Ok(default as usize);
        };
        match text.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n as usize),
            _ => Err(ApiError::InvalidRequest("limit out of range")),
        }
    }

    /// The id after which a page starts: 0 without a cursor.
    pub(crate) fn cursor(&self) -> Result<u64, ApiError> {
        match self.get("cursor")? {
            None => Ok(0),
            Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text
                .parse()
                .map_err(|_| ApiError::InvalidRequest("bad cursor")),
            Some(_) => Err(ApiError::InvalidRequest("bad cursor")),
        }
    }

    /// A required `did` parameter, syntax-checked.
    fn did(&self) -> Result<Did, ApiError> {
        let text = self.required("did", "did is required")?;
        Did::parse(text).map_err(|_| ApiError::InvalidRequest("did is not a valid DID"))
    }
}

/// The `cursor` of a page: its last id, when the page was full.
pub(crate) fn next_cursor(page_len: usize, limit: usize, last: Option<u64>) -> Option<String> {
    (page_len == limit)
        .then_some(last)
        .flatten()
        .map(|id| id.to_string())
}

fn host_json(host: &HostRecord) -> serde_json::Value {
    serde_json::json!({
        "hostname": host.hostname,
        "seq": host.last_seq,
        "accountCount": host.account_count,
        "status": host.status.as_str(),
    })
}

async fn list_hosts(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let params = Params::parse(&request.query)?;
    let limit = params.limit(LIST_HOSTS_LIMIT_DEFAULT, LIST_LIMIT_MAX)?;
    let after = params.cursor()?;
    let hosts = ctx
        .state()
        .call(move |store| store.list_hosts(after, limit))
        .await?;
    let mut body = serde_json::json!({
        "hosts": hosts.iter().map(host_json).collect::<Vec<_>>(),
    });
    if let Some(cursor) = next_cursor(hosts.len(), limit, hosts.last().map(|h| h.id)) {
        body["cursor"] = cursor.into();
    }
    Ok(Reply::json(200, &body))
}

async fn get_host_status(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let params = Params::parse(&request.query)?;
    let hostname = params.required("hostname", "hostname is required")?;
    let host = ctx
        .state()
        .load_host(&hostname.to_ascii_lowercase())
        .await?
        .ok_or(ApiError::HostNotFound)?;
    Ok(Reply::json(200, &host_json(&host)))
}

/// Whether an account is active and, if not, the lexicon status saying why. The relay's
/// own decision wins over what the host said. An upstream status outside the lexicon's
/// values (`Unknown`) is inactive without a claimed reason.
pub fn account_status(account: &AccountRecord) -> (bool, Option<&'static str>) {
    let local = match account.local_status {
        LocalStatus::Takendown => Some("takendown"),
        LocalStatus::Suspended => Some("suspended"),
        LocalStatus::Throttled => Some("throttled"),
        _ => None,
    };
    if local.is_some() {
        return (false, local);
    }
    match account.upstream_status {
        UpstreamStatus::Active => (true, None),
        UpstreamStatus::Unknown => (false, None),
        other => (false, Some(other.as_str())),
    }
}

/// The repo's head: the stored commit CID as base32 `b…` text. `None` before the first
/// commit, for a rev stored without its commit CID, or for a stored CID that does not
/// parse (the store does not check CIDs; a malformed one is logged, never served).
pub fn head_cid(account: &AccountRecord) -> Option<String> {
    let bytes = account.commit_cid.as_deref()?;
    match Cid::from_bytes(bytes) {
        Ok(cid) => Some(cid.to_string()),
        Err(e) => {
            log::warn!(
                "account uid {}: stored commit CID unreadable: {e}",
                account.uid
            );
            None
        }
    }
}

fn repo_json(account: &AccountRecord) -> Option<serde_json::Value> {
    let rev = account.rev.as_deref()?;
    let head = head_cid(account)?;
    let (active, status) = account_status(account);
    let mut repo =
        serde_json::json!({ "did": account.did, "head": head, "rev": rev, "active": active });
    if let Some(status) = status {
        repo["status"] = status.into();
    }
    Some(repo)
}

async fn list_repos(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let params = Params::parse(&request.query)?;
    let limit = params.limit(LIST_REPOS_LIMIT_DEFAULT, LIST_LIMIT_MAX)?;
    let after = params.cursor()?;
    let accounts = ctx
        .state()
        .call(move |store| store.list_accounts(after, limit))
        .await?;
    // Accounts without a known commit (none yet, or a rev stored without its CID) have
    // no head (required): skip them; the cursor still moves past them.
    let repos: Vec<_> = accounts.iter().filter_map(repo_json).collect();
    let mut body = serde_json::json!({ "repos": repos });
    if let Some(cursor) = next_cursor(accounts.len(), limit, accounts.last().map(|a| a.uid)) {
        body["cursor"] = cursor.into();
    }
    Ok(Reply::json(200, &body))
}

/// `listReposByCollection`: a page of the collection index, without accounts this relay
/// knows are not active (taken down, suspended, deactivated, deleted). The cursor is the
/// last DID of the index page read, so a page thinned by that filter still advances.
async fn list_repos_by_collection(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let params = Params::parse(&request.query)?;
    let collection = params.required("collection", "collection is required")?;
    let collection = crate::syntax::Nsid::parse(collection)
        .map_err(|_| ApiError::InvalidRequest("collection is not a valid NSID"))?;
    let limit = params.limit(
        COLLECTIONS_LIST_PAGE_ENTRIES_DEFAULT as u64,
        COLLECTIONS_LIST_PAGE_ENTRIES_MAX as u64,
    )?;
    let after = match params.get("cursor")? {
        None => String::new(),
        Some(text) => Did::parse(text)
            .map_err(|_| ApiError::InvalidRequest("bad cursor"))?
            .as_str()
            .to_owned(),
    };
    let (page, repos) = ctx
        .state()
        .call(move |store| {
            let page = store.list_collection_repos(collection.as_str(), &after, limit)?;
            let mut repos = Vec::with_capacity(page.len());
            for did in &page {
                let hidden = store
                    .get_account(did)?
                    .is_some_and(|account| account_status(&account).1.is_some());
                if !hidden {
                    repos.push(serde_json::json!({ "did": did }));
                }
            }
            Ok((page, repos))
        })
        .await?;
    let mut body = serde_json::json!({ "repos": repos });
    if page.len() == limit
        && let Some(last) = page.last()
    {
        body["cursor"] = last.clone().into();
    }
    Ok(Reply::json(200, &body))
}

async fn load_account(ctx: &ApiContext, did: &Did) -> Result<AccountRecord, ApiError> {
    ctx.state()
        .load_account(did.as_str())
        .await?
        .ok_or(ApiError::RepoNotFound)
}

async fn get_repo_status(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let did = Params::parse(&request.query)?.did()?;
    let account = load_account(&ctx, &did).await?;
    let (active, status) = account_status(&account);
    let mut body = serde_json::json!({ "did": account.did, "active": active });
    if let Some(status) = status {
        body["status"] = status.into();
    }
    if let Some(rev) = &account.rev {
        body["rev"] = rev.as_str().into();
    }
    Ok(Reply::json(200, &body))
}

/// The lexicon error for an account whose repo may not be served: taken down, suspended,
/// deactivated; a deleted account is not found. Throttled and desynchronized accounts
/// still have a current commit, which is served.
fn refuse_inactive(account: &AccountRecord) -> Result<(), ApiError> {
    match account_status(account) {
        (_, Some("takendown")) => Err(ApiError::RepoTakendown),
        (_, Some("suspended")) => Err(ApiError::RepoSuspended),
        (_, Some("deactivated")) => Err(ApiError::RepoDeactivated),
        (_, Some("deleted")) => Err(ApiError::RepoNotFound),
        _ => Ok(()),
    }
}

async fn get_latest_commit(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let did = Params::parse(&request.query)?.did()?;
    let account = load_account(&ctx, &did).await?;
    refuse_inactive(&account)?;
    let (Some(rev), Some(cid)) = (account.rev.as_deref(), head_cid(&account)) else {
        return Err(ApiError::NoCommit);
    };
    Ok(Reply::json(
        200,
        &serde_json::json!({ "cid": cid, "rev": rev }),
    ))
}

async fn get_repo(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let params = Params::parse(&request.query)?;
    let did = params.did()?;
    let since = params.get("since")?;
    if let Some(since) = since {
        Tid::parse(since).map_err(|_| ApiError::InvalidRequest("since is not a valid TID"))?;
    }
    let account = load_account(&ctx, &did).await?;
    refuse_inactive(&account)?;
    let host_id = account.host_id;
    let host = ctx
        .state()
        .call(move |store| store.get_host_by_id(host_id))
        .await?
        .ok_or(ApiError::RepoNotFound)?;
    if host.status == HostStatus::Banned {
        return Err(ApiError::RepoNotFound);
    }
    let scheme = crawl::scheme_for(&host.hostname, ctx.shared.allow_private_hosts);
    let mut location = format!(
        "{scheme}://{}/xrpc/com.atproto.sync.getRepo?did={}",
        host.hostname,
        crate::api::http::percent_encode(did.as_str())
    );
    if let Some(since) = since {
        location.push_str("&since=");
        location.push_str(since);
    }
    Ok(Reply::redirect(location))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors_follow_the_lexicon_bounds() {
        let p = Params::parse("limit=1000&cursor=42").unwrap();
        assert_eq!(p.limit(200, 1000).unwrap(), 1000);
        assert_eq!(p.cursor().unwrap(), 42);
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=-1",
            "limit=x",
            "limit=1&limit=2",
        ] {
            assert!(
                Params::parse(bad).unwrap().limit(200, 1000).is_err(),
                "{bad}"
            );
        }
        for bad in [
            "cursor=",
            "cursor=-1",
            "cursor=abc",
            "cursor=1e3",
            "cursor=99999999999999999999",
        ] {
            assert!(Params::parse(bad).unwrap().cursor().is_err(), "{bad}");
        }
        assert_eq!(Params::parse("").unwrap().limit(200, 1000).unwrap(), 200);
        assert!(Params::parse("x=%zz").is_err());
    }

    #[test]
    fn the_cursor_is_given_only_for_full_pages() {
        assert_eq!(next_cursor(2, 2, Some(7)), Some("7".into()));
        assert_eq!(next_cursor(1, 2, Some(7)), None);
        assert_eq!(next_cursor(0, 2, None), None);
    }
}
