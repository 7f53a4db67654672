//! Scheduling a race between a blocking call and a close, and checking
//! that the freed descriptor number was never touched, the same way in
//! every suite.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Barrier, mpsc};

use crate::{Worker, linger0, until_parked};

/// How the close lines up with the blocked call in one iteration.
#[derive(Clone, Copy, Debug)]
pub enum Timing {
    /// Close once the other thread sits parked in `ppoll`.
    Parked,
    /// Both leave a barrier together; the closer first spins this long.
    CloseLate(u32),
    /// Both leave a barrier together; the blocking call first spins this long.
    CloseEarly(u32),
}

/// The timing of iteration `i`, spinning up to `max_spin` loops: a fixed
/// pseudo-random sequence, the mix differing per iteration but the same on
/// every run.
pub fn timing(i: usize, max_spin: u32) -> Timing {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    let spin = (x % u64::from(max_spin.max(1))) as u32;
    match i % 3 {
        0 => Timing::Parked,
        1 => Timing::CloseLate(spin),
        _ => Timing::CloseEarly(spin),
    }
}

/// Busy-wait `n` spin-loop hints.
pub fn spin(n: u32) {
    for _ in 0..n {
        std::hint::spin_loop();
    }
}

/// Start `op` on `workers.0` and `close` on `workers.1`, both on `target`,
/// lined up as `t` says. Returns the channels their results arrive on.
pub fn start<T, R>(
    t: Timing,
    target: &Arc<T>,
    workers: &(Worker, Worker),
    op: impl FnOnce(&T) -> R + Send + 'static,
    close: impl FnOnce(&T) + Send + 'static,
) -> (mpsc::Receiver<R>, mpsc::Receiver<()>)
where
    T: Send + Sync + 'static,
    R: Send + 'static,
{
    let (op_worker, closer) = workers;
    let (t1, t2) = (target.clone(), target.clone());
    match t {
        Timing::Parked => {
            let op_rx = op_worker.run(move || op(&t1));
            until_parked(op_worker.tid);
            (op_rx, closer.run(move || close(&t2)))
        }
        Timing::CloseLate(n) | Timing::CloseEarly(n) => {
            let (close_spin, op_spin) = if matches!(t, Timing::CloseLate(_)) { (n, 0) } else { (0, n) };
            let barrier = Arc::new(Barrier::new(2));
            let barrier2 = barrier.clone();
            let op_rx = op_worker.run(move || {
                barrier2.wait();
                spin(op_spin);
                op(&t1)
            });
            let close_rx = closer.run(move || {
                barrier.wait();
                spin(close_spin);
                close(&t2)
            });
            (op_rx, close_rx)
        }
    }
}

/// Sockets created right after a close, so that they take the freed
/// descriptor number, each with data waiting that a stray read could
/// consume and a peer where a stray write would show up.
#[derive(Debug)]
pub struct Intruders {
    a: UnixStream,
    b: UnixStream,
    /// A listener with one connection queued, which a stray accept would take.
    listener: TcpListener,
    _queued: TcpStream,
}

const FOR_A: &[u8] = b"intruder data for a";
const FOR_B: &[u8] = b"intruder data for b";

impl Intruders {
    /// Create them (call right after the close).
    pub fn new() -> Intruders {
        let (a, b) = UnixStream::pair().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let queued = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (&b).write_all(FOR_A).unwrap();
        (&a).write_all(FOR_B).unwrap();
        Intruders { a, b, listener, _queued: queued }
    }

    /// Whether one of them took descriptor number `fd`.
    pub fn holds(&self, fd: RawFd) -> bool {
        [self.a.as_raw_fd(), self.b.as_raw_fd(), self.listener.as_raw_fd()].contains(&fd)
    }

    /// Everything is where it was put: nothing read, nothing written,
    /// nothing accepted by anyone else.
    #[track_caller]
    pub fn check(self, what: &str) {
        for (s, want) in [(&self.a, FOR_A), (&self.b, FOR_B)] {
            s.set_nonblocking(true).unwrap();
            let mut got = vec![0u8; 1 << 16];
            let n = (&*s).read(&mut got).unwrap_or(0);
            assert_eq!(&got[..n], want, "{what}: an intruder socket lost data or received stray bytes");
            let more = (&*s).read(&mut got);
            assert!(
                matches!(&more, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
                "{what}: stray bytes on an intruder socket: {more:?}"
            );
        }
        self.listener.set_nonblocking(true).unwrap();
        let (accepted, _) =
            self.listener.accept().unwrap_or_else(|e| panic!("{what}: the queued connection was taken ({e})"));
        linger0(&accepted); // no TIME_WAIT left behind, a thousand times over
    }
}

impl Default for Intruders {
    fn default() -> Self {
        Intruders::new()
    }
}
