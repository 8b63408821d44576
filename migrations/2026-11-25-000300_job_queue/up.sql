-- The PostgreSQL job queue (upstream: queueJobBatches, queueJobs).

CREATE TABLE queue_job_batches (
    id text PRIMARY KEY,
    type text NOT NULL,
    total_jobs integer NOT NULL CHECK (total_jobs >= 0),
    completed_jobs integer NOT NULL DEFAULT 0 CHECK (completed_jobs >= 0),
    failed_jobs integer NOT NULL DEFAULT 0 CHECK (failed_jobs >= 0),
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX job_batches_status_idx ON queue_job_batches (status);
CREATE INDEX job_batches_created_at_idx ON queue_job_batches (created_at);

CREATE TABLE queue_jobs (
    id text PRIMARY KEY,
    type text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    scheduled_for timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    error text,
    result jsonb,
    batch_id text REFERENCES queue_job_batches (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX jobs_status_scheduled_idx ON queue_jobs (status, scheduled_for);
CREATE INDEX jobs_type_idx ON queue_jobs (type);
CREATE INDEX jobs_created_at_idx ON queue_jobs (created_at);
CREATE INDEX jobs_batch_id_idx ON queue_jobs (batch_id);
SELECT diesel_manage_updated_at('queue_jobs');
