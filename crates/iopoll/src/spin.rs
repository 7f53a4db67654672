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

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::sys;

/// How long a spin may last: about one cross-core wake-up.
const BUDGET: Duration = Duration::from_micros(20);
/// At most this many waits are skipped after spins keep failing.
const MAX_SKIP: u32 = 256;

/// Threads inside a `PollFd` wait right now, spinning or parked.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Cores a spinner may use: the available parallelism, or 1 (no spinning)
/// when `RESEAU_SPIN=0` is set in the environment.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| {
        if std::env::var_os("RESEAU_SPIN").is_some_and(|v| v == "0") {
            return 1;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
    })
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

/// The calling thread's memory of how spinning went: after spins that did
/// not pay, skip the next 1, 3, 7 ... 255 chances. Kept per thread, since
/// whether a core is free depends on where the thread runs, and a thread
/// serving many short connections must not relearn it for each one.
#[derive(Debug, Default)]
struct Backoff {
    /// Chances left to skip before spinning again.
    skip: Cell<u32>,
    /// Consecutive spins that did not pay.
    failures: Cell<u32>,
}

thread_local! {
    static BACKOFF: Backoff = Backoff::default();
}

/// Whether this wait may spin (using up one skipped chance if not).
pub(crate) fn may_spin() -> bool {
    BACKOFF
        .try_with(|b| {
            let skip = b.skip.get();
            if skip > 0 {
                b.skip.set(skip - 1);
            }
            skip == 0
        })
        .unwrap_or(false)
}

/// Learn from a spin.
pub(crate) fn record(spun: Spun) {
    let _ = BACKOFF.try_with(|b| match spun {
        Spun::Ready => {}
        Spun::Found => {
            b.failures.set(0);
            b.skip.set(0);
        }
        Spun::Preempted | Spun::Nothing => {
            let f = (b.failures.get() + 1).min(8);
            b.failures.set(f);
            b.skip.set(((1u32 << f) - 1).min(MAX_SKIP));
        }
    });
}

/// What a spin came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spun {
    /// Ready at the first look: no spinning happened, nothing learned.
    Ready,
    /// Spinning found readiness without being preempted: it paid.
    Found,
    /// Readiness came, but the spinner was preempted meanwhile: the core
    /// was shared (likely with the very peer it waited for), and parking
    /// would have served better.
    Preempted,
    /// The budget ran out.
    Nothing,
}

impl Spun {
    pub(crate) fn is_ready(self) -> bool {
        matches!(self, Spun::Ready | Spun::Found | Spun::Preempted)
    }
}

/// Poll `ready` until it says yes or the budget is spent.
pub(crate) fn spin(mut ready: impl FnMut() -> bool) -> Spun {
    if ready() {
        return Spun::Ready;
    }
    let switches = sys::involuntary_switches();
    let start = Instant::now();
    let found = loop {
        if ready() {
            break true;
        }
        if start.elapsed() >= BUDGET {
            break false;
        }
        for _ in 0..32 {
            std::hint::spin_loop();
        }
    };
    match (found, sys::involuntary_switches() == switches) {
        (true, true) => Spun::Found,
        (true, false) => Spun::Preempted,
        (false, _) => Spun::Nothing,
    }
}
