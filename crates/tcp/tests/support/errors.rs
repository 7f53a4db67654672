//! The two errors every blocking call can end with, asserted: a deadline
//! that passed, and a connection closed under it.

use std::io;

use tcp::{Closed, DeadlineExceeded};

#[track_caller]
pub fn assert_timeout(e: &io::Error) {
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "expected a deadline error, got {e:?}");
    assert!(DeadlineExceeded::is(e), "TimedOut without DeadlineExceeded inside: {e:?}");
    assert_eq!(e.to_string(), "i/o timeout");
}

#[track_caller]
pub fn assert_closed(e: &io::Error) {
    assert!(Closed::is(e), "expected Closed, got {e:?}");
    assert_ne!(e.kind(), io::ErrorKind::TimedOut, "Closed must not look like a timeout: {e:?}");
    assert!(!DeadlineExceeded::is(e));
    assert_eq!(e.to_string(), "use of closed network connection");
}

#[track_caller]
pub fn assert_timeout_result<T: std::fmt::Debug>(r: io::Result<T>) {
    match r {
        Ok(v) => panic!("expected a deadline error, got Ok({v:?})"),
        Err(e) => assert_timeout(&e),
    }
}

#[track_caller]
pub fn assert_closed_result<T: std::fmt::Debug>(r: io::Result<T>) {
    match r {
        Ok(v) => panic!("expected Closed, got Ok({v:?})"),
        Err(e) => assert_closed(&e),
    }
}
