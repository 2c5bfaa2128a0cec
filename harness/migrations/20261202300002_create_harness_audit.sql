-- What a test's connections (application_name `harness:<namespace>`) did to rows that are not
-- theirs: claims, completions, deletes and writes on another queue's rows, and on rows of other
-- owners' registered tables (queue_data_tables) keyed by another queue or project. A test's
-- isolation check reads it; releasing or reaping the namespace deletes its rows here.
CREATE TABLE harness_foreign_writes (
    namespace   text NOT NULL,
    table_name  text NOT NULL,
    operation   text NOT NULL,
    -- The key of the row touched (a queue id, a project...).
    key         text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX harness_foreign_writes_namespace_idx ON harness_foreign_writes (namespace);

INSERT INTO queue_data_tables (table_name, key_column, key, owner)
VALUES ('harness_foreign_writes', 'namespace', 'namespace', 'harness')
ON CONFLICT DO NOTHING;

-- Row trigger of watched tables (arguments: key column, key kind as in queue_data_tables). It
-- only runs for harness connections (the trigger's WHEN clause), so other clients pay one
-- comparison per row.
CREATE FUNCTION harness_audit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ns text := substr(current_setting('application_name', true), length('harness:') + 1);
    row_key text := to_jsonb(CASE WHEN TG_OP = 'INSERT' THEN NEW ELSE OLD END) ->> TG_ARGV[0];
    own text[];
BEGIN
    IF row_key IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT CASE TG_ARGV[1]
               WHEN 'queue_id' THEN n.queue_ids
               WHEN 'namespace' THEN ARRAY[n.namespace]
               ELSE ARRAY[n.resources ->> TG_ARGV[1]]
           END
    INTO own
    FROM queue_namespaces n WHERE n.namespace = ns;
    IF NOT (row_key = ANY (coalesce(own, '{}'))) THEN
        INSERT INTO harness_foreign_writes (namespace, table_name, operation, key)
        VALUES (ns, TG_TABLE_NAME, lower(TG_OP), row_key);
    END IF;
    RETURN NULL;
END;
$$;

-- Puts the audit trigger on queue_jobs and on every registered table that lacks it. Cheap when
-- nothing is missing; one process at a time otherwise (creating a trigger locks its table).
CREATE FUNCTION harness_watch_tables() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    created integer := 0;
BEGIN
    FOR t IN
        SELECT c.oid::regclass AS rel, w.key_column, w.key
        FROM (SELECT 'queue_jobs' AS table_name, 'queue_id' AS key_column, 'queue_id' AS key
              UNION ALL
              SELECT table_name, key_column, key FROM queue_data_tables
              WHERE table_name <> 'harness_foreign_writes') w
        JOIN pg_class c ON c.oid = to_regclass(w.table_name)
        WHERE NOT EXISTS (
            SELECT 1 FROM pg_trigger tg
            WHERE tg.tgrelid = c.oid
              AND tg.tgname = left('harness_audit_' || w.key_column || '_' || w.key, 63))
    LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('harness-watch', 0));
        IF NOT EXISTS (SELECT 1 FROM pg_trigger tg
                       WHERE tg.tgrelid = t.rel
                         AND tg.tgname = left('harness_audit_' || t.key_column || '_' || t.key, 63)) THEN
            EXECUTE format(
                'CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW
                 WHEN (current_setting(''application_name'', true) LIKE ''harness:%%'')
                 EXECUTE FUNCTION harness_audit(%L, %L)',
                left('harness_audit_' || t.key_column || '_' || t.key, 63), t.rel,
                t.key_column, t.key);
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END;
$$;
