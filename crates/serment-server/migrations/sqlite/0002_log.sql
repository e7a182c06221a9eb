-- Transparency log (PROTOCOL.md §11): entries, stored tree nodes, checkpoints, cosignatures.

-- §11.3: one row per leaf, `entry` exactly as hashed; `subject` is 'h:<handle>' or 'd:<doc id>'.
CREATE TABLE log_entries (
    idx       INTEGER NOT NULL PRIMARY KEY,
    kind      INTEGER NOT NULL,
    subject   TEXT    NOT NULL,
    device_id TEXT,
    entry     BLOB    NOT NULL,
    leaf_hash BLOB    NOT NULL,
    logged_at INTEGER NOT NULL
);
CREATE INDEX log_entries_subject ON log_entries (subject, idx);
CREATE INDEX log_entries_device ON log_entries (kind, device_id, idx);

-- §11.2: the hash of every complete subtree (level, index); immutable once written.
CREATE TABLE log_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL,
    PRIMARY KEY (level, idx)
);

-- §11.4: the signed checkpoint of every published tree size.
CREATE TABLE log_checkpoints (
    size INTEGER NOT NULL PRIMARY KEY,
    note TEXT    NOT NULL
);

-- §11.8: witness cosignature lines, the newest per witness and size.
CREATE TABLE log_cosignatures (
    size    INTEGER NOT NULL REFERENCES log_checkpoints (size),
    witness TEXT    NOT NULL,
    line    TEXT    NOT NULL,
    PRIMARY KEY (size, witness)
);

-- §11.5: receipt nonces already used, per device (a receipt is never accepted twice).
CREATE TABLE access_nonces (
    device_id TEXT NOT NULL,
    nonce     TEXT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);

-- §11.3: a revoked device can no longer log in, and leaves the directory.
ALTER TABLE devices ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
-- The log index of each wrap's entry, served with its inclusion proof.
ALTER TABLE wraps ADD COLUMN log_idx INTEGER;
