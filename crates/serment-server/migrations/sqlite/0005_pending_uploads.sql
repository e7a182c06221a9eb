-- Issue 10 §2: uploads that no commit references yet ("pending"), for the per-device quota and the
-- garbage collector. `uploader` is the device that sent the blob through POST /v1/blobs; it is
-- cleared (NULL) as soon as a committed version references the blob, by the trigger below, so
-- `uploader IS NOT NULL` means exactly "pending". Inline blobs and blobs stored before this
-- migration have no uploader and are never collected.
ALTER TABLE blobs ADD COLUMN uploader TEXT;
CREATE INDEX blobs_pending_by_uploader ON blobs (uploader) WHERE uploader IS NOT NULL;
CREATE INDEX blobs_pending_by_age ON blobs (created_at) WHERE uploader IS NOT NULL;
CREATE TRIGGER blobs_committed AFTER INSERT ON documents
BEGIN
    UPDATE blobs SET uploader = NULL WHERE blob_id = NEW.blob_id AND uploader IS NOT NULL;
END;
