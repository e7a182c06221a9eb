-- Issue 17 §1: provisional recipients (PROTOCOL.md §15). One row per provisional recipient: the
-- lab identity that made it, its contact tag (keyed by the lab: no personal data), the lookup id
-- of its claim code, the email the one-time codes go to (never in the log), the server share S
-- and the escrow (AES-GCM under a key of the claim code and S: opaque to the server), and the
-- identity that claimed it. Its record and claim are log entries (kinds 10 and 11).
CREATE TABLE provisionals (
    provisional_id   TEXT    NOT NULL PRIMARY KEY,
    lab_identity     TEXT    NOT NULL,
    lab_device       TEXT    NOT NULL,
    contact_tag      TEXT    NOT NULL,
    lookup           TEXT    NOT NULL UNIQUE,
    email            TEXT    NOT NULL,
    server_share     BLOB    NOT NULL,
    escrow           BLOB    NOT NULL,
    created_at       INTEGER NOT NULL,
    claimed_identity TEXT
);
CREATE INDEX provisionals_tag ON provisionals (lab_identity, contact_tag);
-- Wraps to a provisional recipient (kind 4 entries like any wrap; not in `wraps`, whose
-- recipients are registered devices).
CREATE TABLE provisional_wraps (
    doc_id         TEXT    NOT NULL,
    doc_version    INTEGER NOT NULL,
    provisional_id TEXT    NOT NULL REFERENCES provisionals (provisional_id),
    wrap           BLOB    NOT NULL,
    log_idx        INTEGER NOT NULL,
    PRIMARY KEY (doc_id, doc_version, provisional_id),
    FOREIGN KEY (doc_id, doc_version) REFERENCES documents (doc_id, doc_version)
);
CREATE INDEX provisional_wraps_recipient ON provisional_wraps (provisional_id);
-- The live one-time code of a provisional recipient: its SHA-256 only, its expiry, the attempts
-- made against it, and whether it was used (single use).
CREATE TABLE provisional_codes (
    provisional_id TEXT    NOT NULL PRIMARY KEY REFERENCES provisionals (provisional_id),
    code_hash      BLOB    NOT NULL,
    expires_at     INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    used           INTEGER NOT NULL DEFAULT 0
);
