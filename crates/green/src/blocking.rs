//! `spawn_blocking`: OS threads for work that would block a worker.
//!
//! Threads are started on demand and kept for a while when idle, so a
//! burst of blocking calls does not pay a thread start each.
//!
//! # Locks
//! `state` guards the job queue and the idle count; it is held only to
//! push or pop a job, never while one runs.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use iopoll::sync::OneShot;
use parking_lot::{Condvar, Mutex};

/// An idle thread exits after this long without work.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

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
    let job: Job = Box::new(move || tx.put(panic::catch_unwind(AssertUnwindSafe(f))));
    // No thread to be had: run it here rather than fail the caller.
    if let Err(job) = threads().submit(job) {
        job();
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
    /// if no thread can be started and none is there to take it.
    fn submit(&'static self, job: Job) -> Result<(), Job> {
        let mut q = self.state.lock();
        q.jobs.push_back(job);
        if q.idle >= q.jobs.len() {
            self.work.notify_one();
            return Ok(());
        }
        match thread::Builder::new().name("reseau-blocking".into()).spawn(move || self.serve()) {
            Ok(_) => Ok(()),
            Err(_) if q.idle > 0 => {
                self.work.notify_one();
                Ok(())
            }
            Err(_) => Err(q.jobs.pop_back().expect("the job just queued")),
        }
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
                return;
            }
        }
    }
}
