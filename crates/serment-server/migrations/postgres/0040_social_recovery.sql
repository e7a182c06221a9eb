-- Issue 17 §2: social recovery, k-of-n (PROTOCOL.md §4.3). Opaque to the server: the escrow is
-- sealed under a secret split among the contacts, every share is HPKE-wrapped to a device. The
-- log (kinds 13-16, subject the handle's social chain) is what clients trust; these rows only
-- serve the ciphertexts and let the server refuse what the log would not justify.
-- One row per handle: the current contacts entry's escrow and rules.
CREATE TABLE social_escrows (
    handle          TEXT    NOT NULL PRIMARY KEY,
    identity_id     TEXT    NOT NULL,
    recovery_device TEXT    NOT NULL,
    contacts_hash   TEXT    NOT NULL,
    threshold       BIGINT  NOT NULL,
    waiting_period  BIGINT  NOT NULL,
    escrow          BYTEA    NOT NULL,
    updated_at      BIGINT  NOT NULL
);
-- Share wraps: request_id '' for the distribution to the contacts' devices, else the request
-- whose new device a contact re-wrapped its share to (with its approval).
CREATE TABLE social_shares (
    handle      TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    sharer      TEXT    NOT NULL,
    contact     TEXT    NOT NULL,
    share       BYTEA    NOT NULL,
    PRIMARY KEY (handle, request_id, recipient, sharer)
);
-- Recovery requests (kind 14) as logged, with their vetoes (kind 16).
CREATE TABLE social_requests (
    request_id     TEXT    NOT NULL PRIMARY KEY,
    handle         TEXT    NOT NULL,
    contacts_hash  TEXT    NOT NULL,
    new_device     TEXT    NOT NULL,
    logged_at      BIGINT  NOT NULL,
    vetoed         BIGINT  NOT NULL DEFAULT 0
);
