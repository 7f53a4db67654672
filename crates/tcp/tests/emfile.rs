//! Out of descriptors (RLIMIT_NOFILE lowered, every descriptor in use):
//!
//! - a blocking `accept` fails promptly with EMFILE (or ENFILE), neither
//!   hangs nor spins, and works again once descriptors are available;
//! - an accept already parked when a connection arrives, a task waiting in
//!   `poll_accept`, and a dial all fail cleanly with EMFILE; nothing spins
//!   while a connection nobody can accept sits in the queue (the process's
//!   CPU time stays low); a thread that has never waited (it has no wake-up
//!   eventfd yet and cannot make one) still waits correctly, for data or for
//!   its deadline, as std and Go do; and all of it works again once
//!   descriptors are free.
//!
//! Each scenario changes the whole process (its descriptor limit) and
//! measures it (its CPU time), so the binary has a single test that runs
//! them one after the other.
//!
//! Linux only: it fills the descriptor table up to a limit found in `/proc`,
//! and watches threads park there.
#![cfg(target_os = "linux")]

mod support;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use support::{assert_timeout_result, listener, loopback, raw_wait_readable, sockets};
use testkit::task::channel_waker;
use testkit::{Exhausted, PATIENCE, gettid, spawn_tracked, until_parked};

#[test]
fn out_of_descriptors() {
    accept_fails_promptly_with_emfile_and_recovers();
    nothing_spins_and_everything_recovers();
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// A TCP socket made now, connected later (connecting needs no new
/// descriptor).
fn unconnected_socket() -> TcpStream {
    TcpStream::from(sockets::tcp_socket(&loopback()))
}

/// User plus system CPU time of the whole process so far.
fn cpu_time() -> Duration {
    // SAFETY: rusage is plain data, filled in by getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid rusage to fill in.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Run `f` on a new thread that, once `f` has returned, stays alive until
/// the returned sender is dropped: a thread that exits closes its wake-up
/// eventfd, which would hand a descriptor back too early.
fn spawn_held<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> (i32, mpsc::Receiver<(T, Instant)>, mpsc::Sender<()>) {
    let (hold_tx, hold_rx) = mpsc::channel::<()>();
    let (tid_tx, tid_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        let r = f();
        let _ = tx.send((r, Instant::now()));
        let _ = hold_rx.recv();
    });
    (tid_rx.recv().unwrap(), rx, hold_tx)
}

/// A blocking accept with no descriptor left fails at once, twice, and
/// accepts the waiting connection once descriptors are back.
fn accept_fails_promptly_with_emfile_and_recovers() {
    let l = listener();
    let addr = l.local_addr().unwrap();
    // Make this thread wait once, so its wake-up eventfd exists before the
    // descriptors run out.
    l.set_deadline(Some(Instant::now() + Duration::from_millis(1))).unwrap();
    assert_timeout_result(l.accept().map(|c| c.remote_addr()));
    l.set_deadline(None).unwrap();

    let mut client = tcp::connect_addr(addr).unwrap();
    raw_wait_readable(&l); // queued, waiting to be accepted

    let ex = Exhausted::new();

    // A spinning accept would run into this deadline and report a timeout
    // instead of EMFILE; a hanging one would never return.
    l.set_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    let mut results = Vec::new();
    for _ in 0..2 {
        let t0 = Instant::now();
        let r = l.accept();
        results.push((r.map(|c| c.remote_addr()), t0.elapsed()));
    }

    drop(ex);

    for (r, took) in results {
        match r {
            Ok(a) => panic!("accept succeeded with no descriptors left ({a:?})"),
            Err(e) => assert!(is_fd_exhaustion(&e), "expected EMFILE or ENFILE, got {e:?}"),
        }
        assert!(took < Duration::from_secs(2), "accept took {took:?} to report EMFILE");
    }

    // Descriptors are back: the connection that was waiting is accepted.
    let mut s = l.accept().expect("accept after the limit was raised");
    assert_eq!(s.remote_addr().unwrap(), client.local_addr().unwrap());
    l.set_deadline(None).unwrap();
    client.write_all(b"still here").unwrap();
    let mut b = [0u8; 10];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"still here");
}

/// Parked and polling acceptors, fresh threads and a dial, all while no
/// descriptor is left; then all of it again once they are back.
fn nothing_spins_and_everything_recovers() {
    let l = Arc::new(listener());
    let idle = Arc::new(listener()); // nobody ever connects to this one
    let addr = l.local_addr().unwrap();
    let first = unconnected_socket();
    let second = unconnected_socket();
    // A connected pair for the reads of threads with no eventfd.
    let reading = Arc::new(listener());
    let talker = tcp::connect_addr(reading.local_addr().unwrap()).unwrap();
    let quiet = Arc::new(reading.accept().unwrap());
    // Make this thread wait once, so its wake-up eventfd exists beforehand.
    l.set_deadline(Some(Instant::now() + Duration::from_millis(1))).unwrap();
    assert_timeout_result(l.accept().and_then(|c| c.remote_addr()));
    l.set_deadline(Some(Instant::now() + PATIENCE * 3)).unwrap();

    // An acceptor parked before the descriptors run out.
    let l2 = l.clone();
    let (tid, parked, hold_parked) = spawn_held(move || l2.accept().and_then(|c| c.remote_addr()));
    until_parked(tid);
    // A task waiting in poll_accept: the listener is now registered with the
    // global reactor.
    let (waker, woken) = channel_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(l.poll_accept(&mut cx).is_pending());

    let ex = Exhausted::new();
    // From here until the connection is accepted, nothing should spin: not
    // the reactor (whose registration is edge-triggered) and not a waiter
    // that retries accept4.
    let cpu0 = cpu_time();
    let arrived = Instant::now();
    sockets::connect(&first, &addr);
    // The parked acceptor wakes and reports EMFILE; the task is woken.
    let parked_result = parked.recv_timeout(PATIENCE);
    let woken_result = woken.recv_timeout(PATIENCE);
    // Let a 300 ms window pass with the connection stuck in the queue.
    let (_never_tx, never) = mpsc::channel::<()>();
    let _ = never.recv_timeout(Duration::from_millis(300).saturating_sub(arrived.elapsed()));
    let window = arrived.elapsed();
    let cpu = cpu_time() - cpu0;
    // The task gets EMFILE too, and neither takes the connection.
    let polled = l.poll_accept(&mut cx).map(|r| r.and_then(|c| c.remote_addr()));

    // Blocking accepts fail at once, every time.
    let t0 = Instant::now();
    let repeated: Vec<_> = (0..20).map(|_| l.accept().and_then(|c| c.remote_addr())).collect();
    let repeated_took = t0.elapsed();

    // A thread that has never waited cannot make its wake-up eventfd, and
    // waits all the same: an accept until its deadline, a read for data or
    // its deadline.
    let idle2 = idle.clone();
    idle.set_deadline(Some(Instant::now() + Duration::from_millis(300))).unwrap();
    let (_, fresh, hold_fresh) = spawn_held(move || idle2.accept().and_then(|c| c.remote_addr()));
    let fresh = fresh.recv_timeout(PATIENCE);
    let q = quiet.clone();
    let read_start = Instant::now();
    let (_, timed, hold_timed) = spawn_held(move || {
        q.set_read_deadline(Some(Instant::now() + Duration::from_millis(300))).unwrap();
        (&*q).read(&mut [0; 8])
    });
    let timed = timed.recv_timeout(PATIENCE);
    let read_took = read_start.elapsed();
    let q = quiet.clone();
    let (_, got, hold_got) = spawn_held(move || {
        q.set_read_deadline(Some(Instant::now() + PATIENCE)).unwrap();
        let mut buf = [0; 5];
        (&*q).read_exact(&mut buf).map(|()| buf)
    });
    (&talker).write_all(b"hello").unwrap();
    let got = got.recv_timeout(PATIENCE);
    // Dialing needs a socket.
    let dial = tcp::connect_addr(addr).map(|c| c.local_addr());

    drop(ex);
    drop((hold_parked, hold_fresh, hold_timed, hold_got));

    assert!(
        cpu < Duration::from_millis(100),
        "{cpu:?} of CPU time in {window:?} while one connection could not be accepted: something spins"
    );
    let (r, at) = parked_result.expect("a parked accept hangs when accept4 fails with EMFILE");
    match r {
        Ok(a) => panic!("accepted {a:?} with no descriptors left"),
        Err(e) => assert!(is_fd_exhaustion(&e), "the parked accept: expected EMFILE, got {e:?}"),
    }
    let took = at - arrived;
    assert!(took < Duration::from_secs(2), "the parked accept took {took:?} to report EMFILE");
    woken_result.expect("the task in poll_accept was not woken by the connection");
    match polled {
        Poll::Ready(Err(e)) => assert!(is_fd_exhaustion(&e), "poll_accept: expected EMFILE, got {e:?}"),
        other => panic!("poll_accept with no descriptors left: {other:?}"),
    }
    for r in repeated {
        match r {
            Ok(a) => panic!("accepted {a:?} with no descriptors left"),
            Err(e) => assert!(is_fd_exhaustion(&e), "expected EMFILE, got {e:?}"),
        }
    }
    assert!(repeated_took < Duration::from_secs(2), "20 failing accepts took {repeated_took:?}");
    match fresh.expect("an accept on a thread with no eventfd hangs when none can be made").0 {
        Ok(a) => panic!("accepted {a:?} from a listener nobody connects to"),
        Err(e) => assert!(tcp::DeadlineExceeded::is(&e), "a first wait with no descriptors left: {e:?}"),
    }
    let (r, _) = timed.expect("a read on a thread with no eventfd hangs past its deadline");
    let e = r.expect_err("read data nobody sent");
    assert!(tcp::DeadlineExceeded::is(&e), "a read with no descriptors left: expected its deadline, got {e:?}");
    assert!(read_took >= Duration::from_millis(300), "the deadline fired early ({read_took:?})");
    let (r, _) = got.expect("a read on a thread with no eventfd never saw its data");
    assert_eq!(&r.expect("a read with no descriptors left"), b"hello");
    match dial {
        Ok(a) => panic!("dialed ({a:?}) with no descriptors left"),
        Err(tcp::OpError { err: tcp::Error::Io(e), .. }) => assert!(is_fd_exhaustion(&e), "dial: {e:?}"),
        Err(e) => panic!("dial: expected Error::Io(EMFILE), got {e:?}"),
    }

    // Descriptors are back: the waiting connection is accepted, a task
    // accepts the next, a fresh thread can wait, and data flows.
    let mut s1 = l.accept().expect("accept once descriptors are back");
    assert_eq!(s1.remote_addr().unwrap(), first.local_addr().unwrap());
    (&first).write_all(b"first").unwrap();
    let mut b = [0u8; 5];
    s1.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"first");

    assert!(l.poll_accept(&mut cx).is_pending());
    while woken.try_recv().is_ok() {}
    sockets::connect(&second, &addr);
    let s2 = loop {
        match l.poll_accept(&mut cx) {
            Poll::Ready(r) => break r.expect("poll_accept once descriptors are back"),
            Poll::Pending => woken.recv_timeout(PATIENCE).expect("pending, and never woken"),
        };
    };
    assert_eq!(s2.remote_addr().unwrap(), second.local_addr().unwrap());

    let idle2 = idle.clone();
    idle.set_deadline(None).unwrap();
    let (tid, rx) = spawn_tracked(move || idle2.accept().and_then(|c| c.remote_addr()));
    until_parked(tid); // it could make its eventfd this time
    let client = tcp::connect_addr(idle.local_addr().unwrap()).expect("dial once descriptors are back");
    let (r, _) = rx.recv_timeout(PATIENCE).expect("the fresh thread's accept");
    assert_eq!(r.unwrap(), client.local_addr().unwrap());
}
