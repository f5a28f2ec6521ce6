-- Decisions are applied without holding locks between reading a request and writing it:
-- the statement that writes them checks each request's version and, should one have moved
-- on, calls this so the whole statement fails and nothing of it stays (not even the keys
-- it recorded). The caller reads again and decides again.
CREATE FUNCTION accessbot_changed_meanwhile() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a request changed since it was read' USING ERRCODE = 'AB409';
END
$$;
