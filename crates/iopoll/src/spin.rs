//! What a waiter does before it parks: spin, or give its core away.
//!
//! Parking costs a context switch on each side, about 25 µs when the waker
//! runs on another core of this project's machines. If the reply is due
//! sooner than that, polling the socket for a few microseconds is far
//! cheaper, but only when a core is idle to spin on: a spinner that shares
//! a core with its peer delays the very reply it waits for. So a thread
//! spins only while no more threads are waiting (spinning or parked) than
//! there are cores, and each thread backs off exponentially after spins
//! that found nothing (for reads and writes apart), so threads whose peers
//! are slow stop trying.
//!
//! With more waiters than cores the peer a thread waits for is most likely
//! runnable on a run queue right now. Then the waiter yields its core once
//! and looks again: when the peer has answered meanwhile, the sleep, the
//! wake-up and the poll set-up and tear-down are all saved (the context
//! switch happens either way). Yields that find nothing back off as spins
//! do, so a thread whose peers are idle soon stops paying for them.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::sys::{self, Interest};

/// How long a spin may last: about one cross-core wake-up.
const BUDGET: Duration = Duration::from_micros(20);
/// At most this many waits are skipped after spins keep failing.
const MAX_SKIP: u32 = 256;

/// Threads inside a `PollFd` wait right now, spinning or parked.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Cores a spinner may use: the available parallelism, or `None` (never
/// spin nor yield: park at once) when `RESEAU_SPIN=0` is set in the
/// environment.
fn cores() -> Option<usize> {
    static CORES: OnceLock<Option<usize>> = OnceLock::new();
    *CORES.get_or_init(|| {
        if std::env::var_os("RESEAU_SPIN").is_some_and(|v| v == "0") {
            return None;
        }
        Some(std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// What a waiter may try before it parks, given how crowded the cores are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Before {
    /// Every waiter, this one included, could have a core of its own.
    Spin,
    /// More waiters than cores.
    Yield,
    /// Spinning and yielding are switched off.
    Park,
}

/// Counts the calling thread as waiting for as long as it lives.
pub(crate) struct Waiting(());

impl Waiting {
    /// Enter the waiting count; also returns what to try before parking.
    pub(crate) fn enter() -> (Waiting, Before) {
        let now = WAITING.fetch_add(1, Relaxed) + 1;
        let before = match cores() {
            None => Before::Park,
            Some(n) if n > 1 && now <= n => Before::Spin,
            Some(_) => Before::Yield,
        };
        (Waiting(()), before)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Relaxed);
    }
}

/// A scheduler's spin on its own reactor when it runs out of work, under
/// the same policy as every other wait here: only while no more spin than
/// there are cores, never with `RESEAU_SPIN=0`, and backing off after
/// spins that found nothing (skipping the next 1, 3, 7 ... 255 chances).
/// reseau's green workers use it before they sleep in their reactors;
/// another green-thread runtime plugged into [`park`](crate::park) can too.
///
/// Keep one per scheduler thread: it is its memory of how spinning went.
///
/// ```
/// use std::time::Duration;
/// let spin = iopoll::park::IdleSpin::new(Duration::from_micros(20));
/// let mut polls = 0;
/// // Poll (here: count) until something is runnable or the budget is spent.
/// let found = spin.run(|| { polls += 1; polls == 3 });
/// assert!(!found || polls == 3);
/// ```
#[derive(Debug)]
pub struct IdleSpin {
    budget: Duration,
    backoff: Backoff,
}

/// Schedulers spinning right now, across the process.
static IDLE_SPINNERS: AtomicUsize = AtomicUsize::new(0);

impl IdleSpin {
    /// A spin that polls for at most `budget` each time.
    pub fn new(budget: Duration) -> IdleSpin {
        IdleSpin { budget, backoff: Backoff::default() }
    }

    /// If the policy allows a spin now, call `poll` (which polls the
    /// reactor without sleeping and says whether work turned up) until it
    /// says yes or the budget is spent. Returns whether work turned up.
    pub fn run(&self, mut poll: impl FnMut() -> bool) -> bool {
        let Some(cores) = cores() else { return false };
        if !self.backoff.may_try() {
            return false;
        }
        if IDLE_SPINNERS.fetch_add(1, Relaxed) >= cores {
            IDLE_SPINNERS.fetch_sub(1, Relaxed);
            return false;
        }
        let start = Instant::now();
        let found = loop {
            if poll() {
                break true;
            }
            if start.elapsed() >= self.budget {
                break false;
            }
            // A breath between polls: each is a syscall.
            for _ in 0..64 {
                std::hint::spin_loop();
            }
        };
        IDLE_SPINNERS.fetch_sub(1, Relaxed);
        self.backoff.paid(found);
        found
    }
}

/// The calling thread's memory of how spinning (or yielding) went: after
/// tries that did not pay, skip the next 1, 3, 7 ... 255 chances. Kept per
/// thread, since whether a core is free depends on where the thread runs,
/// and a thread serving many short connections must not relearn it for
/// each one.
#[derive(Debug, Default)]
struct Backoff {
    /// Chances left to skip before spinning again.
    skip: Cell<u32>,
    /// Consecutive spins that did not pay.
    failures: Cell<u32>,
}

impl Backoff {
    /// Whether to try this time (using up one skipped chance if not).
    fn may_try(&self) -> bool {
        let skip = self.skip.get();
        if skip > 0 {
            self.skip.set(skip - 1);
        }
        skip == 0
    }

    fn paid(&self, paid: bool) {
        if paid {
            self.failures.set(0);
            self.skip.set(0);
        } else {
            let f = (self.failures.get() + 1).min(8);
            self.failures.set(f);
            self.skip.set(((1u32 << f) - 1).min(MAX_SKIP));
        }
    }
}

thread_local! {
    /// Nonzero inside `quietly`: waits park without trying first.
    static QUIET: Cell<u32> = const { Cell::new(0) };
    /// Indexed by `Interest`: waits for reading and for writing (connects,
    /// full send buffers) learn apart, since one kind is often short and
    /// the other long on the same thread.
    static SPINS: [Backoff; 2] = Default::default();
    static YIELDS: [Backoff; 2] = Default::default();
}

/// Run `f` with spinning and yielding off for this thread's waits (see
/// `park::without_spinning`). Nests; unwinding restores the depth.
pub(crate) fn quietly<R>(f: impl FnOnce() -> R) -> R {
    struct Depth;
    impl Drop for Depth {
        fn drop(&mut self) {
            let _ = QUIET.try_with(|q| q.set(q.get().saturating_sub(1)));
        }
    }
    let _ = QUIET.try_with(|q| q.set(q.get() + 1));
    let _depth = Depth;
    f()
}

/// Spin or yield as `before` allows, each only while it has been paying on
/// this thread. Returns whether `ready` came true, so parking is not needed.
pub(crate) fn before_parking(before: Before, interest: Interest, mut ready: impl FnMut() -> bool) -> bool {
    let i = interest as usize;
    if QUIET.try_with(|q| q.get() > 0).unwrap_or(false) {
        return false;
    }
    match before {
        Before::Park => false,
        Before::Spin => {
            if !SPINS.try_with(|b| b[i].may_try()).unwrap_or(false) {
                return false;
            }
            let spun = spin(ready);
            let _ = SPINS.try_with(|b| match spun {
                Spun::Ready => {}
                Spun::Found => b[i].paid(true),
                Spun::Preempted | Spun::Nothing => b[i].paid(false),
            });
            spun.is_ready()
        }
        Before::Yield => {
            if !YIELDS.try_with(|b| b[i].may_try()).unwrap_or(false) {
                return false;
            }
            std::thread::yield_now();
            let found = ready();
            let _ = YIELDS.try_with(|b| b[i].paid(found));
            found
        }
    }
}

/// What a spin came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spun {
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
    fn is_ready(self) -> bool {
        matches!(self, Spun::Ready | Spun::Found | Spun::Preempted)
    }
}

/// A gap this long between two looks of a spin means the spinner lost its
/// core meanwhile: one look (a zero-timeout `poll`) takes about a
/// microsecond.
const LOST_CORE: Duration = Duration::from_micros(10);

/// Poll `ready` until it says yes or the budget is spent.
///
/// Whether the spinner was preempted comes from the kernel's count of the
/// thread's involuntary switches where the OS keeps one per thread (Linux,
/// FreeBSD, OpenBSD). Elsewhere (macOS) the portable check stands in: a gap
/// of at least `LOST_CORE` between two looks.
fn spin(mut ready: impl FnMut() -> bool) -> Spun {
    if ready() {
        return Spun::Ready;
    }
    let switches = sys::preemptions();
    let start = Instant::now();
    let mut last = start;
    let mut longest_gap = Duration::ZERO;
    let found = loop {
        if ready() {
            break true;
        }
        let now = Instant::now();
        longest_gap = longest_gap.max(now - last);
        last = now;
        if now - start >= BUDGET {
            break false;
        }
        for _ in 0..32 {
            std::hint::spin_loop();
        }
    };
    let preempted = match (switches, sys::preemptions()) {
        (Some(before), Some(after)) => after != before,
        _ => lost_core(longest_gap.max(last.elapsed())),
    };
    match (found, preempted) {
        (true, false) => Spun::Found,
        (true, true) => Spun::Preempted,
        (false, _) => Spun::Nothing,
    }
}

/// The portable preemption check: whether the longest gap between two
/// looks says the spinner was off its core.
fn lost_core(longest_gap: Duration) -> bool {
    longest_gap >= LOST_CORE
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run `before_parking` `times` times for `interest` with a readiness
    /// check that answers `answer`; return how often it was asked.
    fn looks(before: Before, interest: Interest, times: usize, answer: bool) -> usize {
        let looked = Cell::new(0);
        for _ in 0..times {
            let ready = before_parking(before, interest, || {
                looked.set(looked.get() + 1);
                answer
            });
            assert!(!ready || answer, "ready without readiness");
        }
        looked.get()
    }

    const READ: Interest = Interest::Readable;
    const WRITE: Interest = Interest::Writable;

    #[test]
    fn yields_that_find_nothing_back_off_exponentially() {
        // Tried, 1 skipped, tried, 3 skipped, tried, 7 skipped.
        assert_eq!(looks(Before::Yield, READ, 1 + 1 + 1 + 3 + 1 + 7, false), 3);
        // Then tried again.
        assert_eq!(looks(Before::Yield, READ, 1, false), 1);
    }

    #[test]
    fn a_yield_that_pays_keeps_yielding() {
        assert_eq!(looks(Before::Yield, READ, 50, true), 50);
        assert_eq!(looks(Before::Yield, READ, 2, false), 1, "one failure skips the next chance");
        assert_eq!(looks(Before::Yield, READ, 1, true), 1);
        assert_eq!(looks(Before::Yield, READ, 5, true), 5, "a success forgets the failures");
    }

    #[test]
    fn spinning_and_yielding_learn_separately() {
        assert_eq!(looks(Before::Yield, READ, 1, false), 1);
        // The failed yield does not make the next spin skip its chance.
        assert!(looks(Before::Spin, READ, 1, true) >= 1);
    }

    #[test]
    fn reads_and_writes_learn_apart() {
        assert_eq!(looks(Before::Yield, READ, 1, false), 1);
        // The failed read-side yield leaves writes untouched ...
        assert_eq!(looks(Before::Yield, WRITE, 1, true), 1);
        // ... and a write-side success does not undo the read-side backoff.
        assert_eq!(looks(Before::Yield, READ, 1, true), 0, "the skipped chance");
        assert_eq!(looks(Before::Yield, READ, 1, true), 1);
    }

    #[test]
    fn a_gap_of_a_lost_core_counts_as_preempted() {
        assert!(!lost_core(Duration::from_micros(1)), "a look's worth of gap");
        assert!(lost_core(LOST_CORE));
        assert!(lost_core(Duration::from_millis(4)), "a scheduler time slice");
    }

    #[test]
    fn an_idle_spin_that_finds_nothing_backs_off_like_a_wait() {
        let spin = IdleSpin::new(Duration::ZERO);
        let polls = Cell::new(0);
        let mut tried = 0;
        for _ in 0..(1 + 1 + 1 + 3 + 1) {
            let before = polls.get();
            spin.run(|| {
                polls.set(polls.get() + 1);
                false
            });
            tried += usize::from(polls.get() > before);
        }
        // With spinning allowed: tried, 1 skipped, tried, 3 skipped, tried.
        let want = if cores().is_some() { 3 } else { 0 };
        assert_eq!(tried, want);
    }

    #[test]
    fn parking_at_once_never_looks() {
        assert_eq!(looks(Before::Park, READ, 10, true), 0);
    }
}
