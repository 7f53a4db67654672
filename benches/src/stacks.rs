//! Green-thread stacks: what a compacted green thread pays to resume,
//! against a hot one; and (`reseau-bench --stack-depth`) the deepest stack
//! reseau's own paths need, to size the default reservation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iopoll::sync::{Condvar, Mutex};

use crate::harness::Bench;

/// Round trips between this OS thread and a green thread of a one-worker
/// pool through condition variables: the green thread parks after each
/// reply, its worker goes idle, and the next request resumes it. With
/// `compact_after` zero its stack is compacted at each of those parks and
/// restored at each resume. Returns µs per round trip.
fn round_trips(compact_after: Duration, n: usize) -> f64 {
    let pool = green::Pool::builder().workers(1).compact_after(compact_after).build().expect("pool");
    let turn = Arc::new((Mutex::new(0usize), Condvar::new()));
    let t = turn.clone();
    let echo = pool.spawn(move || {
        let (m, cv) = &*t;
        let mut k = m.lock();
        loop {
            while *k % 2 == 0 {
                cv.wait(&mut k);
            }
            if *k >= 2 * n {
                return;
            }
            *k += 1;
            cv.notify_all();
        }
    });
    let (m, cv) = &*turn;
    let start = Instant::now();
    let mut k = m.lock();
    for _ in 0..n {
        *k += 1;
        cv.notify_all();
        while *k % 2 == 1 {
            cv.wait(&mut k);
        }
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    *k = 2 * n + 1;
    cv.notify_all();
    drop(k);
    echo.join().expect("echo");
    pool.shutdown();
    per
}

pub fn run(b: &mut Bench) {
    if !b.wants("green-resume") {
        return;
    }
    let n = 5_000;
    b.compare(
        "green round trip, compacted vs hot stack",
        "us",
        "hot stack",
        None,
        || round_trips(Duration::ZERO, n),
        || round_trips(Duration::from_secs(3600), n),
    );
}

/// `reseau-bench --stack-depth`: the deepest each path went on a fresh
/// green stack, in bytes.
pub fn depth() {
    let pki = testkit::certs::pki();
    let server = tls::Config::builder()
        .cert_file(pki.path("server.pem"))
        .key_file(pki.path("server.key"))
        .client_auth(tls::ClientAuth::RequireAndVerifyClientCert)
        .client_ca_file(pki.path("ca.pem"))
        .build()
        .expect("server config");
    let client = tls::Config::builder()
        .ca_file(pki.path("ca.pem"))
        .cert_file(pki.path("client.pem"))
        .key_file(pki.path("client.key"))
        .server_name("localhost")
        .build()
        .expect("client config");
    // A fresh pool per path: stacks never used before read zero below
    // their deepest frame.
    let fresh = || green::Pool::builder().workers(1).build().expect("pool");
    let l = tls::listen("127.0.0.1:0", &server).expect("listen");
    let addr = l.local_addr().expect("addr");
    let (sp, cp) = (fresh(), fresh());
    let s = sp.spawn(move || {
        let c = l.accept().expect("accept");
        c.handshake().expect("server handshake");
        green::stack_high_water().expect("in a green thread")
    });
    let c = cp.spawn(move || {
        let c = tls::connect_addr(addr, &client).expect("client handshake");
        c.handshake().expect("client handshake");
        green::stack_high_water().expect("in a green thread")
    });
    let (client_depth, server_depth) = (c.join().expect("client"), s.join().expect("server"));
    let l = tcp::listen("127.0.0.1:0").expect("listen");
    let port = l.local_addr().expect("addr").port();
    let rp = fresh();
    let resolve = rp
        .spawn(move || {
            let _c = tcp::connect(&format!("localhost:{port}")).expect("dial by name");
            green::stack_high_water().expect("in a green thread")
        })
        .join()
        .expect("resolver");
    drop(l);
    println!("openssl: {}", tls::openssl_version());
    println!("TLS 1.3 handshake with client certificates, client: {client_depth} bytes");
    println!("TLS 1.3 handshake with client certificates, server: {server_depth} bytes");
    println!("dial by name (system resolver): {resolve} bytes");
    println!("default reservation: {} bytes", green::DEFAULT_STACK_SIZE);
}
