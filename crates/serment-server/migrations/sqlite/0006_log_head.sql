-- Issue 11 §4: the log's coordination row. Every transaction that appends reads the tree under
-- the write lock and publishes its checkpoint by compare-and-swap on (size, root): the head moves
-- from the size the transaction read to the new one, or the transaction fails and re-reads. So no
-- two writers can ever sign two different trees of one size.
CREATE TABLE log_head (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    root BLOB
);
INSERT INTO log_head (id, size, root) SELECT 1, COALESCE(MAX(idx) + 1, 0), NULL FROM log_entries;
