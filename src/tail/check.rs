//! The checking consumer's core, sans-IO: feed it each frame as received, with the receive
//! time; it classifies, re-verifies and counts.
//!
//! Owns: per-type counts, relay seq order (gaps, duplicates), per-account rev order and
//! chain continuity, the checks of `#commit` and `#sync`, the latency histogram, the
//! optional record of every event seen, the report.
//! Must not: do IO or read clocks (the caller passes receive times and keys), or share
//! the relay's rule set: the commit checks are written again here, from the decoders
//! (`frame`), the MST inversion (`verify::mst`) and the *reference* signature backends
//! (k256, p256), so that a bug in the relay's rules or its fast backends shows up as a
//! disagreement instead of being repeated.
//!
//! Always checks, per `#commit`: deprecated fields false, the CAR slice (hashes) and its
//! root = `commit`, the commit object (version 3) and its signature with the DID's key,
//! `repo`/`rev` = the signed commit's, rev a TID not more than five minutes after the
//! receive time, rev newer than the last valid one of the account, MST inversion of the
//! ops to `prevData` (and `prevData` present once a prior commit was seen). Per `#sync`:
//! the CAR root's commit signature, DID and rev, rev not older than the last one. Per
//! frame with a seq: strictly increasing. `time` fields → latency.
//! Does not check: record contents, blobs, host authority, handles, `#account` status
//! transitions.
//!
//! Keys: a frame of an account whose key is unknown is parked (in order, at most
//! `TAIL_PENDING_FRAMES_PER_DID_MAX` per account; over it the frame is counted invalid
//! as `key_queue_full`) and [`Feed::NeedKey`] asks the caller to fetch the key and call
//! [`Checker::provide_key`]. Seq, type counts and latency are taken on arrival; the
//! signature and rev checks when the key is there, in the account's order.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

use crate::config::limits::{
    COMMIT_BLOCKS_MAX, REV_FUTURE_SKEW_MICROS_MAX, TAIL_ACCOUNTS_MAX,
    TAIL_PENDING_FRAMES_PER_DID_MAX, TAIL_RECORDED_EVENTS_MAX, TAIL_SEQ_EXAMPLES_MAX,
};
use crate::frame::car::Blocks;
use crate::frame::cid::Cid;
use crate::frame::commit::Commit;
use crate::frame::event::{CommitEvent, Event, Frame, OpAction, SyncEvent};
use crate::identity::key::{Curve, PublicKey};
use crate::syntax::{Datetime, Tid};
use crate::tail::histogram::{Histogram, Percentiles};
use crate::verify::mst::{Action, Op, invert_ops};
use crate::verify::signature::{Backend, ParsedKey};

/// Which signature backends the checker uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backends {
    /// k256 and p256 (pure Rust, the reference; what tail is for). The default.
    #[default]
    Reference,
    /// libsecp256k1 and ring, when the reference cannot keep up (P-256 with p256 runs at
    /// about 3,000 verifies/s per core).
    Fast,
}

impl Backends {
    fn for_curve(self, curve: Curve) -> Backend {
        match (self, curve) {
            (Backends::Reference, Curve::Secp256k1) => Backend::K256,
            (Backends::Reference, Curve::P256) => Backend::P256,
            (Backends::Fast, Curve::Secp256k1) => Backend::Libsecp256k1,
            (Backends::Fast, Curve::P256) => Backend::Ring,
        }
    }
}

/// Options of a [`Checker`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckerConfig {
    /// Signature backends.
    pub backends: Backends,
    /// Keep the list of (seq, did, rev, type) seen, up to `TAIL_RECORDED_EVENTS_MAX`.
    pub record_events: bool,
}

/// What the caller must do after [`Checker::feed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Nothing: the frame is counted (and checked, or parked behind a key already asked for).
    Done,
    /// The frame is parked: fetch this DID's key and call [`Checker::provide_key`].
    NeedKey(String),
    /// An `#identity` event: the checker forgot the DID's key; drop any cached copy.
    IdentityChanged(String),
}

/// What [`Checker::arrive`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Counted; nothing more to do.
    Done,
    /// A `#commit` or `#sync` of this DID: check it with [`Checker::feed_keyed`].
    Keyed(String),
    /// An `#identity` event of this DID: its key must be forgotten where it is held.
    IdentityChanged(String),
}

/// One event as seen, for exactly-once assertions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeenEvent {
    /// The relay seq.
    pub seq: u64,
    /// The account.
    pub did: String,
    /// The rev (`#commit`, `#sync`).
    pub rev: Option<String>,
    /// `commit`, `sync`, `identity`, `account`.
    pub frame_type: &'static str,
    /// Whether every check passed.
    pub valid: bool,
}

/// Seq order findings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SeqReport {
    /// First seq seen.
    pub first: Option<u64>,
    /// Last (largest) seq seen.
    pub last: Option<u64>,
    /// Places where seq jumped by more than one.
    pub gaps: u64,
    /// Seqs skipped over in those gaps.
    pub missing: u64,
    /// Frames whose seq was not above the last (repeats and regressions).
    pub duplicates: u64,
    /// The first few seqs after a gap.
    pub gap_examples: Vec<u64>,
    /// The first few repeated or regressing seqs.
    pub duplicate_examples: Vec<u64>,
}

/// Everything tail found. Serialised with `--json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TailReport {
    /// Frames received.
    pub frames: u64,
    /// Frames by type (`commit`, `sync`, `identity`, `account`, `info`, `error`,
    /// `unknown`, `undecodable`).
    pub by_type: BTreeMap<&'static str, u64>,
    /// Events that passed every check of their type.
    pub valid: u64,
    /// Events that failed a check.
    pub invalid: u64,
    /// Failed events by the first check that failed.
    pub invalid_by_reason: BTreeMap<&'static str, u64>,
    /// Seq order.
    pub seq: SeqReport,
    /// Commits or syncs whose rev was not newer than the account's last valid one.
    pub rev_order_violations: u64,
    /// Valid commits whose `since`/`prevData` did not continue the account's last valid
    /// commit (events missed, or a host skipping history).
    pub chain_breaks: u64,
    /// `#info` frames by name.
    pub info_by_name: BTreeMap<String, u64>,
    /// Error frames by error name.
    pub error_by_name: BTreeMap<String, u64>,
    /// Receive time − event `time`, microseconds.
    pub latency: Percentiles,
    /// Events whose `time` was after their receive time (clock skew; counted as 0).
    pub latency_negative: u64,
    /// Events whose `time` is not an RFC 3339 datetime.
    pub latency_unparsed: u64,
    /// Frames still parked for a key when the report was taken.
    pub pending: u64,
    /// Seconds between the first and the last frame.
    pub elapsed_secs: f64,
    /// Frames per second over `elapsed_secs`.
    pub events_per_sec: f64,
    /// The events seen, when recording is on.
    pub events: Option<Vec<SeenEvent>>,
    /// True when more events were seen than `TAIL_RECORDED_EVENTS_MAX`.
    pub events_truncated: bool,
    /// Why the run ended (`events_max`, `duration`, `idle_timeout`, `stopped`, `closed`,
    /// or a connection error label); empty for a checker driven directly.
    pub end: String,
}

impl TailReport {
    /// Add the keyed checks' findings of another checker (one that only ran
    /// [`Checker::feed_keyed`]); recorded events are merged in seq order.
    pub fn merge_keyed(&mut self, other: TailReport) {
        self.valid += other.valid;
        self.invalid += other.invalid;
        for (reason, count) in other.invalid_by_reason {
            *self.invalid_by_reason.entry(reason).or_default() += count;
        }
        self.rev_order_violations += other.rev_order_violations;
        self.chain_breaks += other.chain_breaks;
        self.pending += other.pending;
        self.events_truncated |= other.events_truncated;
        if let (Some(events), Some(more)) = (&mut self.events, other.events) {
            events.extend(more);
            events.sort_by_key(|e| e.seq);
        }
    }

    /// Everything but the recorded events.
    fn clone_counts(&self) -> TailReport {
        TailReport {
            by_type: self.by_type.clone(),
            invalid_by_reason: self.invalid_by_reason.clone(),
            seq: self.seq.clone(),
            info_by_name: self.info_by_name.clone(),
            error_by_name: self.error_by_name.clone(),
            events: None,
            end: self.end.clone(),
            ..*self
        }
    }
}

enum KeyState {
    Known(ParsedKey),
    Failed(&'static str),
    Pending(VecDeque<(Vec<u8>, u64)>),
}

#[derive(Default)]
struct Account {
    key: Option<KeyState>,
    rev: Option<Tid>,
    data: Option<Cid>,
}

/// The checker.
pub struct Checker {
    config: CheckerConfig,
    accounts: HashMap<String, Account>,
    report: TailReport,
    latency: Histogram,
    last_seq: Option<u64>,
    first_micros: Option<u64>,
    last_micros: u64,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("accounts", &self.accounts.len())
            .field("frames", &self.report.frames)
            .finish_non_exhaustive()
    }
}

impl Checker {
    /// A checker with nothing seen.
    pub fn new(config: CheckerConfig) -> Checker {
        Checker {
            config,
            accounts: HashMap::new(),
            report: TailReport {
                events: config.record_events.then(Vec::new),
                ..TailReport::default()
            },
            latency: Histogram::new(),
            last_seq: None,
            first_micros: None,
            last_micros: 0,
            scratch: Vec::new(),
        }
    }

    /// Give the checker a known key for `did` up front (tests, a pre-loaded cache).
    pub fn set_key(&mut self, did: &str, key: &PublicKey) {
        self.provide_key(did, Ok(key));
    }

    /// Take one WebSocket binary message received at `recv_micros`.
    pub fn feed(&mut self, bytes: &[u8], recv_micros: u64) -> Feed {
        match self.arrive(bytes, recv_micros) {
            Arrival::Keyed(did) => self.keyed(&did, bytes, recv_micros),
            Arrival::Done => Feed::Done,
            Arrival::IdentityChanged(did) => {
                self.forget_key(&did);
                Feed::IdentityChanged(did)
            }
        }
    }

    /// The arrival half of [`feed`](Self::feed), for a caller that spreads the keyed
    /// checks over several checkers (one per thread, by DID): seq order, type counts,
    /// latency, and the whole of unkeyed events. A `#commit`/`#sync` is returned as
    /// [`Arrival::Keyed`] for [`feed_keyed`](Self::feed_keyed) on the DID's checker.
    pub fn arrive(&mut self, bytes: &[u8], recv_micros: u64) -> Arrival {
        self.report.frames += 1;
        self.first_micros.get_or_insert(recv_micros);
        self.last_micros = self.last_micros.max(recv_micros);
        let frame = match Frame::decode(bytes) {
            Ok(frame) => frame,
            Err(e) => {
                self.count_type("undecodable");
                self.invalid(e.reason());
                return Arrival::Done;
            }
        };
        self.on_arrival(&frame, recv_micros);
        match frame.event() {
            Event::Commit(event) => Arrival::Keyed(event.repo().to_owned()),
            Event::Sync(event) => Arrival::Keyed(event.did().to_owned()),
            Event::Identity(event) => {
                self.valid_unkeyed(event.seq(), event.did(), "identity");
                Arrival::IdentityChanged(event.did().to_owned())
            }
            Event::Account(event) => {
                self.valid_unkeyed(event.seq(), event.did(), "account");
                Arrival::Done
            }
            Event::Info(_) | Event::Error(_) | Event::Unknown { .. } => Arrival::Done,
        }
    }

    /// The keyed half: check a `#commit`/`#sync` of `did` (already through
    /// [`arrive`](Self::arrive) somewhere), or park it and ask for the key.
    pub fn feed_keyed(&mut self, did: &str, bytes: &[u8], recv_micros: u64) -> Feed {
        self.keyed(did, bytes, recv_micros)
    }

    /// Forget the key of `did` (its identity changed); parked frames stay parked.
    pub fn forget_key(&mut self, did: &str) {
        if let Some(account) = self.accounts.get_mut(did)
            && matches!(account.key, Some(KeyState::Known(_) | KeyState::Failed(_)))
        {
            account.key = None;
        }
    }

    /// The key of `did` (or why it could not be had); checks the frames parked for it.
    pub fn provide_key(&mut self, did: &str, key: Result<&PublicKey, &'static str>) {
        let state = match key
            .map(|key| ParsedKey::with_backend(key, self.config.backends.for_curve(key.curve())))
        {
            Ok(Ok(parsed)) => KeyState::Known(parsed),
            Ok(Err(_)) => KeyState::Failed("key_unusable"),
            Err(reason) => KeyState::Failed(reason),
        };
        let account = self.account(did);
        let previous = account.key.replace(state);
        if let Some(KeyState::Pending(parked)) = previous {
            for (bytes, recv_micros) in parked {
                self.check_keyed(&bytes, recv_micros);
            }
        }
    }

    /// Frames fed so far.
    pub fn frames(&self) -> u64 {
        self.report.frames
    }

    /// The report so far.
    pub fn report(&self) -> TailReport {
        self.snapshot(true)
    }

    /// The report so far; without the recorded events unless `with_events` (cheap enough
    /// for a progress line each second).
    pub fn snapshot(&self, with_events: bool) -> TailReport {
        let mut report = TailReport {
            events: None,
            ..self.report.clone_counts()
        };
        if with_events {
            report.events = self.report.events.clone();
        }
        report.latency = self.latency.percentiles();
        report.pending = self
            .accounts
            .values()
            .map(|a| match &a.key {
                Some(KeyState::Pending(parked)) => parked.len() as u64,
                _ => 0,
            })
            .sum();
        let elapsed = self
            .last_micros
            .saturating_sub(self.first_micros.unwrap_or(0));
        report.elapsed_secs = elapsed as f64 / 1e6;
        if elapsed > 0 {
            report.events_per_sec = report.frames as f64 / report.elapsed_secs;
        }
        report
    }

    /// Seq order, type counts, info/error names and latency: taken when the frame arrives.
    fn on_arrival(&mut self, frame: &Frame<'_>, recv_micros: u64) {
        let (name, time) = match frame.event() {
            Event::Commit(e) => ("commit", Some(e.time())),
            Event::Sync(e) => ("sync", Some(e.time())),
            Event::Identity(e) => ("identity", Some(e.time())),
            Event::Account(e) => ("account", Some(e.time())),
            Event::Info(e) => {
                *self
                    .report
                    .info_by_name
                    .entry(e.name().to_owned())
                    .or_default() += 1;
                ("info", None)
            }
            Event::Error(e) => {
                *self
                    .report
                    .error_by_name
                    .entry(e.error().to_owned())
                    .or_default() += 1;
                ("error", None)
            }
            Event::Unknown { .. } => ("unknown", None),
        };
        self.count_type(name);
        if let Some(seq) = frame.seq() {
            self.check_seq(seq);
        }
        if let Some(time) = time {
            self.record_latency(time, recv_micros);
        }
    }

    fn check_seq(&mut self, seq: u64) {
        let seq_report = &mut self.report.seq;
        seq_report.first.get_or_insert(seq);
        match self.last_seq {
            Some(last) if seq <= last => {
                seq_report.duplicates += 1;
                push_example(&mut seq_report.duplicate_examples, seq);
                return;
            }
            Some(last) if seq > last + 1 => {
                seq_report.gaps += 1;
                seq_report.missing += seq - last - 1;
                push_example(&mut seq_report.gap_examples, seq);
            }
            _ => {}
        }
        self.last_seq = Some(seq);
        seq_report.last = Some(seq);
    }

    fn record_latency(&mut self, time: &str, recv_micros: u64) {
        let Ok(time) = Datetime::parse(time) else {
            self.report.latency_unparsed += 1;
            return;
        };
        let sent = u64::try_from(time.unix_micros()).unwrap_or(0);
        if sent > recv_micros {
            self.report.latency_negative += 1;
        }
        self.latency.record(recv_micros.saturating_sub(sent));
    }

    /// A `#commit` or `#sync`: check now if the key is known, otherwise park it.
    fn keyed(&mut self, did: &str, bytes: &[u8], recv_micros: u64) -> Feed {
        let account = self.account(did);
        match &mut account.key {
            Some(KeyState::Pending(parked)) => {
                if parked.len() >= TAIL_PENDING_FRAMES_PER_DID_MAX {
                    self.invalid("key_queue_full");
                } else {
                    parked.push_back((bytes.to_vec(), recv_micros));
                }
                Feed::Done
            }
            Some(_) => {
                self.check_keyed(bytes, recv_micros);
                Feed::Done
            }
            None => {
                account.key = Some(KeyState::Pending(VecDeque::from([(
                    bytes.to_vec(),
                    recv_micros,
                )])));
                Feed::NeedKey(did.to_owned())
            }
        }
    }

    /// Check a decoded-before `#commit`/`#sync` whose account key state is settled.
    fn check_keyed(&mut self, bytes: &[u8], recv_micros: u64) {
        let Ok(frame) = Frame::decode(bytes) else {
            return;
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        let (seq, did, rev, frame_type, verdict) = match frame.event() {
            Event::Commit(event) => {
                let verdict = self.check_commit(event, recv_micros, &mut scratch);
                (event.seq(), event.repo(), event.rev(), "commit", verdict)
            }
            Event::Sync(event) => {
                let verdict = self.check_sync(event, &mut scratch);
                (event.seq(), event.did(), event.rev(), "sync", verdict)
            }
            _ => return,
        };
        self.scratch = scratch;
        match verdict {
            Ok(()) => self.report.valid += 1,
            Err(reason) => self.invalid(reason),
        }
        self.record(SeenEvent {
            seq,
            did: did.to_owned(),
            rev: Some(rev.to_owned()),
            frame_type,
            valid: verdict.is_ok(),
        });
    }

    fn check_commit(
        &mut self,
        event: &CommitEvent<'_>,
        recv_micros: u64,
        scratch: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let account = self.accounts.get(event.repo()).ok_or("internal")?;
        let key = match &account.key {
            Some(KeyState::Known(key)) => key,
            Some(KeyState::Failed(reason)) => return Err(reason),
            _ => return Err("key_missing"),
        };
        if event.rebase() || event.too_big() {
            return Err("deprecated_field");
        }
        let mut blocks = Blocks::new();
        let root = blocks
            .load(event.blocks(), COMMIT_BLOCKS_MAX)
            .map_err(|e| e.reason())?;
        let block = blocks
            .get(&root)
            .filter(|_| root == event.commit())
            .ok_or("car_root_mismatch")?;
        let commit = signed_commit(block, key, scratch)?;
        if commit.did() != event.repo() {
            return Err("repo_mismatch");
        }
        if commit.rev() != Some(event.rev()) {
            return Err("rev_mismatch");
        }
        let rev = Tid::parse(event.rev()).map_err(|_| "bad_rev")?;
        if rev.timestamp_micros() > recv_micros.saturating_add(REV_FUTURE_SKEW_MICROS_MAX) {
            return Err("future_rev");
        }
        let (prior_rev, prior_data) = (account.rev, account.data);
        if prior_rev.is_some_and(|prior| rev <= prior) {
            self.report.rev_order_violations += 1;
            return Err("rev_not_newer");
        }
        check_inversion(event, &blocks, commit.data(), prior_data.is_some())?;
        let continuous = prior_rev.is_none_or(|prior| event.since() == Some(prior.as_str()))
            && prior_data.is_none_or(|prior| event.prev_data() == Some(prior));
        if !continuous {
            self.report.chain_breaks += 1;
        }
        let data = commit.data();
        let account = self.account(event.repo());
        account.rev = Some(rev);
        account.data = Some(data);
        Ok(())
    }

    fn check_sync(
        &mut self,
        event: &SyncEvent<'_>,
        scratch: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let account = self.accounts.get(event.did()).ok_or("internal")?;
        let key = match &account.key {
            Some(KeyState::Known(key)) => key,
            Some(KeyState::Failed(reason)) => return Err(reason),
            _ => return Err("key_missing"),
        };
        let mut blocks = Blocks::new();
        let root = blocks
            .load(event.blocks(), COMMIT_BLOCKS_MAX)
            .map_err(|e| e.reason())?;
        let block = blocks.get(&root).ok_or("car_root_mismatch")?;
        let commit = signed_commit(block, key, scratch)?;
        if commit.did() != event.did() {
            return Err("repo_mismatch");
        }
        if commit.rev() != Some(event.rev()) {
            return Err("rev_mismatch");
        }
        let rev = Tid::parse(event.rev()).map_err(|_| "bad_rev")?;
        if account.rev.is_some_and(|prior| rev < prior) {
            self.report.rev_order_violations += 1;
            return Err("rev_not_newer");
        }
        let data = commit.data();
        let account = self.account(event.did());
        account.rev = Some(rev);
        account.data = Some(data);
        Ok(())
    }

    fn valid_unkeyed(&mut self, seq: u64, did: &str, frame_type: &'static str) {
        self.report.valid += 1;
        self.record(SeenEvent {
            seq,
            did: did.to_owned(),
            rev: None,
            frame_type,
            valid: true,
        });
    }

    fn record(&mut self, event: SeenEvent) {
        let Some(events) = &mut self.report.events else {
            return;
        };
        if events.len() < TAIL_RECORDED_EVENTS_MAX {
            events.push(event);
        } else {
            self.report.events_truncated = true;
        }
    }

    fn count_type(&mut self, name: &'static str) {
        *self.report.by_type.entry(name).or_default() += 1;
    }

    fn invalid(&mut self, reason: &'static str) {
        self.report.invalid += 1;
        *self.report.invalid_by_reason.entry(reason).or_default() += 1;
    }

    /// The account's state, created if new. Over `TAIL_ACCOUNTS_MAX` an arbitrary other
    /// account without parked frames is forgotten first.
    fn account(&mut self, did: &str) -> &mut Account {
        if !self.accounts.contains_key(did) && self.accounts.len() >= TAIL_ACCOUNTS_MAX {
            let victim = self
                .accounts
                .iter()
                .find(|(_, a)| !matches!(a.key, Some(KeyState::Pending(_))))
                .map(|(did, _)| did.clone());
            if let Some(victim) = victim {
                self.accounts.remove(&victim);
            }
        }
        self.accounts.entry(did.to_owned()).or_default()
    }
}

/// Decode the commit block and verify its signature (version 3 only).
fn signed_commit<'a>(
    block: &'a [u8],
    key: &ParsedKey,
    scratch: &mut Vec<u8>,
) -> Result<Commit<'a>, &'static str> {
    let commit = Commit::decode(block).map_err(|_| "bad_commit")?;
    if commit.is_legacy() {
        return Err("commit_version");
    }
    commit.unsigned_bytes(scratch);
    key.verify(scratch, commit.sig())
        .map_err(|_| "bad_signature")?;
    Ok(commit)
}

/// Sync 1.1: undo the ops on the slice's tree; the result must be `prevData`.
fn check_inversion(
    event: &CommitEvent<'_>,
    blocks: &Blocks<'_>,
    data: Cid,
    has_prior: bool,
) -> Result<(), &'static str> {
    let Some(prev_data) = event.prev_data() else {
        return if has_prior {
            Err("missing_prev_data")
        } else {
            Ok(())
        };
    };
    let mut ops = Vec::with_capacity(event.ops_len());
    for op in event.ops() {
        let action = match (op.action, op.cid, op.prev) {
            (OpAction::Create, Some(cid), _) => Action::Create { cid },
            (OpAction::Update, Some(cid), Some(prev)) => Action::Update { cid, prev },
            (OpAction::Delete, _, Some(prev)) => Action::Delete { prev },
            _ => return Err("op_missing_prev"),
        };
        ops.push(Op {
            key: op.path.as_bytes(),
            action,
        });
    }
    match invert_ops(blocks, data, &ops) {
        Ok(root) if root == prev_data => Ok(()),
        _ => Err("mst_inversion"),
    }
}

fn push_example(examples: &mut Vec<u64>, seq: u64) {
    if examples.len() < TAIL_SEQ_EXAMPLES_MAX {
        examples.push(seq);
    }
}
