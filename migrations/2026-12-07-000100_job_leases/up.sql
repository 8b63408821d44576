-- Leases that hold under load, a claim whose cost does not grow with future jobs, and keyed
-- enqueue in one statement.

-- 1. A lease taken back keeps naming its last holder (`locked_by` without `locked_until`;
--    the lease check constraint allows it outside 'processing') until the job is claimed
--    again. If that run was alive after all (a stalled process, a slow network) and reports,
--    `queue_settle_late` writes its outcome instead of dropping it: a job is never left
--    'failed' ("lease expired") for work that then succeeded. Every statement that acts on a
--    live hold names `locked_until IS NOT NULL`, so a taken-back job is never extended,
--    settled as live or handed back.
CREATE OR REPLACE FUNCTION queue_settle(
    p_worker text, p_ids text[], p_attempts integer[], p_statuses text[], p_results jsonb[],
    p_errors text[], p_delays_ms double precision[]
)
RETURNS TABLE (settled_batch_id text, settled_status text)
LANGUAGE plpgsql
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
BEGIN
    RETURN QUERY
    UPDATE queue_jobs j SET status = o.status, result = o.result, error = o.error,
        completed_at = CASE WHEN o.status = 'pending' THEN NULL ELSE now() END,
        scheduled_for = CASE WHEN o.status = 'pending'
            THEN now() + o.delay_ms * interval '1 millisecond' ELSE j.scheduled_for END,
        locked_by = NULL, locked_until = NULL, updated_at = now()
    FROM unnest(p_ids, p_attempts, p_statuses, p_results, p_errors, p_delays_ms)
        AS o(id, attempt, status, result, error, delay_ms)
    WHERE j.id = o.id AND j.locked_by = p_worker AND j.attempts = o.attempt
        AND j.locked_until IS NOT NULL
    RETURNING j.batch_id, j.status;
END;
$$;

-- Outcomes of runs whose lease was taken back (status 'pending' or 'failed' with the
-- lease-expired error, still naming this worker and this attempt: nobody ran the job
-- since). Returns the status each job had, so the caller can move the batch counters.
CREATE FUNCTION queue_settle_late(
    p_worker text, p_ids text[], p_attempts integer[], p_statuses text[], p_results jsonb[],
    p_errors text[], p_delays_ms double precision[], p_expired text
)
RETURNS TABLE (settled_batch_id text, previous_status text, settled_status text)
LANGUAGE plpgsql
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
BEGIN
    RETURN QUERY
    WITH taken AS (
        SELECT q.id, q.status, u.attempt FROM queue_jobs q
        JOIN unnest(p_ids, p_attempts) AS u(id, attempt) ON q.id = u.id
        WHERE q.locked_by = p_worker AND q.locked_until IS NULL AND q.attempts = u.attempt
            AND q.status IN ('pending', 'failed') AND q.error = p_expired
        FOR UPDATE OF q
    )
    UPDATE queue_jobs j SET status = o.status, result = o.result, error = o.error,
        completed_at = CASE WHEN o.status = 'pending' THEN NULL ELSE now() END,
        scheduled_for = CASE WHEN o.status = 'pending'
            THEN now() + o.delay_ms * interval '1 millisecond' ELSE j.scheduled_for END,
        locked_by = NULL, updated_at = now()
    FROM taken, unnest(p_ids, p_attempts, p_statuses, p_results, p_errors, p_delays_ms)
        AS o(id, attempt, status, result, error, delay_ms)
    WHERE j.id = taken.id AND o.id = taken.id AND o.attempt = taken.attempt
    RETURNING j.batch_id, taken.status, j.status;
END;
$$;

-- Renewal: extends the leases this worker still holds (the run's attempt included: a job
-- taken back and claimed again here is another run) and returns the ids of `p_ids` it no
-- longer holds, so their runs are cancelled. SKIP LOCKED: a job being settled right now
-- needs no extension, and its last committed version still names this worker.
CREATE FUNCTION queue_renew_leases(
    p_worker text, p_ids text[], p_attempts integer[], p_lease_ms double precision
)
RETURNS SETOF text
LANGUAGE plpgsql
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
BEGIN
    UPDATE queue_jobs SET locked_until = now() + p_lease_ms * interval '1 millisecond'
    WHERE id IN (
        SELECT q.id FROM queue_jobs q
        JOIN unnest(p_ids, p_attempts) AS u(id, attempt) ON q.id = u.id
        WHERE q.locked_by = p_worker AND q.locked_until IS NOT NULL AND q.attempts = u.attempt
        FOR UPDATE OF q SKIP LOCKED);
    RETURN QUERY
    SELECT u.id FROM unnest(p_ids, p_attempts) AS u(id, attempt)
    WHERE NOT EXISTS (
        SELECT 1 FROM queue_jobs q
        WHERE q.id = u.id AND q.locked_by = p_worker AND q.locked_until IS NOT NULL
            AND q.attempts = u.attempt);
END;
$$;

-- Kept for workers of the previous version during a rolling deploy (they renew with it
-- until they stop): live holds only, so a taken-back row is never given a lease again.
CREATE OR REPLACE FUNCTION queue_extend_leases(p_worker text, p_ids text[], p_lease_ms double precision)
RETURNS integer
LANGUAGE plpgsql
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    n integer;
BEGIN
    UPDATE queue_jobs SET locked_until = now() + p_lease_ms * interval '1 millisecond'
    WHERE id IN (SELECT q.id FROM queue_jobs q WHERE q.id = ANY (p_ids) AND q.locked_by = p_worker
                 AND q.locked_until IS NOT NULL FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

CREATE OR REPLACE FUNCTION queue_release(p_worker text, p_ids text[])
RETURNS integer
LANGUAGE plpgsql
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    n integer;
BEGIN
    UPDATE queue_jobs SET status = 'pending', attempts = GREATEST(attempts - 1, 0),
        locked_by = NULL, locked_until = NULL, scheduled_for = now(), updated_at = now()
    WHERE id = ANY (p_ids) AND locked_by = p_worker AND locked_until IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

-- 2. The claim, one priority at a time. The claim index is ordered by priority first, so a
--    single scan for due jobs stepped over every job scheduled later at a higher priority
--    (a retry storm at priority 10 made every claim of priority 0 read all of it). Within
--    one priority the due jobs come first (oldest first), so each level is a range scan
--    that stops at its first future job, and the next level below is one index probe: the
--    cost follows the number of priorities in use, never the number of waiting jobs.
CREATE OR REPLACE FUNCTION queue_claim(p_worker text, p_limit integer, p_lease_ms double precision)
RETURNS SETOF queue_jobs
LANGUAGE plpgsql
SET enable_sort = off
SET enable_bitmapscan = off
AS $$
DECLARE
    level integer;
    first_at timestamptz;
    first_id text;
    taken integer;
    wanted integer := p_limit;
BEGIN
    -- The probe returns the level's first pending job, and the claim's range starts at it:
    -- the index entries in front of it (jobs claimed since the last vacuum) are stepped over
    -- once per level, not twice.
    SELECT q.priority, q.scheduled_for, q.id INTO level, first_at, first_id
        FROM queue_jobs q WHERE q.status = 'pending'
        ORDER BY q.priority DESC, q.scheduled_for, q.id LIMIT 1;
    WHILE level IS NOT NULL AND wanted > 0 LOOP
        RETURN QUERY
        WITH next AS (
            SELECT q.id FROM queue_jobs q
            WHERE q.status = 'pending' AND q.priority = level
                AND (q.scheduled_for, q.id) >= (first_at, first_id)
                AND q.scheduled_for <= now()
            ORDER BY q.priority DESC, q.scheduled_for, q.id
            LIMIT wanted
            FOR UPDATE SKIP LOCKED
        )
        UPDATE queue_jobs j SET status = 'processing', attempts = j.attempts + 1,
            locked_by = p_worker, locked_until = now() + p_lease_ms * interval '1 millisecond',
            started_at = now(), updated_at = now()
        FROM next WHERE j.id = next.id
        RETURNING j.*;
        GET DIAGNOSTICS taken = ROW_COUNT;
        wanted := wanted - taken;
        EXIT WHEN wanted <= 0;
        SELECT q.priority, q.scheduled_for, q.id INTO level, first_at, first_id
            FROM queue_jobs q WHERE q.status = 'pending' AND q.priority < level
            ORDER BY q.priority DESC, q.scheduled_for, q.id LIMIT 1;
    END LOOP;
END;
$$;
