//! Composition of the running backend: picks the database (external or embedded), builds
//! the state, resumes a completed setup, serves HTTP and shuts everything down in order.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::auth::Accounts;
use crate::config::{Config, ConnectionTarget, PostgresSource, TlsMode};
use crate::db::{Database, PgConnector};
use crate::embedded_pg::{Cluster, ClusterOptions, RunningPostgres};
use crate::jobs::JobService;
use crate::lifecycle::Initializer;
use crate::metrics::Metrics;
use crate::plugins::{Plugin, PluginCatalog, PluginInitHooks, PluginMigrator};
use crate::settings::secret::ResolvedSecret;
use crate::settings::{GlobalSettings, KeyCheckInitializer, SettingsCipher};
use crate::setup::SetupService;
use crate::state::{AppState, Services};
use served::{start_when_served, ReplicaPlan};

mod served;
pub mod setup_token;

/// Database name of the embedded cluster.
const EMBEDDED_DATABASE: &str = crate::config::DEFAULT_DATABASE;
/// Time given to in-flight requests at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long the start waits for the database to be served before it opens HTTP anyway
/// (long migrations); meanwhile the status says `starting`, never "not set up".
pub const START_WAIT: Duration = Duration::from_secs(15);

/// What a build adds to the core.
#[derive(Default)]
pub struct Extensions {
    /// Compiled plugins, in load order (folder plugins come from `PLUGINS_PATH`).
    pub plugins: Vec<Arc<dyn Plugin>>,
    /// Initializers run after the core's and the plugins' (tests).
    pub initializers: Vec<Arc<dyn Initializer>>,
}

/// A started backend, not yet serving HTTP.
pub struct App {
    state: AppState,
    embedded: Option<RunningPostgres>,
    /// Services that start once the database is served (the settings change listener).
    on_ready: JoinHandle<()>,
    /// The `METRICS_ADDR` listener, bound at start so a taken address fails the start.
    metrics_acceptor: Option<TcpAcceptor>,
}

impl App {
    /// Starts the embedded cluster when no `POSTGRES_*` variable is set, then brings up a
    /// database whose setup is recorded, waiting [`START_WAIT`] at most before returning.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        Self::start_with(config, Vec::new(), &CancellationToken::new()).await
    }

    /// [`App::start`] with `extra` initializers after the core ones (tests), and this
    /// build's compiled plugins; a cancelled `stop` (a signal during start-up) stops what was
    /// started and returns an error.
    pub async fn start_with(
        config: &Config,
        extra: Vec<Arc<dyn Initializer>>,
        stop: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let extensions = Extensions {
            plugins: crate::plugins::registered::compiled(),
            initializers: extra,
        };
        Self::start_extended(config, extensions, stop).await
    }

    /// [`App::start`] with the given compiled plugins and extra initializers.
    pub async fn start_extended(
        config: &Config,
        extensions: Extensions,
        stop: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let (cipher, secret) = settings_cipher(config).await?;
        let database = Database::new();
        let settings = GlobalSettings::new(database.clone(), cipher.clone());
        // Plugins are checked before any database work: a bad one stops the start at once.
        let plugins = Arc::new(
            PluginCatalog::load(
                extensions.plugins,
                config.plugins.path.as_deref(),
                &database,
                Some(settings.clone()),
            )
            .context("cannot load plugins")?,
        );
        crate::api::spec_json_for(&plugins).context("cannot load plugins")?;
        settings.declare(plugins.settings_groups());
        let (connection, embedded) = connection_for(config, stop).await?;
        let missing = connection.missing_variables();
        // Plugin roles are made by the embedded cluster's superuser: the application's own
        // role may not create roles.
        let role_admin = config.plugins.role_admin.clone().or_else(|| {
            embedded
                .as_ref()
                .map(|cluster| cluster.superuser_connection(EMBEDDED_DATABASE))
        });
        let metrics = config
            .metrics
            .enabled()
            .then(|| Arc::new(Metrics::new(config.metrics.clone())));
        let observed = |connector: PgConnector| match &metrics {
            Some(m) => connector.with_query_histogram(m.query_histogram()),
            None => connector,
        };
        let built = PgConnector::new(&connection, &config.pool).and_then(|connector| {
            let connector = observed(connector);
            let admin = role_admin
                .map(|target| PgConnector::new(&target, &config.pool))
                .transpose()?;
            Ok((connector, admin))
        });
        let (connector, admin) = match built {
            Ok((connector, admin)) if missing.is_empty() => (Ok(connector), admin),
            Ok((_, admin)) => (Err(missing), admin),
            Err(_) if !missing.is_empty() => (Err(missing), None),
            Err(e) => {
                if let Some(cluster) = embedded {
                    let _ = cluster.stop().await;
                }
                return Err(anyhow::Error::new(e).context("cannot build the TLS configuration"));
            }
        };
        // The key check first: nothing may be encrypted or decrypted with a wrong secret.
        let mut initializers: Vec<Arc<dyn Initializer>> = vec![
            Arc::new(KeyCheckInitializer::new(cipher.clone(), secret)),
            Arc::new(crate::services::RoleSync),
            Arc::new(
                crate::settings::SettingsInitializer::new(cipher)
                    .with_groups(plugins.settings_groups()),
            ),
        ];
        // Without credentials nothing is set up, so the plugin steps would never run.
        if let Ok(app_connector) = &connector {
            initializers.push(Arc::new(PluginMigrator::new(
                plugins.clone(),
                app_connector.clone(),
                admin,
                &config.plugins,
            )));
            initializers.push(Arc::new(PluginInitHooks::new(plugins.clone())));
        }
        initializers.extend(extensions.initializers);
        let setup = Arc::new(SetupService::new(
            config.selection_file(),
            connector,
            config.pool.clone(),
            database.clone(),
            initializers,
        ));
        let mut registry = crate::jobs::handlers::registry(&database);
        registry.extend(plugins.jobs().clone());
        let jobs = JobService::with(
            database.clone(),
            config.jobs.clone(),
            registry,
            crate::jobs::handlers::schedules(),
        );
        let accounts = Arc::new(Accounts::new(
            database.clone(),
            settings.clone(),
            &config.accounts,
        ));
        let on_ready = tokio::spawn(start_when_served(
            setup.clone(),
            settings.clone(),
            jobs.clone(),
            database.clone(),
            ReplicaPlan::from_config(config),
            (accounts.clone(), config.persistent_data_dir.clone()),
        ));
        let app = Self {
            state: AppState::new(Services {
                accounts,
                database,
                setup,
                settings,
                jobs,
                plugins,
                embedded_database: embedded.is_some(),
                metrics,
                http: config.http.clone(),
            }),
            embedded,
            on_ready,
            metrics_acceptor: None,
        };
        let mut app = app;
        if let Some(addr) = config.metrics.addr {
            match TcpListener::bind(addr).into_acceptor().await {
                Ok(acceptor) => app.metrics_acceptor = Some(acceptor),
                Err(e) => {
                    app.shutdown().await;
                    anyhow::bail!("cannot listen on {addr} for metrics (METRICS_ADDR): {e}");
                }
            }
        }
        tokio::select! {
            () = app.state.setup.start(START_WAIT) => {}
            () = stop.cancelled() => {
                app.shutdown().await;
                anyhow::bail!("stopped by a signal during start-up")
            }
        }
        // Refused before serving (a wrong encryption secret): stop with the reason. Refused
        // later (after long migrations), the status and the wizard show it instead.
        if let Some(reason) = app.state.setup.refusal() {
            app.shutdown().await;
            anyhow::bail!("{reason}");
        }
        Ok(app)
    }

    /// Handler state, for tests that call services directly.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The address `/metrics` is served on by its own listener, when `METRICS_ADDR` is set
    /// (with port 0, the port the system chose).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_acceptor
            .as_ref()?
            .local_addr()
            .into_iter()
            .find_map(|a| a.as_socket_addr().copied())
    }

    /// Serves HTTP on `acceptor` until `shutdown` completes, then stops in order: in-flight
    /// requests, the database lifecycle (setup work, start-up retries), the pool and the
    /// services on it, the embedded cluster.
    pub async fn serve(
        mut self,
        acceptor: TcpAcceptor,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        for addr in acceptor.local_addr() {
            info!(address = %addr, "listening");
        }
        let stop = CancellationToken::new();
        let metrics_server = self.serve_metrics(stop.clone());
        let stop_all = stop.clone();
        let signalled = Arc::new(std::sync::OnceLock::new());
        let signalled_at = signalled.clone();
        let options = self.serve_options();
        let result = crate::net::serve(
            acceptor,
            crate::api::endpoint(self.state.clone()),
            options,
            async move {
                shutdown.await;
                let _ = signalled_at.set(std::time::Instant::now());
                info!("shutdown: no new connections; draining in-flight requests");
                stop_all.cancel();
            },
        )
        .await;
        stop.cancel();
        if let Some(server) = metrics_server {
            let _ = server.await;
        }
        let drained_ms = signalled
            .get()
            .map_or(0, |at| at.elapsed().as_millis() as u64);
        if drained_ms >= SHUTDOWN_GRACE.as_millis() as u64 {
            tracing::warn!(
                elapsed_ms = drained_ms,
                "shutdown: grace period over; requests still running were cut"
            );
        } else {
            info!(elapsed_ms = drained_ms, "shutdown: HTTP drained");
        }
        self.shutdown().await;
        result.context("HTTP server failed")
    }

    /// How connections are served: the HTTP settings' deadlines and caps.
    fn serve_options(&self) -> crate::net::ServeOptions {
        let http = &self.state.http;
        crate::net::ServeOptions {
            header_timeout: http.header_timeout,
            keepalive_timeout: http.keepalive_timeout,
            caps: crate::net::ConnectionCaps::new(
                http.max_connections,
                http.max_per_address,
                http.trusted_proxies.clone(),
            ),
            grace: SHUTDOWN_GRACE,
        }
    }

    /// Serves `/metrics` on the `METRICS_ADDR` listener until `stop`.
    fn serve_metrics(&mut self, stop: CancellationToken) -> Option<JoinHandle<()>> {
        let acceptor = self.metrics_acceptor.take()?;
        let metrics = self.state.metrics.clone()?;
        for addr in acceptor.local_addr() {
            info!(address = %addr, "serving metrics");
        }
        let endpoint =
            crate::metrics::serve::listener_endpoint(metrics, self.state.metric_sources());
        let options = self.serve_options();
        Some(tokio::spawn(async move {
            let served =
                crate::net::serve(acceptor, endpoint, options, stop.cancelled_owned()).await;
            if let Err(e) = served {
                tracing::error!(error = %e, "metrics listener failed");
            }
        }))
    }

    /// Releases the database in order: the job workers stop (running jobs finish or are
    /// handed back), the lifecycle's background work ends (a setup in progress finishes
    /// first), the pool closes, the listener stops, the cluster stops.
    pub async fn shutdown(self) {
        let started = std::time::Instant::now();
        let ms = |since: std::time::Instant| since.elapsed().as_millis() as u64;
        // Workers first: they write their outcomes and hand back unfinished jobs through
        // the pool, which the lifecycle's shutdown closes. Each step is bounded by its own
        // timeout (JOB_SHUTDOWN_TIMEOUT_MS, the setup wait, the cluster's stop timeout).
        let step = std::time::Instant::now();
        self.state.jobs.stop().await;
        info!(elapsed_ms = ms(step), "shutdown: job workers stopped");
        let step = std::time::Instant::now();
        self.state.setup.shutdown().await;
        self.on_ready.abort();
        let _ = self.on_ready.await;
        info!(
            elapsed_ms = ms(step),
            "shutdown: database pool and listeners closed"
        );
        if let Some(cluster) = self.embedded {
            let step = std::time::Instant::now();
            if let Err(e) = cluster.stop().await {
                tracing::warn!(error = %e, "shutdown: embedded PostgreSQL did not stop cleanly");
            }
            info!(
                elapsed_ms = ms(step),
                "shutdown: embedded PostgreSQL stopped"
            );
        }
        info!(elapsed_ms = ms(started), "shutdown complete");
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

/// Runs the server with this build's compiled plugins until SIGTERM or Ctrl-C.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    run_with(config, crate::plugins::registered::compiled()).await
}

/// Runs the server with `plugins` until SIGTERM or Ctrl-C. A signal during start-up (the
/// embedded cluster can take seconds) stops what was started cleanly; a second signal exits
/// at once.
pub async fn run_with(config: &Config, plugins: Vec<Arc<dyn Plugin>>) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    tokio::spawn(watch_signals(stop.clone()));
    let acceptor = bind(config).await?;
    let extensions = Extensions {
        plugins,
        initializers: Vec::new(),
    };
    let app = match App::start_extended(config, extensions, &stop).await {
        Ok(app) => app,
        // What was started is stopped already: a requested stop, not a failure.
        Err(_) if stop.is_cancelled() => {
            info!("stopped during start-up");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    app.serve(acceptor, async move { stop.cancelled().await })
        .await
}

/// First SIGTERM/SIGINT: cancel `stop` (orderly shutdown). Second: exit now.
async fn watch_signals(stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};

    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install the signal handlers");
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    info!("shutting down (send the signal again to exit at once)");
    stop.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::warn!("second signal: exiting now");
    std::process::exit(130);
}

/// Resolves the encryption secret (a new one stays in memory until the key check records
/// it) and derives the key, off the async threads: scrypt is slow by design.
pub async fn settings_cipher(
    config: &Config,
) -> anyhow::Result<(Arc<SettingsCipher>, Arc<ResolvedSecret>)> {
    let configured = config.encryption_secret.clone();
    let data_dir = config.persistent_data_dir.clone();
    tokio::task::spawn_blocking(move || {
        let secret = crate::settings::secret::resolve(configured.as_ref(), &data_dir)?;
        let cipher = Arc::new(SettingsCipher::derive(&secret.secret)?);
        anyhow::Ok((cipher, Arc::new(secret)))
    })
    .await
    .context("key derivation panicked")?
}

/// For command-line tools: the configured or stored secret's key; they never generate a
/// secret (only a server that records it as a new database's key check does).
pub async fn tool_cipher(config: &Config) -> anyhow::Result<Arc<SettingsCipher>> {
    let secret = tool_secret(config)?;
    Ok(Arc::new(
        SettingsCipher::derive_off_thread(secret.secret).await?,
    ))
}

/// For command-line tools: the configured or stored secret, and where it came from.
pub fn tool_secret(config: &Config) -> anyhow::Result<ResolvedSecret> {
    crate::settings::secret::resolve_existing(
        config.encryption_secret.as_ref(),
        &config.persistent_data_dir,
    )?
    .context(
        "no encryption secret: set DEPLOYSTACK_ENCRYPTION_SECRET (or run this with the server's PERSISTENT_DATA_DIR, which holds encryption.secret)",
    )
}

/// For command-line tools: the embedded cluster a running server already started, if any,
/// otherwise as [`connection_for`].
pub async fn connection_for_tool(
    config: &Config,
) -> anyhow::Result<(ConnectionTarget, Option<RunningPostgres>)> {
    if matches!(config.postgres, PostgresSource::Embedded) {
        let root = config.persistent_data_dir.join("postgres");
        if let Some(connection) = crate::embedded_pg::attach_running(&root, EMBEDDED_DATABASE) {
            return Ok((connection, None));
        }
    }
    connection_for(config, &CancellationToken::new()).await
}

/// The server to use, starting the embedded one if needed; a cancelled `stop` during the
/// embedded start stops the cluster cleanly (fast shutdown, awaited) and returns an error.
pub async fn connection_for(
    config: &Config,
    stop: &CancellationToken,
) -> anyhow::Result<(ConnectionTarget, Option<RunningPostgres>)> {
    match &config.postgres {
        PostgresSource::External(external) => {
            if matches!(external.tls, TlsMode::AcceptAnyCertificate) {
                tracing::warn!(
                    "POSTGRES_SSL=true encrypts the connection but does not verify the server's certificate, so a machine in the middle can read it; set POSTGRES_SSL_ROOT_CERT to the CA file of the server to verify it"
                );
            }
            Ok((external.clone(), None))
        }
        PostgresSource::Embedded => {
            info!("no POSTGRES_* variable set: using the embedded PostgreSQL");
            let mut options = ClusterOptions::new(config.persistent_data_dir.join("postgres"));
            options.bin_dir.clone_from(&config.postgres_bin_dir);
            let cluster = tokio::task::spawn_blocking(move || Cluster::prepare(options))
                .await
                .context("cluster preparation panicked")??;
            anyhow::ensure!(!stop.is_cancelled(), "stopped by a signal during start-up");
            let running = cluster.start_until(stop).await?;
            // Clusters of older builds: the application database still belongs to the superuser.
            if let Err(e) = running.hand_over_database(EMBEDDED_DATABASE).await {
                // A clean stop, not a crash recovery at the next start.
                let _ = running.stop().await;
                return Err(e.into());
            }
            Ok((running.connection(EMBEDDED_DATABASE), Some(running)))
        }
    }
}
