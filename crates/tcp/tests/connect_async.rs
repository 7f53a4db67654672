//! `Dialer::connect_async`: the dial as a future, on tokio and on
//! `futures::executor` (no tokio feature needed), with `connect`'s
//! deadlines and errors: an expired deadline names the dial, a refused
//! port, a black hole under a timeout, a name through a resolver off the
//! polling thread, happy eyeballs falling back, a SOCKS5-less dial's
//! errors. And the blocking `connect`'s expired-deadline message, which
//! names the address too.
//!
//! Everything talks to loopback only.

#![allow(clippy::result_large_err)]

mod support;

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{BlackHole, LO4, LO6, Reserved, accept, ms, retry, v4, v6};
use tcp::resolve::StaticResolver;
use tcp::{Dialer, Error};
use testkit::PATIENCE;

fn past() -> Instant {
    Instant::now().checked_sub(Duration::from_secs(1)).unwrap_or_else(Instant::now)
}

/// A current-thread tokio runtime: the dial must not block its one thread.
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
}

fn assert_echoes(conn: &mut tcp::Conn, l: &tcp::Listener) {
    let mut server = accept(l);
    conn.set_deadline(Some(testkit::soon())).unwrap();
    conn.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).unwrap();
    server.write_all(&buf).unwrap();
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
}

#[test]
fn the_future_is_send_and_static() {
    fn send_static<T: Send + 'static>(_: &T) {}
    let dialer = Dialer::new();
    let address = String::from("127.0.0.1:9");
    let f = dialer.connect_async(&address);
    // Neither the dialer nor the address is borrowed by the future.
    drop((dialer, address));
    send_static(&f);
}

#[test]
fn connects_to_an_ip_literal_on_tokio() {
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut conn = block_on(Dialer::new().timeout(PATIENCE).connect_async(&addr.to_string())).unwrap();
    assert_eq!(conn.remote_addr().unwrap(), addr);
    assert_echoes(&mut conn, &l);
}

#[test]
fn connects_on_a_futures_executor_without_tokio() {
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut conn = futures::executor::block_on(Dialer::new().connect_async(&addr.to_string())).unwrap();
    assert_echoes(&mut conn, &l);
}

#[test]
fn resolves_a_name_off_the_polling_thread() {
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // The system resolver: `localhost` may give ::1 first, refused (or
    // unreachable), then 127.0.0.1 wins.
    let mut conn = block_on(Dialer::new().timeout(PATIENCE).connect_async(&format!("localhost:{port}"))).unwrap();
    assert_eq!(conn.remote_addr().unwrap().ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_echoes(&mut conn, &l);
    // A custom resolver, and a service name through it.
    let r = Arc::new(StaticResolver::new().host("svc.test", [LO4]).port("mysvc", port));
    let mut conn = block_on(Dialer::new().resolver(r).connect_async("svc.test:mysvc")).unwrap();
    assert_echoes(&mut conn, &l);
}

#[test]
fn happy_eyeballs_falls_back_to_the_other_family() {
    // [::1] first (refused, or no IPv6 at all), then 127.0.0.1 answers:
    // the fallback wins whether the primary fails at once or not.
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let r = Arc::new(StaticResolver::new().host("dual.test", [LO6, LO4]));
    let dialer = Dialer::new().resolver(r).fallback_delay(ms(20)).timeout(PATIENCE);
    let mut conn = block_on(dialer.connect_async(&format!("dual.test:{port}"))).unwrap();
    assert_eq!(conn.remote_addr().unwrap(), v4(Ipv4Addr::LOCALHOST, port));
    assert_echoes(&mut conn, &l);
}

#[test]
fn happy_eyeballs_starts_the_fallback_while_the_primary_hangs() {
    // The primary [::1] is a black hole: only the fallback timer (a
    // reactor timer waking the task) can start 127.0.0.1, on the same
    // port, before the dial's deadline.
    if !support::ipv6_loopback("happy_eyeballs_starts_the_fallback_while_the_primary_hangs") {
        return;
    }
    let (hole, live) = retry("a black hole and a listener on one port", || {
        let hole = BlackHole::bind(v6(Ipv6Addr::LOCALHOST, 0))?;
        let at = v4(Ipv4Addr::LOCALHOST, hole.addr.port());
        let live = tcp::ListenConfig::new().network(tcp::Network::Tcp4).bind(at).ok()?;
        Some((hole, live))
    });
    let r = Arc::new(StaticResolver::new().host("dual.test", [LO6, LO4]));
    let dialer = Dialer::new().resolver(r).fallback_delay(ms(50)).timeout(PATIENCE);
    let start = Instant::now();
    let mut conn = block_on(dialer.connect_async(&format!("dual.test:{}", hole.addr.port()))).unwrap();
    assert!(start.elapsed() >= ms(50), "the fallback started before its delay");
    assert!(start.elapsed() < PATIENCE);
    assert_eq!(conn.remote_addr().unwrap(), live.local_addr().unwrap());
    assert_echoes(&mut conn, &live);
}

#[test]
fn a_past_deadline_fails_at_once_and_names_the_dial() {
    let want = "dial tcp 127.0.0.1:9: i/o timeout";
    // Blocking and async alike, as docs/errors.md promises.
    let err = Dialer::new().deadline(past()).connect("127.0.0.1:9").unwrap_err();
    assert_eq!(err.to_string(), want);
    let start = Instant::now();
    let err = block_on(Dialer::new().deadline(past()).connect_async("127.0.0.1:9")).unwrap_err();
    assert!(start.elapsed() < PATIENCE);
    assert!(err.is_timeout() && matches!(err.err, Error::Timeout), "{err:?}");
    assert_eq!(err.to_string(), want);
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::TimedOut);
    // A name too: the dial is named by what was asked for.
    let err = block_on(Dialer::new().deadline(past()).connect_async("localhost:9")).unwrap_err();
    assert_eq!(err.to_string(), "dial tcp localhost:9: i/o timeout");
    // Even a live address is not dialed.
    let live = tcp::listen("127.0.0.1:0").unwrap();
    let err = block_on(Dialer::new().deadline(past()).connect_async(&live.local_addr().unwrap().to_string()));
    assert!(err.unwrap_err().is_timeout());
}

#[test]
fn a_black_hole_times_out_on_time() {
    let hole = BlackHole::bind(v4(Ipv4Addr::LOCALHOST, 0)).unwrap();
    let start = Instant::now();
    let err = block_on(Dialer::new().timeout(ms(80)).connect_async(&hole.addr.to_string())).unwrap_err();
    let elapsed = start.elapsed();
    assert!(elapsed >= ms(80) && elapsed < PATIENCE, "{elapsed:?}");
    assert!(matches!(err.err, Error::Timeout), "{:?}", err.err);
    assert_eq!(err.to_string(), format!("dial tcp {}: i/o timeout", hole.addr));
}

#[test]
fn a_refused_port_is_the_same_error_as_connect() {
    let reserved = Reserved::bind(v4(Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = reserved.addr;
    let err = block_on(Dialer::new().connect_async(&addr.to_string())).unwrap_err();
    match &err.err {
        Error::Io(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e:?}"),
        other => panic!("want Error::Io(refused), got {other:?}"),
    }
    assert_eq!(err.to_string(), format!("dial tcp {addr}: connection refused"));
    assert_eq!(err.to_string(), Dialer::new().connect(&addr.to_string()).unwrap_err().to_string());
}

#[test]
fn bad_addresses_and_unknown_names_fail_as_connect_does() {
    for address in ["127.0.0.1", "127.0.0.1:99999", "[::1", "no-such-host.invalid:80"] {
        let blocking = Dialer::new().timeout(PATIENCE).connect(address).unwrap_err();
        let future = block_on(Dialer::new().timeout(PATIENCE).connect_async(address)).unwrap_err();
        assert_eq!(future.to_string(), blocking.to_string(), "{address}");
    }
}

#[test]
fn many_dials_at_once_on_one_thread() {
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let conns = block_on(async {
        let dials: Vec<_> =
            (0..64).map(|_| tokio::spawn(Dialer::new().timeout(PATIENCE).connect_async(&addr))).collect();
        let mut conns = Vec::new();
        for d in dials {
            conns.push(d.await.unwrap().unwrap());
        }
        conns
    });
    assert_eq!(conns.len(), 64);
    for _ in 0..64 {
        accept(&l);
    }
}

/// The embedding guide's loop (docs/embedding.md): a runtime with no
/// thread, driven by `turn`, and a `Waker` that interrupts `turn`. The dial
/// (a name through the resolver pool, then the connect) completes in that
/// loop, and the connection then waits on that runtime: its read completes
/// only through `turn`.
#[test]
fn connect_async_in_a_loop_that_drives_its_own_runtime() {
    use std::pin::pin;
    use std::sync::mpsc;
    use std::task::{Context, Poll, Wake, Waker};

    struct WakeLoop(iopoll::Runtime);
    impl Wake for WakeLoop {
        fn wake(self: Arc<Self>) {
            self.0.wake()
        }
    }

    let l = tcp::listen("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (accepted_tx, accepted_rx) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let mut c = accept(&l);
        accepted_rx.recv_timeout(PATIENCE).unwrap();
        c.write_all(b"hi").unwrap();
        c
    });
    let rt = iopoll::Runtime::new().unwrap();
    let waker = Waker::from(Arc::new(WakeLoop(rt.clone())));
    let mut cx = Context::from_waker(&waker);
    let r = Arc::new(StaticResolver::new().host("loop.test", [LO4]));
    let dialer = Dialer::new().runtime(rt.clone()).resolver(r).timeout(PATIENCE);
    let mut dial = pin!(dialer.connect_async(&format!("loop.test:{port}")));
    let deadline = Instant::now() + PATIENCE;
    let conn = loop {
        match dial.as_mut().poll(&mut cx) {
            Poll::Ready(conn) => break conn.unwrap(),
            Poll::Pending => {
                assert!(Instant::now() < deadline, "the dial never completed");
                rt.turn(Some(PATIENCE)).unwrap();
            }
        }
    };
    accepted_tx.send(()).unwrap();
    conn.set_read_deadline(Some(testkit::soon())).unwrap();
    let mut buf = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match conn.poll_read(&mut cx, &mut buf[got..]) {
            Poll::Ready(n) => got += n.unwrap(),
            Poll::Pending => {
                assert!(Instant::now() < deadline, "the read never completed");
                rt.turn(Some(PATIENCE)).unwrap();
            }
        }
    }
    assert_eq!(&buf, b"hi");
    drop(server.join().unwrap());
}
