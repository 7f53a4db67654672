//! `make demo`: a narrated tour of reseau on loopback. Each step prints
//! what it shows and its figure; the tour exits non-zero if a step fails.

use std::error::Error;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use reseau::iopoll::{self, PollFd, Runtime};
use reseau::tcp::{self, resolve::StaticResolver};
use reseau::tls;

#[path = "support/certs.rs"]
mod certs;

type Step = Result<(), Box<dyn Error>>;
type StepFn = fn() -> Step;

fn main() {
    println!("reseau demo: Go's network model on a hand-rolled reactor, all on loopback\n");
    let steps: [(&str, StepFn); 7] = [
        ("TCP echo with a read deadline that fires and is retried", deadline_echo),
        ("tcp::connect(\"localhost:PORT\") through the resolver", resolver_dial),
        ("happy eyeballs: IPv6 is a black hole, IPv4 wins after the fallback delay", happy_eyeballs),
        ("TLS: certificates made on the spot, a verifying client, ALPN, a resumed session", tls_tour),
        ("the reactor embedded in a custom event loop", custom_loop),
        ("green threads: 1 000 connections, a blocking green thread at each end, on two OS threads", green_threads),
        ("one-byte ping-pong against std::net", std_comparison),
    ];
    let mut failed = 0;
    for (i, (title, step)) in steps.iter().enumerate() {
        println!("{}. {title}", i + 1);
        let start = Instant::now();
        match step() {
            Ok(()) => println!("   ok ({:.0} ms)\n", start.elapsed().as_secs_f64() * 1e3),
            Err(e) => {
                println!("   FAILED: {e}\n");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        println!("{failed} step(s) failed");
        std::process::exit(1);
    }
    println!("all steps passed. Next: `make test`, `make bench`, and docs/index.md.");
}

fn deadline_echo() -> Step {
    let listener = tcp::listen("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let server = thread::spawn(move || -> std::io::Result<()> {
        let mut conn = listener.accept()?;
        // Stay silent until the client's deadline has fired, then echo.
        let _ = rx.recv();
        let mut buf = [0u8; 64];
        let n = conn.read(&mut buf)?;
        conn.write_all(&buf[..n])
    });
    let mut conn = tcp::connect_addr(addr)?;
    let deadline = Instant::now() + Duration::from_millis(50);
    conn.set_read_deadline(Some(deadline))?;
    let mut buf = [0u8; 64];
    let err = conn.read(&mut buf).expect_err("nothing was sent, the read must time out");
    let late = Instant::now().saturating_duration_since(deadline);
    if err.kind() != ErrorKind::TimedOut || !tcp::DeadlineExceeded::is(&err) {
        return Err(format!("expected a deadline error, got {err}").into());
    }
    println!("   read failed with \"{err}\" ({:?}) {:.2} ms after the deadline", err.kind(), late.as_secs_f64() * 1e3);
    // Push the deadline forward and retry: a timed-out read is retryable.
    conn.set_read_deadline(Some(Instant::now() + Duration::from_secs(5)))?;
    tx.send(())?;
    conn.write_all(b"hello again")?;
    let n = conn.read(&mut buf)?;
    println!("   after moving the deadline, the retried read got {:?}", String::from_utf8_lossy(&buf[..n]));
    server.join().map_err(|_| "server panicked")??;
    Ok(())
}

fn resolver_dial() -> Step {
    let listener = tcp::listen("localhost:0")?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || listener.accept().map(|c| c.remote_addr()));
    let target = format!("localhost:{port}");
    let start = Instant::now();
    let conn = tcp::connect(&target)?;
    println!(
        "   dialed {target:?}: resolved and connected to {} in {:.2} ms",
        conn.remote_addr()?,
        start.elapsed().as_secs_f64() * 1e3
    );
    let seen = server.join().map_err(|_| "server panicked")???;
    println!("   the server saw the client at {seen}");
    Ok(())
}

/// A loopback listener whose accept queue is full: SYNs to it are dropped,
/// so a connect hangs as it would to a host that never answers.
struct BlackHole {
    _listener: tcp::Listener,
    _queued: Vec<TcpStream>,
}

fn black_hole(addr: SocketAddr) -> Result<BlackHole, Box<dyn Error>> {
    let listener = tcp::ListenConfig::new().backlog(0).network(tcp::Network::Tcp6).bind(addr)?;
    let target = listener.local_addr()?;
    let mut queued = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&target, Duration::from_millis(100)) {
            Ok(s) => queued.push(s),
            Err(_) => return Ok(BlackHole { _listener: listener, _queued: queued }),
        }
    }
    Err("could not fill the accept queue".into())
}

fn happy_eyeballs() -> Step {
    let live = TcpListener::bind("127.0.0.1:0")?;
    let port = live.local_addr()?.port();
    let _hole = black_hole(SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port)))
        .map_err(|e| format!("IPv6 loopback unavailable? {e}"))?;
    let resolver = StaticResolver::new().host("dual.demo", ["::1".parse()?, "127.0.0.1".parse()?]);
    let delay = Duration::from_millis(150);
    println!("   dual.demo resolves to [::1]:{port} (black hole) and 127.0.0.1:{port} (listening)");
    let start = Instant::now();
    let conn = tcp::Dialer::new()
        .resolver(Arc::new(resolver))
        .fallback_delay(delay)
        .timeout(Duration::from_secs(5))
        .connect(&format!("dual.demo:{port}"))?;
    let took = start.elapsed();
    println!(
        "   [::1] attempt still pending after the {} ms fallback delay; IPv4 started then and won:",
        delay.as_millis()
    );
    println!("   connected to {} after {:.1} ms", conn.remote_addr()?, took.as_secs_f64() * 1e3);
    if !conn.remote_addr()?.is_ipv4() || took < delay {
        return Err("expected an IPv4 win after the fallback delay".into());
    }
    Ok(())
}

fn tls_tour() -> Step {
    let certs = certs::generate()?;
    let server_cfg = tls::Config::builder()
        .cert_file(certs.path("server.pem"))
        .key_file(certs.path("server.key"))
        .alpn_protocols(["h2", "http/1.1"])
        .build()?;
    let client_cfg = tls::Config::builder().ca_file(certs.path("ca.pem")).alpn_protocols(["http/1.1"]).build()?;
    let listener = tls::listen("127.0.0.1:0", &server_cfg)?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || -> std::io::Result<()> {
        for _ in 0..2 {
            let mut c = listener.accept()?;
            let mut b = [0u8; 4];
            c.read_exact(&mut b)?;
            c.write_all(b"pong")?;
        }
        Ok(())
    });
    println!("   CA, server and client certificates generated with openssl in {}", certs.dir.display());
    for round in 1..=2 {
        let start = Instant::now();
        let mut c = tls::connect(&format!("localhost:{port}"), &client_cfg)?;
        c.write_all(b"ping")?;
        let mut b = [0u8; 4];
        c.read_exact(&mut b)?;
        let st = c.connection_state();
        println!(
            "   connection {round}: {} {}, ALPN {:?}, SNI {:?}, {} peer certificate(s), resumed: {}, {:.1} ms",
            st.version.map_or("?".into(), |v| v.to_string()),
            st.cipher_suite.unwrap_or_default(),
            st.alpn_protocol.unwrap_or_default(),
            st.server_name.unwrap_or_default(),
            st.peer_certificates.len(),
            st.session_resumed,
            start.elapsed().as_secs_f64() * 1e3
        );
        if round == 2 && !st.session_resumed {
            return Err("the second connection did not resume the session".into());
        }
    }
    server.join().map_err(|_| "server panicked")??;
    Ok(())
}

struct Flag(std::sync::atomic::AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn custom_loop() -> Step {
    // Our own loop owns the thread; reseau's reactor is one fd in it.
    let rt = Runtime::new()?;
    let (ours, mut theirs) = std::os::unix::net::UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let pfd = PollFd::new(&rt, ours.as_raw_fd())?;
    let flag = Arc::new(Flag(false.into()));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = ticks.clone();
    rt.timer_at(Instant::now() + Duration::from_millis(20), move || {
        t.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    while pfd.poll_read_ready(&mut cx).is_ready() {}
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(40));
        theirs.write_all(b"ping")
    });
    let mut turns = 0;
    while !flag.0.load(std::sync::atomic::Ordering::SeqCst) {
        // The outer loop: poll(2) on the reactor's fd, bounded by its next timer.
        let wait = rt.next_timer().map_or(-1, |t| t.saturating_duration_since(Instant::now()).as_millis() as i32 + 1);
        let mut p = libc::pollfd { fd: rt.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd on the stack.
        unsafe { libc::poll(&mut p, 1, wait.min(1000)) };
        rt.turn(Some(Duration::ZERO))?;
        turns += 1;
    }
    writer.join().map_err(|_| "writer panicked")??;
    let fired = ticks.load(std::sync::atomic::Ordering::SeqCst);
    match pfd.poll_read_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        other => return Err(format!("expected readiness, got {other:?}").into()),
    }
    let mut buf = [0u8; 4];
    (&ours).read_exact(&mut buf)?;
    println!(
        "   {turns} turns of the outer loop: the timer fired {fired} time(s), then the Waker saw {:?}",
        std::str::from_utf8(&buf)?
    );
    if fired != 1 {
        return Err("the timer did not fire".into());
    }
    let _ = iopoll::Closed;
    Ok(())
}

fn green_threads() -> Step {
    const CONNS: usize = 1_000;
    let threads_before = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    let pool = reseau::green::Pool::new(2)?;
    let listener = tcp::ListenConfig::new().backlog(1024).listen("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    // Plain blocking code: a green thread per connection on each side.
    let server = pool.spawn(move || {
        for _ in 0..CONNS {
            let Ok(mut conn) = listener.accept() else { break };
            reseau::green::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let start = Instant::now();
    let clients: Vec<_> = (0..CONNS)
        .map(|i| {
            pool.spawn(move || -> std::io::Result<usize> {
                let mut conn = tcp::connect_addr(addr)?;
                conn.set_read_deadline(Some(Instant::now() + Duration::from_secs(10)))?;
                let msg = [i as u8; 64];
                let mut back = [0u8; 64];
                for _ in 0..10 {
                    conn.write_all(&msg)?;
                    conn.read_exact(&mut back)?;
                    if back != msg {
                        return Err(std::io::Error::other("echoed other bytes"));
                    }
                }
                Ok(std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count()))
            })
        })
        .collect();
    let mut peak = 0;
    for c in clients {
        peak = peak.max(c.join().map_err(|_| "a client panicked")??);
    }
    server.join().map_err(|_| "the server panicked")?;
    println!(
        "   {} connections x 10 echoes in {:.0} ms on {} OS threads (the process had {threads_before} before the pool)",
        CONNS,
        start.elapsed().as_secs_f64() * 1e3,
        peak
    );
    pool.shutdown();
    Ok(())
}

fn rtt<S: Read + Write>(mut c: S, n: usize) -> std::io::Result<f64> {
    let mut b = [1u8];
    let start = Instant::now();
    for _ in 0..n {
        c.write_all(&b)?;
        c.read_exact(&mut b)?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / n as f64)
}

fn std_comparison() -> Step {
    const N: usize = 5_000;
    let l = tcp::listen("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let s = thread::spawn(move || -> std::io::Result<()> {
        let mut c = l.accept()?;
        let mut b = [0u8];
        while c.read(&mut b)? == 1 {
            c.write_all(&b)?;
        }
        Ok(())
    });
    let ours = rtt(&tcp::connect_addr(addr)?, N)?;
    s.join().map_err(|_| "server panicked")??;

    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let s = thread::spawn(move || -> std::io::Result<()> {
        let (mut c, _) = l.accept()?;
        c.set_nodelay(true)?;
        let mut b = [0u8];
        while c.read(&mut b)? == 1 {
            c.write_all(&b)?;
        }
        Ok(())
    });
    let c = TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    let theirs = rtt(&c, N)?;
    drop(c);
    s.join().map_err(|_| "server panicked")??;
    println!(
        "   round trip: reseau {ours:.1} us, std {theirs:.1} us (ratio {:.2}); `make bench` has the full table",
        ours / theirs
    );
    Ok(())
}
