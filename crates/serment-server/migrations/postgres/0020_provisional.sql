-- Issue 17 §1: provisional recipients (PROTOCOL.md §15); see migrations/sqlite/0020_provisional.sql.
CREATE TABLE provisionals (
    provisional_id   TEXT    NOT NULL PRIMARY KEY,
    lab_identity     TEXT    NOT NULL,
    lab_device       TEXT    NOT NULL,
    contact_tag      TEXT    NOT NULL,
    lookup           TEXT    NOT NULL UNIQUE,
    email            TEXT    NOT NULL,
    server_share     BYTEA   NOT NULL,
    escrow           BYTEA   NOT NULL,
    created_at       BIGINT  NOT NULL,
    claimed_identity TEXT
);
CREATE INDEX provisionals_tag ON provisionals (lab_identity, contact_tag);
-- Wraps to a provisional recipient (kind 4 entries like any wrap; not in `wraps`, whose
-- recipients are registered devices).
CREATE TABLE provisional_wraps (
    doc_id         TEXT    NOT NULL,
    doc_version    BIGINT  NOT NULL,
    provisional_id TEXT    NOT NULL REFERENCES provisionals (provisional_id),
    wrap           BYTEA   NOT NULL,
    log_idx        BIGINT  NOT NULL,
    PRIMARY KEY (doc_id, doc_version, provisional_id),
    FOREIGN KEY (doc_id, doc_version) REFERENCES documents (doc_id, doc_version)
);
CREATE INDEX provisional_wraps_recipient ON provisional_wraps (provisional_id);
-- The live one-time code of a provisional recipient: its SHA-256 only, its expiry, the attempts
-- made against it, and whether it was used (single use).
CREATE TABLE provisional_codes (
    provisional_id TEXT    NOT NULL PRIMARY KEY REFERENCES provisionals (provisional_id),
    code_hash      BYTEA   NOT NULL,
    expires_at     BIGINT  NOT NULL,
    attempts       BIGINT  NOT NULL DEFAULT 0,
    used           BIGINT  NOT NULL DEFAULT 0
);
