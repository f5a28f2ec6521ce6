-- The users directory (issue 18): what Slack's `users.info` said about a person, kept so
-- that a card about to be posted can ask whether its recipient is deactivated without a
-- Slack call each time. `refreshed_at` (unix ms) is when Slack last answered for them;
-- a row older than ACCESSBOT_USER_REFRESH is asked again. No token or secret is kept here.
CREATE TABLE slack_users (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    real_name TEXT NOT NULL,
    deleted BOOLEAN NOT NULL,
    tz TEXT,
    email TEXT,
    refreshed_at BIGINT NOT NULL
);

-- Whether a card's post failed for good is read from its failed delivery, by payload.
CREATE INDEX outbox_failed_by_payload ON outbox (payload) WHERE status = 'failed';
