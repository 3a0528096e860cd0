//! Admin routes of the collection index: trigger and watch backfills.
//!
//! | route | body / query | effect |
//! |---|---|---|
//! | `POST /admin/collections/backfill` | `{source, collections: [nsid…]}` | queue (or resume) one job per collection; wakes the worker |
//! | `GET /admin/collections/backfill` | `?cursor=&limit=` (1..=1000, default 200) | the indexer's cursor and every job's progress |
//!
//! Owns: parsing and replies. The jobs themselves are `collections::backfill`'s.

use super::body;
use crate::api::http::Request;
use crate::api::server::Reply;
use crate::api::xrpc::{self, ApiContext, ApiError, ApiResult, Params};
use crate::collections::backfill::{self, Job, TriggerError};
use crate::collections::indexer::INDEX_CURSOR_KEY;
use crate::config::limits::COLLECTIONS_BACKFILL_COLLECTIONS_MAX;
use crate::syntax::Nsid;
use std::rc::Rc;

/// `POST /admin/collections/backfill`.
pub(super) async fn trigger(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let map = body(&request)?;
    let source = map
        .get("source")
        .and_then(serde_json::Value::as_str)
        .ok_or(ApiError::InvalidRequest("source is required"))?;
    let source =
        backfill::parse_source(source, ctx.shared().allow_plaintext).map_err(trigger_error)?;
    let collections = collections_field(&map)?;
    let Some(worker) = ctx.shared().backfill.clone() else {
        return Err(ApiError::Busy("collection backfill is not running"));
    };
    let queued = ctx
        .state()
        .call(move |store| backfill::queue_jobs(store, &source, &collections))
        .await?;
    worker.wake();
    Ok(Reply::json(200, &serde_json::json!({ "queued": queued })))
}

fn collections_field(
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<Nsid>, ApiError> {
    let list = map
        .get("collections")
        .and_then(serde_json::Value::as_array)
        .filter(|list| !list.is_empty())
        .ok_or(ApiError::InvalidRequest(
            "collections must be a non-empty array of NSIDs",
        ))?;
    if list.len() > COLLECTIONS_BACKFILL_COLLECTIONS_MAX {
        return Err(ApiError::InvalidRequest(
            "too many collections in one trigger",
        ));
    }
    list.iter()
        .map(|value| {
            value
                .as_str()
                .and_then(|text| Nsid::parse(text).ok())
                .ok_or_else(|| trigger_error(TriggerError::BadCollection))
        })
        .collect()
}

fn trigger_error(e: TriggerError) -> ApiError {
    match e {
        TriggerError::BadSource(why) => ApiError::InvalidRequest(why),
        TriggerError::BadCollection => {
            ApiError::InvalidRequest("collections must be a non-empty array of NSIDs")
        }
    }
}

/// `GET /admin/collections/backfill`: the indexer's cursor and a page of jobs (paged by
/// job key; the cursor is the last key of a full page).
pub(super) async fn progress(ctx: Rc<ApiContext>, request: Request) -> ApiResult {
    let params = Params::parse(&request.query)?;
    let limit = params.limit(xrpc::LIST_HOSTS_LIMIT_DEFAULT, xrpc::LIST_LIMIT_MAX)?;
    let after = params.get("cursor")?.unwrap_or_default().to_owned();
    let (index, jobs) = ctx
        .state()
        .call(move |store| {
            let index = store.get_backfill(INDEX_CURSOR_KEY)?;
            Ok((index, backfill::list_jobs(store, &after, limit)?))
        })
        .await?;
    let index = index.map_or_else(
        || serde_json::json!({ "cursor": 0, "pairsWritten": 0 }),
        |r| {
            serde_json::json!({
                "cursor": r.cursor.parse::<u64>().unwrap_or(0),
                "pairsWritten": r.done,
            })
        },
    );
    let mut out = serde_json::json!({
        "index": index,
        "jobs": jobs.iter().map(job_json).collect::<Vec<_>>(),
    });
    if jobs.len() == limit
        && let Some(last) = jobs.last()
    {
        out["cursor"] = Job::key(&last.source, &last.collection).into();
    }
    Ok(Reply::json(200, &out))
}

fn job_json(job: &Job) -> serde_json::Value {
    serde_json::json!({
        "source": job.source,
        "collection": job.collection,
        "status": job.progress.status,
        "cursor": job.progress.cursor,
        "imported": job.progress.done,
        "refused": job.progress.failed,
    })
}
