-- Issue 11 §4: the state every instance must share (see sqlite 0009_shared_guards.sql).
CREATE TABLE request_nonces (
    key_id  TEXT   NOT NULL,
    nonce   TEXT   NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX request_nonces_created ON request_nonces (created);
CREATE TABLE request_nonce_floor (
    id    BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    floor BIGINT NOT NULL
);
INSERT INTO request_nonce_floor (id, floor) VALUES (1, 0);

CREATE TABLE login_buckets (
    bucket TEXT             NOT NULL,
    key    TEXT             NOT NULL,
    tokens DOUBLE PRECISION NOT NULL,
    at_ms  BIGINT           NOT NULL,
    PRIMARY KEY (bucket, key)
);

ALTER TABLE blobs ADD COLUMN deleting BIGINT NOT NULL DEFAULT 0;
