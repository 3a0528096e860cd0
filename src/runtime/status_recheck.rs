//! The upstream status re-checker: accounts whose host last said they are not active
//! (`#account` with `active: false`: deactivated, suspended, takendown, deleted,
//! desynchronized, throttled) are asked about again at their host's
//! `com.atproto.sync.getRepoStatus`, so a status that went stale (a reactivation whose
//! `#account` was lost, or never sent) heals by itself.
//!
//! Owns: its thread, the scan position, the pacing of requests, the answer's decoding
//! ([`parse_answer`]) and what follows from it. Must not: run on a data-plane executor
//! (every fetch and every store call blocks this thread), write anything but an account's
//! upstream status, or touch an account the relay itself took down beyond that (the
//! local status is the operator's; a healed account the relay took down stays refused).
//!
//! Which accounts: a paged scan of the stored accounts in uid order (`list_accounts`),
//! not an index. A round reads at most `STATUS_RECHECK_SCAN_ACCOUNTS_PER_ROUND_MAX`
//! records and checks at most `STATUS_RECHECK_BATCH_ACCOUNTS_MAX` inactive ones, then
//! keeps its position (in memory) for the next round, `STATUS_RECHECK_ROUND_PAUSE_MILLIS`
//! later; when the scan reaches the last uid the pass ends, and the next pass starts no
//! sooner than the re-check interval after the previous one started — so each account is
//! checked at most once per interval, and the state thread serves at most one bounded
//! page run per round. Why no index: an inactive-accounts column family / table would be
//! maintained on every status write of both stores, and inactive accounts are a small
//! share of a relay's accounts while a page of records is cheap to read; the scan's cost
//! is bounded per round and in total per interval (accounts / page size pages). A
//! restart starts a new pass at uid 0 (at most one extra check per inactive account).
//!
//! Answers (lexicon `com.atproto.sync.getRepoStatus`):
//! * `active: true` → `healed`: the stored upstream status becomes `active`, every ingest
//!   shard is told (`ShardCommand::UpstreamActive`) so the account's next commits pass,
//!   and, when the relay's own status of the account is active too, the announcing shard
//!   sends the relay's `#account` event (active) — as a takedown reversal does, because
//!   consumers last saw the host's inactive `#account`. With a local takedown or
//!   suspension the combined status stays inactive and nothing is announced.
//! * `active: false` → `still_inactive`: nothing changes until the next pass.
//! * error `RepoNotFound` → `not_found`: the host no longer has the repo; the stored
//!   status becomes `deleted` (the lexicon's status for a repo that is gone), still
//!   inactive, and it is asked again next pass (a repo may be re-created on a migration).
//! * anything else (connect failure, time-out, another status code, a body that is not
//!   the output object, a `did` that is not the one asked) → `error`, counted with a
//!   bounded reason in `relay_status_recheck_errors_total{reason}`; nothing changes.
//! * the account's host is banned → `host_banned`: not asked (the relay does not talk to
//!   banned hosts).
//!
//! Queue policy: the shard commands go over the admin's per-shard queues
//! (`ADMIN_STATUS_QUEUE_ENTRIES_MAX`); this thread **blocks** on a full one for at most
//! `STATUS_RECHECK_TIMEOUT_SECS`, then drops the command, counted
//! (`relay_status_recheck_errors_total{reason="shard_busy"}`): the store already says
//! active, so the account's commits pass again after the next start or the host's next
//! `#account`. A host `#account` racing with a heal: whichever write reaches the store
//! last wins there; the shard keeps the last it was told. A shard that read the
//! account's record (inactive) for an identity lookup just before the heal was written
//! does not install that stale status: the heal marks the resolving slot
//! (`upstream_healed` in `runtime::ingest`) and the install keeps the account active.
//!
//! Pacing: requests are spaced `1 / STATUS_RECHECK_REQUESTS_PER_SEC_MAX` seconds apart,
//! all hosts together, so no PDS gets more than that; each times out after
//! `STATUS_RECHECK_TIMEOUT_SECS` and reads at most `STATUS_RECHECK_RESPONSE_BYTES_MAX`.
//! `http://` is used only with `--allow-plaintext` for a host named by an IP literal
//! (loopback tests), else `https://`.
//!
//! Metrics: `relay_status_recheck_checks_total{outcome}`,
//! `relay_status_recheck_errors_total{reason}`, `relay_status_recheck_scanned_accounts_total`.

use crate::api::http::{Url, percent_encode};
use crate::config::limits::{
    STATE_LIST_PAGE_ENTRIES_MAX, STATUS_RECHECK_BATCH_ACCOUNTS_MAX,
    STATUS_RECHECK_REQUESTS_PER_SEC_MAX, STATUS_RECHECK_RESPONSE_BYTES_MAX,
    STATUS_RECHECK_ROUND_PAUSE_MILLIS, STATUS_RECHECK_SCAN_ACCOUNTS_PER_ROUND_MAX,
    STATUS_RECHECK_TIMEOUT_SECS,
};
use crate::identity::transport::FetchError;
use crate::runtime::ingest::ShardCommand;
use crate::state::{
    AccountRecord, HostId, HostStatus, LocalStatus, StateError, StateService, Uid, UpstreamStatus,
};
use futures_lite::future::block_on;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// True for the stored upstream statuses the re-checker asks about. `Unknown` (a status
/// outside the lexicon's values) is treated as active by the ingest shards, so not here.
pub fn is_inactive(status: UpstreamStatus) -> bool {
    !matches!(status, UpstreamStatus::Active | UpstreamStatus::Unknown)
}

/// What a host answered about one repo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `active: true`.
    Active,
    /// `active: false` (whatever the status).
    Inactive,
    /// The `RepoNotFound` error.
    NotFound,
}

/// Why a check had no answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckError {
    /// The hostname does not make a URL.
    Url,
    /// The exchange failed.
    Fetch(FetchError),
    /// Another status code than 200 or a `RepoNotFound` error.
    Status(u16),
    /// The body is not the lexicon's output object.
    Body,
    /// The output names another DID than the one asked.
    DidMismatch,
}

impl CheckError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            CheckError::Url => "url",
            CheckError::Fetch(e) => e.reason(),
            CheckError::Status(_) => "status",
            CheckError::Body => "body",
            CheckError::DidMismatch => "did_mismatch",
        }
    }
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::Fetch(e) => write!(f, "{e}"),
            CheckError::Status(code) => write!(f, "status {code}"),
            other => f.write_str(other.reason()),
        }
    }
}

/// Decode a `getRepoStatus` answer about `did` (sans IO).
pub fn parse_answer(did: &str, status: u16, body: &[u8]) -> Result<Answer, CheckError> {
    let value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    if status != 200 {
        let error = value
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(serde_json::Value::as_str);
        return match (status, error) {
            (400, Some("RepoNotFound")) => Ok(Answer::NotFound),
            _ => Err(CheckError::Status(status)),
        };
    }
    let value = value.ok_or(CheckError::Body)?;
    let answered = value
        .get("did")
        .and_then(serde_json::Value::as_str)
        .ok_or(CheckError::Body)?;
    let active = value
        .get("active")
        .and_then(serde_json::Value::as_bool)
        .ok_or(CheckError::Body)?;
    if answered != did {
        return Err(CheckError::DidMismatch);
    }
    Ok(if active {
        Answer::Active
    } else {
        Answer::Inactive
    })
}

/// The `getRepoStatus` URL of `did` at `hostname` (`host[:port]` as stored): `https`,
/// or `http` for an IP literal when plaintext is allowed.
pub fn repo_status_url(
    hostname: &str,
    did: &str,
    allow_plaintext: bool,
) -> Result<Url, CheckError> {
    let host = hostname.rsplit_once(':').map_or(hostname, |(h, _)| h);
    let literal = host
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok();
    let scheme = if allow_plaintext && literal {
        "http"
    } else {
        "https"
    };
    let base = Url::parse(&format!("{scheme}://{hostname}")).map_err(|_| CheckError::Url)?;
    Ok(base.with_path(&format!(
        "/xrpc/com.atproto.sync.getRepoStatus?did={}",
        percent_encode(did)
    )))
}

/// The scan's schedule (sans IO): where the pass is, and when it started.
#[derive(Debug, Clone)]
pub struct Schedule {
    interval: Duration,
    /// Last uid examined; 0 = the next round starts a pass.
    after: Uid,
    pass_started: Option<Instant>,
}

impl Schedule {
    /// A schedule whose passes start at most every `interval`.
    pub fn new(interval: Duration) -> Schedule {
        Schedule {
            interval,
            after: 0,
            pass_started: None,
        }
    }

    /// Where a round starting at `now` scans from, or how long to wait before a new pass
    /// may start.
    pub fn begin_round(&mut self, now: Instant) -> Result<Uid, Duration> {
        if self.after == 0 {
            if let Some(started) = self.pass_started {
                let due = started + self.interval;
                if now < due {
                    return Err(due - now);
                }
            }
            self.pass_started = Some(now);
        }
        Ok(self.after)
    }

    /// The round examined accounts up to `last` (`None`: none), and the scan reached the
    /// last stored account when `at_end`.
    pub fn end_round(&mut self, last: Option<Uid>, at_end: bool) {
        self.after = match (at_end, last) {
            (true, _) | (false, None) => 0,
            (false, Some(uid)) => uid,
        };
    }

    /// How long to wait after a round ended at `now`.
    pub fn pause(&self, now: Instant) -> Duration {
        let pause = Duration::from_millis(STATUS_RECHECK_ROUND_PAUSE_MILLIS).min(self.interval);
        match (self.after, self.pass_started) {
            (0, Some(started)) => (started + self.interval).saturating_duration_since(now),
            _ => pause,
        }
    }
}

/// One account to ask about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its uid.
    pub uid: Uid,
    /// Its DID.
    pub did: String,
    /// Its host.
    pub host_id: HostId,
    /// The status stored now.
    pub status: UpstreamStatus,
}

/// The inactive accounts of a page, at most `want`; returns them and the last uid
/// examined (the last taken when `want` filled before the page's end, so the rest of the
/// page is read again next round).
pub fn select(page: &[AccountRecord], want: usize) -> (Vec<Candidate>, Option<Uid>) {
    let mut taken = Vec::new();
    let mut last = None;
    for account in page {
        if taken.len() >= want {
            break;
        }
        last = Some(account.uid);
        if is_inactive(account.upstream_status) {
            taken.push(Candidate {
                uid: account.uid,
                did: account.did.clone(),
                host_id: account.host_id,
                status: account.upstream_status,
            });
        }
    }
    (taken, last)
}

/// What the thread is given.
pub struct RecheckParts {
    /// The store.
    pub state: Arc<StateService>,
    /// Every ingest shard's command queue.
    pub shards: Vec<flume::Sender<ShardCommand>>,
    /// TLS client configuration for `https` hosts.
    pub tls: Arc<rustls::ClientConfig>,
    /// Shortest time between two checks of one account.
    pub interval: Duration,
    /// `--allow-plaintext`.
    pub allow_plaintext: bool,
}

/// The running re-checker; [`Rechecker::stop`] ends it.
#[derive(Debug)]
pub struct Rechecker {
    stop: flume::Sender<()>,
    done: flume::Receiver<()>,
}

impl Rechecker {
    /// End the thread: it stops before its next request or store call. Waits at most one
    /// request's time-out (a fetch in flight cannot be interrupted); past that the thread
    /// is left to end by itself, and its later store calls fail as `closed`.
    pub fn stop(self) {
        drop(self.stop);
        let wait = Duration::from_secs(STATUS_RECHECK_TIMEOUT_SECS);
        if matches!(
            self.done.recv_timeout(wait),
            Err(flume::RecvTimeoutError::Timeout)
        ) {
            log::warn!("status re-check: still in a request at stop; not waiting for it");
        }
    }
}

/// Start the re-checker thread.
pub fn spawn(parts: RecheckParts) -> std::io::Result<Rechecker> {
    let (stop, stopped) = flume::bounded::<()>(1);
    let (finished, done) = flume::bounded::<()>(1);
    std::thread::Builder::new()
        .name("relay-status-recheck".to_owned())
        .spawn(move || {
            Worker {
                parts,
                stopped,
                hosts: HashMap::new(),
            }
            .run();
            let _ = finished.send(());
        })?;
    Ok(Rechecker { stop, done })
}

/// Why an account's host is not asked.
#[derive(Debug, Clone, Copy)]
enum NotAsked {
    /// An operator banned it.
    Banned,
    /// Unknown to the store, or the store failed: the error reason.
    Error(&'static str),
}

struct Worker {
    parts: RecheckParts,
    stopped: flume::Receiver<()>,
    /// Hostnames of this round's hosts, or why their accounts are not asked.
    hosts: HashMap<HostId, Result<String, NotAsked>>,
}

impl Worker {
    fn run(&mut self) {
        let mut schedule = Schedule::new(self.parts.interval);
        let mut wait = self
            .parts
            .interval
            .min(Duration::from_millis(STATUS_RECHECK_ROUND_PAUSE_MILLIS));
        while self.sleep(wait) {
            let after = match schedule.begin_round(Instant::now()) {
                Ok(after) => after,
                Err(not_yet) => {
                    wait = not_yet;
                    continue;
                }
            };
            match self.round(after) {
                Ok((last, at_end)) => schedule.end_round(last, at_end),
                Err(e) => log::warn!("status re-check: reading accounts failed: {e}"),
            }
            wait = schedule.pause(Instant::now());
        }
    }

    /// Wait `duration`; false when told to stop.
    fn sleep(&self, duration: Duration) -> bool {
        matches!(
            self.stopped.recv_timeout(duration),
            Err(flume::RecvTimeoutError::Timeout)
        )
    }

    /// Scan from `after` and check what it finds; returns the last uid examined and
    /// whether the scan reached the end.
    fn round(&mut self, mut after: Uid) -> Result<(Option<Uid>, bool), StateError> {
        self.hosts.clear();
        let mut scanned = 0;
        let mut last = None;
        let mut candidates = Vec::new();
        let mut at_end = false;
        while scanned < STATUS_RECHECK_SCAN_ACCOUNTS_PER_ROUND_MAX
            && candidates.len() < STATUS_RECHECK_BATCH_ACCOUNTS_MAX
        {
            let from = after;
            let page = block_on(
                self.parts
                    .state
                    .call(move |store| store.list_accounts(from, STATE_LIST_PAGE_ENTRIES_MAX)),
            )?;
            scanned += page.len();
            let want = STATUS_RECHECK_BATCH_ACCOUNTS_MAX - candidates.len();
            let (taken, examined) = select(&page, want);
            candidates.extend(taken);
            let whole_page = examined == page.last().map(|a| a.uid);
            if let Some(uid) = examined {
                last = Some(uid);
                after = uid;
            }
            if page.len() < STATE_LIST_PAGE_ENTRIES_MAX && whole_page {
                at_end = true;
                break;
            }
        }
        metrics::counter!("relay_status_recheck_scanned_accounts_total").increment(scanned as u64);
        let spacing = Duration::from_secs(1) / STATUS_RECHECK_REQUESTS_PER_SEC_MAX as u32;
        for candidate in candidates {
            if !self.sleep(spacing) {
                return Ok((last, false));
            }
            let outcome = self.check(&candidate);
            metrics::counter!("relay_status_recheck_checks_total", "outcome" => outcome)
                .increment(1);
        }
        Ok((last, at_end))
    }

    /// Ask the account's host and act on the answer; returns the outcome label.
    fn check(&mut self, candidate: &Candidate) -> &'static str {
        let hostname = match self.hostname(candidate.host_id) {
            Ok(hostname) => hostname,
            Err(NotAsked::Banned) => return "host_banned",
            Err(NotAsked::Error(reason)) => return self.error(candidate, reason, &reason),
        };
        let answer = repo_status_url(&hostname, &candidate.did, self.parts.allow_plaintext)
            .and_then(|url| self.fetch(&url, &candidate.did));
        match answer {
            Ok(Answer::Active) => self.heal(candidate),
            Ok(Answer::Inactive) => "still_inactive",
            Ok(Answer::NotFound) => {
                if candidate.status != UpstreamStatus::Deleted {
                    let uid = candidate.uid;
                    if let Err(e) =
                        block_on(self.parts.state.call(move |store| {
                            store.set_upstream_status(uid, UpstreamStatus::Deleted)
                        }))
                    {
                        return self.error(candidate, e.reason(), &e);
                    }
                }
                "not_found"
            }
            Err(e) => self.error(candidate, e.reason(), &e),
        }
    }

    fn fetch(&self, url: &Url, did: &str) -> Result<Answer, CheckError> {
        let response = crate::identity::transport::get(
            url,
            "application/json",
            STATUS_RECHECK_RESPONSE_BYTES_MAX,
            Duration::from_secs(STATUS_RECHECK_TIMEOUT_SECS),
            &self.parts.tls,
        )
        .map_err(CheckError::Fetch)?;
        parse_answer(did, response.status, &response.body)
    }

    /// The host's hostname, or why its accounts are not asked (read once per round).
    fn hostname(&mut self, id: HostId) -> Result<String, NotAsked> {
        if let Some(known) = self.hosts.get(&id) {
            return known.clone();
        }
        let found = block_on(self.parts.state.call(move |store| store.get_host_by_id(id)));
        let known = match found {
            Ok(Some(host)) if host.status == HostStatus::Banned => Err(NotAsked::Banned),
            Ok(Some(host)) => Ok(host.hostname),
            Ok(None) => Err(NotAsked::Error("host_unknown")),
            Err(e) => Err(NotAsked::Error(e.reason())),
        };
        self.hosts.insert(id, known.clone());
        known
    }

    /// The host says active: store it, tell the shards; returns the outcome.
    fn heal(&self, candidate: &Candidate) -> &'static str {
        let uid = candidate.uid;
        // The local status is read in the same call as the write, so an operator's
        // takedown made since the scan is seen.
        let stored = block_on(self.parts.state.call(move |store| {
            let local = store.get_account_by_uid(uid)?.map(|a| a.local_status);
            store.set_upstream_status(uid, UpstreamStatus::Active)?;
            Ok(local)
        }));
        let local = match stored {
            Ok(Some(local)) => local,
            // Gone since the scan (nothing was written: the uid is unknown).
            Ok(None) => return self.error(candidate, "account_unknown", &"account unknown"),
            Err(e) => return self.error(candidate, e.reason(), &e),
        };
        let announce = local == LocalStatus::Active;
        let wait = Duration::from_secs(STATUS_RECHECK_TIMEOUT_SECS);
        for shard in &self.parts.shards {
            let command = ShardCommand::UpstreamActive(candidate.did.clone(), announce);
            if shard.send_timeout(command, wait).is_err() {
                metrics::counter!("relay_status_recheck_errors_total", "reason" => "shard_busy")
                    .increment(1);
                log::warn!(
                    "status re-check: {} active again, but a busy ingest shard was not told",
                    candidate.did
                );
            }
        }
        log::info!(
            "status re-check: {} is active at its host again (was {})",
            candidate.did,
            candidate.status.as_str()
        );
        "healed"
    }

    fn error(
        &self,
        candidate: &Candidate,
        reason: &'static str,
        error: &dyn std::fmt::Display,
    ) -> &'static str {
        metrics::counter!("relay_status_recheck_errors_total", "reason" => reason).increment(1);
        log::debug!("status re-check: {}: {error}", candidate.did);
        "error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DID: &str = "did:plc:abc";

    #[test]
    fn answers_follow_the_lexicon() {
        let ok = |body: &str| parse_answer(DID, 200, body.as_bytes()).map_err(|e| e.reason());
        assert_eq!(
            ok(r#"{"did":"did:plc:abc","active":true,"rev":"3l"}"#),
            Ok(Answer::Active)
        );
        assert_eq!(
            ok(r#"{"did":"did:plc:abc","active":false,"status":"deactivated"}"#),
            Ok(Answer::Inactive)
        );
        assert_eq!(
            ok(r#"{"did":"did:plc:abc","active":false}"#),
            Ok(Answer::Inactive)
        );
        assert_eq!(
            ok(r#"{"did":"did:plc:xyz","active":true}"#),
            Err("did_mismatch")
        );
        assert_eq!(ok(r#"{"did":"did:plc:abc","active":"yes"}"#), Err("body"));
        assert_eq!(ok(r#"{"active":true}"#), Err("body"));
        assert_eq!(ok("not json"), Err("body"));
        let not_found = br#"{"error":"RepoNotFound","message":"no such repo"}"#;
        assert_eq!(
            parse_answer(DID, 400, not_found).map_err(|e| e.reason()),
            Ok(Answer::NotFound)
        );
        let other = br#"{"error":"InvalidRequest"}"#;
        assert_eq!(
            parse_answer(DID, 400, other).map_err(|e| e.reason()),
            Err("status")
        );
        assert_eq!(
            parse_answer(DID, 500, not_found).map_err(|e| e.reason()),
            Err("status")
        );
    }

    #[test]
    fn only_inactive_statuses_are_asked_about() {
        assert!(!is_inactive(UpstreamStatus::Active));
        assert!(!is_inactive(UpstreamStatus::Unknown));
        for status in [
            UpstreamStatus::Deactivated,
            UpstreamStatus::Suspended,
            UpstreamStatus::Takendown,
            UpstreamStatus::Deleted,
            UpstreamStatus::Desynchronized,
            UpstreamStatus::Throttled,
        ] {
            assert!(is_inactive(status), "{status:?}");
        }
    }

    #[test]
    fn urls_are_https_unless_plaintext_is_allowed_for_an_ip() {
        let url = |host: &str, plain: bool| {
            repo_status_url(host, "did:plc:a b", plain).map(|u| {
                let scheme = if u.scheme.is_tls() { "https" } else { "http" };
                format!("{scheme}://{}{}", u.host_header(), u.path_and_query)
            })
        };
        assert_eq!(
            url("pds.example", true).ok().as_deref(),
            Some("https://pds.example/xrpc/com.atproto.sync.getRepoStatus?did=did%3Aplc%3Aa%20b")
        );
        assert!(url("127.0.0.1:2583", true).is_ok_and(|u| u.starts_with("http://127.0.0.1:2583/")));
        assert!(url("127.0.0.1:2583", false).is_ok_and(|u| u.starts_with("https://")));
    }

    fn account(uid: Uid, status: UpstreamStatus) -> AccountRecord {
        AccountRecord {
            uid,
            did: format!("did:plc:{uid}"),
            host_id: 1,
            local_status: LocalStatus::Active,
            upstream_status: status,
            rev: None,
            data_cid: None,
            desynchronized: false,
            commit_cid: None,
        }
    }

    #[test]
    fn selection_stops_at_the_batch_and_keeps_its_place() {
        let page = vec![
            account(1, UpstreamStatus::Active),
            account(2, UpstreamStatus::Deactivated),
            account(3, UpstreamStatus::Active),
            account(4, UpstreamStatus::Takendown),
            account(5, UpstreamStatus::Deleted),
        ];
        let (taken, last) = select(&page, 2);
        assert_eq!(taken.iter().map(|c| c.uid).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(last, Some(4), "account 5 is read again next round");
        let (taken, last) = select(&page, 10);
        assert_eq!(taken.len(), 3);
        assert_eq!(last, Some(5));
        assert_eq!(select(&[], 10), (Vec::new(), None));
    }

    #[test]
    fn a_pass_starts_at_most_once_per_interval() {
        let interval = Duration::from_secs(60);
        let mut schedule = Schedule::new(interval);
        let t0 = Instant::now();
        assert_eq!(schedule.begin_round(t0), Ok(0));
        schedule.end_round(Some(1000), false);
        assert_eq!(
            schedule.pause(t0),
            Duration::from_millis(STATUS_RECHECK_ROUND_PAUSE_MILLIS)
        );
        // The pass goes on from where it stopped, whatever the time.
        assert_eq!(schedule.begin_round(t0 + Duration::from_secs(5)), Ok(1000));
        schedule.end_round(Some(1500), true);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(schedule.pause(t1), Duration::from_secs(50));
        // Too early for the next pass: told how long to wait.
        assert_eq!(schedule.begin_round(t1), Err(Duration::from_secs(50)));
        assert_eq!(schedule.begin_round(t0 + interval), Ok(0));
        // An empty store ends the pass at once.
        schedule.end_round(None, false);
        assert_eq!(schedule.begin_round(t0 + interval), Err(interval));
    }

    #[test]
    fn a_short_interval_shortens_the_pause() {
        let mut schedule = Schedule::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(schedule.begin_round(t0), Ok(0));
        schedule.end_round(Some(7), false);
        assert_eq!(schedule.pause(t0), Duration::from_secs(1));
    }
}
