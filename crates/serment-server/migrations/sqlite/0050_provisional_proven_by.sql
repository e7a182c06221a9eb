-- REVIEW5 U10: a proven one-time code is bound to the identity that proved it. A claim must come
-- from that identity: someone else who can open the provisional escrow (the receipt's claim code
-- and a copy of the server's share) can no longer race the patient's claim once the patient's
-- code is proven (PROTOCOL.md §15.2).
ALTER TABLE provisional_codes ADD COLUMN proven_by TEXT;
