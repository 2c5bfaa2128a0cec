-- An API job belongs to the queue its rows were put on: deleting a queue's data (a test
-- environment, a reaped namespace) deletes its API jobs, and their per-file results by cascade.
INSERT INTO queue_data_tables (table_name, key_column, key, owner)
VALUES ('index_jobs', 'queue_id', 'queue_id', 'service')
ON CONFLICT DO NOTHING;
