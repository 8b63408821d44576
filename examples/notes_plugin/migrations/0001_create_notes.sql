-- Runs as the role plugin_notes with plugin_notes as the only schema on the search path.
CREATE TABLE notes (
    id text PRIMARY KEY,
    body text NOT NULL CHECK (length(body) > 0),
    -- The user the request acted for, when there is one (see plugin_api in the README).
    author_id text DEFAULT plugin_api.current_user_id(),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notes_created_at_idx ON notes (created_at);
