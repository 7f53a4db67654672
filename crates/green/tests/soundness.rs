//! A green thread lives until its closure returns: a dropped `Waker` never
//! unwinds it, on any thread; shutdown abandons (never unwinds, never waits
//! for) a green thread nothing can wake; absurd stack sizes and missing
//! stacks are errors, never dead workers.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use green::Pool;
use testkit::{PATIENCE, bounded};

/// Sets its flag when dropped: whether the frame holding it was unwound.
struct Unwound(Arc<AtomicBool>);

impl Drop for Unwound {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

#[test]
fn a_green_thread_parked_with_no_waker_is_never_unwound() {
    let pool = Pool::new(1).unwrap();
    let unwound = Arc::new(AtomicBool::new(false));
    let u = unwound.clone();
    let sleeper = pool.spawn(move || {
        let _guard = Unwound(u);
        // No timer, no waker anywhere: it can never be woken.
        green::sleep(Duration::MAX);
    });
    // One worker, first come first served: this runs after the sleeper
    // suspended and the worker dealt with it.
    let u = unwound.clone();
    let after = pool.spawn(move || u.load(SeqCst));
    assert!(!testkit::within(PATIENCE, "the second green thread", move || after.join().unwrap()));
    assert!(!sleeper.is_finished(), "a green thread that never returns has no result");
    assert!(!unwound.load(SeqCst));
    testkit::within(PATIENCE, "shutdown with an unreachable green thread", move || pool.shutdown());
    assert!(!unwound.load(SeqCst), "shutdown abandons it; it never unwinds");
}

#[test]
fn a_waker_dropped_on_another_thread_never_unwinds_the_green_thread_there() {
    let pool = Pool::new(1).unwrap();
    let unwound = Arc::new(AtomicBool::new(false));
    let (waker_tx, waker_rx) = mpsc::channel();
    let (drop_now_tx, drop_now_rx) = mpsc::channel::<()>();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    // The documented plug-in path: a waker handed to another OS thread.
    let dropper = std::thread::spawn(move || {
        let waker: std::task::Waker = waker_rx.recv().unwrap();
        drop_now_rx.recv().unwrap();
        drop(waker);
        dropped_tx.send(()).unwrap();
    });
    let u = unwound.clone();
    let _parked = pool.spawn(move || {
        let _guard = Unwound(u);
        waker_tx.send(iopoll::park::waker().unwrap()).unwrap();
        loop {
            iopoll::park::park(None).unwrap();
        }
    });
    // Runs once the first has suspended: then let the other thread drop the
    // last waker.
    let go = pool.spawn(move || drop_now_tx.send(()).unwrap());
    testkit::within(PATIENCE, "the second green thread", move || go.join().unwrap());
    bounded(&dropped_rx, "the waker's drop");
    assert!(!unwound.load(SeqCst), "the suspended green thread was unwound by a dropped Waker");
    dropper.join().unwrap();
    testkit::within(PATIENCE, "shutdown with an unreachable green thread", move || pool.shutdown());
    assert!(!unwound.load(SeqCst));
}

#[test]
fn shutdown_still_waits_for_a_green_thread_that_can_be_woken() {
    let pool = Pool::new(1).unwrap();
    let slot = Arc::new(iopoll::sync::OneShot::new());
    let s = slot.clone();
    let waiter = pool.spawn(move || s.take(None).unwrap());
    let (done_tx, done_rx) = mpsc::channel();
    let shut = std::thread::spawn(move || {
        pool.shutdown();
        done_tx.send(()).unwrap();
    });
    // Shutdown cannot finish while the waiter waits: it has a waker (in the
    // slot's wait list) and so can finish.
    assert!(done_rx.recv_timeout(Duration::from_millis(100)).is_err(), "shutdown did not wait");
    slot.put(7);
    bounded(&done_rx, "shutdown once the last green thread finished");
    assert_eq!(waiter.join().unwrap(), 7);
    shut.join().unwrap();
}

#[test]
fn an_absurd_stack_size_is_an_error_at_build() {
    for size in [usize::MAX, usize::MAX / 2, green::MAX_STACK_SIZE + 1] {
        let err = Pool::builder().workers(1).stack_size(size).build().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{size}: {err}");
        assert!(err.to_string().contains("stack"), "{err}");
    }
    // The largest allowed size works: it is address space only.
    let pool = Pool::builder().workers(1).stack_size(green::MAX_STACK_SIZE).build().unwrap();
    assert_eq!(pool.try_spawn(|| 1 + 1).unwrap().join().unwrap(), 2);
    // A tiny one is rounded up to the minimum, and still runs.
    let pool = Pool::builder().workers(1).stack_size(1).build().unwrap();
    assert_eq!(pool.spawn(|| 3).join().unwrap(), 3);
    pool.shutdown();
}

#[test]
fn try_spawn_starts_green_threads_from_os_and_green_threads() {
    let pool = Pool::new(2).unwrap();
    let outer = pool
        .try_spawn(|| {
            let inner = green::try_spawn(|| "inner").unwrap();
            inner.join().unwrap()
        })
        .unwrap();
    assert_eq!(outer.join().unwrap(), "inner");
    assert_eq!(green::try_spawn(|| 5).unwrap().join().unwrap(), 5);
    pool.shutdown();
}
