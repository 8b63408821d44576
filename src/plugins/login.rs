//! A plugin's own login, for its migrations. PostgreSQL decides `SET ROLE`, `RESET ROLE`,
//! `set_config('role', …)` and `SET SESSION AUTHORIZATION` by the session's *login* role, so
//! SQL that runs on a session logged in as the plugin's role has nothing to go back to: that
//! login, not a check of the SQL, is the boundary. (`SET SESSION AUTHORIZATION` on a
//! superuser's session would not do: PostgreSQL lets a session whose login is a superuser
//! switch back.)
//!
//! The role may log in only while its migrations run: `LOGIN` with a random password, set
//! afresh (as a SCRAM verifier, so the password itself never reaches the server or its log)
//! by whoever provisions roles right before the login; `NOLOGIN` without a password again
//! right after, and every other session of the role ended. A plugin's SQL may change its own
//! role's password (PostgreSQL lets any role do that) and open a session of its own while
//! its migrations run; that session is ended with them, and no later login is possible.
//! Roles are shared by every database of a server, so another database's backend may reset
//! the role between our reset and our login: the login is simply tried again.

use std::time::Duration;

use diesel::sql_types::Integer;
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use secrecy::{ExposeSecret, SecretString};
use tracing::{debug, warn};

use super::error::{is_transport_failure, PluginError};
use super::id::PluginId;
use super::provision::RoleLimits;
use crate::db::connector::ConnectError;
use crate::db::provision::quote_identifier;
use crate::db::{DbError, PgConnector};
use crate::embedded_pg::generate_password;

/// Logins tried before giving up (another process resetting the password, the role's
/// connection limit reached by concurrent starts on other databases).
const ATTEMPTS: u32 = 8;

/// Opens and closes plugins' own sessions for one migration run.
pub struct Logins<'a> {
    /// The administrative session that manages roles, when the application's may not.
    admin: Option<AsyncPgConnection>,
    /// The application's connector: same server, database and TLS settings.
    app: &'a PgConnector,
    limits: RoleLimits,
}

/// A session logged in as a plugin's role.
pub struct PluginSession {
    /// The connection.
    pub conn: AsyncPgConnection,
    /// Its server process, to end it from outside.
    pub pid: i32,
    role: String,
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

impl<'a> Logins<'a> {
    /// Logins through `app`'s server with the passwords set on `admin` (or, when `None`, on
    /// the core's own session, which may manage roles).
    pub fn new(admin: Option<AsyncPgConnection>, app: &'a PgConnector, limits: RoleLimits) -> Self {
        Self { admin, app, limits }
    }

    /// The statement timeout of plugin sessions, past which (plus a grace period) a session
    /// is ended from outside.
    pub fn statement_limit(&self) -> Duration {
        self.limits.statement_timeout
    }

    /// Sets a fresh password on the plugin's role and logs in as it.
    pub async fn open(
        &mut self,
        core: &mut AsyncPgConnection,
        id: &PluginId,
    ) -> Result<PluginSession, PluginError> {
        let role = id.schema();
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let password = generate_password();
            set_login(self.authority(core), &role, Some(&password))
                .await
                .map_err(|e| password_error(id, &role, e))?;
            let connector = self
                .app
                .as_login(&role, &password, self.limits.statement_timeout);
            match connector.connect_plain().await {
                Ok(conn) => return self.prepare(conn, role).await,
                Err(e @ ConnectError::DatabaseMissing(_)) => {
                    return Err(PluginError::Db(DbError::Unavailable(e.to_string())))
                }
                Err(e) => {
                    debug!(role, attempt, error = %e, "plugin login refused; trying again");
                    last = Some(e);
                }
            }
        }
        Err(match last {
            Some(ConnectError::Rejected { detail, .. }) => PluginError::Login {
                plugin: id.to_string(),
                role,
                detail,
            },
            Some(e) => PluginError::Db(DbError::Unavailable(e.to_string())),
            None => PluginError::Db(DbError::Unavailable("no login attempt made".into())),
        })
    }

    /// Closes the session, takes the role's login away (`NOLOGIN`, no password) and ends
    /// every other session of the role, so nothing the migrations did outlives them.
    pub async fn close(
        &mut self,
        core: &mut AsyncPgConnection,
        session: PluginSession,
    ) -> Result<(), PluginError> {
        let PluginSession { conn, role, .. } = session;
        drop(conn);
        self.lock_out(core, &role).await
    }

    /// Ends the session's server process from outside: for a statement that outlived its
    /// timeout (a plugin's SQL can lift `statement_timeout`, or catch the cancellation in
    /// PL/pgSQL; termination it cannot catch). Then as [`Logins::close`].
    pub async fn terminate(&mut self, core: &mut AsyncPgConnection, session: PluginSession) {
        let PluginSession { conn, pid, role } = session;
        let ended = diesel::sql_query("SELECT pg_terminate_backend($1)")
            .bind::<Integer, _>(pid)
            .execute(self.authority(core))
            .await;
        if let Err(e) = ended {
            warn!(role, pid, error = %e, "cannot end a plugin session that outlived its statement timeout");
        }
        drop(conn);
        if let Err(e) = self.lock_out(core, &role).await {
            warn!(role, error = %e, "cannot take a plugin role's login away");
        }
    }

    /// `NOLOGIN` and no password for `role`, then every session of it in this database ended
    /// (one opened by the plugin's own SQL while its migrations ran, with a password it set
    /// itself). Sessions in other databases are left alone: there the same plugin may be
    /// migrating another deployment right now, and the role holds nothing here from there.
    async fn lock_out(
        &mut self,
        core: &mut AsyncPgConnection,
        role: &str,
    ) -> Result<(), PluginError> {
        set_login(self.authority(core), role, None).await?;
        diesel::sql_query(
            "SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity \
             WHERE usename = $1 AND datname = pg_catalog.current_database() \
             AND pid <> pg_catalog.pg_backend_pid()",
        )
        .bind::<diesel::sql_types::Text, _>(role)
        .execute(self.authority(core))
        .await?;
        Ok(())
    }

    async fn prepare(
        &self,
        mut conn: AsyncPgConnection,
        role: String,
    ) -> Result<PluginSession, PluginError> {
        conn.batch_execute(&format!(
            "SET lock_timeout = {}",
            self.limits.lock_timeout.as_millis()
        ))
        .await?;
        let Pid { pid } = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result(&mut conn)
            .await?;
        Ok(PluginSession { conn, pid, role })
    }

    fn authority<'c>(&'c mut self, core: &'c mut AsyncPgConnection) -> &'c mut AsyncPgConnection {
        match self.admin.as_mut() {
            Some(admin) => admin,
            None => core,
        }
    }
}

/// Lets `role` log in with `password` (sending only its SCRAM verifier), or with `None`
/// takes its login and password away. Roles are server-wide: another database's backend
/// changing the same role at the same moment makes PostgreSQL refuse one of the two ("tuple
/// concurrently updated"), so a refusal is tried again a few times before it counts.
async fn set_login(
    conn: &mut AsyncPgConnection,
    role: &str,
    password: Option<&SecretString>,
) -> diesel::QueryResult<()> {
    let login = match password {
        Some(p) => format!(
            "LOGIN PASSWORD '{}'",
            postgres_protocol::password::scram_sha_256(p.expose_secret().as_bytes())
                .replace('\'', "''")
        ),
        None => "NOLOGIN PASSWORD NULL".to_owned(),
    };
    let statement = format!("ALTER ROLE {} WITH {login}", quote_identifier(role));
    let mut attempt = 0;
    loop {
        match conn.batch_execute(&statement).await {
            Err(e) if attempt + 1 < ATTEMPTS && !is_transport_failure(&e) => {
                debug!(role, attempt, error = %e, "plugin role password change raced; trying again");
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
            outcome => return outcome,
        }
    }
}

fn password_error(id: &PluginId, role: &str, e: diesel::result::Error) -> PluginError {
    if is_transport_failure(&e) {
        PluginError::Query(e)
    } else {
        PluginError::Password {
            plugin: id.to_string(),
            role: role.to_owned(),
            detail: e.to_string(),
        }
    }
}

/// 50 ms, doubling, at most 800 ms, with up to half of it again at random: concurrent starts
/// on other databases of the same server fall out of step.
fn backoff(attempt: u32) -> Duration {
    let base = 50u64 << attempt.min(4);
    Duration::from_millis(base + rand::random_range(0..=base / 2))
}
