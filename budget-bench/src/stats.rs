//! Percentiles of latency samples.

use std::time::Duration;

/// Median, p99 and max of a sample.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Summary {
    pub(crate) n: usize,
    pub(crate) median: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

impl Summary {
    /// Summarise `samples` (sorted in place).
    pub(crate) fn of(samples: &mut [Duration]) -> Summary {
        samples.sort_unstable();
        Summary {
            n: samples.len(),
            median: percentile(samples, 50.0),
            p99: percentile(samples, 99.0),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

/// Nearest-rank percentile of sorted `samples` (zero when empty).
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with three decimals.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

/// Signed difference `a − b` in milliseconds with three decimals.
pub(crate) fn ms_diff(a: Duration, b: Duration) -> String {
    format!("{:+.3}", (a.as_secs_f64() - b.as_secs_f64()) * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = Summary::of(&mut v);
        assert_eq!(
            (s.median, s.p99, s.max),
            (
                Duration::from_millis(50),
                Duration::from_millis(99),
                Duration::from_millis(100)
            )
        );
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
        assert_eq!(
            percentile(&[Duration::from_millis(3)], 50.0),
            Duration::from_millis(3)
        );
    }
}
