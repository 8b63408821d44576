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
DROP FUNCTION queue_release(text, text[]);
DROP FUNCTION queue_extend_leases(text, text[], double precision);
DROP FUNCTION queue_settle(text, text[], integer[], text[], jsonb[], text[], double precision[]);
DROP TRIGGER queue_job_batches_truncate ON queue_job_batches;
DROP FUNCTION queue_job_batches_truncate();
DROP TRIGGER queue_job_batches_cascade ON queue_job_batches;
DROP FUNCTION queue_job_batches_cascade();
DROP TRIGGER queue_job_batches_links_check ON queue_job_batches;
DROP TRIGGER queue_jobs_batch_links_check ON queue_jobs;
DROP FUNCTION queue_jobs_batch_links_check();
DROP TRIGGER queue_jobs_batches_exist ON queue_jobs;
DROP FUNCTION queue_jobs_batches_exist();
ALTER TABLE queue_job_batches ALTER COLUMN id TYPE text COLLATE "default";
ALTER TABLE queue_jobs
    ALTER COLUMN id TYPE text COLLATE "default",
    ALTER COLUMN batch_id TYPE text COLLATE "default";
ALTER TABLE queue_jobs ADD CONSTRAINT queue_jobs_batch_id_fkey
    FOREIGN KEY (batch_id) REFERENCES queue_job_batches (id) ON DELETE CASCADE;
CREATE INDEX jobs_created_at_idx ON queue_jobs (created_at);
CREATE INDEX jobs_type_idx ON queue_jobs (type);
