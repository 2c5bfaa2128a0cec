//! Claiming ready rows: one short statement, `FOR UPDATE SKIP LOCKED`, committed at once.

use std::sync::LazyLock;

use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{FromRow, Postgres, Row};

use crate::{ClaimedJob, JobId, Lease, Queue, QueueError};

/// The claim, as CTEs `next` and `claimed` over parameters $1 (queue), $2 (limit), $3 (clock),
/// $4 (lease in ms) and $5 (worker).
///
/// Rows are updated by `id = ANY (ARRAY(...))`, not by joining `next`, so the update probes the
/// primary key for the few ids claimed. The statements are not kept prepared
/// (`persistent(false)`): PostgreSQL plans them for the table as it is at each call. A kept
/// statement may switch to a generic plan made when the table was small (a sequential scan) and
/// keep it as the table grows; with a join, the generic plan was a hash join over a scan of the
/// whole table on every claim.
const CLAIM_CTES: &str = "
    next AS (
        -- Locks up to $2 ready rows in claim order, skipping locked ones; a paused queue has
        -- none. A function, so the ready index's order is used whatever the statistics say
        -- (migrations/20261124000005_claim_candidates.sql).
        SELECT id FROM queue_claim_candidates($1, $2, coalesce($3, now())) AS c(id)
    ),
    claimed AS (
        UPDATE queue_jobs j
        SET status = 'processing',
            attempts = j.attempts + 1,
            lease_token = gen_random_uuid(),
            locked_until = coalesce($3, now()) + $4 * interval '1 millisecond',
            locked_by = $5,
            updated_at = coalesce($3, now())
        WHERE j.id = ANY (ARRAY(SELECT id FROM next))
        RETURNING j.id, j.job_ref, j.payload, j.priority, j.attempts, j.max_attempts,
                  j.lease_token, j.locked_until, j.created_at
    )";

impl Queue {
    /// Claims up to `limit` ready rows of this queue, highest priority first, then oldest.
    ///
    /// Each claimed row is `processing` with a fresh lease token and `locked_until = now + lease`;
    /// its attempt count goes up by one. A paused queue hands out nothing. Concurrent claimers
    /// never receive the same row: locked candidates are skipped, not waited for.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id, limit, worker = worker))]
    pub async fn claim(&self, limit: u32, worker: &str) -> Result<Vec<ClaimedJob>, QueueError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        static SQL: LazyLock<String> =
            LazyLock::new(|| format!("WITH {CLAIM_CTES} SELECT * FROM claimed"));
        let rows = self
            .claim_query(&SQL, limit, worker)
            .fetch_all(&self.pool)
            .await?;
        let jobs = rows
            .iter()
            .map(ClaimedJob::from_row)
            .collect::<Result<_, _>>()?;
        Ok(in_claim_order(jobs))
    }

    /// Claims the given rows of this queue if they are ready (claimable now, not paused, not
    /// locked by a concurrent claim), as [`Queue::claim`] would; others are left alone. For
    /// running one particular job, e.g. in a test.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id, ids = ids.len(), worker = worker))]
    pub async fn claim_ids(
        &self,
        ids: &[JobId],
        worker: &str,
    ) -> Result<Vec<ClaimedJob>, QueueError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "WITH next AS (
                 SELECT id FROM queue_jobs
                 WHERE queue_id = $1 AND id = ANY ($5::bigint[])
                   AND status IN ('pending', 'failed') AND run_at <= coalesce($2, now())
                   AND NOT EXISTS (SELECT 1 FROM queue_settings s
                                   WHERE s.queue_id = $1 AND s.paused)
                 FOR UPDATE SKIP LOCKED
             ),
             claimed AS (
                 UPDATE queue_jobs j
                 SET status = 'processing',
                     attempts = j.attempts + 1,
                     lease_token = gen_random_uuid(),
                     locked_until = coalesce($2, now()) + $3 * interval '1 millisecond',
                     locked_by = $4,
                     updated_at = coalesce($2, now())
                 WHERE j.id = ANY (ARRAY(SELECT id FROM next))
                 RETURNING j.id, j.job_ref, j.payload, j.priority, j.attempts, j.max_attempts,
                           j.lease_token, j.locked_until, j.created_at
             )
             SELECT * FROM claimed",
        )
        .persistent(false)
        .bind(self.id.as_str())
        .bind(self.now())
        .bind(self.lease_ms())
        .bind(worker)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let jobs = rows
            .iter()
            .map(ClaimedJob::from_row)
            .collect::<Result<_, _>>()?;
        Ok(in_claim_order(jobs))
    }

    /// Completes `done` and claims up to `limit` more rows in one statement: one round trip and
    /// one commit per batch for a consumer that finishes a batch before taking the next.
    ///
    /// Returns the ids completed (leases still owned, as [`Queue::complete_many`]) and the rows
    /// claimed (as [`Queue::claim`]).
    #[tracing::instrument(skip_all, fields(queue_id = %self.id, done = done.len(), limit, worker = worker))]
    pub async fn complete_and_claim(
        &self,
        done: &[Lease],
        limit: u32,
        worker: &str,
    ) -> Result<(Vec<JobId>, Vec<ClaimedJob>), QueueError> {
        let (ids, tokens): (Vec<_>, Vec<_>) = done.iter().map(|l| (l.id, l.token)).unzip();
        // One row per claimed job, or a single all-NULL row when nothing was claimed, so the
        // completed ids always come back; they are sent on the first row only.
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH done AS (
                 UPDATE queue_jobs j
                 SET status = 'completed', finished_at = coalesce($3, now()),
                     lease_token = NULL, locked_until = NULL, locked_by = NULL,
                     updated_at = coalesce($3, now()),
                     payload = {drop_on_complete}
                 FROM unnest($6::bigint[], $7::uuid[]) AS l(id, token)
                 WHERE j.id = ANY ($6::bigint[]) AND j.id = l.id
                   AND j.queue_id = $1 AND j.lease_token = l.token
                   AND j.status = 'processing'
                 RETURNING j.id
             ),
             {CLAIM_CTES}
             SELECT CASE WHEN row_number() OVER () = 1 THEN d.done_ids END AS done_ids, c.*
             FROM (SELECT coalesce(array_agg(id), '{{}}') AS done_ids FROM done) d
             LEFT JOIN claimed c ON true",
                drop_on_complete = crate::complete::drop_on_complete("$8")
            )
        });
        let rows = self
            .claim_query(&SQL, limit, worker)
            .bind(&ids)
            .bind(&tokens)
            .bind(&self.config.drop_on_complete)
            .fetch_all(&self.pool)
            .await?;
        let mut completed = Vec::new();
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(ids) = row.try_get::<Option<Vec<JobId>>, _>("done_ids")? {
                completed = ids;
            }
            if row.try_get::<Option<JobId>, _>("id")?.is_some() {
                jobs.push(ClaimedJob::from_row(row)?);
            }
        }
        Ok((completed, in_claim_order(jobs)))
    }

    /// `sql` (which uses [`CLAIM_CTES`]) with the claim's parameters $1 to $5 bound, planned
    /// afresh at each call (see [`CLAIM_CTES`]).
    fn claim_query<'q>(
        &'q self,
        sql: &'q str,
        limit: u32,
        worker: &'q str,
    ) -> Query<'q, Postgres, PgArguments> {
        sqlx::query(sql)
            .persistent(false)
            .bind(self.id.as_str())
            .bind(i64::from(limit))
            .bind(self.now())
            .bind(self.lease_ms())
            .bind(worker)
    }
}

/// UPDATE ... RETURNING has no order; rows are handed out in claim order.
fn in_claim_order(mut jobs: Vec<ClaimedJob>) -> Vec<ClaimedJob> {
    jobs.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
    jobs
}
