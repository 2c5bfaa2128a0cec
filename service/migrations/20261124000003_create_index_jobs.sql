-- API indexing jobs: one row per POST /index or POST /index/repository request. Its queue rows
-- carry job_ref = index_jobs.id; a job is as far along as its per-file results say.
CREATE TABLE index_jobs (
    id           uuid PRIMARY KEY,
    -- The queue its rows were put on (a service instance, or a test's own queue).
    queue_id     text NOT NULL,
    project      text NOT NULL CHECK (length(project) BETWEEN 1 AND 128),
    -- 'files' (POST /index) or 'repository' (POST /index/repository).
    kind         text NOT NULL CHECK (kind IN ('files', 'repository')),
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'processing', 'completed', 'partially_failed', 'failed')),
    -- Files to index; for a repository job, known once the worker has listed the checkout.
    files_total  integer NOT NULL DEFAULT 0 CHECK (files_total >= 0),
    -- Repository jobs: where from and at which ref.
    repository   text,
    git_ref      text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);

CREATE INDEX index_jobs_queue_idx ON index_jobs (queue_id, created_at);

-- One row per file of a job, written in the same transaction as the queue row's completion (or
-- its final failure), keyed by path so a retry or a redrive overwrites instead of double-counting.
CREATE TABLE index_job_files (
    job_id          uuid NOT NULL REFERENCES index_jobs (id) ON DELETE CASCADE,
    path            text NOT NULL,
    status          text NOT NULL CHECK (status IN ('done', 'failed', 'skipped')),
    error           text,
    skip_reason     text,
    chunks_stored   integer NOT NULL DEFAULT 0 CHECK (chunks_stored >= 0),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, path)
);

-- A job's progress, computed live from its file results and its queue rows, so a row that died
-- without a result (lease expired with attempts used up) and a redriven row are counted right.
-- GET /jobs/{id} reads it; workers copy its status into index_jobs when they record results.
CREATE VIEW index_job_progress AS
SELECT j.id,
       f.done,
       f.skipped,
       f.failed + q.dead_unrecorded AS failed,
       f.chunks,
       q.open,
       CASE
           WHEN q.open > 0 THEN
               CASE WHEN q.started > 0 OR f.done + f.skipped + f.failed > 0
                    THEN 'processing' ELSE 'pending' END
           WHEN f.failed + q.dead_unrecorded = 0 THEN 'completed'
           WHEN f.done + f.skipped = 0 THEN 'failed'
           ELSE 'partially_failed'
       END AS status
FROM index_jobs j
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE r.status = 'done')    AS done,
           count(*) FILTER (WHERE r.status = 'skipped') AS skipped,
           count(*) FILTER (WHERE r.status = 'failed')  AS failed,
           coalesce(sum(r.chunks_stored), 0)::bigint    AS chunks
    FROM index_job_files r
    WHERE r.job_id = j.id
) f
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE qj.status IN ('pending', 'processing', 'failed')) AS open,
           count(*) FILTER (WHERE qj.status = 'processing' OR qj.attempts > 0)      AS started,
           count(*) FILTER (
               WHERE qj.status = 'dead'
                 AND NOT EXISTS (
                     SELECT 1 FROM index_job_files r
                     WHERE r.job_id = j.id AND r.path = qj.payload ->> 'path'
                 )
           ) AS dead_unrecorded
    FROM queue_jobs qj
    WHERE qj.job_ref = j.id AND qj.queue_id = j.queue_id
) q;
