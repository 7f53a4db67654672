//! `iopoll::sync::channel` on OS threads: every value received exactly
//! once, rendezvous, close and drop semantics, deadlines, the `try_` forms
//! and the error types. Green threads: `crates/green/tests/channel.rs`.
//!
//! Tests that need a thread to be parked in `send` or `recv` before they act
//! watch it reach `ppoll` (`testkit::spawn_parked`): Linux only.

use std::collections::HashSet;
use std::error::Error;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use iopoll::sync::{Receiver, RecvError, RecvTimeoutError, SendError, Sender, TryRecvError, TrySendError, channel};
#[cfg(target_os = "linux")]
use testkit::PATIENCE;
use testkit::soon;

/// `senders` threads each send `per_sender` distinct values; `receivers`
/// threads receive until the channel closes. Every value arrives once.
fn every_value_once(bound: usize, senders: usize, receivers: usize, per_sender: usize) {
    let (tx, rx) = channel::<usize>(bound);
    let receiving: Vec<_> = (0..receivers)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(v) = rx.recv() {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    drop(rx);
    let sending: Vec<_> = (0..senders)
        .map(|s| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..per_sender {
                    tx.send(s * per_sender + i).unwrap();
                }
            })
        })
        .collect();
    // The senders' clones are the last: the channel closes as they finish.
    drop(tx);
    for h in sending {
        h.join().unwrap();
    }
    let mut seen = vec![0u32; senders * per_sender];
    for h in receiving {
        for v in h.join().unwrap() {
            seen[v] += 1;
        }
    }
    let wrong: Vec<_> = seen.iter().enumerate().filter(|(_, n)| **n != 1).collect();
    assert!(wrong.is_empty(), "bound {bound}: values received other than once: {wrong:?}");
}

#[test]
fn many_senders_and_receivers_get_every_value_exactly_once() {
    for bound in [0, 1, 7, 1024] {
        every_value_once(bound, 4, 4, 5_000);
    }
}

#[test]
fn one_receiver_gets_one_senders_values_in_order() {
    for bound in [0, 3] {
        let (tx, rx) = channel(bound);
        let h = thread::spawn(move || (0..10_000).try_for_each(|i| tx.send(i)));
        for want in 0..10_000 {
            assert_eq!(rx.recv(), Ok(want));
        }
        h.join().unwrap().unwrap();
        assert_eq!(rx.recv(), Err(RecvError));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_rendezvous_send_returns_only_once_a_receiver_has_the_value() {
    let (tx, rx) = channel(0);
    let sent = testkit::spawn_parked(move || tx.send("v"));
    // Parked in `send`: it has not returned, and nothing is buffered for
    // it to have returned after.
    assert!(sent.try_recv().is_err());
    assert_eq!(rx.recv(), Ok("v"));
    let (result, _) = sent.recv_timeout(PATIENCE).expect("the send never returned");
    assert_eq!(result, Ok(()));
}

#[cfg(target_os = "linux")]
#[test]
fn a_rendezvous_try_send_succeeds_only_while_a_receiver_waits() {
    let (tx, rx) = channel(0);
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    let received = testkit::spawn_parked(move || rx.recv());
    assert_eq!(tx.try_send(2), Ok(()));
    assert_eq!(received.recv_timeout(PATIENCE).unwrap().0, Ok(2));
}

#[cfg(target_os = "linux")]
#[test]
fn a_rendezvous_try_recv_takes_from_a_waiting_sender() {
    let (tx, rx) = channel(0);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let sent = testkit::spawn_parked(move || tx.send(3));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(sent.recv_timeout(PATIENCE).unwrap().0, Ok(()));
}

#[cfg(target_os = "linux")]
#[test]
fn closing_gives_a_parked_rendezvous_sender_its_value_back() {
    let (tx, rx) = channel(0);
    let closer = tx.clone();
    let sent = testkit::spawn_parked(move || tx.send(String::from("mine")));
    closer.close();
    let (result, _) = sent.recv_timeout(PATIENCE).expect("close did not wake the sender");
    assert_eq!(result, Err(SendError(String::from("mine"))));
    // The value went back, not into the channel.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[cfg(target_os = "linux")]
#[test]
fn closing_wakes_every_parked_sender_and_receiver() {
    // Senders parked on a full channel, receivers parked on an empty one.
    let (full_tx, full_rx) = channel(1);
    full_tx.send(0).unwrap();
    let senders: Vec<_> = (1..=3)
        .map(|i| {
            let tx = full_tx.clone();
            testkit::spawn_parked(move || tx.send(i))
        })
        .collect();
    let (empty_tx, empty_rx) = channel::<u32>(1);
    let receivers: Vec<_> = (0..3)
        .map(|_| {
            let rx = empty_rx.clone();
            testkit::spawn_parked(move || rx.recv_deadline(soon()))
        })
        .collect();

    full_tx.close();
    empty_tx.close();
    let mut back: Vec<u32> = senders
        .into_iter()
        .map(|s| match s.recv_timeout(PATIENCE).expect("close did not wake a sender").0 {
            Err(SendError(v)) => v,
            Ok(()) => panic!("a send succeeded on a closed channel"),
        })
        .collect();
    back.sort();
    assert_eq!(back, [1, 2, 3], "each parked sender gets its own value back");
    for r in receivers {
        let (result, _) = r.recv_timeout(PATIENCE).expect("close did not wake a receiver");
        assert_eq!(result, Err(RecvTimeoutError::Closed));
    }
    // The value buffered before the close is still there, once.
    assert_eq!(full_rx.recv(), Ok(0));
    assert_eq!(full_rx.recv(), Err(RecvError));
}

#[test]
fn receivers_drain_what_is_buffered_after_a_close() {
    let (tx, rx) = channel(3);
    for i in 1..=3 {
        tx.send(i).unwrap();
    }
    tx.close();
    tx.close(); // again: nothing changes
    assert_eq!(tx.send(4), Err(SendError(4)));
    assert_eq!(tx.try_send(5), Err(TrySendError::Closed(5)));
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.recv_deadline(Instant::now()), Ok(3));
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(rx.recv_deadline(soon()), Err(RecvTimeoutError::Closed));
}

#[test]
fn dropping_every_sender_closes_the_channel() {
    let (tx, rx) = channel(2);
    let other = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    // One sender is left: still open.
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let receiver = thread::spawn(move || (rx.recv(), rx.recv()));
    other.send(2).unwrap();
    drop(other);
    // Whether the receiver was parked or not, it gets 2 and then the close.
    assert_eq!(receiver.join().unwrap(), (Ok(2), Err(RecvError)));
}

#[cfg(target_os = "linux")]
#[test]
fn dropping_the_last_sender_wakes_a_parked_receiver() {
    let (tx, rx) = channel::<u8>(0);
    let received = testkit::spawn_parked(move || rx.recv());
    drop(tx);
    assert_eq!(received.recv_timeout(PATIENCE).expect("the drop did not wake it").0, Err(RecvError));
}

#[cfg(target_os = "linux")]
#[test]
fn dropping_every_receiver_closes_and_wakes_a_parked_sender() {
    let (tx, rx) = channel(1);
    let other = rx.clone();
    tx.send(1).unwrap();
    let sender = tx.clone();
    let sent = testkit::spawn_parked(move || sender.send(2));
    drop(rx);
    // One receiver is left: the sender stays parked, and gets through.
    assert_eq!(other.recv(), Ok(1));
    assert_eq!(sent.recv_timeout(PATIENCE).unwrap().0, Ok(()));
    let sender = tx.clone();
    let sent = testkit::spawn_parked(move || sender.send(3));
    drop(other);
    assert_eq!(sent.recv_timeout(PATIENCE).expect("the drop did not wake it").0, Err(SendError(3)));
    assert_eq!(tx.try_send(4), Err(TrySendError::Closed(4)));
}

#[test]
fn dropping_every_receiver_drops_the_buffered_values() {
    let value = Arc::new(());
    let (tx, rx) = channel(4);
    for _ in 0..4 {
        tx.send(value.clone()).unwrap();
    }
    assert_eq!(Arc::strong_count(&value), 5);
    drop(rx);
    // With the sender still alive: nobody can receive them any more.
    assert_eq!(Arc::strong_count(&value), 1);
    drop(tx);
}

#[test]
fn recv_deadline_times_out_never_early_and_can_be_retried() {
    let (tx, rx) = channel(0);
    let at = Instant::now() + Duration::from_millis(20);
    assert_eq!(rx.recv_deadline(at), Err(RecvTimeoutError::Timeout));
    assert!(Instant::now() >= at, "gave up before its deadline");
    // A deadline already past still fails at once, and leaves nothing behind.
    assert_eq!(rx.recv_deadline(at), Err(RecvTimeoutError::Timeout));
    // The timed-out receivers are no longer waiting: a rendezvous try_send
    // finds none.
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    // Retried with a later deadline, it gets a value sent meanwhile.
    let sender = thread::spawn(move || tx.send(2));
    assert_eq!(rx.recv_deadline(soon()), Ok(2));
    sender.join().unwrap().unwrap();
}

#[test]
fn a_ready_value_is_taken_even_past_the_deadline() {
    let (tx, rx) = channel(1);
    tx.send(9).unwrap();
    let past = Instant::now() - Duration::from_millis(1);
    assert_eq!(rx.recv_deadline(past), Ok(9));
}

/// Receivers with deadlines so short that many expire as values arrive:
/// a value handed to a receiver as it gives up is still received, once.
#[test]
fn receivers_timing_out_as_values_arrive_lose_none() {
    for bound in [0, 2] {
        let (tx, rx) = channel::<usize>(bound);
        const N: usize = 20_000;
        let receiving: Vec<_> = (0..4)
            .map(|_| {
                let rx = rx.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        match rx.recv_deadline(Instant::now() + Duration::from_micros(50)) {
                            Ok(v) => got.push(v),
                            Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Closed) => return got,
                        }
                    }
                })
            })
            .collect();
        drop(rx);
        let sending: Vec<_> = (0..2)
            .map(|s| {
                let tx = tx.clone();
                thread::spawn(move || (s * N / 2..(s + 1) * N / 2).try_for_each(|v| tx.send(v)))
            })
            .collect();
        drop(tx);
        for h in sending {
            h.join().unwrap().unwrap();
        }
        let mut seen = HashSet::new();
        for h in receiving {
            for v in h.join().unwrap() {
                assert!(seen.insert(v), "bound {bound}: {v} received twice");
            }
        }
        assert_eq!(seen.len(), N, "bound {bound}: values lost");
    }
}

#[test]
fn try_send_and_try_recv_never_wait() {
    let (tx, rx) = channel(2);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(tx.try_send('a'), Ok(()));
    assert_eq!(tx.try_send('b'), Ok(()));
    assert_eq!(tx.try_send('c'), Err(TrySendError::Full('c')));
    assert_eq!(rx.try_recv(), Ok('a'));
    assert_eq!(tx.try_send('c'), Ok(()));
    assert_eq!(rx.try_recv(), Ok('b'));
    assert_eq!(rx.try_recv(), Ok('c'));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn a_parked_sender_on_a_full_channel_moves_into_the_buffer_in_order() {
    let (tx, rx) = channel(1);
    tx.send(1).unwrap();
    let sender = {
        let tx = tx.clone();
        thread::spawn(move || tx.send(2))
    };
    // Whether 2 is parked or not yet sent, it comes after 1.
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Ok(2));
    sender.join().unwrap().unwrap();
}

#[test]
fn errors_have_std_shapes() {
    /// No Debug: the errors still print.
    #[derive(PartialEq)]
    struct Opaque;
    let e = SendError(Opaque);
    assert_eq!(format!("{e:?}"), "SendError { .. }");
    assert_eq!(e.to_string(), "sending on a closed channel");
    let boxed: Box<dyn Error + Send + Sync> = Box::new(SendError(Opaque));
    assert_eq!(boxed.to_string(), "sending on a closed channel");

    assert_eq!(format!("{:?}", TrySendError::Full(Opaque)), "Full(..)");
    assert_eq!(TrySendError::Full(1).to_string(), "sending on a full channel");
    assert_eq!(TrySendError::Closed(1).to_string(), "sending on a closed channel");
    assert_eq!(TrySendError::from(SendError(1)), TrySendError::Closed(1));

    assert_eq!(RecvError.to_string(), "receiving on a closed channel");
    assert_eq!(format!("{RecvError:?}"), "RecvError");
    assert_eq!(RecvTimeoutError::Timeout.to_string(), "timed out waiting on channel");
    assert_eq!(RecvTimeoutError::from(RecvError), RecvTimeoutError::Closed);
    assert_eq!(TryRecvError::from(RecvError), TryRecvError::Closed);
    assert_eq!(format!("{:?}", TryRecvError::Empty), "Empty");
    for e in [&RecvError as &dyn Error, &RecvTimeoutError::Closed, &TryRecvError::Empty] {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn the_ends_are_send_sync_clone_and_debug() {
    fn check<E: Send + Sync + Clone + std::fmt::Debug>(_: &E) {}
    /// Send but not Sync, nor Clone, nor Debug: the ends still are all four.
    struct OnlySend(#[allow(dead_code)] std::cell::Cell<u8>);
    let (tx, rx): (Sender<OnlySend>, Receiver<OnlySend>) = channel(1);
    check(&tx);
    check(&rx);
    assert_eq!(format!("{tx:?}"), "Sender { .. }");
    assert_eq!(format!("{rx:?}"), "Receiver { .. }");
}
