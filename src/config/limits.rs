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

// ---- upstream::session ----

/// How long resolving, connecting, the TLS handshake and the WebSocket upgrade of one
/// upstream connection may take together, in milliseconds. indigo's relay gives the
/// WebSocket dial a 5 s handshake time-out; ours covers the whole dial with 10 s because
/// name resolution and TCP connect are inside it too.
pub const UPSTREAM_CONNECT_TIMEOUT_MILLIS_MAX: u64 = 10_000;

/// Interval between our keep-alive pings on an upstream connection, in milliseconds
/// (indigo's relay pings every 30 s).
pub const UPSTREAM_PING_INTERVAL_MILLIS_MAX: u64 = 30_000;

/// How long an upstream connection may deliver nothing at all (no frame, no pong, no
/// ping) before it is dropped, in milliseconds. indigo closes after 4 missed 30 s pings
/// and keeps a 1 min read deadline after each pong; 2 min leaves room for both.
pub const UPSTREAM_READ_IDLE_TIMEOUT_MILLIS_MAX: u64 = 120_000;

/// First reconnect delay ceiling, in milliseconds: the first retry waits a random time in
/// [0, this] (full jitter). rsky-relay starts reconnects at 1 s.
pub const UPSTREAM_BACKOFF_BASE_MILLIS: u64 = 1_000;

/// Largest reconnect delay ceiling, in milliseconds: the doubling stops here and the
/// session keeps retrying at this ceiling forever. indigo retries every 30 s after its
/// first tries; rsky caps at 1 h; 5 min keeps a recovered host's gap short without
/// hammering dead hosts (thousands of hosts per core).
pub const UPSTREAM_BACKOFF_DELAY_MILLIS_MAX: u64 = 5 * 60 * 1_000;

/// How long a connection must stay up before the backoff starts again from the base, in
/// milliseconds: a host that accepts and drops at once keeps backing off.
pub const UPSTREAM_HEALTHY_CONNECTION_MILLIS_MIN: u64 = 60_000;

/// How long a session waits before retrying a frame-buffer reservation that hit
/// backpressure, in milliseconds. The socket is not read meanwhile (block, never drop);
/// 1 ms is short against a segment's drain time and long against a busy loop.
pub const UPSTREAM_BACKPRESSURE_RETRY_MILLIS: u64 = 1;

/// Largest HTTP response head accepted for the WebSocket upgrade, in bytes (the same bound
/// as every HTTP head the relay reads, `api::http::HTTP_HEAD_BYTES_MAX`).
pub const UPSTREAM_UPGRADE_HEAD_BYTES_MAX: usize = 16 * 1024;

/// How long our Close frame may take to write when a session ends a connection, in
/// milliseconds; then the socket is dropped anyway, so a peer that stops reading cannot
/// hold a session (or a shutdown) for longer.
pub const UPSTREAM_CLOSE_WRITE_TIMEOUT_MILLIS_MAX: u64 = 1_000;
