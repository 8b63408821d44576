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

    /// Does the work; an error is logged and turns the setup answer into `restart_required`
    /// (unless [`Initializer::must_pass`]). It gets the fail-fast pool, so a database that
    /// goes away mid-start fails it at once. An error that is a [`Refusal`] stops the start.
    fn run<'a>(&'a self, pool: &'a LivePool) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Whether the later initializers and serving depend on this one: when it fails, the
    /// attempt stops there (and is retried) instead of going on with `restart_required`.
    fn must_pass(&self) -> bool {
        false
    }
}

/// An initializer's verdict that this process must not serve this database as configured
/// (e.g. a wrong encryption secret): no retry helps, only a change of configuration. The
/// message is shown to operators and callers, so it names settings, never secrets.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);
