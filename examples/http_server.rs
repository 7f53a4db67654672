//! An HTTP/1.1 server on green threads: one green thread per connection,
//! written as plain blocking code. Every request gets `Hello, World!`.
//!
//! ```sh
//! cargo run --release --example http_server -- [ADDR] [WORKERS]
//! curl http://127.0.0.1:8080/ http://127.0.0.1:8080/again
//! ```
//!
//! ADDR defaults to 127.0.0.1:8080, WORKERS (the OS threads running green
//! threads) to one per core. It prints `listening on ADDR` once ready. Each
//! connection takes a descriptor: raise `ulimit -n` to serve thousands.
//!
//! Requests are parsed with `httparse`, whatever their method and path.
//! Keep-alive and pipelining: every complete request read is answered, the
//! answers written together, then the connection is read again. It is
//! closed after `Connection: close`, after HTTP/1.0 without `Connection:
//! keep-alive`, after a malformed request (400), a head larger than the read
//! buffer (431), a body too large (413) or chunked (501), and when silent
//! for 60 s. SIGINT or SIGTERM stops accepting and ends the process.

use std::cell::RefCell;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reseau::{green, tcp};

const BODY: &[u8] = b"Hello, World!";
/// A connection's read buffer: the bound on one request, head and body.
const BUF: usize = 8 * 1024;
/// How long a connection may stay silent (or not read our answers).
const IDLE: Duration = Duration::from_secs(60);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let workers: usize = args.next().map(|w| w.parse()).transpose()?.unwrap_or(0);
    // First: every thread started later inherits the mask.
    let stop = block_stop_signals();

    let pool = green::Pool::new(workers)?;
    let listener = Arc::new(tcp::ListenConfig::new().backlog(4096).listen(&addr)?);
    println!("listening on {}", listener.local_addr()?);

    let l = listener.clone();
    let acceptor = pool.spawn(move || {
        loop {
            match l.accept() {
                Ok(conn) => {
                    // No stack to be had (memory, limits): drop the connection.
                    if let Err(e) = green::try_spawn(move || serve(conn)) {
                        eprintln!("no green thread for a connection: {e}");
                    }
                }
                Err(_) if !l.is_open() => return,
                Err(e) => {
                    // Out of descriptors, say: wait a little for some to close.
                    eprintln!("accept: {e}");
                    green::sleep(Duration::from_millis(10));
                }
            }
        }
    });

    let signal = wait_for(&stop);
    println!("signal {signal}: stopping");
    listener.close()?;
    let _ = acceptor.join();
    Ok(())
}

/// One connection: read, answer every complete request read, repeat.
fn serve(mut conn: tcp::Conn) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    let mut filled = 0;
    let mut out = Vec::with_capacity(512);
    loop {
        // An absolute deadline for the read and the write that follows.
        conn.set_deadline(Some(Instant::now() + IDLE))?;
        match conn.read(&mut buf[filled..]) {
            Ok(0) => return Ok(()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::TimedOut => return Ok(()),
            Err(e) => return Err(e),
        }
        let (used, mut open) = answer(&buf[..filled], &mut out);
        buf.copy_within(used..filled, 0);
        filled -= used;
        if open && filled == BUF {
            // A full buffer and still no complete request.
            open = reply(&mut out, "431 Request Header Fields Too Large", b"", false);
        }
        if !out.is_empty() {
            conn.write_all(&out)?;
            out.clear();
        }
        if !open {
            return linger(&mut conn);
        }
    }
}

/// Close from our side: stop sending, then drop what the client still
/// sends, for a second at most. Closing with unread bytes would reset the
/// connection, and the client could lose the answer (a 400, say) with it.
fn linger(conn: &mut tcp::Conn) -> io::Result<()> {
    conn.close_write()?;
    conn.set_read_deadline(Some(Instant::now() + Duration::from_secs(1)))?;
    let mut sink = [0u8; 1024];
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
    Ok(())
}

/// Answer, into `out`, the complete requests at the start of `buf`.
/// Returns how many bytes they took, and whether the connection stays open.
fn answer(buf: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
    let mut used = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let head = match req.parse(&buf[used..]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return (used, true),
            Err(httparse::Error::TooManyHeaders) => {
                return (used, reply(out, "431 Request Header Fields Too Large", b"", false));
            }
            Err(_) => return (used, reply(out, "400 Bad Request", b"", false)),
        };
        let (mut body, mut close, mut keep_alive) = (0, false, false);
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                match std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse().ok()) {
                    Some(n) => body = n,
                    None => return (used, reply(out, "400 Bad Request", b"", false)),
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return (used, reply(out, "501 Not Implemented", b"", false));
            } else if h.name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        if head + body > BUF {
            return (used, reply(out, "413 Content Too Large", b"", false));
        }
        if used + head + body > buf.len() {
            return (used, true); // the body is still on its way
        }
        used += head + body;
        // HTTP/1.1 keeps the connection unless asked not to; 1.0 closes it
        // unless asked to keep it.
        let keep = !close && (req.version == Some(1) || keep_alive);
        let body = if req.method == Some("HEAD") { b"" } else { BODY };
        if !reply(out, "200 OK", body, keep) {
            return (used, false);
        }
    }
}

/// Append one response to `out`; returns `keep_alive`. Its Content-Length
/// is always the full body's, so a HEAD answer says what GET would send.
fn reply(out: &mut Vec<u8>, status: &str, body: &[u8], keep_alive: bool) -> bool {
    let length = if status.starts_with("200") { BODY.len() } else { 0 };
    let connection = if keep_alive { "" } else { "Connection: close\r\n" };
    DATE.with_borrow_mut(|date| {
        let _ = write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\nDate: {}\r\n{connection}\r\n",
            date.now()
        );
    });
    out.extend_from_slice(body);
    keep_alive
}

thread_local! {
    /// The `Date` header's value, formatted once a second per worker.
    static DATE: RefCell<Date> = const { RefCell::new(Date { second: u64::MAX, text: String::new() }) };
}

struct Date {
    second: u64,
    text: String,
}

impl Date {
    /// Now, as an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
    fn now(&mut self) -> &str {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if secs != self.second {
            self.second = secs;
            let (days, s) = (secs / 86_400, secs % 86_400);
            let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
            // Days since 1970-01-01 to a civil date (proleptic Gregorian).
            let z = days + 719_468;
            let (era, doe) = (z / 146_097, z % 146_097);
            let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            let mp = (5 * doy + 2) / 153;
            let day = doy - (153 * mp + 2) / 5 + 1;
            let month = if mp < 10 { mp + 3 } else { mp - 9 };
            let year = yoe + era * 400 + u64::from(month <= 2);
            let name = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
            self.text = format!(
                "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
                name[month as usize - 1],
                s / 3600,
                s / 60 % 60,
                s % 60
            );
        }
        &self.text
    }
}

/// Block SIGINT and SIGTERM in this thread, and so in the threads it starts
/// from now on: they stay pending until [`wait_for`] takes one.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it below.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset we own; the mask is this thread's.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    set
}

/// Wait for one of the signals in `set` (blocked beforehand); returns it.
fn wait_for(set: &libc::sigset_t) -> i32 {
    let mut signal = 0;
    // SAFETY: a valid, initialised sigset, and an int to write the signal to.
    unsafe { libc::sigwait(set, &mut signal) };
    signal
}
