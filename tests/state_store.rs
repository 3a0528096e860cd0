//! One suite for both stores: every check is a function over a backend that can open (and
//! reopen) its store; the `both!` macro instantiates each for RocksDB in a temp dir and for
//! PostgreSQL in a fresh schema of `RELAY_TEST_DATABASE_URL`.
//!
//! PostgreSQL is never skipped in CI: with `CI` set and no URL the tests fail. Locally
//! without a URL they print "skipped: no RELAY_TEST_DATABASE_URL".

#[path = "common/pg.rs"]
mod pg;
use relay::state::{
    self, BackfillRecord, Batch, CollectionRepo, HostStatus, LocalStatus, RateLimits, RevUpdate,
    ServiceConfig, StateConfig, StateError, StateService, Store, UpstreamStatus,
};
use std::sync::Arc;
use std::time::Duration;

trait Backend {
    fn open(&self) -> Box<dyn Store>;
    fn name(&self) -> &'static str;
}

struct Rocks {
    dir: tempfile::TempDir,
}

impl Rocks {
    fn new() -> Rocks {
        Rocks {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Backend for Rocks {
    fn name(&self) -> &'static str {
        "rocksdb"
    }
    fn open(&self) -> Box<dyn Store> {
        let store = state::open(&StateConfig {
            data_dir: self.dir.path().to_path_buf(),
            database_url: None,
        })
        .unwrap();
        assert!(self.dir.path().join("state").is_dir());
        store
    }
}

/// A fresh schema per test, dropped at the end.
struct Postgres {
    schema: pg::TestSchema,
}

impl Postgres {
    fn new() -> Option<Postgres> {
        pg::TestSchema::create("state").map(|schema| Postgres { schema })
    }

    fn url(&self) -> String {
        self.schema.url()
    }
}

impl Backend for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn open(&self) -> Box<dyn Store> {
        state::open(&StateConfig {
            data_dir: std::env::temp_dir().join("unused-by-postgres"),
            database_url: Some(self.url()),
        })
        .unwrap()
    }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod rocksdb {
            $( #[test] fn $name() { super::$name(&super::Rocks::new()) } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                if let Some(backend) = super::Postgres::new() { super::$name(&backend) }
            } )*
        }
    };
}

both!(
    hosts_crud_and_paging,
    domain_bans,
    accounts_get_or_create_is_stable,
    account_paging_and_lookup,
    rev_update_is_conditional,
    commit_cid_follows_the_greatest_rev,
    concurrent_rev_writers_never_roll_back,
    status_changes_and_host_moves,
    identity_snapshot,
    backfill_progress,
    backfill_listing_by_prefix,
    collection_index_pages_and_forgets,
    collection_index_survives_restart,
    batch_is_conditional_and_atomic,
    restart_keeps_everything,
    oversized_fields_are_refused,
    write_behind_coalesces_and_flushes,
    write_behind_full_is_backpressure,
    service_reads_see_pending_writes,
    service_survives_restart,
    service_closes_while_shared,
    batch_flush_figures,
);

/// A rev update whose data CID and commit CID both carry `cid` (in different bytes).
fn rev(r: &str, cid: u8) -> RevUpdate {
    RevUpdate {
        rev: r.to_owned(),
        data_cid: vec![0x01, 0x71, cid],
        desynchronized: false,
        commit_cid: commit_of(cid),
    }
}

/// The commit CID `rev(_, cid)` carries.
fn commit_of(cid: u8) -> Option<Vec<u8>> {
    Some(vec![0x01, 0x71, 0x12, 0x20, cid])
}

fn hosts_crud_and_paging(b: &dyn Backend) {
    let s = b.open();
    let a = s.upsert_host("pds-a.example", 1000).unwrap();
    let again = s.upsert_host("pds-a.example", 2000).unwrap();
    assert_eq!(a, again, "upsert of a known host returns it unchanged");
    assert_eq!(a.status, HostStatus::Active);
    assert_eq!(a.first_seen_ms, 1000);
    assert_eq!((a.last_seq, a.account_count), (0, 0));
    let ids: Vec<u64> = (0..25)
        .map(|i| s.upsert_host(&format!("pds-{i}.example"), 5).unwrap().id)
        .collect();
    assert!(ids.iter().all(|id| *id > a.id));
    let mut seen = vec![];
    let mut after = 0;
    loop {
        let page = s.list_hosts(after, 7).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        assert!(page.windows(2).all(|w| w[0].id < w[1].id));
        after = page.last().unwrap().id;
        seen.extend(page.into_iter().map(|h| h.id));
    }
    assert_eq!(seen.len(), 26);

    let mut h = s.get_host("pds-3.example").unwrap().unwrap();
    assert_eq!(s.get_host_by_id(h.id).unwrap().unwrap(), h);
    h.status = HostStatus::Throttled;
    h.last_seq = 42;
    h.account_limit = 100;
    h.rate_limits = RateLimits {
        per_second: 50,
        per_hour: 1000,
        per_day: 10_000,
    };
    h.failures = 3;
    h.last_connected_ms = 777;
    h.account_count = 999; // not writable through put_host
    s.put_host(&h).unwrap();
    let stored = s.get_host_by_id(h.id).unwrap().unwrap();
    assert_eq!(stored.account_count, 0);
    h.account_count = 0;
    assert_eq!(stored, h);

    s.set_host_cursor(h.id, 41).unwrap();
    assert_eq!(s.get_host_by_id(h.id).unwrap().unwrap().last_seq, 41);
    assert!(matches!(
        s.set_host_cursor(1 << 40, 1),
        Err(StateError::NotFound(_))
    ));
    let mut ghost = h.clone();
    ghost.id = 1 << 40;
    assert!(matches!(s.put_host(&ghost), Err(StateError::NotFound(_))));
    assert!(s.get_host("nope.example").unwrap().is_none());
    assert!(s.get_host_by_id(u64::MAX).unwrap().is_none());
}

fn domain_bans(b: &dyn Backend) {
    let s = b.open();
    assert!(s.list_domain_bans().unwrap().is_empty());
    s.put_domain_ban("bad.example").unwrap();
    s.put_domain_ban("awful.example").unwrap();
    s.put_domain_ban("bad.example").unwrap();
    assert_eq!(
        s.list_domain_bans().unwrap(),
        vec!["awful.example", "bad.example"]
    );
    assert!(s.delete_domain_ban("bad.example").unwrap());
    assert!(!s.delete_domain_ban("bad.example").unwrap());
    assert_eq!(s.list_domain_bans().unwrap(), vec!["awful.example"]);
}

fn accounts_get_or_create_is_stable(b: &dyn Backend) {
    let s = b.open();
    let host = s.upsert_host("pds.example", 1).unwrap();
    let other = s.upsert_host("other.example", 1).unwrap();
    let a = s.get_or_create_account("did:plc:aaa", host.id).unwrap();
    assert_eq!(a.did, "did:plc:aaa");
    assert_eq!(a.host_id, host.id);
    assert_eq!(a.local_status, LocalStatus::Active);
    assert_eq!(a.upstream_status, UpstreamStatus::Active);
    assert_eq!(
        (
            a.rev.clone(),
            a.data_cid.clone(),
            a.desynchronized,
            a.commit_cid.clone()
        ),
        (None, None, false, None)
    );
    let again = s.get_or_create_account("did:plc:aaa", other.id).unwrap();
    assert_eq!(
        again, a,
        "a second sight (even from another host) keeps uid and host"
    );
    let b2 = s.get_or_create_account("did:plc:bbb", host.id).unwrap();
    assert_ne!(b2.uid, a.uid);
    assert_eq!(s.get_host_by_id(host.id).unwrap().unwrap().account_count, 2);
    assert_eq!(
        s.get_host_by_id(other.id).unwrap().unwrap().account_count,
        0
    );

    // Several threads racing to create the same DIDs agree on one uid per DID.
    let s: Arc<dyn Store> = Arc::from(s);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                (0..20)
                    .map(|i| {
                        s.get_or_create_account(&format!("did:plc:race{i}"), host.id)
                            .unwrap()
                            .uid
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<Vec<u64>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        s.get_host_by_id(host.id).unwrap().unwrap().account_count,
        22
    );
}

fn account_paging_and_lookup(b: &dyn Backend) {
    let s = b.open();
    let host = s.upsert_host("pds.example", 1).unwrap();
    let uids: Vec<u64> = (0..30)
        .map(|i| {
            s.get_or_create_account(&format!("did:plc:{i:03}"), host.id)
                .unwrap()
                .uid
        })
        .collect();
    for (i, uid) in uids.iter().enumerate() {
        let by_uid = s.get_account_by_uid(*uid).unwrap().unwrap();
        assert_eq!(by_uid.did, format!("did:plc:{i:03}"));
        assert_eq!(s.get_account(&by_uid.did).unwrap().unwrap(), by_uid);
    }
    let mut all = vec![];
    let mut after = 0;
    loop {
        let page = s.list_accounts(after, 8).unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap().uid;
        all.extend(page.into_iter().map(|a| a.uid));
    }
    assert_eq!(all, uids);
    assert!(s.get_account("did:plc:none").unwrap().is_none());
    assert!(s.get_account_by_uid(1 << 50).unwrap().is_none());
}

fn rev_update_is_conditional(b: &dyn Backend) {
    let s = b.open();
    let host = s.upsert_host("pds.example", 1).unwrap();
    let a = s.get_or_create_account("did:plc:rev", host.id).unwrap();
    assert!(
        s.update_account_rev(a.uid, &rev("3kaaaaaaaaaa2", 1))
            .unwrap()
    );
    let mut newer = rev("3kaaaaaaaaab2", 2);
    newer.desynchronized = true;
    assert!(s.update_account_rev(a.uid, &newer).unwrap());
    assert!(
        !s.update_account_rev(a.uid, &rev("3kaaaaaaaaab2", 3))
            .unwrap(),
        "equal rev refused"
    );
    assert!(
        !s.update_account_rev(a.uid, &rev("3kaaaaaaaaaa2", 4))
            .unwrap(),
        "older rev refused"
    );
    let stored = s.get_account_by_uid(a.uid).unwrap().unwrap();
    assert_eq!(stored.rev.as_deref(), Some("3kaaaaaaaaab2"));
    assert_eq!(stored.data_cid, Some(vec![0x01, 0x71, 2]));
    assert_eq!(
        stored.commit_cid,
        commit_of(2),
        "refused revs leave the commit CID"
    );
    assert!(stored.desynchronized);
    // Bytewise TID order: digits sort before letters.
    assert!(
        s.update_account_rev(a.uid, &rev("3kaaaaaaaaaba", 5))
            .unwrap()
    );
    assert!(matches!(
        s.update_account_rev(1 << 50, &rev("3k", 1)),
        Err(StateError::NotFound(_))
    ));
}

/// The commit CID is stored with its rev: it round-trips (also across a reopen), the
/// write-behind buffer and a batch keep the greatest rev's, an older or equal rev never
/// replaces it, and an update without one (a writer that does not know it) clears it
/// rather than leaving an older commit's CID beside a newer rev.
fn commit_cid_follows_the_greatest_rev(b: &dyn Backend) {
    let uid = {
        let s = b.open();
        let host = s.upsert_host("pds.example", 1).unwrap();
        let a = s.get_or_create_account("did:plc:head", host.id).unwrap();
        assert_eq!(a.commit_cid, None, "no commit yet");
        assert!(
            s.update_account_rev(a.uid, &rev("3kaaaaaaaaab2", 2))
                .unwrap()
        );
        assert!(
            !s.update_account_rev(a.uid, &rev("3kaaaaaaaaab2", 3))
                .unwrap()
        );
        assert!(
            !s.update_account_rev(a.uid, &rev("3kaaaaaaaaaa2", 1))
                .unwrap()
        );
        let got = s.get_account_by_uid(a.uid).unwrap().unwrap();
        assert_eq!(got.commit_cid, commit_of(2));
        s.sync().unwrap();
        a.uid
    };
    let svc = manual_service(b.open(), 100);
    let got = block_on(svc.load_account("did:plc:head")).unwrap().unwrap();
    assert_eq!(got.commit_cid, commit_of(2), "kept across a reopen");
    for (r, cid) in [
        ("3kaaaaaaaaad2", 4),
        ("3kaaaaaaaaaf2", 6),
        ("3kaaaaaaaaae2", 5),
    ] {
        svc.record_account_commit(uid, rev(r, cid)).unwrap();
    }
    let pending = block_on(svc.load_account("did:plc:head")).unwrap().unwrap();
    assert_eq!(
        (pending.rev.as_deref(), pending.commit_cid.clone()),
        (Some("3kaaaaaaaaaf2"), commit_of(6)),
        "coalesced to the greatest rev, whole"
    );
    block_on(svc.flush()).unwrap();
    svc.record_account_commit(uid, rev("3kaaaaaaaaac2", 9))
        .unwrap();
    block_on(svc.flush()).unwrap();
    let got = block_on(svc.call(move |s| s.get_account_by_uid(uid)))
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.rev.as_deref(), got.commit_cid.clone()),
        (Some("3kaaaaaaaaaf2"), commit_of(6)),
        "an older rev flushed later does not roll the commit CID back"
    );
    svc.shutdown().unwrap();
    let s = b.open();
    let batch = Batch {
        host_cursors: vec![],
        account_revs: vec![
            (uid, rev("3kaaaaaaaaah2", 8)),
            (uid, rev("3kaaaaaaaaai2", 10)),
            (uid, rev("3kaaaaaaaaag2", 7)),
        ],
    };
    assert_eq!(s.apply_batch(&batch).unwrap(), 1);
    let got = s.get_account_by_uid(uid).unwrap().unwrap();
    assert_eq!(got.commit_cid, commit_of(10));
    let mut unknown = rev("3kaaaaaaaaaj2", 11);
    unknown.commit_cid = None;
    assert!(s.update_account_rev(uid, &unknown).unwrap());
    let got = s.get_account_by_uid(uid).unwrap().unwrap();
    assert_eq!(
        (
            got.rev.as_deref(),
            got.data_cid.clone(),
            got.commit_cid.clone()
        ),
        (Some("3kaaaaaaaaaj2"), Some(vec![0x01, 0x71, 11]), None)
    );
    let mut unknown = rev("3kaaaaaaaaak2", 12);
    unknown.commit_cid = None;
    s.apply_batch(&Batch {
        host_cursors: vec![],
        account_revs: vec![(uid, rev("3kaaaaaaaaak2", 12)), (uid, unknown)],
    })
    .unwrap();
    assert_eq!(
        s.get_account_by_uid(uid).unwrap().unwrap().commit_cid,
        commit_of(12),
        "of two entries with one rev, the first stays (as sequential updates would)"
    );
}

fn concurrent_rev_writers_never_roll_back(b: &dyn Backend) {
    let s: Arc<dyn Store> = Arc::from(b.open());
    hammer_revs(vec![Arc::clone(&s), Arc::clone(&s), Arc::clone(&s), s]);
}

fn rev_for(i: u64, t: u64, per_thread: u64) -> u64 {
    // Interleaved, partly descending revs from each writer.
    if i.is_multiple_of(2) {
        i * 4 + t
    } else {
        per_thread * 4 - i * 4 - t
    }
}

/// Four writers (threads, each with the store it is given) race conditional rev updates
/// over four accounts; no reader ever sees a rev go back, and each account ends at the
/// greatest rev written for it.
fn hammer_revs(stores: Vec<Arc<dyn Store>>) {
    let s = Arc::clone(&stores[0]);
    let host = s.upsert_host("pds.example", 1).unwrap();
    let uids: Vec<u64> = (0..4)
        .map(|i| {
            s.get_or_create_account(&format!("did:plc:c{i}"), host.id)
                .unwrap()
                .uid
        })
        .collect();
    let per_thread = 60u64;
    let threads: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(t, s)| {
            let uids = uids.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let n = rev_for(i, t as u64, per_thread);
                    let uid = uids[(i % 4) as usize];
                    let before = s.get_account_by_uid(uid).unwrap().unwrap().rev;
                    let r = format!("{n:013}");
                    let applied = s
                        .update_account_rev(uid, &rev(&r, (n % 250) as u8))
                        .unwrap();
                    let after = s.get_account_by_uid(uid).unwrap().unwrap().rev.unwrap();
                    assert!(before.as_deref() <= Some(after.as_str()), "rev rolled back");
                    if applied {
                        assert!(after.as_str() >= r.as_str());
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for (k, uid) in uids.iter().enumerate() {
        let got = s.get_account_by_uid(*uid).unwrap().unwrap();
        let max = (0..4u64)
            .flat_map(|t| {
                (0..per_thread)
                    .filter(|i| i % 4 == k as u64)
                    .map(move |i| rev_for(i, t, per_thread))
            })
            .max()
            .unwrap();
        assert_eq!(got.rev.unwrap(), format!("{max:013}"));
        assert_eq!(got.data_cid.unwrap()[2], (max % 250) as u8);
        assert_eq!(got.commit_cid, commit_of((max % 250) as u8));
    }
}

#[test]
fn postgres_writers_on_separate_connections_never_roll_back() {
    // Four connections (as four relay processes would have): the rule is the UPDATE's
    // WHERE clause, not a lock in this process.
    let Some(pg) = Postgres::new() else { return };
    hammer_revs((0..4).map(|_| Arc::from(pg.open())).collect());
}

#[test]
fn a_panicking_call_does_not_stop_the_state_thread() {
    let backend = Rocks::new();
    let svc = manual_service(backend.open(), 10);
    let r: Result<(), StateError> = block_on(svc.call(|_| panic!("boom")));
    assert!(matches!(r, Err(StateError::Closed)));
    assert!(block_on(svc.upsert_host("pds.example", 1)).is_ok());
}

fn status_changes_and_host_moves(b: &dyn Backend) {
    let s = b.open();
    let h1 = s.upsert_host("one.example", 1).unwrap();
    let h2 = s.upsert_host("two.example", 1).unwrap();
    let a = s.get_or_create_account("did:plc:st", h1.id).unwrap();
    assert!(s.set_local_status(a.uid, LocalStatus::Takendown).unwrap());
    assert!(
        s.set_upstream_status(a.uid, UpstreamStatus::Deactivated)
            .unwrap()
    );
    assert!(s.set_desynchronized(a.uid, true).unwrap());
    assert!(s.set_account_host(a.uid, h2.id).unwrap());
    let got = s.get_account("did:plc:st").unwrap().unwrap();
    assert_eq!(got.local_status, LocalStatus::Takendown);
    assert_eq!(got.upstream_status, UpstreamStatus::Deactivated);
    assert!(got.desynchronized);
    assert_eq!(got.host_id, h2.id);
    assert_eq!(s.get_host_by_id(h1.id).unwrap().unwrap().account_count, 0);
    assert_eq!(s.get_host_by_id(h2.id).unwrap().unwrap().account_count, 1);
    assert!(s.set_account_host(a.uid, h2.id).unwrap());
    assert_eq!(s.get_host_by_id(h2.id).unwrap().unwrap().account_count, 1);
    assert!(s.set_local_status(a.uid, LocalStatus::Active).unwrap());
    assert!(
        s.set_upstream_status(a.uid, UpstreamStatus::Deleted)
            .unwrap()
    );
    let got = s.get_account_by_uid(a.uid).unwrap().unwrap();
    assert_eq!(got.local_status, LocalStatus::Active);
    assert_eq!(got.upstream_status, UpstreamStatus::Deleted);
    let ghost = 1 << 50;
    assert!(!s.set_local_status(ghost, LocalStatus::Suspended).unwrap());
    assert!(
        !s.set_upstream_status(ghost, UpstreamStatus::Suspended)
            .unwrap()
    );
    assert!(!s.set_desynchronized(ghost, true).unwrap());
    assert!(!s.set_account_host(ghost, h1.id).unwrap());
}

fn identity_snapshot(b: &dyn Backend) {
    let s = b.open();
    assert!(s.get_identity("did:plc:x").unwrap().is_none());
    for i in 0..12 {
        s.put_identity(&format!("did:plc:id{i:02}"), &[i as u8; 40], 1000 + i)
            .unwrap();
    }
    s.put_identity("did:plc:id03", b"replaced", 5).unwrap();
    let got = s.get_identity("did:plc:id03").unwrap().unwrap();
    assert_eq!(
        (got.entry.as_slice(), got.fetched_at_ms),
        (&b"replaced"[..], 5)
    );
    assert!(s.delete_identity("did:plc:id04").unwrap());
    assert!(!s.delete_identity("did:plc:id04").unwrap());
    let mut all = vec![];
    let mut after = String::new();
    loop {
        let page = s.list_identities(&after, 5).unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap().did.clone();
        all.extend(page);
    }
    assert_eq!(all.len(), 11);
    assert!(all.windows(2).all(|w| w[0].did < w[1].did));
    assert_eq!(all[0].entry, vec![0u8; 40]);
    assert_eq!(all[0].fetched_at_ms, 1000);
}

fn backfill_progress(b: &dyn Backend) {
    let s = b.open();
    assert!(s.get_backfill("listRepos:pds.example").unwrap().is_none());
    let mut r = BackfillRecord {
        cursor: "did:plc:abc".into(),
        done: 10,
        failed: 1,
        status: "running".into(),
    };
    s.put_backfill("listRepos:pds.example", &r).unwrap();
    assert_eq!(s.get_backfill("listRepos:pds.example").unwrap().unwrap(), r);
    r.cursor = "did:plc:xyz".into();
    r.done = 500;
    r.status = "done".into();
    s.put_backfill("listRepos:pds.example", &r).unwrap();
    assert_eq!(s.get_backfill("listRepos:pds.example").unwrap().unwrap(), r);
}

fn backfill_listing_by_prefix(b: &dyn Backend) {
    let s = b.open();
    let record = |done| BackfillRecord {
        cursor: String::new(),
        done,
        failed: 0,
        status: "queued".into(),
    };
    // `_` and `%` are literal in a prefix (PostgreSQL LIKE must not treat them as wildcards).
    for (key, done) in [
        ("collections a_b x.y.z", 1),
        ("collections a_b x.y.a", 2),
        ("collectionsXa", 3),
        ("collections-index", 4),
        ("collections aXb x.y.z", 5),
        ("other", 6),
    ] {
        s.put_backfill(key, &record(done)).unwrap();
    }
    let keys = |after: &str, limit| -> Vec<String> {
        s.list_backfills("collections a_b ", after, limit)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(
        keys("", 10),
        ["collections a_b x.y.a", "collections a_b x.y.z"]
    );
    assert_eq!(keys("", 1), ["collections a_b x.y.a"]);
    assert_eq!(keys("collections a_b x.y.a", 10), ["collections a_b x.y.z"]);
    assert!(keys("collections a_b x.y.z", 10).is_empty());
    let all = s.list_backfills("collections ", "", 100).unwrap();
    let found: Vec<(&str, u64)> = all.iter().map(|(k, r)| (k.as_str(), r.done)).collect();
    assert_eq!(
        found,
        [
            ("collections aXb x.y.z", 5),
            ("collections a_b x.y.a", 2),
            ("collections a_b x.y.z", 1)
        ]
    );
}

fn pair(collection: &str, did: &str) -> CollectionRepo {
    CollectionRepo {
        collection: collection.into(),
        did: did.into(),
    }
}

fn collection_index_pages_and_forgets(b: &dyn Backend) {
    let s = b.open();
    let post = "app.bsky.feed.post";
    s.add_collection_repos(&[
        pair(post, "did:plc:ccc"),
        pair(post, "did:plc:aaa"),
        pair("app.bsky.feed.like", "did:plc:aaa"),
        pair(post, "did:plc:bbb"),
        // A prefix of another collection must not leak into it.
        pair("app.bsky.feed.pos", "did:plc:zzz"),
    ])
    .unwrap();
    // Idempotent: the same pairs again change nothing.
    s.add_collection_repos(&[pair(post, "did:plc:aaa")])
        .unwrap();
    assert_eq!(
        s.list_collection_repos(post, "", 10).unwrap(),
        ["did:plc:aaa", "did:plc:bbb", "did:plc:ccc"]
    );
    assert_eq!(
        s.list_collection_repos(post, "", 2).unwrap(),
        ["did:plc:aaa", "did:plc:bbb"]
    );
    assert_eq!(
        s.list_collection_repos(post, "did:plc:bbb", 2).unwrap(),
        ["did:plc:ccc"]
    );
    assert!(
        s.list_collection_repos(post, "did:plc:ccc", 2)
            .unwrap()
            .is_empty()
    );
    assert!(
        s.list_collection_repos("app.bsky.graph.follow", "", 10)
            .unwrap()
            .is_empty()
    );
    // Pages up to the lexicon maximum (2,000), past the other lists' 1,000.
    let many: Vec<_> = (0..2100)
        .map(|i| pair("x.y.z", &format!("did:plc:{i:05}")))
        .collect();
    s.add_collection_repos(&many).unwrap();
    assert_eq!(
        s.list_collection_repos("x.y.z", "", 5000).unwrap().len(),
        2000
    );

    assert_eq!(s.remove_collection_repos("did:plc:aaa").unwrap(), 2);
    assert_eq!(s.remove_collection_repos("did:plc:aaa").unwrap(), 0);
    assert_eq!(
        s.list_collection_repos(post, "", 10).unwrap(),
        ["did:plc:bbb", "did:plc:ccc"]
    );
    assert!(
        s.list_collection_repos("app.bsky.feed.like", "", 10)
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.add_collection_repos(&[pair("a.b\0c", "did:plc:x")]),
        Err(StateError::Invalid(_))
    ));
    assert!(matches!(
        s.add_collection_repos(&[pair("a.b.c", "did:plc:\0x")]),
        Err(StateError::Invalid(_))
    ));
    assert!(matches!(
        s.add_collection_repos(&[pair("a.b.c", &"x".repeat(5000))]),
        Err(StateError::TooLarge(_))
    ));
}

fn collection_index_survives_restart(b: &dyn Backend) {
    {
        let s = b.open();
        s.add_collection_repos(&[pair("app.bsky.feed.post", "did:plc:aaa")])
            .unwrap();
        s.sync().unwrap();
    }
    let s = b.open();
    assert_eq!(
        s.list_collection_repos("app.bsky.feed.post", "", 10)
            .unwrap(),
        ["did:plc:aaa"]
    );
}

fn batch_is_conditional_and_atomic(b: &dyn Backend) {
    let s = b.open();
    let h = s.upsert_host("pds.example", 1).unwrap();
    let a = s.get_or_create_account("did:plc:b1", h.id).unwrap();
    let c = s.get_or_create_account("did:plc:b2", h.id).unwrap();
    assert!(
        s.update_account_rev(c.uid, &rev("3kzzzzzzzzzz2", 9))
            .unwrap()
    );
    let batch = Batch {
        host_cursors: vec![(h.id, 10), (h.id, 12), (1 << 40, 5)],
        account_revs: vec![
            (a.uid, rev("3kaaaaaaaaab2", 1)),
            (a.uid, rev("3kaaaaaaaaac2", 2)),
            (a.uid, rev("3kaaaaaaaaaa2", 3)),
            (c.uid, rev("3kaaaaaaaaaa2", 4)),
            (1 << 50, rev("3k", 0)),
        ],
    };
    assert_eq!(s.apply_batch(&batch).unwrap(), 1, "only did:plc:b1 moves");
    s.sync().unwrap();
    assert_eq!(s.get_host_by_id(h.id).unwrap().unwrap().last_seq, 12);
    let a = s.get_account_by_uid(a.uid).unwrap().unwrap();
    assert_eq!(a.rev.as_deref(), Some("3kaaaaaaaaac2"));
    assert_eq!(a.data_cid.unwrap()[2], 2);
    assert_eq!(
        a.commit_cid,
        commit_of(2),
        "the greatest rev's commit, not the last"
    );
    let c = s.get_account_by_uid(c.uid).unwrap().unwrap();
    assert_eq!(c.rev.as_deref(), Some("3kzzzzzzzzzz2"));
    assert_eq!(
        c.commit_cid,
        commit_of(9),
        "an older rev does not roll it back"
    );
    assert_eq!(s.apply_batch(&Batch::default()).unwrap(), 0);
}

fn restart_keeps_everything(b: &dyn Backend) {
    let (host, account) = {
        let s = b.open();
        let mut host = s.upsert_host("pds.example", 1).unwrap();
        host.status = HostStatus::Banned;
        s.put_host(&host).unwrap();
        s.set_host_cursor(host.id, 99).unwrap();
        s.put_domain_ban("bad.example").unwrap();
        let a = s.get_or_create_account("did:plc:keep", host.id).unwrap();
        s.update_account_rev(a.uid, &rev("3kaaaaaaaaaa2", 7))
            .unwrap();
        s.set_local_status(a.uid, LocalStatus::Takendown).unwrap();
        s.put_identity("did:plc:keep", b"entry", 123).unwrap();
        s.put_backfill(
            "k",
            &BackfillRecord {
                cursor: "c".into(),
                done: 1,
                failed: 2,
                status: "s".into(),
            },
        )
        .unwrap();
        s.sync().unwrap();
        (
            s.get_host_by_id(host.id).unwrap().unwrap(),
            s.get_account_by_uid(a.uid).unwrap().unwrap(),
        )
    };
    let s = b.open();
    assert_eq!(s.get_host("pds.example").unwrap().unwrap(), host);
    assert_eq!(host.last_seq, 99);
    assert_eq!(s.list_domain_bans().unwrap(), vec!["bad.example"]);
    assert_eq!(s.get_account("did:plc:keep").unwrap().unwrap(), account);
    assert_eq!(account.local_status, LocalStatus::Takendown);
    assert_eq!(
        s.get_identity("did:plc:keep").unwrap().unwrap().entry,
        b"entry"
    );
    assert_eq!(s.get_backfill("k").unwrap().unwrap().failed, 2);
    // Ids keep counting from where they were: no reuse after a restart.
    let next = s.get_or_create_account("did:plc:new", host.id).unwrap();
    assert!(next.uid > account.uid);
    assert!(s.upsert_host("new.example", 1).unwrap().id > host.id);
    assert_eq!(s.get_host_by_id(host.id).unwrap().unwrap().account_count, 2);
}

fn oversized_fields_are_refused(b: &dyn Backend) {
    let s = b.open();
    let long = "x".repeat(relay::config::limits::STATE_KEY_BYTES_MAX + 1);
    assert!(matches!(
        s.upsert_host(&long, 1),
        Err(StateError::TooLarge(_))
    ));
    assert!(matches!(
        s.get_or_create_account(&long, 1),
        Err(StateError::TooLarge(_))
    ));
    let h = s.upsert_host("pds.example", 1).unwrap();
    let a = s.get_or_create_account("did:plc:big", h.id).unwrap();
    let big_rev = "3".repeat(relay::config::limits::STATE_REV_BYTES_MAX + 1);
    let e = s.update_account_rev(a.uid, &rev(&big_rev, 1)).unwrap_err();
    assert_eq!(e.reason(), "too_large");
    let mut big_commit = rev("3kaaaaaaaaaa2", 1);
    big_commit.commit_cid = Some(vec![
        1;
        relay::config::limits::STATE_COMMIT_CID_BYTES_MAX + 1
    ]);
    let e = s.update_account_rev(a.uid, &big_commit).unwrap_err();
    assert_eq!(e.reason(), "too_large");
    let e = s
        .apply_batch(&Batch {
            host_cursors: vec![],
            account_revs: vec![(a.uid, big_commit)],
        })
        .unwrap_err();
    assert_eq!(e.reason(), "too_large");
    let big = vec![0u8; relay::config::limits::STATE_IDENTITY_ENTRY_BYTES_MAX + 1];
    assert!(matches!(
        s.put_identity("did:plc:big", &big, 1),
        Err(StateError::TooLarge(_))
    ));
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_lite::future::block_on(f)
}

/// A service that flushes only when asked (long interval, high thresholds).
fn manual_service(store: Box<dyn Store>, entries_max: usize) -> StateService {
    StateService::start_with(
        store,
        ServiceConfig {
            flush_interval: Duration::from_secs(3600),
            flush_entries: usize::MAX,
            entries_max,
            queue_max: 64,
        },
    )
    .unwrap()
}

fn write_behind_coalesces_and_flushes(b: &dyn Backend) {
    let svc = manual_service(b.open(), 1000);
    let h = block_on(svc.upsert_host("pds.example", 1)).unwrap();
    let a = block_on(svc.get_or_create_account("did:plc:wb", h.id)).unwrap();
    for seq in 1..=500 {
        svc.record_host_cursor(h.id, seq).unwrap();
    }
    svc.record_account_commit(a.uid, rev("3kaaaaaaaaab2", 2))
        .unwrap();
    svc.record_account_commit(a.uid, rev("3kaaaaaaaaac2", 3))
        .unwrap();
    svc.record_account_commit(a.uid, rev("3kaaaaaaaaaa2", 1))
        .unwrap(); // older: coalesced away
    assert_eq!(svc.pending_entries(), 2, "one key per host and per account");
    block_on(svc.flush()).unwrap();
    assert_eq!(svc.pending_entries(), 0);
    let got = block_on(svc.call(move |s| s.get_account_by_uid(a.uid)))
        .unwrap()
        .unwrap();
    assert_eq!(got.rev.as_deref(), Some("3kaaaaaaaaac2"));
    assert_eq!(got.data_cid.unwrap()[2], 3);
    assert_eq!(got.commit_cid, commit_of(3));
    let host = block_on(svc.call(move |s| s.get_host_by_id(h.id)))
        .unwrap()
        .unwrap();
    assert_eq!(host.last_seq, 500);
    // A rev at or below the stored one, recorded after the flush, does not roll it back.
    svc.record_account_commit(a.uid, rev("3kaaaaaaaaab2", 9))
        .unwrap();
    block_on(svc.flush()).unwrap();
    let got = block_on(svc.load_account("did:plc:wb")).unwrap().unwrap();
    assert_eq!(got.rev.as_deref(), Some("3kaaaaaaaaac2"));
    assert_eq!(got.commit_cid, commit_of(3));
    svc.shutdown().unwrap();

    // The timed flush: with a short interval, updates land without an explicit flush.
    let svc = StateService::start_with(
        b.open(),
        ServiceConfig {
            flush_interval: Duration::from_millis(20),
            ..ServiceConfig::default()
        },
    )
    .unwrap();
    svc.record_host_cursor(h.id, 777).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while svc.pending_entries() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "interval flush never ran"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let host = block_on(svc.call(move |s| s.get_host_by_id(h.id)))
        .unwrap()
        .unwrap();
    assert_eq!(host.last_seq, 777);
}

fn write_behind_full_is_backpressure(b: &dyn Backend) {
    let svc = manual_service(b.open(), 3);
    let h = block_on(svc.upsert_host("pds.example", 1)).unwrap();
    let uids: Vec<u64> = (0..3)
        .map(|i| {
            block_on(svc.get_or_create_account(&format!("did:plc:f{i}"), h.id))
                .unwrap()
                .uid
        })
        .collect();
    svc.record_host_cursor(h.id, 1).unwrap();
    svc.record_account_commit(uids[0], rev("3kaaaaaaaaaa2", 1))
        .unwrap();
    svc.record_account_commit(uids[1], rev("3kaaaaaaaaaa2", 1))
        .unwrap();
    // At the bound: a new key is refused, existing keys still coalesce.
    assert_eq!(
        svc.record_account_commit(uids[2], rev("3kaaaaaaaaaa2", 1)),
        Err(state::Full)
    );
    svc.record_host_cursor(h.id, 2).unwrap();
    svc.record_account_commit(uids[0], rev("3kaaaaaaaaab2", 2))
        .unwrap();
    block_on(svc.flush()).unwrap();
    // The caller retried after the flush made room: nothing was lost.
    svc.record_account_commit(uids[2], rev("3kaaaaaaaaaa2", 1))
        .unwrap();
    svc.shutdown().unwrap();
    let s = b.open();
    assert_eq!(s.get_host_by_id(h.id).unwrap().unwrap().last_seq, 2);
    assert_eq!(
        s.get_account_by_uid(uids[0])
            .unwrap()
            .unwrap()
            .rev
            .as_deref(),
        Some("3kaaaaaaaaab2")
    );
    assert_eq!(
        s.get_account_by_uid(uids[2])
            .unwrap()
            .unwrap()
            .rev
            .as_deref(),
        Some("3kaaaaaaaaaa2")
    );
}

fn service_reads_see_pending_writes(b: &dyn Backend) {
    let svc = manual_service(b.open(), 100);
    let h = block_on(svc.upsert_host("pds.example", 1)).unwrap();
    let a = block_on(svc.get_or_create_account("did:plc:rw", h.id)).unwrap();
    svc.record_host_cursor(h.id, 55).unwrap();
    svc.record_account_commit(a.uid, rev("3kaaaaaaaaaa2", 1))
        .unwrap();
    // Awaited from another thread than the state thread (any executor works).
    let svc = Arc::new(svc);
    let reader = {
        let svc = Arc::clone(&svc);
        std::thread::spawn(move || {
            let acc = block_on(svc.load_account("did:plc:rw")).unwrap().unwrap();
            let host = block_on(svc.load_host("pds.example")).unwrap().unwrap();
            (acc, host)
        })
    };
    let (acc, host) = reader.join().unwrap();
    assert_eq!(acc.rev.as_deref(), Some("3kaaaaaaaaaa2"));
    assert_eq!(
        acc.commit_cid,
        commit_of(1),
        "the pending commit CID is overlaid"
    );
    assert_eq!(host.last_seq, 55);
    assert!(
        block_on(svc.load_account("did:plc:nobody"))
            .unwrap()
            .is_none()
    );
    assert!(block_on(svc.load_host("nobody.example")).unwrap().is_none());
    let again = block_on(svc.get_or_create_account("did:plc:rw", h.id)).unwrap();
    assert_eq!(
        (again.uid, again.rev.as_deref()),
        (a.uid, Some("3kaaaaaaaaaa2"))
    );
}

/// `close` while other holders keep the service: pending writes are made durable, the
/// store is released (the same RocksDB directory opens again in this process), and later
/// calls are refused with `Closed`, not hung.
fn service_closes_while_shared(b: &dyn Backend) {
    let svc = Arc::new(manual_service(b.open(), 100));
    let other_holder = Arc::clone(&svc);
    let h = block_on(svc.upsert_host("pds.example", 1)).unwrap();
    svc.record_host_cursor(h.id, 77).unwrap();
    svc.close().unwrap();
    svc.close().unwrap();
    assert!(matches!(
        block_on(other_holder.load_host("pds.example")),
        Err(StateError::Closed)
    ));
    let reopened = manual_service(b.open(), 100);
    let host = block_on(reopened.load_host("pds.example"))
        .unwrap()
        .unwrap();
    assert_eq!(host.last_seq, 77);
}

fn service_survives_restart(b: &dyn Backend) {
    let (h, a) = {
        let svc = manual_service(b.open(), 100);
        let h = block_on(svc.upsert_host("pds.example", 1)).unwrap();
        let a = block_on(svc.get_or_create_account("did:plc:sr", h.id)).unwrap();
        svc.record_host_cursor(h.id, 1234).unwrap();
        svc.record_account_commit(a.uid, rev("3kaaaaaaaaaa2", 6))
            .unwrap();
        // No explicit flush: shutdown writes what is pending.
        svc.shutdown().unwrap();
        (h, a)
    };
    let svc = manual_service(b.open(), 100);
    let host = block_on(svc.load_host("pds.example")).unwrap().unwrap();
    assert_eq!((host.id, host.last_seq), (h.id, 1234));
    let acc = block_on(svc.load_account("did:plc:sr")).unwrap().unwrap();
    assert_eq!(
        (acc.uid, acc.rev.as_deref()),
        (a.uid, Some("3kaaaaaaaaaa2"))
    );
}

#[test]
fn queue_full_is_refused_not_blocked() {
    // The state thread is held busy by one request; the queue of 2 then takes two more
    // and refuses the next at once.
    let backend = Rocks::new();
    let svc = StateService::start_with(
        backend.open(),
        ServiceConfig {
            queue_max: 2,
            ..ServiceConfig::default()
        },
    )
    .unwrap();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let busy = svc.call(move |_| {
        started_tx.send(()).unwrap();
        release_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Ok(())
    });
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let q1 = svc.load_account("did:plc:a");
    let q2 = svc.load_account("did:plc:b");
    let refused = block_on(svc.load_account("did:plc:c"));
    assert!(matches!(refused, Err(StateError::QueueFull)));
    assert_eq!(svc.queue_depth(), 2);
    release_tx.send(()).unwrap();
    block_on(busy).unwrap();
    assert!(block_on(q1).unwrap().is_none());
    assert!(block_on(q2).unwrap().is_none());
}

#[test]
fn second_opener_of_the_same_rocksdb_is_refused() {
    let backend = Rocks::new();
    let _first = backend.open();
    let second = state::open(&StateConfig {
        data_dir: backend.dir.path().to_path_buf(),
        database_url: None,
    });
    assert_eq!(second.err().map(|e| e.reason()), Some("rocksdb"));
}

#[test]
fn bad_database_url_is_a_typed_error() {
    let r = state::open(&StateConfig {
        data_dir: std::env::temp_dir(),
        database_url: Some("postgres://nobody@127.0.0.1:1/none?connect_timeout=2".into()),
    });
    assert_eq!(r.err().map(|e| e.reason()), Some("postgres"));
}

/// A database a version-1 relay left (no `commit_cid` column, migration 2 not recorded)
/// is upgraded on open: its accounts keep their revs and read with no commit CID until
/// their next commit stores one.
#[test]
fn migration_2_adds_the_commit_cid_to_a_version_1_database() {
    let Some(pg) = Postgres::new() else { return };
    let uid = {
        let s = pg.open();
        let host = s.upsert_host("pds.example", 1).unwrap();
        let a = s.get_or_create_account("did:plc:old", host.id).unwrap();
        assert!(
            s.update_account_rev(a.uid, &rev("3kaaaaaaaaaa2", 1))
                .unwrap()
        );
        a.uid
    };
    pg.schema.execute(
        "ALTER TABLE accounts DROP COLUMN commit_cid; \
         DELETE FROM schema_migrations WHERE version = 2;",
    );
    let s = pg.open();
    let got = s.get_account_by_uid(uid).unwrap().unwrap();
    assert_eq!(
        (
            got.rev.as_deref(),
            got.data_cid.clone(),
            got.commit_cid.clone()
        ),
        (Some("3kaaaaaaaaaa2"), Some(vec![0x01, 0x71, 1]), None)
    );
    assert!(s.update_account_rev(uid, &rev("3kaaaaaaaaab2", 2)).unwrap());
    assert_eq!(
        s.get_account_by_uid(uid).unwrap().unwrap().commit_cid,
        commit_of(2)
    );
}

#[test]
fn migrations_are_idempotent() {
    let Some(pg) = Postgres::new() else { return };
    drop(pg.open());
    drop(pg.open());
    let s = pg.open();
    s.upsert_host("pds.example", 1).unwrap();
}

/// Prints measured figures (not timed assertions): account creation rate and the latency
/// of one write-behind-sized batch, for the store under test.
fn batch_flush_figures(b: &dyn Backend) {
    use std::time::Instant;
    const ACCOUNTS: usize = 2000;
    let s = b.open();
    let hosts: Vec<u64> = (0..50)
        .map(|i| s.upsert_host(&format!("pds{i}.example"), 1).unwrap().id)
        .collect();
    let started = Instant::now();
    let uids: Vec<u64> = (0..ACCOUNTS)
        .map(|i| {
            s.get_or_create_account(&format!("did:plc:fig{i:06}"), hosts[i % 50])
                .unwrap()
                .uid
        })
        .collect();
    let create = started.elapsed();
    let mut times = vec![];
    for round in 0..5u8 {
        let batch = Batch {
            host_cursors: hosts
                .iter()
                .map(|h| (*h, u64::from(round) * 1000 + h))
                .collect(),
            account_revs: uids
                .iter()
                .map(|u| (*u, rev(&format!("3kaaaaaaaaa{round}2"), round)))
                .collect(),
        };
        let started = Instant::now();
        assert_eq!(s.apply_batch(&batch).unwrap(), ACCOUNTS);
        s.sync().unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    let median = times[2];
    eprintln!(
        "state figures ({}): {ACCOUNTS} account creations {:.0}/s; batch of {} entries (+sync) median {:.1} ms = {:.0} entries/s",
        b.name(),
        ACCOUNTS as f64 / create.as_secs_f64(),
        ACCOUNTS + hosts.len(),
        median.as_secs_f64() * 1e3,
        (ACCOUNTS + hosts.len()) as f64 / median.as_secs_f64()
    );
}

#[test]
fn replies_complete_on_a_glommio_executor() {
    // A data-plane task on its own thread awaits replies completed by the state thread.
    fn assert_send_static<T: Send + 'static>(_: &T) {}
    let backend = Rocks::new();
    let svc = Arc::new(manual_service(backend.open(), 100));
    let probe = svc.load_account("did:plc:probe");
    assert_send_static(&probe);
    drop(probe);
    let task_svc = Arc::clone(&svc);
    let (host, account) = std::thread::spawn(move || {
        glommio::LocalExecutorBuilder::default()
            .io_memory(1 << 20)
            .make()
            .unwrap()
            .run(async move {
                let host = task_svc.upsert_host("pds.example", 1).await.unwrap();
                let account = task_svc
                    .get_or_create_account("did:plc:glommio", host.id)
                    .await
                    .unwrap();
                task_svc
                    .record_account_commit(account.uid, rev("3kaaaaaaaaaa2", 1))
                    .unwrap();
                task_svc.flush().await.unwrap();
                (
                    host,
                    task_svc.load_account("did:plc:glommio").await.unwrap(),
                )
            })
    })
    .join()
    .unwrap();
    let account = account.unwrap();
    assert_eq!(account.host_id, host.id);
    assert_eq!(account.rev.as_deref(), Some("3kaaaaaaaaaa2"));
}
