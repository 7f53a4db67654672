//! Adaptive spinning before a blocking wait.
//!
//! Parking costs a context switch on each side, about 25 µs when the waker
//! runs on another core of this project's machines. If the reply is due
//! sooner than that, polling the socket for a few microseconds is far
//! cheaper, but only when a core is idle to spin on: a spinner that shares
//! a core with its peer delays the very reply it waits for. So a thread
//! spins only while no more threads are waiting (spinning or parked) than
//! there are cores, and each direction backs off exponentially after spins
//! that found nothing, so connections whose peers are slow stop trying.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How long a spin may last: about one cross-core wake-up.
const BUDGET: Duration = Duration::from_micros(20);
/// At most this many waits are skipped after spins keep failing.
const MAX_SKIP: u32 = 256;

/// Threads inside a `PollFd` wait right now, spinning or parked.
static WAITING: AtomicUsize = AtomicUsize::new(0);

fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Counts the calling thread as waiting for as long as it lives.
pub(crate) struct Waiting(());

impl Waiting {
    /// Enter the waiting count; also returns whether spinning is allowed:
    /// every waiter, this one included, could have a core of its own.
    pub(crate) fn enter() -> (Waiting, bool) {
        let now = WAITING.fetch_add(1, Relaxed) + 1;
        (Waiting(()), now <= cores() && cores() > 1)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Relaxed);
    }
}

/// One direction's memory of how spinning went.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    /// Waits left to skip before spinning again.
    skip: AtomicU32,
    /// Consecutive failed spins.
    failures: AtomicU32,
}

impl Backoff {
    /// Whether this wait may spin (consumes one skip if not).
    pub(crate) fn may_spin(&self) -> bool {
        let skip = self.skip.load(Relaxed);
        if skip == 0 {
            return true;
        }
        self.skip.store(skip - 1, Relaxed);
        false
    }

    pub(crate) fn record(&self, found: bool) {
        if found {
            self.failures.store(0, Relaxed);
            self.skip.store(0, Relaxed);
        } else {
            let f = self.failures.load(Relaxed).saturating_add(1).min(8);
            self.failures.store(f, Relaxed);
            self.skip.store(((1u32 << f) - 1).min(MAX_SKIP), Relaxed);
        }
    }
}

/// Poll `ready` until it says yes or the budget is spent.
pub(crate) fn spin(mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if ready() {
            return true;
        }
        if start.elapsed() >= BUDGET {
            return false;
        }
        for _ in 0..32 {
            std::hint::spin_loop();
        }
    }
}
