-- The archive's indexed text columns compare bytewise ("C"), whatever the database's locale.
-- Under a linguistic collation (en_US.UTF-8 is the default of the official postgres image,
-- and of many managed servers) every B-tree step of an insert compares strings with
-- strcoll(): measured with the archiver's ingest, PostgreSQL took 36 to 40 µs of CPU per
-- ending in an en_US.UTF-8 database against 20 to 23 µs in a "C" one (docs/archive.md).
-- The ids, task names, queue names and states are ASCII identifiers, so byte order is also
-- the order a reader expects; the keyset cursor's order does not change with the server.
--
-- Binary-coercible, so the table is not rewritten, but the indexes on these columns are
-- rebuilt, under a lock that holds the archivers back meanwhile (their endings wait in Redis).
ALTER TABLE celeriac_tasks
    ALTER COLUMN task_id TYPE text COLLATE "C",
    ALTER COLUMN task    TYPE text COLLATE "C",
    ALTER COLUMN queue   TYPE text COLLATE "C",
    ALTER COLUMN state   TYPE text COLLATE "C";
ALTER TABLE celeriac_outbox
    ALTER COLUMN task_id TYPE text COLLATE "C";
