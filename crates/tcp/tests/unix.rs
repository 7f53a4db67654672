//! `unix::Conn` and `unix::Listener`: the contract tests TCP has (deadlines
//! that fire and can be retried, deadlines moved under a blocked call,
//! close from another thread, green threads), what only Unix sockets have
//! (socket files, abstract names, peer credentials, passing descriptors),
//! and real peers at the other end (socat, Python).

mod support;

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use support::{assert_closed_result, assert_timeout_result};
use tcp::unix::{self, Conn, Credentials, Listener};
use testkit::child::Proc;
use testkit::{PATIENCE, scratch_dir, within};
#[cfg(target_os = "linux")]
use testkit::{spawn_parked, spawn_tracked, until_parked};

const MS: Duration = Duration::from_millis(1);

/// A fresh directory for this test's socket files (one per test: they run
/// in parallel).
fn dir(test: &str) -> PathBuf {
    scratch_dir(&format!("reseau-unix-{test}"))
}

fn past() -> Instant {
    Instant::now().checked_sub(Duration::from_secs(5)).unwrap_or_else(Instant::now)
}

fn read1(c: &Conn) -> io::Result<usize> {
    (&*c).read(&mut [0u8; 1])
}

/// Fill `c`'s send buffer (and the peer's receive queue) without blocking:
/// large sends until one would block, then single bytes until even those
/// would, so no write of any size fits afterwards.
fn fill_send_buffer(c: &Conn) {
    let chunk = [0x5au8; 64 * 1024];
    for len in [chunk.len(), 1] {
        loop {
            // SAFETY: sends from a live buffer on a socket `c` keeps open;
            // MSG_DONTWAIT never blocks, MSG_NOSIGNAL never raises SIGPIPE.
            let n = unsafe {
                libc::send(c.as_raw_fd(), chunk.as_ptr().cast(), len, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "filling the send buffer: {e}");
                break;
            }
        }
    }
}

// ------------------------------------------------------------ the basics

#[test]
fn listen_connect_echo_and_the_socket_file_comes_and_goes() {
    let path = dir("echo").join("echo.sock");
    let l = unix::listen(&path).unwrap();
    assert!(path.exists(), "listening made no socket file");
    assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    let server = thread::spawn({
        let path = path.clone();
        move || {
            let mut c = l.accept().unwrap();
            assert_eq!(c.local_addr().unwrap().as_pathname().unwrap(), path);
            assert!(c.peer_addr().unwrap().is_unnamed());
            let mut buf = [0; 5];
            c.read_exact(&mut buf).unwrap();
            c.write_all(&buf).unwrap();
            l
        }
    });
    let mut c = unix::connect(&path).unwrap();
    assert!(c.local_addr().unwrap().is_unnamed());
    c.write_all(b"hello").unwrap();
    let mut buf = [0; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    let l = server.join().unwrap();
    assert_eq!(c.to_string(), format!("unix::Conn( => {}, open)", path.display()));
    assert_eq!(l.to_string(), format!("unix::Listener({}, active)", path.display()));
    assert!(path.exists());
    l.close().unwrap();
    assert!(!path.exists(), "close left the socket file");
    assert!(!l.is_open());
    assert_eq!(l.to_string(), format!("unix::Listener({}, closed)", path.display()));
    // Closing again is harmless, and the address is kept.
    l.close().unwrap();
    assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
}

#[test]
fn dropping_a_listener_removes_its_file_and_from_std_leaves_it() {
    let d = dir("drop");
    let path = d.join("a.sock");
    drop(Listener::bind(&path).unwrap());
    assert!(!path.exists());

    // Adopted from std: the file is the caller's, as in Go's FileListener.
    let std_l = UnixListener::bind(&path).unwrap();
    let l = Listener::from_std(std_l).unwrap();
    let client = unix::connect(&path).unwrap();
    let server = l.accept().unwrap();
    assert_eq!(server.peer_cred().unwrap(), client.peer_cred().unwrap());
    drop(l);
    assert!(path.exists());
    // Either way round, by request (Go's SetUnlinkOnClose).
    let other = d.join("b.sock");
    let l = Listener::from_std(UnixListener::bind(&other).unwrap()).unwrap();
    l.set_unlink_on_close(true);
    drop(l);
    assert!(!other.exists());
    std::fs::remove_file(&path).unwrap();
    let l = unix::listen(&path).unwrap();
    l.set_unlink_on_close(false);
    l.close().unwrap();
    assert!(path.exists(), "a listener told not to removed its file");
}

#[test]
fn binding_over_a_stale_file_fails_with_the_os_error_until_it_is_removed() {
    let path = dir("stale").join("stale.sock");
    // A server that died: its socket file stays, nobody listens.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let e = unix::listen(&path).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e:?}");
    assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE));
    let e = unix::connect(&path).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e:?}");
    // What docs/unix.md says to do.
    std::fs::remove_file(&path).unwrap();
    let l = unix::listen(&path).unwrap();
    drop(unix::connect(&path).unwrap());
    drop(l);
}

#[test]
fn bad_addresses_are_clear_errors() {
    let long = Path::new("/tmp").join("x".repeat(200));
    let e = unix::listen(&long).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e:?}");
    let e = unix::connect(&long).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e:?}");
    let e = unix::listen("").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e:?}");
    let e = unix::connect("/tmp/nul\0byte").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e:?}");
    let e = unix::connect(dir("missing").join("nobody.sock")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e:?}");
    // An unnamed address (a client's) cannot be listened on or dialed.
    let (a, _b) = Conn::pair().unwrap();
    let unnamed = a.local_addr().unwrap();
    assert!(unnamed.is_unnamed());
    assert_eq!(Listener::bind_addr(&unnamed).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!(unix::connect_addr(&unnamed).unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

/// Linux fails a Unix connect to a full accept queue at once (as Go
/// reports it), instead of waiting as TCP does.
#[cfg(target_os = "linux")]
#[test]
fn a_full_accept_queue_fails_connect_with_would_block() {
    let path = dir("full-queue").join("q.sock");
    let std_l = UnixListener::bind(&path).unwrap();
    // SAFETY: listen(2) on a socket `std_l` owns: a queue of one.
    assert_eq!(unsafe { libc::listen(std_l.as_raw_fd(), 0) }, 0);
    let l = Listener::from_std(std_l).unwrap();
    let mut queued = Vec::new();
    let e = loop {
        match unix::connect(&path) {
            Ok(c) => queued.push(c),
            Err(e) => break e,
        }
        assert!(queued.len() < 16, "a queue of one took {} connections", queued.len());
    };
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e:?}");
    // Accepting makes room again.
    for _ in &queued {
        l.accept().unwrap();
    }
    drop(unix::connect(&path).unwrap());
}

#[cfg(target_os = "linux")]
#[test]
fn abstract_names_listen_and_connect_without_a_file() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;
    let name = format!("reseau-test-{}-abstract", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let l = Listener::bind_addr(&addr).unwrap();
    assert_eq!(l.local_addr().unwrap().as_abstract_name(), Some(name.as_bytes()));
    let mut c = unix::connect_addr(&addr).unwrap();
    assert_eq!(c.peer_addr().unwrap().as_abstract_name(), Some(name.as_bytes()));
    let mut s = l.accept().unwrap();
    c.write_all(b"abs").unwrap();
    let mut buf = [0; 3];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"abs");
    // The name is in use while the listener lives, and free once it closes.
    assert_eq!(Listener::bind_addr(&addr).unwrap_err().kind(), io::ErrorKind::AddrInUse);
    l.close().unwrap();
    drop(Listener::bind_addr(&addr).unwrap());
}

#[test]
fn peer_cred_is_this_process() {
    // SAFETY: getuid and getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let (a, b) = Conn::pair().unwrap();
    let pid = if cfg!(target_os = "linux") { Some(std::process::id() as i32) } else { None };
    let want = Credentials { pid, uid, gid };
    assert_eq!(a.peer_cred().unwrap(), want);
    assert_eq!(b.peer_cred().unwrap(), want);
    a.close().unwrap();
    assert_closed_result(a.peer_cred());
}

/// Another process's credentials are that process's: a Python child
/// connects, and the accepted connection names its pid.
#[test]
fn peer_cred_names_another_process() {
    let path = dir("cred-child").join("c.sock");
    let l = unix::listen(&path).unwrap();
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(10)
s.recv(1)
"#;
    let mut child = Proc::spawn("python3", Command::new("python3").arg("-c").arg(script).arg(&path));
    l.set_deadline(Some(testkit::soon())).unwrap();
    let mut c = l.accept().unwrap();
    let cred = c.peer_cred().unwrap();
    // SAFETY: getuid cannot fail.
    assert_eq!(cred.uid, unsafe { libc::getuid() });
    if cfg!(target_os = "linux") {
        assert_eq!(cred.pid, Some(child.child.id() as i32));
    } else {
        assert_eq!(cred.pid, None);
    }
    c.write_all(b"!").unwrap();
    let (_, err, status) = child.finish();
    assert!(status.success(), "python: {err}");
}

#[test]
fn close_read_and_close_write() {
    let (mut a, mut b) = Conn::pair().unwrap();
    a.close_write().unwrap();
    assert_eq!(b.read(&mut [0; 4]).unwrap(), 0, "the peer reads EOF after close_write");
    b.write_all(b"still").unwrap();
    let mut buf = [0; 5];
    a.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still");
    a.close_read().unwrap();
    assert_eq!(within(PATIENCE, "read after close_read", move || a.read(&mut [0; 4]).unwrap()), 0);
}

#[test]
fn from_std_adopts_a_connected_stream() {
    let (x, mut y) = UnixStream::pair().unwrap();
    let c = Conn::from_std(x).unwrap();
    y.write_all(b"std").unwrap();
    let mut buf = [0; 3];
    (&c).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"std");
    c.set_read_deadline(Some(past())).unwrap();
    assert_timeout_result(read1(&c));
}

// ------------------------------------------------------------- deadlines

#[test]
fn a_read_deadline_fires_and_the_read_can_be_retried() {
    let (c, mut peer) = Conn::pair().unwrap();
    let deadline = Instant::now() + 20 * MS;
    c.set_read_deadline(Some(deadline)).unwrap();
    assert_eq!(c.read_deadline(), Some(deadline));
    let r = read1(&c);
    assert!(Instant::now() >= deadline, "the read timed out early");
    assert_timeout_result(r);
    // Sticky until moved.
    assert_timeout_result(read1(&c));
    c.set_read_timeout(Some(PATIENCE)).unwrap();
    peer.write_all(b"x").unwrap();
    assert_eq!(read1(&c).unwrap(), 1);
    c.set_read_timeout(None).unwrap();
    assert_eq!(c.read_deadline(), None);
}

#[test]
fn a_write_deadline_fires_on_a_full_socket_and_accept_has_its_own() {
    let (c, _peer) = Conn::pair().unwrap();
    fill_send_buffer(&c);
    c.set_write_timeout(Some(20 * MS)).unwrap();
    assert_timeout_result((&c).write(&[1; 4096]));
    c.set_timeout(Some(Duration::ZERO)).unwrap();
    assert_timeout_result(read1(&c));

    let l = Listener::bind(dir("accept-deadline").join("l.sock")).unwrap();
    let deadline = Instant::now() + 10 * MS;
    l.set_deadline(Some(deadline)).unwrap();
    assert_timeout_result(l.accept().map(drop));
    assert!(Instant::now() >= deadline);
}

#[cfg(target_os = "linux")]
#[test]
fn a_deadline_moved_earlier_wakes_a_blocked_read_and_write() {
    let (c, _peer) = Conn::pair().unwrap();
    let c = Arc::new(c);
    let hour = Duration::from_secs(3600);
    c.set_read_deadline(Some(Instant::now() + hour)).unwrap();
    let c2 = c.clone();
    let rx = spawn_parked(move || read1(&c2));
    let earlier = Instant::now() + 20 * MS;
    c.set_read_deadline(Some(earlier)).unwrap();
    let (r, at) = rx.recv_timeout(PATIENCE).expect("reader not woken at the earlier deadline");
    assert_timeout_result(r);
    assert!(at >= earlier, "woke {:?} before the new deadline", earlier - at);

    fill_send_buffer(&c);
    c.set_deadline(Some(Instant::now() + hour)).unwrap();
    let c2 = c.clone();
    let rx = spawn_parked(move || (&*c2).write(&[1u8; 4096]));
    c.set_deadline(Some(past())).unwrap();
    let (r, _) = rx.recv_timeout(PATIENCE).expect("writer not woken by a deadline moved to the past");
    assert_timeout_result(r);
}

#[cfg(target_os = "linux")]
#[test]
fn close_from_another_thread_wakes_reader_writer_and_accept() {
    let (c, _peer) = Conn::pair().unwrap();
    fill_send_buffer(&c);
    let c = Arc::new(c);
    let (c1, c2) = (c.clone(), c.clone());
    let reader = spawn_parked(move || read1(&c1));
    let (tid, writer) = spawn_tracked(move || {
        loop {
            if let Err(e) = (&*c2).write(&[1u8; 4096]) {
                return e;
            }
        }
    });
    until_parked(tid);
    let closer = c.clone();
    within(PATIENCE, "close with a reader and a writer parked", move || closer.close().unwrap());
    assert!(!c.is_open());
    assert_closed_result(reader.recv_timeout(PATIENCE).expect("reader not woken by close").0);
    support::assert_closed(&writer.recv_timeout(PATIENCE).expect("writer not woken by close").0);
    assert_closed_result(c.set_deadline(None));

    let path = dir("close-accept").join("l.sock");
    let l = Arc::new(Listener::bind(&path).unwrap());
    let l2 = l.clone();
    let acceptor = spawn_parked(move || l2.accept().map(drop));
    let l3 = l.clone();
    within(PATIENCE, "close with accept parked", move || l3.close().unwrap());
    assert_closed_result(acceptor.recv_timeout(PATIENCE).expect("accept not woken by close").0);
    assert!(!path.exists());
    assert_eq!(l.incoming().count(), 0, "incoming ends once closed");
}

// ---------------------------------------------------- the Waker interface

#[test]
fn poll_read_poll_write_and_poll_accept_are_woken_by_the_reactor() {
    use std::task::{Context, Poll};
    use testkit::task::{channel_waker, drive};
    let (waker, woken) = channel_waker();
    let mut cx = Context::from_waker(&waker);
    let (a, b) = Conn::pair().unwrap();
    let mut buf = [0; 8];
    assert!(a.poll_read(&mut cx, &mut buf).is_pending());
    assert!(matches!(b.poll_write(&mut cx, b"poll"), Poll::Ready(Ok(4))));
    let n = drive(&woken, || a.poll_read(&mut cx, &mut buf));
    assert_eq!(n.unwrap(), 4);
    assert_eq!(&buf[..4], b"poll");
    // A deadline ends a pending poll_read too.
    a.set_read_deadline(Some(Instant::now() + 10 * MS)).unwrap();
    assert_timeout_result(drive(&woken, || a.poll_read(&mut cx, &mut buf)));

    let path = dir("poll-accept").join("l.sock");
    let l = Listener::bind(&path).unwrap();
    assert!(l.poll_accept(&mut cx).is_pending());
    let _client = unix::connect(&path).unwrap();
    let accepted = drive(&woken, || l.poll_accept(&mut cx)).unwrap();
    assert!(accepted.is_open());
}

// ------------------------------------------------------------ descriptors

#[test]
fn descriptors_travel_with_their_bytes() {
    let (a, b) = Conn::pair().unwrap();
    let (x, mut y) = UnixStream::pair().unwrap();
    assert_eq!(a.send_with_fds(b"fd", &[x.as_fd()]).unwrap(), 2);
    drop(x);
    let (mut buf, mut fds) = ([0; 8], Vec::new());
    assert_eq!(b.recv_with_fds(&mut buf, &mut fds).unwrap(), 2);
    assert_eq!(&buf[..2], b"fd");
    assert_eq!(fds.len(), 1);
    // The received descriptor is the same socket, and close-on-exec.
    // SAFETY: F_GETFD on a descriptor `fds` owns.
    let flags = unsafe { libc::fcntl(fds[0].as_raw_fd(), libc::F_GETFD) };
    assert_ne!(flags & libc::FD_CLOEXEC, 0, "a received descriptor must be close-on-exec");
    let mut x = UnixStream::from(fds.pop().unwrap());
    x.write_all(b"same").unwrap();
    let mut got = [0; 4];
    y.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"same");

    // Plain bytes through recv_with_fds bring no descriptors.
    (&a).write_all(b"plain").unwrap();
    assert_eq!(b.recv_with_fds(&mut buf, &mut fds).unwrap(), 5);
    assert!(fds.is_empty());

    // Bad input: clear errors, nothing sent.
    let e = a.send_with_fds(b"", &[y.as_fd()]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e:?}");
    let many: Vec<BorrowedFd<'_>> = (0..254).map(|_| y.as_fd()).collect();
    let e = a.send_with_fds(b"x", &many).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e:?}");
    let e = b.recv_with_fds(&mut [], &mut fds).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e:?}");
    b.set_read_deadline(Some(past())).unwrap();
    assert_timeout_result(b.recv_with_fds(&mut buf, &mut fds));
}

#[test]
fn a_listening_socket_passed_over_a_socketpair_accepts_there() {
    let path = dir("pass-listener").join("l.sock");
    let l = Listener::bind(&path).unwrap();
    let (a, b) = Conn::pair().unwrap();
    // SAFETY: `l` is open and outlives the borrow, which ends with the call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(l.as_raw_fd()) };
    a.send_with_fds(b"L", &[borrowed]).unwrap();
    let (mut buf, mut fds) = ([0; 1], Vec::<OwnedFd>::new());
    b.recv_with_fds(&mut buf, &mut fds).unwrap();
    let received = Listener::from_std(UnixListener::from(fds.pop().unwrap())).unwrap();
    // The original stops accepting (and removes the file only when it
    // closes); the copy accepts on the same queue.
    let mut client = unix::connect(&path).unwrap();
    let mut server = received.accept().unwrap();
    client.write_all(b"handed over").unwrap();
    let mut got = [0; 11];
    server.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"handed over");
    drop(received);
    assert!(path.exists(), "an adopted listener leaves the file");
    drop(l);
    assert!(!path.exists());
}

/// The restart without downtime: a TCP listening socket handed to a child
/// process (Python) over a Unix socket, which accepts on it there.
#[test]
fn a_listening_socket_passed_to_a_child_process_accepts_there() {
    let path = dir("pass-child").join("handover.sock");
    let handover = unix::listen(&path).unwrap();
    let tcp_listener = tcp::listen("127.0.0.1:0").unwrap();
    let addr = tcp_listener.local_addr().unwrap();
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
msg, fds, _, _ = socket.recv_fds(s, 16, 1)
l = socket.socket(fileno=fds[0])
l.settimeout(10)
c, _ = l.accept()
c.sendall(b"accepted by the child, " + msg)
c.close()
print("done", flush=True)
"#;
    let mut child =
        Proc::spawn("python3", Command::new("python3").arg("-c").arg(script).arg(&path).stdout(Stdio::piped()));
    handover.set_deadline(Some(testkit::soon())).unwrap();
    let to_child = handover.accept().unwrap();
    // SAFETY: `tcp_listener` is open and outlives the borrow (the call).
    let borrowed = unsafe { BorrowedFd::borrow_raw(tcp_listener.as_raw_fd()) };
    assert_eq!(to_child.send_with_fds(b"hello", &[borrowed]).unwrap(), 5);
    // The parent no longer accepts; the child does.
    drop(tcp_listener);
    let mut c = tcp::connect_addr(addr).unwrap();
    c.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "accepted by the child, hello");
    let (out, err, status) = child.finish();
    assert!(status.success(), "python: {err}");
    assert_eq!(out.trim(), "done");
}

// ----------------------------------------------------------- real peers

#[test]
fn socat_talks_to_a_reseau_listener() {
    let path = dir("socat").join("s.sock");
    let l = unix::listen(&path).unwrap();
    let server = thread::spawn(move || {
        let mut c = l.accept().unwrap();
        c.set_deadline(Some(testkit::soon())).unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        c.write_all(&got.to_ascii_uppercase()).unwrap();
    });
    let mut socat = Proc::spawn(
        "socat",
        Command::new("socat")
            .arg("-t10")
            .arg("STDIO")
            .arg(format!("UNIX-CONNECT:{}", path.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut stdin = socat.child.stdin.take().unwrap();
    stdin.write_all(b"hello from socat\n").unwrap();
    drop(stdin);
    let (out, err, status) = socat.finish();
    assert!(status.success(), "socat: {err}");
    assert_eq!(out, "HELLO FROM SOCAT\n");
    server.join().unwrap();
}

#[test]
fn a_reseau_client_talks_to_a_python_server() {
    let path = dir("python").join("py.sock");
    let script = r#"
import socket, sys
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind(sys.argv[1])
l.listen()
print("listening", flush=True)
l.settimeout(10)
c, _ = l.accept()
c.settimeout(10)
data = b""
while not data.endswith(b"\n"):
    data += c.recv(64)
c.sendall(data[::-1])
c.close()
"#;
    let mut py = Proc::spawn(
        "python3",
        Command::new("python3").arg("-c").arg(script).arg(&path).stdout(Stdio::piped()).stderr(Stdio::piped()),
    );
    let lines = testkit::child::Lines::follow(&mut py);
    lines.wait_for("python listening", |l| l == "listening");
    let mut c = unix::connect(&path).unwrap();
    c.set_deadline(Some(testkit::soon())).unwrap();
    c.write_all(b"olleh\n").unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "\nhello");
}

// -------------------------------------------------------- green threads

#[test]
fn green_threads_serve_a_thousand_unix_connections_on_one_pool() {
    const CONNS: usize = 1000;
    testkit::raise_fd_limit(2 * CONNS as u64 + 256);
    let path = dir("green").join("g.sock");
    let l = Arc::new(unix::listen(&path).unwrap());
    let pool = green::Pool::new(2).unwrap();
    let acceptor = {
        let l = l.clone();
        pool.spawn(move || {
            // Each connection gets a green thread of its own (green::spawn
            // in a green thread spawns on the same pool).
            let served: Vec<_> = (0..CONNS)
                .map(|_| {
                    let mut c = l.accept().unwrap();
                    green::spawn(move || {
                        let mut buf = [0; 16];
                        let n = c.read(&mut buf).unwrap();
                        c.write_all(&buf[..n]).unwrap();
                    })
                })
                .collect();
            for s in served {
                s.join().unwrap();
            }
        })
    };
    let (tx, rx) = mpsc::channel();
    let clients: Vec<_> = (0..CONNS)
        .map(|i| {
            let (path, tx) = (path.clone(), tx.clone());
            pool.spawn(move || {
                // A full accept queue fails a Unix connect at once with
                // WouldBlock on Linux (as in Go): let the acceptor run.
                let mut c = loop {
                    match unix::connect(&path) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => green::yield_now(),
                        other => break other.unwrap(),
                    }
                };
                c.set_deadline(Some(testkit::soon())).unwrap();
                let msg = format!("conn {i}");
                c.write_all(msg.as_bytes()).unwrap();
                let mut back = vec![0; msg.len()];
                c.read_exact(&mut back).unwrap();
                assert_eq!(back, msg.as_bytes());
                tx.send(()).unwrap();
            })
        })
        .collect();
    for _ in 0..CONNS {
        rx.recv_timeout(PATIENCE).expect("a green client did not finish");
    }
    for c in clients {
        c.join().unwrap();
    }
    acceptor.join().unwrap();
    pool.shutdown();
}
