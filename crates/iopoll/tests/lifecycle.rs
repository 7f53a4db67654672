//! A spawned reactor's thread ends with its last handle. In a file of its own
//! so no other test's reactor threads are counted. Threads are counted
//! in `/proc`: Linux only.
#![cfg(target_os = "linux")]

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use iopoll::{PollFd, Runtime};

fn reactor_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim() == "reseau-reactor")
        .count()
}

fn wait_for_threads(n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while reactor_threads() != n {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

#[test]
fn spawned_runtime_thread_stops_with_its_last_handle() {
    assert_eq!(reactor_threads(), 0);
    let rt = Runtime::spawn().unwrap();
    assert!(wait_for_threads(1));
    // A PollFd keeps its runtime alive...
    let (a, _b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let pfd = PollFd::new(&rt, a.as_raw_fd()).unwrap();
    let clone = rt.clone();
    drop(rt);
    drop(clone);
    assert_eq!(reactor_threads(), 1, "still referenced by the PollFd");
    // ...and the thread ends once the last handle goes.
    drop(pfd);
    assert!(wait_for_threads(0), "reactor thread outlived every handle");
}
