-- Owners of short-lived namespaces (test environments, load-suite executions). An owner holds a
-- session advisory lock on hashtextextended(namespace, 0) for as long as it lives; a row whose lock
-- is free belongs to a dead owner and may be reaped with everything it lists.
CREATE TABLE queue_namespaces (
    namespace   text PRIMARY KEY CHECK (length(namespace) BETWEEN 1 AND 200),
    -- The queues created in this namespace: what a reaper deletes.
    queue_ids   text[] NOT NULL DEFAULT '{}',
    -- Other resources the owner's kind knows how to remove (e.g. a Qdrant collection).
    resources   jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The load suite's ledger: one row per job effect; the primary key is what detects a duplicate.
CREATE TABLE load_ledger (
    namespace   text NOT NULL,
    job_id      bigint NOT NULL,
    -- 'exec' (the job ran) or 'done' (its completion committed), or a step name.
    entry       text NOT NULL,
    worker      text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, job_id, entry)
);
