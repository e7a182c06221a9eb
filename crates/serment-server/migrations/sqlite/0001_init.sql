-- Serment server schema, version 1 (PROTOCOL.md §8).
-- Portable SQL: the PostgreSQL migrations will mirror this file with BYTEA for BLOB and BIGINT
-- for INTEGER. Ids are lowercase hex TEXT; times are seconds since the Unix epoch.

-- §8.1: one row per registered device; `record` is the signed device record exactly as received.
CREATE TABLE devices (
    device_id   TEXT    NOT NULL PRIMARY KEY,
    identity_id TEXT    NOT NULL,
    handle      TEXT    NOT NULL,
    record      BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX devices_identity ON devices (identity_id);
CREATE INDEX devices_handle ON devices (handle);

-- §8.1: a handle is bound to the first identity that registers it.
CREATE TABLE handles (
    handle      TEXT NOT NULL PRIMARY KEY,
    identity_id TEXT NOT NULL
);

-- §8.2: outstanding login challenges, stored as SHA-256 of the challenge; single use.
CREATE TABLE challenges (
    challenge_hash TEXT    NOT NULL PRIMARY KEY,
    device_id      TEXT    NOT NULL REFERENCES devices (device_id),
    expires_at     INTEGER NOT NULL
);
CREATE INDEX challenges_device ON challenges (device_id);

-- §8.2: bearer sessions, stored as SHA-256 of the token.
CREATE TABLE sessions (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    device_id  TEXT    NOT NULL REFERENCES devices (device_id),
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- §8.3: content-addressed sealed blobs (the bytes live in blobs/<aa>/<sha256 hex>).
CREATE TABLE blobs (
    blob_id    TEXT    NOT NULL PRIMARY KEY,
    size       INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- §8.3: one row per committed document version.
CREATE TABLE documents (
    doc_id          TEXT    NOT NULL,
    doc_version     INTEGER NOT NULL,
    author_device   TEXT    NOT NULL REFERENCES devices (device_id),
    author_identity TEXT    NOT NULL,
    blob_id         TEXT    NOT NULL REFERENCES blobs (blob_id),
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (doc_id, doc_version)
);
CREATE INDEX documents_author ON documents (author_identity);

-- §7: key wraps exactly as received, one per (version, recipient device).
CREATE TABLE wraps (
    doc_id           TEXT    NOT NULL,
    doc_version      INTEGER NOT NULL,
    recipient_device TEXT    NOT NULL REFERENCES devices (device_id),
    sharer_device    TEXT    NOT NULL REFERENCES devices (device_id),
    wrap             BLOB    NOT NULL,
    PRIMARY KEY (doc_id, doc_version, recipient_device),
    FOREIGN KEY (doc_id, doc_version) REFERENCES documents (doc_id, doc_version)
);
CREATE INDEX wraps_recipient ON wraps (recipient_device);

-- §8.3: every read of a wrap or a blob, recorded before the response is sent.
CREATE TABLE accesses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id      TEXT    NOT NULL,
    doc_version INTEGER NOT NULL,
    device_id   TEXT    NOT NULL REFERENCES devices (device_id),
    what        TEXT    NOT NULL CHECK (what IN ('wrap', 'blob')),
    at          INTEGER NOT NULL,
    FOREIGN KEY (doc_id, doc_version) REFERENCES documents (doc_id, doc_version)
);
CREATE INDEX accesses_doc ON accesses (doc_id, id);
