//! A scenario's figures over time: throughput and claim / end-to-end latency percentiles per
//! bucket, for the plots of the HTML report (and the JSON).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::{Latencies, Percentiles, Throughput};

/// Most buckets a timeline is cut into: enough to see a trend, few enough to read.
const MAX_BUCKETS: f64 = 60.0;

/// Bucket widths to choose from, in seconds (round numbers on the axis).
const WIDTHS: [f64; 13] = [
    0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0,
];

/// One scenario's figures per bucket of time since its first enqueue.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    /// Width of every bucket but the last (which ends with the scenario).
    pub bucket_s: f64,
    /// The buckets, in order.
    pub points: Vec<Point>,
}

/// One bucket.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Start of the bucket, seconds since the scenario's first enqueue.
    pub t_s: f64,
    /// Jobs finished (completed or dead) per second in the bucket.
    pub jobs_per_s: f64,
    /// Claim statements that returned in the bucket; `None` when there were none.
    pub claim: Option<Percentiles>,
    /// Runs that finished in the bucket (enqueue → all their jobs finished); `None` when none did.
    pub end_to_end: Option<Percentiles>,
}

impl Timeline {
    /// Cuts `[start, start + elapsed)` into buckets of a round width and sums each.
    pub fn build(
        start: Instant,
        elapsed: Duration,
        finished: &Throughput,
        claim: &Latencies,
        end_to_end: &Latencies,
    ) -> Self {
        let total = elapsed.as_secs_f64();
        let width = bucket_width(total);
        let buckets = ((total / width).ceil() as usize).max(1);
        let (claim, end_to_end) = (
            by_bucket(start, width, buckets, claim),
            by_bucket(start, width, buckets, end_to_end),
        );
        let points = claim
            .into_iter()
            .zip(end_to_end)
            .enumerate()
            .map(|(i, (mut claim, mut end_to_end))| {
                let t = i as f64 * width;
                // The last bucket is cut short by the end of the scenario.
                let span = (total - t).clamp(Throughput::SLOT.as_secs_f64(), width);
                let from = start + Duration::from_secs_f64(t);
                let jobs = finished.between(from, from + Duration::from_secs_f64(width));
                Point {
                    t_s: t,
                    jobs_per_s: jobs as f64 / span,
                    claim: (!claim.is_empty()).then(|| Percentiles::of(&mut claim)),
                    end_to_end: (!end_to_end.is_empty()).then(|| Percentiles::of(&mut end_to_end)),
                }
            })
            .collect();
        Self {
            bucket_s: width,
            points,
        }
    }
}

/// The smallest round width that keeps `total` seconds within [`MAX_BUCKETS`] buckets.
fn bucket_width(total: f64) -> f64 {
    WIDTHS
        .iter()
        .copied()
        .find(|w| total / w <= MAX_BUCKETS)
        .unwrap_or_else(|| (total / MAX_BUCKETS).ceil())
}

/// The samples of each bucket; samples outside the range go to the nearest end bucket.
fn by_bucket(
    start: Instant,
    width: f64,
    buckets: usize,
    latencies: &Latencies,
) -> Vec<Vec<Duration>> {
    let mut out = vec![Vec::new(); buckets];
    for (at, d) in latencies.samples() {
        let offset = at.saturating_duration_since(start).as_secs_f64();
        out[((offset / width) as usize).min(buckets - 1)].push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_are_round_and_keep_the_bucket_count_bounded() {
        assert_eq!(bucket_width(2.0), 0.1);
        assert_eq!(bucket_width(7.0), 0.2);
        assert_eq!(bucket_width(300.0), 5.0);
        assert_eq!(bucket_width(36_000.0), 600.0);
    }

    #[test]
    fn samples_and_finished_jobs_land_in_their_bucket() {
        let start = Instant::now();
        let (finished, claim, e2e) = (
            Throughput::default(),
            Latencies::default(),
            Latencies::default(),
        );
        finished.record(5);
        claim.record(Duration::from_millis(3));
        let timeline = Timeline::build(start, Duration::from_secs(2), &finished, &claim, &e2e);
        assert_eq!(timeline.bucket_s, 0.1);
        assert_eq!(timeline.points.len(), 20);
        assert_eq!(timeline.points[0].jobs_per_s, 50.0);
        assert_eq!(timeline.points[0].claim.as_ref().map(|p| p.count), Some(1));
        assert!(timeline.points[0].end_to_end.is_none());
        assert!(timeline.points[1..].iter().all(|p| p.jobs_per_s == 0.0));
    }
}
