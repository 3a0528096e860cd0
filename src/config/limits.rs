//! Every bound of the product, named `*_max` (units last) in one place, with compile-time
//! assertions tying related limits together. Sorted by the module that enforces them.

// ---- eventlog ----

/// Most records one recovery scan or one replay reads past a sparse-index entry before it
/// reaches the wanted seq: the index keeps one entry per this many records of a segment.
/// 256 keeps the index near 16 bytes per 256 records (about 1 MiB per 64 GiB of 1 KiB
/// frames) while a lookup reads at most about one read-ahead buffer.
pub const EVENTLOG_INDEX_SCAN_RECORDS_MAX: u64 = 256;

/// Records the writer takes from its queue before it writes and fdatasyncs them as one
/// group commit. 512 records of a few KiB amortise one fdatasync (about a millisecond on
/// a virtio disk) over about 1 MiB of writes.
pub const EVENTLOG_FSYNC_BATCH_RECORDS_MAX: usize = 512;

/// Longest time, in microseconds, the writer waits for more records after the first record
/// of a group commit arrived. It bounds the persist latency a record adds by waiting: a
/// record is durable at most this long plus one write and one fdatasync after it reached
/// the writer.
pub const EVENTLOG_FSYNC_INTERVAL_MICROS_MAX: u64 = 2_000;

/// Records that may wait in the queue between the sequencer and the writer thread. When it
/// is full `Appender::append` blocks (backpressure to the sequencer) and
/// `Appender::try_append` hands the record back. 8,192 covers several fdatasync periods at
/// the 10,000 events/s burst target.
pub const EVENTLOG_QUEUE_RECORDS_MAX: usize = 8_192;

/// Bytes one replay reader reads ahead from a segment per pread.
pub const EVENTLOG_READ_AHEAD_BYTES_MAX: usize = 256 * 1024;

/// Largest payload (one outgoing firehose frame) a log record may carry, in bytes. Frames
/// are at most 5 MB by the sync spec; 8 MiB leaves room for the header and the relay seq.
pub const EVENTLOG_RECORD_PAYLOAD_BYTES_MAX: u32 = 8 * 1024 * 1024;

/// Most byte slices one record may be gathered from (prefix / seq / suffix and the like).
/// Bounds the iovecs per record so a group commit fits a few `writev` calls.
pub const EVENTLOG_RECORD_SLICES_MAX: usize = 16;

/// Size at which the writer starts a new segment file, in bytes. Whole segments are the
/// unit of retention: 256 MiB deletes a few minutes of peak traffic at a time and keeps
/// a 300 GiB window near 1,200 files.
pub const EVENTLOG_SEGMENT_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Largest relay seq: atproto seqs are positive integers below 2^53 (JavaScript-safe).
pub const EVENTLOG_SEQ_MAX: u64 = (1 << 53) - 1;

/// Largest takedown tombstone file, in bytes (32 bytes per entry: about two million
/// takedowns and reversals). It is read whole into memory at open.
pub const EVENTLOG_TOMBSTONE_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Submission-queue entries of the writer's io_uring: one group commit submits its
/// writev chunks and one fdatasync together.
pub const EVENTLOG_URING_ENTRIES_MAX: u32 = 64;

/// Iovecs one `writev` call takes (Linux `IOV_MAX`).
pub const EVENTLOG_WRITEV_SLICES_MAX: usize = 1024;

const _: () = assert!(EVENTLOG_RECORD_SLICES_MAX < EVENTLOG_WRITEV_SLICES_MAX);
const _: () = assert!((EVENTLOG_RECORD_PAYLOAD_BYTES_MAX as u64) < EVENTLOG_SEGMENT_BYTES_MAX);
// One group commit: (header + slices) iovecs per record, chunked by IOV_MAX, plus the
// fdatasync, must fit the submission queue.
const _: () = assert!(
    (EVENTLOG_FSYNC_BATCH_RECORDS_MAX * (1 + EVENTLOG_RECORD_SLICES_MAX))
        .div_ceil(EVENTLOG_WRITEV_SLICES_MAX)
        < EVENTLOG_URING_ENTRIES_MAX as usize
);

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
pub const REPO_OP_PATH_LENGTH_BYTES_MAX: usize =
    NSID_LENGTH_BYTES_MAX + 1 + RECORD_KEY_LENGTH_BYTES_MAX;
const _: () = assert!(REPO_OP_PATH_LENGTH_BYTES_MAX == 317 + 1 + 512);

// A commit's or a sync's blocks must fit inside a frame together with the other fields.
const _: () = assert!(COMMIT_BLOCKS_BYTES_MAX < FRAME_SIZE_BYTES_MAX);
const _: () = assert!(SYNC_BLOCKS_BYTES_MAX < COMMIT_BLOCKS_BYTES_MAX);
// ---- runtime ----

/// Largest frame a core's shared-memory frame buffer holds, in bytes: the firehose frame
/// bound (a larger WebSocket message is refused from its header, before it is read).
pub const FRAME_BUFFER_FRAME_BYTES_MAX: usize = FRAME_SIZE_BYTES_MAX;

/// Default size of one ingest core's frame region (memfd + mmap), in bytes; a runtime
/// parameter. It is the whole budget of in-flight frame bytes of that core: when every
/// segment is pinned by live frames the core stops reading its sockets.
pub const FRAME_REGION_BYTES: usize = 256 * 1024 * 1024;

/// Largest frame region accepted as a runtime parameter, in bytes.
pub const FRAME_REGION_BYTES_MAX: usize = 16 * 1024 * 1024 * 1024;

/// Fewest segments a frame region may have: one being written while another drains.
pub const FRAME_REGION_SEGMENTS_MIN: usize = 2;

/// Default size of one segment of a frame region, in bytes: the unit of reuse. A largest
/// frame plus slack, so a maximal frame always fits in a fresh segment.
pub const FRAME_SEGMENT_BYTES: usize = 8 * 1024 * 1024;

/// Largest segment accepted as a runtime parameter, in bytes (offsets inside a segment are
/// `u32`).
pub const FRAME_SEGMENT_BYTES_MAX: usize = 1024 * 1024 * 1024;

/// Longest encoding of a relay seq spliced into an outgoing frame, in bytes: an unsigned
/// integer head of one byte plus eight.
pub const OUT_FRAME_SEQ_BYTES_MAX: usize = 9;

const _: () = assert!(FRAME_SEGMENT_BYTES >= FRAME_BUFFER_FRAME_BYTES_MAX + 1024 * 1024);
const _: () = assert!(FRAME_SEGMENT_BYTES <= FRAME_SEGMENT_BYTES_MAX);
const _: () = assert!(FRAME_SEGMENT_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(FRAME_REGION_BYTES.is_multiple_of(FRAME_SEGMENT_BYTES));
const _: () = assert!(FRAME_REGION_BYTES / FRAME_SEGMENT_BYTES >= FRAME_REGION_SEGMENTS_MIN);
const _: () = assert!(FRAME_REGION_BYTES <= FRAME_REGION_BYTES_MAX);

// ---- sim ----

/// Largest record the simulator writes: a post padded past this is capped, keeping a
/// `#commit` of a few creates well under `COMMIT_BLOCKS_BYTES_MAX`.
pub const SIM_RECORD_SIZE_BYTES_MAX: usize = 64 * 1024;

// ---- syntax ----

/// Longest AT-URI accepted, in bytes (the at-uri-scheme spec's 8 KB hard limit).
pub const AT_URI_LENGTH_BYTES_MAX: usize = 8 * 1024;

/// Longest CID string accepted, in bytes. Real CIDv1 strings are about 60 bytes; the bound
/// matches the reference implementations' syntax check.
pub const CID_STRING_LENGTH_BYTES_MAX: usize = 256;

/// Shortest CID string accepted, in bytes: anything shorter cannot hold a multibase prefix,
/// a version, a codec and a multihash.
pub const CID_STRING_LENGTH_BYTES_MIN: usize = 8;

/// Longest datetime string accepted, in bytes. The format has no natural bound on the
/// fractional seconds; the reference implementations cap the whole string at 64.
pub const DATETIME_LENGTH_BYTES_MAX: usize = 64;

/// Longest DID accepted, in bytes (the DID spec's initial hard limit of 2 KB).
pub const DID_LENGTH_BYTES_MAX: usize = 2 * 1024;

/// Longest label (dot-separated part) of a handle or of an NSID's domain, in bytes (DNS: 63).
pub const DOMAIN_LABEL_LENGTH_BYTES_MAX: usize = 63;

/// Longest handle accepted, in bytes (a DNS name: 253 characters).
pub const HANDLE_LENGTH_BYTES_MAX: usize = 253;

/// Longest language tag accepted, in bytes. BCP 47 sets no maximum; real tags are a few
/// dozen bytes and the reference Go implementation caps them at 128.
pub const LANGUAGE_LENGTH_BYTES_MAX: usize = 128;

/// Longest NSID accepted, in bytes: a 253-byte domain authority, a period and a 63-byte
/// name. The authority alone is not bounded separately (see `syntax::nsid`).
pub const NSID_LENGTH_BYTES_MAX: usize = HANDLE_LENGTH_BYTES_MAX + 1 + NSID_NAME_LENGTH_BYTES_MAX;

/// Longest name segment (the last part) of an NSID, in bytes.
pub const NSID_NAME_LENGTH_BYTES_MAX: usize = 63;

/// Longest record key accepted, in bytes (the record-key spec's limit).
pub const RECORD_KEY_LENGTH_BYTES_MAX: usize = 512;

/// Longest generic URI accepted, in bytes (the Lexicon `uri` format's 8 KB limit).
pub const URI_LENGTH_BYTES_MAX: usize = 8 * 1024;

const _: () = assert!(NSID_NAME_LENGTH_BYTES_MAX <= DOMAIN_LABEL_LENGTH_BYTES_MAX);

// ---- identity ----

/// Largest decoded key encoding accepted from a DID document or a `did:key`: a 2-byte
/// multicodec varint (0x1200, p256-pub) plus a 65-byte uncompressed SEC1 point.
/// Base58 decoding writes into a fixed buffer of this size, so an oversized or hostile
/// string is rejected after O(this) work instead of being decoded in full.
pub const IDENTITY_KEY_DECODED_BYTES_MAX: usize = 67;
// ---- verify::mst ----

/// Longest MST key (a repo path `collection/rkey`) accepted, in bytes. An NSID is at most
/// 317 bytes and a record key at most 512, so every valid path fits; the bound keeps the
/// stack buffer that rebuilds prefix-compressed keys small and fixed.
pub const MST_KEY_BYTES_MAX: usize = 1024;

// ---- verify ----

/// Most distinct blocks accepted in one commit's CAR slice. A 2,000,000-byte slice of
/// minimal blocks could hold tens of thousands; real commits carry tens. The bound keeps
/// the per-commit block index small whatever a hostile host sends.
pub const COMMIT_BLOCKS_MAX: usize = 10_000;

/// How far in the future a commit's rev may be, in microseconds: five minutes (the sync
/// spec's clock-skew allowance, as indigo's relay applies it).
pub const REV_FUTURE_SKEW_MICROS_MAX: u64 = 5 * 60 * 1_000_000;

// ---- identity::resolver / identity::service ----

/// Largest DID document accepted, in bytes. Real documents are about 1 KiB; indigo's
/// identity directory reads at most 10 MB, rsky far less. 64 KiB leaves room for many
/// services and aliases while bounding what a hostile PLC mirror or did:web host can
/// make us buffer and parse.
pub const DID_DOCUMENT_BYTES_MAX: usize = 64 * 1024;

/// Time allowed for one resolution (connect, TLS, request, response), in milliseconds.
/// indigo's directory uses a 10 s HTTP client time-out; a lookup holds a pool worker, so
/// we give up sooner and let the caller retry.
pub const IDENTITY_LOOKUP_TIMEOUT_MILLIS_MAX: u64 = 5_000;

/// Lookups waiting for a resolver worker. When full, a new lookup fails at once with
/// `overloaded` (counted) rather than queueing without bound: the caller parks or drops
/// the account's frames under its own policy.
pub const IDENTITY_QUEUE_REQUESTS_MAX: usize = 4_096;

/// Resolver worker threads: each runs one blocking lookup at a time. PLC lookups are
/// light and cached; 8 keeps a cold start with many new accounts moving without
/// letting identity traffic compete with the data plane for the cores.
pub const IDENTITY_WORKERS_MAX: usize = 8;

/// Entries kept in the identity cache (positive and negative). About 1 KiB each with the
/// parsed document, so 1,000,000 entries is about 1 GiB at the full-network scale; the
/// default config lowers it for small deployments. Over the bound the oldest entry goes.
pub const IDENTITY_CACHE_ENTRIES_MAX: usize = 1_000_000;

/// How long a resolved document is trusted, in seconds: 24 hours, as indigo's cached
/// directory does (`#identity` events purge earlier).
pub const IDENTITY_CACHE_TTL_SECS_MAX: u64 = 24 * 60 * 60;

/// How long a failure (not found, malformed document) is remembered, in seconds: short,
/// so a newly created account is seen soon, long enough to stop a flood of lookups for
/// a DID that does not exist (indigo: 5 minutes for errors).
pub const IDENTITY_NEGATIVE_TTL_SECS_MAX: u64 = 5 * 60;

// ---- tail ----

/// Frames of one account held while its key is being fetched. Tail resolves on its own
/// thread before checking, so one frame is the usual depth; over the bound the frame is
/// counted invalid (`key_queue_full`) instead of growing memory.
pub const TAIL_PENDING_FRAMES_PER_DID_MAX: usize = 64;

/// Accounts tracked for rev order. About 100 bytes each; 2,000,000 covers a full-network
/// window with room. Over the bound an arbitrary account without parked frames is
/// forgotten (its next rev is then not compared, its key fetched again).
pub const TAIL_ACCOUNTS_MAX: usize = 2_000_000;

/// Seqs listed for gaps and duplicates in the report (counts are always complete).
pub const TAIL_SEQ_EXAMPLES_MAX: usize = 16;

/// Events recorded as (seq, did, rev, type) when the record flag is on: enough for
/// end-to-end exactly-once assertions, bounded so a long run cannot exhaust memory.
pub const TAIL_RECORDED_EVENTS_MAX: usize = 1_000_000;

/// Threads running tail's keyed checks (signatures, MST inversion), accounts spread over
/// them by DID hash. The reference k256 verifier does about 13,600/s per core and p256
/// about 3,000/s, so keeping up with 20,000 events/s needs several; more than 8 buys
/// nothing on the machines tail runs on.
pub const TAIL_CHECK_THREADS_MAX: usize = 8;

/// Frames queued to each check thread. When full the reader **blocks**, which stops it
/// reading the socket (TCP backpressure to the server; it shows in the latency figures).
pub const TAIL_CHECK_QUEUE_FRAMES_MAX: usize = 1_024;
