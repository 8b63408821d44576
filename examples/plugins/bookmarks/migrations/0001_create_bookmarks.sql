-- A folder plugin: SQL only, applied at start as the role plugin_bookmarks.
CREATE TABLE bookmarks (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id text NOT NULL,
    url text NOT NULL CHECK (url ~ '^https?://'),
    title text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX bookmarks_user_url_idx ON bookmarks (user_id, url);
COMMENT ON TABLE bookmarks IS 'Links users keep; one row per user and URL.';
