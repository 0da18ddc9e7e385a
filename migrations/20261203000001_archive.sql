-- The archive of tasks that ended (SUCCESS, FAILURE, REVOKED), one row per task id, written by
-- celeriac-archiver from the queues' archive streams (an upsert: a task run again after
-- ending, then ending again, keeps its latest ending). Each index backs one search of the
-- history (task, queue, state or time, newest first; arguments and tags by containment; error
-- text).
CREATE TABLE celeriac_tasks (
    task_id       text PRIMARY KEY,
    task          text        NOT NULL,
    queue         text        NOT NULL,
    state         text        NOT NULL CHECK (state IN ('SUCCESS', 'FAILURE', 'REVOKED')),
    args          jsonb       NOT NULL,
    result        jsonb,
    error         jsonb,
    attempts      integer     NOT NULL,
    deliveries    integer     NOT NULL,
    created_at    timestamptz,
    started_at    timestamptz,
    finished_at   timestamptz NOT NULL,
    queue_wait_ms bigint,
    run_time_ms   bigint,
    worker        text,
    workflow_id   text,
    trace_id      text,
    tags          jsonb       NOT NULL DEFAULT '{}',
    archived_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX celeriac_tasks_task_finished ON celeriac_tasks (task, finished_at DESC, task_id DESC);
CREATE INDEX celeriac_tasks_queue_finished ON celeriac_tasks (queue, finished_at DESC, task_id DESC);
CREATE INDEX celeriac_tasks_state_finished ON celeriac_tasks (state, finished_at DESC, task_id DESC);
CREATE INDEX celeriac_tasks_finished ON celeriac_tasks (finished_at DESC, task_id DESC);
CREATE INDEX celeriac_tasks_args ON celeriac_tasks USING gin (args jsonb_path_ops);
CREATE INDEX celeriac_tasks_tags ON celeriac_tasks USING gin (tags jsonb_path_ops);
CREATE INDEX celeriac_tasks_error_text ON celeriac_tasks
    USING gin (to_tsvector('simple', coalesce(error ->> 'kind', '') || ' ' || coalesce(error ->> 'message', '')))
    WHERE error IS NOT NULL;
