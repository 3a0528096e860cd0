//! Where a new consumer starts, from its `cursor` query parameter: the atproto event-stream
//! rules (<https://atproto.com/specs/event-stream>, "Sequence Numbers"), sans-IO.
//!
//! Owns: the decision only. Must not: read the log or the ring (the caller passes the
//! window's bounds). Checks: every boundary below, unit-tested here and end to end in
//! tests/fanout.rs.
//!
//! - no cursor: live from now;
//! - `cursor > latest`: `FutureCursor` error frame, then close;
//! - `cursor = 0`: every event in the window, from the oldest;
//! - `cursor < oldest − 1`: `#info OutdatedCursor`, then from the oldest;
//! - otherwise: the events with seq > cursor, then live (the cursor is the last seq the
//!   consumer holds, so replay is exclusive of it, as the reference PDS does).

use crate::eventlog::Seq;

/// How a consumer's stream begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// No cursor: the next frame published.
    Live,
    /// Replay from the log: the first event sent has seq ≥ `from`, then live.
    Replay {
        /// Smallest seq to send.
        from: u64,
    },
    /// Send `#info OutdatedCursor`, then replay from the oldest event (`from`).
    Outdated {
        /// The oldest seq of the window.
        from: u64,
    },
    /// Send the `FutureCursor` error frame and close.
    Future,
}

/// Decide where a consumer starts. `oldest`: the log's oldest seq (its window's start);
/// `latest`: the newest seq the relay has made durable (`None`: nothing yet).
pub fn start_for(cursor: Option<u64>, oldest: Option<Seq>, latest: Option<Seq>) -> Start {
    let Some(cursor) = cursor else {
        return Start::Live;
    };
    let latest = latest.map_or(0, Seq::get);
    if cursor > latest {
        return Start::Future;
    }
    let oldest = oldest.map_or(1, Seq::get);
    if cursor == 0 {
        return Start::Replay { from: oldest };
    }
    if cursor.saturating_add(1) < oldest {
        return Start::Outdated { from: oldest };
    }
    Start::Replay { from: cursor + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n: u64) -> Option<Seq> {
        Seq::new(n)
    }

    #[test]
    fn every_boundary() {
        let (oldest, latest) = (seq(100), seq(200));
        assert_eq!(start_for(None, oldest, latest), Start::Live);
        assert_eq!(
            start_for(Some(0), oldest, latest),
            Start::Replay { from: 100 }
        );
        assert_eq!(
            start_for(Some(98), oldest, latest),
            Start::Outdated { from: 100 }
        );
        assert_eq!(
            start_for(Some(99), oldest, latest),
            Start::Replay { from: 100 }
        );
        assert_eq!(
            start_for(Some(150), oldest, latest),
            Start::Replay { from: 151 }
        );
        assert_eq!(
            start_for(Some(200), oldest, latest),
            Start::Replay { from: 201 }
        );
        assert_eq!(start_for(Some(201), oldest, latest), Start::Future);
        assert_eq!(start_for(Some(u64::MAX), oldest, latest), Start::Future);
    }

    #[test]
    fn empty_log() {
        assert_eq!(start_for(Some(0), None, None), Start::Replay { from: 1 });
        assert_eq!(start_for(Some(1), None, None), Start::Future);
        assert_eq!(start_for(None, None, None), Start::Live);
    }
}
