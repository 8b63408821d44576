//! A TCP stream that gives up when the server stops answering: once we have sent something
//! and nothing came back for longer than the deadline, reading fails, tokio-postgres closes
//! the connection, every query waiting on it fails, and the pool discards it.
//!
//! This is the client-side deadline of every query on a pooled connection. It catches what
//! neither `statement_timeout` (the server must be alive to enforce it) nor TCP keepalive
//! (idle connections only, minutes) nor `TCP_USER_TIMEOUT` (unacknowledged data only; a
//! frozen server or a middlebox that still acknowledges defeats it) can: a server that
//! vanished or hung while a request waits. An idle connection, or one that only receives
//! (LISTEN), never trips it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// A [`TcpStream`] with an answer deadline; see the module documentation.
pub struct AnswerDeadline {
    inner: TcpStream,
    limit: Duration,
    /// Armed by a write while not armed, disarmed by any byte read: we wait for the server.
    armed: bool,
    /// One timer per connection, reset for each wait (no allocation per query).
    timer: Pin<Box<Sleep>>,
}

impl AnswerDeadline {
    /// Wraps `inner`; `limit` is how long a sent request may go without any answer.
    pub fn new(inner: TcpStream, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            armed: false,
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl AsyncRead for AnswerDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.armed = false;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if self.armed && self.timer.as_mut().poll(cx).is_ready() {
                    let limit = self.limit;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "PostgreSQL did not answer within {} ms (POSTGRES_QUERY_TIMEOUT_MS)",
                            limit.as_millis()
                        ),
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for AnswerDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) && !self.armed {
            self.armed = true;
            let deadline = Instant::now() + self.limit;
            self.timer.as_mut().reset(deadline);
            // Registers this task with the timer: the read side may already have been polled
            // (and returned Pending) in this round, and only the timer would wake us.
            let _ = self.timer.as_mut().poll(cx);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
