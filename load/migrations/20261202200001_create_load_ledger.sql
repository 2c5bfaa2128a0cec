-- The load suite's ledger: one row per job effect; the primary key is what detects a duplicate.
-- IF NOT EXISTS: databases migrated before the load suite owned its migrations have it already.
CREATE TABLE IF NOT EXISTS load_ledger (
    namespace   text NOT NULL,
    job_id      bigint NOT NULL,
    -- 'exec' (the job ran) or 'done' (its completion committed), or a step name.
    entry       text NOT NULL,
    worker      text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, job_id, entry)
);

-- Ledger rows are kept per scenario queue; reaping an execution's namespace removes them.
INSERT INTO queue_data_tables (table_name, key_column, key, owner)
VALUES ('load_ledger', 'namespace', 'queue_id', 'load')
ON CONFLICT DO NOTHING;
