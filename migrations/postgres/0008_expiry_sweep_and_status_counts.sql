-- The expiry sweep and the expiry reminders ask for provisioned grants ending by a time:
-- an index with the status first seeks straight to the due ones (kept in step with
-- SQLite's, where the end date alone was not chosen). Only provisioned grants are in it.
DROP INDEX requests_provisioned_by_expiry;
CREATE INDEX requests_provisioned_by_status_expiry ON requests (status, expires_at)
    WHERE status = 'provisioned';

-- Requests by status for /metrics without counting the requests: counts folded now and
-- then (at each prune, by one replica at a time), plus the changes recorded since. A
-- statement that files or changes requests appends one row per status it changed; no row
-- is updated by every decision, which would serialise replicas on it (issue 15).
CREATE TABLE request_status_counts (
    status TEXT PRIMARY KEY,
    requests BIGINT NOT NULL
);
CREATE TABLE request_status_changes (
    status TEXT NOT NULL,
    delta BIGINT NOT NULL
);
INSERT INTO request_status_counts (status, requests)
    SELECT status, COUNT(*) FROM requests GROUP BY status;

-- Per statement, not per row: a batch of decisions (one UPDATE) appends a row or two.
CREATE FUNCTION accessbot_count_statuses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO request_status_changes (status, delta)
        SELECT status, COUNT(*) FROM new_rows GROUP BY status;
    ELSE
        INSERT INTO request_status_changes (status, delta)
        SELECT status, SUM(delta) FROM (
            SELECT status, 1 AS delta FROM new_rows
            UNION ALL SELECT status, -1 FROM old_rows
        ) AS changed GROUP BY status HAVING SUM(delta) <> 0;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER requests_count_filed AFTER INSERT ON requests
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION accessbot_count_statuses();
CREATE TRIGGER requests_count_status_changed AFTER UPDATE ON requests
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION accessbot_count_statuses();
