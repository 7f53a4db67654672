//! The wake-up line of a thread parked on a socket.
//!
//! A blocking waiter sleeps in the kernel on its socket and on its thread's
//! wake-up descriptor (an eventfd on Linux, a pipe elsewhere: `sys::WakeFd`).
//! Readiness needs nobody's help (the kernel watches the socket); the
//! wake-up descriptor is how another thread makes it look again: a deadline
//! moved earlier, a close, or a lock or condition it waits for (see `park`).
//! One per thread, created on first use, closed when the thread exits.

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::task::Wake;

use crate::sys;

/// One thread's wake-up descriptor.
#[derive(Debug)]
pub(crate) struct Signal {
    fd: sys::WakeFd,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Signal>>> = const { RefCell::new(None) };
}

impl Signal {
    /// The calling thread's signal.
    pub(crate) fn current() -> io::Result<Arc<Signal>> {
        let fresh = || Ok(Arc::new(Signal { fd: sys::WakeFd::new()? }));
        CURRENT
            .try_with(|slot| {
                let mut slot = slot.borrow_mut();
                if let Some(s) = &*slot {
                    return Ok(s.clone());
                }
                let s: Arc<Signal> = fresh()?;
                *slot = Some(s.clone());
                Ok(s)
            })
            // The thread is exiting and its slot is gone: use a throwaway one.
            .unwrap_or_else(|_| fresh())
    }

    /// Make the owner's current or next wait return.
    pub(crate) fn notify(&self) {
        self.fd.notify();
    }

    /// Consume pending notifications.
    pub(crate) fn clear(&self) {
        self.fd.clear();
    }

    pub(crate) fn fd(&self) -> &OwnedFd {
        self.fd.fd()
    }
}

/// A thread's `Waker`: waking writes its wake-up descriptor.
impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.notify();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.notify();
    }
}
