-- Queue core: one table of jobs shared by every queue, partitioned logically by queue_id.
CREATE TYPE queue_job_status AS ENUM ('pending', 'processing', 'completed', 'failed', 'dead');

CREATE TABLE queue_jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_id      text NOT NULL CHECK (length(queue_id) BETWEEN 1 AND 200),
    -- What the row belongs to (e.g. an API job id); many rows may share one.
    job_ref       uuid,
    payload       jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- 'failed' = an attempt failed and the row waits for its retry at run_at.
    status        queue_job_status NOT NULL DEFAULT 'pending',
    priority      smallint NOT NULL DEFAULT 0,
    run_at        timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts  integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    locked_until  timestamptz,
    lease_token   uuid,
    locked_by     text,
    last_error    text,
    -- Every attempt's error: [{"attempt": n, "kind": "...", "error": "...", "at": "..."}].
    errors        jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    CONSTRAINT queue_jobs_lease_consistent CHECK (
        (status = 'processing') = (lease_token IS NOT NULL AND locked_until IS NOT NULL)
    )
);

-- The claim path: only claimable rows are indexed, so finished history never slows it down.
CREATE INDEX queue_jobs_ready_idx ON queue_jobs (queue_id, priority DESC, id)
    WHERE status IN ('pending', 'failed');

-- Rescue of expired leases looks only at rows in flight.
CREATE INDEX queue_jobs_leased_idx ON queue_jobs (queue_id, locked_until)
    WHERE status = 'processing';

-- Redrive and DLQ listings.
CREATE INDEX queue_jobs_dead_idx ON queue_jobs (queue_id, id) WHERE status = 'dead';

CREATE INDEX queue_jobs_job_ref_idx ON queue_jobs (job_ref) WHERE job_ref IS NOT NULL;

-- Stats, cleanup and namespace reaping by queue.
CREATE INDEX queue_jobs_queue_status_idx ON queue_jobs (queue_id, status);

-- Durable per-queue switches (pause survives restarts and is seen by every process).
CREATE TABLE queue_settings (
    queue_id    text PRIMARY KEY,
    paused      boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Wake idle claimers of a queue when rows arrive; one notification per statement and queue.
CREATE FUNCTION queue_jobs_notify_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('queue_jobs', q.queue_id)
    FROM (SELECT DISTINCT queue_id FROM inserted) AS q;
    RETURN NULL;
END;
$$;

CREATE TRIGGER queue_jobs_notify_insert
    AFTER INSERT ON queue_jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION queue_jobs_notify_insert();
