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

// ---- runtime::status_recheck ----

/// Default shortest time between two checks of one upstream-inactive account against its
/// PDS's `getRepoStatus`, in seconds (`--status-recheck-interval-secs` overrides it): a
/// pass over the accounts starts at most this often, and each account is checked at most
/// once per pass. Ten minutes heals a stale status well within a user's patience while
/// costing a PDS at most one request per inactive account per interval.
pub const STATUS_RECHECK_INTERVAL_SECS: u64 = 600;

/// Shortest re-check interval accepted from the flag, in seconds.
pub const STATUS_RECHECK_INTERVAL_SECS_MIN: u64 = 1;

/// Most `getRepoStatus` requests of one re-check round; the rest of the pass waits for
/// the next round (`STATUS_RECHECK_ROUND_PAUSE_MILLIS` later).
pub const STATUS_RECHECK_BATCH_ACCOUNTS_MAX: usize = 100;

/// Most stored accounts one round reads while looking for inactive ones (in pages of
/// `STATE_LIST_PAGE_ENTRIES_MAX`): a round's scan costs the state thread at most this
/// many record reads, and the scan position is kept between rounds.
pub const STATUS_RECHECK_SCAN_ACCOUNTS_PER_ROUND_MAX: usize = 20_000;

/// Pause between two rounds of one unfinished pass, in milliseconds.
pub const STATUS_RECHECK_ROUND_PAUSE_MILLIS: u64 = 5_000;

/// Most `getRepoStatus` requests the re-checker sends per second, all PDSes together
/// (so any one PDS gets at most this many): requests are spaced by 1/this second.
pub const STATUS_RECHECK_REQUESTS_PER_SEC_MAX: u64 = 5;

/// Longest wait for a PDS to connect or answer one read of `getRepoStatus`, in seconds.
pub const STATUS_RECHECK_TIMEOUT_SECS: u64 = 10;

/// Largest `getRepoStatus` body read, in bytes (the output is four short fields; an
/// error body is one short message).
pub const STATUS_RECHECK_RESPONSE_BYTES_MAX: usize = 16 * 1024;

const _: () = assert!(STATUS_RECHECK_INTERVAL_SECS >= STATUS_RECHECK_INTERVAL_SECS_MIN);
const _: () = assert!(STATUS_RECHECK_REQUESTS_PER_SEC_MAX > 0);
const _: () = assert!(STATUS_RECHECK_SCAN_ACCOUNTS_PER_ROUND_MAX >= STATE_LIST_PAGE_ENTRIES_MAX);

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

// ---- sequencer (executor stage) ----

/// Verified frames queued on each ingest → sequencer ring (a glommio SPSC shared channel).
/// When it is full the ingest shard's verifier waits, so its sockets stop being read
/// (block). 1,024 slots of 64 bytes cover several milliseconds of a full core's output.
pub const SEQUENCER_RING_SLOTS_MAX: usize = 1024;

/// Sequenced frames appended to the log but not yet durable or not yet handed to every
/// fan-out core. Past it the sequencer stops taking frames from the rings (block): the
/// frames it holds pin frame-buffer segments, so this bounds that memory too.
pub const SEQUENCER_PENDING_RECORDS_MAX: usize = 16 * 1024;

/// How long the sequencer waits before retrying an append when the log writer's queue is
/// full, in microseconds: a quarter of the group-commit interval.
pub const SEQUENCER_LOG_RETRY_MICROS: u64 = 500;

/// Durable frames queued on each sequencer → fan-out ring. When it is full the sequencer's
/// publisher waits (block); fan-out cores only put frames in their live ring, so this
/// drains at memory speed.
pub const FANOUT_RING_SLOTS_MAX: usize = 4096;

// ---- runtime::ingest ----

/// Frames of one account waiting for its identity (key and PDS) to resolve, kept in
/// order. Past it the newest frame is dropped with reason `parked_account_full`.
pub const INGEST_PARKED_FRAMES_PER_ACCOUNT_MAX: usize = 64;

/// Bytes of all frames parked on one ingest shard. Past it a frame that would park is
/// dropped with reason `parked_bytes_full`: a burst of unknown accounts must not pin every
/// frame-buffer segment.
pub const INGEST_PARKED_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Accounts whose key and chain state an ingest shard keeps in memory. Past it the
/// oldest-inserted entries are forgotten (their next frame resolves again).
pub const INGEST_ACCOUNTS_MAX: usize = 1_000_000;

/// Shortest time between two forced re-resolutions of one account (after a bad
/// signature or a host mismatch), in seconds: a hostile host cannot make the relay query
/// the PLC directory per frame.
pub const INGEST_IDENTITY_REFRESH_SECS_MIN: u64 = 60;

/// Frames queued from the upstream sessions of one shard to its verifier (a glommio local
/// channel). When full the sessions stop reading their sockets (block).
pub const INGEST_UPSTREAM_QUEUE_FRAMES_MAX: usize = 1024;

/// Rejections each ingest shard keeps for `GET /admin/rejections` (`runtime::rejections`):
/// a ring, the oldest overwritten. 4,096 entries of about 100 bytes plus their DIDs is
/// well under a megabyte per shard, and holds minutes of a hostile host's refusals at the
/// rates the sim's hostile fleet produces (tens per second).
pub const INGEST_REJECTION_LOG_ENTRIES_PER_SHARD_MAX: usize = 4_096;

/// Hosts whose upstream seq went back below the relay's cursor that `GET /admin/hosts`
/// can flag at once (`runtime::seq_alerts`). A regression past the bound is still counted
/// (`relay_upstream_seq_regressions_total`) and logged, only not flagged in the listing;
/// 10,000 entries of a few dozen bytes is well under a megabyte, and more hosts than that
/// wiped at once is an incident the counter already shows.
pub const INGEST_SEQ_REGRESSION_HOSTS_MAX: usize = 10_000;

/// Longest DID a rejection-log entry keeps, in bytes; a longer one is recorded without
/// its DID (counted, `did_too_long`). Real DIDs are far shorter (did:plc is 32 bytes, a
/// did:web is a hostname), while the syntax allows `DID_LENGTH_BYTES_MAX`: this keeps a
/// hostile host from pinning 2 KiB per entry.
pub const INGEST_REJECTION_LOG_DID_BYTES_MAX: usize = 512;
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

// ---- per-host limits (upstream::rate, verify::limits, runtime::ingest) ----

/// Buckets one sliding rate window is split into (`upstream::rate::SlidingWindow`). The
/// window counts every bucket that overlaps the last window length, so it never admits more
/// than its limit in any interval of that length, and waits at most one bucket (a tenth
/// of the window) longer than an exact window would. 10 counters per window keep a host's
/// three windows at 33 words.
pub const UPSTREAM_RATE_WINDOW_BUCKETS: usize = 10;

/// Longest single pause of a rate-limited session before it checks its limits again, in
/// milliseconds: a limit an operator raises takes effect within this time, and a stop or a
/// disconnect interrupts the pause at once. (indigo's reader polls its limiters every
/// 100 ms; one check a second is enough when the wait is computed, not polled.)
pub const UPSTREAM_RATE_RECHECK_MILLIS_MAX: u64 = 1_000;

/// Stored value of a per-host limit an operator set to unlimited (`0` in changeLimits).
/// A stored `0` means "not set: the relay's default applies". `i64::MAX` so the value fits
/// PostgreSQL's `BIGINT` columns unchanged.
pub const HOST_LIMIT_UNLIMITED_STORED: u64 = i64::MAX as u64;

/// Accounts a new host may have before its traffic earns it more: indigo's
/// `--default-account-limit` (100). A stored host starts at the larger of this and the
/// accounts it already has (growth is not stored; its accounts are).
pub const HOST_ACCOUNT_LIMIT_BASE: u64 = 100;

/// Valid (sequenced) events of a host that earn it `HOST_ACCOUNT_LIMIT_GROWTH_ACCOUNTS`
/// more accounts: one account per 100 valid events, the traffic of a few days of one
/// active account, so a host grows as fast as its real users post.
pub const HOST_ACCOUNT_LIMIT_GROWTH_EVENTS: u64 = 1_000;

/// Accounts one growth step adds (see `HOST_ACCOUNT_LIMIT_GROWTH_EVENTS`).
pub const HOST_ACCOUNT_LIMIT_GROWTH_ACCOUNTS: u64 = 10;

/// Most accounts a host's limit may grow in one UTC day: growth needs sustained traffic,
/// so a burst (or a spam wave of valid events) buys at most this much per day. With the
/// step above it takes 100,000 valid events a day to reach it.
pub const HOST_ACCOUNT_LIMIT_GROWTH_PER_DAY_MAX: u64 = 1_000;

/// Largest account limit growth alone reaches; beyond it an operator decides
/// (`POST /admin/hosts/changeLimits`). indigo trusts `*.host.bsky.network` with
/// 10,000,000 by configuration; an untrusted host growing past 100,000 should be looked at.
pub const HOST_ACCOUNT_LIMIT_GROWN_MAX: u64 = 100_000;

/// Default events per second of a host, before scaling: indigo's baseline (50/s), plus
/// one per `HOST_RATE_PER_SECOND_ACCOUNTS` accounts of its account limit.
pub const HOST_RATE_PER_SECOND_BASE: u64 = 50;

/// Accounts of a host's limit per extra event per second (indigo: limit / 1000).
pub const HOST_RATE_PER_SECOND_ACCOUNTS: u64 = 1_000;

/// Default events per hour of a host, before scaling: indigo's baseline (2,500/h), plus
/// `HOST_RATE_PER_HOUR_PER_ACCOUNT` per account of its limit.
pub const HOST_RATE_PER_HOUR_BASE: u64 = 2_500;

/// Extra events per hour per account of a host's limit (indigo: + limit).
pub const HOST_RATE_PER_HOUR_PER_ACCOUNT: u64 = 1;

/// Default events per day of a host, before scaling: indigo's baseline (20,000/day), plus
/// `HOST_RATE_PER_DAY_PER_ACCOUNT` per account of its limit.
pub const HOST_RATE_PER_DAY_BASE: u64 = 20_000;

/// Extra events per day per account of a host's limit (indigo: + limit × 10).
pub const HOST_RATE_PER_DAY_PER_ACCOUNT: u64 = 10;

/// Default rates of a host whose account limit an operator set to unlimited: indigo's
/// trusted-host limits (5,000/s, 50,000,000/h, 500,000,000/day).
pub const HOST_RATE_UNLIMITED_ACCOUNTS_PER_SECOND: u64 = 5_000;

/// Per-hour default of a host with an unlimited account limit (indigo's trusted hosts).
pub const HOST_RATE_UNLIMITED_ACCOUNTS_PER_HOUR: u64 = 50_000_000;

/// Per-day default of a host with an unlimited account limit (indigo's trusted hosts).
pub const HOST_RATE_UNLIMITED_ACCOUNTS_PER_DAY: u64 = 500_000_000;
// ---- fanout ----

/// Frames the live ring of one fan-out core keeps. A consumer whose next seq is older than
/// the ring's oldest frame replays from the event log instead. 16,384 is indigo's
/// per-subscriber buffer, here shared by every consumer of the core.
pub const FANOUT_RING_FRAMES_MAX: usize = 16_384;

/// Bytes of frames the live ring of one core keeps (the frames stay in their shared-memory
/// segments while the ring holds them, so this bounds the segments it pins: 64 MiB is a
/// quarter of a core's `FRAME_REGION_BYTES`, leaving ingest room to keep reading).
pub const FANOUT_RING_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Unsent bytes a consumer may lag behind the live head before it is disconnected with
/// `ConsumerTooSlow` (rsky-relay caps a subscriber's write buffer at 32 MiB; replay from
/// the log lets us be more patient: 1 GiB is a few minutes of the full network firehose).
pub const FANOUT_CONSUMER_LAG_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// Consumers one fan-out core serves at once; the next upgrade gets HTTP 503
/// `ConsumerLimit`. Each costs a socket, a task and its replay batch at most.
pub const FANOUT_CONSUMERS_PER_CORE_MAX: usize = 4096;

/// Longest a single socket write to a consumer may stay blocked, in seconds, before the
/// consumer is disconnected (`write_timeout`). indigo closes consumers after missed pings
/// at 30 s intervals; one write stalled for 30 s is a dead or hostile reader.
pub const FANOUT_WRITE_TIMEOUT_SECS_MAX: u64 = 30;

/// Replay threads shared by all fan-out cores (log reads block on the disk, so they never
/// run on an executor). Two saturate one disk's sequential reads on this class of machine.
pub const FANOUT_REPLAY_THREADS_MAX: usize = 2;

/// Replay requests waiting for a replay thread; a consumer asking when it is full waits
/// (its task only; the executor keeps running).
pub const FANOUT_REPLAY_QUEUE_REQUESTS_MAX: usize = 1024;

/// Records one replay batch carries back to a consumer.
pub const FANOUT_REPLAY_BATCH_RECORDS_MAX: usize = 256;

/// Payload bytes one replay batch carries back (one batch per consumer is in flight, so
/// this bounds a replaying consumer's memory); a single larger record still travels alone.
pub const FANOUT_REPLAY_BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Frames one consumer write gathers (live frames from the ring, or replayed records): a
/// caught-up consumer gets one frame per write as before; one that is behind gets up to 32
/// in a single `sendmsg`, so its syscalls per frame fall with its lag. 32 frames of 4
/// slices each stay far below the kernel's 1,024-entry `IOV_MAX`.
pub const FANOUT_WRITE_BATCH_FRAMES_MAX: usize = 32;

/// Bytes one gathered consumer write carries at most (a single larger frame still goes
/// alone): 1 MiB keeps one write well inside a socket buffer's worth of work.
pub const FANOUT_WRITE_BATCH_BYTES_MAX: usize = 1024 * 1024;

// ---- api::server ----

/// HTTP connections one core serves at once (consumers included); the next connection
/// gets `503` with an XRPC `ServiceUnavailable` body and is closed.
pub const API_CONNECTIONS_PER_CORE_MAX: usize = 8192;

/// Largest request body the XRPC router reads (the sync endpoints are GETs; admin POSTs
/// carry small JSON).
pub const API_REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;

/// Longest a keep-alive connection may sit idle (or send a head slowly) before it is
/// closed, in seconds.
pub const API_IDLE_TIMEOUT_SECS_MAX: u64 = 60;
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

/// Changed identity-cache DIDs (new entries and purges, each list) waiting for the
/// persister thread; beyond it a change is dropped and counted. 100,000 is a few minutes
/// of a cold network start at the persister's interval.
pub const IDENTITY_PERSIST_PENDING_MAX: usize = 100_000;

/// Seconds between two writes of the identity cache's changes to the state store (and the
/// most a restart loses of them: lost entries are just looked up again).
pub const IDENTITY_PERSIST_INTERVAL_SECS: u64 = 10;

/// Identity entries one store call writes or reads (start-up load pages and persister
/// batches), so one call never holds the state thread long.
pub const IDENTITY_PERSIST_BATCH_ENTRIES_MAX: usize = 1_000;

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
// ---- sim::fleet ----

/// Most pre-signed events a generator may hold ahead of the emit loop. The buffer lets
/// the emit loop outrun a relay (it only stamps `time` and writes); its bound caps the
/// simulator's memory at about this many frames (mostly ~1 KB, rarely 2 MB).
pub const SIM_PRESIGN_BUFFER_EVENTS_MAX: usize = 1_000_000;

/// Most events one simulated host keeps for cursor replay (a PDS keeps a bounded
/// backlog; bigger cursors past it get `#info OutdatedCursor`).
pub const SIM_BACKLOG_EVENTS_MAX: usize = 1_000_000;

/// Most bytes of frames one simulated host keeps for cursor replay: bounds memory when
/// large commits are in the mix, whatever the event count.
pub const SIM_BACKLOG_BYTES_MAX: usize = 512 * 1024 * 1024;

/// Records an account's repo holds before the simulator pairs each create with a
/// delete: keeps 300,000 repos lean (a few KB each) however long a run lasts.
pub const SIM_REPO_RECORDS_MAX: usize = 16;

/// Creates in one large commit: as many `SIM_RECORD_SIZE_BYTES_MAX` records as fit in a
/// `COMMIT_BLOCKS_BYTES_MAX` CAR slice with 64 KiB left for the commit and MST nodes.
pub const SIM_LARGE_COMMIT_OPS_MAX: usize =
    (COMMIT_BLOCKS_BYTES_MAX - 64 * 1024) / (SIM_RECORD_SIZE_BYTES_MAX + 128);

/// Most simulated hosts in one fleet (each is a listening socket; 3,000 is the
/// project's target size, with headroom).
pub const SIM_HOSTS_MAX: usize = 10_000;

/// Most accounts in one fleet (the target is 300,000, with headroom).
pub const SIM_ACCOUNTS_MAX: usize = 10_000_000;

/// Bytes a slow-drip host writes at a time, with `SIM_SLOW_DRIP_PAUSE_MICROS_MAX`
/// between pieces: slow enough to hold a reader's buffer open for seconds.
pub const SIM_SLOW_DRIP_CHUNK_BYTES_MAX: usize = 64;

/// Pause between the pieces of a slow-drip host, in microseconds.
pub const SIM_SLOW_DRIP_PAUSE_MICROS_MAX: u64 = 20_000;

/// Events after which a seq-resetting host starts its sequence again at 1.
pub const SIM_SEQ_RESET_EVENTS_MAX: u64 = 500;

/// Largest HTTP request body a simulated host or the PLC directory reads (they only
/// serve GETs).
pub const SIM_HTTP_BODY_BYTES_MAX: usize = 64 * 1024;

/// Most bytes gathered into one socket write by a subscriber session: batching small
/// frames saves syscalls; larger frames are written on their own.
pub const SIM_WRITE_BATCH_BYTES_MAX: usize = 256 * 1024;

/// Most repos one `com.atproto.sync.listRepos` page returns (the lexicon's maximum).
pub const SIM_LIST_REPOS_LIMIT_MAX: usize = 1_000;
// ---- state ----

/// Longest key-like field the state store accepts, in bytes: a DID, a hostname, a domain
/// ban, a backfill key or cursor. DIDs are at most 2 KiB by the DID syntax spec; anything
/// longer was never validated and is refused rather than stored.
pub const STATE_KEY_BYTES_MAX: usize = 2048;

/// Longest rev stored, in bytes. A TID is 13 characters; the margin admits any rev a
/// future spec revision could bring without letting a hostile value grow records.
pub const STATE_REV_BYTES_MAX: usize = 64;

/// Longest binary CID stored, in bytes: a CIDv1 header (4 bytes) plus a 64-byte digest
/// with its multihash header leaves room under 128.
pub const STATE_DATA_CID_BYTES_MAX: usize = 128;

/// Longest binary commit CID stored (an account's current commit, served as `listRepos`
/// `head` and `getLatestCommit` `cid`), in bytes: the same CIDv1 shape as the data CID.
pub const STATE_COMMIT_CID_BYTES_MAX: usize = STATE_DATA_CID_BYTES_MAX;

/// Largest serialized identity resolution entry stored, in bytes. The DID document is
/// bounded far lower by `identity`; this only keeps one bad entry from bloating the
/// snapshot.
pub const STATE_IDENTITY_ENTRY_BYTES_MAX: usize = 64 * 1024;

/// Most records one `list_*` page returns. Callers page; a page this size is a few
/// hundred KiB at most in memory.
pub const STATE_LIST_PAGE_ENTRIES_MAX: usize = 1000;

/// Most distinct keys (host cursors + account revs) waiting in the write-behind buffer.
/// At this bound a `record_*` call for a new key returns `Full` and the caller must slow
/// its socket read (backpressure, never loss). 65,536 entries of ~100 bytes is ~6.5 MiB;
/// at 10,000 commits/s over distinct accounts it is ~6 s of slack for a stalled disk.
pub const STATE_WRITE_BEHIND_ENTRIES_MAX: usize = 65_536;

/// Write-behind entries that trigger a flush before the interval elapses: large enough to
/// amortize a RocksDB write or a PostgreSQL transaction, small enough that one flush is a
/// few milliseconds.
pub const STATE_FLUSH_BATCH_ENTRIES_MAX: usize = 4096;

/// Longest time an update waits in the write-behind buffer before it is flushed, in
/// milliseconds: a crash loses at most this much cursor progress (re-read from the host
/// on resume) and the write rate stays at most 10 batches per second.
pub const STATE_FLUSH_INTERVAL_MILLIS_MAX: u64 = 100;

/// Most requests (reads, creations, flushes) queued to the state thread. Full: the call
/// fails at once with `StateError::QueueFull` (counted); the data plane retries or
/// slows down, it never blocks on the queue.
pub const STATE_REQUEST_QUEUE_ENTRIES_MAX: usize = 4096;

/// Most requests queued to the PostgreSQL connection thread. Full: the calling state
/// thread blocks until there is room (state threads may block; the data plane never calls
/// the store directly).
pub const STATE_PG_REQUEST_QUEUE_ENTRIES_MAX: usize = 256;

/// Longest wait for the PostgreSQL server to accept a connection, in seconds.
pub const STATE_PG_CONNECT_TIMEOUT_SECONDS_MAX: u64 = 10;

// ---- collections ----

/// Most DIDs one `listReposByCollection` page returns (the lexicon's `maximum`); the
/// store's collection page is bounded by the same figure.
pub const COLLECTIONS_LIST_PAGE_ENTRIES_MAX: usize = 2000;

/// `listReposByCollection`'s `limit` when the request names none (the lexicon's default).
pub const COLLECTIONS_LIST_PAGE_ENTRIES_DEFAULT: usize = 500;

/// Event-log records the indexer reads before it writes what they added and saves its
/// cursor: one store round trip per batch, and at most this many records re-read after a
/// crash.
pub const COLLECTIONS_INDEX_BATCH_RECORDS_MAX: usize = 8192;

/// New `(collection, did)` pairs written in one store call at most.
pub const COLLECTIONS_INDEX_BATCH_PAIRS_MAX: usize = 4096;

/// How long the indexer sleeps when it has caught up with the durable log, in
/// milliseconds: the index lags the firehose by about this much, which
/// `listReposByCollection` readers (crawlers, backfillers) do not notice.
pub const COLLECTIONS_INDEX_POLL_MILLIS: u64 = 250;

/// Pause before the indexer retries a failed store write or log read, in milliseconds.
pub const COLLECTIONS_INDEX_RETRY_MILLIS: u64 = 1000;

/// Recently written pairs the indexer remembers to skip rewriting them (8 bytes each,
/// 2 MiB at this bound; cleared when full).
pub const COLLECTIONS_SEEN_PAIRS_MAX: usize = 262_144;

/// DIDs asked for per page from a backfill source: what zlay's backfill asks (the
/// lexicon allows 2,000, but not every relay serves that many).
pub const COLLECTIONS_BACKFILL_PAGE_ENTRIES: usize = 1000;

/// Largest backfill page body read, in bytes (1,000 DIDs are ~60 KB of JSON).
pub const COLLECTIONS_BACKFILL_RESPONSE_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Longest wait for a backfill source to connect or answer one read, in seconds.
pub const COLLECTIONS_BACKFILL_TIMEOUT_SECS: u64 = 30;

/// Consecutive failed page fetches after which a backfill job is marked `failed` (an
/// operator's new trigger resumes it from its saved cursor).
pub const COLLECTIONS_BACKFILL_ATTEMPTS_MAX: u32 = 5;

/// Collections one backfill trigger may name (zlay's full-network backfill covered
/// 1,269 collections).
pub const COLLECTIONS_BACKFILL_COLLECTIONS_MAX: usize = 10_000;

/// How often the backfill worker looks for queued jobs without being woken, in seconds
/// (a trigger wakes it at once; this catches a wake lost to a full wake queue).
pub const COLLECTIONS_BACKFILL_IDLE_SECS: u64 = 60;

// ---- runtime::bootstrap ----

/// Most hosts imported from a `--bootstrap-relay` (the whole network is a few thousand
/// PDSes; this leaves room while bounding what a hostile source can make us store).
pub const BOOTSTRAP_HOSTS_MAX: usize = 100_000;

/// Largest `listHosts` page body read from a bootstrap relay, in bytes (1,000 hosts are
/// ~100 KB of JSON).
pub const BOOTSTRAP_RESPONSE_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Longest wait for a bootstrap relay to connect or answer one read, in seconds.
pub const BOOTSTRAP_TIMEOUT_SECS: u64 = 30;

// ---- runtime::resume ----

/// Records at the end of the event log read at start to recover each account's last
/// accepted rev: the state store's write-behind may trail the log by one flush interval
/// when the process dies, and without this a re-crawled commit could be relayed twice.
/// 200,000 records cover several seconds at the rates one machine sustains, far more than
/// one flush interval.
pub const RESUME_SCAN_RECORDS_MAX: u64 = 200_000;

/// How long our Close frame may take to write when a session ends a connection, in
/// milliseconds; then the socket is dropped anyway, so a peer that stops reading cannot
/// hold a session (or a shutdown) for longer.
pub const UPSTREAM_CLOSE_WRITE_TIMEOUT_MILLIS_MAX: u64 = 1_000;
// ---- api ----

/// New hosts `com.atproto.sync.requestCrawl` admits per UTC day, across all cores.
/// indigo's relay defaults `--new-hosts-per-day-limit` to 50: enough for organic PDS
/// growth, small enough that a flood of fake hosts cannot make the relay dial thousands
/// of names. Hosts already known (re-crawls) and admin actions do not count.
pub const API_NEW_HOSTS_PER_DAY_MAX: u64 = 50;

/// Longest a requestCrawl liveness check (DNS, TCP, TLS, `describeServer`) may take, in
/// milliseconds. A live PDS answers in well under a second; the bound keeps a slow or
/// tarpitting host from holding a request (and its connection) open.
pub const API_CRAWL_CHECK_TIMEOUT_MILLIS_MAX: u64 = 10_000;

/// Largest `describeServer` response body read during a liveness check, in bytes. The
/// reference PDS answers with a few hundred bytes; 64 KiB leaves room for long policy
/// links without letting a hostile host make us buffer megabytes.
pub const API_CRAWL_DESCRIBE_BODY_BYTES_MAX: usize = 64 * 1024;

/// Longest hostname accepted by requestCrawl and the admin host calls, in bytes: the DNS
/// limit on a presentation-form name (RFC 1035 §2.3.4, 253 characters without the dot),
/// plus room for `:port` when private hosts are allowed.
pub const API_HOSTNAME_BYTES_MAX: usize = 253 + 6;

/// Accepted crawl requests waiting for the ingest side (`api::xrpc::crawl_channel`).
/// Full: requestCrawl answers 503 `ServiceUnavailable` (counted in
/// `relay_api_crawl_refused_total{reason="queue_full"}`); the host is already stored, so
/// the PDS's retry is cheap and does not count against the daily budget again.
pub const API_CRAWL_QUEUE_ENTRIES_MAX: usize = 1024;

/// Admin notifications waiting for the serve wiring (`admin::admin_channel`). Full: the
/// admin call (already applied to the store) answers 503 and the operator repeats it;
/// every admin call is idempotent.
pub const API_ADMIN_EVENT_QUEUE_ENTRIES_MAX: usize = 1024;

// ---- runtime::serve (admin) ----

/// Account status changes queued from the admin API to each ingest shard. When one is
/// full the change is logged and applied at the next start (the store already holds it).
pub const ADMIN_STATUS_QUEUE_ENTRIES_MAX: usize = 1024;

/// How long the admin applier waits between telling the ingest shards that an account is
/// taken down and writing its tombstone, in milliseconds: frames verified just before the
/// change are durable well within it (group commit is `EVENTLOG_FSYNC_INTERVAL_MICROS_MAX`),
/// so the tombstone hides them too.
pub const ADMIN_TAKEDOWN_SETTLE_MILLIS: u64 = 200;

/// Entries `GET /admin/rejections` returns without a `limit`.
pub const ADMIN_REJECTIONS_LIST_ENTRIES_DEFAULT: usize = 100;

/// Most entries one `GET /admin/rejections` returns (`limit` above it is 400): one reply
/// stays around 200 KB of JSON.
pub const ADMIN_REJECTIONS_LIST_ENTRIES_MAX: usize = 1_000;

// A reply can be filled from one shard's ring alone; an entry's DID fits the DID syntax.
const _: () =
    assert!(ADMIN_REJECTIONS_LIST_ENTRIES_MAX <= INGEST_REJECTION_LOG_ENTRIES_PER_SHARD_MAX);
const _: () = assert!(ADMIN_REJECTIONS_LIST_ENTRIES_DEFAULT <= ADMIN_REJECTIONS_LIST_ENTRIES_MAX);
const _: () = assert!(INGEST_REJECTION_LOG_DID_BYTES_MAX <= DID_LENGTH_BYTES_MAX);

/// How often `relay serve` runs event-log retention, in seconds. Segments are deleted
/// whole, so a minute of lateness costs at most a minute of extra disk.
pub const EVENTLOG_RETENTION_INTERVAL_SECS: u64 = 60;

/// Wait before asking the identity resolver again after it refused a lookup because its
/// queue was full, in milliseconds.
pub const INGEST_IDENTITY_RETRY_MILLIS: u64 = 50;

/// Lookups of one DID that failed on the network (connect, time-out, HTTP, a 5xx or 429
/// answer) before its parked frames are dropped as `identity_unresolved`: a PLC directory
/// slow under a cold start's burst of lookups must cost waiting, not valid events.
pub const INGEST_IDENTITY_TRANSIENT_ATTEMPTS_MAX: u32 = 4;

/// Wait before the first retry of a transiently failed lookup, in milliseconds; doubled
/// for each further one (250, 500, 1,000 ms: under two seconds in all).
pub const INGEST_IDENTITY_TRANSIENT_BACKOFF_MILLIS: u64 = 250;
// ---- bench ----

/// Most checking consumers one `relay bench` run starts (the `fanout` scenario asks for
/// 100; each is a thread with its own socket and identity cache).
pub const BENCH_CONSUMERS_MAX: usize = 1_000;

/// Longest measured window of one `relay bench` run, in seconds (the 30-minute `soak`
/// scenario, with room for a longer one). It also bounds the per-second samples kept.
pub const BENCH_DURATION_SECS_MAX: u64 = 24 * 3600;

/// Longest wait for the relay under test to answer on its metrics port and connect to
/// every simulated host, in seconds (3,000 hosts connect in a few seconds here).
pub const BENCH_RELAY_START_SECS_MAX: u64 = 120;

/// Longest wait for the relay under test to exit after SIGTERM before it is killed, in
/// seconds (its shutdown joins the executors; the log is recovered on the next start).
pub const BENCH_RELAY_STOP_SECS_MAX: u64 = 20;

/// Largest `/metrics` answer read from the relay under test, in bytes (a few hundred
/// series with bounded labels are ~50 KB).
pub const BENCH_METRICS_RESPONSE_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Longest a `/metrics` scrape may take (connect, write, read), in milliseconds; a slow
/// scrape is skipped for that second rather than stalling the sampler.
pub const BENCH_METRICS_TIMEOUT_MILLIS_MAX: u64 = 2_000;

/// Longest wait for the `max` scenario's simulator to pre-generate its backlog, in
/// seconds.
pub const BENCH_BACKLOG_FILL_SECS_MAX: u64 = 600;
