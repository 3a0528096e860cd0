//! The relay's rule set for `#commit` frames, as one pure function of (frame bytes,
//! the account's parsed key, the account's prior state, policy) → `Verified<H>` or a
//! `Rejection` with a bounded reason.
//!
//! Owns: the order of the checks and which failures drop (strict) versus mark the account
//! desynchronized and pass (the Sync 1.1 chain rule).
//! Must not: resolve identities, read or write state, or await; the caller passes the
//! key and prior state it already holds and applies [`Verified::next_state`] itself.
//!
//! Always checks: frame structure and size limits (via `frame::event`), deprecated
//! fields false, the CAR slice's hashes and that its root is the `commit` CID, the commit
//! object's version 3, its signature with the given key, `repo`/`rev` equal to the signed
//! commit's, rev a valid TID not more than five minutes in the future, rev newer than the
//! prior rev, and MST inversion of the ops on the slice giving `prevData`.
//! Does not check: host authority, account status, rate limits (the caller's state), or
//! record contents.

use crate::config::limits::{COMMIT_BLOCKS_MAX, REV_FUTURE_SKEW_MICROS_MAX};
use crate::frame::car::Blocks;
use crate::frame::car::recycle_vec;
use crate::frame::cid::Cid;
use crate::frame::event::{CommitEvent, Event, Frame, OpAction};
use crate::syntax::{Did, Handle, Tid};
use crate::verify::commit::{CommitSignatureError, verify_commit_signature};
use crate::verify::mst::{Action, Mst, Op};
use crate::verify::signature::ParsedKey;
use std::fmt;
use std::ops::Range;

/// What the relay last accepted for an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountState {
    /// The rev of the last accepted commit.
    pub rev: Tid,
    /// The MST root (`data`) of the last accepted commit.
    pub data: Cid,
}

/// How strictly to judge, and the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Now, in microseconds since the Unix epoch (for the future-rev rule).
    pub now_micros: u64,
    /// `false` = lenient: what strict would drop passes, still labelled.
    pub strict: bool,
}

/// Why a frame is refused. Each variant has its own metric label.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The frame does not decode (the label names the decoder's reason).
    Decode(&'static str),
    /// Not a `#commit` frame (this function judges commits only).
    NotACommit,
    /// `rebase` or `tooBig` set.
    DeprecatedField,
    /// The CAR slice is malformed or a block does not match its CID.
    BadCar(&'static str),
    /// The CAR root is not the event's `commit` CID, or the commit block is missing.
    CarRootMismatch,
    /// The commit object is malformed.
    BadCommit(&'static str),
    /// A commit version other than 3.
    CommitVersion,
    /// The signature does not verify with the account's key.
    BadSignature(&'static str),
    /// `repo` is not the signed commit's DID.
    RepoMismatch,
    /// `rev` is not the signed commit's rev.
    RevMismatch,
    /// `rev` is not a TID.
    BadRev,
    /// `rev` is more than the allowed skew in the future.
    FutureRev,
    /// `rev` is not newer than the account's last accepted rev.
    RevNotNewer,
    /// An update or delete without `prev`: the ops cannot be inverted.
    OpMissingPrev,
    /// Inverting the ops on the slice failed or did not give `prevData`.
    MstInversion(&'static str),
    /// No `prevData` although the relay holds prior state for the account.
    MissingPrevData,
    /// The frame is not of the type the called rule judges.
    UnexpectedType,
    /// The event's `did` is not a valid DID.
    BadDid,
    /// An `#identity` event's handle is not a valid handle.
    BadHandle,
}

impl Rejection {
    /// The bounded metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Decode(_) => "decode",
            Rejection::NotACommit => "not_a_commit",
            Rejection::DeprecatedField => "deprecated_field",
            Rejection::BadCar(_) => "bad_car",
            Rejection::CarRootMismatch => "car_root_mismatch",
            Rejection::BadCommit(_) => "bad_commit",
            Rejection::CommitVersion => "commit_version",
            Rejection::BadSignature(_) => "bad_signature",
            Rejection::RepoMismatch => "repo_mismatch",
            Rejection::RevMismatch => "rev_mismatch",
            Rejection::BadRev => "bad_rev",
            Rejection::FutureRev => "future_rev",
            Rejection::RevNotNewer => "rev_not_newer",
            Rejection::OpMissingPrev => "op_missing_prev",
            Rejection::MstInversion(_) => "mst_inversion",
            Rejection::MissingPrevData => "missing_prev_data",
            Rejection::UnexpectedType => "unexpected_type",
            Rejection::BadDid => "bad_did",
            Rejection::BadHandle => "bad_handle",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Decode(detail)
            | Rejection::BadCar(detail)
            | Rejection::BadCommit(detail)
            | Rejection::BadSignature(detail)
            | Rejection::MstInversion(detail) => write!(f, "{}: {detail}", self.reason()),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for Rejection {}

/// The event type of a verified frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VerifiedKind {
    /// `#commit`.
    Commit,
    /// `#sync`.
    Sync,
    /// `#identity`.
    Identity,
    /// `#account`.
    Account,
}

impl VerifiedKind {
    /// The bounded `frame_type` label.
    pub fn label(self) -> &'static str {
        match self {
            VerifiedKind::Commit => "commit",
            VerifiedKind::Sync => "sync",
            VerifiedKind::Identity => "identity",
            VerifiedKind::Account => "account",
        }
    }
}

/// A frame that passed every rule. Only this module builds one; the sequencer accepts
/// nothing else.
#[derive(Debug)]
pub struct Verified<H> {
    frame: H,
    kind: VerifiedKind,
    did_span: Range<usize>,
    seq_span: Range<usize>,
    next_state: Option<AccountState>,
    commit_cid: Option<Cid>,
    desynchronized: bool,
    lenient_pass: Option<Rejection>,
}

impl<H: AsRef<[u8]>> Verified<H> {
    /// The frame (e.g. a shared-memory frame handle).
    pub fn frame(&self) -> &H {
        &self.frame
    }

    /// Give the frame back.
    pub fn into_frame(self) -> H {
        self.frame
    }

    /// The account's DID.
    pub fn did(&self) -> &str {
        self.frame
            .as_ref()
            .get(self.did_span.clone())
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or_default()
    }

    /// Where the upstream `seq` value sits in the frame: the sequencer replaces exactly
    /// these bytes.
    pub fn seq_span(&self) -> Range<usize> {
        self.seq_span.clone()
    }

    /// The account state to store once the frame is sequenced (`#commit` and `#sync`;
    /// `None` for events that do not move the repo).
    pub fn next_state(&self) -> Option<AccountState> {
        self.next_state
    }

    /// The CID of the signed commit block the frame moves the repo to: for `#commit` its
    /// `commit` field (checked equal to the CAR root), for `#sync` the CAR root; `None`
    /// for events that do not move the repo. Stored as the repo's `head`.
    pub fn commit_cid(&self) -> Option<Cid> {
        self.commit_cid
    }

    /// The event type.
    pub fn kind(&self) -> VerifiedKind {
        self.kind
    }

    /// True when `since`/`prevData` did not continue the stored chain (Sync 1.1: mark
    /// the account desynchronized, count it, pass the frame).
    pub fn desynchronized(&self) -> bool {
        self.desynchronized
    }

    /// In lenient mode, the rule strict mode would have dropped the frame for.
    pub fn lenient_pass(&self) -> Option<&Rejection> {
        self.lenient_pass.as_ref()
    }
}

/// Reusable working memory of the rules: the CAR block index, the unsigned-commit
/// encoding, the op list and the MST arena. One per ingest core; with it, judging a frame
/// allocates nothing once the buffers have grown to the largest frame seen.
#[derive(Debug, Default)]
pub struct VerifyScratch {
    blocks: Vec<(Cid, &'static [u8])>,
    unsigned: Vec<u8>,
    ops: Vec<Op<'static>>,
    mst: Mst,
}

impl VerifyScratch {
    /// Empty buffers.
    pub fn new() -> Self {
        VerifyScratch::default()
    }
}

/// Judge one `#commit` frame. On refusal the frame is handed back with the reason.
pub fn verify_commit_frame<H: AsRef<[u8]>>(
    frame: H,
    key: &ParsedKey,
    prior: Option<&AccountState>,
    policy: &Policy,
) -> Result<Verified<H>, (H, Rejection)> {
    verify_commit_frame_with(frame, key, prior, policy, &mut VerifyScratch::new())
}

/// [`verify_commit_frame`] with the caller's reusable working memory.
pub fn verify_commit_frame_with<H: AsRef<[u8]>>(
    frame: H,
    key: &ParsedKey,
    prior: Option<&AccountState>,
    policy: &Policy,
    scratch: &mut VerifyScratch,
) -> Result<Verified<H>, (H, Rejection)> {
    let mut blocks = Blocks::with_buffer(recycle_vec(std::mem::take(&mut scratch.blocks)));
    let mut ops = recycle_vec(std::mem::take(&mut scratch.ops));
    let judged = judge(
        frame.as_ref(),
        key,
        prior,
        policy,
        &mut Working {
            blocks: &mut blocks,
            ops: &mut ops,
            unsigned: &mut scratch.unsigned,
            mst: &mut scratch.mst,
        },
    );
    scratch.blocks = blocks.recycle();
    scratch.ops = recycle_vec(ops);
    match judged {
        Ok(judged) => Ok(judged.into_verified(frame)),
        Err(rejection) => Err((frame, rejection)),
    }
}

/// Judge one `#sync` frame: the signed commit it announces (CAR root = the commit block,
/// signature with the account's key, `did`/`rev` matching the signed commit, rev a TID
/// not in the future and newer than the prior rev). A passing `#sync` resets the
/// account's state to the announced commit.
pub fn verify_sync_frame<H: AsRef<[u8]>>(
    frame: H,
    key: &ParsedKey,
    prior: Option<&AccountState>,
    policy: &Policy,
) -> Result<Verified<H>, (H, Rejection)> {
    match judge_sync(frame.as_ref(), key, prior, policy) {
        Ok(judged) => Ok(judged.into_verified(frame)),
        Err(rejection) => Err((frame, rejection)),
    }
}

/// Judge one `#identity` or `#account` frame: structure, a valid DID, a valid handle when
/// present. These events carry no signature; the caller re-resolves the identity
/// (`#identity`) or records the upstream status (`#account`).
pub fn verify_status_frame<H: AsRef<[u8]>>(frame: H) -> Result<Verified<H>, (H, Rejection)> {
    match judge_status(frame.as_ref()) {
        Ok(judged) => Ok(judged.into_verified(frame)),
        Err(rejection) => Err((frame, rejection)),
    }
}

struct Judged {
    kind: VerifiedKind,
    did_span: Range<usize>,
    seq_span: Range<usize>,
    next_state: Option<AccountState>,
    commit_cid: Option<Cid>,
    desynchronized: bool,
    lenient_pass: Option<Rejection>,
}

impl Judged {
    fn into_verified<H>(self, frame: H) -> Verified<H> {
        Verified {
            frame,
            kind: self.kind,
            did_span: self.did_span,
            seq_span: self.seq_span,
            next_state: self.next_state,
            commit_cid: self.commit_cid,
            desynchronized: self.desynchronized,
            lenient_pass: self.lenient_pass,
        }
    }
}

fn judge_sync(
    bytes: &[u8],
    key: &ParsedKey,
    prior: Option<&AccountState>,
    policy: &Policy,
) -> Result<Judged, Rejection> {
    let frame = Frame::decode(bytes).map_err(|e| Rejection::Decode(e.reason()))?;
    let Event::Sync(event) = frame.event() else {
        return Err(Rejection::UnexpectedType);
    };
    let mut blocks = Blocks::new();
    let root = blocks
        .load(event.blocks(), COMMIT_BLOCKS_MAX)
        .map_err(|e| Rejection::BadCar(e.reason()))?;
    let commit_block = blocks.get(&root).ok_or(Rejection::CarRootMismatch)?;
    let mut scratch = Vec::new();
    let commit = verify_commit_signature(commit_block, key, &mut scratch).map_err(|e| match e {
        CommitSignatureError::Commit(e) => Rejection::BadCommit(e.reason()),
        CommitSignatureError::Signature(e) => Rejection::BadSignature(e.reason()),
    })?;
    if commit.is_legacy() {
        return Err(Rejection::CommitVersion);
    }
    if commit.did() != event.did() {
        return Err(Rejection::RepoMismatch);
    }
    if commit.rev() != Some(event.rev()) {
        return Err(Rejection::RevMismatch);
    }
    // A #sync may announce the commit the relay already holds (equal rev): only an
    // older rev is a rollback.
    let rev = check_rev(
        event.rev(),
        prior.filter(|p| p.rev.as_str() != event.rev()),
        policy,
    )?;
    Ok(Judged {
        kind: VerifiedKind::Sync,
        did_span: span_of(bytes, event.did()),
        seq_span: frame.seq_span().ok_or(Rejection::Decode("missing_seq"))?,
        next_state: Some(AccountState {
            rev,
            data: commit.data(),
        }),
        commit_cid: Some(root),
        desynchronized: false,
        lenient_pass: None,
    })
}

fn judge_status(bytes: &[u8]) -> Result<Judged, Rejection> {
    let frame = Frame::decode(bytes).map_err(|e| Rejection::Decode(e.reason()))?;
    let (kind, did) = match frame.event() {
        Event::Identity(event) => {
            if let Some(handle) = event.handle() {
                Handle::parse(handle).map_err(|_| Rejection::BadHandle)?;
            }
            (VerifiedKind::Identity, event.did())
        }
        Event::Account(event) => (VerifiedKind::Account, event.did()),
        _ => return Err(Rejection::UnexpectedType),
    };
    Did::parse(did).map_err(|_| Rejection::BadDid)?;
    Ok(Judged {
        kind,
        did_span: span_of(bytes, did),
        seq_span: frame.seq_span().ok_or(Rejection::Decode("missing_seq"))?,
        next_state: None,
        commit_cid: None,
        desynchronized: false,
        lenient_pass: None,
    })
}

/// The borrowed working memory of one judgement.
struct Working<'w, 'a> {
    blocks: &'w mut Blocks<'a>,
    ops: &'w mut Vec<Op<'a>>,
    unsigned: &'w mut Vec<u8>,
    mst: &'w mut Mst,
}

fn judge<'a>(
    bytes: &'a [u8],
    key: &ParsedKey,
    prior: Option<&AccountState>,
    policy: &Policy,
    working: &mut Working<'_, 'a>,
) -> Result<Judged, Rejection> {
    let frame = Frame::decode(bytes).map_err(|e| Rejection::Decode(e.reason()))?;
    let Event::Commit(event) = frame.event() else {
        return Err(Rejection::NotACommit);
    };
    if event.rebase() || event.too_big() {
        return Err(Rejection::DeprecatedField);
    }
    let root = working
        .blocks
        .load(event.blocks(), COMMIT_BLOCKS_MAX)
        .map_err(|e| Rejection::BadCar(e.reason()))?;
    let commit_block = working
        .blocks
        .get(&root)
        .filter(|_| root == event.commit())
        .ok_or(Rejection::CarRootMismatch)?;
    let commit =
        verify_commit_signature(commit_block, key, working.unsigned).map_err(|e| match e {
            CommitSignatureError::Commit(e) => Rejection::BadCommit(e.reason()),
            CommitSignatureError::Signature(e) => Rejection::BadSignature(e.reason()),
        })?;
    if commit.is_legacy() {
        return Err(Rejection::CommitVersion);
    }
    if commit.did() != event.repo() {
        return Err(Rejection::RepoMismatch);
    }
    if commit.rev() != Some(event.rev()) {
        return Err(Rejection::RevMismatch);
    }
    let rev = check_rev(event.rev(), prior, policy)?;
    let mut lenient_pass = None;
    if let Err(rejection) = check_inversion(event, commit.data(), prior, working) {
        if policy.strict {
            return Err(rejection);
        }
        lenient_pass = Some(rejection);
    }
    let desynchronized = prior.is_some_and(|prior| {
        event.since() != Some(prior.rev.as_str()) || event.prev_data() != Some(prior.data)
    });
    Ok(Judged {
        kind: VerifiedKind::Commit,
        did_span: span_of(bytes, event.repo()),
        seq_span: frame.seq_span().ok_or(Rejection::Decode("missing_seq"))?,
        next_state: Some(AccountState {
            rev,
            data: commit.data(),
        }),
        // The CAR root, checked equal to the frame's `commit` field above.
        commit_cid: Some(root),
        desynchronized,
        lenient_pass,
    })
}

fn check_rev(rev: &str, prior: Option<&AccountState>, policy: &Policy) -> Result<Tid, Rejection> {
    let rev = Tid::parse(rev).map_err(|_| Rejection::BadRev)?;
    if rev.timestamp_micros() > policy.now_micros.saturating_add(REV_FUTURE_SKEW_MICROS_MAX) {
        return Err(Rejection::FutureRev);
    }
    if prior.is_some_and(|prior| rev <= prior.rev) {
        return Err(Rejection::RevNotNewer);
    }
    Ok(rev)
}

/// Sync 1.1: undo the ops on the tree the slice proves and compare with `prevData`.
fn check_inversion<'a>(
    event: &CommitEvent<'a>,
    data: Cid,
    prior: Option<&AccountState>,
    working: &mut Working<'_, 'a>,
) -> Result<(), Rejection> {
    let Some(prev_data) = event.prev_data() else {
        // A first commit from an account the relay holds no state for is accepted
        // without a proof (the documented bootstrap rule); otherwise prevData is required.
        return if prior.is_some() {
            Err(Rejection::MissingPrevData)
        } else {
            Ok(())
        };
    };
    let ops = &mut *working.ops;
    ops.clear();
    for op in event.ops() {
        let action = match (op.action, op.cid, op.prev) {
            (OpAction::Create, Some(cid), _) => Action::Create { cid },
            (OpAction::Update, Some(cid), Some(prev)) => Action::Update { cid, prev },
            (OpAction::Delete, _, Some(prev)) => Action::Delete { prev },
            _ => return Err(Rejection::OpMissingPrev),
        };
        ops.push(Op {
            key: op.path.as_bytes(),
            action,
        });
    }
    working.mst.reset(data);
    let inverted = working
        .mst
        .invert(&*working.blocks, ops)
        .and_then(|()| working.mst.root());
    match inverted {
        Ok(root) if root == prev_data => Ok(()),
        Ok(_) => Err(Rejection::MstInversion("root_differs_from_prev_data")),
        Err(e) => Err(Rejection::MstInversion(e.reason())),
    }
}

/// The byte range of `part` inside `whole` (a sub-slice of it).
fn span_of(whole: &[u8], part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    start..start + part.len()
}
