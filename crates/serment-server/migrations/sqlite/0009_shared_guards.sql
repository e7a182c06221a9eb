-- Issue 11 §4: the state every instance must share lives in the database, not in one process.
--
-- Request-signing nonces (PROTOCOL.md §8.2): one row per accepted (keyid, nonce), kept while its
-- `created` is inside the 300 s window; inserting an existing pair is a replay. When the table is
-- over `replay_cache_entries`, the oldest rows are dropped and `floor` rises to their `created`:
-- a request not created after the floor is refused as stale, so nothing is accepted twice.
CREATE TABLE request_nonces (
    key_id  TEXT    NOT NULL,
    nonce   TEXT    NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX request_nonces_created ON request_nonces (created);
CREATE TABLE request_nonce_floor (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    floor INTEGER NOT NULL
);
INSERT INTO request_nonce_floor (id, floor) VALUES (1, 0);

-- Login throttle (issue 10 §3): token buckets per address or device id, `bucket` naming which
-- budget (`requests` or `failures`). `tokens` as of `at_ms` (milliseconds since the epoch).
CREATE TABLE login_buckets (
    bucket TEXT    NOT NULL,
    key    TEXT    NOT NULL,
    tokens REAL    NOT NULL,
    at_ms  INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)
);

-- Blob GC by tombstone: the collector marks a pending upload as being deleted, deletes its
-- bytes, then its row. An upload of the same bytes meanwhile waits for the row to go; a commit
-- referencing a blob being deleted is refused.
ALTER TABLE blobs ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;
