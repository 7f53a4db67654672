//! The `Waker` API (`poll_handshake`, `poll_read`, `poll_write`,
//! `poll_flush`, `poll_accept`) on an embedded reactor that the test drives
//! with `turn`, against our blocking peer; its deadlines and close; a
//! blocking reader and a polling writer on one connection; and the
//! lifecycle queries that must never block while a handshake runs.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use iopoll::Runtime;
use support::{PATIENCE, client_builder, client_config, serve_one, server_config, soon};
use testkit::task::{channel_waker, channel_waker_then, drive, drive_loop};
use tls::{Closed, DeadlineExceeded};

/// An embedded runtime, and a `Waker` whose wake-ups also interrupt its
/// `turn`.
fn embedded() -> (Runtime, Waker, mpsc::Receiver<()>) {
    let rt = Runtime::new().unwrap();
    let r = rt.clone();
    let (waker, woken) = channel_waker_then(move || r.wake());
    (rt, waker, woken)
}

/// Poll `f` to completion, turning `rt` between polls.
fn run<T>(rt: &Runtime, waker: &Waker, woken: &mpsc::Receiver<()>, f: impl FnMut(&mut Context<'_>) -> Poll<T>) -> T {
    drive_loop(
        waker,
        woken,
        || {
            rt.turn(Some(PATIENCE)).unwrap();
        },
        f,
    )
}

/// A TLS client whose socket lives in `rt`, not yet handshaken.
fn client_in(rt: &Runtime, addr: SocketAddr, cfg: &tls::Config) -> tls::Conn {
    let tcp = tcp::Dialer::new().runtime(rt.clone()).connect_addr(addr).unwrap();
    tls::client(tcp, cfg).unwrap()
}

/// Write all of `data` with `poll_write`, then `poll_flush`.
fn poll_write_all(rt: &Runtime, waker: &Waker, woken: &mpsc::Receiver<()>, c: &tls::Conn, data: &[u8]) {
    let mut sent = 0;
    while sent < data.len() {
        sent += run(rt, waker, woken, |cx| c.poll_write(cx, &data[sent..])).unwrap();
    }
    run(rt, waker, woken, |cx| c.poll_flush(cx)).unwrap();
}

/// Read exactly `len` bytes with `poll_read`.
fn poll_read_exact(rt: &Runtime, waker: &Waker, woken: &mpsc::Receiver<()>, c: &tls::Conn, len: usize) -> Vec<u8> {
    let mut got = vec![0u8; len];
    let mut n = 0;
    while n < len {
        let k = run(rt, waker, woken, |cx| c.poll_read(cx, &mut got[n..])).unwrap();
        assert!(k > 0, "end of stream after {n} of {len} bytes");
        n += k;
    }
    got
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    testkit::stream_bytes(seed, 0, &mut v);
    v
}

/// A server that echoes until end of stream, then closes cleanly.
fn echo_server() -> (SocketAddr, std::thread::JoinHandle<u64>) {
    serve_one(&server_config(), |mut c| {
        let mut r = &c;
        let mut w = &c;
        let n = io::copy(&mut r, &mut w).expect("echo");
        c.close_write().unwrap();
        c.flush().unwrap();
        n
    })
}

#[test]
fn an_embedded_client_handshakes_writes_and_reads_through_poll() {
    let (addr, server) = echo_server();
    let (rt, waker, woken) = embedded();
    let c = client_in(&rt, addr, &client_config());
    assert!(!c.connection_state().handshake_complete);
    run(&rt, &waker, &woken, |cx| c.poll_handshake(cx)).unwrap();
    let state = c.connection_state();
    assert!(state.handshake_complete && state.version.is_some(), "{state:?}");
    // Larger than any socket buffer: the writes must wait for the peer,
    // and the reads for the echo, through the reactor only.
    let data = bytes(3, 1 << 20);
    let mut echoed = Vec::new();
    let mut sent = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while echoed.len() < data.len() {
        run(&rt, &waker, &woken, |cx| {
            let mut moved = false;
            if sent < data.len() {
                if let Poll::Ready(r) = c.poll_write(cx, &data[sent..]) {
                    sent += r.unwrap();
                    moved = true;
                }
            } else if let Poll::Ready(r) = c.poll_flush(cx) {
                r.unwrap();
            }
            if let Poll::Ready(r) = c.poll_read(cx, &mut buf) {
                let n = r.unwrap();
                assert!(n > 0, "the echo ended early");
                echoed.extend_from_slice(&buf[..n]);
                moved = true;
            }
            if moved { Poll::Ready(()) } else { Poll::Pending }
        });
    }
    assert!(echoed == data, "the echo differs");
    c.close_write().unwrap();
    assert_eq!(run(&rt, &waker, &woken, |cx| c.poll_read(cx, &mut buf)).unwrap(), 0, "close_notify back");
    assert_eq!(server.join().unwrap(), data.len() as u64);
}

#[test]
fn an_embedded_server_accepts_and_serves_through_poll() {
    let (rt, waker, woken) = embedded();
    let l = tcp::ListenConfig::new().runtime(rt.clone()).bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = tls::Listener::from_tcp(l, &server_config()).unwrap();
    let addr = l.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut c = support::dial(addr, &client_config()).expect("dial");
        c.write_all(b"ping\n").unwrap();
        let line = support::read_line(&c).unwrap();
        c.close().unwrap();
        line
    });
    let s = run(&rt, &waker, &woken, |cx| l.poll_accept(cx)).unwrap();
    s.set_deadline(Some(soon())).unwrap();
    let line = poll_read_exact(&rt, &waker, &woken, &s, 5);
    assert_eq!(line, b"ping\n");
    assert_eq!(s.connection_state().server_name.as_deref(), Some("localhost"));
    poll_write_all(&rt, &waker, &woken, &s, b"pong\n");
    assert_eq!(client.join().unwrap(), "pong\n");
}

#[test]
fn poll_read_meets_its_deadline_and_a_close() {
    let (hold, stop) = mpsc::channel::<()>();
    // Handshakes, then says nothing until told.
    let (addr, server) = serve_one(&server_config(), move |c| {
        c.handshake().unwrap();
        let _ = stop.recv();
    });
    let (rt, waker, woken) = embedded();
    let c = client_in(&rt, addr, &client_config());
    run(&rt, &waker, &woken, |cx| c.poll_handshake(cx)).unwrap();
    let mut buf = [0u8; 16];

    c.set_read_deadline(Some(Instant::now() + Duration::from_millis(30))).unwrap();
    let err = run(&rt, &waker, &woken, |cx| c.poll_read(cx, &mut buf)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(DeadlineExceeded::is(&err), "{err:?}");

    // Retryable, as for the blocking call; then a close wakes the poller.
    c.set_read_deadline(None).unwrap();
    let mut cx = Context::from_waker(&waker);
    assert!(c.poll_read(&mut cx, &mut buf).is_pending());
    testkit::task::drain(&woken);
    c.close().unwrap();
    woken.recv_timeout(PATIENCE).expect("close wakes the poller");
    match c.poll_read(&mut cx, &mut buf) {
        Poll::Ready(Err(e)) => assert!(Closed::is(&e), "{e:?}"),
        other => panic!("after close: {other:?}"),
    }
    assert!(matches!(c.poll_flush(&mut cx), Poll::Ready(Err(ref e)) if Closed::is(e)));
    drop(hold);
    server.join().unwrap();
}

#[test]
fn poll_handshake_keeps_the_handshake_timeout() {
    // Accepts into the backlog and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = client_builder().handshake_timeout(Duration::from_millis(50)).build().unwrap();
    let (rt, waker, woken) = embedded();
    let c = client_in(&rt, silent.local_addr().unwrap(), &cfg);
    let err = run(&rt, &waker, &woken, |cx| c.poll_handshake(cx)).unwrap_err();
    assert!(matches!(err, tls::Error::HandshakeTimeout(_)), "{err:?}");
    // The overlay is gone: the connection's own deadlines are as before.
    assert_eq!(c.net_conn().read_deadline(), None);
    // It stays failed, for the blocking call too.
    assert!(c.handshake().is_err());
    assert!(!c.is_open());
}

#[test]
fn a_blocking_reader_and_a_polling_writer_share_one_connection() {
    let (addr, server) = echo_server();
    let rt = Runtime::spawn().unwrap();
    let tcp = tcp::Dialer::new().runtime(rt.clone()).connect_addr(addr).unwrap();
    let c = Arc::new(tls::client(tcp, &client_config()).unwrap());
    c.set_deadline(Some(soon())).unwrap();
    let data = bytes(9, 512 * 1024);
    let len = data.len();
    // The reader runs the handshake while the writer polls for it.
    let reader = {
        let c = c.clone();
        std::thread::spawn(move || {
            let mut got = vec![0u8; len];
            (&*c).read_exact(&mut got).map(|()| got)
        })
    };
    let (waker, woken) = channel_waker();
    let mut cx = Context::from_waker(&waker);
    let mut sent = 0;
    while sent < len {
        sent += drive(&woken, || c.poll_write(&mut cx, &data[sent..])).unwrap();
    }
    drive(&woken, || c.poll_flush(&mut cx)).unwrap();
    let got = reader.join().unwrap().expect("the blocking reader");
    assert!(got == data, "the echo differs");
    c.close_write().unwrap();
    assert_eq!(server.join().unwrap(), len as u64);
}

#[test]
fn a_poller_that_began_the_handshake_is_woken_when_a_blocking_reader_finishes_it() {
    // A server that answers the ClientHello only when told to.
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (answer, go) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let tcp = l.accept().unwrap();
        go.recv().unwrap();
        let c = tls::server(tcp, &server_config()).unwrap();
        c.set_deadline(Some(soon())).unwrap();
        let mut buf = [0u8; 4];
        (&c).read_exact(&mut buf).unwrap();
        (&c).write_all(&buf).unwrap();
        buf
    });
    // An embedded runtime that nobody turns: the socket cannot wake the
    // poller, only the connection itself can.
    let (rt, waker, woken) = embedded();
    let c = Arc::new(client_in(&rt, addr, &client_config()));
    c.set_deadline(Some(soon())).unwrap();
    let mut cx = Context::from_waker(&waker);
    // The writer begins the handshake and waits for the server's flight.
    assert!(c.poll_write(&mut cx, b"ping").is_pending());
    // A blocking reader takes the handshake over and finishes it, reading
    // that flight itself; the writer must hear of it.
    let reader = {
        let c = c.clone();
        std::thread::spawn(move || {
            let mut got = [0u8; 4];
            (&*c).read_exact(&mut got).map(|()| got)
        })
    };
    answer.send(()).unwrap();
    woken.recv_timeout(PATIENCE).expect("the writer was never told that the handshake finished");
    assert!(c.connection_state().handshake_complete);
    assert!(matches!(c.poll_write(&mut cx, b"ping"), Poll::Ready(Ok(4))));
    assert_eq!(&reader.join().unwrap().unwrap(), b"ping");
    assert_eq!(&server.join().unwrap(), b"ping");
}

#[test]
fn lifecycle_queries_never_block_during_a_handshake() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = tcp::Dialer::new().connect_addr(silent.local_addr().unwrap()).unwrap();
    let c = Arc::new(tls::client(tcp, &client_config()).unwrap());
    let stuck = {
        let c = c.clone();
        std::thread::spawn(move || c.handshake())
    };
    // Wait (bounded) until the handshake has started on the other thread.
    let until = Instant::now() + PATIENCE;
    while !format!("{c}").contains("handshaking") {
        assert!(Instant::now() < until, "the handshake never started: {c}");
        std::thread::yield_now();
    }
    let (done, finished) = mpsc::channel();
    let asker = {
        let c = c.clone();
        std::thread::spawn(move || {
            for _ in 0..100 {
                assert!(c.is_open());
                assert!(!c.connection_state().handshake_complete);
                assert!(format!("{c:?}").contains("handshake_complete: false"));
                assert!(format!("{c}").contains("handshaking"));
            }
            done.send(()).unwrap();
        })
    };
    finished.recv_timeout(PATIENCE).expect("a query blocked behind the handshake");
    asker.join().unwrap();
    c.close().unwrap();
    let err = stuck.join().unwrap().unwrap_err();
    assert!(Closed::is(&io::Error::from(err)), "a close ends the handshake with Closed");
}
