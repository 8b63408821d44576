-- Job queue throughput: every job is written three times within seconds (enqueue, claim,
-- outcome) and each write pays for every index and every row-level check on the table.
-- Measured with `cargo bench --bench queue` on 2 cores (PostgreSQL CPU per drained job,
-- a 20,000-job batch): see the comments below.

-- 1. Indexes nothing hot reads. `jobs_type_idx` and `jobs_created_at_idx` took an entry at
--    each of the three writes (about 10 µs of PostgreSQL CPU per drained job). Listings read
--    the table for the operator's listing (newest first), the daily cleanup and the
--    statistics; the cleanup walks the primary key.
DROP INDEX jobs_type_idx;
DROP INDEX jobs_created_at_idx;

-- 2. The foreign key from jobs to their batch checked each inserted row with a query of its
--    own (a third of a batch insert's time) and fetched the old row at every claim and
--    outcome. The same rule is kept by statement-level checks: one query per inserting
--    statement that locks each named batch (FOR KEY SHARE, as the foreign key did), a
--    check of the whole link after the rare statement that changes it, and the cascade
--    on batch deletion done per deleting statement. Errors keep the foreign key's SQLSTATE
--    (23503), name and message. The checks and the cascade take a fresh snapshot per
--    statement, as READ COMMITTED (the backend's only isolation level) does; a batch deleted
--    in a REPEATABLE READ transaction cascades to the jobs its snapshot sees, where the
--    foreign key would have raised a serialization failure for jobs committed after it.
ALTER TABLE queue_jobs DROP CONSTRAINT queue_jobs_batch_id_fkey;

-- Ids compare byte by byte: the cluster's collation (C.UTF-8 for the embedded one) sent
-- every comparison in the primary key and batch lookups through strcoll. The id alphabet
-- is ASCII in ascending byte order, so the order of ids does not change.
ALTER TABLE queue_jobs
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN batch_id TYPE text COLLATE "C";
ALTER TABLE queue_job_batches ALTER COLUMN id TYPE text COLLATE "C";

-- The rule itself: each of `named` exists, and stays until this transaction ends (locked
-- FOR KEY SHARE, as the foreign key did); otherwise the foreign key's error.
CREATE FUNCTION queue_jobs_require_batches(named text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    locked integer;
    missing text;
BEGIN
    IF named IS NULL THEN
        RETURN;
    END IF;
    PERFORM 1 FROM queue_job_batches b WHERE b.id = ANY (named) FOR KEY SHARE;
    GET DIAGNOSTICS locked = ROW_COUNT;
    IF locked < cardinality(named) THEN
        SELECT n INTO missing FROM unnest(named) AS n
            WHERE NOT EXISTS (SELECT 1 FROM queue_job_batches b WHERE b.id = n)
            LIMIT 1;
        RAISE EXCEPTION 'insert or update on table "queue_jobs" violates foreign key constraint "queue_jobs_batch_id_fkey"'
            USING ERRCODE = 'foreign_key_violation',
                  CONSTRAINT = 'queue_jobs_batch_id_fkey',
                  TABLE = 'queue_jobs',
                  DETAIL = format('Key (batch_id)=(%s) is not present in table "queue_job_batches".', missing);
    END IF;
END;
$$;

-- Inserts: the batches the inserted rows name.
CREATE FUNCTION queue_jobs_batches_exist() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM queue_jobs_require_batches(
        (SELECT array_agg(DISTINCT a.batch_id) FROM added a WHERE a.batch_id IS NOT NULL));
    RETURN NULL;
END;
$$;
CREATE TRIGGER queue_jobs_batches_exist
    AFTER INSERT ON queue_jobs
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION queue_jobs_batches_exist();

-- Every other change of the link (a job's `batch_id` set by UPDATE, a batch's id changed)
-- is rare and never made by the queue: one statement-level check of the whole link after
-- it. Only statements that name the column in their SET list fire it, so claims and
-- outcomes pay nothing (a row-level trigger would fetch the old row at each of them).
CREATE FUNCTION queue_jobs_batch_links_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM queue_jobs_require_batches(
        (SELECT array_agg(DISTINCT j.batch_id) FROM queue_jobs j WHERE j.batch_id IS NOT NULL));
    RETURN NULL;
END;
$$;
CREATE TRIGGER queue_jobs_batch_links_check
    AFTER UPDATE OF batch_id ON queue_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION queue_jobs_batch_links_check();
CREATE TRIGGER queue_job_batches_links_check
    AFTER UPDATE OF id ON queue_job_batches
    FOR EACH STATEMENT EXECUTE FUNCTION queue_jobs_batch_links_check();

-- ON DELETE CASCADE, once per statement.
CREATE FUNCTION queue_job_batches_cascade() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM queue_jobs j WHERE j.batch_id = ANY (ARRAY(SELECT g.id FROM gone g));
    RETURN NULL;
END;
$$;
CREATE TRIGGER queue_job_batches_cascade
    AFTER DELETE ON queue_job_batches
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION queue_job_batches_cascade();

-- A truncate of the batches must take the jobs with it, as the foreign key required.
CREATE FUNCTION queue_job_batches_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM queue_jobs j WHERE j.batch_id IS NOT NULL) THEN
        RAISE EXCEPTION 'cannot truncate queue_job_batches while jobs name a batch'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Truncate queue_jobs in the same command: TRUNCATE queue_jobs, queue_job_batches.';
    END IF;
    RETURN NULL;
END;
$$;
-- AFTER: a command truncating both tables has emptied queue_jobs by then.
CREATE TRIGGER queue_job_batches_truncate
    AFTER TRUNCATE ON queue_job_batches
    FOR EACH STATEMENT EXECUTE FUNCTION queue_job_batches_truncate();

-- The statements that touch a worker's own jobs by id keep the primary key whatever the
-- statistics say. Their guard `locked_by = <this worker>` names a value the statistics
-- have never seen, so the planner expects one row and, on a table of a few hundred
-- thousand rows, prefers one sequential scan to a thousand key lookups: measured, a
-- settle of 1,000 jobs then took 10 s instead of 30 ms. As for `queue_claim`, PL/pgSQL
-- keeps the plan made with those paths off for the session.
CREATE FUNCTION queue_settle(
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

-- Lease extension: SKIP LOCKED, since a job being settled right now needs no extension and
-- waiting for it (rows locked in another order) could deadlock with the settle.
CREATE FUNCTION queue_extend_leases(p_worker text, p_ids text[], p_lease_ms double precision)
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

-- Hands a worker's unfinished jobs back at shutdown (pending, due now, the interrupted
-- attempt not counted).
CREATE FUNCTION queue_release(p_worker text, p_ids text[])
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

