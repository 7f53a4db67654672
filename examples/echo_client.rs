//! A TCP echo client: dial with a time limit, send a message, wait for the
//! echo under a read deadline.
//!
//! ```sh
//! cargo run --example echo_client -- 127.0.0.1:7007 "hello"
//! ```

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use reseau::tcp;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7007".into());
    let message = args.next().unwrap_or_else(|| "hello, reseau".into());

    let start = Instant::now();
    let mut conn = tcp::Dialer::new().timeout(Duration::from_secs(5)).connect(&addr)?;
    println!("connected to {} in {:?}", conn.remote_addr()?, start.elapsed());

    conn.write_all(message.as_bytes())?;
    conn.close_write()?; // the server sees end of stream after the message
    conn.set_read_deadline(Some(Instant::now() + Duration::from_secs(5)))?;
    let mut echo = Vec::new();
    conn.read_to_end(&mut echo)?;
    println!("echo: {}", String::from_utf8_lossy(&echo));
    if echo != message.as_bytes() {
        return Err("the echo differs from the message".into());
    }
    Ok(())
}
