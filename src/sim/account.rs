//! One simulated account: a seeded signing key, a did:plc-shaped DID, a real MST repo
//! with its full block store, and the rev clock; it turns record operations into the
//! exact `#commit` frame a PDS would send, and can also send hostile variants.
//!
//! Owns repo state and frame bytes only: no IO, no clock (time comes in as
//! `now_micros`), no randomness (everything derives from the seed). Honest commits are
//! built to pass every relay check (signature, Sync 1.1 inversion to `prevData`, rev
//! order, CAR root); it does not check frames itself. A hostile commit never changes the
//! account: the honest chain continues from the last honest commit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use sha2::{Digest, Sha256};

use crate::config::limits::{COMMIT_OPS_MAX, SIM_RECORD_SIZE_BYTES_MAX};
use crate::frame::cbor::OwnedValue;
use crate::frame::cid::Cid;
use crate::frame::commit::UnsignedCommit;
use crate::frame::event::{
    AccountEventOwned, CommitEventOwned, IdentityEventOwned, OpAction, RepoOpOwned, SyncEventOwned,
    write_message_header,
};
use crate::identity::key::{Curve, PublicKey};
use crate::syntax::{SyntaxError, Tid};
use crate::verify::mst::{self, Action, EMPTY_NODE_BLOCK, Mst, MstError, Op};
use crate::verify::signature::{SignatureError, SigningKey};

use crate::frame::car::write_car;

/// The collection most simulated records belong to (see `collection_of_record`).
pub const POST_COLLECTION: &str = "app.bsky.feed.post";

/// How far past `now` a [`Hostile::FutureRev`] commit dates its rev: beyond the usual
/// ten-minute tolerance.
const FUTURE_REV_SKEW_MICROS: u64 = 11 * 60 * 1_000_000;

/// Base32 (RFC 4648, lowercase) as did:plc identifiers use it.
const DID_PLC_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// A did:plc identifier is 24 base32 characters: 15 hash bytes.
const DID_PLC_HASH_BYTES: usize = 15;
/// TID clock ids have 10 bits.
const CLOCK_ID_MODULUS: u64 = 1024;

/// Why the simulator could not build an event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimError {
    /// The seed did not give a usable key.
    Key(SignatureError),
    /// The repo tree refused an operation.
    Mst(MstError),
    /// A rev or record key out of TID range.
    Tid(SyntaxError),
    /// The event needs a previous commit and there is none.
    NoCommitYet,
    /// The hostile kind needs at least one operation.
    NoOps,
}

impl SimError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            SimError::Key(_) => "sim_key",
            SimError::Mst(_) => "sim_mst",
            SimError::Tid(_) => "sim_tid",
            SimError::NoCommitYet => "sim_no_commit_yet",
            SimError::NoOps => "sim_no_ops",
        }
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Key(e) => write!(f, "simulated key: {e}"),
            SimError::Mst(e) => write!(f, "simulated repo: {e}"),
            SimError::Tid(e) => write!(f, "simulated TID: {e}"),
            SimError::NoCommitYet => f.write_str("the account has no commit yet"),
            SimError::NoOps => f.write_str("the hostile commit needs at least one operation"),
        }
    }
}

impl std::error::Error for SimError {}

impl From<MstError> for SimError {
    fn from(e: MstError) -> Self {
        SimError::Mst(e)
    }
}

impl From<SyntaxError> for SimError {
    fn from(e: SyntaxError) -> Self {
        SimError::Tid(e)
    }
}

/// A record operation requested of a commit. Updates and deletes `pick` an existing
/// record (modulo the records not yet touched by this commit) and are skipped when
/// there is none, so any sequence of operations is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimOp {
    /// A new post of about `size_bytes` encoded bytes, under a fresh TID record key.
    Create {
        /// Approximate encoded record size, capped at `SIM_RECORD_SIZE_BYTES_MAX`.
        size_bytes: usize,
    },
    /// Replace an existing post.
    Update {
        /// Which record, modulo the candidates.
        pick: usize,
        /// Approximate encoded size of the new record.
        size_bytes: usize,
    },
    /// Remove an existing post.
    Delete {
        /// Which record, modulo the candidates.
        pick: usize,
    },
}

/// What a hostile PDS does wrong in a `#commit` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hostile {
    /// The commit signature does not verify with the account key.
    BadSignature,
    /// `prevData` is not the data root of the previous commit.
    WrongPrevData,
    /// The ops list does not match the blocks: the first op names another CID.
    OpsDoNotInvert,
    /// The rev is older than the previous commit's (a rollback).
    RevNotNewer,
    /// The rev is dated more than ten minutes after `now`.
    FutureRev,
    /// One op more than a commit may carry.
    TooManyOps,
    /// The CAR root is the MST root instead of the commit.
    CarRootNotCommit,
    /// The frame body is not valid DAG-CBOR (an indefinite-length map).
    MalformedCbor,
    /// The CAR slice is cut in the middle of a block.
    TruncatedCar,
}

impl Hostile {
    /// Every kind, for exhaustive tests and fleet configuration.
    pub const ALL: [Hostile; 9] = [
        Hostile::BadSignature,
        Hostile::WrongPrevData,
        Hostile::OpsDoNotInvert,
        Hostile::RevNotNewer,
        Hostile::FutureRev,
        Hostile::TooManyOps,
        Hostile::CarRootNotCommit,
        Hostile::MalformedCbor,
        Hostile::TruncatedCar,
    ];

    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            Hostile::BadSignature => "bad_signature",
            Hostile::WrongPrevData => "wrong_prev_data",
            Hostile::OpsDoNotInvert => "ops_do_not_invert",
            Hostile::RevNotNewer => "rev_not_newer",
            Hostile::FutureRev => "future_rev",
            Hostile::TooManyOps => "too_many_ops",
            Hostile::CarRootNotCommit => "car_root_not_commit",
            Hostile::MalformedCbor => "malformed_cbor",
            Hostile::TruncatedCar => "truncated_car",
        }
    }
}

/// The repo: tree, every block ever written, and the clocks. Cloned to build hostile
/// commits without touching the honest chain.
#[derive(Clone, Debug, Default)]
struct RepoState {
    mst: Mst,
    store: HashMap<Cid, Vec<u8>>,
    records: BTreeMap<String, Cid>,
    records_written: u64,
    last_rkey_micros: u64,
    last_rev: Option<Tid>,
    last_commit: Option<(Cid, Vec<u8>)>,
    last_data: Option<Cid>,
}

/// The ops of one commit and the CAR blocks they need besides the commit block.
struct Applied {
    ops: Vec<RepoOpOwned>,
    data: Cid,
    blocks: Vec<Cid>,
}

/// A simulated account on a simulated PDS.
#[derive(Clone)]
pub struct SimAccount {
    did: String,
    host: String,
    seed: u64,
    key: SigningKey,
    /// How many times the key was rotated (0: the key of [`SimAccount::new`]).
    key_generation: u32,
    /// The key before the last rotation, for signatures by a rotated-out key.
    previous_key: Option<SigningKey>,
    clock_id: u16,
    state: RepoState,
}

impl fmt::Debug for SimAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimAccount")
            .field("did", &self.did)
            .field("host", &self.host)
            .field("records", &self.state.records.len())
            .field("last_rev", &self.state.last_rev)
            .finish_non_exhaustive()
    }
}

impl SimAccount {
    /// The account of `seed` on `host`, with an empty repo and no commit yet. The same
    /// seed and curve always give the same DID and key.
    pub fn new(seed: u64, curve: Curve, host: &str) -> Result<SimAccount, SimError> {
        SimAccount::with_did(seed, curve, host, did_for_seed(seed))
    }

    /// Like [`SimAccount::new`] but under a given DID (e.g. a `did:web` that names the
    /// host's port, known only once the host is bound).
    pub fn with_did(
        seed: u64,
        curve: Curve,
        host: &str,
        did: String,
    ) -> Result<SimAccount, SimError> {
        let key = key_for_generation(seed, curve, 0)?;
        let mut state = RepoState::default();
        let empty = EMPTY_NODE_BLOCK.to_vec();
        state.store.insert(Cid::for_dag_cbor(&empty), empty);
        Ok(SimAccount {
            did,
            host: host.to_owned(),
            seed,
            key,
            key_generation: 0,
            previous_key: None,
            clock_id: u16::try_from(seed % CLOCK_ID_MODULUS).unwrap_or(0),
            state,
        })
    }

    /// Replace the signing key by the next generation's ([`key_for_generation`]); the
    /// old one is kept for [`SimAccount::commit_by_previous_key`].
    pub fn rotate_key(&mut self) -> Result<(), SimError> {
        let generation = self.key_generation.saturating_add(1);
        let next = key_for_generation(self.seed, self.key.curve(), generation)?;
        self.previous_key = Some(std::mem::replace(&mut self.key, next));
        self.key_generation = generation;
        Ok(())
    }

    /// How many times the key was rotated.
    pub fn key_generation(&self) -> u32 {
        self.key_generation
    }

    /// Move the account to another host name (a PDS migration); the repo goes along.
    pub fn set_host(&mut self, host: &str) {
        host.clone_into(&mut self.host);
    }

    /// An honest-looking `#commit` frame for `ops` that the account does not keep: the
    /// next commit follows the last one as if this frame had never been built. The base
    /// of hostile variants made by changing fields outside the signed commit.
    pub fn detached_commit(
        &mut self,
        ops: &[SimOp],
        now_micros: u64,
        seq: u64,
    ) -> Result<Vec<u8>, SimError> {
        let saved = self.state.clone();
        let frame = self.commit_with(ops, now_micros, seq, None);
        self.state = saved;
        frame
    }

    /// A detached commit signed by the key before the last rotation, or, for an account
    /// never rotated, by a key the account never published.
    pub fn commit_by_previous_key(
        &mut self,
        ops: &[SimOp],
        now_micros: u64,
        seq: u64,
    ) -> Result<Vec<u8>, SimError> {
        let old = match &self.previous_key {
            Some(key) => key.clone(),
            None => SigningKey::generate_from_seed(
                self.key.curve(),
                seed_hash(b"relay-sim-unpublished-key", self.seed),
            )
            .map_err(SimError::Key)?,
        };
        let current = std::mem::replace(&mut self.key, old);
        let frame = self.detached_commit(ops, now_micros, seq);
        self.key = current;
        frame
    }

    /// The full repo as a CAR (root: the last honest commit; blocks: the commit, every
    /// MST node and record), as `com.atproto.sync.getRepo` serves it.
    pub fn repo_car(&self) -> Option<Vec<u8>> {
        let (cid, block) = self.state.last_commit.as_ref()?;
        let empty = Cid::for_dag_cbor(&EMPTY_NODE_BLOCK);
        let rest = self
            .state
            .store
            .iter()
            .filter(|(c, _)| **c != empty || self.state.records.is_empty())
            .map(|(c, b)| (c, b.as_slice()));
        let mut car = Vec::new();
        write_car(
            cid,
            std::iter::once((cid, block.as_slice())).chain(rest),
            &mut car,
        );
        Some(car)
    }

    /// The account's DID (`did:plc:` + 24 base32 characters).
    pub fn did(&self) -> &str {
        &self.did
    }

    /// The host name given at creation.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The public half of the signing key (what the DID document would publish).
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// The rev of the last honest commit.
    pub fn last_rev(&self) -> Option<Tid> {
        self.state.last_rev
    }

    /// The CID of the last honest commit.
    pub fn last_commit(&self) -> Option<Cid> {
        self.state.last_commit.as_ref().map(|(cid, _)| *cid)
    }

    /// The MST root of the last honest commit.
    pub fn last_data(&self) -> Option<Cid> {
        self.state.last_data
    }

    /// Number of blocks held: the records and MST nodes of the current repo.
    pub fn stored_blocks(&self) -> usize {
        self.state.store.len()
    }

    /// Number of records in the repo.
    pub fn record_count(&self) -> usize {
        self.state.records.len()
    }

    /// Apply `ops`, sign a new commit and return its `#commit` frame with sequence
    /// number `seq`, dated `now_micros` (microseconds since the Unix epoch).
    pub fn commit(
        &mut self,
        ops: &[SimOp],
        now_micros: u64,
        seq: u64,
    ) -> Result<Vec<u8>, SimError> {
        self.commit_with(ops, now_micros, seq, None)
    }

    /// The `#commit` frame a hostile PDS would send for `ops`; the account is left as
    /// it was, so the next honest commit follows the last honest one.
    pub fn hostile_commit(
        &mut self,
        kind: Hostile,
        ops: &[SimOp],
        now_micros: u64,
        seq: u64,
    ) -> Result<Vec<u8>, SimError> {
        let saved = self.state.clone();
        let frame = self.commit_with(ops, now_micros, seq, Some(kind));
        self.state = saved;
        frame
    }

    /// A `#sync` frame announcing the current commit (CAR of the commit block alone).
    pub fn sync_frame(&self, now_micros: u64, seq: u64) -> Result<Vec<u8>, SimError> {
        let ((cid, block), rev) = match (&self.state.last_commit, self.state.last_rev) {
            (Some(commit), Some(rev)) => (commit, rev),
            _ => return Err(SimError::NoCommitYet),
        };
        let mut blocks = Vec::new();
        write_car(cid, [(cid, block.as_slice())], &mut blocks);
        let event = SyncEventOwned {
            seq,
            did: self.did.clone(),
            blocks,
            rev: rev.as_str().to_owned(),
            time: rfc3339_micros(now_micros),
        };
        let mut out = Vec::new();
        event.encode_frame(&mut out);
        Ok(out)
    }

    /// An `#identity` frame, with `handle` when given.
    pub fn identity_frame(&self, handle: Option<&str>, now_micros: u64, seq: u64) -> Vec<u8> {
        let event = IdentityEventOwned {
            seq,
            did: self.did.clone(),
            time: rfc3339_micros(now_micros),
            handle: handle.map(str::to_owned),
        };
        let mut out = Vec::new();
        event.encode_frame(&mut out);
        out
    }

    /// An `#account` frame with `active` and an optional `status`.
    pub fn account_frame(
        &self,
        active: bool,
        status: Option<&str>,
        now_micros: u64,
        seq: u64,
    ) -> Vec<u8> {
        let event = AccountEventOwned {
            seq,
            did: self.did.clone(),
            time: rfc3339_micros(now_micros),
            active,
            status: status.map(str::to_owned),
        };
        let mut out = Vec::new();
        event.encode_frame(&mut out);
        out
    }

    fn commit_with(
        &mut self,
        ops: &[SimOp],
        now_micros: u64,
        seq: u64,
        hostile: Option<Hostile>,
    ) -> Result<Vec<u8>, SimError> {
        let time = rfc3339_micros(now_micros);
        let too_many = [SimOp::Create { size_bytes: 0 }; COMMIT_OPS_MAX + 1];
        let ops = if hostile == Some(Hostile::TooManyOps) {
            &too_many[..]
        } else {
            ops
        };
        let mut applied = self.state.apply(ops, now_micros, self.clock_id, &time)?;
        let rev = self.next_rev(now_micros, hostile)?;
        let (commit_cid, commit_block) = self.sign_commit(applied.data, rev, hostile);
        let car_root = match hostile {
            Some(Hostile::CarRootNotCommit) => applied.data,
            _ => commit_cid,
        };
        let mut blocks = self.car_slice(car_root, &commit_cid, &commit_block, &applied.blocks);
        if hostile == Some(Hostile::TruncatedCar) {
            blocks.truncate(blocks.len().saturating_sub(1 + blocks.len() / 3));
        }
        if hostile == Some(Hostile::OpsDoNotInvert) {
            let op = applied.ops.first_mut().ok_or(SimError::NoOps)?;
            op.cid = Some(Cid::for_dag_cbor(b"\x60"));
            op.prev = op.prev.map(|_| Cid::for_dag_cbor(b"\x61\x78"));
        }
        let prev_data = match hostile {
            Some(Hostile::WrongPrevData) => Some(Cid::for_dag_cbor(b"\x61\x77")),
            _ => self.state.last_data,
        };
        let event = CommitEventOwned {
            seq,
            rebase: false,
            too_big: false,
            repo: self.did.clone(),
            commit: commit_cid,
            rev: rev.as_str().to_owned(),
            since: self.state.last_rev.map(|since| since.as_str().to_owned()),
            blocks,
            ops: applied.ops,
            blobs: Vec::new(),
            prev_data,
            time,
        };
        let mut out = Vec::new();
        event.encode_frame(&mut out);
        if hostile == Some(Hostile::MalformedCbor) {
            break_body_cbor(&mut out);
        }
        self.state.last_rev = Some(rev);
        self.state.last_commit = Some((commit_cid, commit_block));
        self.state.last_data = Some(applied.data);
        Ok(out)
    }

    /// The rev of the next commit: strictly after the last, not before `now`, unless a
    /// hostile kind dates it elsewhere.
    fn next_rev(&self, now_micros: u64, hostile: Option<Hostile>) -> Result<Tid, SimError> {
        let last_micros = self.state.last_rev.map(|rev| rev.timestamp_micros());
        let micros = match (hostile, last_micros) {
            (Some(Hostile::RevNotNewer), Some(last)) => last.saturating_sub(1),
            (Some(Hostile::RevNotNewer), None) => return Err(SimError::NoCommitYet),
            (Some(Hostile::FutureRev), last) => {
                (now_micros + FUTURE_REV_SKEW_MICROS).max(last.map_or(0, |l| l + 1))
            }
            (_, last) => now_micros.max(last.map_or(0, |l| l + 1)),
        };
        Ok(Tid::from_parts(micros, self.clock_id)?)
    }

    /// The signed v3 commit block (prev is null, as v3 repos write it) and its CID.
    fn sign_commit(&self, data: Cid, rev: Tid, hostile: Option<Hostile>) -> (Cid, Vec<u8>) {
        let unsigned = UnsignedCommit {
            did: &self.did,
            data,
            rev: rev.as_str(),
            prev: None,
        };
        let mut message = Vec::new();
        unsigned.encode_unsigned(&mut message);
        let mut sig = self.key.sign(&message);
        if hostile == Some(Hostile::BadSignature)
            && let Some(byte) = sig.first_mut()
        {
            *byte ^= 1;
        }
        let mut block = Vec::new();
        unsigned.encode_signed(&sig, &mut block);
        (Cid::for_dag_cbor(&block), block)
    }

    /// The CAR slice: commit block first, then every other needed block once.
    fn car_slice(&self, root: Cid, commit_cid: &Cid, commit: &[u8], needed: &[Cid]) -> Vec<u8> {
        let mut seen = BTreeSet::new();
        seen.insert(*commit_cid);
        let rest = needed
            .iter()
            .filter(|cid| seen.insert(**cid))
            .filter_map(|cid| {
                let block = self.state.store.get(cid)?;
                Some((cid, block.as_slice()))
            });
        let mut car = Vec::new();
        write_car(
            &root,
            std::iter::once((commit_cid, commit)).chain(rest),
            &mut car,
        );
        car
    }
}

impl RepoState {
    /// Apply `ops` to the tree, store the new blocks, and list what the CAR slice needs.
    fn apply(
        &mut self,
        ops: &[SimOp],
        now_micros: u64,
        clock_id: u16,
        time: &str,
    ) -> Result<Applied, SimError> {
        let mut touched = BTreeSet::new();
        let mut repo_ops = Vec::with_capacity(ops.len());
        let mut blocks = Vec::new();
        for op in ops {
            let Some(repo_op) = self.apply_one(op, &touched, now_micros, clock_id, time)? else {
                continue;
            };
            blocks.extend(repo_op.cid);
            touched.insert(repo_op.path.clone());
            repo_ops.push(repo_op);
        }
        let diff = self.mst.commit()?;
        let data = diff.root();
        let removed = diff.removed().to_vec();
        for (cid, block) in diff.into_new_blocks() {
            blocks.push(cid);
            self.store.insert(cid, block);
        }
        self.prune(&removed, &blocks);
        let mst_ops = to_mst_ops(&repo_ops);
        blocks.extend(mst::inversion_proof(&self.store, data, &mst_ops)?);
        Ok(Applied {
            ops: repo_ops,
            data,
            blocks,
        })
    }

    fn apply_one(
        &mut self,
        op: &SimOp,
        touched: &BTreeSet<String>,
        now_micros: u64,
        clock_id: u16,
        time: &str,
    ) -> Result<Option<RepoOpOwned>, SimError> {
        let (action, path, size_bytes) = match *op {
            SimOp::Create { size_bytes } => {
                let rkey = self.next_rkey(now_micros, clock_id)?;
                let collection = collection_of_record(self.records_written);
                let path = format!("{collection}/{}", rkey.as_str());
                (OpAction::Create, path, Some(size_bytes))
            }
            SimOp::Update { pick, size_bytes } => match self.pick(pick, touched) {
                Some(path) => (OpAction::Update, path, Some(size_bytes)),
                None => return Ok(None),
            },
            SimOp::Delete { pick } => match self.pick(pick, touched) {
                Some(path) => (OpAction::Delete, path, None),
                None => return Ok(None),
            },
        };
        let (cid, prev) = match size_bytes {
            Some(size_bytes) => {
                let cid = self.write_record(&path, size_bytes, time);
                let prev = self.mst.insert(&self.store, path.as_bytes(), cid)?;
                self.records.insert(path.clone(), cid);
                prev.map(|prev| self.store.remove(&prev));
                (Some(cid), prev)
            }
            None => {
                let prev = self.mst.remove(&self.store, path.as_bytes())?;
                self.records.remove(&path);
                prev.map(|prev| self.store.remove(&prev));
                (None, prev)
            }
        };
        Ok(Some(RepoOpOwned {
            action,
            path,
            cid,
            prev,
        }))
    }

    /// Drop the blocks the tree no longer references, so a long simulation's memory
    /// tracks the repo's size rather than its history. Record CIDs are unique (each
    /// record names a counter), so a replaced record's block has no other user.
    fn prune(&mut self, removed_nodes: &[Cid], kept: &[Cid]) {
        let empty = Cid::for_dag_cbor(&EMPTY_NODE_BLOCK);
        for cid in removed_nodes {
            if *cid != empty && !kept.contains(cid) {
                self.store.remove(cid);
            }
        }
    }

    /// The `pick`-th (modulo) existing record not yet touched by this commit.
    fn pick(&self, pick: usize, touched: &BTreeSet<String>) -> Option<String> {
        let candidates = self.records.keys().filter(|path| !touched.contains(*path));
        let count = candidates.clone().count();
        let index = pick.checked_rem(count)?;
        candidates.clone().nth(index).cloned()
    }

    fn next_rkey(&mut self, now_micros: u64, clock_id: u16) -> Result<Tid, SimError> {
        let micros = now_micros.max(self.last_rkey_micros + 1);
        let rkey = Tid::from_parts(micros, clock_id)?;
        self.last_rkey_micros = micros;
        Ok(rkey)
    }

    /// Store a post whose text pads it to about `size_bytes`; the text names the path
    /// and a counter so no two records share a CID.
    fn write_record(&mut self, path: &str, size_bytes: usize, time: &str) -> Cid {
        self.records_written += 1;
        let mut text = format!("{path} #{}", self.records_written);
        let target = size_bytes.min(SIM_RECORD_SIZE_BYTES_MAX);
        let overhead = 64 + time.len();
        while text.len() + overhead < target {
            text.push_str(" lorem ipsum");
        }
        let record = OwnedValue::map([
            (
                "$type",
                OwnedValue::text(path.split('/').next().unwrap_or(POST_COLLECTION)),
            ),
            ("text", OwnedValue::Text(text)),
            ("createdAt", OwnedValue::text(time)),
        ]);
        let block = record.to_bytes();
        let cid = Cid::for_dag_cbor(&block);
        self.store.insert(cid, block);
        cid
    }
}

/// The collection of an account's `n`-th record: mostly posts, with likes, reposts and
/// follows mixed in, so the collection index (and its readers) see several collections.
fn collection_of_record(n: u64) -> &'static str {
    match n % 8 {
        0 | 3 | 6 => POST_COLLECTION,
        1 | 4 => "app.bsky.feed.like",
        2 => "app.bsky.feed.repost",
        _ => "app.bsky.graph.follow",
    }
}

/// The MST view of a commit's ops, for inversion.
fn to_mst_ops(ops: &[RepoOpOwned]) -> Vec<Op<'_>> {
    ops.iter()
        .filter_map(|op| {
            let action = match (op.action, op.cid, op.prev) {
                (OpAction::Create, Some(cid), _) => Action::Create { cid },
                (OpAction::Update, Some(cid), Some(prev)) => Action::Update { cid, prev },
                (OpAction::Delete, _, Some(prev)) => Action::Delete { prev },
                _ => return None,
            };
            Some(Op {
                key: op.path.as_bytes(),
                action,
            })
        })
        .collect()
}

/// Make the frame body an indefinite-length map, which DAG-CBOR forbids.
fn break_body_cbor(frame: &mut [u8]) {
    let mut header = Vec::new();
    write_message_header("#commit", &mut header);
    if let Some(first) = frame.get_mut(header.len()) {
        *first = 0xbf;
    }
}

/// The signing key of account `seed` after `generation` rotations. Generation 0 is the
/// key of [`SimAccount::new`]; a PLC directory derives published keys from this.
pub fn key_for_generation(
    seed: u64,
    curve: Curve,
    generation: u32,
) -> Result<SigningKey, SimError> {
    let hash = if generation == 0 {
        seed_hash(b"relay-sim-key", seed)
    } else {
        let mut hasher = Sha256::new();
        hasher.update(b"relay-sim-rotated-key");
        hasher.update(seed.to_be_bytes());
        hasher.update(generation.to_be_bytes());
        hasher.finalize().into()
    };
    SigningKey::generate_from_seed(curve, hash).map_err(SimError::Key)
}

fn seed_hash(domain: &[u8], seed: u64) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(domain);
    hasher.update(seed.to_be_bytes());
    hasher.finalize().into()
}

/// The did:plc-shaped DID of account `seed` (what [`SimAccount::new`] uses): `did:plc:`
/// + the base32 of the first 15 bytes of a hash of the seed.
pub fn did_for_seed(seed: u64) -> String {
    let hash = seed_hash(b"relay-sim-did", seed);
    let mut did = String::from("did:plc:");
    let mut bits: u32 = 0;
    let mut buffer: u32 = 0;
    for byte in hash.iter().take(DID_PLC_HASH_BYTES) {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let index = ((buffer >> bits) & 31) as usize;
            did.extend(DID_PLC_ALPHABET.get(index).map(|&c| char::from(c)));
        }
    }
    did
}

/// RFC 3339 UTC with microseconds, e.g. `2024-01-02T03:04:05.000006Z`.
pub fn rfc3339_micros(now_micros: u64) -> String {
    let secs = now_micros / 1_000_000;
    let micros = now_micros % 1_000_000;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let second_of_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_is_rfc3339_with_micros() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339_micros(1_709_251_199_000_001),
            "2024-02-29T23:59:59.000001Z"
        );
        assert_eq!(
            rfc3339_micros(951_868_800_123_456),
            "2000-03-01T00:00:00.123456Z"
        );
    }

    #[test]
    fn store_holds_exactly_the_current_repo() {
        let mut account = SimAccount::new(5, Curve::P256, "h").unwrap();
        for i in 0..40u64 {
            let ops = [
                SimOp::Create { size_bytes: 100 },
                SimOp::Create { size_bytes: 100 },
                SimOp::Update {
                    pick: i as usize,
                    size_bytes: 100,
                },
                SimOp::Delete {
                    pick: 3 * i as usize,
                },
            ];
            account.commit(&ops, 1_000 + i, i).unwrap();
            let state = &account.state;
            let data = state.last_data.unwrap();
            let mut tree = Mst::from_root(data);
            let mut records = BTreeSet::new();
            tree.walk(&state.store, &mut |_: &[u8], cid| {
                records.insert(cid);
            })
            .unwrap();
            let mut expected: BTreeSet<Cid> = tree.blocks_read().iter().copied().collect();
            expected.insert(Cid::for_dag_cbor(&EMPTY_NODE_BLOCK));
            assert_eq!(records.len(), state.records.len());
            expected.extend(records);
            let held: BTreeSet<Cid> = state.store.keys().copied().collect();
            assert_eq!(held, expected, "commit {i}");
        }
    }

    #[test]
    fn did_is_plc_shaped_and_deterministic() {
        let did = did_for_seed(7);
        assert_eq!(did, did_for_seed(7));
        assert_ne!(did, did_for_seed(8));
        let id = did.strip_prefix("did:plc:").unwrap();
        assert_eq!(id.len(), 24);
        assert!(id.bytes().all(|b| DID_PLC_ALPHABET.contains(&b)));
    }
}
