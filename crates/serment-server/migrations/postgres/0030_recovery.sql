-- Issue 17 §2: recovery escrows (PROTOCOL.md §4.2). One row per handle: the escrow of its
-- current recovery code (an Argon2id + AES-256-GCM ciphertext, opaque to the server) and the
-- recovery device it names. Replaced by `serment id recovery-code`; deleted when a recovery
-- burns it (log entry kind 12).
CREATE TABLE recovery_escrows (
    handle          TEXT    NOT NULL PRIMARY KEY,
    identity_id     TEXT    NOT NULL,
    recovery_device TEXT    NOT NULL,
    escrow          BYTEA    NOT NULL,
    updated_at      BIGINT    NOT NULL
);
