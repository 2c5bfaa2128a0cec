//! Prometheus metrics, kept in atomics and rendered as the text exposition format by hand.
//!
//! Workers count what they do ([`Metrics::record_row`]) and time claims and rows; `/metrics`
//! adds the queue depth by status, read from the database at scrape time.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use queue::{JobStatus, QueueStats};

/// Upper bounds of the histogram buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// What became of one processed queue row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowResult {
    /// Completed (indexed or skipped).
    Succeeded,
    /// Failed permanently, or its last attempt failed: now dead.
    Dead,
    /// Failed transiently; retried later.
    Retried,
    /// The lease was lost before the result could be recorded.
    LeaseLost,
}

/// A histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// The service's counters and histograms; shared by the API and the worker pool.
#[derive(Debug, Default)]
pub struct Metrics {
    processed: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dead: AtomicU64,
    lease_lost: AtomicU64,
    /// Time of one claim statement.
    pub claim_latency: Histogram,
    /// Time to process one queue row (index and record).
    pub job_latency: Histogram,
}

impl Metrics {
    /// Counts one processed row.
    pub fn record_row(&self, result: RowResult) {
        self.processed.fetch_add(1, Ordering::Relaxed);
        let counter = match result {
            RowResult::Succeeded => &self.succeeded,
            RowResult::Retried => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                &self.retried
            }
            RowResult::Dead => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                &self.dead
            }
            RowResult::LeaseLost => &self.lease_lost,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Rows processed so far (any result).
    pub fn processed(&self) -> u64 {
        self.processed.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of these metrics plus the queue's depth by status.
    pub fn render(&self, queue_id: &str, stats: &QueueStats) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP qv_queue_rows Queue rows by status.\n# TYPE qv_queue_rows gauge"
        );
        for status in JobStatus::ALL {
            let _ = writeln!(
                out,
                "qv_queue_rows{{queue=\"{queue_id}\",status=\"{}\"}} {}",
                status.as_str(),
                stats.count(status)
            );
        }
        let _ = writeln!(
            out,
            "# HELP qv_queue_depth Rows not finished yet (pending, processing, awaiting retry).\n# TYPE qv_queue_depth gauge\nqv_queue_depth{{queue=\"{queue_id}\"}} {}",
            stats.depth()
        );
        let _ = writeln!(
            out,
            "# HELP qv_queue_paused 1 when the queue is paused.\n# TYPE qv_queue_paused gauge\nqv_queue_paused{{queue=\"{queue_id}\"}} {}",
            u8::from(stats.paused)
        );
        let counters = [
            (
                "qv_rows_processed_total",
                "Queue rows processed by this process.",
                &self.processed,
            ),
            (
                "qv_rows_succeeded_total",
                "Queue rows completed.",
                &self.succeeded,
            ),
            (
                "qv_rows_failed_total",
                "Queue row attempts that failed.",
                &self.failed,
            ),
            (
                "qv_rows_retried_total",
                "Failed attempts scheduled for a retry.",
                &self.retried,
            ),
            (
                "qv_rows_dead_total",
                "Rows moved to the dead-letter queue.",
                &self.dead,
            ),
            (
                "qv_rows_lease_lost_total",
                "Rows whose lease was lost before recording.",
                &self.lease_lost,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        self.claim_latency.render(
            &mut out,
            "qv_claim_duration_seconds",
            "Time of one claim statement.",
        );
        self.job_latency.render(
            &mut out,
            "qv_job_duration_seconds",
            "Time to process one queue row, from claim to recorded result.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_carry_counters_and_histograms() {
        let metrics = Metrics::default();
        metrics.record_row(RowResult::Succeeded);
        metrics.record_row(RowResult::Dead);
        metrics.claim_latency.observe(Duration::from_millis(3));
        let text = metrics.render("q", &QueueStats::default());
        assert!(text.contains("qv_rows_processed_total 2"));
        assert!(text.contains("qv_rows_dead_total 1"));
        assert!(text.contains("qv_claim_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("qv_claim_duration_seconds_count 1"));
        assert!(text.contains("qv_queue_rows{queue=\"q\",status=\"pending\"} 0"));
    }
}
