//! Reconnect delays for upstream sessions: capped exponential backoff with full jitter,
//! pure (no clock, no randomness source of its own) so the sequence is tested without time.
//!
//! Owns: the attempt count and the rule that turns it into a delay. Must not: sleep, read
//! a clock or draw random numbers (the session passes the connection's lifetime and a
//! random word in).
//! Always checks: the ceiling never exceeds the cap, whatever the attempt count (the
//! doubling saturates). Does not: give up. A session retries forever at the cap.
//!
//! Rule (the "full jitter" of the AWS architecture blog's backoff study): before attempt
//! `n` (0-based count of consecutive failures) the delay is uniform in
//! `[0, min(cap, base · 2ⁿ)]`. A connection that stayed up at least `healthy` resets the
//! count, so the next delay is drawn from `[0, base]` again; a host that accepts and drops
//! at once keeps backing off.

use crate::config::limits::{
    UPSTREAM_BACKOFF_BASE_MILLIS, UPSTREAM_BACKOFF_DELAY_MILLIS_MAX,
    UPSTREAM_HEALTHY_CONNECTION_MILLIS_MIN,
};
use std::time::Duration;

/// Doublings after which the ceiling is the cap whatever the base (2⁶³ ms overflows).
const DOUBLINGS_MAX: u32 = 62;

/// The bounds of a backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Ceiling of the first delay.
    pub base: Duration,
    /// Largest ceiling.
    pub cap: Duration,
    /// A connection up at least this long resets the backoff.
    pub healthy: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            base: Duration::from_millis(UPSTREAM_BACKOFF_BASE_MILLIS),
            cap: Duration::from_millis(UPSTREAM_BACKOFF_DELAY_MILLIS_MAX),
            healthy: Duration::from_millis(UPSTREAM_HEALTHY_CONNECTION_MILLIS_MIN),
        }
    }
}

/// The backoff state of one session.
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: BackoffPolicy,
    failures: u32,
}

impl Backoff {
    /// A backoff with no failures yet.
    pub fn new(policy: BackoffPolicy) -> Self {
        Backoff {
            policy,
            failures: 0,
        }
    }

    /// Consecutive failures counted so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The current ceiling: `min(cap, base · 2^failures)`.
    pub fn ceiling(&self) -> Duration {
        let doublings = self.failures.min(DOUBLINGS_MAX);
        let base_ms = self.policy.base.as_millis().min(u128::from(u64::MAX)) as u64;
        let cap_ms = self.policy.cap.as_millis().min(u128::from(u64::MAX)) as u64;
        let scaled = base_ms.saturating_mul(1u64 << doublings);
        Duration::from_millis(scaled.min(cap_ms))
    }

    /// A connection ended after being up for `up` (zero when it never came up). Returns
    /// the delay before the next attempt, drawn with `random` (any uniformly random
    /// word), and counts the failure.
    pub fn next_delay(&mut self, up: Duration, random: u64) -> Duration {
        if up >= self.policy.healthy {
            self.failures = 0;
        }
        let ceiling_ms = self.ceiling().as_millis() as u64;
        self.failures = self.failures.saturating_add(1);
        // Uniform in [0, ceiling]; the modulo bias is below 2⁻⁴⁰ for ceilings under 2²⁴ ms.
        Duration::from_millis(random % ceiling_ms.saturating_add(1))
    }
}

/// A small xorshift generator for jitter: not for secrets (masks and keys come from
/// `ring::rand`), seeded once per session from the system generator.
#[derive(Clone, Debug)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator from a seed (a zero seed is replaced: xorshift would stay at zero).
    pub fn new(seed: u64) -> Self {
        Jitter(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next random word.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BackoffPolicy {
        BackoffPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(5_000),
            healthy: Duration::from_secs(60),
        }
    }

    #[test]
    fn ceilings_double_then_stay_at_the_cap_forever() {
        let mut backoff = Backoff::new(policy());
        let mut ceilings = Vec::new();
        for _ in 0..200 {
            ceilings.push(backoff.ceiling().as_millis() as u64);
            backoff.next_delay(Duration::ZERO, 0);
        }
        assert_eq!(
            &ceilings[..8],
            &[100, 200, 400, 800, 1600, 3200, 5000, 5000]
        );
        assert!(ceilings[8..].iter().all(|&c| c == 5_000));
        assert_eq!(backoff.failures(), 200);
    }

    #[test]
    fn jittered_delays_stay_in_zero_to_ceiling_and_cover_it() {
        let mut jitter = Jitter::new(42);
        let mut backoff = Backoff::new(policy());
        for _ in 0..6 {
            backoff.next_delay(Duration::ZERO, 0);
        }
        let ceiling = backoff.ceiling();
        let (mut low, mut high) = (false, false);
        for _ in 0..10_000 {
            let mut probe = backoff.clone();
            let delay = probe.next_delay(Duration::ZERO, jitter.next_u64());
            assert!(delay <= ceiling);
            low |= delay < ceiling / 10;
            high |= delay > ceiling * 9 / 10;
        }
        assert!(low && high, "full jitter spans the whole range");
        // The extremes of the random word map to the bounds.
        assert_eq!(
            backoff.clone().next_delay(Duration::ZERO, 0),
            Duration::ZERO
        );
        let top = ceiling.as_millis() as u64;
        assert_eq!(backoff.next_delay(Duration::ZERO, top), ceiling);
    }

    #[test]
    fn a_healthy_connection_resets_a_short_one_does_not() {
        let mut backoff = Backoff::new(policy());
        for _ in 0..10 {
            backoff.next_delay(Duration::ZERO, 0);
        }
        backoff.next_delay(Duration::from_secs(59), 0);
        assert_eq!(backoff.ceiling(), Duration::from_millis(5_000));
        let delay = backoff.next_delay(Duration::from_secs(60), u64::MAX);
        assert!(delay <= Duration::from_millis(100));
        assert_eq!(backoff.failures(), 1);
        assert_eq!(backoff.ceiling(), Duration::from_millis(200));
    }

    #[test]
    fn huge_bounds_saturate_instead_of_overflowing() {
        let mut backoff = Backoff::new(BackoffPolicy {
            base: Duration::from_secs(u64::MAX / 2),
            cap: Duration::MAX,
            healthy: Duration::MAX,
        });
        for _ in 0..100 {
            backoff.next_delay(Duration::ZERO, u64::MAX);
        }
        assert!(backoff.ceiling() >= Duration::from_millis(u64::MAX / 2));
    }

    #[test]
    fn jitter_never_sticks_at_zero() {
        let mut jitter = Jitter::new(0);
        assert_ne!(jitter.next_u64(), 0);
    }
}
