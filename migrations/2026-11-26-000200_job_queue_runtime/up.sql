-- The worker runtime: leases (who holds a job and until when), priorities, the time a run
-- started (durations), a unique key (one periodic job per schedule and slot), and indexes
-- shaped for the claim. Upstream's columns, statuses and payloads are unchanged.

ALTER TABLE queue_jobs
    ADD COLUMN priority integer NOT NULL DEFAULT 0,
    ADD COLUMN locked_by text,
    ADD COLUMN locked_until timestamptz,
    ADD COLUMN started_at timestamptz,
    ADD COLUMN key text;

-- Jobs left 'processing' by upstream's processor (it never recovered them after a crash)
-- have no holder to wait for: they run again.
UPDATE queue_jobs SET status = 'pending', scheduled_for = now(), updated_at = now()
    WHERE status = 'processing';

-- A processing job always has a holder and a lease; no other status has either.
ALTER TABLE queue_jobs ADD CONSTRAINT queue_jobs_lease_check CHECK (
    (status = 'processing') = (locked_by IS NOT NULL AND locked_until IS NOT NULL)
);

-- The queue's statements set updated_at themselves: a row trigger on the busiest table would
-- run at every claim and every completion.
DROP TRIGGER IF EXISTS set_updated_at ON queue_jobs;

-- Claims read due pending jobs, best priority first, oldest first. Partial indexes get no
-- entry for rows outside their predicate, so a claim or a completion (which leave 'pending'
-- and 'processing') adds nothing to them.
DROP INDEX jobs_status_scheduled_idx;
CREATE INDEX queue_jobs_claim_idx ON queue_jobs (priority DESC, scheduled_for, id)
    WHERE status = 'pending';
-- Finds jobs whose holder died (lease expired).
CREATE INDEX queue_jobs_lease_idx ON queue_jobs (locked_until) WHERE status = 'processing';
-- One periodic job per schedule and slot, whichever replica enqueues it first.
CREATE UNIQUE INDEX queue_jobs_key_idx ON queue_jobs (key) WHERE key IS NOT NULL;
-- Most jobs have no batch; the batch lookups (and the cascade) never ask for NULL.
DROP INDEX jobs_batch_id_idx;
CREATE INDEX jobs_batch_id_idx ON queue_jobs (batch_id) WHERE batch_id IS NOT NULL;

-- Wake-ups: one notification per inserting statement (never one per row), delivered when
-- the transaction commits. The queue's own enqueues switch it off for their transaction
-- (`deploystack.jobs_notify = off`) and notify after their commit instead: a NOTIFY in the
-- transaction would serialize concurrent enqueue commits.
CREATE FUNCTION queue_jobs_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('deploystack.jobs_notify', true) IS DISTINCT FROM 'off' THEN
        PERFORM pg_notify('deploystack_jobs', '');
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER queue_jobs_notify
    AFTER INSERT ON queue_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION queue_jobs_notify();

-- Every job is written two or three times within seconds: vacuum (which removes the dead
-- index entries claims must step over) and fresh statistics should not wait for 20 % of
-- the table to change.
ALTER TABLE queue_jobs SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.01,
    autovacuum_vacuum_cost_delay = 0
);

-- The claim. Right after a large enqueue the statistics still describe a small table, and
-- the planner then sorts every pending job (a bitmap scan and an external sort, 100 ms for
-- 50,000 jobs) instead of reading the first ones from the claim index, which is already
-- in the claim's order. The function pins that plan: sorts and bitmap scans are off while
-- it runs; PL/pgSQL keeps the plan for the session (an SQL function would plan each call).
-- `FOR UPDATE SKIP LOCKED`: concurrent claimers never get the same job.
CREATE FUNCTION queue_claim(p_worker text, p_limit integer, p_lease_ms double precision)
RETURNS SETOF queue_jobs
LANGUAGE plpgsql
SET enable_sort = off
SET enable_bitmapscan = off
AS $$
BEGIN
    RETURN QUERY
    WITH next AS (
        SELECT q.id FROM queue_jobs q
        WHERE q.status = 'pending' AND q.scheduled_for <= now()
        ORDER BY q.priority DESC, q.scheduled_for, q.id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE queue_jobs j SET status = 'processing', attempts = j.attempts + 1,
        locked_by = p_worker, locked_until = now() + p_lease_ms * interval '1 millisecond',
        started_at = now(), updated_at = now()
    FROM next WHERE j.id = next.id
    RETURNING j.*;
END;
$$;
