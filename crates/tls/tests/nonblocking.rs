//! What never blocks the polling thread, with no feature: the dial as a
//! future (`tls::Dialer::connect_async`: resolve, connect, handshake) and
//! close_notify by `Conn::poll_close_write`, on a current-thread tokio
//! runtime and on `futures::executor`, against reseau's own TLS server and
//! `openssl s_server`.

#![allow(clippy::result_large_err)]

mod support;

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::{PATIENCE, SServer, client_config, serve_one, server_config, soon};

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
}

fn dialer() -> tls::Dialer {
    tls::Dialer::new(tcp::Dialer::new().timeout(PATIENCE), client_config())
}

fn past() -> Instant {
    Instant::now().checked_sub(Duration::from_secs(1)).unwrap_or_else(Instant::now)
}

/// A loopback port nobody listens on (free when picked).
fn refused_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[test]
fn the_future_is_send_and_static() {
    fn send_static<T: Send + 'static>(_: &T) {}
    let d = dialer();
    let address = String::from("localhost:9");
    let f = d.connect_async(&address);
    drop((d, address));
    send_static(&f);
}

#[test]
fn connect_async_dials_and_handshakes_with_reseau() {
    let (addr, server) = serve_one(&server_config(), |mut c| {
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        c.write_all(&buf).unwrap();
        buf
    });
    let mut conn = block_on(dialer().connect_async(&format!("localhost:{}", addr.port()))).unwrap();
    let state = conn.connection_state();
    assert!(state.handshake_complete, "the future finished the handshake");
    assert_eq!(state.server_name.as_deref(), Some("localhost"));
    conn.set_deadline(Some(soon())).unwrap();
    conn.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    conn.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello");
    assert_eq!(&server.join().unwrap(), b"hello");
}

#[test]
fn connect_async_against_openssl_s_server_on_a_futures_executor() {
    let s = SServer::start(&[]);
    let conn = futures::executor::block_on(dialer().connect_async(&s.addr.to_string())).unwrap();
    let mut conn = conn;
    conn.set_deadline(Some(soon())).unwrap();
    conn.write_all(b"reseau\n").unwrap();
    let mut back = [0u8; 7];
    conn.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"uaeser\n", "s_server -rev answers each line reversed");
}

#[test]
fn connect_async_with_a_passed_deadline_names_the_dial() {
    let d = tls::Dialer::new(tcp::Dialer::new().deadline(past()), client_config());
    let err = block_on(d.connect_async("127.0.0.1:9")).unwrap_err();
    assert!(matches!(&err, tls::Error::Dial(op) if op.is_timeout()), "{err:?}");
    assert_eq!(err.to_string(), "dial tcp 127.0.0.1:9: i/o timeout");
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::TimedOut);
}

#[test]
fn connect_async_to_a_refused_port() {
    let addr = refused_addr();
    let err = block_on(dialer().connect_async(&addr.to_string())).unwrap_err();
    match &err {
        tls::Error::Dial(op) => {
            assert!(matches!(&op.err, tcp::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused), "{op:?}")
        }
        other => panic!("want Error::Dial(refused), got {other:?}"),
    }
    assert_eq!(err.to_string(), dialer().connect(&addr.to_string()).unwrap_err().to_string());
}

#[test]
fn connect_async_deadline_bounds_the_handshake() {
    // A TCP listener that never answers the ClientHello: the dial's
    // timeout ends the handshake, reported as the i/o timeout it is.
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let d = tls::Dialer::new(tcp::Dialer::new().timeout(Duration::from_millis(100)), client_config());
    let start = Instant::now();
    let err = block_on(d.connect_async(&addr.to_string())).unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(100) && start.elapsed() < PATIENCE);
    assert!(tls::IsTimeout::is_timeout(&err), "{err:?}");
    drop(l);
}

#[test]
fn connect_async_checks_the_configuration_first() {
    // A verifying client with no name to verify (no host in the address,
    // none configured): no byte is sent, as with `connect`.
    let cfg = tls::Config::builder().build().unwrap();
    let d = tls::Dialer::new(tcp::Dialer::new(), cfg);
    let address = format!(":{}", refused_addr().port());
    let err = block_on(d.connect_async(&address)).unwrap_err();
    assert!(matches!(err, tls::Error::Config(_)), "{err:?}");
    assert_eq!(err.to_string(), d.connect(&address).unwrap_err().to_string());
}

#[test]
fn poll_close_write_is_close_notify_the_peer_reads_end_of_stream() {
    let (addr, server) = serve_one(&server_config(), |mut c| {
        let mut got = Vec::new();
        // Ok(0) only after close_notify: a bare TCP EOF is an error.
        c.read_to_end(&mut got).unwrap();
        // This side can still write: the client only closed its own.
        c.write_all(b"after").unwrap();
        c.close_write().unwrap();
        got
    });
    block_on(async {
        let conn = dialer().connect_async(&addr.to_string()).await.unwrap();
        conn.set_deadline(Some(soon())).unwrap();
        poll_fn(|cx| conn.poll_write(cx, b"bye")).await.unwrap();
        poll_fn(|cx| conn.poll_close_write(cx)).await.unwrap();
        // Again: already sent, Ready at once.
        poll_fn(|cx| conn.poll_close_write(cx)).await.unwrap();
        let err = poll_fn(|cx| conn.poll_write(cx, b"more")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
        let mut buf = [0u8; 16];
        let mut got = Vec::new();
        loop {
            match poll_fn(|cx| conn.poll_read(cx, &mut buf)).await.unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(got, b"after");
    });
    assert_eq!(server.join().unwrap(), b"bye");
}

#[test]
fn poll_close_write_before_the_handshake_fails_as_close_write_does() {
    let (addr, _server) = serve_one(&server_config(), |c| c.handshake().is_err());
    let tcp = tcp::connect_addr(addr).unwrap();
    let conn = tls::client(tcp, &client_config()).unwrap();
    let err = block_on(poll_fn(|cx| conn.poll_close_write(cx))).unwrap_err();
    assert_eq!(err.to_string(), conn.close_write().unwrap_err().to_string());
    conn.close().unwrap();
}

#[test]
fn poll_close_write_on_a_closed_connection_is_closed() {
    let (addr, server) = serve_one(&server_config(), |c| {
        c.handshake().unwrap();
        let mut b = [0u8; 1];
        let _ = (&c).read(&mut b);
    });
    let conn = dialer().connect(&addr.to_string()).unwrap();
    conn.close().unwrap();
    let err = block_on(poll_fn(|cx| conn.poll_close_write(cx))).unwrap_err();
    assert!(tcp::Closed::is(&io::Error::from(err)));
    server.join().unwrap();
}
