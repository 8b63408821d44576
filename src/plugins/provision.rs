//! Creates what plugins live in: for each plugin a role and a schema owned by it, with read
//! access to the `plugin_api` views. The role has no attribute and a small connection limit;
//! it may log in only while its migrations run, on a session logged in as it (see
//! [`super::login`]): PostgreSQL then decides every `SET ROLE` or `SET SESSION
//! AUTHORIZATION` by that login, which has nothing to go back to. The application's role is
//! a member of each plugin role so compiled plugins' handles can act as it, and so it can end
//! a plugin session that outlives its statement timeout.
//!
//! Roles are created by the application's own role when it may (superuser or CREATEROLE),
//! or through a separate administrative connection (the embedded cluster's superuser, which
//! the application itself never uses). Where neither is possible, plugins load only if the
//! operator accepted isolation by naming, in which case their SQL runs with the core's
//! rights. Every step is idempotent: it runs at setup and at every start.

use std::time::Duration;

use diesel::sql_types::{Bool, Text};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use tracing::{debug, info, warn};

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
    /// `statement_timeout` and `lock_timeout` given to each plugin role.
    pub limits: RoleLimits,
}

/// The session limits a plugin role gets as its defaults.
#[derive(Debug, Clone, Copy)]
pub struct RoleLimits {
    /// `statement_timeout`.
    pub statement_timeout: Duration,
    /// `lock_timeout`.
    pub lock_timeout: Duration,
}

/// Sessions a plugin role may hold at once: its migrations need one; a few more let
/// concurrent starts of other databases on the same server (roles are server-wide) through.
pub const CONNECTION_LIMIT: u32 = 4;

/// The comment that marks a login role as one DeployStack made for a plugin. Roles are
/// server-wide: a login role of a plugin's name without it belongs to someone else.
pub const ROLE_MARK: &str = "DeployStack plugin role: logs in only for its plugin's migrations";

/// What provisioning decided, and the administrative session it used (kept for the plugins'
/// logins, whose passwords it sets).
pub struct Provisioned {
    /// The isolation mode in force.
    pub mode: IsolationMode,
    /// The administrative session, when the application's role may not manage roles itself.
    pub admin: Option<AsyncPgConnection>,
}

#[derive(QueryableByName)]
struct Me {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Bool)]
    may_create_roles: bool,
    #[diesel(sql_type = Bool)]
    owns_database: bool,
}

/// Decides the isolation mode and prepares the role and schema of every plugin in `ids`,
/// through `app` (the application's connection).
pub async fn provision(
    app: &mut AsyncPgConnection,
    ids: &[PluginId],
    authority: &RoleAuthority<'_>,
) -> Result<Provisioned, PluginError> {
    let me: Me = diesel::sql_query(
        "SELECT current_user::text AS name, (rolsuper OR rolcreaterole) AS may_create_roles, \
                (rolsuper OR (SELECT datdba FROM pg_database WHERE datname = current_database()) = oid) \
                  AS owns_database \
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
    let mut admin_conn = None;
    if mode == IsolationMode::Roles {
        if let Some(admin) = authority.admin.filter(|_| !me.may_create_roles) {
            admin_conn = Some(admin.connect().await.map_err(|e| {
                PluginError::Db(crate::db::DbError::Unavailable(format!(
                    "cannot connect to create plugin roles: {e}"
                )))
            })?);
        }
        for id in ids {
            let role = id.schema();
            match admin_conn.as_mut() {
                Some(conn) => ensure_role(conn, &role, &me.name, authority.limits).await?,
                None => ensure_role(app, &role, &me.name, authority.limits).await?,
            }
        }
        if me.owns_database {
            confine_temporary(app, &me.name).await?;
        }
    } else {
        warn!(
            role = %me.name,
            "PLUGINS ARE NOT ISOLATED: the database role may not create roles and PLUGIN_ALLOW_CONVENTION_ISOLATION=true accepts that, so every plugin's SQL (folder plugins' migrations included) runs with the core's rights and can read or change any core table"
        );
    }
    for id in ids {
        ensure_schema(app, &me.name, &id.schema(), mode).await?;
    }
    Ok(Provisioned {
        mode,
        admin: admin_conn,
    })
}

/// Only the roles that need it may create temporary tables in this database (PostgreSQL
/// grants `TEMPORARY` to everyone by default): the application's role keeps it, plugin roles
/// do not get it. Done when the application's role owns the database (or is a superuser).
async fn confine_temporary(app: &mut AsyncPgConnection, me: &str) -> Result<(), PluginError> {
    #[derive(QueryableByName)]
    struct Database {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Bool)]
        public_temp: bool,
    }
    let db: Database = diesel::sql_query(
        "SELECT current_database()::text AS name, \
                has_database_privilege('public', current_database(), 'TEMPORARY') AS public_temp",
    )
    .get_result(app)
    .await?;
    if db.public_temp {
        let name = quote_identifier(&db.name);
        app.batch_execute(&format!(
            "GRANT TEMPORARY ON DATABASE {name} TO {}; REVOKE TEMPORARY ON DATABASE {name} FROM PUBLIC",
            quote_identifier(me)
        ))
        .await?;
        info!(database = %db.name, "temporary tables are now for the application's role only");
    }
    Ok(())
}

#[derive(QueryableByName)]
struct RoleRow {
    #[diesel(sql_type = Bool)]
    privileged: bool,
    #[diesel(sql_type = Bool)]
    marked: bool,
    #[diesel(sql_type = Bool)]
    can_login: bool,
    #[diesel(sql_type = Bool)]
    member: bool,
    #[diesel(sql_type = Bool)]
    set_option: bool,
}

/// Creates `role` when missing (no attribute, marked as ours, `NOLOGIN` between runs), makes
/// `member` a member of it and gives it its session limits. A role of that name with
/// administrative attributes or memberships of its own, or a login role we did not mark, was
/// not made by us: refused. A `NOLOGIN` role of an older build is brought to this form.
async fn ensure_role(
    conn: &mut AsyncPgConnection,
    role: &str,
    member: &str,
    limits: RoleLimits,
) -> Result<(), PluginError> {
    let name = quote_identifier(role);
    let mark = ROLE_MARK.replace('\'', "''");
    // Roles are shared by every database of the server: another database's backend may be
    // creating the same role right now, so a failed step is looked at again.
    for attempt in 0..6 {
        // From PostgreSQL 16 on, a membership must carry the SET option for `SET ROLE`, and a
        // role created by a CREATEROLE role is granted to its creator without it.
        let row: Option<RoleRow> = diesel::sql_query(
            "SELECT (r.rolsuper OR r.rolcreaterole OR r.rolcreatedb \
                     OR r.rolreplication OR r.rolbypassrls \
                     OR EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid)) AS privileged, \
                    coalesce(shobj_description(r.oid, 'pg_authid') = $3, false) AS marked, \
                    r.rolcanlogin AS can_login, \
                    pg_has_role($2, r.oid, CASE WHEN current_setting('server_version_num')::int >= 160000 \
                                                THEN 'SET' ELSE 'MEMBER' END) AS member, \
                    current_setting('server_version_num')::int >= 160000 AS set_option \
             FROM pg_roles r WHERE r.rolname = $1",
        )
        .bind::<Text, _>(role)
        .bind::<Text, _>(member)
        .bind::<Text, _>(ROLE_MARK)
        .get_result(conn)
        .await
        .optional()?;
        let step = match row {
            // Attributes or memberships of its own, or a login someone else made: not ours.
            Some(RoleRow {
                privileged: true, ..
            })
            | Some(RoleRow {
                can_login: true,
                marked: false,
                ..
            }) => {
                return Err(PluginError::ForeignRole {
                    role: role.to_owned(),
                })
            }
            Some(RoleRow {
                marked: false,
                can_login: false,
                ..
            }) => format!(
                "ALTER ROLE {name} WITH NOLOGIN CONNECTION LIMIT {CONNECTION_LIMIT} PASSWORD NULL; \
                 COMMENT ON ROLE {name} IS '{mark}'"
            ),
            Some(RoleRow {
                member: false,
                set_option,
                ..
            }) => format!(
                "GRANT {name} TO {}{}",
                quote_identifier(member),
                if set_option {
                    " WITH INHERIT TRUE, SET TRUE"
                } else {
                    ""
                }
            ),
            Some(_) => {
                // Between migration runs the role cannot log in at all (see `login`).
                let limits = format!(
                    "ALTER ROLE {name} WITH NOLOGIN CONNECTION LIMIT {CONNECTION_LIMIT} PASSWORD NULL; \
                     ALTER ROLE {name} SET statement_timeout = {}; \
                     ALTER ROLE {name} SET lock_timeout = {}; \
                     ALTER ROLE {name} SET idle_in_transaction_session_timeout = {}",
                    limits.statement_timeout.as_millis(),
                    limits.lock_timeout.as_millis(),
                    limits.statement_timeout.as_millis(),
                );
                match conn.batch_execute(&limits).await {
                    Ok(()) => return Ok(()),
                    Err(e) if attempt < 5 => {
                        warn!(role, error = %e, "plugin role change raced with another process; looking again");
                        step_back().await;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            None => format!(
                "CREATE ROLE {name} WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
                   NOBYPASSRLS CONNECTION LIMIT {CONNECTION_LIMIT} PASSWORD NULL; \
                 COMMENT ON ROLE {name} IS '{mark}'"
            ),
        };
        match conn.batch_execute(&step).await {
            Ok(()) if step.starts_with("CREATE") => info!(role, "created a plugin role"),
            Ok(()) => debug!(role, step = %step, "plugin role brought up to date"),
            Err(e) if attempt < 5 => {
                warn!(role, error = %e, "plugin role change raced with another process; looking again");
                step_back().await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(PluginError::Db(crate::db::DbError::Unavailable(format!(
        "the role {role} kept changing while it was being set up; retrying"
    ))))
}

/// A short random pause, so two processes that raced on one role fall out of step.
async fn step_back() {
    tokio::time::sleep(Duration::from_millis(10 + rand::random_range(0..50))).await;
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
            // Its migrations are recorded from its own session, in their transaction; the
            // table's row security lets a plugin role add rows of its own plugin only.
            app.batch_execute(&format!(
                "GRANT USAGE ON SCHEMA plugin_api TO {name}; \
                 GRANT SELECT ON ALL TABLES IN SCHEMA plugin_api TO {name}; \
                 GRANT INSERT ON public.__plugin_migrations TO {name}"
            ))
            .await?;
        }
    }
    Ok(())
}
