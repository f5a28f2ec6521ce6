-- The expiry sweep and the expiry reminders ask for provisioned grants ending by a time.
-- With the end date alone in the index, SQLite preferred requests_by_status (status = ?)
-- and walked every provisioned grant; with the status first it seeks straight to the due
-- ones. Still partial: only provisioned grants are in it, as before.
DROP INDEX requests_provisioned_by_expiry;
CREATE INDEX requests_provisioned_by_status_expiry ON requests (status, expires_at)
    WHERE status = 'provisioned';

-- Requests by status for /metrics without counting the requests: counts folded now and
-- then (at each prune), plus the changes recorded since. Changes are appended, never
-- updated in place, so that no row is written by every decision (see issue 15: a counter
-- row would serialise PostgreSQL replicas; the two databases keep one design).
CREATE TABLE request_status_counts (
    status TEXT PRIMARY KEY NOT NULL,
    requests BIGINT NOT NULL
);
CREATE TABLE request_status_changes (
    status TEXT NOT NULL,
    delta BIGINT NOT NULL
);
INSERT INTO request_status_counts (status, requests)
    SELECT status, COUNT(*) FROM requests GROUP BY status;
CREATE TRIGGER requests_count_filed AFTER INSERT ON requests
BEGIN
    INSERT INTO request_status_changes (status, delta) VALUES (NEW.status, 1);
END;
CREATE TRIGGER requests_count_status_changed AFTER UPDATE OF status ON requests
    WHEN OLD.status <> NEW.status
BEGIN
    INSERT INTO request_status_changes (status, delta) VALUES (OLD.status, -1), (NEW.status, 1);
END;
