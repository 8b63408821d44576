//! Composition of the running backend: picks the database (external or embedded), builds
//! the state, resumes a completed setup, serves HTTP and shuts everything down in order.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::Server;
use tokio::task::JoinHandle;
use tracing::info;

use crate::config::{Config, ExternalPostgres, PostgresSource};
use crate::db::{Database, PgConnector};
use crate::embedded_pg::{Cluster, ClusterOptions, RunningPostgres};
use crate::settings::{GlobalSettings, SettingsCipher};
use crate::setup::{Initializer, SetupService};
use crate::state::AppState;

/// Database name of the embedded cluster.
const EMBEDDED_DATABASE: &str = crate::config::DEFAULT_DATABASE;
/// Time given to in-flight requests at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A started backend, not yet serving HTTP.
pub struct App {
    state: AppState,
    embedded: Option<RunningPostgres>,
    resume: JoinHandle<()>,
    listener: Option<JoinHandle<()>>,
}

impl App {
    /// Starts the embedded cluster when no `POSTGRES_*` variable is set, then resumes a
    /// completed setup in the background (migrating before the database is served).
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        Self::start_with(config, Vec::new()).await
    }

    /// [`App::start`] with `extra` initializers after the core ones (tests, plugins).
    pub async fn start_with(
        config: &Config,
        extra: Vec<Arc<dyn Initializer>>,
    ) -> anyhow::Result<Self> {
        let cipher = settings_cipher(config).await?;
        let (connection, embedded) = connection_for(config).await?;
        let missing = connection.missing_variables();
        let connector = if missing.is_empty() {
            Ok(PgConnector::new(&connection, &config.pool)
                .context("cannot build the TLS configuration")?)
        } else {
            Err(missing)
        };
        let database = Database::new();
        let settings = GlobalSettings::new(database.clone(), cipher.clone());
        let listener = connector
            .as_ref()
            .ok()
            .map(|connector| settings.listen(connector.clone()));
        let mut initializers = crate::setup::initializer::core_initializers(cipher);
        initializers.extend(extra);
        let setup = Arc::new(SetupService::new(
            config.selection_file(),
            connector,
            config.pool.clone(),
            database.clone(),
            initializers,
        ));
        let resume = tokio::spawn({
            let setup = setup.clone();
            async move { setup.resume().await }
        });
        Ok(Self {
            state: AppState {
                database,
                setup,
                settings,
            },
            embedded,
            resume,
            listener,
        })
    }

    /// Handler state, for tests that call services directly.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves HTTP on `acceptor` until `shutdown` completes, then stops in order: in-flight
    /// requests, the pool, the embedded cluster.
    pub async fn serve(
        self,
        acceptor: TcpAcceptor,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        for addr in acceptor.local_addr() {
            info!(address = %addr, "listening");
        }
        let result = Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                crate::api::endpoint(self.state.clone()),
                shutdown,
                Some(SHUTDOWN_GRACE),
            )
            .await;
        self.shutdown().await;
        result.context("HTTP server failed")
    }

    /// Releases the database: closes the pool and stops the embedded cluster.
    pub async fn shutdown(self) {
        self.resume.abort();
        if let Some(listener) = self.listener {
            listener.abort();
        }
        self.state.database.close();
        if let Some(cluster) = self.embedded {
            let _ = cluster.stop().await;
        }
    }
}

/// Binds `HOST:PORT`.
pub async fn bind(config: &Config) -> anyhow::Result<TcpAcceptor> {
    let addr = std::net::SocketAddr::new(config.host, config.port);
    TcpListener::bind(addr)
        .into_acceptor()
        .await
        .with_context(|| format!("cannot listen on {addr} (set HOST/PORT)"))
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    info!("shutting down");
}

/// Resolves the encryption secret (generating it on first use) and derives the key, off the
/// async threads: scrypt is slow by design.
pub async fn settings_cipher(config: &Config) -> anyhow::Result<Arc<SettingsCipher>> {
    let configured = config.encryption_secret.clone();
    let data_dir = config.persistent_data_dir.clone();
    tokio::task::spawn_blocking(move || {
        let secret = crate::settings::secret::resolve(configured.as_ref(), &data_dir)?;
        anyhow::Ok(Arc::new(SettingsCipher::derive(&secret)?))
    })
    .await
    .context("key derivation panicked")?
}

/// For command-line tools: the embedded cluster a running server already started, if any,
/// otherwise as [`connection_for`].
pub async fn connection_for_tool(
    config: &Config,
) -> anyhow::Result<(ExternalPostgres, Option<RunningPostgres>)> {
    if matches!(config.postgres, PostgresSource::Embedded) {
        let root = config.persistent_data_dir.join("postgres");
        if let Some(connection) = crate::embedded_pg::attach_running(&root, EMBEDDED_DATABASE) {
            return Ok((connection, None));
        }
    }
    connection_for(config).await
}

/// The server to use, starting the embedded one if needed.
pub async fn connection_for(
    config: &Config,
) -> anyhow::Result<(ExternalPostgres, Option<RunningPostgres>)> {
    match &config.postgres {
        PostgresSource::External(external) => Ok((external.clone(), None)),
        PostgresSource::Embedded => {
            info!("no POSTGRES_* variable set: using the embedded PostgreSQL");
            let mut options = ClusterOptions::new(config.persistent_data_dir.join("postgres"));
            options.bin_dir.clone_from(&config.postgres_bin_dir);
            let cluster = tokio::task::spawn_blocking(move || Cluster::prepare(options))
                .await
                .context("cluster preparation panicked")??;
            let running = cluster.start().await?;
            // Clusters of older builds: the application database still belongs to the superuser.
            running.hand_over_database(EMBEDDED_DATABASE).await?;
            Ok((running.connection(EMBEDDED_DATABASE), Some(running)))
        }
    }
}
