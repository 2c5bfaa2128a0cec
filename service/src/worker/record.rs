//! Recording a row's file results in the transaction that finishes it: results are written only
//! when the row completes or dies under its lease, so nothing is counted twice.

use queue::worker::{JobOutcome, JobReport};
use sqlx::PgConnection;

use super::work::Work;
use crate::jobs::{self, JobStoreError};

/// Records `work` for the API job of the row `report` describes (`work` is `None` when the
/// attempt panicked or timed out).
pub(crate) async fn record(
    tx: &mut PgConnection,
    report: &JobReport,
    work: Option<&Work>,
) -> Result<(), JobStoreError> {
    let Some(job_id) = report.job_ref else {
        return Ok(());
    };
    jobs::lock_job(&mut *tx, job_id).await?;
    if matches!(report.outcome, JobOutcome::Completed | JobOutcome::Dead) {
        if let Some(work) = work {
            if let Some(total) = work.files_total {
                jobs::set_files_total(&mut *tx, job_id, total).await?;
            }
            jobs::record_results(&mut *tx, job_id, &work.results).await?;
        }
    }
    jobs::refresh_status(&mut *tx, job_id).await?;
    Ok(())
}
