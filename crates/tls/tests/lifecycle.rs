//! A connection's life, our client against our server: lazy and concurrent
//! handshakes, full-duplex transfer, garbage from a raw client, session
//! resumption, half-close with close_notify versus an abrupt end, and the
//! key log.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Barrier;

use support::{client_builder, client_config, dial, listener, pki, serve, serve_one, server_config};
use tls::Version;

fn pattern(seed: u32, len: usize) -> Vec<u8> {
    // A cheap generator whose period is much longer than any record.
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// One thread writes `send` while this one reads `expect.len()` bytes.
fn duplex(c: &tls::Conn, send: &[u8], expect: &[u8]) {
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut w = c;
            w.write_all(send)
        });
        let mut got = vec![0u8; expect.len()];
        let mut r = c;
        r.read_exact(&mut got).unwrap();
        writer.join().unwrap().unwrap();
        assert!(got == expect, "{} bytes received, not the bytes sent", got.len());
    });
}

#[test]
fn full_duplex_4_mib_each_way() {
    const N: usize = 4 << 20;
    let (up, down) = (pattern(1, N), pattern(2, N));
    let (up2, down2) = (up.clone(), down.clone());
    let (addr, server) = serve_one(&server_config(), move |c| {
        duplex(&c, &down2, &up2);
    });
    let c = dial(addr, &client_config()).unwrap();
    duplex(&c, &up, &down);
    server.join().unwrap();
}

#[test]
fn garbage_from_a_raw_client_fails_that_handshake_only() {
    let l = listener(&server_config());
    let addr = l.local_addr().unwrap();
    let garbage: [&[u8]; 2] = [b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", &[0xff; 64]];
    for junk in garbage {
        let mut raw = TcpStream::connect(addr).unwrap();
        raw.write_all(junk).unwrap();
        let c = l.accept().unwrap();
        c.set_deadline(Some(support::soon())).unwrap();
        match c.handshake() {
            Err(tls::Error::Tls(e)) => assert_eq!(e.op, "handshake"),
            other => panic!("garbage {junk:?} should fail the handshake with Error::Tls, got {other:?}"),
        }
        assert!(!c.is_open(), "a failed handshake leaves the connection unusable");
        assert!(matches!(c.handshake(), Err(tls::Error::Tls(_))), "and it stays failed");
    }
    // The listener still serves a real client.
    assert!(l.is_open());
    let client = std::thread::spawn(move || {
        let mut c = dial(addr, &client_config()).unwrap();
        c.write_all(b"real").unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).unwrap();
        buf
    });
    let mut c = l.accept().unwrap();
    c.set_deadline(Some(support::soon())).unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).unwrap();
    c.write_all(&buf).unwrap();
    assert_eq!(&client.join().unwrap(), b"real");
}

/// Dial once with each of `configs` in turn, reading the server's greeting
/// each time; whether each connection resumed, as the clients and as the
/// server saw it.
fn resumed(max: Version, configs: &[&tls::Config]) -> (Vec<bool>, Vec<bool>) {
    let (addr, server) = serve(&server_config(), configs.len(), |_, mut c| {
        c.handshake().unwrap();
        c.write_all(b"hi").unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        c.connection_state().session_resumed
    });
    let talk = |cfg: &tls::Config| {
        let mut c = dial(addr, cfg).unwrap();
        // TLS 1.3 tickets arrive after the handshake: reading the greeting
        // processes them before this connection ends.
        let mut buf = [0u8; 2];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
        let st = c.connection_state();
        assert_eq!(st.version, Some(max));
        c.close_write().unwrap();
        st.session_resumed
    };
    let clients = configs.iter().map(|cfg| talk(cfg)).collect();
    (clients, server.join().unwrap())
}

/// Two dials with one client `Config`: the second resumes the first's
/// session (on both ends); a fresh `Config` does not.
fn check_resumption(max: Version) {
    let cfg = client_builder().max_version(max).build().unwrap();
    let fresh = client_builder().max_version(max).build().unwrap();
    let (clients, server) = resumed(max, &[&cfg, &cfg, &fresh]);
    assert_eq!(clients, [false, true, false], "{max}: full, resumed with the same Config, full with another");
    assert_eq!(server, [false, true, false], "{max}: the server agrees");
}

#[test]
fn resumption_tls13() {
    check_resumption(Version::Tls13);
}

#[test]
fn resumption_tls12() {
    check_resumption(Version::Tls12);
}

/// `session_resumption(false)`: every dial with the Config is a full
/// handshake, though the server would resume.
#[test]
fn resumption_off_never_resumes() {
    for max in [Version::Tls13, Version::Tls12] {
        let off = client_builder().max_version(max).session_resumption(false).build().unwrap();
        let (clients, server) = resumed(max, &[&off, &off, &off]);
        assert_eq!(clients, [false; 3], "{max}: the client resumed with resumption off");
        assert_eq!(server, [false; 3], "{max}: the server resumed a client with resumption off");
    }
}

fn check_close_write(max: Version) {
    let (addr, server) = serve_one(&server_config(), |mut c| {
        let mut got = Vec::new();
        // The client's close_notify: a clean end of stream...
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"request");
        assert_eq!(c.read(&mut [0u8; 8]).unwrap(), 0, "and it stays at end of stream");
        // ...while this side can still write.
        c.write_all(b"response").unwrap();
    });
    let mut c = dial(addr, &client_builder().max_version(max).build().unwrap()).unwrap();
    c.write_all(b"request").unwrap();
    c.close_write().unwrap();
    let e = c.write(b"more").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{max}: writes after close_write fail: {e}");
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap(); // the server's close (with close_notify) ends it cleanly
    assert_eq!(got, b"response", "{max}");
    assert!(c.close_write().is_ok(), "a second close_write is a no-op");
    server.join().unwrap();
}

#[test]
fn close_write_half_closes_tls13() {
    check_close_write(Version::Tls13);
}

#[test]
fn close_write_half_closes_tls12() {
    check_close_write(Version::Tls12);
}

#[test]
fn close_write_needs_a_handshake() {
    let (addr, server) = serve_one(&server_config(), |c| c.handshake().is_ok());
    let c = tls::client(tcp::connect_addr(addr).unwrap(), &client_config()).unwrap();
    assert!(matches!(c.close_write(), Err(tls::Error::Tls(_))), "close_write before the handshake");
    c.handshake().unwrap();
    c.close_write().unwrap();
    assert!(server.join().unwrap());
}

#[test]
fn end_of_stream_without_close_notify_is_unexpected_eof() {
    let (addr, server) = serve(&server_config(), 2, |i, mut c| {
        c.write_all(b"data").unwrap();
        if i == 0 {
            c.close().unwrap(); // close_notify, then TCP close
        } else {
            c.net_conn().close().unwrap(); // TCP close only
        }
    });
    let mut buf = [0u8; 4];
    // Clean: the data, then Ok(0), again and again.
    let mut c = dial(addr, &client_config()).unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"data");
    assert_eq!(c.read(&mut buf).unwrap(), 0, "close_notify reads as end of stream");
    assert_eq!(c.read(&mut buf).unwrap(), 0);
    // Abrupt: the data, then UnexpectedEof.
    let mut c = dial(addr, &client_config()).unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"data");
    let e = c.read(&mut buf).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "no close_notify: {e}");
    let mut rest = Vec::new();
    assert!(c.read_to_end(&mut rest).is_err(), "read_to_end reports the truncation too");
    server.join().unwrap();
}

#[test]
fn lazy_handshake_runs_on_first_use() {
    let (addr, server) = serve_one(&server_config(), |mut c| {
        assert!(!c.connection_state().handshake_complete, "accept does not handshake");
        let mut buf = [0u8; 3];
        c.read_exact(&mut buf).unwrap(); // handshakes
        assert!(c.connection_state().handshake_complete);
        c.write_all(&buf).unwrap();
    });
    let mut c = tls::client(tcp::connect_addr(addr).unwrap(), &client_config()).unwrap();
    let st = c.connection_state();
    assert!(!st.handshake_complete, "client() does not handshake");
    assert_eq!(st, tls::ConnectionState::default(), "nothing is known before the handshake");
    c.write_all(b"abc").unwrap(); // handshakes
    assert!(c.connection_state().handshake_complete);
    let mut buf = [0u8; 3];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"abc");
    server.join().unwrap();
}

/// The key-log lines with `label`, as (client random, secret).
fn keylog_lines(text: &str, label: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            (f.next() == Some(label)).then(|| (f.next().unwrap_or("").to_string(), f.next().unwrap_or("").to_string()))
        })
        .collect()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn concurrent_handshake_callers_share_one_handshake() {
    let keylog = pki().scratch("concurrent.keylog");
    let cfg = client_builder().keylog_file(&keylog).build().unwrap();
    let (addr, server) = serve(&server_config(), 1, |_, c| {
        c.handshake().unwrap();
        let mut buf = [0u8; 4];
        (&c).read_exact(&mut buf).unwrap();
        (&c).write_all(&buf).unwrap();
    });
    let c = tls::client(tcp::connect_addr(addr).unwrap(), &cfg).unwrap();
    let barrier = Barrier::new(4);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    c.handshake().map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.iter().all(Result::is_ok), "every caller succeeds: {results:?}");
    assert!(c.connection_state().handshake_complete);
    let mut w = &c;
    w.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    (&c).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    server.join().unwrap();
    // One handshake: one client random, one set of secrets.
    let text = std::fs::read_to_string(&keylog).unwrap();
    let secrets = keylog_lines(&text, "CLIENT_TRAFFIC_SECRET_0");
    assert_eq!(secrets.len(), 1, "the handshake ran once:\n{text}");
    let mut randoms: Vec<&str> = text.lines().filter_map(|l| l.split(' ').nth(1)).collect();
    randoms.sort_unstable();
    randoms.dedup();
    assert_eq!(randoms.len(), 1, "one client random:\n{text}");
}

#[test]
fn keylog_tls13() {
    let keylog = pki().scratch("tls13.keylog");
    let cfg = client_builder().keylog_file(&keylog).build().unwrap();
    let (addr, server) = serve_one(&server_config(), |c| c.handshake().unwrap());
    let c = dial(addr, &cfg).unwrap();
    assert_eq!(c.connection_state().version, Some(Version::Tls13));
    server.join().unwrap();
    let text = std::fs::read_to_string(&keylog).unwrap();
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        let lines = keylog_lines(&text, label);
        assert_eq!(lines.len(), 1, "one {label} line:\n{text}");
        let (random, secret) = &lines[0];
        assert!(is_hex(random, 64), "a 32-byte client random: {random}");
        assert!(secret.len() >= 64 && is_hex(secret, secret.len()), "a hex secret: {secret}");
    }
}

#[test]
fn keylog_tls12() {
    let keylog = pki().scratch("tls12.keylog");
    let cfg = client_builder().keylog_file(&keylog).max_version(Version::Tls12).build().unwrap();
    let (addr, server) = serve_one(&server_config(), |c| c.handshake().unwrap());
    let c = dial(addr, &cfg).unwrap();
    assert_eq!(c.connection_state().version, Some(Version::Tls12));
    server.join().unwrap();
    let text = std::fs::read_to_string(&keylog).unwrap();
    let lines = keylog_lines(&text, "CLIENT_RANDOM");
    assert_eq!(lines.len(), 1, "one CLIENT_RANDOM line:\n{text}");
    let (random, master) = &lines[0];
    assert!(is_hex(random, 64), "a 32-byte client random: {random}");
    assert!(is_hex(master, 96), "a 48-byte master secret: {master}");
    assert!(keylog_lines(&text, "CLIENT_TRAFFIC_SECRET_0").is_empty(), "no TLS 1.3 secrets:\n{text}");
}

#[test]
fn operations_after_close_fail_with_closed() {
    let (addr, server) = serve_one(&server_config(), |mut c| {
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap(); // our close_notify
        rest
    });
    let mut c = dial(addr, &client_config()).unwrap();
    c.write_all(b"bye").unwrap();
    c.close().unwrap();
    assert!(!c.is_open());
    c.close().expect("close is idempotent");
    let e = c.read(&mut [0u8; 8]).unwrap_err();
    assert!(tls::Closed::is(&e), "read after close: {e:?}");
    let e = c.write(b"x").unwrap_err();
    assert!(tls::Closed::is(&e), "write after close: {e:?}");
    assert_eq!(server.join().unwrap(), b"bye", "the peer got the data and a clean close");
    // An un-handshaken connection cannot handshake once closed.
    let (addr, _server) = serve_one(&server_config(), |c| c.handshake().is_ok());
    let c = tls::client(tcp::connect_addr(addr).unwrap(), &client_config()).unwrap();
    c.close().unwrap();
    assert!(matches!(c.handshake(), Err(tls::Error::Tls(_))), "handshake after close");
}

#[test]
fn close_wakes_a_blocked_reader() {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (addr, server) = serve_one(&server_config(), move |c| {
        c.handshake().unwrap();
        let _ = done_rx.recv(); // silent until the test ends
    });
    let c = dial(addr, &client_config()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = (&c).read(&mut [0u8; 8]);
            tx.send(r).unwrap();
        });
        // Give the reader no data: it blocks (or has not started yet; either
        // way close must make its read fail).
        assert!(rx.recv_timeout(std::time::Duration::from_millis(50)).is_err(), "nothing to read yet");
        c.close().unwrap();
        let r = rx.recv_timeout(support::PATIENCE).expect("close wakes the reader");
        let e = r.unwrap_err();
        assert!(tls::Closed::is(&e), "the reader sees Closed: {e:?}");
    });
    done_tx.send(()).unwrap();
    server.join().unwrap();
}

#[test]
fn peer_closing_during_the_handshake_is_eof() {
    // A server that takes the ClientHello and ends its side of the stream
    // (shutting down rather than closing: unread bytes would make it a reset).
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let closer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(support::PATIENCE)).unwrap();
        let n = s.read(&mut [0u8; 4096]).unwrap();
        assert!(n > 0, "a ClientHello");
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest); // until the client gives up
    });
    match tls::connect_addr(addr, &client_config()) {
        Err(tls::Error::Eof) => {}
        other => panic!("expected Error::Eof, got {other:?}"),
    }
    closer.join().unwrap();
    // A client that connects and closes at once.
    let l = listener(&server_config());
    drop(TcpStream::connect(l.local_addr().unwrap()).unwrap());
    let c = l.accept().unwrap();
    match c.handshake() {
        Err(tls::Error::Eof) => {}
        other => panic!("expected Error::Eof, got {other:?}"),
    }
}

#[test]
fn listener_accept_deadline() {
    let l = listener(&server_config());
    let start = std::time::Instant::now();
    l.set_deadline(Some(start + std::time::Duration::from_millis(50))).unwrap();
    match l.accept() {
        Err(tls::Error::Io(e)) => assert!(tls::DeadlineExceeded::is(&e), "{e:?}"),
        other => panic!("expected Error::Io(DeadlineExceeded), got {other:?}"),
    }
    assert!(start.elapsed() >= std::time::Duration::from_millis(50));
    // Cleared, it accepts again.
    l.set_deadline(Some(support::soon())).unwrap();
    let addr = l.local_addr().unwrap();
    let client = std::thread::spawn(move || dial(addr, &client_config()).map(|_| ()));
    l.accept().unwrap().handshake().unwrap();
    client.join().unwrap().unwrap();
    l.close().unwrap();
    assert!(!l.is_open());
    assert!(matches!(l.accept(), Err(tls::Error::Io(e)) if tls::Closed::is(&e)), "accept after close");
}
