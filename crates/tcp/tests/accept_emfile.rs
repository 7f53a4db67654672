//! `accept` when the process is out of descriptors: it must fail promptly
//! with EMFILE (or ENFILE), neither hang nor spin, and work again once
//! descriptors are available. In a file of its own (its own process),
//! because it lowers the process-wide RLIMIT_NOFILE.
//!
//! Linux only: it fills the descriptor table up to a limit found in `/proc`.
#![cfg(target_os = "linux")]

mod common;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use common::*;

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

#[test]
fn accept_fails_promptly_with_emfile_and_recovers() {
    let l = listener();
    let addr = l.local_addr().unwrap();
    // Make this thread wait once, so its wake-up eventfd exists before the
    // descriptors run out.
    l.set_deadline(Some(Instant::now() + Duration::from_millis(1))).unwrap();
    assert_timeout_result(l.accept().map(|c| c.remote_addr()));
    l.set_deadline(None).unwrap();

    let mut client = tcp::connect_addr(addr).unwrap();
    raw_wait_readable(&l); // queued, waiting to be accepted

    let ex = testkit::Exhausted::new();

    // A spinning accept would run into this deadline and report a timeout
    // instead of EMFILE; a hanging one would never return.
    l.set_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    let mut results = Vec::new();
    for _ in 0..2 {
        let t0 = Instant::now();
        let r = l.accept();
        results.push((r.map(|c| c.remote_addr()), t0.elapsed()));
    }

    drop(ex);

    for (r, took) in results {
        match r {
            Ok(a) => panic!("accept succeeded with no descriptors left ({a:?})"),
            Err(e) => assert!(is_fd_exhaustion(&e), "expected EMFILE or ENFILE, got {e:?}"),
        }
        assert!(took < Duration::from_secs(2), "accept took {took:?} to report EMFILE");
    }

    // Descriptors are back: the connection that was waiting is accepted.
    let mut s = l.accept().expect("accept after the limit was raised");
    assert_eq!(s.remote_addr().unwrap(), client.local_addr().unwrap());
    l.set_deadline(None).unwrap();
    client.write_all(b"still here").unwrap();
    let mut b = [0u8; 10];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"still here");
}
