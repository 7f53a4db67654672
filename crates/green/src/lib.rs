//! Green threads for reseau.
//!
//! A [`Pool`] runs stackful green threads (coroutines on their own stacks,
//! switched by `corosensei`) on a few OS threads, its workers. Code in a
//! green thread is ordinary blocking code: `tcp::Conn::read`, `tls`
//! handshakes, `tcp::connect("host:port")`, [`sleep`], [`JoinHandle::join`].
//! Where an OS thread would park, the green thread suspends and its worker
//! runs another; the worker's own reactor resumes it on readiness, at its
//! deadline, on close or when a deadline moves. A blocked connection costs
//! a parked green thread (a few KiB of stack), not an OS thread, as with
//! Go's goroutines and Julia's tasks.
//!
//! ```
//! use std::io::{Read, Write};
//! let listener = tcp::listen("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! // A green thread per connection, on the default pool.
//! green::spawn(move || {
//!     while let Ok(mut conn) = listener.accept() {
//!         green::spawn(move || {
//!             let mut buf = [0; 1024];
//!             while let Ok(n @ 1..) = conn.read(&mut buf) {
//!                 if conn.write_all(&buf[..n]).is_err() { break }
//!             }
//!         });
//!     }
//! });
//! let echoed = green::spawn(move || {
//!     let mut conn = tcp::connect_addr(addr).unwrap();
//!     conn.write_all(b"ping").unwrap();
//!     let mut buf = [0; 4];
//!     conn.read_exact(&mut buf).unwrap();
//!     buf
//! }).join().unwrap();
//! assert_eq!(&echoed, b"ping");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The rules:
//! - A green thread stays on the worker it was placed on at spawn, so
//!   thread-locals and `!Send` values on its stack stay sound. New green
//!   threads are spread across the workers in turn.
//! - Anything that blocks the OS thread without going through reseau (a std
//!   mutex, file I/O, `std::thread::sleep`) blocks the whole worker: wrap it
//!   in [`spawn_blocking`].
//! - Connections move freely: one accepted in a green thread may be read on
//!   an OS thread, and the other way round.
//!
//! Another green-thread runtime can plug into reseau's waits the same way
//! this crate does: see `iopoll::park`.

mod blocking;
mod inject;
mod join;
mod pool;
mod run_queue;
mod stack;
mod task;
mod worker;

use std::time::{Duration, Instant};

pub use blocking::spawn_blocking;
pub use join::JoinHandle;
pub use pool::{DEFAULT_COMPACT_AFTER, DEFAULT_STACK_SIZE, Pool, PoolBuilder, PoolStats};
pub use stack::MAX_STACK_SIZE;

/// Start `f` as a green thread: in a green thread, on the same pool; on an
/// OS thread, on the default pool (one worker per core, started on first
/// use).
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match pool::current_pool() {
        Some(p) => p.spawn(f),
        None => pool::default_pool().spawn(f),
    }
}

/// Start `f` as a green thread as [`spawn`] does, or fail at once when no
/// stack can be reserved for it.
///
/// ```
/// let h = green::try_spawn(|| 6 * 7)?;
/// assert_eq!(h.join().unwrap(), 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn try_spawn<F, T>(f: F) -> std::io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match pool::current_pool() {
        Some(p) => p.try_spawn(f),
        None => pool::default_pool().try_spawn(f),
    }
}

/// Let the worker run other green threads before this one goes on. On an
/// OS thread, [`std::thread::yield_now`].
pub fn yield_now() {
    match worker::current_task() {
        Some(task) => {
            // Woken while running: the worker queues it again, behind the
            // green threads already waiting, as soon as it suspends.
            std::task::Wake::wake_by_ref(&task);
            drop(task);
            let _ = iopoll::park::park(None);
        }
        None => std::thread::yield_now(),
    }
}

/// Sleep for `d`: in a green thread only it sleeps, on its worker's timing
/// wheel; on an OS thread the thread sleeps. Never returns early.
pub fn sleep(d: Duration) {
    match Instant::now().checked_add(d) {
        Some(at) => sleep_until(at),
        None => sleep_until_forever(),
    }
}

/// Sleep until `at` (at once if it has passed); see [`sleep`].
pub fn sleep_until(at: Instant) {
    while Instant::now() < at {
        if iopoll::park::park(Some(at)).is_err() {
            // No wake-up descriptor for this OS thread: sleep plainly.
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
        }
    }
}

fn sleep_until_forever() {
    loop {
        if iopoll::park::park(None).is_err() {
            std::thread::park();
        }
    }
}

/// How many bytes of the calling green thread's stack it has used at its
/// deepest so far (`None` outside a green thread): a tool to size
/// [`PoolBuilder::stack_size`] for your own code. Run the deepest path
/// (a handshake, a parser on its largest input) in a green thread of a
/// fresh pool, read this at the end, and reserve a comfortable multiple:
/// reservation is address space, only touched pages cost memory.
///
/// It finds the lowest byte that is not zero, so it counts what was
/// written, and a stack reused from an earlier green thread of the same
/// worker may read as deep as that one went.
///
/// ```
/// let pool = green::Pool::new(1)?;
/// let used = pool.spawn(|| {
///     let buf = std::hint::black_box([1u8; 8192]);
///     let _ = buf[0];
///     green::stack_high_water().unwrap()
/// }).join().unwrap();
/// assert!(used >= 8192 && used < green::DEFAULT_STACK_SIZE);
/// assert!(green::stack_high_water().is_none());
/// pool.shutdown();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn stack_high_water() -> Option<usize> {
    worker::current_stack().map(stack::high_water)
}

/// Whether the caller runs in a green thread (of any runtime plugged into
/// `iopoll::park`).
pub fn in_green_thread() -> bool {
    iopoll::park::in_green_thread()
}
