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
DROP FUNCTION queue_jobs_require_batches(text[]);
ALTER TABLE queue_job_batches ALTER COLUMN id TYPE text COLLATE "default";
ALTER TABLE queue_jobs
    ALTER COLUMN id TYPE text COLLATE "default",
    ALTER COLUMN batch_id TYPE text COLLATE "default";
ALTER TABLE queue_jobs ADD CONSTRAINT queue_jobs_batch_id_fkey
    FOREIGN KEY (batch_id) REFERENCES queue_job_batches (id) ON DELETE CASCADE;
CREATE INDEX jobs_created_at_idx ON queue_jobs (created_at);
CREATE INDEX jobs_type_idx ON queue_jobs (type);
