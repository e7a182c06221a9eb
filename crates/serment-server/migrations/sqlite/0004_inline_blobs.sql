-- §8.3: a sealed document of at most 256 KiB may be committed inline, in the same request and
-- the same transaction as its version and wraps. Its bytes live here; NULL means the blob is a
-- file under blobs/ (uploaded through POST /v1/blobs).
ALTER TABLE blobs ADD COLUMN data BLOB;
