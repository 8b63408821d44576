DROP FUNCTION queue_claim(text, integer, double precision);
ALTER TABLE queue_jobs RESET (
    autovacuum_vacuum_scale_factor,
    autovacuum_vacuum_threshold,
    autovacuum_vacuum_insert_scale_factor,
    autovacuum_analyze_scale_factor,
    autovacuum_vacuum_cost_delay
);
DROP TRIGGER queue_jobs_notify ON queue_jobs;
DROP FUNCTION queue_jobs_notify();
DROP INDEX jobs_batch_id_idx;
CREATE INDEX jobs_batch_id_idx ON queue_jobs (batch_id);
DROP INDEX queue_jobs_key_idx;
DROP INDEX queue_jobs_lease_idx;
DROP INDEX queue_jobs_claim_idx;
CREATE INDEX jobs_status_scheduled_idx ON queue_jobs (status, scheduled_for);
SELECT diesel_manage_updated_at('queue_jobs');
ALTER TABLE queue_jobs DROP CONSTRAINT queue_jobs_lease_check;
ALTER TABLE queue_jobs
    DROP COLUMN key,
    DROP COLUMN started_at,
    DROP COLUMN locked_until,
    DROP COLUMN locked_by,
    DROP COLUMN priority;
