//! Helpers the green tests share: a loopback pair and a bounded join.

#![allow(dead_code)]

use testkit::PATIENCE;

/// A connected pair on loopback, made on the calling thread.
pub fn pair() -> (tcp::Conn, tcp::Conn) {
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let c = tcp::connect_addr(l.local_addr().unwrap()).unwrap();
    (c, l.accept().unwrap())
}

/// The green thread's outcome within `PATIENCE`, or a failed test (never a hang).
pub fn join<T: Send + 'static>(h: green::JoinHandle<T>) -> T {
    testkit::within(PATIENCE, "a green thread to finish", move || h.join().expect("the green thread panicked"))
}
