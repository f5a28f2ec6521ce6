-- accessbot schema (SQLite). Keep in step with migrations/postgres/0001_init.sql:
-- the same tables and columns; timestamps are unix milliseconds, lists are JSON text.

-- The catalog.
CREATE TABLE apps (
    slug TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    admins TEXT NOT NULL,
    approvers TEXT NOT NULL,
    permissions TEXT NOT NULL,
    groups TEXT NOT NULL,
    admin_channel TEXT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    app_name TEXT NOT NULL,
    target_user TEXT NOT NULL,
    requester TEXT NOT NULL,
    permission TEXT NOT NULL,
    groups TEXT NOT NULL,
    comment TEXT NOT NULL,
    access_length TEXT NOT NULL,
    status TEXT NOT NULL,
    approvers TEXT NOT NULL,
    app_admins TEXT NOT NULL,
    admin_channel TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    approved_by TEXT,
    approved_at BIGINT,
    decided_by TEXT,
    decided_at BIGINT,
    provisioned_at BIGINT,
    expires_at BIGINT,
    removed_by TEXT,
    removed_at BIGINT,
    denial_feedback TEXT,
    expiry_reminded BOOLEAN NOT NULL DEFAULT FALSE,
    stage_reminded BOOLEAN NOT NULL DEFAULT FALSE,
    version BIGINT NOT NULL,
    idempotency_key TEXT UNIQUE
);
CREATE INDEX requests_by_status ON requests (status, id);
CREATE INDEX requests_by_app ON requests (app, id);
CREATE INDEX requests_by_requester ON requests (requester, id);
CREATE INDEX requests_by_target_user ON requests (target_user, id);
CREATE INDEX requests_provisioned_by_expiry ON requests (expires_at) WHERE status = 'provisioned';

-- The audit trail: append-only.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id BIGINT NOT NULL REFERENCES requests (id),
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT,
    detail TEXT
);
CREATE INDEX events_by_request ON events (request_id, id);

-- Block Kit messages about a request; channel and ts are known once Slack accepted the post.
CREATE TABLE cards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id BIGINT NOT NULL REFERENCES requests (id),
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    channel TEXT,
    ts TEXT,
    rendered_version BIGINT NOT NULL
);
CREATE INDEX cards_by_request ON cards (request_id, id);
CREATE INDEX cards_by_message ON cards (channel, ts);

-- Slack calls the bot owes, written with the change that causes them.
-- A row is pending until done or failed; a claimed row carries a lease.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id BIGINT REFERENCES requests (id),
    method TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, not_before);

-- The discussion relayed between card threads.
CREATE TABLE thread_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id BIGINT NOT NULL REFERENCES requests (id),
    at BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    text TEXT NOT NULL,
    source_channel TEXT NOT NULL,
    source_ts TEXT NOT NULL,
    UNIQUE (source_channel, source_ts)
);
CREATE INDEX thread_messages_by_request ON thread_messages (request_id, id);

-- Keys of things already processed once (retried Slack events, repeated clicks).
CREATE TABLE processed_keys (
    key TEXT PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX processed_keys_by_age ON processed_keys (at);
