-- Who closed a stuck request through the API (the operator as they named themselves), and why.
ALTER TABLE requests ADD COLUMN closed_by TEXT;
ALTER TABLE requests ADD COLUMN close_reason TEXT;
