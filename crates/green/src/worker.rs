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
//! The worker's thread alone keeps its [`Home`]: the table of its
//! unfinished green threads (which owns them, whoever else holds a
//! `Waker`), the parked ones in the order they parked (so it can compact
//! the stacks of those parked longer than the pool's threshold), and the
//! spare stacks of finished ones: kept hot for new green threads, and given
//! back together once unused for that same threshold (or when too many
//! stacks are hot), so a burst of short green threads costs no memory
//! calls beyond its first.
//!
//! Runnable green threads wait in a [`RunQueue`], which keeps a bounded
//! set of recently run ones cycling while their data is in cache. The
//! worker's thread alone touches it, so it is a thread-local without a
//! lock: nearly every wake-up comes from that thread (its reactor, its own
//! green threads). Green threads made runnable by other threads come
//! through the worker's [`Inject`] list, moved to the run queue at each
//! round; the worker holds no lock of its own.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::task::Waker;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult, Yielder};
use iopoll::Runtime;
use iopoll::park::{self, IdleSpin, Scheduler};

use crate::inject::Inject;
use crate::pool::PoolShared;
use crate::run_queue::RunQueue;
use crate::stack::{self, Stack};
use crate::task::{AfterRun, Body, Co, Task};

/// Green threads run back to back before the worker looks at its reactor.
const BATCH: usize = 61;
/// While its pool closes, how often a worker first looks for green threads
/// that can never be woken; each look that finds none doubles the wait, up
/// to `ABANDON_CHECK_MAX`.
const ABANDON_CHECK: Duration = Duration::from_millis(20);
const ABANDON_CHECK_MAX: Duration = Duration::from_secs(1);
/// How long an idle worker polls its reactor before sleeping in it (when
/// iopoll's spin policy allows): about one cross-core wake-up on this
/// project's machines.
const SPIN: Duration = Duration::from_micros(50);

pub(crate) struct Worker {
    pub(crate) index: usize,
    rt: Runtime,
    /// Green threads made runnable by other threads, and whether the worker
    /// sleeps in its reactor (then a push must wake it).
    inject: Inject<Arc<Task>>,
    /// The slot size of this pool's stacks (`stack::slot_len`).
    pub(crate) slot_len: usize,
    /// A green thread parked this long has its stack compacted.
    compact_after: Duration,
    /// Stacks of this worker compacted right now, and the bytes of their
    /// frames on the heap.
    pub(crate) compacted: AtomicUsize,
    pub(crate) compacted_bytes: AtomicUsize,
    /// The length of its home's spare list.
    pub(crate) spare_stacks: AtomicUsize,
    pub(crate) pool: std::sync::Weak<PoolShared>,
}

thread_local! {
    /// The worker this thread is (null on other threads).
    static WORKER: Cell<*const Worker> = const { Cell::new(std::ptr::null()) };
    /// The green thread running now, and its coroutine's yielder.
    static CURRENT: Cell<Option<(*const Task, *const Yielder<(), ()>)>> = const { Cell::new(None) };
    /// The stack pointer of the green thread that suspended last.
    static SUSPENDED_AT: Cell<usize> = const { Cell::new(0) };
    /// The usable range of the running green thread's stack.
    static STACK_RANGE: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// The run queue of the worker this thread is: touched by this thread
    /// alone, and never borrowed across running a green thread.
    static RUNNABLE: RefCell<RunQueue<Arc<Task>>> = const { RefCell::new(RunQueue::new()) };
}

/// Queue a green thread on this thread's worker.
fn push_runnable(task: Arc<Task>) {
    RUNNABLE.with(|q| q.borrow_mut().push(task));
}

fn pop_runnable() -> Option<Arc<Task>> {
    RUNNABLE.with(|q| q.borrow_mut().pop())
}

/// While one green thread runs, have the core load what the next ones will
/// touch first: the next one's stack top, and the one after's task. Each
/// of a thousand busy green threads runs with its lines long gone from
/// cache; loading them alongside a run hides most of that wait.
fn prefetch_next() {
    RUNNABLE.with(|q| {
        let q = q.borrow();
        if let Some(next) = q.peek(0) {
            // SAFETY: the owning worker's thread, between runs; this
            // reference ends with the block.
            let local = unsafe { next.local() };
            if local.saved == 0 && local.sp != 0 {
                stack::prefetch(local.sp);
            }
        }
        if let Some(after) = q.peek(1) {
            stack::prefetch_lines(Arc::as_ptr(after).cast::<u8>(), 3);
        }
    });
}

fn any_runnable() -> bool {
    RUNNABLE.with(|q| !q.borrow().is_empty())
}

/// The usable range (low, high) of the running green thread's stack.
pub(crate) fn current_stack() -> Option<(usize, usize)> {
    current_task()?;
    STACK_RANGE.try_with(Cell::get).ok()
}

/// What only the worker's thread touches.
struct Home {
    /// Every unfinished green thread that has run: the owners of their
    /// coroutines.
    tasks: Vec<Option<Arc<Task>>>,
    vacant: Vec<u32>,
    /// Suspensions, oldest first: (the suspension's number, the task's
    /// entry, when). Entries of green threads that ran again are stale.
    parked: VecDeque<(u64, u32, Instant)>,
    /// Suspensions so far.
    suspensions: u64,
    /// The time at the start of this round of runs: what suspensions are
    /// stamped with (a second's threshold needs no finer clock).
    now: Instant,
    /// Hot stacks of finished green threads, for new ones, oldest first,
    /// with when each was put there.
    spare: VecDeque<(Stack, Instant)>,
    /// How spinning on the reactor went (iopoll's one policy).
    spin: IdleSpin,
    /// While the pool closes: the next look for unreachable green threads,
    /// and the wait before the one after.
    abandon_at: Option<Instant>,
    abandon_every: Duration,
}

impl Home {
    fn insert(&mut self, task: Arc<Task>) -> u32 {
        match self.vacant.pop() {
            Some(i) => {
                self.tasks[i as usize] = Some(task);
                i
            }
            None => {
                self.tasks.push(Some(task));
                (self.tasks.len() - 1) as u32
            }
        }
    }

    /// Drop the parked list's stale entries (green threads that ran since),
    /// leaving at most one per green thread: with a long threshold, entries
    /// would otherwise pile up faster than they come due.
    fn prune_parked(&mut self) {
        let tasks = &self.tasks;
        self.parked.retain(|&(n, i, _)| {
            tasks.get(i as usize).and_then(Option::as_ref).is_some_and(|t| {
                // SAFETY: the worker's thread, between runs: no green thread
                // runs, and this reference ends with the closure.
                t.is_idle() && unsafe { t.local() }.parked_at == n
            })
        });
    }

    fn remove(&mut self, i: u32) {
        if let Some(t) = self.tasks.get_mut(i as usize)
            && t.take().is_some()
        {
            self.vacant.push(i);
        }
    }
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
    pub(crate) fn new(
        index: usize,
        slot_len: usize,
        compact_after: Duration,
        pool: std::sync::Weak<PoolShared>,
    ) -> io::Result<Worker> {
        Ok(Worker {
            index,
            rt: Runtime::new()?,
            inject: Inject::new(),
            slot_len,
            compact_after,
            compacted: AtomicUsize::new(0),
            compacted_bytes: AtomicUsize::new(0),
            spare_stacks: AtomicUsize::new(0),
            pool,
        })
    }

    fn is_current(&self) -> bool {
        WORKER.try_with(|w| std::ptr::eq(w.get(), self)).unwrap_or(false)
    }

    /// Queue a runnable green thread; wake the worker if it sleeps.
    pub(crate) fn schedule(&self, task: Arc<Task>) {
        if self.is_current() {
            push_runnable(task);
            return;
        }
        if self.inject.push(task) {
            self.rt.wake();
        }
    }

    /// Move the green threads queued by other threads to the run queue.
    fn take_injected(&self) {
        RUNNABLE.with(|q| {
            let mut q = q.borrow_mut();
            self.inject.take(|task| q.push(task));
        });
    }

    /// Anything to run: queued here, or by another thread.
    fn has_work(&self) -> bool {
        self.inject.is_pending() || any_runnable()
    }

    /// Wake the worker so it re-checks whether it should exit.
    pub(crate) fn nudge(&self) {
        self.rt.wake();
    }

    /// The worker thread's loop: run what is runnable, drive the reactor,
    /// sleep in it when idle; return once the pool is closed and empty.
    pub(crate) fn run(self: &Arc<Worker>, pool: &PoolShared) {
        WORKER.with(|w| w.set(Arc::as_ptr(self)));
        // Where a stack overflow's report runs.
        let _signal_stack = stack::SignalStack::ensure();
        let scheduler: Arc<dyn Scheduler> = self.clone();
        let mut home = Home {
            tasks: Vec::new(),
            vacant: Vec::new(),
            parked: VecDeque::new(),
            suspensions: 0,
            now: Instant::now(),
            spare: VecDeque::new(),
            spin: IdleSpin::new(SPIN),
            abandon_at: None,
            abandon_every: ABANDON_CHECK,
        };
        loop {
            home.now = Instant::now();
            self.take_injected();
            let mut ran = 0;
            while ran < BATCH {
                let Some(task) = pop_runnable() else { break };
                prefetch_next();
                self.resume(&task, &scheduler, &mut home);
                ran += 1;
            }
            if ran == BATCH {
                // Busy: collect readiness without sleeping, then go on.
                // Compaction waits for a round that empties the queue (each
                // costs the cores running this process a TLB flush), unless
                // too many stacks are hot.
                if stack::over_budget() {
                    self.compact_idle(&mut home, false);
                }
                self.turn(Some(Duration::ZERO));
                continue;
            }
            let due = self.compact_idle(&mut home, false);
            if pool.is_closing() {
                let now = Instant::now();
                if home.abandon_at.is_none_or(|at| at <= now) {
                    let found = self.abandon_unreachable(&mut home, pool);
                    home.abandon_every =
                        if found { ABANDON_CHECK } else { (home.abandon_every * 2).min(ABANDON_CHECK_MAX) };
                    home.abandon_at = Some(now + home.abandon_every);
                }
            }
            if pool.finished() {
                break;
            }
            if home.spin.run(|| {
                self.turn(Some(Duration::ZERO));
                self.has_work()
            }) {
                continue;
            }
            // Sleep until something is runnable, or the next compaction is
            // due; while the pool closes, look for unreachable green threads
            // now and then (the last `Waker` can drop on any thread).
            let wake_at = match (due, home.abandon_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = wake_at.map(|at| at.saturating_duration_since(Instant::now()));
            self.inject.going_to_sleep();
            if !self.has_work() && !pool.finished() {
                self.turn(timeout);
            }
            self.inject.awake();
        }
        // Only green threads that can never run again are left: leak them
        // (see `abandon_unreachable`), never unwind them.
        for task in home.tasks.drain(..).flatten() {
            forget_coroutine(&task);
        }
        stack::release(home.spare.drain(..).map(|(s, _)| s).collect());
        self.spare_stacks.store(0, Relaxed);
        WORKER.with(|w| w.set(std::ptr::null()));
    }

    /// Give back the spare stacks unused for the threshold (all of them with
    /// `all`, or while more stacks are hot than the process's budget
    /// allows), then compact the stacks of green threads parked longer than
    /// the threshold (or the oldest parked ones, while still over budget; or
    /// all of them, with `all`). Returns when the next one is due.
    fn compact_idle(&self, home: &mut Home, all: bool) -> Option<Instant> {
        let spare_due = self.release_spares(home, all);
        let parked_due = self.compact_parked(home, all);
        match (spare_due, parked_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The spares' part of [`compact_idle`](Self::compact_idle): one batch.
    fn release_spares(&self, home: &mut Home, all: bool) -> Option<Instant> {
        let all = all || stack::over_budget();
        let mut due = Vec::new();
        while let Some(&(_, since)) = home.spare.front() {
            let at = since.checked_add(self.compact_after);
            if !all && at.is_none_or(|at| at > home.now) {
                break;
            }
            due.push(home.spare.pop_front().expect("looked at").0);
        }
        if !due.is_empty() {
            stack::release(due);
            self.spare_stacks.store(home.spare.len(), Relaxed);
        }
        home.spare.front().and_then(|&(_, since)| since.checked_add(self.compact_after))
    }

    fn compact_parked(&self, home: &mut Home, all: bool) -> Option<Instant> {
        let now = home.now;
        while let Some(&(n, i, since)) = home.parked.front() {
            // `None`: a threshold too far to reach, so only the budget counts.
            let due = since.checked_add(self.compact_after);
            if due.is_none_or(|d| d > now) && !all && !stack::over_budget() {
                return due;
            }
            home.parked.pop_front();
            let Some(Some(task)) = home.tasks.get(i as usize) else { continue };
            if !task.is_idle() {
                continue;
            }
            // SAFETY: the owning worker's thread; the green thread is
            // suspended, and this reference ends with the iteration.
            let local = unsafe { task.local() };
            if local.parked_at != n {
                continue;
            }
            if let Some(stack) = &local.stack
                && stack.is_hot()
                && let Ok(saved) = stack.compact(local.sp)
            {
                local.saved = saved;
                self.compacted.fetch_add(1, Relaxed);
                self.compacted_bytes.fetch_add(saved, Relaxed);
            }
        }
        None
    }

    /// While the pool closes: green threads that are suspended with no
    /// `Waker` left anywhere can never run again. Count them out of the
    /// pool, so shutdown does not wait for them, and leak them, as Go leaks
    /// a goroutine blocked forever: their stacks are never unwound nor
    /// reused.
    /// True if it found any.
    fn abandon_unreachable(&self, home: &mut Home, pool: &PoolShared) -> bool {
        let mut found = false;
        for i in 0..home.tasks.len() {
            let unreachable = home.tasks[i].as_ref().is_some_and(|t| t.is_idle() && Arc::strong_count(t) == 1);
            if unreachable {
                let task = home.tasks[i].take().expect("checked above");
                home.vacant.push(i as u32);
                // SAFETY: this worker's thread; the green thread is suspended.
                let saved = std::mem::take(&mut unsafe { task.local() }.saved);
                if saved > 0 {
                    self.compacted.fetch_sub(1, Relaxed);
                    self.compacted_bytes.fetch_sub(saved, Relaxed);
                }
                forget_coroutine(&task);
                task.finished();
                pool.task_done();
                found = true;
            }
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
    fn resume(&self, task: &Arc<Task>, scheduler: &Arc<dyn Scheduler>, home: &mut Home) {
        task.start_running();
        let (co, yielder): (*mut Co, _) = {
            // SAFETY: this is the owning worker's thread, and this reference
            // ends with the block, before the coroutine runs.
            let local = unsafe { task.local() };
            if local.co.is_none() {
                let Some(body) = local.body.take() else { return };
                let stack = match self.first_stack(local.stack.take(), home) {
                    Ok(stack) => stack,
                    Err(e) => {
                        // No memory for it: its joiner learns why; nothing runs.
                        body.fail(e);
                        self.retire(task);
                        return;
                    }
                };
                // SAFETY: the coroutine is kept beside its stack in `local`,
                // declared before it so it drops first, and both are
                // forgotten together if it can never end.
                local.co = Some(coroutine(unsafe { stack.frames() }, body));
                local.stack = Some(stack);
                local.home = home.insert(task.clone());
            } else if local.saved > 0
                && let Some(stack) = &local.stack
            {
                if let Err(e) = stack.restore() {
                    // No memory to bring its frames back: try again later.
                    eprintln!("reseau-green: worker {} cannot restore a parked stack: {e}", self.index);
                    task.suspended();
                    push_runnable(task.clone());
                    return;
                }
                // Restored here or, earlier, by another thread's fault.
                self.compacted.fetch_sub(1, Relaxed);
                self.compacted_bytes.fetch_sub(std::mem::take(&mut local.saved), Relaxed);
            }
            if let Some(stack) = &local.stack {
                STACK_RANGE.with(|r| r.set(stack.range()));
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
                local.sp = SUSPENDED_AT.with(Cell::get);
                home.suspensions += 1;
                local.parked_at = home.suspensions;
                match task.suspended() {
                    AfterRun::Suspended => {
                        home.parked.push_back((home.suspensions, local.home, home.now));
                        if home.parked.len() > 2 * home.tasks.len() + 1024 {
                            home.prune_parked();
                        }
                    }
                    AfterRun::Requeue => push_runnable(task.clone()),
                }
            }
            CoroutineResult::Return(()) => {
                // Done: dropping the coroutine unwinds nothing.
                drop(local.co.take());
                if let Some(stack) = local.stack.take() {
                    home.spare.push_back((stack, home.now));
                    self.spare_stacks.store(home.spare.len(), Relaxed);
                }
                home.remove(local.home);
                self.retire(task);
            }
        }
    }

    /// The stack a green thread first runs on: a spare hot one (the slot
    /// reserved at spawn goes back), or the reserved one made accessible.
    /// Short of kernel memory areas, compact every parked stack and try once
    /// more.
    fn first_stack(&self, reserved: Option<Stack>, home: &mut Home) -> io::Result<Stack> {
        // The newest spare: its pages are the likeliest to be in cache.
        if let Some((spare, _)) = home.spare.pop_back() {
            self.spare_stacks.store(home.spare.len(), Relaxed);
            return Ok(spare);
        }
        let stack = match reserved {
            Some(s) => s,
            None => Stack::reserve(self.slot_len)?,
        };
        if stack.commit().is_err() {
            self.compact_idle(home, true);
            stack.commit()?;
        }
        Ok(stack)
    }

    /// A green thread is over: count it out of its pool.
    fn retire(&self, task: &Task) {
        task.finished();
        if let Some(pool) = self.pool.upgrade() {
            pool.task_done();
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
        SUSPENDED_AT.with(|s| s.set(stack::marker()));
        // SAFETY: the yielder lives on this coroutine's stack, which exists
        // until the coroutine returns; we are running on it right now.
        unsafe { (*yielder).suspend(()) };
        CURRENT.with(|c| c.set(mine));
    }
}

/// Leak a green thread that can never run again: its coroutine and stack
/// are forgotten, so nothing unwinds it and its stack is never reused.
fn forget_coroutine(task: &Task) {
    // SAFETY: called on the owning worker's thread, with the green thread
    // suspended and no other reference into its local part alive.
    let local = unsafe { task.local() };
    if let Some(co) = local.co.take() {
        std::mem::forget(co);
        std::mem::forget(local.stack.take());
    }
}

/// The coroutine of a green thread that runs `body`.
fn coroutine(stack: crate::stack::Frames, body: Body) -> Co {
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
