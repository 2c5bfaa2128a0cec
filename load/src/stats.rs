//! Counters and latency samples shared by a scenario's tasks.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Latency samples of one kind.
#[derive(Debug, Default)]
pub struct Latencies {
    samples: Mutex<Vec<Duration>>,
}

/// Percentiles of a set of samples, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    /// Samples taken.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latencies {
    /// Adds a sample.
    pub fn record(&self, d: Duration) {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(d);
    }

    /// The percentiles of everything recorded.
    pub fn percentiles(&self) -> Percentiles {
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 * q).ceil() as usize).saturating_sub(1);
            samples[index.min(samples.len() - 1)].as_secs_f64() * 1000.0
        };
        Percentiles {
            count: samples.len(),
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// Errors and events by kind.
#[derive(Debug, Default)]
pub struct Counters {
    counts: Mutex<BTreeMap<String, u64>>,
    examples: Mutex<BTreeMap<String, String>>,
}

impl Counters {
    /// Counts one event of `kind`; keeps the first `example` of each kind for the report.
    pub fn add(&self, kind: &str, example: impl FnOnce() -> String) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind.to_owned())
            .or_default() += 1;
        self.examples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind.to_owned())
            .or_insert_with(example);
    }

    /// Counts `n` events of `kind`.
    pub fn add_n(&self, kind: &str, n: u64) {
        if n > 0 {
            *self
                .counts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(kind.to_owned())
                .or_default() += n;
        }
    }

    /// The count of one kind.
    pub fn get(&self, kind: &str) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kind)
            .copied()
            .unwrap_or(0)
    }

    /// The first example of one kind.
    pub fn example(&self, kind: &str) -> Option<String> {
        self.examples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kind)
            .cloned()
    }

    /// Every count.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let latencies = Latencies::default();
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms));
        }
        let p = latencies.percentiles();
        assert_eq!(p.count, 100);
        assert_eq!(p.p50_ms, 50.0);
        assert_eq!(p.p99_ms, 99.0);
        assert_eq!(p.max_ms, 100.0);
    }
}
