-- Reading history through the gateway: what a task's record holds beyond the first schema,
-- so GET /tasks/{id} answers an archived task with the same JSON as a live one (its options,
-- including its tags, its retry budget, its place in a workflow, its eta and expiry).
ALTER TABLE celeriac_tasks
    ADD COLUMN options       jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN max_retries   integer,
    ADD COLUMN workflow_node integer,
    ADD COLUMN eta           timestamptz,
    ADD COLUMN expires_at    timestamptz;
