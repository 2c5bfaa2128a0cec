-- Which client wrote each row (its application_name): lets the test harness catch a test that
-- enqueued into another test's queue, without a trigger on the hot path.
ALTER TABLE queue_jobs
    ADD COLUMN created_by text DEFAULT current_setting('application_name', true);
