-- Owners of short-lived namespaces (test environments, load-suite executions). An owner holds a
-- session advisory lock on hashtextextended(namespace, 0) for as long as it lives; a row whose lock
-- is free belongs to a dead owner and may be reaped with everything it lists.
--
-- IF NOT EXISTS: databases migrated before the queue became a crate of its own have this table
-- from a migration that no owner carries any more (it also created the load suite's ledger).
CREATE TABLE IF NOT EXISTS queue_namespaces (
    namespace   text PRIMARY KEY CHECK (length(namespace) BETWEEN 1 AND 200),
    -- The queues created in this namespace: what a reaper deletes.
    queue_ids   text[] NOT NULL DEFAULT '{}',
    -- Other resources the owner's kind knows how to remove (e.g. a Qdrant collection).
    resources   jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
