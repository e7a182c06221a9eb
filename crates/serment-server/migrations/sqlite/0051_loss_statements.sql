-- Issue 12, newcomer N12: the loss statements a restore wrote (PROTOCOL.md §11.11), oldest first.
-- Each is the statement's exact text, signed by the log key; the server serves them so that a
-- client or witness that verified past the restored size can see what was lost and, on its
-- user's explicit command, move its pin back. Written by `serment restore` only.
CREATE TABLE loss_statements (
    seq BIGINT PRIMARY KEY,
    restored_size BIGINT NOT NULL,
    statement TEXT NOT NULL
);
