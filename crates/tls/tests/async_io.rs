//! tokio's and futures' async I/O traits on `tls::Conn` (features `tokio`
//! and `futures-io`): a tokio client and server, tokio's own `copy` and
//! `read_exact`, on a tokio runtime; `shutdown` as close_notify the peer
//! reads as end of stream; a deadline firing under a tokio poll; the same
//! echo with `futures::io` on `futures::executor`.

#![allow(clippy::result_large_err)]

mod support;

use std::future::poll_fn;
use std::io;
use std::time::{Duration, Instant};

use support::{PATIENCE, client_config, listener, server_config, soon};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn payload() -> Vec<u8> {
    (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap()
}

fn dialer() -> tls::Dialer {
    tls::Dialer::new(tcp::Dialer::new().timeout(PATIENCE), client_config())
}

#[test]
fn tokio_echo_over_tls() {
    runtime().block_on(async {
        let l = listener(&server_config());
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let conn = poll_fn(|cx| l.poll_accept(cx)).await.unwrap();
            conn.set_deadline(Some(soon())).unwrap();
            // Reader and writer halves: two `&Conn`s of one connection.
            let (mut r, mut w) = (&conn, &conn);
            let n = tokio::io::copy(&mut r, &mut w).await.expect("copy");
            w.shutdown().await.expect("shutdown: close_notify");
            n
        });
        let conn = dialer().connect_async(&format!("localhost:{}", addr.port())).await.unwrap();
        conn.set_deadline(Some(soon())).unwrap();
        let data = payload();
        let (mut r, mut w) = tokio::io::split(conn);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&sent).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut back = vec![0; data.len()];
        r.read_exact(&mut back).await.unwrap();
        assert!(back == data, "the echo differs");
        // close_notify from the server: a clean end of stream (a bare TCP
        // EOF would be an UnexpectedEof error).
        assert_eq!(r.read(&mut [0u8; 1]).await.unwrap(), 0);
        writer.await.unwrap();
        assert_eq!(server.await.unwrap(), 1 << 20);
    });
}

#[test]
fn shutdown_of_a_fresh_connection_runs_the_handshake_then_close_notify() {
    runtime().block_on(async {
        let l = listener(&server_config());
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut conn = poll_fn(|cx| l.poll_accept(cx)).await.unwrap();
            conn.set_deadline(Some(soon())).unwrap();
            let mut got = Vec::new();
            conn.read_to_end(&mut got).await.unwrap();
            got
        });
        // Lazy: no handshake yet.
        let tcp = tcp::Dialer::new().connect_async(&addr.to_string()).await.unwrap();
        let mut conn = tls::client(tcp, &client_config()).unwrap();
        conn.set_deadline(Some(soon())).unwrap();
        conn.shutdown().await.unwrap();
        assert!(conn.connection_state().handshake_complete);
        assert!(server.await.unwrap().is_empty(), "end of stream, nothing before it");
    });
}

#[test]
fn a_read_deadline_fires_under_a_tokio_poll_and_the_read_can_be_retried() {
    runtime().block_on(async {
        let l = listener(&server_config());
        let addr = l.local_addr().unwrap();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let mut conn = poll_fn(|cx| l.poll_accept(cx)).await.unwrap();
            conn.set_deadline(Some(soon())).unwrap();
            poll_fn(|cx| conn.poll_handshake(cx)).await.unwrap();
            go_rx.await.unwrap();
            conn.write_all(b"late").await.unwrap();
            conn.flush().await.unwrap();
            conn
        });
        let mut conn = dialer().connect_async(&addr.to_string()).await.unwrap();
        let started = Instant::now();
        conn.set_read_deadline(Some(started + Duration::from_millis(50))).unwrap();
        let mut buf = [0u8; 4];
        let err = conn.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(tls::DeadlineExceeded::is(&err), "{err:?}");
        assert!(started.elapsed() >= Duration::from_millis(50) && started.elapsed() < PATIENCE);
        conn.set_read_deadline(Some(soon())).unwrap();
        go_tx.send(()).unwrap();
        conn.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"late");
        drop(server.await.unwrap());
    });
}

/// futures' traits, apart from tokio's extension traits (their methods
/// share names).
mod futures_io_traits {
    use std::future::poll_fn;

    use futures::io::{AsyncReadExt, AsyncWriteExt};

    use super::dialer;
    use super::support::{listener, server_config, soon};

    #[test]
    fn futures_io_echo_over_tls_on_a_futures_executor() {
        let l = listener(&server_config());
        let addr = l.local_addr().unwrap();
        let mut pool = futures::executor::LocalPool::new();
        futures::task::LocalSpawnExt::spawn_local(&pool.spawner(), async move {
            let conn = poll_fn(|cx| l.poll_accept(cx)).await.unwrap();
            conn.set_deadline(Some(soon())).unwrap();
            let (r, mut w) = (&conn, &conn);
            futures::io::copy(r, &mut w).await.unwrap();
            AsyncWriteExt::close(&mut w).await.unwrap(); // close_notify
        })
        .unwrap();
        pool.run_until(async move {
            let mut conn = dialer().connect_async(&addr.to_string()).await.unwrap();
            conn.set_deadline(Some(soon())).unwrap();
            conn.write_all(b"over futures-io").await.unwrap();
            // `close` is also an inherent method (the full close): by path.
            AsyncWriteExt::close(&mut conn).await.unwrap(); // close_notify
            let mut back = Vec::new();
            conn.read_to_end(&mut back).await.unwrap();
            assert_eq!(back, b"over futures-io");
        });
        pool.run();
    }
}
