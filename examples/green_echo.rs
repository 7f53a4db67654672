//! An echo server and 10 000 clients in one process, every connection a
//! green thread on each side, on a pool of two OS threads.
//!
//! `cargo run --release --example green_echo [CONNECTIONS]`
//!
//! Each end of a connection takes a descriptor: 10 000 connections need
//! about 20 100 of them (`ulimit -n`). Where fewer are allowed, the example
//! says so and runs as many as fit.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reseau::green;
use reseau::iopoll::sync::{Condvar, Mutex};
use reseau::tcp;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wanted: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(10_000);
    let conns = wanted.min(fd_room() / 2);
    if conns < wanted {
        println!("descriptor limit: {conns} connections fit (of {wanted} asked); raise `ulimit -n` for more");
    }
    let pool = green::Pool::new(2)?;
    let listener = Arc::new(tcp::ListenConfig::new().backlog(4096).listen("127.0.0.1:0")?);
    let addr = listener.local_addr()?;

    let l = listener.clone();
    pool.spawn(move || {
        while let Ok(mut conn) = l.accept() {
            green::spawn(move || {
                let mut buf = [0u8; 1024];
                // An idle timeout: a client silent for 30 s is dropped.
                loop {
                    let _ = conn.set_read_deadline(Some(Instant::now() + Duration::from_secs(30)));
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) if conn.write_all(&buf[..n]).is_err() => break,
                        Ok(_) => {}
                    }
                }
            });
        }
    });

    // Every client holds its connection until all are connected and have
    // echoed, so all of them are open at once.
    let start = Instant::now();
    let all_in = Arc::new((Mutex::new(0usize), Condvar::new()));
    let clients: Vec<_> = (0..conns)
        .map(|i| {
            let all_in = all_in.clone();
            pool.spawn(move || -> std::io::Result<()> {
                let mut conn = tcp::connect_addr(addr)?;
                let msg = format!("hello from client {i}\n");
                conn.write_all(msg.as_bytes())?;
                let mut back = vec![0u8; msg.len()];
                conn.read_exact(&mut back)?;
                assert_eq!(back, msg.as_bytes());
                let (count, cv) = &*all_in;
                let mut n = count.lock();
                *n += 1;
                cv.notify_all();
                while *n < conns {
                    cv.wait(&mut n);
                }
                Ok(())
            })
        })
        .collect();
    let mut failed = 0;
    for c in clients {
        if !matches!(c.join(), Ok(Ok(()))) {
            failed += 1;
        }
    }
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    println!(
        "{} connections echoed in {:.0} ms; {failed} failed; the process has {threads} OS threads",
        conns - failed,
        start.elapsed().as_secs_f64() * 1e3
    );
    listener.close()?;
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// Descriptors this process may still open (the soft limit, raised to the
/// hard one first), less a margin for its own.
fn fd_room() -> usize {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write one rlimit we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX).saturating_sub(100)
}
