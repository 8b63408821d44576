//! The bb8 pool of diesel-async connections that every request handler draws from.

use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::AsyncPgConnection;
use futures_util::FutureExt;

use crate::config::PoolSettings;
use crate::db::connector::PgConnector;

/// The pool type shared through [`crate::db::Database`].
pub type DbPool = bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// A connection checked out of the pool, owned so it can outlive the pool handle it came from.
pub type DbConn = bb8::PooledConnection<'static, AsyncDieselConnectionManager<AsyncPgConnection>>;

/// Builds the pool without waiting for connections, so a server that is down at this moment
/// does not stop the process; connection errors surface per request as 503s.
pub fn build_pool(connector: &PgConnector, settings: &PoolSettings) -> DbPool {
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    let connector = connector.clone();
    manager_config.custom_setup = Box::new(move |_url: &str| {
        let connector = connector.clone();
        async move { connector.connect().await.map_err(Into::into) }.boxed()
    });
    // The URL is unused: `custom_setup` connects with the typed config (no password in a string).
    let manager = AsyncDieselConnectionManager::new_with_config("postgres://", manager_config);
    bb8::Pool::builder()
        .max_size(settings.max_size)
        .min_idle(Some(settings.min_idle))
        .connection_timeout(settings.connect_timeout)
        .idle_timeout(Some(settings.idle_timeout))
        // Checking every checkout with `SELECT 1` halves throughput; diesel-async still drops
        // connections that are closed or stuck in a transaction when they are returned.
        .test_on_check_out(false)
        // Fail the request at once when PostgreSQL is down instead of retrying until the timeout.
        .retry_connection(false)
        .build_unchecked(manager)
}
