//! A mutex, a condition variable, a one-shot slot and Go's channel
//! ([`channel()`]), all waiting through [`park`].
//!
//! `tcp` and `tls` hold locks across waits: a reader holds its
//! connection's read lock while it waits for data, and a second reader
//! queues behind it. With std's or parking_lot's locks that queueing
//! blocks the OS thread, and in a green thread it would block the worker
//! and every green thread on it, including perhaps the one holding the
//! lock. These park the waiting green thread (or OS thread) instead, as
//! Go's `fdMutex` parks goroutines on runtime semaphores.
//!
//! Uncontended, [`Mutex::lock`] is one compare-and-swap and unlocking one
//! swap and one load, as with parking_lot.
//!
//! # Locks
//! Each `WaitList` has an inner parking_lot lock (allocated on first
//! contention) guarding its queue of wakers, held only to push, pop or
//! remove an entry; no `Waker` is called
//! under it, and nothing else is taken while it is held.
//!
//! A [`channel()`] has one state lock (parking_lot) guarding its buffer, its
//! closed flag, its counts of senders and receivers, and its two queues of
//! parked senders and receivers. It is held for bookkeeping only: never
//! across a park, a `Waker` call or the drop of a value sent. Each parked
//! caller's slot has a lock of its own guarding the slot's outcome (the
//! value offered or handed over, or the close): taken under the state lock
//! by whoever takes the slot off its queue, or alone by the slot's owner.
//! The order is always state lock, then slot lock.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::AcqRel, Ordering::Acquire, Ordering::SeqCst};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::park;

mod channel;

pub use channel::{Receiver, RecvError, RecvTimeoutError, SendError, Sender, TryRecvError, TrySendError, channel};

/// Wakers of parked callers, first come first served.
///
/// Two words until someone first waits: the queue is allocated then, and
/// kept. Every connection holds several of these (its read, write and
/// close locks), most of which never see contention.
#[derive(Default)]
struct WaitList {
    /// Entries in the queue: lets the uncontended path skip the lock.
    len: AtomicUsize,
    /// The queue, once anyone has waited (see `queue`).
    queue: AtomicPtr<parking_lot::Mutex<Queue>>,
}

#[derive(Default)]
struct Queue {
    next_id: u64,
    entries: VecDeque<(u64, Waker)>,
}

impl WaitList {
    /// The queue, allocated on first use.
    fn queue(&self) -> &parking_lot::Mutex<Queue> {
        let mut p = self.queue.load(Acquire);
        if p.is_null() {
            let fresh = Box::into_raw(Box::default());
            p = match self.queue.compare_exchange(std::ptr::null_mut(), fresh, AcqRel, Acquire) {
                Ok(_) => fresh,
                Err(theirs) => {
                    // SAFETY: `fresh` came from Box::into_raw above and was
                    // never shared: the exchange failed.
                    drop(unsafe { Box::from_raw(fresh) });
                    theirs
                }
            };
        }
        // SAFETY: a non-null pointer was installed once, from a Box, and is
        // freed only when the list drops, after every borrow of `self`.
        unsafe { &*p }
    }

    /// The queue if anyone has ever waited.
    fn existing(&self) -> Option<&parking_lot::Mutex<Queue>> {
        // SAFETY: as in `queue`.
        unsafe { self.queue.load(Acquire).as_ref() }
    }

    /// Enlist `waker`; the id removes it again.
    fn push(&self, waker: Waker) -> u64 {
        let mut q = self.queue().lock();
        let id = q.next_id;
        q.next_id += 1;
        q.entries.push_back((id, waker));
        self.len.store(q.entries.len(), SeqCst);
        id
    }

    /// Take entry `id` out; false if someone popped it (to wake it) first.
    fn remove(&self, id: u64) -> bool {
        let Some(q) = self.existing() else { return false };
        let mut q = q.lock();
        let found = q.entries.iter().position(|(i, _)| *i == id).map(|at| q.entries.remove(at));
        self.len.store(q.entries.len(), SeqCst);
        found.is_some()
    }

    fn wake_one(&self) {
        if self.len.load(SeqCst) == 0 {
            return;
        }
        let Some(q) = self.existing() else { return };
        let first = {
            let mut q = q.lock();
            let first = q.entries.pop_front();
            self.len.store(q.entries.len(), SeqCst);
            first
        };
        if let Some((_, w)) = first {
            w.wake();
        }
    }

    /// Enlist `waker` unless an entry that wakes the same task is there:
    /// a task polled again before its wake-up must not pile up entries.
    fn push_unique(&self, waker: &Waker) {
        let mut q = self.queue().lock();
        if !q.entries.iter().any(|(_, w)| w.will_wake(waker)) {
            let id = q.next_id;
            q.next_id += 1;
            q.entries.push_back((id, waker.clone()));
            self.len.store(q.entries.len(), SeqCst);
        }
    }

    fn wake_all(&self) {
        if self.len.load(SeqCst) == 0 {
            return;
        }
        let Some(q) = self.existing() else { return };
        let all = {
            let mut q = q.lock();
            self.len.store(0, SeqCst);
            std::mem::take(&mut q.entries)
        };
        for (_, w) in all {
            w.wake();
        }
    }
}

impl Drop for WaitList {
    fn drop(&mut self) {
        let p = *self.queue.get_mut();
        if !p.is_null() {
            // SAFETY: installed from a Box in `queue`; no borrow outlives
            // `self`, which is being dropped.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// Wait until woken or `deadline`; on an OS thread that cannot get its
/// wake-up descriptor, give the core away once instead (callers loop).
fn park_or_yield(deadline: Option<Instant>) {
    if park::park(deadline).is_err() {
        std::thread::yield_now();
    }
}

/// The caller's waker, or `None` when it has none (see `park_or_yield`).
fn my_waker() -> Option<Waker> {
    park::waker().ok()
}

/// A mutual exclusion lock whose waiters park through [`park`]:
/// a green thread waiting for it suspends instead of blocking its worker.
///
/// ```
/// let m = iopoll::sync::Mutex::new(0);
/// *m.lock() += 1;
/// assert_eq!(*m.lock(), 1);
/// ```
pub struct Mutex<T: ?Sized> {
    locked: AtomicBool,
    waiters: WaitList,
    /// `Waker`s of [`poll_lock`](Mutex::poll_lock) callers: all woken at
    /// each unlock, since a task may have stopped wanting the lock by then
    /// and a wake-up handed to it alone would be lost.
    pollers: WaitList,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `value` to one holder at a time, so
// sharing the mutex shares `T` only by moving access between threads.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: as for std's Mutex: moving the mutex moves the `T` it owns.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `value`.
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            locked: AtomicBool::new(false),
            waiters: WaitList::default(),
            pollers: WaitList::default(),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, for an owner that no longer needs the lock.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Take the lock, parking until it is free.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.acquire();
        MutexGuard { mutex: self }
    }

    /// Take the lock if it is free now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.try_acquire().then_some(MutexGuard { mutex: self })
    }

    /// The `Waker` form of [`lock`](Mutex::lock): the guard if the lock is
    /// free now, otherwise `Pending`, with the task woken at the next unlock
    /// (then poll again). The guard is for this poll only: it cannot be
    /// held across a `Pending`.
    ///
    /// ```
    /// use std::task::{Context, Poll, Waker};
    /// let m = iopoll::sync::Mutex::new(0);
    /// let mut cx = Context::from_waker(Waker::noop());
    /// let held = m.lock();
    /// assert!(m.poll_lock(&mut cx).is_pending());
    /// drop(held);
    /// assert!(matches!(m.poll_lock(&mut cx), Poll::Ready(_)));
    /// ```
    pub fn poll_lock(&self, cx: &mut Context<'_>) -> Poll<MutexGuard<'_, T>> {
        if self.try_acquire() {
            return Poll::Ready(MutexGuard { mutex: self });
        }
        // Enlist, then look again: an unlock after the look sees the entry.
        self.pollers.push_unique(cx.waker());
        match self.try_acquire() {
            true => Poll::Ready(MutexGuard { mutex: self }),
            false => Poll::Pending,
        }
    }

    /// Whether someone holds the lock right now.
    pub fn is_locked(&self) -> bool {
        self.locked.load(SeqCst)
    }

    /// Mutable access through a unique borrow: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    fn try_acquire(&self) -> bool {
        self.locked.compare_exchange(false, true, SeqCst, SeqCst).is_ok()
    }

    fn acquire(&self) {
        if self.try_acquire() {
            return;
        }
        loop {
            // Enlist first, then look again: an unlock after our look sees
            // the entry (both SeqCst), so a wake cannot be missed.
            let entry = my_waker().map(|w| self.waiters.push(w));
            if self.try_acquire() {
                if let Some(id) = entry
                    && !self.waiters.remove(id)
                {
                    // Our entry was popped for us: pass the wake on.
                    self.waiters.wake_one();
                }
                return;
            }
            park_or_yield(None);
            if let Some(id) = entry {
                self.waiters.remove(id);
            }
            if self.try_acquire() {
                return;
            }
        }
    }

    fn release(&self) {
        self.locked.store(false, SeqCst);
        self.waiters.wake_one();
        self.pollers.wake_all();
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(g) => f.debug_struct("Mutex").field("value", &&*g).finish(),
            None => f.debug_struct("Mutex").field("value", &"<locked>").finish(),
        }
    }
}

/// Access to a [`Mutex`]'s value; unlocks when dropped.
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
}

// SAFETY: a shared guard only gives `&T`, so it may be shared when `T` is.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Release the lock while `f` runs, then take it again.
    pub fn unlocked<R>(guard: &mut MutexGuard<'a, T>, f: impl FnOnce() -> R) -> R {
        guard.mutex.release();
        let r = f();
        guard.mutex.acquire();
        r
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its holder has the lock.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.release();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A condition variable for [`Mutex`], parking through [`park`].
///
/// ```
/// use std::sync::Arc;
/// use iopoll::sync::{Condvar, Mutex};
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let p = pair.clone();
/// std::thread::spawn(move || { *p.0.lock() = true; p.1.notify_all(); });
/// let mut ready = pair.0.lock();
/// while !*ready {
///     pair.1.wait(&mut ready);
/// }
/// ```
#[derive(Default)]
pub struct Condvar {
    waiters: WaitList,
}

impl Condvar {
    /// A new condition variable.
    pub fn new() -> Condvar {
        Condvar::default()
    }

    /// Unlock, wait for a notification, lock again. May wake spuriously.
    pub fn wait<T: ?Sized>(&self, guard: &mut MutexGuard<'_, T>) {
        self.wait_until(guard, None);
    }

    /// As [`wait`](Condvar::wait), but give up at `deadline`; returns true
    /// if the deadline has passed.
    pub fn wait_until<T: ?Sized>(&self, guard: &mut MutexGuard<'_, T>, deadline: Option<Instant>) -> bool {
        let entry = my_waker().map(|w| self.waiters.push(w));
        MutexGuard::unlocked(guard, || park_or_yield(deadline));
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        if let Some(id) = entry
            && !self.waiters.remove(id)
            && timed_out
        {
            // A `notify_one` chose us as we gave up: pass it on.
            self.waiters.wake_one();
        }
        timed_out
    }

    /// The `Waker` form of [`wait`](Condvar::wait): have `waker` woken by
    /// the next [`notify_all`](Condvar::notify_all) (a `notify_one` may
    /// choose it too). Enlisting the same task twice adds one entry.
    pub fn enlist(&self, waker: &Waker) {
        self.waiters.push_unique(waker);
    }

    /// Wake one waiter.
    pub fn notify_one(&self) {
        self.waiters.wake_one();
    }

    /// Wake every waiter.
    pub fn notify_all(&self) {
        self.waiters.wake_all();
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").field("waiters", &self.waiters.len.load(SeqCst)).finish()
    }
}

/// A value handed over once, from whoever produces it to whoever waits for
/// it (an answer from a helper thread, a green thread's result).
///
/// ```
/// use std::sync::Arc;
/// let slot = Arc::new(iopoll::sync::OneShot::new());
/// let s = slot.clone();
/// std::thread::spawn(move || s.put(42));
/// assert_eq!(slot.take(None), Some(42));
/// ```
pub struct OneShot<T> {
    value: Mutex<Option<T>>,
    ready: Condvar,
}

impl<T> OneShot<T> {
    /// An empty slot.
    pub fn new() -> OneShot<T> {
        OneShot { value: Mutex::new(None), ready: Condvar::new() }
    }

    /// Fill the slot (replacing any value not yet taken) and wake the waiters.
    pub fn put(&self, value: T) {
        *self.value.lock() = Some(value);
        self.ready.notify_all();
    }

    /// Whether a value is waiting to be taken.
    pub fn is_set(&self) -> bool {
        self.value.lock().is_some()
    }

    /// Wait for the value until `deadline` (`None`: as long as it takes)
    /// and take it; `None` if the deadline passed first.
    pub fn take(&self, deadline: Option<Instant>) -> Option<T> {
        let mut v = self.value.lock();
        loop {
            if let Some(value) = v.take() {
                return Some(value);
            }
            if self.ready.wait_until(&mut v, deadline) {
                return v.take();
            }
        }
    }
}

impl<T> Default for OneShot<T> {
    fn default() -> OneShot<T> {
        OneShot::new()
    }
}

impl<T> fmt::Debug for OneShot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneShot").field("set", &self.is_set()).finish()
    }
}
