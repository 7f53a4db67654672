//! A small pool of threads for lookups that may block for long (the C
//! library's `getaddrinfo`, a custom resolver that ignores its deadline),
//! so the caller can stop waiting at its deadline, or (`spawn`) a task
//! can poll for the answer.
//!
//! # Locks
//! `state` (the queue and thread counts) is held only to queue or take a
//! job, and an [`Answer`]'s `slot` only to store or take the answer or the
//! waker; the waker is woken after the slot's lock is released. Neither is
//! held while a job runs, and they never nest.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use iopoll::sync::OneShot;
use parking_lot::{Condvar, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// Why [`Pool::run`] has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failed {
    /// The deadline passed first.
    Deadline,
    /// Too many jobs queued, or no thread could be started.
    Busy,
    /// The job panicked.
    Panicked,
}

/// Threads started on demand, up to a limit, that live as long as the
/// process: each pool is a `static`.
pub(crate) struct Pool {
    name: &'static str,
    /// At most this many jobs run at once...
    threads: usize,
    /// ...and at most this many wait for a thread.
    queue: usize,
    state: Mutex<PoolState>,
    work: Condvar,
}

struct PoolState {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

impl Pool {
    pub(crate) fn new(name: &'static str, threads: usize, queue: usize) -> Pool {
        Pool {
            name,
            threads,
            queue,
            state: Mutex::new(PoolState { jobs: VecDeque::new(), threads: 0, idle: 0 }),
            work: Condvar::new(),
        }
    }

    /// Run `f` on a pool thread and wait for its answer until `deadline`.
    /// A job whose caller has given up before it starts is skipped; one
    /// already running finishes and its answer is dropped. A panic in `f`
    /// is caught (the thread lives on) and reported.
    pub(crate) fn run<T: Send + 'static>(
        &'static self,
        deadline: Option<Instant>,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Failed> {
        // The caller waits through `iopoll::park`: in a green thread only
        // that green thread waits, and no thread is started per call.
        let answer = Arc::new(OneShot::new());
        let tx = answer.clone();
        self.enqueue(Box::new(move || {
            // Only the job holds the answer: its caller is gone.
            if Arc::strong_count(&tx) > 1 {
                tx.put(catch_unwind(AssertUnwindSafe(f)).map_err(|_| Failed::Panicked));
            }
        }))?;
        answer.take(deadline).unwrap_or(Err(Failed::Deadline))
    }

    /// Run `f` on a pool thread without waiting: the answer comes through
    /// [`Answer::poll`], which wakes the task that polled it. Dropping the
    /// `Answer` before the job starts skips it, as `run`'s deadline does.
    pub(crate) fn spawn<T: Send + 'static>(
        &'static self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Arc<Answer<T>>, Failed> {
        let answer = Arc::new(Answer { slot: Mutex::new(Slot { value: None, waker: None }) });
        let tx = answer.clone();
        self.enqueue(Box::new(move || {
            if Arc::strong_count(&tx) > 1 {
                tx.put(catch_unwind(AssertUnwindSafe(f)).map_err(|_| Failed::Panicked));
            }
        }))?;
        Ok(answer)
    }

    /// Queue `job`, starting a thread for it if need be.
    fn enqueue(&'static self, job: Job) -> Result<(), Failed> {
        let mut st = self.state.lock();
        if st.jobs.len() >= self.queue {
            return Err(Failed::Busy);
        }
        st.jobs.push_back(job);
        // More jobs queued than idle threads to take them (an idle
        // thread counts as idle until it wakes): add a thread, so a
        // slow lookup never holds up one queued behind it.
        if st.jobs.len() > st.idle && st.threads < self.threads {
            let spawned = std::thread::Builder::new().name(self.name.into()).spawn(move || self.work());
            if spawned.is_ok() {
                st.threads += 1;
            } else if st.threads == 0 {
                // Nobody would ever run it.
                st.jobs.pop_back();
                return Err(Failed::Busy);
            }
        }
        self.work.notify_one();
        Ok(())
    }

    fn work(&self) {
        let mut st = self.state.lock();
        loop {
            match st.jobs.pop_front() {
                Some(job) => {
                    drop(st);
                    job();
                    st = self.state.lock();
                }
                None => {
                    st.idle += 1;
                    self.work.wait(&mut st);
                    st.idle -= 1;
                }
            }
        }
    }
}

/// The answer of a [`Pool::spawn`]ed job, for a task to poll.
pub(crate) struct Answer<T> {
    slot: Mutex<Slot<T>>,
}

struct Slot<T> {
    value: Option<Result<T, Failed>>,
    waker: Option<Waker>,
}

impl<T> Answer<T> {
    fn put(&self, value: Result<T, Failed>) {
        let waker = {
            let mut slot = self.slot.lock();
            slot.value = Some(value);
            slot.waker.take()
        };
        // Woken with the lock released.
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The answer once the job has run (taken: `Ready` once); until then
    /// `Pending`, with the task's `Waker` left for the job to wake.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<Result<T, Failed>> {
        let mut slot = self.slot.lock();
        match slot.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    slot.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}
