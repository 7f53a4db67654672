//! Happy eyeballs on the calling thread: the two families' connects are
//! waited on together, with no racer thread. A binary with a single test:
//! it counts the process's threads.
//!
//! Linux only: threads are counted in /proc and watched park by `gettid`.
#![cfg(target_os = "linux")]
#![allow(clippy::result_large_err)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{LO4, LO6, black_holes};
use tcp::resolve::StaticResolver;
use tcp::{Dialer, Runtime};
use testkit::PATIENCE;

fn dual(port: u16) -> (Arc<StaticResolver>, String) {
    (Arc::new(StaticResolver::new().host("dual.test", [LO6, LO4])), format!("dual.test:{port}"))
}

#[test]
fn happy_eyeballs_starts_no_thread() {
    if !support::ipv6_loopback("happy_eyeballs_starts_no_thread") {
        return;
    }
    let (h6, h4) = black_holes();
    let (resolver, target) = dual(h6.addr.port());
    Runtime::global(); // its driver thread is not the dial's
    let baseline = testkit::count_threads();
    // No timeout: the race ends when the IPv4 black hole lets one in.
    let dialer = Dialer::new().resolver(resolver).fallback_delay(Duration::from_nanos(1));
    let (tid, done) = testkit::spawn_tracked(move || dialer.connect(&target));
    testkit::until_parked(tid);
    // Parked with both connects in flight: the dialing thread is the only
    // thread added.
    assert_eq!(testkit::count_threads(), baseline + 1, "a thread was started for the race");
    h4.release_one();
    let (conn, _) = done.recv_timeout(PATIENCE).expect("the dial ends once IPv4 accepts");
    let conn = conn.unwrap();
    assert_eq!(conn.remote_addr().unwrap(), h4.addr, "the fallback won");
    drop(h6);
}
