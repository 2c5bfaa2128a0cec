//! The service's workers: [`IndexHandler`], the queue's [`Handler`] for the reference service's
//! rows, run by the queue crate's one worker runtime (batched claims, heartbeats, panic guard,
//! graceful shutdown, rescue of expired leases).
//!
//! A file row indexes the file sent in the request; a repository row checks out a repository
//! and indexes its files ([`repository`]). Either way the file results are recorded in the
//! transaction that completes the row (or moves it to the dead-letter queue), so a retry or a
//! redrive never counts a file twice.

mod checkout;
mod file;
mod git;
mod payload;
mod record;
pub mod repository;
pub mod source;
pub mod versions;
mod work;

use std::sync::Arc;

use queue::worker::{Handler, JobOutcome, JobReport, Ran, RecordError};
use queue::{ClaimedJob, JobFailure, Queue};
use tracing::Instrument;

pub use checkout::CheckoutError;
pub use file::IndexConfig;
pub use payload::{FilePayload, RepositoryPayload, Task};
pub use source::RepositoryPolicy;
pub use versions::Versions;
pub use work::{failure_kind, Work};

use crate::index::Indexer;
use crate::metrics::{Metrics, RowResult};

/// How long one dependency check of [`IndexHandler::probe`] may take.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The project counted to check that Qdrant serves the collection: a project name like any
/// other, so the count is the tenant-filtered one every read is.
const PROBE_PROJECT: &str = "worker-probe";

/// The reference service's job code: index a file or a repository into the indexer's collection.
#[derive(Clone, Debug)]
pub struct IndexHandler {
    indexer: Arc<Indexer>,
    versions: Versions,
    config: IndexConfig,
    metrics: Arc<Metrics>,
}

impl IndexHandler {
    /// A handler indexing `queue`'s rows with `indexer` (file versions are kept in `queue`'s
    /// database).
    pub fn new(indexer: Arc<Indexer>, queue: &Queue, config: IndexConfig) -> Self {
        Self {
            versions: Versions::new(queue, indexer.store().collection()),
            indexer,
            config,
            metrics: Arc::default(),
        }
    }

    /// The same handler counting into `metrics` (shared with the API's `/metrics`).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The handler's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    async fn work(&self, job: ClaimedJob) -> Work {
        let span = tracing::info_span!(
            "row",
            job_ref = job.job_ref.map(|id| id.to_string()).unwrap_or_default(),
            path = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        // Row ids grow with enqueue order: a file's newest request has the largest.
        let version = job.id;
        let (indexer, versions, config) = (&*self.indexer, &self.versions, &self.config);
        let work = async {
            let task = match serde_json::from_value::<Task>(job.payload) {
                Ok(task) => task,
                Err(error) => {
                    return Work::failed(JobFailure::permanent(format!(
                        "unreadable queue payload: {error}"
                    )))
                }
            };
            let span = tracing::Span::current();
            if let Some(request_id) = task.request_id() {
                span.record("request_id", request_id);
            }
            let work = match &task {
                Task::File(file) => {
                    span.record("path", file.path.as_str());
                    file::index_file(indexer, versions, config, file, version).await
                }
                Task::Repository(repository) => {
                    // Stored redacted by the API; redacted again for rows written before that.
                    let location = crate::redact::redact_url(&repository.repository);
                    span.record("path", location.as_str());
                    repository::index_repository(indexer, versions, config, repository, version)
                        .await
                }
            };
            tracing::info!(
                files = work.results.len(),
                failed = work.failure.as_ref().map(|failure| failure.kind.as_str()),
                "row worked"
            );
            work
        };
        work.instrument(span).await
    }
}

impl Handler for IndexHandler {
    type Output = Work;
    const RECORDS: bool = true;

    async fn run(&self, job: ClaimedJob) -> Ran<Work> {
        let mut work = self.work(job).await;
        Ran {
            result: work.failure.take().map_or(Ok(()), Err),
            output: work,
        }
    }

    async fn record(
        &self,
        tx: &mut sqlx::PgConnection,
        report: &JobReport,
        output: Option<&Work>,
    ) -> Result<(), RecordError> {
        record::record(tx, report, output).await?;
        Ok(())
    }

    /// Qdrant answers for the collection and the model embeds a text (each within
    /// [`PROBE_TIMEOUT`]).
    async fn probe(&self) -> Result<(), String> {
        let store = self.indexer.store();
        match tokio::time::timeout(PROBE_TIMEOUT, store.count(PROBE_PROJECT)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(format!("qdrant: {error}")),
            Err(_) => return Err(format!("qdrant: no answer within {PROBE_TIMEOUT:?}")),
        }
        let embedder = self.indexer.embedder();
        match tokio::time::timeout(PROBE_TIMEOUT, embedder.embed_query("probe")).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("model: {error}")),
            Err(_) => Err(format!("model: no answer within {PROBE_TIMEOUT:?}")),
        }
    }

    fn claimed(&self, _jobs: usize, took: std::time::Duration) {
        self.metrics.observe_claim(took);
    }

    fn finished(&self, report: &JobReport) {
        self.metrics.observe_job(report.took);
        self.metrics.record_row(match report.outcome {
            JobOutcome::Completed => RowResult::Succeeded,
            JobOutcome::Retrying { .. } => RowResult::Retried,
            JobOutcome::Postponed { .. } => RowResult::Postponed,
            JobOutcome::Dead => RowResult::Dead,
            JobOutcome::LeaseLost => RowResult::LeaseLost,
        });
    }
}
