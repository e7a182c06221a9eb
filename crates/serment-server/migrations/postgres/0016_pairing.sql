-- Issue 16 §1: the device-pairing relay (PROTOCOL.md §4.1); see migrations/sqlite/0016_pairing.sql.
CREATE TABLE pairings (
    slot         TEXT     NOT NULL PRIMARY KEY,
    owner_device TEXT     NOT NULL,
    hello        BYTEA    NOT NULL,
    join_msg     BYTEA,
    finish_msg   BYTEA,
    aborted      BIGINT   NOT NULL DEFAULT 0,
    expires_at   BIGINT   NOT NULL
);
CREATE INDEX pairings_expiry ON pairings (expires_at);
