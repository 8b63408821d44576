//! The backend served in-process on a real loopback port.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deploystack_backend::app::{App, Extensions};
use deploystack_backend::config::{Config, ConnectionTarget, PoolSettings, PostgresSource};
use deploystack_backend::lifecycle::Initializer;
use deploystack_backend::state::AppState;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A listener on a free loopback port, and that port.
pub async fn loopback_acceptor() -> (TcpAcceptor, u16) {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let port = acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().map(|s| s.port()))
        .expect("local port");
    (acceptor, port)
}

/// Configuration for an external server `connection`, keeping files in `data_dir`.
pub fn config(connection: ConnectionTarget, data_dir: &Path) -> Config {
    Config {
        host: [127, 0, 0, 1].into(),
        port: 0,
        persistent_data_dir: data_dir.to_path_buf(),
        postgres: PostgresSource::External(connection),
        pool: PoolSettings {
            connect_timeout: Duration::from_secs(3),
            ..PoolSettings::default()
        },
        postgres_bin_dir: None,
        encryption_secret: Some("test-encryption-secret".to_owned().into()),
        jobs: deploystack_backend::config::JobSettings::default(),
        plugins: deploystack_backend::config::PluginSettings::default(),
        metrics: deploystack_backend::config::MetricsSettings::default(),
        replicas: deploystack_backend::config::ReplicaSettings::default(),
        // A loaded test machine hashes slowly: queued sign-ups wait rather than get 503.
        accounts: deploystack_backend::config::AccountSettings {
            hash_queue_wait: Duration::from_secs(120),
            ..Default::default()
        },
        http: deploystack_backend::config::HttpSettings::default(),
    }
}

/// A running backend.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The state its handlers use.
    pub state: AppState,
    /// HTTP client for the tests.
    pub http: reqwest::Client,
    /// `http://addr` of the `METRICS_ADDR` listener, when configured.
    pub metrics_url: Option<String>,
    /// The setup grant cookie (`setup_grant=…`) of this server's last successful setup.
    pub grant: std::sync::Mutex<Option<String>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    /// Starts the backend with the core initializers.
    pub async fn start(config: &Config) -> Self {
        Self::start_with(config, Vec::new()).await
    }

    /// Starts the backend with `initializers` after the core ones.
    pub async fn start_with(config: &Config, initializers: Vec<Arc<dyn Initializer>>) -> Self {
        let extensions = Extensions {
            plugins: Vec::new(),
            initializers,
        };
        Self::start_extended(config, extensions).await
    }

    /// Starts the backend with compiled plugins and extra initializers.
    pub async fn start_extended(config: &Config, extensions: Extensions) -> Self {
        // `TEST_LOG=debug cargo test ...` shows the server's log of a failing test.
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let (acceptor, port) = loopback_acceptor().await;
        let app = App::start_extended(config, extensions, &Default::default())
            .await
            .expect("start backend");
        let state = app.state().clone();
        let metrics_url = app.metrics_addr().map(|a| format!("http://{a}"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(acceptor, async move {
            let _ = rx.await;
        }));
        Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
            http: reqwest::Client::new(),
            metrics_url,
            grant: std::sync::Mutex::new(None),
            shutdown: Some(tx),
            task,
        }
    }

    /// `GET path` → (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET");
        json_of(resp).await
    }

    /// `POST path` with a JSON body → (status, JSON body).
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .expect("POST");
        json_of(resp).await
    }

    /// `POST /api/db/setup {"type":"postgresql"}`; keeps the setup grant cookie it sets.
    pub async fn setup(&self) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/api/db/setup", self.url))
            .json(&serde_json::json!({"type": "postgresql"}))
            .send()
            .await
            .expect("POST");
        let grant = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("setup_grant="))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        if grant.is_some() {
            *self.grant.lock().expect("grant") = grant;
        }
        json_of(resp).await
    }

    /// The `Cookie` header value of the setup grant, once a setup set it.
    pub fn grant_cookie(&self) -> Option<String> {
        self.grant.lock().expect("grant").clone()
    }

    /// Registers `username` (`<username>@example.com`, password `password-<username>`) with
    /// the setup grant; the answer.
    pub async fn register(&self, username: &str) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/api/auth/email/register", self.url))
            .json(&serde_json::json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": format!("password-{username}"),
            }));
        if let Some(grant) = self.grant_cookie() {
            request = request.header("cookie", grant);
        }
        json_of(request.send().await.expect("POST")).await
    }

    /// Waits until `GET /api/db/status` reports `initialized`.
    pub async fn wait_initialized(&self) {
        super::wait_until("initialized", Duration::from_secs(30), || async {
            self.get("/api/db/status").await.1["initialized"] == true
        })
        .await;
    }

    /// A session of a global administrator (an account made for it on first use).
    pub async fn admin_session(&self) -> String {
        use deploystack_backend::auth::Registration;
        let users = deploystack_backend::services::UserService::new(self.state.database.clone());
        let email = "status-admin@example.com";
        let user = match users.get_user_by_email(email).await.expect("lookup") {
            Some(user) => user,
            None => {
                let form = Registration {
                    username: "status-admin".into(),
                    email: email.into(),
                    password: "status-admin-password".to_owned().into(),
                    first_name: None,
                    last_name: None,
                };
                self.state
                    .accounts
                    .create_admin(form)
                    .await
                    .expect("administrator")
                    .user
            }
        };
        let token = self
            .state
            .accounts
            .sessions()
            .create(&user.id)
            .await
            .expect("session");
        token.expose().to_owned()
    }

    /// `GET /api/db/status` as a global administrator sees it (anonymous callers get
    /// upstream's three fields once the database is set up).
    pub async fn admin_status(&self) -> Value {
        let token = self.admin_session().await;
        let resp = self
            .http
            .get(format!("{}/api/db/status", self.url))
            .header("cookie", format!("session={token}"))
            .send()
            .await
            .expect("GET");
        json_of(resp).await.1
    }

    /// Graceful shutdown, as on SIGTERM.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
    }
}

/// Status and JSON body; a body that is not JSON fails the test (every answer must be JSON).
pub async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text}"));
    (status, value)
}
