//! A core's generator thread: owns the accounts of the core's hosts, decides every event
//! from the seed, signs it ahead of time and pushes it into the core's bounded buffer.
//!
//! Owns: account materialisation (lazy: an account gets keys and a repo when first
//! picked), per-host sequence numbers, the choice of kind, ops, size and hostile mode,
//! and the commands of the fleet API (key rotation, migration, full-repo reads).
//! Must not: touch sockets or the clock of emission (frames carry a placeholder `time`
//! the emit loop overwrites). Checks nothing.
//!
//! Queue policy: the pre-signed buffer is a bounded channel; when it is full the
//! generator blocks (polling its commands meanwhile). Nothing is dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::limits::{
    COMMIT_BLOCKS_BYTES_MAX, FRAME_SIZE_BYTES_MAX, SIM_LARGE_COMMIT_OPS_MAX,
    SIM_RECORD_SIZE_BYTES_MAX, SIM_SEQ_RESET_EVENTS_MAX,
};
use crate::frame::cbor::OwnedValue;
use crate::frame::event::{EventOwned, Frame, write_message_header};
use crate::sim::account::{SimAccount, SimError, SimOp, rfc3339_micros};
use crate::sim::fleet::{Counters, Delivery, Effect, EventSender, FrameKind, Prepared, Shared};
use crate::sim::hostile::HostileMode;
use crate::syntax::Tid;

/// The header type of [`HostileMode::UnknownType`] frames.
pub const UNKNOWN_TYPE: &str = "#simUnknown";

/// Bytes of a `time` value as `rfc3339_micros` writes it.
pub const TIME_BYTES: usize = 27;

/// A request from the API or a host to the generator that owns the account.
#[derive(Debug)]
pub(crate) enum Command {
    RotateKey {
        account: usize,
    },
    Migrate {
        account: usize,
        to_host: usize,
    },
    /// Emit an `#account` event with `active: false` and this status; the host's
    /// `getRepoStatus` says inactive once it is emitted.
    Deactivate {
        account: usize,
        status: String,
    },
    /// The full repo CAR; `None` when the account has no commit.
    GetRepo {
        account: usize,
        reply: Sender<Option<Vec<u8>>>,
    },
}

/// Progress shared between a core's generator and its emit loop.
#[derive(Debug, Default)]
pub(crate) struct CoreSync {
    /// Events pushed into the buffer so far.
    pub generated: AtomicU64,
    /// The configured events are all pushed (command events may still follow).
    pub done: AtomicBool,
}

/// What one generator thread is given.
pub(crate) struct GeneratorPlan {
    pub core: usize,
    pub hosts: Vec<usize>,
    pub events: EventSender,
    pub commands: Receiver<Command>,
    pub event_limit: Option<u64>,
    pub sync: Arc<CoreSync>,
}

/// Start the generator thread of a core.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    plan: GeneratorPlan,
) -> Result<JoinHandle<()>, std::io::Error> {
    std::thread::Builder::new()
        .name(format!("sim-gen-{}", plan.core))
        .spawn(move || Generator::new(shared, plan).run())
}

/// splitmix64: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

struct HostGen {
    global: usize,
    mode: Option<HostileMode>,
    accounts: Vec<usize>,
    next_seq: u64,
    since_reset: u64,
}

struct Generator {
    shared: Arc<Shared>,
    plan: GeneratorPlan,
    rng: Rng,
    hosts: Vec<HostGen>,
    /// Local index of each global host on this core.
    local: HashMap<usize, usize>,
    accounts: HashMap<usize, SimAccount>,
    /// Accounts that just made a large commit: how many records the next commit removes.
    pending_shrink: HashMap<usize, usize>,
    event_modes: Vec<HostileMode>,
    pending: VecDeque<Prepared>,
    hostnames: Vec<String>,
    size_total_weight: u64,
}

impl Generator {
    fn new(shared: Arc<Shared>, plan: GeneratorPlan) -> Generator {
        let config = &shared.config;
        let host_modes: Vec<HostileMode> = config
            .hostile_modes
            .iter()
            .copied()
            .filter(HostileMode::is_host_mode)
            .collect();
        let event_modes = config
            .hostile_modes
            .iter()
            .copied()
            .filter(|m| !m.is_host_mode())
            .collect();
        let hosts: Vec<HostGen> = plan
            .hosts
            .iter()
            .map(|&global| HostGen {
                global,
                mode: host_modes.get(global).copied(),
                accounts: (global * config.accounts_per_host
                    ..(global + 1) * config.accounts_per_host)
                    .collect(),
                next_seq: 1,
                since_reset: 0,
            })
            .collect();
        let local = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.global, i))
            .collect();
        let hostnames = shared
            .directory
            .read()
            .map(|d| d.hosts.clone())
            .unwrap_or_default();
        let size_total_weight = config.record_sizes.iter().map(|(_, w)| u64::from(*w)).sum();
        Generator {
            rng: Rng(config.seed ^ (plan.core as u64).wrapping_mul(0x51_7cc1_b727_220a)),
            shared: shared.clone(),
            plan,
            hosts,
            local,
            accounts: HashMap::new(),
            pending_shrink: HashMap::new(),
            event_modes,
            pending: VecDeque::new(),
            hostnames,
            size_total_weight,
        }
    }

    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    fn run(mut self) {
        let mut produced: u64 = 0;
        let limit = self.plan.event_limit;
        while !self.stopped() {
            self.serve_commands();
            while let Some(event) = self.pending.pop_front() {
                if !self.push(event) {
                    return;
                }
            }
            if limit.is_some_and(|l| produced >= l) || self.no_emitting_host() {
                self.plan.sync.done.store(true, Ordering::Release);
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            produced += 1;
            match self.next_event(now_micros()) {
                Ok(event) => {
                    if !self.push(event) {
                        return;
                    }
                }
                Err(e) => log::warn!("relay sim: event not generated: {e}"),
            }
        }
    }

    fn no_emitting_host(&self) -> bool {
        self.hosts
            .iter()
            .all(|h| h.mode == Some(HostileMode::SilentHost))
    }

    /// Push into the bounded buffer, serving read-only commands while it is full.
    fn push(&mut self, mut event: Prepared) -> bool {
        loop {
            match self.plan.events.try_send(event) {
                Ok(()) => {
                    self.plan.sync.generated.fetch_add(1, Ordering::Release);
                    return true;
                }
                Err(TrySendError::Full(back)) => {
                    event = back;
                    if self.stopped() {
                        return false;
                    }
                    self.serve_commands();
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
    }

    fn serve_commands(&mut self) {
        loop {
            match self.plan.commands.try_recv() {
                Ok(command) => {
                    if let Err(e) = self.command(command) {
                        log::warn!("relay sim: command failed: {e}");
                    }
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    fn command(&mut self, command: Command) -> Result<(), SimError> {
        let now = now_micros();
        match command {
            Command::GetRepo { account, reply } => {
                let car = self.accounts.get(&account).and_then(SimAccount::repo_car);
                let _ = reply.send(car);
            }
            Command::Deactivate { account, status } => {
                let host = self.host_of(account);
                let (seq, reset) = self.take_seq(host);
                let frame = self
                    .account(account)?
                    .account_frame(false, Some(&status), now, seq);
                let effect = Effect::Active {
                    account,
                    active: false,
                };
                let event =
                    self.prepared(host, seq, reset, frame, FrameKind::Account, None, effect);
                self.pending.push_back(event);
            }
            Command::RotateKey { account } => {
                let host = self.host_of(account);
                let sim = self.account(account)?;
                sim.rotate_key()?;
                let generation = sim.key_generation();
                let effect = Effect::KeyRotated {
                    account,
                    generation,
                };
                let event = self.identity_event(host, account, now, effect)?;
                self.pending.push_back(event);
            }
            Command::Migrate { account, to_host } => {
                let Some(&to) = self.local.get(&to_host) else {
                    return Ok(());
                };
                let from = self.host_of(account);
                if let Some(h) = self.hosts.get_mut(from) {
                    h.accounts.retain(|a| *a != account);
                }
                if let Some(h) = self.hosts.get_mut(to) {
                    h.accounts.push(account);
                }
                let hostname = self.hostnames.get(to_host).cloned().unwrap_or_default();
                self.account(account)?.set_host(&hostname);
                let effect = Effect::Migrated {
                    account,
                    host: to_host,
                };
                let event = self.identity_event(to, account, now, effect)?;
                self.pending.push_back(event);
            }
        }
        Ok(())
    }

    /// Local index of the host that holds the account now.
    fn host_of(&self, account: usize) -> usize {
        self.hosts
            .iter()
            .position(|h| h.accounts.contains(&account))
            .unwrap_or(0)
    }

    /// The account, materialised on first use from the directory's seed and DID.
    fn account(&mut self, index: usize) -> Result<&mut SimAccount, SimError> {
        if !self.accounts.contains_key(&index) {
            let entry = self
                .shared
                .directory
                .read()
                .ok()
                .and_then(|d| d.entries.get(index).cloned())
                .ok_or(SimError::NoCommitYet)?;
            let host = self.hostnames.get(entry.host).cloned().unwrap_or_default();
            let account = SimAccount::with_did(entry.seed, entry.curve, &host, entry.did)?;
            self.accounts.insert(index, account);
            Counters::add(&self.shared.counters.accounts_materialised, 1);
        }
        self.accounts.get_mut(&index).ok_or(SimError::NoCommitYet)
    }

    /// The next seq of a host, restarting a seq-resetting host when its time has come.
    fn take_seq(&mut self, host: usize) -> (u64, bool) {
        let Some(h) = self.hosts.get_mut(host) else {
            return (0, false);
        };
        let mut reset = false;
        if h.mode == Some(HostileMode::ResetSeq) && h.since_reset >= SIM_SEQ_RESET_EVENTS_MAX {
            h.next_seq = 1;
            h.since_reset = 0;
            reset = true;
        }
        let seq = h.next_seq;
        h.next_seq += 1;
        h.since_reset += 1;
        (seq, reset)
    }

    fn pick_host(&mut self) -> usize {
        let candidates: Vec<usize> = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.mode != Some(HostileMode::SilentHost) && !h.accounts.is_empty())
            .map(|(i, _)| i)
            .collect();
        let pick = self.rng.below(candidates.len());
        candidates.get(pick).copied().unwrap_or(0)
    }

    fn next_event(&mut self, now: u64) -> Result<Prepared, SimError> {
        let host = self.pick_host();
        let accounts = self.hosts.get(host).map(|h| h.accounts.len()).unwrap_or(0);
        let pick = self.rng.below(accounts);
        let account = self
            .hosts
            .get(host)
            .and_then(|h| h.accounts.get(pick).copied())
            .ok_or(SimError::NoCommitYet)?;
        let hostile = self.shared.config.hostile_share > 0.0
            && !self.event_modes.is_empty()
            && self.rng.unit() < self.shared.config.hostile_share;
        let mode = if hostile {
            let i = self.rng.below(self.event_modes.len());
            self.event_modes.get(i).copied()
        } else {
            None
        };
        let has_commit = self.account(account)?.last_rev().is_some();
        match mode {
            Some(HostileMode::WrongHost) if self.victim_of(host).is_none() => {
                self.honest_event(host, account, now)
            }
            Some(mode) if has_commit => self.hostile_event(host, account, mode, now),
            _ => self.honest_event(host, account, now),
        }
    }

    fn record_size(&mut self) -> usize {
        let mut roll = self.rng.next() % self.size_total_weight.max(1);
        for (size, weight) in &self.shared.config.record_sizes {
            if roll < u64::from(*weight) {
                return *size;
            }
            roll -= u64::from(*weight);
        }
        200
    }

    fn honest_event(
        &mut self,
        host: usize,
        account: usize,
        now: u64,
    ) -> Result<Prepared, SimError> {
        let mix = self.shared.config.kind_mix;
        let total = mix.commit + mix.sync + mix.identity + mix.account;
        let roll = self.rng.unit() * total;
        let has_commit = self.account(account)?.last_rev().is_some();
        if !has_commit || roll < mix.commit {
            return self.honest_commit(host, account, now);
        }
        let (seq, reset) = self.take_seq(host);
        let sim = self.account(account)?;
        let (frame, kind) = if roll < mix.commit + mix.sync {
            (sim.sync_frame(now, seq)?, FrameKind::Sync)
        } else if roll < mix.commit + mix.sync + mix.identity {
            let handle = self.handle(account);
            let sim = self.account(account)?;
            (
                sim.identity_frame(Some(&handle), now, seq),
                FrameKind::Identity,
            )
        } else {
            (sim.account_frame(true, None, now, seq), FrameKind::Account)
        };
        let effect = match kind {
            FrameKind::Account => Effect::Active {
                account,
                active: true,
            },
            _ => Effect::None,
        };
        Ok(self.prepared(host, seq, reset, frame, kind, None, effect))
    }

    fn handle(&self, account: usize) -> String {
        self.shared
            .directory
            .read()
            .ok()
            .and_then(|d| d.entries.get(account).map(|e| e.handle.clone()))
            .unwrap_or_default()
    }

    /// The ops of the next honest commit: creates, updates and deletes in a fixed mix,
    /// keeping the repo at most `repo_records` records (plus a large commit's,
    /// which the next commit removes).
    fn honest_ops(&mut self, account: usize, count: usize) -> (Vec<SimOp>, bool) {
        if let Some(n) = self.pending_shrink.remove(&account) {
            let mut ops: Vec<SimOp> = (0..n.min(count))
                .map(|i| SimOp::Delete {
                    pick: count - 1 - i,
                })
                .collect();
            ops.push(SimOp::Create {
                size_bytes: self.record_size(),
            });
            return (ops, false);
        }
        if self.rng.unit() < self.shared.config.large_commit_share {
            self.pending_shrink
                .insert(account, SIM_LARGE_COMMIT_OPS_MAX);
            let ops = vec![
                SimOp::Create {
                    size_bytes: SIM_RECORD_SIZE_BYTES_MAX
                };
                SIM_LARGE_COMMIT_OPS_MAX
            ];
            return (ops, true);
        }
        let size_bytes = self.record_size();
        let pick = self.rng.next() as usize;
        let roll = self.rng.unit();
        let ops = if count >= self.shared.config.repo_records {
            vec![SimOp::Create { size_bytes }, SimOp::Delete { pick }]
        } else if count == 0 || roll < 0.7 {
            vec![SimOp::Create { size_bytes }]
        } else if roll < 0.9 {
            vec![SimOp::Update { pick, size_bytes }]
        } else {
            vec![SimOp::Delete { pick }]
        };
        (ops, false)
    }

    fn honest_commit(
        &mut self,
        host: usize,
        account: usize,
        now: u64,
    ) -> Result<Prepared, SimError> {
        let count = self.account(account)?.record_count();
        let (ops, large) = self.honest_ops(account, count);
        let (seq, reset) = self.take_seq(host);
        let sim = self.account(account)?;
        let frame = sim.commit(&ops, now, seq)?;
        let effect = head_effect(sim, account);
        let mut event = self.prepared(host, seq, reset, frame, FrameKind::Commit, None, effect);
        event.large = large;
        Ok(event)
    }

    fn hostile_event(
        &mut self,
        host: usize,
        account: usize,
        mode: HostileMode,
        now: u64,
    ) -> Result<Prepared, SimError> {
        let size_bytes = self.record_size();
        let ops = [SimOp::Create { size_bytes }];
        let transient = mode == HostileMode::DisconnectMidFrame;
        let (seq, reset) = if transient {
            let next = self.hosts.get(host).map_or(1, |h| h.next_seq);
            (next, false)
        } else {
            self.take_seq(host)
        };
        let mut effect = Effect::None;
        let mut kind = FrameKind::Commit;
        let frame = if let Some(account_kind) = mode.account_kind() {
            self.account(account)?
                .hostile_commit(account_kind, &ops, now, seq)?
        } else {
            match mode {
                HostileMode::RotatedKey => self
                    .account(account)?
                    .commit_by_previous_key(&ops, now, seq)?,
                HostileMode::BrokenSince => {
                    let sim = self.account(account)?;
                    let frame = sim.commit(&ops, now, seq)?;
                    effect = head_effect(sim, account);
                    let since = Tid::from_parts(now.saturating_sub(3_600_000_000), 0)?;
                    rewrite_commit(&frame, |c| c.since = Some(since.as_str().to_owned()))
                }
                HostileMode::OversizedBlocks => {
                    let frame = self.account(account)?.detached_commit(&ops, now, seq)?;
                    rewrite_commit(&frame, |c| c.blocks.resize(COMMIT_BLOCKS_BYTES_MAX + 1, 0))
                }
                HostileMode::OversizedFrame => {
                    let frame = self.account(account)?.detached_commit(&ops, now, seq)?;
                    rewrite_commit(&frame, |c| c.blocks.resize(FRAME_SIZE_BYTES_MAX + 1, 0))
                }
                HostileMode::UnknownType => {
                    kind = FrameKind::Unknown;
                    let did = self.account(account)?.did().to_owned();
                    unknown_frame(&did, seq, now)
                }
                HostileMode::WrongHost => self.wrong_host_commit(host, &ops, now, seq)?,
                _ => self.account(account)?.detached_commit(&ops, now, seq)?,
            }
        };
        let mut event = self.prepared(host, seq, reset, frame, kind, Some(mode), effect);
        event.delivery = match mode {
            HostileMode::TextFrame => Delivery::Text,
            HostileMode::DisconnectMidFrame => Delivery::CutMidFrame,
            _ => Delivery::Binary,
        };
        if transient {
            event.seq = seq.saturating_sub(1);
        }
        Ok(event)
    }

    /// An account of another host of this core with a commit, picked at random.
    fn victim_of(&mut self, host: usize) -> Option<usize> {
        let others: Vec<usize> = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != host)
            .flat_map(|(_, h)| h.accounts.iter().copied())
            .filter(|a| self.accounts.get(a).is_some_and(|s| s.last_rev().is_some()))
            .collect();
        let pick = self.rng.below(others.len());
        others.get(pick).copied()
    }

    /// A valid commit of an account of another host of this core, sent by `host` (the
    /// caller made sure there is one: `victim_of`).
    fn wrong_host_commit(
        &mut self,
        host: usize,
        ops: &[SimOp],
        now: u64,
        seq: u64,
    ) -> Result<Vec<u8>, SimError> {
        let victim = self.victim_of(host).ok_or(SimError::NoCommitYet)?;
        self.account(victim)?.detached_commit(ops, now, seq)
    }

    fn identity_event(
        &mut self,
        host: usize,
        account: usize,
        now: u64,
        effect: Effect,
    ) -> Result<Prepared, SimError> {
        let (seq, reset) = self.take_seq(host);
        let handle = self.handle(account);
        let frame = self
            .account(account)?
            .identity_frame(Some(&handle), now, seq);
        Ok(self.prepared(host, seq, reset, frame, FrameKind::Identity, None, effect))
    }

    #[allow(clippy::too_many_arguments)]
    fn prepared(
        &self,
        host: usize,
        seq: u64,
        reset_seq: bool,
        frame: Vec<u8>,
        kind: FrameKind,
        hostile: Option<HostileMode>,
        effect: Effect,
    ) -> Prepared {
        Prepared {
            host: self.hosts.get(host).map_or(0, |h| h.global),
            seq,
            time_at: find_time(&frame),
            frame,
            kind,
            hostile,
            delivery: Delivery::Binary,
            effect,
            reset_seq,
            large: false,
        }
    }
}

fn head_effect(sim: &SimAccount, account: usize) -> Effect {
    match (sim.last_commit(), sim.last_rev()) {
        (Some(cid), Some(rev)) => Effect::Head {
            account,
            cid,
            rev: rev.as_str().to_owned(),
        },
        _ => Effect::None,
    }
}

/// Decode an honest commit frame, change fields outside the signed commit, re-encode.
fn rewrite_commit(
    frame: &[u8],
    change: impl FnOnce(&mut crate::frame::event::CommitEventOwned),
) -> Vec<u8> {
    let owned = Frame::decode(frame)
        .ok()
        .and_then(|f| f.into_event().into_owned());
    match owned {
        Some(EventOwned::Commit(mut commit)) => {
            change(&mut commit);
            let mut out = Vec::new();
            commit.encode_frame(&mut out);
            out
        }
        _ => frame.to_vec(),
    }
}

/// A frame of a type the lexicon does not define: `{t: "#simUnknown", op: 1}` and a
/// body with `seq`, `did` and `time`.
fn unknown_frame(did: &str, seq: u64, now: u64) -> Vec<u8> {
    let mut out = Vec::new();
    write_message_header(UNKNOWN_TYPE, &mut out);
    let body = OwnedValue::map([
        ("seq", OwnedValue::Unsigned(seq)),
        ("did", OwnedValue::text(did)),
        ("time", OwnedValue::text(rfc3339_micros(now))),
    ]);
    out.extend(body.to_bytes());
    out
}

/// Where the 27-byte value of the first `time` key sits: the CBOR text `time` followed by
/// a one-byte-length text head of 27. Every frame kind writes `time` before `blocks`, so
/// the first match is the key: paths and revs before it cannot contain this sequence,
/// only the random bytes of a CID could (about once in 2^56 frames).
pub fn find_time(frame: &[u8]) -> Option<usize> {
    const KEY: [u8; 7] = [0x64, b't', b'i', b'm', b'e', 0x78, TIME_BYTES as u8];
    let at = frame.windows(KEY.len()).position(|w| w == KEY)?;
    let start = at + KEY.len();
    (start + TIME_BYTES <= frame.len()).then_some(start)
}

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::key::Curve;

    #[test]
    fn time_is_found_and_stamped_in_every_frame_kind() {
        let mut account = SimAccount::new(4, Curve::P256, "h").unwrap();
        let now = 1_763_800_000_000_000;
        let frames = [
            account
                .commit(&[SimOp::Create { size_bytes: 100 }], now, 1)
                .unwrap(),
            account.sync_frame(now, 2).unwrap(),
            account.identity_frame(Some("a.test"), now, 3),
            account.account_frame(true, None, now, 4),
            unknown_frame(account.did(), 5, now),
        ];
        for mut frame in frames {
            let at = find_time(&frame).unwrap();
            assert!(crate::sim::fleet::stamp_time(&mut frame, at, now + 7));
            let decoded = Frame::decode(&frame).unwrap();
            let time = match decoded.event() {
                crate::frame::event::Event::Commit(e) => e.time(),
                crate::frame::event::Event::Sync(e) => e.time(),
                crate::frame::event::Event::Identity(e) => e.time(),
                crate::frame::event::Event::Account(e) => e.time(),
                crate::frame::event::Event::Unknown { .. } => {
                    assert_eq!(
                        &frame[at..at + TIME_BYTES],
                        rfc3339_micros(now + 7).as_bytes()
                    );
                    continue;
                }
                other => panic!("{other:?}"),
            };
            assert_eq!(time, rfc3339_micros(now + 7));
        }
    }
}
