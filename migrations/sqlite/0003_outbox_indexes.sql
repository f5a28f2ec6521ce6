-- Claiming takes the oldest due deliveries: walk the waiting ones in id order, instead of
-- sorting every due one (a backlog of thousands made each claim scan and sort them all).
DROP INDEX outbox_due;
CREATE INDEX outbox_pending ON outbox (id) WHERE status = 'pending';
CREATE INDEX outbox_failed ON outbox (id) WHERE status = 'failed';
CREATE INDEX outbox_done ON outbox (updated_at) WHERE status = 'done';
-- A Home republish is queued only if none is waiting: found by payload, not by a scan.
CREATE INDEX outbox_waiting_publish ON outbox (payload)
    WHERE status = 'pending' AND method = 'views.publish';
