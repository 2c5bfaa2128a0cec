-- A table of a team's own, for the harness's tests: rows belong to a test's project.
CREATE TABLE IF NOT EXISTS harness_test_orders (
    id       bigserial PRIMARY KEY,
    project  text NOT NULL,
    item     text NOT NULL
);
