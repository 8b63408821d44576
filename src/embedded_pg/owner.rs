//! The owner role the application logs in as. It owns the application database, which it
//! creates itself (CREATEDB), but it is no superuser: a leaked application password or an
//! injected statement cannot read server files, run programs or read the server's
//! environment. It cannot create roles either: in PostgreSQL 15 a CREATEROLE role can grant
//! itself `pg_execute_server_program`.
//!
//! Clusters created by older builds have only the superuser and an application database it
//! owns; both are brought to this layout at start.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::Client;
use tracing::info;

use super::initdb::{generate_password, read_secret, write_private};
use super::{EmbeddedError, SUPERUSER};
use crate::db::provision::quote_identifier;

/// Name of the owner role.
pub const OWNER: &str = "deploystack";
/// File under the cluster's root holding the owner's password.
pub const OWNER_PASSWORD_FILE: &str = "owner.password";

/// Creates the owner role, or resets its attributes and password to the stored ones, so the
/// password file is always the truth; a missing file gets a new password. Returns it.
pub async fn ensure_owner_role(admin: &Client, root: &Path) -> Result<SecretString, EmbeddedError> {
    let file = root.join(OWNER_PASSWORD_FILE);
    let stored = read_secret(&file)?;
    let password = stored.clone().unwrap_or_else(generate_password);
    let exists = admin
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&OWNER])
        .await
        .map_err(EmbeddedError::sql("cannot look up the owner role"))?
        .is_some();
    // Only a SCRAM verifier goes into the statement: PostgreSQL logs statements that fail.
    let verifier = postgres_protocol::password::scram_sha_256(password.expose_secret().as_bytes());
    let statement = format!(
        "{} ROLE {} WITH LOGIN CREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '{}'",
        if exists { "ALTER" } else { "CREATE" },
        quote_identifier(OWNER),
        verifier.replace('\'', "''")
    );
    admin
        .batch_execute(&statement)
        .await
        .map_err(EmbeddedError::sql("cannot set up the owner role"))?;
    // Written after the role has it: a crash in between only means a new password next time.
    if stored.is_none() {
        write_private(&file, password.expose_secret().as_bytes(), 0o600)?;
    }
    if !exists {
        info!(
            role = OWNER,
            "created the owner role of the embedded PostgreSQL"
        );
    }
    Ok(password)
}

/// Databases every cluster has besides the application's, to which PostgreSQL lets every role
/// connect by default.
const OTHER_DATABASES: &str = "postgres, template1";

/// Only the owner role (and the superuser) may connect to the cluster's other databases: a
/// plugin role, which may log in while its migrations run, has no business there.
pub async fn confine_connect(admin: &Client) -> Result<(), EmbeddedError> {
    let owner = quote_identifier(OWNER);
    admin
        .batch_execute(&format!(
            "GRANT CONNECT ON DATABASE {OTHER_DATABASES} TO {owner}; \
             REVOKE CONNECT ON DATABASE {OTHER_DATABASES} FROM PUBLIC"
        ))
        .await
        .map_err(EmbeddedError::sql(
            "cannot restrict connections to the maintenance databases",
        ))
}

/// `ALTER ... OWNER TO` statements for everything the superuser owns in the database's own
/// schemas: schemas, relations (indexes and linked sequences follow their table), free
/// sequences, routines and types. Objects of extensions are left to their extension.
/// `REASSIGN OWNED BY postgres` is refused for the bootstrap superuser, hence the list.
const SUPERUSER_OBJECTS: &str = r"
WITH su AS (SELECT oid FROM pg_roles WHERE rolname = $2::text),
ns AS (
    SELECT n.oid, n.nspname, n.nspowner FROM pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
),
ext AS (SELECT objid FROM pg_depend WHERE deptype = 'e')
SELECT 1 AS step, format('ALTER SCHEMA %I OWNER TO %I', ns.nspname, $1::text) AS statement
  FROM ns WHERE ns.nspowner = (SELECT oid FROM su)
UNION ALL
SELECT 2, format('ALTER %s %I.%I OWNER TO %I',
        CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                       WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
        ns.nspname, c.relname, $1::text)
  FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
 WHERE c.relowner = (SELECT oid FROM su) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND c.oid NOT IN (SELECT objid FROM ext)
UNION ALL
SELECT 3, format('ALTER SEQUENCE %I.%I OWNER TO %I', ns.nspname, c.relname, $1::text)
  FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
 WHERE c.relowner = (SELECT oid FROM su) AND c.relkind = 'S'
   AND c.oid NOT IN (SELECT objid FROM ext)
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
UNION ALL
SELECT 4, format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $1::text)
  FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
 WHERE p.proowner = (SELECT oid FROM su) AND p.oid NOT IN (SELECT objid FROM ext)
UNION ALL
SELECT 5, format('ALTER %s %I.%I OWNER TO %I',
        CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, ns.nspname, t.typname, $1::text)
  FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
 WHERE t.typowner = (SELECT oid FROM su) AND t.oid NOT IN (SELECT objid FROM ext)
   AND (t.typtype IN ('e', 'd', 'r')
        OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
ORDER BY 1, 2";

/// Gives `database` (reached through `client`, a superuser session on it) and the objects
/// the superuser owns in it to the owner role, in one transaction. Cheap and a no-op when
/// nothing is left to hand over, so it runs at every start; objects a superuser created
/// later (a `diesel migration run` with superuser credentials) are handed over too.
pub async fn hand_over_database(
    client: &mut Client,
    database: &str,
    database_owner: &str,
) -> Result<(), EmbeddedError> {
    let context = || format!("cannot hand database \"{database}\" to the role {OWNER}");
    let statements: Vec<String> = client
        .query(SUPERUSER_OBJECTS, &[&OWNER, &SUPERUSER])
        .await
        .map_err(EmbeddedError::sql(context()))?
        .iter()
        .map(|row| row.get("statement"))
        .collect();
    let alter_database = database_owner == SUPERUSER;
    if statements.is_empty() && !alter_database {
        return Ok(());
    }
    let tx = client
        .transaction()
        .await
        .map_err(EmbeddedError::sql(context()))?;
    for statement in &statements {
        tx.batch_execute(statement)
            .await
            .map_err(EmbeddedError::sql(context()))?;
    }
    if alter_database {
        let statement = format!(
            "ALTER DATABASE {} OWNER TO {}",
            quote_identifier(database),
            quote_identifier(OWNER)
        );
        tx.batch_execute(&statement)
            .await
            .map_err(EmbeddedError::sql(context()))?;
    }
    tx.commit().await.map_err(EmbeddedError::sql(context()))?;
    info!(
        database,
        objects = statements.len(),
        previous_owner = database_owner,
        "handed the database to the owner role"
    );
    Ok(())
}
