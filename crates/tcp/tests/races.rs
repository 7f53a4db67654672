//! Races: `close` against a read, a write and an accept that are blocked
//! (or about to block, or just starting), 1 000 times each; and deadlines
//! flapping between past and future while a stream goes through.
//!
//! What must hold every time: nothing hangs (every wait here is bounded),
//! the loser of the race fails with `Closed`, and a call on the closed
//! connection never lands on the descriptor number it used to have, which
//! the test hands to other sockets (with data waiting) as soon as `close`
//! returns.

mod support;

use std::io::{self, Read, Write};
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use support::*;
use tcp::Conn;
use testkit::{small_rcvbuf, small_sndbuf, stream_bytes, within};
// The close races line up with threads found parked in `/proc`.
#[cfg(target_os = "linux")]
use {
    tcp::Closed,
    testkit::race::{self, Intruders, timing},
    testkit::{Worker, bounded},
};

#[cfg(target_os = "linux")]
const ITERATIONS: usize = 1000;

#[cfg(target_os = "linux")]
/// One race between `close` and `op` (which returns the error it ended
/// with). Returns whether an intruder reused the closed descriptor number.
fn race<T: Send + Sync + 'static>(
    what: &str,
    i: usize,
    target: Arc<T>,
    fd: RawFd,
    op: impl FnOnce(&T) -> io::Error + Send + 'static,
    close: impl FnOnce(&T) + Send + 'static,
    workers: &(Worker, Worker),
) -> bool {
    let t = timing(i, 4000);
    let what = format!("{what}, iteration {i} ({t:?})");
    let (op_rx, close_rx) = race::start(t, &target, workers, op, close);
    bounded(&close_rx, &format!("{what}: close"));
    // The number is free now: take it, with data waiting, before looking at
    // how the other call ended.
    let intruders = Intruders::new();
    let reused = intruders.holds(fd);
    let err = bounded(&op_rx, &format!("{what}: the blocked call"));
    assert!(Closed::is(&err), "{what}: expected Closed, got {err:?}");
    intruders.check(&what);
    reused
}

#[cfg(target_os = "linux")]
#[track_caller]
fn assert_some_reuse(reused: usize, what: &str) {
    // Without reuse the intruder check proves nothing. The lowest free
    // number is the one just freed unless a test running alongside took it
    // first, which cannot happen in every one of 1 000 iterations.
    assert!(reused > 0, "{what}: the closed descriptor number was never reused; the test proved nothing");
    eprintln!("{what}: the freed number was reused by an intruder in {reused} of {ITERATIONS} iterations");
}

#[cfg(target_os = "linux")]
#[test]
fn close_races_a_blocked_read() {
    let workers = (Worker::new(), Worker::new());
    let l = listener();
    let mut reused = 0;
    for i in 0..ITERATIONS {
        // The accepted end is the one closed: its TIME_WAIT then holds the
        // listener's port, not an ephemeral one (thousands of those left
        // behind would starve later binds to port 0).
        let (s, c) = pair_on(&l);
        let fd = c.as_raw_fd();
        let op = |c: &Conn| {
            let mut buf = [0u8; 64];
            match (&*c).read(&mut buf) {
                Ok(n) => panic!("read {n} bytes ({:?}) from a silent peer", &buf[..n]),
                Err(e) => e,
            }
        };
        reused += race("close vs read", i, Arc::new(c), fd, op, |c| c.close().unwrap(), &workers) as usize;
        drop(s);
    }
    assert_some_reuse(reused, "close vs read");
}

#[cfg(target_os = "linux")]
#[test]
fn close_races_a_blocked_write() {
    let workers = (Worker::new(), Worker::new());
    let l = listener();
    small_rcvbuf(&l); // inherited by accepted sockets
    let mut reused = 0;
    for i in 0..ITERATIONS {
        let (c, s) = pair_on(&l);
        small_sndbuf(&c);
        fill_send_buffer(&c);
        let fd = c.as_raw_fd();
        let op = |c: &Conn| {
            let chunk = [0xa5u8; 16 * 1024];
            // A write cut short by the close reports what it wrote; the
            // error comes with the next call.
            loop {
                if let Err(e) = (&*c).write(&chunk) {
                    return e;
                }
            }
        };
        reused += race("close vs write", i, Arc::new(c), fd, op, |c| c.close().unwrap(), &workers) as usize;
        drop(s);
    }
    assert_some_reuse(reused, "close vs write");
}

#[cfg(target_os = "linux")]
#[test]
fn close_races_a_blocked_accept() {
    let workers = (Worker::new(), Worker::new());
    let mut reused = 0;
    for i in 0..ITERATIONS {
        let l = listener();
        let fd = l.as_raw_fd();
        let op = |l: &tcp::Listener| match l.accept() {
            Ok(c) => panic!("accepted {c:?} although nobody connects"),
            Err(e) => e,
        };
        reused += race("close vs accept", i, Arc::new(l), fd, op, |l| l.close().unwrap(), &workers) as usize;
    }
    assert_some_reuse(reused, "close vs accept");
}

const STREAM: usize = 1 << 20;

/// Send `STREAM` bytes of stream `seed` in chunks of changing size, then
/// end the stream.
fn send_stream(c: &Conn, seed: u64) {
    let mut buf = vec![0u8; 48 * 1024];
    let mut off = 0usize;
    let mut k = 0usize;
    while off < STREAM {
        let n = (1 + (k * 7919) % buf.len()).min(STREAM - off);
        stream_bytes(seed, off as u64, &mut buf[..n]);
        (&*c).write_all(&buf[..n]).unwrap();
        off += n;
        k += 1;
    }
    c.close_write().unwrap();
}

/// Read stream `seed` to its end, checking every byte, with `retry` telling
/// which errors to retry; returns how many reads were retried.
fn receive_stream(c: &Conn, seed: u64, retry: impl Fn(&io::Error) -> bool) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    let mut want = vec![0u8; 64 * 1024];
    let mut off = 0usize;
    let mut retried = 0;
    let mut k = 0usize;
    loop {
        let len = 1 + (k * 4099) % buf.len();
        k += 1;
        match (&*c).read(&mut buf[..len]) {
            Ok(0) => break,
            Ok(n) => {
                stream_bytes(seed, off as u64, &mut want[..n]);
                assert!(buf[..n] == want[..n], "corrupt data in bytes {off}..{}", off + n);
                off += n;
            }
            Err(e) if retry(&e) => retried += 1,
            Err(e) => panic!("read at offset {off}: {e:?}"),
        }
    }
    assert_eq!(off, STREAM, "bytes lost: the stream ended early");
    retried
}

/// Stops the flapping thread and closes both ends when dropped, so that a
/// failed assertion ends the test instead of leaving its threads blocked.
struct Teardown<'a> {
    stop: &'a AtomicBool,
    conns: [&'a Conn; 2],
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        if thread::panicking() {
            for c in self.conns {
                let _ = c.close();
            }
        }
    }
}

/// Busy-wait for `us` microseconds.
fn hold(us: u64) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_micros(us) {
        std::hint::spin_loop();
    }
}

/// Move `set`'s deadline between the past, the future and none, each
/// setting held for about 20 µs, until `stop`. Returns how many rounds it
/// made.
fn flap(stop: &AtomicBool, set: impl Fn(Option<Instant>)) -> usize {
    let mut n = 0;
    while !stop.load(SeqCst) {
        set(Some(Instant::now() - Duration::from_millis(1)));
        hold(20);
        set(Some(Instant::now() + Duration::from_secs(3600)));
        hold(20);
        set(if n % 2 == 0 { None } else { Some(Instant::now() + Duration::from_micros(50)) });
        hold(20);
        n += 1;
    }
    n
}

/// Another thread flaps the read deadline while a reader takes 1 MiB,
/// retrying each timeout: every byte arrives, in order. Repeated (on a
/// fresh connection) until at least one read did time out, so the retry
/// path is known to have run.
#[test]
fn read_deadline_flapping_loses_nothing() {
    within(Duration::from_secs(60), "read deadline flapping", || {
        let mut timeouts = 0;
        for round in 0..10u64 {
            let (c, s) = pair();
            let (c, s) = (Arc::new(c), Arc::new(s));
            let stop = AtomicBool::new(false);
            let flips = AtomicUsize::new(0);
            thread::scope(|sc| {
                sc.spawn(|| send_stream(&s, round));
                sc.spawn(|| flips.store(flap(&stop, |d| c.set_read_deadline(d).unwrap()), SeqCst));
                let _teardown = Teardown { stop: &stop, conns: [&c, &s] };
                timeouts += receive_stream(&c, round, |e| {
                    assert_timeout(e);
                    thread::yield_now(); // let the other thread move it again
                    true
                });
            });
            eprintln!("round {round}: {timeouts} timeouts in total, {} deadline flips", flips.load(SeqCst));
            if timeouts > 0 {
                return;
            }
        }
        panic!("no read ever timed out while the deadline flapped: the retry path never ran");
    });
}

/// The same for writes: a write the deadline cuts short reports what it
/// sent, so a writer that retries from there loses and repeats nothing.
#[test]
fn write_deadline_flapping_loses_nothing() {
    within(Duration::from_secs(60), "write deadline flapping", || {
        let mut timeouts = 0;
        for round in 0..10u64 {
            let l = listener();
            small_rcvbuf(&l);
            let (c, s) = pair_on(&l);
            small_sndbuf(&c);
            let (c, s) = (Arc::new(c), Arc::new(s));
            let stop = AtomicBool::new(false);
            let writer_timeouts = AtomicUsize::new(0);
            thread::scope(|sc| {
                sc.spawn(|| {
                    let _teardown = Teardown { stop: &stop, conns: [&c, &s] };
                    let mut buf = vec![0u8; 48 * 1024];
                    let mut off = 0usize;
                    let mut k = 0usize;
                    while off < STREAM {
                        let n = (1 + (k * 7919) % buf.len()).min(STREAM - off);
                        k += 1;
                        stream_bytes(round, off as u64, &mut buf[..n]);
                        match (&*c).write(&buf[..n]) {
                            Ok(w) => off += w,
                            Err(e) => {
                                assert_timeout(&e);
                                writer_timeouts.fetch_add(1, SeqCst);
                            }
                        }
                    }
                    stop.store(true, SeqCst);
                    c.set_write_deadline(None).unwrap();
                    c.close_write().unwrap();
                });
                sc.spawn(|| flap(&stop, |d| c.set_write_deadline(d).unwrap()));
                let _teardown = Teardown { stop: &stop, conns: [&c, &s] };
                receive_stream(&s, round, |_| false);
            });
            timeouts += writer_timeouts.load(SeqCst);
            eprintln!("round {round}: {timeouts} write timeouts in total");
            if timeouts > 0 {
                return;
            }
        }
        panic!("no write ever timed out while the deadline flapped: the retry path never ran");
    });
}
