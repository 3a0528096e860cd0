//! A log-linear histogram of microsecond values with fixed memory: exact below 32, then
//! 32 linear sub-buckets per power of two, so any recorded value is reported within
//! 1/32 (about 3 %) of itself. 1,920 `u64` counters (15 KiB) cover the whole `u64` range.
//!
//! Owns: counting and percentile queries. Does not: decay, merge across threads, or
//! allocate after construction.

use serde::Serialize;

/// log2 of the linear sub-buckets per power of two.
const SUB_BUCKET_BITS: u32 = 5;
/// Linear sub-buckets per power of two.
const SUB_BUCKETS: usize = 1 << SUB_BUCKET_BITS;
/// Buckets: the exact range [0, 32) plus 32 sub-buckets for each exponent 5 ..= 63.
const BUCKETS: usize = SUB_BUCKETS * (64 - SUB_BUCKET_BITS as usize + 1);

/// The histogram.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    min: u64,
}

/// Percentiles of a histogram, in microseconds (the upper bound of each bucket, so never
/// under-reported; `max` is exact).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Smallest value (exact).
    pub min_micros: u64,
    /// Median.
    pub p50_micros: u64,
    /// 90th percentile.
    pub p90_micros: u64,
    /// 99th percentile.
    pub p99_micros: u64,
    /// 99.9th percentile.
    pub p999_micros: u64,
    /// Largest value (exact).
    pub max_micros: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
            min: u64::MAX,
        }
    }

    /// Record one value.
    pub fn record(&mut self, value: u64) {
        if let Some(count) = self.counts.get_mut(bucket_of(value)) {
            *count += 1;
        }
        self.total += 1;
        self.max = self.max.max(value);
        self.min = self.min.min(value);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The smallest bucket upper bound at or below which `quantile` (0.0 ..= 1.0) of the
    /// values lie; 0 when empty.
    pub fn quantile(&self, quantile: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((quantile.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return upper_bound(index).min(self.max);
            }
        }
        self.max
    }

    /// The usual percentiles.
    pub fn percentiles(&self) -> Percentiles {
        Percentiles {
            count: self.total,
            min_micros: if self.total == 0 { 0 } else { self.min },
            p50_micros: self.quantile(0.5),
            p90_micros: self.quantile(0.9),
            p99_micros: self.quantile(0.99),
            p999_micros: self.quantile(0.999),
            max_micros: self.max,
        }
    }
}

fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS as u64 {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros();
    let shift = exponent - SUB_BUCKET_BITS;
    let sub = ((value >> shift) as usize) & (SUB_BUCKETS - 1);
    (shift as usize + 1) * SUB_BUCKETS + sub
}

/// The largest value that falls in bucket `index`.
fn upper_bound(index: usize) -> u64 {
    if index < SUB_BUCKETS {
        return index as u64;
    }
    let shift = (index / SUB_BUCKETS - 1) as u32;
    let sub = (index % SUB_BUCKETS) as u64;
    let low = (SUB_BUCKETS as u64 + sub) << shift;
    low.saturating_add((1u64 << shift) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotone_and_within_three_percent() {
        let mut previous = 0;
        for value in (0..200_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let index = bucket_of(value);
            assert!(index < BUCKETS);
            assert!(index >= previous, "{value}");
            previous = index;
            let upper = upper_bound(index);
            assert!(upper >= value);
            assert!(upper - value <= value / 32, "{value} → {upper}");
        }
    }

    #[test]
    fn percentiles_of_a_uniform_range() {
        let mut histogram = Histogram::new();
        for value in 1..=10_000u64 {
            histogram.record(value);
        }
        let p = histogram.percentiles();
        assert_eq!((p.count, p.min_micros, p.max_micros), (10_000, 1, 10_000));
        for (got, want) in [
            (p.p50_micros, 5_000),
            (p.p99_micros, 9_900),
            (p.p999_micros, 9_990),
        ] {
            assert!(got >= want && got <= want + want / 32, "{got} vs {want}");
        }
        assert_eq!(Histogram::new().percentiles(), Percentiles::default());
    }
}
