//! Every bound of the product, named `*_max` (units last) in one place, with compile-time
//! assertions tying related limits together. Sorted by the module that enforces them.

// ---- frame ----

/// Deepest nesting of arrays/maps a DAG-CBOR item may have. Firehose frames, commits and
/// MST nodes are a few levels deep; records are deeper but bounded in practice. The bound
/// keeps validation's recursion (and a hostile input's cost) small.
pub const CBOR_NESTING_DEPTH_MAX: usize = 128;

/// Largest firehose message (one WebSocket binary message: header + body). The atproto
/// sync spec (<https://atproto.com/specs/sync>, firehose size limits) caps a whole event
/// at 5 MBytes; anything larger is rejected before it is parsed.
pub const FRAME_SIZE_BYTES_MAX: usize = 5_000_000;

/// Largest `blocks` CAR slice of a `#commit`: `maxLength: 2000000` on `commit.blocks` in
/// the `com.atproto.sync.subscribeRepos` lexicon (and the sync spec's 2 MByte diff limit).
pub const COMMIT_BLOCKS_BYTES_MAX: usize = 2_000_000;

/// Most record operations in one `#commit`: `maxLength: 200` on `commit.ops` in the
/// `com.atproto.sync.subscribeRepos` lexicon.
pub const COMMIT_OPS_MAX: usize = 200;

/// Largest `blocks` CAR of a `#sync` (it carries only the signed commit block):
/// `maxLength: 10000` on `sync.blocks` in the `com.atproto.sync.subscribeRepos` lexicon.
pub const SYNC_BLOCKS_BYTES_MAX: usize = 10_000;

/// Longest DID accepted in a frame or commit: the atproto DID spec
/// (<https://atproto.com/specs/did>) limits a DID to 2 KB (2048 characters, all ASCII).
pub const DID_BYTES_MAX: usize = 2048;

/// Longest handle accepted in an `#identity` frame: the atproto handle spec
/// (<https://atproto.com/specs/handle>) limits a handle to 253 characters (a DNS name).
pub const HANDLE_BYTES_MAX: usize = 253;

/// Longest repo path (`<collection>/<rkey>`) of a commit op: an NSID is at most 317
/// characters (<https://atproto.com/specs/nsid>), a record key at most 512
/// (<https://atproto.com/specs/record-key>), plus the `/`.
pub const REPO_OP_PATH_BYTES_MAX: usize = 317 + 1 + 512;

// A commit's or a sync's blocks must fit inside a frame together with the other fields.
const _: () = assert!(COMMIT_BLOCKS_BYTES_MAX < FRAME_SIZE_BYTES_MAX);
const _: () = assert!(SYNC_BLOCKS_BYTES_MAX < COMMIT_BLOCKS_BYTES_MAX);
