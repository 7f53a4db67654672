//! A worker: one OS thread that runs the green threads placed on it, and
//! drives its own reactor when none is runnable.
//!
//! Each worker owns an embedded `iopoll::Runtime`. A green thread that
//! waits for a socket has the socket watched by that runtime, and its
//! deadline armed in that runtime's wheel; when the worker runs out of
//! runnable green threads it sleeps in the runtime's `turn`, which returns
//! with the green threads that became ready already queued. Readiness thus
//! reaches a green thread on the thread that runs it, with no hand-off
//! through a poller thread (`docs/green.md` has the measurements).
//!
//! # Locks
//! `queue` guards the run queue; `stacks` the cache of finished green
//! threads' stacks. Each is held only to push or pop, never across running
//! a green thread or calling a `Waker`, and they never nest.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst, fence};
use std::sync::{Arc, OnceLock};
use std::task::Waker;
use std::thread;
use std::time::{Duration, Instant};

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use iopoll::Runtime;
use iopoll::park::{self, Scheduler};
use parking_lot::Mutex;

use crate::pool::PoolShared;
use crate::task::{AfterRun, Body, Co, Task};

/// Green threads run back to back before the worker looks at its reactor.
const BATCH: usize = 61;
/// Finished green threads' stacks kept for reuse, per worker.
const STACK_CACHE: usize = 64;
/// How long an idle worker polls its reactor before sleeping in it: about
/// one cross-core wake-up on this project's machines.
const SPIN: Duration = Duration::from_micros(50);

/// Workers polling their reactors right now, across all pools.
static SPINNING: AtomicUsize = AtomicUsize::new(0);

/// Whether idle workers may spin at all, and on how many cores.
fn spin_cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| {
        if std::env::var_os("RESEAU_SPIN").is_some_and(|v| v == "0") {
            return 0;
        }
        thread::available_parallelism().map_or(1, |n| n.get())
    })
}

pub(crate) struct Worker {
    pub(crate) index: usize,
    rt: Runtime,
    queue: Mutex<VecDeque<Arc<Task>>>,
    /// The worker is about to sleep, or sleeps, in its reactor: a green
    /// thread queued from another thread must wake it.
    sleeping: AtomicBool,
    stacks: Mutex<Vec<DefaultStack>>,
    stack_size: usize,
    /// Spins in a row that found nothing; after `n` of them the worker
    /// skips the next 2^n - 1 chances to spin (touched by its thread only).
    spin_failures: AtomicUsize,
    spin_skip: AtomicUsize,
    pub(crate) pool: std::sync::Weak<PoolShared>,
}

thread_local! {
    /// The worker this thread is (null on other threads).
    static WORKER: Cell<*const Worker> = const { Cell::new(std::ptr::null()) };
    /// The green thread running now, and its coroutine's yielder.
    static CURRENT: Cell<Option<(*const Task, *const Yielder<(), ()>)>> = const { Cell::new(None) };
}

/// The green thread running on this OS thread, if any.
pub(crate) fn current_task() -> Option<Arc<Task>> {
    let (task, _) = CURRENT.try_with(Cell::get).ok().flatten()?;
    // SAFETY: `CURRENT` holds a task only while the worker runs it, and the
    // worker keeps its `Arc` alive for that whole time; bumping the count
    // of a live `Arc` from its raw pointer is sound.
    unsafe {
        Arc::increment_strong_count(task);
        Some(Arc::from_raw(task))
    }
}

impl Worker {
    pub(crate) fn new(index: usize, stack_size: usize, pool: std::sync::Weak<PoolShared>) -> io::Result<Worker> {
        Ok(Worker {
            index,
            rt: Runtime::new()?,
            queue: Mutex::new(VecDeque::new()),
            sleeping: AtomicBool::new(false),
            stacks: Mutex::new(Vec::new()),
            stack_size,
            spin_failures: AtomicUsize::new(0),
            spin_skip: AtomicUsize::new(0),
            pool,
        })
    }

    fn is_current(&self) -> bool {
        WORKER.try_with(|w| std::ptr::eq(w.get(), self)).unwrap_or(false)
    }

    /// Queue a runnable green thread; wake the worker if it sleeps.
    pub(crate) fn schedule(&self, task: Arc<Task>) {
        self.queue.lock().push_back(task);
        // Pairs with the fence after the worker sets `sleeping`, before its
        // last look at the queue: one of the two sees the other.
        fence(SeqCst);
        if !self.is_current() && self.sleeping.load(SeqCst) {
            self.rt.wake();
        }
    }

    /// Wake the worker so it re-checks whether it should exit.
    pub(crate) fn nudge(&self) {
        self.rt.wake();
    }

    /// The worker thread's loop: run what is runnable, drive the reactor,
    /// sleep in it when idle; return once the pool is closed and empty.
    pub(crate) fn run(self: &Arc<Worker>, pool: &PoolShared) {
        WORKER.with(|w| w.set(Arc::as_ptr(self)));
        let scheduler: Arc<dyn Scheduler> = self.clone();
        loop {
            let mut ran = 0;
            while ran < BATCH {
                let Some(task) = self.queue.lock().pop_front() else { break };
                self.resume(&task, &scheduler);
                ran += 1;
            }
            if ran == BATCH {
                // Busy: collect readiness without sleeping, then go on.
                self.turn(Some(Duration::ZERO));
                continue;
            }
            if pool.finished() {
                break;
            }
            if self.spin() {
                continue;
            }
            self.sleeping.store(true, SeqCst);
            fence(SeqCst);
            if self.queue.lock().is_empty() && !pool.finished() {
                self.turn(None);
            }
            self.sleeping.store(false, SeqCst);
        }
        WORKER.with(|w| w.set(std::ptr::null()));
    }

    /// With nothing to run, poll the reactor for a short while before
    /// sleeping in it: a reply due in microseconds then costs no sleep and
    /// no cross-core wake-up. Only while no more workers spin than there
    /// are cores, and backing off after spins that found nothing. True if
    /// a green thread became runnable.
    fn spin(&self) -> bool {
        let skip = self.spin_skip.load(Relaxed);
        if skip > 0 {
            self.spin_skip.store(skip - 1, Relaxed);
            return false;
        }
        if SPINNING.fetch_add(1, SeqCst) >= spin_cores() {
            SPINNING.fetch_sub(1, SeqCst);
            return false;
        }
        let start = Instant::now();
        let found = loop {
            self.turn(Some(Duration::ZERO));
            if !self.queue.lock().is_empty() {
                break true;
            }
            if start.elapsed() >= SPIN {
                break false;
            }
            // A breath between polls: each is a syscall.
            for _ in 0..64 {
                std::hint::spin_loop();
            }
        };
        SPINNING.fetch_sub(1, SeqCst);
        if found {
            self.spin_failures.store(0, Relaxed);
        } else {
            let f = (self.spin_failures.load(Relaxed) + 1).min(8);
            self.spin_failures.store(f, Relaxed);
            self.spin_skip.store((1 << f) - 1, Relaxed);
        }
        found
    }

    fn turn(&self, timeout: Option<Duration>) {
        if let Err(e) = self.rt.turn(timeout) {
            // Only a broken poller fails a turn; its waiters are failed by
            // the runtime's shutdown, and the worker keeps running the rest.
            if !iopoll::ReactorShutdown::is(&e) {
                eprintln!("reseau-green: worker {} reactor failed: {e}", self.index);
                let _ = self.rt.shutdown();
            }
            std::thread::yield_now();
        }
    }

    /// Run `task` until it suspends or finishes.
    fn resume(&self, task: &Arc<Task>, scheduler: &Arc<dyn Scheduler>) {
        task.start_running();
        let (co, yielder): (*mut Co, _) = {
            // SAFETY: this is the owning worker's thread, and this reference
            // ends with the block, before the coroutine runs.
            let local = unsafe { task.local() };
            if local.co.is_none() {
                let Some(body) = local.body.take() else { return };
                match self.stack() {
                    Ok(stack) => local.co = Some(coroutine(stack, body)),
                    Err(e) => {
                        // No stack for it: its joiner learns why; nothing runs.
                        body.fail(e);
                        self.retire(task);
                        return;
                    }
                }
            }
            (local.co.as_mut().expect("a coroutine to resume"), local.yielder)
        };
        CURRENT.with(|c| c.set(Some((Arc::as_ptr(task), yielder))));
        let entered = park::enter(scheduler.clone());
        // SAFETY: `co` points into the task's local part, which only this
        // thread touches and which nothing else borrows while it runs.
        let result = unsafe { (*co).resume(()) };
        drop(entered);
        let learned = CURRENT.with(|c| c.replace(None)).map(|(_, y)| y);
        // SAFETY: as above; the coroutine is not running any more.
        let local = unsafe { task.local() };
        match result {
            CoroutineResult::Yield(()) => {
                if let Some(y) = learned {
                    local.yielder = y;
                }
                if let AfterRun::Requeue = task.suspended() {
                    self.queue.lock().push_back(task.clone());
                }
            }
            CoroutineResult::Return(()) => {
                if let Some(co) = local.co.take() {
                    let mut stacks = self.stacks.lock();
                    if stacks.len() < STACK_CACHE {
                        stacks.push(co.into_stack());
                    }
                }
                self.retire(task);
            }
        }
    }

    /// A green thread is over: count it out of its pool.
    fn retire(&self, task: &Task) {
        task.finished();
        if let Some(pool) = self.pool.upgrade() {
            pool.task_done();
        }
    }

    /// A stack for a new green thread: a finished one's, or a new mapping.
    fn stack(&self) -> io::Result<DefaultStack> {
        let cached = self.stacks.lock().pop();
        match cached {
            Some(s) => Ok(s),
            None => DefaultStack::new(self.stack_size),
        }
    }

    fn suspend_current(&self) {
        let Some((_, yielder)) = CURRENT.try_with(Cell::get).ok().flatten() else { return };
        if yielder.is_null() {
            return;
        }
        // Saved before switching away: the worker restores `CURRENT` for the
        // next green thread it runs, and we need ours back afterwards.
        let mine = CURRENT.with(Cell::get);
        // SAFETY: the yielder lives on this coroutine's stack, which exists
        // until the coroutine returns; we are running on it right now.
        unsafe { (*yielder).suspend(()) };
        CURRENT.with(|c| c.set(mine));
    }
}

/// The coroutine of a green thread that runs `body`.
fn coroutine(stack: DefaultStack, body: Body) -> Co {
    Coroutine::with_stack(stack, move |yielder: &Yielder<(), ()>, ()| {
        // The worker learns the yielder from here after the first suspension.
        CURRENT.with(|c| {
            if let Some((task, _)) = c.get() {
                c.set(Some((task, yielder as *const _)));
            }
        });
        // The body catches its own panics (see `pool`); this is a second
        // net, so a panic never unwinds into the worker.
        let _ = catch_unwind(AssertUnwindSafe(|| body.run()));
    })
}

impl Scheduler for Worker {
    fn waker(&self) -> Waker {
        match current_task() {
            Some(task) => Waker::from(task),
            None => Waker::noop().clone(),
        }
    }

    fn suspend(&self) {
        self.suspend_current();
    }

    fn runtime(&self) -> &Runtime {
        &self.rt
    }
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker").field("index", &self.index).finish_non_exhaustive()
    }
}
