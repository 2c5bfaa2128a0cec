-- Tables of other owners (a service's job tables, a load suite's ledger, a team's own tables)
-- whose rows belong to a queue or a namespace. Deleting a namespace or a queue's data deletes
-- their rows too, without the queue naming any table it does not own. Owners register their
-- tables in their own migrations (or at run time) with an INSERT ... ON CONFLICT DO NOTHING.
CREATE TABLE queue_data_tables (
    -- The table, as to_regclass() reads it (schema-qualified if not on the search path).
    table_name  text NOT NULL,
    -- The column that holds the key.
    key_column  text NOT NULL,
    -- Which key: 'queue_id' (the rows of a queue), 'namespace' (the namespace's name), or the name
    -- of a field of the namespace's resources (e.g. 'project').
    key         text NOT NULL DEFAULT 'queue_id',
    -- Who registered it, for people reading the table.
    owner       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, key_column, key)
);

-- Deletes everything kept for the queues `ids` of namespace `ns` (whose resources are
-- `resources`): rows of the registered tables first (they may refer to queue rows), then the
-- queues' rows and settings. A registered table that no longer exists is skipped.
CREATE FUNCTION queue_delete_data(ns text, ids text[], resources jsonb) RETURNS void
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
    DELETE FROM queue_jobs WHERE queue_id = ANY (ids);
    DELETE FROM queue_settings WHERE queue_id = ANY (ids);
END;
$$;
