//! `Waker`s for tests of the `poll_*` APIs: each wake-up is reported on a
//! channel, so a test waits for it instead of sleeping.

use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use crate::PATIENCE;

/// A `Waker` that sends one message per wake-up, then runs a hook (an
/// embedded reactor's `wake`, so that a `turn` in progress returns).
struct ChannelWaker {
    tx: mpsc::SyncSender<()>,
    then: Box<dyn Fn() + Send + Sync>,
}

impl Wake for ChannelWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Full means a wake-up is already waiting to be seen.
        let _ = self.tx.try_send(());
        (self.then)();
    }
}

/// A `Waker` and the channel its wake-ups arrive on.
pub fn channel_waker() -> (Waker, mpsc::Receiver<()>) {
    channel_waker_then(|| {})
}

/// As [`channel_waker`], and each wake-up also runs `then`.
pub fn channel_waker_then(then: impl Fn() + Send + Sync + 'static) -> (Waker, mpsc::Receiver<()>) {
    let (tx, rx) = mpsc::sync_channel(64);
    (Waker::from(Arc::new(ChannelWaker { tx, then: Box::new(then) })), rx)
}

/// Discard the wake-ups received so far.
pub fn drain(rx: &mpsc::Receiver<()>) {
    while rx.try_recv().is_ok() {}
}

/// Poll `f` until it is ready, waiting for a wake-up between polls; panics
/// if none comes within [`PATIENCE`] (a lost wake-up).
pub fn drive<T>(woken: &mpsc::Receiver<()>, mut f: impl FnMut() -> Poll<T>) -> T {
    loop {
        if let Poll::Ready(v) = f() {
            return v;
        }
        woken.recv_timeout(PATIENCE).expect("pending, and never woken");
    }
}

/// Poll `f` with `waker` until it is ready, calling `turn` (an embedded
/// reactor's `turn`, which returns once something woke) while no wake-up
/// has arrived; panics if the whole run takes over [`PATIENCE`].
pub fn drive_loop<T>(
    waker: &Waker,
    woken: &mpsc::Receiver<()>,
    mut turn: impl FnMut(),
    mut f: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> T {
    let give_up = Instant::now() + PATIENCE;
    let mut cx = Context::from_waker(waker);
    loop {
        drain(woken);
        if let Poll::Ready(v) = f(&mut cx) {
            return v;
        }
        while woken.try_recv().is_err() {
            assert!(Instant::now() < give_up, "pending, and never woken");
            turn();
        }
    }
}
