//! The async I/O traits of tokio and of the `futures` crates, behind the
//! `tokio` and `futures-io` features (both off by default), for
//! [`crate::Conn`] and [`crate::unix::Conn`], and for `&Conn` as `Read`
//! and `Write` are.
//!
//! They are the inherent `poll_read` and `poll_write`: the task's `Waker`
//! goes to reseau's reactor (never tokio's), so they work on any executor,
//! and the read and write deadlines keep working under them: a deadline
//! that passes wakes the task, and the poll returns the
//! [`TimedOut`](std::io::ErrorKind::TimedOut) error carrying
//! [`DeadlineExceeded`](crate::DeadlineExceeded). `poll_flush` has nothing
//! to do (nothing is buffered), and `poll_shutdown` (tokio) or `poll_close`
//! (futures) is [`close_write`](crate::Conn::close_write): the peer reads end of
//! stream, this side can still read. Dropping the connection closes it.
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn demo() -> std::io::Result<()> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let mut conn = tcp::Dialer::new().connect_async("127.0.0.1:7").await?;
//! conn.write_all(b"ping").await?;
//! let mut pong = [0; 4];
//! conn.read_exact(&mut pong).await?;
//! conn.shutdown().await?; // close_write
//! # Ok(()) }
//! ```

#[cfg(any(feature = "tokio", feature = "futures-io"))]
use std::io;
#[cfg(any(feature = "tokio", feature = "futures-io"))]
use std::pin::Pin;
#[cfg(any(feature = "tokio", feature = "futures-io"))]
use std::task::{Context, Poll};

#[cfg(any(feature = "tokio", feature = "futures-io"))]
use crate::{conn::Conn, unix};

/// `AsyncRead` and `AsyncWrite` of both crates for `$t` (a type whose
/// `poll_read`, `poll_write` and `close_write` take `&self`): `$get` turns
/// the pinned receiver into that `&self`.
macro_rules! async_traits {
    ($t:ty, |$s:ident| $get:expr) => {
        #[cfg(feature = "tokio")]
        impl tokio::io::AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let $s = self;
                let n = std::task::ready!($get.poll_read(cx, buf.initialize_unfilled()))?;
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
        }

        #[cfg(feature = "tokio")]
        impl tokio::io::AsyncWrite for $t {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                let $s = self;
                $get.poll_write(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self;
                Poll::Ready($get.close_write())
            }
        }

        #[cfg(feature = "futures-io")]
        impl futures_io::AsyncRead for $t {
            fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
                let $s = self;
                $get.poll_read(cx, buf)
            }
        }

        #[cfg(feature = "futures-io")]
        impl futures_io::AsyncWrite for $t {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                let $s = self;
                $get.poll_write(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self;
                Poll::Ready($get.close_write())
            }
        }
    };
}

async_traits!(Conn, |s| s.get_mut());
async_traits!(&Conn, |s| **s);
async_traits!(unix::Conn, |s| s.get_mut());
async_traits!(&unix::Conn, |s| **s);
