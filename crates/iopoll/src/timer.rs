//! Handles to armed timers.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::runtime::Driver;
use crate::wheel::Key;

/// A callback armed in a runtime's timing wheel by
/// [`Runtime::timer_at`](crate::Runtime::timer_at).
///
/// Dropping the handle leaves the timer armed; keep it to cancel or move it.
///
/// ```
/// use std::sync::mpsc;
/// use std::time::{Duration, Instant};
/// let rt = iopoll::Runtime::new()?;
/// let (tx, rx) = mpsc::channel();
/// let timer = rt.timer_at(Instant::now() + Duration::from_secs(3600), move || tx.send(()).unwrap());
/// assert!(timer.reset(Instant::now()));   // due now instead
/// rt.turn(Some(Duration::from_secs(1)))?;
/// rx.try_recv().expect("fired");
/// assert!(!timer.cancel());               // too late: it fired
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Timer {
    driver: Arc<Driver>,
    key: Key,
}

impl Timer {
    pub(crate) fn new(driver: Arc<Driver>, key: Key) -> Timer {
        Timer { driver, key }
    }

    /// Disarm the timer. True if it had not fired (its callback is dropped
    /// unrun); false if it had already fired or been cancelled.
    pub fn cancel(&self) -> bool {
        self.driver.cancel_timer(self.key)
    }

    /// Move the timer to `at`. False if it had already fired or been
    /// cancelled, in which case nothing is armed.
    pub fn reset(&self, at: Instant) -> bool {
        self.driver.reset_timer(self.key, at)
    }

    /// Whether the timer is on `driver`'s wheel.
    pub(crate) fn is_on(&self, driver: &Arc<Driver>) -> bool {
        Arc::ptr_eq(&self.driver, driver)
    }

    /// Whether the timer is still armed.
    pub fn is_armed(&self) -> bool {
        self.driver.timer_armed(self.key)
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer").field("armed", &self.is_armed()).finish()
    }
}
