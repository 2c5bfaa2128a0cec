-- The Qdrant collections test environments created in this database. Per-slot collections
-- outlive their tests (the slot's next test reuses them) and are swept once their run has no live
-- environment left. A sweep deletes only collections listed here, so two databases sharing one
-- Qdrant (CI and staging, two developers) never delete each other's collections.
CREATE TABLE harness_collections (
    collection  text PRIMARY KEY,
    -- The nextest run whose environments use it (its group lock tells whether one is alive).
    run         text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
