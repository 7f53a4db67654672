//! Helpers for the race, fault, hostile-input and leak tests (each test
//! binary uses a different part), copied in spirit from the tcp tests'
//! `common` module: parking detection, a reusable worker thread, bounded
//! waits, resets, SIGPIPE detection, and this process's descriptor, thread
//! and memory counts.
#![allow(dead_code)]

use std::io;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use crate::support::PATIENCE;

pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Block until thread `tid` sits in `ppoll`: parked in a wait, not merely
/// on its way there. Bounded by [`PATIENCE`].
pub fn until_parked(tid: i32) {
    let path = format!("/proc/self/task/{tid}/syscall");
    let deadline = Instant::now() + PATIENCE;
    let ppoll = libc::SYS_ppoll.to_string();
    loop {
        let s = std::fs::read_to_string(&path).unwrap_or_default();
        if s.split_whitespace().next() == Some(ppoll.as_str()) {
            return;
        }
        assert!(Instant::now() < deadline, "thread {tid} never parked ({s:?})");
        thread::yield_now();
    }
}

/// Whether any of `tids` sits in `ppoll` right now.
pub fn any_parked(tids: &[i32]) -> bool {
    let ppoll = libc::SYS_ppoll.to_string();
    tids.iter().any(|tid| {
        let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap_or_default();
        s.split_whitespace().next() == Some(ppoll.as_str())
    })
}

/// Spawn `f` on a new thread; returns its tid and a channel that receives
/// what it returns (with the instant it returned).
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

/// A thread that runs the closures it is sent, one after the other, so a
/// test that needs a second thread hundreds of times does not spawn them.
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

fn setsockopt<T>(fd: &impl AsRawFd, level: libc::c_int, name: libc::c_int, value: T) {
    // SAFETY: `value` lives across the call and its size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt: {}", io::Error::last_os_error());
}

/// Make closing `s` send RST instead of FIN (SO_LINGER on, timeout 0).
pub fn linger0(s: &impl AsRawFd) {
    setsockopt(s, libc::SOL_SOCKET, libc::SO_LINGER, libc::linger { l_onoff: 1, l_linger: 0 });
}

/// Shrink the kernel send buffer, so a writer nobody reads from blocks
/// after a few KiB.
pub fn small_sndbuf(s: &impl AsRawFd) {
    setsockopt(s, libc::SOL_SOCKET, libc::SO_SNDBUF, 4096 as libc::c_int);
}

/// Shrink the kernel receive buffer (set on a listener, accepted sockets
/// inherit it).
pub fn small_rcvbuf(s: &impl AsRawFd) {
    setsockopt(s, libc::SOL_SOCKET, libc::SO_RCVBUF, 4096 as libc::c_int);
}

/// Run `f` with SIGPIPE blocked on this thread and report whether one was
/// raised meanwhile (it stays pending, where it can be seen, and is then
/// consumed), whatever the process-wide disposition.
pub fn raises_sigpipe<T>(f: impl FnOnce() -> T) -> (T, bool) {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` and `old` are valid sigsets; the mask change is local to
    // this thread and undone below.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        assert_eq!(libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old), 0);
    }
    let r = f();
    // SAFETY: a valid sigset to fill in.
    let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `pending` is a valid sigset.
    let raised = unsafe {
        libc::sigpending(&mut pending);
        libc::sigismember(&pending, libc::SIGPIPE) == 1
    };
    if raised {
        let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: consumes the pending SIGPIPE before it is unblocked; `set`
        // holds only SIGPIPE and `zero` outlives the call.
        unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) };
    }
    // SAFETY: restores this thread's previous mask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    (r, raised)
}

/// How many descriptors this process has open.
pub fn count_fds() -> usize {
    // The directory handle itself shows up in the listing; don't count it.
    std::fs::read_dir("/proc/self/fd").unwrap().count() - 1
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

/// Raise the soft open-file limit to `want` (or the hard limit, if lower).
pub fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid rlimit to fill in.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    let target = (want as libc::rlim_t).min(lim.rlim_max);
    if lim.rlim_cur < target {
        lim.rlim_cur = target;
        // SAFETY: `lim` is a valid rlimit; raising the soft limit up to the
        // hard one needs no privilege.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
}

/// A ClientHello as our client sends it: dial a plain TCP listener that
/// records the first flight, and give up on the handshake.
pub fn capture_client_hello(cfg: &tls::Config) -> Vec<u8> {
    use std::io::Read;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let grab = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        // A record header, then its body.
        let mut hello = vec![0u8; 5];
        s.read_exact(&mut hello).unwrap();
        let len = u16::from_be_bytes([hello[3], hello[4]]) as usize;
        hello.resize(5 + len, 0);
        s.read_exact(&mut hello[5..]).unwrap();
        hello
    });
    let c = tls::client(tcp::connect_addr(addr).unwrap(), cfg).unwrap();
    c.set_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    let hs = thread::spawn(move || {
        let _ = c.handshake();
    });
    let hello = grab.join().unwrap();
    hs.join().unwrap();
    assert_eq!(hello[0], 0x16, "a handshake record");
    assert_eq!(hello[5], 0x01, "a ClientHello");
    hello
}
