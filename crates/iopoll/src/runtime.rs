//! The reactor: one mio poller, one timing wheel, and whoever drives them.
//!
//! # Locks
//! - `poll` guards the mio `Poll` and its event and waker buffers: held by
//!   the one thread inside `turn` while it polls and collects. Never taken
//!   by anyone else.
//! - `timers` guards the wheel: taken briefly to arm, move, cancel and
//!   collect timers, also from inside `turn` (after `poll`).
//! - `sources` guards the table of `PollFd`s, `watches` the descriptors
//!   watched for green threads' waits: each taken briefly, inside `turn`
//!   after `poll`, never together with `timers`.
//!
//! Order: `poll`, then any one of `timers`, `sources`, `watches`. No
//! callback or `Waker` runs while any of them is held.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, OnceLock, Weak};
use std::task::Waker;
use std::thread;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use parking_lot::Mutex;

use crate::clock;
use crate::error::ReactorShutdown;
use crate::poll_fd::Shared;
use crate::sys::Interest as Dir;
use crate::timer::Timer;
use crate::wheel::{Key, Wheel};

type Callback = Box<dyn FnOnce() + Send>;

const WAKE: Token = Token(usize::MAX);
/// Tokens with this bit set carry a watched descriptor's number (green
/// threads' waits); the others index the table of `PollFd`s.
const WATCH: usize = 1 << (usize::BITS - 1);
/// `wake_at` while nobody sleeps in the poller: nothing needs waking.
const AWAKE: u64 = 0;
const NO_TIMER: u64 = u64::MAX;

static GLOBAL: OnceLock<Runtime> = OnceLock::new();

/// A handle to one reactor. Cheap to clone; every clone drives and
/// registers with the same poller and timing wheel.
///
/// Three ways to get one:
/// - [`Runtime::global`]: the process-wide reactor, started on first use and
///   driven by its own thread. `tcp` and `tls` use it unless told otherwise.
/// - [`Runtime::spawn`]: a private reactor with its own thread, which stops
///   when the last handle is dropped.
/// - [`Runtime::new`]: an embedded reactor that only the owner's calls to
///   [`turn`](Runtime::turn) drive, for nesting in another event loop.
///
/// ```
/// use std::time::{Duration, Instant};
/// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
///
/// let rt = iopoll::Runtime::new()?;          // embedded: we drive it
/// let fired = Arc::new(AtomicBool::new(false));
/// let f = fired.clone();
/// rt.timer_at(Instant::now() + Duration::from_millis(5), move || f.store(true, Ordering::SeqCst));
/// while !fired.load(Ordering::SeqCst) {
///     rt.turn(None)?;                        // sleeps until the timer is due
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Runtime {
    handle: Arc<Handle>,
}

/// Owned by the `Runtime` clones; when the last goes, a background driver
/// thread is told to stop.
struct Handle {
    driver: Arc<Driver>,
    background: bool,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.background {
            self.driver.stopping.store(true, SeqCst);
            self.driver.wake();
        }
    }
}

impl Runtime {
    /// The process-wide reactor, started on first use and driven by a
    /// background thread named `reseau-reactor`.
    ///
    /// # Panics
    /// If the poller or its thread cannot be created the first time (the
    /// process is out of file descriptors or threads).
    pub fn global() -> Runtime {
        GLOBAL.get_or_init(|| Runtime::spawn().expect("reseau: cannot start the global reactor")).clone()
    }

    /// A new reactor driven by a new background thread. The thread stops
    /// once every handle to the runtime (including those held by `PollFd`s)
    /// is gone.
    pub fn spawn() -> io::Result<Runtime> {
        let driver = Arc::new(Driver::new()?);
        let d = driver.clone();
        thread::Builder::new().name("reseau-reactor".into()).spawn(move || d.run())?;
        Ok(Runtime { handle: Arc::new(Handle { driver, background: true }) })
    }

    /// A new embedded reactor: nothing happens unless the owner calls
    /// [`turn`](Runtime::turn). Its [raw fd](AsRawFd) becomes readable when
    /// I/O is ready; sleep on it no longer than [`next_timer`](Runtime::next_timer).
    pub fn new() -> io::Result<Runtime> {
        Ok(Runtime { handle: Arc::new(Handle { driver: Arc::new(Driver::new()?), background: false }) })
    }

    /// Run one iteration: wait for readiness or the next timer (never longer
    /// than `timeout`; `None` waits as long as it takes), wake the tasks
    /// waiting on ready descriptors and run due timers. Returns how many
    /// were woken or fired.
    ///
    /// Only embedded runtimes ([`Runtime::new`]) may be turned by their
    /// owner; the others are driven by their own thread and return an error.
    pub fn turn(&self, timeout: Option<Duration>) -> io::Result<usize> {
        if self.handle.background {
            return Err(io::Error::other("this reactor is driven by its own thread"));
        }
        self.handle.driver.turn(timeout)
    }

    /// When the earliest armed timer falls due (never later than it).
    /// An outer loop that nests this reactor sleeps no longer than this.
    pub fn next_timer(&self) -> Option<Instant> {
        self.handle.driver.next_timer()
    }

    /// Make a blocked (or the next) [`turn`](Runtime::turn) return promptly.
    pub fn wake(&self) {
        self.handle.driver.wake();
    }

    /// Run `f` on the driving thread once `at` has passed (never before).
    pub fn timer_at(&self, at: Instant, f: impl FnOnce() + Send + 'static) -> Timer {
        let driver = &self.handle.driver;
        Timer::new(driver.clone(), driver.arm_timer(at, Box::new(f)))
    }

    /// Shut the reactor down for good: its thread (if it has one) exits,
    /// pending timers are dropped unrun, and every thread or task waiting
    /// on one of its descriptors wakes with [`ReactorShutdown`], as does
    /// every later wait. The process-wide [`global`](Runtime::global)
    /// runtime cannot be shut down.
    pub fn shutdown(&self) -> io::Result<()> {
        if self.is_global() {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "the global reactor cannot be shut down"));
        }
        self.handle.driver.shutdown();
        Ok(())
    }

    /// Whether [`shutdown`](Runtime::shutdown) has been called.
    pub fn is_shut_down(&self) -> bool {
        self.handle.driver.is_stopping()
    }

    fn is_global(&self) -> bool {
        GLOBAL.get().is_some_and(|g| Arc::ptr_eq(&g.handle, &self.handle))
    }

    /// How many timers are armed.
    pub fn timer_count(&self) -> usize {
        self.handle.driver.timers.lock().wheel.len()
    }

    pub(crate) fn driver(&self) -> &Arc<Driver> {
        &self.handle.driver
    }
}

impl AsRawFd for Runtime {
    /// The epoll fd: readable whenever a `turn` would find I/O to dispatch
    /// or has been [woken](Runtime::wake), so the reactor nests in another
    /// loop's `poll`/`epoll`.
    fn as_raw_fd(&self) -> RawFd {
        self.handle.driver.fd
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("fd", &self.handle.driver.fd)
            .field("background", &self.handle.background)
            .finish_non_exhaustive()
    }
}

/// The reactor proper. `Timer`s and the driver thread hold it directly; user
/// code holds it through `Runtime` handles.
pub(crate) struct Driver {
    poll: Mutex<Poller>,
    registry: mio::Registry,
    waker: mio::Waker,
    fd: RawFd,
    timers: Mutex<Timers>,
    /// The tick a sleeping `turn` will wake at by itself (`NO_TIMER`: never;
    /// `AWAKE`: nobody sleeps). Arming an earlier timer must wake it.
    /// Written under the `timers` lock.
    wake_at: AtomicU64,
    /// Coalesces wake-ups: set by `wake`, cleared by `turn`.
    woken: AtomicBool,
    sources: Mutex<Sources>,
    /// Indexed by fd number.
    watches: Mutex<Vec<Watch>>,
    stopping: AtomicBool,
}

/// A `PollFd`'s descriptor as watched by this reactor for green threads'
/// waits: registered edge-triggered once, for both directions, until the
/// `PollFd` closes ([`Driver::unwatch`]).
///
/// A green thread usually waits only after its syscall said `WouldBlock`,
/// and this reactor runs only while the green threads that wait through it
/// are suspended, so every edge that matters to a wait is still queued in
/// the poller when the wait's waker is here. One exception skips that
/// syscall: a reader whose last read drained the socket (a short TCP read)
/// asks [`Driver::watch_unless_ready`] first, and for it a readable edge
/// that came while nobody waited is latched in `read_edge`.
#[derive(Default)]
struct Watch {
    registered: bool,
    read: Option<Waker>,
    write: Option<Waker>,
    /// A readable edge arrived while no reader waited.
    read_edge: bool,
    /// The peer closed its side, or the socket failed: final, so kept. A
    /// short read does not tell that an end of stream is queued behind it.
    read_closed: bool,
}

/// What [`Driver::watch_unless_ready`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watched {
    /// The caller's waker waits for the next edge.
    Waiting,
    /// Try the syscall now: an edge came since the last wait, or the
    /// descriptor was not watched before (edges before that were not seen).
    TryNow,
}

struct Poller {
    poll: Poll,
    events: Events,
    expired: Vec<Callback>,
    /// The wakers a turn collects, woken once the tables are unlocked;
    /// kept, like `expired`, so a turn allocates nothing.
    ready: Vec<Waker>,
}

pub(crate) struct Timers {
    wheel: Wheel<Callback>,
}

impl Driver {
    fn new() -> io::Result<Driver> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKE)?;
        let fd = poll.as_raw_fd();
        Ok(Driver {
            poll: Mutex::new(Poller {
                poll,
                events: Events::with_capacity(256),
                expired: Vec::new(),
                ready: Vec::new(),
            }),
            registry,
            waker,
            fd,
            timers: Mutex::new(Timers { wheel: Wheel::new(clock::tick_floor(Instant::now())) }),
            wake_at: AtomicU64::new(AWAKE),
            woken: AtomicBool::new(false),
            sources: Mutex::new(Sources::default()),
            watches: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        })
    }

    /// The background driver's loop.
    fn run(&self) {
        while !self.stopping.load(SeqCst) {
            if let Err(e) = self.turn(None) {
                // The poller itself failed: nobody can be woken through it any
                // more. Shut down, failing every waiter rather than leaving
                // it hanging.
                eprintln!("reseau: reactor stopped: {e}");
                self.shutdown();
            }
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(SeqCst)
    }

    fn turn(&self, timeout: Option<Duration>) -> io::Result<usize> {
        if self.is_stopping() {
            return Err(ReactorShutdown.into());
        }
        let mut guard = self.poll.lock();
        let Poller { poll, events, expired, ready: wakers } = &mut *guard;
        let now = Instant::now();
        let mut wait = timeout;
        {
            let timers = self.timers.lock();
            match timers.wheel.next_expiration() {
                Some(tick) => {
                    let until = clock::tick_instant(tick).saturating_duration_since(now);
                    wait = Some(wait.map_or(until, |w| w.min(until)));
                    self.wake_at.store(tick.max(AWAKE + 1), SeqCst);
                }
                None => self.wake_at.store(NO_TIMER, SeqCst),
            }
        }
        let polled = poll.poll(events, wait);
        self.wake_at.store(AWAKE, SeqCst);
        self.woken.store(false, SeqCst);
        match polled {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
            Err(e) => return Err(e),
        }

        for event in events.iter() {
            if event.token() == WAKE {
                continue;
            }
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            let writable = event.is_writable() || event.is_write_closed() || event.is_error();
            if event.token().0 & WATCH != 0 {
                let fd = event.token().0 & !WATCH;
                if let Some(w) = self.watches.lock().get_mut(fd).filter(|w| w.registered) {
                    if event.is_read_closed() || event.is_error() {
                        w.read_closed = true;
                    }
                    if readable {
                        match w.read.take() {
                            Some(reader) => wakers.push(reader),
                            None => w.read_edge = true,
                        }
                    }
                    if writable {
                        wakers.extend(w.write.take());
                    }
                }
                continue;
            }
            let shared = self.sources.lock().get(event.token());
            if let Some(shared) = shared {
                shared.on_ready(readable, writable, wakers);
            }
        }
        {
            let mut timers = self.timers.lock();
            timers.wheel.advance(clock::tick_floor(Instant::now()), |cb| expired.push(cb));
        }
        let woken = wakers.len() + expired.len();
        // Wake and run callbacks outside every lock, `poll` included: a
        // `wake` may run the task inline and a callback may arm timers, close
        // fds or even turn. The buffers go back after, to be reused.
        let (mut ready, mut due) = (std::mem::take(wakers), std::mem::take(expired));
        drop(guard);
        for w in ready.drain(..) {
            w.wake();
        }
        for cb in due.drain(..) {
            cb();
        }
        if let Some(mut guard) = self.poll.try_lock() {
            guard.ready = ready;
            guard.expired = due;
        }
        Ok(woken)
    }

    fn next_timer(&self) -> Option<Instant> {
        let timers = self.timers.lock();
        let next = timers.wheel.next_expiration();
        // An embedded owner is about to sleep until then (or forever): an
        // earlier timer armed meanwhile must make our fd readable.
        if self.wake_at.load(SeqCst) == AWAKE || next.is_some_and(|t| t < self.wake_at.load(SeqCst)) {
            self.wake_at.store(next.unwrap_or(NO_TIMER).max(AWAKE + 1), SeqCst);
        }
        next.map(clock::tick_instant)
    }

    pub(crate) fn wake(&self) {
        if !self.woken.swap(true, SeqCst) {
            // A failed eventfd write leaves the poller asleep until its next
            // event or timer; there is no one to report it to.
            let _ = self.waker.wake();
        }
    }

    pub(crate) fn arm_timer(&self, at: Instant, cb: Callback) -> Key {
        let tick = clock::tick_ceil(at);
        let mut timers = self.timers.lock();
        let key = timers.wheel.insert(tick, cb);
        self.wake_if_earlier(tick);
        key
    }

    pub(crate) fn reset_timer(&self, key: Key, at: Instant) -> bool {
        let tick = clock::tick_ceil(at);
        let mut timers = self.timers.lock();
        let armed = timers.wheel.reset(key, tick);
        if armed {
            self.wake_if_earlier(tick);
        }
        armed
    }

    pub(crate) fn cancel_timer(&self, key: Key) -> bool {
        let cb = self.timers.lock().wheel.remove(key);
        // Dropped outside the lock: a callback may own things whose drop
        // arms or cancels timers.
        cb.is_some()
    }

    pub(crate) fn timer_armed(&self, key: Key) -> bool {
        self.timers.lock().wheel.is_armed(key)
    }

    /// Called with the `timers` lock held, so `wake_at` is current.
    fn wake_if_earlier(&self, tick: u64) {
        if tick < self.wake_at.load(SeqCst) {
            self.wake();
        }
    }

    /// Enter a new descriptor's state in the table, under a fresh token.
    pub(crate) fn track(&self, make: impl FnOnce(Token) -> Shared) -> io::Result<Arc<Shared>> {
        let mut sources = self.sources.lock();
        // Checked under the lock that `shutdown` walks the table with, so
        // no descriptor slips in after the walk.
        if self.is_stopping() {
            return Err(ReactorShutdown.into());
        }
        Ok(sources.insert(make))
    }

    pub(crate) fn untrack(&self, token: Token) {
        self.sources.lock().remove(token);
    }

    /// Register `fd` edge-triggered for both directions under `token`.
    pub(crate) fn register(&self, fd: RawFd, token: Token) -> io::Result<()> {
        self.registry.register(&mut SourceFd(&fd), token, Interest::READABLE | Interest::WRITABLE)
    }

    /// Wake `waker` once, at `fd`'s next readiness for `interest`. Call it
    /// only after a syscall on `fd` said `WouldBlock`, on the thread that
    /// drives this reactor (see [`Watch`]). The first watch registers `fd`;
    /// it stays registered until [`unwatch`].
    ///
    /// `closed` is the `PollFd`'s flag, read under the table's lock: a close
    /// sets it before it unwatches, so no watch slips in after the unwatch
    /// and leaves a closed (and soon reused) fd number registered.
    ///
    /// [`unwatch`]: Driver::unwatch
    pub(crate) fn watch(&self, fd: RawFd, interest: Dir, waker: &Waker, closed: &AtomicBool) -> io::Result<()> {
        self.watch_inner(fd, interest, waker, closed, false).map(drop)
    }

    /// For a reader whose last read drained `fd`: [`Watched::TryNow`] if a
    /// readable edge came since, consuming it, or if `fd` is not watched
    /// here (it is not registered then); otherwise as
    /// [`watch`](Driver::watch), without the syscall first.
    pub(crate) fn watch_unless_ready(&self, fd: RawFd, waker: &Waker, closed: &AtomicBool) -> io::Result<Watched> {
        self.watch_inner(fd, Dir::Readable, waker, closed, true)
    }

    fn watch_inner(
        &self,
        fd: RawFd,
        interest: Dir,
        waker: &Waker,
        closed: &AtomicBool,
        unless_ready: bool,
    ) -> io::Result<Watched> {
        if self.is_stopping() {
            return Err(ReactorShutdown.into());
        }
        let index = usize::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        let mut watches = self.watches.lock();
        if closed.load(SeqCst) {
            return Err(crate::Closed.into());
        }
        if watches.len() <= index {
            watches.resize_with(index + 1, Watch::default);
        }
        let w = &mut watches[index];
        if !w.registered {
            // Never watched here: edges before now were not seen. Only a
            // wait after `WouldBlock` registers a descriptor (through
            // `PollFd`, which records this reactor to unwatch it on close).
            if unless_ready {
                return Ok(Watched::TryNow);
            }
            let token = Token(WATCH | index);
            self.registry.register(&mut SourceFd(&fd), token, Interest::READABLE | Interest::WRITABLE)?;
            *w = Watch { registered: true, ..Watch::default() };
        }
        if interest == Dir::Readable {
            // Either way the edge is spent: the caller reads now, or it saw
            // `WouldBlock` after it.
            let edge = std::mem::take(&mut w.read_edge);
            if unless_ready && (edge || w.read_closed) {
                return Ok(Watched::TryNow);
            }
        }
        let side = match interest {
            Dir::Readable => &mut w.read,
            Dir::Writable => &mut w.write,
        };
        if !side.as_ref().is_some_and(|old| old.will_wake(waker)) {
            *side = Some(waker.clone());
        }
        Ok(Watched::Waiting)
    }

    /// Forget `fd`: it is about to be closed. Any waker left is dropped
    /// (its owner was woken by the close).
    pub(crate) fn unwatch(&self, fd: RawFd) {
        let Ok(index) = usize::try_from(fd) else { return };
        let old = {
            let mut watches = self.watches.lock();
            match watches.get_mut(index) {
                Some(w) if w.registered => {
                    self.deregister(fd);
                    std::mem::take(w)
                }
                _ => return,
            }
        };
        drop(old); // wakers dropped outside the lock
    }

    pub(crate) fn deregister(&self, fd: RawFd) {
        // ENOENT/EBADF only mean the fd is already gone from the poller.
        let _ = self.registry.deregister(&mut SourceFd(&fd));
    }

    /// Stop for good: the driver thread (if any) exits, pending timers are
    /// dropped unrun, and every descriptor's waiters wake with
    /// `ReactorShutdown`, as do all later waits.
    fn shutdown(&self) {
        let tracked = {
            let sources = self.sources.lock();
            self.stopping.store(true, SeqCst);
            sources.live()
        };
        self.wake();
        for shared in tracked {
            shared.shut_down();
        }
        let dropped = std::mem::take(&mut self.timers.lock().wheel);
        drop(dropped); // callbacks dropped outside the lock
    }
}

/// Registered descriptors by token. A token carries a generation in its
/// upper half, so an event for a deregistered (or reused) slot is dropped.
#[derive(Default)]
struct Sources {
    slots: Vec<(u32, Option<Weak<Shared>>)>,
    free: Vec<u32>,
}

impl Sources {
    fn insert(&mut self, make: impl FnOnce(Token) -> Shared) -> Arc<Shared> {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        let shared = Arc::new(make(Token(((slot.0 as usize) << 32) | index as usize)));
        slot.1 = Some(Arc::downgrade(&shared));
        shared
    }

    /// Every descriptor still alive.
    fn live(&self) -> Vec<Arc<Shared>> {
        self.slots.iter().filter_map(|(_, w)| w.as_ref()?.upgrade()).collect()
    }

    fn split(token: Token) -> (usize, u32) {
        (token.0 & 0xFFFF_FFFF, (token.0 >> 32) as u32)
    }

    fn get(&self, token: Token) -> Option<Arc<Shared>> {
        let (index, generation) = Self::split(token);
        match self.slots.get(index) {
            Some((g, Some(w))) if *g == generation => w.upgrade(),
            _ => None,
        }
    }

    fn remove(&mut self, token: Token) {
        let (index, generation) = Self::split(token);
        if let Some(slot) = self.slots.get_mut(index)
            && slot.0 == generation
            && slot.1.is_some()
        {
            // Generations keep clear of the `WATCH` bit.
            slot.0 = slot.0.wrapping_add(1) & 0x7FFF_FFFF;
            slot.1 = None;
            self.free.push(index as u32);
        }
    }
}
