-- Serment server schema on PostgreSQL (issue 11 §2): the SQLite migrations 0001–0006 in one,
-- with BIGINT for INTEGER and BYTEA for BLOB. Ids are lowercase hex TEXT; times are seconds since
-- the Unix epoch. See migrations/sqlite/ for the comments on each table.

CREATE TABLE devices (
    device_id   TEXT   NOT NULL PRIMARY KEY,
    identity_id TEXT   NOT NULL,
    handle      TEXT   NOT NULL,
    record      BYTEA  NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX devices_identity ON devices (identity_id);
CREATE INDEX devices_handle ON devices (handle);

CREATE TABLE handles (
    handle      TEXT NOT NULL PRIMARY KEY,
    identity_id TEXT NOT NULL
);

CREATE TABLE challenges (
    challenge_hash TEXT   NOT NULL PRIMARY KEY,
    device_id      TEXT   NOT NULL REFERENCES devices (device_id),
    expires_at     BIGINT NOT NULL
);
CREATE INDEX challenges_device ON challenges (device_id);
CREATE INDEX challenges_expiry ON challenges (expires_at);

CREATE TABLE sessions (
    token_hash TEXT   NOT NULL PRIMARY KEY,
    device_id  TEXT   NOT NULL REFERENCES devices (device_id),
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE blobs (
    blob_id    TEXT   NOT NULL PRIMARY KEY,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    data       BYTEA,
    uploader   TEXT
);
CREATE INDEX blobs_pending_by_uploader ON blobs (uploader) WHERE uploader IS NOT NULL;
CREATE INDEX blobs_pending_by_age ON blobs (created_at) WHERE uploader IS NOT NULL;

CREATE TABLE documents (
    doc_id          TEXT   NOT NULL,
    doc_version     BIGINT NOT NULL,
    author_device   TEXT   NOT NULL REFERENCES devices (device_id),
    author_identity TEXT   NOT NULL,
    blob_id         TEXT   NOT NULL REFERENCES blobs (blob_id),
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (doc_id, doc_version)
);
CREATE INDEX documents_author ON documents (author_identity);
CREATE INDEX documents_blob ON documents (blob_id);

CREATE TABLE wraps (
    doc_id           TEXT   NOT NULL,
    doc_version      BIGINT NOT NULL,
    recipient_device TEXT   NOT NULL REFERENCES devices (device_id),
    sharer_device    TEXT   NOT NULL REFERENCES devices (device_id),
    wrap             BYTEA  NOT NULL,
    log_idx          BIGINT,
    PRIMARY KEY (doc_id, doc_version, recipient_device),
    FOREIGN KEY (doc_id, doc_version) REFERENCES documents (doc_id, doc_version)
);
CREATE INDEX wraps_recipient ON wraps (recipient_device);

CREATE TABLE accesses (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    doc_id      TEXT   NOT NULL,
    doc_version BIGINT NOT NULL,
    device_id   TEXT   NOT NULL REFERENCES devices (device_id),
    what        TEXT   NOT NULL CHECK (what IN ('wrap', 'blob')),
    at          BIGINT NOT NULL,
    FOREIGN KEY (doc_id, doc_version) REFERENCES documents (doc_id, doc_version)
);
CREATE INDEX accesses_doc ON accesses (doc_id, id);

CREATE TABLE log_entries (
    idx       BIGINT NOT NULL PRIMARY KEY,
    kind      BIGINT NOT NULL,
    subject   TEXT   NOT NULL,
    device_id TEXT,
    entry     BYTEA  NOT NULL,
    leaf_hash BYTEA  NOT NULL,
    logged_at BIGINT NOT NULL
);
CREATE INDEX log_entries_subject ON log_entries (subject, idx);
CREATE INDEX log_entries_device ON log_entries (kind, device_id, idx);

CREATE TABLE log_nodes (
    level BIGINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA  NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE log_checkpoints (
    size BIGINT NOT NULL PRIMARY KEY,
    note TEXT   NOT NULL
);

-- `seq` is the order of arrival (SQLite's rowid).
CREATE TABLE log_cosignatures (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY,
    size    BIGINT NOT NULL REFERENCES log_checkpoints (size),
    witness TEXT   NOT NULL,
    key_id  BIGINT NOT NULL,
    line    TEXT   NOT NULL,
    PRIMARY KEY (size, witness, key_id)
);
CREATE INDEX log_cosignatures_witness ON log_cosignatures (witness, key_id);

CREATE TABLE access_nonces (
    device_id TEXT NOT NULL,
    nonce     TEXT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);

-- The coordination row (issue 11 §4): every write transaction locks it first
-- (`SELECT … FOR UPDATE`), so log entries are sequenced under one row lock across instances, and
-- the checkpoint is published by compare-and-swap on (size, root).
CREATE TABLE log_head (
    id   BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    size   BIGINT NOT NULL,
    root   BYTEA,
    -- The log's origin (public key name), set at the first start: an instance with another
    -- log key is refused. The key itself is never stored here.
    origin TEXT
);
INSERT INTO log_head (id, size, root) VALUES (1, 0, NULL);

-- A commit referencing a pending upload makes it committed (see sqlite 0005).
CREATE FUNCTION blobs_committed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE blobs SET uploader = NULL WHERE blob_id = NEW.blob_id AND uploader IS NOT NULL;
    RETURN NEW;
END
$$;
CREATE TRIGGER blobs_committed AFTER INSERT ON documents
    FOR EACH ROW EXECUTE FUNCTION blobs_committed();
