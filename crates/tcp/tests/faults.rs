//! Faults: a peer that resets the connection in the middle of a transfer,
//! a peer that stops reading, and a reactor shut down under threads and
//! tasks parked on it. Each must end in an error, promptly, never a hang,
//! and without losing what was already delivered.

mod support;

use std::io::{self, Read, Write};
use std::net::TcpStream;
#[cfg(target_os = "linux")]
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use iopoll::ReactorShutdown;
use support::*;
use tcp::{Conn, ListenConfig, Runtime};
use testkit::task::channel_waker;
use testkit::{PATIENCE, linger0, small_rcvbuf, small_sndbuf, stream_bytes, within};
#[cfg(target_os = "linux")]
use testkit::{spawn_tracked, until_parked};

#[cfg(target_os = "linux")]
/// A std client connected to a reseau server connection: (client, server).
fn std_client_pair() -> (TcpStream, Conn) {
    let l = listener();
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let server = l.accept().unwrap();
    (client, server)
}

#[cfg(target_os = "linux")]
fn is_reset(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe)
}

#[cfg(target_os = "linux")]
/// The peer sends part of a stream and then resets the connection while a
/// reader is parked waiting for the rest: the reader gets what was sent (a
/// correct prefix) and then `ConnectionReset`, not a hang and not EOF.
#[test]
fn peer_reset_mid_transfer_fails_a_parked_reader() {
    const SENT: usize = 64 * 1024;
    let (mut client, server) = std_client_pair();
    let (tid, rx) = spawn_tracked(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match (&server).read(&mut buf) {
                Ok(0) => return (got, None),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return (got, Some(e)),
            }
        }
    });
    let mut data = vec![0u8; SENT];
    stream_bytes(7, 0, &mut data);
    client.write_all(&data).unwrap();
    // Parked: it has read what was there and waits for more.
    until_parked(tid);
    linger0(&client);
    drop(client);
    let ((got, err), _) = rx.recv_timeout(PATIENCE).expect("the reader hangs after the peer reset");
    let err = err.unwrap_or_else(|| panic!("a reset read as a clean end of stream after {} bytes", got.len()));
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err:?}");
    assert!(got.len() <= SENT && got[..] == data[..got.len()], "corrupt data before the reset");
}

#[cfg(target_os = "linux")]
/// The reset arrives while a writer is parked on a full send buffer: the
/// write fails with ECONNRESET or EPIPE, and so does every later one.
#[test]
fn peer_reset_mid_transfer_fails_a_parked_writer() {
    let l = listener();
    small_rcvbuf(&l);
    let (c, s) = pair_on(&l);
    small_sndbuf(&c);
    let s = s.into_std().unwrap();
    fill_send_buffer(&c);
    let c = Arc::new(c);
    let c2 = c.clone();
    let (tid, rx) = spawn_tracked(move || {
        let chunk = [1u8; 16 * 1024];
        loop {
            if let Err(e) = (&*c2).write(&chunk) {
                return e;
            }
        }
    });
    until_parked(tid);
    linger0(&s);
    drop(s);
    let (e, _) = rx.recv_timeout(PATIENCE).expect("the writer hangs after the peer reset");
    assert!(is_reset(&e), "expected ECONNRESET or EPIPE, got {e:?}");
    let e = (&*c).write(b"more").unwrap_err();
    assert!(is_reset(&e), "a later write: {e:?}");
}

/// The same through the reactor: a task waiting in `poll_read` (on a
/// private runtime) is woken by the reset and then sees `ConnectionReset`.
#[test]
fn peer_reset_wakes_a_pending_poll_read() {
    let rt = Runtime::spawn().unwrap();
    let l = ListenConfig::new().runtime(rt.clone()).bind(loopback()).unwrap();
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let server = l.accept().unwrap();
    let (waker, woken) = channel_waker();
    let mut cx = Context::from_waker(&waker);
    let mut buf = [0u8; 64];
    assert!(server.poll_read(&mut cx, &mut buf).is_pending(), "nothing to read yet");
    linger0(&client);
    drop(client);
    woken.recv_timeout(PATIENCE).expect("the task was not woken by the reset");
    match server.poll_read(&mut cx, &mut buf) {
        Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}"),
        other => panic!("expected Ready(Err(ConnectionReset)), got {other:?}"),
    }
}

/// A peer that reads for a while and then stops: the write deadline fires
/// (not before it is due), the writer knows exactly how much went out, and
/// once the deadline is cleared and the peer reads again, the rest follows
/// with nothing lost or repeated.
#[test]
fn a_peer_that_stops_reading_trips_the_write_deadline() {
    const FIRST: usize = 256 * 1024;
    const LIMIT: Duration = Duration::from_millis(150);
    let l = listener();
    small_rcvbuf(&l);
    let (c, s) = pair_on(&l);
    small_sndbuf(&c);
    let (resume_tx, resume_rx) = mpsc::channel::<()>();
    let reader = thread::spawn(move || {
        let mut s = s;
        s.set_read_deadline(Some(Instant::now() + PATIENCE * 3)).unwrap();
        let mut first = vec![0u8; FIRST];
        s.read_exact(&mut first).unwrap();
        // Stop reading until told to go on.
        resume_rx.recv().unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        first.extend_from_slice(&rest);
        first
    });

    let mut sent = 0usize;
    let mut buf = vec![0u8; 32 * 1024];
    let mut write_chunk = |c: &Conn, sent: &mut usize| -> io::Result<()> {
        stream_bytes(3, *sent as u64, &mut buf);
        let n = (&*c).write(&buf)?;
        *sent += n;
        Ok(())
    };
    // The peer takes the first FIRST bytes; write them and more.
    while sent < FIRST {
        write_chunk(&c, &mut sent).unwrap();
    }
    let start = Instant::now();
    c.set_write_deadline(Some(start + LIMIT)).unwrap();
    let err = loop {
        if let Err(e) = write_chunk(&c, &mut sent) {
            break e;
        }
        assert!(sent < 64 << 20, "64 MiB written to a peer that stopped reading");
    };
    let took = start.elapsed();
    assert_timeout(&err);
    assert!(took >= LIMIT, "the write deadline fired early, after {took:?}");
    assert!(took < LIMIT + Duration::from_secs(5), "the write deadline fired far too late, after {took:?}");

    // A TCP write timeout does not break the stream.
    c.set_write_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    resume_tx.send(()).unwrap();
    let total = sent + 100 * 1024;
    while sent < total {
        write_chunk(&c, &mut sent).unwrap();
    }
    c.close_write().unwrap();
    let got = within(PATIENCE, "the peer reading the rest", move || reader.join().unwrap());
    assert_eq!(got.len(), sent, "the peer got {} bytes, the writer reported {sent}", got.len());
    let mut want = vec![0u8; sent];
    stream_bytes(3, 0, &mut want);
    assert!(got == want, "the stream was corrupted around the timeout");
}

#[cfg(target_os = "linux")]
#[track_caller]
fn assert_shutdown(e: &io::Error, what: &str) {
    assert!(ReactorShutdown::is(e), "{what}: expected ReactorShutdown, got {e:?}");
    assert_eq!(e.to_string(), "reactor is shut down", "{what}");
}

#[cfg(target_os = "linux")]
/// `Runtime::shutdown` under threads parked on its descriptors: a reader,
/// a writer on a full buffer, an acceptor and a dial in progress all wake
/// with `ReactorShutdown`, as does a task waiting in `poll_read`. Later
/// calls fail the same way, new connections on it cannot be made, closing
/// still works, and connections on other runtimes carry on.
#[test]
fn shutdown_wakes_everything_parked_on_the_runtime() {
    let rt = Runtime::spawn().unwrap();
    assert!(!rt.is_shut_down());
    let l = Arc::new(ListenConfig::new().runtime(rt.clone()).bind(loopback()).unwrap());
    small_rcvbuf(&*l);
    let dialer = tcp::Dialer::new().runtime(rt.clone());
    let addr = l.local_addr().unwrap();
    let reading = Arc::new(dialer.connect_addr(addr).unwrap());
    let _reading_peer = l.accept().unwrap();
    let writing = Arc::new(dialer.connect_addr(addr).unwrap());
    let _writing_peer = l.accept().unwrap();
    let polled = dialer.connect_addr(addr).unwrap();
    let _polled_peer = l.accept().unwrap();
    small_sndbuf(&*writing);
    fill_send_buffer(&writing);
    let hole = support::BlackHole::bind(loopback()).expect("a black hole on 127.0.0.1");

    // On the global runtime, and so untouched by the shutdown.
    let (other, mut other_peer) = pair();
    let other = Arc::new(other);

    let mut parked = Vec::new();
    let c = reading.clone();
    parked.push(("read", spawn_tracked(move || (&*c).read(&mut [0u8; 16]).map(drop))));
    let c = writing.clone();
    parked.push((
        "write",
        spawn_tracked(move || {
            loop {
                (&*c).write_all(&[7u8; 16 * 1024])?;
            }
        }),
    ));
    let l2 = l.clone();
    parked.push(("accept", spawn_tracked(move || l2.accept().map(drop))));
    let (d, hole_addr) = (dialer.clone(), hole.addr);
    parked.push(("dial", spawn_tracked(move || d.connect_addr(hole_addr).map(drop).map_err(io::Error::from))));
    let c = other.clone();
    let (other_tid, other_rx) = spawn_tracked(move || {
        let mut b = [0u8; 5];
        (&*c).read_exact(&mut b).map(|()| b)
    });
    for (_, (tid, _)) in &parked {
        until_parked(*tid);
    }
    until_parked(other_tid);
    let (waker, woken) = channel_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(polled.poll_read(&mut cx, &mut [0u8; 16]).is_pending());

    rt.shutdown().unwrap();
    assert!(rt.is_shut_down());

    for (what, (_, rx)) in parked {
        let (r, _) = rx.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("{what}: still parked after shutdown"));
        match r {
            Ok(()) => panic!("{what}: succeeded on a shut-down reactor"),
            // The dial reports through OpError, whose io::Error wraps it.
            Err(e) if what == "dial" => {
                let op = e.get_ref().and_then(|e| e.downcast_ref::<tcp::OpError>()).expect("an OpError");
                match &op.err {
                    tcp::Error::Io(e) => assert_shutdown(e, what),
                    other => panic!("dial: expected Error::Io(ReactorShutdown), got {other:?}"),
                }
            }
            Err(e) => assert_shutdown(&e, what),
        }
    }
    woken.recv_timeout(PATIENCE).expect("the task in poll_read was not woken by the shutdown");
    match polled.poll_read(&mut cx, &mut [0u8; 16]) {
        Poll::Ready(Err(e)) => assert_shutdown(&e, "poll_read"),
        other => panic!("poll_read after shutdown: {other:?}"),
    }

    // Later calls fail at once, the same way.
    assert_shutdown(&(&*reading).read(&mut [0u8; 1]).unwrap_err(), "a later read");
    assert_shutdown(&(&*reading).write(b"x").unwrap_err(), "a later write");
    assert_shutdown(&l.accept().unwrap_err(), "a later accept");
    match dialer.connect_addr(addr) {
        Err(tcp::OpError { err: tcp::Error::Io(e), .. }) => assert_shutdown(&e, "a new dial"),
        other => panic!("a dial on a shut-down runtime: {other:?}"),
    }
    assert!(ListenConfig::new().runtime(rt.clone()).bind(loopback()).is_err(), "a listener on a shut-down runtime");

    // Closing still works, and then the error is Closed.
    within(PATIENCE, "close after shutdown", move || {
        reading.close().unwrap();
        writing.close().unwrap();
        l.close().unwrap();
        assert_closed_result((&*reading).read(&mut [0u8; 1]));
        assert_closed_result(l.accept().map(drop));
    });

    // The global runtime cannot be shut down, and its connections never noticed.
    let e = Runtime::global().shutdown().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    assert!(!Runtime::global().is_shut_down());
    assert!(other_rx.try_recv().is_err(), "a reader on the global runtime was woken by another's shutdown");
    other_peer.write_all(b"alive").unwrap();
    let (r, _) = other_rx.recv_timeout(PATIENCE).expect("the reader on the global runtime");
    assert_eq!(&r.unwrap(), b"alive");
    drop(hole);
}
