//! The fleet's hostile modes: what a misbehaving PDS does wrong, with a stable label and
//! the relay check each one targets.
//!
//! Owns the list of modes, their labels and whether a mode applies to single events or
//! to a whole host. Must not build frames (the generator does, through
//! `sim::account`). Checks nothing.

use std::fmt;

#[cfg(feature = "server")]
use crate::sim::account::Hostile;

/// One way a simulated host misbehaves. Event modes replace a share of a host's events;
/// host modes change how a whole host behaves ([`HostileMode::is_host_mode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HostileMode {
    /// Commit signature does not verify (rules: `bad_signature`).
    BadSignature,
    /// Commit signed by the key before the last rotation, or by a key never published
    /// (rules: `bad_signature` with the key from the current DID document).
    RotatedKey,
    /// `since` is not the previous rev; the commit is otherwise the honest next one
    /// (rules: passes, `desynchronized()` is true).
    BrokenSince,
    /// `prevData` is not the previous data root (rules: `mst_inversion`).
    WrongPrevData,
    /// The ops name CIDs the blocks do not prove (rules: `mst_inversion`).
    OpsDoNotInvert,
    /// Rev older than the previous (rules: `rev_not_newer`).
    RevRollback,
    /// Rev more than ten minutes ahead (rules: `future_rev`).
    FutureRev,
    /// 201 ops (decoder: `decode`, too many ops).
    TooManyOps,
    /// `blocks` over 2,000,000 bytes (decoder: `decode`, blocks too large).
    OversizedBlocks,
    /// A frame over 5,000,000 bytes (WebSocket reader / decoder: frame too large).
    OversizedFrame,
    /// The body is not DAG-CBOR (decoder: `decode`).
    MalformedCbor,
    /// The CAR slice is cut short (rules: `bad_car`).
    TruncatedCar,
    /// The CAR root is the MST root, not the commit (rules: `car_root_mismatch`).
    CarRootNotCommit,
    /// A valid commit of an account whose DID document names another host (relay: host
    /// authority check; the rules alone pass it).
    WrongHost,
    /// A message type the lexicon does not define (decoder: `Event::Unknown`, skip).
    UnknownType,
    /// A valid commit sent in a WebSocket text frame (upstream reader: protocol error).
    TextFrame,
    /// Half a frame, then the connection closes (upstream reader: EOF mid-frame). Only
    /// sessions that are live when it is released see it (a replay skips it, else a
    /// reconnecting reader would be cut again and again); counted per cut connection.
    DisconnectMidFrame,
    /// Host mode: frames written a few bytes at a time with pauses (reader time-outs).
    SlowDrip,
    /// Host mode: accepts the WebSocket upgrade, then sends nothing (idle time-out).
    SilentHost,
    /// Host mode: the sequence starts again at 1 every `SIM_SEQ_RESET_EVENTS_MAX` events
    /// (relay: upstream seq went backwards).
    ResetSeq,
}

impl HostileMode {
    /// Every mode, in label order of the docs.
    pub const ALL: [HostileMode; 20] = [
        HostileMode::BadSignature,
        HostileMode::RotatedKey,
        HostileMode::BrokenSince,
        HostileMode::WrongPrevData,
        HostileMode::OpsDoNotInvert,
        HostileMode::RevRollback,
        HostileMode::FutureRev,
        HostileMode::TooManyOps,
        HostileMode::OversizedBlocks,
        HostileMode::OversizedFrame,
        HostileMode::MalformedCbor,
        HostileMode::TruncatedCar,
        HostileMode::CarRootNotCommit,
        HostileMode::WrongHost,
        HostileMode::UnknownType,
        HostileMode::TextFrame,
        HostileMode::DisconnectMidFrame,
        HostileMode::SlowDrip,
        HostileMode::SilentHost,
        HostileMode::ResetSeq,
    ];

    /// A short, bounded label (also the CLI's spelling).
    pub fn reason(&self) -> &'static str {
        match self {
            HostileMode::BadSignature => "bad_signature",
            HostileMode::RotatedKey => "rotated_key",
            HostileMode::BrokenSince => "broken_since",
            HostileMode::WrongPrevData => "wrong_prev_data",
            HostileMode::OpsDoNotInvert => "ops_do_not_invert",
            HostileMode::RevRollback => "rev_rollback",
            HostileMode::FutureRev => "future_rev",
            HostileMode::TooManyOps => "too_many_ops",
            HostileMode::OversizedBlocks => "oversized_blocks",
            HostileMode::OversizedFrame => "oversized_frame",
            HostileMode::MalformedCbor => "malformed_cbor",
            HostileMode::TruncatedCar => "truncated_car",
            HostileMode::CarRootNotCommit => "car_root_not_commit",
            HostileMode::WrongHost => "wrong_host",
            HostileMode::UnknownType => "unknown_type",
            HostileMode::TextFrame => "text_frame",
            HostileMode::DisconnectMidFrame => "disconnect_mid_frame",
            HostileMode::SlowDrip => "slow_drip",
            HostileMode::SilentHost => "silent_host",
            HostileMode::ResetSeq => "reset_seq",
        }
    }

    /// The mode of a label.
    pub fn from_reason(label: &str) -> Option<HostileMode> {
        HostileMode::ALL.into_iter().find(|m| m.reason() == label)
    }

    /// True for modes that change a whole host rather than single events.
    pub fn is_host_mode(&self) -> bool {
        matches!(
            self,
            HostileMode::SlowDrip | HostileMode::SilentHost | HostileMode::ResetSeq
        )
    }

    /// True for modes counted per event the fleet emits (and so in
    /// `FleetCounters::hostile_events`); host modes and `DisconnectMidFrame` are counted
    /// per connection (per reset for `ResetSeq`), as that is what a reader can observe.
    pub fn is_counted_per_event(&self) -> bool {
        !self.is_host_mode() && *self != HostileMode::DisconnectMidFrame
    }

    /// Index into counter arrays.
    #[cfg(feature = "server")]
    pub(crate) fn index(self) -> usize {
        HostileMode::ALL
            .iter()
            .position(|m| *m == self)
            .unwrap_or_default()
    }

    /// The `sim::account` kind that builds this mode's commit, when there is one.
    #[cfg(feature = "server")]
    pub(crate) fn account_kind(self) -> Option<Hostile> {
        Some(match self {
            HostileMode::BadSignature => Hostile::BadSignature,
            HostileMode::WrongPrevData => Hostile::WrongPrevData,
            HostileMode::OpsDoNotInvert => Hostile::OpsDoNotInvert,
            HostileMode::RevRollback => Hostile::RevNotNewer,
            HostileMode::FutureRev => Hostile::FutureRev,
            HostileMode::TooManyOps => Hostile::TooManyOps,
            HostileMode::CarRootNotCommit => Hostile::CarRootNotCommit,
            HostileMode::MalformedCbor => Hostile::MalformedCbor,
            HostileMode::TruncatedCar => Hostile::TruncatedCar,
            _ => return None,
        })
    }
}

impl fmt::Display for HostileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_round_trip() {
        let mut labels: Vec<&str> = HostileMode::ALL.iter().map(HostileMode::reason).collect();
        for mode in HostileMode::ALL {
            assert_eq!(HostileMode::from_reason(mode.reason()), Some(mode));
        }
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), HostileMode::ALL.len());
        let hosts = HostileMode::ALL.iter().filter(|m| m.is_host_mode()).count();
        assert_eq!(hosts, 3);
    }
}
