-- Which request's content is stored for each file of a collection, so that two re-indexes of one
-- file that overlap end with the newest one's chunks only. A worker stores a file under a
-- per-file advisory lock, and only if no newer request has been stored.
CREATE TABLE index_file_versions (
    -- sha256 of collection, project and path (NUL-separated): paths may be longer than a b-tree
    -- key can be.
    file_key    bytea PRIMARY KEY,
    -- The id of the queue row whose content is stored: ids grow with enqueue order, so a larger
    -- one is a newer request.
    version     bigint NOT NULL,
    -- The queue of that row (deleting a queue's data deletes these rows too).
    queue_id    text NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX index_file_versions_queue_idx ON index_file_versions (queue_id);

INSERT INTO queue_data_tables (table_name, key_column, key, owner)
VALUES ('index_file_versions', 'queue_id', 'queue_id', 'service')
ON CONFLICT DO NOTHING;
