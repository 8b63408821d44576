//! What the plugin tests share: a server with both example plugins, a private copy of the
//! folder plugins to change, and raw SQL on the test database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use deploystack_backend::app::Extensions;
use deploystack_backend::config::Config;
use deploystack_backend::plugins::{LoadedPlugin, Plugin};

use crate::common::pg::TestDb;
use crate::common::server::{config, TestServer};
use crate::notes_plugin::NotesPlugin;

/// A test's database, data folder and plugin folder.
pub struct PluginEnv {
    pub db: TestDb,
    pub data: tempfile::TempDir,
    pub plugins: tempfile::TempDir,
}

impl PluginEnv {
    /// A new database and a copy of `examples/plugins`.
    pub async fn new() -> Self {
        let plugins = tempfile::tempdir().expect("plugins dir");
        copy_dir(&examples_plugins(), plugins.path());
        Self {
            db: TestDb::new().await,
            data: tempfile::tempdir().expect("data dir"),
            plugins,
        }
    }

    /// The bookmarks folder plugin's migrations folder.
    pub fn bookmarks_migrations(&self) -> PathBuf {
        self.plugins.path().join("bookmarks").join("migrations")
    }

    /// Configuration as the server runs it: the application's role (no CREATEROLE), plugin
    /// roles made through the cluster's superuser, as the embedded mode does.
    pub fn config(&self) -> Config {
        let mut cfg = config(self.db.connection.clone(), self.data.path());
        cfg.plugins.path = Some(self.plugins.path().to_path_buf());
        cfg.plugins.role_admin = Some(self.db.superuser.clone());
        cfg
    }

    /// A server with the notes plugin compiled in and the folder plugins.
    pub async fn start(&self, cfg: &Config) -> TestServer {
        TestServer::start_extended(cfg, with_notes()).await
    }

    /// A server with both plugins, set up.
    pub async fn set_up(&self) -> TestServer {
        let server = self.start(&self.config()).await;
        let (code, body) = server.setup().await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["restart_required"], false, "{body}");
        server
    }

    /// Rows of `sql` as the superuser.
    pub async fn rows(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        let (client, task) = self.superuser().await;
        let rows = client.query(sql, &[]).await.expect(sql);
        drop(client);
        let _ = task.await;
        rows
    }

    /// Runs `sql` (several statements allowed) as the superuser; PostgreSQL's error if any.
    pub async fn batch(&self, sql: &str) -> Result<(), String> {
        let (client, task) = self.superuser().await;
        let outcome = client.batch_execute(sql).await.map_err(|e| {
            e.as_db_error()
                .map_or(e.to_string(), |d| d.message().to_owned())
        });
        drop(client);
        let _ = task.await;
        outcome
    }

    /// A superuser session on the test database, and the task driving it.
    async fn superuser(&self) -> (tokio_postgres::Client, tokio::task::JoinHandle<()>) {
        let (client, connection) = tokio_postgres::connect(
            &crate::common::pg::url_of(&self.db.superuser),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect as superuser");
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        (client, task)
    }

    /// Whether relation `name` exists.
    pub async fn exists(&self, name: &str) -> bool {
        let rows = self
            .rows(&format!("SELECT to_regclass('{name}') IS NOT NULL"))
            .await;
        rows[0].get(0)
    }
}

/// The notes plugin as the compiled plugin list.
pub fn with_notes() -> Extensions {
    Extensions {
        plugins: vec![Arc::new(NotesPlugin) as Arc<dyn Plugin>],
        initializers: Vec::new(),
    }
}

/// The loaded plugin `id` of a running server.
pub fn loaded<'a>(server: &'a TestServer, id: &str) -> &'a LoadedPlugin {
    server
        .state
        .plugins
        .plugins()
        .iter()
        .find(|p| p.id.as_str() == id)
        .unwrap_or_else(|| panic!("plugin {id} not loaded"))
}

fn examples_plugins() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join("plugins")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
