//! `Conn`: TLS over a `tcp::Conn`, driving the sans-I/O [`Engine`].
//!
//! ```text
//!   plaintext ──► Engine::write ──► output ──► flusher ──► tcp::Conn ──► peer
//!   plaintext ◄── Engine::read ◄── feed ◄── filler ◄────── tcp::Conn ◄── peer
//! ```
//!
//! The engine never touches the socket; this module moves its bytes. Each
//! operation is written once, as a function returning `Poll`, over a
//! [`Wait`]: `Wait::Park` blocks (the `Read`/`Write` facade, parking
//! through `iopoll::park` on a thread or green thread, so it never returns
//! `Pending`), and `Wait::Task` leaves the task's `Waker` and returns
//! `Pending` (the `poll_*` methods). So both kinds of caller run the same
//! code, meet the same deadlines and close, and can share one connection:
//! a blocking reader with a `poll_write` writer, say.
//!
//! # Locks
//! All are `iopoll::sync` locks: a blocking caller queued on one parks
//! through `iopoll::park`; a `poll_*` caller takes them with `poll_lock`,
//! holds them for that one poll only, and is woken at the next unlock.
//! - `reader` serialises readers and `writer` writers, each for a whole
//!   blocking call (or one poll).
//! - `handshake` guards the handshake's outcome and its deadline overlay;
//!   a blocking driver holds it for the whole handshake, waits included.
//! - `inbound` guards the ciphertext read buffer, held across one socket
//!   read. Only the handshake's driver (before it completes) and then the
//!   reader fill it, so it is never contended in practice.
//! - `link` guards the engine and the flush state: held only for calls into
//!   the engine and for nonblocking sends, never across a wait (a blocking
//!   flusher sends with it released; `flushed` waits release it).
//!
//! Order: `reader` or `writer`, then `handshake`, then `inbound`, then
//! `link`.
//!
//! A poller that drives part of the handshake leaves its `Waker` with the
//! socket, and with `handshaken` (enlisted under `handshake`): a blocking
//! caller may take the handshake over and read the peer's flight itself,
//! and then only the end of the handshake wakes the poller.
//!
//! The user's code that a handshake calls (the `certificate_resolver`, when
//! OpenSSL suspends a server's handshake at the ClientHello, and the
//! `verify_peer_certificate` and `verify_connection` hooks, once OpenSSL
//! has finished) runs with `link` and `inbound` released, and with no lock
//! of the `Config` or `Listener` held. The `handshake` lock (and the
//! `reader` or `writer` of the call that drives the handshake) stays held:
//! other callers on this same connection wait for the handshake, as they
//! would for any. The lifecycle is one atomic word, [`Lifecycle`]: `is_open`,
//! `Debug`, `Display` and (until the handshake completes)
//! `connection_state` read it and take no lock that is held across a wait.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::AcqRel, Ordering::Acquire};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use iopoll::sync::{Condvar, Mutex, MutexGuard};
use tcp::{Closed, DeadlineExceeded};

use crate::config::{Config, Version};
use crate::engine::{Engine, Progress, Step};
use crate::error::{Error, TlsError};
use crate::state::ConnectionState;

// `poll_close_write` and the async I/O traits (features tokio, futures-io).
mod async_io;

/// Plaintext taken per `write` call: bounds the ciphertext queued at once
/// while keeping syscalls large.
const MAX_WRITE: usize = 256 * 1024;
/// Ciphertext read from the socket at once: the buffer starts small, since
/// most connections (and every idle one) move little, and doubles each time
/// a read fills it, up to `READ_MAX`.
const READ_FIRST: usize = 4 * 1024;
const READ_MAX: usize = 64 * 1024;
/// The most keying material `export_keying_material` gives at once.
const MAX_EXPORT: usize = 65_535;
/// How long `close` may spend sending close_notify to a peer that does not
/// read: a window of its own, whatever the write deadline (Go's 5 s), so a
/// connection closed after its idle deadline passed still ends cleanly.
const CLOSE_NOTIFY_BOUND: Duration = Duration::from_secs(5);

/// A TLS connection.
///
/// `Read` and `Write` work on `Conn` and on `&Conn`, so one thread can read
/// while another writes. The handshake runs on first use (or explicitly
/// with [`handshake`](Conn::handshake)); `connect` and `Dialer` run it
/// before returning.
///
/// ```no_run
/// use std::io::{Read, Write};
/// let config = tls::Config::builder().build()?;
/// let mut conn = tls::connect("example.com:443", &config)?;
/// conn.write_all(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n")?;
/// let mut page = Vec::new();
/// conn.read_to_end(&mut page)?;
/// println!("{:?}", conn.connection_state().version);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Conn {
    tcp: tcp::Conn,
    config: Config,
    server: bool,
    state: Lifecycle,
    handshake: Mutex<Handshake>,
    /// Serialises readers.
    reader: Mutex<()>,
    /// Serialises writers.
    writer: Mutex<()>,
    /// The buffer ciphertext is read into.
    inbound: Mutex<Vec<u8>>,
    link: Mutex<Link>,
    /// Signalled when a flusher finishes.
    flushed: Condvar,
    /// Signalled when the handshake ends, however it ends: a poller that
    /// drove part of it and left its `Waker` with the socket may never see
    /// the socket ready again if a blocking caller takes the handshake over
    /// and reads the peer's flight itself.
    handshaken: Condvar,
    /// An outer deadline for the handshake (the dial's), if any.
    handshake_deadline: Option<Instant>,
}

/// The engine, and the state of moving its output to the socket.
struct Link {
    engine: Engine,
    /// A blocking flusher is sending output with the lock released.
    flushing: bool,
    /// Sending failed: the record stream is broken for good. Later writes
    /// fail with `BrokenPipe`, this error behind it.
    write_error: Option<Arc<io::Error>>,
    /// The error that broke it, when the `write` that met it reported the
    /// records already sent instead: the next `write` returns it.
    unreported: Option<io::Error>,
}

/// The connection's lifecycle, in one atomic word: a stage that only moves
/// forward, fresh → handshaking → open → write-closed → broken → closed,
/// plus a flag that stays set once the handshake has completed. Readers
/// never block, whatever another thread is doing.
struct Lifecycle(AtomicU8);

/// Stages, in the order they are reached.
const FRESH: u8 = 0;
const HANDSHAKING: u8 = 1;
const OPEN: u8 = 2;
const WRITE_CLOSED: u8 = 3;
/// The handshake failed, or the engine reported a fatal error after it (a
/// forged record, an alert): every later read and write fails.
const BROKEN: u8 = 4;
const CLOSED: u8 = 5;
const STAGE: u8 = 0b111;
/// The handshake completed (the stage may have moved on since).
const SECURED: u8 = 0b1000;

impl Lifecycle {
    /// Move to `stage` unless already further on; the word before.
    fn advance(&self, stage: u8) -> u8 {
        let flag = if stage == OPEN { SECURED } else { 0 };
        self.0
            .fetch_update(AcqRel, Acquire, |w| Some((w & STAGE).max(stage) | (w & !STAGE) | flag))
            .unwrap_or_else(|w| w)
    }

    fn stage(&self) -> u8 {
        self.0.load(Acquire) & STAGE
    }

    fn is_secured(&self) -> bool {
        self.0.load(Acquire) & SECURED != 0
    }

    fn is_closed(&self) -> bool {
        self.stage() == CLOSED
    }
}

/// How an operation waits: see the module's documentation.
enum Wait<'a, 'b> {
    /// Block (park the thread or green thread); never returns `Pending`.
    Park,
    /// Leave the task's `Waker` and return `Pending`.
    Task(&'a mut Context<'b>),
}

impl Wait<'_, '_> {
    fn lock<'m, T>(&mut self, m: &'m Mutex<T>) -> Poll<MutexGuard<'m, T>> {
        match self {
            Wait::Park => Poll::Ready(m.lock()),
            Wait::Task(cx) => m.poll_lock(cx),
        }
    }

    fn read(&mut self, tcp: &tcp::Conn, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            Wait::Park => Poll::Ready((&*tcp).read(buf)),
            Wait::Task(cx) => tcp.poll_read(cx, buf),
        }
    }
}

/// Run an operation to completion on the calling thread or green thread.
fn park<T>(mut op: impl FnMut(&mut Wait<'_, '_>) -> Poll<T>) -> T {
    loop {
        // `Wait::Park` blocks instead of returning `Pending`; the loop only
        // keeps that promise from being load-bearing.
        if let Poll::Ready(v) = op(&mut Wait::Park) {
            return v;
        }
    }
}

/// Write all of `buf` to `tcp`; how much went, and the error that stopped it.
fn send_all(tcp: &tcp::Conn, buf: &[u8]) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < buf.len() {
        match (&*tcp).write(&buf[done..]) {
            Ok(0) => return (done, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

enum Handshake {
    /// Not started.
    Fresh,
    /// Started: by a blocking driver holding the lock now, or by a poller
    /// that will come back.
    Running(Running),
    Done,
    /// It failed; it stays failed (the message is reported again).
    Failed(String),
}

/// What a running handshake keeps across polls.
struct Running {
    /// The transport deadlines the overlay replaced, to restore at the end.
    overlay: Overlay,
    /// Whether the handshake timeout is the earliest limit of all.
    timeout_binds: bool,
}

impl Conn {
    /// Wrap `tcp` as the client end. `name` is the server name to verify
    /// (and send as SNI unless it is an IP address).
    pub(crate) fn new_client(
        tcp: tcp::Conn,
        config: &Config,
        name: Option<&str>,
        handshake_deadline: Option<Instant>,
    ) -> Result<Conn, Error> {
        let peer = tcp.remote_addr().map(|a| a.to_string()).unwrap_or_default();
        let engine = Engine::client(config, name, &peer)?;
        Ok(Conn::assemble(tcp, config, engine, false, handshake_deadline))
    }

    /// Wrap `tcp` as the server end.
    pub(crate) fn new_server(tcp: tcp::Conn, config: &Config) -> Result<Conn, Error> {
        let engine = Engine::server(config)?;
        Ok(Conn::assemble(tcp, config, engine, true, None))
    }

    fn assemble(tcp: tcp::Conn, config: &Config, engine: Engine, server: bool, deadline: Option<Instant>) -> Conn {
        Conn {
            tcp,
            config: config.clone(),
            server,
            state: Lifecycle(AtomicU8::new(FRESH)),
            handshake: Mutex::new(Handshake::Fresh),
            reader: Mutex::new(()),
            writer: Mutex::new(()),
            inbound: Mutex::new(Vec::new()),
            link: Mutex::new(Link { engine, flushing: false, write_error: None, unreported: None }),
            flushed: Condvar::new(),
            handshaken: Condvar::new(),
            handshake_deadline: deadline,
        }
    }

    /// Run the handshake if it has not run. Idempotent; concurrent callers
    /// wait for the one that drives it; a failed handshake stays failed.
    pub fn handshake(&self) -> Result<(), Error> {
        park(|w| self.handshake_with(w))
    }

    /// The `Waker` form of [`handshake`](Conn::handshake): `Pending` until
    /// the handshake completes or fails. Deadlines, the handshake timeout
    /// and `close` apply as they do to the blocking call.
    ///
    /// The connection's transport waits on the reactor of the runtime it was
    /// made in (see `tcp::Conn::from_std_in`), which must be driven: by its
    /// own thread, or by the caller's [`iopoll::Runtime::turn`].
    pub fn poll_handshake(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.handshake_with(&mut Wait::Task(cx))
    }

    fn handshake_with(&self, w: &mut Wait<'_, '_>) -> Poll<Result<(), Error>> {
        if self.state.is_secured() {
            return Poll::Ready(Ok(()));
        }
        let mut hs = ready!(w.lock(&self.handshake));
        match &*hs {
            Handshake::Done => return Poll::Ready(Ok(())),
            // Closed since (perhaps that is why it failed): say so, as every
            // operation on a closed connection does, so that a reader or
            // writer that was waiting for the handshake sees `Closed`.
            Handshake::Failed(_) if self.state.is_closed() => return Poll::Ready(Err(closed_error("handshake"))),
            Handshake::Failed(msg) => return Poll::Ready(Err(Error::Tls(TlsError::new("handshake", msg.clone())))),
            Handshake::Fresh | Handshake::Running(_) => {}
        }
        if self.state.is_closed() {
            return Poll::Ready(Err(closed_error("handshake")));
        }
        if let Handshake::Fresh = &*hs {
            self.state.advance(HANDSHAKING);
            let (cap, timeout_binds) = self.handshake_cap();
            *hs = Handshake::Running(Running { overlay: Overlay::apply(&self.tcp, cap), timeout_binds });
        }
        let Handshake::Running(running) = &*hs else { unreachable!("set just above") };
        let result = match self.drive_handshake(w, running.timeout_binds) {
            Poll::Ready(result) => result,
            Poll::Pending => {
                // Enlisted under the handshake lock: whoever finishes the
                // handshake takes that lock first, so it sees the entry.
                if let Wait::Task(cx) = w {
                    self.handshaken.enlist(cx.waker());
                }
                return Poll::Pending;
            }
        };
        let Handshake::Running(running) = std::mem::replace(&mut *hs, Handshake::Done) else {
            unreachable!("still running: only the lock holder changes it")
        };
        running.overlay.restore(&self.tcp);
        match &result {
            Ok(()) => {
                self.state.advance(OPEN);
            }
            Err(e) => {
                *hs = Handshake::Failed(format!("handshake failed earlier: {e}"));
                self.state.advance(BROKEN);
            }
        }
        self.handshaken.notify_all();
        Poll::Ready(result)
    }

    fn drive_handshake(&self, w: &mut Wait<'_, '_>, timeout_binds: bool) -> Poll<Result<(), Error>> {
        // Why the certificate resolver refused, for the failure that follows.
        let mut refused: Option<String> = None;
        // A passed deadline is the handshake timeout only when that timeout
        // was the earliest limit; the dial's or the user's is reported as
        // the i/o timeout it is.
        let transport_error = |err: io::Error| match self.config.settings().handshake_timeout {
            Some(t) if timeout_binds && DeadlineExceeded::is(&err) => Error::HandshakeTimeout(t),
            _ => Error::Tls(TlsError { op: "handshake", code: 0, message: String::new(), cause: Some(err) }),
        };
        loop {
            let step = self.link.lock().engine.handshake();
            if let Step::Failed(mut e) = step {
                // Send the alert that tells the peer why, if the socket
                // takes it now (a poller does not wait for that).
                let _ = self.flush(w, true);
                if let Some(why) = refused {
                    e.message = format!("{why} ({})", e.message);
                }
                return Poll::Ready(Err(Error::Tls(e)));
            }
            ready!(self.flush(w, true)).map_err(transport_error)?;
            match step {
                // Sent above; OpenSSL goes on with what follows the flight.
                Step::Done(Progress::Flight) => {}
                Step::Done(Progress::Finished) => return Poll::Ready(self.check_handshake()),
                // The certificate resolver's turn, with the engine unlocked;
                // the next step applies its answer.
                Step::Done(Progress::Certificate) => {
                    let hello = self.link.lock().engine.hello_asked().unwrap_or_default();
                    let answer = self.config.resolve(&hello).map_err(|why| refused = Some(why));
                    self.link.lock().engine.answer_hello(answer);
                }
                Step::NeedInput => {
                    // The peer is computing its share of the key exchange,
                    // not sending: spinning would only take its core.
                    if ready!(iopoll::park::without_spinning(|| self.fill(w))).map_err(transport_error)? == 0 {
                        return Poll::Ready(Err(Error::Eof));
                    }
                }
                Step::PeerClosed => return Poll::Ready(Err(Error::Eof)),
                Step::Failed(_) => unreachable!("returned above"),
            }
        }
    }

    /// What is checked once OpenSSL has finished the handshake: that a
    /// server chose an ALPN protocol this client offered, then the user's
    /// hooks, run with no lock held.
    fn check_handshake(&self) -> Result<(), Error> {
        let offered = &self.config.settings().alpn;
        if !self.server
            && let Some(chosen) = self.link.lock().engine.alpn()
            && !offered.contains(&chosen)
        {
            return Err(Error::Tls(TlsError::new(
                "handshake",
                format!("the server chose ALPN protocol {chosen:?}, which the client did not offer ({offered:?})"),
            )));
        }
        let chain = || self.link.lock().engine.peer_certificates();
        let state = || self.link.lock().engine.connection_state();
        self.config.check_handshake(chain, state)
    }

    /// The earliest of now + handshake timeout and the dial's deadline, and
    /// whether the timeout is the earliest limit of all (the transport's
    /// own deadlines included).
    fn handshake_cap(&self) -> (Option<Instant>, bool) {
        let from_timeout = self.config.settings().handshake_timeout.and_then(|t| Instant::now().checked_add(t));
        let cap = match (from_timeout, self.handshake_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let binds = from_timeout.is_some_and(|t| {
            [self.handshake_deadline, self.tcp.read_deadline(), self.tcp.write_deadline()]
                .into_iter()
                .flatten()
                .all(|other| t <= other)
        });
        (cap, binds)
    }

    /// Read ciphertext from the socket into the engine; 0 at end of stream.
    fn fill(&self, w: &mut Wait<'_, '_>) -> Poll<io::Result<usize>> {
        let mut buf = ready!(w.lock(&self.inbound));
        if buf.is_empty() {
            buf.resize(READ_FIRST, 0);
        }
        let n = ready!(w.read(&self.tcp, &mut buf))?;
        if n > 0 {
            self.link.lock().engine.feed(&buf[..n]);
        }
        if n == buf.len() && n < READ_MAX {
            buf.resize(2 * n, 0);
        }
        Poll::Ready(Ok(n))
    }

    /// Send the engine's output. With `wait`, finish only once everything
    /// produced so far has been sent (waiting for another flusher if need
    /// be); without, leave it to a flusher already at work.
    fn flush(&self, w: &mut Wait<'_, '_>, wait: bool) -> Poll<io::Result<()>> {
        let mut l = self.link.lock();
        loop {
            if let Some(cause) = &l.write_error {
                // A flush that `close` broke (or bounded) reads as `Closed`.
                if self.state.is_closed() {
                    return Poll::Ready(Err(Closed.into()));
                }
                return Poll::Ready(Err(BrokenWriteSide::error(cause)));
            }
            if l.flushing {
                if !wait {
                    return Poll::Ready(Ok(()));
                }
                match w {
                    Wait::Park => self.flushed.wait(&mut l),
                    // The flusher clears `flushing` under this lock, so it
                    // notifies after our entry is in.
                    Wait::Task(cx) => {
                        self.flushed.enlist(cx.waker());
                        return Poll::Pending;
                    }
                }
                continue;
            }
            if l.engine.output().is_empty() {
                return Poll::Ready(Ok(()));
            }
            let sent = match w {
                // Send with the lock released, so the reader can feed the
                // engine meanwhile; `flushing` keeps other flushers out.
                Wait::Park => {
                    l.flushing = true;
                    let out = l.engine.take_output();
                    let (done, sent) = MutexGuard::unlocked(&mut l, || send_all(&self.tcp, &out));
                    l.engine.restore(out, done);
                    l.flushing = false;
                    self.flushed.notify_all();
                    sent
                }
                // One nonblocking send, under the lock.
                Wait::Task(cx) => match self.tcp.poll_write(cx, l.engine.output()) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(0)) => Err(io::ErrorKind::WriteZero.into()),
                    Poll::Ready(Ok(n)) => {
                        l.engine.consume(n);
                        Ok(())
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
                    Poll::Ready(Err(e)) => Err(e),
                },
            };
            if let Err(err) = sent {
                // Part of a record may be on the wire: the stream is broken,
                // and no later write can succeed.
                l.write_error = Some(Arc::new(BrokenWriteSide::copy(&err)));
                self.state.advance(BROKEN);
                return Poll::Ready(Err(err));
            }
        }
    }

    fn read_with(&self, w: &mut Wait<'_, '_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let _reader = ready!(w.lock(&self.reader));
        if self.state.is_closed() {
            return Poll::Ready(Err(Closed.into()));
        }
        ready!(self.handshake_with(w))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            let (step, produced) = {
                let mut l = self.link.lock();
                let s = l.engine.read(buf);
                (s, !l.engine.output().is_empty())
            };
            if produced {
                // A post-handshake message wanted an answer (KeyUpdate). A
                // writer already sending will take it along; a poller sends
                // what the socket takes now and the rest with its next write.
                let _ = self.flush(w, false);
            }
            match step {
                Step::Done(n) => return Poll::Ready(Ok(n)),
                Step::PeerClosed => return Poll::Ready(Ok(0)),
                Step::NeedInput => {
                    if ready!(self.fill(w))? == 0 {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "tls: peer closed the connection without close_notify",
                        )));
                    }
                }
                Step::Failed(e) => {
                    self.state.advance(BROKEN);
                    return Poll::Ready(Err(Error::Tls(e).into()));
                }
            }
        }
    }

    fn write_with(&self, w: &mut Wait<'_, '_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let _writer = ready!(w.lock(&self.writer));
        // Checked first: close also closes the write side, which would
        // otherwise report a close_write.
        if self.state.is_closed() {
            return Poll::Ready(Err(Closed.into()));
        }
        ready!(self.handshake_with(w))?;
        if let Wait::Task(_) = w {
            // A poller's earlier records may still be queued: they go first,
            // so that the ciphertext queued at once stays bounded.
            if let Err(e) = ready!(self.flush(w, true)) {
                return Poll::Ready(Err(self.write_failure(e)));
            }
        }
        let mut records = Vec::new();
        let step = {
            let mut l = self.link.lock();
            // Again under the lock: a `close` since the check above has
            // closed the write side too, which must read as `Closed`, not
            // as a close_write.
            if self.state.is_closed() {
                return Poll::Ready(Err(Closed.into()));
            }
            if let Some(err) = l.unreported.take() {
                return Poll::Ready(Err(err));
            }
            if let Some(cause) = &l.write_error {
                return Poll::Ready(Err(BrokenWriteSide::error(cause)));
            }
            if l.engine.is_write_closed() {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "tls: write after close_write")));
            }
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            l.engine.write(&buf[..buf.len().min(MAX_WRITE)], &mut records)
        };
        let flushed = self.flush(w, true);
        if let Poll::Ready(Err(err)) = flushed {
            // std's contract: report what fully reached the socket; the
            // error (the write side is broken for good) comes next call.
            let mut l = self.link.lock();
            let delivered = l.engine.delivered(&records);
            if delivered == 0 {
                return Poll::Ready(Err(err));
            }
            l.unreported = Some(err);
            return Poll::Ready(Ok(delivered));
        }
        // Flushed, or (a poller) queued: either way the bytes are taken.
        Poll::Ready(match step {
            Step::Done(n) => Ok(n),
            Step::PeerClosed => Err(io::Error::new(io::ErrorKind::BrokenPipe, "tls: connection closed")),
            Step::NeedInput => Err(io::Error::other("tls: write wants to read (renegotiation is disabled)")),
            Step::Failed(e) => {
                self.state.advance(BROKEN);
                Err(Error::Tls(e).into())
            }
        })
    }

    /// A flush failure seen before any new byte was taken: the one a
    /// previous write left unreported, if any, comes first.
    fn write_failure(&self, err: io::Error) -> io::Error {
        self.link.lock().unreported.take().unwrap_or(err)
    }

    /// The `Waker` form of `read`: decrypt into `buf`, running the
    /// handshake first if it has not run. `Ready(Ok(0))` is end of stream
    /// (close_notify), as for `Read`.
    ///
    /// ```no_run
    /// use std::task::{Context, Poll, Waker};
    /// # fn demo(conn: &tls::Conn, rt: &iopoll::Runtime) -> std::io::Result<()> {
    /// // `conn` was made in the embedded runtime `rt`: drive it ourselves.
    /// let mut cx = Context::from_waker(Waker::noop());
    /// let mut buf = [0u8; 1024];
    /// let n = loop {
    ///     match conn.poll_read(&mut cx, &mut buf) {
    ///         Poll::Ready(r) => break r?,
    ///         Poll::Pending => { rt.turn(None)?; }
    ///     }
    /// };
    /// # Ok(()) }
    /// ```
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.read_with(&mut Wait::Task(cx), buf)
    }

    /// The `Waker` form of `write`: `Ready(Ok(n))` once `n` bytes are taken
    /// (encrypted and queued; as much as the socket takes now is sent).
    /// Ciphertext still queued goes out with the next `poll_write`, or with
    /// [`poll_flush`](Conn::poll_flush). Runs the handshake first.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.write_with(&mut Wait::Task(cx), buf)
    }

    /// `Ready(Ok(()))` once all ciphertext produced so far (records, and
    /// close_notify or alerts) has been handed to the socket.
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.state.is_closed() {
            return Poll::Ready(Err(Closed.into()));
        }
        match ready!(self.flush(&mut Wait::Task(cx), true)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(self.write_failure(e))),
        }
    }

    /// Send close_notify: the peer reads end of stream; this side can still
    /// read. Needs a finished handshake; later writes fail. Bounded as
    /// [`close`](Conn::close) is: at most 5 s against a peer that does not
    /// read (or the write deadline, if earlier), as in Go.
    pub fn close_write(&self) -> Result<(), Error> {
        if !self.state.is_secured() {
            return Err(Error::Tls(TlsError::new("close_write", "the handshake has not completed")));
        }
        let _writer = self.writer.lock();
        if self.state.is_closed() {
            return Err(closed_error("close_write"));
        }
        {
            let mut l = self.link.lock();
            // As in `write_with`: a `close` since the check above.
            if self.state.is_closed() {
                return Err(closed_error("close_write"));
            }
            if l.engine.is_write_closed() {
                return Ok(());
            }
            if let Step::Failed(e) = l.engine.close_notify() {
                return Err(Error::Tls(e));
            }
            self.state.advance(WRITE_CLOSED);
        }
        // Bounded as `close` is (Go's 5 s): a peer that does not read
        // cannot hold this call forever. The user's write deadline, if
        // earlier, still applies, and gets its value back afterwards unless
        // someone set another meanwhile.
        let before = self.tcp.write_deadline();
        let bound = Instant::now() + CLOSE_NOTIFY_BOUND;
        let capped = Some(before.map_or(bound, |d| d.min(bound)));
        let _ = self.tcp.set_write_deadline(capped);
        let sent = park(|w| self.flush(w, true));
        if self.tcp.write_deadline() == capped {
            let _ = self.tcp.set_write_deadline(before);
        }
        sent.map_err(|err| {
            Error::Tls(TlsError { op: "close_write", code: 0, message: String::new(), cause: Some(err) })
        })
    }

    /// Close: send close_notify if the handshake finished and no write is
    /// in flight (best effort, at most 5 s against a peer that
    /// does not read), then close the TCP connection, waking any blocked
    /// reader or writer. Idempotent; dropping the `Conn` closes it too.
    pub fn close(&self) -> io::Result<()> {
        let before = self.state.advance(CLOSED);
        if before & STAGE == CLOSED {
            return Ok(());
        }
        // As Go's tls.Conn does: a write in flight means this close is
        // meant to break it, so skip close_notify (which would queue behind
        // that write) and close at once.
        let idle_writer = self.writer.try_lock();
        if matches!(before & STAGE, OPEN | WRITE_CLOSED) && idle_writer.is_some() {
            let queued = {
                let mut l = self.link.lock();
                l.write_error.is_none()
                    && !l.engine.is_write_closed()
                    && matches!(l.engine.close_notify(), Step::Done(()))
            };
            // Writers that come after us see `closed` and fail at once.
            drop(idle_writer);
            if queued {
                let _ = self.tcp.set_write_deadline(Some(Instant::now() + CLOSE_NOTIFY_BOUND));
                let _ = park(|w| self.flush(w, false));
            }
        }
        self.tcp.close()
    }

    /// Whether the connection is usable: not closed, the handshake not
    /// failed, no fatal TLS error since, and the TCP connection open.
    /// Never blocks.
    pub fn is_open(&self) -> bool {
        self.state.stage() < BROKEN && self.tcp.is_open()
    }

    /// A snapshot of the connection's TLS state. Never runs the handshake,
    /// and never blocks while one runs.
    pub fn connection_state(&self) -> ConnectionState {
        if !self.state.is_secured() {
            return ConnectionState::default();
        }
        self.link.lock().engine.connection_state()
    }

    /// Keying material for another protocol bound to this connection
    /// (RFC 5705 for TLS 1.2, RFC 8446 §7.5 for TLS 1.3), as Go's
    /// `ConnectionState.ExportKeyingMaterial`: `len` bytes derived from the
    /// session's secrets, `label` and `context` (`None` is no context,
    /// which TLS 1.2 tells from an empty one and TLS 1.3 does not). Both
    /// ends with the same arguments
    /// get the same bytes. Needs a finished handshake. As in Go, labels
    /// TLS itself uses (`"client finished"`, `"server finished"`, `"master
    /// secret"`, `"key expansion"`) are refused, and so is `len` above
    /// 65 535 (TLS 1.3 itself allows at most 255 times the hash's size).
    ///
    /// ```no_run
    /// # fn demo(conn: &tls::Conn) -> Result<(), tls::Error> {
    /// let binding = conn.export_keying_material("EXPORTER-my-protocol", None, 32)?;
    /// # Ok(()) }
    /// ```
    pub fn export_keying_material(&self, label: &str, context: Option<&[u8]>, len: usize) -> Result<Vec<u8>, Error> {
        let fail = |m: String| Error::Tls(TlsError::new("export_keying_material", m));
        if !self.state.is_secured() {
            return Err(fail("the handshake has not completed".into()));
        }
        if ["client finished", "server finished", "master secret", "key expansion"].contains(&label) {
            return Err(fail(format!("label {label:?} is reserved by TLS")));
        }
        if len > MAX_EXPORT {
            return Err(fail(format!("{len} bytes asked for, more than the {MAX_EXPORT} allowed")));
        }
        self.link.lock().engine.export_keying_material(label, context, len).map_err(fail)
    }

    /// Set the read and write deadlines of the underlying connection.
    pub fn set_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.tcp.set_deadline(d)
    }

    /// Set the read deadline. A read that times out can be retried.
    pub fn set_read_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.tcp.set_read_deadline(d)
    }

    /// Set the write deadline. A write that times out leaves the write
    /// side failed for good (a record may be cut in half).
    pub fn set_write_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.tcp.set_write_deadline(d)
    }

    /// std's form: the read deadline becomes now + `d` (saturating); `None`
    /// clears it. See [`tcp::Conn::set_read_timeout`].
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp.set_read_timeout(d)
    }

    /// As [`set_read_timeout`](Conn::set_read_timeout), for writes.
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp.set_write_timeout(d)
    }

    /// As [`set_read_timeout`](Conn::set_read_timeout), for both directions.
    pub fn set_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp.set_timeout(d)
    }

    /// `SO_LINGER` on the TCP connection; see [`tcp::Conn::set_linger`].
    pub fn set_linger(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp.set_linger(d)
    }

    /// The time-to-live (IPv4) or hop limit (IPv6) of outgoing packets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.tcp.set_ttl(ttl)
    }

    /// The time-to-live (IPv4) or hop limit (IPv6) of outgoing packets.
    pub fn ttl(&self) -> io::Result<u32> {
        self.tcp.ttl()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.remote_addr()
    }

    /// The peer's address, by std's name: the same as
    /// [`remote_addr`](Conn::remote_addr).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.remote_addr()
    }

    /// The TCP connection underneath.
    pub fn net_conn(&self) -> &tcp::Conn {
        &self.tcp
    }

    /// Whether this is the server end.
    pub fn is_server(&self) -> bool {
        self.server
    }
}

/// Why a write fails after an earlier one broke the record stream (a write
/// deadline passed mid-record, the peer reset): `BrokenPipe`, whatever
/// the first failure was, so that a loop retrying on `TimedOut` ends. The
/// first failure is the source.
#[derive(Debug)]
struct BrokenWriteSide(Arc<io::Error>);

impl BrokenWriteSide {
    fn error(cause: &Arc<io::Error>) -> io::Error {
        io::Error::new(io::ErrorKind::BrokenPipe, BrokenWriteSide(cause.clone()))
    }

    /// A copy of `e` to keep (an `io::Error` does not clone): the same kind,
    /// OS code, text, and `DeadlineExceeded` or `Closed` inside.
    fn copy(e: &io::Error) -> io::Error {
        if DeadlineExceeded::is(e) {
            DeadlineExceeded.into()
        } else if Closed::is(e) {
            Closed.into()
        } else if let Some(code) = e.raw_os_error() {
            io::Error::from_raw_os_error(code)
        } else {
            io::Error::new(e.kind(), e.to_string())
        }
    }
}

impl fmt::Display for BrokenWriteSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tls: the write side failed earlier")
    }
}

impl std::error::Error for BrokenWriteSide {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// The error for an operation on a closed connection: `Closed` inside, so
/// that it converts to the same `io::Error` as a closed `tcp::Conn` gives.
fn closed_error(op: &'static str) -> Error {
    Error::Tls(TlsError { op, code: 0, message: "connection is closed".into(), cause: Some(Closed.into()) })
}

/// While the handshake runs, each transport deadline becomes the earlier of
/// its own value and the cap. Afterwards each gets its own value back, but
/// only if nobody set it meanwhile: a deadline another thread set during
/// the handshake (Go's `SetDeadline(now)` to kick a connection, or an idle
/// timeout) wins over the one saved before.
struct Overlay {
    /// Per direction: the value before, and the capped value put in force.
    saved: Option<[(Option<Instant>, Option<Instant>); 2]>,
}

impl Overlay {
    fn apply(tcp: &tcp::Conn, cap: Option<Instant>) -> Overlay {
        let Some(cap) = cap else { return Overlay { saved: None } };
        let (r, w) = (tcp.read_deadline(), tcp.write_deadline());
        let capped = |d: Option<Instant>| Some(d.map_or(cap, |d| d.min(cap)));
        let (rc, wc) = (capped(r), capped(w));
        let _ = tcp.set_read_deadline(rc);
        let _ = tcp.set_write_deadline(wc);
        Overlay { saved: Some([(r, rc), (w, wc)]) }
    }

    fn restore(self, tcp: &tcp::Conn) {
        let Some([(r, rc), (w, wc)]) = self.saved else { return };
        // A setter racing this check loses at worst by being overwritten with
        // the value from before the handshake, never with the cap.
        if tcp.read_deadline() == rc {
            let _ = tcp.set_read_deadline(r);
        }
        if tcp.write_deadline() == wc {
            let _ = tcp.set_write_deadline(w);
        }
    }
}

impl Read for &Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        park(|w| self.read_with(w, buf))
    }
}

impl Write for &Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        park(|w| self.write_with(w, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        park(|w| self.read_with(w, buf))
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        park(|w| self.write_with(w, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// `tls::Conn(127.0.0.1:5000 => 127.0.0.1:41234, client, TLSv1.3, h2, open)`:
/// the handshake state stands where the version is until it completes.
impl fmt::Display for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = |a: io::Result<SocketAddr>| a.map_or_else(|_| "?".to_string(), |a| a.to_string());
        let role = if self.server { "server" } else { "client" };
        write!(f, "tls::Conn({} => {}, {role}, ", addr(self.local_addr()), addr(self.remote_addr()))?;
        let stage = self.state.stage();
        if self.state.is_secured() {
            let state = self.connection_state();
            f.write_str(match state.version {
                Some(Version::Tls12) => "TLSv1.2",
                Some(Version::Tls13) => "TLSv1.3",
                None => "TLS",
            })?;
            if let Some(alpn) = &state.alpn_protocol {
                write!(f, ", {alpn}")?;
            }
        } else {
            f.write_str(match stage {
                FRESH => "handshake pending",
                HANDSHAKING => "handshaking",
                BROKEN => "handshake failed",
                _ => "no handshake", // closed before one completed
            })?;
        }
        write!(f, ", {})", if self.is_open() { "open" } else { "closed" })
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("tcp", &self.tcp)
            .field("role", &if self.server { "server" } else { "client" })
            .field("handshake_complete", &self.state.is_secured())
            .field("open", &self.is_open())
            .finish()
    }
}
