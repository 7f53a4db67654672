//! A deadline in one atomic word, so the hot path reads it without a lock.

use std::sync::atomic::Ordering::SeqCst;
use std::time::Instant;

use crate::clock;
use crate::primitive::AtomicU64;

/// `Option<Instant>` packed in a `u64`: 0 is "none", `n` is `n - 1`
/// nanoseconds after the clock's origin. A deadline at or before now has
/// expired, and stays expired until it is set again (Go's sticky expiry
/// falls out of time only moving forward).
#[derive(Debug)]
pub(crate) struct AtomicDeadline(AtomicU64);

pub(crate) const NONE: u64 = 0;

pub(crate) fn encode(d: Option<Instant>) -> u64 {
    d.map_or(NONE, |at| clock::nanos(at).saturating_add(1))
}

/// Whether deadline word `new` falls before `old` ("none" is infinitely late).
pub(crate) fn is_earlier(new: u64, old: u64) -> bool {
    new != NONE && (old == NONE || new < old)
}

impl Default for AtomicDeadline {
    fn default() -> AtomicDeadline {
        AtomicDeadline(AtomicU64::new(NONE))
    }
}

impl AtomicDeadline {
    /// Store a deadline and return the previous word.
    pub(crate) fn swap(&self, d: Option<Instant>) -> u64 {
        self.0.swap(encode(d), SeqCst)
    }

    pub(crate) fn word(&self) -> u64 {
        self.0.load(SeqCst)
    }

    /// Whether the deadline is set and has passed. Reads the clock only
    /// when a deadline is set.
    pub(crate) fn expired(&self) -> bool {
        let w = self.word();
        w != NONE && clock::nanos(Instant::now()) >= w - 1
    }

    /// The deadline as an instant.
    pub(crate) fn get(&self) -> Option<Instant> {
        decode(self.word())
    }
}

pub(crate) fn decode(w: u64) -> Option<Instant> {
    (w != NONE).then(|| clock::instant(w - 1))
}
