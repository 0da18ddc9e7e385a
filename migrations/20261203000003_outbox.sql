-- Enqueue inside the application's own transaction (the outbox). celeriac_enqueue() inserts a
-- row and returns the task id at once; the row becomes visible, and its NOTIFY is delivered,
-- only when the caller's transaction commits, so a rolled-back transaction enqueues nothing.
-- The relay (celeriac-archiver) moves committed rows to Redis with that id as the task id
-- (the enqueue script refuses an id that exists, so a relay killed between sending and
-- deleting never enqueues twice), woken by LISTEN celeriac_outbox, with a slow poll behind.
CREATE TABLE celeriac_outbox (
    task_id    text PRIMARY KEY,
    task       text        NOT NULL,
    args       jsonb       NOT NULL,
    -- The call options of POST /tasks: countdown, eta, expires, max_retries, tags...
    options    jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Why the relay could not enqueue it (bad arguments or options); such rows stay, for an
    -- operator, and are not tried again.
    error      text
);
CREATE INDEX celeriac_outbox_waiting ON celeriac_outbox (created_at) WHERE error IS NULL;

-- The queue of each task type, so the id (which names its queue) is known at once. The relay
-- keeps it up to date from the catalogue; these are the built-in ones.
CREATE TABLE celeriac_task_queues (
    task  text PRIMARY KEY,
    queue text NOT NULL
);
INSERT INTO celeriac_task_queues (task, queue) VALUES ('send_email', 'emails'), ('generate_report', 'reports');

CREATE FUNCTION celeriac_enqueue(task_name text, task_args jsonb DEFAULT '[]', queue_name text DEFAULT NULL,
                                 call_options jsonb DEFAULT '{}') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    id text;
BEGIN
    id := coalesce(queue_name, (SELECT q.queue FROM celeriac_task_queues q WHERE q.task = task_name), 'default')
          || '-' || replace(gen_random_uuid()::text, '-', '');
    INSERT INTO celeriac_outbox (task_id, task, args, options) VALUES (id, task_name, task_args, call_options);
    PERFORM pg_notify('celeriac_outbox', id);
    RETURN id;
END
$$;
