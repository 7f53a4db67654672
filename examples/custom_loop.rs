//! Embedding the reactor in your own event loop.
//!
//! The program owns its loop: it `poll(2)`s the reactor's fd (alongside
//! whatever else it watches), bounded by the reactor's next timer, then
//! calls `turn` to dispatch. Sockets on the embedded runtime report
//! readiness through `Waker`s, here a flag per task; a wheel timer ticks.
//! Client threads use the ordinary blocking API on the global runtime.
//!
//! ```sh
//! cargo run --example custom_loop
//! ```

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use reseau::iopoll::Runtime;
use reseau::tcp;

/// A task's "look at me again" flag: the Waker the reactor wakes.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, SeqCst);
    }
}

struct Task {
    conn: tcp::Conn,
    flag: Arc<Flag>,
    waker: Waker,
    pending: Vec<u8>,
    done: bool,
}

impl Task {
    fn new(conn: tcp::Conn) -> Task {
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
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            std::thread::spawn(move || -> std::io::Result<()> {
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

    let mut tasks: Vec<Task> = Vec::new();
    let mut served = 0;
    let mut turns = 0;
    while served < CLIENTS {
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
                tasks.push(Task::new(conn));
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
        c.join().map_err(|_| "client panicked")??;
    }
    println!(
        "served {served} connections in {turns} turns of our own loop; the wheel ticked {} times meanwhile",
        ticks.load(SeqCst)
    );
    Ok(())
}
