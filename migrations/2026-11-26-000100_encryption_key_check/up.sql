-- Which encryption secret this database's encrypted values belong to: one row holding a
-- fixed text encrypted with the key (upstream's format). A server decrypts it at every start
-- and refuses to serve encrypted settings with another key, instead of failing later.
CREATE TABLE encryption_key_check (
    id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    check_value text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
SELECT diesel_manage_updated_at('encryption_key_check');
