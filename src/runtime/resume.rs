//! Resuming after a stop or a crash: the last accepted rev and data root of each account
//! that appears in the tail of the event log.
//!
//! Owns: the rule that the log, not the state store, is the last word on what was
//! relayed. The store's account revs are written behind (one flush interval late at
//! most); the log is durable before anything is broadcast. Reading the log's last
//! `RESUME_SCAN_RECORDS_MAX` records at start and taking, per account, the newer of the
//! two means a commit that a host sends again after a crash (its cursor was also written
//! behind) is refused as `rev_not_newer` instead of being relayed twice.
//! Must not: run on a data-plane executor (it reads the disk; `serve` calls it before the
//! executors start).

use crate::config::limits::{COMMIT_BLOCKS_MAX, RESUME_SCAN_RECORDS_MAX};
use crate::eventlog::{EventLog, Seq};
use crate::frame::car::Blocks;
use crate::frame::commit::Commit;
use crate::frame::event::{Event, Frame};
use crate::syntax::Tid;
use crate::verify::rules::AccountState;
use std::collections::HashMap;

/// Per DID, the account state of its last commit or sync in the log's tail.
pub type TailStates = HashMap<String, AccountState>;

/// Scan the end of `log` (before the writer starts appending at `next_seq`).
pub fn account_states_from_tail(log: &EventLog, next_seq: Seq) -> TailStates {
    let from = next_seq
        .get()
        .saturating_sub(RESUME_SCAN_RECORDS_MAX)
        .max(1);
    let mut states = TailStates::new();
    let mut blocks = Blocks::new();
    for record in log.read_from(from) {
        let Ok(record) = record else {
            // A defect is reported by replay to consumers too; resume what was readable.
            break;
        };
        if let Some((did, state)) = state_of(&record.payload, &mut blocks) {
            states.insert(did, state);
        }
        blocks = Blocks::with_buffer(blocks.recycle());
    }
    states
}

fn state_of<'a>(payload: &'a [u8], blocks: &mut Blocks<'a>) -> Option<(String, AccountState)> {
    let frame = Frame::decode(payload).ok()?;
    let (did, rev, car) = match frame.event() {
        Event::Commit(e) => (e.repo(), e.rev(), e.blocks()),
        Event::Sync(e) => (e.did(), e.rev(), e.blocks()),
        _ => return None,
    };
    let root = blocks.load(car, COMMIT_BLOCKS_MAX).ok()?;
    let commit = Commit::decode(blocks.get(&root)?).ok()?;
    let rev = Tid::parse(rev).ok()?;
    Some((
        did.to_owned(),
        AccountState {
            rev,
            data: commit.data(),
        },
    ))
}
