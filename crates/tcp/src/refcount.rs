//! `RefCount`: the reference count and closed bit of Go's `fdMutex`, the
//! rule that makes closing a socket safe against calls in flight. Every
//! operation holds a reference while it uses the fd number; the open
//! descriptor holds one more, which `close` gives up; whoever drops the
//! last reference releases the fd number, exactly once. Model-checked:
//! see `loom_models` below (`make loom`).

use std::sync::atomic::Ordering::{AcqRel, Acquire};

#[cfg(not(loom))]
use std::sync::atomic::AtomicUsize;

#[cfg(loom)]
use loom::sync::atomic::AtomicUsize;

const CLOSED: usize = 1;
const REF: usize = 2;

/// The `CLOSED` bit plus `REF` per reference.
#[derive(Debug)]
pub(crate) struct RefCount(AtomicUsize);

/// What a call that dropped a reference must do next.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Last {
    /// Others still hold references (or the descriptor is still open).
    No,
    /// That was the last reference: release the fd number now.
    Release,
}

impl RefCount {
    /// An open descriptor's count: its own reference.
    pub(crate) fn new() -> RefCount {
        RefCount(AtomicUsize::new(REF))
    }

    /// Whether `close` has not begun.
    pub(crate) fn is_open(&self) -> bool {
        self.0.load(Acquire) & CLOSED == 0
    }

    /// Take a reference; false once closing has begun.
    ///
    /// A compare-and-swap, never an add-then-undo: once `CLOSED` is set the
    /// count must only fall. Bumping it and dropping it again would, after
    /// the last reference is gone, take it from zero back to zero and
    /// release (`close(2)`) the fd number a second time, closing whatever
    /// descriptor has reused it since.
    pub(crate) fn incref(&self) -> bool {
        let mut cur = self.0.load(Acquire);
        loop {
            if cur & CLOSED != 0 {
                return false;
            }
            match self.0.compare_exchange_weak(cur, cur + REF, AcqRel, Acquire) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Drop a reference taken with `incref`.
    pub(crate) fn decref(&self) -> Last {
        let old = self.0.fetch_sub(REF, AcqRel);
        // The last one is only possible once closed, since the open
        // descriptor holds one until `close` drops it.
        if old & !CLOSED == REF { Last::Release } else { Last::No }
    }

    /// Begin closing: no reference is taken from now on. True for the
    /// first call only, which then owes the descriptor's own `decref`.
    pub(crate) fn close(&self) -> bool {
        self.0.fetch_or(CLOSED, AcqRel) & CLOSED == 0
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use std::sync::atomic::Ordering::SeqCst;

    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize;

    use super::{Last, RefCount};

    /// Two operations race a close (and a second close): the fd number is
    /// released exactly once, never while an operation holds a reference,
    /// and no reference is taken after closing began.
    #[test]
    fn loom_the_last_reference_releases_exactly_once() {
        loom::model(|| {
            let rc = Arc::new(RefCount::new());
            let released = Arc::new(AtomicUsize::new(0));
            let ops: Vec<_> = (0..2)
                .map(|_| {
                    let (rc, released) = (rc.clone(), released.clone());
                    loom::thread::spawn(move || {
                        if rc.incref() {
                            assert_eq!(released.load(SeqCst), 0, "used after release");
                            if rc.decref() == Last::Release {
                                released.fetch_add(1, SeqCst);
                            }
                        }
                    })
                })
                .collect();
            assert!(rc.close(), "the first close");
            if rc.decref() == Last::Release {
                released.fetch_add(1, SeqCst);
            }
            assert!(!rc.close(), "a second close owes nothing");
            assert!(!rc.incref(), "a reference after close");
            for op in ops {
                op.join().unwrap();
            }
            assert_eq!(released.load(SeqCst), 1);
        });
    }
}
