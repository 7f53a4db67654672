//! A fixed pool of worker threads serving many connections through the
//! blocking facade: the acceptor hands connections to the pool over a
//! channel, each worker serves one connection at a time with an idle
//! deadline, and a shutdown closes the listener to end the accept loop.
//!
//! ```sh
//! cargo run --release --example worker_pool -- --workers 8 --clients 64 --requests 200
//! ```

use std::io::{ErrorKind, Read, Write};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use reseau::tcp;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Answer fixed-size requests until the client leaves or idles out.
fn serve(mut conn: tcp::Conn) -> std::io::Result<usize> {
    let mut req = [0u8; 64];
    let mut served = 0;
    loop {
        conn.set_read_deadline(Some(Instant::now() + Duration::from_secs(5)))?;
        match conn.read_exact(&mut req) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::UnexpectedEof | ErrorKind::TimedOut) => return Ok(served),
            Err(e) => return Err(e),
        }
        req.reverse();
        conn.write_all(&req)?;
        served += 1;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (workers, clients, requests) = (arg("--workers", 8), arg("--clients", 64), arg("--requests", 200));
    let listener = Arc::new(tcp::ListenConfig::new().backlog(1024).listen("127.0.0.1:0")?);
    let addr = listener.local_addr()?;
    println!("{workers} workers serving {clients} clients x {requests} requests on {addr}");

    let (tx, rx) = mpsc::channel::<tcp::Conn>();
    let rx = Arc::new(Mutex::new(rx));
    let pool: Vec<_> = (0..workers)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || {
                let mut total = 0;
                loop {
                    let next = rx.lock().expect("queue").recv();
                    let Ok(conn) = next else { return total };
                    total += serve(conn).unwrap_or(0);
                }
            })
        })
        .collect();
    let l = listener.clone();
    let acceptor = thread::spawn(move || {
        // Ends when the listener is closed.
        for conn in l.incoming().flatten() {
            if tx.send(conn).is_err() {
                break;
            }
        }
    });

    let start = Instant::now();
    let client_threads: Vec<_> = (0..clients)
        .map(|i| {
            thread::spawn(move || -> std::io::Result<()> {
                let mut c = tcp::connect_addr(addr)?;
                let mut req = [0u8; 64];
                for r in 0..requests {
                    req.fill((i + r) as u8);
                    req[0] = 1;
                    c.write_all(&req)?;
                    let mut resp = [0u8; 64];
                    c.read_exact(&mut resp)?;
                    assert_eq!(resp[63], 1, "reply is the reversed request");
                }
                Ok(())
            })
        })
        .collect();
    let mut failed = 0;
    for t in client_threads {
        if !matches!(t.join(), Ok(Ok(()))) {
            failed += 1;
        }
    }
    let elapsed = start.elapsed();
    listener.close()?;
    acceptor.join().map_err(|_| "acceptor panicked")?;
    let served: usize = pool.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    println!(
        "{served} requests in {:.2} s: {:.0} requests/s, {failed} client(s) failed",
        elapsed.as_secs_f64(),
        served as f64 / elapsed.as_secs_f64()
    );
    if failed > 0 || served != clients * requests {
        return Err("not every request was served".into());
    }
    Ok(())
}
