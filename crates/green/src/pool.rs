//! `Pool`: the workers, where a new green thread goes, and shutdown.
//!
//! # Locks
//! `quiet` (an `iopoll::sync` mutex, so a green thread of another pool may
//! wait on it) guards nothing but the wait for the last green thread to
//! end; the count itself is atomic. `threads` guards the worker threads'
//! join handles until shutdown takes them.

use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use iopoll::sync::{Condvar, Mutex};

use crate::join::{JoinHandle, Joined};
use crate::stack::{self, Stack};
use crate::task::{Start, Task};
use crate::worker::{self, Worker};

/// The default stack reserved per green thread: room for an OpenSSL
/// handshake and deep user code. Only the pages a green thread touches
/// become resident; the rest is address space.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// How long a green thread stays parked before its stack is compacted by
/// default: long enough that a connection busy a few times a second never
/// pays for it.
pub const DEFAULT_COMPACT_AFTER: Duration = Duration::from_secs(1);

/// An M:N pool of green threads: `workers` OS threads, each running the
/// green threads placed on it at spawn, and driving its own reactor.
///
/// Inside a green thread, every blocking `tcp`, `tls` and resolver call,
/// [`sleep`](crate::sleep) and [`JoinHandle::join`] suspends only that
/// green thread.
///
/// ```
/// use std::io::{Read, Write};
/// let pool = green::Pool::new(2)?;
/// let listener = tcp::listen("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let server = pool.spawn(move || {
///     let mut conn = listener.accept().unwrap();
///     let mut buf = [0; 5];
///     conn.read_exact(&mut buf).unwrap();   // suspends this green thread only
///     conn.write_all(&buf).unwrap();
/// });
/// let client = pool.spawn(move || {
///     let mut conn = tcp::connect_addr(addr).unwrap();
///     conn.write_all(b"hello").unwrap();
///     let mut buf = [0; 5];
///     conn.read_exact(&mut buf).unwrap();
///     buf
/// });
/// assert_eq!(&client.join().unwrap(), b"hello");
/// server.join().unwrap();
/// pool.shutdown();
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Pool {
    shared: Arc<PoolShared>,
    threads: Vec<thread::JoinHandle<()>>,
}

/// Configures a [`Pool`]; from [`Pool::builder`].
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    workers: usize,
    stack_size: usize,
    compact_after: Duration,
    name: String,
}

/// A snapshot of a pool's green threads; from [`Pool::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Green threads spawned and not yet finished.
    pub live: usize,
    /// Of those, the parked ones whose stacks are compacted: their frames on
    /// the heap, their stack pages given back.
    pub compacted: usize,
    /// The bytes of those frames on the heap.
    pub compacted_bytes: usize,
    /// Stacks of finished green threads kept hot for new ones: given back
    /// once unused for the pool's compaction threshold.
    pub spare_stacks: usize,
}

pub(crate) struct PoolShared {
    workers: Vec<Arc<Worker>>,
    next: AtomicUsize,
    slot_len: usize,
    /// Green threads spawned and not yet finished.
    live: AtomicUsize,
    /// No more handle owns the pool: its workers exit once `live` is 0.
    closing: AtomicBool,
    quiet: Mutex<()>,
    quiet_cv: Condvar,
}

impl PoolBuilder {
    /// How many OS threads run green threads; 0 (the default) means one
    /// per core.
    pub fn workers(mut self, n: usize) -> PoolBuilder {
        self.workers = n;
        self
    }

    /// The stack reserved per green thread ([`DEFAULT_STACK_SIZE`] unless
    /// set), plus a guard page: an overflow ends the process with a message
    /// saying so, never corrupting memory. Only touched pages cost memory.
    /// More than [`MAX_STACK_SIZE`](crate::MAX_STACK_SIZE) is an error at
    /// [`build`](PoolBuilder::build).
    pub fn stack_size(mut self, bytes: usize) -> PoolBuilder {
        self.stack_size = bytes;
        self
    }

    /// How long a green thread stays parked before its stack is compacted
    /// ([`DEFAULT_COMPACT_AFTER`] unless set): its live frames are copied to
    /// the heap and its stack pages given back, and they are copied back,
    /// to the same addresses, when it resumes (some microseconds). The
    /// worker compacts in rounds that leave its run queue empty, so a
    /// worker that always has work defers it. Spare stacks of finished
    /// green threads unused this long are given back too.
    /// `Duration::ZERO` compacts at every park that lets the worker idle;
    /// `Duration::MAX` only when more stacks are hot than the process's
    /// budget (see `docs/green.md`).
    pub fn compact_after(mut self, after: Duration) -> PoolBuilder {
        self.compact_after = after;
        self
    }

    /// The worker threads' name prefix (`reseau-green` unless set).
    pub fn name(mut self, name: impl Into<String>) -> PoolBuilder {
        self.name = name.into();
        self
    }

    /// Start the workers.
    pub fn build(self) -> io::Result<Pool> {
        let n = if self.workers == 0 { thread::available_parallelism().map_or(1, |n| n.get()) } else { self.workers };
        let slot_len = stack::slot_len(self.stack_size)?;
        let mut err = None;
        let shared = Arc::new_cyclic(|weak| {
            let workers = (0..n)
                .filter_map(|i| {
                    Worker::new(i, slot_len, self.compact_after, weak.clone()).map_err(|e| err = Some(e)).ok()
                })
                .map(Arc::new)
                .collect();
            PoolShared {
                workers,
                next: AtomicUsize::new(0),
                slot_len,
                live: AtomicUsize::new(0),
                closing: AtomicBool::new(false),
                quiet: Mutex::new(()),
                quiet_cv: Condvar::new(),
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        let mut threads = Vec::with_capacity(n);
        for w in &shared.workers {
            let (w, s) = (w.clone(), shared.clone());
            let spawned = thread::Builder::new().name(format!("{}-{}", self.name, w.index)).spawn(move || w.run(&s));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Stop the workers already started before reporting.
                    Pool { shared, threads }.shutdown();
                    return Err(e);
                }
            }
        }
        Ok(Pool { shared, threads })
    }
}

impl Pool {
    /// A pool of `workers` OS threads (0: one per core) with the default
    /// stack size.
    pub fn new(workers: usize) -> io::Result<Pool> {
        Pool::builder().workers(workers).build()
    }

    /// A [`PoolBuilder`] with the defaults.
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            workers: 0,
            stack_size: DEFAULT_STACK_SIZE,
            compact_after: DEFAULT_COMPACT_AFTER,
            name: "reseau-green".into(),
        }
    }

    /// Start `f` as a green thread. It runs on one worker, chosen at spawn
    /// in turn, until it ends: it never moves to another OS thread.
    ///
    /// When no stack can be had, the green thread never runs and
    /// [`join`](JoinHandle::join) returns `Err` saying why; use
    /// [`try_spawn`](Pool::try_spawn) to learn it at once.
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.shared.spawn(f)
    }

    /// Start `f` as a green thread, or fail at once when no stack can be
    /// reserved for it (address space or memory exhausted, or the process's
    /// limits reached).
    ///
    /// ```
    /// let pool = green::Pool::new(1)?;
    /// let h = pool.try_spawn(|| 6 * 7)?;
    /// assert_eq!(h.join().unwrap(), 42);
    /// pool.shutdown();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_spawn<F, T>(&self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.shared.try_spawn(f)
    }

    /// How many green threads the pool has, how many of them are parked
    /// with compacted stacks, and how many spare stacks it keeps.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            live: self.shared.live.load(SeqCst),
            compacted: self.shared.workers.iter().map(|w| w.compacted.load(SeqCst)).sum(),
            compacted_bytes: self.shared.workers.iter().map(|w| w.compacted_bytes.load(SeqCst)).sum(),
            spare_stacks: self.shared.workers.iter().map(|w| w.spare_stacks.load(SeqCst)).sum(),
        }
    }

    /// How many worker threads run green threads.
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// Wait until every green thread of the pool has finished (including
    /// those they spawn meanwhile), then stop and join the workers.
    ///
    /// A green thread that is parked with no `Waker` left anywhere (nothing
    /// can ever wake it: say, a `sleep(Duration::MAX)`) can never finish.
    /// Shutdown does not wait for it: it is abandoned, and leaks what it
    /// holds, as a goroutine blocked forever does in Go. It is never
    /// unwound, and its join never returns. A green thread that can still be
    /// woken (by a socket, a timer, another thread) is waited for.
    ///
    /// Called from one of the pool's own green threads, it cannot wait for
    /// itself: the pool then closes and its workers stop on their own once
    /// the last green thread has finished.
    pub fn shutdown(mut self) {
        self.close();
        if worker::current_task()
            .is_some_and(|t| t.worker.pool.upgrade().is_some_and(|p| Arc::ptr_eq(&p, &self.shared)))
        {
            return;
        }
        self.shared.wait_quiet();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    fn close(&self) {
        self.shared.closing.store(true, SeqCst);
        if self.shared.live.load(SeqCst) == 0 {
            self.shared.quiesced();
        }
    }
}

impl Drop for Pool {
    /// Dropping a pool without [`shutdown`](Pool::shutdown) lets its green
    /// threads run to the end; the workers stop after the last one.
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.shared.workers.len())
            .field("live", &self.shared.live.load(SeqCst))
            .finish()
    }
}

/// A green thread's closure and the slot its result goes to.
struct Job<F, T> {
    f: F,
    result: Arc<Joined<T>>,
}

impl<F, T> Start for Job<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>) {
        let Job { f, result } = *self;
        result.put(panic::catch_unwind(AssertUnwindSafe(f)));
    }

    fn fail(self: Box<Self>, why: io::Error) {
        let msg = format!("reseau-green: no stack for a new green thread: {why}");
        self.result.put(Err(Box::new(msg)));
    }
}

impl PoolShared {
    pub(crate) fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let result = Arc::new(Joined::new());
        let job = Box::new(Job { f, result: result.clone() });
        match Stack::reserve(self.slot_len) {
            Ok(stack) => self.start(job, stack),
            Err(e) => job.fail(e),
        }
        JoinHandle::new(result)
    }

    pub(crate) fn try_spawn<F, T>(&self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let stack = Stack::reserve(self.slot_len)?;
        let result = Arc::new(Joined::new());
        self.start(Box::new(Job { f, result: result.clone() }), stack);
        Ok(JoinHandle::new(result))
    }

    fn start(&self, job: Box<dyn Start>, stack: Stack) {
        let i = self.next.fetch_add(1, SeqCst) % self.workers.len();
        let worker = self.workers[i].clone();
        self.live.fetch_add(1, SeqCst);
        let task = Arc::new(Task::new(worker.clone(), job, stack));
        worker.schedule(task);
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(SeqCst)
    }

    pub(crate) fn task_done(&self) {
        if self.live.fetch_sub(1, SeqCst) == 1 && self.closing.load(SeqCst) {
            self.quiesced();
        }
    }

    /// Closed and empty: the workers may stop.
    pub(crate) fn finished(&self) -> bool {
        self.closing.load(SeqCst) && self.live.load(SeqCst) == 0
    }

    /// The last green thread of a closed pool ended: wake the workers so
    /// they see it, and whoever waits in `shutdown`.
    fn quiesced(&self) {
        for w in &self.workers {
            w.nudge();
        }
        let _quiet = self.quiet.lock();
        self.quiet_cv.notify_all();
    }

    fn wait_quiet(&self) {
        let mut quiet = self.quiet.lock();
        while !self.finished() {
            self.quiet_cv.wait(&mut quiet);
        }
    }
}

/// The pool [`spawn`](crate::spawn) uses outside green threads: one worker
/// per core, started on first use, never shut down.
pub(crate) fn default_pool() -> &'static Pool {
    static DEFAULT: OnceLock<Pool> = OnceLock::new();
    DEFAULT.get_or_init(|| Pool::builder().build().expect("reseau-green: cannot start the default pool"))
}

/// The pool of the green thread running now, if any.
pub(crate) fn current_pool() -> Option<Arc<PoolShared>> {
    worker::current_task()?.worker.pool.upgrade()
}
