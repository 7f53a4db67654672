//! The rows of issue 25: Unix domain sockets and the tokio traits.
//!
//! - `unix-rtt`: a 1-byte ping-pong over a reseau `unix::Conn` pair against
//!   std's `UnixStream` pair, each end on a thread of its own (blocking).
//! - `tokio-echo`: a 1-byte echo on a tokio runtime through
//!   `tokio::io::{AsyncReadExt, AsyncWriteExt}`: reseau's `tcp::Conn`
//!   (the `tokio` feature; its wakers come from reseau's reactor thread)
//!   against tokio's own `TcpStream` (woken by tokio's reactor on the
//!   workers). The figure says what the extra hop costs.

use std::future::poll_fn;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::harness::{Bench, Mode};

pub fn run(b: &mut Bench) {
    unix_rtt(b);
    tokio_echo(b);
}

fn unix_rtt(b: &mut Bench) {
    if !b.wants("unix-rtt") {
        return;
    }
    let n = if b.mode == Mode::Full { 50_000 } else { 20_000 };
    b.compare(
        "unix 1-byte ping-pong RTT",
        "us",
        "std UnixStream",
        None,
        || {
            let (a, z) = tcp::unix::Conn::pair().expect("pair");
            rtt_threads(a, z, n)
        },
        || {
            let (a, z) = UnixStream::pair().expect("pair");
            rtt_threads(a, z, n)
        },
    );
}

/// `n` round trips of one byte from `a` to an echoing `z` on another thread;
/// microseconds per round trip.
fn rtt_threads<C: Read + Write + Send + 'static>(mut a: C, mut z: C, n: usize) -> f64 {
    let echo = thread::spawn(move || {
        let mut byte = [0u8];
        while z.read_exact(&mut byte).is_ok() {
            if z.write_all(&byte).is_err() {
                break;
            }
        }
    });
    let mut byte = [7u8];
    let start = Instant::now();
    for _ in 0..n {
        a.write_all(&byte).expect("write");
        a.read_exact(&mut byte).expect("read");
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    drop(a);
    echo.join().expect("echo");
    us
}

fn tokio_echo(b: &mut Bench) {
    if !b.wants("tokio-echo") {
        return;
    }
    let n = if b.mode == Mode::Full { 50_000 } else { 20_000 };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    b.compare(
        "tokio-trait 1-byte echo RTT",
        "us",
        "tokio TcpStream",
        None,
        || rt.block_on(echo_reseau(n)),
        || rt.block_on(echo_tokio(n)),
    );
}

async fn echo_reseau(n: usize) -> f64 {
    let l = tcp::listen("127.0.0.1:0").expect("listen");
    let addr = l.local_addr().expect("addr").to_string();
    let server = tokio::spawn(async move { echo(poll_fn(|cx| l.poll_accept(cx)).await.expect("accept")).await });
    let c = tcp::Dialer::new().connect_async(&addr).await.expect("connect");
    let us = ping_pong(c, n).await;
    server.await.expect("server");
    us
}

async fn echo_tokio(n: usize) -> f64 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let addr = l.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (s, _) = l.accept().await.expect("accept");
        s.set_nodelay(true).expect("nodelay");
        echo(s).await
    });
    let c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    c.set_nodelay(true).expect("nodelay");
    let us = ping_pong(c, n).await;
    server.await.expect("server");
    us
}

async fn echo(mut c: impl AsyncRead + AsyncWrite + Unpin) {
    let mut byte = [0u8];
    while c.read_exact(&mut byte).await.is_ok() {
        if c.write_all(&byte).await.is_err() {
            break;
        }
    }
}

/// `n` round trips of one byte; microseconds per round trip. Dropping `c`
/// ends the echo.
async fn ping_pong(mut c: impl AsyncRead + AsyncWrite + Unpin, n: usize) -> f64 {
    let mut byte = [7u8];
    let start = Instant::now();
    for _ in 0..n {
        c.write_all(&byte).await.expect("write");
        c.read_exact(&mut byte).await.expect("read");
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}
