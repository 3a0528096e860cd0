//! Per-host event rate limits as sliding windows, sans-IO: time is passed in (milliseconds
//! on any monotonic clock), nothing here sleeps or reads a clock.
//!
//! Owns: [`SlidingWindow`] (one limit over one window length) and [`HostRateLimiter`]
//! (a host's per-second, per-hour and per-day windows, admitted together).
//! Must not: sleep, count metrics or decide the limits (`verify::limits` computes the
//! effective limits; `upstream::session` waits for what [`HostRateLimiter::admit`] says).
//!
//! A window is `UPSTREAM_RATE_WINDOW_BUCKETS` buckets of `length / buckets` each. At time
//! `t` it counts every bucket that overlaps `(t − length, t]` (that is the current bucket
//! and the `buckets` before it), so it is conservative: **no interval of `length`
//! milliseconds ever holds more than `limit` admitted events** (the property tests check
//! it against the exact count), and an event waits at most one bucket longer than an
//! exact window would make it wait. Limit 0 means unlimited.

use crate::config::limits::UPSTREAM_RATE_WINDOW_BUCKETS;
use crate::state::RateLimits;

/// Slots kept: the buckets of one window plus the current, partly elapsed one.
const SLOTS: usize = UPSTREAM_RATE_WINDOW_BUCKETS + 1;

/// One limit over one window length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlidingWindow {
    bucket_millis: u64,
    limit: u64,
    /// Absolute number of the newest bucket seen (`now / bucket_millis`).
    head: u64,
    /// Counts by absolute bucket number modulo `SLOTS`.
    counts: [u64; SLOTS],
}

impl SlidingWindow {
    /// A window of `length_millis` (rounded down to a whole number of buckets of at least
    /// one millisecond) admitting `limit` events (0 = unlimited).
    pub fn new(length_millis: u64, limit: u64) -> SlidingWindow {
        SlidingWindow {
            bucket_millis: (length_millis / UPSTREAM_RATE_WINDOW_BUCKETS as u64).max(1),
            limit,
            head: 0,
            counts: [0; SLOTS],
        }
    }

    /// The limit (0 = unlimited).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Change the limit; what was counted stays counted.
    pub fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// Events counted in the window at `now_millis`.
    pub fn count(&mut self, now_millis: u64) -> u64 {
        self.advance(now_millis);
        self.counts.iter().sum()
    }

    /// `None` when one more event fits at `now_millis`; else the earliest time (same
    /// clock) at which the count can drop, when the oldest counted bucket leaves the
    /// window. Counts nothing.
    pub fn check(&mut self, now_millis: u64) -> Option<u64> {
        if self.limit == 0 || self.count(now_millis) < self.limit {
            return None;
        }
        let oldest = self
            .head
            .saturating_sub(UPSTREAM_RATE_WINDOW_BUCKETS as u64);
        let first_used = (oldest..=self.head)
            .find(|bucket| self.counts[slot(*bucket)] > 0)
            .unwrap_or(self.head);
        // Bucket b overlaps (t − length, t] until t reaches (b + buckets + 1) · width.
        let leaves = first_used + UPSTREAM_RATE_WINDOW_BUCKETS as u64 + 1;
        Some(
            leaves
                .saturating_mul(self.bucket_millis)
                .max(now_millis + 1),
        )
    }

    /// Count one event at `now_millis` (whether or not it fit: callers check first).
    pub fn record(&mut self, now_millis: u64) {
        self.advance(now_millis);
        let counted = &mut self.counts[slot(self.head)];
        *counted = counted.saturating_add(1);
    }

    /// Move the head to `now_millis`'s bucket, clearing the buckets that left the window.
    /// A time before the head (a clock that went back) counts in the head bucket.
    fn advance(&mut self, now_millis: u64) {
        let bucket = now_millis / self.bucket_millis;
        if bucket <= self.head {
            return;
        }
        let steps = (bucket - self.head).min(SLOTS as u64);
        for step in 1..=steps {
            self.counts[slot(self.head + step)] = 0;
        }
        self.head = bucket;
    }
}

fn slot(bucket: u64) -> usize {
    (bucket % SLOTS as u64) as usize
}

/// Which of a host's windows held an event back (a bounded metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateWindow {
    /// The per-second window.
    Second,
    /// The per-hour window.
    Hour,
    /// The per-day window.
    Day,
}

impl RateWindow {
    /// The `reason` label of `relay_upstream_rate_limit_waits_total`.
    pub fn reason(self) -> &'static str {
        match self {
            RateWindow::Second => "rate_per_second",
            RateWindow::Hour => "rate_per_hour",
            RateWindow::Day => "rate_per_day",
        }
    }
}

const SECOND_MILLIS: u64 = 1_000;
const HOUR_MILLIS: u64 = 3_600 * SECOND_MILLIS;
const DAY_MILLIS: u64 = 24 * HOUR_MILLIS;

/// A host's three windows: an event is admitted only when all three have room, and then
/// counted in all three.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRateLimiter {
    second: SlidingWindow,
    hour: SlidingWindow,
    day: SlidingWindow,
}

impl HostRateLimiter {
    /// A limiter with these limits (0 = unlimited).
    pub fn new(limits: RateLimits) -> HostRateLimiter {
        HostRateLimiter {
            second: SlidingWindow::new(SECOND_MILLIS, limits.per_second),
            hour: SlidingWindow::new(HOUR_MILLIS, limits.per_hour),
            day: SlidingWindow::new(DAY_MILLIS, limits.per_day),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> RateLimits {
        RateLimits {
            per_second: self.second.limit(),
            per_hour: self.hour.limit(),
            per_day: self.day.limit(),
        }
    }

    /// Change the limits live; the counts stay (a lowered limit applies to what was
    /// already admitted in the window).
    pub fn set_limits(&mut self, limits: RateLimits) {
        self.second.set_limit(limits.per_second);
        self.hour.set_limit(limits.per_hour);
        self.day.set_limit(limits.per_day);
    }

    /// Admit one event at `now_millis` (`Ok`, counted), or say when to ask again and
    /// which window is full (`Err`, nothing counted): the latest of the full windows'
    /// times, since the event needs room in all of them.
    pub fn admit(&mut self, now_millis: u64) -> Result<(), (u64, RateWindow)> {
        let mut wait: Option<(u64, RateWindow)> = None;
        for (window, which) in [
            (&mut self.second, RateWindow::Second),
            (&mut self.hour, RateWindow::Hour),
            (&mut self.day, RateWindow::Day),
        ] {
            if let Some(at) = window.check(now_millis)
                && wait.is_none_or(|(later, _)| at > later)
            {
                wait = Some((at, which));
            }
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        self.second.record(now_millis);
        self.hour.record(now_millis);
        self.day.record(now_millis);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Admit greedily at the given arrival times (an event held back waits until the
    /// window admits it, like the session); returns the admission times.
    fn run(window: &mut SlidingWindow, arrivals: &[u64]) -> Vec<u64> {
        let mut admitted = Vec::new();
        let mut clock = 0;
        for &arrival in arrivals {
            clock = clock.max(arrival);
            while let Some(at) = window.check(clock) {
                assert!(at > clock, "a wait always moves time forward");
                clock = at;
            }
            window.record(clock);
            admitted.push(clock);
        }
        admitted
    }

    #[test]
    fn unlimited_admits_everything_at_once() {
        let mut window = SlidingWindow::new(1_000, 0);
        let admitted = run(&mut window, &[0; 1_000]);
        assert!(admitted.iter().all(|&t| t == 0));
    }

    #[test]
    fn a_full_second_waits_for_its_oldest_bucket() {
        let mut window = SlidingWindow::new(1_000, 5);
        for _ in 0..5 {
            assert_eq!(window.check(10), None);
            window.record(10);
        }
        // Bucket 0 (0..100 ms) overlaps the window until 1,100 ms.
        assert_eq!(window.check(10), Some(1_100));
        assert_eq!(window.check(1_099), Some(1_100));
        assert_eq!(window.check(1_100), None);
    }

    #[test]
    fn the_host_limiter_waits_for_the_latest_full_window() {
        let mut limiter = HostRateLimiter::new(RateLimits {
            per_second: 2,
            per_hour: 3,
            per_day: 0,
        });
        assert!(limiter.admit(0).is_ok());
        assert!(limiter.admit(0).is_ok());
        assert_eq!(limiter.admit(0), Err((1_100, RateWindow::Second)));
        assert!(limiter.admit(1_100).is_ok());
        let (at, which) = limiter.admit(5_000).unwrap_err();
        assert_eq!(which, RateWindow::Hour);
        assert_eq!(at, HOUR_MILLIS + HOUR_MILLIS / 10);
        limiter.set_limits(RateLimits::default());
        assert!(
            limiter.admit(5_000).is_ok(),
            "unlimited after a live change"
        );
    }

    proptest! {
        /// No interval of one window length holds more than the limit, whatever the
        /// arrivals; every event is admitted (held back, never dropped); and an event is
        /// held back only while the window is full.
        #[test]
        fn never_more_than_the_limit_in_any_window(
            limit in 1u64..20,
            length in 10u64..5_000,
            gaps in proptest::collection::vec(0u64..400, 1..300),
        ) {
            let mut arrivals = Vec::with_capacity(gaps.len());
            let mut t = 0;
            for gap in gaps {
                t += gap;
                arrivals.push(t);
            }
            let mut window = SlidingWindow::new(length, limit);
            let admitted = run(&mut window, &arrivals);
            prop_assert_eq!(admitted.len(), arrivals.len());
            let bucket = (length / UPSTREAM_RATE_WINDOW_BUCKETS as u64).max(1);
            let span = bucket * UPSTREAM_RATE_WINDOW_BUCKETS as u64;
            for (i, &start) in admitted.iter().enumerate() {
                let inside = admitted[i..].iter().take_while(|&&x| x < start + span).count();
                prop_assert!(inside as u64 <= limit, "{} events in [{}, +{})", inside, start, span);
            }
            let buckets = UPSTREAM_RATE_WINDOW_BUCKETS as u64;
            for (i, (&at, &arrival)) in admitted.iter().zip(&arrivals).enumerate() {
                let ready = arrival.max(if i == 0 { 0 } else { admitted[i - 1] });
                prop_assert!(at >= ready);
                if at > ready {
                    // Held back only while the window was full a millisecond before.
                    let head = (at - 1) / bucket;
                    let counted = admitted[..i]
                        .iter()
                        .filter(|&&x| x / bucket + buckets >= head)
                        .count() as u64;
                    prop_assert!(counted >= limit, "event {} waited with room: {} < {}", i, counted, limit);
                }
            }
        }

        /// The counts the window keeps equal an exact count over its buckets.
        #[test]
        fn count_matches_the_buckets(
            times in proptest::collection::vec(0u64..20_000, 1..200),
        ) {
            let mut sorted = times.clone();
            sorted.sort_unstable();
            let mut window = SlidingWindow::new(1_000, 0);
            for &t in &sorted {
                window.record(t);
            }
            let now = *sorted.last().unwrap_or(&0);
            let head = now / 100;
            let exact = sorted
                .iter()
                .filter(|&&t| t / 100 + UPSTREAM_RATE_WINDOW_BUCKETS as u64 >= head)
                .count() as u64;
            prop_assert_eq!(window.count(now), exact);
        }
    }
}
