//! Each request is one unit of work for read routing: once it used the primary, its later
//! reads stay there (see [`crate::db::routing`]).
//!
//! A middleware of its own rather than `around(|ep, req| async move { .. })`: the closure's
//! async block would store the whole inner request future twice (once captured, once
//! awaited), and every layer outside copies what this one stores.

use poem::{Endpoint, Middleware, Request, Result};

/// The middleware; see the module documentation.
pub struct UnitOfWork;

impl<E: Endpoint> Middleware<E> for UnitOfWork {
    type Output = UnitOfWorkEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        UnitOfWorkEndpoint { inner }
    }
}

/// Endpoint wrapped by [`UnitOfWork`].
pub struct UnitOfWorkEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for UnitOfWorkEndpoint<E> {
    type Output = E::Output;

    fn call(&self, req: Request) -> impl std::future::Future<Output = Result<Self::Output>> + Send {
        crate::db::routing::unit_of_work(self.inner.call(req))
    }
}
