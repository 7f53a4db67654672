//! TCP over loopback: one-byte ping-pong and one-way bulk, reseau against
//! std's blocking `TcpStream`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Instant;

use crate::harness::{Bench, Better, Mode};
use crate::traffic::{pump, sink};

pub fn rtt(b: &mut Bench) {
    if !b.wants("rtt") {
        return;
    }
    let n = if b.mode == Mode::Full { 50_000 } else { 20_000 };
    b.compare(
        "tcp 1-byte ping-pong RTT",
        "us",
        "std TcpStream",
        Some((1.10, Better::Lower)),
        || rtt_reseau(n, None),
        || rtt_std(n, None),
    );
    // Diagnostic, no target: both threads pinned to one core, so the
    // runtime's own overhead per round trip shows (and spinning cannot help:
    // the peer needs the core the spinner is on).
    b.compare(
        "tcp RTT, both threads on core 0",
        "us",
        "std TcpStream",
        None,
        || rtt_reseau(n, Some(0)),
        || rtt_std(n, Some(0)),
    );
}

pub fn bulk(b: &mut Bench) {
    if !b.wants("bulk") {
        return;
    }
    let total: usize = if b.mode == Mode::Full { 2 << 30 } else { 512 << 20 };
    b.compare(
        "tcp bulk one-way (256 KiB writes)",
        "MB/s",
        "std TcpStream",
        Some((1.0, Better::Higher)),
        || bulk_reseau(total),
        || bulk_std(total),
    );
}

/// Connection churn: connect, accept, one exchange, close, as fast as it goes.
pub fn churn(b: &mut Bench) {
    if !b.wants("churn") {
        return;
    }
    let n = if b.mode == Mode::Full { 5000 } else { 1500 };
    b.compare(
        "tcp churn (connect+accept+echo+close)",
        "conn/s",
        "std TcpStream",
        Some((1.0, Better::Higher)),
        || churn_reseau(n),
        || churn_std(n),
    );
}

fn churn_reseau(n: usize) -> f64 {
    let l = tcp::Listener::bind(loopback()).expect("bind");
    let addr = l.local_addr().expect("addr");
    let server = thread::spawn(move || {
        for _ in 0..n {
            let mut c = l.accept().expect("accept");
            let mut b = [0u8];
            c.read_exact(&mut b).expect("read");
            c.write_all(&b).expect("write");
        }
    });
    let start = Instant::now();
    for _ in 0..n {
        let mut c = tcp::connect_addr(addr).expect("connect");
        let mut b = [1u8];
        c.write_all(&b).expect("write");
        c.read_exact(&mut b).expect("read");
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    server.join().expect("server");
    rate
}

fn churn_std(n: usize) -> f64 {
    let l = TcpListener::bind(loopback()).expect("bind");
    let addr = l.local_addr().expect("addr");
    let server = thread::spawn(move || {
        for _ in 0..n {
            let (mut c, _) = l.accept().expect("accept");
            c.set_nodelay(true).expect("nodelay");
            let mut b = [0u8];
            c.read_exact(&mut b).expect("read");
            c.write_all(&b).expect("write");
        }
    });
    let start = Instant::now();
    for _ in 0..n {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_nodelay(true).expect("nodelay");
        let mut b = [1u8];
        c.write_all(&b).expect("write");
        c.read_exact(&mut b).expect("read");
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    server.join().expect("server");
    rate
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

fn ping_pong(mut c: impl Read + Write, n: usize) -> f64 {
    let mut byte = [7u8];
    let start = Instant::now();
    for _ in 0..n {
        c.write_all(&byte).expect("write");
        c.read_exact(&mut byte).expect("read");
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn echo(mut c: impl Read + Write) {
    let mut byte = [0u8];
    while c.read_exact(&mut byte).is_ok() {
        if c.write_all(&byte).is_err() {
            break;
        }
    }
}

fn rtt_reseau(n: usize, cpu: Option<usize>) -> f64 {
    let l = tcp::Listener::bind(loopback()).expect("bind");
    let addr = l.local_addr().expect("addr");
    let server = thread::spawn(move || {
        pin(cpu);
        echo(l.accept().expect("accept"))
    });
    let _pinned = Pinned::to(cpu);
    let c = tcp::connect_addr(addr).expect("connect");
    let us = ping_pong(&c, n);
    drop(c);
    server.join().expect("server");
    us
}

fn rtt_std(n: usize, cpu: Option<usize>) -> f64 {
    let l = TcpListener::bind(loopback()).expect("bind");
    let addr = l.local_addr().expect("addr");
    let server = thread::spawn(move || {
        pin(cpu);
        let (s, _) = l.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        echo(s)
    });
    let _pinned = Pinned::to(cpu);
    let c = TcpStream::connect(addr).expect("connect");
    c.set_nodelay(true).expect("nodelay");
    let us = ping_pong(&c, n);
    drop(c);
    server.join().expect("server");
    us
}

fn bulk_reseau(total: usize) -> f64 {
    let l = tcp::Listener::bind(loopback()).expect("bind");
    let addr = l.local_addr().expect("addr");
    let start = Instant::now();
    let server = thread::spawn(move || sink(l.accept().expect("accept")));
    let c = tcp::connect_addr(addr).expect("connect");
    pump(&c, total);
    c.close_write().expect("shutdown");
    let got = server.join().expect("server");
    assert_eq!(got, total);
    total as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn bulk_std(total: usize) -> f64 {
    let l = TcpListener::bind(loopback()).expect("bind");
    let addr = l.local_addr().expect("addr");
    let start = Instant::now();
    let server = thread::spawn(move || sink(l.accept().expect("accept").0));
    let c = TcpStream::connect(addr).expect("connect");
    c.set_nodelay(true).expect("nodelay");
    pump(&c, total);
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let got = server.join().expect("server");
    assert_eq!(got, total);
    total as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn affinity() -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain old data; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        set
    }
}

fn set_affinity(set: &libc::cpu_set_t) {
    // SAFETY: applies a valid cpu_set_t to the calling thread.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
}

/// Pin the calling thread to `cpu`, if given.
fn pin(cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        // SAFETY: CPU_ZERO/CPU_SET only write into the set we own.
        let set = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            set
        };
        set_affinity(&set);
    }
}

/// Pins the calling thread for its lifetime, then restores its affinity.
struct Pinned(Option<libc::cpu_set_t>);

impl Pinned {
    fn to(cpu: Option<usize>) -> Pinned {
        let saved = cpu.map(|_| affinity());
        pin(cpu);
        Pinned(saved)
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(set) = &self.0 {
            set_affinity(set);
        }
    }
}
