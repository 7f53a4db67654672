//! How green threads made runnable on other threads reach their worker,
//! and the wake-up that needs when the worker sleeps in its reactor.
//!
//! A worker's own run queue is touched by its thread alone (see `worker`);
//! anything woken elsewhere (a `Waker` called on another thread, a spawn
//! from outside) goes through an [`Inject`] list instead. The hand-over is
//! a Dekker pair: a pusher publishes its entry, then looks whether the
//! worker sleeps; a worker publishes that it is going to sleep, then looks
//! for entries. Each side's store comes before a `SeqCst` fence and its load
//! after, so at least one side sees the other: either the worker finds the
//! entry, or the pusher finds the worker asleep and wakes it. The atomics
//! are loom's under `--cfg loom`, and `loom_models` below checks this.
//!
//! # Locks
//! `list` guards the entries; it is held only to push or to take them all,
//! never across a wake-up.

#[cfg(loom)]
use loom::sync::Mutex;
#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, fence};
#[cfg(not(loom))]
use parking_lot::Mutex;
use std::sync::atomic::Ordering::SeqCst;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, fence};

/// Entries for one worker from other threads, and whether it sleeps.
pub(crate) struct Inject<T> {
    list: Mutex<Vec<T>>,
    /// `list` is not empty: set and cleared under its lock, read without it
    /// so the worker need not take the lock to find it empty.
    pending: AtomicBool,
    /// The worker is about to sleep, or sleeps, in its reactor.
    sleeping: AtomicBool,
}

impl<T> Inject<T> {
    pub(crate) fn new() -> Inject<T> {
        Inject { list: Mutex::new(Vec::new()), pending: AtomicBool::new(false), sleeping: AtomicBool::new(false) }
    }

    fn lock(&self) -> impl std::ops::DerefMut<Target = Vec<T>> + '_ {
        #[cfg(loom)]
        return self.list.lock().expect("not poisoned");
        #[cfg(not(loom))]
        self.list.lock()
    }

    /// From another thread: hand `entry` to the worker. True if the worker
    /// sleeps, or is about to, and must be woken to see it.
    pub(crate) fn push(&self, entry: T) -> bool {
        {
            let mut list = self.lock();
            list.push(entry);
            self.pending.store(true, SeqCst);
        }
        // Pairs with the fence in `going_to_sleep`.
        fence(SeqCst);
        self.sleeping.load(SeqCst)
    }

    /// Whether entries wait: after [`going_to_sleep`](Inject::going_to_sleep),
    /// the worker's last look before it sleeps.
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(SeqCst)
    }

    /// On the worker: hand every entry to `to`, oldest first.
    pub(crate) fn take(&self, mut to: impl FnMut(T)) {
        if !self.is_pending() {
            return;
        }
        let mut list = self.lock();
        self.pending.store(false, SeqCst);
        for entry in list.drain(..) {
            to(entry);
        }
    }

    /// On the worker, before its last look for work: a push from now on
    /// either is seen by that look or reports the worker asleep.
    pub(crate) fn going_to_sleep(&self) {
        self.sleeping.store(true, SeqCst);
        // Pairs with the fence in `push`.
        fence(SeqCst);
    }

    /// On the worker, once it runs again.
    pub(crate) fn awake(&self) {
        self.sleeping.store(false, SeqCst);
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};

    use super::*;

    /// A push racing the worker's last look before it sleeps: the worker
    /// finds the entry, or the pusher is told to wake it; never neither.
    #[test]
    fn loom_an_entry_is_seen_or_its_pusher_wakes_the_worker() {
        loom::model(|| {
            let inject = Arc::new(Inject::new());
            let woken = Arc::new(AtomicBool::new(false));
            let pusher = {
                let (inject, woken) = (inject.clone(), woken.clone());
                loom::thread::spawn(move || {
                    if inject.push(7u8) {
                        woken.store(true, SeqCst);
                    }
                })
            };
            inject.going_to_sleep();
            let slept = !inject.is_pending();
            pusher.join().expect("pusher");
            if slept {
                assert!(woken.load(SeqCst), "the worker slept and nobody woke it");
            }
            inject.awake();
            let mut got = Vec::new();
            inject.take(|e| got.push(e));
            assert_eq!(got, [7], "the entry reaches the worker exactly once");
        });
    }
}
