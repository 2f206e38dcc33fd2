//! A fixed-size, lock-free log-linear histogram of durations, for real percentiles.
//!
//! Prometheus histograms answer "how many requests were under 250 ms", but their coarse buckets
//! cannot give a p99 better than "somewhere between 5 s and 10 s". The performance summary needs
//! percentiles an operator can quote, so each sample also lands here.
//!
//! Values are whole microseconds. Below 128 µs every value has its own bucket. Above that, each
//! power of two is split into 64 equal buckets, so a bucket is at most 1/64 of its lower bound wide
//! and the reported midpoint is within 1/128 (0.8 %) of any value in it. Values above
//! [`MAX_MICROS`] (about 71.6 minutes) are counted at the top bucket. Memory is fixed:
//! [`BUCKETS`] `AtomicU64`s (about 14 KiB); recording is one relaxed `fetch_add`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// log2 of the number of buckets each power of two is split into.
const SUB_BITS: u32 = 6;
/// Buckets per power of two.
const SUB: u64 = 1 << SUB_BITS;
/// The largest value with a bucket of its own: 2^32 − 1 µs, about 71.6 minutes. An upstream call
/// is cut off long before that (`salesforce.timeout_secs`), so the top bucket stays empty in
/// practice; anything above is clamped rather than dropped.
pub(crate) const MAX_MICROS: u64 = (1 << 32) - 1;
/// The number of buckets needed to reach [`MAX_MICROS`].
pub(crate) const BUCKETS: usize = bucket_index(MAX_MICROS) + 1;

/// The bucket holding `micros` (which must be at most [`MAX_MICROS`]).
const fn bucket_index(micros: u64) -> usize {
    if micros < SUB {
        return micros as usize;
    }
    // `micros` lies in [2^exp, 2^(exp+1)); dropping `shift` low bits leaves a value in
    // [SUB, 2 * SUB), and each power of two gets its own run of SUB buckets.
    let exp = 63 - micros.leading_zeros();
    let shift = exp - SUB_BITS;
    (((shift as u64) << SUB_BITS) + (micros >> shift)) as usize
}

/// The smallest and largest value (in µs) that fall in bucket `index`.
const fn bucket_bounds(index: usize) -> (u64, u64) {
    let index = index as u64;
    let shift = (index >> SUB_BITS).saturating_sub(1);
    let mantissa = index - (shift << SUB_BITS);
    (mantissa << shift, ((mantissa + 1) << shift) - 1)
}

/// Durations recorded since creation, bucketed log-linearly. See the module docs.
pub(crate) struct LatencyHistogram {
    // Boxed so a `Metrics` with several histograms stays small to move around.
    buckets: Box<[AtomicU64; BUCKETS]>,
}

impl LatencyHistogram {
    /// An empty histogram.
    pub(crate) fn new() -> Self {
        Self {
            buckets: Box::new([const { AtomicU64::new(0) }; BUCKETS]),
        }
    }

    /// Counts one sample; sub-microsecond durations count as 0 µs.
    pub(crate) fn record(&self, duration: Duration) {
        let micros = u64::try_from(duration.as_micros())
            .unwrap_or(u64::MAX)
            .min(MAX_MICROS);
        if let Some(bucket) = self.buckets.get(bucket_index(micros)) {
            // Relaxed: each bucket is an independent counter; a snapshot taken while samples
            // arrive may miss the newest ones, which is fine for a summary.
            bucket.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A copy of the current counts, to compute percentiles from.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total = counts.iter().sum();
        Snapshot { counts, total }
    }
}

/// The counts of a [`LatencyHistogram`] at one moment.
pub(crate) struct Snapshot {
    counts: Vec<u64>,
    total: u64,
}

impl Snapshot {
    /// The number of samples.
    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// The `q`-quantile (0 < q ≤ 1) in microseconds, by nearest rank, or `None` without samples.
    ///
    /// The answer is the midpoint of the bucket holding the sample of that rank, so it is within
    /// 0.8 % of the exact nearest-rank value (exact below 128 µs).
    pub(crate) fn quantile_micros(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        // Nearest rank: the smallest sample with at least q·n samples at or below it.
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, high) = bucket_bounds(index);
                return Some((low as f64 + high as f64) / 2.0);
            }
        }
        // Unreachable while `total` is the sum of `counts`; answer the top bucket regardless.
        let (low, high) = bucket_bounds(BUCKETS - 1);
        Some((low as f64 + high as f64) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    #[test]
    fn buckets_cover_every_value_in_order() {
        // Every bucket's bounds contain exactly the values that map to it, and buckets are
        // contiguous: the next bucket starts right after this one ends.
        let mut expected_low = 0;
        for index in 0..BUCKETS {
            let (low, high) = bucket_bounds(index);
            assert_eq!(low, expected_low, "bucket {index}");
            assert!(high >= low);
            assert_eq!(bucket_index(low), index);
            assert_eq!(bucket_index(high), index);
            // At most 1/64 of the lower bound wide, so the midpoint is within 1/128.
            assert!(
                (high - low + 1) as f64 <= (low as f64 / 64.0).max(1.0),
                "bucket {index}"
            );
            expected_low = high + 1;
        }
        assert_eq!(expected_low - 1, MAX_MICROS);
        assert_eq!(BUCKETS, 1728);
    }

    #[test]
    fn empty_histogram_has_no_percentiles() {
        let snapshot = LatencyHistogram::new().snapshot();
        assert_eq!(snapshot.count(), 0);
        assert_eq!(snapshot.quantile_micros(0.5), None);
    }

    #[test]
    fn small_values_are_exact() {
        let histogram = LatencyHistogram::new();
        for micros in 1..=100 {
            histogram.record(Duration::from_micros(micros));
        }
        histogram.record(Duration::from_nanos(300)); // rounds down to 0 µs
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count(), 101);
        assert_eq!(snapshot.quantile_micros(0.5), Some(50.0));
        assert_eq!(snapshot.quantile_micros(0.99), Some(99.0));
        assert_eq!(snapshot.quantile_micros(1.0), Some(100.0));
        assert_eq!(snapshot.quantile_micros(0.0), Some(0.0));
    }

    #[test]
    fn percentiles_match_a_sorted_reference_within_one_percent() {
        let mut rng = fastrand::Rng::with_seed(7);
        // Three shapes: log-uniform over the whole range, a tight sub-millisecond cluster (the
        // bridge's overhead) and a bimodal mix of fast errors and minute-long generations.
        let shapes: [&dyn Fn(&mut fastrand::Rng) -> u64; 3] = [
            &|rng| 10f64.powf(rng.f64() * 9.5) as u64,
            &|rng| 80 + rng.u64(0..400),
            &|rng| {
                if rng.bool() {
                    rng.u64(200..2_000)
                } else {
                    rng.u64(5_000_000..120_000_000)
                }
            },
        ];
        for (shape_index, shape) in shapes.iter().enumerate() {
            let histogram = LatencyHistogram::new();
            let mut reference: Vec<u64> = (0..20_000).map(|_| shape(&mut rng)).collect();
            for &micros in &reference {
                histogram.record(Duration::from_micros(micros));
            }
            reference.sort_unstable();
            let snapshot = histogram.snapshot();
            for q in [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
                let exact = nearest_rank(&reference, q) as f64;
                let estimate = snapshot.quantile_micros(q).unwrap_or(f64::NAN);
                let error = (estimate - exact).abs() / exact.max(1.0);
                assert!(
                    error <= 0.01,
                    "shape {shape_index} q {q}: {estimate} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn values_beyond_the_range_are_clamped_not_lost() {
        let histogram = LatencyHistogram::new();
        histogram.record(Duration::from_secs(24 * 3600));
        histogram.record(Duration::MAX);
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count(), 2);
        let top = snapshot.quantile_micros(1.0).unwrap_or_default();
        assert!(top > MAX_MICROS as f64 * 0.99 && top <= MAX_MICROS as f64);
    }

    #[test]
    fn concurrent_recording_loses_nothing() {
        let histogram = LatencyHistogram::new();
        std::thread::scope(|scope| {
            for thread in 0..4u64 {
                let histogram = &histogram;
                scope.spawn(move || {
                    for i in 0..10_000 {
                        histogram.record(Duration::from_micros(thread * 1_000 + i));
                    }
                });
            }
        });
        assert_eq!(histogram.snapshot().count(), 40_000);
    }
}
