//! Go's `net/timeout_test.go` scenarios for TCP, and deadlines moved while a
//! call is parked. Every expiry must be `TimedOut` carrying
//! `DeadlineExceeded`; no wait may end before its deadline; a close is
//! reported as `Closed`, never as a timeout.

mod support;

use std::io::{self, Read, Write};
use std::sync::Arc;
#[cfg(target_os = "linux")]
use std::sync::mpsc::RecvTimeoutError;
use std::thread;
use std::time::{Duration, Instant};

use support::*;
use tcp::Conn;
use testkit::{PATIENCE, small_rcvbuf, small_sndbuf, within};
#[cfg(target_os = "linux")]
use testkit::{spawn_parked, spawn_tracked, until_parked};

const MS: Duration = Duration::from_millis(1);

/// An instant well in the past (Go's `-5s`).
fn past() -> Instant {
    Instant::now().checked_sub(Duration::from_secs(5)).unwrap_or_else(Instant::now)
}

fn read1(c: &Conn) -> io::Result<usize> {
    let mut b = [0u8; 1];
    (&*c).read(&mut b)
}

/// Go's TestReadTimeout: a past deadline fails reads even with data ready;
/// a near one lets reads drain the data, then fails them, stickily.
#[test]
fn read_timeout() {
    const MSG: &[u8] = b"READ TIMEOUT TEST";
    let (mut c, mut s) = pair();
    s.write_all(MSG).unwrap();
    raw_wait_readable(&c);

    c.set_read_deadline(Some(past())).unwrap();
    let mut b = [0u8; 1];
    for _ in 0..2 {
        assert_timeout_result(c.read(&mut b));
    }

    let deadline = Instant::now() + 50 * MS;
    c.set_read_deadline(Some(deadline)).unwrap();
    let mut got = Vec::new();
    let err = loop {
        match c.read(&mut b) {
            Ok(0) => panic!("unexpected EOF"),
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(e) => break e,
        }
    };
    let at = Instant::now();
    assert_timeout(&err);
    assert!(at >= deadline, "read timed out {:?} before its deadline", deadline - at);
    assert!(at - deadline < PATIENCE, "read timed out {:?} late", at - deadline);
    // The past-deadline reads consumed nothing.
    assert!(MSG.starts_with(&got), "read {got:?}");
    // Sticky: later reads fail at once until the deadline is reset.
    for _ in 0..2 {
        assert_timeout_result(c.read(&mut b));
    }
    // Nothing was lost to the timeouts.
    c.set_read_deadline(None).unwrap();
    let mut rest = vec![0u8; MSG.len() - got.len()];
    c.read_exact(&mut rest).unwrap();
    got.extend_from_slice(&rest);
    assert_eq!(got, MSG);
}

#[cfg(target_os = "linux")]
/// Go's TestReadTimeoutMustNotReturn: the last setter wins and directions
/// are independent, so a read with a cleared read deadline stays blocked;
/// a close ends it with `Closed`, not a timeout.
#[test]
fn read_timeout_must_not_return() {
    let (c, _s) = pair();
    let c = Arc::new(c);
    c.set_deadline(Some(past())).unwrap();
    c.set_write_deadline(Some(past())).unwrap();
    c.set_read_deadline(None).unwrap();
    let c2 = c.clone();
    let (tid, rx) = spawn_tracked(move || read1(&c2));
    match rx.recv_timeout(100 * MS) {
        Err(RecvTimeoutError::Timeout) => {}
        other => panic!("read returned within 100 ms: {other:?}"),
    }
    until_parked(tid);
    // The write deadline is still in the past.
    assert_timeout_result((&*c).write(b"x"));
    close_soon(&c);
    let (r, _) = rx.recv_timeout(PATIENCE).expect("close did not wake the reader");
    assert_closed_result(r);
}

/// Go's TestWriteTimeout: a past deadline fails writes though the buffer
/// has room; a near one lets writes go until the buffer fills, then fails
/// them, stickily.
#[test]
fn write_timeout() {
    let l = listener();
    small_rcvbuf(&l); // inherited by the accepted socket
    let (mut c, _s) = pair_on(&l);
    small_sndbuf(&c);
    const MSG: &[u8] = b"TIMEOUT TRANSMITTER";

    c.set_write_deadline(Some(past())).unwrap();
    for _ in 0..2 {
        assert!(poll_writable_now(&c), "the send buffer has room");
        assert_timeout_result(c.write(MSG));
    }

    let deadline = Instant::now() + 10 * MS;
    c.set_write_deadline(Some(deadline)).unwrap();
    let err = loop {
        match c.write(&[0u8; 1024]) {
            Ok(n) => assert!(n > 0, "a write returned Ok(0)"),
            Err(e) => break e,
        }
    };
    let at = Instant::now();
    assert_timeout(&err);
    assert!(at >= deadline, "write timed out {:?} before its deadline", deadline - at);
    assert!(at - deadline < PATIENCE);
    for _ in 0..2 {
        assert_timeout_result(c.write(MSG));
    }
    // The read direction is untouched.
    let d = Instant::now() + 5 * MS;
    c.set_read_deadline(Some(d)).unwrap();
    assert_timeout_result(c.read(&mut [0u8; 1]));
    assert!(Instant::now() >= d);
}

#[cfg(target_os = "linux")]
/// Go's TestWriteTimeoutMustNotReturn: with the write deadline cleared
/// last, a writer on a full buffer stays blocked; close ends it with
/// `Closed`.
#[test]
fn write_timeout_must_not_return() {
    let l = listener();
    small_rcvbuf(&l);
    let (c, _s) = pair_on(&l);
    small_sndbuf(&c);
    let c = Arc::new(c);
    c.set_deadline(Some(past())).unwrap();
    c.set_read_deadline(Some(past())).unwrap();
    c.set_write_deadline(None).unwrap();
    let c2 = c.clone();
    let (tid, rx) = spawn_tracked(move || {
        let buf = [0u8; 1024];
        loop {
            if let Err(e) = (&*c2).write(&buf) {
                return e;
            }
        }
    });
    match rx.recv_timeout(100 * MS) {
        Err(RecvTimeoutError::Timeout) => {}
        other => panic!("write returned an error within 100 ms: {other:?}"),
    }
    until_parked(tid); // the buffer filled up and the writer waits
    assert_timeout_result(read1(&c));
    close_soon(&c);
    let (e, _) = rx.recv_timeout(PATIENCE).expect("close did not wake the writer");
    assert_closed(&e);
}

/// Go's nextTimeout: retry with a longer timeout when the machine was too
/// slow to measure this one, up to 4 s.
fn next_timeout(actual: Duration) -> Duration {
    const MAX: Duration = Duration::from_secs(4);
    assert!(actual < MAX, "timeouts never came within 10% of the deadline, even at {actual:?}");
    (actual * 5 / 4).min(MAX)
}

/// Go's TestReadTimeoutFluctuation: an idle read fails with a timeout,
/// never before the deadline, and close to it.
#[test]
fn read_timeout_fluctuation() {
    let (c, _s) = pair();
    let mut d = MS;
    loop {
        let t0 = Instant::now();
        let deadline = t0 + d;
        c.set_read_deadline(Some(deadline)).unwrap();
        let r = read1(&c);
        let t1 = Instant::now();
        assert_timeout_result(r);
        assert!(t1 >= deadline, "read returned {:?} before the {d:?} deadline", deadline - t1);
        let actual = t1 - t0;
        if actual > d * 11 / 10 {
            d = next_timeout(actual);
            continue;
        }
        break;
    }
}

/// Go's TestWriteTimeoutFluctuation: writes to a peer that never reads end
/// in a timeout, never before the deadline.
#[test]
fn write_timeout_fluctuation() {
    let l = listener();
    small_rcvbuf(&l);
    let (c, _s) = pair_on(&l);
    small_sndbuf(&c);
    let mut d = MS;
    loop {
        let t0 = Instant::now();
        let deadline = t0 + d;
        c.set_write_deadline(Some(deadline)).unwrap();
        let mut n = 0;
        let err = loop {
            match (&c).write(b"TIMEOUT TRANSMITTER") {
                Ok(k) => n += k,
                Err(e) => break e,
            }
        };
        let t1 = Instant::now();
        assert_timeout(&err);
        assert!(t1 >= deadline, "write returned {:?} before the {d:?} deadline", deadline - t1);
        let actual = t1 - t0;
        if actual > d * 11 / 10 {
            if n > 0 {
                // Still filling the buffer when the deadline came: the
                // writes themselves took the time. Go doubles the timeout.
                assert!(d < Duration::from_secs(4), "writes kept overrunning the deadline");
                d *= 2;
            } else {
                d = next_timeout(actual);
            }
            continue;
        }
        break;
    }
}

/// Go's TestVariousDeadlines (the streaming-server version): copying a
/// nonstop stream to a sink ends with a timeout, not before the deadline
/// and within seconds of it.
#[test]
fn various_deadlines() {
    let us = Duration::from_micros;
    let timeouts = [us(1), us(5), us(50), us(250), MS, 5 * MS, 25 * MS, 100 * MS, 250 * MS, Duration::from_secs(1)];
    let l = listener();
    for t in timeouts {
        let (c, s) = pair_on(&l);
        let server = thread::spawn(move || {
            let buf = [b'a'; 16 * 1024];
            loop {
                if let Err(e) = (&s).write(&buf) {
                    return e;
                }
            }
        });
        let (r, deadline, at) = within(PATIENCE, "copy to sink", move || {
            let deadline = Instant::now() + t;
            c.set_deadline(Some(deadline)).unwrap();
            let r = io::copy(&mut &c, &mut io::sink());
            (r, deadline, Instant::now())
            // `c` drops here: the server's writes fail.
        });
        match r {
            Ok(n) => panic!("{t:?}: copy ended without an error after {n} bytes"),
            Err(e) => assert_timeout(&e),
        }
        assert!(at >= deadline, "{t:?}: timed out {:?} early", deadline - at);
        assert!(at - deadline < Duration::from_secs(5), "{t:?}: timed out {:?} late", at - deadline);
        let e = server.join().unwrap();
        assert!(
            matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset),
            "{t:?}: server write ended with {e:?}"
        );
    }
}

/// Go's TestReadWriteProlongedTimeout: deadlines pushed an hour ahead
/// before every read and write on one side never disturb the traffic.
#[test]
fn read_write_prolonged_timeout() {
    let (mut c, s) = pair();
    let s = Arc::new(s);
    let hour = Duration::from_secs(3600);
    let sr = s.clone();
    let reader = thread::spawn(move || {
        let mut total = 0;
        let mut b = [0u8; 1];
        loop {
            sr.set_read_deadline(Some(Instant::now() + hour)).unwrap();
            match (&*sr).read(&mut b) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n,
                Err(e) => return Err(e),
            }
        }
    });
    let sw = s.clone();
    let writer = thread::spawn(move || {
        loop {
            sw.set_write_deadline(Some(Instant::now() + hour)).unwrap();
            if let Err(e) = (&*sw).write(&[7]) {
                return e;
            }
        }
    });
    let mut b = [0u8; 1];
    for _ in 0..1000 {
        c.write_all(&[1]).unwrap();
        c.read_exact(&mut b).unwrap();
        assert_eq!(b, [7]);
    }
    c.close_write().unwrap();
    let got = within(PATIENCE, "server reader", move || reader.join().unwrap()).expect("server read failed");
    assert_eq!(got, 1000);
    drop(c);
    let e = within(PATIENCE, "server writer", move || writer.join().unwrap());
    assert!(
        matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset),
        "server write ended with {e:?}"
    );
}

#[cfg(target_os = "linux")]
/// Go's TestReadWriteDeadlineRace: deadlines set 2 µs ahead over and over
/// while a reader and a writer run. Nothing hangs; every failure is a
/// timeout.
#[test]
fn read_write_deadline_race() {
    const N: usize = 1000;
    let l = listener(); // never accepts: the peer stays silent
    let c = tcp::connect_addr(l.local_addr().unwrap()).unwrap();
    within(Duration::from_secs(30), "deadline race", move || {
        let c = &c;
        thread::scope(|sc| {
            sc.spawn(|| {
                let tick = Duration::from_micros(2);
                for _ in 0..N {
                    c.set_read_deadline(Some(Instant::now() + tick)).unwrap();
                    c.set_write_deadline(Some(Instant::now() + tick)).unwrap();
                    let t = Instant::now();
                    while t.elapsed() < tick {
                        thread::yield_now();
                    }
                }
            });
            sc.spawn(|| {
                for _ in 0..N {
                    match read1(c) {
                        Ok(n) => panic!("read {n} bytes from a silent peer"),
                        Err(e) => assert_timeout(&e),
                    }
                }
            });
            sc.spawn(|| {
                for _ in 0..N {
                    match (&*c).write(&[0]) {
                        Ok(n) => assert_eq!(n, 1),
                        Err(e) => assert_timeout(&e),
                    }
                }
            });
        });
    });
}

#[cfg(target_os = "linux")]
/// Go's TestConcurrentSetDeadline (#35367): 8 threads move the deadlines of
/// 10 connections steadily earlier, 100 times, while a reader is parked on
/// each. No deadlock, no spurious timeout, and the final move to now wakes
/// every reader.
#[test]
fn concurrent_set_deadline() {
    let l = listener();
    let conns: Vec<Arc<Conn>> =
        (0..10).map(|_| Arc::new(tcp::connect_addr(l.local_addr().unwrap()).unwrap())).collect();
    let readers: Vec<_> = conns
        .iter()
        .map(|c| {
            let c = c.clone();
            spawn_tracked(move || read1(&c))
        })
        .collect();
    for (tid, _) in &readers {
        until_parked(*tid);
    }
    let now = Instant::now();
    let conns_ref = &conns;
    thread::scope(|sc| {
        for i in 0..8u64 {
            sc.spawn(move || {
                for j in (1..=100u64).rev() {
                    for (k, c) in conns_ref.iter().enumerate() {
                        let skew = Duration::from_secs(i * j * k as u64);
                        c.set_read_deadline(Some(now + Duration::from_secs(2 * 3600) + skew)).unwrap();
                        c.set_write_deadline(Some(now + Duration::from_secs(3600) + skew)).unwrap();
                    }
                }
            });
        }
    });
    for (_, rx) in &readers {
        if let Ok((r, _)) = rx.try_recv() {
            panic!("a reader returned while its deadline was hours away: {r:?}");
        }
    }
    let fire = Instant::now();
    for c in &conns {
        c.set_read_deadline(Some(fire)).unwrap();
    }
    for (_, rx) in readers {
        let (r, at) = rx.recv_timeout(PATIENCE).expect("a parked reader missed the deadline moved to now");
        assert_timeout_result(r);
        assert!(at >= fire, "a reader timed out before the final deadline");
    }
}

/// Go's TestAcceptTimeout: a past deadline fails accept even with a
/// connection queued; a near one with no client times out, stickily.
#[test]
fn accept_timeout() {
    let l = listener();
    let client = tcp::connect_addr(l.local_addr().unwrap()).unwrap();
    raw_wait_readable(&l); // the connection is queued
    l.set_deadline(Some(past())).unwrap();
    for _ in 0..2 {
        assert_timeout_result(l.accept());
    }
    l.set_deadline(None).unwrap();
    let s = l.accept().expect("the queued connection survives the timeouts");
    assert_eq!(s.remote_addr().unwrap(), client.local_addr().unwrap());

    let deadline = Instant::now() + 10 * MS;
    l.set_deadline(Some(deadline)).unwrap();
    let r = l.accept();
    let at = Instant::now();
    assert_timeout_result(r);
    assert!(at >= deadline, "accept timed out {:?} early", deadline - at);
    assert!(at - deadline < PATIENCE);
    assert_timeout_result(l.accept());
}

/// Go's TestAcceptTimeoutMustReturn.
#[test]
fn accept_timeout_must_return() {
    let l = listener();
    l.set_deadline(None).unwrap();
    let deadline = Instant::now() + 10 * MS;
    l.set_deadline(Some(deadline)).unwrap();
    let (r, at) = within(PATIENCE, "accept with a 10 ms deadline", move || {
        let r = l.accept().map(|c| c.remote_addr());
        (r, Instant::now())
    });
    assert_timeout_result(r);
    assert!(at >= deadline, "accept timed out {:?} early", deadline - at);
}

#[cfg(target_os = "linux")]
/// Go's TestAcceptTimeoutMustNotReturn: a deadline set to the past and then
/// cleared leaves accept blocked; close ends it with `Closed`.
#[test]
fn accept_timeout_must_not_return() {
    let l = Arc::new(listener());
    l.set_deadline(Some(past())).unwrap();
    l.set_deadline(None).unwrap();
    let l2 = l.clone();
    let (tid, rx) = spawn_tracked(move || l2.accept().map(|c| c.remote_addr()));
    match rx.recv_timeout(100 * MS) {
        Err(RecvTimeoutError::Timeout) => {}
        other => panic!("accept returned within 100 ms: {other:?}"),
    }
    until_parked(tid);
    close_listener_soon(&l);
    let (r, _) = rx.recv_timeout(PATIENCE).expect("close did not wake accept");
    assert_closed_result(r);
    assert!(!l.is_open());
}

#[cfg(target_os = "linux")]
/// A parked reader whose deadline is moved earlier wakes at the new
/// deadline (or at once, for one in the past).
#[test]
fn deadline_moved_earlier_while_parked() {
    let (c, _s) = pair();
    let c = Arc::new(c);
    let hour = Duration::from_secs(3600);

    c.set_read_deadline(Some(Instant::now() + hour)).unwrap();
    let c2 = c.clone();
    let rx = spawn_parked(move || read1(&c2));
    let earlier = Instant::now() + 20 * MS;
    c.set_read_deadline(Some(earlier)).unwrap();
    let (r, at) = rx.recv_timeout(PATIENCE).expect("not woken at the earlier deadline");
    assert_timeout_result(r);
    assert!(at >= earlier, "woke {:?} before the new deadline", earlier - at);

    c.set_read_deadline(Some(Instant::now() + hour)).unwrap();
    let c2 = c.clone();
    let rx = spawn_parked(move || read1(&c2));
    c.set_read_deadline(Some(past())).unwrap();
    let (r, _) = rx.recv_timeout(PATIENCE).expect("not woken by a deadline moved to the past");
    assert_timeout_result(r);

    // The same for a parked writer, through set_deadline.
    fill_send_buffer(&c);
    c.set_deadline(Some(Instant::now() + hour)).unwrap();
    let c2 = c.clone();
    let rx = spawn_parked(move || (&*c2).write(&[1u8; 4096]));
    let earlier = Instant::now() + 20 * MS;
    c.set_deadline(Some(earlier)).unwrap();
    let (r, at) = rx.recv_timeout(PATIENCE).expect("writer not woken at the earlier deadline");
    assert_timeout_result(r);
    assert!(at >= earlier);
}

#[cfg(target_os = "linux")]
/// Tries `attempt` with a growing first deadline until the test thread
/// managed to act before that deadline passed (a loaded machine may not).
fn with_growing_deadline(mut attempt: impl FnMut(Duration) -> bool) {
    for first in [100 * MS, 400 * MS, 1600 * MS] {
        if attempt(first) {
            return;
        }
    }
    panic!("never managed to move the deadline before it passed");
}

#[cfg(target_os = "linux")]
/// A parked reader whose deadline is pushed later keeps waiting until the
/// new deadline.
#[test]
fn deadline_moved_later_while_parked() {
    with_growing_deadline(|first| {
        let (c, _s) = pair();
        let c = Arc::new(c);
        let d1 = Instant::now() + first;
        c.set_read_deadline(Some(d1)).unwrap();
        let c2 = c.clone();
        let rx = spawn_parked(move || read1(&c2));
        let d2 = d1 + 200 * MS;
        c.set_read_deadline(Some(d2)).unwrap();
        if Instant::now() >= d1 {
            return false;
        }
        let (r, at) = rx.recv_timeout(PATIENCE).expect("never timed out");
        assert_timeout_result(r);
        assert!(at >= d2, "returned {:?} before the extended deadline", d2 - at);
        true
    });
}

#[cfg(target_os = "linux")]
/// A parked reader whose deadline is cleared waits on past the old
/// deadline, for data.
#[test]
fn deadline_cleared_while_parked() {
    with_growing_deadline(|first| {
        let (c, mut s) = pair();
        let c = Arc::new(c);
        let d1 = Instant::now() + first;
        c.set_read_deadline(Some(d1)).unwrap();
        let c2 = c.clone();
        let rx = spawn_parked(move || {
            let mut b = [0u8; 1];
            (&*c2).read(&mut b).map(|n| (n, b[0]))
        });
        c.set_read_deadline(None).unwrap();
        if Instant::now() >= d1 {
            return false;
        }
        let wait = (d1 + 100 * MS).saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            other => panic!("returned though its deadline was cleared: {other:?}"),
        }
        s.write_all(b"z").unwrap();
        let (r, _) = rx.recv_timeout(PATIENCE).expect("not woken by data");
        assert_eq!(r.unwrap(), (1, b'z'));
        true
    });
}

/// A read that timed out leaves the connection usable: reset the deadline
/// and the next read returns data, including data that was already waiting
/// when the timeout hit. The same holds for writes.
#[test]
fn timeouts_are_retryable() {
    let (mut c, mut s) = pair();
    let mut b = [0u8; 5];

    let d = Instant::now() + 20 * MS;
    c.set_read_deadline(Some(d)).unwrap();
    assert_timeout_result(c.read(&mut b));
    assert!(Instant::now() >= d);
    assert_timeout_result(c.read(&mut b)); // sticky until reset
    c.set_read_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    s.write_all(b"after").unwrap();
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"after");

    s.write_all(b"kept!").unwrap();
    raw_wait_readable(&c);
    c.set_read_deadline(Some(past())).unwrap();
    assert_timeout_result(c.read(&mut b));
    c.set_read_deadline(None).unwrap();
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"kept!");

    c.set_write_deadline(Some(past())).unwrap();
    assert_timeout_result(c.write(b"retry"));
    c.set_write_deadline(None).unwrap();
    c.write_all(b"retry").unwrap();
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"retry");
}
