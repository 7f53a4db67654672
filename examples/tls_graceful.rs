//! A TLS server that shuts down gracefully: it stops accepting, gives the
//! connections still open a deadline to finish, waits for their green
//! threads, and closes what is left. Certificates are made on the spot.
//!
//! ```sh
//! cargo run --example tls_graceful
//! ```
//!
//! Three clients connect: two finish a request each and leave; the third
//! goes quiet mid-conversation, as a stuck client does, and is cut off by
//! the shutdown's deadline instead of holding the server forever.

#[path = "support/certs.rs"]
mod certs;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reseau::green;
use reseau::iopoll::sync::Mutex;
use reseau::tls;

/// How long live connections get to finish once shutdown starts.
const GRACE: Duration = Duration::from_secs(1);

/// The server's live connections and the green threads serving them.
#[derive(Default)]
struct Live {
    conns: Vec<Arc<tls::Conn>>,
    handlers: Vec<green::JoinHandle<()>>,
}

/// When shutdown began to close connections, if it has: a handler never
/// sets a deadline later than this. Setting a deadline and reading this
/// happen under its lock, so shutdown's deadline is never overwritten by a
/// handler's idle deadline set a moment later.
type Closing = Mutex<Option<Instant>>;

/// Serve one connection: echo until the client closes, under an idle
/// deadline of 30 s (no default timeout, as in Go: bound every wait), or
/// shutdown's, if earlier. A connection cut off by a deadline is left open
/// for shutdown to close.
fn serve(conn: &tls::Conn, closing: &Closing) {
    let mut buf = [0u8; 1024];
    loop {
        {
            let closing = closing.lock();
            let idle = Instant::now() + Duration::from_secs(30);
            let _ = conn.set_read_deadline(Some(closing.map_or(idle, |at| at.min(idle))));
        }
        match (&*conn).read(&mut buf) {
            // The client is done: close our side too.
            Ok(0) => {
                let _ = conn.close();
                return;
            }
            // A deadline passed (shutdown's, or idle) or the peer failed:
            // leave the connection to whoever owns it.
            Err(_) => return,
            Ok(n) => {
                if (&*conn).write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let certs = certs::generate()?;
    let config = tls::Config::builder()
        .cert_file(certs.path("server.pem"))
        .key_file(certs.path("server.key"))
        .handshake_timeout(Duration::from_secs(10))
        .build()?;
    let pool = green::Pool::new(2)?;
    let listener = Arc::new(tls::listen("127.0.0.1:0", &config)?);
    let addr = listener.local_addr()?;
    println!("serving on {addr}");

    // The accept loop: each connection on a green thread of its own, kept
    // in `live` so that shutdown can find it.
    let live = Arc::new(Mutex::new(Live::default()));
    let closing = Arc::new(Closing::new(None));
    let acceptor = {
        let (listener, live, closing) = (listener.clone(), live.clone(), closing.clone());
        pool.spawn(move || {
            // Ends when the listener is closed.
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let conn = Arc::new(conn);
                let (serving, closing) = (conn.clone(), closing.clone());
                let handler = green::spawn(move || serve(&serving, &closing));
                let mut live = live.lock();
                live.conns.push(conn);
                live.handlers.push(handler);
            }
        })
    };

    // Clients: two polite ones, and one that goes quiet after its first line.
    let client_config = tls::Config::builder().ca_file(certs.path("ca.pem")).server_name("localhost").build()?;
    let mut quiet = None;
    for i in 0..3 {
        let mut conn = tls::connect_addr(addr, &client_config)?;
        conn.set_deadline(Some(Instant::now() + Duration::from_secs(10)))?;
        conn.write_all(format!("request {i}\n").as_bytes())?;
        let mut back = [0u8; 10];
        conn.read_exact(&mut back)?;
        print!("client {i} got: {}", String::from_utf8_lossy(&back));
        if i < 2 {
            conn.close()?; // done: close_notify, then the socket
        } else {
            quiet = Some(conn); // open, and silent
        }
    }

    // Shutdown. 1: stop accepting; the accept loop ends.
    let started = Instant::now();
    listener.close()?;
    acceptor.join().map_err(|_| "the accept loop panicked")?;
    println!("shutdown: stopped accepting");

    // 2: give the live connections a deadline. Handlers blocked in a read
    // or a write wake with a timeout when it passes, and return.
    let Live { conns, handlers } = std::mem::take(&mut *live.lock());
    {
        let mut closing = closing.lock();
        *closing = Some(started + GRACE);
        for conn in &conns {
            let _ = conn.set_deadline(Some(started + GRACE));
        }
    }
    println!("shutdown: {} connection(s) seen, each given {GRACE:?} to finish", conns.len());

    // 3: wait for their green threads.
    for handler in handlers {
        handler.join().map_err(|_| "a handler panicked")?;
    }
    let took = Duration::from_millis(started.elapsed().as_millis() as u64 / 100 * 100);
    println!("shutdown: every handler returned, after about {took:?}");

    // 4: close what is left (close_notify where it can, then the socket).
    let mut closed = 0;
    for conn in &conns {
        if conn.is_open() {
            conn.close()?;
            closed += 1;
        }
    }
    println!("shutdown: closed {closed} connection(s) left open");

    // The quiet client sees the end of the conversation.
    if let Some(mut conn) = quiet {
        let mut rest = Vec::new();
        let end = conn.read_to_end(&mut rest).map(|_| "close_notify".to_string()).unwrap_or_else(|e| e.to_string());
        println!("quiet client: connection ended ({end})");
    }
    println!("shutdown complete");
    Ok(())
}
