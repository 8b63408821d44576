-- Failed sign-ins and costly anonymous requests (password hashes), counted per key in fixed
-- windows: shared by every process on the database, so N servers behind a load balancer
-- allow no more guesses than one. UNLOGGED: counters need no crash safety and write no WAL.
CREATE UNLOGGED TABLE auth_throttle (
    key text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    window_ms bigint NOT NULL,
    hits integer NOT NULL
);

-- Proofs that a caller may create the first administrator: the setup grant (a cookie of the
-- browser that ran the setup) and the token written at a start without an administrator.
-- Only their SHA-256 is stored; all go once an administrator exists.
CREATE TABLE first_admin_tokens (
    token_hash text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('grant', 'start')),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Usernames are unique without regard to case (`bob`, `Bob` and `BOB` were three accounts),
-- and sign-in by username ignores case. Accounts made before that whose name differs from an
-- older one's only by case get a suffix; their email address still signs them in.
WITH ranked AS (
    SELECT id, username,
           row_number() OVER (PARTITION BY lower(username) ORDER BY created_at, id) AS n
    FROM users
)
UPDATE users u
SET username = left(r.username, 41) || '-' || substr(md5(u.id), 1, 8)
FROM ranked r
WHERE u.id = r.id AND r.n > 1;

DROP INDEX users_username_idx;
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
