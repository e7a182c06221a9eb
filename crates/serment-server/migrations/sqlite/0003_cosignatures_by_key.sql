-- §11.8: cosignatures are kept per (size, witness name, key id), first come first kept: another
-- key under a witness's name can no longer overwrite the witness's own line. Rows from 0002 have
-- an unknown key id (-1); the rowid order is the order of arrival.
CREATE TABLE log_cosignatures_v2 (
    size    INTEGER NOT NULL REFERENCES log_checkpoints (size),
    witness TEXT    NOT NULL,
    key_id  INTEGER NOT NULL,
    line    TEXT    NOT NULL,
    PRIMARY KEY (size, witness, key_id)
);
INSERT INTO log_cosignatures_v2 (size, witness, key_id, line)
    SELECT size, witness, -1, line FROM log_cosignatures ORDER BY rowid;
DROP TABLE log_cosignatures;
ALTER TABLE log_cosignatures_v2 RENAME TO log_cosignatures;
CREATE INDEX log_cosignatures_witness ON log_cosignatures (witness, key_id);
