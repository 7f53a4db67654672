//! Helpers for the race, fault and leak tests (each test binary uses a
//! different part): a reusable worker thread, bounded waits, resets, and
//! this process's descriptor, thread and memory counts.
#![allow(dead_code)]

use std::io;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use crate::common::{PATIENCE, gettid};

/// A thread that runs the closures it is sent, one after the other, so a
/// test that needs a second thread 1 000 times does not spawn 1 000.
pub struct Worker {
    pub tid: i32,
    jobs: Option<mpsc::Sender<Box<dyn FnOnce() + Send>>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Worker {
    pub fn new() -> Worker {
        let (jobs, rx) = mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let (tid_tx, tid_rx) = mpsc::channel();
        let handle = thread::spawn(move || {
            tid_tx.send(gettid()).unwrap();
            for job in rx {
                job();
            }
        });
        Worker { tid: tid_rx.recv().unwrap(), jobs: Some(jobs), handle: Some(handle) }
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

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(h) = self.handle.take() {
            if !thread::panicking() {
                h.join().unwrap();
            }
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

/// Make closing `s` send RST instead of FIN (SO_LINGER on, timeout 0).
pub fn linger0(s: &impl AsRawFd) {
    let lin = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: `lin` lives across the call and its size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const lin).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER: {}", io::Error::last_os_error());
}

/// How many threads this process has.
pub fn count_threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Resident memory of this process, in bytes.
pub fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    pages * page
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
