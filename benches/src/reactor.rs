//! The reactor alone: timer operations and the cost of a park → wake.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use iopoll::{PollFd, Runtime};

use crate::harness::{Bench, Better, Mode};

/// Arm + cancel pairs per second on one thread, with the wheel holding a
/// standing population of timers as a busy server's would.
pub fn timers(b: &mut Bench) {
    if !b.wants("timers") {
        return;
    }
    let pairs = if b.mode == Mode::Full { 5_000_000 } else { 2_000_000 };
    let rt = Runtime::new().expect("runtime");
    let base = Instant::now();
    let standing: Vec<_> =
        (0..10_000u64).map(|i| rt.timer_at(base + Duration::from_millis(1000 + i * 37), || {})).collect();
    b.solo("timer arm+cancel", "ops/s", Some((10e6, Better::Higher)), || {
        let start = Instant::now();
        for i in 0..pairs {
            let t = rt.timer_at(start + Duration::from_millis(5 + (i & 1023)), || {});
            t.cancel();
        }
        pairs as f64 / start.elapsed().as_secs_f64()
    });
    drop(standing);
}

/// One-way wake latency, as half a ping-pong over a socketpair: a thread
/// parked in `PollFd::wait_readable` against std's blocking read, and the
/// `Waker` path through the reactor thread.
pub fn park_wake(b: &mut Bench) {
    if !b.wants("park-wake") {
        return;
    }
    let rounds = if b.mode == Mode::Full { 50_000 } else { 20_000 };
    b.compare(
        "park->wake (blocking waiter)",
        "us",
        "std blocking",
        Some((1.10, Better::Lower)),
        || ping_pong_us(rounds, Waiter::Direct),
        || ping_pong_us(rounds, Waiter::Std),
    );
    b.compare(
        "park->wake (Waker via reactor)",
        "us",
        "std blocking",
        None,
        || ping_pong_us(rounds, Waiter::Reactor),
        || ping_pong_us(rounds, Waiter::Std),
    );
}

#[derive(Clone, Copy)]
enum Waiter {
    Std,
    Direct,
    Reactor,
}

fn ping_pong_us(rounds: usize, how: Waiter) -> f64 {
    let (a, b) = UnixStream::pair().expect("socketpair");
    let echo = thread::spawn(move || bounce(b, rounds, how, false));
    let elapsed = bounce(a, rounds, how, true);
    echo.join().expect("echo thread");
    elapsed.as_secs_f64() * 1e6 / rounds as f64 / 2.0
}

/// Send first (`lead`) or echo, `rounds` one-byte messages.
fn bounce(mut s: UnixStream, rounds: usize, how: Waiter, lead: bool) -> Duration {
    let rt = match how {
        Waiter::Reactor => Some(Runtime::global()),
        _ => None,
    };
    if !matches!(how, Waiter::Std) {
        s.set_nonblocking(true).expect("nonblocking");
    }
    let pfd = PollFd::new(&rt.clone().unwrap_or_else(Runtime::global), s.as_raw_fd()).expect("pollfd");
    let mut byte = [0u8; 1];
    let start = Instant::now();
    for _ in 0..rounds {
        if lead {
            s.write_all(&byte).expect("write");
        }
        loop {
            match s.read(&mut byte) {
                Ok(1) => break,
                Ok(_) => panic!("peer closed"),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => match how {
                    Waiter::Direct => pfd.wait_readable().expect("wait"),
                    Waiter::Reactor => block_on_ready(&pfd),
                    Waiter::Std => unreachable!("blocking socket"),
                },
                Err(e) => panic!("read: {e}"),
            }
        }
        if !lead {
            s.write_all(&byte).expect("write");
        }
    }
    start.elapsed()
}

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// The smallest executor: poll, park until woken, poll again.
fn block_on_ready(pfd: &PollFd) {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match pfd.poll_read_ready(&mut cx) {
            Poll::Ready(r) => return r.expect("ready"),
            Poll::Pending => thread::park(),
        }
    }
}
