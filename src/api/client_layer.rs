//! Resolves each request's [`Client`] once, before anything else looks at it: the limits,
//! the request log and the cookie's `Secure` flag all see the same client.

use std::future::Future;
use std::sync::Arc;

use poem::http::uri::Scheme;
use poem::{Endpoint, Middleware, Request, Result};

use crate::net::{Client, TrustedProxies};

/// The middleware, with the proxies whose forwarding headers are believed.
pub struct ResolveClient(pub Arc<TrustedProxies>);

impl<E: Endpoint> Middleware<E> for ResolveClient {
    type Output = ResolveClientEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ResolveClientEndpoint {
            inner,
            proxies: self.0.clone(),
        }
    }
}

/// Endpoint wrapped by [`ResolveClient`].
pub struct ResolveClientEndpoint<E> {
    inner: E,
    proxies: Arc<TrustedProxies>,
}

impl<E: Endpoint> Endpoint for ResolveClientEndpoint<E> {
    type Output = E::Output;

    // Not an `async fn`: nothing to keep beside the inner future.
    fn call(&self, mut req: Request) -> impl Future<Output = Result<E::Output>> + Send {
        let client = resolve(&self.proxies, &req);
        req.extensions_mut().insert(client);
        self.inner.call(req)
    }
}

/// The client of `req` as `proxies` let us tell.
pub fn resolve(proxies: &TrustedProxies, req: &Request) -> Client {
    let direct_tls = *req.scheme() == Scheme::HTTPS;
    match req.remote_addr().as_socket_addr().map(|a| a.ip()) {
        Some(peer) => Client {
            ip: Some(proxies.client_of(peer, req.headers())),
            over_tls: direct_tls || proxies.forwarded_tls(peer, req.headers()),
            via_proxy: proxies.contains(peer),
        },
        None => Client {
            ip: None,
            over_tls: direct_tls,
            via_proxy: false,
        },
    }
}

/// The client [`ResolveClient`] found for `req` (or, for a request that did not pass it,
/// the TCP peer).
pub fn client_of(req: &Request) -> Client {
    req.extensions()
        .get::<Client>()
        .copied()
        .unwrap_or_else(|| resolve(&TrustedProxies::default(), req))
}
