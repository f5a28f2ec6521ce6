-- Who ended a provisioned grant before its time (Release access), and when.
ALTER TABLE requests ADD COLUMN released_by TEXT, ADD COLUMN released_at BIGINT;
