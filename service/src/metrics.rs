//! Prometheus metrics through `prometheus-client` (the Prometheus project's Rust client), in the
//! OpenMetrics text format.
//!
//! Each [`Metrics`] has a registry of its own (no process-global recorder), so several services
//! in one process (tests) count apart. Workers count what they do ([`Metrics::record_row`]) and
//! time claims and rows; the API counts and times requests by route and status
//! ([`Metrics::record_request`]); `/metrics` adds the queue depth by status, read from the
//! database at scrape time.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use queue::{JobStatus, QueueStats};

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the histogram buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The `route` label of a request that matched no route: the raw path would let any client
/// create series without bound.
pub const UNMATCHED_ROUTE: &str = "unmatched";

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
    /// A dependency was down: put back without counting the attempt.
    Postponed,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueStatusLabels {
    queue: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The service's counters, gauges and histograms; shared by the API and the worker pool.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    processed: Counter,
    succeeded: Counter,
    failed: Counter,
    retried: Counter,
    dead: Counter,
    lease_lost: Counter,
    postponed: Counter,
    claim_latency: Histogram,
    job_latency: Histogram,
    queue_rows: Family<QueueStatusLabels, Gauge>,
    queue_depth: Family<QueueLabels, Gauge>,
    queue_paused: Family<QueueLabels, Gauge>,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: HistogramFamily<HttpLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        // Counters are registered without `_total`: the OpenMetrics encoder appends it.
        let mut counter = |name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let processed = counter("qv_rows_processed", "Queue rows processed by this process");
        let succeeded = counter("qv_rows_succeeded", "Queue rows completed");
        let failed = counter("qv_rows_failed", "Queue row attempts that failed");
        let retried = counter("qv_rows_retried", "Failed attempts scheduled for a retry");
        let dead = counter("qv_rows_dead", "Rows moved to the dead-letter queue");
        let lease_lost = counter(
            "qv_rows_lease_lost",
            "Rows whose lease was lost before recording",
        );
        let postponed = counter(
            "qv_rows_postponed",
            "Rows put back without counting the attempt because a dependency was down",
        );
        let claim_latency = histogram();
        registry.register(
            "qv_claim_duration_seconds",
            "Time of one claim statement",
            claim_latency.clone(),
        );
        let job_latency = histogram();
        registry.register(
            "qv_job_duration_seconds",
            "Time to process one queue row, from claim to recorded result",
            job_latency.clone(),
        );
        let queue_rows = Family::default();
        registry.register("qv_queue_rows", "Queue rows by status", queue_rows.clone());
        let queue_depth = Family::default();
        registry.register(
            "qv_queue_depth",
            "Rows not finished yet (pending, processing, awaiting retry)",
            queue_depth.clone(),
        );
        let queue_paused = Family::default();
        registry.register(
            "qv_queue_paused",
            "1 when the queue is paused",
            queue_paused.clone(),
        );
        let http_requests = Family::default();
        registry.register(
            "qv_http_requests",
            "HTTP requests answered, by method, route and status",
            http_requests.clone(),
        );
        let http_latency: HistogramFamily<HttpLabels> =
            Family::new_with_constructor(histogram as fn() -> Histogram);
        registry.register(
            "qv_http_request_duration_seconds",
            "Time from a request's arrival to its response, by method, route and status",
            http_latency.clone(),
        );
        Self {
            registry,
            processed,
            succeeded,
            failed,
            retried,
            dead,
            lease_lost,
            postponed,
            claim_latency,
            job_latency,
            queue_rows,
            queue_depth,
            queue_paused,
            http_requests,
            http_latency,
        }
    }
}

impl Metrics {
    /// Counts one processed row.
    pub fn record_row(&self, result: RowResult) {
        self.processed.inc();
        let counter = match result {
            RowResult::Succeeded => &self.succeeded,
            RowResult::Retried => {
                self.failed.inc();
                &self.retried
            }
            RowResult::Dead => {
                self.failed.inc();
                &self.dead
            }
            RowResult::LeaseLost => &self.lease_lost,
            RowResult::Postponed => &self.postponed,
        };
        counter.inc();
    }

    /// Rows processed so far (any result).
    pub fn processed(&self) -> u64 {
        self.processed.get()
    }

    /// Times one claim statement.
    pub fn observe_claim(&self, took: Duration) {
        self.claim_latency.observe(took.as_secs_f64());
    }

    /// Times one row, from claim to recorded result.
    pub fn observe_job(&self, took: Duration) {
        self.job_latency.observe(took.as_secs_f64());
    }

    /// Counts and times one answered HTTP request; `route` is the matched route template
    /// (`/jobs/{id}`), `None` when no route matched.
    pub fn record_request(
        &self,
        method: &Method,
        route: Option<&str>,
        status: StatusCode,
        took: Duration,
    ) {
        let labels = HttpLabels {
            method: method_label(method),
            route: route.unwrap_or(UNMATCHED_ROUTE).to_owned(),
            status: status.as_u16(),
        };
        self.http_latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.http_requests.get_or_create(&labels).inc();
    }

    /// The OpenMetrics text exposition of these metrics plus the queue's depth by status.
    pub fn render(&self, queue_id: &str, stats: &QueueStats) -> String {
        let queue = || QueueLabels {
            queue: queue_id.to_owned(),
        };
        for status in JobStatus::ALL {
            let labels = QueueStatusLabels {
                queue: queue_id.to_owned(),
                status: status.as_str(),
            };
            self.queue_rows
                .get_or_create(&labels)
                .set(stats.count(status));
        }
        self.queue_depth.get_or_create(&queue()).set(stats.depth());
        self.queue_paused
            .get_or_create(&queue())
            .set(i64::from(stats.paused));
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The method as a label: the standard ones by name, anything else as `other` (methods are
/// free-form tokens, and each would be a series of its own).
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", |known| known.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_carry_counters_and_histograms() {
        let metrics = Metrics::default();
        metrics.record_row(RowResult::Succeeded);
        metrics.record_row(RowResult::Dead);
        metrics.observe_claim(Duration::from_millis(3));
        let text = metrics.render("q", &QueueStats::default());
        assert!(text.contains("qv_rows_processed_total 2\n"), "{text}");
        assert!(text.contains("qv_rows_dead_total 1\n"));
        assert!(text.contains("qv_rows_failed_total 1\n"));
        assert!(text.contains("qv_claim_duration_seconds_bucket{le=\"0.0025\"} 0\n"));
        assert!(text.contains("qv_claim_duration_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("qv_claim_duration_seconds_count 1\n"));
        assert!(text.contains("qv_queue_rows{queue=\"q\",status=\"pending\"} 0\n"));
        assert!(text.contains("qv_queue_paused{queue=\"q\"} 0\n"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn requests_are_counted_by_method_route_and_status() {
        let metrics = Metrics::default();
        let took = Duration::from_millis(20);
        metrics.record_request(&Method::GET, Some("/jobs/{id}"), StatusCode::OK, took);
        metrics.record_request(&Method::GET, Some("/jobs/{id}"), StatusCode::OK, took);
        metrics.record_request(
            &Method::GET,
            Some("/jobs/{id}"),
            StatusCode::NOT_FOUND,
            took,
        );
        let odd = Method::from_bytes(b"BREW").expect("a valid method token");
        metrics.record_request(&odd, None, StatusCode::NOT_FOUND, took);
        let text = metrics.render("q", &QueueStats::default());
        assert!(text.contains(
            "qv_http_requests_total{method=\"GET\",route=\"/jobs/{id}\",status=\"200\"} 2\n"
        ));
        assert!(text.contains(
            "qv_http_requests_total{method=\"GET\",route=\"/jobs/{id}\",status=\"404\"} 1\n"
        ));
        assert!(text.contains(
            "qv_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 1\n"
        ));
        assert!(text.contains(
            "qv_http_request_duration_seconds_bucket{le=\"0.025\",method=\"GET\",route=\"/jobs/{id}\",status=\"200\"} 2\n"
        ), "{text}");
    }
}
