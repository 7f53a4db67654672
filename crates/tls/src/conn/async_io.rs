//! The `Waker` form of `close_write`, and the async I/O traits of tokio
//! and of the `futures` crates (features `tokio` and `futures-io`, off by
//! default) for [`Conn`] and `&Conn`.
//!
//! The traits are the inherent `poll_*` methods: the task's `Waker` goes to
//! reseau's reactor, so they work on any executor, and the deadlines keep
//! working under them (a passed deadline wakes the task, and the poll
//! returns the `TimedOut` error). `poll_shutdown` (tokio) and `poll_close`
//! (futures) run the handshake if it has not run, then send close_notify
//! with [`Conn::poll_close_write`]: the peer reads end of stream, this side
//! can still read, and nothing blocks. Dropping the connection then closes
//! the TCP connection without sending close_notify again.
//!
//! A child of `conn` (for its private state), in a file of its own so that
//! `conn.rs` keeps only the blocking and shared machinery.
//!
//! # Locks
//! `poll_close_write` takes `writer` with `poll_lock` (held for that one
//! poll; a contended lock leaves the task's `Waker` and returns
//! `Pending`), then `link` briefly to queue close_notify, then flushes as
//! every poller does: `conn`'s order (`writer`, then `link`), and no
//! `Waker` is woken under either.

#[cfg(any(feature = "tokio", feature = "futures-io"))]
use std::io;
use std::task::{Context, Poll, ready};

use super::{Conn, Step, WRITE_CLOSED, Wait, closed_error};
use crate::error::{Error, TlsError};

impl Conn {
    /// The `Waker` form of [`close_write`](Conn::close_write): queue
    /// close_notify (once) and return `Pending` until it, and every record
    /// queued before it, has been handed to the socket. The peer then reads
    /// end of stream; this side can still read; later writes fail. Needs a
    /// finished handshake, as `close_write` does. Honours the write
    /// deadline and `close`, never blocks, and may be polled again after
    /// `Ready` (it is then `Ready(Ok(()))` at once).
    ///
    /// ```no_run
    /// # async fn demo(conn: &tls::Conn) -> Result<(), tls::Error> {
    /// std::future::poll_fn(|cx| conn.poll_close_write(cx)).await?;
    /// # Ok(()) }
    /// ```
    pub fn poll_close_write(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.state.is_secured() {
            return Poll::Ready(Err(Error::Tls(TlsError::new("close_write", "the handshake has not completed"))));
        }
        let mut w = Wait::Task(cx);
        let _writer = ready!(w.lock(&self.writer));
        if self.state.is_closed() {
            return Poll::Ready(Err(closed_error("close_write")));
        }
        {
            let mut l = self.link.lock();
            // As in `write_with`: a `close` since the check above.
            if self.state.is_closed() {
                return Poll::Ready(Err(closed_error("close_write")));
            }
            if !l.engine.is_write_closed() {
                if let Step::Failed(e) = l.engine.close_notify() {
                    return Poll::Ready(Err(Error::Tls(e)));
                }
                self.state.advance(WRITE_CLOSED);
            }
        }
        // Polled again until the alert (and what was queued before it) is
        // on the socket; afterwards the output is empty and this is Ready.
        let flushed = ready!(self.flush(&mut w, true));
        Poll::Ready(flushed.map_err(|err| {
            Error::Tls(TlsError { op: "close_write", code: 0, message: String::new(), cause: Some(err) })
        }))
    }

    /// `poll_shutdown`'s and `poll_close`'s body: the handshake (a
    /// connection never used has none yet), then close_notify.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    fn poll_shutdown_io(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_handshake(cx))?;
        Poll::Ready(ready!(self.poll_close_write(cx)).map_err(io::Error::from))
    }
}

/// `AsyncRead` and `AsyncWrite` of both crates for `$t`; `$get` turns the
/// pinned receiver `$s` into a `&Conn`.
macro_rules! async_traits {
    ($t:ty, |$s:ident| $get:expr) => {
        #[cfg(feature = "tokio")]
        impl tokio::io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let $s = self;
                let n = ready!($get.poll_read(cx, buf.initialize_unfilled()))?;
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
        }

        #[cfg(feature = "tokio")]
        impl tokio::io::AsyncWrite for $t {
            fn poll_write(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                let $s = self;
                $get.poll_write(cx, buf)
            }

            fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self;
                $get.poll_flush(cx)
            }

            fn poll_shutdown(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self;
                $get.poll_shutdown_io(cx)
            }
        }

        #[cfg(feature = "futures-io")]
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                let $s = self;
                $get.poll_read(cx, buf)
            }
        }

        #[cfg(feature = "futures-io")]
        impl futures_io::AsyncWrite for $t {
            fn poll_write(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                let $s = self;
                $get.poll_write(cx, buf)
            }

            fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self;
                $get.poll_flush(cx)
            }

            fn poll_close(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self;
                $get.poll_shutdown_io(cx)
            }
        }
    };
}

async_traits!(Conn, |s| s.get_mut());
async_traits!(&Conn, |s| **s);
