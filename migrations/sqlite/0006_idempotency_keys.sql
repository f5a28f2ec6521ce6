-- Idempotency keys bound to the body they came with, and forgotten after a day: the same key
-- with another body is refused, and an old key may file anew. Keys of earlier releases stay
-- in requests.idempotency_key (read, no longer written).
CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY NOT NULL,
    -- SHA-256 (hex) of the request asked with the key.
    body_hash TEXT NOT NULL,
    request_id BIGINT NOT NULL REFERENCES requests (id),
    -- When the key was recorded (unix ms): it lives 24 h from here.
    at BIGINT NOT NULL
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (at);
