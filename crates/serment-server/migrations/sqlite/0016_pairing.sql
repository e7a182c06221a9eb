-- Issue 16 §1: the device-pairing relay (PROTOCOL.md §4.1). One row per live pairing slot:
-- the linking device's hello, the new device's join, the linking device's finish (or abort).
-- The messages are opaque to the server (SPAKE2 messages and AES-GCM ciphertexts). Rows expire
-- after five minutes and are deleted when the next slot is opened.
CREATE TABLE pairings (
    slot         TEXT    NOT NULL PRIMARY KEY,
    owner_device TEXT    NOT NULL,
    hello        BLOB    NOT NULL,
    join_msg     BLOB,
    finish_msg   BLOB,
    aborted      INTEGER NOT NULL DEFAULT 0,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX pairings_expiry ON pairings (expires_at);
