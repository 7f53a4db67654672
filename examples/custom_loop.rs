//! Embedding the reactor in your own event loop.
//!
//! The program owns its loop: it `poll(2)`s the reactor's fd (alongside
//! whatever else it watches), bounded by the reactor's next timer, then
//! calls `turn` to dispatch. Sockets on the embedded runtime report
//! readiness through `Waker`s, here a flag per task; a wheel timer ticks.
//! It serves plain TCP and TLS echo side by side: a TLS connection's
//! handshake, records and flushes run through the same `poll_*` calls.
//! Client threads use the ordinary blocking API on the global runtime.
//!
//! ```sh
//! cargo run --example custom_loop
//! ```

#[path = "support/certs.rs"]
mod certs;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use reseau::iopoll::Runtime;
use reseau::{tcp, tls};

/// A task's "look at me again" flag: the Waker the reactor wakes.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, SeqCst);
    }
}

/// What a task echoes on: the `poll_*` calls of both are alike.
enum Stream {
    Tcp(Box<tcp::Conn>),
    Tls(Box<tls::Conn>),
}

impl Stream {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        match self {
            Stream::Tcp(c) => c.poll_read(cx, buf),
            Stream::Tls(c) => c.poll_read(cx, buf),
        }
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self {
            Stream::Tcp(c) => c.poll_write(cx, buf),
            Stream::Tls(c) => c.poll_write(cx, buf),
        }
    }

    /// TLS queues records that the socket did not take yet; TCP has none.
    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self {
            Stream::Tcp(_) => Poll::Ready(Ok(())),
            Stream::Tls(c) => c.poll_flush(cx),
        }
    }
}

struct Task {
    conn: Stream,
    flag: Arc<Flag>,
    waker: Waker,
    pending: Vec<u8>,
    done: bool,
}

impl Task {
    fn new(conn: Stream) -> Task {
        let flag = Arc::new(Flag(AtomicBool::new(true)));
        Task { conn, waker: Waker::from(flag.clone()), flag, pending: Vec::new(), done: false }
    }

    /// Echo whatever can be echoed without blocking.
    fn poll(&mut self) {
        let mut cx = Context::from_waker(&self.waker);
        let mut buf = [0u8; 4096];
        loop {
            while !self.pending.is_empty() {
                match self.conn.poll_write(&mut cx, &self.pending) {
                    Poll::Ready(Ok(n)) => drop(self.pending.drain(..n)),
                    Poll::Ready(Err(_)) => return self.done = true,
                    Poll::Pending => return,
                }
            }
            match self.conn.poll_flush(&mut cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return self.done = true,
                Poll::Pending => return,
            }
            match self.conn.poll_read(&mut cx, &mut buf) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return self.done = true,
                Poll::Ready(Ok(n)) => self.pending.extend_from_slice(&buf[..n]),
                Poll::Pending => return,
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::new()?;
    let listener = tcp::ListenConfig::new().runtime(rt.clone()).listen("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let accept_flag = Arc::new(Flag(AtomicBool::new(true)));
    let accept_waker = Waker::from(accept_flag.clone());

    // A TLS listener on the same embedded runtime.
    let certs = certs::generate()?;
    let server_cfg =
        tls::Config::builder().cert_file(certs.path("server.pem")).key_file(certs.path("server.key")).build()?;
    let client_cfg = tls::Config::builder().ca_file(certs.path("ca.pem")).build()?;
    let tls_listener =
        tls::Listener::from_tcp(tcp::ListenConfig::new().runtime(rt.clone()).listen("127.0.0.1:0")?, &server_cfg)?;
    let tls_port = tls_listener.local_addr()?.port();
    let tls_flag = Arc::new(Flag(AtomicBool::new(true)));
    let tls_waker = Waker::from(tls_flag.clone());

    // A periodic tick from the reactor's timing wheel.
    let ticks = Arc::new(AtomicUsize::new(0));
    fn tick(rt: Runtime, ticks: Arc<AtomicUsize>) {
        let next = Instant::now() + Duration::from_millis(50);
        let rt2 = rt.clone();
        rt.timer_at(next, move || {
            ticks.fetch_add(1, SeqCst);
            tick(rt2, ticks);
        });
    }
    tick(rt.clone(), ticks.clone());

    // Blocking clients on other threads, as a real program's peers would be.
    const CLIENTS: usize = 4;
    let mut clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            std::thread::spawn(move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                let mut c = tcp::connect_addr(addr)?;
                let msg = format!("client {i} says hello");
                c.write_all(msg.as_bytes())?;
                let mut back = vec![0u8; msg.len()];
                c.read_exact(&mut back)?;
                assert_eq!(back, msg.as_bytes());
                Ok(())
            })
        })
        .collect();
    clients.extend((0..CLIENTS).map(|i| {
        let cfg = client_cfg.clone();
        std::thread::spawn(move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let mut c = tls::connect(&format!("localhost:{tls_port}"), &cfg)?;
            let msg = format!("TLS client {i} says hello");
            c.write_all(msg.as_bytes())?;
            let mut back = vec![0u8; msg.len()];
            c.read_exact(&mut back)?;
            assert_eq!(back, msg.as_bytes());
            c.close_write()?;
            Ok(())
        })
    }));

    let mut tasks: Vec<Task> = Vec::new();
    let mut served = 0;
    let mut turns = 0;
    while served < 2 * CLIENTS {
        // 1. Sleep in our own poll(2) until the reactor has work or its next
        //    timer is due (other fds of ours would go in the same array).
        let timeout_ms = rt.next_timer().map_or(1000, |t| {
            let d = t.saturating_duration_since(Instant::now());
            d.as_millis().saturating_add(u128::from(d.subsec_nanos() % 1_000_000 != 0)) as i32
        });
        let mut fds = [libc::pollfd { fd: rt.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        // SAFETY: a valid pollfd array for the duration of the call.
        unsafe { libc::poll(fds.as_mut_ptr(), 1, timeout_ms) };
        // 2. Let the reactor dispatch readiness and fire due timers.
        rt.turn(Some(Duration::ZERO))?;
        turns += 1;
        // 3. Run whatever was woken.
        if accept_flag.0.swap(false, SeqCst) {
            let mut cx = Context::from_waker(&accept_waker);
            while let Poll::Ready(Ok(conn)) = listener.poll_accept(&mut cx) {
                tasks.push(Task::new(Stream::Tcp(Box::new(conn))));
            }
        }
        if tls_flag.0.swap(false, SeqCst) {
            let mut cx = Context::from_waker(&tls_waker);
            // The handshake runs inside the task's first poll_read.
            while let Poll::Ready(Ok(conn)) = tls_listener.poll_accept(&mut cx) {
                tasks.push(Task::new(Stream::Tls(Box::new(conn))));
            }
        }
        for t in &mut tasks {
            if t.flag.0.swap(false, SeqCst) {
                t.poll();
            }
        }
        let before = tasks.len();
        tasks.retain(|t| !t.done);
        served += before - tasks.len();
    }
    for c in clients {
        c.join().map_err(|_| "client panicked")?.map_err(|e| e.to_string())?;
    }
    println!(
        "served {served} connections (half of them TLS) in {turns} turns of our own loop; the wheel ticked {} times meanwhile",
        ticks.load(SeqCst)
    );
    Ok(())
}
