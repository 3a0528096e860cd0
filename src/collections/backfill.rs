//! Collection backfill: fill the index from another relay's `listReposByCollection`, one
//! collection at a time, resumable.
//!
//! Owns: the job records (in the store's backfill table, key
//! `collections <source> <collection>`: the source's cursor, DIDs imported, DIDs refused,
//! status `queued` → `running` → `done` | `failed`), the worker thread that runs them, and
//! the page exchange. Must not: run on a data-plane core (every fetch blocks its thread),
//! or write anything but the collection index and its own job records.
//!
//! Resumable: progress is saved after every page, and the worker picks up every `queued`
//! or `running` job at start, so a restart continues where it stopped. A job whose source
//! fails `COLLECTIONS_BACKFILL_ATTEMPTS_MAX` times in a row is marked `failed` (its cursor
//! kept); triggering it again resumes it. Triggering a `done` job starts it over (the
//! source has new accounts since).
//!
//! Trust: the source is named by an operator through the admin API; its DIDs are syntax-
//! checked (a bad one is counted in the job's `failed`, the page goes on) and nothing else
//! is believed — an account listed by the source but never seen here is still listed by
//! this relay's `listReposByCollection` (that is the point of a backfill), and hidden by
//! it if this relay knows the account is not active.
//!
//! Wake queue: one slot; a trigger that finds it full needs nothing more (the worker is
//! already due to rescan the jobs). The worker also rescans every
//! `COLLECTIONS_BACKFILL_IDLE_SECS`.
//!
//! Metrics: `relay_collections_backfill_pages_total`,
//! `relay_collections_backfill_dids_total`, `relay_collections_backfill_errors_total{reason}`.

use crate::api::http::{Url, percent_encode};
use crate::config::limits::{
    COLLECTIONS_BACKFILL_ATTEMPTS_MAX, COLLECTIONS_BACKFILL_IDLE_SECS,
    COLLECTIONS_BACKFILL_PAGE_ENTRIES, COLLECTIONS_BACKFILL_RESPONSE_BYTES_MAX,
    COLLECTIONS_BACKFILL_TIMEOUT_SECS, STATE_LIST_PAGE_ENTRIES_MAX,
};
use crate::state::{BackfillRecord, CollectionRepo, StateError, StateService, Store};
use crate::syntax::{Did, Nsid};
use futures_lite::future::block_on;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Every job key starts with this.
pub const JOB_KEY_PREFIX: &str = "collections ";

/// A job's status label.
pub mod status {
    /// Waiting for the worker.
    pub const QUEUED: &str = "queued";
    /// Being fetched (or interrupted by a stop; resumed at start).
    pub const RUNNING: &str = "running";
    /// The source's last page was read.
    pub const DONE: &str = "done";
    /// The source failed too many times in a row; trigger again to resume.
    pub const FAILED: &str = "failed";
}

/// One backfill job as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The source relay's base URL.
    pub source: String,
    /// The collection NSID.
    pub collection: String,
    /// Saved progress.
    pub progress: BackfillRecord,
}

impl Job {
    /// The store key of a job.
    pub fn key(source: &str, collection: &str) -> String {
        format!("{JOB_KEY_PREFIX}{source} {collection}")
    }

    /// A job back from its key and record (`None`: not a job key).
    pub fn from_record(key: &str, progress: BackfillRecord) -> Option<Job> {
        let rest = key.strip_prefix(JOB_KEY_PREFIX)?;
        let (source, collection) = rest.rsplit_once(' ')?;
        Some(Job {
            source: source.to_owned(),
            collection: collection.to_owned(),
            progress,
        })
    }
}

/// Why a trigger was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerError {
    /// The source is not an `https://host[:port]` base URL (`http` only when allowed).
    BadSource(&'static str),
    /// A collection is not an NSID.
    BadCollection,
}

/// The source as a canonical base URL (`scheme://host[:port]`), checked.
pub fn parse_source(text: &str, allow_http: bool) -> Result<String, TriggerError> {
    let url = Url::parse(text).map_err(|_| TriggerError::BadSource("source is not a URL"))?;
    match url.scheme {
        crate::api::http::Scheme::Https => {}
        crate::api::http::Scheme::Http if allow_http => {}
        crate::api::http::Scheme::Http => {
            return Err(TriggerError::BadSource(
                "source must be https (http needs --allow-plaintext)",
            ));
        }
        _ => return Err(TriggerError::BadSource("source must be an http(s) URL")),
    }
    if url.path_and_query != "/" {
        return Err(TriggerError::BadSource(
            "source must be a base URL without a path",
        ));
    }
    let scheme = if url.scheme.is_tls() { "https" } else { "http" };
    Ok(format!("{scheme}://{}", url.host_header()))
}

/// Store `queued` jobs for `collections` from `source` (both already checked). A job
/// already queued, running or failed keeps its cursor (it resumes); a done one restarts.
pub fn queue_jobs(
    store: &dyn Store,
    source: &str,
    collections: &[Nsid],
) -> Result<usize, StateError> {
    for collection in collections {
        let key = Job::key(source, collection.as_str());
        let mut record = store.get_backfill(&key)?.unwrap_or_default();
        if record.status == status::DONE {
            record = BackfillRecord::default();
        }
        record.status = status::QUEUED.to_owned();
        store.put_backfill(&key, &record)?;
    }
    Ok(collections.len())
}

/// Every job, in key order, at most `limit` after `after` (a key; "" = from the first).
pub fn list_jobs(store: &dyn Store, after: &str, limit: usize) -> Result<Vec<Job>, StateError> {
    let found = store.list_backfills(JOB_KEY_PREFIX, after, limit)?;
    Ok(found
        .into_iter()
        .filter_map(|(key, record)| Job::from_record(&key, record))
        .collect())
}

/// One page of a source's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The DIDs that parsed.
    pub dids: Vec<String>,
    /// Entries refused (not a DID, or not an object with a string `did`).
    pub refused: u64,
    /// The cursor of the next page (`None`: this was the last).
    pub cursor: Option<String>,
}

/// Why a page could not be had.
#[derive(Debug)]
pub enum PageError {
    /// The exchange failed.
    Fetch(crate::identity::transport::FetchError),
    /// The source answered another status.
    Status(u16),
    /// The body is not the lexicon's output object.
    Body,
}

impl PageError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            PageError::Fetch(e) => e.reason(),
            PageError::Status(_) => "status",
            PageError::Body => "body",
        }
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::Fetch(e) => write!(f, "{e}"),
            PageError::Status(code) => write!(f, "status {code}"),
            PageError::Body => f.write_str("body is not a listReposByCollection output"),
        }
    }
}

/// Decode a `listReposByCollection` output body (sans IO).
pub fn parse_page(body: &[u8]) -> Result<Page, PageError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| PageError::Body)?;
    let repos = value
        .get("repos")
        .and_then(serde_json::Value::as_array)
        .ok_or(PageError::Body)?;
    let cursor = match value.get("cursor") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(c)) if c.is_empty() => None,
        Some(serde_json::Value::String(c)) => Some(c.clone()),
        Some(_) => return Err(PageError::Body),
    };
    let mut page = Page {
        dids: Vec::with_capacity(repos.len()),
        refused: 0,
        cursor,
    };
    for repo in repos {
        match repo.get("did").and_then(serde_json::Value::as_str) {
            Some(did) if Did::parse(did).is_ok() => page.dids.push(did.to_owned()),
            _ => page.refused += 1,
        }
    }
    Ok(page)
}

/// Fetch one page of `collection` from `source` after `cursor`.
pub fn fetch_page(
    source: &str,
    collection: &str,
    cursor: &str,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Page, PageError> {
    let mut path = format!(
        "/xrpc/com.atproto.sync.listReposByCollection?collection={}&limit={}",
        percent_encode(collection),
        COLLECTIONS_BACKFILL_PAGE_ENTRIES
    );
    if !cursor.is_empty() {
        path.push_str(&format!("&cursor={}", percent_encode(cursor)));
    }
    let url = Url::parse(source)
        .map_err(|e| PageError::Fetch(crate::identity::transport::FetchError::Http(e)))?
        .with_path(&path);
    let response = crate::identity::transport::get(
        &url,
        "application/json",
        COLLECTIONS_BACKFILL_RESPONSE_BYTES_MAX,
        Duration::from_secs(COLLECTIONS_BACKFILL_TIMEOUT_SECS),
        tls,
    )
    .map_err(PageError::Fetch)?;
    if response.status != 200 {
        return Err(PageError::Status(response.status));
    }
    parse_page(&response.body)
}

/// The running worker: [`BackfillWorker::wake`] after queueing jobs; [`BackfillWorker::stop`]
/// at shutdown (it finishes the page in flight; progress up to the last page is saved).
#[derive(Debug, Clone)]
pub struct BackfillWorker {
    wake: flume::Sender<()>,
    stop: Arc<AtomicBool>,
}

impl BackfillWorker {
    /// Start the worker thread; it resumes unfinished jobs at once.
    pub fn spawn(
        state: Arc<StateService>,
        tls: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<BackfillWorker> {
        let (wake, woken) = flume::bounded(1);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("relay-backfill".to_owned())
            .spawn(move || work(&state, &tls, &woken, &stopping))?;
        let _ = wake.try_send(());
        Ok(BackfillWorker { wake, stop })
    }

    /// Look for queued jobs now (a full wake slot means a look is already due).
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }

    /// Stop after the page in flight. Does not wait: a fetch may take up to its time-out,
    /// and everything before it is saved.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.wake.try_send(());
    }
}

fn work(
    state: &StateService,
    tls: &Arc<rustls::ClientConfig>,
    woken: &flume::Receiver<()>,
    stop: &AtomicBool,
) {
    let idle = Duration::from_secs(COLLECTIONS_BACKFILL_IDLE_SECS);
    loop {
        if matches!(
            woken.recv_timeout(idle),
            Err(flume::RecvTimeoutError::Disconnected)
        ) {
            return;
        }
        if stop.load(Ordering::Acquire) {
            return;
        }
        match pending_jobs(state) {
            Ok(jobs) => {
                for job in jobs {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    run_job(state, tls, job, stop);
                }
            }
            Err(e) => log::warn!("collection backfill: listing jobs failed: {e}"),
        }
    }
}

/// Queued and interrupted jobs, oldest key first.
fn pending_jobs(state: &StateService) -> Result<Vec<Job>, StateError> {
    let mut jobs = Vec::new();
    let mut after = String::new();
    loop {
        let from = after.clone();
        let page = block_on(state.call(move |store| {
            store.list_backfills(JOB_KEY_PREFIX, &from, STATE_LIST_PAGE_ENTRIES_MAX)
        }))?;
        let Some((last, _)) = page.last() else {
            return Ok(jobs);
        };
        after = last.clone();
        jobs.extend(
            page.into_iter()
                .filter_map(|(key, record)| Job::from_record(&key, record))
                .filter(|job| {
                    job.progress.status == status::QUEUED || job.progress.status == status::RUNNING
                }),
        );
    }
}

/// Fetch pages until the source's last one, saving progress after each.
fn run_job(state: &StateService, tls: &Arc<rustls::ClientConfig>, mut job: Job, stop: &AtomicBool) {
    log::info!(
        "collection backfill: {} from {}: starting at cursor {:?} ({} DIDs so far)",
        job.collection,
        job.source,
        job.progress.cursor,
        job.progress.done
    );
    let mut attempts = 0;
    let mut pages = 0u64;
    job.progress.status = status::RUNNING.to_owned();
    while !stop.load(Ordering::Acquire) {
        let page = match fetch_page(&job.source, &job.collection, &job.progress.cursor, tls) {
            Ok(page) => page,
            Err(e) => {
                attempts += 1;
                metrics::counter!("relay_collections_backfill_errors_total", "reason" => e.reason())
                    .increment(1);
                log::warn!(
                    "collection backfill: {} from {}: page failed ({attempts}/{}): {e}",
                    job.collection,
                    job.source,
                    COLLECTIONS_BACKFILL_ATTEMPTS_MAX
                );
                if attempts >= COLLECTIONS_BACKFILL_ATTEMPTS_MAX {
                    job.progress.status = status::FAILED.to_owned();
                    let _ = save(state, &job);
                    return;
                }
                std::thread::sleep(Duration::from_secs(1 << attempts.min(5)));
                continue;
            }
        };
        attempts = 0;
        pages += 1;
        if !apply_page(state, &mut job, page) {
            return;
        }
        if job.progress.status == status::DONE {
            log::info!(
                "collection backfill: {} from {}: done, {} DIDs ({} refused)",
                job.collection,
                job.source,
                job.progress.done,
                job.progress.failed
            );
            return;
        }
        if pages.is_multiple_of(100) {
            log::info!(
                "collection backfill: {} from {}: {} DIDs so far",
                job.collection,
                job.source,
                job.progress.done
            );
        }
    }
}

/// Write a page's pairs, then the progress; false when the store failed (the job stays
/// `running` and is resumed from its last saved page at the next look).
fn apply_page(state: &StateService, job: &mut Job, page: Page) -> bool {
    let pairs: Vec<CollectionRepo> = page
        .dids
        .iter()
        .map(|did| CollectionRepo {
            collection: job.collection.clone(),
            did: did.clone(),
        })
        .collect();
    let imported = pairs.len() as u64;
    if let Err(e) = block_on(state.call(move |store| store.add_collection_repos(&pairs))) {
        log::warn!(
            "collection backfill: {}: store write failed: {e}",
            job.collection
        );
        return false;
    }
    metrics::counter!("relay_collections_backfill_pages_total").increment(1);
    metrics::counter!("relay_collections_backfill_dids_total").increment(imported);
    job.progress.done += imported;
    job.progress.failed += page.refused;
    match page.cursor {
        // A source that hands back the cursor it was given would loop forever.
        Some(next) if next != job.progress.cursor => job.progress.cursor = next,
        _ => job.progress.status = status::DONE.to_owned(),
    }
    if let Err(e) = save(state, job) {
        log::warn!(
            "collection backfill: {}: saving progress failed: {e}",
            job.collection
        );
        return false;
    }
    true
}

fn save(state: &StateService, job: &Job) -> Result<(), StateError> {
    let key = Job::key(&job.source, &job.collection);
    let record = job.progress.clone();
    block_on(state.call(move |store| store.put_backfill(&key, &record)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_keys_round_trip() {
        let key = Job::key("https://relay.example:8443", "app.bsky.feed.post");
        let job = Job::from_record(&key, BackfillRecord::default());
        assert_eq!(
            job.map(|j| (j.source, j.collection)),
            Some((
                "https://relay.example:8443".to_owned(),
                "app.bsky.feed.post".to_owned()
            ))
        );
        assert_eq!(
            Job::from_record("collections-index", BackfillRecord::default()),
            None
        );
    }

    #[test]
    fn sources_are_base_urls() {
        assert_eq!(
            parse_source("https://Relay.Example", false),
            Ok("https://relay.example".to_owned())
        );
        assert_eq!(
            parse_source("http://127.0.0.1:2470/", true),
            Ok("http://127.0.0.1:2470".to_owned())
        );
        assert!(parse_source("http://127.0.0.1:2470", false).is_err());
        assert!(parse_source("https://relay.example/xrpc", false).is_err());
        assert!(parse_source("wss://relay.example", false).is_err());
        assert!(parse_source("relay.example", false).is_err());
    }

    #[test]
    fn pages_keep_good_dids_and_count_the_rest() {
        let body = br#"{"repos":[{"did":"did:plc:abc"},{"did":"nope"},{"x":1},{"did":"did:web:a.example"}],"cursor":"did:web:a.example"}"#;
        let page = parse_page(body).map_err(|e| e.to_string());
        assert_eq!(
            page,
            Ok(Page {
                dids: vec!["did:plc:abc".to_owned(), "did:web:a.example".to_owned()],
                refused: 2,
                cursor: Some("did:web:a.example".to_owned()),
            })
        );
        let last = parse_page(br#"{"repos":[]}"#).map_err(|e| e.to_string());
        assert_eq!(last.map(|p| p.cursor), Ok(None));
        assert!(parse_page(br#"{"cursor":"x"}"#).is_err());
        assert!(parse_page(br#"{"repos":[],"cursor":5}"#).is_err());
        assert!(parse_page(b"not json").is_err());
    }
}
