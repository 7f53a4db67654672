//! Threads under test: where they are parked, bounded waits, a reusable
//! worker. Telling whether a thread is parked reads `/proc`: those helpers
//! (and the tests using them) are Linux only.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::PATIENCE;

/// The calling thread's kernel id.
#[cfg(target_os = "linux")]
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Whether thread `tid` sits in a wait syscall right now: `ppoll`, or
/// `poll` (the `portable-wait` build of iopoll; on aarch64 glibc's `poll`
/// is `ppoll` already).
#[cfg(target_os = "linux")]
fn parked(tid: i32) -> (bool, String) {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap_or_default();
    let nr: Option<libc::c_long> = s.split_whitespace().next().and_then(|n| n.parse().ok());
    #[cfg(target_arch = "x86_64")]
    let waits = [libc::SYS_ppoll, libc::SYS_poll];
    #[cfg(not(target_arch = "x86_64"))]
    let waits = [libc::SYS_ppoll];
    (nr.is_some_and(|nr| waits.contains(&nr)), s)
}

/// Block until thread `tid` sits in `ppoll` (or `poll`): parked in a wait,
/// not merely on its way there. Bounded by [`PATIENCE`].
#[cfg(target_os = "linux")]
pub fn until_parked(tid: i32) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (parked, s) = parked(tid);
        if parked {
            return;
        }
        assert!(Instant::now() < deadline, "thread {tid} never parked ({s:?})");
        thread::yield_now();
    }
}

/// Whether any of `tids` sits in `ppoll` (or `poll`) right now.
#[cfg(target_os = "linux")]
pub fn any_parked(tids: &[i32]) -> bool {
    tids.iter().any(|&tid| parked(tid).0)
}

/// Spawn `f` on a new thread and return its tid and a channel that receives
/// what it returns (with the instant it returned).
#[cfg(target_os = "linux")]
pub fn spawn_tracked<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> (i32, mpsc::Receiver<(T, Instant)>) {
    let (tid_tx, tid_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        let r = f();
        let _ = tx.send((r, Instant::now()));
    });
    (tid_rx.recv().unwrap(), rx)
}

/// [`spawn_tracked`], then wait until the thread is parked in `ppoll`.
#[cfg(target_os = "linux")]
pub fn spawn_parked<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> mpsc::Receiver<(T, Instant)> {
    let (tid, rx) = spawn_tracked(f);
    until_parked(tid);
    rx
}

/// Run `f` on its own thread and fail (instead of hanging) if it takes
/// longer than `limit`. A panic in `f` is propagated.
pub fn within<T: Send + 'static>(limit: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            h.join().unwrap();
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!(),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still running after {limit:?} (hang)"),
    }
}

/// A thread that runs the closures it is sent, one after the other, so a
/// test that needs a second thread 1 000 times does not spawn 1 000.
#[derive(Debug)]
pub struct Worker {
    /// The worker thread's kernel id.
    #[cfg(target_os = "linux")]
    pub tid: i32,
    jobs: Option<mpsc::Sender<Box<dyn FnOnce() + Send>>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Worker {
    /// Start the worker thread.
    pub fn new() -> Worker {
        let (jobs, rx) = mpsc::channel::<Box<dyn FnOnce() + Send>>();
        #[cfg(target_os = "linux")]
        let (tid_tx, tid_rx) = mpsc::channel();
        let handle = thread::spawn(move || {
            #[cfg(target_os = "linux")]
            tid_tx.send(gettid()).unwrap();
            for job in rx {
                job();
            }
        });
        Worker {
            #[cfg(target_os = "linux")]
            tid: tid_rx.recv().unwrap(),
            jobs: Some(jobs),
            handle: Some(handle),
        }
    }

    /// Run `f` on the worker; its result arrives on the returned channel
    /// (which disconnects if `f` panics).
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> mpsc::Receiver<T> {
        let (tx, rx) = mpsc::channel();
        let job: Box<dyn FnOnce() + Send> = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs.as_ref().unwrap().send(job).expect("worker thread is gone (a job panicked)");
        rx
    }
}

impl Default for Worker {
    fn default() -> Self {
        Worker::new()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(h) = self.handle.take()
            && !thread::panicking()
        {
            h.join().unwrap();
        }
    }
}

/// Receive from `rx`, failing (instead of hanging) after [`PATIENCE`].
#[track_caller]
pub fn bounded<T>(rx: &mpsc::Receiver<T>, what: &str) -> T {
    match rx.recv_timeout(PATIENCE) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: no result within {PATIENCE:?} (hang)"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the thread panicked"),
    }
}

/// Wait (at most [`PATIENCE`]) until `f()` is `want`: threads that were
/// told to stop exit, and close their descriptors, a moment later.
pub fn settles(want: usize, f: impl Fn() -> usize) -> usize {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let n = f();
        if n == want || Instant::now() >= deadline {
            return n;
        }
        thread::yield_now();
    }
}
