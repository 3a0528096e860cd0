//! An ingest shard's verifier: takes the frames its upstream sessions read, checks each
//! host's sequence, finds each account's identity (parking the account's frames while it
//! resolves), applies the rule set, and sends what passes to the sequencer ring.
//!
//! Owns: per-host sequence checks and cursors (through each session's `SessionControl`),
//! the shard's account table (parsed key, PDS authority, last accepted rev and data;
//! an `#identity` drops the key and PDS but keeps the uid, state and statuses, see
//! `Known`), parking, forced re-resolution after a bad signature or host mismatch, the
//! rejection counters, and what each rejection knows (host, DID, upstream seq, frame
//! type), recorded in the shard's ring of `runtime::rejections` without waiting
//! (`try_lock`; a contended entry is dropped and counted). Must not: read sockets (the
//! sessions do), block (identity lookups are futures completed by the resolver threads),
//! or assign seqs.
//!
//! Everything runs in **one task** per shard, so an account's frames are judged and sent
//! in the order they arrived whatever waits in between: a frame of an account that has
//! frames parked is parked behind them.
//!
//! Queues and their policies:
//! * sessions → verifier (`INGEST_UPSTREAM_QUEUE_FRAMES_MAX`): **block** the sessions.
//! * parked frames: per account `INGEST_PARKED_FRAMES_PER_ACCOUNT_MAX`, per shard
//!   `INGEST_PARKED_BYTES_MAX` bytes: **block** — a frame that must park past either bound
//!   is held and the shard takes nothing else until a lookup finishes and makes room (its
//!   sessions stop reading). Only when no lookup is in flight (nothing can make room) is
//!   it dropped, with reason `parked_account_full` / `parked_bytes_full`. A lookup refused
//!   because the resolver's queue is full is asked again (`INGEST_IDENTITY_RETRY_MILLIS`);
//!   a failed lookup drops the account's parked frames with `identity_unresolved`.
//! * verifier → sequencer ring: **block** (the verifier awaits; sessions then block).
//! * rejections → the shard's rejection ring: the oldest entry is overwritten; the ring
//!   held by an admin reader → the entry is **dropped**, counted
//!   (`relay_verify_rejection_log_dropped_total{reason="contended"}`).
//!
//! Checks: upstream seq strictly increasing per connection and above the relay's cursor
//! for the host across connections (a seq that goes back — a wiped or restored PDS, or a
//! replay — is refused, counted once per connection in
//! `relay_upstream_seq_regressions_total`, logged once per connection and flagged for
//! `GET /admin/hosts` through `runtime::seq_alerts` until an operator resets the cursor;
//! never followed by itself), host authority (the account's DID document names this host
//! as its PDS), the relay's and the host's account status, each host's account limit, and
//! everything `verify::rules` checks.
//!
//! Per-host limits (`verify::limits`): the shard keeps each host's operator settings and
//! its account-limit growth, which every sequenced frame of the host feeds. From both it
//! computes the limits in force, hands the rates to the host's session (which holds frames
//! back until its windows admit them: backpressure, no drop) and publishes them for
//! `GET /admin/hosts` (`HostLimitsBoard`). A commit or sync of a DID the store does not know
//! yet, arriving while its host has as many accounts as its limit, is dropped with
//! `host_account_limit` (so are the frames parked behind it), and the DID is refused at once
//! until the host's limit grows or an operator changes it; accounts the store knows keep
//! flowing. `#identity` and `#account` events of unknown DIDs create no account and pass
//! as before. Does not check: per-account rate limits.
//!
//! Account status: commits and syncs of an account the relay took down or suspended, or
//! whose host said it is not active (`#account`), are refused (`status_refusal`); an
//! upstream status that went stale is healed by `runtime::status_recheck`, which asks the
//! host's `getRepoStatus` and sends `ShardCommand::UpstreamActive`.

use crate::config::limits::{
    INGEST_ACCOUNTS_MAX, INGEST_IDENTITY_REFRESH_SECS_MIN, INGEST_IDENTITY_RETRY_MILLIS,
    INGEST_IDENTITY_TRANSIENT_ATTEMPTS_MAX, INGEST_IDENTITY_TRANSIENT_BACKOFF_MILLIS,
    INGEST_PARKED_BYTES_MAX, INGEST_PARKED_FRAMES_PER_ACCOUNT_MAX,
};
use crate::eventlog::AccountKey;
use crate::frame::event::{AccountEventOwned, Event, Frame};
use crate::identity::service::{IdentityService, Resolved, now_micros};
use crate::runtime::frames::FrameBufferError;
use crate::runtime::frames::FrameHandle;
use crate::runtime::rejections::{Rejected, ShardRejections};
use crate::runtime::resume::TailStates;
use crate::runtime::seq_alerts::{Recorded, SeqAlerts, SeqRegression};
use crate::sequencer::stage::{Admitted, Origin};
use crate::sim::account::rfc3339_micros;
use crate::state::{AccountRecord, HostRecord, LocalStatus, StateService, UpstreamStatus};
use crate::upstream::session::{SessionControl, UpstreamFrame};
use crate::upstream::target::HostId;
use crate::verify::limits::{
    AccountLimitGrowth, EffectiveLimits, HostLimitSettings, HostLimitsBoard,
};
use crate::verify::rules::{
    AccountState, Policy, Rejection, Verified, VerifyScratch, verify_commit_frame_with,
    verify_status_frame, verify_sync_frame,
};
use crate::verify::signature::{ParsedKey, VerifierSet};
use glommio::channels::local_channel::{LocalReceiver, LocalSender};
use glommio::channels::shared_channel::ConnectedSender;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the verifier knows of one upstream host.
pub struct HostEntry {
    /// `host[:port]` as the host's URL names it (compared with DID documents' PDS).
    pub authority: String,
    /// The same name, shared with the rejection log's entries (a reference-count bump per
    /// rejection, no copy).
    hostname: Arc<str>,
    /// The session's control block (cursor, disconnect).
    pub control: Rc<SessionControl>,
    last_seq: Option<(u64, u64)>,
    /// The relay's cursor for the host across connections: the highest seq accepted, or
    /// the stored cursor it resumed from (0: none). A frame at or below it is refused
    /// (`upstream_seq_not_increasing`) on any connection until an operator resets the
    /// cursor: the relay never follows a restarted sequence by itself.
    floor: u64,
    /// The connection on which the host's seq last went back (counted and logged once
    /// per connection), and whether the admin listing flags it already.
    regressed: Option<(u64, bool)>,
    /// An operator banned the host: its session is stopped and any frame of it still
    /// queued or parked is dropped (`host_banned`).
    banned: bool,
    /// Frames of connections numbered below this came before an operator's cursor reset
    /// and are dropped (`host_cursor_reset`): their seqs belong to the old sequence.
    connections_from: u64,
    /// Upstream seqs of this host's frames parked now (a multiset): the cursor written to
    /// the state store never passes the oldest, or a crash would lose them.
    parked_seqs: BTreeMap<u64, u32>,
    /// What an operator set for the host (stored; changed live by `SetHostLimits`).
    settings: HostLimitSettings,
    /// The host's default account limit, grown by its sequenced frames.
    growth: AccountLimitGrowth,
    /// Bumped whenever the account limit in force may have risen: DIDs refused for the
    /// limit under an older generation are looked up again.
    limit_generation: u64,
    /// Whether the relay's default limits apply to what the operator did not set (set by
    /// the shard when the host is added, from `--no-default-host-limits`).
    default_limits: bool,
}

impl HostEntry {
    /// A host whose session is controlled by `control`.
    pub fn new(authority: String, control: Rc<SessionControl>) -> HostEntry {
        HostEntry {
            hostname: Arc::from(authority.as_str()),
            authority,
            last_seq: None,
            floor: control.cursor.get().unwrap_or(0),
            regressed: None,
            banned: false,
            connections_from: 0,
            parked_seqs: BTreeMap::new(),
            settings: HostLimitSettings::default(),
            growth: AccountLimitGrowth::new(0),
            limit_generation: 0,
            default_limits: true,
            control,
        }
    }

    /// The same host with the limits its stored record holds: the operator's settings,
    /// and growth starting from the accounts it has.
    pub fn with_stored_limits(mut self, record: &HostRecord) -> HostEntry {
        self.settings = HostLimitSettings::of_host(record);
        self.growth = AccountLimitGrowth::new(record.account_count);
        self
    }

    /// The limits in force now.
    pub fn limits(&self) -> EffectiveLimits {
        EffectiveLimits::new(&self.settings, &self.growth, self.default_limits)
    }
}

/// An operator's change an ingest shard applies (sent by the admin applier thread).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardCommand {
    /// The relay's own status of an account changed.
    AccountStatus(String, LocalStatus),
    /// Stop the host's session for good and drop what is still queued of it.
    BanHost(HostId),
    /// The host restarted its sequence (a wiped PDS): forget its cursor and resubscribe
    /// from its oldest event; frames of the old connection still queued are dropped.
    /// Account revs still refuse anything already relayed.
    ResetHostCursor(HostId),
    /// An operator changed the host's limits (stored already): apply them now, without a
    /// reconnect.
    SetHostLimits(HostId, HostLimitSettings),
    /// The account's host says it is active again (the status re-checker asked its
    /// `getRepoStatus`): accept its commits; with `true`, the relay's local status is
    /// active too and the announcing shard sends `#account` active.
    UpstreamActive(String, bool),
}

/// An identity lookup's outcome (and, on first sight, the account's stored record),
/// delivered back to the shard's task.
pub struct Resolution {
    did: String,
    /// The host whose frame started the lookup.
    host: Option<HostId>,
    outcome: Result<Arc<Resolved>, &'static str>,
    /// `Ok(None)`: a new account refused for the host's account limit.
    record: Option<Result<Option<AccountRecord>, &'static str>>,
}

struct Account {
    key: ParsedKey,
    pds_authority: Option<String>,
    state: Option<AccountState>,
    account_key: AccountKey,
    uid: Option<u64>,
    refreshed_at: Option<Instant>,
    /// The relay's own decision (takedown, suspension), from the store and the admin API.
    local_status: LocalStatus,
    /// Whether the host's last `#account` said the account is active.
    upstream_active: bool,
}

impl Account {
    fn known(&self) -> Known {
        Known {
            uid: self.uid,
            state: self.state,
            local_status: self.local_status,
            upstream_active: self.upstream_active,
        }
    }
}

/// What the shard knows of an account besides its identity. An `#identity` drops the key
/// and PDS (they are resolved again) but keeps this, so the account keeps its uid (its
/// commits are still written to the store: rev and head), the state of its last accepted
/// commit (the rev and chain checks go on; the store may trail frames still in flight),
/// and the relay's and its host's statuses.
#[derive(Clone, Copy)]
struct Known {
    uid: Option<u64>,
    state: Option<AccountState>,
    local_status: LocalStatus,
    upstream_active: bool,
}

impl Known {
    /// An account first seen, before its stored record is read.
    const NEW: Known = Known {
        uid: None,
        state: None,
        local_status: LocalStatus::Active,
        upstream_active: true,
    };
}

#[derive(Default)]
struct Slot {
    account: Option<Account>,
    /// Kept from `account` while an `#identity` has it re-resolved.
    kept: Option<Known>,
    parked: VecDeque<UpstreamFrame>,
    resolving: bool,
    /// Refused as a new account of this host at this limit generation: its frames are
    /// dropped at once (`host_account_limit`) until the host's generation moves on.
    over_limit: Option<(HostId, u64)>,
    /// A status re-check healed the account while its stored record was being read for a
    /// lookup: that record may predate the heal, so the install keeps the account active.
    upstream_healed: bool,
}

/// The kinds of frame the verifier routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Commit,
    Sync,
    Identity,
    Account,
}

/// What the first decode tells the router.
struct Peek {
    kind: Kind,
    seq: u64,
    did: Range<usize>,
}

enum Routed {
    Peeked(Peek),
    /// Handled already (info, error frames) or refused.
    Done(Option<Refusal>),
}

/// A frame refused while routing: the reason and what was decoded of the frame.
struct Refusal {
    reason: &'static str,
    seq: Option<u64>,
    did: Option<Range<usize>>,
    kind: Option<Kind>,
}

impl Refusal {
    /// Refused before anything of the frame was decoded but perhaps its seq.
    fn bare(reason: &'static str, seq: Option<u64>) -> Refusal {
        Refusal {
            reason,
            seq,
            did: None,
            kind: None,
        }
    }
}

impl Kind {
    /// The `frame_type` spelling of the rejection log (as the sequencer's metrics).
    fn label(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Sync => "sync",
            Kind::Identity => "identity",
            Kind::Account => "account",
        }
    }
}

/// What a refusal knows of its frame besides the reason (the host as its id: `reject`
/// names it through the shard's `HostEntry`).
#[derive(Clone, Copy, Default)]
struct At<'a> {
    host: Option<HostId>,
    did: Option<&'a str>,
    seq: Option<u64>,
    kind: Option<Kind>,
}

impl<'a> At<'a> {
    /// A frame of `host` about `did`, routed with `seq` as a `kind`.
    fn frame(host: HostId, did: &'a str, seq: u64, kind: Kind) -> At<'a> {
        At {
            host: Some(host),
            did: Some(did),
            seq: Some(seq),
            kind: Some(kind),
        }
    }
}

/// One ingest shard's verifier state. Lives on its executor (`!Send`).
pub struct IngestShard {
    shard: u16,
    strict: bool,
    hosts: HashMap<HostId, HostEntry>,
    accounts: HashMap<String, Slot>,
    account_order: VecDeque<String>,
    parked_bytes: usize,
    identity: IdentityService,
    state: Arc<StateService>,
    tail: Arc<TailStates>,
    resolved_tx: Rc<LocalSender<Resolution>>,
    ring: ConnectedSender<Admitted>,
    scratch: VerifyScratch,
    lookups_in_flight: usize,
    shard_label: String,
    parked_gauge: metrics::Gauge,
    rejections: Arc<ShardRejections>,
    writer: Option<Rc<std::cell::RefCell<crate::runtime::frames::FrameWriter>>>,
    limits_board: Arc<HostLimitsBoard>,
    default_limits: bool,
    seq_alerts: Arc<SeqAlerts>,
    regressions_counter: metrics::Counter,
}

/// What a shard is built from.
pub struct ShardParts {
    /// The shard's number (metric label, frame region id).
    pub shard: u16,
    /// Strict or lenient validation.
    pub strict: bool,
    /// Identity resolution.
    pub identity: IdentityService,
    /// The state store's service.
    pub state: Arc<StateService>,
    /// Account states recovered from the log's tail.
    pub tail: Arc<TailStates>,
    /// This shard's ring of the rejection log (`GET /admin/rejections`).
    pub rejections: Arc<ShardRejections>,
    /// Where the limits in force of the shard's hosts are published.
    pub limits_board: Arc<HostLimitsBoard>,
    /// Apply the relay's default host limits (false: `--no-default-host-limits`).
    pub default_limits: bool,
    /// The hosts whose seq went back, flagged for `GET /admin/hosts`.
    pub seq_alerts: Arc<SeqAlerts>,
}

impl IngestShard {
    /// A shard sending to `ring`, resolving through `identity`; `resolved_tx` is the
    /// sender of the channel whose receiver is passed to [`IngestShard::run`].
    pub fn new(
        parts: ShardParts,
        resolved_tx: LocalSender<Resolution>,
        ring: ConnectedSender<Admitted>,
    ) -> IngestShard {
        let ShardParts {
            shard,
            strict,
            identity,
            state,
            tail,
            rejections,
            limits_board,
            default_limits,
            seq_alerts,
        } = parts;
        IngestShard {
            shard,
            strict,
            hosts: HashMap::new(),
            accounts: HashMap::new(),
            account_order: VecDeque::new(),
            parked_bytes: 0,
            identity,
            state,
            tail,
            resolved_tx: Rc::new(resolved_tx),
            ring,
            scratch: VerifyScratch::new(),
            lookups_in_flight: 0,
            shard_label: shard.to_string(),
            parked_gauge: metrics::gauge!("relay_ingest_parked_bytes", "shard" => shard.to_string()),
            rejections,
            writer: None,
            limits_board,
            default_limits,
            seq_alerts,
            regressions_counter: metrics::counter!("relay_upstream_seq_regressions_total", "shard" => shard.to_string()),
        }
    }

    /// Register a host before its session delivers frames.
    /// Apply an operator's change.
    pub async fn apply(&mut self, command: ShardCommand) {
        match command {
            ShardCommand::AccountStatus(did, status) => self.set_local_status(&did, status).await,
            ShardCommand::UpstreamActive(did, announce) => {
                self.set_upstream_active(&did, announce).await
            }
            ShardCommand::BanHost(id) => {
                if let Some(host) = self.hosts.get_mut(&id) {
                    host.banned = true;
                    host.control.stop();
                    log::info!("admin: host {} banned: session stopped", id.0);
                }
            }
            ShardCommand::ResetHostCursor(id) => {
                if let Some(host) = self.hosts.get_mut(&id) {
                    host.connections_from = host.control.connection() + 1;
                    host.last_seq = None;
                    host.floor = 0;
                    host.regressed = None;
                    host.parked_seqs.clear();
                    host.control.cursor.set(Some(0));
                    // Latest wins in the write-behind: an older cursor still waiting
                    // there must not be flushed over the reset.
                    let _ = self.state.record_host_cursor(id.0, 0);
                    host.control.disconnect("host_cursor_reset");
                    log::info!("admin: host {} cursor reset: resubscribing from 0", id.0);
                }
                self.seq_alerts.clear(id.0).await;
            }
            ShardCommand::SetHostLimits(id, settings) => {
                if let Some(host) = self.hosts.get_mut(&id) {
                    host.settings = settings;
                    host.limit_generation += 1;
                    log::info!("admin: host {} limits changed: {settings:?}", id.0);
                }
                self.publish_limits(id);
            }
        }
    }

    /// Hand host `id`'s rates in force to its session and publish its limits.
    fn publish_limits(&self, id: HostId) {
        if let Some(host) = self.hosts.get(&id) {
            let limits = host.limits();
            host.control.set_rate_limits(limits.rates);
            self.limits_board.set(id.0, limits);
        }
    }

    /// A sequenced frame of `host` counts toward its account-limit growth.
    fn count_valid(&mut self, host: HostId) {
        let now_ms = now_micros() / 1_000;
        let grew = self
            .hosts
            .get_mut(&host)
            .is_some_and(|entry| entry.growth.on_valid_event(now_ms));
        if grew {
            if let Some(entry) = self.hosts.get_mut(&host) {
                entry.limit_generation += 1;
            }
            self.publish_limits(host);
        }
    }

    /// Whether `did` was refused as a new account of `host` at its current limit.
    fn over_account_limit(&self, did: &str, host: HostId) -> bool {
        let Some((refused_on, generation)) = self.accounts.get(did).and_then(|s| s.over_limit)
        else {
            return false;
        };
        refused_on == host
            && self
                .hosts
                .get(&host)
                .is_some_and(|entry| entry.limit_generation == generation)
    }

    /// Why a frame of `host` read on `connection` is dropped whatever it holds: the host
    /// was banned, or the frame is from before a cursor reset.
    fn host_refusal(&self, host: HostId, connection: u64) -> Option<&'static str> {
        let entry = self.hosts.get(&host)?;
        if entry.banned {
            Some("host_banned")
        } else if connection < entry.connections_from {
            Some("host_cursor_reset")
        } else {
            None
        }
    }

    /// Register (or replace, after an unban) a host and its session control, and put its
    /// limits in force.
    pub fn add_host(&mut self, host: HostId, mut entry: HostEntry) {
        entry.default_limits = self.default_limits;
        self.hosts.insert(host, entry);
        self.publish_limits(host);
    }

    /// Judge frames and resolutions until the sessions' channel closes. Resolutions are
    /// served first: they are rare, and they release parked frames.
    /// Hosts added while running (requestCrawl) arrive on `hosts` before their session
    /// starts, so their first frame finds them.
    pub async fn run(
        mut self,
        frames: LocalReceiver<UpstreamFrame>,
        resolved: LocalReceiver<Resolution>,
        hosts: LocalReceiver<(HostId, HostEntry)>,
        commands: flume::Receiver<ShardCommand>,
    ) {
        let mut held: Option<Held> = None;
        loop {
            if let Some((upstream, peek)) = held.take() {
                // Only lookups can make room: wait for the next one, then try again.
                if self.lookups_in_flight > 0
                    && !self.has_room(did_of(&upstream.frame, &peek.did), upstream.frame.len())
                {
                    match resolved.recv().await {
                        Some(resolution) => self.on_resolved(resolution).await,
                        None => return,
                    }
                    held = Some((upstream, peek));
                } else {
                    held = self.dispatch(upstream, peek).await;
                }
                continue;
            }
            let work = futures_lite::future::or(
                async { resolved.recv().await.map(Work::Resolved) },
                futures_lite::future::or(
                    async { hosts.recv().await.map(|(id, entry)| Work::Host(id, entry)) },
                    futures_lite::future::or(
                        async {
                            match commands.recv_async().await {
                                Ok(command) => Some(Work::Command(command)),
                                // No admin API any more: nothing will come; never end here.
                                Err(_) => std::future::pending().await,
                            }
                        },
                        async { frames.recv().await.map(Work::Frame) },
                    ),
                ),
            )
            .await;
            match work {
                Some(Work::Frame(frame)) => held = self.on_frame(frame).await,
                Some(Work::Resolved(resolution)) => self.on_resolved(resolution).await,
                Some(Work::Host(id, entry)) => self.add_host(id, entry),
                Some(Work::Command(command)) => self.apply(command).await,
                None => return,
            }
        }
    }

    async fn on_frame(&mut self, upstream: UpstreamFrame) -> Option<Held> {
        let peek = match self.route(&upstream) {
            Routed::Peeked(peek) => peek,
            Routed::Done(refusal) => {
                if let Some(refusal) = refusal {
                    let at = At {
                        host: Some(upstream.host),
                        did: refusal
                            .did
                            .as_ref()
                            .map(|span| did_of(&upstream.frame, span)),
                        seq: refusal.seq,
                        kind: refusal.kind,
                    };
                    self.reject(refusal.reason, at);
                }
                return None;
            }
        };
        self.dispatch(upstream, peek).await
    }

    /// Park or judge a routed frame. A frame that must park while the parking bounds are
    /// reached is handed back (held): the shard then waits for lookups to finish before
    /// it takes another frame, so its sessions stop reading (block, not drop).
    async fn dispatch(&mut self, upstream: UpstreamFrame, peek: Peek) -> Option<Held> {
        let did = did_of(&upstream.frame, &peek.did);
        let needs_key = matches!(peek.kind, Kind::Commit | Kind::Sync);
        if needs_key && self.over_account_limit(did, upstream.host) {
            self.reject(
                "host_account_limit",
                At::frame(upstream.host, did, peek.seq, peek.kind),
            );
            return None;
        }
        let (park, resolve) = match self.accounts.get(did) {
            Some(slot) if slot.resolving || !slot.parked.is_empty() => (true, false),
            Some(slot) if slot.account.is_some() => (false, false),
            _ if needs_key => (true, true),
            _ => (false, false),
        };
        if park {
            if !self.has_room(did, upstream.frame.len()) && self.lookups_in_flight > 0 {
                metrics::counter!("relay_ingest_parking_waits_total").increment(1);
                return Some((upstream, peek));
            }
            let did = did.to_owned();
            self.park(&did, upstream, &peek, resolve, false);
        } else {
            self.judge(upstream, peek).await;
        }
        None
    }

    fn unpark_seq(&mut self, host: HostId, seq: u64) {
        if let Some(entry) = self.hosts.get_mut(&host)
            && let Some(count) = entry.parked_seqs.get_mut(&seq)
        {
            *count -= 1;
            if *count == 0 {
                entry.parked_seqs.remove(&seq);
            }
        }
    }

    /// The host cursor it is safe to store once a frame with `seq` is durable: not past
    /// a frame of the host that is still parked.
    fn safe_cursor(&self, host: HostId, seq: u64) -> u64 {
        self.hosts
            .get(&host)
            .and_then(|entry| entry.parked_seqs.keys().next())
            .map_or(seq, |oldest| seq.min(oldest.saturating_sub(1)))
    }

    /// Whether a frame of `len` bytes of `did` fits the parking bounds.
    fn has_room(&self, did: &str, len: usize) -> bool {
        let account_room = self
            .accounts
            .get(did)
            .is_none_or(|slot| slot.parked.len() < INGEST_PARKED_FRAMES_PER_ACCOUNT_MAX);
        account_room && self.parked_bytes + len <= INGEST_PARKED_BYTES_MAX
    }

    /// Decode enough to route: info and error frames are handled here, the per-connection
    /// seq is checked, and the host's cursor moves.
    fn route(&mut self, upstream: &UpstreamFrame) -> Routed {
        let bytes = upstream.frame.as_bytes();
        let frame = match Frame::decode(bytes) {
            Ok(frame) => frame,
            Err(e) => {
                self.step_cursor(upstream.host, None);
                return Routed::Done(Some(Refusal::bare(e.reason(), None)));
            }
        };
        let (kind, seq, did) = match frame.event() {
            Event::Commit(e) => (Kind::Commit, e.seq(), e.repo()),
            Event::Sync(e) => (Kind::Sync, e.seq(), e.did()),
            Event::Identity(e) => (Kind::Identity, e.seq(), e.did()),
            Event::Account(e) => (Kind::Account, e.seq(), e.did()),
            Event::Info(info) => {
                metrics::counter!("relay_ingest_upstream_info_total", "shard" => self.shard_label.clone())
                    .increment(1);
                if info.name() == "OutdatedCursor" {
                    // Sent once, at the connection's start: events between our cursor and
                    // the host's oldest are gone (a relay down too long, or a PDS restored
                    // with a new sequence that already passed our cursor).
                    log::warn!(
                        "upstream host {}: #info OutdatedCursor: events after the relay's \
                         cursor {} are missing upstream; if the PDS was wiped or restored, \
                         see POST /admin/hosts/resetCursor",
                        upstream.host.0,
                        self.hosts.get(&upstream.host).map_or(0, |h| h.floor),
                    );
                } else {
                    log::info!(
                        "upstream host {} says #info {}",
                        upstream.host.0,
                        info.name()
                    );
                }
                return Routed::Done(None);
            }
            Event::Error(error) => {
                self.on_upstream_error(upstream.host, error.error());
                return Routed::Done(None);
            }
            Event::Unknown { .. } => {
                self.step_cursor(upstream.host, frame.seq());
                return Routed::Done(Some(Refusal::bare("unknown_type", frame.seq())));
            }
        };
        let refused = |reason| {
            Routed::Done(Some(Refusal {
                reason,
                seq: Some(seq),
                did: Some(span_of(bytes, did)),
                kind: Some(kind),
            }))
        };
        if let Some(reason) = self.host_refusal(upstream.host, upstream.connection) {
            return refused(reason);
        }
        let Some(host) = self.hosts.get_mut(&upstream.host) else {
            return refused("unknown_host");
        };
        let same_connection = host
            .last_seq
            .is_some_and(|(connection, last)| connection == upstream.connection && seq <= last);
        if same_connection || (host.floor > 0 && seq <= host.floor) {
            self.seq_regressed(upstream.host, upstream.connection, Some(seq));
            return refused("upstream_seq_not_increasing");
        }
        host.last_seq = Some((upstream.connection, seq));
        host.floor = host.floor.max(seq);
        host.control.cursor.set(Some(seq));
        Routed::Peeked(Peek {
            kind,
            seq,
            did: span_of(bytes, did),
        })
    }

    /// Move a host's cursor past a frame that is dropped before its seq is checked: to
    /// its seq when it has one, else one step (host seqs are dense, one per event). The
    /// session resumes from the cursor after a reconnect, so a dropped frame must not be
    /// asked for again.
    fn step_cursor(&mut self, host: HostId, seq: Option<u64>) {
        if let Some(host) = self.hosts.get(&host)
            && let Some(cursor) = host.control.cursor.get()
        {
            host.control
                .cursor
                .set(Some(seq.unwrap_or(cursor + 1).max(cursor)));
        }
    }

    /// A frame of `id` on `connection` came at or below the relay's cursor (`seq`), or the
    /// host said our cursor is in its future (`None`): its sequence restarted (a wiped or
    /// restored PDS) or it replays old events. Counted and logged once per connection;
    /// flagged for `GET /admin/hosts` until an operator resets the cursor. Nothing is reset
    /// here: following a restarted sequence by itself would let a hostile PDS replay.
    fn seq_regressed(&mut self, id: HostId, connection: u64, seq: Option<u64>) {
        let Some(host) = self.hosts.get_mut(&id) else {
            return;
        };
        let listed = match host.regressed {
            Some((on, listed)) if on == connection => listed,
            _ => {
                self.regressions_counter.increment(1);
                log::warn!(
                    "upstream host {} ({}): seq went back ({}) below the relay's cursor {}: \
                     its frames are refused until an operator resets the cursor \
                     (POST /admin/hosts/resetCursor) if the PDS was wiped or restored",
                    id.0,
                    host.hostname,
                    seq.map_or("FutureCursor".to_owned(), |s| s.to_string()),
                    host.floor,
                );
                false
            }
        };
        let listed = listed || {
            let regression = SeqRegression {
                cursor: host.floor,
                seq,
                time_micros: now_micros(),
            };
            // Contended: the next refused frame of the host tries again.
            self.seq_alerts.try_record(id.0, regression) != Recorded::Contended
        };
        host.regressed = Some((connection, listed));
    }

    fn on_upstream_error(&mut self, id: HostId, name: &str) {
        let Some(control) = self.hosts.get(&id).map(|h| Rc::clone(&h.control)) else {
            return;
        };
        let reason = match name {
            // Our cursor is ahead of the host (it lost its history or reset its
            // sequence): resume from its live head, where frames at or below the relay's
            // cursor are still refused until an operator resets it.
            "FutureCursor" => {
                control.cursor.set(None);
                self.seq_regressed(id, control.connection(), None);
                "upstream_future_cursor"
            }
            "ConsumerTooSlow" => "upstream_consumer_too_slow",
            _ => "upstream_error_frame",
        };
        metrics::counter!("relay_ingest_upstream_errors_total", "reason" => reason).increment(1);
        control.disconnect(reason);
    }

    /// Apply the rules to a frame whose account is known (or that needs no key).
    async fn judge(&mut self, upstream: UpstreamFrame, peek: Peek) {
        let UpstreamFrame {
            host,
            connection,
            frame,
        } = upstream;
        if let Some(reason) = self.host_refusal(host, connection) {
            let did = did_of(&frame, &peek.did);
            self.reject(reason, At::frame(host, did, peek.seq, peek.kind));
            return;
        }
        let did = did_of(&frame, &peek.did).to_owned();
        let at = At::frame(host, &did, peek.seq, peek.kind);
        // Host authority first: a frame from a host that is not the account's PDS is
        // refused for that reason (after one re-resolution, for migrations) without
        // spending a signature check on it.
        let known = self.accounts.get(&did).is_some_and(|s| s.account.is_some());
        if matches!(peek.kind, Kind::Commit | Kind::Sync)
            && known
            && !self.host_is_authority(&did, host)
        {
            let upstream = UpstreamFrame {
                host,
                connection,
                frame,
            };
            self.refresh_or_reject(&did, upstream, &peek, "host_not_authority");
            return;
        }
        if matches!(peek.kind, Kind::Commit | Kind::Sync)
            && let Some(reason) = self.status_refusal(&did)
        {
            self.reject(reason, at);
            return;
        }
        let policy = Policy {
            now_micros: now_micros(),
            strict: self.strict,
        };
        let result = match (
            peek.kind,
            self.accounts.get(&did).and_then(|s| s.account.as_ref()),
        ) {
            (Kind::Commit, Some(account)) => verify_commit_frame_with(
                frame,
                &account.key,
                account.state.as_ref(),
                &policy,
                &mut self.scratch,
            ),
            (Kind::Sync, Some(account)) => {
                verify_sync_frame(frame, &account.key, account.state.as_ref(), &policy)
            }
            (Kind::Identity | Kind::Account, _) => verify_status_frame(frame),
            (Kind::Commit | Kind::Sync, None) => Err((frame, Rejection::UnexpectedType)),
        };
        match result {
            Ok(verified) => self.admit(&did, host, peek, verified).await,
            Err((frame, rejection @ Rejection::BadSignature(_))) => {
                let upstream = UpstreamFrame {
                    host,
                    connection,
                    frame,
                };
                self.refresh_or_reject(&did, upstream, &peek, rejection.reason());
            }
            Err((_, rejection)) => self.reject(rejection.reason(), at),
        }
    }

    async fn admit(
        &mut self,
        did: &str,
        host: HostId,
        peek: Peek,
        verified: Verified<FrameHandle>,
    ) {
        if verified.desynchronized() {
            metrics::counter!("relay_verify_desynchronized_total").increment(1);
        }
        if let Some(rejection) = verified.lenient_pass() {
            metrics::counter!("relay_verify_lenient_passes_total", "reason" => rejection.reason())
                .increment(1);
        }
        let mut account_key = None;
        let mut uid = None;
        if let Some(account) = self.accounts.get_mut(did).and_then(|s| s.account.as_mut()) {
            if let Some(state) = verified.next_state() {
                account.state = Some(state);
            }
            account_key = Some(account.account_key);
            uid = account.uid;
        }
        let account_key = account_key.unwrap_or_else(|| account_key_of(did));
        let next_state = verified.next_state();
        let commit_cid = verified.commit_cid();
        let desynchronized = verified.desynchronized();
        if peek.kind == Kind::Account {
            self.record_upstream_status(did, verified.frame());
        }
        if peek.kind == Kind::Identity {
            // The identity changed: forget the key and the PDS; the next commit resolves.
            self.identity.purge(did);
            let mut lookup = false;
            if let Some(slot) = self.accounts.get_mut(did) {
                if let Some(account) = slot.account.take() {
                    slot.kept = Some(account.known());
                }
                // Frames parked behind this event need the new identity: resolve now
                // (the drain in `on_resolved` stops while a lookup runs).
                if !slot.parked.is_empty() && !slot.resolving {
                    slot.resolving = true;
                    lookup = true;
                }
            }
            if lookup {
                // With the host: an account whose record was never loaded (no uid kept)
                // loads it with the lookup, so its commits reach the store.
                self.start_lookup(did, false, Some(host));
            }
        }
        let admitted = Admitted {
            verified,
            account_key,
            origin: Origin {
                shard: self.shard,
                host_id: host.0,
                upstream_seq: self.safe_cursor(host, peek.seq),
                uid,
                next_state,
                commit_cid,
                desynchronized,
            },
        };
        if self.ring.send(admitted).await.is_err() {
            self.reject(
                "sequencer_stopped",
                At::frame(host, did, peek.seq, peek.kind),
            );
            return;
        }
        self.count_valid(host);
    }

    /// Why an account's commits are refused now, if they are: the relay took it down or
    /// suspended it, or its host said it is not active.
    fn status_refusal(&self, did: &str) -> Option<&'static str> {
        let account = self.accounts.get(did)?.account.as_ref()?;
        match account.local_status {
            LocalStatus::Takendown => Some("account_takendown"),
            LocalStatus::Suspended => Some("account_suspended"),
            _ if !account.upstream_active => Some("account_inactive"),
            _ => None,
        }
    }

    /// An `#account` event passed: remember the host's word and store it.
    fn record_upstream_status(&mut self, did: &str, frame: &FrameHandle) {
        let Ok(decoded) = Frame::decode(frame.as_bytes()) else {
            return;
        };
        let Event::Account(event) = decoded.event() else {
            return;
        };
        let status = if event.active() {
            UpstreamStatus::Active
        } else {
            event
                .status()
                .and_then(UpstreamStatus::from_label)
                .unwrap_or(UpstreamStatus::Unknown)
        };
        let Some(slot) = self.accounts.get_mut(did) else {
            return;
        };
        let uid = match (slot.account.as_mut(), slot.kept.as_mut()) {
            (Some(account), _) => {
                account.upstream_active = event.active();
                account.uid
            }
            (None, Some(kept)) => {
                kept.upstream_active = event.active();
                kept.uid
            }
            (None, None) => return,
        };
        if let Some(uid) = uid {
            // Written by the state thread; a failure is counted there and healed by the
            // next `#account` of the account.
            drop(
                self.state
                    .call(move |store| store.set_upstream_status(uid, status)),
            );
        }
    }

    /// The admin API changed the relay's own status of an account: refuse (or accept
    /// again) its commits here, and — on the shard that announces (shard 0) — send the
    /// relay's own `#account` event saying so, sequenced like any other.
    pub async fn set_local_status(&mut self, did: &str, status: LocalStatus) {
        if let Some(slot) = self.accounts.get_mut(did) {
            if let Some(account) = slot.account.as_mut() {
                account.local_status = status;
            }
            if let Some(kept) = slot.kept.as_mut() {
                kept.local_status = status;
            }
        }
        if self.shard == 0 {
            self.announce_status(did, status).await;
        }
    }

    /// The status re-checker found the account active at its host (the store says so
    /// already): accept its commits again here, and — on the announcing shard, when the
    /// relay's own status is active too — send `#account` active, as a local reversal
    /// does, since consumers last saw the host's inactive `#account`.
    async fn set_upstream_active(&mut self, did: &str, announce: bool) {
        if let Some(slot) = self.accounts.get_mut(did) {
            if let Some(account) = slot.account.as_mut() {
                account.upstream_active = true;
            }
            // A record read for a lookup in flight may still say inactive (the heal was
            // stored after it was read).
            slot.upstream_healed |= slot.resolving;
            if let Some(kept) = slot.kept.as_mut() {
                kept.upstream_active = true;
            }
        }
        if self.shard == 0 && announce {
            self.announce_status(did, LocalStatus::Active).await;
        }
    }

    /// The relay's `#account` event for `did`: built here (it comes from no host), placed
    /// in this core's frame buffer, judged by the same `#account` rule, then sequenced.
    async fn announce_status(&mut self, did: &str, status: LocalStatus) {
        let Some(writer) = self.writer.clone() else {
            return;
        };
        let event = AccountEventOwned {
            seq: 1,
            did: did.to_owned(),
            time: rfc3339_micros(now_micros()),
            active: status == LocalStatus::Active,
            status: (status != LocalStatus::Active).then(|| status.as_str().to_owned()),
        };
        let mut bytes = Vec::new();
        event.encode_frame(&mut bytes);
        let handle = loop {
            let placed = writer.borrow_mut().place_frame(&bytes);
            match placed {
                Ok(handle) => break handle,
                Err(FrameBufferError::Backpressure) => {
                    writer.borrow_mut().poll_reclaim();
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => {
                    self.reject(e.reason(), own_event(did));
                    return;
                }
            }
        };
        let verified = match verify_status_frame(handle) {
            Ok(verified) => verified,
            Err((_, rejection)) => {
                self.reject(rejection.reason(), own_event(did));
                return;
            }
        };
        // The relay's own status events have a key of their own, so the takedown's
        // tombstone (which hides the account's events at replay) does not hide them.
        let admitted = Admitted {
            verified,
            account_key: relay_status_key_of(did),
            origin: Origin {
                shard: self.shard,
                host_id: 0,
                upstream_seq: 0,
                uid: None,
                next_state: None,
                commit_cid: None,
                desynchronized: false,
            },
        };
        if self.ring.send(admitted).await.is_err() {
            self.reject("sequencer_stopped", own_event(did));
        }
    }

    /// The core's frame buffer, for events the relay writes itself.
    pub fn set_writer(
        &mut self,
        writer: Rc<std::cell::RefCell<crate::runtime::frames::FrameWriter>>,
    ) {
        self.writer = Some(writer);
    }

    fn host_is_authority(&self, did: &str, host: HostId) -> bool {
        let pds = self
            .accounts
            .get(did)
            .and_then(|s| s.account.as_ref())
            .and_then(|a| a.pds_authority.as_deref());
        match (pds, self.hosts.get(&host)) {
            (Some(pds), Some(host)) => pds.eq_ignore_ascii_case(&host.authority),
            _ => false,
        }
    }

    /// A bad signature or a host mismatch may be a key rotation or a migration the cache
    /// has not seen: re-resolve the identity once (rate-limited per account) and judge the
    /// frame again; otherwise refuse it with `reason`.
    fn refresh_or_reject(
        &mut self,
        did: &str,
        upstream: UpstreamFrame,
        peek: &Peek,
        reason: &'static str,
    ) {
        if self.may_refresh(did) {
            self.park(did, upstream, peek, true, true);
        } else {
            let at = At::frame(upstream.host, did, peek.seq, peek.kind);
            self.reject(reason, at);
        }
    }

    fn may_refresh(&self, did: &str) -> bool {
        let refreshed_at = self
            .accounts
            .get(did)
            .and_then(|s| s.account.as_ref())
            .and_then(|a| a.refreshed_at);
        refreshed_at
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(INGEST_IDENTITY_REFRESH_SECS_MIN))
    }

    /// Queue `upstream` behind the account's other parked frames; start a lookup if asked
    /// and none is running (`refresh` bypasses the identity cache).
    fn park(
        &mut self,
        did: &str,
        upstream: UpstreamFrame,
        peek: &Peek,
        resolve: bool,
        refresh: bool,
    ) {
        let len = upstream.frame.len();
        let seq = peek.seq;
        let at = At::frame(upstream.host, did, seq, peek.kind);
        if self.parked_bytes + len > INGEST_PARKED_BYTES_MAX {
            self.reject("parked_bytes_full", at);
            return;
        }
        if !self.accounts.contains_key(did) {
            self.remember(did);
        }
        let Some(slot) = self.accounts.get_mut(did) else {
            return;
        };
        if slot.parked.len() >= INGEST_PARKED_FRAMES_PER_ACCOUNT_MAX {
            self.reject("parked_account_full", at);
            return;
        }
        let host = upstream.host;
        slot.parked.push_back(upstream);
        self.parked_bytes += len;
        if let Some(entry) = self.hosts.get_mut(&host) {
            *entry.parked_seqs.entry(seq).or_insert(0) += 1;
        }
        let Some(slot) = self.accounts.get_mut(did) else {
            return;
        };
        self.parked_gauge.set(self.parked_bytes as f64);
        if resolve && !slot.resolving {
            slot.resolving = true;
            if refresh && let Some(account) = slot.account.as_mut() {
                account.refreshed_at = Some(Instant::now());
            }
            self.start_lookup(did, refresh, Some(host));
        }
    }

    fn remember(&mut self, did: &str) {
        while self.accounts.len() >= INGEST_ACCOUNTS_MAX {
            let Some(oldest) = self.account_order.pop_front() else {
                break;
            };
            let busy = self
                .accounts
                .get(&oldest)
                .is_some_and(|s| s.resolving || !s.parked.is_empty());
            if busy {
                self.account_order.push_back(oldest);
                break;
            }
            self.accounts.remove(&oldest);
        }
        self.accounts.insert(did.to_owned(), Slot::default());
        self.account_order.push_back(did.to_owned());
    }

    /// Resolve the identity (bypassing the cache when `refresh`) and, for an account
    /// this shard has not loaded yet, its stored record, concurrently.
    fn start_lookup(&mut self, did: &str, refresh: bool, host: Option<HostId>) {
        self.lookups_in_flight += 1;
        let lookup = if refresh {
            self.identity.refresh(did)
        } else {
            self.identity.resolve(did)
        };
        let loaded = self
            .accounts
            .get(did)
            .and_then(|s| {
                s.account
                    .as_ref()
                    .map_or(s.kept.and_then(|k| k.uid), |a| a.uid)
            })
            .is_some();
        let record = match host {
            Some(host) if !loaded => {
                let limit = self.hosts.get(&host).map_or(0, |h| h.limits().accounts);
                Some(self.state.get_or_create_account_within(did, host.0, limit))
            }
            _ => None,
        };
        let sender = self.resolved_tx.clone();
        let did = did.to_owned();
        let identity = self.identity.clone();
        glommio::spawn_local(async move {
            let (outcome, record) =
                futures_lite::future::zip(resolve_retrying(identity, did.clone(), lookup), async {
                    match record {
                        Some(reply) => Some(reply.await.map_err(|e| e.reason())),
                        None => None,
                    }
                })
                .await;
            // The receiver only closes when the shard stops.
            let _ = sender
                .send(Resolution {
                    did,
                    host,
                    outcome,
                    record,
                })
                .await;
        })
        .detach();
    }

    /// Install the looked-up identity and judge the account's parked frames in order.
    async fn on_resolved(&mut self, resolution: Resolution) {
        self.lookups_in_flight = self.lookups_in_flight.saturating_sub(1);
        let Resolution {
            did,
            host,
            outcome,
            record,
        } = resolution;
        if let (Some(host), Some(Ok(None))) = (host, &record) {
            self.refuse_new_account(&did, host);
            return;
        }
        let installed = match (outcome, record) {
            (Err(reason), _) | (_, Some(Err(reason))) => Err(reason),
            (Ok(resolved), record) => {
                self.install(&did, &resolved, record.and_then(Result::ok).flatten())
            }
        };
        if let Err(reason) = installed {
            metrics::counter!("relay_ingest_identity_failures_total", "reason" => reason)
                .increment(1);
            self.drop_parked(&did, "identity_unresolved");
            return;
        }
        loop {
            let next = self
                .accounts
                .get_mut(&did)
                .and_then(|slot| slot.parked.pop_front());
            let Some(upstream) = next else { break };
            self.parked_bytes -= upstream.frame.len();
            // Re-peek: the frame was routed (seq checked) before it parked.
            let Some(peek) = repeek(&upstream.frame) else {
                let at = At {
                    host: Some(upstream.host),
                    did: Some(&did),
                    ..At::default()
                };
                self.reject("frame_internal", at);
                continue;
            };
            self.unpark_seq(upstream.host, peek.seq);
            self.judge(upstream, peek).await;
            // A frame judged above may have parked again (refresh); stop and wait for it.
            if self.accounts.get(&did).is_some_and(|s| s.resolving) {
                return;
            }
        }
        self.parked_gauge.set(self.parked_bytes as f64);
    }

    /// The store refused `did` as a new account of `host` (its account limit is reached):
    /// drop its parked frames and refuse its next ones at once until the limit moves.
    fn refuse_new_account(&mut self, did: &str, host: HostId) {
        let generation = self.hosts.get(&host).map_or(0, |h| h.limit_generation);
        if let Some(slot) = self.accounts.get_mut(did) {
            slot.over_limit = Some((host, generation));
        }
        log::debug!("host {}: new account {did} refused: account limit", host.0);
        self.drop_parked(did, "host_account_limit");
    }

    /// Drop every frame parked for `did` (its lookup ended) with `reason`.
    fn drop_parked(&mut self, did: &str, reason: &'static str) {
        let parked = self
            .accounts
            .get_mut(did)
            .map(|slot| {
                slot.resolving = false;
                std::mem::take(&mut slot.parked)
            })
            .unwrap_or_default();
        for frame in parked {
            self.parked_bytes -= frame.frame.len();
            let peek = repeek(&frame.frame);
            if let Some(peek) = &peek {
                self.unpark_seq(frame.host, peek.seq);
            }
            let at = At {
                host: Some(frame.host),
                did: Some(did),
                seq: peek.as_ref().map(|p| p.seq),
                kind: peek.as_ref().map(|p| p.kind),
            };
            self.reject(reason, at);
        }
        self.parked_gauge.set(self.parked_bytes as f64);
    }

    fn install(
        &mut self,
        did: &str,
        resolved: &Resolved,
        record: Option<AccountRecord>,
    ) -> Result<(), &'static str> {
        let key = ParsedKey::new(&resolved.document.signing_key, &VerifierSet::FASTEST)
            .map_err(|e| e.reason())?;
        let pds_authority = resolved
            .document
            .pds_endpoint
            .as_deref()
            .and_then(authority_of);
        let Some(slot) = self.accounts.get_mut(did) else {
            return Err("account_forgotten");
        };
        slot.resolving = false;
        let kept = slot.kept.take();
        let refreshed_at = slot.account.as_ref().and_then(|a| a.refreshed_at);
        let Known {
            mut uid,
            mut state,
            mut local_status,
            mut upstream_active,
        } = slot
            .account
            .as_ref()
            .map(Account::known)
            .or(kept)
            .unwrap_or(Known::NEW);
        if let Some(record) = record {
            uid = Some(record.uid);
            state = newest(state, stored_state(&record));
            local_status = record.local_status;
            upstream_active = matches!(
                record.upstream_status,
                UpstreamStatus::Active | UpstreamStatus::Unknown
            );
        }
        // Frames of the account arriving meanwhile are parked behind the lookup, so no
        // later `#account` can have been applied between the heal and this install.
        upstream_active |= std::mem::take(&mut slot.upstream_healed);
        state = newest(state, self.tail.get(did).copied());
        slot.over_limit = None;
        slot.account = Some(Account {
            key,
            pds_authority,
            state,
            account_key: account_key_of(did),
            uid,
            refreshed_at,
            local_status,
            upstream_active,
        });
        Ok(())
    }

    /// Count a dropped frame under `reason` and record it in the shard's rejection ring
    /// with what is known of it (the host named through its `HostEntry`). Never waits.
    fn reject(&self, reason: &'static str, at: At<'_>) {
        metrics::counter!("relay_verify_rejections_total", "reason" => reason, "shard" => self.shard_label.clone())
            .increment(1);
        let host = at
            .host
            .and_then(|id| self.hosts.get(&id))
            .map(|h| &h.hostname);
        let rejected = Rejected {
            host,
            did: at.did,
            seq: at.seq,
            frame_type: at.kind.map(Kind::label),
        };
        self.rejections.record(now_micros(), reason, &rejected);
        log::debug!("shard {} dropped a frame: {reason}", self.shard);
    }
}

/// The account state a stored record holds, if it holds a full one.
fn stored_state(record: &AccountRecord) -> Option<AccountState> {
    let rev = crate::syntax::Tid::parse(record.rev.as_deref()?).ok()?;
    let data = crate::frame::cid::Cid::from_bytes(record.data_cid.as_deref()?).ok()?;
    Some(AccountState { rev, data })
}

/// The state with the newer rev.
fn newest(a: Option<AccountState>, b: Option<AccountState>) -> Option<AccountState> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.rev > a.rev { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Await a lookup; when the resolver's queue was full (`overloaded`), ask again after
/// `INGEST_IDENTITY_RETRY_MILLIS` instead of dropping the account's frames: a cold start
/// asks for many identities at once, and waiting here is the backpressure. A network
/// failure (`ResolveError::is_transient`) is asked again with a doubling wait, up to
/// `INGEST_IDENTITY_TRANSIENT_ATTEMPTS_MAX` lookups in all (counted in
/// `relay_ingest_identity_retries_total{reason}`); only then are the frames dropped.
async fn resolve_retrying(
    identity: IdentityService,
    did: String,
    first: crate::identity::service::ResolveFuture,
) -> Result<Arc<Resolved>, &'static str> {
    let mut lookup = first;
    let mut transient_failures = 0;
    loop {
        let wait = match lookup.await {
            Err(crate::identity::resolver::ResolveError::Overloaded) => {
                INGEST_IDENTITY_RETRY_MILLIS
            }
            Err(e)
                if e.is_transient()
                    && transient_failures + 1 < INGEST_IDENTITY_TRANSIENT_ATTEMPTS_MAX =>
            {
                metrics::counter!("relay_ingest_identity_retries_total", "reason" => e.reason())
                    .increment(1);
                let wait = INGEST_IDENTITY_TRANSIENT_BACKOFF_MILLIS << transient_failures;
                transient_failures += 1;
                wait
            }
            other => return other.map_err(|e| e.reason()),
        };
        glommio::timer::sleep(Duration::from_millis(wait)).await;
        lookup = identity.resolve(&did);
    }
}

/// What a refusal of the relay's own `#account` event about `did` knows (no host).
fn own_event(did: &str) -> At<'_> {
    At {
        did: Some(did),
        kind: Some(Kind::Account),
        ..At::default()
    }
}

/// A routed frame waiting for parking room.
type Held = (UpstreamFrame, Peek);

enum Work {
    Frame(UpstreamFrame),
    Resolved(Resolution),
    Host(HostId, HostEntry),
    Command(ShardCommand),
}

fn repeek(frame: &FrameHandle) -> Option<Peek> {
    let bytes = frame.as_bytes();
    let decoded = Frame::decode(bytes).ok()?;
    let (kind, seq, did) = match decoded.event() {
        Event::Commit(e) => (Kind::Commit, e.seq(), e.repo()),
        Event::Sync(e) => (Kind::Sync, e.seq(), e.did()),
        Event::Identity(e) => (Kind::Identity, e.seq(), e.did()),
        Event::Account(e) => (Kind::Account, e.seq(), e.did()),
        _ => return None,
    };
    Some(Peek {
        kind,
        seq,
        did: span_of(bytes, did),
    })
}

fn did_of<'a>(frame: &'a FrameHandle, span: &Range<usize>) -> &'a str {
    frame
        .as_bytes()
        .get(span.clone())
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or_default()
}

/// The byte range of `part` inside `whole` (a sub-slice of it).
fn span_of(whole: &[u8], part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    start..start + part.len()
}

/// `host[:port]` of an `http(s)://` or `ws(s)://` URL, lower-cased, default ports dropped.
pub fn authority_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    let default_port = match scheme {
        "https" | "wss" => ":443",
        "http" | "ws" => ":80",
        _ => return None,
    };
    Some(
        authority
            .strip_suffix(default_port)
            .map(str::to_owned)
            .unwrap_or(authority),
    )
}

/// The log's key of the relay's own status events about `did`: a second FNV-1a 64 (of a
/// prefix and the DID), never equal to the account's own key in practice.
pub fn relay_status_key_of(did: &str) -> AccountKey {
    account_key_of(&format!("relay-status:{did}"))
}

/// The log's account key of a DID: FNV-1a 64 of its bytes. Takedowns match on it.
pub fn account_key_of(did: &str) -> AccountKey {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in did.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    AccountKey::new(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_drops_default_ports_and_paths() {
        assert_eq!(
            authority_of("https://pds.example.com/").as_deref(),
            Some("pds.example.com")
        );
        assert_eq!(
            authority_of("wss://PDS.example.com:443").as_deref(),
            Some("pds.example.com")
        );
        assert_eq!(
            authority_of("http://127.0.0.1:8080").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            authority_of("ws://127.0.0.1:8080/xrpc").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(authority_of("ftp://x"), None);
    }
}
