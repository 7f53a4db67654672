//! `PollFd`: parking on readiness, deadlines moved while parked, close, and
//! `Waker`-based readiness. The tests that need a thread parked first find
//! it in `/proc` (testkit), so they are Linux only.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use iopoll::{Closed, DeadlineExceeded, PollFd, Runtime};
use testkit::task::channel_waker;
#[cfg(target_os = "linux")]
use testkit::{gettid, until_parked};

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut && DeadlineExceeded::is(e)
}

#[cfg(target_os = "linux")]
/// Spawn a thread that waits for readability on `pfd` and reports the result
/// and when it returned. Returns once the thread is parked.
fn park_reader(pfd: Arc<PollFd>) -> mpsc::Receiver<(io::Result<()>, Instant)> {
    let (tid_tx, tid_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        let r = pfd.wait_readable();
        tx.send((r, Instant::now())).unwrap();
    });
    until_parked(tid_rx.recv().unwrap());
    rx
}

#[cfg(target_os = "linux")]
#[test]
fn wakes_on_readiness() {
    let (a, mut b) = pair();
    let pfd = Arc::new(PollFd::new(&Runtime::global(), a.as_raw_fd()).unwrap());
    let rx = park_reader(pfd.clone());
    b.write_all(b"x").unwrap();
    let (r, _) = rx.recv_timeout(Duration::from_secs(5)).expect("woken by data");
    r.unwrap();
}

#[test]
fn deadline_fires_not_early() {
    let (a, _b) = pair();
    let pfd = PollFd::new(&Runtime::global(), a.as_raw_fd()).unwrap();
    for ms in [1u64, 5, 20, 50] {
        let deadline = Instant::now() + Duration::from_millis(ms);
        pfd.set_read_deadline(Some(deadline));
        let err = pfd.wait_readable().unwrap_err();
        let now = Instant::now();
        assert!(is_timeout(&err), "{err:?}");
        assert!(now >= deadline, "{ms} ms deadline returned early");
        assert!(now - deadline < Duration::from_millis(500), "{ms} ms deadline took {:?} too long", now - deadline);
        // Sticky until reset.
        assert!(is_timeout(&pfd.prepare_read().unwrap_err()));
    }
    pfd.set_read_deadline(None);
    pfd.prepare_read().unwrap();
}

#[test]
fn past_deadline_fails_before_the_syscall_even_with_data() {
    let (a, mut b) = pair();
    b.write_all(b"ready").unwrap();
    let pfd = PollFd::new(&Runtime::global(), a.as_raw_fd()).unwrap();
    pfd.set_read_deadline(Some(Instant::now()));
    assert!(is_timeout(&pfd.prepare_read().unwrap_err()));
    assert!(is_timeout(&pfd.wait_readable().unwrap_err()));
    // The write direction is independent.
    pfd.prepare_write().unwrap();
    pfd.wait_writable().unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn deadline_moved_earlier_wakes_the_parked_thread() {
    let (a, _b) = pair();
    let pfd = Arc::new(PollFd::new(&Runtime::global(), a.as_raw_fd()).unwrap());
    pfd.set_read_deadline(Some(Instant::now() + Duration::from_secs(3600)));
    let rx = park_reader(pfd.clone());
    let moved = Instant::now();
    pfd.set_read_deadline(Some(moved));
    let (r, at) = rx.recv_timeout(Duration::from_secs(5)).expect("woken by the earlier deadline");
    assert!(is_timeout(&r.unwrap_err()));
    assert!(at - moved < Duration::from_secs(1));
}

#[cfg(target_os = "linux")]
#[test]
fn deadline_moved_later_keeps_the_thread_parked() {
    let (a, _b) = pair();
    let pfd = Arc::new(PollFd::new(&Runtime::global(), a.as_raw_fd()).unwrap());
    pfd.set_read_deadline(Some(Instant::now() + Duration::from_millis(40)));
    let rx = park_reader(pfd.clone());
    let later = Instant::now() + Duration::from_millis(300);
    pfd.set_read_deadline(Some(later));
    let (r, at) = rx.recv_timeout(Duration::from_secs(5)).expect("times out at the new deadline");
    assert!(is_timeout(&r.unwrap_err()));
    assert!(at >= later, "returned {:?} before the extended deadline", later - at);
}

#[cfg(target_os = "linux")]
#[test]
fn deadline_cleared_lets_the_thread_wait_for_data() {
    let (a, mut b) = pair();
    let pfd = Arc::new(PollFd::new(&Runtime::global(), a.as_raw_fd()).unwrap());
    pfd.set_read_deadline(Some(Instant::now() + Duration::from_millis(30)));
    let rx = park_reader(pfd.clone());
    pfd.set_read_deadline(None);
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "must still be waiting");
    b.write_all(b"x").unwrap();
    let (r, _) = rx.recv_timeout(Duration::from_secs(5)).expect("woken by data");
    r.unwrap();
}

#[test]
fn racing_deadline_changes_never_lose_a_wakeup() {
    let (a, mut b) = pair();
    let mut a_read = a.try_clone().unwrap();
    let pfd = Arc::new(PollFd::new(&Runtime::global(), a.as_raw_fd()).unwrap());
    let (go_tx, go_rx) = mpsc::channel::<u32>();
    let (done_tx, done_rx) = mpsc::channel();
    let barrier = Arc::new(Barrier::new(2));
    let (p, bar) = (pfd.clone(), barrier.clone());
    let waiter = thread::spawn(move || {
        while let Ok(case) = go_rx.recv() {
            p.set_read_deadline(match case {
                0 => None,
                1 => Some(Instant::now() + Duration::from_secs(3600)),
                _ => Some(Instant::now() + Duration::from_millis(1)),
            });
            bar.wait();
            let r = p.wait_readable();
            if case == 2 {
                // The main thread writes exactly one byte this round, perhaps
                // after our 1 ms deadline already fired: take that byte before
                // reporting, so the next round starts with nothing to read.
                p.set_read_deadline(None);
                let mut one = [0u8; 1];
                loop {
                    match a_read.read(&mut one) {
                        Ok(1) => break,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => p.wait_readable().unwrap(),
                        other => panic!("draining the round's byte: {other:?}"),
                    }
                }
            }
            done_tx.send((case, r.map_err(|e| is_timeout(&e)))).unwrap();
        }
    });
    for i in 0..1000u32 {
        let case = i % 3;
        go_tx.send(case).unwrap();
        barrier.wait();
        // Race the waiter on its way into ppoll.
        match case {
            0 => pfd.set_read_deadline(Some(Instant::now())),
            1 => {
                pfd.set_read_deadline(Some(Instant::now() + Duration::from_secs(7200)));
                pfd.set_read_deadline(Some(Instant::now() - Duration::from_millis(1)));
            }
            _ => {
                pfd.set_read_deadline(None);
                b.write_all(b"x").unwrap();
            }
        }
        let (c, r) = done_rx.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| panic!("iteration {i} hung"));
        assert_eq!(c, case);
        match case {
            0 | 1 => assert_eq!(r, Err(true), "iteration {i}: expected a timeout"),
            // Either the 1 ms deadline passed before it was cleared, or data woke it.
            _ => assert!(r.is_ok() || r == Err(true), "iteration {i}: {r:?}"),
        }
    }
    drop(go_tx);
    waiter.join().unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn close_wakes_parked_reader_and_writer() {
    let (a, _b) = pair();
    // Fill the send buffer so a writer has to wait.
    let mut w = a.try_clone().unwrap();
    while w.write(&[0u8; 65536]).is_ok() {}
    let pfd = Arc::new(PollFd::new(&Runtime::global(), a.as_raw_fd()).unwrap());
    let reader = park_reader(pfd.clone());
    let (tid_tx, tid_rx) = mpsc::channel();
    let (tx, writer) = mpsc::channel();
    let p = pfd.clone();
    thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        tx.send(p.wait_writable()).unwrap();
    });
    until_parked(tid_rx.recv().unwrap());
    pfd.close();
    pfd.close(); // idempotent
    let (r, _) = reader.recv_timeout(Duration::from_secs(5)).expect("reader woken by close");
    assert!(Closed::is(&r.unwrap_err()));
    let w = writer.recv_timeout(Duration::from_secs(5)).expect("writer woken by close");
    assert!(Closed::is(&w.unwrap_err()));
    // Later waits fail at once; closed beats an expired deadline.
    pfd.set_read_deadline(Some(Instant::now()));
    assert!(Closed::is(&pfd.wait_readable().unwrap_err()));
}

#[test]
fn waker_woken_on_readiness() {
    let rt = Runtime::spawn().unwrap();
    let (a, mut b) = pair();
    let pfd = PollFd::new(&rt, a.as_raw_fd()).unwrap();
    let (waker, woken) = channel_waker();
    let mut cx = Context::from_waker(&waker);
    // Not readable yet: any initial readiness event is for writability.
    let mut first = pfd.poll_read_ready(&mut cx);
    while first.is_ready() {
        first = pfd.poll_read_ready(&mut cx);
    }
    b.write_all(b"x").unwrap();
    woken.recv_timeout(Duration::from_secs(5)).expect("waker woken by data");
    assert!(matches!(pfd.poll_read_ready(&mut cx), Poll::Ready(Ok(()))));
    // Write readiness was latched at registration.
    assert!(matches!(pfd.poll_write_ready(&mut cx), Poll::Ready(Ok(()))));
}

#[test]
fn waker_woken_at_the_deadline_and_on_close() {
    let rt = Runtime::spawn().unwrap();
    let (a, _b) = pair();
    let pfd = PollFd::new(&rt, a.as_raw_fd()).unwrap();
    let (waker, woken) = channel_waker();
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now() + Duration::from_millis(30);
    pfd.set_read_deadline(Some(deadline));
    assert!(pfd.poll_read_ready(&mut cx).is_pending());
    woken.recv_timeout(Duration::from_secs(5)).expect("woken at the deadline");
    assert!(Instant::now() >= deadline);
    match pfd.poll_read_ready(&mut cx) {
        Poll::Ready(Err(e)) => assert!(is_timeout(&e)),
        other => panic!("expected a timeout, got {other:?}"),
    }

    // Extended while pending: the early timer wakes it spuriously at most,
    // and the re-poll is still pending until the new deadline.
    pfd.set_read_deadline(Some(Instant::now() + Duration::from_secs(3600)));
    assert!(pfd.poll_read_ready(&mut cx).is_pending());
    pfd.close();
    woken.recv_timeout(Duration::from_secs(5)).expect("woken by close");
    match pfd.poll_read_ready(&mut cx) {
        Poll::Ready(Err(e)) => assert!(Closed::is(&e)),
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[test]
fn embedded_turn_drives_waker_readiness() {
    let rt = Runtime::new().unwrap();
    let (a, mut b) = pair();
    let pfd = PollFd::new(&rt, a.as_raw_fd()).unwrap();
    let (waker, woken) = channel_waker();
    let mut cx = Context::from_waker(&waker);
    while pfd.poll_read_ready(&mut cx).is_ready() {}
    b.write_all(b"hello").unwrap();
    // Nothing happens until the owner turns the reactor.
    assert!(woken.try_recv().is_err());
    let n = rt.turn(Some(Duration::from_secs(5))).unwrap();
    assert!(n >= 1);
    woken.try_recv().expect("turn woke the waker");
    assert!(matches!(pfd.poll_read_ready(&mut cx), Poll::Ready(Ok(()))));
}

#[cfg(target_os = "linux")]
#[test]
fn shutdown_wakes_parked_threads_and_wakers_with_an_error() {
    let rt = Runtime::spawn().unwrap();
    let (a, _b) = pair();
    let (c, _d) = pair();
    let blocking = Arc::new(PollFd::new(&rt, a.as_raw_fd()).unwrap());
    let parked = park_reader(blocking.clone());
    let with_waker = PollFd::new(&rt, c.as_raw_fd()).unwrap();
    let (waker, woken) = channel_waker();
    let mut cx = Context::from_waker(&waker);
    while with_waker.poll_read_ready(&mut cx).is_ready() {}
    let (tx, fired) = mpsc::channel::<()>();
    rt.timer_at(Instant::now() + Duration::from_secs(3600), move || {
        let _ = tx.send(());
    });

    rt.shutdown().unwrap();
    assert!(rt.is_shut_down());
    let (r, _) = parked.recv_timeout(Duration::from_secs(5)).expect("parked thread woken by shutdown");
    assert!(iopoll::ReactorShutdown::is(&r.unwrap_err()));
    woken.recv_timeout(Duration::from_secs(5)).expect("waker woken by shutdown");
    match with_waker.poll_read_ready(&mut cx) {
        Poll::Ready(Err(e)) => assert!(iopoll::ReactorShutdown::is(&e)),
        other => panic!("expected ReactorShutdown, got {other:?}"),
    }
    // Pending timers are dropped unrun (their sender goes with them).
    assert_eq!(fired.recv_timeout(Duration::from_secs(5)), Err(mpsc::RecvTimeoutError::Disconnected));
    // Nothing new can join a stopped reactor.
    let (e, _f) = pair();
    assert!(iopoll::ReactorShutdown::is(&PollFd::new(&rt, e.as_raw_fd()).unwrap_err()));
    // Closed still wins over shut down.
    blocking.close();
    assert!(Closed::is(&blocking.wait_readable().unwrap_err()));
}

#[test]
fn the_global_runtime_cannot_be_shut_down() {
    assert!(Runtime::global().shutdown().is_err());
    assert!(!Runtime::global().is_shut_down());
    let embedded = Runtime::new().unwrap();
    embedded.shutdown().unwrap();
    assert!(iopoll::ReactorShutdown::is(&embedded.turn(Some(Duration::ZERO)).unwrap_err()));
}

/// A `Waker` whose `wake` polls the very `PollFd` that woke it (as an
/// executor that runs a task inline does): readiness, a deadline moved
/// earlier, a deadline reached and a close all wake it with no lock held,
/// so none deadlocks.
#[test]
fn a_waker_that_polls_the_same_fd_inside_wake_does_not_deadlock() {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    struct Reentrant {
        pfd: OnceLock<Arc<PollFd>>,
        wakes: AtomicUsize,
    }
    impl Wake for Reentrant {
        fn wake(self: Arc<Self>) {
            self.wakes.fetch_add(1, SeqCst);
            let waker = Waker::from(self.clone());
            let _ = self.pfd.get().unwrap().poll_read_ready(&mut Context::from_waker(&waker));
        }
    }

    let outcome = testkit::within(testkit::PATIENCE, "re-entrant wakes", || {
        let rt = Runtime::new().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let pfd = Arc::new(PollFd::new(&rt, a.as_raw_fd()).unwrap());
        let r = Arc::new(Reentrant { pfd: OnceLock::new(), wakes: AtomicUsize::new(0) });
        let _ = r.pfd.set(pfd.clone());
        let waker = Waker::from(r.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(pfd.poll_read_ready(&mut cx).is_pending());
        // Readiness, delivered by the reactor's turn.
        b.write_all(b"x").unwrap();
        while r.wakes.load(SeqCst) < 1 {
            rt.turn(Some(Duration::from_millis(100))).unwrap();
        }
        (&a).read_exact(&mut [0u8; 1]).unwrap();
        assert!(pfd.poll_read_ready(&mut cx).is_pending());
        // A deadline moved earlier, from this thread.
        pfd.set_read_deadline(Some(Instant::now()));
        assert!(r.wakes.load(SeqCst) >= 2);
        pfd.set_read_deadline(None);
        assert!(pfd.poll_read_ready(&mut cx).is_pending());
        // A deadline reached, through the wheel timer the reactor runs.
        let before = r.wakes.load(SeqCst);
        pfd.set_read_deadline(Some(Instant::now() + Duration::from_millis(2)));
        assert!(pfd.poll_read_ready(&mut cx).is_pending());
        while r.wakes.load(SeqCst) == before {
            rt.turn(Some(Duration::from_millis(100))).unwrap();
        }
        pfd.set_read_deadline(None);
        assert!(pfd.poll_read_ready(&mut cx).is_pending());
        // A close.
        pfd.close();
        r.wakes.load(SeqCst)
    });
    assert!(outcome >= 4, "{outcome} wakes");
}
