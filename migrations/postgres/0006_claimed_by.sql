-- Who claimed a request's current task (a Slack user id), so others see it is being handled.
ALTER TABLE requests ADD COLUMN claimed_by TEXT;
