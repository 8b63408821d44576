//! The HTTP/1.1 server: poem's endpoint on hyper's connection, with what poem's own server
//! lacks against clients that never finish (its accept loop also spun on a full descriptor
//! table): a deadline for a request's head, counted from its first byte (from the accept
//! for a connection's first request), a keep-alive deadline for the next request, the caps
//! of [`ConnectionCaps`], and a back-off when the process runs out of descriptors.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::listener::Acceptor;
use poem::{Endpoint, EndpointExt, IntoEndpoint, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::connections::{ConnectionCaps, Slot};

/// How long accepting pauses when the process has no descriptor left.
const DESCRIPTOR_BACKOFF: Duration = Duration::from_millis(100);

/// How connections are served.
#[derive(Clone)]
pub struct ServeOptions {
    /// From a request's first byte to its last header.
    pub header_timeout: Duration,
    /// Longest wait for the next request on a kept-alive connection.
    pub keepalive_timeout: Duration,
    /// The connection caps.
    pub caps: Arc<ConnectionCaps>,
    /// Time in-flight requests get once shutdown starts.
    pub grace: Duration,
}

type HyperBody = http_body_util::combinators::BoxBody<Bytes, io::Error>;

/// Serves `ep` on connections from `acceptor` until `shutdown` completes, then lets
/// requests in flight finish for [`ServeOptions::grace`] at most.
pub async fn serve<A, E>(
    mut acceptor: A,
    ep: E,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    A: Acceptor,
    E: IntoEndpoint,
    E::Endpoint: 'static,
{
    let ep: Arc<dyn poem::endpoint::DynEndpoint<Output = Response>> = Arc::new(
        poem::endpoint::ToDynEndpoint(ep.into_endpoint().map_to_response()),
    );
    let stopping = CancellationToken::new();
    let cut = CancellationToken::new();
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    let mut warned: Option<Instant> = None;
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = options.caps.room() => permit,
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = acceptor.accept() => accepted,
        };
        let (io, local, remote, scheme) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                out_of_descriptors(&e, &mut warned);
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(DESCRIPTOR_BACKOFF) => continue,
                }
            }
        };
        let peer = remote.as_socket_addr().map(|a| a.ip());
        let slot = match peer {
            Some(ip) => match options.caps.admit(ip, permit) {
                Some(slot) => Some(slot),
                None => {
                    debug!(peer = %ip, "connection refused: its address has its share open");
                    continue;
                }
            },
            None => None,
        };
        let connection = Connection {
            ep: ep.clone(),
            options: options.clone(),
            stopping: stopping.clone(),
            cut: cut.clone(),
            _slot: slot,
        };
        tracker.spawn(connection.run(io, local, remote, scheme));
    }
    drop(acceptor);
    stopping.cancel();
    tracker.close();
    if tokio::time::timeout(options.grace, tracker.wait())
        .await
        .is_err()
    {
        cut.cancel();
        tracker.wait().await;
    }
    Ok(())
}

/// Logs an accept error: at most once a second when descriptors ran out, else at debug
/// (a client that reset before it was accepted).
fn out_of_descriptors(e: &io::Error, warned: &mut Option<Instant>) {
    let exhausted = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
    if !exhausted {
        debug!(error = %e, "accept failed");
        return;
    }
    if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
        *warned = Some(Instant::now());
        warn!(error = %e, "out of file descriptors: accepting paused; raise the limit (ulimit -n) or lower HTTP_MAX_CONNECTIONS");
    }
}

struct Connection {
    ep: Arc<dyn poem::endpoint::DynEndpoint<Output = Response>>,
    options: ServeOptions,
    stopping: CancellationToken,
    cut: CancellationToken,
    _slot: Option<Slot>,
}

impl Connection {
    async fn run<Io>(
        self,
        io: Io,
        local: poem::web::LocalAddr,
        remote: poem::web::RemoteAddr,
        scheme: poem::http::uri::Scheme,
    ) where
        Io: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let watch = Arc::new(HeadWatch::started_now());
        let peer = remote.to_string();
        let service = {
            let watch = watch.clone();
            let ep = self.ep.clone();
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let request = (req, local.clone(), remote.clone(), scheme.clone()).into();
                let busy = watch.request_started();
                let ep = ep.clone();
                async move {
                    let response: hyper::Response<HyperBody> =
                        ep.get_response(request).await.into();
                    drop(busy);
                    Ok::<_, std::convert::Infallible>(response)
                }
            })
        };
        let io = TokioIo::new(Watched {
            inner: io,
            watch: watch.clone(),
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.options.keepalive_timeout)
            .keep_alive(true)
            .serve_connection(io, service)
            .with_upgrades();
        tokio::pin!(conn);
        let head_timeout = self.options.header_timeout;
        tokio::select! {
            _ = &mut conn => return,
            () = watch.expired(head_timeout) => {
                debug!(peer = %peer, "closing a connection whose request head did not arrive in time");
                return;
            }
            () = self.stopping.cancelled() => {}
            () = self.cut.cancelled() => return,
        }
        conn.as_mut().graceful_shutdown();
        tokio::select! {
            _ = conn => {}
            () = self.cut.cancelled() => {}
        }
    }
}

/// When the head of the request being read began arriving, if one is being read.
struct HeadWatch {
    head_since: Mutex<Option<Instant>>,
    in_flight: AtomicUsize,
    changed: Notify,
}

impl HeadWatch {
    /// A new connection: its first request's head is due from now.
    fn started_now() -> Self {
        Self {
            head_since: Mutex::new(Some(Instant::now())),
            in_flight: AtomicUsize::new(0),
            changed: Notify::new(),
        }
    }

    fn head_since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.head_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: with no request in flight and none being read, a new head begins.
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return;
        }
        let mut since = self.head_since();
        if since.is_none() {
            *since = Some(Instant::now());
            drop(since);
            self.changed.notify_one();
        }
    }

    /// A head was read in full: no deadline until the request is answered.
    fn request_started(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        *self.head_since() = None;
        Busy(self.clone())
    }

    /// Completes once a head has taken longer than `limit`.
    async fn expired(&self, limit: Duration) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let since = *self.head_since();
            match since {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at + limit) => {
                            if *self.head_since() == Some(at) {
                                return;
                            }
                        }
                        () = notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

/// A request being handled; dropped when its answer is ready.
struct Busy(Arc<HeadWatch>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's socket, telling [`HeadWatch`] when bytes arrive.
struct Watched<Io> {
    inner: Io,
    watch: Arc<HeadWatch>,
}

impl<Io: AsyncRead + Unpin> AsyncRead for Watched<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.bytes_read();
        }
        polled
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Watched<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
