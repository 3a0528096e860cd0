//! The embedded store: RocksDB under `<data_dir>/state/`, one column family per table.
//!
//! Owns: every `rocksdb` call of the crate (a RocksDB upgrade stays in this file), the
//! locks that make read-check-write atomic, uid and host-id assignment.
//!
//! Atomicity: each public call writes one `WriteBatch`. A read-check-write (the
//! conditional rev, a host's account count, id assignment) holds a lock over the read and
//! the write: account mutations a per-uid stripe of [`STRIPES`] mutexes, host mutations
//! one host mutex, creations one creation mutex. Lock order, never inverted: creation →
//! account stripes (ascending) → host. Writes go to the WAL without fsync; [`Store::sync`]
//! fsyncs it.
//!
//! Must not: be used by two processes (RocksDB's LOCK file refuses the second opener).

use super::codec::{
    decode_account, decode_backfill, decode_host, decode_id, decode_identity, encode_account,
    encode_backfill, encode_host, encode_identity, id_key,
};
use super::{
    AccountRecord, BackfillRecord, Batch, CollectionRepo, HostId, HostRecord, HostStatus,
    IdentitySnapshot, LocalStatus, RateLimits, RevUpdate, StateError, Store, Uid, UpstreamStatus,
    check_collection_repo, check_identity, check_key, check_rev_update, clamp_limit, rev_is_newer,
};
use crate::config::limits::COLLECTIONS_LIST_PAGE_ENTRIES_MAX;
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Direction, IteratorMode, Options,
    WriteBatch,
};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// Host id → host value.
const CF_HOSTS: &str = "hosts";
/// Hostname → host id.
const CF_HOST_NAMES: &str = "host_names";
/// Banned domain → empty.
const CF_DOMAIN_BANS: &str = "domain_bans";
/// Uid → account value.
const CF_ACCOUNTS: &str = "accounts";
/// DID → uid.
const CF_ACCOUNT_DIDS: &str = "account_dids";
/// DID → identity snapshot value.
const CF_IDENTITY: &str = "identity";
/// Backfill key → progress value.
const CF_BACKFILL: &str = "backfill";
/// Counters: `next_uid`, `next_host_id` (big-endian u64).
const CF_META: &str = "meta";
/// `collection NUL did` → empty: the collection index, read by `listReposByCollection`.
const CF_COLLECTION_DIDS: &str = "collection_dids";
/// `did NUL collection` → empty: the same pairs by account, to forget a deleted account.
const CF_DID_COLLECTIONS: &str = "did_collections";

const COLUMN_FAMILIES: [&str; 10] = [
    CF_HOSTS,
    CF_HOST_NAMES,
    CF_DOMAIN_BANS,
    CF_ACCOUNTS,
    CF_ACCOUNT_DIDS,
    CF_IDENTITY,
    CF_BACKFILL,
    CF_META,
    CF_COLLECTION_DIDS,
    CF_DID_COLLECTIONS,
];

/// One entry read back: key and value bytes.
type KeyValue = (Vec<u8>, Vec<u8>);

/// `first NUL second`: NUL sorts before every byte of a DID or NSID, so all keys of one
/// `first` are contiguous and ordered by `second`.
fn pair_key(first: &str, second: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(first.len() + 1 + second.len());
    key.extend_from_slice(first.as_bytes());
    key.push(0);
    key.extend_from_slice(second.as_bytes());
    key
}

const META_NEXT_UID: &[u8] = b"next_uid";
const META_NEXT_HOST_ID: &[u8] = b"next_host_id";

/// Account lock stripes: enough that writers of different accounts rarely wait on each
/// other, few enough that a batch may take all of them in order.
pub const STRIPES: usize = 64;

/// The RocksDB store.
pub struct RocksStore {
    db: DB,
    create: Mutex<()>,
    host: Mutex<()>,
    stripes: Vec<Mutex<()>>,
}

fn rocks(e: rocksdb::Error) -> StateError {
    StateError::Rocks(e.into_string())
}

/// The guarded data is `()`: a panic elsewhere cannot leave it inconsistent, so a poisoned
/// lock is simply taken.
fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Per-table options: LZ4 (the build's only compression feature; DIDs and hostnames
/// compress well, and LZ4 costs little CPU on the state thread).
fn table_options() -> Options {
    let mut options = Options::default();
    options.set_compression_type(DBCompressionType::Lz4);
    options
}

impl RocksStore {
    /// Opens (creating if missing) the store in `dir`.
    pub fn open(dir: &Path) -> Result<RocksStore, StateError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let cfs = COLUMN_FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, table_options()));
        let db = DB::open_cf_descriptors(&options, dir, cfs).map_err(rocks)?;
        Ok(RocksStore {
            db,
            create: Mutex::new(()),
            host: Mutex::new(()),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        })
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StateError> {
        self.db
            .cf_handle(name)
            .ok_or(StateError::Corrupt("missing column family"))
    }

    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let value = self.db.get_pinned_cf(self.cf(cf)?, key).map_err(rocks)?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StateError> {
        self.db.write(batch).map_err(rocks)
    }

    fn stripe(&self, uid: Uid) -> usize {
        (uid % STRIPES as u64) as usize
    }

    fn lock_account(&self, uid: Uid) -> MutexGuard<'_, ()> {
        lock(&self.stripes[self.stripe(uid)])
    }

    /// Takes the next value of a counter (first value 1) into `batch`.
    fn next_id(&self, key: &[u8], batch: &mut WriteBatch) -> Result<u64, StateError> {
        let current = match self.get(CF_META, key)? {
            Some(v) => decode_id(&v)?,
            None => 1,
        };
        let next = current
            .checked_add(1)
            .filter(|n| *n < 1 << 63)
            .ok_or(StateError::IdsExhausted)?;
        batch.put_cf(self.cf(CF_META)?, key, id_key(next));
        Ok(current)
    }

    fn load_host(&self, id: HostId) -> Result<Option<HostRecord>, StateError> {
        match self.get(CF_HOSTS, &id_key(id))? {
            Some(v) => Ok(Some(decode_host(id, &v)?)),
            None => Ok(None),
        }
    }

    fn load_account(&self, uid: Uid) -> Result<Option<AccountRecord>, StateError> {
        match self.get(CF_ACCOUNTS, &id_key(uid))? {
            Some(v) => Ok(Some(decode_account(uid, &v)?)),
            None => Ok(None),
        }
    }

    /// Adds `delta` to a host's account count into `batch`; the caller holds the host lock.
    fn bump_host_count(
        &self,
        id: HostId,
        up: bool,
        batch: &mut WriteBatch,
    ) -> Result<(), StateError> {
        let Some(mut host) = self.load_host(id)? else {
            return Ok(());
        };
        host.account_count = if up {
            host.account_count.saturating_add(1)
        } else {
            host.account_count.saturating_sub(1)
        };
        batch.put_cf(self.cf(CF_HOSTS)?, id_key(id), encode_host(&host));
        Ok(())
    }

    /// Read-modify-write of one account under its stripe lock.
    fn modify_account(
        &self,
        uid: Uid,
        change: impl FnOnce(&mut AccountRecord),
    ) -> Result<bool, StateError> {
        let _guard = self.lock_account(uid);
        let Some(mut account) = self.load_account(uid)? else {
            return Ok(false);
        };
        change(&mut account);
        self.db
            .put_cf(self.cf(CF_ACCOUNTS)?, id_key(uid), encode_account(&account))
            .map_err(rocks)?;
        Ok(true)
    }

    /// Iterates `cf` from just after `after`, decoding at most `limit` entries.
    fn page<T>(
        &self,
        cf: &'static str,
        after: &[u8],
        limit: usize,
        decode: impl Fn(&[u8], &[u8]) -> Result<T, StateError>,
    ) -> Result<Vec<T>, StateError> {
        let limit = clamp_limit(limit);
        let mut out = Vec::new();
        let iter = self
            .db
            .iterator_cf(self.cf(cf)?, IteratorMode::From(after, Direction::Forward));
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item.map_err(rocks)?;
            if &*key == after {
                continue;
            }
            out.push(decode(&key, &value)?);
        }
        Ok(out)
    }

    /// Up to `limit` entries whose key starts with `prefix`, from `start` onwards,
    /// skipping `start` itself unless it is the bare prefix (an exclusive cursor).
    fn prefixed(
        &self,
        cf: &'static str,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, StateError> {
        let mut out = Vec::new();
        let iter = self
            .db
            .iterator_cf(self.cf(cf)?, IteratorMode::From(start, Direction::Forward));
        for item in iter {
            let (key, value) = item.map_err(rocks)?;
            if out.len() >= limit || !key.starts_with(prefix) {
                break;
            }
            if &*key == start && start != prefix {
                continue;
            }
            out.push((key.into_vec(), value.into_vec()));
        }
        Ok(out)
    }

    /// Host cursor writes of a batch; the caller holds the host lock.
    fn batch_hosts(
        &self,
        cursors: &[(HostId, u64)],
        batch: &mut WriteBatch,
    ) -> Result<(), StateError> {
        for &(id, seq) in cursors {
            if let Some(mut host) = self.load_host(id)? {
                host.last_seq = seq;
                batch.put_cf(self.cf(CF_HOSTS)?, id_key(id), encode_host(&host));
            }
        }
        Ok(())
    }

    /// Account rev writes of a batch; the caller holds every involved stripe.
    fn batch_accounts(
        &self,
        revs: &[(Uid, RevUpdate)],
        batch: &mut WriteBatch,
    ) -> Result<usize, StateError> {
        // Later entries for the same uid see the earlier ones (a batch from the service
        // has one entry per uid; a caller-made batch may not).
        let mut staged: std::collections::HashMap<Uid, (AccountRecord, bool)> = Default::default();
        for (uid, update) in revs {
            check_rev_update(update)?;
            let entry = match staged.remove(uid) {
                Some(entry) => Some(entry),
                None => self.load_account(*uid)?.map(|a| (a, false)),
            };
            let Some((mut account, mut changed)) = entry else {
                continue;
            };
            if rev_is_newer(account.rev.as_deref(), &update.rev) {
                apply_rev(&mut account, update);
                changed = true;
            }
            staged.insert(*uid, (account, changed));
        }
        let mut applied = 0;
        for (uid, (account, changed)) in staged {
            if changed {
                applied += 1;
                batch.put_cf(self.cf(CF_ACCOUNTS)?, id_key(uid), encode_account(&account));
            }
        }
        Ok(applied)
    }
}

fn apply_rev(account: &mut AccountRecord, update: &RevUpdate) {
    account.rev = Some(update.rev.clone());
    account.data_cid = Some(update.data_cid.clone());
    account.desynchronized = update.desynchronized;
    account.commit_cid = update.commit_cid.clone();
}

impl Store for RocksStore {
    fn upsert_host(&self, hostname: &str, now_ms: u64) -> Result<HostRecord, StateError> {
        check_key(hostname, "hostname")?;
        if let Some(host) = self.get_host(hostname)? {
            return Ok(host);
        }
        let _create = lock(&self.create);
        if let Some(host) = self.get_host(hostname)? {
            return Ok(host);
        }
        let mut batch = WriteBatch::default();
        let id = self.next_id(META_NEXT_HOST_ID, &mut batch)?;
        let host = HostRecord {
            id,
            hostname: hostname.to_owned(),
            status: HostStatus::Active,
            last_seq: 0,
            account_count: 0,
            account_limit: 0,
            rate_limits: RateLimits::default(),
            failures: 0,
            first_seen_ms: now_ms,
            last_connected_ms: 0,
        };
        batch.put_cf(self.cf(CF_HOSTS)?, id_key(id), encode_host(&host));
        batch.put_cf(self.cf(CF_HOST_NAMES)?, hostname.as_bytes(), id_key(id));
        self.write(batch)?;
        Ok(host)
    }

    fn get_host(&self, hostname: &str) -> Result<Option<HostRecord>, StateError> {
        match self.get(CF_HOST_NAMES, hostname.as_bytes())? {
            Some(id) => self.load_host(decode_id(&id)?),
            None => Ok(None),
        }
    }

    fn get_host_by_id(&self, id: HostId) -> Result<Option<HostRecord>, StateError> {
        self.load_host(id)
    }

    fn put_host(&self, host: &HostRecord) -> Result<(), StateError> {
        let _host = lock(&self.host);
        let mut stored = self
            .load_host(host.id)?
            .ok_or(StateError::NotFound("host"))?;
        stored.status = host.status;
        stored.last_seq = host.last_seq;
        stored.account_limit = host.account_limit;
        stored.rate_limits = host.rate_limits;
        stored.failures = host.failures;
        stored.last_connected_ms = host.last_connected_ms;
        self.db
            .put_cf(self.cf(CF_HOSTS)?, id_key(host.id), encode_host(&stored))
            .map_err(rocks)
    }

    fn list_hosts(&self, after: HostId, limit: usize) -> Result<Vec<HostRecord>, StateError> {
        self.page(CF_HOSTS, &id_key(after), limit, |k, v| {
            decode_host(decode_id(k)?, v)
        })
    }

    fn set_host_cursor(&self, id: HostId, seq: u64) -> Result<(), StateError> {
        let _host = lock(&self.host);
        let mut batch = WriteBatch::default();
        if self.load_host(id)?.is_none() {
            return Err(StateError::NotFound("host"));
        }
        self.batch_hosts(&[(id, seq)], &mut batch)?;
        self.write(batch)
    }

    fn put_domain_ban(&self, domain: &str) -> Result<(), StateError> {
        check_key(domain, "domain")?;
        self.db
            .put_cf(self.cf(CF_DOMAIN_BANS)?, domain.as_bytes(), b"")
            .map_err(rocks)
    }

    fn delete_domain_ban(&self, domain: &str) -> Result<bool, StateError> {
        let existed = self.get(CF_DOMAIN_BANS, domain.as_bytes())?.is_some();
        self.db
            .delete_cf(self.cf(CF_DOMAIN_BANS)?, domain.as_bytes())
            .map_err(rocks)?;
        Ok(existed)
    }

    fn list_domain_bans(&self) -> Result<Vec<String>, StateError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_DOMAIN_BANS)?, IteratorMode::Start)
        {
            let (key, _) = item.map_err(rocks)?;
            let domain = std::str::from_utf8(&key).map_err(|_| StateError::Corrupt("domain"))?;
            out.push(domain.to_owned());
        }
        Ok(out)
    }

    fn get_or_create_account(
        &self,
        did: &str,
        host_id: HostId,
    ) -> Result<AccountRecord, StateError> {
        check_key(did, "did")?;
        if let Some(account) = self.get_account(did)? {
            return Ok(account);
        }
        let _create = lock(&self.create);
        if let Some(account) = self.get_account(did)? {
            return Ok(account);
        }
        let _host = lock(&self.host);
        let mut batch = WriteBatch::default();
        let uid = self.next_id(META_NEXT_UID, &mut batch)?;
        let account = AccountRecord {
            uid,
            did: did.to_owned(),
            host_id,
            local_status: LocalStatus::Active,
            upstream_status: UpstreamStatus::Active,
            rev: None,
            data_cid: None,
            desynchronized: false,
            commit_cid: None,
        };
        batch.put_cf(self.cf(CF_ACCOUNTS)?, id_key(uid), encode_account(&account));
        batch.put_cf(self.cf(CF_ACCOUNT_DIDS)?, did.as_bytes(), id_key(uid));
        self.bump_host_count(host_id, true, &mut batch)?;
        self.write(batch)?;
        Ok(account)
    }

    fn get_account(&self, did: &str) -> Result<Option<AccountRecord>, StateError> {
        match self.get(CF_ACCOUNT_DIDS, did.as_bytes())? {
            Some(uid) => self.load_account(decode_id(&uid)?),
            None => Ok(None),
        }
    }

    fn get_account_by_uid(&self, uid: Uid) -> Result<Option<AccountRecord>, StateError> {
        self.load_account(uid)
    }

    fn list_accounts(&self, after: Uid, limit: usize) -> Result<Vec<AccountRecord>, StateError> {
        self.page(CF_ACCOUNTS, &id_key(after), limit, |k, v| {
            decode_account(decode_id(k)?, v)
        })
    }

    fn update_account_rev(&self, uid: Uid, update: &RevUpdate) -> Result<bool, StateError> {
        check_rev_update(update)?;
        let _guard = self.lock_account(uid);
        let mut account = self
            .load_account(uid)?
            .ok_or(StateError::NotFound("account"))?;
        if !rev_is_newer(account.rev.as_deref(), &update.rev) {
            return Ok(false);
        }
        apply_rev(&mut account, update);
        self.db
            .put_cf(self.cf(CF_ACCOUNTS)?, id_key(uid), encode_account(&account))
            .map_err(rocks)?;
        Ok(true)
    }

    fn set_local_status(&self, uid: Uid, status: LocalStatus) -> Result<bool, StateError> {
        self.modify_account(uid, |a| a.local_status = status)
    }

    fn set_upstream_status(&self, uid: Uid, status: UpstreamStatus) -> Result<bool, StateError> {
        self.modify_account(uid, |a| a.upstream_status = status)
    }

    fn set_desynchronized(&self, uid: Uid, desynchronized: bool) -> Result<bool, StateError> {
        self.modify_account(uid, |a| a.desynchronized = desynchronized)
    }

    fn set_account_host(&self, uid: Uid, host_id: HostId) -> Result<bool, StateError> {
        let _guard = self.lock_account(uid);
        let Some(mut account) = self.load_account(uid)? else {
            return Ok(false);
        };
        if account.host_id == host_id {
            return Ok(true);
        }
        let _host = lock(&self.host);
        let mut batch = WriteBatch::default();
        self.bump_host_count(account.host_id, false, &mut batch)?;
        self.bump_host_count(host_id, true, &mut batch)?;
        account.host_id = host_id;
        batch.put_cf(self.cf(CF_ACCOUNTS)?, id_key(uid), encode_account(&account));
        self.write(batch)?;
        Ok(true)
    }

    fn put_identity(&self, did: &str, entry: &[u8], fetched_at_ms: u64) -> Result<(), StateError> {
        check_key(did, "did")?;
        check_identity(entry)?;
        self.db
            .put_cf(
                self.cf(CF_IDENTITY)?,
                did.as_bytes(),
                encode_identity(entry, fetched_at_ms),
            )
            .map_err(rocks)
    }

    fn get_identity(&self, did: &str) -> Result<Option<IdentitySnapshot>, StateError> {
        match self.get(CF_IDENTITY, did.as_bytes())? {
            Some(v) => {
                let (entry, fetched_at_ms) = decode_identity(&v)?;
                Ok(Some(IdentitySnapshot {
                    did: did.to_owned(),
                    entry,
                    fetched_at_ms,
                }))
            }
            None => Ok(None),
        }
    }

    fn delete_identity(&self, did: &str) -> Result<bool, StateError> {
        let existed = self.get(CF_IDENTITY, did.as_bytes())?.is_some();
        self.db
            .delete_cf(self.cf(CF_IDENTITY)?, did.as_bytes())
            .map_err(rocks)?;
        Ok(existed)
    }

    fn list_identities(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<IdentitySnapshot>, StateError> {
        self.page(CF_IDENTITY, after.as_bytes(), limit, |k, v| {
            let did = std::str::from_utf8(k).map_err(|_| StateError::Corrupt("identity"))?;
            let (entry, fetched_at_ms) = decode_identity(v)?;
            Ok(IdentitySnapshot {
                did: did.to_owned(),
                entry,
                fetched_at_ms,
            })
        })
    }

    fn put_backfill(&self, key: &str, record: &BackfillRecord) -> Result<(), StateError> {
        check_key(key, "backfill key")?;
        check_key(&record.cursor, "backfill cursor")?;
        check_key(&record.status, "backfill status")?;
        self.db
            .put_cf(
                self.cf(CF_BACKFILL)?,
                key.as_bytes(),
                encode_backfill(record),
            )
            .map_err(rocks)
    }

    fn get_backfill(&self, key: &str) -> Result<Option<BackfillRecord>, StateError> {
        match self.get(CF_BACKFILL, key.as_bytes())? {
            Some(v) => Ok(Some(decode_backfill(&v)?)),
            None => Ok(None),
        }
    }

    fn list_backfills(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, BackfillRecord)>, StateError> {
        let start = if after > prefix { after } else { prefix };
        let limit = clamp_limit(limit);
        let found = self.prefixed(CF_BACKFILL, prefix.as_bytes(), start.as_bytes(), limit)?;
        found
            .into_iter()
            .map(|(key, value)| {
                let key = String::from_utf8(key).map_err(|_| StateError::Corrupt("backfill"))?;
                Ok((key, decode_backfill(&value)?))
            })
            .collect()
    }

    fn add_collection_repos(&self, pairs: &[CollectionRepo]) -> Result<(), StateError> {
        let mut batch = WriteBatch::default();
        let by_collection = self.cf(CF_COLLECTION_DIDS)?;
        let by_did = self.cf(CF_DID_COLLECTIONS)?;
        for pair in pairs {
            check_collection_repo(pair)?;
            batch.put_cf(by_collection, pair_key(&pair.collection, &pair.did), []);
            batch.put_cf(by_did, pair_key(&pair.did, &pair.collection), []);
        }
        self.write(batch)
    }

    fn remove_collection_repos(&self, did: &str) -> Result<usize, StateError> {
        check_key(did, "did")?;
        let prefix = pair_key(did, "");
        let mut removed = 0;
        loop {
            let found = self.prefixed(
                CF_DID_COLLECTIONS,
                &prefix,
                &prefix,
                clamp_limit(usize::MAX),
            )?;
            if found.is_empty() {
                return Ok(removed);
            }
            let mut batch = WriteBatch::default();
            for (key, _) in &found {
                let collection = std::str::from_utf8(&key[prefix.len()..])
                    .map_err(|_| StateError::Corrupt("did_collections"))?;
                batch.delete_cf(self.cf(CF_COLLECTION_DIDS)?, pair_key(collection, did));
                batch.delete_cf(self.cf(CF_DID_COLLECTIONS)?, key);
            }
            removed += found.len();
            self.write(batch)?;
        }
    }

    fn list_collection_repos(
        &self,
        collection: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        check_key(collection, "collection")?;
        let prefix = pair_key(collection, "");
        let start = pair_key(collection, after);
        let limit = limit.min(COLLECTIONS_LIST_PAGE_ENTRIES_MAX);
        self.prefixed(CF_COLLECTION_DIDS, &prefix, &start, limit)?
            .into_iter()
            .map(|(key, _)| {
                String::from_utf8(key[prefix.len()..].to_vec())
                    .map_err(|_| StateError::Corrupt("collection_dids"))
            })
            .collect()
    }

    fn apply_batch(&self, batch: &Batch) -> Result<usize, StateError> {
        let mut stripes: Vec<usize> = batch
            .account_revs
            .iter()
            .map(|(uid, _)| self.stripe(*uid))
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        let _guards: Vec<MutexGuard<'_, ()>> =
            stripes.iter().map(|s| lock(&self.stripes[*s])).collect();
        let _host = lock(&self.host);
        let mut write = WriteBatch::default();
        self.batch_hosts(&batch.host_cursors, &mut write)?;
        let applied = self.batch_accounts(&batch.account_revs, &mut write)?;
        self.write(write)?;
        Ok(applied)
    }

    fn sync(&self) -> Result<(), StateError> {
        self.db.flush_wal(true).map_err(rocks)
    }
}
