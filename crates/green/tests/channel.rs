//! `iopoll::sync::channel` in green threads: a parked `send` or `recv`
//! suspends only its green thread, so both ends can share one worker; many
//! parked receivers are all released; green and OS threads mix on either end.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use green::Pool;
use iopoll::sync::{RecvError, RecvTimeoutError, SendError, channel};
use support::join;
use testkit::soon;

/// Two green threads bounce a counter through two channels `rounds` times.
fn ping_pong(pool: &Pool, bound: usize, rounds: u32) {
    let (ping_tx, ping_rx) = channel::<u32>(bound);
    let (pong_tx, pong_rx) = channel::<u32>(bound);
    let ponger = pool.spawn(move || {
        let mut answered = 0;
        while let Ok(n) = ping_rx.recv() {
            pong_tx.send(n + 1).unwrap();
            answered += 1;
        }
        answered
    });
    let pinger = pool.spawn(move || {
        let mut n = 0;
        for _ in 0..rounds {
            ping_tx.send(n).unwrap();
            n = pong_rx.recv().unwrap();
        }
        // Dropping `ping_tx` closes the ponger's channel.
        n
    });
    assert_eq!(join(pinger), rounds);
    assert_eq!(join(ponger), rounds);
}

#[test]
fn green_threads_ping_pong_on_one_worker() {
    // One worker: every wait must suspend the green thread, not block the
    // worker the other end needs.
    let pool = Pool::new(1).unwrap();
    ping_pong(&pool, 0, 10_000);
    ping_pong(&pool, 1, 10_000);
    pool.shutdown();
}

#[test]
fn green_threads_ping_pong_across_workers() {
    let pool = Pool::new(2).unwrap();
    for bound in [0, 1, 16] {
        ping_pong(&pool, bound, 10_000);
    }
    pool.shutdown();
}

const PARKED: usize = 10_000;

/// `PARKED` green threads on one worker, each parked in `recv` on one
/// channel; returns their handles once every one has said it is about to
/// wait. Each runs to its `recv` without yielding after it says so.
fn park_receivers(pool: &Pool) -> (iopoll::sync::Sender<usize>, Vec<green::JoinHandle<Result<usize, RecvError>>>) {
    let (tx, rx) = channel::<usize>(0);
    let (ready_tx, ready_rx) = channel::<()>(PARKED);
    let handles = (0..PARKED)
        .map(|_| {
            let rx = rx.clone();
            let ready = ready_tx.clone();
            pool.spawn(move || {
                ready.send(()).unwrap();
                rx.recv()
            })
        })
        .collect();
    for _ in 0..PARKED {
        ready_rx.recv_deadline(soon()).expect("a green thread never started");
    }
    (tx, handles)
}

#[test]
fn ten_thousand_green_threads_parked_in_recv_each_get_one_value() {
    let pool = Pool::new(1).unwrap();
    let (tx, handles) = park_receivers(&pool);
    // A rendezvous send returns only once a parked green thread has the value.
    for v in 0..PARKED {
        tx.send(v).unwrap();
    }
    let mut seen = HashSet::new();
    for h in handles {
        let v = join(h).expect("every receiver gets a value before the close");
        assert!(seen.insert(v), "{v} received twice");
    }
    assert_eq!(seen.len(), PARKED);
    pool.shutdown();
}

#[test]
fn ten_thousand_green_threads_parked_in_recv_are_all_released_by_a_close() {
    let pool = Pool::new(1).unwrap();
    let (tx, handles) = park_receivers(&pool);
    tx.close();
    for h in handles {
        assert_eq!(join(h), Err(RecvError));
    }
    pool.shutdown();
}

#[test]
fn a_green_sender_and_an_os_receiver() {
    let pool = Pool::new(1).unwrap();
    for bound in [0, 4] {
        let (tx, rx) = channel(bound);
        let sender = pool.spawn(move || (0..1_000).try_for_each(|i| tx.send(i)));
        for want in 0..1_000 {
            assert_eq!(rx.recv_deadline(soon()), Ok(want));
        }
        join(sender).unwrap();
        assert_eq!(rx.recv(), Err(RecvError));
    }
    pool.shutdown();
}

#[test]
fn an_os_sender_and_a_green_receiver() {
    let pool = Pool::new(1).unwrap();
    for bound in [0, 4] {
        let (tx, rx) = channel(bound);
        let receiver = pool.spawn(move || {
            let mut got = Vec::new();
            while let Ok(v) = rx.recv() {
                got.push(v);
            }
            got
        });
        for i in 0..1_000 {
            tx.send(i).unwrap();
        }
        drop(tx);
        assert_eq!(join(receiver), (0..1_000).collect::<Vec<_>>());
    }
    pool.shutdown();
}

#[test]
fn a_close_from_an_os_thread_gives_a_parked_green_sender_its_value() {
    let pool = Pool::new(1).unwrap();
    let (tx, rx) = channel(0);
    let (ready_tx, ready_rx) = channel(1);
    let sender = {
        let tx = tx.clone();
        pool.spawn(move || {
            ready_tx.send(()).unwrap();
            // Runs on into `send` without yielding, and parks there: nobody
            // receives on `rx`. (A close that came first gives it back too.)
            tx.send(String::from("back"))
        })
    };
    ready_rx.recv().unwrap();
    tx.close();
    assert_eq!(join(sender), Err(SendError(String::from("back"))));
    drop(rx);
    pool.shutdown();
}

#[test]
fn a_green_recv_deadline_times_out_never_early_and_can_be_retried() {
    let pool = Pool::new(1).unwrap();
    let (tx, rx) = channel::<u32>(0);
    let (report_tx, report_rx) = channel(1);
    let waiter = pool.spawn(move || {
        let at = Instant::now() + Duration::from_millis(20);
        let first = rx.recv_deadline(at);
        report_tx.send((first, Instant::now() >= at)).unwrap();
        rx.recv_deadline(soon())
    });
    assert_eq!(report_rx.recv(), Ok((Err(RecvTimeoutError::Timeout), true)), "timed out, and not early");
    tx.send(6).unwrap();
    assert_eq!(join(waiter), Ok(6));
    pool.shutdown();
}
