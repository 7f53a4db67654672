//! Support for the tls integration tests (each test binary uses a
//! different part):
//!
//! - testkit's TLS peers re-exported: configurations from its PKI (made at
//!   test time with the `openssl` command line), a server thread, a dial;
//!   and [`serve`], several connections on one thread;
//! - testkit's peers re-exported: [`Proc`], a child process (openssl, curl,
//!   python3) killed and reaped when dropped; [`Lines`], its output line by
//!   line; [`SServer`], `openssl s_server` on a port it picks;
//! - for the race, fault, hostile-input and leak tests: parking detection,
//!   a reusable worker thread, bounded waits, resets, SIGPIPE detection,
//!   this process's descriptor, thread and memory counts, and a captured
//!   ClientHello.

#![allow(dead_code, unused_imports)]
#![allow(clippy::result_large_err)]

use std::io::Read;
use std::net::SocketAddr;
use std::thread::{self, JoinHandle};
use std::time::Instant;

pub use testkit::certs::{Pki, openssl, pki};
pub use testkit::child::{Lines, Proc, SServer, s_client};
pub use testkit::tls_peer::{
    client_builder, client_config, dial, listener, serve_one, server_builder, server_builder_with, server_config,
};
pub use testkit::{
    PATIENCE, Worker, bounded, linger0, raise_fd_limit, raises_sigpipe, read_line, settles, small_rcvbuf, small_sndbuf,
    soon,
};
// Watching threads park and counting descriptors, threads and memory read
// `/proc`.
#[cfg(target_os = "linux")]
pub use testkit::{any_parked, count_fds, count_threads, gettid, rss, spawn_tracked, until_parked};

/// Serve `n` connections, one after the other on one thread, with `f`
/// (given the connection's index); each connection gets deadlines
/// [`PATIENCE`] away. Returns the address and what `f` returned, in order.
pub fn serve<T: Send + 'static>(
    cfg: &tls::Config,
    n: usize,
    f: impl Fn(usize, tls::Conn) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<Vec<T>>) {
    let l = listener(cfg);
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        (0..n)
            .map(|i| {
                let c = l.accept().expect("accept");
                c.set_deadline(Some(soon())).unwrap();
                f(i, c)
            })
            .collect()
    });
    (addr, h)
}

/// A real client gets through `l` and is echoed.
pub fn still_serves(l: &tls::Listener) {
    use std::io::Write;
    let addr = l.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut c = dial(addr, &client_config()).unwrap();
        c.write_all(b"still here").unwrap();
        let mut b = [0u8; 10];
        c.read_exact(&mut b).unwrap();
        b
    });
    let mut s = l.accept().unwrap();
    s.set_deadline(Some(soon())).unwrap();
    let mut b = [0u8; 10];
    s.read_exact(&mut b).unwrap();
    s.write_all(&b).unwrap();
    assert_eq!(&client.join().unwrap(), b"still here");
}

/// A ClientHello as our client sends it: dial a plain TCP listener that
/// records the first flight, and give up on the handshake.
pub fn capture_client_hello(cfg: &tls::Config) -> Vec<u8> {
    use std::io::Read;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let grab = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        // A record header, then its body.
        let mut hello = vec![0u8; 5];
        s.read_exact(&mut hello).unwrap();
        let len = u16::from_be_bytes([hello[3], hello[4]]) as usize;
        hello.resize(5 + len, 0);
        s.read_exact(&mut hello[5..]).unwrap();
        hello
    });
    let c = tls::client(tcp::connect_addr(addr).unwrap(), cfg).unwrap();
    c.set_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    let hs = thread::spawn(move || {
        let _ = c.handshake();
    });
    let hello = grab.join().unwrap();
    hs.join().unwrap();
    assert_eq!(hello[0], 0x16, "a handshake record");
    assert_eq!(hello[5], 0x01, "a ClientHello");
    hello
}
