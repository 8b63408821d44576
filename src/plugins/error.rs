//! Why plugins could not be loaded, provisioned or migrated. Every message names the plugin
//! (and the migration or statement) so an operator knows what to fix.

use crate::db::DbError;

/// A plugin problem.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// An id outside `^[a-z][a-z0-9-]{1,40}$`.
    #[error("invalid plugin id {0:?}: ids are 2 to 41 characters of a-z, 0-9 and '-', starting with a letter")]
    InvalidId(String),
    /// An id the core keeps for itself.
    #[error("plugin id {0:?} is reserved: its schema would be the core's plugin_api")]
    ReservedId(String),
    /// Two plugins with one id (or one schema name).
    #[error("two plugins use the id {0:?}")]
    DuplicateId(String),
    /// A folder plugin's manifest or migration file is unusable.
    #[error("plugin folder {folder}: {detail}")]
    Folder {
        /// The plugin's folder.
        folder: String,
        /// What is wrong.
        detail: String,
    },
    /// The plugin declares something the core refuses (a colliding setting, a route outside
    /// its prefix, a job type of another namespace, a bad migration version).
    #[error("plugin {plugin}: {detail}")]
    Registration {
        /// Plugin id.
        plugin: String,
        /// What is wrong.
        detail: String,
    },
    /// The static check refused a migration statement before anything ran.
    #[error("plugin {plugin}, migration {migration}, statement {statement}: {detail}: {text}")]
    Refused {
        /// Plugin id.
        plugin: String,
        /// `<version>_<name>`.
        migration: String,
        /// 1-based position of the statement in the migration.
        statement: usize,
        /// Why.
        detail: String,
        /// The statement's start, for recognition.
        text: String,
    },
    /// An applied migration's SQL changed since it was applied.
    #[error("plugin {plugin}: migration {migration} was applied with checksum {applied} but its SQL now has checksum {current}; applied migrations must not change: add a new migration instead")]
    ChecksumChanged {
        /// Plugin id.
        plugin: String,
        /// `<version>_<name>`.
        migration: String,
        /// Recorded checksum.
        applied: String,
        /// Checksum of the SQL as shipped now.
        current: String,
    },
    /// A pending migration's version is below one already applied.
    #[error("plugin {plugin}: migration {migration} is not applied but {latest} is; a new migration needs a higher version")]
    OutOfOrder {
        /// Plugin id.
        plugin: String,
        /// The pending migration.
        migration: String,
        /// The highest applied one.
        latest: String,
    },
    /// PostgreSQL refused a migration statement; the migration was rolled back.
    #[error("plugin {plugin}, migration {migration}, statement {statement}: PostgreSQL refused it: {detail}")]
    MigrationFailed {
        /// Plugin id.
        plugin: String,
        /// `<version>_<name>`.
        migration: String,
        /// 1-based position of the statement.
        statement: usize,
        /// PostgreSQL's message.
        detail: String,
    },
    /// Roles cannot be created and convention-only isolation was not accepted.
    #[error("plugins need PostgreSQL roles of their own, but the database role {role:?} may not create roles; grant it CREATEROLE (safe from PostgreSQL 16 on), or set PLUGIN_ALLOW_CONVENTION_ISOLATION=true to load plugins isolated by naming only")]
    RolesUnavailable {
        /// The application's database role.
        role: String,
    },
    /// A role named like a plugin role exists with more rights than a plugin role has, or
    /// can log in without DeployStack's mark.
    #[error("the role {role:?} exists but can log in or holds administrative attributes; DeployStack did not create it and will not act as it: rename or drop it")]
    ForeignRole {
        /// The role.
        role: String,
    },
    /// The plugin's schema exists but belongs to a role that is neither the application's
    /// nor the plugin's.
    #[error("the schema {schema:?} exists and belongs to the role {owner:?}, not to DeployStack: rename or drop it")]
    ForeignSchema {
        /// The schema.
        schema: String,
        /// Its owner.
        owner: String,
    },
    /// A migration's statements ended the transaction it runs in (`COMMIT`, `ROLLBACK`):
    /// what ran before that may have stayed, nothing after it is recorded.
    #[error("plugin {plugin}, migration {migration}, statement {statement}: it ended the migration's transaction; a migration must not commit or roll back itself")]
    LeftTransaction {
        /// Plugin id.
        plugin: String,
        /// `<version>_<name>`.
        migration: String,
        /// 1-based position of the statement.
        statement: usize,
    },
    /// A statement ran past the plugin statement timeout (plus a grace period) and its
    /// session was ended from outside; the migration was rolled back.
    #[error("plugin {plugin}, migration {migration}, statement {statement}: still running after {limit_ms} ms (PLUGIN_STATEMENT_TIMEOUT_MS); its session was ended and the migration rolled back")]
    Overran {
        /// Plugin id.
        plugin: String,
        /// `<version>_<name>`.
        migration: String,
        /// 1-based position of the statement.
        statement: usize,
        /// The limit that passed, in milliseconds.
        limit_ms: u128,
    },
    /// The password of a plugin's role could not be set, so its migrations cannot log in.
    #[error("plugin {plugin}: cannot set the password of its role {role:?}: {detail}")]
    Password {
        /// Plugin id.
        plugin: String,
        /// The role.
        role: String,
        /// PostgreSQL's message.
        detail: String,
    },
    /// PostgreSQL refused the plugin role's login (e.g. `pg_hba.conf` allows no password
    /// login for it from this host).
    #[error("plugin {plugin}: PostgreSQL refused the login of its role {role:?}, which its migrations run as: {detail}; allow password (scram-sha-256) logins of that role to the application database from this host in pg_hba.conf")]
    Login {
        /// Plugin id.
        plugin: String,
        /// The role.
        role: String,
        /// PostgreSQL's message.
        detail: String,
    },
    /// The database is not served yet, or refused the connection.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A statement of the plugin machinery itself failed.
    #[error("plugin database work failed: {0}")]
    Query(#[from] diesel::result::Error),
}

impl PluginError {
    /// Whether the start must stop (PostgreSQL or the core said no: only a change fixes it)
    /// rather than be retried (PostgreSQL could not be reached or the connection broke).
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Db(_) => false,
            Self::Query(e) => !is_transport_failure(e),
            _ => true,
        }
    }
}

/// Whether `e` is a failure to talk to PostgreSQL rather than PostgreSQL's answer.
pub(crate) fn is_transport_failure(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    !matches!(e, Error::DatabaseError(kind, _) if *kind != DatabaseErrorKind::ClosedConnection)
}
