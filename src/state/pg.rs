//! The PostgreSQL store: one `tokio-postgres` connection on its own thread, owning a
//! current-thread tokio runtime.
//!
//! Owns: the connection, the schema and its migrations (a `schema_migrations` table of
//! applied versions; each migration runs once, in a transaction, under a table lock so two
//! relays starting together do not race). docs/specs/state.md has the schema.
//!
//! [`Store`] methods wrap their queries as a job, send it over a bounded channel of
//! [`STATE_PG_REQUEST_QUEUE_ENTRIES_MAX`] jobs (full: the calling state thread blocks until
//! there is room) and wait for the reply. They must not be called from inside a tokio
//! runtime (they block), nor from a data-plane executor.
//!
//! Checks: the conditional rev rule is the `UPDATE … WHERE rev < $new` itself, so it holds
//! whichever process writes. Ids and counters are `BIGINT`: a value above `i64::MAX` is
//! refused as [`StateError::TooLarge`], a negative stored value is [`StateError::Corrupt`].
//! Text keys use the `"C"` collation so order and comparison are bytewise, like RocksDB.
//!
//! Not done: a dropped connection is not re-established; every later call fails with
//! [`StateError::Postgres`] until the relay restarts. TLS to the database is not
//! supported (`NoTls`): use a unix socket or loopback.

use super::{
    AccountRecord, BackfillRecord, Batch, CollectionRepo, HostId, HostRecord, HostStatus,
    IdentitySnapshot, LocalStatus, RateLimits, RevUpdate, StateError, Store, Uid, UpstreamStatus,
    check_collection_repo, check_identity, check_key, check_rev_update, clamp_limit,
};
use crate::config::limits::{
    COLLECTIONS_LIST_PAGE_ENTRIES_MAX, STATE_PG_CONNECT_TIMEOUT_SECONDS_MAX,
    STATE_PG_REQUEST_QUEUE_ENTRIES_MAX,
};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

/// A query future borrowing the connection.
pub type PgFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + 'c>>;
type Job = Box<dyn for<'c> FnOnce(&'c mut Conn) -> Pin<Box<dyn Future<Output = ()> + 'c>> + Send>;

/// The connection and its prepared statements: each distinct SQL text is prepared once
/// per connection, so a call costs one round trip instead of two.
pub struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Conn {
    async fn statement(&mut self, sql: &str) -> Result<Statement, StateError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await.map_err(pg)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    async fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StateError> {
        let statement = self.statement(sql).await?;
        self.client.query(&statement, params).await.map_err(pg)
    }

    async fn query_opt(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, StateError> {
        let statement = self.statement(sql).await?;
        self.client.query_opt(&statement, params).await.map_err(pg)
    }

    async fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, StateError> {
        let statement = self.statement(sql).await?;
        self.client.query_one(&statement, params).await.map_err(pg)
    }

    async fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, StateError> {
        let statement = self.statement(sql).await?;
        self.client.execute(&statement, params).await.map_err(pg)
    }
}

/// Schema migrations, in order; a version is never edited once released, only added.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, SCHEMA_V1),
    (2, SCHEMA_V2_COMMIT_CID),
    (3, SCHEMA_V3_COLLECTIONS),
];

/// The collection index.
const SCHEMA_V3_COLLECTIONS: &str = r#"
CREATE TABLE collection_repos (
    collection TEXT COLLATE "C" NOT NULL,
    did        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (collection, did)
);
CREATE INDEX collection_repos_did ON collection_repos (did);
"#;

const SCHEMA_V1: &str = r#"
CREATE TABLE hosts (
    id                BIGSERIAL PRIMARY KEY,
    hostname          TEXT COLLATE "C" NOT NULL UNIQUE,
    status            TEXT NOT NULL,
    last_seq          BIGINT NOT NULL DEFAULT 0,
    account_count     BIGINT NOT NULL DEFAULT 0,
    account_limit     BIGINT NOT NULL DEFAULT 0,
    rate_per_second   BIGINT NOT NULL DEFAULT 0,
    rate_per_hour     BIGINT NOT NULL DEFAULT 0,
    rate_per_day      BIGINT NOT NULL DEFAULT 0,
    failures          BIGINT NOT NULL DEFAULT 0,
    first_seen_ms     BIGINT NOT NULL,
    last_connected_ms BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE domain_bans (
    domain TEXT COLLATE "C" PRIMARY KEY
);
CREATE TABLE accounts (
    uid             BIGSERIAL PRIMARY KEY,
    did             TEXT COLLATE "C" NOT NULL UNIQUE,
    host_id         BIGINT NOT NULL,
    local_status    TEXT NOT NULL,
    upstream_status TEXT NOT NULL,
    rev             TEXT COLLATE "C",
    data_cid        BYTEA,
    desynchronized  BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX accounts_host_id ON accounts (host_id);
CREATE TABLE identity (
    did           TEXT COLLATE "C" PRIMARY KEY,
    entry         BYTEA NOT NULL,
    fetched_at_ms BIGINT NOT NULL
);
CREATE TABLE backfill (
    key    TEXT COLLATE "C" PRIMARY KEY,
    cursor TEXT NOT NULL,
    done   BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    status TEXT NOT NULL
);
"#;

/// Version 2: the account's current commit CID (binary), served as `listRepos.head` and
/// `getLatestCommit.cid`. Rows written before it read as NULL (no commit CID known) until
/// the account's next commit. Touches only `accounts`.
const SCHEMA_V2_COMMIT_CID: &str = "ALTER TABLE accounts ADD COLUMN commit_cid BYTEA;";

const HOST_COLUMNS: &str = "id, hostname, status, last_seq, account_count, account_limit, \
     rate_per_second, rate_per_hour, rate_per_day, failures, first_seen_ms, last_connected_ms";
const ACCOUNT_COLUMNS: &str =
    "uid, did, host_id, local_status, upstream_status, rev, data_cid, desynchronized, commit_cid";

/// The PostgreSQL store.
pub struct PgStore {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

fn pg(e: tokio_postgres::Error) -> StateError {
    StateError::Postgres(e.to_string())
}

/// `text` as a literal LIKE prefix (backfill keys may hold `_`).
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn to_i64(value: u64, what: &'static str) -> Result<i64, StateError> {
    i64::try_from(value).map_err(|_| StateError::TooLarge(what))
}

fn to_u64(value: i64) -> Result<u64, StateError> {
    u64::try_from(value).map_err(|_| StateError::Corrupt("negative integer"))
}

impl PgStore {
    /// Connects to `url` (a `postgres://` URL or key=value string), applies pending
    /// migrations, and starts the connection thread.
    pub fn connect(url: &str) -> Result<PgStore, StateError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(pg)?;
        config.connect_timeout(Duration::from_secs(STATE_PG_CONNECT_TIMEOUT_SECONDS_MAX));
        let (jobs_tx, jobs_rx) = mpsc::channel(STATE_PG_REQUEST_QUEUE_ENTRIES_MAX);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("state-pg".into())
            .spawn(move || connection_thread(config, jobs_rx, ready_tx))
            .map_err(|e| StateError::Postgres(format!("spawn: {e}")))?;
        let ready = ready_rx.recv().unwrap_or(Err(StateError::Closed));
        if let Err(e) = ready {
            let _ = thread.join();
            return Err(e);
        }
        Ok(PgStore {
            jobs: Some(jobs_tx),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the connection thread and waits for its result.
    fn call<T, F>(&self, f: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> PgFuture<'c, T> + Send + 'static,
    {
        let jobs = self.jobs.as_ref().ok_or(StateError::Closed)?;
        let (reply_tx, reply_rx) = oneshot::channel();
        let job: Job = Box::new(move |client| {
            Box::pin(async move {
                let _ = reply_tx.send(f(client).await);
            })
        });
        jobs.blocking_send(job).map_err(|_| StateError::Closed)?;
        reply_rx.blocking_recv().unwrap_or(Err(StateError::Closed))
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once queued jobs are done.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn connection_thread(
    config: tokio_postgres::Config,
    mut jobs: mpsc::Receiver<Job>,
    ready: std::sync::mpsc::SyncSender<Result<(), StateError>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(StateError::Postgres(format!("runtime: {e}"))));
            return;
        }
    };
    runtime.block_on(async move {
        let (mut client, connection) = match config.connect(NoTls).await {
            Ok(c) => c,
            Err(e) => {
                let _ = ready.send(Err(pg(e)));
                return;
            }
        };
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                log::warn!("state: postgres connection ended: {e}");
            }
        });
        // Commits do not wait for their WAL flush (PostgreSQL flushes within
        // 3 × wal_writer_delay, prefix-consistent), like the RocksDB store's unsynced WAL;
        // `sync` forces the flush. Without this every account creation waits for an fsync.
        if let Err(e) = client.batch_execute("SET synchronous_commit = off").await {
            let _ = ready.send(Err(pg(e)));
            return;
        }
        if let Err(e) = migrate(&mut client).await {
            let _ = ready.send(Err(e));
            return;
        }
        let _ = ready.send(Ok(()));
        let mut conn = Conn {
            client,
            statements: HashMap::new(),
        };
        while let Some(job) = jobs.recv().await {
            job(&mut conn).await;
        }
        drop(conn);
        let _ = driver.await;
    });
}

async fn migrate(client: &mut Client) -> Result<(), StateError> {
    let migration = |e: tokio_postgres::Error| StateError::Migration(e.to_string());
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(migration)?;
    for (version, sql) in MIGRATIONS {
        let tx = client.transaction().await.map_err(migration)?;
        tx.batch_execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
            .await
            .map_err(migration)?;
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .await
            .map_err(migration)?;
        if done.is_none() {
            tx.batch_execute(sql).await.map_err(migration)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await
            .map_err(migration)?;
        }
        tx.commit().await.map_err(migration)?;
    }
    Ok(())
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    column: &str,
) -> Result<T, StateError> {
    row.try_get(column).map_err(pg)
}

fn get_u64(row: &Row, column: &str) -> Result<u64, StateError> {
    to_u64(get::<i64>(row, column)?)
}

fn label<T>(row: &Row, column: &str, parse: fn(&str) -> Option<T>) -> Result<T, StateError> {
    parse(get::<&str>(row, column)?).ok_or(StateError::Corrupt("status label"))
}

fn row_to_host(row: &Row) -> Result<HostRecord, StateError> {
    Ok(HostRecord {
        id: get_u64(row, "id")?,
        hostname: get(row, "hostname")?,
        status: label(row, "status", HostStatus::from_label)?,
        last_seq: get_u64(row, "last_seq")?,
        account_count: get_u64(row, "account_count")?,
        account_limit: get_u64(row, "account_limit")?,
        rate_limits: RateLimits {
            per_second: get_u64(row, "rate_per_second")?,
            per_hour: get_u64(row, "rate_per_hour")?,
            per_day: get_u64(row, "rate_per_day")?,
        },
        failures: u32::try_from(get::<i64>(row, "failures")?)
            .map_err(|_| StateError::Corrupt("failures"))?,
        first_seen_ms: get_u64(row, "first_seen_ms")?,
        last_connected_ms: get_u64(row, "last_connected_ms")?,
    })
}

fn row_to_account(row: &Row) -> Result<AccountRecord, StateError> {
    Ok(AccountRecord {
        uid: get_u64(row, "uid")?,
        did: get(row, "did")?,
        host_id: get_u64(row, "host_id")?,
        local_status: label(row, "local_status", LocalStatus::from_label)?,
        upstream_status: label(row, "upstream_status", UpstreamStatus::from_label)?,
        rev: get(row, "rev")?,
        data_cid: get(row, "data_cid")?,
        desynchronized: get(row, "desynchronized")?,
        commit_cid: get(row, "commit_cid")?,
    })
}

fn row_to_identity(row: &Row) -> Result<IdentitySnapshot, StateError> {
    Ok(IdentitySnapshot {
        did: get(row, "did")?,
        entry: get(row, "entry")?,
        fetched_at_ms: get_u64(row, "fetched_at_ms")?,
    })
}

/// Rows as records, failing on the first bad one.
fn rows<T>(rows: Vec<Row>, f: fn(&Row) -> Result<T, StateError>) -> Result<Vec<T>, StateError> {
    rows.iter().map(f).collect()
}

/// One entry per key, so a set-based `UPDATE … FROM unnest(…)` sees each row once: host
/// cursors keep the last, account revs keep the greatest rev (what sequential conditional
/// updates would leave).
fn coalesce(batch: &Batch) -> Batch {
    let mut hosts: HashMap<HostId, u64> = HashMap::new();
    for &(id, seq) in &batch.host_cursors {
        hosts.insert(id, seq);
    }
    let mut accounts: HashMap<Uid, RevUpdate> = HashMap::new();
    for (uid, update) in &batch.account_revs {
        let keep = accounts
            .get(uid)
            .is_none_or(|old| update.rev.as_bytes() > old.rev.as_bytes());
        if keep {
            accounts.insert(*uid, update.clone());
        }
    }
    Batch {
        host_cursors: hosts.into_iter().collect(),
        account_revs: accounts.into_iter().collect(),
    }
}

/// A batch's account updates as the parallel arrays `unnest` takes (a NULL commit CID
/// clears the stored one, as in RocksDB).
#[derive(Default)]
struct AccountColumns {
    uids: Vec<i64>,
    revs: Vec<String>,
    data_cids: Vec<Vec<u8>>,
    desyncs: Vec<bool>,
    commit_cids: Vec<Option<Vec<u8>>>,
}

impl AccountColumns {
    fn push(&mut self, uid: i64, update: RevUpdate) {
        self.uids.push(uid);
        self.revs.push(update.rev);
        self.data_cids.push(update.data_cid);
        self.desyncs.push(update.desynchronized);
        self.commit_cids.push(update.commit_cid);
    }
}

impl Store for PgStore {
    fn upsert_host(&self, hostname: &str, now_ms: u64) -> Result<HostRecord, StateError> {
        check_key(hostname, "hostname")?;
        let hostname = hostname.to_owned();
        let now = to_i64(now_ms, "now_ms")?;
        self.call(move |c| {
            Box::pin(async move {
                let select = format!("SELECT {HOST_COLUMNS} FROM hosts WHERE hostname = $1");
                if let Some(row) = c.query_opt(&select, &[&hostname]).await? {
                    return row_to_host(&row);
                }
                c.execute(
                    "INSERT INTO hosts (hostname, status, first_seen_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (hostname) DO NOTHING",
                    &[&hostname, &HostStatus::Active.as_str(), &now],
                )
                .await?;
                row_to_host(&c.query_one(&select, &[&hostname]).await?)
            })
        })
    }

    fn get_host(&self, hostname: &str) -> Result<Option<HostRecord>, StateError> {
        let hostname = hostname.to_owned();
        self.call(move |c| {
            Box::pin(async move {
                let sql = format!("SELECT {HOST_COLUMNS} FROM hosts WHERE hostname = $1");
                let row = c.query_opt(&sql, &[&hostname]).await?;
                row.as_ref().map(row_to_host).transpose()
            })
        })
    }

    fn get_host_by_id(&self, id: HostId) -> Result<Option<HostRecord>, StateError> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        self.call(move |c| {
            Box::pin(async move {
                let sql = format!("SELECT {HOST_COLUMNS} FROM hosts WHERE id = $1");
                let row = c.query_opt(&sql, &[&id]).await?;
                row.as_ref().map(row_to_host).transpose()
            })
        })
    }

    fn put_host(&self, host: &HostRecord) -> Result<(), StateError> {
        let values: [i64; 8] = [
            to_i64(host.id, "host id")?,
            to_i64(host.last_seq, "last_seq")?,
            to_i64(host.account_limit, "account_limit")?,
            to_i64(host.rate_limits.per_second, "rate")?,
            to_i64(host.rate_limits.per_hour, "rate")?,
            to_i64(host.rate_limits.per_day, "rate")?,
            i64::from(host.failures),
            to_i64(host.last_connected_ms, "last_connected_ms")?,
        ];
        let status = host.status.as_str();
        self.call(move |c| {
            Box::pin(async move {
                let [id, seq, limit, ps, ph, pd, failures, connected] = values;
                let n = c
                    .execute(
                        "UPDATE hosts SET status = $2, last_seq = $3, account_limit = $4, \
                         rate_per_second = $5, rate_per_hour = $6, rate_per_day = $7, \
                         failures = $8, last_connected_ms = $9 WHERE id = $1",
                        &[
                            &id, &status, &seq, &limit, &ps, &ph, &pd, &failures, &connected,
                        ],
                    )
                    .await?;
                if n == 0 {
                    return Err(StateError::NotFound("host"));
                }
                Ok(())
            })
        })
    }

    fn list_hosts(&self, after: HostId, limit: usize) -> Result<Vec<HostRecord>, StateError> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let limit = clamp_limit(limit) as i64;
        self.call(move |c| {
            Box::pin(async move {
                let sql =
                    format!("SELECT {HOST_COLUMNS} FROM hosts WHERE id > $1 ORDER BY id LIMIT $2");
                rows(c.query(&sql, &[&after, &limit]).await?, row_to_host)
            })
        })
    }

    fn set_host_cursor(&self, id: HostId, seq: u64) -> Result<(), StateError> {
        let id = to_i64(id, "host id")?;
        let seq = to_i64(seq, "last_seq")?;
        self.call(move |c| {
            Box::pin(async move {
                let n = c
                    .execute("UPDATE hosts SET last_seq = $2 WHERE id = $1", &[&id, &seq])
                    .await?;
                if n == 0 {
                    return Err(StateError::NotFound("host"));
                }
                Ok(())
            })
        })
    }

    fn put_domain_ban(&self, domain: &str) -> Result<(), StateError> {
        check_key(domain, "domain")?;
        let domain = domain.to_owned();
        self.call(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO domain_bans (domain) VALUES ($1) ON CONFLICT DO NOTHING",
                    &[&domain],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn delete_domain_ban(&self, domain: &str) -> Result<bool, StateError> {
        let domain = domain.to_owned();
        self.call(move |c| {
            Box::pin(async move {
                let n = c
                    .execute("DELETE FROM domain_bans WHERE domain = $1", &[&domain])
                    .await?;
                Ok(n > 0)
            })
        })
    }

    fn list_domain_bans(&self) -> Result<Vec<String>, StateError> {
        self.call(move |c| {
            Box::pin(async move {
                let found = c
                    .query("SELECT domain FROM domain_bans ORDER BY domain", &[])
                    .await?;
                found.iter().map(|r| get(r, "domain")).collect()
            })
        })
    }

    fn get_or_create_account(
        &self,
        did: &str,
        host_id: HostId,
    ) -> Result<AccountRecord, StateError> {
        check_key(did, "did")?;
        let did = did.to_owned();
        let host_id = to_i64(host_id, "host id")?;
        self.call(move |c| {
            Box::pin(async move {
                let select = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE did = $1");
                if let Some(row) = c.query_opt(&select, &[&did]).await? {
                    return row_to_account(&row);
                }
                // One statement (one implicit transaction): the insert and the host's
                // count move together, and a lost race inserts nothing and counts nothing.
                let create = format!(
                    "WITH ins AS (INSERT INTO accounts (did, host_id, local_status, upstream_status) \
                     VALUES ($1, $2, $3, $3) ON CONFLICT (did) DO NOTHING RETURNING {ACCOUNT_COLUMNS}), \
                     bump AS (UPDATE hosts SET account_count = account_count + 1 \
                     WHERE id IN (SELECT host_id FROM ins)) SELECT * FROM ins"
                );
                let active = LocalStatus::Active.as_str();
                let created = c
                    .query_opt(&create, &[&did, &host_id, &active])
                    .await
                    ?;
                let row = match created {
                    Some(row) => row,
                    None => c.query_one(&select, &[&did]).await?,
                };
                row_to_account(&row)
            })
        })
    }

    fn get_account(&self, did: &str) -> Result<Option<AccountRecord>, StateError> {
        let did = did.to_owned();
        self.call(move |c| {
            Box::pin(async move {
                let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE did = $1");
                let row = c.query_opt(&sql, &[&did]).await?;
                row.as_ref().map(row_to_account).transpose()
            })
        })
    }

    fn get_account_by_uid(&self, uid: Uid) -> Result<Option<AccountRecord>, StateError> {
        let Ok(uid) = i64::try_from(uid) else {
            return Ok(None);
        };
        self.call(move |c| {
            Box::pin(async move {
                let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE uid = $1");
                let row = c.query_opt(&sql, &[&uid]).await?;
                row.as_ref().map(row_to_account).transpose()
            })
        })
    }

    fn list_accounts(&self, after: Uid, limit: usize) -> Result<Vec<AccountRecord>, StateError> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let limit = clamp_limit(limit) as i64;
        self.call(move |c| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE uid > $1 ORDER BY uid LIMIT $2"
                );
                rows(c.query(&sql, &[&after, &limit]).await?, row_to_account)
            })
        })
    }

    fn update_account_rev(&self, uid: Uid, update: &RevUpdate) -> Result<bool, StateError> {
        check_rev_update(update)?;
        let uid = to_i64(uid, "uid")?;
        let update = update.clone();
        self.call(move |c| {
            Box::pin(async move {
                let n = c
                    .execute(
                        "UPDATE accounts SET rev = $2, data_cid = $3, desynchronized = $4, \
                         commit_cid = $5 \
                         WHERE uid = $1 AND (rev IS NULL OR rev < $2 COLLATE \"C\")",
                        &[
                            &uid,
                            &update.rev,
                            &update.data_cid,
                            &update.desynchronized,
                            &update.commit_cid,
                        ],
                    )
                    .await?;
                if n > 0 {
                    return Ok(true);
                }
                let exists = c
                    .query_opt("SELECT 1 FROM accounts WHERE uid = $1", &[&uid])
                    .await?;
                match exists {
                    Some(_) => Ok(false),
                    None => Err(StateError::NotFound("account")),
                }
            })
        })
    }

    fn set_local_status(&self, uid: Uid, status: LocalStatus) -> Result<bool, StateError> {
        self.set_account_text(uid, "local_status", status.as_str())
    }

    fn set_upstream_status(&self, uid: Uid, status: UpstreamStatus) -> Result<bool, StateError> {
        self.set_account_text(uid, "upstream_status", status.as_str())
    }

    fn set_desynchronized(&self, uid: Uid, desynchronized: bool) -> Result<bool, StateError> {
        let Ok(uid) = i64::try_from(uid) else {
            return Ok(false);
        };
        self.call(move |c| {
            Box::pin(async move {
                let n = c
                    .execute(
                        "UPDATE accounts SET desynchronized = $2 WHERE uid = $1",
                        &[&uid, &desynchronized],
                    )
                    .await?;
                Ok(n > 0)
            })
        })
    }

    fn set_account_host(&self, uid: Uid, host_id: HostId) -> Result<bool, StateError> {
        let Ok(uid) = i64::try_from(uid) else {
            return Ok(false);
        };
        let host_id = to_i64(host_id, "host id")?;
        self.call(move |c| {
            Box::pin(async move {
                let tx = c.client.transaction().await.map_err(pg)?;
                let old = tx
                    .query_opt("SELECT host_id FROM accounts WHERE uid = $1 FOR UPDATE", &[&uid])
                    .await
                    .map_err(pg)?;
                let Some(old) = old else {
                    return Ok(false);
                };
                let old: i64 = get(&old, "host_id")?;
                if old != host_id {
                    tx.execute("UPDATE accounts SET host_id = $2 WHERE uid = $1", &[&uid, &host_id])
                        .await
                        .map_err(pg)?;
                    tx.execute(
                        "UPDATE hosts SET account_count = GREATEST(account_count - 1, 0) WHERE id = $1",
                        &[&old],
                    )
                    .await
                    .map_err(pg)?;
                    tx.execute(
                        "UPDATE hosts SET account_count = account_count + 1 WHERE id = $1",
                        &[&host_id],
                    )
                    .await
                    .map_err(pg)?;
                }
                tx.commit().await.map_err(pg)?;
                Ok(true)
            })
        })
    }

    fn put_identity(&self, did: &str, entry: &[u8], fetched_at_ms: u64) -> Result<(), StateError> {
        check_key(did, "did")?;
        check_identity(entry)?;
        let did = did.to_owned();
        let entry = entry.to_vec();
        let at = to_i64(fetched_at_ms, "fetched_at_ms")?;
        self.call(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO identity (did, entry, fetched_at_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (did) DO UPDATE SET entry = $2, fetched_at_ms = $3",
                    &[&did, &entry, &at],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn get_identity(&self, did: &str) -> Result<Option<IdentitySnapshot>, StateError> {
        let did = did.to_owned();
        self.call(move |c| {
            Box::pin(async move {
                let row = c
                    .query_opt(
                        "SELECT did, entry, fetched_at_ms FROM identity WHERE did = $1",
                        &[&did],
                    )
                    .await?;
                row.as_ref().map(row_to_identity).transpose()
            })
        })
    }

    fn delete_identity(&self, did: &str) -> Result<bool, StateError> {
        let did = did.to_owned();
        self.call(move |c| {
            Box::pin(async move {
                let n = c
                    .execute("DELETE FROM identity WHERE did = $1", &[&did])
                    .await?;
                Ok(n > 0)
            })
        })
    }

    fn list_identities(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<IdentitySnapshot>, StateError> {
        let after = after.to_owned();
        let limit = clamp_limit(limit) as i64;
        self.call(move |c| {
            Box::pin(async move {
                let found = c
                    .query(
                        "SELECT did, entry, fetched_at_ms FROM identity WHERE did > $1 \
                         ORDER BY did LIMIT $2",
                        &[&after, &limit],
                    )
                    .await?;
                rows(found, row_to_identity)
            })
        })
    }

    fn put_backfill(&self, key: &str, record: &BackfillRecord) -> Result<(), StateError> {
        check_key(key, "backfill key")?;
        check_key(&record.cursor, "backfill cursor")?;
        check_key(&record.status, "backfill status")?;
        let key = key.to_owned();
        let record = record.clone();
        let done = to_i64(record.done, "backfill done")?;
        let failed = to_i64(record.failed, "backfill failed")?;
        self.call(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO backfill (key, cursor, done, failed, status) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE \
                     SET cursor = $2, done = $3, failed = $4, status = $5",
                    &[&key, &record.cursor, &done, &failed, &record.status],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn get_backfill(&self, key: &str) -> Result<Option<BackfillRecord>, StateError> {
        let key = key.to_owned();
        self.call(move |c| {
            Box::pin(async move {
                let row = c
                    .query_opt(
                        "SELECT cursor, done, failed, status FROM backfill WHERE key = $1",
                        &[&key],
                    )
                    .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some(BackfillRecord {
                    cursor: get(&row, "cursor")?,
                    done: get_u64(&row, "done")?,
                    failed: get_u64(&row, "failed")?,
                    status: get(&row, "status")?,
                }))
            })
        })
    }

    fn list_backfills(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, BackfillRecord)>, StateError> {
        let pattern = format!("{}%", like_escape(prefix));
        let after = after.to_owned();
        let limit = clamp_limit(limit) as i64;
        self.call(move |c| {
            Box::pin(async move {
                let found = c
                    .query(
                        "SELECT key, cursor, done, failed, status FROM backfill \
                         WHERE key LIKE $1 AND key > $2 ORDER BY key LIMIT $3",
                        &[&pattern, &after, &limit],
                    )
                    .await?;
                rows(found, |row| {
                    Ok((
                        get(row, "key")?,
                        BackfillRecord {
                            cursor: get(row, "cursor")?,
                            done: get_u64(row, "done")?,
                            failed: get_u64(row, "failed")?,
                            status: get(row, "status")?,
                        },
                    ))
                })
            })
        })
    }

    fn add_collection_repos(&self, pairs: &[CollectionRepo]) -> Result<(), StateError> {
        let mut collections = Vec::with_capacity(pairs.len());
        let mut dids = Vec::with_capacity(pairs.len());
        for pair in pairs {
            check_collection_repo(pair)?;
            collections.push(pair.collection.clone());
            dids.push(pair.did.clone());
        }
        self.call(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO collection_repos (collection, did) \
                     SELECT * FROM UNNEST($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
                    &[&collections, &dids],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn remove_collection_repos(&self, did: &str) -> Result<usize, StateError> {
        check_key(did, "did")?;
        let did = did.to_owned();
        self.call(move |c| {
            Box::pin(async move {
                let removed = c
                    .execute("DELETE FROM collection_repos WHERE did = $1", &[&did])
                    .await?;
                Ok(usize::try_from(removed).unwrap_or(usize::MAX))
            })
        })
    }

    fn list_collection_repos(
        &self,
        collection: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        check_key(collection, "collection")?;
        let collection = collection.to_owned();
        let after = after.to_owned();
        let limit = limit.min(COLLECTIONS_LIST_PAGE_ENTRIES_MAX) as i64;
        self.call(move |c| {
            Box::pin(async move {
                let found = c
                    .query(
                        "SELECT did FROM collection_repos WHERE collection = $1 AND did > $2 \
                         ORDER BY did LIMIT $3",
                        &[&collection, &after, &limit],
                    )
                    .await?;
                rows(found, |row| get(row, "did"))
            })
        })
    }

    fn apply_batch(&self, batch: &Batch) -> Result<usize, StateError> {
        let Batch {
            host_cursors: hosts,
            account_revs: accounts,
        } = coalesce(batch);
        let mut host_ids = Vec::with_capacity(hosts.len());
        let mut seqs = Vec::with_capacity(hosts.len());
        for (id, seq) in hosts {
            host_ids.push(to_i64(id, "host id")?);
            seqs.push(to_i64(seq, "last_seq")?);
        }
        let mut columns = AccountColumns::default();
        for (uid, update) in accounts {
            check_rev_update(&update)?;
            columns.push(to_i64(uid, "uid")?, update);
        }
        self.call(move |c| {
            Box::pin(async move {
                let tx = c.client.transaction().await.map_err(pg)?;
                tx.execute(
                    "UPDATE hosts h SET last_seq = u.seq \
                     FROM unnest($1::bigint[], $2::bigint[]) AS u(id, seq) WHERE h.id = u.id",
                    &[&host_ids, &seqs],
                )
                .await
                .map_err(pg)?;
                let applied = tx
                    .execute(
                        "UPDATE accounts a SET rev = u.rev, data_cid = u.cid, \
                         desynchronized = u.desync, commit_cid = u.commit \
                         FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bool[], \
                         $5::bytea[]) AS u(uid, rev, cid, desync, commit) \
                         WHERE a.uid = u.uid AND (a.rev IS NULL OR a.rev < u.rev COLLATE \"C\")",
                        &[
                            &columns.uids,
                            &columns.revs,
                            &columns.data_cids,
                            &columns.desyncs,
                            &columns.commit_cids,
                        ],
                    )
                    .await
                    .map_err(pg)?;
                tx.commit().await.map_err(pg)?;
                Ok(applied as usize)
            })
        })
    }

    fn sync(&self) -> Result<(), StateError> {
        // A synchronous commit of a transaction with an xid waits until the WAL up to its
        // commit record (so every earlier commit of this connection) is flushed.
        self.call(move |c| {
            Box::pin(async move {
                c.client
                    .batch_execute(
                        "BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT;",
                    )
                    .await
                    .map_err(pg)
            })
        })
    }
}

impl PgStore {
    /// Sets one text column of an account; `column` is one of our own constants.
    fn set_account_text(
        &self,
        uid: Uid,
        column: &'static str,
        value: &'static str,
    ) -> Result<bool, StateError> {
        let Ok(uid) = i64::try_from(uid) else {
            return Ok(false);
        };
        self.call(move |c| {
            Box::pin(async move {
                let sql = format!("UPDATE accounts SET {column} = $2 WHERE uid = $1");
                let n = c.execute(&sql, &[&uid, &value]).await?;
                Ok(n > 0)
            })
        })
    }
}
