//! Time limits: the handshake timeout against a silent peer (and the
//! transport deadlines it must restore), the dial's time limit, read
//! deadlines that can be retried, and write deadlines that break the write
//! side for good.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{PATIENCE, client_builder, client_config, dial, serve_one, server_config, soon};
use tls::DeadlineExceeded;

const SHORT: Duration = Duration::from_millis(100);

/// A TCP listener that never accepts and never sends: the kernel completes
/// connections to it, and they stay silent.
fn silent_peer() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

#[track_caller]
fn assert_took(start: Instant, at_least: Duration) {
    let took = start.elapsed();
    assert!(took >= at_least, "gave up early: after {took:?}, before {at_least:?}");
    assert!(took < at_least + Duration::from_secs(5), "gave up far too late: after {took:?}");
}

#[track_caller]
fn assert_deadline_exceeded(e: &io::Error) {
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(DeadlineExceeded::is(e), "DeadlineExceeded inside: {e:?}");
}

#[test]
fn handshake_timeout_against_a_silent_peer_restores_deadlines() {
    let peer = silent_peer();
    let cfg = client_builder().handshake_timeout(SHORT).build().unwrap();
    let tcp = tcp::connect_addr(peer.local_addr().unwrap()).unwrap();
    // Transport deadlines of our own, far later than the handshake timeout.
    let read_deadline = Instant::now() + Duration::from_secs(3600);
    tcp.set_read_deadline(Some(read_deadline)).unwrap();
    tcp.set_write_deadline(None).unwrap();
    let c = tls::client(tcp, &cfg).unwrap();
    let start = Instant::now();
    match c.handshake() {
        Err(tls::Error::HandshakeTimeout(t)) => assert_eq!(t, SHORT),
        other => panic!("expected Error::HandshakeTimeout, got {other:?}"),
    }
    assert_took(start, SHORT);
    assert_eq!(c.net_conn().read_deadline(), Some(read_deadline), "the read deadline is back");
    assert_eq!(c.net_conn().write_deadline(), None, "the write deadline is back");
    assert!(!c.connection_state().handshake_complete);
    // It stays failed.
    assert!(c.handshake().is_err());
    drop(peer);
}

#[test]
fn handshake_timeout_when_dialing() {
    let peer = silent_peer();
    let cfg = client_builder().handshake_timeout(SHORT).build().unwrap();
    let start = Instant::now();
    match tls::connect_addr(peer.local_addr().unwrap(), &cfg) {
        Err(e @ tls::Error::HandshakeTimeout(_)) => assert!(e.is_timeout()),
        other => panic!("expected Error::HandshakeTimeout, got {other:?}"),
    }
    assert_took(start, SHORT);
}

#[test]
fn an_earlier_transport_deadline_wins_over_the_handshake_timeout() {
    // No handshake timeout: the transport's own deadline ends the
    // handshake, as an i/o timeout, and stays set afterwards.
    let peer = silent_peer();
    let cfg = client_builder().handshake_timeout(Duration::ZERO).build().unwrap();
    let tcp = tcp::connect_addr(peer.local_addr().unwrap()).unwrap();
    let start = Instant::now();
    let deadline = start + SHORT;
    tcp.set_deadline(Some(deadline)).unwrap();
    let c = tls::client(tcp, &cfg).unwrap();
    let e = c.handshake().unwrap_err();
    assert_took(start, SHORT);
    assert!(e.is_timeout(), "{e:?}");
    match &e {
        tls::Error::Tls(t) => assert_deadline_exceeded(t.cause.as_ref().expect("the transport error")),
        other => panic!("expected Error::Tls with DeadlineExceeded inside, got {other:?}"),
    }
    assert_deadline_exceeded(&io::Error::from(e));
    assert_eq!(c.net_conn().read_deadline(), Some(deadline));
    assert_eq!(c.net_conn().write_deadline(), Some(deadline));
}

#[test]
fn successful_handshake_restores_deadlines() {
    let (addr, server) = serve_one(&server_config(), |c| c.handshake().unwrap());
    let tcp = tcp::connect_addr(addr).unwrap();
    let read_deadline = soon();
    tcp.set_read_deadline(Some(read_deadline)).unwrap();
    let c = tls::client(tcp, &client_config()).unwrap(); // handshake_timeout(PATIENCE)
    c.handshake().unwrap();
    assert_eq!(c.net_conn().read_deadline(), Some(read_deadline));
    assert_eq!(c.net_conn().write_deadline(), None);
    server.join().unwrap();
}

#[test]
fn dial_timeout_bounds_the_handshake() {
    let peer = silent_peer();
    let cfg = client_builder().handshake_timeout(Duration::ZERO).build().unwrap();
    let d = tls::Dialer::new(tcp::Dialer::new().timeout(SHORT), cfg);
    let start = Instant::now();
    let e = d.connect_addr(peer.local_addr().unwrap()).unwrap_err();
    assert_took(start, SHORT);
    assert!(e.is_timeout(), "{e:?}");
}

#[test]
fn read_deadline_can_be_retried() {
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let sent = payload.clone();
    let (addr, server) = serve_one(&server_config(), move |c| {
        c.handshake().unwrap();
        go_rx.recv().unwrap();
        (&c).write_all(&sent).unwrap();
        c.close_write().unwrap();
        let mut rest = Vec::new();
        (&c).read_to_end(&mut rest).unwrap();
    });
    let mut c = dial(addr, &client_config()).unwrap();
    let mut buf = [0u8; 1024];
    // A deadline already passed: fails at once.
    c.set_read_deadline(Some(Instant::now())).unwrap();
    let start = Instant::now();
    let e = c.read(&mut buf).unwrap_err();
    assert_deadline_exceeded(&e);
    assert!(start.elapsed() < PATIENCE);
    // A short one: fails once it passes, never before.
    let start = Instant::now();
    c.set_read_deadline(Some(start + SHORT)).unwrap();
    let e = c.read(&mut buf).unwrap_err();
    assert_deadline_exceeded(&e);
    assert_took(start, SHORT);
    // Extend it; the peer sends; everything arrives intact.
    c.set_read_deadline(Some(soon())).unwrap();
    go_tx.send(()).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert!(got == payload, "{} bytes back, intact: {}", got.len(), got == payload);
    c.close_write().unwrap();
    server.join().unwrap();
}

#[test]
fn write_deadline_breaks_the_write_side_for_good() {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (reply_tx, reply_rx) = mpsc::channel::<()>();
    let (addr, server) = serve_one(&server_config(), move |c| {
        c.handshake().unwrap();
        // Never read; say one thing once the client's writes have failed.
        reply_rx.recv().unwrap();
        (&c).write_all(b"still readable").unwrap();
        let _ = done_rx.recv();
    });
    let c = Arc::new(dial(addr, &client_config()).unwrap());
    let start = Instant::now();
    c.set_write_deadline(Some(start + SHORT)).unwrap();
    let chunk = vec![0x5au8; 256 * 1024];
    let mut written = 0usize;
    let e = loop {
        match (&*c).write(&chunk) {
            Ok(n) => written += n,
            Err(e) => break e,
        }
        assert!(written < 1 << 30, "1 GiB written to a peer that never reads");
    };
    assert_deadline_exceeded(&e);
    assert_took(start, SHORT);
    // Clearing the deadline does not revive the write side: later writes
    // fail at once instead of waiting for the peer.
    c.set_write_deadline(None).unwrap();
    let (tx, rx) = mpsc::channel();
    let writer = c.clone();
    let t = std::thread::spawn(move || {
        let _ = tx.send((&*writer).write(b"more"));
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(r) => {
            // BrokenPipe, not TimedOut: a loop that retries timeouts ends.
            let e = r.expect_err("a write after a timed-out write must fail");
            assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
            let cause = std::error::Error::source(e.get_ref().expect("a cause")).expect("the first failure");
            let cause = cause.downcast_ref::<io::Error>().expect("an io::Error behind it");
            assert_deadline_exceeded(cause);
        }
        Err(_) => {
            c.close().unwrap(); // unblock the writer
            panic!("a write after a timed-out write blocked instead of failing");
        }
    }
    t.join().unwrap();
    assert!(!c.is_open(), "no write can succeed any more");
    // The read side still works.
    reply_tx.send(()).unwrap();
    let mut buf = [0u8; 14];
    (&*c).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still readable");
    done_tx.send(()).unwrap();
    server.join().unwrap();
}

#[cfg(target_os = "linux")]
/// A deadline set by another thread while a handshake runs under its
/// timeout's overlay survives the handshake: the overlay restores only the
/// deadlines nobody changed. (It used to restore the ones saved before, so
/// a read blocked after the handshake waited past the deadline set for it.)
#[test]
fn a_deadline_set_during_the_handshake_outlives_it() {
    for direction in ["read", "write"] {
        let server_cfg = support::server_builder().handshake_timeout(Duration::from_secs(5)).build().unwrap();
        let listener = support::listener(&server_cfg);
        let raw = tcp::connect_addr(listener.local_addr().unwrap()).unwrap();
        let s = Arc::new(listener.accept().unwrap());
        let s2 = s.clone();
        // The handshake runs in this call, waiting for the ClientHello.
        let (tid, rx) = testkit::spawn_tracked(move || match direction {
            "read" => (&*s2).read(&mut [0; 8]).map(drop),
            _ => (&*s2).write_all(b"x"),
        });
        testkit::until_parked(tid);
        let set = Instant::now() + Duration::from_millis(400);
        match direction {
            "read" => s.set_read_deadline(Some(set)).unwrap(),
            _ => s.set_write_deadline(Some(set)).unwrap(),
        }
        let client = tls::client(raw, &client_config()).unwrap();
        client.handshake().unwrap();
        // The client stays silent: a read ends at the deadline set above.
        let (r, _) = rx.recv_timeout(testkit::PATIENCE).unwrap_or_else(|_| panic!("{direction}: still blocked"));
        let kept = match direction {
            "read" => {
                let e = r.expect_err("read data nobody sent");
                assert!(DeadlineExceeded::is(&e), "{e:?}");
                s.net_conn().read_deadline()
            }
            _ => {
                r.unwrap();
                s.net_conn().write_deadline()
            }
        };
        assert_eq!(kept, Some(set), "{direction}: the deadline set during the handshake was lost");
    }
}

/// A write that its deadline cuts short reports, as std's `Write` does,
/// the plaintext of the records that fully reached the socket, and fails
/// only on the next call: the peer decrypts exactly what the writer was
/// told. (A failed flush used to return `Err` although whole records had
/// gone out, so a caller resuming from its count sent them twice.)
#[test]
fn a_write_cut_short_reports_exactly_what_the_peer_can_read() {
    let listener = support::listener(&server_config());
    let addr = listener.local_addr().unwrap();
    let accepting = std::thread::spawn(move || {
        let s = listener.accept().unwrap();
        s.handshake().unwrap();
        s
    });
    let client = dial(addr, &client_config()).unwrap();
    let server = accepting.join().unwrap();
    testkit::small_sndbuf(server.net_conn());

    server.set_write_deadline(Some(Instant::now() + Duration::from_millis(300))).unwrap();
    let chunk = vec![0x5a; 100_000];
    let mut told = 0;
    let failure = loop {
        match (&server).write(&chunk) {
            Ok(n) => told += n,
            Err(e) => break e,
        }
    };
    assert!(told > 0, "nothing was written before the deadline");
    assert!((&server).write(b"more").is_err(), "the write side works again after a cut record");
    drop(failure);

    // The peer reads everything that arrives, whole records only, until
    // nothing more comes for two seconds (after a zero window, TCP may take
    // a probe interval to resume).
    let mut decrypted = 0;
    let mut buf = vec![0; 64 * 1024];
    let give_up = Instant::now() + PATIENCE;
    loop {
        assert!(Instant::now() < give_up, "the peer kept reading for {PATIENCE:?}");
        client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        match (&client).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => decrypted += n,
            Err(e) if DeadlineExceeded::is(&e) => break,
            Err(e) => panic!("the peer's read: {e:?}"),
        }
    }
    assert_eq!(decrypted, told, "the writer was told {told} bytes; the peer decrypted {decrypted}");
}

/// The dial's deadline overlays the handshake only: once `connect`
/// returns, the connection has the deadlines it had before (none), not the
/// dial's.
#[test]
fn the_dial_deadline_ends_with_the_dial() {
    let (addr, server) = serve_one(&server_config(), |c| c.handshake().map(drop));
    let dialer = tls::Dialer::new(tcp::Dialer::new().timeout(Duration::from_secs(5)), client_config());
    let c = dialer.connect_addr(addr).unwrap();
    assert_eq!(c.net_conn().read_deadline(), None);
    assert_eq!(c.net_conn().write_deadline(), None);
    server.join().unwrap().unwrap();
}
