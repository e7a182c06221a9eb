-- Review S16: wrong one-time codes counted over the provisional recipient's whole life (a new
-- code does not reset it); past the cap the recipient is locked and the lab re-issues
-- (PROTOCOL.md §15.2). Review S14: the record's log index orders a contact's recipients, so the
-- newest (a re-issue) is listed last even when two are made in the same second.
ALTER TABLE provisionals ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE provisionals ADD COLUMN record_index INTEGER;
