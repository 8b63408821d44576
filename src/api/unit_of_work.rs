//! Each request is one unit of work for read routing (see [`crate::db::routing`]): once it
//! used the primary, its later reads stay there; and across requests, with read replicas
//! configured, a response to a request that used the primary carries the primary's WAL
//! position in `x-deploystack-lsn`. A later request presenting it is read from a replica only
//! once that replica replayed so far, so a client never reads older data than it wrote.
//!
//! A middleware of its own rather than `around(|ep, req| async move { .. })`: the closure's
//! async block would store the whole inner request future twice (once captured, once
//! awaited), and every layer outside copies what this one stores. The inner future is boxed
//! here for the same reason: what this layer keeps across the position's query is a pointer.

use poem::http::{HeaderValue, StatusCode};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

use crate::db::routing::{format_lsn, parse_lsn, unit_of_work_reporting};
use crate::db::Database;

/// The header carrying a WAL position, both ways.
pub const LSN_HEADER: &str = "x-deploystack-lsn";

/// The middleware; see the module documentation. Without a database (tests serving their
/// own handlers) no position is handed out.
pub struct UnitOfWork(pub Option<Database>);

impl<E: Endpoint> Middleware<E> for UnitOfWork {
    type Output = UnitOfWorkEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        UnitOfWorkEndpoint {
            inner,
            db: self.0.clone(),
        }
    }
}

/// Endpoint wrapped by [`UnitOfWork`].
pub struct UnitOfWorkEndpoint<E> {
    inner: E,
    db: Option<Database>,
}

impl<E: Endpoint> Endpoint for UnitOfWorkEndpoint<E> {
    type Output = Response;

    // Not an `async fn`: that would keep the request in its state beside the inner future.
    fn call(&self, req: Request) -> impl std::future::Future<Output = Result<Response>> + Send {
        let after = match req.headers().get(LSN_HEADER) {
            None => Ok(0),
            Some(value) => value.to_str().ok().and_then(parse_lsn).ok_or(()),
        };
        let work = after
            .ok()
            .map(|after| Box::pin(unit_of_work_reporting(after, self.inner.call(req))));
        let db = self.db.as_ref().filter(|db| db.has_replicas());
        async move {
            let Some(work) = work else {
                let body = super::error::ErrorBody::new(
                    "Bad Request",
                    format!(
                        "{LSN_HEADER} must be a WAL position as a previous response gave it, such as 0/16B3748"
                    ),
                );
                return Ok(super::error::json_response(StatusCode::BAD_REQUEST, &body));
            };
            let (result, used_primary) = work.await;
            let mut response = result?.into_response();
            if let Some(db) = db.filter(|_| used_primary) {
                // Without the primary's position, one no replica reaches: the client's reads
                // stay on the primary until its next write hands out a real one.
                let lsn = db.primary_lsn().await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "no WAL position for the response; the client reads from the primary");
                    u64::MAX
                });
                if let Ok(value) = HeaderValue::from_str(&format_lsn(lsn)) {
                    response.headers_mut().insert(LSN_HEADER, value);
                }
            }
            Ok(response)
        }
    }
}
