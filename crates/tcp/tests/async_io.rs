//! tokio's and futures' async I/O traits on `tcp::Conn` and `unix::Conn`
//! (features `tokio` and `futures-io`): tokio's own `copy` and
//! `read_exact` at both ends of an echo, on a tokio runtime; the same with
//! `futures::io` on `futures::executor`; deadlines firing under a poll;
//! `poll_shutdown`/`poll_close` seen by the peer as end of stream.

use std::future::poll_fn;
use std::io;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tcp::unix;
use testkit::{PATIENCE, scratch_dir, soon};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// 1 MiB of deterministic bytes: more than a socket buffer holds, so both
/// ends must wait on the reactor.
fn payload() -> Vec<u8> {
    (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap()
}

/// The echo server's half, over any connection whose `&Conn` has tokio's
/// traits: `tokio::io::copy` from the read half to the write half (two
/// `&Conn`s of one connection), then `shutdown` (close_write).
async fn tokio_echo<C>(conn: C) -> u64
where
    for<'a> &'a C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut r, mut w) = (&conn, &conn);
    let n = tokio::io::copy(&mut r, &mut w).await.expect("copy");
    w.shutdown().await.expect("shutdown");
    n
}

/// The client's half: write everything while reading it back with
/// `read_exact`, then see end of stream after its own shutdown.
async fn tokio_client<C>(conn: C)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let data = payload();
    let (mut r, mut w) = tokio::io::split(conn);
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.expect("write_all");
        w.shutdown().await.expect("shutdown");
        w
    });
    let mut back = vec![0; data.len()];
    r.read_exact(&mut back).await.expect("read_exact");
    assert!(back == data, "the echo differs");
    let mut rest = Vec::new();
    assert_eq!(r.read_to_end(&mut rest).await.expect("read to end"), 0, "end of stream after the echo");
    writer.await.unwrap();
}

#[test]
fn tokio_echo_over_tcp() {
    runtime().block_on(async {
        let listener = tcp::listen("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let conn = poll_fn(|cx| listener.poll_accept(cx)).await.unwrap();
            conn.set_deadline(Some(soon())).unwrap();
            tokio_echo(conn).await
        });
        let conn = tcp::Dialer::new().connect_async(&addr.to_string()).await.unwrap();
        conn.set_deadline(Some(soon())).unwrap();
        tokio_client(conn).await;
        assert_eq!(server.await.unwrap(), 1 << 20);
    });
}

#[test]
fn tokio_echo_over_unix() {
    let path = scratch_dir("reseau-async-unix").join("echo.sock");
    runtime().block_on(async {
        let listener = unix::listen(&path).unwrap();
        let server = tokio::spawn(async move {
            let conn = poll_fn(|cx| listener.poll_accept(cx)).await.unwrap();
            conn.set_deadline(Some(soon())).unwrap();
            tokio_echo(conn).await
        });
        let conn = unix::connect(&path).unwrap();
        conn.set_deadline(Some(soon())).unwrap();
        tokio_client(conn).await;
        assert_eq!(server.await.unwrap(), 1 << 20);
    });
}

#[test]
fn futures_io_echo_on_a_futures_executor() {
    use futures::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (a, b) = unix::Conn::pair().unwrap();
    let listener = tcp::listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut pool = futures::executor::LocalPool::new();
    let spawner = pool.spawner();
    let echoes = std::rc::Rc::new(std::cell::Cell::new(0u64));
    // A unix pair and a TCP connection, echoed by `futures::io::copy`.
    for server in [Box::new(b) as Box<dyn EchoSide>, Box::new(TcpAccept(listener))] {
        let echoes = echoes.clone();
        futures::task::LocalSpawnExt::spawn_local(&spawner, async move {
            let n = server.echo().await;
            echoes.set(echoes.get() + n);
        })
        .unwrap();
    }
    pool.run_until(async move {
        let tcp_client = tcp::Dialer::new().connect_async(&addr.to_string()).await.unwrap();
        for mut conn in [Box::new(a) as Box<dyn FuturesConn>, Box::new(tcp_client)] {
            conn.write_all(b"over futures-io").await.unwrap();
            conn.close().await.unwrap(); // close_write
            let mut back = Vec::new();
            conn.read_to_end(&mut back).await.unwrap();
            assert_eq!(back, b"over futures-io");
        }
    });
    pool.run();
    assert_eq!(echoes.get(), 2 * 15);
}

trait FuturesConn: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin {}
impl<T: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin> FuturesConn for T {}

/// A server side for the futures test: echo with `futures::io::copy` over
/// the two `&Conn` halves, then close (close_write).
trait EchoSide {
    fn echo(self: Box<Self>) -> std::pin::Pin<Box<dyn Future<Output = u64>>>;
}

async fn futures_echo<C>(conn: &C) -> u64
where
    for<'a> &'a C: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin,
{
    use futures::io::AsyncWriteExt as _;
    let (r, mut w) = (conn, conn);
    let n = futures::io::copy(r, &mut w).await.expect("copy");
    w.close().await.expect("close");
    n
}

impl EchoSide for unix::Conn {
    fn echo(self: Box<Self>) -> std::pin::Pin<Box<dyn Future<Output = u64>>> {
        Box::pin(async move { futures_echo(&*self).await })
    }
}

struct TcpAccept(tcp::Listener);

impl EchoSide for TcpAccept {
    fn echo(self: Box<Self>) -> std::pin::Pin<Box<dyn Future<Output = u64>>> {
        Box::pin(async move {
            let conn = poll_fn(|cx| self.0.poll_accept(cx)).await.unwrap();
            futures_echo(&conn).await
        })
    }
}

#[test]
fn a_read_deadline_fires_under_a_tokio_poll_and_the_read_can_be_retried() {
    runtime().block_on(async {
        let (mut a, mut b) = unix::Conn::pair().unwrap();
        let started = Instant::now();
        a.set_read_deadline(Some(started + Duration::from_millis(50))).unwrap();
        let mut buf = [0u8; 8];
        let err = a.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(tcp::DeadlineExceeded::is(&err), "{err:?}");
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(started.elapsed() < PATIENCE, "the deadline woke the task");
        // Nothing is lost: with the deadline cleared the read goes on.
        a.set_read_deadline(Some(soon())).unwrap();
        b.write_all(b"late").await.unwrap();
        a.read_exact(&mut buf[..4]).await.unwrap();
        assert_eq!(&buf[..4], b"late");
    });
}

#[test]
fn a_deadline_moved_earlier_wakes_a_pending_tokio_read() {
    let listener = tcp::listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _peer = std::thread::spawn(move || listener.accept().map(|c| (c, listener)));
    runtime().block_on(async {
        let conn = std::sync::Arc::new(tcp::Dialer::new().connect_async(&addr.to_string()).await.unwrap());
        conn.set_read_deadline(Some(soon())).unwrap();
        let (started_tx, started_rx) = mpsc::channel();
        let reader = {
            let conn = conn.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1];
                let mut r = &*conn;
                // Polled once (Pending: the peer sends nothing), then told.
                let mut read = std::pin::pin!(r.read(&mut buf));
                let first = poll_fn(|cx| std::task::Poll::Ready(read.as_mut().poll(cx))).await;
                assert!(first.is_pending(), "the peer sent nothing");
                started_tx.send(()).unwrap();
                read.await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv_timeout(PATIENCE).unwrap()).await.unwrap();
        let moved = Instant::now();
        conn.set_read_deadline(Some(moved)).unwrap();
        let err = tokio::time::timeout(PATIENCE, reader).await.expect("woken").unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    });
}

#[test]
fn a_write_deadline_fires_under_a_tokio_poll() {
    runtime().block_on(async {
        let (mut a, _b) = unix::Conn::pair().unwrap();
        a.set_write_deadline(Some(Instant::now() + Duration::from_millis(50))).unwrap();
        // Nobody reads `_b`: the buffers fill, then the deadline fires.
        let chunk = vec![7u8; 64 * 1024];
        let err = loop {
            match a.write(&chunk).await {
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    });
}

#[test]
fn shutdown_is_close_write_the_peer_reads_eof_and_can_still_answer() {
    runtime().block_on(async {
        let listener = tcp::listen("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = tcp::Dialer::new().connect_async(&addr.to_string()).await.unwrap();
        let mut server = poll_fn(|cx| listener.poll_accept(cx)).await.unwrap();
        client.set_deadline(Some(soon())).unwrap();
        server.set_deadline(Some(soon())).unwrap();
        client.write_all(b"question").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"question", "then end of stream");
        // The client only closed its write side.
        server.write_all(b"answer").await.unwrap();
        let mut answer = [0u8; 6];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"answer");
    });
}

#[test]
fn close_from_another_thread_wakes_a_pending_tokio_read_with_closed() {
    runtime().block_on(async {
        let (a, _b) = unix::Conn::pair().unwrap();
        let a = std::sync::Arc::new(a);
        a.set_read_deadline(Some(soon())).unwrap();
        let reader = {
            let a = a.clone();
            tokio::spawn(async move {
                let mut r = &*a;
                r.read(&mut [0u8; 1]).await
            })
        };
        // Closed before or while the read waits: either way it fails Closed.
        std::thread::spawn(move || a.close().unwrap()).join().unwrap();
        let err = tokio::time::timeout(PATIENCE, reader).await.expect("woken").unwrap().unwrap_err();
        assert!(tcp::Closed::is(&err), "{err:?}");
    });
}
