-- Users who opened the Home tab: their Home is republished when a request they are part of
-- changes.
CREATE TABLE home_viewers (
    user_id TEXT PRIMARY KEY NOT NULL,
    opened_at BIGINT NOT NULL
);
