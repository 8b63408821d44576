//! Work that runs after the migrations, at setup and at every start: seeding settings,
//! syncing roles, registering plugin tables. Each area adds its own initializer.

use futures_util::future::BoxFuture;

use crate::db::DbPool;

/// One post-migration step. It must be idempotent: it runs at every start and may run in
/// several processes sharing the database.
pub trait Initializer: Send + Sync {
    /// Short name for logs.
    fn name(&self) -> &'static str;

    /// Does the work; an error is logged and turns the setup answer into `restart_required`.
    fn run<'a>(&'a self, pool: &'a DbPool) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// The initializers of the core backend, in the order they run: roles, then global
/// settings (encrypted with `cipher`).
pub fn core_initializers(
    cipher: std::sync::Arc<crate::settings::SettingsCipher>,
) -> Vec<std::sync::Arc<dyn Initializer>> {
    vec![
        std::sync::Arc::new(crate::services::RoleSync),
        std::sync::Arc::new(crate::settings::SettingsInitializer::new(cipher)),
    ]
}
