//! Work that runs after the migrations, at setup and at every start: seeding settings,
//! syncing roles, registering plugin tables. Each area implements this trait and `app.rs`
//! composes the list, so no area imports another to take part.

use futures_util::future::BoxFuture;

use crate::db::LivePool;

/// One post-migration step. It must be idempotent: it runs at every start and may run in
/// several processes sharing the database.
pub trait Initializer: Send + Sync {
    /// Short name for logs.
    fn name(&self) -> &'static str;

    /// Does the work; an error is logged and turns the setup answer into `restart_required`.
    /// It gets the fail-fast pool, so a database that goes away mid-start fails it at once.
    fn run<'a>(&'a self, pool: &'a LivePool) -> BoxFuture<'a, anyhow::Result<()>>;
}
