//! The admin control plane: `/admin/*` on the API port, behind a bearer token.
//!
//! Owns: token checking (constant time), the admin routes, and [`AdminEvent`]s — the
//! changes the data plane must apply after the store has recorded them.
//! Must not: touch sessions, the event log or the sequencer itself (the serve wiring
//! receives [`AdminEvent`]s and applies them), or block the executor (store calls go
//! through `StateService` futures; the three live views below are read without waiting on
//! their mutexes).
//!
//! Auth: `Authorization: Bearer <token>`; a missing or wrong token is 401
//! `AuthenticationRequired`; no token configured disables admin (403 `Forbidden`). The
//! comparison hashes both sides (SHA-256) and compares the digests without an early exit,
//! so neither the token's bytes nor its length leak through timing.
//!
//! Routes (GET reads; POST takes a JSON object body; every POST is idempotent):
//!
//! | route | body / query | effect |
//! |---|---|---|
//! | `GET /admin/hosts` | `?cursor=&limit=` (1..=1000, default 200) | hosts with counters, stored limit settings and the limits in force (`effective`: default, grown or operator); `seqRegression` on a host whose seq went back (`runtime::seq_alerts`) |
//! | `POST /admin/hosts/ban` | `{hostname}` | host status `banned` (stored first if unknown); [`AdminEvent::HostBanned`] |
//! | `POST /admin/hosts/unban` | `{hostname}` | status `active`; [`AdminEvent::HostUnbanned`] |
//! | `POST /admin/hosts/changeLimits` | `{hostname, accountLimit?, perSecond?, perHour?, perDay?}`: a number sets the limit (`0` = unlimited), `null` returns it to the relay's default, absent keeps it | stored; [`AdminEvent::HostLimitsChanged`]: the host's shard applies it live |
//! | `POST /admin/hosts/resetCursor` | `{hostname}` | stored cursor 0; [`AdminEvent::HostCursorReset`] |
//! | `GET /admin/domains` | — | banned domains |
//! | `POST /admin/domains/ban`, `/unban` | `{domain}` | stored; [`AdminEvent::DomainBanned`] / `DomainUnbanned` |
//! | `POST /admin/repo/takedown`, `/reverseTakedown` | `{did}` | local status `takendown` / `active`; [`AdminEvent::AccountStatusChanged`] |
//! | `POST /admin/collections/backfill` | `{source, collections}` | queue collection backfill jobs (`collections.rs`) |
//! | `GET /admin/collections/backfill` | `?cursor=&limit=` | the collection indexer's cursor and the jobs' progress |
//! | `GET /admin/rejections` | `?host=` or `?did=` (exactly one), `&limit=` (1..=`ADMIN_REJECTIONS_LIST_ENTRIES_MAX`, default `ADMIN_REJECTIONS_LIST_ENTRIES_DEFAULT`) | the latest rejections of that host or account, newest first |
//! | `GET /admin/consumers` | — | every connected `subscribeRepos` consumer of every fan-out core |
//!
//! The live views. Rejections come from the ingest shards' rings
//! (`runtime::rejections`): each keeps its last `INGEST_REJECTION_LOG_ENTRIES_PER_SHARD_MAX`
//! refusals, so a listing covers that recent past only, and may miss an entry recorded
//! while a reader held its ring (counted, `relay_verify_rejection_log_dropped_total`).
//! `{"rejections": [{time (RFC 3339, µs), reason, host?, did?, seq?, frameType?, shard}]}`:
//! `host` is absent for the relay's own `#account` events (and `unknown_host` frames);
//! an unknown host or DID lists nothing; `did`, `seq` and `frameType`
//! when the frame was decoded far enough to know them; `seq` is the host's. Consumers come
//! from `fanout::ConsumerRegistry` (live counters, no staleness beyond the read):
//! `{"consumers": [{shard, remote, connectedAt, cursor?, sentSeq?, lagFrames, state
//! ("replaying" | "live"), framesSent, bytesSent}]}`, by core; `shard` is the fan-out
//! core's executor index, as in the `fanout` metrics. `GET /admin/hosts` adds to each host
//! the shards' seq-regression flag (`runtime::seq_alerts`), if it has one:
//! `seqRegression: {cursor, seq?, time, action}` — its seq went back below the relay's
//! cursor and its frames are refused until `resetCursor` (which clears the flag).
//!
//! Replies: `200 {}` (or the listing); unknown host or DID 400 `HostNotFound` /
//! `RepoNotFound`; bad body 400 `InvalidRequest`. If the event queue is full the change
//! is stored but the reply is 503: repeat the call (idempotent) so the data plane hears.

mod collections;

use crate::api::http::Request;
use crate::api::server::{Method, Reply, Router};
use crate::api::xrpc::{self, ApiContext, ApiError, ApiResult, Params, next_cursor};
use crate::config::limits::{
    ADMIN_REJECTIONS_LIST_ENTRIES_DEFAULT, ADMIN_REJECTIONS_LIST_ENTRIES_MAX,
    API_ADMIN_EVENT_QUEUE_ENTRIES_MAX,
};
use crate::fanout::ConsumerSnapshot;
use crate::runtime::rejections::{RejectionEntry, RejectionFilter};
use crate::runtime::seq_alerts::SeqRegression;
use crate::sim::account::rfc3339_micros;
use crate::state::{HostId, HostRecord, HostStatus, LocalStatus, RateLimits, Uid};
use crate::syntax::{Did, Handle};
use crate::verify::limits::{
    AccountLimitGrowth, EffectiveLimits, HostLimitSettings, HostLimitsBoard, LimitSetting,
};
use sha2::{Digest, Sha256};
use std::rc::Rc;

/// A change the data plane must apply; sent after the store recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminEvent {
    /// Disconnect the host and never resubscribe.
    HostBanned {
        /// Store id.
        host_id: HostId,
        /// Hostname.
        hostname: String,
    },
    /// The host may be subscribed again.
    HostUnbanned {
        /// Store id.
        host_id: HostId,
        /// Hostname.
        hostname: String,
    },
    /// New account and event-rate limits for the host, as stored (`verify::limits`: 0 =
    /// the relay's default, `HOST_LIMIT_UNLIMITED_STORED` = unlimited).
    HostLimitsChanged {
        /// Store id.
        host_id: HostId,
        /// Most accounts, stored value.
        account_limit: u64,
        /// Event rate limits, stored values.
        rate_limits: RateLimits,
    },
    /// Resubscribe the host from its start (stored cursor is now 0). The session's
    /// in-memory cursor and any value still in the write-behind buffer must be dropped,
    /// or the next flush writes the old cursor back.
    HostCursorReset {
        /// Store id.
        host_id: HostId,
    },
    /// Disconnect every host under this domain.
    DomainBanned {
        /// The domain.
        domain: String,
    },
    /// Hosts under this domain may be crawled again.
    DomainUnbanned {
        /// The domain.
        domain: String,
    },
    /// The relay's own status of an account changed: emit `#account` (active false with
    /// status `takendown`, or active true) and, on a takedown, tombstone its events in the
    /// event log.
    AccountStatusChanged {
        /// Account id.
        uid: Uid,
        /// The DID.
        did: String,
        /// The new local status.
        status: LocalStatus,
    },
}

/// The admin event queue, bounded by `API_ADMIN_EVENT_QUEUE_ENTRIES_MAX`. Full: the admin
/// call answers 503 after its store write (counted in `relay_api_errors_total{reason=
/// "busy"}`); nothing blocks. The sender goes in `ApiShared`, the receiver to the serve
/// wiring.
pub fn admin_channel() -> (flume::Sender<AdminEvent>, flume::Receiver<AdminEvent>) {
    flume::bounded(API_ADMIN_EVENT_QUEUE_ENTRIES_MAX)
}

/// Constant-time token check: SHA-256 of both, compared without an early exit.
pub fn token_matches(expected: &str, presented: &str) -> bool {
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn authorize(ctx: &ApiContext, request: &Request) -> Result<(), ApiError> {
    let Some(expected) = ctx.shared().admin_token.as_deref() else {
        return Err(ApiError::AdminDisabled);
    };
    let presented = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::AuthRequired)?;
    if token_matches(expected, presented.trim()) {
        Ok(())
    } else {
        Err(ApiError::AuthRequired)
    }
}

/// Register the `/admin` routes (called by `api::xrpc::register`).
pub fn register(router: &mut Router, ctx: &Rc<ApiContext>) {
    macro_rules! route {
        ($method:expr, $path:literal, $handler:path) => {
            xrpc::add(router, $method, $path, ctx, |ctx, request| async move {
                authorize(&ctx, &request)?;
                $handler(ctx, request).await
            });
        };
    }
    route!(Method::Get, "/admin/hosts", list_hosts);
    route!(Method::Post, "/admin/hosts/ban", ban_host);
    route!(Method::Post, "/admin/hosts/unban", unban_host);
    route!(Method::Post, "/admin/hosts/changeLimits", change_limits);
    route!(Method::Post, "/admin/hosts/resetCursor", reset_cursor);
    route!(Method::Get, "/admin/domains", list_domains);
    route!(Method::Post, "/admin/domains/ban", ban_domain);
    route!(Method::Post, "/admin/domains/unban", unban_domain);
    route!(Method::Post, "/admin/repo/takedown", takedown);
    route!(
        Method::Post,
        "/admin/repo/reverseTakedown",
        reverse_takedown
    );
    route!(
        Method::Post,
        "/admin/collections/backfill",
        collections::trigger
    );
    route!(
        Method::Get,
        "/admin/collections/backfill",
        collections::progress
    );
    route!(Method::Get, "/admin/rejections", list_rejections);
    route!(Method::Get, "/admin/consumers", list_consumers);
}

fn ok() -> Reply {
    Reply::json(200, &serde_json::json!({}))
}

fn notify(ctx: &ApiContext, event: AdminEvent) -> ApiResult {
    match ctx.shared().admin_events.try_send(event) {
        Ok(()) => Ok(ok()),
        Err(_) => Err(ApiError::Busy(
            "stored; admin event queue full, repeat the call",
        )),
    }
}

fn body(request: &Request) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match serde_json::from_slice(&request.body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(ApiError::InvalidRequest("body must be a JSON object")),
    }
}

fn string_field<'a>(
    map: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
    missing: &'static str,
) -> Result<&'a str, ApiError> {
    map.get(name)
        .and_then(serde_json::Value::as_str)
        .ok_or(ApiError::InvalidRequest(missing))
}

/// An optional limit field: absent keeps the stored value (`None`), `null` returns to the
/// relay's default, `0` is unlimited, a positive integer is that limit.
fn limit_field(
    map: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<LimitSetting>, ApiError> {
    match map.get(name) {
        None => Ok(None),
        Some(serde_json::Value::Null) => Ok(Some(LimitSetting::Default)),
        Some(v) => v
            .as_u64()
            .map(|n| Some(LimitSetting::from_request(n)))
            .ok_or(ApiError::InvalidRequest(
                "limits must be non-negative integers or null",
            )),
    }
}

/// A stored limit as the listing shows it: a number, `0` for unlimited, `null` for "not
/// set, the relay's default applies".
fn setting_json(stored: u64) -> serde_json::Value {
    match LimitSetting::from_stored(stored) {
        LimitSetting::Default => serde_json::Value::Null,
        LimitSetting::Unlimited => 0.into(),
        LimitSetting::Value(n) => n.into(),
    }
}

/// The limits in force of a host: as its ingest shard last published them, or (a host no
/// shard runs now) as they would start from its stored record.
fn effective_limits(host: &HostRecord, board: &HostLimitsBoard, defaults: bool) -> EffectiveLimits {
    board.get(host.id).unwrap_or_else(|| {
        EffectiveLimits::new(
            &HostLimitSettings::of_host(host),
            &AccountLimitGrowth::new(host.account_count),
            defaults,
        )
    })
}

/// A hostname as stored (lower case; `host:port` allowed, as loopback hosts are stored).
fn hostname_field(map: &serde_json::Map<String, serde_json::Value>) -> Result<String, ApiError> {
    let text = string_field(map, "hostname", "hostname is required")?;
    crate::api::xrpc::crawl_parse_any(text)
}

/// What `GET /admin/hosts` tells the operator of a host whose seq went back.
const SEQ_REGRESSION_ACTION: &str = "the host's seq went back below the relay's cursor and its \
    frames are refused: if the PDS was wiped or restored, POST /admin/hosts/resetCursor";

fn admin_host_json(
    host: &HostRecord,
    board: &HostLimitsBoard,
    defaults: bool,
    regression: Option<&SeqRegression>,
) -> serde_json::Value {
    let effective = effective_limits(host, board, defaults);
    let mut out = serde_json::json!({
        "id": host.id,
        "hostname": host.hostname,
        "status": host.status.as_str(),
        "seq": host.last_seq,
        "accountCount": host.account_count,
        "accountLimit": setting_json(host.account_limit),
        "ratePerSecond": setting_json(host.rate_limits.per_second),
        "ratePerHour": setting_json(host.rate_limits.per_hour),
        "ratePerDay": setting_json(host.rate_limits.per_day),
        "effective": {
            "accountLimit": effective.accounts,
            "accountLimitSource": effective.accounts_source.as_str(),
            "ratePerSecond": effective.rates.per_second,
            "ratePerHour": effective.rates.per_hour,
            "ratePerDay": effective.rates.per_day,
            "rateSource": effective.rates_source.as_str(),
        },
        "failures": host.failures,
        "firstSeenMs": host.first_seen_ms,
        "lastConnectedMs": host.last_connected_ms,
    });
    if let Some(regression) = regression {
        let mut flag = serde_json::json!({
            "cursor": regression.cursor,
            "time": rfc3339_micros(regression.time_micros),
            "action": SEQ_REGRESSION_ACTION,
        });
        if let Some(seq) = regression.seq {
            flag["seq"] = seq.into();
        }
        out["seqRegression"] = flag;
    }
    out
}

async fn list_hosts(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let params = Params::parse(&request.query)?;
    let limit = params.limit(xrpc::LIST_HOSTS_LIMIT_DEFAULT, xrpc::LIST_LIMIT_MAX)?;
    let after = params.cursor()?;
    let hosts = ctx
        .state()
        .call(move |store| store.list_hosts(after, limit))
        .await?;
    let (board, defaults) = (&ctx.shared().host_limits, ctx.shared().default_host_limits);
    let ids: Vec<u64> = hosts.iter().map(|h| h.id).collect();
    let flags = ctx.shared().seq_alerts.of(&ids).await;
    let mut out = serde_json::json!({
        "hosts": hosts
            .iter()
            .map(|h| admin_host_json(h, board, defaults, flags.get(&h.id)))
            .collect::<Vec<_>>(),
    });
    if let Some(cursor) = next_cursor(hosts.len(), limit, hosts.last().map(|h| h.id)) {
        out["cursor"] = cursor.into();
    }
    Ok(Reply::json(200, &out))
}

/// Sets a host's status, storing the host first when `create` and it is unknown.
async fn set_host_status(
    ctx: &ApiContext,
    hostname: String,
    status: HostStatus,
    create: bool,
) -> Result<HostRecord, ApiError> {
    let now = crate::api::xrpc::now_ms();
    ctx.state()
        .call(move |store| {
            let host = match store.get_host(&hostname)? {
                Some(host) => Some(host),
                None if create => Some(store.upsert_host(&hostname, now)?),
                None => None,
            };
            let Some(mut host) = host else {
                return Ok(None);
            };
            host.status = status;
            store.put_host(&host)?;
            Ok(Some(host))
        })
        .await?
        .ok_or(ApiError::HostNotFound)
}

async fn ban_host(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let hostname = hostname_field(&body(&request)?)?;
    let host = set_host_status(&ctx, hostname, HostStatus::Banned, true).await?;
    notify(
        &ctx,
        AdminEvent::HostBanned {
            host_id: host.id,
            hostname: host.hostname,
        },
    )
}

async fn unban_host(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let hostname = hostname_field(&body(&request)?)?;
    let host = set_host_status(&ctx, hostname, HostStatus::Active, false).await?;
    notify(
        &ctx,
        AdminEvent::HostUnbanned {
            host_id: host.id,
            hostname: host.hostname,
        },
    )
}

async fn change_limits(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let map = body(&request)?;
    let hostname = hostname_field(&map)?;
    let account_limit = limit_field(&map, "accountLimit")?;
    let per_second = limit_field(&map, "perSecond")?;
    let per_hour = limit_field(&map, "perHour")?;
    let per_day = limit_field(&map, "perDay")?;
    let stored = |asked: Option<LimitSetting>, old: u64| asked.map_or(old, LimitSetting::to_stored);
    let host = ctx
        .state()
        .call(move |store| {
            let Some(mut host) = store.get_host(&hostname)? else {
                return Ok(None);
            };
            host.account_limit = stored(account_limit, host.account_limit);
            let limits = &mut host.rate_limits;
            limits.per_second = stored(per_second, limits.per_second);
            limits.per_hour = stored(per_hour, limits.per_hour);
            limits.per_day = stored(per_day, limits.per_day);
            store.put_host(&host)?;
            Ok(Some(host))
        })
        .await?
        .ok_or(ApiError::HostNotFound)?;
    notify(
        &ctx,
        AdminEvent::HostLimitsChanged {
            host_id: host.id,
            account_limit: host.account_limit,
            rate_limits: host.rate_limits,
        },
    )
}

async fn reset_cursor(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let hostname = hostname_field(&body(&request)?)?;
    let host_id = ctx
        .state()
        .call(move |store| {
            let Some(host) = store.get_host(&hostname)? else {
                return Ok(None);
            };
            store.set_host_cursor(host.id, 0)?;
            Ok(Some(host.id))
        })
        .await?
        .ok_or(ApiError::HostNotFound)?;
    // The shard clears it too when it applies the reset (after frames still queued).
    ctx.shared().seq_alerts.clear(host_id).await;
    notify(&ctx, AdminEvent::HostCursorReset { host_id })
}

async fn list_domains(ctx: Rc<ApiContext>, _request: Request) -> ApiResult {
    let domains = ctx.state().call(|store| store.list_domain_bans()).await?;
    Ok(Reply::json(200, &serde_json::json!({ "domains": domains })))
}

fn domain_field(map: &serde_json::Map<String, serde_json::Value>) -> Result<String, ApiError> {
    let text = string_field(map, "domain", "domain is required")?;
    let domain = text.to_ascii_lowercase();
    Handle::parse(&domain).map_err(|_| ApiError::InvalidRequest("domain is not a valid domain"))?;
    Ok(domain)
}

async fn ban_domain(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let domain = domain_field(&body(&request)?)?;
    let stored = domain.clone();
    ctx.state()
        .call(move |store| store.put_domain_ban(&stored))
        .await?;
    notify(&ctx, AdminEvent::DomainBanned { domain })
}

async fn unban_domain(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let domain = domain_field(&body(&request)?)?;
    let stored = domain.clone();
    ctx.state()
        .call(move |store| store.delete_domain_ban(&stored))
        .await?;
    notify(&ctx, AdminEvent::DomainUnbanned { domain })
}

async fn set_account_status(
    ctx: Rc<ApiContext>,
    request: Request,
    status: LocalStatus,
) -> ApiResult {
    let map = body(&request)?;
    let did = string_field(&map, "did", "did is required")?;
    let did = Did::parse(did).map_err(|_| ApiError::InvalidRequest("did is not a valid DID"))?;
    let key = did.as_str().to_owned();
    let uid = ctx
        .state()
        .call(move |store| {
            let Some(account) = store.get_account(&key)? else {
                return Ok(None);
            };
            store.set_local_status(account.uid, status)?;
            Ok(Some(account.uid))
        })
        .await?
        .ok_or(ApiError::RepoNotFound)?;
    notify(
        &ctx,
        AdminEvent::AccountStatusChanged {
            uid,
            did: did.as_str().to_owned(),
            status,
        },
    )
}

async fn takedown(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    set_account_status(ctx, request, LocalStatus::Takendown).await
}

async fn reverse_takedown(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    set_account_status(ctx, request, LocalStatus::Active).await
}

/// What `?host=` / `?did=` asks for: exactly one, a valid hostname or DID.
enum Wanted {
    Host(String),
    Did(Did),
}

fn rejections_filter(params: &Params) -> Result<Wanted, ApiError> {
    match (params.get("host")?, params.get("did")?) {
        (Some(host), None) => Ok(Wanted::Host(crate::api::xrpc::crawl_parse_any(host)?)),
        (None, Some(did)) => Did::parse(did)
            .map(Wanted::Did)
            .map_err(|_| ApiError::InvalidRequest("did is not a valid DID")),
        _ => Err(ApiError::InvalidRequest(
            "exactly one of host and did is required",
        )),
    }
}

fn rejection_json(entry: &RejectionEntry) -> serde_json::Value {
    let mut out = serde_json::json!({
        "time": rfc3339_micros(entry.time_micros),
        "reason": entry.reason,
        "shard": entry.shard,
    });
    if let Some(host) = &entry.host {
        out["host"] = host.as_ref().into();
    }
    if let Some(did) = &entry.did {
        out["did"] = did.as_str().into();
    }
    if let Some(seq) = entry.seq {
        out["seq"] = seq.into();
    }
    if let Some(frame_type) = entry.frame_type {
        out["frameType"] = frame_type.into();
    }
    out
}

async fn list_rejections(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let params = Params::parse(&request.query)?;
    let wanted = rejections_filter(&params)?;
    let limit = params.limit(
        ADMIN_REJECTIONS_LIST_ENTRIES_DEFAULT as u64,
        ADMIN_REJECTIONS_LIST_ENTRIES_MAX as u64,
    )?;
    let filter = match &wanted {
        Wanted::Host(host) => RejectionFilter::Host(host),
        Wanted::Did(did) => RejectionFilter::Did(did.as_str()),
    };
    let entries = ctx.shared().rejections.query(filter, limit).await;
    let rejections: Vec<_> = entries.iter().map(rejection_json).collect();
    Ok(Reply::json(
        200,
        &serde_json::json!({ "rejections": rejections }),
    ))
}

fn consumer_json(consumer: &ConsumerSnapshot) -> serde_json::Value {
    let mut out = serde_json::json!({
        "shard": consumer.shard,
        "remote": consumer.remote.to_string(),
        "connectedAt": rfc3339_micros(consumer.connected_micros),
        "lagFrames": consumer.lag_frames,
        "state": if consumer.replaying { "replaying" } else { "live" },
        "framesSent": consumer.frames_sent,
        "bytesSent": consumer.bytes_sent,
    });
    if let Some(cursor) = consumer.cursor {
        out["cursor"] = cursor.into();
    }
    if let Some(seq) = consumer.sent_seq {
        out["sentSeq"] = seq.into();
    }
    out
}

async fn list_consumers(ctx: Rc<ApiContext>, _request: Request) -> ApiResult {
    let consumers = ctx.shared().consumers.snapshot().await;
    let consumers: Vec<_> = consumers.iter().map(consumer_json).collect();
    Ok(Reply::json(
        200,
        &serde_json::json!({ "consumers": consumers }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_need_exactly_one_valid_filter() {
        let wanted = |query: &str| rejections_filter(&Params::parse(query).unwrap());
        assert!(
            matches!(wanted("host=PDS.example.com"), Ok(Wanted::Host(h)) if h == "pds.example.com")
        );
        assert!(matches!(wanted("host=127.0.0.1:2583"), Ok(Wanted::Host(_))));
        assert!(matches!(wanted("did=did:plc:abc"), Ok(Wanted::Did(_))));
        for bad in [
            "",
            "limit=5",
            "host=a.example&did=did:plc:abc",
            "host=a.example&host=b.example",
            "host=",
            "host=not%20a%20host",
            "did=notadid",
        ] {
            assert!(
                matches!(wanted(bad), Err(ApiError::InvalidRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches("secret", "secret"));
        assert!(!token_matches("secret", "secret2"));
        assert!(!token_matches("secret", "Secret"));
        assert!(!token_matches("secret", ""));
    }
}
