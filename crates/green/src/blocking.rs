//! `spawn_blocking`: OS threads for work that would block a worker.
//!
//! Threads are started on demand and kept for a while when idle, so a
//! burst of blocking calls does not pay a thread start each. A job never
//! runs on the green thread's worker: when no thread can be started, it
//! waits in the queue for a running one, and when none runs at all, the
//! caller's green thread retries the start with a growing pause.
//!
//! # Locks
//! `state` guards the job queue and the thread counts; it is held only to
//! push or pop a job, never while one runs.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use iopoll::sync::OneShot;
use parking_lot::{Condvar, Mutex};

/// An idle thread exits after this long without work.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// When no thread can be started, the first pause before trying again, and
/// the longest.
const RETRY_FIRST: Duration = Duration::from_millis(1);
const RETRY_MAX: Duration = Duration::from_millis(100);

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Threads {
    state: Mutex<Queue>,
    work: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    idle: usize,
    /// Threads running, idle or not.
    threads: usize,
}

fn threads() -> &'static Threads {
    static THREADS: OnceLock<Threads> = OnceLock::new();
    THREADS.get_or_init(Threads::default)
}

/// Run `f` on an OS thread and wait for its result. In a green thread only
/// that green thread waits; on an OS thread `f` simply runs on the caller.
///
/// Inside a green thread, anything that blocks the OS thread (a std mutex,
/// file I/O, `std::thread::sleep`, a DNS resolver of your own that sleeps,
/// heavy computation) stalls every other green thread of its worker.
/// Wrap such calls in `spawn_blocking`. A panic in `f` is resumed in the
/// caller.
///
/// ```
/// let pool = green::Pool::new(1)?;
/// let h = pool.spawn(|| green::spawn_blocking(|| std::fs::read_to_string("/proc/self/status").is_ok()));
/// assert!(h.join().unwrap());
/// pool.shutdown();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn spawn_blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if !iopoll::park::in_green_thread() {
        return f();
    }
    let done = Arc::new(OneShot::new());
    let tx = done.clone();
    let mut job: Job = Box::new(move || tx.put(panic::catch_unwind(AssertUnwindSafe(f))));
    let mut pause = RETRY_FIRST;
    // No thread at all, and none can be started: wait (this green thread
    // only) and try again; never run it on the worker.
    while let Err(back) = threads().submit(job) {
        job = back;
        crate::sleep_until(Instant::now() + pause);
        pause = (pause * 2).min(RETRY_MAX);
    }
    let result = loop {
        if let Some(r) = done.take(None) {
            break r;
        }
    };
    match result {
        Ok(v) => v,
        Err(payload) => panic::resume_unwind(payload),
    }
}

impl Threads {
    /// Queue `job`, starting a thread if none is idle; the job comes back
    /// if no thread can be started and none runs to take it later.
    fn submit(&'static self, job: Job) -> Result<(), Job> {
        let mut q = self.state.lock();
        q.jobs.push_back(job);
        if q.idle >= q.jobs.len() {
            self.work.notify_one();
            return Ok(());
        }
        match self.start_thread() {
            Ok(()) => {
                q.threads += 1;
                Ok(())
            }
            // A running thread takes it when it is done with its job.
            Err(_) if q.threads > 0 => {
                self.work.notify_one();
                Ok(())
            }
            Err(_) => Err(q.jobs.pop_back().expect("the job just queued")),
        }
    }

    fn start_thread(&'static self) -> std::io::Result<()> {
        thread::Builder::new().name("reseau-blocking".into()).spawn(move || self.serve()).map(drop)
    }

    fn serve(&self) {
        let mut q = self.state.lock();
        loop {
            if let Some(job) = q.jobs.pop_front() {
                drop(q);
                job();
                q = self.state.lock();
                continue;
            }
            q.idle += 1;
            let timed_out = self.work.wait_for(&mut q, KEEP_ALIVE).timed_out();
            q.idle -= 1;
            if timed_out && q.jobs.is_empty() {
                q.threads -= 1;
                return;
            }
        }
    }
}
