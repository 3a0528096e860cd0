//! Firehose frames of `com.atproto.sync.subscribeRepos`: one WebSocket binary message is a
//! DAG-CBOR header `{op, t?}` followed by a DAG-CBOR body (atproto event-stream spec,
//! <https://atproto.com/specs/event-stream>). [`Frame::decode`] turns a message into a
//! borrowed view ([`Event`]) without allocating; the `*Owned` builders write canonical
//! frames (the simulator, the tests, and the relay's own `#account`/`#info`/error frames).
//!
//! Owns: the frame grammar, the message shapes of the `subscribeRepos` lexicon and their
//! size limits, and the byte layout the sequencer needs to renumber a frame without
//! re-encoding it: the header and body ranges, the span of the encoded `seq` value
//! ([`Frame::seq_span`]) and the canonical bytes of a new one ([`encode_seq_patch`]).
//!
//! Must not: load or hash-check the CAR in `blocks` (that is `frame::car`), verify
//! signatures, MST proofs, rev ordering or account state (that is `verify` and the relay),
//! or do IO.
//!
//! Always checks: the message size; strict DAG-CBOR for both items and nothing after the
//! body; header `op` is 1 or -1 and `t` is text when `op` is 1; every required lexicon
//! field is present with its lexicon type; `seq` is in `0..=i64::MAX` (a lexicon integer);
//! link fields hold atproto CIDs; `blocks` and `ops` are within their limits; op actions
//! are create/update/delete, with `cid` set for create and update and null for delete;
//! DID, handle and op path lengths.
//!
//! Does not check: DID, handle, TID, NSID or datetime syntax (the `syntax` and `verify`
//! layers do), nor the contents of `blocks`.
//!
//! Forward compatibility: unknown header and body fields are ignored, as the event-stream
//! spec asks, so a newer PDS adding a field still gets through (and the relay passes the
//! bytes on unchanged). An unknown `t` decodes as [`Event::Unknown`] for the caller to
//! skip. An unknown `op` is [`FrameError::UnknownOp`]; the spec asks consumers to skip
//! such frames rather than drop the connection, which the caller decides from the variant.
//!
//! Tolerated deviation: `blobs: null` (Go encoders write an empty slice as null, and the
//! indigo vectors carry it) reads as an empty list.

use crate::config::limits::{
    COMMIT_BLOCKS_BYTES_MAX, COMMIT_OPS_MAX, DID_LENGTH_BYTES_MAX, FRAME_SIZE_BYTES_MAX,
    HANDLE_LENGTH_BYTES_MAX, REPO_OP_PATH_LENGTH_BYTES_MAX, SYNC_BLOCKS_BYTES_MAX,
};
use crate::frame::cbor::{self, Array, ArrayIter, DecodeError, Encoder, Map, Value};
use crate::frame::cid::Cid;
use std::fmt;
use std::ops::Range;

/// Header `t` of a `#commit` message.
pub const TYPE_COMMIT: &str = "#commit";
/// Header `t` of a `#sync` message.
pub const TYPE_SYNC: &str = "#sync";
/// Header `t` of an `#identity` message.
pub const TYPE_IDENTITY: &str = "#identity";
/// Header `t` of an `#account` message.
pub const TYPE_ACCOUNT: &str = "#account";
/// Header `t` of an `#info` message.
pub const TYPE_INFO: &str = "#info";

/// Why a message is not a well-formed firehose frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The message is larger than `FRAME_SIZE_BYTES_MAX`.
    FrameTooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// The header is not one valid DAG-CBOR item.
    HeaderNotCbor(DecodeError),
    /// The header is not a map.
    HeaderNotMap,
    /// Header `op` other than 1 (message) or -1 (error). The spec asks consumers to skip
    /// such frames.
    UnknownOp {
        /// The op, saturated to the i64 range.
        op: i64,
    },
    /// Nothing after the header.
    MissingBody,
    /// The body is not one valid DAG-CBOR item (offsets are relative to the body).
    BodyNotCbor(DecodeError),
    /// The body is not a map.
    BodyNotMap,
    /// Bytes after the body.
    TrailingBytes {
        /// Offset of the first extra byte in the message.
        offset: usize,
    },
    /// A required field is absent (nested op fields are named `op.<field>`).
    MissingField(&'static str),
    /// A field has the wrong type.
    WrongFieldType(&'static str),
    /// An integer field outside its range (a negative or above-i64 `seq`).
    FieldOutOfRange(&'static str),
    /// A text field longer than its bound.
    FieldTooLong(&'static str),
    /// A link field holding a CID atproto does not use (not v1 sha2-256 dag-cbor/raw).
    InvalidCid(&'static str),
    /// `blocks` longer than the limit of its message type.
    BlocksTooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// More ops than `COMMIT_OPS_MAX`.
    TooManyOps {
        /// How many the commit carries.
        count: u64,
    },
    /// An op action other than create, update or delete.
    BadOpAction,
    /// An op whose `cid` is null for a create/update or set for a delete.
    OpCidMismatch,
    /// A broken internal invariant; never expected on any input.
    Internal,
}

impl FrameError {
    /// A short, bounded label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::FrameTooLarge { .. } => "frame_too_large",
            FrameError::HeaderNotCbor(_) => "frame_header_not_cbor",
            FrameError::HeaderNotMap => "frame_header_not_map",
            FrameError::UnknownOp { .. } => "frame_unknown_op",
            FrameError::MissingBody => "frame_missing_body",
            FrameError::BodyNotCbor(_) => "frame_body_not_cbor",
            FrameError::BodyNotMap => "frame_body_not_map",
            FrameError::TrailingBytes { .. } => "frame_trailing_bytes",
            FrameError::MissingField(_) => "frame_missing_field",
            FrameError::WrongFieldType(_) => "frame_wrong_field_type",
            FrameError::FieldOutOfRange(_) => "frame_field_out_of_range",
            FrameError::FieldTooLong(_) => "frame_field_too_long",
            FrameError::InvalidCid(_) => "frame_invalid_cid",
            FrameError::BlocksTooLarge { .. } => "frame_blocks_too_large",
            FrameError::TooManyOps { .. } => "frame_too_many_ops",
            FrameError::BadOpAction => "frame_bad_op_action",
            FrameError::OpCidMismatch => "frame_op_cid_mismatch",
            FrameError::Internal => "frame_internal",
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::FrameTooLarge { len } => write!(
                f,
                "frame of {len} bytes exceeds {FRAME_SIZE_BYTES_MAX} bytes"
            ),
            FrameError::HeaderNotCbor(e) => write!(f, "frame header: {e}"),
            FrameError::UnknownOp { op } => write!(f, "frame header op {op} is unknown"),
            FrameError::BodyNotCbor(e) => write!(f, "frame body: {e}"),
            FrameError::TrailingBytes { offset } => {
                write!(f, "frame has bytes after the body at byte {offset}")
            }
            FrameError::MissingField(field) => write!(f, "frame field `{field}` is missing"),
            FrameError::WrongFieldType(field) => {
                write!(f, "frame field `{field}` has the wrong type")
            }
            FrameError::FieldOutOfRange(field) => {
                write!(f, "frame field `{field}` is out of range")
            }
            FrameError::FieldTooLong(field) => write!(f, "frame field `{field}` is too long"),
            FrameError::InvalidCid(field) => {
                write!(f, "frame field `{field}` is not an atproto CID")
            }
            FrameError::BlocksTooLarge { len } => write!(f, "frame blocks of {len} bytes"),
            FrameError::TooManyOps { count } => {
                write!(f, "commit has {count} ops, more than {COMMIT_OPS_MAX}")
            }
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for FrameError {}

/// A decoded firehose frame: the message bytes, their layout, and the typed view.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame<'a> {
    message: &'a [u8],
    header_len: usize,
    seq_span: Option<Range<usize>>,
    event: Event<'a>,
}

/// The body of a frame, by header type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event<'a> {
    /// `#commit`: a repo commit with its CAR diff.
    Commit(CommitEvent<'a>),
    /// `#sync`: a repo reset to a new commit.
    Sync(SyncEvent<'a>),
    /// `#identity`: an identity changed.
    Identity(IdentityEvent<'a>),
    /// `#account`: an account's hosting status changed.
    Account(AccountEvent<'a>),
    /// `#info`: an informational message from the server.
    Info(InfoEvent<'a>),
    /// An error frame (`op: -1`).
    Error(ErrorFrame<'a>),
    /// A message type this crate does not know; the spec says to ignore it.
    Unknown {
        /// The header `t`.
        t: &'a str,
    },
}

impl<'a> Frame<'a> {
    /// Decode one whole WebSocket binary message.
    pub fn decode(message: &'a [u8]) -> Result<Frame<'a>, FrameError> {
        if message.len() > FRAME_SIZE_BYTES_MAX {
            return Err(FrameError::FrameTooLarge { len: message.len() });
        }
        let (header, rest) = cbor::decode_prefix(message).map_err(FrameError::HeaderNotCbor)?;
        let header_len = message.len() - rest.len();
        let kind = parse_header(header)?;
        if rest.is_empty() {
            return Err(FrameError::MissingBody);
        }
        let (body, trailing) = cbor::decode_prefix(rest).map_err(FrameError::BodyNotCbor)?;
        if !trailing.is_empty() {
            return Err(FrameError::TrailingBytes {
                offset: message.len() - trailing.len(),
            });
        }
        let Value::Map(body) = body else {
            return Err(FrameError::BodyNotMap);
        };
        let (event, seq_span) = decode_body(kind, body, message)?;
        Ok(Frame {
            message,
            header_len,
            seq_span,
            event,
        })
    }

    /// The typed body.
    pub fn event(&self) -> &Event<'a> {
        &self.event
    }

    /// The typed body, by value.
    pub fn into_event(self) -> Event<'a> {
        self.event
    }

    /// The whole message.
    pub fn bytes(&self) -> &'a [u8] {
        self.message
    }

    /// The encoded header.
    pub fn header_bytes(&self) -> &'a [u8] {
        self.message.get(..self.header_len).unwrap_or_default()
    }

    /// The encoded body.
    pub fn body_bytes(&self) -> &'a [u8] {
        self.message.get(self.header_len..).unwrap_or_default()
    }

    /// The sequence number, for the message types that have one.
    pub fn seq(&self) -> Option<u64> {
        self.event.seq()
    }

    /// Where the encoded `seq` value (the CBOR unsigned item, head included) sits in the
    /// whole message ([`Frame::bytes`]; subtract `header_bytes().len()` for a body offset).
    /// `None` for messages without a `seq` (info, error, unknown).
    pub fn seq_span(&self) -> Option<Range<usize>> {
        self.seq_span.clone()
    }

    /// The three pieces of this frame renumbered to `new_seq`: the bytes before the old
    /// `seq`, the canonical bytes of the new one, and the bytes after. Only the uint item
    /// changes (the map length does not), so the pieces concatenated are the canonical
    /// frame with the new `seq`, whatever the widths. `None` when the frame has no `seq`.
    pub fn seq_patch(&self, new_seq: u64) -> Option<SeqPatch<'a>> {
        let span = self.seq_span.clone()?;
        let prefix = self.message.get(..span.start)?;
        let suffix = self.message.get(span.end..)?;
        let (seq, seq_len) = encode_seq_patch(new_seq);
        Some(SeqPatch {
            prefix,
            seq,
            seq_len,
            suffix,
        })
    }
}

impl<'a> Event<'a> {
    /// The sequence number, for the message types that have one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Event::Commit(e) => Some(e.seq),
            Event::Sync(e) => Some(e.seq),
            Event::Identity(e) => Some(e.seq),
            Event::Account(e) => Some(e.seq),
            Event::Info(_) | Event::Error(_) | Event::Unknown { .. } => None,
        }
    }

    /// The account the event is about (`repo` of a commit, `did` otherwise).
    pub fn did(&self) -> Option<&'a str> {
        match self {
            Event::Commit(e) => Some(e.repo),
            Event::Sync(e) => Some(e.did),
            Event::Identity(e) => Some(e.did),
            Event::Account(e) => Some(e.did),
            Event::Info(_) | Event::Error(_) | Event::Unknown { .. } => None,
        }
    }
}

/// A frame split around its `seq` for a gather write: `prefix ‖ seq ‖ suffix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqPatch<'a> {
    prefix: &'a [u8],
    seq: [u8; 9],
    seq_len: usize,
    suffix: &'a [u8],
}

impl<'a> SeqPatch<'a> {
    /// The original bytes before the `seq` value.
    pub fn prefix(&self) -> &'a [u8] {
        self.prefix
    }

    /// The canonical bytes of the new `seq`.
    pub fn seq_bytes(&self) -> &[u8] {
        self.seq.get(..self.seq_len).unwrap_or_default()
    }

    /// The original bytes after the `seq` value.
    pub fn suffix(&self) -> &'a [u8] {
        self.suffix
    }

    /// Length of the renumbered frame.
    pub fn len(&self) -> usize {
        self.prefix.len() + self.seq_len + self.suffix.len()
    }

    /// Always false: a frame is never empty. Present for the `len` convention.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append the renumbered frame.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.len());
        out.extend_from_slice(self.prefix);
        out.extend_from_slice(self.seq_bytes());
        out.extend_from_slice(self.suffix);
    }
}

/// The canonical DAG-CBOR bytes of `seq` as an unsigned integer: the buffer and how many
/// of its bytes are used (1, 2, 3, 5 or 9).
pub const fn encode_seq_patch(seq: u64) -> ([u8; 9], usize) {
    let [b0, b1, b2, b3, b4, b5, b6, b7] = seq.to_be_bytes();
    if seq < 24 {
        ([b7, 0, 0, 0, 0, 0, 0, 0, 0], 1)
    } else if seq <= 0xff {
        ([24, b7, 0, 0, 0, 0, 0, 0, 0], 2)
    } else if seq <= 0xffff {
        ([25, b6, b7, 0, 0, 0, 0, 0, 0], 3)
    } else if seq <= 0xffff_ffff {
        ([26, b4, b5, b6, b7, 0, 0, 0, 0], 5)
    } else {
        ([27, b0, b1, b2, b3, b4, b5, b6, b7], 9)
    }
}

// ---- views ----

/// A `#commit` body.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CommitEvent<'a> {
    seq: u64,
    rebase: bool,
    too_big: bool,
    repo: &'a str,
    commit: Cid,
    rev: &'a str,
    since: Option<&'a str>,
    blocks: &'a [u8],
    ops: Array<'a>,
    blobs: Option<Array<'a>>,
    prev_data: Option<Cid>,
    time: &'a str,
}

impl<'a> CommitEvent<'a> {
    /// Stream sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// Deprecated, unused.
    pub fn rebase(&self) -> bool {
        self.rebase
    }
    /// Deprecated: the commit was too big to include its data.
    pub fn too_big(&self) -> bool {
        self.too_big
    }
    /// The repo's DID.
    pub fn repo(&self) -> &'a str {
        self.repo
    }
    /// CID of the commit object (the CAR's root).
    pub fn commit(&self) -> Cid {
        self.commit
    }
    /// Rev of this commit.
    pub fn rev(&self) -> &'a str {
        self.rev
    }
    /// Rev of the previous commit, if any.
    pub fn since(&self) -> Option<&'a str> {
        self.since
    }
    /// The CAR slice (not yet parsed).
    pub fn blocks(&self) -> &'a [u8] {
        self.blocks
    }
    /// The record operations, parsed lazily (they were validated by `decode`).
    pub fn ops(&self) -> RepoOps<'a> {
        RepoOps {
            inner: self.ops.iter(),
            left: self.ops.len() as usize,
        }
    }
    /// Number of ops.
    pub fn ops_len(&self) -> usize {
        self.ops.len() as usize
    }
    /// Deprecated blob CIDs (a null list reads as empty).
    pub fn blobs(&self) -> impl Iterator<Item = Cid> + 'a {
        self.blobs
            .into_iter()
            .flat_map(|array| array.iter())
            .filter_map(|item| match item {
                Value::Link(cid) => Cid::try_from(cid).ok(),
                _ => None,
            })
    }
    /// MST root of the previous commit (Sync 1.1).
    pub fn prev_data(&self) -> Option<Cid> {
        self.prev_data
    }
    /// When the event was first broadcast (datetime string).
    pub fn time(&self) -> &'a str {
        self.time
    }

    /// Copy into a builder.
    pub fn into_owned(self) -> CommitEventOwned {
        CommitEventOwned {
            seq: self.seq,
            rebase: self.rebase,
            too_big: self.too_big,
            repo: self.repo.to_owned(),
            commit: self.commit,
            rev: self.rev.to_owned(),
            since: self.since.map(str::to_owned),
            blocks: self.blocks.to_vec(),
            ops: self.ops().map(RepoOp::into_owned).collect(),
            blobs: self.blobs().collect(),
            prev_data: self.prev_data,
            time: self.time.to_owned(),
        }
    }
}

/// What an op does to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpAction {
    /// A new record.
    Create,
    /// A changed record.
    Update,
    /// A removed record.
    Delete,
}

impl OpAction {
    /// The lexicon string.
    pub fn as_str(self) -> &'static str {
        match self {
            OpAction::Create => "create",
            OpAction::Update => "update",
            OpAction::Delete => "delete",
        }
    }

    fn parse(text: &str) -> Result<OpAction, FrameError> {
        match text {
            "create" => Ok(OpAction::Create),
            "update" => Ok(OpAction::Update),
            "delete" => Ok(OpAction::Delete),
            _ => Err(FrameError::BadOpAction),
        }
    }
}

/// One record operation of a commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepoOp<'a> {
    /// Create, update or delete.
    pub action: OpAction,
    /// `<collection>/<rkey>`.
    pub path: &'a str,
    /// The new record's CID (create, update); `None` for a delete.
    pub cid: Option<Cid>,
    /// The previous record's CID (update, delete; Sync 1.1).
    pub prev: Option<Cid>,
}

impl RepoOp<'_> {
    /// Copy into a builder.
    pub fn into_owned(self) -> RepoOpOwned {
        RepoOpOwned {
            action: self.action,
            path: self.path.to_owned(),
            cid: self.cid,
            prev: self.prev,
        }
    }
}

/// Iterator over the ops of a [`CommitEvent`].
#[derive(Clone, Debug)]
pub struct RepoOps<'a> {
    inner: ArrayIter<'a>,
    left: usize,
}

impl<'a> Iterator for RepoOps<'a> {
    type Item = RepoOp<'a>;

    fn next(&mut self) -> Option<RepoOp<'a>> {
        // Every op passed `parse_op` in `decode`, so this cannot fail; ending the
        // iteration is the safe answer if it somehow did.
        let op = parse_op(self.inner.next()?).ok()?;
        self.left = self.left.saturating_sub(1);
        Some(op)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for RepoOps<'_> {}

/// A `#sync` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncEvent<'a> {
    seq: u64,
    did: &'a str,
    blocks: &'a [u8],
    rev: &'a str,
    time: &'a str,
}

impl<'a> SyncEvent<'a> {
    /// Stream sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// The account's DID.
    pub fn did(&self) -> &'a str {
        self.did
    }
    /// A CAR holding the signed commit block as its root.
    pub fn blocks(&self) -> &'a [u8] {
        self.blocks
    }
    /// Rev of the commit.
    pub fn rev(&self) -> &'a str {
        self.rev
    }
    /// When the event was first broadcast.
    pub fn time(&self) -> &'a str {
        self.time
    }
    /// Copy into a builder.
    pub fn into_owned(self) -> SyncEventOwned {
        SyncEventOwned {
            seq: self.seq,
            did: self.did.to_owned(),
            blocks: self.blocks.to_vec(),
            rev: self.rev.to_owned(),
            time: self.time.to_owned(),
        }
    }
}

/// An `#identity` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentityEvent<'a> {
    seq: u64,
    did: &'a str,
    time: &'a str,
    handle: Option<&'a str>,
}

impl<'a> IdentityEvent<'a> {
    /// Stream sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// The account's DID.
    pub fn did(&self) -> &'a str {
        self.did
    }
    /// When the event was first broadcast.
    pub fn time(&self) -> &'a str {
        self.time
    }
    /// The current handle, if the sender included it.
    pub fn handle(&self) -> Option<&'a str> {
        self.handle
    }
    /// Copy into a builder.
    pub fn into_owned(self) -> IdentityEventOwned {
        IdentityEventOwned {
            seq: self.seq,
            did: self.did.to_owned(),
            time: self.time.to_owned(),
            handle: self.handle.map(str::to_owned),
        }
    }
}

/// An `#account` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountEvent<'a> {
    seq: u64,
    did: &'a str,
    time: &'a str,
    active: bool,
    status: Option<&'a str>,
}

impl<'a> AccountEvent<'a> {
    /// Stream sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// The account's DID.
    pub fn did(&self) -> &'a str {
        self.did
    }
    /// When the event was first broadcast.
    pub fn time(&self) -> &'a str {
        self.time
    }
    /// Whether the account's repo can be fetched from the sender.
    pub fn active(&self) -> bool {
        self.active
    }
    /// Why the account is not active (open set: takendown, deleted, ...).
    pub fn status(&self) -> Option<&'a str> {
        self.status
    }
    /// Copy into a builder.
    pub fn into_owned(self) -> AccountEventOwned {
        AccountEventOwned {
            seq: self.seq,
            did: self.did.to_owned(),
            time: self.time.to_owned(),
            active: self.active,
            status: self.status.map(str::to_owned),
        }
    }
}

/// An `#info` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InfoEvent<'a> {
    name: &'a str,
    message: Option<&'a str>,
}

impl<'a> InfoEvent<'a> {
    /// The info name (e.g. `OutdatedCursor`).
    pub fn name(&self) -> &'a str {
        self.name
    }
    /// Human-readable detail.
    pub fn message(&self) -> Option<&'a str> {
        self.message
    }
    /// Copy into a builder.
    pub fn into_owned(self) -> InfoEventOwned {
        InfoEventOwned {
            name: self.name.to_owned(),
            message: self.message.map(str::to_owned),
        }
    }
}

/// An error frame body (`op: -1`): `{error, message?}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorFrame<'a> {
    error: &'a str,
    message: Option<&'a str>,
}

impl<'a> ErrorFrame<'a> {
    /// The error name (e.g. `FutureCursor`, `ConsumerTooSlow`).
    pub fn error(&self) -> &'a str {
        self.error
    }
    /// Human-readable detail.
    pub fn message(&self) -> Option<&'a str> {
        self.message
    }
    /// Copy into a builder.
    pub fn into_owned(self) -> ErrorFrameOwned {
        ErrorFrameOwned {
            error: self.error.to_owned(),
            message: self.message.map(str::to_owned),
        }
    }
}

// ---- decoding ----

/// What the header announces.
enum HeaderKind<'a> {
    Message(&'a str),
    Error,
}

fn parse_header(header: Value<'_>) -> Result<HeaderKind<'_>, FrameError> {
    let Value::Map(map) = header else {
        return Err(FrameError::HeaderNotMap);
    };
    let mut op = None;
    let mut t = None;
    for (key, value) in map.iter() {
        match key {
            "op" => op = Some(value),
            "t" => t = Some(value),
            _ => {}
        }
    }
    match op.ok_or(FrameError::MissingField("op"))? {
        Value::Unsigned(1) => match t {
            Some(Value::Text(t)) => Ok(HeaderKind::Message(t)),
            Some(_) => Err(FrameError::WrongFieldType("t")),
            None => Err(FrameError::MissingField("t")),
        },
        Value::Negative(0) => Ok(HeaderKind::Error),
        Value::Unsigned(n) => Err(FrameError::UnknownOp {
            op: i64::try_from(n).unwrap_or(i64::MAX),
        }),
        Value::Negative(n) => Err(FrameError::UnknownOp {
            op: i64::try_from(n).map_or(i64::MIN, |n| -1 - n),
        }),
        _ => Err(FrameError::WrongFieldType("op")),
    }
}

type DecodedBody<'a> = (Event<'a>, Option<Range<usize>>);

fn decode_body<'a>(
    kind: HeaderKind<'a>,
    body: Map<'a>,
    message: &'a [u8],
) -> Result<DecodedBody<'a>, FrameError> {
    let t = match kind {
        HeaderKind::Error => return Ok((Event::Error(decode_error(body)?), None)),
        HeaderKind::Message(t) => t,
    };
    match t {
        TYPE_COMMIT => {
            let (event, seq) = decode_commit(body, message)?;
            Ok((Event::Commit(event), Some(seq)))
        }
        TYPE_SYNC => {
            let (event, seq) = decode_sync(body, message)?;
            Ok((Event::Sync(event), Some(seq)))
        }
        TYPE_IDENTITY => {
            let (event, seq) = decode_identity(body, message)?;
            Ok((Event::Identity(event), Some(seq)))
        }
        TYPE_ACCOUNT => {
            let (event, seq) = decode_account(body, message)?;
            Ok((Event::Account(event), Some(seq)))
        }
        TYPE_INFO => Ok((Event::Info(decode_info(body)?), None)),
        _ => Ok((Event::Unknown { t }, None)),
    }
}

/// A decoded `seq` and where its encoded value sits in the message.
struct Seq {
    value: u64,
    span: Range<usize>,
}

/// `key` is the map key borrowed from `message`; the value starts right after it.
fn read_seq(message: &[u8], key: &str, value: Value<'_>) -> Result<Seq, FrameError> {
    let seq = match value {
        Value::Unsigned(seq) if seq <= i64::MAX as u64 => seq,
        Value::Unsigned(_) | Value::Negative(_) => return Err(FrameError::FieldOutOfRange("seq")),
        _ => return Err(FrameError::WrongFieldType("seq")),
    };
    let key_start = offset_in(message, key.as_bytes()).ok_or(FrameError::Internal)?;
    let start = key_start + key.len();
    let (encoded, len) = encode_seq_patch(seq);
    let span = start..start + len;
    // The decoder proved the integer minimal, so these are exactly the canonical bytes;
    // checked anyway because the span drives byte rewriting downstream.
    if message.get(span.clone()) != encoded.get(..len) {
        return Err(FrameError::Internal);
    }
    Ok(Seq { value: seq, span })
}

/// Offset of `inner` inside `outer`, when `inner` is a subslice of it.
fn offset_in(outer: &[u8], inner: &[u8]) -> Option<usize> {
    let start = inner.as_ptr().addr().checked_sub(outer.as_ptr().addr())?;
    (start.checked_add(inner.len())? <= outer.len()).then_some(start)
}

fn required<T>(field: &'static str, value: Option<T>) -> Result<T, FrameError> {
    value.ok_or(FrameError::MissingField(field))
}

fn text<'a>(field: &'static str, value: Value<'a>) -> Result<&'a str, FrameError> {
    match value {
        Value::Text(text) => Ok(text),
        _ => Err(FrameError::WrongFieldType(field)),
    }
}

fn bounded_text<'a>(
    field: &'static str,
    value: Value<'a>,
    bytes_max: usize,
) -> Result<&'a str, FrameError> {
    let text = text(field, value)?;
    if text.len() > bytes_max {
        return Err(FrameError::FieldTooLong(field));
    }
    Ok(text)
}

fn did<'a>(field: &'static str, value: Value<'a>) -> Result<&'a str, FrameError> {
    bounded_text(field, value, DID_LENGTH_BYTES_MAX)
}

fn nullable_text<'a>(field: &'static str, value: Value<'a>) -> Result<Option<&'a str>, FrameError> {
    match value {
        Value::Null => Ok(None),
        other => text(field, other).map(Some),
    }
}

fn boolean(field: &'static str, value: Value<'_>) -> Result<bool, FrameError> {
    match value {
        Value::Bool(b) => Ok(b),
        _ => Err(FrameError::WrongFieldType(field)),
    }
}

fn link(field: &'static str, value: Value<'_>) -> Result<Cid, FrameError> {
    match value {
        Value::Link(cid) => Cid::try_from(cid).map_err(|_| FrameError::InvalidCid(field)),
        _ => Err(FrameError::WrongFieldType(field)),
    }
}

fn nullable_link(field: &'static str, value: Value<'_>) -> Result<Option<Cid>, FrameError> {
    match value {
        Value::Null => Ok(None),
        other => link(field, other).map(Some),
    }
}

fn blocks<'a>(value: Value<'a>, bytes_max: usize) -> Result<&'a [u8], FrameError> {
    match value {
        Value::Bytes(bytes) if bytes.len() > bytes_max => {
            Err(FrameError::BlocksTooLarge { len: bytes.len() })
        }
        Value::Bytes(bytes) => Ok(bytes),
        _ => Err(FrameError::WrongFieldType("blocks")),
    }
}

fn read_ops(value: Value<'_>) -> Result<Array<'_>, FrameError> {
    let Value::Array(ops) = value else {
        return Err(FrameError::WrongFieldType("ops"));
    };
    if ops.len() > COMMIT_OPS_MAX as u64 {
        return Err(FrameError::TooManyOps { count: ops.len() });
    }
    for op in ops.iter() {
        parse_op(op)?;
    }
    Ok(ops)
}

fn parse_op(value: Value<'_>) -> Result<RepoOp<'_>, FrameError> {
    let Value::Map(map) = value else {
        return Err(FrameError::WrongFieldType("ops"));
    };
    let (mut action, mut path, mut cid, mut prev) = (None, None, None, None);
    for (key, value) in map.iter() {
        match key {
            "action" => action = Some(OpAction::parse(text("op.action", value)?)?),
            "path" => {
                path = Some(bounded_text(
                    "op.path",
                    value,
                    REPO_OP_PATH_LENGTH_BYTES_MAX,
                )?)
            }
            "cid" => cid = Some(nullable_link("op.cid", value)?),
            "prev" => prev = Some(link("op.prev", value)?),
            _ => {}
        }
    }
    let action = required("op.action", action)?;
    let path = required("op.path", path)?;
    let cid = required("op.cid", cid)?;
    match (action, cid) {
        (OpAction::Create | OpAction::Update, None) | (OpAction::Delete, Some(_)) => {
            Err(FrameError::OpCidMismatch)
        }
        _ => Ok(RepoOp {
            action,
            path,
            cid,
            prev,
        }),
    }
}

fn read_blobs(value: Value<'_>) -> Result<Option<Array<'_>>, FrameError> {
    let blobs = match value {
        Value::Null => return Ok(None),
        Value::Array(blobs) => blobs,
        _ => return Err(FrameError::WrongFieldType("blobs")),
    };
    for blob in blobs.iter() {
        link("blobs", blob)?;
    }
    Ok(Some(blobs))
}

fn decode_commit<'a>(
    body: Map<'a>,
    message: &'a [u8],
) -> Result<(CommitEvent<'a>, Range<usize>), FrameError> {
    let (mut seq, mut rebase, mut too_big, mut repo, mut commit, mut rev) =
        (None, None, None, None, None, None);
    let (mut since, mut blocks_bytes, mut ops, mut blobs, mut prev_data, mut time) =
        (None, None, None, None, None, None);
    for (key, value) in body.iter() {
        match key {
            "seq" => seq = Some(read_seq(message, key, value)?),
            "rebase" => rebase = Some(boolean("rebase", value)?),
            "tooBig" => too_big = Some(boolean("tooBig", value)?),
            "repo" => repo = Some(did("repo", value)?),
            "commit" => commit = Some(link("commit", value)?),
            "rev" => rev = Some(text("rev", value)?),
            "since" => since = Some(nullable_text("since", value)?),
            "blocks" => blocks_bytes = Some(blocks(value, COMMIT_BLOCKS_BYTES_MAX)?),
            "ops" => ops = Some(read_ops(value)?),
            "blobs" => blobs = Some(read_blobs(value)?),
            "prevData" => prev_data = Some(link("prevData", value)?),
            "time" => time = Some(text("time", value)?),
            _ => {}
        }
    }
    let seq = required("seq", seq)?;
    let event = CommitEvent {
        seq: seq.value,
        rebase: required("rebase", rebase)?,
        too_big: required("tooBig", too_big)?,
        repo: required("repo", repo)?,
        commit: required("commit", commit)?,
        rev: required("rev", rev)?,
        since: required("since", since)?,
        blocks: required("blocks", blocks_bytes)?,
        ops: required("ops", ops)?,
        blobs: required("blobs", blobs)?,
        prev_data,
        time: required("time", time)?,
    };
    Ok((event, seq.span))
}

fn decode_sync<'a>(
    body: Map<'a>,
    message: &'a [u8],
) -> Result<(SyncEvent<'a>, Range<usize>), FrameError> {
    let (mut seq, mut did_text, mut blocks_bytes, mut rev, mut time) =
        (None, None, None, None, None);
    for (key, value) in body.iter() {
        match key {
            "seq" => seq = Some(read_seq(message, key, value)?),
            "did" => did_text = Some(did("did", value)?),
            "blocks" => blocks_bytes = Some(blocks(value, SYNC_BLOCKS_BYTES_MAX)?),
            "rev" => rev = Some(text("rev", value)?),
            "time" => time = Some(text("time", value)?),
            _ => {}
        }
    }
    let seq = required("seq", seq)?;
    let event = SyncEvent {
        seq: seq.value,
        did: required("did", did_text)?,
        blocks: required("blocks", blocks_bytes)?,
        rev: required("rev", rev)?,
        time: required("time", time)?,
    };
    Ok((event, seq.span))
}

fn decode_identity<'a>(
    body: Map<'a>,
    message: &'a [u8],
) -> Result<(IdentityEvent<'a>, Range<usize>), FrameError> {
    let (mut seq, mut did_text, mut time, mut handle) = (None, None, None, None);
    for (key, value) in body.iter() {
        match key {
            "seq" => seq = Some(read_seq(message, key, value)?),
            "did" => did_text = Some(did("did", value)?),
            "time" => time = Some(text("time", value)?),
            "handle" => handle = Some(bounded_text("handle", value, HANDLE_LENGTH_BYTES_MAX)?),
            _ => {}
        }
    }
    let seq = required("seq", seq)?;
    let event = IdentityEvent {
        seq: seq.value,
        did: required("did", did_text)?,
        time: required("time", time)?,
        handle,
    };
    Ok((event, seq.span))
}

fn decode_account<'a>(
    body: Map<'a>,
    message: &'a [u8],
) -> Result<(AccountEvent<'a>, Range<usize>), FrameError> {
    let (mut seq, mut did_text, mut time, mut active, mut status) = (None, None, None, None, None);
    for (key, value) in body.iter() {
        match key {
            "seq" => seq = Some(read_seq(message, key, value)?),
            "did" => did_text = Some(did("did", value)?),
            "time" => time = Some(text("time", value)?),
            "active" => active = Some(boolean("active", value)?),
            "status" => status = Some(text("status", value)?),
            _ => {}
        }
    }
    let seq = required("seq", seq)?;
    let event = AccountEvent {
        seq: seq.value,
        did: required("did", did_text)?,
        time: required("time", time)?,
        active: required("active", active)?,
        status,
    };
    Ok((event, seq.span))
}

fn decode_info(body: Map<'_>) -> Result<InfoEvent<'_>, FrameError> {
    let (mut name, mut message) = (None, None);
    for (key, value) in body.iter() {
        match key {
            "name" => name = Some(text("name", value)?),
            "message" => message = Some(text("message", value)?),
            _ => {}
        }
    }
    Ok(InfoEvent {
        name: required("name", name)?,
        message,
    })
}

fn decode_error(body: Map<'_>) -> Result<ErrorFrame<'_>, FrameError> {
    let (mut error, mut message) = (None, None);
    for (key, value) in body.iter() {
        match key {
            "error" => error = Some(text("error", value)?),
            "message" => message = Some(text("message", value)?),
            _ => {}
        }
    }
    Ok(ErrorFrame {
        error: required("error", error)?,
        message,
    })
}

// ---- encoding ----
//
// Map keys are written in DAG-CBOR canonical order (shorter first, then bytewise) by
// hand; the round-trip tests decode every builder's output with the strict decoder,
// which rejects any misordering.

/// An owned `#commit` body; [`CommitEventOwned::encode_frame`] writes header + body.
/// Builders do not check limits: decode the result if the input is untrusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitEventOwned {
    /// Stream sequence number.
    pub seq: u64,
    /// Deprecated, always false.
    pub rebase: bool,
    /// Deprecated, always false.
    pub too_big: bool,
    /// The repo's DID.
    pub repo: String,
    /// CID of the commit block.
    pub commit: Cid,
    /// Rev of this commit.
    pub rev: String,
    /// Rev of the previous commit.
    pub since: Option<String>,
    /// CAR slice.
    pub blocks: Vec<u8>,
    /// Record operations.
    pub ops: Vec<RepoOpOwned>,
    /// Deprecated blob CIDs.
    pub blobs: Vec<Cid>,
    /// MST root of the previous commit.
    pub prev_data: Option<Cid>,
    /// Broadcast time (datetime string).
    pub time: String,
}

/// An owned repo op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoOpOwned {
    /// Create, update or delete.
    pub action: OpAction,
    /// `<collection>/<rkey>`.
    pub path: String,
    /// New record CID; `None` (null) for deletes.
    pub cid: Option<Cid>,
    /// Previous record CID; omitted when `None`.
    pub prev: Option<Cid>,
}

/// An owned `#sync` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncEventOwned {
    /// Stream sequence number.
    pub seq: u64,
    /// The account's DID.
    pub did: String,
    /// CAR with the signed commit as root.
    pub blocks: Vec<u8>,
    /// Rev of the commit.
    pub rev: String,
    /// Broadcast time.
    pub time: String,
}

/// An owned `#identity` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityEventOwned {
    /// Stream sequence number.
    pub seq: u64,
    /// The account's DID.
    pub did: String,
    /// Broadcast time.
    pub time: String,
    /// Current handle; omitted when `None`.
    pub handle: Option<String>,
}

/// An owned `#account` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountEventOwned {
    /// Stream sequence number.
    pub seq: u64,
    /// The account's DID.
    pub did: String,
    /// Broadcast time.
    pub time: String,
    /// Whether the repo can be fetched from the sender.
    pub active: bool,
    /// Why not active; omitted when `None`.
    pub status: Option<String>,
}

/// An owned `#info` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfoEventOwned {
    /// Info name.
    pub name: String,
    /// Detail; omitted when `None`.
    pub message: Option<String>,
}

/// An owned error frame body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorFrameOwned {
    /// Error name.
    pub error: String,
    /// Detail; omitted when `None`.
    pub message: Option<String>,
}

/// Append the header of a message frame: `{t, op: 1}`.
pub fn write_message_header(t: &str, out: &mut Vec<u8>) {
    Encoder::new(out).map(2).text("t").text(t).text("op").u64(1);
}

/// Append the header of an error frame: `{op: -1}`.
pub fn write_error_header(out: &mut Vec<u8>) {
    Encoder::new(out).map(1).text("op").i64(-1);
}

fn write_link(cid: &Cid, out: &mut Vec<u8>) {
    Encoder::new(out).link_bytes(&cid.to_bytes());
}

impl CommitEventOwned {
    /// Append the canonical frame (header + body).
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        write_message_header(TYPE_COMMIT, out);
        let entries = 11 + u64::from(self.prev_data.is_some());
        Encoder::new(out)
            .map(entries)
            .text("ops")
            .array(self.ops.len() as u64);
        for op in &self.ops {
            op.encode(out);
        }
        Encoder::new(out)
            .text("rev")
            .text(&self.rev)
            .text("seq")
            .u64(self.seq)
            .text("repo")
            .text(&self.repo)
            .text("time")
            .text(&self.time)
            .text("blobs")
            .array(self.blobs.len() as u64);
        for blob in &self.blobs {
            write_link(blob, out);
        }
        let mut enc = Encoder::new(out);
        enc.text("since");
        match &self.since {
            Some(since) => enc.text(since),
            None => enc.null(),
        };
        enc.text("blocks").bytes(&self.blocks).text("commit");
        enc.link_bytes(&self.commit.to_bytes())
            .text("rebase")
            .bool(self.rebase)
            .text("tooBig")
            .bool(self.too_big);
        if let Some(prev_data) = &self.prev_data {
            enc.text("prevData").link_bytes(&prev_data.to_bytes());
        }
    }
}

impl RepoOpOwned {
    fn encode(&self, out: &mut Vec<u8>) {
        let entries = 3 + u64::from(self.prev.is_some());
        let mut enc = Encoder::new(out);
        enc.map(entries).text("cid");
        match &self.cid {
            Some(cid) => enc.link_bytes(&cid.to_bytes()),
            None => enc.null(),
        };
        enc.text("path").text(&self.path);
        if let Some(prev) = &self.prev {
            enc.text("prev").link_bytes(&prev.to_bytes());
        }
        enc.text("action").text(self.action.as_str());
    }
}

impl SyncEventOwned {
    /// Append the canonical frame (header + body).
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        write_message_header(TYPE_SYNC, out);
        Encoder::new(out)
            .map(5)
            .text("did")
            .text(&self.did)
            .text("rev")
            .text(&self.rev)
            .text("seq")
            .u64(self.seq)
            .text("time")
            .text(&self.time)
            .text("blocks")
            .bytes(&self.blocks);
    }
}

impl IdentityEventOwned {
    /// Append the canonical frame (header + body).
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        write_message_header(TYPE_IDENTITY, out);
        let entries = 3 + u64::from(self.handle.is_some());
        let mut enc = Encoder::new(out);
        enc.map(entries)
            .text("did")
            .text(&self.did)
            .text("seq")
            .u64(self.seq)
            .text("time")
            .text(&self.time);
        if let Some(handle) = &self.handle {
            enc.text("handle").text(handle);
        }
    }
}

impl AccountEventOwned {
    /// Append the canonical frame (header + body).
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        write_message_header(TYPE_ACCOUNT, out);
        let entries = 4 + u64::from(self.status.is_some());
        let mut enc = Encoder::new(out);
        enc.map(entries)
            .text("did")
            .text(&self.did)
            .text("seq")
            .u64(self.seq)
            .text("time")
            .text(&self.time)
            .text("active")
            .bool(self.active);
        if let Some(status) = &self.status {
            enc.text("status").text(status);
        }
    }
}

impl InfoEventOwned {
    /// Append the canonical frame (header + body).
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        write_message_header(TYPE_INFO, out);
        write_name_message("name", &self.name, self.message.as_deref(), out);
    }
}

impl ErrorFrameOwned {
    /// Append the canonical frame (header + body).
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        write_error_header(out);
        write_name_message("error", &self.error, self.message.as_deref(), out);
    }
}

/// `{<key>: name, message?}` where `key` is shorter than "message".
fn write_name_message(key: &str, name: &str, message: Option<&str>, out: &mut Vec<u8>) {
    let mut enc = Encoder::new(out);
    enc.map(1 + u64::from(message.is_some()))
        .text(key)
        .text(name);
    if let Some(message) = message {
        enc.text("message").text(message);
    }
}

/// Any owned frame, for code that builds streams of mixed messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventOwned {
    /// `#commit`.
    Commit(CommitEventOwned),
    /// `#sync`.
    Sync(SyncEventOwned),
    /// `#identity`.
    Identity(IdentityEventOwned),
    /// `#account`.
    Account(AccountEventOwned),
    /// `#info`.
    Info(InfoEventOwned),
    /// An error frame.
    Error(ErrorFrameOwned),
}

impl EventOwned {
    /// Append the canonical frame (header + body).
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        match self {
            EventOwned::Commit(e) => e.encode_frame(out),
            EventOwned::Sync(e) => e.encode_frame(out),
            EventOwned::Identity(e) => e.encode_frame(out),
            EventOwned::Account(e) => e.encode_frame(out),
            EventOwned::Info(e) => e.encode_frame(out),
            EventOwned::Error(e) => e.encode_frame(out),
        }
    }

    /// The canonical frame as a new vector.
    pub fn to_frame_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_frame(&mut out);
        out
    }
}

impl Event<'_> {
    /// Copy into a builder; `None` for [`Event::Unknown`], which has no known shape.
    pub fn into_owned(self) -> Option<EventOwned> {
        Some(match self {
            Event::Commit(e) => EventOwned::Commit(e.into_owned()),
            Event::Sync(e) => EventOwned::Sync(e.into_owned()),
            Event::Identity(e) => EventOwned::Identity(e.into_owned()),
            Event::Account(e) => EventOwned::Account(e.into_owned()),
            Event::Info(e) => EventOwned::Info(e.into_owned()),
            Event::Error(e) => EventOwned::Error(e.into_owned()),
            Event::Unknown { .. } => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_patch_matches_the_encoder_at_every_width() {
        for seq in [
            0,
            23,
            24,
            255,
            256,
            65_535,
            65_536,
            u32::MAX as u64,
            1 << 32,
            u64::MAX,
        ] {
            let mut expected = Vec::new();
            Encoder::new(&mut expected).u64(seq);
            let (bytes, len) = encode_seq_patch(seq);
            assert_eq!(&bytes[..len], &expected[..], "seq {seq}");
        }
    }

    #[test]
    fn account_frame_round_trips_with_seq_span() {
        let owned = AccountEventOwned {
            seq: 300,
            did: "did:plc:abc".into(),
            time: "2025-01-01T00:00:00Z".into(),
            active: false,
            status: Some("takendown".into()),
        };
        let mut bytes = Vec::new();
        owned.encode_frame(&mut bytes);
        let frame = Frame::decode(&bytes).unwrap();
        assert_eq!(frame.seq(), Some(300));
        let span = frame.seq_span().unwrap();
        assert_eq!(&bytes[span], &[0x19, 0x01, 0x2c]);
        match frame.into_event() {
            Event::Account(e) => assert_eq!(e.into_owned(), owned),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_header_is_op_minus_one() {
        let mut bytes = Vec::new();
        write_error_header(&mut bytes);
        assert_eq!(bytes, [0xa1, 0x62, b'o', b'p', 0x20]);
    }
}
