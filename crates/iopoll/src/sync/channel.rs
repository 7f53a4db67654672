//! Go's channel: bounded, many senders and many receivers, waits through
//! [`park`](crate::park) (see [`channel`]).
//!
//! The design is Go's (`runtime/chan.go`): one lock guards the buffer and
//! two queues of waiters, and a value passes *directly* between a sender
//! and a receiver whenever one of them is already waiting. A waiter enqueues
//! a [`Slot`] holding its `Waker` and its outcome; whoever takes it off the
//! queue fills in the outcome before waking it. So a value is always in
//! exactly one place (the caller, the buffer, a waiting sender's slot, a
//! receiver's slot), and a rendezvous `send` knows when its value was taken.
//!
//! Invariant, under the state lock: receivers wait only while the buffer is
//! empty and no sender waits; senders wait only while the buffer is full
//! (always, with bound 0) and no receiver waits.

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use super::{my_waker, park_or_yield};

/// A channel for green threads and OS threads alike, holding up to `bound`
/// values; with `bound` 0 every send is a rendezvous with a receiver, as with
/// Go's unbuffered channels. Both ends can be cloned (many senders, many
/// receivers; each value goes to one receiver).
///
/// [`Sender::send`] and [`Receiver::recv`] park the caller (the green thread
/// only, in a green thread) while the channel is full or empty. The channel
/// closes on [`Sender::close`], or when every `Sender` or every `Receiver`
/// has been dropped: closing wakes every waiter, senders get their values
/// back, and receivers take what is still buffered before they see
/// [`RecvError`].
///
/// ```
/// let (tx, rx) = iopoll::sync::channel(1);
/// let producer = std::thread::spawn(move || {
///     for i in 0..3 {
///         tx.send(i).unwrap();
///     }
///     // Dropping the last sender closes the channel.
/// });
/// assert_eq!(rx.recv(), Ok(0));
/// assert_eq!(rx.recv(), Ok(1));
/// assert_eq!(rx.recv(), Ok(2));
/// assert_eq!(rx.recv(), Err(iopoll::sync::RecvError));
/// producer.join().unwrap();
/// ```
pub fn channel<T: Send>(bound: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Channel {
        bound,
        state: parking_lot::Mutex::new(State {
            buffer: VecDeque::new(),
            closed: false,
            senders: 1,
            receivers: 1,
            waiting_senders: VecDeque::new(),
            waiting_receivers: VecDeque::new(),
        }),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

struct Channel<T> {
    bound: usize,
    state: parking_lot::Mutex<State<T>>,
}

struct State<T> {
    /// Values sent and not yet received: at most `bound`.
    buffer: VecDeque<T>,
    closed: bool,
    /// Live `Sender`s and `Receiver`s: the channel closes when either is 0.
    senders: usize,
    receivers: usize,
    /// Parked senders, each slot holding the value it offers; oldest first.
    waiting_senders: VecDeque<Arc<Slot<T>>>,
    /// Parked receivers, each slot empty until a value is handed to it.
    waiting_receivers: VecDeque<Arc<Slot<T>>>,
}

/// One parked caller: its `Waker` and what became of its wait.
struct Slot<T> {
    waker: Waker,
    outcome: parking_lot::Mutex<Outcome<T>>,
}

enum Outcome<T> {
    /// Still queued. A sender's slot holds the value it offers.
    Waiting(Option<T>),
    /// Taken off the queue by a counterpart: a receiver's slot holds the
    /// value handed to it; a sender's value was taken.
    Done(Option<T>),
    /// Taken off the queue by a close: a sender's slot holds its value,
    /// to be given back.
    Closed(Option<T>),
}

impl<T> Slot<T> {
    fn new(offer: Option<T>) -> Arc<Slot<T>> {
        // Where `park` cannot make a waker for the caller, nobody can wake
        // it: it looks again each time `park_or_yield` returns instead.
        let waker = my_waker().unwrap_or_else(|| Waker::noop().clone());
        Arc::new(Slot { waker, outcome: parking_lot::Mutex::new(Outcome::Waiting(offer)) })
    }

    /// Take the value a waiting sender offers, its slot just taken off the
    /// queue (under the state lock); the caller wakes it after the lock.
    fn take_offer(&self) -> T {
        match std::mem::replace(&mut *self.outcome.lock(), Outcome::Done(None)) {
            Outcome::Waiting(Some(value)) => value,
            _ => unreachable!("a queued sender's slot offers a value"),
        }
    }

    /// Settle a slot taken off its queue by a close (under the state lock):
    /// a sender's value stays in it, to be given back.
    fn close(&self) {
        let mut outcome = self.outcome.lock();
        if let Outcome::Waiting(offer) = std::mem::replace(&mut *outcome, Outcome::Done(None)) {
            *outcome = Outcome::Closed(offer);
        }
    }

    /// Hand `value` to this waiting receiver (under the state lock).
    fn deliver(&self, value: T) {
        *self.outcome.lock() = Outcome::Done(Some(value));
    }

    /// The outcome once the slot has been taken off its queue; `None`
    /// while it is still queued.
    fn settled(&self) -> Option<Outcome<T>> {
        let mut outcome = self.outcome.lock();
        match *outcome {
            Outcome::Waiting(_) => None,
            _ => Some(std::mem::replace(&mut *outcome, Outcome::Done(None))),
        }
    }
}

/// A parked counterpart, taken off its queue and settled: to be woken once
/// the state lock is released.
type ToWake<T> = Option<Arc<Slot<T>>>;

fn wake(to_wake: ToWake<impl Sized>) {
    if let Some(slot) = to_wake {
        slot.waker.wake_by_ref();
    }
}

/// Why a send or a receive cannot complete now.
#[derive(Clone, Copy)]
enum Blocked {
    /// It could after a wait: the buffer is full, or empty.
    Wait,
    Closed,
}

/// What a close does with the buffered values.
#[derive(Clone, Copy)]
enum Buffered {
    /// Leave them for the receivers to drain.
    Keep,
    /// Drop them: no receiver is left.
    Discard,
}

impl<T> Channel<T> {
    /// Close, and wake every waiter. With `Buffered::Discard` (no receiver
    /// is left) the buffered values are dropped too. Wakes and drops come
    /// after the lock is released.
    fn close(&self, buffered: Buffered) {
        let (senders, receivers, dropped) = {
            let mut state = self.state.lock();
            state.closed = true;
            let senders = std::mem::take(&mut state.waiting_senders);
            let receivers = std::mem::take(&mut state.waiting_receivers);
            for slot in senders.iter().chain(&receivers) {
                slot.close();
            }
            let dropped = match buffered {
                Buffered::Keep => VecDeque::new(),
                Buffered::Discard => std::mem::take(&mut state.buffer),
            };
            (senders, receivers, dropped)
        };
        for slot in senders.iter().chain(&receivers) {
            slot.waker.wake_by_ref();
        }
        drop(dropped);
    }

    /// Send without waiting; on success, the receiver to wake if one was
    /// waiting, and on failure the value back.
    fn try_send(&self, state: &mut State<T>, value: T) -> Result<ToWake<T>, (T, Blocked)> {
        if state.closed {
            return Err((value, Blocked::Closed));
        }
        if let Some(receiver) = state.waiting_receivers.pop_front() {
            receiver.deliver(value);
            return Ok(Some(receiver));
        }
        if state.buffer.len() < self.bound {
            state.buffer.push_back(value);
            return Ok(None);
        }
        Err((value, Blocked::Wait))
    }

    /// Receive without waiting: the value, and the sender to wake if one
    /// was waiting.
    fn try_recv(&self, state: &mut State<T>) -> Result<(T, ToWake<T>), Blocked> {
        if let Some(value) = state.buffer.pop_front() {
            // Room now: the oldest waiting sender's value joins the buffer.
            let sender = state.waiting_senders.pop_front();
            if let Some(s) = &sender {
                state.buffer.push_back(s.take_offer());
            }
            return Ok((value, sender));
        }
        if let Some(sender) = state.waiting_senders.pop_front() {
            // Bound 0: take the value straight from the sender.
            return Ok((sender.take_offer(), Some(sender)));
        }
        Err(if state.closed { Blocked::Closed } else { Blocked::Wait })
    }

    fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let slot = {
            let mut state = self.state.lock();
            match self.try_recv(&mut state) {
                Ok((value, sender)) => {
                    drop(state);
                    wake(sender);
                    return Ok(value);
                }
                Err(Blocked::Closed) => return Err(RecvTimeoutError::Closed),
                Err(Blocked::Wait) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    return Err(RecvTimeoutError::Timeout);
                }
                Err(Blocked::Wait) => {}
            }
            let slot = Slot::new(None);
            state.waiting_receivers.push_back(slot.clone());
            slot
        };
        loop {
            park_or_yield(deadline);
            if let Some(settled) = slot.settled() {
                return Self::received(settled);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // Give up, unless a sender or a close settled the slot
                // meanwhile: under the state lock, either it is still queued
                // (take it out) or it is settled (take the outcome).
                let mut state = self.state.lock();
                if let Some(settled) = slot.settled() {
                    return Self::received(settled);
                }
                state.waiting_receivers.retain(|s| !Arc::ptr_eq(s, &slot));
                return Err(RecvTimeoutError::Timeout);
            }
        }
    }

    fn received(settled: Outcome<T>) -> Result<T, RecvTimeoutError> {
        match settled {
            Outcome::Done(Some(value)) => Ok(value),
            Outcome::Closed(_) => Err(RecvTimeoutError::Closed),
            _ => unreachable!("a receiver's slot is settled with a value or by a close"),
        }
    }

    fn send(&self, value: T) -> Result<(), SendError<T>> {
        let slot = {
            let mut state = self.state.lock();
            let value = match self.try_send(&mut state, value) {
                Ok(receiver) => {
                    drop(state);
                    wake(receiver);
                    return Ok(());
                }
                Err((value, Blocked::Closed)) => return Err(SendError(value)),
                Err((value, Blocked::Wait)) => value,
            };
            let slot = Slot::new(Some(value));
            state.waiting_senders.push_back(slot.clone());
            slot
        };
        // Sends never time out, so the slot stays queued until a receiver
        // or a close settles it.
        loop {
            park_or_yield(None);
            match slot.settled() {
                None => continue,
                Some(Outcome::Closed(Some(value))) => return Err(SendError(value)),
                Some(_) => return Ok(()),
            }
        }
    }
}

/// The sending end of a [`channel`]; clone it for more senders.
pub struct Sender<T> {
    chan: Arc<Channel<T>>,
}

impl<T: Send> Sender<T> {
    /// Send `value`, parking while the channel is full; with bound 0, until
    /// a receiver has taken it. `Err` gives the value back if the channel is
    /// closed, or closes before a receiver takes it.
    ///
    /// ```
    /// let (tx, rx) = iopoll::sync::channel(0);
    /// let receiver = std::thread::spawn(move || rx.recv());
    /// tx.send("hi").unwrap(); // returns once the receiver has it
    /// assert_eq!(receiver.join().unwrap(), Ok("hi"));
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan.send(value)
    }

    /// Send `value` if that needs no wait: there is room in the buffer, or
    /// (bound 0) a receiver is waiting.
    ///
    /// ```
    /// use iopoll::sync::{channel, TrySendError};
    /// let (tx, rx) = channel(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut state = self.chan.state.lock();
        match self.chan.try_send(&mut state, value) {
            Ok(receiver) => {
                drop(state);
                wake(receiver);
                Ok(())
            }
            Err((value, Blocked::Closed)) => Err(TrySendError::Closed(value)),
            Err((value, Blocked::Wait)) => Err(TrySendError::Full(value)),
        }
    }

    /// Close the channel, for every sender and receiver: parked senders get
    /// their values back, receivers take what is buffered and then get
    /// [`RecvError`]. Closing a closed channel does nothing.
    ///
    /// ```
    /// let (tx, rx) = iopoll::sync::channel(2);
    /// tx.send(1).unwrap();
    /// tx.close();
    /// assert!(tx.send(2).is_err());
    /// assert_eq!(rx.recv(), Ok(1));
    /// assert!(rx.recv().is_err());
    /// ```
    pub fn close(&self) {
        self.chan.close(Buffered::Keep);
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.chan.state.lock().senders += 1;
        Sender { chan: self.chan.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let last = {
            let mut state = self.chan.state.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            // Receivers may still drain the buffer.
            self.chan.close(Buffered::Keep);
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// The receiving end of a [`channel`]; clone it for more receivers (each
/// value goes to one of them).
pub struct Receiver<T> {
    chan: Arc<Channel<T>>,
}

impl<T: Send> Receiver<T> {
    /// The next value, parking while the channel is empty; `Err` once the
    /// channel is closed and its buffer drained.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv(None).map_err(|_| RecvError)
    }

    /// As [`recv`](Receiver::recv), but give up at `at`. A value ready now
    /// is taken even if `at` has passed. After a timeout the receiver may
    /// simply try again.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use iopoll::sync::{channel, RecvTimeoutError};
    /// let (tx, rx) = channel::<u32>(1);
    /// let soon = Instant::now() + Duration::from_millis(10);
    /// assert_eq!(rx.recv_deadline(soon), Err(RecvTimeoutError::Timeout));
    /// tx.send(7).unwrap();
    /// assert_eq!(rx.recv_deadline(soon), Ok(7));
    /// ```
    pub fn recv_deadline(&self, at: Instant) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Some(at))
    }

    /// The next value if one is ready: buffered, or (bound 0) offered by a
    /// waiting sender.
    ///
    /// ```
    /// use iopoll::sync::{channel, TryRecvError};
    /// let (tx, rx) = channel(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut state = self.chan.state.lock();
        match self.chan.try_recv(&mut state) {
            Ok((value, sender)) => {
                drop(state);
                wake(sender);
                Ok(value)
            }
            Err(Blocked::Closed) => Err(TryRecvError::Closed),
            Err(Blocked::Wait) => Err(TryRecvError::Empty),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Receiver<T> {
        self.chan.state.lock().receivers += 1;
        Receiver { chan: self.chan.clone() }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let last = {
            let mut state = self.chan.state.lock();
            state.receivers -= 1;
            state.receivers == 0
        };
        if last {
            // Nobody can receive the buffered values any more: drop them now
            // rather than with the last sender.
            self.chan.close(Buffered::Discard);
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// [`Sender::send`] on a closed channel; the value comes back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError").finish_non_exhaustive()
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}

impl<T> Error for SendError<T> {}

/// Why [`Sender::try_send`] failed; the value comes back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The buffer is full (with bound 0: no receiver is waiting).
    Full(T),
    /// The channel is closed.
    Closed(T),
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}

impl<T> Error for TrySendError<T> {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(SendError(value): SendError<T>) -> TrySendError<T> {
        TrySendError::Closed(value)
    }
}

/// [`Receiver::recv`] on a channel closed and drained.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed channel")
    }
}

impl Error for RecvError {}

/// Why [`Receiver::recv_deadline`] returned no value.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvTimeoutError {
    /// The deadline passed with the channel empty.
    Timeout,
    /// The channel is closed and drained.
    Closed,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting on channel"),
            RecvTimeoutError::Closed => f.write_str("channel is empty and closed"),
        }
    }
}

impl Error for RecvTimeoutError {}

impl From<RecvError> for RecvTimeoutError {
    fn from(RecvError: RecvError) -> RecvTimeoutError {
        RecvTimeoutError::Closed
    }
}

/// Why [`Receiver::try_recv`] returned no value.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// No value is ready.
    Empty,
    /// The channel is closed and drained.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Closed => f.write_str("receiving on an empty and closed channel"),
        }
    }
}

impl Error for TryRecvError {}

impl From<RecvError> for TryRecvError {
    fn from(RecvError: RecvError) -> TryRecvError {
        TryRecvError::Closed
    }
}
