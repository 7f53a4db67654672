//! `PollFd`: the per-descriptor wait state (Go's `pollDesc`).
//!
//! Each direction has an absolute deadline in an atomic word and a small
//! list of waiters. Three kinds of waiter share it:
//! - a blocking thread sleeps in the kernel on the fd and on its own wake-up
//!   descriptor (see `park`); the kernel wakes it on readiness, and a
//!   deadline moved earlier or a close writes that descriptor. The reactor
//!   is not involved, so a wake-up costs one context switch, as with a
//!   blocking std socket.
//! - a blocking call in a green thread suspends; its scheduler's own
//!   reactor watches the fd and the deadline, and a deadline moved earlier
//!   or a close wakes it through the list, like a thread.
//! - a `Waker` goes through the reactor: the fd is registered (edge-
//!   triggered) on first use, readiness is latched per direction, and a
//!   deadline is a timer in the wheel.
//!
//! Both follow one rule for deadlines: moving a deadline later or clearing
//! it touches nobody (a waiter that wakes at the old time re-checks and
//! sleeps on); moving it earlier wakes the waiters so they re-check now. The
//! common case, an idle timeout pushed forward after each read, is therefore
//! one atomic swap.
//!
//! A green thread's deadline is a timer per direction, on its worker's
//! wheel, kept across waits: a deadline moved later leaves it armed for the
//! earlier time, and the waiters it wakes then re-check and arm it anew.
//! So a server that pushes its idle deadline forward before every request
//! (the usual way to write one) arms a timer about once per idle period,
//! not once per request.
//!
//! # Locks
//! Each direction's `waiters` lock guards its waiter list, latched
//! readiness and deadline timers; `registered` guards whether the fd is in
//! the poller. They never nest with each other. A timer is armed, looked at
//! or cancelled under a `waiters` lock (the wheel's lock nests inside), and
//! no `Waker` is called while one is held: wakers are collected and woken
//! after unlocking, since a `wake` may poll this very `PollFd` again.

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use mio::Token;
use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::deadline::{self, AtomicDeadline};
use crate::park::{Scheduler, Waiter};
use crate::primitive;
use crate::runtime::{Driver, Watched};
use crate::spin::{self, Waiting};
use crate::sys::Woken;
use crate::sys::{self, Interest};
use crate::{Closed, DeadlineExceeded, ReactorShutdown, Runtime, Timer};

/// One nonblocking file descriptor as the reactor sees it: read and write
/// deadlines, the threads and tasks waiting on it, and its close state.
///
/// `PollFd` neither owns nor closes the fd; close the `PollFd` (or drop it)
/// before closing the fd. `tcp::Conn` and `tcp::Listener` are built on it.
///
/// The caller's loop is: try the syscall; on `WouldBlock`, wait; retry.
/// In a green thread the wait is edge-triggered: it returns on readiness
/// that came after the last wait, so wait only after a `WouldBlock` (on an
/// OS thread, waiting first is fine too).
///
/// ```no_run
/// use std::io::{self, Read};
/// use std::os::fd::AsRawFd;
/// # fn demo(mut sock: std::net::TcpStream) -> io::Result<()> {
/// sock.set_nonblocking(true)?;
/// let pfd = iopoll::PollFd::new(&iopoll::Runtime::global(), sock.as_raw_fd())?;
/// pfd.set_read_deadline(Some(std::time::Instant::now() + std::time::Duration::from_secs(5)));
/// let mut buf = [0u8; 1024];
/// let n = loop {
///     pfd.prepare_read()?; // closed or expired: fail before the syscall
///     match sock.read(&mut buf) {
///         Err(e) if e.kind() == io::ErrorKind::WouldBlock => pfd.wait_readable()?,
///         other => break other?,
///     }
/// };
/// # Ok(()) }
/// ```
pub struct PollFd {
    fd: RawFd,
    rt: Runtime,
    shared: Arc<Shared>,
}

/// A direction of I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

/// The state shared between a `PollFd`, the reactor's registration table and
/// deadline timers.
pub(crate) struct Shared {
    closed: AtomicBool,
    /// The runtime was shut down: every wait fails.
    shut_down: AtomicBool,
    read: Direction,
    write: Direction,
    /// Our entry in the runtime's table of descriptors (shutdown reaches
    /// every `PollFd` through it, and poller events carry it).
    token: Token,
    /// Whether the fd is registered with the poller: on the first
    /// `Waker`-based wait, never for blocking waits.
    registered: Mutex<bool>,
    /// The green schedulers' reactors that watch the fd (see
    /// `Driver::watch`); each forgets it when the `PollFd` closes. Inline:
    /// a connection is almost always watched by one reactor, and a wait
    /// then touches no other cache line for it.
    watchers: Mutex<SmallVec<[Weak<Driver>; 1]>>,
}

struct Direction {
    deadline: AtomicDeadline,
    /// True while a thread or a `Waker` waits. Lets a deadline setter skip
    /// the lock when nobody is there to wake (model-checked: see
    /// `loom_models` below).
    watched: primitive::AtomicBool,
    waiters: primitive::Mutex<Waiters>,
}

#[derive(Default)]
struct Waiters {
    /// Blocking callers (threads and green threads) parked in `wait`.
    /// Inline for the usual one: enlisting and delisting then stay on the
    /// descriptor's own cache lines.
    parked: SmallVec<[Waker; 1]>,
    /// The `Waker` of a `poll_*_ready` caller.
    waker: Option<Waker>,
    /// Edge-triggered readiness seen by the reactor and not yet consumed.
    ready: bool,
    /// The wheel timer that wakes `waker` at the deadline, and the deadline
    /// word it was armed for.
    timer: Option<(Timer, u64)>,
    /// The timer that wakes the parked green threads at the deadline, and
    /// the deadline word it was armed for. Kept across waits until it
    /// fires (its callback empties the slot), so a server that pushes an
    /// idle deadline forward before every request arms none: the timer
    /// fires early, and the woken waiter, its deadline not reached, arms
    /// one for the new deadline.
    green_timer: Option<(Timer, u64)>,
}

impl Waiters {
    fn watched(&self) -> bool {
        !self.parked.is_empty() || self.waker.is_some()
    }

    /// Everyone to wake (after unlocking): the parked stay listed, since
    /// they delist themselves; the `Waker` is taken.
    fn collect(&mut self, into: &mut Vec<Waker>) {
        into.extend(self.parked.iter().cloned());
        into.extend(self.waker.take());
    }
}

fn wake(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}

impl Direction {
    fn new() -> Direction {
        Direction {
            deadline: AtomicDeadline::default(),
            watched: primitive::AtomicBool::new(false),
            waiters: primitive::Mutex::default(),
        }
    }

    fn set_deadline(&self, d: Option<Instant>) {
        let new = deadline::encode(d);
        let old = self.deadline.swap(d);
        if !deadline::is_earlier(new, old) {
            return;
        }
        // Pairs with the fence a waiter puts between publishing `watched`
        // and re-reading the deadline: one of the two sees the other's
        // write. (Fences, not SeqCst accesses alone: that is the form loom
        // can check, and a deadline pushed later, the hot case, skips it.)
        primitive::fence(SeqCst);
        if self.watched.load(SeqCst) {
            let mut wakers = Vec::new();
            {
                let mut w = self.waiters.lock();
                w.collect(&mut wakers);
                self.watched.store(w.watched(), SeqCst);
            }
            wake(wakers);
        }
    }

    /// A green thread enlisted here waits until the deadline at most: arm
    /// this direction's green timer on `rt`'s wheel, unless one armed there
    /// fires no later. (Any wheel would do while it turns; the waiter's own
    /// is the one known to turn as long as the waiter lives.)
    fn arm_green_timer(&self, shared: &Arc<Shared>, dir: Dir, rt: &Runtime) {
        let word = self.deadline.word();
        if word == deadline::NONE {
            return;
        }
        let replaced = {
            let mut w = self.waiters.lock();
            // Armed, since a fired one leaves the slot in its callback.
            let keep = |(t, at): &(Timer, u64)| *at <= word && t.is_on(rt.driver());
            if w.green_timer.as_ref().is_some_and(keep) {
                return;
            }
            w.green_timer.replace((green_deadline_timer(shared, dir, word, rt), word))
        };
        if let Some((old, _)) = replaced {
            old.cancel();
        }
    }

    /// Join the waiters. The caller reads the deadline only after this, so
    /// a setter that moves it earlier either is seen or sees us.
    fn enlist(&self, waker: &Waker) {
        {
            let mut w = self.waiters.lock();
            w.parked.push(waker.clone());
            self.watched.store(true, SeqCst);
        }
        primitive::fence(SeqCst);
    }

    fn delist(&self, waker: &Waker) {
        let mut w = self.waiters.lock();
        if let Some(i) = w.parked.iter().position(|t| t.will_wake(waker)) {
            w.parked.swap_remove(i);
        }
        self.watched.store(w.watched(), SeqCst);
    }
}

impl Dir {
    fn interest(self) -> Interest {
        match self {
            Dir::Read => Interest::Readable,
            Dir::Write => Interest::Writable,
        }
    }
}

impl Shared {
    fn dir(&self, dir: Dir) -> &Direction {
        match dir {
            Dir::Read => &self.read,
            Dir::Write => &self.write,
        }
    }

    /// Go's `prepare`: closed beats an expired deadline.
    fn check(&self, dir: Dir) -> io::Result<()> {
        if self.closed.load(SeqCst) {
            return Err(Closed.into());
        }
        if self.shut_down.load(SeqCst) {
            return Err(ReactorShutdown.into());
        }
        if self.dir(dir).deadline.expired() {
            return Err(DeadlineExceeded.into());
        }
        Ok(())
    }

    /// The reactor saw readiness: latch it, and hand back the `Waker`s to
    /// wake (the caller wakes them once no lock is held).
    pub(crate) fn on_ready(&self, readable: bool, writable: bool, wakers: &mut Vec<Waker>) {
        for (dir, ready) in [(&self.read, readable), (&self.write, writable)] {
            if ready {
                let mut w = dir.waiters.lock();
                w.ready = true;
                wakers.extend(w.waker.take());
                dir.watched.store(w.watched(), SeqCst);
            }
        }
    }

    /// The runtime is shutting down: fail every wait, now and later.
    pub(crate) fn shut_down(&self) {
        self.shut_down.store(true, SeqCst);
        self.wake_all();
    }

    /// Wake every waiter in both directions so it re-checks its state.
    pub(crate) fn wake_all(&self) {
        let mut wakers = Vec::new();
        let mut timers = Vec::new();
        for dir in [&self.read, &self.write] {
            let mut w = dir.waiters.lock();
            w.collect(&mut wakers);
            timers.extend(w.timer.take().map(|(t, _)| t));
            timers.extend(w.green_timer.take().map(|(t, _)| t));
            dir.watched.store(w.watched(), SeqCst);
        }
        for t in timers {
            t.cancel();
        }
        wake(wakers);
    }
}

/// The timer of [`Direction::arm_green_timer`]: at deadline `word`, wake
/// every waiter parked in direction `dir` (each re-checks its deadline).
fn green_deadline_timer(shared: &Arc<Shared>, dir: Dir, word: u64, rt: &Runtime) -> Timer {
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let at = deadline::decode(word).expect("deadline word is set");
    rt.timer_at(at, move || {
        let Some(shared) = weak.upgrade() else { return };
        let (wakers, _fired): (Vec<Waker>, _) = {
            let mut w = shared.dir(dir).waiters.lock();
            // This timer, or one already replaced and fired or cancelled: a
            // waiter arming from now on must arm anew. Under the same lock
            // as the wakers are collected, so a waiter either is woken here
            // or finds the slot empty.
            let fired = w.green_timer.take_if(|(t, _)| !t.is_armed());
            (w.parked.iter().cloned().collect(), fired)
        };
        wake(wakers);
    })
}

impl PollFd {
    /// Start tracking `fd`, which must be nonblocking, on runtime `rt`.
    ///
    /// Nothing is registered with the poller yet: blocking waits never need
    /// it, and the first `Waker`-based wait registers the fd.
    pub fn new(rt: &Runtime, fd: RawFd) -> io::Result<PollFd> {
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        let shared = rt.driver().track(|token| Shared {
            closed: AtomicBool::new(false),
            shut_down: AtomicBool::new(false),
            read: Direction::new(),
            write: Direction::new(),
            token,
            registered: Mutex::new(false),
            watchers: Mutex::new(SmallVec::new()),
        })?;
        Ok(PollFd { fd, rt: rt.clone(), shared })
    }

    /// The runtime this descriptor waits on.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// The descriptor being tracked.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Park the calling thread until the fd is readable, the read deadline
    /// passes (`TimedOut`, carrying [`DeadlineExceeded`]) or the `PollFd` is
    /// closed ([`Closed`]). May return `Ok` spuriously: retry the syscall.
    pub fn wait_readable(&self) -> io::Result<()> {
        self.wait(Dir::Read)
    }

    /// Park the calling thread until the fd is writable, the write deadline
    /// passes or the `PollFd` is closed.
    pub fn wait_writable(&self) -> io::Result<()> {
        self.wait(Dir::Write)
    }

    /// For a reader whose last read drained a stream socket (returned fewer
    /// bytes than asked, so the kernel's queue was empty): in a green
    /// thread whose scheduler has watched the fd since, suspend until the
    /// next readable edge unless one came already, so the read that would
    /// say `WouldBlock` is never made (tokio clears readiness the same way).
    /// Anywhere else, or when in doubt, return at once: the caller reads,
    /// and waits on `WouldBlock` as usual. Never use it where a short read
    /// can leave data queued (a Unix socket stops short of a message with
    /// other credentials or descriptors attached).
    ///
    /// Errors as [`wait_readable`](PollFd::wait_readable): a deadline, a
    /// close.
    pub fn wait_readable_after_drain(&self) -> io::Result<()> {
        self.shared.check(Dir::Read)?;
        let Some(scheduler) = crate::park::scheduler() else { return Ok(()) };
        // The reactor knows whether it watches the fd (only a wait after
        // `WouldBlock` registers it, recording the reactor for the close).
        let driver = scheduler.runtime().driver();
        let waker = scheduler.waker();
        if driver.watch_unless_ready(self.fd, &waker, &self.shared.closed)? == Watched::TryNow {
            return Ok(());
        }
        let d = self.shared.dir(Dir::Read);
        d.enlist(&waker);
        // Checked again after enlisting, as in `wait`: a close or a deadline
        // moved earlier that came before our entry is seen here.
        let result = self.shared.check(Dir::Read).and_then(|()| {
            d.arm_green_timer(&self.shared, Dir::Read, scheduler.runtime());
            Waiter::Green(scheduler).wait(None, None).map(drop)
        });
        d.delist(&waker);
        result
    }

    /// The `Waker` form of [`wait_readable`](PollFd::wait_readable): `Ready`
    /// when the fd may be readable (retry the syscall; on `WouldBlock` poll
    /// again), when the read deadline has passed, or once closed.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_ready(Dir::Read, cx)
    }

    /// The `Waker` form of [`wait_writable`](PollFd::wait_writable).
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_ready(Dir::Write, cx)
    }

    /// Fail at once if the fd is closed or its read deadline has passed.
    /// Call before each read syscall: Go's rule is that an expired deadline
    /// fails the operation even when data is waiting.
    pub fn prepare_read(&self) -> io::Result<()> {
        self.shared.check(Dir::Read)
    }

    /// Fail at once if the fd is closed or its write deadline has passed.
    pub fn prepare_write(&self) -> io::Result<()> {
        self.shared.check(Dir::Write)
    }

    /// Set both deadlines. `None` clears; an instant at or before now makes
    /// waits fail at once, including a wait already blocked.
    pub fn set_deadline(&self, d: Option<Instant>) {
        self.set_read_deadline(d);
        self.set_write_deadline(d);
    }

    /// Set the read deadline; it applies to waits already blocked.
    pub fn set_read_deadline(&self, d: Option<Instant>) {
        self.shared.read.set_deadline(d);
    }

    /// Set the write deadline; it applies to waits already blocked.
    pub fn set_write_deadline(&self, d: Option<Instant>) {
        self.shared.write.set_deadline(d);
    }

    /// The current read deadline.
    pub fn read_deadline(&self) -> Option<Instant> {
        self.shared.read.deadline.get()
    }

    /// The current write deadline.
    pub fn write_deadline(&self) -> Option<Instant> {
        self.shared.write.deadline.get()
    }

    /// Whether [`close`](PollFd::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(SeqCst)
    }

    /// Deregister from the reactor and wake every waiter with [`Closed`].
    /// Idempotent. The fd itself stays open.
    pub fn close(&self) {
        if self.shared.closed.swap(true, SeqCst) {
            return;
        }
        let mut registered = self.shared.registered.lock();
        if std::mem::take(&mut *registered) {
            self.rt.driver().deregister(self.fd);
        }
        drop(registered);
        self.rt.driver().untrack(self.shared.token);
        // After `closed` is set: no watch can register the fd again.
        let watchers = std::mem::take(&mut *self.shared.watchers.lock());
        for driver in watchers.iter().filter_map(Weak::upgrade) {
            driver.unwatch(self.fd);
        }
        self.shared.wake_all();
    }

    fn wait(&self, dir: Dir) -> io::Result<()> {
        self.shared.check(dir)?;
        let waiter = Waiter::current()?;
        let d = self.shared.dir(dir);
        let io = Some((self.fd, dir.interest()));
        if let Waiter::Green(scheduler) = &waiter {
            // No spinning: other green threads can use the core. At most one
            // suspension, then the caller retries its syscall.
            let waker = waiter.waker();
            d.enlist(&waker);
            let result = self.wait_green(dir, scheduler.as_ref(), &waker, &waiter);
            d.delist(&waker);
            return result;
        }
        let (_waiting, before) = Waiting::enter();
        if spin::before_parking(before, dir.interest(), || sys::is_ready(self.fd, dir.interest())) {
            return Ok(());
        }
        let waker = waiter.waker();
        d.enlist(&waker);
        let result = loop {
            // Re-checked after enlisting, so a close or deadline change that
            // missed our entry in the list is seen here.
            if let Err(e) = self.shared.check(dir) {
                break Err(e);
            }
            match waiter.wait(io, d.deadline.get()) {
                Ok(Woken::Ready) => break Ok(()),
                Ok(Woken::Signalled | Woken::Elapsed) => {}
                Err(e) => break Err(e),
            }
        };
        d.delist(&waker);
        result
    }

    /// A green thread's wait: the scheduler's own reactor watches the fd,
    /// its wheel the deadline; a close or a deadline moved earlier wakes us
    /// through the waiter list, as it wakes threads.
    fn wait_green(&self, dir: Dir, scheduler: &dyn Scheduler, waker: &Waker, waiter: &Waiter) -> io::Result<()> {
        self.shared.check(dir)?;
        let driver = scheduler.runtime().driver();
        {
            let mut watchers = self.shared.watchers.lock();
            if !watchers.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(driver))) {
                watchers.push(Arc::downgrade(driver));
            }
        }
        driver.watch(self.fd, dir.interest(), waker, &self.shared.closed)?;
        self.shared.dir(dir).arm_green_timer(&self.shared, dir, scheduler.runtime());
        waiter.wait(None, None).map(drop)
    }

    fn poll_ready(&self, dir: Dir, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Err(e) = self.shared.check(dir) {
            return Poll::Ready(Err(e));
        }
        if let Err(e) = self.register() {
            return Poll::Ready(Err(e));
        }
        let d = self.shared.dir(dir);
        {
            let mut w = d.waiters.lock();
            if w.ready {
                w.ready = false;
                return Poll::Ready(Ok(()));
            }
            if !w.waker.as_ref().is_some_and(|old| old.will_wake(cx.waker())) {
                w.waker = Some(cx.waker().clone());
            }
            d.watched.store(true, SeqCst);
            // As in `enlist`: published before the deadline is read.
            primitive::fence(SeqCst);
            let word = d.deadline.word();
            if word != deadline::NONE && w.timer.as_ref().is_none_or(|(_, at)| *at != word) {
                if let Some((old, _)) = w.timer.take() {
                    old.cancel();
                }
                w.timer = Some((self.deadline_timer(dir, word), word));
            }
        }
        match self.shared.check(dir) {
            Err(e) => Poll::Ready(Err(e)),
            Ok(()) => Poll::Pending,
        }
    }

    /// A wheel timer that wakes this direction's `Waker` at deadline `word`.
    fn deadline_timer(&self, dir: Dir, word: u64) -> Timer {
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        let at = deadline::decode(word).expect("deadline word is set");
        self.rt.timer_at(at, move || {
            let Some(shared) = weak.upgrade() else { return };
            let d = shared.dir(dir);
            let (waker, _timer) = {
                let mut w = d.waiters.lock();
                let timer = w.timer.take_if(|(_, at)| *at == word);
                let waker = w.waker.take();
                d.watched.store(w.watched(), SeqCst);
                (waker, timer)
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        })
    }

    fn register(&self) -> io::Result<()> {
        let mut registered = self.shared.registered.lock();
        if !*registered {
            if self.shared.closed.load(SeqCst) {
                return Err(Closed.into());
            }
            self.rt.driver().register(self.fd, self.shared.token)?;
            *registered = true;
        }
        Ok(())
    }
}

impl Drop for PollFd {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for PollFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollFd")
            .field("fd", &self.fd)
            .field("closed", &self.is_closed())
            .field("read_deadline", &self.read_deadline())
            .field("write_deadline", &self.write_deadline())
            .finish()
    }
}

/// Model checks of the `watched` handshake between a waiter and a
/// deadline setter (`make loom`).
#[cfg(all(test, loom))]
mod loom_models {
    use std::sync::atomic::Ordering::SeqCst;
    use std::task::{Wake, Waker};
    use std::time::{Duration, Instant};

    use super::Direction;
    use crate::deadline;
    use crate::primitive::AtomicBool;

    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.store(true, SeqCst);
        }
    }

    /// A waiter that enlisted and then read the deadline (as `wait` does
    /// before sleeping until it) either read the earlier deadline or is
    /// woken by the setter: it never sleeps on towards the old one.
    #[test]
    fn loom_an_enlisted_waiter_sees_or_is_woken_by_an_earlier_deadline() {
        loom::model(|| {
            let far = Instant::now() + Duration::from_secs(3600);
            let d = loom::sync::Arc::new(Direction::new());
            d.set_deadline(Some(far));
            let earlier = Some(far - Duration::from_secs(1800));
            let setter = {
                let d = d.clone();
                loom::thread::spawn(move || d.set_deadline(earlier))
            };
            let flag = std::sync::Arc::new(Flag(AtomicBool::new(false)));
            let waker = Waker::from(flag.clone());
            d.enlist(&waker);
            let seen = d.deadline.word();
            setter.join().unwrap();
            assert!(
                seen == deadline::encode(earlier) || flag.0.load(SeqCst),
                "the waiter neither saw the earlier deadline nor was woken"
            );
            d.delist(&waker);
        });
    }

    /// A setter that moves the deadline later wakes nobody, and a waiter
    /// that has delisted is never woken.
    #[test]
    fn loom_later_deadlines_and_delisted_waiters_wake_nobody() {
        loom::model(|| {
            let now = Instant::now();
            let d = loom::sync::Arc::new(Direction::new());
            d.set_deadline(Some(now + Duration::from_secs(10)));
            let flag = std::sync::Arc::new(Flag(AtomicBool::new(false)));
            let waker = Waker::from(flag.clone());
            d.enlist(&waker);
            let setter = {
                let d = d.clone();
                loom::thread::spawn(move || d.set_deadline(Some(now + Duration::from_secs(20))))
            };
            setter.join().unwrap();
            assert!(!flag.0.load(SeqCst), "a later deadline woke the waiter");
            d.delist(&waker);
            d.set_deadline(Some(now));
            assert!(!flag.0.load(SeqCst), "a delisted waiter was woken");
        });
    }
}
