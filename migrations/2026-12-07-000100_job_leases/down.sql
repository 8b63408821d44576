CREATE OR REPLACE FUNCTION queue_claim(p_worker text, p_limit integer, p_lease_ms double precision)
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
    WHERE id = ANY (p_ids) AND locked_by = p_worker;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

DROP FUNCTION queue_renew_leases(text, text[], integer[], double precision);
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
                 FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

DROP FUNCTION queue_settle_late(text, text[], integer[], text[], jsonb[], text[], double precision[], text);

-- Taken-back jobs name no holder again.
UPDATE queue_jobs SET locked_by = NULL WHERE locked_until IS NULL AND locked_by IS NOT NULL;

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
    RETURNING j.batch_id, j.status;
END;
$$;
