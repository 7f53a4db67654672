//! A TCP echo server: a thread per connection, with an idle timeout pushed
//! forward after every read.
//!
//! ```sh
//! cargo run --example echo_server -- 127.0.0.1:7007
//! cargo run --example echo_client -- 127.0.0.1:7007 "hello"
//! ```

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use reseau::tcp;

const IDLE: Duration = Duration::from_secs(30);

fn serve(mut conn: tcp::Conn) -> std::io::Result<u64> {
    let mut buf = [0u8; 16 * 1024];
    let mut echoed = 0;
    loop {
        // Absolute deadline, moved forward after each read: one atomic store.
        conn.set_read_deadline(Some(Instant::now() + IDLE))?;
        let n = match conn.read(&mut buf) {
            Ok(0) => return Ok(echoed),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::TimedOut => return Ok(echoed),
            Err(e) => return Err(e),
        };
        conn.set_write_deadline(Some(Instant::now() + IDLE))?;
        conn.write_all(&buf[..n])?;
        echoed += n as u64;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7007".into());
    let listener = tcp::listen(&addr)?;
    println!("echo server on {} (idle timeout {IDLE:?}); Ctrl-C to stop", listener.local_addr()?);
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let peer = conn.remote_addr()?;
        std::thread::spawn(move || match serve(conn) {
            Ok(n) => println!("{peer}: done, {n} bytes echoed"),
            Err(e) => println!("{peer}: {e}"),
        });
    }
    Ok(())
}
