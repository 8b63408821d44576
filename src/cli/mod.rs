//! Command line: `serve` (default), `migrate`, `openapi`, `database-url`, `settings`, `jobs`,
//! `plugins`. The
//! clap types live here; what each subcommand does lives in the submodules.

pub mod commands;
pub mod database_url;
pub mod entry;
pub mod jobs;
pub mod plugins;
pub mod report;
pub mod rotate_secret;
pub mod session;
pub mod settings;
pub mod users;

use clap::{Parser, Subcommand};

/// DeployStack database backend.
#[derive(Debug, Parser)]
#[command(name = "deploystack-backend", version, about)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending migrations to the configured database and exit.
    Migrate,
    /// Print the OpenAPI document (JSON) to stdout.
    Openapi,
    /// Print the database URL for the diesel CLI (`export DATABASE_URL=$(...)`); it holds the
    /// password.
    DatabaseUrl,
    /// Read and change global settings (same environment as the server).
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Inspect and manage the background job queue (same environment as the server).
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// List plugins and apply their migrations (same environment as the server).
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Create the administrator account and list accounts (same environment as the server).
    #[command(subcommand)]
    Users(UsersCommand),
}

/// `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a global administrator account (for headless installs). The password is read
    /// from standard input, or asked for without echo on a terminal.
    CreateAdmin {
        /// 3 to 50 of a-z, A-Z, 0-9, _ and -.
        #[arg(long)]
        username: String,
        /// Email address.
        #[arg(long)]
        email: String,
        /// Given name.
        #[arg(long)]
        first_name: Option<String>,
        /// Family name.
        #[arg(long)]
        last_name: Option<String>,
    },
    /// Accounts, oldest first.
    List {
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

/// `plugins` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Id, version, kind, migrations applied of shipped, isolation mode of every plugin.
    List,
    /// Create the plugins' roles and schemas, apply their pending migrations, and exit.
    Migrate,
}

/// `jobs` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Counts by status and type, the oldest due job's wait, run durations per type.
    Stats,
    /// Jobs, newest first.
    List {
        /// Only this status: pending, processing, completed or failed.
        #[arg(long)]
        status: Option<String>,
        /// Only this type.
        #[arg(long = "type")]
        job_type: Option<String>,
        /// Only this batch.
        #[arg(long)]
        batch: Option<String>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One job, as JSON.
    Show {
        /// Job id.
        id: String,
    },
    /// One batch with its counters, as JSON.
    Batch {
        /// Batch id.
        id: String,
    },
    /// Fail the batch's pending jobs (`Cancelled by administrator`).
    CancelBatch {
        /// Batch id.
        id: String,
    },
    /// Put the batch's failed jobs back to pending, attempts reset.
    RetryBatch {
        /// Batch id.
        id: String,
    },
    /// Enqueue a job; prints its id.
    Enqueue {
        /// Job type, e.g. `cleanup_old_jobs`.
        job_type: String,
        /// Payload, a JSON value, e.g. '{"olderThanDays":14}'.
        payload: String,
        /// Runs allowed (1 to 1000).
        #[arg(long, default_value_t = 3)]
        max_attempts: i32,
        /// Higher runs first.
        #[arg(long, default_value_t = 0)]
        priority: i32,
        /// Not before this many milliseconds from now.
        #[arg(long)]
        delay_ms: Option<u64>,
    },
}

/// `settings` subcommands.
#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// List settings (values of encrypted ones are hidden).
    List {
        /// Only this group (e.g. `smtp`).
        #[arg(long)]
        group: Option<String>,
    },
    /// Print one value, decrypted.
    Get {
        /// Setting key, e.g. `smtp.host`.
        key: String,
    },
    /// Validate, encrypt when the setting is secret, and store a value.
    Set {
        /// Setting key, e.g. `smtp.password`.
        key: String,
        /// New value. `-` reads one line from standard input; when omitted, it is asked for
        /// without echo on a terminal, or read from standard input otherwise. Prefer these
        /// for secrets: a value given here shows in `ps` and in the shell history.
        value: Option<String>,
    },
    /// Re-encrypt every encrypted setting with a new encryption secret, read from standard
    /// input (asked twice without echo on a terminal). Restart every server with it after.
    RotateSecret,
}
