//! State: hosts, accounts, the identity cache snapshot, backfill progress and the
//! collection index (collection → DIDs, DID → collections) behind one
//! store interface ([`Store`]), RocksDB by default ([`rocks`]), PostgreSQL on request
//! ([`pg`]), and the [`StateService`] thread through which the data plane reaches it.
//!
//! Owns: the durable records and their encodings (docs/specs/state.md), uid and host-id
//! assignment, the conditional rev rule, the write-behind buffer.
//!
//! Must not: run on a data-plane core. Every [`Store`] call may block (disk, a database
//! round trip); only state threads call it. The data plane uses [`StateService`], whose
//! `record_*` calls never block and whose reads are futures completed from the state
//! thread.
//!
//! Checks: an account's rev only moves forward ([`Store::update_account_rev`] refuses an
//! older or equal rev, whichever thread writes); field sizes against `limits`; every
//! stored record decodes strictly (a malformed one is [`StateError::Corrupt`]).
//! Does not check: that a rev is a valid TID, a DID or hostname syntactically valid, or
//! that a CID parses — callers hand over values they already validated. Revs compare as
//! bytes, which is TID order.

pub mod codec;
pub mod pg;
pub mod rocks;
pub mod service;

pub use service::{Full, Reply, ServiceConfig, StateService};

use crate::config::limits::{
    STATE_COMMIT_CID_BYTES_MAX, STATE_DATA_CID_BYTES_MAX, STATE_IDENTITY_ENTRY_BYTES_MAX,
    STATE_KEY_BYTES_MAX, STATE_REV_BYTES_MAX,
};
use std::path::PathBuf;

/// Dense host id, assigned on first sight of a hostname, never reused.
pub type HostId = u64;
/// Dense account id, assigned on first sight of a DID, stable forever.
pub type Uid = u64;

/// Where the store lives.
#[derive(Debug, Clone)]
pub struct StateConfig {
    /// The relay's data directory; RocksDB lives under `<data_dir>/state/`.
    pub data_dir: PathBuf,
    /// `postgres://…`: use PostgreSQL instead of the embedded RocksDB.
    pub database_url: Option<String>,
}

impl StateConfig {
    /// The store `relay serve` was asked for (`--data-dir`, `--database-url`).
    pub fn from_serve_args(args: &crate::config::ServeArgs) -> StateConfig {
        StateConfig {
            data_dir: args.data_dir.clone(),
            database_url: args.database_url.clone(),
        }
    }
}

/// Opens the configured store: PostgreSQL when a database URL is given, else RocksDB
/// under `<data_dir>/state/`. Blocking; call it from a state or main thread.
pub fn open(config: &StateConfig) -> Result<Box<dyn Store>, StateError> {
    match &config.database_url {
        Some(url) => Ok(Box::new(pg::PgStore::connect(url)?)),
        None => Ok(Box::new(rocks::RocksStore::open(
            &config.data_dir.join("state"),
        )?)),
    }
}

/// Errors of the state layer.
#[derive(Debug)]
#[non_exhaustive]
pub enum StateError {
    /// RocksDB reported an error (message kept for the log, not for metrics).
    Rocks(String),
    /// PostgreSQL reported an error or the connection failed.
    Postgres(String),
    /// A stored record does not decode: the store was written by something else or damaged.
    Corrupt(&'static str),
    /// A field is longer than its bound in `limits`.
    TooLarge(&'static str),
    /// A field holds a value the encoding cannot keep (e.g. a NUL inside a composite key).
    Invalid(&'static str),
    /// The uid or host-id space is exhausted (2^63 assignments).
    IdsExhausted,
    /// A write names a host id or uid that does not exist.
    NotFound(&'static str),
    /// A bounded request queue is full; the request was not queued (retry later).
    QueueFull,
    /// The store's thread has stopped (shutdown, or it failed); no more requests.
    Closed,
    /// A schema migration could not be applied.
    Migration(String),
}

impl StateError {
    /// A short static label, usable as a bounded metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            StateError::Rocks(_) => "rocksdb",
            StateError::Postgres(_) => "postgres",
            StateError::Corrupt(_) => "corrupt",
            StateError::TooLarge(_) => "too_large",
            StateError::Invalid(_) => "invalid",
            StateError::IdsExhausted => "ids_exhausted",
            StateError::NotFound(_) => "not_found",
            StateError::QueueFull => "queue_full",
            StateError::Closed => "closed",
            StateError::Migration(_) => "migration",
        }
    }
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Rocks(m) => write!(f, "rocksdb: {m}"),
            StateError::Postgres(m) => write!(f, "postgres: {m}"),
            StateError::Corrupt(what) => write!(f, "corrupt stored record: {what}"),
            StateError::TooLarge(what) => write!(f, "field too large: {what}"),
            StateError::Invalid(what) => write!(f, "invalid field: {what}"),
            StateError::IdsExhausted => write!(f, "id space exhausted"),
            StateError::NotFound(what) => write!(f, "not found: {what}"),
            StateError::QueueFull => write!(f, "state request queue full"),
            StateError::Closed => write!(f, "state thread stopped"),
            StateError::Migration(m) => write!(f, "schema migration: {m}"),
        }
    }
}

impl std::error::Error for StateError {}

/// Generates a status enum with its stable storage label (the same text in RocksDB
/// encodings and PostgreSQL columns).
macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// The stored label.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
            /// Parses a stored label.
            pub fn from_label(label: &str) -> Option<Self> {
                match label { $($label => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

status_enum! {
    /// What the relay does with a host.
    HostStatus {
        /// Subscribed (or to be subscribed).
        Active => "active",
        /// Not subscribed now (no recent events, or waiting to reconnect).
        Idle => "idle",
        /// Too many failures; reconnects back off.
        Offline => "offline",
        /// Over its rate limits; events are slowed.
        Throttled => "throttled",
        /// Refused by an operator; never subscribed.
        Banned => "banned",
    }
}

status_enum! {
    /// The relay's own decision about an account (the takedown list lives here).
    LocalStatus {
        /// Events pass.
        Active => "active",
        /// Taken down by this relay's operator: events are dropped.
        Takendown => "takendown",
        /// Suspended by this relay's operator.
        Suspended => "suspended",
        /// Over its rate limits.
        Throttled => "throttled",
    }
}

status_enum! {
    /// The account status its host last reported in an `#account` event.
    UpstreamStatus {
        /// `active: true`.
        Active => "active",
        /// `takendown`.
        Takendown => "takendown",
        /// `suspended`.
        Suspended => "suspended",
        /// `deactivated`.
        Deactivated => "deactivated",
        /// `deleted`.
        Deleted => "deleted",
        /// `desynchronized`.
        Desynchronized => "desynchronized",
        /// `throttled`.
        Throttled => "throttled",
        /// A status value outside the lexicon's known values (the field is open).
        Unknown => "unknown",
    }
}

/// Per-host event rate limits (0 = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimits {
    /// Events per second.
    pub per_second: u64,
    /// Events per hour.
    pub per_hour: u64,
    /// Events per day.
    pub per_day: u64,
}

/// One upstream host (PDS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRecord {
    /// Assigned on first sight.
    pub id: HostId,
    /// Lower-case hostname, unique.
    pub hostname: String,
    /// What the relay does with it.
    pub status: HostStatus,
    /// Last upstream `seq` processed: the resume cursor (0 = none yet).
    pub last_seq: u64,
    /// Accounts whose host this is; maintained by the store on account creation and host
    /// moves (writes through [`Store::put_host`] leave it alone).
    pub account_count: u64,
    /// Most accounts accepted from this host (0 = unlimited).
    pub account_limit: u64,
    /// Event rate limits.
    pub rate_limits: RateLimits,
    /// Consecutive connection failures.
    pub failures: u32,
    /// Unix milliseconds of first sight.
    pub first_seen_ms: u64,
    /// Unix milliseconds of the last successful connection (0 = never).
    pub last_connected_ms: u64,
}

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// Assigned on first sight, stable forever.
    pub uid: Uid,
    /// The DID.
    pub did: String,
    /// The host currently authoritative for it.
    pub host_id: HostId,
    /// This relay's decision.
    pub local_status: LocalStatus,
    /// What its host last said.
    pub upstream_status: UpstreamStatus,
    /// Last accepted commit's rev (a TID); `None` before the first commit.
    pub rev: Option<String>,
    /// Last accepted commit's `data` CID, binary; `None` before the first commit.
    pub data_cid: Option<Vec<u8>>,
    /// Set when a gap was seen and the account waits for a resync.
    pub desynchronized: bool,
    /// The CID of the last accepted commit block itself (binary), the repo's `head`;
    /// `None` before the first commit, and for an account whose last rev was stored by a
    /// relay version that did not record it (until its next commit).
    pub commit_cid: Option<Vec<u8>>,
}

/// The result of an accepted commit, as the write-behind buffer carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevUpdate {
    /// The commit's rev; must be greater than the stored one to apply.
    pub rev: String,
    /// The commit's `data` CID, binary.
    pub data_cid: Vec<u8>,
    /// The desynchronized flag after this commit.
    pub desynchronized: bool,
    /// The commit block's CID, binary (`#commit`: the frame's `commit`; `#sync`: the CAR
    /// root). Stored with the rev: `None` clears the stored one, which would name an
    /// older commit than the stored rev.
    pub commit_cid: Option<Vec<u8>>,
}

/// One identity cache entry (the resolution entry is opaque bytes, owned by `identity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySnapshot {
    /// The DID.
    pub did: String,
    /// The serialized resolution entry.
    pub entry: Vec<u8>,
    /// Unix milliseconds when it was resolved.
    pub fetched_at_ms: u64,
}

/// Progress of one backfill job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackfillRecord {
    /// Where to resume (a `listRepos` cursor, a DID…), opaque to the store.
    pub cursor: String,
    /// Items done.
    pub done: u64,
    /// Items failed.
    pub failed: u64,
    /// Free-form status label (`running`, `done`, …), owned by the backfill code.
    pub status: String,
}

/// One entry of the collection index: `did` has (or had) records in `collection`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CollectionRepo {
    /// The collection NSID.
    pub collection: String,
    /// The account's DID.
    pub did: String,
}

/// A batch of coalesced per-frame updates, written atomically by [`Store::apply_batch`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Host cursors: host id → last upstream seq (latest wins, unconditional).
    pub host_cursors: Vec<(HostId, u64)>,
    /// Account commits: uid → rev update (each one conditional on its rev).
    pub account_revs: Vec<(Uid, RevUpdate)>,
}

impl Batch {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.host_cursors.len() + self.account_revs.len()
    }
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The store interface. Synchronous; every method may block. Implementations are
/// `Send + Sync` so several state threads may share one; every write is atomic per call,
/// and the conditional rev rule holds across threads.
pub trait Store: Send + Sync {
    /// The host with this hostname, created (status `active`, `first_seen_ms = now_ms`)
    /// if new.
    fn upsert_host(&self, hostname: &str, now_ms: u64) -> Result<HostRecord, StateError>;
    /// The host with this hostname.
    fn get_host(&self, hostname: &str) -> Result<Option<HostRecord>, StateError>;
    /// The host with this id.
    fn get_host_by_id(&self, id: HostId) -> Result<Option<HostRecord>, StateError>;
    /// Overwrites a host's mutable fields (all but id, hostname, account count and first
    /// seen). [`StateError::NotFound`] if the id is unknown.
    fn put_host(&self, host: &HostRecord) -> Result<(), StateError>;
    /// Hosts with id > `after`, ascending, at most `limit` (clamped to
    /// `STATE_LIST_PAGE_ENTRIES_MAX`).
    fn list_hosts(&self, after: HostId, limit: usize) -> Result<Vec<HostRecord>, StateError>;
    /// Sets a host's resume cursor (unconditional: a host may reset its sequence).
    fn set_host_cursor(&self, id: HostId, seq: u64) -> Result<(), StateError>;
    /// Bans a domain (and its subdomains, as the caller interprets it).
    fn put_domain_ban(&self, domain: &str) -> Result<(), StateError>;
    /// Lifts a domain ban; returns whether it existed.
    fn delete_domain_ban(&self, domain: &str) -> Result<bool, StateError>;
    /// All banned domains, sorted.
    fn list_domain_bans(&self) -> Result<Vec<String>, StateError>;

    /// The account with this DID, created (uid assigned, statuses active, no rev) on
    /// `host_id` if new. The host's account count grows by one on creation.
    fn get_or_create_account(
        &self,
        did: &str,
        host_id: HostId,
    ) -> Result<AccountRecord, StateError>;
    /// The account with this DID.
    fn get_account(&self, did: &str) -> Result<Option<AccountRecord>, StateError>;
    /// The account with this uid.
    fn get_account_by_uid(&self, uid: Uid) -> Result<Option<AccountRecord>, StateError>;
    /// Accounts with uid > `after`, ascending, at most `limit` (clamped).
    fn list_accounts(&self, after: Uid, limit: usize) -> Result<Vec<AccountRecord>, StateError>;
    /// Conditional: applies only if `update.rev` is greater than the stored rev (or there
    /// is none); rev, data CID, commit CID and the desynchronized flag change together.
    /// Returns whether it applied. [`StateError::NotFound`] for an unknown uid.
    fn update_account_rev(&self, uid: Uid, update: &RevUpdate) -> Result<bool, StateError>;
    /// Sets the relay's own status (takedowns). Returns whether the uid exists.
    fn set_local_status(&self, uid: Uid, status: LocalStatus) -> Result<bool, StateError>;
    /// Sets the status from the host's `#account` event. Returns whether the uid exists.
    fn set_upstream_status(&self, uid: Uid, status: UpstreamStatus) -> Result<bool, StateError>;
    /// Sets the desynchronized flag. Returns whether the uid exists.
    fn set_desynchronized(&self, uid: Uid, desynchronized: bool) -> Result<bool, StateError>;
    /// Moves an account to another host (account counts follow). Returns whether the uid
    /// exists.
    fn set_account_host(&self, uid: Uid, host_id: HostId) -> Result<bool, StateError>;

    /// Stores (replaces) an identity cache entry.
    fn put_identity(&self, did: &str, entry: &[u8], fetched_at_ms: u64) -> Result<(), StateError>;
    /// An identity cache entry.
    fn get_identity(&self, did: &str) -> Result<Option<IdentitySnapshot>, StateError>;
    /// Deletes an identity cache entry; returns whether it existed.
    fn delete_identity(&self, did: &str) -> Result<bool, StateError>;
    /// Entries with DID > `after` (bytewise), ascending, at most `limit` (clamped): page
    /// through them to warm the cache on start.
    fn list_identities(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<IdentitySnapshot>, StateError>;

    /// Stores (replaces) a backfill progress record.
    fn put_backfill(&self, key: &str, record: &BackfillRecord) -> Result<(), StateError>;
    /// A backfill progress record.
    fn get_backfill(&self, key: &str) -> Result<Option<BackfillRecord>, StateError>;
    /// Backfill progress records whose key starts with `prefix`, ordered by key, with keys
    /// greater than `after` ("" = from the first).
    fn list_backfills(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, BackfillRecord)>, StateError>;

    /// Records that each `(collection, did)` pair has records in the collection index
    /// (idempotent: a pair already there stays as it is).
    fn add_collection_repos(&self, pairs: &[CollectionRepo]) -> Result<(), StateError>;
    /// Forgets every collection of `did` (its account is gone); returns how many pairs
    /// were removed.
    fn remove_collection_repos(&self, did: &str) -> Result<usize, StateError>;
    /// DIDs with records in `collection`, in byte order, greater than `after` ("" = from
    /// the first), at most `limit` (clamped to `COLLECTIONS_LIST_PAGE_ENTRIES_MAX`, the
    /// lexicon's page maximum).
    fn list_collection_repos(
        &self,
        collection: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StateError>;

    /// Writes a batch atomically: every host cursor, and every account rev that passes the
    /// conditional rule (the others are skipped, not errors). Returns how many accounts'
    /// revs moved forward. Unknown ids are skipped (an account or host deleted meanwhile).
    fn apply_batch(&self, batch: &Batch) -> Result<usize, StateError>;
    /// Makes every write so far durable. Writes do not wait for an fsync (RocksDB: WAL
    /// unsynced; PostgreSQL: `synchronous_commit = off`); this does (RocksDB: WAL fsync;
    /// PostgreSQL: a synchronous commit, which flushes all earlier WAL).
    fn sync(&self) -> Result<(), StateError>;
}

pub(crate) fn check_len(value: &[u8], max: usize, what: &'static str) -> Result<(), StateError> {
    if value.len() > max {
        return Err(StateError::TooLarge(what));
    }
    Ok(())
}

pub(crate) fn check_key(value: &str, what: &'static str) -> Result<(), StateError> {
    check_len(value.as_bytes(), STATE_KEY_BYTES_MAX, what)
}

pub(crate) fn check_rev_update(update: &RevUpdate) -> Result<(), StateError> {
    check_len(update.rev.as_bytes(), STATE_REV_BYTES_MAX, "rev")?;
    check_len(&update.data_cid, STATE_DATA_CID_BYTES_MAX, "data_cid")?;
    match &update.commit_cid {
        Some(cid) => check_len(cid, STATE_COMMIT_CID_BYTES_MAX, "commit_cid"),
        None => Ok(()),
    }
}

pub(crate) fn check_identity(entry: &[u8]) -> Result<(), StateError> {
    check_len(entry, STATE_IDENTITY_ENTRY_BYTES_MAX, "identity entry")
}

pub(crate) fn check_collection_repo(pair: &CollectionRepo) -> Result<(), StateError> {
    check_key(&pair.collection, "collection")?;
    check_key(&pair.did, "did")?;
    if pair.collection.contains('\0') || pair.did.contains('\0') {
        return Err(StateError::Invalid("NUL in a collection index key"));
    }
    Ok(())
}

pub(crate) fn clamp_limit(limit: usize) -> usize {
    limit.min(crate::config::limits::STATE_LIST_PAGE_ENTRIES_MAX)
}

/// True when `new` is a later rev than `stored` (TIDs compare as bytes).
pub(crate) fn rev_is_newer(stored: Option<&str>, new: &str) -> bool {
    match stored {
        None => true,
        Some(old) => new.as_bytes() > old.as_bytes(),
    }
}
