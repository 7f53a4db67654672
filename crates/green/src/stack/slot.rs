//! The lock-free state of one stack slot: the protocol between the worker
//! that owns the slot and the fault handler of any thread that touches its
//! stack while it is compacted.
//!
//! ```text
//!   FREE ──commit──► HOT ──begin_compact──► COMPACTING ──finish_compact──► COMPACTED
//!    ▲               │ ▲                        │ abort                      │ claim (one winner)
//!    └────freed──────┘ └──────────────◄─────────┘                            ▼
//!                      ▲                                                 RESTORING
//!                      └───────────────finish_restore─────────────────────┘
//! ```
//!
//! Only the owner moves a slot out of `FREE` and `HOT`, and into
//! `COMPACTING` and `COMPACTED`. Anyone may claim a `COMPACTED` slot (one
//! compare-and-swap decides who); the winner copies the frames back and
//! makes it `HOT`. The heap copy of the frames stays until the owner takes
//! it back once the slot is hot: a fault handler cannot free memory. The
//! atomics are loom's under `--cfg loom`, and `loom_models` below checks
//! the hand-over between an owner and faulting threads.

#[cfg(loom)]
use loom::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize};

/// No stack in it; inaccessible.
const FREE: u8 = 0;
/// Accessible: running, queued, or parked and not compacted.
const HOT: u8 = 1;
/// The owner is copying the frames out; the stack is read-only.
const COMPACTING: u8 = 2;
/// Frames on the heap; the stack is inaccessible.
const COMPACTED: u8 = 3;
/// Someone is copying the frames back.
const RESTORING: u8 = 4;

/// What a claim on a slot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Claim {
    /// The caller must copy the frames back, then `finish_restore` (or
    /// `abandon_restore`).
    Won,
    /// Being compacted or restored by someone else: look again.
    Wait,
    /// Accessible.
    Hot,
    /// Holds no stack.
    Free,
}

#[derive(Debug)]
pub(super) struct SlotState {
    state: AtomicU8,
    saved: AtomicPtr<u8>,
    saved_len: AtomicUsize,
}

impl SlotState {
    pub(super) fn new() -> SlotState {
        SlotState {
            state: AtomicU8::new(FREE),
            saved: AtomicPtr::new(std::ptr::null_mut()),
            saved_len: AtomicUsize::new(0),
        }
    }

    pub(super) fn is_hot(&self) -> bool {
        self.state.load(Acquire) == HOT
    }

    pub(super) fn is_free(&self) -> bool {
        self.state.load(Acquire) == FREE
    }

    /// The owner made the stack accessible.
    pub(super) fn committed(&self) {
        self.state.store(HOT, Release);
    }

    /// The owner dropped the stack's pages; the slot holds nothing.
    pub(super) fn freed(&self) {
        self.state.store(FREE, Release);
    }

    /// The owner is about to make the stack read-only and copy it out.
    pub(super) fn begin_compact(&self) {
        debug_assert_eq!(self.state.load(Acquire), HOT);
        self.state.store(COMPACTING, Release);
    }

    /// The owner gave up compacting; the stack is accessible again.
    pub(super) fn abort_compact(&self) {
        self.state.store(HOT, Release);
    }

    /// The owner copied the frames to `saved` and made the stack
    /// inaccessible: publish the copy, then the state.
    pub(super) fn finish_compact(&self, saved: Box<[u8]>) -> usize {
        let len = saved.len();
        self.saved_len.store(len, Release);
        self.saved.store(Box::into_raw(saved).cast(), Release);
        self.state.store(COMPACTED, Release);
        len
    }

    /// Try to become the one who restores a compacted slot.
    pub(super) fn claim(&self) -> Claim {
        match self.state.compare_exchange(COMPACTED, RESTORING, AcqRel, Acquire) {
            Ok(_) => Claim::Won,
            Err(HOT) => Claim::Hot,
            Err(FREE) => Claim::Free,
            Err(_) => Claim::Wait,
        }
    }

    /// The saved frames, for the winner of a claim: their address and length.
    pub(super) fn saved(&self) -> (*const u8, usize) {
        (self.saved.load(Acquire), self.saved_len.load(Acquire))
    }

    /// The winner copied the frames back: the slot is hot.
    pub(super) fn finish_restore(&self) {
        self.state.store(HOT, Release);
    }

    /// The winner could not make the stack accessible: still compacted.
    pub(super) fn abandon_restore(&self) {
        self.state.store(COMPACTED, Release);
    }

    /// The owner takes the heap copy back once the slot is hot again.
    pub(super) fn take_saved(&self) -> Option<Box<[u8]>> {
        debug_assert!(self.state.load(Acquire) != COMPACTED && self.state.load(Acquire) != RESTORING);
        let p = self.saved.swap(std::ptr::null_mut(), AcqRel);
        if p.is_null() {
            return None;
        }
        let len = self.saved_len.load(Acquire);
        // SAFETY: `p` came from `Box::into_raw` of a `[u8]` of `len` in
        // `finish_compact`; the swap made us its only owner, and the slot is
        // not compacted, so no one claims it and reads it any more.
        Some(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, len)) })
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};

    use super::*;

    /// Claim and restore as a fault handler or the owner does; `stack` is
    /// the stack's memory, `freed` says whether the owner took the copy back.
    fn settle(slot: &SlotState, stack: &UnsafeCell<u8>, freed: &AtomicBool) {
        loop {
            match slot.claim() {
                Claim::Won => {
                    assert!(!freed.load(SeqCst), "the saved frames were freed before their restore");
                    let (p, len) = slot.saved();
                    assert_eq!(len, 1);
                    // SAFETY: the winner of the claim reads the live copy.
                    let byte = unsafe { *p };
                    stack.with_mut(|s| {
                        // SAFETY: only the winner writes while RESTORING.
                        unsafe { *s = byte }
                    });
                    slot.finish_restore();
                    return;
                }
                Claim::Wait => loom::thread::yield_now(),
                Claim::Hot => return,
                Claim::Free => panic!("a compacted slot became free"),
            }
        }
    }

    /// A compacted slot touched by another thread (its fault handler) while
    /// its owner resumes it: exactly one of the two restores it, the other
    /// sees it hot after the restore (no torn or concurrent copy), and the
    /// owner frees the copy once, never while the restorer reads it.
    #[test]
    fn loom_one_restore_between_the_owner_and_a_faulting_thread() {
        loom::model(|| {
            let slot = Arc::new(SlotState::new());
            let stack = Arc::new(UnsafeCell::new(7u8));
            let freed = Arc::new(AtomicBool::new(false));
            slot.committed();
            slot.begin_compact();
            // The other thread faults from here on (a write to a read-only,
            // then an inaccessible stack) and settles the slot.
            let touchers: Vec<_> = (0..1)
                .map(|_| {
                    let (slot, stack, freed) = (slot.clone(), stack.clone(), freed.clone());
                    loom::thread::spawn(move || {
                        settle(&slot, &stack, &freed);
                        // The access the fault interrupted: a read.
                        // SAFETY: hot; writers are done (restores happen-before HOT).
                        assert_eq!(stack.with(|s| unsafe { *s }), 7);
                    })
                })
                .collect();
            // The owner copies the frames out and drops the pages.
            // SAFETY: the toucher waits while COMPACTING.
            let copy = stack.with(|s| unsafe { *s });
            stack.with_mut(|s| {
                // SAFETY: as above.
                unsafe { *s = 0 }
            });
            slot.finish_compact(vec![copy].into_boxed_slice());
            // The owner resumes its green thread, and frees the copy at once.
            settle(&slot, &stack, &freed);
            assert!(slot.is_hot());
            let copy = slot.take_saved();
            freed.store(true, SeqCst);
            assert_eq!(copy.as_deref(), Some(&[7u8][..]));
            assert!(slot.take_saved().is_none(), "the copy is taken once");
            // SAFETY: hot, as above.
            assert_eq!(stack.with(|s| unsafe { *s }), 7);
            for t in touchers {
                t.join().unwrap();
            }
        });
    }
}
