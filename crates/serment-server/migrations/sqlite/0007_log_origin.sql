-- Issue 11 §4: the origin (key name) of the log that signs this database's checkpoints, set at
-- the first start. An instance started with another log key is refused, so instances sharing a
-- database can never sign with two keys. Only the public name is stored, never the key.
ALTER TABLE log_head ADD COLUMN origin TEXT;
