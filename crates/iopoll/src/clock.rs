//! The reactor's clock: monotonic [`Instant`]s as plain integers.
//!
//! Deadlines live in atomics and timers in wheel slots, so both need an
//! integer form of an `Instant`. Everything is measured from one
//! process-wide origin taken the first time the clock is read.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

const NANOS_PER_TICK: u64 = 1_000_000;

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Nanoseconds from the origin to `at`; instants before the origin read as 0,
/// and the far future saturates (about 584 years out).
pub(crate) fn nanos(at: Instant) -> u64 {
    let n = at.saturating_duration_since(origin()).as_nanos();
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The instant `nanos` after the origin.
pub(crate) fn instant(nanos: u64) -> Instant {
    let d = Duration::from_nanos(nanos);
    origin().checked_add(d).unwrap_or_else(|| origin() + Duration::from_secs(u32::MAX as u64))
}

/// The first tick that begins at or after `at`. A timer fired once the wheel
/// has reached this tick can never fire before `at`.
pub(crate) fn tick_ceil(at: Instant) -> u64 {
    nanos(at).div_ceil(NANOS_PER_TICK)
}

/// The tick `now` falls in: every tick up to and including it has begun.
pub(crate) fn tick_floor(now: Instant) -> u64 {
    nanos(now) / NANOS_PER_TICK
}

/// The instant tick `t` begins.
pub(crate) fn tick_instant(t: u64) -> Instant {
    instant(t.saturating_mul(NANOS_PER_TICK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_never_precedes_the_instant() {
        // Instants before the origin all read as the origin; start after it.
        let _ = tick_floor(Instant::now());
        let now = Instant::now();
        for offset_ns in [0u64, 1, 999_999, 1_000_000, 1_000_001, 123_456_789] {
            let at = now + Duration::from_nanos(offset_ns);
            assert!(tick_instant(tick_ceil(at)) >= at, "offset {offset_ns}");
            assert!(tick_instant(tick_floor(at)) <= at, "offset {offset_ns}");
        }
    }

    #[test]
    fn far_future_saturates_without_panicking() {
        let far = Instant::now() + Duration::from_secs(400 * 365 * 86_400);
        assert!(tick_ceil(far) > tick_ceil(Instant::now()));
    }
}
