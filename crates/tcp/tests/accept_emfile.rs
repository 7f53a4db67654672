//! `accept` when the process is out of descriptors: it must fail promptly
//! with EMFILE (or ENFILE), neither hang nor spin, and work again once
//! descriptors are available. In a file of its own (its own process),
//! because it lowers the process-wide RLIMIT_NOFILE.

mod common;

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::*;

fn getrlimit() -> libc::rlimit {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid rlimit to fill in.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim
}

fn setrlimit(lim: &libc::rlimit) {
    // SAFETY: `lim` is a valid rlimit; lowering the soft limit, or raising
    // it back up to the hard limit, needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) }, 0, "{}", io::Error::last_os_error());
}

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

    let saved = getrlimit();
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::rlim_t>().ok())
        .max()
        .unwrap();
    setrlimit(&libc::rlimit { rlim_cur: highest + 1, rlim_max: saved.rlim_max });
    // Fill every hole below the limit.
    let mut fillers = Vec::new();
    loop {
        // SAFETY: duplicates a descriptor we own; the new one is owned below.
        let fd = unsafe { libc::fcntl(l.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            if is_fd_exhaustion(&e) {
                break;
            }
            setrlimit(&saved);
            panic!("dup: {e}");
        }
        // SAFETY: `fd` is new and owned by nobody else.
        fillers.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }

    // A spinning accept would run into this deadline and report a timeout
    // instead of EMFILE; a hanging one would never return.
    l.set_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    let mut results = Vec::new();
    for _ in 0..2 {
        let t0 = Instant::now();
        let r = l.accept();
        results.push((r.map(|c| c.remote_addr()), t0.elapsed()));
    }

    drop(fillers);
    setrlimit(&saved);

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
