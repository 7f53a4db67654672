//! `park`: the one way anything in reseau waits.
//!
//! A wait has two halves: a [`Waker`] that someone else calls when the
//! waiter should look again, and a sleep that ends when that happens (or a
//! descriptor becomes ready, or a deadline passes). Who sleeps depends on
//! where the code runs:
//!
//! - **on an OS thread**, the thread sleeps in the kernel on the descriptor
//!   (if any) and on the thread's own wake-up descriptor, with the deadline
//!   as the timeout (`ppoll` and an eventfd on Linux, `poll` and a pipe on
//!   macOS and the BSDs: see `sys`). Its `Waker` writes that descriptor.
//! - **in a green thread**, only the green thread sleeps: its scheduler
//!   suspends it and runs others. The scheduler's own reactor watches the
//!   descriptor and the deadline, and its `Waker` makes the green thread
//!   runnable again.
//!
//! `PollFd` waits, the locks of [`crate::sync`] (which `tcp` and `tls` hold
//! across waits), `close` waiting for in-flight calls, resolver waits,
//! sleeps and joins all come here, so the same blocking code runs on an OS
//! thread or in a green thread and never blocks a green thread's worker.
//!
//! # Plugging in a green-thread runtime
//!
//! A runtime implements [`Scheduler`] and calls [`enter`] around each
//! resumption of one of its green threads. While the returned guard lives,
//! every wait on that OS thread suspends through the scheduler. The
//! contract:
//!
//! - [`Scheduler::suspend`] is called only from the green thread that is
//!   running; it returns once that thread's `Waker` (from
//!   [`Scheduler::waker`]) has been woken. A wake that comes *before*
//!   `suspend` makes `suspend` return at once: the wake is a token, as with
//!   [`std::thread::park`]. Returning spuriously is allowed; every caller
//!   re-checks its condition.
//! - [`Scheduler::runtime`] is an embedded [`Runtime`] that the scheduler
//!   drives itself ([`Runtime::turn`]) whenever it has nothing to run.
//!   Descriptor readiness and deadlines for its green threads are delivered
//!   through it, on the scheduler's own thread: no hand-off through another
//!   thread.
//! - The `Waker` may be called from any thread, and more than once.
//!
//! `crates/green` is reseau's own implementation; the test
//! `iopoll/tests/park.rs` plugs in a minimal one of its own.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::Runtime;
use crate::signal::Signal;
use crate::sys::{self, Woken};

pub use crate::spin::IdleSpin;
pub use crate::sys::Interest;

/// A green-thread runtime, as [`park`](self) sees it. See the module
/// documentation for the contract.
pub trait Scheduler: Send + Sync + 'static {
    /// A `Waker` that makes the green thread running now runnable again.
    fn waker(&self) -> Waker;

    /// Suspend the green thread running now until its `Waker` is woken
    /// (at once if it already was since it last ran). May return early.
    fn suspend(&self);

    /// The embedded reactor this scheduler drives when it is idle: it
    /// watches descriptors and deadlines for the waits of its green threads.
    fn runtime(&self) -> &Runtime;
}

thread_local! {
    static SCHEDULER: RefCell<Option<Arc<dyn Scheduler>>> = const { RefCell::new(None) };
}

/// Run the rest of this OS thread's code, until the guard drops, as a
/// green thread of `scheduler`: every wait suspends through it.
///
/// A scheduler calls this each time it resumes one of its green threads
/// (and drops the guard when the green thread suspends or ends). Guards
/// nest; dropping one restores what was there before.
pub fn enter(scheduler: Arc<dyn Scheduler>) -> Entered {
    let previous = SCHEDULER.with(|s| s.replace(Some(scheduler)));
    Entered { previous }
}

/// Returned by [`enter`]; leaving green context when dropped.
#[must_use = "the green context ends when the guard is dropped"]
pub struct Entered {
    previous: Option<Arc<dyn Scheduler>>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // The slot is gone only while the thread is exiting: nothing to restore.
        let _ = SCHEDULER.try_with(|s| s.replace(previous));
    }
}

impl fmt::Debug for Entered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entered").finish_non_exhaustive()
    }
}

/// Whether the calling code runs in a green thread (inside [`enter`]).
pub fn in_green_thread() -> bool {
    SCHEDULER.try_with(|s| s.borrow().is_some()).unwrap_or(false)
}

/// Run `f` with this thread's socket waits parking at once: no spinning
/// and no yielding first, however idle the cores. For waits on a peer that
/// is computing rather than sending, where a spin would only take the core
/// that peer needs: a TLS handshake's reads wait out the other side's key
/// exchange and signature, hundreds of microseconds, so `tls` runs them so.
///
/// ```
/// let answer = iopoll::park::without_spinning(|| 6 * 7);
/// assert_eq!(answer, 42);
/// ```
pub fn without_spinning<R>(f: impl FnOnce() -> R) -> R {
    crate::spin::quietly(f)
}

/// The `Waker` of whoever is calling: the running green thread, or this
/// OS thread. Waking it makes the caller's current or next [`park`] return.
///
/// An OS thread that cannot get its wake-up descriptor (the process is out
/// of descriptors) still gets a `Waker`, one that does nothing: its waits
/// then look again every few milliseconds instead.
pub fn waker() -> io::Result<Waker> {
    Ok(Waiter::current()?.waker())
}

/// Wait until the caller's [`waker`] is woken or `deadline` passes. May
/// return early (a stale wake, a signal): callers re-check what they wait
/// for, in a loop.
///
/// ```
/// use std::time::{Duration, Instant};
/// // A sleep, on an OS thread or in a green thread alike.
/// let until = Instant::now() + Duration::from_millis(5);
/// while Instant::now() < until {
///     iopoll::park::park(Some(until))?;
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn park(deadline: Option<Instant>) -> io::Result<()> {
    Waiter::current()?.wait(None, deadline).map(drop)
}

/// How long a waiter without a wake-up descriptor sleeps before it looks
/// again: the delay with which it sees a close or a deadline moved earlier.
const SLICE: Duration = Duration::from_millis(10);

/// The caller, as something that can sleep and be woken.
pub(crate) enum Waiter {
    Thread(Arc<Signal>),
    /// An OS thread that could not make its wake-up descriptor (the process
    /// is out of them). It waits on the socket alone, or sleeps, in slices
    /// of at most `SLICE`, and its caller re-checks between them: the wait
    /// still ends on readiness, close or deadline, a little late for the
    /// last two, and never fails for want of a descriptor.
    Polling,
    Green(Arc<dyn Scheduler>),
}

/// The scheduler of the green thread running on this OS thread, if any.
pub(crate) fn scheduler() -> Option<Arc<dyn Scheduler>> {
    SCHEDULER.try_with(|s| s.borrow().clone()).ok().flatten()
}

impl Waiter {
    pub(crate) fn current() -> io::Result<Waiter> {
        if let Some(s) = scheduler() {
            return Ok(Waiter::Green(s));
        }
        match Signal::current() {
            Ok(signal) => Ok(Waiter::Thread(signal)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM)) => {
                Ok(Waiter::Polling)
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn waker(&self) -> Waker {
        match self {
            Waiter::Thread(signal) => Waker::from(signal.clone()),
            Waiter::Polling => Waker::noop().clone(),
            Waiter::Green(s) => s.waker(),
        }
    }

    /// Sleep until `io`'s descriptor may be ready, the waker is woken, or
    /// `deadline` passes. In a green thread the caller has had `io` watched
    /// by the scheduler's reactor already (`PollFd` does), with this
    /// waiter's waker; here only the deadline is armed.
    pub(crate) fn wait(&self, io: Option<(RawFd, Interest)>, deadline: Option<Instant>) -> io::Result<Woken> {
        match self {
            Waiter::Thread(signal) => {
                let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                let woken = sys::wait(io, Some(signal.fd()), timeout)?;
                if woken == Woken::Signalled {
                    signal.clear();
                }
                Ok(woken)
            }
            Waiter::Polling => {
                let left = deadline.map_or(SLICE, |d| d.saturating_duration_since(Instant::now()));
                match sys::wait(io, None, Some(left.min(SLICE)))? {
                    // The slice ended: look again, as if signalled.
                    Woken::Elapsed => Ok(Woken::Signalled),
                    woken => Ok(woken),
                }
            }
            Waiter::Green(s) => {
                let rt = s.runtime();
                let timer = deadline.map(|at| {
                    let w = s.waker();
                    rt.timer_at(at, move || w.wake())
                });
                s.suspend();
                if let Some(t) = timer {
                    t.cancel();
                }
                Ok(if io.is_some() { Woken::Ready } else { Woken::Signalled })
            }
        }
    }
}
