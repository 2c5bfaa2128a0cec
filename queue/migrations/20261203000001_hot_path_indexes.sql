-- Fewer index entries per job on the hot path, and an index the pruner reads.
--
-- No claim or completion is a HOT update (each changes `status`, which index predicates name), so
-- each inserts a new entry into every full index and into every partial index whose predicate
-- the new row meets. queue_jobs_queue_status_idx was the one full index besides the primary key:
-- one entry more per claim. Measured with the burn-down benchmark (scripts/bench-vs-graphile.sh):
-- at 4 workers x 256 it cost up to a fifth of the throughput; at 2 workers x 1024, the best
-- configuration, the two index sets were within noise (medians of 3: 56.1k and 56.2k jobs/s).
--
-- Every status now has a partial index led by queue_id: ready (pending, failed), leased
-- (processing), dead, and completed (by finished_at, which the pruner reads by age). A query over
-- a queue's rows in any status names the statuses, so each part uses its index (queue_job_ids).
DROP INDEX IF EXISTS queue_jobs_queue_status_idx;

CREATE INDEX IF NOT EXISTS queue_jobs_completed_idx ON queue_jobs (queue_id, finished_at)
    WHERE status = 'completed';

-- The ids of the given queues' rows, whatever their status, each status read from its own
-- partial index.
CREATE OR REPLACE FUNCTION queue_job_ids(queue_ids text[])
RETURNS SETOF bigint
LANGUAGE sql STABLE
AS $$
    SELECT id FROM queue_jobs WHERE queue_id = ANY (queue_ids) AND status IN ('pending', 'failed')
    UNION ALL
    SELECT id FROM queue_jobs WHERE queue_id = ANY (queue_ids) AND status = 'processing'
    UNION ALL
    SELECT id FROM queue_jobs WHERE queue_id = ANY (queue_ids) AND status = 'completed'
    UNION ALL
    SELECT id FROM queue_jobs WHERE queue_id = ANY (queue_ids) AND status = 'dead'
$$;

-- queue_delete_data (20261202000002), its queue rows now found through queue_job_ids.
CREATE OR REPLACE FUNCTION queue_delete_data(ns text, ids text[], resources jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    keys text[];
BEGIN
    FOR t IN
        SELECT d.key, d.key_column, c.oid::regclass AS rel,
               format_type(a.atttypid, a.atttypmod) AS key_type
        FROM queue_data_tables d
        JOIN pg_class c ON c.oid = to_regclass(d.table_name)
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = d.key_column AND NOT a.attisdropped
        ORDER BY d.created_at, d.table_name
    LOOP
        keys := CASE t.key
                    WHEN 'queue_id' THEN ids
                    WHEN 'namespace' THEN ARRAY(SELECT ns WHERE ns IS NOT NULL)
                    ELSE ARRAY(SELECT resources ->> t.key
                               WHERE resources ? t.key AND resources ->> t.key IS NOT NULL)
                END;
        CONTINUE WHEN keys IS NULL OR cardinality(keys) = 0;
        -- The keys are cast to the column's type, so its index serves the delete.
        EXECUTE format('DELETE FROM %s WHERE %I = ANY ($1::%s[])', t.rel, t.key_column, t.key_type)
            USING keys;
    END LOOP;
    DELETE FROM queue_jobs WHERE id IN (SELECT id FROM queue_job_ids(ids) AS q(id));
    DELETE FROM queue_settings WHERE queue_id = ANY (ids);
END;
$$;
