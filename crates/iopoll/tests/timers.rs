//! The runtime's timers and its embedded mode.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use iopoll::Runtime;

#[test]
fn timers_never_fire_early() {
    let rt = Runtime::spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    let mut offsets = Vec::new();
    for i in 0..200u64 {
        // 1 ms to 1 s, spread unevenly, with sub-millisecond parts.
        let off = Duration::from_micros(1000 + (i * i * 25_013) % 999_000);
        offsets.push(off);
        let at = start + off;
        let tx = tx.clone();
        rt.timer_at(at, move || tx.send((at, Instant::now())).unwrap());
    }
    drop(tx);
    let mut n = 0;
    for (at, fired) in rx.iter() {
        assert!(fired >= at, "timer for {at:?} fired {:?} early", at - fired);
        n += 1;
    }
    assert_eq!(n, offsets.len());
}

#[test]
fn cancel_and_reset() {
    let rt = Runtime::new().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let far = Instant::now() + Duration::from_secs(3600);
    let cancelled = rt.timer_at(far, move || {
        h.fetch_add(100, Ordering::SeqCst);
    });
    let h = hits.clone();
    let moved = rt.timer_at(far, move || {
        h.fetch_add(1, Ordering::SeqCst);
    });
    assert!(cancelled.cancel());
    assert!(!cancelled.cancel(), "second cancel reports nothing to cancel");
    assert!(!cancelled.reset(Instant::now()), "a cancelled timer cannot be reset");
    let soon = Instant::now() + Duration::from_millis(20);
    assert!(moved.reset(soon));
    assert_eq!(rt.next_timer().map(|t| t >= soon), Some(true));
    while hits.load(Ordering::SeqCst) == 0 {
        rt.turn(Some(Duration::from_secs(5))).unwrap();
    }
    assert!(Instant::now() >= soon);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert!(!moved.cancel(), "fired timers cannot be cancelled");
    assert!(!moved.is_armed());
    assert_eq!(rt.timer_count(), 0);
}

#[test]
fn dropping_the_handle_leaves_the_timer_armed() {
    let rt = Runtime::spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    drop(rt.timer_at(Instant::now() + Duration::from_millis(5), move || tx.send(()).unwrap()));
    rx.recv_timeout(Duration::from_secs(5)).expect("timer fired without its handle");
}

#[test]
fn a_hundred_thousand_armed_timers() {
    let rt = Runtime::new().unwrap();
    let fired = Arc::new(AtomicUsize::new(0));
    let base = Instant::now();
    let mut handles = Vec::with_capacity(100_000);
    for i in 0..100_000u64 {
        let f = fired.clone();
        // Spread from 1 ms to about a day, so every wheel level holds some.
        let off = Duration::from_micros(1000 + (i * 7_919_773) % 86_400_000_000);
        handles.push(rt.timer_at(base + off, move || {
            f.fetch_add(1, Ordering::Relaxed);
        }));
    }
    assert_eq!(rt.timer_count(), 100_000);
    // Cancel every other one, then move the rest to the near future.
    let mut cancelled = 0;
    for (i, h) in handles.iter().enumerate() {
        if i % 2 == 0 {
            assert!(h.cancel());
            cancelled += 1;
        }
    }
    assert_eq!(rt.timer_count(), 100_000 - cancelled);
    let soon = Instant::now() + Duration::from_millis(30);
    for h in handles.iter().skip(1).step_by(2) {
        assert!(h.reset(soon));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while fired.load(Ordering::Relaxed) < 50_000 && Instant::now() < deadline {
        rt.turn(Some(Duration::from_millis(100))).unwrap();
    }
    assert!(Instant::now() >= soon);
    assert_eq!(fired.load(Ordering::Relaxed), 50_000);
    assert_eq!(rt.timer_count(), 0);
}

#[test]
fn far_deadlines_are_kept() {
    let rt = Runtime::new().unwrap();
    let in_three_days = Instant::now() + Duration::from_secs(3 * 86_400);
    let t = rt.timer_at(in_three_days, || panic!("fired days early"));
    let next = rt.next_timer().expect("armed");
    assert!(next <= in_three_days);
    assert_eq!(rt.turn(Some(Duration::ZERO)).unwrap(), 0);
    assert!(t.is_armed());
    assert!(t.cancel());
}

#[test]
fn turn_respects_its_timeout_and_wake() {
    let rt = Runtime::new().unwrap();
    let start = Instant::now();
    assert_eq!(rt.turn(Some(Duration::from_millis(20))).unwrap(), 0);
    assert!(start.elapsed() >= Duration::from_millis(20));

    // wake() from another thread ends an unbounded turn.
    let rt2 = rt.clone();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        tx.send(()).unwrap();
        rt2.turn(None).unwrap()
    });
    rx.recv().unwrap();
    rt.wake();
    assert_eq!(t.join().unwrap(), 0);
}

#[test]
fn background_runtimes_refuse_outside_turns() {
    let rt = Runtime::spawn().unwrap();
    assert!(rt.turn(Some(Duration::ZERO)).is_err());
}

/// The reactor fd nests in an outer `poll(2)`: an earlier timer armed while
/// the outer loop sleeps makes it readable, and the loop then turns.
#[test]
fn reactor_fd_wakes_an_outer_poll() {
    let rt = Runtime::new().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = order.clone();
    rt.timer_at(Instant::now() + Duration::from_secs(3600), move || o.lock().unwrap().push("late"));
    // The outer loop asks how long it may sleep...
    let sleep = rt.next_timer().unwrap().saturating_duration_since(Instant::now());
    assert!(sleep > Duration::from_secs(3000));
    // ...and while it sleeps another thread arms an earlier timer.
    let rt2 = rt.clone();
    let o = order.clone();
    let armer = std::thread::spawn(move || {
        rt2.timer_at(Instant::now() + Duration::from_millis(10), move || o.lock().unwrap().push("soon"));
    });
    let mut pfd = libc::pollfd { fd: rt.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let start = Instant::now();
    // SAFETY: one valid pollfd on the stack, bounded timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 10_000) };
    assert_eq!(n, 1, "the reactor fd became readable");
    assert!(start.elapsed() < Duration::from_secs(5));
    armer.join().unwrap();
    while order.lock().unwrap().is_empty() {
        let wait = rt.next_timer().map(|t| t.saturating_duration_since(Instant::now()));
        rt.turn(wait).unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec!["soon"]);
}

/// Callbacks run outside the driver's locks, the poller's included: one
/// that turns the same embedded runtime (as a callback that runs a task
/// inline might) neither deadlocks nor loses the timer it arms.
#[test]
fn a_timer_callback_may_turn_the_runtime() {
    let rt = Runtime::new().unwrap();
    let (tx, rx) = mpsc::channel();
    let inner = rt.clone();
    rt.timer_at(Instant::now(), move || {
        let tx2 = tx.clone();
        inner.timer_at(Instant::now(), move || tx2.send("inner").unwrap());
        // Re-entrant turn: the inner timer fires here, or in a later turn.
        inner.turn(Some(Duration::ZERO)).unwrap();
        tx.send("outer").unwrap();
    });
    let turner = std::thread::spawn(move || {
        let until = Instant::now() + testkit::PATIENCE;
        while rt.timer_count() > 0 && Instant::now() < until {
            rt.turn(Some(Duration::from_millis(10))).unwrap();
        }
    });
    let mut got = vec![rx.recv_timeout(testkit::PATIENCE).expect("a callback ran")];
    got.push(rx.recv_timeout(testkit::PATIENCE).expect("both callbacks ran"));
    got.sort_unstable();
    assert_eq!(got, ["inner", "outer"]);
    turner.join().unwrap();
}
