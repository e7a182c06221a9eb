-- Issue 16: care teams (PROTOCOL.md §12). The membership as the server last replayed it from the
-- log (kind-7 entries are the record; these rows only serve reads and access control), the
-- epoch keys wrapped to member devices, and documents' wraps to a team epoch.
CREATE TABLE teams (
    name      TEXT    PRIMARY KEY,
    epoch     BIGINT NOT NULL,
    epoch_id  TEXT    NOT NULL,
    head_idx  BIGINT NOT NULL
);
CREATE TABLE team_members (
    team      TEXT    NOT NULL REFERENCES teams (name),
    handle    TEXT    NOT NULL,
    admin     BIGINT NOT NULL,
    PRIMARY KEY (team, handle)
);
CREATE INDEX team_members_handle ON team_members (handle);
CREATE TABLE team_key_wraps (
    team      TEXT    NOT NULL REFERENCES teams (name),
    epoch     BIGINT NOT NULL,
    device_id TEXT    NOT NULL,
    wrap      BYTEA   NOT NULL,
    PRIMARY KEY (team, epoch, device_id)
);
CREATE TABLE team_wraps (
    doc_id        TEXT    NOT NULL,
    doc_version   BIGINT NOT NULL,
    epoch_id      TEXT    NOT NULL,
    team          TEXT    NOT NULL REFERENCES teams (name),
    sharer_device TEXT    NOT NULL,
    wrap          BYTEA   NOT NULL,
    log_idx       BIGINT NOT NULL,
    PRIMARY KEY (doc_id, doc_version, epoch_id),
    FOREIGN KEY (doc_id, doc_version) REFERENCES documents (doc_id, doc_version)
);
