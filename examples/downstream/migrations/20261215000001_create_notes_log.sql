-- The downstream service's own table: one row per stored note, written in the transaction that
-- completes the note's job. Its own migration, applied after the queue's.
CREATE TABLE IF NOT EXISTS notes_log (
    id        bigserial PRIMARY KEY,
    project   text NOT NULL,
    note      text NOT NULL,
    job_id    bigint NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS notes_log_project_idx ON notes_log (project);
