//! A green thread: a coroutine on its own stack, and the state that says
//! whether it is running, queued, suspended or finished.
//!
//! The coroutine is touched only by the worker the green thread was placed
//! on; everything other threads may touch (its state word, through a
//! `Waker`) is atomic. A `Waker` keeps the `Task` alive, but it is the
//! worker's table of unfinished green threads that keeps the coroutine
//! alive: dropping the last `Waker` never drops (and so never unwinds) a
//! suspended green thread, on any thread. The wake protocol is tokio's: a wake that finds the
//! green thread suspended queues it; one that finds it running marks it
//! notified, and the worker queues it again as soon as it suspends, so no
//! wake between "I will wait" and the suspension itself is lost.

use std::cell::UnsafeCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::AcqRel, Ordering::Acquire};
use std::task::Wake;

use corosensei::{Coroutine, Yielder};

use crate::stack::{Frames, Stack};
use crate::worker::Worker;

/// Suspended, in no queue: a wake queues it.
const IDLE: u8 = 0;
/// In its worker's run queue.
const QUEUED: u8 = 1;
/// Running on its worker.
const RUNNING: u8 = 2;
/// Running, and woken meanwhile: queue it again when it suspends.
const NOTIFIED: u8 = 3;
/// Finished.
const DONE: u8 = 4;

/// What a green thread runs: its closure and where its result goes.
pub(crate) trait Start: Send {
    /// Run the closure (on the green thread's stack) and publish its result.
    fn run(self: Box<Self>);
    /// No green thread could be made: publish `why` as the result instead.
    fn fail(self: Box<Self>, why: std::io::Error);
}

pub(crate) type Body = Box<dyn Start>;
pub(crate) type Co = Coroutine<(), (), (), Frames>;

pub(crate) struct Task {
    state: AtomicU8,
    pub(crate) worker: Arc<Worker>,
    local: UnsafeCell<Local>,
}

/// What only the owning worker's thread touches.
pub(crate) struct Local {
    /// The closure, until the first run turns it into a coroutine.
    pub(crate) body: Option<Body>,
    /// Declared before `stack`, so it drops first: it runs on that stack.
    pub(crate) co: Option<Co>,
    /// Reserved at spawn; the coroutine runs on it from the first run.
    pub(crate) stack: Option<Stack>,
    /// The coroutine's yielder, learned on its first suspension; it lives on
    /// the coroutine's own stack, so it stays put until the coroutine ends.
    pub(crate) yielder: *const Yielder<(), ()>,
    /// Its entry in the worker's table of unfinished green threads.
    pub(crate) home: u32,
    /// The worker's count of suspensions when this one last suspended:
    /// tells a stale entry of the worker's parked list from a live one.
    pub(crate) parked_at: u64,
    /// Its stack pointer at the last suspension.
    pub(crate) sp: usize,
    /// Bytes of its frames on the heap while its stack is compacted (0
    /// while hot).
    pub(crate) saved: usize,
}

// SAFETY: `local` (the only non-thread-safe part: a coroutine and its
// yielder) is accessed solely by the owning worker's thread, through
// `Task::local`, whose callers are the worker loop and the green thread
// itself, both on that thread. Other threads only touch `state` (atomic)
// and the `Arc<Worker>` (Sync).
unsafe impl Send for Task {}
// SAFETY: as for `Send`: shared access from other threads is atomic only.
unsafe impl Sync for Task {}

/// How a wake left the state.
pub(crate) enum Wakeup {
    /// It was suspended: the caller must queue it.
    Queue,
    /// Nothing to do (already queued, running and now notified, or done).
    Nothing,
}

/// What a suspension left the state as.
pub(crate) enum AfterRun {
    Suspended,
    /// Woken while running: queue it again.
    Requeue,
}

impl Task {
    pub(crate) fn new(worker: Arc<Worker>, body: Body, stack: Stack) -> Task {
        Task {
            state: AtomicU8::new(QUEUED),
            worker,
            local: UnsafeCell::new(Local {
                body: Some(body),
                co: None,
                stack: Some(stack),
                yielder: std::ptr::null(),
                home: u32::MAX,
                parked_at: 0,
                sp: 0,
                saved: 0,
            }),
        }
    }

    /// Suspended and in no queue.
    pub(crate) fn is_idle(&self) -> bool {
        self.state.load(Acquire) == IDLE
    }

    /// The worker-only part.
    ///
    /// # Safety
    /// Call only on the owning worker's thread, and hold no other reference
    /// from an earlier call across this one.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn local(&self) -> &mut Local {
        // SAFETY: the caller promises this is the owning worker's thread and
        // that no other reference into `local` is alive.
        unsafe { &mut *self.local.get() }
    }

    pub(crate) fn wake_state(&self) -> Wakeup {
        let mut cur = self.state.load(Acquire);
        loop {
            let (next, outcome) = match cur {
                IDLE => (QUEUED, Wakeup::Queue),
                RUNNING => (NOTIFIED, Wakeup::Nothing),
                _ => return Wakeup::Nothing,
            };
            match self.state.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return outcome,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The worker takes it off the queue to run it.
    pub(crate) fn start_running(&self) {
        self.state.store(RUNNING, std::sync::atomic::Ordering::Release);
    }

    /// The coroutine suspended: mark it idle unless woken meanwhile.
    pub(crate) fn suspended(&self) -> AfterRun {
        match self.state.compare_exchange(RUNNING, IDLE, AcqRel, Acquire) {
            Ok(_) => AfterRun::Suspended,
            Err(_) => {
                // NOTIFIED: only wakes move it from RUNNING, and they stop there.
                self.state.store(QUEUED, std::sync::atomic::Ordering::Release);
                AfterRun::Requeue
            }
        }
    }

    pub(crate) fn finished(&self) {
        self.state.store(DONE, std::sync::atomic::Ordering::Release);
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Wakeup::Queue = self.wake_state() {
            self.worker.schedule(self.clone());
        }
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").field("state", &self.state.load(Acquire)).finish_non_exhaustive()
    }
}
