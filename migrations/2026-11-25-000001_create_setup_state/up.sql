-- Records, in the database itself, that setup has been performed. The selection file says
-- so for one installation folder; this row says so for every process that shares the
-- database, so replicas with separate folders never initialize it twice.
CREATE TABLE deploystack_setup (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    database_type text NOT NULL DEFAULT 'postgresql' CHECK (database_type = 'postgresql'),
    backend_version text NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE deploystack_setup IS 'At most one row: present once POST /api/db/setup completed.';
