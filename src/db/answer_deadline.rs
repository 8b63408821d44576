//! The client-side deadline of every query on a pooled connection: a stream wrapper that
//! follows the PostgreSQL protocol and fails the connection when the server stays silent
//! while we wait for it. tokio-postgres then closes the connection, every query waiting on
//! it fails, and the pool discards it.
//!
//! It catches what neither `statement_timeout` (the server must be alive to enforce it), nor
//! TCP keepalive (idle connections only, minutes), nor `TCP_USER_TIMEOUT` (unacknowledged
//! data only; a frozen server or a middlebox that still acknowledges defeats it) can: a
//! server that vanished or hung while a request waits, before or in the middle of its answer.
//!
//! "Waiting" is counted in protocol messages, not guessed from bytes: every message that
//! PostgreSQL answers with `ReadyForQuery` (the startup message, `Query`, `Sync`,
//! `FunctionCall`) adds one, every `ReadyForQuery` received removes one. While any is
//! outstanding, a silence (no byte either way) longer than the limit is fatal; an idle or
//! listening connection has nothing outstanding and never trips. Above TLS
//! ([`DeadlineTls`]) the wrapper sees the protocol, not ciphertext.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};

/// Frontend messages PostgreSQL answers with exactly one `ReadyForQuery`.
const QUERY: u8 = b'Q';
const SYNC: u8 = b'S';
const FUNCTION_CALL: u8 = b'F';
/// The backend's end of an answer.
const READY_FOR_QUERY: u8 = b'Z';

/// A stream with an answer deadline; see the module documentation.
pub struct AnswerDeadline<S> {
    inner: S,
    limit: Duration,
    sent: Frames,
    received: Frames,
    /// Messages sent that are still to be answered with `ReadyForQuery`.
    outstanding: u32,
    /// The last byte either way; the deadline is `limit` after it.
    last_activity: Instant,
    /// One timer per connection, re-armed lazily: it may fire before the deadline (then it
    /// is moved to the deadline), never after, so the timer wheel is touched about once per
    /// `limit`, not at every query (the hot path only reads the clock).
    timer: Pin<Box<Sleep>>,
}

impl<S> AnswerDeadline<S> {
    /// Wraps `inner`, whose first message we write is the startup message; `limit` is how
    /// long the server may stay silent while we wait for it.
    pub fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            sent: Frames::frontend(),
            received: Frames::backend(),
            outstanding: 0,
            last_activity: Instant::now(),
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }

    /// Notes a byte either way. While something is outstanding the timer must be running
    /// (and know this task: the read side may not be polled again before it fires); one
    /// that already fired (an idle period) is re-armed for the new deadline.
    fn activity(&mut self, cx: &mut Context<'_>) {
        self.last_activity = Instant::now();
        if self.outstanding == 0 {
            return;
        }
        if self.timer.is_elapsed() {
            self.timer.as_mut().reset(self.last_activity + self.limit);
        }
        // Cheap once registered: only the waker is refreshed, the wheel is not touched.
        let _ = self.timer.as_mut().poll(cx);
    }

    /// While something is outstanding: whether the server has been silent past the limit.
    /// A timer that fired early (there was activity since it was set) is moved on.
    fn overdue(&mut self, cx: &mut Context<'_>) -> bool {
        if self.outstanding == 0 || self.timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        let deadline = self.last_activity + self.limit;
        if Instant::now() >= deadline {
            return true;
        }
        self.timer.as_mut().reset(deadline);
        let _ = self.timer.as_mut().poll(cx);
        false
    }

    fn silent_too_long(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "PostgreSQL sent nothing for {} ms while a query waited (POSTGRES_QUERY_TIMEOUT_MS)",
                self.limit.as_millis()
            ),
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AnswerDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = &buf.filled()[before..];
                if !fresh.is_empty() {
                    let mut answered = 0u32;
                    this.received.feed(fresh, |kind| {
                        if kind == READY_FOR_QUERY {
                            answered += 1;
                        }
                    });
                    this.outstanding = this.outstanding.saturating_sub(answered);
                    this.activity(cx);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if this.overdue(cx) {
                    return Poll::Ready(Err(this.silent_too_long()));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AnswerDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            let mut asked = 0u32;
            this.sent.feed(&buf[..n], |kind| {
                if matches!(kind, STARTUP | QUERY | SYNC | FUNCTION_CALL) {
                    asked += 1;
                }
            });
            this.outstanding = this.outstanding.saturating_add(asked);
            if n > 0 {
                this.activity(cx);
            }
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

impl<S: TlsStream + Unpin> TlsStream for AnswerDeadline<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.inner.channel_binding()
    }
}

/// Puts [`AnswerDeadline`] above a TLS connector's stream, where it sees protocol messages.
pub struct DeadlineTls<T> {
    tls: T,
    limit: Duration,
}

impl<T> DeadlineTls<T> {
    /// Wraps the streams `tls` makes with a deadline of `limit`.
    pub fn new(tls: T, limit: Duration) -> Self {
        Self { tls, limit }
    }
}

impl<S, T> TlsConnect<S> for DeadlineTls<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
{
    type Stream = AnswerDeadline<T::Stream>;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Stream, T::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let limit = self.limit;
        let handshake = self.tls.connect(stream);
        Box::pin(async move { handshake.await.map(|s| AnswerDeadline::new(s, limit)) })
    }
}

/// Marker for the frontend's first message, which has no type byte.
const STARTUP: u8 = 0;

/// Splits one direction of the protocol into messages: a type byte (except the frontend's
/// startup message) and a length that counts itself.
struct Frames {
    header: [u8; 5],
    have: usize,
    body_left: usize,
    /// The next message is the untyped startup message.
    untyped_next: bool,
}

impl Frames {
    fn frontend() -> Self {
        Self {
            header: [0; 5],
            have: 0,
            body_left: 0,
            untyped_next: true,
        }
    }

    fn backend() -> Self {
        Self {
            untyped_next: false,
            ..Self::frontend()
        }
    }

    /// Consumes `bytes`, calling `on_message` with the type of each message whose header
    /// is complete ([`STARTUP`] for the startup message).
    fn feed(&mut self, mut bytes: &[u8], mut on_message: impl FnMut(u8)) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let skip = self.body_left.min(bytes.len());
                self.body_left -= skip;
                bytes = &bytes[skip..];
                continue;
            }
            let header_len = if self.untyped_next { 4 } else { 5 };
            let take = (header_len - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have < header_len {
                continue;
            }
            let (kind, length) = if self.untyped_next {
                (STARTUP, &self.header[..4])
            } else {
                (self.header[0], &self.header[1..5])
            };
            let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]);
            self.body_left = (length as usize).saturating_sub(4);
            self.have = 0;
            self.untyped_next = false;
            on_message(kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn frames_are_found_across_any_split() {
        let mut stream = Vec::new();
        // Startup: length 8 (itself + protocol version), no type byte.
        stream.extend_from_slice(&8u32.to_be_bytes());
        stream.extend_from_slice(&196_608u32.to_be_bytes());
        stream.extend(message(b'P', b"statement"));
        stream.extend(message(b'S', b""));
        stream.extend(message(b'Q', b"SELECT 1\0"));
        for chunk in [1, 2, 3, 7, stream.len()] {
            let mut frames = Frames::frontend();
            let mut kinds = Vec::new();
            for part in stream.chunks(chunk) {
                frames.feed(part, |k| kinds.push(k));
            }
            assert_eq!(kinds, [STARTUP, b'P', b'S', b'Q'], "chunks of {chunk}");
        }
    }

    #[test]
    fn backend_frames_have_a_type_from_the_first_byte() {
        let mut frames = Frames::backend();
        let mut kinds = Vec::new();
        let mut stream = message(b'R', &[0, 0, 0, 0]);
        stream.extend(message(b'Z', b"I"));
        frames.feed(&stream, |k| kinds.push(k));
        assert_eq!(kinds, [b'R', b'Z']);
    }
}
