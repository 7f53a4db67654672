//! `tcp::Conn` and `tcp::Listener` end to end: data integrity, half-close,
//! close from other threads, errors after close, many parked threads, std
//! adoption, dead peers without SIGPIPE, addresses, socket options and the
//! `Waker`-based calls.

mod support;

use std::io::{self, Read, Write};
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
#[cfg(target_os = "linux")]
use std::sync::Arc;
use std::sync::Barrier;
#[cfg(target_os = "linux")]
use std::sync::mpsc::RecvTimeoutError;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use support::*;
use tcp::{Conn, Dialer, ListenConfig, Listener, Runtime};
use testkit::task::{channel_waker, drain, drive};
use testkit::{PATIENCE, getsockopt_int, small_rcvbuf, small_sndbuf, stream_bytes, within};
#[cfg(target_os = "linux")]
use testkit::{raise_fd_limit, spawn_parked, spawn_tracked, until_parked};

/// Echo through a server that reads to EOF: `close_write` delivers EOF to
/// the peer while this side keeps reading.
#[test]
fn echo_with_half_close() {
    let l = listener();
    let addr = l.local_addr().unwrap();
    let server = thread::spawn(move || {
        let mut s = l.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&got).unwrap();
        s.write_all(b" (echoed)").unwrap();
        got.len()
    });
    let mut c = tcp::connect_addr(addr).unwrap();
    c.write_all(b"hello world").unwrap();
    c.close_write().unwrap();
    assert!(c.is_open(), "half-closed is still open");
    let e = c.write(b"more").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "write after close_write: {e:?}");
    let mut out = Vec::new();
    within(PATIENCE, "read the echo", move || {
        c.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello world (echoed)");
        // EOF again, not an error.
        assert_eq!(c.read(&mut [0u8; 8]).unwrap(), 0);
    });
    assert_eq!(server.join().unwrap(), 11);
}

/// `close_read` makes local reads see EOF.
#[test]
fn close_read_gives_eof() {
    let (mut c, mut s) = pair();
    c.close_read().unwrap();
    let n = within(PATIENCE, "read after close_read", move || c.read(&mut [0u8; 4]).unwrap());
    assert_eq!(n, 0);
    // The server side is unaffected.
    s.set_read_deadline(Some(Instant::now())).unwrap();
    assert_timeout_result(s.read(&mut [0u8; 1]));
}

#[test]
fn read_exact_short_is_unexpected_eof() {
    let (mut c, mut s) = pair();
    s.write_all(b"abc").unwrap();
    s.close().unwrap();
    let mut buf = [0u8; 10];
    let e = c.read_exact(&mut buf).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e:?}");
    assert_eq!(c.read(&mut buf).unwrap(), 0);
}

#[cfg(target_os = "linux")]
#[test]
fn close_wakes_a_blocked_reader() {
    let (c, _s) = pair();
    let c = Arc::new(c);
    let c2 = c.clone();
    let rx = spawn_parked(move || (&*c2).read(&mut [0u8; 16]));
    close_soon(&c);
    assert!(!c.is_open());
    let (r, _) = rx.recv_timeout(PATIENCE).expect("reader not woken by close");
    assert_closed_result(r);
}

#[cfg(target_os = "linux")]
#[test]
fn close_wakes_a_blocked_writer() {
    let l = listener();
    small_rcvbuf(&l);
    let (c, _s) = pair_on(&l);
    small_sndbuf(&c);
    fill_send_buffer(&c);
    let c = Arc::new(c);
    let c2 = c.clone();
    let (tid, rx) = spawn_tracked(move || {
        let buf = [1u8; 4096];
        // A partial write is reported first; the error comes on the next call.
        loop {
            if let Err(e) = (&*c2).write(&buf) {
                return e;
            }
        }
    });
    until_parked(tid);
    close_soon(&c);
    let (e, _) = rx.recv_timeout(PATIENCE).expect("writer not woken by close");
    assert_closed(&e);
}

#[cfg(target_os = "linux")]
#[test]
fn close_wakes_a_blocked_acceptor() {
    let l = Arc::new(listener());
    let l2 = l.clone();
    let rx = spawn_parked(move || l2.accept().map(|c| c.remote_addr()));
    close_listener_soon(&l);
    let (r, _) = rx.recv_timeout(PATIENCE).expect("accept not woken by close");
    assert_closed_result(r);
    assert!(l.incoming().next().is_none(), "incoming ends once closed");
}

/// `close` is idempotent; afterwards every operation fails with `Closed`
/// (the addresses are kept), and the peer sees EOF.
#[test]
fn operations_after_close_fail_with_closed() {
    let (c, mut s) = pair();
    let (local, remote) = (c.local_addr().unwrap(), c.remote_addr().unwrap());
    assert!(c.is_open());
    c.close().unwrap();
    c.close().unwrap();
    assert!(!c.is_open());
    let mut r = &c;
    let mut buf = [0u8; 4];
    assert_closed_result(r.read(&mut buf));
    assert_closed_result(r.read(&mut []));
    assert_closed_result(r.write(b"x"));
    assert_closed_result(r.write(&[]));
    assert_closed_result(c.set_deadline(Some(Instant::now())));
    assert_closed_result(c.set_read_deadline(None));
    assert_closed_result(c.set_write_deadline(None));
    assert_closed_result(c.close_read());
    assert_closed_result(c.close_write());
    assert_closed_result(c.set_nodelay(true));
    assert_closed_result(c.set_keepalive(None));
    let mut cx = Context::from_waker(Waker::noop());
    match c.poll_read(&mut cx, &mut buf) {
        Poll::Ready(r) => assert_closed_result(r),
        Poll::Pending => panic!("poll_read pending on a closed conn"),
    }
    match c.poll_write(&mut cx, b"x") {
        Poll::Ready(r) => assert_closed_result(r),
        Poll::Pending => panic!("poll_write pending on a closed conn"),
    }
    assert_eq!(c.local_addr().unwrap(), local);
    assert_eq!(c.remote_addr().unwrap(), remote);
    c.close().unwrap();
    assert!(format!("{c:?}").contains("open: false"), "{c:?}");
    assert_eq!(s.read(&mut buf).unwrap(), 0, "the peer reads EOF");

    let l = listener();
    let addr = l.local_addr().unwrap();
    l.close().unwrap();
    l.close().unwrap();
    assert!(!l.is_open());
    assert_closed_result(l.accept().map(|c| c.remote_addr()));
    assert_closed_result(l.set_deadline(None));
    assert!(l.incoming().next().is_none());
    assert_eq!(l.local_addr().unwrap(), addr);
}

/// Dropping a `Conn` closes it: the peer sees EOF.
#[test]
fn drop_closes() {
    let (c, mut s) = pair();
    drop(c);
    let n = within(PATIENCE, "read after peer drop", move || s.read(&mut [0u8; 4]).unwrap());
    assert_eq!(n, 0);
}

/// 8 MiB each way at once, one reader and one writer thread per side
/// sharing `&Conn`; every byte checked.
#[test]
fn full_duplex_8mib_each_way() {
    const TOTAL: u64 = 8 << 20;
    fn writer(c: &Conn, seed: u64) {
        let sizes = [1usize, 7, 1000, 65_536, 131_072, 12_293, 300_000];
        let mut buf = vec![0u8; 300_000];
        let mut off = 0u64;
        let mut i = 0;
        let mut w = c;
        while off < TOTAL {
            let n = sizes[i % sizes.len()].min((TOTAL - off) as usize);
            stream_bytes(seed, off, &mut buf[..n]);
            w.write_all(&buf[..n]).unwrap();
            off += n as u64;
            i += 1;
        }
        c.close_write().unwrap();
    }
    fn reader(c: &Conn, seed: u64) {
        let sizes = [3usize, 100, 4096, 65_536, 200_000, 17];
        let mut buf = vec![0u8; 200_000];
        let mut want = vec![0u8; 200_000];
        let mut off = 0u64;
        let mut i = 0;
        let mut r = c;
        loop {
            let cap = sizes[i % sizes.len()];
            i += 1;
            let n = r.read(&mut buf[..cap]).unwrap();
            if n == 0 {
                break;
            }
            stream_bytes(seed, off, &mut want[..n]);
            if buf[..n] != want[..n] {
                let at = buf[..n].iter().zip(&want[..n]).position(|(a, b)| a != b).unwrap();
                panic!("stream {seed}: wrong byte at offset {}", off + at as u64);
            }
            off += n as u64;
        }
        assert_eq!(off, TOTAL, "stream {seed} ended early");
    }
    let (a, b) = pair();
    within(Duration::from_secs(120), "full-duplex transfer", move || {
        thread::scope(|sc| {
            sc.spawn(|| writer(&a, 1));
            sc.spawn(|| reader(&a, 2));
            sc.spawn(|| writer(&b, 2));
            sc.spawn(|| reader(&b, 1));
        });
    });
}

#[cfg(target_os = "linux")]
/// 200 threads, each parked reading its own connection; data from the
/// server wakes every one, and every one completes its echo.
#[test]
fn two_hundred_parked_threads_all_wake() {
    const N: usize = 200;
    raise_fd_limit(4096);
    let l = listener();
    let mut servers = Vec::with_capacity(N);
    let mut waiters = Vec::with_capacity(N);
    for _ in 0..N {
        let (c, s) = pair_on(&l);
        servers.push(s);
        waiters.push(spawn_tracked(move || -> io::Result<u8> {
            let mut b = [0u8; 1];
            let mut r = &c;
            r.read_exact(&mut b)?;
            r.write_all(&b)?;
            Ok(b[0])
        }));
    }
    for (tid, _) in &waiters {
        until_parked(*tid);
    }
    for (i, s) in servers.iter().enumerate() {
        (&*s).write_all(&[i as u8]).unwrap();
    }
    for (i, (_, rx)) in waiters.iter().enumerate() {
        let (r, _) = rx.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("thread {i} never woke"));
        assert_eq!(r.unwrap(), i as u8);
    }
    for (i, s) in servers.iter().enumerate() {
        s.set_read_deadline(Some(Instant::now() + PATIENCE)).unwrap();
        let mut b = [0u8; 1];
        (&*s).read_exact(&mut b).unwrap();
        assert_eq!(b[0], i as u8);
    }
}

/// `Conn::from_std` and `Listener::from_std` adopt std sockets: they carry
/// data, and they are nonblocking and on the reactor (deadlines work).
#[test]
fn adopt_std_sockets() {
    let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_l.local_addr().unwrap();
    let l = Listener::from_std(std_l).unwrap();
    assert_eq!(l.local_addr().unwrap(), addr);
    let std_c = std::net::TcpStream::connect(addr).unwrap();
    let c_local = std_c.local_addr().unwrap();
    let mut c = Conn::from_std(std_c).unwrap();
    assert_eq!(c.local_addr().unwrap(), c_local);
    assert_eq!(c.remote_addr().unwrap(), addr);
    let mut s = l.accept().unwrap();
    assert_eq!(s.remote_addr().unwrap(), c_local);

    c.write_all(b"from std").unwrap();
    let mut buf = [0u8; 8];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"from std");
    s.write_all(b"and back").unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"and back");

    let d = Instant::now() + Duration::from_millis(20);
    c.set_read_deadline(Some(d)).unwrap();
    let (r, at) =
        within(PATIENCE, "read on an adopted conn with a deadline", move || (c.read(&mut [0u8; 1]), Instant::now()));
    assert_timeout_result(r);
    assert!(at >= d);
    let d = Instant::now() + Duration::from_millis(20);
    l.set_deadline(Some(d)).unwrap();
    let (r, at) = within(PATIENCE, "accept on an adopted listener with a deadline", move || {
        (l.accept().map(|c| c.remote_addr()), Instant::now())
    });
    assert_timeout_result(r);
    assert!(at >= d);
}

/// Writing to a peer that has gone fails with EPIPE or ECONNRESET and never
/// raises SIGPIPE (which would kill a process that did not ignore it).
/// SIGPIPE is blocked on the writing thread, so a raised one stays pending
/// where the test can see it, whatever the process-wide disposition.
#[test]
fn write_to_closed_peer_is_an_error_not_sigpipe() {
    let (c, s) = pair();
    drop(s);
    within(PATIENCE, "writes to a dead peer", move || {
        let (errors, raised) = testkit::raises_sigpipe(|| {
            let mut w = &c;
            let mut errors = Vec::new();
            for _ in 0..10_000 {
                if let Err(e) = w.write(&[0u8; 1024]) {
                    errors.push(e);
                    if errors.len() == 2 {
                        break;
                    }
                }
            }
            errors
        });
        assert!(!raised, "a write to a dead peer raised SIGPIPE");
        assert_eq!(errors.len(), 2, "writes to a dead peer kept succeeding");
        for e in &errors {
            assert!(
                matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset),
                "write to a dead peer: {e:?}"
            );
        }
    });
}

/// Zero-length reads and writes return `Ok(0)` at once, even with nothing
/// to read, and consume nothing.
#[test]
fn zero_length_io() {
    let (c, mut s) = pair();
    let c = within(PATIENCE, "zero-length read on an idle conn", move || {
        let mut r = &c;
        assert_eq!(r.read(&mut []).unwrap(), 0);
        assert_eq!(r.write(&[]).unwrap(), 0);
        c
    });
    s.write_all(b"q").unwrap();
    raw_wait_readable(&c);
    let mut r = &c;
    assert_eq!(r.read(&mut []).unwrap(), 0);
    let mut b = [0u8; 1];
    r.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"q");
}

/// The socket's own address as the kernel sees it, through std.
fn kernel_addrs(c: &Conn) -> (SocketAddr, SocketAddr) {
    // SAFETY: the fd is open while `c` lives; ManuallyDrop keeps std from
    // closing it.
    let s = ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(c.as_raw_fd()) });
    (s.local_addr().unwrap(), s.peer_addr().unwrap())
}

#[test]
fn addresses_match_on_both_ends() {
    for (text, v6) in [("127.0.0.1:0", false), ("[::1]:0", true)] {
        let l = match Listener::bind(text.parse().unwrap()) {
            Ok(l) => l,
            Err(e) if v6 => {
                eprintln!("skipping ::1: {e}");
                continue;
            }
            Err(e) => panic!("{e}"),
        };
        let laddr = l.local_addr().unwrap();
        assert_eq!(l.addr().unwrap(), laddr);
        assert_ne!(laddr.port(), 0);
        assert!(laddr.ip().is_loopback() && laddr.is_ipv6() == v6);
        let (c, s) = pair_on(&l);
        assert_eq!(c.remote_addr().unwrap(), laddr);
        assert_eq!(s.local_addr().unwrap(), laddr);
        assert_eq!(c.local_addr().unwrap(), s.remote_addr().unwrap());
        assert_eq!(kernel_addrs(&c), (c.local_addr().unwrap(), c.remote_addr().unwrap()));
        assert_eq!(kernel_addrs(&s), (s.local_addr().unwrap(), s.remote_addr().unwrap()));
    }
}

/// The keepalive idle-time option: `TCP_KEEPALIVE` on Apple.
#[cfg(target_vendor = "apple")]
const KEEPIDLE: libc::c_int = libc::TCP_KEEPALIVE;
#[cfg(not(target_vendor = "apple"))]
const KEEPIDLE: libc::c_int = libc::TCP_KEEPIDLE;

#[test]
fn nodelay_and_keepalive() {
    let (c, s) = pair();
    let opt = |c: &Conn, level, name| getsockopt_int(c.as_raw_fd(), level, name).unwrap();
    for conn in [&c, &s] {
        // Dialed and accepted alike, whether or not the OS copies the
        // listener's options to accepted sockets.
        assert_ne!(opt(conn, libc::IPPROTO_TCP, libc::TCP_NODELAY), 0, "nodelay is on by default");
        assert_ne!(opt(conn, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0, "keepalive is on by default");
        assert_eq!(opt(conn, libc::IPPROTO_TCP, KEEPIDLE), 15, "Go's 15 s keepalive");
        conn.set_nodelay(false).unwrap();
        assert_eq!(opt(conn, libc::IPPROTO_TCP, libc::TCP_NODELAY), 0);
        conn.set_nodelay(true).unwrap();
        assert_ne!(opt(conn, libc::IPPROTO_TCP, libc::TCP_NODELAY), 0);

        conn.set_keepalive(Some(Duration::from_secs(30))).unwrap();
        assert_ne!(opt(conn, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0);
        assert_eq!(opt(conn, libc::IPPROTO_TCP, KEEPIDLE), 30);
        assert_eq!(opt(conn, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 30);
        conn.set_keepalive(Some(Duration::from_millis(1500))).unwrap();
        assert_eq!(opt(conn, libc::IPPROTO_TCP, KEEPIDLE), 2, "rounded up to whole seconds");
        conn.set_keepalive(None).unwrap();
        assert_eq!(opt(conn, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0);
    }
    c.close().unwrap();
    assert_closed_result(c.set_nodelay(true));
    assert_closed_result(c.set_keepalive(Some(Duration::from_secs(1))));
}

/// `poll_read` / `poll_write` on a private `Runtime::spawn()` reactor, given
/// to the dialer and the listener: woken by data, by buffer space, by the
/// deadline, by EOF and by close.
#[test]
fn poll_read_and_poll_write_with_a_waker() {
    let rt = Runtime::spawn().unwrap();
    let l = ListenConfig::new().runtime(rt.clone()).bind(loopback()).unwrap();
    small_rcvbuf(&l);
    let c = Dialer::new().runtime(rt.clone()).connect_addr(l.local_addr().unwrap()).unwrap();
    let s = l.accept().unwrap();
    assert_eq!(c.runtime().as_raw_fd(), rt.as_raw_fd(), "the dialer's runtime");
    assert_eq!(s.runtime().as_raw_fd(), rt.as_raw_fd(), "the listener's runtime");
    small_sndbuf(&c);
    let (waker, woken) = channel_waker();
    let mut cx = Context::from_waker(&waker);
    let mut buf = [0u8; 64];

    // Readable: pending until the peer writes.
    assert!(c.poll_read(&mut cx, &mut buf).is_pending());
    drain(&woken);
    (&s).write_all(b"hello").unwrap();
    woken.recv_timeout(PATIENCE).expect("not woken by data");
    let n = drive(&woken, || c.poll_read(&mut cx, &mut buf)).unwrap();
    assert_eq!(&buf[..n], b"hello");

    // Writable: fill the buffer until pending, then the peer drains it.
    let chunk = [3u8; 16 * 1024];
    let mut sent = 0;
    while let Poll::Ready(r) = c.poll_write(&mut cx, &chunk) {
        sent += r.unwrap();
    }
    assert!(sent > 0);
    drain(&woken);
    let filled = sent;
    let drained = thread::scope(|sc| {
        let reader = sc.spawn(|| {
            let mut got = 0;
            let mut b = vec![0u8; 64 * 1024];
            while got < filled {
                got += (&s).read(&mut b).unwrap();
            }
            got
        });
        woken.recv_timeout(PATIENCE).expect("not woken by buffer space");
        let n = drive(&woken, || c.poll_write(&mut cx, &chunk)).unwrap();
        assert!(n > 0);
        sent += n;
        reader.join().unwrap()
    });
    assert!(drained <= sent);
    // Read the rest so the next part starts from an empty pipe.
    let mut rest = vec![0u8; sent - drained];
    (&s).read_exact(&mut rest).unwrap();

    // Deadline: woken by the timer, never before it.
    let d = Instant::now() + Duration::from_millis(30);
    c.set_read_deadline(Some(d)).unwrap();
    assert!(c.poll_read(&mut cx, &mut buf).is_pending());
    let r = drive(&woken, || c.poll_read(&mut cx, &mut buf));
    assert!(Instant::now() >= d);
    assert_timeout_result(r);
    c.set_read_deadline(None).unwrap();

    // EOF from the peer wakes the reader with Ok(0).
    assert!(c.poll_read(&mut cx, &mut buf).is_pending());
    drain(&woken);
    s.close_write().unwrap();
    woken.recv_timeout(PATIENCE).expect("not woken by EOF");
    assert_eq!(drive(&woken, || c.poll_read(&mut cx, &mut buf)).unwrap(), 0);

    // Close from another thread wakes a pending writer with Closed.
    let sw = Dialer::new().runtime(rt.clone()).connect_addr(l.local_addr().unwrap()).unwrap();
    let _sr = l.accept().unwrap();
    small_sndbuf(&sw);
    while sw.poll_write(&mut cx, &chunk).is_ready() {}
    drain(&woken);
    let barrier = Barrier::new(2);
    thread::scope(|sc| {
        sc.spawn(|| {
            barrier.wait();
            sw.close().unwrap();
        });
        barrier.wait();
        woken.recv_timeout(PATIENCE).expect("not woken by close");
    });
    match sw.poll_write(&mut cx, &chunk) {
        Poll::Ready(r) => assert_closed_result(r),
        Poll::Pending => panic!("pending after close"),
    }
}

#[cfg(target_os = "linux")]
/// A reader blocked on one connection does not hold up a writer on the same
/// connection (separate read and write locks), nor other connections.
#[test]
fn reader_and_writer_run_at_once() {
    let (c, mut s) = pair();
    let c = Arc::new(c);
    let c2 = c.clone();
    let rx = spawn_parked(move || (&*c2).read(&mut [0u8; 8]));
    (&*c).write_all(b"while parked").unwrap();
    let mut b = [0u8; 12];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"while parked");
    match rx.recv_timeout(Duration::from_millis(20)) {
        Err(RecvTimeoutError::Timeout) => {}
        other => panic!("reader returned with nothing sent: {other:?}"),
    }
    s.write_all(b"now").unwrap();
    let (r, _) = rx.recv_timeout(PATIENCE).expect("reader not woken");
    assert_eq!(r.unwrap(), 3);
}
