//! Green threads: joins, panics, placement, sleeps, and blocking calls that
//! suspend one green thread and leave the rest of the worker running.

mod support;

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use green::Pool;
use support::{join, pair};
use tcp::{Closed, DeadlineExceeded};
use testkit::PATIENCE;

#[test]
fn join_gives_the_result_from_os_and_green_threads() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.spawn(|| 6 * 7).join().unwrap(), 42);
    let outer = pool.spawn(|| {
        assert!(green::in_green_thread());
        let inner = green::spawn(|| "from a sibling");
        inner.join().unwrap()
    });
    assert_eq!(join(outer), "from a sibling");
    assert!(!green::in_green_thread());
    pool.shutdown();
}

#[test]
fn a_panic_comes_back_as_err() {
    let pool = Pool::new(1).unwrap();
    let h = pool.spawn(|| -> u32 { panic!("boom") });
    let err = h.join().unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom"));
    // The worker survived it.
    assert_eq!(pool.spawn(|| 1).join().unwrap(), 1);
    pool.shutdown();
}

#[test]
fn is_finished_turns_true_once_done() {
    let pool = Pool::new(1).unwrap();
    let gate = Arc::new(iopoll::sync::OneShot::new());
    let g = gate.clone();
    let h = pool.spawn(move || g.take(None));
    assert!(!h.is_finished());
    gate.put(5);
    let t0 = Instant::now();
    while !h.is_finished() {
        assert!(t0.elapsed() < PATIENCE, "never finished");
        std::thread::yield_now();
    }
    assert_eq!(h.join().unwrap(), Some(5));
    pool.shutdown();
}

#[test]
fn one_worker_runs_others_while_one_is_blocked_in_a_read() {
    let pool = Pool::new(1).unwrap();
    let (idle_a, _idle_b) = pair();
    let idle_a = Arc::new(idle_a);
    let blocked = {
        let c = idle_a.clone();
        pool.spawn(move || {
            let mut buf = [0; 1];
            (&*c).read(&mut buf)
        })
    };
    // Both ends of 100 round trips run on the same single worker.
    let (client, server) = pair();
    let echo = pool.spawn(move || {
        let mut server = server;
        let mut buf = [0; 8];
        for _ in 0..100 {
            server.read_exact(&mut buf).unwrap();
            server.write_all(&buf).unwrap();
        }
    });
    let trips = pool.spawn(move || {
        let mut client = client;
        let mut buf = [0; 8];
        for i in 0..100u64 {
            client.write_all(&i.to_le_bytes()).unwrap();
            client.read_exact(&mut buf).unwrap();
            assert_eq!(u64::from_le_bytes(buf), i);
        }
        100
    });
    assert_eq!(join(trips), 100);
    join(echo);
    assert!(!blocked.is_finished(), "the idle read returned early");
    idle_a.close().unwrap();
    let err = join(blocked).unwrap_err();
    assert!(Closed::is(&err), "{err:?}");
    pool.shutdown();
}

#[test]
fn a_deadline_fires_in_a_green_thread_and_never_early() {
    let pool = Pool::new(1).unwrap();
    let (a, _b) = pair();
    let h = pool.spawn(move || {
        let wait = Duration::from_millis(50);
        let start = Instant::now();
        a.set_read_deadline(Some(start + wait)).unwrap();
        let err = (&a).read(&mut [0; 1]).unwrap_err();
        (err, start.elapsed() >= wait)
    });
    let (err, not_early) = join(h);
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(DeadlineExceeded::is(&err));
    assert!(not_early, "the deadline fired early");
    pool.shutdown();
}

/// A green read's deadline timer is kept across waits and fires at the
/// deadline it was armed for; one pushed later meanwhile must still end the
/// read, at the new deadline, never at the old one.
#[test]
fn a_deadline_pushed_later_during_a_green_read_fires_at_the_new_one() {
    let pool = Pool::new(1).unwrap();
    let (a, _b) = pair();
    let a = Arc::new(a);
    let start = Instant::now();
    let (first, later) = (Duration::from_millis(30), Duration::from_millis(200));
    a.set_read_deadline(Some(start + first)).unwrap();
    let c = a.clone();
    // One worker runs its green threads in turn: the read is blocked, its
    // timer armed for `first`, before the mover runs.
    let reader = pool.spawn(move || ((&*c).read(&mut [0; 1]), start.elapsed()));
    let c = a.clone();
    let mover = pool.spawn(move || c.set_read_deadline(Some(start + later)).unwrap());
    join(mover);
    let (result, took) = join(reader);
    let err = result.unwrap_err();
    assert!(DeadlineExceeded::is(&err), "{err:?}");
    assert!(took >= later, "the read ended at the old deadline, after {took:?}");
    pool.shutdown();
}

/// A server pushes its idle deadline forward before each read; the timer
/// armed for an earlier deadline fires meanwhile, and the read must go on
/// waiting for the data, not fail.
#[test]
fn a_green_read_whose_deadline_moved_later_keeps_waiting_for_data() {
    let pool = Pool::new(1).unwrap();
    let (a, b) = pair();
    let a = Arc::new(a);
    let start = Instant::now();
    a.set_read_deadline(Some(start + Duration::from_millis(30))).unwrap();
    let c = a.clone();
    let reader = pool.spawn(move || {
        let mut buf = [0; 5];
        (&*c).read_exact(&mut buf).map(|()| buf)
    });
    let c = a.clone();
    let writer = pool.spawn(move || {
        c.set_read_deadline(Some(Instant::now() + PATIENCE)).unwrap();
        // Past the first deadline: its timer has fired by now.
        green::sleep_until(start + Duration::from_millis(150));
        (&b).write_all(b"hello").unwrap();
    });
    join(writer);
    assert_eq!(&join(reader).unwrap(), b"hello");
    pool.shutdown();
}

#[test]
fn moving_a_deadline_earlier_wakes_a_blocked_green_read() {
    let pool = Pool::new(1).unwrap();
    let (a, _b) = pair();
    let a = Arc::new(a);
    let c = a.clone();
    let h = pool.spawn(move || (&*c).read(&mut [0; 1]));
    // Whether the read is already blocked or not yet started, the outcome is
    // the same: a deadline in the past fails it.
    a.set_read_deadline(Some(Instant::now())).unwrap();
    let err = join(h).unwrap_err();
    assert!(DeadlineExceeded::is(&err), "{err:?}");
    pool.shutdown();
}

#[test]
fn moving_a_write_deadline_from_another_green_thread_wakes_a_blocked_write() {
    let pool = Pool::new(1).unwrap();
    let (a, _b) = pair();
    testkit::small_sndbuf(&a);
    let a = Arc::new(a);
    let c = a.clone();
    let writer = pool.spawn(move || {
        let chunk = vec![7u8; 1 << 20];
        loop {
            if let Err(e) = (&*c).write(&chunk) {
                return e;
            }
        }
    });
    let c = a.clone();
    let mover = pool.spawn(move || {
        green::sleep(Duration::from_millis(20));
        c.set_write_deadline(Some(Instant::now())).unwrap();
    });
    join(mover);
    let err = join(writer);
    assert!(DeadlineExceeded::is(&err), "{err:?}");
    pool.shutdown();
}

#[test]
fn close_from_a_green_thread_wakes_a_blocked_green_read() {
    let pool = Pool::new(1).unwrap();
    let (a, _b) = pair();
    let a = Arc::new(a);
    let c = a.clone();
    let reader = pool.spawn(move || (&*c).read(&mut [0; 1]));
    let closer = pool.spawn(move || {
        green::yield_now();
        a.close()
    });
    join(closer).unwrap();
    let err = join(reader).unwrap_err();
    assert!(Closed::is(&err), "{err:?}");
    pool.shutdown();
}

#[test]
fn connect_by_name_in_a_green_thread() {
    let pool = Pool::new(1).unwrap();
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut c = l.accept().unwrap();
        c.write_all(b"hi").unwrap();
    });
    let h = pool.spawn(move || {
        let mut c = tcp::connect(&format!("localhost:{port}")).unwrap();
        let mut buf = [0; 2];
        c.read_exact(&mut buf).unwrap();
        buf
    });
    assert_eq!(&join(h), b"hi");
    server.join().unwrap();
    pool.shutdown();
}

#[test]
fn a_green_thread_never_leaves_its_worker() {
    let pool = Pool::new(2).unwrap();
    let (client, server) = pair();
    let echo = pool.spawn(move || {
        let mut server = server;
        let mut buf = [0; 1];
        while let Ok(1) = server.read(&mut buf) {
            server.write_all(&buf).unwrap();
        }
    });
    let h = pool.spawn(move || {
        let mut client = client;
        let tid = std::thread::current().id();
        let mut moved = 0;
        for _ in 0..500 {
            client.write_all(b"x").unwrap(); // 1 000 blocking calls in all
            client.read_exact(&mut [0; 1]).unwrap();
            moved += usize::from(std::thread::current().id() != tid);
        }
        moved
    });
    assert_eq!(join(h), 0);
    join(echo);
    pool.shutdown();
}

#[test]
fn sleep_suspends_only_the_sleeper_and_never_wakes_early() {
    let pool = Pool::new(1).unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let t = ticks.clone();
    let sleeper = pool.spawn(move || {
        let start = Instant::now();
        green::sleep(Duration::from_millis(30));
        (start.elapsed() >= Duration::from_millis(30), t.load(SeqCst))
    });
    let t = ticks.clone();
    let counter = pool.spawn(move || {
        for _ in 0..1000 {
            t.fetch_add(1, SeqCst);
            green::yield_now();
        }
    });
    join(counter);
    let (not_early, seen) = join(sleeper);
    assert!(not_early, "woke early");
    assert!(seen > 0, "the sleeper blocked the worker");
    pool.shutdown();
}

#[test]
fn spawn_blocking_runs_off_the_worker() {
    let pool = Pool::new(1).unwrap();
    let h = pool.spawn(|| {
        let worker = std::thread::current().id();
        let ran_on = green::spawn_blocking(|| std::thread::current().id());
        (worker, ran_on)
    });
    let (worker, ran_on) = join(h);
    assert_ne!(worker, ran_on);
    // A panic in the blocking part comes back to the green thread's joiner.
    let h = pool.spawn(|| green::spawn_blocking(|| -> u8 { panic!("blocking boom") }));
    assert!(h.join().is_err());
    pool.shutdown();
}

#[test]
fn connections_move_between_green_and_os_threads() {
    let pool = Pool::new(1).unwrap();
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    // Accepted in a green thread, read on this OS thread.
    let accepted = pool.spawn(move || l.accept().unwrap());
    let mut c = tcp::connect_addr(addr).unwrap();
    let mut s = join(accepted);
    c.write_all(b"os").unwrap();
    let mut buf = [0; 2];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"os");
    // Dialed on this OS thread, read in a green thread.
    let h = pool.spawn(move || {
        let mut buf = [0; 5];
        c.read_exact(&mut buf).unwrap();
        buf
    });
    s.write_all(b"green").unwrap();
    assert_eq!(&join(h), b"green");
    pool.shutdown();
}

#[test]
fn shutdown_waits_for_every_green_thread() {
    let pool = Pool::builder().workers(2).name("shutdown-test").build().unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        let d = done.clone();
        pool.spawn(move || {
            green::sleep(Duration::from_millis(5));
            // Spawned during shutdown's wait: counted too.
            let d2 = d.clone();
            green::spawn(move || d2.fetch_add(1, SeqCst));
            d.fetch_add(1, SeqCst);
        });
    }
    pool.shutdown();
    assert_eq!(done.load(SeqCst), 100);
}

#[test]
fn workers_are_named() {
    let pool = Pool::builder().workers(1).name("named-pool").build().unwrap();
    let name = pool.spawn(|| std::thread::current().name().map(String::from)).join().unwrap();
    assert_eq!(name.as_deref(), Some("named-pool-0"));
    pool.shutdown();
}
