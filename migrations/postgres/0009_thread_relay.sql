-- The thread relay follows edits and deletions (issue 17).
-- A kept message grows `version` with each edit; a deleted one keeps its row (so a late
-- retry of the original event is still recognised) with its text emptied and `deleted_at` set.
ALTER TABLE thread_messages ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE thread_messages ADD COLUMN deleted_at BIGINT;

-- The copies of a thread message the bot posted into the threads of other cards, so that an
-- edit or a deletion reaches each of them.
CREATE TABLE thread_copies (
    message_id BIGINT NOT NULL REFERENCES thread_messages (id),
    card_id BIGINT NOT NULL REFERENCES cards (id),
    channel TEXT NOT NULL,
    ts TEXT NOT NULL,
    PRIMARY KEY (message_id, card_id)
);
