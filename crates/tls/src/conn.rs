//! `Conn`: TLS over a `tcp::Conn`, with OpenSSL on memory BIOs.
//!
//! ```text
//!   plaintext ──► SSL_write ──► wbio ──► out queue ──► flusher ──► tcp::Conn ──► peer
//!   plaintext ◄── SSL_read ◄── rbio ◄── reader ◄──────────────── tcp::Conn ◄── peer
//! ```
//!
//! The `SSL` sits behind the engine lock, which is held only for the short
//! calls into OpenSSL, never while waiting on the socket: the reader waits
//! in `tcp::Conn::read` and the flusher in `tcp::Conn::write` with the lock
//! released, so one reader and one writer run at once. Ciphertext leaves in
//! the order OpenSSL produced it: every producer appends to one queue under
//! the engine lock, and a single flusher at a time drains it to the socket.
//!
//! # Locks
//! All are `iopoll::sync` locks: a caller queued on one parks through
//! `iopoll::park`, so in a green thread it suspends and never blocks the
//! worker that runs the lock's holder.
//! - `handshake` guards the handshake's outcome; the driver holds it for the
//!   whole handshake, waits included.
//! - `reader` serialises readers and `writer` writers, each for a whole call.
//! - `inbound` guards the ciphertext read buffer, held across one socket read.
//! - `engine` guards the `SSL` and the ciphertext queue: held only for calls
//!   into OpenSSL and queue updates, never across a wait (`flushed` waits
//!   release it).
//!
//! Order: `reader` or `writer`, then `handshake`, then `inbound`, then
//! `engine`. `is_open`, `Debug` and `connection_state` take no lock that is
//! held across a wait, except `connection_state` briefly taking `engine`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering::Acquire, Ordering::Release};
use std::time::{Duration, Instant};

use iopoll::sync::{Condvar, Mutex, MutexGuard};
use tcp::{Closed, DeadlineExceeded};

use crate::config::{Config, Version};
use crate::error::{ConfigError, Error, TlsError};
use crate::ffi::{Outcome, Ssl};

/// Plaintext taken per `write` call: bounds the ciphertext queued at once
/// while keeping syscalls large.
const MAX_WRITE: usize = 256 * 1024;
/// Plaintext per `SSL_write`: one full record, so that a `write` cut short
/// can count the records that fully reached the socket.
const RECORD: usize = 16 * 1024;
/// Ciphertext read from the socket at once: the buffer starts small, since
/// most connections (and every idle one) move little, and doubles each time
/// a read fills it, up to `READ_MAX`.
const READ_FIRST: usize = 4 * 1024;
const READ_MAX: usize = 64 * 1024;
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
    engine: Mutex<Engine>,
    /// Signalled when a flusher finishes.
    flushed: Condvar,
    handshake: Mutex<Handshake>,
    handshake_done: AtomicBool,
    /// Serialises readers.
    reader: Mutex<()>,
    /// The buffer ciphertext is read into.
    inbound: Mutex<Vec<u8>>,
    /// Serialises writers.
    writer: Mutex<()>,
    closed: AtomicBool,
    /// The handshake failed, or OpenSSL reported a fatal error after it (a
    /// forged record, an alert): the connection refuses all further reads
    /// and writes. Read by `is_open` without taking the handshake lock.
    broken: AtomicBool,
    /// An outer deadline for the handshake (the dial's), if any.
    handshake_deadline: Option<Instant>,
}

struct Engine {
    ssl: Ssl,
    /// Ciphertext produced and not yet sent, in order.
    out: Vec<u8>,
    /// Someone is sending `out`'s former contents right now.
    flushing: bool,
    /// Sending failed: the record stream is broken for good.
    write_error: Option<(io::ErrorKind, String)>,
    /// The error that broke it, when the `write` that met it reported the
    /// records already sent instead: the next `write` returns it.
    unreported: Option<io::Error>,
    /// close_notify queued: no more writes.
    write_closed: bool,
    /// Ciphertext bytes ever queued in `out`, and ever handed to the socket:
    /// a record queued up to offset q has reached the socket once sent >= q.
    queued: u64,
    sent: u64,
}

impl Engine {
    fn collect(&mut self) {
        if self.ssl.has_output() {
            let before = self.out.len();
            self.ssl.take_output(&mut self.out);
            self.queued += (self.out.len() - before) as u64;
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
    Pending,
    Done,
    /// It failed; it stays failed (the message is reported again).
    Failed(String),
}

/// The state of a connection, as [`Conn::connection_state`] reports it.
/// Its `Debug` summarises the peer's certificates (see `certificate.rs`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectionState {
    /// Whether the handshake has completed.
    pub handshake_complete: bool,
    /// The negotiated version.
    pub version: Option<Version>,
    /// The negotiated ALPN protocol.
    pub alpn_protocol: Option<String>,
    /// The cipher suite, by OpenSSL's name (`TLS_AES_256_GCM_SHA384`).
    pub cipher_suite: Option<String>,
    /// SNI sent (client) or received (server).
    pub server_name: Option<String>,
    /// The peer's certificates, DER encoded, leaf first.
    pub peer_certificates: Vec<Vec<u8>>,
    /// Whether the handshake resumed an earlier session.
    pub session_resumed: bool,
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
        let ssl = client_ssl(config, name, &peer)?;
        Ok(Conn::assemble(tcp, config, ssl, false, handshake_deadline))
    }

    /// Wrap `tcp` as the server end.
    pub(crate) fn new_server(tcp: tcp::Conn, config: &Config) -> Result<Conn, Error> {
        let ssl = server_ssl(config)?;
        Ok(Conn::assemble(tcp, config, ssl, true, None))
    }

    fn assemble(tcp: tcp::Conn, config: &Config, ssl: Ssl, server: bool, deadline: Option<Instant>) -> Conn {
        Conn {
            tcp,
            config: config.clone(),
            server,
            engine: Mutex::new(Engine {
                ssl,
                out: Vec::new(),
                flushing: false,
                write_error: None,
                unreported: None,
                write_closed: false,
                queued: 0,
                sent: 0,
            }),
            flushed: Condvar::new(),
            handshake: Mutex::new(Handshake::Pending),
            handshake_done: AtomicBool::new(false),
            reader: Mutex::new(()),
            inbound: Mutex::new(Vec::new()),
            writer: Mutex::new(()),
            closed: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            handshake_deadline: deadline,
        }
    }

    /// Run the handshake if it has not run. Idempotent; concurrent callers
    /// wait for the one that drives it; a failed handshake stays failed.
    pub fn handshake(&self) -> Result<(), Error> {
        if self.handshake_done.load(Acquire) {
            return Ok(());
        }
        let mut hs = self.handshake.lock();
        match &*hs {
            Handshake::Done => return Ok(()),
            // Closed since (perhaps that is why it failed): say so, as every
            // operation on a closed connection does, so that a reader or
            // writer that was waiting for the handshake sees `Closed`.
            Handshake::Failed(_) if self.closed.load(Acquire) => return Err(closed_error("handshake")),
            Handshake::Failed(msg) => return Err(Error::Tls(TlsError::new("handshake", msg.clone()))),
            Handshake::Pending => {}
        }
        if self.closed.load(Acquire) {
            return Err(closed_error("handshake"));
        }
        let result = self.drive_handshake();
        match &result {
            Ok(()) => {
                *hs = Handshake::Done;
                self.handshake_done.store(true, Release);
            }
            Err(e) => {
                *hs = Handshake::Failed(format!("handshake failed earlier: {e}"));
                self.broken.store(true, Release);
            }
        }
        result
    }

    fn drive_handshake(&self) -> Result<(), Error> {
        let (cap, timeout_binds) = self.handshake_cap();
        let _overlay = DeadlineOverlay::apply(&self.tcp, cap);
        // A passed deadline is the handshake timeout only when that timeout
        // was the earliest limit; the dial's or the user's is reported as
        // the i/o timeout it is.
        let transport_error = |err: io::Error| match self.config.settings().handshake_timeout {
            Some(t) if timeout_binds && DeadlineExceeded::is(&err) => Error::HandshakeTimeout(t),
            _ => Error::Tls(TlsError { op: "handshake", code: 0, message: String::new(), cause: Some(err) }),
        };
        loop {
            let outcome = {
                let mut e = self.engine.lock();
                let o = e.ssl.handshake();
                e.collect();
                o
            };
            // Send what OpenSSL produced first: on failure that is the alert
            // telling the peer why.
            self.flush(true).map_err(transport_error)?;
            match outcome {
                // The user's verify_peer_certificate, with no lock held.
                Outcome::Done(()) => {
                    return self.config.check_peer_certificates(|| self.engine.lock().ssl.peer_certificates());
                }
                Outcome::WantRead => {
                    if self.fill().map_err(transport_error)? == 0 {
                        return Err(Error::Eof);
                    }
                }
                Outcome::Closed => return Err(Error::Eof),
                Outcome::Failed { code, message, cause } => {
                    return Err(Error::Tls(TlsError { op: "handshake", code, message, cause }));
                }
            }
        }
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
    fn fill(&self) -> io::Result<usize> {
        // The handshake driver and the reader never run at once (the reader
        // waits for the handshake first), so this lock is uncontended; it is
        // not the reader lock, which a reader holds across its whole call.
        let mut buf = self.inbound.lock();
        if buf.is_empty() {
            buf.resize(READ_FIRST, 0);
        }
        let n = (&self.tcp).read(&mut buf)?;
        if n > 0 {
            self.engine.lock().ssl.feed(&buf[..n]);
        }
        if n == buf.len() && n < READ_MAX {
            buf.resize(2 * n, 0);
        }
        Ok(n)
    }

    /// Send queued ciphertext. With `wait`, return only once everything
    /// queued so far has been sent (waiting for another flusher if need be);
    /// without, leave it to a flusher already at work.
    fn flush(&self, wait: bool) -> io::Result<()> {
        let mut e = self.engine.lock();
        loop {
            if let Some((kind, msg)) = &e.write_error {
                // A flush that `close` broke (or bounded) reads as `Closed`.
                if self.closed.load(Acquire) {
                    return Err(Closed.into());
                }
                return Err(io::Error::new(*kind, format!("tls: the write side failed earlier: {msg}")));
            }
            if e.flushing {
                if !wait {
                    return Ok(());
                }
                self.flushed.wait(&mut e);
                continue;
            }
            if e.out.is_empty() {
                return Ok(());
            }
            e.flushing = true;
            let mut chunk = std::mem::take(&mut e.out);
            let (done, sent) = MutexGuard::unlocked(&mut e, || send_all(&self.tcp, &chunk));
            e.sent += done as u64;
            e.flushing = false;
            if e.out.is_empty() {
                chunk.clear();
                e.out = chunk; // keep the allocation
            }
            self.flushed.notify_all();
            if let Err(err) = sent {
                // Part of a record may be on the wire: the stream is broken.
                e.write_error = Some((err.kind(), err.to_string()));
                return Err(err);
            }
        }
    }

    fn read_plain(&self, buf: &mut [u8]) -> io::Result<usize> {
        let _reader = self.reader.lock();
        if self.closed.load(Acquire) {
            return Err(Closed.into());
        }
        self.handshake()?;
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let (outcome, produced) = {
                let mut e = self.engine.lock();
                let o = e.ssl.read(buf);
                e.collect();
                (o, !e.out.is_empty())
            };
            if produced {
                // A post-handshake message wanted an answer (KeyUpdate). A
                // writer already sending will take it along.
                let _ = self.flush(false);
            }
            match outcome {
                Outcome::Done(n) => return Ok(n),
                Outcome::Closed => return Ok(0),
                Outcome::WantRead => {
                    if self.fill()? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "tls: peer closed the connection without close_notify",
                        ));
                    }
                }
                Outcome::Failed { code, message, cause } => {
                    self.broken.store(true, Release);
                    return Err(Error::Tls(TlsError { op: "read", code, message, cause }).into());
                }
            }
        }
    }

    fn write_plain(&self, buf: &[u8]) -> io::Result<usize> {
        let _writer = self.writer.lock();
        // Checked first: close also closes the write side, which would
        // otherwise report a close_write.
        if self.closed.load(Acquire) {
            return Err(Closed.into());
        }
        self.handshake()?;
        let mut records: Vec<(u64, usize)> = Vec::new();
        let outcome = {
            let mut e = self.engine.lock();
            // Again under the engine lock: a `close` since the check above
            // has closed the write side too, which must read as `Closed`,
            // not as a close_write.
            if self.closed.load(Acquire) {
                return Err(Closed.into());
            }
            if let Some(err) = e.unreported.take() {
                return Err(err);
            }
            if let Some((kind, msg)) = &e.write_error {
                return Err(io::Error::new(*kind, format!("tls: the write side failed earlier: {msg}")));
            }
            if e.write_closed {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "tls: write after close_write"));
            }
            if buf.is_empty() {
                return Ok(0);
            }
            // Record by record, noting where each one's ciphertext ends.
            let want = buf.len().min(MAX_WRITE);
            let mut taken = 0;
            let mut outcome = Outcome::Done(0);
            while taken < want {
                match e.ssl.write(&buf[taken..want.min(taken + RECORD)]) {
                    Outcome::Done(n) => {
                        taken += n;
                        e.collect();
                        records.push((e.queued, taken));
                    }
                    other => {
                        e.collect();
                        outcome = other;
                        break;
                    }
                }
            }
            if let Outcome::Done(_) = outcome {
                outcome = Outcome::Done(taken);
            }
            outcome
        };
        if let Err(err) = self.flush(true) {
            // std's contract: report what fully reached the socket; the
            // error (the write side is broken for good) comes next call.
            let mut e = self.engine.lock();
            let delivered = records.iter().take_while(|(end, _)| *end <= e.sent).last().map_or(0, |r| r.1);
            if delivered == 0 {
                return Err(err);
            }
            e.unreported = Some(err);
            return Ok(delivered);
        }
        match outcome {
            Outcome::Done(n) => Ok(n),
            Outcome::Closed => Err(io::Error::new(io::ErrorKind::BrokenPipe, "tls: connection closed")),
            Outcome::WantRead => Err(io::Error::other("tls: write wants to read (renegotiation is disabled)")),
            Outcome::Failed { code, message, cause } => {
                self.broken.store(true, Release);
                Err(Error::Tls(TlsError { op: "write", code, message, cause }).into())
            }
        }
    }

    /// Send close_notify: the peer reads end of stream; this side can still
    /// read. Needs a finished handshake; later writes fail.
    pub fn close_write(&self) -> Result<(), Error> {
        if !self.handshake_done.load(Acquire) {
            return Err(Error::Tls(TlsError::new("close_write", "the handshake has not completed")));
        }
        let _writer = self.writer.lock();
        if self.closed.load(Acquire) {
            return Err(closed_error("close_write"));
        }
        {
            let mut e = self.engine.lock();
            // As in `write_plain`: a `close` since the check above.
            if self.closed.load(Acquire) {
                return Err(closed_error("close_write"));
            }
            if e.write_closed {
                return Ok(());
            }
            e.write_closed = true;
            if let Outcome::Failed { code, message, cause } = e.ssl.shutdown() {
                return Err(Error::Tls(TlsError { op: "close_write", code, message, cause }));
            }
            e.collect();
        }
        self.flush(true).map_err(|err| {
            Error::Tls(TlsError { op: "close_write", code: 0, message: String::new(), cause: Some(err) })
        })
    }

    /// Close: send close_notify if the handshake finished and no write is
    /// in flight (best effort, at most 5 s against a peer that
    /// does not read), then close the TCP connection, waking any blocked
    /// reader or writer. Idempotent; dropping the `Conn` closes it too.
    pub fn close(&self) -> io::Result<()> {
        if self.closed.swap(true, Release) {
            return Ok(());
        }
        // As Go's tls.Conn does: a write in flight means this close is
        // meant to break it, so skip close_notify (which would queue behind
        // that write) and close at once.
        let idle_writer = self.writer.try_lock();
        if self.handshake_done.load(Acquire) && idle_writer.is_some() {
            let queued = {
                let mut e = self.engine.lock();
                let ok = e.write_error.is_none() && !e.write_closed;
                if ok {
                    e.write_closed = true;
                    let _ = e.ssl.shutdown();
                    e.collect();
                }
                ok
            };
            // Writers that come after us see `closed` and fail at once.
            drop(idle_writer);
            if queued {
                let _ = self.tcp.set_write_deadline(Some(Instant::now() + CLOSE_NOTIFY_BOUND));
                let _ = self.flush(false);
            }
        }
        self.tcp.close()
    }

    /// Whether the connection is usable: not closed, the handshake not
    /// failed, no fatal TLS error since, and the TCP connection open.
    pub fn is_open(&self) -> bool {
        !self.closed.load(Acquire) && !self.broken.load(Acquire) && self.tcp.is_open()
    }

    /// A snapshot of the connection's TLS state. Never runs the handshake.
    pub fn connection_state(&self) -> ConnectionState {
        if !self.handshake_done.load(Acquire) {
            return ConnectionState::default();
        }
        let e = self.engine.lock();
        ConnectionState {
            handshake_complete: e.ssl.is_handshake_done(),
            version: Version::from_raw(e.ssl.version()),
            alpn_protocol: e.ssl.alpn(),
            cipher_suite: e.ssl.cipher(),
            server_name: e.ssl.server_name(),
            peer_certificates: e.ssl.peer_certificates(),
            session_resumed: e.ssl.session_reused(),
        }
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

/// The client engine for `config`: SNI and name verification for `name`
/// (unless `config.server_name` overrides it), session resumption filed
/// under the name and `peer`. Shared by [`Conn`] and the fuzzing entry
/// points, so both drive an identically configured `SSL`.
pub(crate) fn client_ssl(config: &Config, name: Option<&str>, peer: &str) -> Result<Ssl, Error> {
    let ctx = config.client_ctx().map_err(Error::Config)?;
    let s = config.settings();
    // A fully qualified "example.com." names the same host: the dot goes
    // neither into SNI nor into the name check (as Go does).
    let name = s.server_name.as_deref().or(name).map(|n| n.strip_suffix('.').unwrap_or(n)).filter(|n| !n.is_empty());
    if s.verify_peer && name.is_none() {
        return Err(Error::Config(ConfigError(
            "no server name to verify: set server_name, dial a host name, or turn verify_peer off".into(),
        )));
    }
    let mut ssl = Ssl::new(&ctx, false).map_err(|m| Error::Tls(TlsError::new("handshake", m)))?;
    if let Some(name) = name {
        let tls_err = |m| Error::Tls(TlsError::new("handshake", m));
        match name.parse::<IpAddr>() {
            // An IP literal is never sent as SNI (RFC 6066).
            Ok(ip) if s.verify_peer => ssl.verify_ip(ip).map_err(tls_err)?,
            Ok(_) => {}
            Err(_) => {
                ssl.set_sni(name).map_err(tls_err)?;
                if s.verify_peer {
                    ssl.verify_host(name).map_err(tls_err)?;
                }
            }
        }
    }
    ssl.use_session_cache(config.sessions(), &format!("{}|{peer}", name.unwrap_or("")));
    Ok(ssl)
}

/// The server engine for `config`.
pub(crate) fn server_ssl(config: &Config) -> Result<Ssl, Error> {
    let ctx = config.server_ctx().map_err(Error::Config)?;
    Ssl::new(&ctx, true).map_err(|m| Error::Tls(TlsError::new("handshake", m)))
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
struct DeadlineOverlay<'a> {
    tcp: &'a tcp::Conn,
    /// Per direction: the value before, and the capped value put in force.
    saved: Option<[(Option<Instant>, Option<Instant>); 2]>,
}

impl<'a> DeadlineOverlay<'a> {
    fn apply(tcp: &'a tcp::Conn, cap: Option<Instant>) -> DeadlineOverlay<'a> {
        let Some(cap) = cap else { return DeadlineOverlay { tcp, saved: None } };
        let (r, w) = (tcp.read_deadline(), tcp.write_deadline());
        let capped = |d: Option<Instant>| Some(d.map_or(cap, |d| d.min(cap)));
        let (rc, wc) = (capped(r), capped(w));
        let _ = tcp.set_read_deadline(rc);
        let _ = tcp.set_write_deadline(wc);
        DeadlineOverlay { tcp, saved: Some([(r, rc), (w, wc)]) }
    }
}

impl Drop for DeadlineOverlay<'_> {
    fn drop(&mut self) {
        let Some([(r, rc), (w, wc)]) = self.saved else { return };
        // A setter racing this check loses at worst by being overwritten with
        // the value from before the handshake, never with the cap.
        if self.tcp.read_deadline() == rc {
            let _ = self.tcp.set_read_deadline(r);
        }
        if self.tcp.write_deadline() == wc {
            let _ = self.tcp.set_write_deadline(w);
        }
    }
}

impl Read for &Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_plain(buf)
    }
}

impl Write for &Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_plain(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_plain(buf)
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_plain(buf)
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
        if self.handshake_done.load(Acquire) {
            let state = self.connection_state();
            f.write_str(match state.version {
                Some(Version::Tls12) => "TLSv1.2",
                Some(Version::Tls13) => "TLSv1.3",
                None => "TLS",
            })?;
            if let Some(alpn) = &state.alpn_protocol {
                write!(f, ", {alpn}")?;
            }
        } else if self.broken.load(Acquire) {
            f.write_str("handshake failed")?;
        } else {
            f.write_str("handshake pending")?;
        }
        write!(f, ", {})", if self.is_open() { "open" } else { "closed" })
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("tcp", &self.tcp)
            .field("role", &if self.server { "server" } else { "client" })
            .field("handshake_complete", &self.handshake_done.load(Acquire))
            .field("open", &self.is_open())
            .finish()
    }
}
