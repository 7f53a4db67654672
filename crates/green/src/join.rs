//! `JoinHandle`: waiting for a green thread's result, from anywhere.

use std::fmt;
use std::sync::Arc;
use std::thread;

use iopoll::sync::OneShot;

/// Where a green thread's result waits for its joiner.
pub(crate) type Joined<T> = OneShot<thread::Result<T>>;

/// Owns the right to wait for a green thread's result; from
/// [`Pool::spawn`](crate::Pool::spawn) or [`spawn`](crate::spawn).
/// Dropping it detaches the green thread, which runs on.
pub struct JoinHandle<T> {
    result: Arc<Joined<T>>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(result: Arc<Joined<T>>) -> JoinHandle<T> {
        JoinHandle { result }
    }

    /// Wait for the green thread to finish and take its result; a panic
    /// comes back as `Err` with the panic's payload, as with
    /// [`std::thread::JoinHandle::join`]. From a green thread only the
    /// caller suspends; from an OS thread the thread parks.
    pub fn join(self) -> thread::Result<T> {
        loop {
            if let Some(r) = self.result.take(None) {
                return r;
            }
        }
    }

    /// Whether the green thread has finished (its result is waiting).
    pub fn is_finished(&self) -> bool {
        self.result.is_set()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("finished", &self.is_finished()).finish()
    }
}
