//! Opens connections to the configured server, with TLS and session settings applied,
//! and classifies failures so callers can answer 503 for "unreachable" and create a
//! missing database instead of failing.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use rustls::ClientConfig;
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::NoTls;
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::debug;

use crate::config::{ConnectionTarget, PoolSettings};
use crate::db::answer_deadline::{AnswerDeadline, DeadlineTls};
use crate::db::observe::{Observation, QueryHistogram};
use crate::db::tls;

/// Why a connection could not be opened. The message never holds the password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The target database does not exist yet (SQLSTATE 3D000).
    #[error("database \"{0}\" does not exist")]
    DatabaseMissing(String),
    /// The server rejected the credentials or the role lacks privileges.
    #[error("PostgreSQL at {target} rejected the login: {detail}")]
    Rejected {
        /// `host:port/database`.
        target: String,
        /// PostgreSQL's own message.
        detail: String,
    },
    /// The server answered but has no connection slot left: `max_connections` (less the
    /// slots reserved for superusers) or a role's or database's `CONNECTION LIMIT` is
    /// reached (SQLSTATE 53300). Retrying works once other sessions end; the message says
    /// so, because "cannot be reached" would send an operator looking for a server that runs.
    #[error(
        "PostgreSQL at {target} has no free connection slot (max_connections or a connection \
         limit is reached): {detail}"
    )]
    NoSlots {
        /// `host:port/database`.
        target: String,
        /// PostgreSQL's own message.
        detail: String,
    },
    /// No answer: refused, timed out, TLS failed, or the server is shutting down.
    #[error("could not connect to PostgreSQL at {target}: {detail}")]
    Unreachable {
        /// `host:port/database`.
        target: String,
        /// The underlying cause, including TLS verification failures.
        detail: String,
    },
}

impl From<ConnectError> for ConnectionError {
    fn from(e: ConnectError) -> Self {
        ConnectionError::BadConnection(e.to_string())
    }
}

/// Everything needed to open a connection; cheap to clone and free of `Debug` so the
/// password it carries cannot end up in a log line.
#[derive(Clone)]
pub struct PgConnector {
    config: tokio_postgres::Config,
    tls: Option<Arc<ClientConfig>>,
    host: String,
    port: u16,
    database: String,
    connect_timeout: Duration,
    /// Client-side deadline for an answer ([`AnswerDeadline`]); zero: none.
    query_timeout: Duration,
    tcp_user_timeout: Duration,
    /// `statement_timeout` set on each session after login; zero: the server's default. Not
    /// sent as a startup `options` parameter, which PgBouncer refuses.
    statement_timeout: Duration,
    /// What each connection records of its statements (slow ones, durations).
    observation: Observation,
}

/// TCP keepalive: notice a dead peer of an idle connection (failover, dropped NAT entry) in
/// about a minute instead of hours; matters for the long-lived LISTEN connection most.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

impl PgConnector {
    /// Builds a connector for an external server whose credentials are complete.
    pub fn new(pg: &ConnectionTarget, pool: &PoolSettings) -> Result<Self, rustls::Error> {
        let tls = tls::client_config(&pg.tls)?;
        let mut config = tokio_postgres::Config::new();
        config
            .host(&pg.host)
            .port(pg.port)
            .dbname(&pg.database)
            .user(&pg.user)
            .application_name("deploystack-backend")
            .connect_timeout(pool.connect_timeout)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES)
            .ssl_mode(if tls.is_some() {
                SslMode::Require
            } else {
                SslMode::Disable
            });
        if !pool.tcp_user_timeout.is_zero() {
            config.tcp_user_timeout(pool.tcp_user_timeout);
        }
        if let Some(password) = &pg.password {
            config.password(password.expose_secret());
        }
        Ok(Self {
            config,
            tls,
            host: pg.host.clone(),
            port: pg.port,
            database: pg.database.clone(),
            connect_timeout: pool.connect_timeout,
            query_timeout: pool.query_timeout,
            tcp_user_timeout: pool.tcp_user_timeout,
            statement_timeout: pool.statement_timeout,
            observation: Observation {
                slow: (!pool.slow_query.is_zero()).then_some(pool.slow_query),
                histogram: None,
            },
        })
    }

    /// The same connector, its connections recording statement durations into `histogram`.
    pub fn with_query_histogram(mut self, histogram: Arc<QueryHistogram>) -> Self {
        self.observation.histogram = Some(histogram);
        self
    }

    /// The same server and credentials, another database (e.g. the `postgres` maintenance one).
    pub fn for_database(&self, database: &str) -> Self {
        let mut other = self.clone();
        other.config.dbname(database);
        other.database = database.to_owned();
        other
    }

    /// A copy whose sessions have no `statement_timeout`, for migrations and setup, which
    /// may legitimately wait on a lock or rewrite a large table.
    pub fn without_statement_timeout(&self) -> Self {
        let mut other = self.clone();
        other.statement_timeout = Duration::ZERO;
        other.query_timeout = Duration::ZERO;
        // Long statements are what these sessions are for: not worth a warning each.
        other.observation.slow = None;
        other
    }

    /// The same server, database and TLS settings, logged in as `user` with `password`, whose
    /// sessions get `statement_timeout` (zero: the role's own default) and no client-side
    /// answer deadline: a plugin's own session, which its caller watches itself.
    pub fn as_login(
        &self,
        user: &str,
        password: &secrecy::SecretString,
        statement_timeout: Duration,
    ) -> Self {
        let mut other = self.clone();
        other.config.user(user);
        other.config.password(password.expose_secret());
        other.config.application_name("deploystack-plugin");
        other.statement_timeout = statement_timeout;
        other.query_timeout = Duration::ZERO;
        other
    }

    /// Name of the application database.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// `host:port/database`, safe to show to users and logs.
    pub fn target(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }

    /// Opens one diesel-async connection whose queries fail once the server stays silent
    /// past the query timeout (when one is set). Each address gets the connect timeout for
    /// its TCP connection, and the login gets it again.
    pub async fn connect(&self) -> Result<AsyncPgConnection, ConnectError> {
        Ok(self.connect_watched().await?.0)
    }

    /// [`PgConnector::connect`], with a flag raised when the connection ends: for a connection
    /// many callers share, which is never checked out and tested, so its end must be visible
    /// without sending a query.
    pub async fn connect_watched(&self) -> Result<(AsyncPgConnection, Ended), ConnectError> {
        let ended = Ended::default();
        // A Unix socket path as host: no TCP to watch; the server is local.
        let conn = if self.query_timeout.is_zero() || self.host.starts_with('/') {
            self.bounded(self.login_plain(ended.clone())).await?
        } else {
            let stream = self.open_tcp().await?;
            self.bounded(self.login_with_deadline(stream, ended.clone()))
                .await?
        };
        Ok((conn, ended))
    }

    /// Logs in over tokio-postgres' own socket (keepalive and `TCP_USER_TIMEOUT` from the
    /// config), with this module's I/O task rather than diesel-async's, whose error channel
    /// costs every query a broadcast subscription.
    async fn login_plain(&self, ended: Ended) -> Result<AsyncPgConnection, ConnectError> {
        let client = match &self.tls {
            None => {
                let (client, conn) = self
                    .config
                    .connect(NoTls)
                    .await
                    .map_err(|e| self.classify(e))?;
                tokio::spawn(drive(conn, ended));
                client
            }
            Some(tls) => {
                let (client, conn) = self
                    .config
                    .connect(MakeRustlsConnect::new((**tls).clone()))
                    .await
                    .map_err(|e| self.classify(e))?;
                tokio::spawn(drive(conn, ended));
                client
            }
        };
        self.finish_login(client).await
    }

    /// The first address of the host that accepts a TCP connection, tuned.
    async fn open_tcp(&self) -> Result<TcpStream, ConnectError> {
        let unreachable = |detail: String| ConnectError::Unreachable {
            target: self.target(),
            detail,
        };
        let addresses = self
            .bounded_io(tokio::net::lookup_host((self.host.as_str(), self.port)))
            .await
            .map_err(|e| unreachable(format!("cannot resolve {}: {e}", self.host)))?;
        let mut last_error = None;
        for address in addresses {
            match self.bounded_io(TcpStream::connect(address)).await {
                Ok(stream) => {
                    self.tune(&stream)
                        .map_err(|e| unreachable(format!("cannot set socket options: {e}")))?;
                    return Ok(stream);
                }
                Err(e) => last_error = Some(format!("{address}: {e}")),
            }
        }
        Err(unreachable(last_error.unwrap_or_else(|| {
            format!("{} resolves to no address", self.host)
        })))
    }

    async fn login_with_deadline(
        &self,
        stream: TcpStream,
        ended: Ended,
    ) -> Result<AsyncPgConnection, ConnectError> {
        let client = match &self.tls {
            None => {
                let stream = AnswerDeadline::new(stream, self.query_timeout);
                let (client, conn) = self
                    .config
                    .connect_raw(stream, NoTls)
                    .await
                    .map_err(|e| self.classify(e))?;
                tokio::spawn(drive(conn, ended));
                client
            }
            Some(tls) => {
                let mut make = MakeRustlsConnect::new((**tls).clone());
                let Ok(tls) = MakeTlsConnect::<TcpStream>::make_tls_connect(&mut make, &self.host);
                let (client, conn) = self
                    .config
                    .connect_raw(stream, DeadlineTls::new(tls, self.query_timeout))
                    .await
                    .map_err(|e| self.classify(e))?;
                tokio::spawn(drive(conn, ended));
                client
            }
        };
        self.finish_login(client).await
    }

    /// The diesel-async connection over a logged-in client, with the session settings.
    async fn finish_login(
        &self,
        client: tokio_postgres::Client,
    ) -> Result<AsyncPgConnection, ConnectError> {
        self.session(AsyncPgConnection::try_from(client).await)
            .await
    }

    /// A connection diesel-async built (or its error), with the session settings applied.
    async fn session(
        &self,
        built: diesel::ConnectionResult<AsyncPgConnection>,
    ) -> Result<AsyncPgConnection, ConnectError> {
        let conn = built.map_err(|e| ConnectError::Unreachable {
            target: self.target(),
            detail: e.to_string(),
        })?;
        self.prepare_session(conn).await
    }

    /// Applies the session settings (one simple-protocol round trip, when there are any) and
    /// the query instrumentation.
    async fn prepare_session(
        &self,
        mut conn: AsyncPgConnection,
    ) -> Result<AsyncPgConnection, ConnectError> {
        use diesel_async::{AsyncConnection, SimpleAsyncConnection};

        if self.observation.is_active() {
            conn.set_instrumentation(self.observation.instrument());
        }
        if !self.statement_timeout.is_zero() {
            conn.batch_execute(&format!(
                "SET statement_timeout = {}",
                self.statement_timeout.as_millis()
            ))
            .await
            .map_err(|e| ConnectError::Unreachable {
                target: self.target(),
                detail: format!("cannot set statement_timeout: {e}"),
            })?;
        }
        Ok(conn)
    }

    /// `work`, or an "unreachable" error once the connect timeout passed.
    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, ConnectError>>,
    ) -> Result<T, ConnectError> {
        tokio::time::timeout(self.connect_timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(ConnectError::Unreachable {
                    target: self.target(),
                    detail: format!(
                        "no answer within {} ms (POSTGRES_CONNECT_TIMEOUT_MS)",
                        self.connect_timeout.as_millis()
                    ),
                })
            })
    }

    async fn bounded_io<T>(
        &self,
        work: impl Future<Output = std::io::Result<T>>,
    ) -> std::io::Result<T> {
        tokio::time::timeout(self.connect_timeout, work)
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    }

    /// Keepalive, `TCP_USER_TIMEOUT` and no Nagle delay, as tokio-postgres sets for its own
    /// sockets.
    fn tune(&self, stream: &TcpStream) -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        let socket = socket2::SockRef::from(stream);
        socket.set_tcp_keepalive(
            &socket2::TcpKeepalive::new()
                .with_time(KEEPALIVE_IDLE)
                .with_interval(KEEPALIVE_INTERVAL)
                .with_retries(KEEPALIVE_RETRIES),
        )?;
        if !self.tcp_user_timeout.is_zero() {
            socket.set_tcp_user_timeout(Some(self.tcp_user_timeout))?;
        }
        Ok(())
    }

    /// Opens a connection without an answer deadline, whose login is still bounded by the
    /// connect timeout: for LISTEN (notifications need tokio-postgres' own socket type) and
    /// for migrations, whose statements may legitimately run for a long time. Keepalive and
    /// `TCP_USER_TIMEOUT` still watch it.
    pub async fn connect_plain(&self) -> Result<AsyncPgConnection, ConnectError> {
        self.bounded(self.connect_plain_unbounded()).await
    }

    /// A plain connection that LISTENs on `channel`, logged in and subscribed within the
    /// connect timeout or not at all: a server that accepts the login and then goes silent
    /// must not leave a listener (and a shutdown waiting for it) hanging on its `LISTEN`.
    pub async fn connect_listening(
        &self,
        channel: &str,
    ) -> Result<AsyncPgConnection, ConnectError> {
        use diesel_async::RunQueryDsl;

        self.bounded(async {
            let mut conn = self.connect_plain_unbounded().await?;
            diesel::sql_query(format!("LISTEN {channel}"))
                .execute(&mut conn)
                .await
                .map_err(|e| ConnectError::Unreachable {
                    target: self.target(),
                    detail: format!("cannot LISTEN on {channel}: {e}"),
                })?;
            Ok(conn)
        })
        .await
    }

    async fn connect_plain_unbounded(&self) -> Result<AsyncPgConnection, ConnectError> {
        let result = match &self.tls {
            None => match self.config.connect(NoTls).await {
                Ok((client, conn)) => {
                    AsyncPgConnection::try_from_client_and_connection(client, conn).await
                }
                Err(e) => return Err(self.classify(e)),
            },
            Some(tls) => {
                let make_tls = MakeRustlsConnect::new((**tls).clone());
                match self.config.connect(make_tls).await {
                    Ok((client, conn)) => {
                        AsyncPgConnection::try_from_client_and_connection(client, conn).await
                    }
                    Err(e) => return Err(self.classify(e)),
                }
            }
        };
        self.session(result).await
    }

    fn classify(&self, e: tokio_postgres::Error) -> ConnectError {
        let target = self.target();
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            if *code == SqlState::INVALID_CATALOG_NAME {
                return ConnectError::DatabaseMissing(self.database.clone());
            }
            let detail = db.message().to_owned();
            if *code == SqlState::TOO_MANY_CONNECTIONS {
                return ConnectError::NoSlots { target, detail };
            }
            return if code.code().starts_with("28") || *code == SqlState::INSUFFICIENT_PRIVILEGE {
                ConnectError::Rejected { target, detail }
            } else {
                ConnectError::Unreachable { target, detail }
            };
        }
        ConnectError::Unreachable {
            target,
            detail: describe_chain(&e),
        }
    }
}

/// Raised once a connection's I/O task ended (its client dropped, the server went away, the
/// answer deadline passed); cheap to check before each use.
#[derive(Clone, Default)]
pub struct Ended(Arc<AtomicBool>);

impl Ended {
    /// Whether the connection is gone.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Runs a connection's I/O until it closes (its client dropped, or the server went away).
/// `ended` is raised however the task stops: closed, aborted with its runtime, or panicking.
/// PostgreSQL's notices about our own statements (`relation ... already exists, skipping`
/// from an idempotent `CREATE ... IF NOT EXISTS`) are logged at debug level: tokio-postgres
/// would log them at info, where they read like a problem on every start.
async fn drive<S, T>(mut conn: tokio_postgres::Connection<S, T>, ended: Ended)
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    use futures_util::StreamExt;

    let _raise = RaiseOnDrop(ended);
    let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(tokio_postgres::AsyncMessage::Notice(notice)) => {
                debug!(
                    severity = notice.severity(),
                    "PostgreSQL: {}",
                    notice.message()
                );
            }
            Ok(_) => {}
            Err(e) => {
                debug!(error = %e, "database connection closed");
                return;
            }
        }
    }
}

/// Raises its [`Ended`] when dropped.
struct RaiseOnDrop(Ended);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        (self.0).0.store(true, Ordering::Release);
    }
}

/// tokio-postgres' Display hides the cause ("error performing TLS handshake"); the chain has it.
fn describe_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
