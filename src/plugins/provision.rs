//! Creates what plugins live in: for each plugin a role (`NOLOGIN`, no attributes) that the
//! application's role is a member of, so it can act as the plugin, and a schema owned by that
//! role, with read access to the `plugin_api` views. Roles are created by the application's
//! own role when it may (superuser or CREATEROLE), or through a separate administrative
//! connection (the embedded cluster's superuser, which the application itself never uses).
//! Where neither is possible, plugins load only if the operator accepted isolation by naming.
//! Every step is idempotent: it runs at setup and at every start.

use diesel::sql_types::{Bool, Text};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use tracing::{info, warn};

use super::error::PluginError;
use super::id::PluginId;
use super::mode::IsolationMode;
use crate::db::provision::quote_identifier;
use crate::db::PgConnector;

/// How roles may be created.
pub struct RoleAuthority<'a> {
    /// A connection that may create roles, when the application's own may not.
    pub admin: Option<&'a PgConnector>,
    /// Accept isolation by naming only when no role can be created.
    pub allow_convention: bool,
}

#[derive(QueryableByName)]
struct Me {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Bool)]
    may_create_roles: bool,
}

/// Decides the isolation mode and prepares the role and schema of every plugin in `ids`,
/// through `app` (the application's connection).
pub async fn provision(
    app: &mut AsyncPgConnection,
    ids: &[PluginId],
    authority: &RoleAuthority<'_>,
) -> Result<IsolationMode, PluginError> {
    let me: Me = diesel::sql_query(
        "SELECT current_user::text AS name, (rolsuper OR rolcreaterole) AS may_create_roles \
         FROM pg_roles WHERE rolname = current_user",
    )
    .get_result(app)
    .await?;
    let mode = if me.may_create_roles || authority.admin.is_some() {
        IsolationMode::Roles
    } else if authority.allow_convention {
        IsolationMode::Convention
    } else {
        return Err(PluginError::RolesUnavailable { role: me.name });
    };
    if mode == IsolationMode::Roles {
        let mut admin_conn = match authority.admin {
            Some(admin) if !me.may_create_roles => Some(admin.connect().await.map_err(|e| {
                PluginError::Db(crate::db::DbError::Unavailable(format!(
                    "cannot connect to create plugin roles: {e}"
                )))
            })?),
            _ => None,
        };
        for id in ids {
            let role = id.schema();
            match admin_conn.as_mut() {
                Some(conn) => ensure_role(conn, &role, &me.name).await?,
                None => ensure_role(app, &role, &me.name).await?,
            }
        }
    } else {
        warn!(
            role = %me.name,
            "plugins are isolated by naming only: the database role may not create roles, and PLUGIN_ALLOW_CONVENTION_ISOLATION=true accepts that; plugin queries run with the core's rights"
        );
    }
    for id in ids {
        ensure_schema(app, &me.name, &id.schema(), mode).await?;
    }
    Ok(mode)
}

#[derive(QueryableByName)]
struct RoleRow {
    #[diesel(sql_type = Bool)]
    privileged: bool,
    #[diesel(sql_type = Bool)]
    member: bool,
    #[diesel(sql_type = Bool)]
    set_option: bool,
}

/// Creates `role` when missing and makes `member` a member of it. A role of that name with
/// login or administrative attributes was not made by us: refused.
async fn ensure_role(
    conn: &mut AsyncPgConnection,
    role: &str,
    member: &str,
) -> Result<(), PluginError> {
    // Roles are shared by every database of the server: another database's backend may be
    // creating the same role right now, so a failed step is looked at again.
    for attempt in 0..4 {
        // From PostgreSQL 16 on, a membership must carry the SET option for `SET ROLE`, and a
        // role created by a CREATEROLE role is granted to its creator without it.
        let row: Option<RoleRow> = diesel::sql_query(
            "SELECT (r.rolsuper OR r.rolcanlogin OR r.rolcreaterole OR r.rolcreatedb \
                     OR r.rolreplication OR r.rolbypassrls \
                     OR EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid)) AS privileged, \
                    pg_has_role($2, r.oid, CASE WHEN current_setting('server_version_num')::int >= 160000 \
                                                THEN 'SET' ELSE 'MEMBER' END) AS member, \
                    current_setting('server_version_num')::int >= 160000 AS set_option \
             FROM pg_roles r WHERE r.rolname = $1",
        )
        .bind::<Text, _>(role)
        .bind::<Text, _>(member)
        .get_result(conn)
        .await
        .optional()?;
        let step = match row {
            // Login, attributes, or memberships of its own: not a role we made.
            Some(RoleRow {
                privileged: true, ..
            }) => {
                return Err(PluginError::ForeignRole {
                    role: role.to_owned(),
                })
            }
            Some(RoleRow { member: true, .. }) => return Ok(()),
            Some(RoleRow { set_option, .. }) => format!(
                "GRANT {} TO {}{}",
                quote_identifier(role),
                quote_identifier(member),
                if set_option {
                    " WITH INHERIT TRUE, SET TRUE"
                } else {
                    ""
                }
            ),
            None => format!(
                "CREATE ROLE {} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
                quote_identifier(role)
            ),
        };
        match conn.batch_execute(&step).await {
            Ok(()) if step.starts_with("CREATE") => info!(role, "created a plugin role"),
            Ok(()) => {}
            Err(e) if attempt < 3 => {
                warn!(role, error = %e, "plugin role change raced with another process; looking again");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(PluginError::Db(crate::db::DbError::Unavailable(format!(
        "the role {role} kept changing while it was being set up; retrying"
    ))))
}

#[derive(QueryableByName)]
struct Owner {
    #[diesel(sql_type = Text)]
    owner: String,
}

/// The role owning `schema`, if it exists.
pub async fn schema_owner(
    conn: &mut AsyncPgConnection,
    schema: &str,
) -> Result<Option<String>, PluginError> {
    let owner: Option<Owner> = diesel::sql_query(
        "SELECT r.rolname::text AS owner FROM pg_namespace n \
         JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = $1",
    )
    .bind::<Text, _>(schema)
    .get_result(conn)
    .await
    .optional()?;
    Ok(owner.map(|o| o.owner))
}

#[derive(QueryableByName)]
struct Statement {
    #[diesel(sql_type = Text)]
    statement: String,
}

/// Objects of `schema` owned by another role than the plugin's (a schema first made in
/// convention mode), with the statement that hands each to the plugin's role.
const HAND_OVER: &str = r"
SELECT format('ALTER %s %I.%I OWNER TO %I',
        CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                       WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
        n.nspname, c.relname, $1::text) AS statement
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
   AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = $1)
   AND NOT (c.relkind = 'S' AND EXISTS (
        SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
UNION ALL
SELECT format('ALTER %s %I.%I OWNER TO %I',
        CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, n.nspname, t.typname, $1::text)
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = $1 AND t.typowner <> (SELECT oid FROM pg_roles WHERE rolname = $1)
   AND (t.typtype IN ('e', 'd', 'r')
        OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))";

/// Creates the plugin's schema (owned by its role in [`IsolationMode::Roles`], by the
/// application's role otherwise) and, with roles, grants it the `plugin_api` views.
async fn ensure_schema(
    app: &mut AsyncPgConnection,
    app_role: &str,
    schema: &str,
    mode: IsolationMode,
) -> Result<(), PluginError> {
    let name = quote_identifier(schema);
    let owner = schema_owner(app, schema).await?;
    // Only a schema this backend made is used (or handed to the plugin's role).
    if let Some(owner) = owner.as_deref().filter(|o| *o != schema && *o != app_role) {
        return Err(PluginError::ForeignSchema {
            schema: schema.to_owned(),
            owner: owner.to_owned(),
        });
    }
    match mode {
        IsolationMode::Convention => {
            if owner.is_none() {
                app.batch_execute(&format!("CREATE SCHEMA {name}")).await?;
            }
        }
        IsolationMode::Roles => {
            match owner {
                None => {
                    app.batch_execute(&format!("CREATE SCHEMA {name} AUTHORIZATION {name}"))
                        .await?;
                }
                Some(o) if o != schema => {
                    app.batch_execute(&format!("ALTER SCHEMA {name} OWNER TO {name}"))
                        .await?;
                }
                Some(_) => {}
            }
            let statements: Vec<Statement> = diesel::sql_query(HAND_OVER)
                .bind::<Text, _>(schema)
                .load(app)
                .await?;
            for s in &statements {
                app.batch_execute(&s.statement).await?;
            }
            if !statements.is_empty() {
                info!(
                    schema,
                    objects = statements.len(),
                    "handed the plugin's objects to its role"
                );
            }
            app.batch_execute(&format!(
                "GRANT USAGE ON SCHEMA plugin_api TO {name}; \
                 GRANT SELECT ON ALL TABLES IN SCHEMA plugin_api TO {name}"
            ))
            .await?;
        }
    }
    Ok(())
}
