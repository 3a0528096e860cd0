//! Every bound of the product, named `*_max` (units last) in one place, with compile-time
//! assertions tying related limits together. Sorted by the module that enforces them.

// ---- frame ----

/// Deepest nesting of arrays/maps a DAG-CBOR item may have. Firehose frames, commits and
/// MST nodes are a few levels deep; records are deeper but bounded in practice. The bound
/// keeps validation's recursion (and a hostile input's cost) small.
pub const CBOR_NESTING_DEPTH_MAX: usize = 128;

/// Largest firehose message (one WebSocket binary message: header + body), checked before
/// anything is parsed. The lexicon bounds only `blocks` (2,000,000 bytes) and `ops` (200);
/// this whole-message bound of 5 MB follows the firehose size guidance of the atproto sync
/// spec (<https://atproto.com/specs/sync>) and leaves room for a maximal commit plus its
/// other fields.
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

/// Longest repo path (`<collection>/<rkey>`) of a commit op, in bytes: an NSID of at most
/// 317 bytes (a 253-byte domain authority, a period and a 63-byte name;
/// <https://atproto.com/specs/nsid>), the `/`, and a record key of at most 512 bytes
/// (<https://atproto.com/specs/record-key>).
pub const REPO_OP_PATH_LENGTH_BYTES_MAX: usize = 317 + 1 + 512;

// ---- syntax ----

/// Longest DID accepted, in bytes (the DID spec's initial hard limit of 2 KB).
pub const DID_LENGTH_BYTES_MAX: usize = 2 * 1024;

/// Longest handle accepted, in bytes (a DNS name: 253 characters).
pub const HANDLE_LENGTH_BYTES_MAX: usize = 253;

// A commit's or a sync's blocks must fit inside a frame together with the other fields.
const _: () = assert!(COMMIT_BLOCKS_BYTES_MAX < FRAME_SIZE_BYTES_MAX);
const _: () = assert!(SYNC_BLOCKS_BYTES_MAX < COMMIT_BLOCKS_BYTES_MAX);
