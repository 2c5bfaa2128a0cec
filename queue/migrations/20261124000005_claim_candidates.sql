-- The claim's candidate rows, always read in order from queue_jobs_ready_idx.
--
-- The planner may instead scan queue_jobs_queue_status_idx for the queue's ready rows and sort them
-- all: that looks as cheap when its statistics say a queue is nearly empty (a new queue, or stale
-- statistics on a server without autovacuum), but then every claim reads the whole backlog. Seen
-- here: claims of 50 from a 20,000-row queue fell from ~40k to ~15k jobs/s. With sorting disabled
-- for this one query, only the index's own order can serve the ORDER BY, so a claim reads about
-- as many index entries as it locks, whatever the statistics say.
CREATE FUNCTION queue_claim_candidates(queue text, max_rows bigint, at timestamptz)
RETURNS SETOF bigint
LANGUAGE sql VOLATILE
SET enable_sort = off
AS $$
    SELECT id FROM queue_jobs
    WHERE queue_id = queue
      AND status IN ('pending', 'failed')
      AND run_at <= at
      AND NOT EXISTS (SELECT 1 FROM queue_settings s WHERE s.queue_id = queue AND s.paused)
    ORDER BY priority DESC, id
    LIMIT max_rows
    FOR UPDATE SKIP LOCKED
$$;
